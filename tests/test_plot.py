"""Every plot kind renders headless, writes a real image, and shows the model's values."""

from __future__ import annotations

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import stratlang
from stratlang.cli import main
from stratlang.plot import choose_view, embedding

from .conftest import EXAMPLES


@pytest.fixture(scope="module")
def elections():
    return stratlang.load(EXAMPLES / "elections.strat").fit()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def assert_real_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mpimg.imread(path)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100 and pixels.std() > 0.05


def test_line_over_a_path_averages_the_other_factors(elections, tmp_path):
    fig = elections.plot(out=tmp_path / "year.png")
    assert_real_png(tmp_path / "year.png")
    ax = fig.axes[0]
    expected = elections.theta["probability"].groupby(level="year").mean()
    np.testing.assert_allclose(ax.lines[0].get_ydata(), expected.to_numpy())
    assert ax.get_xlabel() == "year" and "averaged over state" in ax.get_title()


def test_heatmap_of_two_factors_in_fiedler_order(elections, tmp_path):
    fig = elections.plot(over="state", by="year", out=tmp_path / "map.svg")
    assert "<svg" in (tmp_path / "map.svg").read_text()[:500]
    view = choose_view(elections, over="state", by="year")
    shown = fig.axes[0].images[0].get_array()
    table = elections.theta["probability"].unstack("state")  # years × states
    expected = table.loc[view.by_labels, view.over_labels].to_numpy()
    np.testing.assert_allclose(np.asarray(shown), expected)
    assert sorted(view.over_labels) == sorted(table.columns)
    assert view.over_labels != sorted(view.over_labels)  # reordered by the Fiedler vector
    # the colour bar (a likelihood fit: cells fade with the width of their interval)
    assert fig.axes[1].get_ylabel() == ("probability (bernoulli)\n"
                                        "(fainter: wider 95% interval)")


def test_grid_map_and_bars_over_a_complete_factor(rng, tmp_path):
    n = 400
    frame = pd.DataFrame({"r": rng.integers(0, 4, n), "c": rng.integers(0, 3, n),
                          "g": rng.choice(["a", "b", "c"], n), "x": rng.normal(size=n)})
    frame["y"] = frame.x * (frame.r - frame.c) + rng.normal(size=n)
    fitted = stratlang.load("response y ~ squared\nfeatures x, intercept\n"
                            "stratify (r, c) ~ grid weight 1\nstratify g ~ complete weight 1\n"
                            ).fit(frame)
    fig = fitted.plot(out=tmp_path / "grid.png")
    assert_real_png(tmp_path / "grid.png")
    # a map: the grid's first column up (rows), its second across
    expected = fitted.theta["x"].groupby(level=["r", "c"]).mean().unstack("c").to_numpy()
    np.testing.assert_allclose(np.asarray(fig.axes[0].images[0].get_array()), expected)
    assert (fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()) == ("c", "r")
    bars = fitted.plot(over="g")
    heights = [p.get_height() for p in bars.axes[0].patches]
    means = fitted.theta["x"].groupby(level="g").mean().to_numpy()
    np.testing.assert_allclose(heights, means)
    # signed bars: those below zero in another colour, from a drawn zero line
    colours = {tuple(p.get_facecolor()) for p, m in zip(bars.axes[0].patches, means, strict=True)
               if m < 0}
    assert colours.isdisjoint({tuple(p.get_facecolor()) for p, m in
                               zip(bars.axes[0].patches, means, strict=True) if m >= 0})
    assert any(list(line.get_ydata()) == [0.0, 0.0] for line in bars.axes[0].lines)


def test_plots_leave_the_backend_and_pyplot_alone(elections, tmp_path):
    """A notebook's inline plots keep working after a stratlang plot: the backend is not
    switched and pyplot's figures are untouched; ax= and figsize= are honoured."""
    import matplotlib

    backend = matplotlib.get_backend()
    mine = plt.figure()
    fig = elections.plot(figsize=(5, 3))
    assert matplotlib.get_backend() == backend and plt.gcf() is mine
    assert plt.get_fignums() == [mine.number] and tuple(fig.get_size_inches()) == (5, 3)
    _, axes = plt.subplots(1, 2)
    drawn = elections.plot(ax=axes[1], over="state")
    assert drawn is axes[1].figure and axes[1].get_xlabel() == "state" and not axes[0].lines
    fig.savefig(tmp_path / "p.png")
    assert_real_png(tmp_path / "p.png")
    with pytest.raises(stratlang.StratlangError, match="not both"):
        elections.plot(ax=axes[0], figsize=(5, 3))
    with pytest.raises(stratlang.StratlangError, match="figsize must be"):
        elections.plot(figsize=(0, 3))


