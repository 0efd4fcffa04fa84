"""The Python API: load, fit, theta, predict, score, summary, save/load, variants."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import stratlang

SPEC = """model demo
response y ~ squared
features x1, x2, intercept
regularize 0.1 * sum_squares
stratify sex ~ complete weight 1
stratify age ~ path weight 10
"""


def test_load_from_text_and_file(tmp_path):
    path = tmp_path / "m.strat"
    path.write_text(SPEC)
    assert stratlang.load(SPEC) == stratlang.load(path) == stratlang.load(str(path))
    with pytest.raises(stratlang.StratlangError, match=r"spec file 'nope\.strat' not found"):
        stratlang.load("nope.strat")


def test_a_mistyped_spec_path_is_not_read_as_spec_text(tmp_path):
    (tmp_path / "elections.strat").write_text(SPEC)
    for typed in ("elections.strt", "elections"):
        with pytest.raises(stratlang.StratlangError) as info:
            stratlang.load(str(tmp_path / typed))
        assert str(info.value) == (f"spec file '{tmp_path / typed}' not found; did you mean "
                                   f"'{tmp_path / 'elections.strat'}'?")


def test_fit_predict_score_and_labels(regression_frame):
    fitted = stratlang.load(SPEC).fit(regression_frame)
    theta = fitted.theta
    assert theta.index.names == ["sex", "age"] and list(theta.columns) == ["x1", "x2", "intercept"]
    assert theta.shape == (12, 3) and fitted.n_parameters == 36
    predicted = fitted.predict(regression_frame)
    manual = [regression_frame.loc[i, ["x1", "x2"]].to_numpy() @ theta.loc[(s, a)].to_numpy()[:2]
              + theta.loc[(s, a), "intercept"]
              for i, s, a in zip(regression_frame.index, regression_frame.sex, regression_frame.age,
                                 strict=True)]
    np.testing.assert_allclose(predicted.prediction, manual)
    scores = fitted.score(regression_frame)
    resid = regression_frame.y - predicted.prediction
    assert scores["rmse"] == pytest.approx(float(np.sqrt(np.mean(resid ** 2))))
    assert scores["r2"] > 0.9  # the truth is in the model class
    text = fitted.summary()
    assert "strata K = 12" in text and "factor (age): 6 nodes, 5 edges, path, weight 10" in text


def test_summary_repr_and_notebook_view(regression_frame):
    model = stratlang.load(SPEC)
    fitted = model.fit(regression_frame, backend="admm")
    lines = fitted.summary().splitlines()
    assert lines[:4] == [
        "model demo: stratified, loss squared",
        "  records N = 300; strata K = 12 (2 × 6), parameters per stratum 3 x 1 (36 in all)",
        "  factor (sex): 2 nodes, 1 edges, complete, weight 1",
        "  factor (age): 6 nodes, 5 edges, path, weight 10"]
    assert lines[4].startswith(f"  objective {fitted.objective.total:.10g} = loss ")
    iterations = fitted.info["iterations"]
    assert lines[5].startswith("  backend admm (") and lines[5].endswith(" s")
    assert f"status optimal, {iterations:,} iterations (limit 5,000), " in lines[5]
    # a likelihood loss with quadratic penalties: how sure the fit is (stratlang.uncertainty)
    assert lines[6].startswith("  standard errors: exact-")
    assert lines[7].startswith("  effective degrees of freedom ")
    assert lines[8].startswith("  deviance explained ")
    assert lines[9] == "  coefficients over the strata:"
    table = fitted.coefficients()
    assert list(table.index) == ["x1", "x2", "intercept"]
    assert list(table.columns) == ["mean", "std", "min", "max"]
    np.testing.assert_allclose(table["mean"], fitted.theta.mean().to_numpy())
    np.testing.assert_allclose(table["max"], fitted.theta.max().to_numpy())
    assert lines[11].split()[0] == "x1" and float(lines[11].split()[1]) == pytest.approx(
        table.loc["x1", "mean"], rel=1e-3)
    assert repr(fitted) == (f"<stratlang.FittedStratified 'demo': objective "
                            f"{fitted.objective.total:.6g}, backend admm, status optimal>")
    html = fitted._repr_html_()
    assert "<table" in html and "laplacian" in html and "records N = 300" in html
    assert repr(model) == "<stratlang.Model 'demo': stratified, loss squared>"
    assert "<pre>model demo\nresponse y ~ squared" in model._repr_html_()


def test_recovers_known_parameters(rng):
    """Simulated strata on a path: the fit recovers the true slopes."""
    t = np.repeat(np.arange(10), 200)
    x = rng.normal(size=t.size)
    slope = np.sin(t / 3)
    frame = pd.DataFrame({"t": t, "x": x, "y": slope * x + 0.05 * rng.normal(size=t.size)})
    fitted = stratlang.load("response y ~ squared\nfeatures x\nstratify t ~ path weight 1\n"
                            ).fit(frame)
    np.testing.assert_allclose(fitted.theta["x"], np.sin(np.arange(10) / 3), atol=0.01)


def test_save_and_load_fitted(tmp_path, regression_frame):
    fitted = stratlang.load(SPEC).fit(regression_frame)
    path = fitted.save(tmp_path / "fit.json")
    assert path.with_suffix(".npz").is_file()
    meta = json.loads(path.read_text())
    assert meta["format"] == "stratlang-fitted" and "stratify age ~ path" in meta["spec"]
    again = stratlang.load_fitted(path)
    pd.testing.assert_frame_equal(again.theta, fitted.theta)
    pd.testing.assert_frame_equal(again.predict(regression_frame), fitted.predict(regression_frame))
    assert again.objective == fitted.objective
    with pytest.raises(stratlang.StratlangError, match="not a stratlang fitted model"):
        bad = tmp_path / "bad.json"
        bad.write_text("{}")
        stratlang.load_fitted(bad)


def test_save_and_load_with_a_graph_file_and_classes(tmp_path, rng):
    (tmp_path / "g.csv").write_text("a,b\nx,y\ny,z\n")
    spec = tmp_path / "m.strat"
    spec.write_text('response c ~ logistic\nfeatures v\nstratify s ~ edges("g.csv") weight 2\n')
    frame = pd.DataFrame({"s": rng.choice(["x", "y", "z"], 90), "v": rng.normal(size=90)})
    frame["c"] = np.where(frame.v + rng.normal(size=90) > 0, "up", "down")
    fitted = stratlang.load(spec).fit(frame)
    again = stratlang.load_fitted(fitted.save(tmp_path / "out"))
    assert again.classes == ("down", "up")
    pd.testing.assert_frame_equal(again.predict(frame), fitted.predict(frame))


def test_separate_and_common_variants(regression_frame):
    model = stratlang.load(SPEC)
    assert all(s.weight.value == 0 for s in model.separate().ir.strata)
    assert model.common().ir.strata == ()
    common = model.common().fit(regression_frame)
    assert common.theta.shape == (1, 3)


def test_multiclass_outputs(rng):
    frame = pd.DataFrame({"x": rng.normal(size=150), "g": rng.integers(0, 2, 150)})
    frame["y"] = np.digitize(frame.x + 0.3 * rng.normal(size=150), [-0.5, 0.5])
    fitted = stratlang.load("response y ~ multinomial\nfeatures x, intercept\n"
                            "regularize 0.1 * sum_squares\nstratify g ~ path weight 1\n").fit(frame)
    assert list(fitted.theta.columns.get_level_values("output").unique()) == ["0", "1", "2"]
    out = fitted.predict(frame)
    probs = out[["probability_0", "probability_1", "probability_2"]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert fitted.score(frame)["accuracy"] > 0.7


def test_data_statement_is_used(tmp_path, regression_frame):
    regression_frame.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "m.strat").write_text('data "d.csv"\n' + SPEC.replace("model demo\n", ""))
    fitted = stratlang.load(tmp_path / "m.strat").fit()
    assert fitted.strata.k == 12
    with pytest.raises(stratlang.DataError, match="names no data"):
        stratlang.load(SPEC).fit()


def test_saved_spec_points_at_the_file_or_claims_none(tmp_path, regression_frame):
    from stratlang.spec import saved_spec

    (tmp_path / "m.strat").write_text("# a comment shifts the lines\n" + SPEC)
    model = stratlang.load(tmp_path / "m.strat")
    assert saved_spec(model.ir) == {"spec": (tmp_path / "m.strat").read_text(),
                                 "spec_file": str(tmp_path / "m.strat")}
    changed = saved_spec(model.separate().ir)
    assert changed["spec_file"] == "<fitted model>" and "weight 0" in changed["spec"]
    again = stratlang.load_fitted(model.separate().fit(regression_frame).save(tmp_path / "s"))
    assert all(s.weight.value == 0 for s in again.ir.strata)


def test_the_fit_docstring_names_every_backend():
    """It named 4 of the 6 backends once: the list is checked against the registry."""
    from stratlang.backends import BACKENDS

    for name in BACKENDS.names():
        assert f"'{name}'" in stratlang.Model.fit.__doc__, name
