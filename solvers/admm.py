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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from .admm_steps import ElementwiseSteps
from .progress import ProgressLine

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
    theta: np.ndarray | None  # the loss copy at exit (None: written out on a cluster)
    state: State | None  # None when the iterates live elsewhere (a cluster's workers)
    iterations: int
    converged: bool
    primal_residual: float
    dual_residual: float
    eps_primal: float
    eps_dual: float
    lam: float  # the penalty at exit
    seconds: float
    history: list[tuple[int, float, float, float, float, float]] = field(repr=False)
    restarts: int = 0  # fits started again after a lost worker (distributed runs)

    @property
    def diverged(self) -> bool:
        """The last residuals or their tolerances are not finite (the iterates overflowed)."""
        return not all(math.isfinite(v) for v in (self.primal_residual, self.dual_residual,
                                                   self.eps_primal, self.eps_dual))


def best_copy_index(values: Sequence[float], eligible: Sequence[bool]) -> tuple[int | None, float]:
    """ADMM ends with copies of θ that agree to the residual tolerance: the loss's, each
    regularizer term's and the consensus θ̂. Given each copy's objective (made feasible)
    and whether it may answer (e.g. inside the loss's own constraints), the index of the
    lowest finite one that may (None: none), and the spread of the finite objectives
    (how far the copies still are; inf when none is finite). The in-memory and the
    distributed ADMM both answer with it."""
    best: int | None = None
    for at, (value, may) in enumerate(zip(values, eligible, strict=True)):
        if math.isfinite(value) and may and (best is None or value < values[best]):
            best = at
    finite = [value for value in values if math.isfinite(value)]
    return best, (max(finite) - min(finite) if finite else math.inf)


def suboptimality_bound(duals_norm: float, copies_norm: float, primal: float,
                        dual: float) -> float:
    """How far the copies' objective may lie above the optimum at exit: Boyd et al.'s
    bound (§3.3.1) −yᵀr + (x − x*)ᵀs with ‖y‖‖r‖ + ‖x‖‖s‖ for its terms (y: the unscaled
    duals, x: the copies; ‖x − x*‖ is unknown, ‖x‖ stands for it)."""
    return duals_norm * primal + copies_norm * dual


@dataclass(frozen=True)
class Residuals:
    """Primal and dual residuals with their tolerances (Boyd et al. §3.3, scaled by iterate
    norms), from sums of squares that may be added up block by block."""

    primal: float
    dual: float
    eps_primal: float
    eps_dual: float

    @classmethod
    def from_sums(cls, gap2: float, moved2: float, copies2: float, hat2: float, duals2: float,
                  terms: int, size: int, lam: float, eps_abs: float, eps_rel: float,
                  fixed_point: bool = False) -> Residuals:
        """gap2 = Σ_j ‖copy_j − θ̂‖², moved2 = ‖θ̂ − θ̂_old‖², copies2 = Σ_j ‖copy_j‖²,
        hat2 = ‖θ̂‖², duals2 = Σ_j ‖dual_j‖²; ``size`` is the number of entries of θ̂.
        ``fixed_point`` (a non-convex problem's local method): the dual test is θ̂'s move
        against θ̂'s size, the copies' agreement being the primal test."""
        root_p = math.sqrt(terms * size)
        primal = root_p * eps_abs + eps_rel * max(math.sqrt(copies2), math.sqrt(terms * hat2))
        if fixed_point:  # θ̂'s own move against θ̂, not scaled by a penalty grown on purpose
            return cls(math.sqrt(gap2), math.sqrt(terms * moved2), primal,
                       root_p * eps_abs + eps_rel * math.sqrt(terms * hat2))
        return cls(math.sqrt(gap2), math.sqrt(terms * moved2) / lam, primal,
                   root_p * eps_abs + eps_rel * math.sqrt(duals2) / lam)

    @property
    def finite(self) -> bool:
        return all(math.isfinite(v) for v in (self.primal, self.dual, self.eps_primal,
                                               self.eps_dual))

    @property
    def converged(self) -> bool:
        return self.finite and self.primal <= self.eps_primal and self.dual <= self.eps_dual


def progress_text(iteration: int, max_iter: int, res: Residuals) -> str:
    """The figures the stopping rule compares: primal r ≤ eps_pri and dual s ≤ eps_dual."""
    def against(value: float, tolerance: float) -> str:
        return f"{value:.1e} {'≤' if value <= tolerance else '>'} {tolerance:.1e}"

    return (f"iteration {iteration}/{max_iter}  primal {against(res.primal, res.eps_primal)}"
            f"  dual {against(res.dual, res.eps_dual)}")


