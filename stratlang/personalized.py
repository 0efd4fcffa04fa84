"""CVXPY reference for low-rank personalized regression (Lengerich et al., 2019).

    L(Z, Q, φ) = Σ_i [ ℓ(X_i, Y_i, QᵀZ_i) + λ ψ(QᵀZ_i) + γ D_i(Z, φ) ] + ν ‖φ − 1‖²
    D_i(Z, φ)  = Σ_{j ∈ B_r(i)} ( ρ_φ(U_i, U_j) − ‖Z_i − Z_j‖ )²,
    B_r(i) = { j ≠ i : ‖Z_i − Z_j‖ < r },   ρ_φ(u, v) = Σ_l φ_l d_l(u_l, v_l).

The problem is non-convex, so the reference does not fit it. It checks what can be
checked exactly:

* :func:`objective` evaluates L at any (Z, Q, φ) as a CVXPY expression (the neighbour
  sets B_r(i) are those of the given Z);
* :func:`population_fit` solves the convex population model min Σ ℓ(X_i, Y_i, θ) + λψ(θ);
* :func:`samples_fit` solves the convex per-sample problems with Q fixed and γ = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import pandas as pd

from . import ir
from .design import Binder, bind_features, bind_response
from .distances import DISTANCES, MetricError
from .errors import StratlangError
from .losses import LOSSES
from .objective import resolve_weights
from .regularizers import REGULARIZERS
from .solvers.personalized import neighbour_pairs


@dataclass
class PersonalizedDesign:
    model: ir.Model
    x: np.ndarray  # (N, p)
    y: np.ndarray  # (N, 1) encoded (±1 for logistic)
    covariates: list  # one encoded array per distance
    classes: tuple | None

    @property
    def n(self) -> int:
        return len(self.x)

    def covariate_distances(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """d_l(U_i, U_j) for each pair: shape (pairs, L)."""
        out = np.empty((len(i), len(self.covariates)))
        for col, (dist, enc) in enumerate(zip(self.model.personalize.distances, self.covariates,
                                              strict=True)):
            out[:, col] = DISTANCES[dist.metric.name].pairs(enc, i, j)
        return out


def bind_covariates(binder: Binder, encode: pd.DataFrame | None = None) -> list:
    """Checks every distance's columns in the binder's frame and encodes them (from
    ``encode`` when given: e.g. training and new samples together, so that categories
    share codes); problems are recorded in the binder, positioned in the spec."""
    model = binder.model
    source = binder.frame if encode is None else encode
    encoded = []
    for dist in model.personalize.distances:
        metric = DISTANCES[dist.metric.name]
        spans = dist.column_spans or (dist.span,) * len(dist.columns)
        cols = [binder.numeric(c, s) if metric.numeric else binder.column(c, s)
                for c, s in zip(dist.columns, spans, strict=True)]
        if any(c is None for c in cols):
            continue
        try:
            encoded.append(metric.encode(source[list(dist.columns)], dist.metric.p,
                                         model.directory))
        except MetricError as err:
            binder.out.error(str(err), dist.metric.span)
    return encoded


def bind_personalized(model: ir.Model, frame: pd.DataFrame) -> PersonalizedDesign:
    if model.personalize is None:
        raise StratlangError(f"model '{model.name}' is not personalized")
    binder = Binder(model, frame)
    x = bind_features(binder)
    encoded = bind_response(binder)
    covariates = bind_covariates(binder)
    binder.out.raise_if_any()
    return PersonalizedDesign(model, x, encoded.values, covariates, encoded.classes)


def _regularization(model: ir.Model, theta: cp.Expression, weights: dict[str, float],
                    rows: tuple[str, ...]) -> cp.Expression:
    """λψ(θ) for θ of shape (n_samples, p) (one row per sample)."""
    total = cp.Constant(0.0)
    n = theta.shape[0]
    for i, term in enumerate(model.regularizers):
        entry = REGULARIZERS[term.kind.name]
        cols = [c for c, r in enumerate(rows) if r not in term.exclude]
        if not cols or entry.is_constraint:
            continue
        block = cp.reshape(theta[:, cols], (n * len(cols), 1), order="C")
        total = total + weights[f"reg{i}.{term.kind.name}"] * entry.cvxpy(block, n, len(cols),
                                                                           term.kind.p)
    return total


def _loss(model: ir.Model, pred: cp.Expression, y: np.ndarray) -> cp.Expression:
    loss = LOSSES[model.response.loss.name]
    return loss.cvxpy(cp.reshape(pred, (len(y), 1), order="C"), y, model.response.loss.p)


def objective(design: PersonalizedDesign, z: np.ndarray, q: np.ndarray, phi: np.ndarray,
              weights: dict[str, float] | None = None) -> dict[str, float]:
    """The parts and total of L(Z, Q, φ), evaluated through CVXPY expressions."""
    model = design.model
    values = resolve_weights(model, weights)
    rows = model.features
    z_par, q_par, phi_par = cp.Parameter(z.shape), cp.Parameter(q.shape), cp.Parameter(phi.shape)
    z_par.value, q_par.value, phi_par.value = z, q, phi
    theta = z_par @ q_par  # row i is (QᵀZ_i)ᵀ
    pred = cp.sum(cp.multiply(design.x, theta), axis=1)
    loss = _loss(model, pred, design.y)
    reg = _regularization(model, theta, values, rows)
    first, second = neighbour_pairs(z, model.personalize.radius)  # the solver's B_r
    i, j = np.concatenate([first, second]), np.concatenate([second, first])  # D_i and D_j
    if len(i):
        rho = design.covariate_distances(i, j) @ phi_par
        gaps = cp.norm(z_par[i, :] - z_par[j, :], 2, axis=1)
        matching = values["match"] * cp.sum_squares(rho - gaps)
    else:
        matching = cp.Constant(0.0)
    metric = values["metric_penalty"] * cp.sum_squares(phi_par - 1)
    parts = {"loss": float(loss.value), "regularization": float(reg.value),
             "matching": float(matching.value), "metric_penalty": float(metric.value)}
    parts["total"] = sum(parts.values())
    return parts


def population_fit(design: PersonalizedDesign, weights: dict[str, float] | None = None,
                   solver: str | None = None) -> np.ndarray:
    """θ_pop = argmin Σ_i ℓ(X_i, Y_i, θ) + λψ(θ): the convex population model."""
    model = design.model
    values = resolve_weights(model, weights)
    theta = cp.Variable((1, design.x.shape[1]))
    objective_ = _loss(model, design.x @ theta[0], design.y) + _regularization(
        model, theta, values, model.features)
    problem = cp.Problem(cp.Minimize(objective_))
    problem.solve(solver=solver)
    _require(problem)
    return theta.value[0]


def samples_fit(design: PersonalizedDesign, q: np.ndarray, weights: dict[str, float] | None = None,
                solver: str | None = None) -> np.ndarray:
    """Z with Q fixed and γ = 0: the separable convex problems min_z ℓ(X_i, Y_i, Qᵀz) + λψ(Qᵀz)."""
    model = design.model
    values = resolve_weights(model, weights)
    z = cp.Variable((design.n, q.shape[0]))
    theta = z @ q
    pred = cp.sum(cp.multiply(design.x, theta), axis=1)
    problem = cp.Problem(cp.Minimize(_loss(model, pred, design.y)
                                     + _regularization(model, theta, values, model.features)))
    problem.solve(solver=solver)
    _require(problem)
    return z.value


def _require(problem: cp.Problem) -> None:
    from .errors import NumericalError

    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise NumericalError(f"the CVXPY problem is {problem.status}")


def to_problem(design: PersonalizedDesign, weights: dict[str, float] | None = None):
    """The solver's array problem for a bound personalized model (ψ from the regularize
    statements, with their exclusions)."""
    from .solvers.personalized import Problem

    model = design.model
    values = resolve_weights(model, weights)
    rows = model.features
    p = len(rows)
    l1, ridge = np.zeros(p), np.zeros(p)
    group, group_mask = 0.0, np.zeros(p, bool)
    for i, term in enumerate(model.regularizers):
        mask = np.array([r not in term.exclude for r in rows])
        lam = values.get(f"reg{i}.{term.kind.name}", 0.0)
        name = term.kind.name
        if name == "l1":
            l1 += lam * mask
        elif name == "sum_squares":
            ridge += lam * mask
        elif name == "elastic_net":
            ratio = term.kind.p["ratio"]
            l1 += lam * ratio * mask
            ridge += lam * (1 - ratio) * mask
        elif name == "l2" and lam:
            if group and not np.array_equal(group_mask, mask):
                raise StratlangError("personalized models take one l2 group (one exclusion set)")
            group, group_mask = group + lam, mask
    return Problem(design.x, design.y[:, 0], model.response.loss.name,
                   design.covariate_distances, len(model.personalize.distances),
                   values["match"], values["metric_penalty"], l1, ridge, group, group_mask)
