"""The ADMM backend against the CVXPY reference: same IR, same objective."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import stratlang
from stratlang.backends.admm import unsupported
from stratlang.kinds import GRAPHS, LOSSES, REGULARIZERS
from stratlang.language.errors import NumericalError

from .cases import GRAPH_CASES, REGULARIZER_CASES, data_for, graph_frame

TIGHT = {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iter": 20000}
ADMM_LOSSES = [name for name in LOSSES.names()
               if LOSSES[name].admm_ready() and LOSSES[name].convex]
STRICTLY_CONVEX = {"squared", "logistic", "square_classification", "poisson_regression",
                   "exponential_regression", "bernoulli", "poisson", "exponential"}


def both(spec: str, frame: pd.DataFrame, graphs: dict | None = None):
    model = stratlang.load(spec, graphs=graphs)
    reference = model.fit(frame, backend="cvxpy", solver="clarabel")
    fast = model.fit(frame, backend="admm", options=TIGHT)
    assert fast.info["converged"]
    return reference, fast


@pytest.mark.parametrize("loss", ADMM_LOSSES)
@pytest.mark.parametrize("reg", ["", "0.3 * sum_squares", "0.2 * l1", "0.3 * l2",
                                 "0.4 * elastic_net(0.3)", "0.1 * sum_squares + 0.1 * l1",
                                 "nonnegative exclude []"])
def test_every_loss_and_regularizer_matches_cvxpy(loss, reg, rng):
    frame, target, features = data_for(loss, rng)
    if reg.startswith("nonnegative") and loss in ("bernoulli", "poisson", "exponential"):
        reg = "box(0.01, 10) exclude []"
    regularize = f"regularize {reg}\n" if reg else ""
    spec = f"response {target} ~ {loss}\n{features}\n{regularize}stratify g ~ path weight 0.7\n"
    reference, fast = both(spec, frame)
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-6, abs=1e-6)
    if loss in STRICTLY_CONVEX and ("sum_squares" in reg or not features):
        np.testing.assert_allclose(fast.theta_array, reference.theta_array, atol=2e-4, rtol=1e-3)


@pytest.mark.parametrize("graph", GRAPHS.names())
def test_every_graph_kind_matches_cvxpy(graph, rng, tmp_path):
    frame = graph_frame(rng, 300, tmp_path)
    spec = tmp_path / "m.strat"
    spec.write_text("response y ~ logistic\nfeatures x, intercept\n"
                    "regularize 0.1 * sum_squares\n" + GRAPH_CASES[graph].statement())
    reference, fast = both(str(spec), frame, GRAPH_CASES[graph].graphs())
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-6)
    np.testing.assert_allclose(fast.theta_array, reference.theta_array, atol=1e-4)


@pytest.mark.parametrize("name", [n for n in REGULARIZERS.names()
                                  if REGULARIZERS[n].admm_ready() and REGULARIZERS[n].convex])
def test_every_regularizer_matches_cvxpy(name, rng):
    case = REGULARIZER_CASES[name]
    frame, _target, features = data_for(case.loss, rng)
    spec = (f"response {case.target} ~ {case.loss}\n{features}\nregularize {case.term}\n"
            "stratify g ~ path weight 0.7\n")
    reference, fast = both(spec, frame)
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-6, abs=1e-6)


def test_product_of_three_factors_with_empty_strata(rng):
    frame = pd.DataFrame({"a": rng.integers(0, 3, 200), "b": rng.integers(0, 4, 200),
                          "c": rng.choice(["u", "v"], 200)})
    frame["y"] = rng.poisson(1 + frame.a + (frame.c == "u"))
    spec = ("response y ~ poisson\nstratify a ~ path weight 2 nodes 0..5\n"
            "stratify b ~ cycle weight 1\nstratify c ~ complete weight 4\n")
    reference, fast = both(spec, frame)
    assert fast.strata.k == 6 * 4 * 2
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-6)
    np.testing.assert_allclose(fast.theta_array, reference.theta_array, atol=1e-4)


def test_default_tolerances_meet_the_1e6_target(rng):
    frame, target, features = data_for("logistic", rng)
    model = stratlang.load(f"response {target} ~ logistic\n{features}\n"
                           "regularize 0.1 * sum_squares\nstratify g ~ path weight 0.5\n")
    fast = model.fit(frame, backend="admm")
    assert fast.info["converged"]
    reference = model.fit(frame, backend="cvxpy")
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-6)


def test_non_convergence_warns_with_residuals(rng):
    frame, _target, features = data_for("huber", rng)
    model = stratlang.load(f"response y ~ huber\n{features}\nstratify g ~ path weight 5\n")
    with pytest.warns(stratlang.NumericalWarning, match=r"ADMM did not converge in 3 iterations: "
                                                        r"primal residual .* \(tolerance"):
        fitted = model.fit(frame, backend="admm", options={"max_iter": 3})
    assert fitted.info["status"] == "max_iter" and not fitted.info["converged"]


def test_unsupported_models_fall_back_to_cvxpy_and_say_why(rng):
    frame, target, _features = data_for("gaussian", rng)
    model = stratlang.load(f"response {target} ~ gaussian(eps=0.1)\nstratify g ~ path\n")
    why = "the ADMM backend has no prox for loss 'gaussian' with parameters {'eps': 0.1}"
    assert unsupported(model.bind(frame)) == why
    fitted = model.fit(frame)
    assert fitted.info["backend"] == "cvxpy"
    assert fitted.info["backend_note"] == why
    with pytest.raises(stratlang.NumericalError, match="use backend='cvxpy'"):
        model.fit(frame, backend="admm")


def test_spec_solver_statement_selects_admm_options(rng):
    frame, _, features = data_for("huber", rng)
    model = stratlang.load(f"response y ~ huber\n{features}\nstratify g ~ path\n"
                           "solver admm max_iter 15 adaptive false penalty 0.37\n")
    with pytest.warns(stratlang.NumericalWarning, match="did not converge in 15 iterations"):
        fixed = model.fit(frame)
    # every iteration ran at the spec's penalty: adaptive false held it there
    assert fixed.info["iterations"] == 15
    assert {lam for *_, lam in fixed.info["history"]} == {0.37}
    with pytest.warns(stratlang.NumericalWarning, match="did not converge in 15 iterations"):
        adapted = model.fit(frame, options={"adaptive": True})
    assert len({lam for *_, lam in adapted.info["history"]}) > 1  # (it does move here)


def test_quadratic_problems_are_one_direct_solve(rng):
    frame, target, features = data_for("squared", rng)
    spec = (f"response {target} ~ squared\n{features}\nregularize 0.3 * sum_squares\n"
            "stratify g ~ path weight 2\n")
    reference, fast = both(spec, frame)
    assert fast.info["solver"] == "direct sparse solve (quadratic problem)"
    assert fast.info["iterations"] == 0
    np.testing.assert_allclose(fast.theta_array, reference.theta_array, atol=1e-7)
    # an l1 term makes it non-quadratic: ADMM iterates
    l1 = stratlang.load(spec.replace("sum_squares", "sum_squares + 0.1 * l1")).fit(frame)
    assert l1.info["iterations"] > 0


SINGULAR_FRAME = {"g": [0, 0, 0, 1, 1], "x": [1.0, 2.0, 0.5, 3.0, 1.0],
                  "y": [1.0, 2.0, 0.4, 2.0, 1.5]}
SINGULAR_SPEC = "response y ~ squared\nfeatures x, intercept\nstratify g ~ path weight 0 nodes 0..2\n"


def test_singular_quadratic_problem_gets_the_minimum_norm_minimizer():
    """Stratum 2 has no data and no coupling: its θ is any value (the fit then gives it
    the record-weighted mean of the others, and says so); strata 0 and 1 by least
    squares."""
    frame = pd.DataFrame(SINGULAR_FRAME)
    with pytest.warns(stratlang.DataWarning, match="any value is optimal there"):
        fast = stratlang.load(SINGULAR_SPEC).fit(frame, backend="admm")
    assert fast.info["solver"] == "minimum-norm solve (singular quadratic problem)"
    assert fast.info["note"] == ("the data and graphs leave 2 of θ's 6 directions "
                                 "undetermined: the minimum-norm minimizer")
    for g in (0, 1):
        rows = frame[frame.g == g]
        design = np.column_stack([rows.x, np.ones(len(rows))])
        expected = np.linalg.lstsq(design, rows.y, rcond=None)[0]
        np.testing.assert_allclose(fast.theta.loc[g].to_numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(fast.theta.loc[2].to_numpy(),
                               (3 * fast.theta.loc[0] + 2 * fast.theta.loc[1]).to_numpy() / 5)
    reference = stratlang.load(SINGULAR_SPEC).fit(frame, backend="cvxpy")
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-6, abs=1e-9)


def test_a_singular_quadratic_problem_too_large_to_decompose_falls_back_to_admm(monkeypatch):
    from stratlang.solvers import quadratic

    monkeypatch.setattr(quadratic, "PIECE_LIMIT", 1)  # (2 coupled rows per stratum here)
    frame = pd.DataFrame(SINGULAR_FRAME)
    fast = stratlang.load(SINGULAR_SPEC).fit(frame, backend="admm")
    assert fast.info["note"].startswith("quadratic system singular")
    reference = stratlang.load(SINGULAR_SPEC).fit(frame, backend="cvxpy")
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-6, abs=1e-9)


def test_weighted_and_repeated_records_give_the_same_singular_fit(rng):
    """More features than kept records, no regularization: weights and repeats make the
    same singular system, and the same (minimum-norm) θ; θ is the pseudo-inverse's."""
    x = rng.normal(size=(15, 10))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(10)]).assign(y=rng.normal(size=15))
    weight = np.zeros(15)
    weight[:6] = rng.integers(1, 4, 6)
    spec = "response y ~ squared\nfeatures " + ", ".join(f"x{i}" for i in range(10)) + "\n"
    weighted = stratlang.load(spec + "weights w\n").fit(frame.assign(w=weight))
    repeated = stratlang.load(spec).fit(frame.loc[np.repeat(np.arange(15), weight.astype(int))])
    np.testing.assert_allclose(weighted.theta_array, repeated.theta_array, rtol=1e-10,
                               atol=1e-12)
    # (the automatic backend, newton, solves a quadratic problem as one linear system)
    assert weighted.info["backend"] == "newton"
    assert weighted.info["solver"] == "minimum-norm solve (singular quadratic problem)"
    root = np.sqrt(weight)[:, None]
    expected = np.linalg.pinv(root * x) @ (root[:, 0] * frame.y.to_numpy())
    np.testing.assert_allclose(weighted.theta_array[0, :, 0], expected, rtol=1e-8)


