"""The command line: exit codes, positioned messages, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from stratlang.cli import main

from .conftest import write


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stratlang", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def project(tmp_path, regression_frame):
    regression_frame.to_csv(tmp_path / "d.csv", index=False)
    write(tmp_path, "good.strat", 'model demo\ndata "d.csv"\nresponse y ~ squared\n'
          "features x1, x2, intercept\nstratify sex ~ complete weight 1\n"
          "stratify age ~ path weight 10\n")
    write(tmp_path, "bad.strat", "model demo\nresponse y ~ sqared\nfeatures x1, x9\n"
          "stratify age ~ path weight -3\n")
    return tmp_path


def test_check_reports_every_mistake_with_carets(project):
    out = run("check", str(project / "bad.strat"), "--data", str(project / "d.csv"))
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    bad = project / "bad.strat"
    assert f"{bad}:2:14: error: unknown loss 'sqared'; did you mean 'squared'?" in out.stderr
    assert f"{bad}:4:28: error: graph weight must be nonnegative; got -3" in out.stderr
    assert "                               ^^" in out.stderr
    assert out.stderr.strip().endswith("2 errors")


def test_check_json(project, capsys):
    assert main(["check", str(project / "good.strat"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "errors": []}
    assert main(["check", str(project / "bad.strat"), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [(e["line"], e["column"]) for e in report["errors"]] == [(2, 14), (4, 28)]


def test_data_errors_are_positioned(project, capsys):
    write(project, "cols.strat", "response y ~ squared\nfeatures x1, x9\n")
    assert main(["check", str(project / "cols.strat"), "--data", str(project / "d.csv")]) == 1
    err = capsys.readouterr().err
    assert ("cols.strat:2:14: error: column 'x9' not found in the data (d.csv); expected one of "
            "'age', 'intercept', 'sex', 'x1', 'x2', 'y'\n    features x1, x9\n"
            "                 ^^\n") in err


def test_show(project, capsys):
    assert main(["show", str(project / "good.strat")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("model demo\ndata \"d.csv\"\nresponse y ~ squared\n")
    assert "records; parameter rows x1, x2, intercept\n# strata K = 12; 36 parameters per output" in out
    assert "#   factor (age): path graph, 6 nodes, 5 edges" in out


def test_fit_predict_score_round_trip(project):
    fit = run("fit", str(project / "good.strat"), "--out", str(project / "fit.json"),
              "--weight", "stratify.age=5")
    assert fit.returncode == 0, fit.stderr
    assert "strata K = 12" in fit.stdout and "training rmse" in fit.stdout
    pred = run("predict", str(project / "fit.json"), "--data", str(project / "d.csv"),
               "--out", str(project / "p.csv"))
    assert pred.returncode == 0 and (project / "p.csv").read_text().startswith(",prediction\n")
    score = run("score", str(project / "fit.json"), "--data", str(project / "d.csv"))
    assert score.returncode == 0 and score.stdout.startswith("rmse ")


def test_user_errors_exit_1_without_traceback(project, capsys):
    assert main(["fit", str(project / "good.strat"), "--data", str(project / "none.csv")]) == 1
    assert capsys.readouterr().err == f"error: data file '{project / 'none.csv'}' not found\n"
    assert main(["fit", str(project / "good.strat"), "--weight", "oops"]) == 1
    assert "--weight expects NAME=VALUE" in capsys.readouterr().err
    assert main(["fit", str(project / "good.strat"), "--backend", "admn"]) == 1
    assert "unknown backend 'admn'; did you mean 'admm'?" in capsys.readouterr().err
    assert main(["predict", str(project / "missing.json"), "--data", "x.csv"]) == 1
    assert main(["check", str(project / "nothing.strat")]) == 1
    assert "spec file" in capsys.readouterr().err


def test_usage_errors_exit_2():
    out = run("frobnicate")
    assert out.returncode == 2 and "invalid choice" in out.stderr
    assert run("fit").returncode == 2


def test_personalized_fit_and_predict_from_the_cli(tmp_path, rng):
    import numpy as np
    import pandas as pd

    n = 200
    frame = pd.DataFrame({"x": rng.uniform(-1, 1, n), "u": rng.uniform(0, 1, n)})
    frame["y"] = np.where(frame.u < 0.5, 1.0, -1.0) * frame.x + 0.05 * rng.normal(size=n)
    frame.to_csv(tmp_path / "p.csv", index=False)
    write(tmp_path, "p.strat", 'data "p.csv"\nresponse y ~ squared\nfeatures x\n'
          "personalize rank 1 radius 0.3 match 0.001 metric_penalty 1 neighbors 5 "
          "learning_rate 0.005 max_iter 100\n  distance u ~ abs\n")
    fit = run("fit", str(tmp_path / "p.strat"), "--out", str(tmp_path / "p.json"))
    assert fit.returncode == 0, fit.stderr
    assert "personalized, loss squared, rank 1" in fit.stdout and "covariate weights phi: u" in fit.stdout
    pred = run("predict", str(tmp_path / "p.json"), "--data", str(tmp_path / "p.csv"))
    assert pred.returncode == 0 and pred.stdout.startswith(",prediction\n")
    assert len(pred.stdout.strip().splitlines()) == n + 1


def test_prediction_covariate_errors_are_positioned(tmp_path, rng):
    import numpy as np
    import pandas as pd

    n = 120
    frame = pd.DataFrame({"x": rng.uniform(-1, 1, n), "region": rng.choice(["a", "b"], n)})
    frame["y"] = np.where(frame.region == "a", 1.0, -1.0) * frame.x
    frame.to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "regions.csv").write_text("name,a,b\na,0,1\nb,1,0\n")
    write(tmp_path, "p.strat", 'response y ~ squared\nfeatures x\n'
          "personalize rank 1 radius 0.3 match 0.001 metric_penalty 1 learning_rate 0.005 "
          'max_iter 20\n  distance region ~ matrix("regions.csv")\n')
    fit = run("fit", str(tmp_path / "p.strat"), "--data", str(tmp_path / "train.csv"),
              "--out", str(tmp_path / "p.json"))
    assert fit.returncode == 0, fit.stderr
    frame.assign(region=["c", *list(frame.region[1:])]).to_csv(tmp_path / "new.csv", index=False)
    pred = run("predict", str(tmp_path / "p.json"), "--data", str(tmp_path / "new.csv"))
    assert pred.returncode == 1 and "internal error" not in pred.stderr
    assert "p.strat:4:21: error: distance file" in pred.stderr and "has no entry for 'c'" in pred.stderr
    assert 'distance region ~ matrix("regions.csv")\n' in pred.stderr  # the file's own line
