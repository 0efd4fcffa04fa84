"""The ``subgradient`` backend: low-rank personalized regression (Algorithm 1 of Lengerich
et al.) — θ per training sample, Z, Q, the learned covariate weights φ.

Prediction (paper eq. 7): a new sample's θ is the mean θ of its k_n nearest training
samples under ρ_φ. When every distance has KD-tree coordinates of one norm (``abs`` and
``discrete`` are L1 in scaled coordinates; a lone ``euclidean`` group is L2), a KD-tree
finds the neighbours; otherwise the distances are computed in chunks of new samples
(never an N × N × L array).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from ..data.encoding import Encoding
from ..data.features import selected_rows
from ..data.personalized import PersonalizedDesign
from ..kinds.distances import DISTANCES
from ..kinds.losses import LOSSES
from ..kinds.regularizers import REGULARIZERS
from ..language import ir
from ..language.errors import NumericalError, StratlangError
from ..language.params import Options, Param, count, interval
from .base import Backend, Objective, PersonalizedFit


def nearest(model: ir.CheckedModel, encoded: list, phi: np.ndarray, train: np.ndarray,
            query: np.ndarray, k: int) -> np.ndarray:
    """(len(query), k) positions into ``train`` of each query's k nearest under ρ_φ."""
    from ..solvers import personalized as S

    k = min(k, len(train))
    assert model.personalize is not None  # (a personalized model)
    metrics = [DISTANCES[d.metric.name] for d in model.personalize.distances]
    coordinates = [m.coordinates(enc, w) for m, enc, w in zip(metrics, encoded, phi, strict=True)]
    l1 = [c[0] for c in coordinates if c is not None and c[1] == "l1"]
    if len(l1) == len(coordinates):  # every distance has L1 coordinates
        coords = np.hstack(l1).astype(float)
        return S.nearest_by_l1(coords[train], coords[query], k)
    if len(coordinates) == 1 and coordinates[0] is not None:  # a lone L2 group
        from scipy.spatial import cKDTree

        coords = coordinates[0][0]
        return cKDTree(coords[train]).query(coords[query], k=k)[1].reshape(len(query), k)

    def rho(rows: np.ndarray) -> np.ndarray:
        i = np.repeat(query[rows], len(train))
        j = np.tile(train, len(rows))
        total = np.zeros(len(i))
        for metric, enc, weight in zip(metrics, encoded, phi, strict=True):
            total += weight * metric.pairs(enc, i, j)
        return total.reshape(len(rows), len(train))

    return S.nearest_brute(rho, len(query), k)


def to_problem(design: PersonalizedDesign, weights: dict[str, float] | None = None):
    """The solver's array problem for a bound personalized model (ψ from the regularize
    statements, with their exclusions) at ``weights`` (default: the spec's)."""
    from ..solvers.personalized import PersonalizedProblem

    model = design.model
    weights = model.weight_values(weights)
    p = len(design.rows)
    l1, ridge = np.zeros(p), np.zeros(p)
    group, group_mask = 0.0, np.zeros(p, bool)
    for term in model.regularizers:
        mask = np.zeros(p, bool)
        mask[selected_rows(design.rows, design.row_terms, term.exclude)] = True
        lam = weights.get(term.hyper_name, 0.0)
        parts = REGULARIZERS[term.kind.name].personalized_penalty(lam, term.kind.p)
        if parts is None:  # the checker admits only regularizers that have a ψ form
            raise StratlangError(f"regularizer '{term.kind.name}' has no personalized form")
        l1 += parts[0] * mask
        ridge += parts[1] * mask
        if parts[2]:
            if group and not np.array_equal(group_mask, mask):
                raise StratlangError("personalized models take one l2 group (one exclusion set)")
            group, group_mask = group + parts[2], mask
    loss = LOSSES[model.response.loss.name].pointwise(model.response.loss.p)
    assert loss is not None  # (the checker admits only losses with a pointwise unit)
    assert model.personalize is not None  # (the design of a personalized model)
    assert design.y is not None  # (a training design: its response is bound)
    return PersonalizedProblem(design.x, design.y[:, 0], loss, design.covariate_distances,
                   len(model.personalize.distances), weights["match"], weights["metric_penalty"],
                   l1, ridge, group, group_mask, design.offset, design.weight)


