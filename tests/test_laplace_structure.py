"""The Laplace engine with coefficients held constant along factors (θ = Tφ,
solvers.reparametrize) against the dense brute force in φ (tests.laplace_reference:
T built by loops, TᵀHT and TᵀPT dense, log|TᵀPT|₊ by eigvalsh, the criterion minimized
by scipy)."""

from __future__ import annotations

import numpy as np
import pytest

from stratlang.solvers.curvature import EXACT_LIMIT, LaplaceCurvature
from stratlang.solvers.graphs import cycle_graph, path_graph
from stratlang.solvers.hessian import KroneckerSum, RecordStatistics
from stratlang.solvers.newton import LossTerm, SmoothProblem
from stratlang.solvers.penalty import (
    InteractionPart,
    LaplacianPart,
    QuadraticPenalty,
    RidgePart,
)
from stratlang.solvers.pointwise import Logistic, PoissonRegression, Squared
from stratlang.solvers.reparametrize import Reparametrization
from stratlang.solvers.selection import Criterion, InnerFit, select_weights

from .laplace_reference import ConstrainedModel, constant_lift

SHAPE = (4, 3)  # a path of 4 × a cycle of 3
# rows: an intercept varying over both, a slope varying over the path only (`by s`),
# a slope shared by every stratum
CONSTANT = np.array([[False, False], [False, True], [True, True]])


def _model(loss: str, seed: int = 0, interaction: bool = True, ridge_where: bool = False,
           strength: float = 0.2
           ) -> tuple[ConstrainedModel, np.ndarray]:
    rng = np.random.default_rng(seed)
    k, n_records = 12, 150
    x = np.column_stack([np.ones(n_records), rng.normal(size=(n_records, 2))])
    z = rng.integers(0, k, n_records)
    s, t = np.unravel_index(np.arange(k), SHAPE)
    truth = np.column_stack([0.4 * np.sin(s) + 0.3 * np.cos(t) + strength * (s - 1.5) * (t - 1),
                             0.5 + 0.2 * s, np.full(k, -0.3)])
    eta = np.sum(x * truth[z], axis=1)
    offset = weight = None
    dispersion = False
    if loss == "squared":
        unit, dispersion = Squared(), True
        y = (eta + 0.5 * rng.normal(size=n_records))[:, None]
        weight = rng.uniform(0.5, 2.0, n_records)
    elif loss == "poisson":
        unit = PoissonRegression()
        offset = rng.uniform(0.0, 0.5, n_records)
        y = rng.poisson(np.exp(eta + offset))[:, None].astype(float)
    else:
        unit = Logistic()
        y = np.where(rng.uniform(size=n_records) < 1 / (1 + np.exp(-2 * eta)), 1.0,
                     -1.0)[:, None]
    factors = [path_graph(SHAPE[0]), cycle_graph(SHAPE[1])]
    pattern = np.tile([0.0, 1.0, 1.0], (k, 1))  # a ridge on the slopes
    if ridge_where:
        pattern[s >= 2] = 0.0  # … on some strata only: the anchored factorization
    parts = [("laplacian", 0, None), ("laplacian", 1, None), ("ridge", pattern)]
    if interaction:
        parts.append(("interaction", (0, 1)))
    lift = constant_lift(SHAPE, CONSTANT)
    model = ConstrainedModel(x, z, y, unit, factors, parts, offset=offset, weight=weight,
                             dispersion=dispersion, lift=lift)
    return model, np.array([2.0, 1.5, 0.8, 3.0][:len(parts)])


def _engine(model: ConstrainedModel, t: Reparametrization | None = None
            ) -> tuple[QuadraticPenalty, object]:
    """The engine's penalty and inner fit over φ (T: rows held constant as CONSTANT says,
    unless given)."""
    kinds = {"laplacian": lambda p: LaplacianPart(p[1], p[2]),
             "interaction": lambda p: InteractionPart(tuple(p[1])),
             "ridge": lambda p: RidgePart(p[1])}
    t = Reparametrization.constant_along(SHAPE, CONSTANT) if t is None else t
    penalty = QuadraticPenalty(model.factors, [kinds[p[0]](p) for p in model.parts], model.n,
                               model.m, reparametrization=t)
    stats = RecordStatistics(model.x, model.z, model.k, model.m)
    problem = SmoothProblem(stats, model.y, [LossTerm(model.unit)], np.zeros((model.k, model.d)),
                            KroneckerSum(model.factors, [0.0, 0.0]), model.offset, model.weight)

    def fit(weights, warm):
        phi = model.fit(weights, None if warm is None else t.restrict(warm))
        return InnerFit.from_problem(problem, model.theta(phi).reshape(model.k, model.d),
                                     dispersion=model.dispersion)

    return penalty, fit


