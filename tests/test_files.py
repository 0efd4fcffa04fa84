"""Every file a spec names — data, edges, tree, matrix — goes through one reader: each
problem is a positioned error at the statement that names the file, with the file's line
(lines counted in the file itself: blank and comment lines included)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

import stratlang
from stratlang.backends.base import bind_family
from stratlang.language import limits

STRATIFIED = ('model m\ndata "d.csv"\nresponse y ~ squared\nfeatures x\n'
              'stratify s ~ edges("g.csv")\n')
PERSONALIZED = ('model m\ndata "d.csv"\nresponse y ~ squared\nfeatures x\npersonalize rank 1\n'
                'distance s ~ matrix("m.csv")\n')
DATA = "y,x,s\n1,2,a\n2,3,b\n3,4,c\n"
EDGES = "source,target\na,b\nb,c\n"
MATRIX = ",a,b,c\na,0,1,2\nb,1,0,1\nc,2,1,0\n"


def problems(tmp_path, spec: str, files: dict[str, str | bytes]) -> list[tuple[int, int, str]]:
    """(line, column, message) of each problem `stratlang check` finds, with the
    directory's name replaced by <dir>."""
    for name, content in files.items():
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        (tmp_path / name).write_bytes(data)
    (tmp_path / "m.strat").write_text(spec)
    try:
        model = stratlang.load(tmp_path / "m.strat")
        bind_family(model.ir, None, model.graphs)
    except stratlang.SpecError as err:
        return [(d.span.line, d.span.column, d.message.replace(str(tmp_path), "<dir>"))
                for d in err.diagnostics]
    return []


@pytest.mark.parametrize(("content", "message"), [
    ("", "data file '<dir>/d.csv' is empty"),
    ("\n  \n", "data file '<dir>/d.csv' is empty"),
    ("y,x,s\n", "data file '<dir>/d.csv' has a header but no rows"),
    ("y,x,s\n1,2,a\n\n2,3,b,7\n", "data file '<dir>/d.csv' line 4 has 4 fields where the "
                                  "header has 3"),
    # one field too many on the first row: pandas would make it the index, shifting every
    # value one column to the right
    ("y,x,s\n1,2,a,9\n2,3,b\n", "data file '<dir>/d.csv' line 2 has 4 fields where the "
                                "header has 3"),
    (b"y,x,s\n1,2,a\n2,3,\xff\n", "data file '<dir>/d.csv' is not UTF-8 text: byte 0xff on "
                                  "line 3"),
    # pandas would rename the second 'x' to 'x.1' and the model would read the first
    ("y,x,s,x\n1,2,a,3\n", "data file '<dir>/d.csv' line 1: the header names column 'x' "
                           "twice (fields 2 and 4)"),
    ('"y","x","s","x"\n1,2,a,3\n', "data file '<dir>/d.csv' line 1: the header names column "
                                   "'x' twice (fields 2 and 4)"),
    # a short row is refused even when the missing cell is in a column no model reads
    ("y,x,s,unused\n1,2,a,7\n\n2,3,b\n", "data file '<dir>/d.csv' line 4 has 3 fields where "
                                         "the header has 4"),
    ('y,x,s,unused\n1,2,a,"7\n8"\n2,3,b\n', "data file '<dir>/d.csv' line 4 has 3 fields "
                                            "where the header has 4"),
])
def test_data_file_problems(tmp_path, content, message):
    assert problems(tmp_path, STRATIFIED, {"d.csv": content, "g.csv": EDGES}) == [
        (2, 6, message)]


@pytest.mark.parametrize(("content", "column", "message"), [
    ("y,x,s\n1,2,a\n\n2,abc,b\n", 10,
     "column 'x' must be numeric; value 'abc' in row 1 (line 4 of d.csv)"),
    ("y,x,s\n1,2,a\n\n2,nan,b\n", 10, "column 'x' has missing values (empty or NaN) in row 1 (line 4 of d.csv)"),
    ("y,x,s\n1,1e300,a\n2,3,b\n", 10,
     "column 'x' has values beyond ±1e+150: value 1e+300 in row 0 (line 2 of d.csv); rescale "
     "the column"),
])
def test_data_value_problems_name_the_file_line(tmp_path, content, column, message):
    found = problems(tmp_path, STRATIFIED, {"d.csv": content, "g.csv": EDGES})
    assert [(line, col, text) for line, col, text in found if "column 'x'" in text] == [
        (4, column, message)]


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path):
    assert problems(tmp_path, STRATIFIED, {"d.csv": "\ufeff" + DATA,
                                           "g.csv": "\ufeff" + EDGES}) == []


