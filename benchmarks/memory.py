"""Peak memory of a fit against the estimate a backend refuses oversized models by
(issue 14: stratlang.backends.memory). The estimate must stay below what a fit needs, so
that no model that would fit is refused.

    python benchmarks/memory.py

Each fit runs in a fresh process (peak resident memory, minus the process's peak before
the fit); a path-regularized squared-loss model with 3 features + intercept and 4
records per stratum.
"""

from __future__ import annotations

import json
import subprocess
import sys

CASES = [(20_000, "cvxpy"), (80_000, "cvxpy"), (20_000, "admm"), (80_000, "admm"),
         (320_000, "admm")]

CHILD = r"""
import json, resource, sys
import numpy as np, pandas as pd
import stratlang
from stratlang.backends import BACKENDS
from stratlang.backends.base import bind_family
k, backend = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(0)
n = 4 * k
frame = pd.DataFrame({"s": rng.integers(0, k, n), "x1": rng.normal(size=n),
                      "x2": rng.normal(size=n), "x3": rng.normal(size=n)})
frame["y"] = frame.x1 + rng.normal(size=n)
model = stratlang.load(f"model m\nresponse y ~ squared\nfeatures x1, x2, x3\n"
                       f"regularize 0.1 * sum_squares\nstratify s ~ path nodes 0..{k - 1}\n")
estimate = BACKENDS[backend].memory(bind_family(model.ir, frame), {})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
model.fit(frame, backend=backend)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"measured": after - before, "estimate": estimate}))
"""


def main() -> int:
    print("| K | backend | K·d | measured | estimate | measured / estimate |")
    print("|---|---|---|---|---|---|")
    worst = float("inf")
    for k, backend in CASES:
        out = subprocess.run([sys.executable, "-c", CHILD, str(k), backend], check=True,
                             capture_output=True, text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        ratio = row["measured"] / row["estimate"]
        worst = min(worst, ratio)
        print(f"| {k:,} | {backend} | {4 * k:,} | {row['measured'] / 2**20:,.0f} MiB | "
              f"{row['estimate'] / 2**20:,.0f} MiB | {ratio:.2f} |")
    print(f"\nsmallest ratio {worst:.2f}: " + ("the estimates are lower bounds" if worst >= 1
                                              else "AN ESTIMATE EXCEEDS A MEASURED FIT"))
    return 0 if worst >= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
