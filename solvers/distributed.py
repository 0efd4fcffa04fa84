"""ADMM for Laplacian-regularized stratified models on a Dask cluster.

The strata of a product graph are cut into blocks: slabs along the first axis of the
product, so a block's strata are contiguous. Everything about a block lives on a worker:
its records, its proxes (built there once and kept, so Newton warm starts and active sets
survive between iterations), its slice of the consensus iterate, the copies and the duals.
One iteration is

1. on each block's worker: the proxes and the right-hand side of the Laplacian step;
2. the Laplacian step (L + cI) X = B by the eigenbases of the factors: the transforms
   along every axis but the first run inside each block; the first axis mixes blocks
   (every block sends its transformed slab to every other), is scaled by
   1/(Σ γ_a λ_a + c), and mixed back;
3. on each block's worker: the dual update and partial sums of the residual norms, which
   the client adds up to apply the same stopping rule and penalty adaptation as the
   in-memory :func:`solvers.admm.admm`.

Only those sums (a handful of floats per block) reach the client during the iterations.
Blocks are tasks with lineage, so a lost worker's blocks are recomputed by Dask.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft

from .admm import Residuals, Result, adapt_penalty
from .graphs import Graph
from .laplacian import Axis, KroneckerSolver, split_grids

# worker-side: (fit key, block) → the block's proxes, built on first use
_PROXES: dict[tuple[str, int], Any] = {}


class ProductSpectrum:
    """The Laplacian of a product graph, arranged for slabs along its first axis."""

    def __init__(self, factors: Sequence[Graph], gammas: Sequence[float]):
        axes = split_grids(factors, gammas)
        (first, gamma), rest = axes[0], axes[1:]
        axis = Axis(first, gamma)
        if axis.kind == "dct":
            self.mix = scipy.fft.dct(np.eye(first.n), type=2, norm="ortho", axis=0)
            values = axis.eigenvalues
        else:  # dense (a cycle's FFT basis is complex: use its real eigenbasis here)
            values, vectors = np.linalg.eigh(first.laplacian().toarray())
            self.mix = vectors.T
            values = np.clip(values, 0.0, None)
        self.first = gamma * values
        self.rest = KroneckerSolver([g for g, _ in rest], [w for _, w in rest]) if rest else None
        self.rest_shape = self.rest.shape if self.rest else ()
        self.rest_spectrum = self.rest.spectrum if self.rest else np.zeros(())
        self.n0 = first.n
        self.stride = int(np.prod(self.rest_shape, dtype=np.int64))  # strata per first-axis index


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


# ---- tasks (run on workers) -------------------------------------------------------------
def _proxes(key: str, b: int, records, factory):
    if (key, b) not in _PROXES:
        _PROXES[(key, b)] = factory(records)
    return _PROXES[(key, b)]


def _identity(value):
    return value


def _forget(key: str) -> None:
    for k in [k for k in _PROXES if k[0] == key]:
        del _PROXES[k]


def _start(records, factory, shape: tuple[int, ...], terms: int) -> dict:
    initial = factory.initial(records, shape)
    hat = np.zeros(shape) if initial is None else np.array(initial, dtype=float)
    return {"hat": hat, "copies": [hat.copy() for _ in range(terms)],
            "duals": [np.zeros(shape) for _ in range(terms)]}


def _prox_step(key, b, records, factory, state, lam, relax, scale, tol) -> dict:
    loss_prox, reg_proxes = _proxes(key, b, records, factory)
    if tol is not None and hasattr(loss_prox, "tol"):
        loss_prox.tol = tol
    hat = state["hat"]
    duals = [d * scale for d in state["duals"]] if scale != 1.0 else state["duals"]
    copies = [prox(hat - d, lam) for prox, d in zip([loss_prox, *reg_proxes], duals, strict=True)]
    relaxed = [relax * c + (1.0 - relax) * hat for c in copies] if relax != 1.0 else copies
    rhs = sum(c + d for c, d in zip(relaxed, duals, strict=True)) / lam
    return {"hat": hat, "copies": copies, "duals": duals, "relaxed": relaxed, "rhs": rhs}


def _forward_local(state: dict, spectrum: ProductSpectrum) -> np.ndarray:
    rhs = state["rhs"]
    y = rhs.reshape(-1, *spectrum.rest_shape, int(np.prod(rhs.shape[1:])))
    return spectrum.rest.forward(y, lead=1) if spectrum.rest else y


def _mix_scale(j: int, blocks: Blocks, spectrum: ProductSpectrum, c: float, *parts) -> np.ndarray:
    lo, hi = blocks.bounds[j], blocks.bounds[j + 1]
    out = sum(np.tensordot(spectrum.mix[lo:hi, blocks.bounds[i]:blocks.bounds[i + 1]], part,
                           axes=([1], [0])) for i, part in enumerate(parts))
    denominator = np.add.outer(spectrum.first[lo:hi], spectrum.rest_spectrum) + c
    return out / denominator[..., None]


def _unmix(i: int, blocks: Blocks, spectrum: ProductSpectrum, shape, *parts) -> np.ndarray:
    lo, hi = blocks.bounds[i], blocks.bounds[i + 1]
    y = sum(np.tensordot(spectrum.mix[blocks.bounds[j]:blocks.bounds[j + 1], lo:hi].T, part,
                         axes=([1], [0])) for j, part in enumerate(parts))
    if spectrum.rest:
        y = spectrum.rest.backward(y, lead=1)
    return np.ascontiguousarray(np.real(y)).reshape(shape)


def _dual_step(state: dict, hat: np.ndarray) -> dict:
    old = state["hat"]
    duals = [d + r - hat for d, r in zip(state["duals"], state["relaxed"], strict=True)]
    copies = state["copies"]
    stats = (sum(float(np.sum((c - hat) ** 2)) for c in copies),
             float(np.sum((hat - old) ** 2)),
             sum(float(np.sum(c * c)) for c in copies),
             float(np.sum(hat * hat)),
             sum(float(np.sum(d * d)) for d in duals))
    return {"hat": hat, "copies": copies, "duals": duals, "stats": stats}


def _stats(state: dict) -> tuple[float, ...]:
    return state["stats"]


def _finish(records, state: dict, factory) -> tuple[np.ndarray, float]:
    """The block's θ (the loss copy, made feasible) and its loss there."""
    theta = factory.finalize(state["copies"][0].copy())
    return theta, factory.loss_value(records, theta)


