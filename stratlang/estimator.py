"""A scikit-learn estimator wrapping a spec: clonable, usable in ``cross_val_score``,
``GridSearchCV`` (search over ``weights``, a dict of hyper-parameter values) and
pipelines, and conforming to ``sklearn.utils.estimator_checks.check_estimator``.

Whether it is a regressor or a classifier follows from the spec's loss (its tags, and
``predict_proba`` / ``classes_`` for a classifying loss).
"""

from __future__ import annotations

import numbers
import re
import warnings
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import DataConversionWarning
from sklearn.utils._available_if import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .data.frames import refuse_repeated_columns
from .kinds.metrics import GREATER_IS_BETTER
from .language import ir
from .language.errors import DataError, OptionError, did_you_mean

if TYPE_CHECKING:
    from sklearn.utils import Tags

    from .kinds.losses import Loss
    from .model import Model

SAMPLE_WEIGHT = "sample_weight_"  # the column sample_weight is bound through
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


@lru_cache(maxsize=64)
def _compiled(text: str, filename: str) -> ir.CheckedModel:
    """A spec compiled once per text (the IR is immutable; an estimator refits often)."""
    from .spec import compile_spec

    return compile_spec(text, filename)


class StratlangEstimator(BaseEstimator):
    """A spec as a scikit-learn estimator.

    ``spec``: spec text or a ``.strat`` path. ``X``: a DataFrame holding the columns the
    spec reads (features, strata, offset), or an array whose columns ``columns`` names
    (by default: the spec's columns in the order it names them — features, offset,
    strata — when X has exactly that many; else ``x0``, ``x1``, …). ``y``: the response.
    ``features="rest"`` adds every column of X the spec does not otherwise read as a
    feature (after the spec's own terms; with the intercept when the spec has no
    ``features`` statement). ``weights``: hyper-parameter values by name (required for
    a sweep); ``backend``, ``solver``, ``options``: as for :meth:`Model.fit`; ``graphs``:
    graphs given from Python. ``fit`` takes ``sample_weight`` (record weights) unless the
    spec names a weights column. ``score`` follows scikit-learn: R² for a regressor,
    accuracy for a classifier; with ``metric`` (a metric the loss reports, e.g. 'anll',
    'rmse', 'auroc'), that metric instead, negated when smaller is better (−RMSE,
    −ANLL), so that greater is always better.
    """

    def __init__(self, spec: str = "", *, columns: list[str] | None = None,
                 features: str = "spec", weights: dict[str, float] | None = None,
                 backend: str | None = None, solver: str | None = None,
                 options: dict[str, Any] | None = None, graphs: dict[str, Any] | None = None,
                 metric: str | None = None):
        self.spec = spec
        self.columns = columns
        self.features = features
        self.weights = weights
        self.backend = backend
        self.solver = solver
        self.options = options
        self.graphs = graphs  # for factors the spec declares `given`
        self.metric = metric

    # ---- what the spec says ---------------------------------------------------------
    def _spec_model(self) -> ir.CheckedModel:
        from .spec import read_spec

        if not isinstance(self.spec, str) or not self.spec.strip():
            raise OptionError("StratlangEstimator needs a spec: its text or a .strat path")
        return _compiled(*read_spec(self.spec))

    def _loss(self) -> Loss | None:
        """The spec's loss entry, or None for a spec that does not compile (fit will say
        what is wrong with it)."""
        from .kinds.losses import LOSSES

        try:
            return LOSSES[self._spec_model().response.loss.name]
        except Exception:
            return None

    def _classifies(self) -> bool:
        loss = self._loss()
        return loss is not None and loss.classifies

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        loss = self._loss()
        classifies = loss is not None and loss.classifies
        tags.estimator_type = "classifier" if classifies else "regressor"
        if classifies:
            from sklearn.utils import ClassifierTags

            assert loss is not None  # (a loss that classifies)
            tags.classifier_tags = ClassifierTags(multi_class=loss.multiclass)
        else:
            from sklearn.utils import RegressorTags

            tags.regressor_tags = RegressorTags()
        tags.target_tags.required = True
        tags.target_tags.positive_only = loss is not None and loss.nonnegative_response
        width = len(self._spec_model().response.columns) if loss is not None else 1
        tags.target_tags.single_output = width == 1
        tags.target_tags.multi_output = width > 1
        tags.input_tags.allow_nan = False
        return tags

    # ---- X and y as the frame the spec reads ----------------------------------------
    def _spec_columns(self, model: ir.CheckedModel) -> list[str]:
        from .data.design import used_columns
        from .data.features import INTERCEPT

        # (the intercept is the constant 1 unless the data has such a column)
        return [c for c in used_columns(model, predicting=True)
                if c not in (model.weights, INTERCEPT)]

    def _array_names(self, model: ir.CheckedModel, width: int) -> list[str]:
        if self.columns is not None:
            names = [str(c) for c in self.columns]
            if len(names) != width:
                raise ValueError(f"columns names {len(names)} columns ({', '.join(names)}); "
                                 f"X has {width}")
            return names
        spec_columns = self._spec_columns(model)
        if width == len(spec_columns):
            return spec_columns
        if self.features == "rest":
            return [f"x{i}" for i in range(width)]
        raise ValueError(f"X has {width} columns; the spec reads {len(spec_columns)} "
                         f"({', '.join(spec_columns) or 'none'}): pass a DataFrame with these "
                         "columns, columns=[...] naming X's columns, or features='rest'")

    def _table(self, model: ir.CheckedModel, X: Any, reset: bool) -> pd.DataFrame:
        """X as a frame (validated as scikit-learn expects, the spec's checks to follow)."""
        if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
            raise TypeError("sparse input is not supported: pass a dense array or a DataFrame "
                            "(a spec's columns are read by name)")
        if isinstance(X, pd.DataFrame):
            refuse_repeated_columns(X, "X has")  # (before scikit-learn reads their names)
            validate_data(self, X, reset=reset, skip_check_array=True)
            if X.shape[0] == 0:
                raise ValueError("Found array with 0 sample(s) (X is an empty DataFrame)")
            frame = X.copy()
            if not all(isinstance(c, str) for c in frame.columns):  # unnamed: as an array's
                frame.columns = self._array_names(model, frame.shape[1])
            return frame
        X = check_array(X, dtype=None, ensure_all_finite=False)
        validate_data(self, X, reset=reset, skip_check_array=True)
        if X.dtype == object:
            _check_scalars(X)
        return pd.DataFrame(X, columns=self._array_names(model, X.shape[1]))

    def _response(self, model: ir.CheckedModel, y: Any) -> np.ndarray:
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target "
                             "y is None")
        values = np.asarray(y)
        if np.iscomplexobj(values):
            raise ValueError("Complex data not supported: y holds complex numbers")
        width = len(model.response.columns)
        if values.ndim == 2 and values.shape[1] == 1 and width == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected; it is "
                          "raveled", DataConversionWarning, stacklevel=3)
            values = values.ravel()
        if (values.ndim == 1 and width > 1) or (values.ndim == 2 and values.shape[1] != width):
            raise ValueError(f"y must have {width} column(s), one per response column "
                             f"({', '.join(model.response.columns)}); got shape {values.shape}")
        if values.dtype.kind in "fc" and not np.all(np.isfinite(values)):
            raise ValueError("Input y contains NaN or infinity: the response must be finite")
        loss = self._loss()
        if loss is not None and loss.classifies:
            check_classification_targets(values)
            kind = type_of_target(values, input_name="y")
            if not loss.multiclass and kind == "multiclass":
                raise ValueError(f"Only binary classification is supported by loss "
                                 f"'{loss.name}'; y has {len(np.unique(values))} classes "
                                 "(the type of the target is multiclass): use multinomial or "
                                 "multiclass_hinge")
        return values

    def _model_for(self, model: ir.CheckedModel, frame: pd.DataFrame, weighted: bool) -> Model:
        """The Model to fit: the spec, with the 'rest' features and sample weights."""
        from .builder import Spec
        from .model import Model

        if self.features not in ("spec", "rest"):
            raise OptionError(f"features is 'spec' or 'rest'; got {self.features!r}")
        if not weighted and self.features == "spec":
            return Model(model, self.graphs)
        builder = Spec.from_model(Model(model))
        if weighted:
            builder.weights(SAMPLE_WEIGHT)
        if self.features == "rest":
            read = set(self._spec_columns(model)) | set(model.response.columns)
            rest = [str(c) for c in frame.columns if str(c) not in read and c != SAMPLE_WEIGHT]
            bad = [c for c in rest if not _NAME.fullmatch(c)]
            if bad:
                raise ValueError(f"columns {bad} cannot be named in a spec (letters, digits, "
                                 "'_' and '.', not starting with a digit): rename them")
            from .data.features import term_text

            terms = [term_text(t) for t in model.features] or ["intercept"]
            builder.features(*terms, *rest)
        return builder.model(self.graphs)

    # ---- scikit-learn's interface -------------------------------------------------------
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> StratlangEstimator:
        model = self._spec_model()
        frame = self._table(model, X, reset=True)
        values = self._response(model, y)
        if len(values) != len(frame):
            raise ValueError(f"X has {len(frame)} rows and y {len(values)}")
        weighted = sample_weight is not None
        if weighted:
            if model.weights is not None:
                raise ValueError(f"the spec weights records by its column '{model.weights}'; "
                                 "sample_weight cannot be given too")
            from sklearn.utils.validation import _check_sample_weight

            frame[SAMPLE_WEIGHT] = _check_sample_weight(sample_weight, frame.to_numpy(),
                                                        ensure_non_negative=True)
        columns = model.response.columns
        frame = frame.assign(**{c: (values if values.ndim == 1 else values[:, i])
                                for i, c in enumerate(columns)})
        self.model_ = self._model_for(model, frame, weighted)
        self.fitted_ = self.model_.fit(frame, backend=self.backend, solver=self.solver,
                                       weights=self.weights, options=self.options)
        if self.fitted_.classes is not None:
            self.classes_ = np.asarray(self.fitted_.classes)
        return self

    def _predictions(self, X: Any) -> pd.DataFrame:
        check_is_fitted(self, "fitted_")
        frame = self._table(self.model_.ir, X, reset=False)
        return self.fitted_.predict(frame)

    def predict(self, X: Any) -> np.ndarray:
        out = self._predictions(X)
        values: np.ndarray
        if "prediction" in out:
            values = out["prediction"].to_numpy()
        else:  # one prediction per response column
            values = out[[c for c in out.columns if c.startswith("prediction")]].to_numpy()
        if hasattr(self, "classes_"):
            return values.astype(self.classes_.dtype)
        return values.astype(float)

    @available_if(lambda self: self._classifies())
    def predict_proba(self, X: Any) -> np.ndarray:
        out = self._predictions(X)
        if "probability" in out:  # a binary loss: P(the positive, later class)
            p = out["probability"].to_numpy(dtype=float)
            return np.column_stack([1 - p, p])
        each: np.ndarray = out[[c for c in out.columns if c.startswith("probability_")]
                               ].to_numpy(dtype=float)
        return each

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        check_is_fitted(self, "fitted_")
        values = self._response(self.model_.ir, y)
        if self.metric is None:  # scikit-learn's convention
            from sklearn.metrics import accuracy_score, r2_score

            rule = accuracy_score if hasattr(self, "classes_") else r2_score
            predicted = np.asarray(self.predict(X))
            # rows predict leaves empty (a missing value the spec drops) are not scored, as
            # the fitted model's own score does; without any row there is no score
            kept = (~pd.isna(predicted) if predicted.ndim == 1
                    else ~pd.isna(predicted).any(axis=1))
            if not kept.any():
                raise DataError("score: no row has a prediction (every row has a missing "
                                "value the spec's `missing drop` leaves out)")
            weight = None if sample_weight is None else np.asarray(sample_weight)[kept]
            return float(rule(np.asarray(values)[kept], predicted[kept], sample_weight=weight))
        frame = self._table(self.model_.ir, X, reset=False)
        frame = frame.assign(**{c: (values if values.ndim == 1 else values[:, i])
                                for i, c in enumerate(self.model_.ir.response.columns)})
        if self.model_.ir.weights == SAMPLE_WEIGHT:
            frame[SAMPLE_WEIGHT] = 1.0 if sample_weight is None else np.asarray(sample_weight)
        scores = self.fitted_.score(frame)
        if self.metric not in scores:
            raise OptionError(f"metric '{self.metric}' is not one loss "
                              f"'{self.fitted_.loss.name}' reports"
                              + did_you_mean(str(self.metric), scores))
        value = scores[self.metric]
        return value if GREATER_IS_BETTER[self.metric] else -value


def _check_scalars(X: np.ndarray) -> None:
    """An object array's entries are numbers or labels (scikit-learn's convention)."""
    for (i, j), value in np.ndenumerate(X):
        if not isinstance(value, str | numbers.Number | bool | type(None)):
            raise TypeError(f"X[{i}, {j}] is a {type(value).__name__}: each argument must be "
                            "a label string or a number")

