"""Smooth GLMs with features at any N: the newton backend against ADMM and glum (issue 23).

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/glm_newton.py
    python benchmarks/glm_newton.py --sizes 20000,200000 --admm-cap 60   # a quicker look
    python benchmarks/glm_newton.py --grid     # glum's range: K = 100, 400 × 20, 1,000 per stratum

Table 1 — stratified Poisson regression with features: a path(260) × cycle(7) product
(K = 1,820 strata; the issue's "path(52) × cycle(7) (K = 1,820)" has 364 strata, so the
path is 5 × 52 long to keep its K), intercept + 4 features, `0.1 * sum_squares`, every
graph weight 10; N records drawn uniformly over the strata, log rates smooth over the
graph. Table 2 — N = 10⁶ records at K = 10⁴ (path(100) × cycle(100)), 5 rows. Table 3
(``--grid``) — glum's range.

Columns: seconds to bind the data (``Model.bind``: shared by every stratlang backend)
and to fit (newton and glum alike: the best of seven runs for fits under 0.5 s, of three
under 2 s, their repeats interleaved so that a change of load falls on both); Newton /
ADMM iterations; the objective's relative difference from the
newton fit's (evaluated by stratlang's numpy objective at each solver's θ). ADMM runs
with its default tolerances and stops at ``--admm-cap`` seconds' worth of iterations
(estimated from a 5-iteration probe): a capped run is marked and not comparable in
objective. glum (optional: skipped when not installed) fits the same objective — a
one-hot stratum × feature design, ``P2`` = (γ(L ⊗ I) + λ D)/N, ``alpha`` 1, ``l1_ratio``
0, its objective being ours divided by N — with its default IRLS solver and tight
tolerances; it forms the dense (K·n)² Hessian, so it is skipped above K·n = 10,000.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
import warnings

import numpy as np
import pandas as pd

POISSON_SPEC = """model visits
response y ~ poisson_regression
features x1, x2, x3, x4, intercept
regularize 0.1 * sum_squares
stratify a ~ path weight 10 nodes 0..{last_a}
stratify b ~ cycle weight 10 nodes 0..{last_b}
"""


def poisson_frame(records: int, shape: tuple[int, int], seed: int = 0) -> pd.DataFrame:
    """Records uniformly over the strata; a smooth log rate per stratum and feature."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, shape[0], records)
    b = rng.integers(0, shape[1], records)
    x = rng.normal(size=(records, 4)) * 0.5
    u, v = a / shape[0], b / shape[1]
    slopes = np.column_stack([np.sin(2 * np.pi * u), np.cos(2 * np.pi * v),
                              0.5 * u - 0.25, 0.3 * np.sin(2 * np.pi * (u + v))])
    log_rate = 0.5 + 0.5 * np.cos(2 * np.pi * v) + 0.3 * u + np.sum(slopes * x, axis=1)
    frame = pd.DataFrame(x, columns=["x1", "x2", "x3", "x4"])
    frame["a"], frame["b"] = a, b
    frame["y"] = rng.poisson(np.exp(log_rate))
    return frame


def stratlang_fit(model, design, backend: str, options: dict | None = None):
    from stratlang.backends import choose

    weights = model.ir.weight_values(None)
    choice = choose(model.ir, backend=backend, options=options, design=design)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a capped ADMM run warns that it did not converge
        fit = choice.fit(weights)
    return time.perf_counter() - start, fit


def glum_fit(design, weights) -> tuple[float, np.ndarray, int] | None:
    """(seconds, θ (K, n, 1), IRLS iterations) by glum on the one-hot design."""
    if importlib.util.find_spec("glum") is None:
        return None
    import scipy.sparse as sp
    from glum import GeneralizedLinearRegressor

    from stratlang.backends.newton import ridge
    from stratlang.solvers.graphs import product_laplacian

    k, n, m = design.theta_shape
    records = design.n_records
    matrix = design.record_matrix().tocsc()
    penalty = (sp.kron(product_laplacian(design.strata.graphs(), design.strata.gammas(weights)),
                       sp.identity(n)) + sp.diags(ridge(design, weights).reshape(-1)))
    model = GeneralizedLinearRegressor(family="poisson", alpha=1.0, l1_ratio=0.0,
                                       P2=(penalty / records).tocsc(), fit_intercept=False,
                                       gradient_tol=1e-12, step_size_tol=1e-14,
                                       max_iter=200,
                                       # P2 is PSD by construction; glum 3.4's check of a
                                       # sparse P2 calls scipy.linalg.eigsh, which is not there
                                       check_input=False)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(matrix, design.y[:, 0])
    seconds = time.perf_counter() - start
    return seconds, model.coef_.reshape(k, n, m), int(model.n_iter_)


