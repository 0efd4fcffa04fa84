"""Logistic REML against R's mgcv on the same simulations (issue 22): is the coverage
shortfall of the logistic intervals with REML weights stratlang's or the method's?

    OPENBLAS_NUM_THREADS=1 python benchmarks/reml_logistic_mgcv.py --reps 40
    python benchmarks/reml_logistic_mgcv.py --reps 20 --path 100 --records 4

The replicates are reml_coverage.py's logistic ones (the same seed, 7, and draws): θ from
the intrinsic GMRF prior on path(P) × cycle(8), precision 10 L_path⊗I + 3 I⊗L_cycle,
``--records`` binary records per stratum, a tenth of the strata without records.
stratlang's engine selects the two weights by REML; mgcv fits the same model,
``gam(y ~ X - 1, family = binomial, paraPen = list(X = list(L_path⊗I, I⊗L_cycle)),
method = "REML")`` with X the records' stratum indicators (so its coefficients are θ and
its λ our weights: both penalize the negative log-likelihood, half the deviance, by
½ Σ λ_a θᵀS_aθ; paraPen does not rescale the penalties).

Per replicate: both λ; each criterion at both points (our V at mgcv's λ, mgcv's REML
score at ours, by ``paraPen = list(X = list(..., sp = ours))``): the two criteria differ by a constant when
they are the same function, and the lower point is the better optimum; whether a weight
ran to a bound (ours: flagged as undetermined or at the search bound; mgcv: λ above
``RUNAWAY`` times the true weight); and the coverage of 95 % intervals of θ: ours
θ̂ ± 1.96 sqrt((H⁻¹)_kk), with the weights' uncertainty added; mgcv's from ``Vp``
(``predict(se.fit = TRUE)``; X rows are the identity here), from ``Vc``
(``unconditional = TRUE``: Vp + the first-order term J Cov(ρ) Jᵀ, J = ∂β̂/∂ρ, + Vb.corr's
second-order term from the change of H's Cholesky factor with ρ, its Cov(ρ) regularized
by 0.1 on the REML Hessian's eigenvalues) and from Vp + the first-order term alone (the
correction stratlang makes, ``Selection.weight_uncertainty``).
``--exact`` adds the exact REML criterion (importance sampling from the Laplace
approximation, dense) at the true and the chosen weights: does the Laplace approximation
itself move the optimum?

Prints "skipped: Rscript not found" when R (with mgcv) is absent.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reml_coverage  # the same simulations

from stratlang.solvers.curvature import LaplaceCurvature
from stratlang.solvers.graphs import cycle_graph, path_graph
from stratlang.solvers.selection import Criterion, newton_fit, select_weights

Z95 = 1.959964
RUNAWAY = 1e4  # mgcv's λ this many times the true weight: a weight run to ∞

R_SCRIPT = r"""
suppressMessages(library(mgcv))
args <- commandArgs(trailingOnly = TRUE)
folder <- args[1]
reps <- as.integer(args[2])
S1 <- unname(as.matrix(read.csv(file.path(folder, "s1.csv"), header = FALSE)))
S2 <- unname(as.matrix(read.csv(file.path(folder, "s2.csv"), header = FALSE)))
K <- nrow(S1)
fmt <- function(x) paste(sprintf("%.12g", x), collapse = ",")
for (r in seq_len(reps)) {
  d <- read.csv(file.path(folder, sprintf("d%d.csv", r)))
  ours <- scan(file.path(folder, sprintf("ours%d.txt", r)), quiet = TRUE)
  X <- matrix(0, nrow(d), K)
  X[cbind(seq_len(nrow(d)), d$stratum + 1)] <- 1
  y <- d$y
  t0 <- proc.time()[["elapsed"]]
  b <- gam(y ~ X - 1, family = binomial, paraPen = list(X = list(S1, S2)),
           method = "REML")
  seconds <- proc.time()[["elapsed"]] - t0
  # gam's own sp argument fails with paraPen alone: fixed λ go in the paraPen list
  at <- gam(y ~ X - 1, family = binomial, paraPen = list(X = list(S1, S2, sp = ours)),
            method = "REML")
  # Vc's first-order term alone (as gam.fit3.post.proc forms it: the REML Hessian's
  # pseudo-inverse), without Vb.corr's second-order one: stratlang's correction
  ev <- eigen(b$outer.info$hess, symmetric = TRUE)
  inv <- ifelse(ev$values > 0, 1 / sqrt(pmax(ev$values, 1e-300)), 0)
  first <- b$Vp + crossprod((inv * t(ev$vectors)) %*% t(b$db.drho))
  cat(sprintf('{"sp": [%s], "score": %.12g, "score_at_ours": %.12g, "conv": "%s", "seconds": %.3f, "theta": [%s], "se": [%s], "se_u": [%s], "se_u1": [%s]}\n',
              fmt(b$sp), b$gcv.ubre, at$gcv.ubre, b$outer.info$conv, seconds,
              fmt(coef(b)), fmt(sqrt(diag(b$Vp))), fmt(sqrt(diag(b$Vc))),
              fmt(sqrt(diag(first)))))
}
"""


def ours(data) -> dict:
    """REML weights by stratlang's engine, the coverage of its intervals, and its
    criterion as a function (for mgcv's point)."""
    clock = time.perf_counter()
    fit = newton_fit(data.problem, data.penalty)
    selection = select_weights(fit, data.penalty, "reml", start=[1.0, 1.0])
    seconds = time.perf_counter() - clock
    curvature = LaplaceCurvature(selection.fit.blocks, data.penalty, selection.weights)
    variance = curvature.inverse_blocks().value[:, 0, 0]
    error = np.abs(selection.fit.theta[:, 0] - data.theta)
    corrected = variance + selection.weight_uncertainty(curvature)[:, 0, 0]
    return {"weights": selection.weights, "value": selection.value,
            "unbounded": selection.unbounded, "seconds": seconds,
            "theta": selection.fit.theta[:, 0],
            "covered": float(np.mean(error <= Z95 * np.sqrt(variance))),
            "covered_u": float(np.mean(error <= Z95 * np.sqrt(corrected)))}


def criterion_at(data, weights: np.ndarray) -> float:
    """Our REML criterion V at given weights (a fresh fit)."""
    target = Criterion(newton_fit(data.problem, data.penalty), data.penalty, "reml",
                       start=np.ones(2), free=np.ones(2, dtype=bool))
    return target(np.log(weights), gradient=False).value


def exact_reml(data, weights: np.ndarray, draws: int = 4000, seed: int = 1
               ) -> tuple[float, float, float]:
    """(Laplace V, exact V, the latter's standard error) at ``weights``, dense: the exact
    REML criterion −log ∫ exp(−F(θ)) dθ − ½ log|P|₊ (F = ℓ + ½θᵀPθ, the same constants
    as the Laplace one) by importance sampling from the Laplace approximation N(θ̂, H⁻¹),
    with antithetic pairs: exact = Laplace − log E_q[exp(−F(θ) + F(θ̂) + ½(θ−θ̂)ᵀH(θ−θ̂))].
    Does the Laplace approximation itself move REML's optimum?"""
    penalty, strata, y = data.penalty, data.strata, data.y
    k = penalty.k
    matrix = penalty.matrix(np.asarray(weights, dtype=float)).toarray()
    eigenvalues = np.linalg.eigvalsh(matrix)
    pdet = float(np.sum(np.log(eigenvalues[eigenvalues > 1e-9 * eigenvalues.max()])))

    def objective(theta: np.ndarray) -> np.ndarray:
        return (np.logaddexp(0.0, -y * theta[..., strata]).sum(-1)
                + 0.5 * np.einsum("...i,ij,...j->...", theta, matrix, theta))

    def curvature(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = 0.5 * (1.0 + np.tanh(-0.5 * y * theta[strata]))  # σ(−yη)
        gradient = np.bincount(strata, -y * p, k) + matrix @ theta
        return gradient, np.diag(np.bincount(strata, p * (1 - p), k)) + matrix

    theta = np.zeros(k)
    for _ in range(100):
        gradient, hessian = curvature(theta)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.max(np.abs(step)) < 1e-12:
            break
    hessian = curvature(theta)[1]
    factor = np.linalg.cholesky(hessian)
    at_mode = float(objective(theta))
    laplace = at_mode + float(np.sum(np.log(np.diag(factor)))) - 0.5 * pdet
    normal = np.random.default_rng(seed).normal(size=(draws, k))
    offsets = np.linalg.solve(factor.T, normal.T).T  # N(0, H⁻¹)
    log_ratio = np.concatenate([at_mode + 0.5 * np.sum(normal**2, axis=1)
                                - objective(theta + sign * offsets) for sign in (1.0, -1.0)])
    ratio = np.exp(log_ratio - log_ratio.max())
    correction = float(np.log(ratio.mean()) + log_ratio.max())
    return laplace, laplace - correction, float(ratio.std() / ratio.mean() / np.sqrt(len(ratio)))


def mgcv(replicates: list, chosen: list[np.ndarray]) -> list[dict]:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        penalty = replicates[0].penalty
        for name, weights in (("s1", [1.0, 0.0]), ("s2", [0.0, 1.0])):
            np.savetxt(base / f"{name}.csv", penalty.matrix(np.array(weights)).toarray(),
                       delimiter=",", fmt="%.17g")
        for r, (data, weights) in enumerate(zip(replicates, chosen, strict=True), start=1):
            with (base / f"d{r}.csv").open("w") as f:
                f.write("stratum,y\n")
                for z, v in zip(data.strata, data.y, strict=True):
                    f.write(f"{int(z)},{int(v > 0)}\n")
            np.savetxt(base / f"ours{r}.txt", weights, fmt="%.17g")
        script = base / "fit.R"
        script.write_text(R_SCRIPT)
        out = subprocess.run(["Rscript", str(script), str(base), str(len(replicates))],
                             capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"Rscript failed:\n{out.stderr[-2000:]}")
    results = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    for result in results:
        for key in ("sp", "theta", "se", "se_u", "se_u1"):
            result[key] = np.array(result[key])
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--path", type=int, default=30, help="length of the path factor")
    parser.add_argument("--records", type=int, default=2, help="records per stratum")
    parser.add_argument("--exact", action="store_true",
                        help="also the exact REML criterion (importance sampling, dense) at "
                             "the true and the chosen weights")
    parser.add_argument("--verbose", action="store_true", help="one line per replicate")
    args = parser.parse_args()
    if shutil.which("Rscript") is None:
        print("skipped: Rscript not found")
        return
    reml_coverage.FACTORS = [path_graph(args.path), cycle_graph(8)]
    reml_coverage.RECORDS = args.records
    true = np.array(reml_coverage.TRUE_WEIGHTS["logistic"])
    rng = np.random.default_rng(7)
    replicates = [reml_coverage.simulate("logistic", rng) for _ in range(args.reps)]
    mine = [ours(data) for data in replicates]
    theirs = mgcv(replicates, [m["weights"] for m in mine])
    rows = []
    for data, m, t in zip(replicates, mine, theirs, strict=True):
        error = np.abs(t["theta"] - data.theta)
        v_at_mgcv = criterion_at(data, t["sp"])
        rows.append({
            "ours_w": m["weights"], "mgcv_w": t["sp"],
            # same criterion: V − score the same at both points
            "constant_gap": abs((m["value"] - t["score_at_ours"]) - (v_at_mgcv - t["score"])),
            # ours better (≤ 0) or worse (> 0) than mgcv's point, by our criterion
            "ours_minus_mgcv": m["value"] - v_at_mgcv,
            "ours_bound": any(u is not None for u in m["unbounded"]),
            "mgcv_bound": bool(np.any(t["sp"] >= RUNAWAY * true)),
            "ours_cov": m["covered"], "ours_cov_u": m["covered_u"],
            "mgcv_cov": float(np.mean(error <= Z95 * t["se"])),
            "mgcv_cov_u": float(np.mean(error <= Z95 * t["se_u"])),
            "mgcv_cov_u1": float(np.mean(error <= Z95 * t["se_u1"])),
            "theta_diff": float(np.max(np.abs(m["theta"] - t["theta"]))),
            "ours_s": m["seconds"], "mgcv_s": t["seconds"], "conv": t["conv"],
        })
        if args.exact:
            laplace_true, exact_true, _ = exact_reml(data, true)
            laplace_ours, exact_ours, error_ours = exact_reml(data, m["weights"])
            rows[-1].update({
                # how much the Laplace error moves the criterion between the two points
                "laplace_shift": abs((exact_true - laplace_true) - (exact_ours - laplace_ours)),
                "laplace_error": max(abs(exact_true - laplace_true),
                                     abs(exact_ours - laplace_ours)),
                # the exact criterion, too, prefers REML's choice to the true weights
                "exact_prefers_choice": exact_ours < exact_true,
                "exact_gain": exact_true - exact_ours,
                "exact_se": error_ours})
        if args.verbose:
            r = rows[-1]
            print(f"ours w {np.array2string(r['ours_w'], precision=4)} "
                  f"{m['unbounded']} | mgcv {np.array2string(r['mgcv_w'], precision=4)} "
                  f"{t['conv']} | V ours−mgcv {r['ours_minus_mgcv']:+.2e} | gap "
                  f"{r['constant_gap']:.1e} | cov {r['ours_cov']:.3f} / {r['mgcv_cov']:.3f}, "
                  f"unconditional {r['ours_cov_u']:.3f} / {r['mgcv_cov_u']:.3f} (first order "
                  f"{r['mgcv_cov_u1']:.3f})"
                  + (f" | exact V(true) − V(chosen) {r['exact_gain']:+.3f}, Laplace error "
                     f"{r['laplace_error']:.3f}, its change {r['laplace_shift']:.3f}" if args.exact else ""), flush=True)
    report(rows, args)


def report(rows: list[dict], args) -> None:
    n = len(rows)
    spread = np.sqrt(n)

    def share(key: str) -> str:
        values = np.array([r[key] for r in rows])
        return f"{values.mean():.3f} (± {values.std(ddof=1) / spread:.3f})"

    # λ agreement on the replicates where neither ran to a bound (where one did, both
    # are "large" and their ratio says nothing)
    finite = [r for r in rows if not (r["ours_bound"] or r["mgcv_bound"])]
    rel = [float(np.max(np.abs(np.log(r["ours_w"] / r["mgcv_w"])))) for r in finite]
    both = sum(r["ours_bound"] and r["mgcv_bound"] for r in rows)
    print(f"K = {8 * args.path}, {args.records} records per stratum, true weights "
          f"{reml_coverage.TRUE_WEIGHTS['logistic']}")
    print("| replicates | ours: coverage | ours + weights' uncertainty | mgcv: coverage (Vp) | "
          "mgcv unconditional (Vc) | mgcv Vc's first-order term only | max abs log(λ ours / λ mgcv), both finite | "
          "V(ours) − V(mgcv's λ), median / max | same criterion (max gap) | "
          "ran to a bound: ours / mgcv / both | max abs θ̂ diff | ours s | mgcv s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    diffs = np.array([r["ours_minus_mgcv"] for r in rows])
    print(f"| {n} | {share('ours_cov')} | {share('ours_cov_u')} | {share('mgcv_cov')} | "
          f"{share('mgcv_cov_u')} | {share('mgcv_cov_u1')} | {max(rel, default=float('nan')):.1e} ({len(finite)}) | "
          f"{np.median(diffs):+.1e} / {diffs.max():+.1e} | "
          f"{max(r['constant_gap'] for r in rows):.1e} | "
          f"{sum(r['ours_bound'] for r in rows)} / {sum(r['mgcv_bound'] for r in rows)} / "
          f"{both} | {max(r['theta_diff'] for r in rows):.1e} | "
          f"{sum(r['ours_s'] for r in rows):.0f} | {sum(r['mgcv_s'] for r in rows):.0f} |")
    if args.exact:
        prefers = sum(r["exact_prefers_choice"] for r in rows)
        print(f"\nExact REML (importance sampling): max |exact − Laplace| at the true and the "
              f"chosen weights {max(r['laplace_error'] for r in rows):.3f}, max change of "
              f"exact − Laplace between them {max(r['laplace_shift'] for r in rows):.3f}, "
              f"max exact V(true) − V(chosen) {max(r['exact_gain'] for r in rows):.3f} "
              f"(IS standard error "
              f"≤ {max(r['exact_se'] for r in rows):.1e}); the exact criterion prefers REML's "
              f"chosen weights to the true ones in {prefers} of {n} replicates (of the "
              f"{sum(r['ours_bound'] for r in rows)} run to a bound: "
              f"{sum(r['exact_prefers_choice'] and r['ours_bound'] for r in rows)})")


if __name__ == "__main__":
    main()
