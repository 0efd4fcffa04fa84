"""The `auto` campaign: weights chosen from the data and standard errors, on models with
per-term structure, through the command line and the API.

Each case is a small model over 1–3 factors (path, cycle, complete, star, grid, an edges
file — some with islands, some with declared nodes no record falls in) with random
per-term structure (`by` subsets, `shared`, a term's own weight on a factor, `interact`,
`where`), any loss of the registry (those without a likelihood reading must be refused),
weights `auto`, fixed or 0, `select reml|ml|gcv`, record weights, an offset and
`missing drop`, beside small random data. It runs

    stratlang fit SPEC --select S --standard-errors --format json --out FIT
    stratlang predict FIT.json --data DATA --interval 0.9 --format json

then the API: ``stratlang.load(SPEC).fit(select=S)``, its ``theta_se``, ``intervals`` and
``summary()``, and the saved fit loaded back. :func:`auto_outcome` classifies:

- ``accepted``: exit 0, every number finite, the intervals around their point, the API's
  weights and standard errors those of the command line and of the loaded fit;
- ``refused``: exit 1 or 2 with stratlang's message, the API refusing too;
- ``bug``: a traceback or internal error, another exit status, a non-finite number in a
  result reported as success, a disagreement between the API and the command line (or the
  saved fit), or a chosen weight flagged wrongly (an unflagged weight beyond 10^±8, a
  weight run to ∞ below its start or to 0 above it, a fixed weight reported as chosen);
- ``timeout``: past :data:`TIME_LIMIT`.

Run: ``python -m tests.fuzz_auto --cases N [--seed S]``; tests/test_fuzz_auto.py runs a
short profile.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import random
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stratlang.kinds import LOSSES

from .fuzz_fits import _response
from .fuzzing import report_campaign, run_cli, write_fit_case

TIME_LIMIT = 60.0  # seconds one command may take
FACTORS = ["a", "b", "c"]
GRAPHS = ["path", "cycle", "complete", "star", "grid", "edges", "edges island"]
SELECTS = ["reml", "ml", "gcv"]
RELATIVE = 1e-6  # the API against the command line: the same computation


@dataclass
class AutoCase:
    loss: str
    spec: str
    frame: pd.DataFrame
    files: dict[str, str]  # edge-list files beside the spec
    select: str | None  # --select, None to leave it to the spec
    auto: list[str] = field(default_factory=list)  # the weights written auto (by name)

    def describe(self) -> str:
        return (f"# loss {self.loss}, --select {self.select}\n{self.spec}--- data ---\n"
                f"{self.frame.head(6).to_csv(index=False)}"
                + "".join(f"--- {name} ---\n{text}" for name, text in self.files.items()))


def _weight(rng: random.Random) -> str:
    return rng.choice(["auto", "auto", "auto", "1", "10", "0.1", "0"])


def auto_case(case_seed: int) -> AutoCase:
    """One random case, a function of its seed alone."""
    rng = random.Random(case_seed)
    nrng = np.random.default_rng(case_seed)
    # three in four from the losses with a likelihood reading; the rest exercise refusals
    readable = sorted(n for n in LOSSES if LOSSES[n].likelihood is not None)
    loss_name = rng.choice(readable if rng.random() < 0.75 else sorted(LOSSES))
    loss = LOSSES[loss_name]
    factors = FACTORS[:rng.randint(1, 3)]
    sizes = {f: rng.randint(2, 5) for f in factors}
    lines = [f"model auto_{case_seed}", 'data "d.csv"']
    files: dict[str, str] = {}
    stratify, data_nodes = [], {}
    for f in factors:
        n = sizes[f]
        graph = rng.choice(GRAPHS)
        weight = _weight(rng)
        extra = rng.random() < 0.3  # declared nodes beyond the data's: strata without data
        data_nodes[f] = list(range(n - 1 if extra and n > 2 else n))
        if graph.startswith("edges"):
            edges = [(i, i + 1) for i in range(n - 1)]
            if graph == "edges island" and n >= 3:
                cut = rng.randint(1, n - 2)
                edges = [e for e in edges if e != (cut, cut + 1)]  # two components
            files[f"e_{f}.csv"] = "source,target\n" + "".join(f"{i},{j}\n" for i, j in edges)
            text = f'stratify {f} ~ edges("e_{f}.csv") weight {weight}'
            if extra or graph == "edges island":  # (a node no edge names: declared)
                text += f" nodes 0..{n - 1}"
        else:
            text = f"stratify {f} ~ {graph} weight {weight}"
            if extra or graph in ("cycle", "grid"):
                text += f" nodes 0..{n - 1}"
        stratify.append(text)
    columns, params = "y", ""
    if loss.multi_column and rng.random() < 0.5:
        columns = "(y, y2)"
    if loss.params and rng.random() < 0.4:
        p = rng.choice(loss.params)
        params = f"({p.name}={rng.choice([0, 1e-5, 0.1, 0.5, 1, 2])})"
    response = f"response {columns} ~ {loss_name}{params}"
    offset = rng.random() < 0.2
    if offset:
        response += " offset o"
    lines.append(response)
    if loss.features != "forbidden" and rng.random() < 0.85:
        terms = []
        for name in rng.sample(["x", "u", "intercept"], rng.randint(1, 3)):
            structure = rng.choice(["", "", "shared", "by", "by weight", "where"])
            if structure == "shared":
                name += " shared"
            elif structure == "by":
                chosen = rng.sample(factors, rng.randint(1, len(factors)))
                name += " by " + (chosen[0] if len(chosen) == 1 else f"({', '.join(chosen)})")
            elif structure == "by weight":
                f = rng.choice(factors)
                name += f" by ({f} weight {_weight(rng)})"
            elif structure == "where":
                f = rng.choice(factors)
                values = data_nodes[f]
                name += f" where {f} == {rng.choice(values)}"
            terms.append(name)
        lines.append("features " + ", ".join(terms))
    regularizer = rng.choice(["", "", "regularize auto * sum_squares",
                              "regularize 0.5 * sum_squares",
                              "regularize auto * sum_squares exclude []",
                              "regularize 0.1 * l1", "regularize nonnegative exclude []"])
    if regularizer:
        lines.append(regularizer)
    if rng.random() < 0.3:
        lines.append("weights w")
    drop = rng.random() < 0.2
    if drop:
        lines.append("missing drop")
    lines += stratify
    if len(factors) >= 2 and rng.random() < 0.4:
        pair = rng.sample(factors, 2)
        lines.append(f"interact {pair[0]} * {pair[1]} weight {_weight(rng)}")
    select: str | None = rng.choice(SELECTS)
    if rng.random() < 0.2:
        lines.append(f"solver admm select {select}")
        select = None
    n = rng.randint(10, 60)
    frame = pd.DataFrame({f: nrng.choice(data_nodes[f], n) for f in factors})
    frame["x"] = np.round(nrng.normal(size=n), 4)
    frame["u"] = np.round(nrng.uniform(-1, 1, n), 4)
    frame["w"] = np.round(nrng.uniform(0.5, 2.0, n), 3)
    frame["o"] = np.round(nrng.normal(0, 0.2, n), 3)
    frame["y"] = _response(loss, nrng, n)
    if columns != "y":
        frame["y2"] = _response(loss, nrng, n)
    if drop:
        frame["x"] = frame["x"].astype(object)
        frame.loc[int(nrng.integers(0, n)), "x"] = None
    spec = "\n".join(lines) + "\n"
    auto = _auto_names(spec)
    return AutoCase(loss_name, spec, frame, files, select, auto)


def _auto_names(spec: str) -> list[str]:
    """The names of the weights written auto (the checked model's own names)."""
    from stratlang.spec import compile_spec

    try:
        model = compile_spec(spec)
    except Exception:
        return []
    return sorted(model.autos())


@dataclass
class AutoOutcome:
    kind: str  # 'accepted', 'refused', 'bug', 'timeout'
    seconds: float
    message: str = ""
    refusal: str = ""  # the refusal's first line, to tabulate


def _non_finite(value, where: str = "") -> list[str]:
    """Where a JSON document holds a non-finite number."""
    if isinstance(value, float) and not math.isfinite(value):
        return [where]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _non_finite(v, f"{where}[{i}]")]
    return []


