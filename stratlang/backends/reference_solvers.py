"""How the CVXPY reference solves: which solver, at which settings, and how accurate its
answer is.

The reference is what every fast backend is judged by, so by default it asks Clarabel
(an interior-point solver for every cone the models use) for tolerances far tighter than
its defaults, and falls back to Clarabel's defaults, then to SCS, when that fails. Options
are given in stratlang's words (``max_iters``) and translated here into each solver's own.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..language.errors import NumericalError
from .base import OptionValueError

GOOD = ("optimal",)  # CVXPY's status strings (cvxpy is imported only to solve)
INACCURATE = ("optimal_inaccurate",)
CERTIFIED = ("infeasible", "unbounded")  # a solver's certificate: no fallback changes it

# Clarabel's defaults stop at a relative gap of 1e-8, which leaves θ accurate to ~1e-4
# where the objective is flat (a distribution's rate); these leave it to ~1e-7
TIGHT_CLARABEL = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10,
                  "tol_ktratio": 1e-8}
TIGHT_SCS = {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iters": 200_000}


@dataclass(frozen=True)
class Attempt:
    """One solve: a solver at some settings, in words for the fit's info."""

    solver: str | None  # CVXPY's name (None: CVXPY chooses)
    settings: dict[str, Any]
    words: str
    named: bool = False  # the user's choice: its failure is the answer, no fallback


# each solver's own name for an iteration limit, as CVXPY passes it on
ITERATION_LIMIT: dict[str, Callable[[int], dict[str, Any]]] = {
    "CLARABEL": lambda n: {"max_iter": n},
    "SCS": lambda n: {"max_iters": n},
    "OSQP": lambda n: {"max_iter": n},
    "ECOS": lambda n: {"max_iters": n},
    "ECOS_BB": lambda n: {"max_iters": n},
    "CVXOPT": lambda n: {"max_iters": n},
    "HIGHS": lambda n: {"simplex_iteration_limit": n, "ipm_iteration_limit": n},
    "SCIPY": lambda n: {"scipy_options": {"maxiter": n}},
}


def solver_settings(solver: str | None, max_iters: int | None) -> dict[str, Any]:
    """The settings stratlang's options become for ``solver`` (CVXPY's upper-case name;
    None: the default chain, Clarabel first); an option the solver has no word for is an
    OptionError naming the solvers that take it."""
    if max_iters is None:
        return {}
    name = solver or "CLARABEL"
    if name not in ITERATION_LIMIT:
        takes = ", ".join(s.lower() for s in ITERATION_LIMIT)
        raise OptionValueError("max_iters", (
            f"option 'max_iters': the CVXPY solver {name.lower()} takes no iteration limit "
            f"that stratlang knows how to pass (it is translated for {takes})"))
    return ITERATION_LIMIT[name](max_iters)


def attempts(method: str | None, max_iters: int | None) -> list[Attempt]:
    """The solves to try in turn: by default Clarabel at tight tolerances, at its defaults,
    then SCS tight; a named solver alone (Clarabel: tight, then at its defaults)."""
    import cvxpy as cp

    if method is not None and method.upper() != "CLARABEL":
        name = method.upper()
        return [Attempt(name, solver_settings(name, max_iters), name, named=True)]
    installed = set(cp.installed_solvers())
    if "CLARABEL" not in installed:  # (a dependency of CVXPY: only an odd install lacks it)
        return [Attempt(None, {}, "CVXPY's choice (Clarabel is not installed)")]
    limit = solver_settings("CLARABEL", max_iters)
    chain = [Attempt("CLARABEL", {**TIGHT_CLARABEL, **limit}, "CLARABEL at tight tolerances"),
             Attempt("CLARABEL", limit, "CLARABEL at its default tolerances")]
    if method is None and "SCS" in installed:
        chain.append(Attempt("SCS", {**TIGHT_SCS, **solver_settings("SCS", max_iters)},
                             "SCS at tight tolerances"))
    return chain


def solve_with_fallback(problem: Any, method: str | None, max_iters: int | None,
                        verbose: bool) -> tuple[str, list[str]]:
    """Solves ``problem`` (a cp.Problem) by the first attempt that ends optimal (else
    the first inaccurate one, solved again last; a certificate of infeasibility or
    unboundedness ends the chain). Returns (status, what each attempt gave); raises
    NumericalError when every attempt failed."""
    tried: list[str] = []
    inaccurate: Attempt | None = None
    status = "solver_error"
    chain = attempts(method, max_iters)
    for attempt in chain:
        status, said = _solve(problem, attempt, verbose)
        tried.append(f"{attempt.words}: {said}")
        if status in GOOD + CERTIFIED:
            return status, tried
        if status in INACCURATE and inaccurate is None:
            inaccurate = attempt
    if inaccurate is not None:
        if inaccurate is not chain[-1] or status not in INACCURATE:
            status, _ = _solve(problem, inaccurate, verbose)  # its point back in the variables
        return status, tried
    if len(chain) == 1 and chain[0].named:
        raise NumericalError(f"CVXPY solver {chain[0].solver} failed: {said}")
    raise NumericalError("CVXPY could not solve the reference problem (" + "; ".join(tried)
                         + ")")


def _solve(problem: Any, attempt: Attempt, verbose: bool) -> tuple[str, str]:
    """The status of one solve (CVXPY's string; 'solver_error' when the solver raised),
    and the status in words (with the solver's message when it raised)."""
    import cvxpy as cp

    try:
        with warnings.catch_warnings():  # an inaccurate result gets our own warning
            warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            problem.solve(solver=attempt.solver, verbose=verbose, warm_start=True,
                          **attempt.settings)
    except (cp.error.SolverError, ValueError, TypeError) as err:
        return "solver_error", str(err)
    status = str(problem.status)
    return status, ("stopped at its iteration limit (max_iters)" if status == "user_limit"
                    else status)


def accuracy(problem: Any) -> dict[str, float]:
    """The reference's own accuracy at its point: the largest violation of any constraint
    (every solver), and Clarabel's duality gap and residuals when Clarabel solved."""
    out: dict[str, float] = {}
    violations = [float(np.max(c.violation())) for c in problem.constraints
                  if c.violation() is not None and np.size(c.violation())]
    out["constraint_violation"] = max(violations, default=0.0)
    solver = getattr(problem, "_solver_cache", {}).get("CLARABEL")
    if solver is not None and problem.solver_stats.solver_name == "CLARABEL":
        try:
            solution = solver.get_solution()
            out["duality_gap"] = abs(float(solution.obj_val) - float(solution.obj_val_dual))
            out["primal_residual"] = float(solution.r_prim)
            out["dual_residual"] = float(solution.r_dual)
        except (AttributeError, TypeError, ValueError):  # another Clarabel version
            pass
    return out
