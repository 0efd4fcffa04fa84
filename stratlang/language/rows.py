"""A row filter written like a ``where`` clause (the command line's ``--rows``):
``split == "train"``, ``year != 2016 and state in {CA, NY}``.

It is parsed by the spec grammar itself (as the clause of a statement it is placed in), so
it reads exactly as a ``where`` does, and its errors point into the filter's own text.
Unlike ``where``, its columns may be any columns of the data.
"""

from __future__ import annotations

import dataclasses

from . import ast, codes, ir
from .errors import Diagnostic, Source, Span, SpecError
from .params import literal
from .syntax import parse

_HOST = "response __rows__ ~ squared where "  # a statement the filter is the clause of
ROWS_NAME = "--rows"


def parse_rows(text: str, name: str = ROWS_NAME) -> ir.Where:
    """The conditions of a row filter; a :class:`SpecError` positioned in ``text`` (under
    ``name``) when it is not one."""
    source = Source(text, name)
    if "\n" in text or "\r" in text:
        at = min(i for i in (text.find("\n"), text.find("\r")) if i >= 0)
        raise SpecError([Diagnostic("a row filter is one line", Span(1, at + 1, 1, at + 2),
                                    source, code=codes.MALFORMED_ROW_FILTER)])
    if not text.strip():
        raise SpecError([Diagnostic("a row filter needs a condition, e.g. split == \"train\"",
                                    Span(1, 1, 1, 2), source, code=codes.MALFORMED_ROW_FILTER)])
    try:
        spec = parse(_HOST + text + "\n", name)
    except SpecError as err:
        raise SpecError([_moved(d, source) for d in err.diagnostics]) from None
    (statement,) = spec.statements
    assert isinstance(statement, ast.ResponseStmt) and statement.where is not None  # (the host)
    where = statement.where
    conditions = []
    problems = []
    for cond in where.conditions:
        values = []
        for item in cond.values:
            try:
                values.append(literal(item))
            except ValueError:
                problems.append(Diagnostic("a row filter compares with numbers, names or "
                                           "strings", _shift(item.span), source,
                                           code=codes.NOT_A_LABEL))
        conditions.append(ir.Condition(cond.column.value, tuple(values), cond.negated,
                                       _shift(cond.span),
                                       tuple(_shift(v.span) for v in cond.values)))
    if problems:
        raise SpecError(problems)
    return ir.Where(tuple(conditions), _shift(where.span))


def _shift(span: Span | None) -> Span:
    """A span in the host text as a span in the filter's text."""
    if span is None:  # (the parser positions every node)
        return Span(1, 1, 1, 2)
    offset = len(_HOST)
    return Span(1, max(1, span.column - offset), 1, max(2, span.end_column - offset))


def _moved(diagnostic: Diagnostic, source: Source) -> Diagnostic:
    return dataclasses.replace(diagnostic, span=_shift(diagnostic.span), source=source)
