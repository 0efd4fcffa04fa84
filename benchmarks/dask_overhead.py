"""The dask backend against the in-process ADMM on the crime-count-scale problem, and an
estimate of how its time scales with workers.

    python benchmarks/dask_overhead.py            # 20×20 grid × 52 × 7 × 24 (3,494,400 strata)
    python benchmarks/dask_overhead.py --small    # 10×10 grid × 52 × 7 × 24 (873,600 strata)
    python benchmarks/dask_overhead.py --general  # 5,000-node general graph × path(200)

Runs the in-process ADMM, then the dask backend on LocalClusters of 1 and 2 worker
processes (one with 2 threads, or two with 1 thread each: the machine's 2 cores), and
prints seconds, iterations, objectives and the ratio to the in-process time. Cluster
start-up is not counted (a cluster is started once and reused by many fits).

From the 2-worker run's task stream it splits an iteration into compute (per worker),
transfer (per worker) and the rest (scheduling latency of the dependent task rounds and
the client's gather), and extrapolates to W single-core workers on as many cores of
several machines (the binding on the client unchanged): compute ∝ 1/W; in the column
layout of the Laplacian step each worker sends and receives (K·d/W)·(W − 1)/W numbers
twice per iteration, so transfer ∝ 4(W − 1)/W² relative to W = 2 at the same
bandwidth; the latency grows by the scheduler's cost per task (measured here on no-op
tasks) for each task beyond the 2-worker count: an iteration has 3W block tasks and
2W(W − 1) piece tasks. A second estimate scales compute, transfers and binding by 10
(ten times the strata, the same iterations) against ten times the in-process time. The
estimate assumes localhost bandwidth; a real network's is lower (see RESULTS.md).

``--general`` runs :func:`admm.general_problem` (10⁶ strata; its Laplacian step is
conjugate gradients: on the whole product in-process, along the general graph per
column of the path's transform on the workers) in-process and on 2 workers.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings

from admm import distribution_frame, distribution_spec, general_problem

import stratlang


def _stream_totals(records) -> tuple[float, float]:
    """(compute seconds, transfer seconds) summed over a task stream."""
    compute = transfer = 0.0
    for record in records:
        for span in record["startstops"]:
            if span["action"] == "compute":
                compute += span["stop"] - span["start"]
            elif span["action"] == "transfer":
                transfer += span["stop"] - span["start"]
    return compute, transfer


def _seconds_per_task(client, count: int = 2000) -> float:
    """The scheduler's cost of one task: no-op tasks spread over the workers, submitted
    and gathered together."""
    workers = sorted(client.scheduler_info()["workers"])
    client.gather([client.submit(int, i, workers=[workers[i % len(workers)]], pure=False)
                   for i in range(100)])  # warm
    start = time.perf_counter()
    client.gather([client.submit(int, i, workers=[workers[i % len(workers)]], pure=False)
                   for i in range(count)])
    return (time.perf_counter() - start) / count


def _tasks_per_iteration(workers: int) -> int:
    """One block per single-core worker: 3 tasks per block, 2 exchanges of one task per
    ordered pair of workers."""
    return 3 * workers + 2 * workers * (workers - 1)


class _Sampler:
    """The peak resident memory of this process while it runs (sampled every 5 ms:
    ru_maxrss would count the start-up spike of a worker's imports)."""

    def __init__(self) -> None:
        self.peak, self.running = 0, True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while self.running:
            with open("/proc/self/statm") as statm:
                self.peak = max(self.peak, int(statm.read().split()[1]) * page)
            time.sleep(0.005)

    def stop(self) -> float:
        self.running = False
        self.thread.join()
        return self.peak / 2**30


def _start_sampling(dask_worker) -> None:  # on a worker (client.run passes it)
    dask_worker.benchmark_sampler = _Sampler()


def _stop_sampling(dask_worker) -> float:
    return dask_worker.benchmark_sampler.stop()


def main(small: bool) -> None:
    from distributed import Client, LocalCluster, get_task_stream

    shape = (10, 10, 52, 7, 24) if small else (20, 20, 52, 7, 24)
    frame = distribution_frame(shape)
    kinds = ["grid", "grid", "cycle", "cycle", "cycle"]  # as benchmarks/admm.py crime_3_5m
    spec = distribution_spec(list(zip(kinds, shape, strict=True)), 100.0)
    model = stratlang.load(spec)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sampler = _Sampler()
        start = time.perf_counter()
        fitted = model.fit(frame, backend="admm", options={"progress": False})
        base = time.perf_counter() - start
        rows.append(("in-process admm", base, fitted.info["iterations"], fitted.objective.total,
                     f"{sampler.stop():.2f} (this process)"))
        for workers in (1, 2):  # each on the whole machine: 2 cores
            with LocalCluster(n_workers=workers, threads_per_worker=2 // workers, processes=True,
                              dashboard_address=None) as cluster, Client(cluster) as client:
                client.run(_start_sampling)
                with get_task_stream(client) as stream:
                    start = time.perf_counter()
                    fitted = model.fit(frame, backend="dask", options={"scheduler": client})
                    seconds = time.perf_counter() - start
                blocks = fitted.info["solver"].split("(")[1].split(" ")[0]
                peaks = client.run(_stop_sampling).values()
                rows.append((f"dask, {workers} worker{'s' * (workers > 1)} ({blocks} blocks)",
                             seconds, fitted.info["iterations"], fitted.objective.total,
                             " / ".join(f"{peak:.2f}" for peak in peaks)))
                compute, transfer = _stream_totals(stream.data)
                iterating = fitted.info["solve_time"]
                per_task = _seconds_per_task(client)
    k = fitted.strata.k
    print(f"K = {k:,} strata, Poisson, weight 100 on every factor\n")
    print("| method | seconds | iterations | objective | time / in-process "
          "| peak resident GiB per process |")
    print("|---|---|---|---|---|---|")
    for name, seconds, iterations, objective, peaks in rows:
        print(f"| {name} | {seconds:.2f} | {iterations} | {objective:.10g} "
              f"| {seconds / base:.2f}× | {peaks} |")

    # the last run had 2 workers: its serial part (binding on the client), and per iteration
    iterations = rows[-1][2]
    serial = rows[-1][1] - iterating
    per_iter = iterating / iterations
    work, move = compute / 2 / iterations, transfer / 2 / iterations
    latency = max(per_iter - work - move, 0.0)
    print(f"\n2 workers: {serial:.2f} s binding and splitting on the client, then per iteration "
          f"{1e3 * per_iter:.0f} ms = compute {1e3 * work:.0f} ms + transfer {1e3 * move:.0f} ms "
          f"+ scheduling, waiting and gather {1e3 * latency:.0f} ms (per worker); "
          f"the scheduler's cost per task {1e3 * per_task:.2f} ms\n")
    print("| single-core workers | tasks / iteration | estimated seconds | time / in-process "
          "| 10× the strata: time / in-process |")
    print("|---|---|---|---|---|")
    for w in (2, 4, 8, 16, 32):
        tasks = _tasks_per_iteration(w)
        waiting = latency + per_task * (tasks - _tasks_per_iteration(2))
        per_strata = work * 2 / w + move * 4 * (w - 1) / w**2  # ∝ strata, like the binding
        one, ten = (scale * serial + iterations * (scale * per_strata + waiting)
                    for scale in (1, 10))
        print(f"| {w} | {tasks} | {one:.2f} | {one / base:.2f}× | {ten / (10 * base):.2f}× |")


def general() -> None:
    import tempfile
    from pathlib import Path

    from distributed import Client, LocalCluster

    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec, frame = general_problem(Path(folder))
        model = stratlang.load(spec)
        print("| method | seconds | iterations | objective |\n|---|---|---|---|")
        start = time.perf_counter()
        fitted = model.fit(frame, backend="admm", options={"progress": False})
        print(f"| in-process admm ({fitted.info['solver']}) | {time.perf_counter() - start:.2f} | "
              f"{fitted.info['iterations']} | {fitted.objective.total:.10g} |")
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            start = time.perf_counter()
            fitted = model.fit(frame, backend="dask", options={"scheduler": client})
            print(f"| dask, 2 workers | {time.perf_counter() - start:.2f} | "
                  f"{fitted.info['iterations']} | {fitted.objective.total:.10g} |")


if __name__ == "__main__":
    if "--general" in sys.argv:
        general()
    else:
        main("--small" in sys.argv)
