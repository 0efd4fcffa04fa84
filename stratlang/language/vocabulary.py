"""The names a spec may use, and the questions the checker asks of what they name.

The grammar leaves losses, regularizers, graphs, distances and backends to registries
(so a typo gets "did you mean"). The language does not know the kinds themselves: the
checker and the printer are given a :class:`Vocabulary` of registries whose entries
answer the questions below (``stratlang.kinds`` and ``stratlang.backends`` supply them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from .codes import UNKNOWN_KIND
from .errors import Collector, Span, did_you_mean
from .params import Options, Param


class Entry(Protocol):
    name: str
    doc: str
    params: tuple[Param, ...]


class LossEntry(Entry, Protocol):
    features: str  # 'optional' | 'forbidden'
    with_features: str | None  # the loss to use instead when features are given
    offset_problem: str | None  # why the loss takes no offset (None: it takes one)
    multi_column: bool
    square_parameter: bool  # θ's leading rows form a square matrix (a precision matrix)
    likelihood: Any  # how it reads as a negative log-likelihood (None: it does not)

    @property
    def personalizable(self) -> bool: ...

    @property
    def personalized_refusal(self) -> str | None: ...

    def row_names(self, features: tuple[str, ...], columns: tuple[str, ...]) -> tuple[str, ...]: ...

    def default_exclude(self, rows: tuple[str, ...]) -> tuple[str, ...]: ...


class RegularizerEntry(Entry, Protocol):
    is_constraint: bool

    @property
    def personalizable(self) -> bool: ...

    def invalid(self, p: dict[str, Any]) -> str | None: ...

    def unsupported_with(self, loss: Any) -> str | None: ...


class GraphEntry(Entry, Protocol):
    multi_column: bool

    def files(self, p: dict[str, Any]) -> tuple[str, ...]: ...

    def edge_count(self, sizes: list[int]) -> int | None: ...


class DistanceEntry(Entry, Protocol):
    arity: str  # 'one' column, or 'many'


class TransformEntry(Entry, Protocol):
    categorical: bool  # gives indicator columns (so it cannot feed another transform)


class BackendEntry(Protocol):
    name: str
    doc: str
    family: str  # the model kind it fits: 'stratified' | 'personalized'
    options: Options


T = TypeVar("T")


class Registry(Generic[T]):
    """Name → entry; ``lookup`` reports an unknown name with the closest match."""

    def __init__(self, what: str):
        self.what = what
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.what} '{name}' registered twice")
        self._entries[name] = entry
        return entry

    def entry(self, cls: type[T]) -> type[T]:
        """Class decorator: registers an instance of ``cls`` under ``cls.name``."""
        self.register(cls.name, cls())  # type: ignore[attr-defined]
        return cls

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[T]:
        return list(self._entries.values())

    def lookup(self, name: str, span: Span | None, out: Collector) -> T | None:
        entry = self._entries.get(name)
        if entry is None:
            out.error(f"unknown {self.what} '{name}'" + did_you_mean(name, self._entries), span,
                      code=UNKNOWN_KIND[self.what])
        return entry


@dataclass(frozen=True)
class Vocabulary:
    losses: Registry[Any]
    regularizers: Registry[Any]
    graphs: Registry[Any]
    distances: Registry[Any]
    backends: Registry[Any]
    transforms: Registry[Any]
