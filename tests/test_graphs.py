"""solvers.graphs: factors, incidence, lifted products, the Laplacian quadratic form."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratlang.solvers import graphs as g

FACTORS = {
    "path": g.path_graph, "cycle": g.cycle_graph, "complete": g.complete_graph,
    "star": lambda n: g.star_graph(n, 0),
}
NX = {"path": nx.path_graph, "cycle": nx.cycle_graph, "complete": nx.complete_graph,
      "star": lambda n: nx.star_graph(n - 1)}


@given(st.sampled_from(sorted(FACTORS)), st.integers(1, 9))
def test_factor_laplacians_match_networkx(kind, n):
    ours = FACTORS[kind](n).laplacian().toarray()
    theirs = nx.laplacian_matrix(NX[kind](n), nodelist=range(n)).toarray()
    np.testing.assert_allclose(ours, theirs)


def test_grid_is_the_product_of_paths():
    grid = g.grid_graph((3, 4))
    ref = nx.laplacian_matrix(nx.grid_2d_graph(3, 4), nodelist=[(i, j) for i in range(3)
                                                                for j in range(4)]).toarray()
    np.testing.assert_allclose(grid.laplacian().toarray(), ref)
    assert grid.n_edges == 3 * 3 + 2 * 4


def test_edge_list_merges_parallel_edges_and_drops_loops():
    graph = g.edge_list_graph(3, np.array([[0, 1], [1, 0], [2, 2], [1, 2]]), np.array([1, 2, 5, 1.0]))
    assert graph.edges.tolist() == [[0, 1], [1, 2]] and graph.weights.tolist() == [3.0, 1.0]
    assert g.is_tree(graph) and not g.is_tree(g.cycle_graph(4))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(FACTORS)), st.integers(1, 5)), min_size=1,
                max_size=3),
       st.lists(st.floats(0, 10), min_size=3, max_size=3), st.integers(1, 3), st.integers(0, 99))
def test_product_never_formed_equals_kronecker_sum(spec, weights, width, seed):
    factors = [FACTORS[k](n) for k, n in spec]
    weights = weights[:len(factors)]
    k = int(np.prod([f.n for f in factors]))
    # explicit Kronecker sum Σ w_a I ⊗ L_a ⊗ I
    dense = np.zeros((k, k))
    for a, (f, w) in enumerate(zip(factors, weights, strict=True)):
        term = np.ones((1, 1))
        for b, other in enumerate(factors):
            term = np.kron(term, f.laplacian().toarray() if a == b else np.eye(other.n))
        dense += w * term
    np.testing.assert_allclose(g.product_laplacian(factors, weights).toarray(), dense, atol=1e-9)
    theta = np.random.default_rng(seed).normal(size=(k, width))
    expected = 0.5 * np.trace(theta.T @ dense @ theta)
    assert np.isclose(g.laplacian_quadratic(factors, weights, theta), expected, rtol=1e-9, atol=1e-9)


def test_quadratic_form_a_few_edges_at_a_time_is_the_kronecker_sum(monkeypatch):
    """The squared differences are taken a few edges at a time (all at once they were
    larger than θ: 0.6 s of each crime-scale objective); with pieces of one edge, weighted
    edges and a grid, the form is still ½ θᵀ(Σ w_a I ⊗ L_a ⊗ I)θ."""
    monkeypatch.setattr(g, "PIECE", 1)
    edges = np.array([[0, 1], [1, 2], [2, 3], [0, 3], [1, 3]])
    factors = [g.edge_list_graph(4, edges, np.array([0.5, 2.0, 1.0, 3.0, 0.25])),
               g.grid_graph((3, 2)), g.cycle_graph(5)]
    weights = [2.0, 0.5, 3.0]
    theta = np.random.default_rng(0).normal(size=(4 * 6 * 5, 2))
    dense = g.product_laplacian(factors, weights).toarray()
    expected = 0.5 * np.trace(theta.T @ dense @ theta)
    assert g.laplacian_quadratic(factors, weights, theta) == pytest.approx(expected, rel=1e-13)
