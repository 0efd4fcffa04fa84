"""A dense brute-force reference for the Laplace approximation of the ``gaussian`` loss
(weights chosen by REML, standard errors), for K·d up to a few hundred.

Independent of stratlang's curvature code (kinds.gaussian_natural, backends.
free_coordinates, solvers.*): the objective F = Σ_i w_i ℓ_i(θ) + ½ θᵀPθ is summed record
by record, with P a dense matrix over the stored entries (np.kron of the Laplacians);
θ = Jφ for free coordinates φ built here (``vech``: S_ij = S_ji = φ; ``isometric``: each
off-diagonal φ times 1/√2); the gradient is the matrix calculus of each record's
−log det S + yᵀSy − 2yᵀν + νᵀS⁻¹ν, and the Hessian is the complex-step derivative of that
gradient (numerical, exact to rounding). The fit is dense damped Newton; log|P|₊ from
eigvalsh. The loss is twice the NLL (τ = 2): the posterior covariance of φ is 2 H⁻¹ and
REML's V = F/2 + ½ log|H| − ½ log|JᵀPJ|₊.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.optimize

COMPLEX_STEP = 1e-30


def coordinates(m: int, kind: str) -> np.ndarray:
    """J₁ (stored d × free f) of one stratum: S's upper triangle row by row, then ν."""
    d = (m + 1) * m
    columns = []
    for i in range(m):
        for j in range(i, m):
            column = np.zeros(d)
            scale = 1.0 if i == j or kind == "vech" else 1.0 / math.sqrt(2.0)
            column[i * m + j] = column[j * m + i] = scale
            columns.append(column)
    for j in range(m):
        column = np.zeros(d)
        column[m * m + j] = 1.0
        columns.append(column)
    return np.column_stack(columns)


