"""The Hessian of a smooth stratified objective, H = stratum blocks + Kronecker sum.

For a smooth loss of the linear predictor, ridge terms and the Laplacian penalty,

    H = blockdiag_k(X_kᵀ W_k X_k) + diag(q) + Σ_a γ_a (L_a ⊗ I),

on θ stacked as (K, d), d = n·m parameters per stratum (entry j·m + o: row j, output o).
Nothing here forms the K·d × K·d matrix or the K × K product graph: the blocks are
K small dense matrices, the Kronecker sum acts factor by factor, and the preconditioner
uses the factors' eigenbases (solvers.laplacian). The Newton method (solvers.newton)
solves with it; so can the REML and uncertainty code (H⁻¹ products, log|H| by Lanczos).

* :class:`RecordStatistics` — what is fixed across Newton steps: each record's stratum
  and features; per step it turns per-record derivatives into the gradient and the
  stratum blocks in one vectorized pass (sparse indicator products, no loop over strata).
* :class:`KroneckerSum` — Σ_a γ_a (L_a ⊗ I) X, its diagonal, and (when every axis has an
  exact eigenbasis) the exact solve of L ⊗ I + I ⊗ A₀.
* :class:`HessianOperator` — H X, with :meth:`~HessianOperator.preconditioner` (on small
  problems H's exact inverse by a banded Cholesky factorization: solvers.banded).
* :func:`pcg` — preconditioned conjugate gradients on (K, d) arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .banded import BAND_ENTRIES, DIRECT_BUDGET, DIRECT_LIMIT, BandLayout
from .graphs import Graph, Interaction
from .laplacian import KroneckerSolver, exact_kronecker, factor_axes, split_grids

Operator = Callable[[np.ndarray], np.ndarray]


class RecordStatistics:
    """Records (features x (N, n), stratum z (N,)) of K strata, θ with m outputs.

    Built once per problem, it holds the two sparse matrices every per-record pass goes
    through: the record matrix R (N × K·n, row i holds xᵢ in stratum zᵢ's columns: the
    predictors are R θ, the gradient Rᵀ d₁) and each record's feature products
    x_j x_i (j ≤ i, (N, n(n+1)/2)), which a stratum indicator weighted by the curvature
    sums into the blocks. Each pass is one compiled sparse product in record order: no
    sorting, no N × n² temporary, no Python loop over features or strata."""

    def __init__(self, x: np.ndarray, z: np.ndarray, k: int, outputs: int):
        x = np.asarray(x, dtype=float)
        self.z = np.asarray(z, dtype=np.int64)
        self.k, self.m = k, outputs
        records, self.n = x.shape
        index = np.int32 if max(k, records) * max(self.n, 1) < 2**31 else np.int64
        self._stratum = self.z.astype(index)
        self._each = np.arange(records + 1, dtype=index)  # one entry per record
        columns = (self._stratum[:, None] * self.n + np.arange(self.n, dtype=index)).ravel()
        self._records = sp.csr_matrix(
            (np.ascontiguousarray(x).ravel(), columns,
             np.arange(records + 1, dtype=index) * self.n),
            shape=(records, k * self.n))
        self._upper = [(j, i) for j in range(self.n) for i in range(j, self.n)]
        self._products: np.ndarray | None = None  # x_j x_i (j ≤ i) per record, built once
        self._x = x

    @property
    def size(self) -> int:
        """Parameters per stratum, d = n·m."""
        return self.n * self.m

    def predictor(self, theta: np.ndarray) -> np.ndarray:
        """xᵢᵀθ_{zᵢ}: (N, m) for θ of shape (K, n, m)."""
        return np.asarray(self._records @ np.reshape(theta, (self.k * self.n, self.m)))

    def gradient(self, d1: np.ndarray) -> np.ndarray:
        """Σ over each stratum's records of x ⊗ d1 (d1 (N, m), weights applied): (K, d)."""
        return np.asarray(self._records.T @ d1).reshape(self.k, self.size)

    def _pair_products(self, chunk: int = 8192) -> np.ndarray:
        """x_j x_l for every pair j ≤ l, (N, n(n+1)/2): a fixed cost, paid once. Built in
        cache-sized chunks of records, each transposed so that every product is a
        contiguous multiply (strided or fancy-indexed writes over N cost twice as much)."""
        x, records = self._x, len(self.z)
        out = np.empty((records, len(self._upper)))
        columns = np.empty((self.n, chunk))
        products = np.empty((len(self._upper), chunk))
        for at in range(0, records, chunk):
            size = min(chunk, records - at)
            columns[:, :size] = x[at:at + size].T
            for c, (j, i) in enumerate(self._upper):
                np.multiply(columns[j, :size], columns[i, :size], out=products[c, :size])
            out[at:at + size] = products[:, :size].T
        return out

    def _summed(self, weights: np.ndarray) -> np.ndarray:
        """Σ_{i in stratum k} weightsᵢ · x_ij x_il for every pair j ≤ l: (K, n(n+1)/2)."""
        if self._products is None:
            self._products = self._pair_products()
        indicator = sp.csc_matrix((np.ascontiguousarray(weights, dtype=float), self._stratum,
                                   self._each), shape=(self.k, len(self.z)))
        return np.asarray(indicator @ self._products)

    def blocks(self, d2: np.ndarray) -> np.ndarray:
        """X_kᵀ W_k X_k for every stratum, (K, d, d): d2 (N, m) elementwise curvatures, or
        (N, m, m) per-record curvature matrices (weights applied)."""
        n, m = self.n, self.m
        out = np.zeros((self.k, n, m, n, m))
        pairs = ([(o, o) for o in range(m)] if d2.ndim == 2
                 else [(o, p) for o in range(m) for p in range(o, m)])
        for o, p in pairs:
            summed = self._summed(d2[:, o] if d2.ndim == 2 else d2[:, o, p])
            for c, (j, i) in enumerate(self._upper):
                total = summed[:, c]
                out[:, j, o, i, p] = out[:, i, o, j, p] = total
                out[:, j, p, i, o] = out[:, i, p, j, o] = total
        return out.reshape(self.k, n * m, n * m)


