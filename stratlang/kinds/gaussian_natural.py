"""The ``gaussian`` loss of every stratum in its free coordinates: value, gradient,
Hessian and the Hessian's change, for the Laplace approximation (weights chosen by
``auto``, standard errors).

θ_k = (S, ν) = (Σ⁻¹, Σ⁻¹μ) is stored as m + 1 rows of m columns (d = (m + 1)·m entries),
but only S's symmetric part is free. The Laplace approximation integrates over the free
coordinates ψ_k (f = m(m + 1)/2 + m of them): S's diagonal entries, its off-diagonal ones
times √2, and ν — the stored θ_k = Q ψ_k, Q (d × f) with orthonormal columns (an
off-diagonal ψ sets S_ij = S_ji = ψ/√2). Being an isometry, Q turns the Laplacian penalty
on the stored entries, L ⊗ I_d, into L ⊗ QᵀQ = L ⊗ I_f, and a ridge's diagonal pattern
into a diagonal one (an off-diagonal pair's mean): the penalty keeps its Kronecker form,
so log|P|₊ stays exact from the factors' eigenvalues and the engine needs no change.
Counting S_ij once (vech S, as the CVXPY form's S = Sᵀ) instead changes log|H| and log|P|₊
by constants independent of the weights (the Jacobian of a fixed linear map): the same
chosen weights and the same posterior of θ.

Per stratum with weight total c, weighted sum t and scatter M of its responses, the loss
(twice the negative log-likelihood less constants) is

    ℓ = −c log det S + tr(M S) − 2 tᵀν + c νᵀS⁻¹ν,

and with A = S⁻¹, u = Aν = μ, and E_a the symmetric unit matrices of S's coordinates:

    ∂ℓ/∂S = −cA + M − c uuᵀ,   ∂ℓ/∂ν = −2t + 2cu,
    ∂²ℓ/∂S_a∂S_b = c tr(A E_a A E_b) + 2c uᵀE_a A E_b u   (log det, then matrix_frac),
    ∂²ℓ/∂S_a∂ν = −2c A E_a u,   ∂²ℓ/∂ν² = 2cA.

The Hessian's change along a direction (the third derivatives the REML gradient needs) is
the complex-step derivative of these formulas in (A, u) along their first-order changes
dA = −A dS A, du = A(dν − dS u): exact to rounding. A stratum without records has no loss
(zero blocks), and the loss is +∞ where a stratum with records has S not positive definite.
"""

from __future__ import annotations

import math

import numpy as np

COMPLEX_STEP = 1e-30  # the complex step's size: far below rounding, far above underflow


def free_basis(m: int) -> np.ndarray:
    """Q (d × f): the stored θ of one stratum (row-major (m + 1) × m) = Q ψ."""
    p = m * (m + 1) // 2
    basis = np.zeros(((m + 1) * m, p + m))
    a = 0
    for i in range(m):
        for j in range(i, m):
            if i == j:
                basis[i * m + i, a] = 1.0
            else:
                basis[i * m + j, a] = basis[j * m + i, a] = 1.0 / math.sqrt(2.0)
            a += 1
    basis[m * m:, p:] = np.eye(m)
    return basis


