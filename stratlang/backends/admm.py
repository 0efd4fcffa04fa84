"""The ``admm`` backend: a checked stratified model and its data → solvers.admm.

This module translates language objects into arrays and callables; the engine in
``solvers`` sees only arrays, a Laplacian solver and prox functions.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from ..data.design import Design, LossPart
from ..data.row_structure import project_constant
from ..kinds.losses import Records
from ..kinds.regularizers import REGULARIZERS
from ..language import ir
from ..language.errors import NumericalError, NumericalWarning, warn
from ..language.params import Options, Param, interval, iterations, nonnegative, positive
from ..solvers.admm import Result, State, best_copy_index, suboptimality_bound
from .base import Backend, Objective, StratifiedFit
from .memory import ADMM_BYTES, stratified_need
from .objective import selected_rows, stratified_objective, term_index, term_value
from .relaxation import nonconvex_parts, relax, relaxation_bounds, relaxation_words
from .unbounded import refuse_if_unbounded

ADMM_OPTIONS = Options("backend 'admm'", (
    Param("max_iter", type="int", default=5000, check=iterations, doc="iteration limit"),
    Param("eps_abs", default=1e-6, check=positive, doc="absolute tolerance"),
    Param("eps_rel", default=1e-6, check=nonnegative, doc="relative tolerance"),
    Param("penalty", default=1.0, check=positive, doc="initial ADMM step λ (1/ρ)"),
    Param("relax", default=1.6, check=interval(0, 2, closed="()"),
          doc="over-relaxation α (1: none)"),
    Param("adaptive", type="bool", default=True,
          doc="balance the residuals, each against its tolerance (μ = 5, τ = 2), at most "
              "once in 10 iterations"),
    Param("progress", type="bool", default=None,
          doc="show a progress line (default: on a terminal)"),
))
DIRECT_LIMIT = 2_000_000  # unknowns K·n above which ADMM is used even for quadratic problems


def unsupported(design: Design) -> str | None:
    """Why ADMM cannot fit this model, or None when it can."""
    if design.model.basis is not None:
        return ("θ is restricted to a basis of eigenvectors (`basis`); ADMM fits the full "
                "model, the eigen backend (or the cvxpy reference) this one")
    for part in design.loss_parts():
        params = part.params
        if not design.loss.admm_ready(params):
            detail = f" with parameters {params}" if design.loss.admm_ready() else ""
            return f"the ADMM backend has no prox for loss '{design.loss.name}'{detail}"
    for term in design.model.regularizers:
        entry = REGULARIZERS[term.kind.name]
        if not entry.admm_ready():
            return f"the ADMM backend has no prox for regularizer '{entry.name}'"
    return interactions_unsupported(design)


def interactions_unsupported(design: Design) -> str | None:
    """An interaction term is solved exactly in the factors' eigenbases: each factor must
    be diagonalizable (a path or grid, or at most DENSE_LIMIT nodes)."""
    from ..solvers.laplacian import exact_kronecker

    if design.model.interactions and not exact_kronecker(design.strata.graphs()):
        return ("an `interact` term is solved in the factors' eigenbases, and a factor is "
                "too large a general graph to diagonalize")
    return None


def _local(part: LossPart, records: Records) -> Records:
    """A part's records, their strata numbered within the part's strata."""
    sub = part.of(records)
    assert part.strata is not None  # (parts of a model with overrides name their strata)
    return replace(sub, z=np.searchsorted(part.strata, sub.z))


def loss_prox(design: Design) -> Any:
    """The loss's prox over all strata: one per parameter set, joined (None when the
    ADMM backend has none)."""
    parts = design.loss_parts()
    k = design.strata.k
    if len(parts) == 1:  # (an override may select every stratum: its parameters then)
        return design.loss.admm_prox(design.records, k, parts[0].params)
    from ..solvers.prox import GroupedProx

    return GroupedProx([(part.strata, design.loss.admm_prox(
        _local(part, design.records), len(part.strata), part.params)) for part in parts
        if part.strata is not None])


def loss_initial(design: Design) -> np.ndarray | None:
    """Where ADMM starts, as the loss chooses for each parameter set (None: zero)."""
    k, n, m = design.theta_shape
    parts = design.loss_parts()
    if len(parts) == 1:
        return design.loss.admm_initial(design.records, (k, n, m), parts[0].params)
    out = None
    for part in parts:
        assert part.strata is not None
        start = design.loss.admm_initial(_local(part, design.records),
                                         (len(part.strata), n, m), part.params)
        if start is not None:
            out = np.zeros((k, n, m)) if out is None else out
            out[part.strata] = start
    return out


@dataclass(frozen=True)
class RegularizerTerm:
    """One regularizer term as ADMM sees it: the parameter rows it acts on, its weight."""

    kind: str
    index: tuple  # where in θ it acts: its rows, in its strata (objective.term_index)
    weight: float
    params: dict
    constraint: bool

    def prox(self, v: np.ndarray, t: float) -> np.ndarray:
        out = v.copy()
        out[self.index] = REGULARIZERS[self.kind].prox(v[self.index], t * self.weight,
                                                       self.params)
        return out

    def value(self, theta: np.ndarray) -> float:
        return term_value(REGULARIZERS[self.kind], theta[self.index], self.weight, self.params)


def regularizer_terms(design: Design, weights: dict[str, float]) -> list[RegularizerTerm]:
    """The terms that act (no rows selected, or weight 0, and a term drops out)."""
    terms = []
    for term in design.model.regularizers:
        entry = REGULARIZERS[term.kind.name]
        weight = 1.0 if entry.is_constraint else weights[term.hyper_name]
        if len(selected_rows(design, term)) and (weight != 0 or entry.is_constraint):
            terms.append(RegularizerTerm(term.kind.name, term_index(design, term), weight,
                                         dict(term.kind.p),
                                         entry.is_constraint))
    return terms


def make_feasible(theta: np.ndarray, terms: list[RegularizerTerm]) -> np.ndarray:
    """The loss copy, projected (in place) onto every constraint term's set."""
    for term in terms:
        if term.constraint:
            theta[term.index] = REGULARIZERS[term.kind].prox(theta[term.index], 0.0, term.params)
    return theta


