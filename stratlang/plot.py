"""Pictures of fitted models (``pip install stratlang[plot]``; matplotlib is imported
only here, and only when a plot is drawn).

The picture follows the graph structure: a line per group over a path or cycle factor,
a heat map over a grid or over two factors (general graphs ordered by their Fiedler
vector, so that neighbours sit together), bars over a complete or star factor, and for
personalized models a 2-D embedding of the sample models coloured by a covariate.
Factors that are not shown are averaged over, as the papers do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .data.features import INTERCEPT
from .language.errors import StratlangError, did_you_mean
from .outputs import replaced_whole

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def refuse_options(other: dict[str, Any], takes: str) -> None:
    """Options a picture does not take are errors, not silently ignored."""
    given = [k for k, v in other.items() if v is not None]
    if given:
        raise StratlangError(f"unknown picture option(s) {', '.join(repr(k) for k in given)}: "
                             + takes)


def _figure(ax: Axes | None, figsize: tuple[float, float] | None,
            default: tuple[float, float]) -> tuple[Figure, Axes]:
    """The axes to draw on: the caller's ``ax``, or a new figure of ``figsize``. A new figure
    is made without pyplot, so a picture never changes the user's matplotlib backend nor
    pyplot's current figure (a notebook's inline plots keep working); it still shows in a
    notebook, and ``savefig`` writes it."""
    try:
        from matplotlib.axes import Axes as AxesType
        from matplotlib.figure import Figure as FigureType
    except ImportError:
        raise StratlangError("plotting needs matplotlib: pip install 'stratlang[plot]'") from None
    if ax is not None:
        if not isinstance(ax, AxesType):
            raise StratlangError(f"ax must be a matplotlib Axes; got a {type(ax).__name__}")
        if figsize is not None:
            raise StratlangError("give either ax (draw on it) or figsize (a new figure), not both")
        figure = ax.get_figure()
        assert isinstance(figure, FigureType)  # (an Axes always belongs to a figure)
        return figure, ax
    size = default if figsize is None else figsize
    try:
        width, height = (float(v) for v in size)
    except (TypeError, ValueError):
        raise StratlangError(f"figsize must be (width, height) in inches; got {size!r}") from None
    if not (0 < width <= 100 and 0 < height <= 100):
        raise StratlangError(f"figsize must be two numbers in (0, 100] inches; got {size!r}")
    fig = FigureType(figsize=(width, height))
    return fig, fig.add_subplot()


def _finish(fig: Figure, out: str | Path | None) -> Figure:
    if out is not None:
        out = Path(out)
        if out.suffix.lower() not in (".png", ".svg", ".pdf"):
            raise StratlangError(f"cannot write '{out}': use a .png, .svg or .pdf file name")
        with replaced_whole(out) as scratch:
            fig.savefig(scratch, dpi=120, bbox_inches="tight")
    return fig


# ---- what to show -------------------------------------------------------------------------
@dataclass
class View:
    kind: str  # 'line' | 'heatmap' | 'bar'
    values: np.ndarray  # 1-D (line, bar) or 2-D (lines: by × over; heatmap: by × over)
    over: str
    over_labels: list
    by: str | None
    by_labels: list | None
    param: str
    averaged: list[str]
    label: str  # the values, in words: θ[row] on the link scale, else what the loss predicts
    # the pointwise 95 % interval (shaped like values) when the fit has standard errors and
    # each value is one stratum's (an average over strata would need their covariances)
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None


def _parameter(fitted, param: str | None) -> tuple[str, str, int]:
    """The display name of one parameter, its row of θ and its output."""
    rows, outputs = list(fitted.rows), list(fitted.outputs)
    m = fitted.theta_array.shape[2]
    if param is None:
        row = next((r for r in rows if r != INTERCEPT), rows[0])
        out = 0
    else:
        row, _, output = param.partition(":")
        if row not in rows:
            raise StratlangError(f"unknown parameter '{row}'" + did_you_mean(row, rows))
        out = 0
        if output:
            if output not in [str(o) for o in outputs]:
                raise StratlangError(f"unknown output '{output}'"
                                     + did_you_mean(output, [str(o) for o in outputs]))
            out = [str(o) for o in outputs].index(output)
    name = row if m == 1 else f"{row}:{outputs[out]}"
    return name, row, out


SCALES = ("link", "response")


def check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise StratlangError(f"unknown scale '{scale}'" + did_you_mean(str(scale), SCALES))


def on_response_scale(fitted, row: str, out: int) -> tuple[str, np.ndarray]:
    """(what it is, its value per stratum): the loss's prediction, or its probability when
    it gives one, at a record whose only nonzero feature is ``row`` = 1 (and no offset).
    That is the response of the parameter itself only for the intercept (a model without
    features has an intercept alone) or a distribution's parameter; a slope's effect on the
    response depends on the other features, so other rows are refused."""
    loss = fitted.loss
    alone = row == INTERCEPT if loss.features != "forbidden" else row == loss.parameter
    if not alone:
        why = ("a slope: its effect on the response depends on the other features"
               if loss.features != "forbidden"
               else f"one of the {loss.name} loss's parameters, not a response")
        kept = INTERCEPT if loss.features != "forbidden" else loss.parameter
        raise StratlangError(
            f"scale='response' cannot show '{row}': the response scale is the prediction at "
            f"a record whose only feature is the shown row = 1, the response of '{kept}' "
            f"alone; '{row}' is {why}. Plot it with scale='link'")
    rows = list(fitted.rows)
    got = loss.predict(fitted.theta_array[:, rows.index(row), :],
                       fitted.ir.response.loss.p, fitted.classes)
    key = "probability" if "probability" in got else "prediction"
    values = np.asarray(got[key])
    if not np.issubdtype(values.dtype, np.number):
        raise StratlangError(f"scale='response': loss '{loss.name}' predicts a class, not a "
                             "number, and gives no probability; plot θ with scale='link'")
    return key, np.asarray(values[:, out] if values.ndim == 2 else values, dtype=float)


def _columns(fitted) -> list[tuple[str, list, Any]]:
    """(column, its node labels, its factor) for every stratification column, in order."""
    out = []
    for factor in fitted.strata.factors:
        for column, labels in zip(factor.columns, factor.column_labels, strict=True):
            out.append((column, list(labels), factor))
    return out


def _fiedler_order(factor) -> np.ndarray:
    from .solvers.graphs import n_components

    graph = factor.graph
    if graph.n < 3 or n_components(graph) > 1 or len(factor.columns) > 1:
        return np.arange(len(factor.column_labels[0]))
    _, vectors = np.linalg.eigh(graph.laplacian().toarray())
    return np.argsort(vectors[:, 1], kind="stable")


def choose_view(fitted, param: str | None = None, over: str | None = None,
                by: str | None = None, scale: str = "link") -> View:
    """What to draw. ``scale``: 'link' shows θ; 'response' the loss's prediction at θ
    (see :func:`on_response_scale`), averaged over the factors not shown on that scale."""
    check_scale(scale)
    columns = _columns(fitted)
    if not columns:
        raise StratlangError("the model has one stratum: nothing to plot over")
    names = [c for c, _, _ in columns]
    for given in (over, by):
        if given is not None and given not in names:
            raise StratlangError(f"unknown stratification column '{given}'"
                                 + did_you_mean(given, names))
    structure = {c: f.graph.structure for c, _, f in columns}
    automatic = over is None
    if over is None:
        over = next((c for c in names if structure[c] in ("path", "cycle")), None)
        if over is None:
            over = next((c for c in names if structure[c] == "grid"), names[0])
    factor_of = {c: f for c, _, f in columns}
    if by is None and structure[over] == "grid" and len(factor_of[over].columns) == 2:
        by = next(c for c in factor_of[over].columns if c != over)  # a map of the grid
        if automatic:  # as a map: the grid's first column (rows, latitude) up, the second across
            by, over = factor_of[over].columns
    if by == over:
        raise StratlangError("--over and --by must be different columns")
    name, row, out = _parameter(fitted, param)
    label = _value_label(fitted, name)
    theta = fitted.theta_array[:, list(fitted.rows).index(row), out]
    if scale == "response":
        what, theta = on_response_scale(fitted, row, out)
        label = f"{what} at {label}"
    keep = [names.index(over)] + ([names.index(by)] if by else [])
    averaged = [c for c in names if c not in (over, by)]
    over_labels = list(columns[names.index(over)][1])
    by_labels = list(columns[names.index(by)][1]) if by else None
    over_order = (_fiedler_order(factor_of[over]) if structure[over] == "general" else None)
    if over_order is not None:  # neighbours together: order by the Fiedler vector
        over_labels = [over_labels[i] for i in over_order]

    def arrange(per_stratum: np.ndarray) -> np.ndarray:
        """Values per stratum as drawn: averaged over the factors not shown, rows the
        `by` column, columns the `over` column (in the order drawn)."""
        grid = per_stratum.reshape([len(labels) for _, labels, _ in columns])
        reduced = grid.mean(axis=tuple(i for i in range(len(names)) if i not in keep))
        if by is not None and names.index(over) < names.index(by):
            reduced = reduced.T
        if over_order is not None:
            reduced = reduced[..., over_order] if by else reduced[over_order]
        return reduced

    reduced = arrange(theta)
    bands = None if averaged else _interval(fitted, row, out, scale)
    lower, upper = (None, None) if bands is None else (arrange(bands[0]), arrange(bands[1]))
    if by is None:
        kind = "line" if structure[over] in ("path", "cycle", "grid") else "bar"
    else:
        assert by_labels is not None  # (by names a column)
        if structure[over] in ("path", "cycle") and len(by_labels) <= 12:
            kind = "line"
        else:
            kind = "heatmap"
            if structure[by] == "general":
                order = _fiedler_order(factor_of[by])
                by_labels = [by_labels[i] for i in order]
                reduced = reduced[order]
                if lower is not None and upper is not None:
                    lower, upper = lower[order], upper[order]
    return View(kind, np.asarray(reduced), over, over_labels, by, by_labels, name, averaged,
                label, lower, upper)


LEVEL = 0.95  # the intervals a picture draws


def _interval(fitted, row: str, out: int, scale: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Each stratum's 95 % interval of the shown value (θ, or the response through the
    link), or None when the fit has no standard errors."""
    from .uncertainty import normal_quantile

    uncertainty = getattr(fitted, "_uncertainty_or_none", lambda: None)()
    if uncertainty is None:
        return None
    z = normal_quantile(LEVEL)
    m = fitted.theta_array.shape[2]
    j = list(fitted.rows).index(row)
    columns = slice(j * m, (j + 1) * m)
    theta = fitted.theta_array[:, j, :]
    cov = uncertainty.covariance()[:, columns, columns]  # (as fitted.intervals: unconditional)
    if scale == "link":
        sd = np.sqrt(np.maximum(cov[:, out, out], 0.0))
        return theta[:, out] - z * sd, theta[:, out] + z * sd
    got = fitted.loss.interval(theta, cov, z, fitted.ir.response.loss.p, fitted.classes)
    key = "probability" if "probability" in got else "prediction"
    low, high = (np.asarray(v, dtype=float) for v in got[key])
    return ((low[:, out], high[:, out]) if low.ndim == 2 else (low, high))


