"""The long fuzz profile: ``make fuzz`` (or ``python -m tests.fuzz_campaign --inputs N``).

Runs N inputs from tests/fuzzing.py — 59 % texts checked alone, 20 % texts beside the
example data, 10 % spec files through the command line — from tests/fuzz_files.py 5 %
odd data files and places through the command line, 5 % calls of the Spec builder with
hostile arguments, and 1 % damaged saved models (tests/fuzz_saved.py), spread over the
machine's cores,
and prints the count of each outcome class per entry point, the slowest input, and every
input that broke a property (written to ``fuzz-failures/`` to be replayed). Exits 1 when
any input broke a property.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

SHARES = {"text": 0.59, "text + data": 0.2, "command line": 0.1, "data files": 0.05,
          "builder": 0.05, "saved model": 0.01}
CLASSES = ["accepted", "spec error", "data error", "other error", "bug", "timeout"]


def run_share(mode: str, count: int, run_seed: int) -> dict:
    """Runs ``count`` inputs of one entry point; returns counts, the slowest time and the
    failures (text, what broke)."""
    from .fuzz_files import describe, file_cases, file_outcome, file_problems
    from .fuzzing import (
        EXAMPLE_DATA,
        EXAMPLE_SPECS,
        Outcome,
        builder_calls,
        builder_outcome,
        cli_outcome,
        mutated,
        outcome,
        problems,
        spec_files,
        spec_texts,
    )

    counts: collections.Counter = collections.Counter()
    failures: list[tuple[str, list[str]]] = []
    slowest = [0.0, ""]
    directory = Path(tempfile.mkdtemp(prefix="stratlang-fuzz-"))
    (directory / "data").symlink_to(EXAMPLE_DATA)  # the examples' files resolve
    if mode == "saved model":
        return run_saved(count, run_seed)
    strategy = {"text": spec_texts(),
                "text + data": mutated(__import__("hypothesis").strategies.sampled_from(
                    list(EXAMPLE_SPECS.values()))),
                "command line": spec_files(), "data files": file_cases(),
                "builder": builder_calls()}[mode]

    @seed(run_seed)
    @settings(max_examples=count, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def one(case):
        if mode == "data files":
            result = file_outcome(case, directory / "case")
            broken = file_problems(case, result)
            text = describe(case)
        elif mode == "builder":
            start = time.perf_counter()
            kind, broken = builder_outcome(*case)
            result = Outcome(kind, time.perf_counter() - start)
            text = repr(case)
        elif mode == "command line":
            result = cli_outcome(case, directory)
            broken = [f"{result.kind}: {result.message}"] if result.kind in ("bug",
                                                                             "timeout") else []
            text = case.decode("utf-8", "backslashreplace")
        else:
            text = case[0]
            result = outcome(text, with_data=mode == "text + data")
            broken = problems(text, result, with_data=mode == "text + data")
        counts[result.kind] += 1
        if result.seconds > slowest[0]:
            slowest[:] = [result.seconds, text[:200]]
        if broken:
            counts["broke a property"] += 1
            failures.append((text, broken))

    one()
    return {"mode": mode, "counts": dict(counts), "slowest": tuple(slowest),
            "failures": failures}


def run_saved(count: int, run_seed: int) -> dict:
    """Runs ``count`` damaged saved models (loaded, summarized, used to predict)."""
    from .fuzz_saved import damaged_models, saved_outcome

    counts: collections.Counter = collections.Counter()
    failures: list[tuple[str, list[str]]] = []
    slowest = [0.0, ""]
    directory = Path(tempfile.mkdtemp(prefix="stratlang-fuzz-saved-"))

    @seed(run_seed)
    @settings(max_examples=count, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(damaged_models())
    def one(damage):
        result = saved_outcome(damage, directory)
        kind = {"stratlang error": "other error"}.get(result.kind, result.kind)
        counts[kind] += 1
        what = f"{damage.base}: {damage.what}"
        if result.seconds > slowest[0]:
            slowest[:] = [result.seconds, what]
        if result.kind == "bug":
            counts["broke a property"] += 1
            failures.append((what, [result.message]))

    one()
    return {"mode": "saved model", "counts": dict(counts), "slowest": tuple(slowest),
            "failures": failures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    # each mode's share is cut in pieces of at most 2,000 so that the cores stay busy
    tasks = []
    for index, (mode, share) in enumerate(SHARES.items()):
        total = round(args.inputs * share)
        pieces = max(1, -(-total // 2000))
        for piece in range(pieces):
            size = total // pieces + (piece < total % pieces)
            tasks.append((mode, size, args.seed * 1000 + index * 100 + piece))
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run_share, *zip(*tasks, strict=True)))
    elapsed = time.perf_counter() - start

    table: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    slowest = (0.0, "")
    failures = []
    for result in results:
        table[result["mode"]].update(result["counts"])
        slowest = max(slowest, result["slowest"])
        failures += result["failures"]
    columns = [*CLASSES, "broke a property"]
    print(f"{args.inputs:,} inputs (seed {args.seed}) in {elapsed:.0f} s on {args.jobs} "
          f"processes\n")
    print("| entry point | " + " | ".join(columns) + " | all |")
    print("|---" * (len(columns) + 2) + "|")
    for mode in SHARES:
        row = table[mode]
        print(f"| {mode} | " + " | ".join(f"{row[c]:,}" for c in columns)
              + f" | {sum(row[c] for c in CLASSES):,} |")
    total = sum(table.values(), collections.Counter())
    print("| all | " + " | ".join(f"{total[c]:,}" for c in columns)
          + f" | {sum(total[c] for c in CLASSES):,} |")
    print(f"\nslowest input: {slowest[0]:.2f} s: {slowest[1]!r}")
    if failures:
        out = Path("fuzz-failures")
        out.mkdir(exist_ok=True)
        for number, (text, broken) in enumerate(failures):
            (out / f"{number:04d}.strat").write_text(text, encoding="utf-8",
                                                      errors="surrogateescape")
            (out / f"{number:04d}.txt").write_text("\n".join(broken), encoding="utf-8")
        print(f"\n{len(failures)} inputs broke a property; written to {out}/:")
        for text, broken in failures[:10]:
            print(f"  {broken[0][:300]!r}  <- {text[:120]!r}")
        return 1
    print("no input broke a property")
    return 0


if __name__ == "__main__":
    sys.exit(main())