class KroneckerSum:
    """Σ_a γ_a (I ⊗ … ⊗ L_a ⊗ … ⊗ I) acting on (K, d) arrays, factor by factor (grid
    factors split into their path axes), plus any ``interactions``: Kronecker-product
    terms w (L_a ⊗ L_b ⊗ …) over the factors they join (``interact``)."""

    def __init__(self, factors: Sequence[Graph], gammas: Sequence[float],
                 interactions: Sequence[Interaction] = ()):
        self.factors, self.gammas = tuple(factors), tuple(float(g) for g in gammas)
        self.interactions = tuple((tuple(j), float(w)) for j, w in interactions if w != 0)
        axes = split_grids(self.factors, self.gammas)
        self.shape = tuple(g.n for g, _ in axes) or (1,)
        self.k = int(np.prod(self.shape, dtype=np.int64))
        self._axes = [(gamma * graph.laplacian()).tocsr() for graph, gamma in axes
                      if gamma != 0 and graph.n_edges]
        self._positions = [i for i, (graph, gamma) in enumerate(axes)
                           if gamma != 0 and graph.n_edges]
        # unit paths act by a difference stencil along their axis (no copies of the
        # moved array, no sparse product): the weight, or None for a general axis
        self._stencils = [gamma if _unit_path(graph) else None for graph, gamma in axes
                          if gamma != 0 and graph.n_edges]
        diagonal = np.zeros(self.shape)
        for i, matrix in zip(self._positions, self._axes, strict=True):
            along = [1] * len(self.shape)
            along[i] = self.shape[i]
            diagonal = diagonal + matrix.diagonal().reshape(along)
        # each factor's axes with their unit Laplacians (for the interaction terms)
        self._factor_axes = [
            [(i, graph.laplacian().tocsr()) for i, (graph, _) in
             zip(axes_of, split_grids([g], [1.0]), strict=True)]
            for g, axes_of in zip(self.factors, factor_axes(self.factors), strict=True)]
        for joined, weight in self.interactions:
            term = np.ones([1] * len(self.shape))
            for f in joined:  # diag(L_a ⊗ L_b) = diag(L_a) ⊗ diag(L_b)
                term = term * self._factor_diagonal(f)
            diagonal = diagonal + weight * term
        self.diagonal = np.broadcast_to(diagonal, self.shape).reshape(self.k)
        self._exact = exact_kronecker(self.factors)
        self._solver: KroneckerSolver | None = None
        self._bands: dict[int, BandLayout] = {}

    def _factor_diagonal(self, f: int) -> np.ndarray:
        out = np.zeros([1] * len(self.shape))
        for i, matrix in self._factor_axes[f]:
            along = [1] * len(self.shape)
            along[i] = self.shape[i]
            out = out + matrix.diagonal().reshape(along)
        return out

    @staticmethod
    def along(grid: np.ndarray, i: int, matrix: sp.csr_matrix) -> np.ndarray:
        """``matrix`` applied along axis i of ``grid`` (the strata grid, trailing columns)."""
        moved = np.moveaxis(grid, i, 0)
        product = (matrix @ moved.reshape(grid.shape[i], -1)).reshape(moved.shape)
        return np.moveaxis(product, 0, i)

    def axes(self) -> list[tuple[int, sp.csr_matrix, float | None]]:
        """Each axis that acts (interactions aside): its position in the strata grid, γL
        along it, and γ when L is a unit path (applied by a difference stencil), else
        None."""
        return list(zip(self._positions, self._axes, self._stencils, strict=True))

    def apply(self, x: np.ndarray) -> np.ndarray:
        d = x.shape[1]
        grid = x.reshape(*self.shape, d)
        out = np.zeros_like(grid)
        for i, matrix, stencil in zip(self._positions, self._axes, self._stencils, strict=True):
            if stencil is None:
                out += self.along(grid, i, matrix)
            else:
                _path_stencil(grid, i, stencil, out)
        for joined, weight in self.interactions:
            term = grid
            for f in joined:  # L_a ⊗ L_b = (L_a ⊗ I)(I ⊗ L_b); a grid's L sums its axes'
                term = sum((self.along(term, i, matrix) for i, matrix in self._factor_axes[f]),
                           np.zeros_like(grid))
            out += weight * term
        return out.reshape(self.k, d)

    def quadratic(self, x: np.ndarray) -> float:
        """½ Σ x · (L x)."""
        return 0.5 * float(np.sum(x * self.apply(x)))

    def _lift(self, i: int, matrix: sp.csr_matrix) -> sp.csr_matrix:
        """``matrix`` acting along axis i of the strata grid, as a K × K matrix
        (I ⊗ matrix ⊗ I, its entries placed directly: scipy's kron is slow on small ones)."""
        before = int(np.prod(self.shape[:i], dtype=np.int64))
        after = int(np.prod(self.shape[i + 1:], dtype=np.int64))
        entries = matrix.tocoo()
        outer = (np.arange(before) * self.shape[i])[:, None, None]
        inner = np.arange(after)[None, None, :]
        rows = ((outer + entries.row[None, :, None]) * after + inner).reshape(-1)
        cols = ((outer + entries.col[None, :, None]) * after + inner).reshape(-1)
        values = np.broadcast_to(entries.data[None, :, None],
                                 (before, entries.nnz, after)).reshape(-1)
        return sp.csr_matrix((values, (rows, cols)), shape=(self.k, self.k))

    def matrix(self) -> sp.csr_matrix:
        """The whole sum as one sparse K × K matrix (for direct solves of small problems)."""
        total = sp.csr_matrix((self.k, self.k))
        for i, matrix in zip(self._positions, self._axes, strict=True):
            total = total + self._lift(i, matrix)
        for joined, weight in self.interactions:
            term = sp.identity(self.k, format="csr")
            for f in joined:
                term = term @ sum((self._lift(i, matrix) for i, matrix in self._factor_axes[f]),
                                  sp.csr_matrix((self.k, self.k)))
            total = total + weight * term
        return total.tocsr()

    def band(self, d: int) -> BandLayout | None:
        """The layout of a direct banded solve with d parameters per stratum (built once),
        or None above K·d = DIRECT_LIMIT."""
        if self.k * d > DIRECT_LIMIT:
            return None
        if d not in self._bands:
            self._bands[d] = BandLayout(self.matrix(), d)
        return self._bands[d]

    @property
    def exact(self) -> KroneckerSolver | None:
        """The factors' eigenbases (None when some axis is too large to diagonalize)."""
        if self._exact and self._solver is None:
            self._solver = KroneckerSolver(self.factors, self.gammas,
                                           interactions=self.interactions)
        return self._solver


