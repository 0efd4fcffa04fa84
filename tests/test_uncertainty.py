"""Standard errors, intervals and prediction intervals against a dense brute force.

The brute force builds H = Σ_i w_i (x̃_i f''(η_i) x̃_iᵀ) + P from the records and the edges
by explicit loops (the curvature written out per loss here, not taken from the package),
inverts it with numpy, and estimates the dispersion as mgcv does; the fitted model's
standard errors must agree to 1e-6 relative at the same θ̂.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, softmax

import stratlang
from stratlang.kinds.losses import LOSSES
from stratlang.language.errors import StratlangError
from stratlang.uncertainty import NoUncertainty

N1, N2 = 6, 4  # path × cycle: K = 24 strata, some without data
EMPTY = {(2, 1), (2, 2), (5, 3)}  # strata left without records


def _frame(seed: int = 0, n: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g1 = rng.integers(0, N1, n)
    g2 = rng.integers(0, N2, n)
    keep = np.array([(a, b) not in EMPTY for a, b in zip(g1, g2, strict=True)])
    frame = pd.DataFrame({"g1": g1[keep], "g2": g2[keep]})
    m = len(frame)
    frame["x"] = rng.normal(size=m)
    frame["o"] = rng.normal(scale=0.3, size=m)
    frame["w"] = rng.uniform(0.5, 2.0, size=m)
    eta = 0.4 * frame.x + 0.3 * np.sin(frame.g1) + 0.2 * np.cos(frame.g2)
    frame["real"] = eta + rng.normal(scale=0.5, size=m)
    frame["count"] = rng.poisson(np.exp(eta + frame.o))
    frame["positive"] = rng.exponential(np.exp(-(eta + frame.o)))
    frame["label"] = np.where(rng.uniform(size=m) < expit(eta + frame.o), "yes", "no")
    frame["three"] = np.array(["a", "b", "c"])[rng.integers(0, 3, m)]
    frame["zero_one"] = (rng.uniform(size=m) < 0.3 + 0.1 * np.sin(frame.g1)).astype(int)
    frame["rate_count"] = rng.poisson(2.0 + np.sin(frame.g1), size=m)
    frame["duration"] = rng.exponential(1.0 + 0.2 * frame.g2, size=m)
    return frame


def _squared(eta, y):
    return np.full_like(eta, 2.0)


def _logistic(eta, y):
    p = expit(eta)
    return p * (1 - p)


def _poisson_regression(eta, y):
    return np.exp(eta)


def _exponential_regression(eta, y):
    return y * np.exp(eta)


def _multinomial(eta, y):
    p = softmax(eta, axis=1)
    return p[:, :, None] * np.eye(eta.shape[1])[None] - p[:, :, None] * p[:, None, :]


def _bernoulli(theta, y):
    return y / theta ** 2 + (1 - y) / (1 - theta) ** 2


def _poisson(theta, y):
    return y / theta ** 2


def _exponential(theta, y):
    return 1.0 / theta ** 2


# loss → (response statement, response column, curvature, features?, offset?, encode y)
CASES = {
    "squared": ("real ~ squared offset o", "real", _squared, True, True),
    "logistic": ("label ~ logistic offset o", "label", _logistic, True, True),
    "poisson_regression": ("count ~ poisson_regression offset o", "count",
                           _poisson_regression, True, True),
    "exponential_regression": ("positive ~ exponential_regression offset o", "positive",
                               _exponential_regression, True, True),
    "multinomial": ("three ~ multinomial", "three", _multinomial, True, False),
    "bernoulli": ("zero_one ~ bernoulli", "zero_one", _bernoulli, False, False),
    "poisson": ("rate_count ~ poisson", "rate_count", _poisson, False, False),
    "exponential": ("duration ~ exponential", "duration", _exponential, False, False),
}
REFUSED = {"gaussian(eps=0.01)": "loss 'gaussian' with eps = 0.01: the eigenvalue floor may "
                                 "hold S at its bound, where the normal approximation fails "
                                 "(eps = 0 keeps the fit interior)"}


def test_every_likelihood_loss_is_tested():
    """A loss entry that declares a likelihood reading is checked here, or, when it sees
    each stratum's θ whole, in test_gaussian_laplace: a new one cannot go untested."""
    declared = {name for name in LOSSES if LOSSES[name].likelihood is not None}
    assert declared == set(CASES) | {"gaussian"}