def test_undetermined_strata_keep_the_pooled_estimate(rng):
    """With no data and no neighbours a stratum's θ is free; ADMM leaves it at the
    pooled estimate (the separate baseline of the stratified paper)."""
    frame = pd.DataFrame({"g": rng.integers(0, 3, 300)})
    frame["y"] = (rng.random(300) < 0.2 + 0.2 * frame.g).astype(int)
    model = stratlang.load("response y ~ bernoulli\nstratify g ~ path weight 0 nodes 0..4\n")
    fitted = model.fit(frame)
    theta = fitted.theta["probability"]
    np.testing.assert_allclose(theta.loc[[3, 4]], frame.y.mean(), atol=1e-9)
    np.testing.assert_allclose(theta.loc[[0, 1, 2]], frame.groupby("g").y.mean(), atol=1e-6)


def test_gaussian_with_trace_penalty_and_an_empty_stratum(rng):
    frame, target, _features = data_for("gaussian", rng)
    spec = (f"response {target} ~ gaussian\nregularize 0.5 * trace\n"
            "stratify g ~ path weight 2 nodes 0..3\n")
    reference, fast = both(spec, frame)
    assert fast.info["backend"] == "admm"
    assert fast.objective.total <= reference.objective.total + 1e-6 * abs(reference.objective.total)
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-6)
    np.testing.assert_allclose(fast.theta_array, reference.theta_array, atol=1e-3)


