"""The Kronecker-structured matrix K̃ = P(w) + I ⊗ A, diagonal in (factors' eigenbases) ⊗ I,
and everything the Laplace engine needs from it exactly.

With every ridge pattern the same on every stratum (pattern R_r on each) and A one d × d
block for every stratum,

    K̃ = Σ_a w_a s_a(i) diag(c_a) over the product eigenvalue index i, + A,

one d × d matrix M_i per index: a Laplacian part on the rows ``c_a`` marks has
s_a(i) = its factor's eigenvalue at i, an interaction s_a(i) = the product of its factors'
eigenvalues (every row), a ridge s_a = 1 with c_a its pattern. Hence, exactly and in
O(K·d³) without any probe: log|K̃| = Σ_i log|M_i|, tr(K̃⁻¹S_a) = Σ_i s_a(i) c_aᵀ diag(M_i⁻¹),
tr(K̃⁻¹S_aK̃⁻¹S_b) = Σ_i s_a(i) s_b(i) c_aᵀ (M_i⁻¹ ∘ M_i⁻¹) c_b, the stratum blocks of
K̃⁻¹ = Σ_i Q_ki² M_i⁻¹ axis by axis, and K̃⁻¹X by one pass of the factors' transforms
(solvers.laplacian.KroneckerSolver).

Two users: the stochastic estimators (solvers.stochastic) take K̃ with A the strata's
mean block as their preconditioner and control variate; and when every stratum's
curvature block is the same (:func:`uniform_curvature`: one Gaussian record per stratum,
say), H itself is such a K̃ and solvers.curvature's "exact-spectral" method reads log|H|,
the traces and the blocks of H⁻¹ off it.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from .cholesky import NotPositiveDefinite
from .laplacian import KroneckerSolver, exact_kronecker
from .penalty import InteractionPart, LaplacianPart, QuadraticPenalty, Weights


def uniform_curvature(blocks: np.ndarray, penalty: QuadraticPenalty) -> bool:
    """Is H = blockdiag(blocks) + P(w) itself a :class:`KroneckerReference`? Decided
    exactly, never by a tolerance: no reparametrization (θ itself free), every stratum's
    block bitwise equal to the first, every ridge pattern the same on every stratum, every
    factor diagonalizable."""
    blocks = np.asarray(blocks)
    return (len(blocks) > 0 and penalty.reparametrization is None
            and exact_kronecker(penalty.factors) and penalty.uniform_ridges()
            and bool(np.all(blocks == blocks[:1])))


class KroneckerReference:
    """K̃ = P(w) + I ⊗ (block + R̄) for a (d, d) ``block`` (R̄ the ridges' mean over
    strata: their common pattern when they are uniform)."""

    def __init__(self, penalty: QuadraticPenalty, weights: Weights, block: np.ndarray):
        self.penalty = penalty
        self.weights = w = np.asarray(weights, dtype=float)
        self.k, self.d = penalty.k, penalty.d
        fixed = _fixed(penalty)
        self.solver: KroneckerSolver = fixed["solver"]  # type: ignore[assignment]
        self.unit_spectra: list[np.ndarray] = fixed["unit"]  # type: ignore[assignment]
        self._full_spectra: list[np.ndarray] = fixed["full"]  # type: ignore[assignment]
        self._fixed = fixed
        self.ridge = np.zeros(self.d)
        for a, part in enumerate(penalty.parts):
            if not isinstance(part, (LaplacianPart, InteractionPart)):
                self.ridge += w[a] * np.asarray(part.pattern, dtype=float).mean(axis=0)
        self.block = np.asarray(block, dtype=float)
        constant = self.block + np.diag(self.ridge)
        eig = np.zeros((*self.solver.spectrum.shape, self.d))
        for a, part in enumerate(penalty.parts):
            if isinstance(part, (LaplacianPart, InteractionPart)):
                scalar, columns = self._graph_part(a, self.unit_spectra)
                eig += w[a] * scalar[..., None] * columns
        self.matrices = np.einsum("...c,cd->...cd", eig, np.eye(self.d)) + constant
        if self.d == 1:  # (no eigendecomposition of a million 1 × 1 matrices)
            values = self.matrices[..., 0]
            vectors = np.ones_like(self.matrices)
        else:
            values, vectors = np.linalg.eigh(self.matrices)
        self.smallest = float(values.min(initial=np.inf))
        self.largest = float(values.max(initial=0.0))
        values = np.maximum(values, 1e-300)
        if self.d == 1:
            self.inverse = (1.0 / values)[..., None]
            self.inverse_half = (values ** -0.5)[..., None]
        else:
            self.inverse = np.einsum("...ij,...j,...kj->...ik", vectors, 1.0 / values, vectors)
            self.inverse_half = np.einsum("...ij,...j,...kj->...ik", vectors, values ** -0.5,
                                          vectors)
        self.logdet = self._full_logdet(constant)

    def _graph_part(self, a: int, spectra: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(s_a over the grid of ``spectra``, c_a (d,)) for a Laplacian or interaction part."""
        part = self.penalty.parts[a]
        if isinstance(part, LaplacianPart):
            return spectra[part.factor], np.asarray(self.penalty._columns[a], dtype=float)
        assert isinstance(part, InteractionPart)
        return _product(spectra, part.factors), np.ones(self.d)

    def _full_logdet(self, constant: np.ndarray) -> float:
        """log|K̃| over every eigenvalue of every factor (the transforms' grid halves a
        cycle's conjugate pairs; here each counts)."""
        penalty, w = self.penalty, self.weights
        shape = tuple(g.n for g in penalty.factors) or (1,)
        full = np.zeros((*shape, self.d))
        for a, part in enumerate(penalty.parts):
            if isinstance(part, (LaplacianPart, InteractionPart)):
                scalar, columns = self._graph_part(a, self._full_spectra)
                full = full + w[a] * scalar[..., None] * columns
        if self.d == 1:
            return float(np.sum(np.log(np.maximum(full.reshape(-1) + constant[0, 0], 1e-300))))
        matrices = np.einsum("...c,cd->...cd", full, np.eye(self.d)) + constant
        _, logdets = np.linalg.slogdet(matrices.reshape(-1, self.d, self.d))
        return float(np.sum(logdets))

    def check_definite(self) -> None:
        """Raise :class:`NotPositiveDefinite` when some M_i is singular (to rounding)."""
        if not self.smallest > 1e-13 * max(self.largest, 1e-300):
            raise NotPositiveDefinite(
                f"smallest eigenvalue {self.smallest:.3g} of {self.largest:.3g}")

    # -- products ----------------------------------------------------------------------
    def spectral(self, x: np.ndarray, matrices: np.ndarray, overwrite: bool = False
                 ) -> np.ndarray:
        """Q (⊕ matrices) Qᵀ X for X (K, P, d): every column in one pass of transforms
        (``overwrite``: X may be used as the transforms' workspace)."""
        solver = self.solver
        k, p, d = x.shape
        grid = np.asarray(x, dtype=float) if overwrite else np.array(x, dtype=float)
        y = solver.forward(grid.reshape(*solver.shape, p * d))
        y = y.reshape(*y.shape[:-1], p, d)
        if d == 1:  # a product of numbers, in place (no einsum over 1 × 1 matrices)
            y *= matrices
        else:
            y = np.einsum("...ij,...pj->...pi", matrices, y)
        y = y.reshape(*y.shape[:-2], p * d)
        return np.ascontiguousarray(solver.backward(y)).reshape(k, p, d)

    def solve(self, x: np.ndarray) -> np.ndarray:
        """K̃⁻¹ X for X (K, P, d)."""
        return self.spectral(x, self.inverse)

    # -- in the eigenbasis: (K, d) arrays as (transforms' grid, d) -----------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        """Qᵀ X for X (K, d)."""
        return self.solver.forward(np.array(x, dtype=float).reshape(*self.solver.shape, self.d))

    def backward(self, y: np.ndarray) -> np.ndarray:
        """Q Y back to (K, d); Y is left as it was (the path axes' inverse DCT would
        overwrite it)."""
        return np.ascontiguousarray(self.solver.backward(y.copy())).reshape(self.k, self.d)

    def times(self, y: np.ndarray, matrices: np.ndarray) -> np.ndarray:
        """(⊕ matrices) Y in the eigenbasis (``self.matrices`` or ``self.inverse``)."""
        if self.d == 1:
            return y * matrices[..., 0]
        return np.einsum("...ij,...j->...i", matrices, y)

    def part_times(self, a: int, y: np.ndarray) -> np.ndarray:
        """S_a Y in the eigenbasis (every ridge uniform)."""
        spectrum = self.part_spectrum(a)
        if spectrum is None:
            raise ValueError("a ridge that varies over strata is not diagonal in the eigenbasis")
        scalar, columns = spectrum
        return scalar[..., None] * columns * y

    def inner(self, x: np.ndarray, y: np.ndarray) -> float:
        """Σ_k x_k · y_k of the arrays whose eigenbasis coordinates are X, Y (Parseval:
        the real FFT's halved axis counts its conjugate pairs twice, and its forward
        transform is unnormalized)."""
        return float(self.gram(x[None], y[None])[0, 0])

    def gram(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """(Σ_k x_k · y_k) for every X of ``xs`` and Y of ``ys`` (stacked coordinates,
        (A, grid…, d) and (B, grid…, d)): one matrix product."""
        if self.solver.fft_axes:
            xs = xs * self._parseval()[..., None]
        left, right = xs.reshape(len(xs), -1), ys.reshape(len(ys), -1)
        if np.iscomplexobj(left) or np.iscomplexobj(right):
            left, right = np.asarray(left, dtype=complex), np.asarray(right, dtype=complex)
            return left.real @ right.real.T + left.imag @ right.imag.T
        return left @ right.T

    def _parseval(self) -> np.ndarray:
        """Each spectral entry's weight in an inner product: multiplicity / FFT size."""
        if "parseval" not in self._fixed:
            size = np.prod([self.solver.shape[i] for i in self.solver.fft_axes])
            self._fixed["parseval"] = self.multiplicity() / float(size)
        return self._fixed["parseval"]  # type: ignore[return-value]

    # -- exact traces and blocks ---------------------------------------------------------
    def part_spectrum(self, a: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(s_a on the transforms' grid, c_a (d,)): S_a = Q (s_a(i) diag(c_a)) Qᵀ; None
        for a ridge that varies over strata (not diagonal in the eigenbasis)."""
        part = self.penalty.parts[a]
        if isinstance(part, (LaplacianPart, InteractionPart)):
            return self._graph_part(a, self.unit_spectra)
        pattern = np.asarray(part.pattern, dtype=float)
        if not np.all(pattern == pattern[:1]):
            return None
        return np.ones((1,) * self.solver.spectrum.ndim), pattern[0]

    def trace(self, a: int) -> float | None:
        """tr(K̃⁻¹S_a); None for a ridge that varies over strata."""
        spectrum = self.part_spectrum(a)
        if spectrum is None:
            return None
        scalar, columns = spectrum
        diagonal = np.einsum("...cc->...c", self.inverse)
        return float(np.sum((self.multiplicity() * scalar)[..., None] * diagonal * columns))

    def trace_pairs(self) -> np.ndarray:
        """tr(K̃⁻¹S_aK̃⁻¹S_b) for every pair of parts (A, A); every ridge uniform."""
        parts = len(self.penalty.parts)
        spectra = []
        for a in range(parts):
            spectrum = self.part_spectrum(a)
            if spectrum is None:
                raise ValueError("trace_pairs needs every ridge the same on every stratum")
            spectra.append(spectrum)
        squared = self.inverse ** 2  # (M⁻¹)_ce², M⁻¹ symmetric
        multiplicity = self.multiplicity()
        if self.d == 1:  # one matrix product over the stacked part spectra
            grid = squared.shape[:-2]
            stacked = np.stack([np.broadcast_to(scalar * columns[0], grid)
                                for scalar, columns in spectra]).reshape(parts, -1)
            weights = (multiplicity * squared[..., 0, 0]).reshape(-1)
            return (stacked * weights) @ stacked.T
        out = np.zeros((parts, parts))
        for a in range(parts):
            scalar_a, columns_a = spectra[a]
            weighted = np.einsum("...ce,c->...e", squared, columns_a) \
                * (multiplicity * scalar_a)[..., None]
            for b in range(a, parts):
                scalar_b, columns_b = spectra[b]
                out[a, b] = out[b, a] = float(np.sum(weighted * scalar_b[..., None]
                                                     * columns_b))
        return out

    def multiplicity(self) -> np.ndarray:
        """How many product eigenvalues each spectral entry stands for (rfftn halves the
        last transformed cycle: a conjugate pair is stored once)."""
        solver = self.solver
        out = np.ones(solver.spectrum.shape)
        if solver.fft_axes:
            i = solver.fft_axes[-1]
            along = [1] * out.ndim
            along[i] = solver.shape[i] // 2 + 1
            out = out * _pair_counts(solver.shape[i]).reshape(along)
        return out

    def blocks(self) -> np.ndarray | None:
        """The stratum blocks of K̃⁻¹ = Q (⊕ M_i⁻¹) Qᵀ: Σ_i Q_{ki}² M_i⁻¹, axis by axis, each
        in O(n log n) (no n × n squared basis); None for an untransformed (sparse) axis."""
        solver = self.solver
        if any(axis.kind not in ("fft", "dct", "dense") for axis in solver.axes):
            return None
        out = self.inverse
        for i, axis in enumerate(solver.axes):
            if axis.kind == "fft":  # |Q_ki|² = 1/n: every node gets the spectral mean
                halved = solver.fft_axes and i == solver.fft_axes[-1]
                count = _pair_counts(axis.n) if halved else np.ones(axis.n)
                along = [1] * out.ndim
                along[i] = len(count)
                mean = np.sum(out * count.reshape(along), axis=i, keepdims=True) / axis.n
                out = np.repeat(mean, axis.n, axis=i)
            elif axis.kind == "dct":
                out = _squared_dct_basis(out, i)
            else:
                out = np.moveaxis(np.tensordot(axis.basis ** 2, out, axes=([1], [i])), 0, i)
        return np.ascontiguousarray(out).reshape(self.k, self.d, self.d)


def _squared_dct_basis(f: np.ndarray, axis: int) -> np.ndarray:
    """Σ_i Q_{ki}² f_i along ``axis`` for the orthonormal DCT-II basis Q of a path. With
    Q_{ki}² = (1 + cos(π(2k+1)i/n))/n for i ≥ 1 (1/n for i = 0), the cosine sum is a DCT-III
    of f placed at even frequencies 2i, folded back below n by cos(π(2k+1)(2n−j)/2n) =
    −cos(π(2k+1)j/2n) (j = n is a zero of every cosine)."""
    f = np.moveaxis(f, axis, 0)
    n = f.shape[0]
    spread = np.zeros_like(f)
    i = np.arange(1, n)
    low = 2 * i < n
    np.add.at(spread, 2 * i[low], f[1:][low])
    high = 2 * i > n
    np.add.at(spread, 2 * n - 2 * i[high], -f[1:][high])
    cosines = 0.5 * scipy.fft.dct(spread, type=3, axis=0)  # Σ_j spread_j cos(π(2k+1)j/2n)
    out = (f.sum(axis=0, keepdims=True) + cosines) / n
    return np.moveaxis(out, 0, axis)


def _fixed(penalty: QuadraticPenalty) -> dict[str, object]:
    """The transforms and the unit spectra of ``penalty``'s factors (on the transforms'
    grid and in full), built once per penalty: they do not change with the weights."""
    cache = penalty._spectral
    if "solver" not in cache:
        factors = penalty.factors
        count = len(factors)
        cache["solver"] = KroneckerSolver(factors, [1.0] * count)
        cache["unit"] = [
            KroneckerSolver(factors, [1.0 if i == f else 0.0 for i in range(count)]).spectrum
            for f in range(count)]
        shape = tuple(g.n for g in factors) or (1,)
        full = []
        for f in range(count):
            along = [1] * len(shape)
            along[f] = shape[f]
            full.append(penalty.factor_spectrum(f)[0].reshape(along))
        cache["full"] = full
    return cache


def _pair_counts(n: int) -> np.ndarray:
    """Multiplicities of rfft's n//2 + 1 frequencies of a length-n axis."""
    count = np.full(n // 2 + 1, 2.0)
    count[0] = 1.0
    if n % 2 == 0:
        count[-1] = 1.0
    return count


def _product(spectra: list[np.ndarray], factors: tuple[int, ...]) -> np.ndarray:
    """Π over the joined factors of their unit spectra: an interaction's eigenvalues."""
    out = np.ones_like(spectra[factors[0]])
    for f in factors:
        out = out * spectra[f]
    return out
