"""The strata of a stratified model: graph factors bound to the data, and each record's
stratum (its index in the C-ordered product of the factors' nodes)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..kinds.graphs import GRAPHS, GraphError, canon, canon_text
from ..language import ir
from ..solvers.graphs import Graph
from .frames import Binder, rows_phrase


@dataclass(frozen=True)
class Factor:
    """One bound factor of the regularization graph."""

    columns: tuple[str, ...]
    column_labels: tuple[tuple, ...]  # node labels per column (grid) or (labels,)
    graph: Graph
    weight: ir.Hyper
    hyper_name: str  # the name of the factor's weight
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

    def gammas(self, weights: dict[str, float]) -> list[float]:
        """Each factor's weight, from a model's weight values."""
        return [weights[f.hyper_name] for f in self.factors]


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
    node_lists: list[list] | None = None
    if strat.nodes is not None:
        node_lists = [_declared(spec) for spec in strat.nodes]
    elif not kind.from_file:
        if any(s is None for s in series):
            return None
        node_lists = []
        for s in series:
            observed = _observed(s)
            if kind.integer_lattice and all(isinstance(v, int) and not isinstance(v, bool)
                                            for v in observed):
                observed = list(range(observed[0], observed[-1] + 1))  # a lattice has no gaps
            node_lists.append(observed)
    try:
        built = kind.build(node_lists, strat.graph.p, binder.model.directory)
    except GraphError as err:
        binder.out.error(str(err), strat.graph.span)
        return None
    column_labels = (tuple(tuple(n) for n in node_lists)
                     if node_lists is not None and len(node_lists) > 1 else (built.labels,))
    return Factor(strat.columns, column_labels, built.graph, strat.weight, strat.hyper_name,
                  built.text_labels)


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


