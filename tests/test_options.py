"""Options are declared once (type, range, default) and every one given from a spec, the
API or the command line is validated; ADMM never reports success on a non-finite iterate."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import stratlang
from stratlang.backends import BACKENDS
from stratlang.backends.admm import ADMM_OPTIONS, fit_admm
from stratlang.cli import main
from stratlang.solvers.admm import Residuals, admm

from .conftest import write

SPEC = "response y ~ huber\nfeatures x, intercept\nstratify g ~ path weight 2\n"


@pytest.fixture
def frame(rng) -> pd.DataFrame:
    frame = pd.DataFrame({"g": rng.integers(0, 4, 120), "x": rng.normal(size=120)})
    frame["y"] = frame.x * frame.g + rng.normal(size=120)
    return frame


@pytest.mark.parametrize(("options", "message"), [
    ({"relax": 7.0}, "backend 'admm': option 'relax' must lie in (0, 2); got 7.0"),
    ({"max_itr": 10}, "unknown option 'max_itr' for backend 'admm'; did you mean 'max_iter'?"),
    ({"max_iter": 2.5}, "backend 'admm': option 'max_iter' must be a whole number; got 2.5"),
    ({"max_iter": 0}, "backend 'admm': option 'max_iter' must lie in [1, 10,000,000]; got 0"),
    ({"eps_abs": float("nan")}, "backend 'admm': option 'eps_abs' must be finite; got nan"),
    ({"adaptive": "yes"}, "backend 'admm': option 'adaptive' must be true or false; got 'yes'"),
    ({"penalty": True}, "backend 'admm': option 'penalty' must be a number; got True"),
])
def test_api_options_are_validated(frame, options, message):
    with pytest.raises(stratlang.OptionError) as info:
        stratlang.load(SPEC).fit(frame, backend="admm", options=options)
    assert str(info.value) == message


def test_every_problem_is_reported_at_once(frame):
    with pytest.raises(stratlang.OptionError) as info:
        stratlang.load(SPEC).fit(frame, backend="admm", options={"relax": 3, "max_itr": 1})
    assert str(info.value).splitlines() == [
        "backend 'admm': option 'relax' must lie in (0, 2); got 3",
        "unknown option 'max_itr' for backend 'admm'; did you mean 'max_iter'?"]


def test_cvxpy_options_are_validated(frame):
    model = stratlang.load(SPEC)
    with pytest.raises(stratlang.OptionError, match=r"option 'method' must be one of the "
                                                    r"installed CVXPY solvers: .*clarabel"):
        model.fit(frame, backend="cvxpy", options={"method": "gurobee"})
    with pytest.raises(stratlang.OptionError, match="option 'method' must be one of the"):
        model.fit(frame, solver="gurobee")
    with pytest.raises(stratlang.OptionError, match="solver='clarabel' names a solver for a "
                                                    "backend that takes one \\(cvxpy\\)"):
        model.fit(frame, backend="admm", solver="clarabel")


def test_unknown_backend_gets_a_suggestion(frame):
    with pytest.raises(stratlang.OptionError, match="unknown backend 'admn'; did you mean 'admm'"):
        stratlang.load(SPEC).fit(frame, backend="admn")


def test_spec_options_are_validated_with_their_position():
    with pytest.raises(stratlang.SpecError) as info:
        stratlang.load(SPEC + "solver admm relax 7 max_itr 3\n")
    assert [(d.span.line, d.span.column, d.message) for d in info.value.diagnostics] == [
        (4, 19, "'relax' must lie in (0, 2)"),
        (4, 21, "unknown option 'max_itr' for backend 'admm'; did you mean 'max_iter'?")]


def test_api_options_override_the_spec_s(frame):
    model = stratlang.load(SPEC + "solver admm max_iter 2 adaptive false\n")
    with pytest.warns(stratlang.NumericalWarning, match="did not converge in 2 iterations"):
        assert model.fit(frame).info["iterations"] == 2
    with pytest.warns(stratlang.NumericalWarning, match="did not converge in 5 iterations"):
        assert model.fit(frame, options={"max_iter": 5}).info["iterations"] == 5
    # another backend named: the spec's admm options do not apply to it
    assert model.fit(frame, backend="cvxpy").info["backend"] == "cvxpy"


def test_cli_options_are_validated(tmp_path, frame, capsys):
    frame.to_csv(tmp_path / "d.csv", index=False)
    spec = write(tmp_path, "m.strat", SPEC)
    assert main(["fit", str(spec), "--data", str(tmp_path / "d.csv"), "--backend", "admm",
                 "--workers", "3"]) == 1
    assert "error: --workers applies to --backend dask" in capsys.readouterr().err
    assert main(["fit", str(spec), "--data", str(tmp_path / "d.csv"), "--backend", "dask",
                 "--workers", "0"]) == 1
    assert ("error: backend 'dask': option 'workers' must lie in [1, 1,024]; got 0"
            in capsys.readouterr().err)


def test_another_backends_option_names_that_backend(tmp_path, frame, capsys):
    # huber is smooth: newton is chosen, and ADMM's 'penalty' is not one of its options
    model = stratlang.load(SPEC)
    with pytest.raises(stratlang.OptionError) as info:
        model.fit(frame, options={"penalty": 0.5})
    assert str(info.value) == ("option 'penalty' is not one of backend 'newton' (chosen "
                               "automatically) but of backend 'admm': name it, "
                               "backend='admm'")
    frame.to_csv(tmp_path / "d.csv", index=False)
    spec = write(tmp_path, "m.strat", SPEC)
    assert main(["fit", str(spec), "--data", str(tmp_path / "d.csv"), "--option",
                 "penalty=0.5"]) == 1
    assert capsys.readouterr().err.endswith("backend 'admm': name it, --backend admm\n")
    assert model.fit(frame, backend="admm", options={"penalty": 0.5}).info["converged"]


@pytest.mark.parametrize("name", BACKENDS.names())
def test_every_backend_declares_valid_defaults(name):
    options = BACKENDS[name].options
    assert options.resolve() == options.defaults()
    for param in options:
        assert param.doc, f"option '{param.name}' of backend '{name}' is undocumented"
        if param.default is not None and param.check is not None:
            assert param.check(param.default) is None, param.name


def test_residuals_that_overflowed_never_count_as_converged():
    inf = Residuals(math.inf, math.inf, math.inf, math.inf)
    nan = Residuals(math.nan, 0.0, 1.0, 1.0)
    assert not inf.converged and not nan.converged
    assert Residuals(0.5, 0.5, 1.0, 1.0).converged


def test_diverging_admm_is_a_numerical_error_naming_the_cause(frame):
    """relax = 7 cannot be given through the API; called directly, the backend still
    refuses to return the overflowed iterate as a result."""
    design = stratlang.load(SPEC).bind(frame)
    options = {**ADMM_OPTIONS.defaults(), "relax": 7.0, "max_iter": 3000}
    with pytest.raises(stratlang.NumericalError,
                       match=r"ADMM diverged after \d+ iterations: the residuals are not finite "
                             r".*'relax' 7 lies outside \(0, 2\)"):
        fit_admm(design, {"stratify.g": 2.0}, options)


def test_solver_stops_at_the_first_non_finite_residual():
    def blow_up(v, t):
        return v * 1e200

    with np.errstate(over="ignore", invalid="ignore"):
        result = admm(blow_up, [], lambda b, c: b / c, (3, 1, 1), max_iter=50, adaptive=False,
                      initial=np.ones((3, 1, 1)))
    assert result.diverged and not result.converged and result.iterations < 50
    assert np.all(np.isfinite(result.theta))  # θ may still be finite: the residuals tell


@pytest.mark.parametrize(("call", "message"), [
    (lambda m, f: m.fit(f, weights={"stratify.g": -1}),
     "hyper-parameter 'stratify.g' must be a finite number ≥ 0; got -1"),
    (lambda m, f: m.fit(f, weights={"stratify.g": "abc"}),
     "hyper-parameter 'stratify.g' must be a finite number ≥ 0; got 'abc'"),
    (lambda m, f: m.fit(f, weights={"stratify.gg": 1}),
     "unknown hyper-parameter 'stratify.gg'; did you mean 'stratify.g'?"),
    (lambda m, f: m.fit(f, weights=[1]), "weights must be a dict of hyper-parameter values by "
                                         "name; got a list"),
    (lambda m, f: m.fit(f, options=[1]), "options are a dict of values by name; got a list"),
    (lambda m, f: m.fit(f, backend="admm", options={1: 2}),
     "option names are text; got 1 (for backend 'admm')"),
    (lambda m, f: m.fit(f, options={1: 2}), "option names are text; got 1 (for backend 'newton')"),
    (lambda m, f: m.fit(f, backend=3), "backend is a name (admm, cvxpy, dask, eigen, "
                                       "newton, subgradient); got 3"),
    (lambda m, f: m.fit([1, 2, 3]), "data are a pandas DataFrame or the path of a CSV or "
                                    "Parquet file; got a list"),
    (lambda m, f: m.fit(f).predict(f, unseen=None),
     "unseen=None: expected one of 'error', 'common', 'hub'"),
])
def test_bad_arguments_are_errors_not_tracebacks(call, message, frame):
    with pytest.raises(stratlang.StratlangError) as info:
        call(stratlang.load(SPEC), frame)
    assert str(info.value) == message


# ---- the reference's options, translated for each CVXPY solver -------------------------------
# an LP at graph weight 0 (no quadratic term), which every installed CVXPY solver takes
LP_SPEC = ("response y ~ absolute\nfeatures x, intercept\nregularize 0.3 * l1\n"
           "stratify g ~ path weight 0\n")


def _installed() -> list[str]:
    import cvxpy as cp

    return sorted(s.lower() for s in cp.installed_solvers())


@pytest.mark.parametrize("method", [None, *_installed()])
@pytest.mark.parametrize("option", [
    name for name in BACKENDS["cvxpy"].options.names() if name != "method"])
def test_every_cvxpy_option_works_with_every_installed_solver(frame, method, option):
    value = {"max_iters": 100_000, "verbose": False}[option]
    model = stratlang.load(LP_SPEC)
    truth = model.fit(frame, backend="cvxpy")  # (Clarabel, tight)
    given = {option: value, **({"method": method} if method else {})}
    fitted = model.fit(frame, backend="cvxpy", options=given)
    assert fitted.objective.total == pytest.approx(truth.objective.total, rel=1e-5)
    if method:
        assert fitted.info["solver"] == method.upper()


def test_max_iters_reaches_the_solver_under_its_own_name(frame):
    model = stratlang.load(SPEC + "solver cvxpy method clarabel max_iters 2\n")
    with pytest.raises(stratlang.NumericalError) as info:
        model.fit(frame)
    assert str(info.value) == (
        "CVXPY could not solve the reference problem (CLARABEL at tight tolerances: stopped "
        "at its iteration limit (max_iters); CLARABEL at its default tolerances: stopped at "
        "its iteration limit (max_iters))")
    fitted = model.fit(frame, options={"max_iters": 200})
    assert fitted.info["status"] == "optimal" and fitted.info["iterations"] <= 200


def test_a_solver_without_a_known_iteration_limit_is_refused():
    from stratlang.backends.base import OptionValueError
    from stratlang.backends.reference_solvers import solver_settings

    assert solver_settings("HIGHS", 7) == {"simplex_iteration_limit": 7,
                                           "ipm_iteration_limit": 7}
    assert solver_settings("SCIPY", 7) == {"scipy_options": {"maxiter": 7}}
    with pytest.raises(OptionValueError, match="option 'max_iters': the CVXPY solver mosek "
                                               "takes no iteration limit that stratlang"):
        solver_settings("MOSEK", 7)
