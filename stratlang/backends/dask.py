"""The ``dask`` backend: the ADMM of :mod:`stratlang.backends.admm`, run block by block
on a Dask cluster (:mod:`stratlang.solvers.distributed`).

Input is a pandas frame (bound here, then cut into blocks of strata), or partitioned
data: a glob or directory of Parquet / CSV files, or a Dask DataFrame. Partitioned data
are read and bound partition by partition on the workers and regrouped into blocks
there, so records never reach the client.
"""

from __future__ import annotations

import glob
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..data.design import Design, bind, drop_missing, report_dropped
from ..data.encoding import Encoding
from ..data.features import learn_state, summarize
from ..data.frames import Binder, frame_for, read_frame
from ..data.row_structure import project_constant
from ..kinds.files import FileProblem
from ..kinds.losses import LOSSES, Records
from ..language import ir
from ..language.errors import DataError, DataWarning, NumericalError, SpecError, StratlangError
from ..language.params import Param, count
from .admm import (
    ADMM_OPTIONS,
    RegularizerTerm,
    copy_names,
    inner_tolerance,
    make_feasible,
    refuse_if_blown_up,
    regularizer_terms,
    report,
    require_finite,
    unsupported,
)
from .base import Backend, Objective, StratifiedFit
from .cluster import Cluster, contained
from .objective import stratified_objective
from .relaxation import nonconvex_parts
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
    Param("workers", type="int", default=2, check=count(1024),
          doc="worker processes of the LocalCluster started when no scheduler is given"),
    Param("blocks", type="int", default=None, check=count(1_000_000),
          doc="blocks of strata (default: one per worker thread of the cluster)"),
    Param("output", type="string", default=None, path=True,
          doc="directory the workers write θ to (Parquet parts, plus model.json): θ never "
              "reaches the client; load_fitted(directory) reads it back"),
)


@dataclass(frozen=True)
class BlockRecords:
    records: Records  # z: the stratum within the block
    k: int  # strata in the block

    @classmethod
    def empty(cls, k: int, n: int, m: int, offset: bool, weight: bool) -> BlockRecords:
        def none_or(flag):
            return np.zeros(0) if flag else None

        return cls(Records(np.zeros((0, n)), np.zeros((0, m)), np.zeros(0, dtype=int),
                           none_or(offset), none_or(weight)), k)

    @classmethod
    def joined(cls, pieces: list[BlockRecords], k: int) -> BlockRecords:
        def cat(name):
            parts = [getattr(p.records, name) for p in pieces]
            return None if parts[0] is None else np.concatenate(parts)

        return cls(Records(cat("x"), cat("y"), cat("z"), cat("offset"), cat("weight")), k)


@dataclass(frozen=True)
class BlockProxes:
    """Everything a worker needs to build a block's proxes (pickled to the workers)."""

    loss: str
    params: dict
    terms: tuple[RegularizerTerm, ...]
    initial_row: np.ndarray | None

    def __call__(self, block: BlockRecords):
        loss_prox = LOSSES[self.loss].admm_prox(block.records, block.k, self.params)
        return loss_prox, [t.prox for t in self.terms]

    def initial(self, records: BlockRecords, shape: tuple[int, ...]):
        return None if self.initial_row is None else np.broadcast_to(self.initial_row, shape)

    def finalize(self, theta: np.ndarray) -> np.ndarray:
        return make_feasible(theta, list(self.terms))

    def loss_value(self, block: BlockRecords, theta: np.ndarray) -> float:
        return LOSSES[self.loss].records_value(block.records, theta[block.records.z],
                                               self.params)

    def regularization(self, theta: np.ndarray) -> float:
        return sum((t.value(theta) for t in self.terms), 0.0)

    def in_domain(self, theta: np.ndarray) -> bool:
        return LOSSES[self.loss].in_domain(theta, self.params)


@dataclass(frozen=True)
class Partitioned:
    """Partitioned input: one (name, loader) per partition, run on a worker."""

    model: ir.CheckedModel
    parts: tuple[tuple[str, Any], ...]  # loader: a Dask delayed giving a pandas frame
    graphs: dict[str, Any] | None = None  # graphs given from Python, by column


def partitioned(model: ir.CheckedModel, data, graphs: dict[str, Any] | None = None
                ) -> Partitioned | None:
    """A glob or directory of .parquet / .csv files, or a Dask DataFrame, as partitions;
    None for anything else (a frame or a single file)."""
    import dask

    if _is_dask_frame(data):
        return Partitioned(model, tuple((f"partition {i}", d)
                                        for i, d in enumerate(data.to_delayed())), graphs)
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
    return Partitioned(model, tuple((f, dask.delayed(_read_partition)(f)) for f in files), graphs)


