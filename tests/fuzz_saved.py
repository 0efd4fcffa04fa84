"""Corrupted saved models: hypothesis strategies that damage the JSON document or the
arrays of a few fitted models (a key deleted or given a value of another type, a list cut
or grown, an array of another shape or kind, bytes cut off), and the outcome of loading
one and using it (summary, predict, score) — a stratlang error or a working model, never
another exception. Used by tests/test_saved_models.py and by ``make fuzz``."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import strategies as st

import stratlang
from stratlang.language.errors import StratlangError

# small fits whose files are damaged: several outputs and classes, learned feature states,
# a feature present in some strata, a grid and a star's hub, a personalized model
BASE_SPECS = {
    "multinomial": ("response k ~ multinomial\nfeatures x, standardize(u), intercept\n"
                    "stratify g ~ path weight 1\n"),
    "gaussian": "response (y, y2) ~ gaussian\nstratify (g, h) ~ grid weight 1\n",
    "where": ("response y ~ huber\nfeatures x, categorical(c) where g in {0, 1}, intercept\n"
              "regularize 0.1 * l1\nstratify g ~ star weight 1\n"),
    "personalized": ("response y ~ squared\nfeatures x, intercept\n"
                     "personalize rank 2 neighbors 3 max_iter 20\n  distance u ~ abs\n"),
}
ODD_VALUES = [None, True, 0, -1, 1.5, 10**30, 1e308, "", "x", [], [0], [[]], {}, {"a": 1},
              ["a", "b"], [1, 2, 3]]


def base_frame() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 120
    frame = pd.DataFrame({"x": rng.normal(size=n), "u": rng.normal(size=n),
                          "g": rng.integers(0, 3, n), "h": rng.integers(0, 2, n),
                          "c": rng.choice(["p", "q", "r"], n)})
    frame["y"] = frame.x * frame.g + rng.normal(size=n)
    frame["y2"] = 0.5 * frame.y + rng.normal(size=n)
    frame["k"] = np.digitize(frame.x + 0.3 * rng.normal(size=n), [-0.4, 0.4])
    return frame


@functools.cache
def saved_models() -> dict[str, tuple[dict[str, Any], dict[str, np.ndarray]]]:
    """Each base spec fitted and saved: (its JSON document, its arrays)."""
    frame = base_frame()
    out = {}
    with tempfile.TemporaryDirectory() as directory, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, spec in BASE_SPECS.items():
            path = stratlang.load(spec).fit(frame).save(Path(directory) / name)
            with np.load(path.with_suffix(".npz")) as arrays:
                out[name] = (json.loads(path.read_text()), {k: arrays[k] for k in arrays.files})
    return out


@dataclass(frozen=True)
class Damage:
    """A saved model and what was done to it (``files``: the damaged files' bytes)."""

    base: str
    what: str
    json_bytes: bytes
    npz_bytes: bytes

    def write(self, directory: Path) -> Path:
        path = directory / "model.json"
        path.write_bytes(self.json_bytes)
        path.with_suffix(".npz").write_bytes(self.npz_bytes)
        return path


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and list positions) into a JSON value."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value[:4]):
            found += _paths(inner, (*prefix, i))
    return found


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def _json(doc: Any) -> bytes:
    return json.dumps(doc, indent=1).encode()


@st.composite
def json_damage(draw, doc: dict, arrays: dict) -> tuple[str, bytes, bytes]:
    doc = json.loads(json.dumps(doc))  # a copy
    path = draw(st.sampled_from(_paths(doc)))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    how = draw(st.sampled_from(["delete", "replace", "grow", "shrink"]))
    shown = ".".join(map(str, path))
    if how == "delete":
        del parent[last]
    elif how == "replace":
        parent[last] = draw(st.sampled_from(ODD_VALUES))
    elif how == "grow" and isinstance(parent[last], list):
        parent[last] = [*parent[last], draw(st.sampled_from(ODD_VALUES))]
    elif how == "shrink" and isinstance(parent[last], list | str):
        parent[last] = parent[last][:-1]
    else:
        parent[last] = draw(st.sampled_from(ODD_VALUES))
    return f"{how} {shown}", _json(doc), _npz(arrays)


@st.composite
def array_damage(draw, doc: dict, arrays: dict) -> tuple[str, bytes, bytes]:
    arrays = dict(arrays)
    name = draw(st.sampled_from(sorted(arrays)))
    value = arrays[name]
    how = draw(st.sampled_from(["delete", "cut", "grow", "flat", "nan", "text", "negative",
                                "huge", "transpose", "boolean", "scalar"]))
    if how == "delete":
        del arrays[name]
    elif how == "cut" and len(value):
        arrays[name] = value[:-1]
    elif how == "grow" and value.ndim:
        arrays[name] = np.concatenate([value, value[:1]])
    elif how == "flat":
        arrays[name] = value.reshape(-1)
    elif how == "nan" and value.size and value.dtype.kind == "f":
        arrays[name] = np.where(np.arange(value.size).reshape(value.shape) == 0, np.nan, value)
    elif how == "text":
        arrays[name] = value.astype(str)
    elif how == "negative" and value.dtype.kind in "iuf":
        arrays[name] = -value - 1
    elif how == "huge" and value.dtype.kind in "iuf":
        arrays[name] = value + 10**6
    elif how == "transpose" and value.ndim >= 2:
        arrays[name] = value.T.copy()
    elif how == "boolean":
        arrays[name] = value.astype(bool)
    else:
        arrays[name] = np.asarray(7.0)
    return f"array {how} {name}", _json(doc), _npz(arrays)


@st.composite
def byte_damage(draw, doc: dict, arrays: dict) -> tuple[str, bytes, bytes]:
    text, packed = _json(doc), _npz(arrays)
    which = draw(st.sampled_from(["json", "npz"]))
    data = text if which == "json" else packed
    at = draw(st.integers(0, len(data) - 1))
    how = draw(st.sampled_from(["cut", "flip"]))
    data = data[:at] if how == "cut" else data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]
    return (f"{how} {which} at byte {at}", data if which == "json" else text,
            data if which == "npz" else packed)


@st.composite
def damaged_models(draw) -> Damage:
    """A saved model with one piece of damage (or two, sometimes)."""
    base = draw(st.sampled_from(sorted(BASE_SPECS)))
    doc, arrays = saved_models()[base]
    kind = draw(st.sampled_from([json_damage, json_damage, array_damage, byte_damage]))
    what, text, packed = draw(kind(doc, arrays))
    return Damage(base, what, text, packed)


@dataclass
class SavedOutcome:
    kind: str  # 'accepted', 'stratlang error', 'bug'
    seconds: float
    message: str = ""


def saved_outcome(damage: Damage, directory: Path) -> SavedOutcome:
    """Loads a damaged model and uses it: summary, predict and score on the base data."""
    path = damage.write(directory)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            fitted = stratlang.load_fitted(path)
            fitted.summary()
            frame = base_frame()
            fitted.predict(frame)
            fitted.score(frame)
    except StratlangError as err:
        return SavedOutcome("stratlang error", time.perf_counter() - start, str(err))
    except Exception as err:
        return SavedOutcome("bug", time.perf_counter() - start,
                            f"{type(err).__name__}: {err} ({damage.base}: {damage.what})")
    return SavedOutcome("accepted", time.perf_counter() - start)
