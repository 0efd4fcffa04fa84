"""Laplacian solvers: exact against a dense solve, for every factor kind and products."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratlang.solvers import graphs as g
from stratlang.solvers import laplacian
from stratlang.solvers.laplacian import AlongSolver, CGSolver, KroneckerSolver, SparseSolver

KINDS = {"path": g.path_graph, "cycle": g.cycle_graph, "complete": g.complete_graph,
         "star": lambda n: g.star_graph(n, n // 2),
         "general": lambda n: g.edge_list_graph(n, np.array([[i, (i * 3 + 1) % n] for i in range(n)]),
                                                np.linspace(0.5, 2, n))}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(KINDS)), st.integers(1, 6)), min_size=1,
                max_size=3),
       st.lists(st.floats(0, 50), min_size=3, max_size=3), st.floats(1e-3, 10),
       st.integers(1, 3), st.integers(0, 99))
def test_kronecker_solve_is_exact(spec, gammas, c, width, seed):
    factors = [KINDS[k](n) for k, n in spec]
    gammas = gammas[: len(factors)]
    dense = g.product_laplacian(factors, gammas).toarray()
    b = np.random.default_rng(seed).normal(size=(dense.shape[0], width))
    expected = np.linalg.solve(dense + c * np.eye(len(dense)), b)
    for solver in (KroneckerSolver(factors, gammas), SparseSolver(factors, gammas),
                   CGSolver(factors, gammas)):
        np.testing.assert_allclose(solver.solve(b, c), expected, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(solver.apply(b), dense @ b, rtol=1e-9, atol=1e-9)


def test_grid_factor_is_split_into_paths():
    grid = g.grid_graph((4, 3))
    solver = KroneckerSolver([grid, g.cycle_graph(5)], [2.0, 0.5])
    assert solver.shape == (4, 3, 5)
    dense = g.product_laplacian([grid, g.cycle_graph(5)], [2.0, 0.5]).toarray()
    b = np.arange(60.0).reshape(60, 1)
    np.testing.assert_allclose(solver.solve(b, 0.7), np.linalg.solve(dense + 0.7 * np.eye(60), b))


@pytest.mark.parametrize("n", [1, 2, 7])
def test_single_path_uses_dct_and_is_exact(n):
    solver = KroneckerSolver([g.path_graph(n)], [3.0])
    assert solver.axes[0].kind == "dct"
    dense = 3.0 * g.path_graph(n).laplacian().toarray()
    b = np.linspace(-1, 1, 2 * n).reshape(n, 2)
    np.testing.assert_allclose(solver.solve(b, 0.1), np.linalg.solve(dense + 0.1 * np.eye(n), b))


def test_cg_is_warm_started_and_chosen_for_very_large_general_graphs(monkeypatch):
    general = KINDS["general"](400)
    factors, gammas = [general, g.path_graph(30)], [2.0, 1.0]
    rng = np.random.default_rng(0)
    b = rng.normal(size=(12_000, 2))
    cg = CGSolver(factors, gammas)
    exact = SparseSolver(factors, gammas).solve(b, 0.5)
    np.testing.assert_allclose(cg.solve(b, 0.5), exact, rtol=1e-9, atol=1e-9)
    cold = cg.iterations
    nearby = b + 1e-6 * rng.normal(size=b.shape)  # as between ADMM iterations
    np.testing.assert_allclose(cg.solve(nearby, 0.5), SparseSolver(factors, gammas).solve(nearby, 0.5),
                               rtol=1e-9, atol=1e-9)
    assert cg.iterations - cold < 0.6 * cold  # the perturbation only needs 1e-6 of the work
    before = cg.iterations
    cg.solve(nearby, 0.5)
    assert cg.iterations == before  # the same system again: already solved
    monkeypatch.setattr(laplacian, "DENSE_LIMIT", 100)
    monkeypatch.setattr(laplacian, "SPARSE_LU_LIMIT", 10_000)
    assert isinstance(laplacian.laplacian_solver(factors, gammas), laplacian.AlongSolver)
    assert isinstance(laplacian.laplacian_solver([general, general], [1.0, 1.0]), CGSolver)
    assert isinstance(laplacian.laplacian_solver([general], [1.0]), SparseSolver)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["path", "cycle", "complete", "star"]),
                          st.integers(1, 5)), min_size=1, max_size=2),
       st.integers(0, 2), st.integers(6, 10),
       st.lists(st.floats(0.1, 50), min_size=3, max_size=3), st.floats(1e-3, 10),
       st.integers(1, 2), st.integers(0, 99))
def test_cg_along_one_large_general_factor_is_exact(others, position, n, gammas, c, width, seed):
    """The other factors diagonalized, CG along the general one (counted as large here)."""
    from unittest import mock

    factors = [KINDS[k](m) for k, m in others]
    factors.insert(min(position, len(factors)), KINDS["general"](n))
    gammas = gammas[: len(factors)]
    dense = g.product_laplacian(factors, gammas).toarray()
    rng = np.random.default_rng(seed)
    b = rng.normal(size=(dense.shape[0], width))
    with mock.patch.object(laplacian, "DENSE_LIMIT", 5):  # the others have ≤ 5 nodes
        solver = AlongSolver(factors, gammas)
    np.testing.assert_allclose(solver.solve(b, c), np.linalg.solve(dense + c * np.eye(len(dense)), b),
                               rtol=1e-8, atol=1e-9)
    nearby = b + 1e-3 * rng.normal(size=b.shape)  # warm-started from the previous solve
    np.testing.assert_allclose(solver.solve(nearby, c),
                               np.linalg.solve(dense + c * np.eye(len(dense)), nearby),
                               rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(solver.apply(b), dense @ b, rtol=1e-9, atol=1e-9)


def test_shifted_cg_with_no_columns_returns_at_once():
    matrix = g.path_graph(4).laplacian().tocsr()
    x, steps = laplacian.shifted_cg(matrix, matrix.diagonal(), np.zeros((4, 0)), np.zeros(0))
    assert x.shape == (4, 0) and steps == 0


@pytest.mark.parametrize("width", [1, 2])
def test_kronecker_solve_has_the_floats_of_the_plain_transforms(width):
    """The inverse FFT in two steps (the complex one in place), the eigenvalue division
    block by block and 1/(spectrum + c) kept per c give the floats of dctn, rfftn, the
    division and irfftn, idctn as written, whether b may be overwritten or not; a new c,
    or new weights, are not served the kept division. 314,496 strata: several blocks per thread."""
    import scipy.fft

    factors = [g.grid_graph((6, 6)), g.cycle_graph(52), g.cycle_graph(7), g.cycle_graph(24)]
    solver = KroneckerSolver(factors, [3.0, 1.0, 2.0, 0.5])
    b = np.random.default_rng(0).normal(size=(solver.k, width))

    def plain(solver: KroneckerSolver, c: float) -> np.ndarray:
        y = scipy.fft.dctn(b.reshape(6, 6, 52, 7, 24, width), type=2, norm="ortho",
                           axes=[0, 1])
        y = scipy.fft.rfftn(y, axes=[3, 4, 2]) * (1.0 / (solver.spectrum + c))[..., None]
        y = scipy.fft.irfftn(y, s=[7, 24, 52], axes=[3, 4, 2])
        return scipy.fft.idctn(y, type=2, norm="ortho", axes=[0, 1]).reshape(-1, width)

    for c in (0.5, 0.5, 2.0):
        np.testing.assert_array_equal(solver.solve(b, c), plain(solver, c))  # (b kept)
        np.testing.assert_array_equal(solver.solve(b.copy(), c, overwrite_b=True),
                                      plain(solver, c))  # (ADMM's: no copy of b)
    reweighted = solver.with_gammas(factors, [1.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(reweighted.solve(b, 2.0), plain(reweighted, 2.0))
    np.testing.assert_array_equal(solver.solve(b, 2.0), plain(solver, 2.0))


@pytest.mark.parametrize("overwrite_b", [False, True])
def test_along_solver_warm_starts_from_its_cg_solution_not_the_answer_it_returned(
        monkeypatch, overwrite_b):
    """Along a general factor and a path, the path's inverse DCT ran in place in the CG
    solution kept for the next start: that start was the answer in the original basis,
    the same system again took every CG step again (36 here), and the answer handed back
    shared memory with it (ADMM reuses that buffer for a later right-hand side)."""
    rng = np.random.default_rng(0)
    n = 40
    edges = np.array([[i, (i + 1) % n] for i in range(n)] + [[i, (i + 7) % n] for i in range(0, n, 3)])
    general = g.edge_list_graph(n, edges, rng.uniform(0.5, 2.0, len(edges)))
    monkeypatch.setattr(laplacian, "DENSE_LIMIT", 10)
    solver = laplacian.laplacian_solver([general, g.path_graph(6)], [1.0, 2.0])
    assert isinstance(solver, AlongSolver)
    steps: list[int] = []
    plain_cg = laplacian.shifted_cg

    def counted(*args, **kwargs):
        x, taken = plain_cg(*args, **kwargs)
        steps.append(taken)
        return x, taken

    monkeypatch.setattr(laplacian, "shifted_cg", counted)
    b = rng.normal(size=(n * 6, 2))
    first = solver.solve(b.copy(), 0.5, overwrite_b=overwrite_b)
    assert not np.may_share_memory(first, solver.previous)
    again = solver.solve(b.copy(), 0.5, overwrite_b=overwrite_b)
    assert steps[0] > 10 and steps[1] <= 1
    np.testing.assert_allclose(again, first, rtol=1e-9, atol=1e-12)


def test_a_solver_held_to_one_thread_scales_in_its_own_thread(monkeypatch):
    """A Dask worker sets the solver's thread count for its FFTs (solver.threads); the
    scaling between them, block by block, must keep to it too (it used every core on
    every worker of a shared machine)."""
    import threading

    from stratlang.solvers import blockwise

    solver = KroneckerSolver([g.cycle_graph(512), g.cycle_graph(512)], [1.0, 2.0])
    solver.threads = 1
    seen: set[int] = set()
    plain = blockwise.for_blocks

    def watched(size, kernel, threads=None):
        def run(s):
            seen.add(threading.get_ident())
            return kernel(s)
        return plain(size, run, threads)

    monkeypatch.setattr(laplacian, "for_blocks", watched)
    b = np.random.default_rng(0).normal(size=(solver.k, 1))
    x = solver.solve(b, 0.5)
    assert seen == {threading.get_ident()}
    np.testing.assert_allclose(solver.apply(x) + 0.5 * x, b, atol=1e-9)
