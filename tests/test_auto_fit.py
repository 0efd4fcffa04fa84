"""Weights written `auto`, chosen when the model is fitted: end to end through the API
against the dense brute-force reference (tests/laplace_reference.py: every matrix dense,
the criterion minimized by scipy), for every loss with a likelihood reading (the test is
parametrized over the loss registry, so a new one cannot go untested), with offsets and
record weights; the report in info and summary; errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import stratlang
from stratlang.kinds import LOSSES
from stratlang.language.errors import OptionError, StratlangError

from .laplace_reference import DenseModel

# (a loss of each stratum's θ whole, gaussian, is tested in test_gaussian_laplace)
LIKELIHOODS = [name for name in LOSSES.names() if LOSSES[name].likelihood is not None
               and not LOSSES[name].sees_stratum_whole]
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


# ---- ML and GCV; an unpenalized intercept (P's null space) makes ML differ from REML ----
def _gaussian(seed: int = 3, effect: float = 0.5) -> tuple[stratlang.Model, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    s = rng.integers(0, S_NODES, 160)
    x = rng.normal(size=160)
    walk = np.cumsum(rng.normal(scale=effect, size=S_NODES))
    frame = pd.DataFrame({"y": walk[s] + 0.5 * x + rng.normal(size=160), "x": x, "s": s})
    spec = ("model g\nresponse y ~ squared\nfeatures x, intercept\n"
            f"stratify s ~ path weight auto nodes 0..{S_NODES - 1}\n")
    return stratlang.load(spec), frame


def _gaussian_reference(model, frame, theta) -> DenseModel:
    design = model.bind(frame)
    reference = DenseModel(design.x, design.z, design.records.observed_y,
                           design.loss.likelihood_unit({}), design.strata.graphs(),
                           [("laplacian", 0, None)], dispersion=True)
    reference._cache["theta"] = theta.reshape(-1)
    return reference


@pytest.mark.parametrize("method", ["ml", "gcv"])
def test_ml_and_gcv_match_the_dense_reference(method):
    model, frame = _gaussian()
    fitted = model.fit(frame, select=method)
    reml = model.fit(frame).weights["stratify.s"]
    reference = _gaussian_reference(model, frame, fitted.theta.to_numpy())
    chosen = fitted.weights["stratify.s"]
    rho = _minimized(reference, np.log([chosen]), method)
    np.testing.assert_allclose(chosen, np.exp(rho[0]), rtol=1e-6)
    assert abs(chosen / reml - 1) > 1e-2  # (the methods differ here)
    report = fitted.info["selection"]
    assert report["method"] == method
    np.testing.assert_allclose(report["criterion"], reference.criterion(rho, method), rtol=1e-8)
    if method == "gcv":  # (no likelihood: no standard error)
        assert report["weights"]["stratify.s"]["log_se"] is None


def test_gcv_scores_the_deviance_not_the_loss():
    """A Poisson loss Σ w (e^η − yη) is half the deviance plus the saturated model's loss
    Σ w (y − y log y), which does not cancel in N·D/(N − edf)²: GCV over the loss itself
    (negative here) chose other weights and reported a negative criterion."""
    rng = np.random.default_rng(8)
    s = rng.integers(0, S_NODES, 200)
    x, exposure, w = rng.normal(size=200), rng.uniform(0.5, 2.0, 200), rng.uniform(0.5, 2, 200)
    walk = np.cumsum(rng.normal(scale=0.4, size=S_NODES))
    y = rng.poisson(np.exp(1.0 + walk[s] + 0.5 * x) * exposure)
    frame = pd.DataFrame({"y": y, "x": x, "s": s, "w": w, "log_exposure": np.log(exposure)})
    model = stratlang.load("model p\nresponse y ~ poisson_regression offset log_exposure\n"
                           "weights w\nfeatures x, intercept\n"
                           f"stratify s ~ path weight auto nodes 0..{S_NODES - 1}\n")
    fitted = model.fit(frame, select="gcv")
    design = model.bind(frame)
    with np.errstate(divide="ignore", invalid="ignore"):
        saturated = float(w @ np.where(y > 0, y - y * np.log(y), 0.0))
    reference = DenseModel(design.x, design.z, design.records.observed_y,
                           design.loss.likelihood_unit({}), design.strata.graphs(),
                           [("laplacian", 0, None)], offset=design.offset,
                           weight=design.weight, saturated=saturated)
    reference._cache["theta"] = fitted.theta.to_numpy().reshape(-1)
    chosen = fitted.weights["stratify.s"]
    rho = _minimized(reference, np.log([chosen]), "gcv")
    np.testing.assert_allclose(chosen, np.exp(rho[0]), rtol=1e-4)
    report = fitted.info["selection"]
    assert report["criterion"] > 0
    np.testing.assert_allclose(report["criterion"], reference.criterion(rho, "gcv"), rtol=1e-7)


def test_squared_keeps_the_one_fit_spectral_search(monkeypatch):
    """squared's loss is its deviance: its fits carry none of their own, so beyond the
    exact limit with the same block on every stratum the search still reads θ̂(w) from
    spectral solves: two fits (the first, and the confirming refit), not one a step."""
    import stratlang.solvers.curvature as curvature

    monkeypatch.setattr(curvature, "EXACT_LIMIT", 0)
    rng = np.random.default_rng(0)
    s, t = np.meshgrid(np.arange(6), np.arange(4), indexing="ij")
    frame = pd.DataFrame({"s": np.repeat(s.ravel(), 3), "t": np.repeat(t.ravel(), 3)})
    frame["y"] = 0.3 * frame.s + np.sin(frame.t) + rng.normal(size=len(frame))
    fitted = stratlang.load("model u\nresponse y ~ squared\n"
                            "stratify s ~ path weight auto nodes 0..5\n"
                            "stratify t ~ cycle weight auto nodes 0..3\n").fit(frame)
    report = fitted.info["selection"]
    assert report["estimates"] == "exact-spectral" and report["converged"]
    assert report["inner_fits"] == 2 and report["iterations"] > 2


def test_the_spec_names_the_method_and_fit_overrides_it():
    model, frame = _gaussian()
    ml = stratlang.load(model.text + "solver newton select ml\n")
    assert ml.fit(frame).info["selection"]["method"] == "ml"
    assert ml.fit(frame, select="reml").info["selection"]["method"] == "reml"


def test_a_weight_the_data_cannot_determine_is_reported_as_running_off():
    rng = np.random.default_rng(1)  # no stratum effect, and the noise shows none: γ → ∞
    s, x = rng.integers(0, S_NODES, 200), rng.normal(size=200)
    frame = pd.DataFrame({"y": 0.5 * x + rng.normal(size=200), "x": x, "s": s})
    fitted = _gaussian()[0].fit(frame)
    chosen = fitted.info["selection"]["weights"]["stratify.s"]
    # (flagged once it has moved monotonically 2+ decades with the criterion flat: over
    # four decades here, where the fit no longer changes)
    assert chosen["limit"] == "infinite" and chosen["value"] > 1e4
    assert "stratify.s  ran to ∞: the data cannot determine it (stopped at " in str(
        fitted.summary())


def test_summary_states_the_choice():
    model, frame = _gaussian()
    fitted = model.fit(frame)
    report = fitted.info["selection"]
    text = str(fitted.summary())
    chosen = report["weights"]["stratify.s"]
    assert (f"  weights chosen by REML (criterion {report['criterion']:.8g}, "
            f"{report['iterations']} outer iterations in {report['seconds']:.3g} s, "
            f"exact-cholesky estimates, scale φ {report['scale']:.4g}):\n"
            f"    stratify.s  {chosen['value']:.4g} (log-scale SE {chosen['log_se']:.3g})\n"
            ) in text
    assert fitted.weights["stratify.s"] == chosen["value"]
    assert "weights chosen by REML" in fitted._repr_html_()


def test_fixing_an_auto_weight_fits_without_choosing():
    model, frame = _gaussian()
    fitted = model.fit(frame, weights={"stratify.s": 3.0})
    assert fitted.weights == {"stratify.s": 3.0} and "selection" not in fitted.info


def test_save_and_load_keep_the_choice(tmp_path):
    model, frame = _gaussian()
    fitted = model.fit(frame)
    path = fitted.save(tmp_path / "fit")
    loaded = stratlang.load_fitted(path)
    assert loaded.weights == fitted.weights
    assert loaded.info["selection"] == fitted.info["selection"]
    assert str(loaded.summary()) == str(fitted.summary())
    import json

    meta = json.loads(path.read_text())
    meta["info"]["selection"]["weights"]["stratify.s"]["value"] *= 2
    path.write_text(json.dumps(meta))
    with pytest.raises(StratlangError, match=r"info\.selection\.weights\.stratify\.s: the value "
                                             r".* is not the weight the model was fitted with"):
        stratlang.load_fitted(path)
    meta["info"]["selection"]["weights"]["stratify.s"]["value"] /= 2
    meta["info"]["selection"]["method"] = "aic"
    path.write_text(json.dumps(meta))
    with pytest.raises(StratlangError, match=r"info\.selection\.method: expected one of "
                                             r"reml, ml, gcv"):
        stratlang.load_fitted(path)


def test_api_errors():
    model, frame = _gaussian()
    with pytest.raises(OptionError, match=r"select='rml': unknown method of choosing auto "
                                          r"weights; did you mean 'reml'\?"):
        model.fit(frame, select="rml")
    fixed = stratlang.load("response y ~ squared\nfeatures x\nstratify s ~ path weight 1\n")
    with pytest.raises(OptionError, match=r"select='reml' chooses the weights written auto, "
                                          r"and model 'model' has none"):
        fixed.fit(frame, select="reml")


def test_an_undetermined_direction_is_a_clear_error():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"c": rng.integers(0, 3, 90), "x": rng.normal(size=90),
                          "s": rng.integers(0, 3, 90)})
    model = stratlang.load("response c ~ multinomial\nfeatures x, intercept\n"
                           "stratify s ~ path weight auto\n")
    with pytest.raises(StratlangError, match=r"choosing the auto weights of model 'model' by "
                                             r"REML failed: the curvature matrix is not "
                                             r"positive definite"):
        model.fit(frame)


def test_tune_chooses_the_auto_weights_in_every_fit():
    model, frame = _gaussian()
    swept = stratlang.load(model.text.replace("features x, intercept\n",
                                              "features x, intercept\n"
                                              "regularize {0.1, 10} * sum_squares\n"))
    with pytest.warns(stratlang.TuneWarning, match="is the smallest value of its grid"):
        result = swept.tune(frame, folds=2)  # (a grid of two: the best is at an end)
    assert set(result.best) == {"reg0.sum_squares"}
    assert "selection" in result.fitted.info and result.fitted.weights["stratify.s"] > 0


def test_cli_fit_select_and_json(tmp_path, capsys):
    from stratlang.cli import main

    model, frame = _gaussian()
    frame.to_csv(tmp_path / "d.csv", index=False)
    spec = tmp_path / "g.strat"
    spec.write_text(model.text.replace("model g\n", 'model g\ndata "d.csv"\n'))
    assert main(["fit", str(spec), "--select", "ml"]) == 0
    out = capsys.readouterr().out
    assert "  weights chosen by ML (criterion " in out
    assert main(["fit", str(spec), "--select", "gcv", "--format", "json"]) == 0
    import json

    doc = json.loads(capsys.readouterr().out)
    assert doc["selection"]["method"] == "gcv"
    assert doc["weights"]["stratify.s"] == doc["selection"]["weights"]["stratify.s"]["value"]
    assert doc["strata"]["factors"][0]["weight"] == doc["weights"]["stratify.s"]
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", str(spec), "--select", "aic"])
    assert exit_info.value.code == 2
    assert "argument --select: invalid choice: 'aic'" in capsys.readouterr().err


def test_partitioned_data_is_refused_before_any_fit(tmp_path):
    import dask.dataframe as dd
    model, frame = _gaussian()
    frame.to_parquet(tmp_path / "part-0.parquet")
    with pytest.raises(StratlangError, match=r"auto weights are chosen with the records in "
                                             r"memory; backend 'dask' leaves them on its "
                                             r"workers"):
        model.fit(dd.read_parquet(str(tmp_path / "*.parquet")), backend="dask")


def test_a_basis_model_is_refused_with_the_way_out():
    model, frame = _gaussian()
    basis = stratlang.load(model.text + "basis 2\n")
    with pytest.raises(StratlangError, match=r"auto weights of model 'g' cannot be chosen: a "
                                             r"basis model \(`basis`\) restricts θ to the "
                                             r"graph's smoothest eigenvectors; fix them "
                                             r"\(weights=\{…\}\) or write sweeps and use tune"):
        basis.fit(frame)


def test_a_ridge_weight_on_a_null_slope_is_flagged_by_the_engine_before_the_bound():
    """The slope is well determined by the data but ~0: its sum_squares weight drifts to ∞
    along a flat criterion. The engine flags it a few decades out (not at the 12-decade
    bound, not by a report-side guess), the search converges, the path's weight (which
    the data determine) is not flagged, and the flagged weight adds no interval width."""
    rng = np.random.default_rng(1)
    s, x = rng.integers(0, S_NODES, 300), rng.normal(size=300)
    frame = pd.DataFrame({"y": 0.3 * s + rng.normal(size=300), "x": x, "s": s})
    spec = ("model g\nresponse y ~ squared\nfeatures x, intercept\n"
            "regularize auto * sum_squares\n"
            f"stratify s ~ path weight auto nodes 0..{S_NODES - 1}\n")
    fitted = stratlang.load(spec).fit(frame)
    report = fitted.info["selection"]
    assert report["converged"] and report["iterations"] < 60
    ridge, path = report["weights"]["reg0.sum_squares"], report["weights"]["stratify.s"]
    assert ridge["limit"] == "infinite" and 1e2 <= ridge["value"] < 1e6
    assert path["limit"] is None and path["log_se"] < 2
    assert "reg0.sum_squares  ran to ∞: the data cannot determine it (stopped at " in str(
        fitted.summary())
    assert fitted._weight_spread.covariance.shape == (1, 1)  # the path's weight only


# ---- an interaction term's weight, chosen beside the factors' ----
def _interacting(seed: int = 1) -> tuple[stratlang.Model, pd.DataFrame]:
    """Main effects along each factor and their product: every weight is determined."""
    rng = np.random.default_rng(seed)
    n_records = 240
    s, t = rng.integers(0, S_NODES, n_records), rng.integers(0, T_NODES, n_records)
    x = rng.normal(size=n_records)
    path, cycle = np.cumsum(rng.normal(size=S_NODES)), rng.normal(size=T_NODES)
    product = np.outer(path - path.mean(), cycle - cycle.mean())
    eta = path[s] + cycle[t] + product[s, t] + 0.5 * x
    frame = pd.DataFrame({"y": eta + 0.7 * rng.normal(size=n_records), "x": x, "s": s, "t": t})
    spec = ("model m\nresponse y ~ squared\nfeatures x, intercept\n"
            f"stratify s ~ path weight auto nodes 0..{S_NODES - 1}\n"
            f"stratify t ~ cycle weight auto nodes 0..{T_NODES - 1}\n"
            "interact s * t weight auto\n")
    return stratlang.load(spec), frame


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_an_interaction_weight_matches_the_dense_reference(method):
    model, frame = _interacting()
    fitted = model.fit(frame, select=method)
    names = ["stratify.s", "stratify.t", "interact.s_t"]
    chosen = np.array([fitted.weights[n] for n in names])
    design = model.bind(frame)
    reference = _WithFixed(design.x, design.z, design.records.observed_y,
                           design.loss.likelihood_unit({}), design.strata.graphs(),
                           [("laplacian", 0, None), ("laplacian", 1, None),
                            ("interaction", (0, 1))], dispersion=True)
    reference._cache["theta"] = fitted.theta.to_numpy().reshape(-1)
    rho = _minimized(reference, np.log(chosen), method)
    np.testing.assert_allclose(chosen, np.exp(rho), rtol=1e-6)
    report = fitted.info["selection"]
    assert report["converged"] and set(report["weights"]) == set(names)
    np.testing.assert_allclose(report["criterion"], reference.criterion(rho, method), rtol=1e-8)
    # θ̂ is the fit at the chosen weights, interaction included
    np.testing.assert_allclose(fitted.theta.to_numpy().reshape(-1),
                               reference.fit(chosen), atol=1e-4)  # (ADMM's tolerance)


# ---- a term's own weight on a factor (`by (s weight auto, t)`), beside the factor's ----
def _slope_frame(interaction: bool) -> pd.DataFrame:
    """Records over a path s × cycle t with a slope smooth along the path (and, with
    ``interaction``, a product term of the two factors)."""
    rng = np.random.default_rng(1)
    n_records = 240
    s, t = rng.integers(0, S_NODES, n_records), rng.integers(0, T_NODES, n_records)
    x = rng.normal(size=n_records)
    path, cycle = np.cumsum(rng.normal(size=S_NODES)), rng.normal(size=T_NODES)
    slope = 0.5 + 0.1 * np.cumsum(rng.normal(size=S_NODES))
    eta = path[s] + cycle[t] + slope[s] * x
    if interaction:
        eta = eta + np.outer(path - path.mean(), cycle - cycle.mean())[s, t]
    return pd.DataFrame({"y": eta + 0.7 * rng.normal(size=n_records), "x": x, "s": s, "t": t})


def test_a_row_weight_of_its_own_matches_the_dense_reference():
    """The slope x varies over both factors, with its own weight along the path: the
    path's Laplacian is two parts (the intercept's at stratify.s, the slope's at
    stratify.s[x]), each chosen."""
    frame = _slope_frame(interaction=False)
    model = stratlang.load("model m\nresponse y ~ squared\n"
                           "features x by (s weight auto, t), intercept\n"
                           f"stratify s ~ path weight auto nodes 0..{S_NODES - 1}\n"
                           f"stratify t ~ cycle weight auto nodes 0..{T_NODES - 1}\n")
    fitted = model.fit(frame)
    names = ["stratify.s", "stratify.s[x]", "stratify.t"]
    chosen = np.array([fitted.weights[n] for n in names])
    design = model.bind(frame)
    assert design.rows == ("x", "intercept")
    reference = _WithFixed(design.x, design.z, design.records.observed_y,
                           design.loss.likelihood_unit({}), design.strata.graphs(),
                           [("laplacian", 0, np.array([False, True])),
                            ("laplacian", 0, np.array([True, False])),
                            ("laplacian", 1, None)], dispersion=True)
    reference._cache["theta"] = fitted.theta.to_numpy().reshape(-1)
    rho = _minimized(reference, np.log(chosen))
    np.testing.assert_allclose(chosen, np.exp(rho), rtol=1e-6)
    report = fitted.info["selection"]
    assert report["converged"] and set(report["weights"]) == set(names)
    np.testing.assert_allclose(report["criterion"], reference.criterion(rho), rtol=1e-8)
    assert chosen[1] > 5 * chosen[0]  # (the slope is smoother along the path: its own weight)


def test_row_weights_an_interaction_and_a_fixed_weight_together():
    frame = _slope_frame(interaction=True)
    model = stratlang.load("model m\nresponse y ~ squared\n"
                           "features x by (s weight auto, t), intercept\n"
                           f"stratify s ~ path weight auto nodes 0..{S_NODES - 1}\n"
                           f"stratify t ~ cycle weight 2 nodes 0..{T_NODES - 1}\n"
                           "interact s * t weight auto\n")
    fitted = model.fit(frame)
    names = ["stratify.s", "stratify.s[x]", "interact.s_t"]
    chosen = np.array([fitted.weights[n] for n in names])
    design = model.bind(frame)
    args = (design.x, design.z, design.records.observed_y, design.loss.likelihood_unit({}),
            design.strata.graphs())
    reference = _WithFixed(*args, [("laplacian", 0, np.array([False, True])),
                                   ("laplacian", 0, np.array([True, False])),
                                   ("interaction", (0, 1))], dispersion=True)
    reference.fixed = 2.0 * DenseModel(*args, [("laplacian", 1, None)]).matrices[0]
    reference._cache["theta"] = fitted.theta.to_numpy().reshape(-1)
    rho = _minimized(reference, np.log(chosen))
    np.testing.assert_allclose(chosen, np.exp(rho), rtol=1e-6)
    assert fitted.weights["stratify.t"] == 2.0


def test_auto_weights_with_a_parameter_at_its_edge_are_warned_of():
    """Strata whose records are all 0 put a Poisson rate at eps, where the Laplace
    approximation behind REML does not hold: the fit says so (a NumericalWarning naming
    the strata, and `at_bound` in the selection report); an interior fit says nothing."""
    from stratlang.language.errors import NumericalWarning

    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(12), 6)
    model = stratlang.load("response y ~ poisson\nstratify g ~ path weight auto\n")
    zeros = pd.DataFrame({"g": g, "y": rng.poisson(np.where(g < 4, 0.0, 2.0))})
    with pytest.warns(NumericalWarning) as caught:
        fitted = model.fit(zeros)
    assert str(caught[0].message) == (
        "4 strata (0, 1, 2, 3) have their parameter at the edge of its domain (eps): the "
        "auto weights were chosen by a Laplace approximation that assumes an interior "
        "optimum, so they and the standard errors are unreliable there; fix the weights, or "
        "choose them by cross-validation (tune)")
    assert fitted.info["selection"]["at_bound"] == ["0", "1", "2", "3"]
    interior = pd.DataFrame({"g": g, "y": rng.poisson(2.0, len(g)) + 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error", NumericalWarning)
        fitted = model.fit(interior)
    assert "at_bound" not in fitted.info["selection"]
