"""Proximal operators, vectorized across all strata at once.

prox_{tf}(v) = argmin_θ f(θ) + ‖θ − v‖² / (2t). Arrays have one leading stratum axis;
no function here loops over strata in Python.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from .blockwise import for_blocks, scratch

# ---- regularizers (elementwise or per stratum) ------------------------------------------


def soft_threshold(v: np.ndarray, t: float) -> np.ndarray:
    return np.sign(v) * np.maximum(np.abs(v) - t, 0.0)


def keep_largest(v: np.ndarray, count: int) -> np.ndarray:
    """Projection onto {at most ``count`` nonzero entries per stratum}: each stratum's
    ``count`` largest magnitudes kept (ties to the first), the rest set to 0. Not convex:
    a projection, not unique at ties."""
    k = len(v)
    flat = v.reshape(k, -1)
    if count >= flat.shape[1]:
        return v.copy()
    out = np.zeros_like(flat)
    if count > 0:
        keep = np.argsort(-np.abs(flat), axis=1, kind="stable")[:, :count]
        rows = np.arange(k)[:, None]
        out[rows, keep] = flat[rows, keep]
    return out.reshape(v.shape)


def mcp_penalty(v: np.ndarray, a: float) -> np.ndarray:
    """ρ(t) = |t| − t²/(2a) for |t| ≤ a, a/2 beyond (the minimax concave penalty)."""
    m = np.abs(v)
    return np.where(m <= a, m - m * m / (2 * a), a / 2)


def mcp(v: np.ndarray, t: float, a: float) -> np.ndarray:
    """prox of t·ρ (ρ: :func:`mcp_penalty`): firm thresholding when t < a; when t ≥ a the
    inner piece is concave and the minimizer is 0 or v, whichever is lower."""
    m = np.abs(v)
    if t < a:
        firm = np.sign(v) * (m - t) / (1 - t / a)
        return np.where(m <= t, 0.0, np.where(m <= a, firm, v))
    return np.where(m > np.sqrt(t * a), v, 0.0)


def sum_squares(v: np.ndarray, t: float) -> np.ndarray:
    """prox of (1/2)‖θ‖²."""
    return v / (1.0 + t)


def elastic_net(v: np.ndarray, t: float, ratio: float) -> np.ndarray:
    return soft_threshold(v, t * ratio) / (1.0 + t * (1.0 - ratio))


def group_l2(v: np.ndarray, t: float) -> np.ndarray:
    """prox of ‖θ_k‖₂ for each stratum k (block soft threshold)."""
    norms = np.sqrt(np.sum(v.reshape(len(v), -1) ** 2, axis=1))
    scale = np.maximum(1.0 - t / np.maximum(norms, 1e-300), 0.0)
    return v * scale.reshape((-1,) + (1,) * (v.ndim - 1))


def nuclear(v: np.ndarray, t: float) -> np.ndarray:
    """Singular value thresholding of every stratum's matrix, batched."""
    u, s, vt = np.linalg.svd(v, full_matrices=False)
    return np.einsum("kij,kj,kjl->kil", u, np.maximum(s - t, 0.0), vt)


# ---- distributions: closed forms from per-stratum counts n and sums s ---------------------


class PositiveRootProx:
    """v ↦ max(eps, (b + √(b² + 4t·constant)) / 2) with b = v − t·linear: the positive
    root of θ² − bθ − t·constant = 0, the prox of the rate losses (:func:`poisson_prox`,
    :func:`exponential_prox`). Computed in place in v (ADMM hands it a work array), block
    by block on every core (solvers.blockwise), with −t·linear and 4t·constant kept while
    t stays (ADMM changes it rarely): at millions of strata, fresh temporaries and one
    pass over memory per operation cost more than the arithmetic. Same floats as the
    plain formula."""

    def __init__(self, linear: np.ndarray, constant: np.ndarray, eps: float):
        self.linear, self.constant, self.eps = linear, constant, eps
        self._t: float | None = None
        self._shift = self._four = np.empty(0)

    def plain(self, v: np.ndarray, t: float) -> np.ndarray:
        """The formula as written, into a new array (any shapes that broadcast)."""
        b = v - t * self.linear
        return np.maximum(0.5 * (b + np.sqrt(b * b + 4.0 * t * self.constant)), self.eps)

    def __call__(self, v: np.ndarray, t: float) -> np.ndarray:
        kernel = self.block_kernel(t, v.shape)
        if kernel is None or v.dtype != np.float64 or not v.flags.c_contiguous \
                or not v.flags.writeable:
            return self.plain(v, t)
        x = v.reshape(-1)
        for_blocks(x.size, lambda s: kernel(x[s], s))
        return v

    def block_kernel(self, t: float, shape: tuple[int, ...]
                     ) -> Callable[[np.ndarray, slice], None] | None:
        """The prox on the block ``s`` of the flattened iterate, in place in ``b`` (θ's
        entries there); None unless θ has the shape of the per-stratum data."""
        if shape != np.shape(self.linear):
            return None
        if t != self._t:  # (into the arrays of the last t: fresh memory is slow to map)
            if self._shift.shape != (self.linear.size,):
                self._shift, self._four = np.empty(self.linear.size), np.empty(self.linear.size)
            np.multiply(self.linear.reshape(-1), -t, out=self._shift)
            np.multiply(self.constant.reshape(-1), 4.0 * t, out=self._four)
            self._t = t
        shift, four, eps = self._shift, self._four, self.eps

        def kernel(b: np.ndarray, s: slice) -> None:
            b += shift[s]
            root = np.multiply(b, b, out=scratch("root", s.stop - s.start))
            root += four[s]
            np.sqrt(root, out=root)
            b += root
            b *= 0.5
            np.maximum(b, eps, out=b)

        return kernel


