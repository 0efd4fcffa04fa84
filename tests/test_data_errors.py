"""Bad data: each problem names the column and the rows, positioned in the spec."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import stratlang
from stratlang import SpecError
from stratlang.data.frames import read_frame
from stratlang.spec import compile_spec

from .conftest import write


def data_problems(spec: str, frame: pd.DataFrame, filename: str = "d.strat"):
    model = stratlang.Model(compile_spec(spec, filename, check_files=False))
    with pytest.raises(SpecError) as info:
        model.fit(frame)
    return [(d.span.line, d.span.column, d.message) for d in info.value.diagnostics]


def test_missing_columns_suggest_names():
    frame = pd.DataFrame({"age": [1, 2], "y": [0.0, 1.0], "x": [1.0, 2.0]})
    assert data_problems("response y ~ squared\nfeatures xx, intercep\nstratify agee ~ path\n",
                         frame) == [
        (2, 10, "column 'xx' not found in the data; did you mean 'x'?"),
        (2, 14, "column 'intercep' not found in the data; did you mean 'intercept'?"),
        (3, 10, "column 'agee' not found in the data; did you mean 'age'?")]


def test_missing_and_non_numeric_values_name_rows(tmp_path):
    csv = write(tmp_path, "d.csv", "y,x,s\n1,2,a\n2,,b\n3,oops,a\n4,5,\n")
    frame = read_frame(csv)
    assert data_problems("response y ~ squared\nfeatures x\nstratify s ~ complete\n", frame) == [
        (2, 10, "column 'x' has missing values (empty or NaN) in row 1 (line 3 of d.csv)"),
        (3, 10, "column 's' has missing values (empty or NaN) in row 3 (line 5 of d.csv)")]
    frame2 = pd.DataFrame({"y": [1.0, 2.0, 3.0], "x": ["1", "b", "c"]})
    assert data_problems("response y ~ squared\nfeatures x\n", frame2) == [
        (2, 10, "column 'x' must be numeric; values 'b', 'c' in rows 1, 2")]


@pytest.mark.parametrize(("loss", "values", "message"), [
    ("poisson", [1, -1, 2.5, 3], "response 'y' must hold nonnegative integers (counts) for loss "
                                 "'poisson'; values -1, 2.5 in rows 1, 2"),
    ("logistic", ["a", "b", "c", "a"], "response 'y' must have exactly two classes; found 3 classes: 'a', "
                                       "'b', 'c' for loss 'logistic'; value 'c' in row 2"),
    ("bernoulli", [0, 1, 2, 1], "response 'y' must hold 0/1 or true/false outcomes for loss "
                                "'bernoulli'; value 2 in row 2"),
    ("exponential", [1.0, -2.0, 0.5, 1.0], "response 'y' must be nonnegative for loss "
                                           "'exponential'; value -2 in row 1"),
])
def test_response_outside_the_loss_domain(loss, values, message):
    frame = pd.DataFrame({"y": values})
    assert data_problems(f"response y ~ {loss}\n", frame) == [(1, 10, message)]


def test_single_class_logistic_is_rejected():
    frame = pd.DataFrame({"y": [1, 1, 1], "x": [1.0, 2.0, 3.0]})
    [(_, _, msg)] = data_problems("response y ~ logistic\nfeatures x\n", frame)
    assert msg == "response 'y' must have exactly two classes; found 1 class: 1 for loss 'logistic'"


def test_values_outside_declared_nodes():
    frame = pd.DataFrame({"y": [1.0, 2.0, 3.0], "year": [1980, 1981, 1984]})
    assert data_problems("response y ~ squared\nstratify year ~ path nodes 1980..1984 step 2\n",
                         frame) == [
        (2, 10, "column 'year' has values that are not nodes of its graph: 1981 in row 1")]


def test_graph_file_errors(tmp_path):
    write(tmp_path, "g.csv", "source,target\na,b\nb,c\n")
    write(tmp_path, "cyc.csv", "parent,child\na,b\nb,c\nc,a\n")
    write(tmp_path, "bad.csv", "source,target,weight\na,b,-1\n")
    frame = pd.DataFrame({"y": [1.0, 2.0, 3.0], "s": ["a", "b", "z"]})
    spec = tmp_path / "s.strat"
    assert data_problems('response y ~ squared\nstratify s ~ edges("g.csv")\n', frame,
                         str(spec)) == [
        (2, 10, "column 's' has values that are not nodes of its graph: 'z' in row 2")]
    [(line, col, msg)] = data_problems('response y ~ squared\nstratify s ~ tree("cyc.csv")\n',
                                       frame, str(spec))
    assert (line, col) == (2, 14) and msg.endswith("is not a tree: 3 nodes, 3 edges, "
                                                   "1 connected part(s)")
    [(line, col, msg)] = data_problems('response y ~ squared\nstratify s ~ edges("bad.csv")\n',
                                       frame, str(spec))
    assert msg.endswith("weights must be positive numbers (lines 2)")
    [(line, col, msg)] = data_problems('response y ~ squared\nstratify s ~ edges("g.csv") '
                                       'nodes [a, b]\n', frame, str(spec))
    assert msg.startswith("graph file '") and msg.endswith(
        "g.csv' names nodes that are not declared: 'c'")


def test_unseen_stratum_at_prediction(regression_frame):
    model = stratlang.load("response y ~ squared\nfeatures x1\nstratify sex ~ complete\n")
    fitted = model.fit(regression_frame)
    new = regression_frame.head(3).assign(sex=["F", "X", "F"])
    with pytest.raises(SpecError, match=r"column 'sex' has values that are not nodes of its "
                                        r"graph: 'X' in row 1"):
        fitted.predict(new)


def test_unseen_class_at_scoring(rng):
    frame = pd.DataFrame({"x": rng.normal(size=40), "y": rng.choice(["a", "b"], 40)})
    fitted = stratlang.load("response y ~ logistic\nfeatures x\n").fit(frame)
    with pytest.raises(SpecError, match="holds classes not seen in training"):
        fitted.score(frame.assign(y=["c", *list(frame.y[1:])]))


def test_many_bad_rows_are_summarized():
    frame = pd.DataFrame({"y": np.r_[-np.arange(1.0, 21.0), [1.0]]})
    [(_, _, msg)] = data_problems("response y ~ poisson\n", frame)
    assert msg.endswith("values -1, -2, -3 in rows 0, 1, 2, 3, 4 and 15 more")
    [(_, _, msg)] = data_problems("response y ~ poisson\n", frame.head(20))
    assert msg.endswith("for loss 'poisson' (all 20 rows)")


@pytest.mark.parametrize(("values", "message", "hint"), [
    ([1 + 2j, 3.0, 4.0], "column 'x' holds complex numbers (complex128), not real numbers: "
                         "convert it yourself",
     "take the real part, the imaginary part or the modulus as columns"),
    (np.array([1 + 2j, 3.0, 4.0], dtype=object), "column 'x' holds complex numbers, not real "
                                                  "numbers: convert it yourself",
     "take the real part, the imaginary part or the modulus as columns"),
    (pd.to_datetime(["2020-01-01", "2021-01-01", "2022-01-01"]),
     "column 'x' holds dates and times (datetime64[ns]), not real numbers: convert it yourself",
     "e.g. days since a date (or stratify by the year or the month)"),
    (pd.to_timedelta([1, 2, 3], unit="s"),
     "column 'x' holds durations (timedelta64[ns]), not real numbers: convert it yourself",
     "e.g. in seconds: column.dt.total_seconds()"),
])
def test_columns_pandas_would_silently_make_numbers_are_refused(values, message, hint):
    # complex: the imaginary part dropped (only pandas' warning); dates and durations:
    # nanoseconds used as a feature
    frame = pd.DataFrame({"y": [1.0, 2.0, 3.0], "x": values})
    if "64[" in message:  # (pandas 3 keeps the unit it was given; pandas 2 makes it ns)
        message = message.replace("64[ns]", f"64[{np.datetime_data(frame.x.dtype)[0]}]")
    model = stratlang.Model(compile_spec("response y ~ squared\nfeatures x\n", "d.strat"))
    with pytest.raises(SpecError) as info:
        model.fit(frame)
    [diagnostic] = info.value.diagnostics
    assert (diagnostic.span.line, diagnostic.span.column, diagnostic.message,
            diagnostic.hint) == (2, 10, message, hint)


def test_a_boolean_column_does_not_meet_the_integer_nodes():
    frame = pd.DataFrame({"y": [1.0, 2.0, 3.0], "flag": [True, False, True]})
    model = stratlang.Model(compile_spec("response y ~ squared\nstratify flag ~ path nodes 0..1\n",
                                         "d.strat"))
    with pytest.raises(SpecError) as info:
        model.fit(frame)
    [diagnostic] = info.value.diagnostics
    assert diagnostic.message == ("column 'flag' has values that are not nodes of its graph: "
                                  "False, True in rows 0, 1, 2")
    assert diagnostic.hint == ("true/false values are not the numbers 1/0: convert the column "
                               "yourself (column.astype(int)) if they stand for those nodes")
    # observed (not declared) nodes of a boolean column are false and true
    fitted = stratlang.load("response y ~ squared\nstratify flag ~ path\n").fit(frame)
    assert list(fitted.strata.index()) == [False, True]
    fitted = model.fit(frame.assign(flag=frame.flag.astype(int)))  # converted explicitly
    assert list(fitted.strata.index()) == [0, 1]


def test_bernoulli_takes_true_false_text_and_blames_only_the_bad_row(tmp_path):
    rng = np.random.default_rng(3)
    words = rng.choice(["true", "false", "True", "FALSE", "1", "0"], 240)
    frame = pd.DataFrame({"y": words})
    fitted = stratlang.load("response y ~ bernoulli\n").fit(frame)
    outcomes = np.isin(words, ["true", "True", "1"])
    assert fitted.theta_array.ravel()[0] == pytest.approx(outcomes.mean(), abs=1e-6)
    csv = write(tmp_path, "b.csv", "y\n" + "\n".join([*words[:3], "maybe", *words[4:]]) + "\n")
    with pytest.raises(SpecError) as info:
        stratlang.load("response y ~ bernoulli\n").fit(str(csv))
    [diagnostic] = info.value.diagnostics
    assert diagnostic.message == ("response 'y' must hold 0/1 or true/false outcomes for loss "
                                  "'bernoulli'; value 'maybe' in row 3 (line 5 of b.csv)")


@pytest.mark.parametrize(("spec", "frame", "said"), [
    ("response y ~ squared\nfeatures x\n", {"x": ["a", "b"], "y": [1.0, 2.0]},
     "must be numeric"),
    ("response y ~ poisson\n", {"y": [-1, 2]}, "y"),
    ("response y ~ squared\nfeatures z\n", {"x": [1.0, 2.0], "y": [1.0, 2.0]},
     "column 'z' not found"),
])
def test_data_that_do_not_meet_the_spec_are_data_errors(spec, frame, said):
    """A data problem is a DataError (and, positioned at the spec, a SpecError)."""
    with pytest.raises(stratlang.DataError, match=said) as caught:
        stratlang.load(spec).fit(pd.DataFrame(frame))
    assert isinstance(caught.value, stratlang.SpecError) and caught.value.diagnostics
    assert caught.value.diagnostics[0].span is not None


def _numeric_one_at_a_time(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The response conversion as it was written before it was vectorized: float() of each
    value, a value it refuses blamed, then NaN and ±inf (and |y| > 1e150) blamed."""
    out = np.full(raw.shape, np.nan)
    bad = np.zeros(len(raw), bool)
    for j in range(raw.shape[1]):
        for i, v in enumerate(raw[:, j]):
            try:
                out[i, j] = float(v)
            except (TypeError, ValueError, OverflowError):
                bad[i] = True
    with np.errstate(invalid="ignore"):
        bad |= ~(np.abs(out) <= 1e150).all(axis=1)
    return out, np.flatnonzero(bad)


