"""Eigen-stratified models (`basis M`) against the full stratified model (issue 16).

    python benchmarks/eigen.py            # K = 105,000 strata
    python benchmarks/eigen.py --small    # K = 16,800 (a quick look)

Synthetic counts by location × weekday × hour (a 25 × 25 grid × cycle(7) × cycle(24):
K = 105,000 strata), with a log rate that varies smoothly over all three; four weeks of
counts per stratum to fit (N = 420,000 records) and a fifth to score. The full model is
fitted by ADMM, the basis models by the eigen backend (L-BFGS), at the same graph weights;
"held-out ANLL" is the mean Poisson negative log-likelihood of the fifth week, and "vs
full" its difference from the full model's (positive: worse). Each fit runs in its own
process so that its peak memory is its own.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

SPEC = """model counts
response count ~ poisson_regression
regularize 0.01 * sum_squares
stratify (row, col) ~ grid weight 5 nodes (0..{last}, 0..{last})
stratify weekday ~ cycle weight 5 nodes 0..6
stratify hour ~ cycle weight 5 nodes 0..23
"""


def counts(side: int, weeks: int, seed: int = 0) -> pd.DataFrame:
    """``weeks`` counts for every stratum; the last week is held out (split == 'test')."""
    rng = np.random.default_rng(seed)
    row, col, weekday, hour = (a.reshape(-1) for a in np.indices((side, side, 7, 24)))
    log_rate = (-0.5 + 0.6 * np.sin(row / side * np.pi) * np.cos(col / side * 2)
                + 0.3 * np.cos(2 * np.pi * weekday / 7)
                + 0.8 * np.sin(2 * np.pi * (hour - 6) / 24))
    frames = []
    for week in range(weeks):
        frames.append(pd.DataFrame({
            "row": row, "col": col, "weekday": weekday, "hour": hour,
            "count": rng.poisson(np.exp(log_rate)),
            "split": "test" if week == weeks - 1 else "train"}))
    return pd.concat(frames, ignore_index=True)


def run_one(side: int, basis: int | None) -> dict:
    import warnings

    import stratlang

    frame = counts(side, 5)
    train, test = frame[frame.split == "train"], frame[frame.split == "test"]
    spec = SPEC.format(last=side - 1) + (f"basis {basis}\n" if basis else "")
    model = stratlang.load(spec)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = model.fit(train)
    seconds = time.perf_counter() - start
    return {"basis": basis, "strata": fitted.strata.k, "records": len(train),
            "backend": fitted.info["backend"], "seconds": seconds,
            "iterations": fitted.info.get("iterations"),
            "converged": fitted.info.get("converged"),
            "objective": fitted.objective.total, "anll": fitted.score(test)["anll"],
            "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main(argv: list[str]) -> int:
    side = 10 if "--small" in argv else 25
    if "--one" in argv:  # the child process
        basis = argv[argv.index("--one") + 1]
        print(json.dumps(run_one(side, None if basis == "full" else int(basis))))
        return 0
    rows = []
    for basis in ["full", "10", "50", "200", "1000"]:
        command = [sys.executable, __file__, "--one", basis] + (["--small"] if side == 10 else [])
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    full = rows[0]
    print(f"K = {full['strata']:,} strata, N = {full['records']:,} training records\n")
    print("| model | backend | fit s | vs full time | iterations | held-out ANLL | vs full "
          "| objective | peak GiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        name = "full stratified" if row["basis"] is None else f"basis {row['basis']}"
        print(f"| {name} | {row['backend']} | {row['seconds']:.2f} | "
              f"{row['seconds'] / full['seconds']:.2f}× | {row['iterations']} | "
              f"{row['anll']:.5f} | {row['anll'] - full['anll']:+.5f} | "
              f"{row['objective']:.6g} | {row['peak_gib']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
