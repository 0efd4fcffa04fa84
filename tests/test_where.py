"""`where` clauses (stratified paper §6): regularizers, constraints and loss parameters
in some strata, and features present in some strata only (different-sized parameters)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stratlang
from stratlang.data.design import bind
from stratlang.data.strata import where_strata
from stratlang.kinds.losses import LOSSES, Loss
from stratlang.kinds.regularizers import REGULARIZERS
from stratlang.language.errors import NumericalError, SpecError

from .cases import REGULARIZER_CASES, data_for
from .test_check import problems

TIGHT = {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iter": 50000}
STRATA = 'stratify g ~ path weight 0.7\nstratify s ~ complete weight 0.4\n'
CLAUSE = 'where s == "F" and g in {0, 2}'


def with_sex(frame: pd.DataFrame, rng) -> pd.DataFrame:
    return frame.assign(s=rng.choice(["F", "M"], len(frame)))


def selected(fitted) -> np.ndarray:
    """The strata CLAUSE selects, by position."""
    index = fitted.theta.index
    return np.flatnonzero((index.get_level_values("s") == "F")
                          & index.get_level_values("g").isin([0, 2]))


def both(spec: str, frame: pd.DataFrame):
    model = stratlang.load(spec)
    reference = model.fit(frame, backend="cvxpy", solver="clarabel")
    fast = model.fit(frame, backend="admm", options=TIGHT)
    assert fast.info["converged"]
    return reference, fast


# ---- regularizers and constraints in some strata --------------------------------------------
CONVEX_PROX = [n for n in REGULARIZERS.names()
               if REGULARIZERS[n].admm_ready() and REGULARIZERS[n].convex]


@pytest.mark.parametrize("name", CONVEX_PROX)
def test_every_regularizer_in_some_strata_matches_cvxpy(name, rng):
    case = REGULARIZER_CASES[name]
    frame, _, features = data_for(case.loss, rng, 240)
    frame = with_sex(frame, rng)
    spec = (f"response {case.target} ~ {case.loss}\n{features}\nregularize {case.term} "
            f"exclude [] {CLAUSE}\n" + STRATA)
    reference, fast = both(spec, frame)
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-6, abs=1e-6)
    # the terms are valued in the selected strata only
    theta = fast.theta_array
    inside = theta[selected(fast)]
    expected = 0.0
    model = stratlang.load(spec)
    for term in model.ir.regularizers:
        entry = REGULARIZERS[term.kind.name]
        if not entry.is_constraint:
            expected += term.weight.value * entry.value(inside, term.kind.p)
        else:
            assert entry.feasible(inside, term.kind.p)
    assert fast.objective.regularization == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_a_constraint_in_some_strata_leaves_the_others_free(rng):
    frame, _, _ = data_for("squared", rng, 300)
    frame = with_sex(frame, rng)
    frame["y"] = -2 * frame.a + rng.normal(size=len(frame)) * 0.1  # a negative slope
    fitted = stratlang.load("response y ~ squared\nfeatures a, b, intercept\n"
                            f"regularize nonnegative {CLAUSE}\n" + STRATA).fit(frame)
    theta = fitted.theta_array[:, 0, 0]
    inside = np.zeros(len(theta), dtype=bool)
    inside[selected(fitted)] = True
    assert np.all(theta[inside] >= -1e-9) and np.all(theta[~inside] < -1.5)


# ---- loss parameters in some strata ---------------------------------------------------------
def _other_value(loss: str):
    """A loss's first parameter and a valid value other than its default."""
    param = LOSSES[loss].params[0]
    for value in (param.default * 0.5, param.default * 2, param.default + 0.3):
        if param.check is None or param.check(value) is None:
            return param.name, value
    raise AssertionError(f"no other value for {loss}.{param.name}")


OVERRIDABLE = [n for n in LOSSES.names() if LOSSES[n].params and LOSSES[n].convex
               and LOSSES[n].admm_ready() and isinstance(LOSSES[n].params[0].default, float)]


