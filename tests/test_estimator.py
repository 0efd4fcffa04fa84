"""The scikit-learn estimator: scikit-learn's own conformance checks, clone,
cross-validation, grid search, array input, sample weights."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.utils.estimator_checks import check_estimator

import stratlang
from stratlang import DataError
from stratlang.estimator import StratlangEstimator

SPEC = ("response y ~ squared\nfeatures x1, x2, intercept\nregularize 0.1 * sum_squares\n"
        "stratify sex ~ complete weight 1\nstratify age ~ path weight 10\n")

# Specs scikit-learn's checks can exercise: their data are numeric arrays of any width
# (no stratum columns), so every column is a feature (features="rest").
CONFORMING = {
    "regressor (squared)": ("response y ~ squared\nregularize 0.01 * sum_squares\n", {}),
    # no regularization: with zero weights, fewer kept rows than features make the system
    # singular, and check_sample_weight_equivalence_on_dense_data needs its one minimizer
    # of least norm
    "regressor without regularization (squared)": ("response y ~ squared\n", {}),
    "binary classifier (logistic)": ("response y ~ logistic\nregularize 0.01 * sum_squares\n",
                                     {}),
    "classifier (multinomial)": ("response y ~ multinomial\nregularize 0.01 * sum_squares\n",
                                 {}),
    "spec naming its columns": (
        "response y ~ squared\nfeatures x0, x1\nregularize 0.1 * sum_squares\n",
        {"check_fit2d_1feature": "the spec names two columns, x0 and x1: an X of one column "
                                 "cannot hold both (the error names the missing column)"}),
    "count regressor (poisson_regression)": (
        "response y ~ poisson_regression\nregularize 0.01 * sum_squares\n",
        dict.fromkeys(["check_n_features_in_after_fitting", "check_regressors_train",
                       "check_regressor_data_not_an_array",
                       "check_regressors_no_decision_function", "check_fit_idempotent",
                       "check_fit_check_is_fitted", "check_n_features_in"],
                      "poisson_regression models counts: y must be nonnegative integers, "
                      "and these checks draw real-valued y")),
}


@pytest.mark.filterwarnings("ignore::stratlang.NumericalWarning")
@pytest.mark.parametrize("case", sorted(CONFORMING))
def test_scikit_learn_conformance(case):
    spec, expected_failures = CONFORMING[case]
    results = check_estimator(StratlangEstimator(spec, features="rest"), on_fail=None,
                              on_skip=None, expected_failed_checks=expected_failures)
    failed = {r["check_name"]: str(r["exception"])[:300] for r in results
              if r["status"] == "failed" and r["check_name"] not in expected_failures}
    assert not failed
    assert len([r for r in results if r["status"] == "passed"]) >= 49
    # an expected failure that passes is stale: drop it from the list
    assert {r["check_name"] for r in results if r["status"] == "xfail"} == set(
        expected_failures)


def test_estimator_kind_follows_the_loss():
    assert is_regressor(StratlangEstimator("response y ~ squared\n"))
    assert is_classifier(StratlangEstimator("response y ~ multinomial\n"))
    assert not hasattr(StratlangEstimator("response y ~ squared\n"), "predict_proba")
    assert hasattr(StratlangEstimator("response y ~ logistic\n"), "predict_proba")
    assert stratlang.StratlangEstimator is StratlangEstimator


def test_clone_keeps_parameters():
    est = StratlangEstimator(SPEC, weights={"stratify.age": 3.0})
    copy = clone(est)
    assert copy.get_params() == est.get_params() and copy is not est


def test_unfitted_and_bad_specs_are_scikit_learn_errors(regression_frame):
    with pytest.raises(NotFittedError):
        StratlangEstimator(SPEC).predict(regression_frame)
    with pytest.raises(ValueError, match="unknown loss 'sqared'; did you mean 'squared'"):
        StratlangEstimator("response y ~ sqared\n").fit(regression_frame, regression_frame.y)


def test_repeated_column_names_are_a_clear_value_error(regression_frame):
    # scikit-learn's feature-name check once raised narwhals' DuplicateError
    X = regression_frame.drop(columns="y").rename(columns={"x2": "x1"})
    with pytest.raises(DataError, match=r"^X has more than one column named 'x1' \(2 "
                       r"columns\): give each column its own name$"):
        StratlangEstimator(SPEC).fit(X, regression_frame.y)
    fitted = StratlangEstimator(SPEC).fit(regression_frame.drop(columns="y"),
                                          regression_frame.y)
    with pytest.raises(ValueError, match=r"^X has more than one column named 'x1'"):
        fitted.predict(X)
    with pytest.raises(DataError, match=r"^the data have more than one column named 'x1' \(2 "
                       r"columns\)"):
        stratlang.load(SPEC).fit(regression_frame.rename(columns={"x2": "x1"}))


def test_cross_val_and_grid_search(regression_frame):
    x, y = regression_frame.drop(columns="y"), regression_frame.y
    scores = cross_val_score(StratlangEstimator(SPEC), x, y, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.8)  # R²: the model explains y
    rmse = cross_val_score(StratlangEstimator(SPEC, metric="rmse"), x, y, cv=3)
    assert np.all(rmse < 0)  # −RMSE
    grid = [{"stratify.age": w, "stratify.sex": 1.0} for w in (0.01, 10.0, 1e6)]
    search = GridSearchCV(StratlangEstimator(SPEC), {"weights": grid}, cv=3).fit(x, y)
    # the slope changes with age: infinite smoothing must lose
    assert search.best_params_["weights"]["stratify.age"] != 1e6
    assert search.predict(x.head(4)).shape == (4,)


def test_array_input_is_matched_to_the_spec_columns(regression_frame):
    """An array with exactly the spec's columns is read in the spec's order (features,
    then strata); columns= names any other layout."""
    frame = regression_frame
    by_name = StratlangEstimator(SPEC).fit(frame.drop(columns="y"), frame.y)
    expected = by_name.predict(frame.drop(columns="y"))
    array = frame[["x1", "x2", "sex", "age"]].to_numpy(dtype=object)
    by_order = StratlangEstimator(SPEC).fit(array, frame.y.to_numpy())
    np.testing.assert_allclose(by_order.predict(array), expected, rtol=1e-9)
    shuffled = frame[["age", "x2", "sex", "x1"]].to_numpy(dtype=object)
    named = StratlangEstimator(SPEC, columns=["age", "x2", "sex", "x1"]).fit(shuffled, frame.y)
    np.testing.assert_allclose(named.predict(shuffled), expected, rtol=1e-9)
    with pytest.raises(ValueError, match=r"X has 3 columns; the spec reads 4 \(x1, x2, sex, "
                                         r"age\): pass a DataFrame"):
        StratlangEstimator(SPEC).fit(array[:, :3], frame.y)


def test_sample_weight_is_a_record_weight(regression_frame):
    """Weight 2 on a record fits as that record twice."""
    frame = regression_frame.head(120)
    x, y = frame.drop(columns="y"), frame.y.to_numpy()
    weight = np.where(np.arange(len(frame)) % 3 == 0, 2.0, 1.0)
    weighted = StratlangEstimator(SPEC).fit(x, y, sample_weight=weight)
    twice = np.flatnonzero(weight == 2.0)
    doubled = StratlangEstimator(SPEC).fit(pd.concat([x, x.iloc[twice]], ignore_index=True),
                                           np.concatenate([y, y[twice]]))
    np.testing.assert_allclose(weighted.predict(x), doubled.predict(x), atol=1e-5)
    with pytest.raises(ValueError, match="spec weights records by its column 'w'"):
        StratlangEstimator(SPEC + "weights w\n").fit(x.assign(w=1.0), y, sample_weight=weight)


def test_classifier_probabilities(rng):
    frame = pd.DataFrame({"x": rng.normal(size=120), "g": rng.integers(0, 2, 120)})
    y = np.where(frame.x + 0.5 * rng.normal(size=120) > 0, "pos", "neg")
    est = StratlangEstimator("response y ~ logistic\nfeatures x, intercept\n"
                             "stratify g ~ path weight 1\n").fit(frame, y)
    proba = est.predict_proba(frame)
    assert proba.shape == (120, 2) and np.allclose(proba.sum(axis=1), 1)
    assert list(est.classes_) == ["neg", "pos"]
    assert est.score(frame, y) == pytest.approx(np.mean(est.predict(frame) == y))
    assert 0.75 < est.score(frame, y) <= 1


def test_score_skips_the_rows_predict_leaves_empty(rng):
    """With `missing drop`, rows with a missing value get no prediction: score (and so
    cross_val_score) rates the others, as the fitted model's own score does."""
    n = 200
    X = pd.DataFrame({"g": rng.integers(0, 3, n), "x": rng.normal(size=n)})
    y = 2 * X.x + X.g + 0.1 * rng.normal(size=n)
    X.loc[::7, "x"] = np.nan
    estimator = StratlangEstimator("response y ~ squared\nfeatures x, intercept\n"
                                   "stratify g ~ path weight 1\nmissing drop\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = cross_val_score(estimator, X, y, cv=3)
        fitted = estimator.fit(X, y)
        kept = X.x.notna().to_numpy()
        expected = r2_score(y[kept], fitted.predict(X)[kept])
        assert fitted.score(X, y) == pytest.approx(expected)
    assert np.isfinite(scores).all() and (scores > 0.9).all()
