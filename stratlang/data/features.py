"""Feature terms bound to data: each term's columns — a column as it is, a transform of
it (log, standardize, …), categorical indicators, products of these (interactions) — and
the offset. What stateful transforms learn from the training data (means and scales,
category levels) is a :class:`FeatureState`, saved with a fitted model and reused on new
data, so that predictions see the training data's encoding.

Every problem is positioned at the factor in the spec and names the column and the rows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..kinds.transforms import TRANSFORMS, TransformError
from ..language import codes, ir
from ..language.printer import factor_text as _factor_text
from ..language.printer import where_text
from .frames import Binder, rows_phrase, values_phrase
from .strata import rows_where

INTERCEPT = "intercept"


def factor_text(factor: ir.Factor) -> str:
    """A factor as written canonically: ``log(income)``, ``categorical(region)``."""
    return _factor_text(factor, TRANSFORMS)


def term_text(term: ir.Term) -> str:
    return ":".join(factor_text(f) for f in term.factors)


@dataclass(frozen=True)
class FeatureState:
    """What the stateful factors learned, by the factor's canonical text (JSON values)."""

    states: dict[str, Any] = field(default_factory=dict)

    def __contains__(self, key: str) -> bool:
        return key in self.states

    def __getitem__(self, key: str) -> Any:
        return self.states[key]

    def to_json(self) -> dict[str, Any]:
        return dict(self.states)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> FeatureState:
        return cls(dict(data or {}))


def stateful_factors(model: ir.CheckedModel) -> list[ir.Transform]:
    """Every stateful transform of the features and the offset, inner ones first."""
    found: dict[str, ir.Transform] = {}

    def visit(f: ir.Factor) -> None:
        if isinstance(f, ir.Transform):
            visit(f.arg)
            if TRANSFORMS[f.kind.name].stateful:
                found.setdefault(factor_text(f), f)

    for term in model.features:
        for f in term.factors:
            visit(f)
    if model.response.offset is not None:
        visit(model.response.offset)
    return list(found.values())


@dataclass
class Bound:
    """A model's features on one frame: the design matrix, the name of each column (a
    parameter row), the term each comes from, and the offset."""

    x: np.ndarray
    rows: tuple[str, ...]
    row_terms: tuple[str, ...]
    offset: np.ndarray | None
    state: FeatureState
    row_wheres: tuple[ir.Where | None, ...] = ()  # the strata each row is present in


class Features:
    """Evaluates feature factors on a binder's frame, recording positioned problems in
    the binder. ``state``: what training learned (None: learn it here, from this frame)."""

    def __init__(self, binder: Binder, state: FeatureState | None = None, scope: str = ""):
        """``scope``: what a learned state's key adds to its factor's text (a term with
        ``where`` learns from its strata's rows: its own state, apart from the same
        factor's elsewhere)."""
        self.binder = binder
        self.given = state
        self.learned: dict[str, Any] = {}
        self.n = len(binder.frame)
        self.scope = scope

    # ---- factors -------------------------------------------------------------------------
    def _column(self, column: ir.Column, numeric: bool, feature: bool = True
                ) -> np.ndarray | None:
        name, span = column.name, column.span
        if name == INTERCEPT and name not in self.binder.frame.columns:
            return np.ones(self.n)
        if numeric:
            hint = f"for a categorical feature write categorical({name})" if feature else None
            return self.binder.numeric(name, span, also=(INTERCEPT,), hint=hint)
        series = self.binder.column(name, span)
        return None if series is None else series.to_numpy(dtype=object)

    def _state(self, factor: ir.Transform, key: str, values: np.ndarray) -> Any:
        entry = TRANSFORMS[factor.kind.name]
        key += self.scope
        if self.given is not None and key in self.given:
            return self.given[key]
        if key in self.learned:
            return self.learned[key]
        p = factor.kind.p
        state = entry.state([entry.summary(values, p)], p)
        self.learned[key] = state
        return state

    def summaries(self, factor: ir.Transform) -> Any:
        """A stateful factor's summary of this frame (for learning across partitions)."""
        entry = TRANSFORMS[factor.kind.name]
        values = self._input(factor)
        return None if values is None else entry.summary(values, factor.kind.p)

    def _input(self, factor: ir.Transform, feature: bool = True) -> np.ndarray | None:
        entry = TRANSFORMS[factor.kind.name]
        arg = factor.arg
        if isinstance(arg, ir.Column):
            return self._column(arg, numeric=not entry.categorical, feature=feature)
        inner = self.factor(arg, feature)
        return None if inner is None else inner[0][:, 0]

    def factor(self, factor: ir.Factor, feature: bool = True
               ) -> tuple[np.ndarray, list[str]] | None:
        """(columns (N, c), their names), or None after recording a problem; ``feature``:
        a feature's factor (else an offset's: no hint of a categorical feature)."""
        if isinstance(factor, ir.Column):
            values = self._column(factor, numeric=True, feature=feature)
            return None if values is None else (values[:, None], [factor.name])
        values = self._input(factor, feature)
        if values is None:
            return None
        entry = TRANSFORMS[factor.kind.name]
        key = factor_text(factor)
        p = factor.kind.p
        try:
            state = self._state(factor, key, values) if entry.stateful else None
            out = entry.apply(values, p, state)
        except TransformError as err:
            self._report(factor, key, err)
            return None
        return out, entry.names(factor_text(factor.arg), key, p, state)

    def _report(self, factor: ir.Transform, key: str, err: TransformError) -> None:
        column = factor.columns[0]
        if err.rows is None or not len(err.rows):
            # (a term with `where` learns from the rows in its strata only: say which)
            scope = f" (in the rows{self.scope})" if self.scope else ""
            self.binder.out.error(f"{key}: {err}{scope}", factor.span,
                                  code=codes.TRANSFORM_FAILED)
            return
        frame = self.binder.frame
        shown = (f"; {values_phrase(frame[column], err.rows)}" if column in frame.columns
                 else "")
        self.binder.out.error(f"{key}: column '{column}' {err}{shown} in "
                              + rows_phrase(frame, err.rows), factor.span,
                              code=codes.TRANSFORM_FAILED)

    # ---- terms ---------------------------------------------------------------------------
    def term(self, term: ir.Term) -> tuple[np.ndarray, list[str]] | None:
        """A term's columns: the product of its factors' (every combination); a term with
        ``where`` is evaluated on the rows in its strata only (values elsewhere, missing
        or not, are not read) and is 0 in the others."""
        if term.where is not None:
            return self._present_term(term)
        found = [self.factor(f) for f in term.factors]
        parts = [p for p in found if p is not None]
        if len(parts) != len(found):
            return None
        columns, names = parts[0]
        for more, more_names in parts[1:]:
            # (the width spelled out: with no rows, as a `where` matching none, -1 is ambiguous)
            columns = (columns[:, :, None] * more[:, None, :]).reshape(
                self.n, columns.shape[1] * more.shape[1])
            names = [f"{a}:{b}" for a in names for b in more_names]
        return columns, names

    def _present_term(self, term: ir.Term) -> tuple[np.ndarray, list[str]] | None:
        assert term.where is not None
        inside = rows_where(self.binder.frame, term.where)
        rows = self.binder.frame.iloc[np.flatnonzero(inside)]
        if not inside.any() and self.given is not None:  # (predicting: no value is read, so
            rows = rows.assign(**{c: np.zeros(0) for c in term.columns  # none need be there)
                                  if c not in rows.columns})
        binder = Binder(self.binder.model, rows)
        binder.out = self.binder.out  # (problems are the whole frame's, by row label)
        sub = Features(binder, self.given, scope=where_text(term.where))
        sub.learned = self.learned  # what it learns (e.g. a mean) is learned in its strata
        got = sub.term(dataclasses.replace(term, where=None))
        if got is None:
            return None
        columns, names = got
        full = np.zeros((self.n, columns.shape[1]))
        full[inside] = columns
        return full, names

    def bind(self, model: ir.CheckedModel) -> Bound | None:
        """The design matrix of ``model.features`` (x = 1, one row named by the loss, when
        there are none) and the offset."""
        blocks, rows, row_terms, row_wheres = [], [], [], []
        ok = True
        for term in model.features:
            got = self.term(term)
            if got is None:
                ok = False
                continue
            columns, names = got
            blocks.append(columns)
            rows += names
            row_terms += [term_text(term)] * len(names)
            row_wheres += [term.where] * len(names)
        offset = None
        if model.response.offset is not None:
            got = self.factor(model.response.offset, feature=False)
            if got is None:
                ok = False
            else:
                offset = got[0][:, 0]
        if not ok:
            return None
        x = np.column_stack(blocks) if blocks else np.ones((self.n, 1))
        state = FeatureState({**(self.given.states if self.given else {}), **self.learned})
        return Bound(x, tuple(rows), tuple(row_terms), offset, state, tuple(row_wheres))


