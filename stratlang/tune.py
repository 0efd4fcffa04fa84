"""Hyper-parameter selection and backend verification.

``tune``: k-fold cross-validation over every combination of the spec's sweeps. Strata
and classes come from the whole data, so every fold shares one node set; within a fold
the settings are fitted in order, each ADMM fit warm-started (iterates and duals) from
the previous one — a regularization path. The best setting is refitted on all data.

``verify``: fits the same IR with the CVXPY reference and with ADMM and compares.
"""

from __future__ import annotations

import itertools
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .design import Binder, bind, bind_response, bind_strata
from .errors import StratlangError
from .metrics import GREATER_IS_BETTER
from .objective import resolve_weights


@dataclass
class TuneResult:
    table: pd.DataFrame  # one row per setting: weights, mean and std of the metric per fold
    metric: str
    best: dict[str, float]
    fitted: Any  # FittedModel refitted on all data with the best weights

    def plot(self, out=None):
        """Validation metric against the swept hyper-parameter, the chosen value marked."""
        from .plot import plot_tune

        return plot_tune(self, out)

    def __str__(self) -> str:
        return (f"{self.table.to_string(index=False)}\n"
                f"best ({self.metric}): " + ", ".join(f"{k}={v:g}" for k, v in self.best.items()))


def settings(model) -> list[dict[str, float]]:
    sweeps = model.ir.sweeps()
    if not sweeps:
        raise StratlangError(f"model '{model.name}' declares no sweep: write e.g. "
                             "'weight {1, 10, 100}' or 'logspace(0.1, 100, 5) * l1'")
    return [dict(zip(sweeps, combo, strict=True))
            for combo in itertools.product(*(h.values for h in sweeps.values()))]


def tune(model, data=None, *, folds: int = 5, metric: str | None = None, seed: int = 0,
         backend: str | None = None) -> TuneResult:
    from .admm_backend import fit_admm, unsupported
    from .model import FittedModel, fit_reference

    frame = model.frame(data)
    grid = settings(model)
    metric = metric or primary_metric(model)
    if model.ir.personalize is not None:
        return _tune_personalized(model, frame, grid, folds, metric, seed)
    binder = Binder(model.ir, frame)
    strata, _ = bind_strata(binder)
    encoded = bind_response(binder)
    binder.out.raise_if_any()
    classes = encoded.classes if encoded is not None else None
    order = np.random.default_rng(seed).permutation(len(frame))
    parts = np.array_split(order, folds)
    scores = np.full((len(grid), folds), np.nan)
    for f, valid_rows in enumerate(parts):
        train = frame.iloc[np.setdiff1d(order, valid_rows)]
        valid = frame.iloc[valid_rows]
        design = bind(model.ir, train, strata=strata, classes=classes)
        use_admm = backend != "cvxpy" and unsupported(design) is None
        state = None
        for s, chosen in enumerate(grid):
            values = resolve_weights(model.ir, chosen)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if use_admm:
                    theta, info, state = fit_admm(design, values, {"progress": False}, warm=state)
                    fitted = FittedModel(model, strata, theta, design, values, info)
                else:
                    fitted = fit_reference(model, design, values, {})
            scores[s, f] = fitted.score(valid)[metric]
    return _result(model, frame, grid, scores, metric, backend)


def _result(model, frame, grid, scores, metric, backend) -> TuneResult:
    table = pd.DataFrame(grid)
    table[f"mean_{metric}"] = np.nanmean(scores, axis=1)
    table[f"std_{metric}"] = np.nanstd(scores, axis=1)
    pick = np.nanargmax if GREATER_IS_BETTER[metric] else np.nanargmin
    best = grid[int(pick(table[f"mean_{metric}"].to_numpy()))]
    return TuneResult(table, metric, best, model.fit(frame, weights=best, backend=backend))


def _tune_personalized(model, frame, grid, folds, metric, seed) -> TuneResult:
    """Personalized models: each setting fitted by the subgradient backend per fold, scored
    on the held-out samples through k_n-NN prediction."""
    order = np.random.default_rng(seed).permutation(len(frame))
    scores = np.full((len(grid), folds), np.nan)
    for f, valid_rows in enumerate(np.array_split(order, folds)):
        train = frame.iloc[np.setdiff1d(order, valid_rows)]
        valid = frame.iloc[valid_rows]
        for s, chosen in enumerate(grid):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitted = model.fit(train, weights=chosen, options={"progress": False})
            scores[s, f] = fitted.score(valid)[metric]
    return _result(model, frame, grid, scores, metric, None)


def primary_metric(model) -> str:
    from .losses import LOSSES

    return LOSSES[model.ir.response.loss.name].primary


@dataclass
class Verification:
    cvxpy_objective: float
    admm_objective: float
    cvxpy_seconds: float
    admm_seconds: float
    admm_iterations: int

    @property
    def relative_gap(self) -> float:
        return abs(self.admm_objective - self.cvxpy_objective) / max(abs(self.cvxpy_objective),
                                                                     1e-12)

    def __str__(self) -> str:
        return (f"cvxpy objective {self.cvxpy_objective:.12g}  ({self.cvxpy_seconds:.3f} s)\n"
                f"admm  objective {self.admm_objective:.12g}  ({self.admm_seconds:.3f} s, "
                f"{self.admm_iterations} iterations)\n"
                f"relative gap {self.relative_gap:.2e}; admm {self.cvxpy_seconds / max(self.admm_seconds, 1e-9):.1f}x faster")


def verify(model, data=None, *, weights: dict[str, float] | None = None,
           solver: str | None = None, options: dict[str, Any] | None = None) -> Verification:
    frame = model.frame(data)
    start = time.perf_counter()
    reference = model.fit(frame, backend="cvxpy", solver=solver, weights=weights)
    middle = time.perf_counter()
    fast = model.fit(frame, backend="admm", weights=weights, options=options)
    end = time.perf_counter()
    return Verification(reference.objective.total, fast.objective.total, middle - start,
                        end - middle, int(fast.info.get("iterations") or 0))
