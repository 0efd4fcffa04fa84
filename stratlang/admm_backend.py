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
from .objective import selected_rows, term_value
from .reference import NumericalWarning
from .regularizers import REGULARIZERS
from .solvers.admm import Result, State, admm
from .solvers.laplacian import laplacian_solver
from .solvers.prox import QuadraticProx
from .solvers.quadratic import solve_quadratic

DEFAULTS: dict[str, Any] = {"max_iter": 5000, "eps_abs": 1e-6, "eps_rel": 1e-6, "penalty": 1.0,
                            "relax": 1.6, "adaptive": True, "progress": None}


def unsupported(design: Design) -> str | None:
    """Why the ADMM backend cannot fit this model, or None when it can."""
    m = design.theta_shape[2]
    loss = design.loss
    params = design.model.response.loss.p
    if not loss.admm_ready(m, params):
        detail = (f" with parameters {params}" if loss.admm_ready(m)
                  else f" with {m} outputs" if loss.admm_ready(1) else "")
        return f"the ADMM backend has no prox for loss '{loss.name}'{detail}"
    for term in design.model.regularizers:
        entry = REGULARIZERS[term.kind.name]
        if not entry.admm_ready():
            return f"the ADMM backend has no prox for regularizer '{entry.name}'"
    return None


@dataclass(frozen=True)
class RegularizerTerm:
    """One regularizer term as ADMM sees it: the parameter rows it acts on, its weight."""

    kind: str
    rows: np.ndarray
    weight: float
    params: dict
    constraint: bool

    def prox(self, v: np.ndarray, t: float) -> np.ndarray:
        out = v.copy()
        out[:, self.rows, :] = REGULARIZERS[self.kind].prox(v[:, self.rows, :], t * self.weight,
                                                             self.params)
        return out

    def value(self, theta: np.ndarray) -> float:
        return term_value(REGULARIZERS[self.kind], theta[:, self.rows, :], self.weight,
                          self.params)


def regularizer_terms(design: Design, weights: dict[str, float]) -> list[RegularizerTerm]:
    """The terms that act (no rows selected, or weight 0, and a term drops out)."""
    terms = []
    for i, term in enumerate(design.model.regularizers):
        entry = REGULARIZERS[term.kind.name]
        rows = selected_rows(design, term)
        weight = 1.0 if entry.is_constraint else weights[f"reg{i}.{term.kind.name}"]
        if len(rows) and (weight != 0 or entry.is_constraint):
            terms.append(RegularizerTerm(term.kind.name, rows, weight, dict(term.kind.p),
                                         entry.is_constraint))
    return terms


def make_feasible(theta: np.ndarray, terms: list[RegularizerTerm]) -> np.ndarray:
    """The loss copy, projected (in place) onto every constraint term's set."""
    for term in terms:
        if term.constraint:
            theta[:, term.rows, :] = REGULARIZERS[term.kind].prox(theta[:, term.rows, :], 0.0,
                                                                  term.params)
    return theta


def inner_tolerance(options: dict[str, Any]):
    """The tolerance of inexact inner (Newton) solves, as ``rule(primal, dual, previous)``
    of the residual-to-tolerance ratios: loose (1e-4) while ADMM is far from converged, and
    down to 100 times tighter than the outer tolerance near the end."""
    floor = 1e-2 * min(options["eps_abs"], options["eps_rel"] or options["eps_abs"])

    def rule(primal: float, dual: float, previous: float | None) -> float:
        if previous is None:
            return 1e-4
        return min(previous, max(floor, 1e-2 * floor * min(primal, dual)))

    return rule


def report(result: Result, backend: str, solver: str, finite: bool | None = None
           ) -> dict[str, Any]:
    """``info`` for a fitted model; raises NumericalError on non-finite iterates and warns
    (with the final residuals) when the iteration limit was reached. ``finite``: whether θ
    is finite, when θ is not at hand."""
    if not (np.all(np.isfinite(result.theta)) if finite is None else finite):
        raise NumericalError(f"ADMM diverged after {result.iterations} iterations (non-finite "
                             "iterates); try a smaller 'penalty' or backend='cvxpy'")
    if not result.converged:
        warnings.warn(f"ADMM did not converge in {result.iterations} iterations: primal residual "
                      f"{result.primal_residual:.3g} (tolerance {result.eps_primal:.3g}), dual "
                      f"residual {result.dual_residual:.3g} (tolerance {result.eps_dual:.3g}); "
                      "raise max_iter or loosen eps_abs / eps_rel", NumericalWarning, stacklevel=4)
    return {"backend": backend, "solver": solver,
            "status": "optimal" if result.converged else "max_iter",
            "iterations": result.iterations, "converged": result.converged,
            "primal_residual": result.primal_residual, "dual_residual": result.dual_residual,
            "eps_primal": result.eps_primal, "eps_dual": result.eps_dual,
            "penalty": result.lam, "solve_time": result.seconds, "history": result.history}


