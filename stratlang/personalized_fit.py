"""Fitting personalized models with the ``subgradient`` backend, and the fitted model:
θ per training sample, Z, Q, the learned covariate weights φ, prediction for new samples.

Prediction (paper eq. 7): a new sample's θ is the mean θ of its k_n nearest training
samples under ρ_φ. With only ``abs`` and ``discrete`` distances, ρ_φ is an L1 distance
between scaled coordinates (one-hot codes scaled by φ/2 for categories), so a KD-tree
finds the neighbours; with a single ``euclidean`` group, an L2 KD-tree; otherwise the
distances are computed in chunks of new samples (never an N × N × L array).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import ir
from .design import Binder, bind_features
from .distances import DISTANCES
from .errors import StratlangError
from .losses import LOSSES
from .objective import resolve_weights
from .personalized import bind_covariates, bind_personalized, to_problem
from .solvers import personalized as S

DEFAULTS = {"validation": 0.1, "patience": 20, "progress": None}


def distance_labels(model: ir.Model) -> list[str]:
    return [d.columns[0] if len(d.columns) == 1 else "(" + ", ".join(d.columns) + ")"
            for d in model.personalize.distances]


def nearest(model: ir.Model, encoded: list, phi: np.ndarray, train: np.ndarray,
            query: np.ndarray, k: int) -> np.ndarray:
    """(len(query), k) positions into ``train`` of each query's k nearest under ρ_φ."""
    k = min(k, len(train))
    names = [d.metric.name for d in model.personalize.distances]
    if set(names) <= {"abs", "discrete"}:
        columns = []
        for name, enc, weight in zip(names, encoded, phi, strict=True):
            if name == "abs":
                columns.append(weight * enc[:, :1])
            else:  # |onehot(a) − onehot(b)|₁ = 2 when a ≠ b
                codes = enc[:, 0]
                columns.append(0.5 * weight * (codes[:, None] == np.arange(codes.max() + 1)))
        coords = np.hstack(columns).astype(float)
        return S.nearest_by_l1(coords[train], coords[query], k)
    if names == ["euclidean"]:
        coords = phi[0] * encoded[0]
        from scipy.spatial import cKDTree

        return cKDTree(coords[train]).query(coords[query], k=k)[1].reshape(len(query), k)

    def rho(rows: np.ndarray) -> np.ndarray:
        i = np.repeat(query[rows], len(train))
        j = np.tile(train, len(rows))
        total = np.zeros(len(i))
        for name, enc, weight in zip(names, encoded, phi, strict=True):
            total += weight * DISTANCES[name].pairs(enc, i, j)
        return total.reshape(len(rows), len(train))

    return S.nearest_brute(rho, len(query), k)


