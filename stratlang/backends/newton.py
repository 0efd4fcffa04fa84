"""The ``newton`` backend: smooth losses with quadratic regularizers → solvers.newton.

For a loss with a pointwise unit (value, first and second derivative in the linear
predictor: :meth:`Loss.pointwise`) and only quadratic regularizers (zero, sum_squares,
any ``where``), the objective is smooth and its Hessian is the stratum blocks
X_kᵀW_kX_k plus a diagonal plus the Kronecker-sum Laplacian: damped Newton (IRLS) with
preconditioned conjugate gradients fits it in a handful of steps, each a few vectorized
passes over the records, whatever the records per stratum. Chosen automatically for the
models it supports; ADMM fits the others (and these too when named).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..data.design import Design
from ..kinds.regularizers import REGULARIZERS
from ..language import ir
from ..language.errors import NumericalError, warn
from ..language.params import Options, Param, count, iterations, positive
from .base import Backend, StratifiedFit
from .objective import stratified_objective, term_index

PRECONDITIONERS = ("auto", "block", "kronecker", "direct")

NEWTON_OPTIONS = Options("backend 'newton'", (
    Param("max_iter", type="int", default=100, check=iterations, doc="Newton step limit"),
    Param("tol", default=1e-10, check=positive,
          doc="stop when half the squared Newton decrement (the objective decrease the next "
              "step predicts) falls below tol · max(1, |objective|)"),
    Param("max_cg", type="int", default=500, check=count(1_000_000),
          doc="conjugate-gradient steps per Newton step"),
    Param("preconditioner", type="name", default="auto",
          check=lambda v: None if v in PRECONDITIONERS else
          f"must be one of {', '.join(PRECONDITIONERS)}",
          doc="of the conjugate gradients: 'block' (the stratum blocks with the Laplacian's "
              "diagonal: good when the data dominate), 'kronecker' (the exact Kronecker-sum "
              "solve with the mean block: good when the graph dominates), 'direct' (the "
              "Hessian's own banded Cholesky factor, strata in reverse Cuthill-McKee order: "
              "exact, one CG step; up to 20,000 parameters and a band of 25 million numbers, "
              "else as 'auto'), 'auto' ('direct' "
              "where its factorization is cheap, else 'block' and 'kronecker' in a symmetric "
              "two-step product: never far from the better one)"),
))


def unsupported(design: Design) -> str | None:
    """Why the Newton backend cannot fit this model, or None when it can."""
    loss = design.loss
    if design.model.basis is not None:
        return "θ is restricted to a basis (`basis`): the eigen backend fits it"
    if not loss.convex or any(loss.pointwise(part.params) is None
                              for part in design.loss_parts()):
        return f"loss '{loss.name}' is not smooth and convex in the linear predictor"
    for term in design.model.regularizers:
        entry = REGULARIZERS[term.kind.name]
        if entry.is_constraint or entry.quadratic_weight(1.0, term.kind.p) is None:
            return f"regularizer '{entry.name}' is not quadratic (newton takes zero and sum_squares)"
    if design.partial_rows:
        return "a feature with `where` is present in some strata only"
    if design.model.structured:
        return ("parameter rows differ in their graph terms (`by`, `shared`, an own weight, "
                "`interact`); its Hessian takes one Laplacian for every row")
    return None


def ridge(design: Design, weights: dict[str, float]) -> np.ndarray:
    """The quadratic regularizers' weight on every parameter, (K, rows · outputs)."""
    k, n, m = design.theta_shape
    out = np.zeros((k, n))
    for term in design.model.regularizers:
        entry = REGULARIZERS[term.kind.name]
        q = entry.quadratic_weight(weights[term.hyper_name], term.kind.p)
        assert q is not None  # unsupported() refused the others
        out[term_index(design, term)] += q
    return np.repeat(out, m, axis=1)


def problem(design: Design, weights: dict[str, float]) -> Any:
    """The design as solvers.newton's smooth problem."""
    from ..solvers.hessian import KroneckerSum, RecordStatistics
    from ..solvers.newton import LossTerm, SmoothProblem

    k, _n, m = design.theta_shape
    records = design.records
    terms = []
    for part in design.loss_parts():
        unit = design.loss.pointwise(part.params)
        assert unit is not None  # unsupported() refused the others
        terms.append(LossTerm(unit, part.records))
    laplacian = KroneckerSum(design.strata.graphs(), design.strata.gammas(weights))
    return SmoothProblem(RecordStatistics(records.x, records.z, k, m), records.observed_y,
                         terms, ridge(design, weights), laplacian, records.offset,
                         records.weight)