def _spec(loss: str, weights: bool = True) -> str:
    response, _, _, features, _ = CASES[loss]
    lines = ["model brute", f"response {response}"]
    if features:
        lines.append("features x, intercept")
        exclude = " exclude []" if loss == "multinomial" else ""
        lines.append(f"regularize 0.3 * sum_squares{exclude}")
    if weights:
        lines.append("weights w")
    lines += [f"stratify g1 ~ path weight 2 nodes 0..{N1 - 1}",
              f"stratify g2 ~ cycle weight 0.7 nodes 0..{N2 - 1}"]
    return "\n".join(lines) + "\n"


def _brute(fitted, frame: pd.DataFrame, loss: str, ridge: float, gammas=(2.0, 0.7),
           ridge_rows=None):
    """(standard errors (K, d), H⁻¹, dispersion) by explicit loops."""
    _, column, curvature, features, offset = CASES[loss]
    theta = fitted.theta_array
    k, n, m = theta.shape
    d = n * m
    index = {key: i for i, key in enumerate(fitted.theta.index)}
    strata = np.array([index[(a, b)] for a, b in zip(frame.g1, frame.g2, strict=True)])
    x = (np.column_stack([frame.x, np.ones(len(frame))]) if features
         else np.ones((len(frame), 1)))
    o = frame.o.to_numpy() if offset else np.zeros(len(frame))
    w = frame.w.to_numpy()
    eta = np.einsum("in,inm->im", x, theta[strata]) + o[:, None]
    y = frame[column].to_numpy()
    if loss == "logistic":
        y = np.where(y == "yes", 1.0, -1.0)
    elif loss == "multinomial":
        y = (y[:, None] == np.array(fitted.classes)[None, :]).astype(float)
    h = np.zeros((k * d, k * d))
    for i in range(len(frame)):
        c = curvature(eta[i:i + 1], y[i:i + 1])
        c = np.diag(np.ravel(c)) if loss != "multinomial" else c[0]
        xi = np.kron(x[i][:, None], np.eye(m))  # (d, m): θ flattened row-major (row, output)
        s = strata[i] * d
        h[s:s + d, s:s + d] += w[i] * xi @ c @ xi.T
    data_part = h.copy()
    # the graphs: path on g1, cycle on g2, C-order strata (g1 slowest)
    edges = []
    for a in range(N1):
        for b in range(N2):
            if a + 1 < N1:
                edges.append((gammas[0], (a, b), (a + 1, b)))
            edges.append((gammas[1], (a, b), (a, (b + 1) % N2)))
    for gamma, u, v in edges:
        i, j = index[u] * d, index[v] * d
        for t in range(d):
            h[i + t, i + t] += gamma
            h[j + t, j + t] += gamma
            h[i + t, j + t] -= gamma
            h[j + t, i + t] -= gamma
    rows = range(n - 1) if ridge_rows is None else ridge_rows  # intercept (last) excluded
    for s in range(k):
        for r in rows:
            for out in range(m):
                h[s * d + r * m + out, s * d + r * m + out] += ridge
    inverse = np.linalg.inv(h)
    phi = 1.0
    if loss == "squared":
        edf = float(np.trace(inverse @ data_part))
        phi = 2.0 * float(w @ (eta[:, 0] - y) ** 2) / (len(frame) - edf)
    cov = phi * inverse
    se = np.sqrt(np.diag(cov)).reshape(k, d)
    return se, cov, phi


@pytest.mark.parametrize("loss", sorted(CASES))
def test_standard_errors_match_the_dense_brute_force(loss):
    frame = _frame()
    fitted = stratlang.load(_spec(loss)).fit(frame)
    ridge_rows = range(2) if loss == "multinomial" else None
    se, _, phi = _brute(fitted, frame, loss, 0.3 if CASES[loss][3] else 0.0,
                        ridge_rows=ridge_rows)
    got = fitted.theta_se
    assert got.shape == fitted.theta.shape
    assert list(got.columns) == list(fitted.theta.columns)
    assert list(got.index) == list(fitted.theta.index)
    np.testing.assert_allclose(got.to_numpy(), se, rtol=1e-6)
    assert fitted.uncertainty.dispersion == pytest.approx(phi, rel=1e-9)
    assert fitted.info["uncertainty_method"] == "exact-cholesky"


def test_refused_likelihood_losses_say_why():
    frame = pd.DataFrame({"y": np.random.default_rng(1).normal(size=40),
                          "g": np.arange(40) % 4})
    fitted = stratlang.load("model t\nresponse y ~ gaussian(eps=0.01)\nstratify g ~ path\n"
                            ).fit(frame)
    with pytest.raises(NoUncertainty) as caught:
        _ = fitted.theta_se
    assert str(caught.value) == "no standard errors: " + REFUSED["gaussian(eps=0.01)"]


