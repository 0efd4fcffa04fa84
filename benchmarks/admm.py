"""ADMM backend benchmarks against CVXPY (Clarabel / OSQP / SCS) in the same run.

    python benchmarks/admm.py                 # every case
    python benchmarks/admm.py ridge_grid      # some cases

Each case runs in its own process so that its peak memory (ru_maxrss) is its own. The
table gives end-to-end seconds (data frame → bind → fit), ADMM iterations, peak memory,
the objective, its relative gap to the best objective of the same problem, and the
speed-up of ADMM over the fastest CVXPY solver on the same problem. A grid case whose
automatic backend is not ADMM (a smooth loss with quadratic penalties: newton) has that
backend's row too, "(automatic)", with its speed-up. Peak memory is the whole case
process's (CVXPY runs of the case included).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import stratlang

GRID_SPEC = """response y ~ {loss}
features {features}
regularize 0.1 * sum_squares
stratify (row, col) ~ grid weight 10 nodes (0..49, 0..49)
"""


def grid_frame(loss: str, n: int = 16_000, p: int = 9, seed: int = 0) -> pd.DataFrame:
    """Records on a 50 × 50 grid; coefficients vary smoothly over the grid."""
    rng = np.random.default_rng(seed)
    row, col = rng.integers(0, 50, n), rng.integers(0, 50, n)
    x = rng.normal(size=(n, p))
    phase = np.arange(p)
    coef = np.sin(row[:, None] / 8 + phase) + np.cos(col[:, None] / 11 - phase)
    eta = np.sum(x * coef, axis=1) / 2
    frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(p)])
    frame["row"], frame["col"] = row, col
    if loss in ("logistic", "hinge"):
        frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    else:
        frame["y"] = eta + rng.normal(size=n)
    return frame


def distribution_frame(shape: tuple[int, ...], seed: int = 0) -> pd.DataFrame:
    """One Poisson count per stratum of a grid × cycles product (synthetic crime counts)."""
    rng = np.random.default_rng(seed)
    idx = np.indices(shape).reshape(len(shape), -1)
    rate = np.exp(-1 + 0.5 * np.sin(idx[0] / 3) + 0.5 * np.cos(idx[1] / 4)
                  + sum(0.3 * np.sin(2 * np.pi * idx[a] / shape[a]) for a in range(2, len(shape))))
    frame = pd.DataFrame({f"a{a}": idx[a] for a in range(len(shape))})
    frame["count"] = rng.poisson(rate)
    return frame


def distribution_spec(factors: list[tuple[str, int]], weight: float) -> str:
    """factors: ('grid', rows), ('grid2', cols) pairs merge into one grid statement."""
    lines = ["response count ~ poisson"]
    a = 0
    while a < len(factors):
        kind, _ = factors[a]
        if kind == "grid":
            lines.append(f"stratify (a{a}, a{a + 1}) ~ grid weight {weight}")
            a += 2
        else:
            lines.append(f"stratify a{a} ~ {kind} weight {weight}")
            a += 1
    return "\n".join(lines) + "\n"


def timed_fit(spec: str, frame: pd.DataFrame, **kwargs) -> dict:
    """Times bind + fit (parsing the spec is not part of fitting)."""
    model = stratlang.load(spec)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = model.fit(frame, **kwargs)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "objective": fitted.objective.total, "k": fitted.strata.k,
            "iterations": fitted.info.get("iterations"), "status": fitted.info.get("status"),
            "solver": fitted.info.get("solver"), "backend": fitted.info.get("backend")}


# ---- cases: each returns rows; run in a subprocess -------------------------------------
def _grid_case(loss: str, solvers: tuple[str, ...]) -> list[dict]:
    frame = grid_frame(loss)
    spec = GRID_SPEC.format(loss=loss, features=", ".join(f"x{j}" for j in range(9))
                            + ", intercept")
    for backend in ("admm", None):  # untimed: the first fit of a process pays the imports
        timed_fit(spec, grid_frame(loss, n=500), backend=backend)
    rows = [{"method": "admm", **timed_fit(spec, frame, backend="admm")}]
    automatic = timed_fit(spec, frame)
    if automatic["backend"] != "admm":  # a smooth model: newton (or a direct solve) by default
        rows.insert(0, {**automatic, "method": f"{automatic['backend']} (automatic)"})
    for solver in solvers:
        rows.append({"method": f"cvxpy+{solver}", **timed_fit(spec, frame, backend="cvxpy",
                                                             solver=solver)})
    return rows


def case_logistic_grid() -> list[dict]:
    return _grid_case("logistic", ("clarabel", "scs"))


def case_ridge_grid() -> list[dict]:
    return _grid_case("squared", ("clarabel", "osqp", "scs"))


def case_quantile_grid() -> list[dict]:
    """Piecewise-linear loss: the exact smoothed-Newton + projection prox."""
    return _grid_case("quantile", ("clarabel", "scs"))


def case_svm_grid() -> list[dict]:
    return _grid_case("hinge", ("clarabel", "scs"))


def case_absolute_grid() -> list[dict]:
    return _grid_case("absolute", ("clarabel", "scs"))


def _distribution_case(shape, kinds, weight, slice_shape=None) -> list[dict]:
    start = time.perf_counter()
    frame = distribution_frame(shape)
    spec = distribution_spec(list(zip(kinds, shape, strict=True)), weight)
    row = timed_fit(spec, frame, backend="admm", options={"progress": False})
    row["seconds"] = time.perf_counter() - start  # end to end, data generation included
    rows = [{"method": "admm", **row}]
    if slice_shape is not None:  # the same code path against CVXPY on a small slice
        small = distribution_frame(slice_shape)
        small_spec = distribution_spec(list(zip(kinds, slice_shape, strict=True)), weight)
        fast = timed_fit(small_spec, small, backend="admm", options={"progress": False})
        ref = timed_fit(small_spec, small, backend="cvxpy", solver="clarabel")
        rows += [{"method": f"admm (slice K={fast['k']})", **fast},
                 {"method": f"cvxpy+clarabel (slice K={ref['k']})", **ref}]
    return rows


def case_poisson_873k() -> list[dict]:
    # the paper-implementation case: cycle(24) × cycle(7) × path(52) × 10 × 10 grid
    return _distribution_case((10, 10, 24, 7, 52), ["grid", "grid", "cycle", "cycle", "path"],
                              1.0, slice_shape=(3, 3, 6, 7, 4))


def case_crime_3_5m() -> list[dict]:
    return _distribution_case((20, 20, 52, 7, 24), ["grid", "grid", "cycle", "cycle", "cycle"],
                              100.0, slice_shape=(4, 4, 6, 7, 6))


def general_problem(folder: Path) -> tuple[str, pd.DataFrame]:
    """A general graph too large for dense eigenbases (5,000 nodes: a ring with chords,
    written to ``folder``) × path(200): K = 10⁶ Poisson counts, one per stratum."""
    n, length = 5000, 200
    rng = np.random.default_rng(0)
    ring = np.arange(n)
    edges = pd.DataFrame({"a": np.concatenate([ring, rng.integers(0, n, n)]),
                          "b": np.concatenate([(ring + 1) % n, rng.integers(0, n, n)])})
    edges = edges[edges.a != edges.b]
    path = folder / "graph.csv"
    edges.to_csv(path, index=False)
    node, step = np.divmod(np.arange(n * length), length)
    frame = pd.DataFrame({"node": node, "step": step,
                          "count": rng.poisson(np.exp(np.sin(node / 700) + np.cos(step / 30)))})
    spec = (f'response count ~ poisson\nstratify node ~ edges("{path}") weight 1\n'
            "stratify step ~ path weight 1\n")
    return spec, frame


def case_general_1m() -> list[dict]:
    """:func:`general_problem`: the Laplacian step cannot use dense eigenbases."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        spec, frame = general_problem(Path(folder))
        row = timed_fit(spec, frame, backend="admm", options={"progress": False})
        row["seconds"] = time.perf_counter() - start
    return [{"method": f"admm ({row['solver']})", **row}]