@pytest.mark.parametrize(("content", "message"), [
    ("", "graph file '<dir>/g.csv' is empty"),
    ("# only a comment\n", "graph file '<dir>/g.csv' is empty"),
    ("source,target\n", "graph file '<dir>/g.csv' has a header but no rows"),
    ("source,target\n# c\na,b\nb,c,1,2\n", "graph file '<dir>/g.csv' line 4 has 4 fields where "
                                           "the header has 2"),
    (b"source,target\na,\xe9\n", "graph file '<dir>/g.csv' is not UTF-8 text: byte 0xe9 on "
                                 "line 2"),
    ("source,target,weight\n\na,b,nan\nb,c,1\n", "graph file '<dir>/g.csv': weights must be "
                                                  "positive numbers (lines 3)"),
    ("source,target,weight\n# c\na,b,1\nb,c,-2\n", "graph file '<dir>/g.csv': weights must be "
                                                   "positive numbers (lines 4)"),
    # not an edge list: its header is not echoed (a spec may name any file)
    ("source\na\n", "graph file '<dir>/g.csv' has 1 column; an edge list has the columns "
                    "source,target[,weight]"),
    ("source,target,weight,colour\na,b,1,red\n", "graph file '<dir>/g.csv' has 4 columns; an "
                                                 "edge list has the columns "
                                                 "source,target[,weight]"),
    ("source,target\na,b\n# c\nc,c\n", "graph file '<dir>/g.csv' joins a node to itself ('c') "
                                       "on lines 4"),
])
@pytest.mark.parametrize("kind", ["edges", "tree"])
def test_graph_file_problems(tmp_path, kind, content, message):
    spec = STRATIFIED.replace("edges(", f"{kind}(")
    assert problems(tmp_path, spec, {"d.csv": DATA, "g.csv": content}) == [(5, 14, message)]


@pytest.mark.parametrize(("content", "message"), [
    ("", "distance file '<dir>/m.csv' is empty"),
    (",a,b,c\n", "distance file '<dir>/m.csv' has a header but no rows"),
    (",a,b,c\na,0,1,2,5\nb,1,0,1\nc,2,1,0\n",
     "distance file '<dir>/m.csv' line 2 has 5 fields where the header has 4"),
    (",a,b,c\na,0\nb,1,0,1\nc,2,1,0\n",
     "distance file '<dir>/m.csv' line 2 has 2 fields where the header has 4"),
    (',a,b,c\na,0,1,2\nb,"1,0,1\nc,2,1,0\n',
     "distance file '<dir>/m.csv' line 3 opens a quoted field that is never closed (a '\"' "
     "without its partner)"),
    (b",a,b,c\na,0,1,2\nb,\xff,0,1\nc,2,1,0\n",
     "distance file '<dir>/m.csv' is not UTF-8 text: byte 0xff on line 3"),
    (",a,b,c\na,0,x,2\nb,1,0,1\nc,2,1,0\n",
     "distance file '<dir>/m.csv' line 2, column 'b': 'x' is not a number"),
    (",a,b,c\na,0,1,2\n\nb,1,0,nan\nc,2,1,0\n",
     "distance file '<dir>/m.csv' line 4, column 'c': 'nan' is not a number"),
    (",a,b,c\na,0,1,2\nb,1,0,\nc,2,1,0\n",
     "distance file '<dir>/m.csv' line 3, column 'c': '' is not a number"),
    (",a,b,c\na,0,-1,2\nb,-1,0,1\nc,2,1,0\n",
     "distance file '<dir>/m.csv' line 2, column 'b': '-1' is negative: a distance is ≥ 0"),
    (",a,b,c\na,0,1,2\nb,3,0,1\nc,2,1,0\n",
     "distance file '<dir>/m.csv' line 2, column 'b': '1' differs from its mirror entry: a "
     "distance is symmetric"),
    (",a,b,c\na,1,1,2\nb,1,0,1\nc,2,1,0\n",
     "distance file '<dir>/m.csv' line 2, column 'a': '1' is not 0: a category is at distance "
     "0 from itself"),
    (",a,\x1b[2Jb,c\na,0,1,2\n\x1b[2Jb,1,0,x\nc,2,1,0\n",  # a name with a terminal escape
     "distance file '<dir>/m.csv' line 3, column 'c': 'x' is not a number"),
    (",a,\x1b[2Jb,c\na,0,1,2\n\x1b[2Jb,1,x,1\nc,2,1,0\n",
     "distance file '<dir>/m.csv' line 3, column '\\x1b[2Jb': 'x' is not a number"),
    (",a,b,c\na,0,1,2\nb,1,0,1\n",
     "distance file '<dir>/m.csv' must be square with the same labels, in the same order, in "
     "its first column and its header (2 rows, 3 columns)"),
])
def test_distance_matrix_problems(tmp_path, content, message):
    assert problems(tmp_path, PERSONALIZED, {"d.csv": DATA, "m.csv": content}) == [
        (6, 14, message)]


