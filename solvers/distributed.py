"""ADMM for Laplacian-regularized stratified models on a Dask cluster.

The strata of a product graph are cut into blocks: slabs along the first axis of the
product, so a block's strata are contiguous. Each block belongs to one worker, which
keeps everything about it in memory between iterations: its proxes (so Newton warm
starts and active sets survive), its slice of the consensus iterate, the copies and the
duals. One iteration, with every task run on its block's worker:

1. ``_prox_forward``: the proxes, the right-hand side of the Laplacian step
   (L + cI) X = B, and its transform along every axis but the first (those axes lie
   inside the block), kept on the worker in a column layout (see
   :class:`ProductSpectrum`);
2. the Laplacian step, shared by ranges of "outer" spectral coordinates: block j
   collects its range from every block, transforms along the first axis, solves,
   transforms back (``_mix_columns``), and every block collects its rows from every
   share. A piece that stays on its worker is read there; the others travel in one
   ``_send`` task per ordered pair of workers (not of blocks) and exchange. Each worker
   holds and receives about K·d / (number of workers) numbers, never all of θ;
3. ``_unmix_dual``: transformed back, then the dual update and partial sums of the
   residual norms.

The stopping rule and penalty adaptation of the in-memory :func:`solvers.admm.admm`, one
:class:`solvers.admm.AdmmRule` object, are applied to those sums by every block at the
start of the next iteration and by the client alike, so the next iteration is already
queued while the client reads the sums. Only the sums (five floats per block) reach the client during the
iterations. The
records are Dask data with lineage; the iterates are not (keeping them as task outputs
cost a scheduler round trip per step and moved them between workers). If a worker is
lost, its blocks' iterates are gone: the tasks notice (:class:`BlockLost`) and the client
starts the fit again on the workers left, up to ``restarts`` times.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.fft

from .admm import AdmmRule, Result, Step, best_copy_index, suboptimality_bound
from .blockwise import threads_at_most
from .graphs import Graph, Interaction, RowGroup, n_components
from .laplacian import (
    Axis,
    KroneckerSolver,
    factor_axes,
    is_sparse_axis,
    solve_along,
    split_grids,
)
from .threads import eigh


class ProductSpectrum:
    """The Laplacian of a product graph, arranged for slabs along its first axis.

    Every axis is diagonalized (fast transforms, or dense eigenbases) except at most one
    large general graph (:func:`is_sparse_axis`), along which the step solves the shifted
    sparse systems (γL + (Σ other eigenvalues + c) I) x = b by conjugate gradients.

    After the transforms along the other axes, a block's slab is laid out as columns:
    (rows, O, G) with O the "outer" spectral coordinates (every axis but the first and a
    sparse one) and G the sparse axis × the width of θ. The first axis and a sparse axis
    then act within each outer coordinate, so the Laplacian step is independent per
    outer coordinate and is shared among blocks by ranges of them."""

    def __init__(self, factors: Sequence[Graph], gammas: Sequence[float]):
        axes = split_grids(factors, gammas)
        sparse = [i for i, (g, _) in enumerate(axes) if is_sparse_axis(g)]
        if len(sparse) > 1:
            raise ValueError("at most one axis may be a large general graph")
        (first, gamma), rest = axes[0], axes[1:]
        self.mix = None  # the first axis's orthonormal eigenbasis (rows), when it has one
        self.first_laplacian = None  # γL of a sparse first axis
        self.first_values = np.zeros(first.n)  # its eigenvalues at weight 1
        if sparse == [0]:
            self.first = np.zeros(first.n)
            self.first_laplacian = (gamma * first.laplacian()).tocsr()
        else:
            axis = Axis(first, gamma)
            if axis.kind == "dct":
                self.mix = scipy.fft.dct(np.eye(first.n), type=2, norm="ortho", axis=0)
                values = axis.eigenvalues
            else:  # dense (a cycle's FFT basis is complex: use its real eigenbasis here)
                values, vectors = eigh(first.laplacian().toarray())
                self.mix = vectors.T
                values = np.clip(values, 0.0, None)
            self.first = gamma * values
            self.first_values = values
        self.rest = (KroneckerSolver([g for g, _ in rest], [w for _, w in rest], sparse=True)
                     if rest else None)
        self.rest_shape = self.rest.shape if self.rest else ()
        spectrum = self.rest.spectrum if self.rest else np.zeros(1)
        self.sparse_rest = None  # the rest's sparse axis: (position in the rest, its Axis)
        if self.rest and self.rest.sparse_axes:
            at = self.rest.sparse_axes[0]
            self.sparse_rest = (at, self.rest.axes[at])
            spectrum = np.take(spectrum, 0, axis=at)  # zeros along it: constant
        self.outer_spectrum = spectrum.reshape(-1)
        self.n0 = first.n
        self.stride = int(np.prod(self.rest_shape, dtype=np.int64))  # strata per first-axis index

        self.structure: list[ColumnGroup] | None = None  # per-column spectra (set_structure)

    @property
    def outer(self) -> int:
        return len(self.outer_spectrum)

    def structure_unsupported(self, factors: Sequence[Graph], groups: Sequence[RowGroup],
                              interactions: Sequence[Interaction]) -> str | None:
        """Why :meth:`set_structure` cannot take these rows, or None."""
        if self.first_laplacian is not None or self.sparse_rest is not None:
            return "a large general factor is solved by conjugate gradients"
        if factors[0].structure == "grid" and len(factors[0].shape) > 1:
            return "the first factor is a grid (its axes lie in and outside the blocks)"
        if any(g.strata is not None for g in groups):
            return "a feature with `where` is present in some strata only"
        for group in groups:
            for a, graph in enumerate(factors):
                if group.is_constant(a) and n_components(graph) > 1:
                    return ("a row constant along a factor whose graph is not connected "
                            "(its constant mode is not one eigenvector)")
        return None

    def set_structure(self, factors: Sequence[Graph], gammas: Sequence[float],
                      groups: Sequence[RowGroup], interactions: Sequence[Interaction],
                      width: tuple[int, int]) -> None:
        """Rows with their own weights, rows constant along factors, interaction terms:
        each group of rows alike gets its spectrum, Σ_a γ_a λ_a + Σ w Π λ, as (first axis
        part, outer part) pairs whose outer products add up, and a mask keeping only the
        constant mode (index 0 of a connected factor's eigenbasis) along the factors its
        rows are constant on. Sizes n0 + O per group, never K."""
        first = self.first_values
        rest_axes = factor_axes(factors)
        shape = self.rest.spectrum.shape if self.rest else (1,)
        outer_values, outer_zero = [], []
        for a in range(1, len(factors)):
            values = np.zeros(shape)
            zero = np.ones(shape, dtype=bool)
            for i in (j - 1 for j in rest_axes[a]):  # (positions among the rest's axes)
                assert self.rest is not None
                there = [1] * len(shape)
                there[i] = shape[i]
                values = values + self.rest.axes[i].eigenvalues[: shape[i]].reshape(there)
                zero = zero & (np.arange(shape[i]) == 0).reshape(there)
            outer_values.append(values.reshape(-1))
            outer_zero.append(zero.reshape(-1))
        m = width[1]
        self.structure = []
        for group in groups:
            weights = group.weights(gammas)
            terms = [(weights[0] * first, np.ones(self.outer))] if weights[0] else []
            outer = sum((w * v for w, v in zip(weights[1:], outer_values, strict=True)),
                        np.zeros(self.outer))
            terms.append((np.ones(self.n0), outer))
            for joined, w in interactions:
                if w == 0 or any(group.is_constant(a) for a in joined):
                    continue
                part = np.full(self.outer, float(w))
                for a in joined:
                    if a > 0:
                        part = part * outer_values[a - 1]
                terms.append((first if 0 in joined else np.ones(self.n0), part))
            first_keep = (np.arange(self.n0) == 0) if group.is_constant(0) else None
            outer_keep = None
            for a in range(1, len(factors)):
                if group.is_constant(a):
                    outer_keep = outer_zero[a - 1] if outer_keep is None else \
                        outer_keep & outer_zero[a - 1]
            columns = (group.rows[:, None] * m + np.arange(m)[None, :]).reshape(-1)
            self.structure.append(ColumnGroup(columns, terms, first_keep, outer_keep))

    def to_columns(self, y: np.ndarray) -> np.ndarray:
        """(rows, *rest spectral shape, d) → (rows, O, G)."""
        if self.sparse_rest is not None:
            y = np.moveaxis(y, 1 + self.sparse_rest[0], -2)
        return y.reshape(len(y), self.outer, -1)

    def from_columns(self, x: np.ndarray, width: int) -> np.ndarray:
        """(rows, O, G) → (rows, *rest spectral shape, d)."""
        spectral = list(self.rest.spectrum.shape) if self.rest else []
        if self.sparse_rest is None:
            return x.reshape(len(x), *spectral, width)
        at = self.sparse_rest[0]
        n_g = spectral.pop(at)
        return np.moveaxis(x.reshape(len(x), *spectral, n_g, width), -2, 1 + at)

    def solve_columns(self, x: np.ndarray, lo: int, hi: int, c: float | None,
                      start: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """The Laplacian step for outer coordinates lo..hi − 1 of every row, x of shape
        (n0, hi − lo, G): solved with L + cI, or L applied when c is None; with the CG
        columns for a warm start (None when no sparse axis)."""
        if hi == lo:  # more blocks than outer coordinates: this share is empty
            return x, None
        if self.mix is not None:
            x = np.tensordot(self.mix, x, axes=([1], [0]))
        eigenvalues = np.add.outer(self.first, self.outer_spectrum[lo:hi])[..., None]
        columns = None
        if self.first_laplacian is not None:  # along the first axis
            x, columns = solve_along(self.first_laplacian, x, 0, eigenvalues, c, start)
        elif self.sparse_rest is not None:  # along the sparse axis inside G
            n_g = self.sparse_rest[1].n
            y = x.reshape(*x.shape[:2], n_g, -1)
            y, columns = solve_along(self.sparse_rest[1].laplacian, y, 2,
                                     eigenvalues[..., None], c, start)
            x = y.reshape(x.shape)
        elif self.structure is not None:  # each group of columns its own spectrum
            out = np.zeros_like(x)
            for group in self.structure:
                values = group.eigenvalues(lo, hi)[..., None]
                block = x[..., group.columns]
                block = block * values if c is None else block / (values + c)
                keep = group.keep(lo, hi)
                out[..., group.columns] = block if keep is None else block * keep[..., None]
            x = out
        else:
            x = x * eigenvalues if c is None else x / (eigenvalues + c)
        if self.mix is not None:
            x = np.tensordot(self.mix.T, x, axes=([1], [0]))
        return x, columns


@dataclass(frozen=True)
class ColumnGroup:
    """Columns of θ (rows × outputs) alike: their spectrum as a sum of outer products
    first ⊗ outer, and which modes they keep (None: all) along the first axis and the
    outer coordinates."""

    columns: np.ndarray
    terms: list[tuple[np.ndarray, np.ndarray]]
    first_keep: np.ndarray | None
    outer_keep: np.ndarray | None

    def eigenvalues(self, lo: int, hi: int) -> np.ndarray:
        return sum((np.multiply.outer(f, o[lo:hi]) for f, o in self.terms),
                   np.zeros((len(self.terms[0][0]), hi - lo)))

    def keep(self, lo: int, hi: int) -> np.ndarray | None:
        if self.first_keep is None and self.outer_keep is None:
            return None
        first = np.ones(len(self.terms[0][0]), dtype=bool) if self.first_keep is None \
            else self.first_keep
        outer = np.ones(hi - lo, dtype=bool) if self.outer_keep is None \
            else self.outer_keep[lo:hi]
        return np.multiply.outer(first, outer).astype(float)


@dataclass(frozen=True)
class Blocks:
    """Block b covers first-axis indices bounds[b]:bounds[b + 1]."""

    bounds: tuple[int, ...]
    stride: int

    @classmethod
    def even(cls, n0: int, count: int, stride: int) -> Blocks:
        count = max(1, min(count, n0))
        return cls(tuple(round(i * n0 / count) for i in range(count + 1)), stride)

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def strata(self, b: int) -> tuple[int, int]:
        return self.bounds[b] * self.stride, self.bounds[b + 1] * self.stride

    def of(self, stratum: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.bounds, stratum // self.stride, side="right") - 1


def _share(j: int, count: int, total: int) -> tuple[int, int]:
    return round(j * total / count), round((j + 1) * total / count)


def block_owners(client, blocks: Blocks) -> list[str]:
    """The worker that holds each block: contiguous runs of blocks per worker."""
    workers = sorted(client.scheduler_info()["workers"])
    if not workers:
        raise RuntimeError("the Dask cluster has no workers")
    return [workers[b * len(workers) // len(blocks)] for b in range(len(blocks))]


# ---- tasks (run on workers) -------------------------------------------------------------
class BlockLost(RuntimeError):
    """A block's iterates are not on the worker running its task (the worker that held
    them was lost)."""


@dataclass
class _Block:
    proxes: tuple[Any, list]
    hat: np.ndarray
    copies: list[np.ndarray]
    duals: list[np.ndarray]
    relaxed: list[np.ndarray]
    iteration: int  # the last iteration whose dual step is done
    proxed: int  # the last iteration whose prox step is done
    warm: np.ndarray | None = None  # the previous sparse solve of this block's share
    step: Step | None = None  # the step of its latest prox
    local: np.ndarray | None = None  # its transformed slab, in the column layout
    mixed: np.ndarray | None = None  # its share of the Laplacian step
    candidates: list[np.ndarray] | None = None  # at the end: each copy, made feasible


_BLOCKS: dict[tuple[str, int], _Block] = {}  # worker-side: (fit key, block) → its state


def _block(key: str, b: int, iteration: int, proxed: int) -> _Block:
    block = _BLOCKS.get((key, b))
    if block is None or block.iteration != iteration or block.proxed != proxed:
        # a lost worker's block, or a task run twice: never continue from a wrong state
        raise BlockLost(f"block {b} is not at iteration {iteration} on this worker")
    return block


def _start(key: str, b: int, records, factory, shape: tuple[int, ...], terms: int) -> int:
    initial = factory.initial(records, shape)
    hat = np.zeros(shape) if initial is None else np.array(initial, dtype=float)
    copies = [hat.copy() for _ in range(terms)]
    _BLOCKS[(key, b)] = _Block(factory(records), hat, copies, [np.zeros(shape) for _ in range(terms)],
                               copies, 0, 0)
    return b


def _threads() -> int:
    """The worker's thread count: FFTs on every core of a machine shared by several
    workers would oversubscribe it."""
    from distributed import get_worker

    try:
        return get_worker().state.nthreads
    except ValueError:  # not on a worker (tests calling a task directly)
        return -1


def _prox_forward(key, b, it, spectrum: ProductSpectrum, relax, rule: AdmmRule, lam, *previous
                  ) -> float | None:
    """Iteration ``it`` of block b up to the forward transform (kept on the worker for
    :func:`_send`); ``previous``: every block's residual sums of iteration it − 1.
    Returns the iteration's λ, or None (and nothing done) once those say converged."""
    block = _block(key, b, it - 1, it - 1)
    if it == 1:
        step = rule.first(lam)
    else:  # the block's prox of iteration it − 1 ran (checked by _block): it set the step
        assert block.step is not None
        step = rule.next(block.step, previous)
    if step.stop:
        return None
    block.step = step
    loss_prox, reg_proxes = block.proxes
    if step.tol is not None and hasattr(loss_prox, "tol"):
        loss_prox.tol = step.tol
    if step.scale != 1.0:
        block.duals = [d * step.scale for d in block.duals]
    hat, lam = block.hat, step.lam
    with threads_at_most(_threads()):  # (a prox working block by block: the worker's own)
        block.copies = [prox(hat - d, lam)
                        for prox, d in zip([loss_prox, *reg_proxes], block.duals, strict=True)]
    block.relaxed = ([relax * c + (1.0 - relax) * hat for c in block.copies] if relax != 1.0
                     else block.copies)
    rhs = sum(c + d for c, d in zip(block.relaxed, block.duals, strict=True)) / lam
    block.proxed = it
    block.local = _forward(spectrum, rhs)
    return lam


