"""The fuzzer of the files a spec names, shared by tests/test_fuzz.py (short profile) and
tests/fuzz_campaign.py (its 'data files' share, ``make fuzz``).

A case is a small good table (columns y, x, g, c) made odd one way or several: ragged rows
(a field or two short or long, up to 200,000 extra), a header that repeats a name, labels
with Unicode spaces or non-ASCII digits, control characters and terminal escapes in a
header, values that are no real numbers (complex, dates, words, 1e200), true/false
outcomes, a byte-order mark, CRLF or lone CR line ends, NUL and bytes that are not UTF-8,
edge and tree files with a fourth column, a self-loop or an edge given twice, a file past
the size limit (sparse: no disk used), and places that are no file (a FIFO, a directory,
a link to /dev/zero). Each case knows what ``stratlang check`` must answer when that is
certain (refused, or accepted); :func:`file_problems` lists the properties an outcome
breaks: no internal error, no hang, the known answer, no raw control character on the
terminal.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

from stratlang.language import limits

from .fuzzing import Outcome, run_cli

HEADER = ["y", "x", "g", "c"]
SPECS = {
    "path": 'data "d.csv"\nresponse y ~ squared\nfeatures x\nstratify g ~ path\n',
    "edges": 'data "d.csv"\nresponse y ~ squared\nfeatures x\nstratify c ~ edges("e.csv")\n',
    "tree": 'data "d.csv"\nresponse y ~ squared\nfeatures x\nstratify c ~ tree("e.csv")\n',
    "bernoulli": 'data "d.csv"\nresponse y ~ bernoulli\nstratify g ~ path\n',
}
EDGES = "source,target\na,b\nb,c\n"
ODD_SPACES = ["\xa0", "\u2003", "\u2009", "\u3000", "\u200b", "\ufeff"]
ODD_DIGITS = ["\u0661", "\uff11", "\u0967", "1_0"]
CONTROLS = ["\x1b[2J", "\x1b]0;title\x07", "\x07", "\x08", "\r", "\x00", "\x85", "\u2028",
            "\x7f", "\t"]
NOT_REAL = ["1+2j", "2020-01-01", "12:30", "abc", "1e200", "-1e999", "nan", "inf", "0x10",
            "\u0661\u0662"]


@dataclass
class FileCase:
    spec: str
    files: dict[str, bytes | str]  # name → bytes, or a kind of place: 'fifo', 'dir', …
    answer: str | None = None  # 'refused', 'accepted', or None: either may be right
    made: list[str] = field(default_factory=list)  # what was done, for the report


@st.composite
def tables(draw) -> list[list[str]]:
    """A good table's rows (header first): y, x numbers; g in 0..3; c in a, b, c."""
    n = draw(st.integers(4, 12))
    rows = [list(HEADER)]
    for i in range(n):
        rows.append([str(draw(st.integers(-9, 9))), str(draw(st.integers(-9, 9))),
                     str(i % 4), "abc"[i % 3]])
    return rows


def _text(rows: list[list[str]], end: str = "\n") -> str:
    return end.join(",".join(r) for r in rows) + end


def _ragged(draw, case: FileCase, rows):
    at = draw(st.integers(1, len(rows) - 1))
    extra = draw(st.sampled_from([1, 2, 1000, 200_000]))
    if draw(st.booleans()):
        rows[at] = rows[at] + ["1"] * extra
        case.made.append(f"row {at}: {extra} more fields")
    else:
        rows[at] = rows[at][:draw(st.integers(1, len(HEADER) - 1))]
        case.made.append(f"row {at}: fewer fields")
    case.answer = "refused"


def _repeated_header(draw, case: FileCase, rows):
    name = draw(st.sampled_from(HEADER))
    column = HEADER.index(name)
    rows[0].append(name)
    for r in rows[1:]:
        r.append(r[column] if column < len(r) else "0")
    case.made.append(f"header names {name!r} twice")
    case.answer = "refused"


def _odd_label(draw, case: FileCase, rows):
    at = draw(st.integers(1, len(rows) - 1))
    if case.spec == SPECS["edges"] or case.spec == SPECS["tree"]:
        odd = draw(st.sampled_from(ODD_SPACES))
        rows[at][3] = draw(st.sampled_from([rows[at][3] + odd, odd + rows[at][3]]))
        case.answer = "refused"  # (a label with another space is no node of the file)
    else:
        rows[at][2] = draw(st.sampled_from(ODD_DIGITS + [rows[at][2] + s for s in ODD_SPACES]))
    case.made.append(f"row {at}: odd label")


def _control_header(draw, case: FileCase, rows):
    rows[0].append("note" + draw(st.sampled_from(CONTROLS)) + "x")
    for r in rows[1:]:
        r.append("0")
    case.made.append("control character in a header name")


def _not_real(draw, case: FileCase, rows):
    at = draw(st.integers(1, len(rows) - 1))
    rows[at][1] = draw(st.sampled_from(NOT_REAL))
    if case.spec != SPECS["bernoulli"]:  # (bernoulli reads no x)
        case.answer = "refused"
    case.made.append(f"row {at}: x = {rows[at][1]!r}")


def _outcomes(draw, case: FileCase, rows):
    case.spec = SPECS["bernoulli"]
    words = ["true", "false", "TRUE", "False", "1", "0"]
    for r in rows[1:]:
        r[0] = draw(st.sampled_from(words))
    case.answer = "accepted"
    if draw(st.booleans()):
        rows[draw(st.integers(1, len(rows) - 1))][0] = draw(st.sampled_from(["maybe", "2", "-1"]))
        case.answer = "refused"
    case.made.append("bernoulli outcomes as text")