def _unit_path(graph: Graph) -> bool:
    """Edges (i, i + 1) for every i, each of weight 1."""
    n = graph.n
    return (graph.n_edges == n - 1 and n >= 2 and bool(np.all(graph.weights == 1.0))
            and np.array_equal(np.sort(graph.edges, axis=1),
                               np.column_stack([np.arange(n - 1), np.arange(1, n)])))


def _path_stencil(grid: np.ndarray, i: int, gamma: float, out: np.ndarray) -> None:
    """out += γ (L ⊗ I) grid along axis i for a unit path L: (Lx)_j = (x_j − x_{j−1})
    + (x_j − x_{j+1})."""
    head = (slice(None),) * i
    diff = grid[(*head, slice(1, None))] - grid[(*head, slice(None, -1))]  # x_{j+1} − x_j
    if gamma != 1.0:
        diff *= gamma
    out[(*head, slice(1, None))] += diff
    out[(*head, slice(None, -1))] -= diff


@dataclass
class HessianOperator:
    """H X = blocks X + diagonal ∘ X + (L ⊗ I) X for X of shape (K, d); ``blocks``
    (K, d, d) symmetric positive semidefinite, ``diagonal`` (K, d) ≥ 0."""

    blocks: np.ndarray
    diagonal: np.ndarray
    laplacian: KroneckerSum

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.blocks.shape[1] == 1:  # d = 1: products of numbers, no einsum
            return (self.blocks[:, 0, :] + self.diagonal) * x + self.laplacian.apply(x)
        return (np.einsum("kab,kb->ka", self.blocks, x) + self.diagonal * x
                + self.laplacian.apply(x))

    def local(self) -> np.ndarray:
        """The stratum blocks with the diagonal terms: (K, d, d)."""
        d = self.blocks.shape[1]
        out = self.blocks.copy()
        out[:, np.arange(d), np.arange(d)] += self.diagonal
        return out

    def block_jacobi(self) -> Operator:
        """The inverse of H's K diagonal blocks (each with the Laplacian's diagonal)."""
        local = self.local()
        d = local.shape[1]
        local[:, np.arange(d), np.arange(d)] += self.laplacian.diagonal[:, None]
        if d == 1:  # (not a million 1 × 1 inversions and einsums)
            reciprocal = 1.0 / _definite(local)[:, 0, :]
            return lambda r: reciprocal * r
        inverse = np.linalg.inv(_definite(local))
        return lambda r: np.einsum("kab,kb->ka", inverse, r)

    def kronecker(self) -> Operator | None:
        """The exact inverse of L ⊗ I + I ⊗ A₀, A₀ the strata's mean block: with
        A₀ = U diag(μ) Uᵀ it is diagonal in (factors' eigenbases) ⊗ U, eigenvalues
        λ_i(L) + μ_j. None without exact factor eigenbases."""
        solver = self.laplacian.exact
        if solver is None:
            return None
        mean = _definite(self.local().mean(axis=0)[None])[0]
        mu, basis = np.linalg.eigh(mean)
        scale = 1.0 / (solver.spectrum[..., None] + mu)
        shape = solver.shape

        def apply(r: np.ndarray) -> np.ndarray:
            d = r.shape[1]
            spectral = solver.forward(np.ascontiguousarray(r @ basis).reshape(*shape, d))
            spectral *= scale
            back = np.ascontiguousarray(solver.backward(spectral)).reshape(len(r), d)
            return back @ basis.T

        return apply

    def direct(self, always: bool = False) -> Operator | None:
        """H's exact inverse by a banded Cholesky factorization (solvers.banded), when
        K·d ≤ DIRECT_LIMIT, the band holds at most BAND_ENTRIES numbers and (unless
        ``always``) the factorization costs at most DIRECT_BUDGET flops; None otherwise
        or when H is not numerically definite."""
        layout = self.laplacian.band(self.blocks.shape[1])
        if layout is None or layout.entries > BAND_ENTRIES or (
                not always and layout.flops > DIRECT_BUDGET):
            return None
        return layout.factor(self.blocks, self.diagonal)

    def preconditioner(self, kind: str = "auto") -> Operator:
        """An approximate inverse of H: 'block' (block Jacobi), 'kronecker' (the exact
        Kronecker-sum solve with the mean block), 'direct' (H's exact inverse by a banded
        Cholesky factorization, up to K·d = DIRECT_LIMIT), or 'auto' (the direct solve
        when it is cheap; else the symmetric two-step combination of block Jacobi for the
        strata's differences and, where it exists, the Kronecker solve for the graph's
        smooth modes). 'direct' falls back to 'auto' where it cannot be had."""
        if kind in ("auto", "direct"):
            exact = self.direct(always=kind == "direct")
            if exact is not None:
                return exact
            kind = "auto"
        block = self.block_jacobi()
        kron = self.kronecker() if kind in ("kronecker", "auto") else None
        if kind == "block" or kron is None:
            return block
        if kind == "kronecker":
            return kron

        def combined(r: np.ndarray) -> np.ndarray:
            first = block(r)
            second = first + kron(r - self(first))
            return second + block(r - self(second))

        return combined


