"""θ̂(w) of a quadratic loss by one CG solve (solvers.quadratic_solve) in the stochastic
REML search, and the refit that confirms it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from stratlang.solvers.quadratic_solve import QuadraticSolve
from stratlang.solvers.selection import newton_fit, select_weights

from .test_laplace import _poisson_grid
from .test_reference_search import _uneven


def test_the_solve_gives_the_newton_fit_at_other_weights():
    problem, penalty = _uneven(shape=(10, 9), years=7)
    fit = newton_fit(problem, penalty, dispersion=True)
    first_weights = np.array([1.0, 2.0, 0.5])
    first = fit(first_weights, None)
    solve = QuadraticSolve.at(penalty, first.blocks, first.theta, first.loss, first_weights)
    for weights in (np.array([0.3, 7.0, 1e-3]), first_weights):
        theta, loss = solve.minimizer(weights)
        fitted = fit(weights, None)
        scale = float(np.max(np.abs(fitted.theta)))
        np.testing.assert_allclose(theta, fitted.theta, atol=1e-8 * scale)
        assert abs(loss - fitted.loss) <= 1e-9 * abs(fitted.loss)


def test_a_loss_read_wrongly_as_quadratic_is_caught_by_the_refit():
    """A callback that reports a constant curvature for a Poisson loss (block_change
    None): the search solves for θ̂ as if the loss were quadratic, the refit at its answer
    disagrees, and the search goes on with the callback's fits — ending on a point whose
    fit is the callback's own."""
    problem, penalty = _poisson_grid(shape=(5, 4), years=4)
    honest = newton_fit(problem, penalty)
    calls = []

    def constant(weights, warm):
        calls.append(1)
        return dataclasses.replace(honest(weights, warm), block_change=None,
                                   block_second=None)

    start = [1.0, 1.0, 0.1]
    selection = select_weights(constant, penalty, "reml", start=start,
                               free=[True, True, False], method="stochastic",
                               options={"probes": 8})
    assert selection.converged and selection.method == "slq"
    assert len(calls) > 2  # the first fit, the refit that disagreed, then the callback's
    refit = honest(selection.weights, None)
    np.testing.assert_allclose(selection.fit.theta, refit.theta, atol=1e-7)


def test_a_non_finite_right_hand_side_is_reported_not_solved_to_zero():
    """CG from a right-hand side with a NaN (weights overflowed into the penalty) has a
    NaN residual, which is not above any tolerance: it stopped at once and handed back
    x = 0 as θ̂(w). It must be an error."""
    problem, penalty = _uneven(shape=(6, 5), years=4)
    fit = newton_fit(problem, penalty, dispersion=True)
    weights = np.array([1.0, 2.0, 0.5])
    first = fit(weights, None)
    solve = QuadraticSolve.at(penalty, first.blocks, first.theta, first.loss, weights)
    broken = dataclasses.replace(solve, target=np.where(
        np.arange(solve.target.size).reshape(solve.target.shape) == 3, np.nan, solve.target))
    with pytest.raises(ArithmeticError, match=r"stopped at a relative residual of nan"):
        broken.minimizer(weights)


def test_a_solve_that_cannot_reach_its_tolerance_hands_over_to_the_callbacks_fits(
        monkeypatch):
    """θ̂(w) by CG is a shortcut for the fit callback: where CG stops short of its
    tolerance (here one no run can reach), the search fits by the callback from there on
    and ends at the optimum it reaches without the shortcut — it does not fail."""
    from stratlang.solvers import quadratic_solve

    problem, penalty = _uneven()
    fit = newton_fit(problem, penalty, dispersion=True)
    start = [1.0, 1.0, 1.0]
    plain = select_weights(fit, penalty, "reml", start=start, method="stochastic",
                           options={"probes": 8})
    monkeypatch.setattr(quadratic_solve, "SOLVE_RTOL", 1e-300)
    calls = []

    def counted(weights, warm):
        calls.append(1)
        return fit(weights, warm)

    fallen_back = select_weights(counted, penalty, "reml", start=start, method="stochastic",
                                 options={"probes": 8})
    assert fallen_back.converged and fallen_back.method == "slq"
    assert len(calls) > 2  # (the first fit, then the callback's fits instead of solves)
    np.testing.assert_allclose(np.log(fallen_back.weights), np.log(plain.weights),
                               atol=0.05 * float(np.min(plain.log_se)))
