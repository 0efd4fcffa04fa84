"""tune (cross-validated sweeps, warm-started ADMM path) and verify."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import stratlang
from stratlang.cli import main

from .conftest import write

SPEC = """response y ~ logistic
features x, intercept
regularize 0.1 * sum_squares
stratify t ~ path weight {0.01, 10, 1e5}
"""


@pytest.fixture
def frame(rng) -> pd.DataFrame:
    n = 400  # 20 strata, 20 records each: too few for separate models
    t = rng.integers(0, 20, n)
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-x * (1 + np.sin(t / 4)) * 2))).astype(int)
    return pd.DataFrame({"t": t, "x": x, "y": y})


def test_tune_picks_the_middle_setting_and_refits(frame):
    result = stratlang.load(SPEC).tune(frame, folds=4)
    assert result.metric == "anll"
    assert list(result.table["stratify.t"]) == [0.01, 10, 1e5]
    scores = result.table["mean_anll"].to_numpy()
    assert scores[1] < scores[0] and scores[1] < scores[2]  # smoothing helps; too much hurts
    assert result.best == {"stratify.t": 10}
    assert result.fitted.weights["stratify.t"] == 10 and result.fitted.info["backend"] == "newton"


def test_tune_says_nothing_of_an_inner_best(frame, recwarn):
    result = stratlang.load(SPEC).tune(frame, folds=3)
    assert result.best == {"stratify.t": 10} and result.at_edge == {}
    assert not [w for w in recwarn if issubclass(w.category, stratlang.TuneWarning)]


@pytest.mark.parametrize(("grid", "best", "side", "advice"), [
    ("{1e-4, 1e-3}", 1e-3, "upper", "largest value of its grid, so the optimum may lie above "
                                    "it; extend the grid upward, e.g. with logspace(0.01, 1, 3)"),
    ("{1e5, 1e6}", 1e5, "lower", "smallest value of its grid, so the optimum may lie below "
                                 "it; extend the grid downward, e.g. with logspace(100, 10000, 3)"),
])
def test_tune_warns_when_the_best_value_is_an_end_of_its_grid(frame, grid, best, side, advice):
    spec = SPEC.replace("{0.01, 10, 1e5}", grid)
    with pytest.warns(stratlang.TuneWarning) as caught:
        result = stratlang.load(spec).tune(frame, folds=3)
    assert result.best == {"stratify.t": best} and result.at_edge == {"stratify.t": side}
    assert str(caught[0].message) == f"tune: the best stratify.t = {best:g} is the {advice}"
    assert str(result).endswith(f"note: stratify.t={best:g} is the {side} end of its grid")


def test_a_zero_lower_end_is_no_edge():
    """0 (no smoothing) cannot be extended downward: no advice to do so."""
    from stratlang.language.ir import Hyper
    from stratlang.tune import grid_edges

    sweeps = {"w": Hyper("set", (1.0, 0.0, 10.0)), "v": Hyper("logspace", (1.0, 100.0, 3.0))}
    assert grid_edges(sweeps, {"w": 0.0, "v": 10.0}) == {}
    assert grid_edges(sweeps, {"w": 10.0, "v": 1.0}) == {"w": "upper", "v": "lower"}


def test_tune_progress_counts_the_fits_done(frame, capsys, monkeypatch):
    from stratlang.solvers import progress

    monkeypatch.setattr(progress, "SHOW_AFTER", 0.0)
    monkeypatch.setattr(progress, "REFRESH", 0.0)
    stratlang.load(SPEC).tune(frame, folds=2, progress=True)
    err = capsys.readouterr().err
    assert "1/6 fits (fold 1 of 2, 3 settings each)" in err
    assert err.rstrip().endswith("6/6 fits (fold 2 of 2, 3 settings each)")
    assert err.lstrip("\r").startswith("tune ")


def test_tune_scores_equal_independent_fits(frame):
    """The warm-started path gives the same validation scores as cold CVXPY fits."""
    warm = stratlang.load(SPEC).tune(frame, folds=3)
    cold = stratlang.load(SPEC).tune(frame, folds=3, backend="cvxpy")
    np.testing.assert_allclose(warm.table["mean_anll"], cold.table["mean_anll"], rtol=1e-5)


def test_tune_without_sweep_is_an_error(frame):
    with pytest.raises(stratlang.StratlangError, match="declares no sweep"):
        stratlang.load(SPEC.replace("{0.01, 10, 1e5}", "1")).tune(frame)


def test_verify_agrees(frame):
    result = stratlang.load(SPEC).verify(frame, weights={"stratify.t": 10})
    assert result.relative_gap < 1e-6 and result.fast_iterations > 0
    assert "relative gap" in str(result)


def test_cli_verify_and_tune(tmp_path, frame, capsys):
    frame.to_csv(tmp_path / "d.csv", index=False)
    spec = write(tmp_path, "m.strat", SPEC)
    assert main(["verify", str(spec), "--data", str(tmp_path / "d.csv"),
                 "--weight", "stratify.t=10"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cvxpy objective") and "newton objective" in out
    assert main(["tune", str(spec), "--data", str(tmp_path / "d.csv"), "--folds", "3",
                 "--out", str(tmp_path / "best.json")]) == 0
    out = capsys.readouterr().out
    assert "best (anll): stratify.t=10" in out and (tmp_path / "best.json").is_file()
    with pytest.raises(SystemExit) as usage:
        main(["tune", str(spec), "--data", str(tmp_path / "d.csv"), "--folds", "1"])
    assert usage.value.code == 2


def test_tune_personalized_models_through_their_own_backend(rng):
    n = 200
    u = rng.uniform(0, 1, n)
    x = rng.uniform(-1, 1, n)
    frame = pd.DataFrame({"x": x, "u": u, "y": np.where(u < 0.5, 1.0, -1.0) * x
                          + 0.05 * rng.normal(size=n)})
    spec = ("response y ~ squared\nfeatures x\npersonalize rank 1 radius 0.3 "
            "match {0.001, 0.01} metric_penalty 1 neighbors 5 learning_rate 0.005 max_iter 60\n"
            "  distance u ~ abs\n")
    model = stratlang.load(spec)
    result = model.tune(frame, folds=2)
    assert list(result.table["match"]) == [0.001, 0.01] and result.metric == "rmse"
    assert result.fitted.info["backend"] == "subgradient"
    assert result.fitted.weights["match"] == result.best["match"]
    with pytest.raises(stratlang.StratlangError, match=r"for a personalized model use model\.tune"):
        model.sweep(frame)


def test_verify_says_which_fit_runs(frame, capsys):
    stratlang.load(SPEC).verify(frame, weights={"stratify.t": 10}, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "verify: fitting with the cvxpy reference"
    assert re.fullmatch(r"verify: fitting with newton \([0-9.]+ s for the reference\)",
                        lines[1])
