"""Which coefficient varies over which factor (issue 24): the sales example's per-term
model against today's all-vary model and a GLM with fixed effects, held out; and what
per-row structure costs ADMM per iteration.

    python benchmarks/sales.py

examples/data/sales.csv: 30 stores × 52 weeks × 2 outlets, Poisson unit sales with an
additive truth (store level + shared seasonality + store price elasticity + common
promotion). Each model's weights are chosen on a validation quarter of the training
records (the same split for all), then the model is refitted on all training records and
scored on the held-out `test` records (average negative log-likelihood, lower is better).
"""

from __future__ import annotations

import itertools
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import stratlang
from stratlang.solvers.graphs import RowGroup, complete_graph, cycle_graph
from stratlang.solvers.laplacian import GroupedSolver, KroneckerSolver

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
STRATA = ("stratify store ~ complete weight {store} nodes 1..30\n"
          "stratify week ~ cycle weight {week} nodes 1..52\n")
PER_TERM = ("model sales\nresponse units ~ poisson_regression\n"
            "features log(price) by store, promo shared, intercept\n" + STRATA
            + "interact store * week weight {interact}\n")
ALL_VARY = ("model sales_all\nresponse units ~ poisson_regression\n"
            "features log(price), promo, intercept\n" + STRATA)
GLM = ("model glm\nresponse units ~ poisson_regression\n"
       "features categorical(store), categorical(week), log(price), promo, intercept\n"
       "regularize {ridge} * sum_squares\n")
GRIDS = {
    "per-term (by store, shared, interact)": (PER_TERM, {"store": [0.001, 0.01, 0.1],
                                                         "week": [3, 10, 30, 100],
                                                         "interact": [10, 1000]}),
    "all-vary (today)": (ALL_VARY, {"store": [0.001, 0.01, 0.1], "week": [3, 10, 30, 100]}),
    "GLM, fixed effects store + week": (GLM, {"ridge": [0.001, 0.01, 0.1, 1]}),
}


def choose(template: str, grid: dict, train: pd.DataFrame) -> dict:
    """The grid point with the best validation ANLL (a fixed quarter of ``train``)."""
    rng = np.random.default_rng(0)
    inner = rng.random(len(train)) < 0.75
    best, best_score = {}, np.inf
    for values in itertools.product(*grid.values()):
        point = dict(zip(grid, values, strict=True))
        model = stratlang.load(template.format(**point))
        score = model.fit(train[inner]).score(train[~inner])["anll"]
        if score < best_score:
            best, best_score = point, score
    return best


def held_out_table(frame: pd.DataFrame) -> list[tuple[str, dict, float, float, str]]:
    train, test = frame[frame.split == "train"], frame[frame.split == "test"]
    rows = []
    for name, (template, grid) in GRIDS.items():
        point = choose(template, grid, train)
        model = stratlang.load(template.format(**point))
        start = time.perf_counter()
        fitted = model.fit(train)
        seconds = time.perf_counter() - start
        rows.append((name, point, fitted.score(test)["anll"], seconds, fitted.info["backend"]))
    return rows


def admm_per_iteration(frame: pd.DataFrame) -> list[tuple[str, int, float, float]]:
    """Both stratified models by ADMM at the same weights: iterations, seconds, and the
    time per iteration."""
    train = frame[frame.split == "train"]
    out = []
    for name, template in (("all rows alike", ALL_VARY),
                           ("per-row (by, shared, interact)", PER_TERM)):
        model = stratlang.load(template.format(store=0.01, week=10, interact=1000))
        fitted = model.fit(train, backend="admm")
        info = fitted.info
        out.append((name, info["iterations"], info["fit_seconds"],
                    info["fit_seconds"] / max(info["iterations"], 1)))
    return out


