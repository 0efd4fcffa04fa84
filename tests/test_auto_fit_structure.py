"""Weights written `auto` beside rows held constant along factors (`by` a subset of the
factors, `shared`, with an interaction and a row's own weight): end to end through the
API against the dense brute force in φ (tests/laplace_reference.ConstrainedModel: T
built by loops, the criterion of θ = Tφ with every matrix dense, minimized from the
chosen weights by Newton steps on its own finite differences)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import stratlang
from stratlang.language.errors import StratlangError

from .laplace_reference import ConstrainedModel, constant_lift

S_NODES, T_NODES = 5, 3  # a path s × a cycle t


def _frame(seed: int = 2, n_records: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    s, t = rng.integers(0, S_NODES, n_records), rng.integers(0, T_NODES, n_records)
    x, z = rng.normal(size=n_records), rng.normal(size=n_records)
    path, cycle = np.cumsum(rng.normal(size=S_NODES)), rng.normal(size=T_NODES)
    product = 0.3 * np.outer(path - path.mean(), cycle - cycle.mean())
    slope = 0.5 + 0.15 * np.cumsum(rng.normal(size=S_NODES))
    eta = path[s] + cycle[t] + product[s, t] + slope[s] * x - 0.4 * z
    return pd.DataFrame({"y": eta + 0.6 * rng.normal(size=n_records),
                         "count": rng.poisson(np.exp(0.5 * eta)),
                         "x": x, "z": z, "s": s, "t": t})


STRATIFY = (f"stratify s ~ path weight auto nodes 0..{S_NODES - 1}\n"
            f"stratify t ~ cycle weight auto nodes 0..{T_NODES - 1}\n")
# case → (features, extra statements, each row's constant factors (s, t), the reference's
# penalty parts in θ with the weights' names)
CASES = {
    "by": ("x by s, intercept", "", [[False, True], [False, False]],
           [(("laplacian", 0, None), "stratify.s"), (("laplacian", 1, None), "stratify.t")]),
    "shared": ("x shared, intercept", "", [[True, True], [False, False]],
               [(("laplacian", 0, None), "stratify.s"), (("laplacian", 1, None), "stratify.t")]),
    "interact": ("x by (s weight auto), z shared, intercept", "interact s * t weight auto\n",
                 [[False, True], [True, True], [False, False]],
                 [(("laplacian", 0, np.array([False, False, True])), "stratify.s"),
                  (("laplacian", 0, np.array([True, False, False])), "stratify.s[x]"),
                  (("laplacian", 1, None), "stratify.t"),
                  (("interaction", (0, 1)), "interact.s_t")]),
    # the slope z present on s in {1, 2, 3} only, varying over both factors there (its
    # graph terms: the induced subgraphs)
    "where": ("x by s, z where s in {1, 2, 3}, intercept", "interact s * t weight auto\n",
              [[False, True], [False, False], [False, False]],
              [(("laplacian", 0, None), "stratify.s"), (("laplacian", 1, None), "stratify.t"),
               (("interaction", (0, 1)), "interact.s_t")]),
}
WHERE = {"where": {1: (np.array([False, True, True, True, False]), np.ones(T_NODES, bool))}}


def _model(case: str, loss: str = "squared") -> stratlang.Model:
    features, extra, _, _ = CASES[case]
    response = "y ~ squared" if loss == "squared" else "count ~ poisson_regression"
    return stratlang.load(f"model m\nresponse {response}\nfeatures {features}\n"
                          f"{STRATIFY}{extra}")


def _reference(model: stratlang.Model, frame: pd.DataFrame, case: str,
               fitted_theta: np.ndarray) -> tuple[ConstrainedModel, list[str]]:
    design = model.bind(frame)
    constant = np.array(CASES[case][2])
    parts = [p for p, _ in CASES[case][3]]
    partial = WHERE.get(case, {})
    present = [None if c not in partial else
               {(a, b) for a in range(S_NODES) for b in range(T_NODES)
                if partial[c][0][a] and partial[c][1][b]} for c in range(len(constant))]
    lift = constant_lift((S_NODES, T_NODES), constant, present)
    reference = ConstrainedModel(design.x, design.z, design.records.observed_y,
                                 design.loss.likelihood_unit({}), design.strata.graphs(), parts,
                                 offset=design.offset, weight=design.weight,
                                 dispersion=design.loss.likelihood.dispersion, lift=lift,
                                 partial=partial)
    reference._cache["theta"] = lift.T @ fitted_theta.reshape(-1)
    return reference, [name for _, name in CASES[case][3]]


def _gradient(reference, rho, kind="reml", h=1e-2):
    """The five-point stencil (error O(h⁴))."""
    out = np.zeros(len(rho))
    for a in range(len(rho)):
        e = np.eye(len(rho))[a] * h
        f = [reference.criterion(rho + j * e, kind) for j in (2, 1, -1, -2)]
        out[a] = (-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * h)
    return out


def _hessian(reference, rho, kind="reml", h=1e-2):
    q = len(rho)
    out = np.zeros((q, q))
    for a in range(q):
        for b in range(a, q):
            ea, eb = np.eye(q)[a] * h, np.eye(q)[b] * h
            out[a, b] = out[b, a] = (reference.criterion(rho + ea + eb, kind)
                                     - reference.criterion(rho + ea - eb, kind)
                                     - reference.criterion(rho - ea + eb, kind)
                                     + reference.criterion(rho - ea - eb, kind)) / (4 * h * h)
    return out


def _minimized(reference, rho, kind="reml"):
    """The reference's own minimizer near ρ: Newton steps on its finite differences."""
    hessian = _hessian(reference, rho, kind)
    for _ in range(3):
        rho = rho - np.linalg.solve(hessian, _gradient(reference, rho, kind))
    return rho, hessian


