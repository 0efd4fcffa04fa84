"""Which parameter row varies over which graph factor, and with what weight.

A feature term written ``by store`` varies over the ``store`` factor only: its rows are
exactly constant along every other factor (a constraint, not a large weight); ``shared``
makes them constant along all; ``by (store weight 50)`` gives them a weight of their own
on that factor. Rows are grouped by the strata they are present in (``where``) and by
this structure: each :class:`~stratlang.solvers.graphs.RowGroup` then carries its own
weights and constant factors, which the Laplacian solvers, the objective and the CVXPY
reference read. ``interact`` terms act on every row (they vanish on a row constant along
a factor they join).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from ..language import ir
from ..solvers.graphs import Interaction, RowGroup
from ..solvers.reparametrize import Reparametrization
from .features import term_text

if TYPE_CHECKING:
    from .design import Design

Vary = tuple[ir.VaryOver, ...] | None


def row_vary(design: Design) -> tuple[Vary, ...]:
    """Each parameter row's ``vary`` (None: every factor); rows the loss names itself
    (a distribution's parameters) vary over every factor."""
    by_text = {term_text(t): t.vary for t in design.model.features}
    if len(design.row_terms) != len(design.rows):
        return (None,) * len(design.rows)
    return tuple(by_text.get(text) for text in design.row_terms)


def constant_factors(model: ir.CheckedModel, vary: Vary) -> tuple[bool, ...]:
    """For each factor: are rows of this ``vary`` constant along it? (() when none is.)"""
    if vary is None:
        return ()
    over = {model.factor_of(v.column) for v in vary}
    return tuple(a not in over for a in range(len(model.strata)))


def group_weights(model: ir.CheckedModel, vary: Vary, weights: dict[str, float],
                  gammas: tuple[float, ...]) -> tuple[float, ...] | None:
    """A row group's weight per factor: a ``by (f weight w)`` overrides the factor's;
    None when no row's weight differs from the model's."""
    own = {model.factor_of(v.column): weights[v.hyper_name] for v in vary or ()
           if v.weight is not None}
    if not own:
        return None
    return tuple(own.get(a, g) for a, g in enumerate(gammas))


def weighted_groups(design: Design, weights: dict[str, float]) -> list[RowGroup]:
    """The design's row groups with each group's own weights filled in."""
    model = design.model
    gammas = tuple(design.strata.gammas(weights))
    vary = row_vary(design)
    return [dataclasses.replace(g, gammas=group_weights(model, vary[int(g.rows[0])], weights,
                                                        gammas))
            if len(g.rows) else g for g in design.row_groups()]


def interactions(model: ir.CheckedModel, weights: dict[str, float]) -> list[Interaction]:
    """The interaction terms as the solvers take them: (factor positions, weight)."""
    return [(tuple(model.factor_of(c) for c in i.columns), weights[i.hyper_name])
            for i in model.interactions]


def project_constant(design: Design, theta: np.ndarray) -> np.ndarray:
    """θ with every row that is constant along a factor replaced by its mean along it
    (within the strata the row is present in): the exact projection on the model's
    constraint, for a solver's copy that satisfies it only to its tolerance."""
    if not design.model.structured:
        return theta
    out = theta.copy()
    for group in design.row_groups():
        if not any(group.constant):
            continue
        block = group.block(out)  # (K_g, rows, outputs)
        shape = tuple(f.n for f in group.factors)
        grid = block.reshape(*shape, *block.shape[1:])
        axes = tuple(a for a, c in enumerate(group.constant) if c)
        grid = np.broadcast_to(grid.mean(axis=axes, keepdims=True), grid.shape)
        block = grid.reshape(block.shape)
        if group.strata is None:
            out[:, group.rows] = block
        else:
            out[np.ix_(group.strata, group.rows)] = block
    return out


def constant_where_declared(design: Design, theta: np.ndarray, tol: float = 1e-6) -> bool:
    """Is every row declared constant along a factor so, to ``tol`` (relative to θ's
    size)? (The objective is +∞ elsewhere: such a θ is outside the model.)"""
    if not design.model.structured:
        return True
    projected = project_constant(design, theta)
    scale = max(1.0, float(np.max(np.abs(theta), initial=0.0)))
    return bool(np.max(np.abs(projected - theta), initial=0.0) <= tol * scale)


def constant_columns(design: Design) -> np.ndarray:
    """(d, F): is θ's column (row j, output o at j·m + o) constant along factor f?"""
    model = design.model
    factors = len(design.strata.factors)
    _k, _n, m = design.theta_shape
    rows = [constant_factors(model, vary) or (False,) * factors for vary in row_vary(design)]
    return np.repeat(np.array(rows, dtype=bool).reshape(len(rows), factors), m, axis=0)


def reparametrization(design: Design) -> Reparametrization | None:
    """θ = Tφ with the rows declared constant along factors (``by`` a subset, ``shared``)
    as free coordinates over the other factors only, and the rows present in some strata
    only (``where``) without their absent entries (fixed at 0): None when no row is
    either."""
    from .strata import factor_masks

    constant = constant_columns(design)
    _k, n, m = design.theta_shape
    wheres = design.row_wheres if len(design.row_wheres) == n else (None,) * n
    row_masks = [None if where is None else tuple(factor_masks(design.strata, where))
                 for where in wheres]
    if not constant.any() and all(masks is None for masks in row_masks):
        return None
    return Reparametrization.constant_along(tuple(g.n for g in design.strata.graphs()),
                                            constant,
                                            [masks for masks in row_masks for _ in range(m)])