def inner_tolerance(options: dict[str, Any]):
    """The tolerance of inexact inner (Newton) solves, as ``rule(primal, dual, previous)``
    of the residual-to-tolerance ratios: loose (1e-4) while ADMM is far from converged, and
    down to 100 times tighter than the outer tolerance near the end."""
    floor = 1e-2 * min(options["eps_abs"], options["eps_rel"] or options["eps_abs"])

    def rule(primal: float, dual: float, previous: float | None) -> float:
        if previous is None:
            return 1e-4
        return min(previous, max(floor, 1e-2 * floor * min(primal, dual)))

    return rule


def divergence(result: Result, options: dict[str, Any]) -> NumericalError:
    """The error for iterates that overflowed, naming the settings likely to blame."""
    relax, penalty = options["relax"], options["penalty"]
    if not 0 < relax < 2:
        cause = f"'relax' {relax:g} lies outside (0, 2), where over-relaxed ADMM diverges"
    else:
        cause = (f"the step: 'penalty' {penalty:g} may be far from the problem's scale (try "
                 f"{penalty / 10:g} or {penalty * 10:g}), or 'relax' {relax:g} too large "
                 "(1 is none)")
    said = (f"ADMM diverged after {result.iterations} iterations: the residuals are not "
            f"finite (primal {result.primal_residual:.3g}, dual {result.dual_residual:.3g}); "
            f"likely cause: {cause}; ")
    return NumericalError(said + "backend='cvxpy' fits without these settings",
                          cli=said + "--backend cvxpy fits without these settings")


