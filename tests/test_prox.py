"""Proximal operators against CVXPY solving the same prox problem, stratum by stratum."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratlang.kinds import LOSSES
from stratlang.kinds.losses import Records
from stratlang.solvers import prox as px


def cvxpy_prox(loss_name: str, records: Records, k, v, t, p) -> np.ndarray:
    """argmin Σ_k loss_k(θ_k) + ‖θ − v‖²/(2t), one CVXPY problem per stratum."""
    loss = LOSSES[loss_name]
    out = np.empty_like(v)
    for s in range(k):
        theta = cp.Variable(v.shape[1:])
        rows = np.flatnonzero(records.z == s)
        objective = cp.sum_squares(theta - v[s]) / (2 * t)
        if len(rows):
            part = records.subset(rows)
            pred = part.x @ theta
            if part.offset is not None:
                pred = pred + part.offset[:, None] * np.ones((1, v.shape[2]))
            objective += loss.cvxpy(pred, part.y, p, part.weight)
        cp.Problem(cp.Minimize(objective)).solve(solver="CLARABEL")
        out[s] = theta.value
    return out


def prox_objective(loss_name, records: Records, v, t, p, theta) -> float:
    return (LOSSES[loss_name].records_value(records, theta[records.z], p)
            + float(np.sum((theta - v) ** 2)) / (2 * t))


def assert_optimal(loss_name, records, v, t, p, got):
    """At least as good as CVXPY's answer (interior-point accuracy is ~1e-8), and close."""
    want = cvxpy_prox(loss_name, records, len(v), v, t, p)
    best = prox_objective(loss_name, records, v, t, p, want)
    ours = prox_objective(loss_name, records, v, t, p, got)
    assert ours <= best + 1e-9 * (1 + abs(best))
    # the prox objective is (1/t)-strongly convex: a point δ above the optimum lies within
    # √(2tδ) of it, so CVXPY's answer (δ ≈ its accuracy) may be that far from ours
    np.testing.assert_allclose(got, want, atol=max(1e-4, 2 * np.sqrt(2 * t * max(best - ours,
                                                                                0.0))))


def piecewise_data(loss_name: str, rng, records: int, k: int, n: int,
                   extras: bool = False) -> Records:
    """Records for a loss; with ``extras``, offsets and weights (some zero) as well."""
    x = np.column_stack([rng.normal(size=(records, n - 1)), np.ones(records)])
    z = rng.integers(0, k, records)
    if loss_name in ("hinge", "logistic", "squared_hinge"):
        y = np.where(rng.random((records, 1)) < 0.5, -1.0, 1.0)
    elif loss_name in ("multiclass_hinge", "multinomial"):
        y = np.eye(3)[rng.integers(0, 3, records)]
    elif loss_name == "poisson_regression":
        y = rng.poisson(2.0, (records, 1)).astype(float)
    else:
        y = np.round(rng.normal(size=(records, 2)), 1)  # rounding makes ties likely
    if not extras:
        return Records(x, y, z)
    offset = None if y.shape[1] == 3 else np.round(rng.normal(size=records), 1)
    weight = rng.choice([0.0, 0.5, 1.0, 3.0], records)
    return Records(x, y, z, offset, weight)


@pytest.mark.parametrize("loss_name", ["absolute", "quantile", "hinge", "multiclass_hinge"])
@pytest.mark.parametrize("t", [0.01, 1.0, 100.0])
@pytest.mark.parametrize("extras", [False, True], ids=["plain", "offset+weight"])
def test_piecewise_linear_prox_is_exact(loss_name, t, extras, rng):
    records = piecewise_data(loss_name, rng, 60, 4, 3, extras)
    p = {"tau": 0.3} if loss_name == "quantile" else {}
    prox = LOSSES[loss_name].admm_prox(records, 4, p)
    v = rng.normal(size=(4, 3, records.y.shape[1]))
    assert_optimal(loss_name, records, v, t, p, prox(v, t))
    assert prox.unpolished == 0
    # a nearby point reuses the active sets; the answer is still exact
    v2 = v + 1e-3 * rng.normal(size=v.shape)
    assert_optimal(loss_name, records, v2, t, p, prox(v2, t))


@pytest.mark.parametrize("loss_name", ["absolute", "quantile", "hinge", "multiclass_hinge"])
def test_piecewise_linear_prox_needs_no_smoothed_newton(loss_name, rng):
    """Many strata solved cold, then warm after a large move: dual coordinate sweeps and
    active-set steps find the exact prox of (almost) every stratum; the smoothed Newton
    (which used to solve every cold stratum: 40 + 20 here) is left at most 3 of the 60
    stratum solves (multiclass_hinge: the stragglers whose next sweep round would cost
    more than SWEEP_BUDGET steps; 1 with unbounded rounds, in 2.6× the time)."""
    records = piecewise_data(loss_name, rng, 400, 40, 4, extras=True)
    p = {"tau": 0.3} if loss_name == "quantile" else {}
    prox = LOSSES[loss_name].admm_prox(records, 40, p)
    v = rng.normal(size=(40, 4, records.y.shape[1]))
    assert_optimal(loss_name, records, v, 0.5, p, prox(v, 0.5))
    moved = v + rng.normal(size=v.shape) * (np.arange(40) % 2 == 0)[:, None, None]
    assert_optimal(loss_name, records, moved, 0.5, p, prox(moved, 0.5))
    assert prox.fallback_strata <= 3 and prox.unpolished == 0 and prox.sweeps > 0


