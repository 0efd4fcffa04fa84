"""Stochastic estimates of log|H|, tr(H⁻¹S_a) and the stratum blocks of H⁻¹ at any K,
H = blockdiag(B_k) + P(w), with the exact Kronecker-sum solve as the preconditioner.

The reference matrix (solvers.spectral.KroneckerReference). K̃ = Σ_a w_a (L_a ⊗ D_a) +
I ⊗ (A₀ + R̄) (A₀ the strata's mean block, R̄ the ridges' mean over strata) is block
diagonal in (factors' eigenbases) ⊗ I:
one d × d matrix per product eigenvalue index, so K̃^{±1/2}, K̃⁻¹, log|K̃|, tr(K̃⁻¹S_a) and
the stratum blocks of K̃⁻¹ are exact (transforms: solvers.laplacian.KroneckerSolver). A
diagonal scaling S matches the diagonal: M = S K̃ S ≈ H.

* log|H| = log|M| + tr log(G), G = K̃^{-1/2} S⁻¹ H S⁻¹ K̃^{-1/2} (well conditioned), by
  stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017): Rademacher probes z, a Lanczos
  run on G from each, zᵀ log(G) z from the Gauss quadrature of its tridiagonal matrix.
  Method "slq".
* tr(H⁻¹S_a) = tr(K̃⁻¹S_a) + E[zᵀ S_a (H⁻¹ − K̃⁻¹) z]: Hutchinson's estimator on the
  difference from the exact reference (a control variate: the graph's smooth modes, which
  dominate the trace, cancel), all parts from the same solves H⁻¹z (preconditioned CG).
  Method "hutchinson-cv" (Hutch++'s low-rank deflation is not needed once the control
  variate has removed the dominant modes).
* (H⁻¹)_kk = (K̃⁻¹)_kk + E[((H⁻¹ − K̃⁻¹) z)_k z_kᵀ], from the same solves. Method
  "monte-carlo".

Probes are drawn once per seed and reused at every weight (common random numbers): the
estimated criterion is a smooth function of the weights, so the outer Newton iteration
converges on it, and its standard error (from the probes' spread) is reported.

Where some factor has no exact eigenbasis (a general graph over the dense limit), the
reference is the block-Jacobi matrix (H's diagonal blocks): exact log-determinant, no
control variate; the methods then carry the suffix "-jacobi".
"""

from __future__ import annotations

import math

import numpy as np

from .estimate import Estimate
from .laplacian import exact_kronecker
from .penalty import QuadraticPenalty, RidgePart
from .spectral import KroneckerReference

PROBES = 32
PILOT_PROBES = 8  # REML's first try (solvers.selection), kept when already precise
LANCZOS_STEPS = 80
CG_RTOL = 1e-9
CG_MAX = 2000


