"""The curvature of the Laplace approximation, H(w) = blockdiag_k(B_k) + P(w), and the
quantities REML and the uncertainty need from it:

* :meth:`LaplaceCurvature.logdet` — log|H|;
* :meth:`LaplaceCurvature.traces` — tr(H⁻¹S_a) for every penalty part (unweighted S_a),
  and tr(H⁻¹B) (the effective degrees of freedom, = K·d − Σ_a w_a tr(H⁻¹S_a));
* :meth:`LaplaceCurvature.inverse_blocks` — the K stratum (d × d) blocks of H⁻¹: the
  posterior covariance of each stratum's θ, and x_iᵀ(H⁻¹)_kk x_i a prediction's variance
  on the link scale;
* :meth:`LaplaceCurvature.block_trace` — Σ_k tr((H⁻¹)_kk M_k) for given (K, d, d) blocks
  (the third-derivative term of the REML gradient).

Each returns an :class:`Estimate` with ``value``, ``stderr`` (0 when exact) and
``method``. ``method="auto"`` is exact ("exact-cholesky": a dense or sparse Cholesky
factorization with selected inversion, :mod:`solvers.cholesky`) up to
:data:`EXACT_LIMIT` coefficients K·d, and stochastic beyond (:mod:`solvers.stochastic`:
"slq" for log|H|, "hutch++" for traces, "monte-carlo" for the blocks).

With a reparametrization θ = Tφ on the penalty (T orthonormal, :mod:`solvers.reparametrize`:
coefficients held constant along factors), everything is taken in φ: H_φ = TᵀHT, log|H_φ|,
tr(H_φ⁻¹TᵀS_aT), tr(H_φ⁻¹Tᵀ∇²ℓT) = p − Σ w_a tr(H_φ⁻¹TᵀS_aT), and in θ's coordinates
the blocks of T H_φ⁻¹ Tᵀ (θ's posterior covariance, up to τ) and ``solve`` B ↦ T H_φ⁻¹
TᵀB, so that callers keep working with (K, d) arrays. Exact only, up to
:data:`EXACT_LIMIT` free coordinates p.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .cholesky import SPARSE_LIMIT, SparseCholesky
from .estimate import Estimate
from .penalty import QuadraticPenalty, Weights
from .stochastic import StochasticCurvature

EXACT_LIMIT = SPARSE_LIMIT  # K·d up to which log|H|, traces and blocks are exact


class LaplaceCurvature:
    """H = blockdiag(blocks) + P(w); ``blocks`` (K, d, d) the loss's Hessian per stratum."""

    def __init__(self, blocks: np.ndarray, penalty: QuadraticPenalty, weights: Weights,
                 method: str = "auto", seed: int = 0, **options: float):
        self.blocks = np.asarray(blocks, dtype=float)
        self.penalty = penalty
        self.weights = np.asarray(weights, dtype=float)
        k, d = penalty.k, penalty.d
        if self.blocks.shape != (k, d, d):
            raise ValueError(f"blocks of shape {self.blocks.shape}, not (K, d, d) = "
                             f"({k}, {d}, {d})")
        if method == "auto":
            method = "exact" if penalty.free_size <= EXACT_LIMIT else "stochastic"
        if method not in ("exact", "stochastic"):
            raise ValueError(f"method must be 'auto', 'exact' or 'stochastic', not {method!r}")
        self.reparametrization = penalty.reparametrization
        if self.reparametrization is not None and method == "stochastic":
            raise ValueError(
                f"coefficients held constant along a factor or present in some strata only "
                f"are handled by an exact factorization, up to {EXACT_LIMIT:,} free coefficients; this model has "
                f"{penalty.free_size:,}")
        self.method = method
        self.seed = seed
        self.options = options
        self._factor: SparseCholesky | None = None
        self._stochastic: StochasticCurvature | None = None

    # -- the matrix ------------------------------------------------------------------
    def apply(self, x: np.ndarray) -> np.ndarray:
        """H X for X of shape (K, d)."""
        return np.einsum("kab,kb->ka", self.blocks, x) + self.penalty.apply(self.weights, x)

    def matrix(self) -> sp.csr_matrix:
        """H as a sparse (K·d × K·d) matrix (TᵀHT, p × p, with a reparametrization), every
        stratum's (d × d) block stored, zeros included (entries of H⁻¹ off the factor's
        pattern are solved for: SparseCholesky.inverse_entries)."""
        t = self.reparametrization
        if t is not None:
            rows, cols, values = t.block_triplets(self.blocks)
            penalty = sp.coo_matrix(self.penalty.free_matrix(self.weights))
            size = t.size
        else:
            k, d = self.penalty.k, self.penalty.d
            base = (np.arange(k) * d)[:, None, None]
            rows = np.broadcast_to(base + np.arange(d)[None, :, None], (k, d, d)).reshape(-1)
            cols = np.broadcast_to(base + np.arange(d)[None, None, :], (k, d, d)).reshape(-1)
            values = self.blocks.reshape(-1)
            penalty = sp.coo_matrix(self.penalty.matrix(self.weights))
            size = k * d
        # (duplicates are summed, explicit zeros kept)
        return sp.csr_matrix((np.concatenate([values, penalty.data]),
                              (np.concatenate([rows, penalty.row]),
                               np.concatenate([cols, penalty.col]))), shape=(size, size))

    @property
    def factor(self) -> SparseCholesky:
        if self._factor is None:
            self._factor = SparseCholesky(self.matrix())
        return self._factor

    @property
    def stochastic(self) -> StochasticCurvature:
        if self._stochastic is None:
            self._stochastic = StochasticCurvature(self.blocks, self.penalty, self.weights,
                                                   seed=self.seed, **self.options)
        return self._stochastic

    def solve(self, b: np.ndarray) -> np.ndarray:
        """H⁻¹ B for B of shape (K, d) (exact factor, or preconditioned CG)."""
        t = self.reparametrization
        if t is not None:
            return t.lift(self.factor.solve(t.restrict(b)))
        if self.method == "exact":
            return self.factor.solve(b.reshape(-1)).reshape(b.shape)
        return self.stochastic.solve(b)

    # -- the quantities --------------------------------------------------------------
    def logdet(self) -> Estimate:
        if self.method == "exact":
            return Estimate(self.factor.logdet(), 0.0, "exact-cholesky")
        return self.stochastic.logdet()

    def traces(self) -> Estimate:
        """value (A + 1,): tr(H⁻¹S_a) for each part a, then tr(H⁻¹B) = K·d − Σ w_a tr(H⁻¹S_a)."""
        if self.method == "exact":
            parts = np.array([self.factor.trace_inverse_times(self.penalty.free_part_matrix(a))
                              for a in range(len(self.penalty.parts))])
            edf = self.penalty.free_size - float(self.weights @ parts)
            return Estimate(np.append(parts, edf), np.zeros(len(parts) + 1), "exact-cholesky")
        return self.stochastic.traces()

    def inverse_blocks(self) -> Estimate:
        """value (K, d, d): the diagonal blocks of H⁻¹."""
        if self.reparametrization is not None:
            blocks = self.reparametrization.inverse_blocks(self.factor.inverse_entries)
            return Estimate(blocks, np.zeros_like(blocks), "exact-cholesky")
        if self.method == "exact":
            blocks = self.factor.inverse_blocks(self.penalty.d)
            return Estimate(blocks, np.zeros_like(blocks), "exact-cholesky")
        return self.stochastic.inverse_blocks()

    def block_trace(self, blocks: np.ndarray) -> Estimate:
        """Σ_k tr((H⁻¹)_kk M_k) for M (K, d, d)."""
        inverse = self.inverse_blocks()
        value = float(np.einsum("kab,kba->", inverse.value, blocks))
        stderr = float(np.sqrt(np.sum((np.asarray(inverse.stderr) * blocks) ** 2)))
        return Estimate(value, stderr, inverse.method)