def _subproblem(problem, rows: np.ndarray):
    """The problem restricted to some samples (covariate distances re-indexed)."""
    from ..solvers.personalized import PersonalizedProblem

    def pick(a):
        return None if a is None else a[rows]

    return PersonalizedProblem(problem.x[rows], problem.y[rows], problem.loss,
                   lambda i, j: problem.distances(rows[i], rows[j]), problem.n_metrics,
                   problem.gamma, problem.nu, problem.l1, problem.ridge, problem.group,
                   problem.group_mask, pick(problem.offset), pick(problem.weight))


def fit_personalized(design: PersonalizedDesign, weights: dict[str, float],
                     options: dict[str, Any]) -> PersonalizedFit:
    from ..solvers import personalized as S

    model = design.model
    spec = model.personalize
    assert spec is not None  # (the design of a personalized model)
    problem = to_problem(design, weights)
    settings = S.Settings(rank=spec.rank, radius=spec.radius, learning_rate=spec.learning_rate,
                          decay=spec.decay, max_iter=spec.max_iter, seed=spec.seed,
                          max_neighbors=spec.max_neighbors, progress=options["progress"])
    n = design.n
    rng = np.random.default_rng(spec.seed)
    held = (rng.permutation(n)[: round(options["validation"] * n)]
            if options["validation"] > 0 and n >= 20 else np.zeros(0, dtype=int))
    fit_rows = np.setdiff1d(np.arange(n), held)
    sub = _subproblem(problem, fit_rows)
    if spec.start_neighbors:  # each fitted sample's nearest fitted samples (itself included)
        ones = np.ones(len(spec.distances))
        settings.start_neighbors = nearest(model, design.covariates, ones, fit_rows, fit_rows,
                                           spec.start_neighbors)

    def validate(z, q, phi):
        theta = z @ q
        idx = nearest(model, design.covariates, phi, fit_rows, held, spec.neighbors)
        eta = np.einsum("ip,ip->i", design.x[held], theta[idx].mean(axis=1))
        return S.loss_value(_subproblem(problem, held), eta) / len(held)

    start = time.perf_counter()
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            result = S.fit(sub, settings, validate if len(held) else None,
                           patience=options["patience"])
    except FloatingPointError as err:
        raise NumericalError(str(err)) from None
    theta = np.empty((n, design.x.shape[1]))
    theta[fit_rows] = result.theta
    z = np.zeros((n, spec.rank))
    z[fit_rows] = result.z
    if len(held):  # held-out samples: the neighbour average, as for any new sample
        idx = nearest(model, design.covariates, result.phi, fit_rows, held, spec.neighbors)
        theta[held] = result.theta[idx].mean(axis=1)
        z[held] = result.z[idx].mean(axis=1)
    info = {"solver": "subgradient (Algorithm 1)",
            "status": "early stopped" if result.best_epoch < result.epochs else "max_iter",
            "epochs": result.epochs, "best_epoch": result.best_epoch,
            "validation_samples": len(held), "fit_seconds": time.perf_counter() - start}
    final_radius = spec.radius * max(settings.final_radius,
                                     spec.decay ** max(result.best_epoch - 1, 0))
    parts = S.objective(sub, result.z, result.q, result.phi, final_radius,
                        S.pairs_for(sub, result.z, final_radius, spec.max_neighbors))
    objective = Objective.of(**parts)
    if not (np.all(np.isfinite(theta)) and np.isfinite(objective.total)):
        raise NumericalError(f"the subgradient fit ended at a non-finite point (objective "
                             f"{objective}); lower the learning rate")
    if design.dropped:
        info["dropped_rows"] = dict(design.dropped)
    info.setdefault("records", len(design.index))
    return PersonalizedFit(theta, z, result.q, result.phi, result.theta_pop,
                           Encoding.of(design), pd.DataFrame(result.history), info, objective,
                           design.index)


class SubgradientBackend(Backend):
    name = "subgradient"
    doc = ("Low-rank personalized regression (Algorithm 1 of Lengerich et al.): population "
           "model, PCA initialization, subgradient epochs on Z, Q, φ; the default for "
           "personalized models.")
    family = "personalized"
    automatic = 1
    verbose_option = "progress"
    options = Options("backend 'subgradient'", (
        Param("validation", default=0.1, check=interval(0, 0.5, closed="[)"),
              doc="share of samples held out for early stopping"),
        Param("patience", type="int", default=20, check=count(1_000_000),
              doc="epochs without validation improvement before stopping"),
        Param("progress", type="bool", default=None, doc="show a progress line"),
    ))

    def fit(self, design: PersonalizedDesign, weights: dict[str, float],
            options: dict[str, Any], warm: Any = None) -> PersonalizedFit:
        fit = fit_personalized(design, weights, options)
        fit.info["backend"] = self.name
        return fit
