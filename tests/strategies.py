"""Hypothesis strategies shared by the tests: random checked models (IR) with every
registered kind drawn with parameters from its own declarations."""

from __future__ import annotations

import dataclasses
import math

from hypothesis import assume
from hypothesis import strategies as st

from stratlang.backends import BACKENDS
from stratlang.data.features import factor_text, term_text
from stratlang.kinds import DISTANCES, GRAPHS, LOSSES, REGULARIZERS, TRANSFORMS
from stratlang.language import ir
from stratlang.language.params import Param
from stratlang.language.personalize import PERSONALIZE_OPTIONS
from stratlang.language.policies import MISSING_POLICIES

KEYWORDS = ["model", "data", "response", "features", "weight", "nodes", "exclude", "distance"]
names = st.one_of(st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True), st.sampled_from(KEYWORDS))
weights = st.floats(0, 1e6, allow_nan=False, allow_infinity=False)
positive = st.floats(1e-3, 1e3, allow_nan=False)
FILES = ["g.csv", "dir/with space.csv", 'q"uote.csv']

hypers = st.one_of(
    weights.map(ir.Hyper.of),
    st.lists(weights, min_size=1, max_size=4).map(lambda v: ir.Hyper("set", tuple(v))),
    st.tuples(positive, positive, st.integers(2, 6)).map(
        lambda t: ir.Hyper("logspace", (t[0], t[1], float(t[2])))),
    st.tuples(weights, weights, st.integers(2, 6)).map(
        lambda t: ir.Hyper("linspace", (t[0], t[1], float(t[2])))),
)


def values_of(param: Param) -> st.SearchStrategy:
    """Values a parameter accepts, from its declaration (type and range)."""
    bounds = getattr(param.check, "bounds", None)
    low, high, closed = bounds if bounds else (None, None, "[]")
    if param.type == "int":
        lo = -50 if low is None else int(low) + (closed[0] == "(")
        return st.integers(lo, 50 if high is None else int(high) - (closed[1] == ")"))
    if param.type == "number":
        return st.floats(-1e3 if low is None else low, 1e3 if high is None else high,
                         exclude_min=closed[0] == "(" and low is not None,
                         exclude_max=closed[1] == ")" and high is not None, allow_nan=False)
    if param.type == "node":
        return st.one_of(st.none(), st.integers(0, 9), names)
    if param.type == "string":
        return st.sampled_from(FILES)
    if param.type == "bool":
        return st.booleans()
    raise AssertionError(f"no strategy for a parameter of type {param.type}")


@st.composite
def kind(draw, registry, name: str) -> ir.KindRef:
    """A call of a registered kind: each parameter drawn, or left at its default."""
    entry = registry[name]
    params = {p.name: draw(values_of(p)) if p.required or draw(st.booleans()) else p.default
              for p in entry.params}
    problems = [p.check(params[p.name]) for p in entry.params
                if p.check is not None and params[p.name] is not None]
    assume(not any(problems) and getattr(entry, "invalid", lambda p: None)(params) is None)
    return ir.KindRef(name, tuple(params.items()))


@st.composite
def factors(draw, numeric: bool = False, intercept: bool = True) -> ir.Factor:
    """A column, or a transform of one (a numeric transform may wrap another)."""
    column = ir.Column(draw(st.one_of(names, st.just("intercept"))) if intercept
                       else draw(names))
    if draw(st.booleans()):
        return column
    plain = [n for n in TRANSFORMS.names() if not TRANSFORMS[n].categorical]
    name = draw(st.sampled_from(plain if numeric else TRANSFORMS.names()))
    inner: ir.Factor = column
    if draw(st.booleans()):
        inner = ir.Transform(draw(kind(TRANSFORMS, draw(st.sampled_from(plain)))), column)
    return ir.Transform(draw(kind(TRANSFORMS, name)), inner)


