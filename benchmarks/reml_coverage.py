"""Coverage of the 95 % intervals on data simulated from the model (issue 22).

    OPENBLAS_NUM_THREADS=1 python benchmarks/reml_coverage.py --reps 40 --path 100 --records 4

Each replicate draws θ from the model's prior — an intrinsic GMRF on a path(P) × cycle(8)
product (K = 8P), precision P(w)/τ with known weights, plus a constant — then records
(``--records`` per stratum, a tenth of the strata left without data) from the family: Gaussian (noise sd 0.5,
τ = 2φ), Poisson (log link, exposure offset) or logistic. stratlang's engine selects the
two weights by REML and reports θ̂ ± 1.96 sqrt(τ (H⁻¹)_kk) for every stratum; the table
gives the share of (stratum, replicate) pairs whose interval covers the true θ_k, and the
same for the strata without data, and with the chosen weights' own uncertainty added
(``Selection.weight_uncertainty``, mgcv's ``unconditional=TRUE``). Bayesian intervals of a penalized fit cover at the
nominal rate on average over the strata (Wahba 1983; Nychka 1988), not stratum by stratum.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from stratlang.solvers.curvature import LaplaceCurvature
from stratlang.solvers.graphs import cycle_graph, path_graph
from stratlang.solvers.hessian import KroneckerSum, RecordStatistics
from stratlang.solvers.newton import LossTerm, SmoothProblem
from stratlang.solvers.penalty import LaplacianPart, QuadraticPenalty
from stratlang.solvers.pointwise import Logistic, PoissonRegression, Squared
from stratlang.solvers.selection import newton_fit, select_weights

FACTORS = [path_graph(30), cycle_graph(8)]
RECORDS = 2  # per stratum (a tenth of the strata get none)
TRUE_WEIGHTS = {"gaussian": (20.0, 5.0), "poisson": (40.0, 10.0), "logistic": (10.0, 3.0)}


def draw_prior(penalty: QuadraticPenalty, weights, tau: float, rng) -> np.ndarray:
    values, vectors = np.linalg.eigh(penalty.matrix(weights).toarray() / tau)
    null = penalty.null_dim(weights)
    scale = np.zeros_like(values)
    scale[null:] = 1.0 / np.sqrt(values[null:])
    return vectors @ (scale * rng.normal(size=len(values)))


@dataclass(frozen=True)
class Replicate:
    """One simulated data set: the truth, the records and the problem to fit."""

    theta: np.ndarray  # (K,) the true stratum values
    strata: np.ndarray  # (N,) each record's stratum
    y: np.ndarray  # (N,) the responses (±1 for logistic)
    offset: np.ndarray | None  # log exposure (Poisson)
    empty: np.ndarray  # the strata left without records
    penalty: QuadraticPenalty
    problem: SmoothProblem


def simulate(family: str, rng) -> Replicate:
    """θ from the prior and records from the family (the draws in this order, so that a
    seed gives the same replicates to every benchmark that uses this function)."""
    penalty = QuadraticPenalty(FACTORS, [LaplacianPart(0), LaplacianPart(1)], n=1)
    k = penalty.k
    sigma = 0.5
    tau = 2 * sigma**2 if family == "gaussian" else 1.0
    theta = draw_prior(penalty, TRUE_WEIGHTS[family], tau, rng)
    theta += {"gaussian": 0.0, "poisson": 1.0, "logistic": 0.0}[family]
    empty = rng.choice(k, size=k // 10, replace=False)
    per = np.full(k, RECORDS)
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
    return Replicate(theta, z, y, offset, empty, penalty, problem)


def replicate(family: str, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = simulate(family, rng)
    penalty, problem, theta, empty, k = (data.penalty, data.problem, data.theta, data.empty,
                                         data.penalty.k)
    selection = select_weights(newton_fit(problem, penalty, dispersion=family == "gaussian"),
                               penalty, "reml", start=[1.0, 1.0])
    curvature = LaplaceCurvature(selection.fit.blocks, penalty, selection.weights)
    variance = selection.covariance_scale * curvature.inverse_blocks().value[:, 0, 0]
    error = np.abs(selection.fit.theta[:, 0] - theta)
    covered = error <= 1.959964 * np.sqrt(variance)
    corrected = variance + selection.weight_uncertainty(curvature)[:, 0, 0]
    covered_u = error <= 1.959964 * np.sqrt(corrected)
    without = np.zeros(k, dtype=bool)
    without[empty] = True
    return covered, covered_u, without


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--families", default="gaussian,poisson,logistic")
    parser.add_argument("--path", type=int, default=30, help="length of the path factor")
    parser.add_argument("--records", type=int, default=2, help="records per stratum")
    args = parser.parse_args()
    global FACTORS, RECORDS
    FACTORS = [path_graph(args.path), cycle_graph(8)]
    RECORDS = args.records
    print("| family | replicates | coverage (all strata) | strata without data | "
          "with the weights' uncertainty | seconds |")
    print("|---|---|---|---|---|---|")
    for family in args.families.split(","):
        rng = np.random.default_rng(7)
        clock = time.perf_counter()
        hits, empty_hits, hits_u = [], [], []
        for _ in range(args.reps):
            covered, covered_u, without = replicate(family, rng)
            hits.append(covered.mean())
            empty_hits.append(covered[without].mean())
            hits_u.append(covered_u.mean())
        hits_arr, hits_u_arr = np.array(hits), np.array(hits_u)
        spread = np.sqrt(args.reps)
        print(f"| {family} | {args.reps} | {hits_arr.mean():.3f} "
              f"(± {hits_arr.std(ddof=1) / spread:.3f}) | {np.mean(empty_hits):.3f} | "
              f"{hits_u_arr.mean():.3f} (± {hits_u_arr.std(ddof=1) / spread:.3f}) | "
              f"{time.perf_counter() - clock:.0f} |", flush=True)


if __name__ == "__main__":
    main()
