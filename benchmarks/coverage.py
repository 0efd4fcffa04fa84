"""Coverage of the 95 % intervals on data drawn from the model itself (issue 22).

    python benchmarks/coverage.py                 # 200 replications per loss
    python benchmarks/coverage.py --reps 50 --losses squared

Each replication draws θ from the model's prior — the Gaussian Markov random field of
precision P = γ (L ⊗ I) + λ D (a path(30) × cycle(4) product, K = 120 strata; rows x and
intercept; ``sum_squares`` on x only, so each intercept's common level is unpenalized
and is held at a fixed value, its flat prior) scaled by the likelihood's dispersion —
then records from the loss's likelihood (squared: y = xᵀθ + ε, σ = 0.5, so θ's prior
precision is P / 2σ²; poisson_regression and logistic: θ's prior precision is P), with
10 % of the strata left without records. It fits at the same, known weights and counts
how often ``fitted.intervals(0.95)`` holds the true θ, over every stratum and row (and
separately for the strata without records). The dispersion of squared is estimated
from the data, as in any fit.

``--auto``: the three weights written ``auto`` and chosen by REML in every fit; the table
then gives the coverage of the default intervals, which include the chosen weights'
uncertainty, and of the conditional ones (``conditional=True``, the weights as if known).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

N_PATH, N_CYCLE = 30, 4
GAMMA_PATH, GAMMA_CYCLE, RIDGE = 20.0, 5.0, 2.0
SIGMA = 0.5
RECORDS = 1500


def spec(loss: str, auto: bool = False) -> str:
    ridge, path, cycle = ("auto",) * 3 if auto else (RIDGE, GAMMA_PATH, GAMMA_CYCLE)
    return (f"model coverage\nresponse y ~ {loss}\nfeatures x, intercept\n"
            f"regularize {ridge} * sum_squares\n"
            f"stratify a ~ path weight {path} nodes 0..{N_PATH - 1}\n"
            f"stratify b ~ cycle weight {cycle} nodes 0..{N_CYCLE - 1}\n")


def precision() -> np.ndarray:
    """P = γ_a (L_path ⊗ I ⊗ I₂) + γ_b (I ⊗ L_cycle ⊗ I₂) + λ (I ⊗ diag(1, 0)), θ
    flattened stratum-major (a slowest), rows (x, intercept)."""
    path = np.diag(np.r_[1.0, 2.0 * np.ones(N_PATH - 2), 1.0])
    path -= np.eye(N_PATH, k=1) + np.eye(N_PATH, k=-1)
    cycle = 2.0 * np.eye(N_CYCLE) - np.roll(np.eye(N_CYCLE), 1, axis=1) - np.roll(
        np.eye(N_CYCLE), -1, axis=1)
    rows = np.eye(2)
    return (GAMMA_PATH * np.kron(np.kron(path, np.eye(N_CYCLE)), rows)
            + GAMMA_CYCLE * np.kron(np.kron(np.eye(N_PATH), cycle), rows)
            + RIDGE * np.kron(np.eye(N_PATH * N_CYCLE), np.diag([1.0, 0.0])))


def draw(loss: str, rng: np.random.Generator, values: np.ndarray, vectors: np.ndarray
         ) -> tuple[np.ndarray, pd.DataFrame, set]:
    """θ (K, 2) from the prior, and records from the likelihood."""
    scale = 2 * SIGMA ** 2 if loss == "squared" else 1.0
    kept = values > 1e-9 * values.max()
    z = rng.normal(size=int(kept.sum()))
    theta = (vectors[:, kept] @ (z * np.sqrt(scale / values[kept]))).reshape(-1, 2)
    theta[:, 1] += {"squared": 1.0, "poisson_regression": 1.0, "logistic": 0.0}[loss]
    k = N_PATH * N_CYCLE
    empty = set(rng.choice(k, size=k // 10, replace=False).tolist())
    strata = rng.choice([s for s in range(k) if s not in empty], size=RECORDS)
    x = rng.normal(size=RECORDS)
    eta = theta[strata, 0] * x + theta[strata, 1]
    if loss == "squared":
        y = eta + SIGMA * rng.normal(size=RECORDS)
    elif loss == "poisson_regression":
        y = rng.poisson(np.exp(eta))
    else:
        y = np.where(rng.uniform(size=RECORDS) < 1 / (1 + np.exp(-eta)), "yes", "no")
    frame = pd.DataFrame({"a": strata // N_CYCLE, "b": strata % N_CYCLE, "x": x, "y": y})
    return theta, frame, empty


def coverage(loss: str, reps: int, seed: int = 0, level: float = 0.95, auto: bool = False
             ) -> dict[str, float]:
    """The share of true parameters inside their intervals, over ``reps`` replications
    (``auto``: the weights chosen by REML; also the conditional intervals' share)."""
    import stratlang

    model = stratlang.load(spec(loss, auto))
    values, vectors = np.linalg.eigh(precision())
    rng = np.random.default_rng(seed)
    inside = total = inside_empty = total_empty = 0
    width = 0.0
    inside_conditional = 0
    start = time.perf_counter()
    for _ in range(reps):
        theta, frame, empty = draw(loss, rng, values, vectors)
        fitted = model.fit(frame)
        lower, upper = (part.to_numpy() for part in fitted.intervals(level))
        hit = (lower <= theta) & (theta <= upper)
        inside += int(hit.sum())
        total += hit.size
        rows = sorted(empty)
        inside_empty += int(hit[rows].sum())
        total_empty += hit[rows].size
        width += float(np.mean(upper - lower))
        if auto:
            low_c, up_c = (part.to_numpy() for part in fitted.intervals(level, conditional=True))
            inside_conditional += int(((low_c <= theta) & (theta <= up_c)).sum())
    return {"loss": loss, "replications": reps, "coverage": inside / total,
            "coverage_conditional": inside_conditional / total if auto else None,
            "coverage_empty_strata": inside_empty / total_empty,
            "mean_width": width / reps, "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--losses", default="squared,poisson_regression,logistic")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--auto", action="store_true",
                        help="choose the weights by REML in every fit (written auto)")
    args = parser.parse_args()
    rows = [coverage(loss, args.reps, args.seed, auto=args.auto)
            for loss in args.losses.split(",")]
    extra = " | conditional on the weights" if args.auto else ""
    print("| loss | replications | coverage (all θ) | coverage (strata without records) "
          f"| mean width | seconds{extra} |")
    print("|---|---|---|---|---|---|" + ("---|" if args.auto else ""))
    for row in rows:
        conditional = (f" | {100 * row['coverage_conditional']:.1f} %" if args.auto else "")
        print(f"| {row['loss']} | {row['replications']} | {100 * row['coverage']:.1f} % | "
              f"{100 * row['coverage_empty_strata']:.1f} % | {row['mean_width']:.3g} | "
              f"{row['seconds']:.1f}{conditional} |")


if __name__ == "__main__":
    main()