def _definite(blocks: np.ndarray) -> np.ndarray:
    """Blocks nudged to definite where singular (a stratum with no data and no ridge, or
    multinomial's shift-invariant direction): only the preconditioner sees the nudge."""
    d = blocks.shape[1]
    scale = np.maximum(np.abs(blocks[:, np.arange(d), np.arange(d)]).max(axis=1), 1e-300)
    out = blocks.copy()
    out[:, np.arange(d), np.arange(d)] += 1e-10 * scale[:, None] + 1e-300
    return out


@dataclass(frozen=True)
class CGResult:
    x: np.ndarray
    iterations: int
    residual: float  # relative: ‖b − Hx‖ / ‖b‖
    converged: bool


def pcg(apply: Operator, precondition: Operator, b: np.ndarray, rtol: float,
        max_iter: int) -> CGResult:
    """Preconditioned conjugate gradients for H x = b from x = 0, to ‖r‖ ≤ rtol ‖b‖.
    Stops early (not converged) on a direction of nonpositive curvature: the iterate
    so far is still a descent direction for a Newton step."""
    x = np.zeros_like(b)
    r = b.copy()
    norm_b = float(np.linalg.norm(b))
    if norm_b == 0:
        return CGResult(x, 0, 0.0, True)
    z = precondition(r)
    p = z.copy()
    rz = float(np.sum(r * z))
    for step in range(1, max_iter + 1):
        q = apply(p)
        curvature = float(np.sum(p * q))
        if not curvature > 0 or not rz > 0:
            return CGResult(x, step - 1, float(np.linalg.norm(r)) / norm_b, False)
        alpha = rz / curvature
        x += alpha * p
        r -= alpha * q
        residual = float(np.linalg.norm(r)) / norm_b
        if residual <= rtol:
            return CGResult(x, step, residual, True)
        z = precondition(r)
        rz_new = float(np.sum(r * z))
        p = z + (rz_new / rz) * p
        rz = rz_new
    return CGResult(x, max_iter, float(np.linalg.norm(r)) / norm_b, False)
