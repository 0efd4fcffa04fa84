"""Penalty weights chosen from the data: REML, ML (Laplace approximate marginal
likelihood) and GCV, for an objective F(θ; w) = ℓ(θ) + ½ θᵀP(w)θ whose loss is a
negative log-likelihood.

The reading. The loss is ℓ = τ · (−log p(y | θ)) up to constants: τ is the known
:attr:`InnerFit.scale` (1 for most losses, 2 for gaussian's twice the NLL), except for
squared, whose ℓ = Σ w_i (η_i − y_i)² is 2φ times the Gaussian negative log-likelihood
(τ = 2φ, φ the dispersion, estimated). The prior of θ
is N(0, (P(w)/τ)⁻), improper on P's null space. With θ̂(w) the fit and
H = ∇²ℓ(θ̂) + P(w), the Laplace approximation gives, up to constants independent of w
and φ (N records, M₀ = dim null P):

    REML  V = F(θ̂)/τ + ½ log|H| − ½ log|P|₊ [+ (N − M₀)/2 · log(2πφ)]
    ML    V = F(θ̂)/τ + ½ log|ZᵀHZ| − ½ log|P|₊ [+ N/2 · log(2πφ)],  Z a basis of range P
    GCV   V = N · D / (N − edf)²,  edf = tr(H⁻¹ ∇²ℓ), D the deviance (squared: ℓ itself)

(the bracketed terms for squared, φ profiled out: φ̂ = F/(N − M₀) for REML, F/N for ML,
as mgcv). REML is mgcv's ``method="REML"`` (null space integrated with a flat prior);
ML maximizes over the null space's coefficients instead (log|ZᵀHZ| = log|H| +
log|NᵀH⁻¹N|, N an orthonormal null basis). mgcv penalizes its deviance by λ βᵀSβ: a
weight w is λ = w/2 for squared (whose loss is the deviance) and λ = w for the others
(whose loss is half the deviance); mgcv also rescales a given S by ``S.scale``
(benchmarks/reml_mgcv.py matches it to 1e-8).

The posterior covariance of θ is τ H⁻¹ (H is the Hessian of F = τ · the negative log
posterior): :attr:`Selection.covariance_scale` is τ (2φ̂ for squared, else the scale).

The exact gradient in ρ = log w (envelope theorem for θ̂ and φ̂):

    ∂V/∂ρ_a = w_a θ̂ᵀS_aθ̂ / (2τ) + ½ w_a tr(H⁻¹S_a) + ½ Σ_k tr((H⁻¹)_kk ∂B_k/∂ρ_a)
              − ½ w_a tr(P⁺S_a)

with ∂θ̂/∂ρ_a = −H⁻¹ w_a S_a θ̂ and ∂B/∂ρ_a the change of the loss's curvature blocks
along it (zero for squared; :attr:`InnerFit.block_change` supplies it, a central
difference of the records' curvature for the Newton problems).

The search: Fellner–Schall fixed-point steps w_a ← w_a (tr(P⁺S_a) − tr(H⁻¹S_a)) /
(θ̂ᵀS_aθ̂/τ) (Wood & Fasiolo 2017) from the start until they settle (at most two where
the Cholesky factor's exact Hessian below is at hand), then Newton steps on ρ with the exact gradient and a Hessian
that is exact where H is exact-spectral and the curvature constant
(:func:`_exact_hessian`) or where the exact factor is dense, the curvature's first and
second change included (:func:`_cholesky_hessian`), by forward differences of the gradient
otherwise (for a stochastic criterion: once, then BFGS updates from the accepted steps),
each inner fit warm-started from the last θ̂. A stochastic criterion's search is led by its
Kronecker reference where there is one (:func:`_reference_search`): the whole search above
first on V with H replaced by K̃ = P(w) + I ⊗ B̄ (B̄ the strata's mean curvature block:
log|K̃|, its traces and the Hessian in log w exact-spectral, θ̂(w) the true fits), then
the stochastic evaluations from its optimum, its Hessian there starting the BFGS updates
in place of a differences' one (the K = 10⁶ uneven benchmark: 15 stochastic evaluations →
6, beside 10 of the reference at one fit each). A loss of constant curvature with an
exact-spectral H needs one fit only: θ̂(w) is then one spectral solve
(:class:`QuadraticLoss`), and the answer is refitted by the callback to confirm. The criterion's Hessian in ρ gives each weight's approximate standard
error on the log scale. A weight whose criterion keeps falling toward 0 or ∞ (the data
cannot determine it) is flagged, never silently clipped: as soon as it has moved
monotonically toward 0 or ∞ over its last DRIFT_STEPS accepted steps, at least
DRIFT_DECADES from its start, and the criterion is flat along it — its predicted change
over one more decade, |∂V/∂ρ_a| ln 10 + ½ |∂²V/∂ρ_a²| (ln 10)², is below FLAT_CHANGE (or
below twice the criterion's stochastic error) — it is held where it is and flagged; and
in any case at ``bound`` decades from the start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .cholesky import NotPositiveDefinite
from .curvature import EXACT_LIMIT, LaplaceCurvature
from .hessian import KroneckerSum, RecordStatistics
from .laplacian import KroneckerSolver, exact_kronecker
from .newton import SmoothProblem, newton
from .penalty import InteractionPart, LaplacianPart, LogDet, QuadraticPenalty, RidgePart
from .quadratic_solve import QuadraticSolve
from .stochastic import PILOT_PROBES, PROBES

CRITERIA = ("reml", "ml", "gcv")
FELLNER_SCHALL_STEPS = 6
EXACT_FELLNER_SCHALL_STEPS = 2  # with the Cholesky path's exact Hessian at hand
SMALL_STEP = 1e-4  # a Newton step this small in log w is taken without a further iteration
PRECISE = 0.01  # standard error of V below which the pilot's probes suffice
# A weight the data cannot determine (see the module's doc): moved monotonically over its
# last DRIFT_STEPS steps, DRIFT_DECADES from its start, with the criterion changing less
# over a decade than a quadratic of log-scale standard error FLAT_LOG_SE would (0.0265)
DRIFT_STEPS = 3
DRIFT_DECADES = 2.0
FLAT_LOG_SE = 10.0
FLAT_CHANGE = 0.5 * (math.log(10) / FLAT_LOG_SE) ** 2
# GCV's Nelder–Mead stops after this many fits per simplex vertex without a better value
GCV_STALL = 30
# ... and flags a weight run off along which one more decade changes V by less than this
# fraction of it (GCV has no Hessian for drift's rule; V ≈ D/N, so 0.1 % of it is drift's
# 0.0265 on REML's scale, ≈ D/2, for a deviance D of about 50)
GCV_FLAT = 1e-3
REFACTOR = 1e-3  # a chord step shrinking the decrement less than this refactorizes
# the reference criterion's search (see _reference_then_correct) stops at a predicted
# decrease below this: the true evaluations that follow correct far larger differences
REFERENCE_DECREMENT = 1e-3


@dataclass(frozen=True)
class InnerFit:
    """What the caller's fit at weights w returns."""

    theta: np.ndarray  # (K, d) the minimizer θ̂(w)
    loss: float  # ℓ(θ̂), the data term of the objective
    blocks: np.ndarray  # (K, d, d) ∇²ℓ(θ̂) per stratum
    observations: int  # N, the number of records
    dispersion: bool = False  # squared: φ estimated (τ = 2φ)
    # δθ (K, d) ↦ d/dt ∇²ℓ(θ̂ + tδθ) at t = 0, as (K, d, d); None: constant curvature
    block_change: Callable[[np.ndarray], np.ndarray] | None = None
    deviance: float | None = None  # for GCV (default: the loss)
    scale: float = 1.0  # τ without a dispersion: the loss is τ times the NLL
    # (δθ₁, δθ₂) ↦ ∂²/∂s∂t ∇²ℓ(θ̂ + sδθ₁ + tδθ₂) at 0, as (K, d, d): for the criterion's
    # exact Hessian in log w with a changing curvature (None: not available, or constant)
    block_second: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None

    @staticmethod
    def from_problem(problem: SmoothProblem, theta: np.ndarray, dispersion: bool = False,
                     deviance: float | None = None) -> InnerFit:
        """The fit of a Newton problem (solvers.newton) at its minimizer θ̂: the blocks
        from the records' curvature, their change by a central difference."""
        stats: RecordStatistics = problem.stats
        flat = np.asarray(theta, dtype=float).reshape(stats.k, stats.size)
        shaped = flat.reshape(stats.k, stats.n, stats.m)
        eta = problem.predictor(shaped)
        loss, _, d2 = problem.loss(eta)
        blocks = stats.blocks(d2)

        def change(direction: np.ndarray) -> np.ndarray:
            along = stats.predictor(direction.reshape(stats.k, stats.n, stats.m))
            scale = float(np.max(np.abs(along), initial=0.0))
            if scale == 0:
                return np.zeros_like(blocks)
            step = 1e-4 / scale
            up = problem.loss(eta + step * along)[2]
            down = problem.loss(eta - step * along)[2]
            return stats.blocks((up - down) / (2 * step))

        def second(first: np.ndarray, other: np.ndarray) -> np.ndarray:
            # a mixed central difference: a larger step than the first change's, since
            # rounding is divided by its square (1e-3 of η: truncation ~1e-6 relative)
            # (each direction scaled to a unit largest change of η, so that neither
            # dominates the step, and the bilinear result scaled back)
            along = stats.predictor(first.reshape(stats.k, stats.n, stats.m))
            beside = stats.predictor(other.reshape(stats.k, stats.n, stats.m))
            size_along = float(np.max(np.abs(along), initial=0.0))
            size_beside = float(np.max(np.abs(beside), initial=0.0))
            if size_along == 0 or size_beside == 0:
                return np.zeros_like(blocks)
            step = 1e-3
            plus = step * (along / size_along + beside / size_beside)
            minus = step * (along / size_along - beside / size_beside)
            mixed = (problem.loss(eta + plus)[2] - problem.loss(eta + minus)[2]
                     - problem.loss(eta - minus)[2] + problem.loss(eta - plus)[2])
            return stats.blocks(mixed * (size_along * size_beside / (4 * step * step)))

        # constant curvature (squared): the same blocks a step away, so no change term
        shifted = problem.loss(eta + 0.5)[2]
        constant = bool(np.array_equal(shifted, d2))
        return InnerFit(flat, loss, blocks, len(problem.y), dispersion,
                        None if constant else change, deviance,
                        block_second=None if constant else second)


