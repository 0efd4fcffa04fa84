"""The saved fitted model, both ways: JSON metadata plus a .npz of arrays (never pickle),
or the directory a Dask fit with an ``output`` wrote (θ as Parquet parts).

The document (format version 2) holds the spec's text, the weights, the objective, the
backend's report and, in one ``"encoding"`` object, what training learned (see
:class:`~stratlang.data.encoding.Encoding`); the arrays hold θ, the strata's graphs, the
absent mask, a personalized model's factors and training covariates. Everything read is
checked first (:mod:`stratlang.saved_schema`); files of format version 1 are read too.

It reads a file into the checked model, the fit and its weights (:func:`read_saved`);
:func:`stratlang.fitted.load_fitted` makes the fitted model of them, so that this module
needs no fitted-model class and the fitted model imports it to save itself.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from .backends.base import Objective, PersonalizedFit, StratifiedFit
from .backends.theta_parts import PARTS
from .backends.weight_spread import WeightSpread
from .data.encoding import Encoding
from .data.features import FeatureState, term_text
from .data.strata import Factor, Strata
from .kinds.graphs import canon
from .kinds.losses import LOSSES
from .language import ir
from .language.errors import StratlangError
from .language.reading import unopenable
from .outputs import json_path, replaced_whole
from .saved_schema import FORMAT_VERSION, Reader, check_header, read_checked
from .selection_report import SELECTION_KEY
from .solvers.graphs import Graph
from .spec import compile_spec, saved_spec
from .uncertainty import saved as saved_uncertainty

if TYPE_CHECKING:
    from .fitted import FittedModel, FittedPersonalized, FittedStratified

# the document's 'format' of each family of fitted models
FORMATS = {"stratified": "stratlang-fitted", "personalized": "stratlang-personalized"}


# ---- writing ---------------------------------------------------------------------------------
def save_fitted(fitted: FittedModel, path: str | Path) -> Path:
    """Writes ``path`` (a .json suffix added when missing) and the arrays beside it
    (``.npz``); returns the JSON file's path."""
    path = json_path(path)
    meta, arrays = _document(fitted)
    if fitted.kind == "stratified":
        arrays["theta"] = cast("FittedStratified", fitted).theta_array
    _write_pair(path, json.dumps(meta, indent=1, default=_json_scalar), arrays)
    return path


def write_metadata(fitted: FittedStratified, directory: str | Path) -> Path:
    """Writes ``directory/model.json`` and ``model.npz`` describing a fit whose θ the
    workers wrote as Parquet parts under ``directory`` (``stratlang.load_fitted(directory)``
    reads it back)."""
    path = Path(directory) / "model.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    meta, arrays = _document(fitted)
    meta["theta"] = {"parquet": PARTS,
                     "shape": [fitted.strata.k, len(fitted.rows), len(fitted.outputs)]}
    _write_pair(path, json.dumps(meta, indent=1), arrays)
    return path


