"""ADMM for Laplacian-regularized stratified models (Tuck, Barratt & Boyd, Algorithm 4.1),
generalized to any number of local-regularizer terms.

    minimize Σ_k ℓ_k(θ_k) + Σ_t r_t(θ̃_t,k) + ½ tr θ̂ᵀ L θ̂   s.t. θ = θ̂, θ̃_t = θ̂

Each iteration: the prox of the loss and of every regularizer term (vectorized across
strata), one solve (L + (T+1)/λ · I) θ̂ = (θ + u + Σ_t θ̃_t + ũ_t)/λ, scaled dual updates.
Stopping on primal/dual residuals against ε_abs, ε_rel (Boyd et al. §3.3, scaled by
iterate norms), adaptive penalty (μ, τ), optional over-relaxation, warm start with duals.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

Prox = Callable[[np.ndarray, float], np.ndarray]


@dataclass
class State:
    """Everything needed to warm-start: the consensus iterate, the copies, the duals, λ."""

    theta_hat: np.ndarray
    copies: list[np.ndarray]
    duals: list[np.ndarray]
    lam: float


@dataclass
class Result:
    theta: np.ndarray  # the loss copy at exit
    state: State
    iterations: int
    converged: bool
    primal_residual: float
    dual_residual: float
    eps_primal: float
    eps_dual: float
    seconds: float
    history: list[tuple[int, float, float, float, float, float]] = field(repr=False)


def admm(loss_prox: Prox, reg_proxes: Sequence[Prox], solve: Callable[[np.ndarray, float], np.ndarray],
         shape: tuple[int, ...], *, lam: float = 1.0, eps_abs: float = 1e-6, eps_rel: float = 1e-6,
         max_iter: int = 2000, adaptive: bool = True, mu: float = 5.0, tau: float = 2.0,
         relax: float = 1.0, warm: State | None = None, progress: bool | None = None,
         adapt_every: int = 1,
         on_residuals: Callable[[float, float], None] | None = None,
         initial: np.ndarray | None = None) -> Result:
    """``solve(B, c)`` returns X with (L + cI) X = B for B of shape (K, d). ``initial``
    (default 0) starts every copy; a stratum the objective leaves undetermined (no data, no
    neighbours, no regularizer) keeps it.
    ``on_residuals(r / eps_primal, s / eps_dual)`` is called after every iteration, e.g.
    to tighten inexact inner solves as the iterates converge."""
    start = time.perf_counter()
    k = shape[0]
    width = int(np.prod(shape[1:], dtype=np.int64))
    terms = len(reg_proxes) + 1
    if warm is not None:
        hat, copies, duals, lam = (warm.theta_hat.copy(), [c.copy() for c in warm.copies],
                                   [d.copy() for d in warm.duals], warm.lam)
    else:
        hat = np.zeros(shape) if initial is None else np.array(initial, dtype=float)
        copies = [hat.copy() for _ in range(terms)]
        duals = [np.zeros(shape) for _ in range(terms)]
    proxes = [loss_prox, *reg_proxes]
    root_p = math.sqrt(terms * hat.size)
    history: list[tuple[int, float, float, float, float, float]] = []
    show = sys.stderr.isatty() if progress is None else progress
    last_print = start
    r = s = eps_p = eps_d = float("inf")
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        for j, prox in enumerate(proxes):
            copies[j] = prox(hat - duals[j], lam)
        old = hat
        relaxed = [relax * c + (1.0 - relax) * old for c in copies] if relax != 1.0 else copies
        rhs = sum(c + d for c, d in zip(relaxed, duals, strict=True)) / lam
        hat = solve(rhs.reshape(k, width), terms / lam).reshape(shape)
        for j in range(terms):
            duals[j] += relaxed[j] - hat
        r = math.sqrt(sum(float(np.sum((c - hat) ** 2)) for c in copies))
        s = math.sqrt(terms) * float(np.linalg.norm(hat - old)) / lam
        x_norm = math.sqrt(sum(float(np.sum(c * c)) for c in copies))
        z_norm = math.sqrt(terms) * float(np.linalg.norm(hat))
        y_norm = math.sqrt(sum(float(np.sum(d * d)) for d in duals)) / lam
        eps_p = root_p * eps_abs + eps_rel * max(x_norm, z_norm)
        eps_d = root_p * eps_abs + eps_rel * y_norm
        history.append((it, r, s, eps_p, eps_d, lam))
        if show and time.perf_counter() - last_print > 1.0:
            last_print = time.perf_counter()
            print(f"\radmm {it:6d}  primal {r:.2e} (≤ {eps_p:.1e})  dual {s:.2e} (≤ {eps_d:.1e})",
                  end="", file=sys.stderr, flush=True)
        if r <= eps_p and s <= eps_d:
            converged = True
            break
        if on_residuals is not None:
            on_residuals(r / eps_p, s / eps_d)
        if adaptive and it % adapt_every == 0:
            if r > mu * s:
                lam /= tau
                duals = [d / tau for d in duals]
            elif s > mu * r:
                lam *= tau
                duals = [d * tau for d in duals]
    if show:
        print(file=sys.stderr)
    state = State(hat, copies, duals, lam)
    return Result(copies[0], state, it, converged, r, s, eps_p, eps_d,
                  time.perf_counter() - start, history)
