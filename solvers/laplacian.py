"""Solvers for (L + cI) X = B with L = Σ_a γ_a (I ⊗ … ⊗ L_a ⊗ … ⊗ I), X of shape (K, d).

* :class:`KroneckerSolver` — exact, for products of small factors: each factor is
  diagonalized once (orthonormal DCT-II for paths, real FFT for cycles, a dense
  eigendecomposition otherwise; grid factors are split into their path axes), so a
  solve is a forward transform along
  every axis, a division by the summed eigenvalues + c, and the inverse transform. The
  K × K Laplacian is never formed, and changing c or the weights γ costs nothing.
* :class:`SparseSolver` — for products with a large general factor: the sparse product
  Laplacian, factorized once per value of c (and of γ) and reused.
* :class:`CGSolver` — for very large such products, where a factorization would not fit:
  warm-started, Jacobi-preconditioned conjugate gradients to a tight residual.

:func:`laplacian_solver` picks one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import scipy.fft
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .blockwise import for_blocks
from .graphs import Graph, Interaction, RowGroup, path_graph, product_laplacian
from .threads import eigh

DENSE_LIMIT = 3000  # largest factor diagonalized densely


class Axis:
    """One axis of the product: its eigenvalues and its transform.

    Paths (unit weights) use the orthonormal DCT-II, whose basis diagonalizes the path
    Laplacian; cycles use the real FFT (the transformed axis has n//2 + 1 complex
    entries, and the Laplacian acts on each by a real eigenvalue); other graphs use a
    dense orthonormal eigenbasis."""

    def __init__(self, graph: Graph, gamma: float, sparse: bool = False):
        """``sparse``: leave a large general graph untransformed (eigenvalues 0; its
        Laplacian γL is solved with by whoever uses the axis) instead of diagonalizing it."""
        self.n = graph.n
        self.gamma = gamma
        unit = np.allclose(graph.weights, 1.0)
        if sparse and is_sparse_axis(graph):
            self.kind = "sparse"
            self.eigenvalues = np.zeros(self.n)
            self.laplacian = (gamma * graph.laplacian()).tocsr()
        elif graph.structure == "path" and unit:
            self.kind = "dct"
            self.eigenvalues = 2.0 - 2.0 * np.cos(np.pi * np.arange(self.n) / self.n)
        elif graph.structure == "cycle" and unit and self.n >= 3:
            self.kind = "fft"  # transformed jointly with the other cycles by rfftn
            self.eigenvalues = 2.0 - 2.0 * np.cos(2 * np.pi * np.arange(self.n) / self.n)
        else:
            self.kind = "dense"
            values, vectors = eigh(graph.laplacian().toarray())
            self.eigenvalues = np.clip(values, 0.0, None)
            self.basis = vectors

    def forward(self, x: np.ndarray, axis: int) -> np.ndarray:
        if self.kind == "sparse":
            return x
        if self.kind == "dct":
            return scipy.fft.dct(x, type=2, norm="ortho", axis=axis, overwrite_x=True)
        return np.moveaxis(np.tensordot(self.basis.T, x, axes=([1], [axis])), 0, axis)

    def backward(self, x: np.ndarray, axis: int) -> np.ndarray:
        if self.kind == "sparse":
            return x
        if self.kind == "dct":
            return scipy.fft.idct(x, type=2, norm="ortho", axis=axis, overwrite_x=True)
        return np.moveaxis(np.tensordot(self.basis, x, axes=([1], [axis])), 0, axis)


def is_sparse_axis(graph: Graph) -> bool:
    """Too large to diagonalize densely, and with no fast transform."""
    fast = graph.structure in ("path", "cycle") and np.allclose(graph.weights, 1.0)
    return graph.n > DENSE_LIMIT and not fast


def split_grids(factors: Sequence[Graph], gammas: Sequence[float]) -> list[tuple[Graph, float]]:
    """Grid factors become one path axis per dimension (same weight)."""
    out: list[tuple[Graph, float]] = []
    for graph, gamma in zip(factors, gammas, strict=True):
        if graph.structure == "grid" and len(graph.shape) > 1:
            out.extend((path_graph(n), gamma) for n in graph.shape)
        else:
            out.append((graph, gamma))
    return out


def factor_axes(factors: Sequence[Graph]) -> list[list[int]]:
    """The axes of :func:`split_grids` that each factor became (a grid: one per dimension)."""
    out, at = [], 0
    for graph in factors:
        count = len(graph.shape) if graph.structure == "grid" and len(graph.shape) > 1 else 1
        out.append(list(range(at, at + count)))
        at += count
    return out


class KroneckerSolver:
    def __init__(self, factors: Sequence[Graph], gammas: Sequence[float], sparse: bool = False,
                 interactions: Sequence[Interaction] = ()):
        """``sparse``: large general axes are left untransformed (see :class:`Axis`); the
        transforms then diagonalize every other axis, and :meth:`solve` does not apply.
        ``interactions``: Kronecker-product terms w (L_a ⊗ L_b ⊗ …), diagonal in the same
        eigenbasis (eigenvalues w μ_i ν_j …), added to the spectrum."""
        axes = [Axis(g, w, sparse) for g, w in split_grids(factors, gammas)]
        self.axes = axes
        self.shape = tuple(a.n for a in axes) or (1,)
        self.k = int(np.prod(self.shape, dtype=np.int64))
        self.real_axes = [i for i, a in enumerate(axes) if a.kind not in ("fft", "sparse")]
        self.dct_axes = [i for i in self.real_axes if axes[i].kind == "dct"]
        self.dense_axes = [i for i in self.real_axes if axes[i].kind == "dense"]
        self.sparse_axes = [i for i, a in enumerate(axes) if a.kind == "sparse"]
        # all cycles in one real FFT; rfftn halves the last axis given: the longest
        self.fft_axes = sorted((i for i, a in enumerate(axes) if a.kind == "fft"),
                               key=lambda i: axes[i].n)
        self._factors, self._interactions = tuple(factors), tuple(interactions)
        self._set_spectrum()
        self.threads = -1  # for the FFTs: every core (a Dask worker sets its own count)

    def with_gammas(self, factors: Sequence[Graph], gammas: Sequence[float]) -> KroneckerSolver:
        """The same transforms for other factor weights, without diagonalizing again
        (the weights only scale each axis's eigenvalues)."""
        out = copy.copy(self)
        out.axes = [copy.copy(axis) for axis in self.axes]
        for axis, (_, gamma) in zip(out.axes, split_grids(factors, gammas), strict=True):
            axis.gamma = gamma
        out._set_spectrum()
        return out

    def _set_spectrum(self) -> None:
        axes = self.axes
        total = np.zeros(1)
        spectral_shape = []
        for i, axis in enumerate(axes):
            values = axis.eigenvalues
            if self.fft_axes and i == self.fft_axes[-1]:
                values = values[: axis.n // 2 + 1]
            spectral_shape.append(len(values))
            total = np.add.outer(total.reshape(total.shape), axis.gamma * values) if i else \
                axis.gamma * values
        self.spectrum = np.asarray(total).reshape(spectral_shape or (1,))
        self._inverse: tuple[float | None, np.ndarray] = (None, self.spectrum)
        if self._interactions:
            self.spectrum = self.spectrum + self._interaction_spectrum(
                self._factors, self._interactions, spectral_shape)

    def _interaction_spectrum(self, factors: Sequence[Graph],
                              interactions: Sequence[Interaction],
                              spectral_shape: list[int]) -> np.ndarray:
        """Σ w Π_{a joined} (eigenvalues of L_a), broadcast over the spectral grid."""
        if any(a.kind == "sparse" for a in self.axes):
            raise ValueError("an interaction term needs every factor diagonalized")
        ndim = len(spectral_shape)
        per_factor = []
        for axes in factor_axes(factors):
            values = np.zeros([1] * ndim)
            for i in axes:  # a grid's Laplacian is the sum of its path axes'
                shape = [1] * ndim
                shape[i] = spectral_shape[i]
                values = values + self.axes[i].eigenvalues[: spectral_shape[i]].reshape(shape)
            per_factor.append(values)
        out = np.zeros(spectral_shape)
        for joined, weight in interactions:
            term = np.ones([1] * ndim)
            for a in joined:
                term = term * per_factor[a]
            out = out + weight * term
        return out

    def forward(self, y: np.ndarray, lead: int = 0) -> np.ndarray:
        """Into the eigenbasis: y has ``lead`` leading axes, then the product's axes, then
        one trailing axis of columns."""
        if self.dct_axes:  # every path axis in one call, on every core
            y = scipy.fft.dctn(y, type=2, norm="ortho", axes=[lead + i for i in self.dct_axes],
                               overwrite_x=True, workers=self.threads)
        for i in self.dense_axes:
            y = self.axes[i].forward(y, lead + i)
        if self.fft_axes:
            y = scipy.fft.rfftn(y, axes=[lead + i for i in self.fft_axes], workers=self.threads)
        return y

    def backward(self, y: np.ndarray, lead: int = 0) -> np.ndarray:
        """Out of the eigenbasis (y, complex when there are cycles, may be overwritten)."""
        if len(self.fft_axes) > 1:  # irfftn's steps, the first in place: irfftn makes the
            # complex inverse of all axes but the last in a new array (~4 ms more a solve
            # at the crime scale); 1/N applied last as irfftn does, so the same floats
            *inner, last = [lead + i for i in self.fft_axes]
            y = scipy.fft.ifftn(y, axes=inner, norm="forward", overwrite_x=True,
                                workers=self.threads)
            y = scipy.fft.irfft(y, n=self.shape[self.fft_axes[-1]], axis=last, norm="forward",
                                workers=self.threads)
            scale_in_place(y, 1.0 / int(np.prod([self.shape[i] for i in self.fft_axes])),
                           self.threads)
        elif self.fft_axes:
            y = scipy.fft.irfftn(y, s=[self.shape[i] for i in self.fft_axes],
                                 axes=[lead + i for i in self.fft_axes], workers=self.threads)
        for i in reversed(self.dense_axes):
            y = self.axes[i].backward(y, lead + i)
        if self.dct_axes:
            y = scipy.fft.idctn(y, type=2, norm="ortho", axes=[lead + i for i in self.dct_axes],
                                overwrite_x=True, workers=self.threads)
        return y

    def _transform(self, x: np.ndarray, scale: np.ndarray, overwrite: bool = False
                   ) -> np.ndarray:
        d = x.shape[1]
        y = self.forward(_writable(x, overwrite).reshape(*self.shape, d))
        scale_in_place(y, scale[..., None], self.threads)
        return np.ascontiguousarray(self.backward(y)).reshape(self.k, d)

    def solve(self, b: np.ndarray, c: float, overwrite_b: bool = False) -> np.ndarray:
        """X with (L + cI) X = B; ``overwrite_b``: B may be overwritten (no copy of it)."""
        key, inverse = self._inverse  # (read once: another thread may replace it)
        if key != c:  # (ADMM solves with one c for many iterations)
            inverse = 1.0 / (self.spectrum + c)
            self._inverse = (c, inverse)
        return self._transform(b, inverse, overwrite_b)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """L X, through the same transforms (for tests and objective checks)."""
        return self._transform(x, self.spectrum)


def _writable(x: np.ndarray, overwrite: bool) -> np.ndarray:
    """x itself when it may be overwritten and the transforms can work in it, else a copy."""
    if overwrite and x.dtype == np.float64 and x.flags.c_contiguous and x.flags.writeable:
        return x
    return np.array(x, dtype=float)


def scale_in_place(y: np.ndarray, scale: np.ndarray | float, threads: int = -1) -> None:
    """y *= scale, block by block on ``threads`` threads (≤ 0: every core) when scale is a
    number or has y's shape (up to trailing axes of length 1)."""
    if not y.flags.c_contiguous:
        y *= scale
        return
    flat = y.reshape(-1)
    limit = threads if threads > 0 else None
    if isinstance(scale, np.ndarray):
        if scale.size != flat.size or not scale.flags.c_contiguous:
            y *= scale
            return
        by = scale.reshape(-1)
        for_blocks(flat.size, lambda s: np.multiply(flat[s], by[s], out=flat[s]), limit)
    else:
        for_blocks(flat.size, lambda s: np.multiply(flat[s], scale, out=flat[s]), limit)


class SparseSolver:
    def __init__(self, factors: Sequence[Graph], gammas: Sequence[float]):
        self.laplacian = product_laplacian(factors, gammas).tocsc()
        self.k = self.laplacian.shape[0]
        self._c: float | None = None
        self._solve: Callable[[np.ndarray], np.ndarray] | None = None

    def solve(self, b: np.ndarray, c: float, overwrite_b: bool = False) -> np.ndarray:
        if self._c != c:  # factorize once per penalty, reuse across iterations
            matrix = (self.laplacian + c * sp.identity(self.k, format="csc")).tocsc()
            self._solve = spla.factorized(matrix)
            self._c = c
        assert self._solve is not None  # factorized with self._c, on the first call
        return np.column_stack([self._solve(b[:, j]) for j in range(b.shape[1])])

    def apply(self, x: np.ndarray) -> np.ndarray:
        return self.laplacian @ x


class CGSolver:
    """For very large general graphs: conjugate gradients on (L + cI) X = B, Jacobi
    preconditioned, all columns at once, each solve warm-started at the previous solution
    (inside ADMM successive right-hand sides are close). Memory is that of L; the solve is
    run to a relative residual of ``rtol`` per column, not a fixed iteration count."""

    def __init__(self, factors: Sequence[Graph], gammas: Sequence[float], rtol: float = 1e-12,
                 max_iter: int = 100_000):
        self.laplacian = product_laplacian(factors, gammas).tocsr()
        self.k = self.laplacian.shape[0]
        self.diagonal = self.laplacian.diagonal()
        self.rtol, self.max_iter = rtol, max_iter
        self.previous: np.ndarray | None = None
        self.iterations = 0  # CG steps over all solves, for tests and benchmarks

    def solve(self, b: np.ndarray, c: float, overwrite_b: bool = False) -> np.ndarray:
        start = (self.previous if self.previous is not None and self.previous.shape == b.shape
                 else None)
        x, steps = shifted_cg(self.laplacian, self.diagonal, b, np.full(b.shape[1], c), start,
                              self.rtol, self.max_iter)
        self.iterations += steps
        self.previous = x
        return x.copy()

    def apply(self, x: np.ndarray) -> np.ndarray:
        return self.laplacian @ x


def shifted_cg(matrix, diagonal: np.ndarray, b: np.ndarray, shift: np.ndarray,
               start: np.ndarray | None = None, rtol: float = 1e-12, max_iter: int = 100_000
               ) -> tuple[np.ndarray, int]:
    """(X, steps): (A + diag(shift_j)) X[:, j] = B[:, j] for every column j, by Jacobi
    preconditioned conjugate gradients on all columns at once, from ``start`` (default 0),
    to a relative residual of ``rtol`` per column; a column that has converged leaves the
    iteration (well-shifted columns need far fewer steps). A must be symmetric positive
    semidefinite and every A + shift_j I definite."""
    x = np.zeros_like(b) if start is None else start.copy()
    if b.shape[1] == 0:
        return x, 0
    active = np.arange(b.shape[1])
    xa = x.copy()
    inverse = 1.0 / (diagonal[:, None] + shift[None, :])
    r = b - (matrix @ xa + shift * xa)
    target = rtol * np.maximum(np.linalg.norm(b, axis=0), 1e-300)
    p = inverse * r
    rz = np.sum(r * p, axis=0)
    for steps in range(max_iter + 1):
        done = np.linalg.norm(r, axis=0) <= target
        if done.any():
            x[:, active[done]] = xa[:, done]
            keep = ~done
            if not keep.any():
                return x, steps
            active, xa, r, p, rz = active[keep], xa[:, keep], r[:, keep], p[:, keep], rz[keep]
            inverse, shift, target = inverse[:, keep], shift[keep], target[keep]
        q = matrix @ p + shift * p
        step = rz / np.where(rz == 0, 1.0, np.sum(p * q, axis=0))
        xa += step * p
        r -= step * q
        z = inverse * r
        rz_new = np.sum(r * z, axis=0)
        p = z + (rz_new / np.where(rz == 0, 1.0, rz)) * p
        rz = rz_new
    raise RuntimeError(f"conjugate gradients did not reach {rtol:g} in {max_iter} steps")


def solve_along(matrix, y: np.ndarray, axis: int, eigenvalues: np.ndarray, c: float | None,
                start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(X, columns): X solves (M along ``axis`` + eigenvalues + c) X = y, where
    ``eigenvalues`` (broadcastable to y) are constant along ``axis`` — the other axes of a
    product already diagonalized; or, with c None, X = (M along ``axis`` + eigenvalues) y.
    Complex y is solved as its real and imaginary parts; ``columns`` (the CG solution, None
    when applying) warm-starts the next call through ``start``."""
    moved = np.moveaxis(y, axis, 0)
    shift = np.moveaxis(np.broadcast_to(eigenvalues, y.shape), axis, 0)[0].reshape(-1)
    flat = moved.reshape(len(moved), -1)
    if c is None:
        return np.moveaxis((matrix @ flat + shift * flat).reshape(moved.shape), 0, axis), None
    parts = [flat.real, flat.imag] if np.iscomplexobj(flat) else [flat]
    rhs = np.concatenate(parts, axis=1)
    if start is not None and start.shape != rhs.shape:
        start = None
    columns, _ = shifted_cg(matrix, matrix.diagonal(), rhs, np.tile(shift, len(parts)) + c, start)
    out = columns if len(parts) == 1 else columns[:, :flat.shape[1]] + 1j * columns[:, flat.shape[1]:]
    return np.moveaxis(out.reshape(moved.shape), 0, axis), columns


class AlongSolver:
    """For products with one large general factor and every other factor diagonalizable:
    the others are transformed as in :class:`KroneckerSolver`, and along the general one
    each column of their eigenbasis is a shifted sparse system (γL + (λ + c) I) x = b,
    solved by warm-started Jacobi-preconditioned CG. Better conditioned than CG on the
    whole product (each shift includes the other axes' eigenvalue λ), and no
    factorization."""

    def __init__(self, factors: Sequence[Graph], gammas: Sequence[float]):
        self.kron = KroneckerSolver(factors, gammas, sparse=True)
        if len(self.kron.sparse_axes) != 1:
            raise ValueError("AlongSolver needs exactly one large general factor")
        self.at = self.kron.sparse_axes[0]
        self.laplacian = self.kron.axes[self.at].laplacian
        self.k = self.kron.k
        self.previous: np.ndarray | None = None

    def _run(self, x: np.ndarray, c: float | None, overwrite: bool = False) -> np.ndarray:
        d = x.shape[1]
        y = self.kron.forward(_writable(x, overwrite).reshape(*self.kron.shape, d))
        y, columns = solve_along(self.laplacian, y, self.at, self.kron.spectrum[..., None], c,
                                 self.previous)
        if columns is not None:  # (a copy: y is a view of columns, and the inverse
            # transforms may run in place in y)
            self.previous = columns.copy()
        return np.ascontiguousarray(self.kron.backward(y)).reshape(self.k, d)

    def solve(self, b: np.ndarray, c: float, overwrite_b: bool = False) -> np.ndarray:
        return self._run(b, c, overwrite_b)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return self._run(x, None)


SPARSE_LU_LIMIT = 500_000  # strata above which a general product uses CG instead of LU


def exact_kronecker(factors: Sequence[Graph]) -> bool:
    """Can every factor be diagonalized (a fast transform, or small enough for a dense
    eigendecomposition), so that :class:`KroneckerSolver` solves exactly?"""
    return all(g.n <= DENSE_LIMIT or g.structure in ("path", "grid") for g in factors)


def laplacian_solver(factors: Sequence[Graph], gammas: Sequence[float],
                     interactions: Sequence[Interaction] = ()):
    """Exact Kronecker solves when every factor is small enough; with one large general
    factor among diagonalizable ones, CG along it per column of their eigenbasis;
    otherwise a sparse LU cached per penalty, or warm-started CG for very large products.
    Interaction terms need the exact Kronecker solve (ValueError otherwise)."""
    if exact_kronecker(factors):
        return KroneckerSolver(factors, gammas, interactions=interactions)
    if interactions:
        raise ValueError("an interaction term needs every factor it joins diagonalized: "
                         f"at most {DENSE_LIMIT} nodes, or a path or grid")
    axes = split_grids(factors, gammas)
    if len(axes) > 1 and sum(is_sparse_axis(g) for g, _ in axes) == 1:
        return AlongSolver(factors, gammas)
    if int(np.prod([g.n for g in factors], dtype=np.int64)) > SPARSE_LU_LIMIT:
        return CGSolver(factors, gammas)
    return SparseSolver(factors, gammas)


class ConstantAlongSolver:
    """(L + cI) X = B on the subspace of X constant along some factors (an exact
    constraint): as the Laplacian of a Kronecker sum commutes with the mean along a
    factor, the solution is the solve on the other factors of B's mean along those — in
    their eigenbasis, only the zero-eigenvalue mode of those factors is kept. An
    interaction term joining such a factor vanishes on the subspace."""

    def __init__(self, factors: Sequence[Graph], gammas: Sequence[float],
                 constant: Sequence[bool], interactions: Sequence[Interaction] = ()):
        self.shape = tuple(f.n for f in factors)
        self.constant = tuple(a for a, c in enumerate(constant) if c)
        keep = [a for a in range(len(factors)) if a not in self.constant]
        self.kept_shape = tuple(self.shape[a] for a in keep)
        kept = [(tuple(keep.index(a) for a in joined), w) for joined, w in interactions
                if all(a in keep for a in joined)]
        self.inner = laplacian_solver([factors[a] for a in keep], [gammas[a] for a in keep],
                                      kept)
        self.k = int(np.prod(self.shape, dtype=np.int64))

    def _mean(self, b: np.ndarray) -> np.ndarray:
        d = b.shape[1]
        grid = b.reshape(*self.shape, d).mean(axis=self.constant)
        return grid.reshape(-1, d)

    def _spread(self, x: np.ndarray) -> np.ndarray:
        d = x.shape[1]
        grid = x.reshape(*self.kept_shape, d)
        grid = np.expand_dims(grid, self.constant)
        return np.ascontiguousarray(np.broadcast_to(grid, (*self.shape, d))).reshape(self.k, d)

    def solve(self, b: np.ndarray, c: float, overwrite_b: bool = False) -> np.ndarray:
        if not self.constant:
            return self.inner.solve(b, c, overwrite_b)
        # (the mean is a new array: the inner solve may overwrite it)
        return self._spread(self.inner.solve(self._mean(b), c, overwrite_b=True))


def group_solver(group: RowGroup, gammas: Sequence[float],
                 interactions: Sequence[Interaction] = ()):
    """The Laplacian solver of one row group: its own weights, its constant factors."""
    weights = group.weights(gammas)
    if not any(group.constant):
        return laplacian_solver(group.factors, weights, interactions)
    return ConstantAlongSolver(group.factors, weights, group.constant, interactions)


class GroupedSolver:
    """(L + cI) X = B where parameter rows present in some strata only see the graph
    those strata induce, rows may carry their own weight per factor, and rows may be
    constant along some factors (``groups``: solvers.graphs.RowGroup each with its
    solver); an entry outside its row's strata is absent: X = 0 there (the exact solve on
    the subspace where absent entries are 0 and shared rows constant, which keeps ADMM's
    consensus iterate in it)."""

    def __init__(self, groups: Sequence[RowGroup], gammas: Sequence[float],
                 shape: tuple[int, int, int], interactions: Sequence[Interaction] = ()):
        self.shape = shape
        self.parts = [(g, group_solver(g, gammas, interactions)) for g in groups]

    def solve(self, b: np.ndarray, c: float, overwrite_b: bool = False) -> np.ndarray:
        k, n, m = self.shape
        rhs = b.reshape(k, n, m)
        out = rhs / c
        for group, solver in self.parts:
            block = group.block(rhs)  # (a new array: the solve may overwrite it)
            solved = solver.solve(block.reshape(len(block), -1), c,
                                  overwrite_b=True).reshape(block.shape)
            if group.strata is None:
                out[:, group.rows] = solved
            else:
                out[:, group.rows] = 0.0
                out[np.ix_(group.strata, group.rows)] = solved
        return out.reshape(k, n * m)
