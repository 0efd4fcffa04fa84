"""A scikit-learn estimator wrapping a spec: clonable, usable in cross_val_score and
GridSearchCV (search over ``weights``, a dict of hyper-parameter values)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from .kinds.metrics import GREATER_IS_BETTER


class StratlangEstimator(BaseEstimator):
    """``X`` is a DataFrame holding the features and stratification columns; ``y`` (when
    given) is the response. ``score`` follows scikit-learn (greater is better): the loss's
    primary metric, negated when smaller is better (e.g. −RMSE, −ANLL)."""

    def __init__(self, spec: str = "", weights: dict[str, float] | None = None,
                 solver: str | None = None, graphs: dict[str, Any] | None = None):
        self.spec = spec
        self.weights = weights
        self.solver = solver
        self.graphs = graphs  # for factors the spec declares `given`

    def _model(self):
        from .model import load

        return load(self.spec, graphs=self.graphs)

    def _frame(self, x: Any, y: Any = None) -> pd.DataFrame:
        frame = x.copy() if isinstance(x, pd.DataFrame) else pd.DataFrame(x)
        if y is not None:
            columns = self._model().ir.response.columns
            values = np.asarray(y)
            frame = frame.assign(**{c: (values if values.ndim == 1 else values[:, i])
                                    for i, c in enumerate(columns)})
        return frame

    def fit(self, X, y=None):
        model = self._model()
        self.fitted_ = model.fit(self._frame(X, y), weights=self.weights, solver=self.solver)
        self.classes_ = (np.asarray(self.fitted_.classes, dtype=object)
                         if self.fitted_.classes is not None else None)
        return self

    def predict(self, X):
        return self.fitted_.predict(self._frame(X))["prediction"].to_numpy()

    def predict_proba(self, X):
        out = self.fitted_.predict(self._frame(X))
        if "probability" in out:
            p = out["probability"].to_numpy()
            return np.column_stack([1 - p, p])
        cols = [c for c in out.columns if c.startswith("probability_")]
        if not cols:
            raise AttributeError(f"loss '{self.fitted_.loss.name}' gives no probabilities")
        return out[cols].to_numpy()

    def score(self, X, y=None):
        metric = self.fitted_.loss.primary
        value = self.fitted_.score(self._frame(X, y))[metric]
        return value if GREATER_IS_BETTER[metric] else -value
