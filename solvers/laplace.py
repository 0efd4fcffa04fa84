"""The Laplace-approximation engine: weights from the data (REML / ML / GCV) and the
posterior uncertainty of a stratified fit. Arrays and graphs in, arrays out; nothing
here knows the language. θ is (K, d), d = n·m (n parameter rows, m outputs), K = Π
factor sizes; the fit minimizes F(θ; w) = ℓ(θ) + ½ θᵀP(w)θ.

The interface (each name is defined in the module in brackets):

* ``QuadraticPenalty(factors, parts, n, m)`` [penalty] — P(w) = Σ_a w_a S_a with parts
  ``LaplacianPart(factor, rows=None)`` (a factor Laplacian on the parameter rows a mask
  marks), ``RidgePart(pattern)`` (a (K, d) diagonal ≥ 0) and ``InteractionPart(factors)``
  (L_a ⊗ L_b ⊗ … on every row). ``apply(w, X)``,
  ``apply_part(a, X)``, ``quadratics(θ)`` (½ θᵀS_aθ per part), ``matrix(w)``,
  ``null_basis(w)``, ``null_dim(w)``, ``pseudo_logdet(w)`` → ``LogDet`` (value, gradient
  in log w, null_dim, method): exact from the factors' eigenvalues when the ridges are
  the same on every stratum, by an anchored sparse Cholesky otherwise.
  ``QuadraticPenalty(..., reparametrization=T)``: coefficients held constant along
  factors or absent from some strata (fixed at 0) as θ = Tφ (``Reparametrization.
  constant_along(shape, constant, masks)`` [reparametrize], T orthonormal): log|TᵀPT|₊,
  its null space and ``free_matrix``/``free_part_matrix`` are φ's (a partial column's
  graph terms are its factors' induced subgraphs'), products stay θ's.
* ``LaplaceCurvature(blocks, penalty, w, method="auto")`` [curvature] — H = blockdiag
  (blocks (K, d, d), the loss's Hessian per stratum) + P(w): ``logdet()``, ``traces()``
  (tr(H⁻¹S_a) per part, then tr(H⁻¹B) = the effective degrees of freedom),
  ``inverse_blocks()`` ((K, d, d) diagonal blocks of H⁻¹), ``block_trace(M)``,
  ``solve(B)``, ``trace_pairs()`` (tr(H⁻¹S_aH⁻¹S_b), spectral method only). Each returns
  an ``Estimate(value, stderr, method)``: method "exact-cholesky" (stderr 0) up to
  ``EXACT_LIMIT`` coefficients; beyond, "exact-spectral" (stderr 0) when every stratum's
  block is the same and every ridge uniform (``spectral.uniform_curvature``: H is then a
  Kronecker sum, ``spectral.KroneckerReference``), else "slq" / "hutchinson-cv" /
  "monte-carlo". With a reparametrization everything is φ's (H_φ = TᵀHT; exact
  only, refused beyond ``EXACT_LIMIT`` free coefficients), in θ's coordinates: the blocks
  of T H_φ⁻¹ Tᵀ, ``solve`` B ↦ T H_φ⁻¹ TᵀB.
* ``InnerFit`` [selection] — what a fit at weights w returns: θ̂, ℓ(θ̂), the blocks, the
  number of records, whether φ is estimated (squared), the loss's known scale τ
  otherwise (the loss is τ times the NLL), the blocks' change along a
  direction (for the exact REML gradient), the deviance (GCV).
  ``InnerFit.from_problem(problem, θ̂, dispersion)`` builds it from a Newton
  ``SmoothProblem``.
* ``select_weights(fit, penalty, criterion="reml"|"ml"|"gcv", start, free, ...)``
  [selection] → ``Selection`` (weights, criterion, value, iterations, log_se per weight,
  unbounded per weight: None / "zero" / "infinite", converged, scale φ̂, method, the
  final InnerFit, ``covariance_scale`` τ). ``Criterion(fit, penalty, criterion)(log w)``
  → ``Evaluation`` (value, exact gradient in log w, the exact Hessian in log w where H
  is exact-spectral and the curvature constant, the InnerFit and the LaplaceCurvature
  at w). With a constant curvature and an exact-spectral H, evaluations after the first
  solve for θ̂ spectrally (``QuadraticLoss``) instead of calling the fit, and the answer
  is refitted to confirm. ``newton_fit(problem, penalty, dispersion)`` is a ready fit
  callback by the Newton solver; ``constrained_newton(problem, penalty, w, θ)`` polishes
  a solver's θ̂ in φ for a reparametrized penalty.

Uncertainty: the posterior covariance of θ is τ H⁻¹, τ = 2φ̂ for squared (its loss is 2φ
times the negative log-likelihood) and the loss's known scale ``InnerFit.scale`` for the
others (1, or 2 for a loss that is twice the NLL); a stratum's
covariance is τ · ``inverse_blocks()[k]``, a prediction's link-scale variance
τ x_iᵀ(H⁻¹)_kk x_i (verified against mgcv's ``predict(se.fit=TRUE)`` to 1e-8 in
benchmarks/reml_mgcv.py).

The criteria's definitions and conventions are in :mod:`solvers.selection`.
"""

from __future__ import annotations

from .curvature import EXACT_LIMIT, LaplaceCurvature
from .estimate import Estimate
from .penalty import InteractionPart, LaplacianPart, LogDet, QuadraticPenalty, RidgePart
from .reparametrize import Reparametrization
from .selection import (
    CRITERIA,
    Criterion,
    Evaluation,
    InnerFit,
    Selection,
    constrained_newton,
    newton_fit,
    select_weights,
)

__all__ = ["CRITERIA", "EXACT_LIMIT", "Criterion", "Estimate", "Evaluation", "InnerFit",
           "InteractionPart", "LaplaceCurvature", "LaplacianPart", "LogDet", "QuadraticPenalty",
           "Reparametrization", "RidgePart", "Selection", "constrained_newton", "newton_fit",
           "select_weights"]
