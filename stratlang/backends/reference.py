"""The ``cvxpy`` backend, the reference: one ``cp.Problem`` for a whole stratified model.

Records enter through a sparse N × (K·n) matrix (record i's features in its stratum's
block), the Laplacian through the lifted incidence matrix of each graph factor — the
K × K product Laplacian is never formed — and every weight is a ``cp.Parameter`` so a
sweep re-solves the same compiled problem.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..data.design import Design
from ..data.row_structure import project_constant
from ..data.strata import where_strata
from ..kinds.regularizers import REGULARIZERS
from ..language import ir
from ..language.errors import NumericalError, warn
from ..language.params import Options, Param, Rule, iterations
from ..solvers.graphs import (
    constancy_incidence,
    grouped_incidence,
    grouped_lift,
    interaction_incidence,
    lifted_incidence,
)
from .base import Backend, Objective, StratifiedFit
from .memory import CVXPY_BYTES, stratified_need
from .objective import selected_rows, stratified_objective
from .reference_solvers import GOOD, INACCURATE, accuracy, solve_with_fallback
from .relaxation import nonconvex_parts
from .unbounded import refuse_if_unbounded


def _installed(name: str) -> bool:
    import cvxpy as cp

    return name.upper() in cp.installed_solvers()


def _not_installed(name: str) -> str:
    import cvxpy as cp

    return ("must be one of the installed CVXPY solvers: "
            + ", ".join(sorted(s.lower() for s in cp.installed_solvers())))


class CvxpyBackend(Backend):
    name = "cvxpy"
    doc = "The reference: one CVXPY problem for the whole model, solved by a conic solver."
    automatic = 3  # when ADMM and eigen cannot fit the model, or a CVXPY solver is named
    reference = True
    verbose_option = "verbose"
    solver_option = "method"
    options = Options("backend 'cvxpy'", (
        Param("method", type="name", default=None,
              check=Rule(_installed, _not_installed, "an installed CVXPY solver"),
              doc="the CVXPY solver (clarabel, scs, osqp, ...); by default Clarabel at tight "
                  "tolerances, then Clarabel's defaults, then SCS, until one solves"),
        Param("verbose", type="bool", default=False, doc="print the solver's log"),
        Param("max_iters", type="int", default=None, check=iterations,
              doc="the solver's iteration limit, in its own setting's name (clarabel, osqp: "
                  "max_iter; scs, ecos: max_iters; highs: simplex and ipm limits; scipy: "
                  "maxiter)"),
    ))

    def wrong_family(self, model: ir.CheckedModel) -> str:
        return (super().wrong_family(model) + "; the model is non-convex: the CVXPY reference "
                "evaluates its objective and solves its convex pieces (see "
                "stratlang.backends.personalized_reference)")

    def unsupported(self, design: Design) -> str | None:
        parts = nonconvex_parts(design.model)
        if parts:
            return (f"{' and '.join(parts)} {'is' if len(parts) == 1 else 'are'} not convex: "
                    "CVXPY cannot fit the model; ADMM fits it as a local method, and verify "
                    "compares that fit with the CVXPY fit of its convex relaxation")
        return None

    def memory(self, design: Design, options: dict[str, Any]) -> int | None:
        return stratified_need(design, CVXPY_BYTES)

    def fit(self, design: Design, weights: dict[str, float], options: dict[str, Any],
            warm: Any = None) -> StratifiedFit:
        reuse = (warm if isinstance(warm, StratifiedProblem) and warm.design is design
                 and warm.accepts(weights) else None)
        fit = fit_reference(design, weights, options, reuse)
        fit.info["backend"] = self.name
        return fit


def fit_reference(design: Design, weights: dict[str, float], options: dict[str, Any],
                  problem: StratifiedProblem | None = None) -> StratifiedFit:
    """Solves the model's CVXPY problem (``problem``: one compiled before, re-solved at
    other weights)."""
    start = time.perf_counter()
    problem = problem or StratifiedProblem(design, weights)
    try:
        theta, info = problem.solve(weights, options.get("method"),
                                    bool(options.get("verbose")), options.get("max_iters"))
        theta = project_constant(design, theta)  # (shared rows equal to the solver's accuracy)
    except NumericalError:  # an unbounded objective is the better diagnosis
        refuse_if_unbounded(design, weights, "cvxpy", only_unbounded=True)
        raise
    # a solver may stop "optimal" far along a direction of an unbounded objective
    refuse_if_unbounded(design, weights, "cvxpy", only_unbounded=True)
    objective = stratified_objective(design, theta, weights)
    if not math.isfinite(objective.total):  # constraints missed by the solver's tolerance
        theta, objective = feasible_point(design, theta, weights, info)
    info["fit_seconds"] = time.perf_counter() - start
    return StratifiedFit.of(design, theta, info, objective, warm=problem)


def feasible_point(design: Design, theta: np.ndarray, weights: dict[str, float],
                   info: dict[str, Any]) -> tuple[np.ndarray, Objective]:
    """The solver's point violates a constraint beyond the objective's tolerance (its
    value is +∞): the point projected onto every constraint's set, its objective stated
    beside the violation; an error when the projection is no better."""
    from .admm import make_feasible, regularizer_terms

    projected = make_feasible(theta.copy(), regularizer_terms(design, weights))
    absent = design.absent_mask()
    if absent is not None:
        projected[absent] = 0.0
    objective = stratified_objective(design, projected, weights)
    violation = info["accuracy"]["constraint_violation"]
    if not math.isfinite(objective.total):
        raise NumericalError(f"the CVXPY solver {info['solver']} ended at a point that "
                             f"violates the constraints (by up to {violation:.3g}), and its "
                             "projection onto them has no finite objective either")
    info["accuracy"]["projected"] = True
    info["note"] = (f"the solver's point violated the constraints by up to {violation:.3g}; "
                    "θ is its projection onto them")
    return projected, objective


class StratifiedProblem:
    """``weights`` are the values the problem will first be solved at: a term whose weight
    is fixed at zero there (and is no sweep) is left out, since a zero-weighted term only
    adds degenerate structure that makes interior-point solvers stall."""

    def __init__(self, design: Design, weights: dict[str, float]):
        import cvxpy as cp

        self.design = design
        model, loss = design.model, design.loss
        k, n, m = design.theta_shape
        self.basis_gammas: tuple[float, ...] | None = None
        if model.basis is None:
            self.theta = cp.Variable((k * n, m), name="theta")
        else:  # θ = V β: the basis depends on the graph weights it was built at
            from .eigen import laplacian_basis

            _, vectors = laplacian_basis(design, weights)
            self.basis_gammas = tuple(design.strata.gammas(weights))
            beta = cp.Variable((vectors.shape[1] * n, m), name="beta")
            self.theta = sp.kron(sp.csr_matrix(vectors), sp.identity(n), format="csr") @ beta
        self.parameters: dict[str, cp.Parameter] = {
            name: cp.Parameter(nonneg=True, name=name.replace(".", "_"))
            for name, h in model.hypers().items() if h.is_sweep or weights[name] != 0}
        objective: Any = 0
        constraints: list[cp.Constraint] = []
        built: list[Any] = []  # the record matrix, built once for all parts

        def whole() -> Any:
            if not built:
                built.append(design.record_matrix())
            return built[0]

        for part in design.loss_parts():
            def records_matrix(rows=part.records):
                return whole() if rows is None else whole()[rows]

            value, more = loss.cvxpy_stratified(self.theta, part.of(design.records),
                                                records_matrix, k, part.params, part.strata)
            objective, constraints = objective + value, constraints + more
        for term in model.regularizers:
            entry = REGULARIZERS[term.kind.name]
            rows = selected_rows(design, term)
            if len(rows) == 0:
                continue
            strata = where_strata(design.strata, term.where)
            strata = np.arange(k) if strata is None else strata
            index = (strata[:, None] * n + rows[None, :]).reshape(-1)
            block = self.theta[index, :]
            if entry.is_constraint:
                constraints += entry.constraints(block, term.kind.p)
            elif term.hyper_name in self.parameters:
                weight = self.parameters[term.hyper_name]
                objective = objective + weight * entry.cvxpy(block, len(strata), len(rows),
                                                             term.kind.p)
        if model.structured:
            value, more = self.structured_laplacian(design)
            objective, constraints = objective + value, constraints + more
        else:
            groups = design.row_groups()
            for axis, factor in enumerate(design.strata.factors):
                if factor.hyper_name not in self.parameters:
                    continue
                lifted = grouped_incidence(groups, axis, k, n)
                if lifted.shape[0] == 0:
                    continue
                gamma = self.parameters[factor.hyper_name]
                objective = objective + gamma * (0.5 * cp.sum_squares(lifted @ self.theta))
        for strata, rows in design.absent():  # a feature absent from these strata
            index = (strata[:, None] * n + rows[None, :]).reshape(-1)
            constraints.append(self.theta[index, :] == 0)
        self.problem = cp.Problem(cp.Minimize(objective), constraints)

    def structured_laplacian(self, design: Design) -> tuple[Any, list[Any]]:
        """The Laplacian terms of a model whose rows differ (``by``, ``shared``, an own
        weight, ``interact``): per row group, each factor's term with the group's weight
        parameter, each interaction's; rows constant along a factor as equality
        constraints (θ's differences along it are 0)."""
        import cvxpy as cp

        from ..data.row_structure import row_vary

        model = design.model
        k, n, _ = design.theta_shape
        vary = row_vary(design)
        value: Any = 0
        constraints: list[Any] = []
        for group in design.row_groups():
            own = {model.factor_of(v.column): v.hyper_name
                   for v in vary[int(group.rows[0])] or () if v.weight is not None}
            for axis, factor in enumerate(design.strata.factors):
                if group.is_constant(axis):
                    lifted = grouped_lift([group], k, n,
                                          lambda g, a=axis: constancy_incidence(g.factors, a))
                    if lifted.shape[0]:
                        constraints.append(lifted @ self.theta == 0)
                    continue
                name = own.get(axis, factor.hyper_name)
                if name not in self.parameters:
                    continue
                lifted = grouped_lift([group], k, n,
                                      lambda g, a=axis: lifted_incidence(g.factors, a))
                if lifted.shape[0]:
                    value = value + self.parameters[name] * (
                        0.5 * cp.sum_squares(lifted @ self.theta))
            for term in model.interactions:
                joined = [model.factor_of(c) for c in term.columns]
                if term.hyper_name not in self.parameters or any(
                        group.is_constant(a) for a in joined):
                    continue  # (vanishes on rows constant along a factor it joins)
                lifted = grouped_lift([group], k, n,
                                      lambda g, j=joined: interaction_incidence(g.factors, j))
                if lifted.shape[0]:
                    value = value + self.parameters[term.hyper_name] * (
                        0.5 * cp.sum_squares(lifted @ self.theta))
        return value, constraints

    def value_at(self, theta: np.ndarray) -> float:
        """CVXPY's value of the objective (at the weights last solved) at another point θ
        (K, n, m) of a full model, e.g. a local method's: the check that both evaluate the
        same function."""
        import cvxpy as cp

        assert isinstance(self.theta, cp.Variable)  # (a basis model's θ is an expression)
        solved = self.theta.value
        self.theta.value = theta.reshape(self.theta.shape)
        try:
            return float(self.problem.objective.value)
        finally:
            self.theta.value = solved

    def accepts(self, weights: dict[str, float]) -> bool:
        """Can this problem be re-solved at these weights (none compiled out is needed, and
        a basis was built at the same graph weights)?"""
        if (self.basis_gammas is not None
                and tuple(self.design.strata.gammas(weights)) != self.basis_gammas):
            return False
        return all(weights[name] == 0 for name in set(weights) - set(self.parameters))

    def solve(self, weights: dict[str, float], method: str | None = None,
              verbose: bool = False, max_iters: int | None = None) -> tuple[np.ndarray, dict]:
        """θ of shape (K, n, m) and solver information, with the reference's own accuracy
        (see :mod:`.reference_solvers`); raises NumericalError on failure."""
        import cvxpy as cp

        if not self.accepts(weights):
            raise ValueError("a weight compiled out at 0 is nonzero here; build a new problem")
        for name, param in self.parameters.items():
            param.value = float(weights[name])
        status, tried = solve_with_fallback(self.problem, method, max_iters, verbose)
        info = {"status": status, "solver": self.problem.solver_stats.solver_name,
                "solve_time": self.problem.solver_stats.solve_time,
                "iterations": self.problem.solver_stats.num_iters,
                "cvxpy_objective": self.problem.value, "attempts": tried}
        if status not in GOOD + INACCURATE or self.theta.value is None:
            raise NumericalError(f"the CVXPY problem is {status}: "
                                 + {cp.INFEASIBLE: "the constraints cannot all hold",
                                    cp.UNBOUNDED: "the objective is unbounded below; add a "
                                                  "regularizer or more data"}.get(status,
                                                  "the solver could not solve it"))
        info["accuracy"] = accuracy(self.problem)
        if status in INACCURATE:
            warn(f"CVXPY solver {info['solver']} reports '{status}': the result is not "
                 "certified to full accuracy")
        return self.theta.value.reshape(self.design.theta_shape), info
