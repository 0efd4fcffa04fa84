"""A differential campaign over every kind the fast backends fit: random specs fitted by
ADMM (or eigen, for `basis`) and by the CVXPY reference, the objectives compared, the
fit saved and loaded and its predictions compared (issue 21).

    python benchmarks/campaign.py --specs 200            # seeds 0..199
    python benchmarks/campaign.py --specs 1000 --start 0 --dask 20

Random specs (on top of benchmarks/admm_sweep.py's generator): every convex loss (squared,
huber, quantile, absolute, logistic, hinge, square_classification, squared_hinge,
multinomial, multiclass_hinge, poisson_regression, exponential_regression, bernoulli,
poisson, exponential, gaussian); loss-parameter overrides in disjoint strata and overrides covering
every stratum; `eps` bounds in some strata; `basis` models (eigen backend); `missing drop`
with missing feature values; record weights and offsets; 0–3 regularizer terms (with
`where`, `exclude []`); one or two graph factors. Every fit is saved and loaded, and the
loaded model's predictions compared with the fitted one's. With ``--dask N``, the first N
specs the Dask backend takes are also fitted on a LocalCluster and compared with ADMM.

Each spec ends in one outcome:
- agree: the fast objective within TOLERANCE (relative) of the reference's (or within
  the accuracy the fit states, ``objective_accuracy``: agree-within-stated-accuracy), the
  reference
  accurate (Clarabel optimal, duality gap and constraint violation small), the saved and
  loaded predictions equal;
- disagree: the objectives differ by more; reference-inaccurate: the reference itself was
  not certified (then no comparison is made); warned: a fast fit warned it did not
  converge (reported, never silent);
- refused: a clear StratlangError from both (e.g. an unbounded objective), internal error:
  any other exception (a bug).
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import stratlang
from stratlang.language.errors import NumericalWarning, StratlangError

TOLERANCE = 1e-6  # relative objective gap: what verify's users are told to expect
GAPS: list[float] = []  # the relative gaps of the fits that agree
G = list("abcd")


def make_data(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = int(rng.choice([60, 150, 300]))
    frame = pd.DataFrame({"g": rng.choice(G, n), "s": rng.choice(["F", "M"], n)})
    for i in range(3):
        frame[f"x{i}"] = rng.normal(size=n)
    gi = frame.g.map({k: i for i, k in enumerate(G)}).to_numpy()
    beta = rng.normal(size=(4, 3))
    lin = sum(beta[gi, j] * frame[f"x{j}"].to_numpy() for j in range(3)) + 0.3 * gi
    frame["y"] = lin + (rng.standard_t(3, n) if rng.random() < 0.5 else rng.normal(size=n))
    frame["yb"] = (rng.random(n) < 1 / (1 + np.exp(-0.7 * lin))).astype(int)
    frame["cnt"] = rng.poisson(np.exp(np.clip(0.3 * lin, -3, 3)))
    frame["pos"] = rng.exponential(np.exp(np.clip(-0.3 * lin, -3, 3)))
    frame["y2"] = 0.5 * frame.y + rng.normal(size=n)
    frame["cls"] = np.where(lin > 0.5, "a", np.where(lin < -0.5, "b", "c"))
    flip = rng.random(n) < 0.2  # (not separable)
    frame.loc[flip, "cls"] = rng.choice(["a", "b", "c"], int(flip.sum()))
    frame["w"] = rng.choice([0.5, 1.0, 2.0], n)
    frame["o"] = 0.1 * rng.normal(size=n)
    if rng.random() < 0.3:  # missing feature values (for `missing drop`)
        frame.loc[rng.choice(n, 3, replace=False), "x1"] = np.nan
    return frame


LINEAR = {"squared": "y", "huber": "y", "quantile": "y", "absolute": "y", "logistic": "yb",
          "poisson_regression": "cnt", "exponential_regression": "pos", "hinge": "yb",
          "square_classification": "yb", "squared_hinge": "yb", "multinomial": "cls",
          "multiclass_hinge": "cls"}
DISTRIBUTIONS = {"bernoulli": "yb", "poisson": "cnt", "exponential": "pos",
                 "gaussian": "(y, y2)"}
OVERRIDE = {"huber": ("M", [0.5, 1.5, 3]), "quantile": ("tau", [0.2, 0.6, 0.8]),
            "bernoulli": ("eps", [0.05, 0.2]), "poisson": ("eps", [0.05, 0.5 - 1e-9]),
            "exponential": ("eps", [0.1, 0.4])}
DISJOINT = ['g == "a"', 'g in {"b", "c"}', 's == "M" and g == "d"']
EVERY = 'g in {"a", "b", "c", "d"}'
WHERE = ['g == "a"', 'g != "b"', 's == "F"']


def weight(rng) -> str:
    return f"{10 ** rng.uniform(-2, 2):.3g}"


def make_spec(seed: int) -> tuple[str, str]:
    """(spec text, what it covers in a word or two)."""
    rng = np.random.default_rng(100_000 + seed)
    lines, tags = [], []
    basis = rng.random() < 0.12
    with_s = rng.random() < 0.5
    disjoint = DISJOINT if with_s else DISJOINT[:2]
    where = WHERE if with_s else WHERE[:2]
    pool = ["squared", "huber", "logistic", "poisson_regression", "exponential_regression"] \
        if basis else [*LINEAR, *DISTRIBUTIONS]
    loss = str(rng.choice(pool))
    target = {**LINEAR, **DISTRIBUTIONS}[loss]
    offset = (" offset o" if loss in LINEAR and not loss.startswith("multi")
              and rng.random() < 0.2 else "")
    lines.append(f"response {target} ~ {loss}{offset}")
    tags.append(loss)
    if loss in OVERRIDE and not basis:
        name, values = OVERRIDE[loss]
        if rng.random() < 0.3:
            lines.append(f"response {target} ~ {loss}({name}={rng.choice(values)}) where {EVERY}")
            tags.append("override-all")
        else:
            for clause in rng.choice(disjoint, size=int(rng.integers(0, 3)), replace=False):
                lines.append(f"response {target} ~ {loss}({name}={rng.choice(values)}) "
                             f"where {clause}")
                tags.append("override")
    if loss in LINEAR:
        terms = [str(t) for t in rng.choice(["x0", "x1", "x2", "intercept"],
                                            size=int(rng.integers(1, 5)), replace=False)]
        if not basis and rng.random() < 0.2:  # a feature in some strata only
            terms = [t for t in terms if t != "x2"]
            terms.append(f"x2 where {where[rng.integers(len(where))]}")
        lines.append("features " + ", ".join(terms))
    if "x1" in "\n".join(lines):
        lines.append("missing drop")
        tags.append("missing")
    if rng.random() < 0.2:
        lines.append("weights w")
        tags.append("weights")
    kinds = (["sum_squares"] if basis else
             ["sum_squares", "l1", "l2", "elastic_net(0.3)", "nonnegative", "box(-1, 1)"])
    if loss in DISTRIBUTIONS:
        kinds = ["sum_squares", "l1"] if not basis else kinds
    if loss == "gaussian":
        kinds = ["sum_squares", "trace"]
    elif loss.startswith("multi"):
        kinds = [*kinds, "nuclear"]
    for _ in range(int(rng.integers(0, 3))):
        kind = str(rng.choice(kinds))
        term = kind if kind in ("nonnegative", "box(-1, 1)") else f"{weight(rng)} * {kind}"
        if loss == "gaussian" and kind == "trace":
            term = f"{weight(rng)} * trace + 0.1 * sum_squares"
        extra = " exclude []" if loss in LINEAR and rng.random() < 0.4 else ""
        if not basis and rng.random() < 0.3:
            extra += f" where {where[rng.integers(len(where))]}"
        lines.append(f"regularize {term}{extra}")
    graph = str(rng.choice(["path", "cycle", "complete", "star"]))
    lines.append(f"stratify g ~ {graph} weight {weight(rng)}")
    if with_s:
        lines.append(f"stratify s ~ complete weight {weight(rng)}")
    if basis:
        lines.append(f"basis {int(rng.integers(1, 5))}")
        tags.append("basis")
    return "\n".join(lines) + "\n", " ".join(tags)


def reference_accurate(info: dict) -> bool:
    accuracy = info.get("accuracy", {})
    return (info.get("status") == "optimal"
            and accuracy.get("constraint_violation", 0.0) <= 1e-7
            and accuracy.get("duality_gap", 0.0) <= 1e-6 * max(1.0, abs(info.get(
                "cvxpy_objective") or 0.0)))


def run_one(seed: int, folder: Path, client=None) -> tuple[str, str, str]:
    """(outcome, tags, detail) of one spec."""
    text, tags = make_spec(seed)
    frame = make_data(seed)
    try:
        model = stratlang.load(text)
    except StratlangError as err:
        return "spec-refused", tags, str(err).splitlines()[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            reference = model.fit(frame, backend="cvxpy")
        except StratlangError as err:
            fast_error = _fast_error(model, frame)
            if fast_error is not None:  # both refuse: a clear, shared diagnosis
                return "refused", tags, str(err).splitlines()[0][:120]
            return "reference-failed", tags, str(err).splitlines()[0][:120]
        try:
            fast = model.fit(frame)
        except StratlangError as err:
            return "fast-refused", tags, str(err).splitlines()[0][:120]
    warned = [w for w in caught if issubclass(w.category, NumericalWarning)]
    if not reference_accurate(reference.info):
        return "reference-inaccurate", tags, str(reference.info.get("accuracy"))
    ref, got = reference.objective.total, fast.objective.total
    gap = abs(got - ref) / max(abs(ref), 1.0)
    path = fast.save(folder / f"m{seed}")
    loaded = stratlang.load_fitted(path)
    usable = frame.dropna()
    try:
        pd.testing.assert_frame_equal(loaded.predict(usable), fast.predict(usable),
                                      check_exact=False, rtol=1e-12, atol=1e-12)
    except AssertionError as err:
        return "save-load-differs", tags, str(err).splitlines()[0]
    if client is not None:
        remote = model.fit(frame, backend="dask", options={"scheduler": client})
        if abs(remote.objective.total - got) > 1e-6 * max(abs(got), 1.0):
            return "dask-differs", tags, f"{remote.objective.total} vs {got}"
    if gap > TOLERANCE:
        stated = fast.info.get("objective_accuracy", 0.0) / max(abs(ref), 1.0)
        if gap <= stated:  # beyond the tolerance, but within the accuracy the fit stated
            return "agree-within-stated-accuracy", tags, f"gap {gap:.2e} ≤ {stated:.2e}"
        return ("warned" if warned else "disagree"), tags, f"gap {gap:.2e} ({fast.info['backend']})"
    GAPS.append(gap)
    return ("agree-warned" if warned else "agree"), tags, f"gap {gap:.1e}"


def _fast_error(model, frame) -> StratlangError | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(frame)
    except StratlangError as err:
        return err
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--specs", type=int, default=200)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--dask", type=int, default=0, help="specs also fitted on Dask")
    args = parser.parse_args()
    client = None
    if args.dask:
        from distributed import Client, LocalCluster

        client = Client(LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None))
    outcomes: collections.Counter = collections.Counter()
    by_tag: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    notes: list[str] = []
    dask_left = args.dask
    begin = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.start, args.start + args.specs):
            use_dask = None
            text, _ = make_spec(seed)
            if dask_left and "where" not in text and "basis" not in text:
                use_dask, dask_left = client, dask_left - 1
            try:
                outcome, tags, detail = run_one(seed, Path(tmp), use_dask)
            except Exception as err:  # (the campaign counts bugs: any exception)
                outcome, tags, detail = "internal-error", make_spec(seed)[1], repr(err)
                traceback.print_exc()
            outcomes[outcome] += 1
            for tag in set(tags.split()):
                by_tag[tag][outcome] += 1
            if not outcome.startswith("agree"):
                notes.append(f"seed {seed} [{tags}]: {outcome} {detail}")
    seconds = time.perf_counter() - begin
    print(f"{args.specs} specs (seeds {args.start}..{args.start + args.specs - 1}) in "
          f"{seconds:.0f} s; tolerance {TOLERANCE:g} relative\n")
    if GAPS:
        print(f"relative gap of the agreeing fits: median {np.median(GAPS):.1e}, 99th "
              f"percentile {np.quantile(GAPS, 0.99):.1e}, largest {max(GAPS):.1e}\n")
    print("| outcome | specs |\n|---|---|")
    for outcome, count in sorted(outcomes.items()):
        print(f"| {outcome} | {count} |")
    print("\n| covers | specs | outcomes |\n|---|---|---|")
    for tag, counts in sorted(by_tag.items()):
        print(f"| {tag} | {sum(counts.values())} | "
              + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + " |")
    if notes:
        print("\n" + "\n".join(notes))
    if client is not None:
        client.close()


if __name__ == "__main__":
    main()
