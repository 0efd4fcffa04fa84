"""Notebook views: the summary (a str with an HTML view), tune results and verifications
as HTML tables, every text escaped."""

from __future__ import annotations

import copy
import pickle
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

import stratlang
from stratlang.display import Summary
from stratlang.tune import TuneResult, Verification

SPEC = """model demo
response y ~ squared
features x1, intercept
regularize 0.1 * sum_squares
stratify sex ~ complete weight 1
"""


def parsed(html: str) -> ET.Element:
    """The HTML parsed as XML inside one root: it fails unless every tag is closed and
    every text escaped."""
    return ET.fromstring(f"<root>{html}</root>")


def texts(root: ET.Element) -> list[str]:
    return ["".join(e.itertext()).strip() for e in root.iter("td")]


@pytest.fixture
def fitted(regression_frame):
    model = stratlang.load(SPEC).replace(name="a<b>&c")
    return model.fit(regression_frame[["y", "x1", "sex"]], backend="cvxpy")


def test_summary_is_its_text_with_an_html_view(fitted):
    summary = fitted.summary()
    assert isinstance(summary, Summary) and isinstance(summary, str)
    text = str(summary)
    assert summary == text and summary.startswith("model a<b>&c: stratified, loss squared")
    assert "coefficients over the strata:" in summary and summary.splitlines() == text.splitlines()
    assert f"{summary}" == text and summary + "!" == text + "!"
    root = parsed(summary._repr_html_())
    assert "a<b>&c" in "".join(root.itertext())  # escaped in the HTML, the text again once parsed
    assert "<b>" not in summary._repr_html_() and "a&lt;b&gt;&amp;c" in summary._repr_html_()
    cells = texts(root)
    assert f"{fitted.objective.total:.6g}" in cells  # the objective's total
    slope = fitted.coefficients().loc["x1", "mean"]
    assert f"{slope:.4g}" in cells
    for again in (pickle.loads(pickle.dumps(summary)), copy.deepcopy(summary)):
        assert again == text and again._repr_html_() == summary._repr_html_()


def test_tune_result_html_marks_the_best_row_and_the_edge(fitted):
    table = pd.DataFrame({"stratify.sex": [0.1, 1.0, 10.0], "mean_rmse": [0.5, 0.25, 0.75],
                          "std_rmse": [0.01, 0.02, 0.03]})
    result = TuneResult(table, "rmse", {"stratify.sex": 1.0}, fitted, {"stratify.sex": "upper"})
    root = parsed(result._repr_html_())
    rows = [[("".join(td.itertext())) for td in tr.iter("td")] for tr in root.iter("tr")][1:]
    assert rows == [["0.1", "0.5", "0.01", ""], ["1", "0.25", "0.02", "← best"],
                    ["10", "0.75", "0.03", ""]]
    assert [td.find("strong") is not None for td in root.iter("td")][4:8] == [True] * 3 + [False]
    assert ("note: stratify.sex=1 is the upper end of its grid (the optimum may lie beyond it)"
            in "".join(root.itertext()))
    assert result.best_row() == 1


def test_verification_html_has_both_objectives_times_gap_and_accuracy():
    result = Verification("admm", 12.5, 12.5000125, 0.75, 0.25, 321,
                          reference_accuracy="CLARABEL optimal, duality gap 1.0e-09",
                          fast_accuracy=2e-6)
    root = parsed(result._repr_html_())
    rows = [[("".join(td.itertext())) for td in tr.iter("td")] for tr in root.iter("tr")][1:]
    assert rows == [["cvxpy", "12.5", "0.750", "", "CLARABEL optimal, duality gap 1.0e-09"],
                    ["admm", "12.5000125", "0.250", "321", "objective accurate to ~2.0e-06"]]
    assert "relative gap 1.00e-06; admm 3.0x faster" in "".join(root.itertext())


def test_verification_html_of_a_non_convex_model():
    result = Verification("admm", 1.0, 1.5, 0.5, 0.25, 10, relaxation="huber for <bisquare>",
                          bound=True, relaxed_at_fast=1.25)
    html = result._repr_html_()
    words = "".join(parsed(html).itertext())
    assert "the convex relaxation (huber for <bisquare>), a lower bound" in words
    assert "&lt;bisquare&gt;" in html and "cvxpy's value of the relaxation at the admm point 1.25" \
        in words
    assert "cvxpy (convex relaxation)" in words


def test_a_real_tune_and_verify_render(regression_frame):
    model = stratlang.load(SPEC.replace("weight 1", "weight {0.1, 10}"))
    frame = regression_frame[["y", "x1", "sex"]]
    with pytest.warns(stratlang.TuneWarning):
        result = model.tune(frame, folds=2, backend="cvxpy")
    root = parsed(result._repr_html_())
    best = result.best_row()
    marked = [tr for tr in root.iter("tr") if "← best" in "".join(tr.itertext())]
    assert len(marked) == 1 and "".join(marked[0].itertext()).startswith(
        f"{result.table['stratify.sex'][best]:.6g}")
    checked = model.verify(frame, weights={"stratify.sex": 1})
    words = "".join(parsed(checked._repr_html_()).itertext())
    assert f"{checked.cvxpy_objective:.12g}" in words and f"{checked.fast_objective:.12g}" in words
    assert np.isfinite(checked.relative_gap)
