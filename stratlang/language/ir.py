"""The checked, typed model: what a spec *means*.

Every class is a frozen dataclass with value equality. Spans of the spec text that
produced a node are kept (for positioned data errors) but excluded from equality, so
``check(parse(to_text(model))) == model``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import OptionError, Source, Span, StratlangError, did_you_mean

NO_SPAN = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Hyper:
    """A hyper-parameter: one value, or a sweep of values.

    ``form`` is 'value' (args = (v,)), 'set' (args = the values), 'logspace' /
    'linspace' (args = (low, high, count)), or 'auto' (args = (): chosen from the data
    when the model is fitted, by REML, ML or GCV).
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
        return self.form not in ("value", "auto")

    @property
    def is_auto(self) -> bool:
        return self.form == "auto"

    @property
    def value(self) -> float:
        if self.form != "value":
            raise ValueError(f"a{'n auto weight' if self.is_auto else ' sweep'} has no "
                             "single value")
        return self.args[0]

    @staticmethod
    def of(value: float) -> Hyper:
        return Hyper("value", (float(value),))

    @staticmethod
    def auto(span: Span | None = None) -> Hyper:
        return Hyper("auto", (), span)


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
class Column:
    """A data column used as it is (``intercept``: the constant 1 unless the data has a
    column of that name)."""

    name: str
    span: Span | None = NO_SPAN

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.name,)


@dataclass(frozen=True)
class Transform:
    """A transform applied to a factor, e.g. ``log(income)``, ``categorical(region)``;
    ``kind`` holds the transform's name and its parameters (those after the input)."""

    kind: KindRef
    arg: Factor
    span: Span | None = NO_SPAN

    @property
    def columns(self) -> tuple[str, ...]:
        return self.arg.columns


Factor = Column | Transform


@dataclass(frozen=True)
class Condition:
    """``column == v``, ``column in {v, w}`` (``values``) or ``column != v`` (negated): a
    condition on a stratification column's nodes."""

    column: str
    values: tuple[Any, ...]
    negated: bool = False
    span: Span | None = NO_SPAN
    value_spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Where:
    """The strata in which every condition holds."""

    conditions: tuple[Condition, ...]
    span: Span | None = NO_SPAN

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.column for c in self.conditions))


@dataclass(frozen=True)
class VaryOver:
    """A graph factor a feature term's coefficients vary over (``by store``, named by one
    of the factor's columns), with a weight of its own (``by (store weight 50)``) or the
    factor's (None). ``hyper_name`` (``stratify.<columns>[<term>]``) is given by the checker."""

    column: str
    weight: Hyper | None = None
    span: Span | None = NO_SPAN
    hyper_name: str = field(default="", compare=False)


@dataclass(frozen=True)
class Term:
    """One feature term: a factor, or the product of several (an interaction); with
    ``where``, present only in those strata (its coefficient is fixed at 0 elsewhere);
    ``vary``: the graph factors its coefficients vary over (None: every factor; ():
    none, one coefficient shared by all strata) — exactly constant along the others."""

    factors: tuple[Factor, ...]
    span: Span | None = NO_SPAN
    where: Where | None = None
    vary: tuple[VaryOver, ...] | None = None
    vary_span: Span | None = field(default=None, compare=False, repr=False)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c for f in self.factors for c in f.columns))

    @staticmethod
    def of(name: str) -> Term:
        """A term of one plain column."""
        return Term((Column(name),))


@dataclass(frozen=True)
class Override:
    """``response … ~ loss(params) where …``: the loss's parameters in some strata."""

    loss: KindRef
    where: Where
    span: Span | None = NO_SPAN


@dataclass(frozen=True)
class Response:
    columns: tuple[str, ...]
    loss: KindRef
    span: Span | None = NO_SPAN
    column_spans: tuple[Span, ...] | None = field(default=None, compare=False, repr=False)
    offset: Factor | None = None  # added to the linear predictor of every record
    overrides: tuple[Override, ...] = ()  # other parameters in some strata


