"""The ``eigen`` backend: eigen-stratified models (a spec's ``basis M`` statement).

θ, as a function on the K strata, is restricted to the span of the M eigenvectors of the
product-graph Laplacian with the smallest eigenvalues: θ = V β, with V (K × M) built from
the factors' eigenvectors (solvers.eigenbasis; the K × K Laplacian is never formed). As
V has orthonormal columns, the Laplacian term is ½ Σ_m λ_m ‖β_m‖² and a ``sum_squares``
term on a row is (λ/2)‖β_row‖², so the fit is a smooth problem in M × n × m variables,
solved by L-BFGS. θ = Vβ is what is reported, so prediction, plots and the objective are
those of any stratified model.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..data.design import Design
from ..kinds.regularizers import REGULARIZERS
from ..language import codes, ir
from ..language.errors import Diagnostic, NumericalError, SpecError, warn
from ..language.limits import basis_problem
from ..language.params import Options, Param, count, iterations, positive
from .base import Backend, StratifiedFit
from .objective import selected_rows, stratified_objective

EIGEN_OPTIONS = Options("backend 'eigen'", (
    Param("max_iter", type="int", default=10_000, check=iterations,
          doc="L-BFGS iteration limit"),
    Param("tol", default=1e-10, check=positive,
          doc="stop when the objective's relative decrease, or the largest gradient entry "
              "relative to the one at β = 0, falls below it"),
    Param("memory", type="int", default=20, check=count(1000),
          doc="L-BFGS history: the curvature pairs kept"),
))


ROUND_OFF_GRADIENT = 1e-6  # a largest gradient entry, relative to the one at β = 0


def unsupported(design: Design) -> str | None:
    """Why the eigen backend cannot fit this model, or None when it can."""
    if design.model.basis is None:
        return "it fits eigen-stratified models (a `basis` statement)"
    if design.model.wheres():
        return ("a `where` clause makes a term differ between strata, which the basis "
                "expansion does not separate; the cvxpy reference fits the model")
    if not design.loss.smooth:
        return (f"loss '{design.loss.name}' is not differentiable; the cvxpy reference fits "
                "its basis model")
    for term in design.model.regularizers:
        entry = REGULARIZERS[term.kind.name]
        if entry.quadratic_weight(1.0, term.kind.p) is None:
            return (f"regularizer '{entry.name}' is not smooth (the eigen backend takes zero "
                    "and sum_squares); the cvxpy reference fits its basis model")
    return None


def laplacian_basis(design: Design, weights: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """(eigenvalues (M,), V (K × M)): the model's basis at these graph weights; a basis
    larger than the strata is a positioned error."""
    from ..solvers.eigenbasis import product_basis

    model = design.model
    assert model.basis is not None  # only basis models get here
    k = design.strata.k
    if problem := basis_problem(model.basis, k):
        raise SpecError([Diagnostic(problem, model.basis_span, model.source, code=codes.TOO_LARGE)])
    graphs = design.strata.graphs()
    values, vectors, _ = product_basis(graphs, design.strata.gammas(weights), model.basis)
    return values, vectors


class EigenProblem:
    """The smooth objective in β (M, n, m) with its gradient, evaluated through θ = Vβ:
    each evaluation costs O(K·M·n·m + N·n·m), never N × M."""

    def __init__(self, design: Design, weights: dict[str, float], values: np.ndarray,
                 vectors: np.ndarray):
        self.design, self.values, self.vectors = design, values, vectors
        _, n, m = design.theta_shape
        self.shape = (vectors.shape[1], n, m)
        records = design.records
        self.x, self.z = records.x, records.z
        self.y = records.observed_y
        self.offset, self.weight = records.offset, records.weight
        self.params = design.loss_params
        self.ridge = np.zeros(n)  # Σ of the quadratic regularizers' weights, per row
        for term in design.model.regularizers:
            entry = REGULARIZERS[term.kind.name]
            q = entry.quadratic_weight(weights[term.hyper_name], term.kind.p)
            assert q is not None  # unsupported() refused the others
            self.ridge[selected_rows(design, term)] += q

    def theta(self, beta: np.ndarray) -> np.ndarray:
        m_count, n, m = self.shape
        k = self.vectors.shape[0]
        return (self.vectors @ beta.reshape(m_count, n * m)).reshape(k, n, m)

    def __call__(self, flat: np.ndarray) -> tuple[float, np.ndarray]:
        _, n, m = self.shape
        beta = flat.reshape(self.shape)
        theta = self.theta(beta)
        pred = np.einsum("ij,ijo->io", self.x, theta[self.z])
        if self.offset is not None:
            pred = pred + self.offset[:, None]
        loss = self.design.loss
        value = loss.value(pred, self.y, self.params, self.weight)
        g_pred = loss.gradient(pred, self.y, self.params)
        assert g_pred is not None  # (unsupported() turns away a loss that is not smooth)
        if self.weight is not None:
            g_pred = g_pred * self.weight[:, None]
        k = self.vectors.shape[0]
        g_theta = np.empty((k, n, m))
        for j in range(n):  # Σ over each stratum's records of xᵢⱼ ∂ℓᵢ
            for o in range(m):
                g_theta[:, j, o] = np.bincount(self.z, self.x[:, j] * g_pred[:, o], minlength=k)
        grad = (self.vectors.T @ g_theta.reshape(k, n * m)).reshape(self.shape)
        # ½ Σ λ_m ‖β_m‖² + Σ_rows (q/2) ‖β_row‖², as V's columns are orthonormal
        scale = self.values[:, None, None] + self.ridge[None, :, None]
        value += 0.5 * float(np.sum(scale * beta ** 2))
        grad += scale * beta
        return value, grad.reshape(-1)


def fit_eigen(design: Design, weights: dict[str, float], options: dict[str, Any],
              warm: Any = None) -> tuple[np.ndarray, dict[str, Any], Any]:
    from scipy.optimize import minimize

    start = time.perf_counter()
    values, vectors = laplacian_basis(design, weights)
    problem = EigenProblem(design, weights, values, vectors)
    gammas = tuple(design.strata.gammas(weights))
    start_beta = (warm[1] if isinstance(warm, tuple) and warm[0] == gammas
                  and warm[1].shape == problem.shape else np.zeros(problem.shape))
    first_value, first_grad = problem(start_beta.reshape(-1))
    if not (np.isfinite(first_value) and np.all(np.isfinite(first_grad))):
        raise NumericalError(f"the eigen backend's objective is not finite at its start "
                             f"({first_value:.3g}); check the data's scale")
    # the gradient tolerance is relative to the gradient at β = 0, not at the start: a
    # warm start at the optimum has a round-off gradient, against which no tolerance can
    # be met (L-BFGS-B's line search then fails there, "ABNORMAL")
    cold_grad = first_grad if not np.any(start_beta) else problem(np.zeros(start_beta.size))[1]
    scale = max(1.0, float(np.max(np.abs(cold_grad))))
    result = minimize(problem, start_beta.reshape(-1), jac=True, method="L-BFGS-B",
                      options={"maxiter": options["max_iter"], "maxcor": options["memory"],
                               "ftol": options["tol"], "gtol": options["tol"] * scale})
    beta = result.x.reshape(problem.shape)
    final_value, final_grad = problem(result.x)
    if not (np.isfinite(final_value) and np.all(np.isfinite(beta))):
        raise NumericalError(f"the eigen backend diverged: the objective is {final_value:.3g} "
                             f"after {result.nit} iterations; the cvxpy reference fits this "
                             "basis model too", cli=None)
    gradient_max = float(np.max(np.abs(final_grad)))
    # a line search that cannot decrease f where the gradient is this small has found the
    # minimum to the precision of f (a warm start at the optimum ends so at once)
    at_round_off = ("ABNORMAL" in str(result.message)
                    and gradient_max <= ROUND_OFF_GRADIENT * scale)
    converged = bool(result.success) or at_round_off
    if not converged:
        warn(f"the eigen backend did not converge in {result.nit} iterations ({result.message})"
             f": largest gradient entry {np.max(np.abs(final_grad)):.3g} (tolerance "
             f"{options['tol'] * scale:.3g}); raise max_iter or loosen tol")
    info = {"solver": f"L-BFGS on {vectors.shape[1]} eigenvectors",
            "status": "optimal" if converged else "max_iter", "converged": converged,
            "iterations": int(result.nit), "evaluations": int(result.nfev),
            "basis": int(vectors.shape[1]), "basis_eigenvalues": [float(values[0]),
                                                                   float(values[-1])],
            "gradient_max": gradient_max,
            "solve_time": time.perf_counter() - start}
    if at_round_off:
        info["note"] = ("the line search could not decrease the objective further, at a "
                        f"gradient of {gradient_max:.2g}: the minimum to round-off")
    return problem.theta(beta), info, (gammas, beta)


class EigenBackend(Backend):
    name = "eigen"
    doc = ("Eigen-stratified models (`basis M`): θ = V β over the M smoothest eigenvectors of "
           "the product graph (Kronecker products of the factors' eigenvectors; the K × K "
           "Laplacian is never formed), L-BFGS on the M × n coefficients; smooth losses with "
           "zero or sum_squares regularizers.")
    automatic = 2
    chosen = "automatically for `basis` models (first choice)"
    options = EIGEN_OPTIONS

    def applies(self, model: ir.CheckedModel) -> bool:
        return model.basis is not None

    def unsupported(self, design: Design) -> str | None:
        return unsupported(design)

    def memory(self, design: Design, options: dict[str, Any]) -> int | None:
        k, n, m = design.theta_shape
        basis = design.model.basis or 1
        # V, θ and its gradient, and L-BFGS's history of M·n·m vectors
        return 8 * (k * basis + 2 * k * n * m + 2 * (options["memory"] + 2) * basis * n * m)

    def fit(self, design: Design, weights: dict[str, float], options: dict[str, Any],
            warm: Any = None) -> StratifiedFit:
        start = time.perf_counter()
        theta, info, state = fit_eigen(design, weights, options, warm)
        info.update(backend=self.name, fit_seconds=time.perf_counter() - start)
        objective = stratified_objective(design, theta, weights)
        return StratifiedFit.of(design, theta, info, objective, warm=state)