@st.composite
def feature_terms(draw) -> tuple[ir.Term, ...]:
    """Terms of one or two factors, no two with the same set of factors."""
    terms, seen = [], set()
    for _ in range(draw(st.integers(0, 4))):
        size = draw(st.integers(1, 2))  # (intercept in a product is refused)
        chosen = tuple(draw(factors(intercept=size == 1)) for _ in range(size))
        key = frozenset(factor_text(f) for f in chosen)
        if len(key) < len(chosen) or key in seen:
            continue
        seen.add(key)
        terms.append(ir.Term(chosen))
    return tuple(terms)


@st.composite
def node_specs(draw, count: int):
    specs = []
    for _ in range(count):
        if draw(st.integers(0, 2)) == 0:
            start = draw(st.integers(-50, 2000))
            step = draw(st.sampled_from([1, 2, 4]))
            specs.append(ir.IntRange(start, start + step * draw(st.integers(0, 20)), step))
        else:
            labels = draw(st.lists(st.one_of(st.integers(-99, 99), names,
                                             st.text("ab c\"\\", min_size=1, max_size=4)),
                                   min_size=1, max_size=5, unique=True))
            specs.append(tuple(labels))
    return tuple(specs)


@st.composite
def stratifications(draw, used: set[str]):
    out = []
    for _ in range(draw(st.integers(0, 3))):
        graph = draw(st.sampled_from(GRAPHS.names()))
        width = draw(st.integers(1, 3)) if GRAPHS[graph].multi_column else 1
        cols = draw(st.lists(names.filter(lambda n: n not in used), min_size=width,
                             max_size=width, unique=True))
        used.update(cols)
        nodes = draw(st.one_of(st.none(), node_specs(len(cols))))
        out.append(ir.Stratification(tuple(cols), draw(kind(GRAPHS, graph)), draw(hypers),
                                     nodes))
    return tuple(out)


def wheres(columns: list[str]) -> st.SearchStrategy:
    """`where` clauses: one to three conditions on these columns."""
    label = st.one_of(st.integers(-5, 50), names, st.sampled_from(["a b", "é", "x\"y"]))
    condition = st.one_of(
        st.builds(lambda c, v, neg: ir.Condition(c, (v,), neg), st.sampled_from(columns),
                  label, st.booleans()),
        st.builds(lambda c, vs: ir.Condition(c, tuple(vs)), st.sampled_from(columns),
                  st.lists(label, min_size=2, max_size=4, unique_by=str)))
    return st.lists(condition, min_size=1, max_size=3).map(lambda cs: ir.Where(tuple(cs)))


