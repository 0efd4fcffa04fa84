"""Which coefficient varies over which factor (`by`, `shared`, own weights) and
Kronecker-product interaction terms (`interact`): the language, the exact solves, and
every construct against the CVXPY reference."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stratlang
from stratlang.language.errors import SpecError
from stratlang.solvers.graphs import (
    complete_graph,
    constancy_incidence,
    cycle_graph,
    grid_graph,
    interaction_incidence,
    laplacian_quadratic,
    path_graph,
    product_laplacian,
    star_graph,
)
from stratlang.solvers.laplacian import ConstantAlongSolver, KroneckerSolver
from stratlang.spec import compile_spec, to_text

from .conftest import write

TIGHT = {"eps_abs": 1e-10, "eps_rel": 1e-10, "max_iter": 100_000}
STRATA = ("stratify store ~ path weight 0.8 nodes 0..3\n"
          "stratify week ~ cycle weight 1.5 nodes 0..5\n")


@pytest.fixture
def sales(rng) -> pd.DataFrame:
    n = 500
    frame = pd.DataFrame({"store": rng.integers(0, 4, n), "week": rng.integers(0, 6, n),
                          "price": rng.normal(size=n),
                          "promo": rng.integers(0, 2, n).astype(float)})
    frame["y"] = (frame.price * (1 + 0.3 * frame.store) + 0.5 * frame.promo
                  + np.sin(frame.week) + 0.3 * rng.normal(size=n))
    return frame


def both(spec: str, frame: pd.DataFrame, **kw):
    model = stratlang.load(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stratlang.DataWarning)
        reference = model.fit(frame, backend="cvxpy", solver="clarabel", **kw)
        fast = model.fit(frame, backend="admm", options=TIGHT, **kw)
    assert fast.info["converged"]
    return reference, fast


def grid(fitted) -> np.ndarray:
    """θ as (store, week, rows)."""
    theta = fitted.theta_array[:, :, 0]
    return theta.reshape(4, 6, theta.shape[1])


# ---- the language --------------------------------------------------------------------------
SPEC = ("model m\nresponse y ~ squared\n"
        "features price by store, promo shared, temp by (store weight 50, week), "
        'a * b by week where store == 1, intercept\n'
        + STRATA + "interact store * week weight {1, 2}\n")


def test_variation_and_interaction_round_trip_with_their_weights_named():
    model = compile_spec(SPEC, check_files=False)
    assert compile_spec(to_text(model), check_files=False) == model
    assert to_text(model).splitlines()[2:4] == [
        "features price by store, promo shared, temp by (store weight 50, week), "
        'a by week where store == 1,',
        '    b by week where store == 1, a:b by week where store == 1, intercept']
    assert to_text(model).splitlines()[-1] == "interact store * week weight {1, 2}"
    assert set(model.hypers()) == {"stratify.store", "stratify.week", "stratify.store[temp]",
                                   "interact.store_week"}
    price, promo, temp = model.features[:3]
    assert [v.column for v in price.vary] == ["store"] and promo.vary == ()
    assert temp.vary[0].weight == stratlang.language.ir.Hyper.of(50)
    assert model.features[-1].vary is None


def test_columns_named_like_the_new_words_are_still_columns():
    model = compile_spec("model m\nresponse y ~ squared\nfeatures by, shared, weight, interact\n"
                         "stratify by ~ path\n", check_files=False)
    assert [t.columns[0] for t in model.features] == ["by", "shared", "weight", "interact"]
    assert all(t.vary is None for t in model.features)


@pytest.mark.parametrize("text, expected", [
    ("features price by stor\n" + STRATA,
     "<spec>:3:19: error[S113]: by: 'stor' is not a stratification column; did you mean "
     "'store'?\n    features price by stor\n                      ^^^^"),
    ("features price by (store, week, store)\n" + STRATA,
     "<spec>:3:33: error[S303]: by: 'store' names factor store again (first as 'store')\n"
     "    features price by (store, week, store)\n                                    ^^^^^"),
    ("features price shared\n",
     "<spec>:3:16: error[S312]: `shared` chooses graph factors: the model needs `stratify` "
     "statements\n    features price shared\n                   ^^^^^^"),
    ("features price\n" + STRATA + "interact store * wek\n",
     "<spec>:6:18: error[S113]: interact: 'wek' is not a stratification column; did you mean "
     "'week'?\n    interact store * wek\n                     ^^^"),
    ("features price\n" + STRATA + "interact store * week weight -2\n",
     "<spec>:6:30: error[S206]: interaction weight must be nonnegative; got -2\n"
     "    interact store * week weight -2\n                                 ^^"),
    ("features price by (store weight -1)\n" + STRATA,
     "<spec>:3:33: error[S206]: a feature's graph weight must be nonnegative; got -1\n"
     "    features price by (store weight -1)\n                                    ^^"),
    ("features price by week\n" + STRATA + "basis 4\n",
     "<spec>:3:16: error[S312]: a basis model expands every parameter row over the same "
     "eigenvectors of the product graph: rows varying over some factors only, or an "
     "interaction term, need the full model (leave out `basis`)\n"
     "    features price by week\n                   ^^^^^^^"),
    ("features price\n" + STRATA + "interact store * week\nbasis 4\n",
     "<spec>:6:1: error[S312]: a basis model expands every parameter row over the same "
     "eigenvectors of the product graph: rows varying over some factors only, or an "
     "interaction term, need the full model (leave out `basis`)\n"
     "    interact store * week\n    ^^^^^^^^^^^^^^^^^^^^^"),
    ("features price\n" + STRATA + "interact store * week\ninteract week * store\n",
     "<spec>:7:1: error[S301]: this interaction of the same factors is already declared on "
     "line 6\n    interact week * store\n    ^^^^^^^^^^^^^^^^^^^^^"),
])
def test_misplaced_or_misnamed_structure_is_a_positioned_error(text, expected):
    with pytest.raises(SpecError) as err:
        compile_spec("model m\nresponse y ~ squared\n" + text, check_files=False)
    assert str(err.value) == expected


def test_a_personalized_model_refuses_by():
    text = ("model m\nresponse y ~ squared\nfeatures x by age\npersonalize rank 2\n"
            "distance age ~ abs\n")
    with pytest.raises(SpecError) as err:
        compile_spec(text, check_files=False)
    assert "error[S312]: `by` chooses graph factors of a stratified model; a personalized " \
           "model has none" in str(err.value)


# ---- the exact solves --------------------------------------------------------------------
FACTORS = {"path": path_graph, "cycle": cycle_graph, "complete": complete_graph,
           "star": lambda n: star_graph(n, 0), "grid": lambda n: grid_graph((2, n))}


@settings(max_examples=40, deadline=None)
@given(kinds=st.lists(st.sampled_from(sorted(FACTORS)), min_size=2, max_size=3),
       sizes=st.lists(st.integers(2, 5), min_size=3, max_size=3),
       gammas=st.lists(st.floats(0, 3), min_size=3, max_size=3),
       joined=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.floats(0, 3)),
                       max_size=2),
       constant=st.lists(st.booleans(), min_size=3, max_size=3),
       c=st.floats(0.1, 5), seed=st.integers(0, 1000))
def test_kronecker_solves_with_interactions_and_constant_factors_are_exact(
        kinds, sizes, gammas, joined, constant, c, seed):
    factors = [FACTORS[k](n) for k, n in zip(kinds, sizes, strict=False)]
    count = len(factors)
    gammas, constant = gammas[:count], constant[:count]
    interactions = [((a, b), w) for a, b, w in joined if a < count and b < count and a != b]
    k = int(np.prod([f.n for f in factors]))
    laplacian = product_laplacian(factors, gammas).toarray()
    for axes, w in interactions:
        b = interaction_incidence(factors, axes).toarray()
        laplacian += w * b.T @ b
    rhs = np.random.default_rng(seed).normal(size=(k, 2))
    solved = KroneckerSolver(factors, gammas, interactions=interactions).solve(rhs, c)
    np.testing.assert_allclose(solved, np.linalg.solve(laplacian + c * np.eye(k), rhs),
                               atol=1e-9)
    theta = np.random.default_rng(seed + 1).normal(size=(k, 2))
    assert laplacian_quadratic(factors, gammas, theta, interactions) == pytest.approx(
        0.5 * np.sum(theta * (laplacian @ theta)), rel=1e-9, abs=1e-9)
    # on the subspace constant along some factors: the constrained minimizer of
    # ½xᵀ(L + cI)x − bᵀx, from its null-space basis
    rows = [constancy_incidence(factors, a).toarray() for a in range(count) if constant[a]]
    if rows:
        basis = _null_space(np.vstack(rows))
        reduced = basis.T @ (laplacian + c * np.eye(k)) @ basis
        expected = basis @ np.linalg.solve(reduced, basis.T @ rhs)
    else:
        expected = np.linalg.solve(laplacian + c * np.eye(k), rhs)
    got = ConstantAlongSolver(factors, gammas, constant, interactions).solve(rhs, c)
    np.testing.assert_allclose(got, expected, atol=1e-9)


def _null_space(matrix: np.ndarray) -> np.ndarray:
    _, s, vt = np.linalg.svd(matrix)
    rank = int(np.sum(s > 1e-10))
    return vt[rank:].T


# ---- against the reference ---------------------------------------------------------------
@pytest.mark.parametrize("spec", [
    "response y ~ squared\nfeatures price by store, promo shared, intercept by week\n",
    "response y ~ squared\nfeatures price by (store weight 5), promo, "
    "intercept by (week weight 0.1, store weight 3)\n",
    "response y ~ squared\nfeatures price, promo, intercept\ninteract store * week weight 4\n",
    "response y ~ squared\nfeatures price by store, promo shared where store in {1, 2}, "
    "intercept\nregularize 0.1 * sum_squares\ninteract store * week weight 2\n",
    "response y ~ huber(M=1)\nfeatures price by week, promo shared, intercept\n"
    "regularize 0.05 * l1\n",
])
def test_each_construct_matches_cvxpy(sales, spec):
    reference, fast = both(spec + STRATA, sales)
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-6)
    np.testing.assert_allclose(fast.theta_array, reference.theta_array, atol=1e-6)
    for fitted in (reference, fast):  # the stated parts add up to the total
        parts = fitted.objective.as_dict()
        assert sum(parts.values()) == pytest.approx(fitted.objective.total)


def test_a_logistic_model_with_every_construct_matches_cvxpy(sales):
    frame = sales.assign(y=(sales.y > 0.5).astype(int))
    spec = ("response y ~ logistic\nfeatures price by (store weight 2), promo shared, "
            "intercept by week\nregularize 0.1 * sum_squares\n"
            + STRATA + "interact store * week weight 3\n")
    reference, fast = both(spec, frame)
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-6)
    np.testing.assert_allclose(fast.theta_array, reference.theta_array, atol=1e-6)


def test_rows_that_do_not_vary_over_a_factor_are_exactly_equal_across_it(sales):
    spec = ("response y ~ squared\nfeatures price by store, promo shared, intercept by week\n"
            + STRATA)
    for fitted in both(spec, sales):
        theta = grid(fitted)
        price, promo, intercept = theta[..., 0], theta[..., 1], theta[..., 2]
        assert np.all(price == price[:, :1])  # constant along week, bit for bit
        assert np.all(promo == promo[0, 0])
        assert np.all(intercept == intercept[:1, :])  # constant along store
        assert np.ptp(price[:, 0]) > 0.5 and np.ptp(intercept[0]) > 1.0  # and varying
    assert fitted.objective.laplacian > 0


def test_an_own_weight_of_zero_leaves_the_row_separate_and_of_a_sweep_is_named(sales):
    spec = "response y ~ squared\nfeatures price by (store weight {0, 1e6}), intercept\n" + STRATA
    model = stratlang.load(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stratlang.DataWarning)
        loose = model.fit(sales, backend="admm", options=TIGHT,
                          weights={"stratify.store[price]": 0.0})
        tight = model.fit(sales, backend="admm", options=TIGHT,
                          weights={"stratify.store[price]": 1e6})
    assert np.ptp(grid(loose)[:, 0, 0]) > 0.5  # free per store
    assert np.ptp(grid(tight)[:, 0, 0]) < 1e-3  # pulled together


def test_an_interaction_penalizes_only_what_main_effects_do_not_explain(sales):
    """A large interaction weight leaves θ additive: θ(s, w) = f(s) + g(w) (its null space)."""
    spec = "response y ~ squared\nfeatures intercept\n" + STRATA + \
        "interact store * week weight 1e7\n"
    _, fast = both(spec, sales)
    theta = grid(fast)[..., 0]
    additive = theta.mean(1, keepdims=True) + theta.mean(0, keepdims=True) - theta.mean()
    np.testing.assert_allclose(theta, additive, atol=1e-4)
    assert np.ptp(theta) > 1.0  # the main effects stay


def test_smooth_models_with_structure_go_to_admm_and_newton_says_why(sales):
    spec = "response y ~ logistic\nfeatures price by store, intercept\n" + STRATA
    frame = sales.assign(y=(sales.y > 0.5).astype(int))
    model = stratlang.load(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stratlang.DataWarning)
        fitted = model.fit(frame)
        assert fitted.info["backend"] == "admm"
        with pytest.raises(stratlang.NumericalError) as err:
            model.fit(frame, backend="newton")
    assert str(err.value) == (
        "backend 'newton' cannot fit model 'model': parameter rows differ in their graph terms "
        "(`by`, `shared`, an own weight, `interact`); its Hessian takes one Laplacian for "
        "every row; use backend='admm'")


def test_the_baselines_drop_the_structure(sales):
    spec = ("response y ~ squared\nfeatures price by store, promo shared, intercept\n" + STRATA
            + "interact store * week\n")
    model = stratlang.load(spec)
    assert not model.separate().ir.structured and not model.common().ir.structured
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stratlang.DataWarning)
        separate = model.separate().fit(sales)
        common = model.common().fit(sales)
    assert np.ptp(grid(separate)[..., 1]) > 0.1  # promo free per stratum
    assert common.theta_array.shape[0] == 1


def test_a_shared_row_has_no_island_where_a_varying_row_has_one(rng):
    """Store 3 has no record: the intercept varying by store gets the common model's value
    there (a warning); price, shared, is decided by every store's data."""
    n = 300
    frame = pd.DataFrame({"store": rng.integers(0, 3, n), "price": rng.normal(size=n)})
    frame["y"] = 2.0 + frame.price + 0.1 * rng.normal(size=n)
    spec = ("response y ~ squared\nfeatures price shared, intercept\n"
            "stratify store ~ path weight 0 nodes 0..3\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = stratlang.load(spec).fit(frame)
    messages = [str(w.message) for w in caught if w.category is stratlang.DataWarning]
    assert len(messages) == 1 and messages[0].startswith("1 stratum (3) has no records")
    assert "determines intercept:" in messages[0]
    theta = fitted.theta
    assert theta.loc[3, "intercept"] == pytest.approx(2.0, abs=0.1)
    assert np.all(theta["price"] == theta.loc[0, "price"])


# ---- show ---------------------------------------------------------------------------------
def test_show_states_variation_interactions_islands_and_data_free_nodes(tmp_path, sales):
    sales[sales.store != 2].to_csv(tmp_path / "d.csv", index=False)
    write(tmp_path, "m.strat", 'model m\ndata "d.csv"\nresponse y ~ squared\n'
          "features price by (store weight 5), promo shared, intercept by week\n"
          "stratify store ~ edges(\"stores.csv\") weight 1 nodes [0, 1, 2, 3]\n"
          "stratify week ~ cycle nodes 0..7\ninteract store * week weight 3\n")
    write(tmp_path, "stores.csv", "source,target\n0,1\n2,3\n")
    out = subprocess.run([sys.executable, "-m", "stratlang", "show", "m.strat"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "# price: varies over store; constant along week; weight 5 on store " \
           "(stratify.store[price])" in lines
    assert "# promo: shared, one coefficient constant across every factor" in lines
    assert "# intercept: varies over week; constant along store" in lines
    assert any(line.startswith("# interact store * week (interact.store_week): penalty (w/2) "
                               "θᵀ(L_store ⊗ L_week ⊗ I)θ") and "null space" in line
               for line in lines)
    assert "#     2 connected components (islands): {0, 1}; {2, 3}" in lines
    assert "#     1 data-free node(s): 2" in lines
    assert "#     2 data-free node(s): 6, 7" in lines
    # store: 4 nodes in 2 components (rank 2), week: 8 nodes, connected (rank 7)
    assert "#   interact store * week: null space of dimension 18 over its factors' " \
           "nodes" in lines


VARIES = [None, "shared", "by store", "by week", "by (store, week)",
          "by (store weight 3, week weight 0.2)", "by (week weight 0)"]


@settings(max_examples=12, deadline=None)
@given(varies=st.lists(st.sampled_from(VARIES), min_size=3, max_size=3),
       interact=st.sampled_from([None, 0.5, 50.0]), seed=st.integers(0, 10_000))
def test_random_structures_match_cvxpy(varies, interact, seed):
    rng = np.random.default_rng(seed)
    n = 240
    frame = pd.DataFrame({"store": rng.integers(0, 4, n), "week": rng.integers(0, 6, n),
                          "a": rng.normal(size=n), "b": rng.normal(size=n)})
    frame["y"] = frame.a * (1 + 0.3 * frame.store) - frame.b + np.cos(frame.week) \
        + 0.3 * rng.normal(size=n)
    terms = [f"{name} {vary}" if vary else name
             for name, vary in zip(["a", "b", "intercept"], varies, strict=True)]
    spec = ("response y ~ squared\nfeatures " + ", ".join(terms)
            + "\nregularize 0.01 * sum_squares\n" + STRATA
            + (f"interact store * week weight {interact}\n" if interact else ""))
    reference, fast = both(spec, frame)
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-6)
    np.testing.assert_allclose(fast.theta_array, reference.theta_array, atol=1e-5)
    theta = grid(fast)
    for row, vary in enumerate(varies):
        if vary in ("shared", "by store"):
            assert np.all(theta[:, :, row] == theta[:, :1, row])
        if vary in ("shared", "by week", "by (week weight 0)"):
            assert np.all(theta[:, :, row] == theta[:1, :, row])


@pytest.mark.parametrize("kinds", [("cycle", "path", "complete"), ("path", "cycle", "cycle"),
                                   ("complete", "grid", "star")])
def test_the_distributed_spectrum_solves_each_group_of_columns_exactly(kinds):
    """The Dask workers' layout (first axis mixed, the rest in columns): per-column
    spectra and constant-mode masks give the grouped in-memory solve."""
    from stratlang.solvers.distributed import ProductSpectrum
    from stratlang.solvers.graphs import RowGroup
    from stratlang.solvers.laplacian import GroupedSolver

    factors = tuple(FACTORS[k](n) for k, n in zip(kinds, (5, 4, 3), strict=True))
    gammas = [0.7, 1.3, 2.0]
    interactions = [((0, 1), 0.9), ((1, 2), 0.4), ((0, 2), 2.0)]
    k = int(np.prod([f.n for f in factors]))
    n, m = 4, 2
    groups = [RowGroup(np.array([0]), None, factors, (3.0, 1.3, 0.0), (False, True, False)),
              RowGroup(np.array([1, 2]), None, factors, None, (True, False, False)),
              RowGroup(np.array([3]), None, factors, None, ())]
    spectrum = ProductSpectrum(factors, gammas)
    assert spectrum.structure_unsupported(factors, groups, interactions) is None
    spectrum.set_structure(factors, gammas, groups, interactions, (n, m))
    rhs = np.random.default_rng(0).normal(size=(k, n * m))
    expected = GroupedSolver(groups, gammas, (k, n, m), interactions).solve(rhs.copy(), 0.9)
    y = spectrum.rest.forward(rhs.reshape(spectrum.n0, *spectrum.rest_shape, n * m), lead=1)
    solved, _ = spectrum.solve_columns(spectrum.to_columns(y), 0, spectrum.outer, 0.9, None)
    back = spectrum.rest.backward(spectrum.from_columns(solved, n * m), lead=1)
    np.testing.assert_allclose(np.real(back).reshape(k, n * m), expected, atol=1e-12)


def test_an_island_shaped_by_an_interaction_is_shifted_not_flattened(rng):
    """Store 3 has no record and no stratify edge (weight 0), but the interaction with week
    gives its weekly shape; only its level is free: it gets the common level, the shape
    and the objective stay."""
    n = 600
    frame = pd.DataFrame({"store": rng.integers(0, 3, n), "week": rng.integers(0, 6, n)})
    frame["y"] = 1.0 + np.sin(frame.week) + 0.1 * rng.normal(size=n)
    spec = ("response y ~ squared\nfeatures intercept\n"
            "stratify store ~ path weight 0 nodes 0..3\nstratify week ~ path weight 0.1 "
            "nodes 0..5\ninteract store * week weight 100\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fast = stratlang.load(spec).fit(frame, backend="admm", options=TIGHT)
        reference = stratlang.load(spec).fit(frame, backend="cvxpy", solver="clarabel")
    said = {str(w.message) for w in caught if w.category is stratlang.DataWarning}
    assert said == {
        "6 strata ((3, 0), (3, 1), (3, 2), (3, 3), (3, 4), (3, 5)) have no records, no graph "
        "edge to a stratum with records and no regularizer that determines intercept: the "
        "`interact` term decides their shape, but any level is optimal there; they get the "
        "record-weighted mean level of the other strata (the common model's choice); declare "
        "their graph edges, or a regularizer on those rows, to decide it otherwise"}
    for fitted in (fast, reference):
        theta = grid_of(fitted, 4, 6)[..., 0]
        shape = theta[3] - theta[3].mean()
        np.testing.assert_allclose(shape, theta[0] - theta[0].mean(), atol=0.05)
        assert np.ptp(theta[3]) > 1.0  # not flattened to a constant
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-6)


def grid_of(fitted, *shape: int) -> np.ndarray:
    theta = fitted.theta_array[:, :, 0]
    return theta.reshape(*shape, theta.shape[1])
