"""Real data as analysts have it: offsets, record weights, feature terms (categorical,
transforms, interactions), missing values, unseen strata — each checked against CVXPY on
the same IR, against its meaning (weight 2 = the record twice), and for positioned errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import stratlang
from stratlang.kinds import LOSSES

from .cases import data_for
from .conftest import write

TIGHT = {"eps_abs": 1e-10, "eps_rel": 1e-10, "max_iter": 20000}


def both(spec: str, frame: pd.DataFrame, **kwargs):
    """The ADMM fit and the CVXPY reference of a spec; their objectives agree."""
    model = stratlang.load(spec, **kwargs)
    fast = model.fit(frame, backend="admm", options=TIGHT)
    reference = model.fit(frame, backend="cvxpy", solver="clarabel")
    assert fast.objective.total == pytest.approx(reference.objective.total, rel=1e-6, abs=1e-6)
    return fast, reference


def problems(spec: str, frame: pd.DataFrame | None = None, **fit) -> list[tuple[int, int, str]]:
    with pytest.raises(stratlang.SpecError) as info:
        model = stratlang.load(spec)
        model.fit(frame, **fit)
    return [(d.span.line, d.span.column, d.message) if d.span else (0, 0, d.message)
            for d in info.value.diagnostics]


# ---- offsets --------------------------------------------------------------------------------
OFFSET_LOSSES = [n for n in LOSSES.names()
                 if LOSSES[n].offset_problem is None and LOSSES[n].convex]


@pytest.mark.parametrize("loss", OFFSET_LOSSES)
def test_every_loss_that_takes_an_offset_matches_cvxpy(loss, rng):
    frame, target, features = data_for(loss, rng)
    frame["o"] = rng.normal(size=len(frame)) * 0.5
    spec = (f"response {target} ~ {loss} offset o\n{features}\n"
            "regularize 0.2 * sum_squares\nstratify g ~ path weight 0.7\n")
    fast, _ = both(spec, frame)
    # the offset is in the linear predictor: θ fitted to y with the offset equals θ fitted
    # with the offset's effect moved into a feature whose coefficient is fixed at 1
    pred = fast.predict(frame)
    assert len(pred) == len(frame) and np.all(np.isfinite(pred.select_dtypes("number")))


def test_poisson_rates_with_exposure_recover_the_truth(rng):
    exposure = rng.uniform(50, 5000, 800)
    g = rng.integers(0, 4, 800)
    rate = np.array([0.01, 0.02, 0.04, 0.08])[g]
    frame = pd.DataFrame({"g": g, "holders": exposure, "claims": rng.poisson(rate * exposure)})
    fitted = stratlang.load("response claims ~ poisson_regression offset log(holders)\n"
                            "stratify g ~ path weight 0.01\n").fit(frame)
    np.testing.assert_allclose(np.exp(fitted.theta["intercept"]), [0.01, 0.02, 0.04, 0.08],
                               rtol=0.08)
    # predictions are counts: the exposure multiplies the rate
    one = pd.DataFrame({"g": [2], "holders": [1000.0]})
    assert fitted.predict(one).prediction.iloc[0] == pytest.approx(
        1000 * np.exp(fitted.theta["intercept"].iloc[2]))


@pytest.mark.parametrize(("spec", "expected"), [
    ("response y ~ multinomial offset o\n",
     (1, 26, "loss 'multinomial' takes no offset: the same offset added to every class's score "
             "changes no prediction; write it as a feature")),
    ("response y ~ poisson offset o\n",
     (1, 22, "loss 'poisson' takes no offset: a distribution estimate has no linear predictor "
             "to offset")),
    ("response y ~ logistic offset categorical(o)\n",
     (1, 30, "an offset is one number per record: it cannot be categorical")),
    ("response y ~ squared ofset o\n",
     (1, 22, "unknown option 'ofset' for response; did you mean 'offset'?")),
])
def test_offset_misuse_is_positioned(spec, expected):
    with pytest.raises(stratlang.SpecError) as info:
        stratlang.load(spec)
    [d] = info.value.diagnostics
    assert (d.span.line, d.span.column, d.message) == expected


def test_offset_values_outside_the_transform_are_named(rng):
    frame = pd.DataFrame({"y": [1, 2, 3, 4], "h": [10.0, 0.0, -2.0, 5.0]})
    assert problems("response y ~ poisson_regression offset log(h)\n", frame) == [
        (1, 40, "log(h): column 'h' must be positive for log; values 0, -2 in rows 1, 2")]


# ---- record weights -------------------------------------------------------------------------
@pytest.mark.parametrize("loss", [n for n in LOSSES.names() if LOSSES[n].convex])
def test_every_loss_takes_record_weights_and_matches_cvxpy(loss, rng):
    frame, target, features = data_for(loss, rng)
    frame["w"] = rng.choice([0.0, 0.5, 1.0, 2.0], len(frame))
    reg = "0.1 * trace" if LOSSES[loss].square_parameter else "0.2 * sum_squares"
    both(f"response {target} ~ {loss}\n{features}\nweights w\nregularize {reg}\n"
         "stratify g ~ path weight 0.7\n", frame)


@pytest.mark.parametrize("loss", ["squared", "logistic", "poisson", "quantile", "multinomial"])
def test_a_weight_of_two_is_the_record_twice_and_zero_is_none(loss, rng):
    frame, target, features = data_for(loss, rng, 90)
    frame["w"] = rng.choice([0, 1, 2], len(frame))
    body = (f"response {target} ~ {loss}\n{features}\nregularize 0.2 * sum_squares\n"
            "stratify g ~ path weight 0.7\n")
    weighted = stratlang.load(body + "weights w\n").fit(frame, backend="cvxpy",
                                                         solver="clarabel")
    repeated = frame.loc[frame.index.repeat(frame.w)]
    plain = stratlang.load(body).fit(repeated, backend="cvxpy", solver="clarabel")
    assert weighted.objective.total == pytest.approx(plain.objective.total, rel=1e-6)
    # (θ itself: multinomial's is unique only up to a shift shared by the classes)
    numbers = weighted.predict(frame).select_dtypes("number")
    np.testing.assert_allclose(numbers, plain.predict(frame)[numbers.columns], atol=1e-4)
    # scores are weighted the same way
    assert weighted.score(frame)[LOSSES[loss].primary] == pytest.approx(
        plain.score(repeated)[LOSSES[loss].primary], rel=1e-6)


def test_bad_weights_name_the_rows():
    frame = pd.DataFrame({"y": [1.0, 2.0, 3.0], "w": [1.0, -1.0, -0.5]})
    assert problems("response y ~ squared\nweights w\n", frame) == [
        (2, 9, "weights column 'w' must be nonnegative; values -1, -0.5 in rows 1, 2")]
    assert problems("response y ~ squared\nweights w\n", frame.assign(w=0.0)) == [
        (2, 9, "weights column 'w' is zero in every row: no record counts")]
    assert problems("response y ~ squared\nweights ww\n", frame) == [
        (2, 9, "column 'ww' not found in the data; did you mean 'w'?")]


# ---- feature terms ------------------------------------------------------------------------
@pytest.fixture
def people(rng) -> pd.DataFrame:
    n = 300
    frame = pd.DataFrame({"g": rng.integers(0, 3, n),
                          "region": rng.choice(["north", "south", "east"], n),
                          "income": rng.lognormal(1.0, 0.5, n), "age": rng.normal(40, 10, n)})
    frame["y"] = (1.0 * (frame.region == "south") - 0.5 * (frame.region == "east")
                  + 0.8 * np.log(frame.income) + 0.02 * frame.age + 0.3 * frame.g
                  + 0.1 * rng.normal(size=n))
    return frame


def test_categorical_features_are_indicators_named_by_level(people):
    spec = ('response y ~ squared\nfeatures intercept, categorical(region, reference="north"), '
            "log(income), age\nstratify g ~ path weight 1\n")
    fast, reference = both(spec, people)
    assert fast.rows == ("intercept", "region[T.east]", "region[T.south]", "log(income)", "age")
    assert list(fast.theta.columns) == list(fast.rows)
    np.testing.assert_allclose(fast.theta_array, reference.theta_array, atol=1e-6)
    # the truth: south +1, east −0.5 against north, 0.8 per log(income)
    mean = fast.theta.mean()
    assert mean["region[T.south]"] == pytest.approx(1.0, abs=0.1)
    assert mean["region[T.east]"] == pytest.approx(-0.5, abs=0.1)
    assert mean["log(income)"] == pytest.approx(0.8, abs=0.1)


def test_the_design_is_what_the_terms_say(people):
    model = stratlang.load("response y ~ squared\nfeatures categorical(region), "
                           "standardize(age), log(income):age, categorical(region) * income\n")
    design = model.bind(people)
    x = pd.DataFrame(design.x, columns=design.rows)
    dummies = pd.get_dummies(people.region).astype(float)
    np.testing.assert_allclose(x["region[T.south]"], dummies["south"])  # east: the reference
    z = (people.age - people.age.mean()) / people.age.std(ddof=0)
    np.testing.assert_allclose(x["standardize(age)"], z)
    np.testing.assert_allclose(x["log(income):age"], np.log(people.income) * people.age)
    # a * b is a, b, a:b (the repeated main effect is written once)
    assert design.rows == ("region[T.north]", "region[T.south]", "standardize(age)",
                           "log(income):age", "income", "region[T.north]:income",
                           "region[T.south]:income")
    np.testing.assert_allclose(x["region[T.north]:income"], dummies["north"] * people.income)


def test_learned_transforms_are_kept_for_new_data(people, tmp_path):
    model = stratlang.load("response y ~ squared\nfeatures intercept, standardize(age), "
                           "categorical(region)\nstratify g ~ path weight 1\n")
    fitted = model.fit(people)
    new = people.head(5).assign(age=[10.0, 20, 30, 40, 50])
    x_new = fitted.predict(new).prediction.to_numpy()
    mean, sd = people.age.mean(), people.age.std(ddof=0)
    theta = fitted.theta.loc[new.g.to_numpy()].reset_index(drop=True)
    manual = (theta["intercept"] + theta["standardize(age)"] * (new.age.to_numpy() - mean) / sd
              + theta["region[T.north]"] * (new.region == "north").to_numpy()
              + theta["region[T.south]"] * (new.region == "south").to_numpy())
    np.testing.assert_allclose(x_new, manual)
    again = stratlang.load_fitted(fitted.save(tmp_path / "fit"))
    pd.testing.assert_frame_equal(again.predict(new), fitted.predict(new))
    assert again.features == fitted.features and again.rows == fitted.rows


def test_feature_data_errors_name_column_and_rows(people):
    bad = people.head(4).assign(income=[1.0, 0.0, 2.0, -1.0], age=30.0)
    assert problems("response y ~ squared\nfeatures log(income), standardize(age)\n", bad) == [
        (2, 10, "log(income): column 'income' must be positive for log; values 0, -1 in rows "
                "1, 3"),
        (2, 23, "standardize(age): standardize: the values are constant (30); there is "
                "nothing to scale")]
    words = people.head(3).assign(region=["north", "south", "east"])
    with pytest.raises(stratlang.SpecError) as info:
        stratlang.load("response y ~ squared\nfeatures region\n").fit(words)
    [d] = info.value.diagnostics
    assert d.message == ("column 'region' must be numeric; values 'north', 'south', 'east' in "
                         "rows 0, 1, 2")
    assert d.hint == "for a categorical feature write categorical(region)"
    assert problems('response y ~ squared\nfeatures categorical(region, reference="west")\n',
                    people) == [
        (2, 10, "categorical(region, reference=\"west\"): categorical: the reference level 'west' "
                "is not among the values ('east', 'north', 'south')")]


def test_an_unseen_level_at_predict_time_names_column_and_rows(people):
    fitted = stratlang.load("response y ~ squared\nfeatures categorical(region)\n").fit(people)
    new = people.head(3).assign(region=["north", "west", "west"])
    with pytest.raises(stratlang.SpecError) as info:
        fitted.predict(new)
    [d] = info.value.diagnostics
    assert d.message == ("categorical(region): column 'region' has levels not seen in training: "
                         "'west' (known: 'east', 'north', 'south'); values 'west', 'west' in "
                         "rows 1, 2")


@pytest.mark.parametrize(("spec", "expected"), [
    ("features lg(x)", (2, 10, "unknown transform 'lg'; did you mean 'log'?")),
    ("features log()", (2, 10, "transform 'log' takes a column first: log(x)")),
    ("features standardize(categorical(r))",
     (2, 22, "categorical(r) gives indicator columns: it cannot be the input of 'standardize'")),
    ("features a, a", (2, 13, "duplicate feature 'a'")),
    ("features a:b, b:a", (2, 15, "duplicate feature 'b:a'")),
    ("features categorical(r, levle=1)",
     (2, 25, "unknown argument 'levle' for transform 'categorical'; expected one of 'reference'")),
    ("regularize l1 exclude [lg]\nfeatures log(x)",
     (2, 23, "exclude: 'lg' is not a parameter row of this model; expected one of 'log(x)'")),
])
def test_feature_misuse_is_positioned(spec, expected):
    with pytest.raises(stratlang.SpecError) as info:
        stratlang.load("response y ~ squared\n" + spec + "\n")
    first = info.value.diagnostics[0]
    assert (first.span.line, first.span.column, first.message) == expected


def test_exclude_names_a_term_or_a_categorical_column(people):
    model = stratlang.load('response y ~ squared\nfeatures intercept, categorical(region), '
                           'log(income)\nregularize 5 * l1 exclude [intercept, region, '
                           '"log(income)"]\nstratify g ~ path weight 1\n')
    fast, _ = both(model.text, people)
    assert fast.objective.regularization == pytest.approx(0.0, abs=1e-9)  # nothing penalized
    spec = ('response y ~ squared\nfeatures intercept, categorical(region)\n'
            'regularize 5 * l1 exclude [intercept, "region[T.south]"]\n')
    design = stratlang.load(spec).bind(people)
    from stratlang.backends.objective import selected_rows

    assert [design.rows[i] for i in selected_rows(design, design.model.regularizers[0])] == [
        "region[T.north]"]


# ---- missing values -------------------------------------------------------------------------
def test_missing_values_are_an_error_unless_dropped_knowingly(rng):
    frame = pd.DataFrame({"y": rng.normal(size=40), "x": rng.normal(size=40),
                          "g": rng.integers(0, 3, 40), "unused": np.nan})
    frame.loc[[3, 7], "x"] = np.nan
    frame.loc[[7, 11], "g"] = np.nan
    body = "response y ~ squared\nfeatures x, intercept\nstratify g ~ path\n"
    assert problems(body, frame) == [
        (2, 10, "column 'x' has missing values (empty or NaN) in rows 3, 7"),
        (3, 10, "column 'g' has missing values (empty or NaN) in rows 7, 11")]
    with pytest.warns(stratlang.DataWarning, match=r"missing drop: rows with missing values left "
                                                   r"out \(by column: 'x' 2, 'g' 2\); 37 rows kept"):
        dropped = stratlang.load(body + "missing drop\n").fit(frame)
    assert dropped.info["dropped_rows"] == {"x": 2, "g": 2}
    clean = stratlang.load(body).fit(frame.dropna(subset=["x", "g"]))
    np.testing.assert_allclose(dropped.theta_array, clean.theta_array)
    # predictions keep the input's rows: none for a row with a missing value
    with pytest.warns(stratlang.DataWarning):
        pred = dropped.predict(frame)
    assert list(pred.index) == list(frame.index) and pred.prediction.isna().sum() == 3


def test_a_stratum_whose_records_were_all_dropped_is_still_a_node(rng):
    # predict on the training frame once failed: g = 2 was no node once its rows were
    # dropped, and the path graph joined 1 to 3
    frame = pd.DataFrame({"x": rng.normal(size=80), "g": rng.integers(0, 4, 80)})
    frame["y"] = frame.x * (1 + frame.g) + 0.1 * rng.normal(size=80)
    frame.loc[frame.g == 2, "y"] = np.nan
    frame.loc[0, ["g", "y"]] = [np.nan, 1.0]  # a missing stratum value is no node
    spec = "response y ~ squared\nfeatures x\nstratify g ~ path weight 1\nmissing drop\n"
    with pytest.warns(stratlang.DataWarning):
        fitted = stratlang.load(spec).fit(frame)
    assert list(fitted.strata.index()) == [0, 1, 2, 3]
    assert fitted.strata.factors[0].graph.edges.tolist() == [[0, 1], [1, 2], [2, 3]]
    # node 2 has no record: its θ is the Laplacian's mean of its neighbours'
    theta = fitted.theta_array[:, 0, 0]
    assert theta[2] == pytest.approx((theta[1] + theta[3]) / 2, rel=1e-4)
    with pytest.warns(stratlang.DataWarning):
        predicted = fitted.predict(frame)
    twos = frame.g == 2
    assert predicted.prediction[twos].to_numpy() == pytest.approx(frame.x[twos] * theta[2])
    assert predicted.prediction.isna().tolist() == [True] + [False] * 79


def test_unknown_missing_policy():
    with pytest.raises(stratlang.SpecError, match=r"unknown missing-value policy 'skip'; expected "
                                                  r"one of 'drop', 'error'"):
        stratlang.load("response y ~ squared\nmissing skip\n")


# ---- unseen strata ------------------------------------------------------------------------
def test_unseen_strata_error_hub_or_common(rng):
    frame = pd.DataFrame({"s": rng.choice(["a", "b", "c"], 120), "h": rng.integers(0, 3, 120),
                          "x": rng.normal(size=120)})
    frame["y"] = frame.x * (frame.s == "a") + frame.h + rng.normal(size=120) * 0.1
    fitted = stratlang.load("response y ~ squared\nfeatures x, intercept\n"
                            "stratify s ~ star weight 2\nstratify h ~ path\n").fit(frame)
    new = pd.DataFrame({"s": ["a", "zz", "zz"], "h": [0, 1, 7], "x": [1.0, 1.0, 1.0]})
    with pytest.raises(stratlang.SpecError) as info:
        fitted.predict(new)
    messages = [(d.message, d.hint) for d in info.value.diagnostics]
    assert messages == [
        ("column 's' has values that are not nodes of its graph: 'zz' in rows 1, 2",
         "predict(..., unseen='hub') uses the hub's model (the star's centre) for them"),
        ("column 'h' has values that are not nodes of its graph: 7 in row 2",
         "predict(..., unseen='common') uses the model averaged over the factor's nodes")]
    theta = fitted.theta  # x = 1: a prediction is the sum of a stratum's two parameters
    common = fitted.predict(new, unseen="common").prediction
    assert common.iloc[0] == pytest.approx(theta.loc[("a", 0)].sum())
    assert common.iloc[1] == pytest.approx(theta.xs(1, level="h").mean().sum())  # over s
    assert common.iloc[2] == pytest.approx(theta.mean().sum())  # over s and h
    with pytest.raises(stratlang.SpecError, match="not nodes of its graph: 7") as info:
        fitted.predict(new, unseen="hub")  # h's path has no hub
    assert "no hub" in info.value.diagnostics[0].hint
    hub = fitted.predict(new.iloc[:2], unseen="hub").prediction
    assert hub.iloc[1] == pytest.approx(theta.loc[("(common)", 1)].sum())
    with pytest.raises(stratlang.OptionError, match="unseen='hubb': expected one of 'error', "
                                                    "'common', 'hub'; did you mean 'hub'"):
        fitted.predict(new, unseen="hubb")


# ---- everything together: save, load, show --------------------------------------------------
def test_a_model_with_every_construct_saves_loads_and_shows(people, tmp_path, capsys):
    from stratlang.cli import main

    people = people.assign(w=1.0 + (people.g == 1), exposure=people.income * 10)
    people.loc[people.index[:3], "age"] = np.nan
    spec = write(tmp_path, "m.strat",
                 'data "d.csv"\nresponse y ~ squared offset log(exposure)\n'
                 'features intercept, categorical(region, reference="north") * log(income), '
                 "standardize(age)\nweights w\nmissing drop\nregularize 0.1 * sum_squares\n"
                 "stratify g ~ path weight 2\n")
    people.to_csv(tmp_path / "d.csv", index=False)
    model = stratlang.load(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stratlang.DataWarning)
        fast, _ = both(str(spec), people)
        again = stratlang.load_fitted(fast.save(tmp_path / "fit"))
        pd.testing.assert_frame_equal(again.predict(people), fast.predict(people))
        assert again.score(people) == fast.score(people)
    assert stratlang.load(model.text) == model
    assert main(["show", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "# offset: log(exposure) is added to the linear predictor" in out
    assert "# weights: column 'w' multiplies each record's loss" in out
    assert "# missing drop: rows with missing values left out (by column: 'age' 3)" in out
    assert ("parameter rows intercept, region[T.east], region[T.south], log(income), "
            "region[T.east]:log(income), region[T.south]:log(income), standardize(age)") in out


# ---- what a review found ------------------------------------------------------------------
def test_predict_needs_only_what_prediction_reads(rng):
    frame = pd.DataFrame({"g": rng.integers(0, 3, 60), "x": rng.normal(size=60),
                          "y": rng.normal(size=60), "w": rng.choice([1.0, 2.0], 60)})
    fitted = stratlang.load("response y ~ squared\nfeatures x, intercept\nweights w\n"
                            "missing drop\nstratify g ~ path\n").fit(frame)
    new = frame.drop(columns=["w"]).assign(y=np.nan)  # no weights, no response: fine
    new.loc[new.index[2], "x"] = np.nan  # a feature missing: that row only is left out
    with pytest.warns(stratlang.DataWarning, match="'x' 1"):
        pred = fitted.predict(new)
    assert pred.prediction.isna().tolist() == [i == 2 for i in range(60)]
    twice = pd.concat([new, new])  # duplicate row labels keep their places
    with pytest.warns(stratlang.DataWarning):
        assert fitted.predict(twice).prediction.isna().sum() == 2
    assert fitted.predict(frame.head(0)).shape == (0, 1)


def test_no_records_to_learn_from_is_an_error(rng):
    frame = pd.DataFrame({"g": [0, 1], "x": [np.nan, np.nan], "y": [1.0, 2.0]})
    body = "response y ~ squared\nfeatures x\nstratify g ~ path\n"
    with pytest.raises(stratlang.SpecError, match=r"the data have no records$"):
        stratlang.load(body).fit(frame.head(0))
    assert problems(body + "missing drop\n", frame) == [
        (4, 9, "the data have no records left: every one misses a value (missing drop)")]


def test_tuning_shares_the_features_levels_across_folds(rng):
    frame = pd.DataFrame({"g": rng.integers(0, 3, 60), "x": rng.normal(size=60),
                          "r": rng.choice(["a", "b"], 60)})
    frame.loc[frame.index[0], "r"] = "rare"  # in one fold only
    frame["y"] = frame.x + (frame.r == "a") + 0.1 * rng.normal(size=60)
    result = stratlang.load("response y ~ squared\nfeatures intercept, x, categorical(r)\n"
                            "stratify g ~ path weight {0.1, 10}\n").tune(frame, folds=3)
    assert len(result.table) == 2 and np.isfinite(result.table.mean_rmse).all()


def test_category_levels_of_any_type_save_as_text(rng, tmp_path):
    frame = pd.DataFrame({"d": pd.to_datetime(["2020-01-01", "2020-01-02"] * 20),
                          "x": rng.normal(size=40)})
    frame["y"] = frame.x + (frame.d.dt.day == 2)
    fitted = stratlang.load("response y ~ squared\nfeatures intercept, x, categorical(d)\n"
                            ).fit(frame)
    assert fitted.rows[-1] == "d[T.2020-01-02 00:00:00]"
    again = stratlang.load_fitted(fitted.save(tmp_path / "fit"))
    pd.testing.assert_frame_equal(again.predict(frame), fitted.predict(frame))


def test_strata_typed_differently_from_training_get_a_hint(rng):
    frame = pd.DataFrame({"g": rng.integers(0, 3, 30), "y": rng.normal(size=30)})
    fitted = stratlang.load("response y ~ squared\nstratify g ~ path\n").fit(frame)
    with pytest.raises(stratlang.SpecError) as info:
        fitted.predict(frame.assign(g=frame.g.astype(str)))
    assert info.value.diagnostics[0].hint == (
        "the values match nodes only as text (e.g. '1' and 1): give the column the type it "
        "had when the model was fitted")


def test_intercept_in_a_product_is_refused():
    with pytest.raises(stratlang.SpecError) as info:
        stratlang.load("response y ~ squared\nfeatures x, x:intercept\n")
    [d] = info.value.diagnostics
    assert (d.span.line, d.span.column, d.message) == (
        2, 13, "intercept in a product is the product without it: leave it out")


def test_the_huber_metric_is_cvxpys_huber_averaged_over_records_and_outputs(rng):
    """The metric comes from the loss's pointwise unit (its one written formula)."""
    import cvxpy as cp

    pred, y = 3 * rng.normal(size=(40, 2)), rng.normal(size=(40, 2))
    weight = rng.choice([0.0, 1.0, 2.0], 40)
    expected = cp.huber(cp.Constant(pred - y), 1.5).value
    out = LOSSES["huber"].metrics(pred, y, {"M": 1.5}, None, weight)
    assert out["huber"] == pytest.approx(float(np.sum(weight[:, None] * expected)
                                               / (2 * np.sum(weight))), rel=1e-12)