@pytest.mark.parametrize(("solver", "limits", "strata"), [
    ("CGSolver", (2, 1), ""),  # a lone large general graph above the LU limit
    ("AlongSolver", (3, 500_000), "stratify h ~ cycle weight 0.5\n"),  # one among others
])
def test_conjugate_gradient_laplacian_paths_match_cvxpy(solver, limits, strata, rng, tmp_path,
                                                        monkeypatch):
    """The paths taken for very large general graphs, forced on a small one."""
    from stratlang.solvers import laplacian

    monkeypatch.setattr(laplacian, "DENSE_LIMIT", limits[0])
    monkeypatch.setattr(laplacian, "SPARSE_LU_LIMIT", limits[1])
    (tmp_path / "g.csv").write_text("a,b,w\n0,1,2\n1,2,0.5\n1,3,1\n3,0,1\n")
    frame = pd.DataFrame({"g": rng.integers(0, 4, 300), "h": rng.integers(0, 3, 300),
                          "x": rng.normal(size=300)})
    frame["y"] = (rng.random(300) < 1 / (1 + np.exp(-frame.x * (frame.g - 1.5)))).astype(int)
    spec = tmp_path / "m.strat"
    spec.write_text('response y ~ logistic\nfeatures x, intercept\nregularize 0.1 * l1\n'
                    + strata + 'stratify g ~ edges("g.csv") weight 3\n')
    reference, fast = both(str(spec), frame)
    assert fast.info["solver"] == f"ADMM ({solver})"
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-6)


