"""What ``show`` says about the graph's structure: which feature varies over which factor,
each interaction term and its null space, and, with data, each factor's connected
components (islands) and its data-free nodes."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..language import ir
from ..language.printer import hyper
from ..solvers.graphs import component_labels
from .features import term_text
from .strata import Factor

SHOWN = 8  # node labels listed per island or data-free set


def _factor_name(model: ir.CheckedModel, column: str) -> str:
    columns = model.strata[model.factor_of(column)].columns
    return columns[0] if len(columns) == 1 else "(" + ", ".join(columns) + ")"


def variation_notes(model: ir.CheckedModel) -> list[str]:
    """One line per feature term written with ``by`` or ``shared``."""
    out = []
    for term in model.features:
        if term.vary is None:
            continue
        text = term_text(term)
        if not term.vary:
            out.append(f"{text}: shared, one coefficient constant across every factor")
            continue
        over = [_factor_name(model, v.column) for v in term.vary]
        named = {model.factor_of(v.column) for v in term.vary}
        others = [_factor_name(model, s.columns[0]) for i, s in enumerate(model.strata)
                  if i not in named]
        own = [f"weight {hyper(v.weight)} on {_factor_name(model, v.column)} "
               f"({v.hyper_name})" for v in term.vary if v.weight is not None]
        out.append(f"{text}: varies over {', '.join(over)}"
                   + (f"; constant along {', '.join(others)}" if others else "")
                   + (f"; {'; '.join(own)}" if own else ""))
    return out


def interaction_notes(model: ir.CheckedModel) -> list[str]:
    """One line per interaction term: its penalty and its null space."""
    out = []
    for term in model.interactions:
        names = [_factor_name(model, c) for c in term.columns]
        product = " ⊗ ".join(f"L_{n}" for n in names)
        mains = " + ".join(f"f_{i + 1}(all but {n})" for i, n in enumerate(names))
        out.append(f"interact {' * '.join(names)} ({term.hyper_name}): penalty "
                   f"(w/2) θᵀ({product} ⊗ I)θ, eigenvalues the products of the factors'; null "
                   f"space: the sums {mains} of terms each constant along one of the joined "
                   "factors (on connected graphs; per component otherwise), e.g. main effects "
                   "— left to the stratify terms")
    return out


def interaction_null_dimensions(model: ir.CheckedModel, factors: tuple[Factor, ...]) -> list[int]:
    """The dimension of each interaction's null space over the joined factors' nodes:
    Π n_a − Π (n_a − c_a), c_a factor a's number of connected components."""
    dims = []
    for term in model.interactions:
        joined = [factors[model.factor_of(c)] for c in term.columns]
        nodes = int(np.prod([f.n for f in joined]))
        ranks = int(np.prod([f.n - (int(component_labels(f.graph).max(initial=-1)) + 1)
                             for f in joined]))
        dims.append(nodes - ranks)
    return dims


def factor_islands(factor: Factor, codes: np.ndarray | None, axis: int) -> dict[str, Any]:
    """A factor's connected components (islands) beyond the first, and its nodes that no
    record falls in (``codes``: each record's node per factor)."""
    labels = component_labels(factor.graph)
    index = _labels(factor)
    count = int(labels.max(initial=-1)) + 1
    islands = []
    if count > 1:
        for c in range(count):
            members = np.flatnonzero(labels == c)
            islands.append([index[i] for i in members[:SHOWN]]
                           + ([f"… {len(members) - SHOWN} more"] if len(members) > SHOWN else []))
    data_free: list[Any] = []
    if codes is not None and codes.ndim == 2 and axis < codes.shape[1]:
        seen = np.zeros(factor.n, dtype=bool)
        used = codes[:, axis]
        seen[used[used >= 0]] = True
        data_free = [index[i] for i in np.flatnonzero(~seen)]
    return {"components": count, "islands": islands if count > 1 else [],
            "data_free": [_plain(v) for v in data_free[:SHOWN]],
            "data_free_count": len(data_free)}


def _labels(factor: Factor) -> list[Any]:
    if len(factor.column_labels) == 1:
        return [_plain(v) for v in factor.column_labels[0]]
    shape = tuple(len(c) for c in factor.column_labels)
    return [tuple(_plain(factor.column_labels[d][i]) for d, i in
                  enumerate(np.unravel_index(k, shape))) for k in range(factor.n)]


def _plain(value: Any) -> Any:
    """A label as JSON takes it (numpy scalars as Python numbers)."""
    return value.item() if isinstance(value, np.generic) else value