def _seconds(value: float) -> str:
    return f"{value:.3f}" if value < 1 else f"{value:.2f}"


def runs(seconds: float) -> int:
    """How many runs a fit is timed over (the fastest kept): 7 under 0.5 s, 3 under 2 s,
    else 1 — short fits on a shared machine are mostly noise otherwise."""
    return 7 if seconds < 0.5 else 3 if seconds < 2.0 else 1


def fastest(first, *more):
    """The run with the lowest seconds among those given (None runs skipped)."""
    return min((r for r in (first, *more) if r is not None), key=lambda r: r[0])


def row(label: str, records: int, k: int, bind: float, results: dict) -> str:
    cells = [label, f"{records:,}", f"{k:,}", f"{bind:.2f}"]
    for name in ("newton", "admm", "glum", "ratio"):
        got = results.get(name)
        cells.append("—" if got is None else got)
    return "| " + " | ".join(cells) + " |"


def run_case(label: str, records: int, shape: tuple[int, int], admm_cap: float,
             glum_limit: int) -> str:
    import stratlang
    from stratlang.backends.objective import stratified_objective

    frame = poisson_frame(records, shape)
    model = stratlang.load(POISSON_SPEC.format(last_a=shape[0] - 1, last_b=shape[1] - 1))
    start = time.perf_counter()
    design = model.bind(frame)
    bind = time.perf_counter() - start
    weights = model.ir.weight_values(None)
    k, n, _ = design.theta_shape
    results: dict[str, str] = {}

    def newton_run():
        return stratlang_fit(model, design, "newton")

    def glum_run():
        return glum_fit(design, weights)

    newton_first = newton_run()
    glum_first = glum_run() if k * n <= glum_limit else None
    newton_runs, glum_runs = [newton_first], [glum_first]
    # the repeats of newton and glum interleaved: a change of load falls on both
    for repeat in range(1, max(runs(newton_first[0]),
                               runs(glum_first[0]) if glum_first is not None else 1)):
        if repeat < runs(newton_first[0]):
            newton_runs.append(newton_run())
        if glum_first is not None and repeat < runs(glum_first[0]):
            glum_runs.append(glum_run())
    seconds, fit = fastest(*newton_runs)
    newton_seconds = seconds
    best = fit.objective.total
    results["newton"] = (f"{_seconds(seconds)} s, {fit.info['iterations']} steps "
                         f"({fit.info['cg_iterations']} CG)")
    if admm_cap > 0:
        probe, _ = stratlang_fit(model, design, "admm", {"max_iter": 5, "progress": False})
        cap = max(5, int(admm_cap / max(probe / 5, 1e-9)))
        seconds, fit = stratlang_fit(model, design, "admm", {"max_iter": cap,
                                                             "progress": False})
        gap = (fit.objective.total - best) / abs(best)
        capped = "" if fit.info["converged"] else f", capped at {cap}: not converged"
        results["admm"] = f"{_seconds(seconds)} s, {fit.info['iterations']} it{capped}, Δ {gap:.1e}"
    if k * n <= glum_limit:
        if glum_first is not None:
            seconds, theta, steps = fastest(*glum_runs)
            gap = (stratified_objective(design, theta, weights).total - best) / abs(best)
            results["glum"] = f"{_seconds(seconds)} s, {steps} it, Δ {gap:.1e}"
            results["ratio"] = f"{seconds / newton_seconds:.1f}×"
        else:
            results["glum"] = "not installed"
    else:
        gib = 8 * (k * n) ** 2 / 2**30
        results["glum"] = f"skipped: dense (K·n)² = {k * n:,}² Hessian ({gib:.2g} GiB)"
    return row(label, records, k, bind, results)


