"""Smallest Laplacian eigenpairs of graph factors and of their Cartesian product.

An eigen-stratified model writes θ = V_M β, with V_M the M eigenvectors of the product
Laplacian L = Σ_a γ_a (I ⊗ … ⊗ L_a ⊗ … ⊗ I) with the smallest eigenvalues. Every
eigenvector of L is a Kronecker product of factor eigenvectors (C order, first factor
slowest) and its eigenvalue is Σ_a γ_a λ_a, so only each factor's few smallest pairs are
computed (closed forms for unit paths, cycles, complete graphs, stars, grids and edgeless
graphs; a dense or shift-invert sparse eigensolver otherwise) and the M smallest sums are
picked by a best-first search: neither L nor any K × K matrix is ever formed.
"""

from __future__ import annotations

import heapq
import operator
from collections.abc import Sequence

import numpy as np
import scipy.sparse.linalg as spla

from .graphs import Graph, cycle_graph, grid_graph, path_graph
from .laplacian import DENSE_LIMIT, split_grids
from .threads import eigh

SPARSE_SHARE = 0.1  # eigsh is used for at most this share of a large graph's spectrum
DENSE_FALLBACK_LIMIT = 10_000  # above DENSE_LIMIT, still diagonalized densely if must be
SHIFT = 1e-6  # eigsh's shift, −SHIFT × the largest weighted degree: L − σI is definite


