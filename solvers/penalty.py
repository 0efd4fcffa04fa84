"""The quadratic penalty of a stratified model as a sum of weighted parts,

    P(w) = Σ_a w_a S_a,   θ stacked as (K, d), d = n·m (entry j·m + o: row j, output o),

with parts of three sorts:

* :class:`LaplacianPart` — one factor's Laplacian lifted to the product, on some parameter
  rows only: S = (I ⊗ … ⊗ L_f ⊗ … ⊗ I) ⊗ diag(mask), the mask over the d columns
  (a row mask of length n is spread over the m outputs);
* :class:`RidgePart` — a nonnegative diagonal pattern (K, d): a ``sum_squares`` term over
  some rows, possibly on some strata only.
* :class:`InteractionPart` — the Kronecker product of some factors' Laplacians
  (L_a ⊗ L_b ⊗ …, identity on the others) on every row: an ``interact`` term.

Conventions are the objective's: the fit minimizes ℓ(θ) + ½ θᵀP(w)θ, so a ``stratify``
weight γ is the weight of its Laplacian part and a ``sum_squares`` weight λ that of its
ridge part.

:meth:`QuadraticPenalty.pseudo_logdet` gives log|P(w)|₊ and its gradient in log w. When
every ridge pattern is the same on every stratum, P is diagonal in (factors' eigenbases)
⊗ I, with eigenvalue Σ_a w_a Λ_a(i) mask_a[c] + Σ_r w_r pattern_r[c] for product index i
and column c (an interaction part adds w Π_{a joined} λ_a(i)), so both come exactly
from the factors' eigenvalues at any K. The null space
is never found by a threshold on eigenvalues (wrong on big graphs, whose smallest nonzero
eigenvalues fall below any fixed tolerance): a factor's zero eigenvalues are its
connected components (islands included), and an entry (i, c) is null when every active
part leaves it null — for an interaction part, when some factor it joins has a zero
eigenvalue at i (the null space of L_a ⊗ L_b is far larger than a Kronecker sum's). Otherwise (ridge patterns that vary over strata) the null space is
still known from the structure (:meth:`QuadraticPenalty.null_basis`), and log|P|₊ is
computed exactly as log det of P with one anchor coordinate per null vector removed, plus
Σ log(component size) (the matrix-tree identity pdet(A) = det(A_{S̄S̄}) / det(N_S)² for an
orthonormal null basis N), by a sparse Cholesky factorization (:mod:`solvers.cholesky`),
up to :data:`FALLBACK_LIMIT` coordinates.

Given a :class:`~solvers.reparametrize.Reparametrization` θ = Tφ (columns constant along
some factors, or present in some strata only), the log-determinant, the null space and the
``free_*`` matrices are those of TᵀPT over φ: on such a column a graph part is the same
part over the factors it varies over, each the subgraph induced by the nodes the column
is present on (:meth:`QuadraticPenalty.column_graphs`), so the spectra stay exact; a part
may then act on no free coordinate at all (:meth:`QuadraticPenalty.acts`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .graphs import (
    Graph,
    component_labels,
    induced,
    n_components,
    path_graph,
    product_laplacian,
)
from .hessian import KroneckerSum
from .reparametrize import Reparametrization

FALLBACK_LIMIT = 2_000_000  # K·d above which a stratum-varying ridge's log|P|₊ is refused
EIGVALS_DENSE_LIMIT = 12_000  # a general factor's full spectrum by a dense eigvalsh
DENSE_NULL_LIMIT = 4_000  # K·d up to which an interaction's null basis is found densely


@dataclass(frozen=True)
class LaplacianPart:
    """Factor ``factor``'s Laplacian on the parameter rows ``rows`` marks (None: all)."""

    factor: int
    rows: np.ndarray | None = None


@dataclass(frozen=True)
class RidgePart:
    """A diagonal pattern (K, d) ≥ 0: ½ w Σ pattern ∘ θ²."""

    pattern: np.ndarray


@dataclass(frozen=True)
class InteractionPart:
    """The Kronecker product of the Laplacians of ``factors`` (two or more), on every row."""

    factors: tuple[int, ...]


