"""Regularization graphs and their Cartesian products, as arrays.

A :class:`Graph` is one factor: ``n`` nodes, an edge list and edge weights, plus a
``structure`` tag ('path', 'cycle', 'complete', 'star', 'grid' or 'general') that fast
Laplacian solvers may exploit. A product of factors is never materialized: the lifted
incidence of factor ``a`` acts on the C-ordered product index (first factor slowest).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Graph:
    n: int
    edges: np.ndarray  # (E, 2) int, i < j
    weights: np.ndarray  # (E,) float, > 0
    structure: str = "general"
    shape: tuple[int, ...] = field(default=())  # grid dimensions, for structure == 'grid'

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    def incidence(self) -> sp.csr_matrix:
        """E × n matrix B with rows sqrt(w_e)(e_i − e_j): BᵀB is the Laplacian."""
        e = len(self.edges)
        rows = np.repeat(np.arange(e), 2)
        cols = self.edges.reshape(-1)
        s = np.sqrt(self.weights)
        vals = np.column_stack([s, -s]).reshape(-1)
        return sp.csr_matrix((vals, (rows, cols)), shape=(e, self.n))

    def laplacian(self) -> sp.csr_matrix:
        b = self.incidence()
        return (b.T @ b).tocsr()


def _graph(n: int, edges: list[tuple[int, int]] | np.ndarray, weights=None,
           structure: str = "general", shape: tuple[int, ...] = ()) -> Graph:
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    e = np.sort(e, axis=1)
    w = np.ones(len(e)) if weights is None else np.asarray(weights, dtype=float)
    return Graph(n, e, w, structure, shape)


def path_graph(n: int) -> Graph:
    return _graph(n, [(i, i + 1) for i in range(n - 1)], structure="path")


def cycle_graph(n: int) -> Graph:
    if n < 3:  # a 2-cycle is one edge, not two parallel ones
        return path_graph(n)
    return _graph(n, [(i, (i + 1) % n) for i in range(n)], structure="cycle")


def complete_graph(n: int) -> Graph:
    i, j = np.triu_indices(n, k=1)
    return _graph(n, np.column_stack([i, j]), structure="complete")


def star_graph(n: int, center: int) -> Graph:
    return _graph(n, [(center, j) for j in range(n) if j != center], structure="star")


def grid_graph(shape: Sequence[int]) -> Graph:
    """The 4-neighbour lattice (a Cartesian product of paths), C-ordered nodes."""
    shape = tuple(int(s) for s in shape)
    index = np.arange(int(np.prod(shape))).reshape(shape)
    edges = []
    for axis in range(len(shape)):
        a = np.moveaxis(index, axis, 0)
        edges.append(np.column_stack([a[:-1].reshape(-1), a[1:].reshape(-1)]))
    return _graph(int(index.size), np.concatenate(edges), structure="grid", shape=shape)


def edge_list_graph(n: int, edges: np.ndarray, weights: np.ndarray | None = None) -> Graph:
    """A general graph; parallel edges are merged by adding their weights."""
    e = np.sort(np.asarray(edges, dtype=np.int64).reshape(-1, 2), axis=1)
    w = np.ones(len(e)) if weights is None else np.asarray(weights, dtype=float)
    keep = e[:, 0] != e[:, 1]
    e, w = e[keep], w[keep]
    uniq, inverse = np.unique(e, axis=0, return_inverse=True)
    merged = np.bincount(inverse.reshape(-1), weights=w, minlength=len(uniq))
    return Graph(n, uniq.reshape(-1, 2), merged, "general")


def is_tree(graph: Graph) -> bool:
    return graph.n_edges == graph.n - 1 and n_components(graph) == 1


def component_labels(graph: Graph) -> np.ndarray:
    """(n,) the connected component of each node, numbered from 0."""
    from scipy.sparse.csgraph import connected_components

    adj = sp.coo_matrix((np.ones(graph.n_edges), (graph.edges[:, 0], graph.edges[:, 1])),
                        shape=(graph.n, graph.n))
    return connected_components(adj, directed=False)[1].astype(np.int64)


def n_components(graph: Graph) -> int:
    return int(component_labels(graph).max(initial=-1)) + 1


def product_components(factors: Sequence[Graph], weights: Sequence[float],
                       constant: Sequence[bool] = ()) -> np.ndarray:
    """(K,) the connected component of each node of the Kronecker-sum product graph (C
    order): a factor of weight 0 joins nothing, so each of its nodes splits the product;
    a factor along which the values are held constant (``constant``) joins all its nodes."""
    labels = [np.zeros(g.n, dtype=np.int64) if constant and constant[a]
              else component_labels(g) if w > 0 else np.arange(g.n, dtype=np.int64)
              for a, (g, w) in enumerate(zip(factors, weights, strict=True))]
    if not labels:
        return np.zeros(1, dtype=np.int64)
    sizes = tuple(int(lab.max(initial=-1)) + 1 for lab in labels)
    grids = np.meshgrid(*labels, indexing="ij")
    return np.ravel_multi_index(tuple(g.ravel() for g in grids), sizes).astype(np.int64)


def induced(graph: Graph, keep: np.ndarray) -> Graph:
    """The subgraph on the nodes ``keep`` marks (renumbered in order), with the edges
    between them."""
    if keep.all():
        return graph
    number = np.cumsum(keep) - 1
    inside = keep[graph.edges[:, 0]] & keep[graph.edges[:, 1]]
    return Graph(int(keep.sum()), number[graph.edges[inside]], graph.weights[inside])


def lifted_incidence(factors: Sequence[Graph], axis: int) -> sp.csr_matrix:
    """Incidence of factor ``axis`` in the Cartesian product: I ⊗ … ⊗ B_a ⊗ … ⊗ I.

    Its Gram matrix is that factor's term of the Kronecker-sum Laplacian; the product
    Laplacian itself (K × K) is never formed.
    """
    before = int(np.prod([f.n for f in factors[:axis]], dtype=np.int64))
    after = int(np.prod([f.n for f in factors[axis + 1:]], dtype=np.int64))
    b = factors[axis].incidence()
    return sp.kron(sp.kron(sp.identity(before, format="csr"), b), sp.identity(after, format="csr"),
                   format="csr")


def product_laplacian(factors: Sequence[Graph], weights: Sequence[float]) -> sp.csr_matrix:
    """Σ_a w_a (I ⊗ … ⊗ L_a ⊗ … ⊗ I); for small products (tests, diagnostics)."""
    k = int(np.prod([f.n for f in factors], dtype=np.int64))
    total = sp.csr_matrix((k, k))
    for axis, w in enumerate(weights):
        b = lifted_incidence(factors, axis)
        total = total + w * (b.T @ b)
    return total.tocsr()


# a Kronecker-product interaction term: the factors it joins (positions) and its weight,
# penalty (w/2) θᵀ (⊗_{a joined} L_a ⊗ I elsewhere) θ
Interaction = tuple[tuple[int, ...], float]


def _differences(grid: np.ndarray, factor: Graph, axis: int) -> np.ndarray:
    """√w_e (x_i − x_j) along ``axis`` for every edge e = (i, j) of ``factor``."""
    a = np.take(grid, factor.edges[:, 0], axis=axis)
    b = np.take(grid, factor.edges[:, 1], axis=axis)
    ew = np.sqrt(factor.weights).reshape([-1 if i == axis else 1 for i in range(grid.ndim)])
    return ew * (a - b)


PIECE = 1 << 18  # entries of the differences taken at a time by _squared_differences


def _squared_differences(grid: np.ndarray, factor: Graph, axis: int) -> float:
    """Σ_e w_e ‖x_i − x_j‖² along ``axis`` over the edges e = (i, j) of ``factor``, a few
    edges at a time: the differences of all edges at once are larger than θ (a 20 × 20
    grid's 760 edges: 2.2 θ, taken twice), and their squares summed by dot."""
    n = grid.shape[axis]
    rows = grid.reshape(int(np.prod(grid.shape[:axis], dtype=np.int64)), n, -1)
    per_edge = rows.shape[0] * rows.shape[2]
    step = max(1, PIECE // max(per_edge, 1))
    unit = bool(np.all(factor.weights == 1.0))
    root = np.sqrt(factor.weights)
    total = 0.0
    for lo in range(0, factor.n_edges, step):
        edges = factor.edges[lo:lo + step]
        diff = np.take(rows, edges[:, 0], axis=1)
        diff -= np.take(rows, edges[:, 1], axis=1)
        if not unit:  # (√w (x_i − x_j), squared: as _differences has it)
            diff *= root[lo:lo + step, None]
        flat = diff.reshape(-1)
        total += float(np.dot(flat, flat))
    return total


def laplacian_quadratic(factors: Sequence[Graph], weights: Sequence[float],
                        theta: np.ndarray, interactions: Sequence[Interaction] = ()) -> float:
    """½ Σ_edges w ‖θ_i − θ_j‖² for θ of shape (K, ...), without forming the product;
    plus each interaction's (w/2) θᵀ(L_a ⊗ L_b …)θ: the squared differences along every
    factor it joins, in turn."""
    shape = [f.n for f in factors]
    flat = theta.reshape(len(theta), -1)
    grid = flat.reshape(*shape, flat.shape[1])
    total = 0.0
    for axis, (factor, w) in enumerate(zip(factors, weights, strict=True)):
        if w == 0 or factor.n_edges == 0:
            continue
        total += 0.5 * w * _squared_differences(grid, factor, axis)
    for axes, w in interactions:
        if w == 0 or any(factors[a].n_edges == 0 for a in axes):
            continue
        diff = grid
        for a in axes:
            diff = _differences(diff, factors[a], a)
        total += 0.5 * w * float(np.sum(diff ** 2))
    return total


@dataclass(frozen=True)
class RowGroup:
    """Parameter rows present in some strata only: ``rows`` (positions on θ's second
    axis), the ``strata`` they are present in (sorted; None: all), and the factors of the
    graph those strata induce (a product of subsets is the product of induced factors)."""

    rows: np.ndarray
    strata: np.ndarray | None
    factors: tuple[Graph, ...]
    # the group's own weight per factor (None: the model's), and the factors along which
    # its rows are constant (an exact constraint, not a weight: ``()`` none)
    gammas: tuple[float, ...] | None = None
    constant: tuple[bool, ...] = ()

    def weights(self, model: Sequence[float]) -> tuple[float, ...]:
        """The weight of each factor for these rows (0 along a factor they are constant on)."""
        own = tuple(model) if self.gammas is None else self.gammas
        return tuple(0.0 if self.is_constant(a) else w for a, w in enumerate(own))

    def is_constant(self, axis: int) -> bool:
        return bool(self.constant) and self.constant[axis]

    def block(self, theta: np.ndarray) -> np.ndarray:
        return theta[:, self.rows] if self.strata is None else theta[np.ix_(self.strata,
                                                                           self.rows)]


def grouped_laplacian_quadratic(groups: Sequence[RowGroup], weights: Sequence[float],
                                theta: np.ndarray, interactions: Sequence[Interaction] = ()
                                ) -> float:
    """½ Σ_edges w ‖θ_i − θ_j‖², each row group over the edges between its strata, with
    its own weights (a row constant along a factor has none there)."""
    return sum((laplacian_quadratic(g.factors, g.weights(weights), g.block(theta),
                                    interactions) for g in groups), 0.0)


def interaction_incidence(factors: Sequence[Graph], axes: Sequence[int]) -> sp.csr_matrix:
    """⊗ over the factors of B_a where a is joined by the interaction, I elsewhere: its
    Gram matrix is the interaction's L_a ⊗ L_b ⊗ I."""
    out = sp.identity(1, format="csr")
    for a, factor in enumerate(factors):
        part = factor.incidence() if a in axes else sp.identity(factor.n, format="csr")
        out = sp.kron(out, part, format="csr")
    return out


def constancy_incidence(factors: Sequence[Graph], axis: int) -> sp.csr_matrix:
    """Differences of consecutive nodes of factor ``axis``, lifted to the product: zero
    exactly when x is constant along that factor."""
    return lifted_incidence([*factors[:axis], path_graph(factors[axis].n), *factors[axis + 1:]],
                            axis)


def grouped_lift(groups: Sequence[RowGroup], k: int, n: int,
                 matrix_of: Callable[[RowGroup], sp.csr_matrix | None]) -> sp.csr_matrix:
    """A matrix on each row group's strata (``matrix_of``; None: nothing) lifted onto θ
    stacked stratum-major (K·n entries), on the group's own rows."""
    blocks = []
    for group in groups:
        lifted = matrix_of(group)
        if lifted is None or lifted.shape[0] == 0:
            continue
        blocks.append(_on_group(lifted, group, k, n))
    return sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, k * n))


