"""Weights written ``auto``: what the spec may say, and the checks on it.

A weight written ``auto`` (on ``stratify`` or on a quadratic regularizer term) is chosen
from the data when the model is fitted, as a precision of the Gaussian (Markov random
field) prior that the quadratic penalties are under a likelihood reading of the loss;
``solver BACKEND select reml|ml|gcv`` says how (REML by default). The checker asks the
entries, never their names: the regularizer entry whether its weight is a quadratic
penalty's (``quadratic_weight``), the loss entry whether it reads as a negative
log-likelihood (``likelihood``).
"""

from __future__ import annotations

from typing import Any

from . import ast, codes, ir
from .errors import Collector, Span, did_you_mean
from .vocabulary import LossEntry, Registry

AUTO = "auto"  # the word for a weight chosen from the data
SELECT_OPTION = "select"  # the solver statement's option naming the method
SELECTION_METHODS = ("reml", "ml", "gcv")
DEFAULT_METHOD = "reml"


def _tune(example: str) -> str:
    """The alternative to auto: a sweep (``example`` shows one) chosen by ``tune``."""
    return f"write a sweep, e.g. `{example}`, and choose it by cross-validation with `stratlang tune`"


def written_auto(value: ast.Value) -> bool:
    """Is this weight the word ``auto`` (an option's value, or a regularizer term's weight,
    which the grammar reads as a call without arguments)?"""
    if isinstance(value, ast.Name):
        return value.value == AUTO
    return (isinstance(value, ast.Call) and value.name.value == AUTO and not value.args
            and value.span.end_column - value.span.column == len(AUTO)
            and value.span.line == value.span.end_line)


def quadratic(entry: Any, p: dict[str, Any]) -> bool:
    """Does the regularizer entry's weight scale a quadratic penalty (c/2)‖θ‖², c > 0?"""
    if entry.is_constraint:
        return False
    c = entry.quadratic_weight(1.0, p)
    return c is not None and c > 0


def select_method(option: ast.Option, out: Collector) -> str | None:
    """The method a ``select`` option names, or None after reporting it."""
    value = option.value
    name = value.value if isinstance(value, ast.Name | ast.String) else None
    if name in SELECTION_METHODS:
        return name
    message = (f"select: unknown method '{name}'" + did_you_mean(name, SELECTION_METHODS)
               if name is not None else "select takes a method: "
               + ", ".join(f"'{m}'" for m in SELECTION_METHODS))
    out.error(message, value.span, code=codes.UNKNOWN_SELECTION)
    return None


def check_autos(out: Collector, loss: LossEntry | None, losses: Registry[Any],
                regularizers: Registry[Any], regs: tuple[ir.RegTerm, ...],
                strata: tuple[ir.Stratification, ...], personalize: ir.Personalize | None,
                select: ast.Option | None, features: tuple[ir.Term, ...] = (),
                interactions: tuple[ir.Interaction, ...] = ()) -> None:
    """Reports every misuse of ``auto`` and ``select``: auto on a term that is not a
    quadratic penalty, with a loss that has no likelihood reading, or in a personalized
    model; select in a model without auto weights."""
    autos: list[Span | None] = []
    if personalize is not None:
        for key, value in personalize.options:
            if isinstance(value, ir.Hyper) and value.is_auto:
                out.error(f"{key} auto: auto weights are chosen for stratified models (the "
                          f"penalties are a Gaussian prior over the strata); a personalized "
                          f"model's {key} takes a number, or a sweep that `stratlang tune` "
                          "chooses", value.span, code=codes.AUTO_PERSONALIZED)
        for term in regs:
            if term.weight is not None and term.weight.is_auto:
                out.error(f"auto weights are chosen for stratified models; in a personalized "
                          f"model, {_tune(f'{{0.01, 0.1, 1}} * {term.kind.name}')}",
                          term.weight.span, code=codes.AUTO_PERSONALIZED)
        return
    for term in regs:
        if term.weight is None or not term.weight.is_auto:
            continue
        entry = regularizers[term.kind.name]
        if not quadratic(entry, term.kind.p):
            able = [n for n in regularizers
                    if quadratic(regularizers[n], {p.name: p.default
                                                   for p in regularizers[n].params})]
            out.error(f"auto chooses the weight of a quadratic penalty ({', '.join(able)}); "
                      f"'{entry.name}' is not one: {_tune(f'{{0.01, 0.1, 1}} * {entry.name}')}",
                      term.weight.span,
                      code=codes.AUTO_NOT_QUADRATIC)
            continue
        autos.append(term.weight.span)
    autos += [s.weight.span for s in strata if s.weight.is_auto]
    autos += [i.weight.span for i in interactions if i.weight.is_auto]
    for term in regs if autos else ():
        entry = regularizers[term.kind.name]
        if entry.is_constraint or entry.quadratic_weight(1.0, term.kind.p) is None:
            out.error(f"auto weights read the penalties as a Gaussian prior, so every "
                      f"regularizer must be quadratic, and '{entry.name}' is not: drop it, or "
                      f"write the auto weights as sweeps and choose them with `stratlang tune`",
                      term.kind.span, code=codes.AUTO_NOT_QUADRATIC)
    if autos and loss is not None and loss.likelihood is None:
        readable = [n for n in losses if losses[n].likelihood is not None]
        example = ("weight {1, 10, 100}" if any(s.weight.is_auto for s in strata)
                   else "{0.01, 0.1, 1} * sum_squares")
        out.error(f"auto weights are chosen by the likelihood of the data, and loss "
                  f"'{loss.name}' has no likelihood reading (the losses with one: "
                  f"{', '.join(readable)}): {_tune(example)}", autos[0],
                  code=codes.AUTO_NO_LIKELIHOOD)
    structure_autos = [v.weight.span for t in features for v in t.vary or ()
                       if v.weight is not None and v.weight.is_auto]
    has_auto = any(t.weight is not None and t.weight.is_auto for t in regs) or any(
        s.weight.is_auto for s in strata) or any(i.weight.is_auto for i in interactions) or bool(
        structure_autos)
    value = select.value if select is not None else None
    if (has_auto and isinstance(value, ast.Name | ast.String) and value.value == "gcv"
            and loss is not None and loss.likelihood is not None
            and (why := loss.likelihood.gcv_refusal(loss.name))):
        out.error(f"select gcv: {why}: select reml or ml", value.span,
                  code=codes.GCV_WITHOUT_DEVIANCE)
    if select is not None and not has_auto:
        out.error("select chooses the weights written auto, and this model has none: write "
                  "e.g. `stratify COLUMN ~ path weight auto` or `regularize auto * sum_squares`",
                  select.name.span, code=codes.SELECT_WITHOUT_AUTO)

