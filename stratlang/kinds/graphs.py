"""The graph registry: one entry per regularization-graph kind.

An entry turns node labels (declared in the spec or observed in the data) into a
:class:`solvers.graphs.Graph`. File-based kinds (``edges``, ``tree``) read their nodes
and edges from a CSV file (source, target[, weight]) relative to the spec; declared
nodes then fix the order and must cover the file's.
"""

from __future__ import annotations

import abc
import contextlib
import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..language.params import Param
from ..language.reading import shown
from ..language.vocabulary import Registry
from ..solvers import graphs as g
from .files import FileProblem, line_numbers, read_csv

GRAPHS: Registry[GraphKind] = Registry("graph")
COMMON_NODE = "(common)"


class GraphError(Exception):
    """A problem with a graph's definition; the binder positions it in the spec."""


def canon(value: Any) -> Any:
    """A plain Python label: numpy scalars unwrapped, integral floats made ints, and any
    other kind of value (a date, a decimal…) its text, so that labels save as JSON."""
    if hasattr(value, "item") and not isinstance(value, str):
        with contextlib.suppress(TypeError, ValueError):  # (not all have a scalar to unwrap)
            value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


@dataclass(frozen=True)
class Built:
    labels: tuple  # node labels in graph order (tuples for multi-column kinds)
    graph: g.Graph
    text_labels: bool = False  # labels read from a file: data values meet them as text
    hub: int | None = None  # the node whose model stands for every node (a star's centre)


@dataclass(frozen=True)
class GraphKind(abc.ABC):
    name: ClassVar[str]
    doc: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    multi_column: ClassVar[bool] = False
    from_file: ClassVar[bool] = False  # nodes come from the kind's file, not from the data
    supplied: ClassVar[bool] = False  # the graph is given from Python at fit time
    integer_lattice: ClassVar[bool] = False  # observed integer labels fill min..max

    def files(self, p: dict[str, Any]) -> tuple[str, ...]:
        """The files (relative to the spec) this graph reads."""
        return ()

    def inferred_nodes_notes(self, labels: list) -> list[str]:
        """What a user must know of nodes inferred from the data (sorted observed values)
        that the graph joins as neighbours: phrases, none when nothing is surprising."""
        return []

    def edge_count(self, sizes: list[int]) -> int | None:
        """How many edges the graph has on nodes of these sizes (one per column), before
        it is built; None when the kind cannot tell (its edges come with it)."""
        return None

    @abc.abstractmethod
    def build(self, nodes: list[list] | None, p: dict[str, Any], base: Path, *,
              supplied: Any = None, column: str = "") -> Built:
        """The graph on ``nodes`` (one label list per column: declared, or observed in the
        data); for a kind that reads its nodes (a file, a graph given from Python), the
        declared nodes or None. ``supplied``: the graph given from Python for ``column``."""


@GRAPHS.entry
class Path_(GraphKind):
    name = "path"
    doc = "Consecutive nodes joined (time, ordered categories): θ varies smoothly."

    def edge_count(self, sizes):
        return max(sizes[0] - 1, 0)

    def build(self, nodes, p, base, *, supplied=None, column=""):
        return Built(tuple(nodes[0]), g.path_graph(len(nodes[0])))

    def inferred_nodes_notes(self, labels):
        return _gaps_note(labels, "path")


@GRAPHS.entry
class Cycle(GraphKind):
    name = "cycle"
    doc = "A path whose ends are joined (hour of day, day of week, angle)."

    def edge_count(self, sizes):
        return sizes[0] if sizes[0] >= 3 else max(sizes[0] - 1, 0)

    def build(self, nodes, p, base, *, supplied=None, column=""):
        return Built(tuple(nodes[0]), g.cycle_graph(len(nodes[0])))

    def inferred_nodes_notes(self, labels):
        if len(labels) < 3:
            return []
        wrap = (f"the cycle joins the last value seen, {labels[-1]!r}, back to the first, "
                f"{labels[0]!r}: right only if the data cover the whole period")
        return [*_gaps_note(labels, "cycle"), wrap]


