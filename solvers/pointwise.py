"""Smooth losses of one record's linear predictor: value, first and second derivative.

One :class:`Pointwise` unit per smooth loss, the single place its formula is written;
the Newton prox, the Newton (IRLS) backend and the Hessian operator all derive from it.
Arrays in, arrays out: η and y have the same shape, (N,) or (N, m).

A *separable* unit (every loss but multinomial) is elementwise: ``derivatives(η, y)``
returns the value, f' and f'' of each entry, each shaped like η (a record with several
outputs sums its entries' values). A *coupled* unit (multinomial) takes η and y of shape
(N, m) and returns the value (N,), the gradient (N, m) and the curvature (N, m, m).
Record weights and offsets are the caller's: it adds the offset to η and multiplies the
three parts by the record's weight.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

Derivatives = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Pointwise(abc.ABC):
    """Base class of the units; subclasses implement :meth:`derivatives`."""

    coupled: ClassVar[bool] = False  # curvature an m × m matrix per record (else elementwise)
    # sup of f'' over every η and y (None: unbounded, as exp(η)); a step no longer than
    # 1 / (bound · ‖x‖²) cannot overshoot
    curvature_bound: ClassVar[float | None] = None
    quadratic: ClassVar[bool] = False  # f'' constant: one Newton step is exact

    @abc.abstractmethod
    def derivatives(self, eta: np.ndarray, y: np.ndarray) -> Derivatives:
        """(value, first derivative, second derivative) at η, as described above."""

    def __call__(self, eta: np.ndarray, y: np.ndarray) -> Derivatives:
        return self.derivatives(eta, y)

    def initial(self, y: np.ndarray) -> np.ndarray | None:
        """A linear predictor near each record's own optimum, where IRLS starts (the
        classic GLM start: the link of the response, nudged inside the domain); None:
        start from θ = 0."""
        return None

    def record_values(self, eta: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each record's loss (N,): a separable unit's entries summed over outputs."""
        value = self.derivatives(eta, y)[0]
        return value if value.ndim == 1 else np.sum(value, axis=1)


@dataclass(frozen=True)
class Squared(Pointwise):
    """(η − y)²."""

    curvature_bound = 2.0
    quadratic = True

    def derivatives(self, eta, y):
        r = eta - y
        return r * r, 2.0 * r, np.full_like(r, 2.0)

    def initial(self, y):
        return y


@dataclass(frozen=True)
class Huber(Pointwise):
    """r² for |r| ≤ M, 2M|r| − M² beyond (r = η − y): CVXPY's huber."""

    curvature_bound = 2.0

    M: float = 1.0

    def derivatives(self, eta, y):
        r = eta - y
        a = np.abs(r)
        inner = a <= self.M
        value = np.where(inner, r * r, 2.0 * self.M * a - self.M * self.M)
        return value, 2.0 * np.clip(r, -self.M, self.M), np.where(inner, 2.0, 0.0)

    def initial(self, y):
        return y


@dataclass(frozen=True)
class Logistic(Pointwise):
    """log(1 + exp(−yη)), y = ±1."""

    curvature_bound = 0.25

    def derivatives(self, eta, y):
        m = -y * eta
        value = np.logaddexp(0.0, m)
        p = 0.5 * (1.0 + np.tanh(0.5 * m))  # σ(−yη), without overflow
        return value, -y * p, p * (1.0 - p)

    def initial(self, y):
        return y * np.log(3.0)  # logit of (y₀₁ + ½) / 2, as R's glm starts


@dataclass(frozen=True)
class SquareClassification(Pointwise):
    """(yη − 1)², y = ±1."""

    curvature_bound = 2.0
    quadratic = True

    def derivatives(self, eta, y):
        r = y * eta - 1.0
        return r * r, 2.0 * y * r, np.full_like(r, 2.0)

    def initial(self, y):
        return y


@dataclass(frozen=True)
class SquaredHinge(Pointwise):
    """(1 − yη)₊², y = ±1 (f'' jumps at the hinge: Newton is then semismooth)."""

    curvature_bound = 2.0

    def derivatives(self, eta, y):
        gap = np.maximum(1.0 - y * eta, 0.0)
        return gap * gap, -2.0 * y * gap, 2.0 * (gap > 0)

    def initial(self, y):
        return y


@dataclass(frozen=True)
class PoissonRegression(Pointwise):
    """exp(η) − yη (the Poisson negative log-likelihood less log y!)."""

    def derivatives(self, eta, y):
        e = np.exp(eta)
        y_eta = y * eta
        if not np.all(np.isfinite(y_eta)):  # 0, not 0 · ∞, where y = 0 (checked, not masked:
            y_eta = np.where(y == 0, 0.0, y_eta)  # the mask would cost a pass every time)
        return e - y_eta, e - y, e

    def initial(self, y):
        return np.log(y + 0.1)  # μ = y + 0.1, as R's glm starts


@dataclass(frozen=True)
class ExponentialRegression(Pointwise):
    """−η + y exp(η) (rate exp(η))."""

    def derivatives(self, eta, y):
        ye = np.where(y == 0, 0.0, y * np.exp(eta))  # 0, not 0 · ∞, where y = 0
        return -eta + ye, ye - 1.0, ye

    def initial(self, y):
        return -np.log(y + 0.1 * max(float(np.mean(y)), 1e-12))  # rate 1 / (y + ε)


@dataclass(frozen=True)
class Multinomial(Pointwise):
    """log Σ_j exp η_j − η_y, y one-hot: gradient softmax − y, curvature diag(p) − ppᵀ."""

    coupled = True
    curvature_bound = 0.5  # the largest eigenvalue of diag(p) − ppᵀ

    def derivatives(self, eta, y):
        top = eta.max(axis=1, keepdims=True)
        e = np.exp(eta - top)
        total = e.sum(axis=1, keepdims=True)
        p = e / total
        value = (np.log(total) + top)[:, 0] - np.sum(y * eta, axis=1)
        curvature = p[:, :, None] * (np.eye(eta.shape[1])[None] - p[:, None, :])
        return value, p - y, curvature


# ---- distributions in their own parameter (η = θ itself: a probability or a rate) -------
# Not used to fit (the parameter is kept in its domain by a constraint there): their
# curvature is the Laplace approximation's for a distribution estimate.
@dataclass(frozen=True)
class BernoulliMean(Pointwise):
    """−y log η − (1 − y) log(1 − η), η the probability of y = 1."""

    def derivatives(self, eta, y):
        with np.errstate(divide="ignore", invalid="ignore"):
            value = -(np.where(y > 0, y * np.log(eta), 0.0)
                      + np.where(y < 1, (1 - y) * np.log1p(-eta), 0.0))
            return (value, -y / eta + (1 - y) / (1 - eta),
                    y / (eta * eta) + (1 - y) / ((1 - eta) * (1 - eta)))


@dataclass(frozen=True)
class PoissonMean(Pointwise):
    """η − y log η, η the rate."""

    def derivatives(self, eta, y):
        with np.errstate(divide="ignore", invalid="ignore"):
            value = eta - np.where(y > 0, y * np.log(eta), 0.0)
            return value, 1.0 - y / eta, y / (eta * eta)


@dataclass(frozen=True)
class ExponentialMean(Pointwise):
    """−log η + yη, η the rate."""

    def derivatives(self, eta, y):
        with np.errstate(divide="ignore"):
            return -np.log(eta) + y * eta, y - 1.0 / eta, 1.0 / (eta * eta)