def fit_personalized(model, frame: pd.DataFrame, weights: dict[str, float] | None,
                     options: dict[str, Any]) -> FittedPersonalized:
    opts = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    spec = model.ir.personalize
    design = bind_personalized(model.ir, frame)
    values = resolve_weights(model.ir, weights)
    problem = to_problem(design, weights)
    settings = S.Settings(rank=spec.rank, radius=spec.radius, learning_rate=spec.learning_rate,
                          decay=spec.decay, max_iter=spec.max_iter, seed=spec.seed,
                          max_neighbors=spec.max_neighbors,
                          progress=opts["progress"])
    n = design.n
    rng = np.random.default_rng(spec.seed)
    held = (rng.permutation(n)[: round(opts["validation"] * n)]
            if opts["validation"] > 0 and n >= 20 else np.zeros(0, dtype=int))
    fit_rows = np.setdiff1d(np.arange(n), held)
    sub = _subproblem(problem, fit_rows)
    if spec.start_neighbors:  # each fitted sample's nearest fitted samples (itself included)
        ones = np.ones(len(spec.distances))
        found = nearest(model.ir, design.covariates, ones, fit_rows, fit_rows,
                        spec.start_neighbors)
        settings.start_neighbors = found

    def validate(z, q, phi):
        theta = z @ q
        idx = nearest(model.ir, design.covariates, phi, fit_rows, held, spec.neighbors)
        eta = np.einsum("ip,ip->i", design.x[held], theta[idx].mean(axis=1))
        return S.loss_value(_subproblem(problem, held), eta) / len(held)

    start = time.perf_counter()
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            result = S.fit(sub, settings, validate if len(held) else None,
                           patience=opts["patience"])
    except FloatingPointError as err:
        from .errors import NumericalError

        raise NumericalError(str(err)) from None
    theta = np.empty((n, design.x.shape[1]))
    theta[fit_rows] = result.theta
    z = np.zeros((n, spec.rank))
    z[fit_rows] = result.z
    if len(held):  # held-out samples: the neighbour average, as for any new sample
        idx = nearest(model.ir, design.covariates, result.phi, fit_rows, held, spec.neighbors)
        theta[held] = result.theta[idx].mean(axis=1)
        z[held] = result.z[idx].mean(axis=1)
    info = {"backend": "subgradient", "solver": "subgradient (Algorithm 1)",
            "status": "early stopped" if result.best_epoch < result.epochs else "max_iter",
            "epochs": result.epochs, "best_epoch": result.best_epoch,
            "validation_samples": len(held), "fit_seconds": time.perf_counter() - start}
    final_radius = spec.radius * max(settings.final_radius,
                                     spec.decay ** max(result.best_epoch - 1, 0))
    objective = S.objective(sub, result.z, result.q, result.phi, final_radius,
                            S.pairs_for(sub, result.z, final_radius, spec.max_neighbors))
    covariates = frame[[c for d in spec.distances for c in d.columns]].reset_index(drop=True)
    return FittedPersonalized(model, theta, z, result.q, result.phi, result.theta_pop,
                              covariates, design.classes, pd.DataFrame(result.history),
                              info, objective, values, frame.index)


def _subproblem(problem: S.Problem, rows: np.ndarray) -> S.Problem:
    """The problem restricted to some samples (covariate distances re-indexed)."""
    return S.Problem(problem.x[rows], problem.y[rows], problem.loss,
                     lambda i, j: problem.distances(rows[i], rows[j]), problem.n_metrics,
                     problem.gamma, problem.nu, problem.l1, problem.ridge, problem.group,
                     problem.group_mask)


