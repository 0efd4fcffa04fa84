"""IR → canonical spec text (``check(parse(to_text(m))) == m``)."""

from __future__ import annotations

import re
from typing import Any

from . import ir
from .auto import AUTO, SELECT_OPTION
from .personalize import PERSONALIZE_OPTIONS
from .vocabulary import Registry, Vocabulary


def number(v: float | int) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(float(v))


def literal(v: Any) -> str:
    if isinstance(v, bool | int | float):
        return number(v)
    text = str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def _name(text: str) -> str:
    """A name as written: bare when it is one, else quoted (``"log(income)"``)."""
    return text if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", text) else literal(text)


def hyper(h: ir.Hyper) -> str:
    if h.form == "value":
        return number(h.args[0])
    if h.form == "set":
        return "{" + ", ".join(number(a) for a in h.args) + "}"
    if h.is_auto:
        return AUTO
    lo, hi, n = h.args
    return f"{h.form}({number(lo)}, {number(hi)}, {int(n)})"


def _shown(ref: ir.KindRef, registry: Registry) -> list[str]:
    """``key=value`` for each parameter that is required or not at its default."""
    params = registry[ref.name].params
    defaults = {p.name: p.default for p in params}
    return [f"{k}={literal(v)}" for k, v in ref.params
            if v != defaults.get(k) or _required(params, k)]


def call(ref: ir.KindRef, registry: Registry) -> str:
    shown = _shown(ref, registry)
    return f"{ref.name}({', '.join(shown)})" if shown else ref.name


def factor_text(factor: ir.Factor, transforms: Registry) -> str:
    """A feature factor as written canonically: ``income``, ``log(income)``,
    ``categorical(region, reference="north")``."""
    if isinstance(factor, ir.Column):
        return factor.name
    return (f"{factor.kind.name}("
            + ", ".join([factor_text(factor.arg, transforms), *_shown(factor.kind, transforms)])
            + ")")


def term_text(term: ir.Term, transforms: Registry) -> str:
    return ":".join(factor_text(f, transforms) for f in term.factors)


def vary_text(vary: tuple[ir.VaryOver, ...] | None) -> str:
    """`` by store``, `` by (store weight 50, week)``, `` shared`` (empty for None: every
    factor)."""
    if vary is None:
        return ""
    if not vary:
        return " shared"
    each = [_name(v.column) + (f" weight {hyper(v.weight)}" if v.weight is not None else "")
            for v in vary]
    return " by " + (each[0] if len(each) == 1 else "(" + ", ".join(each) + ")")


def _required(params, key: str) -> bool:
    return any(p.name == key and p.required for p in params)


def target(columns: tuple[str, ...]) -> str:
    return columns[0] if len(columns) == 1 else "(" + ", ".join(columns) + ")"


def node_spec(spec: ir.NodeSpec) -> str:
    if isinstance(spec, ir.IntRange):
        step = f" step {spec.step}" if spec.step != 1 else ""
        return f"{spec.start}..{spec.stop}{step}"
    return "[" + ", ".join(literal(v) for v in spec) + "]"


def where_text(where: ir.Where | None) -> str:
    """`` where sex == "F" and region in {"north", "east"}`` (empty for None)."""
    if where is None:
        return ""
    parts = []
    for c in where.conditions:
        if len(c.values) > 1:
            parts.append(f"{_name(c.column)} in {{{', '.join(literal(v) for v in c.values)}}}")
        else:
            parts.append(f"{_name(c.column)} {'!=' if c.negated else '=='} {literal(c.values[0])}")
    return " where " + " and ".join(parts)


WIDTH = 100  # a canonical line longer than this is broken (the parser's limit is 10,000)
INDENT = "    "
_BREAK_AFTER = re.compile(r'"(?:[^"\\\n]|\\.)*"|(, | \+ )')


