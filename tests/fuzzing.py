"""The fuzzer of the language front end, shared by tests/test_fuzz.py (a short profile in
``make test``) and tests/fuzz_campaign.py (the long profile, ``make fuzz``).

Inputs come from three sources — the example specs, the canonical text of random checked
models, and a grammar-aware soup of statements built from the registries' own names —
and are then mutated: characters flipped, spans deleted or doubled, tokens inserted,
text cut short, every Unicode line and paragraph separator, control characters, NUL, a
byte-order mark, CRLF, tabs, huge numbers, deep brackets, long lines, digits of other
scripts, line breaks hidden in comments, a statement repeated thousands of times; in
file mode, bytes flipped. The :class:`stratlang.Spec` builder is fuzzed apart, with
hostile arguments (:func:`builder_calls`). Each input goes through the entry points of ``stratlang check``: the
text alone, the text placed beside the example data (its files read and its data bound),
or the command line itself on a file. :func:`outcome` classifies what happened and
:func:`problems` lists every property the outcome breaks.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import signal
import time
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

from stratlang.backends import BACKENDS
from stratlang.backends.base import bind_family
from stratlang.cli import main as cli_main
from stratlang.kinds import DISTANCES, GRAPHS, LOSSES, REGULARIZERS, TRANSFORMS
from stratlang.language.codes import CODES
from stratlang.language.errors import SHOWN_DIAGNOSTICS, SpecError, StratlangError
from stratlang.language.personalize import PERSONALIZE_OPTIONS
from stratlang.language.syntax import STATEMENT_KEYWORDS
from stratlang.spec import compile_spec, to_text

from .strategies import models

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EXAMPLE_DATA = EXAMPLES / "data"
EXAMPLE_SPECS = {p.name: p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.glob("*.strat"))}
TIME_LIMIT = 10.0  # seconds one input may take, binding the example data included

# characters Python's str.splitlines() breaks at but the grammar does not (besides '\n')
SEPARATORS = ["\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
CONTROLS = [chr(c) for c in range(0x20) if chr(c) not in "\n"] + ["\x7f"]
ODD = ["\ufeff", "\u200b", "\u202e", "\u0301", "é", "λ", "漢", "😀", "\ufffd", "\xa0"]
NUMBERS = ["0", "-1", "1e15", "1e16", "-1e16", "1e308", "1e999", "9" * 40, "9" * 4000,
           "1.2.3", "1e", ".5", "-.5e-3", "0..0", "1..1000000000", "2..1 step 0",
           "1..10 step -1", "nan", "inf", "-0", "007", "1_000"]
# digits that Python reads as numbers (int('٥') == 5) but a spec must refuse
FOREIGN_DIGITS = ["٥", "٠", "۳", "१", "১", "๓", "１", "０", "𝟗"]
# a statement that must not vanish into a comment behind a hidden break
HIDDEN_STATEMENT = "stratify hidden ~ path weight 5"
PUNCTUATION = ["~", "(", ")", "[", "]", "{", "}", ",", "=", "*", ":", "..", "+", "-", '"',
               "#", "\\\n", "\n", "step", "weight", "nodes", "exclude", "offset", "given",
               "where", "and", "in", "==", "!="]


def vocabulary_tokens() -> list[str]:
    """Every name the language knows: statements, kinds, parameters, options."""
    tokens = list(STATEMENT_KEYWORDS) + PUNCTUATION
    for registry in (LOSSES, REGULARIZERS, GRAPHS, DISTANCES, TRANSFORMS):
        for name in registry.names():
            tokens.append(name)
            tokens.extend(p.name for p in registry[name].params)
    for backend in BACKENDS.entries():
        tokens.append(backend.name)
        tokens.extend(backend.options.names())
    tokens.extend(p.name for p in PERSONALIZE_OPTIONS)
    return sorted(set(tokens))


TOKENS = vocabulary_tokens()
COLUMNS = ["y", "x", "x1", "state", "year", "dem_win", "region", "age", "w", "s",
           "intercept"]
STRINGS = ['"data/elections.csv"', '"data/state_borders.csv"', '"nope.csv"', '""',
           '"' + "a" * 300 + '.csv"', '"data/"', '"/"', '"\\x00"', '"unterminated']

tokens = st.one_of(st.sampled_from(TOKENS), st.sampled_from(COLUMNS),
                   st.sampled_from(NUMBERS), st.sampled_from(STRINGS))


@st.composite
def statement_soup(draw) -> str:
    """Statement-shaped text: a keyword, then tokens the language uses, in any order."""
    lines = []
    for _ in range(draw(st.integers(1, 8))):
        keyword = draw(st.sampled_from(STATEMENT_KEYWORDS))
        words = draw(st.lists(tokens, max_size=12))
        glue = draw(st.sampled_from([" ", "", "  ", "\t"]))
        lines.append(glue.join([keyword, *words]))
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n"]))


@st.composite
def canonical_text(draw) -> str:
    return to_text(draw(models()))


@st.composite
def positions(draw, text: str) -> int:
    return draw(st.integers(0, len(text)))


def _insert(draw, text: str, piece: str) -> str:
    at = draw(positions(text))
    return text[:at] + piece + text[at:]


def _span(draw, text: str) -> tuple[int, int]:
    start = draw(positions(text))
    return start, min(len(text), start + draw(st.integers(0, 40)))


MUTATIONS = {
    "flip": lambda draw, t: _replace_one(draw, t, draw(st.characters(exclude_categories=["Cs"]))),
    "delete": lambda draw, t: (lambda s, e: t[:s] + t[e:])(*_span(draw, t)),
    "double": lambda draw, t: (lambda s, e: t[:e] + t[s:e] + t[e:])(*_span(draw, t)),
    "token": lambda draw, t: _insert(draw, t, " " + draw(tokens) + " "),
    "truncate": lambda draw, t: t[:draw(positions(t))],
    "separator": lambda draw, t: _insert(draw, t, draw(st.sampled_from(SEPARATORS))),
    "separator_lines": lambda draw, t: t.replace("\n", draw(st.sampled_from(SEPARATORS))),
    "control": lambda draw, t: _insert(draw, t, draw(st.sampled_from(CONTROLS))),
    "nul": lambda draw, t: _insert(draw, t, "\x00"),
    "odd_character": lambda draw, t: _insert(draw, t, draw(st.sampled_from(ODD))),
    "bom": lambda draw, t: "\ufeff" + t,
    "crlf": lambda draw, t: t.replace("\n", "\r\n"),
    "tab": lambda draw, t: _insert(draw, t, "\t" * draw(st.integers(1, 3))),
    "tab_indent": lambda draw, t: t.replace("\n", "\n\t"),
    "number": lambda draw, t: _insert(draw, t, " " + draw(st.sampled_from(NUMBERS)) + " "),
    "brackets": lambda draw, t: _insert(draw, t, "(" * draw(st.integers(1, 200))),
    "long_line": lambda draw, t: _insert(draw, t, "x" * draw(st.sampled_from([200, 12_000]))),
    "foreign_digit": lambda draw, t: _foreign_digit(draw, t),
    "comment_separator": lambda draw, t: _at_line_start(
        draw, t, f"# note{draw(st.sampled_from(SEPARATORS))}{HIDDEN_STATEMENT}\n"),
    "repeat_statement": lambda draw, t: _repeat_line(draw, t),
}


def _foreign_digit(draw, text: str) -> str:
    """An ASCII digit replaced by one of another script (or one inserted)."""
    digit = draw(st.sampled_from(FOREIGN_DIGITS))
    places = [i for i, c in enumerate(text) if c.isascii() and c.isdigit()]
    if not places:
        return _insert(draw, text, f" 1{digit} ")
    at = draw(st.sampled_from(places))
    return text[:at] + digit + text[at + 1:]


def _at_line_start(draw, text: str, piece: str) -> str:
    starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
    at = draw(st.sampled_from(starts))
    return text[:at] + piece + text[at:]


def _repeat_line(draw, text: str) -> str:
    """One line repeated many times: the checker stays linear in the statements, and the
    message shows a bounded number of errors."""
    lines = text.split("\n")
    at = draw(st.integers(0, len(lines) - 1))
    times = draw(st.sampled_from([2, 50, 500, 2_000]))
    return "\n".join(lines[:at] + [lines[at]] * times + lines[at + 1:])


def _replace_one(draw, text: str, char: str) -> str:
    if not text:
        return char
    at = draw(st.integers(0, len(text) - 1))
    return text[:at] + char + text[at + 1:]


@st.composite
def mutated(draw, base: st.SearchStrategy[str]) -> tuple[str, tuple[str, ...]]:
    """(text, the mutations applied) from a base text."""
    text = draw(base)
    applied = draw(st.lists(st.sampled_from(sorted(MUTATIONS)), max_size=4))
    for name in applied:
        text = MUTATIONS[name](draw, text)
    return text, tuple(applied)


def spec_texts() -> st.SearchStrategy[tuple[str, tuple[str, ...]]]:
    """Texts from every source, mutated zero or more times."""
    bases = st.one_of(st.sampled_from(list(EXAMPLE_SPECS.values())), canonical_text(),
                      statement_soup())
    return mutated(bases)


@st.composite
def spec_files(draw) -> bytes:
    """A spec file's bytes: an example or soup, mutated as text, then bytes flipped."""
    text, _ = draw(mutated(st.one_of(st.sampled_from(list(EXAMPLE_SPECS.values())),
                                     statement_soup())))
    data = bytearray(text.encode("utf-8"))
    for _ in range(draw(st.integers(0, 3))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


# ---------------------------------------------------------------- running and judging

@dataclass
class Outcome:
    kind: str  # 'accepted', 'spec error', 'data error', 'other error', 'bug', 'timeout'
    seconds: float
    message: str = ""
    diagnostics: list = field(default_factory=list)
    model: object = None


class _Timeout(BaseException):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    """Interrupts the body after ``seconds`` (main thread, POSIX): a hang becomes an
    outcome, not a stuck test run."""
    def stop(signum, frame):
        raise _Timeout()
    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_text(text: str, with_data: bool):
    """What ``stratlang check`` does with a spec's text: parse and check it; ``with_data``:
    as a file beside the example data, its files read and its data bound."""
    filename = str(EXAMPLES / "fuzzed.strat") if with_data else "<fuzz>"
    model = compile_spec(text, filename)
    if with_data and model.data is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bind_family(model, None, None)
    return model


def outcome(text: str, with_data: bool = False) -> Outcome:
    start = time.perf_counter()
    try:
        with time_limit(TIME_LIMIT):
            model = check_text(text, with_data)
    except _Timeout:
        return Outcome("timeout", time.perf_counter() - start)
    except SpecError as err:
        return Outcome("spec error", time.perf_counter() - start, err.format(),
                       err.diagnostics)
    except StratlangError as err:
        kind = "data error" if type(err).__name__ == "DataError" else "other error"
        return Outcome(kind, time.perf_counter() - start, str(err))
    except Exception as err:
        return Outcome("bug", time.perf_counter() - start, f"{type(err).__name__}: {err}")
    return Outcome("accepted", time.perf_counter() - start, model=model)


ESCAPED = -1  # CliRun.status when an exception left main (no exit status at all)


@dataclass
class CliRun:
    status: int | None  # None: stopped at the time limit; ESCAPED: an exception left main
    stderr: str
    seconds: float
    stdout: str = ""
    escaped: str = ""  # the exception that left main, in words

    def crash(self, allowed: tuple[int, ...] = (0, 1, 2)) -> str | None:
        """Why this (finished) run is a bug, in words: an exception that left main, a
        traceback or an internal error on either stream, or an exit status outside
        ``allowed``; None when it is not one."""
        if self.escaped:
            return f"escaped main: {self.escaped}"
        said = self.stderr + self.stdout
        if "internal error" in said or "Traceback" in said or self.status not in allowed:
            return f"exit {self.status}: {said[-2000:]}"
        return None


def run_cli(argv: list[str], limit: float = TIME_LIMIT) -> CliRun:
    """The command line in this process, as a user runs it: its exit status and standard
    error (standard output kept in ``stdout``, warnings silenced), stopped after ``limit``
    seconds."""
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    escaped = ""
    try:
        with time_limit(limit), contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            status: int | None = cli_main(argv)
    except _Timeout:
        status = None
    except (Exception, SystemExit) as error:  # main must turn every failure into a status
        status, escaped = ESCAPED, f"{type(error).__name__}: {error}"
    return CliRun(status, err.getvalue(), time.perf_counter() - start, out.getvalue(),
                  escaped)


def write_fit_case(directory: Path, spec: str, frame, files: dict[str, str] | None = None
                   ) -> Path:
    """The case's spec (``m.strat``), data (``d.csv``) and other files in ``directory``,
    emptied first so that nothing the last case wrote (a fit's output) is read as this
    one's; the spec's path."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.iterdir():
        stale.unlink()
    spec_path = directory / "m.strat"
    spec_path.write_text(spec)
    frame.to_csv(directory / "d.csv", index=False)
    for name, text in (files or {}).items():
        (directory / name).write_text(text)
    return spec_path


def cli_outcome(data: bytes, directory: Path) -> Outcome:
    """``stratlang check FILE`` on a spec file's bytes, as a user runs it."""
    path = directory / "fuzzed.strat"
    path.write_bytes(data)
    run = run_cli(["check", str(path)])
    if run.status is None:
        return Outcome("timeout", run.seconds)
    status, seconds, stderr = run.status, run.seconds, run.stderr
    if crash := run.crash((0, 1)):
        return Outcome("bug", seconds, crash)
    return Outcome("accepted" if status == 0 else "spec error", seconds, stderr)


# what a terminal shows for one source character in a caret excerpt
def _display(char: str) -> str:
    if char == "\t":
        return " "
    return char if char.isprintable() else "\ufffd"


def _width(char: str) -> int:
    return 2 if unicodedata.east_asian_width(char) in "WF" else 1


def caret_problems(text: str, diagnostic, formatted: str) -> list[str]:
    """Why a diagnostic's position or caret is wrong: its line and column must lie inside
    the text (lines counted at '\\n', as the lexer counts them) and, in the formatted
    message, the caret must stand under the character at that column."""
    span = diagnostic.span
    if span is None:
        return []
    lines = text.removeprefix("\ufeff").split("\n")
    if not 1 <= span.line <= len(lines):
        return [f"line {span.line} outside 1..{len(lines)}"]
    line = lines[span.line - 1].removesuffix("\r")
    if not 1 <= span.column <= len(line) + 1:
        return [f"column {span.column} outside 1..{len(line) + 1} on line {span.line}"]
    if span.end_line == span.line and span.end_column < span.column:
        return [f"span ends (column {span.end_column}) before it starts ({span.column})"]
    rows = formatted.split("\n")
    header = f":{span.line}:{span.column}: {diagnostic.label}: "
    at = next((i for i, r in enumerate(rows) if header in r
               and r.endswith(diagnostic.message.split("\n")[0])), None)
    if at is None or at + 2 >= len(rows) or not rows[at + 2].lstrip().startswith("^"):
        return []  # no excerpt shown (an empty line that is not the error's start)
    shown, carets = rows[at + 1][4:], rows[at + 2][4:]
    offset = len(carets) - len(carets.lstrip(" "))
    # the character of ``shown`` at display offset ``offset``
    column, index = 0, 0
    while index < len(shown) and column < offset:
        column += _width(shown[index])
        index += 1
    if column != offset:
        return [f"caret at display column {offset} falls inside a wide character"]
    if span.column == len(line) + 1:
        return [] if index >= len(shown.rstrip("…")) else [
            f"caret for the end of line {span.line} stands under {shown[index]!r}"]
    expected = _display(line[span.column - 1])
    if index >= len(shown) or shown[index] != expected:
        under = shown[index] if index < len(shown) else "nothing"
        return [f"caret stands under {under!r}, not under {expected!r} (line {span.line}, "
                f"column {span.column})"]
    return []


_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*')
_HIDDEN_BREAK = re.compile("\r(?!$)|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def must_refuse(text: str) -> str | None:
    """What makes a text one the checker must refuse whatever else it holds, or None: a
    digit of another script outside strings and comments, a line break hidden in a
    comment."""
    outside = []
    last = 0
    for match in _STRING_OR_COMMENT.finditer(text):
        piece = match.group(0)
        if piece.startswith("#") and _HIDDEN_BREAK.search(piece):
            return f"a line break hidden in the comment {piece[:60]!r}"
        outside.append(text[last:match.start()])
        last = match.end()
    outside.append(text[last:])
    digit = next((c for c in "".join(outside) if c.isdecimal() and not c.isascii()), None)
    return f"the non-ASCII digit {digit!r}" if digit else None


def problems(text: str, result: Outcome, with_data: bool = False) -> list[str]:
    """Every property the outcome of checking ``text`` breaks."""
    found = []
    if result.kind in ("bug", "timeout"):
        return [f"{result.kind}: {result.message}"]
    if result.kind == "accepted" and (reason := must_refuse(text)):
        found.append(f"silently accepted {reason}")
    shown = len(re.findall(r": error(?:\[S\d{3}\])?: ", result.message))
    if shown > SHOWN_DIAGNOSTICS or (len(result.diagnostics) > SHOWN_DIAGNOSTICS and (
            f"… and {len(result.diagnostics) - SHOWN_DIAGNOSTICS:,} more" not in result.message)):
        found.append(f"{len(result.diagnostics)} errors, {shown} shown: not capped at "
                     f"{SHOWN_DIAGNOSTICS} with the count of the rest")
    for diagnostic in result.diagnostics[:SHOWN_DIAGNOSTICS]:
        found += caret_problems(text, diagnostic, result.message)
    found += [f"diagnostic without a registered code: {d.message}" for d in result.diagnostics
              if d.code not in CODES]
    again = outcome(text, with_data)
    if (again.kind, again.message, again.model) != (result.kind, result.message, result.model):
        found.append(f"not deterministic: {result.kind} then {again.kind}")
    if result.kind == "accepted":
        canonical = to_text(result.model)
        round_trip = compile_spec(canonical, "<canonical>", check_files=False)
        if round_trip != result.model:
            found.append(f"canonical text does not round-trip:\n{canonical}")
    return found


# ---------------------------------------------------------------- the Spec builder

# arguments the builder must refuse or write faithfully, never turn into other statements
# or into labels such as "None"
HOSTILE_TEXT = ["y", "x", "g", "u", "squared", "huber", "path", "l1", "sum_squares", "abs",
                "cvxpy", "drop", "log(u)", "x:u", "y\nweights w", "y\rbasis 3", "x # c",
                "x \\", "x\u2028y", "y\x85z", "x\x0bz", "", " ", "a b", "1x", "x.y",
                '"q"', "g == 1", 'g == "a#b"', "g == 1\nbasis 3"]
HOSTILE_VALUES = [None, math.nan, math.inf, -math.inf, True, False, 0, 1, -1, 2.5, 1e300, "a",
                  "a\nb", "#", "None", [1, 2], [[1, 2]], (1, 2), {1, 2}, {"a": 1}, 1 + 2j,
                  b"x", range(3), range(0), [None], [math.nan, 1], [True], ["a", "a"]]
GOOD_TEXT = ["y", "x", "g", "u", "squared", "huber", "path", "cycle", "l1", "sum_squares",
             "abs", "drop", "log(u)", "x:u"]
GOOD_VALUES = [0, 1, 2.5, 10, "a", [1, 10], range(3), ["a", "b", 3]]


def _call(method: str, positional: tuple, keywords: dict | None = None
          ) -> st.SearchStrategy:
    """(method, positional arguments, keyword arguments) of one builder call; each keyword
    given or left out."""
    return st.tuples(st.just(method), st.tuples(*positional),
                     st.fixed_dictionaries({}, optional=keywords or {}))


def _builder_call(texts: st.SearchStrategy, values: st.SearchStrategy) -> st.SearchStrategy:
    """One call of any builder method, its arguments drawn from ``texts`` and ``values``."""
    columns = st.one_of(texts, st.lists(texts, max_size=3).map(tuple), values)
    options = st.dictionaries(texts, values, max_size=2)
    return st.one_of(
        _call("response", (columns, texts), {"offset": texts, "where": st.one_of(texts, options)}),
        _call("features", (st.one_of(texts, values),)),
        _call("regularize", (texts, values), {"exclude": st.one_of(texts, values),
                                              "where": st.one_of(texts, options)}),
        _call("stratify", (columns, texts), {"weight": values, "nodes": values}),
        _call("distance", (columns, texts)),
        _call("weights", (st.one_of(texts, values),)),
        _call("missing", (texts,)),
        _call("basis", (values,)),
        _call("data", (st.one_of(texts, values),)),
        st.tuples(st.just("solver"), st.tuples(texts), options),
        st.tuples(st.just("personalize"), st.just(()), options),
    )


def builder_calls() -> st.SearchStrategy[tuple[object, list]]:
    """A model name and a list of builder calls after ``response("y", "squared")``: each
    call with good arguments only, or with hostile ones among them."""
    good = _builder_call(st.sampled_from(GOOD_TEXT), st.sampled_from(GOOD_VALUES))
    hostile = _builder_call(st.sampled_from(GOOD_TEXT + HOSTILE_TEXT),
                            st.sampled_from(GOOD_VALUES + HOSTILE_VALUES))
    first = st.just(("response", ("y", "squared"), {}))
    return st.tuples(st.one_of(st.sampled_from(GOOD_TEXT), st.sampled_from(HOSTILE_TEXT),
                               st.sampled_from(HOSTILE_VALUES)),
                     st.tuples(first, st.lists(st.one_of(good, good, hostile), max_size=5))
                     .map(lambda calls: [calls[0], *calls[1]]))


def _flat(value: object) -> list[object]:
    """A call's argument values, containers opened."""
    if isinstance(value, dict):
        return [x for pair in value.items() for v in pair for x in _flat(v)]
    if isinstance(value, list | tuple | set | frozenset):
        return [x for v in value for x in _flat(v)]
    return [value]


def _leaked(statement: str, args: tuple, kwargs: dict) -> str | None:
    """The Python text of a value with no spec form (None, NaN, 1+2j, b'x') written into a
    statement, when no string argument holds that text: a value the builder took silently."""
    values = _flat(args) + _flat(kwargs)
    strings = " ".join(v for v in values if isinstance(v, str))
    for value in values:
        if value is None or isinstance(value, complex | bytes) or (
                isinstance(value, float) and not math.isfinite(value)):
            shown = str(value)
            if shown in statement and shown not in strings:
                return shown
    return None


def _label_has_spec_form(label: object) -> bool:
    if isinstance(label, bool):
        return False
    return isinstance(label, str) or (isinstance(label, int | float) and math.isfinite(label))


def builder_outcome(name: object, calls: list) -> tuple[str, list[str]]:
    """(the outcome class, every property broken) of a sequence of builder calls. Broken:
    an exception that is not a StratlangError and a ValueError, a call that adds other
    statements than its own, a node label written for a value with no spec form, a checked
    model whose canonical text does not build it again. A refused argument is an 'other
    error' (the calls after it still run), a refused model a 'spec error'."""
    from stratlang import Spec
    from stratlang.language.syntax import parse_recovering

    refused = False
    try:
        spec = Spec(name)  # type: ignore[arg-type]
    except StratlangError as err:
        return "other error", [] if isinstance(err, ValueError) else [f"not a ValueError: {err!r}"]
    except Exception as err:
        return "bug", [f"bug: Spec({name!r}): {type(err).__name__}: {err}"]
    for method, args, kwargs in calls:
        before = spec.source
        try:
            getattr(spec, method)(*args, **kwargs)
        except StratlangError as err:
            if not isinstance(err, ValueError):
                return "bug", [f"not a ValueError: {err!r}"]
            refused = True
            continue
        except Exception as err:
            return "bug", [f"bug: {method}{args!r} {kwargs!r}: {type(err).__name__}: {err}"]
        nodes = kwargs.get("nodes")
        if method == "stratify" and isinstance(nodes, list | tuple) and not all(
                _label_has_spec_form(v) for v in nodes):
            return "accepted", [f"silently accepted the node labels {nodes!r}"]
        added = "\n".join(set(spec.source.split("\n")) - set(before.split("\n")))
        if leaked := _leaked(added, args, kwargs):
            return "accepted", [f"{method}{args!r} {kwargs!r} wrote {leaked!r}:\n{added}"]
    source = spec.source
    parsed = parse_recovering(source, "<built>")
    continued = sum(line.startswith("    ") for line in source.split("\n"))  # (wrapped)
    if not parsed.diagnostics and len(parsed.spec.statements) != source.count("\n") - continued:
        return "accepted", [f"a call added statements of its own:\n{source}"]
    try:
        model = spec.model()
    except StratlangError:
        return ("other error" if refused else "spec error"), []
    except Exception as err:
        return "bug", [f"bug: model(): {type(err).__name__}: {err}\n{source}"]
    if Spec.from_model(model).model() != model:
        return "accepted", [f"the canonical text does not build the model again:\n{model.text}"]
    return ("other error" if refused else "accepted"), []


def report_campaign(by_loss: dict, counts, kinds: list[str], failures: list[tuple[str, str]],
                    seed: int, seconds: float, notes: tuple[str, ...] = ()) -> int:
    """A campaign's outcomes as a markdown table (a row per loss, then all), its notes, time
    and seed, and its first failures; the exit status (1 when any case failed)."""
    print("| loss | " + " | ".join(kinds) + " | all |")
    print("|---|" + "---|" * (len(kinds) + 1))
    for loss in sorted(by_loss):
        row = by_loss[loss]
        print(f"| {loss} | " + " | ".join(f"{row[k]:,}" for k in kinds)
              + f" | {sum(row.values()):,} |")
    print("| all | " + " | ".join(f"{counts[k]:,}" for k in kinds)
          + f" | {sum(counts.values()):,} |")
    for note in notes:
        print(note)
    print(f"{seconds:.0f} s, seed {seed}")
    for text, what in failures[:20]:
        print(f"\n{what}\n{text}")
    return 1 if failures else 0
