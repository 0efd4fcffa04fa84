"""Data frames as the binder reads them, and the binder that checks their columns.

Every data problem is reported at the spec position that named the column, with the
offending rows (by frame label, and by line for a CSV file), and all problems are
collected before anything is raised.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..kinds.files import FileProblem, read_csv, read_parquet
from ..kinds.graphs import canon
from ..language import codes, ir
from ..language.errors import (
    Collector,
    DataError,
    DataSpecError,
    Diagnostic,
    Span,
    SpecError,
    describe_rows,
    did_you_mean,
)
from ..language.reading import printable

MAX_MAGNITUDE = 1e150  # numbers in the data: their squares and products stay finite


def read_frame(data: pd.DataFrame | str | Path) -> pd.DataFrame:
    """A DataFrame from a frame, a CSV path or a Parquet path (the path is remembered for
    messages: CSV rows are named by their line in the file). Raises FileProblem."""
    if isinstance(data, pd.DataFrame):
        refuse_repeated_columns(data, "the data have")
        return data
    if not isinstance(data, str | Path):
        raise DataError(f"data are a pandas DataFrame or the path of a CSV or Parquet file; got "
                        f"a {type(data).__name__}")
    path = Path(data)
    if path.suffix == ".parquet":
        frame = read_parquet(path, "data file")
        frame.attrs["file"] = str(path)
        return frame
    frame = read_csv(path, "data file", skipinitialspace=True)
    frame.attrs["source"] = frame.attrs["file"] = str(path)
    return frame


def refuse_repeated_columns(frame: pd.DataFrame, subject: str) -> None:
    """Raises DataError when ``frame`` has two columns of one name (``subject``: how the
    message names it, "X has"): a spec reads a column by its name, and which of them it
    would read is nobody's choice."""
    names = pd.Index(frame.columns)
    repeated = list(dict.fromkeys(names[names.duplicated()]))
    if repeated:
        counts = names.value_counts()
        raise DataError(f"{subject} more than one column named "
                        + ", ".join(f"{str(c)!r} ({counts[c]} columns)" for c in repeated)
                        + ": give each column its own name")


def rows_phrase(frame: pd.DataFrame, positions) -> str:
    """'rows 3, 17' by frame label; for a CSV, also the file's line numbers."""
    positions = np.asarray(positions, dtype=int)
    text = describe_rows([canon(v) for v in frame.index[positions]])
    source = frame.attrs.get("source")
    file_lines = frame.attrs.get("line_numbers")
    if source and file_lines is not None and (
            (isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0)
            or frame.attrs.get("rows_dropped")):  # labels are still the file's rows
        lines = ", ".join(str(int(file_lines[int(label)]))
                          for label in frame.index[positions[:5]])
        text += f" (line{'s' if len(positions) > 1 else ''} {lines} of {Path(source).name})"
    elif "file" in frame.attrs:
        text += f" of {Path(frame.attrs['file']).name}"
    return text


def values_phrase(values: pd.Series | np.ndarray, positions) -> str:
    """'values 'a', 'b'' — at most three, numbers to 6 significant digits."""
    picked = (values.iloc[np.asarray(positions)[:3]] if isinstance(values, pd.Series)
              else values[np.asarray(positions)[:3]])
    shown = [f"{v:.6g}" if isinstance(v, float | np.floating) else repr(canon(v))
             for v in picked]
    return "values " + ", ".join(shown) if len(shown) > 1 else "value " + shown[0]