# ---- the progress line -----------------------------------------------------------------------
def _chain_admm(progress: bool | None, max_iter: int = 50):
    """ADMM on a 4-stratum chain (½‖θ − a‖² + ½ θᵀLθ), never converged (tolerances 0)."""
    from stratlang.solvers.admm import admm

    target = np.array([[1.0], [2.0], [0.0], [5.0]])
    laplacian = np.diag([1.0, 2.0, 2.0, 1.0]) - np.diag([1.0] * 3, 1) - np.diag([1.0] * 3, -1)
    return admm(lambda v, lam: (v + lam * target) / (1 + lam), [],
                lambda b, c: np.linalg.solve(laplacian + c * np.eye(4), b), (4, 1),
                eps_abs=0.0, eps_rel=0.0, max_iter=max_iter, adaptive=False, progress=progress)


def test_progress_line_shows_time_iterations_and_residuals_against_tolerances(monkeypatch,
                                                                                capsys):
    from stratlang.solvers import progress

    monkeypatch.setattr(progress, "SHOW_AFTER", -1.0)  # a "long" fit from the start
    monkeypatch.setattr(progress, "REFRESH", 0.0)  # every iteration redrawn
    result = _chain_admm(progress=True)
    err = capsys.readouterr().err
    assert result.iterations == 50 and err.endswith("\n") and err.count("\n") == 1
    lines = err.rstrip("\n").split("\r")[1:]
    assert len(lines) == 51  # each iteration, then the final state once more
    assert re.fullmatch(r"admm \d+\.\d s  iteration 3/50  primal \d\.\de[-+]\d\d > 0\.0e\+00  "
                        r"dual \d\.\de[-+]\d\d > 0\.0e\+00 *", lines[2])
    assert lines[-1].startswith("admm ") and "iteration 50/50  primal " in lines[-1]


def test_progress_line_waits_for_a_long_fit_and_redraws_four_times_a_second(monkeypatch,
                                                                             capsys):
    from stratlang.solvers import progress

    _chain_admm(progress=True)  # well under a second: nothing at all
    assert capsys.readouterr().err == ""
    times = iter([0.0, 0.5, 1.2, 1.3, 1.6, 2.0])  # start, then one per update, then close
    line = progress.ProgressLine("fit", True, clock=lambda: next(times))
    with line:
        for i in range(1, 5):
            line.update(lambda i=i: f"iteration {i}/9")
    # 0.5 s: too early; 1.2 s: shown; 1.3 s: too soon after; 1.6 s: shown; on exit: final
    assert capsys.readouterr().err == ("\rfit 1.2 s  iteration 2/9\rfit 1.6 s  iteration 4/9"
                                       "\rfit 2.0 s  iteration 4/9\n")
    assert progress.elapsed_text(125.3) == "2 min 05 s"