class DenseGaussian:
    """Records y (N, m) in strata z (N,) of K; ``parts``: dense (K·d × K·d) penalty
    matrices over the stored entries, one per weight."""

    def __init__(self, y: np.ndarray, z: np.ndarray, k: int, parts: list[np.ndarray],
                 weight: np.ndarray | None = None, kind: str = "isometric"):
        self.y, self.z, self.k = np.asarray(y, float), np.asarray(z), k
        self.m = self.y.shape[1]
        self.weight = np.ones(len(self.z)) if weight is None else np.asarray(weight, float)
        self.parts = parts
        self.d = (self.m + 1) * self.m
        self.one = coordinates(self.m, kind)
        self.jacobian = np.kron(np.eye(k), self.one)  # θ = Jφ
        self.f = self.one.shape[1]
        self.theta: np.ndarray | None = None  # the last fit, φ

    @staticmethod
    def laplacian_part(laplacian: np.ndarray, d: int) -> np.ndarray:
        return np.kron(laplacian, np.eye(d))

    def ridge_part(self, rows: list[int]) -> np.ndarray:
        """sum_squares on the stored rows ``rows`` of every stratum."""
        mask = np.zeros((self.m + 1, self.m))
        mask[rows] = 1.0
        return np.diag(np.tile(mask.reshape(-1), self.k))

    def penalty(self, w) -> np.ndarray:
        return sum(wa * p for wa, p in zip(w, self.parts, strict=True))

    def stored(self, phi: np.ndarray) -> np.ndarray:
        return (self.jacobian @ phi).reshape(self.k, self.m + 1, self.m)

    # ---- F, its gradient and Hessian -------------------------------------------------
    def loss(self, phi: np.ndarray) -> float:
        theta = self.stored(phi)
        total = 0.0
        for i in range(len(self.z)):
            s, nu, y = theta[self.z[i], :self.m], theta[self.z[i], self.m], self.y[i]
            sign, logdet = np.linalg.slogdet(s)
            if sign <= 0:
                return math.inf
            total += self.weight[i] * (-logdet + y @ s @ y - 2 * y @ nu
                                       + nu @ np.linalg.solve(s, nu))
        return total

    def objective(self, phi: np.ndarray, w) -> float:
        theta = self.jacobian @ phi
        return self.loss(phi) + 0.5 * theta @ self.penalty(w) @ theta

    def gradient(self, phi: np.ndarray, w) -> np.ndarray:
        """∇F (complex-analytic in φ)."""
        theta = self.stored(phi)
        stored = np.zeros((self.k, self.m + 1, self.m), dtype=theta.dtype)
        for i in range(len(self.z)):
            k, y = self.z[i], self.y[i]
            s, nu = theta[k, :self.m], theta[k, self.m]
            inverse = np.linalg.inv(s)
            u = inverse @ nu
            stored[k, :self.m] += self.weight[i] * (-inverse.T + np.outer(y, y)
                                                    - np.outer(u, u).T)
            stored[k, self.m] += self.weight[i] * (-2 * y + 2 * u)
        full = self.jacobian @ phi
        return self.jacobian.T @ (stored.reshape(-1) + self.penalty(w) @ full)

    def hessian(self, phi: np.ndarray, w) -> np.ndarray:
        """∇²F by the complex step on the gradient."""
        size = len(phi)
        out = np.zeros((size, size))
        for j in range(size):
            step = np.zeros(size, dtype=complex)
            step[j] = 1j * COMPLEX_STEP
            out[:, j] = self.gradient(phi + step, w).imag / COMPLEX_STEP
        return 0.5 * (out + out.T)

    def loss_hessian(self, phi: np.ndarray) -> np.ndarray:
        return self.hessian(phi, [0.0] * len(self.parts))

    # ---- the fit and the Laplace approximation ---------------------------------------
    def free(self, theta: np.ndarray) -> np.ndarray:
        """φ of a stored θ (K, m + 1, m) (least squares: J has full column rank)."""
        return np.linalg.lstsq(self.jacobian, np.asarray(theta, float).reshape(-1),
                               rcond=None)[0]

    def fit(self, w, start: np.ndarray) -> np.ndarray:
        """φ̂(w) by damped dense Newton to machine precision, from φ ``start``."""
        phi = np.array(start, float)
        for _ in range(100):
            value = self.objective(phi, w)
            g = self.gradient(phi, w)
            step = -np.linalg.solve(self.hessian(phi, w), g)
            t = 1.0
            while -g @ step > 1e-12 * max(1.0, abs(value)):
                if self.objective(phi + t * step, w) <= value + 1e-4 * t * g @ step:
                    break
                t /= 2
            phi = phi + t * step
            if -g @ step < 1e-28 * max(1.0, abs(value)):
                break
        self.theta = phi
        return phi

    def pseudo_logdet(self, w) -> float:
        values = np.linalg.eigvalsh(self.jacobian.T @ self.penalty(w) @ self.jacobian)
        return float(np.sum(np.log(values[values > 1e-9 * values.max()])))

    def criterion(self, rho, start: np.ndarray, kind: str = "reml") -> float:
        """REML's (or ML's) V at weights exp(ρ), fitted from φ ``start``; ML's log|H| is
        over the range of P (log|ZᵀHZ|, Z an orthonormal basis of it)."""
        w = np.exp(np.atleast_1d(np.asarray(rho, float)))
        phi = self.fit(w, start)
        hessian = self.hessian(phi, w)
        if kind == "ml":
            values, vectors = np.linalg.eigh(self.jacobian.T @ self.penalty(w) @ self.jacobian)
            z = vectors[:, values > 1e-9 * values.max()]
            hessian = z.T @ hessian @ z
        logdet_h = np.linalg.slogdet(hessian)[1]
        return 0.5 * self.objective(phi, w) + 0.5 * logdet_h - 0.5 * self.pseudo_logdet(w)

    def select(self, start: np.ndarray, bracket: tuple[float, float], kind: str = "reml"
               ) -> float:
        """The REML weight (one weight) by scipy's minimize_scalar on V(log w), then a few
        Newton steps on central differences of V to get below its rounding."""
        phi = {"at": np.array(start, float)}

        def value(rho: float) -> float:
            out = self.criterion(rho, phi["at"], kind)
            assert self.theta is not None
            phi["at"] = self.theta
            return out

        rho = scipy.optimize.minimize_scalar(value, bracket=bracket, method="brent",
                                             tol=1e-10).x
        h = 1e-3
        for _ in range(3):
            up, mid, down = value(rho + h), value(rho), value(rho - h)
            rho -= (up - down) / (2 * h) / ((up - 2 * mid + down) / h ** 2)
        return float(np.exp(rho))

    def covariance(self, phi: np.ndarray, w) -> np.ndarray:
        """The posterior covariance of the stored entries at φ: J (2 H⁻¹) Jᵀ."""
        return self.jacobian @ (2.0 * np.linalg.inv(self.hessian(phi, w))) @ self.jacobian.T

    def mean_covariance(self, phi: np.ndarray, w, k: int | None) -> np.ndarray:
        """The covariance of stratum k's mean μ = S⁻¹ν (k None: of the model averaged over
        every stratum) by the delta method, the Jacobian of μ(φ) by the complex step."""
        def mean(at: np.ndarray) -> np.ndarray:
            stored = self.stored(at)
            theta = stored.mean(axis=0) if k is None else stored[k]
            return np.linalg.solve(theta[:self.m], theta[self.m])

        jac = np.zeros((self.m, len(phi)))
        for j in range(len(phi)):
            step = np.zeros(len(phi), dtype=complex)
            step[j] = 1j * COMPLEX_STEP
            jac[:, j] = mean(phi + step).imag / COMPLEX_STEP
        return jac @ (2.0 * np.linalg.inv(self.hessian(phi, w))) @ jac.T