def _value_label(fitted, name: str) -> str:
    loss = fitted.loss
    if loss.features == "forbidden":
        return f"{loss.parameter} ({loss.name})"
    return f"θ[{name}]"


def plot_strata(fitted, param: str | None = None, over: str | None = None,
                by: str | None = None, out: str | Path | None = None, *,
                ax: Axes | None = None, figsize: tuple[float, float] | None = None,
                scale: str = "link") -> Figure:
    view = choose_view(fitted, param, over, by, scale)
    label = view.label
    fig, ax = _figure(ax, figsize, (8, 4.5))
    x = np.arange(len(view.over_labels))
    lower, upper = view.lower, view.upper
    banded = lower is not None and upper is not None
    if view.kind == "line":
        if view.by is None:
            ax.plot(x, view.values, marker="o", ms=3, label=label)
            if lower is not None and upper is not None:
                ax.fill_between(x, lower, upper, alpha=0.25, color="C0", lw=0,
                                label=f"{LEVEL:.0%} interval")
        else:
            assert view.by_labels is not None  # (set with view.by)
            for i, (label_by, row) in enumerate(zip(view.by_labels, view.values, strict=True)):
                ax.plot(x, row, marker="o", ms=3, color=f"C{i % 10}",
                        label=f"{view.by} = {label_by}")
                if lower is not None and upper is not None:
                    ax.fill_between(x, lower[i], upper[i], alpha=0.15, color=f"C{i % 10}",
                                    lw=0)
            ax.legend(fontsize=8, ncol=2)
        ax.set_ylabel(label + (f" ({LEVEL:.0%} intervals shaded)" if banded else ""))
    elif view.kind == "bar":  # signed: below zero in another colour, zero drawn
        errors = (None if not banded else
                  np.vstack([view.values - np.asarray(view.lower),
                             np.asarray(view.upper) - view.values]))
        ax.bar(x, view.values, color=np.where(view.values < 0, "C3", "C0"), yerr=errors,
               capsize=2 if banded else 0)
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_ylabel(label)
    else:
        assert view.by is not None and view.by_labels is not None  # (a heatmap has `by`)
        alpha = None
        if banded:  # the wider a cell's interval, the fainter the cell
            width = np.asarray(view.upper) - np.asarray(view.lower)
            alpha = 1.0 - 0.75 * width / max(float(width.max()), 1e-300)
        image = ax.imshow(view.values, aspect="auto", origin="lower", cmap="viridis",
                          alpha=alpha)
        _label_axis(ax.yaxis, view.by_labels, fig.get_figheight() * 0.75)
        ax.set_ylabel(view.by)
        fig.colorbar(image, ax=ax, label=label + (
            f"\n(fainter: wider {LEVEL:.0%} interval)" if banded else ""))
    _label_axis(ax.xaxis, view.over_labels, fig.get_figwidth() * 0.75)
    ax.set_xlabel(view.over)
    title = f"{fitted.name}: {label} by {view.over}" + (f" and {view.by}" if view.by else "")
    if view.averaged:
        title += f"\n(averaged over {', '.join(view.averaged)})"
    ax.set_title(title, fontsize=10)
    return _finish(fig, out)