@pytest.mark.parametrize("loss", OVERRIDABLE)
def test_every_loss_parameter_override_matches_cvxpy(loss, rng):
    frame, target, features = data_for(loss, rng, 240)
    frame = with_sex(frame, rng)
    name, value = _other_value(loss)
    spec = (f"response {target} ~ {loss}\nresponse {target} ~ {loss}({name}={value}) "
            f"{CLAUSE}\n{features}\nregularize 0.2 * sum_squares\n" + STRATA)
    reference, fast = both(spec, frame)
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-6, abs=1e-6)
    if type(LOSSES[loss]).losses is Loss.losses:
        return  # (a loss of aggregated statistics has no per-record value to check by hand)
    # the loss is the main parameters' in the other strata and the override's in these
    model = stratlang.load(spec)
    design = bind(model.ir, frame)
    records = design.records
    eta = records.predictor(fast.theta_array[design.z])
    inside = np.isin(design.z, where_strata(design.strata, model.ir.response.overrides[0].where))
    main, override = model.ir.response.loss.p, model.ir.response.overrides[0].loss.p
    entry = LOSSES[loss]
    hand = sum(float(np.sum(entry.losses(eta[rows], records.y[rows], p)))
               for rows, p in ((~inside, main), (inside, override)))
    assert fast.objective.loss == pytest.approx(hand, rel=1e-10)


@pytest.mark.parametrize("loss", OVERRIDABLE)
def test_an_override_selecting_every_stratum_sets_the_loss_of_all(loss, rng):
    # one loss part, of every stratum, with the override's parameters: ADMM once fitted
    # the main statement's parameters here and called it optimal
    frame, target, features = data_for(loss, rng, 240)
    name, value = _other_value(loss)
    spec = (f"response {target} ~ {loss}\nresponse {target} ~ {loss}({name}={value}) "
            f"where g in {{0, 1, 2}}\n{features}\nregularize 0.2 * sum_squares\n"
            "stratify g ~ path weight 1\n")
    reference, fast = both(spec, frame)
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-6, abs=1e-6)
    alone = stratlang.load(spec.replace(f"response {target} ~ {loss}\n",
                                        f"response {target} ~ {loss}({name}={value})\n", 1)
                           .replace(" where g in {0, 1, 2}", "").replace(
                               f"response {target} ~ {loss}({name}={value})\n", "", 1))
    assert alone.ir.response.overrides == ()
    written = alone.fit(frame, backend="cvxpy", solver="clarabel")
    assert reference.objective.total == pytest.approx(written.objective.total, rel=1e-6)


@pytest.mark.parametrize(("loss", "y", "expected"), [
    # g = 0 (eps 0) keeps its maximum-likelihood value, below 0.4; g = 1 is held at eps 0.4
    # (bernoulli: at 1 − eps) or free above it
    ("exponential", [4, 5, 6, 1, 2, 3], [1 / 5, 1 / 2]),
    ("poisson", [0, 0, 1, 1, 2, 3], [1 / 3, 2]),
    ("bernoulli", [0, 0, 1, 1, 1, 0], [1 / 3, 0.6]),
])
def test_an_override_bounds_only_its_own_strata(loss, y, expected):
    frame = pd.DataFrame({"g": [0, 0, 0, 1, 1, 1], "y": y})
    spec = (f"response y ~ {loss}(eps=0)\nresponse y ~ {loss}(eps=0.4) where g == 1\n"
            "stratify g ~ path weight 0\n")
    reference, fast = both(spec, frame)
    # (a duality gap of 1e-10 leaves a flat likelihood's rate accurate to ~1e-6 only)
    np.testing.assert_allclose(reference.theta_array.ravel(), expected, rtol=1e-4)
    np.testing.assert_allclose(fast.theta_array.ravel(), expected, rtol=1e-4)


