"""The fitting entry point: a checked model (its IR) and data in, a fitted model out. The
API's ``Model.fit`` and ``Model.sweep``, ``tune`` and ``verify`` all fit through here, so
none of them re-enters another through a private method."""

from __future__ import annotations

from typing import Any

from . import backends
from .backends.base import StratifiedFit
from .backends.islands import settle_islands
from .fitted import FittedModel, fitted_model
from .language import codes, ir
from .language.errors import DataWarning, Diagnostic, SpecError, warn


def fit(model: ir.CheckedModel, data: Any = None, *, backend: str | None = None,
        solver: str | None = None, weights: dict[str, float] | None = None,
        verbose: bool | None = None, options: dict[str, Any] | None = None,
        graphs: dict[str, Any] | None = None) -> FittedModel:
    """Chooses the backend (see :func:`stratlang.backends.choose`), binds ``data`` and
    fits at ``weights`` (the spec's values where not given)."""
    values = model.weight_values(weights)
    choice = backends.choose(model, data, backend=backend, solver=solver, verbose=verbose,
                             options=options, graphs=graphs)
    fitted = fit_choice(model, choice, values)
    if choice.note is not None:
        fitted.info["backend_note"] = choice.note
    return fitted


def fit_choice(model: ir.CheckedModel, choice: backends.Choice, values: dict[str, float],
               warm: Any = None) -> FittedModel:
    """Fits a chosen backend's design at the weights ``values`` (``warm``: what the
    previous fit along a path left to start from)."""
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
    if (isinstance(result, StratifiedFit) and result.design is not None
            and result.theta is not None and model.basis is None):
        result.theta, note = settle_islands(result.design, result.theta, values)
        if note is not None:
            result.info["islands"] = note
            warn(note, DataWarning)
    return fitted_model(model, result, values)
