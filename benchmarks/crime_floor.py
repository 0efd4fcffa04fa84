"""The per-iteration floor of the crime-scale ADMM fit (benchmarks/crime_fit.py): what
one iteration cannot do without, timed alone on this machine, best of ``--reps``.

* the transforms of one Laplacian solve on a (20, 20, 52, 7, 24) array: the solver's own
  (``KroneckerSolver.forward`` and ``backward``, with its workers: DCT-II over the two
  grid axes, the real FFT over the three cycles, and back, 1/N included), the eigenvalue
  division not included;
* the elementwise minimum: the array streams an iteration must read or write once each
  (before the solve θ̂, dual, the prox's two per-stratum arrays in, the copy and the
  right-hand side out; after it θ̂, θ̂_old, the copy, the dual in and the dual out; the
  eigenvalue division on the transformed array), timed as in-place adds done block by
  block on every core as the iteration does them.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/crime_floor.py [--reps N]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from stratlang.solvers.blockwise import for_blocks
from stratlang.solvers.graphs import cycle_graph, grid_graph
from stratlang.solvers.laplacian import KroneckerSolver

SHAPE = (20, 20, 52, 7, 24, 1)
STREAMS = 6 + 5  # the θ-sized arrays read or written once each, before and after the solve
SPECTRAL_STREAMS = 2  # the division: read and write, complex ~ 2 real streams


def best(run: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def transforms(solver: KroneckerSolver, x: np.ndarray) -> None:
    solver.backward(solver.forward(x.copy()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=20, help="timings to take the best of")
    reps = parser.parse_args().reps
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    x = np.random.default_rng(0).normal(size=SHAPE)
    a, b = x.reshape(-1).copy(), x.reshape(-1).copy()
    solver = KroneckerSolver([grid_graph(SHAPE[:2]), *(cycle_graph(n) for n in SHAPE[2:5])],
                             [1.0] * 4)
    copy = best(lambda: x.copy(), reps)
    solve = best(lambda: transforms(solver, x), reps) - copy  # (the copy keeps x)

    def add() -> None:
        for_blocks(a.size, lambda s: np.add(a[s], b[s], out=a[s]))

    stream = best(add, reps) / 3  # two streams in, one out
    elementwise = (STREAMS + SPECTRAL_STREAMS) * stream
    print(f"load average: {load}")
    print(f"transforms of one solve: {1000 * solve:.1f} ms (best of {reps})")
    print(f"one θ-sized stream (in-place add / 3, blocks on every core): "
          f"{1000 * stream:.2f} ms; {STREAMS} + {SPECTRAL_STREAMS} streams: "
          f"{1000 * elementwise:.1f} ms")
    print(f"per-iteration floor: {1000 * (solve + elementwise):.1f} ms")


if __name__ == "__main__":
    main()
