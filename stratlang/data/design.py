"""Data bound to a checked stratified model: the design (features, encoded response,
strata) that every stratified backend fits."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..kinds import responses
from ..kinds.losses import LOSSES, Loss, Records
from ..language import codes as diagnostic_codes
from ..language import ir
from ..language.errors import DataWarning, warn
from ..solvers.graphs import RowGroup, induced
from .features import Bound, Features, FeatureState
from .frames import Binder, rows_phrase, used_columns, values_phrase
from .strata import (
    Strata,
    bind_strata,
    check_where,
    factor_masks,
    rows_where,
    select_strata,
)


def bind_features(binder: Binder, state: FeatureState | None = None) -> Bound | None:
    """The design matrix, its row names, and the offset (problems recorded in the binder)."""
    return Features(binder, state).bind(binder.model)


def bind_weights(binder: Binder) -> np.ndarray | None:
    """The record weights: a numeric column, every value ≥ 0, not all 0."""
    model = binder.model
    if model.weights is None:
        return None
    values = binder.numeric(model.weights, model.weights_span)
    if values is None:
        return None
    bad = np.flatnonzero(values < 0)
    if len(bad):
        binder.out.error(f"weights column '{model.weights}' must be nonnegative; "
                         f"{values_phrase(binder.frame[model.weights], bad)} in "
                         + rows_phrase(binder.frame, bad), model.weights_span,
                         code=diagnostic_codes.BAD_WEIGHTS)
        return None
    if len(values) and not np.any(values > 0):
        binder.out.error(f"weights column '{model.weights}' is zero in every row: no record "
                         "counts", model.weights_span, code=diagnostic_codes.BAD_WEIGHTS)
        return None
    return values


def rows_needing(model: ir.CheckedModel, frame: pd.DataFrame, predicting: bool
                 ) -> dict[str, np.ndarray]:
    """The columns only features with ``where`` read, each with the rows it is read in
    (its features' strata's rows)."""
    everywhere = set(used_columns(dataclasses.replace(
        model, features=tuple(t for t in model.features if t.where is None)), predicting))
    out: dict[str, np.ndarray] = {}
    for term in model.features:
        if term.where is None:
            continue
        inside = rows_where(frame, term.where)
        for column in term.columns:
            if column not in everywhere:
                out[column] = out[column] | inside if column in out else inside
    return out


def missing_rows(model: ir.CheckedModel, frame: pd.DataFrame, predicting: bool = False
                 ) -> tuple[np.ndarray, dict[str, int]]:
    """With ``missing drop``: which rows miss a value the model reads (to fit, or to
    predict), and how many each column's missing values account for; otherwise none."""
    none = np.zeros(len(frame), dtype=bool)
    if model.missing != "drop":
        return none, {}
    present = [c for c in used_columns(model, predicting) if c in frame.columns]
    if not present:
        return none, {}
    missing = frame[present].isna()
    for column, needed in rows_needing(model, frame, predicting).items():
        if column in missing.columns:  # read in some strata only: missing only there
            missing[column] &= needed
    counts = {c: int(n) for c, n in missing.sum().items() if n}
    return missing.any(axis=1).to_numpy(), counts


def drop_missing(model: ir.CheckedModel, frame: pd.DataFrame, predicting: bool = False
                 ) -> tuple[pd.DataFrame, dict[str, int]]:
    """The frame without the rows :func:`missing_rows` finds, and its counts."""
    kept, _left_out, counts = split_missing(model, frame, predicting)
    return kept, counts


def split_missing(model: ir.CheckedModel, frame: pd.DataFrame, predicting: bool = False
                  ) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, int]]:
    """The rows :func:`missing_rows` keeps, those it leaves out (None: none), and its
    counts."""
    rows, counts = missing_rows(model, frame, predicting)
    if not rows.any():
        return frame, None, {}
    kept = frame.iloc[np.flatnonzero(~rows)]
    kept.attrs = {**frame.attrs, "rows_dropped": True}
    return kept, frame.iloc[np.flatnonzero(rows)], counts