def _forward(spectrum: ProductSpectrum, x: np.ndarray) -> np.ndarray:
    """Block rows of x transformed along every axis of the product but the first, in the
    column layout (x may be overwritten)."""
    y = x.reshape(-1, *spectrum.rest_shape, int(np.prod(x.shape[1:])))
    if spectrum.rest:
        spectrum.rest.threads = _threads()
        y = spectrum.rest.forward(y, lead=1)
    return spectrum.to_columns(y)


def _stored(key: str, b: int) -> _Block:
    block = _BLOCKS.get((key, b))
    if block is None:
        raise BlockLost(f"block {b} is not on this worker")
    return block


def _mix_columns(key: str, j: int, spectrum: ProductSpectrum, lo: int, hi: int,
                 terms: int | None, *inputs) -> float | None:
    """Block j's share of the Laplacian step: outer coordinates lo..hi − 1 of every row
    (the pieces of every block, in order), solved with c = terms / λ, or L applied when
    ``terms`` is None. Kept on the worker for the exchange back (:func:`_send`)."""
    pieces = _pieces(key, inputs, "local")
    if pieces is None:
        return None
    block = _stored(key, j)
    x = np.concatenate([piece[0] for piece in pieces])
    lam = pieces[0][1]
    c = None if terms is None else terms / lam
    block.mixed, columns = spectrum.solve_columns(x, lo, hi, c, block.warm)
    if columns is not None:
        block.warm = columns
    return lam


