"""The loss registry: one entry per loss, holding everything about it.

Conventions (those of the stratified paper's implementation): losses are *summed* over
records, with no ½ and no 1/N. A model's parameter for one stratum is a matrix θ of
shape (rows, outputs); the linear predictor of a record is ``xᵀθ + o`` (one value per
output; o the record's offset, 0 without one), and each record's loss is multiplied by
its weight (1 without one). Distribution losses have no features: their single row is the
distribution's parameter itself (a probability or a rate), kept inside its domain by
``eps``; a weight then counts a record that many times.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..language.params import Param, in_open_unit, interval, nonnegative, positive
from ..language.vocabulary import Registry
from ..solvers import pointwise as pw
from ..solvers import prox as px
from . import metrics

if TYPE_CHECKING:  # CVXPY is imported when a CVXPY form is built, not with the registry
    import cvxpy as cp

LOSSES: Registry[Loss] = Registry("loss")
px_type = Callable[[np.ndarray, float], np.ndarray]


def linear_predictor(x: np.ndarray, theta_rec: np.ndarray) -> np.ndarray:
    """xᵢᵀθᵢ for every record, θᵢ its stratum's parameter: (N, n), (N, n, m) → (N, m)."""
    return np.einsum("in,inm->im", x, theta_rec)


@dataclass(frozen=True)
class Records:
    """What a loss sees of the data: features, encoded response (None when predicting),
    stratum of each record, and optionally an offset (added to every output's linear
    predictor) and a nonnegative weight per record."""

    x: np.ndarray  # (N, n)
    y: np.ndarray | None  # (N, m)
    z: np.ndarray  # (N,)
    offset: np.ndarray | None = None  # (N,)
    weight: np.ndarray | None = None  # (N,)

    def __len__(self) -> int:
        return len(self.z)

    def predictor(self, theta_rec: np.ndarray) -> np.ndarray:
        """xᵢᵀθᵢ + oᵢ: (N, m)."""
        eta = linear_predictor(self.x, theta_rec)
        return eta if self.offset is None else eta + self.offset[:, None]

    def subset(self, rows: np.ndarray) -> Records:
        def pick(a):
            return None if a is None else a[rows]

        return Records(self.x[rows], pick(self.y), self.z[rows], pick(self.offset),
                       pick(self.weight))

    @property
    def observed_y(self) -> np.ndarray:
        """y, where it must be there (fitting, scoring): it is None only in records bound
        to predict."""
        assert self.y is not None, "records bound to predict have no response"
        return self.y

    def shifted(self) -> np.ndarray:
        """y − o: the response a loss of (η + o − y) sees against η alone."""
        return self.observed_y if self.offset is None else self.observed_y - self.offset[:, None]

    def per_stratum(self, k: int, values: np.ndarray | None = None) -> np.ndarray:
        """Σ over each stratum's records of weight · values (values 1: the weight total)."""
        if self.weight is None:  # (the same sums as with weights 1, without N ones)
            counts = np.bincount(self.z, weights=values, minlength=k)
            return counts if values is not None else counts.astype(float)
        return np.bincount(self.z, weights=self.weight if values is None
                           else self.weight * values, minlength=k)


def _weighted_sum(terms: cp.Expression, weight: np.ndarray | None) -> cp.Expression:
    import cvxpy as cp

    if weight is None:
        return cp.sum(terms)
    w = weight if terms.ndim == 1 else weight[:, None] * np.ones(terms.shape)
    return cp.sum(cp.multiply(w, terms))


def strata_block(theta: cp.Expression, k: int, strata: np.ndarray | None) -> cp.Expression:
    """The rows of θ (K·rows, outputs; stratum-major) that belong to ``strata`` (None: all)."""
    if strata is None or len(strata) == k:
        return theta
    rows = theta.shape[0] // k
    return theta[(np.asarray(strata)[:, None] * rows + np.arange(rows)[None, :]).reshape(-1), :]


@dataclass(frozen=True)
class Recession:
    """Directions along which a loss falls without end: ``constraints`` keep every
    record's loss from rising, ``margin`` (a CVXPY expression, ≥ 0 under them) is positive
    when some record's keeps falling, and ``unbounded`` says whether it falls to −∞ (else
    toward an infimum it never attains: no minimizer)."""

    constraints: list
    margin: Any
    unbounded: bool


def _falls_where_zero(y: np.ndarray, moved: cp.Expression) -> Recession | None:
    """A loss −η (+ y·g(η), coercive where y > 0) alone where y = 0: unbounded along a
    direction that raises η there and leaves every other record's η."""
    zero = y[:, 0] == 0
    if not zero.any():
        return None
    constraints = [moved[np.flatnonzero(zero), :] >= 0]
    if (~zero).any():
        constraints.append(moved[np.flatnonzero(~zero), :] == 0)
    import cvxpy as cp

    return Recession(constraints, cp.sum(moved[np.flatnonzero(zero), :]), unbounded=True)


@dataclass(frozen=True)
class Likelihood:
    """How a loss reads as a negative log-likelihood (NLL) of the response: the loss is
    ``scale`` · NLL plus a constant, or, with ``dispersion``, φ · NLL for a scale φ that is
    estimated with the weights (squared: (y − η)² = 2σ² · NLL). Under this reading the
    quadratic penalties are a Gaussian prior and their weights can be chosen from the
    data (weights written ``auto``: stratlang.backends.selection)."""

    dispersion: bool = False
    scale: float = 1.0
    deviance: bool = True  # False: no finite saturated model, so no deviance (nor GCV)

    def gcv_refusal(self, loss_name: str) -> str | None:
        """Why GCV cannot choose this loss's weights, or None (one sentence for the spec
        checker and the fit)."""
        if self.deviance:
            return None
        return (f"GCV scores a deviance, and loss '{loss_name}' has none (no finite saturated "
                "model)")


