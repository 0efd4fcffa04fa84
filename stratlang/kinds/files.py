"""Reading the files a spec names — data, edge lists, distance tables — through one reader,
so that every problem with a file reads the same way: not found, empty, a header and no
rows, ragged rows, not UTF-8, each naming the file and its line. (A byte-order mark is
no problem: it is not part of the header.) What a row must hold is checked by whoever
reads it, naming the line too."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ..language.paths import shown, unopenable


class FileProblem(Exception):
    """A file that cannot be read as a table; the message names the file and the line."""


def path_problem(path: Path, what: str) -> str | None:
    """Why ``path`` cannot be read (missing, a name the system refuses), or None."""
    problem = unopenable(path)
    return f"{what} '{shown(path)}' {problem}" if problem else None


_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def read_text(path: Path, what: str) -> str:
    """The file's text (UTF-8, a leading byte-order mark dropped)."""
    problem = path_problem(path, what)
    if problem:
        raise FileProblem(problem)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise FileProblem(f"{what} '{shown(path)}' cannot be read: {err.strerror or err}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise FileProblem(f"{what} '{shown(path)}' is not UTF-8 text: byte 0x{data[err.start]:02x} "
                          f"on line {line}") from None


def read_csv(path: Path, what: str, *, need_rows: bool = True, **options: Any) -> pd.DataFrame:
    """A CSV file as a frame (``options`` go to pandas.read_csv); raises FileProblem."""
    text = read_text(path, what)
    content = [line for line in text.splitlines()
               if line.strip() and not (options.get("comment") == "#"
                                        and line.lstrip().startswith("#"))]
    if not content:
        raise FileProblem(f"{what} '{shown(path)}' is empty")
    try:
        frame = pd.read_csv(io.StringIO(text), **options)
    except pd.errors.ParserError as err:
        found = _FIELDS.search(str(err))
        if found:
            expected, line, saw = found.groups()
            raise FileProblem(f"{what} '{shown(path)}' line {line} has {saw} fields where the header "
                              f"has {expected}") from None
        raise FileProblem(f"{what} '{shown(path)}' is not a CSV table: {err}") from None
    except (pd.errors.EmptyDataError, ValueError) as err:
        raise FileProblem(f"{what} '{shown(path)}' is not a CSV table: {err}") from None
    if need_rows and frame.empty:
        raise FileProblem(f"{what} '{shown(path)}' has a header but no rows")
    return frame


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
