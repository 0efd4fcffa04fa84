"""Smallest Laplacian eigenpairs of factors and products: against dense eigendecompositions."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from stratlang.solvers import eigenbasis
from stratlang.solvers import graphs as g
from stratlang.solvers.eigenbasis import axis_eigenpairs, product_basis
from stratlang.solvers.laplacian import split_grids


def random_graph(n: int, seed: int, density: float = 0.4) -> g.Graph:
    rng = np.random.default_rng(seed)
    i, j = np.triu_indices(n, k=1)
    keep = rng.random(len(i)) < density
    edges = np.column_stack([i[keep], j[keep]])
    return g.edge_list_graph(n, edges, rng.uniform(0.5, 2.0, len(edges)))


def connected_graph(n: int, extra: int, seed: int) -> g.Graph:
    """A random spanning tree plus ``extra`` random edges, random weights."""
    rng = np.random.default_rng(seed)
    tree = np.column_stack([np.arange(1, n), rng.integers(0, np.arange(1, n))])
    edges = np.vstack([tree, rng.integers(0, n, size=(extra, 2))])
    return g.edge_list_graph(n, edges, rng.uniform(0.5, 2.0, len(edges)))


GRAPHS = {
    "path": g.path_graph(7),
    "path of one": g.path_graph(1),
    "weighted path": replace(g.path_graph(8), weights=np.linspace(0.5, 2.0, 7)),
    "uniformly weighted path": replace(g.path_graph(6), weights=np.full(5, 2.5)),
    "odd cycle": g.cycle_graph(7),
    "even cycle": g.cycle_graph(8),
    "triangle": g.cycle_graph(3),
    "weighted cycle": replace(g.cycle_graph(6), weights=np.arange(1.0, 7.0)),
    "complete": g.complete_graph(6),
    "weighted complete": replace(g.complete_graph(5), weights=np.full(10, 0.3)),
    "star": g.star_graph(7, 3),
    "star centred at 0": g.star_graph(5, 0),
    "star of two": g.star_graph(2, 1),
    "grid": g.grid_graph((3, 4)),
    "3-d grid": g.grid_graph((2, 3, 2)),
    "general": random_graph(12, 0),
    "disconnected general": random_graph(10, 3, density=0.15),
    "edgeless": g.edge_list_graph(4, np.zeros((0, 2), dtype=np.int64)),
    "path tag on a star": replace(g.star_graph(6, 2), structure="path"),
    "cycle tag on a path": replace(g.path_graph(6), structure="cycle"),
    "grid tag, wrong shape": replace(g.grid_graph((3, 4)), shape=(4, 3)),
}


def assert_span_below(vectors: np.ndarray, values: np.ndarray, dense_values: np.ndarray,
                      dense_vectors: np.ndarray) -> None:
    """Every dense eigenvector of an eigenvalue strictly below the last returned one lies in
    the returned span (projectors, not vectors: degenerate eigenvalues have no unique ones)."""
    below = dense_vectors[:, dense_values < values[-1] - 1e-8]
    inside = vectors.T @ below
    np.testing.assert_allclose(inside.T @ inside, np.eye(below.shape[1]), atol=1e-9)


def assert_signs_fixed(vectors: np.ndarray) -> None:
    magnitude = np.abs(vectors)
    first = np.argmax(magnitude > 1e-8 * magnitude.max(axis=0), axis=0)
    assert np.all(vectors[first, np.arange(vectors.shape[1])] > 0)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_axis_eigenpairs_match_dense(name):
    graph = GRAPHS[name]
    laplacian = graph.laplacian().toarray()
    dense_values, dense_vectors = np.linalg.eigh(laplacian)
    n = graph.n
    for count in sorted({1, 2, n // 2, n - 1, n, n + 3} - {0}):
        values, vectors = axis_eigenpairs(graph, count)
        m = min(count, n)
        assert values.shape == (m,) and vectors.shape == (n, m)
        assert np.all(values >= 0) and np.all(np.diff(values) >= 0)
        np.testing.assert_allclose(values, np.clip(dense_values[:m], 0, None), atol=1e-10)
        np.testing.assert_allclose(vectors.T @ vectors, np.eye(m), atol=1e-12)
        np.testing.assert_allclose(laplacian @ vectors, vectors * values, atol=1e-9)
        assert_span_below(vectors, values, dense_values, dense_vectors)
        assert_signs_fixed(vectors)


def test_closed_forms_are_the_documented_bases():
    n = 6
    values, vectors = axis_eigenpairs(g.path_graph(n), n)
    j, i = np.arange(n)[:, None], np.arange(n)[None, :]
    dct = np.cos(np.pi * i * (j + 0.5) / n)
    np.testing.assert_allclose(vectors, dct / np.linalg.norm(dct, axis=0), atol=1e-14)
    np.testing.assert_allclose(values, 2 - 2 * np.cos(np.pi * np.arange(n) / n), atol=1e-14)
    values, vectors = axis_eigenpairs(g.cycle_graph(n), n)
    freq = np.array([0, 1, 1, 2, 2, 3])
    np.testing.assert_allclose(values, 2 - 2 * np.cos(2 * np.pi * freq / n), atol=1e-14)
    np.testing.assert_allclose(vectors[:, 0], np.full(n, n ** -0.5))
    np.testing.assert_allclose(vectors[:, 2], np.sin(2 * np.pi * np.arange(n) / n) * (2 / n) ** 0.5,
                               atol=1e-14)
    np.testing.assert_allclose(vectors[:, -1], (-1.0) ** np.arange(n) * n ** -0.5, atol=1e-14)


@pytest.mark.parametrize("graph", [g.path_graph(100_000), g.cycle_graph(100_000),
                                   g.cycle_graph(100_001), g.star_graph(50_000, 7),
                                   g.grid_graph((300, 400))], ids=lambda gr: gr.structure)
def test_closed_forms_scale_past_the_dense_limit(graph):
    values, vectors = axis_eigenpairs(graph, 9)
    laplacian = graph.laplacian()
    scale = float(laplacian.diagonal().max())  # a star's center sums n − 1 rounded entries
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(9), atol=1e-10)
    np.testing.assert_allclose(laplacian @ vectors, vectors * values, atol=1e-13 * scale + 1e-12)
    assert values[0] == 0 and np.all(np.diff(values) >= 0)


def factor_strategy():
    kinds = st.sampled_from(["path", "weighted path", "cycle", "complete", "star", "grid",
                             "general"])

    def build(kind: str, n: int, seed: int) -> g.Graph:
        if kind == "path":
            return g.path_graph(n)
        if kind == "weighted path":
            return replace(g.path_graph(n), weights=np.linspace(0.5, 2.0, n - 1))
        if kind == "cycle":
            return g.cycle_graph(n)
        if kind == "complete":
            return g.complete_graph(n)
        if kind == "star":
            return g.star_graph(n, seed % n)
        if kind == "grid":
            return g.grid_graph((2, 1 + (n - 1) // 2))
        return random_graph(n, seed, density=0.6)

    return st.builds(build, kinds, st.integers(1, 6), st.integers(0, 99))


@settings(max_examples=200, deadline=None)
@given(st.lists(factor_strategy(), min_size=1, max_size=3),
       st.lists(st.one_of(st.just(0.0), st.floats(0.0, 5.0)), min_size=3, max_size=3),
       st.data())
def test_product_basis_matches_dense(factors, gammas, data):
    gammas = gammas[: len(factors)]
    laplacian = g.product_laplacian(factors, gammas).toarray()
    k = laplacian.shape[0]
    count = data.draw(st.integers(1, k), label="count")
    values, basis, index = product_basis(factors, gammas, count)
    axes = split_grids(factors, gammas)
    assert values.shape == (count,) and basis.shape == (k, count)
    assert index.shape == (count, len(axes))
    dense_values, dense_vectors = np.linalg.eigh(laplacian)
    assert np.all(np.diff(values) >= 0)
    np.testing.assert_allclose(values, np.clip(dense_values[:count], 0, None), atol=1e-9)
    np.testing.assert_allclose(basis.T @ basis, np.eye(count), atol=1e-10)
    np.testing.assert_allclose(laplacian @ basis, basis * values, atol=1e-8)
    assert_span_below(basis, values, dense_values, dense_vectors)
    assert len({tuple(row) for row in index}) == count
    if all(g.n_components(f) == 1 for f in factors):
        column = basis[:, 0] * np.sign(basis[0, 0])
        np.testing.assert_allclose(column, np.full(k, k ** -0.5), atol=1e-12)
    # each column is the Kronecker product its multi-index names, with the summed eigenvalue
    pairs = [axis_eigenpairs(graph, graph.n) for graph, _ in axes]
    for m in range(count):
        column, total = np.ones(1), 0.0
        for (graph_values, vectors), (_, gamma), i in zip(pairs, axes, index[m], strict=True):
            column = np.kron(column, vectors[:, i])
            total += gamma * graph_values[i]
        np.testing.assert_allclose(basis[:, m], column, atol=1e-13)
        assert values[m] == pytest.approx(total, abs=1e-12)


@pytest.mark.parametrize("name", ["disconnected general", "complete", "star", "even cycle",
                                  "3-d grid", "edgeless"])
def test_bases_nest_as_the_count_grows(name):
    graph = GRAPHS[name]
    values, vectors = axis_eigenpairs(graph, graph.n)
    for count in range(1, graph.n):
        fewer = axis_eigenpairs(graph, count)
        assert np.array_equal(fewer[0], values[:count])
        assert np.array_equal(fewer[1], vectors[:, :count])
    factors, gammas = [graph, g.cycle_graph(3)], [1.0, 0.5]
    values, basis, index = product_basis(factors, gammas, 3 * graph.n)
    for count in (1, 4, 2 * graph.n):
        fewer = product_basis(factors, gammas, count)
        assert np.array_equal(fewer[1], basis[:, :count])
        assert np.array_equal(fewer[2], index[:count])


def test_zero_weight_factor_orders_by_multi_index():
    values, _, index = product_basis([g.path_graph(3), g.cycle_graph(4)], [1.0, 0.0], 6)
    assert [tuple(row) for row in index] == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1)]
    np.testing.assert_allclose(values, [0, 0, 0, 0, 1, 1], atol=1e-14)


def test_grid_factor_is_split_into_path_axes():
    values, basis, index = product_basis([g.grid_graph((3, 4)), g.cycle_graph(5)], [2.0, 0.5], 7)
    assert index.shape == (7, 3) and basis.shape == (60, 7)
    dense = g.product_laplacian([g.grid_graph((3, 4)), g.cycle_graph(5)], [2.0, 0.5])
    np.testing.assert_allclose(dense @ basis, basis * values, atol=1e-12)


def test_empty_product_is_one_stratum():
    values, basis, index = product_basis([], [], 4)
    assert values.tolist() == [0.0] and basis.tolist() == [[1.0]] and index.shape == (1, 0)


def kronecker_sum_rows(factors, gammas, basis, rows):
    """(L V)[rows] through the factor Laplacians, L never formed: for each factor, its
    Laplacian applied along that factor's axis of V reshaped to (*sizes, M)."""
    sizes = [f.n for f in factors]
    grid = basis.reshape(*sizes, basis.shape[1])
    out = np.zeros((len(rows), basis.shape[1]))
    for axis, (factor, gamma) in enumerate(zip(factors, gammas, strict=True)):
        laplacian = factor.laplacian().tocsr()
        for r, row in enumerate(rows):
            at = list(np.unravel_index(row, sizes))
            lo, hi = laplacian.indptr[at[axis]], laplacian.indptr[at[axis] + 1]
            at[axis] = laplacian.indices[lo:hi]
            out[r] += gamma * laplacian.data[lo:hi] @ grid[tuple(at)]
    return out


