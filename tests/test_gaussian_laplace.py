"""The ``gaussian`` loss under the Laplace approximation: its curvature over θ's free
coordinates (kinds.gaussian_natural) against finite differences, and standard errors,
mean intervals and REML weights end to end through the API against the dense brute-force
reference (tests/gaussian_reference.py); the refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import stratlang
from stratlang.backends.free_coordinates import free_parts
from stratlang.kinds import LOSSES
from stratlang.kinds.gaussian_natural import GaussianStrata, free_basis
from stratlang.language.errors import StratlangError
from stratlang.solvers.penalty import InteractionPart, LaplacianPart, RidgePart
from stratlang.uncertainty import NoUncertainty

from .gaussian_reference import DenseGaussian

K, EMPTY = 6, 3  # strata along a path; stratum 3 has no records


def test_every_loss_of_theta_whole_is_tested_here():
    whole = {n for n in LOSSES.names() if LOSSES[n].sees_stratum_whole}
    assert whole == {"gaussian"}
    assert all(LOSSES[n].likelihood is not None for n in whole)


# ---- the curvature over the free coordinates ------------------------------------------
def _strata(seed: int = 0, m: int = 3) -> tuple[GaussianStrata, np.ndarray]:
    rng = np.random.default_rng(seed)
    ys = [rng.normal(size=(n, m)) for n in (5, 0, 7)]
    ws = [rng.uniform(0.5, 2.0, len(y)) for y in ys]
    count = np.array([w.sum() for w in ws])
    total = np.array([w @ y if len(y) else np.zeros(m) for y, w in zip(ys, ws, strict=True)])
    scatter = np.array([(w[:, None] * y).T @ y if len(y) else np.zeros((m, m))
                        for y, w in zip(ys, ws, strict=True)])
    strata = GaussianStrata(count, total, scatter)
    theta = np.zeros((3, m + 1, m))
    for k in range(3):
        a = rng.normal(size=(m, m))
        theta[k, :m] = a @ a.T + m * np.eye(m)
        theta[k, m] = rng.normal(size=m)
    return strata, strata.to_free(theta)


def test_the_free_basis_is_an_isometry_onto_symmetric_s():
    q = free_basis(3)
    assert q.shape == (12, 9)
    np.testing.assert_allclose(q.T @ q, np.eye(9), atol=1e-15)
    theta = (q @ np.arange(1.0, 10.0)).reshape(4, 3)
    np.testing.assert_array_equal(theta[:3], theta[:3].T)  # S symmetric
    assert theta[0, 1] == pytest.approx(2 / np.sqrt(2))  # an off-diagonal ψ is √2 S_ij


def test_gradient_hessian_and_change_match_finite_differences():
    strata, psi = _strata()
    value, grad, hess = strata.derivatives(psi)
    h = 1e-6
    fd_grad, fd_hess = np.zeros_like(grad), np.zeros_like(hess)
    for k in range(strata.k):
        for a in range(strata.size):
            e = np.zeros_like(psi)
            e[k, a] = h
            fd_grad[k, a] = (strata.value(psi + e) - strata.value(psi - e)) / (2 * h)
            fd_hess[k, :, a] = (strata.derivatives(psi + e)[1][k]
                                - strata.derivatives(psi - e)[1][k]) / (2 * h)
    np.testing.assert_allclose(grad, fd_grad, atol=1e-7)
    np.testing.assert_allclose(hess, fd_hess, atol=1e-7)
    assert np.all(hess[1] == 0)  # a stratum without records: no curvature
    direction = np.random.default_rng(1).normal(size=psi.shape)
    fd_change = (strata.derivatives(psi + h * direction)[2]
                 - strata.derivatives(psi - h * direction)[2]) / (2 * h)
    np.testing.assert_allclose(strata.hessian_change(psi, direction), fd_change, atol=1e-7)
    assert value == pytest.approx(strata.value(psi))


def test_outside_the_domain_the_loss_is_infinite():
    strata, psi = _strata()
    outside = psi.copy()
    outside[0, 0] = -5.0  # S₁₁ < 0 in a stratum with records
    assert strata.value(outside) == np.inf
    with pytest.raises(ValueError, match="not positive definite"):
        strata.derivatives(outside)


def test_penalty_parts_keep_their_form_over_the_free_coordinates():
    basis = free_basis(2)  # rows (a, b, nu) of 2 outputs
    pattern = np.repeat(np.array([[1.0, 0.0, 0.0]] * 4), 2, axis=1)  # sum_squares on row a
    got = free_parts([LaplacianPart(0), RidgePart(pattern), InteractionPart((0, 1))], basis, 2)
    assert got[0] == LaplacianPart(0) and got[2] == InteractionPart((0, 1))
    # S_aa whole, S_ab = S_ba half (one of the pair), S_bb and ν none
    np.testing.assert_allclose(got[1].pattern, [[1.0, 0.5, 0.0, 0.0, 0.0]] * 4)
    rows = free_parts([LaplacianPart(0, np.array([False, False, True]))], basis, 2)[0]
    np.testing.assert_array_equal(rows.rows, [False, False, False, True, True])
    with pytest.raises(StratlangError, match="the rows of a symmetric parameter differ"):
        free_parts([LaplacianPart(0, np.array([True, False, False]))], basis, 2)


# ---- end to end against the dense reference --------------------------------------------
def _frame(seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    s = rng.integers(0, K, 110)
    s = s[s != EMPTY]
    mean = np.cumsum(rng.normal(scale=0.4, size=(K, 2)), axis=0)
    noise = rng.normal(size=(len(s), 2)) @ np.array([[1.0, 0.4], [0.0, 0.7]])
    y = mean[s] + noise
    return pd.DataFrame({"a": y[:, 0], "b": y[:, 1], "s": s,
                         "w": rng.uniform(0.5, 2.0, len(s))})


def _spec(weight: str, ridge: bool = False) -> str:
    lines = ["model g", "response (a, b) ~ gaussian", "weights w",
             f"stratify s ~ path weight {weight} nodes 0..{K - 1}"]
    if ridge:
        lines.append("regularize 0.7 * sum_squares")  # (excludes nu: on S only)
    return "\n".join(lines) + "\n"


def _reference(frame: pd.DataFrame, ridge: bool, kind: str) -> DenseGaussian:
    laplacian = np.diag([1.0, 2, 2, 2, 2, 1]) - np.eye(K, k=1) - np.eye(K, k=-1)
    reference = DenseGaussian(frame[["a", "b"]].to_numpy(), frame["s"].to_numpy(), K, [],
                              weight=frame["w"].to_numpy(), kind=kind)
    reference.parts = [DenseGaussian.laplacian_part(laplacian, reference.d)]
    if ridge:
        reference.parts.append(reference.ridge_part([0, 1]))
    return reference


def test_standard_errors_and_edf_match_the_dense_reference():
    """Fixed weights (a path and a sum_squares on S): θ_se against 2 H⁻¹ of the dense
    objective differentiated numerically, in vech coordinates (S_ij counted once): the
    posterior is the same whichever linear free coordinates."""
    frame = _frame()
    fitted = stratlang.load(_spec("3", ridge=True)).fit(frame)
    theta = fitted.theta_array
    reference = _reference(frame, True, "vech")
    phi = reference.free(theta)
    weights = [3.0, 0.7]
    np.testing.assert_allclose(reference.stored(phi), theta, atol=1e-12)  # (S symmetric)
    se = np.sqrt(np.diag(reference.covariance(phi, weights))).reshape(theta.shape)
    np.testing.assert_allclose(fitted.theta_se.to_numpy(), se.reshape(K, -1), rtol=1e-6)
    assert np.all(se[EMPTY] > se[EMPTY - 1])  # no records: wider than its neighbour's
    hessian = reference.hessian(phi, weights)
    edf = np.trace(np.linalg.solve(hessian, reference.loss_hessian(phi)))
    assert fitted.info["edf"] == pytest.approx(edf, rel=1e-8)
    assert fitted.uncertainty.dispersion == 2.0  # the loss is twice the NLL
    lower, upper = fitted.intervals(0.95)
    np.testing.assert_allclose(upper.to_numpy() - lower.to_numpy(),
                               2 * 1.959963984540054 * fitted.theta_se.to_numpy(), rtol=1e-12)
    # the fit is the dense optimum (ADMM's tolerance)
    np.testing.assert_allclose(reference.stored(reference.fit(weights, phi)), theta, atol=1e-4)


def test_mean_intervals_by_the_delta_method_match_the_dense_reference():
    frame = _frame()
    fitted = stratlang.load(_spec("3")).fit(frame)
    reference = _reference(frame, False, "vech")
    phi = reference.free(fitted.theta_array)
    new = pd.DataFrame({"s": np.arange(K)})  # a stratum without records among them
    got = fitted.predict(new, interval=0.9)
    z = 1.6448536269514722
    for k in range(K):
        sd = np.sqrt(np.diag(reference.mean_covariance(phi, [3.0], k)))
        mean = got.loc[k, ["mean_a", "mean_b"]].to_numpy(dtype=float)
        np.testing.assert_allclose(got.loc[k, ["mean_lower_a", "mean_lower_b"]].to_numpy(
            dtype=float), mean - z * sd, rtol=1e-6)
        np.testing.assert_allclose(got.loc[k, ["mean_upper_a", "mean_upper_b"]].to_numpy(
            dtype=float), mean + z * sd, rtol=1e-6)
    # a value the fit has not seen, as the model averaged over the factor's nodes
    common = fitted.predict(pd.DataFrame({"s": [K + 1]}), unseen="common", interval=0.9)
    sd = np.sqrt(np.diag(reference.mean_covariance(phi, [3.0], None)))
    mean = common.loc[0, ["mean_a", "mean_b"]].to_numpy(dtype=float)
    average = fitted.theta_array.mean(axis=0)
    np.testing.assert_allclose(mean, np.linalg.solve(average[:2], average[2]), rtol=1e-9)
    np.testing.assert_allclose(common.loc[0, ["mean_upper_a", "mean_upper_b"]].to_numpy(
        dtype=float), mean + z * sd, rtol=1e-6)


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_chosen_weight_and_criterion_match_the_dense_reference(method):
    """The criterion over the isometric free coordinates (the engine's) to 1e-8, the
    chosen weight against scipy's minimize_scalar on the dense criterion to 1e-6, the
    standard errors at the chosen weight (conditional on it) to 1e-6."""
    frame = _frame()
    fitted = stratlang.load(_spec("auto")).fit(frame, select=method)
    report = fitted.info["selection"]
    assert report["method"] == method
    chosen = fitted.weights["stratify.s"]
    assert report["converged"] and report["weights"]["stratify.s"]["limit"] is None
    reference = _reference(frame, False, "isometric")
    start = reference.free(fitted.theta_array)
    value = reference.criterion(np.log(chosen), start, method)
    assert report["criterion"] == pytest.approx(value, rel=1e-8)
    best = reference.select(start, (np.log(chosen) - 1, np.log(chosen) + 1), method)
    assert chosen == pytest.approx(best, rel=1e-6)
    phi = reference.free(fitted.theta_array)
    se = np.sqrt(np.diag(reference.covariance(phi, [chosen])))
    np.testing.assert_allclose(fitted.standard_errors(conditional=True).to_numpy(),
                               se.reshape(K, -1), rtol=1e-6)
    # the chosen weight's own uncertainty widens every interval
    assert np.all(fitted.theta_se.to_numpy() >= fitted.standard_errors(True).to_numpy())
    assert report["weights"]["stratify.s"]["log_se"] > 0


# ---- refusals ----------------------------------------------------------------------------
EPS = ("loss 'gaussian' with eps = 0.01: the eigenvalue floor may hold S at its bound, where "
       "the normal approximation fails (eps = 0 keeps the fit interior)")


def test_an_eigenvalue_floor_is_refused_with_its_reason():
    frame = _frame()
    spec = _spec("3").replace("~ gaussian", "~ gaussian(eps=0.01)")
    fitted = stratlang.load(spec).fit(frame, backend="cvxpy")
    with pytest.raises(NoUncertainty) as caught:
        _ = fitted.theta_se
    assert str(caught.value) == "no standard errors: " + EPS
    with pytest.raises(StratlangError) as caught:
        stratlang.load(spec.replace("weight 3", "weight auto")).fit(frame, backend="cvxpy")
    assert str(caught.value) == ("auto weights of model 'g' cannot be chosen: " + EPS
                                 + "; fix them (weights={…}) or write sweeps and use tune")


def test_gcv_is_refused_for_a_loss_without_deviance():
    with pytest.raises(StratlangError) as caught:
        stratlang.load(_spec("auto")).fit(_frame(), select="gcv")
    assert str(caught.value) == (
        "auto weights of model 'g' cannot be chosen: GCV scores a deviance, and loss "
        "'gaussian' has none (no finite saturated model): choose them by reml or ml; fix "
        "them (weights={…}) or write sweeps and use tune")


def test_auto_weight_and_standard_errors_survive_save_and_load(tmp_path):
    """The chosen weight, θ's standard errors over the free coordinates and the mean's
    intervals (the stratum without records among them) come back from the saved fit."""
    fitted = stratlang.load(_spec("auto", ridge=True)).fit(_frame())
    loaded = stratlang.load_fitted(fitted.save(tmp_path / "fit"))
    assert loaded.weights == fitted.weights
    pd.testing.assert_frame_equal(loaded.theta_se, fitted.theta_se)
    pd.testing.assert_frame_equal(loaded.standard_errors(conditional=True),
                                  fitted.standard_errors(conditional=True))
    new = pd.DataFrame({"s": np.arange(K)})
    pd.testing.assert_frame_equal(loaded.predict(new, interval=0.9),
                                  fitted.predict(new, interval=0.9))
