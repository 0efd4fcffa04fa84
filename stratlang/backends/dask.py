"""The ``dask`` backend: the ADMM of :mod:`stratlang.backends.admm`, run block by block
on a Dask cluster (:mod:`stratlang.solvers.distributed`).

Input is a pandas frame (bound here, then cut into blocks of strata), or partitioned
data: a glob or directory of Parquet / CSV files, or a Dask DataFrame. Partitioned data
are read and bound partition by partition on the workers and regrouped into blocks
there, so records never reach the client.
"""

from __future__ import annotations

import glob
import logging
import os
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..data.design import Design, bind
from ..data.frames import frame_for, read_frame
from ..data.strata import Strata
from ..kinds.losses import LOSSES
from ..language import ir
from ..language.errors import NumericalError, SpecError, StratlangError
from ..language.params import Param, positive
from .admm import (
    ADMM_OPTIONS,
    RegularizerTerm,
    inner_tolerance,
    make_feasible,
    regularizer_terms,
    report,
    require_finite,
    unsupported,
)
from .base import Backend, Objective, OptionValueError, StratifiedFit
from .theta_parts import ThetaWriter, column_names

if TYPE_CHECKING:
    from ..solvers.distributed import Blocks


def _is_client(value: Any) -> bool:
    """A distributed.Client (told by its interface: Dask is not imported to check)."""
    return hasattr(value, "scheduler_info") and hasattr(value, "submit")


DASK_OPTIONS = ADMM_OPTIONS.extended(
    "backend 'dask'",
    Param("scheduler", type="string", default=None, accepts=_is_client,
          doc="address of a Dask scheduler (tcp://host:8786), or a distributed.Client from "
              "Python; without it a LocalCluster"),
    Param("workers", type="int", default=2, check=positive,
          doc="worker processes of the LocalCluster started when no scheduler is given"),
    Param("blocks", type="int", default=None, check=positive,
          doc="blocks of strata (default: one per worker thread of the cluster)"),
    Param("output", type="string", default=None, path=True,
          doc="directory the workers write θ to (Parquet parts, plus model.json): θ never "
              "reaches the client; load_fitted(directory) reads it back"),
)


@dataclass(frozen=True)
class BlockRecords:
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray  # stratum within the block
    k: int  # strata in the block

    @classmethod
    def empty(cls, k: int, n: int, m: int) -> BlockRecords:
        return cls(np.zeros((0, n)), np.zeros((0, m)), np.zeros(0, dtype=int), k)


@dataclass(frozen=True)
class BlockProxes:
    """Everything a worker needs to build a block's proxes (pickled to the workers)."""

    loss: str
    params: dict
    terms: tuple[RegularizerTerm, ...]
    initial_row: np.ndarray | None

    def __call__(self, records: BlockRecords):
        loss_prox = LOSSES[self.loss].admm_prox(records.x, records.y, records.z, records.k,
                                                self.params)
        return loss_prox, [t.prox for t in self.terms]

    def initial(self, records: BlockRecords, shape: tuple[int, ...]):
        return None if self.initial_row is None else np.broadcast_to(self.initial_row, shape)

    def finalize(self, theta: np.ndarray) -> np.ndarray:
        return make_feasible(theta, list(self.terms))

    def loss_value(self, records: BlockRecords, theta: np.ndarray) -> float:
        return LOSSES[self.loss].records_value(records.x, records.y, theta[records.z],
                                               self.params)

    def regularization(self, theta: np.ndarray) -> float:
        return sum((t.value(theta) for t in self.terms), 0.0)


@dataclass(frozen=True)
class Partitioned:
    """Partitioned input: one (name, loader) per partition, run on a worker."""

    model: ir.Model
    parts: tuple[tuple[str, Any], ...]  # loader: a Dask delayed giving a pandas frame