@pytest.mark.parametrize("column", [
    [1, 2.5, True, np.int64(3), np.float32(0.1), " 1.5 ", "1_000", "1e3"],  # all convert
    [1, "abc", None, "nan", "-inf", 1e200, "", 2, 10 ** 400, b"2.5", pd.NA, "٣"],
])
def test_response_conversion_is_the_per_value_conversion(column):
    """The vectorized cast gives the arrays and blamed rows of float() value by value."""
    from stratlang.kinds import responses

    raw = np.empty((len(column), 2), dtype=object)
    raw[:, 0] = column
    raw[:, 1] = list(range(len(column)))
    problems: list = []
    got = responses.real(raw, None, problems).values
    want, bad = _numeric_one_at_a_time(raw)
    np.testing.assert_array_equal(got, want)  # (NaN where NaN)
    assert [list(p.rows) for p in problems] == ([list(bad)] if len(bad) else [])


def test_a_count_too_large_for_a_float_is_a_data_error_naming_its_row():
    frame = pd.DataFrame({"y": np.array([1, 10 ** 400, 3], dtype=object)})
    assert data_problems("response y ~ poisson\n", frame) == [
        (1, 10, "response 'y' must hold finite numbers (of magnitude at most 1e+150) for loss "
                f"'poisson'; value {10 ** 400} in row 1")]


@pytest.mark.parametrize("dtype", ["int8", "int64", "uint16"])
def test_integer_values_find_their_nodes_through_a_table_as_through_factorizing(dtype):
    """Integer columns over a narrow range are looked up in a table indexed by value (at
    3.5 million records factorizing took ~50 ms a column); values that are no node give
    −1 either way, and a wide range still factorizes."""
    from stratlang.data.strata import _node_key, node_indices

    rng = np.random.default_rng(0)
    low = 0 if dtype == "uint16" else -100
    raw = rng.integers(low, 100, 5000).astype(dtype)
    lookup = {_node_key(v): i for i, v in enumerate(range(-20, 60, 3))}
    expected = np.array([lookup.get(_node_key(int(v)), -1) for v in raw])
    np.testing.assert_array_equal(node_indices(raw, lookup, _node_key), expected)
    wide = np.array([0, 10 ** 9, 3, -20], dtype=np.int64)
    np.testing.assert_array_equal(node_indices(wide, lookup, _node_key), [-1, -1, -1, 0])
    np.testing.assert_array_equal(node_indices(raw.astype(float), lookup, _node_key),
                                  expected)  # (floats: factorized)