@pytest.mark.parametrize(("statement", "reason"), [
    ("response real ~ huber\nfeatures x, intercept\n",
     "loss 'huber' is not read as a negative log-likelihood, so the fit has no posterior to "
     "take standard errors from (a likelihood loss, e.g. squared, logistic or "
     "poisson_regression, has one)"),
    ("response real ~ squared\nfeatures x, intercept\nregularize 0.1 * l1\n",
     "regularizer 'l1' is not quadratic, so the objective is not a Gaussian prior's "
     "(sum_squares is)"),
    ("response real ~ squared\nfeatures x, intercept\nregularize nonnegative\n",
     "the constraint 'nonnegative' bounds θ, and a normal approximation ignores bounds: "
     "drop it to get standard errors"),
])
def test_fits_without_a_posterior_are_refused(statement, reason):
    fitted = stratlang.load(f"model t\n{statement}stratify g1 ~ path\n").fit(_frame())
    for attempt in (lambda: fitted.theta_se, lambda: fitted.intervals(),
                    lambda: fitted.predict(_frame().head(3), interval=0.9)):
        with pytest.raises(NoUncertainty) as caught:
            attempt()
        assert str(caught.value) == f"no standard errors: {reason}"


def test_intervals_are_theta_plus_minus_z_se():
    fitted = stratlang.load(_spec("poisson_regression")).fit(_frame())
    lower, upper = fitted.intervals(0.9)
    z = 1.6448536269514722
    np.testing.assert_allclose(lower.to_numpy(), (fitted.theta - z * fitted.theta_se).to_numpy())
    np.testing.assert_allclose(upper.to_numpy(), (fitted.theta + z * fitted.theta_se).to_numpy())
    assert lower.index.equals(fitted.theta.index) and upper.columns.equals(fitted.theta.columns)
    with pytest.raises(StratlangError, match=r"level=1\.5: expected a probability strictly "
                                             r"between 0 and 1 \(e\.g\. 0\.95\)"):
        fitted.intervals(1.5)
    # predict's argument is named as the caller wrote it; True is no probability
    for bad in (0, 1.5, True):
        with pytest.raises(StratlangError) as caught:
            fitted.predict(_frame(seed=5, n=3), interval=bad)
        assert str(caught.value) == (f"interval={bad!r}: expected a probability strictly "
                                     "between 0 and 1 (e.g. 0.95)")


def test_strata_without_data_are_wider_than_their_neighbours():
    frame = _frame()
    fitted = stratlang.load(_spec("squared")).fit(frame)
    se = fitted.theta_se["intercept"]
    for a, b in EMPTY:
        neighbours = [(a, (b + 1) % N2), (a, (b - 1) % N2)] + [
            (c, b) for c in (a - 1, a + 1) if 0 <= c < N1 and (c, b) not in EMPTY]
        neighbours = [s for s in neighbours if s not in EMPTY]
        assert se[(a, b)] > max(se[s] for s in neighbours)


def _link_interval(fitted, frame, loss, level):
    """Brute-force link-scale (η, sd) of each row from the dense covariance."""
    _, cov, _ = _brute(fitted, _frame(), loss, 0.3)
    _, n, m = fitted.theta_array.shape
    index = {key: i for i, key in enumerate(fitted.theta.index)}
    out = []
    for row in frame.itertuples():
        s = index[(row.g1, row.g2)]
        x = np.array([row.x, 1.0])
        block = cov[s * n * m:(s + 1) * n * m, s * n * m:(s + 1) * n * m]
        eta = x @ fitted.theta_array[s][:, 0] + row.o
        out.append((eta, math.sqrt(x @ block @ x)))
    return np.array(out)


@pytest.mark.parametrize(("loss", "column", "transform"), [
    ("squared", "prediction", lambda e: e),
    ("poisson_regression", "prediction", np.exp),
    ("logistic", "probability", expit),
    ("logistic", "score", lambda e: e),
])
def test_prediction_intervals_through_the_link(loss, column, transform):
    frame = _frame()
    fitted = stratlang.load(_spec(loss)).fit(frame)
    empty = pd.DataFrame({"g1": [a for a, _ in EMPTY], "g2": [b for _, b in EMPTY],
                          "x": 0.3, "o": 0.1})  # strata without records
    new = pd.concat([_frame(seed=5, n=30), empty], ignore_index=True)
    got = fitted.predict(new, interval=0.95)
    eta, sd = _link_interval(fitted, new, loss, 0.95).T
    z = 1.959963984540054
    np.testing.assert_allclose(got[f"{column}_lower"], transform(eta - z * sd), rtol=1e-6)
    np.testing.assert_allclose(got[f"{column}_upper"], transform(eta + z * sd), rtol=1e-6)
    assert (got[f"{column}_lower"] <= got[column]).all()
    assert (got[column] <= got[f"{column}_upper"]).all()
    plain = fitted.predict(new)
    pd.testing.assert_frame_equal(got[list(plain.columns)], plain)