def wrap(line: str, width: int = WIDTH) -> str:
    """A statement's line broken after ',' and '+' (where the grammar lets a statement go
    on over the next line) so that no line is longer than ``width`` unless one item is:
    thousands of terms or node labels would otherwise make a line the parser refuses."""
    if len(line) <= width:
        return line
    head = line.lstrip().split(" ", 1)[0]
    # a column tuple (``stratify (lat, lon) ~``) takes no break: start after its '~'
    start = line.find(" ~ ") + 1 if head in ("response", "stratify", "distance") else 0
    pieces, last = [], 0
    for match in _BREAK_AFTER.finditer(line, start):
        if match.group(1):
            pieces.append(line[last:match.end()])
            last = match.end()
    pieces.append(line[last:])
    out, length = pieces[0], len(pieces[0])
    for piece in pieces[1:]:
        if length + len(piece) > width:
            out = out[:-1] + "\n" + INDENT + piece  # (the separator's trailing space dropped)
            length = len(INDENT) + len(piece)
        else:
            out += piece
            length += len(piece)
    return out


def to_text(model: ir.CheckedModel, vocabulary: Vocabulary, width: int = WIDTH) -> str:
    """The canonical text of a model; ``vocabulary`` gives the kinds' default parameters
    (left out of the text); a statement longer than ``width`` goes on over more lines."""
    words = vocabulary
    lines = [f"model {model.name}"]
    if model.data is not None:
        lines.append(f"data {literal(model.data)}")
    loss = words.losses[model.response.loss.name]
    offset = model.response.offset
    lines.append(f"response {target(model.response.columns)} ~ "
                 f"{call(model.response.loss, words.losses)}"
                 + (f" offset {factor_text(offset, words.transforms)}" if offset else ""))
    for override in model.response.overrides:
        lines.append(f"response {target(model.response.columns)} ~ "
                     f"{call(override.loss, words.losses)}{where_text(override.where)}")
    if model.features:
        lines.append("features " + ", ".join(term_text(t, words.transforms) + vary_text(t.vary)
                                             + where_text(t.where) for t in model.features))
    if model.weights is not None:
        lines.append(f"weights {model.weights}")
    if model.missing != "error":
        lines.append(f"missing {model.missing}")
    rows = loss.row_names(tuple(term_text(t, words.transforms) for t in model.features),
                          model.response.columns)
    default_exclude = tuple(loss.default_exclude(rows))
    groups: list[tuple[tuple[tuple[str, ...], ir.Where | None], list[str]]] = []
    for term in model.regularizers:
        text = call(term.kind, words.regularizers)
        if term.weight is not None:
            text = f"{hyper(term.weight)} * {text}"
        if groups and groups[-1][0] == (term.exclude, term.where):
            groups[-1][1].append(text)
        else:
            groups.append(((term.exclude, term.where), [text]))
    for (exclude, where), texts in groups:
        line = "regularize " + " + ".join(texts)
        if exclude != default_exclude:
            line += " exclude [" + ", ".join(_name(e) for e in exclude) + "]"
        lines.append(line + where_text(where))
    for s in model.strata:
        line = (f"stratify {target(s.columns)} ~ {call(s.graph, words.graphs)} "
                f"weight {hyper(s.weight)}")
        if s.nodes is not None:
            specs = [node_spec(n) for n in s.nodes]
            line += " nodes " + (specs[0] if len(specs) == 1 else "(" + ", ".join(specs) + ")")
        lines.append(line)
    for i in model.interactions:
        lines.append("interact " + " * ".join(_name(c) for c in i.columns)
                     + f" weight {hyper(i.weight)}")
    if model.basis is not None:
        lines.append(f"basis {model.basis}")
    if model.personalize is not None:
        opts = []
        for key, value in model.personalize.options:
            param = PERSONALIZE_OPTIONS[key]
            if param.sweep:
                if value != ir.Hyper.of(param.default):
                    opts.append(f"{key} {hyper(value)}")
            elif value != param.default or param.required:
                opts.append(f"{key} {number(value)}")
        lines.append(" ".join(["personalize", *opts]))
        for d in model.personalize.distances:
            lines.append(f"  distance {target(d.columns)} ~ {call(d.metric, words.distances)}")
    if model.solver is not None:
        backend = words.backends[model.solver.backend]
        kinds = {p.name: p.type for p in backend.options}
        opts = [f"{k} {v if kinds[k] == 'name' else literal(v)}" for k, v in model.solver.options]
        if model.solver.select is not None:
            opts.append(f"{SELECT_OPTION} {model.solver.select}")
        lines.append(" ".join(["solver", model.solver.backend, *opts]))
    return "\n".join(wrap(line, width) for line in lines) + "\n"