def _document(fitted: FittedModel) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON document and the arrays (θ of a stratified fit aside) of a saved model."""
    encoding, arrays = encoding_document(fitted.encoding)
    meta: dict[str, Any] = {"format": FORMATS[fitted.kind], "version": FORMAT_VERSION,
                            **saved_spec(fitted.ir), "weights": fitted.weights,
                            "objective": fitted.objective.as_dict(), "encoding": encoding}
    if fitted.kind == "personalized":
        samples = cast("FittedPersonalized", fitted)
        arrays.update({"theta": samples.theta_array, "z": samples.z, "q": samples.q,
                       "phi": samples.phi_array, "theta_pop": samples.theta_pop})
        for column in samples.history.columns:
            arrays[f"history_{column}"] = samples.history[column].to_numpy(dtype=float)
        meta["info"] = samples.info
        meta["index"] = [str(i) for i in samples.index]
    else:
        if fitted.info.get("history"):
            arrays["history"] = np.asarray(fitted.info["history"], dtype=float)
        strata = cast("FittedStratified", fitted)
        uncertainty, kept = saved_uncertainty(strata._uncertainty_or_none(),
                                              strata._refused or strata._unasked())
        meta["uncertainty"] = uncertainty
        arrays.update(kept)
        meta["info"] = {k: v for k, v in fitted.info.items()
                        if _plain(v) or k == SELECTION_KEY}  # (the chosen weights' report)
    return meta, arrays


def encoding_document(encoding: Encoding) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """An encoding as the saved model keeps it: its JSON object and its arrays (the
    strata's graphs and the absent mask, or the training covariates)."""
    doc: dict[str, Any] = {
        "classes": ([_class_label(c) for c in encoding.classes]
                    if encoding.classes is not None else None),
        "rows": list(encoding.rows), "features": encoding.features.to_json()}
    arrays: dict[str, np.ndarray] = {}
    if encoding.strata is not None:
        factors = []
        for i, f in enumerate(encoding.strata.factors):
            arrays[f"edges_{i}"] = f.graph.edges
            arrays[f"weights_{i}"] = f.graph.weights
            factors.append({"columns": list(f.columns),
                            "labels": [[canon(v) for v in labels] for labels in f.column_labels],
                            "n": f.graph.n, "structure": f.graph.structure,
                            "shape": list(f.graph.shape), "text_labels": f.text_labels,
                            "hub": f.hub})
        doc["factors"] = factors
        if encoding.absent is not None:
            arrays["absent"] = encoding.absent
    if encoding.covariates is not None:
        kinds = {}
        for c in encoding.covariates.columns:
            column = encoding.covariates[c]
            numeric = pd.api.types.is_numeric_dtype(column)
            arrays[f"cov_{c}"] = column.to_numpy(dtype=float if numeric else str)
            kinds[c] = "number" if numeric else "text"
        doc["covariates"] = kinds
    return doc, arrays


def _class_label(value: Any) -> Any:
    """A class as JSON keeps it: a float stays a float (-1.0 reads back as -1.0, so
    predictions and their column names, ``probability_0.0``, are the fit's)."""
    if hasattr(value, "item") and not isinstance(value, str):  # a numpy scalar
        value = value.item()
    return value if value is None or isinstance(value, str | int | float | bool) else canon(value)


def _plain(value: Any) -> bool:
    """A value of the backend's report that JSON keeps as it is: a scalar, or a mapping of
    scalars (the options, whose iteration limit a loaded model's summary reports)."""
    return isinstance(value, _SCALARS) or (
        isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, _SCALARS)
                                        for k, v in value.items()))


_SCALARS = (str, int, float, bool, type(None))


def _json_scalar(value: Any) -> Any:
    return value.item()  # a numpy scalar in a personalized fit's report


def _write_pair(path: Path, meta: str, arrays: Mapping[str, np.ndarray]) -> None:
    """The arrays, then the JSON document that names them, each written whole (an
    interrupted save never leaves a file cut short)."""
    with replaced_whole(path.with_suffix(".npz")) as scratch:
        _savez(scratch, arrays)
    with replaced_whole(path) as scratch:
        scratch.write_text(meta)


