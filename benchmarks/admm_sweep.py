"""ADMM against the CVXPY reference on random specs (issue 16 review; every kind, with
save/load, basis, eps bounds and overrides: benchmarks/campaign.py): how often the
in-memory ADMM, at its default options, fails to reach the reference's objective — with
the penalty adapted every iteration (as before issue 16) and at most once in 10 (now).

    python benchmarks/admm_sweep.py            # seeds 0, 5, …, 395 (80 specs)
    python benchmarks/admm_sweep.py --step 1   # all 400
    python benchmarks/admm_sweep.py --step 1 --every 10   # the default rule only

Random specs: losses squared, huber, quantile, absolute, logistic, poisson_regression
(huber/quantile with 0–2 parameter overrides in disjoint strata); 1–4 features, some
present in some strata only, products, standardize, categorical; 0–3 regularizer terms
(sum_squares, l1, l2, elastic_net, nonnegative, box) with weights 0.01–10, `exclude []`
and `where`; g ~ path | cycle | complete, optionally × s ~ complete; 80–400 records. A fit
fails when it raises, does not converge, or misses CVXPY's (Clarabel) objective by more
than 1e-4 relative.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd

import stratlang
import stratlang.solvers.admm as engine
from stratlang.language.errors import StratlangError

G = list("abcd")


def make_data(seed, n=None):
    rng = np.random.default_rng(seed)
    n = n or int(rng.choice([80, 200, 400]))
    df = pd.DataFrame({
        "g": rng.choice(G, n),
        "s": rng.choice(["F", "M"], n),
        "g2": rng.choice(["p", "q", "r"], n),
    })
    for i in range(4):
        df[f"x{i}"] = rng.normal(size=n)
    gi = df.g.map({k: i for i, k in enumerate(G)}).to_numpy()
    beta = rng.normal(size=(4, 4))
    lin = sum(beta[gi, j] * df[f"x{j}"].to_numpy() for j in range(4)) + 0.5 * gi
    scale = float(rng.choice([1.0, 10.0]))
    noise = rng.standard_t(3, size=n) if rng.random() < 0.5 else rng.normal(size=n)
    df["y"] = scale * (lin + noise)
    p = 1 / (1 + np.exp(-0.7 * lin))
    df["yb"] = (rng.random(n) < p).astype(int)
    df["cnt"] = rng.poisson(np.exp(np.clip(0.3 * lin, -3, 3)))
    return df


DISJOINT_G = ['g == "a"', 'g == "b"', 'g in {"c", "d"}']
DISJOINT_S = ['s == "F" and g in {"a", "c"}', 's == "M"', 's == "F" and g == "b"']
WHERE_G = ['g == "a"', 'g != "b"', 'g in {"b", "d"}']
WHERE_S = ['s == "F" and g in {"a", "c"}', 's == "M"', 's == "F"']


def w(rng):
    return f"{10 ** rng.uniform(-2, 1):.3g}"


def make_spec(seed):
    rng = np.random.default_rng(10_000 + seed)
    with_s = rng.random() < 0.5
    wheres = WHERE_G + (WHERE_S if with_s else [])

    def clause():
        return wheres[rng.integers(len(wheres))]

    lines = []
    loss = rng.choice(["squared", "huber", "quantile", "absolute", "logistic",
                       "poisson_regression"])
    target = {"logistic": "yb", "poisson_regression": "cnt"}.get(loss, "y")
    if loss == "huber":
        ms = [0.5, 1, 2, 3]
        lines.append(f"response {target} ~ huber(M={rng.choice(ms)})")
    elif loss == "quantile":
        taus = [0.1, 0.25, 0.5, 0.75, 0.9]
        lines.append(f"response {target} ~ quantile(tau={rng.choice(taus)})")
    else:
        lines.append(f"response {target} ~ {loss}")
    if loss in ("huber", "quantile"):
        k = int(rng.integers(0, 3))
        pool = DISJOINT_S if (with_s and rng.random() < 0.5) else DISJOINT_G
        for c in rng.choice(pool, size=k, replace=False):
            if loss == "huber":
                lines.append(f"response {target} ~ huber(M={rng.choice([0.5, 1.5, 2, 4])}) where {c}")
            else:
                lines.append(f"response {target} ~ quantile(tau={rng.choice([0.2, 0.3, 0.6, 0.8])}) where {c}")

    base = ["x0", "x1", "x2", "x3", "intercept"]
    k = int(rng.integers(1, 5))
    terms = []
    for t in rng.choice(base, size=k, replace=False):
        terms.append(f"{t} where {clause()}" if rng.random() < 0.3 else str(t))
    if rng.random() < 0.25:
        op = "*" if rng.random() < 0.6 else ":"
        terms.append(f"x0 {op} x1 where {clause()}" if rng.random() < 0.8 else f"x0 {op} x1")
    if rng.random() < 0.25:
        terms.append(f"standardize(x2) where {clause()}")
    if rng.random() < 0.25:
        terms.append(f"categorical(g2) where {clause()}" if rng.random() < 0.4 else "categorical(g2)")
    rng.shuffle(terms)
    lines.append("features " + ", ".join(terms))

    nreg = int(rng.integers(0, 4))
    stmts = []
    for _ in range(nreg):
        kind = rng.choice(["sum_squares", "l1", "l2", "elastic_net(0.3)", "nonnegative",
                           "box(-1, 1)"])
        term = kind if kind in ("nonnegative", "box(-1, 1)") else f"{w(rng)} * {kind}"
        if stmts and rng.random() < 0.4:
            stmts[-1].append(term)
        else:
            stmts.append([term])
    for st in stmts:
        s = "regularize " + " + ".join(st)
        if rng.random() < 0.4:
            s += " exclude []"
        if rng.random() < 0.4:
            s += f" where {clause()}"
        lines.append(s)

    graph = rng.choice(["path", "cycle", "complete"])
    lines.append(f"stratify g ~ {graph} weight {w(rng)}")
    if with_s:
        lines.append(f"stratify s ~ complete weight {w(rng)}")
    return "\n".join(lines) + "\n"




def failures(seeds: list[int], adapt_every: int, reference: dict[int, float]
             ) -> tuple[list[int], list[int]]:
    """The seeds whose ADMM fit fails, and every fit's iteration count."""
    admm = engine.admm

    def with_interval(*args, **kwargs):
        return admm(*args, **{**kwargs, "adapt_every": adapt_every})

    engine.admm = with_interval
    failed, iterations = [], []
    try:
        for seed in seeds:
            model, frame = stratlang.load(make_spec(seed)), make_data(seed)
            with warnings.catch_warnings():
                warnings.simplefilter("error", stratlang.NumericalWarning)
                try:
                    fitted = model.fit(frame, backend="admm")
                except (StratlangError, stratlang.NumericalWarning, ArithmeticError,
                        np.linalg.LinAlgError):
                    failed.append(seed)
                    continue
            iterations.append(fitted.info["iterations"])
            ref = reference[seed]
            if abs(fitted.objective.total - ref) > 1e-4 * max(abs(ref), 1.0):
                failed.append(seed)
    finally:
        engine.admm = admm
    return failed, iterations


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--step", type=int, default=5)
    parser.add_argument("--every", default=f"1,{engine.ADAPT_EVERY}",
                        help="the adaptation intervals to compare (default: 1 and the default)")
    args = parser.parse_args()
    step, intervals = args.step, [int(e) for e in args.every.split(",")]
    seeds, reference = [], {}
    for seed in range(0, 400, step):
        try:
            model = stratlang.load(make_spec(seed))
        except StratlangError:  # (the generator can write a feature twice)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference[seed] = model.fit(make_data(seed), backend="cvxpy",
                                        solver="clarabel").objective.total
        seeds.append(seed)
    print(f"{len(seeds)} random specs\n")
    print("| penalty adapted | failing | median iterations | mean iterations | failing seeds |")
    print("|---|---|---|---|---|")
    for every in intervals:
        failed, iterations = failures(seeds, every, reference)
        print(f"| {'every iteration' if every == 1 else f'at most once in {every} iterations'} | "
              f"{len(failed)} | {np.median(iterations):.0f} | {np.mean(iterations):.0f} | "
              f"{', '.join(map(str, failed))} |")


if __name__ == "__main__":
    main()
