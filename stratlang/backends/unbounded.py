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
from ..data.row_structure import interactions, weighted_groups
from ..data.strata import where_strata
from ..kinds.regularizers import REGULARIZERS
from ..language.errors import NumericalError, describe_rows
from ..solvers.graphs import grouped_incidence, grouped_lift, interaction_incidence
from .objective import selected_rows


def unbounded_direction(design: Design, weights: dict[str, float], only_unbounded: bool = False
                        ) -> tuple[np.ndarray, bool] | None:
    """A direction d (K, n, m) along which the objective keeps falling, and whether it
    falls to −∞ (else toward an infimum no θ attains); None when there is none (or the
    loss never falls so, or the model has a basis). ``only_unbounded``: look for a fall to
    −∞ only (no linear program is solved for a loss that cannot fall so)."""
    import cvxpy as cp

    if (design.model.basis is not None or design.y is None
            or not design.loss.may_fall_without_end):
        return None
    k, n, m = design.theta_shape
    d = cp.Variable((k * n, m))
    matrix = design.record_matrix()
    counted = np.ones(len(design.z), dtype=bool) if design.weight is None else design.weight > 0
    constraints: list = []
    margins, unbounded = [], True
    for part in design.loss_parts():
        rows = np.arange(len(design.z)) if part.records is None else part.records
        rows = rows[counted[rows]]  # (a record of weight 0 counts for nothing)
        if len(rows) == 0:
            continue
        found = design.loss.recession(design.records.subset(rows), matrix[rows] @ d,
                                      part.params)
        if found is None:  # this part's losses never fall without end: they stay put
            constraints.append(matrix[rows] @ d == 0)
            continue
        constraints += found.constraints
        margins.append(found.margin)
        unbounded = unbounded and found.unbounded
    if not margins or (only_unbounded and not unbounded):
        return None
    constraints.append(sum(margins) == 1)
    for term in design.model.regularizers:
        entry = REGULARIZERS[term.kind.name]
        rows = selected_rows(design, term)
        if len(rows) == 0 or not (entry.is_constraint or weights[term.hyper_name] > 0):
            continue
        strata = where_strata(design.strata, term.where)
        strata = np.arange(k) if strata is None else strata
        index = (strata[:, None] * n + rows[None, :]).reshape(-1)
        constraints += entry.recession(d[index, :], term.kind.p)
    groups = weighted_groups(design, weights)
    gammas = design.strata.gammas(weights)
    for axis in range(len(design.strata.factors)):
        # a direction along which the objective falls without end keeps every graph term
        # (and every row's constancy) at 0
        held = [g for g in groups if g.weights(gammas)[axis] > 0 or g.is_constant(axis)]
        lifted = grouped_incidence(held, axis, k, n)
        if lifted.shape[0]:
            constraints.append(lifted @ d == 0)
    for joined, weight in interactions(design.model, weights):
        lifted = grouped_lift(groups, k, n, lambda g, j=joined: interaction_incidence(g.factors, j))
        if weight > 0 and lifted.shape[0]:
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
    return d.value.reshape(k, n, m), unbounded


def unbounded_error(design: Design, direction: np.ndarray, backend: str) -> NumericalError:
    """The error for an objective unbounded below, naming the parameters that move and
    the rows whose losses fall along the direction."""
    return NumericalError(f"backend '{backend}': the objective is unbounded below: "
                          + _along(design, direction) + " without end, and nothing else in "
                          f"the model resists (loss '{design.loss.name}' falls without bound "
                          "there); add a regularizer on those parameters or drop the feature")


def no_minimizer_words(design: Design, direction: np.ndarray) -> str:
    """Why no θ attains the infimum (separable records), in words."""
    return ("the objective has no minimizer: " + _along(design, direction)
            + f" toward the infimum of loss '{design.loss.name}', which no finite θ attains (the "
            "records are separable); add a regularizer on those parameters")


def _along(design: Design, direction: np.ndarray) -> str:
    k, n, m = direction.shape
    moved = design.record_matrix() @ direction.reshape(k * n, m)
    size = np.abs(moved).max(axis=1)
    rows = np.flatnonzero(size > 1e-6 * size.max())
    where = np.abs(direction).max(axis=2)
    strata, parameters = np.nonzero(where > 1e-6 * where.max())
    names = sorted({design.rows[j] for j in parameters})
    return (f"moving {', '.join(names)} (in {len(set(strata.tolist()))} of {k} strata) "
            f"lowers the loss of the records in {describe_rows(list(design.index[rows]))}")


def refuse_if_unbounded(design: Design, weights: dict[str, float], backend: str,
                        only_unbounded: bool = False) -> str | None:
    """Raises the unbounded error when the objective is unbounded below; returns why there
    is no minimizer when the infimum is not attained (None: neither, or not looked for:
    ``only_unbounded``)."""
    found = unbounded_direction(design, weights, only_unbounded)
    if found is None:
        return None
    direction, unbounded = found
    if unbounded:
        raise unbounded_error(design, direction, backend)
    return no_minimizer_words(design, direction)
