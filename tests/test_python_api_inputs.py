"""Graphs given from Python (networkx, adjacency with labels, edge-list frames, CSV paths)
and specs built and edited in Python: the same models as the text and file ones."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import stratlang
from stratlang.cli import main

from .conftest import write

EDGES = [("a", "b", 2.0), ("b", "c", 0.5), ("b", "d", 1.0), ("d", "a", 1.0)]


@pytest.fixture
def frame(rng) -> pd.DataFrame:
    frame = pd.DataFrame({"s": rng.choice(["a", "b", "c", "d"], 200), "x": rng.normal(size=200)})
    frame["y"] = frame.x * frame.s.map({"a": 1.0, "b": 0.5, "c": -1.0, "d": 0.0})
    frame["y"] += 0.1 * rng.normal(size=200)
    return frame


def graph_forms() -> dict[str, object]:
    graph = nx.Graph()
    graph.add_weighted_edges_from(EDGES)
    labels = ["a", "b", "c", "d"]
    index = {v: i for i, v in enumerate(labels)}
    rows = [index[a] for a, _, _ in EDGES] + [index[b] for _, b, _ in EDGES]
    cols = [index[b] for _, b, _ in EDGES] + [index[a] for a, _, _ in EDGES]
    weights = [w for _, _, w in EDGES] * 2
    adjacency = sp.csr_matrix((weights, (rows, cols)), shape=(4, 4))
    table = pd.DataFrame(EDGES, columns=["from", "to", "weight"])
    return {"networkx": graph, "adjacency": (adjacency, labels),
            "dense adjacency": (adjacency.toarray(), labels), "edge list": table}


SPEC = "response y ~ squared\nfeatures x, intercept\nstratify s ~ given weight 3\n"


@pytest.mark.parametrize("form", sorted(graph_forms()))
def test_every_graph_form_gives_the_edge_file_model(form, frame, tmp_path):
    (tmp_path / "g.csv").write_text("a,b,w\n" + "".join(f"{a},{b},{w}\n" for a, b, w in EDGES))
    from_file = stratlang.load(write(tmp_path, "f.strat",
                                     SPEC.replace("given", 'edges("g.csv")'))).fit(frame)
    supplied = stratlang.load(SPEC, graphs={"s": graph_forms()[form]}).fit(frame)
    assert supplied.objective.total == pytest.approx(from_file.objective.total, rel=1e-9)
    pd.testing.assert_frame_equal(supplied.theta.sort_index(), from_file.theta.sort_index())
    # the same through fit(graphs=…), and the fitted model keeps its graph when saved
    again = stratlang.load(SPEC).fit(frame, graphs={"s": graph_forms()[form]})
    assert again.objective.total == pytest.approx(supplied.objective.total, rel=1e-12)
    loaded = stratlang.load_fitted(again.save(tmp_path / "fit"))
    pd.testing.assert_frame_equal(loaded.predict(frame), again.predict(frame))


def test_graph_from_the_command_line(frame, tmp_path, capsys):
    (tmp_path / "g.csv").write_text("a,b,w\n" + "".join(f"{a},{b},{w}\n" for a, b, w in EDGES))
    frame.to_csv(tmp_path / "d.csv", index=False)
    spec = write(tmp_path, "m.strat", SPEC)
    assert main(["fit", str(spec), "--data", str(tmp_path / "d.csv"),
                 "--graph", f"s={tmp_path / 'g.csv'}"]) == 0
    assert "factor (s): 4 nodes, 4 edges, general" in capsys.readouterr().out
    assert main(["fit", str(spec), "--data", str(tmp_path / "d.csv")]) == 1
    err = capsys.readouterr().err
    assert "m.strat:3:14: error[S511]: the graph of 's' is given from Python: pass graphs={'s': graph}" \
        in err and "--graph s=edges.csv on the command line" in err
    with pytest.raises(SystemExit) as usage:  # a malformed flag: a usage error
        main(["fit", str(spec), "--data", str(tmp_path / "d.csv"), "--graph", "s"])
    assert usage.value.code == 2
    assert "argument --graph: expects COLUMN=FILE, got 's'" in capsys.readouterr().err


@pytest.mark.parametrize(("graphs", "message"), [
    ({"t": nx.path_graph(3)}, "graphs: 't' is not a stratified column of model 'model'; "
                              "expected one of 's'"),
    ({"s": (np.array([[0, 1], [2, 0]]), ["a", "b"])},
     "the adjacency matrix must be symmetric (an undirected graph)"),
    ({"s": (np.eye(3), ["a", "b"])}, "the adjacency matrix is 3 × 3 but 2 labels are given"),
    ({"s": pd.DataFrame({"u": ["a"], "v": ["b"], "w": [-1.0]})},
     "the edge-list DataFrame: weights must be positive numbers (rows 0)"),
    ({"s": 42}, "cannot read a graph from a int: give a networkx graph, (adjacency matrix, "
                "labels), an edge-list DataFrame or a CSV path"),
])
def test_bad_graphs_are_reported(graphs, message, frame):
    with pytest.raises(stratlang.StratlangError) as info:
        stratlang.load(SPEC, graphs=graphs).fit(frame)
    assert message in str(info.value)


def test_a_graph_only_for_a_factor_declared_given(frame):
    with pytest.raises(stratlang.OptionError, match=r"graphs: the spec gives 's' the graph "
                                                    r"'path'; write `stratify s ~ given`"):
        stratlang.load(SPEC.replace("given", "path"), graphs={"s": nx.path_graph(4)})


def test_declared_nodes_fix_the_order_and_may_add_isolated_ones(frame):
    spec = SPEC.replace("weight 3", 'weight 3 nodes ["d", "c", "b", "a", "e"]')
    fitted = stratlang.load(spec, graphs={"s": graph_forms()["networkx"]}).fit(frame)
    assert list(fitted.theta.index) == ["d", "c", "b", "a", "e"]
    with pytest.raises(stratlang.SpecError, match="the graph given for 's' names nodes that are "
                                                  "not declared: 'c'"):
        stratlang.load(SPEC.replace("weight 3", 'weight 3 nodes ["a", "b", "d"]'),
                       graphs={"s": graph_forms()["networkx"]}).fit(frame)


# ---- specs built in Python ----------------------------------------------------------------
def test_a_spec_built_in_python_is_the_written_one(tmp_path):
    written = stratlang.load(
        'model ins\ndata "d.csv"\nresponse claims ~ poisson_regression offset log(holders)\n'
        'features intercept, categorical(district, reference=2), log(age)\nweights w\n'
        'missing drop\nregularize {0.1, 1} * sum_squares exclude [intercept]\n'
        'regularize box(-5, 5) exclude []\n'
        'stratify group ~ path weight 10 nodes ["<1l", "1-1.5l", ">2l"]\n'
        'stratify (a, b) ~ grid weight 2 nodes (0..9, 0..4)\nsolver admm max_iter 200\n')
    built = (stratlang.Spec("ins", data="d.csv")
             .response("claims", "poisson_regression", offset="log(holders)")
             .features("intercept", "categorical(district, reference=2)", "log(age)")
             .weights("w").missing("drop")
             .regularize("sum_squares", [0.1, 1], exclude=["intercept"])
             .regularize("box", None, -5, 5, exclude=[])
             .stratify("group", "path", weight=10, nodes=["<1l", "1-1.5l", ">2l"])
             .stratify(("a", "b"), "grid", weight=2, nodes=(range(10), range(5)))
             .solver("admm", max_iter=200))
    assert built.model() == written
    assert built.text == written.text
    assert stratlang.Spec.from_model(written).text == written.text


def test_editing_a_spec_in_python(tmp_path):
    model = stratlang.load("response y ~ squared\nfeatures x\nstratify s ~ path weight 1\n"
                           "stratify t ~ cycle weight 2\nregularize 0.5 * l1\n")
    edited = (stratlang.Spec.from_model(model).stratify("s", "complete", weight=[1, 10])
              .unstratify("t").regularize("sum_squares", 0.1).features("x", "intercept"))
    assert edited.text == ("model model\nresponse y ~ squared\nfeatures x, intercept\n"
                           "regularize 0.5 * l1 + 0.1 * sum_squares\n"
                           "stratify s ~ complete weight {1, 10}\n")
    with pytest.raises(stratlang.StratlangError, match="the spec has no factor over u"):
        edited.unstratify("u")
    with pytest.raises(stratlang.SpecError) as info:
        edited.stratify("s", "pth").model()
    assert info.value.diagnostics[0].message == "unknown graph 'pth'; did you mean 'path'?"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["path", "cycle", "complete", "star"]),
                          st.floats(0, 100, allow_nan=False)), min_size=0, max_size=3),
       st.sampled_from(["squared", "logistic", "huber(M=2)", "quantile(0.3)"]))
def test_built_specs_round_trip(factors, loss):
    spec = stratlang.Spec("m").response("y", loss.split("(")[0],
                                        **({"M": 2.0} if "M=" in loss else {}),
                                        **({"tau": 0.3} if "0.3" in loss else {}))
    for i, (graph, weight) in enumerate(factors):
        spec.stratify(f"c{i}", graph, weight=weight)
    model = spec.model()
    assert stratlang.Spec.from_model(model).model() == model
    assert stratlang.load(model.text) == model


def test_graph_inputs_a_review_found(frame):
    adjacency = sp.csr_matrix(([1.0, 1.0, 0.0, 0.0], ([0, 1, 1, 2], [1, 0, 2, 1])), shape=(4, 4))
    fitted = stratlang.load(SPEC, graphs={"s": (adjacency, ["a", "b", "c", "d"])}).fit(frame)
    assert fitted.strata.factors[0].graph.n_edges == 1  # a stored zero is no edge
    with pytest.raises(stratlang.SpecError, match="the networkx graph is directed"):
        stratlang.load(SPEC, graphs={"s": nx.DiGraph([("a", "b"), ("b", "a")])}).fit(frame)
    with pytest.raises(stratlang.SpecError, match="an adjacency is given with its node labels"):
        stratlang.load(SPEC, graphs={"s": (adjacency, None)}).fit(frame)
    heavy = nx.Graph()
    heavy.add_edge("a", "b", weight="heavy")
    with pytest.raises(stratlang.SpecError, match="edge weights must be positive numbers"):
        stratlang.load(SPEC, graphs={"s": heavy}).fit(frame)


def test_verify_uses_the_given_graphs(frame):
    result = stratlang.load(SPEC, graphs={"s": graph_forms()["networkx"]}).verify(frame)
    assert result.relative_gap < 1e-6


def test_the_builder_takes_numpy_values_and_keeps_the_spec_directory(rng):
    from .conftest import EXAMPLES

    model = stratlang.load(EXAMPLES / "insurance.strat")
    edited = stratlang.Spec.from_model(model).stratify(
        "age", "path", weight=np.int64(3), nodes=np.array(["<25", "25-29", "30-35", ">35"]))
    assert edited.model().ir.directory == EXAMPLES  # its data file is found as before
    assert edited.model().fit().strata.k == 64
    spec = (stratlang.Spec().response("y", "squared").stratify("t", "star", center=None)
            .stratify("u", "path", nodes=np.arange(3)).regularize("l1", 0.1, exclude="intercept"))
    assert spec.source == ("response y ~ squared\nregularize 0.1 * l1 exclude [intercept]\n"
                           "stratify t ~ star weight 1\nstratify u ~ path weight 1 nodes "
                           "[0, 1, 2]\n")
    for bad in (lambda: stratlang.Spec().response([1, 2], "squared"),
                lambda: stratlang.Spec().features(["a", 1]),
                lambda: stratlang.Spec().stratify("t", "path", weight=None)):
        with pytest.raises(stratlang.StratlangError):
            bad()


# ---- every builder argument validated (issue 20 #14) ----------------------------------
NAME_RULE = "is a name (letters, digits, '_' and '.', not starting with a digit); got "


@pytest.mark.parametrize(("build", "message"), [
    (lambda s: s.response("y", "squared\nweights w"), f"a loss {NAME_RULE}'squared\\nweights w'"),
    (lambda s: s.response("y\nweights w", "squared"), f"a column {NAME_RULE}'y\\nweights w'"),
    (lambda s: s.response("y", "huber", **{"M\nbasis": 2}), f"a parameter {NAME_RULE}'M\\nbasis'"),
    (lambda s: s.regularize("l1\n", 0.1), f"a regularizer {NAME_RULE}'l1\\n'"),
    (lambda s: s.stratify("g", "path\nbasis 3"), f"a graph {NAME_RULE}'path\\nbasis 3'"),
    (lambda s: s.distance("g", "abs basis"), f"a distance {NAME_RULE}'abs basis'"),
    (lambda s: s.weights("w\nbasis 3"), f"the weights column {NAME_RULE}'w\\nbasis 3'"),
    (lambda s: s.missing("drop\n"), f"a missing-value policy {NAME_RULE}'drop\\n'"),
    (lambda s: s.solver("cvxpy\nbasis 3"), f"a backend {NAME_RULE}'cvxpy\\nbasis 3'"),
    (lambda s: s.solver("cvxpy", **{"x y": 1}), f"an option {NAME_RULE}'x y'"),
    (lambda s: s.personalize(**{"rank\n": 1}), f"an option {NAME_RULE}'rank\\n'"),
    (lambda s: s.regularize("l1", where={"g\nh": 1}), f"a where clause's column {NAME_RULE}'g\\nh'"),
    (lambda s: s.features("x\nweights w"), "a feature term 'x\\nweights w' holds U+000A: spec text "
                                           "stays on its statement's line, without control "
                                           "characters"),
    (lambda s: s.features("x\u2028y"), "a feature term 'x\\u2028y' holds U+2028: spec text stays "
                                        "on its statement's line, without control characters"),
    (lambda s: s.features("x # note"), "a feature term 'x # note' holds '#': a comment would "
                                       "hide the rest of the statement"),
    (lambda s: s.features("x \\"), "a feature term 'x \\\\' holds '\\\\': a '\\' would join the "
                                   "statement to the next one"),
    (lambda s: s.response("y", "squared", offset="x\nbasis 3"),
     "an offset 'x\\nbasis 3' holds U+000A: spec text stays on its statement's line, without "
     "control characters"),
    (lambda s: s.regularize("l1", where="g == 1\rbasis 3"),
     "a where clause 'g == 1\\rbasis 3' holds U+000D: spec text stays on its statement's line, "
     "without control characters"),
    (lambda s: s.stratify("g", "path", nodes=[None]), "a node label is a string or a finite "
                                                      "number; got None"),
    (lambda s: s.stratify("g", "path", nodes=[float("nan"), 1]),
     "a node label is a string or a finite number; got nan"),
    (lambda s: s.stratify("g", "path", nodes=[[1, 2]]),
     "a node label is a string or a finite number; got [1, 2]"),
    (lambda s: s.stratify("g", "path", nodes=[True, False]),
     "a node label is a string or a finite number; got True"),
    (lambda s: s.stratify(("g", "h"), "grid", nodes="ab"),
     "nodes of 2 columns are a tuple of 2 ranges or lists; got 'ab'"),
    (lambda s: s.regularize("l1", [[1, 2]]), "[1, 2] (list) has no spec form: give a number, "
                                             "true/false or a string"),
    (lambda s: s.regularize("l1", 1 + 2j), "(1+2j) (complex) has no spec form: give a number, "
                                           "true/false or a string"),
    (lambda s: s.regularize("l1", exclude=[None]),
     "exclude takes parameter row names (strings); got [None]"),
    (lambda s: s.basis(2.5), "basis takes a whole number of eigenvectors; got 2.5"),
    (lambda s: s.data(None), "data is a file's path (a string or a Path); got None"),
    (lambda s: s.data(["a.csv"]), "data is a file's path (a string or a Path); got ['a.csv']"),
])
def test_a_builder_argument_without_a_spec_form_is_refused(build, message):
    spec = stratlang.Spec("m").response("y", "squared")
    before = spec.source
    with pytest.raises(stratlang.StratlangError) as info:
        build(spec)
    assert isinstance(info.value, ValueError)
    assert str(info.value) == message
    assert spec.source == before  # nothing half-added


def test_the_model_name_is_a_name():
    with pytest.raises(ValueError) as info:
        stratlang.Spec("m\nfeatures x")
    assert str(info.value) == f"a model name {NAME_RULE}'m\\nfeatures x'"


def test_quoted_text_in_builder_arguments_may_hold_anything():
    spec = (stratlang.Spec("m").response("y", "squared").features("x", "log(u)")
            .regularize("l1", 0.1, where='g == "a#b\\\\"', exclude=["log(u)"])
            .stratify("g", "path", nodes=["a\nb", 1, 2.5]))
    assert spec.source == ('model m\nresponse y ~ squared\nfeatures x, log(u)\n'
                           'regularize 0.1 * l1 exclude ["log(u)"] where g == "a#b\\\\"\n'
                           'stratify g ~ path weight 1 nodes ["a\\nb", 1, 2.5]\n')
    [strat] = spec.model().ir.strata
    assert strat.nodes == (("a\nb", 1, 2.5),)


@pytest.mark.parametrize(("build", "message"), [  # found by the builder fuzzer
    (lambda s: s.response(None, "squared"),
     "columns are given by name: a string or a tuple of strings; got None"),
    (lambda s: s.features(2.5), "feature terms are written as text, e.g. 'log(income)'; got "
                                "(2.5,)"),
    (lambda s: s.regularize("l1", exclude=1e300),
     "exclude takes parameter row names (strings); got [1e+300]"),
    (lambda s: s.stratify("g", "path", nodes={2, 1}),
     "nodes are a range or a list of labels; got {1, 2}"),
    (lambda s: s.stratify("g", "path", nodes=b"ab"),
     "nodes are a range or a list of labels; got b'ab'"),
])
def test_builder_arguments_the_fuzzer_found(build, message):
    with pytest.raises(ValueError) as info:
        build(stratlang.Spec("m"))
    assert str(info.value) == message