def test_million_strata_without_forming_the_laplacian():
    factors, gammas = [g.path_graph(2000), g.cycle_graph(500)], [1.0, 0.7]
    start = time.perf_counter()
    values, basis, index = product_basis(factors, gammas, 50)
    elapsed = time.perf_counter() - start
    assert basis.shape == (1_000_000, 50) and index.shape == (50, 2)
    assert elapsed < 10, f"took {elapsed:.2f} s"  # about 0.1–1 s on 2 cores
    # the 50 smallest of all 10⁶ sums of factor eigenvalues
    path_values = 2 - 2 * np.cos(np.pi * np.arange(2000) / 2000)
    cycle_values = 2 - 2 * np.cos(2 * np.pi * np.arange(500) / 500)
    every = np.add.outer(gammas[0] * path_values, gammas[1] * cycle_values).reshape(-1)
    np.testing.assert_allclose(values, np.sort(np.partition(every, 50)[:50]), atol=1e-12)
    rows = np.random.default_rng(0).choice(1_000_000, size=8, replace=False)
    np.testing.assert_allclose(kronecker_sum_rows(factors, gammas, basis, rows),
                               basis[rows] * values, atol=1e-12)
    np.testing.assert_allclose(basis.T @ basis, np.eye(50), atol=1e-10)