def report(result: Result, solver: str, options: dict[str, Any],
           finite: bool | None = None, design: Design | None = None,
           weights: dict[str, float] | None = None, backend: str = "admm") -> dict[str, Any]:
    """``info`` for a fitted model; raises NumericalError on non-finite iterates (saying
    so when the objective is unbounded below, given the ``design`` with its records) and
    warns (with the final residuals) when the iteration limit was reached. ``finite``:
    whether θ is finite, when θ is not at hand."""
    if result.diverged or not (np.all(np.isfinite(result.theta)) if finite is None else finite):
        why = None
        if design is not None:  # an unbounded objective, not the step, is then to blame
            why = refuse_if_unbounded(design, weights or {}, backend)
        if why is not None:
            raise NumericalError(f"ADMM diverged after {result.iterations} iterations: {why}")
        raise divergence(result, options)
    why = None
    if not result.converged and design is not None:  # iterates running off along an
        why = refuse_if_unbounded(design, weights or {}, backend)  # unbounded direction?
    if why is not None:
        warn(f"ADMM did not converge in {result.iterations} iterations: {why}")
    elif not result.converged:
        warn(f"ADMM did not converge in {result.iterations} iterations: primal residual "
             f"{result.primal_residual:.3g} (tolerance {result.eps_primal:.3g}), dual residual "
             f"{result.dual_residual:.3g} (tolerance {result.eps_dual:.3g}); raise max_iter or "
             "loosen eps_abs / eps_rel")
    return {"solver": solver, "status": "optimal" if result.converged else "max_iter",
            "iterations": result.iterations, "converged": result.converged,
            "primal_residual": result.primal_residual, "dual_residual": result.dual_residual,
            "eps_primal": result.eps_primal, "eps_dual": result.eps_dual,
            "penalty": result.lam, "solve_time": result.seconds, "history": result.history}


BLOWN_UP = 1e6  # an unconverged objective this many times the start's: divergence


def refuse_if_blown_up(design: Design, weights: dict[str, float], objective: Objective,
                       info: dict[str, Any], options: dict[str, Any],
                       backend: str = "admm") -> None:
    """An unconverged fit whose objective is far above the objective at θ = 0 went the
    wrong way (finite, but diverging): an error, not a result with a warning."""
    k, n, m = design.theta_shape
    origin = stratified_objective(design, np.zeros((k, n, m)), weights).total
    if math.isfinite(origin) and objective.total > BLOWN_UP * max(abs(origin), 1.0):
        refuse_if_unbounded(design, weights, backend, only_unbounded=True)
        relax, penalty = options["relax"], options["penalty"]
        said = (f"ADMM diverged: after {info['iterations']} iterations, unconverged, the "
                f"objective is {objective.total:.3g}, against {origin:.6g} at θ = 0; likely "
                f"cause: the step ('penalty' {penalty:g}, 'relax' {relax:g}); ")
        raise NumericalError(said + "backend='cvxpy' fits without these settings",
                             cli=said + "--backend cvxpy fits without these settings")


def require_finite(objective: Objective, backend: str) -> Objective:
    """A fit whose objective is not a finite number is no result (e.g. overflowed
    predictions, or constraints that cannot all hold)."""
    if not math.isfinite(objective.total):
        said = (f"backend '{backend}' ended at a point whose objective is not finite "
                f"({objective}): overflowing predictions, or constraints that cannot all "
                "hold; try ")
        raise NumericalError(said + "backend='cvxpy' for a diagnosis",
                             cli=said + "--backend cvxpy for a diagnosis")
    return objective


def _quadratic_diagonal(design: Design, weights: dict[str, float]) -> np.ndarray | None:
    """The regularization weight of each stratum's parameter rows, (K, n), when the
    problem is quadratic and unconstrained (so one linear system solves it); else None."""
    k, n, _ = design.theta_shape
    if (not design.loss.quadratic or k * n > DIRECT_LIMIT or len(design.loss_parts()) > 1
            or design.model.structured):  # (rows constant along factors: ADMM's exact step)
        return None
    diagonal = np.zeros((k, n))
    for term in design.model.regularizers:
        entry = REGULARIZERS[term.kind.name]
        weight = None if entry.is_constraint else entry.quadratic_weight(
            weights[term.hyper_name], term.kind.p)
        if weight is None:
            return None
        diagonal[term_index(design, term)] += weight
    return diagonal


