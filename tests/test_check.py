"""The checker: names against registries, option values, structure — every problem, once,
positioned, sorted."""

from __future__ import annotations

import pytest

from stratlang import SpecError
from stratlang.kinds.losses import LOSSES
from stratlang.language import ir
from stratlang.spec import compile_spec

from .conftest import write


def problems(text: str, filename: str = "t.strat") -> list[tuple[int, int, str]]:
    with pytest.raises(SpecError) as info:
        compile_spec(text, filename, check_files=False)
    return [(d.span.line, d.span.column, d.message) if d.span else (0, 0, d.message)
            for d in info.value.diagnostics]


def test_valid_spec_gives_typed_ir():
    model = compile_spec("model m\nresponse y ~ huber\nfeatures a, intercept\n"
                         "regularize 0.5 * l1\nstratify g ~ cycle weight 3\n")
    assert model.response == ir.Response(("y",), ir.KindRef("huber", (("M", 1.0),)))
    assert model.regularizers == (ir.RegTerm(ir.KindRef("l1"), ir.Hyper.of(0.5), ("intercept",)),)
    assert model.strata[0].weight.value == 3.0 and model.strata[0].graph.name == "cycle"


@pytest.mark.parametrize(("line", "expected"), [
    ("response y ~ logisitc", (1, 14, "unknown loss 'logisitc'; did you mean 'logistic'?")),
    ("response y ~ huber(N=1)", (1, 20, "unknown argument 'N' for loss 'huber'; expected one of 'M'")),
    ("response y ~ huber(-1)", (1, 20, "loss 'huber': 'M' must be positive")),
    ("response y ~ quantile(1.5)", (1, 23, "loss 'quantile': 'tau' must lie strictly between 0 and 1")),
    ("response y ~ huber(1, 2)", (1, 23, "loss 'huber' takes at most 1 argument")),
    ("response (a, b) ~ logistic", (1, 10, "loss 'logistic' takes one response column; got 2")),
])
def test_response_errors(line, expected):
    assert problems(line) == [expected]


def test_distribution_loss_rejects_features_with_a_hint():
    with pytest.raises(SpecError) as info:
        compile_spec("response y ~ poisson\nfeatures a\n")
    [diag] = info.value.diagnostics
    assert diag.message == "loss 'poisson' is a distribution estimate and takes no features"
    assert diag.hint == "for a model with features use 'poisson_regression'"


@pytest.mark.parametrize(("line", "expected"), [
    ("regularize 0.1 * l3", (2, 18, "unknown regularizer 'l3'; expected one of 'box', 'elastic_net', 'l1', 'l2', 'mcp', 'nonnegative', 'nonzeros', 'nuclear', 'sum_squares', 'trace', 'zero'")),
    ("regularize -1 * l1", (2, 12, "weight of 'l1' must be nonnegative; got -1")),
    ("regularize 2 * nonnegative", (2, 12, "'nonnegative' is a constraint and takes no weight")),
    ("regularize box(2, 1)", (2, 12, "box: lower must not exceed upper")),
    ("regularize l1 exclude [b]", (2, 23, "exclude: 'b' is not a parameter row of this model; expected one of 'a'")),
    ("regularize 0.1 * sum_sqares", (2, 18, "unknown regularizer 'sum_sqares'; did you mean 'sum_squares'?")),
    ("regularize l1 excude [a]", (2, 15, "unknown option 'excude' for regularize; did you mean 'exclude'?")),
    ("regularize logspace(0, 1, 3) * l1", (2, 12, "logspace: bounds must be positive")),
    ("regularize logspace(1, 10, 1.5) * l1", (2, 28, "logspace: count must be a whole number ≥ 2")),
    ("regularize trace", (2, 12, "'trace' applies to the precision matrix of the 'gaussian' loss only")),
])
def test_regularizer_errors(line, expected):
    assert problems("response y ~ squared\n" + line.replace("\n", "") + "\nfeatures a\n") == [expected]


@pytest.mark.parametrize(("line", "expected"), [
    ("stratify a ~ cyle", (1, 14, "unknown graph 'cyle'; did you mean 'cycle'?")),
    ("stratify a ~ path weight -2", (1, 26, "graph weight must be nonnegative; got -2")),
    ("stratify a ~ path wieght 2", (1, 19, "unknown option 'wieght' for stratify; did you mean 'weight'?")),
    ("stratify (a, b) ~ path", (1, 10, "graph 'path' takes one column; write one stratify statement per column (their product is taken), or use 'grid'")),
    ("stratify a ~ path nodes 5..1", (1, 25, "empty node range")),
    ("stratify a ~ path nodes [1, 1]", (1, 25, "node list repeats a label")),
    ("stratify (a, b) ~ grid nodes 0..3", (1, 30, "nodes of 2 columns take a tuple of 2 ranges or lists, e.g. (0..19, 0..19)")),
    ("stratify a ~ edges", (1, 14, "graph 'edges' needs argument 'file'")),
    ("stratify a ~ path weight {1, -1}", (1, 30, "graph weight must be nonnegative; got -1")),
    ("stratify a ~ path weight logspce(1, 2, 3)", (1, 26, "graph weight: unknown sweep 'logspce'; did you mean 'logspace'?")),
])
def test_stratify_errors(line, expected):
    assert problems(line + "\nresponse y ~ squared\n") == [expected]