class StochasticCurvature:
    def __init__(self, blocks: np.ndarray, penalty: QuadraticPenalty, weights: np.ndarray,
                 seed: int = 0, probes: float = PROBES,
                 lanczos_steps: float = LANCZOS_STEPS, cg_rtol: float = CG_RTOL):
        self.penalty = penalty
        self.weights = np.asarray(weights, dtype=float)
        self.blocks = np.asarray(blocks, dtype=float)
        self.k, self.d = self.penalty.k, self.penalty.d
        self.probes = int(probes)
        self.lanczos_steps = int(lanczos_steps)
        self.cg_rtol = float(cg_rtol)
        rng = np.random.default_rng(seed)
        self.z = rng.choice(np.array([-1.0, 1.0]), size=(self.k, self.probes, self.d))
        self.kron = exact_kronecker(self.penalty.factors)
        self._local = self.blocks + np.einsum("kc,cd->kcd", self.penalty.diagonal(self.weights),
                                              np.eye(self.d))
        if self.kron:
            self._setup_kronecker()
        self.local_inverse = np.linalg.inv(self._local)
        self._solves: np.ndarray | None = None
        self.cg_iterations = 0

    # -- the reference matrix ----------------------------------------------------------
    def _setup_kronecker(self) -> None:
        penalty, w = self.penalty, self.weights
        self.reference = KroneckerReference(penalty, w, self.blocks.mean(axis=0))
        # S matches M's diagonal to H's
        ridge = self.reference.ridge
        diag_h = np.einsum("kcc->kc", self._local)
        diag_k = penalty.diagonal(w) - sum(
            w[a] * np.asarray(p.pattern, float) for a, p in enumerate(penalty.parts)
            if isinstance(p, RidgePart)) + ridge + np.diag(self.reference.block)
        self.scale = np.sqrt(np.maximum(diag_h, 1e-300) / np.maximum(diag_k, 1e-300))

    def apply(self, x: np.ndarray) -> np.ndarray:
        """H X for X (K, P, d)."""
        return (np.einsum("kab,kpb->kpa", self.blocks, x)
                + self.penalty.apply_batch(self.weights, x))

    def k_solve(self, x: np.ndarray) -> np.ndarray:
        return self.reference.solve(x)

    def whiten(self, x: np.ndarray) -> np.ndarray:
        """C⁻¹ X with M = C Cᵀ (Kronecker: K̃^{-1/2} S⁻¹ X; Jacobi: L_k⁻¹ X per block)."""
        if self.kron:
            return self.reference.spectral(x / self.scale[:, None, :], self.reference.inverse_half)
        return np.einsum("kab,kpb->kpa", self._chol_inverse, x)

    def whiten_t(self, x: np.ndarray) -> np.ndarray:
        """C⁻ᵀ X."""
        if self.kron:
            return self.reference.spectral(x, self.reference.inverse_half) / self.scale[:, None, :]
        return np.einsum("kba,kpb->kpa", self._chol_inverse, x)

    @property
    def _chol_inverse(self) -> np.ndarray:
        if not hasattr(self, "_chol_inv"):
            chol = np.linalg.cholesky(self._local)
            self._chol_inv = np.linalg.inv(chol)
            self._logdet_local = float(2 * np.sum(np.log(np.einsum("kcc->kc", chol))))
        return self._chol_inv

    def logdet_reference(self) -> float:
        if self.kron:
            return self.reference.logdet + 2.0 * float(np.sum(np.log(self.scale)))
        _ = self._chol_inverse
        return self._logdet_local

    # -- solves --------------------------------------------------------------------------
    def preconditioner(self, r: np.ndarray) -> np.ndarray:
        """The symmetric two-step preconditioner: block Jacobi for the strata's
        differences, the Kronecker reference for the graph's smooth modes."""
        block = np.einsum("kab,kpb->kpa", self.local_inverse, r)
        if not self.kron:
            return block
        second = block + self.k_solve(r - self.apply(block))
        return second + np.einsum("kab,kpb->kpa", self.local_inverse, r - self.apply(second))

    def solve_batch(self, b: np.ndarray) -> np.ndarray:
        """H⁻¹ B for B (K, P, d): conjugate gradients on every column at once."""
        x, iterations, residual = _batch_pcg(self.apply, self.preconditioner, b, self.cg_rtol,
                                             CG_MAX)
        self.cg_iterations += iterations
        if residual > self.cg_rtol:
            raise ArithmeticError(
                f"conjugate gradients on the curvature matrix stopped at a relative residual "
                f"of {residual:.2e} after {iterations} steps (asked {self.cg_rtol:.0e}): "
                f"the matrix is singular or badly conditioned")
        return x

    def solve(self, b: np.ndarray) -> np.ndarray:
        """H⁻¹ b for b (K, d)."""
        return self.solve_batch(b[:, None, :])[:, 0, :]

    def solves(self) -> np.ndarray:
        """H⁻¹ z for every probe, (K, P, d) (computed once)."""
        if self._solves is None:
            self._solves = self.solve_batch(self.z)
        return self._solves

    # -- the estimates ---------------------------------------------------------------
    def logdet(self) -> Estimate:
        def g(x: np.ndarray) -> np.ndarray:
            return self.whiten(self.apply(self.whiten_t(x)))

        samples = _batch_lanczos_logdet(g, self.z, self.lanczos_steps)
        value = self.logdet_reference() + float(samples.mean())
        stderr = float(samples.std(ddof=1) / math.sqrt(len(samples))) if len(samples) > 1 \
            else math.inf
        return Estimate(value, stderr, "slq" if self.kron else "slq-jacobi")

    def traces(self) -> Estimate:
        penalty, w = self.penalty, self.weights
        solves = self.solves()
        parts = len(penalty.parts)
        references = [self.reference.trace(a) if self.kron else None for a in range(parts)]
        controlled = solves - self.k_solve(self.z) if self.kron else solves
        samples = np.zeros((self.probes, parts))
        exact = np.zeros(parts)
        for a in range(parts):
            applied = penalty.apply_part_batch(a, self.z)
            diff = controlled if references[a] is not None else solves
            samples[:, a] = np.einsum("kpd,kpd->p", applied, diff)
            exact[a] = references[a] or 0.0
        value = exact + samples.mean(axis=0)
        stderr = samples.std(axis=0, ddof=1) / math.sqrt(self.probes)
        edf = penalty.size - float(w @ value)
        edf_samples = samples @ w
        edf_se = float(edf_samples.std(ddof=1) / math.sqrt(self.probes))
        method = "hutchinson-cv" if self.kron else "hutchinson-jacobi"
        return Estimate(np.append(value, edf), np.append(stderr, edf_se), method)

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


