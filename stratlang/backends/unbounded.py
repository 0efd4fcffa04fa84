"""Is a stratified model's objective unbounded below? A loss that falls without bound
(e.g. exponential regression where y = 0: −xᵀθ alone) makes it so when some direction d
of θ lowers those records' losses, leaves every other record's predictor, every
penalty and every graph difference unchanged, and stays inside every constraint. That is
a linear program in d, solved here; a solver or ADMM would otherwise report an iterate
that merely ran far, or a divergence blamed on its step.
"""

from __future__ import annotations

import numpy as np

from ..data.design import Design
from ..data.strata import where_strata
from ..kinds.regularizers import REGULARIZERS
from ..language.errors import NumericalError, describe_rows
from ..solvers.graphs import grouped_incidence
from .objective import selected_rows


def unbounded_direction(design: Design, weights: dict[str, float]) -> np.ndarray | None:
    """A direction d (K, n, m) along which the objective falls without bound, or None
    (none exists, or the loss is bounded below, or the model has a basis)."""
    import cvxpy as cp

    if design.model.basis is not None or design.y is None:
        return None
    parts = design.loss_parts()
    signs = np.zeros(len(design.z))
    for part in parts:
        records = part.of(design.records)
        falls = design.loss.falls_without_bound(records, part.params)
        if falls is None:
            continue
        signs[slice(None) if part.records is None else part.records] = falls
    if not np.any(signs):
        return None
    k, n, m = design.theta_shape
    d = cp.Variable((k * n, m))
    matrix = design.record_matrix()
    active = np.flatnonzero(design.weight > 0) if design.weight is not None else None
    keep = np.ones(len(signs), dtype=bool) if active is None else np.isin(
        np.arange(len(signs)), active)
    falling, steady = np.flatnonzero(keep & (signs != 0)), np.flatnonzero(keep & (signs == 0))
    moved = cp.multiply(signs[falling][:, None], matrix[falling] @ d)
    constraints = [moved >= 0, cp.sum(moved) == 1]
    if len(steady):
        constraints.append(matrix[steady] @ d == 0)
    for term in design.model.regularizers:
        entry = REGULARIZERS[term.kind.name]
        rows = selected_rows(design, term)
        if len(rows) == 0 or not (entry.is_constraint or weights[term.hyper_name] > 0):
            continue
        strata = where_strata(design.strata, term.where)
        strata = np.arange(k) if strata is None else strata
        index = (strata[:, None] * n + rows[None, :]).reshape(-1)
        constraints += entry.recession(d[index, :], term.kind.p)
    groups = design.row_groups()
    for axis, factor in enumerate(design.strata.factors):
        if weights[factor.hyper_name] > 0:
            lifted = grouped_incidence(groups, axis, k, n)
            if lifted.shape[0]:
                constraints.append(lifted @ d == 0)
    for strata, rows in design.absent():
        constraints.append(d[(strata[:, None] * n + rows[None, :]).reshape(-1), :] == 0)
    problem = cp.Problem(cp.Minimize(0), constraints)
    try:
        problem.solve(solver="CLARABEL")
    except cp.error.SolverError:
        return None
    if problem.status != "optimal" or d.value is None:
        return None
    return d.value.reshape(k, n, m)


def unbounded_error(design: Design, direction: np.ndarray, backend: str) -> NumericalError:
    """The error for an unbounded objective, naming the rows whose losses fall along the
    direction and the parameters that move."""
    k, n, m = direction.shape
    matrix = design.record_matrix()
    moved = matrix @ direction.reshape(k * n, m)
    rows = np.flatnonzero(np.abs(moved).max(axis=1) > 1e-6 * np.abs(moved).max())
    where = np.abs(direction).max(axis=2)
    strata, parameters = np.nonzero(where > 1e-6 * where.max())
    names = sorted({design.rows[j] for j in parameters})
    said = (f"the objective is unbounded below: moving {', '.join(names)} (in "
            f"{len(set(strata.tolist()))} of {k} strata) lowers the loss of the records in "
            f"{describe_rows(list(design.index[rows]))} without end, and nothing else in the model resists "
            f"(loss '{design.loss.name}' falls without bound there); add a regularizer on "
            "those parameters or drop the feature")
    return NumericalError(f"backend '{backend}': " + said)


def refuse_if_unbounded(design: Design, weights: dict[str, float], backend: str) -> None:
    """Raises the unbounded error when the objective is unbounded below."""
    direction = unbounded_direction(design, weights)
    if direction is not None:
        raise unbounded_error(design, direction, backend)

