"""The fit campaign: ``stratlang fit`` over every loss kind, as a user runs it.

Each case is a spec for one loss of the registry (so a new loss is fuzzed without a
word here) with random features, regularizer, loss parameters, graph weight and backend,
beside a CSV drawn for the loss's response domain — and, in about a third of the cases,
one planted data problem that must be refused (a missing response, a response outside
its domain, text in a feature column). The command's outcome is classified:

- ``accepted``: exit 0, the fit written (JSON and arrays) and loadable, its predictions
  of the training rows finite;
- ``refused``: exit 1 or 2 with stratlang's own message (no traceback);
- ``bug``: anything else — an internal error, a traceback, another exit status, or an
  accepted fit whose files cannot be loaded or predict non-finite values;
- ``silent accept``: a case with a planted problem that was accepted;
- ``timeout``: the fit ran past :data:`TIME_LIMIT`.

Run: ``python -m tests.fuzz_fits --cases N [--seed S]``; tests/test_fuzz.py runs a short
profile.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from stratlang.kinds import LOSSES

from .fuzzing import report_campaign, run_cli, write_fit_case

TIME_LIMIT = 60.0  # seconds one fit may take (the CVXPY reference on 80 records included)
REGULARIZERS = ["", "regularize 0.1 * sum_squares\n", "regularize 0.5 * l1\n",
                "regularize 0.2 * elastic_net\n", "regularize nonnegative exclude []\n",
                "regularize box(lower=-2, upper=2)\n", "regularize 1 * l2\n"]
PLANTS = ["missing response", "response outside its domain", "text in a feature"]


@dataclass
class FitCase:
    loss: str
    spec: str
    frame: pd.DataFrame
    backend: str | None
    planted: str | None  # the data problem planted, None for clean data

    def describe(self) -> str:
        return (f"# loss {self.loss}, backend {self.backend}, planted {self.planted}\n"
                f"{self.spec}--- data ---\n{self.frame.head(8).to_csv(index=False)}")


def _response(loss, rng: np.random.Generator, n: int) -> np.ndarray:
    domain = loss.domain
    if domain == "count":
        return rng.poisson(3.0, n)
    if domain == "nonnegative":
        return np.round(rng.exponential(2.0, n), 3)
    if domain == "zero_one":
        return rng.integers(0, 2, n)
    if domain == "binary":
        labels = [[-1, 1], [0, 1], ["no", "yes"]][int(rng.integers(0, 3))]
        return np.array(labels, dtype=object)[rng.integers(0, 2, n)]
    if domain == "categorical":
        return np.array(["a", "b", "c"], dtype=object)[rng.integers(0, 3, n)]
    return np.round(rng.normal(size=n), 4)


def _outside(loss, rng: np.random.Generator) -> object:
    """A response value the loss's domain refuses."""
    return {"count": -1, "nonnegative": -2.5, "zero_one": 2, "binary": "maybe",
            "categorical": ""}.get(loss.domain, "abc")