def _read_partition(path: str) -> pd.DataFrame:
    """One partition's frame, read on a worker (a bad file is a DataError naming it)."""
    try:
        return read_frame(path)
    except FileProblem as problem:
        raise DataError(str(problem)) from None


def is_partitioned_path(data: str) -> bool:
    return any(ch in data for ch in "*?[") or Path(data).is_dir()


def _is_dask_frame(data) -> bool:
    if type(data).__module__.split(".")[0] not in ("dask", "dask_expr"):
        return False  # Dask is imported only for data that comes from it
    import dask.dataframe as dd

    return isinstance(data, dd.DataFrame)


# ---- worker tasks --------------------------------------------------------------------------
def _split_records(records: Records, blocks: Blocks) -> dict[int, BlockRecords]:
    which = blocks.of(records.z)
    out = {}
    for b in np.unique(which):  # a loop over blocks, not strata
        idx = np.flatnonzero(which == b)
        lo, hi = blocks.strata(int(b))
        part = records.subset(idx)
        out[int(b)] = BlockRecords(replace(part, z=part.z - lo), hi - lo)
    return out


def _summary(frame: pd.DataFrame, columns: list[str], model: ir.CheckedModel):
    """What the client needs to fix the encodings: the partition's columns, the distinct
    values of the encoded columns, its first row, and the stateful feature transforms'
    summaries of it."""
    kept, _ = drop_missing(model, frame)
    binder = Binder(model, kept)
    learned = summarize(binder, model)
    if binder.out.diagnostics:  # reported positioned when the partition is bound
        learned = {}
    # a stratum value all of whose rows `missing drop` leaves out is still a node
    strata = {c for s in model.strata for c in s.columns}
    return (list(frame.columns), {c: (frame if c in strata else kept)[c].dropna().unique()
                                  for c in columns if c in kept},
            kept.head(1), learned)


def _bind_partition(encoding: Encoding, frame: pd.DataFrame, name: str, blocks: Blocks) -> dict:
    """The partition's records by block (and, under "dropped", the rows ``missing drop``
    left out, by column), bound with the encoding learned from every partition."""
    try:
        with warnings.catch_warnings():  # dropped rows are reported by the client
            warnings.simplefilter("ignore", DataWarning)
            design = encoding.bind(frame)
    except SpecError as error:
        if "file" in frame.attrs:  # rows are already named in their file
            raise
        raise SpecError([replace(d, hint=_in_file(d.hint, name),
                                 cli_hint=d.cli_hint and _in_file(d.cli_hint, name))
                         for d in error.diagnostics]) from None
    assert isinstance(design, Design)  # (a stratified model's encoding)
    return {**_split_records(design.records, blocks), "dropped": design.dropped}


def _in_file(hint: str | None, name: str) -> str:
    return (hint + "; " if hint else "") + f"in {name}"


def _dropped(pieces: dict) -> dict[str, int]:
    return pieces["dropped"]


def _block_of_partitions(b: int, blocks: Blocks, n: int, m: int, with_offset: bool,
                         with_weight: bool, *pieces) -> BlockRecords:
    mine = [p[b] for p in pieces if b in p]
    lo, hi = blocks.strata(b)
    if not mine:
        return BlockRecords.empty(hi - lo, n, m, with_offset, with_weight)
    return BlockRecords.joined(mine, hi - lo)


def _initial_summary(loss_name: str, p: dict, block: BlockRecords, width):
    records = block.records
    if len(records) == 0:
        return 0, None
    count = float(len(records) if records.weight is None else np.sum(records.weight))
    return count, _initial_row(LOSSES[loss_name], records, (1, *width), p)


def _initial_row(loss, records: Records, shape, p) -> np.ndarray | None:
    initial = loss.admm_initial(records, (1, *shape[1:]), p)
    return None if initial is None else np.asarray(initial)[0]