def test_exponential_regression_interval_of_a_decreasing_mean():
    fitted = stratlang.load(_spec("exponential_regression")).fit(_frame())
    got = fitted.predict(_frame(seed=5, n=30), interval=0.95)
    assert (got.prediction_lower < got.prediction).all()
    assert (got.prediction < got.prediction_upper).all()


def test_multinomial_probability_intervals_by_class():
    fitted = stratlang.load(_spec("multinomial")).fit(_frame())
    got = fitted.predict(_frame(seed=5, n=30), interval=0.95)
    for c in ("a", "b", "c"):
        assert (got[f"probability_lower_{c}"] < got[f"probability_{c}"]).all()
        assert (got[f"probability_{c}"] < got[f"probability_upper_{c}"]).all()
        assert (got[f"probability_lower_{c}"] > 0).all() and (got[f"probability_upper_{c}"] < 1).all()


def test_multi_output_squared_names_each_output():
    frame = _frame()
    frame["other"] = frame.real * 0.5 + 1
    fitted = stratlang.load("model t\nresponse (real, other) ~ squared\nfeatures x, intercept\n"
                            "stratify g1 ~ path nodes 0..5\n").fit(frame)
    got = fitted.predict(frame.head(4), interval=0.8)
    assert list(got.columns) == ["prediction_real", "prediction_other",
                                 "prediction_lower_real", "prediction_lower_other",
                                 "prediction_upper_real", "prediction_upper_other"]
    assert fitted.theta_se.columns.equals(fitted.theta.columns)


def test_unseen_policies():
    """'hub' takes the hub's interval; 'common' the interval of the factor-mean model,
    (a ⊗ I)ᵀ C (a ⊗ I) with a the averaging weights; 'error' still refuses."""
    frame = _frame()
    fitted = stratlang.load(_spec("squared")).fit(frame)
    new = pd.DataFrame({"g1": [9], "g2": [1], "x": [0.5], "o": [0.0]})
    with pytest.raises(StratlangError):
        fitted.predict(new, interval=0.95)
    got = fitted.predict(new, interval=0.95, unseen="common")
    _, cov, _ = _brute(fitted, frame, "squared", 0.3)
    index = {key: i for i, key in enumerate(fitted.theta.index)}
    x = np.array([0.5, 1.0])
    a = np.zeros(len(index))
    for g1 in range(N1):
        a[index[(g1, 1)]] = 1 / N1
    vector = np.kron(a, x)
    sd = math.sqrt(vector @ cov @ vector)
    z = 1.959963984540054
    assert got.prediction_upper[0] - got.prediction[0] == pytest.approx(z * sd, rel=1e-6)
    assert got.prediction[0] - got.prediction_lower[0] == pytest.approx(z * sd, rel=1e-6)
    # hub: a star's centre stands for unseen values, with its own interval
    star = frame.assign(h=frame.g1.astype(str))
    model = stratlang.load("model s\nresponse real ~ squared\nfeatures x, intercept\n"
                           "stratify h ~ star\n")
    fitted = model.fit(star)
    hub = fitted.strata.factors[0].hub
    hub_label = fitted.theta.index[hub]
    both = fitted.predict(pd.DataFrame({"h": ["nine", hub_label], "x": [0.5, 0.5]}),
                          interval=0.95, unseen="hub")
    assert both.prediction_lower[0] == both.prediction_lower[1]
    assert both.prediction_upper[0] == both.prediction_upper[1]


def test_saved_and_loaded_with_the_fit(tmp_path):
    frame = _frame()
    fitted = stratlang.load(_spec("poisson_regression")).fit(frame)
    new = _frame(seed=5, n=20)
    path = fitted.save(tmp_path / "m")
    loaded = stratlang.load_fitted(path)
    pd.testing.assert_frame_equal(loaded.theta_se, fitted.theta_se)
    pd.testing.assert_frame_equal(loaded.predict(new, interval=0.9),
                                  fitted.predict(new, interval=0.9))
    assert loaded.uncertainty.edf == fitted.uncertainty.edf
    assert loaded.uncertainty.aic == fitted.uncertainty.aic
    assert loaded.uncertainty.method == "exact-cholesky"
    # the common model's uncertainty needs the training data
    unseen = new.head(1).assign(g1=99)
    with pytest.raises(StratlangError, match="a loaded model has only each stratum's own; "
                                             r"refit, or use unseen='hub' \(a star graph's "
                                             r"hub\)"):
        loaded.predict(unseen, interval=0.9, unseen="common")