def test_quantile_overrides_move_the_intercepts_where_they_apply(rng):
    n = 4000
    frame = pd.DataFrame({"g": rng.integers(0, 3, n), "s": rng.choice(["F", "M"], n)})
    frame["y"] = rng.normal(size=n)
    fitted = stratlang.load('response y ~ quantile(tau=0.5)\n'
                            'response y ~ quantile(tau=0.9) where s == "F"\n'
                            'response y ~ quantile(tau=0.1) where s == "M" and g == 0\n'
                            + STRATA.replace("0.7", "0.001").replace("0.4", "0.001")
                            ).fit(frame)
    intercept = fitted.theta["intercept"]
    for (g, s), value in intercept.items():
        tau = 0.9 if s == "F" else (0.1 if g == 0 else 0.5)
        assert value == pytest.approx(np.quantile(rng.normal(size=200000), tau), abs=0.12)
    # each record is predicted (and its loss valued) with its stratum's parameters
    hand = 0.0
    for (g, s), part in frame.groupby(["g", "s"]):
        tau = 0.9 if s == "F" else (0.1 if g == 0 else 0.5)
        r = part.y.to_numpy() - intercept[(g, s)]
        hand += np.sum(np.maximum(tau * r, (tau - 1) * r))
    assert fitted.objective.loss == pytest.approx(hand, rel=1e-9)


@pytest.mark.parametrize(("text", "expected"), [
    ('response y ~ huber(M=2) where s == "F"\n' + STRATA,
     [(1, 1, "missing 'response' statement: write e.g. `response y ~ squared` (the ones with "
             "`where` change its parameters in some strata)")]),
    ('response y ~ huber\nresponse y ~ quantile where s == "F"\n' + STRATA,
     [(2, 14, "a response override changes the parameters of loss 'huber', not the loss: "
              "write huber(…) where …")]),
    ('response y ~ huber\nresponse y2 ~ huber(M=2) where s == "F"\n' + STRATA,
     [(2, 10, "a response override is for the response y; got y2")]),
    ('response y ~ huber offset o\nresponse y ~ huber(M=2) offset o where s == "F"\n' + STRATA,
     [(2, 25, "a response override takes no options (an offset is the main response "
              "statement's)")]),
    ('response y ~ huber\nregularize l1 where sx == "F"\n' + STRATA,
     [(2, 21, "where: 'sx' is not a stratification column; did you mean 's'?")]),
    ('response y ~ huber\nregularize l1 where s == "F"\n',
     [(2, 15, "where selects strata: the model needs a `stratify` statement")]),
    ('response y ~ huber\nregularize l1 where s in {[1], 2}\n' + STRATA,
     [(2, 27, "where compares with node labels: numbers, names or strings")]),
    ('response y ~ huber\nfeatures a where s == "F"\n' + STRATA + "basis 2\n",
     [(2, 12, "a feature present in some strata only cannot be in a basis model: θ = V β "
              "gives every row a value in every stratum")]),
])
def test_where_misuse_is_positioned(text, expected):
    assert problems(text) == expected


@pytest.mark.parametrize(("clause", "expected"), [
    ('s == "Fx"', [(2, 26, "where: \"Fx\" is no node of column 's' (nodes F, M); did you mean "
                           "'F'?")]),
    ('g in {0, 7}', [(2, 30, "where: 7 is no node of column 'g' (nodes 0, 1, 2)")]),
    ('s == "F" and s == "M"', [(2, 15, "where selects no stratum")]),
])
def test_where_values_are_checked_against_the_nodes(clause, expected, rng):
    frame = with_sex(data_for("squared", rng)[0], rng)
    with pytest.raises(SpecError) as info:
        stratlang.load(f"response y ~ squared\nregularize l1 where {clause}\n" + STRATA
                       ).fit(frame)
    assert [(d.span.line, d.span.column, d.message) for d in info.value.diagnostics] == expected


