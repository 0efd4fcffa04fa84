"""solvers.blockwise: elementwise work in cache-sized blocks shared out between threads."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stratlang.solvers import blockwise


def test_blocks_cover_the_array_in_order_on_any_number_of_threads():
    size = 20 * blockwise.BLOCK + 7
    x = np.arange(size, dtype=float)
    out = {}
    for threads in (1, 2, 3):
        y = np.empty(size)

        def kernel(s: slice, y=y) -> tuple[int, float]:
            np.multiply(x[s], 2.0, out=y[s])
            return s.start, float(np.sum(y[s]))

        parts = blockwise.for_blocks(size, kernel, threads=threads)
        assert [start for start, _ in parts] == list(range(0, size, blockwise.BLOCK))
        np.testing.assert_array_equal(y, 2.0 * x)
        out[threads] = blockwise.add_up([(total,) for _, total in parts])
    assert out[1] == out[2] == out[3] == (math.fsum(2.0 * x),)


def test_a_failing_block_raises_in_the_caller():
    def kernel(s: slice) -> None:
        if s.start >= 10 * blockwise.BLOCK:
            raise FloatingPointError("block")

    with pytest.raises(FloatingPointError, match="block"):
        blockwise.for_blocks(20 * blockwise.BLOCK, kernel, threads=2)


def test_subtract_is_numpys():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 100_001)), rng.normal(size=(3, 100_001))
    out = np.empty_like(a)
    assert blockwise.subtract(a, b, out) is out
    np.testing.assert_array_equal(out, a - b)


def test_blocks_inside_blocks_run_in_the_calling_thread():
    """A kernel that itself works block by block (a prox called inside a pass) must not
    wait on the pool it runs in: with every pool thread waiting, nothing would run."""
    size = 10 * blockwise.BLOCK
    inner = np.arange(size, dtype=float)

    def kernel(s: slice) -> float:
        parts = blockwise.for_blocks(size, lambda t: float(np.sum(inner[t])), threads=2)
        return math.fsum(parts)

    assert blockwise.for_blocks(size, kernel, threads=2) == [math.fsum(inner)] * 10


def test_a_thread_limit_holds_inside_its_block_only():
    """A Dask worker's task shares out its blocks between at most the worker's threads."""
    import threading

    size = 40 * blockwise.BLOCK
    seen: set[int] = set()

    def kernel(s: slice) -> None:
        seen.add(threading.get_ident())

    with blockwise.threads_at_most(1):
        blockwise.for_blocks(size, kernel, threads=None)
    assert seen == {threading.get_ident()}
    seen.clear()
    blockwise.for_blocks(size, kernel, threads=2)  # (the pool's threads)
    assert seen and threading.get_ident() not in seen


def _child_status(pid: int, seconds: float) -> int | None:
    """The forked child's exit code, or None (killed) if it has not ended in ``seconds``."""
    import os
    import signal
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def test_a_child_forked_while_another_thread_sets_up_the_pool_works_block_by_block():
    """A fork copies the pool's lock as it is: forked while another thread held it (setting
    up the pool), the child waited on it for ever at its first pass over blocks."""
    import os

    size = 20 * blockwise.BLOCK
    with blockwise._pool_lock:  # (as another thread would hold it)
        pid = os.fork()
        if pid == 0:  # the child: its own pool, its own lock
            code = 1
            try:
                parts = blockwise.for_blocks(size, lambda s: s.stop - s.start, threads=2)
                code = 0 if sum(parts) == size else 2
            finally:
                os._exit(code)
    assert _child_status(pid, 10.0) == 0


def test_a_pool_handed_out_stays_usable_when_another_thread_asks_for_more_threads(
        monkeypatch):
    """Two Dask worker threads (threads_at_most above the cores): one is handed the pool,
    the other replaces it with a larger one before the first submits its blocks. The
    first's submit must still run (shut down, the old pool refused it: RuntimeError)."""
    import threading

    original = blockwise._executor

    def interleaved(threads: int):
        pool = original(threads)
        other = threading.Thread(target=original, args=(blockwise._cores() + 4,))
        other.start()
        other.join()
        return pool

    monkeypatch.setattr(blockwise, "_executor", interleaved)
    size = 20 * blockwise.BLOCK
    parts = blockwise.for_blocks(size, lambda s: s.stop - s.start, threads=2)
    assert sum(parts) == size
