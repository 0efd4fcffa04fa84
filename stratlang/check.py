"""AST → checked IR. Every problem found is collected and reported at once, in order."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from . import ast, ir
from .backends import BACKENDS
from .distances import DISTANCES
from .errors import Collector, Diagnostic, Span, did_you_mean
from .graphs import GRAPHS
from .losses import LOSSES
from .registry import Param, convert, literal, nonnegative, positive, resolve_args
from .regularizers import REGULARIZERS

SINGLE_STATEMENTS = ("model", "data", "response", "features", "personalize", "solver")
DISTRIBUTION_TWINS = {"poisson": "poisson_regression", "exponential": "exponential_regression",
                      "bernoulli": "logistic", "gaussian": "squared"}
PERSONALIZED_LOSSES = ("squared", "logistic")
PERSONALIZED_REGULARIZERS = ("zero", "l1", "l2", "sum_squares", "elastic_net")


def _decay(v: Any) -> str | None:
    return None if 0 < v <= 1 else "must lie in (0, 1]"


# name → (param, sweepable); declaration order is the canonical printing order
PERSONALIZE_OPTIONS: dict[str, tuple[Param, bool]] = {
    p.name: (p, sweep) for p, sweep in [
        (Param("rank", "int", required=True, check=lambda v: None if v >= 1 else "must be at least 1",
               doc="q, the number of dictionary atoms (rows of Q)"), False),
        (Param("radius", default=1.0, check=positive, doc="r: neighbours are within ‖Z_i − Z_j‖ < r"),
         False),
        (Param("match", default=1.0, check=nonnegative, doc="γ, weight of distance matching"), True),
        (Param("metric_penalty", default=0.1, check=nonnegative, doc="ν in ν‖φ − 1‖²"), True),
        (Param("max_neighbors", "int", default=30, check=positive,
               doc="B_r(i) keeps at most this many nearest samples within the radius"), False),
        (Param("neighbors", "int", default=3, check=positive,
               doc="k_n, training samples averaged to predict a new one"), False),
        (Param("start_neighbors", "int", default=0, check=nonnegative,
               doc="k of a distance-aware start: θ_i fitted to its k nearest samples under ρ "
                   "(φ = 1), shrunk toward θ_pop; 0: the paper's start, θ_pop + noise"), False),
        (Param("learning_rate", default=0.01, check=positive, doc="α₀, the global step size"),
         False),
        (Param("decay", default=0.99, check=_decay, doc="c: the step size is α₀ cᵗ"), False),
        (Param("max_iter", "int", default=200, check=positive, doc="subgradient epochs"), False),
        (Param("seed", "int", default=0, doc="random seed (results are deterministic given it)"),
         False),
    ]
}


class Checker:
    def __init__(self, spec: ast.Spec, base: Path | None):
        self.spec = spec
        self.out = Collector(spec.source)
        self.base = base

    def error(self, message: str, span: Span | None, hint: str | None = None) -> None:
        self.out.error(message, span, hint)

    # ---- values -----------------------------------------------------------------
    def hyper(self, value: ast.Value, what: str) -> ir.Hyper | None:
        """A weight: a nonnegative number, a set {…}, or logspace/linspace(lo, hi, n)."""
        if isinstance(value, ast.Number):
            if value.value < 0:
                self.error(f"{what} must be nonnegative; got {value.text}", value.span)
                return None
            return ir.Hyper("value", (float(value.value),), value.span)
        if isinstance(value, ast.SetValue):
            numbers = []
            for item in value.items:
                if not isinstance(item, ast.Number):
                    self.error(f"{what}: a sweep set holds numbers only", item.span)
                    return None
                if item.value < 0:
                    self.error(f"{what} must be nonnegative; got {item.text}", item.span)
                    return None
                numbers.append(float(item.value))
            return ir.Hyper("set", tuple(numbers), value.span)
        if isinstance(value, ast.Call) and value.name.value in ("logspace", "linspace"):
            form = value.name.value
            args = [a.value for a in value.args]
            if len(args) != 3 or any(a.keyword for a in value.args) or not all(
                    isinstance(a, ast.Number) for a in args):
                self.error(f"{form} takes three numbers: {form}(low, high, count)", value.span)
                return None
            lo, hi, n = (a.value for a in args)
            if not float(n).is_integer() or n < 2:
                self.error(f"{form}: count must be a whole number ≥ 2", args[2].span)
                return None
            if lo < 0 or hi < 0 or (form == "logspace" and (lo <= 0 or hi <= 0)):
                self.error(f"{form}: bounds must be {'positive' if form == 'logspace' else 'nonnegative'}",
                           value.span)
                return None
            return ir.Hyper(form, (float(lo), float(hi), float(int(n))), value.span)
        if isinstance(value, ast.Call):
            self.error(f"{what}: unknown sweep '{value.name.value}'"
                       + did_you_mean(value.name.value, ("logspace", "linspace")), value.name.span)
            return None
        self.error(f"{what} must be a number, a sweep set {{…}} or logspace(low, high, count)",
                   value.span)
        return None

    def names(self, value: ast.Value, what: str) -> tuple[str, ...] | None:
        if isinstance(value, ast.Name | ast.String):
            return (value.value,)
        if isinstance(value, ast.ListValue) and all(
                isinstance(i, ast.Name | ast.String) for i in value.items):
            return tuple(i.value for i in value.items)
        self.error(f"{what} takes a name or a list [a, b]", value.span)
        return None

    def node_spec(self, value: ast.Value) -> ir.NodeSpec | None:
        if isinstance(value, ast.RangeValue):
            parts = [value.start, value.stop] + ([value.step] if value.step else [])
            if not all(isinstance(p.value, int) for p in parts):
                self.error("a node range takes whole numbers: start..stop step k", value.span)
                return None
            step = value.step.value if value.step else 1
            if step == 0 or (value.stop.value - value.start.value) * step < 0:
                self.error("empty node range", value.span)
                return None
            return ir.IntRange(value.start.value, value.stop.value, step)
        if isinstance(value, ast.ListValue):
            labels = []
            for item in value.items:
                try:
                    labels.append(literal(item))
                except ValueError:
                    self.error("node labels are numbers, names or strings", item.span)
                    return None
            if len(set(labels)) != len(labels):
                self.error("node list repeats a label", value.span)
                return None
            return tuple(labels)
        self.error("nodes takes a range (1976..2016 step 2) or a list [a, b, c]", value.span)
        return None

    def options(self, options: tuple[ast.Option, ...], allowed: tuple[str, ...],
                where: str) -> dict[str, ast.Option]:
        seen: dict[str, ast.Option] = {}
        for opt in options:
            key = opt.name.value
            if key not in allowed:
                self.error(f"unknown option '{key}' for {where}" + did_you_mean(key, allowed),
                           opt.name.span)
            elif key in seen:
                self.error(f"option '{key}' given twice", opt.name.span)
            else:
                seen[key] = opt
        return seen

    def once(self, columns: tuple[ast.Name, ...], seen: dict[str, Span], problem: str) -> None:
        """Reports a column used a second time (across statements of one kind)."""
        for col in columns:
            if col.value in seen:
                self.error(f"column '{col.value}' {problem} (first on line "
                           f"{seen[col.value].line})", col.span)
            else:
                seen[col.value] = col.span

    def kind(self, registry, call: ast.Call) -> tuple[Any, ir.KindRef] | tuple[None, None]:
        entry = registry.lookup(call.name.value, call.name.span, self.out)
        if entry is None:
            return None, None
        params = resolve_args(entry.params, call, f"{registry.what} '{call.name.value}'", self.out)
        if params is None:
            return None, None
        return entry, ir.KindRef(call.name.value, params, call.span)

    # ---- statements -----------------------------------------------------------------
    def run(self) -> ir.Model | None:
        first: dict[str, ast.Node] = {}
        groups: dict[str, list] = {}
        for stmt in self.spec.statements:
            key = type(stmt).__name__.removesuffix("Stmt").lower()
            if key in SINGLE_STATEMENTS and key in first:
                self.error(f"duplicate '{key}' statement (the first is on line "
                           f"{first[key].span.line})", stmt.span)
                continue
            first.setdefault(key, stmt)
            groups.setdefault(key, []).append(stmt)

        name = self.model_name(first.get("model"))
        data = first["data"].path.value if "data" in first else None
        data_span = first["data"].path.span if "data" in first else None
        if data is not None and self.base is not None and not (self.base / data).is_file():
            self.error(f"data file '{data}' not found (looked in {self.base})", data_span)

        response = first.get("response")
        if response is None:
            self.error("missing 'response' statement: write e.g. `response y ~ squared`", None)
            loss, resp = None, None
        else:
            loss, resp = self.response(response)

        features, feature_spans = self.features(first.get("features"), loss)
        rows = loss.row_names(features, resp.columns) if loss and resp else ()
        regs = self.regularizers(groups.get("regularize", []), loss, rows)
        strata = self.strata(groups.get("stratify", []))
        personalize = self.personalize(first.get("personalize"), groups.get("distance", []),
                                       strata, loss, resp, features, regs)
        solver = self.solver(first.get("solver"), personalize is not None)
        if resp is None or self.out.diagnostics:
            return None
        return ir.Model(name, resp, features, regs, strata, personalize, solver, data,
                        self.spec.source, feature_spans, data_span)

    def model_name(self, stmt: ast.ModelStmt | None) -> str:
        if stmt is not None:
            return stmt.name.value
        stem = Path(self.spec.source.filename).stem
        return re.sub(r"\W", "_", stem) if stem and not stem.startswith("<") else "model"

    def response(self, stmt: ast.ResponseStmt):
        loss, ref = self.kind(LOSSES, stmt.loss)
        columns = tuple(n.value for n in stmt.target.columns)
        if len(set(columns)) != len(columns):
            self.error("response repeats a column", stmt.target.span)
        if loss is not None and len(columns) > 1 and not loss.multi_column:
            self.error(f"loss '{loss.name}' takes one response column; got {len(columns)}",
                       stmt.target.span)
        if ref is None:
            return None, None
        return loss, ir.Response(columns, ref, stmt.span, tuple(n.span for n in stmt.target.columns))

    def features(self, stmt: ast.FeaturesStmt | None, loss) -> tuple[tuple[str, ...], tuple | None]:
        if stmt is None:
            return (), None
        names = tuple(n.value for n in stmt.names)
        for i, n in enumerate(stmt.names):
            if n.value in names[:i]:
                self.error(f"duplicate feature '{n.value}'", n.span)
        if loss is not None and loss.features == "forbidden":
            twin = DISTRIBUTION_TWINS.get(loss.name)
            hint = f"for a model with features use '{twin}'" if twin else None
            self.error(f"loss '{loss.name}' is a distribution estimate and takes no features",
                       stmt.span, hint)
        return names, tuple(n.span for n in stmt.names)

    def regularizers(self, stmts: list[ast.RegularizeStmt], loss, rows) -> tuple[ir.RegTerm, ...]:
        terms: list[ir.RegTerm] = []
        for stmt in stmts:
            opts = self.options(stmt.options, ("exclude",), "regularize")
            if "exclude" in opts:
                exclude = self.names(opts["exclude"].value, "exclude") or ()
                for col in exclude:
                    if rows and col not in rows:
                        self.error(f"exclude: '{col}' is not a parameter row of this model"
                                   + did_you_mean(col, rows), opts["exclude"].value.span)
            else:
                exclude = loss.default_exclude(rows) if loss else ()
            for term in stmt.terms:
                entry, ref = self.kind(REGULARIZERS, term.call)
                if entry is None:
                    continue
                weight = None
                if entry.is_constraint:
                    if term.weight is not None:
                        self.error(f"'{entry.name}' is a constraint and takes no weight",
                                   term.weight.span)
                else:
                    weight = (self.hyper(term.weight, f"weight of '{entry.name}'")
                              if term.weight is not None else ir.Hyper.of(1.0))
                    if weight is None:
                        continue
                if entry.needs_square and loss is not None and loss.name != "gaussian":
                    self.error(f"'{entry.name}' applies to the precision matrix of the 'gaussian' "
                               "loss only", term.call.span)
                if entry.name == "box":
                    p = ref.p
                    if p["lower"] > p["upper"]:
                        self.error("box: lower must not exceed upper", term.call.span)
                terms.append(ir.RegTerm(ref, weight, tuple(exclude), term.span))
        return tuple(terms)

    def strata(self, stmts: list[ast.StratifyStmt]) -> tuple[ir.Stratification, ...]:
        out: list[ir.Stratification] = []
        seen: dict[str, Span] = {}
        for stmt in stmts:
            cols = stmt.target.columns
            self.once(cols, seen, "is stratified twice")
            entry, ref = self.kind(GRAPHS, stmt.graph)
            opts = self.options(stmt.options, ("weight", "nodes"), "stratify")
            weight = (self.hyper(opts["weight"].value, "graph weight") if "weight" in opts
                      else ir.Hyper.of(1.0))
            if entry is None or weight is None:
                continue
            if len(cols) > 1 and not entry.multi_column:
                self.error(f"graph '{entry.name}' takes one column; write one stratify statement "
                           "per column (their product is taken), or use 'grid'", stmt.target.span)
                continue
            nodes = None
            if "nodes" in opts:
                nodes = self.declared_nodes(opts["nodes"].value, len(cols))
                if nodes is None:
                    continue
            if entry.from_file and self.base is not None:
                path = self.base / ref.p["file"]
                if not path.is_file():
                    self.error(f"graph file '{ref.p['file']}' not found (looked in {self.base})",
                               stmt.graph.args[0].value.span if stmt.graph.args else stmt.graph.span)
            out.append(ir.Stratification(tuple(c.value for c in cols), ref, weight, nodes,
                                         stmt.span, tuple(c.span for c in cols)))
        return tuple(out)

    def declared_nodes(self, value: ast.Value, n_columns: int):
        if n_columns == 1:
            if isinstance(value, ast.TupleValue):
                self.error("one column takes one node list or range", value.span)
                return None
            spec = self.node_spec(value)
            return None if spec is None else (spec,)
        if not isinstance(value, ast.TupleValue) or len(value.items) != n_columns:
            self.error(f"nodes of {n_columns} columns take a tuple of {n_columns} ranges or lists, "
                       "e.g. (0..19, 0..19)", value.span)
            return None
        specs = tuple(self.node_spec(v) for v in value.items)
        return None if any(s is None for s in specs) else specs

    def personalize(self, stmt, distance_stmts, strata, loss, resp, features, regs):
        if stmt is None:
            for d in distance_stmts:
                self.error("'distance' belongs to a personalized model: add a 'personalize' "
                           "statement", d.span)
            return None
        if strata:
            self.error("a model is either stratified or personalized, not both", stmt.keyword)
        if loss is not None and loss.name not in PERSONALIZED_LOSSES:
            self.error(f"personalized models support the losses "
                       f"{', '.join(repr(x) for x in PERSONALIZED_LOSSES)}; got '{loss.name}'",
                       resp.loss.span if resp else None)
        if not features:
            self.error("a personalized model needs features", stmt.keyword)
        for term in regs:
            if term.kind.name not in PERSONALIZED_REGULARIZERS:
                self.error(f"personalized models support the regularizers "
                           f"{', '.join(PERSONALIZED_REGULARIZERS)}; got '{term.kind.name}'",
                           term.kind.span)
        opts = self.options(stmt.options, tuple(PERSONALIZE_OPTIONS), "personalize")
        values: list[tuple[str, Any]] = []
        for key, (param, sweepable) in PERSONALIZE_OPTIONS.items():
            if key not in opts:
                if param.required:
                    self.error(f"personalize needs '{key}' ({param.doc})", stmt.keyword)
                    continue
                value = ir.Hyper.of(param.default) if sweepable else param.default
            elif sweepable:
                value = self.hyper(opts[key].value, key)
                if value is None:
                    continue
            else:
                value, problem = convert(param, opts[key].value)
                if problem:
                    self.error(problem, opts[key].value.span)
                    continue
            values.append((key, value))
        distances = []
        seen: dict[str, Span] = {}
        for d in distance_stmts:
            cols = d.target.columns
            self.once(cols, seen, "has two distances")
            self.options(d.options, (), "distance")
            entry, ref = self.kind(DISTANCES, d.metric)
            if entry is None:
                continue
            if len(cols) > 1 and entry.arity == "one":
                self.error(f"distance '{entry.name}' takes one column; use 'euclidean' for a group",
                           d.target.span)
                continue
            distances.append(ir.Distance(tuple(c.value for c in cols), ref, d.span,
                                         tuple(c.span for c in cols)))
        if not distance_stmts:
            self.error("personalize needs at least one 'distance COLUMN ~ METRIC' statement",
                       stmt.keyword)
        return ir.Personalize(tuple(values), tuple(distances), stmt.span)

    def solver(self, stmt: ast.SolverStmt | None, personalized: bool) -> ir.Solver | None:
        if stmt is None:
            return None
        backend = BACKENDS.lookup(stmt.backend.value, stmt.backend.span, self.out)
        if backend is None:
            return None
        kind = "personalized" if personalized else "stratified"
        if kind not in backend.fits:
            self.error(f"backend '{backend.name}' cannot fit a {kind} model", stmt.backend.span)
        by_name = {p.name: p for p in backend.options}
        opts = self.options(stmt.options, tuple(by_name), f"backend '{backend.name}'")
        values = []
        for p in backend.options:
            if p.name in opts:
                value, problem = convert(p, opts[p.name].value)
                if problem:
                    self.error(problem, opts[p.name].value.span)
                    continue
                values.append((p.name, value))
        return ir.Solver(backend.name, tuple(values), stmt.span)


def check(spec: ast.Spec, base: Path | None = None,
          prior: tuple[Diagnostic, ...] = ()) -> ir.Model:
    """Checks a parsed spec; raises :class:`SpecError` listing every problem, sorted."""
    checker = Checker(spec, base)
    checker.out.diagnostics.extend(prior)
    model = checker.run()
    if prior:  # syntax errors removed lines: drop complaints about what is now missing
        checker.out.diagnostics = [d for d in checker.out.diagnostics if d.span is not None]
    checker.out.raise_if_any()
    assert model is not None
    return model
