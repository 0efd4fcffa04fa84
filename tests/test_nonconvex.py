"""Non-convex base models (stratified paper §6): regularizers and losses without a CVXPY
form, fitted by ADMM as a local method from the convex relaxation's fit."""

import warnings

import numpy as np
import pandas as pd
import pytest

import stratlang
from stratlang.backends.relaxation import nonconvex_parts
from stratlang.kinds.losses import LOSSES
from stratlang.kinds.regularizers import REGULARIZERS
from stratlang.language.errors import NumericalError

from .cases import REGULARIZER_CASES, data_for
from .test_check import problems

NONCONVEX_LOSSES = [n for n in LOSSES.names() if not LOSSES[n].convex]
NONCONVEX_REGULARIZERS = [n for n in REGULARIZERS.names() if not REGULARIZERS[n].convex]
PROX_REGULARIZERS = [n for n in REGULARIZERS.names() if REGULARIZERS[n].admm_ready()]


def nonconvex_specs():
    for name in NONCONVEX_LOSSES:
        yield name, f"response y ~ {name}\nfeatures a, b, intercept\n"
    for name in NONCONVEX_REGULARIZERS:
        case = REGULARIZER_CASES[name]
        yield name, (f"response {case.target} ~ {case.loss}\nfeatures a, b, intercept\n"
                     f"regularize {case.term}\n")


@pytest.mark.parametrize(("name", "body"), list(nonconvex_specs()))
def test_every_nonconvex_kind_is_fitted_locally_from_its_relaxation(name, body, rng):
    frame, _, _ = data_for("squared", rng, 200)
    model = stratlang.load(body + "stratify g ~ path weight 0.7\n")
    fitted = model.fit(frame)
    info = fitted.info
    assert info["backend"] == "admm" and info["local"] and info["converged"]
    assert info["start"].startswith("the convex relaxation's fit (")
    assert name in info["nonconvex"]
    assert "ADMM is a local method" in fitted.summary()
    assert np.isfinite(fitted.objective.total)
    # the reference refuses, saying why and what fits instead
    with pytest.raises(NumericalError, match=r"is not convex: CVXPY cannot fit the model; ADMM "
                                             r"fits it as a local method.*use backend='admm'"):
        model.fit(frame, backend="cvxpy")
    check = model.verify(frame)
    assert check.relaxation and check.fast_objective == pytest.approx(fitted.objective.total)
    if check.bound:  # the relaxation's optimum is a lower bound on any point's objective
        assert check.cvxpy_objective <= fitted.objective.total + 1e-6
    # CVXPY values the relaxation at the local fit as stratlang does, less the relaxed parts
    ir = model.ir
    assert check.relaxed_at_fast is not None
    assert "cvxpy's value of the relaxation at the admm point" in str(check)
    if name in NONCONVEX_REGULARIZERS:
        term = next(t for t in ir.regularizers if t.kind.name == name)
        entry = REGULARIZERS[name]
        extra = 0.0 if entry.is_constraint else term.weight.value * entry.value(
            fitted.theta_array[:, :2], term.kind.p)  # (intercept excluded by default)
        assert check.relaxed_at_fast + extra == pytest.approx(fitted.objective.total,
                                                              rel=1e-9)
    assert "non-convex model: admm is a local method" in str(check)


@pytest.mark.parametrize("name", PROX_REGULARIZERS)
def test_every_regularizer_prox_beats_nearby_points(name, rng):
    """prox(v) minimizes t·r(x) + ½‖x − v‖² (over the set, for a constraint): no perturbed
    point does better — the one property ADMM needs of a prox, convex or not."""
    entry = REGULARIZERS[name]
    p = _params(name)
    shape = (3, 2, 2) if name == "trace" else (4, 5, 1)
    t = 0.7
    for _ in range(20):
        v = rng.normal(size=shape) * 2
        if name == "trace":
            v = v + np.swapaxes(v, 1, 2) + 4 * np.eye(2)
        best = entry.prox(v, t, p)

        def cost(x, v=v):
            value = 0.0 if entry.is_constraint else t * entry.value(x, p)
            return value + 0.5 * float(np.sum((x - v) ** 2))

        for _ in range(30):
            other = best + rng.normal(size=shape) * rng.choice([1e-3, 0.1, 1.0])
            if entry.is_constraint:
                other = entry.prox(other, 0.0, p)  # a point of the set
                assert entry.feasible(other, p)
            if name == "trace":
                other = (other + np.swapaxes(other, 1, 2)) / 2
            assert cost(best) <= cost(other) + 1e-9