def test_an_unconverged_fit_far_above_its_start_is_an_error(rng, monkeypatch):
    """Finite but diverging iterates (an objective 1e6 times that at θ = 0, unconverged)
    are refused, not returned with a warning."""
    from stratlang.backends import admm as backend

    frame, target, features = data_for("squared", rng)
    model = stratlang.load(f"response {target} ~ squared\n{features}\n"
                           "regularize 0.1 * l1\nstratify g ~ path weight 1\n")

    def blown_up(design, weights, options, warm=None, initial=None, local=False):
        theta = np.full(design.theta_shape, 1e6)
        return theta, {"converged": False, "iterations": 7}, None

    monkeypatch.setattr(backend, "fit_admm", blown_up)
    with pytest.raises(NumericalError, match=r"ADMM diverged: after 7 iterations, unconverged, "
                                             r"the objective is [0-9.e+]+, against [0-9.]+ at "
                                             r"θ = 0; likely cause: the step \('penalty' 1, "
                                             r"'relax' 1.6\); backend='cvxpy' fits without"):
        model.fit(frame)


def test_a_singular_prox_system_is_reported_as_divergence(rng, monkeypatch):
    from stratlang.solvers import prox

    frame, target, features = data_for("poisson_regression", rng)
    model = stratlang.load(f"response {target} ~ poisson_regression\n{features}\n"
                           "stratify g ~ path weight 1\n")

    def singular(*args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(prox.NewtonProx, "__call__", singular)
    with pytest.raises(NumericalError, match=r"ADMM diverged: a prox's linear system became "
                                             r"singular \(Singular matrix\)"):
        model.fit(frame, backend="admm")


@pytest.mark.parametrize("seed", range(4))
def test_admm_answers_with_its_best_copy_and_says_how_far_its_copies_are(seed):
    # large non-smooth penalties: the loss copy sat 1e-6 to 7e-6 (relative) above the
    # optimum at the default tolerances; the l1 term's own copy (exact zeros) is there
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"g": rng.integers(0, 5, 300)})
    for i in range(4):
        frame[f"x{i}"] = rng.normal(size=300)
    frame["y"] = 10 * (frame.x0 * frame.g - frame.x1 + rng.standard_t(3, 300))
    frame["yb"] = (rng.random(300) < 1 / (1 + np.exp(-frame.x0))).astype(int)
    loss, target = [("logistic", "yb"), ("huber", "y"), ("quantile", "y"), ("logistic", "yb")][seed]
    model = stratlang.load(f"response {target} ~ {loss}\nfeatures x0, x1, x2, x3, intercept\n"
                           f"regularize {[50, 50, 23, 99][seed]} * l1\n"
                           "stratify g ~ path weight 5\n")
    reference = model.fit(frame, backend="cvxpy")
    fast = model.fit(frame, backend="admm")  # (default tolerances)
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-8)
    assert fast.info["copy"] in ("loss", "l1 term", "consensus")
    assert 0 <= fast.info["objective_spread"] <= fast.info["objective_accuracy"]
    assert fast.info["objective_accuracy"] < 1e-3 * abs(reference.objective.total)
    shown = str(model.verify(frame)).splitlines()[1]
    assert shown.endswith(f"objective accurate to ~{fast.info['objective_accuracy']:.1e})")
    # at loose tolerances the stated accuracy still covers the gap
    loose = model.fit(frame, backend="admm", options={"eps_abs": 1e-3, "eps_rel": 1e-3})
    gap = loose.objective.total - reference.objective.total
    assert 0 <= gap <= loose.info["objective_accuracy"]


@pytest.mark.parametrize(("loss", "labels"), [("multinomial", ["a", "b", "c"]),
                                              ("logistic", ["a", "b"])])
