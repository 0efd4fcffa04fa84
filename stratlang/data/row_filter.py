"""Keeping the rows of a frame that a row filter (``--rows``) selects."""

from __future__ import annotations

import pandas as pd

from ..language import codes
from ..language.errors import Diagnostic, Source, SpecError, did_you_mean
from ..language.rows import ROWS_NAME, parse_rows
from .strata import rows_where


def filter_rows(frame: pd.DataFrame, text: str, name: str = ROWS_NAME) -> pd.DataFrame:
    """The rows of ``frame`` where every condition of the filter ``text`` holds (a value
    compared as text, as a ``where`` value meets nodes; a missing value matches nothing).
    A column the frame lacks, or a filter no row passes, is an error positioned in it."""
    where = parse_rows(text, name)
    source = Source(text, name)
    columns = [str(c) for c in frame.columns]
    missing = [Diagnostic(f"the data have no column '{cond.column}'"
                          + did_you_mean(cond.column, columns), cond.span, source,
                          code=codes.NO_COLUMN)
               for cond in where.conditions if cond.column not in frame.columns]
    if missing:
        raise SpecError(missing)
    kept = rows_where(frame, where)
    if not kept.any():
        raise SpecError([Diagnostic(f"no row of the {len(frame):,} passes the filter",
                                    where.span, source, code=codes.NO_RECORDS)])
    return frame[kept]
