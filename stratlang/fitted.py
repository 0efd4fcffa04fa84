"""Fitted models: one base (:class:`FittedModel`) with what every fit has — the checked
model (its IR), the :class:`~stratlang.data.encoding.Encoding` training learned, the
weights it was fitted at, the backend's report, the objective — and predict, score,
summary, save, plot; :class:`FittedStratified` holds θ per stratum,
:class:`FittedPersonalized` θ per training sample. A fitted model knows nothing of the API
:class:`~stratlang.model.Model` it came from: new data are bound through its encoding."""

from __future__ import annotations

import abc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from .backends.base import Objective, PersonalizedFit, StratifiedFit
from .backends.theta_parts import column_names, read_theta
from .data.design import Design, missing_rows, report_dropped
from .data.encoding import Encoding
from .data.features import FeatureState
from .data.frames import frame_for
from .data.personalized import PersonalizedDesign
from .data.strata import Strata
from .display import Summary
from .kinds.losses import Loss, Records
from .language import ir
from .language.errors import StratlangError
from .selection_report import summary_lines
from .spec import NamedSpec

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .backends.weight_spread import WeightSpread
    from .uncertainty import Uncertainty

class FittedSpec(NamedSpec):
    """What the deprecated ``fitted.model`` gives: the fitted spec's IR, name, text and
    data reading (no fitting: ``stratlang.Model(fitted.ir)`` fits again)."""

    def __init__(self, model: ir.CheckedModel):
        self.ir = model

    def frame(self, data: pd.DataFrame | str | Path | None) -> pd.DataFrame:
        return frame_for(self.ir, data)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(f"fitted.model.{name}: a fitted model no longer keeps the API "
                             f"Model it came from; use stratlang.Model(fitted.ir).{name}")