def test_large_general_graph_goes_through_eigsh():
    graph = connected_graph(3500, 1500, seed=1)
    assert graph.n > eigenbasis.DENSE_LIMIT
    values, vectors = axis_eigenpairs(graph, 6)
    laplacian = graph.laplacian()
    np.testing.assert_allclose(laplacian @ vectors, vectors * values, atol=1e-7)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(6), atol=1e-10)
    assert_signs_fixed(vectors)
    np.testing.assert_allclose(vectors[:, 0], np.full(graph.n, graph.n ** -0.5), atol=1e-8)
    # the smallest six, not merely six eigenpairs
    dense = scipy.linalg.eigh(laplacian.toarray(), eigvals_only=True, subset_by_index=[0, 5])
    np.testing.assert_allclose(values, np.clip(dense, 0, None), atol=1e-9)


def test_eigsh_on_an_untagged_path_matches_the_closed_form():
    n = 4000
    untagged = g.edge_list_graph(n, np.column_stack([np.arange(n - 1), np.arange(1, n)]))
    values, vectors = axis_eigenpairs(untagged, 10)
    again = axis_eigenpairs(untagged, 10)
    assert np.array_equal(values, again[0]) and np.array_equal(vectors, again[1])
    exact_values, exact_vectors = axis_eigenpairs(g.path_graph(n), 10)
    np.testing.assert_allclose(values, exact_values, atol=1e-12)
    np.testing.assert_allclose(vectors, exact_vectors, atol=1e-9)  # distinct, signs fixed