def test_the_lift_is_the_dense_reference_and_orthonormal():
    t = Reparametrization.constant_along(SHAPE, CONSTANT)
    dense = constant_lift(SHAPE, CONSTANT)
    assert t.size == 12 + 4 + 1
    # the same columns up to their order: compare the projections TTᵀ
    np.testing.assert_allclose((t.matrix @ t.matrix.T).toarray(), dense @ dense.T, atol=1e-15)
    np.testing.assert_allclose((t.matrix.T @ t.matrix).toarray(), np.eye(t.size), atol=1e-15)
    x = np.random.default_rng(0).normal(size=(12, 3))
    np.testing.assert_allclose(t.project(x).reshape(-1), dense @ dense.T @ x.reshape(-1),
                               atol=1e-14)


@pytest.mark.parametrize("interaction", [False, True])
@pytest.mark.parametrize("ridge_where", [False, True])
def test_pseudo_logdet_of_the_constrained_penalty(interaction, ridge_where):
    """log|TᵀPT|₊, its gradient and null dimension: exact from the eigenvalues of the
    factors each column varies over (or anchored), against eigvalsh."""
    model, w = _model("squared", interaction=interaction, ridge_where=ridge_where)
    penalty, _ = _engine(model)
    got = penalty.pseudo_logdet(w)
    value, null = model.pdet(w)
    assert got.method == ("exact-cholesky" if ridge_where else "exact-spectral")
    assert got.null_dim == null
    assert got.value == pytest.approx(value, rel=1e-11)
    h = 1e-6
    numeric = [(model.pdet(w * np.exp(h * e))[0] - model.pdet(w * np.exp(-h * e))[0]) / (2 * h)
               for e in np.eye(len(w))]
    np.testing.assert_allclose(got.gradient, numeric, rtol=1e-6, atol=1e-8)
    basis = penalty.null_basis(w).toarray()
    assert basis.shape[1] == null
    np.testing.assert_allclose(basis.T @ basis, np.eye(null), atol=1e-12)
    lifted_penalty = model.lift @ model.penalty(w) @ model.lift.T
    np.testing.assert_allclose(lifted_penalty @ basis, 0.0, atol=1e-12)


@pytest.mark.parametrize("loss", ["squared", "poisson", "logistic"])
@pytest.mark.parametrize("kind", ["reml", "ml"])
def test_criterion_gradient_and_covariance_match_brute_force_in_phi(loss, kind):
    model, w = _model(loss)
    penalty, fit = _engine(model)
    rho = np.log(w)
    evaluation = Criterion(fit, penalty, kind)(rho)
    assert evaluation.value == pytest.approx(model.criterion(rho, kind), rel=1e-10)
    np.testing.assert_allclose(evaluation.gradient, model.gradient(rho, kind), rtol=1e-6,
                               atol=1e-8)
    cov = model.theta_covariance(w)
    d = model.d
    expected = np.array([cov[i * d:(i + 1) * d, i * d:(i + 1) * d] for i in range(model.k)])
    blocks = evaluation.curvature.inverse_blocks()
    np.testing.assert_allclose(blocks.value, expected, rtol=1e-9, atol=1e-13)
    # the shared slope's variance is the same in every stratum, the path slope's along t
    variances = np.einsum("kii->ki", blocks.value).reshape(*SHAPE, 3)
    assert np.ptp(variances[..., 2]) < 1e-12 * variances[0, 0, 2]
    assert np.max(np.ptp(variances[..., 1], axis=1)) < 1e-12 * variances[0, 0, 1]
    # the effective degrees of freedom are φ's: tr(H_φ⁻¹ Tᵀ∇²ℓT)
    _, _, hess = model.loss(model.fit(w))
    edf = np.trace(np.linalg.solve(hess + model.penalty(w), hess))
    assert evaluation.curvature.traces().value[-1] == pytest.approx(edf, rel=1e-9)


@pytest.mark.parametrize("loss", ["squared", "poisson"])
def test_selected_weights_match_the_brute_force_optimum(loss):
    model, w = _model(loss, seed=1)
    penalty, fit = _engine(model)
    selection = select_weights(fit, penalty, "reml", start=w)
    assert selection.converged and set(selection.unbounded) == {None}
    best = model.select(np.log(selection.weights))
    np.testing.assert_allclose(selection.weights, np.exp(best), rtol=1e-6)
    assert selection.value == pytest.approx(model.criterion(best), rel=1e-12)


def test_beyond_the_exact_limit_is_refused_with_the_limit(monkeypatch):
    import stratlang.solvers.curvature as curvature

    model, w = _model("squared")
    penalty, fit = _engine(model)
    monkeypatch.setattr(curvature, "EXACT_LIMIT", 10)
    with pytest.raises(ValueError, match=r"^coefficients held constant along a factor or "
                                         r"present in some strata only are handled by an "
                                         r"exact factorization, up to 10 free "
                                         r"coefficients; this model has 17$"):
        LaplaceCurvature(fit(w, None).blocks, penalty, w)
    assert EXACT_LIMIT == 20_000


