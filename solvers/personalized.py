"""Low-rank personalized regression with distance matching (Lengerich, Aragam & Xing,
2019), as arrays: θ_i = QᵀZ_i, Q ∈ R^{q×p}, Z_i ∈ R^q, covariate weights φ ≥ 0.

    L(Z, Q, φ) = Σ_i [ ℓ(x_i, y_i, θ_i) + ψ(θ_i) + γ D_i(Z, φ) ] + ν ‖φ − 1‖²
    D_i = Σ_{j ∈ B_r(i)} (ρ_φ(i, j) − ‖Z_i − Z_j‖)²,  ρ_φ(i, j) = Σ_l φ_l d_l(i, j)

The gradients here are those of this objective: both endpoints of every pair, the
1/‖Z_i − Z_j‖ factor, φ learned (projected on φ ≥ 0), no hidden ridge or clipping.
Covariate distances d_l are computed only for neighbour pairs (from a KD-tree on Z).
The loss ℓ is any separable smooth loss of the linear predictor x_iᵀθ_i: its value and
derivatives come from its :mod:`solvers.pointwise` unit, written once for every engine.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import cast

import numpy as np
from scipy.spatial import cKDTree

from .pointwise import Derivatives, Pointwise
from .progress import ProgressLine

PairDistances = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (i, j) → (pairs, L)


# the default of l1, ridge and group_mask: None, which __post_init__ replaces by zeros of
# the right size (p, from x), so that once built they are arrays
_ZEROS_OF_SIZE_P = cast(np.ndarray, None)


@dataclass
class PersonalizedProblem:
    x: np.ndarray  # (N, p)
    y: np.ndarray  # (N,): the response as the loss's unit takes it (±1 for classifiers)
    loss: Pointwise  # a separable unit: one linear predictor per sample
    distances: PairDistances
    n_metrics: int
    gamma: float
    nu: float
    l1: np.ndarray = field(default=_ZEROS_OF_SIZE_P)  # (p,) weights of |θ|
    ridge: np.ndarray = field(default=_ZEROS_OF_SIZE_P)  # (p,) weights of θ²/2
    group: float = 0.0  # weight of ‖θ_i[mask]‖₂ per sample
    group_mask: np.ndarray = field(default=_ZEROS_OF_SIZE_P)  # (p,) bool
    offset: np.ndarray | None = None  # (N,) added to each sample's linear predictor
    weight: np.ndarray | None = None  # (N,) ≥ 0, multiplies each sample's loss

    def __post_init__(self) -> None:
        if self.loss.coupled:
            raise ValueError("the personalized engine holds one linear predictor per sample; "
                             "a coupled loss needs one per output")
        p = self.x.shape[1]
        self.l1 = np.zeros(p) if self.l1 is None else self.l1
        self.ridge = np.zeros(p) if self.ridge is None else self.ridge
        self.group_mask = np.zeros(p, bool) if self.group_mask is None else self.group_mask


# ---- pieces of the objective ---------------------------------------------------------------
def _shifted(problem: PersonalizedProblem, eta: np.ndarray, rows=slice(None)) -> np.ndarray:
    return eta if problem.offset is None else eta + problem.offset[rows]


def _weighted(problem: PersonalizedProblem, values: np.ndarray, rows=slice(None)) -> np.ndarray:
    return values if problem.weight is None else values * problem.weight[rows]


def loss_derivatives(problem: PersonalizedProblem, eta: np.ndarray,
                     rows=slice(None)) -> Derivatives:
    """w_i ℓ(η_i + o_i, y_i) and its first and second derivative in η_i, for the samples
    ``rows`` (η shaped like them: (N,), or (chunk, k) for neighbour sets)."""
    value, first, second = problem.loss.derivatives(_shifted(problem, eta, rows), problem.y[rows])
    return (_weighted(problem, value, rows), _weighted(problem, first, rows),
            _weighted(problem, second, rows))


def loss_value(problem: PersonalizedProblem, eta: np.ndarray) -> float:
    """Σ w_i ℓ(η_i + o_i, y_i)."""
    return float(np.sum(loss_derivatives(problem, eta)[0]))


def loss_gradient(problem: PersonalizedProblem, eta: np.ndarray) -> np.ndarray:
    """d/dη of each sample's weighted loss."""
    return loss_derivatives(problem, eta)[1]


