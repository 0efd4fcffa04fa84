"""One test case per registered kind. Tests take their kinds from the registries and their
data from these tables, so a kind without a case fails (test_registries checks the tables
cover every registry exactly)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

# ---- graphs ------------------------------------------------------------------------------
EDGE_FILE = "a,b,w\n0,1,2\n1,2,0.5\n1,3,1\n"  # a tree on the nodes 0..3 of column g


def edge_graph():
    """The tree of EDGE_FILE as a networkx graph (a graph given from Python)."""
    import networkx as nx

    graph = nx.Graph()
    graph.add_weighted_edges_from([(0, 1, 2.0), (1, 2, 0.5), (1, 3, 1.0)])
    return graph


@dataclass(frozen=True)
class GraphCase:
    call: str  # the graph as written in a stratify statement
    target: str  # the stratified column(s)
    strata: int  # K on :func:`graph_frame` (g in 0..3, h in 0..2)
    given: Callable[[], object] | None = None  # the graph to give from Python

    def statement(self, weight: float = 3) -> str:
        return f"stratify {self.target} ~ {self.call} weight {weight}\n"

    def graphs(self) -> dict:
        """What to pass as ``graphs=`` to load or fit."""
        return {self.target: self.given()} if self.given else {}


GRAPH_CASES = {
    "path": GraphCase("path", "g", 4),
    "cycle": GraphCase("cycle", "g", 4),
    "complete": GraphCase("complete", "g", 4),
    "star": GraphCase("star", "g", 5),  # a data-free hub is added
    "grid": GraphCase("grid", "(g, h)", 12),
    "edges": GraphCase('edges("g.csv")', "g", 4),
    "tree": GraphCase('tree("g.csv")', "g", 4),
    "given": GraphCase("given", "g", 4, edge_graph),
}


def graph_frame(rng: np.random.Generator, n: int = 300, tmp_path: Path | None = None
                ) -> pd.DataFrame:
    """Columns g (0..3) and h (0..2) to stratify, x, a binary y and a real r; writes the
    edge file of the file-based kinds into ``tmp_path``."""
    if tmp_path is not None:
        (tmp_path / "g.csv").write_text(EDGE_FILE)
    frame = pd.DataFrame({"g": rng.integers(0, 4, n), "h": rng.integers(0, 3, n),
                          "x": rng.normal(size=n)})
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-frame.x * (frame.g - 1.5)))).astype(int)
    frame["r"] = frame.x * frame.g + rng.normal(size=n)
    return frame


# ---- losses ------------------------------------------------------------------------------
@dataclass(frozen=True)
class LossCase:
    target: str  # the response as written (a tuple when the loss takes several columns)
    features: str  # the features statement ('' for distribution losses)
    response: Callable[[np.random.Generator, pd.DataFrame, np.ndarray], dict[str, np.ndarray]]


def _real(rng, frame, lin):
    return {"y": lin + rng.normal(size=len(frame)), "y2": -lin + rng.normal(size=len(frame))}


def _binary(rng, frame, lin):
    return {"y": np.where(lin + rng.normal(size=len(frame)) > 0, 1, 0)}


def _classes(rng, frame, lin):
    return {"y": np.digitize(lin + rng.normal(size=len(frame)) * 0.5, [-0.5, 0.5])}


FEATURES = "features a, b, intercept"
LOSS_CASES = {
    "squared": LossCase("(y, y2)", FEATURES, _real),
    "absolute": LossCase("(y, y2)", FEATURES, _real),
    "huber": LossCase("(y, y2)", FEATURES, _real),
    "quantile": LossCase("(y, y2)", FEATURES, _real),
    "logistic": LossCase("y", FEATURES, _binary),
    "hinge": LossCase("y", FEATURES, _binary),
    "square_classification": LossCase("y", FEATURES, _binary),
    "squared_hinge": LossCase("y", FEATURES, _binary),
    "multinomial": LossCase("y", FEATURES, _classes),
    "multiclass_hinge": LossCase("y", FEATURES, _classes),
    "poisson_regression": LossCase("y", FEATURES, lambda rng, f, lin: {
        "y": rng.poisson(np.exp(0.5 * lin))}),
    "exponential_regression": LossCase("y", FEATURES, lambda rng, f, lin: {
        "y": rng.exponential(np.exp(-0.5 * lin))}),
    "bernoulli": LossCase("y", "", lambda rng, f, lin: {
        "y": (rng.random(len(f)) < 0.3 + 0.2 * f.g / 2).astype(int)}),
    "poisson": LossCase("y", "", lambda rng, f, lin: {"y": rng.poisson(2 + f.g)}),
    "exponential": LossCase("y", "", lambda rng, f, lin: {"y": rng.exponential(1 + f.g)}),
    "tukey": LossCase("y", FEATURES, _real),
    "gaussian": LossCase("(y, y2)", "", lambda rng, f, lin: {
        "y": (y := rng.normal(size=len(f)) + f.g), "y2": 0.5 * y + rng.normal(size=len(f))}),
}


def data_for(loss: str, rng: np.random.Generator, n: int = 120) -> tuple[pd.DataFrame, str, str]:
    """A frame (features a, b; strata g in 0..2), the response target text and the
    features text for a loss."""
    case = LOSS_CASES[loss]
    x = rng.normal(size=(n, 2))
    frame = pd.DataFrame(x, columns=["a", "b"])
    frame["g"] = rng.integers(0, 3, n)
    for column, values in case.response(rng, frame, x @ np.array([0.8, -0.5])).items():
        frame[column] = values
    return frame, case.target, case.features


# ---- regularizers ------------------------------------------------------------------------
@dataclass(frozen=True)
class RegularizerCase:
    term: str  # as written after 'regularize'
    loss: str
    target: str


REGULARIZER_CASES = {
    "zero": RegularizerCase("0.3 * zero", "squared", "y"),
    "sum_squares": RegularizerCase("0.3 * sum_squares", "squared", "y"),
    "l1": RegularizerCase("0.3 * l1", "squared", "y"),
    "l2": RegularizerCase("0.3 * l2", "squared", "(y, y2)"),
    "elastic_net": RegularizerCase("0.3 * elastic_net(0.2)", "squared", "y"),
    "nuclear": RegularizerCase("0.3 * nuclear", "squared", "(y, y2)"),
    "nonnegative": RegularizerCase("nonnegative", "squared", "y"),
    "box": RegularizerCase("box(-0.2, 0.4)", "squared", "(y, y2)"),
    "nonzeros": RegularizerCase("nonzeros(k=1)", "squared", "y"),
    "mcp": RegularizerCase("0.3 * mcp(a=1)", "squared", "y"),
    "trace": RegularizerCase("0.3 * trace + 0.1 * sum_squares", "gaussian", "(y, y2)"),
}


# ---- distances ---------------------------------------------------------------------------
@dataclass(frozen=True)
class DistanceCase:
    target: str  # the column(s) as written in a distance statement
    call: str
    columns: dict[str, list]  # four samples' covariates
    distance: Callable[[dict[str, list], int, int], float]  # d(u_i, u_j) by hand
    files: dict[str, str] | None = None  # files the metric reads, by name


DISTANCE_CASES = {
    "abs": DistanceCase("u", "abs", {"u": [0.0, 0.5, 2.0, -1.0]},
                        lambda c, i, j: abs(c["u"][i] - c["u"][j])),
    "euclidean": DistanceCase("(u, v)", "euclidean",
                              {"u": [0.0, 3.0, 0.0, 1.0], "v": [0.0, 4.0, 1.0, 1.0]},
                              lambda c, i, j: float(np.hypot(c["u"][i] - c["u"][j],
                                                             c["v"][i] - c["v"][j]))),
    "discrete": DistanceCase("s", "discrete", {"s": ["p", "q", "p", "r"]},
                             lambda c, i, j: float(c["s"][i] != c["s"][j])),
    "matrix": DistanceCase("s", 'matrix("d.csv")', {"s": ["p", "q", "p", "r"]},
                           lambda c, i, j: {("p", "q"): 1.0, ("p", "r"): 2.5, ("q", "r"): 0.5}.get(
                               tuple(sorted((c["s"][i], c["s"][j]))), 0.0),
                           {"d.csv": ",p,q,r\np,0,1,2.5\nq,1,0,0.5\nr,2.5,0.5,0\n"}),
}


# ---- transforms --------------------------------------------------------------------------
@dataclass(frozen=True)
class TransformCase:
    values: list  # training values of the input
    expected: Callable[[np.ndarray], np.ndarray]  # the output columns (N, c) by hand
    names: list[str]  # the output columns' names for the input 'u'
    params: dict | None = None
    bad: tuple[list, list[int]] | None = None  # new values, and the rows it cannot take


_X = [0.5, 1.0, 4.0, 2.5]
TRANSFORM_CASES = {
    "log": TransformCase(_X, lambda v: np.log(v)[:, None], ["log(u)"],
                         bad=([1.0, 0.0, -2.0], [1, 2])),
    "log1p": TransformCase(_X, lambda v: np.log1p(v)[:, None], ["log1p(u)"],
                           bad=([0.0, -1.0], [1])),
    "sqrt": TransformCase(_X, lambda v: np.sqrt(v)[:, None], ["sqrt(u)"], bad=([-0.5], [0])),
    "center": TransformCase(_X, lambda v: (v - np.mean(_X))[:, None], ["center(u)"]),
    "standardize": TransformCase(_X, lambda v: ((v - np.mean(_X)) / np.std(_X))[:, None],
                                 ["standardize(u)"]),
    "categorical": TransformCase(["b", "a", "c", "b"],
                                 lambda v: np.column_stack([v == "a", v == "c"]).astype(float),
                                 ["u[T.a]", "u[T.c]"], {"reference": "b"},
                                 bad=(["a", "z"], [1])),
}


# ---- backends ----------------------------------------------------------------------------
STRATIFIED_SPEC = ("response y ~ logistic\nfeatures x, intercept\nregularize 0.1 * l1\n"
                   "stratify g ~ path weight 3\nstratify h ~ cycle weight 0.5\n")
EIGEN_SPEC = ("response y ~ logistic\nfeatures x, intercept\nregularize 0.1 * sum_squares\n"
              "stratify g ~ path weight 3\nstratify h ~ cycle weight 0.5\nbasis 6\n")
NEWTON_SPEC = ("response y ~ logistic\nfeatures x, intercept\nregularize 0.1 * sum_squares\n"
               "stratify g ~ path weight 3\nstratify h ~ cycle weight 0.5\n")
PERSONALIZED_SPEC = ("response y ~ squared\nfeatures x1, x2\nregularize 0.01 * l1\n"
                     "personalize rank 2 radius 0.1 learning_rate 0.001 max_iter 30 decay 1 "
                     "max_neighbors 1000\n"
                     "  distance u ~ abs\n")


@dataclass(frozen=True)
class BackendCase:
    spec: str
    options: dict  # beyond tight tolerances where they apply


BACKEND_CASES = {
    "cvxpy": BackendCase(STRATIFIED_SPEC, {"method": "clarabel"}),
    "admm": BackendCase(STRATIFIED_SPEC, {"eps_abs": 1e-9, "eps_rel": 1e-9}),
    "dask": BackendCase(STRATIFIED_SPEC, {"eps_abs": 1e-9, "eps_rel": 1e-9, "workers": 1}),
    "eigen": BackendCase(EIGEN_SPEC, {"tol": 1e-13}),
    "newton": BackendCase(NEWTON_SPEC, {"tol": 1e-14}),
    "subgradient": BackendCase(PERSONALIZED_SPEC, {"progress": False}),
}


def personalized_frame(rng: np.random.Generator, n: int = 200) -> pd.DataFrame:
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                          "u": rng.uniform(0, 1, n)})
    frame["y"] = frame.x1 * frame.u + frame.x2 * (1 - frame.u) + 0.1 * rng.normal(size=n)
    return frame
