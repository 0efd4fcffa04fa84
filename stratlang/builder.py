"""Building and editing specs from Python: :class:`Spec` composes statements from Python
values, and its :meth:`Spec.model` compiles them like any spec text (every check, every
positioned error), so a spec built in Python and the same spec written by hand are one
model with one canonical text.

    spec = (stratlang.Spec("insurance", data="data/insurance.csv")
            .response("claims", "poisson_regression", offset="log(holders)")
            .stratify("age", "path", weight=10, nodes=["<25", "25-29", "30-35", ">35"]))
    model = spec.model()
    edited = stratlang.Spec.from_model(model).stratify("age", "path", weight=[1, 10, 100])
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .language import ast, ir
from .language.auto import AUTO
from .language.errors import Source, Span, SpecArgumentError
from .language.printer import literal, target, wrap
from .language.syntax import parse
from .model import Model
from .spec import compile_spec

Columns = str | Sequence[str]


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def _name(value: Any, what: str) -> str:
    """A name as the grammar reads one (a column, a kind, an option): anything else would
    change the spec's text around it (a line break: a new statement)."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise SpecArgumentError(f"{what} is a name (letters, digits, '_' and '.', not starting "
                                f"with a digit); got {value!r}")
    return value


def _fragment(text: Any, what: str) -> str:
    """Spec text written by the caller (a feature term, an offset, a where clause): it must
    stay on its statement's line, and nothing in it may end the statement early (a
    comment) or join the next one to it (a trailing '\\')."""
    if not isinstance(text, str):
        raise SpecArgumentError(f"{what} is spec text (a string); got {text!r}")
    control = next((c for c in text if unicodedata.category(c) in ("Cc", "Zl", "Zp")
                    and c != "\t"), None)
    if control is not None:
        raise SpecArgumentError(f"{what} {text!r} holds U+{ord(control):04X}: spec text stays "
                                "on its statement's line, without control characters")
    outside = re.sub(r'"(?:[^"\\]|\\.)*"?', '""', text)  # (strings may hold anything)
    for char, why in (("#", "a comment would hide the rest of the statement"),
                      ("\\", "a '\\' would join the statement to the next one")):
        if char in outside:
            raise SpecArgumentError(f"{what} {text!r} holds {char!r}: {why}")
    if not text.strip():
        raise SpecArgumentError(f"{what} is empty")
    return text


def _columns(columns: Columns) -> tuple[str, ...]:
    names = ((columns,) if isinstance(columns, str)
             else tuple(columns) if isinstance(columns, list | tuple) else ())
    if not names or not all(isinstance(c, str) for c in names):
        raise SpecArgumentError(f"columns are given by name: a string or a tuple of strings; "
                                f"got {columns!r}")
    return tuple(_name(c, "a column") for c in names)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python numbers and lists."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _value(value: Any) -> str:
    """A Python value as spec text: numbers, true/false, quoted strings; a list or tuple of
    numbers is a sweep set; a range is an integer node range."""
    value = _plain(value)
    if value is None:
        raise SpecArgumentError("None has no spec form: leave the argument out for its default")
    if isinstance(value, ir.Hyper):
        from .language.printer import hyper

        return hyper(value)
    if isinstance(value, range):
        if len(value) == 0:
            raise SpecArgumentError(f"empty range {value}")
        step = f" step {value.step}" if value.step != 1 else ""
        return f"{value.start}..{value[-1]}{step}"
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else list(value)
        return "{" + ", ".join(_scalar(v) for v in items) + "}"
    return _scalar(value)


def _weight(value: Any) -> str:
    """A weight as spec text: "auto" is the word auto (chosen from the data), not a string."""
    return AUTO if isinstance(value, str) and value == AUTO else _value(value)


def _scalar(value: Any) -> str:
    """A number, true/false or a string as spec text; anything else has no spec form (its
    Python text would become a label or a name)."""
    value = _plain(value)
    if not isinstance(value, bool | int | float | str):
        raise SpecArgumentError(f"{value!r} ({type(value).__name__}) has no spec form: give a "
                                "number, true/false or a string")
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecArgumentError(f"{value} is not a number a spec can hold")
    return literal(value)