def fit_direct(design: Design, weights: dict[str, float], diagonal: np.ndarray,
               singular_only: bool = False) -> tuple[np.ndarray, dict[str, Any]] | None:
    """θ of a quadratic problem by one sparse solve (the minimum-norm minimizer when the
    system is singular); None when the singular system is too large to solve so.
    ``singular_only``: None too when the system is not singular (another method then
    fits it)."""
    from ..solvers.prox import QuadraticProx
    from ..solvers.quadratic import quadratic_singular, solve_quadratic

    start = time.perf_counter()
    prox = loss_prox(design)
    assert isinstance(prox, QuadraticProx)  # (the prox of a quadratic loss)
    if singular_only and not quadratic_singular(
            prox.gram, diagonal, design.strata.graphs(), design.strata.gammas(weights),
            design.row_groups() if design.partial_rows else None, design.absent_mask()):
        return None
    singular: dict[str, int] = {}
    try:
        theta = solve_quadratic(prox.gram, prox.xty, diagonal, design.strata.graphs(),
                                design.strata.gammas(weights),
                                design.row_groups() if design.partial_rows else None,
                                design.absent_mask(), details=singular)
    except RuntimeError:  # singular: some parameters are not determined by the data
        return None
    info: dict[str, Any] = {"solver": "direct sparse solve (quadratic problem)",
                            "status": "optimal", "iterations": 0, "converged": True,
                            "solve_time": time.perf_counter() - start}
    if singular:
        info["solver"] = "minimum-norm solve (singular quadratic problem)"
        info["note"] = (f"the data and graphs leave {singular['unknowns'] - singular['rank']} "
                        f"of θ's {singular['unknowns']} directions undetermined: the "
                        "minimum-norm minimizer")
    return theta, info


def fit_admm(design: Design, weights: dict[str, float], options: dict[str, Any],
             warm: State | None = None, initial: np.ndarray | None = None,
             local: bool = False, extra: list[RegularizerTerm] | None = None
             ) -> tuple[np.ndarray, dict[str, Any], State | None]:
    """(θ of shape (K, n, m), info, final state); ``options`` resolved (every ADMM option
    present); ``initial``: where every copy starts (default: the loss's choice);
    ``local``: a non-convex model (the penalty is then only raised). Raises
    NumericalError on divergence and warns (with the final residuals) when the iteration
    limit is reached."""
    from ..data.row_structure import interactions, weighted_groups
    from ..solvers.admm import admm
    from ..solvers.laplacian import GroupedSolver, laplacian_solver

    diagonal = _quadratic_diagonal(design, weights)
    note = None
    if diagonal is not None and warm is None and initial is None:
        direct = fit_direct(design, weights, diagonal)
        if direct is not None:
            return (*direct, None)
        # the minimizer is not unique (e.g. a stratum without data and without graph
        # neighbours): ADMM still converges to a minimizer
        note = "quadratic system singular (minimizer not unique): solved by ADMM"
    k, n, m = design.theta_shape
    prox = loss_prox(design)
    assert prox is not None  # (unsupported() turns away a loss without a prox)
    terms = regularizer_terms(design, weights) + (extra or [])
    gammas = design.strata.gammas(weights)
    solver = (GroupedSolver(weighted_groups(design, weights), gammas, (k, n, m),
                            interactions(design.model, weights))
              if design.grouped_rows else laplacian_solver(design.strata.graphs(), gammas))
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            result = admm(prox, [t.prox for t in terms], partial(solver.solve, overwrite_b=True),
                          (k, n, m),
                          lam=options["penalty"], eps_abs=options["eps_abs"],
                          eps_rel=options["eps_rel"], max_iter=options["max_iter"],
                          adaptive=options["adaptive"], relax=options["relax"], warm=warm,
                          progress=options["progress"],
                          inner_tol=inner_tolerance(options),  # (for an inexact loss prox)
                          only_down=local,
                          initial=initial if initial is not None else loss_initial(design))
    except np.linalg.LinAlgError as err:  # a prox's Newton system of overflowed iterates
        refuse_if_unbounded(design, weights, "admm", only_unbounded=True)
        said = (f"ADMM diverged: a prox's linear system became singular ({err}), as "
                f"iterates that overflow make it; likely cause: the step ('penalty' "
                f"{options['penalty']:g}, 'relax' {options['relax']:g}); ")
        raise NumericalError(said + "backend='cvxpy' fits without these settings",
                             cli=said + "--backend cvxpy fits without these settings") from None
    info = report(result, f"ADMM ({type(solver).__name__})", options, design=design,
                  weights=weights)
    theta, info["copy"], info["objective_spread"] = best_copy(design, weights, result, terms)
    info["objective_accuracy"] = info["objective_spread"] + suboptimality(result)
    if note:
        info["note"] = note
    return theta, info, result.state