def _gaps_note(labels: list, kind: str) -> list[str]:
    """Integer labels with gaps, which a path or cycle would join as neighbours."""
    if len(labels) < 2 or not all(isinstance(v, int) and not isinstance(v, bool)
                                  for v in labels):
        return []
    values = np.asarray(labels, dtype=np.int64)
    jumps = np.flatnonzero(np.diff(values) > 1)
    if len(jumps) == 0:
        return []
    shown = ", ".join(f"{values[j]} to {values[j + 1]}" for j in jumps[:3])
    more = f" and {len(jumps) - 3} more" if len(jumps) > 3 else ""
    return [f"the values have gaps, and the {kind} joins {shown}{more} as neighbours"]


@GRAPHS.entry
class Complete(GraphKind):
    name = "complete"
    doc = "Every pair of nodes joined: all models pulled toward each other."

    def edge_count(self, sizes):
        return sizes[0] * (sizes[0] - 1) // 2

    def build(self, nodes, p, base, *, supplied=None, column=""):
        return Built(tuple(nodes[0]), g.complete_graph(len(nodes[0])))


@GRAPHS.entry
class Star(GraphKind):
    name = "star"
    doc = (f"Every node joined to a center; without a center a hub node '{COMMON_NODE}' with "
           "no data is added: the common model (a center absent from the data is added so, "
           "under its own label).")
    params = (Param("center", type="node", default=None, doc="the hub node's label"),)

    def edge_count(self, sizes):
        return sizes[0]  # at most: a hub may be added

    def build(self, nodes, p, base, *, supplied=None, column=""):
        labels = list(nodes[0])
        center = COMMON_NODE if p["center"] is None else canon(p["center"])
        if center not in labels:
            labels.append(center)
        hub = labels.index(center)
        return Built(tuple(labels), g.star_graph(len(labels), hub), hub=hub)