def test_duplicate_stratification_of_a_column():
    assert problems("response y ~ squared\nstratify age ~ path\nstratify (x, age) ~ grid\n") == [
        (3, 14, "column 'age' is stratified twice (first on line 2)")]


def test_duplicate_single_statement():
    assert problems("response y ~ squared\nresponse z ~ squared\n") == [
        (2, 1, "duplicate 'response' statement (the first is on line 1)")]


def test_missing_response_is_reported_without_position():
    assert problems("model m\n") == [
        (0, 0, "missing 'response' statement: write e.g. `response y ~ squared`")]


def test_personalize_errors():
    taken = [n for n in LOSSES.names() if LOSSES[n].personalizable]
    assert {"squared", "huber", "logistic", "poisson_regression"} <= set(taken)
    personalizable = ", ".join(f"'{n}'" for n in taken)
    text = ("response y ~ hinge\nfeatures a\nregularize nuclear\n"
            "personalize rank 0 radus 1\n  distance u ~ manhattan\n  distance (u, v) ~ abs\n")
    assert problems(text) == [
        (1, 14, "personalized models cannot take the loss 'hinge': it is not differentiable (the "
                "engine follows the loss's gradient); they take " + personalizable),
        (3, 12, "personalized models support the regularizers zero, sum_squares, l1, l2, elastic_net; got 'nuclear'"),
        (4, 18, "'rank' must lie in [1, 1,000]"),
        (4, 20, "unknown option 'radus' for personalize; did you mean 'radius'?"),
        (5, 16, "unknown distance 'manhattan'; expected one of 'abs', 'discrete', 'euclidean', 'matrix'"),
        (6, 12, "distance 'abs' takes one column; use 'euclidean' for a group"),
        (6, 13, "column 'u' has two distances (first on line 5)"),
    ]


def test_personalize_and_stratify_exclude_each_other():
    assert problems("response y ~ squared\nfeatures a\nstratify g ~ path\n"
                    "personalize rank 2\ndistance u ~ abs\n") == [
        (4, 1, "a model is either stratified or personalized, not both")]


def test_distance_without_personalize():
    assert problems("response y ~ squared\ndistance u ~ abs\n") == [
        (2, 1, "'distance' belongs to a personalized model: add a 'personalize' statement")]


def test_solver_errors():
    assert problems("response y ~ squared\nsolver cvxpi\n") == [
        (2, 8, "unknown backend 'cvxpi'; did you mean 'cvxpy'?")]
    [(line, col, msg)] = problems("response y ~ squared\nsolver cvxpy method gurobee\n")
    assert (line, col) == (2, 21) and msg.startswith("'method' must be one of the installed")


def test_three_mistakes_all_reported_sorted(tmp_path):
    path = write(tmp_path, "three.strat", "model m\nresponse y ~ sqared\nfeatures a, a\n"
                 "stratify g ~ path weight -1\n")
    with pytest.raises(SpecError) as info:
        compile_spec(path.read_text(), str(path))
    text = info.value.format()
    assert text.count(": error[") == 3 and text.endswith("3 errors")
    assert f"{path}:2:14: error[S104]: unknown loss 'sqared'; did you mean 'squared'?" in text
    assert f"{path}:3:13: error[S303]: duplicate feature 'a'" in text
    assert f"{path}:4:26: error[S206]: graph weight must be nonnegative; got -1" in text
    assert "    stratify g ~ path weight -1\n                             ^^" in text


def test_missing_files_are_positioned(tmp_path):
    path = write(tmp_path, "f.strat", 'data "nope.csv"\nresponse y ~ bernoulli\n'
                 'stratify s ~ edges("missing.csv")\n')
    with pytest.raises(SpecError) as info:
        compile_spec(path.read_text(), str(path))
    messages = [(d.span.line, d.span.column, d.message.split(" (")[0])
                for d in info.value.diagnostics]
    assert messages == [(1, 6, "data file 'nope.csv' not found"),
                        (3, 20, "graph file 'missing.csv' not found")]


def test_syntax_and_semantic_errors_together():
    with pytest.raises(SpecError) as info:
        compile_spec("model m\nresponse y ~ squred\nstratify a ~ path weight 1.2.3\n", "x.strat")
    assert [(d.span.line, d.message) for d in info.value.diagnostics] == [
        (2, "unknown loss 'squred'; did you mean 'squared'?"),
        (3, "malformed number '1.2.3'")]


def test_a_basis_larger_than_the_declared_strata_is_refused_without_data():
    # issue 20 #13: with every factor's nodes declared, K is known when the spec is checked
    text = ("response y ~ squared\nfeatures x\nstratify g ~ path nodes 0..3\n"
            "stratify c ~ complete nodes [a, b]\nbasis {}\n")
    assert problems(text.format(9)) == [
        (5, 7, "basis 9 exceeds the K = 8 strata: at most 8 eigenvectors")]
    assert compile_spec(text.format(8), check_files=False).basis == 8
