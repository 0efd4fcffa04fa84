"""Damped Newton (IRLS) for smooth stratified objectives

    F(θ) = Σ_i w_i f(x_iᵀθ_{z_i} + o_i, y_i) + ½ Σ q ∘ θ² + ½ tr θᵀ (L ⊗ I) θ,

each step's system H Δ = −∇F solved by conjugate gradients preconditioned with the
stratum blocks and the exact Kronecker-sum solve (solvers.hessian), to a tolerance that
tightens as the gradient falls (truncated Newton); a backtracking line search on F
itself; convergence when half the squared Newton decrement, −½ ∇Fᵀ Δ (≈ F − F*), falls
below ``tol`` relative to |F|. The per-record work of a step is a few vectorized passes
(predictor, derivatives, gradient and blocks), so the cost is linear in the records,
and the step count does not grow with the records per stratum.

Outcomes are reported in :attr:`NewtonResult.status`, never silently: 'optimal',
'max_iter', 'nonfinite_start' (F is not finite at the start), 'nonfinite' (an iterate,
the gradient or the curvature is not finite), 'unbounded' (F falls linearly without end along a
direction of no curvature) and 'line_search' (no step length decreases F while the
decrement is still large).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .hessian import HessianOperator, KroneckerSum, RecordStatistics, pcg
from .pointwise import Pointwise

EXACT_MODEL_MARGIN = 0.001  # see newton(): a quadratic loss's CG tolerance


@dataclass(frozen=True)
class LossTerm:
    """A pointwise loss over some records (``records`` their positions; None: all)."""

    unit: Pointwise
    records: np.ndarray | None = None


@dataclass
class SmoothProblem:
    """The objective's data: records, their loss terms, ridge weights q (K, d) and the
    Laplacian's Kronecker sum. y (N, m); offset (N,) added to every output; weight (N,)."""

    stats: RecordStatistics
    y: np.ndarray
    terms: list[LossTerm]
    ridge: np.ndarray
    laplacian: KroneckerSum
    offset: np.ndarray | None = None
    weight: np.ndarray | None = None

    @property
    def coupled(self) -> bool:
        return any(t.unit.coupled for t in self.terms)

    def predictor(self, theta: np.ndarray) -> np.ndarray:
        eta = self.stats.predictor(theta)
        return eta if self.offset is None else eta + self.offset[:, None]

    def loss(self, eta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """(Σ w f, w f' (N, m), w f'' (N, m) or (N, m, m)) at the predictors η."""
        n_records, m = eta.shape
        with np.errstate(over="ignore", invalid="ignore"):
            if len(self.terms) == 1 and self.terms[0].records is None:
                value, d1, d2 = self.terms[0].unit.derivatives(eta, self.y)
            else:
                value = np.zeros(n_records if self.coupled else (n_records, m))
                d1 = np.zeros((n_records, m))
                d2 = np.zeros((n_records, m, m) if self.coupled else (n_records, m))
                for term in self.terms:
                    rows = slice(None) if term.records is None else term.records
                    value[rows], d1[rows], d2[rows] = term.unit.derivatives(eta[rows],
                                                                           self.y[rows])
            if self.weight is None:
                total = float(np.sum(value))
            else:
                w = self.weight
                if value.ndim == 2:
                    value = np.sum(value, axis=1)
                total = float(w @ value)
                d1 = d1 * w[:, None]
                d2 = d2 * (w[:, None] if d2.ndim == 2 else w[:, None, None])
        return total, d1, d2

    def initial_predictor(self) -> np.ndarray | None:
        """Each record's start η₀ by its loss's unit (None when some unit has none)."""
        if self.coupled:
            return None
        out = np.empty_like(self.y, dtype=float)
        for term in self.terms:
            rows = slice(None) if term.records is None else term.records
            start = term.unit.initial(self.y[rows])
            if start is None:
                return None
            out[rows] = start
        return out

    def penalty(self, flat: np.ndarray) -> tuple[float, np.ndarray]:
        """(½ Σ q θ² + ½ θ·Lθ, its gradient q θ + Lθ) for θ as (K, d)."""
        gradient = self.ridge * flat + self.laplacian.apply(flat)
        return 0.5 * float(np.sum(flat * gradient)), gradient


@dataclass
class NewtonResult:
    theta: np.ndarray  # (K, n, m)
    objective: float
    status: str
    iterations: int
    cg_iterations: int
    decrement: float  # ½ λ², the predicted objective decrease left at the last step
    seconds: float
    history: list[tuple[float, float, int]]  # (objective, ½ λ², CG steps) per step

    @property
    def converged(self) -> bool:
        return self.status == "optimal"


def irls_start(problem: SmoothProblem, preconditioner: str, max_cg: int) -> np.ndarray | None:
    """The classic IRLS start: θ minimizing the penalties plus the loss's quadratic model
    around each record's own start η₀ (a weighted least-squares fit to the working
    response η₀ − f'/f''). None when the loss offers no η₀."""
    eta0 = problem.initial_predictor()
    if eta0 is None:
        return None
    stats = problem.stats
    with np.errstate(over="ignore", invalid="ignore"):
        _, d1, d2 = problem.loss(eta0)
        offset = 0.0 if problem.offset is None else problem.offset[:, None]
        gradient = stats.gradient(d1 + d2 * (offset - eta0))  # the model's, at θ = 0
    if not (np.all(np.isfinite(gradient)) and np.all(np.isfinite(d2))):
        return None
    blocks = stats.blocks(d2)
    delta = _shift(problem, blocks)
    hessian = HessianOperator(blocks, problem.ridge + delta, problem.laplacian)
    # a quadratic loss's model is exact: solved tightly, the start is the minimizer and
    # Newton's first step only confirms it (loosely, each of up to 3 steps re-solved it)
    exact = all(term.unit.quadratic for term in problem.terms)
    solved = pcg(hessian, hessian.preconditioner(preconditioner), -gradient,
                 1e-12 if exact else 1e-4, max_cg)
    return solved.x.reshape(stats.k, stats.n, stats.m)


def _shift(problem: SmoothProblem, blocks: np.ndarray) -> np.ndarray:
    """δ of H + diag(δ), a hair above rounding: a direction the data and penalties leave
    without curvature gets a long but finite step instead of a singular system. Each
    coordinate's δ is relative to its own curvature (one mean over all coordinates let a
    badly scaled feature's δ swamp every other coefficient, whose steps then all but
    vanished); a coordinate without any curvature gets the mean's."""
    diagonal = (np.einsum("kaa->ka", blocks) + problem.ridge
                + problem.laplacian.diagonal[:, None])
    scale = float(np.mean(diagonal))
    floor = 1e-9 * scale if scale > 0 else 1e-9
    return np.where(diagonal > 0, 1e-9 * diagonal, floor)


def newton(problem: SmoothProblem, start: np.ndarray | None = None, tol: float = 1e-10,
           max_iter: int = 100, preconditioner: str = "auto",
           max_cg: int = 500) -> NewtonResult:
    """Minimizes F from ``start`` (default: the IRLS start when it is better than θ = 0),
    θ of shape (K, n, m)."""
    clock = time.perf_counter()
    stats = problem.stats
    shape = (stats.k, stats.n, stats.m)
    starts = [np.zeros(shape)] if start is None else [
        np.array(start, dtype=float).reshape(shape)]
    if start is None:
        candidate = irls_start(problem, preconditioner, max_cg)
        if candidate is not None and np.all(np.isfinite(candidate)):
            starts.append(candidate)
    best = None  # the start with the lower objective (a non-finite one loses)
    for theta in starts:
        eta = (problem.predictor(theta) if theta is not starts[0] or start is not None
               else _at_zero(problem))
        loss, d1, d2 = problem.loss(eta)
        quad, quad_gradient = problem.penalty(theta.reshape(stats.k, stats.size))
        if best is None or (np.isfinite(loss + quad) and not loss + quad >= best[0]):
            best = (loss + quad, theta, eta, loss, d1, d2, quad, quad_gradient)
    assert best is not None
    value, theta, eta, loss, d1, d2, quad, quad_gradient = best
    flat = theta.reshape(stats.k, stats.size)
    history: list[tuple[float, float, int]] = []
    cg_total = 0

    def result(status: str, iterations: int, decrement: float) -> NewtonResult:
        return NewtonResult(flat.reshape(shape), value, status, iterations, cg_total,
                            decrement, time.perf_counter() - clock, history)

    if not np.isfinite(value):
        return result("nonfinite_start", 0, float("inf"))
    first_norm = None
    decrement = float("inf")
    # a quadratic loss's Newton model is exact: the step is solved as tightly as the
    # stopping rule needs at once — CG's relative residual ε leaves about ε² of the
    # decrement, which the coordinates' bound undercounts (by up to EXACT_MODEL_MARGIN²
    # allowed for) — instead of the forcing term's 0.1 first (from a warm start at
    # K = 10⁶: 4 Newton steps and 15 CG iterations, 2.0 s, where this takes 2 steps,
    # 1.2 s; each Newton step costs several CG iterations' worth of passes over the
    # records)
    exact_model = all(term.unit.quadratic for term in problem.terms)
    for iteration in range(1, max_iter + 1):
        gradient = stats.gradient(d1) + quad_gradient
        if not np.all(np.isfinite(gradient)) or not np.all(np.isfinite(d2)):
            return result("nonfinite", iteration - 1, decrement)
        norm = float(np.linalg.norm(gradient))
        first_norm = norm if first_norm is None else first_norm
        if norm == 0:
            return result("optimal", iteration - 1, 0.0)
        blocks = stats.blocks(d2)
        if not np.all(np.isfinite(blocks)):  # features whose squares overflow
            return result("nonfinite", iteration - 1, decrement)
        delta = _shift(problem, blocks)
        hessian = HessianOperator(blocks, problem.ridge + delta, problem.laplacian)
        # the forcing term: loose far away, as tight as the gradient near the optimum
        rtol = min(0.1, max(norm / first_norm, 1e-12))
        coordinate = _coordinate_decrement(gradient, hessian)  # (once: used twice below)
        if exact_model:
            wanted = tol * max(1.0, abs(value)) / max(coordinate, 1e-300)
            rtol = min(rtol, max(EXACT_MODEL_MARGIN * math.sqrt(wanted), 1e-12))
        solved = pcg(hessian, hessian.preconditioner(preconditioner), -gradient, rtol, max_cg)
        cg_total += solved.iterations
        step = solved.x
        decrement = -0.5 * float(np.sum(gradient * step))
        curvature = float(np.sum(step * hessian(step))) - float(np.sum(delta * step * step))
        if decrement > 0 and curvature < 1e-3 * decrement and _unbounded(
                problem, flat, eta, step, value, gradient):
            # the step is (nearly) without curvature: F is linear along it, unbounded below
            # or until curvature returns far out
            return result("unbounded", iteration - 1, float("inf"))
        if not decrement > 0:  # no descent found (curvature lost to rounding)
            return result("optimal" if _small(norm, first_norm) else "line_search",
                          iteration - 1, max(decrement, 0.0))
        history.append((value, decrement, solved.iterations))
        # a loose CG solve can stop once it has the gradient's largest part (e.g. one
        # badly scaled feature's rounding) and miss the rest: each coordinate's own
        # Newton decrement bounds the true one from below, and must be small too
        left = max(decrement, coordinate)
        done = left <= tol * max(1.0, abs(value))
        # along the step: η(t) = η + t·η_Δ, the penalty a quadratic in t
        eta_step = stats.predictor(step.reshape(shape))
        slope_quad = float(np.sum(quad_gradient * step))
        _, step_gradient = problem.penalty(step)
        curve_quad = float(np.sum(step * step_gradient))
        slack = 1e-13 * max(1.0, abs(value))  # rounding in F itself
        t = 1.0
        for _ in range(60):
            trial_eta = eta + eta_step if t == 1.0 else eta + t * eta_step
            trial_loss, trial_d1, trial_d2 = problem.loss(trial_eta)
            trial = trial_loss + quad + t * slope_quad + 0.5 * t * t * curve_quad
            if np.isfinite(trial) and trial <= value - 1e-4 * t * 2.0 * decrement + slack:
                break
            t *= 0.5
        else:
            return result("optimal" if done else "line_search", iteration - 1, decrement)
        flat = flat + t * step
        if not np.all(np.isfinite(flat)):
            return result("nonfinite", iteration, decrement)
        eta = trial_eta
        loss, d1, d2 = trial_loss, trial_d1, trial_d2
        quad, quad_gradient = problem.penalty(flat)
        value = loss + quad
        if done:
            return result("optimal", iteration, decrement)
    return result("max_iter", max_iter, left)


def _at_zero(problem: SmoothProblem) -> np.ndarray:
    """The predictors at θ = 0: the offsets (no pass over the features)."""
    shape = (len(problem.y), problem.stats.m)
    return (np.zeros(shape) if problem.offset is None
            else np.repeat(np.asarray(problem.offset, dtype=float)[:, None], shape[1], axis=1))


def _unbounded(problem: SmoothProblem, flat: np.ndarray, eta: np.ndarray,
               direction: np.ndarray, value: float, gradient: np.ndarray) -> bool:
    """Does F fall linearly without end along ``direction`` (a direction of no curvature)?
    Checked far out: a bounded convex F stops falling linearly somewhere (at its minimum
    along the ray at the latest)."""
    unit = direction / max(float(np.linalg.norm(direction)), 1e-300)
    slope = float(np.sum(gradient * unit))
    if not slope < 0:
        return False
    along = problem.stats.predictor(unit.reshape(problem.stats.k, problem.stats.n,
                                                 problem.stats.m))
    far = 1e8 * max(1.0, float(np.max(np.abs(flat))))
    loss, _, _ = problem.loss(eta + far * along)
    quad, _ = problem.penalty(flat + far * unit)
    fall = loss + quad - value
    return bool(np.isfinite(fall) and abs(fall - far * slope) <= 1e-6 * abs(far * slope))


def _coordinate_decrement(gradient: np.ndarray, hessian: HessianOperator) -> float:
    """max_j g_j² / (2 H_jj): a lower bound on the Newton decrement ½ gᵀH⁻¹g (by
    Cauchy–Schwarz), whatever the accuracy of a CG solve."""
    diagonal = (np.einsum("kaa->ka", hessian.blocks) + hessian.diagonal
                + hessian.laplacian.diagonal[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(diagonal > 0, gradient * gradient / (2.0 * diagonal), 0.0)
    return float(np.max(ratios, initial=0.0))


def _small(norm: float, first: float) -> bool:
    return norm <= 1e-10 * max(first, 1.0)