def newton_fit(problem: SmoothProblem, penalty: QuadraticPenalty, dispersion: bool = False,
               tol: float = 1e-12) -> Callable[[np.ndarray, np.ndarray | None], InnerFit]:
    """A fit callback for :func:`select_weights` by the Newton solver (solvers.newton): at
    each w the problem's ridge and Kronecker sum are set from the penalty's parts (each
    Laplacian part on every row, at most one per factor) and the fit is warm-started."""
    gammas_index: dict[int, int] = {}
    joined = {a: part.factors for a, part in enumerate(penalty.parts)
              if isinstance(part, InteractionPart)}
    for a, part in enumerate(penalty.parts):
        if isinstance(part, LaplacianPart):
            if part.rows is not None and not np.all(part.rows):
                raise ValueError("the Newton fit takes Laplacian parts on every row only")
            if part.factor in gammas_index:
                raise ValueError(f"two Laplacian parts on factor {part.factor}")
            gammas_index[part.factor] = a
    solvers: list[KroneckerSolver] = []

    def fit(weights: np.ndarray, warm: np.ndarray | None) -> InnerFit:
        gammas = [float(weights[gammas_index[f]]) if f in gammas_index else 0.0
                  for f in range(len(penalty.factors))]
        ridge = np.zeros((penalty.k, penalty.d))
        for a, part in enumerate(penalty.parts):
            if isinstance(part, RidgePart):
                ridge += weights[a] * np.asarray(part.pattern, dtype=float)
        problem.ridge = ridge
        laplacian = KroneckerSum(penalty.factors, gammas,
                                 [(factors, float(weights[a])) for a, factors in joined.items()])
        if exact_kronecker(penalty.factors) and not joined:  # reuse the factors' eigenbases across weights
            if not solvers:
                solvers.append(KroneckerSolver(penalty.factors, [1.0] * len(gammas)))
            laplacian._solver = solvers[0].with_gammas(penalty.factors, gammas)
        problem.laplacian = laplacian
        start = None if warm is None else warm.reshape(problem.stats.k, problem.stats.n,
                                                       problem.stats.m)
        result = newton(problem, start=start, tol=tol)
        if not result.converged:
            raise ArithmeticError(f"the inner Newton fit ended '{result.status}' at "
                                  f"weights {np.asarray(weights).tolist()}")
        return InnerFit.from_problem(problem, result.theta, dispersion)

    return fit


