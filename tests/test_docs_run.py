"""Every code block of README.md and docs/language.md runs as written, so the documents
cannot drift from the code. Blocks are told apart by their fence's info string:

- ``python``: run in order, one namespace per document, in a scratch directory that
  sees ``examples/`` (paths are written as from the repository root);
- ``strat``: a whole spec, checked like ``stratlang check FILE`` beside the example data
  (``data "data/…"`` is the examples' data), which must pass; ``strat file=NAME``: saved
  as NAME for the console blocks after it, and not required to pass;
- ``strat fragment``: statements shown alone; each statement (with its indented lines) is
  checked inside a minimal spec that supplies what it needs (a response, a feature);
- ``console``: ``$ stratlang …`` commands run in that directory, their output (stderr and
  stdout) compared with the block's text, ``…`` matching anything within a line;
- ``sh`` and ``text``: shell recipes, synopses and outputs that cannot run here (they
  need a cluster, or are the test itself); each one is listed in NOT_RUN with why, so a
  new block cannot slip out of the test.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from stratlang.cli import main as cli_main
from stratlang.spec import compile_spec

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ["README.md", "docs/language.md"]
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```\s*$", re.M | re.S)

# (document, first line of the block) → why it is not run
NOT_RUN = {
    ("README.md", "make demo    # create .venv, install, fit the bundled examples: separate vs "
                  "stratified vs common"): "the two commands that run this test",
    ("README.md", "stratlang --version                                 # stratlang X.Y.Z"):
        "a synopsis of the commands",
    ("README.md", "dask scheduler --port 8786                                   # on the "
                  "scheduler machine"): "needs a Dask cluster on several machines",
    ("README.md", "grammar/      the lark grammar (installed as stratlang.grammar)"):
        "the repository's layout",
    ("docs/language.md", "m.strat:3:1: error[S209]: backend 'admm' would need at least 80.5 GiB for "
                         "K = 30,000 × 30,000 = 900,000,000 strata × 1 parameter each; this "
                         "machine has 23.5 GiB"): "the machine's memory differs",
    ("docs/language.md", "Σ_k ℓ_k(θ_k) + Σ_terms λ r(θ_k) + Σ_factors (γ_a / 2) Σ_{edges (i,j) "
                         "of a} w_ij ‖θ_i − θ_j‖²"): "a formula",
    ("docs/language.md", "Σ_i [ ℓ(X_i, Y_i, QᵀZ_i) + λψ(QᵀZ_i) + γ Σ_{j ∈ B_r(i)} (ρ_φ(U_i, "
                         "U_j) − ‖Z_i − Z_j‖)² ] + ν‖φ − 1‖²"): "a formula",
}


@dataclass(frozen=True)
class Block:
    document: str
    line: int
    kind: str  # the info string's first word
    options: dict[str, str]
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0]

    def __str__(self) -> str:
        return f"{self.document}:{self.line}"


def blocks(document: str) -> list[Block]:
    text = (ROOT / document).read_text(encoding="utf-8")
    out = []
    for match in FENCE.finditer(text):
        words = match.group(1).split()
        kind = words[0] if words else ""
        options = dict(w.split("=", 1) if "=" in w else (w, "") for w in words[1:])
        out.append(Block(document, text.count("\n", 0, match.start()) + 1, kind, options,
                         match.group(2)))
    return out


ALL = [b for d in DOCUMENTS for b in blocks(d)]


def test_every_block_is_run_or_listed():
    kinds = {"python", "strat", "console", "sh", "text"}
    assert all(b.kind in kinds for b in ALL), [str(b) for b in ALL if b.kind not in kinds]
    unlisted = [str(b) for b in ALL if b.kind in ("sh", "text")
                and (b.document, b.first_line) not in NOT_RUN]
    assert not unlisted, f"blocks neither run nor listed in NOT_RUN: {unlisted}"
    stale = [key for key in NOT_RUN
             if not any((b.document, b.first_line) == key for b in ALL)]
    assert not stale, f"NOT_RUN lists blocks that are gone: {stale}"


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A directory that sees the repository's examples (and their data as data/)."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / "data").symlink_to(ROOT / "examples" / "data")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_cli(arguments: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status = cli_main(arguments)
    return status, err.getvalue() + out.getvalue()


def matches(expected: str, actual: str) -> bool:
    """Line by line; '…' in an expected line matches any text."""
    want, got = expected.rstrip("\n").split("\n"), actual.rstrip("\n").split("\n")
    if len(want) != len(got):
        return False
    for pattern, line in zip(want, got, strict=True):
        regex = ".*".join(re.escape(piece) for piece in pattern.split("…"))
        if not re.fullmatch(regex, line):
            return False
    return True


def fragment_units(text: str) -> list[str]:
    """The statements of a fragment block: a line at the margin, with the indented lines
    after it."""
    units: list[str] = []
    for line in text.rstrip("\n").split("\n"):
        if line.startswith((" ", "\t")) and units:
            units[-1] += line + "\n"
        elif line.strip():
            units.append(line + "\n")
    return units


def check_fragment(unit: str) -> None:
    """A statement inside a minimal spec: a response unless it is one, a feature for a
    personalized model and a graph for a basis (which need them)."""
    def has(keyword: str) -> bool:
        return re.search(rf"^\s*{keyword}\b", unit, re.M) is not None

    spec = unit if has("response") else "response y ~ squared\n" + unit
    if has("personalize") and not has("features"):
        spec += "features x\n"
    if has("basis") and not has("stratify"):
        spec += "stratify s ~ path\n"
    compile_spec(spec, "<fragment>", check_files=False)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("document", DOCUMENTS)
def test_document_runs_as_written(document, scratch):
    namespace: dict = {"__name__": "__main__"}  # blocks run as a script (its guards too)
    for block in blocks(document):
        where = f"{block} ({block.first_line[:60]!r})"
        if block.kind == "python":
            try:
                exec(compile(block.text, where, "exec"), namespace)
            except Exception as err:
                raise AssertionError(f"{where}: {type(err).__name__}: {err}") from err
        elif block.kind == "strat" and "fragment" in block.options:
            for unit in fragment_units(block.text):
                try:
                    check_fragment(unit)
                except Exception as err:
                    raise AssertionError(f"{where}: {unit!r}: {err}") from err
        elif block.kind == "strat":
            name = block.options.get("file") or f"block{block.line}.strat"
            (scratch / name).write_text(block.text, encoding="utf-8")
            if "file" not in block.options:
                status, output = run_cli(["check", name])
                assert status == 0, f"{where}: {output}"
        elif block.kind == "console":
            lines = block.text.rstrip("\n").split("\n")
            commands = [i for i, line in enumerate(lines) if line.startswith("$ ")]
            for n, start in enumerate(commands):
                end = commands[n + 1] if n + 1 < len(commands) else len(lines)
                words = shlex.split(lines[start][2:])
                assert words[0] == "stratlang", f"{where}: only stratlang commands run"
                status, output = run_cli(words[1:])
                expected = "\n".join(lines[start + 1:end])
                assert matches(expected, output), (
                    f"{where}: `{lines[start][2:]}` printed:\n{output}\nthe document shows:\n"
                    f"{expected}")
    assert os.getcwd() == str(scratch)


def test_count_of_blocks_run():
    """The closing note of issue 15 reports these counts."""
    run = [b for b in ALL if b.kind in ("python", "strat", "console")]
    assert len(run) >= 20 and len(ALL) - len(run) == len(NOT_RUN)
