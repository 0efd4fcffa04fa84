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

import cvxpy as cp
import numpy as np

from ..data.features import selected_rows
from ..data.personalized import PersonalizedDesign
from ..kinds.losses import LOSSES
from ..kinds.regularizers import REGULARIZERS
from ..language.errors import NumericalError
from ..solvers.personalized import neighbour_pairs


def _regularization(design: PersonalizedDesign, theta: cp.Expression,
                    weights: dict[str, float]) -> cp.Expression:
    """λψ(θ) for θ of shape (n_samples, p) (one row per sample)."""
    total = cp.Constant(0.0)
    n = theta.shape[0]
    for term in design.model.regularizers:
        entry = REGULARIZERS[term.kind.name]
        cols = list(selected_rows(design.rows, design.row_terms, term.exclude))
        if not cols or entry.is_constraint:
            continue
        block = cp.reshape(theta[:, cols], (n * len(cols), 1), order="C")
        total = total + weights[term.hyper_name] * entry.cvxpy(block, n, len(cols), term.kind.p)
    return total


def _loss(design: PersonalizedDesign, pred: cp.Expression) -> cp.Expression:
    """Σ w_i ℓ(x_iᵀθ_i + o_i, y_i) for the linear predictors ``pred`` (N,)."""
    model, y = design.model, design.y
    assert y is not None  # (a training design: its response is bound)
    loss = LOSSES[model.response.loss.name]
    if design.offset is not None:
        pred = pred + design.offset
    return loss.cvxpy(cp.reshape(pred, (len(y), 1), order="C"), y, model.response.loss.p,
                      design.weight)


def objective(design: PersonalizedDesign, z: np.ndarray, q: np.ndarray, phi: np.ndarray,
              weights: dict[str, float] | None = None) -> dict[str, float]:
    """The parts and total of L(Z, Q, φ), evaluated through CVXPY expressions."""
    model = design.model
    values = model.weight_values(weights)
    z_par, q_par, phi_par = cp.Parameter(z.shape), cp.Parameter(q.shape), cp.Parameter(phi.shape)
    z_par.value, q_par.value, phi_par.value = z, q, phi
    theta = z_par @ q_par  # row i is (QᵀZ_i)ᵀ
    pred = cp.sum(cp.multiply(design.x, theta), axis=1)
    loss = _loss(design, pred)
    reg = _regularization(design, theta, values)
    assert model.personalize is not None  # (the design of a personalized model)
    first, second = neighbour_pairs(z, model.personalize.radius)  # the solver's B_r
    i, j = np.concatenate([first, second]), np.concatenate([second, first])  # D_i and D_j
    if len(i):
        rho = design.covariate_distances(i, j) @ phi_par
        gaps = cp.norm(z_par[i, :] - z_par[j, :], 2, axis=1)
        matching = values["match"] * cp.sum_squares(rho - gaps)
    else:
        matching = cp.Constant(0.0)
    metric = values["metric_penalty"] * cp.sum_squares(phi_par - 1)
    parts = {"loss": _value(loss), "regularization": _value(reg),
             "matching": _value(matching), "metric_penalty": _value(metric)}
    parts["total"] = sum(parts.values())
    return parts


def population_fit(design: PersonalizedDesign, weights: dict[str, float] | None = None,
                   solver: str | None = None) -> np.ndarray:
    """θ_pop = argmin Σ_i ℓ(X_i, Y_i, θ) + λψ(θ): the convex population model."""
    model = design.model
    values = model.weight_values(weights)
    theta = cp.Variable((1, design.x.shape[1]))
    objective_ = _loss(design, design.x @ theta[0]) + _regularization(design, theta, values)
    problem = cp.Problem(cp.Minimize(objective_))
    problem.solve(solver=solver)
    _require(problem)
    assert theta.value is not None  # (solved: _require checked the status)
    return theta.value[0]


def samples_fit(design: PersonalizedDesign, q: np.ndarray, weights: dict[str, float] | None = None,
                solver: str | None = None) -> np.ndarray:
    """Z with Q fixed and γ = 0: the separable convex problems min_z ℓ(X_i, Y_i, Qᵀz) + λψ(Qᵀz)."""
    model = design.model
    values = model.weight_values(weights)
    z = cp.Variable((design.n, q.shape[0]))
    theta = z @ q
    pred = cp.sum(cp.multiply(design.x, theta), axis=1)
    problem = cp.Problem(cp.Minimize(_loss(design, pred) + _regularization(design, theta, values)))
    problem.solve(solver=solver)
    _require(problem)
    assert z.value is not None  # (solved: _require checked the status)
    return z.value


def _value(expression: cp.Expression) -> float:
    """The value of an expression whose every parameter has a value."""
    value = expression.value
    assert value is not None  # (None only for a parameter left without a value)
    return float(value)


def _require(problem: cp.Problem) -> None:
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise NumericalError(f"the CVXPY problem is {problem.status}")
