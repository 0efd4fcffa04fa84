"""Weights written ``auto``, chosen from the data (REML, ML or GCV) around a backend.

The model's quadratic penalties read as a Gaussian prior whose precisions are the
weights (docs/language.md, "Weights chosen from the data"). This module builds that
prior's :class:`~stratlang.solvers.penalty.QuadraticPenalty` from the model and its bound
design — one part per ``stratify`` factor (its Laplacian), per ``interact`` term (the
Kronecker product of its factors' Laplacians) and per quadratic regularizer term (its ridge pattern: the rows it acts on, in the strata its ``where`` selects) — and
hands :func:`stratlang.solvers.selection.select_weights` a callback that fits the model
with the chosen backend (``newton`` for smooth losses, ADMM otherwise) at any weights,
warm-started from the fit before. Fixed weights stay fixed; a fixed weight of 0 adds no
part. The result is the weights by name and a report for ``fitted.info['selection']``.

Rows held constant along factors (``by`` some factors, ``shared``) and features present
in some strata only (``where``) are taken over the model's free coefficients θ = Tφ
(:func:`stratlang.data.row_structure.reparametrization`): the penalty carries T, and each
inner fit is polished by Newton steps in φ. :func:`prior` is the one builder of this
penalty; the uncertainty (stratlang.uncertainty) takes it too, every weight fixed.

A loss that sees each stratum's θ whole (gaussian's symmetric precision) is read over
θ's free coordinates (backends.free_coordinates).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.design import Design
from ..kinds.regularizers import REGULARIZERS
from ..language import ir
from ..language.auto import DEFAULT_METHOD, SELECTION_METHODS
from ..language.errors import NumericalError, OptionError, StratlangError, did_you_mean
from .deviance import deviance, saturated_loss
from .free_coordinates import free_penalty, polished_fit, stored_spread, strata_likelihood
from .objective import term_index
from .weight_spread import spread_of

SELECTION_KEY = "selection"  # where fitted.info reports the choice


@dataclass
class _Part:
    name: str  # the weight's name (stratify.<columns>, interact.<columns>, reg<i>.<kind>)
    part: Any  # a solvers.penalty LaplacianPart, InteractionPart or RidgePart
    free: bool  # chosen (auto), else fixed at its value
    value: float  # the fixed value, or where the search starts


def method_for(model: ir.CheckedModel, select: str | None) -> str:
    """The method: ``select`` (from Python or the command line), else the spec's, else
    REML. An unknown name is an error naming the methods."""
    if select is None:
        return (model.solver.select if model.solver is not None and model.solver.select
                else DEFAULT_METHOD)
    if not isinstance(select, str) or select not in SELECTION_METHODS:
        said = f"select={select!r}"
        hint = did_you_mean(select, SELECTION_METHODS) if isinstance(select, str) else (
            "; expected one of " + ", ".join(f"'{m}'" for m in SELECTION_METHODS))
        raise OptionError(f"{said}: unknown method of choosing auto weights{hint}",
                          cli=f"--select {select}: unknown method of choosing auto weights"
                              f"{hint}")
    return select


def unchosen(model: ir.CheckedModel, values: dict[str, float]) -> list[str]:
    """The auto weights that ``values`` does not fix: the ones to choose."""
    return [name for name in model.autos() if name not in values]


def _refusal(design: Design, method: str, whole: bool) -> str | None:
    """Why the weights of this model cannot be chosen by the likelihood (``whole``: the
    loss sees each stratum's θ whole), or None."""
    model = design.model
    if model.basis is not None:
        return "a basis model (`basis`) restricts θ to the graph's smoothest eigenvectors"
    likelihood = design.loss.likelihood
    if likelihood is None:
        return f"loss '{design.loss.name}' has no likelihood reading"
    if method == "gcv" and (why := likelihood.gcv_refusal(design.loss.name)):
        return f"{why}: choose them by reml or ml"
    for part in design.loss_parts():
        if why := design.loss.likelihood_refusal(part.params):
            return why
        if not whole and design.loss.likelihood_unit(part.params) is None:
            return f"loss '{design.loss.name}' has no curvature for the Laplace approximation"
    for term in model.regularizers:
        entry = REGULARIZERS[term.kind.name]
        if entry.is_constraint or entry.quadratic_weight(1.0, term.kind.p) is None:
            return (f"regularizer '{entry.name}' is not a quadratic penalty: the penalties "
                    "read as a Gaussian prior only when every one is")
    return None


def _laplacian_rows(design: Design) -> list[tuple[int, tuple[str, np.ndarray]]]:
    """Per factor, each weight on its Laplacian and the parameter rows it acts on: the
    factor's own weight on the rows without one of their own, and each ``by (f weight
    w)``'s on its term's rows; a row constant along the factor (``by`` other factors,
    ``shared``) is on none of them (its Laplacian there vanishes)."""
    from ..data.row_structure import constant_factors, row_vary

    model = design.model
    vary = row_vary(design)
    n = len(vary)
    out = []
    for i, factor in enumerate(design.strata.factors):
        own: dict[str, np.ndarray] = {}
        for j, over in enumerate(vary):
            for v in over or ():
                if v.weight is not None and model.factor_of(v.column) == i:
                    own.setdefault(v.hyper_name, np.zeros(n, dtype=bool))[j] = True
        taken = np.zeros(n, dtype=bool)
        for j, over in enumerate(vary):
            along = constant_factors(model, over)
            taken[j] = bool(along) and along[i]
        for rows in own.values():
            taken |= rows
        out.append((i, (factor.hyper_name, ~taken)))
        out += [(i, item) for item in own.items()]
    return out


@dataclass(frozen=True)
class Prior:
    """The Gaussian prior the quadratic penalties read as: its parts (the weights' names
    and whether each is chosen) and the engine's penalty (θ = Tφ where rows are held
    constant along factors)."""

    parts: list[_Part]
    penalty: Any  # solvers.penalty.QuadraticPenalty


def prior(design: Design, values: dict[str, float], chosen: list[str] | tuple[str, ...] = ()
          ) -> Prior:
    """The prior of ``design`` at the weights ``values`` (those in ``chosen`` free)."""
    from ..data.row_structure import reparametrization
    from ..solvers.penalty import QuadraticPenalty

    parts = _parts(design, values, list(chosen))
    _k, n, m = design.theta_shape
    penalty = QuadraticPenalty(design.strata.graphs(), [p.part for p in parts], n, m,
                               reparametrization=reparametrization(design))
    _check_acting(design, parts, penalty)
    return Prior(parts, penalty)


def _check_acting(design: Design, parts: list[_Part], penalty: Any) -> None:
    """An auto weight whose penalty vanishes on every free coefficient cannot be chosen
    (the criterion is flat in it): an error at the weight."""
    from ..solvers.penalty import InteractionPart

    t = penalty.reparametrization
    for a, part in enumerate(parts):
        if not part.free or penalty.acts(a):
            continue
        if (isinstance(part.part, InteractionPart) and t is not None
                and all(any(t.constant[c, f] for f in part.part.factors) for c in range(t.d))):
            why = ("every row is constant along a factor the interaction joins", "drop the term")
        elif t is None:
            why = ("its graph has no edge", "fix the weight, or give the graph edges")
        else:
            why = ("each row it penalizes is constant along its factor, or present (`where`) "
                   "on nodes of it that no edge joins", "fix the weight, or drop the term")
        _refuse_weight(design, part.name, *why)


def _refuse_weight(design: Design, name: str, why: str, advice: str) -> None:
    """The error at auto weight ``name``'s position: its penalty acts on nothing."""
    from ..language import codes
    from ..language.errors import Collector, DataSpecError

    out = Collector(design.model.source, DataSpecError)
    out.error(f"auto weight '{name}' acts on no parameter row: {why}; {advice}",
              design.model.autos()[name].span, code=codes.AUTO_ACTS_ON_NOTHING)
    out.raise_if_any()


def _parts(design: Design, values: dict[str, float], chosen: list[str]) -> list[_Part]:
    from ..solvers.penalty import InteractionPart, LaplacianPart, RidgePart

    k, n, m = design.theta_shape
    graphs = design.strata.graphs()
    out: list[_Part] = []
    for i, (name, rows) in _laplacian_rows(design):
        free = name in chosen
        if not rows.any():
            if free:
                _refuse_weight(design, name, "every row is constant along its factor",
                               "fix it, or let a term vary over the factor")
            continue
        if not (free or graphs[i].n_edges):
            continue  # a fixed weight on a graph without edges: no penalty
        if free or values[name] > 0:
            mask = None if rows.all() else rows
            out.append(_Part(name, LaplacianPart(i, mask), free, 1.0 if free else values[name]))
    for interaction in design.model.interactions:
        name = interaction.hyper_name
        free = name in chosen
        if free or values[name] > 0:
            joined = tuple(design.model.factor_of(c) for c in interaction.columns)
            out.append(_Part(name, InteractionPart(joined), free, 1.0 if free else values[name]))
    for term in design.model.regularizers:
        name = term.hyper_name
        unit = REGULARIZERS[term.kind.name].quadratic_weight(1.0, term.kind.p)
        free = name in chosen
        if not unit or not (free or values[name] > 0):
            continue  # `zero`, or a fixed weight of 0: no penalty
        pattern = np.zeros((k, n))
        pattern[term_index(design, term)] = unit
        out.append(_Part(name, RidgePart(np.repeat(pattern, m, axis=1)), free,
                         1.0 if free else values[name]))
    return out


def _curvature_problem(design: Design, weights: dict[str, float], stats: Any,
                       laplacian: Any = None) -> Any:
    """The fit as solvers.newton's smooth problem in the loss's likelihood units (for a
    distribution: in its parameter itself), at ``weights``; ``stats`` the records'
    RecordStatistics (built once: they keep the features' products)."""
    from ..data.row_structure import interactions
    from ..solvers.hessian import KroneckerSum
    from ..solvers.newton import LossTerm, SmoothProblem
    from .newton import ridge

    records = design.records
    terms = [LossTerm(design.loss.likelihood_unit(part.params), part.records)
             for part in design.loss_parts()]
    if laplacian is None:  # (rows with weights of their own pass the penalty's graph parts)
        laplacian = KroneckerSum(design.strata.graphs(), design.strata.gammas(weights),
                                 interactions(design.model, weights))
    return SmoothProblem(stats, records.observed_y, terms, ridge(design, weights), laplacian,
                         records.offset, records.weight)


def _polished(problem: Any, theta: np.ndarray) -> np.ndarray:
    """θ refined by Newton's method on the likelihood units, from the backend's fit, to
    the precision of the arithmetic: log|H| moves with θ̂ to first order, so a fit good
    enough for predictions (a relative decrement of 1e-10, or ADMM's residuals) would
    blur the criterion's small differences between nearby weights. The backend's θ when
    Newton ends in trouble (a parameter held at its domain's edge)."""
    from ..solvers.newton import newton

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        result = newton(problem, theta, tol=1e-24, max_iter=30)
    if result.status in ("optimal", "max_iter") and np.all(np.isfinite(result.theta)):
        return np.asarray(result.theta)
    return theta


class _Inner:
    """The callback: the model fitted at weights w, as the engine's InnerFit."""

    def __init__(self, choice: Any, design: Design, parts: list[_Part],
                 values: dict[str, float], penalty: Any, strata: Any = None):
        self.choice, self.design, self.parts, self.values = choice, design, parts, values
        self.penalty = penalty
        self.strata = strata  # the loss over θ's free coordinates, or None
        self.own_rows = any(getattr(p.part, "rows", None) is not None for p in parts)
        self.warm: Any = None
        self.saturated = saturated_loss(design)  # (GCV's deviance is measured from it)
        from ..solvers.hessian import RecordStatistics

        k, _n, m = design.theta_shape
        self.stats = (RecordStatistics(design.records.x, design.records.z, k, m)
                      if strata is None else None)
        self.fits = 0

    def weights(self, w: np.ndarray) -> dict[str, float]:
        given = {**self.values, **{p.name: float(v) for p, v in zip(self.parts, w, strict=True)}}
        return {name: given[name] for name in self.design.model.hypers()}  # the model's order

    def __call__(self, w: np.ndarray, warm_theta: np.ndarray | None) -> Any:
        from ..solvers.selection import InnerFit

        weights = self.weights(w)
        fit = self.choice.fit(weights, self.warm if warm_theta is not None else None)
        self.fits += 1
        self.warm = fit.warm
        if fit.theta is None:  # (written by a cluster's workers under `output`)
            raise StratlangError("auto weights are chosen from θ in memory; this fit wrote θ "
                                 "under its output folder: fit without `output`")
        likelihood = self.design.loss.likelihood
        assert likelihood is not None  # (_refusal refused the others)
        if self.strata is not None:
            return polished_fit(self.strata, self.penalty, w, np.asarray(fit.theta, float),
                                likelihood.scale, len(self.design.records))
        laplacian = None
        if self.own_rows:
            from ..solvers.penalty import PenaltyLaplacian

            laplacian = PenaltyLaplacian(self.penalty, w)
        problem = _curvature_problem(self.design, weights, self.stats, laplacian)
        k = self.design.theta_shape[0]
        theta = np.asarray(fit.theta, dtype=float)
        if self.penalty.reparametrization is not None:
            # rows held constant along factors: Newton in their free coordinates
            from ..solvers.selection import constrained_newton

            polished = constrained_newton(problem, self.penalty, w, theta.reshape(k, -1))
            if polished is not None:
                theta = polished
        else:
            theta = _polished(problem, theta)
        inner = InnerFit.from_problem(problem, theta.reshape(k, -1),
                                      dispersion=likelihood.dispersion)
        return dataclasses.replace(inner, deviance=deviance(self.design, inner.loss,
                                                            self.saturated))


@dataclass(frozen=True)
class Chosen:
    """Every weight's value (the chosen ones and the fixed), the report, and what
    warm-starts the fit at those weights."""

    weights: dict[str, float]
    report: dict[str, Any]
    warm: Any = None
    spread: Any = None  # backends.weight_spread.WeightSpread: the weights' uncertainty


def choose_weights(choice: Any, values: dict[str, float], method: str) -> Chosen:
    """Chooses the auto weights that ``values`` leaves unset, by ``method``, fitting with
    ``choice`` (a :class:`stratlang.backends.Choice`) at every trial."""
    from ..solvers.selection import select_weights

    design = choice.design
    if not isinstance(design, Design):  # (records left on a cluster's workers)
        raise StratlangError(f"auto weights are chosen with the records in memory; backend "
                             f"'{choice.backend.name}' leaves them on its workers: choose them "
                             "with another backend, then fix them (weights={…})",
                             cli=f"auto weights are chosen with the records in memory; "
                                 f"--backend {choice.backend.name} leaves them on its workers: "
                                 "choose them with another backend, then fix them (--weight)")
    model = design.model
    chosen = unchosen(model, values)
    strata = strata_likelihood(design)
    if problem := _refusal(design, method, strata is not None):
        raise StratlangError(f"auto weights of model '{model.name}' cannot be chosen: "
                             f"{problem}; fix them (weights={{…}}) or write sweeps and use "
                             "tune", cli=f"auto weights of model '{model.name}' cannot be "
                             f"chosen: {problem}; fix them (--weight NAME=VALUE) or write "
                             "sweeps and use `stratlang tune`")
    built = prior(design, values, chosen)
    parts, penalty = built.parts, built.penalty
    if strata is not None:  # over θ's free coordinates
        penalty = free_penalty(penalty, strata.basis)
    inner = _Inner(choice, design, parts, values, penalty, strata)
    start = time.perf_counter()
    failed = f"choosing the auto weights of model '{model.name}' by {method.upper()} failed"
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            selection = select_weights(inner, penalty, criterion=method,
                                       start=[p.value for p in parts],
                                       free=[p.free for p in parts])
    except (ValueError, np.linalg.LinAlgError) as error:
        raise NumericalError(f"{failed}: {error}") from None
    weights = inner.weights(selection.weights)
    report = _report(selection, parts, method, inner.fits)
    report["seconds"] = time.perf_counter() - start
    spread = spread_of(selection, penalty)
    if strata is not None:
        spread = stored_spread(spread, strata.basis)
    return Chosen(weights, report, inner.warm, spread)


def _report(selection: Any, parts: list[_Part], method: str, fits: int) -> dict[str, Any]:
    """What the fit reports: the method, the criterion, the iterations and, per chosen
    weight, its value, its standard error on the log scale and whether it ran to 0 or ∞."""
    chosen = {}
    for i, part in enumerate(parts):
        if not part.free:
            continue
        # (the engine's flag: at the search's bound, or drifting along a flat criterion)
        se, value, limit = float(selection.log_se[i]), float(selection.weights[i]), \
            selection.unbounded[i]
        chosen[part.name] = {"value": value, "log_se": se if math.isfinite(se) else None,
                             "limit": limit}
    report: dict[str, Any] = {"method": method, "criterion": float(selection.value),
                              "iterations": int(selection.iterations), "inner_fits": fits,
                              "converged": bool(selection.converged),
                              "estimates": str(selection.method), "weights": chosen}
    scale = float(selection.scale)
    if selection.fit.dispersion:
        report["scale"] = scale
    return report
