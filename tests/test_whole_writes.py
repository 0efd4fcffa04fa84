"""What a command writes is written whole: a save, a prediction file, a plot or a
formatted spec that fails (or is interrupted) half-way leaves the old file as it was and
no scratch file behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import stratlang
from stratlang.cli import main
from stratlang.outputs import replaced_whole

SPEC = "response y ~ squared\nfeatures x, intercept\nstratify g ~ path weight 1\n"


@pytest.fixture
def fitted():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"g": rng.integers(0, 4, 60), "x": rng.normal(size=60)})
    frame["y"] = frame.x + rng.normal(size=60)
    return stratlang.load(SPEC).fit(frame), frame


class Broken(Exception):
    pass


def test_a_save_cut_short_leaves_the_saved_model_as_it_was(fitted, tmp_path, monkeypatch):
    fit, frame = fitted
    path = fit.save(tmp_path / "m")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def cut_short(file, **arrays):
        with open(file, "wb") as out:
            out.write(b"PK\x03\x04 half an archive")
        raise Broken

    monkeypatch.setattr(np, "savez_compressed", cut_short)
    with pytest.raises(Broken):
        fit.save(tmp_path / "m")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    np.testing.assert_allclose(stratlang.load_fitted(path).predict(frame), fit.predict(frame))


def test_a_failed_write_leaves_no_file_where_there_was_none(tmp_path):
    target = tmp_path / "p.csv"
    with pytest.raises(Broken), replaced_whole(target) as scratch:
        scratch.write_text("half")
        raise Broken
    assert list(tmp_path.iterdir()) == []


def test_a_whole_write_keeps_the_file_mode_and_gives_a_new_file_the_usual_one(tmp_path):
    kept = tmp_path / "kept.csv"
    kept.write_text("old")
    kept.chmod(0o640)
    with replaced_whole(kept) as scratch:
        scratch.write_text("new")
    assert kept.read_text() == "new" and stat.S_IMODE(kept.stat().st_mode) == 0o640
    fresh = tmp_path / "fresh.csv"
    with replaced_whole(fresh) as scratch:
        scratch.write_text("new")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~mask


def test_predictions_cut_short_leave_the_old_file(fitted, tmp_path, monkeypatch, capsys):
    fit, frame = fitted
    model = fit.save(tmp_path / "m")
    frame.to_csv(tmp_path / "d.csv", index=False)
    out = tmp_path / "p.csv"
    out.write_text("the old predictions\n")

    def cut_short(self, path, *args, **kwargs):
        Path(path).write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", cut_short)
    assert main(["predict", str(model), "--data", str(tmp_path / "d.csv"),
                 "--out", str(out)]) == 130
    assert capsys.readouterr().err == "interrupted\n"
    assert out.read_text() == "the old predictions\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "m.json", "m.npz", "p.csv"]
