"""Personalized regression on the paper's simulation (Lengerich et al. 2019, §4.1) and
at scale, against the paper's baselines in the same run.

    python benchmarks/personalized.py [--seeds 5] [--scale]

Simulation: X_j ~ U(−1, 1) (j = 1, 2), U ~ U(0, 1), θ_i = [U_i, 1{U_i > 0.5} + 0.1 sin U_i],
Y = Xθ + w, w ~ N(0, 0.1); n = 2000 train, 500 test. Reported, as the mean over seeds:
recovery ‖Ω̂ − Ω‖_F on the training set, test MSE, seconds. Baselines: the oracle (true
θ), the population lasso, a varying-coefficient model (θ linear in U, least squares on
x ⊗ [1, U]) and a mixture of regressions (EM, 2 components, prediction by the component
most responsible for the nearest training sample in U).
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import numpy as np
import pandas as pd

import stratlang

SPEC = """response y ~ squared
features x1, x2
regularize 0.01 * l1
personalize rank 2 radius 0.3 match {gamma} metric_penalty 1 neighbors 10 max_neighbors 30 \\
    start_neighbors {start} \\
    learning_rate {lr} decay 0.995 max_iter 400
  distance u ~ abs
"""


def simulate(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 2))
    u = rng.uniform(0, 1, n)
    theta = np.column_stack([u, (u > 0.5) + 0.1 * np.sin(u)])
    y = np.sum(x * theta, axis=1) + rng.normal(0, np.sqrt(0.1), n)
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "u": u, "y": y}), theta


def varying_coefficient(train: pd.DataFrame, test: pd.DataFrame):
    def design(f):
        x = f[["x1", "x2"]].to_numpy()
        return np.hstack([x, x * f[["u"]].to_numpy()])

    coef = np.linalg.lstsq(design(train), train.y.to_numpy(), rcond=None)[0]
    theta_train = coef[:2] + np.outer(train.u, coef[2:])
    return theta_train, design(test) @ coef


def mixture(train: pd.DataFrame, test: pd.DataFrame, k: int = 2, seed: int = 0):
    x, y = train[["x1", "x2"]].to_numpy(), train.y.to_numpy()
    rng = np.random.default_rng(seed)
    resp = rng.dirichlet(np.ones(k), len(x))
    for _ in range(200):  # EM for a mixture of linear regressions
        coefs, sig, pis = [], [], []
        for c in range(k):
            w = resp[:, c] + 1e-12
            coef = np.linalg.solve((x * w[:, None]).T @ x + 1e-8 * np.eye(2), (x * w[:, None]).T @ y)
            coefs.append(coef)
            sig.append(max(np.sum(w * (y - x @ coef) ** 2) / w.sum(), 1e-6))
            pis.append(w.mean())
        dens = np.column_stack([pis[c] / np.sqrt(sig[c]) * np.exp(-(y - x @ coefs[c]) ** 2 /
                                                                  (2 * sig[c])) for c in range(k)])
        resp = dens / dens.sum(axis=1, keepdims=True)
    coefs = np.array(coefs)
    label = resp.argmax(axis=1)
    nearest = np.abs(test.u.to_numpy()[:, None] - train.u.to_numpy()[None, :]).argmin(axis=1)
    return coefs[label], np.sum(test[["x1", "x2"]].to_numpy() * coefs[label[nearest]], axis=1)


def run_seed(seed: int, gamma: float, lr: float, start_k: int) -> list[dict]:
    train, truth = simulate(2000, seed)
    test, test_truth = simulate(500, 1000 + seed)
    rows = []
    xt = test[["x1", "x2"]].to_numpy()
    rows.append({"method": "oracle", "recovery": 0.0,
                 "mse": float(np.mean((test.y - np.sum(xt * test_truth, axis=1)) ** 2)),
                 "seconds": 0.0})
    for k, label in ((0, "paper's start"), (start_k, f"start_neighbors {start_k}")):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = stratlang.load(SPEC.format(gamma=gamma, lr=lr, start=k)).fit(
                train, options={"progress": False})
        seconds = time.perf_counter() - start
        rows.append({"method": f"stratlang subgradient, {label}",
                     "recovery": float(np.linalg.norm(fitted.theta_array - truth)),
                     "mse": fitted.score(test)["rmse"] ** 2, "seconds": seconds})
    pop = fitted.theta_pop
    rows.append({"method": "population lasso", "recovery": float(np.linalg.norm(pop - truth)),
                 "mse": float(np.mean((test.y - xt @ pop) ** 2)), "seconds": 0.0})
    start = time.perf_counter()
    theta_vc, pred_vc = varying_coefficient(train, test)
    rows.append({"method": "varying coefficient (θ linear in U)",
                 "recovery": float(np.linalg.norm(theta_vc - truth)),
                 "mse": float(np.mean((test.y - pred_vc) ** 2)),
                 "seconds": time.perf_counter() - start})
    start = time.perf_counter()
    theta_mx, pred_mx = mixture(train, test, seed=seed)
    rows.append({"method": "mixture of 2 regressions",
                 "recovery": float(np.linalg.norm(theta_mx - truth)),
                 "mse": float(np.mean((test.y - pred_mx) ** 2)),
                 "seconds": time.perf_counter() - start})
    return rows


def scale(n: int = 10_000, p: int = 1_000, q: int = 10) -> dict:
    rng = np.random.default_rng(0)
    u = rng.uniform(0, 1, n)
    x = rng.normal(size=(n, p)) / np.sqrt(p)
    basis = rng.normal(size=(3, p))
    theta = np.column_stack([np.ones(n), u, np.sin(6 * u)]) @ basis
    y = np.sum(x * theta, axis=1) + 0.1 * rng.normal(size=n)
    frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(p)])
    frame["u"], frame["y"] = u, y
    spec = ("response y ~ squared\nfeatures " + ", ".join(f"x{j}" for j in range(p))
            + f"\nregularize 0.01 * l1\npersonalize rank {q} radius 0.3 match 1 "
              "metric_penalty 1 neighbors 10 max_neighbors 30 learning_rate 0.01 decay 0.99 "
              "max_iter 100\n  distance u ~ abs\n")
    model = stratlang.load(spec)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = model.fit(frame, options={"progress": False})
    return {"seconds": time.perf_counter() - start, "epochs": fitted.info["epochs"],
            "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--gamma", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--start", type=int, default=100,
                        help="start_neighbors of the second stratlang row (the first has the "
                             "paper's start, θ_pop + noise)")
    parser.add_argument("--scale", action="store_true", help="also n = 10,000, p = 1,000, q = 10")
    args = parser.parse_args()
    rows = [r for seed in range(args.seeds)
            for r in run_seed(seed, args.gamma, args.lr, args.start)]
    table = pd.DataFrame(rows).groupby("method", sort=False).mean()
    print(f"paper simulation, n = 2000 / 500, mean over {args.seeds} seeds "
          f"(match {args.gamma}, learning_rate {args.lr})")
    oracle = table.loc["oracle", "mse"]
    print("| method | recovery ‖Ω̂ − Ω‖_F | test MSE | MSE / oracle | seconds |")
    print("|---|---|---|---|---|")
    for method, r in table.iterrows():
        print(f"| {method} | {r.recovery:.2f} | {r.mse:.4f} | {r.mse / oracle:.3f} | "
              f"{r.seconds:.2f} |")
    if args.scale:
        out = scale()
        print(f"\nscale n = 10,000, p = 1,000, q = 10: {out['seconds']:.1f} s for "
              f"{out['epochs']} epochs, peak {out['peak_gib']:.2f} GiB")


if __name__ == "__main__":
    main()
