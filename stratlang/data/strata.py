"""The strata of a stratified model: graph factors bound to the data, and each record's
stratum (its index in the C-ordered product of the factors' nodes)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..kinds.graphs import GRAPHS, GraphError, canon, canon_text
from ..language import codes as diagnostic_codes
from ..language import ir, limits
from ..language.errors import DataWarning, did_you_mean, warn
from ..language.policies import UNSEEN_POLICIES
from ..language.printer import literal
from ..solvers.graphs import Graph
from .frames import Binder, rows_phrase, values_phrase


@dataclass(frozen=True)
class Factor:
    """One bound factor of the regularization graph."""

    columns: tuple[str, ...]
    column_labels: tuple[tuple, ...]  # node labels per column (grid) or (labels,)
    graph: Graph
    weight: ir.Hyper
    hyper_name: str  # the name of the factor's weight
    text_labels: bool = False  # labels from a file: data values meet them as text
    hub: int | None = None  # the node whose model stands for all (a star's centre), if any

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
        return math.prod(self.shape)  # exact, however large (np.prod would wrap around)

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


def _observed(binder: Binder, series: pd.Series, span) -> list | None:
    """The distinct values of a stratification column, sorted: its nodes. A column mixing
    numbers and text (1 and '1' would be two nodes) is an error naming the rows."""
    values = [canon(v) for v in pd.unique(series)]
    texts = {v for v in values if isinstance(v, str)}
    if texts and len(texts) < len(values):
        kinds = series.map(lambda v: isinstance(canon(v), str)).to_numpy()
        fewer = np.flatnonzero(kinds if kinds.sum() <= len(kinds) / 2 else ~kinds)
        binder.out.error(f"column '{series.name}' mixes numbers and text: "
                         f"{values_phrase(series, fewer)} in {rows_phrase(binder.frame, fewer)} "
                         "differ in kind from the others; give the column one type", span,
                         code=diagnostic_codes.NOT_NUMERIC)
        return None
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def _with_left_out(observed: list, series: pd.Series) -> list:
    """The nodes observed, with the present values of rows left out (those of the kind
    of the others: a left-out row is not reported for mixing kinds)."""
    text = bool(observed) and isinstance(observed[0], str)
    more = {v for v in (canon(v) for v in pd.unique(series.dropna()))
            if isinstance(v, str) == text or not observed}
    values = list(dict.fromkeys([*observed, *more]))
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def _declared(spec: ir.NodeSpec) -> list:
    return spec.labels() if isinstance(spec, ir.IntRange) else [canon(v) for v in spec]


UNSEEN = UNSEEN_POLICIES  # what predict does with values that are no node


def bind_strata(binder: Binder, fitted: Strata | None = None, unseen: str = "error",
                graphs: dict[str, Any] | None = None, left_out: pd.DataFrame | None = None
                ) -> tuple[Strata, np.ndarray | None, np.ndarray | None]:
    """Node sets (declared, read from a graph file or given, or observed), each record's
    stratum z, and its node in each factor (N, F; None when every record has a stratum:
    z gives them, see ``Design.node_codes``). With ``fitted`` strata, a value that is
    no node is an error (``unseen="error"``), its factor's hub (``"hub"``), or unknown
    (``"common"``: node −1 and z −1, the model averaged over the factor's nodes).
    ``left_out``: rows ``missing drop`` left out, whose (present) values are nodes too:
    the graph is the data's, and predicting for those rows finds their strata."""
    model, frame = binder.model, binder.frame
    factors: list[Factor] = []
    per_factor: list[np.ndarray | None] = []
    for i, strat in enumerate(model.strata):
        spans = strat.column_spans or (strat.span,) * len(strat.columns)
        series = [binder.column(c, s) for c, s in zip(strat.columns, spans, strict=True)]
        supplied = (graphs or {}).get(strat.columns[0]) if len(strat.columns) == 1 else None
        factor = (fitted.factors[i] if fitted is not None
                  else _build_factor(binder, strat, series, supplied, left_out))
        if factor is None:
            per_factor.append(None)
            continue
        factors.append(factor)
        per_factor.append(_locate(binder, strat, factor, series, spans,
                                  unseen if fitted is not None else None))
    strata = fitted or Strata(tuple(factors))
    if fitted is None and strata.k > limits.MAX_STRATA:
        binder.out.error(f"the strata number K = {' × '.join(f'{n:,}' for n in strata.shape)} = "
                         f"{strata.k:,}; a model has at most {limits.MAX_STRATA:,} strata",
                         model.strata[0].span, code=diagnostic_codes.TOO_LARGE)
    elif (fitted is None and model.basis is not None and len(factors) == len(model.strata)
          and (problem := limits.basis_problem(model.basis, strata.k))):
        binder.out.error(problem, model.basis_span,
                         code=diagnostic_codes.TOO_LARGE)  # binding: check reports it, not fit only
    located = [p for p in per_factor if p is not None]
    if len(located) != len(per_factor) or binder.out.diagnostics:
        return strata, None, None
    if not located:
        zeros = np.zeros(len(frame), dtype=np.int64)
        return strata, zeros, zeros[:, None]
    known = _no_negative(located)
    if known.all():  # (the N × F codes follow from z: 140 MB not made at the crime scale)
        return strata, np.ravel_multi_index(tuple(located), strata.shape), None
    # (made a factor at a time, contiguously, and seen N × F: column_stack wrote it strided)
    codes = np.array(located, dtype=np.int64).T
    z = np.full(len(frame), -1, dtype=np.int64)
    z[known] = np.ravel_multi_index(tuple(c[known] for c in located), strata.shape)
    return strata, z, codes


def _no_negative(columns: list[np.ndarray]) -> np.ndarray:
    """Rows where every column is ≥ 0."""
    out = columns[0] >= 0
    for column in columns[1:]:
        out &= column >= 0
    return out


def _build_factor(binder: Binder, strat: ir.Stratification, series,
                  supplied: Any = None, left_out: pd.DataFrame | None = None) -> Factor | None:
    kind = GRAPHS[strat.graph.name]
    node_lists: list[list] | None = None
    if strat.nodes is not None:
        node_lists = [_declared(spec) for spec in strat.nodes]
    elif not kind.from_file:
        if any(s is None for s in series):
            return None
        node_lists = []
        spans = strat.column_spans or (strat.span,) * len(strat.columns)
        for s, span in zip(series, spans, strict=True):
            observed = _observed(binder, s, span)
            if observed is None:
                return None
            if left_out is not None and s.name in left_out.columns:
                observed = _with_left_out(observed, left_out[s.name])
            if kind.integer_lattice and all(isinstance(v, int) and not isinstance(v, bool)
                                            for v in observed):
                if observed[-1] - observed[0] >= limits.MAX_NODES:  # before filling it in
                    node_lists.append([None] * limits.MAX_NODES + [None])
                    continue
                observed = list(range(observed[0], observed[-1] + 1))  # a lattice has no gaps
            _note_inferred(strat, kind, s.name, observed)
            node_lists.append(observed)
    if node_lists is not None:
        sizes = [len(n) for n in node_lists]
        if problem := limits.factor_too_large(kind.name, sizes, kind.edge_count(sizes)):
            binder.out.error(problem, strat.graph.span, code=diagnostic_codes.TOO_LARGE)
            return None
    try:
        built = kind.build(node_lists, strat.graph.p, binder.model.directory,
                           supplied=supplied, column=strat.columns[0])
    except GraphError as err:
        binder.out.error(str(err), strat.graph.span, code=diagnostic_codes.GRAPH_FAILED)
        return None
    if problem := limits.factor_too_large(kind.name, [built.graph.n], built.graph.n_edges):
        binder.out.error(problem, strat.graph.span, code=diagnostic_codes.TOO_LARGE)
        return None
    column_labels = (tuple(tuple(n) for n in node_lists)
                     if node_lists is not None and len(node_lists) > 1 else (built.labels,))
    return Factor(strat.columns, column_labels, built.graph, strat.weight, strat.hyper_name,
                  built.text_labels, built.hub)


def _note_inferred(strat: ir.Stratification, kind: Any, column: str, observed: list) -> None:
    """A graph over nodes inferred from the data that joins what may not be neighbours (a
    gap, a cycle's wrap) is warned of, with the ``nodes`` statement that fixes it."""
    notes = kind.inferred_nodes_notes(observed)
    if not notes:
        return
    where = f" (line {strat.span.line})" if strat.span is not None else ""
    first, last = observed[0], observed[-1]
    example = (f"nodes {first}..{last}" if isinstance(first, int) and isinstance(last, int)
               else "nodes [...]")
    warn(f"stratify {column} ~ {kind.name}{where}: its nodes were inferred from the data, "
         f"{'; '.join(notes)}; declare them, e.g. `{example}` with the full range, to say "
         "which values are neighbours", DataWarning)


def _node_key(value: Any) -> Any:
    """A value as it meets nodes: true/false apart from the numbers 1/0 (Python's True
    equals 1, and a boolean column would silently take the nodes 0 and 1)."""
    value = canon(value)
    return ("bool", value) if isinstance(value, bool) else value


def _unseen_hint(factor: Factor, unseen: str | None) -> tuple[str | None, str | None]:
    """The hint for values that are no node, for Python and for the command line."""
    if unseen is None:  # fitting: the nodes come from the data or the spec
        return None, None
    if factor.hub is not None and unseen != "hub":
        does = " uses the hub's model (the star's centre) for them"
        return "predict(..., unseen='hub')" + does, "--unseen hub" + does
    does = " uses the model averaged over the factor's nodes"
    if unseen == "hub":
        no_hub = "this factor's graph has no hub (a star graph has one); "
        return no_hub + "unseen='common'" + does, no_hub + "--unseen common" + does
    return "predict(..., unseen='common')" + does, "--unseen common" + does


TABLE_SLACK = 1024  # integer values spanning up to 4 × the nodes + this: looked up in a table


def node_indices(raw: np.ndarray, lookup: dict, key: Callable[[Any], Any]) -> np.ndarray:
    """Each value's index in ``lookup`` (keyed by ``key(value)``), −1 where it has none.
    Integer values over a range not much wider than the nodes go through a table indexed
    by value (one pass; factorizing 3.5 million records took ~50 ms a column), any
    others through their distinct values."""
    if raw.dtype.kind in "iu" and len(raw):
        lo, hi = int(raw.min()), int(raw.max())
        if hi - lo < 4 * len(lookup) + TABLE_SLACK and -(2 ** 62) < lo <= hi < 2 ** 62:
            table = np.array([lookup.get(key(v), -1) for v in range(lo, hi + 1)],
                             dtype=np.int64)
            return table[raw.astype(np.int64, copy=False) - lo]
    inverse, uniq = pd.factorize(pd.Series(raw))
    mapped = np.array([lookup.get(key(v), -1) for v in uniq], dtype=np.int64)
    return mapped[inverse] if len(uniq) else np.zeros(0, dtype=np.int64)


def _locate(binder: Binder, strat, factor: Factor, series, spans,
            unseen: str | None = None) -> np.ndarray | None:
    """Each record's node within one factor; a value off the graph is an error, or (when
    predicting, by ``unseen``) the hub, or −1 (see :func:`bind_strata`)."""
    if any(s is None for s in series):
        return None
    idx_per_col = []
    for labels, s in zip(factor.column_labels, series, strict=True):
        key = canon_text if factor.text_labels else _node_key
        lookup = {key(v): i for i, v in enumerate(labels)}
        idx_per_col.append(node_indices(s.to_numpy(), lookup, key))
    shape = tuple(len(c) for c in factor.column_labels)
    off = ~_no_negative(idx_per_col)
    if off.any() and not (unseen == "common" or (unseen == "hub" and factor.hub is not None)):
        bad = np.flatnonzero(off)
        values = [tuple(canon(s.iloc[i]) for s in series) for i in bad]
        shown = sorted({repr(v[0] if len(v) == 1 else v) for v in values})[:5]
        where = "', '".join(strat.columns)
        as_text = [{canon_text(v) for v in labels} for labels in factor.column_labels]
        same_text = all(all(canon_text(x) in known for x, known in zip(v, as_text, strict=True))
                        for v in values)
        hint: str | None
        cli_hint: str | None
        if any(isinstance(x, bool) for v in values for x in v) and not factor.text_labels:
            hint = cli_hint = ("true/false values are not the numbers 1/0: convert the column "
                               "yourself (column.astype(int)) if they stand for those nodes")
        elif same_text and not factor.text_labels:
            hint = cli_hint = ("the values match nodes only as text (e.g. '1' and 1): give the "
                               "column the type it had when the model was fitted")
        else:
            hint, cli_hint = _unseen_hint(factor, unseen)
        binder.out.error(f"column '{where}' has values that are not nodes of its graph: "
                         + ", ".join(shown) + " in " + rows_phrase(binder.frame, bad), spans[0],
                         hint, cli_hint, code=diagnostic_codes.NOT_A_NODE)
        return None
    if len(idx_per_col) == 1:
        idx = idx_per_col[0]
    else:
        idx = np.full(len(off), -1, dtype=np.int64)
        idx[~off] = np.ravel_multi_index(tuple(c[~off] for c in idx_per_col), shape)
    if off.any() and unseen == "hub":
        assert factor.hub is not None  # values off a graph with no hub were reported above
        idx = np.where(off, factor.hub, idx)
    return np.where(off, -1, idx) if unseen == "common" else idx




# ---- where: the strata a clause selects ---------------------------------------------------
def _node_values(factor: Factor, j: int) -> np.ndarray:
    """The value of the factor's j-th column at each of its nodes (node order)."""
    if len(factor.column_labels) == len(factor.columns):  # nodes: the product of the lists
        sizes = [len(labels) for labels in factor.column_labels]
        position = np.unravel_index(np.arange(factor.n), sizes)[j]
        values = np.empty(sizes[j], dtype=object)
        values[:] = list(factor.column_labels[j])
        return values[position]
    values = np.empty(factor.n, dtype=object)  # labels are tuples, one per node
    values[:] = [label[j] if isinstance(label, tuple) else label
                 for label in factor.column_labels[0]]
    return values


def factor_masks(strata: Strata, where: ir.Where) -> list[np.ndarray]:
    """Per factor, which of its nodes satisfy the clause's conditions on its columns
    (values meet labels as text: 1976 == "1976")."""
    masks = [np.ones(f.n, dtype=bool) for f in strata.factors]
    for cond in where.conditions:
        for a, factor in enumerate(strata.factors):
            if cond.column not in factor.columns:
                continue
            texts = np.array([canon_text(v) for v in _node_values(
                factor, factor.columns.index(cond.column))], dtype=object)
            hit = np.isin(texts, [canon_text(v) for v in cond.values])
            masks[a] &= ~hit if cond.negated else hit
    return masks


def where_strata(strata: Strata, where: ir.Where | None) -> np.ndarray | None:
    """The indices of the strata a clause selects (sorted); None for no clause (all)."""
    return None if where is None else select_strata(strata, where)


def select_strata(strata: Strata, where: ir.Where) -> np.ndarray:
    """The indices of the strata a clause selects, sorted."""
    masks = factor_masks(strata, where)
    selected = masks[0]
    for mask in masks[1:]:  # C order, as the strata are numbered
        selected = np.logical_and.outer(selected, mask).reshape(-1)
    return np.flatnonzero(selected)


def check_where(binder: Binder, strata: Strata, where: ir.Where) -> None:
    """Records an error for a value that is no node of its column (with the closest
    node), and for a clause that selects no stratum."""
    for cond in where.conditions:
        factor = next(f for f in strata.factors if cond.column in f.columns)
        labels = list(dict.fromkeys(_node_values(factor, factor.columns.index(cond.column))))
        texts = {canon_text(v): v for v in labels}
        spans = cond.value_spans or (cond.span,) * len(cond.values)
        for value, span in zip(cond.values, spans, strict=True):
            if canon_text(value) not in texts:
                shown = ", ".join(canon_text(v) for v in labels[:8]) + (
                    ", …" if len(labels) > 8 else "")
                hint = did_you_mean(canon_text(value), list(texts))
                binder.out.error(f"where: {literal(value)} is no node of column "
                                 f"'{cond.column}' (nodes {shown})"
                                 + (hint if hint.startswith("; did you mean") else ""), span,
                                 code=diagnostic_codes.NOT_A_NODE)
    if not binder.out.diagnostics and len(select_strata(strata, where)) == 0:
        binder.out.error("where selects no stratum", where.span, code=diagnostic_codes.NOT_A_NODE)


def rows_where(frame: pd.DataFrame, where: ir.Where) -> np.ndarray:
    """Which rows of a frame lie in the strata a clause selects, read from the rows'
    stratification columns (a row whose column is absent or missing is in none)."""
    inside = np.ones(len(frame), dtype=bool)
    for cond in where.conditions:
        if cond.column not in frame.columns:
            return np.zeros(len(frame), dtype=bool)
        column = frame[cond.column]
        wanted = {canon_text(v) for v in cond.values}
        matching = [v for v in pd.unique(column.dropna()) if canon_text(v) in wanted]
        hit = column.isin(matching).to_numpy()  # (text per distinct value, not per row)
        inside &= (~hit & column.notna().to_numpy()) if cond.negated else hit
    return inside