def suboptimality(result: Result) -> float:
    """An estimate of how far the copies' objective may lie above the optimum at exit
    (:func:`solvers.admm.suboptimality_bound`)."""
    assert result.state is not None
    state = result.state
    duals = math.sqrt(sum(float(np.sum(d * d)) for d in state.duals)) / state.lam
    copies = math.sqrt(sum(float(np.sum(c * c)) for c in state.copies))
    return suboptimality_bound(duals, copies, result.primal_residual, result.dual_residual)


def copy_names(terms: list[RegularizerTerm]) -> list[str]:
    """The names of ADMM's copies of θ, in the solver's order."""
    return ["loss", *(f"{t.kind} term" for t in terms), "consensus"]


def best_copy(design: Design, weights: dict[str, float], result: Result,
              terms: list[RegularizerTerm]) -> tuple[np.ndarray, str, float]:
    """ADMM ends with copies of θ that agree to the residual tolerance: the loss's, each
    regularizer term's and the consensus θ̂. Each made feasible, the one with the lowest
    objective is the answer (a non-smooth term's own copy is often better than the loss
    copy by far more than the tolerance suggests: exact zeros of an l1 prox); the spread of
    the objective over them says how accurate the objective is. Returns (θ, which copy,
    spread); the choice is :func:`solvers.admm.best_copy_index`'s, as on a cluster."""
    assert result.state is not None and result.theta is not None  # (an in-memory run)
    absent = design.absent_mask()
    names = copy_names(terms)
    points = [result.theta, *result.state.copies[1:], result.state.theta_hat]
    candidates, values, eligible = [], [], []
    parts = design.loss_parts()
    for name, point in zip(names, points, strict=True):
        candidate = make_feasible(project_constant(design, point.copy()), terms)
        if absent is not None:  # (the loss copy there is 0 to the tolerance)
            candidate[absent] = 0.0
        candidates.append(candidate)
        values.append(stratified_objective(design, candidate, weights).total)
        eligible.append(name == "loss" or all(design.loss.in_domain(  # (outside the loss's
            candidate if part.strata is None else candidate[part.strata], part.params)  # own
            for part in parts))  # constraints, eps: no answer)
    at, spread = best_copy_index(values, eligible)
    if at is None:  # (no copy has a finite objective: require_finite reports it)
        return candidates[0], "loss", math.inf
    return candidates[at], names[at], spread


def _polish(design: Design, weights: dict[str, float], options: dict[str, Any],
            theta: np.ndarray) -> np.ndarray | None:
    """With a convex loss and non-convex constraints only, each holding entries at 0 at
    the point (e.g. the support `nonzeros` kept), the model restricted to those zeros is
    convex: ADMM solves it from the point, and the result is kept when it is better (a
    local method's point need not be optimal on its own support)."""
    model = design.model
    entries = [(t, REGULARIZERS[t.kind.name]) for t in model.regularizers]
    if not design.loss.convex or any(not e.convex and not e.is_constraint for _, e in entries):
        return None
    mask = np.zeros(design.theta_shape, dtype=bool)
    for term, entry in entries:
        if entry.convex:
            continue
        index = term_index(design, term)
        zeros = entry.fixed_zeros(theta[index], term.kind.p)
        if zeros is None:
            return None
        mask[index] |= zeros
    if not mask.any():
        return None
    relaxed, relaxed_weights = relax(design, weights)
    fixed = RegularizerTerm("box", (mask,), 1.0, {"lower": 0.0, "upper": 0.0}, True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumericalWarning)
            better, info, _ = fit_admm(relaxed, relaxed_weights, options, None, theta,
                                       extra=[fixed])
    except NumericalError:
        return None
    better[mask] = 0.0
    if not info["converged"]:
        return None
    before = stratified_objective(design, theta, weights).total
    after = stratified_objective(design, better, weights).total
    return better if after < before else None