def _batch_pcg(apply, precondition, b: np.ndarray, rtol: float, max_iter: int
               ) -> tuple[np.ndarray, int, float]:
    """Preconditioned CG on every right-hand side of B (K, P, d) at once (scalars per
    column p); columns that have converged stop moving. (X, steps, worst relative
    residual)."""
    x = np.zeros_like(b)
    r = b.copy()
    norm_b = np.sqrt(np.einsum("kpd,kpd->p", b, b))
    norm_b = np.where(norm_b > 0, norm_b, 1.0)
    z = precondition(r)
    p = z.copy()
    rz = np.einsum("kpd,kpd->p", r, z)
    residual = np.sqrt(np.einsum("kpd,kpd->p", r, r)) / norm_b
    steps = 0
    for steps in range(1, max_iter + 1):
        active = residual > rtol
        if not active.any():
            steps -= 1
            break
        q = apply(p)
        curvature = np.einsum("kpd,kpd->p", p, q)
        alpha = np.where(active & (curvature > 0), rz / np.where(curvature > 0, curvature, 1.0),
                         0.0)
        x += alpha[None, :, None] * p
        r -= alpha[None, :, None] * q
        residual = np.sqrt(np.einsum("kpd,kpd->p", r, r)) / norm_b
        z = precondition(r)
        rz_new = np.einsum("kpd,kpd->p", r, z)
        beta = np.where(rz > 0, rz_new / np.where(rz > 0, rz, 1.0), 0.0)
        p = z + beta[None, :, None] * p
        rz = rz_new
    return x, steps, float(residual.max(initial=0.0))


def _batch_lanczos_logdet(apply, z: np.ndarray, steps: int, tol: float = 1e-10
                          ) -> np.ndarray:
    """z_pᵀ log(G) z_p for every probe column of Z (K, P, d), by Lanczos quadrature (G
    symmetric positive definite), all probes advancing together."""
    probes = z.shape[1]
    norms = np.sqrt(np.einsum("kpd,kpd->p", z, z))
    q = z / norms[None, :, None]
    q_prev = np.zeros_like(q)
    alphas = np.zeros((steps, probes))
    betas = np.zeros((steps, probes))
    length = [steps] * probes  # the Krylov dimension each probe ends with
    done = np.zeros(probes, dtype=bool)
    previous = np.full(probes, np.nan)
    beta = np.zeros(probes)
    for step in range(steps):
        v = apply(q) - beta[None, :, None] * q_prev
        alpha = np.einsum("kpd,kpd->p", q, v)
        v -= alpha[None, :, None] * q
        alphas[step] = np.where(done, alphas[step], alpha)
        beta = np.sqrt(np.einsum("kpd,kpd->p", v, v))
        broke = ~done & (beta < 1e-14)
        if step % 5 == 4 or broke.any():
            for p in map(int, np.flatnonzero(~done)):
                estimate = _quadrature(alphas[: step + 1, p], betas[:step, p])
                if broke[p] or abs(estimate - previous[p]) <= tol * max(1.0, abs(estimate)):
                    done[p] = True
                    length[p] = step + 1
                previous[p] = estimate
            if done.all():
                break
        betas[step] = np.where(done, betas[step], beta)
        safe = np.where(beta > 0, beta, 1.0)
        q_prev, q = q, v / safe[None, :, None]
    out = np.empty(probes)
    for p in range(probes):
        n = length[p]
        out[p] = norms[p] ** 2 * _quadrature(alphas[:n, p], betas[: n - 1, p])
    return out


def _quadrature(alphas: np.ndarray, betas: np.ndarray) -> float:
    """e₁ᵀ log(T) e₁ for the tridiagonal T (diagonal ``alphas``, off-diagonal ``betas``)."""
    t = np.diag(alphas) + np.diag(betas[: len(alphas) - 1], 1) \
        + np.diag(betas[: len(alphas) - 1], -1)
    theta, vectors = np.linalg.eigh(t)
    return float(np.sum(vectors[0] ** 2 * np.log(np.maximum(theta, 1e-300))))