def case_scaling() -> list[dict]:
    rows = []
    for side, weeks in ((5, 2), (10, 4), (20, 4), (20, 13), (20, 52)):
        shape = (side, side, weeks, 7, 24)
        frame = distribution_frame(shape)
        spec = distribution_spec(list(zip(["grid", "grid", "cycle", "cycle", "cycle"], shape,
                                          strict=True)), 100.0)
        row = timed_fit(spec, frame, backend="admm", options={"progress": False})
        row["per_iteration"] = row["seconds"] / row["iterations"]
        rows.append({"method": "admm", **row})
    return rows


CASES = {"logistic_grid": case_logistic_grid, "ridge_grid": case_ridge_grid,
         "quantile_grid": case_quantile_grid, "svm_grid": case_svm_grid,
         "absolute_grid": case_absolute_grid,
         "poisson_873k": case_poisson_873k, "crime_3_5m": case_crime_3_5m,
         "general_1m": case_general_1m, "scaling": case_scaling}


def run_one(name: str) -> None:
    rows = CASES[name]()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # KiB → GiB
    print(json.dumps({"case": name, "rows": rows, "peak_gib": peak}))


def main(names: list[str]) -> None:
    print("| case | method | K | seconds | iterations | peak GiB | objective | rel. gap | "
          "speed-up over CVXPY |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names or list(CASES):
        out = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True,
                             text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        rows = result["rows"]
        for r in rows:  # gaps and speed-ups compare rows of the same problem (same K)
            same = [x for x in rows if x["k"] == r["k"]]
            best = min(x["objective"] for x in same)
            gap = (r["objective"] - best) / max(abs(best), 1e-12)
            cvx = [x["seconds"] for x in same if x["method"].startswith("cvxpy")]
            speed = (f"{min(cvx) / r['seconds']:.1f}×"
                     if not r["method"].startswith("cvxpy") and cvx else "")
            extra = f" ({r['per_iteration'] * 1e3:.0f} ms/iter)" if "per_iteration" in r else ""
            print(f"| {name} | {r['method']} | {r['k']:,} | {r['seconds']:.2f}{extra} | "
                  f"{r['iterations'] or ''} | {result['peak_gib']:.2f} | {r['objective']:.10g} | "
                  f"{gap:.1e} | {speed} |")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        run_one(sys.argv[2])
    else:
        main(sys.argv[1:])
