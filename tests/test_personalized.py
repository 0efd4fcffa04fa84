"""The CVXPY reference for personalized models: objective evaluation and convex pieces."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Lasso

import stratlang
from stratlang.backends import personalized_reference as P
from stratlang.backends.subgradient import to_problem
from stratlang.data.personalized import bind_personalized

from .conftest import EXAMPLES

SPEC = """response y ~ squared
features x1, x2
regularize {lam} * l1
personalize rank 2 radius {radius} match {gamma} metric_penalty {nu}
  distance u ~ abs
  distance g ~ discrete
"""


@pytest.fixture
def design(rng):
    n = 40
    frame = pd.DataFrame({"x1": rng.uniform(-1, 1, n), "x2": rng.uniform(-1, 1, n),
                          "u": rng.uniform(0, 1, n), "g": rng.choice(["a", "b"], n)})
    frame["y"] = frame.x1 * frame.u + frame.x2 * (frame.u > 0.5) + 0.1 * rng.normal(size=n)
    model = stratlang.load(SPEC.format(lam=0.5, radius=0.8, gamma=2.0, nu=0.3))
    return bind_personalized(model.ir, frame)


def brute_force_objective(d, z, q, phi, lam, radius, gamma, nu) -> float:
    """Independent double loop over the definition."""
    theta = z @ q
    total = np.sum((d.y[:, 0] - np.sum(d.x * theta, axis=1)) ** 2) + lam * np.abs(theta).sum()
    u = d.covariates[0][:, 0]
    g = d.covariates[1][:, 0]
    for i in range(d.n):
        for j in range(d.n):
            gap = np.linalg.norm(z[i] - z[j])
            if i != j and gap < radius:
                rho = phi[0] * abs(u[i] - u[j]) + phi[1] * float(g[i] != g[j])
                total += gamma * (rho - gap) ** 2
    return total + nu * np.sum((phi - 1) ** 2)


def test_objective_equals_the_definition(design, rng):
    z, q, phi = rng.normal(size=(design.n, 2)) * 0.3, rng.normal(size=(2, 2)), np.array([0.5, 2.0])
    parts = P.objective(design, z, q, phi)
    expected = brute_force_objective(design, z, q, phi, 0.5, 0.8, 2.0, 0.3)
    assert parts["total"] == pytest.approx(expected, rel=1e-12)
    assert parts["matching"] > 0 and parts["metric_penalty"] == pytest.approx(0.3 * 1.25)


def test_population_model_equals_scikit_learn_lasso(design):
    theta = P.population_fit(design, solver="clarabel")
    # ours: Σ(y − xᵀθ)² + λ‖θ‖₁ ⇔ Lasso(alpha = λ / (2N)) without intercept
    ref = Lasso(alpha=0.5 / (2 * design.n), fit_intercept=False, tol=1e-12, max_iter=100000)
    ref.fit(design.x, design.y[:, 0])
    np.testing.assert_allclose(theta, ref.coef_, atol=1e-6)


def test_samples_fit_is_optimal_with_q_fixed(design, rng):
    q = rng.normal(size=(2, 2))
    z = P.samples_fit(design, q, solver="clarabel")
    base = P.objective(design, z, q, np.ones(2), weights={"match": 0.0})
    for _ in range(20):  # no random perturbation improves the γ = 0 objective
        dz = z + 1e-3 * rng.normal(size=z.shape)
        assert P.objective(design, dz, q, np.ones(2), weights={"match": 0.0})["total"] >= \
            base["total"] - 1e-9


def test_personalized_model_is_not_fitted_by_cvxpy():
    model = stratlang.load(EXAMPLES / "personalized.strat")
    with pytest.raises(stratlang.StratlangError, match="non-convex"):
        model.fit(backend="cvxpy")


def test_solver_objective_equals_the_cvxpy_evaluation(design, rng):
    from stratlang.solvers import personalized as S

    problem = to_problem(design)
    z, q = rng.normal(size=(design.n, 2)) * 0.3, rng.normal(size=(2, 2))
    phi = np.array([0.7, 1.4])
    ours = S.objective(problem, z, q, phi, radius=0.8)
    reference = P.objective(design, z, q, phi)
    for key in ("loss", "regularization", "matching", "metric_penalty", "total"):
        assert ours[key] == pytest.approx(reference[key], rel=1e-9, abs=1e-12), key


@pytest.mark.parametrize("reg", ["0.3 * sum_squares", "0.2 * l2", "0.4 * elastic_net(0.5)"])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_gradients_pass_finite_differences(loss, reg, rng):
    from stratlang.solvers import personalized as S

    n = 30
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                          "u": rng.uniform(0, 1, n), "g": rng.choice(["a", "b"], n)})
    frame["y"] = (frame.x1 > 0).astype(int) if loss == "logistic" else frame.x1 * frame.u
    spec = SPEC.replace("squared", loss).replace("{lam} * l1", reg)
    model = stratlang.load(spec.format(lam=0, radius=0.9, gamma=1.5, nu=0.2))
    problem = to_problem(bind_personalized(model.ir, frame))
    z, q = rng.normal(size=(n, 2)), rng.normal(size=(2, 2)) + 0.5
    phi = np.array([0.8, 1.3])
    pairs = S.pairs_for(problem, z, 0.9)
    g_z, g_q, g_phi = S.gradients(problem, z, q, phi, pairs)

    def value(zz, qq, pp):
        return S.objective(problem, zz, qq, pp, 0.9, pairs)["total"]

    h = 1e-6
    for array, grad in ((z, g_z), (q, g_q), (phi, g_phi)):
        for index in list(np.ndindex(array.shape))[:12]:
            up, down = array.copy(), array.copy()
            up[index] += h
            down[index] -= h
            args = {id(z): (up, q, phi), id(q): (z, up, phi), id(phi): (z, q, up)}[id(array)]
            args_down = {id(z): (down, q, phi), id(q): (z, down, phi), id(phi): (z, q, down)}[id(array)]
            numeric = (value(*args) - value(*args_down)) / (2 * h)
            assert grad[index] == pytest.approx(numeric, rel=1e-5, abs=1e-6)


def test_population_fista_equals_cvxpy(design):
    from stratlang.solvers import personalized as S

    theta = S.population(to_problem(design))
    np.testing.assert_allclose(theta, P.population_fit(design, solver="clarabel"), atol=1e-6)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_offsets_and_weights_in_personalized_models(loss, rng):
    """The solver's objective, its gradients and its population model agree with the
    CVXPY reference when records carry offsets and weights."""
    from stratlang.solvers import personalized as S

    n = 60
    frame = pd.DataFrame({"x1": rng.uniform(-1, 1, n), "x2": rng.uniform(-1, 1, n),
                          "u": rng.uniform(0, 1, n), "g": rng.choice(["a", "b"], n),
                          "o": rng.normal(size=n) * 0.5, "w": rng.choice([0.0, 1.0, 2.5], n)})
    frame["y"] = frame.x1 * frame.u + 0.1 * rng.normal(size=n)
    if loss == "logistic":
        frame["y"] = (frame.y > 0).astype(int)
    spec = SPEC.format(lam=0.5, radius=0.8, gamma=2.0, nu=0.3).replace(
        "response y ~ squared", f"response y ~ {loss} offset o") + "weights w\n"
    model = stratlang.load(spec)
    design = bind_personalized(model.ir, frame)
    problem = to_problem(design)
    z, q, phi = rng.normal(size=(n, 2)), rng.normal(size=(2, 2)), np.array([0.7, 1.2])
    ours = S.objective(problem, z, q, phi, radius=0.8)
    reference = P.objective(design, z, q, phi)
    assert ours == pytest.approx(reference, rel=1e-9)
    theta = S.population(problem)
    np.testing.assert_allclose(theta, P.population_fit(design, solver="clarabel"), atol=1e-5)
    fitted = model.fit(frame, options={"validation": 0, "progress": False})
    assert np.isfinite(fitted.objective.total)
    assert fitted.predict(frame).shape[0] == n


def _two_groups(rng, n=300):
    """Two regimes selected by a covariate: slope +1 for u < 0.5, −1 above."""
    u = rng.uniform(0, 1, n)
    x = rng.uniform(-1, 1, n)
    frame = pd.DataFrame({"x": x, "u": u, "g": np.where(u < 0.5, "low", "high"),
                          "noise": rng.uniform(0, 1, n)})
    frame["y"] = np.where(u < 0.5, 1.0, -1.0) * x + 0.05 * rng.normal(size=n)
    return frame


PERSONAL = """response y ~ squared
features x
personalize rank 1 radius 0.3 match 0.001 metric_penalty 1 neighbors 5 learning_rate 0.005 \
    decay 0.99 max_iter 300
  distance u ~ abs
  distance noise ~ abs
