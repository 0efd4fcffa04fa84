"""Positioned diagnostics: every user-facing error names file, line and column.

A :class:`Diagnostic` is one problem, optionally tied to a :class:`Span` of a
:class:`Source`; :class:`SpecError` carries *all* the diagnostics found in one pass,
sorted by position, and prints them with carets under the offending text.
"""

from __future__ import annotations

import bisect
import difflib
import re
import sys
import unicodedata
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from types import FrameType

SHOWN_DIAGNOSTICS = 50  # a message shows this many diagnostics, then says how many more
STDIN = "<stdin>"  # the name of a spec read from standard input (the command line's '-')


@dataclass(frozen=True)
class Source:
    """The text of a spec and the name it is reported under."""

    text: str
    filename: str = "<spec>"

    @property
    def directory(self) -> Path:
        """Where relative paths in the spec (data, graph and distance files) start: next to
        a spec file; the working directory for text (``<spec>``, ``<stdin>``)."""
        named = not self.filename.startswith("<")
        return Path(self.filename).resolve().parent if named else Path.cwd()

    @property
    def checks_files(self) -> bool:
        """Whether the files the spec names are checked when it is compiled: a spec file's
        and standard input's (whose files the command line reads at once), not text given
        from Python (which may name files that exist only when it is fitted)."""
        return not self.filename.startswith("<") or self.filename == STDIN

    @cached_property
    def _line_starts(self) -> list[int]:
        """The offset where each line starts, found once (every diagnostic asks for a line:
        splitting the text each time made many diagnostics quadratic)."""
        return [0, *(m.end() for m in re.finditer("\n", self.text))]

    def line(self, number: int) -> str:
        """Line ``number`` as the lexer counts lines: only '\\n' ends one (a form feed or
        U+2028 does not), and a '\\r' before it belongs to the break."""
        starts = self._line_starts
        if not 0 < number <= len(starts):
            return ""
        end = starts[number] - 1 if number < len(starts) else len(self.text)
        return self.text[starts[number - 1]:end].removesuffix("\r")

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column) of an offset, both 1-based, lines counted at '\\n'."""
        line = bisect.bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1

    def offset(self, line: int, column: int) -> int:
        """The offset of a (line, column), both 1-based."""
        return self._line_starts[line - 1] + column - 1


@dataclass(frozen=True)
class Span:
    """A region of a source; lines and columns are 1-based, ``end_column`` exclusive."""

    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True)
class Diagnostic:
    message: str
    span: Span | None = None
    source: Source | None = field(default=None, compare=False)
    hint: str | None = None
    cli_hint: str | None = field(default=None, compare=False)  # the hint for the command
    # line, where it names a flag (--unseen hub) instead of a Python argument (unseen='hub')
    code: str = ""  # its stable code (stratlang/language/codes.py), e.g. "S104"

    def for_cli(self) -> Diagnostic:
        """This diagnostic as the command line shows it (its ``cli_hint``, when it has one)."""
        return replace(self, hint=self.cli_hint) if self.cli_hint else self

    def sort_key(self) -> tuple[int, int]:
        return (self.span.line, self.span.column) if self.span else (10**9, 0)

    @property
    def label(self) -> str:
        """``error[S104]`` (``error`` for a diagnostic made without a code)."""
        return f"error[{self.code}]" if self.code else "error"

    def format(self) -> str:
        """``file:line:col: error[S104]: message`` then the line and a caret under the span."""
        if self.span is None or self.source is None:
            where = f"{self.source.filename}: " if self.source else ""
            text = f"{where}{self.label}: {self.message}"
        else:
            s = self.span
            text = f"{self.source.filename}:{s.line}:{s.column}: {self.label}: {self.message}"
            line = self.source.line(s.line)
            if line or s.column == 1:
                end = s.end_column if s.end_line == s.line else len(line) + 1
                shown, before, width = excerpt(line, s.column, max(end, s.column + 1))
                text += f"\n    {shown}\n    {' ' * before}{'^' * max(1, width)}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text

    def to_dict(self) -> dict:
        out: dict = {"code": self.code, "message": self.message, "hint": self.hint}
        if self.source is not None:
            out["file"] = self.source.filename
        if self.span is not None:
            out.update(line=self.span.line, column=self.span.column,
                       end_line=self.span.end_line, end_column=self.span.end_column)
        return out


def _cell(char: str, at: int) -> tuple[str, int]:
    """A character as a terminal shows it, and its width there: a tab to the next stop of
    8, a control or separator character as '\\ufffd', a wide (CJK) character two."""
    if char == "\t":
        pad = 8 - at % 8
        return " " * pad, pad
    if not char.isprintable():
        return "\ufffd", 1
    return char, 2 if unicodedata.east_asian_width(char) in "WF" else 1


def excerpt(line: str, column: int, end: int, room: int = 100) -> tuple[str, int, int]:
    """(the line as shown, the caret's offset, the caret's width) for the characters
    ``column`` .. ``end`` − 1 (1-based): tabs expanded, control characters made visible,
    and a long line cut to about ``room`` columns around the span, with '…' where cut."""
    first = max(0, min(column - 1, len(line)) - room // 2)
    span_end = max(min(end - 1, column - 1 + room), column)  # a long span: its start only
    last = min(len(line), span_end + room // 4)
    if first <= 10:
        first = 0
    shown, at, before, width = "…" if first else "", 1 if first else 0, 0, 0
    for i in range(first, last):
        cell, size = _cell(line[i], at)
        if i == column - 1:
            before = at
        if column - 1 <= i < min(end - 1, span_end):
            width += size
        shown += cell
        at += size
    if column - 1 >= last:
        before = at
    return shown + ("…" if last < len(line) else ""), before, width


class StratlangError(Exception):
    """Base class of every error stratlang reports to a user. ``cli``: the message as the
    command line says it, where the advice differs (a flag such as ``--weight NAME=VALUE``
    where Python has an argument such as ``weights=``)."""

    def __init__(self, *args: object, cli: str | None = None):
        super().__init__(*args)
        self.cli = cli  # kept when pickled (BaseException pickles __dict__)

    def for_cli(self) -> str:
        return self.cli or str(self)


class SpecError(StratlangError, ValueError):
    """One or more problems in a spec (or in data checked against it), sorted by position."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        super().__init__(self.format())

    def __reduce__(self):  # rebuilt from its diagnostics when it crosses processes (Dask)
        return type(self), (self.diagnostics,)

    def format(self) -> str:
        """The first :data:`SHOWN_DIAGNOSTICS` diagnostics, how many more, and the count."""
        n = len(self.diagnostics)
        body = "\n".join(d.format() for d in self.diagnostics[:SHOWN_DIAGNOSTICS])
        if n > SHOWN_DIAGNOSTICS:
            body += f"\n… and {n - SHOWN_DIAGNOSTICS:,} more"
        return body if n == 1 else f"{body}\n{n:,} errors"

    def for_cli(self) -> str:
        return SpecError([d.for_cli() for d in self.diagnostics]).format()