def test_a_refusal_is_saved_with_the_fit(tmp_path):
    fitted = stratlang.load("model t\nresponse real ~ huber\nstratify g1 ~ path\n").fit(_frame())
    loaded = stratlang.load_fitted(fitted.save(tmp_path / "m"))
    with pytest.raises(NoUncertainty, match=r"^no standard errors: loss 'huber' is not read "
                                            r"as a negative log-likelihood"):
        _ = loaded.theta_se


def test_a_damaged_covariance_is_named(tmp_path):
    import json

    fitted = stratlang.load(_spec("squared")).fit(_frame())
    path = fitted.save(tmp_path / "m")
    arrays = dict(np.load(path.with_suffix(".npz")))
    arrays["covariance"] = arrays["covariance"][:, :1]
    np.savez(path.with_suffix(".npz"), **arrays)
    with pytest.raises(StratlangError, match=r"array 'covariance' \(in m.npz\): expected shape "
                                             r"24 × 2 × 2, got 24 × 1 × 2"):
        stratlang.load_fitted(path)
    meta = json.loads(path.read_text())
    meta["uncertainty"]["dispersion"] = -1.0
    path.write_text(json.dumps(meta))
    with pytest.raises(StratlangError, match=r"uncertainty.dispersion: expected a positive"):
        stratlang.load_fitted(path)


def test_edf_per_term_add_up_and_match_the_brute_force():
    """edf_a = w_a tr(P⁺S_a) − w_a tr(H⁻¹S_a) per penalty, plus the unpenalized
    directions, add up to tr(H⁻¹∇²ℓ)."""
    frame = _frame()
    fitted = stratlang.load(_spec("poisson_regression")).fit(frame)
    _, cov, _ = _brute(fitted, frame, "poisson_regression", 0.3)
    k, n, m = fitted.theta_array.shape
    d = n * m
    index = {key: i for i, key in enumerate(fitted.theta.index)}
    parts = {"stratify.g1": np.zeros((k * d, k * d)), "stratify.g2": np.zeros((k * d, k * d)),
             "reg0.sum_squares": np.zeros((k * d, k * d))}
    for a in range(N1):
        for b in range(N2):
            pairs = [("stratify.g2", (a, (b + 1) % N2), 0.7)]
            if a + 1 < N1:
                pairs.append(("stratify.g1", (a + 1, b), 2.0))
            for name, other, gamma in pairs:
                e = np.zeros(k)
                e[index[(a, b)]], e[index[other]] = 1, -1
                parts[name] += gamma * np.kron(np.outer(e, e), np.eye(d))
    parts["reg0.sum_squares"] = 0.3 * np.kron(np.eye(k), np.diag([1.0, 0.0]))
    penalty = sum(parts.values())
    pseudo = np.linalg.pinv(penalty, rcond=1e-10, hermitian=True)
    edf = fitted.uncertainty.edf
    for name, part in parts.items():
        assert edf[name] == pytest.approx(np.sum(pseudo * part) - np.sum(cov * part), rel=1e-6)
    assert edf["unpenalized"] == k * d - np.linalg.matrix_rank(penalty)
    total = k * d - np.sum(cov * penalty)
    assert edf["total"] == pytest.approx(total, rel=1e-8)
    assert sum(v for key, v in edf.items() if key != "total") == pytest.approx(total, rel=1e-8)


def test_aic_and_deviance_explained_of_unpenalized_least_squares():
    """Without penalties the fit is ordinary least squares per stratum: edf = K·d, AIC
    = n log(2π RSS/n) + n + 2(K·d + 1), deviance explained = 1 − RSS/TSS."""
    frame = _frame()
    fitted = stratlang.load("model t\nresponse real ~ squared\nfeatures x, intercept\n"
                            "stratify g1 ~ path weight 0\n").fit(frame)
    rss = float(np.sum((fitted.predict(frame).prediction - frame.real) ** 2))
    tss = float(np.sum((frame.real - frame.real.mean()) ** 2))
    n, p = len(frame), 2 * N1
    u = fitted.uncertainty
    assert u.edf["total"] == pytest.approx(p, rel=1e-9)
    assert u.aic == pytest.approx(n * np.log(2 * np.pi * rss / n) + n + 2 * (p + 1), rel=1e-9)
    assert u.deviance_explained == pytest.approx(1 - rss / tss, rel=1e-9)
    assert u.scale == pytest.approx(rss / (n - p), rel=1e-9)