@st.composite
def models(draw):
    loss_name = draw(st.sampled_from(LOSSES.names()))
    loss = LOSSES[loss_name]
    n_resp = draw(st.integers(1, 3)) if loss.multi_column else 1
    response = tuple(draw(st.lists(names, min_size=n_resp, max_size=n_resp, unique=True)))
    features: tuple[ir.Term, ...] = ()
    if loss.features != "forbidden":
        features = draw(feature_terms())
    rows = loss.row_names(tuple(term_text(t) for t in features), response)
    offset = (draw(factors(numeric=True)) if loss.offset_problem is None and draw(st.booleans())
              else None)
    allowed = [n for n in REGULARIZERS.names() if REGULARIZERS[n].unsupported_with(loss) is None]
    regs = []
    for _ in range(draw(st.integers(0, 3))):
        reg = draw(st.sampled_from(allowed))
        exclude = draw(st.one_of(st.just(loss.default_exclude(rows)),
                                 st.lists(st.sampled_from(rows), unique=True).map(tuple)))
        weight = None if REGULARIZERS[reg].is_constraint else draw(hypers)
        regs.append(ir.RegTerm(draw(kind(REGULARIZERS, reg)), weight, exclude))
    used = set(response) | {c for t in features for c in t.columns}
    personalize = None
    strata: tuple = ()
    if loss.personalizable and features and len(response) == 1 and draw(st.booleans()):
        regs = [r for r in regs if REGULARIZERS[r.kind.name].personalizable]
        options = [(p.name, draw(hypers) if p.sweep else draw(values_of(p)))
                   for p in PERSONALIZE_OPTIONS]
        cols = draw(st.lists(names.filter(lambda n: n not in used), min_size=1, max_size=3,
                             unique=True))
        distances = []
        for c in cols:
            metric = draw(st.sampled_from([n for n in DISTANCES.names()
                                           if DISTANCES[n].arity == "one"]))
            distances.append(ir.Distance((c,), draw(kind(DISTANCES, metric))))
        personalize = ir.Personalize(tuple(options), tuple(distances))
    else:
        strata = draw(stratifications(used))
    solver = None
    family = "personalized" if personalize is not None else "stratified"
    backends = [n for n in BACKENDS.names() if BACKENDS[n].family == family]
    if draw(st.booleans()):
        backend = BACKENDS[draw(st.sampled_from(backends))]
        opts = []
        for p in backend.options:
            if draw(st.booleans()) and p.type != "name":
                opts.append((p.name, draw(values_of(p).filter(
                    lambda v, p=p: v is not None and (p.check is None or p.check(v) is None)))))
        solver = ir.Solver(backend.name, tuple(opts))
    data = draw(st.one_of(st.none(), st.sampled_from(["d.csv", "a b/c.csv"])))
    overrides: tuple[ir.Override, ...] = ()
    columns = [c for s in strata for c in s.columns]
    if columns:  # `where` clauses on the stratification columns
        clause = wheres(columns)
        regs = [dataclasses.replace(r, where=draw(st.one_of(st.none(), clause))) for r in regs]
        if draw(st.booleans()):  # (a basis model has no feature with where)
            features = tuple(dataclasses.replace(t, where=draw(st.one_of(st.none(), clause)))
                             for t in features)
        overrides = tuple(ir.Override(draw(kind(LOSSES, loss_name)), draw(clause))
                          for _ in range(draw(st.integers(0, 2) if loss.params
                                              else st.just(0))))
    has_feature_where = any(t.where is not None for t in features)
    basis = (draw(st.one_of(st.none(), st.integers(1, _most_eigenvectors(strata))))
             if strata and not has_feature_where else None)
    interactions: tuple[ir.Interaction, ...] = ()
    if strata and basis is None:  # (a basis model has neither)
        features = tuple(dataclasses.replace(t, vary=draw(variations(strata, term_text(t))))
                         for t in features)
        if len(strata) > 1 and draw(st.booleans()):
            joined = draw(st.lists(st.sampled_from(strata), min_size=2, max_size=len(strata),
                                   unique_by=lambda s: s.columns))
            interactions = (ir.Interaction(tuple(draw(st.sampled_from(s.columns))
                                                 for s in joined), draw(hypers)),)
    return ir.CheckedModel(draw(names), ir.Response(response, draw(kind(LOSSES, loss_name)),
                                             offset=offset, overrides=overrides), features,
                    tuple(regs), strata, personalize, solver, data,
                    weights=draw(st.one_of(st.none(), names)),
                    missing=draw(st.sampled_from(MISSING_POLICIES)), basis=basis,
                    interactions=interactions)


@st.composite
def variations(draw, strata: tuple[ir.Stratification, ...], text: str):
    """None (every factor), () (shared), or some factors, each with or without its own
    weight (named as the checker names it)."""
    if draw(st.booleans()):
        return None
    chosen = draw(st.lists(st.sampled_from(strata), max_size=len(strata),
                           unique_by=lambda s: s.columns))
    return tuple(ir.VaryOver(draw(st.sampled_from(s.columns)),
                             draw(st.one_of(st.none(), hypers)),
                             hyper_name=f"{s.hyper_name}[{text}]") for s in chosen)


def _most_eigenvectors(strata: tuple[ir.Stratification, ...]) -> int:
    """The largest basis the checker takes: K when every factor declares its nodes."""
    if any(s.nodes is None for s in strata):
        return 500
    return min(500, math.prod(len(n.labels()) if isinstance(n, ir.IntRange) else len(n)
                              for s in strata for n in s.nodes or ()))
