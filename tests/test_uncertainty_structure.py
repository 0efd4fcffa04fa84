"""Standard errors, intervals and edf of models whose rows differ in their graph terms
(`by` a subset of the factors, `shared`, a weight of their own, `interact`), against a
dense brute force: T (θ = Tφ) built by loops, H_θ from the records and P from the edges
written out here, φ's covariance (TᵀHT)⁻¹ inverted by numpy, θ's T(TᵀHT)⁻¹Tᵀ."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

import stratlang
from stratlang.uncertainty import NoUncertainty

from .laplace_reference import constant_lift

N1, N2 = 5, 4  # path g1 × cycle g2
K = N1 * N2
STRATA = list(itertools.product(range(N1), range(N2)))  # C order: g1 slowest


def _frame(seed: int = 0, n: int = 260) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g1, g2 = rng.integers(0, N1, n), rng.integers(0, N2, n)
    keep = ~((g1 == 2) & (g2 == 1))  # a stratum without data
    frame = pd.DataFrame({"g1": g1[keep], "g2": g2[keep]})
    m = len(frame)
    frame["x"] = rng.normal(size=m)
    frame["o"] = rng.normal(scale=0.2, size=m)
    eta = (0.2 + 0.1 * frame.g1) * frame.x + 0.3 * np.sin(frame.g1) + 0.2 * np.cos(frame.g2)
    frame["real"] = eta + rng.normal(scale=0.5, size=m)
    frame["count"] = rng.poisson(np.exp(eta + frame.o))
    return frame


def _laplacian(edges: list[tuple[int, int]], n: int) -> np.ndarray:
    out = np.zeros((n, n))
    for i, j in edges:
        out[i, i] += 1
        out[j, j] += 1
        out[i, j] -= 1
        out[j, i] -= 1
    return out


PATH = _laplacian([(i, i + 1) for i in range(N1 - 1)], N1)
CYCLE = _laplacian([(i, (i + 1) % N2) for i in range(N2)], N2)
ALONG = {"g1": np.kron(PATH, np.eye(N2)), "g2": np.kron(np.eye(N1), CYCLE)}


def _row_mask(rows: list[bool]) -> np.ndarray:
    return np.diag(np.array(rows, dtype=float))


# each case: features, the other statements, the rows (x, intercept) constant along
# (g1, g2), and the penalty parts written out: (weight, K×K graph matrix, row mask)
CASES = {
    "by": ("features x by g1, intercept", "",
           [[False, True], [False, False]],
           [(2.0, ALONG["g1"], [True, True]), (0.7, ALONG["g2"], [False, True])]),
    "shared": ("features x shared, intercept", "",
               [[True, True], [False, False]],
               [(2.0, ALONG["g1"], [False, True]), (0.7, ALONG["g2"], [False, True])]),
    "own weight": ("features x by (g1 weight 6, g2), intercept", "",
                   [[False, False], [False, False]],
                   [(2.0, ALONG["g1"], [False, True]), (6.0, ALONG["g1"], [True, False]),
                    (0.7, ALONG["g2"], [True, True])]),
    "interact": ("features x by g1, intercept", "interact g1 * g2 weight 3\n",
                 [[False, True], [False, False]],
                 [(2.0, ALONG["g1"], [True, True]), (0.7, ALONG["g2"], [False, True]),
                  (3.0, np.kron(PATH, CYCLE), [True, True])]),
}


def _induced(laplacian: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The Laplacian of the subgraph on the nodes ``keep`` marks, from the adjacency."""
    adjacency = np.diag(np.diag(laplacian)) - laplacian
    sub = adjacency[keep][:, keep]
    return np.diag(sub.sum(axis=1)) - sub


def _on_x(g1_nodes: np.ndarray, g2_nodes: np.ndarray, along: str) -> np.ndarray:
    """(K·2 × K·2) the graph term along ``along`` of the slope x present on the strata
    g1_nodes × g2_nodes only: the factors' induced subgraphs, embedded."""
    keep = np.logical_and.outer(g1_nodes, g2_nodes).reshape(-1)
    pieces = (_induced(PATH, g1_nodes) if along == "g1" else np.eye(int(g1_nodes.sum())),
              _induced(CYCLE, g2_nodes) if along == "g2" else np.eye(int(g2_nodes.sum())))
    embed = np.eye(K)[:, keep]
    return np.kron(embed @ np.kron(*pieces) @ embed.T, _row_mask([True, False]))


