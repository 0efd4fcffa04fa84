"""The local Dask cluster a fit starts: a start that fails says why, and Dask's own chatter
(port and socket warnings, its log records) does not reach the caller."""

from __future__ import annotations

import itertools
import logging
import subprocess
import sys
import textwrap
import warnings

import pytest

import stratlang
from stratlang.backends import cluster
from stratlang.cli import main

from .conftest import write

distributed = pytest.importorskip("distributed")

SPEC = 'model m\ndata "d.csv"\nresponse y ~ squared\nfeatures x\nstratify g ~ path weight 1\n'


@pytest.fixture
def project(tmp_path, rng):
    import pandas as pd

    frame = pd.DataFrame({"g": rng.integers(0, 4, 80), "x": rng.normal(size=80)})
    frame["y"] = frame.x * frame.g + rng.normal(size=80)
    frame.to_csv(tmp_path / "d.csv", index=False)
    write(tmp_path, "m.strat", SPEC)
    return tmp_path


def refusing_cluster(error: BaseException):
    """A LocalCluster that fails to start with ``error`` (as distributed raises it: the
    cause under a RuntimeError)."""
    def start(*args, **kwargs):
        raise RuntimeError("Nanny failed to start.") from error
    return start


def test_a_cluster_that_cannot_start_says_why(project, monkeypatch, capsys):
    too_many = AssertionError("Status.init")
    too_many.__cause__ = OSError(24, "Too many open files")
    monkeypatch.setattr(distributed, "LocalCluster", refusing_cluster(too_many))
    assert main(["fit", str(project / "m.strat"), "--backend", "dask"]) == 1
    assert capsys.readouterr().err == (
        "error: the local Dask cluster (2 worker processes) could not start: too many open "
        "files (raise the limit with `ulimit -n`, or use fewer --workers)\n")
    monkeypatch.setattr(distributed, "LocalCluster", refusing_cluster(
        AssertionError("Status.init")))  # nothing more said: distributed's own words
    with pytest.raises(stratlang.StratlangError, match=r"^the local Dask cluster \(1 worker "
                       r"process\) could not start: Nanny failed to start\.$"):
        stratlang.load(project / "m.strat").fit(backend="dask", options={"workers": 1})


def test_the_reason_is_read_from_the_exception_chain():
    def chained(*errors: BaseException) -> BaseException:
        for outer, inner in itertools.pairwise(errors):
            outer.__cause__ = inner
        return errors[0]

    assert cluster.start_failure(chained(
        RuntimeError("Nanny failed to start."), AssertionError("Status.starting"),
        RuntimeError("Nanny failed to start worker process"))) == (
        "its worker processes exited while starting; in a script, one that fits with the dask "
        "backend must do so under `if __name__ == \"__main__\":` (the worker processes import "
        "the script again)")
    assert cluster.start_failure(chained(RuntimeError("Nanny failed to start."),
                                         OSError(28, "No space left on device"))) == (
        "no space left on device")


def test_a_script_without_a_main_guard_is_told_and_shows_no_dask_chatter(project):
    # its worker processes import the script again, and once started clusters of their
    # own: "Port 8787 is already in use" warnings and tracebacks from every worker
    script = write(project, "fit.py", textwrap.dedent("""\
        import stratlang
        stratlang.load("m.strat").fit(backend="dask", options={"workers": 1})
        """))
    out = subprocess.run([sys.executable, str(script)], cwd=project, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last == (
        "stratlang.backends.cluster.ClusterStartError: the local Dask cluster (1 worker "
        "process) could not start: its worker processes exited while starting; in a script, "
        "one that fits with the dask backend must do so under `if __name__ == \"__main__\":` "
        "(the worker processes import the script again)")
    assert "Port" not in out.stderr and "Warning" not in out.stderr
    assert "Nanny" not in out.stderr


def test_dask_chatter_stays_inside_the_fit(project, monkeypatch, caplog):
    real = distributed.LocalCluster

    def chatty(*args, **kwargs):
        # what distributed says when its dashboard port is taken, and a socket left open
        warnings.warn_explicit("Port 8787 is already in use.", UserWarning, "node.py", 195,
                               module="distributed.node")
        warnings.warn_explicit("unclosed <socket.socket fd=12>", ResourceWarning, "events.py",
                               1, module="asyncio.events")
        logging.getLogger("distributed.comm.tcp").warning("socket closed")
        return real(*args, **kwargs)

    monkeypatch.setattr(distributed, "LocalCluster", chatty)
    level = logging.getLogger("distributed").level
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fitted = stratlang.load(project / "m.strat").fit(backend="dask",
                                                         options={"workers": 1})
    assert fitted.info["status"] == "optimal"
    assert [str(w.message) for w in seen] == []
    assert [r.getMessage() for r in caplog.records
            if r.name.split(".")[0] in ("distributed", "tornado", "asyncio")
            and r.levelno >= logging.WARNING] == []
    assert logging.getLogger("distributed").level == level  # put back