@GRAPHS.entry
class Grid(GraphKind):
    name = "grid"
    doc = ("A lattice over one or more integer-binned columns (e.g. lat/long bins): each node "
           "joined to its neighbours along every axis (4 neighbours in 2-D).")
    multi_column = True
    integer_lattice = True

    def edge_count(self, sizes):
        total = math.prod(sizes)
        return sum(total // n * (n - 1) for n in sizes if n)

    def build(self, nodes, p, base, *, supplied=None, column=""):
        shape = tuple(len(n) for n in nodes)
        labels = tuple(itertools.product(*nodes)) if len(nodes) > 1 else tuple(nodes[0])
        return Built(labels, g.grid_graph(shape))


def read_edge_file(path: Path) -> tuple[list, np.ndarray, np.ndarray]:
    """(node labels in order of appearance, (E, 2) index pairs, weights)."""
    try:
        table = read_csv(path, "graph file", dtype=str, comment="#", skipinitialspace=True)
    except FileProblem as problem:
        raise GraphError(str(problem)) from None
    return _edges_from_table(table, f"graph file '{shown(path)}'", "lines")


def _edges_from_table(table: pd.DataFrame, where: str, unit: str = "rows"
                      ) -> tuple[list, np.ndarray, np.ndarray]:
    """(labels in order of appearance, index pairs, weights) of an edge-list table whose
    first two columns are the ends and an optional third the positive weights; problems
    name the ``unit``: 'rows' by position, or a file's 'lines'."""

    def places(positions: np.ndarray) -> str:
        numbers = line_numbers(table, positions[:5]) if unit == "lines" else None
        if numbers is None:  # by position: the lines of the file are not known
            return "rows " + ", ".join(str(int(i)) for i in positions[:5])
        return "lines " + ", ".join(str(i) for i in numbers)

    if not 2 <= table.shape[1] <= 3:  # (its names are not echoed: it is no edge list)
        raise GraphError(f"{where} has {table.shape[1]} column{'s' * (table.shape[1] != 1)}; "
                         "an edge list has the columns source,target[,weight]")
    ends = table.iloc[:, :2]
    if ends.isna().any().any():
        raise GraphError(f"{where} has empty node names on "
                         + places(np.flatnonzero(ends.isna().any(axis=1).to_numpy())))
    values = ends.to_numpy()
    labels = list(dict.fromkeys(canon_text(v) for v in values.reshape(-1)))
    index = {label: i for i, label in enumerate(labels)}
    pairs = np.array([index[canon_text(v)] for v in values.reshape(-1)],
                     dtype=np.int64).reshape(-1, 2)
    loops = np.flatnonzero(pairs[:, 0] == pairs[:, 1])
    if len(loops):  # a self-loop adds nothing to a Laplacian: most likely a typing slip
        raise GraphError(f"{where} joins a node to itself ({labels[pairs[loops[0], 0]]!r}) on "
                         + places(loops))
    weights = np.ones(len(pairs))
    if table.shape[1] >= 3:
        w = pd.to_numeric(table.iloc[:, 2], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(w) | (w <= 0))
        if len(bad):
            raise GraphError(f"{where}: weights must be positive numbers ({places(bad)})")
        weights = w
    return labels, pairs, weights


def edge_list_of(graph: Any) -> tuple[list, np.ndarray, np.ndarray]:
    """(labels, index pairs, weights) of a graph given from Python: a networkx graph (edge
    attribute 'weight', default 1), ``(scipy sparse or dense adjacency, labels)``, a pandas
    edge list (source, target[, weight]), or the path of an edge-list CSV file."""
    if isinstance(graph, str | Path):
        return read_edge_file(Path(graph))
    if isinstance(graph, pd.DataFrame):
        return _edges_from_table(graph.reset_index(drop=True), "the edge-list DataFrame")
    if hasattr(graph, "nodes") and hasattr(graph, "edges"):  # networkx, by its interface
        if getattr(graph, "is_directed", lambda: False)():
            raise GraphError("the networkx graph is directed: give an undirected one (e.g. "
                             "G.to_undirected())")
        labels = [canon_text(v) for v in graph.nodes]
        if len(set(labels)) != len(labels):
            raise GraphError("the networkx graph has nodes whose labels are equal as text")
        index = {v: i for i, v in enumerate(graph.nodes)}
        edges = list(graph.edges(data="weight", default=1.0))
        pairs = np.array([(index[a], index[b]) for a, b, _ in edges], dtype=np.int64).reshape(-1, 2)
        weights = pd.to_numeric(pd.Series([w for _, _, w in edges], dtype=object),
                                errors="coerce").to_numpy(dtype=float)
        if len(weights) and not np.all(np.isfinite(weights) & (weights > 0)):
            raise GraphError("the networkx graph's edge weights must be positive numbers")
        return labels, pairs, weights
    if isinstance(graph, tuple) and len(graph) == 2:
        matrix, labels = graph
        if isinstance(labels, str) or not hasattr(labels, "__len__"):
            raise GraphError("an adjacency is given with its node labels: (matrix, labels), "
                             "labels a list")
        return _adjacency(matrix, [canon_text(v) for v in labels])
    raise GraphError(f"cannot read a graph from a {type(graph).__name__}: give a networkx "
                     "graph, (adjacency matrix, labels), an edge-list DataFrame or a CSV path")


def _adjacency(matrix: Any, labels: list) -> tuple[list, np.ndarray, np.ndarray]:
    import scipy.sparse as sp

    try:
        a = sp.csr_matrix(matrix, dtype=float)
    except (TypeError, ValueError) as err:
        raise GraphError(f"the adjacency is not a matrix of numbers: {err}") from None
    a.sum_duplicates()
    a.eliminate_zeros()  # a stored 0 is no edge
    n = len(labels)
    if a.shape != (n, n):
        raise GraphError(f"the adjacency matrix is {a.shape[0]} × {a.shape[1]} but {n} labels "
                         "are given")
    if len(set(labels)) != n:
        raise GraphError("the adjacency's labels repeat a label")
    if a.nnz and (abs(a - a.T) > 1e-12 * (1 + abs(a).max())).nnz:
        raise GraphError("the adjacency matrix must be symmetric (an undirected graph)")
    a = a.tocoo()
    upper = a.row < a.col
    weights = a.data[upper].astype(float)
    if len(weights) and not np.all(np.isfinite(weights) & (weights > 0)):
        raise GraphError("the adjacency's entries must be positive numbers (0: no edge)")
    return labels, np.column_stack([a.row[upper], a.col[upper]]).astype(np.int64), weights


def canon_text(value: Any) -> str:
    """Node labels from files and from data meet as text ('1976' == 1976 == 1976.0)."""
    value = canon(value)
    if isinstance(value, str):
        # ASCII blanks only (a CSV file's padding): another space (NBSP, EM SPACE) is part
        # of the label, and only ASCII digits make a number (not '١', '１', '1_000')
        text = value.strip(" \t")
        return str(canon(float(text))) if _ASCII_NUMBER.fullmatch(text) else text
    return str(value)


_ASCII_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


class _EdgeList(GraphKind):
    """A kind whose nodes and edges come with it (a file, or a graph given from Python);
    declared nodes fix the order and must cover its nodes."""

    from_file = True

    @abc.abstractmethod
    def edge_list(self, p: dict[str, Any], base: Path, supplied: Any,
                  column: str) -> tuple[list, np.ndarray, np.ndarray, str]:
        """(labels, (E, 2) index pairs, weights, where they come from, for messages)."""

    def build(self, nodes, p, base, *, supplied=None, column=""):
        labels, pairs, weights, where = self.edge_list(p, base, supplied, column)
        self.validate(labels, pairs, weights, where)
        if nodes is not None:  # declared nodes fix the order and must cover the graph's
            declared = [canon_text(v) for v in nodes[0]]
            position = {label: i for i, label in enumerate(declared)}
            unknown = [label for label in labels if label not in position]
            if unknown:
                raise GraphError(f"{where} names nodes that are not declared: "
                                 + ", ".join(repr(u) for u in unknown[:5]))
            order = np.array([position[label] for label in labels], dtype=np.int64)
            pairs = order[pairs] if len(pairs) else pairs
            labels = declared
        return Built(tuple(labels), g.edge_list_graph(len(labels), pairs, weights),
                     text_labels=True)

    def validate(self, labels: list, pairs: np.ndarray, weights: np.ndarray, where: str) -> None:
        """Raises GraphError when the graph is not of this kind."""


class _EdgeFile(_EdgeList):
    params = (Param("file", type="string", required=True, doc="the edge list, relative to the spec"),)

    def files(self, p):
        return (p["file"],)

    def edge_list(self, p, base, supplied, column):
        path = base / p["file"]
        return (*read_edge_file(path), f"graph file '{shown(path)}'")


@GRAPHS.entry
class Edges(_EdgeFile):
    name = "edges"
    doc = "A custom (entity) graph read from a CSV edge list: source,target[,weight]."


@GRAPHS.entry
class Tree(_EdgeFile):
    name = "tree"
    doc = "A hierarchy read from a CSV edge list (parent,child[,weight]); must be a tree."

    def validate(self, labels, pairs, weights, where):
        ends = np.sort(pairs, axis=1)
        unique, counts = np.unique(ends, axis=0, return_counts=True)
        if (counts > 1).any():  # parallel edges would merge into one: a cycle of two
            a, b = unique[np.flatnonzero(counts > 1)[0]]
            raise GraphError(f"{where} is not a tree: it joins {labels[a]!r} and {labels[b]!r} "
                             "more than once (a cycle)")
        graph = g.edge_list_graph(len(labels), pairs, weights)
        if not g.is_tree(graph):
            raise GraphError(f"{where} is not a tree: {graph.n} nodes, {graph.n_edges} edges, "
                             f"{g.n_components(graph)} connected part(s)")


@GRAPHS.entry
class Given(_EdgeList):
    name = "given"
    supplied = True
    doc = ("A graph given from Python at fit time — a networkx graph, a scipy sparse "
           "adjacency with its node labels `(matrix, labels)`, or a pandas edge list "
           "(source, target[, weight]) — as `fit(graphs={\"column\": graph})`, "
           "`load(spec, graphs=…)`, or on the command line `--graph column=edges.csv`.")

    def edge_list(self, p, base, supplied, column):
        if supplied is None:
            raise GraphError(f"the graph of '{column}' is given from Python: pass "
                             f"graphs={{'{column}': graph}} to load or fit (a networkx graph, "
                             "(sparse adjacency, labels) or an edge-list DataFrame), or "
                             f"--graph {column}=edges.csv on the command line")
        return (*edge_list_of(supplied), f"the graph given for '{column}'")
