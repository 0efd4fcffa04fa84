"""The regularizer registry: local regularizers r(θ_k) and constraints on θ_k.

A term applies to the rows of θ_k that are not excluded (by default the intercept).
Conventions: ``sum_squares`` is (λ/2)‖θ‖², as in the stratified paper's code, so its
hyper-parameters carry over; ``l1`` is λ‖θ‖₁, ``l2`` is λ‖θ‖₂ (not squared, a group
penalty per stratum), ``elastic_net(ratio)`` is λ(ratio‖θ‖₁ + (1 − ratio)/2 ‖θ‖²).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..language.params import Param, count, in_unit, positive
from ..language.vocabulary import Registry
from ..solvers import prox as px

if TYPE_CHECKING:  # CVXPY is imported when a CVXPY form is built, not with the registry
    import cvxpy as cp

REGULARIZERS: Registry[Regularizer] = Registry("regularizer")


@dataclass(frozen=True)
class Regularizer:
    """``block`` arguments are the selected rows of every stratum: shape (K, rows, outputs)
    in numpy; in CVXPY a (K·rows, outputs) expression, stratum-major."""

    name: ClassVar[str]
    doc: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    is_constraint: ClassVar[bool] = False
    # a non-convex term has no CVXPY form: ADMM fits it as a local method, starting from the
    # fit without it (its convex relaxation: a cardinality set relaxed to everything, a
    # bounded penalty to its convex envelope, 0), whose optimum is then a lower bound
    convex: ClassVar[bool] = True
    # its only minimizer is θ = 0: a stratum with no record and no edge is then determined
    # (at 0); with a set of minimizers (a constraint, zero) it is not
    pins: ClassVar[bool] = False

    # ---- what the checker asks ------------------------------------------------------
    def invalid(self, p: dict[str, Any]) -> str | None:
        """What is wrong with these parameters together (each alone is checked by its
        declaration), or None."""
        return None

    def unsupported_with(self, loss: Any) -> str | None:
        """Why this regularizer cannot go with a loss, or None."""
        return None

    # ---- forms --------------------------------------------------------------------------
    def cvxpy(self, block: cp.Expression, k: int, rows: int, p: dict[str, Any]) -> cp.Expression:
        import cvxpy as cp

        return cp.Constant(0.0)

    def constraints(self, block: cp.Expression, p: dict[str, Any]) -> list[cp.Constraint]:
        return []

    def value(self, block: np.ndarray, p: dict[str, Any]) -> float:
        return 0.0

    def recession(self, block: cp.Expression, p: dict[str, Any]) -> list[cp.Constraint]:
        """The directions d along which the term stays bounded as θ + t·d, t → ∞ (a
        constraint: its set's recession cone; a penalty with a positive weight: where it
        is 0); the default, a norm or a bounded set: only d = 0."""
        return [block == 0]

    def feasible(self, block: np.ndarray, p: dict[str, Any], tol: float = 1e-6) -> bool:
        return True

    def prox(self, block: np.ndarray, t: float, p: dict[str, Any]) -> np.ndarray | None:
        """prox of t·r on the selected rows, shape (K, rows, outputs); None if the ADMM
        backend has no prox for this regularizer."""
        return None

    def admm_ready(self) -> bool:
        return type(self).prox is not Regularizer.prox

    def only_zero(self, p: dict[str, Any]) -> bool:
        """Whether the constraint allows its entries no value but 0 (they are then fixed
        there, whatever the data)."""
        return False

    def fixed_zeros(self, block: np.ndarray, p: dict[str, Any]) -> np.ndarray | None:
        """A non-convex constraint at a feasible point: the entries it holds at 0 there
        (a mask of the block), whose fixing leaves a convex problem; None when it has no
        such piece (the model is then not polished on it)."""
        return None

    def quadratic_weight(self, weight: float, p: dict[str, Any]) -> float | None:
        """c when the term is (c/2)‖θ‖² (it then keeps a problem quadratic), else None."""
        return None

    def personalized_penalty(self, weight: float, p: dict[str, Any]) -> tuple[float, float, float] | None:
        """The term as the personalized solver's ψ: weights of (‖θ‖₁, ½‖θ‖², ‖θ‖₂), or
        None when personalized models cannot use it."""
        return None

    @property
    def personalizable(self) -> bool:
        return type(self).personalized_penalty is not Regularizer.personalized_penalty


def _per_stratum(block: cp.Expression, k: int, rows: int) -> cp.Expression:
    """(K·rows, m) stratum-major → (K, rows·m), one stratum per row."""
    import cvxpy as cp

    m = block.shape[1]
    return cp.reshape(block, (k, rows * m), order="C")


@REGULARIZERS.entry
class Zero(Regularizer):
    name = "zero"
    doc = "No regularization."

    def prox(self, block, t, p):
        return block

    def recession(self, block, p):
        return []

    def quadratic_weight(self, weight, p):
        return 0.0

    def personalized_penalty(self, weight, p):
        return (0.0, 0.0, 0.0)


@REGULARIZERS.entry
class SumSquares(Regularizer):
    name = "sum_squares"
    doc = "(λ/2)‖θ‖²: ridge."
    pins = True

    def cvxpy(self, block, k, rows, p):
        import cvxpy as cp

        return 0.5 * cp.sum_squares(block)

    def value(self, block, p):
        return 0.5 * float(np.sum(block ** 2))

    def prox(self, block, t, p):
        return px.sum_squares(block, t)

    def quadratic_weight(self, weight, p):
        return weight

    def personalized_penalty(self, weight, p):
        return (0.0, weight, 0.0)


@REGULARIZERS.entry
class L1(Regularizer):
    name = "l1"
    doc = "λ‖θ‖₁: lasso."
    pins = True

    def cvxpy(self, block, k, rows, p):
        import cvxpy as cp

        return cp.sum(cp.abs(block))

    def value(self, block, p):
        return float(np.sum(np.abs(block)))

    def prox(self, block, t, p):
        return px.soft_threshold(block, t)

    def personalized_penalty(self, weight, p):
        return (weight, 0.0, 0.0)


@REGULARIZERS.entry
class L2(Regularizer):
    name = "l2"
    doc = "λ‖θ_k‖₂ for each stratum (not squared): shrinks a whole stratum's model at once."
    pins = True

    def cvxpy(self, block, k, rows, p):
        import cvxpy as cp

        return cp.sum(cp.norm(_per_stratum(block, k, rows), 2, axis=1))

    def value(self, block, p):
        return float(np.sum(np.linalg.norm(block.reshape(len(block), -1), axis=1)))

    def prox(self, block, t, p):
        return px.group_l2(block, t)

    def personalized_penalty(self, weight, p):
        return (0.0, 0.0, weight)


@REGULARIZERS.entry
class ElasticNet(Regularizer):
    name = "elastic_net"
    doc = "λ(ratio‖θ‖₁ + (1 − ratio)/2 ‖θ‖²)."
    pins = True
    params = (Param("ratio", default=0.5, check=in_unit, doc="share of the l1 part"),)

    def cvxpy(self, block, k, rows, p):
        import cvxpy as cp

        r = p["ratio"]
        return r * cp.sum(cp.abs(block)) + (1 - r) / 2 * cp.sum_squares(block)

    def value(self, block, p):
        r = p["ratio"]
        return float(r * np.sum(np.abs(block)) + (1 - r) / 2 * np.sum(block ** 2))

    def prox(self, block, t, p):
        return px.elastic_net(block, t, p["ratio"])

    def personalized_penalty(self, weight, p):
        return (weight * p["ratio"], weight * (1 - p["ratio"]), 0.0)


@REGULARIZERS.entry
class Nuclear(Regularizer):
    name = "nuclear"
    doc = "λ Σ_k ‖θ_k‖_* (sum of singular values): low-rank multi-output models."
    pins = True

    def cvxpy(self, block, k, rows, p):
        import cvxpy as cp

        return cp.sum(cp.hstack([cp.normNuc(block[s * rows:(s + 1) * rows, :]) for s in range(k)]))

    def value(self, block, p):
        return float(np.sum(np.linalg.svd(block, compute_uv=False)))

    def prox(self, block, t, p):
        return px.nuclear(block, t)


@REGULARIZERS.entry
class Trace(Regularizer):
    name = "trace"
    doc = "λ tr(S_k): for the Gaussian loss, the trace of the precision matrix."

    def unsupported_with(self, loss):
        if loss.square_parameter:
            return None
        return f"'{self.name}' applies to the precision matrix of the 'gaussian' loss only"

    def cvxpy(self, block, k, rows, p):
        import cvxpy as cp

        mask = np.tile(np.eye(rows, block.shape[1]), (k, 1))  # (rows may hold the mean too)
        return cp.sum(cp.multiply(mask, block))

    def value(self, block, p):
        return float(np.trace(block, axis1=1, axis2=2).sum())

    def prox(self, block, t, p):  # linear: a shift of the diagonal
        return block - t * np.eye(block.shape[1], block.shape[2])


@REGULARIZERS.entry
class Nonnegative(Regularizer):
    name = "nonnegative"
    doc = "Constraint θ ≥ 0."
    is_constraint = True

    def constraints(self, block, p):
        return [block >= 0]

    def recession(self, block, p):
        return [block >= 0]

    def feasible(self, block, p, tol=1e-6):
        return bool(np.all(block >= -tol))

    def prox(self, block, t, p):
        return np.maximum(block, 0.0)


@REGULARIZERS.entry
class Box(Regularizer):
    name = "box"
    doc = "Constraint lower ≤ θ ≤ upper."
    params = (Param("lower", required=True), Param("upper", required=True))
    is_constraint = True

    def invalid(self, p):
        return "lower must not exceed upper" if p["lower"] > p["upper"] else None

    def constraints(self, block, p):
        return [block >= p["lower"], block <= p["upper"]]

    def feasible(self, block, p, tol=1e-6):
        return bool(np.all(block >= p["lower"] - tol) and np.all(block <= p["upper"] + tol))

    def prox(self, block, t, p):
        return np.clip(block, p["lower"], p["upper"])

    def only_zero(self, p):
        return p["lower"] == p["upper"] == 0


# ---- non-convex ---------------------------------------------------------------------------
@REGULARIZERS.entry
class Nonzeros(Regularizer):
    name = "nonzeros"
    doc = ("Constraint: at most k nonzero entries in each stratum's selected rows (best "
           "subset selection); non-convex: ADMM fits it as a local method.")
    params = (Param("k", type="int", required=True, check=count(10**6, low=0),
                    doc="nonzero entries allowed per stratum"),)
    is_constraint = True
    convex = False

    def feasible(self, block, p, tol=1e-6):
        k = len(block)
        return bool(np.all(np.sum(np.abs(block.reshape(k, -1)) > tol, axis=1) <= p["k"]))

    def prox(self, block, t, p):
        return px.keep_largest(block, p["k"])

    def only_zero(self, p):
        return p["k"] == 0  # (a valid, if trivial, fit: e.g. the intercept-only model)

    def fixed_zeros(self, block, p):
        return block == 0  # (the support kept: a projection's zeros are exact)


@REGULARIZERS.entry
class Mcp(Regularizer):
    name = "mcp"
    doc = ("The minimax concave penalty λ Σ ρ(θ), ρ(t) = |t| − t²/(2a) for |t| ≤ a and a/2 "
           "beyond: shrinks like l1 near 0 and leaves coefficients larger than a alone "
           "(unbiased); non-convex: ADMM fits it as a local method.")
    pins = True
    params = (Param("a", required=True, check=positive,
                    doc="the magnitude from which a coefficient is no longer shrunk"),)
    convex = False

    def recession(self, block, p):
        return []  # (capped: constant beyond a·λ)

    def value(self, block, p):
        return float(np.sum(px.mcp_penalty(block, p["a"])))

    def prox(self, block, t, p):
        return px.mcp(block, t, p["a"])
