"""Uncertainty of a stratified fit whose loss is a negative log-likelihood.

With quadratic penalties only, the objective F(θ) = ℓ(θ) + ½ θᵀPθ is a negative log
posterior (a Gaussian Markov random field prior of precision P), so the posterior of θ is
approximately normal with covariance φ·H⁻¹, H = ∇²ℓ(θ̂) + P (Laplace's approximation; exact
for squared). φ is the loss's known scale τ (the loss is τ times the negative
log-likelihood: 1, or 2 for gaussian), except for a loss with a dispersion (squared: the
loss Σ w r² is 2σ² times the negative log-likelihood, so φ = 2σ̂², σ̂² = Σ w r² / (n − edf)
as mgcv's Pearson estimate, n the records with a positive weight times the outputs). A
loss of each stratum's θ whole (gaussian's (S, ν), S symmetric) is approximated over θ's
free coordinates, and the covariance mapped back to the stored entries
(backends.free_coordinates).

What is computed here (all at θ̂, from the training design):
* the K stratum (d × d) blocks of φ·H⁻¹: standard errors (their diagonals), intervals,
  and a prediction's link-scale covariance (x ⊗ I)ᵀ C_kk (x ⊗ I);
* effective degrees of freedom: in all tr(H⁻¹∇²ℓ) = K·d − tr(H⁻¹P); per penalty term
  a (a stratify factor's Laplacian, a quadratic regularizer) the SOP split (Rodríguez-
  Álvarez et al. 2019) edf_a = w_a tr(P⁺P_a) − w_a tr(H⁻¹P_a), and the unpenalized
  directions K·d − rank P: the parts add up to the total;
* deviance explained 1 − (ℓ̂ − ℓ_sat)/(ℓ₀ − ℓ_sat) (ℓ₀: one common predictor for every
  record) and AIC = −2 log L + 2·edf (+2 for an estimated dispersion).

The penalty is the one the auto weights are chosen under (backends.selection.prior): with
rows held constant along factors or present in some strata only, H, P and the edf are
those of the free coefficients θ = Tφ, and θ's covariance φ·T H_φ⁻¹ Tᵀ (exact only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .backends.free_coordinates import (
    free_penalty,
    stored_blocks,
    stored_solve,
    strata_likelihood,
)
from .backends.weight_spread import INCLUDED, WeightSpread
from .language.errors import NumericalError, StratlangError

if TYPE_CHECKING:
    from .data.design import Design


AUTOMATIC = 3_000  # K·d up to which the summary, save and pictures compute it unasked
METHOD = "auto"  # the engine's: exact up to solvers.curvature.EXACT_LIMIT, stochastic beyond


def not_computed(size: int) -> str:
    """Why a large fit shows no standard errors unasked."""
    return (f"no standard errors: not computed unasked for K·d = {size:,} parameters "
            f"(> {AUTOMATIC:,}); fitted.theta_se computes them (before save, to keep them; "
            "`stratlang fit --standard-errors`)")


class NoUncertainty(StratlangError):
    """The fit has no posterior reading: standard errors and intervals are refused."""


@dataclass(frozen=True)
class Penalty:
    """One quadratic penalty term: its name (the weight's), a description, and its
    weight w_a (P_a = w_a S_a)."""

    name: str
    label: str
    weight: float


@dataclass
class Uncertainty:
    """The posterior covariance's stratum blocks and what the summary reports."""

    blocks: np.ndarray  # (K, d, d) φ·(H⁻¹)_kk
    dispersion: float  # φ (the loss's known scale without a dispersion)
    method: str  # how H⁻¹'s blocks were computed: 'exact-cholesky', 'monte-carlo', …
    stderr: float  # the relative standard error of a Monte Carlo estimate (0: exact)
    edf: dict[str, float]  # per penalty term, 'unpenalized', and 'total'
    deviance_explained: float | None
    aic: float | None
    scale: float | None = None  # σ̂² for squared (φ/2)
    solve: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)
    # auto weights: their own uncertainty, added unless asked for the conditional one
    spread: WeightSpread | None = None

    def covariance(self, conditional: bool = False) -> np.ndarray:
        """(K, d, d) stratum blocks: φ·(H⁻¹)_kk, plus the chosen weights' uncertainty
        unless ``conditional`` (on the weights, as if they were fixed)."""
        if conditional or self.spread is None:
            return self.blocks
        return self.blocks + self.spread.blocks()

    def se(self, conditional: bool = False) -> np.ndarray:
        """(K, d) standard errors (see :meth:`covariance`)."""
        blocks = self.covariance(conditional)
        return np.sqrt(np.maximum(np.einsum("kii->ki", blocks), 0.0))

    def info(self) -> dict[str, Any]:
        """What fitted.info reports (JSON scalars)."""
        out: dict[str, Any] = {"uncertainty_method": self.method,
                               "uncertainty_stderr": self.stderr,
                               "dispersion": self.dispersion,
                               "edf": self.edf["total"],
                               "weights_uncertainty_included": self.spread is not None}
        if self.scale is not None:
            out["scale"] = self.scale
        if self.deviance_explained is not None:
            out["deviance_explained"] = self.deviance_explained
        if self.aic is not None:
            out["aic"] = self.aic
        return out