def test_poisson_deviance_explained_against_its_definition():
    frame = _frame()
    fitted = stratlang.load(_spec("poisson_regression", weights=False)).fit(frame)
    y, mu = frame["count"].to_numpy(), fitted.predict(frame).prediction.to_numpy()
    mu0 = y.sum() / np.exp(frame.o).sum() * np.exp(frame.o)  # the null model keeps the offset

    def deviance(mean):
        return 2 * np.sum(np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / mean), 0) - (y - mean))

    assert fitted.uncertainty.deviance_explained == pytest.approx(
        1 - deviance(mu) / deviance(mu0), rel=1e-6)


def test_summary_reports_uncertainty():
    fitted = stratlang.load(_spec("squared")).fit(_frame())
    u = fitted.uncertainty
    text = str(fitted.summary())
    assert (f"  standard errors: exact-cholesky (exact), dispersion φ {u.dispersion:.4g} "
            f"(σ² {u.scale:.4g})\n") in text
    assert (f"  effective degrees of freedom {u.edf['total']:.4g} (stratify.g1 "
            f"{u.edf['stratify.g1']:.3g}, stratify.g2 {u.edf['stratify.g2']:.3g}, "
            f"reg0.sum_squares {u.edf['reg0.sum_squares']:.3g}, unpenalized 1)\n") in text
    assert (f"  deviance explained {100 * u.deviance_explained:.3g}%, AIC {u.aic:.6g}\n"
            in text)
    assert f"<li>deviance explained {100 * u.deviance_explained:.3g}%, AIC {u.aic:.6g}</li>" \
        in fitted._repr_html_()
    assert fitted.info["uncertainty_method"] == "exact-cholesky"
    assert fitted.info["aic"] == u.aic


def test_cli_fit_json_and_predict_interval(tmp_path, capsys):
    import json

    from stratlang.cli import main

    frame = _frame()
    frame.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "m.strat").write_text('data "d.csv"\n' + _spec("poisson_regression"))
    assert main(["fit", str(tmp_path / "m.strat"), "--out", str(tmp_path / "fit"),
                 "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    fitted = stratlang.load_fitted(tmp_path / "fit.json")
    u = fitted.uncertainty
    assert doc["uncertainty"]["method"] == "exact-cholesky"
    assert doc["uncertainty"]["edf"] == pytest.approx(u.edf)
    assert doc["uncertainty"]["aic"] == pytest.approx(u.aic)
    se = fitted.theta_se
    assert doc["uncertainty"]["standard_errors"]["x"] == pytest.approx(
        {"mean": se.x.mean(), "min": se.x.min(), "max": se.x.max()})
    assert main(["fit", str(tmp_path / "m.strat")]) == 0
    text = capsys.readouterr().out
    assert f"  effective degrees of freedom {u.edf['total']:.4g} (" in text
    new = _frame(seed=5, n=10)
    new.to_csv(tmp_path / "new.csv", index=False)
    assert main(["predict", str(tmp_path / "fit.json"), "--data", str(tmp_path / "new.csv"),
                 "--interval", "0.9", "--out", str(tmp_path / "p.csv")]) == 0
    capsys.readouterr()
    written = pd.read_csv(tmp_path / "p.csv")
    expected = fitted.predict(new, interval=0.9)
    np.testing.assert_allclose(written.prediction_lower, expected.prediction_lower, rtol=1e-12)
    np.testing.assert_allclose(written.prediction_upper, expected.prediction_upper, rtol=1e-12)
    with pytest.raises(SystemExit):
        main(["predict", str(tmp_path / "fit.json"), "--data", str(tmp_path / "new.csv"),
              "--interval", "95"])
    assert ("argument --interval: '95': expected a probability strictly between 0 and 1, "
            "e.g. 0.95") in capsys.readouterr().err


def test_cli_refusal_is_one_line(tmp_path, capsys):
    from stratlang.cli import main

    _frame().to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "m.strat").write_text('data "d.csv"\nresponse real ~ huber\n'
                                      "stratify g1 ~ path\n")
    assert main(["fit", str(tmp_path / "m.strat"), "--out", str(tmp_path / "fit")]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "fit.json"), "--data", str(tmp_path / "d.csv"),
                 "--interval", "0.95"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "no standard errors: loss 'huber' is not read as a negative log-likelihood" in err


def test_cli_common_interval_from_a_loaded_fit_speaks_in_flags(tmp_path, capsys):
    """The refusal names the command line's flags, not Python's arguments."""
    from stratlang.cli import main

    _frame().to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "m.strat").write_text('data "d.csv"\n' + _spec("poisson_regression"))
    assert main(["fit", str(tmp_path / "m.strat"), "--out", str(tmp_path / "fit")]) == 0
    _frame(seed=5, n=3).assign(g1=99).to_csv(tmp_path / "new.csv", index=False)
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "fit.json"), "--data", str(tmp_path / "new.csv"),
                 "--interval", "0.9", "--unseen", "common"]) == 1
    assert capsys.readouterr().err == (
        "error: an interval for a stratum the fit has not seen (--unseen common) needs the "
        "covariance of the averaged model, which is computed from the training data: a "
        "loaded model has only each stratum's own; refit (stratlang fit … --out), or use "
        "--unseen hub (a star graph's hub)\n")


