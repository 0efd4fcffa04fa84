"""The uncertainty of weights chosen from the data (``auto``), carried into θ's.

θ̂ depends on the chosen weights, which are themselves estimates: with ρ = log w of
approximate covariance C (the inverse Hessian of the REML/ML criterion) and
J_a = ∂θ̂/∂ρ_a = −H⁻¹ w_a S_a θ̂, the covariance of θ̂ gains Σ_ab J_a C_ab J_bᵀ to first
order (mgcv's ``unconditional=TRUE``; Wood, Pya & Säfken 2016). Only the weights with a
covariance enter: a weight flagged as running to 0 or ∞, and GCV's (no likelihood, no
covariance), add nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

INCLUDED = "including the uncertainty of the chosen weights"


@dataclass(frozen=True)
class WeightSpread:
    """∂θ̂/∂log w of the chosen weights that have a covariance, and that covariance."""

    directions: np.ndarray  # (A, K, d): J_a per stratum, θ's rows flattened as (row, output)
    covariance: np.ndarray  # (A, A): Cov(log w)

    def blocks(self) -> np.ndarray:
        """(K, d, d): the stratum blocks Σ_ab J_a,k C_ab J_b,kᵀ to add to φ·(H⁻¹)_kk."""
        out: np.ndarray = np.einsum("akc,ab,bke->kce", self.directions, self.covariance,
                                    self.directions)
        return out

    def mean_block(self, averaging: np.ndarray) -> np.ndarray:
        """(d, d): the same term for Σ_k a_k θ_k, ``averaging`` the vector a (K,)."""
        mean = np.einsum("k,akd->ad", averaging, self.directions)
        out: np.ndarray = mean.T @ self.covariance @ mean
        return out


def spread_of(selection: Any, penalty: Any) -> WeightSpread | None:
    """The spread of a solvers.selection Selection's weights (None: no weight with a
    covariance), at H of its fit."""
    from ..solvers.curvature import LaplaceCurvature

    curvature = LaplaceCurvature(selection.fit.blocks, penalty, selection.weights)
    directions, covariance = selection.weight_directions(curvature)
    if not len(directions):
        return None
    return WeightSpread(directions, covariance)