# residual balancing at most once in 10 iterations: adapted each iteration the penalty can
# flip back and forth (1 → 0.5 → 1 …), and with over-relaxation that stalls or diverges (19
# of 379 random specs failed so, benchmarks/RESULTS.md). Whenever the residuals call for it
# once 10 iterations have passed since the last change, not only on every 10th iteration:
# that rule judged one iteration's (oscillating) residuals out of ten and was late to lower
# a penalty that was plainly too high (crime scale: 45 → 75 iterations)
ADAPT_EVERY = 10
PERSIST = 3  # … and to undo the last change, an imbalance seen so many iterations in a row
GO_ON_AFTER = 5  # a change the same way as the last (it cannot flip back): 5 iterations on
LOCAL_GROWTH = 1.01  # ρ's growth per iteration on non-convex problems: ×145 in 500


def imbalance(res: Residuals, mu: float, only_down: bool = False) -> int:
    """+1 when the primal residual exceeds μ times the dual one, −1 the other way round
    (never with ``only_down``), else 0; each residual relative to its tolerance, so that
    the balance sought is the one the stopping rule needs."""
    primal, dual = res.primal, res.dual
    if res.eps_primal > 0 and res.eps_dual > 0:  # (zero tolerances: the raw residuals)
        primal, dual = primal / res.eps_primal, dual / res.eps_dual
    if primal > mu * dual:
        return 1
    if dual > mu * primal and not only_down:
        return -1
    return 0


def adapt_penalty(lam: float, lean: int, tau: float) -> tuple[float, float]:
    """(new λ, factor for the scaled duals): residual balancing for an :func:`imbalance`;
    a primal-heavy one lowers λ (ρ = 1/λ raised), which forces the copies together — with
    ``only_down``, how a non-convex problem's ADMM is made to settle."""
    if lean > 0:
        return lam / tau, 1.0 / tau
    if lean < 0:
        return lam * tau, tau
    return lam, 1.0


InnerTolerance = Callable[[float, float, "float | None"], float]


@dataclass(frozen=True)
class Step:
    """What an iteration runs with, and the residuals of the one before it."""

    lam: float
    scale: float  # factor for the scaled duals (the penalty changed)
    tol: float | None  # inner (Newton) tolerance
    residuals: Residuals | None
    stop: bool = False  # converged, or the residuals overflowed
    iteration: int = 1  # the iteration that runs with it
    changed: int = -(10 ** 9)  # the last iteration whose residuals changed the penalty
    streak: int = 0  # iterations in a row out of balance the same way (signed: imbalance)
    last_lean: int = 0  # the imbalance that made the last change


@dataclass(frozen=True)
class AdmmRule:
    """The stopping rule, penalty adaptation and inner tolerance of ADMM, one object for
    :func:`admm` and for the distributed engine (whose client and every block apply it
    alike: same sums, same order, same floats). ``inner_tol(primal ratio, dual ratio,
    previous)``: the tolerance of inexact inner (Newton) solves; ``only_down``: a
    non-convex problem's local method (see :func:`adapt_penalty`)."""

    terms: int
    size: int
    eps_abs: float
    eps_rel: float
    adaptive: bool = True
    mu: float = 5.0
    tau: float = 2.0
    inner_tol: InnerTolerance | None = None
    adapt_every: int = ADAPT_EVERY
    only_down: bool = False
    persist: int = PERSIST

    def first(self, lam: float) -> Step:
        tol = None if self.inner_tol is None else self.inner_tol(math.inf, math.inf, None)
        return Step(lam, 1.0, tol, None)

    def next(self, step: Step, sums: Sequence[tuple[float, ...]]) -> Step:
        """The step after ``step`` from its residual sums (gap2, moved2, copies2, hat2,
        duals2; one tuple per block of the iterate, added up here)."""
        gap2, moved2, copies2, hat2, duals2 = (sums[0] if len(sums) == 1
                                               else np.array(sums).sum(axis=0))
        res = Residuals.from_sums(gap2, moved2, copies2, hat2, duals2, self.terms, self.size,
                                  step.lam, self.eps_abs, self.eps_rel,
                                  fixed_point=self.only_down)
        if res.converged or not res.finite:  # (overflowed: no later iterate can recover)
            return Step(step.lam, 1.0, step.tol, res, stop=True, iteration=step.iteration + 1,
                        changed=step.changed, streak=step.streak, last_lean=step.last_lean)
        tol = (step.tol if self.inner_tol is None
               else self.inner_tol(res.primal / res.eps_primal, res.dual / res.eps_dual, step.tol))
        lam, scale, changed = step.lam, 1.0, step.changed
        lean = imbalance(res, self.mu, self.only_down)
        streak = step.streak + lean if lean and lean * step.streak > 0 else lean
        # undoing the last change takes an imbalance that persists (one iteration's may be
        # the oscillation that made the penalty flip back and forth); going on does not
        reverse = lean * step.last_lean < 0
        needed, wait = ((self.persist, self.adapt_every) if reverse
                        else (1, min(self.adapt_every, GO_ON_AFTER)))
        if (self.adaptive and lean and abs(streak) >= needed
                and step.iteration - step.changed >= wait):
            lam, scale = adapt_penalty(lam, lean, self.tau)
            changed, streak, last_lean = step.iteration, 0, lean
        else:
            last_lean = step.last_lean
        if self.only_down and res.primal > res.eps_primal:  # and lowered steadily while the
            # copies disagree, so that the iterates cannot cycle (not once they agree: a
            # penalty grown without end makes round-off in θ̂'s moves a dual residual)
            lam, scale = lam / LOCAL_GROWTH, scale / LOCAL_GROWTH
        return Step(lam, scale, tol, res, iteration=step.iteration + 1, changed=changed,
                    streak=streak, last_lean=last_lean)