def penalty_value(problem: PersonalizedProblem, theta: np.ndarray) -> float:
    value = float(np.sum(np.abs(theta) @ problem.l1) + 0.5 * np.sum(theta ** 2 @ problem.ridge))
    if problem.group:
        value += problem.group * float(np.sum(np.linalg.norm(theta[:, problem.group_mask], axis=1)))
    return value


def penalty_subgradient(problem: PersonalizedProblem, theta: np.ndarray) -> np.ndarray:
    grad = np.sign(theta) * problem.l1 + theta * problem.ridge
    if problem.group:
        part = theta[:, problem.group_mask]
        norms = np.linalg.norm(part, axis=1, keepdims=True)
        grad[:, problem.group_mask] += problem.group * part / np.where(norms > 0, norms, 1.0)
    return grad


def neighbour_pairs(z: np.ndarray, radius: float,
                    max_neighbors: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unordered pairs i < j with ‖Z_i − Z_j‖ < r (each counts in D_i and in D_j).

    With ``max_neighbors``, only pairs in which j is among i's nearest ``max_neighbors``
    (or i among j's) are kept, so the number of pairs is at most N·max_neighbors even
    when many samples are close (as at the start, when every Z_i is near θ_pop's)."""
    tree = cKDTree(z)
    if max_neighbors is None or max_neighbors >= len(z) - 1:
        pairs = tree.query_pairs(radius * (1 - 1e-12), output_type="ndarray")
    else:
        dist, idx = tree.query(z, k=max_neighbors + 1, distance_upper_bound=radius * (1 - 1e-12))
        rows = np.repeat(np.arange(len(z)), max_neighbors + 1)
        keep = np.isfinite(dist.reshape(-1)) & (idx.reshape(-1) != rows)
        a, b = rows[keep], idx.reshape(-1)[keep]
        pairs = np.unique(np.column_stack([np.minimum(a, b), np.maximum(a, b)]), axis=0)
    if len(pairs) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return pairs[:, 0], pairs[:, 1]


@dataclass
class Pairs:
    i: np.ndarray
    j: np.ndarray
    d: np.ndarray  # (pairs, L) covariate distances, computed once per pair set


def pairs_for(problem: PersonalizedProblem, z: np.ndarray, radius: float,
              max_neighbors: int | None = None) -> Pairs:
    i, j = neighbour_pairs(z, radius, max_neighbors)
    d = problem.distances(i, j) if len(i) else np.zeros((0, problem.n_metrics))
    return Pairs(i, j, d)


def objective(problem: PersonalizedProblem, z: np.ndarray, q: np.ndarray, phi: np.ndarray,
              radius: float, pairs: Pairs | None = None) -> dict[str, float]:
    pairs = pairs or pairs_for(problem, z, radius)
    theta = z @ q
    eta = np.einsum("ip,ip->i", problem.x, theta)
    gaps = np.linalg.norm(z[pairs.i] - z[pairs.j], axis=1)
    matching = 2.0 * problem.gamma * float(np.sum((pairs.d @ phi - gaps) ** 2))  # both orders
    parts = {"loss": loss_value(problem, eta), "regularization": penalty_value(problem, theta),
             "matching": matching, "metric_penalty": problem.nu * float(np.sum((phi - 1) ** 2))}
    parts["total"] = sum(parts.values())
    return parts


def gradients(problem: PersonalizedProblem, z: np.ndarray, q: np.ndarray, phi: np.ndarray,
              pairs: Pairs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(∂L/∂Z, ∂L/∂Q, ∂L/∂φ) with the neighbour sets held fixed."""
    g_fit, g_match, g_q, g_phi = gradient_parts(problem, z, q, phi, pairs)
    return g_fit + g_match, g_q, g_phi


def gradient_parts(problem: PersonalizedProblem, z: np.ndarray, q: np.ndarray, phi: np.ndarray,
                   pairs: Pairs) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """∂L/∂Z split into its loss + ψ part and its distance-matching part (Algorithm 1
    applies the personalized rate to the first only), then ∂L/∂Q and ∂L/∂φ."""
    theta = z @ q
    eta = np.einsum("ip,ip->i", problem.x, theta)
    g_theta = loss_gradient(problem, eta)[:, None] * problem.x + penalty_subgradient(problem, theta)
    g_fit = g_theta @ q.T
    g_match = np.zeros_like(z)
    g_q = z.T @ g_theta
    g_phi = 2.0 * problem.nu * (phi - 1.0)
    if len(pairs.i):
        diff = z[pairs.i] - z[pairs.j]
        gaps = np.linalg.norm(diff, axis=1)
        resid = pairs.d @ phi - gaps
        # d/dZ_i of 2γ(ρ − g)² with g = ‖Z_i − Z_j‖: −4γ(ρ − g)(Z_i − Z_j)/g; opposite for Z_j
        coef = -4.0 * problem.gamma * resid / np.where(gaps > 0, gaps, 1.0)
        push = coef[:, None] * diff
        np.add.at(g_match, pairs.i, push)
        np.add.at(g_match, pairs.j, -push)
        g_phi = g_phi + 4.0 * problem.gamma * (pairs.d.T @ resid)
    return g_fit, g_match, g_q, g_phi


def smoothness(problem: PersonalizedProblem, z: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per sample, a Lipschitz constant of the Z-gradient of its loss and smooth penalty:
    ℓ''_max ‖Q x_i‖² + ‖Q diag(ridge) Qᵀ‖₂ (ℓ'' ≤ 2 for squared, ≤ 1/4 for logistic). A
    loss whose ℓ'' has no bound (exp(η)) uses e · ℓ'' where the sample stands: its bound
    over the steps :func:`predictor_limit` allows."""
    bound = problem.loss.curvature_bound
    if bound is None:
        eta = np.einsum("ip,ip->i", problem.x, z @ q)
        curvature = math.e * loss_derivatives(problem, eta)[2]
    else:
        curvature = _weighted(problem, np.full(len(problem.x), bound))
    qx = problem.x @ q.T
    ridge = float(np.linalg.eigvalsh(q @ (problem.ridge[:, None] * q.T))[-1]) if len(q) else 0.0
    return np.maximum(curvature * np.einsum("iq,iq->i", qx, qx) + ridge, 1e-12)


# a loss whose ℓ'' has no bound: no step (of Z, of Q) moves a sample's x_iᵀθ_i by more
# than this, so that ℓ'' (as exp(η)) grows at most e-fold along it
PREDICTOR_STEP = 1.0


def predictor_limit(problem: PersonalizedProblem, moved: np.ndarray) -> np.ndarray:
    """Factors (≤ 1) for steps that change the samples' θ by ``moved`` (N, p), so that no
    x_iᵀθ_i moves by more than PREDICTOR_STEP; ones for a loss with bounded ℓ''."""
    if problem.loss.curvature_bound is not None:
        return np.ones(len(moved))
    change = np.abs(np.einsum("ip,ip->i", problem.x, moved))
    return np.minimum(1.0, PREDICTOR_STEP / np.maximum(change, 1e-300))


# ---- the population model ---------------------------------------------------------------------
def population(problem: PersonalizedProblem, max_iter: int = 5000,
               tol: float = 1e-10) -> np.ndarray:
    """θ_pop = argmin Σ ℓ(x_i, y_i, θ) + ψ(θ) by FISTA with backtracking (ψ's l1 and ridge
    parts; the group part by its prox)."""
    p = problem.x.shape[1]
    theta = np.zeros(p)
    ext = theta.copy()
    momentum = 1.0
    scale = 1.0 if problem.weight is None else max(float(np.max(problem.weight)), 1e-12)
    step = 1.0 / max(2.0 * scale * float(np.linalg.norm(problem.x, 2)) ** 2, 1e-12)

    def smooth(t: np.ndarray) -> tuple[float, np.ndarray]:
        eta = problem.x @ t
        return (loss_value(problem, eta) + 0.5 * float(t ** 2 @ problem.ridge),
                problem.x.T @ loss_gradient(problem, eta) + problem.ridge * t)

    def prox(v: np.ndarray, s: float) -> np.ndarray:
        out = np.sign(v) * np.maximum(np.abs(v) - s * problem.l1, 0.0)
        if problem.group:
            part = out[problem.group_mask]
            norm = np.linalg.norm(part)
            out[problem.group_mask] = part * max(0.0, 1 - s * problem.group
                                                 / max(float(norm), 1e-300))
        return out

    for _ in range(max_iter):
        f_ext, g_ext = smooth(ext)
        while True:
            new = prox(ext - step * g_ext, step)
            delta = new - ext
            if smooth(new)[0] <= f_ext + g_ext @ delta + float(delta @ delta) / (2 * step) + 1e-12:
                break
            step /= 2.0
        next_momentum = (1 + math.sqrt(1 + 4 * momentum ** 2)) / 2
        ext = new + (momentum - 1) / next_momentum * (new - theta)
        if np.linalg.norm(new - theta) <= tol * (1 + np.linalg.norm(theta)):
            theta = new
            break
        theta, momentum = new, next_momentum
    return theta


# ---- the fit ---------------------------------------------------------------------------------
DIVERGED = 1e6  # an objective risen this many times the starting one's size: diverged


def diverged(start: float, total: float) -> bool:
    """Has the objective risen from ``start`` to ``total`` so far that the steps diverged?
    Measured by the rise against the start's size (at least 1): an objective may be
    negative (poisson_regression's), and any positive value is not a divergence then."""
    return total - start > DIVERGED * max(abs(start), 1.0)


@dataclass
class Settings:
    rank: int
    radius: float
    learning_rate: float
    decay: float
    max_iter: int
    seed: int = 0
    init_noise: float = 1e-3  # ε of θ_i ~ N(θ_pop, ε²I): only to make PCA well-posed
    max_neighbors: int | None = 30  # per sample, the nearest kept within the radius
    rebuild_every: int = 5  # epochs between KD-tree rebuilds of the neighbour pairs
    final_radius: float = 0.5  # r shrinks geometrically (with the step decay) to this fraction
    progress: bool | None = None
    fixed_q: np.ndarray | None = None  # hold Q at this value (a convex sub-problem when γ = 0)
    start_neighbors: np.ndarray | None = None  # (N, k): start θ_i from these samples' fit


@dataclass
class Fit:
    z: np.ndarray
    q: np.ndarray
    phi: np.ndarray
    theta_pop: np.ndarray
    history: list[dict]
    seconds: float
    epochs: int
    best_epoch: int

    @property
    def theta(self) -> np.ndarray:
        return self.z @ self.q


def initialize(problem: PersonalizedProblem, theta_pop: np.ndarray, settings: Settings,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Ω = θ_pop + ε noise per sample (the paper's start), or, with
    ``settings.start_neighbors``, each θ_i fitted to its neighbours' records
    (:func:`local_start`); factorized by a rank-q truncated SVD: Ω ≈ Z Q."""
    n, p = problem.x.shape
    if settings.start_neighbors is not None:
        omega = local_start(problem, theta_pop, settings.start_neighbors)
    else:
        omega = theta_pop[None, :] + settings.init_noise * rng.standard_normal((n, p))
    q = min(settings.rank, p, n)
    if min(n, p) > 4 * q + 10:
        from sklearn.utils.extmath import randomized_svd

        u, s, vt = randomized_svd(omega, q, random_state=settings.seed)
    else:
        u, s, vt = np.linalg.svd(omega, full_matrices=False)
        u, s, vt = u[:, :q], s[:q], vt[:q]
    z = u * s
    qmat = vt
    if q < settings.rank:  # more atoms than the data's dimension: pad with zero atoms
        z = np.hstack([z, np.zeros((n, settings.rank - q))])
        qmat = np.vstack([qmat, np.zeros((settings.rank - q, p))])
    return z, qmat


def local_start(problem: PersonalizedProblem, theta_pop: np.ndarray, neighbours: np.ndarray,
                shrink: float = 1e-2, newton_steps: int = 8, chunk: int = 256) -> np.ndarray:
    """θ_i = argmin_θ Σ_{j ∈ N(i)} ℓ(x_j, y_j, θ) + (shrink·k/2)‖θ − θ_pop‖² for every i,
    N(i) its k covariate neighbours: a local (kernel) regression, shrunk toward the
    population model. Newton steps (one is exact for a quadratic loss), each a batch of
    p × p systems, or k × k ones (Woodbury) when p > k; samples in chunks, so memory is
    chunk · k · p. For any other loss each sample's step is halved until its objective
    does not rise: a full step overshoots where ℓ'' jumps (huber, squared_hinge) or grows
    without bound (exp(η))."""
    n, p = problem.x.shape
    k = neighbours.shape[1]
    ridge = shrink * k
    steps = 1 if problem.loss.quadratic else newton_steps
    out = np.empty((n, p))
    for lo in range(0, n, chunk):
        idx = neighbours[lo:lo + chunk]
        x = problem.x[idx]  # (c, k, p)
        theta = np.broadcast_to(theta_pop, (len(idx), p)).copy()

        def local(theta: np.ndarray) -> Derivatives:
            return loss_derivatives(problem, (x @ theta[..., None])[..., 0], idx)  # noqa: B023

        def local_value(theta: np.ndarray, fit: np.ndarray) -> np.ndarray:
            return np.sum(fit, axis=1) + 0.5 * ridge * np.sum((theta - theta_pop) ** 2, axis=1)

        for _ in range(steps):
            fit, grad, weight = local(theta)
            g = (grad[:, None, :] @ x)[:, 0] + ridge * (theta - theta_pop)
            step = _ridge_solve(x, weight, ridge, g)
            if problem.loss.quadratic:
                theta = theta - step
                continue
            now = local_value(theta, fit)
            scale = np.ones(len(idx))
            for _halving in range(40):
                trial = theta - scale[:, None] * step
                rose = ~(local_value(trial, local(trial)[0]) <= now)  # NaN rose too
                if not rose.any():
                    break
                scale[rose] /= 2.0
            theta = theta - scale[:, None] * step
        out[lo:lo + chunk] = theta
    return out


def _ridge_solve(x: np.ndarray, weight: np.ndarray, ridge: float, g: np.ndarray) -> np.ndarray:
    """(Xᵀ W X + ridge·I)⁻¹ g per batch entry; by Woodbury through k × k systems when the
    rows are fewer than the columns (batched matrix products: BLAS)."""
    k, p = x.shape[1:]
    xt = x.transpose(0, 2, 1)
    if p <= k:
        hessian = (xt * weight[:, None, :]) @ x + ridge * np.eye(p)
        return np.linalg.solve(hessian, g[..., None])[..., 0]
    # (ridge I + Xᵀ W X)⁻¹ = (I − Xᵀ (ridge W⁻¹ + X Xᵀ)⁻¹ X) / ridge
    inner = x @ xt
    inner[:, np.arange(k), np.arange(k)] += ridge / np.maximum(weight, 1e-12)
    xg = x @ g[..., None]
    return (g - (xt @ np.linalg.solve(inner, xg))[..., 0]) / ridge


def progress_text(record: dict, previous: float, max_iter: int,
                  best: tuple[float, int] | None, patience: int) -> str:
    """The progress line's figures: the epoch against the limit; with validation, the
    early-stopping rule's (epochs since the best held-out loss against the patience); the
    objective and its relative change over the epoch."""
    epoch = record["epoch"]
    text = f"epoch {epoch}/{max_iter}"
    if best is not None:
        value, at = best
        text += (f"  validation {record['validation']:.4g} (best {value:.4g}, "
                 f"{epoch - at}/{patience} epochs without improvement)")
    change = (record["total"] - previous) / max(abs(previous), 1e-12)
    return text + f"  objective {record['total']:.4g} (change {change:+.1e})"


def fit(problem: PersonalizedProblem, settings: Settings,
        validate: Callable[[np.ndarray, np.ndarray, np.ndarray], float] | None = None,
        patience: int = 20) -> Fit:
    """Algorithm 1: population model, PCA initialization, subgradient epochs on Z, Q, φ.

    Step sizes: α_t = α₀ cᵗ. As in the paper's Algorithm 1 (line 9), the loss and ψ part
    of sample i's Z-gradient moves by the personalized rate α_t / max(‖θ_i − θ_pop‖₁,
    0.1‖θ_pop‖₁) (floored so that it is finite at the start), but never by more than
    1 / L_i, L_i the Lipschitz constant of that part's gradient (:func:`smoothness`): the
    paper's rate is largest for the samples that moved least, and above 2 / L_i it made
    them oscillate. The distance-matching part moves by α_t; Q and φ move by α_t / N (the
    objective is a sum over samples). ``validate(Z, Q, φ)`` returns a held-out loss; the
    best epoch's parameters are returned and the fit stops after ``patience`` epochs
    without improvement."""
    start = time.perf_counter()
    rng = np.random.default_rng(settings.seed)
    n = len(problem.x)
    theta_pop = population(problem)
    z, q = initialize(problem, theta_pop, settings, rng)
    if settings.fixed_q is not None:  # Z = Ω Q⁺: the initial Ω in the given atoms
        omega = z @ q
        q = np.array(settings.fixed_q, dtype=float)
        z = omega @ np.linalg.pinv(q)
    phi = np.ones(problem.n_metrics)
    start_total = objective(problem, z, q, phi, settings.radius,
                            pairs_for(problem, z, settings.radius, settings.max_neighbors))["total"]
    floor = 0.1 * float(np.sum(np.abs(theta_pop))) + 1e-8
    history: list[dict] = []
    best = (math.inf, z.copy(), q.copy(), phi.copy(), 0)
    pairs = None
    epoch = 0
    previous = start_total
    with ProgressLine("subgradient", settings.progress) as line:
        for epoch in range(1, settings.max_iter + 1):
            alpha = settings.learning_rate * settings.decay ** (epoch - 1)
            radius = settings.radius * max(settings.final_radius, settings.decay ** (epoch - 1))
            if pairs is None or epoch % settings.rebuild_every == 1:
                pairs = pairs_for(problem, z, radius, settings.max_neighbors)
            g_fit, g_match, g_q, g_phi = gradient_parts(problem, z, q, phi, pairs)
            travelled = np.sum(np.abs(z @ q - theta_pop), axis=1)
            rate = np.minimum(alpha / np.maximum(travelled, floor),
                              1.0 / smoothness(problem, z, q))
            step_z = alpha * g_match + rate[:, None] * g_fit
            z = z - predictor_limit(problem, step_z @ q)[:, None] * step_z
            if settings.fixed_q is None:
                step_q = (alpha / n) * g_q
                q = q - float(np.min(predictor_limit(problem, z @ step_q), initial=1.0)) * step_q
            phi = np.maximum(phi - (alpha / n) * g_phi, 0.0)
            if not (np.all(np.isfinite(z)) and np.all(np.isfinite(q))):
                raise FloatingPointError(f"the subgradient iterates diverged at epoch {epoch}; "
                                         "lower the learning rate")
            record = {"epoch": epoch, "alpha": alpha, "radius": radius, "pairs": len(pairs.i),
                      **objective(problem, z, q, phi, radius, pairs)}
            if diverged(start_total, record["total"]):  # numerical trouble, not
                raise FloatingPointError(  # overfitting: no earlier epoch is returned instead
                    f"the subgradient iterates diverged at epoch {epoch} (objective "
                    f"{record['total']:.3g} against {start_total:.3g} at the start); lower the "
                    "learning rate or the match weight")
            if validate is not None:
                record["validation"] = validate(z, q, phi)
                if record["validation"] < best[0]:
                    best = (record["validation"], z.copy(), q.copy(), phi.copy(), epoch)
            line.update(partial(progress_text, record, previous, settings.max_iter,
                                (best[0], best[4]) if validate is not None else None, patience))
            previous = record["total"]
            history.append(record)
            if validate is not None and epoch - best[4] >= patience:
                break
    if validate is None:
        best = (math.nan, z, q, phi, epoch)
    return Fit(best[1], best[2], best[3], theta_pop, history, time.perf_counter() - start,
               epoch, best[4])


# ---- prediction ----------------------------------------------------------------------------
def nearest_by_l1(train: np.ndarray, new: np.ndarray, k: int) -> np.ndarray:
    """Indices (M, k) of the k nearest training rows under the L1 distance (a KD-tree)."""
    _, idx = cKDTree(train).query(new, k=k, p=1)
    return idx.reshape(len(new), k)


def nearest_brute(distance_to_train: Callable[[np.ndarray], np.ndarray], n_new: int,
                  k: int, chunk: int = 512) -> np.ndarray:
    """Indices of the k smallest ρ for metrics with no tree-friendly form, chunk by chunk."""
    out = np.empty((n_new, k), dtype=np.int64)
    for start in range(0, n_new, chunk):
        rows = np.arange(start, min(n_new, start + chunk))
        rho = distance_to_train(rows)  # (len(rows), N)
        part = np.argpartition(rho, kth=min(k, rho.shape[1]) - 1, axis=1)[:, :k]
        order = np.take_along_axis(rho, part, axis=1).argsort(axis=1)
        out[rows] = np.take_along_axis(part, order, axis=1)
    return out