def _on_group(lifted: sp.spmatrix, group: RowGroup, k: int, n: int) -> sp.csr_matrix:
    """An operator on a group's strata (all K when it names none), lifted onto θ stacked
    stratum-major (K·n entries) and restricted to the group's own rows."""
    if group.strata is not None:  # onto the group's strata among all K
        lifted = lifted @ sp.csr_matrix((np.ones(len(group.strata)),
                                         (np.arange(len(group.strata)), group.strata)),
                                        shape=(len(group.strata), k))
    pick = sp.csr_matrix((np.ones(len(group.rows)),
                          (np.arange(len(group.rows)), group.rows)), shape=(len(group.rows), n))
    return sp.kron(lifted, pick, format="csr")


def grouped_incidence(groups: Sequence[RowGroup], axis: int, k: int, n: int) -> sp.csr_matrix:
    """The incidence of factor ``axis`` on θ stacked stratum-major (K·n entries): each row
    group's edges between its own strata, on its own rows (one group of all rows and all
    strata: I ⊗ … ⊗ B_a ⊗ … ⊗ I ⊗ I_n)."""
    blocks = []
    for group in groups:
        lifted = lifted_incidence(group.factors, axis)
        if lifted.shape[0] == 0:
            continue
        blocks.append(_on_group(lifted, group, k, n))
    return sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, k * n))
