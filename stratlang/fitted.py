"""Fitted models: one base (:class:`FittedModel`) with what every fit has — the model,
the weights it was fitted at, the backend's report, the objective — and predict, score,
summary, save, plot; :class:`FittedStratified` holds θ per stratum,
:class:`FittedPersonalized` θ per training sample."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from .backends.base import Objective, PersonalizedFit, StratifiedFit
from .backends.theta_parts import PARTS, column_names, read_theta
from .data.design import (
    Design,
    bind,
    bind_features,
    bind_response,
    bind_weights,
    drop_missing,
    report_dropped,
)
from .data.features import FeatureState, term_text
from .data.frames import Binder
from .data.personalized import bind_covariates
from .data.strata import UNSEEN, Strata
from .display import Summary
from .kinds.graphs import canon
from .kinds.losses import LOSSES, Loss, Records
from .language.errors import DataError, OptionError, StratlangError, did_you_mean
from .saved_schema import FORMAT_VERSION
from .selection_report import SELECTION_KEY, summary_lines

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .model import Model



class FittedModel:
    """What every fit has. ``objective`` is an :class:`Objective` (its parts and
    ``total``); ``info`` is the backend's report (status, iterations, times, …)."""

    kind: ClassVar[str]
    format: ClassVar[str]  # the 'format' of its saved JSON
    warm: Any  # what warm-starts the next fit along a path (None: nothing)

    def __init__(self, model: Model, weights: dict[str, float], info: dict[str, Any],
                 objective: Objective, classes: tuple | None, rows: tuple[str, ...],
                 features: FeatureState):
        self.model = model
        self.weights = weights
        self.info = info
        self.objective = objective
        self.classes = classes
        self.loss: Loss = LOSSES[model.ir.response.loss.name]
        # what training learned: θ's rows, and the features' state new data are bound with
        self.rows = rows or self.loss.row_names(
            tuple(term_text(t) for t in model.ir.features), model.ir.response.columns)
        self.features = features

    @property
    def theta(self) -> pd.DataFrame:
        raise NotImplementedError

    def predict(self, data: pd.DataFrame | str | Path | None = None) -> pd.DataFrame:
        raise NotImplementedError

    def score(self, data: pd.DataFrame | str | Path | None = None) -> dict[str, float]:
        raise NotImplementedError

    def summary(self) -> Summary:
        """N, the strata (or samples), the objective and its parts, how the fit went
        (backend, status, iterations against the limit, time) and the coefficient table:
        text (a ``str``) that a notebook shows as HTML tables."""
        lines = [f"model {self.model.name}: {self.model.ir.kind}, loss {self.loss.name}"]
        lines += [f"  {line}" for line in self._shape_lines()]
        lines.append(f"  objective {self.objective}")
        lines.append(f"  {self._fit_line()}")
        lines += [f"  {line}" for line in summary_lines(self.info)]
        if self.info.get("local"):
            lines.append(f"  {self.info['note']}")
        table = self.coefficients()
        shown = table.head(_COEFFICIENT_ROWS)
        lines.append(f"  coefficients over the {self._over}:")
        # unnamed levels: one for a single output, (parameter, output) pairs for several
        unnamed = shown.rename_axis(index=[None] * shown.index.nlevels)
        lines += ["    " + row for row in unnamed.to_string(float_format=_number).split("\n")]
        if len(table) > len(shown):
            lines.append(f"    … and {len(table) - len(shown)} more (fitted.coefficients())")
        return Summary("\n".join(lines), self._repr_html_())

    _over: ClassVar[str] = "strata"  # what θ varies over, in words

    def _shape_lines(self) -> list[str]:
        raise NotImplementedError

    def _fit_line(self) -> str:
        info = self.info
        options = info.get("options") or {}
        limit = options.get("max_iter") or options.get("max_iters")
        steps = info.get("iterations", info.get("epochs"))
        unit = "epochs" if "epochs" in info and "iterations" not in info else "iterations"
        done = (f", {steps:,} {unit}" + (f" (limit {limit:,})" if limit else "")
                if isinstance(steps, int) else "")
        seconds = info.get("fit_seconds")
        took = f", {seconds:.3g} s" if isinstance(seconds, float) else ""
        return (f"backend {info.get('backend')} ({info.get('solver')}): status "
                f"{info.get('status')}{done}{took}")

    def _check_rows(self, rows: tuple[str, ...]) -> None:
        """New data bound with the learned feature states give θ's rows (else the states
        were changed since the fit: a saved model edited by hand)."""
        if tuple(rows) != tuple(self.rows):
            raise StratlangError(
                f"the learned feature states of model '{self.model.name}' give the parameter "
                f"rows {', '.join(rows)}; θ has {', '.join(self.rows)}: the saved model was "
                "damaged or edited")

    def coefficients(self) -> pd.DataFrame:
        """Each parameter's mean, standard deviation, minimum and maximum over the strata
        (or the training samples)."""
        theta = self.theta
        table = pd.DataFrame({"mean": theta.mean(), "std": theta.std(ddof=0),
                              "min": theta.min(), "max": theta.max()})
        _name_parameters(table)
        return table

    def save(self, path: str | Path) -> Path:
        raise NotImplementedError

    def plot(self, *, out: str | Path | None = None, **view: Any) -> Figure:
        raise NotImplementedError

    def plot_convergence(self, out: str | Path | None = None, *, ax: Axes | None = None,
                         figsize: tuple[float, float] | None = None) -> Figure:
        """Residuals (ADMM) or objective (epochs) against the iteration; on ``ax`` when
        given, else a new figure of ``figsize``."""
        from .plot import plot_convergence

        return plot_convergence(self, out, ax=ax, figsize=figsize)

    def __repr__(self) -> str:
        return (f"<stratlang.{type(self).__name__} {self.model.name!r}: objective "
                f"{self.objective.total:.6g}, backend {self.info.get('backend')}, status "
                f"{self.info.get('status')}>")

    def _repr_html_(self) -> str:
        """A notebook's view: the shape, the objective's parts, how the fit went, and the
        coefficient table."""
        from html import escape

        parts = "".join(f"<tr><td>{escape(name.replace('_', ' '))}</td><td>{value:.6g}</td></tr>"
                        for name, value in [*self.objective.as_dict().items(),
                                            ("total", self.objective.total)])
        notes = [*self._shape_lines(), self._fit_line(), *summary_lines(self.info)]
        if self.info.get("local"):
            notes.append(str(self.info["note"]))
        shape = "".join(f"<li>{escape(line)}</li>" for line in notes)
        coefficients = self.coefficients()
        shown = coefficients.head(_COEFFICIENT_ROWS)
        table = shown.to_html(float_format=_number, border=0)  # (it escapes the text)
        more = (f"<p>… and {len(coefficients) - len(shown)} more (fitted.coefficients())</p>"
                if len(coefficients) > len(shown) else "")
        return (f"<div class='stratlang-fit'><strong>{escape(type(self).__name__)} "
                f"{escape(self.model.name)}</strong>: {escape(self.model.ir.kind)}, loss "
                f"{escape(self.loss.name)}<ul>{shape}</ul>"
                f"<table><tr><th>objective</th><th></th></tr>{parts}</table>"
                f"<p>coefficients over the {escape(self._over)}</p>{table}{more}</div>")

    def _saved(self) -> dict[str, Any]:
        """The JSON fields every saved fit has."""
        from .spec import saved_spec

        return {"format": self.format, "version": FORMAT_VERSION, **saved_spec(self.model.ir),
                "weights": self.weights, "objective": self.objective.as_dict(),
                "classes": ([_class_label(c) for c in self.classes]
                            if self.classes is not None else None),
                "rows": list(self.rows), "features": self.features.to_json()}


