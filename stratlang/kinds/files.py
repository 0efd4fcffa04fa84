"""Reading the files a spec names — data, edge lists, distance tables — through one reader,
so that every problem with a file reads the same way: not found, empty, a header and no
rows, ragged rows, not UTF-8, each naming the file and its line. (A byte-order mark is
no problem: it is not part of the header.) What a row must hold is checked by whoever
reads it, naming the line too."""

from __future__ import annotations

import csv
import io
import re
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from ..language.reading import FileProblem, path_problem, printable, read_text, shown, size_problem

__all__ = ["FileProblem", "line_numbers", "path_problem", "read_csv", "read_parquet", "read_text"]


_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_UNCLOSED = re.compile(r"EOF inside string starting at row (\d+)")
_PANDAS_PREFIX = re.compile(r"^(Error tokenizing data\. )?(C error: )?")


def at_line(name: str, line: int) -> str:
    """Where a message points: "data file 'd.csv' line 4", "line 4 of the data on standard
    input" (a name that is a phrase reads wrong with the line number after it)."""
    return f"line {line} of {name}" if name.startswith("the ") else f"{name} line {line}"


def _fields_differ(name: str, line: int, saw: int, header: int) -> str:
    return (f"{at_line(name, line)} has {saw} field{'s' if saw != 1 else ''} where the "
            f"header has {header}")


class _Unclosed(Exception):
    def __init__(self, line: int):
        self.line = line


def _unclosed_quote(name: str, line: int) -> str:
    return (f"{at_line(name, line)} opens a quoted field that is never closed (a '\"' without "
            "its partner)")


def _pandas_reason(err: Exception) -> str:
    """pandas's message less the parser's internal wording."""
    reason = _PANDAS_PREFIX.sub("", str(err)).strip()
    return reason[:1].lower() + reason[1:] if reason else type(err).__name__


def read_csv(path: Path, what: str, *, need_rows: bool = True, **options: Any) -> pd.DataFrame:
    """A CSV file as a frame (``options`` go to pandas.read_csv); raises FileProblem. The
    rows are counted before pandas builds the table: a row with more or fewer fields than
    the header, or a header that repeats a name, is refused in time linear in the file
    (a row of a million fields would otherwise become a million columns)."""
    return csv_table(read_text(path, what), f"{what} '{shown(path)}'", need_rows=need_rows,
                     **options)


def csv_table(text: str, name: str, *, need_rows: bool = True, **options: Any) -> pd.DataFrame:
    """A CSV text as a frame, checked as :func:`read_csv` checks a file (``name``: how
    messages call it, e.g. "data file 'd.csv'" or "the data on standard input")."""
    comment = options.get("comment")
    try:
        header, content, ragged = _scan(text, comment, bool(options.get("skipinitialspace")))
    except _Unclosed as quote:
        raise FileProblem(_unclosed_quote(name, quote.line)) from None
    if not content:
        raise FileProblem(f"{name} is empty")
    if ragged is not None:
        line, saw = ragged
        raise FileProblem(_fields_differ(name, line, saw, len(header or ())))
    if header is not None:
        _refuse_repeated_names(header, name, content[0])
    try:
        with warnings.catch_warnings():
            # a row longer than the header would silently become the index (every value
            # shifted one column) or be cut: index_col=False and the warning as an error
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(io.StringIO(text), **{"index_col": False, **options})
    except pd.errors.ParserWarning:  # (rows the scan could not count: a huge quoted field)
        raise FileProblem(f"{name} has a row with more fields than the header") from None
    except pd.errors.ParserError as err:
        found = _FIELDS.search(str(err))
        if found:
            header_fields, row, fields = found.groups()  # (text: numbers as pandas wrote them)
            raise FileProblem(_fields_differ(name, int(row), int(fields),
                                             int(header_fields))) from None
        unclosed = _UNCLOSED.search(str(err))
        if unclosed and int(unclosed.group(1)) < len(content):
            raise FileProblem(_unclosed_quote(name, content[int(unclosed.group(1))])) from None
        raise FileProblem(f"{name} is not a CSV table: {_pandas_reason(err)}") from None
    except (pd.errors.EmptyDataError, ValueError) as err:
        raise FileProblem(f"{name} is not a CSV table: {_pandas_reason(err)}") from None
    if need_rows and frame.empty:
        raise FileProblem(f"{name} has a header but no rows")
    if len(content) == len(frame) + 1:  # (not so when a quoted field spans lines)
        frame.attrs["line_numbers"] = tuple(content[1:])  # (pandas compares attrs with ==)
    return frame


