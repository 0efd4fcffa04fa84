"""The deviance GCV scores, from a fit's summed loss.

GCV's V = N · D / (N − edf)² is not invariant to a constant added to D, so D must be the
deviance, zero at the saturated model, and not the loss itself: a Poisson or Bernoulli
loss is the deviance's half plus the saturated model's loss, which may be negative (V
would then reward edf → N, every weight → 0). ``squared``'s loss is its deviance.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def saturated_loss(design: Any) -> float | None:
    """The summed loss of the saturated model, each record at its own best predictor
    (weighted as the loss is); None when it is not finite (no deviance)."""
    loss = design.loss
    total = 0.0
    for part in design.loss_parts():
        records = part.of(design.records)
        weight = np.ones(len(records)) if records.weight is None else records.weight
        with np.errstate(divide="ignore", invalid="ignore"):
            total += float(weight @ loss.saturated(records.observed_y, part.params))
    return total if np.isfinite(total) else None


def deviance(design: Any, loss_value: float, saturated: float | None) -> float | None:
    """D at a fit whose summed loss is ``loss_value``: 2 (ℓ − ℓ_sat) / τ (the loss is τ
    times the NLL); None, the engine's default (the loss itself), for a loss with a
    dispersion (squared: Σ w r² is its deviance; and a fit left without one keeps the
    engine's one-factorization path for a constant curvature) or without a deviance."""
    likelihood = design.loss.likelihood
    if saturated is None or likelihood is None or likelihood.dispersion:
        return None
    return 2.0 * (loss_value - saturated) / likelihood.scale