def poisson_prox(count: np.ndarray, total: np.ndarray, eps: float) -> PositiveRootProx:
    """argmin nθ − s log θ + (θ − v)²/(2t) over θ ≥ eps: a quadratic's positive root."""
    return PositiveRootProx(count, total, eps)


def exponential_prox(count: np.ndarray, total: np.ndarray, eps: float) -> PositiveRootProx:
    """argmin −n log θ + sθ + (θ − v)²/(2t) over θ ≥ eps."""
    return PositiveRootProx(total, count, eps)


def bernoulli_prox(count: np.ndarray, total: np.ndarray,
                   eps: float) -> Callable[[np.ndarray, float], np.ndarray]:
    """:func:`bernoulli` for these per-stratum counts and sums."""
    return lambda v, t: bernoulli(v, t, count, total, eps)


def bernoulli(v: np.ndarray, t: float, count: np.ndarray, total: np.ndarray, eps: float,
              iterations: int = 60) -> np.ndarray:
    """argmin −s log θ − (n − s) log(1 − θ) + (θ − v)²/(2t) over [eps, 1 − eps].

    The derivative is increasing on (0, 1): safeguarded Newton inside a shrinking bracket,
    then projection onto [eps, 1 − eps] (exact for a 1-D convex problem)."""
    s, f = total, count - total
    lo, hi = np.zeros_like(v), np.ones_like(v)
    theta: np.ndarray | float = (np.clip(v, 0.05, 0.95) if np.ndim(v)
                                 else min(max(float(v), 0.05), 0.95))  # v: a scalar
    theta = np.clip(np.where(count > 0, (s + 0.5) / (count + 1.0), theta), 1e-12, 1 - 1e-12)
    for _ in range(iterations):
        grad = -s / theta + f / (1.0 - theta) + (theta - v) / t
        lo = np.where(grad < 0, theta, lo)
        hi = np.where(grad > 0, theta, hi)
        hess = s / theta ** 2 + f / (1.0 - theta) ** 2 + 1.0 / t
        step = theta - grad / hess
        inside = (step > lo) & (step < hi)
        new = np.where(inside, step, 0.5 * (lo + hi))
        if np.max(np.abs(new - theta)) < 1e-15:
            theta = new
            break
        theta = new
    return np.clip(theta, eps, 1.0 - eps)


# ---- losses with features ---------------------------------------------------------------


def stratum_indicator(z: np.ndarray, k: int) -> sp.csr_matrix:
    """K × N sparse matrix summing records into their strata."""
    return sp.csr_matrix((np.ones(len(z)), (z, np.arange(len(z)))), shape=(k, len(z)))


