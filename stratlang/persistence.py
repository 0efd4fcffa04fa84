"""Reading fitted models back: JSON metadata plus a .npz of arrays (never pickle), or the
directory a Dask fit with an ``output`` wrote (θ as Parquet parts)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .backends.base import Objective, PersonalizedFit, StratifiedFit
from .data.features import FeatureState
from .data.strata import Factor, Strata
from .fitted import FittedModel, FittedPersonalized, FittedStratified
from .language.errors import StratlangError
from .language.reading import unopenable
from .model import Model
from .saved_schema import Reader, check_header, read_checked
from .solvers.graphs import Graph
from .spec import compile_spec
from .uncertainty import from_saved


def load_fitted(path: str | Path) -> FittedStratified | FittedPersonalized:
    """Reads a model written by :meth:`FittedModel.save`, or the directory a Dask fit with
    an ``output`` wrote."""
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
    readers: dict[type[FittedModel],
                  Callable[[Model, dict, Any, Path], FittedStratified | FittedPersonalized]] = {
        FittedStratified: _stratified, FittedPersonalized: _personalized}
    kinds: dict[Any, type[FittedModel]] = {cls.format: cls for cls in readers}  # by JSON value
    kind = meta.get("format") if isinstance(meta, dict) else None
    cls = kinds.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise StratlangError(f"'{path}' is not a stratlang fitted model")
    arrays_path = path.with_suffix(".npz")
    try:
        arrays_file = np.load(arrays_path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise StratlangError(f"the arrays of fitted model '{path}' cannot be read from "
                             f"'{arrays_path}': {getattr(err, 'strerror', None) or err}"
                             ) from None
    if not isinstance(arrays_file, np.lib.npyio.NpzFile):  # a lone .npy array, no names
        raise StratlangError(f"the arrays of fitted model '{path}' cannot be read from "
                             f"'{arrays_path}': it holds no named arrays")
    with arrays_file:
        check_header(Reader(path, arrays_file), meta)
        model = Model(compile_spec(meta["spec"], meta.get("spec_file") or "<spec>",
                                   check_files=False))
        if model.ir.kind != cls.kind:
            raise StratlangError(f"'{path}' holds a spec that is not {cls.kind}")
        arrays = read_checked(path, meta, arrays_file, model.ir,
                              personalized=cls is FittedPersonalized)
    return readers[cls](model, meta, arrays, path)


def _classes(meta: dict) -> tuple | None:
    return tuple(meta["classes"]) if meta.get("classes") is not None else None


def _rows(meta: dict) -> tuple[str, ...]:
    return tuple(meta.get("rows") or ())  # files saved before rows were: derived again


def _stratified(model: Model, meta: dict, arrays: Any, path: Path) -> FittedStratified:
    factors = []
    strat_by_cols = {s.columns: s for s in model.ir.strata}
    for i, f in enumerate(meta["factors"]):
        graph = Graph(f["n"], arrays[f"edges_{i}"], arrays[f"weights_{i}"], f["structure"],
                      tuple(f["shape"]))
        strat = strat_by_cols[tuple(f["columns"])]
        factors.append(Factor(strat.columns, tuple(tuple(v) for v in f["labels"]), graph,
                              strat.weight, strat.hyper_name, f["text_labels"], f.get("hub")))
    info = dict(meta["info"])  # (its history read from the arrays when checked)
    fit = StratifiedFit(None, Strata(tuple(factors)), _classes(meta), info,
                        Objective.of(**meta["objective"]), rows=_rows(meta),
                        features=FeatureState.from_json(meta.get("features")),
                        absent=arrays.get("absent"))
    fitted = FittedStratified(model, fit, meta["weights"])
    fitted.theta_array = (fitted._reader(path.parent) if "theta" in meta else arrays["theta"])
    uncertainty = meta.get("uncertainty")
    if uncertainty is not None and "covariance" in arrays:
        fitted._uncertainty = from_saved(uncertainty, arrays["covariance"])
    elif uncertainty is not None:
        fitted._refused = uncertainty["refused"]
    else:
        fitted._refused = ("no standard errors: the model was saved without them (by a "
                           "stratlang before they were kept); refit to get them")
    return fitted


def _personalized(model: Model, meta: dict, arrays: Any, path: Path) -> FittedPersonalized:
    covariates = pd.DataFrame({c: arrays[f"cov_{c}"] for c in meta["covariates"]})
    history = pd.DataFrame({name[len("history_"):]: arrays[name] for name in arrays
                            if name.startswith("history_")})
    fit = PersonalizedFit(arrays["theta"], arrays["z"], arrays["q"], arrays["phi"],
                          arrays["theta_pop"], covariates, _classes(meta), history,
                          meta["info"], Objective.of(**meta["objective"]),
                          pd.Index(meta["index"]), _rows(meta),
                          FeatureState.from_json(meta.get("features")))
    return FittedPersonalized(model, fit, meta["weights"])