def unsupported(design: Design) -> str | None:
    """Why the fit of ``design`` has no standard errors, in words; None when it has."""
    from .kinds.regularizers import REGULARIZERS

    loss = design.loss
    if design.model.kind != "stratified":
        return "a personalized model is not a penalized likelihood"
    if loss.likelihood is None:
        return (f"loss '{loss.name}' is not read as a negative log-likelihood, so the fit "
                "has no posterior to take standard errors from (a likelihood loss, e.g. "
                "squared, logistic or poisson_regression, has one)")
    if design.model.basis is not None:
        return "θ is restricted to a basis (`basis`)"
    for term in design.model.regularizers:
        entry = REGULARIZERS[term.kind.name]
        if entry.is_constraint:
            return (f"the constraint '{entry.name}' bounds θ, and a normal approximation "
                    "ignores bounds: drop it to get standard errors")
        if entry.quadratic_weight(1.0, term.kind.p) is None:
            return (f"regularizer '{entry.name}' is not quadratic, so the objective is not a "
                    "Gaussian prior's (sum_squares is)")
    whole = strata_likelihood(design) is not None
    for part in design.loss_parts():
        if why := loss.likelihood_refusal(part.params):
            return why
        if not whole and loss.likelihood_unit(part.params) is None:
            return f"loss '{loss.name}' gives no curvature per record"
    return None


# ---- the Hessian's pieces ----------------------------------------------------------
@dataclass
class Curvature:
    """H = blocks + P, and the penalty's parts (P = Σ_a w_a S_a; with rows held constant
    along factors, taken over their free coordinates θ = Tφ)."""

    blocks: np.ndarray  # (K, d, d) ∇²ℓ per stratum
    penalty: Any  # solvers.penalty.QuadraticPenalty
    penalties: list[Penalty]
    # a loss of θ whole: Q (stored d × free f); the rest is then over θ's free coordinates
    basis: np.ndarray | None = None

    @property
    def k(self) -> int:
        return self.blocks.shape[0]

    @property
    def d(self) -> int:
        return self.blocks.shape[1]

    @property
    def weights(self) -> list[float]:
        return [p.weight for p in self.penalties]


def curvature(design: Design, theta: np.ndarray, weights: dict[str, float]) -> Curvature:
    """∇²ℓ's stratum blocks at θ (K, n, m) and the penalty parts of ``design``: the prior
    the weights are chosen under (backends.selection), every weight fixed; over θ's free
    coordinates for a loss of θ whole (backends.free_coordinates)."""
    from .backends.selection import prior

    built = prior(design, weights)
    penalties = [Penalty(p.name, p.name, p.value) for p in built.parts]
    strata = strata_likelihood(design)
    if strata is None:
        return Curvature(_record_blocks(design, theta), built.penalty, penalties)
    return Curvature(strata.derivatives(strata.to_free(theta))[2],
                     free_penalty(built.penalty, strata.basis), penalties, strata.basis)


