"""The newton backend (damped Newton with preconditioned CG) and its parts: the pointwise
loss units, the Hessian operator, the automatic choice; every smooth loss that takes
features against the CVXPY reference solved to tight tolerances."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import stratlang
from stratlang.backends import choose
from stratlang.backends.newton import unsupported
from stratlang.backends.objective import stratified_objective
from stratlang.backends.reference import StratifiedProblem
from stratlang.kinds import LOSSES
from stratlang.solvers.graphs import (
    complete_graph,
    cycle_graph,
    edge_list_graph,
    grid_graph,
    path_graph,
    product_laplacian,
)
from stratlang.solvers.hessian import HessianOperator, KroneckerSum, RecordStatistics, pcg
from stratlang.solvers.newton import LossTerm, SmoothProblem, newton
from stratlang.solvers.pointwise import PoissonRegression

from .cases import data_for

# every loss that takes features and is smooth and convex: a new one is tested here at once
SMOOTH_WITH_FEATURES = [name for name in LOSSES.names()
                        if LOSSES[name].features != "forbidden" and LOSSES[name].smooth
                        and LOSSES[name].convex]
# tighter than CVXPY's defaults, with iterative refinement (without it Clarabel stalls at
# 1e-5 on the logistic case: SCS at eps 1e-10 agrees with the newton backend to 1e-12)
CLARABEL_TIGHT = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10,
                  "tol_ktratio": 1e-8, "iterative_refinement_reltol": 1e-16,
                  "iterative_refinement_abstol": 1e-16, "iterative_refinement_max_iter": 50}
SCS_TIGHT = {"eps": 1e-10, "max_iters": 100_000}


def reference(model: stratlang.Model, frame: pd.DataFrame) -> tuple[np.ndarray, float]:
    """θ and the objective of the CVXPY problem, the better of Clarabel and SCS solutions at
    tight tolerances (each alone is off by up to 3e-6 in θ on some of these cases)."""
    design = model.bind(frame)
    weights = model.ir.weight_values(None)
    problem = StratifiedProblem(design, weights)
    solutions = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stratlang.NumericalWarning)  # 'optimal_inaccurate'
        for name, param in problem.parameters.items():
            param.value = float(weights[name])
        for solver, options in (("CLARABEL", CLARABEL_TIGHT), ("SCS", SCS_TIGHT)):
            problem.problem.solve(solver=solver, **options)
            theta = problem.theta.value.reshape(design.theta_shape)
            solutions.append((stratified_objective(design, theta, weights).total, theta))
    value, theta = min(solutions, key=lambda pair: pair[0])
    return theta, value


def fit_both(spec: str, frame: pd.DataFrame):
    model = stratlang.load(spec)
    fitted = model.fit(frame)
    assert fitted.info["backend"] == "newton" and fitted.info["converged"]
    theta, value = reference(model, frame)
    return fitted, theta, value


def test_the_smooth_losses_are_those_expected():
    assert set(SMOOTH_WITH_FEATURES) == {
        "squared", "huber", "logistic", "square_classification", "squared_hinge",
        "multinomial", "poisson_regression", "exponential_regression"}


@pytest.mark.parametrize("loss", SMOOTH_WITH_FEATURES)
def test_every_smooth_loss_matches_cvxpy(loss, rng):
    frame, target, features = data_for(loss, rng)
    # a ridge on every row makes θ unique (multinomial's intercepts too)
    spec = (f"response {target} ~ {loss}\n{features}\nregularize 0.3 * sum_squares exclude []\n"
            "stratify g ~ path weight 0.7\n")
    fitted, theta, value = fit_both(spec, frame)
    assert fitted.objective.total == pytest.approx(value, rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(fitted.theta_array, theta, atol=1e-6)


@pytest.mark.parametrize("loss", SMOOTH_WITH_FEATURES)
def test_every_smooth_loss_with_unpenalized_intercepts_and_two_factors(loss, rng):
    frame, target, features = data_for(loss, rng, n=150)
    frame["h"] = rng.integers(0, 3, len(frame))
    spec = (f"response {target} ~ {loss}\n{features}\nregularize 0.1 * sum_squares\n"
            "stratify g ~ path weight 2\nstratify h ~ cycle weight 0.5\n")
    fitted, theta, value = fit_both(spec, frame)
    assert fitted.objective.total == pytest.approx(value, rel=1e-9, abs=1e-9)
    if loss != "multinomial":  # (its intercepts are determined up to a common shift)
        np.testing.assert_allclose(fitted.theta_array, theta, atol=1e-6)


def encoded_case(loss: str, rng: np.random.Generator):
    """(the loss entry, its unit at default parameters, encoded y, a linear predictor)."""
    frame, _target, _features = data_for(loss, rng, n=40)
    entry = LOSSES[loss]
    params = {p.name: p.default for p in entry.params}
    y = np.asarray(frame[["y", "y2"]] if entry.multi_column else frame[["y"]], dtype=float)
    if entry.domain == "binary":
        y = 2 * y - 1
    if entry.multiclass:
        y = np.eye(3)[frame["y"].to_numpy()]
    return entry, params, y, 2 * rng.normal(size=y.shape)


@pytest.mark.parametrize("loss", SMOOTH_WITH_FEATURES)
def test_pointwise_values_are_the_cvxpy_forms(loss, rng):
    import cvxpy as cp

    entry, params, y, eta = encoded_case(loss, rng)
    terms = np.asarray(entry.terms(cp.Constant(eta), y, params).value)
    expected = terms if terms.ndim == 1 else terms.sum(axis=1)
    np.testing.assert_allclose(entry.pointwise(params).record_values(eta, y), expected,
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(entry.losses(eta, y, params), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("loss", SMOOTH_WITH_FEATURES)
def test_pointwise_derivatives_are_those_of_the_value(loss, rng):
    entry, params, y, eta = encoded_case(loss, rng)
    unit = entry.pointwise(params)
    h = 1e-6

    def gradient(at):
        return unit.derivatives(at, y)[1]

    def value(at):
        return unit.record_values(at, y)

    _, first, second = unit.derivatives(eta, y)
    for o in range(y.shape[1]):
        step = np.zeros_like(eta)
        step[:, o] = h
        np.testing.assert_allclose((value(eta + step) - value(eta - step)) / (2 * h),
                                   first[:, o], rtol=1e-5, atol=1e-5)
        numeric = (gradient(eta + step) - gradient(eta - step)) / (2 * h)
        exact = second[:, :, o] if unit.coupled else np.where(np.arange(y.shape[1]) == o,
                                                               second, 0.0)
        near_kink = np.zeros(len(eta), dtype=bool)
        if loss in ("huber", "squared_hinge"):  # f'' jumps: skip records at the jump
            kink = eta - y if loss == "huber" else 1 - y * eta
            threshold = 1.0 if loss == "huber" else 0.0
            near_kink = np.any(np.abs(np.abs(kink) - threshold) < 1e-4, axis=1)
        np.testing.assert_allclose(numeric[~near_kink], exact[~near_kink], rtol=1e-4, atol=1e-4)


def test_every_smooth_loss_declares_its_unit_and_newton_takes_it(rng):
    for loss in SMOOTH_WITH_FEATURES:
        frame, target, features = data_for(loss, rng, n=30)
        model = stratlang.load(f"response {target} ~ {loss}\n{features}\n"
                               "stratify g ~ path weight 1\n")
        assert unsupported(model.bind(frame)) is None, loss


def test_offsets_and_record_weights_match_cvxpy(rng):
    frame, _target, features = data_for("poisson_regression", rng, n=200)
    frame["exposure"] = rng.uniform(0.5, 20, len(frame))
    frame["y"] = rng.poisson(frame.exposure * np.exp(0.3 * frame.a))
    frame["w"] = rng.uniform(0, 3, len(frame))
    spec = ("response y ~ poisson_regression offset log(exposure)\n"
            f"{features}\nweights w\nregularize 0.2 * sum_squares\n"
            "stratify g ~ path weight 1.5\n")
    fitted, theta, value = fit_both(spec, frame)
    assert fitted.objective.total == pytest.approx(value, rel=1e-9)
    np.testing.assert_allclose(fitted.theta_array, theta, atol=1e-6)


def test_strata_without_data_take_their_neighbours_values(rng):
    frame, _target, _features = data_for("logistic", rng, n=200)
    spec = ("response y ~ logistic\nfeatures a, b, intercept\nregularize 0.1 * sum_squares\n"
            "stratify g ~ path weight 3 nodes 0..6\n")
    fitted, theta, value = fit_both(spec, frame)
    assert fitted.strata.k == 7 and set(frame.g) == {0, 1, 2}
    assert fitted.objective.total == pytest.approx(value, rel=1e-9)
    np.testing.assert_allclose(fitted.theta_array, theta, atol=1e-6)
    # strata 3..6 have no data: at the path's end the unpenalized intercept is its
    # neighbour's, the ridged slopes shrink towards 0
    intercept = fitted.theta_array[:, 2, 0]
    assert intercept[6] == pytest.approx(intercept[5], abs=1e-6)
    slopes = np.abs(fitted.theta_array[:, :2, 0])
    assert np.all(slopes[3:] < slopes[2]) and np.all(np.diff(slopes[3:], axis=0) < 0)


def test_where_clauses_on_regularizers_and_loss_parameters(rng):
    frame, target, features = data_for("huber", rng, n=200)
    spec = (f"response {target} ~ huber(M=0.5)\nresponse {target} ~ huber(M=2) where g == 1\n"
            f"{features}\nregularize 0.3 * sum_squares where g in {{0, 2}}\n"
            "regularize 0.05 * sum_squares exclude []\nstratify g ~ path weight 0.4\n")
    fitted, theta, value = fit_both(spec, frame)
    assert fitted.objective.total == pytest.approx(value, rel=1e-9)
    np.testing.assert_allclose(fitted.theta_array, theta, atol=1e-6)


def test_nonsmooth_models_go_to_admm_without_a_note(rng):
    frame, target, features = data_for("logistic", rng)
    lasso = stratlang.load(f"response {target} ~ logistic\n{features}\n"
                           "regularize 0.1 * l1\nstratify g ~ path weight 1\n")
    fitted = lasso.fit(frame)
    assert fitted.info["backend"] == "admm" and "backend_note" not in fitted.info
    assert unsupported(lasso.bind(frame)) == ("regularizer 'l1' is not quadratic (newton "
                                              "takes zero and sum_squares)")
    hinge = stratlang.load(f"response {target} ~ hinge\n{features}\nstratify g ~ path\n")
    assert unsupported(hinge.bind(frame)) == ("loss 'hinge' is not smooth and convex in the "
                                              "linear predictor")
    with pytest.raises(stratlang.NumericalError, match="backend 'newton' cannot fit model"):
        lasso.fit(frame, backend="newton")


def test_admm_can_still_be_named_and_agrees(rng):
    frame, target, features = data_for("poisson_regression", rng)
    model = stratlang.load(f"response {target} ~ poisson_regression\n{features}\n"
                           "regularize 0.1 * sum_squares\nstratify g ~ path weight 1\n")
    newton_fit = model.fit(frame)
    admm_fit = model.fit(frame, backend="admm", options={"eps_abs": 1e-9, "eps_rel": 1e-9})
    assert newton_fit.info["backend"] == "newton" and admm_fit.info["backend"] == "admm"
    assert newton_fit.objective.total == pytest.approx(admm_fit.objective.total, rel=1e-8)
    assert choose(model.ir, frame).backend.name == "newton"


def test_overflowing_predictions_at_every_start_are_reported_not_returned(rng):
    frame, target, features = data_for("poisson_regression", rng)
    # offsets ±800 in every stratum: exp(800) overflows at θ = 0 and at the IRLS start
    frame["o"] = np.where(np.arange(len(frame)) % 2 == 0, 800.0, -800.0)
    model = stratlang.load(f"response {target} ~ poisson_regression offset o\n{features}\n"
                           "stratify g ~ path weight 1\n")
    with pytest.raises(stratlang.NumericalError,
                       match=r"^backend 'newton': the objective is not finite at the start "
                             r"\(inf\): the predictions overflow \(check the scale of the "
                             r"features and offsets\); backend='admm' or 'cvxpy'"):
        model.fit(frame)


def test_a_large_offset_is_absorbed_by_the_irls_start(rng):
    frame, target, features = data_for("poisson_regression", rng)
    frame["o"] = 800.0  # exp(800) overflows at θ = 0, not at the IRLS start
    model = stratlang.load(f"response {target} ~ poisson_regression offset o\n{features}\n"
                           "regularize 0.1 * sum_squares\nstratify g ~ path weight 1\n")
    fitted = model.fit(frame)
    assert fitted.info["backend"] == "newton" and fitted.info["converged"]
    shifted = model.fit(frame.assign(o=0.0))  # the offset moves the intercepts only
    np.testing.assert_allclose(fitted.theta["intercept"] + 800, shifted.theta["intercept"],
                               atol=1e-6)
    np.testing.assert_allclose(fitted.theta_array[:, :2], shifted.theta_array[:, :2],
                               atol=1e-6)


@pytest.mark.parametrize("scale", [1e8, 1e20])
def test_one_badly_scaled_record_leaves_the_other_coefficients_fitted(scale, rng):
    # one record's feature 1e8 times the others': the ridge-like shift that keeps H
    # definite was one number scaled by the mean curvature, which then swamped every
    # other coefficient (100 steps, 23% above the optimum); at 1e20 the first loose CG
    # solve took only that feature's rounding, its tiny decrement read as 'optimal'
    frame = pd.DataFrame({"x": rng.normal(size=200), "g": rng.integers(0, 4, 200)})
    frame["y"] = frame.x + frame.g + rng.normal(size=200)
    frame.loc[3, "x"] = scale
    spec = ("response y ~ squared\nfeatures x, intercept\nregularize 1 * sum_squares\n"
            "stratify g ~ path weight 1\n")
    fitted, theta, value = fit_both(spec, frame)
    assert fitted.objective.total == pytest.approx(value, rel=1e-9)
    np.testing.assert_allclose(fitted.theta_array[:, 1], theta[:, 1], atol=1e-6)


def test_an_unbounded_problem_is_not_reported_optimal(rng):
    # a feature nonzero only in a record with y = 0: exponential regression's loss falls
    # without bound along it (−η), and nothing else holds it
    frame = pd.DataFrame({"g": [0, 0, 1, 1], "u": [1.0, 0.0, 0.0, 0.0],
                          "y": [0.0, 1.0, 2.0, 1.0]})
    model = stratlang.load("response y ~ exponential_regression\nfeatures u, intercept\n"
                           "stratify g ~ path weight 1\n")
    with pytest.raises(stratlang.NumericalError,
                       match="backend 'newton': the objective is unbounded below"):
        model.fit(frame)
    # bounded once a ridge holds that feature
    fitted = stratlang.load("response y ~ exponential_regression\nfeatures u, intercept\n"
                            "regularize 0.1 * sum_squares\nstratify g ~ path weight 1\n"
                            ).fit(frame)
    assert fitted.info["converged"] and np.all(np.isfinite(fitted.theta_array))


def test_options_are_validated(rng):
    frame, target, features = data_for("logistic", rng)
    model = stratlang.load(f"response {target} ~ logistic\n{features}\nstratify g ~ path\n")
    with pytest.raises(stratlang.OptionError, match="preconditioner"):
        model.fit(frame, options={"preconditioner": "jacobi"})
    for kind in ("auto", "block", "kronecker", "direct"):
        fitted = model.fit(frame, options={"preconditioner": kind})
        assert fitted.info["converged"]


@pytest.mark.parametrize("preconditioner", ["auto", "block"])
def test_a_quadratic_loss_takes_one_newton_step(preconditioner, rng):
    """The IRLS start of a quadratic loss is its exact minimizer when solved tightly: one
    Newton step confirms it (a loose start took 3, each re-solving the same system)."""
    frame, target, features = data_for("squared", rng)
    model = stratlang.load(f"response {target} ~ squared\n{features}\n"
                           "regularize 0.3 * sum_squares exclude []\nstratify g ~ path\n")
    fitted = model.fit(frame, options={"preconditioner": preconditioner})
    assert fitted.info["backend"] == "newton" and fitted.info["iterations"] == 1


def test_a_small_model_is_solved_by_the_banded_factor(rng):
    """'auto' takes the direct solve on a small problem: one CG step per Newton step, and
    the same fit as the CG preconditioners give."""
    frame, target, features = data_for("poisson_regression", rng)
    model = stratlang.load(f"response {target} ~ poisson_regression\n{features}\n"
                           "regularize 0.1 * sum_squares\nstratify g ~ path\n")
    direct = model.fit(frame)
    assert direct.info["cg_iterations"] == direct.info["iterations"]
    iterative = model.fit(frame, options={"preconditioner": "block"})
    assert iterative.info["cg_iterations"] > iterative.info["iterations"]
    assert abs(direct.objective.total - iterative.objective.total) <= 1e-10 * abs(
        iterative.objective.total)


# ---- the solvers layer ---------------------------------------------------------------------
def test_hessian_operator_is_the_dense_hessian(rng):
    """blocks + diagonal + Σ γ (L ⊗ I), checked against the matrix formed explicitly."""
    factors, gammas = [path_graph(4), cycle_graph(3), complete_graph(2)], [2.0, 0.5, 3.0]
    k, n, m = 24, 3, 2
    x = rng.normal(size=(200, n))
    z = rng.integers(0, k, 200)
    stats = RecordStatistics(x, z, k, m)
    roots = rng.normal(size=(200, m, m))
    curvature = roots @ roots.transpose(0, 2, 1)  # positive semidefinite, as a loss's
    blocks = stats.blocks(curvature)
    dense_blocks = np.zeros((k, n * m, n * m))
    for i in range(200):
        dense_blocks[z[i]] += np.kron(np.outer(x[i], x[i]), curvature[i])
    np.testing.assert_allclose(blocks, dense_blocks, atol=1e-10)
    # the predictors x_iᵀθ_{z_i} and the gradient Σ_i x_i ⊗ d1_i per stratum
    theta = rng.normal(size=(k, n, m))
    np.testing.assert_allclose(stats.predictor(theta), np.einsum("in,inm->im", x, theta[z]),
                               atol=1e-12)
    d1 = rng.normal(size=(200, m))
    gradient = np.zeros((k, n, m))
    np.add.at(gradient, z, x[:, :, None] * d1[:, None, :])
    np.testing.assert_allclose(stats.gradient(d1), gradient.reshape(k, n * m), atol=1e-12)
    diagonal = rng.uniform(size=(k, n * m))
    operator = HessianOperator(blocks, diagonal, KroneckerSum(factors, gammas))
    full = (sp.block_diag(list(dense_blocks)) + sp.diags(diagonal.reshape(-1))
            + sp.kron(product_laplacian(factors, gammas), sp.identity(n * m))).toarray()
    v = rng.normal(size=(k, n * m))
    np.testing.assert_allclose(operator(v).reshape(-1), full @ v.reshape(-1), atol=1e-10)
    # each preconditioner is symmetric positive definite; CG with any solves H x = b
    b = rng.normal(size=(k, n * m))
    for kind in ("block", "kronecker", "auto", "direct"):
        precondition = operator.preconditioner(kind)
        matrix = np.column_stack([precondition(e.reshape(k, n * m)).reshape(-1)
                                  for e in np.eye(k * n * m)])
        np.testing.assert_allclose(matrix, matrix.T, atol=1e-9)
        assert np.linalg.eigvalsh(0.5 * (matrix + matrix.T)).min() > 0
        solved = pcg(operator, precondition, b, 1e-12, 1000)
        assert solved.converged
        np.testing.assert_allclose(solved.x.reshape(-1), np.linalg.solve(full, b.reshape(-1)),
                                   atol=1e-8)


def test_the_direct_preconditioner_is_the_exact_inverse_on_any_graph(rng):
    """The banded factor under reverse Cuthill–McKee order, on a general graph (not a
    product, so its natural order has a wide band), a grid factor and an interaction
    term: H times it is the identity, and CG stops after one step."""
    edges = np.array([(i, (7 * i + 3) % 30) for i in range(30) if (7 * i + 3) % 30 != i])
    factors = [edge_list_graph(30, edges), grid_graph((3, 2))]
    laplacian = KroneckerSum(factors, [1.5, 0.7], interactions=[((0, 1), 0.4)])
    x = rng.normal(size=(laplacian.k, 4))
    np.testing.assert_allclose(laplacian.matrix() @ x, laplacian.apply(x), atol=1e-12)
    k, d = laplacian.k, 3
    roots = rng.normal(size=(k, d, d))
    operator = HessianOperator(roots @ roots.transpose(0, 2, 1), rng.uniform(size=(k, d)),
                               laplacian)
    exact = operator.direct()
    assert exact is not None
    layout = laplacian.band(d)
    assert layout is not None and layout.width < d * (k - 1)  # the order narrowed the band
    b = rng.normal(size=(k, d))
    np.testing.assert_allclose(operator(exact(b)), b, atol=1e-10)
    solved = pcg(operator, operator.preconditioner("auto"), b, 1e-10, 100)
    assert solved.converged and solved.iterations == 1
    # an indefinite H has no Cholesky factor: the direct solve declines, CG takes over
    indefinite = HessianOperator(-np.broadcast_to(np.eye(d), (k, d, d)).copy() * 1e3,
                                 np.zeros((k, d)), laplacian)
    assert indefinite.direct() is None


def test_kronecker_preconditioner_is_exact_for_equal_blocks(rng):
    factors, gammas = [path_graph(5), cycle_graph(4)], [3.0, 1.0]
    k, d = 20, 3
    a = rng.normal(size=(d, d))
    block = a @ a.T + np.eye(d)
    operator = HessianOperator(np.broadcast_to(block, (k, d, d)).copy(), np.zeros((k, d)),
                               KroneckerSum(factors, gammas))
    precondition = operator.kronecker()
    assert precondition is not None
    b = rng.normal(size=(k, d))
    np.testing.assert_allclose(operator(precondition(b)), b, atol=1e-10)


def poisson_problem(rng, records: int, shape=(30, 7)) -> SmoothProblem:
    k = shape[0] * shape[1]
    x = np.column_stack([np.ones(records), rng.normal(size=(records, 4))])
    z = rng.integers(0, k, records)
    truth = 0.3 * rng.normal(size=(k, 5))
    y = rng.poisson(np.exp(0.5 * np.einsum("in,in->i", x, truth[z])))[:, None].astype(float)
    ridge = np.zeros((k, 5))
    ridge[:, 1:] = 0.1
    return SmoothProblem(RecordStatistics(x, z, k, 1), y, [LossTerm(PoissonRegression())],
                         ridge, KroneckerSum([path_graph(shape[0]), cycle_graph(shape[1])],
                                             [10.0, 10.0]))


def test_newton_steps_do_not_grow_with_the_records_per_stratum(rng):
    steps = [newton(poisson_problem(rng, records)).iterations for records in (2_000, 100_000)]
    assert all(s <= 8 for s in steps), steps
    assert abs(steps[1] - steps[0]) <= 2, steps


def test_newton_reports_a_nonfinite_start(rng):
    problem = poisson_problem(rng, 500)
    problem.offset = np.full(500, 1000.0)
    result = newton(problem, start=np.zeros((210, 5, 1)))
    assert result.status == "nonfinite_start" and not result.converged


def test_kronecker_sum_stencils_match_the_sparse_laplacian():
    """Unit paths (and a grid's path axes) act by a difference stencil; a path with other
    edge weights, a cycle and a complete graph by their sparse matrices: every one equals
    the product Laplacian, with an interaction term beside."""
    from stratlang.solvers.graphs import Graph, grid_graph
    from stratlang.solvers.penalty import InteractionPart, QuadraticPenalty

    weighted = Graph(4, np.array([[0, 1], [1, 2], [2, 3]]), np.array([1.0, 2.0, 0.5]), "path")
    factors = [grid_graph((3, 4)), path_graph(5), weighted, cycle_graph(3),
               complete_graph(2)]
    gammas = [0.7, 1.0, 1.3, 2.0, 0.4]
    total = KroneckerSum(factors, gammas, [((0, 1), 0.5)])
    assert total._stencils == [0.7, 0.7, 1.0, None, None, 0.4]  # (K₂ is a unit path)
    x = np.random.default_rng(0).normal(size=(total.k, 2))
    interaction = QuadraticPenalty(factors, [InteractionPart((0, 1))], n=2).part_matrix(0)
    expected = product_laplacian(factors, gammas) @ x \
        + 0.5 * (interaction @ x.reshape(-1)).reshape(total.k, 2)
    np.testing.assert_allclose(total.apply(x), expected, atol=1e-12)


def test_a_quadratic_loss_from_a_warm_start_is_solved_in_one_tight_step():
    """The squared loss's Newton model is exact: from the fit at other weights (REML's
    warm starts), the first step is solved as tightly as the stopping rule needs and the
    second only confirms it — 2 Newton steps, where the forcing term's 0.1 first took 4
    (each step several passes over the records) — to the cold fit's precision."""
    from stratlang.solvers.pointwise import Squared

    rng = np.random.default_rng(0)
    factors = [grid_graph((40, 40)), path_graph(10)]
    k = 40 * 40 * 10
    z = np.sort(np.concatenate([np.arange(k), rng.choice(k, k // 5, replace=False)]))
    y = np.sin(z / 50.0) + 0.5 * rng.normal(size=len(z))
    stats = RecordStatistics(np.ones((len(z), 1)), z, k, 1)
    problem = SmoothProblem(stats, y[:, None], [LossTerm(Squared())], np.zeros((k, 1)),
                            KroneckerSum(factors, [0.5, 5.0]))
    first = newton(problem, tol=1e-12)
    problem.laplacian = KroneckerSum(factors, [0.6, 4.0])
    warm = newton(problem, start=first.theta, tol=1e-12)
    cold = newton(problem, tol=1e-12)
    assert warm.converged and cold.converged
    assert warm.iterations == 2
    np.testing.assert_allclose(warm.theta, cold.theta, atol=1e-8)


def test_the_hessian_and_its_block_jacobi_inverse_at_one_coefficient_per_stratum():
    """d = 1 takes products of numbers (no einsum, no million 1 × 1 inversions): the
    same H x as the assembled matrix and the same block-Jacobi inverse, a stratum
    without curvature nudged to definite as before."""
    rng = np.random.default_rng(2)
    factors = [grid_graph((4, 5)), path_graph(3)]
    laplacian = KroneckerSum(factors, [0.7, 1.3])
    k = laplacian.k
    blocks = rng.uniform(0.5, 2.0, size=(k, 1, 1))
    blocks[3] = 0.0
    diagonal = rng.uniform(0.0, 1.0, size=(k, 1))
    diagonal[3] = 0.0
    operator = HessianOperator(blocks, diagonal, laplacian)
    matrix = np.diag(blocks[:, 0, 0] + diagonal[:, 0]) + laplacian.matrix().toarray()
    x = rng.normal(size=(k, 1))
    np.testing.assert_allclose(operator(x), matrix @ x, rtol=1e-13, atol=1e-13)
    local = blocks[:, 0, 0] + diagonal[:, 0] + laplacian.diagonal
    np.testing.assert_allclose(operator.block_jacobi()(x)[:, 0], x[:, 0] / local,
                               rtol=1e-9)
