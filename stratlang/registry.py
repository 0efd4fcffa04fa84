"""Registries of named kinds (losses, regularizers, graphs, distances, backends).

A kind declares its parameters once (:class:`Param`); the checker resolves a written
call such as ``huber(M=2)`` against them, and the printer writes them back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from . import ast
from .errors import Collector, Span, did_you_mean

Check = Callable[[Any], str | None]


def positive(v: Any) -> str | None:
    return None if v > 0 else "must be positive"


def nonnegative(v: Any) -> str | None:
    return None if v >= 0 else "must be nonnegative"


def in_open_unit(v: Any) -> str | None:
    return None if 0 < v < 1 else "must lie strictly between 0 and 1"


def in_unit(v: Any) -> str | None:
    return None if 0 <= v <= 1 else "must lie between 0 and 1"


@dataclass(frozen=True)
class Param:
    """One parameter of a kind: ``type`` is 'number', 'int', 'string', 'name', 'bool' or
    'node' (any literal: a node label)."""

    name: str
    type: str = "number"
    default: Any = None
    required: bool = False
    check: Check | None = None
    doc: str = ""


def literal(value: ast.Value) -> Any:
    """The Python value of a scalar literal, or raises ValueError."""
    if isinstance(value, ast.Number | ast.String):
        return value.value
    if isinstance(value, ast.Name):
        return {"true": True, "false": False}.get(value.value, value.value)
    raise ValueError


def convert(param: Param, value: ast.Value) -> tuple[Any, str | None]:
    """Converts a written value to the parameter's type; returns (value, error)."""
    try:
        raw = literal(value)
    except ValueError:
        return None, f"'{param.name}' takes a single {param.type}"
    if param.type in ("number", "int"):
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return None, f"'{param.name}' must be a number"
        if param.type == "int" and not float(raw).is_integer():
            return None, f"'{param.name}' must be a whole number"
        if not math.isfinite(raw):
            return None, f"'{param.name}' must be finite"
        raw = int(raw) if param.type == "int" else float(raw)
    elif param.type == "name":
        if not isinstance(value, ast.Name | ast.String):
            return None, f"'{param.name}' must be a name"
        raw = value.value
    elif param.type == "string" and not isinstance(value, ast.String):
        return None, f"'{param.name}' must be a string in double quotes"
    elif param.type == "bool" and not isinstance(raw, bool):
        return None, f"'{param.name}' must be true or false"
    if param.check is not None and (problem := param.check(raw)):
        return None, f"'{param.name}' {problem}"
    return raw, None


def resolve_args(params: tuple[Param, ...], call: ast.Call, what: str,
                 out: Collector) -> tuple[tuple[str, Any], ...] | None:
    """Binds a call's positional and keyword arguments to ``params``, defaults filled."""
    by_name = {p.name: p for p in params}
    bound: dict[str, Any] = {}
    ok = True
    for i, arg in enumerate(call.args):
        if arg.keyword is None:
            if i >= len(params):
                out.error(f"{what} takes at most {len(params)} argument"
                          f"{'s' if len(params) != 1 else ''}", arg.span)
                ok = False
                continue
            param = params[i]
        else:
            param = by_name.get(arg.keyword.value)
            if param is None:
                out.error(f"unknown argument '{arg.keyword.value}' for {what}"
                          + did_you_mean(arg.keyword.value, by_name), arg.keyword.span)
                ok = False
                continue
        if param.name in bound:
            out.error(f"argument '{param.name}' given twice", arg.span)
            ok = False
            continue
        value, problem = convert(param, arg.value)
        if problem:
            out.error(f"{what}: {problem}", arg.value.span)
            ok = False
            continue
        bound[param.name] = value
    for p in params:
        if p.name not in bound:
            if p.required:
                out.error(f"{what} needs argument '{p.name}'", call.span)
                ok = False
            else:
                bound[p.name] = p.default
    return tuple((p.name, bound.get(p.name)) for p in params) if ok else None


T = TypeVar("T")


class Registry(Generic[T]):
    """Name → kind; ``lookup`` reports an unknown name with the closest match."""

    def __init__(self, what: str):
        self.what = what
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.what} '{name}' registered twice")
        self._entries[name] = entry
        return entry

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def lookup(self, name: str, span: Span | None, out: Collector) -> T | None:
        entry = self._entries.get(name)
        if entry is None:
            out.error(f"unknown {self.what} '{name}'" + did_you_mean(name, self._entries), span)
        return entry