@pytest.mark.parametrize(("count", "inches", "layout"), [
    (10, 6.0, (7.0, 1, False)),    # ten short labels side by side
    (51, 6.0, (6.0, 1, True)),     # the 51 states: every one, rotated, a point smaller
    (200, 6.0, (5.0, 3, True)),    # only then thinned, as many as fit
])
def test_tick_labels_thin_by_space_not_by_count(count, inches, layout):
    from stratlang.plot import tick_layout

    assert tick_layout([f"s{i:02d}" for i in range(count)], inches) == layout


def test_lines_per_group(rng):
    frame = pd.DataFrame({"t": rng.integers(0, 6, 300), "s": rng.choice(["F", "M"], 300),
                          "x": rng.normal(size=300)})
    frame["y"] = frame.x * frame.t + rng.normal(size=300)
    fitted = stratlang.load("response y ~ squared\nfeatures x, intercept\n"
                            "stratify t ~ path weight 1\nstratify s ~ complete weight 1\n").fit(frame)
    fig = fitted.plot(param="x", by="s")
    lines = fig.axes[0].lines
    assert [line.get_label() for line in lines] == ["s = F", "s = M"]
    np.testing.assert_allclose(lines[1].get_ydata(), fitted.theta["x"].xs("M", level="s"))


def test_bad_plot_requests_are_clear(elections):
    with pytest.raises(stratlang.StratlangError, match="unknown stratification column 'yeer'; "
                                                       "did you mean 'year'"):
        elections.plot(over="yeer")
    with pytest.raises(stratlang.StratlangError, match="unknown parameter 'prob'"):
        elections.plot(param="prob")
    with pytest.raises(stratlang.StratlangError, match=r"use a \.png, \.svg or \.pdf"):
        elections.plot(out="picture.jpg")


def test_convergence_plot_shows_the_residuals(elections, tmp_path):
    fig = elections.plot_convergence(tmp_path / "conv.png")
    assert_real_png(tmp_path / "conv.png")
    history = np.asarray(elections.info["history"])
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), history[:, 1])
    direct = stratlang.load(EXAMPLES / "diabetes.strat").fit(backend="admm")
    with pytest.raises(stratlang.StratlangError, match="no iteration history"):
        direct.plot_convergence()


def test_convergence_plot_of_newton_shows_each_steps_decrement(tmp_path):
    fitted = stratlang.load(EXAMPLES / "insurance.strat").fit()
    assert fitted.info["backend"] == "newton"
    fig = fitted.plot_convergence(tmp_path / "newton.png")
    assert_real_png(tmp_path / "newton.png")
    history = np.asarray(fitted.info["history"])
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), history[:, 1])
    assert fig.axes[0].get_xlabel() == "Newton step"
    assert np.all(np.diff(history[-3:, 1]) < 0)  # the decrement falls, fast at the end


def test_personalized_embedding_is_coloured_by_a_covariate(rng, tmp_path):
    n = 150
    frame = pd.DataFrame({"x1": rng.uniform(-1, 1, n), "x2": rng.uniform(-1, 1, n),
                          "u": rng.uniform(0, 1, n)})
    frame["y"] = frame.x1 * frame.u + frame.x2 + 0.1 * rng.normal(size=n)
    fitted = stratlang.load("response y ~ squared\nfeatures x1, x2\npersonalize rank 2 "
                            "radius 0.3 match 0.001 metric_penalty 1 learning_rate 0.005 "
                            "max_iter 50\n  distance u ~ abs\n").fit(frame)
    fig = fitted.plot(out=tmp_path / "emb.png")
    assert_real_png(tmp_path / "emb.png")
    points = fig.axes[0].collections[0]
    np.testing.assert_allclose(points.get_offsets(), embedding(fitted))
    np.testing.assert_allclose(points.get_array(), frame.u.to_numpy())
    conv = fitted.plot_convergence()
    np.testing.assert_allclose(conv.axes[0].lines[0].get_ydata(), fitted.history["total"])
    tsne = fitted.plot(method="tsne", out=tmp_path / "tsne.png")
    assert_real_png(tmp_path / "tsne.png")
    assert tsne.axes[0].get_xlabel() == "t-SNE axis 1 of θ"
    np.testing.assert_allclose(tsne.axes[0].collections[0].get_array(), frame.u.to_numpy())


def test_tune_plot_marks_the_chosen_value(rng, tmp_path):
    t = rng.integers(0, 10, 300)
    x = rng.normal(size=300)
    frame = pd.DataFrame({"t": t, "x": x, "y": x * np.sin(t / 3) + rng.normal(size=300)})
    result = stratlang.load("response y ~ squared\nfeatures x\n"
                            "stratify t ~ path weight {0.1, 10, 1000}\n").tune(frame, folds=3)
    fig = result.plot(tmp_path / "tune.png")
    assert_real_png(tmp_path / "tune.png")
    ax = fig.axes[0]
    np.testing.assert_allclose(np.asarray(ax.lines[0].get_ydata(), dtype=float),
                               result.table["mean_rmse"].to_numpy())
    star = ax.lines[-1]
    assert float(np.asarray(star.get_xdata())[0]) == result.best["stratify.t"]