G1_SOME = np.array([False, True, True, True, False])  # g1 in {1, 2, 3}
G2_SOME = np.array([True, True, True, False])  # g2 in {0, 1, 2}
ALL1, ALL2 = np.ones(N1, dtype=bool), np.ones(N2, dtype=bool)
# `where` cases: the slope's parts as θ-space matrices, its strata (g1 nodes, g2 nodes)
WHERE = {
    "where": ("features x where g1 in {1, 2, 3}, intercept", "",
              [[False, False], [False, False]],
              [(2.0, ALONG["g1"], [False, True]), (2.0, _on_x(G1_SOME, ALL2, "g1"), None),
               (0.7, ALONG["g2"], [False, True]), (0.7, _on_x(G1_SOME, ALL2, "g2"), None)],
              (G1_SOME, ALL2)),
    "where by": ("features x by g1 where g2 in {0, 1, 2}, intercept",
                 "interact g1 * g2 weight 3\n", [[False, True], [False, False]],
                 [(2.0, ALONG["g1"], [False, True]), (2.0, _on_x(ALL1, G2_SOME, "g1"), None),
                  (0.7, ALONG["g2"], [False, True]),
                  (3.0, np.kron(PATH, CYCLE), [False, True])],
                 (ALL1, G2_SOME)),
}
CASES.update({name: case[:4] for name, case in WHERE.items()})
LOSSES = {"squared": ("real ~ squared offset o", lambda eta: np.full_like(eta, 2.0)),
          "poisson_regression": ("count ~ poisson_regression offset o", np.exp)}


def _spec(case: str, loss: str) -> str:
    features, extra, _, _ = CASES[case]
    return (f"model s\nresponse {LOSSES[loss][0]}\n{features}\n"
            f"stratify g1 ~ path weight 2 nodes 0..{N1 - 1}\n"
            f"stratify g2 ~ cycle weight 0.7 nodes 0..{N2 - 1}\n{extra}")


def _brute(fitted, frame: pd.DataFrame, case: str, loss: str):
    """(θ's covariance (K·d × K·d), T, H_θ's data part, the penalty, the dispersion)."""
    _, _, constant, parts = CASES[case]
    theta = fitted.theta_array[:, :, 0]  # (K, 2): x, intercept
    assert list(fitted.theta.index) == STRATA
    index = {key: i for i, key in enumerate(STRATA)}
    strata = np.array([index[(a, b)] for a, b in zip(frame.g1, frame.g2, strict=True)])
    x = np.column_stack([frame.x, np.ones(len(frame))])
    eta = np.sum(x * theta[strata], axis=1) + frame.o.to_numpy()
    curvature = LOSSES[loss][1](eta)
    d = 2
    data = np.zeros((K * d, K * d))
    for i in range(len(frame)):
        s = strata[i] * d
        data[s:s + d, s:s + d] += curvature[i] * np.outer(x[i], x[i])
    penalty = sum(w * (graph if rows is None else np.kron(graph, _row_mask(rows)))
                  for w, graph, rows in parts)
    present = None
    if case in WHERE:
        g1_nodes, g2_nodes = WHERE[case][4]
        present = [{(a, b) for a, b in STRATA if g1_nodes[a] and g2_nodes[b]}, None]
    lift = constant_lift((N1, N2), np.array(constant), present)
    h_phi = lift.T @ (data + penalty) @ lift
    inverse = np.linalg.inv(h_phi)
    phi = 1.0
    if loss == "squared":
        edf = float(np.trace(inverse @ lift.T @ data @ lift))
        phi = 2.0 * float(np.sum((eta - frame.real.to_numpy()) ** 2)) / (len(frame) - edf)
    return phi * lift @ inverse @ lift.T, lift, data, penalty, phi


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("case", sorted(CASES))
def test_standard_errors_match_the_dense_brute_force_in_phi(case, loss):
    frame = _frame()
    fitted = stratlang.load(_spec(case, loss)).fit(frame)
    cov, _, _, _, phi = _brute(fitted, frame, case, loss)
    expected = np.sqrt(np.diag(cov)).reshape(K, 2)
    got = fitted.theta_se
    assert got.shape == fitted.theta.shape and list(got.index) == STRATA
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-8)
    assert fitted.uncertainty.dispersion == pytest.approx(phi, rel=1e-9)
    assert fitted.info["uncertainty_method"] == "exact-cholesky"
    constant = np.array(CASES[case][2])
    se = got.to_numpy().reshape(N1, N2, 2)
    present = (ALL1, ALL2), (ALL1, ALL2)
    if case in WHERE:  # the slope is absent (fixed at 0) elsewhere: no standard error
        present = WHERE[case][4], (ALL1, ALL2)
        absent = ~np.logical_and.outer(*WHERE[case][4])
        assert np.all(se[:, :, 0][absent] == 0) and np.all(se[:, :, 0][~absent] > 0)
    for row in range(2):  # a row constant along a factor has one standard error along it
        block = se[:, :, row][np.ix_(*present[row])]
        for axis in np.flatnonzero(constant[row]):
            assert np.max(np.ptp(block, axis=axis)) <= 1e-12 * np.max(block)


