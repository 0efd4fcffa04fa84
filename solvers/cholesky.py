"""Exact factorization of a symmetric positive definite sparse matrix A, for log|A|,
solves, tr(A⁻¹B) and the diagonal blocks of A⁻¹.

Up to :data:`DENSE_LIMIT` rows A is factorized densely (LAPACK Cholesky): at that size a
dense factor costs less than any sparse bookkeeping. Beyond, SciPy's SuperLU factorizes
it with a fill-reducing symmetric ordering and no pivoting (A = Pᵀ L D Lᵀ P), and the
entries of A⁻¹ on the factor's pattern come from the Takahashi recursion (selected
inversion, Rue & Held §2.3): enough for tr(A⁻¹B) when B's pattern lies within A's, and
for the stratum blocks. Used up to :data:`SPARSE_LIMIT` rows; the stochastic estimators
(:mod:`solvers.stochastic`) take over beyond.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .threads import LIMITED_FROM, dense_kernel

DENSE_LIMIT = 2_000
SPARSE_LIMIT = 20_000


class NotPositiveDefinite(ValueError):
    """The matrix has a nonpositive pivot: it is singular or indefinite."""

    def __init__(self, detail: str):
        super().__init__(
            f"the curvature matrix is not positive definite ({detail}): the loss and the "
            f"penalties leave some direction of θ without curvature (e.g. a stratum with "
            f"no records and no penalty, or multinomial's shift of every class without a "
            f"ridge), so its posterior is improper")


class SparseCholesky:
    def __init__(self, matrix: sp.spmatrix | np.ndarray):
        self.size = matrix.shape[0]
        self.dense = self.size <= DENSE_LIMIT
        if self.dense:
            a = sp.csr_matrix(matrix).toarray() if sp.issparse(matrix) else np.asarray(matrix, float)
            try:
                with _threads(self.size):
                    self._factor = scipy.linalg.cho_factor(a, lower=True, check_finite=False)
            except np.linalg.LinAlgError as error:
                raise NotPositiveDefinite(str(error)) from None
            self._diag = np.diag(self._factor[0]) ** 2
            self._inverse: np.ndarray | None = None
            if not np.all(np.isfinite(self._diag)) or np.any(self._diag <= 0):
                raise NotPositiveDefinite("nonpositive pivot")
        else:
            self._sparse_factor(sp.csc_matrix(matrix))

    # -- sparse path -------------------------------------------------------------------
    def _sparse_factor(self, a: sp.csc_matrix) -> None:
        lu = spla.splu(a, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                       options={"SymmetricMode": True})
        if not np.array_equal(lu.perm_r, lu.perm_c):
            raise NotPositiveDefinite("the factorization pivoted: not positive definite")
        self._lu = lu
        self._diag = lu.U.diagonal()
        if not np.all(np.isfinite(self._diag)) or np.any(self._diag <= 0):
            raise NotPositiveDefinite("nonpositive pivot")
        self._perm = lu.perm_c  # A[p][:, p] = L U, position i of the permuted = perm?
        self._selected: sp.csc_matrix | None = None

    def logdet(self) -> float:
        return float(np.sum(np.log(self._diag)))

    def solve(self, b: np.ndarray) -> np.ndarray:
        if self.dense:
            with _threads(self.size):
                return scipy.linalg.cho_solve(self._factor, b, check_finite=False)
        return self._lu.solve(np.asarray(b, dtype=float))

    def _dense_inverse(self) -> np.ndarray:
        if self._inverse is None:
            with _threads(self.size):
                self._inverse = scipy.linalg.cho_solve(self._factor, np.eye(self.size),
                                                       check_finite=False)
        return self._inverse

    def inverse(self) -> np.ndarray | None:
        """A⁻¹ in full (computed once) where the factor is dense; None for a sparse one
        (whose full inverse is not formed)."""
        return self._dense_inverse() if self.dense else None

    def selected_inverse(self) -> sp.csc_matrix:
        """A⁻¹ on the (symmetrized) pattern of the factor, in the original order."""
        if self.dense:
            return sp.csc_matrix(self._dense_inverse())
        if self._selected is None:
            self._selected = _takahashi(self._lu)
        return self._selected

    def inverse_entries(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """(A⁻¹)_{rows[t], cols[t]}, for entries within the factor's pattern."""
        if self.dense:
            return self._dense_inverse()[rows, cols]
        z = self.selected_inverse()
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        values = np.asarray(z[rows, cols]).reshape(-1)
        # an entry off the factor's pattern (e.g. within the block of a stratum without
        # records, which no elimination fills) is not zero in A⁻¹: solved for, by column
        keys = np.sort(np.repeat(np.arange(z.shape[1], dtype=np.int64), np.diff(z.indptr))
                       * self.size + z.indices)
        wanted = cols * self.size + rows
        found = np.searchsorted(keys, wanted)
        off = (found >= len(keys)) | (keys[np.minimum(found, len(keys) - 1)] != wanted)
        if off.any():
            columns, position = np.unique(cols[off], return_inverse=True)
            unit = np.zeros((self.size, len(columns)))
            unit[columns, np.arange(len(columns))] = 1.0
            solved = self._lu.solve(unit)
            values[off] = solved[rows[off], position.reshape(-1)]
        return values

    def trace_inverse_times(self, b: sp.spmatrix) -> float:
        """tr(A⁻¹ B) for a symmetric B whose pattern lies within A's."""
        coo = sp.coo_matrix(b)
        if coo.nnz == 0:
            return 0.0
        return float(np.sum(self.inverse_entries(coo.row, coo.col) * coo.data))

    def inverse_blocks(self, d: int) -> np.ndarray:
        """The K = size/d diagonal (d × d) blocks of A⁻¹ (the strata's blocks)."""
        k = self.size // d
        base = (np.arange(k) * d)[:, None, None]
        rows = np.broadcast_to(base + np.arange(d)[None, :, None], (k, d, d)).reshape(-1)
        cols = np.broadcast_to(base + np.arange(d)[None, None, :], (k, d, d)).reshape(-1)
        return self.inverse_entries(rows, cols).reshape(k, d, d)