def test_a_good_distance_matrix_with_a_byte_order_mark(tmp_path):
    assert problems(tmp_path, PERSONALIZED, {"d.csv": DATA, "m.csv": "\ufeff" + MATRIX}) == []


def test_a_path_too_long_for_the_system(tmp_path):
    name = "a" * 5000 + ".csv"
    [(line, column, message)] = problems(tmp_path, STRATIFIED.replace("d.csv", name),
                                         {"g.csv": EDGES})
    assert (line, column) == (2, 6)
    assert message == ("data file 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…"
                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.csv' cannot be opened: File name "
                       "too long (looked in <dir>)")


def test_strata_of_mixed_numbers_and_text_are_refused():
    frame = pd.DataFrame({"y": [1.0, 2.0, 3.0], "s": ["a", 1, 2.5]})
    model = stratlang.load("response y ~ squared\nstratify s ~ complete\n")
    with pytest.raises(stratlang.SpecError) as info:
        model.fit(frame)
    [diagnostic] = info.value.diagnostics
    assert (diagnostic.span.line, diagnostic.span.column) == (2, 10)
    assert diagnostic.message.startswith("column 's' mixes numbers and text")


def test_a_model_too_large_for_memory_is_refused_before_it_starts():
    frame = pd.DataFrame({"a": [1, 2, 3], "b": [1, 2, 3], "y": [0.1, 0.2, 0.3]})
    model = stratlang.load("model m\nresponse y ~ squared\nstratify a ~ path nodes 1..30000\n"
                           "stratify b ~ path nodes 1..30000\n")
    with pytest.raises(stratlang.SpecError) as info:
        model.fit(frame, backend="admm")
    [diagnostic] = info.value.diagnostics
    assert (diagnostic.span.line, diagnostic.span.column) == (3, 1)
    assert diagnostic.message.startswith(
        "backend 'admm' would need at least 80.5 GiB for K = 30,000 × 30,000 = 900,000,000 "
        "strata × 1 parameter each; this machine has ")


def test_memory_estimates_are_lower_bounds(rng):
    """The estimate stays below what a fit measurably allocates (θ alone is K·d·8 bytes
    per copy; ADMM keeps several)."""
    from stratlang.backends import BACKENDS

    frame = pd.DataFrame({"s": rng.integers(0, 500, 2000), "x": rng.normal(size=2000)})
    frame["y"] = frame.x + rng.normal(size=2000)
    model = stratlang.load("response y ~ squared\nfeatures x\nstratify s ~ path nodes 0..499\n")
    design = bind_family(model.ir, frame)
    k, rows, outputs = design.theta_shape
    for name in ("admm", "cvxpy"):
        need = BACKENDS[name].memory(design, {})
        assert 8 * k * rows * outputs < need < 5_000 * (k * rows * outputs + design.x.size)
    assert np.isfinite(need)


@pytest.mark.parametrize("quote", ["", '"'])
def test_a_row_of_a_million_fields_is_refused_before_the_table_is_built(tmp_path, quote):
    # pandas made a million columns of it: 24 CPU-s and 850 MB (killed at 4.3 GB when the
    # fields had values in the reproducer)
    row = (f"{quote}1{quote}," * 1_000_000)[:-1]
    start = time.process_time()
    found = problems(tmp_path, STRATIFIED, {"d.csv": f"y,x,s\n{row}\n1,2,a\n", "g.csv": EDGES})
    assert found == [(2, 6, "data file '<dir>/d.csv' line 2 has 1000000 fields where the "
                            "header has 3")]
    assert time.process_time() - start < 4.0


