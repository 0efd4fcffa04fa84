"""The backend registry: which engines can fit which model kinds, and their options."""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp

from .registry import Param, Registry, nonnegative, positive

BACKENDS: Registry[Backend] = Registry("backend")


def _installed_solver(name: str) -> str | None:
    installed = [s.lower() for s in cp.installed_solvers()]
    if name.lower() in installed:
        return None
    return "must be one of the installed CVXPY solvers: " + ", ".join(sorted(installed))


@dataclass(frozen=True)
class Backend:
    name: str
    doc: str
    fits: tuple[str, ...]  # model kinds: 'stratified', 'personalized'
    options: tuple[Param, ...]


BACKENDS.register("cvxpy", Backend(
    "cvxpy",
    "The reference: one CVXPY problem for the whole model, solved by a conic solver.",
    ("stratified",),
    (Param("method", type="name", default=None, check=_installed_solver,
           doc="the CVXPY solver (clarabel, scs, osqp, ecos, ...); CVXPY chooses when absent"),
     Param("verbose", type="bool", default=False, doc="print the solver's log"),
     Param("max_iters", type="int", default=None, check=positive,
           doc="iteration limit passed to the solver")),
))


def _relax(v: float) -> str | None:
    return None if 0 < v < 2 else "must lie in (0, 2)"


BACKENDS.register("admm", Backend(
    "admm",
    "ADMM (stratified paper, Algorithm 4.1): closed-form or Newton proxes vectorized across "
    "strata, exact Kronecker-sum Laplacian solves; the default for stratified models it supports.",
    ("stratified",),
    (Param("max_iter", type="int", default=5000, check=positive, doc="iteration limit"),
     Param("eps_abs", default=1e-6, check=positive, doc="absolute tolerance"),
     Param("eps_rel", default=1e-6, check=nonnegative, doc="relative tolerance"),
     Param("penalty", default=1.0, check=positive, doc="initial ADMM step λ (1/ρ)"),
     Param("relax", default=1.6, check=_relax, doc="over-relaxation α (1 = none)"),
     Param("adaptive", type="bool", default=True, doc="adapt the penalty (μ = 5, τ = 2)"),
     Param("progress", type="bool", default=None, doc="show a progress line (default: on a terminal)")),
))


BACKENDS.register("dask", Backend(
    "dask",
    "The ADMM backend run block by block on a Dask cluster: records and proxes stay on the "
    "workers; the Laplacian step is distributed along the product graph's first axis.",
    ("stratified",),
    (*BACKENDS["admm"].options,
     Param("scheduler", type="string", default=None,
           doc="address of a Dask scheduler (tcp://host:8786); without it a LocalCluster"),
     Param("workers", type="int", default=2, check=positive,
           doc="worker processes of the LocalCluster started when no scheduler is given"),
     Param("blocks", type="int", default=None, check=positive,
           doc="blocks of strata (default: one per worker thread of the cluster)"),
     Param("output", type="string", default=None,
           doc="directory the workers write θ to (Parquet parts, plus model.json): θ never "
               "reaches the client; load_fitted(directory) reads it back")),
))


BACKENDS.register("subgradient", Backend(
    "subgradient",
    "Low-rank personalized regression (Algorithm 1 of Lengerich et al.): population model, "
    "PCA initialization, subgradient epochs on Z, Q, φ; the default for personalized models.",
    ("personalized",),
    (Param("validation", default=0.1, check=lambda v: None if 0 <= v < 0.5 else
           "must lie in [0, 0.5)", doc="share of samples held out for early stopping"),
     Param("patience", type="int", default=20, check=positive,
           doc="epochs without validation improvement before stopping"),
     Param("progress", type="bool", default=None, doc="show a progress line")),
))
