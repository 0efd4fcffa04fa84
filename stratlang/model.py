"""The Python API: ``load`` a spec, ``fit`` it, then predict, score, summarize, save."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import ir, theta_parts
from .design import Design, Factor, Strata, bind, read_frame
from .errors import DataError, Diagnostic, SpecError, StratlangError
from .graphs import canon
from .losses import LOSSES
from .objective import Objective, resolve_weights, stratified_objective
from .printer import to_text
from .solvers.graphs import Graph
from .spec import compile_spec, read_spec

FORMAT_VERSION = 1


def saved_spec(model: Model) -> dict[str, str]:
    """The spec a fitted model is saved with. The file's own text when it still compiles to
    the fitted model, so that a later error points at real lines of the file; otherwise
    (a model changed in Python, e.g. ``separate()``) the canonical text, under a name that
    claims no file."""
    source = model.ir.source
    if source is not None and not source.filename.startswith("<"):
        try:
            if compile_spec(source.text, source.filename, check_files=False) == model.ir:
                return {"spec": source.text, "spec_file": source.filename}
        except StratlangError:
            pass
    return {"spec": model.text, "spec_file": "<fitted model>"}


class Model:
    """A checked spec, ready to fit."""

    def __init__(self, model: ir.Model):
        self.ir = model

    @property
    def name(self) -> str:
        return self.ir.name

    @property
    def text(self) -> str:
        """The canonical spec text."""
        return to_text(self.ir)

    def __repr__(self) -> str:
        return f"<stratlang.Model {self.name!r}: {self.ir.kind}, loss {self.ir.response.loss.name}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and other.ir == self.ir

    def __hash__(self) -> int:
        return hash(self.ir)

    # ---- data ---------------------------------------------------------------------
    def data_path(self) -> Path | None:
        if self.ir.data is None:
            return None
        return self.ir.directory / self.ir.data

    def frame(self, data: pd.DataFrame | str | Path | None) -> pd.DataFrame:
        if data is not None:
            return read_frame(data)
        path = self.data_path()
        if path is None:
            raise DataError(f"model '{self.name}' names no data: pass data to fit, or add a "
                            "'data \"file.csv\"' statement")
        return read_frame(path)

    def bind(self, data=None) -> Design:
        return bind(self.ir, self.frame(data))

    # ---- variants -------------------------------------------------------------------
    def replace(self, **changes) -> Model:
        return Model(dataclasses.replace(self.ir, **changes))

    def separate(self) -> Model:
        """Same strata, no Laplacian coupling: one independent model per stratum."""
        strata = tuple(dataclasses.replace(s, weight=ir.Hyper.of(0.0)) for s in self.ir.strata)
        return self.replace(strata=strata, name=f"{self.name}_separate")

    def common(self) -> Model:
        """No stratification: one model for all records."""
        return self.replace(strata=(), name=f"{self.name}_common")

    # ---- fitting --------------------------------------------------------------------
    def _backend(self, backend: str | None) -> tuple[str | None, dict[str, Any]]:
        """(backend name or None for automatic, options from the spec's solver statement)."""
        spec_solver = self.ir.solver
        options = dict(spec_solver.options) if spec_solver else {}
        name = backend or (spec_solver.backend if spec_solver else None)
        if spec_solver and name != spec_solver.backend:
            options = {}
        return name, options

    def fit(self, data: pd.DataFrame | str | Path | None = None, *, backend: str | None = None,
            solver: str | None = None, weights: dict[str, float] | None = None,
            verbose: bool | None = None, options: dict[str, Any] | None = None) -> FittedModel:
        """Fits the model. ``backend`` is 'admm' (the default when it supports the model),
        or 'cvxpy' (the reference; ``solver`` picks the CVXPY solver); ``options`` are the
        backend's options (see docs/language.md); ``weights`` fixes hyper-parameters
        (required for sweeps)."""
        from .admm_backend import unsupported
        from .backends import BACKENDS
        from .errors import did_you_mean

        name, spec_options = self._backend(backend)
        if self.ir.personalize is not None:
            if name not in (None, "subgradient"):
                raise StratlangError(
                    f"model '{self.name}' is personalized (non-convex): backend '{name}' cannot "
                    "fit it; use 'subgradient'. The CVXPY reference evaluates its objective and "
                    "solves its convex pieces: see stratlang.personalized.")
            from .personalized_fit import fit_personalized

            opts = {**spec_options, **(options or {})}
            if verbose is not None:
                opts["progress"] = verbose
            return fit_personalized(self, self.frame(data), weights, opts)
        if name is not None and name not in BACKENDS:
            raise StratlangError(f"unknown backend '{name}'" + did_you_mean(name, BACKENDS.names()))
        if name == "dask":
            return self._fit_dask(data, weights, spec_options, options or {})
        design = self.bind(data)
        values = resolve_weights(self.ir, weights)
        reason = unsupported(design)
        if name is None:
            name = "admm" if reason is None and solver is None else "cvxpy"
        opts = {**spec_options, **(options or {})}
        if name == "cvxpy":
            if solver is not None:
                opts["method"] = solver
            if verbose is not None:
                opts["verbose"] = verbose
            fitted = fit_reference(self, design, values, opts)
        else:
            if verbose is not None:
                opts["progress"] = verbose
            fitted = fit_with_admm(self, design, values, opts)
        if reason is not None and backend is None:
            fitted.info["backend_note"] = reason
        return fitted

    def _fit_dask(self, data, weights, spec_options: dict, options: dict) -> FittedModel:
        from .dask_backend import SchedulerUnreachable, fit_dask, partitioned

        values = resolve_weights(self.ir, weights)
        parts = partitioned(data)
        frame = parts if parts is not None else self.frame(data)
        opts = {**spec_options, **options}
        if "output" in spec_options and "output" not in options:  # like the data statement,
            opts["output"] = str(self.ir.directory / spec_options["output"])  # spec-relative
        if opts.get("output") is not None:
            opts["output"] = str(Path(opts["output"]).absolute())  # the workers' cwd may differ
        try:
            fit = fit_dask(self, frame, values, opts)
        except SchedulerUnreachable as error:
            if "scheduler" in options or "scheduler" not in spec_options:
                raise
            # the address came from the spec's solver statement: point at it
            raise SpecError([Diagnostic(str(error), self.ir.solver.span, self.ir.source)]) from None
        fitted = FittedModel(self, fit.strata, fit.theta, fit.design, values, fit.info,
                             classes=fit.classes, objective=fit.objective)
        if fit.theta is None:  # the workers wrote θ under the output directory
            output = Path(opts["output"])
            fitted.theta_array = _theta_reader(output, fitted)
            fitted.write_metadata(output)
        return fitted

    def tune(self, data=None, *, folds: int = 5, metric: str | None = None, seed: int = 0,
             backend: str | None = None):
        """Cross-validates every combination of the spec's sweeps (ADMM warm-started along
        the path) and refits the best on all data: a :class:`stratlang.tune.TuneResult`."""
        from .tune import tune

        return tune(self, data, folds=folds, metric=metric, seed=seed, backend=backend)

    def verify(self, data=None, *, weights: dict[str, float] | None = None,
               solver: str | None = None, options: dict[str, Any] | None = None):
        """Fits with the CVXPY reference and with ADMM; compares objectives and times."""
        from .tune import verify

        return verify(self, data, weights=weights, solver=solver, options=options)

    def sweep(self, data=None, validate=None, *, solver: str | None = None) -> pd.DataFrame:
        """Fits every combination of the spec's sweeps on one compiled CVXPY problem (warm
        started) and scores each on ``validate`` when given."""
        import itertools

        from .reference import StratifiedProblem

        if self.ir.personalize is not None:
            raise StratlangError("sweep re-solves the CVXPY reference of a stratified model; "
                                 "for a personalized model use model.tune(...)")
        design = self.bind(data)
        sweeps = self.ir.sweeps()
        grid = list(itertools.product(*(h.values for h in sweeps.values()))) or [()]
        problem = StratifiedProblem(design, resolve_weights(self.ir, dict(zip(sweeps, grid[0],
                                                                              strict=True))))
        rows = []
        valid_frame = self.frame(validate) if validate is not None else None
        for combo in grid:
            chosen = dict(zip(sweeps, combo, strict=True))
            values = resolve_weights(self.ir, chosen)
            start = time.perf_counter()
            theta, info = problem.solve(values, method=solver)
            fitted = FittedModel(self, design.strata, theta, design, values,
                                 {**info, "backend": "cvxpy",
                                  "fit_seconds": time.perf_counter() - start})
            row = {**chosen, "objective": fitted.objective.total}
            if valid_frame is not None:
                row.update({f"valid_{k}": v for k, v in fitted.score(valid_frame).items()})
            rows.append(row)
        return pd.DataFrame(rows)


def fit_reference(model: Model, design: Design, values: dict[str, float],
                  options: dict[str, Any]) -> FittedModel:
    from .reference import StratifiedProblem

    start = time.perf_counter()
    problem = StratifiedProblem(design, values)
    theta, info = problem.solve(values, **options)
    info.update(backend="cvxpy", fit_seconds=time.perf_counter() - start)
    return FittedModel(model, design.strata, theta, design, values, info)


def fit_with_admm(model: Model, design: Design, values: dict[str, float],
                  options: dict[str, Any]) -> FittedModel:
    from .admm_backend import fit_admm

    start = time.perf_counter()
    theta, info, _ = fit_admm(design, values, options)
    info["fit_seconds"] = time.perf_counter() - start
    return FittedModel(model, design.strata, theta, design, values, info)


class FittedModel:
    """θ for every stratum, with what is needed to predict, score and save."""

    def __init__(self, model: Model, strata: Strata, theta: np.ndarray | None,
                 design: Design | None, weights: dict[str, float], info: dict[str, Any],
                 classes: tuple | None = None, objective: Objective | None = None):
        """``theta`` is None only with ``objective`` given and θ supplied later (as an
        array, or a function reading it on first use)."""
        self.model = model
        self.strata = strata
        self._theta: np.ndarray | Callable[[], np.ndarray] | None = theta
        self.weights = weights
        self.info = info
        self.loss = LOSSES[model.ir.response.loss.name]
        self.classes = design.classes if design is not None else classes
        self.rows = self.loss.row_names(model.ir.features, model.ir.response.columns)
        self.outputs = self.loss.output_names(model.ir.response.columns, self.classes)
        self.objective = (objective if objective is not None
                          else stratified_objective(design, theta, weights))

    # ---- parameters ----------------------------------------------------------------
    @property
    def theta_array(self) -> np.ndarray:
        """θ as a (strata, rows, outputs) array."""
        if callable(self._theta):  # written out by a cluster: read on first use
            self._theta = self._theta()
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
        return self.strata.k * len(self.rows) * len(self.outputs)

    # ---- prediction ------------------------------------------------------------------
    def _design(self, data, with_response: bool) -> Design:
        from .design import bind

        frame = self.model.frame(data)
        return bind(self.model.ir, frame, strata=self.strata, classes=self.classes,
                    with_response=with_response)

    def _predictor(self, design: Design) -> np.ndarray:
        return design.predictor(self.theta_array)

    def predict(self, data: pd.DataFrame | str | Path | None = None) -> pd.DataFrame:
        design = self._design(data, with_response=False)
        if self.loss.name == "gaussian":
            mean = self.loss.mean(self.theta_array[design.z])
            return pd.DataFrame(mean, index=design.index,
                                columns=[f"mean_{c}" for c in self.model.ir.response.columns])
        out = self.loss.predict(self._predictor(design), self.model.ir.response.loss.p,
                                self.classes)
        frame = pd.DataFrame(index=design.index)
        for key, value in out.items():
            value = np.asarray(value)
            if value.ndim == 1:
                frame[key] = value
            else:
                names = self.outputs if value.shape[1] == len(self.outputs) else range(value.shape[1])
                for j, name in enumerate(names):
                    frame[f"{key}_{name}"] = value[:, j]
        return frame

    def score(self, data: pd.DataFrame | str | Path | None = None) -> dict[str, float]:
        """The loss's natural metrics on ``data`` (RMSE, ANLL, accuracy, AUROC, …)."""
        design = self._design(data, with_response=True)
        if self.loss.name == "gaussian":
            nll = self.loss.nll_stratified(self.theta_array[design.z], design.y)
            return {"anll": float(np.mean(nll))}
        return self.loss.metrics(self._predictor(design), design.y,
                                 self.model.ir.response.loss.p, self.classes)

    # ---- reporting --------------------------------------------------------------------
    def summary(self) -> str:
        k, n, m = self.theta_array.shape
        lines = [f"model {self.model.name}: {self.model.ir.kind}, loss "
                 f"{self.model.ir.response.loss.name}",
                 f"  strata K = {k}, parameters per stratum {n} x {m} "
                 f"({self.n_parameters} in all)"]
        for f in self.strata.factors:
            lines.append(f"  factor ({', '.join(f.columns)}): {f.n} nodes, {f.graph.n_edges} "
                         f"edges, {f.graph.structure}, weight "
                         f"{self.weights['stratify.' + '_'.join(f.columns)]:g}")
        obj = self.objective
        lines.append(f"  objective {obj.total:.10g} = loss {obj.loss:.6g} + regularization "
                     f"{obj.regularization:.6g} + laplacian {obj.laplacian:.6g}")
        info = self.info
        lines.append(f"  backend {info.get('backend')} ({info.get('solver')}), status "
                     f"{info.get('status')}, {info.get('fit_seconds', float('nan')):.3f} s")
        return "\n".join(lines)

    # ---- pictures -------------------------------------------------------------------------
    def plot(self, param: str | None = None, over: str | None = None, by: str | None = None,
             out: str | Path | None = None):
        """A picture of one parameter over the strata (see :mod:`stratlang.plot`)."""
        from .plot import plot_strata

        return plot_strata(self, param, over, by, out)

    def plot_convergence(self, out: str | Path | None = None):
        from .plot import plot_convergence

        return plot_convergence(self, out)

    # ---- persistence --------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Writes ``path`` (JSON: spec, strata, weights) and ``path.npz`` beside it (arrays)."""
        path = Path(path)
        if path.suffix != ".json":
            path = path.with_suffix(path.suffix + ".json") if path.suffix else path.with_suffix(".json")
        meta, arrays = self._metadata()
        path.write_text(json.dumps(meta, indent=1))
        np.savez_compressed(path.with_suffix(".npz"), theta=self.theta_array, **arrays)
        return path

    def write_metadata(self, directory: str | Path) -> Path:
        """Writes ``directory/model.json`` and ``model.npz`` describing a fit whose θ the
        workers wrote as Parquet parts under ``directory`` (see :func:`load_fitted`)."""
        path = Path(directory) / "model.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        meta, arrays = self._metadata()
        k = self.strata.k
        meta["theta"] = {"parquet": theta_parts.PARTS, "shape": [k, len(self.rows), len(self.outputs)]}
        path.write_text(json.dumps(meta, indent=1))
        np.savez_compressed(path.with_suffix(".npz"), **arrays)
        return path

    def _metadata(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The JSON metadata and the arrays (θ aside) of a saved model."""
        arrays: dict[str, np.ndarray] = {}
        if self.info.get("history"):
            arrays["history"] = np.asarray(self.info["history"], dtype=float)
        factors = []
        for i, f in enumerate(self.strata.factors):
            arrays[f"edges_{i}"] = f.graph.edges
            arrays[f"weights_{i}"] = f.graph.weights
            factors.append({"columns": list(f.columns),
                            "labels": [[canon(v) for v in labels] for labels in f.column_labels],
                            "n": f.graph.n, "structure": f.graph.structure,
                            "shape": list(f.graph.shape), "text_labels": f.text_labels})
        meta = {"format": "stratlang-fitted", "version": FORMAT_VERSION,
                **saved_spec(self.model),
                "weights": self.weights, "factors": factors,
                "classes": [canon(c) for c in self.classes] if self.classes is not None else None,
                "objective": dataclasses.asdict(self.objective),
                "info": {k: v for k, v in self.info.items()
                         if isinstance(v, str | int | float | bool | type(None))}}
        return meta, arrays


def _theta_reader(directory: Path, fitted: FittedModel) -> Callable[[], np.ndarray]:
    shape = (fitted.strata.k, len(fitted.rows), len(fitted.outputs))
    columns = theta_parts.column_names(fitted.rows, fitted.outputs)
    return lambda: theta_parts.read_theta(directory, shape, columns)


def load_fitted(path: str | Path) -> FittedModel:
    """Reads a model written by :meth:`FittedModel.save`, or the directory a Dask fit with
    an ``output`` wrote (no pickle involved)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.json"
    if not path.is_file():
        raise StratlangError(f"fitted model '{path}' not found")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise StratlangError(f"'{path}' is not a stratlang fitted model: {err}") from None
    if meta.get("format") == "stratlang-personalized":
        from .personalized_fit import load_personalized

        return load_personalized(meta, path)
    if meta.get("format") != "stratlang-fitted":
        raise StratlangError(f"'{path}' is not a stratlang fitted model")
    arrays = np.load(path.with_suffix(".npz"), allow_pickle=False)
    spec_file = meta.get("spec_file") or "<spec>"
    model = Model(compile_spec(meta["spec"], spec_file, check_files=False))
    factors = []
    strat_by_cols = {s.columns: s for s in model.ir.strata}
    for i, f in enumerate(meta["factors"]):
        graph = Graph(f["n"], arrays[f"edges_{i}"], arrays[f"weights_{i}"], f["structure"],
                      tuple(f["shape"]))
        cols = tuple(f["columns"])
        factors.append(Factor(cols, tuple(tuple(v) for v in f["labels"]), graph,
                              strat_by_cols[cols].weight, f["text_labels"]))
    classes = tuple(meta["classes"]) if meta["classes"] is not None else None
    info = dict(meta["info"])
    if "history" in arrays:
        info["history"] = [tuple(row) for row in arrays["history"]]
    fitted = FittedModel(model, Strata(tuple(factors)), None, None, meta["weights"], info,
                         classes=classes, objective=Objective(**meta["objective"]))
    fitted.theta_array = (_theta_reader(path.parent, fitted) if "theta" in meta
                          else arrays["theta"])
    return fitted


def load(path_or_text: str | Path) -> Model:
    """A :class:`Model` from a ``.strat`` path or from spec text."""
    text, filename = read_spec(path_or_text)
    return Model(compile_spec(text, filename))
