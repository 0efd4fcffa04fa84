"""The checked, typed model: what a spec *means*.

Every class is a frozen dataclass with value equality. Spans of the spec text that
produced a node are kept (for positioned data errors) but excluded from equality, so
``check(parse(to_text(model))) == model``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import Source, Span

NO_SPAN = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Hyper:
    """A hyper-parameter: one value, or a sweep of values.

    ``form`` is 'value' (args = (v,)), 'set' (args = the values), or 'logspace' /
    'linspace' (args = (low, high, count)).
    """

    form: str
    args: tuple[float, ...]
    span: Span | None = NO_SPAN

    @property
    def values(self) -> tuple[float, ...]:
        if self.form == "logspace":
            lo, hi, n = self.args
            return tuple(float(v) for v in np.geomspace(lo, hi, int(n)))
        if self.form == "linspace":
            lo, hi, n = self.args
            return tuple(float(v) for v in np.linspace(lo, hi, int(n)))
        return self.args

    @property
    def is_sweep(self) -> bool:
        return self.form != "value"

    @property
    def value(self) -> float:
        if self.is_sweep:
            raise ValueError("a sweep has no single value")
        return self.args[0]

    @staticmethod
    def of(value: float) -> Hyper:
        return Hyper("value", (float(value),))


@dataclass(frozen=True)
class KindRef:
    """A resolved call of a registry entry: its name and all its parameters."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()
    span: Span | None = NO_SPAN

    @property
    def p(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True)
class IntRange:
    """Inclusive integer range ``start..stop step``."""

    start: int
    stop: int
    step: int = 1

    def labels(self) -> list[int]:
        return list(range(self.start, self.stop + (1 if self.step > 0 else -1), self.step))


NodeSpec = tuple[Any, ...] | IntRange


@dataclass(frozen=True)
class Response:
    columns: tuple[str, ...]
    loss: KindRef
    span: Span | None = NO_SPAN
    column_spans: tuple[Span, ...] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class RegTerm:
    kind: KindRef
    weight: Hyper | None  # None for constraints
    exclude: tuple[str, ...]
    span: Span | None = NO_SPAN


@dataclass(frozen=True)
class Stratification:
    """One factor of the regularization graph (a column, or a tuple for a grid)."""

    columns: tuple[str, ...]
    graph: KindRef
    weight: Hyper
    nodes: tuple[NodeSpec | None, ...] | None = None  # one entry per column, when declared
    span: Span | None = NO_SPAN
    column_spans: tuple[Span, ...] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Distance:
    columns: tuple[str, ...]
    metric: KindRef
    span: Span | None = NO_SPAN
    column_spans: tuple[Span, ...] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Personalize:
    """Low-rank personalized regression settings; ``options`` in declaration order."""

    options: tuple[tuple[str, Any], ...]
    distances: tuple[Distance, ...]
    span: Span | None = NO_SPAN

    def __getattr__(self, name: str) -> Any:
        for key, value in object.__getattribute__(self, "options"):
            if key == name:
                return value
        raise AttributeError(name)


@dataclass(frozen=True)
class Solver:
    backend: str
    options: tuple[tuple[str, Any], ...] = ()
    span: Span | None = NO_SPAN


@dataclass(frozen=True)
class Model:
    name: str
    response: Response
    features: tuple[str, ...] = ()
    regularizers: tuple[RegTerm, ...] = ()
    strata: tuple[Stratification, ...] = ()
    personalize: Personalize | None = None
    solver: Solver | None = None
    data: str | None = None
    source: Source | None = field(default=None, compare=False, repr=False)
    feature_spans: tuple[Span, ...] | None = field(default=None, compare=False, repr=False)
    data_span: Span | None = field(default=None, compare=False, repr=False)

    @property
    def kind(self) -> str:
        return "personalized" if self.personalize is not None else "stratified"

    @property
    def directory(self) -> Path:
        """The spec's directory (relative file names start there); else the working one."""
        return self.source.directory if self.source is not None else Path.cwd()

    def hypers(self) -> dict[str, Hyper]:
        """Every weight by a stable name: ``reg:<i>:<kind>``, ``strat:<cols>``, ``match``…"""
        out: dict[str, Hyper] = {}
        for i, term in enumerate(self.regularizers):
            if term.weight is not None:
                out[f"reg{i}.{term.kind.name}"] = term.weight
        for s in self.strata:
            out["stratify." + "_".join(s.columns)] = s.weight
        if self.personalize is not None:
            for key in ("match", "metric_penalty"):
                out[key] = self.personalize.__getattr__(key)
        return out

    def sweeps(self) -> dict[str, Hyper]:
        return {k: h for k, h in self.hypers().items() if h.is_sweep}

