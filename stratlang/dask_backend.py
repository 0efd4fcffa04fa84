"""The ``dask`` backend: the ADMM of :mod:`stratlang.admm_backend`, run block by block on
a Dask cluster (:mod:`stratlang.solvers.distributed`).

Input is a pandas frame (bound here, then cut into blocks of strata) or a Dask DataFrame
(partitioned Parquet or CSV files): then every partition is bound on a worker and its
records are regrouped into blocks there, so records never reach the client.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from . import ir
from .admm_backend import DEFAULTS, _regularizer_prox, _Term, unsupported
from .design import Design, Strata, bind
from .errors import NumericalError, StratlangError
from .losses import LOSSES
from .objective import Objective, records_loss, selected_rows, stratified_objective
from .reference import NumericalWarning
from .regularizers import REGULARIZERS
from .solvers.distributed import Blocks, ProductSpectrum, admm_on_cluster
from .solvers.laplacian import DENSE_LIMIT

DASK_DEFAULTS = {**DEFAULTS, "scheduler": None, "workers": 2, "blocks": None}


@dataclass(frozen=True)
class BlockRecords:
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray  # stratum within the block
    k: int  # strata in the block


@dataclass(frozen=True)
class BlockProxes:
    """Everything a worker needs to build a block's proxes (pickled to the workers)."""

    loss: str
    params: dict
    terms: tuple[tuple[str, tuple[int, ...], float, dict, bool], ...]
    initial_row: np.ndarray | None

    def __call__(self, records: BlockRecords):
        loss_prox = LOSSES[self.loss].admm_prox(records.x, records.y, records.z, records.k,
                                                self.params)
        regs = [_regularizer_prox(_Term(np.array(rows), REGULARIZERS[kind].prox, weight, p))
                for kind, rows, weight, p, _ in self.terms]
        return loss_prox, regs

    def initial(self, records: BlockRecords, shape: tuple[int, ...]):
        return None if self.initial_row is None else np.broadcast_to(self.initial_row, shape)

    def finalize(self, theta: np.ndarray) -> np.ndarray:
        for kind, rows, _, p, constraint in self.terms:
            if constraint:  # the loss copy, made exactly feasible
                theta[:, list(rows), :] = REGULARIZERS[kind].prox(theta[:, list(rows), :], 0.0, p)
        return theta

    def loss_value(self, records: BlockRecords, theta: np.ndarray) -> float:
        return records_loss(LOSSES[self.loss], self.params, records.x, records.y, records.z,
                            self.finalize(theta.copy()))


def _proxes_for(design: Design, weights: dict[str, float], initial_row) -> BlockProxes:
    terms = []
    for i, term in enumerate(design.model.regularizers):
        entry = REGULARIZERS[term.kind.name]
        rows = selected_rows(design, term)
        weight = 1.0 if entry.is_constraint else weights[f"reg{i}.{term.kind.name}"]
        if len(rows) and (weight != 0 or entry.is_constraint):
            terms.append((term.kind.name, tuple(int(r) for r in rows), weight,
                          dict(term.kind.p), entry.is_constraint))
    return BlockProxes(design.loss.name, dict(design.model.response.loss.p), tuple(terms),
                       initial_row)


def _split_records(x, y, z, blocks: Blocks) -> dict[int, BlockRecords]:
    which = blocks.of(z)
    out = {}
    for b in np.unique(which):
        idx = np.flatnonzero(which == b)
        lo, hi = blocks.strata(int(b))
        out[int(b)] = BlockRecords(x[idx], y[idx], z[idx] - lo, hi - lo)
    return out


def _bind_partition(model: ir.Model, frame: pd.DataFrame, strata: Strata, classes,
                    blocks: Blocks) -> dict[int, BlockRecords]:
    design = bind(model, frame, strata=strata, classes=classes)
    return _split_records(design.x, design.y, design.z, blocks)


