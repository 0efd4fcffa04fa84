"""θ = Tφ: coefficients held constant along some factors, as a smaller free vector φ.

A parameter column (one row's one output) that is constant along a set C of the factors
varies only over the product of the others: its free coordinates φ are that product's
nodes, and θ's entries along C are copies. T (K·d × p) has one nonzero per row of θ (none
on an absent entry, below), 1/√(Π_{f∈C} n_f), so its columns are orthonormal (TᵀT = I): a
column of T is a normalized indicator. With an orthonormal T, TᵀT = I keeps the algebra
of the Laplace engine in θ's coordinates: the covariance of θ is T H_φ⁻¹ Tᵀ and a null
basis N_φ of TᵀPT lifts to the orthonormal TN_φ. The penalty in φ stays structured: a
factor's Laplacian on a column constant along another factor is the same Laplacian on the
remaining product (T's normalization cancels), and vanishes on a column constant along
its own factor; a ridge keeps its level; an interaction joining a constant factor
vanishes.

A column may also be present in some strata only (a product of node subsets, one per
factor; absent entries are fixed at 0): T drops the absent entries (their rows of T are
zero), the free coordinates run over the present nodes of the factors the column varies
over, and the penalty on it is the one of the factors' induced subgraphs.

Nothing here knows the language: the caller says, per column, which factors it is
constant along and which nodes of each factor it is present on.
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
    # per column, the nodes of each factor it is present on (None: every stratum)
    masks: tuple[tuple[np.ndarray, ...] | None, ...] = ()

    @staticmethod
    def constant_along(shape: Sequence[int], constant: np.ndarray,
                       masks: Sequence[Sequence[np.ndarray] | None] | None = None
                       ) -> Reparametrization:
        """T for columns constant along the factors ``constant`` (d, F) marks, each
        present on the product of the node subsets ``masks[c]`` (None: everywhere)."""
        shape = tuple(int(s) for s in shape)
        constant = np.asarray(constant, dtype=bool)
        d = constant.shape[0]
        if constant.shape != (d, len(shape)):
            raise ValueError(f"constant must be (d, F) = ({d}, {len(shape)}), not "
                             f"{constant.shape}")
        k = int(np.prod(shape, dtype=np.int64))
        grids = np.unravel_index(np.arange(k), shape) if shape else ()
        given = [None] * d if masks is None else list(masks)
        if len(given) != d:
            raise ValueError(f"masks for {len(given)} columns, not {d}")
        column = np.empty((k, d), dtype=np.int64)
        scale = np.empty((k, d))
        offsets = np.zeros(d + 1, dtype=np.int64)
        kept_masks: list[tuple[np.ndarray, ...] | None] = []
        for c in range(d):
            own = given[c]
            nodes = (tuple(np.ones(n, dtype=bool) for n in shape) if own is None
                     else tuple(np.asarray(mask, dtype=bool) for mask in own))
            if [len(mask) for mask in nodes] != list(shape):
                raise ValueError(f"column {c}'s node masks do not match the factors {shape}")
            partial = not all(mask.all() for mask in nodes)
            kept_masks.append(nodes if partial else None)
            rank = [np.cumsum(mask) - 1 for mask in nodes]  # a present node's position
            present = np.ones(k, dtype=bool)
            for f in range(len(shape)):
                present &= nodes[f][grids[f]]
            kept = [f for f in range(len(shape)) if not constant[c, f]]
            sizes = tuple(int(nodes[f].sum()) for f in kept)
            local = (np.ravel_multi_index(tuple(rank[f][grids[f]][present] for f in kept),
                                          sizes) if kept
                     else np.zeros(int(present.sum()), dtype=np.int64))
            copies = int(np.prod([int(nodes[f].sum()) for f in range(len(shape))
                                  if constant[c, f]], dtype=np.int64))
            column[:, c] = offsets[c]
            column[present, c] = offsets[c] + local
            scale[:, c] = 0.0  # an absent entry: a zero row of T
            scale[present, c] = 1.0 / np.sqrt(copies)
            offsets[c + 1] = offsets[c] + int(np.prod(sizes, dtype=np.int64))
        return Reparametrization(shape, constant, column.reshape(-1), scale.reshape(-1),
                                 offsets, tuple(kept_masks))

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

    def present(self, c: int) -> np.ndarray:
        """(K,) the strata column ``c`` is present in."""
        return self.scale.reshape(self.k, self.d)[:, c] > 0

    def partial(self, c: int) -> tuple[np.ndarray, ...] | None:
        """Column ``c``'s node masks per factor when it is absent from some strata."""
        return self.masks[c] if self.masks else None

    @property
    def matrix(self) -> sp.csr_matrix:
        """T as a sparse (K·d × p) matrix."""
        rows = np.arange(self.k * self.d)
        keep = self.scale > 0
        return sp.csr_matrix((self.scale[keep], (rows[keep], self.column[keep])),
                             shape=(self.k * self.d, self.size))

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