QUADRATIC_LOSSES = ("squared", "square_classification")
QUADRATIC_REGULARIZERS = ("zero", "sum_squares")
DIRECT_LIMIT = 2_000_000  # unknowns K·n above which ADMM is used even for quadratic problems


def _quadratic_diagonal(design: Design, weights: dict[str, float]) -> np.ndarray | None:
    """The regularization weight of each parameter row when the problem is quadratic and
    unconstrained (so one linear system solves it); None otherwise."""
    k, n, _ = design.theta_shape
    if design.loss.name not in QUADRATIC_LOSSES or k * n > DIRECT_LIMIT:
        return None
    diagonal = np.zeros(n)
    for i, term in enumerate(design.model.regularizers):
        if term.kind.name not in QUADRATIC_REGULARIZERS:
            return None
        if term.kind.name == "sum_squares":  # (λ/2)‖θ‖² contributes λ to the diagonal
            diagonal[selected_rows(design, term)] += weights[f"reg{i}.{term.kind.name}"]
    return diagonal


def fit_direct(design: Design, weights: dict[str, float], diagonal: np.ndarray):
    import time

    start = time.perf_counter()
    k = design.strata.k
    prox = QuadraticProx(design.x, design.y, design.z, k)
    gammas = [weights["stratify." + "_".join(f.columns)] for f in design.strata.factors]
    try:
        theta = solve_quadratic(prox.gram, prox.xty, diagonal, design.strata.graphs(), gammas)
    except RuntimeError:  # singular: some parameters are not determined by the data
        return None
    info = {"backend": "admm", "solver": "direct sparse solve (quadratic problem)",
            "status": "optimal", "iterations": 0, "converged": True,
            "solve_time": time.perf_counter() - start}
    return theta, info, None


def fit_admm(design: Design, weights: dict[str, float], options: dict[str, Any],
             warm: State | None = None):
    """(θ of shape (K, n, m), info, final state). Raises NumericalError on divergence and
    warns (with the final residuals) when the iteration limit is reached."""
    reason = unsupported(design)
    if reason:
        raise NumericalError(reason + "; use backend='cvxpy'")
    opts = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    diagonal = _quadratic_diagonal(design, weights)
    note = None
    if diagonal is not None and warm is None:
        direct = fit_direct(design, weights, diagonal)
        if direct is not None:
            return direct
        # the minimizer is not unique (e.g. a stratum without data and without graph
        # neighbours): ADMM still converges to a minimizer
        note = "quadratic system singular (minimizer not unique): solved by ADMM"
    model = design.model
    k, n, m = design.theta_shape
    loss_prox = design.loss.admm_prox(design.x, design.y, design.z, k, model.response.loss.p)
    on_residuals = None
    if hasattr(loss_prox, "tol"):
        rule = inner_tolerance(opts)
        loss_prox.tol = rule(np.inf, np.inf, None)

        def on_residuals(primal: float, dual: float) -> None:
            loss_prox.tol = rule(primal, dual, loss_prox.tol)
    terms = regularizer_terms(design, weights)
    gammas = [weights["stratify." + "_".join(f.columns)] for f in design.strata.factors]
    solver = laplacian_solver(design.strata.graphs(), gammas)
    with np.errstate(over="ignore", invalid="ignore"):
        result = admm(loss_prox, [t.prox for t in terms], solver.solve, (k, n, m), lam=opts["penalty"],
                      eps_abs=opts["eps_abs"], eps_rel=opts["eps_rel"],
                      max_iter=opts["max_iter"], adaptive=opts["adaptive"], relax=opts["relax"],
                      warm=warm, progress=opts["progress"], on_residuals=on_residuals,
                      initial=design.loss.admm_initial(design.y, (k, n, m),
                                                       model.response.loss.p))
    info = report(result, "admm", f"ADMM ({type(solver).__name__})")
    theta = make_feasible(result.theta, terms)
    if note:
        info["note"] = note
    return theta, info, result.state