def _threads(size: int) -> contextlib.AbstractContextManager[Any]:
    """The dense kernels' BLAS thread limit (solvers.threads: threads that wait on each
    other on a loaded machine made a 1,600-row factorization 15–40× slower) for a matrix
    of ``size`` rows; none below the size BLAS threads."""
    return dense_kernel() if size >= LIMITED_FROM else contextlib.nullcontext()


def _takahashi(lu) -> sp.csc_matrix:
    """Selected inversion: with the permuted A = L D Lᵀ (L unit lower), Z = A⁻¹ satisfies
    Z = D⁻¹L⁻¹ + (I − Lᵀ) Z; column j (descending) needs only Z on the pattern of L's
    column j, which the pattern's closure keeps within the computed set. Z is stored
    aligned with L's entries; each column's S × S lookups are one vectorized search over
    the pattern's sorted (column, row) keys."""
    lower = sp.csc_matrix(lu.L)
    lower.sort_indices()
    n = lower.shape[0]
    diag = lu.U.diagonal()
    indptr, indices, data = lower.indptr, lower.indices.astype(np.int64), lower.data
    columns = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    keys = columns * n + indices  # sorted: CSC order with sorted rows
    z = np.zeros(len(data))
    for j in range(n - 1, -1, -1):
        start, stop = indptr[j], indptr[j + 1]
        rows = indices[start:stop]
        first = int(np.searchsorted(rows, j))  # the diagonal entry
        s = rows[first + 1:]
        l_s = data[start + first + 1:stop]
        if len(s):
            hi = np.maximum(s[:, None], s[None, :])
            lo = np.minimum(s[:, None], s[None, :])
            block = z[np.searchsorted(keys, lo * n + hi)]
            z_sj = -block @ l_s
            z[start + first + 1:stop] = z_sj
            z[start + first] = 1.0 / diag[j] - float(l_s @ z_sj)
        else:
            z[start + first] = 1.0 / diag[j]
    lower_z = sp.csc_matrix((z, indices, indptr), shape=(n, n))
    full = (lower_z + sp.triu(lower_z.T, k=1)).tocsc()
    perm = lu.perm_c  # A[q][:, q] = L U with q = argsort(perm): A⁻¹ = Z[perm][:, perm]
    return full[perm][:, perm].tocsc()
