"""Declared parameters and options: type, range, default and meaning, written once.

A kind's parameters (``huber(M=2)``), a statement's options (``personalize rank 4``) and
a backend's options (``max_iter``) are :class:`Param` declarations. A value written in a
spec is converted by :func:`from_spec` (the checker positions any problem); a value given
from Python or the command line goes through :meth:`Options.resolve`, which names an
unknown option's closest match and a bad value's range.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, SupportsInt, cast

from . import ast, codes
from .errors import Collector, OptionError, did_you_mean


@dataclass(frozen=True)
class Rule:
    """A check on a value: ``rule(v)`` is None when v is allowed, else what is wrong
    ("must be positive"); ``text`` says what is allowed, for the documentation."""

    test: Callable[[Any], bool]
    problem: str | Callable[[Any], str]  # or a function of the value, for a message that varies
    text: str
    bounds: tuple[float | None, float | None, str] | None = None  # an interval's (low, high, closed)

    def __call__(self, value: Any) -> str | None:
        if self.test(value):
            return None
        return self.problem(value) if callable(self.problem) else self.problem


def interval(low: float | None = None, high: float | None = None, *, closed: str = "[]",
             problem: str | None = None) -> Rule:
    """Values between ``low`` and ``high`` (None: unbounded); ``closed`` says which ends
    belong ('[]', '(]', '[)', '()')."""
    low_in, high_in = closed[0] == "[", closed[1] == "]"

    def test(v: Any) -> bool:
        above = low is None or (v >= low if low_in else v > low)
        below = high is None or (v <= high if high_in else v < high)
        return above and below

    if high is None:
        assert low is not None, "an interval needs a bound"
        text = f"{'≥' if low_in else '>'} {_number(low)}"
    elif low is None:
        text = f"{'≤' if high_in else '<'} {_number(high)}"
    else:
        text = f"{closed[0]}{_number(low)}, {_number(high)}{closed[1]}"
    return Rule(test, problem or f"must lie in {text}", text, (low, high, closed))


def _number(value: float) -> str:
    """1,000,000 for whole numbers, 0.5 and 1e-06 for others."""
    return f"{int(value):,}" if float(value).is_integer() and abs(value) < 1e16 else f"{value:g}"


def count(high: int, low: int = 1) -> Rule:
    """A count from ``low`` to ``high``, both included."""
    return interval(low, high)


positive = interval(0, closed="()", problem="must be positive")
iterations = count(10_000_000)  # an iteration limit
seeds = interval(0, 2**32 - 1)
nonnegative = interval(0, problem="must be nonnegative")
in_open_unit = interval(0, 1, closed="()", problem="must lie strictly between 0 and 1")
in_unit = interval(0, 1, problem="must lie between 0 and 1")

TYPE_WORDS = {"number": "a number", "int": "a whole number", "string": "a string",
              "name": "a name", "bool": "true or false",
              "node": "a label: a number, a name or a string"}


@dataclass(frozen=True)
class Param:
    """One parameter or option. ``type`` is 'number', 'int', 'string', 'name', 'bool' or
    'node' (any literal: a node label). ``sweep``: a weight that may be a sweep {…}.
    ``accepts``: Python values allowed besides the type's (e.g. a Dask Client)."""

    name: str
    type: str = "number"
    default: Any = None
    required: bool = False
    check: Rule | Callable[[Any], str | None] | None = None
    doc: str = ""
    sweep: bool = False
    accepts: Callable[[Any], bool] | None = None
    path: bool = False  # a file or directory: relative to the spec when written there

    @property
    def allowed(self) -> str:
        """What values are allowed, in words (for the documentation)."""
        text = getattr(self.check, "text", None)
        return text if text else TYPE_WORDS.get(self.type, self.type)


def literal(value: ast.Value) -> Any:
    """The Python value of a scalar literal, or raises ValueError."""
    if isinstance(value, ast.Number | ast.String):
        return value.value
    if isinstance(value, ast.Name):
        return {"true": True, "false": False}.get(value.value, value.value)
    raise ValueError


def _checked(param: Param, raw: Any) -> tuple[Any, str | None]:
    if param.check is not None and (problem := param.check(raw)):
        return None, f"'{param.name}' {problem}"
    return raw, None


def from_spec(param: Param, value: ast.Value) -> tuple[Any, str | None]:
    """A written value converted to the parameter's type: (value, problem or None)."""
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
    elif param.path and (problem := _outside_the_spec_folder(raw)):
        return None, f"'{param.name}' {problem}"
    elif param.type == "bool" and not isinstance(raw, bool):
        return None, f"'{param.name}' must be true or false"
    return _checked(param, raw)