def _record_blocks(design: Design, theta: np.ndarray) -> np.ndarray:
    """∇²ℓ's stratum blocks from each record's curvature in its linear predictor."""
    from .solvers.hessian import RecordStatistics

    k, _n, m = design.theta_shape
    records = design.records
    d2 = None
    for part in design.loss_parts():
        part_records = part.of(design.records)
        pred = part_records.predictor(theta[part_records.z])
        unit = design.loss.likelihood_unit(part.params)
        assert unit is not None  # unsupported() refused the others
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            each = np.asarray(unit.derivatives(pred, part_records.observed_y)[2], dtype=float)
        if d2 is None:
            d2 = np.zeros((len(records), *each.shape[1:]))
        rows = slice(None) if part.records is None else part.records
        d2[rows] = each
    assert d2 is not None
    if records.weight is not None:
        d2 = d2 * (records.weight[:, None] if d2.ndim == 2 else records.weight[:, None, None])
    if not np.all(np.isfinite(d2)):
        raise NumericalError("the loss's curvature is not finite at the fit (a prediction "
                             "overflows, or a rate or probability sits at its bound): no "
                             "standard errors")
    out: np.ndarray = RecordStatistics(records.x, records.z, k, m).blocks(d2)
    return out


@dataclass
class Inverse:
    """What the uncertainty needs of H⁻¹."""

    blocks: np.ndarray  # (K, d, d)
    traces: list[float]  # tr(H⁻¹P_a) per penalty part (weight applied)
    data_trace: float  # tr(H⁻¹∇²ℓ)
    plus_traces: list[float]  # tr(P⁺P_a) per part (weight applied)
    penalized_rank: int
    method: str
    stderr: float
    solve: Callable[[np.ndarray], np.ndarray]
    size: int  # the free coefficients: K·d less the copies along factors and absent entries


def engine_inverse(curv: Curvature) -> Inverse:
    """H⁻¹'s blocks and traces by the Laplace engine (solvers.curvature): exact by sparse
    Cholesky and selected inversion up to its EXACT_LIMIT coefficients, Monte Carlo with
    a stated error beyond (rows held constant along factors or present in some strata
    only: exact only)."""
    from .solvers.cholesky import NotPositiveDefinite
    from .solvers.curvature import LaplaceCurvature

    penalty = curv.penalty
    weights = curv.weights
    try:
        engine = LaplaceCurvature(curv.blocks, penalty, weights, method=METHOD)
    except ValueError as error:  # (beyond the exact limit with θ = Tφ: exact only)
        raise NoUncertainty(f"no standard errors: {error}") from None
    try:
        blocks = engine.inverse_blocks()
        traces = engine.traces()
    except NotPositiveDefinite:
        raise NumericalError(_singular()) from None
    except ImportError:  # (an engine without its stochastic estimators)
        raise NoUncertainty(f"no standard errors: K·d = {curv.k * curv.d:,} parameters is "
                            "beyond the exact factorization, and this installation has no "
                            "Monte Carlo estimator") from None
    weighted = np.asarray(weights) * np.asarray(traces.value)[:-1]
    size = penalty.free_size
    if penalty.parts:
        plus = penalty.pseudo_logdet(weights)
        plus_traces, null = list(plus.gradient), plus.null_dim
    else:
        plus_traces, null = [], size
    stderr = 0.0
    if not blocks.exact:
        variances = np.einsum("kii->ki", blocks.value)
        errors = np.einsum("kii->ki", np.asarray(blocks.stderr))
        stderr = float(np.sqrt(np.mean((errors / np.maximum(variances, 1e-300)) ** 2)))

    def solve(rhs: np.ndarray) -> np.ndarray:  # (K·d, columns)
        columns = [engine.solve(rhs[:, j].reshape(curv.k, curv.d)).reshape(-1)
                   for j in range(rhs.shape[1])]
        return np.column_stack(columns)

    return Inverse(np.asarray(blocks.value), list(weighted), float(traces.value[-1]),
                   plus_traces, size - null, blocks.method, stderr, solve, size)


CONDITION_LIMIT = 1e12  # (H⁻¹)_ii H_ii beyond which rounding decides the variance


def _check_determined(curv: Curvature, blocks: np.ndarray) -> None:
    """Refuses a Hessian singular to rounding: (H⁻¹)_ii · H_ii ≥ 1 always, and beyond
    CONDITION_LIMIT the factorization went through on a pivot rounding left positive."""
    diagonal = np.einsum("kii->ki", curv.blocks) + curv.penalty.diagonal(curv.weights)
    ratio = np.einsum("kii->ki", blocks) * diagonal
    if not np.all(np.isfinite(ratio)) or np.max(ratio, initial=0.0) > CONDITION_LIMIT:
        raise NumericalError(_singular())