def test_large_share_falls_back_to_dense_or_is_refused(monkeypatch):
    monkeypatch.setattr(eigenbasis, "DENSE_LIMIT", 20)
    monkeypatch.setattr(eigenbasis, "DENSE_FALLBACK_LIMIT", 60)
    calls: list[str] = []
    for route in ("_dense", "_sparse"):
        original = getattr(eigenbasis, route)
        monkeypatch.setattr(eigenbasis, route,
                            lambda graph, count, f=original, r=route: calls.append(r)
                            or f(graph, count))
    graph = connected_graph(50, 40, seed=2)
    laplacian = graph.laplacian().toarray()
    dense_values = np.linalg.eigh(laplacian)[0]
    for count, route in ((3, "_sparse"), (30, "_dense")):
        values, vectors = axis_eigenpairs(graph, count)
        assert calls[-1] == route
        np.testing.assert_allclose(values, np.clip(dense_values[:count], 0, None), atol=1e-9)
        np.testing.assert_allclose(laplacian @ vectors, vectors * values, atol=1e-9)
    with pytest.raises(ValueError, match="ask for fewer"):
        axis_eigenpairs(connected_graph(80, 40, seed=3), 30)


@pytest.mark.parametrize("count", [0, -3])
def test_count_below_one_is_refused(count):
    with pytest.raises(ValueError, match="at least 1"):
        axis_eigenpairs(g.path_graph(4), count)
    with pytest.raises(ValueError, match="at least 1"):
        product_basis([g.path_graph(4)], [1.0], count)


def test_negative_weight_is_refused():
    with pytest.raises(ValueError, match="≥ 0"):
        product_basis([g.path_graph(4), g.cycle_graph(3)], [1.0, -0.5], 3)
