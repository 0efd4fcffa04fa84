"""Non-convex models: what makes a model non-convex, and its convex relaxation.

A non-convex model has no CVXPY form. ADMM fits it as a local method (stratified paper,
§6), started from the fit of its convex relaxation: a non-convex loss replaced by the
convex loss its entry names, each non-convex regularizer dropped (its convex envelope is
0: the penalties are bounded, the constraint sets relaxed to everything). When only
regularizers were relaxed, the relaxation's optimum is a lower bound on the model's.
"""

from __future__ import annotations

from dataclasses import replace

from ..data.design import Design
from ..kinds.losses import LOSSES
from ..kinds.regularizers import REGULARIZERS
from ..language import ir


def nonconvex_parts(model: ir.CheckedModel) -> tuple[str, ...]:
    """What is not convex in a model, in words (empty for a convex model)."""
    parts = []
    if not LOSSES[model.response.loss.name].convex:
        parts.append(f"loss '{model.response.loss.name}'")
    parts += [f"regularizer '{t.kind.name}'" for t in model.regularizers
              if not REGULARIZERS[t.kind.name].convex]
    return tuple(dict.fromkeys(parts))


def relaxation_bounds(model: ir.CheckedModel) -> bool:
    """Is the relaxation's optimum a lower bound on the model's (only regularizers were
    relaxed: each dropped term is ≥ 0, each dropped constraint only widens the set)?"""
    return LOSSES[model.response.loss.name].convex


def relaxation_words(model: ir.CheckedModel) -> str:
    """How the model is relaxed, e.g. "loss tukey(c=4.685) → huber(M=4.685); nonzeros
    dropped" (a loss override's parameters relaxed in turn)."""
    said = []
    loss = LOSSES[model.response.loss.name]
    if not loss.convex:
        for ref in (model.response.loss, *(o.loss for o in model.response.overrides)):
            name, params = loss.relaxation(ref.p)
            said.append(f"loss {_call(ref.name, ref.p)} → {_call(name, params)}")
    dropped = [t.kind.name for t in model.regularizers if not REGULARIZERS[t.kind.name].convex]
    if dropped:
        said.append(", ".join(dict.fromkeys(dropped)) + " dropped")
    return "; ".join(said)


def _call(name: str, params: dict) -> str:
    return f"{name}({', '.join(f'{k}={v:g}' for k, v in params.items())})"


def relax(design: Design, weights: dict[str, float]) -> tuple[Design, dict[str, float]]:
    """The design of the model's convex relaxation, and the weights by its terms' names
    (dropping terms renumbers those after them)."""
    model = design.model
    response, loss = model.response, design.loss
    if not loss.convex:  # the main loss and every override's parameters
        def relaxed_ref(ref: ir.KindRef) -> ir.KindRef:
            name, params = loss.relaxation(ref.p)
            return replace(ref, name=name, params=tuple(params.items()))

        response = replace(response, loss=relaxed_ref(response.loss),
                           overrides=tuple(replace(o, loss=relaxed_ref(o.loss))
                                           for o in response.overrides))
        loss = LOSSES[response.loss.name]
    kept = tuple(t for t in model.regularizers if REGULARIZERS[t.kind.name].convex)
    relaxed = replace(model, response=response, regularizers=kept)
    old_names = {t.hyper_name for t in model.regularizers}
    values = {name: value for name, value in weights.items() if name not in old_names}
    values.update({new.hyper_name: weights[old.hyper_name]
                   for old, new in zip(kept, relaxed.regularizers, strict=True)
                   if old.weight is not None})
    return replace(design, model=relaxed, loss=loss), values