Part = LaplacianPart | RidgePart | InteractionPart


class SpectralNullSpace(ValueError):
    """The null space is not spanned by component indicators (an interaction alone)."""
Weights = Sequence[float] | np.ndarray  # one weight per part


@dataclass(frozen=True)
class LogDet:
    """log|P(w)|₊, its gradient in log w (one entry per part), and the null dimension;
    its Hessian in log w where it is exact from the spectrum (uniform ridges), else None."""

    value: float
    gradient: np.ndarray
    null_dim: int
    method: str
    hessian: np.ndarray | None = None


@dataclass
class QuadraticPenalty:
    """P(w) = Σ_a w_a S_a on θ of shape (K, d) over the product of ``factors``."""

    factors: Sequence[Graph]
    parts: Sequence[Part]
    n: int
    m: int = 1
    # θ = Tφ with some columns constant along some factors (None: θ itself is free); the
    # log-determinant, null space and ``free_*`` matrices are then those of TᵀPT
    reparametrization: Reparametrization | None = None
    _sums: list[KroneckerSum | None] = field(default_factory=list, init=False, repr=False)
    _columns: list[np.ndarray] = field(default_factory=list, init=False, repr=False)
    _spectra: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict,
                                                               init=False, repr=False)
    _matrices: dict[int, sp.csr_matrix] = field(default_factory=dict, init=False, repr=False)
    # what does not change with the weights, for solvers.spectral (its transforms, spectra)
    _spectral: dict[str, object] = field(default_factory=dict, init=False, repr=False)
    # columns present in some strata only: their graphs are the factors' induced subgraphs
    _column_sums: dict[tuple[int, int], KroneckerSum | None] = field(
        default_factory=dict, init=False, repr=False)
    _induced: dict[tuple[int, bytes], tuple[Graph, tuple[np.ndarray, np.ndarray]]] = field(
        default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.factors = tuple(self.factors)
        self.parts = tuple(self.parts)
        self.k = int(np.prod([g.n for g in self.factors], dtype=np.int64))
        self.d = self.n * self.m
        t = self.reparametrization
        if t is not None and (t.k, t.d) != (self.k, self.d):
            raise ValueError(f"a reparametrization of θ ({t.k}, {t.d}), not (K, d) = "
                             f"({self.k}, {self.d})")
        self._partial = np.array([t is not None and t.partial(c) is not None
                                  for c in range(self.d)], dtype=bool).reshape(self.d)
        self._partial_columns = [int(c) for c in np.flatnonzero(self._partial)]
        for part in self.parts:
            if isinstance(part, LaplacianPart):
                if not 0 <= part.factor < len(self.factors):
                    raise ValueError(f"no factor {part.factor}: the product has "
                                     f"{len(self.factors)}")
                rows = (np.ones(self.n, dtype=bool) if part.rows is None
                        else np.asarray(part.rows, dtype=bool))
                if rows.shape != (self.n,):
                    raise ValueError(f"a row mask has shape {rows.shape}, not ({self.n},)")
                gammas = [1.0 if i == part.factor else 0.0 for i in range(len(self.factors))]
                self._sums.append(KroneckerSum(self.factors, gammas))
                self._columns.append(np.repeat(rows, self.m))
            elif isinstance(part, InteractionPart):
                if len(set(part.factors)) < 2 or not all(
                        0 <= f < len(self.factors) for f in part.factors):
                    raise ValueError(f"an interaction joins two or more of the "
                                     f"{len(self.factors)} factors, not {part.factors}")
                self._sums.append(KroneckerSum(self.factors, [0.0] * len(self.factors),
                                               [(tuple(part.factors), 1.0)]))
                self._columns.append(np.ones(self.d, dtype=bool))
            else:
                pattern = np.asarray(part.pattern, dtype=float)
                if pattern.shape != (self.k, self.d) or np.any(pattern < 0):
                    raise ValueError(f"a ridge pattern must be (K, d) = ({self.k}, {self.d}) "
                                     f"and ≥ 0, not {pattern.shape}")
                self._sums.append(None)
                self._columns.append(pattern)

    @property
    def size(self) -> int:
        """K·d, the number of coefficients."""
        return self.k * self.d

    @property
    def free_size(self) -> int:
        """p, the number of free coordinates (K·d without a reparametrization)."""
        t = self.reparametrization
        return self.size if t is None else t.size

    def column_graphs(self, c: int) -> tuple[Graph, ...]:
        """Every factor's graph on column ``c``: the subgraph induced by the nodes it is
        present on (the factor itself for a column present everywhere)."""
        t = self.reparametrization
        masks = None if t is None else t.partial(c)
        if masks is None:
            return tuple(self.factors)
        return tuple(self._induced_graph(f, mask)[0] for f, mask in enumerate(masks))

    def _induced_graph(self, f: int, mask: np.ndarray
                       ) -> tuple[Graph, tuple[np.ndarray, np.ndarray]]:
        key = (f, np.packbits(mask).tobytes() + bytes([len(mask) % 8]))
        if key not in self._induced:
            graph = induced(self.factors[f], mask)
            self._induced[key] = (graph, _factor_spectrum(graph))
        return self._induced[key]

    def column_spectrum(self, c: int, f: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`factor_spectrum` of factor ``f``'s graph on column ``c``."""
        t = self.reparametrization
        masks = None if t is None else t.partial(c)
        if masks is None:
            return self.factor_spectrum(f)
        return self._induced_graph(f, masks[f])[1]

    def _present(self, c: int) -> np.ndarray:
        t = self.reparametrization
        return np.ones(self.k, dtype=bool) if t is None else t.present(c)

    def _column_sum(self, a: int, c: int) -> KroneckerSum | None:
        """Graph part ``a`` on a column present in some strata only, over its induced
        graphs (None: the part does not act on the column)."""
        key = (a, c)
        if key not in self._column_sums:
            part = self.parts[a]
            graphs = self.column_graphs(c)
            total = None
            if isinstance(part, LaplacianPart) and self._columns[a][c]:
                total = KroneckerSum(graphs, [1.0 if i == part.factor else 0.0
                                              for i in range(len(graphs))])
            elif isinstance(part, InteractionPart):
                total = KroneckerSum(graphs, [0.0] * len(graphs), [(tuple(part.factors), 1.0)])
            self._column_sums[key] = total
        return self._column_sums[key]

    def acts(self, a: int) -> bool:
        """Whether part ``a`` penalizes some free coordinate: TᵀS_aT ≠ 0. A graph part
        vanishes on a column constant along a factor it acts through, and on a column
        present on nodes of that factor that no edge joins (an induced subgraph without
        edges); a weight on a part that acts on nothing cannot be chosen from the data."""
        part = self.parts[a]
        t = self.reparametrization
        if isinstance(part, RidgePart):
            present = np.ones(self.size, dtype=bool) if t is None else t.scale > 0
            return bool(np.any(self._columns[a].reshape(-1)[present] > 0))
        joined = part.factors if isinstance(part, InteractionPart) else (part.factor,)
        for c in range(self.d):
            if isinstance(part, LaplacianPart) and not self._columns[a][c]:
                continue
            graphs = self.column_graphs(c)
            if all((t is None or not t.constant[c, f]) and graphs[f].n_edges > 0
                   for f in joined):
                return True
        return False

    def column_axes(self, c: int) -> tuple[tuple[int, ...], np.ndarray]:
        """(the factors column ``c`` varies over, each stratum's position among that
        column's free coordinates (K,))."""
        t = self.reparametrization
        if t is None:
            return tuple(range(len(self.factors))), np.arange(self.k, dtype=np.int64)
        return t.kept(c), t.column.reshape(self.k, self.d)[:, c] - t.offsets[c]

    def _coordinate(self, c: int, local: np.ndarray) -> np.ndarray:
        """The free coordinates of column ``c``'s entries ``local``."""
        t = self.reparametrization
        return local * self.d + c if t is None else t.offsets[c] + local

    # -- products --------------------------------------------------------------------
    def apply_part(self, a: int, x: np.ndarray) -> np.ndarray:
        """S_a X for X of shape (K, d)."""
        total = self._sums[a]
        if total is None:
            return self._columns[a] * x
        columns = self._columns[a] & ~self._partial
        out = np.zeros_like(x)
        if columns.any():
            out[:, columns] = total.apply(np.ascontiguousarray(x[:, columns]))
        for c in self._partial_columns:
            inner = self._column_sum(a, c)
            if inner is not None:
                strata = np.flatnonzero(self._present(c))
                out[strata, c] = inner.apply(np.ascontiguousarray(x[strata, c])[:, None])[:, 0]
        return out

    def apply(self, weights: Weights, x: np.ndarray) -> np.ndarray:
        """P(w) X."""
        return _weighted_sum(weights, x, self.apply_part)

    def apply_part_batch(self, a: int, x: np.ndarray) -> np.ndarray:
        """S_a X for a batch X of shape (K, P, d) (P right-hand sides at once)."""
        total = self._sums[a]
        if total is None:
            return self._columns[a][:, None, :] * x
        if self._partial.any():
            return np.stack([self.apply_part(a, x[:, i, :]) for i in range(x.shape[1])],
                            axis=1)
        columns = self._columns[a]
        k, p, d = x.shape
        if columns.all():
            return total.apply(x.reshape(k, p * d)).reshape(k, p, d)
        out = np.zeros_like(x)
        if columns.any():
            inner = np.ascontiguousarray(x[:, :, columns]).reshape(k, -1)
            out[:, :, columns] = total.apply(inner).reshape(k, p, -1)
        return out

    def apply_batch(self, weights: Weights, x: np.ndarray) -> np.ndarray:
        """P(w) X for X of shape (K, P, d)."""
        return _weighted_sum(weights, x, self.apply_part_batch)

    def quadratics(self, theta: np.ndarray) -> np.ndarray:
        """½ θᵀ S_a θ for every part (unweighted)."""
        return np.array([0.5 * float(np.sum(theta * self.apply_part(a, theta)))
                         for a in range(len(self.parts))])

    def part_matrix(self, a: int) -> sp.csr_matrix:
        """S_a as a sparse (K·d × K·d) matrix (for exact factorizations and tests)."""
        if a not in self._matrices:
            self._matrices[a] = self._part_matrix(a)
        return self._matrices[a]

    def _part_matrix(self, a: int) -> sp.csr_matrix:
        part = self.parts[a]
        if isinstance(part, RidgePart):
            return sp.diags(self._columns[a].reshape(-1)).tocsr()
        if isinstance(part, InteractionPart):
            lifted = sp.identity(1, format="csr")
            for f, graph in enumerate(self.factors):
                lifted = sp.kron(lifted, graph.laplacian() if f in part.factors
                                 else sp.identity(graph.n), format="csr")
            full = np.ones(self.d, dtype=bool)
        else:
            gammas = [1.0 if i == part.factor else 0.0 for i in range(len(self.factors))]
            lifted = product_laplacian(self.factors, gammas)
            full = self._columns[a].astype(bool)
        total = sp.kron(lifted, sp.diags((full & ~self._partial).astype(float)), format="csr")
        for c in self._partial_columns:
            inner = self._column_sum(a, c)
            if inner is None:
                continue
            strata = np.flatnonzero(self._present(c))
            embed = sp.csr_matrix((np.ones(len(strata)), (strata, np.arange(len(strata)))),
                                  shape=(self.k, len(strata)))
            unit = np.zeros(self.d)
            unit[c] = 1.0
            total = total + sp.kron(embed @ _sum_matrix(inner) @ embed.T, sp.diags(unit),
                                    format="csr")
        return total.tocsr()

    def matrix(self, weights: Weights) -> sp.csr_matrix:
        """P(w) as a sparse matrix."""
        total = sp.csr_matrix((self.size, self.size))
        for a, w in enumerate(weights):
            if w != 0:
                total = total + w * self.part_matrix(a)
        return total.tocsr()

    def free_part_matrix(self, a: int) -> sp.csr_matrix:
        """TᵀS_aT (S_a without a reparametrization)."""
        t = self.reparametrization
        if t is None:
            return self.part_matrix(a)
        key = -1 - a
        if key not in self._matrices:
            self._matrices[key] = t.sandwich(self.part_matrix(a))
        return self._matrices[key]

    def free_matrix(self, weights: Weights) -> sp.csr_matrix:
        """TᵀP(w)T as a sparse matrix."""
        total = sp.csr_matrix((self.free_size, self.free_size))
        for a, w in enumerate(weights):
            if w != 0:
                total = total + w * self.free_part_matrix(a)
        return total.tocsr()

    def diagonal(self, weights: Weights) -> np.ndarray:
        """diag P(w) as (K, d)."""
        out = np.zeros((self.k, self.d))
        for a, w in enumerate(weights):
            total = self._sums[a]
            if total is None:
                out += w * self._columns[a]
                continue
            out += w * total.diagonal[:, None] * (self._columns[a] & ~self._partial)[None, :]
            for c in self._partial_columns:
                inner = self._column_sum(a, c)
                if inner is not None:
                    out[self._present(c), c] += w * inner.diagonal
        return out

    # -- structure -------------------------------------------------------------------
    def uniform_ridges(self) -> bool:
        """Is every ridge pattern the same on every stratum?"""
        present = [self._present(c) for c in range(self.d)]
        return all(total is not None or all(bool(np.all(cols[live, c] == cols[live, c][:1]))
                                            for c, live in enumerate(present))
                   for total, cols in zip(self._sums, self._columns, strict=True))

    def null_components(self, weights: Weights) -> list[np.ndarray]:
        """Per column c, labels of its free coordinates (K without a reparametrization):
        the components of the product graph of the active Laplacian parts on c (over the
        factors c varies over), with −1 for coordinates a ridge on c touches (those
        components leave the null space). Each label ≥ 0 is one null vector (its
        indicator)."""
        out = []
        for c in range(self.d):
            axes, local = self.column_axes(c)
            graphs = self.column_graphs(c)
            size = int(np.prod([graphs[f].n for f in axes], dtype=np.int64))
            present = self._present(c)
            active = [0.0] * len(self.factors)
            ridged = np.zeros(size, dtype=bool)
            for a, w in enumerate(weights):
                if w <= 0:
                    continue
                part = self.parts[a]
                if isinstance(part, LaplacianPart):
                    if self._columns[a][c] and part.factor in axes:
                        active[part.factor] = 1.0
                elif isinstance(part, RidgePart):
                    ridged |= np.bincount(local, weights=self._columns[a][:, c] * present,
                                          minlength=size) > 0
            for a, w in enumerate(weights):
                part = self.parts[a]
                # a Laplacian on one joined factor already confines θ to that factor's
                # components, inside L_a ⊗ L_b's null space; alone, that null space is
                # not spanned by component indicators (an interaction joining a factor
                # the column is constant along vanishes on it)
                if (w > 0 and isinstance(part, InteractionPart)
                        and all(f in axes for f in part.factors)
                        and not any(active[f] for f in part.factors)):
                    raise SpectralNullSpace(
                        "the null space of an interaction term without a Laplacian on any "
                        "factor it joins is only known spectrally: the ridges must be the "
                        "same on every stratum")
            labels = _product_labels([graphs[f] for f in axes], [active[f] for f in axes])
            dead = np.unique(labels[ridged])
            labels = np.where(np.isin(labels, dead), -1, labels)
            _, compact = np.unique(labels, return_inverse=True)
            compact = compact.reshape(-1) - (1 if (labels < 0).any() else 0)
            out.append(np.where(labels < 0, -1, compact))
        return out

    def null_basis(self, weights: Weights) -> sp.csr_matrix:
        """An orthonormal basis of P(w)'s null space (K·d × M₀), sparse: normalized
        component indicators per column; for an interaction without a Laplacian on any
        factor it joins, P's eigenvectors of its M₀ smallest eigenvalues, M₀ counted
        exactly from the spectrum (up to :data:`DENSE_NULL_LIMIT` coefficients). With a
        reparametrization θ = Tφ: TN for N an orthonormal null basis of TᵀPT."""
        t = self.reparametrization
        try:
            components = self.null_components(weights)
        except SpectralNullSpace as error:
            if self.free_size > DENSE_NULL_LIMIT or not self.uniform_ridges():
                raise ValueError(f"{error}, and the penalty has at most {DENSE_NULL_LIMIT} "
                                 f"coefficients (it has {self.free_size})") from None
            null = self.pseudo_logdet(weights).null_dim
            vectors = np.linalg.eigh(self.free_matrix(weights).toarray())[1][:, :null]
            basis = sp.csr_matrix(vectors)
            return basis if t is None else (t.matrix @ basis).tocsr()
        rows, cols, vals = [], [], []
        count = 0
        for c, labels in enumerate(components):
            keep = labels >= 0
            if not keep.any():
                continue
            sizes = np.bincount(labels[keep])
            local = np.flatnonzero(keep)
            rows.append(self._coordinate(c, local))
            cols.append(count + labels[keep])
            vals.append(1.0 / np.sqrt(sizes[labels[keep]]))
            count += len(sizes)
        if not rows:
            return sp.csr_matrix((self.size, 0))
        basis = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                      np.concatenate(cols))),
                              shape=(self.free_size, count))
        return basis if t is None else (t.matrix @ basis).tocsr()

    def null_dim(self, weights: Weights) -> int:
        if self.uniform_ridges():
            return self.pseudo_logdet(weights).null_dim
        return int(sum(int(labels.max(initial=-1)) + 1
                       for labels in self.null_components(weights)))

    # -- log pseudo-determinant ------------------------------------------------------
    def pseudo_logdet(self, weights: Weights) -> LogDet:
        """log|P(w)|₊ (of TᵀPT with a reparametrization) and ∂/∂ log w_a, exact (see the
        module docstring)."""
        values = np.asarray(weights, dtype=float)
        if np.any(values < 0) or not np.all(np.isfinite(values)):
            raise ValueError(f"penalty weights must be finite and ≥ 0, not {values}")
        if self.uniform_ridges():
            return self._spectral_logdet(values)
        return self._anchored_logdet(values)

    def factor_spectrum(self, f: int) -> tuple[np.ndarray, np.ndarray]:
        """(eigenvalues over the factor's axes broadcast to its own shape, structural-null
        mask) of factor ``f``'s Laplacian, flattened over the factor's nodes in the
        product's (C) order."""
        if f not in self._spectra:
            self._spectra[f] = _factor_spectrum(self.factors[f])
        return self._spectra[f]

    def _spectral_logdet(self, weights: np.ndarray) -> LogDet:
        """Column by column over the product of the factors it varies over (every factor
        without a reparametrization): a Laplacian part on a factor the column is constant
        along, or an interaction joining one, vanishes there (T's columns are normalized,
        so the others keep their eigenvalues)."""
        value = 0.0
        gradient = np.zeros(len(weights))
        hessian = np.zeros((len(weights), len(weights)))
        null = 0
        for c in range(self.d):
            axes = self.column_axes(c)[0]
            graphs = self.column_graphs(c)
            shape = tuple(graphs[f].n for f in axes) or (1,)
            position = {f: i for i, f in enumerate(axes)}

            def lifted(f: int, values: np.ndarray, shape=shape, position=position
                       ) -> np.ndarray:
                along = [1] * len(shape)
                along[position[f]] = shape[position[f]]
                return values.reshape(along)

            total = np.zeros(shape)
            nullmask = np.ones(shape, dtype=bool)
            ridge = 0.0
            terms: list[tuple[int, np.ndarray]] = []
            for a, w in enumerate(weights):
                part = self.parts[a]
                if isinstance(part, LaplacianPart):
                    if not self._columns[a][c] or w == 0 or part.factor not in position:
                        continue
                    values, zero = self.column_spectrum(c, part.factor)
                    term = lifted(part.factor, w * values)
                    total = total + term
                    nullmask = nullmask & lifted(part.factor, zero)
                    terms.append((a, term))
                elif isinstance(part, InteractionPart):
                    if w == 0 or not all(f in position for f in part.factors):
                        continue
                    term = np.full((1,) * len(shape), w)
                    joined_zero = np.zeros((1,) * len(shape), dtype=bool)
                    for f in part.factors:
                        values, zero = self.column_spectrum(c, f)
                        term = term * lifted(f, values)
                        joined_zero = joined_zero | lifted(f, zero)
                    total = total + term
                    nullmask = nullmask & joined_zero
                    terms.append((a, term))
                else:
                    level = float(self._columns[a][np.argmax(self._present(c)), c])
                    if level > 0 and w > 0:
                        ridge += w * level
                        terms.append((a, np.full((1,) * len(shape), w * level)))
            if ridge > 0:
                nullmask = np.zeros(shape, dtype=bool)
            total = np.broadcast_to(total + ridge, shape)
            live = ~np.broadcast_to(nullmask, shape)
            null += int(np.count_nonzero(~live))
            eig = total[live]
            value += float(np.sum(np.log(eig)))
            # ∂/∂ρ_a log p_i = t_a,i / p_i (t_a,i = w_a s_a,i), ∂²/∂ρ_a∂ρ_b = δ_ab t_a,i / p_i
            # − t_a,i t_b,i / p_i²
            ratios = [(a, np.broadcast_to(term, shape)[live] / eig) for a, term in terms]
            for a, ratio in ratios:
                gradient[a] += float(np.sum(ratio))
                for b, other in ratios:
                    hessian[a, b] -= float(ratio @ other)
        hessian += np.diag(gradient)
        return LogDet(value, gradient, null, "exact-spectral", hessian)

    def _anchored_logdet(self, weights: np.ndarray) -> LogDet:
        from .cholesky import SparseCholesky

        if self.free_size > FALLBACK_LIMIT:
            raise ValueError(
                f"log|P|₊ for a ridge that differs between strata is computed by a sparse "
                f"factorization up to {FALLBACK_LIMIT} coefficients; this penalty has "
                f"{self.free_size}")
        anchors: list[int] = []
        log_sizes = 0.0
        for c, labels in enumerate(self.null_components(weights)):
            keep = labels >= 0
            if not keep.any():
                continue
            local = np.flatnonzero(keep)
            first = np.unique(labels[keep], return_index=True)[1]
            anchors.extend(self._coordinate(c, local[first]).tolist())
            log_sizes += float(np.sum(np.log(np.bincount(labels[keep]))))
        keep = np.ones(self.free_size, dtype=bool)
        keep[anchors] = False
        matrix = self.free_matrix(weights)[keep][:, keep]
        factor = SparseCholesky(matrix)
        gradient = np.array([
            w * factor.trace_inverse_times(self.free_part_matrix(a)[keep][:, keep])
            if w > 0 else 0.0 for a, w in enumerate(weights)])
        return LogDet(factor.logdet() + log_sizes, gradient, len(anchors), "exact-cholesky")