def _params(name: str) -> dict:
    model = stratlang.load(f"response {REGULARIZER_CASES[name].target} ~ "
                           f"{REGULARIZER_CASES[name].loss}\nregularize "
                           f"{REGULARIZER_CASES[name].term.split('+')[0]}\n")
    return model.ir.regularizers[0].kind.p


# ---- nonzeros: best subset per stratum ---------------------------------------------------
def sparse_data(rng, k=6, n=400, p=8):
    z = rng.integers(0, k, n)
    x = rng.normal(size=(n, p))
    beta = np.zeros((k, p))
    beta[:, 0], beta[:, 1] = 2.0, -1.5
    beta[:, 2] = np.linspace(-1, 1, k)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(p)])
    frame["g"] = z
    frame["y"] = np.einsum("ij,ij->i", x, beta[z]) + 0.3 * rng.normal(size=n)
    return frame, beta


FEATURES8 = "features " + ", ".join(f"x{i}" for i in range(8)) + "\n"


def test_nonzeros_finds_the_true_support_and_is_optimal_on_it(rng):
    frame, beta = sparse_data(rng)
    spec = ("response y ~ squared\n" + FEATURES8 + "regularize nonzeros(k=3)\n"
            "stratify g ~ path weight 1\n")
    fitted = stratlang.load(spec).fit(frame)
    theta = fitted.theta_array[:, :, 0]
    assert np.all(np.sum(theta != 0, axis=1) <= 3)
    support = theta != 0
    assert np.all(support[:, :2])  # the two large coefficients, everywhere
    np.testing.assert_allclose(theta[:, :2], beta[:, :2], atol=0.15)
    # a local minimum is the optimum on its own support: CVXPY on that support agrees
    excluded = [f"x{i}" for i in range(8) if not support[:, i].any()]
    assert len(excluded) >= 4
    on_support = stratlang.load(spec.replace("regularize nonzeros(k=3)\n", "")
                                .replace(FEATURES8, "features " + ", ".join(
                                    f"x{i}" for i in range(8) if f"x{i}" not in excluded)
                                    + "\n"))
    if support[:, [i for i in range(8) if f"x{i}" not in excluded]].all():
        reference = on_support.fit(frame, backend="cvxpy", solver="clarabel")
        assert fitted.objective.total == pytest.approx(reference.objective.total, rel=1e-5)


def test_nonzeros_at_least_the_feature_count_is_no_constraint(rng):
    frame, _ = sparse_data(rng)
    body = "response y ~ squared\n" + FEATURES8 + "stratify g ~ path weight 1\n"
    free = stratlang.load(body).fit(frame, backend="cvxpy", solver="clarabel")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # converged: no warning
        bounded = stratlang.load(body + "regularize nonzeros(k=8)\n").fit(frame)
    assert bounded.objective.total == pytest.approx(free.objective.total, rel=1e-6)
    np.testing.assert_allclose(bounded.theta_array, free.theta_array, atol=1e-4)


def test_nonzeros_zero_keeps_only_what_it_excludes(rng):
    frame, _ = sparse_data(rng)
    fitted = stratlang.load("response y ~ squared\n" + FEATURES8.rstrip() + ", intercept\n"
                            "regularize nonzeros(k=0)\nstratify g ~ path weight 1\n").fit(frame)
    theta = fitted.theta
    assert np.all(theta.drop(columns="intercept").to_numpy() == 0)
    assert np.allclose(theta["intercept"], frame.groupby("g").y.mean(), atol=0.5)


@pytest.mark.parametrize(("response", "term", "column", "why"), [
    ("y ~ gaussian", "nonzeros(k=0)", 12, "loss 'gaussian' does not allow: its precision S "
     "(rows y) must be positive definite"),
    ("(y, y2) ~ gaussian", "box(-1, 1) + nonzeros(k=0) + elastic_net", 25, "loss 'gaussian' "
     "does not allow: its precision S (rows y, y2) must be positive definite"),
    ("y ~ gaussian", "box(0, 0)", 12, "loss 'gaussian' does not allow: its precision S (rows "
     "y) must be positive definite"),
    ("e ~ exponential", "nonzeros(k=0)", 12, "loss 'exponential' does not allow: its rate must "
     "be positive (−log 0 is infinite)"),
    ("c ~ poisson(eps=0.1)", "nonzeros(k=0)", 12, "loss 'poisson' does not allow: its rate is "
     "at least eps = 0.1"),
])
def test_a_constraint_to_zero_the_loss_cannot_take_is_refused_at_its_place(
        response, term, column, why, rng):
    # the fit once crashed evaluating the Gaussian likelihood at S = 0 (LinAlgError)
    frame = pd.DataFrame({"y": rng.normal(size=60), "y2": rng.normal(size=60),
                          "e": rng.exponential(size=60), "c": rng.poisson(2, 60),
                          "g": rng.integers(0, 3, 60)})
    with pytest.raises(stratlang.SpecError) as info:
        stratlang.load(f"response {response}\nregularize {term}\nstratify g ~ path weight 1\n"
                       ).fit(frame)
    assert [(d.span.line, d.span.column, d.message) for d in info.value.diagnostics] == [
        (2, column, "this constraint holds every parameter it acts on at 0, which " + why)]


