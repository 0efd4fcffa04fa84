"""What `where` clauses cost (issue 16): ADMM and the CVXPY reference on models whose
terms differ between strata, against the same model without the clauses.

    python benchmarks/where.py

Simulated records by region (60, path) × week (40, cycle): K = 2,400 strata, N = 100,000
records, 6 features. "feature" makes `dose` present in regions 0–29 only (its coefficient
is absent elsewhere and its Laplacian runs over the induced 30 × 40 product); "l1" puts
an l1 penalty on weeks 0–9 only; "quantile" fits the median with the 0.9 quantile in
regions 30–59. Each row is timed against the same model with its clause removed (the
term everywhere, or the main quantile everywhere), and ADMM against CVXPY (Clarabel).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

import stratlang

REGIONS, WEEKS, N = 60, 40, 100_000
STRATA = (f"stratify region ~ path weight 20 nodes 0..{REGIONS - 1}\n"
          f"stratify week ~ cycle weight 20 nodes 0..{WEEKS - 1}\n")
FEATURES = "features intercept, x1, x2, x3, x4, dose"


def records(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(N, 5)), columns=["x1", "x2", "x3", "x4", "dose"])
    frame["region"] = rng.integers(0, REGIONS, N)
    frame["week"] = rng.integers(0, WEEKS, N)
    slope = 1 + np.sin(frame.region / 10) + 0.3 * np.cos(2 * np.pi * frame.week / WEEKS)
    dose = np.where(frame.region < 30, 0.8, 0.0) * frame.dose
    frame["y"] = (slope * frame.x1 - 0.5 * frame.x2 + dose + rng.standard_t(4, N))
    return frame


HALF = "{" + ", ".join(str(r) for r in range(30)) + "}"
OTHER = "{" + ", ".join(str(r) for r in range(30, 60)) + "}"
TEN = "{" + ", ".join(str(w) for w in range(10)) + "}"
CASES = {
    "feature: dose in regions 0–29": (
        f"response y ~ squared\n{FEATURES} where region in {HALF}\n"
        "regularize 0.1 * sum_squares\n" + STRATA,
        f"response y ~ squared\n{FEATURES}\nregularize 0.1 * sum_squares\n" + STRATA),
    "l1 in weeks 0–9": (
        f"response y ~ squared\n{FEATURES}\nregularize 0.1 * sum_squares\n"
        f"regularize 20 * l1 where week in {TEN}\n" + STRATA,
        f"response y ~ squared\n{FEATURES}\nregularize 0.1 * sum_squares\n"
        "regularize 20 * l1\n" + STRATA),
    "quantile 0.9 in regions 30–59": (
        f"response y ~ quantile(tau=0.5)\nresponse y ~ quantile(tau=0.9) where region in "
        f"{OTHER}\n{FEATURES}\nregularize 0.1 * sum_squares\n" + STRATA,
        f"response y ~ quantile(tau=0.5)\n{FEATURES}\nregularize 0.1 * sum_squares\n"
        + STRATA),
}


def timed(model, frame, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        fitted = model.fit(frame, **kwargs)
        return fitted, time.perf_counter() - start


def main() -> None:
    frame = records()
    print(f"K = {REGIONS * WEEKS:,} strata, N = {N:,} records\n")
    print("| model | ADMM s | iterations | CVXPY s | ADMM vs CVXPY | gap | without the "
          "clause: ADMM s | iterations |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (spec, plain) in CASES.items():
        model = stratlang.load(spec)
        admm, admm_s = timed(model, frame, backend="admm")
        cvx, cvx_s = timed(model, frame, backend="cvxpy", solver="clarabel")
        base, base_s = timed(stratlang.load(plain), frame, backend="admm")
        gap = (admm.objective.total - cvx.objective.total) / abs(cvx.objective.total)
        print(f"| {name} | {admm_s:.2f} | {admm.info['iterations']} | {cvx_s:.2f} | "
              f"{cvx_s / admm_s:.1f}× faster | {gap:.1e} | {base_s:.2f} | "
              f"{base.info['iterations']} |")


if __name__ == "__main__":
    main()