def _sum_matrix(total: KroneckerSum) -> sp.csr_matrix:
    """A Kronecker sum's matrix (its factors' Laplacians lifted, and its interactions')."""
    out = product_laplacian(total.factors, total.gammas)
    for joined, weight in total.interactions:
        lifted = sp.identity(1, format="csr")
        for f, graph in enumerate(total.factors):
            lifted = sp.kron(lifted, graph.laplacian() if f in joined
                             else sp.identity(graph.n), format="csr")
        out = out + weight * lifted
    return sp.csr_matrix(out)


def _product_labels(factors: Sequence[Graph], active: Sequence[float]) -> np.ndarray:
    labels = [component_labels(g) if w > 0 else np.arange(g.n, dtype=np.int64)
              for g, w in zip(factors, active, strict=True)]
    if not labels:
        return np.zeros(1, dtype=np.int64)
    sizes = tuple(int(lab.max(initial=-1)) + 1 for lab in labels)
    grids = np.meshgrid(*labels, indexing="ij")
    return np.ravel_multi_index(tuple(g.ravel() for g in grids), sizes).astype(np.int64)


def split_grid_axes(graph: Graph) -> list[Graph]:
    """A grid factor's path axes (its Laplacian is their Kronecker sum); else the graph."""
    if graph.structure == "grid" and len(graph.shape) > 1:
        return [path_graph(n) for n in graph.shape]
    return [graph]


