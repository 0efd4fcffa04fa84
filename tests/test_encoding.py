"""What training learned, as one object (:class:`stratlang.data.encoding.Encoding`): a frame
bound through it is bound as training bound its data — whatever the columns' order, with
unseen strata under each policy, with rows `missing drop` leaves out — and predict, score,
tune's folds and Dask's partitions all bind through it; it is saved and read back as one
object; and the fitted model keeps it, not the API ``Model``."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import stratlang
from stratlang.data.design import Design
from stratlang.data.encoding import Encoding
from stratlang.persistence import encoding_document, read_encoding

from .conftest import ROOT
from .test_layers import PACKAGE, imported

SPEC = ("response y ~ squared offset o\nfeatures x, standardize(u), categorical(c), intercept\n"
        "weights w\nmissing drop\nregularize 0.1 * sum_squares\n"
        "stratify s ~ star weight 2\nstratify h ~ path weight 1\n")
V1 = ROOT / "tests" / "data" / "saved_v1"  # files saved by the stratlang of format version 1


def people(rng: np.random.Generator, n: int) -> pd.DataFrame:
    frame = pd.DataFrame({"s": rng.choice(["a", "b", "c"], n), "h": rng.integers(0, 3, n),
                          "x": rng.normal(size=n), "u": rng.normal(5, 3, n),
                          "c": rng.choice(["p", "q", "r"], n), "o": 0.1 * rng.normal(size=n),
                          "w": rng.choice([0.5, 1.0, 2.0], n)})
    frame["y"] = (frame.x * (frame.s == "a") + 0.2 * frame.u + frame.h + (frame.c == "q")
                  + frame.o + 0.1 * rng.normal(size=n))
    return frame


@pytest.fixture
def train(rng) -> pd.DataFrame:
    frame = people(rng, 240)
    frame.loc[frame.index[::41], "u"] = np.nan  # left out by `missing drop`
    return frame


@pytest.fixture
def fitted(train) -> stratlang.FittedStratified:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stratlang.DataWarning)
        fit = stratlang.load(SPEC).fit(train, backend="admm")
    assert isinstance(fit, stratlang.FittedStratified)
    return fit


def arrays(design: Design) -> dict[str, object]:
    """What a bound design holds for its records."""
    return {"x": design.x, "y": design.y, "z": design.z, "offset": design.offset,
            "weight": design.weight, "index": list(design.index), "codes": design.codes,
            "rows": design.rows}


def assert_same(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, np.ndarray) or value is None:
            np.testing.assert_array_equal(got[key], value, err_msg=key)
        else:
            assert got[key] == value, key


def quiet_bind(encoding: Encoding, frame: pd.DataFrame, **how) -> Design:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stratlang.DataWarning)
        design = encoding.bind(frame, **how)
    assert isinstance(design, Design)
    return design


# ---- binding ---------------------------------------------------------------------------------
def test_the_training_frame_binds_again_as_it_was_learned_in_any_column_order(train):
    model = stratlang.load(SPEC).ir
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stratlang.DataWarning)
        encoding, learned = Encoding.learn(model, train)
    assert isinstance(learned, Design)
    assert encoding.strata is not None and encoding.strata.k == 4 * 3  # (a star has its hub, `(common)`)
    assert encoding.rows == ("x", "standardize(u)", "c[T.q]", "c[T.r]", "intercept")
    kept = train.dropna()
    assert encoding.features["standardize(u)"]["center"] == pytest.approx(kept.u.mean())
    reordered = train[list(reversed(train.columns))]
    assert_same(arrays(quiet_bind(encoding, reordered)), arrays(learned))
    assert len(learned.z) == len(kept)  # (the 6 rows missing u left out)


def test_predict_and_score_bind_new_data_through_the_fits_encoding(fitted, rng):
    new = people(rng, 50)
    new.loc[new.index[[3, 17]], "u"] = np.nan
    new = new.sample(frac=1.0, random_state=1)[["y", "u", "h", "c", "w", "o", "x", "s"]]
    bound = quiet_bind(fitted.encoding, new, with_response=False)
    theta = fitted.theta_array[bound.z][:, :, 0]
    expected = np.einsum("ij,ij->i", bound.x, theta) + bound.offset
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stratlang.DataWarning)
        predicted = fitted.predict(new).prediction
        scored = fitted.score(new)
    assert predicted.isna().tolist() == new.u.isna().tolist()  # left out: no prediction
    np.testing.assert_allclose(predicted.dropna().to_numpy(), expected, rtol=1e-12)
    assert list(predicted.dropna().index) == list(bound.index)
    kept = new.dropna()
    residual = kept.y.to_numpy() - expected
    rmse = np.sqrt(np.sum(kept.w * residual ** 2) / np.sum(kept.w))
    assert scored["rmse"] == pytest.approx(rmse, rel=1e-12)


@pytest.mark.parametrize("unseen", ["error", "hub", "common"])
def test_unseen_strata_are_bound_alike_by_the_encoding_predict_and_score(fitted, rng, unseen):
    new = people(rng, 6)
    new["s"] = ["a", "zz", "b", "zz", "c", "a"]
    if unseen == "error":
        said = "column 's' has values that are not nodes of its graph: 'zz' in rows 1, 3"
        for attempt in (lambda: fitted.encoding.bind(new),
                        lambda: fitted.predict(new), lambda: fitted.score(new)):
            with pytest.raises(stratlang.SpecError) as info:
                attempt()
            assert [d.message for d in info.value.diagnostics] == [said]
        return
    bound = quiet_bind(fitted.encoding, new, unseen=unseen, with_response=False)
    expected = (np.einsum("ij,ij->i", bound.x, fitted.theta_of(bound)[:, :, 0])
                + bound.offset)
    predicted = fitted.predict(new, unseen=unseen).prediction.to_numpy()
    np.testing.assert_allclose(predicted, expected, rtol=1e-12)
    if unseen == "hub":  # the star's centre: the '(common)' node of s, at the row's h
        centre = fitted.strata.factors[0].hub
        assert centre is not None
        z_hub = centre * 3 + new.h.to_numpy()[1]
        theta = fitted.theta_array[z_hub, :, 0]
        assert predicted[1] == pytest.approx(bound.x[1] @ theta + bound.offset[1])
    else:  # the mean over s's nodes, at the row's h
        mean = fitted.theta_array.reshape(4, 3, -1)[:, new.h.to_numpy()[1]].mean(axis=0)
        assert predicted[1] == pytest.approx(bound.x[1] @ mean + bound.offset[1])
    residual = new.y.to_numpy() - predicted
    rmse = np.sqrt(np.sum(new.w * residual ** 2) / np.sum(new.w))
    assert fitted.score(new, unseen=unseen)["rmse"] == pytest.approx(rmse, rel=1e-12)


def test_tune_binds_every_fold_through_the_encoding_of_the_whole_data(train, monkeypatch):
    model = stratlang.load(SPEC.replace("weight 2", "weight {1, 10}"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stratlang.DataWarning)
        whole_encoding, whole = Encoding.learn(model.ir, train)
    assert isinstance(whole, Design)
    folds: list[tuple[Encoding, Design]] = []
    bind = Encoding.bind

    def spy(self, frame, **how):
        design = bind(self, frame, **how)
        folds.append((self, design))
        return design

    monkeypatch.setattr(Encoding, "bind", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.tune(train, folds=3, backend="admm")
    assert len(folds) >= 3  # each fold's training records (and its validation records)
    position = {label: i for i, label in enumerate(whole.index)}
    for encoding, design in folds:
        assert encoding.features.states == whole_encoding.features.states
        assert encoding.classes == whole_encoding.classes
        assert encoding.strata is not None and encoding.strata.k == whole.strata.k
        rows = [position[label] for label in design.index]
        np.testing.assert_array_equal(design.x, whole.x[rows])
        np.testing.assert_array_equal(design.z, whole.z[rows])
        np.testing.assert_array_equal(design.weight, whole.weight[rows])


def test_dask_partitions_bind_through_the_encoding(train):
    from stratlang.backends.dask import _bind_partition, _split_records
    from stratlang.solvers.distributed import Blocks

    spec = SPEC.replace("stratify s ~ star weight 2\n", "")  # (one factor: h)
    model = stratlang.load(spec).ir
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stratlang.DataWarning)
        encoding, whole = Encoding.learn(model, train)
    assert isinstance(whole, Design)
    blocks = Blocks.even(3, 2, 1)
    pieces = [_bind_partition(encoding, part, f"part-{i}", blocks)
              for i, part in enumerate((train.iloc[:100], train.iloc[100:]))]
    assert {c: sum(p["dropped"].get(c, 0) for p in pieces) for c in ("u",)} == whole.dropped
    expected = _split_records(whole.records, blocks)
    for b in range(len(blocks)):
        mine = [p[b].records for p in pieces if b in p]
        for field in ("x", "y", "z", "offset", "weight"):
            got = np.concatenate([getattr(r, field) for r in mine])
            np.testing.assert_array_equal(got, getattr(expected[b].records, field), field)


# ---- saving ----------------------------------------------------------------------------------
def _round_trip(encoding: Encoding, tmp_path: Path) -> Encoding:
    doc, named = encoding_document(encoding)
    (tmp_path / "encoding.json").write_text(json.dumps(doc))
    np.savez(tmp_path / "encoding.npz", **named)
    with np.load(tmp_path / "encoding.npz") as saved:
        return read_encoding(encoding.model, json.loads((tmp_path / "encoding.json").read_text()),
                             {name: saved[name] for name in saved.files})


def test_a_stratified_encoding_saves_and_reads_back_as_one_object(fitted, rng, tmp_path):
    again = _round_trip(fitted.encoding, tmp_path)
    assert again.rows == fitted.encoding.rows and again.classes is None
    assert again.features.states == fitted.encoding.features.states
    assert again.strata is not None and fitted.strata is not None
    assert list(again.strata.index()) == list(fitted.strata.index())
    for mine, theirs in zip(again.strata.factors, fitted.strata.factors, strict=True):
        np.testing.assert_array_equal(mine.graph.edges, theirs.graph.edges)
        np.testing.assert_array_equal(mine.graph.weights, theirs.graph.weights)
        assert mine.hub == theirs.hub
    new = people(rng, 30)
    assert_same(arrays(quiet_bind(again, new)), arrays(quiet_bind(fitted.encoding, new)))


def test_an_encoding_with_classes_and_an_absent_mask_reads_back(rng, tmp_path):
    frame = people(rng, 150)
    frame["k"] = rng.choice([-1.0, 1.0], len(frame))
    fitted = stratlang.load("response k ~ logistic\nfeatures x, categorical(c) where "
                            "h in {0, 1}, intercept\nstratify h ~ path weight 1\n").fit(frame)
    again = _round_trip(fitted.encoding, tmp_path)
    assert again.classes == (-1.0, 1.0) and [type(c) for c in again.classes] == [float, float]
    assert fitted.encoding.absent is not None
    np.testing.assert_array_equal(again.absent, fitted.encoding.absent)
    assert_same(arrays(quiet_bind(again, frame)), arrays(quiet_bind(fitted.encoding, frame)))


def test_a_personalized_encoding_keeps_its_training_covariates(rng, tmp_path):
    frame = pd.DataFrame({"x": rng.normal(size=60), "a": rng.normal(size=60),
                          "r": rng.choice(["n", "s"], 60)})
    frame["y"] = frame.x * (1 + frame.a) + 0.1 * rng.normal(size=60)
    fitted = stratlang.load("response y ~ squared\nfeatures x, intercept\npersonalize rank 2 "
                            "max_iter 20\ndistance a ~ abs\ndistance r ~ discrete\n").fit(frame)
    again = _round_trip(fitted.encoding, tmp_path)
    assert again.covariates is not None
    pd.testing.assert_frame_equal(again.covariates, fitted.encoding.covariates)
    new = frame.iloc[:5]
    for mine, theirs in zip(again.encode_covariates(new), fitted.encoding.encode_covariates(new),
                            strict=True):
        np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("kind", ["stratified", "personalized"])
def test_a_model_saved_in_format_version_1_loads_and_predicts_as_it_did(kind, tmp_path):
    assert json.loads((V1 / f"{kind}.json").read_text())["version"] == 1
    fitted = stratlang.load_fitted(V1 / kind)
    frame = pd.read_csv(V1 / f"{kind}.csv")
    predicted = fitted.predict(frame)
    pd.testing.assert_frame_equal(predicted.reset_index(drop=True),
                                  pd.read_csv(V1 / f"{kind}_predictions.csv"), check_dtype=False)
    saved = fitted.save(tmp_path / "again")
    assert json.loads(saved.read_text())["version"] == 2
    pd.testing.assert_frame_equal(stratlang.load_fitted(saved).predict(frame), predicted)


# ---- the fitted model without the API Model -------------------------------------------------
def _every_import(path: Path) -> set[str]:
    """Every module a file of the package names in an import, at run time or for
    annotations only (``if TYPE_CHECKING:``): its type dependencies."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.add(f"stratlang.{node.module}" if node.module else "stratlang")
            if node.module is None:
                found |= {f"stratlang.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names = [node.module] if isinstance(node, ast.ImportFrom) else [
                alias.name for alias in node.names]
            found |= {n for n in names if n and n.startswith("stratlang")}
    return found