HERE = "here"  # a piece left on this worker by an earlier task: read it, no task needed
FROM = "from"  # a piece inside the result of a :func:`_send` task from another worker


def _send(key: str, name: str, wanted: Sequence[tuple[int, int, int, int]],
          *lams: float | None) -> dict | None:
    """The pieces one worker sends another in one task: {(source block, destination
    block): (array, λ)} for each (source, destination, lo, hi) in ``wanted``; ``name``
    'local': columns lo..hi − 1 of the source's transformed slab, 'mixed': rows lo..hi − 1
    of its share of the step. None when the iteration did not run. One task per pair of
    workers (not of blocks) keeps the scheduler's load at W(W − 1) tasks per exchange."""
    if any(lam is None for lam in lams):
        return None
    return {(source, destination): (_slice(key, source, name, lo, hi), lams[0])
            for source, destination, lo, hi in wanted}


def _slice(key: str, b: int, name: str, lo: int, hi: int) -> np.ndarray:
    """Block b's ``name`` on this worker: 'local', columns lo..hi − 1 of its transformed
    slab; 'mixed', rows lo..hi − 1 of its share of the step."""
    array = getattr(_stored(key, b), name)
    return array[:, lo:hi] if name == "local" else array[lo:hi]


def _piece(key: str, item, name: str) -> tuple[np.ndarray, float] | None:
    """(array, λ) from ("here", block, lo, hi, λ): a :func:`_slice` on this worker; or
    from ("from", pair, pieces): a :func:`_send` result."""
    if item[0] == FROM:
        _, pair, pieces = item
        return None if pieces is None else pieces[pair]
    _, b, lo, hi, lam = item
    return None if lam is None else (_slice(key, b, name, lo, hi), lam)