def excluded(rows: tuple[str, ...], row_terms: tuple[str, ...], name: str) -> np.ndarray:
    """Which parameter rows an ``exclude`` name names: a row itself (``region[T.north]``),
    every row of a feature term (``log(income)``, ``categorical(region)``), or every level
    of a categorical main effect by its column (``region``)."""
    terms = row_terms if len(row_terms) == len(rows) else rows
    return np.array([name in (row, term) or (":" not in row and row.split("[", 1)[0] == name
                                             and row.endswith("]"))
                     for row, term in zip(rows, terms, strict=True)], dtype=bool)


def selected_rows(rows: tuple[str, ...], row_terms: tuple[str, ...],
                  exclude: tuple[str, ...]) -> np.ndarray:
    """Positions of the rows a regularizer term acts on (all but the excluded)."""
    out = np.ones(len(rows), dtype=bool)
    for name in exclude:
        out &= ~excluded(rows, row_terms, name)
    return np.flatnonzero(out)


def learn_state(binder: Binder, model: ir.CheckedModel, summaries: list[dict[str, Any]]) -> FeatureState:
    """The state of every stateful factor from summaries of several frames (partitions),
    problems recorded in ``binder`` at the factor."""
    states = {}
    for factor in stateful_factors(model):
        key = factor_text(factor)
        entry = TRANSFORMS[factor.kind.name]
        parts = [s[key] for s in summaries if s.get(key) is not None]
        try:
            states[key] = entry.state(parts, factor.kind.p)
        except TransformError as err:
            binder.out.error(f"{key}: {err}", factor.span, code=codes.TRANSFORM_FAILED)
    return FeatureState(states)


def _learns_from_learned(factor: ir.Transform) -> bool:
    arg = factor.arg
    while isinstance(arg, ir.Transform):
        if TRANSFORMS[arg.kind.name].stateful:
            return True
        arg = arg.arg
    return False


def summarize(binder: Binder, model: ir.CheckedModel) -> dict[str, Any]:
    """Each stateful factor's summary of the binder's frame (a partition). A stateful
    factor's input must not itself be learned (it would need the whole data first)."""
    features = Features(binder)
    out = {}
    for factor in stateful_factors(model):
        if _learns_from_learned(factor):
            binder.out.error(f"{factor_text(factor)}: on partitioned data, a learned transform "
                             "cannot take another learned transform's output", factor.span,
                             code=codes.TRANSFORM_FAILED)
            continue
        out[factor_text(factor)] = features.summaries(factor)
    return out
