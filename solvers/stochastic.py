"""Stochastic estimates of log|H|, tr(H⁻¹S_a) and the stratum blocks of H⁻¹ at any K,
H = blockdiag(B_k) + P(w), with the exact Kronecker-sum solve as the preconditioner.

The reference matrix (solvers.spectral.KroneckerReference). K̃ = Σ_a w_a (L_a ⊗ D_a) +
I ⊗ (A₀ + R̄) (A₀ the strata's mean block, R̄ the ridges' mean over strata) is block
diagonal in (factors' eigenbases) ⊗ I:
one d × d matrix per product eigenvalue index, so K̃^{±1/2}, K̃⁻¹, log|K̃|, tr(K̃⁻¹S_a) and
the stratum blocks of K̃⁻¹ are exact (transforms: solvers.laplacian.KroneckerSolver). A
diagonal scaling S matches the diagonal: M = S K̃ S = C Cᵀ ≈ H, C = S K̃^{1/2}.

One Krylov run per probe gives all three. For Rademacher probes z (E[zzᵀ] = I),
preconditioned CG on H x = b, b = C z, with the preconditioner M⁻¹ is CG on the whitened
G = C⁻¹HC⁻ᵀ from z itself (Cᵀx = G⁻¹z), so its step lengths α and ratios β are those of a
Lanczos run on G from z (Saad 2003, §6.7.3: T_jj = 1/α_j + β_{j−1}/α_{j−1},
T_j,j+1 = √β_j / α_j), and its first preconditioned residual is u = M⁻¹b = C⁻ᵀz, with
E[uuᵀ] = M⁻¹:

* log|H| = log|M| + tr log(G), zᵀ log(G) z = ‖z‖² e₁ᵀ log(T) e₁ by the Gauss quadrature of
  T (stochastic Lanczos quadrature, Ubaru, Chen & Saad 2017). Method "slq".
* tr(H⁻¹S_a) = tr(K̃⁻¹S_a) + E[uᵀ S_a (H⁻¹ − K̃⁻¹) M u], since E[uᵀ A M u] = tr(A M M⁻¹)
  = tr(A): Hutchinson's estimator on the difference from the exact reference (a control
  variate: the graph's smooth modes, which dominate the trace, cancel), with
  H⁻¹Mu = x from the same run and K̃⁻¹Mu = K̃⁻¹b one spectral solve. Method
  "hutchinson-cv" (Hutch++'s low-rank deflation is not needed once the control variate
  has removed the dominant modes).
* (H⁻¹)_kk = (K̃⁻¹)_kk + E[((H⁻¹ − K̃⁻¹) z)_k z_kᵀ], from a run of its own on b = z
  (the Rademacher z_k z_kᵀ has no variance on the diagonal, u_k u_kᵀ would), asked for
  the uncertainty and for a changing curvature's gradient term only. Method
  "monte-carlo".

The log-determinant and the traces thus share every product with H (they once took two
runs, a Lanczos one on G and CG with a two-step preconditioner; the plain M⁻¹ reaches the
same tolerance in one step more at less than half the cost per step: 8 steps against 7
at K = 10⁶, benchmarks/RESULTS.md).

Probes are drawn once per seed and reused at every weight (common random numbers): the
estimated criterion is a smooth function of the weights, so the outer Newton iteration
converges on it, and its standard error (from the probes' spread) is reported.

Where some factor has no exact eigenbasis (a general graph over the dense limit), the
reference is the block-Jacobi matrix M = blockdiag(H's diagonal blocks) = C Cᵀ (C their
Cholesky factors): exact log-determinant, no control variate; the methods then carry the
suffix "-jacobi".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from .curvature_operator import CurvatureOperator
from .estimate import Estimate
from .laplacian import exact_kronecker
from .penalty import QuadraticPenalty, RidgePart
from .spectral import KroneckerReference

PROBES = 32
PILOT_PROBES = 8  # REML's first try (solvers.selection), kept when already precise
CG_RTOL = 1e-9
# the probes' run stops at a looser residual: its traces' error (1e-8 of their value at
# K = 10⁶, 1e-4 of their standard error) and log|H|'s (whose quadrature error goes as the
# residual's square: the same to 1e-14) stay far below the estimators' own, in 6 CG steps
# instead of 8
PROBE_RTOL = 1e-7
CG_MAX = 2000


@dataclass(frozen=True)
class Krylov:
    """One preconditioned CG run per probe column of B (K, P, d)."""

    solution: np.ndarray  # H⁻¹B
    first: np.ndarray  # M⁻¹B, the first preconditioned residual (a probes' run; else B)
    quadratures: np.ndarray  # (P,) (C⁻¹b)ᵀ log(G) (C⁻¹b) per column, by Gauss quadrature
    steps: int
    residual: float  # the worst relative residual


class StochasticCurvature:
    def __init__(self, blocks: np.ndarray, penalty: QuadraticPenalty, weights: np.ndarray,
                 seed: int = 0, probes: float = PROBES, cg_rtol: float = CG_RTOL,
                 probe_rtol: float = PROBE_RTOL):
        self.penalty = penalty
        self.weights = np.asarray(weights, dtype=float)
        self.blocks = np.asarray(blocks, dtype=float)
        self.k, self.d = self.penalty.k, self.penalty.d
        self.probes = int(probes)
        self.cg_rtol = float(cg_rtol)
        self.probe_rtol = float(probe_rtol)
        rng = np.random.default_rng(seed)
        self.z = rng.choice(np.array([-1.0, 1.0]), size=(self.k, self.probes, self.d))
        self.kron = exact_kronecker(self.penalty.factors)
        self.operator = CurvatureOperator(self.blocks, penalty, self.weights)
        self._local = self.blocks + np.einsum("kc,cd->kcd", self.penalty.diagonal(self.weights),
                                              np.eye(self.d))
        if self.kron:
            self._setup_kronecker()
        else:  # the block-Jacobi reference
            chol = np.linalg.cholesky(self._local)
            self._chol = chol
            self._logdet_local = float(2 * np.sum(np.log(np.einsum("kcc->kc", chol))))
            self.local_inverse = np.linalg.inv(self._local)
        self._krylov: Krylov | None = None
        self._start: np.ndarray | None = None  # the run's first iterate (None: 0)
        self._rhs = self.z  # C z, once the run is done
        self._difference: np.ndarray | None = None
        self._solves: np.ndarray | None = None
        self.cg_iterations = 0

    # -- the reference matrix M = C Cᵀ ----------------------------------------------------
    def _setup_kronecker(self) -> None:
        penalty, w = self.penalty, self.weights
        self.reference = reference = KroneckerReference(penalty, w, self.blocks.mean(axis=0))
        # S matches M's diagonal to H's
        ridge = self.reference.ridge
        diag_h = np.einsum("kcc->kc", self._local)
        diag_k = penalty.diagonal(w) - sum(
            w[a] * np.asarray(p.pattern, float) for a, p in enumerate(penalty.parts)
            if isinstance(p, RidgePart)) + ridge + np.diag(self.reference.block)
        self.scale = np.sqrt(np.maximum(diag_h, 1e-300) / np.maximum(diag_k, 1e-300))
        self._inverse_scale = (1.0 / self.scale)[:, None, :]
        # K̃^{1/2} = K̃ K̃^{-1/2} in the eigenbasis (the matrices commute)
        self._half = (reference.matrices * reference.inverse_half if self.d == 1 else
                      np.einsum("...ij,...jk->...ik", reference.matrices,
                                reference.inverse_half))

    def apply(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """H X for X (K, P, d)."""
        return self.operator.apply(x, out)

    def k_solve(self, x: np.ndarray) -> np.ndarray:
        return self.reference.solve(x)

    def factor(self, x: np.ndarray) -> np.ndarray:
        """C X (Kronecker: S K̃^{1/2} X; Jacobi: L_k X per block, L_k L_kᵀ H's block)."""
        if self.kron:
            out = self.reference.spectral(x, self._half)
            out *= self.scale[:, None, :]
            return out
        return _blocks_times(self._chol, x)

    def precondition(self, r: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """M⁻¹ R = C⁻ᵀC⁻¹R (Kronecker: S⁻¹K̃⁻¹S⁻¹R; Jacobi: the blocks' inverses),
        ``out`` (not R) the transforms' workspace when given: the result may be it."""
        if self.kron:
            inverse = self._inverse_scale
            scaled = np.multiply(r, inverse, out=out)
            result = self.reference.spectral(scaled, self.reference.inverse, overwrite=True)
            result *= inverse
            return result
        return _blocks_times(self.local_inverse, r)

    def logdet_reference(self) -> float:
        if self.kron:
            return self.reference.logdet + 2.0 * float(np.sum(np.log(self.scale)))
        return self._logdet_local

    # -- solves --------------------------------------------------------------------------
    def _pcg(self, b: np.ndarray, rtol: float, start: np.ndarray | None = None,
             estimators: bool = False) -> Krylov:
        krylov = _pcg_lanczos(self.apply, self.precondition, b, rtol, CG_MAX, start,
                              estimators)
        self.cg_iterations += krylov.steps
        # (not `residual > rtol`: a NaN residual, from a non-finite B or H, is above no
        # tolerance, and CG stops at once with x = 0 or NaN)
        if not krylov.residual <= rtol or not np.all(np.isfinite(krylov.solution)):
            raise ArithmeticError(
                f"conjugate gradients on the curvature matrix stopped at a relative residual "
                f"of {krylov.residual:.2e} after {krylov.steps} steps (asked "
                f"{rtol:.0e}): the matrix is singular or badly conditioned")
        return krylov

    def solve_batch(self, b: np.ndarray, rtol: float | None = None,
                    start: np.ndarray | None = None) -> np.ndarray:
        """H⁻¹ B for B (K, P, d): preconditioned CG on every column at once, to the
        relative residual ``rtol`` (default: the ``cg_rtol`` option), from ``start``
        (default 0)."""
        return self._pcg(b, self.cg_rtol if rtol is None else rtol, start).solution

    def solve(self, b: np.ndarray) -> np.ndarray:
        """H⁻¹ b for b (K, d)."""
        return self.solve_batch(b[:, None, :])[:, 0, :]

    def start_from(self, near: StochasticCurvature) -> None:
        """Start the probes' run from ``near``'s solutions (H at weights close to these,
        the same probes): a gradient by differences then takes half the CG steps (4
        against 8 at K = 10⁶ for a step of 1e-4 in log w), to the same tolerance. Such a
        run is no Lanczos run from z: :meth:`logdet` is then NaN, the traces and blocks
        are as precise as from 0."""
        if near.z.shape != self.z.shape or not np.array_equal(near.z, self.z):
            raise ValueError("a warm start needs the same probes")
        self._start = near.krylov().solution

    def krylov(self) -> Krylov:
        """The run from b = C z for every probe (done once): x = H⁻¹Cz, u = C⁻ᵀz and
        zᵀ log(G) z (see the module's doc)."""
        if self._krylov is None:
            self._rhs = self.factor(self.z)
            self._krylov = self._pcg(self._rhs, self.probe_rtol, self._start,
                                     estimators=True)
        return self._krylov

    def _differences(self) -> np.ndarray:
        """(H⁻¹ − K̃⁻¹) M u for every probe (H⁻¹ M u without a Kronecker reference)."""
        krylov = self.krylov()
        if not self.kron:
            return krylov.solution
        if self._difference is None:
            self._difference = krylov.solution - self.k_solve(self._rhs)
        return self._difference

    # -- the estimates ---------------------------------------------------------------
    def logdet(self) -> Estimate:
        samples = self.krylov().quadratures
        value = self.logdet_reference() + float(samples.mean())
        stderr = float(samples.std(ddof=1) / math.sqrt(len(samples))) if len(samples) > 1 \
            else math.inf
        return Estimate(value, stderr, "slq" if self.kron else "slq-jacobi")

    def traces(self) -> Estimate:
        penalty, w = self.penalty, self.weights
        krylov = self.krylov()
        parts = len(penalty.parts)
        references = [self.reference.trace(a) if self.kron else None for a in range(parts)]
        samples = np.zeros((self.probes, parts))
        exact = np.zeros(parts)
        for a in range(parts):
            applied = penalty.apply_part_batch(a, krylov.first)  # S_a u
            against = self._differences() if references[a] is not None else krylov.solution
            samples[:, a] = np.einsum("kpd,kpd->p", applied, against)
            exact[a] = references[a] or 0.0
        value = exact + samples.mean(axis=0)
        stderr = samples.std(axis=0, ddof=1) / math.sqrt(self.probes)
        edf = penalty.size - float(w @ value)
        edf_samples = samples @ w
        edf_se = float(edf_samples.std(ddof=1) / math.sqrt(self.probes))
        method = "hutchinson-cv" if self.kron else "hutchinson-jacobi"
        return Estimate(np.append(value, edf), np.append(stderr, edf_se), method)

    def solves(self) -> np.ndarray:
        """H⁻¹ z for every probe, (K, P, d) (computed once): the blocks' estimator takes
        z itself, whose z_k z_kᵀ = 1 on the diagonal (d = 1) adds no variance, where
        u_k u_kᵀ of the shared run's u = C⁻ᵀz would (its errors' tail was twice as long
        on a 4,500-node path: tests/test_laplace.py)."""
        if self._solves is None:
            self._solves = self.solve_batch(self.z)
        return self._solves

    def inverse_blocks(self) -> Estimate:
        solves = self.solves()
        reference = self.reference.blocks() if self.kron else None
        diff = solves - self.k_solve(self.z) if reference is not None else solves
        samples = np.einsum("kpa,kpb->pkab", diff, self.z)
        samples = 0.5 * (samples + samples.transpose(0, 1, 3, 2))
        mean = samples.mean(axis=0)
        stderr = samples.std(axis=0, ddof=1) / math.sqrt(self.probes)
        value = mean + (reference if reference is not None else 0.0)
        return Estimate(value, stderr, "monte-carlo" if reference is not None
                        else "monte-carlo-jacobi")


def _blocks_times(blocks: np.ndarray, x: np.ndarray) -> np.ndarray:
    """blocks_k X_k for blocks (K, d, d) and X (K, P, d) (d = 1: a product of numbers)."""
    if blocks.shape[1] == 1:
        return blocks[:, :, 0][:, None, :] * x
    return np.einsum("kab,kpb->kpa", blocks, x)


def _columns_dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Σ_k,d x_kpd y_kpd for every column p."""
    return np.einsum("kpd,kpd->p", x, y)


def _pcg_lanczos(apply, precondition, b: np.ndarray, rtol: float, max_iter: int,
                 start: np.ndarray | None = None, estimators: bool = True) -> Krylov:
    """Preconditioned CG on every column of B (K, P, d) at once (scalars per column p;
    columns that have converged stop moving), keeping each column's step lengths α_j and
    ratios β_j for the Lanczos matrix T of the whitened operator (the module's doc).
    From ``start`` (not 0) the run solves as well but is no Lanczos run from C⁻¹b: its
    quadratures are NaN; so are they without ``estimators`` (a plain solve, which needs
    neither them nor M⁻¹B)."""
    probes = b.shape[1]
    norm_b = np.sqrt(_columns_dot(b, b))
    norm_b = np.where(norm_b > 0, norm_b, 1.0)
    if start is None:
        x = np.zeros_like(b)
        r = b.copy()
        z = precondition(r)
        first = z  # (z is rebound below, never written)
    else:
        x = start.copy()
        r = b - apply(x)
        z = precondition(r)
        first = precondition(b) if estimators else b
    p = z.copy()
    rz = _columns_dot(r, z)
    initial = rz.copy()  # ‖C⁻¹b‖²
    residual = np.sqrt(_columns_dot(r, r)) / norm_b
    q = np.empty_like(b)
    scratch = np.empty_like(b)
    alphas: list[np.ndarray] = []
    betas: list[np.ndarray] = []
    lengths = np.zeros(probes, dtype=int)  # the steps each column took
    steps = 0
    for steps in range(1, max_iter + 1):
        active = residual > rtol
        if not active.any():
            steps -= 1
            break
        apply(p, out=q)
        curvature = _columns_dot(p, q)
        moving = active & (curvature > 0)
        alpha = np.where(moving, rz / np.where(curvature > 0, curvature, 1.0), 0.0)
        np.multiply(p, alpha[None, :, None], out=scratch)
        x += scratch
        np.multiply(q, alpha[None, :, None], out=scratch)
        r -= scratch
        residual = np.sqrt(_columns_dot(r, r)) / norm_b
        z = precondition(r, scratch)  # (scratch is free until the next step's α p)
        rz_new = _columns_dot(r, z)
        beta = np.where(rz > 0, rz_new / np.where(rz > 0, rz, 1.0), 0.0)
        alphas.append(alpha)
        betas.append(beta)
        lengths += moving
        p *= beta[None, :, None]
        p += z
        rz = rz_new
    if start is not None or not estimators:
        return Krylov(x, first, np.full(probes, np.nan), steps,
                      float(residual.max(initial=0.0)))
    quadratures = np.array([
        initial[i] * _log_quadrature(np.array([a[i] for a in alphas[: lengths[i]]]),
                                   np.array([c[i] for c in betas[: lengths[i]]]))
        for i in range(probes)])
    return Krylov(x, first, quadratures, steps, float(residual.max(initial=0.0)))


def _log_quadrature(alphas: np.ndarray, betas: np.ndarray) -> float:
    """e₁ᵀ log(T) e₁ for the Lanczos matrix T of CG's step lengths ``alphas`` and ratios
    ``betas`` (the first len(alphas) − 1 used)."""
    if not len(alphas):
        return 0.0  # b = 0: no Krylov space, and its quadratic form is 0
    inverse = 1.0 / alphas
    diagonal = inverse.copy()
    diagonal[1:] += betas[:-1] * inverse[:-1]
    off = np.sqrt(betas[:-1]) * inverse[:-1]
    theta, vectors = scipy.linalg.eigh_tridiagonal(diagonal, off)
    return float(np.sum(vectors[0] ** 2 * np.log(np.maximum(theta, 1e-300))))