def admm_per_iteration_large(stores: int = 300, weeks: int = 52, records: int = 60_000,
                             iterations: int = 60) -> list[tuple[str, int, float, float]]:
    """The same two models by ADMM on K = 300 × 52 strata and 60,000 simulated records
    (the sales simulation's truth at that size), a fixed number of iterations (tolerances
    out of reach): seconds per iteration."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"store": rng.integers(1, stores + 1, records),
                          "week": rng.integers(1, weeks + 1, records),
                          "price": np.exp(0.25 * rng.normal(size=records)) * 4,
                          "promo": (rng.random(records) < 0.2).astype(int)})
    base, slope = 0.5 * rng.normal(size=stores), -1.5 + 0.5 * rng.normal(size=stores)
    frame["units"] = rng.poisson(np.exp(
        1 + base[frame.store - 1] + 0.5 * np.sin(2 * np.pi * frame.week / weeks)
        + slope[frame.store - 1] * np.log(frame.price / 4) + 0.4 * frame.promo))
    strata = (f"stratify store ~ complete weight 0.001 nodes 1..{stores}\n"
              f"stratify week ~ cycle weight 10 nodes 1..{weeks}\n")
    out = []
    for name, features, extra in (
            ("all rows alike", "log(price), promo, intercept", ""),
            ("per-row (by, shared, interact)", "log(price) by store, promo shared, intercept",
             "interact store * week weight 1000\n")):
        model = stratlang.load("model s\nresponse units ~ poisson_regression\nfeatures "
                               + features + "\n" + strata + extra)
        info = model.fit(frame, backend="admm", options={
            "max_iter": iterations, "eps_abs": 1e-12, "eps_rel": 1e-12}).info
        out.append((name, info["iterations"], info["fit_seconds"],
                    info["fit_seconds"] / info["iterations"]))
    return out


def laplacian_step(stores: int = 300, weeks: int = 52, rows: int = 10, repeat: int = 20
                   ) -> list[tuple[str, float]]:
    """One Laplacian step (L + cI)⁻¹ on K = stores × weeks strata and ``rows`` rows: all
    rows alike (one Kronecker solve) against each row its own (weights, constant factors,
    an interaction)."""
    factors = (complete_graph(stores), cycle_graph(weeks))
    k = stores * weeks
    rhs = np.random.default_rng(0).normal(size=(k, rows))
    alike = KroneckerSolver(factors, [1.0, 10.0])
    groups = [RowGroup(np.array([0, 1, 2]), None, factors, (5.0, 10.0), (False, True)),
              RowGroup(np.array([3, 4]), None, factors, None, (True, True)),
              RowGroup(np.array([5, 6, 7, 8, 9]), None, factors, (1.0, 30.0))]
    grouped = GroupedSolver(groups, [1.0, 10.0], (k, rows, 1), [((0, 1), 1000.0)])
    out = []
    for name, solve in (("all rows alike (Kronecker solve)", alike.solve),
                        ("3 row groups: own weights, constant factors, interaction",
                         grouped.solve)):
        solve(rhs, 1.0)
        start = time.perf_counter()
        for _ in range(repeat):
            solve(rhs, 1.0)
        out.append((name, (time.perf_counter() - start) / repeat))
    return out


def main() -> None:
    warnings.simplefilter("ignore")
    frame = pd.read_csv(EXAMPLES / "data" / "sales.csv")
    print("| model | weights (validation) | held-out ANLL | fit seconds | backend |")
    print("|---|---|---|---|---|")
    for name, point, score, seconds, backend in held_out_table(frame):
        shown = ", ".join(f"{k} {v:g}" for k, v in point.items())
        print(f"| {name} | {shown} | {score:.4f} | {seconds:.2f} | {backend} |")
    print()
    print("| ADMM on the sales data | iterations | seconds | ms per iteration |")
    print("|---|---|---|---|")
    for name, iterations, seconds, each in admm_per_iteration(frame):
        print(f"| {name} | {iterations} | {seconds:.2f} | {1000 * each:.2f} |")
    print()
    print("| ADMM, K = 300 × 52, 60,000 records, 60 iterations | iterations | seconds | "
          "ms per iteration |")
    print("|---|---|---|---|")
    for name, iterations, seconds, each in admm_per_iteration_large():
        print(f"| {name} | {iterations} | {seconds:.2f} | {1000 * each:.1f} |")
    print()
    print("| Laplacian step, K = 300 × 52, 10 rows | ms per solve |")
    print("|---|---|")
    for name, seconds in laplacian_step():
        print(f"| {name} | {1000 * seconds:.2f} |")


if __name__ == "__main__":
    main()
