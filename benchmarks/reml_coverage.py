"""Coverage of the 95 % intervals on data simulated from the model (issue 22).

    OPENBLAS_NUM_THREADS=1 python benchmarks/reml_coverage.py --reps 40

Each replicate draws θ from the model's prior — an intrinsic GMRF on a path(30) × cycle(8)
product (K = 240), precision P(w)/τ with known weights, plus a constant — then records
(2 per stratum, a few strata left without data) from the family: Gaussian (noise sd 0.5,
τ = 2φ), Poisson (log link, exposure offset) or logistic. stratlang's engine selects the
two weights by REML and reports θ̂ ± 1.96 sqrt(τ (H⁻¹)_kk) for every stratum; the table
gives the share of (stratum, replicate) pairs whose interval covers the true θ_k, and the
same for the strata without data. Bayesian intervals of a penalized fit cover at the
nominal rate on average over the strata (Wahba 1983; Nychka 1988), not stratum by stratum.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from stratlang.solvers.curvature import LaplaceCurvature
from stratlang.solvers.graphs import cycle_graph, path_graph
from stratlang.solvers.hessian import KroneckerSum, RecordStatistics
from stratlang.solvers.newton import LossTerm, SmoothProblem
from stratlang.solvers.penalty import LaplacianPart, QuadraticPenalty
from stratlang.solvers.pointwise import Logistic, PoissonRegression, Squared
from stratlang.solvers.selection import newton_fit, select_weights

FACTORS = [path_graph(30), cycle_graph(8)]
TRUE_WEIGHTS = {"gaussian": (20.0, 5.0), "poisson": (40.0, 10.0), "logistic": (10.0, 3.0)}


def draw_prior(penalty: QuadraticPenalty, weights, tau: float, rng) -> np.ndarray:
    values, vectors = np.linalg.eigh(penalty.matrix(weights).toarray() / tau)
    null = penalty.null_dim(weights)
    scale = np.zeros_like(values)
    scale[null:] = 1.0 / np.sqrt(values[null:])
    return vectors @ (scale * rng.normal(size=len(values)))


def replicate(family: str, rng) -> tuple[np.ndarray, np.ndarray]:
    penalty = QuadraticPenalty(FACTORS, [LaplacianPart(0), LaplacianPart(1)], n=1)
    k = penalty.k
    sigma = 0.5
    tau = 2 * sigma**2 if family == "gaussian" else 1.0
    theta = draw_prior(penalty, TRUE_WEIGHTS[family], tau, rng)
    theta += {"gaussian": 0.0, "poisson": 1.0, "logistic": 0.0}[family]
    empty = rng.choice(k, size=k // 10, replace=False)
    per = np.full(k, 2)
    per[empty] = 0
    z = np.repeat(np.arange(k), per)
    offset = None
    if family == "gaussian":
        unit, y = Squared(), theta[z] + sigma * rng.normal(size=len(z))
    elif family == "poisson":
        exposure = rng.uniform(0.5, 2.0, len(z))
        offset = np.log(exposure)
        unit, y = PoissonRegression(), rng.poisson(np.exp(theta[z] + offset)).astype(float)
    else:
        p = 1 / (1 + np.exp(-theta[z]))
        unit, y = Logistic(), np.where(rng.uniform(size=len(z)) < p, 1.0, -1.0)
    stats = RecordStatistics(np.ones((len(z), 1)), z, k, 1)
    problem = SmoothProblem(stats, y[:, None], [LossTerm(unit)], np.zeros((k, 1)),
                            KroneckerSum(FACTORS, [1.0, 1.0]), offset)
    selection = select_weights(newton_fit(problem, penalty, dispersion=family == "gaussian"),
                               penalty, "reml", start=[1.0, 1.0])
    curvature = LaplaceCurvature(selection.fit.blocks, penalty, selection.weights)
    se = np.sqrt(selection.covariance_scale * curvature.inverse_blocks().value[:, 0, 0])
    covered = np.abs(selection.fit.theta[:, 0] - theta) <= 1.959964 * se
    without = np.zeros(k, dtype=bool)
    without[empty] = True
    return covered, without


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--families", default="gaussian,poisson,logistic")
    args = parser.parse_args()
    print("| family | replicates | coverage (all strata) | strata without data | seconds |")
    print("|---|---|---|---|---|")
    for family in args.families.split(","):
        rng = np.random.default_rng(7)
        clock = time.perf_counter()
        hits, empty_hits = [], []
        for _ in range(args.reps):
            covered, without = replicate(family, rng)
            hits.append(covered.mean())
            empty_hits.append(covered[without].mean())
        hits_arr = np.array(hits)
        print(f"| {family} | {args.reps} | {hits_arr.mean():.3f} "
              f"(± {hits_arr.std(ddof=1) / np.sqrt(args.reps):.3f}) | "
              f"{np.mean(empty_hits):.3f} | {time.perf_counter() - clock:.0f} |", flush=True)


if __name__ == "__main__":
    main()