def _savez(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """``np.savez_compressed`` of named arrays (as Any: numpy's stub would match a name
    against its ``allow_pickle`` keyword)."""
    named: dict[str, Any] = dict(arrays)
    np.savez_compressed(path, **named)


# ---- reading ---------------------------------------------------------------------------------
@dataclass
class Saved:
    """A saved model, read and checked: its checked spec, its fit (θ None when a cluster's
    workers wrote it as Parquet parts, under ``parts``) and the weights it was fitted at."""

    model: ir.CheckedModel
    fit: StratifiedFit | PersonalizedFit
    weights: dict[str, float]
    parts: Path | None = None
    # a stratified fit's uncertainty: the document, and the covariance blocks (None: none)
    uncertainty: dict[str, Any] | None = None
    covariance: np.ndarray | None = None
    weight_spread: WeightSpread | None = None  # auto weights: their uncertainty


def read_saved(path: str | Path) -> Saved:
    """Reads a model written by :func:`save_fitted`, or the directory a Dask fit with an
    ``output`` wrote (see :func:`stratlang.load_fitted`)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.json"
    elif not path.is_file() and path.with_name(path.name + ".json").is_file():
        path = path.with_name(path.name + ".json")  # the name given to save()
    if problem := unopenable(path):  # (a pipe or a device is said so, never read)
        raise StratlangError(f"fitted model '{path}' {problem}")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise StratlangError(f"'{path}' is not a stratlang fitted model: {err}") from None
    kinds = {value: kind for kind, value in FORMATS.items()}
    written = meta.get("format") if isinstance(meta, dict) else None
    kind = kinds.get(written) if isinstance(written, str) else None
    if kind is None:
        raise StratlangError(f"'{path}' is not a stratlang fitted model")
    arrays_path = path.with_suffix(".npz")
    try:
        arrays_file = np.load(arrays_path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError) as err:
        # (NotImplementedError: zipfile on a damaged "version needed to extract")
        raise StratlangError(f"the arrays of fitted model '{path}' cannot be read from "
                             f"'{arrays_path}': {getattr(err, 'strerror', None) or err}"
                             ) from None
    if not isinstance(arrays_file, np.lib.npyio.NpzFile):  # a lone .npy array, no names
        raise StratlangError(f"the arrays of fitted model '{path}' cannot be read from "
                             f"'{arrays_path}': it holds no named arrays")
    with arrays_file:
        check_header(Reader(path, arrays_file), meta)
        model = compile_spec(meta["spec"], meta.get("spec_file") or "<spec>",
                             check_files=False)
        if model.kind != kind:
            raise StratlangError(f"'{path}' holds a spec that is not {kind}")
        arrays = read_checked(path, meta, arrays_file, model,
                              personalized=kind == "personalized")
    encoding = read_encoding(model, meta["encoding"], arrays)
    objective = Objective.of(**meta["objective"])
    if kind == "personalized":
        history = pd.DataFrame({name[len("history_"):]: arrays[name] for name in arrays
                                if name.startswith("history_")})
        return Saved(model, PersonalizedFit(arrays["theta"], arrays["z"], arrays["q"],
                                            arrays["phi"], arrays["theta_pop"], encoding,
                                            history, meta["info"], objective,
                                            pd.Index(meta["index"])), meta["weights"])
    info = dict(meta["info"])  # (its history read from the arrays when checked)
    parts = path.parent if "theta" in meta else None  # θ as a cluster's Parquet parts
    return Saved(model, StratifiedFit(None if parts else arrays["theta"], encoding, info,
                                      objective), meta["weights"], parts,
                 meta.get("uncertainty"), arrays.get("covariance"), _spread(arrays))


def _spread(arrays: Mapping[str, np.ndarray]) -> WeightSpread | None:
    """The chosen weights' uncertainty a saved fit kept (None: fixed weights only)."""
    if "weight_directions" not in arrays:
        return None
    return WeightSpread(arrays["weight_directions"], arrays["weight_covariance"])


def read_encoding(model: ir.CheckedModel, doc: dict[str, Any], arrays: Mapping[str, np.ndarray]
                  ) -> Encoding:
    """The encoding :func:`encoding_document` wrote, for the checked ``model`` (its
    document and arrays checked already)."""
    loss = LOSSES[model.response.loss.name]
    # (files saved before the rows were: derived again from the spec)
    rows = tuple(doc.get("rows") or loss.row_names(tuple(term_text(t) for t in model.features),
                                                   model.response.columns))
    classes = tuple(doc["classes"]) if doc.get("classes") is not None else None
    features = FeatureState.from_json(doc.get("features"))
    if model.kind == "personalized":
        covariates = pd.DataFrame({c: arrays[f"cov_{c}"] for c in doc["covariates"]})
        return Encoding(model, classes, features, rows, covariates=covariates)
    factors = []
    strat_by_cols = {s.columns: s for s in model.strata}
    for i, f in enumerate(doc["factors"]):
        graph = Graph(f["n"], arrays[f"edges_{i}"], arrays[f"weights_{i}"], f["structure"],
                      tuple(f["shape"]))
        strat = strat_by_cols[tuple(f["columns"])]
        factors.append(Factor(strat.columns, tuple(tuple(v) for v in f["labels"]), graph,
                              strat.weight, strat.hyper_name, f["text_labels"], f.get("hub")))
    return Encoding(model, classes, features, rows, Strata(tuple(factors)),
                    arrays.get("absent"))


__all__ = ["FORMATS", "Saved", "encoding_document", "json_path", "read_encoding", "read_saved",
           "save_fitted", "write_metadata"]