@pytest.mark.parametrize("term", ["a", "a:b", "a:b:a", "log1p(b):a"])
def test_a_feature_where_no_node_is_named_gets_the_node_error(term, rng):
    # a product's columns over no rows once failed to reshape (a ValueError)
    frame = with_sex(data_for("squared", rng)[0], rng)
    with pytest.raises(SpecError) as info:
        stratlang.load(f"response y ~ squared\nfeatures {term} where g == 9\n" + STRATA
                       ).fit(frame)
    assert [(d.span.line, d.span.column, d.message) for d in info.value.diagnostics] == [
        (2, 22 + len(term), "where: 9 is no node of column 'g' (nodes 0, 1, 2)")]


def test_a_learned_feature_over_no_rows_says_where_it_learns(rng):
    frame = with_sex(data_for("squared", rng)[0], rng).assign(c=lambda f: f.s.str.lower())
    with pytest.raises(SpecError) as info:
        stratlang.load("response y ~ squared\nfeatures categorical(c):a where g == 9\n"
                       + STRATA).fit(frame)
    assert [(d.span.line, d.span.column, d.message) for d in info.value.diagnostics] == [
        (2, 10, "categorical(c): categorical has no values to learn from (in the rows where "
                "g == 9)"),
        (2, 38, "where: 9 is no node of column 'g' (nodes 0, 1, 2)")]


def test_overlapping_overrides_are_refused(rng):
    frame = with_sex(data_for("quantile", rng)[0], rng)
    with pytest.raises(SpecError) as info:
        stratlang.load('response y ~ quantile\nresponse y ~ quantile(tau=0.9) where s == "F"\n'
                       'response y ~ quantile(tau=0.2) where g == 1\n' + STRATA).fit(frame)
    assert [(d.span.line, d.span.column, d.message) for d in info.value.diagnostics] == [
        (3, 32, "this override and the one on line 2 both select 1 stratum (e.g. g=1, s=F): a "
                "stratum takes one loss")]


# ---- features present in some strata only ----------------------------------------------------
def pregnancies(rng, n=1500) -> pd.DataFrame:
    frame = pd.DataFrame({"age": rng.normal(size=n), "g": rng.integers(0, 3, n),
                          "s": rng.choice(["F", "M"], n)})
    count = rng.poisson(2, n).astype(float)
    frame["preg"] = np.where(frame.s == "F", count, np.nan)  # no value for men at all
    effect = np.array([0.3, 0.5, 0.7])[frame.g]
    frame["y"] = (frame.age + np.where(frame.s == "F", effect * count, 0.0)
                  + rng.normal(size=n) * 0.3)
    return frame


FEATURE_SPEC = ('response y ~ squared\nfeatures age, preg where s == "F", intercept\n'
                'regularize 0.1 * sum_squares\n' + STRATA)


def test_a_feature_in_some_strata_matches_cvxpy_and_is_absent_elsewhere(rng):
    frame = pregnancies(rng)
    reference, fast = both(FEATURE_SPEC, frame)
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-8)
    np.testing.assert_allclose(fast.theta_array, reference.theta_array, atol=1e-6)
    theta = fast.theta
    men = theta.index.get_level_values("s") == "M"
    assert np.all(theta.loc[men, "preg"] == 0)  # exactly: absent, not small
    np.testing.assert_allclose(theta.loc[~men, "preg"], [0.3, 0.5, 0.7], atol=0.05)


def test_the_laplacian_compares_a_row_only_between_strata_that_have_it(rng):
    frame = pregnancies(rng, 600)
    fitted = stratlang.load(FEATURE_SPEC).fit(frame)
    theta = fitted.theta
    labels = list(theta.index)
    hand = 0.0
    for i, (g1, s1) in enumerate(labels):
        for j, (g2, s2) in enumerate(labels):
            if j <= i:
                continue
            if s1 == s2 and abs(g1 - g2) == 1:
                gamma = 0.7
            elif g1 == g2 and s1 != s2:
                gamma = 0.4
            else:
                continue
            for row in theta.columns:
                if row == "preg" and "M" in (s1, s2):
                    continue  # absent in one of them: no comparison
                hand += 0.5 * gamma * (theta.iloc[i][row] - theta.iloc[j][row]) ** 2
    assert fitted.objective.laplacian == pytest.approx(hand, rel=1e-10)


