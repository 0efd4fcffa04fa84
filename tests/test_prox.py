"""Proximal operators against CVXPY solving the same prox problem, stratum by stratum."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratlang.kinds import LOSSES
from stratlang.solvers import prox as px


def cvxpy_prox(loss_name: str, x, y, z, k, v, t, p) -> np.ndarray:
    """argmin Σ_k loss_k(θ_k) + ‖θ − v‖²/(2t), one CVXPY problem per stratum."""
    loss = LOSSES[loss_name]
    out = np.empty_like(v)
    for s in range(k):
        theta = cp.Variable(v.shape[1:])
        rows = z == s
        objective = cp.sum_squares(theta - v[s]) / (2 * t)
        if rows.any():
            objective += loss.cvxpy(x[rows] @ theta, y[rows], p)
        cp.Problem(cp.Minimize(objective)).solve(solver="CLARABEL")
        out[s] = theta.value
    return out


def prox_objective(loss_name, x, y, z, v, t, p, theta) -> float:
    pred = np.einsum("in,inm->im", x, theta[z])
    return LOSSES[loss_name].value(pred, y, p) + float(np.sum((theta - v) ** 2)) / (2 * t)


def assert_optimal(loss_name, x, y, z, v, t, p, got):
    """At least as good as CVXPY's answer (interior-point accuracy is ~1e-8), and close."""
    want = cvxpy_prox(loss_name, x, y, z, len(v), v, t, p)
    best = prox_objective(loss_name, x, y, z, v, t, p, want)
    assert prox_objective(loss_name, x, y, z, v, t, p, got) <= best + 1e-9 * (1 + abs(best))
    np.testing.assert_allclose(got, want, atol=1e-4)


def piecewise_data(loss_name: str, rng, records: int, k: int, n: int):
    x = np.column_stack([rng.normal(size=(records, n - 1)), np.ones(records)])
    z = rng.integers(0, k, records)
    if loss_name == "hinge":
        y = np.where(rng.random((records, 1)) < 0.5, -1.0, 1.0)
    elif loss_name == "multiclass_hinge":
        y = np.eye(3)[rng.integers(0, 3, records)]
    else:
        y = np.round(rng.normal(size=(records, 2)), 1)  # rounding makes ties likely
    return x, y, z


@pytest.mark.parametrize("loss_name", ["absolute", "quantile", "hinge", "multiclass_hinge"])
@pytest.mark.parametrize("t", [0.01, 1.0, 100.0])
def test_piecewise_linear_prox_is_exact(loss_name, t, rng):
    x, y, z = piecewise_data(loss_name, rng, 60, 4, 3)
    p = {"tau": 0.3} if loss_name == "quantile" else {}
    prox = LOSSES[loss_name].admm_prox(x, y, z, 4, p)
    v = rng.normal(size=(4, 3, y.shape[1]))
    assert_optimal(loss_name, x, y, z, v, t, p, prox(v, t))
    assert prox.unpolished == 0
    # a nearby point reuses the active sets; the answer is still exact
    v2 = v + 1e-3 * rng.normal(size=v.shape)
    assert_optimal(loss_name, x, y, z, v2, t, p, prox(v2, t))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), records=st.integers(1, 30), duplicate=st.booleans(),
       t=st.sampled_from([0.05, 1.0, 20.0]))
def test_absolute_prox_on_degenerate_data(seed, records, duplicate, t):
    """Repeated records and more terms interpolated than parameters (a singular system)."""
    rng = np.random.default_rng(seed)
    x, y, z = piecewise_data("absolute", rng, records, 2, 2)
    if duplicate:
        x, y, z = np.vstack([x, x]), np.vstack([y, y]), np.concatenate([z, z])
    prox = LOSSES["absolute"].admm_prox(x, y, z, 2, {})
    v = rng.normal(size=(2, 2, 2))
    assert_optimal("absolute", x, y, z, v, t, {}, prox(v, t))


def test_gaussian_prox_matches_cvxpy(rng):
    m, k = 2, 3
    y = rng.normal(size=(40, m)) @ np.array([[1.0, 0.4], [0.0, 0.7]]) + 1.0
    z = rng.integers(0, k - 1, 40)  # the last stratum has no records
    loss = LOSSES["gaussian"]
    count, total, scatter = loss.stratum_stats(y, z, k)
    prox = px.GaussianProx(count, total, scatter)
    v = rng.normal(size=(k, m + 1, m))
    for t in (0.1, 3.0):
        got = prox(v, t)
        for s in range(k):
            prec, nu = cp.Variable((m, m), PSD=True), cp.Variable(m)
            objective = (cp.sum_squares(prec - v[s, :m]) + cp.sum_squares(nu - v[s, m])) / (2 * t)
            if count[s]:
                objective += (-count[s] * cp.log_det(prec) + cp.trace(scatter[s] @ prec)
                              - 2 * total[s] @ nu + count[s] * cp.matrix_frac(nu, prec))
            problem = cp.Problem(cp.Minimize(objective))
            problem.solve(solver="CLARABEL")
            prec.value, nu.value = got[s, :m], got[s, m]  # ours, in the same expression
            assert objective.value <= problem.value + 1e-9 * (1 + abs(problem.value))
            np.testing.assert_allclose(got[s, :m], got[s, :m].T)