"""


def test_fit_predict_and_learned_weights(rng):
    frame = _two_groups(rng)
    fitted = stratlang.load(PERSONAL).fit(frame.iloc[:250])
    assert fitted.info["backend"] == "subgradient"
    assert fitted.theta.shape == (250, 1) and list(fitted.phi.index) == ["u", "noise"]
    assert np.all(fitted.phi.to_numpy() >= 0)
    test = frame.iloc[250:]
    population = float(np.mean((test.y - test.x * fitted.theta_pop[0]) ** 2))
    assert fitted.score(test)["rmse"] ** 2 < 0.5 * population
    assert fitted.predict(test).shape == (50, 1)


def test_deterministic_given_the_seed_and_saved(rng, tmp_path):
    frame = _two_groups(rng, 120)
    first = stratlang.load(PERSONAL).fit(frame)
    second = stratlang.load(PERSONAL).fit(frame)
    np.testing.assert_array_equal(first.theta_array, second.theta_array)
    again = stratlang.load_fitted(first.save(tmp_path / "p.json"))
    pd.testing.assert_frame_equal(again.predict(frame), first.predict(frame))
    np.testing.assert_array_equal(again.phi_array, first.phi_array)


def test_categorical_and_euclidean_neighbours_use_the_learned_metric(rng):
    from stratlang.backends.subgradient import nearest
    from stratlang.data.frames import Binder
    from stratlang.data.personalized import bind_covariates

    frame = pd.DataFrame({"a": [0.0, 0.1, 0.9, 1.0], "b": [0.0, 0.0, 0.0, 5.0],
                          "c": ["p", "q", "p", "q"]})
    spec = ("response y ~ squared\nfeatures a\npersonalize rank 1\n"
            "  distance (a, b) ~ euclidean\n  distance c ~ discrete\n")
    model = stratlang.load(spec).ir
    encoded = bind_covariates(Binder(model, frame))
    train, query = np.arange(3), np.array([3])
    # ρ = φ₁‖(a, b) − ·‖ + φ₂[c ≠ ·]: brute force, checked by hand
    assert nearest(model, encoded, np.array([1.0, 0.0]), train, query, 1)[0, 0] == 2
    assert nearest(model, encoded, np.array([0.0, 1.0]), train, query, 1)[0, 0] == 1


def test_divergence_is_a_numerical_error(rng):
    frame = _two_groups(rng, 200)
    spec = PERSONAL.replace("match 0.001", "match 10").replace("learning_rate 0.005",
                                                                "learning_rate 1")
    with pytest.raises(stratlang.NumericalError, match="diverged at epoch"):
        stratlang.load(spec).fit(frame)


@pytest.fixture
def smooth_design(rng):
    return smooth_design_for(rng)


def smooth_design_for(rng):
    """γ = 0 and a smooth penalty: the convex special cases."""
    n = 60
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                          "u": rng.uniform(0, 1, n)})
    frame["y"] = frame.x1 * frame.u + frame.x2 + 0.1 * rng.normal(size=n)
    spec = ("response y ~ squared\nfeatures x1, x2\nregularize 0.5 * sum_squares\n"
            "personalize rank 2 radius 0.3 match 0 metric_penalty 0\n  distance u ~ abs\n")
    return bind_personalized(stratlang.load(spec).ir, frame)


def test_rank_p_without_matching_reaches_the_cvxpy_optimum(smooth_design):
    """Convex special case: rank = p and γ = 0 is the per-sample problem with Q = I."""
    from stratlang.solvers import personalized as S

    problem = to_problem(smooth_design)
    z = P.samples_fit(smooth_design, np.eye(2), solver="clarabel")
    optimum = P.objective(smooth_design, z, np.eye(2), np.ones(1))["total"]
    fit = S.fit(problem, S.Settings(rank=2, radius=0.3, learning_rate=0.05, decay=1.0,
                                    max_iter=3000, progress=False))
    value = S.objective(problem, fit.z, fit.q, fit.phi, 0.3)["total"]
    assert value == pytest.approx(optimum, rel=1e-4)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_fixed_q_keeps_the_atoms_and_reaches_the_optimum(seed, scale):
    """γ = 0 with Q fixed is convex in Z (per sample). The personalized rates, capped at
    1 / L_i, reach the CVXPY optimum on every draw, also when Q is not orthonormal."""
    from stratlang.solvers import personalized as S

    design = smooth_design_for(np.random.default_rng(seed))
    c, s = np.cos(0.7), np.sin(0.7)
    q = scale * np.array([[c, -s], [s, c]])
    problem = to_problem(design)
    optimum = P.objective(design, P.samples_fit(design, q, solver="clarabel"), q,
                          np.ones(1))["total"]
    fit = S.fit(problem, S.Settings(rank=2, radius=0.3, learning_rate=0.05, decay=1.0,
                                    max_iter=3000, progress=False, fixed_q=q))
    np.testing.assert_array_equal(fit.q, q)
    value = S.objective(problem, fit.z, fit.q, fit.phi, 0.3)["total"]
    assert value == pytest.approx(optimum, rel=1e-6)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("p", [3, 12])  # fewer and more features than neighbours (Woodbury)
def test_local_start_is_the_shrunk_local_fit(loss, p, rng):
    import cvxpy as cp

    from stratlang.solvers import personalized as S
    from stratlang.solvers import pointwise as pw

    n, k = 30, 8
    x = rng.normal(size=(n, p))
    y = x @ rng.normal(size=p) + 0.1 * rng.normal(size=n)
    if loss == "logistic":
        y = np.where(y > 0, 1.0, -1.0)
    glm = pw.Squared() if loss == "squared" else pw.Logistic()
    problem = S.PersonalizedProblem(x, y, glm, lambda i, j: np.zeros((len(i), 1)), 1, 0.0, 0.0)
    theta_pop = rng.normal(size=p) * 0.1
    neighbours = np.array([rng.choice(n, k, replace=False) for _ in range(n)])
    start = S.local_start(problem, theta_pop, neighbours, shrink=0.05, newton_steps=30)
    for i in (0, 7, 29):
        theta = cp.Variable(p)
        xi, yi = x[neighbours[i]], y[neighbours[i]]
        fit = (cp.sum_squares(xi @ theta - yi) if loss == "squared"
               else cp.sum(cp.logistic(-cp.multiply(yi, xi @ theta))))
        cp.Problem(cp.Minimize(fit + 0.05 * k / 2 * cp.sum_squares(theta - theta_pop))).solve(
            solver="CLARABEL")
        np.testing.assert_allclose(start[i], theta.value, atol=1e-4)  # CVXPY's accuracy
        eta = xi @ start[i]  # first-order optimality, to rounding
        slope = 2 * (eta - yi) if loss == "squared" else -yi / (1 + np.exp(yi * eta))
        gradient = xi.T @ slope + 0.05 * k * (start[i] - theta_pop)
        assert np.abs(gradient).max() < 1e-9


def test_a_distance_aware_start_recovers_the_simulation_far_better(rng):
    n = 800
    u = rng.uniform(0, 1, n)
    x = rng.uniform(-1, 1, (n, 2))
    truth = np.column_stack([u, (u > 0.5) + 0.1 * np.sin(u)])
    frame = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "u": u,
                          "y": np.sum(x * truth, axis=1) + rng.normal(0, np.sqrt(0.1), n)})
    spec = ("response y ~ squared\nfeatures x1, x2\nregularize 0.01 * l1\n"
            "personalize rank 2 radius 0.3 match 1 metric_penalty 1 neighbors 10 "
            "start_neighbors {k} learning_rate 0.01 decay 0.995 max_iter 60\n  distance u ~ abs\n")
    errors = {}
    for k in (0, 80):
        model = stratlang.load(spec.format(k=k))
        assert f"start_neighbors {k}" in model.text or k == 0
        fitted = model.fit(frame, options={"progress": False})
        errors[k] = np.linalg.norm(fitted.theta_array - truth) / np.sqrt(n)
    assert errors[80] < 0.5 * errors[0]  # per-sample RMS error of θ
    assert errors[80] < 0.14


def test_progress_line_shows_epochs_objective_change_and_early_stopping(design, monkeypatch,
                                                                        capsys):
    import re

    from stratlang.solvers import personalized as S
    from stratlang.solvers import progress

    problem = to_problem(design)
    settings = S.Settings(rank=2, radius=0.8, learning_rate=0.01, decay=1.0, max_iter=50,
                          progress=True)
    S.fit(problem, settings)  # well under a second: nothing at all
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(progress, "SHOW_AFTER", -1.0)
    monkeypatch.setattr(progress, "REFRESH", 0.0)
    S.fit(problem, settings)
    err = capsys.readouterr().err
    lines = err.rstrip("\n").split("\r")[1:]
    assert err.endswith("\n") and len(lines) == 51
    assert re.fullmatch(r"subgradient \d+\.\d s  epoch 3/50  objective \S+ "
                        r"\(change [-+]\d\.\de[-+]\d\d\) *", lines[2])
    # with validation: the early-stopping rule's figures (a held-out loss that never improves
    # after the first epoch stops the fit after `patience` epochs)
    fit = S.fit(problem, settings, validate=lambda z, q, phi: 1.0, patience=4)
    lines = capsys.readouterr().err.rstrip("\n").split("\r")[1:]
    assert fit.epochs == 5 and fit.best_epoch == 1
    assert ("epoch 3/50  validation 1 (best 1, 2/4 epochs without improvement)  objective "
            in lines[2])
    assert "epoch 5/50  validation 1 (best 1, 4/4 epochs without improvement)" in lines[-1]