def test_a_shared_slope_has_one_standard_error_and_interval_everywhere():
    frame = _frame()
    fitted = stratlang.load(_spec("shared", "poisson_regression")).fit(frame)
    se = fitted.theta_se["x"].to_numpy()
    assert np.ptp(se) == 0.0 or np.ptp(se) <= 1e-14 * se[0]
    lower, upper = fitted.intervals(0.9)
    z = 1.6448536269514722
    np.testing.assert_allclose(lower.to_numpy(), (fitted.theta - z * fitted.theta_se).to_numpy())
    np.testing.assert_allclose(upper.to_numpy(), (fitted.theta + z * fitted.theta_se).to_numpy())
    assert np.ptp(lower["x"].to_numpy()) <= 1e-12 * abs(lower["x"].iloc[0])


@pytest.mark.parametrize("case", ["by", "interact"])
def test_prediction_intervals_through_the_link(case):
    frame = _frame()
    fitted = stratlang.load(_spec(case, "poisson_regression")).fit(frame)
    cov = _brute(fitted, frame, case, "poisson_regression")[0]
    new = pd.concat([_frame(seed=5, n=25),
                     pd.DataFrame({"g1": [2], "g2": [1], "x": [0.4], "o": [0.1]})],
                    ignore_index=True)  # with the stratum that has no data
    got = fitted.predict(new, interval=0.95)
    z = 1.959963984540054
    index = {key: i for i, key in enumerate(STRATA)}
    for row, (_, record) in zip(got.itertuples(), new.iterrows(), strict=True):
        s = index[(record.g1, record.g2)]
        x = np.array([record.x, 1.0])
        eta = x @ fitted.theta_array[s][:, 0] + record.o
        sd = math.sqrt(x @ cov[2 * s:2 * s + 2, 2 * s:2 * s + 2] @ x)
        assert row.prediction_lower == pytest.approx(math.exp(eta - z * sd), rel=1e-8)
        assert row.prediction_upper == pytest.approx(math.exp(eta + z * sd), rel=1e-8)


@pytest.mark.parametrize("case", ["by", "shared", "own weight", "interact"])
def test_edf_per_term_add_up_and_match_the_brute_force(case):
    """edf_a = w_a tr((TᵀPT)⁺TᵀS_aT) − w_a tr(H_φ⁻¹TᵀS_aT), the unpenalized directions
    p − rank TᵀPT; the total tr(H_φ⁻¹Tᵀ∇²ℓT)."""
    frame = _frame()
    fitted = stratlang.load(_spec(case, "poisson_regression")).fit(frame)
    cov, lift, data, penalty, _ = _brute(fitted, frame, case, "poisson_regression")
    h_inverse = lift.T @ cov @ lift  # (TᵀHT)⁻¹ (T orthonormal, φ = 1)
    reduced = lift.T @ penalty @ lift
    pseudo = np.linalg.pinv(reduced, rcond=1e-10, hermitian=True)
    edf = fitted.uncertainty.edf
    names = {"by": ["stratify.g1", "stratify.g2"], "shared": ["stratify.g1", "stratify.g2"],
             "own weight": ["stratify.g1", "stratify.g1[x]", "stratify.g2"],
             "interact": ["stratify.g1", "stratify.g2", "interact.g1_g2"]}[case]
    for name, (w, graph, rows) in zip(names, CASES[case][3], strict=True):
        part = lift.T @ (w * np.kron(graph, _row_mask(rows))) @ lift
        assert edf[name] == pytest.approx(np.sum(pseudo * part) - np.sum(h_inverse * part),
                                          rel=1e-8)
    p = lift.shape[1]
    assert edf["unpenalized"] == p - np.linalg.matrix_rank(reduced)
    total = float(np.trace(h_inverse @ lift.T @ data @ lift))
    assert edf["total"] == pytest.approx(total, rel=1e-9)
    assert sum(v for key, v in edf.items() if key != "total") == pytest.approx(total, rel=1e-8)


@pytest.mark.parametrize(("case", "free"), [("by", 25), ("where", 32)])
def test_beyond_the_exact_factorization_is_refused_naming_the_limit(monkeypatch, case, free):
    """The refusal names both causes (a `where` model has no row held constant)."""
    import stratlang.solvers.curvature as curvature

    monkeypatch.setattr(curvature, "EXACT_LIMIT", 20)
    fitted = stratlang.load(_spec(case, "squared")).fit(_frame())
    with pytest.raises(NoUncertainty) as caught:
        _ = fitted.theta_se
    assert str(caught.value) == (
        "no standard errors: coefficients held constant along a factor or present in some "
        "strata only are handled by an exact factorization, up to 20 free coefficients; this "
        f"model has {free}")