# ---- the client loop --------------------------------------------------------------------
def admm_on_cluster(client, records: Sequence[Any], factory, spectrum: ProductSpectrum,
                    blocks: Blocks, width: tuple[int, int], terms: int, *, lam: float = 1.0,
                    eps_abs: float = 1e-6, eps_rel: float = 1e-6, max_iter: int = 2000,
                    adaptive: bool = True, mu: float = 5.0, tau: float = 2.0, relax: float = 1.0,
                    inner_tol: Callable[[float, float, float | None], float] | None = None
                    ) -> tuple[Result, float]:
    """(result, loss at θ). ``records[b]``: a future (or value) with block b's records,
    whatever ``factory`` understands; ``factory(records)`` → (loss prox, [regularizer
    proxes]) on a worker, with ``factory.initial``, ``factory.finalize`` and
    ``factory.loss_value``. ``width``: the (rows, outputs) of one stratum's θ.
    ``inner_tol(primal ratio, dual ratio, previous)`` gives the inner (Newton) tolerance
    for the next iteration. The same stopping rule and penalty adaptation as
    :func:`solvers.admm.admm`; ``result.state`` is None (the iterates stay on the workers)."""
    start = time.perf_counter()
    key = uuid.uuid4().hex
    spec = client.submit(_identity, spectrum, pure=False)  # a task, so it can be recomputed
    shapes = [(hi - lo, *width) for lo, hi in (blocks.strata(b) for b in range(len(blocks)))]
    size = sum(s[0] for s in shapes) * width[0] * width[1]
    submit = client.submit
    states = [submit(_start, records[b], factory, shapes[b], terms, pure=False)
              for b in range(len(blocks))]
    scale, tol = 1.0, None if inner_tol is None else inner_tol(math.inf, math.inf, None)
    history = []
    res = Residuals(math.inf, math.inf, math.inf, math.inf)
    it = 0
    try:
        for it in range(1, max_iter + 1):
            states = [submit(_prox_step, key, b, records[b], factory, states[b], lam, relax,
                             scale, tol, pure=False) for b in range(len(blocks))]
            local = [submit(_forward_local, st, spec, pure=False) for st in states]
            mixed = [submit(_mix_scale, j, blocks, spec, terms / lam, *local, pure=False)
                     for j in range(len(blocks))]
            hats = [submit(_unmix, i, blocks, spec, shapes[i], *mixed, pure=False)
                    for i in range(len(blocks))]
            states = [submit(_dual_step, st, h, pure=False) for st, h in zip(states, hats, strict=True)]
            sums = np.array(client.gather([submit(_stats, st, pure=False) for st in states]))
            res = Residuals.from_sums(*sums.sum(axis=0), terms, size, lam, eps_abs, eps_rel)
            history.append((it, res.primal, res.dual, res.eps_primal, res.eps_dual, lam))
            if res.converged:
                break
            if inner_tol is not None:
                tol = inner_tol(res.primal / res.eps_primal, res.dual / res.eps_dual, tol)
            scale = 1.0
            if adaptive:
                lam, scale = adapt_penalty(lam, res, mu, tau)
        parts = client.gather([submit(_finish, records[b], states[b], factory, pure=False)
                               for b in range(len(blocks))])
    finally:
        client.run(_forget, key)
    theta = np.concatenate([t for t, _ in parts])
    result = Result(theta, None, it, res.converged, res.primal, res.dual, res.eps_primal,
                    res.eps_dual, lam, time.perf_counter() - start, history)
    return result, float(sum(loss for _, loss in parts))