def _pieces(key: str, inputs: Sequence[Any], name: str) -> list[tuple[np.ndarray, float]] | None:
    """Every item's :func:`_piece`; None when any is None (the iteration did not run)."""
    pieces = [_piece(key, item, name) for item in inputs]
    found = [piece for piece in pieces if piece is not None]
    return found if len(found) == len(pieces) else None


def _unmix(spectrum: ProductSpectrum, pieces, shape) -> np.ndarray:
    """A block's rows of the step, from every block's share, transformed back."""
    y = spectrum.from_columns(np.concatenate(pieces, axis=1), int(np.prod(shape[1:])))
    if spectrum.rest:
        spectrum.rest.threads = _threads()
        y = spectrum.rest.backward(y, lead=1)
    return np.ascontiguousarray(np.real(y)).reshape(shape)


def _unmix_dual(key, b, it, spectrum: ProductSpectrum, *inputs) -> tuple[float, ...] | None:
    pieces = _pieces(key, inputs, "mixed")
    if pieces is None:  # the iteration did not run: converged before
        return None
    block = _block(key, b, it - 1, it)
    hat = _unmix(spectrum, [piece[0] for piece in pieces], block.hat.shape)
    old, copies = block.hat, block.copies
    for d, r in zip(block.duals, block.relaxed, strict=True):
        d += r - hat
    block.hat, block.iteration = hat, it
    return (sum(float(np.sum((c - hat) ** 2)) for c in copies),
            float(np.sum((hat - old) ** 2)),
            sum(float(np.sum(c * c)) for c in copies),
            float(np.sum(hat * hat)),
            sum(float(np.sum(d * d)) for d in block.duals))


