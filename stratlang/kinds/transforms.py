"""The transform registry: what a feature (or an offset) may apply to a data column, e.g.
``log(income)``, ``standardize(age)``, ``categorical(region, reference="north")``.

A transform maps the values of its input (a column, or another transform's output) to one
or more feature columns. A stateful one learns something from the training data (a mean
and a scale, the levels of a category): from *summaries* of pieces of the data that
combine (so partitions on a cluster can be summarized where they are), into a state that
is saved with the fitted model (JSON) and reused on new data.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..language.params import Param
from ..language.vocabulary import Registry
from .graphs import canon

TRANSFORMS: Registry[Transform] = Registry("transform")


class TransformError(Exception):
    """Values a transform cannot take: the message, and the offending row positions (None
    when the problem is not tied to rows)."""

    def __init__(self, message: str, rows: np.ndarray | None = None):
        super().__init__(message)
        self.rows = rows


@dataclass(frozen=True)
class Transform(abc.ABC):
    """Base class: subclasses set the class attributes and override what differs."""

    name: ClassVar[str]
    doc: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    categorical: ClassVar[bool] = False  # takes any values; gives indicator columns
    stateful: ClassVar[bool] = False
    # a saved state's fields and their kinds (the saved model's schema checks them)
    state_fields: ClassVar[dict[str, str]] = {}

    def state_problem(self, state: dict[str, Any]) -> str | None:
        """What is wrong with a saved state whose fields have the right kinds; None: nothing."""
        return None

    def summary(self, values: np.ndarray, p: dict[str, Any]) -> Any:
        """What a piece of the training data says about the state (stateful kinds)."""
        return None

    def state(self, summaries: list[Any], p: dict[str, Any]) -> dict[str, Any] | None:
        """The state learned from the summaries of all pieces; raises TransformError."""
        return None

    @abc.abstractmethod
    def apply(self, values: np.ndarray, p: dict[str, Any], state: dict[str, Any] | None
              ) -> np.ndarray:
        """The output columns (N, c); raises TransformError naming the rows it cannot take."""

    def names(self, inner: str, text: str, p: dict[str, Any],
              state: dict[str, Any] | None) -> list[str]:
        """Names of the output columns: ``text`` is the transform as written canonically
        (e.g. ``log(income)``), ``inner`` its input's."""
        return [text]


def _outside(values: np.ndarray, ok: np.ndarray, what: str) -> None:
    bad = np.flatnonzero(~ok)
    if len(bad):
        raise TransformError(what, bad)


class _Elementwise(Transform):
    """A function of each value, defined on part of the real line."""

    @abc.abstractmethod
    def function(self, values: np.ndarray) -> np.ndarray:
        """The function at each value (inside the domain)."""

    def domain(self, values: np.ndarray) -> np.ndarray:
        return np.ones(len(values), bool)

    problem: ClassVar[str] = ""

    def apply(self, values, p, state):
        _outside(values, self.domain(values), self.problem)
        with np.errstate(over="ignore"):
            out = self.function(values)
        _outside(values, np.isfinite(out), f"overflows in {self.name}")
        return out[:, None]


@TRANSFORMS.entry
class Log(_Elementwise):
    name = "log"
    doc = "Natural logarithm; the values must be positive."
    problem = "must be positive for log"

    def domain(self, values):
        return values > 0

    def function(self, values):
        return np.log(np.where(values > 0, values, 1.0))


@TRANSFORMS.entry
class Log1p(_Elementwise):
    name = "log1p"
    doc = "log(1 + x), for counts and other values ≥ 0 that may be 0; the values must exceed −1."
    problem = "must exceed -1 for log1p"

    def domain(self, values):
        return values > -1

    def function(self, values):
        return np.log1p(np.where(values > -1, values, 0.0))


@TRANSFORMS.entry
class Sqrt(_Elementwise):
    name = "sqrt"
    doc = "Square root; the values must be nonnegative."
    problem = "must be nonnegative for sqrt"

    def domain(self, values):
        return values >= 0

    def function(self, values):
        return np.sqrt(np.where(values >= 0, values, 0.0))