def test_separable_records_without_a_penalty_are_said_to_have_no_minimizer(loss, labels, rng):
    # the classes are separated by x: the loss falls toward 0 as θ grows, no θ attains it,
    # and ADMM runs to its limit; the warning says why, not "raise max_iter"
    frame = pd.DataFrame({"g": rng.integers(0, 3, 120), "x": rng.normal(size=120)})
    frame["k"] = np.where(frame.x > 0.5, labels[0], labels[1] if len(labels) == 2 else
                          np.where(frame.x < -0.5, labels[1], labels[2]))
    model = stratlang.load(f"response k ~ {loss}\nfeatures x, intercept\n"
                           "stratify g ~ path weight 100\n")
    with pytest.warns(stratlang.NumericalWarning) as caught:
        model.fit(frame, backend="admm", options={"max_iter": 300})
    said = [str(w.message) for w in caught if "did not converge" in str(w.message)]
    assert said and said[0].startswith(
        "ADMM did not converge in 300 iterations: the objective has no minimizer: moving "
        "intercept, x (in 3 of 3 strata) lowers the loss of the records in rows 0, 1, 2, 3, "
        "4 and 115 more toward the infimum of loss")
    assert said[0].endswith("which no finite θ attains (the records are separable); add a "
                            "regularizer on those parameters")
    # with a penalty on x and the intercept there is a minimizer, and ADMM reaches CVXPY's
    reference, fast = both(f"response k ~ {loss}\nfeatures x, intercept\n"
                           "regularize 0.1 * sum_squares exclude []\n"
                           "stratify g ~ path weight 100\n", frame)
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-6)


def test_a_copy_outside_the_losss_own_bounds_is_never_the_answer(rng):
    # the l1 term's copy sits just below poisson's eps (the loss copy is clipped there):
    # its objective is lower, but it is no feasible point of the model
    frame = pd.DataFrame({"g": rng.integers(0, 4, 200)})
    frame["c"] = rng.poisson(np.where(frame.g == 0, 0.05, 2.0))
    model = stratlang.load("response c ~ poisson(eps=0.3)\nregularize 5 * l1\n"
                           "stratify g ~ path weight 0.5\n")
    reference = model.fit(frame, backend="cvxpy")
    fast = model.fit(frame, backend="admm")
    assert fast.theta_array.min() >= 0.3
    assert fast.objective.total >= reference.objective.total * (1 - 1e-9)
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-8)


@pytest.mark.parametrize(("strata", "records", "gamma", "ridge"), [
    (6, 1, 1.0, 0.0),  # coupled strata, 2 records per 3 features over the whole path
    (6, 2, 0.0, 0.0),  # uncoupled: each stratum alone, 2 records for 3 features
    (4, 1, 2.0, [0.0, 0.5, 0.0]),  # a ridge on one row only
])
def test_a_singular_system_gets_the_pseudo_inverse_solution(rng, strata, records, gamma, ridge):
    from stratlang.solvers.graphs import path_graph, product_laplacian
    from stratlang.solvers.quadratic import solve_quadratic

    n = 3
    x = rng.normal(size=(strata, records, n))
    x[:, :, 2] = x[:, :, 0]  # a repeated column: undetermined whatever the graph
    y = rng.normal(size=(strata, records, 1))
    gram, xty = np.einsum("kri,krj->kij", x, x), np.einsum("kri,krm->kim", x, y)
    diagonal = np.broadcast_to(np.asarray(ridge, dtype=float), (n,))
    details: dict[str, int] = {}
    theta = solve_quadratic(gram, xty, diagonal, [path_graph(strata)], [gamma], details=details)
    dense = (np.kron(np.eye(strata), np.zeros((n, n))) + gamma * np.kron(
        product_laplacian([path_graph(strata)], [1.0]).toarray(), np.eye(n)))
    for s in range(strata):
        dense[s * n:(s + 1) * n, s * n:(s + 1) * n] += 2 * gram[s] + np.diag(diagonal)
    expected = np.linalg.pinv(dense, hermitian=True) @ (2 * xty.reshape(-1, 1))
    np.testing.assert_allclose(theta.reshape(-1, 1), expected, rtol=1e-8, atol=1e-10)
    assert details == {"rank": np.linalg.matrix_rank(dense, hermitian=True),
                       "unknowns": strata * n}