class GaussianStrata:
    """The summed gaussian loss of every stratum as a function of ψ (K, f)."""

    def __init__(self, count: np.ndarray, total: np.ndarray, scatter: np.ndarray):
        self.count = np.asarray(count, dtype=float)
        self.total = np.asarray(total, dtype=float)
        self.scatter = np.asarray(scatter, dtype=float)
        self.k, self.m = self.total.shape
        self.basis = free_basis(self.m)
        self.p = self.m * (self.m + 1) // 2
        # E_a (p, m, m): the symmetric matrix of S's coordinate a
        self.units = self.basis[:self.m * self.m, :self.p].T.reshape(self.p, self.m, self.m)
        self.data = self.count > 0

    @property
    def size(self) -> int:
        """f: the free coordinates of one stratum."""
        return int(self.basis.shape[1])

    # ---- coordinates -----------------------------------------------------------------
    def to_free(self, theta: np.ndarray) -> np.ndarray:
        """ψ (K, f) of a stored θ (K, m + 1, m) or (K, d); S's symmetric part."""
        out: np.ndarray = np.asarray(theta, dtype=float).reshape(self.k, -1) @ self.basis
        return out

    def to_stored(self, psi: np.ndarray) -> np.ndarray:
        """θ (K, m + 1, m) of ψ (K, f)."""
        return (psi @ self.basis.T).reshape(self.k, self.m + 1, self.m)

    def _split(self, psi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        theta = self.to_stored(psi)
        return theta[:, :self.m, :], theta[:, self.m, :]

    def _inverse(self, prec: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(A = S⁻¹, log det S) of the strata with records; None when some S there is not
        positive definite."""
        try:
            chol = np.linalg.cholesky(prec[self.data])
        except np.linalg.LinAlgError:
            return None
        inverse = np.zeros_like(prec)
        eye = np.broadcast_to(np.eye(self.m), chol.shape)
        half = np.linalg.solve(chol, eye)  # L⁻¹
        inverse[self.data] = np.einsum("kji,kjl->kil", half, half)  # L⁻ᵀL⁻¹
        logdet = np.zeros(self.k)
        logdet[self.data] = 2.0 * np.sum(np.log(np.einsum("kii->ki", chol)), axis=1)
        return inverse, logdet

    # ---- the loss and its derivatives ------------------------------------------------
    def value(self, psi: np.ndarray) -> float:
        """ℓ(ψ); +∞ outside the domain."""
        prec, nu = self._split(psi)
        got = self._inverse(prec)
        if got is None:
            return math.inf
        inverse, logdet = got
        mean = np.einsum("kij,kj->ki", inverse, nu)
        terms = (-self.count * logdet + np.einsum("kij,kji->k", self.scatter, prec)
                 - 2.0 * np.einsum("ki,ki->k", self.total, nu)
                 + self.count * np.einsum("ki,ki->k", nu, mean))
        return float(np.sum(terms[self.data]))

    def _moments(self, prec: np.ndarray, nu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(A = S⁻¹, u = Aν) where the derivatives are asked for: S must be inside the
        domain there (a caller's bug otherwise, not the data's)."""
        got = self._inverse(prec)
        if got is None:
            raise ValueError("a stratum's precision S is not positive definite")
        inverse = got[0]
        return inverse, np.einsum("kij,kj->ki", inverse, nu)

    def derivatives(self, psi: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """(ℓ, ∇ℓ (K, f), ∇²ℓ's stratum blocks (K, f, f)) at ψ inside the domain."""
        prec, nu = self._split(psi)
        inverse, mean = self._moments(prec, nu)
        c = self.count
        grad_s = (-c[:, None, None] * inverse + self.scatter
                  - c[:, None, None] * np.einsum("ki,kj->kij", mean, mean))
        grad_nu = -2.0 * self.total + 2.0 * c[:, None] * mean
        stored = np.concatenate([grad_s.reshape(self.k, -1), grad_nu], axis=1)
        stored[~self.data] = 0.0
        return self.value(psi), stored @ self.basis, self._hessian(inverse, mean)

    def _hessian(self, inverse: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """The blocks (K, f, f) at A = ``inverse``, u = ``mean`` (real or complex)."""
        units, c, p = self.units, self.count, self.p
        a_e = np.einsum("kij,ajl->kail", inverse, units)  # A E_a
        e_u = np.einsum("aij,kj->kai", units, mean)  # E_a u
        ss = (np.einsum("kaij,kbji->kab", a_e, a_e)
              + 2.0 * np.einsum("kai,kij,kbj->kab", e_u, inverse, e_u))
        sn = -2.0 * np.einsum("kij,kaj->kai", inverse, e_u)  # [k, a, j]: (A E_a u)_j
        out = np.zeros((self.k, self.size, self.size), dtype=ss.dtype)
        out[:, :p, :p] = ss
        out[:, :p, p:] = sn
        out[:, p:, :p] = np.transpose(sn, (0, 2, 1))
        out[:, p:, p:] = 2.0 * inverse
        return c[:, None, None] * out

    def hessian_change(self, psi: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """d/dt ∇²ℓ(ψ + t·direction) at t = 0, (K, f, f)."""
        prec, nu = self._split(psi)
        d_prec, d_nu = self._split(direction)
        inverse, mean = self._moments(prec, nu)
        d_inverse = -np.einsum("kij,kjl,klr->kir", inverse, d_prec, inverse)
        d_mean = np.einsum("kij,kj->ki", inverse,
                           d_nu - np.einsum("kij,kj->ki", d_prec, mean))
        h = COMPLEX_STEP
        moved = self._hessian(inverse + 1j * h * d_inverse, mean + 1j * h * d_mean)
        return np.asarray(moved.imag / h)