class FittedModel(NamedSpec, abc.ABC):
    """What every fit has. ``objective`` is an :class:`Objective` (its parts and
    ``total``); ``info`` is the backend's report (status, iterations, times, …)."""

    kind: ClassVar[str]  # the family: 'stratified' or 'personalized'
    warm: Any  # what warm-starts the next fit along a path (None: nothing)

    def __init__(self, model: ir.CheckedModel, encoding: Encoding, weights: dict[str, float],
                 info: dict[str, Any], objective: Objective):
        self.ir = model
        self.encoding = encoding  # what training learned: new data are bound with it
        self.weights = weights
        self.info = info
        self.objective = objective
        self.loss: Loss = encoding.loss

    # ---- the model and what training learned ------------------------------------------
    @property
    def classes(self) -> tuple | None:
        return self.encoding.classes

    @property
    def rows(self) -> tuple[str, ...]:
        """θ's parameter rows."""
        return self.encoding.rows

    @property
    def features(self) -> FeatureState:
        """What the stateful feature terms learned (centres, scales, levels, …)."""
        return self.encoding.features

    @property
    def model(self) -> FittedSpec:
        """Deprecated (a fitted model no longer points back to the API ``Model``): what
        ``fitted.model`` gave that a fit keeps — ``ir``, ``name``, ``text``, ``frame`` —
        now read from the fitted model itself; ``stratlang.Model(fitted.ir)`` makes a model
        to fit again."""
        warnings.warn("fitted.model is deprecated: use fitted.ir, fitted.name, fitted.text "
                      "or fitted.frame(data); stratlang.Model(fitted.ir) makes a model to fit "
                      "again", DeprecationWarning, stacklevel=2)
        return FittedSpec(self.ir)

    def frame(self, data: pd.DataFrame | str | Path | None) -> pd.DataFrame:
        """``data`` as a frame, or the spec's data file when ``data`` is None."""
        return frame_for(self.ir, data)

    @property
    @abc.abstractmethod
    def theta(self) -> pd.DataFrame:
        """The parameters: one row per stratum (or training sample)."""

    @abc.abstractmethod
    def predict(self, data: pd.DataFrame | str | Path | None = None) -> pd.DataFrame:
        """Predictions for the records of ``data`` (the spec's data file when None)."""

    @property
    def theta_se(self) -> pd.DataFrame:
        """Standard errors shaped like :attr:`theta` (a stratified fit with a likelihood
        reading: see :class:`FittedStratified`)."""
        from .uncertainty import NoUncertainty

        raise NoUncertainty(f"no standard errors: {_PERSONALIZED_REFUSAL}")

    def standard_errors(self, conditional: bool = False) -> pd.DataFrame:
        """:attr:`theta_se`; ``conditional=True``: as if weights chosen by ``auto`` had
        been fixed (see :class:`FittedStratified`)."""
        return self.theta_se

    def intervals(self, level: float = 0.95, conditional: bool = False
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(lower, upper) shaped like :attr:`theta` (see :attr:`theta_se`)."""
        se = self.standard_errors(conditional)
        return se, se

    @abc.abstractmethod
    def score(self, data: pd.DataFrame | str | Path | None = None) -> dict[str, float]:
        """The loss's metrics on the records of ``data``."""

    def summary(self) -> Summary:
        """N, the strata (or samples), the objective and its parts, how the fit went
        (backend, status, iterations against the limit, time) and the coefficient table:
        text (a ``str``) that a notebook shows as HTML tables."""
        lines = [f"model {self.name}: {self.ir.kind}, loss {self.loss.name}"]
        lines += [f"  {line}" for line in self._shape_lines()]
        lines.append(f"  objective {self.objective}")
        lines.append(f"  {self._fit_line()}")
        lines += [f"  {line}" for line in summary_lines(self.info)]
        if self.info.get("local"):
            lines.append(f"  {self.info['note']}")
        lines += [f"  {line}" for line in self._uncertainty_lines()]
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

    def _uncertainty_lines(self) -> list[str]:
        """What the summary says of the fit's uncertainty (nothing when it has none)."""
        return []

    @abc.abstractmethod
    def _shape_lines(self) -> list[str]:
        """The summary's lines on the fit's shape (strata or samples, parameters)."""

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

    def coefficients(self) -> pd.DataFrame:
        """Each parameter's mean, standard deviation, minimum and maximum over the strata
        (or the training samples)."""
        theta = self.theta
        table = pd.DataFrame({"mean": theta.mean(), "std": theta.std(ddof=0),
                              "min": theta.min(), "max": theta.max()})
        _name_parameters(table)
        return table

    def save(self, path: str | Path) -> Path:
        """Writes ``path`` (JSON: the spec, the encoding, weights, …; a .json suffix added
        when missing) and ``path.npz`` beside it (arrays): see :mod:`stratlang.persistence`."""
        from .persistence import save_fitted

        return save_fitted(self, path)

    @abc.abstractmethod
    def plot(self, *, out: str | Path | None = None, **view: Any) -> Figure:
        """The fitted parameters drawn (see the subclasses)."""

    def plot_convergence(self, out: str | Path | None = None, *, ax: Axes | None = None,
                         figsize: tuple[float, float] | None = None) -> Figure:
        """Residuals (ADMM) or objective (epochs) against the iteration; on ``ax`` when
        given, else a new figure of ``figsize``."""
        from .plot import plot_convergence

        return plot_convergence(self, out, ax=ax, figsize=figsize)

    def __repr__(self) -> str:
        return (f"<stratlang.{type(self).__name__} {self.name!r}: objective "
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
        notes += self._uncertainty_lines()
        shape = "".join(f"<li>{escape(line)}</li>" for line in notes)
        coefficients = self.coefficients()
        shown = coefficients.head(_COEFFICIENT_ROWS)
        table = shown.to_html(float_format=_number, border=0)  # (it escapes the text)
        more = (f"<p>… and {len(coefficients) - len(shown)} more (fitted.coefficients())</p>"
                if len(coefficients) > len(shown) else "")
        return (f"<div class='stratlang-fit'><strong>{escape(type(self).__name__)} "
                f"{escape(self.name)}</strong>: {escape(self.ir.kind)}, loss "
                f"{escape(self.loss.name)}<ul>{shape}</ul>"
                f"<table><tr><th>objective</th><th></th></tr>{parts}</table>"
                f"<p>coefficients over the {escape(self._over)}</p>{table}{more}</div>")


_COEFFICIENT_ROWS = 20  # rows of the coefficient table a summary shows
_PERSONALIZED_REFUSAL = ("a personalized model is not a penalized likelihood (its "
                         "objective is non-convex), so it has no posterior to take them from")


def _name_parameters(table: pd.DataFrame) -> None:
    """Names a coefficient table's index 'parameter' (its levels keep θ's column names,
    (parameter, output), when there are several outputs)."""
    if table.index.nlevels == 1:
        table.index.name = "parameter"


def _number(value: float) -> str:
    return f"{value:.4g}"


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


def _predictable(model: ir.CheckedModel, data: pd.DataFrame | str | Path | None
                 ) -> tuple[pd.DataFrame, np.ndarray]:
    """The frame to predict for, and the positions ``missing drop`` lets predict."""
    frame = frame_for(model, data)
    rows, counts = missing_rows(model, frame, predicting=True)
    report_dropped(counts)
    return frame, np.flatnonzero(~rows)


class FittedStratified(FittedModel):
    """θ for every stratum, with what is needed to predict, score and save."""

    kind = "stratified"

    def __init__(self, model: ir.CheckedModel, fit: StratifiedFit, weights: dict[str, float]):
        super().__init__(model, fit.encoding, weights, fit.info, fit.objective)
        self._theta: np.ndarray | Callable[[], np.ndarray] | None = fit.theta
        self.outputs = self.encoding.outputs
        self.warm = fit.warm
        # the training design, kept for the uncertainty (computed on first use)
        self._training = fit.design
        self._uncertainty: Uncertainty | None = None
        self._refused: str | None = None  # why the fit has no uncertainty, once known
        self._weight_spread = fit.weight_spread  # auto weights: their own uncertainty
        if fit.output is not None:  # the workers wrote θ there: read on first use
            # (saved beside it, so that load_fitted(output) reads the fit back)
            output = Path(fit.output)
            self._theta = self._reader(output)
            self.write_metadata(output)

    @property
    def strata(self) -> Strata:
        assert self.encoding.strata is not None  # (a stratified model's encoding)
        return self.encoding.strata

    @property
    def absent(self) -> np.ndarray | None:
        """(K, rows): True where a feature's `where` leaves a parameter out."""
        return self.encoding.absent

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

    # ---- uncertainty (stratlang.uncertainty) -------------------------------------------
    @property
    def uncertainty(self) -> Uncertainty:
        """The posterior covariance's stratum blocks, dispersion, edf, deviance explained
        and AIC (computed once, from the training data, at the fit)."""
        if self._uncertainty is None:
            from .uncertainty import NoUncertainty, compute

            if self._refused is not None:
                raise NoUncertainty(self._refused)
            if self._training is None:
                raise NoUncertainty("no standard errors: the fit's records stayed on the "
                                    "cluster's workers")
            try:
                self._uncertainty = compute(self._training, self.theta_array, self.weights,
                                            self._weight_spread)
            except StratlangError as error:  # (refused, or H singular: said once, kept)
                self._refused = str(error)
                raise
            self.info.update(self._uncertainty.info())
        return self._uncertainty

    def _uncertainty_lines(self) -> list[str]:
        from .uncertainty import summary_lines as uncertainty_lines

        return uncertainty_lines(self._uncertainty_or_none(), self._unasked())

    def _uncertainty_or_none(self) -> Uncertainty | None:
        """The uncertainty the summary, save, the command line and pictures show unasked:
        when the fit has one and it is at hand or cheap (K·d ≤ AUTOMATIC); else None."""
        from .uncertainty import AUTOMATIC

        if self._uncertainty is None and self.theta_array.size > AUTOMATIC:
            return None
        try:
            return self.uncertainty
        except StratlangError:
            return None

    def _load_uncertainty(self, doc: dict[str, Any] | None, blocks: np.ndarray | None,
                          spread: WeightSpread | None = None) -> None:
        """The uncertainty a saved fit kept, or why it has none."""
        from .uncertainty import from_saved

        if doc is not None and blocks is not None:
            self._uncertainty = from_saved(doc, blocks, spread)
        elif doc is not None:
            self._refused = doc["refused"]
        else:
            self._refused = ("no standard errors: the model was saved without them (by a "
                             "stratlang before they were kept); refit to get them")

    def _unasked(self) -> str | None:
        """Why the fit shows no uncertainty unasked when it may have one (its size)."""
        from .uncertainty import AUTOMATIC, not_computed

        if self._uncertainty is None and self._refused is None and (
                self.theta_array.size > AUTOMATIC):
            return not_computed(self.theta_array.size)
        return None

    @property
    def theta_se(self) -> pd.DataFrame:
        """The standard error of every entry of :attr:`theta` (same shape and labels): the
        square root of the posterior covariance's diagonal, φ·H⁻¹, plus the uncertainty
        of weights chosen by ``auto`` (docs: Uncertainty); see :meth:`standard_errors`."""
        return self.standard_errors()

    def standard_errors(self, conditional: bool = False) -> pd.DataFrame:
        """:attr:`theta_se`; ``conditional=True`` leaves out the uncertainty of weights
        chosen by ``auto`` (as if they had been fixed at their chosen values)."""
        se = self.uncertainty.se(conditional)
        return pd.DataFrame(se, index=self.theta.index, columns=self.theta.columns)

    def intervals(self, level: float = 0.95, conditional: bool = False
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(lower, upper): θ ∓ z·se with z the normal quantile of ``level``, two frames
        shaped like :attr:`theta` (``conditional``: see :meth:`standard_errors`)."""
        from .uncertainty import normal_quantile

        z = normal_quantile(level)
        theta, se = self.theta, self.standard_errors(conditional)
        return theta - z * se, theta + z * se

    # ---- prediction ------------------------------------------------------------------
    def _design(self, frame: pd.DataFrame, with_response: bool, unseen: str) -> Design:
        design = self.encoding.bind(frame, unseen=unseen, with_response=with_response)
        assert isinstance(design, Design)  # (a stratified model's encoding)
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
                unseen: str = "error", interval: float | None = None,
                conditional: bool = False) -> pd.DataFrame:
        """Predictions for every row of ``data`` (rows ``missing drop`` leaves out get
        none). ``unseen``: for a stratum value the fit has not seen, 'error' (the
        default), 'hub' (the model of its factor's hub: a star graph's centre), or
        'common' (the model averaged over the factor's nodes). ``interval``: a level
        (e.g. 0.95) adds ``<column>_lower`` and ``<column>_upper`` beside each numeric
        prediction: the interval of the predicted mean on the response scale, including
        the uncertainty of weights chosen by ``auto`` unless ``conditional``."""
        if interval is not None:
            from .uncertainty import normal_quantile

            normal_quantile(interval, "interval")  # refused before any work
        frame, kept = _predictable(self.ir, data)
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
        if interval is not None:
            from .uncertainty import prediction_intervals

            for key, (low, high) in prediction_intervals(self, design, theta, interval,
                                                         conditional).items():
                out[f"{key}_lower"], out[f"{key}_upper"] = low, high
        return _frame_columns(out, frame.index, self.outputs, kept)

    def score(self, data: pd.DataFrame | str | Path | None = None, *,
              unseen: str = "error") -> dict[str, float]:
        """The loss's natural metrics on ``data`` (RMSE, ANLL, accuracy, AUROC, …),
        weighted by the record weights when the model has them."""
        design = self._design(self.frame(data), True, unseen)
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

    def write_metadata(self, directory: str | Path) -> Path:
        """Writes ``directory/model.json`` and ``model.npz`` describing a fit whose θ the
        workers wrote as Parquet parts under ``directory`` (see
        :func:`stratlang.persistence.write_metadata`)."""
        from .persistence import write_metadata

        return write_metadata(self, directory)

    def _reader(self, directory: Path) -> Callable[[], np.ndarray]:
        """Reads θ from the Parquet parts a cluster's workers wrote under ``directory``."""
        shape = (self.strata.k, len(self.rows), len(self.outputs))
        columns = column_names(self.rows, self.outputs)
        return lambda: read_theta(directory, shape, columns)


class FittedPersonalized(FittedModel):
    """One model per training sample (θ = Z Q), the learned φ, and k_n-NN prediction."""

    kind = "personalized"

    def __init__(self, model: ir.CheckedModel, fit: PersonalizedFit, weights: dict[str, float]):
        super().__init__(model, fit.encoding, weights, fit.info, fit.objective)
        self.theta_array, self.z, self.q, self.phi_array = fit.theta, fit.z, fit.q, fit.phi
        self.theta_pop = fit.theta_pop
        self.history, self.index = fit.history, fit.index
        self.warm = None

    @property
    def covariates(self) -> pd.DataFrame:
        """The training samples' covariate columns (new samples are encoded beside them)."""
        assert self.encoding.covariates is not None  # (a personalized model's encoding)
        return self.encoding.covariates

    @property
    def theta(self) -> pd.DataFrame:
        return pd.DataFrame(self.theta_array, index=self.index, columns=list(self.rows))

    @property
    def phi(self) -> pd.Series:
        """The learned weight of each covariate distance: which covariates matter."""
        spec = self.ir.personalize
        assert spec is not None  # (the model of a personalized fit)
        labels = [d.columns[0] if len(d.columns) == 1 else "(" + ", ".join(d.columns) + ")"
                  for d in spec.distances]
        return pd.Series(self.phi_array, index=labels, name="phi")

    def _neighbours(self, frame: pd.DataFrame) -> np.ndarray:
        """The training samples nearest each row of ``frame`` under the learned φ."""
        from .backends.subgradient import nearest

        spec = self.ir.personalize
        assert spec is not None  # (the model of a personalized fit)
        encoded = self.encoding.encode_covariates(frame)
        n = len(self.covariates)
        return nearest(self.ir, encoded, self.phi_array, np.arange(n),
                       np.arange(n, n + len(frame)), spec.neighbors)

    def _records(self, frame: pd.DataFrame, with_response: bool) -> tuple[Records, np.ndarray]:
        """(the records of ``frame`` that are bound, each one's θ as a (N, p, 1) array)."""
        design = self.encoding.bind(frame, with_response=with_response)
        assert isinstance(design, PersonalizedDesign)  # (a personalized model's encoding)
        # (the covariates of the rows bound: ``missing drop`` may leave some out)
        theta = self.theta_array[self._neighbours(design.covariate_frame)].mean(axis=1)
        records = Records(design.x, design.y, np.zeros(design.n, dtype=np.int64),
                          design.offset, design.weight)
        return records, theta[:, :, None]

    def predict(self, data: pd.DataFrame | str | Path | None = None, *,
                interval: float | None = None, conditional: bool = False) -> pd.DataFrame:
        if interval is not None:
            from .uncertainty import NoUncertainty

            raise NoUncertainty(f"no prediction intervals: {_PERSONALIZED_REFUSAL}")
        frame, kept = _predictable(self.ir, data)
        records, theta = self._records(frame.iloc[kept], False)
        out = self.loss.records_predict(records, theta, self.ir.response.loss.p,
                                        self.classes)
        return _frame_columns(out, frame.index, self.encoding.outputs, kept)

    def score(self, data: pd.DataFrame | str | Path | None = None) -> dict[str, float]:
        records, theta = self._records(self.frame(data), True)
        return self.loss.records_metrics(records, theta, self.ir.response.loss.p,
                                         self.classes)

    _over = "training samples"

    def _shape_lines(self) -> list[str]:
        spec = self.ir.personalize
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


FITTED_FOR: dict[type, Callable[[ir.CheckedModel, Any, dict[str, float]], FittedModel]] = {
    StratifiedFit: FittedStratified, PersonalizedFit: FittedPersonalized}


def fitted_model(model: ir.CheckedModel, fit: StratifiedFit | PersonalizedFit,
                 weights: dict[str, float]) -> FittedModel:
    """The fitted model a backend's fit makes."""
    return FITTED_FOR[type(fit)](model, fit, weights)


def load_fitted(path: str | Path) -> FittedStratified | FittedPersonalized:
    """Reads a model written by :meth:`FittedModel.save`, or the directory a Dask fit with
    an ``output`` wrote (the file format: :mod:`stratlang.persistence`)."""
    from .persistence import read_saved

    saved = read_saved(path)
    if isinstance(saved.fit, PersonalizedFit):
        return FittedPersonalized(saved.model, saved.fit, saved.weights)
    fitted = FittedStratified(saved.model, saved.fit, saved.weights)
    if saved.parts is not None:  # θ as the Parquet parts a cluster's workers wrote
        fitted.theta_array = fitted._reader(saved.parts)
    fitted._load_uncertainty(saved.uncertainty, saved.covariance, saved.weight_spread)
    return fitted