def test_values_outside_a_features_strata_are_never_read(rng):
    frame = pregnancies(rng, 600)
    fitted = stratlang.load(FEATURE_SPEC).fit(frame)
    garbage = frame.assign(preg=np.where(frame.s == "M", 1e9, frame.preg))
    np.testing.assert_allclose(fitted.predict(garbage).prediction,
                               fitted.predict(frame).prediction)
    men = frame[frame.s == "M"]  # rows none of which is in its strata: the column may be gone
    np.testing.assert_allclose(fitted.predict(men.drop(columns="preg")).prediction,
                               fitted.predict(men).prediction)
    # inside its strata a missing value is still an error naming the rows
    broken = frame.copy()
    broken.loc[broken.index[broken.s == "F"][:2], "preg"] = np.nan
    with pytest.raises(SpecError, match=r"column 'preg' has missing values \(empty or NaN\) "
                                        r"in rows \d+, \d+"):
        stratlang.load(FEATURE_SPEC).fit(broken)
    # and `missing drop` drops only those rows
    dropping = stratlang.load(FEATURE_SPEC + "missing drop\n")
    with pytest.warns(Warning, match=r"'preg' 2\b"):
        kept = dropping.fit(broken)
    assert kept.info["records"] == len(frame) - 2


def test_a_local_feature_saves_loads_and_shows(rng, tmp_path):
    frame = pregnancies(rng, 400)
    model = stratlang.load(FEATURE_SPEC)
    assert 'features age, preg where s == "F", intercept' in model.text
    fitted = model.fit(frame)
    again = stratlang.load_fitted(fitted.save(tmp_path / "fit"))
    np.testing.assert_allclose(again.predict(frame).prediction, fitted.predict(frame).prediction)
    # the summary speaks of the strata that have a parameter: 6 × 3 less 3 absent
    for each in (fitted, again):
        assert each.n_parameters == 15
        table = each.coefficients()
        assert table.loc["preg", "strata"] == 3 and table.loc["age", "strata"] == 6
        women = each.theta.loc[each.theta.index.get_level_values("s") == "F", "preg"]
        assert table.loc["preg", "mean"] == pytest.approx(women.mean())
    assert "(15 in all)" in fitted.summary()


def test_a_transform_in_some_strata_learns_from_those_rows(rng):
    frame = pregnancies(rng, 800)
    fitted = stratlang.load(FEATURE_SPEC.replace("preg where", "standardize(preg) where")
                            ).fit(frame)
    women = frame.preg[frame.s == "F"]
    state = fitted.features['standardize(preg) where s == "F"']
    assert state["center"] == pytest.approx(women.mean())
    assert state["scale"] == pytest.approx(women.std(ddof=0), rel=1e-6)


# ---- what fits them ----------------------------------------------------------------------------
def test_backends_that_cannot_fit_where_say_so(rng):
    frame = pregnancies(rng, 300)
    model = stratlang.load(FEATURE_SPEC)
    with pytest.raises(NumericalError, match="a `where` clause selects strata; the workers"):
        model.fit(frame, backend="dask")
    basis = stratlang.load('response y ~ squared\nfeatures age\n'
                           'regularize 0.1 * sum_squares where s == "F"\n' + STRATA + "basis 2\n")
    fitted = basis.fit(frame)  # the reference fits it
    assert fitted.info["backend"] == "cvxpy"
    with pytest.raises(NumericalError, match="a `where` clause makes a term differ between "
                                             "strata"):
        basis.fit(frame, backend="eigen")