def test_the_gaussian_likelihood_is_infinite_where_the_precision_is_singular():
    from stratlang.kinds.losses import Records

    gaussian = LOSSES["gaussian"]
    y = np.array([[0.5], [1.0]])
    theta = np.array([[[0.0], [0.0]], [[2.0], [1.0]]])  # S = 0 (no density), then S = 2
    records = Records(np.ones((2, 1)), y, np.zeros(2, dtype=np.int64))
    each = gaussian.nll_stratified(theta, y)
    assert each[0] == np.inf
    assert each[1] == pytest.approx(0.5 * (-np.log(2) + 2 * 1.0 - 2 * 1.0 + 0.5)
                                    + 0.5 * np.log(2 * np.pi))
    assert gaussian.records_value(records, theta, {"eps": 0.0}) == np.inf


# ---- mcp ----------------------------------------------------------------------------------
def test_mcp_with_a_huge_a_is_the_lasso(rng):
    frame, _ = sparse_data(rng)
    body = "response y ~ squared\n" + FEATURES8 + "stratify g ~ path weight 1\n"
    lasso = stratlang.load(body + "regularize 30 * l1\n").fit(frame, backend="cvxpy",
                                                               solver="clarabel")
    mcp = stratlang.load(body + "regularize 30 * mcp(a=1e6)\n").fit(frame)
    assert mcp.info["converged"]
    np.testing.assert_allclose(mcp.theta_array, lasso.theta_array, atol=2e-3)
    assert mcp.objective.total == pytest.approx(lasso.objective.total, rel=1e-4)


def test_mcp_leaves_large_coefficients_unshrunk_where_l1_shrinks_them(rng):
    frame, beta = sparse_data(rng)
    body = "response y ~ squared\n" + FEATURES8 + "stratify g ~ path weight 1\n"
    lasso = stratlang.load(body + "regularize 60 * l1\n").fit(frame)
    mcp = stratlang.load(body + "regularize 60 * mcp(a=0.5)\n").fit(frame)
    error = {name: np.abs(f.theta_array[:, :2, 0] - beta[:, :2]).mean()
             for name, f in (("lasso", lasso), ("mcp", mcp))}
    assert error["mcp"] < 0.05 < error["lasso"]
    assert np.all(np.abs(mcp.theta_array[:, 3:, 0]) < 1e-4)  # and still selects


@pytest.mark.parametrize(("t", "a"), [(0.5, 2.0), (3.0, 2.0)])
def test_mcp_prox_is_firm_or_hard_thresholding(t, a):
    v = np.linspace(-5, 5, 101).reshape(-1, 1, 1)
    out = REGULARIZERS["mcp"].prox(v, t, {"a": a})[:, 0, 0]
    m = np.abs(v[:, 0, 0])
    if t < a:  # firm: 0 up to t, linear to a, identity beyond
        np.testing.assert_allclose(out[m <= t], 0)
        np.testing.assert_allclose(out[m > a], v[m > a, 0, 0])
        mid = (m > t) & (m <= a)
        np.testing.assert_allclose(out[mid], np.sign(v[mid, 0, 0]) * (m[mid] - t) / (1 - t / a))
    else:  # hard at √(t·a)
        cut = np.sqrt(t * a)
        np.testing.assert_allclose(out[m > cut], v[m > cut, 0, 0])
        np.testing.assert_allclose(out[m < cut], 0)


# ---- tukey --------------------------------------------------------------------------------
def outlier_data(rng, n=500):
    frame, beta = sparse_data(rng, n=n)
    gross = rng.random(n) < 0.15
    frame["y"] = np.where(gross, frame.y + rng.choice([-1, 1], n) * rng.uniform(20, 40, n),
                          frame.y)
    return frame, beta