@dataclass(frozen=True)
class Loss(ABC):  # (an ABC: its subclasses' abstract methods are enforced)
    """Base class; subclasses set the class attributes and override what differs."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A registry entry values each record: by its pointwise unit, or by its own
        ``losses`` (refused when the class is defined, never found at fit time)."""
        super().__init_subclass__(**kwargs)
        named = "name" in cls.__dict__
        if named and cls.pointwise is Loss.pointwise and cls.losses is Loss.losses \
                and cls.records_value is Loss.records_value:
            raise TypeError(f"loss '{cls.name}' defines none of pointwise(), losses() and "
                            "records_value()")

    name: ClassVar[str]
    doc: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    features: ClassVar[str] = "optional"  # 'optional' (x = 1 when absent) | 'forbidden'
    with_features: ClassVar[str | None] = None  # the loss to suggest when features are given
    offset_problem: ClassVar[str | None] = None  # why it takes no offset (None: it takes one)
    domain: ClassVar[str] = "real"  # a key of responses.DOMAINS
    multi_column: ClassVar[bool] = False  # may the response be a tuple of columns?
    primary: ClassVar[str] = "rmse"  # the metric a sweep or an estimator optimizes
    parameter: ClassVar[str] = "intercept"  # row name when the model has no features
    square_parameter: ClassVar[bool] = False  # θ's leading rows form a (precision) matrix
    quadratic: ClassVar[bool] = False  # Σ (xᵀθ − y)² in the encoded y: one linear system
    classifies: ClassVar[bool] = False  # predicts a class (scikit-learn: a classifier)
    convex: ClassVar[bool] = True  # False: no CVXPY form; ADMM fits it as a local method
    multiclass: ClassVar[bool] = False  # of more than two classes
    likelihood: ClassVar[Likelihood | None] = None  # None: it reads as no likelihood

    @property
    def nonnegative_response(self) -> bool:
        """Does the response lie in [0, ∞) (counts, rates, 0/1)?"""
        return self.domain in ("nonnegative", "count", "zero_one")

    # ---- shape ----------------------------------------------------------------------
    def row_names(self, features: tuple[str, ...], columns: tuple[str, ...]) -> tuple[str, ...]:
        return features if features else (self.parameter,)

    def zero_refused(self, rows: tuple[str, ...], p: dict[str, Any]) -> str | None:
        """Why θ cannot be 0 in all of ``rows`` whatever the data (the loss is infinite
        there, or its constraints exclude it), in words; None when it can."""
        return None

    def output_names(self, columns: tuple[str, ...], classes: tuple | None) -> tuple[str, ...]:
        return columns

    def default_exclude(self, rows: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(r for r in rows if r == "intercept")

    # ---- CVXPY ----------------------------------------------------------------------
    def terms(self, pred: cp.Expression, y: np.ndarray, p: dict[str, Any]) -> cp.Expression:
        """Each record's loss at the linear predictor ``pred`` (N, m): shape (N,) or (N, m)."""
        raise NotImplementedError(f"loss '{self.name}' has no per-record CVXPY form")

    def cvxpy(self, pred: cp.Expression, y: np.ndarray, p: dict[str, Any],
              weight: np.ndarray | None = None) -> cp.Expression:
        """The (weighted) summed loss at the linear predictor ``pred``."""
        return _weighted_sum(self.terms(pred, y, p), weight)

    def constraints(self, theta: cp.Expression, p: dict[str, Any]) -> list[cp.Constraint]:
        return []

    def cvxpy_stratified(self, theta: cp.Expression, records: Records, record_matrix, k: int,
                         p: dict[str, Any], strata: np.ndarray | None = None
                         ) -> tuple[cp.Expression, list[cp.Constraint]]:
        """The summed loss of ``records``, and the domain constraints (parameters ``p``) of
        ``strata`` only (None: all; a loss part's parameters bind its own strata); θ is
        (K·rows, outputs), stratum-major, and ``record_matrix()`` the N × (K·rows) matrix
        placing each record in its stratum."""
        pred = record_matrix() @ theta
        if records.offset is not None:
            pred = pred + records.offset[:, None] * np.ones((1, theta.shape[1]))
        return (self.cvxpy(pred, records.observed_y, p, records.weight),
                self.constraints(strata_block(theta, k, strata), p))

    @property
    def may_fall_without_end(self) -> bool:
        """Whether some data can make this loss fall without end (see :meth:`recession`)."""
        return type(self).recession is not Loss.recession

    def in_domain(self, theta: np.ndarray, p: dict[str, Any]) -> bool:
        """Does θ (K, rows, outputs: the strata of one parameter set) satisfy the loss's own
        constraints (a distribution's θ ≥ eps)? ADMM's copies other than the loss's need
        not."""
        return True

    def recession(self, records: Records, moved: cp.Expression, p: dict[str, Any]
                  ) -> Recession | None:
        """Along a direction of θ that changes the records' predictors by ``moved`` (N, m;
        a CVXPY expression), when does the summed loss never rise and keep falling? None:
        no direction makes it fall without end (every loss here is bounded below and
        attains it, or grows both ways)."""
        return None

    # ---- ADMM -------------------------------------------------------------------------
    def admm_prox(self, records: Records, k: int, p: dict[str, Any]) -> px_type | None:
        """The prox of the summed loss of every stratum, as ``prox(v, t)`` on (K, n, m)
        arrays; None when the ADMM backend has no prox for this loss yet. By default, for a
        smooth loss, Newton's method on its pointwise unit (per output column when the
        unit is separable)."""
        unit = self.pointwise(p)
        if unit is None:
            return None
        outputs = records.observed_y.shape[1]
        if unit.coupled or outputs == 1:
            return _newton(unit, records, k, outputs=outputs if unit.coupled else 1)
        return px.PerOutputProx([_newton(unit, replace(records, y=records.observed_y[:, [j]]), k)
                                 for j in range(outputs)])

    def relaxation(self, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The convex loss (a name and its parameters) ADMM starts a fit from: a convex
        loss is its own; a non-convex one names its stand-in."""
        return self.name, dict(p)

    def admm_initial(self, records: Records, shape: tuple[int, int, int],
                     p: dict[str, Any]) -> np.ndarray | None:
        """Where ADMM starts (default: zero); distributions start at the pooled estimate."""
        return None

    def admm_ready(self, p: dict[str, Any] | None = None) -> bool:
        """Does this loss have an ADMM prox (with these parameters)?"""
        return type(self).admm_prox is not Loss.admm_prox or self.smooth

    # ---- personalized models ----------------------------------------------------------
    @property
    def personalized_refusal(self) -> str | None:
        """Why personalized models cannot take this loss, in words (None: they can). Their
        engine follows the gradient of each sample's loss in its one linear predictor,
        from the loss's pointwise unit."""
        if self.features == "forbidden":
            instead = f" (use '{self.with_features}')" if self.with_features else ""
            return ("a distribution estimate has no features, so no linear predictor to "
                    "personalize" + instead)
        if not self.convex:
            return "it is not convex (the engine starts from the convex population model)"
        if not self.smooth:
            return "it is not differentiable (the engine follows the loss's gradient)"
        if self.multiclass:
            return "it scores every class, and the engine holds one linear predictor per sample"
        return None

    @property
    def personalizable(self) -> bool:
        return self.personalized_refusal is None

    # ---- numpy ----------------------------------------------------------------------
    def losses(self, pred: np.ndarray, y: np.ndarray, p: dict[str, Any]) -> np.ndarray:
        """Each record's loss (summed over outputs) at the linear predictor: (N,); by
        default its pointwise unit's."""
        unit = self.pointwise(p)
        assert unit is not None  # (else the entry defines losses or records_value: see above)
        return unit.record_values(pred, y)

    def pointwise(self, p: dict[str, Any]) -> pw.Pointwise | None:
        """The loss as a smooth convex function of one record's linear predictor: value,
        first and second derivative (solvers.pointwise), from which its gradient, its
        Newton prox and the Newton backend derive; None when it is not smooth."""
        return None

    def likelihood_unit(self, p: dict[str, Any]) -> pw.Pointwise | None:
        """The loss of one record as a smooth function of its θ-linear predictor (the
        parameter itself for a distribution), whose second derivative gives the curvature
        the Laplace approximation of a likelihood needs; by default :meth:`pointwise`."""
        return self.pointwise(p)

    def stratum_likelihood(self, records: Records, k: int, p: dict[str, Any]) -> Any:
        """For a loss whose records see their stratum's θ whole (no linear predictor): the
        summed loss of every stratum in θ's free coordinates ψ (θ_k = Q ψ_k, Q of
        orthonormal columns), with ``basis`` (Q), ``to_free``, ``to_stored``, ``value``,
        ``derivatives`` (value, gradient, Hessian blocks) and ``hessian_change``: where
        the Laplace approximation takes its curvature from. None (the default): the
        curvature comes from each record's linear predictor (:meth:`likelihood_unit`)."""
        return None

    @property
    def sees_stratum_whole(self) -> bool:
        """Does it define :meth:`stratum_likelihood` (its curvature over θ's free
        coordinates, not from records' linear predictors)?"""
        return type(self).stratum_likelihood is not Loss.stratum_likelihood

    def likelihood_refusal(self, p: dict[str, Any]) -> str | None:
        """Why the Laplace approximation does not hold for this loss with parameters ``p``
        (a constraint that may bind at the fit), in words; None when it holds."""
        return None

    def at_bound(self, theta: np.ndarray, p: dict[str, Any]) -> np.ndarray | None:
        """Per stratum of θ (K, rows, m): does a parameter sit on its domain's edge, where
        the Laplace approximation (its curvature at an interior optimum) does not hold?
        None for a loss whose parameters have no edge."""
        return None

    def gradient(self, pred: np.ndarray, y: np.ndarray, p: dict[str, Any]) -> np.ndarray | None:
        """∂ℓᵢ/∂predᵢ, each record's loss differentiated by its linear predictor: (N, m);
        None for a loss that is not differentiable (the eigen backend, which needs it,
        refuses those: see :attr:`smooth`)."""
        unit = self.pointwise(p)
        return None if unit is None else unit.derivatives(pred, y)[1]

    @property
    def smooth(self) -> bool:
        """Differentiable in the linear predictor (it has a :meth:`pointwise` unit)."""
        return type(self).pointwise is not Loss.pointwise

    def saturated(self, y: np.ndarray, p: dict[str, Any]) -> np.ndarray:
        """Each record's loss at its own best predictor (the saturated model), (N,): the
        zero of the deviance 2 · (loss − saturated)."""
        return np.zeros(len(y))

    def interval(self, pred: np.ndarray, cov: np.ndarray, z: float, p: dict[str, Any],
                 classes: tuple | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(lower, upper) of each numeric prediction, from the linear predictor ``pred``
        (N, m), its covariance ``cov`` (N, m, m) and the normal quantile ``z``: by default
        the predictions at η ∓ z·sd, each output's η on its own (a prediction monotone in
        its output's η: the identity, exp, the logistic function)."""
        sd = np.sqrt(np.maximum(np.einsum("nii->ni", cov), 0.0))
        low = self.predict(pred - z * sd, p, classes)
        high = self.predict(pred + z * sd, p, classes)
        out = {}
        for key, a in low.items():
            a, b = np.asarray(a), np.asarray(high[key])
            if a.dtype.kind == "f":
                out[key] = (np.minimum(a, b), np.maximum(a, b))
        return out

    def value(self, pred: np.ndarray, y: np.ndarray, p: dict[str, Any],
              weight: np.ndarray | None = None) -> float:
        each = self.losses(pred, y, p)
        return float(np.sum(each) if weight is None else weight @ each)

    def nll(self, pred: np.ndarray, y: np.ndarray, p: dict[str, Any]) -> np.ndarray | None:
        """Per-record negative log-likelihood (natural log), for probabilistic losses."""
        return None

    def predict(self, pred: np.ndarray, p: dict[str, Any], classes: tuple | None) -> dict:
        return {"prediction": pred[:, 0] if pred.shape[1] == 1 else pred}

    def metrics(self, pred, y, p, classes, weight=None) -> dict[str, float]:
        prediction = self.predict(pred, p, classes)["prediction"]
        return self.with_anll(metrics.regression(y, prediction, weight), pred, y, p, weight)

    def with_anll(self, out: dict[str, float], pred, y, p, weight=None) -> dict[str, float]:
        """Adds the average negative log-likelihood when the loss is a likelihood."""
        nll = self.nll(pred, y, p)
        if nll is not None:
            out["anll"] = metrics.mean(nll, weight)
        return out

    # ---- records at θ (θ_rec: each record's stratum's parameter, (N, rows, outputs)) ------
    def records_value(self, records: Records, theta_rec: np.ndarray, p: dict[str, Any]) -> float:
        """The summed (weighted) loss of records whose parameters are θ_rec."""
        return self.value(records.predictor(theta_rec), records.observed_y, p, records.weight)

    def records_predict(self, records: Records, theta_rec: np.ndarray, p: dict[str, Any],
                        classes: tuple | None) -> dict[str, np.ndarray]:
        return self.predict(records.predictor(theta_rec), p, classes)

    def records_metrics(self, records: Records, theta_rec: np.ndarray, p: dict[str, Any],
                        classes: tuple | None) -> dict[str, float]:
        return self.metrics(records.predictor(theta_rec), records.y, p, classes, records.weight)

    def records_nll(self, records: Records, theta_rec: np.ndarray, p: dict[str, Any]
                    ) -> np.ndarray | None:
        """Each record's negative log-likelihood (:meth:`nll`) at θ_rec."""
        return self.nll(records.predictor(theta_rec), records.observed_y, p)

    def records_interval(self, records: Records, theta_rec: np.ndarray, cov_rec: np.ndarray,
                         z: float, p: dict[str, Any], classes: tuple | None
                         ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(lower, upper) of each numeric prediction of records whose parameters are θ_rec
        (N, rows, outputs), of covariance ``cov_rec`` (N, d, d), at the normal quantile
        ``z``: by default :meth:`interval` of the linear predictor, whose covariance is
        (x ⊗ I)ᵀ C (x ⊗ I)."""
        m = theta_rec.shape[2]
        return self.interval(records.predictor(theta_rec),
                             predictor_covariance(records.x, cov_rec, m), z, p, classes)


def predictor_covariance(x: np.ndarray, blocks: np.ndarray, m: int) -> np.ndarray:
    """Each record's link-scale covariance (N, m, m) from its features x (N, n) and its
    stratum's covariance block (N, n·m, n·m): (x ⊗ I)ᵀ C (x ⊗ I)."""
    n_records, n = x.shape
    c = blocks.reshape(n_records, n, m, n, m)
    out: np.ndarray = np.einsum("ij,ijolp,il->iop", x, c, x)
    return out


def _residual_terms(records: Records, k: int, lo: float, hi: float) -> px.PiecewiseLinearProx:
    """Σ_ij w_i max_{u ∈ [lo, hi]} u (x_iᵀθ_j + o_i − y_ij): absolute and quantile losses."""
    n_records, m = records.observed_y.shape
    record = np.repeat(np.arange(n_records), m)
    w = np.ones(n_records) if records.weight is None else records.weight
    return px.PiecewiseLinearProx.from_records(
        records.x, records.z, k, m, record, np.tile(np.eye(m), (n_records, 1)),
        records.shifted().ravel(), lo * w[record], hi * w[record])


def _newton(f, records: Records, k: int, outputs: int = 1) -> px.NewtonProx:
    return px.NewtonProx(f, records.x, records.y, records.z, k, outputs=outputs,
                         offset=records.offset, weight=records.weight)


# ---- regression -----------------------------------------------------------------------
@LOSSES.entry
class Squared(Loss):
    name = "squared"
    doc = "Σ (xᵀθ − y)²; least squares / ridge / lasso. Multi-column responses allowed."
    multi_column = True
    quadratic = True
    likelihood = Likelihood(dispersion=True)  # Gaussian: (y − η)² = 2σ² · NLL + const

    def terms(self, pred, y, p):
        import cvxpy as cp

        return cp.square(pred - y)

    def cvxpy(self, pred, y, p, weight=None):  # a sum of squares keeps QP solvers on it
        import cvxpy as cp

        r = pred - y
        if weight is not None:
            r = cp.multiply(np.sqrt(weight)[:, None] * np.ones(r.shape), r)
        return cp.sum_squares(r)

    def admm_prox(self, records, k, p):
        return px.QuadraticProx(records.x, records.shifted(), records.z, k, records.weight)

    def pointwise(self, p):
        return pw.Squared()


@LOSSES.entry
class Absolute(Loss):
    name = "absolute"
    doc = "Σ |xᵀθ − y|; least absolute deviations (median regression)."
    multi_column = True
    primary = "mae"

    def terms(self, pred, y, p):
        import cvxpy as cp

        return cp.abs(pred - y)

    def admm_prox(self, records, k, p):
        return _residual_terms(records, k, -1.0, 1.0)

    def losses(self, pred, y, p):
        return np.sum(np.abs(pred - y), axis=1)


@LOSSES.entry
class Huber(Loss):
    name = "huber"
    doc = "Σ h_M(xᵀθ − y) with h_M(r) = r² for |r| ≤ M, 2M|r| − M² beyond (CVXPY's huber)."
    params = (Param("M", default=1.0, check=positive, doc="threshold between quadratic and linear"),)
    multi_column = True

    def terms(self, pred, y, p):
        import cvxpy as cp

        return cp.huber(pred - y, p["M"])

    def pointwise(self, p):
        return pw.Huber(p["M"])

    def metrics(self, pred, y, p, classes, weight=None):
        return {**super().metrics(pred, y, p, classes, weight),
                "huber": metrics.mean(self.pointwise(p).derivatives(pred, y)[0], weight)}


def _pinball(r: np.ndarray, tau: float) -> np.ndarray:
    return np.maximum(tau * r, (tau - 1) * r)


@LOSSES.entry
class Tukey(Loss):
    name = "tukey"
    doc = ("Σ ρ_c(xᵀθ − y), Tukey's biweight: ρ_c(r) = c²/3 (1 − (1 − (r/c)²)³) for |r| ≤ c, "
           "c²/3 beyond — r² for small residuals, as squared and huber, while a record "
           "further than c from its fit counts a constant (robust to gross outliers); "
           "non-convex: ADMM fits it as a local method, started from the huber(M=c) fit.")
    params = (Param("c", default=4.685, check=positive,
                    doc="residuals beyond c (in the response's units) count a constant"),)
    convex = False

    def admm_prox(self, records, k, p):
        return px.TukeyProx(records.x, records.shifted(), records.z, k, p["c"], records.weight)

    def losses(self, pred, y, p):
        return px.tukey_loss(pred - y, p["c"])[:, 0]

    def relaxation(self, p):
        return "huber", {"M": p["c"]}


@LOSSES.entry
class Quantile(Loss):
    name = "quantile"
    doc = "Σ τ(y − xᵀθ)₊ + (1 − τ)(xᵀθ − y)₊; the tilted absolute (pinball) loss."
    params = (Param("tau", default=0.5, check=in_open_unit, doc="the quantile level"),)
    multi_column = True
    primary = "pinball"

    def terms(self, pred, y, p):
        import cvxpy as cp

        r = y - pred
        return p["tau"] * cp.pos(r) + (1 - p["tau"]) * cp.neg(r)

    def admm_prox(self, records, k, p):  # τ(y − η)₊ + (1 − τ)(η − y)₊ = max over [−τ, 1 − τ]
        return _residual_terms(records, k, -p["tau"], 1.0 - p["tau"])

    def losses(self, pred, y, p):
        return np.sum(_pinball(y - pred, p["tau"]), axis=1)

    def metrics(self, pred, y, p, classes, weight=None):
        return {**super().metrics(pred, y, p, classes, weight),
                "pinball": metrics.mean(_pinball(y - pred, p["tau"]), weight)}


# ---- boolean classification (y encoded as ±1) -------------------------------------------
class _Binary(Loss):
    domain = "binary"
    classifies = True
    primary = "error"

    def output_names(self, columns, classes):
        return columns

    def predict(self, pred, p, classes):
        score = pred[:, 0]
        labels = np.asarray(classes if classes else (-1, 1), dtype=object)
        return {"prediction": labels[(score > 0).astype(int)], "score": score}

    def metrics(self, pred, y, p, classes, weight=None):
        score = pred[:, 0]
        out = {**metrics.accuracy(y[:, 0] > 0, score > 0, weight),
               "auroc": metrics.auroc(y[:, 0] > 0, score, weight)}
        return self.with_anll(out, pred, y, p, weight)


@LOSSES.entry
class Logistic(_Binary):
    name = "logistic"
    doc = "Σ log(1 + exp(−y xᵀθ)); y has two classes (the later one in sorted order is positive)."
    primary = "anll"
    likelihood = Likelihood()  # Bernoulli with the logit link

    def terms(self, pred, y, p):
        import cvxpy as cp

        return cp.logistic(-cp.multiply(y, pred))

    def recession(self, records, moved, p):
        import cvxpy as cp

        # separable records: every margin y·η can grow, the loss falls toward 0
        margins = cp.multiply(records.y[:, :1], moved)
        return Recession([margins >= 0], cp.sum(margins), unbounded=False)

    def pointwise(self, p):
        return pw.Logistic()

    def nll(self, pred, y, p):
        return self.losses(pred, y, p)

    def predict(self, pred, p, classes):
        from scipy.special import expit

        return {**super().predict(pred, p, classes), "probability": expit(pred[:, 0])}


@LOSSES.entry
class Hinge(_Binary):
    name = "hinge"
    doc = "Σ (1 − y xᵀθ)₊; the support vector machine."

    def terms(self, pred, y, p):
        import cvxpy as cp

        return cp.pos(1 - cp.multiply(y, pred))

    def admm_prox(self, records, k, p):  # w(1 − y(η + o))₊ = max_{u ∈ [−w, 0]} u (yη − (1 − yo))
        n = len(records)
        y = records.y[:, 0]
        target = np.ones(n) if records.offset is None else 1.0 - y * records.offset
        w = np.ones(n) if records.weight is None else records.weight
        return px.PiecewiseLinearProx.from_records(records.x, records.z, k, 1, np.arange(n),
                                                   records.y, target, -w, np.zeros(n))

    def losses(self, pred, y, p):
        return np.maximum(0.0, 1 - y * pred)[:, 0]


@LOSSES.entry
class SquareClassification(_Binary):
    name = "square_classification"
    doc = "Σ (y xᵀθ − 1)²; least squares classification."
    quadratic = True  # (yη − 1)² = (η − y)² for y = ±1

    def terms(self, pred, y, p):
        import cvxpy as cp

        return cp.square(cp.multiply(y, pred) - 1)

    def admm_prox(self, records, k, p):  # (y(η + o) − 1)² = (η − (y − o))² for y = ±1
        return px.QuadraticProx(records.x, records.shifted(), records.z, k, records.weight)

    def pointwise(self, p):
        return pw.SquareClassification()


@LOSSES.entry
class SquaredHinge(_Binary):
    name = "squared_hinge"
    doc = "Σ (1 − y xᵀθ)₊²; the L2-loss support vector machine (smooth, unlike hinge)."

    def terms(self, pred, y, p):
        import cvxpy as cp

        return cp.square(cp.pos(1 - cp.multiply(y, pred)))

    def pointwise(self, p):
        return pw.SquaredHinge()


# ---- multi-class (y one-hot over M classes; θ has one column per class) ------------------
class _Multiclass(Loss):
    domain = "categorical"
    classifies = True
    multiclass = True
    primary = "error"
    offset_problem = ("the same offset added to every class's score changes no prediction; "
                      "write it as a feature")

    def output_names(self, columns, classes):
        return tuple(str(c) for c in classes) if classes else ("class_0", "class_1")

    def predict(self, pred, p, classes):
        labels = np.asarray(classes, dtype=object)
        return {"prediction": labels[np.argmax(pred, axis=1)]}

    def metrics(self, pred, y, p, classes, weight=None):
        return self.with_anll(metrics.accuracy(np.argmax(y, axis=1), np.argmax(pred, axis=1),
                                               weight), pred, y, p, weight)


@LOSSES.entry
class Multinomial(_Multiclass):
    name = "multinomial"
    doc = "Σ log Σ_j exp((xᵀθ)_j) − (xᵀθ)_y; multinomial logistic regression."
    primary = "anll"
    likelihood = Likelihood()  # categorical with the softmax link

    def terms(self, pred, y, p):
        import cvxpy as cp

        return cp.log_sum_exp(pred, axis=1) - cp.sum(cp.multiply(y, pred), axis=1)

    def recession(self, records, moved, p):
        import cvxpy as cp

        # separable records: each one's class can gain on every other, the loss falls to 0
        own = cp.sum(cp.multiply(records.y, moved), axis=1, keepdims=True)
        ahead = own @ np.ones((1, records.y.shape[1])) - moved
        return Recession([ahead >= 0], cp.sum(ahead), unbounded=False)

    def pointwise(self, p):
        return pw.Multinomial()

    def nll(self, pred, y, p):
        return self.losses(pred, y, p)

    def predict(self, pred, p, classes):
        from scipy.special import logsumexp

        prob = np.exp(pred - logsumexp(pred, axis=1, keepdims=True))
        return {**super().predict(pred, p, classes), "probability": prob}

    def interval(self, pred, cov, z, p, classes):
        """Each class's probability through its logit, η_j − log Σ_{i≠j} exp η_i, whose
        standard deviation is the delta method's (a probability depends on every η)."""
        from scipy.special import expit, logsumexp

        n_records, m = pred.shape
        low, high = np.empty((n_records, m)), np.empty((n_records, m))
        for j in range(m):
            others = np.delete(np.arange(m), j)
            rest = logsumexp(pred[:, others], axis=1)
            gradient = np.zeros((n_records, m))
            gradient[:, j] = 1.0
            gradient[:, others] = -np.exp(pred[:, others] - rest[:, None])
            sd = np.sqrt(np.maximum(np.einsum("ni,nij,nj->n", gradient, cov, gradient), 0.0))
            logit = pred[:, j] - rest
            low[:, j], high[:, j] = expit(logit - z * sd), expit(logit + z * sd)
        return {"probability": (low, high)}


@LOSSES.entry
class MulticlassHinge(_Multiclass):
    name = "multiclass_hinge"
    doc = "Σ Σ_{j≠y} ((xᵀθ)_j − (xᵀθ)_y + 1)₊; the multi-class SVM."

    def terms(self, pred, y, p):
        import cvxpy as cp

        n, m = y.shape
        true_score = cp.reshape(cp.sum(cp.multiply(y, pred), axis=1), (n, 1), order="C")
        margins = pred - true_score @ np.ones((1, m)) + 1
        return cp.sum(cp.multiply(1 - y, cp.pos(margins)), axis=1)

    def admm_prox(self, records, k, p):
        # one term max_{u ∈ [0, w]} u (η_j − η_y + 1) per record and wrong class j
        y = records.y
        m = y.shape[1]
        record, wrong = np.nonzero(y == 0)
        coef = np.eye(m)[wrong] - y[record]
        w = np.ones(len(y)) if records.weight is None else records.weight
        return px.PiecewiseLinearProx.from_records(records.x, records.z, k, m, record, coef,
                                                   -np.ones(len(record)),
                                                   np.zeros(len(record)), w[record])

    def losses(self, pred, y, p):
        true_score = np.sum(y * pred, axis=1, keepdims=True)
        return np.sum((1 - y) * np.maximum(0.0, pred - true_score + 1), axis=1)


# ---- generalized linear models ------------------------------------------------------------
@LOSSES.entry
class PoissonRegression(Loss):
    name = "poisson_regression"
    doc = ("Σ exp(xᵀθ) − y xᵀθ; Poisson regression with log link (y counts); with "
           "`offset log(exposure)`, θ models the rate per unit of exposure.")
    domain = "count"
    primary = "anll"
    likelihood = Likelihood()  # Poisson with the log link (less log y!)

    def terms(self, pred, y, p):
        import cvxpy as cp

        return cp.exp(pred) - cp.multiply(y, pred)

    def pointwise(self, p):
        return pw.PoissonRegression()

    def saturated(self, y, p):
        return _poisson_saturated(y[:, 0])

    def nll(self, pred, y, p):
        from scipy.special import gammaln

        return self.losses(pred, y, p) + gammaln(y[:, 0] + 1)

    def predict(self, pred, p, classes):
        return {"prediction": np.exp(pred[:, 0])}


@LOSSES.entry
class ExponentialRegression(Loss):
    name = "exponential_regression"
    doc = "Σ −xᵀθ + y exp(xᵀθ); exponential regression, rate exp(xᵀθ) (y ≥ 0)."
    domain = "nonnegative"
    primary = "anll"
    likelihood = Likelihood()  # exponential with rate exp(η)

    def terms(self, pred, y, p):
        import cvxpy as cp

        return -pred + cp.multiply(y, cp.exp(pred))

    def recession(self, records, moved, p):
        return _falls_where_zero(records.y, moved)  # −xᵀθ alone where y = 0

    def pointwise(self, p):
        return pw.ExponentialRegression()

    def saturated(self, y, p):
        return _exponential_saturated(y[:, 0])

    def nll(self, pred, y, p):
        return self.losses(pred, y, p)

    def predict(self, pred, p, classes):
        return {"prediction": np.exp(-pred[:, 0])}  # the mean, 1 / rate


# ---- distributions (no features: θ is the distribution's parameter) ------------------------
_EPS = Param("eps", default=1e-5, check=interval(0, 0.5, closed="[)"),
             doc="keeps the parameter inside its domain")
_NO_PREDICTOR = "a distribution estimate has no linear predictor to offset"


def _entropy_terms(a: np.ndarray, b: np.ndarray, x: cp.Expression) -> cp.Expression:
    """Σ_k (−a_k log x_k + b_k x_k) up to a constant, for a, b ≥ 0 (a_k > 0 ⇒ b_k > 0)."""
    import cvxpy as cp

    pos = np.flatnonzero(a > 0)
    lin = np.flatnonzero((a == 0) & (b > 0))
    terms = []
    if len(pos):
        terms.append(cp.sum(cp.kl_div(a[pos], cp.multiply(b[pos], x[pos]))))
    if len(lin):
        terms.append(b[lin] @ x[lin])
    return cp.sum(cp.hstack(terms)) if terms else cp.Constant(0.0)


class _Distribution(Loss):
    """Records of one stratum share θ_k, so the loss depends on the data only through
    per-stratum weight totals n_k and weighted sums s_k = Σ w y: K terms, whatever the
    number of records."""

    features = "forbidden"
    offset_problem = _NO_PREDICTOR
    primary = "anll"
    params = (_EPS,)
    likelihood = Likelihood()  # the distribution's own, in its parameter

    # a solvers.prox factory (count, total, eps) → the prox v, t ↦ θ (it may overwrite v)
    closed_form: ClassVar[Callable[..., Callable[[np.ndarray, float], np.ndarray]] | None] = None
    # the NLL of one record in the parameter itself (x = 1): the curvature's unit
    mean_unit: ClassVar[pw.Pointwise]

    def likelihood_unit(self, p):
        return self.mean_unit

    def stats(self, records: Records, k: int) -> tuple[np.ndarray, np.ndarray]:
        return records.per_stratum(k), records.per_stratum(k, records.observed_y[:, 0])

    def cvxpy_stratified(self, theta, records, record_matrix, k, p, strata=None):
        count, total = self.stats(records, k)
        return (self.cvxpy_aggregated(theta[:, 0], count, total),
                self.constraints(strata_block(theta, k, strata), p))

    def admm_initial(self, records, shape, p):
        everyone = replace(records, z=np.zeros(len(records), dtype=np.int64))
        count, total = (float(v[0]) for v in self.stats(everyone, 1))
        pooled = self.pooled(count, total) if count > 0 else 0.5
        return np.full(shape, self.clip(pooled, p["eps"]))

    def clip(self, value, eps):
        """The parameter(s) moved into the domain: a number or an array, elementwise."""
        return np.maximum(value, eps)

    def in_domain(self, theta, p):
        # (one array operation: np.vectorize called clip on each of 3.5 million strata, 3.7 s)
        return bool(np.all(self.clip(theta, p["eps"]) == theta))

    def at_bound(self, theta, p):
        # a step of 1e-9 (relative) toward the edge leaves the domain: at eps (or 1 − eps)
        step = 1e-9 * np.maximum(np.abs(theta), 1e-3)
        edge = ((self.clip(theta - step, p["eps"]) != theta - step)
                | (self.clip(theta + step, p["eps"]) != theta + step))
        return np.any(edge.reshape(len(theta), -1), axis=1)

    def pooled(self, count: float, total: float) -> float:
        """The maximum-likelihood parameter of all records together."""
        return total / count

    def zero_refused(self, rows, p):
        if self.parameter in rows and p["eps"] > 0:
            return f"its {self.parameter} is at least eps = {p['eps']:g}"
        return None

    def admm_prox(self, records, k, p):
        count, total = (v[:, None, None] for v in self.stats(records, k))
        make = type(self).closed_form
        assert make is not None  # (every distribution loss names one)
        return make(count, total, p["eps"])

    @abstractmethod
    def cvxpy_aggregated(self, theta: cp.Expression, count: np.ndarray,
                         total: np.ndarray) -> cp.Expression:
        """Equal to the loss up to a constant. Written with ``kl_div`` (the relative-entropy
        cone) rather than ``log``: interior-point solvers stall on thousands of
        ``s·log θ`` terms but not on the equivalent ``kl_div(s, nθ)``."""

    def losses(self, pred, y, p):
        return self.nll_core(pred, y)[:, 0]

    def nll(self, pred, y, p):
        return self.nll_core(pred, y)[:, 0] + self.nll_constant(y)

    @abstractmethod
    def nll_core(self, pred, y) -> np.ndarray: ...

    def nll_constant(self, y):
        return 0.0

    upper: ClassVar[float] = np.inf  # the parameter's domain is [0, upper]

    def interval(self, pred, cov, z, p, classes):
        """θ ∓ z·sd kept inside the parameter's domain (:meth:`clip`) and then mapped to
        the prediction: clipped first, since the prediction may be a decreasing function
        (the exponential's mean 1/θ) that a rate interval reaching below 0 would send
        below the point (a mean's interval [0, 1/(θ + z·sd)])."""
        sd = np.sqrt(np.maximum(np.einsum("nii->ni", cov), 0.0))
        with np.errstate(divide="ignore"):  # eps = 0: a rate reaching 0, a mean up to ∞
            low = self.predict(self.clip(pred - z * sd, p["eps"]), p, classes)["prediction"]
            high = self.predict(self.clip(pred + z * sd, p["eps"]), p, classes)["prediction"]
        return {"prediction": (np.minimum(low, high), np.maximum(low, high))}


def _poisson_saturated(y: np.ndarray) -> np.ndarray:
    """y − y log y (0 where y = 0): θ − y log θ at θ = y."""
    return y - np.where(y > 0, y * _safe_log(np.where(y > 0, y, 1.0)), 0.0)


def _exponential_saturated(y: np.ndarray) -> np.ndarray:
    """1 + log y: −log θ + yθ at θ = 1/y (−∞ where y = 0: no deviance there)."""
    return 1.0 + _safe_log(y)


def _safe_log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(x)


@LOSSES.entry
class Bernoulli(_Distribution):
    name = "bernoulli"
    doc = "Σ −y log θ − (1 − y) log(1 − θ); θ ∈ [eps, 1 − eps] is the probability of y = 1."
    with_features = "logistic"
    domain = "zero_one"
    parameter = "probability"
    closed_form = staticmethod(px.bernoulli_prox)
    mean_unit = pw.BernoulliMean()

    def clip(self, value, eps):
        return np.minimum(np.maximum(value, eps), 1.0 - eps)

    def cvxpy_aggregated(self, theta, count, total):
        # −s log θ − (n − s) log(1 − θ) = [−s log θ + nθ] + [−(n − s) log(1 − θ) + n(1 − θ)] − n
        return _entropy_terms(total, count, theta) + _entropy_terms(count - total, count, 1 - theta)

    def constraints(self, theta, p):
        return [theta >= p["eps"], theta <= 1 - p["eps"]]

    def nll_core(self, pred, y):
        with np.errstate(invalid="ignore"):
            return -(np.where(y > 0, y * _safe_log(pred), 0.0)
                     + np.where(y < 1, (1 - y) * _safe_log(1 - pred), 0.0))

    def predict(self, pred, p, classes):
        return {"prediction": pred[:, 0]}

    def metrics(self, pred, y, p, classes, weight=None):
        return {"anll": metrics.mean(self.nll(pred, y, p), weight),
                **metrics.accuracy(y[:, 0] > 0.5, pred[:, 0] > 0.5, weight),
                "auroc": metrics.auroc(y[:, 0] > 0.5, pred[:, 0], weight)}

    upper = 1.0  # (a probability)

    def saturated(self, y, p):
        return self.nll_core(np.clip(y, 0.0, 1.0), y)[:, 0]


@LOSSES.entry
class Poisson(_Distribution):
    name = "poisson"
    doc = "Σ θ − y log θ; θ ≥ eps is the Poisson rate (y counts)."
    with_features = "poisson_regression"
    domain = "count"
    parameter = "rate"
    closed_form = staticmethod(px.poisson_prox)
    mean_unit = pw.PoissonMean()

    def cvxpy_aggregated(self, theta, count, total):
        return _entropy_terms(total, count, theta)

    def constraints(self, theta, p):
        return [theta >= p["eps"]]

    def nll_core(self, pred, y):
        with np.errstate(invalid="ignore"):
            return pred - np.where(y > 0, y * _safe_log(pred), 0.0)

    def nll_constant(self, y):
        from scipy.special import gammaln

        return gammaln(y[:, 0] + 1)

    def metrics(self, pred, y, p, classes, weight=None):
        return {"anll": metrics.mean(self.nll(pred, y, p), weight),
                **metrics.regression(y, pred, weight)}

    def saturated(self, y, p):
        return _poisson_saturated(y[:, 0])


@LOSSES.entry
class Exponential(_Distribution):
    name = "exponential"
    doc = "Σ −log θ + y θ; θ ≥ eps is the exponential rate (y ≥ 0)."
    with_features = "exponential_regression"
    domain = "nonnegative"
    parameter = "rate"
    closed_form = staticmethod(px.exponential_prox)
    mean_unit = pw.ExponentialMean()

    def pooled(self, count, total):
        return count / total if total > 0 else 1.0

    def recession(self, records, moved, p):
        return _falls_where_zero(records.y, moved)  # −log θ alone where y = 0

    def cvxpy_aggregated(self, theta, count, total):
        import cvxpy as cp

        bare = np.flatnonzero((count > 0) & (total == 0))  # all y = 0: −n log θ alone
        expr = _entropy_terms(np.where(total > 0, count, 0.0), total, theta)
        return expr - count[bare] @ cp.log(theta[bare]) if len(bare) else expr

    def zero_refused(self, rows, p):
        return f"its {self.parameter} must be positive (−log 0 is infinite)" if (
            self.parameter in rows) else None

    def constraints(self, theta, p):
        return [theta >= p["eps"]]

    def nll_core(self, pred, y):
        return -_safe_log(pred) + y * pred

    def saturated(self, y, p):
        return _exponential_saturated(y[:, 0])

    def predict(self, pred, p, classes):
        return {"prediction": 1.0 / pred[:, 0]}

    def metrics(self, pred, y, p, classes, weight=None):
        return {"anll": metrics.mean(self.nll(pred, y, p), weight)}


@LOSSES.entry
class Gaussian(Loss):
    """Natural parameters θ = (S, ν) = (Σ⁻¹, Σ⁻¹μ), stored as m + 1 rows of m columns."""

    name = "gaussian"
    doc = ("Σ −log det S + yᵀSy − 2yᵀν + νᵀS⁻¹ν (twice the NLL less constants); "
           "θ = (S, ν) = (Σ⁻¹, Σ⁻¹μ); the response is one or more real columns.")
    features = "forbidden"
    with_features = "squared"
    offset_problem = _NO_PREDICTOR
    multi_column = True
    primary = "anll"
    square_parameter = True
    params = (Param("eps", default=0.0, check=nonnegative,
                    doc="lower bound on the eigenvalues of S"),)
    # the multivariate normal's, in its natural parameters; no finite saturated model
    likelihood = Likelihood(scale=2.0, deviance=False)

    def stratum_likelihood(self, records: Records, k: int, p: dict[str, Any]) -> Any:
        from .gaussian_natural import GaussianStrata

        return GaussianStrata(*self.stratum_stats(records, k))

    def likelihood_refusal(self, p: dict[str, Any]) -> str | None:
        if p["eps"] > 0:
            return (f"loss 'gaussian' with eps = {p['eps']:g}: the eigenvalue floor may "
                    "hold S at its bound, where the normal approximation fails (eps = 0 "
                    "keeps the fit interior)")
        return None

    def saturated(self, y: np.ndarray, p: dict[str, Any]) -> np.ndarray:
        return np.full(len(y), -np.inf)  # a record its own mean with no variance

    def records_nll(self, records: Records, theta_rec: np.ndarray, p: dict[str, Any]
                    ) -> np.ndarray | None:
        return self.nll_stratified(theta_rec, records.observed_y)

    def records_interval(self, records: Records, theta_rec: np.ndarray, cov_rec: np.ndarray,
                         z: float, p: dict[str, Any], classes: tuple | None
                         ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The mean μ = S⁻¹ν ∓ z·sd by the delta method: dμ = S⁻¹(dν − dS μ)."""
        prec, _ = self.split(theta_rec)
        n_records, m = theta_rec.shape[0], theta_rec.shape[2]
        inverse = np.linalg.inv(prec)
        mean = self.mean(theta_rec)
        jacobian = np.zeros((n_records, m, (m + 1) * m))
        jacobian[:, :, :m * m] = -np.einsum("kai,kj->kaij", inverse, mean).reshape(
            n_records, m, m * m)
        jacobian[:, :, m * m:] = inverse
        cov = np.einsum("kad,kde,kbe->kab", jacobian, cov_rec, jacobian)
        sd = z * np.sqrt(np.maximum(np.einsum("kaa->ka", cov), 0.0))
        return {"mean": (mean - sd, mean + sd)}

    def row_names(self, features, columns):
        return (*columns, "nu")

    def default_exclude(self, rows):
        return ("nu",)

    def zero_refused(self, rows, p):
        precision = [r for r in rows if r != "nu"]
        return (f"its precision S (rows {', '.join(precision)}) must be positive definite"
                if precision else None)

    @staticmethod
    def split(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """θ of shape (..., m + 1, m) → S (..., m, m), ν (..., m)."""
        return theta[..., :-1, :], theta[..., -1, :]

    def stratum_stats(self, records: Records, k: int):
        """Per stratum: weight total, weighted sum and weighted scatter of y."""
        y, z = records.observed_y, records.z
        w = np.ones(len(y)) if records.weight is None else records.weight
        m = y.shape[1]
        count = records.per_stratum(k)
        total = np.zeros((k, m))
        np.add.at(total, z, w[:, None] * y)
        scatter = np.zeros((k, m, m))
        np.add.at(scatter, z, w[:, None, None] * y[:, :, None] * y[:, None, :])
        return count, total, scatter

    def cvxpy_stratified(self, theta, records, record_matrix, k, p, strata=None):
        import cvxpy as cp

        m = records.y.shape[1]
        count, total, scatter = self.stratum_stats(records, k)
        terms, cons = [], []
        for s in (range(k) if strata is None else strata):
            block = theta[s * (m + 1):(s + 1) * (m + 1), :]
            prec, nu = block[:m, :], block[m, :]
            cons += [prec == prec.T, prec >> p["eps"] * np.eye(m)]
            if count[s] == 0:
                continue
            terms.append(-count[s] * cp.log_det(prec) + cp.trace(scatter[s] @ prec)
                         - 2 * total[s] @ nu + count[s] * cp.matrix_frac(nu, prec))
        return cp.sum(cp.hstack(terms)) if terms else cp.Constant(0.0), cons

    def admm_prox(self, records, k, p):
        return px.GaussianProx(*self.stratum_stats(records, k))

    def admm_ready(self, p=None):
        # a positive eigenvalue floor would make the prox a constrained log det problem
        return p is None or p["eps"] == 0

    def admm_initial(self, records, shape, p):
        """The pooled estimate, S = Σ⁻¹ (ridged when singular), ν = Sμ."""
        _k, _rows, m = shape
        y = records.y
        if len(y) < 2:
            return None
        w = None if records.weight is None else records.weight
        if w is not None and np.sum(w > 0) < 2:
            return None
        cov = np.atleast_2d(np.cov(y, rowvar=False, aweights=w)) + 1e-6 * np.eye(m)
        prec = np.linalg.inv(cov)
        mean = np.average(y, axis=0, weights=w)
        return np.broadcast_to(np.vstack([prec, prec @ mean]), shape).copy()

    # no linear predictor: the records' θ themselves give the value, mean and likelihood
    def records_value(self, records, theta_rec, p):
        each = self._twice_nll_core(theta_rec, records.y)
        return float(np.sum(each) if records.weight is None else records.weight @ each)

    def records_predict(self, records, theta_rec, p, classes):
        return {"mean": self.mean(theta_rec)}

    def records_metrics(self, records, theta_rec, p, classes):
        return {"anll": metrics.mean(self.nll_stratified(theta_rec, records.y), records.weight)}

    def _twice_nll_core(self, theta_rec: np.ndarray, y: np.ndarray) -> np.ndarray:
        """+inf for a record whose S is not positive definite (outside the loss's domain)."""
        prec, nu = self.split(theta_rec)
        sign, logdet = np.linalg.slogdet(prec)
        inside = sign > 0
        out = np.full(len(y), np.inf)
        prec, nu, y = prec[inside], nu[inside], y[inside]
        quad = np.einsum("ni,nij,nj->n", y, prec, y)
        frac = np.einsum("ni,ni->n", nu, np.linalg.solve(prec, nu[..., None])[..., 0])
        out[inside] = -logdet[inside] + quad - 2 * np.einsum("ni,ni->n", y, nu) + frac
        return out

    def nll_stratified(self, theta_rec: np.ndarray, y: np.ndarray) -> np.ndarray:
        m = y.shape[1]
        return 0.5 * self._twice_nll_core(theta_rec, y) + 0.5 * m * np.log(2 * np.pi)

    def mean(self, theta_rec: np.ndarray) -> np.ndarray:
        prec, nu = self.split(theta_rec)
        return np.linalg.solve(prec, nu[..., None])[..., 0]
