"""Standard errors and intervals that include the uncertainty of weights chosen by `auto`
(mgcv's ``unconditional=TRUE``): against the dense reference (tests/laplace_reference.py),
whose ∂θ̂/∂log w is taken here by central differences of its own fit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import stratlang
from stratlang.language.errors import StratlangError

from .test_auto_fit import _case, _gaussian, _reference


def _reference_jacobian(reference, rho: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """∂θ̂/∂ρ_a (A, K·d) of the reference by central differences of its fit."""
    start = reference._cache["theta"]
    out = []
    for a in range(len(rho)):
        e = np.zeros(len(rho))
        e[a] = h
        up = reference.fit(np.exp(rho + e), start)
        down = reference.fit(np.exp(rho - e), start)
        out.append((up - down) / (2 * h))
    return np.array(out)


def test_unconditional_variance_is_conditional_plus_the_weights_term():
    model, frame, features = _case("poisson_regression")
    assert features  # (two auto weights: sum_squares and the path; the cycle fixed)
    fitted = model.fit(frame)
    reference, names = _reference(model, frame, features, fitted.theta.to_numpy())
    report = fitted.info["selection"]["weights"]
    order = [list(report).index(n) for n in names]  # (the spread's: the report's order)
    rho = np.log([fitted.weights[n] for n in names])
    w = np.exp(rho)
    theta = reference.fit(w, reference._cache["theta"])
    _, _, hess = reference.loss(theta)
    conditional = np.diag(np.linalg.inv(hess + reference.penalty(w)))  # (τ = 1)
    # Cov(log w): the criterion's inverse Hessian, in the reference's order
    covariance = fitted._weight_spread.covariance[np.ix_(order, order)]
    np.testing.assert_allclose(np.sqrt(np.diag(covariance)),
                               [report[n]["log_se"] for n in names], rtol=1e-12)
    jacobian = _reference_jacobian(reference, rho)
    expected = conditional + np.einsum("ai,ab,bi->i", jacobian, covariance, jacobian)
    got = fitted.theta_se.to_numpy().reshape(-1) ** 2
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    np.testing.assert_allclose(fitted.standard_errors(conditional=True).to_numpy()
                               .reshape(-1) ** 2, conditional, rtol=1e-4)
    assert np.max(expected / conditional - 1) > 1e-3  # (the weights' term matters here)


def test_unconditional_is_never_narrower_and_says_so():
    model, frame = _gaussian()
    fitted = model.fit(frame)
    unconditional = fitted.theta_se
    conditional = fitted.standard_errors(conditional=True)
    assert (unconditional.to_numpy() >= conditional.to_numpy()).all()
    assert (unconditional.to_numpy() > conditional.to_numpy()).any()
    low, high = fitted.intervals(0.9)
    low_c, high_c = fitted.intervals(0.9, conditional=True)
    np.testing.assert_allclose((high - low).to_numpy(), 2 * 1.6448536269514722
                               * unconditional.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose((high_c - low_c).to_numpy(), 2 * 1.6448536269514722
                               * conditional.to_numpy(), rtol=1e-12)
    wide = fitted.predict(frame, interval=0.9)
    narrow = fitted.predict(frame, interval=0.9, conditional=True)
    width = (wide.prediction_upper - wide.prediction_lower).to_numpy()
    width_c = (narrow.prediction_upper - narrow.prediction_lower).to_numpy()
    assert (width >= width_c - 1e-12).all() and (width > width_c).any()
    assert fitted.info["weights_uncertainty_included"] is True
    assert ("standard errors: exact-cholesky (exact), dispersion φ "
            in str(fitted.summary()))
    assert "including the uncertainty of the chosen weights" in str(fitted.summary())


def test_fixed_weights_are_unchanged():
    model, frame = _gaussian()
    chosen = model.fit(frame)
    fixed = model.fit(frame, weights=dict(chosen.weights))
    assert "selection" not in fixed.info
    np.testing.assert_array_equal(fixed.theta_se.to_numpy(),
                                  fixed.standard_errors(conditional=True).to_numpy())
    np.testing.assert_allclose(fixed.theta_se.to_numpy(),
                               chosen.standard_errors(conditional=True).to_numpy(), rtol=1e-6)
    assert fixed.info["weights_uncertainty_included"] is False
    assert "including the uncertainty" not in str(fixed.summary())


def test_unseen_common_adds_the_weights_term_of_the_mean():
    model, frame = _gaussian()
    fitted = model.fit(frame)
    new = frame.head(1).assign(s=99)
    wide = fitted.predict(new, unseen="common", interval=0.9)
    narrow = fitted.predict(new, unseen="common", interval=0.9, conditional=True)
    x = np.array([frame.x.iloc[0], 1.0])
    spread = fitted._weight_spread
    mean = np.full(4, 0.25)
    term = x @ spread.mean_block(mean) @ x
    half_c = (narrow.prediction_upper - narrow.prediction_lower).iloc[0] / 2
    half = (wide.prediction_upper - wide.prediction_lower).iloc[0] / 2
    z = 1.6448536269514722
    np.testing.assert_allclose(half ** 2, half_c ** 2 + z ** 2 * term, rtol=1e-10)


def test_saved_and_loaded_keep_the_weights_uncertainty(tmp_path):
    model, frame = _gaussian()
    fitted = model.fit(frame)
    path = fitted.save(tmp_path / "m")
    loaded = stratlang.load_fitted(path)
    np.testing.assert_allclose(loaded.theta_se.to_numpy(), fitted.theta_se.to_numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(loaded.standard_errors(conditional=True).to_numpy(),
                               fitted.standard_errors(conditional=True).to_numpy(), rtol=1e-12)
    assert str(loaded.summary()) == str(fitted.summary())
    arrays = dict(np.load(path.with_suffix(".npz")))
    damaged = {**arrays, "weight_covariance": -arrays["weight_covariance"]}
    np.savez(path.with_suffix(".npz"), **damaged)
    with pytest.raises(StratlangError, match=r"array 'weight_covariance': not a covariance "
                                             r"\(symmetric, nonnegative variances\)"):
        stratlang.load_fitted(path)
    del arrays["weight_covariance"]
    np.savez(path.with_suffix(".npz"), **arrays)
    with pytest.raises(StratlangError, match=r"array 'weight_directions': given without the "
                                             r"array 'weight_covariance'"):
        stratlang.load_fitted(path)
    json.loads(path.read_text())  # (the document itself untouched)


def test_gcv_weights_add_nothing():
    """GCV has no likelihood, hence no covariance of log w: its intervals are the
    conditional ones, and the summary does not claim otherwise."""
    model, frame = _gaussian()
    fitted = model.fit(frame, select="gcv")
    np.testing.assert_array_equal(fitted.theta_se.to_numpy(),
                                  fitted.standard_errors(conditional=True).to_numpy())
    assert fitted.info["weights_uncertainty_included"] is False
    assert "including the uncertainty" not in str(fitted.summary())


def test_pictures_draw_the_same_intervals():
    from stratlang.plot import _interval

    model, frame = _gaussian()
    fitted = model.fit(frame)
    low, high = _interval(fitted, "x", 0, "link")
    lower, upper = fitted.intervals(0.95)
    np.testing.assert_allclose(low, lower["x"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(high, upper["x"].to_numpy(), rtol=1e-12)


def test_the_command_line_predicts_either_interval(tmp_path, capsys):
    from stratlang.cli import main

    model, frame = _gaussian()
    path = model.fit(frame).save(tmp_path / "m")
    frame.to_csv(tmp_path / "d.csv", index=False)
    fitted = stratlang.load_fitted(path)
    lower = {}
    for flags, conditional in (([], False), (["--conditional"], True)):
        out = tmp_path / f"p{len(flags)}.csv"
        assert main(["predict", str(path), "--data", str(tmp_path / "d.csv"), "--interval",
                     "0.9", "--out", str(out), *flags]) == 0
        lower[conditional] = pd.read_csv(out)["prediction_lower"].to_numpy()
        expected = fitted.predict(frame, interval=0.9, conditional=conditional)
        np.testing.assert_allclose(lower[conditional], expected["prediction_lower"], rtol=1e-9)
    assert np.all(lower[False] <= lower[True]) and np.any(lower[False] < lower[True] - 1e-9)
    capsys.readouterr()
    with pytest.raises(SystemExit) as usage:
        main(["predict", str(path), "--data", str(tmp_path / "d.csv"), "--conditional"])
    assert usage.value.code == 2
    assert capsys.readouterr().err.endswith("error: --conditional goes with --interval LEVEL "
                                            "(the intervals it changes)\n")