def partitioned(model: ir.Model, data) -> Partitioned | None:
    """A glob or directory of .parquet / .csv files, or a Dask DataFrame, as partitions;
    None for anything else (a frame or a single file)."""
    import dask

    if _is_dask_frame(data):
        return Partitioned(model, tuple((f"partition {i}", d)
                                        for i, d in enumerate(data.to_delayed())))
    if not isinstance(data, str | Path) or not is_partitioned_path(str(data)):
        return None
    path = Path(data)
    files = (sorted(str(p) for p in path.iterdir() if p.suffix in (".parquet", ".csv"))
             if path.is_dir() else sorted(glob.glob(str(data))))
    if not files:
        raise StratlangError(f"no .parquet or .csv files match '{data}'")
    bad = [f for f in files if Path(f).suffix not in (".parquet", ".csv")]
    if bad:
        raise StratlangError(f"'{data}' matches '{bad[0]}': only .parquet and .csv files are read")
    return Partitioned(model, tuple((f, dask.delayed(read_frame)(f)) for f in files))


def is_partitioned_path(data: str) -> bool:
    return any(ch in data for ch in "*?[") or Path(data).is_dir()


def _is_dask_frame(data) -> bool:
    if type(data).__module__.split(".")[0] not in ("dask", "dask_expr"):
        return False  # Dask is imported only for data that comes from it
    import dask.dataframe as dd

    return isinstance(data, dd.DataFrame)


# ---- worker tasks --------------------------------------------------------------------------
def _split_records(x, y, z, blocks: Blocks) -> dict[int, BlockRecords]:
    which = blocks.of(z)
    out = {}
    for b in np.unique(which):  # a loop over blocks, not strata
        idx = np.flatnonzero(which == b)
        lo, hi = blocks.strata(int(b))
        out[int(b)] = BlockRecords(x[idx], y[idx], z[idx] - lo, hi - lo)
    return out


def _summary(frame: pd.DataFrame, columns: list[str]):
    """What the client needs to fix the encodings: the partition's columns, the distinct
    values of the encoded columns, and its first row."""
    return (list(frame.columns), {c: frame[c].dropna().unique() for c in columns if c in frame},
            frame.head(1))


def _bind_partition(model: ir.Model, frame: pd.DataFrame, name: str, strata: Strata, classes,
                    blocks: Blocks) -> dict[int, BlockRecords]:
    try:
        design = bind(model, frame, strata=strata, classes=classes)
    except SpecError as error:
        if "file" in frame.attrs:  # rows are already named in their file
            raise
        raise SpecError([replace(d, hint=(d.hint + "; " if d.hint else "") + f"in {name}")
                         for d in error.diagnostics]) from None
    return _split_records(design.x, design.y, design.z, blocks)


def _block_of_partitions(b: int, blocks: Blocks, n: int, m: int, *pieces) -> BlockRecords:
    mine = [p[b] for p in pieces if b in p]
    lo, hi = blocks.strata(b)
    if not mine:
        return BlockRecords.empty(hi - lo, n, m)
    return BlockRecords(np.concatenate([p.x for p in mine]), np.concatenate([p.y for p in mine]),
                        np.concatenate([p.z for p in mine]), hi - lo)


def _initial_summary(loss_name: str, p: dict, records: BlockRecords, width):
    if len(records.y) == 0:
        return 0, None
    return len(records.y), _initial_row(LOSSES[loss_name], records.y, (1, *width), p)


def _initial_row(loss, y: np.ndarray, shape, p) -> np.ndarray | None:
    initial = loss.admm_initial(y, (1, *shape[1:]), p)
    return None if initial is None else np.asarray(initial)[0]


# ---- the client side ------------------------------------------------------------------------
class SchedulerUnreachable(OptionValueError):
    def __init__(self, message: str):
        super().__init__("scheduler", message)


