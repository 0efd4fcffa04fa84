"""The objective of a stratified model, evaluated in numpy at any θ.

This is the meaning every backend is judged by: Σ_k ℓ_k(θ_k) + Σ_terms λ r(θ_k)
+ Σ_factors (γ_a/2) Σ_edges w ‖θ_i − θ_j‖² (constraints give +∞ when violated).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import ir
from .design import Design
from .errors import StratlangError
from .regularizers import REGULARIZERS
from .solvers.graphs import laplacian_quadratic


def resolve_weights(model: ir.Model, overrides: dict[str, float] | None = None) -> dict[str, float]:
    """Every hyper-parameter's value; sweeps must be given a value in ``overrides``."""
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(model.hypers())
    if unknown:
        raise StratlangError(f"unknown hyper-parameter(s) {sorted(unknown)}; this model has "
                             f"{sorted(model.hypers())}")
    out = {}
    for name, h in model.hypers().items():
        if name in overrides:
            out[name] = float(overrides[name])
        elif h.is_sweep:
            raise StratlangError(f"'{name}' is a sweep {h.values}: fit one value with "
                                 f"weights={{'{name}': v}} or run model.sweep(...)")
        else:
            out[name] = h.value
    return out


def selected_rows(design: Design, term: ir.RegTerm) -> np.ndarray:
    return np.array([i for i, r in enumerate(design.rows) if r not in term.exclude], dtype=int)


@dataclass(frozen=True)
class Objective:
    loss: float
    regularization: float
    laplacian: float

    @property
    def total(self) -> float:
        return self.loss + self.regularization + self.laplacian


def loss_value(design: Design, theta: np.ndarray) -> float:
    return records_loss(design.loss, design.model.response.loss.p, design.x, design.y,
                        design.z, theta)


def records_loss(loss, p: dict, x: np.ndarray, y: np.ndarray, z: np.ndarray,
                 theta: np.ndarray) -> float:
    """The summed loss of records (x, y) in strata z at θ."""
    if loss.name == "gaussian":
        return loss.value_stratified(theta, y, z)
    return loss.value(np.einsum("in,inm->im", x, theta[z]), y, p)


def stratified_objective(design: Design, theta: np.ndarray, weights: dict[str, float],
                         tol: float = 1e-6) -> Objective:
    return Objective(loss_value(design, theta), *penalties(design, theta, weights, tol))


def term_value(entry, block: np.ndarray, weight: float, p: dict, tol: float = 1e-6) -> float:
    """One regularizer term's value on its rows of θ (a constraint: 0 or +∞)."""
    if entry.is_constraint:
        return 0.0 if entry.feasible(block, p, tol) else float("inf")
    return weight * entry.value(block, p)


def penalties(design: Design, theta: np.ndarray, weights: dict[str, float],
              tol: float = 1e-6) -> tuple[float, float]:
    """(regularization, Laplacian) parts of the objective: they depend on θ only."""
    model = design.model
    reg = 0.0
    for i, term in enumerate(model.regularizers):
        entry = REGULARIZERS[term.kind.name]
        rows = selected_rows(design, term)
        if len(rows) == 0:
            continue
        weight = 1.0 if entry.is_constraint else weights[f"reg{i}.{term.kind.name}"]
        reg += term_value(entry, theta[:, rows, :], weight, term.kind.p, tol)
    gammas = [weights["stratify." + "_".join(f.columns)] for f in design.strata.factors]
    lap = laplacian_quadratic(design.strata.graphs(), gammas, theta) if gammas else 0.0
    return reg, lap