@dataclass(frozen=True)
class Totals:
    """The objective's parts at the answer θ, added up over blocks; whether every block's
    θ is finite; which copy answers (0: the loss's, then each regularizer term's, then the
    consensus θ̂: :func:`solvers.admm.best_copy_index`), the spread of the copies'
    objectives and the bound on the objective's distance from the optimum."""

    loss: float
    regularization: float
    laplacian: float
    finite: bool
    copy: int = 0
    spread: float = 0.0
    suboptimality: float = 0.0


def _finish(key: str, b: int, it: int, records, factory, _after) -> list[tuple]:
    """Each copy of the block's θ (the loss's, each regularizer term's, the consensus θ̂),
    made feasible and kept on the worker until one is chosen: its loss and regularization,
    whether it is finite, and whether it is inside the loss's own domain."""
    block = _block(key, b, it, it)
    block.candidates = [factory.finalize(c.copy()) for c in (*block.copies, block.hat)]
    return [(factory.loss_value(records, theta), factory.regularization(theta),
             bool(np.all(np.isfinite(theta))), factory.in_domain(theta))
            for theta in block.candidates]


def _side_by_side(block: _Block) -> np.ndarray:
    """Every candidate's θ as the columns of one array: one Laplacian application."""
    assert block.candidates is not None  # (set by _finish)
    return np.concatenate(block.candidates, axis=-1)