class _Cluster:
    """A client on ``scheduler`` (an address or a Client), or on a new LocalCluster."""

    def __init__(self, scheduler, workers: int):
        from distributed import Client, LocalCluster

        self.own = None
        if scheduler is None:
            # its workers' logs would show task tracebacks to a command-line user; every
            # failure reaches the client as an exception instead
            threads = max(1, (os.cpu_count() or 1) // workers)  # the machine's cores, shared
            self.own = LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                                    dashboard_address=None, silence_logs=logging.CRITICAL)
            self.client = Client(self.own)
        elif isinstance(scheduler, str):
            try:
                self.client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError) as error:
                raise SchedulerUnreachable(f"cannot reach the Dask scheduler at '{scheduler}': "
                                           f"{error}") from None
            self.own = self.client
        else:
            self.client = scheduler

    def close(self) -> None:
        if self.own is not None:
            self.client.close()
            self.own.close()


class DaskBackend(Backend):
    name = "dask"
    doc = ("The ADMM backend run block by block on a Dask cluster: records and proxes stay on "
           "the workers; the Laplacian step is distributed along the product graph's first "
           "axis.")
    verbose_option = "progress"
    options = DASK_OPTIONS

    def prepare(self, model: ir.Model, data: Any) -> Design | Partitioned:
        """Partitioned data stays as partitions (bound on the workers); anything else is
        bound here."""
        parts = partitioned(model, data)
        return parts if parts is not None else bind(model, frame_for(model, data))

    def unsupported(self, design: Design | Partitioned) -> str | None:
        if isinstance(design, Partitioned):
            return None  # checked on the bound metadata, once a cluster is at hand
        return _unsupported(design)

    def fit(self, design: Design | Partitioned, weights: dict[str, float],
            options: dict[str, Any], warm: Any = None) -> StratifiedFit:
        if options["output"] is not None:  # the workers' working directory may differ
            options = {**options, "output": str(Path(options["output"]).absolute())}
        cluster = _Cluster(options["scheduler"], int(options["workers"]))
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*Large object.*")
                return _fit(cluster.client, design, weights, options)
        finally:
            cluster.close()


def _unsupported(design: Design) -> str | None:
    from ..solvers import laplacian

    reason = unsupported(design)
    if reason:
        return reason
    if not design.strata.factors:
        return "it needs at least one 'stratify' statement"
    large = [f for f in design.strata.factors if laplacian.is_sparse_axis(f.graph)]
    if len(large) > 1:
        names = " and ".join("(" + ", ".join(f.columns) + ")" for f in large[:2])
        return (f"it solves along at most one general graph factor above "
                f"{laplacian.DENSE_LIMIT} nodes; {names} both are")
    return None