def _edge_file(draw, case: FileCase, rows):
    case.spec = SPECS[draw(st.sampled_from(["edges", "tree"]))]
    odd = draw(st.sampled_from(["column", "loop", "twice", "none"]))
    edges = {"column": "source,target,weight,extra\na,b,1,x\nb,c,1,y\n",
             "loop": "source,target\na,b\nb,c\nc,c\n",
             "twice": "source,target\na,b\nb,c\nb,a\n", "none": EDGES}[odd]
    case.files["e.csv"] = edges
    if odd != "none" and not (odd == "twice" and case.spec == SPECS["edges"]):
        case.answer = "refused"  # (an edge list may join two nodes twice: weights add)
    case.made.append(f"edge file: {odd}")


MUTATIONS = {"ragged": _ragged, "repeated header": _repeated_header, "odd label": _odd_label,
             "control header": _control_header, "not real": _not_real,
             "outcomes": _outcomes, "edge file": _edge_file}


@st.composite
def file_cases(draw) -> FileCase:
    """A data file (and edge file) made odd, or a place that is no file, or a file too
    large to read."""
    kind = draw(st.sampled_from(["table"] * 8 + ["place", "oversized"]))
    case = FileCase(draw(st.sampled_from([SPECS["path"], SPECS["edges"]])), {"e.csv": EDGES})
    if kind in ("place", "oversized"):
        place = (draw(st.sampled_from(["fifo", "dir", "/dev/zero", "/dev/null"]))
                 if kind == "place" else "oversized")
        target = draw(st.sampled_from(["d.csv", "e.csv"]))
        if target == "e.csv":
            case.spec = SPECS[draw(st.sampled_from(["edges", "tree"]))]
        case.files = {"d.csv": _text(draw(tables())), "e.csv": EDGES, target: place}
        case.answer = "refused"
        case.made.append(f"{place} as {target}")
        return case
    rows = draw(tables())
    chosen = draw(st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=1, max_size=3,
                           unique=True))
    if "outcomes" in chosen and "edge file" in chosen:  # (each chooses the spec)
        chosen.remove("edge file")
    # those that choose the spec first, rows cut short last
    order = {"outcomes": 0, "edge file": 0, "ragged": 2}
    for name in sorted(chosen, key=lambda m: order.get(m, 1)):
        answer = case.answer
        MUTATIONS[name](draw, case, rows)
        if answer == "refused":  # refused once, refused for good
            case.answer = "refused"
        elif answer == "accepted" and case.answer != "refused":
            case.answer = None  # a later change may have spoiled what was good
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = _text(rows, end)
    if end == "\r" and case.answer == "refused" and "fewer fields" in " ".join(case.made):
        case.answer = None  # (line ends pandas and the lexer count differently)
    data = draw(st.sampled_from(["", "\ufeff"])).encode() + text.encode("utf-8")
    if draw(st.integers(0, 9)) == 0:  # a byte that is no UTF-8, or a NUL
        at = draw(st.integers(0, len(data) - 1))
        byte = draw(st.sampled_from([b"\xff", b"\x00", b"\xc3"]))
        data = data[:at] + byte + data[at:]
        case.answer = "refused" if byte != b"\x00" else None
        case.made.append(f"byte {byte!r} at {at}")
    case.files["d.csv"] = data
    return case


def _place(directory: Path, name: str, content: bytes | str) -> None:
    path = directory / name
    if content == "fifo":
        os.mkfifo(path)
    elif content == "dir":
        path.mkdir()
    elif content in ("/dev/zero", "/dev/null"):
        path.symlink_to(content)
    elif content == "oversized":
        with open(path, "wb") as big:  # sparse: no disk used
            big.truncate(limits.MAX_FILE_BYTES + 1)
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))


def file_outcome(case: FileCase, directory: Path) -> Outcome:
    """``stratlang check`` on the case's spec beside its files, as a user runs it."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    for name, content in case.files.items():
        _place(directory, name, content)
    (directory / "m.strat").write_text(case.spec)
    try:
        run = run_cli(["check", str(directory / "m.strat")])
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if run.status is None:
        return Outcome("timeout", run.seconds)
    status, seconds, stderr = run.status, run.seconds, run.stderr
    if crash := run.crash((0, 1)):
        return Outcome("bug", seconds, crash)
    return Outcome("accepted" if status == 0 else "data error", seconds, stderr)


def file_problems(case: FileCase, result: Outcome) -> list[str]:
    """Every property the outcome of checking ``case`` breaks."""
    if result.kind in ("bug", "timeout"):
        return [f"{result.kind}: {result.message}"]
    found = []
    if case.answer == "refused" and result.kind == "accepted":
        found.append(f"silently accepted: {', '.join(case.made)}")
    if case.answer == "accepted" and result.kind != "accepted":
        found.append(f"refused good input ({', '.join(case.made)}): {result.message[-500:]}")
    raw = sorted({ch for ch in result.message if not ch.isprintable() and ch != "\n"})
    if raw:
        found.append(f"raw control characters {raw!r} in: {result.message[-500:]!r}")
    return found


def describe(case: FileCase) -> str:
    """The case in a line, for a report."""
    return f"{case.made} answer={case.answer} spec={case.spec!r}"