def _singular() -> str:
    return ("the Hessian H = ∇²loss + P is singular at the fit: some direction of θ is "
            "determined neither by the data nor by a penalty (e.g. strata without data on "
            "an island of the graph, an unpenalized row no record informs, or multinomial's "
            "shift of every class together), so its standard error is infinite; add a "
            "sum_squares term (over that row) or a graph weight")


# ---- the whole computation --------------------------------------------------------------
def compute(design: Design, theta: np.ndarray, weights: dict[str, float],
            spread: WeightSpread | None = None) -> Uncertainty:
    """The uncertainty of the fit θ (K, n, m) of ``design`` at ``weights`` (``spread``:
    the uncertainty of the weights chosen from the data, None when all were fixed)."""
    why = unsupported(design)
    if why is not None:
        raise NoUncertainty(f"no standard errors: {why}")
    curv = curvature(design, theta, weights)
    inverse = engine_inverse(curv)
    _check_determined(curv, inverse.blocks)
    if curv.basis is not None:  # ψ's covariance as the stored entries'
        inverse.blocks = stored_blocks(inverse.blocks, curv.basis)
        inverse.solve = stored_solve(inverse.solve, curv.basis, curv.k)
    size = inverse.size
    edf_total = inverse.data_trace
    edf = {p.name: plus - trace for p, plus, trace in
           zip(curv.penalties, inverse.plus_traces, inverse.traces, strict=True)}
    edf["unpenalized"] = float(size - inverse.penalized_rank)
    edf["total"] = edf_total
    fit = _fit_statistics(design, theta)
    dispersion, scale = 1.0, None
    if design.loss.likelihood is not None:  # (the loss is τ times the NLL: τ H⁻¹)
        dispersion = design.loss.likelihood.scale
    if design.loss.likelihood is not None and design.loss.likelihood.dispersion:
        n = fit["n"]
        if n <= edf_total:
            raise NumericalError(f"the dispersion cannot be estimated: {n:g} observations "
                                 f"for {edf_total:.4g} effective degrees of freedom")
        scale = fit["loss"] / (n - edf_total)
        dispersion = 2.0 * scale
    aic = _aic(design, fit, edf_total)
    return Uncertainty(dispersion * inverse.blocks, dispersion, inverse.method,
                       inverse.stderr, edf, fit["explained"], aic, scale,
                       _scaled(inverse.solve, dispersion), spread)


def _scaled(solve: Callable[[np.ndarray], np.ndarray], factor: float
            ) -> Callable[[np.ndarray], np.ndarray]:
    return lambda rhs: factor * solve(rhs)


def _fit_statistics(design: Design, theta: np.ndarray) -> dict[str, Any]:
    """The summed loss at the fit, at the best common predictor and at the saturated
    model; the log-likelihood; the number of observations."""
    loss = design.loss
    fitted_total = null_total = saturated_total = nll_total = 0.0
    nll_known = True
    n = 0.0
    for part in design.loss_parts():
        records = part.of(design.records)
        y = records.observed_y
        w = np.ones(len(records)) if records.weight is None else records.weight
        fitted_total += loss.records_value(records, theta[records.z], part.params)
        with np.errstate(divide="ignore", invalid="ignore"):
            saturated_total += float(w @ loss.saturated(y, part.params))
            nll = loss.records_nll(records, theta[records.z], part.params)
        if np.isfinite(saturated_total):  # (else no deviance: no null model needed)
            null_total += _null_value(loss, records, part.params)
        if nll is None:
            nll_known = False
        else:
            nll_total += float(w @ nll)
        n += float(np.sum(w > 0)) * y.shape[1]
    explained = None
    spread = null_total - saturated_total
    if np.isfinite(spread) and spread > 0:
        explained = 1.0 - (fitted_total - saturated_total) / spread
    if loss.likelihood is not None and loss.likelihood.dispersion:
        # y ~ N(η, σ²/w), σ² at its maximum-likelihood value Σ w r² / n
        w_all = design.records.weight
        log_w = 0.0 if w_all is None else float(np.sum(np.log(w_all[w_all > 0])))
        outputs = design.records.observed_y.shape[1]
        sigma2 = fitted_total / n
        nll_total = 0.5 * (n * np.log(2 * np.pi * sigma2) + n - outputs * log_w)
        nll_known = True
    return {"loss": fitted_total, "explained": explained, "n": n,
            "nll": nll_total if nll_known else None}