def test_the_python_builder_writes_where(rng):
    spec = (stratlang.Spec("m").response("y", "quantile")
            .response("y", "quantile", where={"s": "F"}, tau=0.9)
            .features("age", 'preg where s == "F"')
            .regularize("l1", 2, where={"g": [0, 2]})
            .stratify("g", "path").stratify("s", "complete"))
    assert spec.text == ("model m\nresponse y ~ quantile\n"
                         'response y ~ quantile(tau=0.9) where s == "F"\n'
                         'features age, preg where s == "F"\n'
                         "regularize 2 * l1 where g in {0, 2}\n"
                         "stratify g ~ path weight 1\nstratify s ~ complete weight 1\n")
    assert stratlang.Spec.from_text(spec.text).text == spec.text


def test_quadratic_models_with_where_are_one_linear_solve(rng):
    """Squared loss with ridge terms in some strata and a feature in some strata: still
    one sparse linear system (per-stratum regularization weights, the grouped Laplacian,
    absent entries pinned at 0), equal to the reference."""
    frame = pregnancies(rng, 900)
    spec = FEATURE_SPEC + 'regularize 3 * sum_squares exclude [] where s == "M" and g != 1\n'
    reference, fast = both(spec, frame)
    assert fast.info["iterations"] == 0 and fast.info["solver"].startswith("direct")
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-9)
    np.testing.assert_allclose(fast.theta_array, reference.theta_array, atol=1e-6)
    assert np.all(fast.theta.loc[fast.theta.index.get_level_values("s") == "M", "preg"] == 0)


# ---- the machinery, on random graphs and clauses ----------------------------------------------
@st.composite
def product_and_clause(draw):
    """Two or three factors (random kinds and sizes) and a clause on their columns."""
    from stratlang.solvers import graphs as g

    makers = [g.path_graph, g.cycle_graph, g.complete_graph]
    sizes = draw(st.lists(st.integers(1, 5), min_size=2, max_size=3))
    factors = [draw(st.sampled_from(makers))(n) for n in sizes]
    masks = [np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n))) for n in sizes]
    return factors, masks


@settings(max_examples=60, deadline=None)
@given(product_and_clause(), st.floats(0.1, 5))
def test_grouped_laplacian_solve_and_value_match_the_induced_matrix(case, c):
    """(L_S + cI) X = B on the strata S of a product of node subsets, X = 0 elsewhere,
    and ½ Σ w ‖θ_i − θ_j‖² over S's edges: against the K × K matrix built by brute force
    (the product Laplacian with every edge that leaves S removed)."""
    from stratlang.solvers.graphs import (
        RowGroup,
        grouped_laplacian_quadratic,
        induced,
        product_laplacian,
    )
    from stratlang.solvers.laplacian import GroupedSolver

    factors, masks = case
    gammas = [0.7, 1.3, 0.4][:len(factors)]
    inside = masks[0]
    for mask in masks[1:]:
        inside = np.logical_and.outer(inside, mask).reshape(-1)
    strata = np.flatnonzero(inside)
    k = len(inside)
    full = product_laplacian(factors, gammas).toarray()
    keep = np.outer(inside, inside)
    laplacian = np.where(keep, full, 0.0)  # edges leaving S removed: rebuild the degrees
    np.fill_diagonal(laplacian, 0.0)
    laplacian -= np.diag(laplacian.sum(axis=1))
    groups = [RowGroup(np.array([0]), None, tuple(factors))]
    if len(strata):
        groups.append(RowGroup(np.array([1]), strata,
                               tuple(induced(f, m) for f, m in zip(factors, masks, strict=True))))
    b = np.random.default_rng(0).normal(size=(k, 2))
    solved = GroupedSolver(groups, gammas, (k, 2, 1)).solve(b, c)
    np.testing.assert_allclose(solved[:, 0], np.linalg.solve(full + c * np.eye(k), b[:, 0]),
                               atol=1e-9)
    expected = np.zeros(k) if len(strata) else b[:, 1] / c  # absent outside S (a row of no
    # group, S being empty, is coupled to nothing)
    if len(strata):
        expected[strata] = np.linalg.solve((laplacian + c * np.eye(k))[np.ix_(strata, strata)],
                                           b[strata, 1])
    np.testing.assert_allclose(solved[:, 1], expected, atol=1e-9)
    theta = b.reshape(k, 2, 1)
    value = grouped_laplacian_quadratic(groups, gammas, theta)
    assert value == pytest.approx(0.5 * b[:, 0] @ full @ b[:, 0]
                                  + 0.5 * b[:, 1] @ laplacian @ b[:, 1], abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["F", "M", "X"]), min_size=1, max_size=3),
       st.lists(st.integers(0, 3), min_size=1, max_size=3), st.booleans(), st.booleans())
