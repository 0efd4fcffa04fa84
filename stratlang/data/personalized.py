"""Data bound to a checked personalized model: features, encoded response, and each
covariate distance's encoded columns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..kinds.distances import DISTANCES, MetricError
from ..language import codes, ir
from ..language.errors import StratlangError
from .design import bind_features, bind_response, bind_weights, drop_missing, report_dropped
from .features import FeatureState
from .frames import Binder


@dataclass
class PersonalizedDesign:
    model: ir.CheckedModel
    x: np.ndarray  # (N, p)
    y: np.ndarray | None  # (N, 1) encoded (±1 for logistic); None when predicting
    covariates: list  # one encoded array per distance
    classes: tuple | None
    index: pd.Index  # the frame's row labels
    covariate_frame: pd.DataFrame  # the distances' columns as given (for new samples' codes)
    rows: tuple[str, ...] = ()  # the name of each feature column (θ's entries)
    row_terms: tuple[str, ...] = ()  # the feature term each comes from
    offset: np.ndarray | None = None
    weight: np.ndarray | None = None
    features: FeatureState = field(default_factory=FeatureState)
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.x)

    @property
    def n_records(self) -> int:
        return len(self.x)

    def covariate_distances(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """d_l(U_i, U_j) for each pair: shape (pairs, L)."""
        out = np.empty((len(i), len(self.covariates)))
        assert self.model.personalize is not None  # (the design of a personalized model)
        for col, (dist, enc) in enumerate(zip(self.model.personalize.distances, self.covariates,
                                              strict=True)):
            out[:, col] = DISTANCES[dist.metric.name].pairs(enc, i, j)
        return out


def bind_covariates(binder: Binder, encode: pd.DataFrame | None = None) -> list:
    """Checks every distance's columns in the binder's frame and encodes them (from
    ``encode`` when given: e.g. training and new samples together, so that categories
    share codes); problems are recorded in the binder, positioned in the spec."""
    model = binder.model
    source = binder.frame if encode is None else encode
    encoded = []
    assert model.personalize is not None  # (only personalized models are bound here)
    for dist in model.personalize.distances:
        metric = DISTANCES[dist.metric.name]
        spans = dist.column_spans or (dist.span,) * len(dist.columns)
        cols = [binder.numeric(c, s) if metric.numeric else binder.column(c, s)
                for c, s in zip(dist.columns, spans, strict=True)]
        if any(c is None for c in cols):
            continue
        try:
            encoded.append(metric.encode(source[list(dist.columns)], dist.metric.p,
                                         model.directory))
        except MetricError as err:
            binder.out.error(str(err), dist.metric.span, code=codes.GRAPH_FAILED)
    return encoded


def bind_personalized(model: ir.CheckedModel, frame: pd.DataFrame,
                      features: FeatureState | None = None, classes: tuple | None = None,
                      with_response: bool = True) -> PersonalizedDesign:
    """Binds a frame (``features`` and ``classes``: learned before, else learned here;
    ``with_response=False``: to predict, no response or weights read)."""
    if model.personalize is None:
        raise StratlangError(f"model '{model.name}' is not personalized")
    frame, dropped = drop_missing(model, frame, predicting=not with_response)
    binder = Binder(model, frame)
    if with_response and len(frame) == 0:
        binder.out.error("the data have no records" + (
            " left: every one misses a value (missing drop)" if dropped else ""),
            model.missing_span if dropped else None, code=codes.NO_RECORDS)
        binder.out.raise_if_any()
    bound = bind_features(binder, features)
    encoded = bind_response(binder, classes) if with_response else None
    weight = bind_weights(binder) if with_response else None
    covariates = bind_covariates(binder)
    binder.out.raise_if_any()
    # each binding step that gives None recorded a problem, raised just above
    assert bound is not None and (encoded is not None or not with_response)
    report_dropped(dropped, len(frame))
    columns = [c for d in model.personalize.distances for c in d.columns]
    return PersonalizedDesign(model, bound.x, encoded.values if encoded else None, covariates,
                              encoded.classes if encoded else classes, frame.index,
                              frame[columns].reset_index(drop=True), bound.rows,
                              bound.row_terms, bound.offset, weight, bound.state, dropped)
