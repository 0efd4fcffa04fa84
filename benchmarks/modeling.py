"""ADMM against the CVXPY reference on models that use offsets, record weights and
categorical / transformed features (issue 13), and `where` clauses (issue 16).

    python benchmarks/modeling.py

Each case is fitted by ADMM at its default tolerances (ε = 1e-6), by the automatic
backend where that is not ADMM (newton, for smooth losses with quadratic penalties:
"(auto)"), and by CVXPY (Clarabel, and SCS where Clarabel is slow), from the same pandas
frame; "gap" is each objective relative to the best one of the same run, and the
speed-up is over the fastest CVXPY solver. The simulated cases are drawn with a fixed
seed.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import stratlang

ROOT = Path(__file__).resolve().parents[1]


def claims(n: int, seed: int = 0) -> pd.DataFrame:
    """Policies by region × month: claim counts with exposure, a survey weight, a
    categorical vehicle class interacting with age, log income."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"region": rng.integers(0, 10, n), "month": rng.integers(0, 12, n),
                          "vehicle": rng.choice(["car", "van", "truck", "bike", "bus"], n),
                          "age": rng.normal(45, 12, n), "income": rng.lognormal(3, 0.4, n),
                          "exposure": rng.uniform(0.1, 3.0, n),
                          "w": rng.choice([0.5, 1.0, 2.0, 4.0], n)})
    season = 0.3 * np.sin(2 * np.pi * frame.month / 12)
    vehicle = frame.vehicle.map({"car": 0.0, "van": 0.3, "truck": 0.6, "bike": -0.4, "bus": 0.2})
    rate = np.exp(-1.5 + season + 0.05 * frame.region + vehicle
                  - 0.01 * (frame.age - 45) + 0.2 * np.log(frame.income / 20))
    frame["claims"] = rng.poisson(rate * frame.exposure)
    frame["cost"] = rate * 100 + rng.normal(0, 10, n) + 30 * (frame.vehicle == "truck")
    frame["large"] = (frame.cost > np.median(frame.cost)).astype(int)
    return frame


FEATURES = ("features intercept, categorical(vehicle, reference=\"car\") * standardize(age), "
            "log(income)\n")
STRATA = "stratify region ~ path weight 5\nstratify month ~ cycle weight 10\n"
CASES = {
    "insurance (example)": (ROOT / "examples" / "insurance.strat", None),
    "poisson, offset + weights + categorical×age": (
        "response claims ~ poisson_regression offset log(exposure)\n" + FEATURES
        + "weights w\nregularize 0.1 * sum_squares\n" + STRATA, 20_000),
    "logistic, weights + categorical×age": (
        "response large ~ logistic\n" + FEATURES + "weights w\nregularize 0.1 * sum_squares\n"
        + STRATA, 20_000),
    "squared, offset + weights (one linear solve)": (
        "response cost ~ squared offset log(exposure)\n" + FEATURES
        + "weights w\nregularize 1 * sum_squares\n" + STRATA, 20_000),
    "quantile(0.9), offset + weights": (
        "response cost ~ quantile(0.9) offset log(exposure)\n" + FEATURES
        + "weights w\nregularize 1 * sum_squares\n" + STRATA, 5_000),
    # issue 16: where clauses
    "where: log(income) in regions 0-4 only": (
        "response cost ~ squared\nfeatures intercept, standardize(age), log(income) where "
        "region in {0, 1, 2, 3, 4}\nweights w\nregularize 1 * sum_squares\n" + STRATA, 20_000),
    "where: l1 in winter, nonneg. in 3 regions": (
        "response cost ~ squared\n" + FEATURES + "weights w\nregularize 1 * sum_squares\n"
        "regularize 50 * l1 where month in {11, 0, 1}\n"
        "regularize nonnegative where region in {0, 5, 9}\n" + STRATA, 20_000),
    "where: huber M per region group": (
        "response cost ~ huber(M=5)\nresponse cost ~ huber(M=20) where region in {0, 1, 2}\n"
        + FEATURES + "regularize 1 * sum_squares\n" + STRATA, 5_000),
}


def timed(model, frame, **kwargs):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = model.fit(frame, **kwargs)
    return fitted, time.perf_counter() - start


def main() -> int:
    print(f"{'case':<46}{'K':>5}{'N':>8}  {'method':<16}{'seconds':>9}{'objective':>18}"
          f"{'gap':>10}{'speed-up':>10}")
    # one untimed fit per backend first: the first fit of a process pays its imports
    warm_spec = CASES["poisson, offset + weights + categorical×age"][0]
    for backend in (None, "admm"):
        timed(stratlang.load(warm_spec), claims(500), backend=backend)
    for name, (spec, n) in CASES.items():
        model = stratlang.load(spec)
        frame = model.frame(None) if n is None else claims(n)
        if n is None:
            frame = frame[frame.split == "train"]
        automatic = timed(model, frame)
        backend = automatic[0].info.get("backend")
        runs = {"admm": automatic}
        if backend != "admm":  # a smooth model goes to newton: ADMM named, for the record
            runs = {f"{backend} (auto)": automatic, "admm": timed(model, frame, backend="admm")}
        for solver in ("clarabel", "scs"):
            try:
                runs[f"cvxpy+{solver}"] = timed(model, frame, backend="cvxpy", solver=solver)
            except stratlang.NumericalError as err:
                print(f"  ({solver} failed: {err})")
        best = min(f.objective.total for f, _ in runs.values())
        fastest = min(s for label, (_, s) in runs.items() if label.startswith("cvxpy"))
        for label, (fitted, seconds) in runs.items():
            gap = (fitted.objective.total - best) / max(abs(best), 1e-12)
            speed = f"{fastest / seconds:.1f}x" if not label.startswith("cvxpy") else ""
            print(f"{name:<46}{fitted.strata.k:>5}{len(frame):>8}  {label:<16}{seconds:>9.2f}"
                  f"{fitted.objective.total:>18.10g}{gap:>10.1e}{speed:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
