"""The elementwise steps of an ADMM iteration (solvers/admm.py), block by block.

At millions of strata one pass over memory per numpy operation, and fresh temporaries the
size of θ, cost more than the arithmetic. So the steps between two Laplacian solves run
over cache-sized blocks on every core (solvers.blockwise), each array read once per
phase: before the solve, the copies of θ (a prox that offers an elementwise block kernel
is computed inside the same pass, from θ̂ − dual) and the right-hand side; after it, the
dual updates and the residual sums, the over-relaxed blends recomputed there rather than
stored. Each entry gets the same operations in the same order as the plain expressions,
so the iterates are the same floats; the residual sums are added up per block (their
round-off differs).

A prox may offer ``block_kernel(t, shape)``: None, or a function ``kernel(v, s)`` that
overwrites ``v`` — the block ``s`` (a slice of the flattened arrays) of θ̂ − dual — with
the prox's value there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .blockwise import add_up, for_blocks, scratch, subtract

Prox = Callable[[np.ndarray, float], np.ndarray]
BlockKernel = Callable[[np.ndarray, slice], None]


class ElementwiseSteps:
    """The steps for one ADMM run on iterates of ``shape`` (contiguous float arrays)."""

    def __init__(self, shape: tuple[int, ...], relax: float, copies: Sequence[np.ndarray]):
        self.shape, self.relax = shape, relax
        self.size = int(np.prod(shape, dtype=np.int64))
        self.point = np.empty(shape)  # θ̂ − dual for a prox without a block kernel
        # the buffer under each copy when made here (None: an array a prox returned of its
        # own); a prox that computes in place (into ``point``) swaps buffers with it
        self.buffers: list[np.ndarray | None] = list(copies)

    def copies(self, proxes: Sequence[Prox], hat: np.ndarray, duals: list[np.ndarray],
               copies: list[np.ndarray], lam: float) -> list[BlockKernel | None]:
        """Each copy prox_j(θ̂ − dual_j, λ), into ``copies``, for the proxes without a block
        kernel; returns the kernels of the others, for :meth:`assemble` to run."""
        kernels: list[BlockKernel | None] = []
        for j, prox in enumerate(proxes):
            offer = getattr(prox, "block_kernel", None)
            kernel = offer(lam, self.shape) if offer is not None else None
            kernels.append(kernel)
            if kernel is not None:
                buffer = self.buffers[j]
                if buffer is None:  # (a buffer of its own to compute into)
                    buffer = self.buffers[j] = np.empty(self.shape)
                copies[j] = buffer
                continue
            copy = prox(subtract(hat, duals[j], out=self.point), lam)
            if np.may_share_memory(copy, self.point):  # computed in place: no copy, the
                # next difference goes into the buffer this copy replaces
                free = self.buffers[j]
                self.buffers[j], copies[j] = self.point, copy
                self.point = np.empty(self.shape) if free is None else free
            else:
                self.buffers[j], copies[j] = None, copy
        return kernels

    def assemble(self, kernels: Sequence[BlockKernel | None], hat: np.ndarray,
                 duals: list[np.ndarray], copies: list[np.ndarray], lam: float,
                 into: np.ndarray | None = None) -> np.ndarray:
        """The copies of the block-kernel proxes, and the right-hand side of the solve,
        Σ_j (relaxed_j + dual_j) / λ with relaxed_j = relax·c_j + (1 − relax)·θ̂ (c_j
        without over-relaxation), in ``into`` (an array no longer used: the solve may
        overwrite it or return it as θ̂) or a new array."""
        rhs = np.empty(self.shape) if into is None else into
        out, h = rhs.reshape(-1), hat.reshape(-1)
        c_flat, d_flat = [np.ravel(c) for c in copies], [d.reshape(-1) for d in duals]
        run = [(c, d, kernel) for c, d, kernel in zip(c_flat, d_flat, kernels, strict=True)
               if kernel is not None]
        relax = self.relax

        def kernel(s: slice) -> None:
            n = s.stop - s.start
            for c, d, prox in run:
                copy = np.subtract(h[s], d[s], out=c[s])
                prox(copy, s)
            keep = np.multiply(h[s], 1.0 - relax, out=scratch("keep", n)) if relax != 1.0 else None
            for j, (c, d) in enumerate(zip(c_flat, d_flat, strict=True)):
                relaxed = c[s]
                if keep is not None:
                    relaxed = np.multiply(relaxed, relax, out=scratch("relaxed", n))
                    relaxed += keep
                if j == 0:
                    np.add(relaxed, d[s], out=out[s])
                else:
                    out[s] += np.add(relaxed, d[s], out=scratch("sum", n))
            out[s] /= lam

        for_blocks(self.size, kernel)
        return rhs

    def update(self, hat: np.ndarray, old: np.ndarray, duals: list[np.ndarray],
               copies: list[np.ndarray]) -> tuple[float, ...]:
        """The dual updates dual_j += relaxed_j − θ̂ (relaxed_j as in :meth:`assemble`,
        with the θ̂ before the solve, ``old``), and the residual sums (gap2, moved2,
        copies2, hat2, duals2) of :meth:`solvers.admm.AdmmRule.next`."""
        h, o = hat.reshape(-1), old.reshape(-1)
        c_flat, d_flat = [np.ravel(c) for c in copies], [d.reshape(-1) for d in duals]
        relax = self.relax

        def kernel(s: slice) -> tuple[float, ...]:
            n = s.stop - s.start
            here, work = h[s], scratch("work", n)
            keep = np.multiply(o[s], 1.0 - relax, out=scratch("keep", n)) if relax != 1.0 else None
            gap2 = copies2 = duals2 = 0.0
            for c, d in zip(c_flat, d_flat, strict=True):
                copy, dual = c[s], d[s]
                relaxed = copy
                if keep is not None:
                    relaxed = np.multiply(copy, relax, out=scratch("relaxed", n))
                    relaxed += keep
                dual += np.subtract(relaxed, here, out=work)
                duals2 += float(np.dot(dual, dual))
                np.subtract(copy, here, out=work)
                gap2 += float(np.dot(work, work))
                copies2 += float(np.dot(copy, copy))
            np.subtract(here, o[s], out=work)
            return gap2, float(np.dot(work, work)), copies2, float(np.dot(here, here)), duals2

        return add_up(for_blocks(self.size, kernel))