@st.composite
def fit_cases(draw) -> FitCase:
    name = draw(st.sampled_from(sorted(LOSSES)))
    loss = LOSSES[name]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(8, 80))
    frame = pd.DataFrame({"g": rng.integers(0, draw(st.integers(1, 4)), n),
                          "x": np.round(rng.normal(size=n), 4),
                          "u": np.round(rng.uniform(-1, 1, n), 4),
                          "c": np.array(["p", "q"], dtype=object)[rng.integers(0, 2, n)]})
    frame["y"] = _response(loss, rng, n)
    columns = "y"
    if loss.multi_column and draw(st.booleans()):
        frame["y2"] = _response(loss, rng, n)
        columns = "(y, y2)"
    params = ""
    for p in loss.params:
        if draw(st.booleans()):
            value = draw(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0, 2.0, -1.0, 1.5]))
            params = f"({p.name}={value:g})"
            break
    spec = f"model fuzz_{name}\ndata \"d.csv\"\nresponse {columns} ~ {name}{params}\n"
    used = []
    if loss.features != "forbidden":
        used = draw(st.lists(st.sampled_from(["x", "u", "categorical(c)", "x:u", "intercept"]),
                             unique=True, max_size=4))
        if used:
            spec += f"features {', '.join(used)}\n"
    spec += draw(st.sampled_from(REGULARIZERS))
    weight = draw(st.sampled_from([0, 0.1, 1, 10, 1000]))
    graph = draw(st.sampled_from(["path", "complete", "cycle"]))
    nodes = draw(st.sampled_from(["", " nodes 0..3"]))
    spec += f"stratify g ~ {graph} weight {weight:g}{nodes}\n"
    if draw(st.booleans()):
        spec += "missing drop\n"
    planted = draw(st.sampled_from([None, None, *PLANTS]))
    if planted == "text in a feature" and "x" not in used and "u" not in used:
        planted = None
    row = int(rng.integers(0, n))
    if planted == "missing response":
        if "missing drop" in spec:
            planted = None  # dropped by the spec's own choice: no problem
        else:
            frame["y"] = frame["y"].astype(object)
            frame.loc[row, "y"] = None
    elif planted == "response outside its domain" and loss.domain == "categorical" \
            and "missing drop" in spec:
        planted = None  # any label is a class: the one bad value is a missing one, dropped
    elif planted == "response outside its domain":
        frame["y"] = frame["y"].astype(object)
        frame.loc[row, "y"] = _outside(loss, rng)
    elif planted == "text in a feature":
        column = "x" if "x" in used else "u"
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = "abc"
    backend = draw(st.sampled_from([None, None, "admm", "cvxpy"]))
    return FitCase(name, spec, frame, backend, planted)


@dataclass
class FitOutcome:
    kind: str  # 'accepted', 'refused', 'bug', 'silent accept', 'timeout'
    seconds: float
    message: str = ""


def fit_outcome(case: FitCase, directory: Path) -> FitOutcome:
    spec_path = write_fit_case(directory, case.spec, case.frame)
    out = directory / "fit"
    argv = ["fit", str(spec_path), "--out", str(out)]
    if case.backend is not None:
        argv += ["--backend", case.backend]
    run = run_cli(argv, TIME_LIMIT)
    if run.status is None:
        return FitOutcome("timeout", run.seconds)
    status, seconds, said = run.status, run.seconds, run.stderr
    if crash := run.crash():
        return FitOutcome("bug", seconds, crash)
    if status != 0:
        if "error" not in said:
            return FitOutcome("bug", seconds, f"exit {status} without a message: {said!r}")
        return FitOutcome("refused", seconds, said)
    if case.planted is not None:
        return FitOutcome("silent accept", seconds, f"planted {case.planted}; accepted")
    return FitOutcome(*_check_written(out, directory, seconds))


def _check_written(out: Path, directory: Path, seconds: float) -> tuple[str, float, str]:
    import stratlang

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = stratlang.load_fitted(out.with_suffix(".json"))
            predicted = fitted.predict(pd.read_csv(directory / "d.csv"))
    except Exception as error:
        return "bug", seconds, f"the written fit fails: {type(error).__name__}: {error}"
    numbers = predicted.select_dtypes("number").to_numpy(dtype=float)
    if not np.isfinite(numbers[~np.isnan(numbers).all(axis=1)]).all():
        return "bug", seconds, "the written fit predicts non-finite values"
    return "accepted", seconds, ""


def run(cases: int, run_seed: int) -> tuple[collections.Counter, list[tuple[str, str]], dict]:
    counts: collections.Counter = collections.Counter()
    by_loss: dict = collections.defaultdict(collections.Counter)
    failures: list[tuple[str, str]] = []
    directory = Path(tempfile.mkdtemp(prefix="stratlang-fits-"))

    @seed(run_seed)
    @settings(max_examples=cases, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(fit_cases())
    def one(case):
        result = fit_outcome(case, directory / "case")
        counts[result.kind] += 1
        by_loss[case.loss][result.kind] += 1
        if result.kind in ("bug", "silent accept", "timeout"):
            failures.append((case.describe(), f"{result.kind}: {result.message}"))

    one()
    return counts, failures, by_loss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    counts, failures, by_loss = run(args.cases, args.seed)
    kinds = ["accepted", "refused", "bug", "silent accept", "timeout"]
    return report_campaign(by_loss, counts, kinds, failures, args.seed,
                           time.perf_counter() - start)


if __name__ == "__main__":
    sys.exit(main())
