"""The command line: exit codes, positioned messages, no tracebacks."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stratlang.cli import main

from .conftest import write


def run(*args: str, stdin: str | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stratlang", *args], capture_output=True,
                          text=True, timeout=300, input=stdin, cwd=cwd)


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
    assert f"{bad}:2:14: error[S104]: unknown loss 'sqared'; did you mean 'squared'?" in out.stderr
    assert f"{bad}:4:28: error[S206]: graph weight must be nonnegative; got -3" in out.stderr
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
    assert ("cols.strat:2:14: error[S501]: column 'x9' not found in the data (d.csv); expected one of "
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
    assert pred.returncode == 0 and (project / "p.csv").read_text().startswith(",sex,age,prediction\n")
    score = run("score", str(project / "fit.json"), "--data", str(project / "d.csv"))
    assert score.returncode == 0 and score.stdout.startswith("rmse ")


def test_user_errors_exit_1_without_traceback(project, capsys):
    assert main(["fit", str(project / "good.strat"), "--data", str(project / "none.csv")]) == 1
    assert capsys.readouterr().err == f"error: data file '{project / 'none.csv'}' not found\n"
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
    assert "personalized, loss squared" in fit.stdout and "rank 1" in fit.stdout
    assert "covariate weights phi: u" in fit.stdout
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
    assert "p.strat:4:21: error[S511]: distance file" in pred.stderr and "has no entry for 'c'" in pred.stderr
    assert 'distance region ~ matrix("regions.csv")\n' in pred.stderr  # the file's own line


# ---- --version -----------------------------------------------------------------------------
def test_version(capsys):
    from importlib.metadata import version

    out = run("--version")
    assert out.returncode == 0 and out.stdout == f"stratlang {version('stratlang')}\n"
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"stratlang {version('stratlang')}\n"


# ---- a spec on standard input ('-') ------------------------------------------------------------
GOOD = ('model demo\ndata "d.csv"\nresponse y ~ squared\nfeatures x1, x2, intercept\n'
        "stratify sex ~ complete weight 1\nstratify age ~ path weight 10\n")


def stdin(monkeypatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))


def test_spec_from_stdin_names_stdin_and_reads_files_in_the_working_directory(project, tmp_path):
    ok = run("check", "-", stdin=GOOD, cwd=project)
    assert ok.returncode == 0 and ok.stdout == "<stdin>: ok (stratified model 'demo')\n"
    bad = run("check", "-", stdin=(project / "bad.strat").read_text(), cwd=project)
    assert bad.returncode == 1
    assert "<stdin>:2:14: error[S104]: unknown loss 'sqared'; did you mean 'squared'?" in bad.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    missing = run("check", "-", stdin=GOOD, cwd=elsewhere)  # checked where it runs
    assert missing.returncode == 1
    assert missing.stderr.startswith(f"<stdin>:2:6: error[S401]: data file 'd.csv' not found (looked "
                                     f"in {elsewhere})\n")


def test_spec_text_from_python_still_has_its_files_read_only_when_fitted(tmp_path, monkeypatch):
    import stratlang

    monkeypatch.chdir(tmp_path)
    model = stratlang.load(GOOD)  # no d.csv here: no error yet
    assert model.ir.source.filename == "<spec>"
    with pytest.raises(stratlang.StratlangError, match=r"data file '.*d\.csv' not found"):
        model.fit()


@pytest.mark.parametrize("command", [["check"], ["show"], ["fit", "--weight", "stratify.age=5"],
                                     ["verify", "--weight", "stratify.age=5"],
                                     ["tune", "--folds", "2"]])
def test_every_spec_command_reads_stdin(command, project, monkeypatch, capsys):
    monkeypatch.chdir(project)
    stdin(monkeypatch, GOOD.replace("weight 10", "weight {1, 10}"))
    assert main([command[0], "-", *command[1:], "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_stdin_that_is_not_utf8_is_an_error(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"response y ~ \xff\n")))
    assert main(["check", "-"]) == 1
    assert capsys.readouterr().err == ("error: the spec on standard input is not UTF-8 text: "
                                       "byte 0xff on line 1\n")


# ---- --format json -----------------------------------------------------------------------------
def test_json_show(project, capsys):
    assert main(["show", str(project / "good.strat"), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["text"].startswith('model demo\ndata "d.csv"\nresponse y ~ squared\n')
    assert (doc["ok"], doc["model"], doc["kind"], doc["loss"]) == (True, "demo", "stratified",
                                                                   "squared")
    assert doc["records"] == 300 and doc["rows"] == ["x1", "x2", "intercept"]
    assert doc["strata"]["K"] == 12 and doc["strata"]["parameters_per_output"] == 36
    assert doc["strata"]["factors"][1] == {"columns": ["age"], "structure": "path", "nodes": 6,
                                           "edges": 5, "weight": 10.0,
                                           "hyper_parameter": "stratify.age", "hub": None,
                                           "components": 1, "islands": [], "data_free": [],
                                           "data_free_count": 0}
    assert doc["variation"] == doc["interactions"] == []
    assert doc["strata"]["interaction_null_dimensions"] == []


def test_show_with_data_and_auto_weights(project, capsys):
    """A weight written auto has no value to show before the fit: "auto", not a crash."""
    text = (project / "good.strat").read_text().replace("age ~ path weight 10",
                                                        "age ~ path weight auto")
    write(project, "auto.strat", text)
    assert main(["show", str(project / "auto.strat"), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [f["weight"] for f in doc["strata"]["factors"]] == [1.0, "auto"]
    assert main(["show", str(project / "auto.strat")]) == 0
    out = capsys.readouterr().out
    assert "stratify age ~ path weight auto\n" in out
    assert "#   factor (age): path graph, 6 nodes, 5 edges\n" in out


def test_json_fit_score_predict(project, capsys):
    out = project / "fit.json"
    assert main(["fit", str(project / "good.strat"), "--out", str(out), "--weight",
                 "stratify.age=5", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["ok"], doc["model"], doc["backend"], doc["status"]) == (True, "demo", "newton",
                                                                        "optimal")
    assert isinstance(doc["iterations"], int) and doc["seconds"] > 0
    assert set(doc["objective"]) == {"total", "loss", "regularization", "laplacian"}
    assert doc["objective"]["total"] == pytest.approx(
        doc["objective"]["loss"] + doc["objective"]["regularization"]
        + doc["objective"]["laplacian"])
    assert doc["weights"] == {"stratify.sex": 1.0, "stratify.age": 5.0}
    assert doc["strata"]["K"] == 12 and doc["strata"]["factors"][1]["weight"] == 5.0
    assert set(doc["training"]) == {"rmse", "mae", "r2"}
    assert doc["saved"] == {"model": str(out), "arrays": str(out.with_suffix(".npz"))}
    data = str(project / "d.csv")
    assert main(["score", str(out), "--data", data, "--format", "json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored == {"ok": True, "metrics": pytest.approx(doc["training"])}
    assert main(["predict", str(out), "--data", data, "--format", "json"]) == 0
    predictions = json.loads(capsys.readouterr().out)["predictions"]
    assert len(predictions) == 300 and set(predictions[0]) == {"row", "sex", "age", "prediction"}
    assert [p["row"] for p in predictions[:3]] == [0, 1, 2]
    assert main(["predict", str(out), "--data", data, "--out", str(project / "p.csv"),
                 "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "written": str(project / "p.csv"),
                                                   "rows": 300}


def test_json_has_no_nan_a_dropped_row_predicts_null(project, capsys):
    frame = pd.read_csv(project / "d.csv")
    frame.loc[4, "x1"] = np.nan
    frame.to_csv(project / "gaps.csv", index=False)
    write(project, "drop.strat", "response y ~ squared\nfeatures x1, intercept\n"
          "stratify age ~ path weight 1\nmissing drop\n")
    assert main(["fit", str(project / "drop.strat"), "--data", str(project / "gaps.csv"),
                 "--out", str(project / "m.json")]) == 0
    capsys.readouterr()
    assert main(["predict", str(project / "m.json"), "--data", str(project / "gaps.csv"),
                 "--format", "json"]) == 0
    text = capsys.readouterr().out
    assert "NaN" not in text
    predictions = json.loads(text)["predictions"]
    assert predictions[4] == {"row": 4, "age": int(frame.age[4]), "prediction": None}
    assert isinstance(predictions[3]["prediction"], float)


def test_json_values_are_plain():
    from stratlang.cli import _plain

    assert _plain({"a": float("nan"), 1: np.float64(np.inf), "c": (np.int64(3), np.bool_(True)),
                   "d": Path("x.csv"), "e": np.float32(0.5)}) == {
        "a": None, "1": None, "c": [3, True], "d": "x.csv", "e": 0.5}


def test_json_verify_and_tune(project, capsys):
    write(project, "sweep.strat", GOOD.replace("weight 10", "weight {1, 10}"))
    spec = str(project / "sweep.strat")
    assert main(["verify", spec, "--weight", "stratify.age=5", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["reference"]["backend"] == "cvxpy" and doc["fast"]["backend"] == "newton"
    assert doc["fast"]["objective"] == pytest.approx(doc["reference"]["objective"], rel=1e-6)
    assert doc["relative_gap"] < 1e-6 and doc["reference"]["seconds"] > 0
    assert re.fullmatch(r"\d+\.\dx (faster|slower)", doc["pace"])
    out = project / "best.json"
    assert main(["tune", spec, "--folds", "3", "--out", str(out), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["metric"] == "rmse" and [row["stratify.age"] for row in doc["table"]] == [1, 10]
    assert set(doc["table"][0]) == {"stratify.age", "mean_rmse", "std_rmse"}
    best = min(doc["table"], key=lambda row: row["mean_rmse"])["stratify.age"]
    assert doc["best"] == {"stratify.age": best} and doc["refit"]["weights"]["stratify.age"] == best
    assert doc["saved"]["model"] == str(out) and out.exists()


def test_json_errors(project, capsys):
    assert main(["fit", str(project / "good.strat"), "--data", str(project / "none.csv"),
                 "--format", "json"]) == 1
    captured = capsys.readouterr()
    assert captured.err == ""
    assert json.loads(captured.out) == {
        "ok": False, "errors": [{"message": f"data file '{project / 'none.csv'}' not found"}]}
    assert main(["show", str(project / "bad.strat"), "--format", "json"]) == 1
    errors = json.loads(capsys.readouterr().out)["errors"]
    assert errors[0] == {"code": "S104", "message": "unknown loss 'sqared'; did you mean 'squared'?",
                         "hint": None, "file": str(project / "bad.strat"), "line": 2,
                         "column": 14, "end_line": 2, "end_column": 20}
    assert main(["score", str(project / "missing.json"), "--data", "x.csv",
                 "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["errors"][0]["message"].startswith(
        "fitted model '")


# ---- messages that name the command line's flags -----------------------------------------------
def test_a_sweep_is_explained_with_the_weight_flag_and_tune(project, capsys):
    import stratlang

    write(project, "two.strat", GOOD.replace("weight 10", "weight {1, 10}")
          .replace("weight 1\n", "weight logspace(0.1, 10, 3)\n"))
    spec = str(project / "two.strat")
    assert main(["fit", spec]) == 1
    assert capsys.readouterr().err == (
        "error: 'stratify.sex' is a sweep {0.1, 1, 10} and 'stratify.age' a sweep {1, 10}: fit "
        "one value of each with --weight stratify.sex=VALUE --weight stratify.age=VALUE, or "
        "choose by cross-validation with `stratlang tune SPEC`\n")
    assert main(["verify", spec, "--weight", "stratify.sex=1", "--format", "json"]) == 1
    message = json.loads(capsys.readouterr().out)["errors"][0]["message"]
    assert message == ("'stratify.age' is a sweep {1, 10}: fit one value with --weight "
                       "stratify.age=VALUE, or choose by cross-validation with `stratlang tune "
                       "SPEC`")
    with pytest.raises(stratlang.StratlangError, match=r"weights=\{'stratify.age': v\}") as info:
        stratlang.load(project / "two.strat").fit(weights={"stratify.sex": 1})  # Python's words
    assert "--weight" not in str(info.value)


def test_other_messages_name_the_flags(project, capsys):
    good = str(project / "good.strat")
    assert main(["fit", good, "--backend", "admm", "--solver", "scs"]) == 1
    assert capsys.readouterr().err == ("error: --solver scs names a solver for a backend that "
                                       "takes one (cvxpy); --backend admm does not\n")
    write(project, "nodata.strat", "response y ~ squared\nfeatures x1\n")
    assert main(["fit", str(project / "nodata.strat")]) == 1
    assert capsys.readouterr().err == ("error: model 'nodata' names no data: give --data FILE, "
                                       "or add a 'data \"file.csv\"' statement to the spec\n")
    assert main(["fit", good, "--graph", "agee=e.csv"]) == 1
    assert capsys.readouterr().err == ("error: --graph agee=e.csv: 'agee' is not a stratified "
                                       "column of model 'demo'; did you mean 'age'?\n")
    assert main(["fit", good, "--graph", "age=e.csv"]) == 1
    assert capsys.readouterr().err.endswith("write `stratify age ~ given` to take its graph "
                                            "from --graph\n")
    write(project, "sweep.strat", GOOD.replace("weight 10", "weight {1, 10}"))
    assert main(["tune", str(project / "sweep.strat"), "--folds", "1000"]) == 1
    assert capsys.readouterr().err == ("error: --folds must lie between 2 and the number of "
                                       "records (300); got 1000\n")


def test_unseen_strata_hint_names_the_unseen_flag(project, capsys):
    assert main(["fit", str(project / "good.strat"), "--out", str(project / "m.json")]) == 0
    frame = pd.read_csv(project / "d.csv")
    frame.loc[0, "age"] = 99
    frame.to_csv(project / "new.csv", index=False)
    capsys.readouterr()
    assert main(["predict", str(project / "m.json"), "--data", str(project / "new.csv")]) == 1
    err = capsys.readouterr().err
    assert "error[S508]: column 'age' has values that are not nodes of its graph: 99" in err
    assert err.endswith("    hint: --unseen common uses the model averaged over the factor's "
                        "nodes\n")
    assert main(["score", str(project / "m.json"), "--data", str(project / "new.csv"),
                 "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["errors"][0]["hint"] == (
        "--unseen common uses the model averaged over the factor's nodes")


# ---- verify: faster or slower ------------------------------------------------------------------
def test_verify_says_faster_or_slower(project, monkeypatch, capsys):
    from stratlang import tune

    slower = tune.Verification("admm", 1.0, 1.0 + 1e-9, 0.2, 0.5, 40)
    faster = tune.Verification("admm", 1.0, 1.0, 0.9, 0.3, 40)
    assert str(slower).endswith("; admm 2.5x slower") and slower.pace == "2.5x slower"
    assert str(faster).endswith("; admm 3.0x faster")
    monkeypatch.setattr(tune, "verify", lambda *args, **kwargs: slower)
    assert main(["verify", str(project / "good.strat")]) == 0
    assert capsys.readouterr().out == ("cvxpy objective 1  (0.200 s)\n"
                                       "admm  objective 1.000000001  (0.500 s, 40 iterations)\n"
                                       "relative gap 1.00e-09; admm 2.5x slower\n")
    assert main(["verify", str(project / "good.strat"), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["pace"] == "2.5x slower" and doc["speedup"] == pytest.approx(0.4)


def test_nonconvex_and_where_models_from_the_cli(tmp_path, rng, capsys):
    frame = pd.DataFrame({"x": rng.normal(size=300), "x2": rng.normal(size=300),
                          "g": rng.integers(0, 3, 300), "s": rng.choice(["F", "M"], 300)})
    frame["y"] = 2 * frame.x + rng.normal(size=300)
    frame.to_csv(tmp_path / "d.csv", index=False)
    spec = write(tmp_path, "m.strat", 'data "d.csv"\nresponse y ~ tukey(c=3)\n'
                 'features x, x2 where s == "F", intercept\nregularize nonzeros(k=1)\n'
                 'stratify g ~ path weight 1\nstratify s ~ complete weight 1\n')
    assert main(["verify", str(spec), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["relaxation"] == "loss tukey(c=3) → huber(M=3); nonzeros dropped"
    assert doc["bound"] is False and doc["relaxation_at_fast"] is not None
    assert main(["fit", str(spec)]) == 0
    assert "ADMM is a local method, started from the convex relaxation's fit" in (
        capsys.readouterr().out)
    assert main(["fit", str(spec), "--backend", "cvxpy"]) == 1
    assert capsys.readouterr().err.startswith(
        "error: backend 'cvxpy' cannot fit model 'm': loss 'tukey' and regularizer 'nonzeros' "
        "are not convex")
    spec.write_text(spec.read_text().replace('s == "F"', 's == "f"'))
    assert main(["fit", str(spec)]) == 1
    assert capsys.readouterr().err == (
        f"{spec}:3:27: error[S508]: where: \"f\" is no node of column 's' (nodes F, M); did you mean "
        "'F'?\n    features x, x2 where s == \"f\", intercept\n"
        "                              ^^^\n")


@pytest.mark.parametrize(("argv", "said"), [
    (["fit", "S", "--weight", "oops"], "argument --weight: expects NAME=VALUE, got 'oops'"),
    (["fit", "S", "--weight", "stratify.age=abc"],
     "argument --weight: expects NAME=VALUE with a number for VALUE, got 'stratify.age=abc'"),
    (["fit", "S", "--graph", "age"], "argument --graph: expects COLUMN=FILE, got 'age'"),
    (["fit", "S", "--option", "=3"], "argument --option: expects NAME=VALUE, got '=3'"),
    (["tune", "S", "--folds", "1"], "argument --folds: must be at least 2, got 1"),
    (["tune", "S", "--folds", "two"], "argument --folds: expects a whole number, got 'two'"),
])
def test_malformed_flags_are_usage_errors(project, capsys, argv, said):
    argv = [str(project / "good.strat") if a == "S" else a for a in argv]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and said in capsys.readouterr().err


def test_option_flags_reach_the_backend_validated(project, capsys):
    good = str(project / "good.strat")
    assert main(["fit", good, "--backend", "admm", "--option", "max_iter=3", "--option",
                 "adaptive=false", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["iteration_limit"] == 3 and doc["iterations"] <= 3
    assert main(["fit", good, "--backend", "admm", "--option", "max_itr=3"]) == 1
    assert "did you mean 'max_iter'?" in capsys.readouterr().err


def test_predictions_carry_the_strata_and_id_columns(project, capsys):
    frame = pd.read_csv(project / "d.csv")
    frame.insert(0, "record", [f"r{i}" for i in range(len(frame))])
    frame.to_csv(project / "ids.csv", index=False)
    assert main(["fit", str(project / "good.strat"), "--out", str(project / "m")]) == 0
    assert main(["predict", str(project / "m.json"), "--data", str(project / "ids.csv"),
                 "--id", "record", "--out", str(project / "p.csv")]) == 0
    written = pd.read_csv(project / "p.csv", index_col=0)
    assert list(written.columns) == ["record", "sex", "age", "prediction"]
    assert (written.record.to_numpy() == frame.record.to_numpy()).all()
    assert (written.age.to_numpy() == frame.age.to_numpy()).all()
    capsys.readouterr()
    assert main(["predict", str(project / "m.json"), "--data", str(project / "ids.csv"),
                 "--id", "recrod"]) == 1
    assert capsys.readouterr().err == ("error: --id recrod: the data have no column 'recrod'; "
                                       "did you mean 'record'?\n")


def test_a_warning_is_told_once_per_command(project, capsys):
    frame = pd.read_csv(project / "d.csv")
    frame.loc[4, "x1"] = np.nan
    frame.to_csv(project / "gaps.csv", index=False)
    write(project, "drop.strat", "response y ~ squared\nfeatures x1, intercept\n"
          "stratify age ~ path weight 1 nodes 20..25\nmissing drop\n")
    assert main(["fit", str(project / "drop.strat"), "--data", str(project / "gaps.csv")]) == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "missing drop" in err


@pytest.mark.parametrize("command", ["check", "show", "fit", "verify", "tune", "plot",
                                     "predict", "score", "fmt", "lsp"])
def test_every_command_has_a_description_and_an_example(command):
    from stratlang.cli import COMMANDS, _parser

    assert set(COMMANDS) == {"check", "show", "fit", "verify", "tune", "plot", "predict",
                             "score", "fmt", "lsp"}
    parser = _parser()
    help_text = parser._subparsers._group_actions[0].choices[command].format_help()
    assert "examples:\n  stratlang " + command in help_text


def test_check_reports_a_basis_larger_than_the_strata_of_the_data(project, capsys):
    # issue 20 #13: check binds the data, so it knows K (2 sexes × 6 ages = 12) as fit does
    write(project, "basis.strat", 'data "d.csv"\nresponse y ~ squared\nfeatures x1\n'
          "stratify sex ~ complete\nstratify age ~ path\nbasis 50\n")
    assert main(["check", str(project / "basis.strat")]) == 1
    err = capsys.readouterr().err
    assert err == (f"{project / 'basis.strat'}:6:7: error[S209]: basis 50 exceeds the K = 12 strata: "
                   "at most 12 eigenvectors\n    basis 50\n          ^^\n")
    write(project, "basis.strat", 'data "d.csv"\nresponse y ~ squared\nfeatures x1\n'
          "stratify sex ~ complete\nstratify age ~ path\nbasis 12\n")
    assert main(["check", str(project / "basis.strat")]) == 0


def test_rows_filter_fits_and_scores_the_rows_it_selects(project, capsys):
    good, data = str(project / "good.strat"), str(project / "d.csv")
    frame = pd.read_csv(data)
    assert main(["fit", good, "--rows", 'age != 20 and sex in {F, M}', "--format", "json",
                 "--out", str(project / "f")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["records"] == int((frame.age != 20).sum())
    assert main(["score", str(project / "f.json"), "--data", data, "--rows",
                 "age in {21, 22}", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"]


@pytest.mark.parametrize(("rows", "said"), [
    ('sx == "F"', "--rows:1:1: error[S501]: the data have no column 'sx'; did you mean 'sex'?\n"
                  '    sx == "F"\n    ^^^^^^^^^\n'),
    ('sex = "F"', "--rows:1:5: error[S001]: unexpected '='; expected '!=', '==', 'in'\n"
                  '    sex = "F"\n        ^\n'),
    ('sex == "X"', "--rows:1:1: error[S507]: no row of the 300 passes the filter\n"),
])
def test_a_bad_rows_filter_is_positioned_in_its_own_text(project, capsys, rows, said):
    assert main(["fit", str(project / "good.strat"), "--rows", rows]) == 1
    assert capsys.readouterr().err.startswith(said)


def test_data_from_standard_input(project):
    data = (project / "d.csv").read_text()
    fit = run("fit", str(project / "good.strat"), "--data", "-", "--format", "json",
              stdin=data)
    assert fit.returncode == 0, fit.stderr
    assert json.loads(fit.stdout)["records"] == 300
    assert run("fit", str(project / "good.strat"), "--out", str(project / "m")).returncode == 0
    predicted = run("predict", str(project / "m.json"), "--data", "-", stdin=data)
    assert predicted.returncode == 0 and predicted.stdout.startswith(",sex,age,prediction\n")
    ragged = run("check", str(project / "good.strat"), "--data", "-",
                 stdin="sex,age,x1,x2,y\nF,20,1,2\n")
    assert ragged.returncode == 1
    assert ragged.stderr == ("error: line 2 of the data on standard input has 4 fields where "
                             "the header has 5\n")
    unclosed = run("check", str(project / "good.strat"), "--data", "-",
                   stdin='sex,age,x1,x2,y\nF,20,1,2,3\nM,"30,1,2,3\n')
    assert unclosed.stderr == ("error: line 3 of the data on standard input opens a quoted field "
                               "that is never closed (a '\"' without its partner)\n")
    both = run("fit", "-", "--data", "-", stdin=data)
    assert both.returncode == 1
    assert both.stderr == "error: SPEC and --data cannot both be '-': standard input holds one\n"


def _help(command: str) -> str:
    from stratlang.cli import _parser

    parser = _parser()
    return " ".join(parser._subparsers._group_actions[0].choices[command].format_help().split())


@pytest.mark.parametrize("command", ["fit", "tune"])
def test_backend_help_lists_the_registered_backends_and_the_default_order(command):
    from stratlang.backends import BACKENDS, automatic

    said = _help(command)
    assert f"--backend BACKEND fitting backend: {', '.join(BACKENDS.names())} (default: " in said
    stratified = ", ".join(b.name for b in automatic("stratified"))
    assert f"the first of {stratified} that fits for a stratified model" in said
    assert "subgradient for a personalized model" in said


@pytest.mark.parametrize("command", ["fit", "verify"])
def test_option_help_examples_are_options_a_backend_takes(command):
    from stratlang.backends import BACKENDS

    examples = re.search(r"--option NAME=VALUE .*?e\.g\. (\S+) or (\S+) ", _help(command))
    assert examples is not None
    for example in examples.groups():
        name = example.partition("=")[0]
        assert any(name in b.options for b in BACKENDS.entries()), example


def test_the_top_level_help_names_every_command():
    from stratlang.cli import COMMANDS, _parser

    said = " ".join(_parser().format_help().split())
    assert f"stratlang command line: {', '.join(COMMANDS)}" in said
    assert all(name in said for name in ("fmt", "lsp"))


def test_an_id_column_named_like_a_prediction_is_refused(project, capsys):
    frame = pd.read_csv(project / "d.csv").assign(prediction=1.0)
    frame.to_csv(project / "clash.csv", index=False)
    assert main(["fit", str(project / "good.strat"), "--out", str(project / "m")]) == 0
    capsys.readouterr()
    assert main(["predict", str(project / "m.json"), "--data", str(project / "clash.csv"),
                 "--id", "prediction"]) == 1
    assert capsys.readouterr().err == ("error: --id prediction: the predictions have a column "
                                       "of that name; rename the data's column to carry it\n")
