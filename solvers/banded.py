"""A direct solve of the Newton system when its band is narrow.

H = blockdiag(B_k) + diag(q) + L ⊗ I (solvers.hessian), on θ stacked as (K, d), is banded
once the strata are ordered to keep the graph's edges short (reverse Cuthill–McKee on
L): with each stratum's d parameters adjacent, its lower band is u = max(d·b, d − 1)
wide, b the graph's bandwidth in that order. LAPACK's banded Cholesky factors it in
about K·d·(u + 1)² flops. On a small problem that is cheaper than the dozen CG steps
and preconditioner applications a Newton step otherwise takes, each a run of Python-level
operations whose fixed cost dominates there; the factor is the exact inverse, used as
the CG preconditioner (CG then stops after one step).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from scipy.linalg import LinAlgError, cho_solve_banded, cholesky_banded
from scipy.sparse.csgraph import reverse_cuthill_mckee

# the largest K·d laid out as a band at all (the ordering itself costs a graph traversal)
DIRECT_LIMIT = 20_000
# flops of one factorization (a few milliseconds) up to which 'auto' takes the direct solve
DIRECT_BUDGET = 3e7
# band entries (8 bytes each) beyond which even a requested direct solve is not attempted
BAND_ENTRIES = 25_000_000


class BandLayout:
    """The band's geometry for K strata of d parameters under the K × K matrix L: the
    strata order, the band's width, and L ⊗ I in LAPACK's lower band storage
    (``band[r, c] = H[c + r, c]``), which stays fixed across Newton steps."""

    def __init__(self, laplacian: sp.spmatrix, d: int):
        pattern = sp.csr_matrix(laplacian)
        pattern.sum_duplicates()
        k = pattern.shape[0]
        self.k, self.d = k, d
        order = (reverse_cuthill_mckee(pattern, symmetric_mode=True) if pattern.nnz
                 else np.arange(k))
        self.order = np.asarray(order, dtype=np.int64)
        permuted = pattern[self.order][:, self.order].tocoo()
        lower = permuted.row >= permuted.col
        rows, cols = permuted.row[lower].astype(np.int64), permuted.col[lower].astype(np.int64)
        values = permuted.data[lower]
        bandwidth = int(np.max(rows - cols, initial=0))
        self.width = max(d * bandwidth, d - 1)
        self.constant = np.zeros((self.width + 1, k * d))
        within = np.arange(d)
        np.add.at(self.constant, (((rows - cols) * d)[:, None], (cols * d)[:, None] + within),
                  values[:, None])
        # a block's lower triangle (a ≥ b) lands at band[a − b, k·d + b]
        self._a, self._b = np.tril_indices(d)
        self._rows = self._a - self._b
        self._cols = (np.arange(k) * d)[:, None] + self._b

    @property
    def entries(self) -> int:
        """The band's storage, in numbers."""
        return (self.width + 1) * self.k * self.d

    @property
    def flops(self) -> float:
        """About the cost of one factorization."""
        return float(self.k * self.d) * (self.width + 1) ** 2

    def factor(self, blocks: np.ndarray, diagonal: np.ndarray
               ) -> Callable[[np.ndarray], np.ndarray] | None:
        """The exact solve with blocks (K, d, d) + diag(diagonal (K, d)) + L ⊗ I, or None
        when the Cholesky factorization breaks down (H not numerically definite)."""
        band = self.constant.copy()
        band[self._rows, self._cols] += blocks[self.order][:, self._a, self._b]
        band[0] += diagonal[self.order].reshape(-1)
        try:
            factor = cholesky_banded(band, lower=True, check_finite=False)
        except (LinAlgError, ValueError):
            return None
        if not np.all(np.isfinite(factor[0])):
            return None
        order = self.order

        def solve(r: np.ndarray) -> np.ndarray:
            x = cho_solve_banded((factor, True), r[order].reshape(-1), check_finite=False)
            out = np.empty_like(r)
            out[order] = x.reshape(r.shape)
            return out

        return solve