def tick_layout(labels: list, inches: float) -> tuple[float, int, bool]:
    """(font size, step, rotated) for ``labels`` along an axis ``inches`` long: every label
    at 7 pt when they fit, side by side or rotated; else a smaller font, down to 5 pt; only
    then every ``step``-th label, as many as the space holds."""
    texts = [str(v) for v in labels]
    points = inches * 72
    widest = max((len(t) for t in texts), default=1)
    for size in (7.0, 6.0, 5.0):
        if len(texts) * size * 0.62 * widest <= points:
            return size, 1, False  # side by side
        if len(texts) * size * 1.25 <= points:
            return size, 1, True  # rotated: one line height each
    step = int(np.ceil(len(texts) * 5.0 * 1.25 / points))
    return 5.0, max(step, 1), True


def _label_axis(axis: Any, labels: list, inches: float) -> None:
    size, step, rotated = tick_layout(labels, inches)
    positions = np.arange(len(labels))[::step]
    axis.set_ticks(positions, labels=[str(labels[i]) for i in positions], fontsize=size,
                   rotation=90 if rotated and axis.axis_name == "x" else 0)


def embedding(fitted, method: str = "pca", seed: int = 0) -> np.ndarray:
    """2-D coordinates of the sample models: their first two principal components, or a
    t-SNE map (scikit-learn) with ``method='tsne'``."""
    theta = fitted.theta_array
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (len(theta) - 1) // 3)))
        return TSNE(2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(theta)
    if method != "pca":
        raise StratlangError(f"unknown embedding '{method}'" + did_you_mean(method, ["pca", "tsne"]))
    centered = theta - theta.mean(axis=0)
    if theta.shape[1] == 1:
        return np.column_stack([centered[:, 0], np.zeros(len(theta))])
    u, s, _ = np.linalg.svd(centered, full_matrices=False)
    return u[:, :2] * s[:2]


def plot_embedding(fitted, by: str | None = None, out: str | Path | None = None,
                   method: str = "pca", *, ax: Axes | None = None,
                   figsize: tuple[float, float] | None = None) -> Figure:
    columns = list(fitted.covariates.columns)
    by = by or columns[0]
    if by not in columns:
        raise StratlangError(f"unknown covariate '{by}'" + did_you_mean(by, columns))
    coords = embedding(fitted, method)
    values = fitted.covariates[by]
    numeric = np.issubdtype(values.dtype, np.number)
    colours = values.to_numpy(dtype=float) if numeric else values.astype("category").cat.codes
    fig, ax = _figure(ax, figsize, (6, 5))
    points = ax.scatter(coords[:, 0], coords[:, 1], c=colours, s=8, cmap="viridis")
    bar = fig.colorbar(points, ax=ax, label=by)
    if not numeric:
        cats = list(values.astype("category").cat.categories)
        bar.set_ticks(range(len(cats)), labels=[str(c) for c in cats])
    axis = "principal component" if method == "pca" else "t-SNE axis"
    ax.set_xlabel(f"{axis} 1 of θ")
    ax.set_ylabel(f"{axis} 2 of θ")
    ax.set_title(f"{fitted.name}: sample models coloured by {by}", fontsize=10)
    return _finish(fig, out)


def plot_convergence(fitted, out: str | Path | None = None, *, ax: Axes | None = None,
                     figsize: tuple[float, float] | None = None) -> Figure:
    history = fitted.info.get("history")
    has_epochs = getattr(fitted, "history", None) is not None and len(fitted.history)
    if not has_epochs and (history is None or not len(history)):
        raise StratlangError(f"this fit has no iteration history (backend "
                             f"{fitted.info.get('backend')}, {fitted.info.get('solver')})")
    fig, ax = _figure(ax, figsize, (7, 4))
    if has_epochs:
        frame = fitted.history
        ax.plot(frame["epoch"], frame["total"], label="objective")
        ax.set_xlabel("epoch")
        ax.set_ylabel("objective")
        if "validation" in frame:
            twin = ax.twinx()
            twin.plot(frame["epoch"], frame["validation"], color="C1", label="validation loss")
            twin.set_ylabel("validation loss (per sample)")
            twin.legend(loc="upper center", fontsize=8)
    elif fitted.info.get("history_columns"):
        # a history that names its columns: the first is the step, the others positive
        h = np.asarray(history, dtype=float)
        step, *named = str(fitted.info["history_columns"]).split("; ")
        for i, name in enumerate(named, start=1):
            ax.semilogy(h[:, 0], h[:, i], "o-", label=name)
        ax.set_xlabel(step)
    else:
        h = np.asarray(history, dtype=float)
        ax.semilogy(h[:, 0], h[:, 1], label="primal residual")
        ax.semilogy(h[:, 0], h[:, 2], label="dual residual")
        ax.semilogy(h[:, 0], h[:, 3], "--", label="primal tolerance")
        ax.semilogy(h[:, 0], h[:, 4], ":", label="dual tolerance")
        ax.set_xlabel("ADMM iteration")
        ax.set_ylabel("residual")
    ax.legend(fontsize=8)
    ax.set_title(f"{fitted.name}: convergence", fontsize=10)
    return _finish(fig, out)


def plot_tune(result, out: str | Path | None = None, *, ax: Axes | None = None,
              figsize: tuple[float, float] | None = None) -> Figure:
    table = result.table
    swept = [c for c in table.columns if not c.startswith(("mean_", "std_"))]
    x_name = swept[0]
    fig, ax = _figure(ax, figsize, (7, 4))
    groups = table.groupby(swept[1:]) if len(swept) > 1 else [((), table)]
    for key, part in groups:
        label = ", ".join(f"{n}={v:g}" for n, v in zip(swept[1:], np.atleast_1d(key), strict=False))
        ax.errorbar(part[x_name], part[f"mean_{result.metric}"], yerr=part[f"std_{result.metric}"],
                    marker="o", capsize=3, label=label or None)
    best = result.best
    chosen = table[np.all([table[c] == best[c] for c in swept], axis=0)]
    ax.plot(chosen[x_name], chosen[f"mean_{result.metric}"], "r*", ms=16, label="chosen")
    if (table[x_name] > 0).all() and table[x_name].max() / table[x_name].min() > 20:
        ax.set_xscale("log")
    ax.set_xlabel(x_name)
    ax.set_ylabel(f"validation {result.metric} (mean ± sd over folds)")
    ax.legend(fontsize=8)
    ax.set_title(f"cross-validation: best {x_name} = {best[x_name]:g}", fontsize=10)
    return _finish(fig, out)