def test_tukey_ignores_gross_outliers_that_pull_squared_and_huber(rng):
    frame, beta = outlier_data(rng)
    body = FEATURES8 + "stratify g ~ path weight 1\n"
    errors = {}
    for loss in ("squared", "huber(M=2)", "tukey(c=2)"):
        fitted = stratlang.load(f"response y ~ {loss}\n" + body).fit(frame)
        errors[loss] = np.abs(fitted.theta_array[:, :, 0] - beta).mean()
    assert errors["tukey(c=2)"] < 0.05
    assert errors["tukey(c=2)"] < 0.5 * errors["huber(M=2)"] < 0.5 * errors["squared"]


def test_tukey_with_a_huge_c_is_least_squares(rng):
    frame, _ = sparse_data(rng)
    body = FEATURES8 + "regularize 0.5 * sum_squares\nstratify g ~ path weight 1\n"
    squared = stratlang.load("response y ~ squared\n" + body).fit(frame, backend="cvxpy",
                                                                 solver="clarabel")
    tukey = stratlang.load("response y ~ tukey(c=1e4)\n" + body).fit(frame)
    np.testing.assert_allclose(tukey.theta_array, squared.theta_array, atol=1e-4)
    assert tukey.objective.total == pytest.approx(squared.objective.total, rel=1e-5)


@pytest.mark.parametrize("loss", NONCONVEX_LOSSES)
def test_every_nonconvex_loss_takes_offsets_and_weights(loss, rng):
    frame, _ = outlier_data(rng, 300)
    frame["o"] = rng.normal(size=len(frame))
    frame["w"] = rng.choice([0, 1, 2], len(frame))
    body = FEATURES8 + "stratify g ~ path weight 1\n"
    with_offset = stratlang.load(f"response y ~ {loss} offset o\n" + body).fit(frame)
    moved = frame.assign(y=frame.y - frame.o)
    without = stratlang.load(f"response y ~ {loss}\n" + body).fit(moved)
    np.testing.assert_allclose(with_offset.theta_array, without.theta_array, atol=1e-4)
    weighted = stratlang.load(f"response y ~ {loss}\nweights w\n" + body).fit(frame)
    repeated = stratlang.load(f"response y ~ {loss}\n" + body).fit(
        frame.loc[frame.index.repeat(frame.w)])
    assert weighted.objective.total == pytest.approx(repeated.objective.total, rel=1e-5)
    np.testing.assert_allclose(weighted.theta_array, repeated.theta_array, atol=1e-3)


# ---- language, persistence ------------------------------------------------------------------
@pytest.mark.parametrize(("line", "expected"), [
    ("regularize nonzeros(k=-1)", [(2, 23, "regularizer 'nonzeros': 'k' must lie in [0, "
                                           "1,000,000]")]),
    ("regularize nonzeros(k=1.5)", [(2, 23, "regularizer 'nonzeros': 'k' must be a whole "
                                            "number")]),
    ("regularize nonzeros", [(2, 12, "regularizer 'nonzeros' needs argument 'k'")]),
    ("regularize 2 * mcp(a=0)", [(2, 22, "regularizer 'mcp': 'a' must be positive")]),
    ("regularize 2 * mcp(b=1)", [(2, 16, "regularizer 'mcp' needs argument 'a'"),
                                 (2, 20, "unknown argument 'b' for regularizer 'mcp'; expected "
                                         "one of 'a'")]),
    ("regularize 2 * nonzeros(k=1)", [(2, 12, "'nonzeros' is a constraint and takes no "
                                              "weight")]),
])
def test_nonconvex_misuse_is_positioned(line, expected):
    # (an argument whose value is refused is not also reported missing)
    assert problems(f"response y ~ squared\n{line}\n") == expected


def test_tukey_parameter_is_checked():
    assert problems("response y ~ tukey(c=-1)\n") == [(1, 22, "loss 'tukey': 'c' must be positive")]


def test_nonconvex_models_are_refused_for_personalized_models():
    spec = ("response y ~ squared\nfeatures x\nregularize 0.1 * mcp(a=1)\n"
            "personalize rank 2\ndistance u ~ abs\n")
    assert problems(spec) == [(3, 18, "personalized models support the regularizers zero, "
                                      "sum_squares, l1, l2, elastic_net; got 'mcp'")]


def test_a_local_fit_saves_loads_and_shows(rng, tmp_path):
    frame, _ = sparse_data(rng)
    spec = ("response y ~ tukey(c=3)\n" + FEATURES8 + "regularize nonzeros(k=2)\n"
            "stratify g ~ path weight 1\n")
    model = stratlang.load(spec)
    assert "response y ~ tukey(c=3)" in model.text and "regularize nonzeros(k=2)" in model.text
    assert nonconvex_parts(model.ir) == ("loss 'tukey'", "regularizer 'nonzeros'")
    fitted = model.fit(frame)
    path = fitted.save(tmp_path / "fit")
    again = stratlang.load_fitted(path)
    np.testing.assert_allclose(again.theta_array, fitted.theta_array)
    np.testing.assert_allclose(again.predict(frame).prediction, fitted.predict(frame).prediction)


