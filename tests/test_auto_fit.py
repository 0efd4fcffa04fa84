"""Weights written `auto`, chosen when the model is fitted: end to end through the API
against the dense brute-force reference (tests/laplace_reference.py: every matrix dense,
the criterion minimized by scipy), for every loss with a likelihood reading (the test is
parametrized over the loss registry, so a new one cannot go untested), with offsets and
record weights; the report in info and summary; errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import stratlang
from stratlang.kinds import LOSSES

from .laplace_reference import DenseModel

LIKELIHOODS = [name for name in LOSSES.names() if LOSSES[name].likelihood is not None]
S_NODES, T_NODES = 4, 3  # strata: a path of 4 × a cycle of 3


def _response(domain: str, eta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draws from the model's own distribution for a loss's response domain (a new
    domain fails here: give it its draw)."""
    if domain == "real":
        return eta + rng.normal(scale=0.8, size=len(eta))
    if domain in ("binary", "zero_one"):
        return (rng.random(len(eta)) < 1 / (1 + np.exp(-eta))).astype(int)
    if domain == "categorical":
        scores = np.column_stack([eta, -eta, 0.5 * eta]) + rng.gumbel(size=(len(eta), 3))
        return np.argmax(scores, axis=1)
    if domain == "count":
        return rng.poisson(np.exp(eta))
    if domain == "nonnegative":
        return rng.exponential(np.exp(eta))
    raise KeyError(f"no draw for the response domain '{domain}': add one")


def _case(name: str, seed: int = 0):
    loss = LOSSES[name]
    rng = np.random.default_rng(seed)
    n_records = 200
    s = rng.integers(0, S_NODES, n_records)
    t = rng.integers(0, T_NODES, n_records)
    x = rng.normal(size=n_records)
    features = loss.features != "forbidden"
    offset = loss.offset_problem is None
    exposure = rng.uniform(0.5, 2.0, n_records)
    # stratum effects the data determine: a random walk along the path, a draw per cycle node
    eta = np.cumsum(rng.normal(scale=0.5, size=S_NODES))[s] + rng.normal(scale=0.5,
                                                                        size=T_NODES)[t]
    if features:
        eta = eta + 0.5 * x
    if offset:
        eta = eta + 0.3 * np.log(exposure)
    frame = pd.DataFrame({"y": _response(loss.domain, eta, rng), "x": x, "s": s, "t": t,
                          "w": rng.uniform(0.5, 2.0, n_records),
                          "log_exposure": 0.3 * np.log(exposure)})
    lines = ["model m", f"response y ~ {name}" + (" offset log_exposure" if offset else ""),
             "weights w"]
    if features:
        # (every row penalized: a multinomial's class scores shifted together are
        # determined by the penalty only)
        lines += ["features x, intercept", "regularize auto * sum_squares exclude []",
                  f"stratify s ~ path weight auto nodes 0..{S_NODES - 1}",
                  f"stratify t ~ cycle weight 2 nodes 0..{T_NODES - 1}"]
    else:
        lines += [f"stratify s ~ path weight auto nodes 0..{S_NODES - 1}",
                  f"stratify t ~ cycle weight auto nodes 0..{T_NODES - 1}"]
    return stratlang.load("\n".join(lines) + "\n"), frame, features


class _WithFixed(DenseModel):
    """The reference with a fixed part of the penalty beside the chosen ones, its loss's
    Hessian summed per stratum (the dense N × K·d products of the plain reference take
    half a minute for a multinomial)."""

    fixed: np.ndarray | int = 0

    def penalty(self, w):
        return super().penalty(w) + self.fixed

    def loss(self, theta):
        import scipy.linalg

        k, n, m = self.k, self.n, self.m
        eta = np.einsum("in,inm->im", self.x, theta.reshape(k, n, m)[self.z])
        if self.offset is not None:
            eta = eta + self.offset[:, None]
        value, d1, d2 = self.unit.derivatives(eta, self.y)
        value = value if value.ndim == 1 else value.sum(axis=1)
        w = np.ones(len(self.z)) if self.weight is None else self.weight
        curvature = (d2[:, :, None] * np.eye(m) if d2.ndim == 2 else d2) * w[:, None, None]
        grad = np.zeros((k, n * m))
        np.add.at(grad, self.z, np.einsum("ia,io->iao", self.x, d1 * w[:, None])
                  .reshape(-1, n * m))
        blocks = np.zeros((k, n * m, n * m))
        np.add.at(blocks, self.z, np.einsum("ia,ib,iop->iaobp", self.x, self.x, curvature)
                  .reshape(-1, n * m, n * m))
        return float(w @ value), grad.reshape(-1), scipy.linalg.block_diag(*blocks)