def test_a_clause_selects_the_strata_and_rows_it_says(sexes, groups, negate, both_columns):
    """select_strata (over the nodes) and rows_where (over the data rows) agree with the
    clause read literally."""
    from stratlang.data.design import bind
    from stratlang.data.strata import rows_where, select_strata

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"y": rng.normal(size=60), "g": rng.integers(0, 4, 60),
                          "s": rng.choice(["F", "M", "X"], 60)})
    conditions = [f"s {'!=' if negate else '=='} {sexes[0]!r}".replace("'", '"')]
    if both_columns:
        conditions.append("g in {" + ", ".join(str(v) for v in groups) + "}")
    model = stratlang.load(f"response y ~ squared\nregularize l1 where {' and '.join(conditions)}"
                           "\nstratify g ~ path nodes 0..3\nstratify s ~ complete\n")
    where = model.ir.regularizers[0].where
    try:
        design = bind(model.ir, frame)
    except SpecError as error:  # (tested on its own above)
        assert "where selects no stratum" in str(error)
        return

    def holds(g, s):
        ok = (s != sexes[0]) if negate else (s == sexes[0])
        return ok and (not both_columns or g in groups)

    labels = design.strata.labels(0, design.strata.k)
    expected = [i for i, (g, s) in enumerate(zip(labels.g, labels.s, strict=True)) if holds(g, s)]
    assert list(select_strata(design.strata, where)) == expected
    rows = rows_where(frame, where)
    assert list(rows) == [holds(g, s) for g, s in zip(frame.g, frame.s, strict=True)]
    assert np.array_equal(rows, np.isin(design.z, expected))


def test_tune_checks_the_clauses_before_any_fold(rng):
    frame = pregnancies(rng, 300)
    model = stratlang.load('response y ~ squared\nfeatures age\n'
                           'regularize {0.1, 1} * l1 where s == "f"\n' + STRATA)
    with pytest.raises(SpecError, match=r"3:37: error\[S508\]: where: \"f\" is no node of column 's' "
                                        r"\(nodes F, M\); did you mean 'F'\?"):
        model.tune(frame, folds=3)
    good = stratlang.load('response y ~ squared\nfeatures age, preg where s == "F"\n'
                          'regularize {0.1, 1} * l1 where s == "F"\n' + STRATA)
    result = good.tune(frame, folds=3)
    assert set(result.table["reg0.l1"]) == {0.1, 1.0}
    assert np.all(result.fitted.theta.loc[result.fitted.theta.index.get_level_values("s") == "M",
                                          "preg"] == 0)


# ---- found in review: each a regression test --------------------------------------------------
def review_frame(rng, n=240) -> pd.DataFrame:
    frame = pd.DataFrame({"g": rng.choice(list("abcd"), n), "x0": rng.normal(size=n),
                          "x1": rng.normal(size=n), "x2": rng.normal(size=n),
                          "s": rng.choice(["F", "M"], n)})
    frame["y"] = 2 * frame.x0 - frame.x1 + rng.normal(size=n)
    frame["cnt"] = rng.poisson(np.exp(0.3 * frame.x0))
    return frame


