"""Stochastic estimates of log|H|, tr(H⁻¹S_a) and the stratum blocks of H⁻¹ at any K,
H = blockdiag(B_k) + P(w), with the exact Kronecker-sum solve as the preconditioner.

The reference matrix. K̃ = Σ_a w_a (L_a ⊗ D_a) + I ⊗ (A₀ + R̄) (A₀ the strata's mean
block, R̄ the ridges' mean over strata) is block diagonal in (factors' eigenbases) ⊗ I:
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
from typing import TYPE_CHECKING

import numpy as np

from .hessian import pcg
from .laplacian import KroneckerSolver, exact_kronecker
from .penalty import LaplacianPart, RidgePart

if TYPE_CHECKING:
    from .curvature import Estimate, LaplaceCurvature

PROBES = 32
LANCZOS_STEPS = 80
CG_RTOL = 1e-9
CG_MAX = 2000


class StochasticCurvature:
    def __init__(self, curvature: LaplaceCurvature, seed: int = 0, probes: float = PROBES,
                 lanczos_steps: float = LANCZOS_STEPS, cg_rtol: float = CG_RTOL):
        self.curvature = curvature
        self.penalty = curvature.penalty
        self.weights = curvature.weights
        self.blocks = curvature.blocks
        self.k, self.d = self.penalty.k, self.penalty.d
        self.probes = int(probes)
        self.lanczos_steps = int(lanczos_steps)
        self.cg_rtol = float(cg_rtol)
        rng = np.random.default_rng(seed)
        self.z = rng.choice(np.array([-1.0, 1.0]), size=(self.probes, self.k, self.d))
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
        factors = penalty.factors
        count = len(factors)
        self.solver = KroneckerSolver(factors, [1.0] * count)
        unit = [KroneckerSolver(factors, [1.0 if i == f else 0.0 for i in range(count)]).spectrum
                for f in range(count)]
        spectral_shape = self.solver.spectrum.shape
        mean_block = self.blocks.mean(axis=0)
        ridge = np.zeros(self.d)
        for a, part in enumerate(penalty.parts):
            if isinstance(part, RidgePart):
                ridge += w[a] * np.asarray(part.pattern, dtype=float).mean(axis=0)
        eig = np.zeros((*spectral_shape, self.d))
        for a, part in enumerate(penalty.parts):
            if isinstance(part, LaplacianPart):
                eig += w[a] * unit[part.factor][..., None] * penalty._columns[a][None, :]
        matrices = np.einsum("...c,cd->...cd", eig, np.eye(self.d)) + mean_block + np.diag(ridge)
        values, vectors = np.linalg.eigh(matrices)
        floor = 1e-300
        values = np.maximum(values, floor)
        self.k_inverse = np.einsum("...ij,...j,...kj->...ik", vectors, 1.0 / values, vectors)
        self.k_inverse_half = np.einsum("...ij,...j,...kj->...ik", vectors,
                                        values ** -0.5, vectors)
        self.unit_spectra = unit
        # log|K̃| over the full (not halved) spectrum: each factor's every eigenvalue
        shape = tuple(g.n for g in factors)
        full = np.zeros((*shape, self.d))
        for a, part in enumerate(penalty.parts):
            if isinstance(part, LaplacianPart):
                values_f = penalty.factor_spectrum(part.factor)[0]
                along = [1] * len(shape)
                along[part.factor] = shape[part.factor]
                full += w[a] * values_f.reshape(*along, 1) * penalty._columns[a]
        full_matrices = (np.einsum("...c,cd->...cd", full, np.eye(self.d)) + mean_block
                         + np.diag(ridge))
        _, logdets = np.linalg.slogdet(full_matrices.reshape(-1, self.d, self.d))
        self.logdet_k = float(np.sum(logdets))
        # S matches M's diagonal to H's
        diag_h = np.einsum("kcc->kc", self._local)
        diag_k = penalty.diagonal(w) - sum(
            w[a] * np.asarray(p.pattern, float) for a, p in enumerate(penalty.parts)
            if isinstance(p, RidgePart)) + ridge + np.diag(mean_block)
        self.scale = np.sqrt(np.maximum(diag_h, 1e-300) / np.maximum(diag_k, 1e-300))

    def _spectral(self, x: np.ndarray, matrices: np.ndarray) -> np.ndarray:
        """Q (⊕ matrices) Qᵀ x for x (K, d)."""
        solver = self.solver
        y = solver.forward(np.array(x, dtype=float).reshape(*solver.shape, self.d))
        y = np.einsum("...ij,...j->...i", matrices, y)
        return np.ascontiguousarray(solver.backward(y)).reshape(self.k, self.d)

    def k_solve(self, x: np.ndarray) -> np.ndarray:
        return self._spectral(x, self.k_inverse)

    def whiten(self, x: np.ndarray) -> np.ndarray:
        """C⁻¹ x with M = C Cᵀ (Kronecker: K̃^{-1/2} S⁻¹ x; Jacobi: L_k⁻¹ x per block)."""
        if self.kron:
            return self._spectral(x / self.scale, self.k_inverse_half)
        return np.einsum("kab,kb->ka", self._chol_inverse, x)

    def whiten_t(self, x: np.ndarray) -> np.ndarray:
        """C⁻ᵀ x."""
        if self.kron:
            return self._spectral(x, self.k_inverse_half) / self.scale
        return np.einsum("kba,kb->ka", self._chol_inverse, x)

    @property
    def _chol_inverse(self) -> np.ndarray:
        if not hasattr(self, "_chol_inv"):
            chol = np.linalg.cholesky(self._local)
            self._chol_inv = np.linalg.inv(chol)
            self._logdet_local = float(2 * np.sum(np.log(np.einsum("kcc->kc", chol))))
        return self._chol_inv

    def logdet_reference(self) -> float:
        if self.kron:
            return self.logdet_k + 2.0 * float(np.sum(np.log(self.scale)))
        _ = self._chol_inverse
        return self._logdet_local

    # -- solves --------------------------------------------------------------------------
    def preconditioner(self, r: np.ndarray) -> np.ndarray:
        block = np.einsum("kab,kb->ka", self.local_inverse, r)
        if not self.kron:
            return block
        apply = self.curvature.apply
        second = block + self.k_solve(r - apply(block))
        return second + np.einsum("kab,kb->ka", self.local_inverse, r - apply(second))

    def solve(self, b: np.ndarray) -> np.ndarray:
        result = pcg(self.curvature.apply, self.preconditioner, b, self.cg_rtol, CG_MAX)
        self.cg_iterations += result.iterations
        if not result.converged:
            raise ArithmeticError(
                f"conjugate gradients on the curvature matrix stopped at a relative residual "
                f"of {result.residual:.2e} after {result.iterations} steps (asked "
                f"{self.cg_rtol:.0e}): the matrix is singular or badly conditioned")
        return result.x

    def solves(self) -> np.ndarray:
        """H⁻¹ z for every probe (computed once)."""
        if self._solves is None:
            self._solves = np.array([self.solve(z) for z in self.z])
        return self._solves

    # -- the estimates ---------------------------------------------------------------
    def logdet(self) -> Estimate:
        from .curvature import Estimate

        def g(x: np.ndarray) -> np.ndarray:
            return self.whiten(self.curvature.apply(self.whiten_t(x)))

        samples = np.array([_lanczos_logdet(g, z, self.lanczos_steps) for z in self.z])
        value = self.logdet_reference() + float(samples.mean())
        stderr = float(samples.std(ddof=1) / math.sqrt(len(samples))) if len(samples) > 1 \
            else math.inf
        return Estimate(value, stderr, "slq" if self.kron else "slq-jacobi")

    def traces(self) -> Estimate:
        from .curvature import Estimate

        penalty, w = self.penalty, self.weights
        solves = self.solves()
        parts = len(penalty.parts)
        samples = np.zeros((self.probes, parts))
        exact = np.zeros(parts)
        references = [self.kron and self._reference_trace(a) for a in range(parts)]
        for j, (z, y) in enumerate(zip(self.z, solves, strict=True)):
            diff = y - self.k_solve(z) if self.kron else y
            for a in range(parts):
                samples[j, a] = float(np.sum(penalty.apply_part(a, z)
                                             * (diff if references[a] is not False else y)))
        for a in range(parts):
            exact[a] = references[a] if references[a] is not False else 0.0
        value = exact + samples.mean(axis=0)
        stderr = samples.std(axis=0, ddof=1) / math.sqrt(self.probes)
        edf = penalty.size - float(w @ value)
        edf_samples = samples @ w
        edf_se = float(edf_samples.std(ddof=1) / math.sqrt(self.probes))
        method = "hutchinson-cv" if self.kron else "hutchinson-jacobi"
        return Estimate(np.append(value, edf), np.append(stderr, edf_se), method)

    def _reference_trace(self, a: int) -> float | bool:
        """tr(K̃⁻¹S_a), exact from the spectrum; False for a ridge that varies over strata."""
        part = self.penalty.parts[a]
        spectral_diag = np.einsum("...cc->...c", self.k_inverse)
        multiplicity = self._multiplicity()
        if isinstance(part, LaplacianPart):
            columns = self.penalty._columns[a]
            return float(np.sum(multiplicity[..., None] * self.unit_spectra[part.factor][..., None]
                                * spectral_diag * columns))
        pattern = np.asarray(part.pattern, dtype=float)
        if not np.all(pattern == pattern[:1]):
            return False
        return float(np.sum(multiplicity[..., None] * spectral_diag * pattern[0]))

    def _multiplicity(self) -> np.ndarray:
        """How many product eigenvalues each spectral entry stands for (rfftn halves the
        last transformed cycle: a conjugate pair is stored once)."""
        solver = self.solver
        out = np.ones(solver.spectrum.shape)
        if solver.fft_axes:
            i = solver.fft_axes[-1]
            n = solver.shape[i]
            count = np.full(n // 2 + 1, 2.0)
            count[0] = 1.0
            if n % 2 == 0:
                count[-1] = 1.0
            along = [1] * out.ndim
            along[i] = len(count)
            out = out * count.reshape(along)
        return out

    def inverse_blocks(self) -> Estimate:
        from .curvature import Estimate

        solves = self.solves()
        reference = self._reference_blocks() if self.kron else None
        samples = np.empty((self.probes, self.k, self.d, self.d))
        for j, (z, y) in enumerate(zip(self.z, solves, strict=True)):
            diff = y - self.k_solve(z) if reference is not None else y
            samples[j] = diff[:, :, None] * z[:, None, :]
        samples = 0.5 * (samples + samples.transpose(0, 1, 3, 2))
        mean = samples.mean(axis=0)
        stderr = samples.std(axis=0, ddof=1) / math.sqrt(self.probes)
        value = mean + (reference if reference is not None else 0.0)
        return Estimate(value, stderr, "monte-carlo" if reference is not None
                        else "monte-carlo-jacobi")

    def _reference_blocks(self) -> np.ndarray | None:
        """The stratum blocks of K̃⁻¹ = Q (⊕ M_i⁻¹) Qᵀ: Σ_i Q_{ki}² M_i⁻¹, axis by axis;
        None when some axis is too long for its squared basis."""
        solver = self.solver
        weights = []
        for i, axis in enumerate(solver.axes):
            if axis.kind == "fft":
                n = axis.n
                halved = solver.fft_axes and i == solver.fft_axes[-1]
                if halved:
                    count = np.full(n // 2 + 1, 2.0)
                    count[0] = 1.0
                    if n % 2 == 0:
                        count[-1] = 1.0
                else:
                    count = np.ones(n)
                weights.append(np.tile(count / n, (n, 1)))
            elif axis.kind == "dct":
                if axis.n > 4000:
                    return None
                n = axis.n
                basis = np.cos(np.pi * np.outer(np.arange(n) + 0.5, np.arange(n)) / n)
                basis *= np.sqrt(2.0 / n)
                basis[:, 0] = 1.0 / np.sqrt(n)
                weights.append(basis ** 2)
            elif axis.kind == "dense":
                weights.append(axis.basis ** 2)
            else:
                return None
        out = self.k_inverse
        for i, weight in enumerate(weights):
            out = np.moveaxis(np.tensordot(weight, out, axes=([1], [i])), 0, i)
        return np.ascontiguousarray(out).reshape(self.k, self.d, self.d)


def _lanczos_logdet(apply, z: np.ndarray, steps: int, tol: float = 1e-10) -> float:
    """zᵀ log(G) z by Lanczos quadrature (G symmetric positive definite)."""
    norm = float(np.linalg.norm(z))
    q = z / norm
    q_prev = np.zeros_like(q)
    alphas: list[float] = []
    betas: list[float] = []
    beta = 0.0
    previous = None
    for step in range(steps):
        v = apply(q) - beta * q_prev
        alpha = float(np.sum(q * v))
        v -= alpha * q
        alphas.append(alpha)
        beta = float(np.linalg.norm(v))
        if step % 5 == 4 or beta < 1e-14:
            estimate = _quadrature(alphas, betas)
            if beta < 1e-14 or (previous is not None
                                and abs(estimate - previous) <= tol * max(1.0, abs(estimate))):
                return norm * norm * estimate
            previous = estimate
        betas.append(beta)
        q_prev, q = q, v / beta
    return norm * norm * _quadrature(alphas, betas[: len(alphas) - 1])


def _quadrature(alphas: list[float], betas: list[float]) -> float:
    t = np.diag(alphas) + np.diag(betas[: len(alphas) - 1], 1) + np.diag(betas[: len(alphas) - 1], -1)
    theta, vectors = np.linalg.eigh(t)
    return float(np.sum(vectors[0] ** 2 * np.log(np.maximum(theta, 1e-300))))
