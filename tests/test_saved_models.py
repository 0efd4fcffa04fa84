"""A saved model that was damaged or edited by hand is checked against its schema when
loaded: a clear stratlang error naming the file and the key, never an internal error."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import stratlang

from .fuzz_saved import BASE_SPECS, Damage, _json, _npz, damaged_models, saved_models, saved_outcome


def load(tmp_path: Path, doc: dict, arrays: dict) -> stratlang.FittedModel:
    return stratlang.load_fitted(Damage("", "", _json(doc), _npz(arrays)).write(tmp_path))


@pytest.mark.parametrize("base", sorted(BASE_SPECS))
def test_the_undamaged_models_load_and_predict(base, tmp_path):
    doc, arrays = saved_models()[base]
    outcome = saved_outcome(Damage(base, "", _json(doc), _npz(arrays)), tmp_path)
    assert (outcome.kind, outcome.message) == ("accepted", "")


def _without(key):
    def edit(doc, arrays):
        del doc[key]
    return edit


def _set(key, value):
    def edit(doc, arrays):
        doc[key] = value
    return edit


def _set_encoding(key, value):
    def edit(doc, arrays):
        doc["encoding"][key] = value
    return edit


def _cut(name):
    def edit(doc, arrays):
        arrays[name] = arrays[name][:-1]
    return edit


def _labels_cut(doc, arrays):
    doc["encoding"]["factors"][0]["labels"][0].pop()


def _state_text(doc, arrays):
    doc["encoding"]["features"]["standardize(u)"]["scale"] = "a"


def _unknown_column(doc, arrays):
    doc["encoding"]["factors"][0]["columns"] = ["z"]


def _edge_outside(doc, arrays):
    arrays["edges_0"] = arrays["edges_0"] + 5


DAMAGE = "is damaged or was edited: "


@pytest.mark.parametrize(("edit", "message"), [
    # what an independent campaign found: KeyError 'info', TypeError on None, IndexError,
    # and arrays of the wrong length used as they were
    (_without("info"), DAMAGE + "info: missing"),
    (_set_encoding("factors", None), DAMAGE + "encoding.factors: expected a list, got None"),
    (_set_encoding("rows", None), None),  # (absent rows: derived from the spec, as in old files)
    (_set_encoding("rows", ["x"]), DAMAGE + "array 'theta' (in model.npz): expected shape 3 × 1 × 3, "
                                   "got 3 × 3 × 3"),
    (_labels_cut, DAMAGE + "encoding.factors[0].labels: 2 labels for 1 column(s) and 3 nodes"),
    (_cut("theta"), DAMAGE + "array 'theta' (in model.npz): expected shape 3 × 3 × 3, got "
                             "2 × 3 × 3"),
    (_cut("weights_0"), DAMAGE + "array 'weights_0' (in model.npz): expected shape 2, got 1"),
    (_without("weights"), DAMAGE + "weights: missing"),
    (_set("weights", {}), DAMAGE + "weights: no weight for 'stratify.g'"),
    (_set_encoding("classes", [0, 1]), DAMAGE + "array 'theta' (in model.npz): expected shape 3 × 3 × "
                                       "2, got 3 × 3 × 3"),
    (_set_encoding("classes", None), DAMAGE + "encoding.classes: loss 'multinomial' needs at least two classes"),
    (_state_text, DAMAGE + "encoding.features.standardize(u).scale: expected a finite number, got 'a'"),
    (_set_encoding("features", {}), DAMAGE + "encoding.features: the learned state of 'standardize(u)' is "
                                    "missing"),
    (_unknown_column, DAMAGE + "encoding.factors[0].columns: ['z'] is no stratification of the spec"),
    (_edge_outside, DAMAGE + "array 'edges_0': a node outside 0..2 (encoding.factors[0].n)"),
    (_without("encoding"), DAMAGE + "encoding: missing"),
    (_set("version", 3), "is of format version 3, written by a newer stratlang; this "
                         "stratlang reads versions 1, 2"),
    (_set("version", 0), "is of format version 0, saved by an older stratlang; this "
                         "stratlang reads versions 1, 2: fit the model again and save it"),
    (_set("version", "1"), DAMAGE + "version: expected a whole number ≥ 0, got '1'"),
])
def test_a_damaged_model_is_named_with_its_key(edit, message, tmp_path):
    doc, arrays = copy.deepcopy(saved_models()["multinomial"][0]), dict(
        saved_models()["multinomial"][1])
    edit(doc, arrays)
    if message is None:
        assert load(tmp_path, doc, arrays).rows == ("x", "standardize(u)", "intercept")
        return
    with pytest.raises(stratlang.StratlangError) as info:
        load(tmp_path, doc, arrays)
    assert str(info.value) == f"fitted model '{tmp_path / 'model.json'}' {message}"


def test_edited_feature_states_that_change_the_rows_are_refused_at_predict(tmp_path):
    doc, arrays = copy.deepcopy(saved_models()["where"][0]), saved_models()["where"][1]
    (key,) = doc["encoding"]["features"]
    doc["encoding"]["features"][key]["levels"].append("s")  # one more indicator column than θ has
    fitted = load(tmp_path, doc, arrays)
    from .fuzz_saved import base_frame

    with pytest.raises(stratlang.StratlangError, match=r"give the parameter rows x, "
                       r"c\[T\.q\], c\[T\.r\], c\[T\.s\], intercept; θ has x, c\[T\.q\], "
                       r"c\[T\.r\], intercept: the saved model was damaged or edited"):
        fitted.predict(base_frame())


def test_a_damaged_arrays_file_is_named(tmp_path):
    doc, arrays = saved_models()["gaussian"]
    path = Damage("", "", _json(doc), _npz(arrays)[:100]).write(tmp_path)
    with pytest.raises(stratlang.StratlangError, match="cannot be read"):
        stratlang.load_fitted(path)
    np.save(tmp_path / "lone.npy", np.zeros(3))
    (tmp_path / "lone.npy").rename(path.with_suffix(".npz"))
    with pytest.raises(stratlang.StratlangError, match="it holds no named arrays"):
        stratlang.load_fitted(path)
    path.write_text(json.dumps({"format": ["stratlang-fitted"]}))
    with pytest.raises(stratlang.StratlangError, match="is not a stratlang fitted model"):
        stratlang.load_fitted(path)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(damaged_models())
def test_any_damage_gives_a_stratlang_error_or_a_working_model(damage):
    with tempfile.TemporaryDirectory() as directory:
        outcome = saved_outcome(damage, Path(directory))
    assert outcome.kind != "bug", outcome.message


@pytest.mark.parametrize(("loss", "values"), [("logistic", [-1.0, 1.0]),
                                               ("multinomial", [0.0, 1.0, 2.0]),
                                               ("multinomial", ["a", "b", "c"])])
def test_class_labels_keep_their_type_through_save_and_load(loss, values, rng, tmp_path):
    # floats were saved as ints: -1.0 came back as -1, probability_0.0 as probability_0
    import pandas as pd

    frame = pd.DataFrame({"x": rng.normal(size=90), "g": rng.integers(0, 3, 90)})
    frame["y"] = np.array(values, dtype=object)[rng.integers(0, len(values), 90)]
    if isinstance(values[0], float):
        frame["y"] = frame.y.astype(float)
    fitted = stratlang.load(f"response y ~ {loss}\nfeatures x\nstratify g ~ path weight 1\n"
                            ).fit(frame)
    again = stratlang.load_fitted(fitted.save(tmp_path / "m"))
    assert again.classes == fitted.classes == tuple(values)
    assert [type(c) for c in again.classes] == [type(v) for v in values]
    expected, got = fitted.predict(frame), again.predict(frame)
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected)


def test_damaged_theta_parts_of_a_cluster_fit_are_named(tmp_path):
    # a Dask fit with an output directory: model.json, model.npz and θ as Parquet parts
    import pandas as pd

    from stratlang.backends.theta_parts import PARTS, column_names

    from .fuzz_saved import base_frame

    fitted = stratlang.load(BASE_SPECS["multinomial"]).fit(base_frame())
    fitted.write_metadata(tmp_path)
    (tmp_path / PARTS).mkdir()
    part = tmp_path / PARTS / "part-0.parquet"
    columns = column_names(fitted.rows, fitted.outputs)
    whole = pd.DataFrame(fitted.theta_array.reshape(3, -1), columns=columns)
    whole.insert(0, "stratum", np.arange(3))
    whole.to_parquet(part)
    np.testing.assert_array_equal(stratlang.load_fitted(tmp_path).theta_array,
                                  fitted.theta_array)
    whole.drop(columns=columns[0]).to_parquet(part)
    with pytest.raises(stratlang.StratlangError, match=f"the θ part '{part}' cannot be read"):
        stratlang.load_fitted(tmp_path).theta_array  # noqa: B018
    part.write_bytes(b"PAR1 not really")
    with pytest.raises(stratlang.StratlangError, match=f"the θ part '{part}' cannot be read"):
        stratlang.load_fitted(tmp_path).predict(base_frame())
    whole.assign(stratum=[0.5, 1, 2]).to_parquet(part)
    with pytest.raises(stratlang.StratlangError, match="hold strata that are not whole numbers"):
        stratlang.load_fitted(tmp_path).theta_array  # noqa: B018