def test_the_fitted_model_saving_and_tuning_do_not_import_the_api_model():
    # the cycle model ↔ tune ↔ fitted is gone, types included; the file format is read
    # and written without the fitted model's classes (fitted imports it to save itself)
    for module, banned in [("fitted", {"stratlang.model"}),
                           ("tune", {"stratlang.model"}),
                           ("fitting", {"stratlang.model", "stratlang.tune"}),
                           ("persistence", {"stratlang.model"})]:
        assert not _every_import(PACKAGE / f"{module}.py") & banned, module
    runtime = {target for target, _ in imported(PACKAGE / "persistence.py")}
    assert "stratlang.fitted" not in runtime and "stratlang.model" not in runtime
    assert "stratlang.persistence" in {t for t, _ in imported(PACKAGE / "fitted.py")}


def test_using_a_saved_fit_never_loads_the_api_model(tmp_path):
    script = (f"import sys, pandas as pd, stratlang\n"
              f"f = stratlang.load_fitted({str(V1 / 'stratified')!r})\n"
              f"frame = pd.read_csv({str(V1 / 'stratified.csv')!r})\n"
              f"f.predict(frame); f.score(frame); str(f.summary())\n"
              f"f.save({str(tmp_path / 'again')!r})\n"
              f"print('stratlang.model' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"


def test_fitted_model_is_deprecated_and_keeps_what_a_fit_has(fitted, train):
    with pytest.warns(DeprecationWarning, match="fitted.model is deprecated: use fitted.ir"):
        old = fitted.model
    assert old.ir is fitted.ir and old.name == fitted.name and old.text == fitted.text
    pd.testing.assert_frame_equal(old.frame(train), fitted.frame(train))
    with pytest.raises(AttributeError, match=r"use stratlang.Model\(fitted.ir\).fit"):
        old.fit  # noqa: B018
    assert stratlang.Model(fitted.ir).text == fitted.text


def test_node_codes_follow_from_z_when_every_record_has_a_stratum():
    """Binding keeps each record's node per factor only when some record has no stratum
    (unseen='common'); otherwise they follow from z (140 MB not made at the crime scale)."""
    frame = pd.DataFrame({"y": [1.0, 2, 3, 4, 5, 6], "g": ["a", "b", "c", "a", "b", "c"],
                          "h": [0, 1, 0, 1, 0, 1]})
    design = stratlang.load("response y ~ squared\nstratify g ~ path\nstratify h ~ path\n"
                            ).bind(frame)
    assert design.codes is None
    np.testing.assert_array_equal(design.node_codes(),
                                  [[0, 0], [1, 1], [2, 0], [0, 1], [1, 0], [2, 1]])
    np.testing.assert_array_equal(design.z, [0, 3, 4, 1, 2, 5])
