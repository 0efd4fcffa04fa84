"""AST → checked IR. Every problem found is collected and reported at once, in order."""

from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path
from typing import Any, TypeGuard, TypeVar

from . import ast, codes, ir, limits
from .auto import AUTO, SELECT_OPTION, check_autos, select_method, written_auto
from .errors import Collector, Diagnostic, Span, did_you_mean
from .params import from_spec, literal, resolve_args
from .personalize import PERSONALIZE_OPTIONS
from .policies import MISSING_POLICIES
from .printer import factor_text, term_text
from .printer import target as target_text
from .reading import shown, unopenable
from .vocabulary import LossEntry, Registry, Vocabulary

SINGLE_STATEMENTS = ("model", "data", "response", "features", "weights", "missing", "basis",
                     "personalize", "solver")

S = TypeVar("S", bound=ast.Node)


def _key(kind: type[ast.Node]) -> str:
    """A statement's key: its class name less 'Stmt', in lower case (``data``)."""
    return kind.__name__.removesuffix("Stmt").lower()


def _first(first: dict[str, ast.Statement], kind: type[S]) -> S | None:
    """The first statement of a kind (``first`` holds them by :func:`_key`)."""
    stmt = first.get(_key(kind))
    return stmt if isinstance(stmt, kind) else None