def _scan(text: str, comment: str | None, skip_space: bool
          ) -> tuple[list[str] | None, list[int], tuple[int, int] | None]:
    """(the header's names, the lines that hold a row — the header's first — and (line,
    fields) of the first row whose length differs from the header's, or None), read as
    pandas reads the text: blank lines skipped, ``comment`` to the end of a line. Texts
    without quotes are split at commas (fast); others go through the csv module. The
    header is None when the csv module cannot read the text (pandas then judges it)."""
    if '"' in text or text.count("\r") != text.count("\r\n"):
        return _scan_quoted(text, comment, skip_space)
    header = None
    content = []
    ragged = None
    for number, line in enumerate(text.split("\n"), start=1):
        if comment and comment in line:
            line = line.split(comment, 1)[0]
        if not line.strip():
            continue
        content.append(number)
        if header is None:
            header = [_name(field, skip_space) for field in line.rstrip("\r").split(",")]
        elif ragged is None and (fields := line.count(",") + 1) != len(header):
            ragged = (number, fields)
    return header, content, ragged


def _scan_quoted(text: str, comment: str | None, skip_space: bool
                 ) -> tuple[list[str] | None, list[int], tuple[int, int] | None]:
    rows = csv.reader(io.StringIO(text, newline=""), skipinitialspace=skip_space)
    header = None
    content = []
    start = 1  # the line a row starts on (a quoted field may span lines)
    try:
        for row in rows:
            start, first = rows.line_num + 1, start
            if comment:  # a field holding the comment character ends the row (unquoted)
                cut = next((i for i, field in enumerate(row) if comment in field), None)
                if cut is not None:
                    row = row[:cut + 1] if row[cut].split(comment, 1)[0].strip() or cut else []
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            content.append(first)
            if header is None:
                header = [_name(field, skip_space) for field in row]
            elif len(row) != len(header):
                if "\n" in row[-1] and next(rows, None) is None:
                    raise _Unclosed(first)  # the row's quote ran to the end of the text
                return header, content, (first, len(row))
    except csv.Error:  # e.g. a quoted field over the csv module's size limit
        return None, content or [1], None
    return header, content, None


def _name(field: str, skip_space: bool) -> str:
    return field.lstrip(" ") if skip_space else field


def _refuse_repeated_names(header: list[str], name: str, line: int) -> None:
    """A header that names a column twice: pandas would rename the second ('x.1') and a
    model would read the first without a word."""
    seen: dict[str, int] = {}
    for position, column in enumerate(header, start=1):
        if column.strip() and column in seen:
            raise FileProblem(f"{at_line(name, line)}: the header names column "
                              f"'{printable(column)}' twice (fields {seen[column]} and "
                              f"{position})")
        seen.setdefault(column, position)


def line_numbers(frame: pd.DataFrame, positions) -> list[int] | None:
    """The file lines of rows at ``positions`` of a frame read by :func:`read_csv`, or None
    when they are not known."""
    lines = frame.attrs.get("line_numbers")
    if lines is None or len(lines) != len(frame):
        return None
    return [int(lines[p]) for p in positions]


def read_parquet(path: Path, what: str) -> pd.DataFrame:
    problem = path_problem(path, what) or size_problem(path, what)
    if problem:
        raise FileProblem(problem)
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid and ArrowIOError among them
        raise FileProblem(f"{what} '{shown(path)}' is not a Parquet file pandas can read: "
                          f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
                          ) from None