def _forward_final(key: str, b: int, it: int, spectrum: ProductSpectrum, _after) -> float:
    block = _block(key, b, it, it)
    block.local = _forward(spectrum, _side_by_side(block))  # (a new array: overwritten)
    return 1.0  # a λ for the pieces (unused: the Laplacian is applied, not solved)


def _quadratic(key: str, b: int, it: int, spectrum: ProductSpectrum, *inputs) -> list[float]:
    """The block's share of ½ θᵀ L θ, for each candidate."""
    block = _block(key, b, it, it)
    theta = _side_by_side(block)
    pieces = _pieces(key, inputs, "mixed")
    assert pieces is not None  # each comes with the λ of _forward_final, never None
    product = theta * _unmix(spectrum, [p[0] for p in pieces], theta.shape)
    per = product.reshape(*theta.shape[:-1], len(block.candidates or ()), -1)
    return [0.5 * float(v) for v in np.moveaxis(per, -2, 0).reshape(per.shape[-2], -1).sum(1)]


def _emit(key: str, b: int, it: int, choice: int, sink) -> np.ndarray | None:
    """The block's chosen θ (None when ``sink`` wrote it on the worker)."""
    block = _block(key, b, it, it)
    assert block.candidates is not None  # (set by _finish)
    theta = block.candidates[choice]
    if sink is not None:
        sink(b, theta)
        return None
    return theta


def _choose(parts: list[list[tuple]], halves: list[list[float]]) -> tuple[int, Totals]:
    """The answering copy from every block's figures (:func:`_finish`, :func:`_quadratic`)
    and the totals there."""
    count = len(parts[0])
    loss = [sum(part[c][0] for part in parts) for c in range(count)]
    regularization = [sum(part[c][1] for part in parts) for c in range(count)]
    laplacian = [sum(half[c] for half in halves) for c in range(count)]
    finite = [all(part[c][2] for part in parts) for c in range(count)]
    values = [loss[c] + regularization[c] + laplacian[c] if finite[c] else float("inf")
              for c in range(count)]
    eligible = [c == 0 or all(part[c][3] for part in parts) for c in range(count)]
    at, spread = best_copy_index(values, eligible)
    c = 0 if at is None else at
    return c, Totals(float(loss[c]), float(regularization[c]), float(laplacian[c]), finite[c],
                     c, spread)


