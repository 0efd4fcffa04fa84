"""The schema of a saved fitted model, checked before anything is built from it: the JSON
document (format, version, required keys and their types) and the arrays beside it (names,
shapes, kinds of numbers), against each other and against the spec the file holds. A file
that is damaged or edited by hand gets an error naming the file and the key, never a
KeyError or a wrong-length array later."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from .data.features import factor_text, term_text
from .kinds.losses import LOSSES
from .kinds.transforms import TRANSFORMS
from .language import ir
from .language.errors import StratlangError
from .language.printer import where_text
from .selection_report import check_saved as check_selection

FORMAT_VERSION = 2  # the version this stratlang writes
# version 1 kept the encoding's parts (classes, rows, features, factors or covariates) at
# the top of the document; version 2 keeps them in one "encoding" object. Both are read.
READS = (1, 2)
ENCODING_KEYS = ("classes", "rows", "features", "factors", "covariates")  # (version 1)


class DamagedModel(StratlangError):
    """A saved model whose document or arrays do not follow the schema."""


class Reader:
    """Checks one saved model; every problem names the file and the key."""

    def __init__(self, path: Path, arrays: Any):
        self.path = path
        self.arrays_file = arrays
        self.arrays: dict[str, np.ndarray] = {}  # read and checked

    def fail(self, key: str, problem: str) -> NoReturn:
        raise DamagedModel(f"fitted model '{self.path}' is damaged or was edited: {key}: "
                           f"{problem}")

    # ---- JSON values ---------------------------------------------------------------------
    def value(self, doc: Mapping[str, Any], key: str, at: str, kind: str,
              optional: bool = False) -> Any:
        """``doc[key]``, of ``kind`` (see KINDS); an absent optional key is None."""
        where = f"{at}.{key}" if at else key
        if key not in doc or (optional and doc[key] is None):
            if optional:
                return None
            self.fail(where, "missing")
        value = doc[key]
        test, said = KINDS[kind]
        if not test(value):
            self.fail(where, f"expected {said}, got {_shown(value)}")
        return value

    # ---- arrays ----------------------------------------------------------------------------
    def array(self, name: str, shape: tuple[int | None, ...], kind: str = "number",
              optional: bool = False) -> np.ndarray | None:
        """The array ``name`` of the .npz, of ``shape`` (None: any length there) and
        ``kind`` ('number': finite reals; 'index': integers; 'flag': booleans; 'text')."""
        where = f"array '{name}' (in {self.path.with_suffix('.npz').name})"
        if name not in self.arrays_file.files:
            if optional:
                return None
            self.fail(where, "missing")
        try:
            value = np.asarray(self.arrays_file[name])
        except Exception as err:  # (numpy's reader of damaged bytes raises many kinds:
            # zlib, zipfile, tokenize, ValueError …; each means the same to a user)
            self.fail(where, f"cannot be read ({type(err).__name__}: {err})")
        if value.ndim != len(shape) or any(
                want is not None and got != want for got, want in zip(value.shape, shape,
                                                                       strict=True)):
            wanted = " × ".join("any" if s is None else str(s) for s in shape) or "a scalar"
            self.fail(where, f"expected shape {wanted}, got "
                             f"{' × '.join(map(str, value.shape)) or 'a scalar'}")
        if kind == "number" and (value.dtype.kind not in "fiu"
                                 or not np.all(np.isfinite(value))):
            self.fail(where, "expected finite numbers")
        if kind == "index" and value.dtype.kind not in "iu":
            self.fail(where, "expected whole numbers")
        if kind == "flag" and value.dtype.kind != "b":
            self.fail(where, "expected true/false values")
        if kind == "text" and value.dtype.kind not in "US":
            self.fail(where, "expected text")
        self.arrays[name] = value
        return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, int | float) and not isinstance(v, bool)) and math.isfinite(v)


def _is_label(v: Any) -> bool:
    return isinstance(v, str | bool) or _is_number(v)


def _list_of(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and all(test(x) for x in v)


def _mapping_of(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, dict) and all(isinstance(k, str) and test(x)
                                                 for k, x in v.items())


KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "text": (lambda v: isinstance(v, str), "text"),
    "flag": (lambda v: isinstance(v, bool), "true or false"),
    "count": (lambda v: _is_int(v) and v >= 0, "a whole number ≥ 0"),
    "number": (_is_number, "a finite number"),
    "label": (_is_label, "a label (text or a number)"),
    "object": (lambda v: isinstance(v, dict), "an object"),
    "texts": (_list_of(lambda v: isinstance(v, str)), "a list of text"),
    "labels": (_list_of(_is_label), "a list of labels"),
    "label lists": (_list_of(_list_of(_is_label)), "a list of lists of labels"),
    "counts": (_list_of(lambda v: _is_int(v) and v >= 0), "a list of whole numbers ≥ 0"),
    "numbers": (_mapping_of(_is_number), "an object of finite numbers"),
    "objects": (_mapping_of(lambda v: isinstance(v, dict)), "an object of objects"),
    "scalars": (_mapping_of(lambda v: v is None or _is_label(v)),
                "an object of text, numbers and true/false"),
    "column kinds": (_mapping_of(lambda v: v in ("number", "text")),
                     "an object of 'number' or 'text'"),
}


# ---- the parts every saved fit has ------------------------------------------------------
def check_header(reader: Reader, meta: dict[str, Any]) -> None:
    """The version, and the spec's text (before the spec is compiled)."""
    version = reader.value(meta, "version", "", "count")
    readable = f"this stratlang reads versions {', '.join(map(str, READS))}"
    if version > FORMAT_VERSION:
        raise DamagedModel(f"fitted model '{reader.path}' is of format version {version}, "
                           f"written by a newer stratlang; {readable}")
    if version not in READS:
        raise DamagedModel(f"fitted model '{reader.path}' is of format version {version}, "
                           f"saved by an older stratlang; {readable}: fit the model again "
                           "and save it")
    if version == 1:  # the encoding's parts at the top: gathered into one object
        meta["encoding"] = {key: meta.pop(key) for key in ENCODING_KEYS if key in meta}
    reader.value(meta, "spec", "", "text")
    reader.value(meta, "spec_file", "", "text", optional=True)