def report_dropped(counts: dict[str, int], kept: int | None = None) -> None:
    if counts:
        dropped = ", ".join(f"'{c}' {n}" for c, n in counts.items())
        warn(f"missing drop: rows with missing values left out (by column: {dropped})"
             + (f"; {kept} rows kept" if kept is not None else ""), DataWarning)


def bind_response(binder: Binder, classes: tuple | None = None) -> responses.Encoded | None:
    model = binder.model
    loss = LOSSES[model.response.loss.name]
    spans = model.response.column_spans or (model.response.span,) * len(model.response.columns)
    found = [binder.column(c, s) for c, s in zip(model.response.columns, spans, strict=True)]
    series = [s for s in found if s is not None]
    if len(series) != len(found):
        return None
    raw = np.column_stack([s.to_numpy(dtype=object) for s in series])
    problems: list[responses.ResponseProblem] = []
    encoded = responses.DOMAINS[loss.domain](raw, classes, problems)
    for problem in problems:
        cols = "', '".join(model.response.columns)
        where = ""
        if len(problem.rows) == len(binder.frame) and not problem.message.startswith("must have"):
            where = f" (all {len(problem.rows)} rows)"
        elif 0 < len(problem.rows) < len(binder.frame):
            where = (f"; {values_phrase(series[0], problem.rows)} in "
                     f"{rows_phrase(binder.frame, problem.rows)}")
        binder.out.error(f"response '{cols}' {problem.message} for loss '{loss.name}'{where}",
                         spans[0], code=diagnostic_codes.BAD_RESPONSE)
    return None if problems else encoded


# ---- the design ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LossPart:
    """The loss with one parameter set: its records and strata (None: all)."""

    params: dict
    records: np.ndarray | None
    strata: np.ndarray | None

    def of(self, records: Records) -> Records:
        return records if self.records is None else records.subset(self.records)


