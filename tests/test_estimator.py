"""The scikit-learn estimator: clone, cross-validation, grid search."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score

from stratlang.estimator import StratlangEstimator

SPEC = ("response y ~ squared\nfeatures x1, x2, intercept\nregularize 0.1 * sum_squares\n"
        "stratify sex ~ complete weight 1\nstratify age ~ path weight 10\n")


def test_clone_keeps_parameters():
    est = StratlangEstimator(SPEC, weights={"stratify.age": 3.0})
    copy = clone(est)
    assert copy.get_params() == est.get_params() and copy is not est


def test_cross_val_and_grid_search(regression_frame):
    x, y = regression_frame.drop(columns="y"), regression_frame.y
    scores = cross_val_score(StratlangEstimator(SPEC), x, y, cv=3)
    assert scores.shape == (3,) and np.all(scores < 0)  # −RMSE
    grid = [{"stratify.age": w, "stratify.sex": 1.0} for w in (0.01, 10.0, 1e6)]
    search = GridSearchCV(StratlangEstimator(SPEC), {"weights": grid}, cv=3).fit(x, y)
    # the slope changes with age: infinite smoothing must lose
    assert search.best_params_["weights"]["stratify.age"] != 1e6
    assert search.predict(x.head(4)).shape == (4,)


def test_classifier_probabilities(rng):
    frame = pd.DataFrame({"x": rng.normal(size=120), "g": rng.integers(0, 2, 120)})
    y = np.where(frame.x + 0.5 * rng.normal(size=120) > 0, "pos", "neg")
    est = StratlangEstimator("response y ~ logistic\nfeatures x, intercept\n"
                             "stratify g ~ path weight 1\n").fit(frame, y)
    proba = est.predict_proba(frame)
    assert proba.shape == (120, 2) and np.allclose(proba.sum(axis=1), 1)
    assert list(est.classes_) == ["neg", "pos"] and est.score(frame, y) < 0