def _second_start(design: Design, weights: dict[str, float], options: dict[str, Any],
                  relaxed_fit: np.ndarray, first: tuple, start: str) -> tuple:
    """ADMM from the relaxation can settle at a poor point (a support it drifted to);
    the relaxation's fit made feasible (each constraint's projection) is another start:
    when it is already better, ADMM runs again from it (as a local method, at the same
    settings), and the better of that run and the projection itself is kept."""
    terms = regularizer_terms(design, weights)
    projected = make_feasible(relaxed_fit.copy(), terms)
    value = stratified_objective(design, projected, weights).total
    best = stratified_objective(design, first[0], weights).total
    if not value < best:
        return (*first, start)
    theta, info, state = fit_admm(design, weights, options, None, projected, local=True)
    again = stratified_objective(design, theta, weights).total
    said = ("the convex relaxation's fit projected onto the constraint sets (better than "
            f"ADMM from the relaxation itself: {best:.6g})")
    if again <= value:
        return theta, info, state, said
    # the projection itself is kept: no iteration produced it, and none certified it
    kept = {**info, "converged": False, "status": "projected_start", "iterations": 0,
            "discarded_iterations": info["iterations"]}
    for name in ("primal_residual", "dual_residual", "history"):
        kept.pop(name, None)
    return projected, kept, None, (said + f"; ADMM from it ({info['iterations']} "
                                   "iterations) ended worse, so the projection is kept")


def fit_local(design: Design, weights: dict[str, float], options: dict[str, Any],
              warm: State | None = None) -> tuple[np.ndarray, dict[str, Any], State | None]:
    """A non-convex model by ADMM as a local method: from ``warm`` (the last fit along a
    path) or else from the fit of the model's convex relaxation; reports the start, and
    (as any ADMM fit) warns when the iterates did not converge."""
    model = design.model
    info_start: dict[str, Any] = {}
    initial = None
    if warm is None:
        relaxed, relaxed_weights = relax(design, weights)
        initial, relaxed_info, _ = fit_admm(relaxed, relaxed_weights, options)
        start = "the convex relaxation's fit (" + relaxation_words(model) + ")"
        info_start = {"relaxation_objective": stratified_objective(
                          relaxed, initial, relaxed_weights).total,
                      "relaxation_iterations": relaxed_info["iterations"],
                      "relaxation_bounds": relaxation_bounds(model)}
    else:
        start = "the previous fit along the path"
    theta, info, state = fit_admm(design, weights, options, warm, initial, local=True)
    if initial is not None:  # a second start: the relaxation's fit projected onto the sets
        theta, info, state, start = _second_start(design, weights, options, initial,
                                                  (theta, info, state), start)
    polished = _polish(design, weights, options, theta)
    if polished is not None:
        theta, info["polished"] = polished, True
    info.update(info_start, local=True, start=start,
                nonconvex=", ".join(nonconvex_parts(model)),
                note=("non-convex (" + ", ".join(nonconvex_parts(model)) + "): ADMM is a "
                      f"local method, started from {start}; "
                      + ("kept that start, a point" if info["status"] == "projected_start"
                         else ("converged" if info["converged"] else "not converged")
                         + " to a point")
                      + " that need not be a global minimum"))
    return theta, info, state


class AdmmBackend(Backend):
    name = "admm"
    doc = ("ADMM (stratified paper, Algorithm 4.1): closed-form or Newton proxes vectorized "
           "across strata, exact Kronecker-sum Laplacian solves; the default for stratified "
           "models it supports.")
    automatic = 1
    chosen = "automatically for models without `basis` (first choice)"
    verbose_option = "progress"
    options = ADMM_OPTIONS

    def applies(self, model: ir.CheckedModel) -> bool:
        return model.basis is None  # a basis model is the eigen backend's

    def unsupported(self, design: Design) -> str | None:
        return unsupported(design)

    def memory(self, design: Design, options: dict[str, Any]) -> int | None:
        return stratified_need(design, ADMM_BYTES)

    def fit(self, design: Design, weights: dict[str, float], options: dict[str, Any],
            warm: Any = None) -> StratifiedFit:
        start = time.perf_counter()
        warm = warm if isinstance(warm, State) else None
        if nonconvex_parts(design.model):
            theta, info, state = fit_local(design, weights, options, warm)
        else:
            theta, info, state = fit_admm(design, weights, options, warm)
        info.update(backend=self.name, fit_seconds=time.perf_counter() - start)
        objective = require_finite(stratified_objective(design, theta, weights), self.name)
        if not info["converged"]:
            refuse_if_blown_up(design, weights, objective, info, options)
        return StratifiedFit.of(design, theta, info, objective, warm=state)
