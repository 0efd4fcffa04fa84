"""Data bound to a checked model: design matrices, encoded responses, strata.

Every data problem is reported at the spec position that named the column, with the
offending rows, and all problems are collected before anything is raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import ir, responses
from .errors import Collector, DataError, Span, describe_rows, did_you_mean
from .graphs import GRAPHS, Built, GraphError, canon, canon_text
from .losses import LOSSES, Loss
from .solvers.graphs import Graph

INTERCEPT = "intercept"


# ---- frames ---------------------------------------------------------------------------
def read_frame(data: pd.DataFrame | str | Path) -> pd.DataFrame:
    """A DataFrame from a frame, a CSV path or a Parquet path (the path is remembered for
    messages: CSV rows are named by their line in the file)."""
    if isinstance(data, pd.DataFrame):
        return data
    path = Path(data)
    if not path.is_file():
        raise DataError(f"data file '{path}' not found")
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            frame.attrs["file"] = str(path)
            return frame
        frame = pd.read_csv(path, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            OSError, ValueError) as err:
        raise DataError(f"cannot read data file '{path}': {err}") from None
    frame.attrs["source"] = frame.attrs["file"] = str(path)
    return frame


def rows_phrase(frame: pd.DataFrame, positions) -> str:
    """'rows 3, 17' by frame label; for a CSV, also the file's line numbers."""
    positions = np.asarray(positions, dtype=int)
    text = describe_rows([canon(v) for v in frame.index[positions]])
    source = frame.attrs.get("source")
    if source and isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0:
        lines = ", ".join(str(p + 2) for p in positions[:5])
        text += f" (line{'s' if len(positions) > 1 else ''} {lines} of {Path(source).name})"
    elif "file" in frame.attrs:
        text += f" of {Path(frame.attrs['file']).name}"
    return text


def _values_phrase(series: pd.Series, positions) -> str:
    shown = [repr(canon(v)) for v in series.iloc[np.asarray(positions)[:3]]]
    return "values " + ", ".join(shown) if len(shown) > 1 else "value " + shown[0]


class Binder:
    """Checks columns of a frame against a model, collecting positioned errors."""

    def __init__(self, model: ir.Model, frame: pd.DataFrame):
        self.model = model
        self.frame = frame
        self.out = Collector(model.source)
        where = frame.attrs.get("source")
        self.where = f" ({Path(where).name})" if where else ""

    def column(self, name: str, span: Span | None, also: tuple[str, ...] = ()) -> pd.Series | None:
        if name not in self.frame.columns:
            self.out.error(f"column '{name}' not found in the data{self.where}"
                           + did_you_mean(name, [str(c) for c in self.frame.columns] + list(also)),
                           span)
            return None
        series = self.frame[name]
        missing = np.flatnonzero(series.isna().to_numpy())
        if len(missing):
            self.out.error(f"column '{name}' has missing values in "
                           + rows_phrase(self.frame, missing), span)
            return None
        return series

    def numeric(self, name: str, span: Span | None, also: tuple[str, ...] = ()) -> np.ndarray | None:
        series = self.column(name, span, also)
        if series is None:
            return None
        values = pd.to_numeric(series, errors="coerce")
        if series.dtype == bool:
            values = series.astype(float)
        bad = np.flatnonzero(~np.isfinite(values.to_numpy(dtype=float)))
        if len(bad):
            self.out.error(f"column '{name}' must be numeric; {_values_phrase(series, bad)} in "
                           + rows_phrase(self.frame, bad), span)
            return None
        return values.to_numpy(dtype=float)


# ---- strata ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Factor:
    """One bound factor of the regularization graph."""

    columns: tuple[str, ...]
    column_labels: tuple[tuple, ...]  # node labels per column (grid) or (labels,)
    graph: Graph
    weight: ir.Hyper
    text_labels: bool = False  # labels from a file: data values meet them as text

    @property
    def n(self) -> int:
        return self.graph.n


@dataclass(frozen=True)
class Strata:
    factors: tuple[Factor, ...] = ()

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(f.n for f in self.factors) or (1,)

    @property
    def k(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for f in self.factors for c in f.columns)

    def index(self) -> pd.Index:
        """The K strata as a (Multi)Index over the stratification columns."""
        if not self.factors:
            return pd.Index(["all"], name="stratum")
        lists = [list(labels) for f in self.factors for labels in f.column_labels]
        if len(lists) == 1:
            return pd.Index(lists[0], name=self.columns[0])
        return pd.MultiIndex.from_product(lists, names=list(self.columns))

    def labels(self, lo: int, hi: int) -> pd.DataFrame:
        """The stratification columns' labels of strata lo..hi − 1."""
        lists = [list(labels) for f in self.factors for labels in f.column_labels]
        codes = np.unravel_index(np.arange(lo, hi), [len(v) for v in lists])
        out = {}
        for name, values, code in zip(self.columns, lists, codes, strict=True):
            column = np.empty(len(values), dtype=object)
            column[:] = values if len({type(v) for v in values}) == 1 else [str(v) for v in values]
            out[name] = column[code]
        return pd.DataFrame(out)

    def graphs(self) -> list[Graph]:
        return [f.graph for f in self.factors]