def _forget(key: str) -> None:
    for k in [k for k in _BLOCKS if k[0] == key]:
        del _BLOCKS[k]


def _heap_for_arrays(keep: bool) -> None:
    """Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_ set, which also pins glibc's
    mmap threshold at 128 KiB: every larger array is mapped and faulted in afresh, and an
    iteration's temporaries ran ~1.8× slower. During a fit freed arrays stay on the heap;
    afterwards the worker's settings come back."""
    trim = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    if trim is None or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    if keep:
        libc.mallopt(m_mmap_threshold, 32 << 20)
        libc.mallopt(m_trim_threshold, 1 << 30)
    else:
        libc.mallopt(m_mmap_threshold, 128 << 10)
        libc.mallopt(m_trim_threshold, int(trim))
        libc.malloc_trim(0)


# ---- the client loop --------------------------------------------------------------------
def admm_on_cluster(client, records: Sequence[Any], factory, spectrum: ProductSpectrum,
                    blocks: Blocks, width: tuple[int, int], terms: int, *, lam: float = 1.0,
                    eps_abs: float = 1e-6, eps_rel: float = 1e-6, max_iter: int = 2000,
                    adaptive: bool = True, mu: float = 5.0, tau: float = 2.0, relax: float = 1.0,
                    inner_tol: Callable[[float, float, float | None], float] | None = None,
                    restarts: int = 2, sink: Callable[[int, np.ndarray], None] | None = None
                    ) -> tuple[Result, Totals]:
    """(result, the objective's parts at θ). ``records[b]``: a future (or value) with block b's records,
    whatever ``factory`` understands; ``factory(records)`` → (loss prox, [regularizer
    proxes]) on a worker, with ``factory.initial``, ``factory.finalize``,
    ``factory.loss_value(records, θ)`` and ``factory.regularization(θ)``. ``width``: the (rows, outputs) of one stratum's θ.
    ``inner_tol(primal ratio, dual ratio, previous)`` gives the inner (Newton) tolerance
    for the next iteration. The same stopping rule and penalty adaptation as
    :func:`solvers.admm.admm`; ``result.state`` is None (the iterates stay on the workers).
    A lost worker restarts the fit from the beginning, at most ``restarts`` times.
    ``sink(b, θ_b)``, when given, is called on the workers with each block's θ, which then
    never reaches the client (``result.theta`` is None)."""
    start = time.perf_counter()
    client.run(_heap_for_arrays, True, on_error="ignore")
    try:
        for attempt in range(restarts + 1):
            try:
                result, totals = _iterate(client, records, factory, spectrum, blocks, width,
                                          terms, lam, eps_abs, eps_rel, max_iter, adaptive, mu,
                                          tau, relax, inner_tol, sink)
                result.restarts = attempt
                break
            except (BlockLost, concurrent.futures.CancelledError) as error:
                # a worker's loss shows as a task's BlockLost or, for tasks whose inputs
                # were on it, as cancelled futures
                if attempt == restarts:
                    raise BlockLost(f"workers were lost in each of {restarts + 1} attempts "
                                    f"(last: {error})") from error
    finally:
        client.run(_heap_for_arrays, False, on_error="ignore")
    result.seconds = time.perf_counter() - start
    return result, totals