def test_gaussian_intervals_cover_the_truth():
    """θ drawn from the model's GMRF prior, records from its likelihood, the fit at the
    known weights: the 95 % intervals hold the truth about 95 % of the time (seeded; the
    benchmark benchmarks/coverage.py runs 200 replications)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent.parent / "benchmarks" / "coverage.py"
    spec = importlib.util.spec_from_file_location("coverage_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.coverage("squared", reps=2, seed=1)
    assert 0.91 <= result["coverage"] <= 0.99
    assert 0.88 <= result["coverage_empty_strata"] <= 1.0


def test_pictures_draw_the_intervals():
    """A line over a path gets its 95 % band (the intervals of θ, or through the link on
    the response scale); a heat map fades the cells with wide intervals; an average over
    a factor not shown gets none (it would need the strata's covariances)."""
    pytest.importorskip("matplotlib")
    from matplotlib.collections import PolyCollection

    from stratlang.plot import choose_view

    frame = _frame()
    fitted = stratlang.load(_spec("poisson_regression")).fit(frame)
    view = choose_view(fitted, "intercept", over="g1", by="g2")
    lower, upper = fitted.intervals(0.95)
    grid = lower["intercept"].to_numpy().reshape(N1, N2).T
    np.testing.assert_allclose(view.lower, grid)
    np.testing.assert_allclose(view.upper, upper["intercept"].to_numpy().reshape(N1, N2).T)
    response = choose_view(fitted, "intercept", over="g1", by="g2", scale="response")
    np.testing.assert_allclose(response.lower, np.exp(grid))
    fig = fitted.plot(param="intercept", over="g1", by="g2")
    bands = [c for c in fig.axes[0].collections if isinstance(c, PolyCollection)]
    assert len(bands) == N2
    assert choose_view(fitted, "intercept", over="g1").lower is None  # averaged over g2
    heat = fitted.plot(param="x", over="g2", by="g1")  # a cycle of 4 by 6 paths: lines
    assert heat.axes[0].get_ylabel().endswith("(95% intervals shaded)")


def test_heat_maps_fade_uncertain_cells():
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 14, 300), rng.integers(0, 14, 300)
    keep = (a > 3) | (b > 3)  # a corner without records: faint
    frame = pd.DataFrame({"a": a[keep], "b": b[keep]})
    frame["y"] = np.sin(frame.a / 4) + rng.normal(scale=0.3, size=len(frame))
    fitted = stratlang.load("model heat\nresponse y ~ squared\nstratify a ~ path nodes 0..13\n"
                            "stratify b ~ path nodes 0..13\n").fit(frame)
    fig = fitted.plot(over="a", by="b")
    image = fig.axes[0].images[0]
    alpha = np.asarray(image.get_alpha())
    assert alpha.shape == (14, 14)
    assert alpha[:4, :4].mean() < alpha[6:, 6:].mean()  # the empty corner is fainter
    assert alpha.min() == pytest.approx(0.25)


