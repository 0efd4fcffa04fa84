"""The dask backend against the in-process ADMM on the crime-count-scale problem.

    python benchmarks/dask_overhead.py            # 20×20 grid × 52 × 7 × 24 (3,494,400 strata)
    python benchmarks/dask_overhead.py --small    # 10×10 grid × 52 × 7 × 24 (873,600 strata)

Runs the in-process ADMM, then the dask backend on LocalClusters of 1 and 2 worker
processes (one with 2 threads, or two with 1 thread each: the machine's 2 cores), and prints
seconds, iterations, objectives and the ratio to
the in-process time. Cluster start-up is not counted (a cluster is started once and
reused by many fits).
"""

from __future__ import annotations

import sys
import time
import warnings

from admm import distribution_frame, distribution_spec

import stratlang


def main(small: bool) -> None:
    from distributed import Client, LocalCluster

    shape = (10, 10, 52, 7, 24) if small else (20, 20, 52, 7, 24)
    frame = distribution_frame(shape)
    kinds = ["grid", "grid", "cycle", "cycle", "cycle"]  # as benchmarks/admm.py crime_3_5m
    spec = distribution_spec(list(zip(kinds, shape, strict=True)), 100.0)
    model = stratlang.load(spec)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        fitted = model.fit(frame, backend="admm", options={"progress": False})
        base = time.perf_counter() - start
        rows.append(("in-process admm", base, fitted.info["iterations"], fitted.objective.total))
        for workers in (1, 2):  # each on the whole machine: 2 cores
            with LocalCluster(n_workers=workers, threads_per_worker=2 // workers, processes=True,
                              dashboard_address=None) as cluster, Client(cluster) as client:
                start = time.perf_counter()
                fitted = model.fit(frame, backend="dask", options={"scheduler": client})
                seconds = time.perf_counter() - start
                rows.append((f"dask, {workers} worker{'s' * (workers > 1)} "
                             f"({fitted.info['solver'].split('(')[1].split(' ')[0]} blocks)",
                             seconds, fitted.info["iterations"], fitted.objective.total))
    k = fitted.strata.k
    print(f"K = {k:,} strata, Poisson, weight 100 on every factor\n")
    print("| method | seconds | iterations | objective | time / in-process |")
    print("|---|---|---|---|---|")
    for name, seconds, iterations, objective in rows:
        print(f"| {name} | {seconds:.2f} | {iterations} | {objective:.10g} | {seconds / base:.2f}× |")


if __name__ == "__main__":
    main("--small" in sys.argv)
