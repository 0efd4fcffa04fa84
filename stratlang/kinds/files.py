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

from ..language.reading import FileProblem, path_problem, read_text, shown

__all__ = ["FileProblem", "line_numbers", "path_problem", "read_csv", "read_parquet", "read_text"]


_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def read_csv(path: Path, what: str, *, need_rows: bool = True, **options: Any) -> pd.DataFrame:
    """A CSV file as a frame (``options`` go to pandas.read_csv); raises FileProblem."""
    text = read_text(path, what)
    comment = options.get("comment")
    content = [number for number, line in enumerate(text.split("\n"), start=1)
               if line.strip() and not (comment and line.lstrip().startswith(comment))]
    if not content:
        raise FileProblem(f"{what} '{shown(path)}' is empty")
    try:
        with warnings.catch_warnings():
            # a row longer than the header would silently become the index (every value
            # shifted one column) or be cut: index_col=False and the warning as an error
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(io.StringIO(text), **{"index_col": False, **options})
    except pd.errors.ParserWarning:
        line, saw, expected = _first_ragged(text, comment)
        raise FileProblem(f"{what} '{shown(path)}' line {line} has {saw} fields where the "
                          f"header has {expected}") from None
    except pd.errors.ParserError as err:
        found = _FIELDS.search(str(err))
        if found:
            header_fields, row, fields = found.groups()  # (text: numbers as pandas wrote them)
            raise FileProblem(f"{what} '{shown(path)}' line {row} has {fields} fields where the "
                              f"header has {header_fields}") from None
        raise FileProblem(f"{what} '{shown(path)}' is not a CSV table: {err}") from None
    except (pd.errors.EmptyDataError, ValueError) as err:
        raise FileProblem(f"{what} '{shown(path)}' is not a CSV table: {err}") from None
    if need_rows and frame.empty:
        raise FileProblem(f"{what} '{shown(path)}' has a header but no rows")
    if len(content) == len(frame) + 1:  # (not so when a quoted field spans lines)
        frame.attrs["line_numbers"] = tuple(content[1:])  # (pandas compares attrs with ==)
    return frame


def _first_ragged(text: str, comment: str | None) -> tuple[int, int, int]:
    """(line, fields, the header's fields) of the first row whose length differs from the
    header's."""
    rows = csv.reader(io.StringIO(text))
    header = None
    for row in rows:
        if not any(field.strip() for field in row) or (
                comment and row and row[0].lstrip().startswith(comment)):
            continue
        if header is None:
            header = len(row)
        elif len(row) != header:
            return rows.line_num, len(row), header
    return 1, 0, header or 0


def line_numbers(frame: pd.DataFrame, positions) -> list[int] | None:
    """The file lines of rows at ``positions`` of a frame read by :func:`read_csv`, or None
    when they are not known."""
    lines = frame.attrs.get("line_numbers")
    if lines is None or len(lines) != len(frame):
        return None
    return [int(lines[p]) for p in positions]


def read_parquet(path: Path, what: str) -> pd.DataFrame:
    problem = path_problem(path, what)
    if problem:
        raise FileProblem(problem)
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid and ArrowIOError among them
        raise FileProblem(f"{what} '{shown(path)}' is not a Parquet file pandas can read: "
                          f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
                          ) from None