class Binder:
    """Checks columns of a frame against a model, collecting positioned errors."""

    def __init__(self, model: ir.CheckedModel, frame: pd.DataFrame):
        self.model = model
        self.frame = frame
        self.out = Collector(model.source, DataSpecError)
        where = frame.attrs.get("source")
        self.where = f" ({Path(where).name})" if where else ""

    def column(self, name: str, span: Span | None, also: tuple[str, ...] = ()) -> pd.Series | None:
        if name not in self.frame.columns:
            if self._is_the_models_table():
                hint = did_you_mean(name, [printable(str(c)) for c in self.frame.columns]
                                    + list(also))
            else:  # any file a spec names is read: echo nothing of one that is no data table
                hint = "; the file's header names none of the model's columns"
            self.out.error(f"column '{name}' not found in the data{self.where}" + hint, span,
                           code=codes.NO_COLUMN)
            return None
        series = self.frame[name]
        missing = np.flatnonzero(series.isna().to_numpy())
        if len(missing):
            self.out.error(f"column '{name}' has missing values (empty or NaN) in "
                           + rows_phrase(self.frame, missing), span, code=codes.MISSING_VALUES)
            return None
        return series

    def _is_the_models_table(self) -> bool:
        """Whether the frame holds any column the model reads: only then are its column
        names shown (a file read from a path might be anything: /etc/hosts)."""
        if "file" not in self.frame.attrs:
            return True  # a frame given from Python: its names are the caller's own
        return any(c in self.frame.columns for c in used_columns(self.model))

    def numeric(self, name: str, span: Span | None, also: tuple[str, ...] = (),
                hint: str | None = None) -> np.ndarray | None:
        series = self.column(name, span, also)
        if series is None:
            return None
        if kind := _not_real(series):
            self.out.error(f"column '{name}' holds {kind} ({series.dtype}), not real numbers: "
                           "convert it yourself", span, _CONVERSIONS[kind], code=codes.NOT_NUMERIC)
            return None
        values = pd.to_numeric(series, errors="coerce")
        if values.dtype.kind == "c":  # (complex numbers in a column of Python objects)
            self.out.error(f"column '{name}' holds complex numbers, not real numbers: "
                           "convert it yourself", span, _CONVERSIONS["complex numbers"],
                           code=codes.NOT_NUMERIC)
            return None
        if series.dtype == bool:
            values = series.astype(float)
        numbers = values.to_numpy(dtype=float)
        words = np.flatnonzero(np.isnan(numbers))  # (the column has no missing values)
        if len(words):
            self.out.error(f"column '{name}' must be numeric; {values_phrase(series, words)} in "
                           + rows_phrase(self.frame, words), span, hint, code=codes.NOT_NUMERIC)
            return None
        infinite = np.flatnonzero(np.isinf(numbers))
        if len(infinite):
            self.out.error(f"column '{name}' must be finite; {values_phrase(numbers, infinite)} "
                           f"in {rows_phrase(self.frame, infinite)}", span, code=codes.NOT_FINITE)
            return None
        huge = np.flatnonzero(np.abs(numbers) > MAX_MAGNITUDE)
        if len(huge):  # their squares would overflow in the solvers
            self.out.error(f"column '{name}' has values beyond ±{MAX_MAGNITUDE:.0e}: "
                           f"{values_phrase(numbers, huge)} in {rows_phrase(self.frame, huge)}; "
                           "rescale the column", span, code=codes.NOT_FINITE)
            return None
        return numbers




def used_columns(model: ir.CheckedModel, predicting: bool = False) -> list[str]:
    """Every data column a model reads (to predict: all but the response and the record
    weights), in the order it names them."""
    columns = [] if predicting else list(model.response.columns)
    columns += [c for t in model.features for c in t.columns]
    if model.response.offset is not None:
        columns += list(model.response.offset.columns)
    if model.weights is not None and not predicting:
        columns.append(model.weights)
    columns += [c for s in model.strata for c in s.columns]
    if model.personalize is not None:
        columns += [c for d in model.personalize.distances for c in d.columns]
    return list(dict.fromkeys(columns))


# what a column of values that are numbers to pandas but not to a model must become
_CONVERSIONS = {
    "complex numbers": "take the real part, the imaginary part or the modulus as columns",
    "dates and times": "e.g. days since a date (or stratify by the year or the month)",
    "durations": "e.g. in seconds: column.dt.total_seconds()",
    "periods": "e.g. the period's year, or its number since a start",
}


def _not_real(series: pd.Series) -> str | None:
    """What a column holds that pandas would turn into numbers silently (complex numbers
    losing their imaginary part, dates and durations becoming nanoseconds), or None."""
    dtype = series.dtype
    if dtype.kind == "c":
        return "complex numbers"
    if dtype.kind == "M" or isinstance(dtype, pd.DatetimeTZDtype):
        return "dates and times"
    if dtype.kind == "m":
        return "durations"
    if isinstance(dtype, pd.PeriodDtype):
        return "periods"
    return None


def frame_for(model: ir.CheckedModel, data: pd.DataFrame | str | Path | None) -> pd.DataFrame:
    """The frame a model is bound to: ``data`` (a frame, a CSV or Parquet path), or the
    file of the spec's ``data`` statement (relative to the spec; a problem with it is
    positioned at the statement)."""
    if data is not None:
        try:
            return read_frame(data)
        except FileProblem as problem:
            raise DataError(str(problem)) from None
    if model.data is None:
        said = f"model '{model.name}' names no data: "
        statement = ", or add a 'data \"file.csv\"' statement to the spec"
        raise DataError(said + "pass data to fit" + statement,
                        cli=said + "give --data FILE" + statement)
    try:
        return read_frame(model.directory / model.data)
    except FileProblem as problem:
        raise SpecError([Diagnostic(str(problem), model.data_span, model.source,
                                    code=codes.DATA_FILE)]) from None