class Checker:
    def __init__(self, spec: ast.SpecTree, base: Path | None, vocabulary: Vocabulary):
        self.spec = spec
        self.out = Collector(spec.source)
        self.base = base
        self.vocabulary = vocabulary
        self.stratified: tuple[ir.Stratification, ...] = ()  # what a `where` may name
        self.personalized = False

    def error(self, message: str, span: Span | None, hint: str | None = None, *,
              code: str) -> None:
        self.out.error(message, span, hint, code=code)

    # ---- values -----------------------------------------------------------------
    def hyper(self, value: ast.Value, what: str) -> ir.Hyper | None:
        """A weight: a nonnegative number, a set {…}, logspace/linspace(lo, hi, n), or
        auto (chosen from the data: its uses are checked by :func:`check_autos`)."""
        if written_auto(value):
            return ir.Hyper.auto(value.span)
        if isinstance(value, ast.Call) and value.name.value == AUTO:
            self.error(f"{what}: auto takes no arguments", value.span,
                       code=codes.MALFORMED_SWEEP)
            return None
        if isinstance(value, ast.Number):
            if value.value < 0:
                self.error(f"{what} must be nonnegative; got {value.text}", value.span,
                           code=codes.NEGATIVE_WEIGHT)
                return None
            return ir.Hyper("value", (float(value.value),), value.span)
        if isinstance(value, ast.SetValue):
            numbers = []
            for item in value.items:
                if not isinstance(item, ast.Number):
                    self.error(f"{what}: a sweep set holds numbers only", item.span,
                               code=codes.MALFORMED_SWEEP)
                    return None
                if item.value < 0:
                    self.error(f"{what} must be nonnegative; got {item.text}", item.span,
                               code=codes.NEGATIVE_WEIGHT)
                    return None
                numbers.append(float(item.value))
            return ir.Hyper("set", tuple(numbers), value.span)
        if isinstance(value, ast.Call) and value.name.value in ("logspace", "linspace"):
            form = value.name.value
            args = [a.value for a in value.args if isinstance(a.value, ast.Number)]
            if len(value.args) != 3 or any(a.keyword for a in value.args) or len(args) != 3:
                self.error(f"{form} takes three numbers: {form}(low, high, count)", value.span,
                           code=codes.MALFORMED_SWEEP)
                return None
            lo, hi, n = (a.value for a in args)
            if not float(n).is_integer() or n < 2:
                self.error(f"{form}: count must be a whole number ≥ 2", args[2].span,
                           code=codes.MALFORMED_SWEEP)
                return None
            if lo < 0 or hi < 0 or (form == "logspace" and (lo <= 0 or hi <= 0)):
                self.error(f"{form}: bounds must be {'positive' if form == 'logspace' else 'nonnegative'}",
                           value.span, code=codes.MALFORMED_SWEEP)
                return None
            return ir.Hyper(form, (float(lo), float(hi), float(int(n))), value.span)
        if isinstance(value, ast.Call):
            self.error(f"{what}: unknown sweep '{value.name.value}'"
                       + did_you_mean(value.name.value, ("logspace", "linspace")), value.name.span,
                       code=codes.UNKNOWN_SWEEP)
            return None
        self.error(f"{what} must be a number, a sweep set {{…}}, logspace(low, high, count) "
                   "or auto",
                   value.span, code=codes.MALFORMED_SWEEP)
        return None

    def names(self, value: ast.Value, what: str) -> tuple[str, ...] | None:
        if isinstance(value, ast.Name | ast.String):
            return (value.value,)
        if isinstance(value, ast.ListValue):
            named = [i for i in value.items if isinstance(i, ast.Name | ast.String)]
            if len(named) == len(value.items):
                return tuple(i.value for i in named)
        self.error(f"{what} takes a name or a list [a, b]", value.span, code=codes.MALFORMED_NODES)
        return None

    def node_spec(self, value: ast.Value) -> ir.NodeSpec | None:
        if isinstance(value, ast.RangeValue):
            start, stop = value.start.value, value.stop.value
            step = value.step.value if value.step else 1
            if not (isinstance(start, int) and isinstance(stop, int) and isinstance(step, int)):
                self.error("a node range takes whole numbers: start..stop step k", value.span,
                           code=codes.MALFORMED_NODES)
                return None
            if step == 0 or (stop - start) * step < 0:
                self.error("empty node range", value.span, code=codes.MALFORMED_NODES)
                return None
            if (stop - start) // step + 1 > limits.MAX_NODES:
                self.error(f"a node range of {(stop - start) // step + 1:,} "
                           f"nodes; a factor has at most {limits.MAX_NODES:,}", value.span,
                           code=codes.TOO_LARGE)
                return None
            return ir.IntRange(start, stop, step)
        if isinstance(value, ast.ListValue):
            labels = []
            for item in value.items:
                try:
                    labels.append(literal(item))
                except ValueError:
                    self.error("node labels are numbers, names or strings", item.span,
                               code=codes.MALFORMED_NODES)
                    return None
            if len(set(labels)) != len(labels):
                self.error("node list repeats a label", value.span, code=codes.MALFORMED_NODES)
                return None
            return tuple(labels)
        self.error("nodes takes a range (1976..2016 step 2) or a list [a, b, c]", value.span,
                   code=codes.MALFORMED_NODES)
        return None

    def options(self, options: tuple[ast.Option, ...], allowed: tuple[str, ...],
                where: str) -> dict[str, ast.Option]:
        seen: dict[str, ast.Option] = {}
        for opt in options:
            key = opt.name.value
            if key not in allowed:
                self.error(f"unknown option '{key}' for {where}" + did_you_mean(key, allowed),
                           opt.name.span, code=codes.UNKNOWN_OPTION)
            elif key in seen:
                self.error(f"option '{key}' given twice", opt.name.span, code=codes.OPTION_TWICE)
            else:
                seen[key] = opt
        return seen

    def once(self, columns: tuple[ast.Name, ...], seen: dict[str, Span], problem: str) -> None:
        """Reports a column used a second time (across statements of one kind)."""
        for col in columns:
            if col.value in seen:
                self.error(f"column '{col.value}' {problem} (first on line "
                           f"{seen[col.value].line})", col.span, code=codes.COLUMN_TWICE)
            else:
                seen[col.value] = col.span

    def kind(self, registry: Registry[Any], call: ast.Call
             ) -> tuple[Any, ir.KindRef] | tuple[None, None]:
        entry = registry.lookup(call.name.value, call.name.span, self.out)
        if entry is None:
            return None, None
        params = resolve_args(entry.params, call, f"{registry.what} '{call.name.value}'", self.out)
        if params is None:
            return None, None
        return entry, ir.KindRef(call.name.value, params, call.span)

    # ---- statements -----------------------------------------------------------------
    def run(self) -> ir.CheckedModel | None:
        first: dict[str, ast.Statement] = {}
        groups: dict[str, list] = {}
        overrides: list[ast.ResponseStmt] = []
        for stmt in self.spec.statements:
            key = _key(type(stmt))
            if isinstance(stmt, ast.ResponseStmt) and stmt.where is not None:
                overrides.append(stmt)  # a loss override: as many as wanted
                continue
            if key in SINGLE_STATEMENTS and key in first:
                self.error(f"duplicate '{key}' statement (the first is on line "
                           f"{first[key].span.line})", stmt.span, code=codes.DUPLICATE_STATEMENT)
                continue
            first.setdefault(key, stmt)
            groups.setdefault(key, []).append(stmt)

        name = self.model_name(_first(first, ast.ModelStmt))
        data_stmt = _first(first, ast.DataStmt)
        data = data_stmt.path.value if data_stmt is not None else None
        data_span = data_stmt.path.span if data_stmt is not None else None
        if data is not None and self.base is not None and (problem := unopenable(self.base / data)):
            self.error(f"data file '{shown(data)}' {problem} (looked in {shown(self.base)})",
                       data_span, code=codes.DATA_FILE)

        strata = self.strata(groups.get("stratify", []))
        self.stratified = strata
        self.personalized = "personalize" in first
        response = _first(first, ast.ResponseStmt)
        if response is None:
            self.error("missing 'response' statement: write e.g. `response y ~ squared`"
                       + (" (the ones with `where` change its parameters in some strata)"
                          if overrides else ""), overrides[0].span if overrides else None,
                       code=codes.MISSING_RESPONSE)
            loss, resp = None, None
        else:
            loss, resp = self.response(response)
            if resp is not None and overrides:
                resp = self.overrides(resp, loss, overrides)

        features = self.features(_first(first, ast.FeaturesStmt), loss)
        texts = tuple(term_text(t, self.vocabulary.transforms) for t in features)
        rows = loss.row_names(texts, resp.columns) if loss and resp else ()
        regs = self.regularizers(groups.get("regularize", []), loss, rows, features)
        personalize = self.personalize(_first(first, ast.PersonalizeStmt),
                                       groups.get("distance", []), strata, loss, resp, features,
                                       regs)
        interactions = self.interactions(groups.get("interact", []))
        basis_stmt = _first(first, ast.BasisStmt)
        basis = self.basis(basis_stmt, strata, personalize is not None)
        for term in features:
            if basis is not None and term.where is not None:
                self.error("a feature present in some strata only cannot be in a basis "
                           "model: θ = V β gives every row a value in every stratum",
                           term.where.span, code=codes.MISPLACED_WHERE)
                break
        for span in [t.vary_span for t in features if t.vary is not None][:1] + [
                i.span for i in interactions][:1]:
            if basis is not None:
                self.error("a basis model expands every parameter row over the same "
                           "eigenvectors of the product graph: rows varying over some factors "
                           "only, or an interaction term, need the full model (leave out "
                           "`basis`)", span, code=codes.MISPLACED_VARIATION)
        solver_stmt = _first(first, ast.SolverStmt)
        solver = self.solver(solver_stmt, personalize is not None)
        check_autos(self.out, loss, self.vocabulary.losses, self.vocabulary.regularizers, regs,
                    strata, personalize, next((o for o in solver_stmt.options
                                               if o.name.value == SELECT_OPTION), None)
                    if solver_stmt is not None else None, tuple(features), tuple(interactions))
        weights = _first(first, ast.WeightsStmt)
        missing_stmt = _first(first, ast.MissingStmt)
        missing = self.missing(missing_stmt)
        if resp is None or self.out.diagnostics:
            return None
        return ir.CheckedModel(name, resp, features, regs, strata, personalize, solver, data,
                        self.spec.source, data_span,
                        weights.column.value if weights else None,
                        weights.column.span if weights else None,
                        missing, missing_stmt.policy.span if missing_stmt is not None else None,
                        basis, basis_stmt.count.span if basis_stmt is not None else None,
                        interactions)

    def basis(self, stmt: ast.BasisStmt | None, strata: tuple[ir.Stratification, ...],
              personalized: bool) -> int | None:
        """``basis M``: θ in the span of the M smoothest eigenvectors of the product graph."""
        if stmt is None:
            return None
        value = stmt.count
        count = value.value if isinstance(value, ast.Number) else None
        if not isinstance(count, int) or not 1 <= count <= limits.MAX_BASIS:
            self.error(f"basis takes a whole number of eigenvectors in [1, "
                       f"{limits.MAX_BASIS:,}]", value.span, code=codes.TOO_LARGE)
            return None
        if personalized:
            self.error("basis expands a stratified model over its graph; a personalized model "
                       "has no graph", stmt.span, code=codes.MISPLACED_BASIS)
            return None
        if not strata:
            self.error("basis needs a graph: at least one `stratify` statement", stmt.span,
                       code=codes.MISPLACED_BASIS)
            return None
        if all(s.nodes is not None for s in strata):  # K is known without the data
            k = 1
            for s in strata:
                for spec in s.nodes or ():
                    k *= len(spec.labels()) if isinstance(spec, ir.IntRange) else len(spec)
            if problem := limits.basis_problem(count, k):
                self.error(problem, value.span, code=codes.TOO_LARGE)
                return None
        return count

    def model_name(self, stmt: ast.ModelStmt | None) -> str:
        if stmt is not None:
            return stmt.name.value
        stem = Path(self.spec.source.filename).stem
        return re.sub(r"\W", "_", stem) if stem and not stem.startswith("<") else "model"

    def response(self, stmt: ast.ResponseStmt
                 ) -> tuple[LossEntry | None, ir.Response | None]:
        loss, ref = self.kind(self.vocabulary.losses, stmt.loss)
        columns = tuple(n.value for n in stmt.target.columns)
        if len(set(columns)) != len(columns):
            self.error("response repeats a column", stmt.target.span, code=codes.COLUMN_TWICE)
        if loss is not None and len(columns) > 1 and not loss.multi_column:
            self.error(f"loss '{loss.name}' takes one response column; got {len(columns)}",
                       stmt.target.span, code=codes.ONE_COLUMN_ONLY)
        offset = None
        opts = self.options(stmt.options, ("offset",), "response")
        if "offset" in opts:
            value = opts["offset"].value
            offset = self.factor(value)
            if loss is not None and loss.offset_problem is not None:
                self.error(f"loss '{loss.name}' takes no offset: {loss.offset_problem}",
                           opts["offset"].name.span, code=codes.NOT_ACCEPTED)
            elif offset is not None and self.categorical(offset):
                self.error("an offset is one number per record: it cannot be categorical",
                           value.span, code=codes.NOT_ACCEPTED)
        if ref is None:
            return None, None
        return loss, ir.Response(columns, ref, stmt.span,
                                 tuple(n.span for n in stmt.target.columns), offset)

    def overrides(self, response: ir.Response, loss: LossEntry | None,
                  stmts: list[ast.ResponseStmt]) -> ir.Response:
        """``response y ~ loss(params) where …``: the main loss with other parameters in
        the strata selected; same columns, same loss, no options of its own."""
        out = []
        for stmt in stmts:
            assert stmt.where is not None  # (only those come here)
            columns = tuple(n.value for n in stmt.target.columns)
            if columns != response.columns:
                self.error(f"a response override is for the response "
                           f"{target_text(response.columns)}; got {target_text(columns)}",
                           stmt.target.span, code=codes.MALFORMED_OVERRIDE)
                continue
            entry, ref = self.kind(self.vocabulary.losses, stmt.loss)
            if entry is None or ref is None:
                continue
            if not entry.params:
                self.error(f"loss '{entry.name}' has no parameters for an override to change",
                           stmt.loss.span, code=codes.MALFORMED_OVERRIDE)
                continue
            if loss is not None and entry.name != loss.name:
                self.error(f"a response override changes the parameters of loss "
                           f"'{loss.name}', not the loss: write {loss.name}(…) where …",
                           stmt.loss.name.span, code=codes.MALFORMED_OVERRIDE)
                continue
            if stmt.options:
                self.error("a response override takes no options (an offset is the main "
                           "response statement's)", stmt.options[0].span,
                           code=codes.MALFORMED_OVERRIDE)
                continue
            where = self.where(stmt.where)
            if where is not None:
                out.append(ir.Override(ref, where, stmt.span))
        return dataclasses.replace(response, overrides=tuple(out))

    def where(self, where: ast.Where | None) -> ir.Where | None:
        """Conditions on stratification columns; their values are checked against the
        nodes when the data are bound (the nodes may come from the data)."""
        if where is None:
            return None
        columns = [c for s in self.stratified for c in s.columns]
        if self.personalized:
            self.error("where selects strata of a stratified model; a personalized model has "
                       "none (one model per sample)", where.span, code=codes.MISPLACED_WHERE)
            return None
        if not columns:
            self.error("where selects strata: the model needs a `stratify` statement",
                       where.span, code=codes.MISPLACED_WHERE)
            return None
        conditions = []
        for cond in where.conditions:
            column = cond.column.value
            if column not in columns:
                self.error(f"where: '{column}' is not a stratification column"
                           + did_you_mean(column, columns),
                           cond.column.span, code=codes.NOT_A_STRATUM_COLUMN)
                continue
            values = []
            for item in cond.values:
                try:
                    values.append(literal(item))
                except ValueError:
                    self.error("where compares with node labels: numbers, names or strings",
                               item.span, code=codes.NOT_A_LABEL)
            if len(values) == len(cond.values):
                conditions.append(ir.Condition(column, tuple(values), cond.negated, cond.span,
                                               tuple(v.span for v in cond.values)))
        if len(conditions) != len(where.conditions):
            return None
        return ir.Where(tuple(conditions), where.span)

    # ---- features ------------------------------------------------------------------------
    def categorical(self, factor: ir.Factor) -> TypeGuard[ir.Transform]:
        return (isinstance(factor, ir.Transform)
                and self.vocabulary.transforms[factor.kind.name].categorical)

    def factor(self, value: ast.Value) -> ir.Factor | None:
        """A column, or a transform of a factor: ``log(income)``, ``standardize(log(x))``."""
        if isinstance(value, ast.Name):
            return ir.Column(value.value, value.span)
        if not isinstance(value, ast.Call):
            self.error("a feature is a column, a transform of one such as log(x), or a product "
                       "of them such as a:b", value.span, code=codes.MALFORMED_FEATURE)
            return None
        transforms = self.vocabulary.transforms
        entry = transforms.lookup(value.name.value, value.name.span, self.out)
        if entry is None:
            return None
        name = value.name.value
        if not value.args or value.args[0].keyword is not None:
            self.error(f"transform '{name}' takes a column first: {name}(x)", value.span,
                       code=codes.MALFORMED_FEATURE)
            return None
        inner = self.factor(value.args[0].value)
        rest = ast.Call(value.span, value.name, value.args[1:])
        params = resolve_args(entry.params, rest, f"transform '{name}'", self.out)
        if inner is None or params is None:
            return None
        if self.categorical(inner):
            self.error(f"{factor_text(inner, transforms)} gives indicator columns: "
                       f"it cannot be the input of '{name}'", value.args[0].value.span,
                       code=codes.MALFORMED_FEATURE)
            return None
        return ir.Transform(ir.KindRef(name, params, value.span), inner, value.span)

    def stratified_place(self, what: str, span: Span) -> bool:
        """Can ``what`` (a `by`, `shared`, an `interact`) apply here (a stratified model)?
        Reports why not."""
        if self.personalized:
            self.error(f"{what} chooses graph factors of a stratified model; a personalized "
                       "model has none", span, code=codes.MISPLACED_VARIATION)
            return False
        if not self.stratified:
            self.error(f"{what} chooses graph factors: the model needs `stratify` statements",
                       span, code=codes.MISPLACED_VARIATION)
            return False
        return True

    def factor_column(self, name: ast.Name, what: str) -> int | None:
        """The position of the factor a column names (one of its columns), or None
        (reported)."""
        columns = [c for s in self.stratified for c in s.columns]
        if name.value not in columns:
            self.error(f"{what}: '{name.value}' is not a stratification column"
                       + did_you_mean(name.value, columns), name.span, code=codes.NOT_A_FACTOR)
            return None
        return next(i for i, s in enumerate(self.stratified) if name.value in s.columns)

    def factors_named(self, names: tuple[ast.Name, ...], what: str) -> list[int] | None:
        """The factors a list of columns names, each once; None when one is not (reported)."""
        found: dict[int, ast.Name] = {}
        ok = True
        for name in names:
            at = self.factor_column(name, what)
            if at is None:
                ok = False
            elif at in found:
                self.error(f"{what}: '{name.value}' names factor "
                           f"{target_text(self.stratified[at].columns)} again (first as "
                           f"'{found[at].value}')", name.span, code=codes.COLUMN_TWICE)
                ok = False
            else:
                found[at] = name
        return list(found) if ok else None

    def vary(self, written: ast.Variation | None) -> tuple[ir.VaryOver, ...] | bool | None:
        """``by …`` / ``shared``: the factors a term varies over; None: every factor (not
        written); False: refused (reported)."""
        if written is None:
            return None
        what = "shared" if not written.factors else "by"
        if not self.stratified_place(f"`{what}`", written.span):
            return False
        if self.factors_named(tuple(f.column for f in written.factors), "by") is None:
            return False
        out = []
        for factor in written.factors:
            weight = None
            if factor.weight is not None:
                weight = self.hyper(factor.weight, "a feature's graph weight")
                if weight is None:
                    return False
            out.append(ir.VaryOver(factor.column.value, weight, factor.span))
        return tuple(out)

    def named_vary(self, vary: tuple[ir.VaryOver, ...] | None, text: str
                   ) -> tuple[ir.VaryOver, ...] | None:
        """Each own weight named ``stratify.<columns>[<term>]``."""
        if vary is None:
            return None
        return tuple(dataclasses.replace(v, hyper_name=self.stratified[
            next(i for i, s in enumerate(self.stratified) if v.column in s.columns)
        ].hyper_name + f"[{text}]") for v in vary)

    def interactions(self, stmts: list[ast.InteractStmt]) -> tuple[ir.Interaction, ...]:
        """``interact a * b weight w``: distinct factors, a weight (default 1)."""
        out: list[ir.Interaction] = []
        seen: dict[frozenset[int], Span] = {}
        for stmt in stmts:
            if not self.stratified_place("`interact`", stmt.span):
                continue
            opts = self.options(stmt.options, ("weight",), "interact")
            weight = (self.hyper(opts["weight"].value, "interaction weight") if "weight" in opts
                      else ir.Hyper.of(1.0))
            factors = self.factors_named(stmt.columns, "interact")
            if factors is None or weight is None:
                continue
            key = frozenset(factors)
            if key in seen:
                self.error(f"this interaction of the same factors is already declared on line "
                           f"{seen[key].line}", stmt.span, code=codes.DUPLICATE_STATEMENT)
                continue
            seen[key] = stmt.span
            out.append(ir.Interaction(tuple(c.value for c in stmt.columns), weight, stmt.span,
                                      tuple(c.span for c in stmt.columns)))
        return tuple(out)

    def features(self, stmt: ast.FeaturesStmt | None,
                 loss: LossEntry | None) -> tuple[ir.Term, ...]:
        """The terms, '*' expanded (``a * b`` is ``a, b, a:b``)."""
        if stmt is None:
            return ()
        terms: list[ir.Term] = []
        seen: dict[frozenset, str] = {}
        for written in stmt.terms:
            # (a clause refused leaves the term as if without it: no cascade of errors)
            where = self.where(written.where)
            vary = self.vary(written.vary)
            vary = None if vary is False else vary
            vary_span = written.vary.span if written.vary is not None else None
            products: list[tuple[ir.Factor, ...]] = []
            for product in written.products:
                factors: tuple[ir.Factor | None, ...] = tuple(self.factor(v)
                                                              for v in product.factors)
                if len(factors) > 1 and any(isinstance(f, ir.Column) and f.name == "intercept"
                                            for f in factors):
                    self.error("intercept in a product is the product without it: leave it "
                               "out", product.span, code=codes.MALFORMED_FEATURE)
                    factors = (None,)
                valid = tuple(f for f in factors if f is not None)
                if len(valid) == len(factors):
                    products.append(valid)
            if len(products) != len(written.products):  # a product was not valid
                continue
            for size in range(1, len(products) + 1):
                for chosen in itertools.combinations(products, size):
                    term = ir.Term(tuple(f for factors in chosen for f in factors), written.span,
                                   where)
                    text = term_text(term, self.vocabulary.transforms)
                    if isinstance(vary, tuple):
                        term = dataclasses.replace(term, vary=self.named_vary(vary, text),
                                                   vary_span=vary_span)
                    key = frozenset(factor_text(f, self.vocabulary.transforms)
                                    for f in term.factors)
                    if key in seen:
                        if size == len(products):  # as written (a '*' repeating an earlier
                            self.error(f"duplicate feature '{text}'", written.span,
                                       code=codes.COLUMN_TWICE)  # term
                        continue  # of its own adds nothing)
                    seen[key] = text
                    terms.append(term)
        if loss is not None and loss.features == "forbidden":
            twin = loss.with_features
            hint = f"for a model with features use '{twin}'" if twin else None
            self.error(f"loss '{loss.name}' is a distribution estimate and takes no features",
                       stmt.span, hint, code=codes.NOT_ACCEPTED)
        return tuple(terms)

    def missing(self, stmt: ast.MissingStmt | None) -> str:
        if stmt is None:
            return "error"
        policy = stmt.policy.value
        if policy not in MISSING_POLICIES:
            self.error(f"unknown missing-value policy '{policy}'"
                       + did_you_mean(policy, MISSING_POLICIES), stmt.policy.span,
                       code=codes.UNKNOWN_MISSING_POLICY)
            return "error"
        return policy

    def excludable(self, rows: tuple[str, ...], features: tuple[ir.Term, ...],
                   name: str) -> bool:
        """Does ``name`` name parameter rows: a row, a feature term, or a categorical
        factor (``region`` or one of its levels ``region[T.north]``)?"""
        if name in rows:
            return True
        transforms = self.vocabulary.transforms
        for term in features:
            if name == term_text(term, transforms):
                return True
            for f in term.factors:
                if self.categorical(f):
                    inner = factor_text(f.arg, transforms)
                    if name == inner or (name.startswith(inner + "[") and name.endswith("]")):
                        return True
        return False

    def regularizers(self, stmts: list[ast.RegularizeStmt], loss: LossEntry | None,
                     rows: tuple[str, ...], features: tuple[ir.Term, ...]
                     ) -> tuple[ir.RegTerm, ...]:
        terms: list[ir.RegTerm] = []
        for stmt in stmts:
            where = self.where(stmt.where)
            if stmt.where is not None and where is None:
                continue
            opts = self.options(stmt.options, ("exclude",), "regularize")
            if "exclude" in opts:
                exclude = self.names(opts["exclude"].value, "exclude") or ()
                for col in exclude:
                    if rows and not self.excludable(rows, features, col):
                        self.error(f"exclude: '{col}' is not a parameter row of this model"
                                   + did_you_mean(col, rows), opts["exclude"].value.span,
                                   code=codes.NOT_A_PARAMETER_ROW)
            else:
                exclude = loss.default_exclude(rows) if loss else ()
            for term in stmt.terms:
                entry, ref = self.kind(self.vocabulary.regularizers, term.call)
                if entry is None or ref is None:  # (both None, or neither)
                    continue
                weight = None
                if entry.is_constraint:
                    if term.weight is not None:
                        self.error(f"'{entry.name}' is a constraint and takes no weight",
                                   term.weight.span, code=codes.NOT_ACCEPTED)
                else:
                    weight = (self.hyper(term.weight, f"weight of '{entry.name}'")
                              if term.weight is not None else ir.Hyper.of(1.0))
                    if weight is None:
                        continue
                if loss is not None and (problem := entry.unsupported_with(loss)):
                    self.error(problem, term.call.span, code=codes.INVALID_VALUE)
                if problem := entry.invalid(ref.p):
                    self.error(f"{entry.name}: {problem}", term.call.span, code=codes.INVALID_VALUE)
                terms.append(ir.RegTerm(ref, weight, tuple(exclude), term.span, where=where))
        return tuple(terms)

    def strata(self, stmts: list[ast.StratifyStmt]) -> tuple[ir.Stratification, ...]:
        out: list[ir.Stratification] = []
        seen: dict[str, Span] = {}
        for stmt in stmts:
            cols = stmt.target.columns
            self.once(cols, seen, "is stratified twice")
            entry, ref = self.kind(self.vocabulary.graphs, stmt.graph)
            opts = self.options(stmt.options, ("weight", "nodes"), "stratify")
            weight = (self.hyper(opts["weight"].value, "graph weight") if "weight" in opts
                      else ir.Hyper.of(1.0))
            if entry is None or ref is None or weight is None:
                continue
            if len(cols) > 1 and not entry.multi_column:
                self.error(f"graph '{entry.name}' takes one column; write one stratify statement "
                           "per column (their product is taken), or use 'grid'", stmt.target.span,
                           code=codes.ONE_COLUMN_ONLY)
                continue
            nodes = None
            if "nodes" in opts:
                nodes = self.declared_nodes(opts["nodes"].value, len(cols))
                if nodes is None:
                    continue
                sizes = [len(n.labels()) if isinstance(n, ir.IntRange) else len(n) for n in nodes]
                if problem := limits.factor_too_large(entry.name, sizes, entry.edge_count(sizes)):
                    self.error(problem, stmt.graph.span, code=codes.TOO_LARGE)
                    continue
            if self.base is not None:  # (None: files are not looked for)
                for name in entry.files(ref.p):
                    if problem := unopenable(self.base / name):
                        self.error(f"graph file '{shown(name)}' {problem} "
                                   f"(looked in {shown(self.base)})",
                                   stmt.graph.args[0].value.span if stmt.graph.args
                                   else stmt.graph.span, code=codes.GRAPH_FILE)
            out.append(ir.Stratification(tuple(c.value for c in cols), ref, weight, nodes,
                                         stmt.span, tuple(c.span for c in cols)))
        return tuple(out)

    def declared_nodes(self, value: ast.Value, n_columns: int
                       ) -> tuple[ir.NodeSpec, ...] | None:
        if n_columns == 1:
            if isinstance(value, ast.TupleValue):
                self.error("one column takes one node list or range", value.span,
                           code=codes.MALFORMED_NODES)
                return None
            spec = self.node_spec(value)
            return None if spec is None else (spec,)
        if not isinstance(value, ast.TupleValue) or len(value.items) != n_columns:
            self.error(f"nodes of {n_columns} columns take a tuple of {n_columns} ranges or lists, "
                       "e.g. (0..19, 0..19)", value.span, code=codes.MALFORMED_NODES)
            return None
        specs = tuple(self.node_spec(v) for v in value.items)
        valid = tuple(s for s in specs if s is not None)
        return None if len(valid) != len(specs) else valid

    def personalize(self, stmt: ast.PersonalizeStmt | None,
                    distance_stmts: list[ast.DistanceStmt],
                    strata: tuple[ir.Stratification, ...], loss: LossEntry | None,
                    resp: ir.Response | None, features: tuple[ir.Term, ...],
                    regs: tuple[ir.RegTerm, ...]) -> ir.Personalize | None:
        if stmt is None:
            for d in distance_stmts:
                self.error("'distance' belongs to a personalized model: add a 'personalize' "
                           "statement", d.span, code=codes.MIXED_MODEL)
            return None
        if strata:
            self.error("a model is either stratified or personalized, not both", stmt.keyword,
                       code=codes.MIXED_MODEL)
        losses, regularizers = self.vocabulary.losses, self.vocabulary.regularizers
        refusal = None if loss is None else loss.personalized_refusal
        if loss is not None and refusal is not None:
            allowed = [n for n in losses if losses[n].personalizable]
            self.error(f"personalized models cannot take the loss '{loss.name}': {refusal}; "
                       f"they take {', '.join(repr(x) for x in allowed)}",
                       resp.loss.span if resp else None, code=codes.MIXED_MODEL)
        if resp is not None and len(resp.columns) > 1:  # θ_i gives one linear predictor
            self.error(f"a personalized model has one response column (each sample's θ gives "
                       f"one linear predictor); got {len(resp.columns)}",
                       resp.column_spans[1] if resp.column_spans else resp.span,
                       code=codes.MIXED_MODEL)
        if not features:
            self.error("a personalized model needs features", stmt.keyword, code=codes.MIXED_MODEL)
        for term in regs:
            if not regularizers[term.kind.name].personalizable:
                allowed = [n for n in regularizers if regularizers[n].personalizable]
                self.error(f"personalized models support the regularizers "
                           f"{', '.join(allowed)}; got '{term.kind.name}'", term.kind.span,
                           code=codes.MIXED_MODEL)
        opts = self.options(stmt.options, PERSONALIZE_OPTIONS.names(), "personalize")
        values: list[tuple[str, Any]] = []
        for param in PERSONALIZE_OPTIONS:
            key = param.name
            if key not in opts:
                if param.required:
                    self.error(f"personalize needs '{key}' ({param.doc})", stmt.keyword,
                               code=codes.MISSING_ARGUMENT)
                    continue
                value = ir.Hyper.of(param.default) if param.sweep else param.default
            elif param.sweep:
                value = self.hyper(opts[key].value, key)
                if value is None:
                    continue
            else:
                value, problem = from_spec(param, opts[key].value)
                if problem:
                    self.error(problem, opts[key].value.span, code=codes.INVALID_VALUE)
                    continue
            values.append((key, value))
        distances = []
        seen: dict[str, Span] = {}
        for d in distance_stmts:
            cols = d.target.columns
            self.once(cols, seen, "has two distances")
            self.options(d.options, (), "distance")
            entry, ref = self.kind(self.vocabulary.distances, d.metric)
            if entry is None or ref is None:  # (both None, or neither)
                continue
            if len(cols) > 1 and entry.arity == "one":
                self.error(f"distance '{entry.name}' takes one column; use 'euclidean' for a group",
                           d.target.span, code=codes.ONE_COLUMN_ONLY)
                continue
            distances.append(ir.Distance(tuple(c.value for c in cols), ref, d.span,
                                         tuple(c.span for c in cols)))
        if not distance_stmts:
            self.error("personalize needs at least one 'distance COLUMN ~ METRIC' statement",
                       stmt.keyword, code=codes.MIXED_MODEL)
        return ir.Personalize(tuple(values), tuple(distances), stmt.span)

    def solver(self, stmt: ast.SolverStmt | None, personalized: bool) -> ir.Solver | None:
        if stmt is None:
            return None
        backend = self.vocabulary.backends.lookup(stmt.backend.value, stmt.backend.span, self.out)
        if backend is None:
            return None
        kind = "personalized" if personalized else "stratified"
        if backend.family != kind:
            self.error(f"backend '{backend.name}' cannot fit a {kind} model", stmt.backend.span,
                       code=codes.BACKEND_CANNOT_FIT)
        select = None
        own = tuple(o for o in stmt.options if o.name.value != SELECT_OPTION)
        if len(own) < len(stmt.options) - 1:
            twice = [o for o in stmt.options if o.name.value == SELECT_OPTION][1]
            self.error(f"option '{SELECT_OPTION}' given twice", twice.name.span,
                       code=codes.OPTION_TWICE)
        elif len(own) < len(stmt.options):
            select = select_method(next(o for o in stmt.options
                                        if o.name.value == SELECT_OPTION), self.out)
        opts = self.options(own, backend.options.names(), f"backend '{backend.name}'")
        values = []
        for p in backend.options:
            if p.name in opts:
                value, problem = from_spec(p, opts[p.name].value)
                if problem:
                    self.error(problem, opts[p.name].value.span, code=codes.INVALID_VALUE)
                    continue
                values.append((p.name, value))
        return ir.Solver(backend.name, tuple(values), stmt.span, select)


def check(spec: ast.SpecTree, vocabulary: Vocabulary, base: Path | None = None,
          prior: tuple[Diagnostic, ...] = ()) -> ir.CheckedModel:
    """Checks a parsed spec against a vocabulary of kinds; raises :class:`SpecError`
    listing every problem, sorted. ``base``: where the spec's files are looked for (None:
    they are not checked); ``prior``: the parser's diagnostics."""
    checker = Checker(spec, base, vocabulary)
    model = checker.run()
    if prior:
        # syntax errors removed or masked text: drop complaints about what is now missing
        # and about the stand-in at a place already reported
        reported = {(d.span.line, d.span.column) for d in prior if d.span is not None}
        checker.out.diagnostics = [
            d for d in checker.out.diagnostics
            if d.span is not None and (d.span.line, d.span.column) not in reported]
    checker.out.diagnostics[:0] = prior
    checker.out.raise_if_any()
    assert model is not None
    return model
