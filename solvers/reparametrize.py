"""θ = Tφ: coefficients held constant along some factors, as a smaller free vector φ.

A parameter column (one row's one output) that is constant along a set C of the factors
varies only over the product of the others: its free coordinates φ are that product's
nodes, and θ's entries along C are copies. T (K·d × p) has one nonzero per row of θ,
1/√(Π_{f∈C} n_f), so its columns are orthonormal (TᵀT = I): a column of T is a normalized
indicator. With an orthonormal T, TᵀT = I keeps the algebra of the Laplace engine in θ's
coordinates: the covariance of θ is T H_φ⁻¹ Tᵀ and a null basis N_φ of TᵀPT lifts to the
orthonormal TN_φ. The penalty in φ stays structured: a factor's Laplacian on a column
constant along another factor is the same Laplacian on the remaining product (T's
normalization cancels), and vanishes on a column constant along its own factor; a
ridge keeps its level; an interaction joining a constant factor vanishes.

Nothing here knows the language: the caller says, per column, which factors it is
constant along.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Reparametrization:
    """θ (K, d) = T φ over the product of factors of sizes ``shape``; ``constant`` (d, F):
    column c is constant along factor f."""

    shape: tuple[int, ...]
    constant: np.ndarray
    column: np.ndarray  # (K·d,) the φ coordinate of each θ entry
    scale: np.ndarray  # (K·d,) T's nonzero on that row
    offsets: np.ndarray  # (d + 1,) where each column's φ coordinates start

    @staticmethod
    def constant_along(shape: Sequence[int], constant: np.ndarray) -> Reparametrization:
        """T for columns constant along the factors ``constant`` (d, F) marks."""
        shape = tuple(int(s) for s in shape)
        constant = np.asarray(constant, dtype=bool)
        d = constant.shape[0]
        if constant.shape != (d, len(shape)):
            raise ValueError(f"constant must be (d, F) = ({d}, {len(shape)}), not "
                             f"{constant.shape}")
        k = int(np.prod(shape, dtype=np.int64))
        grids = np.unravel_index(np.arange(k), shape) if shape else ()
        column = np.empty((k, d), dtype=np.int64)
        scale = np.empty((k, d))
        offsets = np.zeros(d + 1, dtype=np.int64)
        for c in range(d):
            kept = [f for f in range(len(shape)) if not constant[c, f]]
            sizes = tuple(shape[f] for f in kept)
            local = (np.ravel_multi_index(tuple(grids[f] for f in kept), sizes) if kept
                     else np.zeros(k, dtype=np.int64))
            column[:, c] = offsets[c] + local
            scale[:, c] = 1.0 / np.sqrt(k / int(np.prod(sizes, dtype=np.int64)))
            offsets[c + 1] = offsets[c] + int(np.prod(sizes, dtype=np.int64))
        return Reparametrization(shape, constant, column.reshape(-1), scale.reshape(-1),
                                 offsets)

    @property
    def k(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def d(self) -> int:
        return int(self.constant.shape[0])

    @property
    def size(self) -> int:
        """p, the number of free coordinates."""
        return int(self.offsets[-1])

    def kept(self, c: int) -> tuple[int, ...]:
        """The factors column ``c`` varies over."""
        return tuple(f for f in range(len(self.shape)) if not self.constant[c, f])

    @property
    def matrix(self) -> sp.csr_matrix:
        """T as a sparse (K·d × p) matrix."""
        rows = np.arange(self.k * self.d)
        return sp.csr_matrix((self.scale, (rows, self.column)), shape=(self.k * self.d,
                                                                        self.size))

    def lift(self, phi: np.ndarray) -> np.ndarray:
        """θ = Tφ as (K, d)."""
        return (self.scale * np.asarray(phi)[self.column]).reshape(self.k, self.d)

    def restrict(self, x: np.ndarray) -> np.ndarray:
        """Tᵀx (p,) for x (K, d)."""
        return np.bincount(self.column, weights=self.scale * np.asarray(x).reshape(-1),
                           minlength=self.size)

    def project(self, x: np.ndarray) -> np.ndarray:
        """TTᵀx (K, d): x averaged along the factors each column is constant along."""
        return self.lift(self.restrict(x))

    def sandwich(self, matrix: sp.spmatrix) -> sp.csr_matrix:
        """TᵀAT for a (K·d × K·d) A."""
        t = self.matrix
        return (t.T @ sp.csr_matrix(matrix) @ t).tocsr()

    def block_triplets(self, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols, values) of Tᵀ blockdiag(blocks) T, duplicates not summed and zeros
        kept (so that a factorization's pattern holds every stratum's block)."""
        k, d, _ = blocks.shape
        index = self.column.reshape(k, d)
        scale = self.scale.reshape(k, d)
        rows = np.broadcast_to(index[:, :, None], (k, d, d)).reshape(-1)
        cols = np.broadcast_to(index[:, None, :], (k, d, d)).reshape(-1)
        values = (scale[:, :, None] * blocks * scale[:, None, :]).reshape(-1)
        return rows, cols, values

    def inverse_blocks(self, entries) -> np.ndarray:
        """The K diagonal (d × d) blocks of T A⁻¹ Tᵀ, from ``entries(rows, cols)`` giving
        (A⁻¹)_{rows, cols}."""
        k, d = self.k, self.d
        index = self.column.reshape(k, d)
        scale = self.scale.reshape(k, d)
        rows = np.broadcast_to(index[:, :, None], (k, d, d)).reshape(-1)
        cols = np.broadcast_to(index[:, None, :], (k, d, d)).reshape(-1)
        values = np.asarray(entries(rows, cols)).reshape(k, d, d)
        return scale[:, :, None] * values * scale[:, None, :]