def check_common(reader: Reader, meta: dict[str, Any], model: ir.CheckedModel
                 ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Weights, objective, the encoding's classes, rows and features, and info; returns
    (rows, outputs)."""
    weights = reader.value(meta, "weights", "", "numbers")
    for name in model.hypers():
        if name not in weights:
            reader.fail("weights", f"no weight for '{name}'")
    objective = reader.value(meta, "objective", "", "numbers")
    if not objective:
        reader.fail("objective", "no parts")
    loss = LOSSES[model.response.loss.name]
    encoding = reader.value(meta, "encoding", "", "object")
    classes = reader.value(encoding, "classes", "encoding", "labels", optional=True)
    if loss.classifies and (classes is None or len(classes) < 2):
        reader.fail("encoding.classes", f"loss '{loss.name}' needs at least two classes")
    if classes is not None and len(set(map(repr, classes))) != len(classes):
        reader.fail("encoding.classes", "a class is listed twice")
    derived = loss.row_names(tuple(term_text(t) for t in model.features),
                             model.response.columns)
    rows = tuple(reader.value(encoding, "rows", "encoding", "texts", optional=True) or derived)
    if not rows:
        reader.fail("encoding.rows", "no parameter rows")
    features = reader.value(encoding, "features", "encoding", "objects", optional=True) or {}
    check_feature_states(reader, features, model)
    info = reader.value(meta, "info", "", "object")
    check_selection(reader, info, model, weights)  # weights written auto, as chosen
    options = reader.value(info, "options", "info", "scalars", optional=True) or {}
    for limit in ("max_iter", "max_iters"):  # (the summary reports it)
        reader.value(options, limit, "info.options", "count", optional=True)
    outputs = loss.output_names(model.response.columns,
                                tuple(classes) if classes is not None else None)
    return rows, tuple(outputs)


def _state_keys(model: ir.CheckedModel) -> dict[str, ir.Transform]:
    """The key of every state training learns, with its transform (a term with `where`
    learns its own, keyed with its clause)."""
    keys: dict[str, ir.Transform] = {}

    def visit(factor: ir.Factor, scope: str) -> None:
        if isinstance(factor, ir.Transform):
            visit(factor.arg, scope)
            if TRANSFORMS[factor.kind.name].stateful:
                keys.setdefault(factor_text(factor) + scope, factor)

    for term in model.features:
        for factor in term.factors:
            visit(factor, where_text(term.where))
    if model.response.offset is not None:
        visit(model.response.offset, "")
    return keys


def check_feature_states(reader: Reader, states: dict[str, Any], model: ir.CheckedModel) -> None:
    """Every state the spec's transforms learned is there, in the form its kind keeps."""
    expected = _state_keys(model)
    for key in states:
        if key not in expected:
            reader.fail(f"encoding.features.{key}", "no transform of the spec learns this")
    for key, factor in expected.items():
        if key not in states:
            reader.fail("encoding.features", f"the learned state of '{key}' is missing")
        for field, kind in TRANSFORMS[factor.kind.name].state_fields.items():
            reader.value(states[key], field, f"encoding.features.{key}", kind)
        problem = TRANSFORMS[factor.kind.name].state_problem(states[key])
        if problem:
            reader.fail(f"encoding.features.{key}", problem)


def check_history(reader: Reader, info: dict[str, Any]) -> None:
    """A backend's history is read from the arrays only."""
    info.pop("history", None)
    history = reader.array("history", (None, None), optional=True)
    if history is not None:
        info["history"] = [tuple(row) for row in history]


# ---- stratified fits ---------------------------------------------------------------------
def check_stratified(reader: Reader, meta: dict[str, Any], model: ir.CheckedModel) -> None:
    rows, outputs = check_common(reader, meta, model)
    encoding = meta["encoding"]  # (an object: checked by check_common)
    if "factors" not in encoding:
        reader.fail("encoding.factors", "missing")
    factors = encoding["factors"]
    if not isinstance(factors, list):
        reader.fail("encoding.factors", f"expected a list, got {_shown(factors)}")
    if len(factors) != len(model.strata):
        reader.fail("encoding.factors", f"{len(factors)} factors; the spec stratifies by "
                                        f"{len(model.strata)}")
    by_columns = {s.columns: s for s in model.strata}
    k = 1
    for i, factor in enumerate(factors):
        at = f"encoding.factors[{i}]"
        if not isinstance(factor, dict):
            reader.fail(at, f"expected an object, got {_shown(factor)}")
        columns = tuple(reader.value(factor, "columns", at, "texts"))
        if columns not in by_columns:
            reader.fail(f"{at}.columns", f"{list(columns)} is no stratification of the spec")
        labels = reader.value(factor, "labels", at, "label lists")
        n = reader.value(factor, "n", at, "count")
        shape = reader.value(factor, "shape", at, "counts")
        reader.value(factor, "structure", at, "text")
        reader.value(factor, "text_labels", at, "flag")
        hub = reader.value(factor, "hub", at, "count", optional=True)
        if len(labels) != len(columns) or math.prod(len(each) for each in labels) != n:
            reader.fail(f"{at}.labels", f"{' × '.join(str(len(e)) for e in labels)} labels "
                                        f"for {len(columns)} column(s) and {n} nodes")
        if shape and math.prod(shape) != n:
            reader.fail(f"{at}.shape", f"{shape} does not hold {n} nodes")
        if hub is not None and hub >= n:
            reader.fail(f"{at}.hub", f"node {hub} of {n}")
        edges = reader.array(f"edges_{i}", (None, 2), "index")
        assert edges is not None  # (not optional)
        if len(edges) and (edges.min() < 0 or edges.max() >= n):
            reader.fail(f"array 'edges_{i}'",
                        f"a node outside 0..{n - 1} (encoding.factors[{i}].n)")
        weights = reader.array(f"weights_{i}", (len(edges),))
        assert weights is not None  # (not optional)
        if np.any(weights < 0):
            reader.fail(f"array 'weights_{i}'", "a negative edge weight")
        k *= n
    shape3 = (k, len(rows), len(outputs))
    if "theta" in meta:  # θ in Parquet parts a Dask fit's workers wrote
        parts = reader.value(meta, "theta", "", "object")
        if reader.value(parts, "shape", "theta", "counts") != list(shape3):
            reader.fail("theta.shape", f"expected {list(shape3)} (strata, rows, outputs)")
    else:
        reader.array("theta", shape3)
    reader.array("absent", (k, len(rows)), "flag", optional=True)
    check_history(reader, meta["info"])
    check_uncertainty(reader, meta, (k, len(rows) * len(outputs)))


def check_uncertainty(reader: Reader, meta: dict[str, Any], shape: tuple[int, int]) -> None:
    """The posterior covariance's stratum blocks and their summary, or why there are none
    (files saved before uncertainty was kept have neither)."""
    doc = reader.value(meta, "uncertainty", "", "object", optional=True)
    k, d = shape
    if doc is None:
        if "covariance" in reader.arrays_file.files:
            reader.fail("uncertainty", "missing beside the array 'covariance'")
        return
    if "refused" in doc:
        reader.value(doc, "refused", "uncertainty", "text")
        if "covariance" in reader.arrays_file.files:
            reader.fail("uncertainty.refused", "given beside the array 'covariance'")
        return
    reader.value(doc, "method", "uncertainty", "text")
    reader.value(doc, "stderr", "uncertainty", "number")
    if not reader.value(doc, "dispersion", "uncertainty", "number") > 0:
        reader.fail("uncertainty.dispersion", "expected a positive number")
    edf = reader.value(doc, "edf", "uncertainty", "numbers")
    if "total" not in edf:
        reader.fail("uncertainty.edf", "no 'total'")
    for key in ("scale", "deviance_explained", "aic"):
        reader.value(doc, key, "uncertainty", "number", optional=True)
    blocks = reader.array("covariance", (k, d, d))
    assert blocks is not None  # (not optional)
    if np.any(np.einsum("kii->ki", blocks) < 0):
        reader.fail("array 'covariance'", "a negative variance")
    check_weight_spread(reader, shape)


def check_weight_spread(reader: Reader, shape: tuple[int, int]) -> None:
    """The uncertainty of weights chosen by auto: ∂θ̂/∂log w (A, K, d) and Cov(log w)
    (A, A), both or neither."""
    k, d = shape
    directions = reader.array("weight_directions", (None, k, d), optional=True)
    covariance = reader.array("weight_covariance", (None, None), optional=True)
    if (directions is None) != (covariance is None):
        given = "weight_directions" if covariance is None else "weight_covariance"
        missing = "weight_covariance" if covariance is None else "weight_directions"
        reader.fail(f"array '{given}'", f"given without the array '{missing}'")
    if directions is None or covariance is None:
        return
    a = directions.shape[0]
    if covariance.shape != (a, a):
        reader.fail("array 'weight_covariance'",
                    f"expected shape ({a}, {a}) (one row per weight of 'weight_directions'), "
                    f"not {covariance.shape}")
    if np.any(np.diag(covariance) < 0) or not np.allclose(covariance, covariance.T):
        reader.fail("array 'weight_covariance'", "not a covariance (symmetric, "
                                                 "nonnegative variances)")


# ---- personalized fits ----------------------------------------------------------------------
def check_personalized(reader: Reader, meta: dict[str, Any], model: ir.CheckedModel) -> None:
    rows, _ = check_common(reader, meta, model)
    spec = model.personalize
    assert spec is not None  # (the model of a personalized file)
    index = reader.value(meta, "index", "", "texts")
    covariates = reader.value(meta["encoding"], "covariates", "encoding", "column kinds")
    wanted = list(dict.fromkeys(c for d in spec.distances for c in d.columns))
    if sorted(covariates) != sorted(wanted):
        reader.fail("encoding.covariates", f"{sorted(covariates)}; the spec's distances read "
                                           f"{sorted(wanted)}")
    n, p = len(index), len(rows)
    theta = reader.array("theta", (n, p))
    z = reader.array("z", (n, None))
    assert theta is not None and z is not None  # (not optional)
    reader.array("q", (z.shape[1], p))
    reader.array("phi", (len(spec.distances),))
    reader.array("theta_pop", (p,))
    for column, kind in covariates.items():
        reader.array(f"cov_{column}", (n,), kind)
    epochs = None
    for name in reader.arrays_file.files:
        if name.startswith("history_"):
            history = reader.array(name, (epochs,))
            assert history is not None  # (listed)
            epochs = len(history)
    reader.value(meta["info"], "best_epoch", "info", "count")  # (the summary reports it)


def read_checked(path: Path, meta: dict[str, Any], arrays: Any, model: ir.CheckedModel,
                 personalized: bool) -> dict[str, np.ndarray]:
    """Checks a saved model against its schema and its spec; returns its arrays, read."""
    reader = Reader(path, arrays)
    (check_personalized if personalized else check_stratified)(reader, meta, model)
    return reader.arrays


__all__ = ["FORMAT_VERSION", "DamagedModel", "check_header", "read_checked"]
