"""The syntax tree of a spec: what was written, where it was written.

Nodes are plain frozen dataclasses; each carries the :class:`Span` of its text so that
the checker can point at it. Nothing here knows what a loss or a graph is.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import Source, Span


@dataclass(frozen=True)
class Node:
    span: Span


# ---- values -------------------------------------------------------------------------
@dataclass(frozen=True)
class Number(Node):
    value: int | float
    text: str


@dataclass(frozen=True)
class String(Node):
    value: str


@dataclass(frozen=True)
class Name(Node):
    value: str


@dataclass(frozen=True)
class SetValue(Node):
    items: tuple[Value, ...]


@dataclass(frozen=True)
class ListValue(Node):
    items: tuple[Value, ...]


@dataclass(frozen=True)
class TupleValue(Node):
    items: tuple[Value, ...]


@dataclass(frozen=True)
class RangeValue(Node):
    start: Number
    stop: Number
    step: Number | None


@dataclass(frozen=True)
class Arg(Node):
    keyword: Name | None
    value: Value


@dataclass(frozen=True)
class Call(Node):
    """``name`` or ``name(arg, key=value)``: a loss, regularizer, graph, distance or sweep."""

    name: Name
    args: tuple[Arg, ...]


Value = Number | String | Name | SetValue | ListValue | TupleValue | RangeValue | Call


@dataclass(frozen=True)
class Option(Node):
    name: Name
    value: Value


@dataclass(frozen=True)
class Condition(Node):
    """``column == value``, ``column != value`` or ``column in {values}``."""

    column: Name
    values: tuple[Value, ...]
    negated: bool  # '!=': every stratum but those


@dataclass(frozen=True)
class Where(Node):
    """``where`` conditions joined by ``and``: the strata they all hold in."""

    conditions: tuple[Condition, ...]


# ---- statements ---------------------------------------------------------------------
@dataclass(frozen=True)
class Target(Node):
    """One column or a parenthesized tuple of columns."""

    columns: tuple[Name, ...]


@dataclass(frozen=True)
class ModelStmt(Node):
    name: Name


@dataclass(frozen=True)
class DataStmt(Node):
    path: String


@dataclass(frozen=True)
class ResponseStmt(Node):
    target: Target
    loss: Call
    options: tuple[Option, ...] = ()
    where: Where | None = None  # a loss override for these strata


@dataclass(frozen=True)
class Product(Node):
    """Factors joined by ':' — a column or a transform call each; their product."""

    factors: tuple[Name | Call, ...]


@dataclass(frozen=True)
class FeatureTerm(Node):
    """One entry of a features statement: products crossed by '*' (``a * b`` stands for
    ``a, b, a:b``); one product when there is no '*'."""

    products: tuple[Product, ...]
    where: Where | None = None  # present only in these strata
    vary: Variation | None = None  # `by …` / `shared` (None: every factor)


@dataclass(frozen=True)
class FeaturesStmt(Node):
    terms: tuple[FeatureTerm, ...]


@dataclass(frozen=True)
class WeightsStmt(Node):
    column: Name


@dataclass(frozen=True)
class MissingStmt(Node):
    policy: Name


@dataclass(frozen=True)
class RegTerm(Node):
    weight: Value | None
    call: Call


@dataclass(frozen=True)
class RegularizeStmt(Node):
    terms: tuple[RegTerm, ...]
    options: tuple[Option, ...]
    where: Where | None = None  # the terms act in these strata only


@dataclass(frozen=True)
class VaryFactor(Node):
    """One factor of a ``by``: a stratification column, with a weight of its own or not."""

    column: Name
    weight: Value | None = None


@dataclass(frozen=True)
class Variation(Node):
    """``by store`` / ``by (store weight 50, week)``; ``shared``: no factors."""

    factors: tuple[VaryFactor, ...]


@dataclass(frozen=True)
class InteractStmt(Node):
    """``interact state * year weight 5``: a Kronecker-product interaction term."""

    columns: tuple[Name, ...]
    options: tuple[Option, ...]


@dataclass(frozen=True)
class StratifyStmt(Node):
    target: Target
    graph: Call
    options: tuple[Option, ...]


@dataclass(frozen=True)
class BasisStmt(Node):
    count: Value


@dataclass(frozen=True)
class PersonalizeStmt(Node):
    keyword: Span
    options: tuple[Option, ...]


@dataclass(frozen=True)
class DistanceStmt(Node):
    target: Target
    metric: Call
    options: tuple[Option, ...]


@dataclass(frozen=True)
class SolverStmt(Node):
    backend: Name
    options: tuple[Option, ...]


Statement = (ModelStmt | DataStmt | ResponseStmt | FeaturesStmt | WeightsStmt | MissingStmt
             | RegularizeStmt | StratifyStmt | InteractStmt | BasisStmt | PersonalizeStmt | DistanceStmt
             | SolverStmt)


@dataclass(frozen=True)
class SpecTree:
    """A parsed spec: its statements with their spans (not yet checked; the builder's
    :class:`stratlang.Spec` is another thing, a spec written from Python)."""

    statements: tuple[Statement, ...]
    source: Source
