"""θ̂(w) of a loss with constant curvature by one preconditioned CG solve, where H is no
Kronecker sum (the curvature blocks differ between strata) and log|H| is stochastic.

From one fit (θ₀, ℓ₀) at weights w₀, the loss is ℓ(θ) = ℓ₀ + g₀ᵀ(θ − θ₀) +
½ (θ − θ₀)ᵀB(θ − θ₀) with g₀ = −P(w₀)θ₀ (θ₀ minimizes ℓ + ½θᵀP(w₀)θ), so θ̂(w) = H(w)⁻¹b,
b = H(w₀)θ₀ — the Newton fit's own answer, without its passes over the records: at
K = 10⁶ (benchmarks/reml_scale.py, uneven) 0.4 s against a warm-started fit's 1.0 s. The
solve is CG with the stochastic estimators' preconditioner (solvers.stochastic: the
Kronecker reference, scaled to H's diagonal). solvers.selection uses it for a REML search
led by the Kronecker reference, and refits the answer by the fit callback to confirm the
reading of the loss as quadratic."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .penalty import QuadraticPenalty
from .stochastic import StochasticCurvature

SOLVE_RTOL = 1e-10  # CG's relative residual: θ̂ to about the Newton fit's own precision


@dataclass(frozen=True)
class QuadraticSolve:
    """The loss seen from the fit (``theta``, ``loss``) at ``weights`` (its constant
    curvature ``blocks``)."""

    penalty: QuadraticPenalty
    blocks: np.ndarray  # (K, d, d)
    theta: np.ndarray  # θ₀ (K, d)
    loss: float  # ℓ₀
    gradient: np.ndarray  # g₀ = −P(w₀)θ₀
    target: np.ndarray  # b = H(w₀)θ₀

    @staticmethod
    def at(penalty: QuadraticPenalty, blocks: np.ndarray, theta: np.ndarray, loss: float,
           weights: np.ndarray) -> QuadraticSolve:
        theta = np.asarray(theta, dtype=float)
        penalized = penalty.apply(weights, theta)
        target = np.einsum("kab,kb->ka", blocks, theta) + penalized
        return QuadraticSolve(penalty, np.asarray(blocks, dtype=float), theta, float(loss),
                              -penalized, target)

    def minimizer(self, weights: np.ndarray, solver: StochasticCurvature | None = None,
                  start: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """(θ̂(w), ℓ(θ̂(w))); ``solver``: H(w) already set up (its probes unused);
        ``start``: CG's first iterate (θ̂ at nearby weights: 9 steps against 12 from 0 at
        K = 10⁶)."""
        if solver is None:
            solver = StochasticCurvature(self.blocks, self.penalty, weights, probes=1)
        theta = solver.solve_batch(self.target[:, None, :], rtol=SOLVE_RTOL,
                                   start=None if start is None else start[:, None, :]
                                   )[:, 0, :]
        step = theta - self.theta
        curved = np.einsum("kab,kb->ka", self.blocks, step)
        loss = self.loss + float(np.sum(self.gradient * step)) + 0.5 * float(np.sum(step * curved))
        return theta, loss
