"""The backend registry: which engines can fit which model kinds, and their options."""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp

from .registry import Param, Registry, positive

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
