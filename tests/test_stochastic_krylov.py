"""The stochastic estimators' shared Krylov run (solvers.stochastic) and the fused product
with H (solvers.curvature_operator), against dense matrices at small K."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from stratlang.solvers import stochastic
from stratlang.solvers.curvature import LaplaceCurvature
from stratlang.solvers.curvature_operator import CurvatureOperator
from stratlang.solvers.graphs import cycle_graph, edge_list_graph, grid_graph, path_graph
from stratlang.solvers.penalty import (
    InteractionPart,
    LaplacianPart,
    QuadraticPenalty,
    RidgePart,
)
from stratlang.solvers.selection import newton_fit
from stratlang.solvers.stochastic import StochasticCurvature

from .test_laplace import _poisson_grid


def _spd_blocks(k: int, d: int, rng: np.random.Generator) -> np.ndarray:
    factors = rng.normal(size=(k, d, d))
    return np.einsum("kab,kcb->kac", factors, factors) + 0.1 * np.eye(d)


def _penalties(k_shape, d):
    """Penalties of every shape the fused product distinguishes (and two it hands to the
    part-by-part product)."""
    grid, years = grid_graph(k_shape), path_graph(4)
    k = int(np.prod(k_shape)) * 4
    rng = np.random.default_rng(1)

    def ridge(k=k):  # one that varies over strata
        return RidgePart(rng.uniform(0.0, 2.0, size=(k, d)))

    weighted = edge_list_graph(4, np.array([[0, 1], [1, 2], [2, 3]]), np.array([1.0, 2.5, 0.5]))
    rows = np.array([True] + [False] * (d - 1)) if d > 1 else None
    return [
        # unit paths only (the benchmark's shape), two parts on one factor
        ([grid, years], [LaplacianPart(0), LaplacianPart(1), LaplacianPart(1), ridge()], True),
        # a cycle and a weighted path: general axes, by their sparse Laplacians
        ([cycle_graph(5), weighted], [LaplacianPart(0), LaplacianPart(1), ridge(20)], True),
        # an interaction, a Laplacian on some rows only: the part-by-part product
        ([grid, years], [LaplacianPart(0), LaplacianPart(1), InteractionPart((0, 1))], False),
        ([grid, years], [LaplacianPart(0, rows), LaplacianPart(1), ridge()], d == 1),
    ]


@pytest.mark.parametrize("d", [1, 2])
def test_the_fused_product_equals_the_blocks_plus_the_part_by_part_penalty(d):
    rng = np.random.default_rng(0)
    for factors, parts, fused in _penalties((3, 5), d):
        penalty = QuadraticPenalty(factors, parts, n=d)
        k = penalty.k
        weights = rng.uniform(0.2, 3.0, size=len(parts))
        blocks = _spd_blocks(k, d, rng)
        x = rng.normal(size=(k, 3, d))
        operator = CurvatureOperator(blocks, penalty, weights)
        assert operator.fused == fused
        expected = np.einsum("kab,kpb->kpa", blocks, x) + penalty.apply_batch(weights, x)
        out = np.full_like(x, np.nan)  # written, not added to
        np.testing.assert_allclose(operator.apply(x, out), expected, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(operator.apply(x), expected, rtol=1e-13, atol=1e-13)
        dense = penalty.matrix(weights).toarray() + scipy.linalg.block_diag(*blocks)
        flat = np.moveaxis(x, 1, 0).reshape(3, -1)  # and H as a matrix
        np.testing.assert_allclose(np.moveaxis(operator.apply(x), 1, 0).reshape(3, -1),
                                   flat @ dense.T, rtol=1e-12, atol=1e-12)


def _dense(curvature: StochasticCurvature, apply) -> np.ndarray:
    """The matrix of a (K, P, d) ↦ (K, P, d) map, column by column."""
    size = curvature.k * curvature.d
    basis = np.eye(size).reshape(size, curvature.k, curvature.d).transpose(1, 0, 2)
    return apply(basis).transpose(1, 0, 2).reshape(size, size).T


def _curvature(interaction=False, jacobi=False, monkeypatch=None):
    problem, penalty = _poisson_grid(shape=(4, 3), years=3, interaction=interaction)
    w = np.array([3.0, 2.0, 0.1, 1.5][: len(penalty.parts)])
    inner = newton_fit(problem, penalty)(w, None)
    if jacobi:  # as for a general graph over the dense limit: block-Jacobi reference
        monkeypatch.setattr(stochastic, "exact_kronecker", lambda factors: False)
    return inner, penalty, w, StochasticCurvature(inner.blocks, penalty, w, seed=3, probes=6)


def _lanczos_quadrature(matrix: np.ndarray, start: np.ndarray) -> float:
    """‖v‖² e₁ᵀ log(T) e₁ by Lanczos on a dense matrix with full reorthogonalization, run
    to the whole space: the separate SLQ the shared run replaced, without rounding's
    loss of orthogonality."""
    size = len(start)
    basis = np.zeros((size, size))
    basis[:, 0] = start / np.linalg.norm(start)
    alphas, betas = [], []
    for j in range(size):
        v = matrix @ basis[:, j]
        alphas.append(float(basis[:, j] @ v))
        v -= basis[:, : j + 1] @ (basis[:, : j + 1].T @ v)
        v -= basis[:, : j + 1] @ (basis[:, : j + 1].T @ v)
        beta = float(np.linalg.norm(v))
        if j + 1 == size or beta < 1e-12:
            break
        betas.append(beta)
        basis[:, j + 1] = v / beta
    theta, vectors = scipy.linalg.eigh_tridiagonal(np.array(alphas), np.array(betas))
    return float(start @ start * np.sum(vectors[0] ** 2 * np.log(theta)))


@pytest.mark.parametrize("jacobi", [False, True])
def test_the_shared_run_gives_the_separate_slq_and_the_dense_quadratic_forms(jacobi,
                                                                             monkeypatch):
    """CG from b = Cz with the preconditioner M⁻¹ = (CCᵀ)⁻¹: its α, β make the Lanczos
    matrix of G = C⁻¹HC⁻ᵀ from z, so each probe's zᵀ log(G) z equals a separate Lanczos
    run's (full reorthogonalization) and the dense value, to round-off; log|H| is log|M|
    plus their mean."""
    curvature = _curvature(jacobi=jacobi, monkeypatch=monkeypatch)[-1]
    h = _dense(curvature, curvature.apply)
    c = _dense(curvature, curvature.factor)
    m_inverse = _dense(curvature, curvature.precondition)
    np.testing.assert_allclose(m_inverse @ (c @ c.T), np.eye(len(h)), atol=1e-10)
    g = np.linalg.solve(c, np.linalg.solve(c, h.T).T)  # C⁻¹ H C⁻ᵀ (H symmetric)
    values, vectors = np.linalg.eigh(0.5 * (g + g.T))
    log_g = (vectors * np.log(values)) @ vectors.T
    krylov = curvature.krylov()
    for p in range(curvature.probes):
        z = curvature.z[:, p, :].reshape(-1)
        assert krylov.quadratures[p] == pytest.approx(float(z @ log_g @ z), rel=1e-10)
        assert krylov.quadratures[p] == pytest.approx(_lanczos_quadrature(g, z), rel=1e-10)
    logdet = curvature.logdet()
    assert logdet.method == ("slq-jacobi" if jacobi else "slq")
    assert curvature.logdet_reference() == pytest.approx(np.linalg.slogdet(c @ c.T)[1],
                                                         rel=1e-12)
    assert logdet.value == pytest.approx(curvature.logdet_reference()
                                         + float(np.mean(krylov.quadratures)), rel=1e-14)


@pytest.mark.parametrize("interaction", [False, True])
def test_the_traces_from_the_shared_run_are_unbiased_with_the_control_variate(interaction):
    """u = C⁻ᵀz (the run's first preconditioned residual) and x = H⁻¹Cz: each probe's
    sample uᵀS_a(x − K̃⁻¹Cz) is zᵀ C⁻¹S_a(H⁻¹ − K̃⁻¹)C z, whose expectation over z,
    tr(C⁻¹S_a(H⁻¹ − K̃⁻¹)C), plus the reference's exact tr(K̃⁻¹S_a) is tr(H⁻¹S_a)."""
    inner, penalty, w, curvature = _curvature(interaction=interaction)
    h = _dense(curvature, curvature.apply)
    c = _dense(curvature, curvature.factor)
    k_inverse = _dense(curvature, curvature.k_solve)
    h_inverse = np.linalg.inv(h)
    krylov = curvature.krylov()
    np.testing.assert_allclose(krylov.first.transpose(1, 0, 2).reshape(curvature.probes, -1),
                               np.linalg.solve(c.T, curvature.z.transpose(1, 0, 2).reshape(
                                   curvature.probes, -1).T).T, atol=1e-10)
    traces = curvature.traces()
    assert traces.method == "hutchinson-cv"
    probes = curvature.z.transpose(1, 0, 2).reshape(curvature.probes, -1)
    for a in range(len(penalty.parts)):
        s_a = penalty.part_matrix(a).toarray()
        reference = curvature.reference.trace(a)
        assert reference == pytest.approx(np.trace(k_inverse @ s_a), rel=1e-10)
        within = np.linalg.solve(c, s_a @ (h_inverse - k_inverse) @ c)
        samples = np.einsum("pi,ij,pj->p", probes, within, probes)
        assert traces.value[a] == pytest.approx(reference + samples.mean(), rel=1e-8)
        assert traces.stderr[a] == pytest.approx(samples.std(ddof=1)
                                                 / np.sqrt(curvature.probes), rel=1e-6)
        assert np.trace(within) + reference == pytest.approx(np.trace(h_inverse @ s_a),
                                                             rel=1e-10)
    exact = LaplaceCurvature(inner.blocks, penalty, w, "exact").traces().value
    assert np.all(np.abs(traces.value - exact) < 4 * traces.stderr)


def test_one_run_serves_the_log_determinant_and_the_traces():
    curvature = _curvature()[-1]
    curvature.logdet()
    steps = curvature.cg_iterations
    assert steps > 0
    curvature.traces()
    assert curvature.cg_iterations == steps


def test_a_run_started_from_near_weights_gives_the_same_traces_in_fewer_steps():
    """The SEs' forward differences (a step of 1e-4 in log w): the probes' run started
    from the solutions at the base weights reaches the cold run's traces to the CG
    tolerance in fewer steps; it is no Lanczos run from z, so log|H| is NaN there."""
    problem, penalty = _poisson_grid(shape=(6, 5), years=4)
    w = np.array([3.0, 2.0, 0.1])
    inner = newton_fit(problem, penalty)(w, None)
    base = StochasticCurvature(inner.blocks, penalty, w, seed=3, probes=6)
    base.traces()
    shifted = w * np.exp([0.0, 1e-4, 0.0])
    cold = StochasticCurvature(inner.blocks, penalty, shifted, seed=3, probes=6)
    warm = StochasticCurvature(inner.blocks, penalty, shifted, seed=3, probes=6)
    warm.start_from(base)
    np.testing.assert_allclose(warm.traces().value, cold.traces().value, rtol=1e-8)
    np.testing.assert_allclose(warm.traces().stderr, cold.traces().stderr, rtol=1e-6)
    assert warm.cg_iterations < cold.cg_iterations
    assert np.isnan(warm.logdet().value)
    with pytest.raises(ValueError, match="same probes"):
        StochasticCurvature(inner.blocks, penalty, shifted, seed=4, probes=6).start_from(base)


def test_the_probes_run_at_its_looser_tolerance_loses_nothing_measurable():
    """The probes' run stops at PROBE_RTOL (1e-7), not CG_RTOL (1e-9): log|H| agrees to
    1e-12 (the quadrature's error goes as the residual's square) and the traces to far
    less than their standard errors, in fewer steps."""
    problem, penalty = _poisson_grid(shape=(8, 6), years=5)
    w = np.array([3.0, 2.0, 0.1])
    inner = newton_fit(problem, penalty)(w, None)
    loose = StochasticCurvature(inner.blocks, penalty, w, seed=3, probes=6)
    tight = StochasticCurvature(inner.blocks, penalty, w, seed=3, probes=6,
                                probe_rtol=stochastic.CG_RTOL)
    assert loose.probe_rtol == stochastic.PROBE_RTOL > stochastic.CG_RTOL
    assert loose.logdet().value == pytest.approx(tight.logdet().value, rel=1e-12)
    traces_loose, traces_tight = loose.traces(), tight.traces()
    assert np.all(np.abs(traces_loose.value - traces_tight.value)
                  < 1e-4 * np.asarray(traces_tight.stderr))
    assert loose.cg_iterations < tight.cg_iterations
