"""The crime-scale fit alone, as a user runs it: ``Model.fit`` (bind + ADMM) on the
K = 3,494,400 Poisson counts of ``admm.py crime_3_5m`` (20 × 20 grid × cycle(52) ×
cycle(7) × cycle(24), weight 100), repeated, with wall and CPU seconds, iterations, the
ADMM solve's own time per iteration, and the load average (the figure depends on it).

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/crime_fit.py [--reps N]``
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from admm import distribution_frame, distribution_spec

import stratlang

SHAPE = (20, 20, 52, 7, 24)
KINDS = ["grid", "grid", "cycle", "cycle", "cycle"]


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=2, help="fits to time (default 2)")
    reps = parser.parse_args().reps
    frame = distribution_frame(SHAPE)
    model = stratlang.load(distribution_spec(list(zip(KINDS, SHAPE, strict=True)), 100.0))
    print(f"load average at start: {_load()}")
    print("| rep | wall s | CPU s | iterations | ADMM solve s | ms / iteration |")
    print("|---|---|---|---|---|---|")
    for rep in range(reps):
        wall, cpu = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = model.fit(frame, backend="admm", options={"progress": False})
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        iterations = fitted.info["iterations"]
        solve = fitted.info["solve_time"]
        print(f"| {rep} | {wall:.2f} | {cpu:.2f} | {iterations} | {solve:.2f} | "
              f"{1000 * solve / iterations:.0f} |")
    print(f"load average at end: {_load()}")


if __name__ == "__main__":
    main()
