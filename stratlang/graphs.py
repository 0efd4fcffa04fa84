"""The graph registry: one entry per regularization-graph kind.

An entry turns node labels (declared in the spec or observed in the data) into a
:class:`solvers.graphs.Graph`. File-based kinds (``edges``, ``tree``) read their nodes
and edges from a CSV file (source, target[, weight]) relative to the spec.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .registry import Param, Registry
from .solvers import graphs as g

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


@dataclass(frozen=True)
class GraphKind:
    name: ClassVar[str]
    doc: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    multi_column: ClassVar[bool] = False
    from_file: ClassVar[bool] = False

    def build(self, nodes: list[list], p: dict[str, Any], base: Path) -> Built:
        raise TypeError(f"graph '{self.name}' builds from a file")

    def read(self, p: dict[str, Any], base: Path) -> tuple[list, np.ndarray, np.ndarray]:
        raise TypeError(f"graph '{self.name}' has no file")


def register(cls: type[GraphKind]) -> type[GraphKind]:
    GRAPHS.register(cls.name, cls())
    return cls


@register
class Path_(GraphKind):
    name = "path"
    doc = "Consecutive nodes joined (time, ordered categories): θ varies smoothly."

    def build(self, nodes, p, base):
        return Built(tuple(nodes[0]), g.path_graph(len(nodes[0])))


@register
class Cycle(GraphKind):
    name = "cycle"
    doc = "A path whose ends are joined (hour of day, day of week, angle)."

    def build(self, nodes, p, base):
        return Built(tuple(nodes[0]), g.cycle_graph(len(nodes[0])))


@register
class Complete(GraphKind):
    name = "complete"
    doc = "Every pair of nodes joined: all models pulled toward each other."

    def build(self, nodes, p, base):
        return Built(tuple(nodes[0]), g.complete_graph(len(nodes[0])))


@register
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


@register
class Grid(GraphKind):
    name = "grid"
    doc = ("A lattice over one or more integer-binned columns (e.g. lat/long bins): each node "
           "joined to its neighbours along every axis (4 neighbours in 2-D).")
    multi_column = True

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


@register
class Edges(GraphKind):
    name = "edges"
    doc = "A custom (entity) graph read from a CSV edge list: source,target[,weight]."
    params = (Param("file", type="string", required=True, doc="the edge list, relative to the spec"),)
    from_file = True

    def read(self, p, base):
        return read_edge_file(base / p["file"])


@register
class Tree(GraphKind):
    name = "tree"
    doc = "A hierarchy read from a CSV edge list (parent,child[,weight]); must be a tree."
    params = (Param("file", type="string", required=True, doc="the edge list, relative to the spec"),)
    from_file = True

    def read(self, p, base):
        labels, pairs, weights = read_edge_file(base / p["file"])
        graph = g.edge_list_graph(len(labels), pairs, weights)
        if not g.is_tree(graph):
            raise GraphError(f"graph file '{base / p['file']}' is not a tree: {len(labels)} nodes, "
                             f"{graph.n_edges} edges, {g.n_components(graph)} connected part(s)")
        return labels, pairs, weights
