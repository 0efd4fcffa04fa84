"""No silent wrong graph: strata no record and no regularizer determine, and nodes inferred
from the data that a path or cycle joins across a gap or a wrap."""

from __future__ import annotations

import itertools
import warnings

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stratlang
from stratlang.kinds.graphs import GRAPHS
from stratlang.solvers.graphs import _graph, product_components

ISLAND = """response y ~ poisson_regression
features x, intercept
regularize 0.1 * sum_squares
stratify g ~ path weight 0 nodes 0..3
"""


@pytest.fixture
def counts(rng) -> pd.DataFrame:
    n = 300  # strata 0, 1, 2 have records; stratum 3 has none
    frame = pd.DataFrame({"g": rng.integers(0, 3, n), "x": rng.normal(size=n)})
    frame["y"] = rng.poisson(np.exp(1.5 + 0.3 * frame.x))
    return frame


def fit_quietly(model, frame, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = model.fit(frame, **kw)
    return fitted, [w for w in caught if issubclass(w.category, stratlang.DataWarning)]


@pytest.mark.parametrize("backend", ["admm", "cvxpy"])
def test_a_stratum_nothing_determines_gets_the_mean_and_a_warning(counts, backend):
    fitted, caught = fit_quietly(stratlang.load(ISLAND), counts, backend=backend)
    assert [str(w.message) for w in caught] == [
        "1 stratum (3) has no records, no graph edge to a stratum with records and no "
        "regularizer that determines intercept: any value is optimal there; it gets the "
        "record-weighted mean of the other strata (the common model's choice); declare "
        "their graph edges, or a regularizer on those rows, to decide them otherwise"]
    theta = fitted.theta
    share = counts.g.value_counts().sort_index().to_numpy() / len(counts)
    assert theta.loc[3, "intercept"] == pytest.approx(share @ theta.loc[[0, 1, 2], "intercept"])
    assert theta.loc[3, "x"] == pytest.approx(0.0, abs=1e-6)  # sum_squares decides it: 0
    assert theta.loc[3, "intercept"] == pytest.approx(1.5, abs=0.15)  # not 0 (exp(0) = 1)
    assert fitted.info["islands"] == str(caught[0].message)
    new = pd.DataFrame({"g": [3], "x": [0.0]})
    assert fitted.predict(new)["prediction"].iloc[0] == pytest.approx(np.exp(1.5), rel=0.2)


def test_the_settled_fit_keeps_the_reference_objective(counts):
    """Any value is optimal on an island: the objective is unchanged by the mean."""
    fast, _ = fit_quietly(stratlang.load(ISLAND), counts, backend="admm")
    truth, _ = fit_quietly(stratlang.load(ISLAND), counts, backend="cvxpy")
    assert fast.objective.total == pytest.approx(truth.objective.total, rel=1e-6)


def test_separate_baseline_strata_without_data_are_not_zero(counts):
    model = stratlang.load(ISLAND.replace("weight 0", "weight 5"))
    _, caught = fit_quietly(model, counts)
    assert caught == []  # stratum 3 is joined to 2 by the path: decided by its neighbour
    separate, caught = fit_quietly(model.separate(), counts)
    assert len(caught) == 1 and caught[0].message.args[0].startswith("1 stratum (3) has")
    assert separate.theta.loc[3, "intercept"] > 1.0


def test_a_regularizer_on_every_row_decides_the_island(counts):
    model = stratlang.load(ISLAND.replace("sum_squares", "sum_squares exclude []"))
    fitted, caught = fit_quietly(model, counts)
    assert caught == [] and "islands" not in fitted.info
    assert np.allclose(fitted.theta.loc[3].to_numpy(), 0.0, atol=1e-6)


def test_a_constraint_that_rules_out_the_mean_leaves_the_solvers_value(rng):
    n = 200
    frame = pd.DataFrame({"g": rng.integers(0, 2, n), "x": rng.normal(size=n)})
    frame["y"] = -3 + frame.x + rng.normal(size=n)  # intercepts near −3
    model = stratlang.load("response y ~ squared\nfeatures x, intercept\n"
                           "regularize nonnegative exclude [] where g == 2\n"
                           "stratify g ~ path weight 0 nodes 0..2\n")
    fitted, caught = fit_quietly(model, frame, backend="cvxpy")
    message = str(caught[0].message)
    assert message.startswith("1 stratum (2) has no records")
    assert "a constraint rules out the mean of the others, so θ is the solver's" in message
    assert (fitted.theta.loc[2].to_numpy() >= -1e-6).all()


@pytest.mark.parametrize(("kind", "values", "note"), [
    ("path", [27, 28, 29, 32, 33, 40],
     "the values have gaps, and the path joins 29 to 32, 33 to 40 as neighbours"),
    ("cycle", [27, 28, 29, 30],
     "the cycle joins the last value seen, 30, back to the first, 27: right only if the "
     "data cover the whole period"),
])
def test_inferred_gaps_and_wraps_are_warned_of(rng, kind, values, note):
    frame = pd.DataFrame({"w": rng.choice(values, 300), "x": rng.normal(size=300)})
    frame["y"] = frame.x + rng.normal(size=300)
    spec = f"response y ~ squared\nfeatures x, intercept\nstratify w ~ {kind} weight 1\n"
    _, caught = fit_quietly(stratlang.load(spec), frame)
    assert [str(w.message) for w in caught] == [
        f"stratify w ~ {kind} (line 3): its nodes were inferred from the data, {note}; "
        f"declare them, e.g. `nodes {min(values)}..{max(values)}` with the full range, to "
        "say which values are neighbours"]
    declared = spec.replace("weight 1", f"weight 1 nodes {min(values)}..{max(values)}")
    assert fit_quietly(stratlang.load(declared), frame)[1] == []


def test_paths_over_text_or_gapless_integers_say_nothing(rng):
    frame = pd.DataFrame({"w": rng.choice([1, 2, 3], 90), "s": rng.choice(["a", "c"], 90),
                          "x": rng.normal(size=90)})
    frame["y"] = frame.x + rng.normal(size=90)
    spec = ("response y ~ squared\nfeatures x, intercept\nstratify w ~ path weight 1\n"
            "stratify s ~ path weight 1\n")
    assert fit_quietly(stratlang.load(spec), frame)[1] == []


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_every_graph_kind_answers_for_inferred_nodes(name):
    notes = GRAPHS[name].inferred_nodes_notes([1, 2, 5])
    assert isinstance(notes, list) and all(isinstance(n, str) and n for n in notes)


graphs = st.integers(1, 5).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))
                         .filter(lambda e: e[0] != e[1]), max_size=6, unique=True)))


@settings(max_examples=60, deadline=None)
@given(st.lists(graphs, min_size=1, max_size=3), st.data())
def test_product_components_match_networkx(factors, data):
    weights = [data.draw(st.sampled_from([0.0, 1.0])) for _ in factors]
    built = [_graph(n, np.array(edges, dtype=np.int64).reshape(-1, 2)) for n, edges in factors]
    label = product_components(built, weights)
    product = nx.Graph()
    shape = [n for n, _ in factors]
    product.add_nodes_from(range(int(np.prod(shape))))
    for index in itertools.product(*(range(n) for n in shape)):
        here = np.ravel_multi_index(index, shape)
        for axis, ((_, edges), w) in enumerate(zip(factors, weights, strict=True)):
            for a, b in edges if w > 0 else []:
                if index[axis] == a:
                    there = list(index)
                    there[axis] = b
                    product.add_edge(here, np.ravel_multi_index(there, shape))
    for component in nx.connected_components(product):
        assert len({label[i] for i in component}) == 1
    assert len(set(label)) == nx.number_connected_components(product)
