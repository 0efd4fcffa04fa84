"""The objective of a stratified model, evaluated in numpy at any θ.

This is the meaning every backend is judged by: Σ_k ℓ_k(θ_k) + Σ_terms λ r(θ_k)
+ Σ_factors (γ_a/2) Σ_edges w ‖θ_i − θ_j‖² (constraints give +∞ when violated).
"""

from __future__ import annotations

import numpy as np

from ..data.design import Design
from ..data.features import selected_rows as rows_acted_on
from ..data.row_structure import constant_where_declared, interactions, weighted_groups
from ..data.strata import where_strata
from ..kinds.regularizers import REGULARIZERS, Regularizer
from ..language import ir
from ..solvers.graphs import grouped_laplacian_quadratic, laplacian_quadratic
from .base import Objective


def selected_rows(design: Design, term: ir.RegTerm) -> np.ndarray:
    """Positions of the parameter rows a regularizer term acts on."""
    return rows_acted_on(design.rows, design.row_terms, term.exclude)


def term_index(design: Design, term: ir.RegTerm) -> tuple:
    """Where in θ (K, rows, outputs) a regularizer term acts: its rows, in the strata its
    ``where`` selects (all without one)."""
    rows = selected_rows(design, term)
    strata = where_strata(design.strata, term.where)
    return (slice(None), rows) if strata is None else np.ix_(strata, rows)


def loss_value(design: Design, theta: np.ndarray) -> float:
    total = 0.0
    for part in design.loss_parts():
        records = part.of(design.records)
        # np.take along the strata: 4× a fancy index θ[z] over 10⁵ records
        total += design.loss.records_value(records, np.take(theta, records.z, axis=0),
                                           part.params)
    return total


def stratified_objective(design: Design, theta: np.ndarray, weights: dict[str, float],
                         tol: float = 1e-6) -> Objective:
    regularization, laplacian = penalties(design, theta, weights, tol)
    return Objective.of(loss=loss_value(design, theta), regularization=regularization,
                        laplacian=laplacian)


def term_value(entry: Regularizer, block: np.ndarray, weight: float, p: dict,
               tol: float = 1e-6) -> float:
    """One regularizer term's value on its rows of θ (a constraint: 0 or +∞)."""
    if entry.is_constraint:
        return 0.0 if entry.feasible(block, p, tol) else float("inf")
    return weight * entry.value(block, p)


def penalties(design: Design, theta: np.ndarray, weights: dict[str, float],
              tol: float = 1e-6) -> tuple[float, float]:
    """(regularization, Laplacian) parts of the objective: they depend on θ only."""
    reg = 0.0
    for term in design.model.regularizers:
        entry = REGULARIZERS[term.kind.name]
        block = theta[term_index(design, term)]
        if block.size == 0:
            continue
        weight = 1.0 if entry.is_constraint else weights[term.hyper_name]
        reg += term_value(entry, block, weight, term.kind.p, tol)
    gammas = design.strata.gammas(weights)
    if not gammas:
        lap = 0.0
    elif design.grouped_rows:  # rows present in some strata only, or their own structure
        lap = grouped_laplacian_quadratic(weighted_groups(design, weights), gammas, theta,
                                          interactions(design.model, weights))
        if not constant_where_declared(design, theta, tol):
            lap = float("inf")  # (outside the model: a shared row that differs)
    else:
        lap = laplacian_quadratic(design.strata.graphs(), gammas, theta)
    return reg, lap