def _block_of_partitions(b: int, blocks: Blocks, n: int, m: int, *pieces) -> BlockRecords:
    mine = [p[b] for p in pieces if b in p]
    lo, hi = blocks.strata(b)
    if not mine:
        return BlockRecords(np.zeros((0, n)), np.zeros((0, m)), np.zeros(0, dtype=int), hi - lo)
    return BlockRecords(np.concatenate([p.x for p in mine]), np.concatenate([p.y for p in mine]),
                        np.concatenate([p.z for p in mine]), hi - lo)


def _initial_row(loss, y: np.ndarray, shape, p) -> np.ndarray | None:
    initial = loss.admm_initial(y, (1, *shape[1:]), p)
    return None if initial is None else np.asarray(initial)[0]


def _inner_tol(floor: float):
    def rule(primal: float, dual: float, previous: float | None) -> float:
        if previous is None:
            return 1e-4
        return min(previous, max(floor, 1e-2 * floor * min(primal, dual)))

    return rule


class _Cluster:
    """A client on ``scheduler`` (an address or a Client), or on a new LocalCluster."""

    def __init__(self, scheduler, workers: int):
        from distributed import Client, LocalCluster

        self.own = None
        if scheduler is None:
            self.own = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                    dashboard_address=None)
            self.client = Client(self.own)
        elif isinstance(scheduler, str):
            self.client = Client(scheduler)
            self.own = self.client
        else:
            self.client = scheduler

    def close(self) -> None:
        if self.own is not None:
            self.client.close()
            self.own.close()