class DataError(StratlangError, ValueError):
    """Bad data: an unreadable file, or (as :class:`DataSpecError`) data that do not meet
    the spec."""


class NumericalError(StratlangError):
    """A solver failed: infeasible, unbounded, diverged or did not converge."""


class SpecArgumentError(StratlangError, ValueError):
    """An argument given to the :class:`stratlang.Spec` builder that has no spec form (a
    name that is not a name, a line break in text, a value of no spec type)."""


class OptionError(StratlangError, ValueError):
    """An option given from Python or the command line that its owner does not declare,
    or whose value lies outside the declared range."""


class NumericalWarning(UserWarning):
    """A result the solver could not certify to full accuracy (or an iteration limit hit)."""


class DataWarning(UserWarning):
    """Data left out by a policy the spec chose (e.g. ``missing drop``)."""


class TuneWarning(UserWarning):
    """A tuning result to read with care (e.g. the best value at the end of its grid)."""


_PACKAGE = str(Path(__file__).resolve().parents[1])


def warn(message: str, category: type[Warning] = NumericalWarning) -> None:
    """Warns at the caller's line outside stratlang (however deep the call came from)."""
    frame: FrameType | None = sys._getframe(1)
    level = 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


class DataSpecError(SpecError, DataError):
    """Problems of data checked against a spec (a column that is not numeric, a value
    that is no node, a count that is negative, ...): a :class:`DataError`, reported at
    the spec's statements like a :class:`SpecError`."""


class Collector:
    """Gathers diagnostics during a pass so that all of them are reported at once, as
    ``error`` (a :class:`SpecError`, or its data kind)."""

    def __init__(self, source: Source | None, error: type[SpecError] = SpecError):
        self.source = source
        self.error_type = error
        self.diagnostics: list[Diagnostic] = []

    def error(self, message: str, span: Span | None = None, hint: str | None = None,
              cli_hint: str | None = None, *, code: str) -> None:
        self.diagnostics.append(Diagnostic(message, span, self.source, hint, cli_hint,
                                           code=code))

    def raise_if_any(self) -> None:
        if self.diagnostics:
            raise self.error_type(self.diagnostics)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` ; did you mean 'x'?`` for the closest candidate, or the list of choices."""
    choices = sorted(set(candidates))
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    if close:
        return f"; did you mean '{close[0]}'?"
    if len(choices) <= 12:
        return "; expected one of " + ", ".join(f"'{c}'" for c in choices)
    return ""


def describe_rows(labels: Sequence, limit: int = 5) -> str:
    """``rows 3, 17 and 4 more`` — short, but always says how many."""
    shown = ", ".join(str(x) for x in list(labels)[:limit])
    extra = len(labels) - limit
    word = "row" if len(labels) == 1 else "rows"
    return f"{word} {shown}" + (f" and {extra} more" if extra > 0 else "")
