"""Time of the standard errors against the fit's own, as K grows (issue 22).

    python benchmarks/uncertainty_scale.py                  # path(n) × path(n), n = 30 … 300
    python benchmarks/uncertainty_scale.py --sizes 40,100

Stratified Poisson regression (x and an intercept, ``1 * sum_squares``, both path
weights 5) on a path(n) × path(n) product, 5 records per stratum: the newton fit, then
``fitted.theta_se`` (H's stratum blocks at the fit: exact Cholesky with selected inversion
up to solvers.curvature.EXACT_LIMIT coefficients K·d, Monte Carlo beyond), each timed once.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def run(n: int) -> dict[str, float | int | str]:
    import stratlang

    rng = np.random.default_rng(0)
    records = 5 * n * n
    frame = pd.DataFrame({"a": rng.integers(0, n, records), "b": rng.integers(0, n, records),
                          "x": rng.normal(size=records)})
    frame["y"] = rng.poisson(np.exp(0.3 * frame.x + np.sin(frame.a / 10)))
    model = stratlang.load(
        "model scale\nresponse y ~ poisson_regression\nfeatures x, intercept\n"
        f"regularize 1 * sum_squares\nstratify a ~ path weight 5 nodes 0..{n - 1}\n"
        f"stratify b ~ path weight 5 nodes 0..{n - 1}\n")
    start = time.perf_counter()
    fitted = model.fit(frame)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    _ = fitted.theta_se
    se = time.perf_counter() - start
    return {"K": n * n, "Kd": 2 * n * n, "fit": fit, "se": se,
            "method": fitted.info["uncertainty_method"],
            "stderr": fitted.info["uncertainty_stderr"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="30,45,100,200,300")
    args = parser.parse_args()
    print("| K | K·d | fit s | standard errors s | method | relative error of the variances |")
    print("|---|---|---|---|---|---|")
    for n in (int(v) for v in args.sizes.split(",")):
        row = run(n)
        print(f"| {row['K']:,} | {row['Kd']:,} | {row['fit']:.2f} | {row['se']:.2f} | "
              f"{row['method']} | {row['stderr']:.2g} |")


if __name__ == "__main__":
    main()