def _observed(series: pd.Series) -> list:
    values = [canon(v) for v in pd.unique(series)]
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def _declared(spec: ir.NodeSpec) -> list:
    return spec.labels() if isinstance(spec, ir.IntRange) else [canon(v) for v in spec]


def bind_strata(binder: Binder, fitted: Strata | None = None) -> tuple[Strata, np.ndarray | None]:
    """Node sets (declared, read from a graph file, or observed) and each record's stratum."""
    model, frame = binder.model, binder.frame
    factors: list[Factor] = []
    per_factor: list[np.ndarray | None] = []
    for i, strat in enumerate(model.strata):
        spans = strat.column_spans or (strat.span,) * len(strat.columns)
        series = [binder.column(c, s) for c, s in zip(strat.columns, spans, strict=True)]
        factor = fitted.factors[i] if fitted is not None else _build_factor(binder, strat, series)
        if factor is None:
            per_factor.append(None)
            continue
        factors.append(factor)
        per_factor.append(_locate(binder, strat, factor, series, spans))
    strata = fitted or Strata(tuple(factors))
    if any(p is None for p in per_factor) or binder.out.diagnostics:
        return strata, None
    if not per_factor:
        return strata, np.zeros(len(frame), dtype=np.int64)
    z = np.ravel_multi_index(tuple(per_factor), strata.shape) if per_factor else None
    return strata, np.asarray(z, dtype=np.int64)


def _build_factor(binder: Binder, strat: ir.Stratification, series) -> Factor | None:
    kind = GRAPHS[strat.graph.name]
    p = strat.graph.p
    base = binder.model.directory
    if kind.from_file:
        try:
            labels, pairs, weights = kind.read(p, base)
        except GraphError as err:
            binder.out.error(str(err), strat.graph.span)
            return None
        from .solvers.graphs import edge_list_graph

        if strat.nodes is not None:  # declared nodes fix the order and must cover the file
            declared = [canon_text(v) for v in _declared(strat.nodes[0])]
            unknown = [lab for lab in labels if lab not in declared]
            if unknown:
                binder.out.error("graph file names nodes that are not declared: "
                                 + ", ".join(repr(u) for u in unknown[:5]), strat.graph.span)
                return None
            order = {lab: declared.index(lab) for lab in labels}
            pairs = np.vectorize(lambda j: order[labels[j]])(pairs)
            labels = declared
        graph = edge_list_graph(len(labels), pairs, weights)
        return Factor(strat.columns, (tuple(labels),), graph, strat.weight, text_labels=True)
    node_lists = []
    for j, s in enumerate(series):
        if strat.nodes is not None:
            node_lists.append(_declared(strat.nodes[j]))
        elif s is None:
            return None
        else:
            observed = _observed(s)
            if kind.multi_column and all(isinstance(v, int) and not isinstance(v, bool)
                                         for v in observed):
                observed = list(range(observed[0], observed[-1] + 1))  # a lattice has no gaps
            node_lists.append(observed)
    built: Built = kind.build(node_lists, p, base)
    column_labels = tuple(tuple(n) for n in node_lists) if len(node_lists) > 1 else (built.labels,)
    return Factor(strat.columns, column_labels, built.graph, strat.weight)


def _locate(binder: Binder, strat, factor: Factor, series, spans) -> np.ndarray | None:
    """Each record's node index within one factor; values off the graph are errors."""
    if any(s is None for s in series):
        return None
    idx_per_col = []
    for labels, s, name, span in zip(factor.column_labels, series, strat.columns, spans,
                                     strict=True):
        key = canon_text if factor.text_labels else canon
        lookup = {key(v): i for i, v in enumerate(labels)}
        raw = s.to_numpy()
        inverse, uniq = pd.factorize(pd.Series(raw))
        mapped = np.array([lookup.get(key(v), -1) for v in uniq], dtype=np.int64)
        idx = mapped[inverse] if len(uniq) else np.zeros(0, dtype=np.int64)
        bad = np.flatnonzero(idx < 0)
        if len(bad):
            unknown = sorted({repr(canon(v)) for v in raw[bad]})[:5]
            binder.out.error(f"column '{name}' has values that are not nodes of its graph: "
                             + ", ".join(unknown) + " in " + rows_phrase(binder.frame, bad), span)
            return None
        idx_per_col.append(idx)
    if len(idx_per_col) == 1:
        return idx_per_col[0]
    return np.ravel_multi_index(tuple(idx_per_col), tuple(len(c) for c in factor.column_labels))