def _outside_the_spec_folder(path: str) -> str | None:
    """Why a path written in a spec may lead out of the spec's folder, or None: a spec may
    come from anyone, so it chooses places below its own folder only (the command line and
    Python choose any)."""
    parts = PurePath(path).parts
    if PurePath(path).is_absolute() or path.startswith("~") or ".." in parts:
        return ("written in a spec must be a folder below the spec's own (no absolute path, "
                "no '..'); choose another place on the command line or from Python")
    return None


def from_python(param: Param, value: Any) -> tuple[Any, str | None]:
    """A value given from Python (or parsed from the command line): (value, problem)."""
    if param.accepts is not None and param.accepts(value):
        return value, None
    kind = param.type
    if kind in ("number", "int"):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return None, f"'{param.name}' must be {TYPE_WORDS[kind]}"
        if not math.isfinite(float(value)):
            return None, f"'{param.name}' must be finite"
        if kind == "int":
            if not float(value).is_integer():
                return None, f"'{param.name}' must be a whole number"
            value = int(cast(SupportsInt, value))  # a Real (whole, checked above)
        else:
            value = float(value)
    elif kind in ("string", "name") and not isinstance(value, str):
        return None, f"'{param.name}' must be {TYPE_WORDS[kind]}"
    elif kind == "bool":
        if not isinstance(value, bool) and type(value).__name__ != "bool_":
            return None, f"'{param.name}' must be true or false"
        value = bool(value)
    return _checked(param, value)


class Options:
    """The options one owner (a backend, a statement) declares, in declaration order."""

    def __init__(self, owner: str, params: Iterable[Param]):
        self.owner = owner
        self.params = tuple(params)
        self._by_name = {p.name: p for p in self.params}
        if len(self._by_name) != len(self.params):
            raise ValueError(f"{owner} declares an option twice")

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Param:
        return self._by_name[name]

    def __len__(self) -> int:
        return len(self.params)

    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def unknown(self, name: str) -> str:
        return f"unknown option '{name}' for {self.owner}" + did_you_mean(name, self._by_name)

    def resolve(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Every option's value: the defaults updated by ``given`` (None: the default).
        Raises :class:`OptionError` naming every unknown option and every bad value."""
        values = self.defaults()
        if given is not None and not isinstance(given, Mapping):
            raise OptionError(f"the options of {self.owner} are a dict of values by name; got a "
                              f"{type(given).__name__}")
        problems = []
        for name, value in (given or {}).items():
            if not isinstance(name, str):
                problems.append(f"option names are text; got {name!r} (for {self.owner})")
                continue
            if name not in self._by_name:
                problems.append(self.unknown(name))
                continue
            if value is None:
                continue
            converted, problem = from_python(self._by_name[name], value)
            if problem:
                problems.append(f"{self.owner}: option {problem}; got {value!r}")
            else:
                values[name] = converted
        if problems:
            raise OptionError("\n".join(problems))
        return values

    def extended(self, owner: str, *params: Param) -> Options:
        """These options and more, under another owner."""
        return Options(owner, (*self.params, *params))


def resolve_args(params: tuple[Param, ...], call: ast.Call, what: str,
                 out: Collector) -> tuple[tuple[str, Any], ...] | None:
    """Binds a call's positional and keyword arguments to ``params``, defaults filled."""
    by_name = {p.name: p for p in params}
    bound: dict[str, Any] = {}
    given: set[str] = set()  # named by an argument, even one whose value is refused
    ok = True
    for i, arg in enumerate(call.args):
        if arg.keyword is None:
            if i >= len(params):
                out.error(f"{what} takes at most {len(params)} argument"
                          f"{'s' if len(params) != 1 else ''}", arg.span,
                          code=codes.TOO_MANY_ARGUMENTS)
                ok = False
                continue
            param = params[i]
        else:
            named = by_name.get(arg.keyword.value)
            if named is None:
                out.error(f"unknown argument '{arg.keyword.value}' for {what}"
                          + did_you_mean(arg.keyword.value, by_name), arg.keyword.span,
                          code=codes.UNKNOWN_ARGUMENT)
                ok = False
                continue
            param = named
        if param.name in given:
            out.error(f"argument '{param.name}' given twice", arg.span, code=codes.ARGUMENT_TWICE)
            ok = False
            continue
        given.add(param.name)
        value, problem = from_spec(param, arg.value)
        if problem:
            out.error(f"{what}: {problem}", arg.value.span, code=codes.INVALID_VALUE)
            ok = False
            continue
        bound[param.name] = value
    for p in params:
        if p.name not in given:
            if p.required:
                out.error(f"{what} needs argument '{p.name}'", call.span,
                          code=codes.MISSING_ARGUMENT)
                ok = False
            else:
                bound[p.name] = p.default
    return tuple((p.name, bound.get(p.name)) for p in params) if ok else None