def fit_dask(model, data, weights: dict[str, float], options: dict[str, Any]):
    """(θ, info, objective, design or None, strata, classes)."""
    opts = {**DASK_DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    cluster = _Cluster(opts["scheduler"], int(opts["workers"]))
    try:
        return _fit(cluster.client, model, data, weights, opts)
    finally:
        cluster.close()


def _fit(client, model, data, weights, opts):
    from distributed import KilledWorker

    start = time.perf_counter()
    distributed_input = _is_dask_frame(data)
    design = _metadata_design(model, data) if distributed_input else model.bind(data)
    reason = unsupported(design)
    if reason:
        raise NumericalError(reason + "; use backend='cvxpy'")
    k, n, m = design.theta_shape
    graphs = design.strata.graphs()
    gammas = [weights["stratify." + "_".join(f.columns)] for f in design.strata.factors]
    if not graphs:
        raise StratlangError("backend 'dask' needs at least one 'stratify' statement")
    large = [g for g in graphs if g.n > DENSE_LIMIT and g.structure not in ("path", "grid", "cycle")]
    if large:
        raise StratlangError(f"backend 'dask' diagonalizes every graph factor; a {large[0].structure} "
                             f"factor with {large[0].n} nodes is above its limit of {DENSE_LIMIT}: "
                             "use backend='admm' (sparse factorization) for it")
    spectrum = ProductSpectrum(graphs, gammas)
    workers = max(1, len(client.scheduler_info()["workers"]))
    blocks = Blocks.even(spectrum.n0, int(opts["blocks"] or 2 * workers), spectrum.stride)
    p = design.model.response.loss.p
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Large object.*")
        warnings.filterwarnings("ignore", category=UserWarning, module="distributed")
        if distributed_input:
            records, initial = _records_from_partitions(client, model.ir, data, design, blocks)
        else:
            pieces = _split_records(design.x, design.y, design.z, blocks)
            # the records travel inside the tasks, so a lost worker's blocks can be rebuilt
            records = [client.submit(_block_of_partitions, b, blocks, n, m, pieces, pure=False)
                       for b in range(len(blocks))]
            initial = _initial_row(design.loss, design.y, (k, n, m), p)
        factory = _proxes_for(design, weights, initial)
        floor = 1e-2 * min(opts["eps_abs"], opts["eps_rel"] or opts["eps_abs"])
        try:
            result = admm_on_cluster(
                client, records, factory, spectrum, blocks, (n, m), 1 + len(factory.terms),
                lam=opts["penalty"], eps_abs=opts["eps_abs"], eps_rel=opts["eps_rel"],
                max_iter=opts["max_iter"], adaptive=opts["adaptive"], relax=opts["relax"],
                inner_tol=_inner_tol(floor))
        except KilledWorker as error:
            raise NumericalError(f"the Dask fit stopped: workers kept dying while running "
                                 f"{error.task!r}; no result was produced") from None
    theta = result.theta
    if not np.all(np.isfinite(theta)):
        raise NumericalError(f"ADMM diverged after {result.iterations} iterations (non-finite "
                             "iterates); try a smaller 'penalty'")
    info = {"backend": "dask", "solver": f"distributed ADMM ({len(blocks)} blocks on "
            f"{workers} workers)", "status": "optimal" if result.converged else "max_iter",
            "iterations": result.iterations, "converged": result.converged,
            "primal_residual": result.primal_residual, "dual_residual": result.dual_residual,
            "eps_primal": result.eps_primal, "eps_dual": result.eps_dual, "penalty": result.lam,
            "solve_time": result.seconds, "history": result.history,
            "fit_seconds": time.perf_counter() - start}
    if not result.converged:
        warnings.warn(f"ADMM did not converge in {result.iterations} iterations: primal residual "
                      f"{result.primal_residual:.3g} (tolerance {result.eps_primal:.3g}), dual "
                      f"residual {result.dual_residual:.3g} (tolerance {result.eps_dual:.3g}); "
                      "raise max_iter or loosen eps_abs / eps_rel", NumericalWarning, stacklevel=4)
    penalties = stratified_objective(replace(design, x=design.x[:0], y=design.y[:0],
                                             z=design.z[:0]), theta, weights)
    objective = Objective(result.loss, penalties.regularization, penalties.laplacian)
    if distributed_input:
        info.update(strata=design.strata, classes=design.classes)
    return theta, info, objective, (None if distributed_input else design)


def _is_dask_frame(data) -> bool:
    try:
        import dask.dataframe as dd
    except ImportError:  # pragma: no cover - dask is a dependency
        return False
    return isinstance(data, dd.DataFrame)


def _metadata_design(model, ddf) -> Design:
    """A design bound on a small frame holding every observed value of each column the
    strata and the response encode (so the encodings match those of the partitions)."""
    ir_model = model.ir
    columns = {c for s in ir_model.strata for c in s.columns}
    columns |= set(ir_model.response.columns)
    missing = [c for c in columns | set(ir_model.features) - {"intercept"} if c not in ddf.columns]
    head = ddf.head(1, npartitions=-1)
    if missing or head.empty:
        return model.bind(head)  # the binder reports missing columns and empty data precisely
    values = {c: pd.Series(ddf[c].dropna().unique().compute()) for c in sorted(columns)}
    length = max(len(v) for v in values.values())
    meta = pd.concat([head] * length, ignore_index=True)
    for c, v in values.items():
        meta[c] = np.resize(v.to_numpy(), length)
    return model.bind(meta)


def _records_from_partitions(client, model: ir.Model, ddf, design: Design, blocks: Blocks):
    _, n, m = design.theta_shape
    parts = client.compute(ddf.to_delayed())
    bound = [client.submit(_bind_partition, model, part, design.strata, design.classes, blocks,
                           pure=False) for part in parts]
    records = [client.submit(_block_of_partitions, b, blocks, n, m, *bound, pure=False)
               for b in range(len(blocks))]
    rows = client.gather([client.submit(_initial_summary, design.loss.name, dict(
        design.model.response.loss.p), r, (n, m), pure=False) for r in records])
    present = [(c, row) for c, row in rows if row is not None and c > 0]
    initial = (sum(c * row for c, row in present) / sum(c for c, _ in present)
               if present else None)
    return records, initial


def _initial_summary(loss_name: str, p: dict, records: BlockRecords, width):
    if len(records.y) == 0:
        return 0, None
    return len(records.y), _initial_row(LOSSES[loss_name], records.y, (1, *width), p)
