"""Islands: strata the data and the model leave undetermined.

A connected component of the product graph (factors of weight 0 join nothing) with no
record is decided by the regularizers alone. Where no term with a unique minimizer acts
on a parameter row there (e.g. the intercept, which ``sum_squares`` leaves out), every
value is optimal: a solver returns its starting point (0), which predicts exp(offset) or
a probability of ½ as if it were a model. Such rows are set to the record-weighted mean
of the row over the strata with records (the common choice), which leaves the objective
unchanged, and the user is told which strata got it.
"""

from __future__ import annotations

import numpy as np

from ..data.design import Design
from ..data.row_structure import weighted_groups
from ..data.strata import where_strata
from ..kinds.regularizers import REGULARIZERS
from ..solvers.graphs import RowGroup, product_components
from .objective import selected_rows, term_index

SHOWN = 6  # strata named in a warning


def _pinned(design: Design, weights: dict[str, float]) -> np.ndarray:
    """(K, rows): True where a term with a unique minimizer acts with a positive weight."""
    pinned = np.zeros(design.theta_shape[:2], dtype=bool)
    for term in design.model.regularizers:
        weight = 1.0 if term.weight is None else weights.get(term.hyper_name, 1.0)
        if not REGULARIZERS[term.kind.name].pins or weight <= 0:
            continue
        rows = selected_rows(design, term)
        strata = where_strata(design.strata, term.where)
        if strata is None:
            pinned[:, rows] = True
        else:
            pinned[np.ix_(strata, rows)] = True
    return pinned


def unpinned_islands(design: Design, weights: dict[str, float]
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """(strata, rows) of every component with no record, and the rows no term there pins;
    rows absent in some strata (a feature with ``where``) are left alone. Rows with a
    structure of their own (``by``, ``shared``, own weights) have their own components: a
    factor they are constant along joins all its nodes, a weight of 0 none."""
    strata = design.strata
    if not strata.factors:
        return []
    gammas = strata.gammas(weights)
    n = design.theta_shape[1]
    groups = (weighted_groups(design, weights) if design.grouped_rows
              else [RowGroup(np.arange(n), None, tuple(strata.graphs()))])
    counted = design.z if design.weight is None else design.z[design.weight > 0]
    pinned = _pinned(design, weights)
    islands = []
    for group in groups:
        if group.strata is not None:  # (present in some strata only: left alone)
            continue
        label = product_components(strata.graphs(), group.weights(gammas), group.constant)
        with_data = np.zeros(int(label.max()) + 1, dtype=bool)
        with_data[label[counted]] = True
        empty = np.flatnonzero(~with_data[label])
        if len(empty) == 0:
            continue
        order = np.argsort(label[empty], kind="stable")
        members_of = np.split(empty[order], np.flatnonzero(np.diff(label[empty][order])) + 1)
        for members in members_of:
            free = ~pinned[np.ix_(members, group.rows)].any(axis=0)
            if free.any():
                islands.append((members, group.rows[free]))
    return islands


def settle_islands(design: Design, theta: np.ndarray, weights: dict[str, float]
                   ) -> tuple[np.ndarray, str | None]:
    """θ with every unpinned island row set to the record-weighted mean of the row over
    the strata with records, and a sentence for the user (None: no island). Where a
    constraint would not hold at that mean, θ is left as the solver returned it, and the
    sentence says so."""
    islands = unpinned_islands(design, weights)
    if not islands:
        return theta, None
    counts = np.bincount(design.z, weights=design.weight, minlength=design.strata.k)
    mean = np.tensordot(counts / counts.sum(), theta, axes=(0, 0))  # (rows, outputs)
    settled = theta.copy()
    for members, rows in islands:
        # a shift by a constant, not an assignment: within a component the graph terms
        # (an interaction's too) see no constant, so the objective is unchanged even where
        # an interaction decided the island's shape and left only its level free
        block = settled[np.ix_(members, rows)]
        settled[np.ix_(members, rows)] = block + (mean[rows] - block.mean(axis=0))
    kept = all(REGULARIZERS[t.kind.name].feasible(settled[term_index(design, t)], t.kind.p)
               for t in design.model.regularizers)
    undecided = np.unique(np.concatenate([m for m, _ in islands]))
    names = sorted({design.rows[r] for _, free in islands for r in free})
    named = strata_phrase(design, undecided)
    if not kept:
        return theta, (f"{named} no records, no graph edge to a stratum with records and "
                       f"no regularizer that determines {', '.join(names)}: any value is optimal "
                       "there, and a constraint rules out the mean of the others, so θ is "
                       "the solver's; declare their graph edges or drop them")
    if design.model.interactions:  # (its null space holds every constant: a level)
        return settled, (f"{named} no records, no graph edge to a stratum with records and "
                         f"no regularizer that determines {', '.join(names)}: the `interact` "
                         "term decides their shape, but any level is optimal there; they get "
                         "the record-weighted mean level of the other strata (the common "
                         "model's choice); declare their graph edges, or a regularizer on "
                         "those rows, to decide it otherwise")
    return settled, (f"{named} no records, no graph edge to a stratum with records and "
                     f"no regularizer that determines {', '.join(names)}: any value is optimal "
                     f"there; {'it gets' if len(undecided) == 1 else 'they get'} the record-weighted mean of the other strata (the "
                     "common model's choice); declare their graph edges, or a regularizer "
                     "on those rows, to decide them otherwise")


def strata_phrase(design: Design, members: np.ndarray) -> str:
    labels = design.strata.index()[members[:SHOWN]]
    shown = ", ".join(str(v) for v in labels)
    more = f" and {len(members) - SHOWN:,} more" if len(members) > SHOWN else ""
    noun = "stratum" if len(members) == 1 else "strata"
    verb = "has" if len(members) == 1 else "have"
    return f"{len(members):,} {noun} ({shown}{more}) {verb}"

