"""Coverage of the 95 % intervals of the ``gaussian`` loss's natural parameters on data
drawn from the model itself (issue 22, item 4).

    python benchmarks/gaussian_coverage.py                # 50 replications, known and auto weight
    python benchmarks/gaussian_coverage.py --reps 20

Each replication draws θ_k = (S_k, ν_k) = (Σ_k⁻¹, Σ_k⁻¹μ_k) for K = 40 strata along a path
from the model's prior: over the free coordinates ψ (S's diagonal, √2 × its
off-diagonal, ν) the penalty γ (L ⊗ I) on the stored entries is γ (L ⊗ I) on ψ, and the
loss is twice the NLL, so ψ's prior precision is (γ/2)(L ⊗ I); its null space (a common
level per coordinate, flat prior) is held at a fixed S₀, ν₀. A draw with some S_k whose
smallest eigenvalue is below 0.2 is drawn again (the prior has no PD constraint; with
γ = 300 that happens rarely). Then 30 records per stratum from N(μ_k, Σ_k), with 10 % of
the strata left without records. It fits at the known weight γ, and with the weight
written ``auto`` (REML; the default intervals include the chosen weight's uncertainty,
the conditional ones not), and counts how often the 95 % intervals hold the truth: S's
entries (each free one once), ν's, the strata without records, and the mean μ_k = S_k⁻¹ν_k
(``predict(interval=…)``, by the delta method).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pandas as pd

K = 40
GAMMA = 300.0
PER_STRATUM = 30
S0 = np.array([[1.5, -0.5], [-0.5, 1.0]])
MU0 = np.array([0.5, -0.3])
FREE = [(0, 0), (0, 1), (1, 1)]  # S's free entries (S_ba = S_ab)


def spec(auto: bool) -> str:
    return ("model gaussian_coverage\nresponse (a, b) ~ gaussian\n"
            f"stratify s ~ path weight {'auto' if auto else GAMMA} nodes 0..{K - 1}\n")


def draw(rng: np.random.Generator) -> tuple[np.ndarray, pd.DataFrame, list[int]]:
    """θ (K, 3, 2) from the prior, and records from the likelihood."""
    laplacian = np.diag(np.r_[1.0, 2.0 * np.ones(K - 2), 1.0])
    laplacian -= np.eye(K, k=1) + np.eye(K, k=-1)
    values, vectors = np.linalg.eigh(laplacian)
    kept = values > 1e-9 * values.max()
    while True:
        # five free coordinates: S_aa, √2 S_ab, S_bb, ν_a, ν_b; each N(0, ((γ/2) L)⁺)
        z = rng.normal(size=(int(kept.sum()), 5))
        psi = vectors[:, kept] @ (z / np.sqrt(0.5 * GAMMA * values[kept])[:, None])
        theta = np.zeros((K, 3, 2))
        theta[:, 0, 0] = S0[0, 0] + psi[:, 0]
        theta[:, 0, 1] = theta[:, 1, 0] = S0[0, 1] + psi[:, 1] / np.sqrt(2.0)
        theta[:, 1, 1] = S0[1, 1] + psi[:, 2]
        theta[:, 2] = S0 @ MU0 + psi[:, 3:]
        if np.all(np.linalg.eigvalsh(theta[:, :2]) > 0.2):
            break
    empty = sorted(rng.choice(K, size=K // 10, replace=False).tolist())
    rows = []
    for k in range(K):
        if k in empty:
            continue
        cov = np.linalg.inv(theta[k, :2])
        mean = cov @ theta[k, 2]
        y = rng.multivariate_normal(mean, cov, size=PER_STRATUM)
        rows.append(pd.DataFrame({"a": y[:, 0], "b": y[:, 1], "s": k}))
    return theta, pd.concat(rows, ignore_index=True), empty


def coverage(reps: int, seed: int = 0, level: float = 0.95, auto: bool = False
             ) -> dict[str, Any]:
    import stratlang

    model = stratlang.load(spec(auto))
    rng = np.random.default_rng(seed)
    counts: dict[str, list[int]] = {key: [0, 0] for key in
                                    ("S", "nu", "empty", "mean", "conditional")}
    weights = []
    start = time.perf_counter()

    def count(key: str, hit: np.ndarray) -> None:
        counts[key][0] += int(hit.sum())
        counts[key][1] += hit.size

    for _ in range(reps):
        theta, frame, empty = draw(rng)
        fitted = model.fit(frame)
        weights.append(fitted.weights["stratify.s"])
        lower, upper = (part.to_numpy().reshape(K, 3, 2) for part in fitted.intervals(level))
        hit = (lower <= theta) & (theta <= upper)
        free = np.stack([hit[:, i, j] for i, j in FREE] + [hit[:, 2, 0], hit[:, 2, 1]], axis=1)
        count("S", free[:, :3])
        count("nu", free[:, 3:])
        count("empty", free[empty])
        if auto:
            low_c, up_c = (p.to_numpy().reshape(K, 3, 2)
                           for p in fitted.intervals(level, conditional=True))
            inside = (low_c <= theta) & (theta <= up_c)
            count("conditional", np.stack([inside[:, i, j] for i, j in FREE]
                                          + [inside[:, 2, 0], inside[:, 2, 1]], axis=1))
        got = fitted.predict(pd.DataFrame({"s": np.arange(K)}), interval=level)
        mean = np.linalg.solve(theta[:, :2], theta[:, 2][..., None])[..., 0]
        for o, name in enumerate("ab"):
            count("mean", (got[f"mean_lower_{name}"].to_numpy() <= mean[:, o])
                  & (mean[:, o] <= got[f"mean_upper_{name}"].to_numpy()))
    share = {key: (inside / total if total else None) for key, (inside, total)
             in counts.items()}
    return {"weight": "auto (REML)" if auto else f"known ({GAMMA:g})", "replications": reps,
            **share, "median_weight": float(np.median(weights)),
            "seconds": time.perf_counter() - start}


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = [coverage(args.reps, args.seed, auto=False), coverage(args.reps, args.seed, auto=True)]
    print("| weight | replications | S entries | ν entries | strata without records "
          "| mean μ = S⁻¹ν | conditional on the weight | median weight | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['weight']} | {row['replications']} | {_percent(row['S'])} | "
              f"{_percent(row['nu'])} | {_percent(row['empty'])} | {_percent(row['mean'])} | "
              f"{_percent(row['conditional'])} | {row['median_weight']:.4g} | "
              f"{row['seconds']:.1f} |")


if __name__ == "__main__":
    main()