class _Moments(Transform):
    """Learns the mean (and standard deviation) of its input at fit time."""

    stateful = True
    state_fields: ClassVar[dict[str, str]] = {"center": "number", "scale": "number"}

    def summary(self, values, p):
        # count, mean, and sum of squared deviations: they combine exactly (Chan et al.)
        n = len(values)
        mean = float(np.mean(values)) if n else 0.0
        return [n, mean, float(np.sum((values - mean) ** 2)) if n else 0.0]

    def state(self, summaries, p):
        n, mean, m2 = 0, 0.0, 0.0
        for k, mu, s in summaries:
            if k == 0:
                continue
            delta = mu - mean
            total = n + k
            mean += delta * k / total
            m2 += s + delta * delta * n * k / total
            n = total
        if n == 0:
            raise TransformError(f"{self.name} has no values to learn from")
        return {"center": mean, "scale": math.sqrt(m2 / n)}


@TRANSFORMS.entry
class Center(_Moments):
    name = "center"
    doc = "x − mean(x), the mean learned from the training data and saved with the model."

    def apply(self, values, p, state):
        return (values - state["center"])[:, None]


@TRANSFORMS.entry
class Standardize(_Moments):
    name = "standardize"
    doc = ("(x − mean(x)) / sd(x), mean and standard deviation (divisor N) learned from the "
           "training data and saved with the model.")

    def state(self, summaries, p):
        state = super().state(summaries, p)
        if not state["scale"] > 0:
            raise TransformError(f"standardize: the values are constant ({state['center']:g}); "
                                 "there is nothing to scale")
        return state

    def apply(self, values, p, state):
        return ((values - state["center"]) / state["scale"])[:, None]

    def state_problem(self, state):
        return None if state["scale"] > 0 else "the scale must be positive"


def _sorted(levels: list) -> list:
    try:
        return sorted(levels)
    except TypeError:  # mixed types: by text
        return sorted(levels, key=str)


@TRANSFORMS.entry
class Categorical(Transform):
    name = "categorical"
    doc = ("Indicator columns, one per level but the reference (treatment coding), named "
           "`column[T.level]`; the levels are those of the training data, in sorted order; "
           "the reference is the first unless given.")
    params = (Param("reference", type="node", default=None,
                    doc="the level whose indicator is left out (its effect is the intercept's)"),)
    categorical = True
    stateful = True
    state_fields: ClassVar[dict[str, str]] = {"levels": "labels", "reference": "label"}

    def summary(self, values, p):
        return _sorted(list({canon(v) for v in values}))

    def state_problem(self, state):
        levels = state["levels"]
        if len(levels) < 2 or len({canon(v) for v in levels}) != len(levels):
            return "the levels must be two or more, each once"
        return None if state["reference"] in levels else "the reference is not a level"

    def state(self, summaries, p):
        levels = _sorted(list({v for part in summaries for v in part}))
        if not levels:
            raise TransformError(f"{self.name} has no values to learn from")
        reference = levels[0] if p["reference"] is None else canon(p["reference"])
        if reference not in levels:
            raise TransformError(f"categorical: the reference level {reference!r} is not among "
                                 "the values (" + ", ".join(repr(v) for v in levels[:8]) + ")")
        if len(levels) < 2:
            raise TransformError("categorical: one level only ("
                                 + ", ".join(repr(v) for v in levels) + "); there is nothing "
                                 "to compare it with")
        return {"levels": levels, "reference": reference}

    def apply(self, values, p, state):
        levels = state["levels"]
        position = {v: i for i, v in enumerate(levels)}
        codes = np.array([position.get(canon(v), -1) for v in values], dtype=np.int64)
        unseen = np.flatnonzero(codes < 0)
        if len(unseen):
            shown = sorted({repr(canon(values[i])) for i in unseen})[:5]
            raise TransformError(
                "has levels not seen in training: " + ", ".join(shown) + " (known: "
                + ", ".join(repr(v) for v in levels[:8]) + ("…" if len(levels) > 8 else "")
                + ")", unseen)
        kept = [i for i, v in enumerate(levels) if v != state["reference"]]
        return (codes[:, None] == np.array(kept)[None, :]).astype(float)

    def names(self, inner, text, p, state):
        return [f"{inner}[T.{v}]" for v in state["levels"] if v != state["reference"]]
