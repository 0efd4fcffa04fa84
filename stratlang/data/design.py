"""Data bound to a checked stratified model: the design (features, encoded response,
strata) that every stratified backend fits."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..kinds import responses
from ..kinds.losses import LOSSES, Loss, linear_predictor
from ..language import ir
from .frames import Binder, rows_phrase, values_phrase
from .strata import Strata, bind_strata

INTERCEPT = "intercept"


def bind_features(binder: Binder) -> np.ndarray | None:
    model = binder.model
    n = len(binder.frame)
    if not model.features:
        return np.ones((n, 1))
    spans = model.feature_spans or (None,) * len(model.features)
    columns = []
    for name, span in zip(model.features, spans, strict=True):
        if name == INTERCEPT and name not in binder.frame.columns:
            columns.append(np.ones(n))
            continue
        values = binder.numeric(name, span, also=(INTERCEPT,))
        columns.append(values)
    if any(c is None for c in columns):
        return None
    return np.column_stack(columns) if columns else np.ones((n, 1))


def bind_response(binder: Binder, classes: tuple | None = None) -> responses.Encoded | None:
    model = binder.model
    loss = LOSSES[model.response.loss.name]
    spans = model.response.column_spans or (model.response.span,) * len(model.response.columns)
    series = [binder.column(c, s) for c, s in zip(model.response.columns, spans, strict=True)]
    if any(s is None for s in series):
        return None
    raw = np.column_stack([s.to_numpy(dtype=object) for s in series])
    problems: list[responses.Problem] = []
    encoded = responses.DOMAINS[loss.domain](raw, classes, problems)
    for problem in problems:
        cols = "', '".join(model.response.columns)
        where = ""
        if len(problem.rows) == len(binder.frame) and not problem.message.startswith("must have"):
            where = f" (all {len(problem.rows)} rows)"
        elif 0 < len(problem.rows) < len(binder.frame):
            where = (f"; {values_phrase(series[0], problem.rows)} in "
                     f"{rows_phrase(binder.frame, problem.rows)}")
        binder.out.error(f"response '{cols}' {problem.message} for loss '{loss.name}'{where}",
                         spans[0])
    return None if problems else encoded


# ---- the design ----------------------------------------------------------------------------
@dataclass
class Design:
    """Arrays a backend needs; θ has shape (K, rows, outputs)."""

    model: ir.Model
    loss: Loss
    strata: Strata
    x: np.ndarray  # (N, n)
    y: np.ndarray | None  # (N, m) encoded, None when predicting
    z: np.ndarray  # (N,) stratum of each record
    rows: tuple[str, ...]
    outputs: tuple[str, ...]
    classes: tuple | None
    index: pd.Index = field(repr=False)

    @property
    def n_records(self) -> int:
        return len(self.z)

    @property
    def theta_shape(self) -> tuple[int, int, int]:
        return (self.strata.k, len(self.rows), len(self.outputs))

    def record_matrix(self):
        """N × (K·n) sparse: record i's features placed in its stratum's block."""
        import scipy.sparse as sp

        n_rec, n = self.x.shape
        cols = (self.z[:, None] * n + np.arange(n)[None, :]).reshape(-1)
        rows = np.repeat(np.arange(n_rec), n)
        return sp.csr_matrix((self.x.reshape(-1), (rows, cols)), shape=(n_rec, self.strata.k * n))

    def predictor(self, theta: np.ndarray) -> np.ndarray:
        """xᵢᵀθ_{zᵢ} for every record: (N, outputs)."""
        return linear_predictor(self.x, theta[self.z])

    @property
    def loss_params(self) -> dict:
        return self.model.response.loss.p


def bind(model: ir.Model, frame: pd.DataFrame, *, strata: Strata | None = None,
         classes: tuple | None = None, with_response: bool = True) -> Design:
    """Binds a frame; raises SpecError listing every data problem (positioned in the spec)."""
    binder = Binder(model, frame)
    loss = LOSSES[model.response.loss.name]
    bound_strata, z = bind_strata(binder, strata)
    x = bind_features(binder)
    encoded = bind_response(binder, classes) if with_response else None
    binder.out.raise_if_any()
    classes = encoded.classes if encoded is not None else classes
    rows = loss.row_names(model.features, model.response.columns)
    outputs = loss.output_names(model.response.columns, classes)
    return Design(model, loss, bound_strata, x, encoded.values if encoded else None, z, rows,
                  outputs, classes, frame.index)