# ---- the client side ------------------------------------------------------------------------
class DaskBackend(Backend):
    name = "dask"
    doc = ("The ADMM backend run block by block on a Dask cluster: records and proxes stay on "
           "the workers; the Laplacian step is distributed along the product graph's first "
           "axis.")
    verbose_option = "progress"
    options = DASK_OPTIONS

    def prepare(self, model: ir.CheckedModel, data: Any, graphs: dict[str, Any] | None = None
                ) -> Design | Partitioned:
        """Partitioned data stays as partitions (bound on the workers); anything else is
        bound here."""
        parts = partitioned(model, data, graphs)
        return parts if parts is not None else bind(model, frame_for(model, data), graphs=graphs)

    def unsupported(self, design: Design | Partitioned) -> str | None:
        if design.model.wheres():
            return ("a `where` clause selects strata; the workers each fit a block of the "
                    "strata, and do not take such terms yet: the admm backend fits the model "
                    "on one machine")
        if isinstance(design, Partitioned):
            return None  # checked on the bound metadata, once a cluster is at hand
        return _unsupported(design)

    def fit(self, design: Design | Partitioned, weights: dict[str, float],
            options: dict[str, Any], warm: Any = None) -> StratifiedFit:
        if options["output"] is not None:  # the workers' working directory may differ
            options = {**options, "output": str(Path(options["output"]).absolute())}
        cluster = Cluster(options["scheduler"], int(options["workers"]))
        try:
            with contained():
                return _fit(cluster.client, design, weights, options)
        finally:
            cluster.close()


def _unsupported(design: Design) -> str | None:
    from ..solvers import laplacian

    reason = unsupported(design)
    if reason:
        return reason
    parts = nonconvex_parts(design.model)
    if parts:
        return (f"{' and '.join(parts)} {'is' if len(parts) == 1 else 'are'} not convex: the "
                "admm backend fits the model as a local method on one machine")
    if not design.strata.factors:
        return "it needs at least one 'stratify' statement"
    large = [f for f in design.strata.factors if laplacian.is_sparse_axis(f.graph)]
    if len(large) > 1:
        names = " and ".join("(" + ", ".join(f.columns) + ")" for f in large[:2])
        return (f"it solves along at most one general graph factor above "
                f"{laplacian.DENSE_LIMIT} nodes; {names} both are")
    if design.model.structured:
        return _structure_unsupported(design)
    return None


def _structure_unsupported(design: Design) -> str | None:
    """Rows that differ in their graph terms (`by`, `shared`, own weights, `interact`):
    the workers solve them per group of columns in the same eigenbases, unless …"""
    from ..data.row_structure import interactions, weighted_groups
    from ..solvers.distributed import ProductSpectrum

    weights = {name: 1.0 for name in design.model.hypers()}  # (the structure, not values)
    graphs = design.strata.graphs()
    spectrum = ProductSpectrum(graphs, design.strata.gammas(weights))
    why = spectrum.structure_unsupported(graphs, weighted_groups(design, weights),
                                         interactions(design.model, weights))
    if why is None:
        return None
    return (f"parameter rows differ in their graph terms (`by`, `shared`, an own weight, "
            f"`interact`) and {why}: the admm backend fits the model on one machine")


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
        design = _metadata_design(client, parts.model, frames, parts.graphs)
        reason = _unsupported(design)
        if reason:
            raise NumericalError(f"backend 'dask' cannot fit this model: {reason}")
    else:
        assert not isinstance(data, Partitioned)  # (parts is None)
        design = data
    k, n, m = design.theta_shape
    graphs = design.strata.graphs()
    spectrum = ProductSpectrum(graphs, design.strata.gammas(weights))
    if design.model.structured:  # rows with their own graph terms: per group of columns
        from ..data.row_structure import interactions, weighted_groups

        if opts["output"] is not None:
            raise NumericalError("backend 'dask' writes θ from the workers (output) only for "
                                 "models whose rows share their graph terms; leave out "
                                 "`output` for a model with `by`, `shared` or `interact`")
        spectrum.set_structure(graphs, design.strata.gammas(weights),
                               weighted_groups(design, weights),
                               interactions(design.model, weights), (n, m))
    found = client.scheduler_info()["workers"].values()
    workers = max(1, len(found))
    threads = max(1, sum(w.get("nthreads", 1) for w in found))  # one block per thread
    blocks = Blocks.even(spectrum.n0, int(opts["blocks"] or threads), spectrum.stride)
    p = design.loss_params
    owners = block_owners(client, blocks)
    dropped = dict(design.dropped)
    if parts is not None:
        records, initial, dropped = _records_from_partitions(client, parts, frames, design,
                                                             blocks, owners)
    else:
        pieces = _split_records(design.records, blocks)
        flags = design.offset is not None, design.weight is not None
        # the records travel inside the tasks, so a lost worker's blocks can be rebuilt
        records = [client.submit(_block_of_partitions, b, blocks, n, m, *flags,
                                 {b: pieces[b]} if b in pieces else {}, workers=[owners[b]],
                                 allow_other_workers=True, pure=False)
                   for b in range(len(blocks))]
        initial = _initial_row(design.loss, design.records, (k, n, m), p)
    terms = regularizer_terms(design, weights)
    factory = BlockProxes(design.loss.name, dict(p), tuple(terms), initial)
    sink = None
    if opts["output"] is not None:
        sink = ThetaWriter(str(opts["output"]), design.strata, blocks,
                           tuple(column_names(design.rows, design.outputs)))
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
    # the unbounded-problem checks need every record: at hand unless the data were
    # partitioned (then they stay on the workers, and a divergence is reported as such)
    held = design if parts is None else None
    info = report(result, f"distributed ADMM ({len(blocks)} blocks on {workers} "
                  f"worker{'s' * (workers > 1)})", opts, finite=totals.finite, design=held,
                  weights=weights, backend=DaskBackend.name)
    info["backend"] = DaskBackend.name
    info["fit_seconds"] = time.perf_counter() - start
    info["restarts"] = result.restarts
    info["copy"] = copy_names(terms)[totals.copy]
    info["objective_spread"] = totals.spread
    info["objective_accuracy"] = totals.spread + totals.suboptimality
    if dropped:
        info["dropped_rows"] = dropped
    objective = require_finite(Objective.of(loss=totals.loss, regularization=totals.regularization,
                                            laplacian=totals.laplacian), DaskBackend.name)
    if design.model.structured and result.theta is not None:
        # rows constant along factors: exactly so (the workers' copy is, to the tolerance)
        result.theta = project_constant(design, result.theta.reshape(k, n, m))
        if parts is None:  # (the records are here: the objective at the projected θ)
            objective = require_finite(stratified_objective(design, result.theta, weights),
                                       DaskBackend.name)
    if held is not None and not info["converged"]:
        refuse_if_blown_up(held, weights, objective, info, opts, backend=DaskBackend.name)
    return StratifiedFit(result.theta, Encoding.of(design), info, objective,
                         None if parts is not None else design, output=opts["output"])