def _iterate(client, records, factory, spectrum, blocks, width, terms, lam, eps_abs, eps_rel,
             max_iter, adaptive, mu, tau, relax, inner_tol, sink) -> tuple[Result, Totals]:
    key = uuid.uuid4().hex
    owners = block_owners(client, blocks)
    count = len(blocks)

    def on(b: int, fn, *args):  # run on block b's worker (elsewhere only if it is gone)
        return client.submit(fn, *args, workers=[owners[b]], allow_other_workers=True,
                             pure=False)

    spec = client.scatter(spectrum, broadcast=True, hash=False)
    shapes = [(hi - lo, *width) for lo, hi in (blocks.strata(b) for b in range(count))]
    size = sum(s[0] for s in shapes) * width[0] * width[1]
    rule = AdmmRule(terms, size, eps_abs, eps_rel, adaptive, mu, tau, inner_tol)
    rounds = {0: [on(b, _start, key, b, records[b], factory, shapes[b], terms)
                  for b in range(count)]}

    shares = [_share(j, count, spectrum.outer) for j in range(count)]

    workers = sorted(set(owners))
    hosted = {w: [b for b in range(count) if owners[b] == w] for w in workers}

    def exchange(name: str, tokens: list, bounds: Callable[[int], tuple[int, int]]
                 ) -> list[list]:
        """For each consumer block, one item per source block: read on its worker (HERE)
        or carried by one :func:`_send` task per pair of workers (FROM).
        ``bounds(consumer)``: the range of each source's array the consumer wants. The
        client keeps no reference: a piece is freed once its consumers have run."""
        sends = {}
        for u in workers:
            for v in workers:
                if u != v:
                    wanted = [(s, c, *bounds(c)) for s in hosted[u] for c in hosted[v]]
                    sends[u, v] = on(hosted[u][0], _send, key, name, wanted,
                                     *[tokens[s] for s in hosted[u]])

        def item(s: int, c: int):
            if owners[s] == owners[c]:
                return HERE, s, *bounds(c), tokens[s]
            return FROM, (s, c), sends[owners[s], owners[c]]
        return [[item(s, c) for s in range(count)] for c in range(count)]

    def laplacian(tokens: list, solve: bool) -> list[list]:
        """The Laplacian step's tasks: for each block, the pieces of its rows."""
        pieces = exchange("local", tokens, lambda j: shares[j])
        mixed = [on(j, _mix_columns, key, j, spec, *shares[j], terms if solve else None,
                    *pieces[j]) for j in range(count)]
        return exchange("mixed", mixed, lambda b: tuple(blocks.bounds[b:b + 2]))

    def submit(it: int) -> None:  # one iteration's rounds of tasks
        lams = [on(b, _prox_forward, key, b, it, spec, relax, rule, lam, *rounds[it - 1])
                for b in range(count)]
        rows = laplacian(lams, solve=True)
        rounds[it] = [on(b, _unmix_dual, key, b, it, spec, *rows[b]) for b in range(count)]

    step, following = rule.first(lam), None
    last: list = []  # the residual sums of the latest iteration
    history = []
    it = 0
    try:
        submit(1)
        for it in range(1, max_iter + 1):
            if it < max_iter:
                submit(it + 1)  # runs while this client reads iteration it's sums
            last = client.gather(rounds[it])
            following = rule.next(step, last)
            res = following.residuals
            assert res is not None  # AdmmRule.next always gives them
            history.append((it, res.primal, res.dual, res.eps_primal, res.eps_dual, step.lam))
            rounds.pop(it - 1)
            if following.stop:
                break
            step = following
        done = rounds[it]
        done = [on(b, _finish, key, b, it, records[b], factory, done[b]) for b in range(count)]
        rows = laplacian([on(b, _forward_final, key, b, it, spec, done[b])
                          for b in range(count)], solve=False)
        quadratic = [on(b, _quadratic, key, b, it, spec, *rows[b]) for b in range(count)]
        choice, totals = _choose(*client.gather([done, quadratic]))
        thetas = client.gather([on(b, _emit, key, b, it, choice, sink) for b in range(count)])
    finally:  # after a lost block or convergence, tasks of this attempt may still be queued:
        # released, they never run (Client.cancel would walk their dependents, and the
        # scheduler trips over the ones this client has released already)
        rounds.clear()
        client.run(_forget, key, on_error="ignore")  # a lost worker forgot already
    theta = None if sink is not None else np.concatenate(thetas)
    # the loop ran at least once (max_iter ≥ 1) and AdmmRule.next gives residuals
    assert following is not None and following.residuals is not None
    res = following.residuals
    result = Result(theta, None, it, res.converged, res.primal, res.dual, res.eps_primal,
                    res.eps_dual, following.lam, 0.0, history)
    # the in-memory ADMM's figures at exit: its duals are rescaled unless it stopped
    copies2, duals2 = (sum(s[i] for s in last) for i in (2, 4))
    scale = 1.0 if following.stop else following.scale
    bound = suboptimality_bound(math.sqrt(duals2) * scale / following.lam,
                                math.sqrt(copies2), res.primal, res.dual)
    return result, replace(totals, suboptimality=bound)
