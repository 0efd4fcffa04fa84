"""The stochastic REML search led by its Kronecker reference (solvers.selection:
_reference_search): H replaced by P(w) + I ⊗ B̄ (exact-spectral) to reach the optimum's
neighbourhood with the true fits, then a few stochastic evaluations from there."""

from __future__ import annotations

import numpy as np

from stratlang.solvers.graphs import grid_graph, path_graph
from stratlang.solvers.hessian import KroneckerSum, RecordStatistics
from stratlang.solvers.newton import LossTerm, SmoothProblem
from stratlang.solvers.penalty import LaplacianPart, QuadraticPenalty, RidgePart
from stratlang.solvers.pointwise import Squared
from stratlang.solvers.selection import newton_fit, select_weights


def _uneven(shape=(8, 8), years=6, seed=0):
    """The benchmark's `uneven` design at K = 384: one Gaussian record per stratum and a
    second in a random fifth of them (the curvature blocks differ: H is no Kronecker
    sum), Laplacians on space and time and a ridge."""
    rng = np.random.default_rng(seed)
    factors = [grid_graph(shape), path_graph(years)]
    full = (*shape, years)
    k = int(np.prod(full))
    z = np.sort(np.concatenate([np.arange(k), rng.choice(k, k // 5, replace=False)]))
    at = np.unravel_index(np.arange(k), full)
    truth = np.sin(at[0] / 7.0) + np.cos(at[1] / 5.0) + 0.3 * np.sin(at[2] / 4.0)
    y = truth[z] + 0.5 * rng.normal(size=len(z))
    stats = RecordStatistics(np.ones((len(z), 1)), z, k, 1)
    problem = SmoothProblem(stats, y[:, None], [LossTerm(Squared())], np.zeros((k, 1)),
                            KroneckerSum(factors, [1.0, 1.0]))
    parts = [LaplacianPart(0), LaplacianPart(1), RidgePart(np.ones((k, 1)))]
    return problem, QuadraticPenalty(factors, parts, n=1)


def test_the_reference_led_stochastic_search_reaches_the_exact_optimum_in_few_evaluations():
    problem, penalty = _uneven()
    fit = newton_fit(problem, penalty, dispersion=True)
    start = [1.0, 1.0, 1.0]
    exact = select_weights(fit, penalty, "reml", start=start, method="exact")
    calls = []

    def counted(weights, warm):
        calls.append(np.array(weights))
        return fit(weights, warm)

    stochastic = select_weights(counted, penalty, "reml", start=start, method="stochastic",
                                options={"probes": 8})
    assert exact.method == "exact-cholesky" and stochastic.method == "slq"
    assert stochastic.converged and stochastic.unbounded == (None, None, None)
    # the Cholesky optimum, to far less than the weights' own uncertainty
    assert np.all(np.abs(np.log(stochastic.weights / exact.weights)) < 0.05 * exact.log_se)
    np.testing.assert_allclose(stochastic.log_se, exact.log_se, rtol=0.02)
    # the stochastic evaluations: one where the reference's search ended (its fit
    # reused), corrected Newton steps, three for the standard errors' differences (the
    # search without the reference took 13: Fellner–Schall, a differences' Hessian,
    # Newton, the SEs' one)
    assert stochastic.reference_evaluations > 0
    assert stochastic.evaluations <= 6
    # the squared loss is quadratic: after the first fit, every θ̂(w) is one CG solve
    # (solvers.quadratic_solve), and the callback fits only once more, at the answer, to
    # confirm it (the same θ̂ and loss)
    assert len(calls) == 2
    np.testing.assert_array_equal(calls[-1], stochastic.weights)
    assert stochastic.iterations == (stochastic.evaluations - 1
                                     + stochastic.reference_evaluations + 1)


def test_a_singular_reference_falls_back_to_the_stochastic_search_alone(monkeypatch):
    """Where K̃ cannot be factored (NotPositiveDefinite in the reference's search), the
    search starts again on the stochastic criterion from ρ₀, with the first fit counted,
    and still reaches the exact optimum."""
    from stratlang.solvers import selection
    from stratlang.solvers.cholesky import NotPositiveDefinite

    def singular(*args, **kwargs):
        raise NotPositiveDefinite("the reference is singular (forced)")

    problem, penalty = _uneven()
    fit = newton_fit(problem, penalty, dispersion=True)
    start = [1.0, 1.0, 1.0]
    exact = select_weights(fit, penalty, "reml", start=start, method="exact")
    monkeypatch.setattr(selection, "_fellner_schall_steps", _raising_on_reference(singular))
    alone = select_weights(fit, penalty, "reml", start=start, method="stochastic",
                           options={"probes": 8})
    assert alone.method == "slq" and alone.converged
    assert alone.reference_evaluations == 0
    assert alone.evaluations > 6  # the whole stochastic search, no reference to lead it
    assert np.all(np.abs(np.log(alone.weights / exact.weights)) < 0.1 * exact.log_se)


def _raising_on_reference(raise_it):
    """``_fellner_schall_steps`` that raises on the reference criterion only."""
    from stratlang.solvers import selection

    original = selection._fellner_schall_steps

    def steps(target, *args, **kwargs):
        if getattr(target, "reference", False):
            raise_it()
        return original(target, *args, **kwargs)

    return steps