@dataclass
class Design:
    """Arrays a backend needs; θ has shape (K, rows, outputs)."""

    model: ir.CheckedModel
    loss: Loss
    strata: Strata
    x: np.ndarray  # (N, n)
    y: np.ndarray | None  # (N, m) encoded, None when predicting
    z: np.ndarray  # (N,) stratum of each record
    rows: tuple[str, ...]
    outputs: tuple[str, ...]
    classes: tuple | None
    index: pd.Index = field(repr=False)
    offset: np.ndarray | None = None  # (N,) added to each record's linear predictor
    weight: np.ndarray | None = None  # (N,) ≥ 0, multiplies each record's loss
    features: FeatureState = field(default_factory=FeatureState)  # what the features learned
    row_terms: tuple[str, ...] = ()  # the feature term each parameter row comes from
    dropped: dict[str, int] = field(default_factory=dict)  # rows left out, by column
    codes: np.ndarray | None = None  # (N, F) each record's node per factor; −1: unseen
    # (None when every record has a stratum: see node_codes)
    row_wheres: tuple[ir.Where | None, ...] = ()  # a row present in some strata only
    # what the methods below derive, once (not copied by dataclasses.replace)
    _memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def _once(self, key: str, make: Any) -> Any:
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def node_codes(self) -> np.ndarray:
        """(N, F) each record's node per factor (−1: a value the fit has not seen), from
        z when every record has a stratum (binding keeps them only otherwise)."""
        if self.codes is not None:
            return self.codes
        return self._once("codes", lambda: np.stack(
            np.unravel_index(self.z, self.strata.shape), axis=1).astype(np.int64, copy=False))

    @property
    def partial_rows(self) -> bool:
        """Is some parameter row present in some strata only (a feature with `where`)?"""
        return any(w is not None for w in self.row_wheres)

    @property
    def grouped_rows(self) -> bool:
        """Do parameter rows differ in their Laplacian (a feature with `where`, or varying
        over some factors only, or an interaction term): is it solved group by group?"""
        return self.partial_rows or self.model.structured

    def row_groups(self) -> list[RowGroup]:
        return self._once("row_groups", self._row_groups)

    def _row_groups(self) -> list[RowGroup]:
        """The parameter rows by the strata they are present in: all rows in all strata,
        unless a feature has ``where`` (then one group per clause, with the graph its
        strata induce); and by the factors they are constant along (``by``/``shared``)."""
        from .row_structure import constant_factors, row_vary

        graphs = tuple(self.strata.graphs())
        n = len(self.rows)
        wheres = self.row_wheres if len(self.row_wheres) == n else (None,) * n
        varies = row_vary(self)
        # (a row's own weights are its own hyper-parameters: their names part of the key)
        keys = [(w, v, tuple(o.hyper_name for o in v or ())) for w, v in zip(wheres, varies,
                                                                            strict=True)]
        groups = []
        for where, vary, names in dict.fromkeys(keys):
            rows = np.array([i for i, key in enumerate(keys) if key == (where, vary, names)],
                            dtype=np.int64)
            constant = constant_factors(self.model, vary)
            if where is None:
                groups.append(RowGroup(rows, None, graphs, constant=constant))
                continue
            masks = factor_masks(self.strata, where)
            groups.append(RowGroup(rows, select_strata(self.strata, where),
                                   tuple(induced(g, m) for g, m in zip(graphs, masks,
                                                                       strict=True)),
                                   constant=constant))
        return groups

    def absent_mask(self) -> np.ndarray | None:
        """(K, rows): True where a parameter is absent; None when all are present."""
        def make() -> np.ndarray | None:
            pairs = self.absent()
            if not pairs:
                return None
            mask = np.zeros(self.theta_shape[:2], dtype=bool)
            for strata, rows in pairs:
                mask[np.ix_(strata, rows)] = True
            return mask
        return self._once("absent_mask", make)

    def absent(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(strata, rows) where parameters are absent (fixed at 0), one pair per clause."""
        k = self.strata.k
        return [(np.setdiff1d(np.arange(k), g.strata), g.rows) for g in self.row_groups()
                if g.strata is not None and len(g.strata) < k]

    @property
    def n_records(self) -> int:
        return len(self.z)

    @property
    def theta_shape(self) -> tuple[int, int, int]:
        return (self.strata.k, len(self.rows), len(self.outputs))

    @property
    def records(self) -> Records:
        return Records(self.x, self.y, self.z, self.offset, self.weight)

    def record_matrix(self):
        """N × (K·n) sparse: record i's features placed in its stratum's block."""
        import scipy.sparse as sp

        n_rec, n = self.x.shape
        cols = (self.z[:, None] * n + np.arange(n)[None, :]).reshape(-1)
        rows = np.repeat(np.arange(n_rec), n)
        return sp.csr_matrix((self.x.reshape(-1), (rows, cols)), shape=(n_rec, self.strata.k * n))

    @property
    def loss_params(self) -> dict:
        """The main response statement's loss parameters."""
        return self.model.response.loss.p

    def loss_parts(self) -> list[LossPart]:
        """The loss by parameter set: the main statement's in the strata no override
        selects, each override's in its own (one part, of everything, without overrides).
        A record of no stratum (an unseen one, predicting) counts with the main part."""
        return self._once("loss_parts", self._loss_parts)

    def _loss_parts(self) -> list[LossPart]:
        overrides = self.model.response.overrides
        if not overrides:
            return [LossPart(self.loss_params, None, None)]
        part_of = np.zeros(self.strata.k, dtype=np.int64)
        for i, override in enumerate(overrides, start=1):
            part_of[select_strata(self.strata, override.where)] = i
        record_part = np.where(self.z >= 0, part_of[np.maximum(self.z, 0)], 0)
        params = [self.loss_params] + [o.loss.p for o in overrides]
        return [LossPart(params[i], np.flatnonzero(record_part == i),
                         np.flatnonzero(part_of == i)) for i in range(len(params))
                if np.any(part_of == i)]


def check_clauses(binder: Binder, strata: Strata) -> None:
    """Every `where` clause's values are nodes, each selects a stratum, and no two
    response overrides select the same one (problems recorded in the binder)."""
    for where in binder.model.wheres():
        check_where(binder, strata, where)
    check_overrides_disjoint(binder, strata)


def check_overrides_disjoint(binder: Binder, strata: Strata) -> None:
    """Two response overrides may not both set a stratum's loss parameters."""
    overrides = binder.model.response.overrides
    if len(overrides) < 2 or binder.out.diagnostics:
        return
    owner = np.full(strata.k, -1)
    for i, override in enumerate(overrides):
        selected = select_strata(strata, override.where)
        taken = selected[owner[selected] >= 0]
        if len(taken):
            first = overrides[owner[taken[0]]]
            label = ", ".join(f"{c}={v}" for c, v in
                              strata.labels(int(taken[0]), int(taken[0]) + 1).iloc[0].items())
            where = (f"on line {first.where.span.line}" if first.where.span is not None
                     else "before it")
            count = f"{len(taken):,} {'stratum' if len(taken) == 1 else 'strata'}"
            binder.out.error(f"this override and the one {where} both select {count} "
                             f"(e.g. {label}): a stratum "
                             "takes one loss", override.where.span,
                             code=diagnostic_codes.OVERLAPPING_OVERRIDES)
            return
        owner[selected] = i


def check_zero_constraints(binder: Binder, loss: Loss, rows: tuple[str, ...]) -> None:
    """A constraint that allows its rows no value but 0 (``nonzeros(k=0)``) is a valid,
    trivial model, unless the loss cannot be finite with those rows at 0 (a Gaussian's
    precision, an exponential rate): then no fit exists, and the term is refused."""
    from ..kinds.regularizers import REGULARIZERS
    from .features import selected_rows

    model = binder.model
    params = [model.response.loss.p, *(o.loss.p for o in model.response.overrides)]
    for term in model.regularizers:
        if not REGULARIZERS[term.kind.name].only_zero(term.kind.p):
            continue
        held = tuple(rows[i] for i in selected_rows(rows, (), term.exclude))
        why = next((w for p in params if (w := loss.zero_refused(held, p))), None)
        if why:
            binder.out.error("this constraint holds every parameter it acts on at 0, which "
                             f"loss '{loss.name}' does not allow: {why}", term.span,
                             code=diagnostic_codes.ZERO_REFUSED)


def bind(model: ir.CheckedModel, frame: pd.DataFrame, *, strata: Strata | None = None,
         classes: tuple | None = None, features: FeatureState | None = None,
         graphs: dict[str, Any] | None = None, unseen: str = "error",
         with_response: bool = True) -> Design:
    """Binds a frame; raises SpecError listing every data problem (positioned in the spec).
    ``strata``, ``classes`` and ``features``: encodings learned before (at fit time), to
    bind new data as the training data were; ``unseen``: what a stratum value that is no
    node of the fitted graph becomes (see :func:`bind_strata`); ``graphs``: graphs given
    from Python, by column."""
    frame, left_out, dropped = split_missing(model, frame, predicting=not with_response)
    binder = Binder(model, frame)
    if with_response and len(frame) == 0:
        binder.out.error("the data have no records" + (
            " left: every one misses a value (missing drop)" if dropped else ""),
            model.missing_span if dropped else None, code=diagnostic_codes.NO_RECORDS)
        binder.out.raise_if_any()
    loss = LOSSES[model.response.loss.name]
    # (a stratum value whose every record `missing drop` left out is still a node)
    bound_strata, z, codes = bind_strata(binder, strata, unseen, graphs, left_out)
    if strata is None and z is not None:  # training: the clauses' values meet the nodes
        check_clauses(binder, bound_strata)
    bound = bind_features(binder, features)
    encoded = bind_response(binder, classes) if with_response else None
    weight = bind_weights(binder) if with_response else None
    binder.out.raise_if_any()
    # each binding step that gives None recorded a problem, raised just above
    assert bound is not None and z is not None
    report_dropped(dropped, len(frame))
    classes = encoded.classes if encoded is not None else classes
    rows = loss.row_names(bound.rows, model.response.columns)
    if strata is None:  # training: no constraint may hold the loss outside its domain
        check_zero_constraints(binder, loss, rows)
        binder.out.raise_if_any()
    outputs = loss.output_names(model.response.columns, classes)
    return Design(model, loss, bound_strata, bound.x, encoded.values if encoded else None, z,
                  rows, outputs, classes, frame.index, bound.offset, weight, bound.state,
                  bound.row_terms, dropped, codes, bound.row_wheres)
