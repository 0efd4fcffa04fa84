"""REML weights and standard errors against R's mgcv (issue 22): the same Markov random
field penalty, Gaussian and Poisson, at K areas.

    OPENBLAS_NUM_THREADS=1 python benchmarks/reml_mgcv.py            # K = 100, 400
    python benchmarks/reml_mgcv.py --sizes 100                         # a quicker look

Areas: a random planar-like graph (a √K × √K lattice with a few lattice edges dropped and
some diagonals added), given to mgcv as ``s(region, bs="mrf", xt=list(penalty=P))`` with
P its Laplacian, ``method="REML"``; 3 records per area, smooth truth, Gaussian noise (sd
0.5) or Poisson counts with an exposure offset. stratlang's engine (solvers.selection
with the Newton fit) selects the Laplacian weight w on the same data. mgcv's λ multiplies
βᵀSβ beside its deviance: λ = w/2 for squared (our loss is the residual sum of squares,
the deviance itself), λ = w for Poisson (our loss is the negative log-likelihood, half the
deviance). Standard errors: each area's fitted linear predictor, sqrt(τ (H⁻¹)_kk) (τ = 2φ̂
for squared, 1 for Poisson) against mgcv's ``predict(se.fit=TRUE)``; and the standard
error of log λ against ``sqrt(sp.vcov(b))`` (mgcv's, from its REML Hessian). mgcv
rescales the penalty matrix it is given (``S.scale``): its λ for P is ``sp / S.scale``.

Prints "skipped: Rscript not found" (and only stratlang's side) when R is absent.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from stratlang.solvers.graphs import edge_list_graph
from stratlang.solvers.hessian import KroneckerSum, RecordStatistics
from stratlang.solvers.newton import LossTerm, SmoothProblem
from stratlang.solvers.penalty import LaplacianPart, QuadraticPenalty
from stratlang.solvers.pointwise import PoissonRegression, Squared
from stratlang.solvers.selection import newton_fit, select_weights

R_SCRIPT = r"""
suppressMessages(library(mgcv))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
P <- as.matrix(read.csv(args[2], header = FALSE))
K <- nrow(P)
levels <- as.character(0:(K - 1))
rownames(P) <- colnames(P) <- levels
d$region <- factor(as.character(d$region), levels = levels)
family <- if (args[3] == "gaussian") gaussian() else poisson()
t0 <- proc.time()[["elapsed"]]
if (args[3] == "gaussian") {
  b <- gam(y ~ s(region, bs = "mrf", xt = list(penalty = P), k = K), data = d,
           method = "REML", family = family)
} else {
  b <- gam(y ~ s(region, bs = "mrf", xt = list(penalty = P), k = K) + offset(log(exposure)),
           data = d, method = "REML", family = family)
}
fit_time <- proc.time()[["elapsed"]] - t0
nd <- data.frame(region = factor(levels, levels = levels), exposure = 1)
p <- predict(b, newdata = nd, se.fit = TRUE)
v <- sp.vcov(b)
# mgcv rescales a penalty by S.scale before use: λ for the given P is sp / S.scale
cat(sprintf('{"lambda": %.12g, "scale": %.12g, "seconds": %.4f, "log_sp_se": %.12g, "se": [%s], "fit": [%s]}\n',
            b$sp[1] / b$smooth[[1]]$S.scale, b$sig2, fit_time, sqrt(v[1, 1]),
            paste(sprintf("%.12g", p$se.fit), collapse = ","),
            paste(sprintf("%.12g", p$fit), collapse = ",")))
