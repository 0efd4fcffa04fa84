"""The Laplace approximation of a loss whose records see their stratum's θ whole, in θ's
free coordinates (``Loss.stratum_likelihood``: gaussian's (S, ν), S symmetric).

Such a loss stores more entries per stratum (d) than it has free coordinates (f): the
stored θ_k = Q ψ_k, Q (d × f) with orthonormal columns of disjoint supports
(:mod:`stratlang.kinds.gaussian_natural`). The weights' criterion and the posterior are
taken over ψ: the penalty's parts on the stored entries become parts on ψ — a Laplacian
part's row mask and a ridge's pattern p become Qᵀ diag(p) Q, again diagonal (an
isometry keeps L ⊗ I as L ⊗ I) — and the posterior covariance of ψ maps back to the
stored entries as Q C Qᵀ (S_ij and S_ji then share one variance, and are perfectly
correlated), so standard errors, intervals and the weights' spread keep θ's shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..language.errors import StratlangError
from .weight_spread import WeightSpread

MAX_NEWTON = 50
ROUNDING = 1e-10  # a Newton decrement below this (relative to F) is taken without a search


def strata_likelihood(design: Any) -> Any:
    """The loss's free-coordinate form on ``design``'s records (None: a loss of records'
    linear predictors)."""
    if not design.loss.sees_stratum_whole:
        return None
    k = design.theta_shape[0]
    return design.loss.stratum_likelihood(design.records, k, design.loss_params)


def free_parts(parts: list[Any], basis: np.ndarray, m: int) -> list[Any]:
    """Penalty parts on the stored entries (rows of m outputs) as parts on ψ (one row
    per free coordinate, one output)."""
    from ..solvers.penalty import LaplacianPart, RidgePart

    share = basis ** 2  # (d, f): how much of each stored entry each coordinate holds
    out: list[Any] = []
    for part in parts:
        if isinstance(part, LaplacianPart) and part.rows is not None:
            mask = np.repeat(np.asarray(part.rows, dtype=float), m) @ share
            if not np.all((mask == 0) | (np.abs(mask - 1) < 1e-12)):
                raise StratlangError("the rows of a symmetric parameter differ in their graph "
                                     "terms, so its free coordinates are penalized in part: "
                                     "give its rows the same weights")
            out.append(LaplacianPart(part.factor, mask > 0.5))
        elif isinstance(part, RidgePart):
            out.append(RidgePart(np.asarray(part.pattern, dtype=float) @ share))
        else:
            out.append(part)
    return out


def free_penalty(penalty: Any, basis: np.ndarray) -> Any:
    """A solvers.penalty QuadraticPenalty on the stored entries (n rows of m outputs) as
    one on ψ (f rows of one output)."""
    from ..solvers.penalty import QuadraticPenalty

    if getattr(penalty, "reparametrization", None) is not None:
        raise StratlangError("a parameter with free coordinates of its own has no rows held "
                             "constant along a factor")
    return QuadraticPenalty(penalty.factors, free_parts(list(penalty.parts), basis, penalty.m),
                            basis.shape[1])


def stored_blocks(blocks: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Covariance blocks (K, f, f) of ψ as blocks (K, d, d) of the stored entries."""
    out: np.ndarray = np.einsum("da,kab,eb->kde", basis, blocks, basis)
    return out


def stored_solve(solve: Any, basis: np.ndarray, k: int) -> Any:
    """A solve with H over ψ (right-hand sides (K·f, columns)) as the covariance operator
    on the stored entries ((K·d, columns)): (I ⊗ Q) H⁻¹ (I ⊗ Qᵀ)."""
    d, f = basis.shape

    def stored(rhs: np.ndarray) -> np.ndarray:
        columns = rhs.shape[1]
        free = np.einsum("kdc,da->kac", rhs.reshape(k, d, columns), basis)
        solved = solve(free.reshape(k * f, columns)).reshape(k, f, columns)
        out: np.ndarray = np.einsum("da,kac->kdc", basis, solved).reshape(k * d, columns)
        return out

    return stored


def stored_spread(spread: WeightSpread | None, basis: np.ndarray) -> WeightSpread | None:
    """The weights' spread over ψ as one over the stored entries."""
    if spread is None:
        return None
    return WeightSpread(spread.directions @ basis.T, spread.covariance)


def polished_fit(strata: Any, penalty: Any, weights: np.ndarray, theta: np.ndarray,
                 scale: float, observations: int) -> Any:
    """The engine's InnerFit at ``weights`` from a backend's fit θ (stored entries):
    refined by Newton's method over ψ to the precision of the arithmetic (log|H| moves
    with θ̂ to first order, so the backend's tolerance would blur the criterion), with
    the loss's Hessian blocks and their change (the REML gradient's third derivatives)."""
    from ..solvers.curvature import LaplaceCurvature
    from ..solvers.selection import InnerFit

    psi = strata.to_free(theta)

    def objective(at: np.ndarray, loss: float) -> float:
        return loss + 0.5 * float(np.sum(at * penalty.apply(weights, at)))

    value, gradient, blocks = strata.derivatives(psi)
    for _ in range(MAX_NEWTON):
        g = gradient + penalty.apply(weights, psi)
        current = objective(psi, value)
        step = -LaplaceCurvature(blocks, penalty, weights).solve(g)
        decrement = -float(np.sum(g * step))
        if not decrement > 1e-28 * max(1.0, abs(current)):
            break
        t = 1.0
        while True:
            trial = psi + t * step
            trial_value = strata.value(trial)
            if decrement <= ROUNDING * max(1.0, abs(current)) and np.isfinite(trial_value):
                break  # (near the optimum F's rounding hides the decrease: the full step)
            if objective(trial, trial_value) <= current - 1e-4 * t * decrement:
                break
            t *= 0.5
            if t < 1e-12:
                raise ValueError("Newton's method found no decrease from the backend's fit")
        psi = trial
        value, gradient, blocks = strata.derivatives(psi)
        if float(np.max(np.abs(t * step), initial=0.0)) <= 1e-16 * max(
                1.0, float(np.max(np.abs(psi), initial=0.0))):
            break
    final = psi

    def change(direction: np.ndarray) -> np.ndarray:
        out: np.ndarray = strata.hessian_change(final, direction)
        return out

    def second(first: np.ndarray, other: np.ndarray) -> np.ndarray:
        # the change's own change along ``other``, by a central difference (the change
        # itself is exact: a complex step), for the criterion's exact Hessian
        size = float(np.max(np.abs(other), initial=0.0))
        if size == 0:
            return np.zeros_like(blocks)
        step = 1e-4 / size
        up = strata.hessian_change(final + step * other, first)
        down = strata.hessian_change(final - step * other, first)
        return np.asarray((up - down) / (2 * step))

    return InnerFit(final, value, blocks, observations, block_change=change, scale=scale,
                    block_second=second)
