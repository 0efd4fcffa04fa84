"""The main job of `make demo`: fit the bundled examples and print held-out scores of the
separate, stratified and common models, as in the stratified paper's tables; then check
the fast backend against the CVXPY reference on each stratified model."""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import stratlang
from stratlang.selection_report import summary_lines

HERE = Path(__file__).parent
FIGURES = HERE / "figures"
# extra views per example, beyond the default picture chosen from the graph structure
VIEWS = {"elections": [{"over": "state", "by": "year"}],
         "houses": [{"over": "lon_bin", "by": "lat_bin"}],
         "mpls_stops": [{"over": "lon_bin", "by": "lat_bin"}, {"over": "day", "by": "hour"}],
         "diabetes": [{"param": "bmi", "by": "sex"}],
         "insurance": [{"over": "age", "by": "group"}]}


def write_figures(fitted, folder: Path = FIGURES) -> list[Path]:
    """The example's pictures: the default view, its extra views, and convergence."""
    folder.mkdir(parents=True, exist_ok=True)
    name = fitted.name
    paths = [folder / f"{name}.png"]
    fitted.plot(out=paths[0])
    for i, view in enumerate(VIEWS.get(name, []), start=1):
        paths.append(folder / f"{name}_{i}.png")
        fitted.plot(out=paths[-1], **view)
    if fitted.info.get("history") is not None or getattr(fitted, "history", None) is not None:
        paths.append(folder / f"{name}_convergence.png")
        fitted.plot_convergence(paths[-1])
    import matplotlib.pyplot as plt

    plt.close("all")
    return paths
def _split(spec: Path):
    """The example's model and its bundled data's training and test rows."""
    model = stratlang.load(spec)
    frame = model.frame(None)
    return model, frame[frame.split == "train"], frame[frame.split == "test"]


def _timed_fit(model, train):
    """The fit and its seconds."""
    start = time.perf_counter()
    fitted = model.fit(train)
    return fitted, time.perf_counter() - start


EXAMPLES = [("elections.strat", "anll"), ("diabetes.strat", "rmse"), ("houses.strat", "rmse"),
            ("mpls_stops.strat", "anll"), ("insurance.strat", "anll")]


def compare(spec: Path, metric: str) -> None:
    model, train, test = _split(spec)
    print(f"\n{model.name}: {model.ir.response.loss.name} loss"
          + (" with an offset" if model.ir.response.offset is not None else "") + ", "
          f"{len(train)} training / {len(test)} test records")
    print(f"  {'model':<12}{'strata':>8}{'train ' + metric:>14}{'test ' + metric:>14}"
          f"{'seconds':>10}  backend")
    for label, variant in (("separate", model.separate()), ("stratified", model),
                           ("common", model.common())):
        fitted, seconds = _timed_fit(variant, train)
        if label == "stratified":
            stratified = fitted
        print(f"  {label:<12}{fitted.strata.k:>8}{fitted.score(train)[metric]:>14.4f}"
              f"{fitted.score(test)[metric]:>14.4f}{seconds:>10.2f}  {fitted.info['backend']}")
    paths = write_figures(stratified)
    print(f"  figures: {', '.join(str(p.relative_to(HERE)) for p in paths)}")
    check = model.verify(train)
    print(f"  verify: cvxpy {check.cvxpy_objective:.10g} in {check.cvxpy_seconds:.2f} s, "
          f"{check.fast_backend} {check.fast_objective:.10g} in {check.fast_seconds:.2f} s "
          f"(relative gap {check.relative_gap:.1e})")


def personalized(spec: Path) -> None:
    """One model per sample; test MSE against the population model and the oracle."""
    import numpy as np

    model, train, test = _split(spec)
    fitted, seconds = _timed_fit(model, train)
    x = test[["x1", "x2"]].to_numpy()
    oracle = np.mean((test.y - np.sum(x * test[["theta1", "theta2"]].to_numpy(), axis=1)) ** 2)
    population = np.mean((test.y - x @ fitted.theta_pop) ** 2)
    print(f"\n{model.name}: personalized, rank {model.ir.personalize.rank}, "
          f"{len(train)} training / {len(test)} test samples")
    print(f"  test MSE: personalized {fitted.score(test)['rmse'] ** 2:.4f}, population "
          f"{population:.4f}, oracle {oracle:.4f}  ({seconds:.2f} s, "
          f"{fitted.info['epochs']} epochs; learned phi: "
          + ", ".join(f"{k} {v:.2f}" for k, v in fitted.phi.items()) + ")")
    paths = write_figures(fitted)
    print(f"  figures: {', '.join(str(p.relative_to(HERE)) for p in paths)}")


def auto_weights(spec: Path, tuned: Path) -> None:
    """One model whose weights are written `auto`: chosen by REML in one fit, each with its
    standard error on the log scale, against the weights a grid search chose; with the
    uncertainty API, the intervals of a few strata too."""
    model, train, test = _split(spec)
    fitted, seconds = _timed_fit(model, train)
    grid = stratlang.load(tuned).fit(train)
    print(f"\n{model.name}: weights written auto, chosen by REML in {seconds:.2f} s")
    for line in summary_lines(fitted.info):  # the summary's lines on the chosen weights
        print(f"  {line}")
    print(f"  test anll {fitted.score(test)['anll']:.4f} (the tuned grid's weights in "
          f"{tuned.name}: {grid.score(test)['anll']:.4f})")
    if hasattr(fitted, "intervals"):  # the uncertainty API, where it is installed
        lower, upper = fitted.intervals(level=0.95)
        shown = fitted.theta.head(4)
        for label in shown.index:
            print(f"  θ{label}: {shown.loc[label].iloc[0]:.3f} (95% interval "
                  f"{lower.loc[label].iloc[0]:.3f} to {upper.loc[label].iloc[0]:.3f})")


def _note(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one indented line of the report (e.g. the separate baseline's strata
    without records), not Python's file:line form."""
    print(f"  note ({category.__name__}): {message}")


def main() -> int:
    warnings.showwarning = _note
    print("stratlang demo: separate vs stratified vs common models (held-out scores)")
    for name, metric in EXAMPLES:
        compare(HERE / name, metric)
    auto_weights(HERE / "insurance_auto.strat", HERE / "insurance.strat")
    personalized(HERE / "personalized.strat")
    return 0


if __name__ == "__main__":
    sys.exit(main())
