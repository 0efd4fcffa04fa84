"""The distance registry: one metric per covariate (or covariate group) for
personalized models, ρ_φ(u, v) = Σ_l φ_l d_l(u_l, v_l)."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..language.params import Param
from ..language.reading import printable, shown
from ..language.vocabulary import Registry
from ..solvers import distances as d
from .files import FileProblem, line_numbers, read_csv
from .graphs import canon_text

DISTANCES: Registry[Metric] = Registry("distance")


class MetricError(Exception):
    """A problem with a metric's data; the binder positions it in the spec."""


def read_matrix(path: Path) -> pd.DataFrame:
    """A square table of distances between categories: the first column and the header
    name the categories (the same, in the same order); every entry a number ≥ 0, the
    diagonal 0, the table symmetric. Problems name the file's line (line 1: the header)."""
    try:
        table = read_csv(path, "distance file", dtype=str, keep_default_na=False)
    except FileProblem as err:
        raise MetricError(str(err)) from None
    table = table.set_index(table.columns[0])
    where = f"distance file '{shown(path)}'"
    rows = [canon_text(v) for v in table.index]
    columns = [canon_text(v) for v in table.columns]
    if rows != columns:
        raise MetricError(f"{where} must be square with the same labels, in the same order, in "
                          f"its first column and its header ({len(rows)} rows, "
                          f"{len(columns)} columns)")
    values = table.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)

    lines = line_numbers(table, range(len(table))) or [i + 2 for i in range(len(table))]

    def place(i: int, j: int) -> str:
        return f"line {lines[i]}, column '{printable(columns[j])}'"

    for test, problem in ((~np.isfinite(values), "is not a number"),
                          (values < 0, "is negative: a distance is ≥ 0"),
                          (np.abs(values - values.T) > 1e-12 * (1 + np.abs(values)),
                           "differs from its mirror entry: a distance is symmetric"),
                          (np.eye(len(rows), dtype=bool) & (values != 0),
                           "is not 0: a category is at distance 0 from itself")):
        bad = np.argwhere(test)
        if len(bad):
            i, j = bad[0]
            raise MetricError(f"{where} {place(i, j)}: {table.iat[i, j]!r} {problem}")
    table = pd.DataFrame(values, index=rows, columns=columns)
    return table

@dataclass(frozen=True)
class Metric(abc.ABC):
    name: ClassVar[str]
    doc: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    arity: ClassVar[str] = "one"  # 'one' column, or 'many'
    numeric: ClassVar[bool] = True

    def encode(self, values: pd.DataFrame, p: dict[str, Any], base: Path) -> Any:
        return values.to_numpy(dtype=float)

    @abc.abstractmethod
    def pairs(self, encoded: Any, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """d(u_i, u_j) for each pair of encoded samples."""

    def coordinates(self, encoded: Any, weight: float) -> tuple[np.ndarray, str] | None:
        """Coordinates c and a norm ('l1' or 'l2') with weight · d(u, v) = ‖c(u) − c(v)‖,
        so that neighbours can be found with a KD-tree; None when there are none."""
        return None


@DISTANCES.entry
class Abs(Metric):
    name = "abs"
    doc = "|u − v| on one numeric column."

    def pairs(self, encoded, i, j):
        return d.absolute(encoded, i, j)

    def coordinates(self, encoded, weight):
        return weight * encoded[:, :1], "l1"


@DISTANCES.entry
class Euclidean(Metric):
    name = "euclidean"
    doc = "‖u − v‖₂ over a group of numeric columns, e.g. (lat, lon)."
    arity = "many"

    def pairs(self, encoded, i, j):
        return d.euclidean(encoded, i, j)

    def coordinates(self, encoded, weight):
        return weight * encoded, "l2"


@DISTANCES.entry
class Discrete(Metric):
    name = "discrete"
    doc = "0 when two categories are equal, 1 otherwise."
    numeric = False

    def encode(self, values, p, base):
        codes, _ = pd.factorize(values.iloc[:, 0])
        return codes.reshape(-1, 1)

    def pairs(self, encoded, i, j):
        return d.discrete(encoded, i, j)

    def coordinates(self, encoded, weight):
        codes = encoded[:, 0]  # ‖onehot(a) − onehot(b)‖₁ = 2 when a ≠ b
        return 0.5 * weight * (codes[:, None] == np.arange(codes.max() + 1)), "l1"


@DISTANCES.entry
class Matrix(Metric):
    name = "matrix"
    doc = ("A precomputed distance between categories, from a CSV square table whose first "
           "column and header name the categories.")
    params = (Param("file", type="string", required=True, doc="the table, relative to the spec"),)
    numeric = False

    def encode(self, values, p, base):
        path = base / p["file"]
        table = read_matrix(path)
        labels = values.iloc[:, 0].map(canon_text)
        unknown = sorted(set(labels) - set(table.index))
        if unknown:
            raise MetricError(f"distance file '{shown(path)}' has no entry for "
                              + ", ".join(repr(u) for u in unknown[:5]))
        codes = table.index.get_indexer(labels)
        return (codes, table.to_numpy(dtype=float))

    def pairs(self, encoded, i, j):
        codes, table = encoded
        return d.matrix(codes, table, i, j)