def test_large_fits_compute_standard_errors_only_when_asked(tmp_path, monkeypatch, capsys):
    """Above AUTOMATIC parameters the summary, save and the command line do not spend the
    time unasked, and say so; theta_se (or --standard-errors) computes them."""
    import stratlang.uncertainty as uncertainty

    monkeypatch.setattr(uncertainty, "AUTOMATIC", 40)
    frame = _frame()
    fitted = stratlang.load(_spec("squared")).fit(frame)  # K·d = 48
    message = uncertainty.not_computed(48)
    assert message == ("no standard errors: not computed unasked for K·d = 48 parameters "
                       "(> 40); fitted.theta_se computes them (before save, to keep them; "
                       "`stratlang fit --standard-errors`)")
    assert f"  {message}\n" in str(fitted.summary())
    loaded = stratlang.load_fitted(fitted.save(tmp_path / "unasked"))
    with pytest.raises(NoUncertainty, match=re.escape(message)):
        _ = loaded.theta_se
    se = fitted.theta_se  # asked: computed, then shown and saved
    assert "  effective degrees of freedom " in str(fitted.summary())
    pd.testing.assert_frame_equal(stratlang.load_fitted(fitted.save(tmp_path / "asked")).theta_se,
                                  se)
    from stratlang.cli import main

    frame.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "m.strat").write_text('data "d.csv"\n' + _spec("squared"))
    assert main(["fit", str(tmp_path / "m.strat"), "--out", str(tmp_path / "cli"),
                 "--standard-errors"]) == 0
    assert "  effective degrees of freedom " in capsys.readouterr().out
    pd.testing.assert_frame_equal(stratlang.load_fitted(tmp_path / "cli.json").theta_se, se)


def test_a_model_saved_before_uncertainty_says_so(tmp_path):
    import json

    fitted = stratlang.load(_spec("squared")).fit(_frame())
    path = fitted.save(tmp_path / "m")
    meta = json.loads(path.read_text())
    del meta["uncertainty"]
    path.write_text(json.dumps(meta))
    arrays = dict(np.load(path.with_suffix(".npz")))
    del arrays["covariance"]
    np.savez(path.with_suffix(".npz"), **arrays)
    loaded = stratlang.load_fitted(path)
    with pytest.raises(NoUncertainty, match=r"^no standard errors: the model was saved "
                                            r"without them \(by a stratlang before they were "
                                            r"kept\); refit to get them$"):
        _ = loaded.theta_se
    assert "standard errors" not in str(loaded.summary())


def test_a_singular_hessian_is_reported():
    """Multinomial scores shifted together change nothing: without a ridge on the
    intercept that direction has no curvature, and its standard error is infinite."""
    from stratlang.language.errors import NumericalError

    spec = _spec("multinomial").replace(" exclude []", "")
    fitted = stratlang.load(spec).fit(_frame())
    with pytest.raises(NumericalError, match=r"^the Hessian H = ∇²loss \+ P is singular at "
                                             r"the fit: some direction of θ is determined "
                                             r"neither by the data nor by a penalty"):
        _ = fitted.theta_se
    assert "standard errors" not in str(fitted.summary())  # (said when they are asked for)


def test_personalized_models_refuse_with_a_reason():
    model = stratlang.load("examples/personalized.strat")
    frame = model.frame(None).head(60)
    fitted = model.fit(frame, options={"patience": 1})
    reason = ("a personalized model is not a penalized likelihood (its objective is "
              "non-convex), so it has no posterior to take them from")
    with pytest.raises(NoUncertainty, match=re.escape(f"no standard errors: {reason}")):
        _ = fitted.theta_se
    with pytest.raises(NoUncertainty, match=re.escape(f"no standard errors: {reason}")):
        fitted.intervals()
    with pytest.raises(NoUncertainty, match=re.escape(f"no prediction intervals: {reason}")):
        fitted.predict(frame, interval=0.95)


def test_monte_carlo_blocks_state_their_error(monkeypatch):
    """Beyond the exact factorization the engine estimates H⁻¹'s blocks by Monte Carlo:
    info and the summary say so, with the relative error of the variances, which bounds
    the actual error (forced here on a small model to compare with the exact blocks)."""
    import stratlang.uncertainty as uncertainty

    frame = _frame()
    exact = stratlang.load(_spec("poisson_regression")).fit(frame).theta_se.to_numpy()
    monkeypatch.setattr(uncertainty, "METHOD", "stochastic")
    fitted = stratlang.load(_spec("poisson_regression")).fit(frame)
    estimated = fitted.theta_se.to_numpy()
    stated = fitted.info["uncertainty_stderr"]
    assert fitted.info["uncertainty_method"] == "monte-carlo"
    assert 0 < stated < 0.5
    actual = float(np.sqrt(np.mean((estimated ** 2 / exact ** 2 - 1) ** 2)))
    assert actual < 3 * stated
    assert (f"  standard errors: monte-carlo (relative error of the variances ≈ {stated:.2g})"
            in str(fitted.summary()))
