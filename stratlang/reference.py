"""The CVXPY reference compiler: one ``cp.Problem`` for a whole stratified model.

Records enter through a sparse N × (K·n) matrix (record i's features in its stratum's
block), the Laplacian through the lifted incidence matrix of each graph factor — the
K × K product Laplacian is never formed — and every weight is a ``cp.Parameter`` so a
sweep re-solves the same compiled problem.
"""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from .design import Design
from .errors import NumericalError
from .objective import selected_rows
from .regularizers import REGULARIZERS
from .solvers.graphs import lifted_incidence

GOOD = (cp.OPTIMAL,)
INACCURATE = (cp.OPTIMAL_INACCURATE,)


class NumericalWarning(UserWarning):
    """The solver returned a result it could not certify to full accuracy."""


class StratifiedProblem:
    """``weights`` are the values the problem will first be solved at: a term whose weight
    is fixed at zero there (and is no sweep) is left out, since a zero-weighted term only
    adds degenerate structure that makes interior-point solvers stall."""

    def __init__(self, design: Design, weights: dict[str, float]):
        self.design = design
        model, loss = design.model, design.loss
        k, n, m = design.theta_shape
        self.theta = cp.Variable((k * n, m), name="theta")
        self.parameters: dict[str, cp.Parameter] = {
            name: cp.Parameter(nonneg=True, name=name.replace(".", "_"))
            for name, h in model.hypers().items() if h.is_sweep or weights[name] != 0}
        p = model.response.loss.p
        objective, constraints = loss.cvxpy_stratified(self.theta, design.record_matrix,
                                                       design.y, design.z, k, p)
        for i, term in enumerate(model.regularizers):
            entry = REGULARIZERS[term.kind.name]
            rows = selected_rows(design, term)
            if len(rows) == 0:
                continue
            index = (np.arange(k)[:, None] * n + rows[None, :]).reshape(-1)
            block = self.theta[index, :]
            if entry.is_constraint:
                constraints += entry.constraints(block, term.kind.p)
            elif (name := f"reg{i}.{term.kind.name}") in self.parameters:
                weight = self.parameters[name]
                objective = objective + weight * entry.cvxpy(block, k, len(rows), term.kind.p)
        graphs = design.strata.graphs()
        for axis, factor in enumerate(design.strata.factors):
            name = "stratify." + "_".join(factor.columns)
            if factor.graph.n_edges == 0 or name not in self.parameters:
                continue
            lifted = sp.kron(lifted_incidence(graphs, axis), sp.identity(n), format="csr")
            gamma = self.parameters[name]
            objective = objective + gamma * (0.5 * cp.sum_squares(lifted @ self.theta))
        self.problem = cp.Problem(cp.Minimize(objective), constraints)

    def solve(self, weights: dict[str, float], method: str | None = None,
              verbose: bool = False, **options) -> tuple[np.ndarray, dict]:
        """θ of shape (K, n, m) and solver information; raises NumericalError on failure."""
        for name in set(weights) - set(self.parameters):
            if weights[name] != 0:
                raise ValueError(f"'{name}' was compiled out at weight 0; build a new problem")
        for name, param in self.parameters.items():
            param.value = float(weights[name])
        solver = method.upper() if method else None
        try:
            self.problem.solve(solver=solver, verbose=verbose, warm_start=True, **options)
        except cp.error.SolverError as err:
            raise NumericalError(f"CVXPY solver {solver or '(default)'} failed: {err}") from None
        status = self.problem.status
        info = {"status": status, "solver": self.problem.solver_stats.solver_name,
                "solve_time": self.problem.solver_stats.solve_time,
                "iterations": self.problem.solver_stats.num_iters,
                "cvxpy_objective": self.problem.value}
        if status not in GOOD + INACCURATE or self.theta.value is None:
            raise NumericalError(f"the CVXPY problem is {status}: "
                                 + {cp.INFEASIBLE: "the constraints cannot all hold",
                                    cp.UNBOUNDED: "the objective is unbounded below; add a "
                                                  "regularizer or more data"}.get(status,
                                                  "the solver could not solve it"))
        if status in INACCURATE:
            warnings.warn(f"CVXPY solver {info['solver']} reports '{status}': the result is "
                          "not certified to full accuracy", NumericalWarning, stacklevel=3)
        return self.theta.value.reshape(self.design.theta_shape), info