class QuadraticProx:
    """prox of Σ_i w_i ‖x_iᵀθ − y_i‖² per stratum: (2XᵀWX + I/t)θ = 2XᵀWy + v/t.

    The batched inverses are computed once per value of t and reused while the ADMM
    penalty is unchanged. ``weight``: w_i ≥ 0 (default 1)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, k: int,
                 weight: np.ndarray | None = None):
        indicator = stratum_indicator(z, k)
        n = x.shape[1]
        m = y.shape[1]
        wx = x if weight is None else x * weight[:, None]
        self.gram = np.asarray(indicator @ (wx[:, :, None] * x[:, None, :]).reshape(len(x), n * n)
                               ).reshape(k, n, n)
        self.xty = np.asarray(indicator @ (wx[:, :, None] * y[:, None, :]).reshape(len(x), n * m)
                              ).reshape(k, n, m)
        self._t: float | None = None
        self._inverse: np.ndarray | None = None

    def __call__(self, v: np.ndarray, t: float) -> np.ndarray:
        if self._t != t:
            n = self.gram.shape[1]
            self._inverse = np.linalg.inv(2.0 * self.gram + np.eye(n) / t)
            self._t = t
        assert self._inverse is not None  # computed with self._t, on the first call
        return np.einsum("kij,kjm->kim", self._inverse, 2.0 * self.xty + v / t)


class GroupedProx:
    """A prox separable over disjoint groups of strata, each group its own prox on its
    strata (``parts``: (stratum indices, prox over those strata in that order)), e.g. a
    loss whose parameters differ between groups."""

    def __init__(self, parts: list[tuple[np.ndarray, Callable[[np.ndarray, float], np.ndarray]]]):
        self.parts = parts

    def __call__(self, v: np.ndarray, t: float) -> np.ndarray:
        out = np.empty_like(v)
        for strata, prox in self.parts:
            out[strata] = prox(v[strata], t)
        return out

    @property
    def inexact(self) -> bool:
        return any(hasattr(prox, "tol") for _, prox in self.parts)

    @property
    def tol(self) -> float:
        return min(getattr(prox, "tol", np.inf) for _, prox in self.parts)

    @tol.setter
    def tol(self, value: float) -> None:
        for _, prox in self.parts:
            if hasattr(prox, "tol"):
                prox.tol = value


class TukeyProx:
    """prox of Σ_i w_i ρ_c(x_iᵀθ − y_i) per stratum, ρ_c Tukey's biweight (y already less
    any offset). Not convex: a local minimizer by majorization–minimization — ρ_c is
    concave in r², so it lies below the quadratic ω r² + const touching it at the current
    residual, ω = (1 − (r/c)²)₊²; each step is a weighted least-squares prox and lowers the
    objective. ``steps`` steps per call, warm-started at the last call's result (ADMM calls
    it with slowly changing arguments). The records' products x xᵀ and x y are formed
    once; a step only reweights and sums them per stratum."""

    def __init__(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, k: int, c: float,
                 weight: np.ndarray | None = None, steps: int = 3):
        n_rec, n = x.shape
        self.x, self.y, self.z, self.c, self.steps = x, y, z, c, steps
        self.weight = np.ones(n_rec) if weight is None else weight
        self.indicator = stratum_indicator(z, k)
        self.xx = (x[:, :, None] * x[:, None, :]).reshape(n_rec, n * n)
        self.xy = x * y[:, :1]
        self.shape = (k, n)
        self.theta: np.ndarray | None = None

    def __call__(self, v: np.ndarray, t: float) -> np.ndarray:
        k, n = self.shape
        theta = v if self.theta is None else self.theta
        for _ in range(self.steps):
            rows = np.take(theta, self.z, axis=0)  # (3-4× the fancy index θ[z])
            residual = np.einsum("ij,ijm->im", self.x, rows)[:, 0] - self.y[:, 0]
            w = self.weight * np.clip(1.0 - (residual / self.c) ** 2, 0.0, None) ** 2
            gram = np.asarray(self.indicator @ (w[:, None] * self.xx)).reshape(k, n, n)
            xty = np.asarray(self.indicator @ (w[:, None] * self.xy)).reshape(k, n, 1)
            theta = np.linalg.solve(2.0 * gram + np.eye(n) / t, 2.0 * xty + v / t)
        self.theta = theta
        return theta


def tukey_loss(r: np.ndarray, c: float) -> np.ndarray:
    """Tukey's biweight scaled to r² near 0: ρ_c(r) = c²/3 (1 − (1 − (r/c)²)³) for |r| ≤ c,
    c²/3 beyond."""
    inside = np.clip(1.0 - (r / c) ** 2, 0.0, None)
    return c * c / 3.0 * (1.0 - inside ** 3)


# (value, first derivative, second derivative) of a loss of the linear predictor η: a
# solvers.pointwise unit (each smooth loss's formulas are written there, once)
Pointwise = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


class NewtonProx:
    """prox of Σ_i w_i f(x_iᵀθ + o_i, y_i) per stratum for a smooth convex f, by Newton's
    method with a backtracking line search run on all strata at once, warm-started at the
    previous solution (so a few steps suffice inside ADMM). ``offset`` o_i (added to every
    output) and ``weight`` w_i ≥ 0 default to 0 and 1.

    With one output, f maps η (N,) to (value, f', f''), each (N,). With m outputs (θ_k is
    n × m), f maps η (N, m) to (value (N,), gradient (N, m), Hessian (N, m, m)), and each
    stratum's Newton system is n·m × n·m."""

    def __init__(self, f: Pointwise, x: np.ndarray, y: np.ndarray, z: np.ndarray, k: int,
                 tol: float = 1e-10, max_newton: int = 50, outputs: int = 1,
                 offset: np.ndarray | None = None, weight: np.ndarray | None = None):
        self.f, self.x, self.z, self.k, self.m = f, x, z, k, outputs
        self.offset = None if offset is None else (offset if outputs == 1 else offset[:, None])
        self.weight = weight
        self.y = y[:, 0] if outputs == 1 else y
        self.indicator = stratum_indicator(z, k)
        self._weighted = self.indicator.copy()  # same pattern, per-record weights as data
        n = x.shape[1]
        self.n = n
        self.outer = ((x[:, :, None] * x[:, None, :]).reshape(len(x), n * n)
                      if outputs > 1 else None)
        # the Hessian is symmetric: for one output, accumulate its upper triangle only
        self._upper = np.triu_indices(n)
        self._outer_upper = x[:, self._upper[0]] * x[:, self._upper[1]]
        self.tol, self.max_newton = tol, max_newton
        self.theta = np.zeros((k, n * outputs))
        self.newton_steps = 0

    def _sum(self, weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Σ_{i in stratum k} weights_i · rows_i for every k, with no N-row temporary."""
        self._weighted.data = weights[self._weighted.indices]
        return self._weighted @ rows

    def _eta(self, theta: np.ndarray) -> np.ndarray:
        rows = np.take(theta, self.z, axis=0)  # each record's θ: 3-4× the fancy index θ[z]
        if self.m == 1:
            eta = np.einsum("in,in->i", self.x, rows)
        else:
            eta = np.einsum("in,inm->im", self.x, rows.reshape(-1, self.n, self.m))
        return eta if self.offset is None else eta + self.offset

    def _gradient(self, d1: np.ndarray) -> np.ndarray:
        if self.m == 1:
            return self._sum(d1, self.x)
        return self.indicator @ (self.x[:, :, None] * d1[:, None, :]).reshape(len(self.x), self.n * self.m)

    def _hessian(self, d2: np.ndarray) -> np.ndarray:
        size = self.n * self.m
        if self.m == 1:
            half = self._sum(d2, self._outer_upper)
            full = np.empty((self.k, size, size))
            full[:, self._upper[0], self._upper[1]] = half
            full[:, self._upper[1], self._upper[0]] = half
            return full
        n, m = self.n, self.m
        assert self.outer is not None  # built when there are several outputs
        blocks = self.outer.reshape(-1, n, 1, n, 1) * d2.reshape(-1, 1, m, 1, m)
        return np.asarray(self.indicator @ blocks.reshape(len(self.x), size * size)
                          ).reshape(self.k, size, size)

    def _evaluate(self, theta: np.ndarray, v: np.ndarray, t: float):
        """(prox objective per stratum, and f's value/derivatives per record)."""
        parts = self.f(self._eta(theta), self.y)
        if self.weight is not None:
            w = self.weight
            parts = (parts[0] * w, parts[1] * (w if self.m == 1 else w[:, None]),
                     parts[2] * (w if self.m == 1 else w[:, None, None]))
        return self.indicator @ parts[0] + np.sum((theta - v) ** 2, axis=1) / (2.0 * t), parts

    def __call__(self, v: np.ndarray, t: float) -> np.ndarray:
        v2 = v.reshape(self.k, -1)
        theta = self.theta
        k, size = theta.shape
        obj, (_, d1, d2) = self._evaluate(theta, v2, t)
        for _ in range(self.max_newton):
            grad = self._gradient(d1) + (theta - v2) / t
            if np.max(np.abs(grad)) * t <= self.tol * (1.0 + np.max(np.abs(theta))):
                break
            hess = self._hessian(d2) + np.eye(size) / t
            step = -np.linalg.solve(hess, grad[:, :, None])[:, :, 0]
            slope = np.sum(grad * step, axis=1)
            scale = np.ones(k)
            for _ in range(40):  # backtrack only the strata that need it
                trial = theta + scale[:, None] * step
                new, (_, d1, d2) = self._evaluate(trial, v2, t)
                bad = new > obj + 0.25 * scale * slope + 1e-14 * np.abs(obj)
                if not bad.any():
                    break
                scale = np.where(bad, scale / 2.0, scale)
            theta, obj = trial, new  # d1, d2 at the accepted point are reused
            self.newton_steps += 1
        self.theta = theta
        return theta.reshape(k, self.n, self.m)


def pseudo_inverse(gram: np.ndarray, rcond: float = 1e-12) -> np.ndarray:
    """Batched Moore–Penrose inverse of symmetric positive semi-definite matrices (as
    ``np.linalg.pinv(gram, rcond, hermitian=True)``, without its sorting and copies)."""
    lam, vec = np.linalg.eigh(gram)
    cutoff = rcond * np.max(np.abs(lam), axis=-1, keepdims=True)
    inverse_lam = np.divide(1.0, lam, out=np.zeros_like(lam), where=np.abs(lam) > cutoff)
    return (vec * inverse_lam[..., None, :]) @ np.swapaxes(vec, -1, -2)


class PiecewiseLinearProx:
    """prox of Σ_t max_{u ∈ [lo_t, hi_t]} u·(⟨A_t, θ⟩ − b_t) per stratum, A_t = x_{i(t)} c_tᵀ:
    absolute, quantile, hinge and multi-class hinge losses are sums of such terms.

    Exact. Per stratum the dual is a small box-constrained QP in the terms' u, with
    θ = v − t Σ_t u_t A_t. The terms inside their box are those with r_t = ⟨A_t, θ⟩ − b_t = 0
    at the optimum, so once the inside set is known θ is a projection (:meth:`_polish`),
    accepted per stratum when every dual lies in its box and every outside term keeps its
    sign (the KKT conditions, to rounding). The sets come from, in turn: the last call's
    (inside ADMM they rarely change), a few primal-dual active-set steps, dual coordinate
    ascent (exact one-term maximizations, all strata at once: the j-th term of every
    stratum in one vectorized step), each round on the strata still open; and, should those
    fail, Newton's method on a smoothed problem (each term max_u u·r − δu²/2) with δ
    shrinking. No Python loop over strata or over records."""

    # dual coordinate sweeps per round, each round on the strata its predecessor left open
    SWEEPS = (4, 8, 16, 32, 64, 128)
    # rounds of two active-set steps in a row, while each settles a quarter of its strata
    ACTIVE_ROUNDS = 4
    # A sweep costs one vectorized step per term rank (the deepest stratum's term count),
    # however few strata it runs on, and on strata with many more terms than coefficients
    # (coupled duals) it converges slowly: a round that would take more steps than this
    # goes to the smoothed Newton instead, whose few dozen evaluations cost the same at any
    # depth. (Without it, a straggler stratum of ~50 terms ran all 252 sweeps, 12,600
    # steps, in many ADMM iterations: quantile(0.9) at K = 120, N = 5,000 took 4× longer.)
    SWEEP_BUDGET = 512

    def __init__(self, direction: np.ndarray, stratum: np.ndarray, offset: np.ndarray,
                 lo: np.ndarray, hi: np.ndarray, k: int, n: int, outputs: int,
                 tol: float = 1e-10, max_newton: int = 100):
        """Terms sorted by stratum, each with a nonzero direction vec(A_t) of length n·m."""
        self.k, self.n, self.m, self.size = k, n, outputs, n * outputs
        self.direction, self.stratum = direction, stratum
        self.offset, self.lo, self.hi = offset, lo, hi
        self.indicator = stratum_indicator(stratum, k)
        self.norm2 = np.sum(direction ** 2, axis=1)
        self.theta = np.zeros((k, self.size))
        self.tol, self.max_newton = tol, max_newton
        self.newton_steps = 0  # smoothed Newton steps (the last resort) …
        self.fallback_strata = 0  # … and the strata they were taken on, over all calls
        self.sweeps = 0  # dual coordinate sweeps, counted on the strata they ran on …
        self.sweep_steps = 0  # … and the vectorized steps they took (a sweep: one a rank)
        self.unpolished = 0  # strata returned with the smoothed solution (none, normally)
        self._sets: tuple[np.ndarray, np.ndarray] | None = None
        # the inside set of the last polish, and its (basis, target, pseudo-inverse)
        self._projector: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._last_duals = np.clip(np.zeros(len(stratum)), lo, hi)  # the last call's u
        # the j-th term of every stratum, for j = 0, 1, …: one vectorized coordinate step
        rank = np.arange(len(stratum)) - np.searchsorted(stratum, stratum)
        self._by_rank = np.argsort(rank, kind="stable")
        self._rank_starts = np.concatenate([[0], np.cumsum(np.bincount(rank))]).astype(int)

    @classmethod
    def from_records(cls, x: np.ndarray, z: np.ndarray, k: int, outputs: int,
                     record: np.ndarray, coef: np.ndarray, offset: np.ndarray, lo: np.ndarray,
                     hi: np.ndarray) -> PiecewiseLinearProx:
        """Term t acts on record ``record[t]`` through output weights ``coef[t]``."""
        n = x.shape[1]
        direction = (x[record][:, :, None] * coef[:, None, :]).reshape(len(record), n * outputs)
        # terms with no direction are constants; with lo = hi (a zero weight), zero
        keep = np.flatnonzero(np.any(direction != 0, axis=1) & (hi > lo))
        keep = keep[np.argsort(z[record[keep]], kind="stable")]
        return cls(direction[keep], z[record[keep]], offset[keep], lo[keep], hi[keep], k, n,
                   outputs)

    def __call__(self, v: np.ndarray, t: float) -> np.ndarray:
        v2 = v.reshape(self.k, -1)
        result = v2.copy()
        duals = self._last_duals.copy()
        pending = np.ones(self.k, dtype=bool)
        sets = self._sets
        if sets is not None:
            # inside ADMM the sets rarely change between calls: one step from the last ones
            sets = self._active_set(v2, t, *sets, pending, result, duals, steps=1)
        if pending.any():
            which = np.flatnonzero(pending)
            terms = self._terms_of(which)
            sub = self if len(which) == self.k else self._subset(which, terms)
            start = None if sets is None else (sets[0][terms], sets[1][terms])
            result[which], duals[terms] = sub._solve(v2[which], t, duals[terms], start)
            if sub is not self:
                self._count(sub)
        self.theta = result.copy()  # the smoothed Newton's warm start
        self._last_duals = duals
        self._sets = self._sets_at(result)
        return result.reshape(self.k, self.n, self.m)

    def _solve(self, v: np.ndarray, t: float, duals: np.ndarray,
               sets: tuple[np.ndarray, np.ndarray] | None, sweep_round: int = 0,
               active_round: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(θ, u) for every stratum of this prox: without ``sets``, dual coordinate sweeps
        from ``duals`` first, and the sets they suggest (the terms strictly inside their
        box); then active-set steps. The strata left open go on, on a subset: with more
        active-set steps while those make progress, else with more sweeps (each round
        twice the last's), and after the last round, or once a round would take more than
        SWEEP_BUDGET vectorized steps, by the smoothed Newton."""
        result, duals = v.copy(), duals.copy()
        pending = np.ones(self.k, dtype=bool)
        if sets is None:
            u = np.clip(duals, self.lo, self.hi)
            theta = v - t * (self.indicator @ (u[:, None] * self.direction))
            self._sweep(theta, u, t, self.SWEEPS[sweep_round])
            sets, duals = (u.copy(), (u > self.lo) & (u < self.hi)), u
            sweep_round, active_round = sweep_round + 1, 0
        u_set, inside = self._active_set(v, t, *sets, pending, result, duals, steps=2)
        if not pending.any():
            return result, duals
        which = np.flatnonzero(pending)
        terms = self._terms_of(which)
        sub = self._subset(which, terms)
        if 4 * len(which) <= 3 * self.k and active_round < self.ACTIVE_ROUNDS:  # progress
            result[which], duals[terms] = sub._solve(v[which], t, duals[terms],
                                                     (u_set[terms], inside[terms]),
                                                     sweep_round, active_round + 1)
        elif (sweep_round < len(self.SWEEPS)
              and self.SWEEPS[sweep_round] * sub.depth <= self.SWEEP_BUDGET):
            result[which], duals[terms] = sub._solve(v[which], t, duals[terms], None,
                                                     sweep_round)
        else:  # the last resort
            result[which], duals[terms] = sub._smoothed_then_polish(v[which], t)
            self.fallback_strata += len(which)
        self._count(sub)
        return result, duals

    def _count(self, sub: PiecewiseLinearProx) -> None:
        """Add a subset's statistics to this prox's."""
        self.newton_steps += sub.newton_steps
        self.fallback_strata += sub.fallback_strata
        self.sweeps += sub.sweeps
        self.sweep_steps += sub.sweep_steps
        self.unpolished += sub.unpolished

    def _sweep(self, theta: np.ndarray, u: np.ndarray, t: float, count: int) -> None:
        """``count`` sweeps of dual coordinate ascent, in place: each term's u maximizes the
        dual with the others fixed, u_t ← clip(u_t + r_t / (t‖A_t‖²)), and θ follows. The
        j-th terms of all strata are independent (one per stratum) and move together."""
        for _ in range(count):
            for j in range(self.depth):
                terms = self._by_rank[self._rank_starts[j]:self._rank_starts[j + 1]]
                strata = self.stratum[terms]
                direction = self.direction[terms]
                r = np.einsum("td,td->t", direction, theta[strata]) - self.offset[terms]
                old = u[terms]
                new = np.clip(old + r / (t * self.norm2[terms]), self.lo[terms], self.hi[terms])
                theta[strata] -= (t * (new - old))[:, None] * direction
                u[terms] = new
        self.sweeps += count * self.k
        self.sweep_steps += count * self.depth

    def _residuals(self, theta: np.ndarray) -> np.ndarray:
        """r_t = ⟨A_t, θ⟩ − b_t for every term (θ's rows gathered by np.take, the hot path:
        3-4× faster than the fancy index θ[stratum])."""
        rows = np.take(theta, self.stratum, axis=0)
        return np.einsum("td,td->t", self.direction, rows) - self.offset

    @property
    def depth(self) -> int:
        """The most terms of one stratum: the vectorized steps of one sweep."""
        return len(self._rank_starts) - 1

    def _terms_of(self, strata: np.ndarray) -> np.ndarray:
        """The terms of some strata (sorted indices), in order."""
        mask = np.zeros(self.k, dtype=bool)
        mask[strata] = True
        return np.flatnonzero(mask[self.stratum])

    def _duals(self, theta: np.ndarray, delta: np.ndarray):
        """Residuals r, smoothed duals u = clip(r/δ) and the inside mask, per term."""
        r = self._residuals(theta)
        scaled = r / delta[self.stratum]
        u = np.clip(scaled, self.lo, self.hi)
        return r, u, (scaled > self.lo) & (scaled < self.hi)

    def _smoothed(self, theta, v, t, delta):
        r, u, inside = self._duals(theta, delta)
        value = u * r - 0.5 * delta[self.stratum] * u * u
        obj = self.indicator @ value + np.sum((theta - v) ** 2, axis=1) / (2.0 * t)
        return obj, u, inside

    def _newton(self, theta, v, t, delta):
        obj, u, inside = self._smoothed(theta, v, t, delta)
        eye = np.eye(self.size) / t
        for _ in range(self.max_newton):
            grad = self.indicator @ (u[:, None] * self.direction) + (theta - v) / t
            if np.max(np.abs(grad)) * t <= self.tol * (1.0 + np.max(np.abs(theta))):
                break
            rows = np.flatnonzero(inside)
            outer = (self.direction[rows, :, None] * self.direction[rows, None, :]
                     / delta[self.stratum[rows], None, None]).reshape(len(rows), self.size ** 2)
            hess = eye + np.asarray(stratum_indicator(self.stratum[rows], self.k) @ outer
                                    ).reshape(self.k, self.size, self.size)
            step = -np.linalg.solve(hess, grad[:, :, None])[:, :, 0]
            slope = np.sum(grad * step, axis=1)
            scale = np.ones(self.k)
            for _ in range(40):
                trial = theta + scale[:, None] * step
                new, u, inside = self._smoothed(trial, v, t, delta)
                bad = new > obj + 0.25 * scale * slope + 1e-14 * np.abs(obj)
                if not bad.any():
                    break
                scale = np.where(bad, scale / 2.0, scale)
            theta, obj = trial, new
            self.newton_steps += 1
        return theta, u, inside

    def _polish(self, v, t, u, inside):
        """(θ, u, wrong) with θ the exact prox for strata whose inside set is right;
        ``wrong`` marks the terms that violate the KKT conditions."""
        fixed = np.where(inside, 0.0, u)
        w = v - t * (self.indicator @ (fixed[:, None] * self.direction))
        theta, u = w, u.copy()
        projection = self._projection(inside)
        if projection is not None:
            basis, target, inverse, rows, strata, rank = projection
            rhs = np.einsum("kjd,kd->kj", basis, w) - target
            y = np.einsum("kij,kj->ki", inverse, rhs)
            theta = w - np.einsum("kjd,kj->kd", basis, y)
            u[rows] = y[strata, rank] / t
        r = self._residuals(theta)
        slack = 1e-9 * (1.0 + np.abs(self.offset) + np.sqrt(self.norm2) * np.max(np.abs(theta)))
        box = 1e-9 * (1.0 + np.abs(self.lo) + np.abs(self.hi))
        wrong = np.where(inside,
                         (u < self.lo - box) | (u > self.hi + box) | (np.abs(r) > slack),
                         ((u >= self.hi) & (r < -slack)) | ((u <= self.lo) & (r > slack)))
        return theta, u, wrong

    def _projection(self, inside: np.ndarray):
        """(basis, target, inverse, rows, strata, rank) for an inside set, or None when it is
        empty: basis[k, j] is the direction of the j-th inside term of stratum k (zero
        padding), target[k, j] its offset, inverse[k] the pseudo-inverse of stratum k's Gram
        matrix (padding: identity); rows the inside terms, each in (strata, rank). Depends
        on the set alone (not on v or t), so a stratum whose set is the one of the last call
        (most, inside ADMM) keeps its pseudo-inverse: only the changed ones are factored."""
        rows = np.flatnonzero(inside)
        strata = self.stratum[rows]
        counts = np.bincount(strata, minlength=self.k)
        width = int(counts.max(initial=0))
        if not width:
            return None
        rank = np.arange(len(rows)) - np.searchsorted(strata, strata)  # terms are stratum-sorted
        cache = self._projector
        if cache is None or cache[3].shape[1] < width:
            basis = np.zeros((self.k, width, self.size))
            target = np.zeros((self.k, width))
            inverse = np.zeros((self.k, width, width))
            changed = np.ones(self.k, dtype=bool)
        else:
            old_inside, basis, target, inverse = cache
            width = inverse.shape[1]
            changed = np.bincount(self.stratum[inside != old_inside], minlength=self.k) > 0
        which = np.flatnonzero(changed)
        if len(which):
            basis[which], target[which] = 0.0, 0.0
            mine = changed[strata]
            basis[strata[mine], rank[mine]] = self.direction[rows[mine]]
            target[strata[mine], rank[mine]] = self.offset[rows[mine]]
            part = basis[which]
            gram = part @ np.transpose(part, (0, 2, 1))
            gram[:, np.arange(width), np.arange(width)] += (np.arange(width)[None, :]
                                                            >= counts[which, None])
            inverse[which] = pseudo_inverse(gram)
        self._projector = (inside.copy(), basis, target, inverse)
        return basis, target, inverse, rows, strata, rank

    def _accepted(self, wrong: np.ndarray) -> np.ndarray:
        return np.bincount(self.stratum[wrong], minlength=self.k) == 0

    def _active_set(self, v, t, u, inside, pending, result, duals, steps: int
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Primal-dual active-set steps from (u, inside): polish, move the terms that break
        the KKT conditions, repeat. Fills ``result`` and ``duals`` and clears ``pending``
        for the strata that come out exact; returns the sets after the last step."""
        for _ in range(steps):
            polished, u_new, wrong = self._polish(v, t, u, inside)
            done = pending & self._accepted(wrong)
            result[done] = polished[done]
            exact = done[self.stratum]
            duals[exact] = u_new[exact]
            pending &= ~done
            if not pending.any():
                break
            r = self._residuals(polished)
            leave, enter = inside & wrong, ~inside & wrong
            u = np.where(leave, np.clip(u_new, self.lo, self.hi), u)
            inside = (inside & ~leave) | enter
            u = np.where(~inside & (r > 0), self.hi, np.where(~inside & (r < 0), self.lo, u))
        return u, inside

    def _subset(self, strata: np.ndarray, terms: np.ndarray) -> PiecewiseLinearProx:
        """The same prox restricted to some strata (sorted indices) and their terms."""
        sub = PiecewiseLinearProx(self.direction[terms], np.searchsorted(strata, self.stratum[terms]),
                                  self.offset[terms], self.lo[terms], self.hi[terms], len(strata),
                                  self.n, self.m, self.tol, self.max_newton)
        sub.theta = self.theta[strata]
        if self._projector is not None:  # (so its polish factors only what changes)
            inside, basis, target, inverse = self._projector
            sub._projector = (inside[terms], basis[strata], target[strata], inverse[strata])
        return sub

    def _smoothed_then_polish(self, v: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(θ, u) by Newton on the smoothed problem, then the polish; δ shrinks for the
        strata whose polish is not accepted."""
        result = v.copy()
        duals = np.clip(np.zeros(len(self.stratum)), self.lo, self.hi)
        pending = np.ones(self.k, dtype=bool)
        scale = 1e-3 * t * (float(np.mean(self.norm2)) if len(self.norm2) else 1.0)
        delta = np.full(self.k, scale)
        theta = self.theta
        u = duals
        for _ in range(6):
            theta, u, inside = self._newton(theta, v, t, delta)
            self._active_set(v, t, u, inside, pending, result, duals, steps=4)
            if not pending.any():
                break
            delta = np.where(pending, delta * 1e-3, delta)
        result[pending] = theta[pending]
        open_terms = pending[self.stratum]
        duals[open_terms] = u[open_terms]
        self.unpolished += int(pending.sum())
        self.theta = theta
        return result, duals

    def _sets_at(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The dual u and inside set of the exact prox θ: terms with r = 0 are inside."""
        r = self._residuals(theta)
        tiny = 1e-9 * (1.0 + np.abs(self.offset) + np.sqrt(self.norm2) * np.max(np.abs(theta)))
        inside = np.abs(r) <= tiny
        u = np.where(r > 0, self.hi, self.lo)
        return u, inside


class PerOutputProx:
    """A loss that is a sum over output columns, each with its own scalar prox."""

    def __init__(self, proxes: list):
        self.proxes = proxes

    @property
    def tol(self) -> float:
        return self.proxes[0].tol

    @tol.setter
    def tol(self, value: float) -> None:
        for prox in self.proxes:
            prox.tol = value

    def __call__(self, v: np.ndarray, t: float) -> np.ndarray:
        return np.concatenate([prox(v[:, :, j:j + 1], t) for j, prox in enumerate(self.proxes)],
                              axis=2)


def _spectral_prox(matrix: np.ndarray, t: float, count: np.ndarray):
    """argmin −n log det T + ‖T − tM‖²/(2t) = Q diag(F(λ)) Qᵀ for M = QΛQᵀ, with
    F(λ) = (λt + √(λ²t² + 4nt)) / 2: eigenvalues, eigenvectors and F(λ), batched."""
    lam, vec = np.linalg.eigh(matrix)
    root = np.sqrt((lam * t) ** 2 + 4.0 * count[:, None] * t)
    return lam, vec, 0.5 * (lam * t + root), 0.5 * (t + lam * t * t / np.maximum(root, 1e-300))


class GaussianProx:
    """prox of Σ_k −n log det S + tr(C S) − 2 sᵀν + n νᵀS⁻¹ν over natural parameters
    θ = (S, ν) stacked as m + 1 rows (C: scatter, s: sum, n: count of each stratum).

    With β = 1/√2 and D = [[C, √2 s], [√2 sᵀ, 2n]], the loss equals, up to a constant,
    min_c −n log det T + tr(D T) over T = [[S, −βν], [−βνᵀ, c]] (the Schur complement of c
    comes out as ½), and ‖T − [[V, −βw], [−βwᵀ, a]]‖²_F = ‖S − V‖² + ‖ν − w‖² + (c − a)².
    So for the corner a = c at the optimum, the prox is the closed-form log det prox by
    eigendecomposition; the scalar a solves T_cc(a) = a (T_cc − a decreases in a), found by
    safeguarded Newton for all strata at once."""

    BETA = 1.0 / np.sqrt(2.0)

    def __init__(self, count: np.ndarray, total: np.ndarray, scatter: np.ndarray,
                 tol: float = 1e-13, max_newton: int = 100):
        k, m = total.shape
        self.count, self.m = count, m
        self.data = np.zeros((k, m + 1, m + 1))
        self.data[:, :m, :m] = scatter
        self.data[:, :m, m] = self.data[:, m, :m] = np.sqrt(2.0) * total
        self.data[:, m, m] = 2.0 * count
        self.corner = np.ones(k)
        self.tol, self.max_newton = tol, max_newton

    def __call__(self, v: np.ndarray, t: float) -> np.ndarray:
        m = self.m
        centre = np.zeros_like(self.data)
        centre[:, :m, :m] = 0.5 * (v[:, :m, :] + np.transpose(v[:, :m, :], (0, 2, 1)))
        centre[:, :m, m] = centre[:, m, :m] = -self.BETA * v[:, m, :]
        has_data = self.count > 0
        a = self.corner.copy()
        lo, hi = np.full_like(a, -np.inf), np.full_like(a, np.inf)
        for _ in range(self.max_newton):
            centre[:, m, m] = a
            lam, vec, f, df = _spectral_prox(centre / t - self.data, t, self.count)
            corner_row = vec[:, m, :] ** 2  # Q_ci², (K, m + 1)
            gap = np.einsum("ki,ki->k", corner_row, f) - a  # T_cc(a) − a
            gap[~has_data] = 0.0
            if np.max(np.abs(gap)) <= self.tol * (1.0 + np.max(np.abs(a))):
                break
            lo, hi = np.where(gap > 0, a, lo), np.where(gap < 0, a, hi)
            diff_l = lam[:, :, None] - lam[:, None, :]
            same = np.abs(diff_l) < 1e-12 * (1.0 + np.abs(lam[:, :, None]))
            divided = np.where(same, 0.5 * (df[:, :, None] + df[:, None, :]),
                               (f[:, :, None] - f[:, None, :]) / np.where(same, 1.0, diff_l))
            slope = np.einsum("ki,kij,kj->k", corner_row, divided, corner_row) / t - 1.0
            step = a - gap / np.minimum(slope, -1e-12)
            bracketed = np.isfinite(lo) & np.isfinite(hi)
            outside = bracketed & ((step <= lo) | (step >= hi))
            a = np.where(outside, 0.5 * (np.where(bracketed, lo, 0.0) + np.where(bracketed, hi, 0.0)),
                         step)
        self.corner = a
        out = np.empty_like(v)
        full = np.einsum("kij,kj,klj->kil", vec, f, vec)
        out[:, :m, :] = full[:, :m, :m]
        out[:, m, :] = -full[:, :m, m] / self.BETA
        if not has_data.all():  # no loss: S is projected onto the PSD cone, ν stays
            bare = ~has_data
            lam0, vec0 = np.linalg.eigh(centre[bare, :m, :m])
            out[bare, :m, :] = np.einsum("kij,kj,klj->kil", vec0, np.maximum(lam0, 0.0), vec0)
            out[bare, m, :] = v[bare, m, :]
        return out