def _reference(model: stratlang.Model, frame: pd.DataFrame, features: bool,
               fitted_theta: np.ndarray) -> tuple[DenseModel, list[str]]:
    design = model.bind(frame)
    k, n, m = design.theta_shape
    unit = design.loss.likelihood_unit(dict(design.model.response.loss.params))
    factors = design.strata.graphs()
    ridge = np.ones((k, n))
    if features:  # auto: sum_squares on x and the path; fixed: the cycle at 2
        parts, names = [("ridge", np.repeat(ridge, m, axis=1)), ("laplacian", 0, None)], [
            "reg0.sum_squares", "stratify.s"]
    else:
        parts, names = [("laplacian", 0, None), ("laplacian", 1, None)], ["stratify.s",
                                                                          "stratify.t"]
    reference = _WithFixed(design.x, design.z, design.records.observed_y, unit, factors, parts,
                           m=m, offset=design.offset, weight=design.weight,
                           dispersion=design.loss.likelihood.dispersion)
    if features:
        reference.fixed = 2.0 * DenseModel(design.x, design.z, design.records.observed_y, unit,
                                           factors, [("laplacian", 1, None)], m=m).matrices[0]
    reference._cache["theta"] = fitted_theta.reshape(-1)  # (a start inside the domain)
    return reference, names


def _gradient(reference: DenseModel, rho: np.ndarray, kind: str = "reml",
              h: float = 1e-2) -> np.ndarray:
    """The reference criterion's gradient by the five-point stencil (error O(h⁴); a
    smaller step would drown in the criterion's rounding)."""
    out = np.zeros(len(rho))
    for a in range(len(rho)):
        e = np.zeros(len(rho))
        e[a] = h
        f = [reference.criterion(rho + j * e, kind) for j in (2, 1, -1, -2)]
        out[a] = (-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * h)
    return out


def _hessian(reference: DenseModel, rho: np.ndarray, kind: str = "reml",
             h: float = 1e-2) -> np.ndarray:
    """The reference criterion's Hessian by second differences (error O(h²))."""
    q = len(rho)
    out = np.zeros((q, q))
    for a in range(q):
        for b in range(q):
            ea, eb = np.eye(q)[a] * h, np.eye(q)[b] * h
            out[a, b] = (reference.criterion(rho + ea + eb, kind)
                         - reference.criterion(rho + ea - eb, kind)
                         - reference.criterion(rho - ea + eb, kind)
                         + reference.criterion(rho - ea - eb, kind)) / (4 * h * h)
    return out


def _minimized(reference: DenseModel, rho: np.ndarray, kind: str = "reml") -> np.ndarray:
    """The reference's own minimizer near ρ: Newton steps on its finite-difference
    gradient and Hessian (a start elsewhere would only cost a search: the criterion has
    one minimum here)."""
    hessian = _hessian(reference, rho, kind)
    for _ in range(3):
        rho = rho - np.linalg.solve(hessian, _gradient(reference, rho, kind))
    return rho


@pytest.mark.parametrize("name", LIKELIHOODS)
def test_reml_weights_match_the_dense_reference(name):
    model, frame, features = _case(name)
    fitted = model.fit(frame)
    reference, names = _reference(model, frame, features, fitted.theta.to_numpy())
    chosen = np.array([fitted.weights[n] for n in names])
    rho = _minimized(reference, np.log(chosen))
    np.testing.assert_allclose(chosen, np.exp(rho), rtol=1e-6)
    report = fitted.info["selection"]
    assert report["method"] == "reml" and report["converged"]
    np.testing.assert_allclose(report["criterion"], reference.criterion(rho), rtol=1e-8)
    # the standard errors on the log scale: the inverse Hessian of the criterion in log w
    se = np.sqrt(np.diag(np.linalg.inv(_hessian(reference, rho))))
    np.testing.assert_allclose([report["weights"][n]["log_se"] for n in names], se, rtol=1e-3)
    assert all(report["weights"][n]["limit"] is None for n in names)
    if features:
        assert fitted.weights["stratify.t"] == 2.0  # a fixed weight stays fixed
        assert set(report["weights"]) == {"reg0.sum_squares", "stratify.s"}