@pytest.mark.parametrize("spec", [
    'response y ~ squared\nfeatures x0, x1 where g == "a", intercept\n'
    'regularize nonnegative exclude [] where g == "c"\nregularize 0.1 * sum_squares\n'
    "stratify g ~ cycle weight 0.5\n",
    'response y ~ squared\nfeatures x0, x1, x2 where g != "a", intercept\nregularize 1 * l1\n'
    "stratify g ~ path weight 1\n",
    'response y ~ huber(M=0.5)\nresponse y ~ huber(M=2) where g == "a"\n'
    'features x0 * x1 where g != "b", intercept\nregularize 0.2 * l1\n'
    'regularize 1 * sum_squares where g == "b"\nstratify g ~ cycle weight 1\n',
    'response cnt ~ poisson_regression\nfeatures x0, x1 where g == "a"\nregularize 0.2 * l1\n'
    'regularize 1 * sum_squares where g == "b"\nstratify g ~ path weight 1\n',
])
def test_iterative_fits_with_a_feature_in_some_strata_converge_to_the_reference(spec, rng):
    """(ADMM once held absent entries by an extra box(0, 0) copy, which made the default
    over-relaxed, adaptive iteration diverge; the consensus step now keeps them at 0.)"""
    frame = review_frame(rng)
    model = stratlang.load(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error", stratlang.NumericalWarning)  # converged: no warning
        fast = model.fit(frame)
    reference = model.fit(frame, backend="cvxpy", solver="clarabel")
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-6)


def test_a_nonconvex_loss_with_overrides_relaxes_every_parameter_set(rng):
    frame = review_frame(rng)
    model = stratlang.load('response y ~ tukey(c=3)\nresponse y ~ tukey(c=1) where g == "a"\n'
                           "features x0, x1, intercept\nstratify g ~ path weight 1\n")
    fitted = model.fit(frame)
    assert fitted.info["converged"]
    assert ("loss tukey(c=3) → huber(M=3); loss tukey(c=1) → huber(M=1)"
            in fitted.info["start"])
    assert model.verify(frame).relaxation == ("loss tukey(c=3) → huber(M=3); "
                                              "loss tukey(c=1) → huber(M=1)")


def test_a_term_with_where_learns_its_own_state(rng):
    frame = review_frame(rng).assign(x1=lambda f: f.x1 + 3, c=lambda f: np.where(
        f.s == "F", rng.choice(["p", "q"], len(f)), rng.choice(["p", "q", "r"], len(f))))
    fitted = stratlang.load('response y ~ squared\nfeatures standardize(x1) where s == "F", '
                            "standardize(x1):x0, intercept\nstratify s ~ complete\n").fit(frame)
    states = fitted.features.to_json()
    assert states['standardize(x1) where s == "F"']["center"] == pytest.approx(
        frame.x1[frame.s == "F"].mean())
    assert states["standardize(x1)"]["center"] == pytest.approx(frame.x1.mean())
    # a level seen only outside the clause's strata is still a level of the plain term
    levels = stratlang.load('response y ~ squared\nfeatures categorical(c) where s == "F", '
                            "categorical(c):x0, intercept\nstratify s ~ complete\n").fit(frame)
    assert "c[T.r]:x0" in levels.rows and "c[T.r]" not in levels.rows


def test_overrides_of_a_loss_without_parameters_and_where_in_personalized_models():
    assert problems('response y ~ squared\nresponse y ~ squared where g == 1\n'
                    "stratify g ~ path\n") == [
        (2, 14, "loss 'squared' has no parameters for an override to change")]
    assert problems('response y ~ squared\nfeatures x where g == 1\npersonalize rank 2\n'
                    "distance u ~ abs\n") == [
        (2, 12, "where selects strata of a stratified model; a personalized model has none "
                "(one model per sample)")]