def _null_value(loss: Any, records: Any, params: dict[str, Any]) -> float:
    """The summed loss at the best single predictor shared by every record (the offset
    kept): the null model of the deviance explained."""
    from scipy.optimize import minimize

    y = records.observed_y
    m = y.shape[1]
    offset = 0.0 if records.offset is None else records.offset[:, None]
    pooled = getattr(loss, "pooled", None)
    if pooled is not None:  # a distribution: the parameter is the prediction itself
        w = np.ones(len(y)) if records.weight is None else records.weight
        count, total = float(np.sum(w)), float(w @ y[:, 0])
        value = loss.clip(pooled(count, total), params.get("eps", 0.0))
        if hasattr(loss, "upper"):
            value = min(value, loss.upper - params.get("eps", 0.0))
        return float(loss.value(np.full((len(y), 1), value), y, params, records.weight))

    def objective(c: np.ndarray) -> float:
        with np.errstate(over="ignore", invalid="ignore"):
            v = loss.value(c[None, :] + offset, y, params, records.weight)
        return v if np.isfinite(v) else 1e300

    best = minimize(objective, np.zeros(m), method="BFGS", options={"gtol": 1e-10})
    return float(best.fun)


def _aic(design: Design, fit: dict[str, Any], edf: float) -> float | None:
    if fit["nll"] is None:
        return None
    loss = design.loss
    extra = 1.0 if loss.likelihood is not None and loss.likelihood.dispersion else 0.0
    return 2.0 * fit["nll"] + 2.0 * (edf + extra)


# ---- predictions -------------------------------------------------------------------------
def normal_quantile(level: float, argument: str = "level") -> float:
    """z with P(|Z| ≤ z) = level; a bad level is an error naming the caller's ``argument``."""
    from scipy.stats import norm

    if not (isinstance(level, float | int) and not isinstance(level, bool) and 0 < level < 1):
        raise StratlangError(f"{argument}={level!r}: expected a probability strictly between "
                             "0 and 1 (e.g. 0.95)")
    return float(norm.ppf(0.5 + level / 2))


def mean_blocks(solve: Callable[[np.ndarray], np.ndarray], weights: np.ndarray, d: int
                ) -> np.ndarray:
    """The covariance block of Σ_k a_k θ_k for one averaging vector ``a`` (K,):
    (a ⊗ I)ᵀ C (a ⊗ I), by d solves."""
    rhs = np.kron(weights[:, None], np.eye(d))  # (K·d, d)
    out: np.ndarray = rhs.T @ solve(rhs)
    return 0.5 * (out + out.T)