def _factor_spectrum(graph: Graph) -> tuple[np.ndarray, np.ndarray]:
    """All eigenvalues of one factor's Laplacian (as an array over its nodes' positions in
    its own axes, C order) and the mask of its structural zeros: closed forms for unit
    paths and cycles (and grids of paths), a dense eigvalsh otherwise, whose
    n_components smallest values are the null space by the graph's structure."""
    axes = split_grid_axes(graph)
    if len(axes) > 1:
        total = np.zeros(1)
        zero = np.ones(1, dtype=bool)
        for axis in axes:
            values, null = _factor_spectrum(axis)
            total = np.add.outer(total, values).reshape(-1)
            zero = np.logical_and.outer(zero, null).reshape(-1)
        return total, zero
    n = graph.n
    unit = graph.n_edges == 0 or np.allclose(graph.weights, 1.0)
    if graph.structure == "path" and unit and graph.n_edges == n - 1:
        values = 2.0 - 2.0 * np.cos(np.pi * np.arange(n) / n)
    elif graph.structure == "cycle" and unit and n >= 3 and graph.n_edges == n:
        values = 2.0 - 2.0 * np.cos(2 * np.pi * np.arange(n) / n)
    else:
        if n > EIGVALS_DENSE_LIMIT:
            raise ValueError(
                f"log|P|₊ needs every eigenvalue of each factor: a general graph of {n} "
                f"nodes is over the dense limit of {EIGVALS_DENSE_LIMIT}")
        values = np.sort(np.linalg.eigvalsh(graph.laplacian().toarray()))
    zero = np.zeros(n, dtype=bool)
    zero[: n_components(graph)] = True  # sorted ascending: the first ones are the null space
    values = np.where(zero, 0.0, np.clip(values, 0.0, None))
    return values, zero


