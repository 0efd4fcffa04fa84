"""Elementwise work over large arrays in cache-sized blocks, on every core.

At millions of strata an elementwise step written as whole-array numpy operations makes
one pass over memory per operation (and one temporary the size of θ per intermediate);
done block by block, a chain of operations reads its inputs from memory once and works
on blocks that stay in the core's cache. numpy releases the GIL inside its loops, so the
blocks are shared out between threads (the ADMM iteration's FFTs use every core too).

Each block gets the same operations as the whole array would, so the same floats; sums
are taken per block and added up in block order (math.fsum), so a result does not depend
on how the blocks were shared out.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import numpy as np

BLOCK = 1 << 15  # entries per block: 256 KiB of float64, a few arrays of it fit in L2
MIN_BLOCKS_PER_THREAD = 4  # below this, threads cost more than they save

T = TypeVar("T")

_local = threading.local()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # (not on Linux)
        return os.cpu_count() or 1


def _forget_pool() -> None:
    """A forked child has none of the parent's threads: it starts a pool of its own, under
    a lock of its own (the parent's may have been held by another thread at the fork)."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _executor(threads: int) -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < threads:
            # (more threads asked for than it has: replaced, not shut down — another
            # thread may hold it, about to submit; its threads end once it is collected)
            _pool = ThreadPoolExecutor(max(threads, _cores()),
                                       thread_name_prefix="stratlang-blocks")
        return _pool


def scratch(slot: str, length: int) -> np.ndarray:
    """A work array of ``length`` entries (a block's), one per thread and slot name."""
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    array = buffers.get(slot)
    if array is None or len(array) < length:
        array = buffers[slot] = np.empty(max(BLOCK, length))
    return array[:length]


@contextmanager
def threads_at_most(count: int) -> Iterator[None]:
    """Work block by block in this thread uses at most ``count`` threads (≤ 0: every
    core) inside the block: a Dask worker's task, whose machine other workers share."""
    previous = getattr(_local, "limit", None)
    _local.limit = count if count > 0 else None
    try:
        yield
    finally:
        _local.limit = previous


def spans(size: int) -> list[slice]:
    """[0, size) in blocks of BLOCK entries."""
    return [slice(lo, min(lo + BLOCK, size)) for lo in range(0, size, BLOCK)]


def for_blocks(size: int, kernel: Callable[[slice], T], threads: int | None = None) -> list[T]:
    """``kernel(block)`` for every block of [0, size), in block order; the blocks are
    shared out in contiguous runs between ``threads`` threads (default: every core).
    The kernel must only write inside its block (and to :func:`scratch`)."""
    blocks = spans(size)
    threads = min(threads or getattr(_local, "limit", None) or _cores(),
                  len(blocks) // MIN_BLOCKS_PER_THREAD)
    if threads <= 1 or getattr(_local, "in_pool", False):  # (nested: the pool's threads
        return [kernel(block) for block in blocks]  # would wait on themselves)
    runs = np.array_split(np.arange(len(blocks)), threads)

    def run(indices: np.ndarray) -> list[T]:
        _local.in_pool = True
        return [kernel(blocks[i]) for i in indices]

    pool = _executor(threads)  # (once: its lock taken once, every run on one pool)
    futures = [pool.submit(run, indices) for indices in runs]
    return [out for future in futures for out in future.result()]


def add_up(parts: Sequence[Sequence[float]]) -> tuple[float, ...]:
    """Per-block tuples of sums added up column by column, exactly rounded."""
    return tuple(math.fsum(column) for column in zip(*parts, strict=True))


def subtract(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``np.subtract(a, b, out=out)`` for arrays of one shape, ``out`` contiguous."""
    x, y, z = np.ravel(a), np.ravel(b), out.reshape(-1)
    for_blocks(z.size, lambda s: np.subtract(x[s], y[s], out=z[s]))
    return out
