"""Notebook views: a summary that is text when printed and a table in a notebook, and the
small HTML table builder the views share (every text in it escaped)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

import pandas as pd


class Summary(str):
    """A fit's summary: a ``str`` (printing, ``in``, ``==`` and slicing see the text), and
    a notebook shows its HTML view (``_repr_html_``)."""

    _html: str

    def __new__(cls, text: str, html: str) -> Summary:
        summary = super().__new__(cls, text)
        summary._html = html
        return summary

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]
        # (pickling and copying rebuild it with its HTML, not from the text alone)
        return str(self), self._html

    def _repr_html_(self) -> str:
        return self._html


def cell(value: object, number: str = "{:.6g}") -> str:
    """One value as escaped HTML text: numbers with ``number``, anything else as ``str``."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        return escape(number.format(value))
    return escape(str(value))


def table(header: Sequence[str], rows: Iterable[Sequence[object]], *,
          marked: int | None = None, mark: str = "", number: str = "{:.6g}") -> str:
    """An HTML table; row ``marked`` (0-based) is bold with ``mark`` in a last column."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    if marked is not None:
        head += "<th></th>"
    body = []
    for i, row in enumerate(rows):
        cells = [cell(v, number) for v in row]
        if i == marked:
            cells = [f"<strong>{c}</strong>" for c in cells] + [escape(mark)]
        elif marked is not None:
            cells.append("")
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def frame_table(frame: pd.DataFrame, *, marked: int | None = None, mark: str = "") -> str:
    """``table`` of a data frame's columns and rows (its index left out)."""
    return table([str(c) for c in frame.columns], frame.itertuples(index=False),
                 marked=marked, mark=mark)