@pytest.mark.parametrize(("case", "loss"), [("by", "squared"), ("shared", "squared"),
                                            ("interact", "squared"),
                                            ("by", "poisson_regression"),
                                            ("where", "squared"),
                                            ("where", "poisson_regression")])
def test_selected_weights_match_the_dense_optimum_in_phi(case, loss):
    frame = _frame()
    model = _model(case, loss)
    fitted = model.fit(frame)
    reference, names = _reference(model, frame, case, fitted.theta.to_numpy())
    report = fitted.info["selection"]
    assert report["converged"] and set(report["weights"]) == set(names)
    assert all(report["weights"][n]["limit"] is None for n in names)
    chosen = np.array([fitted.weights[n] for n in names])
    rho, hessian = _minimized(reference, np.log(chosen))
    np.testing.assert_allclose(chosen, np.exp(rho), rtol=1e-6)
    np.testing.assert_allclose(report["criterion"], reference.criterion(rho), rtol=1e-8)
    se = np.sqrt(np.diag(np.linalg.inv(hessian)))
    np.testing.assert_allclose([report["weights"][n]["log_se"] for n in names], se, rtol=1e-2)
    # θ̂ is the fit at the chosen weights, held constant where declared
    theta = fitted.theta.to_numpy().reshape(S_NODES, T_NODES, -1)
    for row, along in enumerate(CASES[case][2]):
        for axis in np.flatnonzero(along):
            assert np.max(np.ptp(theta[:, :, row], axis=axis)) < 1e-9
    for row, (s_nodes, t_nodes) in WHERE.get(case, {}).items():  # absent: exactly 0
        assert np.all(theta[:, :, row][~np.logical_and.outer(s_nodes, t_nodes)] == 0)
    np.testing.assert_allclose(fitted.theta.to_numpy().reshape(-1),
                               reference.theta(reference.fit(chosen)), atol=1e-4)


def test_the_criterion_and_its_gradient_match_the_dense_reference():
    """At fixed trial weights, through the selection's own criterion."""
    from stratlang.backends import choose
    from stratlang.backends.selection import _Inner, prior
    from stratlang.solvers.selection import Criterion

    frame = _frame()
    model = _model("interact")
    fitted = model.fit(frame)
    reference, names = _reference(model, frame, "interact", fitted.theta.to_numpy())
    choice = choose(model.ir, frame)
    design = choice.design
    values = dict(fitted.weights)
    built = prior(design, values, names)
    assert [p.name for p in built.parts] == names
    inner = _Inner(choice, design, built.parts, values, built.penalty)
    rho = np.log([2.0, 30.0, 1.5, 4.0])
    evaluation = Criterion(inner, built.penalty, "reml")(rho)
    assert evaluation.value == pytest.approx(reference.criterion(rho), rel=1e-8)
    np.testing.assert_allclose(evaluation.gradient, _gradient(reference, rho), rtol=1e-6,
                               atol=1e-8)