def test_piecewise_linear_prox_sweeps_within_budget_on_deep_strata():
    """Strata of 50 weighted quantile terms in 4 coefficients (an intercept, a rare dummy
    and log income: coupled duals) through 30 ADMM-like calls, the penalty changing: a
    straggler stratum goes to the smoothed Newton once a sweep round would cost more than
    SWEEP_BUDGET vectorized steps. Without that, stragglers ran all 252 sweeps × 50 ranks
    (120,000-170,000 steps here; the K = 120 benchmark took 4× longer); with it ~10,000."""
    rng = np.random.default_rng(0)
    k, per = 8, 50
    n = k * per
    x = np.column_stack([np.ones(n), rng.normal(size=n), (rng.random(n) < 0.2).astype(float),
                         np.log(rng.lognormal(3, 0.4, n))])
    y = (x @ np.array([1.0, 0.5, 2.0, 0.3]) + rng.normal(size=n))[:, None]
    records = Records(x, y, np.repeat(np.arange(k), per), np.log(rng.uniform(0.1, 3.0, n)),
                      rng.choice([0.5, 1.0, 2.0, 4.0], n))
    p = {"tau": 0.9}
    prox = LOSSES["quantile"].admm_prox(records, k, p)
    assert prox.depth == per
    v = rng.normal(size=(k, 4, 1))
    for call in range(30):
        t = 1.0 if (call // 10) % 2 == 0 else 2.0
        v = v + 0.5 ** (call / 4) * rng.normal(size=v.shape)
        theta = prox(v, t)
    assert prox.sweep_steps <= 30_000  # ~1,000 a call
    assert prox.unpolished == 0
    assert_optimal("quantile", records, v, t, p, theta)


def test_piecewise_linear_prox_reuses_projections_only_where_the_sets_stay(rng):
    """The polish keeps each stratum's pseudo-inverse while its inside set is unchanged:
    a sequence of calls (sets changing in some strata, t changing) gives the answers of a
    fresh prox to rounding."""
    records = piecewise_data("quantile", rng, 300, 20, 4)
    p = {"tau": 0.7}
    kept = LOSSES["quantile"].admm_prox(records, 20, p)
    v = rng.normal(size=(20, 4, 2))
    for step, t in enumerate([1.0, 1.0, 0.25, 0.25, 4.0]):
        v = v + (0.01 if step % 2 else 1.0) * rng.normal(size=v.shape)
        fresh = LOSSES["quantile"].admm_prox(records, 20, p)
        np.testing.assert_allclose(kept(v, t), fresh(v, t), rtol=0, atol=1e-9)
    assert_optimal("quantile", records, v, 4.0, p, kept(v, 4.0))


def test_pseudo_inverse_matches_numpy_on_singular_gram_matrices(rng):
    a = rng.normal(size=(50, 6, 3))
    a[::3, 5] = a[::3, 0]  # repeated rows
    gram = a @ np.transpose(a, (0, 2, 1))  # rank ≤ 3 of 6
    np.testing.assert_allclose(px.pseudo_inverse(gram),
                               np.linalg.pinv(gram, rcond=1e-12, hermitian=True), atol=1e-10)


@pytest.mark.parametrize("loss_name", ["squared", "huber", "logistic", "squared_hinge",
                                       "multinomial", "poisson_regression"])
def test_smooth_proxes_with_offsets_and_weights(loss_name, rng):
    records = piecewise_data(loss_name, rng, 60, 4, 3, extras=True)
    p = {"M": 0.7} if loss_name == "huber" else {}
    prox = LOSSES[loss_name].admm_prox(records, 4, p)
    v = rng.normal(size=(4, 3, records.y.shape[1]))
    for t in (0.05, 2.0):
        if hasattr(prox, "tol"):
            prox.tol = 1e-12
        assert_optimal(loss_name, records, v, t, p, prox(v, t))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), records=st.integers(1, 30), duplicate=st.booleans(),
       t=st.sampled_from([0.05, 1.0, 20.0]))
def test_absolute_prox_on_degenerate_data(seed, records, duplicate, t):
    """Repeated records and more terms interpolated than parameters (a singular system)."""
    rng = np.random.default_rng(seed)
    data = piecewise_data("absolute", rng, records, 2, 2)
    if duplicate:
        data = Records(np.vstack([data.x, data.x]), np.vstack([data.y, data.y]),
                       np.concatenate([data.z, data.z]))
    prox = LOSSES["absolute"].admm_prox(data, 2, {})
    v = rng.normal(size=(2, 2, 2))
    assert_optimal("absolute", data, v, t, {}, prox(v, t))


