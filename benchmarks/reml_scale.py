"""REML weights and standard errors at scale, beside a 5-fold grid search (issue 22).

    OPENBLAS_NUM_THREADS=1 python benchmarks/reml_scale.py                 # every row
    OPENBLAS_NUM_THREADS=1 python benchmarks/reml_scale.py --rows areas,states

Rows (the solver level: solvers.selection with the Newton fit; the API's `auto` wiring
is issue 22's other half):

* areas — K = 400 areas (a 20 × 20 lattice graph), Gaussian, 3 records per area, one
  Laplacian weight;
* states — 49 states (7 × 7 lattice) × 20 years (path), Poisson counts with an exposure
  offset, two weights (space, time);
* bigdm — 7,900 areas (a 100 × 79 grid) × 25 years (path): K = 197,500, Gaussian, one
  record per area-year, two weights, with standard errors (Monte Carlo blocks of H⁻¹);
* million — 200 × 200 grid × 25 years: K = 10⁶, Gaussian, three weights (space, time, a
  ridge), against one fit at fixed weights. One record per stratum: every stratum's
  curvature block is the same, so H is a Kronecker sum and everything is exact from the
  factors' eigenvalues (method "exact-spectral");
* uneven — the same K = 10⁶ and weights, with a second record in a random fifth of the
  strata: the blocks differ, so log|H| and the traces are stochastic (SLQ, control-variate
  Hutchinson), the outer Newton's Hessian by differences.

Columns: the selection's time (inner fits included) and the standard errors' time; the
inner fits it took; how log|H| was computed; the weights chosen with their SE on the log
scale; one fit's time at fixed weights; then a 5-fold grid over the same weights
(``--grid`` values per weight, log-spaced around the REML choice, a decade apart): its time, and
the held-out mean score (squared error, or Poisson deviance per record) at the grid's
best point and at the REML weights (folds of records; the same folds for both).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

import numpy as np

from stratlang.solvers.graphs import grid_graph, path_graph
from stratlang.solvers.hessian import KroneckerSum, RecordStatistics
from stratlang.solvers.newton import LossTerm, SmoothProblem, newton
from stratlang.solvers.penalty import LaplacianPart, QuadraticPenalty, RidgePart
from stratlang.solvers.pointwise import PoissonRegression, Squared
from stratlang.solvers.selection import newton_fit, select_weights


def case(name: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    if name == "areas":
        factors = [grid_graph((20, 20))]
        shape, per, family = (20, 20), 3, "gaussian"
    elif name == "states":
        factors = [grid_graph((7, 7)), path_graph(20)]
        shape, per, family = (7, 7, 20), 4, "poisson"
    elif name == "bigdm":
        factors = [grid_graph((100, 79)), path_graph(25)]
        shape, per, family = (100, 79, 25), 1, "gaussian"
    else:
        factors = [grid_graph((200, 200)), path_graph(25)]
        shape, per, family = (200, 200, 25), 1, "gaussian"
    k = int(np.prod(shape))
    z = np.repeat(np.arange(k), per)
    if name == "uneven":
        z = np.sort(np.concatenate([z, rng.choice(k, k // 5, replace=False)]))
    coords = np.unravel_index(np.arange(k), shape)
    truth = np.sin(coords[0] / 7.0) + np.cos(coords[1] / 5.0)
    if len(shape) == 3:
        truth = truth + 0.3 * np.sin(coords[2] / 4.0)
    exposure = rng.uniform(0.5, 2.0, len(z))
    if family == "gaussian":
        y = truth[z] + 0.5 * rng.normal(size=len(z))
        offset = None
    else:
        y = rng.poisson(np.exp(truth[z]) * exposure).astype(float)
        offset = np.log(exposure)
    parts = [LaplacianPart(f) for f in range(len(factors))]
    if name in ("million", "uneven"):
        parts.append(RidgePart(np.ones((k, 1))))
    return factors, z, y, offset, family, parts, k


def problem_for(factors, z, y, offset, family, k, keep=None):
    keep = np.ones(len(z), dtype=bool) if keep is None else keep
    stats = RecordStatistics(np.ones((int(keep.sum()), 1)), z[keep], k, 1)
    unit = Squared() if family == "gaussian" else PoissonRegression()
    return SmoothProblem(stats, y[keep, None], [LossTerm(unit)], np.zeros((k, 1)),
                         KroneckerSum(factors, [1.0] * len(factors)),
                         None if offset is None else offset[keep])


def held_out(theta, z, y, offset, family, test):
    eta = theta[z[test], 0] + (0.0 if offset is None else offset[test])
    if family == "gaussian":
        return float(np.mean((y[test] - eta) ** 2))
    mu = np.exp(eta)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y[test] > 0, y[test] * np.log(y[test] / mu), 0.0)
    return float(np.mean(2 * (term - (y[test] - mu))))


def cv_score(weights, factors, z, y, offset, family, k, parts, folds):
    scores = []
    for test in folds:
        problem = problem_for(factors, z, y, offset, family, k, ~test)
        penalty = QuadraticPenalty(factors, parts, n=1)
        fit = newton_fit(problem, penalty)
        inner = fit(np.asarray(weights, dtype=float), None)
        scores.append(held_out(inner.theta, z, y, offset, family, test))
    return float(np.mean(scores))


def run(name: str, grid_values: int, probes: int = 0) -> None:
    factors, z, y, offset, family, parts, k = case(name)
    penalty = QuadraticPenalty(factors, parts, n=1)
    gaussian = family == "gaussian"
    problem = problem_for(factors, z, y, offset, family, k)
    start = [1.0] * len(parts)
    inner_fit = newton_fit(problem, penalty, dispersion=gaussian)
    clock = time.perf_counter()

    fits = []  # the callback's fits (the others, θ̂ by a solve: solvers.quadratic_solve)

    def logged(weights, warm):  # progress on stderr: each fit by the callback
        fits.append(1)
        out = inner_fit(weights, warm)
        text = " ".join(f"{w:.4g}" for w in weights)
        print(f"  [{name}] fit at {text} done at {time.perf_counter() - clock:.1f} s",
              file=sys.stderr, flush=True)
        return out

    options = {"probes": probes} if probes else None
    selection = select_weights(logged, penalty, "reml", start=start, options=options)
    select_s = time.perf_counter() - clock
    from stratlang.solvers.curvature import LaplaceCurvature

    clock = time.perf_counter()
    curvature = LaplaceCurvature(selection.fit.blocks, penalty, selection.weights,
                                 **({"probes": probes} if probes else {}))
    blocks = curvature.inverse_blocks()
    se = np.sqrt(selection.covariance_scale * blocks.value[:, 0, 0])
    se_s = time.perf_counter() - clock
    se_rel = float(np.median(np.asarray(blocks.stderr)[:, 0, 0] / blocks.value[:, 0, 0]))
    # one fit at fixed weights (from θ = 0, as a user's single fit)
    fixed = problem_for(factors, z, y, offset, family, k)
    fit_fixed = newton_fit(fixed, penalty)
    clock = time.perf_counter()
    fit_fixed(selection.weights, None)
    one_fit_s = time.perf_counter() - clock
    weights = " ".join(f"{w:.4g}±{s:.2g}" for w, s in zip(selection.weights, selection.log_se,
                                                         strict=True))
    evaluations = str(selection.iterations)
    if selection.reference_evaluations:  # the criterion's own (stochastic) + the reference's
        solves = selection.iterations - len(fits)
        evaluations = (f"{selection.evaluations} + {selection.reference_evaluations} "
                       f"reference ({len(fits)} fits"
                       + (f", {solves} solves)" if solves else ")"))
    line = (f"| {name} | {k:,} | {select_s:.1f} | {se_s:.1f} | {evaluations} | "
            f"{selection.method} | {blocks.method} (median rel. SE {se_rel:.1e}) | {weights} | "
            f"{one_fit_s:.3g} | {select_s / one_fit_s:.1f}×")
    if grid_values:
        rng = np.random.default_rng(1)
        order = rng.permutation(len(z))
        folds = []
        for f in range(5):
            test = np.zeros(len(z), dtype=bool)
            test[order[f::5]] = True
            folds.append(test)
        centre = np.log10(selection.weights)
        offsets = np.arange(grid_values) - (grid_values - 1) / 2
        axes = [10 ** (c + offsets) for c in centre]
        clock = time.perf_counter()
        results = [(cv_score(w, factors, z, y, offset, family, k, parts, folds), w)
                   for w in itertools.product(*axes)]
        grid_s = time.perf_counter() - clock
        best_score, best = min(results, key=lambda pair: pair[0])
        reml_score = cv_score(selection.weights, factors, z, y, offset, family, k, parts, folds)
        best_text = " ".join(f"{w:.3g}" for w in best)
        line += (f" | {grid_s:.1f} ({len(results) * 5} fits) | {best_score:.5f} at {best_text} | "
                 f"{reml_score:.5f} |")
    else:
        line += " | – | – | – |"
    print(line, flush=True)
    _ = se, newton


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="areas,states,bigdm,million,uneven")
    parser.add_argument("--grid", type=int, default=3, help="values per weight (0: no grid)")
    parser.add_argument("--no-grid", default="uneven",
                        help="rows without the grid (comma-separated)")
    parser.add_argument("--probes", type=int, default=0,
                        help="stochastic estimators' probes (0: the engine's choice, a pilot "
                             "of 8 kept when precise, else 32)")
    args = parser.parse_args()
    with open("/proc/loadavg") as handle:  # the machine is shared: the load beside the times
        print(f"load average at start: {handle.read().split()[:3]}", flush=True)
    print("| case | K | select s | SEs s | evaluations | log|H| | blocks of H⁻¹ | weights (±SE log) | "
          "one fit s | select / one fit | 5-fold grid s | grid best held-out | REML held-out |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    skip = set(args.no_grid.split(","))
    for name in args.rows.split(","):
        run(name, 0 if name in skip else args.grid, args.probes)


if __name__ == "__main__":
    main()
