"""Times the CVXPY reference on the bundled examples with every applicable solver.

    python benchmarks/reference.py [--repeat 3]

Prints a markdown table: compile (problem build) and solve seconds per solver, the ratio
to the fastest solver of the same example, and each objective's relative gap to the
best objective found. These are the baselines the specialized solvers are measured
against.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cvxpy as cp

import stratlang
from stratlang.backends.objective import stratified_objective
from stratlang.backends.reference import StratifiedProblem

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CASES = ["elections", "diabetes", "houses", "mpls_stops"]
QUADRATIC = ("CLARABEL", "OSQP", "SCS")
CONIC = ("CLARABEL", "SCS", "ECOS")


def run_case(name: str, repeat: int) -> list[dict]:
    model = stratlang.load(EXAMPLES / f"{name}.strat")
    frame = model.frame(None)
    design = model.bind(frame[frame.split == "train"])
    weights = model.ir.weight_values()
    solvers = QUADRATIC if design.loss.name == "squared" else CONIC
    rows = []
    for solver in solvers:
        if solver not in cp.installed_solvers():
            continue
        best_build, best_solve, objective, status = float("inf"), float("inf"), None, "-"
        for _ in range(repeat):
            start = time.perf_counter()
            problem = StratifiedProblem(design, weights)
            built = time.perf_counter()
            try:
                theta, info = problem.solve(weights, method=solver)
            except stratlang.NumericalError:
                status = "failed"
                break
            done = time.perf_counter()
            best_build, best_solve = min(best_build, built - start), min(best_solve, done - built)
            objective, status = stratified_objective(design, theta, weights).total, info["status"]
        rows.append({"example": name, "K": design.strata.k, "records": design.n_records,
                     "solver": solver, "build": best_build, "solve": best_solve,
                     "objective": objective, "status": status})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("| example | K | records | solver | build s | solve s | × fastest | objective | rel. gap | status |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in CASES:
        rows = run_case(name, args.repeat)
        ok = [r for r in rows if r["objective"] is not None]
        fastest = min(r["build"] + r["solve"] for r in ok)
        best = min(r["objective"] for r in ok)
        for r in rows:
            if r["objective"] is None:
                print(f"| {name} | {r['K']} | {r['records']} | {r['solver']} | - | - | - | - | - | {r['status']} |")
                continue
            total = r["build"] + r["solve"]
            gap = (r["objective"] - best) / max(abs(best), 1e-12)
            print(f"| {name} | {r['K']} | {r['records']} | {r['solver']} | {r['build']:.3f} | "
                  f"{r['solve']:.3f} | {total / fastest:.1f} | {r['objective']:.8g} | {gap:.1e} | "
                  f"{r['status']} |")


if __name__ == "__main__":
    main()