def frame_like(values: np.ndarray, like: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(values, index=like.index, columns=like.columns)


def record_blocks(uncertainty: Uncertainty, design: Design, shape: tuple[int, ...],
                  conditional: bool = False) -> np.ndarray:
    """Each record's covariance block (N, d, d): its stratum's; for a value the fit has not
    seen (``unseen='common'``), the block of the mean over that factor's nodes (by solves
    with H: exact, but only while the training design is at hand)."""
    z = design.z
    stratum_blocks = uncertainty.covariance(conditional)
    if design.codes is None or np.all(z >= 0):
        each: np.ndarray = stratum_blocks[z]
        return each
    if uncertainty.solve is None:
        why = ("needs the covariance of the averaged model, which is computed from the "
               "training data: a loaded model has only each stratum's own; refit")
        raise StratlangError(
            f"an interval for a stratum the fit has not seen (unseen='common') {why}, or use "
            "unseen='hub' (a star graph's hub)",
            cli=f"an interval for a stratum the fit has not seen (--unseen common) {why} "
                "(stratlang fit … --out), or use --unseen hub (a star graph's hub)")
    d = uncertainty.blocks.shape[1]
    out = np.empty((len(z), d, d))
    known = z >= 0
    out[known] = stratum_blocks[z[known]]
    grid = np.arange(int(np.prod(shape))).reshape(shape)
    codes = design.codes
    for row in {tuple(c) for c in codes[~known]}:
        weights = np.zeros(grid.size)
        index = tuple(slice(None) if c < 0 else c for c in row)
        chosen = grid[index].reshape(-1)
        weights[chosen] = 1.0 / len(chosen)
        block = mean_blocks(uncertainty.solve, weights, d)
        if not conditional and uncertainty.spread is not None:
            block = block + uncertainty.spread.mean_block(weights)
        out[~known & np.all(codes == np.array(row), axis=1)] = block
    return out


def prediction_intervals(fitted: Any, design: Design, theta: np.ndarray, level: float,
                         conditional: bool = False
                         ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(lower, upper) of each numeric prediction of ``design``'s records (θ (N, n, m)
    each record's), on the response scale: the link-scale interval η ± z·sd mapped
    through the loss's prediction."""
    z_level = normal_quantile(level)
    uncertainty = fitted.uncertainty
    blocks = record_blocks(uncertainty, design, fitted.strata.shape, conditional)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for part in design.loss_parts():
        rows = np.arange(len(design.z)) if part.records is None else part.records
        records = design.records.subset(rows)
        got = design.loss.records_interval(records, theta[rows], blocks[rows], z_level,
                                           part.params, fitted.classes)
        for key, (low, high) in got.items():
            if key not in out:
                out[key] = (np.empty((len(design.z), *low.shape[1:])),
                            np.empty((len(design.z), *high.shape[1:])))
            out[key][0][rows], out[key][1][rows] = low, high
    return out


# ---- persistence ----------------------------------------------------------------------------
def saved(uncertainty: Uncertainty | None, refused: str | None
          ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON object and arrays a saved fit keeps of its uncertainty (or of why it has
    none)."""
    if uncertainty is None:
        return {"refused": refused or "no standard errors"}, {}
    doc: dict[str, Any] = {"method": uncertainty.method, "stderr": uncertainty.stderr,
                           "dispersion": uncertainty.dispersion, "edf": dict(uncertainty.edf)}
    for key in ("scale", "deviance_explained", "aic"):
        value = getattr(uncertainty, key)
        if value is not None and np.isfinite(value):
            doc[key] = float(value)
    arrays = {"covariance": uncertainty.blocks}
    if uncertainty.spread is not None:
        arrays["weight_directions"] = uncertainty.spread.directions
        arrays["weight_covariance"] = uncertainty.spread.covariance
    return doc, arrays


def from_saved(doc: dict[str, Any], blocks: np.ndarray,
               spread: WeightSpread | None = None) -> Uncertainty:
    """The uncertainty a saved fit kept (no solves: the training data are not at hand)."""
    return Uncertainty(blocks, doc["dispersion"], doc["method"], doc["stderr"],
                       dict(doc["edf"]), doc.get("deviance_explained"), doc.get("aic"),
                       doc.get("scale"), spread=spread)


# ---- reporting ------------------------------------------------------------------------------
def method_text(uncertainty: Uncertainty) -> str:
    """How H⁻¹ was computed, in words."""
    if uncertainty.stderr:
        return f"{uncertainty.method} (relative error of the variances ≈ {uncertainty.stderr:.2g})"
    return f"{uncertainty.method} (exact)" if uncertainty.method.startswith("exact") else \
        uncertainty.method


def summary_lines(uncertainty: Uncertainty | None, unasked: str | None = None) -> list[str]:
    """The summary's lines on uncertainty: how it was computed, the dispersion, the
    effective degrees of freedom per term, the deviance explained and AIC; for a large
    fit not asked for them, that they were not computed."""
    if uncertainty is None:  # (a refusal is said when standard errors are asked for)
        return [unasked] if unasked else []
    scale = (f", dispersion φ {uncertainty.dispersion:.4g} (σ² {uncertainty.scale:.4g})"
             if uncertainty.scale is not None else "")
    included = f", {INCLUDED}" if uncertainty.spread is not None else ""
    lines = [f"standard errors: {method_text(uncertainty)}{scale}{included}"]
    terms = ", ".join(f"{name} {value:.3g}" for name, value in uncertainty.edf.items()
                      if name != "total")
    lines.append(f"effective degrees of freedom {uncertainty.edf['total']:.4g}"
                 + (f" ({terms})" if terms else ""))
    fit = []
    if uncertainty.deviance_explained is not None:
        fit.append(f"deviance explained {100 * uncertainty.deviance_explained:.3g}%")
    if uncertainty.aic is not None:
        fit.append(f"AIC {uncertainty.aic:.6g}")
    if fit:
        lines.append(", ".join(fit))
    return lines
