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
:data:`EXACT_LIMIT` coefficients K·d; beyond, exact again ("exact-spectral",
:mod:`solvers.spectral`) when every stratum's block is the same and every ridge uniform
(H is then a Kronecker sum, diagonal in the factors' eigenbases: decided exactly by
:func:`~solvers.spectral.uniform_curvature`), and stochastic otherwise
(:mod:`solvers.stochastic`: "slq" for log|H|, "hutchinson-cv" for traces, "monte-carlo"
for the blocks). ``method`` may also be "exact", "spectral" or "stochastic" outright.

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
from .penalty import LogDet, QuadraticPenalty, Weights
from .spectral import KroneckerReference, uniform_curvature
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
            method = ("exact" if penalty.free_size <= EXACT_LIMIT
                      else "spectral" if uniform_curvature(self.blocks, penalty)
                      else "stochastic")
        if method not in ("exact", "spectral", "stochastic"):
            raise ValueError(f"method must be 'auto', 'exact', 'spectral' or 'stochastic', "
                             f"not {method!r}")
        self.reparametrization = penalty.reparametrization
        if self.reparametrization is not None and method != "exact":
            raise ValueError(
                f"coefficients held constant along a factor or present in some strata only "
                f"are handled by an exact factorization, up to {EXACT_LIMIT:,} free coefficients; this model has "
                f"{penalty.free_size:,}")
        if method == "spectral" and not uniform_curvature(self.blocks, penalty):
            raise ValueError("the 'spectral' method needs the same curvature block on every "
                             "stratum, every ridge the same on every stratum and every factor "
                             "diagonalizable")
        self.method = method
        self.seed = seed
        self.options = options
        self._factor: SparseCholesky | None = None
        self._stochastic: StochasticCurvature | None = None
        self._spectral: KroneckerReference | None = None
        self._cache: dict[str, object] = {}

    # -- the matrix ------------------------------------------------------------------
    def apply(self, x: np.ndarray) -> np.ndarray:
        """H X for X of shape (K, d)."""
        return np.einsum("kab,kb->ka", self.blocks, x) + self.penalty.apply(self.weights, x)

    def matrix(self) -> sp.csr_matrix:
        """H as a sparse (K·d × K·d) matrix (TᵀHT, p × p, with a reparametrization), every
        stratum's (d × d) block stored, zeros included (entries of H⁻¹ off the factor's
        pattern are solved for: SparseCholesky.inverse_entries)."""
        rows, cols, values, size = self._block_triplets(self.blocks)
        penalty = sp.coo_matrix(self.penalty.matrix(self.weights)
                                if self.reparametrization is None
                                else self.penalty.free_matrix(self.weights))
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

    @property
    def spectral(self) -> KroneckerReference:
        """H as a Kronecker sum (method "spectral"): checked definite on first use."""
        if self._spectral is None:
            reference = KroneckerReference(self.penalty, self.weights, self.blocks[0])
            reference.check_definite()
            self._spectral = reference
        return self._spectral

    def spectral_theta(self, theta: np.ndarray, coordinates: np.ndarray | None = None
                       ) -> np.ndarray:
        """θ in the eigenbasis (method "spectral"), kept for the θ last asked (or given
        with its ``coordinates``, when the caller has them already)."""
        if self._cache.get("theta") is not theta:
            self._cache["theta"] = theta
            self._cache["coordinates"] = (self.spectral.forward(theta) if coordinates is None
                                          else coordinates)
        return self._cache["coordinates"]  # type: ignore[return-value]

    def quadratics(self, theta: np.ndarray) -> np.ndarray:
        """½ θᵀS_aθ for every part (with the spectral method, in the eigenbasis: no
        Laplacian products)."""
        if self.method != "spectral":
            return self.penalty.quadratics(theta)
        reference, coordinates = self.spectral, self.spectral_theta(theta)
        applied = np.stack([reference.part_times(a, coordinates)
                            for a in range(len(self.penalty.parts))])
        return 0.5 * reference.gram(applied, coordinates[None])[:, 0]

    def penalty_logdet(self) -> LogDet:
        """log|P(w)|₊ at these weights (computed once)."""
        if "pdet" not in self._cache:
            self._cache["pdet"] = self.penalty.pseudo_logdet(self.weights)
        return self._cache["pdet"]  # type: ignore[return-value]

    def solve(self, b: np.ndarray) -> np.ndarray:
        """H⁻¹ B for B of shape (K, d) (exact factor or spectral solve, or preconditioned
        CG)."""
        t = self.reparametrization
        if t is not None:
            return t.lift(self.factor.solve(t.restrict(b)))
        if self.method == "exact":
            return self.factor.solve(b.reshape(-1)).reshape(b.shape)
        if self.method == "spectral":
            return self.spectral.solve(b[:, None, :])[:, 0, :]
        return self.stochastic.solve(b)

    # -- the quantities --------------------------------------------------------------
    def logdet(self) -> Estimate:
        if self.method == "exact":
            return Estimate(self.factor.logdet(), 0.0, "exact-cholesky")
        if self.method == "spectral":
            return Estimate(self.spectral.logdet, 0.0, "exact-spectral")
        return self.stochastic.logdet()

    def traces(self) -> Estimate:
        """value (A + 1,): tr(H⁻¹S_a) for each part a, then tr(H⁻¹B) = K·d − Σ w_a tr(H⁻¹S_a)
        (computed once)."""
        if "traces" not in self._cache:
            self._cache["traces"] = self._traces()
        return self._cache["traces"]  # type: ignore[return-value]

    def _traces(self) -> Estimate:
        if self.method == "exact":
            parts = np.array([self.factor.trace_inverse_times(self.penalty.free_part_matrix(a))
                              for a in range(len(self.penalty.parts))])
            edf = self.penalty.free_size - float(self.weights @ parts)
            return Estimate(np.append(parts, edf), np.zeros(len(parts) + 1), "exact-cholesky")
        if self.method == "spectral":
            parts = np.array([self.spectral.trace(a) for a in range(len(self.penalty.parts))],
                             dtype=float)
            edf = self.penalty.size - float(self.weights @ parts)
            return Estimate(np.append(parts, edf), np.zeros(len(parts) + 1), "exact-spectral")
        return self.stochastic.traces()

    def trace_pairs(self) -> Estimate | None:
        """tr(H⁻¹S_aH⁻¹S_b) for every pair of parts, (A, A): exact with the spectral
        method (for the criterion's exact Hessian in log w), None otherwise."""
        if self.method != "spectral":
            return None
        pairs = self.spectral.trace_pairs()
        return Estimate(pairs, np.zeros_like(pairs), "exact-spectral")

    def block_matrix(self, blocks: np.ndarray) -> sp.csr_matrix:
        """blockdiag(blocks) for (K, d, d) blocks, in H's coordinates (Tᵀ blockdiag T with
        a reparametrization)."""
        rows, cols, values, size = self._block_triplets(blocks)
        return sp.csr_matrix((values, (rows, cols)), shape=(size, size))

    def _block_triplets(self, blocks: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """(rows, columns, values, size) of blockdiag(blocks) in H's coordinates, every
        entry of every block listed (zeros too: they make the factor's pattern)."""
        t = self.reparametrization
        if t is not None:
            rows, cols, values = t.block_triplets(blocks)
            return rows, cols, values, t.size
        k, d = self.penalty.k, self.penalty.d
        base = (np.arange(k) * d)[:, None, None]
        rows = np.broadcast_to(base + np.arange(d)[None, :, None], (k, d, d)).reshape(-1)
        cols = np.broadcast_to(base + np.arange(d)[None, None, :], (k, d, d)).reshape(-1)
        return rows, cols, np.asarray(blocks, dtype=float).reshape(-1), k * d

    def trace_products(self, matrices: list[sp.spmatrix]) -> np.ndarray | None:
        """tr(H⁻¹M_aH⁻¹M_b) for every pair of symmetric matrices M_a given in H's
        coordinates (A, A), exact where the factor is dense (H⁻¹ at hand: one sparse ×
        dense product per matrix); None otherwise (the sparse factor's selected inverse
        does not reach these)."""
        if self.method != "exact":
            return None
        inverse = self.factor.inverse()
        if inverse is None:
            return None
        # tr(H⁻¹M_aH⁻¹M_b) = ⟨M_aH⁻¹, (M_bH⁻¹)ᵀ⟩ = ⟨M_aH⁻¹, H⁻¹M_b⟩: both kept contiguous
        # for one BLAS dot per pair
        products = [np.asarray(sp.csr_matrix(m) @ inverse) for m in matrices]  # M_a H⁻¹
        transposed = [np.ascontiguousarray(x.T).reshape(-1) for x in products]
        count = len(products)
        out = np.zeros((count, count))
        for a in range(count):
            for b in range(a, count):
                out[a, b] = out[b, a] = float(np.dot(products[a].reshape(-1), transposed[b]))
        return out

    def inverse_blocks(self) -> Estimate:
        """value (K, d, d): the diagonal blocks of H⁻¹ (computed once where exact)."""
        if self.method == "stochastic":
            return self._inverse_blocks()
        if "blocks" not in self._cache:
            self._cache["blocks"] = self._inverse_blocks()
        return self._cache["blocks"]  # type: ignore[return-value]

    def _inverse_blocks(self) -> Estimate:
        if self.reparametrization is not None:
            blocks = self.reparametrization.inverse_blocks(self.factor.inverse_entries)
            return Estimate(blocks, np.zeros_like(blocks), "exact-cholesky")
        if self.method == "exact":
            blocks = self.factor.inverse_blocks(self.penalty.d)
            return Estimate(blocks, np.zeros_like(blocks), "exact-cholesky")
        if self.method == "spectral":
            exact = self.spectral.blocks()
            if exact is not None:
                return Estimate(exact, np.zeros_like(exact), "exact-spectral")
        return self.stochastic.inverse_blocks()

    def block_trace(self, blocks: np.ndarray) -> Estimate:
        """Σ_k tr((H⁻¹)_kk M_k) for M (K, d, d)."""
        inverse = self.inverse_blocks()
        value = float(np.einsum("kab,kba->", inverse.value, blocks))
        stderr = float(np.sqrt(np.sum((np.asarray(inverse.stderr) * blocks) ** 2)))
        return Estimate(value, stderr, inverse.method)
