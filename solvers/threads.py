"""BLAS threads for the solvers' dense kernels.

LAPACK's symmetric eigensolver through OpenBLAS with 2 threads on a loaded 2-core machine
ran a 500 × 500 ``eigh`` 20–40× slower than with 1 thread (the threads wait on each other
while other processes hold the cores); a batch of small matrices is not threaded either
way. So the dense eigendecompositions of graph factors run with one BLAS thread, unless
the environment variable STRATLANG_BLAS_THREADS names another count (0: leave BLAS as it
is). Matrix products elsewhere keep BLAS's own setting.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

VARIABLE = "STRATLANG_BLAS_THREADS"
LIMITED_FROM = 64  # smaller matrices: BLAS does not thread them, and a limit costs ~0.5 ms


def blas_threads() -> int | None:
    """The BLAS thread count for dense kernels (None: BLAS's own setting)."""
    text = os.environ.get(VARIABLE, "1").strip()
    try:
        count = int(text)
    except ValueError:
        return 1  # (an unreadable setting: the default)
    return count if count > 0 else None


@contextmanager
def dense_kernel() -> Iterator[None]:
    """BLAS limited to :func:`blas_threads` threads inside the block."""
    limit = blas_threads()
    if limit is None:
        yield
        return
    from threadpoolctl import threadpool_limits  # (imported on first use: start-up time)

    with threadpool_limits(limits=limit, user_api="blas"):
        yield


def eigh(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.linalg.eigh`` with the dense-kernel thread limit for matrices of size
    :data:`LIMITED_FROM` and more."""
    if matrix.shape[-1] < LIMITED_FROM:
        return np.linalg.eigh(matrix)
    with dense_kernel():
        return np.linalg.eigh(matrix)