def _close(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=RELATIVE, atol=1e-9,
                                                   equal_nan=False))


def _flag_problems(document: dict, auto: list[str]) -> list[str]:
    selection = document.get("selection") or {}
    chosen = selection.get("weights") or {}
    problems = []
    for name in chosen:
        if auto and name not in auto:
            problems.append(f"{name}: fixed, reported as chosen")
    for name, entry in chosen.items():
        value, limit = entry.get("value"), entry.get("limit")
        if value is None:
            continue
        if limit is None and not 1e-8 <= value <= 1e8:
            problems.append(f"{name} = {value:g}: beyond 10^±8, not flagged")
        if limit == "infinite" and value < 1e-3:
            problems.append(f"{name} = {value:g} flagged infinite")
        if limit == "zero" and value > 1e3:
            problems.append(f"{name} = {value:g} flagged zero")
    return problems


def auto_outcome(case: AutoCase, directory: Path) -> AutoOutcome:
    spec_path = write_fit_case(directory, case.spec, case.frame, case.files)
    out = directory / "fit"
    argv = ["fit", str(spec_path), "--standard-errors", "--format", "json", "--out", str(out)]
    if case.select is not None:
        argv += ["--select", case.select]
    run = run_cli(argv, TIME_LIMIT)
    if run.status is None:
        return AutoOutcome("timeout", run.seconds)
    said = run.stderr + run.stdout
    if crash := run.crash():
        return AutoOutcome("bug", run.seconds, f"fit {crash}")
    try:
        document = json.loads(run.stdout)
    except ValueError:
        return AutoOutcome("bug", run.seconds, f"fit --format json wrote no JSON: {said[-500:]}")
    api = _api(case, spec_path)
    if run.status != 0:
        message = json.dumps(document.get("errors", document))[:600]
        if api.get("error") is None:
            return AutoOutcome("bug", run.seconds, f"the CLI refused ({message}), the API fit")
        if api["error"].startswith("bug"):
            return AutoOutcome("bug", run.seconds, f"API: {api['error']}")
        unpositioned = [e for e in document.get("errors", [])
                        if str(e.get("code") or "").startswith("S") and e.get("line") is None]
        if unpositioned:
            return AutoOutcome("bug", run.seconds, f"a spec error without its place: {message}")
        return AutoOutcome("refused", run.seconds, message, _refusal_kind(document))
    problems = [f"non-finite {p}" for p in _non_finite(document)]
    problems += _flag_problems(document, case.auto)
    problems += _predict_problems(out, directory)
    problems += _api_problems(api, document, out)
    if problems:
        return AutoOutcome("bug", run.seconds, "; ".join(problems[:6]))
    return AutoOutcome("accepted", run.seconds)