def _fit(client, data: Design | Partitioned, weights, opts) -> StratifiedFit:
    from distributed import KilledWorker

    from ..solvers.distributed import (
        BlockLost,
        Blocks,
        ProductSpectrum,
        admm_on_cluster,
        block_owners,
    )

    start = time.perf_counter()
    parts = data if isinstance(data, Partitioned) else None
    if parts is not None:
        frames = client.compute([loader for _, loader in parts.parts])
        design = _metadata_design(client, parts.model, frames)
        reason = _unsupported(design)
        if reason:
            raise NumericalError(f"backend 'dask' cannot fit this model: {reason}")
    else:
        design = data
    k, n, m = design.theta_shape
    graphs = design.strata.graphs()
    spectrum = ProductSpectrum(graphs, design.strata.gammas(weights))
    found = client.scheduler_info()["workers"].values()
    workers = max(1, len(found))
    threads = max(1, sum(w.get("nthreads", 1) for w in found))  # one block per thread
    blocks = Blocks.even(spectrum.n0, int(opts["blocks"] or threads), spectrum.stride)
    p = design.loss_params
    owners = block_owners(client, blocks)
    if parts is not None:
        records, initial = _records_from_partitions(client, parts, frames, design, blocks,
                                                    owners)
    else:
        pieces = _split_records(design.x, design.y, design.z, blocks)
        # the records travel inside the tasks, so a lost worker's blocks can be rebuilt
        records = [client.submit(_block_of_partitions, b, blocks, n, m,
                                 {b: pieces[b]} if b in pieces else {}, workers=[owners[b]],
                                 allow_other_workers=True, pure=False)
                   for b in range(len(blocks))]
        initial = _initial_row(design.loss, design.y, (k, n, m), p)
    terms = regularizer_terms(design, weights)
    factory = BlockProxes(design.loss.name, dict(p), tuple(terms), initial)
    sink = None
    if opts["output"] is not None:
        rows = design.loss.row_names(design.model.features, design.model.response.columns)
        outputs = design.loss.output_names(design.model.response.columns, design.classes)
        sink = ThetaWriter(str(opts["output"]), design.strata, blocks,
                           tuple(column_names(rows, outputs)))
        sink.clear()  # parts of an earlier fit with other blocks would linger
    try:
        result, totals = admm_on_cluster(
            client, records, factory, spectrum, blocks, (n, m), 1 + len(terms),
            lam=opts["penalty"], eps_abs=opts["eps_abs"], eps_rel=opts["eps_rel"],
            max_iter=opts["max_iter"], adaptive=opts["adaptive"], relax=opts["relax"],
            inner_tol=inner_tolerance(opts), sink=sink)
    except KilledWorker as error:
        raise NumericalError(f"the Dask fit stopped: workers kept dying while running "
                             f"{error.task!r}; no result was produced") from None
    except BlockLost:
        raise NumericalError("the Dask fit stopped: workers were lost during every attempt "
                             "(the fit restarts when a worker holding blocks is lost); no "
                             "result was produced") from None
    info = report(result, "dask", f"distributed ADMM ({len(blocks)} blocks on {workers} "
                  f"worker{'s' * (workers > 1)})", opts, finite=totals.finite)
    info["fit_seconds"] = time.perf_counter() - start
    info["restarts"] = result.restarts
    objective = require_finite(Objective.of(loss=totals.loss, regularization=totals.regularization,
                                            laplacian=totals.laplacian), "dask")
    return StratifiedFit(result.theta, design.strata, design.classes, info, objective,
                         None if parts is not None else design, output=opts["output"])


def _metadata_design(client, ir_model: ir.Model, frames) -> Design:
    """A design bound on a small frame holding every observed value of each column the
    strata and the response encode (so the encodings match those of the partitions)."""
    encoded = sorted({c for s in ir_model.strata for c in s.columns}
                     | set(ir_model.response.columns))
    summaries = client.gather([client.submit(_summary, f, encoded, pure=False) for f in frames])
    heads = [head for _, _, head in summaries if not head.empty]
    if not heads:
        return bind(ir_model, summaries[0][2] if summaries else pd.DataFrame())  # reports no data
    values = {c: pd.Series(np.concatenate([u[c] for _, u, _ in summaries if c in u])).unique()
              for c in encoded if any(c in u for _, u, _ in summaries)}
    length = max([len(v) for v in values.values()] + [1])
    meta = pd.concat([heads[0]] * length, ignore_index=True)
    for c, v in values.items():
        meta[c] = np.resize(v, length)
    return bind(ir_model, meta)  # a missing column is reported by the binder, positioned


def _records_from_partitions(client, parts: Partitioned, frames, design: Design,
                             blocks: Blocks, owners: list[str]):
    _, n, m = design.theta_shape
    bound = [client.submit(_bind_partition, parts.model, frame, name, design.strata,
                           design.classes, blocks, pure=False)
             for (name, _), frame in zip(parts.parts, frames, strict=True)]
    records = [client.submit(_block_of_partitions, b, blocks, n, m, *bound, workers=[owners[b]],
                             allow_other_workers=True, pure=False)
               for b in range(len(blocks))]
    rows = client.gather([client.submit(_initial_summary, design.loss.name, dict(
        design.loss_params), r, (n, m), pure=False) for r in records])
    present = [(c, row) for c, row in rows if row is not None and c > 0]
    initial = (sum(c * row for c, row in present) / sum(c for c, _ in present)
               if present else None)
    return records, initial