def constrained_newton(problem: SmoothProblem, penalty: QuadraticPenalty, weights: np.ndarray,
                       theta: np.ndarray, max_iter: int = 30, tol: float = 1e-24
                       ) -> np.ndarray | None:
    """θ̂ (K, d) minimizing ℓ(θ) + ½ θᵀP(w)θ over θ = Tφ (the penalty's
    reparametrization), by Newton steps in φ from ``theta`` projected on the constraint,
    with exact solves (TᵀHT factorized) and a backtracking line search, to a relative
    decrement ``tol``: the inner fit's precision that the criterion's small differences
    need (a solver's fit satisfies the constraint and the optimality only to its
    tolerance). Near the optimum the curvature barely changes, so a factorization is
    kept while each step shrinks the decrement by ``REFACTOR`` or more (a chord step: one
    factorization per fit from a good start). The problem's own ridge and Laplacian are
    not used: the penalty is. None when an iterate, the gradient or the curvature is not
    finite."""
    t = penalty.reparametrization
    if t is None:
        raise ValueError("a constrained Newton fit needs a penalty with a reparametrization")
    stats = problem.stats
    shape = (stats.k, stats.n, stats.m)

    def evaluate(flat: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        loss, d1, d2 = problem.loss(problem.predictor(flat.reshape(shape)))
        return loss + 0.5 * float(np.sum(flat * penalty.apply(weights, flat))), d1, d2

    current = t.project(np.asarray(theta, dtype=float).reshape(stats.k, stats.size))
    curvature: LaplaceCurvature | None = None
    fresh = False  # is the curvature the current iterate's?
    last = math.inf
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        value, d1, d2 = evaluate(current)
        for _ in range(max_iter):
            gradient = stats.gradient(d1) + penalty.apply(weights, current)
            if not (np.isfinite(value) and np.all(np.isfinite(gradient))
                    and np.all(np.isfinite(d2))):
                return None
            if curvature is None:
                curvature, fresh = LaplaceCurvature(stats.blocks(d2), penalty, weights,
                                                    "exact"), True
            step = -curvature.solve(gradient)
            decrement = -float(np.sum(gradient * step))
            if decrement > REFACTOR * last and not fresh:  # stale: a Newton step instead
                curvature, fresh = LaplaceCurvature(stats.blocks(d2), penalty, weights,
                                                    "exact"), True
                step = -curvature.solve(gradient)
                decrement = -float(np.sum(gradient * step))
            # done: below the tolerance, or a Newton step no longer halves the decrement
            # (rounding's floor, which for a large |F| lies above the tolerance)
            if decrement <= tol * max(1.0, abs(value)) or decrement > 0.5 * last:
                break
            last = decrement
            size = 1.0
            for _ in range(40):
                trial = current + size * step
                trial_value, trial_d1, trial_d2 = evaluate(trial)
                if trial_value <= value - 1e-4 * size * decrement:
                    break
                size *= 0.5
            else:
                break  # rounding hides any decrease: as good as it gets
            # far from the optimum (a damped step) the curvature is refreshed
            curvature = None if size < 1.0 else curvature
            fresh = False
            current, value, d1, d2 = trial, trial_value, trial_d1, trial_d2
    return current if np.all(np.isfinite(current)) else None


@dataclass(frozen=True)
class Evaluation:
    """The criterion at one ρ = log w."""

    rho: np.ndarray
    value: float
    gradient: np.ndarray
    stderr: float  # of the value (0 when exact)
    fit: InnerFit
    curvature: LaplaceCurvature
    scale: float  # φ̂ (1 without dispersion)
    method: str
    # computes ∂²V/∂ρ² exactly where it can (:attr:`hessian`), else None
    exact_hessian: Callable[[], np.ndarray | None] | None = None
    solved: bool = False  # θ̂ by QuadraticLoss's spectral solve, not the fit callback

    @functools.cached_property
    def hessian(self) -> np.ndarray | None:
        """∂²V/∂ρ², exact (an exact-spectral H with a constant curvature, or a dense
        exact factor), else None: computed when first asked (the search asks at the
        points it accepts only, not at a line search's trials)."""
        return None if self.exact_hessian is None else self.exact_hessian()

    @property
    def covariance_scale(self) -> float:
        """τ: the posterior covariance of θ is τ H⁻¹."""
        return 2.0 * self.scale if self.fit.dispersion else self.fit.scale


@dataclass(frozen=True)
class Selection:
    """The chosen weights and how sure the choice is."""

    weights: np.ndarray
    criterion: str
    value: float
    iterations: int  # outer iterations (inner fits done)
    log_se: np.ndarray  # approximate standard error of log w per weight (nan: not free)
    unbounded: tuple[str | None, ...]  # per weight: None, "zero" or "infinite"
    converged: bool
    scale: float  # φ̂ (1 without dispersion)
    method: str  # how log|H| and the traces were computed
    fit: InnerFit
    history: list[tuple[np.ndarray, float]] = field(default_factory=list)
    # the approximate covariance of log w (free weights; zero rows/columns for the others)
    log_covariance: np.ndarray | None = None
    # of ``iterations``, those for the reference criterion (H replaced by its Kronecker
    # reference: an exact-spectral evaluation at the cost of the fit) that led a
    # stochastic search to the optimum's neighbourhood
    reference_evaluations: int = 0
    # evaluations of the criterion itself (stochastic: each many probes' solves), one at
    # the reference's last fit included (0: not counted, the GCV search)
    evaluations: int = 0

    @property
    def covariance_scale(self) -> float:
        """τ: the posterior covariance of θ is τ H⁻¹ (2φ̂ for squared, else the fit's
        known scale)."""
        return 2.0 * self.scale if self.fit.dispersion else self.fit.scale

    def weight_directions(self, curvature: LaplaceCurvature
                          ) -> tuple[np.ndarray, np.ndarray]:
        """(J (A, K, d), Cov(ρ) (A, A)) over the A weights that are free, determined (not
        flagged) and have a covariance: J_a = ∂θ̂/∂ρ_a = −H⁻¹ w_a S_a θ̂. ``curvature``: H at
        the chosen weights (LaplaceCurvature(fit.blocks, penalty, weights))."""
        penalty = curvature.penalty
        theta = self.fit.theta
        cov = (np.zeros((len(self.weights),) * 2) if self.log_covariance is None
               else np.nan_to_num(self.log_covariance, nan=0.0, posinf=0.0))
        active = [a for a in range(len(self.weights))
                  if cov[a, a] > 0 and self.unbounded[a] is None]
        directions = np.array([-curvature.solve(self.weights[a] * penalty.apply_part(a, theta))
                               for a in active]).reshape(len(active), penalty.k, penalty.d)
        return directions, cov[np.ix_(active, active)]

    def weight_uncertainty(self, curvature: LaplaceCurvature) -> np.ndarray:
        """The stratum blocks (K, d, d) to add to τ (H⁻¹)_kk for the uncertainty of the
        chosen weights themselves (mgcv's ``unconditional=TRUE``, Wood, Pya & Säfken
        2016): Σ_ab J_a J_bᵀ Cov(ρ)_ab per stratum, J_a = ∂θ̂/∂ρ_a = −H⁻¹ w_a S_a θ̂.
        ``curvature``: H at the chosen weights (LaplaceCurvature(fit.blocks, penalty,
        weights)). Zero for a weight not free or not determined (flagged)."""
        directions, cov = self.weight_directions(curvature)
        return np.einsum("akc,ab,bke->kce", directions, cov, directions)


@dataclass(frozen=True)
class QuadraticLoss:
    """A loss with constant curvature, the same block B on every stratum, as seen from
    one fit (θ₀, ℓ₀) at weights w₀: ℓ(θ) = ℓ₀ + g₀ᵀ(θ − θ₀) + ½ (θ − θ₀)ᵀB(θ − θ₀), g₀ =
    −P(w₀)θ₀ (θ₀ minimizes ℓ + ½θᵀP(w₀)θ), so θ̂(w) = H(w)⁻¹ b with b = H(w₀)θ₀: one
    exact spectral solve per weight instead of a fit. ("Constant" is the fit's own
    reading, InnerFit.block_change None; select_weights refits at the answer and checks
    the two agree.)"""

    anchor: InnerFit
    theta: np.ndarray  # θ₀, g₀ and b in the factors' eigenbasis (solvers.spectral)
    gradient: np.ndarray
    target: np.ndarray

    @property
    def blocks(self) -> np.ndarray:
        return self.anchor.blocks

    @staticmethod
    def at(inner: InnerFit, curvature: LaplaceCurvature) -> QuadraticLoss:
        """From the fit at ``curvature``'s weights (an exact-spectral H(w₀))."""
        reference = curvature.spectral
        theta = curvature.spectral_theta(inner.theta)
        target = reference.times(theta, reference.matrices)  # H(w₀)θ₀
        gradient = reference.times(theta, inner.blocks[0][None]) - target  # Bθ₀ − b
        return QuadraticLoss(inner, theta, gradient, target)

    def fit(self, curvature: LaplaceCurvature) -> InnerFit:
        """The InnerFit at ``curvature``'s weights (an exact-spectral H(w)): all in the
        factors' eigenbasis, one transform back for θ̂."""
        anchor, reference = self.anchor, curvature.spectral
        coordinates = reference.times(self.target, reference.inverse)
        step = coordinates - self.theta
        loss = (anchor.loss + reference.inner(self.gradient, step)
                + 0.5 * reference.inner(step, reference.times(step, anchor.blocks[0][None])))
        theta = reference.backward(coordinates)
        curvature.spectral_theta(theta, coordinates)
        return InnerFit(theta, loss, anchor.blocks, anchor.observations, anchor.dispersion,
                        scale=anchor.scale)


class Criterion:
    """V(ρ) for one penalty, fit callback and criterion; evaluations warm-start the fit."""

    def __init__(self, fit: Callable[[np.ndarray, np.ndarray | None], InnerFit],
                 penalty: QuadraticPenalty, criterion: str = "reml", method: str = "auto",
                 seed: int = 0, start: np.ndarray | None = None,
                 free: np.ndarray | None = None, options: dict[str, float] | None = None,
                 spectral_fits: bool = True, reference: bool = False):
        """``start``/``free``: weights not free are taken from ``start`` exactly (not
        through exp(log w)); ``options``: for the stochastic estimators (probes,
        cg_rtol, probe_rtol); ``spectral_fits``: once a fit shows a quadratic loss
        with an exact-spectral H, later evaluations solve for θ̂ spectrally
        (:class:`QuadraticLoss`) instead of calling ``fit``; ``reference``: the reference
        criterion instead, H replaced by its Kronecker reference K̃ = P(w) + I ⊗ B̄ (B̄ the
        strata's mean curvature block) in log|H|, its traces and its Hessian in log w —
        all exact-spectral — with the true fits θ̂(w) (the penalty needs uniform ridges
        and diagonalizable factors)."""
        if criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {CRITERIA}, not {criterion!r}")
        self.fit, self.penalty, self.criterion = fit, penalty, criterion
        self.method, self.seed = method, seed
        self.theta: np.ndarray | None = None
        self.fits = 0  # by the fit callback
        self.evaluations = 0  # of the criterion, a pilot's second estimate not counted
        self.solves = 0  # by the quadratic loss's spectral solve, or a CG solve
        self.reference = reference
        self.spectral_fits = spectral_fits and not reference
        self.quadratic: QuadraticLoss | None = None
        # θ̂(w) by CG solves of a quadratic loss (solvers.quadratic_solve) and the fit it
        # was read from (see :meth:`solve_fits`)
        self.solved: tuple[QuadraticSolve, InnerFit] | None = None
        self.start, self.free = start, free
        self.options = dict(options or {})

    def solve_fits(self, inner: InnerFit, weights: np.ndarray) -> None:
        """From here on, θ̂(w) of the quadratic loss seen from ``inner`` (the fit at
        ``weights``) by one CG solve instead of the fit callback (a stochastic search,
        where H is no Kronecker sum: the answer is refitted by the callback to confirm)."""
        self.solved = (QuadraticSolve.at(self.penalty, inner.blocks, inner.theta, inner.loss,
                                         weights), inner)

    def _solved_fit(self, weights: np.ndarray, curvature: LaplaceCurvature | None
                    ) -> InnerFit | None:
        """θ̂(w) by the CG solve; None (and the callback's fits from here on) where CG
        stops short of its tolerance: the solve is a shortcut, the fit still answers."""
        assert self.solved is not None
        solve, anchor = self.solved
        solver = (curvature.stochastic if curvature is not None
                  and curvature.method == "stochastic" else None)
        try:
            theta, loss = solve.minimizer(weights, solver, self.theta)
        except ArithmeticError:
            self.solved = None
            return None
        self.solves += 1
        return InnerFit(theta, loss, anchor.blocks, anchor.observations, anchor.dispersion,
                        scale=anchor.scale)

    def weights(self, rho: np.ndarray) -> np.ndarray:
        weights = np.exp(rho)
        if self.start is not None and self.free is not None:
            weights = np.where(self.free, weights, self.start)
        return weights

    def __call__(self, rho: np.ndarray, gradient: bool = True, refit: bool = False,
                 inner: InnerFit | None = None, near: Evaluation | None = None
                 ) -> Evaluation:
        """V at ρ; ``refit``: by the fit callback even where the quadratic loss's spectral
        or CG solve would do; ``inner``: the fit at ρ already done (not counted here); ``near``:
        only the gradient is wanted, at ρ a difference step from ``near``'s — a stochastic
        H then starts its probes' solves from near's (the value, which that run cannot
        give, is NaN)."""
        rho = np.asarray(rho, dtype=float)
        weights = self.weights(rho)
        self.evaluations += 1
        solved = False  # θ̂ by a solve here, not by the callback
        if self.reference:
            if inner is None and self.solved is not None and not refit:
                inner = self._solved_fit(weights, None)
                solved = inner is not None
            if inner is None:
                inner = self.fit(weights, self.theta)
                self.fits += 1
            self.theta = inner.theta
            mean = np.broadcast_to(inner.blocks.mean(axis=0), inner.blocks.shape)
            curvature = LaplaceCurvature(mean, self.penalty, weights, "spectral")
            return self._likelihood(rho, weights, inner, curvature, gradient)
        pilot = "probes" not in self.options
        options = {"probes": PILOT_PROBES, **self.options}
        if self.quadratic is not None and not refit:
            curvature = LaplaceCurvature(self.quadratic.blocks, self.penalty, weights,
                                         "spectral")
            inner, solved = self.quadratic.fit(curvature), True
            self.solves += 1
        else:
            if inner is None and self.solved is not None and not refit:
                curvature = LaplaceCurvature(self.solved[1].blocks, self.penalty, weights,
                                             self.method, seed=self.seed, **options)
                inner = self._solved_fit(weights, curvature)
                solved = inner is not None
            if not solved:
                if inner is None:
                    inner = self.fit(weights, self.theta)
                    self.fits += 1
                curvature = LaplaceCurvature(inner.blocks, self.penalty, weights,
                                             self.method, seed=self.seed, **options)
            assert inner is not None  # (solved, or fitted just above)
            if (near is not None and curvature.method == "stochastic"
                    and near.curvature.method == "stochastic"):
                curvature.stochastic.start_from(near.curvature.stochastic)
            if (self.quadratic is None and self.spectral_fits and self.criterion != "gcv"
                    and curvature.method == "spectral" and inner.block_change is None
                    and inner.deviance is None):
                self.quadratic = QuadraticLoss.at(inner, curvature)
        self.theta = inner.theta
        if self.criterion == "gcv":
            return self._gcv(rho, weights, inner, curvature)
        evaluation = self._likelihood(rho, weights, inner, curvature, gradient)
        if solved:
            evaluation = dataclasses.replace(evaluation, solved=True)
        if curvature.method == "stochastic" and pilot:
            # the first evaluation fixes the probe count (common random numbers): a pilot
            # of PILOT_PROBES, kept when its error is already negligible (an error of
            # PRECISE in V moves no weight), else the full PROBES
            if evaluation.stderr <= PRECISE:
                self.options["probes"] = PILOT_PROBES
            else:
                self.options["probes"] = PROBES
                curvature = LaplaceCurvature(inner.blocks, self.penalty, weights, self.method,
                                             seed=self.seed, **self.options)
                evaluation = self._likelihood(rho, weights, inner, curvature, gradient)
        return evaluation

    def _likelihood(self, rho, weights, inner, curvature, want_gradient) -> Evaluation:
        penalty = self.penalty
        theta = inner.theta
        quadratics = curvature.quadratics(theta)  # ½ θᵀS_aθ
        objective = inner.loss + float(weights @ quadratics)
        pdet = curvature.penalty_logdet()
        null = pdet.null_dim
        n = inner.observations
        logdet = curvature.logdet()
        value_h = float(logdet.value)
        stderr = float(logdet.stderr) ** 2
        reml = self.criterion == "reml"
        if inner.dispersion:
            dof = n - null if reml else n
            if dof <= 0:
                raise ValueError(f"{n} records leave no degrees of freedom for the scale "
                                 f"beside {null} unpenalized coefficients")
            phi = objective / dof
            tau = 2.0 * phi
            value = 0.5 * dof + 0.5 * dof * math.log(2 * math.pi * phi)
        else:
            phi, tau = 1.0, inner.scale
            value = objective / tau
        null_basis = None
        if not reml and null:
            null_basis = penalty.null_basis(weights).toarray().T.reshape(null, penalty.k,
                                                                         penalty.d)
            solved = np.array([curvature.solve(v) for v in null_basis])
            inner_matrix = np.einsum("akd,bkd->ab", null_basis, solved)
            _, extra = np.linalg.slogdet(inner_matrix)
            value_h += extra
        value += 0.5 * value_h - 0.5 * pdet.value
        gradient = np.full(len(rho), np.nan)
        directions: list[np.ndarray] = []  # ∂θ̂/∂ρ_a, where the gradient needed them
        if want_gradient:
            traces = curvature.traces()
            stderr += float(np.sum(np.asarray(traces.stderr)[:-1] ** 2))
            part_traces = np.asarray(traces.value)[:-1]
            gradient = weights * quadratics / tau + 0.5 * weights * part_traces \
                - 0.5 * pdet.gradient
            changes = []
            if inner.block_change is not None or null_basis is not None:
                for a in range(len(rho)):
                    direction = -curvature.solve(weights[a] * penalty.apply_part(a, theta))
                    directions.append(direction)
                    change = (inner.block_change(direction) if inner.block_change is not None
                              else None)
                    changes.append(change)
                    if change is not None:
                        term = curvature.block_trace(change)
                        gradient[a] += 0.5 * float(term.value)
                        stderr += float(term.stderr) ** 2
            if null_basis is not None:
                # ∂ log|NᵀH⁻¹N| = −tr(C⁻¹ Uᵀ ∂H U), U = H⁻¹N, C = NᵀU
                c_inv = np.linalg.inv(inner_matrix)
                for a in range(len(rho)):
                    d_h = np.array([weights[a] * penalty.apply_part(a, u) for u in solved])
                    change = changes[a] if changes else None
                    if change is not None:
                        d_h = d_h + np.einsum("kab,ikb->ika", change, solved)
                    m = np.einsum("ikd,jkd->ij", solved, d_h)
                    gradient[a] -= 0.5 * float(np.sum(c_inv * m))
        hessian: Callable[[], np.ndarray | None] | None = None
        dof = n - null if reml else n
        # (only where it will be exact: the search takes a thunk's presence as its promise)
        if not want_gradient or null_basis is not None or pdet.hessian is None:
            pass
        elif curvature.method == "exact" and curvature.factor.dense and (
                inner.block_change is None or inner.block_second is not None):
            hessian = functools.partial(_cholesky_hessian, penalty, weights, inner, curvature,
                                        quadratics, part_traces, pdet, phi, dof, directions,
                                        changes)
        elif curvature.method == "spectral" and inner.block_change is None:
            hessian = functools.partial(_exact_hessian, penalty, weights, inner, curvature,
                                        quadratics, part_traces, pdet, phi, dof)
        return Evaluation(rho, value, gradient, math.sqrt(stderr), inner, curvature, phi,
                          logdet.method, hessian)

    def _gcv(self, rho, weights, inner, curvature) -> Evaluation:
        traces = curvature.traces()
        edf = float(np.asarray(traces.value)[-1])
        n = inner.observations
        deviance = inner.loss if inner.deviance is None else inner.deviance
        value = math.inf if n - edf <= 0 else n * deviance / (n - edf) ** 2
        stderr = 2 * n * deviance / abs(n - edf) ** 3 * float(np.asarray(traces.stderr)[-1])
        return Evaluation(rho, value, np.full(len(rho), np.nan), stderr, inner, curvature,
                          deviance / max(n - edf, 1e-300), traces.method)


def _exact_hessian(penalty: QuadraticPenalty, weights: np.ndarray, inner: InnerFit,
                   curvature: LaplaceCurvature, quadratics: np.ndarray,
                   part_traces: np.ndarray, pdet: LogDet, phi: float,
                   dof: int) -> np.ndarray | None:
    """∂²V/∂ρ² exactly, for a constant curvature (∂B/∂ρ = 0) when H's traces
    tr(H⁻¹S_aH⁻¹S_b) and P's log-determinant Hessian are exact (the spectral method);
    None otherwise. With F = ℓ(θ̂) + ½θ̂ᵀPθ̂, F_a = w_a θ̂ᵀS_aθ̂/2 (envelope) and
    ∂θ̂/∂ρ_b = −H⁻¹w_bS_bθ̂:

        F_ab = δ_ab F_a − w_a w_b (S_aθ̂)ᵀH⁻¹(S_bθ̂)
        ∂²(½log|H|) = ½ δ_ab w_a tr(H⁻¹S_a) − ½ w_a w_b tr(H⁻¹S_aH⁻¹S_b)

    and the data term is F/τ (φ known) or (dof/2) log F (φ profiled, τ = 2φ̂:
    F_ab/τ − F_aF_b/(2φ̂² dof))."""
    pairs = curvature.trace_pairs()
    if pairs is None or pdet.hessian is None:
        return None
    reference = curvature.spectral
    coordinates = curvature.spectral_theta(inner.theta)
    applied = np.stack([reference.part_times(a, coordinates) for a in range(len(weights))])
    cross = reference.gram(applied, np.stack([reference.times(x, reference.inverse)
                                              for x in applied]))
    outer = np.outer(weights, weights)
    first = weights * quadratics
    tau = 2.0 * phi if inner.dispersion else inner.scale
    hessian = (np.diag(first) - outer * cross) / tau
    if inner.dispersion:
        hessian -= np.outer(first, first) / (2.0 * phi ** 2 * dof)
    hessian += 0.5 * np.diag(weights * part_traces) - 0.5 * outer * np.asarray(pairs.value)
    hessian -= 0.5 * pdet.hessian
    return 0.5 * (hessian + hessian.T)


def _cholesky_hessian(penalty: QuadraticPenalty, weights: np.ndarray, inner: InnerFit,
                      curvature: LaplaceCurvature, quadratics: np.ndarray,
                      part_traces: np.ndarray, pdet: LogDet, phi: float, dof: int,
                      directions: list[np.ndarray], changes: list[np.ndarray | None]
                      ) -> np.ndarray | None:
    """∂²V/∂ρ² exactly on the exact path where H⁻¹ is at hand (a dense factor:
    LaplaceCurvature.trace_products), the curvature's change included (Wood 2011's
    second derivatives, as mgcv's gam.fit3); None where the factor is sparse, P's
    log-determinant has no exact Hessian, or the loss gives no second change of its
    curvature. With θ_a = ∂θ̂/∂ρ_a = −H⁻¹w_aS_aθ̂, B'[δ] and B''[δ, δ'] the curvature's
    first and second change and H_a = w_aS_a + B'[θ_a]:

        F_ab = δ_ab F_a + w_a (S_aθ̂)ᵀθ_b
        θ_ab = −H⁻¹(w_aS_aθ_b + w_bS_bθ_a + δ_ab w_aS_aθ̂ + B'[θ_b]θ_a)
        ∂²(½log|H|) = ½ δ_ab w_a tr(H⁻¹S_a) + ½ tr(H⁻¹(B''[θ_a, θ_b] + B'[θ_ab]))
                      − ½ tr(H⁻¹H_aH⁻¹H_b)

    and the data term as in :func:`_exact_hessian`."""
    if pdet.hessian is None:
        return None
    changing = inner.block_change is not None
    if changing and inner.block_second is None:
        return None
    parts = len(weights)
    theta = inner.theta
    applied = [weights[a] * penalty.apply_part(a, theta) for a in range(parts)]  # w_aS_aθ̂
    if not directions:
        directions = [-curvature.solve(x) for x in applied]
    matrices = [weights[a] * penalty.free_part_matrix(a) for a in range(parts)]
    if changing:
        present = [c for c in changes if c is not None]
        assert len(present) == parts
        matrices = [m + curvature.block_matrix(c) for m, c in zip(matrices, present,
                                                                   strict=True)]
    pairs = curvature.trace_products(matrices)
    if pairs is None:
        return None
    first = weights * quadratics
    cross = np.array([[float(np.sum(applied[a] * directions[b])) for b in range(parts)]
                      for a in range(parts)])  # w_a (S_aθ̂)ᵀθ_b
    data = np.diag(first) + 0.5 * (cross + cross.T)
    tau = 2.0 * phi if inner.dispersion else inner.scale
    hessian = data / tau
    if inner.dispersion:
        hessian -= np.outer(first, first) / (2.0 * phi ** 2 * dof)
    hessian += 0.5 * np.diag(weights * part_traces) - 0.5 * pairs
    if changing:
        assert inner.block_change is not None and inner.block_second is not None
        for a in range(parts):
            for b in range(a, parts):
                change_b = changes[b]
                assert change_b is not None
                rhs = (weights[a] * penalty.apply_part(a, directions[b])
                       + weights[b] * penalty.apply_part(b, directions[a])
                       + np.einsum("kij,kj->ki", change_b, directions[a]))
                if a == b:
                    rhs = rhs + applied[a]
                second_direction = -curvature.solve(rhs)
                extra = (inner.block_second(directions[a], directions[b])
                         + inner.block_change(second_direction))
                term = 0.5 * float(curvature.block_trace(extra).value)
                hessian[a, b] += term
                if b != a:
                    hessian[b, a] += term
    hessian -= 0.5 * pdet.hessian
    return 0.5 * (hessian + hessian.T)


def fellner_schall(evaluation: Evaluation, penalty: QuadraticPenalty,
                   free: np.ndarray) -> np.ndarray:
    """One Fellner–Schall step in ρ (0 for weights not free)."""
    weights = np.exp(evaluation.rho)
    curvature = evaluation.curvature
    tau = evaluation.covariance_scale
    pdet = curvature.penalty_logdet()
    traces = np.asarray(curvature.traces().value)[:-1]
    numerator = pdet.gradient - weights * traces  # w_a (tr(P⁺S_a) − tr(H⁻¹S_a))
    denominator = 2.0 * weights * curvature.quadratics(evaluation.fit.theta) / tau
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.log(np.maximum(numerator, 1e-300) / np.maximum(denominator, 1e-300))
    step = np.clip(np.nan_to_num(step, nan=0.0), -5.0, 5.0)
    return np.where(free, step, 0.0)


def select_weights(fit: Callable[[np.ndarray, np.ndarray | None], InnerFit],
                   penalty: QuadraticPenalty, criterion: str = "reml",
                   start: Sequence[float] | None = None, free: Sequence[bool] | None = None,
                   tol: float = 1e-8, max_iter: int = 100, bound: float = 12.0,
                   method: str = "auto", seed: int = 0,
                   options: dict[str, float] | None = None) -> Selection:
    """Weights minimizing the criterion over the ``free`` ones (the others stay at
    ``start``). ``fit(weights, warm_theta)`` returns the :class:`InnerFit` at those weights,
    warm-started from ``warm_theta`` (None on the first call). ``tol``: on the relative
    change of ρ (and of the criterion, with its stochastic error) between iterations;
    ``bound``: decades either side of the start beyond which a weight is reported as
    running to 0 or ∞; ``method``: "auto", "exact" or "stochastic" for log|H| and the
    traces (see solvers.curvature), ``seed`` and ``options`` for the stochastic ones."""
    parts = len(penalty.parts)
    start_w = np.ones(parts) if start is None else np.asarray(start, dtype=float)
    if start_w.shape != (parts,) or np.any(start_w <= 0):
        raise ValueError(f"start needs {parts} positive weights, not {start}")
    free_mask = np.ones(parts, dtype=bool) if free is None else np.asarray(free, dtype=bool)
    rho0 = np.log(start_w)
    lower = rho0 - bound * math.log(10)
    upper = rho0 + bound * math.log(10)
    lower[~free_mask] = upper[~free_mask] = rho0[~free_mask]
    target = Criterion(fit, penalty, criterion, method, seed, start_w, free_mask, options)
    if criterion == "gcv":
        return _derivative_free(target, rho0, free_mask, lower, upper, tol, max_iter, penalty)
    history: list[tuple[np.ndarray, float]] = []
    reference: Criterion | None = None
    if _reference_applies(penalty, criterion, method):
        # a stochastic H ahead: the reference criterion's search first, from the first fit
        inner = fit(start_w, None)
        target.theta = inner.theta
        if LaplaceCurvature(inner.blocks, penalty, start_w, method).method == "stochastic":
            reference = Criterion(fit, penalty, criterion, method, seed, start_w, free_mask,
                                  options, reference=True)
            reference.fits = 1
            if inner.block_change is None and inner.deviance is None:
                # a quadratic loss: every later θ̂(w) by one CG solve instead of a fit
                # (0.4 s against 1.0 s at K = 10⁶), the answer refitted to confirm
                target.solve_fits(inner, start_w)
                reference.solve_fits(inner, start_w)
        else:
            target.fits += 1
            current = target(rho0, inner=inner)
    else:
        current = target(rho0)
    drifted: list[str | None] = [None] * parts
    initial: np.ndarray | None = None  # a first Hessian for the stochastic search
    if reference is not None:
        near = _reference_search(reference, inner, rho0, free_mask, lower, upper, tol,
                                 max_iter, penalty)
        if near is not None:
            found, initial, drifted = near
            target.theta = found.fit.theta
            current = target(found.rho, inner=found.fit)  # (that fit counted as reference's)
        else:  # the reference is singular: the stochastic search from the start alone
            target.fits += reference.fits  # (the first fit, and any before K̃ failed)
            target.solves += reference.solves
            reference = None
            current = target(rho0, inner=inner)
    history.append((current.rho, current.value))
    if reference is None:
        current = _fellner_schall_steps(target, current, penalty, free_mask, lower, upper,
                                        max_iter, history)
    # Newton on ρ (see _newton); where θ̂ came from QuadraticLoss's spectral solves, the
    # answer is refitted by the callback: the same criterion there confirms the loss was
    # quadratic (else the search goes on with the callback's fits); where it came from CG
    # solves (a stochastic criterion, whose evaluations cost many probes' solves), the
    # refit alone is compared with the solve's θ̂ and loss
    while True:
        current, converged, hessian, hessian_at, drifted = _newton(
            target, current, free_mask, lower, upper, rho0, tol, max_iter, history,
            initial=initial, drifted=drifted)
        if target.solved is not None:
            confirmed = fit(target.weights(current.rho), current.fit.theta)
            target.fits += 1
            if _agree(confirmed.theta, current.fit.theta, confirmed.loss, current.fit.loss):
                current = dataclasses.replace(current, fit=confirmed, solved=False)
                break
            target.solved = None
            current = target(current.rho, refit=True)
            continue
        if not current.solved:
            break
        refitted = target(current.rho, refit=True)
        if _agree(refitted.fit.theta, current.fit.theta, refitted.value, current.value):
            current = refitted
            break
        target.quadratic, target.spectral_fits = None, False
        current = refitted
    # the standard errors from the Hessian at the answer: the exact one, or the last one
    # when the final step was tiny, else a fresh one by differences (central for an
    # exact criterion; forward for a stochastic one, whose evaluations cost more and
    # whose Hessian needs no more than a few digits)
    if current.hessian is not None:
        hessian = current.hessian
    elif float(np.max(np.abs(current.rho - hessian_at), initial=0.0)) > SMALL_STEP:
        hessian = _hessian(target, current, free_mask,
                           central=current.method.startswith("exact"))
    log_se, log_covariance = _standard_errors(hessian, free_mask)
    if any(limit is not None for limit in drifted):
        # the covariance of the others given the flagged ones, held where they stopped (a
        # flat direction would leave the joint inverse without a positive diagonal)
        determined = free_mask & np.array([limit is None for limit in drifted])
        log_covariance = _standard_errors(hessian, determined)[1]
    unbounded = tuple(
        limit or ("zero" if f and r <= lo + 1e-9 else "infinite" if f and r >= hi - 1e-9
                  else None)
        for limit, f, r, lo, hi in zip(drifted, free_mask, current.rho, lower, upper,
                                       strict=True))
    reference_fits = 0 if reference is None else reference.fits + reference.solves
    return Selection(target.weights(current.rho), criterion, current.value,
                     target.fits + target.solves + reference_fits, log_se, unbounded,
                     converged, current.scale, current.method, current.fit, history,
                     log_covariance, reference_fits, target.evaluations)


def _fellner_schall_steps(target: Criterion, current: Evaluation, penalty: QuadraticPenalty,
                          free_mask: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                          max_iter: int, history: list[tuple[np.ndarray, float]] | None
                          ) -> Evaluation:
    """Fellner–Schall while it moves ρ by more than a little (a few cheap, safe steps)
    (fewer where the Cholesky path's exact Hessian is at hand: Newton then converges
    quadratically from where they leave it, while they themselves creep; the spectral
    path's evaluations cost one solve each, and its weights running off were found in
    fewer of them after the full count: 12 against 17 for the million row)."""
    steps = (EXACT_FELLNER_SCHALL_STEPS
             if current.exact_hessian is not None and current.curvature.method == "exact"
             else FELLNER_SCHALL_STEPS)
    for _ in range(min(max_iter, steps)):
        step = fellner_schall(current, penalty, free_mask)
        if np.max(np.abs(step), initial=0.0) < 0.1:
            break
        trial = target(np.clip(current.rho + step, lower, upper))
        if history is not None:
            history.append((trial.rho, trial.value))
        if not trial.value < current.value:
            break
        current = trial
    return current


def _reference_applies(penalty: QuadraticPenalty, criterion: str, method: str) -> bool:
    """Can H be stochastic here, with a Kronecker reference to search on first (θ itself
    free, every factor diagonalizable, every ridge uniform)?"""
    return (criterion != "gcv" and method in ("auto", "stochastic")
            and (method == "stochastic" or penalty.free_size > EXACT_LIMIT)
            and penalty.reparametrization is None and exact_kronecker(penalty.factors)
            and penalty.uniform_ridges())


def _reference_search(reference: Criterion, inner: InnerFit, rho0: np.ndarray,
                      free_mask: np.ndarray, lower: np.ndarray, upper: np.ndarray, tol: float,
                      max_iter: int, penalty: QuadraticPenalty
                      ) -> tuple[Evaluation, np.ndarray, list[str | None]] | None:
    """The search on the reference criterion (H replaced by its Kronecker reference K̃:
    log|K̃|, its traces and its Hessian in log w exact-spectral, θ̂(w) the true fits), from
    the first fit ``inner`` at ρ₀: Fellner–Schall steps, then Newton with the exact
    Hessian, to a predicted decrease of REFERENCE_DECREMENT. It lands near the true
    optimum — log|H| − log|K̃| changes slowly with w, and the data term is the same — for
    evaluations that cost one fit each instead of many probes' solves, and its Hessian
    there (the criterion's curvature in log w differs little between the two) starts
    the stochastic search's secant updates. (the evaluation there, its Hessian, the
    weights flagged as drifting) None where K̃ is singular."""
    try:
        current = reference(rho0, inner=inner)
        current = _fellner_schall_steps(reference, current, penalty, free_mask, lower, upper,
                                        max_iter, None)
        current, _, hessian, _, drifted = _newton(
            reference, current, free_mask, lower, upper, rho0, tol, max_iter, [],
            floor=REFERENCE_DECREMENT)
    except NotPositiveDefinite:
        return None
    if current.hessian is not None:
        hessian = current.hessian
    return current, hessian, drifted


def _newton(target: Criterion, current: Evaluation, free_mask: np.ndarray, lower: np.ndarray,
            upper: np.ndarray, rho0: np.ndarray, tol: float, max_iter: int,
            history: list[tuple[np.ndarray, float]], initial: np.ndarray | None = None,
            drifted: list[str | None] | None = None, floor: float = 0.0
            ) -> tuple[Evaluation, bool, np.ndarray, np.ndarray, list[str | None]]:
    """Newton on ρ from ``current``: the exact gradient, the exact Hessian where the
    evaluation has one, else a forward-difference one. Probes are common random numbers,
    so a stochastic criterion is a smooth function of ρ and the line search is on it; the
    iteration stops when the predicted decrease is below the tolerance or below the
    estimator's own error. (the answer, converged, the last Hessian, where it was taken,
    the drift flags) ``initial``: the Hessian to start a stochastic criterion's secant
    updates from (instead of one by differences); ``drifted``: weights flagged already
    (held); ``floor``: a predicted decrease below which the search stops."""
    parts = len(current.rho)
    converged = False
    hessian = np.eye(parts)
    hessian_at = np.full(parts, np.inf)
    path = [current.rho]  # the accepted ρ, for the drift rule
    drifted = [None] * parts if drifted is None else list(drifted)
    previous: Evaluation | None = None  # the last accepted point, for a secant update
    for _ in range(max_iter):
        if current.hessian is not None:
            hessian, hessian_at = current.hessian, current.rho
        elif previous is not None and not current.method.startswith("exact"):
            # a stochastic criterion (each evaluation costs many probes' solves): the
            # differences' Hessian once, then BFGS updates from the accepted steps; the
            # standard errors still take a differences' Hessian at the answer
            hessian = _bfgs(hessian, current.rho - previous.rho,
                            np.where(free_mask, current.gradient - previous.gradient, 0.0))
            hessian_at = np.full(parts, np.inf)
        elif previous is None and initial is not None:
            hessian, hessian_at = initial, np.full(parts, np.inf)
        else:
            hessian = _hessian(target, current, free_mask, central=False)
            hessian_at = current.rho
        for a, limit in enumerate(drift(path, rho0, current, hessian)):
            if free_mask[a] and drifted[a] is None:
                drifted[a] = limit
        g = np.where(free_mask, current.gradient, 0.0)
        # a weight flagged as drifting is held where it is
        held = free_mask & np.array([limit is None for limit in drifted])
        # an active bound with the gradient pointing out: hold that weight there
        held &= ~((current.rho <= lower + 1e-12) & (g > 0))
        held &= ~((current.rho >= upper - 1e-12) & (g < 0))
        step = _newton_step(hessian, np.where(held, g, 0.0), held)
        decrement = -0.5 * float(g @ step)
        small = float(np.max(np.abs(step), initial=0.0)) <= SMALL_STEP
        if small or decrement <= max(1e-15 * max(1.0, abs(current.value)),
                                     0.05 * current.stderr, floor):
            # within a tiny Newton step of the optimum (or of the estimator's noise):
            # take it and stop
            trial = target(np.clip(current.rho + step, lower, upper))
            if trial.value <= current.value + 1e-12 * max(1.0, abs(current.value)):
                current = trial
                history.append((current.rho, current.value))
            converged = True
            break
        t = 1.0
        accepted = None
        for _ in range(30):
            trial = target(np.clip(current.rho + t * step, lower, upper))
            if trial.value <= current.value + 1e-4 * t * float(g @ step):
                accepted = trial
                break
            t *= 0.5
        if accepted is None:
            converged = True  # no decrease left to find along the Newton direction
            break
        moved = float(np.max(np.abs(accepted.rho - current.rho), initial=0.0))
        previous, current = current, accepted
        history.append((current.rho, current.value))
        path.append(current.rho)
        if moved <= tol:
            converged = True
            break
    return current, converged, hessian, hessian_at, drifted


def _bfgs(hessian: np.ndarray, step: np.ndarray, change: np.ndarray) -> np.ndarray:
    """The BFGS update of a Hessian approximation by a step in ρ and the gradient's
    change along it (kept as it is when the pair shows no positive curvature)."""
    curvature = float(change @ step)
    along = hessian @ step
    bend = float(step @ along)
    if not curvature > 1e-12 * max(1.0, float(np.linalg.norm(change) * np.linalg.norm(step))) \
            or not bend > 0:
        return hessian
    return hessian - np.outer(along, along) / bend + np.outer(change, change) / curvature


def _agree(refitted_theta: np.ndarray, solved_theta: np.ndarray, refitted: float,
           solved: float) -> bool:
    """Do the callback's fit and a quadratic loss's solve (spectral, or CG) agree: θ̂ to
    1e-6 of its scale, and a value read from each (the loss, or the criterion) to 1e-8?"""
    scale = max(1.0, float(np.max(np.abs(solved_theta), initial=0.0)))
    close = float(np.max(np.abs(refitted_theta - solved_theta), initial=0.0))
    return close <= 1e-6 * scale and abs(refitted - solved) <= 1e-8 * max(1.0, abs(solved))


def drift(path: list[np.ndarray], rho0: np.ndarray, current: Evaluation,
          hessian: np.ndarray) -> list[str | None]:
    """Per weight: "zero" or "infinite" for one the data cannot determine (the module's
    doc: a monotone run toward 0 or ∞ along which the criterion is flat), else None.
    ``path``: the accepted ρ, the last being ``current``'s; ``hessian``: ∂²V/∂ρ² there."""
    out: list[str | None] = [None] * len(rho0)
    if len(path) <= DRIFT_STEPS:
        return out
    steps = np.diff(np.array(path[-(DRIFT_STEPS + 1):]), axis=0)  # (DRIFT_STEPS, parts)
    decade = math.log(10)
    flat = max(FLAT_CHANGE, 2.0 * current.stderr)
    for a in range(len(rho0)):
        moved = float(current.rho[a] - rho0[a])
        if abs(moved) < DRIFT_DECADES * decade or not np.all(steps[:, a] * moved > 0):
            continue
        change = (abs(float(current.gradient[a])) * decade
                  + 0.5 * abs(float(hessian[a, a])) * decade ** 2)
        if change < flat:
            out[a] = "infinite" if moved > 0 else "zero"
    return out


def _newton_step(hessian: np.ndarray, gradient: np.ndarray, free: np.ndarray) -> np.ndarray:
    """−H⁻¹g on the free coordinates, H made positive definite (eigenvalues floored)."""
    step = np.zeros(len(gradient))
    idx = np.flatnonzero(free)
    if not len(idx):
        return step
    sub = hessian[np.ix_(idx, idx)]
    values, vectors = np.linalg.eigh(0.5 * (sub + sub.T))
    floor = max(1e-8 * float(np.max(np.abs(values), initial=1.0)), 1e-10)
    values = np.maximum(np.abs(values), floor)
    step[idx] = -(vectors @ ((vectors.T @ gradient[idx]) / values))
    return np.clip(step, -5.0, 5.0)


def _hessian(target: Criterion, at: Evaluation, free: np.ndarray, central: bool = True,
             h: float = 1e-4) -> np.ndarray:
    """∂²V/∂ρ² by central (or forward) differences of the exact gradient, symmetrized."""
    parts = len(at.rho)
    out = np.zeros((parts, parts))
    theta = target.theta
    for a in np.flatnonzero(free):
        shift = np.zeros(parts)
        shift[a] = h
        target.theta = theta
        up = target(at.rho + shift, near=at).gradient
        if central:
            target.theta = theta
            down = target(at.rho - shift, near=at).gradient
            out[:, a] = (up - down) / (2 * h)
        else:
            out[:, a] = (up - at.gradient) / h
    target.theta = at.fit.theta
    return 0.5 * (out + out.T)


def _standard_errors(hessian: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(SE of each log w, the covariance of log w): the inverse Hessian on the free
    weights (inf where it is not positive definite: a weight the data cannot pin down)."""
    out = np.full(len(free), np.nan)
    full = np.zeros((len(free), len(free)))
    idx = np.flatnonzero(free)
    if not len(idx):
        return out, full
    sub = hessian[np.ix_(idx, idx)]
    try:
        cov = np.linalg.inv(sub)
        diag = np.diag(cov)
        out[idx] = np.where(diag > 0, np.sqrt(np.abs(diag)), np.inf)
        if np.all(diag > 0):
            full[np.ix_(idx, idx)] = cov
    except np.linalg.LinAlgError:
        out[idx] = np.inf
    return out, full


def _flat_runs(target: Criterion, current: Evaluation, rho0: np.ndarray, free: np.ndarray,
               lower: np.ndarray, upper: np.ndarray, unbounded: list[str | None]) -> None:
    """GCV's form of :func:`drift` (it has no Hessian): a weight moved DRIFT_DECADES or
    more from its start, short of its bound, along which one more decade (to the bound at
    most) changes V by less than GCV_FLAT of it, is flagged "infinite" or "zero" in
    ``unbounded``: the data cannot determine it (one fit per such weight)."""
    decade = math.log(10)
    for a in np.flatnonzero(free):
        moved = float(current.rho[a] - rho0[a])
        if unbounded[a] is not None or abs(moved) < DRIFT_DECADES * decade:
            continue
        further = current.rho.copy()
        further[a] = float(np.clip(further[a] + math.copysign(decade, moved), lower[a], upper[a]))
        change = target(further, gradient=False).value - current.value
        if change <= GCV_FLAT * abs(current.value):
            unbounded[a] = "infinite" if moved > 0 else "zero"


class _Stalled(Exception):
    """Nelder–Mead's best GCV value unchanged over :data:`GCV_STALL` fits per vertex."""


def _derivative_free(target: Criterion, rho0: np.ndarray, free: np.ndarray,
                     lower: np.ndarray, upper: np.ndarray, tol: float, max_iter: int,
                     penalty: QuadraticPenalty) -> Selection:
    """GCV: its gradient needs ∂edf/∂ρ (second derivatives of θ̂): minimized by
    Nelder–Mead on the free ρ instead."""
    import scipy.optimize

    idx = np.flatnonzero(free)
    best: dict[str, Evaluation] = {}
    seen: dict[bytes, float] = {}  # V at each ρ fitted: a simplex stuck at a bound repeats them
    stalled = [0]  # fits since the best value last improved

    def value(x: np.ndarray) -> float:
        rho = rho0.copy()
        rho[idx] = np.clip(x, lower[idx], upper[idx])
        key = rho.tobytes()
        if key in seen:
            return seen[key]
        evaluation = target(rho, gradient=False)
        seen[key] = evaluation.value
        stalled[0] += 1
        if "e" not in best or evaluation.value < best["e"].value - 1e-12 * abs(evaluation.value):
            stalled[0] = 0
        if "e" not in best or evaluation.value < best["e"].value:
            best["e"] = evaluation
        if stalled[0] >= GCV_STALL * (len(idx) + 1):
            raise _Stalled
        return evaluation.value

    if len(idx):
        # The bounds keep the simplex inside them (clipped only in ``value``, its vertices
        # wandered past a bound where V is flat and the weight stopped short of the bound,
        # unflagged); a simplex that no longer improves V (flat along a weight run off, or
        # degenerate at a bound) is stopped rather than run to maxiter, a fit each step.
        with contextlib.suppress(_Stalled):
            scipy.optimize.minimize(value, rho0[idx], method="Nelder-Mead",
                                    bounds=list(zip(lower[idx], upper[idx], strict=True)),
                                    options={"xatol": tol, "fatol": 1e-14,
                                             "maxiter": 200 * max_iter})
    else:
        value(rho0[idx])
    current = best["e"]
    unbounded = [
        "zero" if f and r <= lo + 1e-9 else "infinite" if f and r >= hi - 1e-9 else None
        for f, r, lo, hi in zip(free, current.rho, lower, upper, strict=True)]
    _flat_runs(target, current, rho0, free, lower, upper, unbounded)
    return Selection(target.weights(current.rho), "gcv", current.value, target.fits,
                     np.full(len(free), np.nan), tuple(unbounded), True, current.scale,
                     current.method, current.fit)