def _failure(status: str, iterations: int, value: float) -> NumericalError:
    if status == "nonfinite_start":
        said = (f"the objective is not finite at the start ({value:.3g}): the predictions "
                "overflow (check the scale of the features and offsets)")
    elif status == "unbounded":
        said = ("the objective is unbounded below: it falls without end along a direction "
                "the data do not determine (e.g. a feature nonzero only where the loss is "
                "linear in it); add a sum_squares regularizer or a graph weight")
    elif status == "nonfinite":
        said = (f"the iterate, gradient or curvature became non-finite after {iterations} "
                "Newton steps (overflowing predictions or features: check their scale)")
    else:
        said = (f"Newton's line search found no decrease after {iterations} steps, far from "
                "the optimum (the problem may be badly scaled)")
    return NumericalError(f"backend 'newton': {said}; backend='admm' or 'cvxpy' fits it "
                          "another way", cli=f"backend 'newton': {said}; --backend admm or "
                                             "--backend cvxpy fits it another way")


def _direct(design: Design, weights: dict[str, float]
            ) -> tuple[np.ndarray, dict[str, Any]] | None:
    """A quadratic problem (a quadratic loss, quadratic penalties) that the data leave
    undetermined: its minimum-norm minimizer by one linear solve (Newton's shifted steps
    would leave θ wherever the start and the shift put it, so weighted and repeated
    records would differ); None for any other problem (Newton fits it)."""
    from .admm import _quadratic_diagonal, fit_direct

    diagonal = _quadratic_diagonal(design, weights)
    return (None if diagonal is None
            else fit_direct(design, weights, diagonal, singular_only=True))


def fit_newton(design: Design, weights: dict[str, float], options: dict[str, Any],
               warm: Any = None) -> tuple[np.ndarray, dict[str, Any]]:
    from ..solvers.newton import newton

    direct = _direct(design, weights)
    if direct is not None:
        return direct
    smooth = problem(design, weights)
    start = warm if isinstance(warm, np.ndarray) and warm.shape == design.theta_shape else None
    with np.errstate(over="ignore", invalid="ignore"):
        result = newton(smooth, start, tol=options["tol"], max_iter=options["max_iter"],
                        preconditioner=options["preconditioner"], max_cg=options["max_cg"])
    if result.status in ("nonfinite_start", "nonfinite", "unbounded", "line_search") or not np.all(
            np.isfinite(result.theta)):
        raise _failure(result.status, result.iterations, result.objective)
    if not result.converged:
        warn(f"Newton did not converge in {result.iterations} steps: the next step would "
             f"decrease the objective by {result.decrement:.3g} (tolerance "
             f"{options['tol'] * max(1.0, abs(result.objective)):.3g}); raise max_iter, or "
             "the problem may be unbounded")
    info = {"solver": f"damped Newton, {options['preconditioner']}-preconditioned CG",
            "status": "optimal" if result.converged else "max_iter",
            "converged": result.converged, "iterations": result.iterations,
            "cg_iterations": result.cg_iterations, "decrement": result.decrement,
            "solve_time": result.seconds,
            "history": [[i, decrement, cg] for i, (_, decrement, cg)
                        in enumerate(result.history, start=1)],
            "history_columns": ("Newton step; ½ λ² (the decrease the step predicts); "
                                "CG steps")}
    return result.theta, info


class NewtonBackend(Backend):
    name = "newton"
    doc = ("Damped Newton (IRLS) for smooth losses with zero / sum_squares regularizers: "
           "each step's Hessian (stratum blocks XᵀWX + Kronecker-sum Laplacian, never "
           "formed) solved by preconditioned conjugate gradients; a few steps whatever the "
           "records per stratum.")
    automatic = 0
    chosen = "automatically for smooth losses with quadratic regularizers (before ADMM)"
    quiet = True
    options = NEWTON_OPTIONS

    def applies(self, model: ir.CheckedModel) -> bool:
        return model.basis is None

    def unsupported(self, design: Design) -> str | None:
        return unsupported(design)

    def memory(self, design: Design, options: dict[str, Any]) -> int | None:
        k, n, m = design.theta_shape
        d = n * m
        records = design.n_records
        # the blocks and their inverse (a few copies of K·d²), a banded factor (at most
        # ~DIRECT_BUDGET / (K·d) wide: bounded by its cost), the record matrix (features
        # and their column indices) and their pairwise products, a dozen per-record arrays
        # (predictors, derivatives, the line search's)
        from ..solvers.banded import BAND_ENTRIES, DIRECT_BUDGET, DIRECT_LIMIT

        band = 0  # numbers in a banded factor (three copies: constant, working, factor)
        if k * d <= DIRECT_LIMIT:
            band = int(min(BAND_ENTRIES, k * d * k * d) if options["preconditioner"] == "direct"
                       else min(math.sqrt(DIRECT_BUDGET * k * d), k * d * k * d))
        return 8 * (6 * k * d * d + 12 * k * d + 3 * band
                    + records * (2 * n + n * (n + 1) // 2) + 12 * records * m)

    def fit(self, design: Design, weights: dict[str, float], options: dict[str, Any],
            warm: Any = None) -> StratifiedFit:
        start = time.perf_counter()
        theta, info = fit_newton(design, weights, options, warm)
        info.update(backend=self.name, fit_seconds=time.perf_counter() - start)
        objective = stratified_objective(design, theta, weights)
        if not math.isfinite(objective.total):
            raise _failure("nonfinite", info["iterations"], objective.total)
        return StratifiedFit.of(design, theta, info, objective, warm=theta)