@pytest.mark.parametrize("constrained", [False, True])
def test_the_sparse_path_reads_the_blocks_of_strata_without_records(monkeypatch, constrained):
    """Forced onto the sparse factorization (selected inversion on the factor's pattern),
    a stratum without records keeps its off-diagonal block entries of H⁻¹ (they were
    read as 0 when a sum of sparse matrices pruned the stratum's zero block)."""
    from stratlang.solvers import cholesky

    from . import test_laplace

    model, w = _model("poisson") if constrained else test_laplace._model("poisson")
    penalty, fit = _engine(model) if constrained else test_laplace._engine(model)
    blocks = fit(w, None).blocks.copy()
    blocks[5] = 0.0  # no records in stratum 5
    dense = LaplaceCurvature(blocks, penalty, w)
    expected = (dense.inverse_blocks().value, dense.traces().value, dense.logdet().value)
    assert dense.factor.dense and abs(expected[0][5, 0, 1]) > 1e-4
    monkeypatch.setattr(cholesky, "DENSE_LIMIT", 0)
    sparse = LaplaceCurvature(blocks, penalty, w)
    np.testing.assert_allclose(sparse.inverse_blocks().value, expected[0], rtol=1e-9,
                               atol=1e-14)
    assert not sparse.factor.dense
    np.testing.assert_allclose(sparse.traces().value, expected[1], rtol=1e-10)
    assert sparse.logdet().value == pytest.approx(expected[2], rel=1e-12)


# ---- a column present in some strata only (`where`): T drops its absent entries, and
# its graph terms are those of the factors' induced subgraphs ----
MASKS = (np.array([False, True, True, True]), np.array([True, True, False]))


def _partial(loss: str, constant_x2: bool, seed: int = 0):
    model, w = _model(loss, seed=seed, ridge_where=False)
    constant = CONSTANT.copy()
    constant[2] = [False, constant_x2]
    masks = [None, None, MASKS]
    present = [None, None, {(a, b) for a in range(4) for b in range(3)
                            if MASKS[0][a] and MASKS[1][b]}]
    x = model.x.copy()
    s, t = np.unravel_index(model.z, SHAPE)
    x[~(MASKS[0][s] & MASKS[1][t]), 2] = 0.0  # (the feature is absent there)
    reference = ConstrainedModel(x, model.z, model.y, model.unit, model.factors, model.parts,
                                 offset=model.offset, weight=model.weight,
                                 dispersion=model.dispersion,
                                 lift=constant_lift(SHAPE, constant, present),
                                 partial={2: MASKS})
    t_engine = Reparametrization.constant_along(SHAPE, constant, masks)
    return reference, w, t_engine


@pytest.mark.parametrize("constant_x2", [False, True])
def test_a_partial_column_penalty_and_lift_match_the_dense_reference(constant_x2):
    model, w, t = _partial("squared", constant_x2)
    penalty, _ = _engine(model, t)
    np.testing.assert_allclose((t.matrix @ t.matrix.T).toarray(), model.lift @ model.lift.T,
                               atol=1e-15)
    for a in range(len(w)):  # θ's penalty parts: the induced graphs embedded
        np.testing.assert_allclose(penalty.part_matrix(a).toarray(), model.matrices[a],
                                   atol=1e-14)
        x = np.random.default_rng(a).normal(size=(model.k, model.d))
        np.testing.assert_allclose(penalty.apply_part(a, x).reshape(-1),
                                   model.matrices[a] @ x.reshape(-1), atol=1e-13)
        np.testing.assert_allclose(penalty.diagonal(np.eye(len(w))[a]).reshape(-1),
                                   np.diag(model.matrices[a]), atol=1e-14)
    got = penalty.pseudo_logdet(w)
    value, null = model.pdet(w)
    assert got.null_dim == null and got.value == pytest.approx(value, rel=1e-11)


@pytest.mark.parametrize("loss", ["squared", "poisson"])
@pytest.mark.parametrize("constant_x2", [False, True])
def test_criterion_and_covariance_with_a_partial_column_match_brute_force(loss, constant_x2):
    model, w, t = _partial(loss, constant_x2)
    penalty, fit = _engine(model, t)
    rho = np.log(w)
    evaluation = Criterion(fit, penalty, "reml")(rho)
    assert evaluation.value == pytest.approx(model.criterion(rho), rel=1e-10)
    np.testing.assert_allclose(evaluation.gradient, model.gradient(rho), rtol=1e-6, atol=1e-8)
    cov = model.theta_covariance(w)
    d = model.d
    expected = np.array([cov[i * d:(i + 1) * d, i * d:(i + 1) * d] for i in range(model.k)])
    np.testing.assert_allclose(evaluation.curvature.inverse_blocks().value, expected,
                               rtol=1e-9, atol=1e-13)
