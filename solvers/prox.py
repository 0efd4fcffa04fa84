"""Proximal operators, vectorized across all strata at once.

prox_{tf}(v) = argmin_θ f(θ) + ‖θ − v‖² / (2t). Arrays have one leading stratum axis;
no function here loops over strata in Python.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

# ---- regularizers (elementwise or per stratum) ------------------------------------------


def soft_threshold(v: np.ndarray, t: float) -> np.ndarray:
    return np.sign(v) * np.maximum(np.abs(v) - t, 0.0)


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


def poisson(v: np.ndarray, t: float, count: np.ndarray, total: np.ndarray,
            eps: float) -> np.ndarray:
    """argmin nθ − s log θ + (θ − v)²/(2t) over θ ≥ eps: a quadratic's positive root."""
    b = v - t * count
    root = 0.5 * (b + np.sqrt(b * b + 4.0 * t * total))
    return np.maximum(root, eps)


def exponential(v: np.ndarray, t: float, count: np.ndarray, total: np.ndarray,
                eps: float) -> np.ndarray:
    """argmin −n log θ + sθ + (θ − v)²/(2t) over θ ≥ eps."""
    b = v - t * total
    root = 0.5 * (b + np.sqrt(b * b + 4.0 * t * count))
    return np.maximum(root, eps)


def bernoulli(v: np.ndarray, t: float, count: np.ndarray, total: np.ndarray, eps: float,
              iterations: int = 60) -> np.ndarray:
    """argmin −s log θ − (n − s) log(1 − θ) + (θ − v)²/(2t) over [eps, 1 − eps].

    The derivative is increasing on (0, 1): safeguarded Newton inside a shrinking bracket,
    then projection onto [eps, 1 − eps] (exact for a 1-D convex problem)."""
    s, f = total, count - total
    lo, hi = np.zeros_like(v), np.ones_like(v)
    theta = np.clip(v, 0.05, 0.95) if np.ndim(v) else min(max(v, 0.05), 0.95)
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
    """prox of Σ_i ‖x_iᵀθ − y_i‖² per stratum: (2XᵀX + I/t)θ = 2Xᵀy + v/t.

    The batched inverses are computed once per value of t and reused while the ADMM
    penalty is unchanged."""

    def __init__(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, k: int):
        indicator = stratum_indicator(z, k)
        n = x.shape[1]
        self.gram = np.asarray(indicator @ (x[:, :, None] * x[:, None, :]).reshape(len(x), -1)
                               ).reshape(k, n, n)
        self.xty = np.asarray(indicator @ (x[:, :, None] * y[:, None, :]).reshape(len(x), -1)
                              ).reshape(k, n, y.shape[1])
        self._t: float | None = None
        self._inverse: np.ndarray | None = None

    def __call__(self, v: np.ndarray, t: float) -> np.ndarray:
        if self._t != t:
            n = self.gram.shape[1]
            self._inverse = np.linalg.inv(2.0 * self.gram + np.eye(n) / t)
            self._t = t
        return np.einsum("kij,kjm->kim", self._inverse, 2.0 * self.xty + v / t)


# (value, first derivative, second derivative) of a loss of the linear predictor η
Pointwise = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


class NewtonProx:
    """prox of Σ_i f(x_iᵀθ, y_i) per stratum for a smooth convex f, by Newton's method
    with a backtracking line search run on all strata at once, warm-started at the
    previous solution (so a few steps suffice inside ADMM).

    With one output, f maps η (N,) to (value, f', f''), each (N,). With m outputs (θ_k is
    n × m), f maps η (N, m) to (value (N,), gradient (N, m), Hessian (N, m, m)), and each
    stratum's Newton system is n·m × n·m."""

    def __init__(self, f: Pointwise, x: np.ndarray, y: np.ndarray, z: np.ndarray, k: int,
                 tol: float = 1e-10, max_newton: int = 50, outputs: int = 1):
        self.f, self.x, self.z, self.k, self.m = f, x, z, k, outputs
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
        if self.m == 1:
            return np.einsum("in,in->i", self.x, theta[self.z])
        return np.einsum("in,inm->im", self.x, theta[self.z].reshape(-1, self.n, self.m))

    def _gradient(self, d1: np.ndarray) -> np.ndarray:
        if self.m == 1:
            return self._sum(d1, self.x)
        return self.indicator @ (self.x[:, :, None] * d1[:, None, :]).reshape(len(self.x), -1)

    def _hessian(self, d2: np.ndarray) -> np.ndarray:
        size = self.n * self.m
        if self.m == 1:
            half = self._sum(d2, self._outer_upper)
            full = np.empty((self.k, size, size))
            full[:, self._upper[0], self._upper[1]] = half
            full[:, self._upper[1], self._upper[0]] = half
            return full
        n, m = self.n, self.m
        blocks = self.outer.reshape(-1, n, 1, n, 1) * d2.reshape(-1, 1, m, 1, m)
        return np.asarray(self.indicator @ blocks.reshape(len(self.x), size * size)
                          ).reshape(self.k, size, size)

    def _evaluate(self, theta: np.ndarray, v: np.ndarray, t: float):
        """(prox objective per stratum, and f's value/derivatives per record)."""
        parts = self.f(self._eta(theta), self.y)
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


def multinomial(eta: np.ndarray, y: np.ndarray):
    """log Σ_j exp η_j − η_y, with y one-hot: value, softmax − y, diag(p) − ppᵀ."""
    top = eta.max(axis=1, keepdims=True)
    e = np.exp(eta - top)
    total = e.sum(axis=1, keepdims=True)
    p = e / total
    value = (np.log(total) + top)[:, 0] - np.sum(y * eta, axis=1)
    return value, p - y, p[:, :, None] * (np.eye(eta.shape[1])[None] - p[:, None, :])


def logistic(eta: np.ndarray, y: np.ndarray):
    m = -y * eta
    value = np.logaddexp(0.0, m)
    p = 1.0 / (1.0 + np.exp(-m))  # σ(−yη)
    return value, -y * p, p * (1.0 - p)


def square_classification(eta: np.ndarray, y: np.ndarray):
    r = y * eta - 1.0
    return r * r, 2.0 * y * r, np.full_like(eta, 2.0)


def poisson_regression(eta: np.ndarray, y: np.ndarray):
    e = np.exp(eta)
    return e - y * eta, e - y, e


def exponential_regression(eta: np.ndarray, y: np.ndarray):
    e = np.exp(eta)
    return -eta + y * e, -1.0 + y * e, y * e


def huber(m: float) -> Pointwise:
    def f(eta: np.ndarray, y: np.ndarray):
        r = eta - y
        a = np.abs(r)
        inner = a <= m
        value = np.where(inner, r * r, 2.0 * m * a - m * m)
        return value, np.where(inner, 2.0 * r, 2.0 * m * np.sign(r)), np.where(inner, 2.0, 0.0)

    return f
