"""`stratlang fit` of every registered loss kind, with its output written and read back:
the whole command (summary, training metrics, save) runs for every loss, so a new loss, or
one with several outputs (a multi-column response, classes), cannot go untested."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import stratlang
from stratlang import load_fitted
from stratlang.cli import main
from stratlang.kinds.losses import LOSSES

from .cases import data_for
from .conftest import write


@pytest.mark.parametrize("loss", LOSSES.names())
def test_cli_fits_every_loss_and_writes_what_reads_back(loss, tmp_path, capsys):
    frame, target, features = data_for(loss, np.random.default_rng(7))
    frame.to_csv(tmp_path / "d.csv", index=False)
    spec = write(tmp_path, "m.strat", f'model m\ndata "d.csv"\nresponse {target} ~ {loss}\n'
                 f"{features}\nstratify g ~ path weight 1\n")
    out = tmp_path / "fit.json"

    assert main(["fit", str(spec), "--out", str(out)]) == 0, capsys.readouterr().err
    printed = capsys.readouterr()
    assert printed.err == ""
    fitted = load_fitted(out)
    assert out.with_suffix(".npz").is_file()
    # what fit printed is the saved model's summary, its training metrics and where it went
    training = fitted.score(tmp_path / "d.csv")
    assert printed.out == (fitted.summary() + "\n  training "
                           + ", ".join(f"{k} {v:.4g}" for k, v in training.items())
                           + f"\n  saved {out} and {out.with_suffix('.npz')}\n")
    assert fitted.loss.name == loss and fitted.strata.k == 3
    assert fitted.info["status"] in ("optimal", "converged", "max_iter")
    outputs = fitted.loss.output_names(fitted.ir.response.columns, fitted.classes)
    assert fitted.theta_array.shape == (3, len(fitted.rows), len(outputs))
    assert np.all(np.isfinite(fitted.theta_array))
    # the same fit as JSON: its objective is the saved one
    assert main(["fit", str(spec), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["objective"]["total"] == pytest.approx(fitted.objective.total, rel=1e-9)
    assert doc["strata"]["outputs"] == [str(o) for o in outputs]
    assert doc["training"] == pytest.approx(training)
    # the saved model is the fit: θ and predictions as the same fit made in Python
    direct = stratlang.load(spec).fit()
    np.testing.assert_allclose(fitted.theta_array, direct.theta_array, rtol=1e-9, atol=1e-12)
    assert fitted.classes == direct.classes
    # predictions of the saved model from the command line, one row per record
    assert main(["predict", str(out), "--data", str(tmp_path / "d.csv"),
                 "--out", str(tmp_path / "p.csv")]) == 0
    written = pd.read_csv(tmp_path / "p.csv", index_col=0)
    expected = direct.predict(frame)
    # (the stratification column first: which stratum each row is)
    assert list(written.columns) == ["g", *expected.columns] and len(written) == len(frame)
    assert list(written["g"]) == list(frame["g"])
    for column in expected.columns:
        if expected[column].dtype.kind == "f":
            np.testing.assert_allclose(written[column], expected[column], rtol=1e-7)
        else:  # class labels
            assert list(written[column].astype(str)) == list(expected[column].astype(str))
