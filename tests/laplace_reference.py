"""A dense brute-force reference for the Laplace approximation (REML / ML / GCV weights and
the posterior covariance), for K·d up to a few hundred: every matrix is built densely
with numpy (Laplacians from the factors' own dense matrices via np.kron), the fit is a
dense Newton iteration, log|P|₊ comes from eigvalsh, the gradient from central
differences, the minimizer from scipy.optimize, the standard errors from a
finite-difference Hessian. Nothing here uses solvers.penalty, solvers.curvature or
solvers.selection, so end-to-end tests can compare them (and the API built on them)
against it.

Conventions are the engine's (see solvers.selection): F = ℓ + ½ θᵀP(w)θ, τ = 2φ for a
loss with dispersion (squared), 1 otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize

from stratlang.solvers.graphs import Graph
from stratlang.solvers.pointwise import Pointwise


def _kron_lift(factors: list[Graph], *joined: int) -> np.ndarray:
    """L_f lifted to the product (one factor), or L_a ⊗ L_b ⊗ … (an interaction)."""
    out = np.ones((1, 1))
    for i, g in enumerate(factors):
        out = np.kron(out, g.laplacian().toarray() if i in joined else np.eye(g.n))
    return out


@dataclass
class DenseModel:
    """Records x (N, n), strata z (N,), responses y (N, m); penalty parts: ('laplacian',
    factor, row mask (n,) or None), ('ridge', pattern (K, d)) or ('interaction', factors)
    (the Kronecker product of their Laplacians, every row)."""

    x: np.ndarray
    z: np.ndarray
    y: np.ndarray
    unit: Pointwise
    factors: list[Graph]
    parts: list[tuple]
    m: int = 1
    offset: np.ndarray | None = None
    weight: np.ndarray | None = None
    dispersion: bool = False
    saturated: float = 0.0  # the saturated model's summed loss (GCV's deviance is from it)
    _cache: dict = field(default_factory=dict)

    def __post_init__(self):
        self.n = self.x.shape[1]
        self.k = int(np.prod([g.n for g in self.factors]))
        self.d = self.n * self.m
        self.p = self.k * self.d
        self.designs = []  # A_o (N × K·d): η_o = A_o θ + offset
        for o in range(self.m):
            a = np.zeros((len(self.z), self.p))
            for j in range(self.n):
                a[np.arange(len(self.z)), self.z * self.d + j * self.m + o] = self.x[:, j]
            self.designs.append(a)
        self.matrices = []
        for part in self.parts:
            if part[0] == "laplacian":
                rows = np.ones(self.n, bool) if part[2] is None else np.asarray(part[2], bool)
                mask = np.repeat(rows, self.m).astype(float)
                self.matrices.append(np.kron(_kron_lift(self.factors, part[1]), np.diag(mask)))
            elif part[0] == "interaction":
                self.matrices.append(np.kron(_kron_lift(self.factors, *part[1]),
                                             np.eye(self.d)))
            else:
                self.matrices.append(np.diag(np.asarray(part[1], float).reshape(-1)))

    def penalty(self, w):
        return sum(wa * s for wa, s in zip(w, self.matrices, strict=True))

    def eta(self, theta):
        eta = np.column_stack([a @ theta for a in self.designs])
        return eta if self.offset is None else eta + self.offset[:, None]

    def loss(self, theta):
        value, d1, d2 = self.unit.derivatives(self.eta(theta), self.y)
        value = value if value.ndim == 1 else value.sum(axis=1)
        w = np.ones(len(self.z)) if self.weight is None else self.weight
        value, d1 = value * w, d1 * w[:, None]
        d2 = d2 * (w[:, None] if d2.ndim == 2 else w[:, None, None])
        grad = sum(a.T @ d1[:, o] for o, a in enumerate(self.designs))
        if d2.ndim == 2:
            hess = sum(a.T @ (d2[:, o, None] * a) for o, a in enumerate(self.designs))
        else:
            hess = sum(a.T @ (d2[:, o, p, None] * b) for o, a in enumerate(self.designs)
                       for p, b in enumerate(self.designs))
        return float(value.sum()), grad, hess

    def fit(self, w, start=None):
        """θ̂(w) (flat, K·d) by damped dense Newton to machine precision."""
        p = self.penalty(w)
        theta = np.zeros(self.p) if start is None else np.array(start, float).reshape(-1)
        for _ in range(200):
            value, grad, hess = self.loss(theta)
            f = value + 0.5 * theta @ p @ theta
            g = grad + p @ theta
            step = -np.linalg.solve(hess + p, g)
            t = 1.0
            # near the optimum F's rounding hides the decrease: take the full Newton step
            while t > 1e-12 and -g @ step > 1e-12 * max(1.0, abs(f)):
                trial = theta + t * step
                if self.loss(trial)[0] + 0.5 * trial @ p @ trial <= f + 1e-4 * t * g @ step:
                    break
                t /= 2
            theta = theta + t * step
            if -g @ step < 1e-28 * max(1.0, abs(f)) or np.max(np.abs(t * step)) < 1e-16:
                break
        return theta

    def null_dim(self, w, rel=1e-9):
        values = np.linalg.eigvalsh(self.penalty(w))
        return int(np.sum(values <= rel * values.max()))

    def pdet(self, w):
        values = np.linalg.eigvalsh(self.penalty(w))
        m0 = self.null_dim(w)
        return float(np.sum(np.log(np.sort(values)[m0:]))), m0

    def criterion(self, rho, kind="reml"):
        w = np.exp(np.asarray(rho, float))
        theta = self._warm_fit(w)
        value, _, hess = self.loss(theta)
        p = self.penalty(w)
        objective = value + 0.5 * theta @ p @ theta
        h = hess + p
        logdet_p, m0 = self.pdet(w)
        n = len(self.z)
        if kind == "gcv":
            edf = float(np.trace(np.linalg.solve(h, hess)))
            # the deviance: squared's loss itself, else twice the loss over the saturated's
            deviance = (value - self.saturated) * (1.0 if self.dispersion else 2.0)
            return n * deviance / (n - edf) ** 2
        if kind == "reml":
            logdet_h = np.linalg.slogdet(h)[1]
        else:
            vals, vecs = np.linalg.eigh(p)
            z = vecs[:, np.argsort(vals)[m0:]]
            logdet_h = np.linalg.slogdet(z.T @ h @ z)[1]
        if self.dispersion:
            dof = n - m0 if kind == "reml" else n
            phi = objective / dof
            return 0.5 * dof + 0.5 * dof * math.log(2 * math.pi * phi) \
                + 0.5 * logdet_h - 0.5 * logdet_p
        return objective + 0.5 * logdet_h - 0.5 * logdet_p

    def _warm_fit(self, w):
        key = "theta"
        theta = self.fit(w, self._cache.get(key))
        self._cache[key] = theta
        return theta

    def gradient(self, rho, kind="reml", h=1e-5):
        rho = np.asarray(rho, float)
        out = np.zeros(len(rho))
        for a in range(len(rho)):
            e = np.zeros(len(rho))
            e[a] = h
            out[a] = (self.criterion(rho + e, kind) - self.criterion(rho - e, kind)) / (2 * h)
        return out

    def hessian(self, rho, kind="reml", h=1e-3):
        rho = np.asarray(rho, float)
        q = len(rho)
        out = np.zeros((q, q))
        for a in range(q):
            e = np.zeros(q)
            e[a] = h
            out[:, a] = (self.gradient(rho + e, kind) - self.gradient(rho - e, kind)) / (2 * h)
        return 0.5 * (out + out.T)

    def select(self, rho0, kind="reml"):
        """The minimizer of the criterion in ρ = log w: Nelder–Mead, then Newton with
        finite-difference derivatives to polish."""
        result = scipy.optimize.minimize(lambda r: self.criterion(r, kind), rho0,
                                         method="Nelder-Mead",
                                         options={"xatol": 1e-9, "fatol": 1e-13,
                                                  "maxiter": 20000})
        rho = result.x
        if kind != "gcv":
            for _ in range(3):
                rho = rho - np.linalg.solve(self.hessian(rho, kind), self.gradient(rho, kind))
        return rho

    def covariance(self, w):
        theta = self.fit(w)
        _, _, hess = self.loss(theta)
        return np.linalg.inv(hess + self.penalty(w))


def constant_lift(shape: tuple[int, ...], constant: np.ndarray, present=None) -> np.ndarray:
    """T (K·d × p) dense, by loops: column c of θ constant along the factors
    ``constant[c]`` marks is one free coordinate per node of the other factors' product,
    copied along the marked ones; T's columns normalized (TᵀT = I). ``present``: per
    column None or a set of the strata (node tuples) it is present in (the others'
    rows of T are zero)."""
    import itertools

    d = len(constant)
    k = int(np.prod(shape))
    nodes = list(itertools.product(*[range(s) for s in shape]))  # C order
    columns = []
    for c in range(d):
        keys = {}
        for i, node in enumerate(nodes):
            if present is not None and present[c] is not None and node not in present[c]:
                continue
            key = tuple(v for f, v in enumerate(node) if not constant[c][f])
            keys.setdefault(key, []).append(i)
        for members in keys.values():
            column = np.zeros(k * d)
            column[np.array(members) * d + c] = 1.0 / math.sqrt(len(members))
            columns.append(column)
    return np.column_stack(columns)


@dataclass
class ConstrainedModel(DenseModel):
    """The reference over φ for θ = Tφ (``lift`` T dense, K·d × p): the loss, its
    derivatives and the penalty taken through T, so the fit, the criterion, log|TᵀPT|₊
    and the covariance are φ's; ``theta(φ)`` and ``theta_covariance(w)`` give θ's."""

    lift: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    # column → the node masks per factor it is present on: its graph parts are those of
    # the factors' induced subgraphs (rebuilt here from the dense adjacency)
    partial: dict = field(default_factory=dict)

    def __post_init__(self):
        super().__post_init__()
        self.p = self.lift.shape[1]
        for c, masks in self.partial.items():
            keep = np.ones(1, bool)
            for mask in masks:
                keep = np.logical_and.outer(keep, mask).reshape(-1)
            embed = np.eye(self.k)[:, keep]
            unit = np.zeros((self.d, self.d))
            unit[c, c] = 1.0
            for part, matrix in zip(self.parts, self.matrices, strict=True):
                if part[0] == "ridge":
                    continue
                grid = np.arange(self.k * self.d).reshape(self.k, self.d)[:, c]
                on_c = bool(matrix[grid][:, grid].any()) or part[0] == "interaction"
                matrix[grid, :] = 0.0
                matrix[:, grid] = 0.0
                if not on_c:
                    continue
                joined = part[1] if part[0] == "interaction" else (part[1],)
                lifted = np.ones((1, 1))
                for f, (g, mask) in enumerate(zip(self.factors, masks, strict=True)):
                    adjacency = np.diag(np.diag(g.laplacian().toarray())) - g.laplacian().toarray()
                    sub = adjacency[mask][:, mask]
                    inner = np.diag(sub.sum(axis=1)) - sub
                    lifted = np.kron(lifted, inner if f in joined else np.eye(int(mask.sum())))
                matrix += np.kron(embed @ lifted @ embed.T, unit)

    def penalty(self, w):
        return self.lift.T @ super().penalty(w) @ self.lift

    def loss(self, phi):
        value, grad, hess = super().loss(self.lift @ phi)
        return value, self.lift.T @ grad, self.lift.T @ hess @ self.lift

    def theta(self, phi):
        return self.lift @ phi

    def theta_covariance(self, w):
        return self.lift @ self.covariance(w) @ self.lift.T