@pytest.mark.parametrize(("content", "message"), [
    ("parent,child\na,b\nb,c\nc,c\n",
     "graph file '<dir>/g.csv' joins a node to itself ('c') on lines 4"),
    ("parent,child\na,b\nb,c\nb,a\n",
     "graph file '<dir>/g.csv' is not a tree: it joins 'a' and 'b' more than once (a cycle)"),
    ("parent,child\na,b\nb,c\nc,a\n",
     "graph file '<dir>/g.csv' is not a tree: 3 nodes, 3 edges, 1 connected part(s)"),
])
def test_a_tree_file_with_a_loop_or_a_cycle_is_refused(tmp_path, content, message):
    spec = STRATIFIED.replace("edges(", "tree(")
    assert problems(tmp_path, spec, {"d.csv": DATA, "g.csv": content}) == [(5, 14, message)]


def test_a_label_keeps_its_unicode_spaces(tmp_path):
    # canon_text stripped any Unicode space: 'a<NBSP>' met the node 'a' of the edge file
    data = "y,x,s\n1,2,a\u00a0\n2,3,\u2003b\n3,4,c\n"
    assert problems(tmp_path, STRATIFIED, {"d.csv": data, "g.csv": EDGES}) == [
        (5, 10, "column 's' has values that are not nodes of its graph: '\\u2003b', 'a\\xa0' in "
                "rows 0, 1 (lines 2, 3 of d.csv)")]
    digits = "y,x,s\n1,2,\u0661\n2,3,2\n"  # ARABIC-INDIC DIGIT ONE is no number 1
    assert problems(tmp_path, STRATIFIED, {"d.csv": digits, "g.csv": "s,t\n1,2\n"}) == [
        (5, 10, "column 's' has values that are not nodes of its graph: '\u0661' in row 0 "
                "(line 2 of d.csv)")]


def test_an_unrelated_file_is_not_echoed_and_control_characters_are_escaped(tmp_path):
    hosts = "127.0.0.1 localhost\n::1 localhost\n"
    assert problems(tmp_path, STRATIFIED, {"d.csv": hosts, "g.csv": EDGES}) == [
        (3, 10, "column 'y' not found in the data (d.csv); the file's header names none of "
                "the model's columns"),
        (4, 10, "column 'x' not found in the data (d.csv); the file's header names none of "
                "the model's columns"),
        (5, 10, "column 's' not found in the data (d.csv); the file's header names none of "
                "the model's columns")]
    escapes = "y,s,\x1b[2Jzz\n1,a,2\n"  # the model's table, with a terminal escape in it
    [(line, column, message)] = problems(tmp_path, STRATIFIED, {"d.csv": escapes,
                                                                "g.csv": EDGES})
    assert (line, column) == (4, 10)
    assert message == ("column 'x' not found in the data (d.csv); expected one of "
                       "'\\x1b[2Jzz', 'intercept', 's', 'y'")
    assert "\x1b" not in message


def test_a_file_too_large_is_refused_before_it_is_read(tmp_path):
    with open(tmp_path / "d.csv", "wb") as big:  # sparse: no disk used
        big.truncate(limits.MAX_FILE_BYTES + 1)
    start = time.perf_counter()
    assert problems(tmp_path, STRATIFIED, {"g.csv": EDGES}) == [
        (2, 6, "data file '<dir>/d.csv' is 1.0 GiB; stratlang reads files of at most 1.0 GiB")]
    assert problems(tmp_path, STRATIFIED.replace('"g.csv"', '"d.csv"').replace(
        'data "d.csv"', 'data "e.csv"'), {"e.csv": DATA}) == [
        (5, 14, "graph file '<dir>/d.csv' is 1.0 GiB; stratlang reads files of at most 1.0 GiB")]
    assert time.perf_counter() - start < 5.0


def test_a_nul_character_in_a_file_name_is_refused_at_its_place(tmp_path, capsys):
    """The fuzz campaign's finding: os.stat raised ValueError (an internal error)."""
    from stratlang.cli import main

    spec = tmp_path / "m.strat"
    spec.write_text('model m\ndata "data\0/x.csv"\nresponse y ~ squared\n')
    assert main(["check", str(spec)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{spec}:2:6: error[S401]: data file 'data\\x00/x.csv' cannot be a "
                          "file name: it holds a NUL character")
    assert main(["fit", str(spec), "--out", "a\0b"]) == 1
    assert capsys.readouterr().err == ("error: --out 'a\\x00b' cannot be a file name: it holds a "
                                       "NUL character\n")