def test_gaussian_prox_matches_cvxpy(rng):
    m, k = 2, 3
    y = rng.normal(size=(40, m)) @ np.array([[1.0, 0.4], [0.0, 0.7]]) + 1.0
    z = rng.integers(0, k - 1, 40)  # the last stratum has no records
    loss = LOSSES["gaussian"]
    count, total, scatter = loss.stratum_stats(Records(np.ones((40, 1)), y, z), k)
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


@pytest.mark.parametrize("name", ["poisson", "exponential"])
def test_rate_proxes_are_the_positive_root_and_match_cvxpy(name, rng):
    """The closed forms computed in place, block by block: the quadratic's positive root
    as written (the same floats), the CVXPY prox, and −t·linear, 4t·constant kept for one
    t recomputed for another."""
    k = 6
    count = rng.integers(0, 5, k).astype(float)[:, None, None]
    total = rng.poisson(3.0, k).astype(float)[:, None, None] * (count > 0)
    v = rng.normal(size=(k, 1, 1)) * 3
    prox = getattr(px, f"{name}_prox")(count, total, 1e-9)
    linear, constant = (count, total) if name == "poisson" else (total, count)
    for t in (0.3, 2.0, 0.3):
        b = v - t * linear
        want = np.maximum(0.5 * (b + np.sqrt(b * b + 4.0 * t * constant)), 1e-9)
        work = v.copy()
        got = prox(work, t)
        assert got is work  # (in place)
        np.testing.assert_array_equal(got, want)
    for s in range(k):  # against CVXPY at the last t
        theta = cp.Variable()
        n, total_s = float(count[s, 0, 0]), float(total[s, 0, 0])
        loss = (n * theta - total_s * cp.log(theta) if name == "poisson"
                else total_s * theta - n * cp.log(theta))
        objective = loss + cp.square(theta - v[s, 0, 0]) / (2 * 0.3)
        best = cp.Problem(cp.Minimize(objective), [theta >= 1e-9]).solve(solver="CLARABEL")
        theirs = float(theta.value)
        theta.value = float(got[s, 0, 0])  # ours, in the same expression
        assert objective.value <= best + 1e-9 * (1 + abs(best))
        assert abs(got[s, 0, 0] - theirs) <= 1e-4


def test_rate_prox_allocates_nothing_of_thetas_size(monkeypatch):
    """Per ADMM iteration at the crime scale the Poisson prox took a third of the time in
    nine fresh temporaries of θ's size; now it computes in place in its input, block by
    block (several blocks per thread here), the same floats as the formula, and allocates
    nothing of θ's size, also at a new t (−t·count and 4t·total go into the arrays of the
    last t: fresh memory of θ's size is slow to map; a thread's first block of work
    space, 256 KiB, at most)."""
    import tracemalloc

    from stratlang.solvers import blockwise

    monkeypatch.setattr(blockwise, "_cores", lambda: 2)  # (the work space is per thread)
    k = 600_000
    count, total = np.ones((k, 1, 1)), np.linspace(0.0, 5.0, k).reshape(k, 1, 1)
    v = np.linspace(-3, 3, k).reshape(k, 1, 1)
    prox = px.poisson_prox(count, total, 1e-9)
    prox(v.copy(), 0.7)  # (−t·count and 4t·total, once)
    for t in (0.7, 0.3):
        work = v.copy()
        tracemalloc.start()
        try:
            result = prox(work, t)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert result is work
        assert peak < 0.5 * result.nbytes  # (at most a block of work space per thread)
        np.testing.assert_array_equal(result, prox.plain(v, t))


@pytest.mark.parametrize(("name", "inside", "outside"), [
    ("poisson", [1e-9, 0.5, 30.0], [0.5, 1e-12]),
    ("exponential", [2.0, 1e-9], [-1.0, 2.0]),
    ("bernoulli", [1e-9, 0.5, 1 - 1e-9], [0.5, 1.0]),
])
def test_distribution_domain_check_is_one_array_operation(name, inside, outside, monkeypatch):
    """``in_domain`` (run on every ADMM copy at the end of a fit) asks ``clip`` once for the
    whole array; it called it on each stratum through np.vectorize (3.7 s at 3.5 million
    strata)."""
    loss = LOSSES[name]
    calls = []
    clip = type(loss).clip
    monkeypatch.setattr(type(loss), "clip", lambda self, v, eps: calls.append(1) or clip(self, v, eps))
    p = {"eps": 1e-9}
    assert loss.in_domain(np.array(inside).reshape(-1, 1, 1), p)
    assert not loss.in_domain(np.array(outside).reshape(-1, 1, 1), p)
    assert len(calls) == 2
    assert float(loss.clip(-3.0, 1e-9)) == 1e-9  # (and a single number still works)