def test_cli_plot(elections, tmp_path, capsys):
    path = elections.save(tmp_path / "fit.json")
    assert main(["plot", str(path), "--over", "state", "--by", "year",
                 "--out", str(tmp_path / "p.png")]) == 0
    assert_real_png(tmp_path / "p.png")
    assert main(["plot", str(path), "--convergence", "--out", str(tmp_path / "c.png")]) == 0
    assert_real_png(tmp_path / "c.png")
    assert main(["plot", str(path), "--param", "rate", "--out", str(tmp_path / "x.png")]) == 1
    assert "unknown parameter 'rate'" in capsys.readouterr().err


def _fit(rng, loss, response, features="x, intercept"):
    n = 300
    t = rng.integers(0, 6, n)
    x = rng.normal(size=n)
    eta = 0.3 * x + np.sin(t) / 2
    y = {"poisson": rng.poisson(np.exp(eta)),
         "binary": (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int),
         "classes": np.where(eta > 0.3, "hi", np.where(eta < -0.3, "lo", "mid")),
         "positive": rng.exponential(np.exp(eta))}[response]
    frame = pd.DataFrame({"t": t, "x": x, "y": y})
    spec = (f"response y ~ {loss}\n" + (f"features {features}\n" if features else "")
            + "regularize 0.1 * sum_squares\nstratify t ~ path weight 1\n")
    return stratlang.load(spec).fit(frame)


@pytest.mark.parametrize(("loss", "response", "param", "features", "link"), [
    ("poisson_regression", "poisson", "intercept", "x, intercept", np.exp),
    ("logistic", "binary", "intercept", "x, intercept", lambda v: 1 / (1 + np.exp(-v))),
    ("poisson_regression", "poisson", "intercept", "", np.exp),  # no features: x = 1
    ("exponential", "positive", "rate", "", lambda v: 1 / v),  # the mean, 1 / rate
    ("bernoulli", "binary", "probability", "", lambda v: v),
])
def test_response_scale_maps_the_intercept_through_the_inverse_link(rng, loss, response, param,
                                                                    features, link):
    fitted = _fit(rng, loss, response, features)
    theta = fitted.theta[param].to_numpy()
    ax = fitted.plot(param=param, scale="response").axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), link(theta), rtol=1e-12)
    assert ax.get_ylabel().startswith(("prediction at ", "probability at "))
    link_ax = fitted.plot(param=param).axes[0]  # the default: θ itself
    np.testing.assert_allclose(link_ax.lines[0].get_ydata(), theta, rtol=1e-12)


def test_response_scale_of_a_multinomial_intercept_is_its_class_probability(rng):
    fitted = _fit(rng, "multinomial", "classes")
    theta = fitted.theta_array[:, list(fitted.rows).index("intercept"), :]
    softmax = np.exp(theta) / np.exp(theta).sum(axis=1, keepdims=True)
    ax = fitted.plot(param="intercept:mid", scale="response").axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), softmax[:, list(fitted.outputs).index(
        "mid")], rtol=1e-12)
    # (no interval: the classes' common shift of the intercept is unpenalized, so H is
    # singular and the fit has no standard errors)
    assert ax.get_ylabel() == "probability at θ[intercept:mid]"


def test_response_scale_refuses_a_slope_a_class_and_a_bad_scale(rng):
    fitted = _fit(rng, "poisson_regression", "poisson")
    with pytest.raises(stratlang.StratlangError) as info:
        fitted.plot(param="x", scale="response")
    assert str(info.value) == (
        "scale='response' cannot show 'x': the response scale is the prediction at a record "
        "whose only feature is the shown row = 1, the response of 'intercept' alone; 'x' is a "
        "slope: its effect on the response depends on the other features. Plot it with "
        "scale='link'")
    with pytest.raises(stratlang.StratlangError, match=r"^unknown scale 'respons'; did you mean "
                                                       r"'response'\?$"):
        fitted.plot(scale="respons")
    hinge = _fit(rng, "hinge", "binary")
    with pytest.raises(stratlang.StratlangError, match=r"^scale='response': loss 'hinge' "
                                                       r"predicts a class, not a number"):
        hinge.plot(param="intercept", scale="response")


def test_cli_plot_scale(rng, tmp_path, capsys):
    fitted = _fit(rng, "poisson_regression", "poisson")
    path = fitted.save(tmp_path / "fit.json")
    assert main(["plot", str(path), "--param", "intercept", "--scale", "response",
                 "--out", str(tmp_path / "r.png")]) == 0
    assert_real_png(tmp_path / "r.png")
    assert main(["plot", str(path), "--scale", "response", "--out",
                 str(tmp_path / "s.png")]) == 1
    assert "scale='response' cannot show 'x'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["plot", str(path), "--scale", "log", "--out", str(tmp_path / "t.png")])
    assert exit_info.value.code == 2
    assert "invalid choice: 'log'" in capsys.readouterr().err