def _metadata_design(client, ir_model: ir.CheckedModel, frames, graphs=None) -> Design:
    """A design bound on a small frame holding every observed value of each column the
    strata and the response encode, with the feature transforms' state learned from every
    partition (so the encodings match those of the partitions)."""
    encoded = sorted({c for s in ir_model.strata for c in s.columns}
                     | set(ir_model.response.columns))
    summaries = client.gather([client.submit(_summary, f, encoded, ir_model, pure=False)
                               for f in frames])
    heads = [head for _, _, head, _ in summaries if not head.empty]
    if not heads:
        return bind(ir_model, summaries[0][2] if summaries else pd.DataFrame(),  # reports no
                    graphs=graphs)  # data
    values = {c: pd.Series(np.concatenate([u[c] for _, u, _, _ in summaries if c in u])).unique()
              for c in encoded if any(c in u for _, u, _, _ in summaries)}
    length = max([len(v) for v in values.values()] + [1])
    meta = pd.concat([heads[0]] * length, ignore_index=True)
    for c, v in values.items():
        meta[c] = np.resize(v, length)
    if ir_model.weights in meta.columns:  # the weights are checked where they are: the
        meta[ir_model.weights] = 1.0  # partitions (one repeated row could be all 0)
    binder = Binder(ir_model, meta)
    state = learn_state(binder, ir_model, [learned for _, _, _, learned in summaries])
    binder.out.raise_if_any()
    _, design = Encoding.learn(ir_model, meta, features=state, graphs=graphs)  # a missing
    assert isinstance(design, Design)  # column: reported (a stratified model's design)
    return design


def _records_from_partitions(client, parts: Partitioned, frames, design: Design,
                             blocks: Blocks, owners: list[str]):
    _, n, m = design.theta_shape
    encoding = Encoding.of(design)
    bound = [client.submit(_bind_partition, encoding, frame, name, blocks, pure=False)
             for (name, _), frame in zip(parts.parts, frames, strict=True)]
    flags = parts.model.response.offset is not None, parts.model.weights is not None
    records = [client.submit(_block_of_partitions, b, blocks, n, m, *flags, *bound,
                             workers=[owners[b]], allow_other_workers=True, pure=False)
               for b in range(len(blocks))]
    dropped: dict[str, int] = {}
    for counts in client.gather([client.submit(_dropped, piece, pure=False) for piece in bound]):
        for column, rows in counts.items():
            dropped[column] = dropped.get(column, 0) + rows
    report_dropped(dropped)
    rows = client.gather([client.submit(_initial_summary, design.loss.name, dict(
        design.loss_params), r, (n, m), pure=False) for r in records])
    present = [(c, row) for c, row in rows if row is not None and c > 0]
    initial = (sum(c * row for c, row in present) / sum(c for c, _ in present)
               if present else None)
    return records, initial, dropped
