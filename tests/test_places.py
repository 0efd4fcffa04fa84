"""Where stratlang reads and writes: a spec, a file or standard input is bounded before it
is read; a device or a pipe is named for what it is; a spec chooses no place outside its
own folder; the places a fit writes to are checked before it starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import stratlang
from stratlang.cli import main
from stratlang.language import limits

from .conftest import write

SPEC = 'data "d.csv"\nresponse y ~ squared\nfeatures x\nstratify g ~ path\n'
DATA = "y,x,g\n1,2,0\n2,3,1\n3,5,0\n4,4,1\n"


@pytest.fixture
def project(tmp_path, monkeypatch):
    write(tmp_path, "m.strat", SPEC)
    write(tmp_path, "d.csv", DATA)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def errors_of(capsys, *argv: str) -> str:
    assert main(list(argv)) == 1
    return capsys.readouterr().err


def test_standard_input_is_read_up_to_the_spec_limit():
    # `stratlang check - < /dev/zero` read until memory ran out
    with open("/dev/zero", "rb") as zeros:
        out = subprocess.run([sys.executable, "-m", "stratlang", "check", "-"], stdin=zeros,
                             capture_output=True, text=True, timeout=120)
    assert (out.returncode, out.stderr) == (1, "error: the spec on standard input has more "
                                               "than 4 MiB; a spec has at most 1,000,000 "
                                               "characters\n")


def test_a_spec_file_too_large_is_refused_before_it_is_read(project, capsys):
    with open(project / "big.strat", "wb") as big:
        big.truncate(limits.MAX_SPEC_BYTES + 1)
    assert errors_of(capsys, "check", "big.strat") == (
        "error: spec file 'big.strat' is 4 MiB; a spec has at most 1,000,000 characters\n")


def test_data_given_on_the_command_line_is_bounded(project, capsys):
    with open(project / "big.csv", "wb") as big:
        big.truncate(4 * 2**30)  # sparse: nothing is written to disk
    assert errors_of(capsys, "check", "m.strat", "--data", "big.csv") == (
        "error: data file 'big.csv' is 4.0 GiB; stratlang reads files of at most 1.0 GiB\n")


@pytest.mark.parametrize(("make", "kind"), [
    (lambda path: os.mkfifo(path), "a named pipe (FIFO)"),
    (lambda path: os.symlink("/dev/zero", path), "a character device"),
    (lambda path: path.mkdir(), "a directory"),
])
def test_devices_pipes_and_folders_are_named_for_what_they_are(project, capsys, make, kind):
    make(project / "odd.csv")
    assert errors_of(capsys, "check", "m.strat", "--data", "odd.csv") == (
        f"error: data file 'odd.csv' is {kind}, not a file\n")
    write(project, "odd.strat", SPEC.replace("d.csv", "odd.csv"))
    assert errors_of(capsys, "check", "odd.strat") == (
        f"odd.strat:1:6: error[S401]: data file 'odd.csv' is {kind}, not a file (looked in "
        f"{project})\n    data \"odd.csv\"\n         ^^^^^^^^^\n")


@pytest.mark.parametrize("place", ['"../../../x"', '"/tmp/x"', '"fit/../../x"', '"~/x"'])
def test_a_spec_writes_nowhere_outside_its_folder(project, place):
    text = SPEC + f"solver dask output {place}\n"
    with pytest.raises(stratlang.SpecError) as info:
        stratlang.load(text)
    [diagnostic] = info.value.diagnostics
    assert (diagnostic.span.line, diagnostic.span.column, diagnostic.message) == (
        5, 20, "'output' written in a spec must be a folder below the spec's own (no absolute "
               "path, no '..'); choose another place on the command line or from Python")
    assert stratlang.load(SPEC + 'solver dask output "fit/below"\n').ir.solver is not None


@pytest.fixture
def no_fit(monkeypatch):
    """Fitting fails the test: the place must be refused before."""
    def fit(*args, **kwargs):
        raise AssertionError("fitted before the output place was checked")
    monkeypatch.setattr(stratlang.Model, "fit", fit)
    monkeypatch.setattr(stratlang.Model, "tune", fit)


@pytest.mark.parametrize(("out", "message"), [
    ("/dev/null", "--out '/dev/null' is a character device, not a file to write"),
    ("sub", "--out 'sub' is a directory: give a file name in it, e.g. --out sub/model"),
    ("missing/m", "--out 'missing/m': the folder 'missing' does not exist"),
    ("pipe", "--out 'pipe' is a named pipe (FIFO), not a file to write"),
    ("m2", "--out 'm2.json' is a directory, not a file to write"),
])
@pytest.mark.parametrize("command", ["fit", "tune"])
def test_the_place_of_out_is_checked_before_the_fit(project, capsys, no_fit, out, message,
                                                    command):
    (project / "sub").mkdir()
    (project / "m2.json").mkdir()
    os.mkfifo(project / "pipe")
    assert errors_of(capsys, command, "m.strat", "--out", out) == f"error: {message}\n"


def test_the_dask_output_folder_is_checked_before_the_fit(project, capsys, no_fit):
    write(project, "taken", "a file")
    assert errors_of(capsys, "fit", "m.strat", "--backend", "dask", "--output", "taken") == (
        "error: --output 'taken' is a regular file, not a folder\n")


def test_a_good_out_is_written(project, capsys):
    (project / "sub").mkdir()
    assert main(["fit", "m.strat", "--out", "sub/m"]) == 0
    assert capsys.readouterr().out.endswith("  saved sub/m.json and sub/m.npz\n")
    assert (project / "sub" / "m.json").is_file() and (project / "sub" / "m.npz").is_file()


@pytest.mark.parametrize(("make", "kind"), [
    (lambda path: os.mkfifo(path), "a named pipe (FIFO)"),
    (lambda path: os.symlink("/dev/zero", path), "a character device"),
])
def test_a_fitted_model_that_is_a_pipe_or_a_device(project, capsys, make, kind):
    make(project / "fit.json")
    assert errors_of(capsys, "predict", "fit.json", "--data", "d.csv") == (
        f"error: fitted model 'fit.json' is {kind}, not a file\n")