"""


def area_graph(k: int, rng: np.random.Generator):
    side = round(float(np.sqrt(k)))
    assert side * side == k, "K must be a square"
    index = np.arange(k).reshape(side, side)
    edges = [np.column_stack([index[:-1].ravel(), index[1:].ravel()]),
             np.column_stack([index[:, :-1].ravel(), index[:, 1:].ravel()])]
    lattice = np.concatenate(edges)
    keep = rng.uniform(size=len(lattice)) > 0.1  # drop a few borders
    diagonal = np.column_stack([index[:-1, :-1].ravel(), index[1:, 1:].ravel()])
    extra = diagonal[rng.uniform(size=len(diagonal)) < 0.2]
    edges = np.concatenate([lattice[keep], extra])
    graph = edge_list_graph(k, edges)
    from stratlang.solvers.graphs import n_components
    if n_components(graph) != 1:  # keep one component, as mgcv's mrf with one constant
        graph = edge_list_graph(k, np.concatenate([lattice, extra]))
    return graph, index


def simulate(k: int, family: str, seed: int):
    rng = np.random.default_rng(seed)
    graph, index = area_graph(k, rng)
    side = index.shape[0]
    rows, cols = np.divmod(np.arange(k), side)
    truth = np.sin(rows / side * 3.0) + np.cos(cols / side * 2.0)
    region = np.repeat(np.arange(k), 3)
    exposure = rng.uniform(0.5, 2.0, len(region))
    if family == "gaussian":
        y = truth[region] + 0.5 * rng.normal(size=len(region))
    else:
        y = rng.poisson(np.exp(truth[region]) * exposure).astype(float)
    return graph, region, y, exposure


def ours(graph, region, y, exposure, family):
    k = graph.n
    stats = RecordStatistics(np.ones((len(region), 1)), region, k, 1)
    gaussian = family == "gaussian"
    unit = Squared() if gaussian else PoissonRegression()
    offset = None if gaussian else np.log(exposure)
    problem = SmoothProblem(stats, y[:, None], [LossTerm(unit)], np.zeros((k, 1)),
                            KroneckerSum([graph], [1.0]), offset)
    penalty = QuadraticPenalty([graph], [LaplacianPart(0)], n=1)
    clock = time.perf_counter()
    selection = select_weights(newton_fit(problem, penalty, dispersion=gaussian), penalty,
                               "reml", start=[1.0])
    from stratlang.solvers.curvature import LaplaceCurvature

    curvature = LaplaceCurvature(selection.fit.blocks, penalty, selection.weights)
    tau = 2.0 * selection.scale if gaussian else 1.0
    se = np.sqrt(tau * curvature.inverse_blocks().value[:, 0, 0])
    seconds = time.perf_counter() - clock
    lam = selection.weights[0] / 2 if gaussian else selection.weights[0]
    return {"lambda": lam, "scale": selection.scale, "seconds": seconds,
            "log_sp_se": float(selection.log_se[0]), "se": se,
            "fit": selection.fit.theta[:, 0], "iterations": selection.iterations,
            "method": selection.method}


def mgcv(graph, region, y, exposure, family):
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        data = base / "d.csv"
        with data.open("w") as f:
            f.write("region,y,exposure\n")
            for r, v, e in zip(region, y, exposure, strict=True):
                f.write(f"{int(r)},{float(v)!r},{float(e)!r}\n")
        penalty = base / "p.csv"
        np.savetxt(penalty, graph.laplacian().toarray(), delimiter=",", fmt="%.17g")
        script = base / "fit.R"
        script.write_text(R_SCRIPT)
        out = subprocess.run(["Rscript", str(script), str(data), str(penalty), family],
                             capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"Rscript failed:\n{out.stderr[-2000:]}")
    line = [x for x in out.stdout.splitlines() if x.startswith("{")][-1]
    result = json.loads(line)
    result["se"] = np.array(result["se"])
    result["fit"] = np.array(result["fit"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,400")
    args = parser.parse_args()
    if shutil.which("Rscript") is None:
        print("skipped: Rscript not found (stratlang's side only)")
    print("| family | K | mgcv λ | ours λ | λ rel. diff | SE(log λ) mgcv | ours | "
          "area SE max rel. diff | fit max abs diff | mgcv s | ours s | speed-up | method |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for family in ("gaussian", "poisson"):
        for k in (int(s) for s in args.sizes.split(",")):
            graph, region, y, exposure = simulate(k, family, seed=k)
            mine = ours(graph, region, y, exposure, family)
            theirs = mgcv(graph, region, y, exposure, family)
            if theirs is None:
                print(f"| {family} | {k} | – | {mine['lambda']:.6g} | – | – | "
                      f"{mine['log_sp_se']:.4g} | – | – | – | {mine['seconds']:.2f} | – | "
                      f"{mine['method']} |")
                continue
            rel = abs(mine["lambda"] - theirs["lambda"]) / theirs["lambda"]
            se_rel = float(np.max(np.abs(mine["se"] - theirs["se"]) / theirs["se"]))
            fit_diff = float(np.max(np.abs(mine["fit"] - theirs["fit"])))
            print(f"| {family} | {k} | {theirs['lambda']:.6g} | {mine['lambda']:.6g} | "
                  f"{rel:.1e} | {theirs['log_sp_se']:.4g} | {mine['log_sp_se']:.4g} | "
                  f"{se_rel:.1e} | {fit_diff:.1e} | {theirs['seconds']:.2f} | "
                  f"{mine['seconds']:.2f} | {theirs['seconds'] / mine['seconds']:.0f}× | "
                  f"{mine['method']} |", flush=True)


if __name__ == "__main__":
    main()