class PenaltyLaplacian(KroneckerSum):
    """The graph parts of P(w) (Laplacian parts on some rows, interactions) as the Newton
    solver's Laplacian, for rows whose weights differ (``by (f weight w)``), where one
    Kronecker sum for every row does not apply. No exact solve (the preconditioner is
    block Jacobi), and ``diagonal`` (one value per stratum for every column) is the
    smallest over the columns: a preconditioner's and a stopping bound's approximation
    that errs on the side of more steps."""

    def __init__(self, penalty: QuadraticPenalty, weights: Weights):
        self.factors = tuple(penalty.factors)
        self.gammas = ()
        self.interactions = ()
        self.penalty = penalty
        self.weights = np.array([w if not isinstance(p, RidgePart) else 0.0
                                 for p, w in zip(penalty.parts, weights, strict=True)])
        self.k = penalty.k
        self.shape = (penalty.k,)
        self.diagonal = penalty.diagonal(self.weights).min(axis=1, initial=np.inf) \
            if penalty.d else np.zeros(penalty.k)
        self._exact = False
        self._solver = None

    def apply(self, x: np.ndarray) -> np.ndarray:
        return self.penalty.apply(self.weights, x)

    def band(self, d: int) -> None:
        """No banded direct solve: its band layout assumes one L ⊗ I for every column."""
        return None


def _weighted_sum(weights: Weights, x: np.ndarray,
                  apply_part: Callable[[int, np.ndarray], np.ndarray]) -> np.ndarray:
    """Σ_a w_a S_a X, skipping the parts whose weight is 0."""
    out = np.zeros_like(x)
    for a, w in enumerate(weights):
        if w != 0:
            out += w * apply_part(a, x)
    return out