def _refusal_kind(document: dict) -> str:
    """A refusal's code (S230, …), else its message's first words."""
    errors = document.get("errors") or [{}]
    first = errors[0] if isinstance(errors[0], dict) else {"message": str(errors[0])}
    return str(first.get("code") or " ".join(str(first.get("message", "")).split()[:6]))


def _api(case: AutoCase, spec_path: Path) -> dict:
    """The same fit through the API: weights, theta_se, intervals and summary()."""
    import stratlang

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = stratlang.load(spec_path).fit(select=case.select)
            se = fitted.theta_se
            lower, upper = fitted.intervals(0.9)
            text = str(fitted.summary())
    except stratlang.StratlangError as error:
        return {"error": f"{type(error).__name__}: {error}"}
    except Exception as error:  # anything else escaping the API is a bug
        return {"error": f"bug: {type(error).__name__}: {error}"}
    return {"error": None, "weights": dict(fitted.weights), "theta": fitted.theta,
            "se": se, "lower": lower, "upper": upper, "summary": text}


def _api_problems(api: dict, document: dict, out: Path) -> list[str]:
    import stratlang

    if api["error"] is not None:
        return [f"the CLI fit, the API refused: {api['error'][:300]}"]
    problems = []
    cli_weights = document.get("weights") or {}
    for name, value in cli_weights.items():
        if name not in api["weights"] or not _close(api["weights"][name], value):
            problems.append(f"weight {name}: CLI {value}, API {api['weights'].get(name)}")
    se, theta, lower, upper = api["se"], api["theta"], api["lower"], api["upper"]
    numbers = se.to_numpy(dtype=float)
    if not np.isfinite(numbers).all() or (numbers < 0).any():
        problems.append("API theta_se not finite and ≥ 0")
    if not (np.isfinite(lower.to_numpy(dtype=float)).all()
            and (lower.to_numpy(dtype=float) <= theta.to_numpy(dtype=float) + 1e-12).all()
            and (theta.to_numpy(dtype=float) <= upper.to_numpy(dtype=float) + 1e-12).all()):
        problems.append("API intervals not finite or not around θ")
    summary_se = (document.get("uncertainty") or {}).get("standard_errors") or {}
    for row, stats in summary_se.items():
        columns = [c for c in se.columns if _row_of(c) == row] if row not in se.columns else [row]
        if not columns:
            problems.append(f"CLI standard errors of {row!r}, a row the API lacks")
            continue
        values = se[columns].to_numpy(dtype=float)
        if not _close(values.mean(), stats["mean"]):
            problems.append(f"se of {row}: CLI mean {stats['mean']}, API {values.mean()}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = stratlang.load_fitted(out.with_suffix(".json"))
            loaded_se = loaded.theta_se
    except Exception as error:
        return [*problems, f"the saved fit: {type(error).__name__}: {error}"]
    if not _close(loaded_se.to_numpy(dtype=float), se.to_numpy(dtype=float)):
        gap = np.nanmax(np.abs(loaded_se.to_numpy(dtype=float) - se.to_numpy(dtype=float)))
        problems.append(f"theta_se: loaded fit and API differ (by {gap:.3g})")
    return problems


def _row_of(column) -> str:
    """A column of θ as the command line names its row: ``row`` or ``row:output``."""
    return ":".join(map(str, column)) if isinstance(column, tuple) else str(column)


def _predict_problems(out: Path, directory: Path) -> list[str]:
    argv = ["predict", str(out.with_suffix(".json")), "--data", str(directory / "d.csv"),
            "--interval", "0.9", "--format", "json"]
    run = run_cli(argv, TIME_LIMIT)
    if run.status is None:
        return ["predict --interval: timeout"]
    if crash := run.crash((0,)):
        return [f"predict --interval {crash[:600]}"]
    rows = json.loads(run.stdout)["predictions"]
    # the JSON writer turns a non-finite number into null: a null bound is one (a record
    # with a missing feature, dropped by `missing drop`, is predicted as missing)
    missing = set(np.flatnonzero(pd.read_csv(directory / "d.csv").isna().any(axis=1)))
    problems = [f"predict row {row['row']}: {key} is null (non-finite)" for row in rows[:1000]
                for key, value in row.items() if row["row"] not in missing
                and value is None and key.startswith(("prediction", "mean", "probability"))]
    problems += [f"predict non-finite {p}" for p in _non_finite(rows)]
    for row in rows:
        for key, value in row.items():
            if key.endswith("_lower") or "_lower_" in key:
                point = row.get(key.replace("_lower", ""))
                high = row.get(key.replace("_lower", "_upper"))
                if None in (point, high, value):
                    continue
                if not value <= point + 1e-9 <= high + 2e-9:
                    problems.append(f"predict row {row['row']}: {key} {value} > {point} or > {high}")
                    return problems
    return problems


def run(cases: int, run_seed: int, verbose: bool = False
        ) -> tuple[collections.Counter, list[tuple[str, str]], dict, dict]:
    counts: collections.Counter = collections.Counter()
    by_loss: dict = collections.defaultdict(collections.Counter)
    refusals: collections.Counter = collections.Counter()
    failures: list[tuple[str, str]] = []
    directory = Path(tempfile.mkdtemp(prefix="stratlang-auto-")) / "case"
    for i in range(cases):
        case = auto_case(run_seed * 1_000_003 + i)
        result = auto_outcome(case, directory)
        counts[result.kind] += 1
        by_loss[case.loss][result.kind] += 1
        if result.kind == "refused":
            refusals[result.refusal] += 1
        if result.kind in ("bug", "timeout"):
            failures.append((case.describe(), f"{result.kind}: {result.message}"))
            if verbose:
                print(f"\n{result.kind}: {result.message}\n{case.describe()}", flush=True)
    return counts, failures, by_loss, refusals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--verbose", action="store_true", help="print each failure at once")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    counts, failures, by_loss, refusals = run(args.cases, args.seed, args.verbose)
    kinds = ["accepted", "refused", "bug", "timeout"]
    refused = "refusals: " + ", ".join(f"{k} {v}" for k, v in refusals.most_common())
    return report_campaign(by_loss, counts, kinds, failures, args.seed,
                           time.perf_counter() - start, (refused,))


if __name__ == "__main__":
    sys.exit(main())