class FittedPersonalized:
    """One model per training sample (θ = Z Q), the learned φ, and k_n-NN prediction."""

    def __init__(self, model, theta, z, q, phi, theta_pop, covariates: pd.DataFrame,
                 classes, history: pd.DataFrame, info: dict, objective: dict,
                 weights: dict[str, float], index: pd.Index):
        self.model, self.theta_array, self.z, self.q, self.phi_array = model, theta, z, q, phi
        self.theta_pop, self.covariates, self.classes = theta_pop, covariates, classes
        self.history, self.info, self.objective_parts = history, info, objective
        self.weights, self.index = weights, index
        self.loss = LOSSES[model.ir.response.loss.name]

    @property
    def theta(self) -> pd.DataFrame:
        return pd.DataFrame(self.theta_array, index=self.index, columns=list(self.model.ir.features))

    @property
    def phi(self) -> pd.Series:
        """The learned weight of each covariate distance: which covariates matter."""
        return pd.Series(self.phi_array, index=distance_labels(self.model.ir), name="phi")

    def _neighbours(self, frame: pd.DataFrame) -> np.ndarray:
        spec = self.model.ir.personalize
        binder = Binder(self.model.ir, frame)
        columns = list(self.covariates.columns)
        new = frame.reindex(columns=columns).reset_index(drop=True)  # absent: reported below
        combined = pd.concat([self.covariates, new], ignore_index=True)
        encoded = bind_covariates(binder, encode=combined)
        binder.out.raise_if_any()
        n = len(self.covariates)
        return nearest(self.model.ir, encoded, self.phi_array, np.arange(n),
                       np.arange(n, n + len(new)), spec.neighbors)

    def sample_models(self, data) -> np.ndarray:
        """θ for new samples: the mean θ of their k_n nearest training samples."""
        frame = self.model.frame(data)
        return self.theta_array[self._neighbours(frame)].mean(axis=1)

    def _linear(self, frame: pd.DataFrame) -> np.ndarray:
        binder = Binder(self.model.ir, frame)
        x = bind_features(binder)
        binder.out.raise_if_any()
        theta = self.theta_array[self._neighbours(frame)].mean(axis=1)
        return np.einsum("ip,ip->i", x, theta)[:, None]

    def predict(self, data=None) -> pd.DataFrame:
        frame = self.model.frame(data)
        out = self.loss.predict(self._linear(frame), self.model.ir.response.loss.p, self.classes)
        return pd.DataFrame({k: np.asarray(v) for k, v in out.items()}, index=frame.index)

    def score(self, data=None) -> dict[str, float]:
        frame = self.model.frame(data)
        from .design import bind_response

        binder = Binder(self.model.ir, frame)
        encoded = bind_response(binder, self.classes)
        binder.out.raise_if_any()
        return self.loss.metrics(self._linear(frame), encoded.values,
                                 self.model.ir.response.loss.p, self.classes)

    @property
    def objective(self) -> float:
        return self.objective_parts["total"]

    def summary(self) -> str:
        spec = self.model.ir.personalize
        lines = [f"model {self.model.name}: personalized, loss {self.loss.name}, rank {spec.rank}",
                 f"  {len(self.theta_array)} samples x {self.theta_array.shape[1]} parameters; "
                 f"{self.info['epochs']} epochs (best {self.info['best_epoch']}), "
                 f"{self.info['fit_seconds']:.2f} s",
                 "  covariate weights phi: " + ", ".join(f"{k} {v:.3g}" for k, v in self.phi.items()),
                 "  objective " + ", ".join(f"{k} {v:.6g}" for k, v in self.objective_parts.items())]
        return "\n".join(lines)

    def plot(self, by: str | None = None, out: str | Path | None = None,
             method: str = "pca"):
        """The sample models embedded in 2-D (PCA, or t-SNE), coloured by a covariate."""
        from .plot import plot_embedding

        return plot_embedding(self, by, out, method)

    def plot_convergence(self, out: str | Path | None = None):
        from .plot import plot_convergence

        return plot_convergence(self, out)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path = path if path.suffix == ".json" else path.with_suffix(".json")
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
        from .model import saved_spec

        meta = {"format": "stratlang-personalized", "version": 1, **saved_spec(self.model),
                "classes": list(self.classes) if self.classes is not None else None,
                "covariates": kinds, "weights": self.weights, "objective": self.objective_parts,
                "info": self.info, "index": [str(i) for i in self.index]}
        path.write_text(json.dumps(meta, indent=1, default=lambda o: o.item()))
        np.savez_compressed(path.with_suffix(".npz"), **arrays)
        return path


def load_personalized(meta: dict, path: Path) -> FittedPersonalized:
    from .model import Model
    from .spec import compile_spec

    arrays = np.load(path.with_suffix(".npz"), allow_pickle=False)
    model = Model(compile_spec(meta["spec"], meta.get("spec_file") or "<spec>", check_files=False))
    covariates = pd.DataFrame({c: arrays[f"cov_{c}"] for c in meta["covariates"]})
    classes = tuple(meta["classes"]) if meta["classes"] is not None else None
    if model.ir.personalize is None:
        raise StratlangError(f"'{path}' holds a spec that is not personalized")
    history = pd.DataFrame({name[len("history_"):]: arrays[name] for name in arrays.files
                            if name.startswith("history_")})
    return FittedPersonalized(model, arrays["theta"], arrays["z"], arrays["q"], arrays["phi"],
                              arrays["theta_pop"], covariates, classes, history,
                              meta["info"], meta["objective"], meta["weights"],
                              pd.Index(meta["index"]))



