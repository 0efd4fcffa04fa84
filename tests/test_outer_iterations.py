"""The outer search's cost: the criterion's exact Hessian in log w on the exact
(Cholesky) path, the curvature's change included (solvers.selection._cholesky_hessian),
and the few evaluations it leaves the search."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import stratlang
from stratlang.solvers.selection import Criterion, select_weights

from . import test_gaussian_laplace as gaussian
from . import test_laplace as plain
from . import test_laplace_structure as structure


def _gradient_differences(criterion: Criterion, rho: np.ndarray, theta: np.ndarray,
                          step: float = 1e-5) -> np.ndarray:
    """∂²V/∂ρ² by central differences of the engine's exact gradient, each evaluation
    warm-started from the same θ̂."""
    columns = []
    for a in range(len(rho)):
        shift = np.zeros(len(rho))
        shift[a] = step
        criterion.theta = theta
        up = criterion(rho + shift).gradient
        criterion.theta = theta
        down = criterion(rho - shift).gradient
        columns.append((up - down) / (2 * step))
    return np.array(columns).T


@pytest.mark.parametrize("loss", ["squared", "poisson", "logistic", "exponential",
                                  "multinomial"])
def test_the_exact_hessian_matches_differences_of_the_exact_gradient(loss):
    model, w = plain._model(loss)
    penalty, fit = plain._engine(model)
    criterion = Criterion(fit, penalty, "reml")
    rho = np.log(w)
    evaluation = criterion(rho)
    assert evaluation.method == "exact-cholesky" and evaluation.hessian is not None
    expected = _gradient_differences(criterion, rho, evaluation.fit.theta)
    np.testing.assert_allclose(evaluation.hessian, expected, rtol=1e-6,
                               atol=1e-6 * np.max(np.abs(expected)))


@pytest.mark.parametrize("loss", ["squared", "poisson", "logistic"])
def test_the_exact_hessian_over_coefficients_held_constant_along_factors(loss):
    """With θ = Tφ (solvers.reparametrize) every matrix is taken in φ."""
    model, w = structure._model(loss, interaction=True)
    penalty, fit = structure._engine(model)
    criterion = Criterion(fit, penalty, "reml")
    rho = np.log(w)
    evaluation = criterion(rho)
    assert penalty.reparametrization is not None and evaluation.hessian is not None
    expected = _gradient_differences(criterion, rho, evaluation.fit.theta)
    np.testing.assert_allclose(evaluation.hessian, expected, rtol=1e-6,
                               atol=1e-6 * np.max(np.abs(expected)))


def test_without_the_curvature_s_second_change_the_hessian_is_left_to_differences():
    model, w = plain._model("poisson")
    penalty, fit = plain._engine(model)

    def first_only(weights, warm):
        return dataclasses.replace(fit(weights, warm), block_second=None)

    assert Criterion(first_only, penalty, "reml")(np.log(w)).hessian is None


@pytest.mark.parametrize("loss", ["poisson", "logistic"])
def test_the_search_takes_few_evaluations_and_ends_at_the_dense_optimum(loss):
    """Three weights from a start a decade or more off: two Fellner–Schall steps, then
    Newton with the exact Hessian (the loop with a differences' Hessian at every Newton
    step, and one more by central differences for the standard errors, took 16 and 17
    evaluations here)."""
    model, _ = plain._model(loss, seed=1)
    penalty, fit = plain._engine(model)
    selection = select_weights(fit, penalty, "reml", start=[1.0, 1.0, 1.0])
    assert selection.converged and selection.iterations <= 8
    best = model.select(np.log(selection.weights))
    np.testing.assert_allclose(selection.weights, np.exp(best), rtol=1e-6)
    se = np.sqrt(np.diag(np.linalg.inv(model.hessian(best))))
    np.testing.assert_allclose(selection.log_se, se, rtol=1e-3)


def test_the_gaussian_loss_over_free_coordinates_has_the_exact_hessian_too():
    """kinds.gaussian_natural's curvature change is exact (a complex step); its second
    change by a central difference of it gives the exact Hessian: REML's single weight in
    7 evaluations (11 with a differences' Hessian), at the dense reference's optimum."""
    frame = gaussian._frame()
    fitted = stratlang.load(gaussian._spec("auto")).fit(frame, select="reml")
    report = fitted.info["selection"]
    assert report["converged"] and report["iterations"] <= 8
    chosen = fitted.weights["stratify.s"]
    reference = gaussian._reference(frame, False, "isometric")
    start = reference.free(fitted.theta_array)
    best = reference.select(start, (np.log(chosen) - 1, np.log(chosen) + 1), "reml")
    assert chosen == pytest.approx(best, rel=1e-6)
