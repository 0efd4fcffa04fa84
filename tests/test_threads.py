"""One BLAS thread for the solvers' dense eigendecompositions (solvers/threads.py)."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from stratlang.solvers import laplacian, threads
from stratlang.solvers.graphs import complete_graph, star_graph


def blas_thread_counts() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


@pytest.fixture
def record_eigh(monkeypatch):
    """The BLAS thread counts in force at each np.linalg.eigh call."""
    seen: list[set[int]] = []
    plain = np.linalg.eigh

    def recording(matrix):
        seen.append(blas_thread_counts())
        return plain(matrix)

    monkeypatch.setattr(np.linalg, "eigh", recording)
    return seen


def test_a_dense_factor_is_diagonalized_with_one_blas_thread(record_eigh, monkeypatch):
    """Under load, two OpenBLAS threads made a 500 × 500 eigh 20–40× slower than one."""
    monkeypatch.delenv(threads.VARIABLE, raising=False)
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_thread_counts()
        axis = laplacian.Axis(star_graph(200, 0), 1.0)
        assert blas_thread_counts() == before  # the caller's setting is back afterwards
    assert 2 in before  # (a single-threaded BLAS build may sit beside the threaded one)
    assert axis.kind == "dense" and record_eigh == [{1}]
    # the eigenbasis is the one numpy gives: L = V diag(λ) Vᵀ
    dense = star_graph(200, 0).laplacian().toarray()
    np.testing.assert_allclose(axis.basis @ np.diag(axis.eigenvalues) @ axis.basis.T, dense,
                               atol=1e-10)


@pytest.mark.parametrize(("setting", "expected"), [("3", 3), ("0", None), ("", 1),
                                                   ("many", 1)])
def test_the_thread_count_is_read_from_the_environment(setting, expected, monkeypatch):
    monkeypatch.setenv(threads.VARIABLE, setting)
    assert threads.blas_threads() == expected


def test_small_matrices_are_left_alone(record_eigh, monkeypatch):
    """Below 64 rows BLAS does not thread a matrix, and setting a limit costs ~0.5 ms."""
    monkeypatch.delenv(threads.VARIABLE, raising=False)
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_thread_counts()
        threads.eigh(complete_graph(10).laplacian().toarray())
    assert record_eigh == [before] and 2 in before