def _nodes(nodes: Any) -> str:
    nodes = _plain(nodes)
    if isinstance(nodes, range):
        return _value(nodes)
    if isinstance(nodes, str | bytes | set | frozenset | Mapping) or not isinstance(
            nodes, Iterable):  # (a set or a mapping has no order: the order is the graph's)
        raise SpecArgumentError(f"nodes are a range or a list of labels; got {nodes!r}")
    return "[" + ", ".join(_label(v) for v in nodes) + "]"


def _label(value: Any) -> str:
    """A node label: a string, a whole number or a finite number (the labels the data's
    values are matched with); None, NaN, a bool or a list is no label."""
    value = _plain(value)
    if isinstance(value, bool) or not isinstance(value, int | float | str) or (
            isinstance(value, float) and not math.isfinite(value)):
        raise SpecArgumentError(f"a node label is a string or a finite number; got {value!r}")
    return literal(value)


def _call(kind: str, args: tuple, params: dict[str, Any], what: str) -> str:
    """``kind(args, key=value)``; a parameter given as None keeps its default."""
    parts = ([_value(a) for a in args]
             + [f"{_name(k, 'a parameter')}={_value(v)}" for k, v in params.items()
                if v is not None])
    kind = _name(kind, what)
    return f"{kind}({', '.join(parts)})" if parts else kind


def _names(names: Iterable[str] | str) -> str:
    from .language.printer import _name as written

    given: list[Any] = ([names] if isinstance(names, str)
                        else list(names) if isinstance(names, list | tuple) else [names])
    if not all(isinstance(n, str) and n for n in given):
        raise SpecArgumentError(f"exclude takes parameter row names (strings); got {given!r}")
    return "[" + ", ".join(written(n) for n in given) + "]"


def _one_line(source: Source, span: Span) -> str:
    """The text of a span, a statement printed over several lines joined back into one."""
    text = source.text[source.offset(span.line, span.column):
                       source.offset(span.end_line, span.end_column)]
    return re.sub(r"[ \t]*\n[ \t]*", " ", text)


Where = Mapping[str, Any] | str | None


def _where(where: Where) -> str:
    """`` where …`` from text as written (``'sex == "F"'``) or a mapping of column → value
    (a list or set of values: any of them), conditions joined by ``and``; '' for None."""
    if where is None:
        return ""
    if isinstance(where, str):
        return f" where {_fragment(where, 'a where clause')}"
    if not isinstance(where, Mapping) or not where:
        raise SpecArgumentError(f"where is text ('sex == \"F\"') or a dict of column → value(s), "
                             f"e.g. {{'sex': 'F'}}; got {where!r}")
    parts = []
    for column, value in where.items():
        column = _name(column, "a where clause's column")
        if isinstance(value, list | tuple | set | frozenset):
            parts.append(f"{column} in {{{', '.join(_scalar(v) for v in value)}}}")
        else:
            parts.append(f"{column} == {_scalar(value)}")
    return " where " + " and ".join(parts)


_ORDER = ("model", "data", "response", "features", "weights", "missing", "regularize",
          "stratify", "basis", "personalize", "distance", "solver")


def _rank(key: Any) -> tuple[int, int]:
    """Where a statement goes in the text: by kind, a response's overrides after it."""
    head = key[0] if isinstance(key, tuple) else key
    return _ORDER.index(head), int(isinstance(key, tuple) and head == "response")