def axis_eigenpairs(graph: Graph, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(eigenvalues, vectors): the ``min(count, n)`` smallest eigenvalues of the graph's
    Laplacian, ascending and clipped at 0, and orthonormal eigenvectors as the columns of
    an n × min(count, n) array.

    Closed forms serve uniformly weighted paths (DCT-II), cycles (real Fourier basis),
    complete graphs, stars, grids and edgeless graphs, at any size; other graphs are
    diagonalized densely up to ``DENSE_LIMIT`` nodes and by shift-invert ``eigsh`` near
    0 beyond. The output is deterministic: each vector's first clearly nonzero entry is
    positive (within a degenerate eigenvalue the basis is still the method's choice). Up to
    ``DENSE_LIMIT`` nodes, and for the closed forms at any size, the pairs for a count are
    the first ones for any larger count (the bases nest); through eigsh they need not."""
    count = _check_count(count)
    if graph.n < 1:
        raise ValueError("the graph has no nodes")
    count = min(count, graph.n)
    closed = _closed_form(graph, count)
    if closed is not None:
        values, vectors = closed
    elif graph.n <= DENSE_LIMIT:
        values, vectors = _dense(graph, count)
    elif count <= SPARSE_SHARE * graph.n:
        values, vectors = _sparse(graph, count)
    elif graph.n <= DENSE_FALLBACK_LIMIT:
        values, vectors = _dense(graph, count)
    else:
        raise ValueError(
            f"{count} of the {graph.n} eigenpairs of a general graph: more than the sparse "
            f"eigensolver computes well ({SPARSE_SHARE:.0%} of the nodes, here "
            f"{int(SPARSE_SHARE * graph.n)}), and the graph is too large to diagonalize "
            f"densely (over {DENSE_FALLBACK_LIMIT} nodes); ask for fewer eigenvectors")
    return np.clip(values, 0.0, None), _fix_signs(vectors)


def product_basis(factors: Sequence[Graph], gammas: Sequence[float], count: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(eigenvalues, V, index) for the product's M = min(count, K) smallest eigenvalues.

    eigenvalues (M,) ascending; V (K × M) with orthonormal columns, each the Kronecker
    product of one eigenvector per axis (grid factors split into their path axes, C order,
    first axis slowest); index (M × A) the axis eigenvector each column uses. Ties are
    broken lexicographically by multi-index, so V[:, 0] is the constant vector when every
    factor is connected, a factor with γ = 0 adds 0 whatever its index, and the columns
    for a count are the first ones for any larger count (when the axes' bases nest, see
    :func:`axis_eigenpairs`)."""
    count = _check_count(count)
    axes = split_grids(factors, gammas)
    weights = [float(gamma) for _, gamma in axes]
    if not all(np.isfinite(w) and w >= 0 for w in weights):
        raise ValueError(f"factor weights must be finite and ≥ 0, not {list(gammas)}")
    k = int(np.prod([graph.n for graph, _ in axes], dtype=np.int64))
    m = min(count, k)
    pairs = [axis_eigenpairs(graph, min(count, graph.n)) for graph, _ in axes]
    scaled = [w * values if w > 0 else np.zeros_like(values)
              for w, (values, _) in zip(weights, pairs, strict=True)]
    eigenvalues, index = _smallest_sums(scaled, m)
    basis = np.ones((1, m))
    for (_, vectors), column in zip(pairs, index.T, strict=True):
        chosen = vectors[:, column]
        basis = np.multiply(basis[:, None, :], chosen[None, :, :]).reshape(-1, m)
    return eigenvalues, basis, index


def _check_count(count: int) -> int:
    count = operator.index(count)
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    return count


def _smallest_sums(values: Sequence[np.ndarray], m: int) -> tuple[np.ndarray, np.ndarray]:
    """The m smallest Σ_a values[a][i_a] over multi-indices i, ascending, ties broken
    lexicographically by i: a best-first search from (0, …, 0) over a heap. Each ascending
    list is scanned only as far as needed; a multi-index is pushed by one parent only (it
    raises the coordinates from its last nonzero one on), and a parent precedes its
    children in the (sum, multi-index) order, so the heap pops them in that order."""
    lists = [v.tolist() for v in values]
    sizes = [len(v) for v in lists]
    dims = len(lists)

    def total(idx: tuple[int, ...]) -> float:
        return float(sum(lists[a][i] for a, i in enumerate(idx)))

    root = (0,) * dims
    heap: list[tuple[float, tuple[int, ...]]] = [(total(root), root)]
    sums: list[float] = []
    chosen: list[tuple[int, ...]] = []
    while len(chosen) < m:
        value, idx = heapq.heappop(heap)
        sums.append(value)
        chosen.append(idx)
        last = max((a for a in range(dims) if idx[a]), default=0)
        for a in range(last, dims):
            if idx[a] + 1 < sizes[a]:
                child = (*idx[:a], idx[a] + 1, *idx[a + 1:])
                heapq.heappush(heap, (total(child), child))
    return np.asarray(sums), np.asarray(chosen, dtype=np.int64).reshape(m, dims)


def _fix_signs(vectors: np.ndarray) -> np.ndarray:
    """Each column's first entry above 1e-8 of its largest magnitude made positive."""
    if vectors.size == 0:
        return vectors
    magnitude = np.abs(vectors)
    first = np.argmax(magnitude > 1e-8 * magnitude.max(axis=0), axis=0)
    signs = np.where(vectors[first, np.arange(vectors.shape[1])] < 0, -1.0, 1.0)
    return vectors * signs


def _uniform_weight(graph: Graph) -> float | None:
    """The common weight of all edges (1 for no edges), or None when they differ."""
    if graph.n_edges == 0:
        return 1.0
    first = float(graph.weights[0])
    return first if first > 0 and bool(np.all(graph.weights == first)) else None


def _edge_codes(graph: Graph) -> np.ndarray:
    edges = np.asarray(graph.edges, dtype=np.int64).reshape(-1, 2)
    low, high = edges.min(axis=1), edges.max(axis=1)
    return np.sort(low * graph.n + high)


def _same_edges(graph: Graph, expected: Graph) -> bool:
    """The tag is trusted only when the edges are exactly the tagged structure's."""
    return graph.n_edges == expected.n_edges and bool(
        np.array_equal(_edge_codes(graph), _edge_codes(expected)))


def _simple_edges(graph: Graph) -> bool:
    """No self-loops, no repeated edge, every endpoint a node."""
    edges = np.asarray(graph.edges).reshape(-1, 2)
    if graph.n_edges and (edges.min() < 0 or edges.max() >= graph.n):
        return False
    codes = _edge_codes(graph)
    return bool(np.all(edges[:, 0] != edges[:, 1])) and bool(np.all(np.diff(codes) > 0))


def _closed_form(graph: Graph, count: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Eigenpairs of a uniformly weighted graph of known structure, or None."""
    weight = _uniform_weight(graph)
    n = graph.n
    if weight is None:
        return None
    if graph.n_edges == 0:
        values, vectors = np.zeros(count), np.eye(n, count)
    elif graph.structure == "path" and _same_edges(graph, path_graph(n)):
        values, vectors = _path(n, count)
    elif graph.structure == "cycle" and n >= 3 and _same_edges(graph, cycle_graph(n)):
        values, vectors = _cycle(n, count)
    elif graph.structure == "complete" and graph.n_edges == n * (n - 1) // 2 \
            and _simple_edges(graph):
        values = np.where(np.arange(count) == 0, 0.0, float(n))
        vectors = _helmert(np.arange(n), n, count)
    elif graph.structure == "star" and graph.n_edges == n - 1 and _simple_edges(graph):
        degrees = np.bincount(np.asarray(graph.edges).reshape(-1), minlength=n)
        center = int(np.argmax(degrees))
        if degrees[center] != n - 1 or np.count_nonzero(degrees == 1) < n - 1:
            return None
        values, vectors = _star(n, center, count)
    elif graph.structure == "grid" and graph.shape and int(np.prod(graph.shape)) == n \
            and _same_edges(graph, grid_graph(graph.shape)):
        paths = [path_graph(size) for size in graph.shape]
        values, vectors, _ = product_basis(paths, [weight] * len(paths), count)
        return values, vectors
    else:
        return None
    return weight * values, vectors


def _path(n: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal DCT-II vectors: v_i[j] ∝ cos(π i (j + ½)/n), eigenvalue 2 − 2cos(π i/n)."""
    i = np.arange(count)
    vectors = np.cos(np.pi * np.outer(np.arange(n) + 0.5, i) / n) * np.sqrt(2.0 / n)
    vectors[:, 0] = 1.0 / np.sqrt(n)
    return 2.0 - 2.0 * np.cos(np.pi * i / n), vectors


def _cycle(n: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Real Fourier basis, ascending: the constant; cos and sin for frequency f (eigenvalue
    2 − 2cos(2π f/n)), f = 1 … ⌈n/2⌉ − 1; the alternating vector when n is even."""
    freq = np.concatenate([[0], np.repeat(np.arange(1, (n + 1) // 2), 2),
                           [n // 2] if n % 2 == 0 else []])[:count].astype(np.int64)
    sine = np.zeros(count, dtype=bool)
    sine[2::2] = True  # columns 1, 2 are cos, sin of frequency 1; 3, 4 of frequency 2; …
    sine &= (freq > 0) & (2 * freq != n)
    angle = 2 * np.pi * np.outer(np.arange(n), freq) / n
    vectors = np.where(sine, np.sin(angle), np.cos(angle)) * np.sqrt(2.0 / n)
    single = (freq == 0) | (2 * freq == n)  # the constant and the alternating vector
    vectors[:, single] /= np.sqrt(2.0)
    return 2.0 - 2.0 * np.cos(2 * np.pi * freq / n), vectors


def _helmert(nodes: np.ndarray, n: int, count: int) -> np.ndarray:
    """The constant vector, then Helmert contrasts over ``nodes`` (1, …, 1, −i, 0, …)/‖·‖:
    an orthonormal basis whose vectors after the first sum to 0 on ``nodes``."""
    vectors = np.zeros((n, count))
    vectors[:, 0] = 1.0 / np.sqrt(n)
    if count > 1:
        i = np.arange(1, count)
        rank = np.arange(len(nodes))[:, None]
        contrast = np.where(rank < i, 1.0, np.where(rank == i, -i.astype(float), 0.0))
        vectors[nodes, 1:] = contrast / np.sqrt(i * (i + 1.0))
    return vectors


def _star(n: int, center: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalue 0 (constant), 1 (n − 2 leaf contrasts) and n (leaves against the center)."""
    leaves = np.delete(np.arange(n), center)
    values = np.ones(count)
    values[0] = 0.0
    vectors = np.zeros((n, count))
    inner = min(count, n - 1)  # the constant and the leaf contrasts
    vectors[:, :inner] = _helmert(leaves, n, inner)
    vectors[:, 0] = 1.0 / np.sqrt(n)
    if count == n and n >= 2:
        values[-1] = float(n)
        vectors[:, -1] = 1.0
        vectors[center, -1] = -(n - 1.0)
        vectors[:, -1] /= np.sqrt(n * (n - 1.0))
    return values, vectors


def _dense(graph: Graph, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The full decomposition, sliced: a subset solver would pick a different basis of a
    degenerate eigenvalue for each count, and bases for growing counts would not nest."""
    values, vectors = eigh(graph.laplacian().toarray())
    return values[:count], vectors[:, :count]


def _sparse(graph: Graph, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Shift-invert Lanczos just below 0 (L − σI definite, so its factorization is sound),
    from a fixed start vector; a final Rayleigh–Ritz step makes the vectors orthonormal to
    rounding and the eigenvalues the best estimates from their span."""
    laplacian = graph.laplacian().tocsc()
    sigma = -SHIFT * max(float(laplacian.diagonal().max()), 1e-300)
    start = np.random.default_rng(0).standard_normal(graph.n)
    _, vectors = spla.eigsh(laplacian, k=count, sigma=sigma, which="LM", v0=start)
    basis, _ = np.linalg.qr(vectors)
    values, rotation = eigh(basis.T @ (laplacian @ basis))
    return values, basis @ rotation
