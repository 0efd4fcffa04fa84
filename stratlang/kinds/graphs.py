"""The graph registry: one entry per regularization-graph kind.

An entry turns node labels (declared in the spec or observed in the data) into a
:class:`solvers.graphs.Graph`. File-based kinds (``edges``, ``tree``) read their nodes
and edges from a CSV file (source, target[, weight]) relative to the spec; declared
nodes then fix the order and must cover the file's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..language.params import Param
from ..language.vocabulary import Registry
from ..solvers import graphs as g

GRAPHS: Registry[GraphKind] = Registry("graph")
COMMON_NODE = "(common)"


class GraphError(Exception):
    """A problem with a graph's definition; the binder positions it in the spec."""


def canon(value: Any) -> Any:
    """A plain Python node label: numpy scalars unwrapped, integral floats made ints."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True)
class Built:
    labels: tuple  # node labels in graph order (tuples for multi-column kinds)
    graph: g.Graph
    text_labels: bool = False  # labels read from a file: data values meet them as text


@dataclass(frozen=True)
class GraphKind:
    name: ClassVar[str]
    doc: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    multi_column: ClassVar[bool] = False
    from_file: ClassVar[bool] = False  # nodes come from the kind's file, not from the data
    integer_lattice: ClassVar[bool] = False  # observed integer labels fill min..max

    def files(self, p: dict[str, Any]) -> tuple[str, ...]:
        """The files (relative to the spec) this graph reads."""
        return ()

    def build(self, nodes: list[list] | None, p: dict[str, Any], base: Path) -> Built:
        """The graph on ``nodes`` (one label list per column: declared, or observed in the
        data); for a file-based kind, the declared nodes or None."""
        raise NotImplementedError


@GRAPHS.entry
class Path_(GraphKind):
    name = "path"
    doc = "Consecutive nodes joined (time, ordered categories): θ varies smoothly."

    def build(self, nodes, p, base):
        return Built(tuple(nodes[0]), g.path_graph(len(nodes[0])))


@GRAPHS.entry
class Cycle(GraphKind):
    name = "cycle"
    doc = "A path whose ends are joined (hour of day, day of week, angle)."

    def build(self, nodes, p, base):
        return Built(tuple(nodes[0]), g.cycle_graph(len(nodes[0])))


@GRAPHS.entry
class Complete(GraphKind):
    name = "complete"
    doc = "Every pair of nodes joined: all models pulled toward each other."

    def build(self, nodes, p, base):
        return Built(tuple(nodes[0]), g.complete_graph(len(nodes[0])))


@GRAPHS.entry
class Star(GraphKind):
    name = "star"
    doc = (f"Every node joined to a center; without a center (or with one absent from the "
           f"data) a hub node '{COMMON_NODE}' with no data is added: the common model.")
    params = (Param("center", type="node", default=None, doc="the hub node's label"),)

    def build(self, nodes, p, base):
        labels = list(nodes[0])
        center = COMMON_NODE if p["center"] is None else canon(p["center"])
        if center not in labels:
            labels.append(center)
        return Built(tuple(labels), g.star_graph(len(labels), labels.index(center)))


@GRAPHS.entry
class Grid(GraphKind):
    name = "grid"
    doc = ("A lattice over one or more integer-binned columns (e.g. lat/long bins): each node "
           "joined to its neighbours along every axis (4 neighbours in 2-D).")
    multi_column = True
    integer_lattice = True

    def build(self, nodes, p, base):
        shape = tuple(len(n) for n in nodes)
        labels = tuple(itertools.product(*nodes)) if len(nodes) > 1 else tuple(nodes[0])
        return Built(labels, g.grid_graph(shape))


def read_edge_file(path: Path) -> tuple[list, np.ndarray, np.ndarray]:
    """(node labels in order of appearance, (E, 2) index pairs, weights)."""
    if not path.is_file():
        raise GraphError(f"graph file '{path}' not found")
    try:
        table = pd.read_csv(path, dtype=str, comment="#", skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise GraphError(f"cannot read graph file '{path}': {err}") from None
    if table.shape[1] < 2:
        raise GraphError(f"graph file '{path}' needs columns source,target[,weight]; "
                         f"found {list(table.columns)}")
    if table.iloc[:, :2].isna().any().any():
        rows = np.flatnonzero(table.iloc[:, :2].isna().any(axis=1).to_numpy()) + 2
        raise GraphError(f"graph file '{path}' has empty node names on lines "
                         + ", ".join(map(str, rows[:5])))
    ends = table.iloc[:, :2].to_numpy()
    labels = list(dict.fromkeys(canon_text(v) for v in ends.reshape(-1)))
    index = {lab: i for i, lab in enumerate(labels)}
    pairs = np.vectorize(lambda v: index[canon_text(v)])(ends).reshape(-1, 2)
    weights = np.ones(len(pairs))
    if table.shape[1] >= 3:
        w = pd.to_numeric(table.iloc[:, 2], errors="coerce").to_numpy()
        bad = np.flatnonzero(~np.isfinite(w) | (w <= 0))
        if len(bad):
            raise GraphError(f"graph file '{path}': weights must be positive numbers "
                             f"(lines {', '.join(map(str, (bad + 2)[:5]))})")
        weights = w
    return labels, pairs, weights


def canon_text(value: Any) -> str:
    """Node labels from files and from data meet as text ('1976' == 1976 == 1976.0)."""
    value = canon(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            return text
        return str(canon(number)) if number == number else text
    return str(value)


class _EdgeFile(GraphKind):
    params = (Param("file", type="string", required=True, doc="the edge list, relative to the spec"),)
    from_file = True

    def files(self, p):
        return (p["file"],)

    def build(self, nodes, p, base):
        labels, pairs, weights = read_edge_file(base / p["file"])
        self.validate(labels, pairs, weights, base / p["file"])
        if nodes is not None:  # declared nodes fix the order and must cover the file
            declared = [canon_text(v) for v in nodes[0]]
            position = {label: i for i, label in enumerate(declared)}
            unknown = [label for label in labels if label not in position]
            if unknown:
                raise GraphError("graph file names nodes that are not declared: "
                                 + ", ".join(repr(u) for u in unknown[:5]))
            order = np.array([position[label] for label in labels], dtype=np.int64)
            pairs = order[pairs] if len(pairs) else pairs
            labels = declared
        return Built(tuple(labels), g.edge_list_graph(len(labels), pairs, weights),
                     text_labels=True)

    def validate(self, labels: list, pairs: np.ndarray, weights: np.ndarray, path: Path) -> None:
        """Raises GraphError when the file's own graph is not of this kind."""


@GRAPHS.entry
class Edges(_EdgeFile):
    name = "edges"
    doc = "A custom (entity) graph read from a CSV edge list: source,target[,weight]."


@GRAPHS.entry
class Tree(_EdgeFile):
    name = "tree"
    doc = "A hierarchy read from a CSV edge list (parent,child[,weight]); must be a tree."

    def validate(self, labels, pairs, weights, path):
        graph = g.edge_list_graph(len(labels), pairs, weights)
        if not g.is_tree(graph):
            raise GraphError(f"graph file '{path}' is not a tree: {graph.n} nodes, "
                             f"{graph.n_edges} edges, {g.n_components(graph)} connected part(s)")