@dataclass(frozen=True)
class RegTerm:
    """One regularizer term. ``hyper_name`` (``reg<i>.<kind>``, i its place among the
    model's terms) is given by the :class:`CheckedModel` that holds the term."""

    kind: KindRef
    weight: Hyper | None  # None for constraints
    exclude: tuple[str, ...]
    span: Span | None = NO_SPAN
    hyper_name: str = field(default="", compare=False)
    where: Where | None = None  # the strata it acts in (None: all)


@dataclass(frozen=True)
class Stratification:
    """One factor of the regularization graph (a column, or a tuple for a grid)."""

    columns: tuple[str, ...]
    graph: KindRef
    weight: Hyper
    nodes: tuple[NodeSpec, ...] | None = None  # one entry per column, when declared
    span: Span | None = NO_SPAN
    column_spans: tuple[Span, ...] | None = field(default=None, compare=False, repr=False)

    @property
    def hyper_name(self) -> str:
        """The name of this factor's weight: ``stratify.<columns joined by _>``."""
        return "stratify." + "_".join(self.columns)


@dataclass(frozen=True)
class Interaction:
    """``interact a * b weight w``: the Kronecker-product term (w/2) θᵀ(L_a ⊗ L_b ⊗ I)θ
    on every parameter row, each factor named by one of its columns."""

    columns: tuple[str, ...]
    weight: Hyper
    span: Span | None = NO_SPAN
    column_spans: tuple[Span, ...] | None = field(default=None, compare=False, repr=False)

    @property
    def hyper_name(self) -> str:
        """The name of its weight: ``interact.<columns joined by _>``."""
        return "interact." + "_".join(self.columns)


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
    select: str | None = None  # how `auto` weights are chosen: 'reml', 'ml' or 'gcv'