class Spec:
    """A spec under construction: statements keyed so that setting one again replaces it
    (``stratify`` by its columns); ``regularize`` adds a statement each time."""

    def __init__(self, name: str | None = None, *, data: str | None = None,
                 directory: str | Path | None = None):
        """``directory``: where the spec's relative paths (data, graph files) start
        (default: the working directory)."""
        self._statements: dict[Any, str] = {}
        self._terms = 0
        self._origin = (str(Path(directory) / "<built spec>") if directory is not None
                        else "<built spec>")
        if name is not None:
            self._set("model", f"model {_name(name, 'a model name')}")
        if data is not None:
            self.data(data)

    # ---- from a model ---------------------------------------------------------------
    @classmethod
    def from_model(cls, model: Model | ir.CheckedModel) -> Spec:
        """The statements of a model's canonical text, ready to edit."""
        text = model.text if isinstance(model, Model) else Model(model).text
        source = (model.ir if isinstance(model, Model) else model).source
        named = source is not None and not source.filename.startswith("<")  # (a file's)
        spec = cls(directory=source.directory if source is not None and named else None)
        parsed = parse(text, "<canonical>")  # (a long statement goes on over more lines)
        for stmt in parsed.statements:
            line = _one_line(parsed.source, stmt.span)
            head = line.split()[0]
            if isinstance(stmt, ast.ResponseStmt) and stmt.where is not None:  # an override,
                where = _one_line(parsed.source, stmt.where.span)  # one per clause
                spec._set(("response", where.removeprefix("where ")), line)
            elif head == "regularize":
                spec._set(("regularize", spec._terms), line)
                spec._terms += 1
            elif isinstance(stmt, ast.StratifyStmt | ast.DistanceStmt):
                columns = tuple(c.value for c in stmt.target.columns)
                spec._set((head, target(columns)), line)
            else:
                spec._set(head, line)
        return spec

    @classmethod
    def from_text(cls, text: str) -> Spec:
        return cls.from_model(Model(compile_spec(text)))

    # ---- statements -----------------------------------------------------------------
    def _set(self, key: Any, line: str) -> Spec:
        self._statements[key] = line
        return self

    def data(self, path: str | Path) -> Spec:
        if not isinstance(path, str | Path) or not str(path):
            raise SpecArgumentError(f"data is a file's path (a string or a Path); got {path!r}")
        return self._set("data", f"data {literal(str(path))}")

    def response(self, columns: Columns, loss: str, *args: Any, offset: str | None = None,
                 where: Where = None, **params: Any) -> Spec:
        """``response COLUMNS ~ LOSS(args) [offset TERM]``; ``offset`` as written in a
        spec, e.g. ``"log(holders)"``. With ``where`` (text, or a dict of column →
        value(s)), the loss's parameters in those strata (an override, added)."""
        line = f"response {target(_columns(columns))} ~ {_call(loss, args, params, 'a loss')}"
        if offset is not None:
            offset = _fragment(offset, "an offset")
        if where is not None:
            clause = _where(where)
            return self._set(("response", clause.removeprefix(" where ")), line + clause)
        return self._set("response", line + (f" offset {offset}" if offset else ""))

    def features(self, *terms: str | Sequence[str]) -> Spec:
        """The feature terms as written in a spec (``"categorical(region)"``,
        ``"log(income)"``, ``"a:b"``), or one list of them; replaces the features set
        before."""
        if len(terms) == 1 and isinstance(terms[0], list | tuple):
            terms = tuple(terms[0])
        texts = [_fragment(t, "a feature term") for t in terms if isinstance(t, str)]
        if len(texts) != len(terms):
            raise SpecArgumentError(f"feature terms are written as text, e.g. 'log(income)'; "
                                    f"got {terms!r}")
        if not texts:
            self._statements.pop("features", None)
            return self
        return self._set("features", "features " + ", ".join(texts))

    def weights(self, column: str | None) -> Spec:
        """The column of record weights (None: no weights)."""
        if column is None:
            self._statements.pop("weights", None)
            return self
        return self._set("weights", f"weights {_name(column, 'the weights column')}")

    def missing(self, policy: str) -> Spec:
        return self._set("missing", f"missing {_name(policy, 'a missing-value policy')}")

    def regularize(self, kind: str, weight: Any = None, *args: Any,
                   exclude: Iterable[str] | None = None, where: Where = None,
                   **params: Any) -> Spec:
        """Adds ``regularize [WEIGHT *] KIND(args) [exclude [...]] [where …]``; ``weight``
        may be a number, a list of numbers (a sweep) or "auto" (chosen from the data);
        ``where`` (text, or a dict of column → value(s)) limits it to those strata."""
        term = _call(kind, args, params, "a regularizer")
        if weight is not None:
            term = f"{_weight(weight)} * {term}"
        line = (f"regularize {term}" + (f" exclude {_names(exclude)}" if exclude is not None
                                        else "") + _where(where))
        self._set(("regularize", self._terms), line)
        self._terms += 1
        return self

    def clear_regularizers(self) -> Spec:
        for key in [k for k in self._statements if isinstance(k, tuple) and k[0] == "regularize"]:
            del self._statements[key]
        return self

    def stratify(self, columns: Columns, graph: str, *args: Any, weight: Any = 1,
                 nodes: Any = None, **params: Any) -> Spec:
        """Sets the factor over ``columns`` (replacing one over the same columns);
        ``weight`` as :meth:`regularize`'s."""
        cols = _columns(columns)
        line = (f"stratify {target(cols)} ~ {_call(graph, args, params, 'a graph')} "
                f"weight {_weight(weight)}")
        if nodes is not None:
            if len(cols) > 1 and (not isinstance(nodes, list | tuple) or len(nodes) != len(cols)):
                raise SpecArgumentError(f"nodes of {len(cols)} columns are a tuple of "
                                        f"{len(cols)} ranges or lists; got {nodes!r}")
            line += " nodes " + (_nodes(nodes) if len(cols) == 1
                                 else "(" + ", ".join(_nodes(n) for n in nodes) + ")")
        return self._set(("stratify", target(cols)), line)

    def unstratify(self, columns: Columns) -> Spec:
        """Removes the factor over ``columns``."""
        key = ("stratify", target(_columns(columns)))
        if key not in self._statements:
            raise SpecArgumentError(f"the spec has no factor over {target(_columns(columns))}")
        del self._statements[key]
        return self

    def basis(self, count: int | None) -> Spec:
        """``basis M``: θ in the span of the graph's M smoothest eigenvectors (None: the
        full model)."""
        if count is None:
            self._statements.pop("basis", None)
            return self
        count = _plain(count)
        if isinstance(count, bool) or not isinstance(count, int):
            raise SpecArgumentError(f"basis takes a whole number of eigenvectors; got {count!r}")
        return self._set("basis", f"basis {count}")

    def personalize(self, **options: Any) -> Spec:
        return self._set("personalize", " ".join(
            ["personalize", *(f"{_name(k, 'an option')} {_value(v)}"
                              for k, v in options.items())]))

    def distance(self, columns: Columns, metric: str, *args: Any, **params: Any) -> Spec:
        cols = _columns(columns)
        return self._set(("distance", target(cols)),
                         f"distance {target(cols)} ~ {_call(metric, args, params, 'a distance')}")

    def solver(self, backend: str, **options: Any) -> Spec:
        return self._set("solver", " ".join(
            ["solver", _name(backend, "a backend"),
             *(f"{_name(k, 'an option')} {_value(v)}" for k, v in options.items())]))

    # ---- results --------------------------------------------------------------------
    @property
    def source(self) -> str:
        """The statements as composed (before checking)."""
        keys = sorted(self._statements, key=_rank)  # (stable: added order within a rank)
        return "".join(wrap(self._statements[k]) + "\n" for k in keys)

    def model(self, graphs: dict[str, Any] | None = None) -> Model:
        """The checked model (a SpecError names the line of :attr:`source` at fault)."""
        return Model(compile_spec(self.source, self._origin), graphs)

    @property
    def text(self) -> str:
        """The canonical spec text."""
        return self.model().text

    def __repr__(self) -> str:
        return f"<stratlang.Spec\n{self.source}>"

