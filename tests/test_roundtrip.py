"""``check(parse(to_text(model))) == model`` over randomly generated models."""

from __future__ import annotations

import cvxpy as cp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratlang.kinds import LOSSES
from stratlang.language import ir
from stratlang.language.personalize import PERSONALIZE_OPTIONS
from stratlang.spec import compile_spec, to_text

KEYWORDS = ["model", "data", "response", "features", "weight", "nodes", "exclude", "distance"]
names = st.one_of(st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True), st.sampled_from(KEYWORDS))
weights = st.floats(0, 1e6, allow_nan=False, allow_infinity=False)
positive = st.floats(1e-3, 1e3, allow_nan=False)

hypers = st.one_of(
    weights.map(ir.Hyper.of),
    st.lists(weights, min_size=1, max_size=4).map(lambda v: ir.Hyper("set", tuple(v))),
    st.tuples(positive, positive, st.integers(2, 6)).map(
        lambda t: ir.Hyper("logspace", (t[0], t[1], float(t[2])))),
    st.tuples(weights, weights, st.integers(2, 6)).map(
        lambda t: ir.Hyper("linspace", (t[0], t[1], float(t[2])))),
)

LOSS_PARAMS = {
    "huber": st.fixed_dictionaries({"M": positive}),
    "quantile": st.fixed_dictionaries({"tau": st.floats(0.01, 0.99)}),
    "bernoulli": st.fixed_dictionaries({"eps": st.floats(0, 0.4)}),
    "poisson": st.fixed_dictionaries({"eps": st.floats(0, 0.4)}),
    "exponential": st.fixed_dictionaries({"eps": st.floats(0, 0.4)}),
    "gaussian": st.fixed_dictionaries({"eps": st.floats(0, 10)}),
}


def kind(name: str, params: dict) -> ir.KindRef:
    return ir.KindRef(name, tuple(params.items()))


@st.composite
def node_specs(draw, count: int):
    specs = []
    for _ in range(count):
        choice = draw(st.integers(0, 2))
        if choice == 0:
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
        graph = draw(st.sampled_from(["path", "cycle", "complete", "star", "grid", "edges", "tree"]))
        width = draw(st.integers(1, 3)) if graph == "grid" else 1
        cols = draw(st.lists(names.filter(lambda n: n not in used), min_size=width,
                             max_size=width, unique=True))
        used.update(cols)
        params = {}
        if graph == "star":
            params = {"center": draw(st.one_of(st.none(), st.integers(0, 9), names))}
        if graph in ("edges", "tree"):
            params = {"file": draw(st.sampled_from(["g.csv", "dir/with space.csv", 'q"uote.csv']))}
        nodes = draw(st.one_of(st.none(), node_specs(len(cols))))
        out.append(ir.Stratification(tuple(cols), kind(graph, params), draw(hypers), nodes))
    return tuple(out)


@st.composite
def models(draw):
    loss_name = draw(st.sampled_from(LOSSES.names()))
    loss = LOSSES[loss_name]
    params = draw(LOSS_PARAMS.get(loss_name, st.just({})))
    n_resp = draw(st.integers(1, 3)) if loss.multi_column else 1
    response = tuple(draw(st.lists(names, min_size=n_resp, max_size=n_resp, unique=True)))
    features: tuple[str, ...] = ()
    if loss.features != "forbidden":
        features = tuple(draw(st.lists(st.one_of(names, st.just("intercept")), max_size=4,
                                       unique=True)))
    rows = loss.row_names(features, response)
    regs = []
    for _ in range(draw(st.integers(0, 3))):
        reg = draw(st.sampled_from(["zero", "sum_squares", "l1", "l2", "elastic_net", "nuclear",
                                    "nonnegative", "box"] + (["trace"] if loss_name == "gaussian"
                                                             else [])))
        p = {}
        if reg == "elastic_net":
            p = {"ratio": draw(st.floats(0, 1))}
        if reg == "box":
            lo = draw(st.floats(-10, 10))
            p = {"lower": lo, "upper": lo + draw(st.floats(0, 10))}
        constraint = reg in ("nonnegative", "box")
        exclude = draw(st.one_of(st.just(loss.default_exclude(rows)),
                                 st.lists(st.sampled_from(rows), unique=True).map(tuple)))
        regs.append(ir.RegTerm(kind(reg, p), None if constraint else draw(hypers), exclude))
    used = set(response) | set(features)
    personalize = None
    strata: tuple = ()
    if loss_name in ("squared", "logistic") and features and draw(st.booleans()):
        regs = [r for r in regs if r.kind.name in ("zero", "l1", "l2", "sum_squares", "elastic_net")]
        options = []
        for param in PERSONALIZE_OPTIONS:
            key = param.name
            if param.sweep:
                value = draw(hypers)
            elif param.type == "int":
                value = draw(st.integers(1, 50))
            elif key == "decay":
                value = draw(st.floats(0.01, 1))
            else:
                value = draw(positive)
            options.append((key, value))
        cols = draw(st.lists(names.filter(lambda n: n not in used), min_size=1, max_size=3,
                             unique=True))
        distances = tuple(ir.Distance((c,), kind(draw(st.sampled_from(["abs", "discrete"])), {}))
                          for c in cols)
        personalize = ir.Personalize(tuple(options), distances)
    else:
        strata = draw(stratifications(used))
    solver = None
    if personalize is None and draw(st.booleans()):
        opts = []
        if draw(st.booleans()):
            opts.append(("method", draw(st.sampled_from([s.lower() for s in cp.installed_solvers()]))))
        if draw(st.booleans()):
            opts.append(("verbose", draw(st.booleans())))
        solver = ir.Solver("cvxpy", tuple(opts))
    data = draw(st.one_of(st.none(), st.sampled_from(["d.csv", "a b/c.csv"])))
    return ir.Model(draw(names), ir.Response(response, kind(loss_name, params)), features,
                    tuple(regs), strata, personalize, solver, data)


def with_defaults(model: ir.Model) -> ir.Model:
    """Loss params as the checker stores them: every parameter, defaults filled."""
    loss = LOSSES[model.response.loss.name]
    given_ = model.response.loss.p
    params = tuple((p.name, given_.get(p.name, p.default)) for p in loss.params)
    return ir.Model(model.name, ir.Response(model.response.columns,
                                            ir.KindRef(model.response.loss.name, params)),
                    model.features, model.regularizers, model.strata, model.personalize,
                    model.solver, model.data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models())
def test_print_then_parse_is_identity(model):
    model = with_defaults(model)
    text = to_text(model)
    again = compile_spec(text, "<roundtrip>", check_files=False)
    assert again == model, text
    assert to_text(again) == text
