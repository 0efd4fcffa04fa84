"""Eigen-stratified models (`basis M`): θ = V β over the M smoothest eigenvectors of the
product graph, fitted by the eigen backend (L-BFGS) and by the CVXPY reference."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import stratlang
from stratlang.backends.eigen import laplacian_basis
from stratlang.kinds.losses import LOSSES

from .cases import GRAPH_CASES, data_for, graph_frame

SMOOTH_LOSSES = [name for name in LOSSES.names() if LOSSES[name].smooth]
TIGHT = {"tol": 1e-13, "max_iter": 50_000}


def test_the_smooth_losses_are_those_expected():
    """A loss gains a gradient deliberately (and then every test below covers it)."""
    assert set(SMOOTH_LOSSES) == {"squared", "huber", "logistic", "square_classification",
                                  "squared_hinge", "multinomial", "poisson_regression",
                                  "exponential_regression"}


@pytest.mark.parametrize("loss", SMOOTH_LOSSES)
def test_every_smooth_loss_gradient_matches_finite_differences(loss, rng):
    entry = LOSSES[loss]
    frame, target, features = data_for(loss, rng, n=40)
    model = stratlang.load(f"response {target} ~ {loss}\n{features}\n")
    design = model.bind(frame)
    y, p = design.records.observed_y, design.loss_params
    pred = rng.normal(size=y.shape)
    step = 1e-6
    numeric = np.empty_like(pred)
    for index in np.ndindex(*pred.shape):
        up, down = pred.copy(), pred.copy()
        up[index] += step
        down[index] -= step
        numeric[index] = (entry.losses(up, y, p)[index[0]]
                          - entry.losses(down, y, p)[index[0]]) / (2 * step)
    np.testing.assert_allclose(entry.gradient(pred, y, p), numeric, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss", SMOOTH_LOSSES)
def test_every_smooth_loss_matches_cvxpy_in_a_basis(loss, rng):
    frame, target, features = data_for(loss, rng)
    frame["h"] = rng.integers(0, 4, len(frame))
    spec = (f"response {target} ~ {loss}\n{features}\nregularize 0.2 * sum_squares\n"
            "stratify g ~ path weight 2\nstratify h ~ cycle weight 0.5\nbasis 5\n")
    model = stratlang.load(spec)
    fast = model.fit(frame, backend="eigen", options=TIGHT)
    reference = model.fit(frame, backend="cvxpy", solver="clarabel")
    assert fast.info["converged"] and fast.info["basis"] == 5
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-6)
    if not LOSSES[loss].multiclass:  # (softmax: a constant added to every class's score,
        # in the unregularized intercept, changes nothing, so θ is not unique)
        np.testing.assert_allclose(fast.theta_array, reference.theta_array, atol=1e-4,
                                   rtol=1e-3)


@pytest.mark.parametrize("graph", sorted(GRAPH_CASES))
def test_a_basis_of_every_eigenvector_is_the_full_model(graph, rng, tmp_path):
    """With M = K the span is everything: the eigen backend must reach the full model's
    optimum (fitted by ADMM), on every graph kind."""
    case = GRAPH_CASES[graph]
    frame = graph_frame(rng, tmp_path=tmp_path)
    spec = ("response r ~ squared\nfeatures x, intercept\nregularize 0.1 * sum_squares\n"
            + case.statement())
    full = stratlang.load(str(_write(tmp_path, spec)), graphs=case.graphs()).fit(
        frame, backend="admm", options={"eps_abs": 1e-10, "eps_rel": 1e-10})
    expanded = stratlang.load(str(_write(tmp_path, spec + f"basis {case.strata}\n")),
                              graphs=case.graphs()).fit(frame, backend="eigen", options=TIGHT)
    assert expanded.objective.total == pytest.approx(full.objective.total, rel=1e-7)
    np.testing.assert_allclose(expanded.theta_array, full.theta_array, atol=1e-5)


def _write(tmp_path, text):
    path = tmp_path / "m.strat"
    path.write_text(text)
    return path


def test_theta_lies_in_the_span_and_the_laplacian_is_the_eigenvalue_sum(rng):
    frame, target, features = data_for("squared", rng)
    frame["h"] = rng.integers(0, 4, len(frame))
    model = stratlang.load(f"response {target} ~ squared\n{features}\n"
                           "stratify g ~ path weight 2\nstratify h ~ cycle weight 0.5\n"
                           "basis 4\n")
    fitted = model.fit(frame)
    assert fitted.info["backend"] == "eigen"
    design = model.bind(frame)
    values, vectors = laplacian_basis(design, fitted.weights)
    k, n, m = fitted.theta_array.shape
    theta = fitted.theta_array.reshape(k, n * m)
    beta = vectors.T @ theta
    np.testing.assert_allclose(vectors @ beta, theta, atol=1e-10)  # in the span
    assert fitted.objective.laplacian == pytest.approx(0.5 * np.sum(values[:, None] * beta ** 2),
                                                       rel=1e-9)
    assert values[0] == pytest.approx(0.0, abs=1e-12) and np.all(np.diff(values) >= -1e-12)


def test_recovers_a_smooth_truth_with_few_eigenvectors(rng):
    """θ that varies slowly along a path of 400 strata: 8 eigenvectors recover it far
    better than separate models and as well as the full stratified model."""
    k, per = 400, 3
    t = np.repeat(np.arange(k), per)
    x = rng.normal(size=t.size)
    slope = np.sin(np.pi * t / k) + 0.5 * np.cos(2 * np.pi * t / k)
    frame = pd.DataFrame({"t": t, "x": x, "y": slope * x + 0.3 * rng.normal(size=t.size)})
    spec = ("response y ~ squared\nfeatures x\nregularize 0.01 * sum_squares\n"
            f"stratify t ~ path weight 2000 nodes 0..{k - 1}\n")
    truth = np.sin(np.pi * np.arange(k) / k) + 0.5 * np.cos(2 * np.pi * np.arange(k) / k)
    errors = {}
    for name, text in (("basis", spec + "basis 8\n"), ("full", spec),
                       ("separate", spec.replace("weight 2000", "weight 0"))):
        fitted = stratlang.load(text).fit(frame)
        errors[name] = float(np.sqrt(np.mean((fitted.theta_array[:, 0, 0] - truth) ** 2)))
    assert errors["basis"] < 0.1 < errors["separate"]
    assert errors["basis"] < 1.5 * errors["full"]


def test_automatic_choice_and_refusals(rng):
    frame, target, features = data_for("squared", rng)
    base = (f"response {target} ~ squared\n{features}\n"
            "stratify g ~ path weight 2\nbasis 2\n")
    assert stratlang.load(base).fit(frame).info["backend"] == "eigen"
    lasso = stratlang.load(base.replace("basis 2", "regularize 0.1 * l1\nbasis 2"))
    fitted = lasso.fit(frame)  # l1 is not smooth: the reference fits the basis model
    assert fitted.info["backend"] == "cvxpy"
    assert "regularizer 'l1' is not smooth" in fitted.info["backend_note"]
    with pytest.raises(stratlang.NumericalError, match="ADMM fits the full model"):
        stratlang.load(base).fit(frame, backend="admm")


def test_a_basis_larger_than_the_strata_is_a_positioned_error(rng):
    frame, target, features = data_for("squared", rng)
    model = stratlang.load(f"response {target} ~ squared\n{features}\n"
                           "stratify g ~ path weight 2\nbasis 7\n")
    with pytest.raises(stratlang.SpecError) as info:
        model.fit(frame)
    [diagnostic] = info.value.diagnostics
    assert diagnostic.message == "basis 7 exceeds the K = 3 strata: at most 3 eigenvectors"
    assert (diagnostic.span.line, diagnostic.span.column) == (4, 7)


def test_save_load_and_show(rng, tmp_path):
    frame, target, features = data_for("poisson_regression", rng)
    spec = (f"response {target} ~ poisson_regression\n{features}\n"
            "regularize 0.1 * sum_squares\nstratify g ~ path weight 2\nbasis 2\n")
    fitted = stratlang.load(spec).fit(frame)
    path = fitted.save(tmp_path / "fit")
    again = stratlang.load_fitted(path)
    assert again.ir.basis == 2 and "basis 2" in again.text
    np.testing.assert_allclose(again.predict(frame).prediction, fitted.predict(frame).prediction)
    assert "backend eigen (L-BFGS on 2 eigenvectors)" in fitted.summary()


# (seeds where L-BFGS-B's line search fails at once from the optimum, before the fix)
@pytest.mark.parametrize(("seed", "loss", "target"), [(4, "squared", "y"), (11, "squared", "y"),
                                                      (16, "poisson_regression", "c")])
def test_a_warm_start_at_the_optimum_is_converged_not_a_warning(seed, loss, target):
    """At the optimum the gradient is round-off: a tolerance relative to it (the start's)
    cannot be met, and L-BFGS-B's line search fails at once; the tolerance is relative to
    the gradient at β = 0, and a failed line search at a round-off gradient is the
    minimum."""
    from stratlang.backends.eigen import EIGEN_OPTIONS, fit_eigen
    from stratlang.data.design import bind

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"g": rng.integers(0, 6, 300), "x": rng.normal(size=300)})
    frame["y"] = frame.x * frame.g + rng.normal(size=300)
    frame["c"] = rng.poisson(1.0, 300)
    model = stratlang.load(f"response {target} ~ {loss}\nfeatures x, intercept\n"
                           "regularize 0.1 * sum_squares\nstratify g ~ path weight 1\nbasis 3\n")
    design, weights = bind(model.ir, frame), model.ir.weight_values()
    options = EIGEN_OPTIONS.resolve({})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (a tolerance past round-off, to reach the optimum)
        theta, _, state = fit_eigen(design, weights, {**options, "tol": 1e-16})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again, info, _ = fit_eigen(design, weights, options, state)
    assert info["converged"] and info["status"] == "optimal"
    np.testing.assert_allclose(again, theta, rtol=1e-9, atol=1e-9)