def admm(loss_prox: Prox, reg_proxes: Sequence[Prox], solve: Callable[[np.ndarray, float], np.ndarray],
         shape: tuple[int, ...], *, lam: float = 1.0, eps_abs: float = 1e-6, eps_rel: float = 1e-6,
         max_iter: int = 2000, adaptive: bool = True, mu: float = 5.0, tau: float = 2.0,
         relax: float = 1.0, warm: State | None = None, progress: bool | None = None,
         adapt_every: int = ADAPT_EVERY, only_down: bool = False,
         inner_tol: InnerTolerance | None = None,
         initial: np.ndarray | None = None) -> Result:
    """``solve(B, c)`` returns X with (L + cI) X = B for B of shape (K, d) (a new array
    admm does not use again: the solve may overwrite it, or return it as X). ``initial``
    (default 0) starts every copy; a stratum the objective leaves undetermined (no data, no
    neighbours, no regularizer) keeps it.
    ``inner_tol``: the tolerance of an inexact loss prox (its ``tol``), tightened as the
    iterates converge (see :class:`AdmmRule`). ``only_down``: the adaptive
    penalty only lowers λ (see :func:`adapt_penalty`), and λ falls by LOCAL_GROWTH each
    iteration while the primal residual is above its tolerance: a non-convex problem's
    iterates may cycle at a fixed penalty."""
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
    rule = AdmmRule(terms, hat.size, eps_abs, eps_rel, adaptive, mu, tau, inner_tol,
                    adapt_every, only_down)
    step = rule.first(lam)
    history: list[tuple[int, float, float, float, float, float]] = []
    res: Residuals | None = None
    it = 0
    # the steps between two solves block by block, on every core (same iterates as the
    # plain expressions: solvers/admm_steps.py)
    steps = ElementwiseSteps(shape, relax, copies)
    free: np.ndarray | None = None  # the θ̂ before last, for the next right-hand side
    with ProgressLine("admm", progress) as line:
        for it in range(1, max_iter + 1):
            if step.tol is not None and hasattr(loss_prox, "tol"):
                loss_prox.tol = step.tol
            lam = step.lam
            kernels = steps.copies(proxes, hat, duals, copies, lam)
            old = hat
            rhs = steps.assemble(kernels, old, duals, copies, lam, into=free)
            hat = np.ascontiguousarray(solve(rhs.reshape(k, width), terms / lam)).reshape(shape)
            step = rule.next(step, [steps.update(hat, old, duals, copies)])
            # (fresh memory of θ's size is slow to map: the old θ̂, no longer needed,
            # takes the next right-hand side, unless the solve handed it back)
            free = None if np.may_share_memory(old, hat) else old
            res = step.residuals
            assert res is not None  # (AdmmRule.next always gives them)
            history.append((it, res.primal, res.dual, res.eps_primal, res.eps_dual, lam))
            line.update(partial(progress_text, it, max_iter, res))
            if step.stop:
                break
            if step.scale != 1.0:
                for d in duals:
                    d *= step.scale
    lam = step.lam
    state = State(hat, copies, duals, lam)
    inf = float("inf")
    r, s, eps_p, eps_d = ((res.primal, res.dual, res.eps_primal, res.eps_dual) if res
                          else (inf, inf, inf, inf))
    converged = res is not None and res.converged
    return Result(copies[0], state, it, converged, r, s, eps_p, eps_d, lam,
                  time.perf_counter() - start, history)