def test_an_auto_weight_on_no_row_is_named():
    frame = _frame()
    model = stratlang.load("model m\nresponse y ~ squared\nfeatures x shared, z shared\n"
                           + STRATIFY)
    with pytest.raises(StratlangError, match=r"auto weight 'stratify.s' acts on no parameter "
                                             r"row: every row is constant along its factor; "
                                             r"fix it, or let a term vary over the factor"
                       ) as caught:
        model.fit(frame)
    assert str(caught.value).startswith("<spec>:4:26: error[S334]: ")


def test_an_auto_weight_whose_rows_sit_on_one_node_of_its_factor_is_an_error_at_it():
    """z present on s == 2 only: the path over s induces a single node on it, so the
    s-Laplacian acts on nothing and REML is flat in its weight (it used to come back as
    its starting value 1, with no limit and no standard errors)."""
    frame = _frame()
    model = stratlang.load("model m\nresponse y ~ squared\n"
                           "features x shared, z shared, intercept where s == 2\n" + STRATIFY)
    with pytest.raises(StratlangError) as caught:
        model.fit(frame)
    assert str(caught.value).splitlines()[0] == (
        "<spec>:4:26: error[S334]: auto weight 'stratify.s' acts on no parameter row: each "
        "row it penalizes is constant along its factor, or present (`where`) on nodes of it "
        "that no edge joins; fix the weight, or drop the term")
    # with the s weight fixed, the t weight is chosen, with its standard error
    fitted = stratlang.load("model m\nresponse y ~ squared\n"
                            "features x shared, z shared, intercept where s == 2\n"
                            + STRATIFY.replace("path weight auto", "path weight 1")).fit(frame)
    assert fitted.info["selection"]["weights"]["stratify.t"]["log_se"] is not None


def test_standard_errors_after_choosing_include_the_weights_uncertainty():
    frame = _frame()
    fitted = _model("by").fit(frame)
    conditional = fitted.standard_errors(conditional=True).to_numpy()
    full = fitted.theta_se.to_numpy()
    assert np.all(full >= conditional - 1e-15) and np.any(full > conditional * (1 + 1e-6))
    se = full.reshape(S_NODES, T_NODES, 2)
    assert np.max(np.ptp(se[:, :, 0], axis=1)) <= 1e-12 * np.max(se[:, :, 0])


@pytest.mark.parametrize("method", ["ml", "gcv"])
def test_ml_and_gcv_beside_rows_held_constant_match_the_dense_reference(method):
    """ML integrates over the free coefficients, not over P's null space in θ (a shared
    row's copies are one coordinate of φ); GCV's edf is tr(H_φ⁻¹Tᵀ∇²ℓT)."""
    frame = _frame()
    model = _model("by")
    fitted = model.fit(frame, select=method)
    reference, names = _reference(model, frame, "by", fitted.theta.to_numpy())
    chosen = np.array([fitted.weights[n] for n in names])
    rho, _ = _minimized(reference, np.log(chosen), method)
    np.testing.assert_allclose(chosen, np.exp(rho), rtol=1e-6)
    report = fitted.info["selection"]
    assert report["method"] == method
    np.testing.assert_allclose(report["criterion"], reference.criterion(rho, method), rtol=1e-8)


@pytest.mark.parametrize("case", ["interact", "where"])
def test_auto_weights_and_standard_errors_survive_save_and_load(case, tmp_path):
    """Rows held constant and a feature with where: the chosen weights, both kinds of
    standard errors and the prediction intervals come back from the saved fit as they
    were."""
    frame = _frame()
    fitted = _model(case, "poisson_regression").fit(frame)
    loaded = stratlang.load_fitted(fitted.save(tmp_path / "fit"))
    assert loaded.weights == fitted.weights
    assert loaded.info["selection"] == fitted.info["selection"]
    pd.testing.assert_frame_equal(loaded.theta_se, fitted.theta_se)
    pd.testing.assert_frame_equal(loaded.standard_errors(conditional=True),
                                  fitted.standard_errors(conditional=True))
    new = _frame(seed=9, n_records=12)
    for conditional in (False, True):
        pd.testing.assert_frame_equal(
            loaded.predict(new, interval=0.9, conditional=conditional),
            fitted.predict(new, interval=0.9, conditional=conditional))
