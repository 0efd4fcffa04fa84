"""The fitting entry point: a checked model (its IR) and data in, a fitted model out. The
API's ``Model.fit`` and ``Model.sweep``, ``tune`` and ``verify`` all fit through here, so
none of them re-enters another through a private method."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import backends
from .backends.base import StratifiedFit
from .backends.islands import settle_islands, strata_phrase
from .backends.selection import SELECTION_KEY, choose_weights, method_for, unchosen
from .data.design import Design
from .fitted import FittedModel, fitted_model
from .language import codes, ir
from .language.errors import (
    DataWarning,
    Diagnostic,
    NumericalWarning,
    OptionError,
    SpecError,
    warn,
)


def fit(model: ir.CheckedModel, data: Any = None, *, backend: str | None = None,
        solver: str | None = None, weights: dict[str, float] | None = None,
        verbose: bool | None = None, options: dict[str, Any] | None = None,
        graphs: dict[str, Any] | None = None, select: str | None = None) -> FittedModel:
    """Chooses the backend (see :func:`stratlang.backends.choose`), binds ``data`` and
    fits at ``weights`` (the spec's values where not given; the weights written ``auto``
    that ``weights`` leaves unset are chosen by ``select``, see :func:`fit_choice`)."""
    if select is not None:
        method_for(model, select)  # (refused before any binding when unknown)
        if not model.autos():
            raise OptionError(f"select={select!r} chooses the weights written auto, and "
                              f"model '{model.name}' has none",
                              cli=f"--select {select} chooses the weights written auto, "
                                  f"and model '{model.name}' has none")
    values = model.weight_values(weights)
    choice = backends.choose(model, data, backend=backend, solver=solver, verbose=verbose,
                             options=options, graphs=graphs)
    fitted = fit_choice(model, choice, values, select=select)
    if choice.note is not None:
        fitted.info["backend_note"] = choice.note
    return fitted


def fit_choice(model: ir.CheckedModel, choice: backends.Choice, values: dict[str, float],
               warm: Any = None, select: str | None = None) -> FittedModel:
    """Fits a chosen backend's design at the weights ``values`` (``warm``: what the
    previous fit along a path left to start from). Weights written ``auto`` that
    ``values`` leaves unset are chosen first, by ``select`` (None: the spec's method,
    else REML): stratlang.backends.selection."""
    chosen = None
    if unchosen(model, values):
        chosen = choose_weights(choice, values, method_for(model, select))
        values, warm = chosen.weights, chosen.warm
    try:
        result = choice.fit(values, warm)
    except backends.OptionValueError as error:
        if error.option not in choice.from_spec:
            raise
        # the value came from the spec's solver statement: point at it
        assert model.solver is not None
        raise SpecError([Diagnostic(str(error), model.solver.span, model.source,
                                    code=codes.INVALID_VALUE)]) from None
    result.info.setdefault("options", dict(choice.options))  # what the summary reports
    if chosen is not None:
        result.info[SELECTION_KEY] = chosen.report
        if isinstance(result, StratifiedFit):
            result.weight_spread = chosen.spread
            _warn_at_bound(result, chosen.report)
    if (isinstance(result, StratifiedFit) and result.design is not None
            and result.theta is not None and model.basis is None):
        result.theta, note = settle_islands(result.design, result.theta, values)
        if note is not None:
            result.info["islands"] = note
            warn(note, DataWarning)
    return fitted_model(model, result, values)


def _warn_at_bound(result: StratifiedFit, report: dict[str, Any]) -> None:
    """Auto weights chosen where some stratum's parameter sits on its domain's edge (a
    distribution's eps, e.g. a rate of strata whose records are all 0): the Laplace
    approximation behind the choice assumes an interior optimum, so the report says which
    strata and a NumericalWarning says what it means."""
    design, theta = result.design, result.theta
    if not isinstance(design, Design) or theta is None:  # (a cluster keeps its records)
        return
    edge = np.zeros(len(theta), dtype=bool)
    for part in design.loss_parts():
        at = design.loss.at_bound(theta, part.params)
        if at is None:
            continue
        if part.strata is None:
            edge |= at
        else:  # (the part's strata, an index array: only their flags count)
            edge[part.strata] |= at[part.strata]
    if not edge.any():
        return
    members = np.flatnonzero(edge)
    report["at_bound"] = [str(v) for v in design.strata.index()[members]]
    warn(f"{strata_phrase(design, members)} their parameter at the edge of its domain "
         "(eps): the auto weights were chosen by a Laplace approximation that assumes an "
         "interior optimum, so they and the standard errors are unreliable there; fix the "
         "weights, or choose them by cross-validation (tune)", NumericalWarning)
