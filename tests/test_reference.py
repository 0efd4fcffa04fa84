"""The CVXPY reference backend against independent answers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, Ridge

import stratlang
from stratlang.backends.objective import stratified_objective
from stratlang.backends.reference import StratifiedProblem
from stratlang.data.design import bind
from stratlang.kinds import GRAPHS, LOSSES, REGULARIZERS

from .cases import GRAPH_CASES, REGULARIZER_CASES, data_for, graph_frame


def test_single_stratum_ridge_equals_scikit_learn(rng):
    n = 200
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    frame["y"] = frame @ np.array([1.0, -2.0, 0.5]) + 3 + rng.normal(size=n)
    lam = 4.0
    fitted = stratlang.load(f"response y ~ squared\nfeatures a, b, c, intercept\n"
                            f"regularize {lam} * sum_squares\n").fit(frame, solver="clarabel")
    # ours: Σ(y − xᵀθ)² + (λ/2)‖w‖² (intercept excluded) ⇔ Ridge(alpha = λ/2)
    ridge = Ridge(alpha=lam / 2).fit(frame[["a", "b", "c"]], frame.y)
    theta = fitted.theta.iloc[0]
    np.testing.assert_allclose(theta[["a", "b", "c"]], ridge.coef_, atol=1e-6)
    assert theta["intercept"] == pytest.approx(ridge.intercept_, abs=1e-6)


def test_single_stratum_logistic_equals_scikit_learn(rng):
    n = 300
    frame = pd.DataFrame(rng.normal(size=(n, 2)), columns=["a", "b"])
    logits = 1.5 * frame.a - frame.b + 0.3
    frame["y"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logits)), "yes", "no")
    lam = 2.0
    fitted = stratlang.load(f"response y ~ logistic\nfeatures a, b, intercept\n"
                            f"regularize {lam} * sum_squares\n").fit(frame, solver="clarabel")
    # ours: Σ log(1 + e^{−y xᵀθ}) + (λ/2)‖w‖² ⇔ scikit-learn's C = 1/λ
    ref = LogisticRegression(C=1 / lam, tol=1e-12, max_iter=10000).fit(frame[["a", "b"]], frame.y)
    theta = fitted.theta.iloc[0]
    np.testing.assert_allclose(theta[["a", "b"]], ref.coef_[0], atol=1e-5)
    assert theta["intercept"] == pytest.approx(ref.intercept_[0], abs=1e-5)
    assert fitted.classes == ("no", "yes")


SPEC = """response y ~ squared
features x1, x2, intercept
regularize 0.1 * sum_squares
stratify sex ~ complete weight {w_sex}
stratify age ~ path weight {w_age}
"""


def test_huge_graph_weight_gives_the_common_model(regression_frame):
    strat = stratlang.load(SPEC.format(w_sex=1e7, w_age=1e7)).fit(regression_frame,
                                                                 solver="clarabel")
    # with all θ_k equal the local regularizer is counted K times: λ → Kλ
    k = strat.strata.k
    common = stratlang.load(SPEC.format(w_sex=1, w_age=1).replace("0.1 *", f"{0.1 * k} *")
                            ).common().fit(regression_frame, solver="clarabel")
    spread = strat.theta_array.max(axis=0) - strat.theta_array.min(axis=0)
    assert spread.max() < 1e-4
    np.testing.assert_allclose(strat.theta_array.mean(axis=0), common.theta_array[0], atol=1e-4)


def test_zero_graph_weight_gives_separate_models(regression_frame):
    strat = stratlang.load(SPEC.format(w_sex=0, w_age=0)).fit(regression_frame, solver="clarabel")
    single = stratlang.load("response y ~ squared\nfeatures x1, x2, intercept\n"
                            "regularize 0.1 * sum_squares\n")
    for (sex, age), group in regression_frame.groupby(["sex", "age"]):
        alone = single.fit(group, solver="clarabel")
        np.testing.assert_allclose(strat.theta.loc[(sex, age)].to_numpy(),
                                   alone.theta_array[0, :, 0], atol=1e-6)


def test_empty_stratum_is_the_weighted_mean_of_its_neighbours(rng):
    """Paper §3: a stratum without data takes the weighted average of its neighbours."""
    frame = pd.DataFrame({"t": np.repeat([0, 1, 3, 4], 30), "x": rng.normal(size=120)})
    frame["y"] = frame.x * frame.t + rng.normal(size=120) * 0.1
    spec = ("response y ~ squared\nfeatures x, intercept\n"
            "stratify t ~ path weight 2 nodes 0..4\n")
    fitted = stratlang.load(spec).fit(frame, solver="clarabel")
    theta = fitted.theta
    np.testing.assert_allclose(theta.loc[2], (theta.loc[1] + theta.loc[3]) / 2, atol=1e-6)
    # on a star around a hub with no data, the hub is the mean of the leaves
    star = stratlang.load("response y ~ squared\nfeatures x, intercept\nstratify t ~ star "
                          "weight 3\n").fit(frame, solver="clarabel")
    hub = star.theta.loc["(common)"]
    np.testing.assert_allclose(hub, star.theta.drop(index="(common)").mean(), atol=1e-6)


REGULARIZER_FOR = {"gaussian": "0.1 * trace"}


@pytest.mark.parametrize("loss", [n for n in LOSSES.names() if LOSSES[n].convex])
def test_every_loss_fits_and_its_objective_matches_cvxpy(loss, rng):
    frame, target, features = data_for(loss, rng)
    reg = REGULARIZER_FOR.get(loss, "0.1 * sum_squares + 0.05 * l1")
    spec = (f"response {target} ~ {loss}\n{features}\nregularize {reg}\n"
            "stratify g ~ path weight 0.5\n")
    model = stratlang.load(spec)
    fitted = model.fit(frame)
    design = bind(model.ir, frame)
    weights = model.ir.weight_values()
    problem = StratifiedProblem(design, weights)
    theta, info = problem.solve(weights)
    ours = stratified_objective(design, theta, weights).total
    constant = _cvxpy_constant(loss, design)
    assert ours == pytest.approx(info["cvxpy_objective"] + constant, rel=1e-6, abs=1e-6)
    # the default backend (ADMM when it applies) is at least as good as the reference
    assert fitted.objective.total <= ours + 1e-6 * abs(ours)
    assert fitted.objective.total == pytest.approx(ours, rel=1e-4)
    scores = fitted.score(frame)
    assert all(np.isfinite(v) for k, v in scores.items() if k != "r2")


def _cvxpy_constant(loss: str, design) -> float:
    """The aggregated distribution losses are written with kl_div: equal up to a constant."""
    if loss not in ("bernoulli", "poisson", "exponential"):
        return 0.0
    k = design.strata.k
    n = np.bincount(design.z, minlength=k).astype(float)
    s = np.bincount(design.z, weights=design.y[:, 0], minlength=k)

    def xlogx(v):
        return np.where(v > 0, v * np.log(np.where(v > 0, v, 1)), 0.0)

    def shift(a, b):  # −a log x + b x = kl_div(a, b x) − [a log a − a log b − a]
        mask = (a > 0) & (b > 0)
        return -np.sum(np.where(mask, xlogx(a) - a * np.log(np.where(b > 0, b, 1)) - a, 0.0))

    if loss == "poisson":
        return shift(s, n)
    if loss == "bernoulli":
        return shift(s, n) + shift(n - s, n) - np.sum(n)
    return shift(np.where(s > 0, n, 0.0), s)


def test_distribution_estimates_have_closed_forms(rng):
    frame = pd.DataFrame({"y": rng.poisson(3.0, 500), "b": rng.integers(0, 2, 500),
                          "e": rng.exponential(2.0, 500), "g1": rng.normal(1, 2, 500)})
    frame["g2"] = frame.g1 * 0.5 + rng.normal(0, 1, 500)
    # interior-point solutions are accurate to ~√(objective tolerance) in θ: compare at 1e-4
    poisson = stratlang.load("response y ~ poisson\n").fit(frame)
    assert poisson.theta_array[0, 0, 0] == pytest.approx(frame.y.mean(), rel=1e-4)
    bern = stratlang.load("response b ~ bernoulli\n").fit(frame)
    assert bern.theta_array[0, 0, 0] == pytest.approx(frame.b.mean(), rel=1e-4)
    expo = stratlang.load("response e ~ exponential\n").fit(frame)
    assert expo.theta_array[0, 0, 0] == pytest.approx(1 / frame.e.mean(), rel=1e-4)
    gauss = stratlang.load("response (g1, g2) ~ gaussian\n").fit(frame)
    ys = frame[["g1", "g2"]].to_numpy()
    cov = np.cov(ys.T, bias=True)
    prec = gauss.theta_array[0, :2, :]
    np.testing.assert_allclose(np.linalg.inv(prec), cov, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gauss.predict(frame.head(1)).to_numpy()[0], ys.mean(axis=0),
                               rtol=1e-4, atol=1e-5)


def test_constraints_hold(rng):
    frame = pd.DataFrame({"a": rng.normal(size=80)})
    frame["y"] = -2 * frame.a + rng.normal(size=80) * 0.1
    fitted = stratlang.load("response y ~ squared\nfeatures a\nregularize nonnegative exclude []\n"
                            ).fit(frame)
    assert fitted.theta_array.min() >= -1e-7
    boxed = stratlang.load("response y ~ squared\nfeatures a\nregularize box(-1, 1) exclude []\n"
                           ).fit(frame)
    assert boxed.theta_array[0, 0, 0] == pytest.approx(-1, abs=1e-6)


def test_infeasible_problem_is_reported(rng):
    frame = pd.DataFrame({"a": rng.normal(size=20), "y": rng.normal(size=20)})
    model = stratlang.load("response y ~ squared\nfeatures a\nregularize nonnegative exclude []\n"
                           "regularize box(-2, -1) exclude []\n")
    with pytest.raises(stratlang.NumericalError, match="infeasible"):
        model.fit(frame, solver="clarabel")


def test_sweep_resolves_one_compiled_problem(regression_frame):
    model = stratlang.load(SPEC.format(w_sex=1, w_age="{0.1, 10, 1000}"))
    table = model.sweep(regression_frame, validate=regression_frame)
    assert list(table["stratify.age"]) == [0.1, 10, 1000]
    for _, row in table.iterrows():
        single = model.fit(regression_frame, weights={"stratify.age": row["stratify.age"]})
        assert row["objective"] == pytest.approx(single.objective.total, rel=1e-5)
    # more smoothing: worse training fit
    assert table["valid_rmse"].is_monotonic_increasing


def test_a_sweep_needs_a_value_to_fit(regression_frame):
    model = stratlang.load(SPEC.format(w_sex=1, w_age="logspace(1, 100, 3)"))
    with pytest.raises(stratlang.StratlangError, match=r"'stratify\.age' is a sweep"):
        model.fit(regression_frame)


def _objective_agrees(model, frame) -> None:
    design = model.bind(frame)
    weights = model.ir.weight_values()
    theta, info = StratifiedProblem(design, weights).solve(weights)
    ours = stratified_objective(design, theta, weights).total
    assert ours == pytest.approx(info["cvxpy_objective"], rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("graph", GRAPHS.names())
def test_every_graph_kind_fits(graph, rng, tmp_path):
    case = GRAPH_CASES[graph]
    frame = graph_frame(rng, 200, tmp_path)
    spec = tmp_path / "m.strat"
    spec.write_text("response r ~ squared\nfeatures x, intercept\n" + case.statement())
    model = stratlang.load(spec, graphs=case.graphs())
    fitted = model.fit(frame)
    assert fitted.strata.k == case.strata
    _objective_agrees(model, frame)


def test_a_star_around_a_stratum_of_the_data(rng):
    frame = graph_frame(rng, 200)
    model = stratlang.load("response r ~ squared\nfeatures x, intercept\n"
                           "stratify g ~ star(center=2) weight 3\n")
    assert model.fit(frame).strata.k == 4  # no hub added: the center is a node of the data
    _objective_agrees(model, frame)


def test_a_star_around_a_center_absent_from_the_data_adds_it_under_its_label(rng):
    # as the graph's documentation says: the data-free hub takes the center's label, and
    # is the common model (the mean of the other nodes' models, for a squared loss)
    frame = graph_frame(rng, 200)
    model = stratlang.load("response r ~ squared\nfeatures intercept\n"
                           "stratify g ~ star(center=9) weight 3\n")
    theta = model.fit(frame, backend="cvxpy").theta
    assert list(theta.index) == [0, 1, 2, 3, 9]
    assert "a center absent from the data is added so, under its own label" in (
        GRAPHS["star"].doc)
    np.testing.assert_allclose(theta.loc[9], theta.drop(index=9).mean(), atol=1e-6)


@pytest.mark.parametrize("name", [n for n in REGULARIZERS.names() if REGULARIZERS[n].convex])
def test_every_regularizer_fits(name, rng):
    reg, loss, target = (REGULARIZER_CASES[name].term, REGULARIZER_CASES[name].loss,
                         REGULARIZER_CASES[name].target)
    frame = pd.DataFrame({"g": rng.integers(0, 3, 150), "x": rng.normal(size=150),
                          "x2": rng.normal(size=150)})
    frame["y"] = frame.x - 0.5 * frame.x2 + rng.normal(size=150)
    frame["y2"] = 0.3 * frame.y + rng.normal(size=150)
    features = "" if loss == "gaussian" else "features x, x2, intercept"
    model = stratlang.load(f"response {target} ~ {loss}\n{features}\nregularize {reg}\n"
                           "stratify g ~ path weight 1\n")
    fitted = model.fit(frame)
    assert np.isfinite(fitted.objective.total)
    _objective_agrees(model, frame)


# ---- the reference's own accuracy ----------------------------------------------------------
NONNEGATIVE = ("response y ~ squared\nfeatures x, intercept\nregularize nonnegative\n"
               "stratify g ~ path weight 1\n")


def _frame(rng) -> pd.DataFrame:
    frame = pd.DataFrame({"g": rng.integers(0, 3, 150), "x": rng.normal(size=150)})
    frame["y"] = -2 * frame.x - frame.g + rng.normal(size=150)  # (x's weight held at 0)
    return frame


def test_the_default_reference_is_clarabel_at_tight_tolerances_and_says_how_accurate(rng):
    frame = _frame(rng)  # a QP: CVXPY's own default would pick OSQP (a weak reference)
    fitted = stratlang.load(NONNEGATIVE).fit(frame, backend="cvxpy")
    assert fitted.info["solver"] == "CLARABEL"
    assert fitted.info["attempts"] == ["CLARABEL at tight tolerances: optimal"]
    accuracy = fitted.info["accuracy"]
    assert accuracy["duality_gap"] < 1e-8 and accuracy["constraint_violation"] <= 1e-9
    result = stratlang.load(NONNEGATIVE).verify(frame)
    assert "; CLARABEL, optimal, duality gap " in str(result).splitlines()[0]
    assert result.relative_gap < 1e-6


def test_a_reference_point_slightly_outside_the_constraints_is_projected(rng, monkeypatch):
    frame = _frame(rng)
    solve = StratifiedProblem.solve

    def off_by_a_little(self, *args, **kwargs):  # as a solver's tolerance leaves it
        theta, info = solve(self, *args, **kwargs)
        info["accuracy"]["constraint_violation"] = 3e-5
        return theta - 3e-5, info

    monkeypatch.setattr(StratifiedProblem, "solve", off_by_a_little)
    fitted = stratlang.load(NONNEGATIVE).fit(frame, backend="cvxpy")
    assert np.isfinite(fitted.objective.total) and fitted.theta["x"].min() == 0
    assert fitted.info["note"] == ("the solver's point violated the constraints by up to "
                                   "3e-05; θ is its projection onto them")
    result = stratlang.load(NONNEGATIVE).verify(frame)
    assert "θ projected onto the constraints" in str(result)
    assert result.relative_gap < 1e-3  # a number, not nan


# ---- an objective unbounded below ----------------------------------------------------------
def _unbounded_frame(rng) -> pd.DataFrame:
    frame = pd.DataFrame({"g": rng.integers(0, 2, 40), "x": rng.normal(size=40), "u": 0.0})
    frame["y"] = rng.exponential(1.0, 40)
    frame.loc[3, ["u", "y"]] = [1.0, 0.0]  # u is nonzero only where y = 0
    return frame


@pytest.mark.parametrize("backend", ["cvxpy", "admm"])
def test_an_unbounded_objective_is_said_to_be_unbounded(backend, rng):
    frame = _unbounded_frame(rng)
    model = stratlang.load("response y ~ exponential_regression\nfeatures x, u, intercept\n"
                           "stratify g ~ path weight 1\n")
    with pytest.raises(stratlang.NumericalError) as info:
        model.fit(frame, backend=backend)
    assert str(info.value) == (
        f"backend '{backend}': the objective is unbounded below: moving u (in 2 of 2 strata) "
        "lowers the loss of the records in row 3 without end, and nothing else in the model "
        "resists (loss 'exponential_regression' falls without bound there); add a "
        "regularizer on those parameters or drop the feature")
    # a penalty on u bounds it: both fit, and agree
    bounded = stratlang.load("response y ~ exponential_regression\nfeatures x, u, intercept\n"
                             "regularize 0.5 * sum_squares\nstratify g ~ path weight 1\n")
    assert bounded.fit(frame, backend=backend).objective.total == pytest.approx(
        bounded.fit(frame, backend="cvxpy").objective.total, rel=1e-6)


def test_a_stratum_of_zeros_alone_makes_an_exponential_rate_unbounded():
    frame = pd.DataFrame({"g": [0, 0, 1, 1], "y": [1.0, 2.0, 0.0, 0.0]})
    for weight, unbounded in ((0, True), (1, False)):  # (a graph weight ties it to g = 0)
        model = stratlang.load(f"response y ~ exponential\nstratify g ~ path weight {weight}\n")
        for backend in ("cvxpy", "admm"):
            if unbounded:
                with warnings.catch_warnings():
                    warnings.simplefilter("error")  # (no "did not converge" first)
                    with pytest.raises(stratlang.NumericalError, match=r"unbounded below: "
                                       r"moving rate .*rows 2, 3 without end"):
                        model.fit(frame, backend=backend)
            else:
                assert np.isfinite(model.fit(frame, backend=backend).objective.total)


def test_the_reference_falls_back_when_its_first_solve_fails(rng, monkeypatch):
    from stratlang.backends import reference_solvers

    monkeypatch.setattr(reference_solvers, "TIGHT_CLARABEL", {"not_a_setting": 1})
    fitted = stratlang.load(NONNEGATIVE).fit(_frame(rng), backend="cvxpy")
    first, second = fitted.info["attempts"]
    assert first.startswith("CLARABEL at tight tolerances: ") and "not_a_setting" in first
    assert second == "CLARABEL at its default tolerances: optimal"
    assert fitted.info["status"] == "optimal"