@dataclass(frozen=True)
class CheckedModel:
    """A spec checked against the registries and the data's needs: the typed IR that
    every later layer takes (the API's :class:`stratlang.Model` wraps one)."""

    name: str
    response: Response
    features: tuple[Term, ...] = ()
    regularizers: tuple[RegTerm, ...] = ()
    strata: tuple[Stratification, ...] = ()
    personalize: Personalize | None = None
    solver: Solver | None = None
    data: str | None = None
    source: Source | None = field(default=None, compare=False, repr=False)
    data_span: Span | None = field(default=None, compare=False, repr=False)
    weights: str | None = None  # a column of nonnegative record weights
    weights_span: Span | None = field(default=None, compare=False, repr=False)
    missing: str = "error"  # rows holding missing values: one of MISSING_POLICIES
    missing_span: Span | None = field(default=None, compare=False, repr=False)
    basis: int | None = None  # θ = V_M β: the M smoothest eigenvectors of the graph
    basis_span: Span | None = field(default=None, compare=False, repr=False)
    interactions: tuple[Interaction, ...] = ()  # Kronecker-product interaction terms

    def __post_init__(self) -> None:
        # every regularizer term knows its weight's name (its place in this model)
        named = tuple(t if t.hyper_name == f"reg{i}.{t.kind.name}"
                      else dataclasses.replace(t, hyper_name=f"reg{i}.{t.kind.name}")
                      for i, t in enumerate(self.regularizers))
        object.__setattr__(self, "regularizers", named)

    @property
    def kind(self) -> str:
        return "personalized" if self.personalize is not None else "stratified"

    @property
    def directory(self) -> Path:
        """The spec's directory (relative file names start there); else the working one."""
        return self.source.directory if self.source is not None else Path.cwd()

    def factor_of(self, column: str) -> int:
        """The position among ``strata`` of the factor a column names (one of its columns)."""
        return next(i for i, s in enumerate(self.strata) if column in s.columns)

    @property
    def structured(self) -> bool:
        """Does a feature vary over some factors only, or with weights of its own, or is
        there an interaction term (the Laplacian differs between parameter rows)?"""
        return bool(self.interactions) or any(t.vary is not None for t in self.features)

    def wheres(self) -> tuple[Where, ...]:
        """Every ``where`` clause: loss overrides, regularizer terms, features."""
        return (tuple(o.where for o in self.response.overrides)
                + tuple(t.where for t in self.regularizers if t.where is not None)
                + tuple(t.where for t in self.features if t.where is not None))

    def hypers(self) -> dict[str, Hyper]:
        """Every weight by its name: ``reg<i>.<kind>``, ``stratify.<columns>``, a feature's
        own weight on a factor ``stratify.<columns>[<term>]``, ``interact.<columns>``, the
        personalize options that are weights (``match``, ``metric_penalty``)."""
        out: dict[str, Hyper] = {t.hyper_name: t.weight for t in self.regularizers
                                 if t.weight is not None}
        out.update({s.hyper_name: s.weight for s in self.strata})
        out.update({v.hyper_name: v.weight for t in self.features for v in t.vary or ()
                    if v.weight is not None})
        out.update({i.hyper_name: i.weight for i in self.interactions})
        if self.personalize is not None:
            out.update({k: v for k, v in self.personalize.options if isinstance(v, Hyper)})
        return out

    def sweeps(self) -> dict[str, Hyper]:
        return {k: h for k, h in self.hypers().items() if h.is_sweep}

    def autos(self) -> dict[str, Hyper]:
        """The weights written ``auto``: chosen from the data when the model is fitted."""
        return {k: h for k, h in self.hypers().items() if h.is_auto}

    def weight_values(self, overrides: dict[str, float] | None = None) -> dict[str, float]:
        """Every weight's value; a sweep must be given one in ``overrides`` (each a finite
        number ≥ 0, like a weight written in the spec); an ``auto`` weight not given one is
        left out (the fit chooses it: stratlang.backends.selection)."""
        if overrides is not None and not isinstance(overrides, Mapping):
            raise OptionError(f"weights must be a dict of hyper-parameter values by name; got "
                              f"a {type(overrides).__name__}")
        overrides = dict(overrides or {})
        hypers = self.hypers()
        problems = []
        for name, value in overrides.items():
            if name not in hypers:
                problems.append(f"unknown hyper-parameter {name!r}"
                                + did_you_mean(str(name), hypers))
            elif (isinstance(value, bool) or not isinstance(value, numbers.Real)
                  or not math.isfinite(value) or value < 0):
                problems.append(f"hyper-parameter '{name}' must be a finite number ≥ 0; got "
                                f"{value!r}")
        if problems:
            raise OptionError("\n".join(problems))
        unset = {name: h for name, h in hypers.items() if h.is_sweep and name not in overrides}
        if unset:
            raise unset_sweeps(unset)
        return {name: float(overrides[name]) if name in overrides else h.value
                for name, h in hypers.items() if name in overrides or not h.is_auto}


def unset_sweeps(sweeps: dict[str, Hyper]) -> StratlangError:
    """The error for fitting a model whose sweeps were given no value, with the advice for
    Python (``weights=``) and for the command line (``--weight``, ``stratlang tune``)."""
    listed = " and ".join(f"'{name}' {'is ' if i == 0 else ''}a sweep "
                          f"{{{', '.join(f'{v:.4g}' for v in h.values)}}}"
                          for i, (name, h) in enumerate(sweeps.items()))
    each = " of each" if len(sweeps) > 1 else ""
    python = ", ".join(f"'{name}': v" for name in sweeps)
    flags = " ".join(f"--weight {name}=VALUE" for name in sweeps)
    return StratlangError(
        f"{listed}: fit one value{each} with weights={{{python}}}, or compare them with "
        "model.tune(...) or model.sweep(...)",
        cli=f"{listed}: fit one value{each} with {flags}, or choose by cross-validation "
            "with `stratlang tune SPEC`")