_COEFFICIENT_ROWS = 20  # rows of the coefficient table a summary shows


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


def _name_parameters(table: pd.DataFrame) -> None:
    """Names a coefficient table's index 'parameter' (its levels keep θ's column names,
    (parameter, output), when there are several outputs)."""
    if table.index.nlevels == 1:
        table.index.name = "parameter"


def _savez(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """``np.savez_compressed`` of named arrays (as Any: numpy's stub would match a name
    against its ``allow_pickle`` keyword)."""
    named: dict[str, Any] = dict(arrays)
    np.savez_compressed(path, **named)


def _number(value: float) -> str:
    return f"{value:.4g}"


def json_path(path: str | Path) -> Path:
    """``path`` with a .json suffix (added to, not replacing, any other suffix)."""
    path = Path(path)
    if path.suffix == ".json":
        return path
    return path.with_suffix(path.suffix + ".json") if path.suffix else path.with_suffix(".json")


def _frame_columns(out: dict[str, np.ndarray], index: pd.Index, names: tuple,
                   kept: np.ndarray | None = None) -> pd.DataFrame:
    """Prediction columns: one per 1-D value, ``key_<output>`` for each column of 2-D ones;
    with ``kept``, the positions of ``index`` the values are for (the others: missing)."""
    columns: dict[str, np.ndarray] = {}
    for key, value in out.items():
        value = np.asarray(value)
        if value.ndim == 1:
            columns[key] = value
        else:
            labels = names if value.shape[1] == len(names) else range(value.shape[1])
            for j, name in enumerate(labels):
                columns[f"{key}_{name}"] = value[:, j]
    if kept is not None and len(kept) < len(index):  # rows left out: no prediction
        for key, value in columns.items():
            full = np.full(len(index), np.nan, dtype=float if value.dtype.kind in "fiub"
                           else object)
            full[kept] = value
            columns[key] = full
    return pd.DataFrame(columns, index=index)


def _predictable(model: Model, data: pd.DataFrame | str | Path | None
                 ) -> tuple[pd.DataFrame, np.ndarray]:
    """The frame to predict for, and the positions ``missing drop`` lets predict."""
    from .data.design import missing_rows

    frame = model.frame(data)
    rows, counts = missing_rows(model.ir, frame, predicting=True)
    report_dropped(counts)
    return frame, np.flatnonzero(~rows)


class FittedStratified(FittedModel):
    """θ for every stratum, with what is needed to predict, score and save."""

    kind = "stratified"
    format = "stratlang-fitted"

    def __init__(self, model: Model, fit: StratifiedFit, weights: dict[str, float]):
        super().__init__(model, weights, fit.info, fit.objective, fit.classes, fit.rows,
                         fit.features)
        self.strata: Strata = fit.strata
        self.absent = fit.absent  # (K, rows) parameters a feature's `where` leaves out
        self._theta: np.ndarray | Callable[[], np.ndarray] | None = fit.theta
        self.outputs = self.loss.output_names(model.ir.response.columns, self.classes)
        self.warm = fit.warm
        if fit.output is not None:  # the workers wrote θ there: read on first use
            output = Path(fit.output)
            self._theta = self._reader(output)
            self.write_metadata(output)

    # ---- parameters ----------------------------------------------------------------
    @property
    def theta_array(self) -> np.ndarray:
        """θ as a (strata, rows, outputs) array."""
        if callable(self._theta):  # written out by a cluster: read on first use
            self._theta = self._theta()
        # (None only until θ or its reader is set: by __init__, or by load_fitted)
        assert self._theta is not None
        return self._theta

    @theta_array.setter
    def theta_array(self, value: np.ndarray | Callable[[], np.ndarray]) -> None:
        self._theta = value

    @property
    def theta(self) -> pd.DataFrame:
        """θ labelled by stratum (rows) and parameter (columns; (row, output) pairs when
        there are several outputs)."""
        k, n, m = self.theta_array.shape
        if m == 1:
            columns = pd.Index(self.rows, name="parameter")
        else:
            columns = pd.MultiIndex.from_product([self.rows, self.outputs],
                                                 names=["parameter", "output"])
        return pd.DataFrame(self.theta_array.reshape(k, n * m), index=self.strata.index(),
                            columns=columns)

    @property
    def n_parameters(self) -> int:
        present = (self.strata.k * len(self.rows) if self.absent is None
                   else int((~self.absent).sum()))
        return present * len(self.outputs)

    def coefficients(self) -> pd.DataFrame:
        """Each parameter's mean, standard deviation, minimum and maximum over the strata
        that have it (a feature with `where` is absent from the others)."""
        if self.absent is None:
            return super().coefficients()
        theta = self.theta
        absent = np.repeat(self.absent, len(self.outputs), axis=1)  # (columns: row × output)
        present = theta.mask(absent)
        table = pd.DataFrame({"mean": present.mean(), "std": present.std(ddof=0),
                              "min": present.min(), "max": present.max(),
                              "strata": (~absent).sum(axis=0)})
        _name_parameters(table)
        return table

    # ---- prediction ------------------------------------------------------------------
    def _design(self, frame: pd.DataFrame, with_response: bool, unseen: str) -> Design:
        if not isinstance(unseen, str) or unseen not in UNSEEN:
            raise OptionError(f"unseen={unseen!r}: expected one of "
                              + ", ".join(repr(u) for u in UNSEEN)
                              + (did_you_mean(unseen, UNSEEN) if isinstance(unseen, str)
                                 else ""))
        design = bind(self.model.ir, frame, strata=self.strata, classes=self.classes,
                      features=self.features, unseen=unseen, with_response=with_response)
        self._check_rows(design.rows)
        return design

    def theta_of(self, design: Design) -> np.ndarray:
        """Each record's θ (N, rows, outputs): its stratum's; for a value the fit has not
        seen (``unseen="common"``), the mean over that factor's nodes."""
        theta, z = self.theta_array, design.z
        if design.codes is None or np.all(z >= 0):
            each: np.ndarray = theta[z]
            return each
        out = np.empty((len(z), *theta.shape[1:]))
        known = z >= 0
        out[known] = theta[z[known]]
        grid = theta.reshape(*self.strata.shape, *theta.shape[1:])
        codes = design.codes
        for pattern in {tuple(row) for row in codes[~known] < 0}:
            axes = tuple(i for i, off in enumerate(pattern) if off)
            rows = np.flatnonzero(~known & np.all((codes < 0) == pattern, axis=1))
            kept = [i for i, off in enumerate(pattern) if not off]
            out[rows] = grid.mean(axis=axes)[tuple(codes[rows][:, kept].T)]
        return out

    def predict(self, data: pd.DataFrame | str | Path | None = None, *,
                unseen: str = "error") -> pd.DataFrame:
        """Predictions for every row of ``data`` (rows ``missing drop`` leaves out get
        none). ``unseen``: for a stratum value the fit has not seen, 'error' (the
        default), 'hub' (the model of its factor's hub: a star graph's centre), or
        'common' (the model averaged over the factor's nodes)."""
        frame, kept = _predictable(self.model, data)
        design = self._design(frame.iloc[kept], False, unseen)
        theta = self.theta_of(design)
        parts = design.loss_parts()
        if len(parts) == 1:
            out = self.loss.records_predict(design.records, theta, parts[0].params,
                                            self.classes)
        else:  # each record predicted with its stratum's loss parameters
            out = {}
            for part in parts:
                assert part.records is not None
                got = self.loss.records_predict(part.of(design.records), theta[part.records],
                                                part.params, self.classes)
                for key, values in got.items():
                    if key not in out:
                        out[key] = np.empty((len(design.z), *values.shape[1:]), values.dtype)
                    out[key][part.records] = values
        return _frame_columns(out, frame.index, self.outputs, kept)

    def score(self, data: pd.DataFrame | str | Path | None = None, *,
              unseen: str = "error") -> dict[str, float]:
        """The loss's natural metrics on ``data`` (RMSE, ANLL, accuracy, AUROC, …),
        weighted by the record weights when the model has them."""
        design = self._design(self.model.frame(data), True, unseen)
        return self.loss.records_metrics(design.records, self.theta_of(design),
                                         design.loss_params, self.classes)

    # ---- reporting --------------------------------------------------------------------
    def _shape_lines(self) -> list[str]:
        k, n, m = self.theta_array.shape
        records = self.info.get("records")
        sizes = " × ".join(f"{f.n:,}" for f in self.strata.factors)
        lines = [(f"records N = {records:,}; " if isinstance(records, int) else "")
                 + f"strata K = {k:,}" + (f" ({sizes})" if len(self.strata.factors) > 1 else "")
                 + f", parameters per stratum {n} x {m} ({self.n_parameters:,} in all)"]
        for f in self.strata.factors:
            lines.append(f"factor ({', '.join(f.columns)}): {f.n} nodes, {f.graph.n_edges} "
                         f"edges, {f.graph.structure}, weight {self.weights[f.hyper_name]:g}")
        return lines

    def plot(self, *, out: str | Path | None = None, param: str | None = None,
             over: str | None = None, by: str | None = None, ax: Axes | None = None,
             figsize: tuple[float, float] | None = None, scale: str = "link",
             **other: Any) -> Figure:
        """A picture of one parameter over the strata (see :mod:`stratlang.plot`); on
        ``ax`` when given, else a new figure of ``figsize`` (matplotlib's backend and
        pyplot's current figure are left alone). ``scale``: 'link' shows θ; 'response'
        the loss's prediction (or probability) at the intercept (or a distribution's
        parameter) alone, e.g. exp(θ) for poisson_regression, sigmoid(θ) for logistic."""
        from .plot import plot_strata, refuse_options

        refuse_options(other, "a stratified model's picture takes param, over, by, ax, "
                              "figsize and scale")
        return plot_strata(self, param, over, by, out, ax=ax, figsize=figsize, scale=scale)

    # ---- persistence --------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Writes ``path`` (JSON: spec, strata, weights) and ``path.npz`` beside it (arrays)."""
        path = json_path(path)
        meta, arrays = self._metadata()
        path.write_text(json.dumps(meta, indent=1))
        _savez(path.with_suffix(".npz"), {"theta": self.theta_array, **arrays})
        return path

    def write_metadata(self, directory: str | Path) -> Path:
        """Writes ``directory/model.json`` and ``model.npz`` describing a fit whose θ the
        workers wrote as Parquet parts under ``directory`` (see :func:`load_fitted`)."""
        path = Path(directory) / "model.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        meta, arrays = self._metadata()
        meta["theta"] = {"parquet": PARTS,
                         "shape": [self.strata.k, len(self.rows), len(self.outputs)]}
        path.write_text(json.dumps(meta, indent=1))
        _savez(path.with_suffix(".npz"), arrays)
        return path

    def _reader(self, directory: Path) -> Callable[[], np.ndarray]:
        shape = (self.strata.k, len(self.rows), len(self.outputs))
        columns = column_names(self.rows, self.outputs)
        return lambda: read_theta(directory, shape, columns)

    def _metadata(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The JSON metadata and the arrays (θ aside) of a saved model."""
        arrays: dict[str, np.ndarray] = {}
        if self.info.get("history"):
            arrays["history"] = np.asarray(self.info["history"], dtype=float)
        if self.absent is not None:
            arrays["absent"] = self.absent
        factors = []
        for i, f in enumerate(self.strata.factors):
            arrays[f"edges_{i}"] = f.graph.edges
            arrays[f"weights_{i}"] = f.graph.weights
            factors.append({"columns": list(f.columns),
                            "labels": [[canon(v) for v in labels] for labels in f.column_labels],
                            "n": f.graph.n, "structure": f.graph.structure,
                            "shape": list(f.graph.shape), "text_labels": f.text_labels,
                            "hub": f.hub})
        meta = {**self._saved(), "factors": factors,
                "info": {k: v for k, v in self.info.items()
                         if _plain(v) or k == SELECTION_KEY}}
        return meta, arrays


class FittedPersonalized(FittedModel):
    """One model per training sample (θ = Z Q), the learned φ, and k_n-NN prediction."""

    kind = "personalized"
    format = "stratlang-personalized"

    def __init__(self, model: Model, fit: PersonalizedFit, weights: dict[str, float]):
        super().__init__(model, weights, fit.info, fit.objective, fit.classes, fit.rows,
                         fit.features)
        self.theta_array, self.z, self.q, self.phi_array = fit.theta, fit.z, fit.q, fit.phi
        self.theta_pop, self.covariates = fit.theta_pop, fit.covariates
        self.history, self.index = fit.history, fit.index
        self.warm = None

    @property
    def theta(self) -> pd.DataFrame:
        return pd.DataFrame(self.theta_array, index=self.index, columns=list(self.rows))

    @property
    def phi(self) -> pd.Series:
        """The learned weight of each covariate distance: which covariates matter."""
        spec = self.model.ir.personalize
        assert spec is not None  # (the model of a personalized fit)
        labels = [d.columns[0] if len(d.columns) == 1 else "(" + ", ".join(d.columns) + ")"
                  for d in spec.distances]
        return pd.Series(self.phi_array, index=labels, name="phi")

    def _neighbours(self, frame: pd.DataFrame) -> np.ndarray:
        from .backends.subgradient import nearest

        spec = self.model.ir.personalize
        assert spec is not None  # (the model of a personalized fit)
        binder = Binder(self.model.ir, frame)
        columns = list(self.covariates.columns)
        new = frame.reindex(columns=columns).reset_index(drop=True)  # absent: reported below
        combined = pd.concat([self.covariates, new], ignore_index=True)
        encoded = bind_covariates(binder, encode=combined)
        binder.out.raise_if_any()
        n = len(self.covariates)
        return nearest(self.model.ir, encoded, self.phi_array, np.arange(n),
                       np.arange(n, n + len(new)), spec.neighbors)

    def _records(self, frame: pd.DataFrame, with_response: bool) -> tuple[Records, np.ndarray]:
        """(the records of ``frame``, each one's θ as a (N, p, 1) array)."""
        binder = Binder(self.model.ir, frame)
        bound = bind_features(binder, self.features)
        encoded = bind_response(binder, self.classes) if with_response else None
        weight = bind_weights(binder) if with_response else None
        binder.out.raise_if_any()
        assert bound is not None  # (None only with a problem recorded: raised just above)
        self._check_rows(self.loss.row_names(bound.rows, self.model.ir.response.columns))
        theta = self.theta_array[self._neighbours(frame)].mean(axis=1)
        records = Records(bound.x, encoded.values if encoded else None,
                          np.zeros(len(frame), dtype=np.int64), bound.offset, weight)
        return records, theta[:, :, None]

    def predict(self, data: pd.DataFrame | str | Path | None = None) -> pd.DataFrame:
        frame, kept = _predictable(self.model, data)
        records, theta = self._records(frame.iloc[kept], False)
        out = self.loss.records_predict(records, theta, self.model.ir.response.loss.p,
                                        self.classes)
        outputs = self.loss.output_names(self.model.ir.response.columns, self.classes)
        return _frame_columns(out, frame.index, outputs, kept)

    def score(self, data: pd.DataFrame | str | Path | None = None) -> dict[str, float]:
        kept, dropped = drop_missing(self.model.ir, self.model.frame(data))
        report_dropped(dropped, len(kept))
        if len(kept) == 0:
            raise DataError("no records to score")
        records, theta = self._records(kept, True)
        return self.loss.records_metrics(records, theta, self.model.ir.response.loss.p,
                                         self.classes)

    _over = "training samples"

    def _shape_lines(self) -> list[str]:
        spec = self.model.ir.personalize
        assert spec is not None  # (the model of a personalized fit)
        n, p = self.theta_array.shape
        return [f"samples N = {n:,}, rank {spec.rank}, {p} parameters per sample; best epoch "
                f"{self.info['best_epoch']}",
                "covariate weights phi: " + ", ".join(f"{k} {v:.3g}"
                                                      for k, v in self.phi.items())]

    def plot(self, *, out: str | Path | None = None, by: str | None = None,
             method: str = "pca", ax: Axes | None = None,
             figsize: tuple[float, float] | None = None, **other: Any) -> Figure:
        """The sample models embedded in 2-D (PCA, or t-SNE), coloured by a covariate."""
        from .plot import plot_embedding, refuse_options

        refuse_options(other, "a personalized model's picture takes by, method, ax and "
                              "figsize")
        return plot_embedding(self, by, out, method, ax=ax, figsize=figsize)

    def save(self, path: str | Path) -> Path:
        path = json_path(path)
        arrays = {"theta": self.theta_array, "z": self.z, "q": self.q, "phi": self.phi_array,
                  "theta_pop": self.theta_pop}
        for column in self.history.columns:
            arrays[f"history_{column}"] = self.history[column].to_numpy(dtype=float)
        kinds = {}
        for c in self.covariates.columns:
            column = self.covariates[c]
            numeric = pd.api.types.is_numeric_dtype(column)
            arrays[f"cov_{c}"] = column.to_numpy(dtype=float if numeric else str)
            kinds[c] = "number" if numeric else "text"
        meta = {**self._saved(), "covariates": kinds, "info": self.info,
                "index": [str(i) for i in self.index]}
        path.write_text(json.dumps(meta, indent=1, default=lambda o: o.item()))
        _savez(path.with_suffix(".npz"), arrays)
        return path


FITTED_FOR: dict[type, Callable[[Model, Any, dict[str, float]], FittedModel]] = {
    StratifiedFit: FittedStratified, PersonalizedFit: FittedPersonalized}


def fitted_model(model: Model, fit: StratifiedFit | PersonalizedFit,
                 weights: dict[str, float]) -> FittedModel:
    """The fitted model a backend's fit makes."""
    return FITTED_FOR[type(fit)](model, fit, weights)
