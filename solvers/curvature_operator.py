"""H X = blockdiag(B_k) X + P(w) X for batches X (K, P, d), fused: the stochastic
estimators (solvers.stochastic) spend most of their time here, at K = 10⁶ on 8 probes.

Where every graph part is a Laplacian on every row (no interaction, no reparametrization,
no column present in some strata only), P(w) = Σ_f γ_f (L_f ⊗ I) + diag(ridges) with γ_f
the summed weight of factor f's parts, and

    H X = D X − Σ over unit-path axes γ (neighbours' X) + Σ over other axes γ (L X)

with D = B_k + diag(ridges) + the unit-path axes' Laplacian diagonals, one d × d block per
stratum (d = 1: one number). The product is then one pass of D and two shifted
subtractions per unit-path axis, written into a preallocated output with one scratch
array: no part-by-part sums, no zeros_like, no fresh K·P·d temporaries (each of which
costs a page-faulting allocation of 64 MB at K = 10⁶, P = 8). Any other penalty takes
the part-by-part product (QuadraticPenalty.apply_batch)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .hessian import KroneckerSum, _unit_path
from .laplacian import split_grids
from .penalty import LaplacianPart, QuadraticPenalty, RidgePart


def fusable(penalty: QuadraticPenalty) -> bool:
    """Is P(w) a Kronecker sum of the factors' Laplacians (each on every row) plus
    ridges?"""
    return penalty.reparametrization is None and all(
        isinstance(part, RidgePart)
        or (isinstance(part, LaplacianPart)
            and (part.rows is None or bool(np.all(part.rows))))
        for part in penalty.parts)


class CurvatureOperator:
    """H = blockdiag(``blocks``) + P(``weights``) acting on (K, P, d) batches."""

    def __init__(self, blocks: np.ndarray, penalty: QuadraticPenalty, weights: np.ndarray):
        self.penalty = penalty
        self.weights = np.asarray(weights, dtype=float)
        self.blocks = np.asarray(blocks, dtype=float)
        self.k, self.d = penalty.k, penalty.d
        self.fused = fusable(penalty)
        self._scratch: list[np.ndarray] = []
        if not self.fused:
            return
        gammas = np.zeros(len(penalty.factors))
        ridge = np.zeros((self.k, self.d))
        for a, part in enumerate(penalty.parts):
            if isinstance(part, LaplacianPart):
                gammas[part.factor] += self.weights[a]
            else:
                assert isinstance(part, RidgePart)
                ridge += self.weights[a] * np.asarray(part.pattern, dtype=float)
        axes = split_grids(penalty.factors, gammas.tolist())
        self.shape = tuple(graph.n for graph, _ in axes) or (1,)
        # (axis, γ) for the unit paths, done by neighbours' differences; the rest by
        # their sparse Laplacian
        self._stencils: list[tuple[int, float]] = []
        self._general: list[tuple[int, sp.csr_matrix]] = []
        diagonal = np.zeros(self.shape)
        for i, (graph, gamma) in enumerate(axes):
            if gamma == 0 or not graph.n_edges:
                continue
            if _unit_path(graph):
                self._stencils.append((i, float(gamma)))
                degree = np.full(graph.n, 2.0)
                degree[[0, -1]] = 1.0
                along = [1] * len(self.shape)
                along[i] = graph.n
                diagonal = diagonal + gamma * degree.reshape(along)
            else:
                self._general.append((i, (gamma * graph.laplacian()).tocsr()))
        local = np.broadcast_to(diagonal, self.shape).reshape(self.k)[:, None] + ridge
        if self.d == 1:
            self._local = (self.blocks[:, 0, 0] + local[:, 0])[:, None]  # (K, 1)
        else:
            self._local = self.blocks + np.einsum("kc,cd->kcd", local, np.eye(self.d))

    def apply(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """H X for X (K, P, d), into ``out`` when given (not X itself)."""
        if not self.fused:
            product = (np.einsum("kab,kpb->kpa", self.blocks, x)
                       + self.penalty.apply_batch(self.weights, x))
            if out is None:
                return product
            out[...] = product
            return out
        _, p, d = x.shape
        if out is None:
            out = np.empty_like(x)
        if d == 1:
            np.multiply(self._local[:, :, None], x, out=out)
        else:
            np.einsum("kab,kpb->kpa", self._local, x, out=out)
        if not self._stencils and not self._general:
            return out
        grid = x.reshape(*self.shape, p * d)
        target = out.reshape(*self.shape, p * d)
        scaled: dict[float, np.ndarray] = {}  # γX, once per distinct weight (a grid's axes share it)
        for i, gamma in self._stencils:
            if gamma not in scaled:
                scaled[gamma] = np.multiply(grid, gamma, out=self._buffer(len(scaled), grid))
            times = scaled[gamma]
            head = (slice(None),) * i
            low, high = (*head, slice(None, -1)), (*head, slice(1, None))
            # out_j −= γ x_{j−1} and out_j −= γ x_{j+1}: the path's off-diagonal
            np.subtract(target[high], times[low], out=target[high])
            np.subtract(target[low], times[high], out=target[low])
        for i, matrix in self._general:
            target += KroneckerSum._along(grid, i, matrix)
        return out

    def _buffer(self, index: int, like: np.ndarray) -> np.ndarray:
        """The ``index``-th scratch array shaped like ``like`` (kept between calls)."""
        while len(self._scratch) <= index:
            self._scratch.append(np.empty(0))
        if self._scratch[index].shape != like.shape:
            self._scratch[index] = np.empty_like(like)
        return self._scratch[index]