# ---- features and response --------------------------------------------------------------
def bind_features(binder: Binder) -> np.ndarray | None:
    model = binder.model
    n = len(binder.frame)
    if not model.features:
        return np.ones((n, 1))
    spans = model.feature_spans or (None,) * len(model.features)
    columns = []
    for name, span in zip(model.features, spans, strict=True):
        if name == INTERCEPT and name not in binder.frame.columns:
            columns.append(np.ones(n))
            continue
        values = binder.numeric(name, span, also=(INTERCEPT,))
        columns.append(values)
    if any(c is None for c in columns):
        return None
    return np.column_stack(columns) if columns else np.ones((n, 1))


def bind_response(binder: Binder, classes: tuple | None = None) -> responses.Encoded | None:
    model = binder.model
    loss = LOSSES[model.response.loss.name]
    spans = model.response.column_spans or (model.response.span,) * len(model.response.columns)
    series = [binder.column(c, s) for c, s in zip(model.response.columns, spans, strict=True)]
    if any(s is None for s in series):
        return None
    raw = np.column_stack([s.to_numpy(dtype=object) for s in series])
    problems: list[responses.Problem] = []
    encoded = responses.DOMAINS[loss.domain](raw, classes, problems)
    for problem in problems:
        cols = "', '".join(model.response.columns)
        where = ""
        if len(problem.rows) == len(binder.frame) and not problem.message.startswith("must have"):
            where = f" (all {len(problem.rows)} rows)"
        elif 0 < len(problem.rows) < len(binder.frame):
            where = (f"; {_values_phrase(series[0], problem.rows)} in "
                     f"{rows_phrase(binder.frame, problem.rows)}")
        binder.out.error(f"response '{cols}' {problem.message} for loss '{loss.name}'{where}",
                         spans[0])
    return None if problems else encoded


# ---- the design ----------------------------------------------------------------------------
@dataclass
class Design:
    """Arrays a backend needs; θ has shape (K, rows, outputs)."""

    model: ir.Model
    loss: Loss
    strata: Strata
    x: np.ndarray  # (N, n)
    y: np.ndarray | None  # (N, m) encoded, None when predicting
    z: np.ndarray  # (N,) stratum of each record
    rows: tuple[str, ...]
    outputs: tuple[str, ...]
    classes: tuple | None
    index: pd.Index = field(repr=False)

    @property
    def n_records(self) -> int:
        return len(self.z)

    @property
    def theta_shape(self) -> tuple[int, int, int]:
        return (self.strata.k, len(self.rows), len(self.outputs))

    def record_matrix(self) -> sp.csr_matrix:
        """N × (K·n) sparse: record i's features placed in its stratum's block."""
        n_rec, n = self.x.shape
        cols = (self.z[:, None] * n + np.arange(n)[None, :]).reshape(-1)
        rows = np.repeat(np.arange(n_rec), n)
        return sp.csr_matrix((self.x.reshape(-1), (rows, cols)), shape=(n_rec, self.strata.k * n))

    def predictor(self, theta: np.ndarray) -> np.ndarray:
        """xᵢᵀθ_{zᵢ} for every record: (N, outputs)."""
        return np.einsum("in,inm->im", self.x, theta[self.z])


def bind(model: ir.Model, frame: pd.DataFrame, *, strata: Strata | None = None,
         classes: tuple | None = None, with_response: bool = True) -> Design:
    """Binds a frame; raises SpecError listing every data problem (positioned in the spec)."""
    binder = Binder(model, frame)
    loss = LOSSES[model.response.loss.name]
    bound_strata, z = bind_strata(binder, strata)
    x = bind_features(binder)
    encoded = bind_response(binder, classes) if with_response else None
    binder.out.raise_if_any()
    classes = encoded.classes if encoded is not None else classes
    rows = loss.row_names(model.features, model.response.columns)
    outputs = loss.output_names(model.response.columns, classes)
    if loss.name == "gaussian":
        x = np.ones((len(frame), 1))
    return Design(model, loss, bound_strata, x, encoded.values if encoded else None, z, rows,
                  outputs, classes, frame.index)