def preconditioner_rows(records: int, weight: float, skewed: bool,
                        shape: tuple[int, int] = (260, 7)) -> list[str]:
    """Each of newton's preconditioners on one case: Newton steps, CG steps, seconds
    ('direct': the Hessian's banded Cholesky factor, one CG step per Newton step)."""
    import stratlang
    from stratlang.solvers.banded import DIRECT_LIMIT

    frame = poisson_frame(records, shape)
    if skewed:  # stratum sizes ∝ 1/rank along the path: most records in a few strata
        rng = np.random.default_rng(1)
        ranks = np.arange(1, shape[0] + 1)
        frame["a"] = rng.choice(shape[0], records, p=(1 / ranks) / np.sum(1 / ranks))
    spec = POISSON_SPEC.format(last_a=shape[0] - 1, last_b=shape[1] - 1).replace(
        "weight 10", f"weight {weight:g}")
    model = stratlang.load(spec)
    design = model.bind(frame)
    out = []
    k, n, _ = design.theta_shape
    # 'direct' only where it applies (else it is 'auto'); 'auto' is 'direct' where cheap
    kinds = ("block", "kronecker", "direct", "auto") if k * n <= DIRECT_LIMIT else (
        "block", "kronecker", "auto")
    for kind in kinds:
        seconds, fit = stratlang_fit(model, design, "newton", {"preconditioner": kind})
        case = (f"K = {shape[0] * shape[1]:,}, {'skewed' if skewed else 'uniform'} strata, "
                f"graph weights {weight:g}")
        out.append(f"| {case} | {records:,} | {kind} | {fit.info['iterations']} | "
                   f"{fit.info['cg_iterations']} | {seconds:.2f} |")
    return out


HEADER = ("| case | N | K | bind s | newton | admm | glum | glum / newton |\n"
          "|---|---|---|---|---|---|---|---|")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,200000,2000000")
    parser.add_argument("--admm-cap", type=float, default=120.0,
                        help="seconds of ADMM iterations at most (0: no ADMM)")
    parser.add_argument("--admm-max-records", type=int, default=200_000,
                        help="no ADMM above this many records (its probe alone takes minutes)")
    parser.add_argument("--no-large", action="store_true", help="skip N = 10⁶ at K = 10⁴")
    parser.add_argument("--grid", action="store_true", help="also glum's range")
    parser.add_argument("--preconditioners", action="store_true",
                        help="only: newton's preconditioners compared")
    parser.add_argument("--glum-limit", type=int, default=10_000,
                        help="largest K·n glum is run at (its dense Hessian: minutes at 9,100)")
    args = parser.parse_args(argv)
    # imports are not part of any fit's time
    import stratlang.backends.admm
    import stratlang.solvers.admm
    import stratlang.solvers.newton  # noqa: F401
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "(unset)")
    print(f"OPENBLAS_NUM_THREADS={threads}, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', '(unset)')}, {os.cpu_count()} CPUs")
    if args.preconditioners:
        print("| case | N | preconditioner | Newton steps | CG steps | seconds |\n"
              "|---|---|---|---|---|---|")
        for weight, skewed in ((10, False), (10, True), (1000, False), (1000, True)):
            print("\n".join(preconditioner_rows(200_000, weight, skewed)), flush=True)
        for weight in (10, 1000):  # about one record per stratum: the graph dominates
            print("\n".join(preconditioner_rows(100_000, weight, False, (300, 300))),
                  flush=True)
        return 0
    print(HEADER)
    for records in (int(s) for s in args.sizes.split(",") if s):
        cap = args.admm_cap if records <= args.admm_max_records else 0.0
        print(run_case("poisson, path(260) × cycle(7), n = 5", records, (260, 7),
                       cap, args.glum_limit), flush=True)
    if not args.no_large:
        print(run_case("poisson, path(100) × cycle(100), n = 5", 1_000_000, (100, 100),
                       0.0, args.glum_limit), flush=True)
    if args.grid:
        for side, per in ((10, 20), (10, 1000), (20, 20), (20, 1000)):
            k = side * side
            print(run_case(f"path({side}) × cycle({side}), {per}/stratum", k * per,
                           (side, side), 0.0, args.glum_limit), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