@pytest.mark.parametrize("loss", NONCONVEX_LOSSES)
def test_every_nonconvex_loss_relaxes_to_a_convex_loss_with_a_prox(loss):
    entry = LOSSES[loss]
    defaults = {p.name: p.default for p in entry.params}
    name, params = entry.relaxation(defaults)
    relaxed = LOSSES[name]
    assert relaxed.convex and relaxed.admm_ready(params)
    assert set(params) == {p.name for p in relaxed.params}
    for p in relaxed.params:
        assert p.check is None or p.check(params[p.name]) is None
    assert relaxed.domain == entry.domain and relaxed.features == entry.features


@pytest.mark.parametrize("k", [1, 2, 4])
def test_a_local_fit_is_never_worse_than_its_projected_start(k, rng):
    """ADMM from the relaxation may drift to a poor support; the relaxation's fit projected
    onto the constraint is a second start, the better point is kept, and it is polished:
    the convex problem on its support solved."""
    from stratlang.backends.objective import stratified_objective
    from stratlang.data.design import bind
    from stratlang.solvers.prox import keep_largest

    frame, _ = sparse_data(rng, n=300)
    frame["y"] = 10 * frame.y + rng.standard_t(3, len(frame)) * 5
    body = "response y ~ squared\n" + FEATURES8.rstrip() + ", intercept\n" + (
        "regularize 0.4 * sum_squares\nstratify g ~ cycle weight 2.5\n")
    model = stratlang.load(body + f"regularize nonzeros(k={k})\n")
    fitted = model.fit(frame)
    relaxed = stratlang.load(body).fit(frame, backend="cvxpy", solver="clarabel").theta_array
    projected = relaxed.copy()
    projected[:, :8] = keep_largest(relaxed[:, :8], k)
    design = bind(model.ir, frame)
    weights = model.ir.weight_values()
    assert fitted.objective.total <= stratified_objective(design, projected, weights).total + 1e-6
    # and it is polished on its support: no entry kept can move to lower the objective
    theta = fitted.theta_array
    base = fitted.objective.total
    for index in zip(*np.nonzero(theta), strict=True):
        step = np.zeros_like(theta)
        step[index] = 1e-4
        up = stratified_objective(design, theta + step, weights).total
        down = stratified_objective(design, theta - step, weights).total
        assert (up - down) / 2e-4 == pytest.approx(0, abs=1e-3 * max(abs(base), 1) ** 0.5)


def test_a_kept_projected_start_is_labelled_as_what_it_is(rng, monkeypatch):
    """When ADMM from the projected relaxation ends worse than the projection, the
    projection is kept: its status says so, no iteration count or residual of the
    discarded run is claimed for it, and it is not called converged."""
    from stratlang.backends import admm as backend
    from stratlang.backends.objective import stratified_objective
    from stratlang.data.design import bind

    frame, _ = sparse_data(rng, n=300)
    model = stratlang.load("response y ~ squared\n" + FEATURES8 + "regularize nonzeros(k=2)\n"
                           "stratify g ~ path weight 1\n")
    design, weights = bind(model.ir, frame), model.ir.weight_values()
    relaxed = stratlang.load("response y ~ squared\n" + FEATURES8 + "stratify g ~ path "
                             "weight 1\n").fit(frame, backend="cvxpy").theta_array
    worse = np.zeros_like(relaxed)  # θ = 0: worse than the projected relaxation
    info = {"converged": True, "status": "optimal", "iterations": 777,
            "primal_residual": 1e-9, "dual_residual": 1e-9, "history": []}
    monkeypatch.setattr(backend, "fit_admm", lambda *args, **kwargs: (worse, dict(info), None))
    theta, kept, state, start = backend._second_start(
        design, weights, {}, relaxed, (worse, dict(info), None), "the relaxation")
    assert stratified_objective(design, theta, weights).total < stratified_objective(
        design, worse, weights).total
    assert kept["status"] == "projected_start" and kept["converged"] is False
    assert kept["iterations"] == 0 and kept["discarded_iterations"] == 777
    assert "primal_residual" not in kept and state is None
    assert start.endswith("; ADMM from it (777 iterations) ended worse, so the projection "
                          "is kept")
