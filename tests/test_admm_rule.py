"""ADMM's penalty adaptation (solvers/admm.AdmmRule): residual balancing on the residuals
relative to their tolerances, at most once in ``adapt_every`` iterations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stratlang.solvers.admm import AdmmRule, Step, admm

RULE = AdmmRule(terms=1, size=1, eps_abs=1e-6, eps_rel=0.0)  # both tolerances 1e-6


def sums(primal: float, dual: float, lam: float = 1.0, duals2: float = 0.0):
    """Residual sums giving these residuals (terms = size = 1)."""
    return [(primal ** 2, (dual * lam) ** 2, 0.0, 0.0, duals2)]


def after(step: Step, primal: float, dual: float, rule: AdmmRule = RULE, **kw) -> Step:
    return rule.next(step, sums(primal, dual, step.lam, **kw))


def test_a_lopsided_start_changes_the_penalty_at_once():
    """Not only on every 10th iteration: the rule that waited for iteration 10 kept a
    penalty plainly too high for 9 iterations (crime scale: 45 → 75 iterations)."""
    step = after(RULE.first(1.0), primal=100.0, dual=1.0)  # iteration 1's residuals
    assert (step.lam, step.scale, step.iteration) == (0.5, 0.5, 2)


def test_at_most_one_change_in_ten_iterations():
    """Changed at iteration 1, the penalty stays through iteration 10 whatever the
    residuals say (adapted on every iteration it flipped back and forth and diverged on
    random specs), and may change again from the residuals of iteration 11."""
    step = after(RULE.first(1.0), primal=100.0, dual=1.0)
    lams = []
    for _ in range(2, 12):
        step = after(step, primal=1.0, dual=100.0)  # now asking for the other way
        lams.append(step.lam)
    assert lams == [0.5] * 9 + [1.0] and step.changed == 11


def test_balancing_weighs_each_residual_against_its_tolerance():
    """A primal residual twice the dual one, but 2,000 times its tolerance where the dual
    one is a thousandth of its own: the penalty is lowered (on the raw residuals, the
    ratio 2 < μ = 5 left it)."""
    rule = AdmmRule(terms=1, size=1, eps_abs=1e-6, eps_rel=1e-3)
    step = after(rule.first(1.0), primal=2e-3, dual=1e-3, rule=rule, duals2=1e6)
    assert math.isclose(step.residuals.eps_dual, 1.0 + 1e-6)
    assert step.lam == 0.5


def test_within_balance_nothing_changes():
    step = after(RULE.first(1.0), primal=4.0, dual=1.0)
    assert (step.lam, step.scale) == (1.0, 1.0) and step.changed < 0


@pytest.mark.parametrize("relax", [1.0, 1.6])
def test_the_in_place_iteration_is_the_plain_one(relax):
    """The iteration reuses its work arrays; written with fresh arrays (as before) it gives
    the same floats. A quadratic loss, an l1 term and a 1-D Laplacian, 30 iterations."""
    rng = np.random.default_rng(0)
    k = 40
    target = rng.normal(size=(k, 1))
    lap = np.diag(np.r_[1.0, 2.0 * np.ones(k - 2), 1.0]) - np.eye(k, k=1) - np.eye(k, k=-1)

    def loss(v, t):
        return (v + t * target) / (1.0 + t)

    def l1(v, t):
        return np.sign(v) * np.maximum(np.abs(v) - 0.3 * t, 0.0)

    def solve(b, c):
        return np.linalg.solve(lap + c * np.eye(k), b)

    got = admm(loss, [l1], solve, (k, 1), relax=relax, max_iter=30, eps_abs=1e-14,
               eps_rel=0.0, progress=False)

    hat, copies, duals, lam = np.zeros((k, 1)), [np.zeros((k, 1))] * 2, [np.zeros((k, 1))] * 2, 1.0
    for _ in range(30):  # the plain expressions, without adaptation (none in 30 here)
        copies = [prox(hat - d, lam) for prox, d in zip((loss, l1), duals, strict=True)]
        old = hat
        relaxed = [relax * c + (1.0 - relax) * old for c in copies] if relax != 1.0 else copies
        hat = solve(sum(c + d for c, d in zip(relaxed, duals, strict=True)) / lam, 2 / lam)
        duals = [d + (r - hat) for d, r in zip(duals, relaxed, strict=True)]
    assert got.iterations == 30 and got.lam == 1.0
    np.testing.assert_array_equal(got.state.theta_hat, hat)
    np.testing.assert_array_equal(got.theta, copies[0])


@pytest.mark.parametrize("relax", [1.0, 1.6])
@pytest.mark.parametrize("kernel", [True, False])
def test_the_blockwise_iteration_with_an_in_place_prox_is_the_plain_one(relax, kernel):
    """At 300,000 strata the iteration runs block by block on threads (solvers.blockwise),
    the Poisson prox inside the pass that makes the right-hand side (its block kernel) or,
    seen as a plain function, in place in its work array (the copy then takes that
    buffer, no copy made); written with fresh arrays it gives the same floats, and the
    residuals to rounding (their sums are added up per block)."""
    from stratlang.solvers.graphs import cycle_graph
    from stratlang.solvers.laplacian import KroneckerSolver
    from stratlang.solvers.prox import poisson_prox

    rng = np.random.default_rng(1)
    k = 300_000
    count = rng.integers(0, 4, k).astype(float).reshape(k, 1)
    total = rng.poisson(2.0 * count).astype(float)
    loss = poisson_prox(count, total, 1e-9)

    def l1(v, t):
        return np.sign(v) * np.maximum(np.abs(v) - 0.3 * t, 0.0)

    solver = KroneckerSolver([cycle_graph(k)], [2.0])
    got = admm(loss if kernel else (lambda v, t: loss(v, t)), [l1], solver.solve, (k, 1),
               relax=relax, max_iter=8, eps_abs=1e-14, eps_rel=0.0, adaptive=False,
               progress=False, initial=np.ones((k, 1)))

    hat, lam = np.ones((k, 1)), 1.0
    copies, duals = [hat.copy(), hat.copy()], [np.zeros((k, 1)), np.zeros((k, 1))]
    history = []
    for _ in range(8):
        copies = [prox(hat - d, lam) for prox, d in zip((loss.plain, l1), duals, strict=True)]
        old = hat
        relaxed = [relax * c + (1.0 - relax) * old for c in copies] if relax != 1.0 else copies
        hat = solver.solve(sum(c + d for c, d in zip(relaxed, duals, strict=True)) / lam,
                           2 / lam)
        duals = [d + (r - hat) for d, r in zip(duals, relaxed, strict=True)]
        history.append((sum(np.sum((c - hat) ** 2) for c in copies), np.sum((hat - old) ** 2)))
    assert got.iterations == 8
    np.testing.assert_array_equal(got.state.theta_hat, hat)
    np.testing.assert_array_equal(got.theta, copies[0])
    for state, plain in zip(got.state.duals, duals, strict=True):
        np.testing.assert_array_equal(state, plain)
    primal = [math.sqrt(gap2) for gap2, _ in history]
    dual = [math.sqrt(2 * moved2) / lam for _, moved2 in history]
    np.testing.assert_allclose([h[1] for h in got.history], primal, rtol=1e-12)
    np.testing.assert_allclose([h[2] for h in got.history], dual, rtol=1e-12)


def test_undoing_the_last_change_takes_a_lasting_imbalance():
    """An oscillation (dual-heavy on one iteration, then balanced) does not undo the last
    change; three dual-heavy iterations in a row do. Going on the same way needs one."""
    step = after(RULE.first(1.0), primal=100.0, dual=1.0)  # lowered at iteration 1
    for _ in range(10):
        step = after(step, primal=1.0, dual=1.0)
    for dual in (100.0, 1.0, 100.0, 100.0):  # iterations 12–15
        step = after(step, primal=1.0, dual=dual)
        assert step.lam == 0.5
    step = after(step, primal=1.0, dual=100.0)  # the third in a row
    assert (step.lam, step.changed) == (1.0, 16)
    for _ in range(10):
        step = after(step, primal=1.0, dual=1.0)
    step = after(step, primal=1.0, dual=100.0)  # on the same way: at once
    assert step.lam == 2.0


def test_going_on_the_same_way_waits_five_iterations():
    """A second change the same way cannot flip the penalty back: it may come 5
    iterations after the first (crime scale: 48 → 44 iterations), not 10."""
    step = after(RULE.first(1.0), primal=100.0, dual=1.0)  # lowered at iteration 1
    for _ in range(4):  # iterations 2–5: too soon
        step = after(step, primal=100.0, dual=1.0)
        assert step.lam == 0.5
    step = after(step, primal=100.0, dual=1.0)  # iteration 6
    assert (step.lam, step.changed) == (0.25, 6)
