"""The ``admm`` backend: a checked stratified model and its data → solvers.admm.

This module translates language objects into arrays and callables; the engine in
``solvers`` sees only arrays, a Laplacian solver and prox functions.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .design import Design
from .errors import NumericalError
from .objective import selected_rows
from .reference import NumericalWarning
from .regularizers import REGULARIZERS
from .solvers.admm import State, admm
from .solvers.laplacian import laplacian_solver

DEFAULTS: dict[str, Any] = {"max_iter": 5000, "eps_abs": 1e-6, "eps_rel": 1e-6, "penalty": 1.0,
                            "relax": 1.0, "adaptive": True, "progress": None}


def unsupported(design: Design) -> str | None:
    """Why the ADMM backend cannot fit this model, or None when it can."""
    m = design.theta_shape[2]
    loss = design.loss
    if not loss.admm_ready(m):
        return f"the ADMM backend has no prox for loss '{loss.name}'" + (
            f" with {m} outputs" if loss.admm_ready(1) else "")
    for term in design.model.regularizers:
        entry = REGULARIZERS[term.kind.name]
        if not entry.admm_ready():
            return f"the ADMM backend has no prox for regularizer '{entry.name}'"
    return None


@dataclass
class _Term:
    rows: np.ndarray
    prox: Any
    weight: float
    params: dict


def _regularizer_prox(term: _Term):
    def prox(v: np.ndarray, t: float) -> np.ndarray:
        out = v.copy()
        out[:, term.rows, :] = term.prox(v[:, term.rows, :], t * term.weight, term.params)
        return out

    return prox


def fit_admm(design: Design, weights: dict[str, float], options: dict[str, Any],
             warm: State | None = None):
    """(θ of shape (K, n, m), info, final state). Raises NumericalError on divergence and
    warns (with the final residuals) when the iteration limit is reached."""
    reason = unsupported(design)
    if reason:
        raise NumericalError(reason + "; use backend='cvxpy'")
    opts = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    model = design.model
    k, n, m = design.theta_shape
    loss_prox = design.loss.admm_prox(design.x, design.y, design.z, k, model.response.loss.p)
    terms, constraints = [], []
    for i, term in enumerate(model.regularizers):
        entry = REGULARIZERS[term.kind.name]
        rows = selected_rows(design, term)
        if len(rows) == 0:
            continue
        weight = 1.0 if entry.is_constraint else weights[f"reg{i}.{term.kind.name}"]
        if weight == 0 and not entry.is_constraint:
            continue
        t = _Term(rows, entry.prox, weight, term.kind.p)
        terms.append(_regularizer_prox(t))
        if entry.is_constraint:
            constraints.append(t)
    gammas = [weights["stratify." + "_".join(f.columns)] for f in design.strata.factors]
    solver = laplacian_solver(design.strata.graphs(), gammas)
    with np.errstate(over="ignore", invalid="ignore"):
        result = admm(loss_prox, terms, solver.solve, (k, n, m), lam=opts["penalty"],
                      eps_abs=opts["eps_abs"], eps_rel=opts["eps_rel"],
                      max_iter=opts["max_iter"], adaptive=opts["adaptive"], relax=opts["relax"],
                      warm=warm, progress=opts["progress"])
    theta = result.theta
    if not np.all(np.isfinite(theta)):
        raise NumericalError(f"ADMM diverged after {result.iterations} iterations (non-finite "
                             "iterates); try a smaller 'penalty' or backend='cvxpy'")
    for t in constraints:  # the loss copy, made exactly feasible for the constraint terms
        theta[:, t.rows, :] = t.prox(theta[:, t.rows, :], 0.0, t.params)
    info = {"backend": "admm", "solver": f"ADMM ({type(solver).__name__})",
            "status": "optimal" if result.converged else "max_iter",
            "iterations": result.iterations, "converged": result.converged,
            "primal_residual": result.primal_residual, "dual_residual": result.dual_residual,
            "eps_primal": result.eps_primal, "eps_dual": result.eps_dual,
            "penalty": result.state.lam, "solve_time": result.seconds,
            "history": result.history}
    if not result.converged:
        warnings.warn(f"ADMM did not converge in {result.iterations} iterations: primal residual "
                      f"{result.primal_residual:.3g} (tolerance {result.eps_primal:.3g}), dual "
                      f"residual {result.dual_residual:.3g} (tolerance {result.eps_dual:.3g}); "
                      "raise max_iter or loosen eps_abs / eps_rel", NumericalWarning, stacklevel=3)
    return theta, info, result.state
