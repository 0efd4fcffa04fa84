"""Hyper-parameter selection and backend verification.

``tune``: k-fold cross-validation over every combination of the spec's sweeps. The
encoding is learned from the whole data (a stratified model's strata, the classes, the
feature states) and every fold is bound through it, so every fold shares one node set; within a fold the settings are fitted in order, each fit warm-started from the
previous one when the backend can (ADMM: iterates and duals; CVXPY: the compiled
problem) — a regularization path. The best setting is refitted on all data.

``verify``: fits the same IR with the CVXPY reference and with the fast backend and
compares.
"""

from __future__ import annotations

import itertools
import time
import warnings
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import backends, display
from .backends.reference import StratifiedProblem
from .backends.relaxation import (
    nonconvex_parts,
    relax,
    relaxation_bounds,
    relaxation_words,
)
from .data.encoding import Encoding
from .data.frames import frame_for
from .fitted import FittedModel, FittedStratified
from .fitting import fit, fit_choice
from .kinds.metrics import GREATER_IS_BETTER
from .language import ir
from .language.errors import (
    DataWarning,
    OptionError,
    StratlangError,
    TuneWarning,
    did_you_mean,
    warn,
)
from .language.ir import Hyper
from .solvers.progress import ProgressLine

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@dataclass
class TuneResult:
    table: pd.DataFrame  # one row per setting: weights, mean and std of the metric per fold
    metric: str
    best: dict[str, float]
    fitted: FittedModel  # refitted on all data with the best weights
    # each hyper-parameter whose best value is an end of its grid: 'lower' or 'upper'
    at_edge: dict[str, str] = field(default_factory=dict)

    def plot(self, out: str | Path | None = None, *, ax: Axes | None = None,
             figsize: tuple[float, float] | None = None) -> Figure:
        """Validation metric against the swept hyper-parameter, the chosen value marked."""
        from .plot import plot_tune

        return plot_tune(self, out, ax=ax, figsize=figsize)

    def __str__(self) -> str:
        edges = "".join(f"\nnote: {name}={self.best[name]:g} is the {side} end of its grid"
                        for name, side in self.at_edge.items())
        return (f"{self.table.to_string(index=False)}\n"
                f"best ({self.metric}): " + ", ".join(f"{k}={v:g}" for k, v in self.best.items())
                + edges)

    def best_row(self) -> int:
        """The table's row of the best setting."""
        chosen = np.ones(len(self.table), dtype=bool)
        for name, value in self.best.items():
            chosen &= self.table[name].to_numpy() == value
        return int(np.flatnonzero(chosen)[0])

    def _repr_html_(self) -> str:
        """A notebook's view: the table with the best setting marked, and any note that a
        best value is an end of its grid."""
        notes = "".join(f"<p>note: {escape(name)}={self.best[name]:g} is the {escape(side)} "
                        "end of its grid (the optimum may lie beyond it)</p>"
                        for name, side in self.at_edge.items())
        best = ", ".join(f"{escape(k)}={v:g}" for k, v in self.best.items())
        return (f"<div class='stratlang-tune'><strong>tune</strong>: "
                f"{escape(self.metric)} over {len(self.table)} settings; best {best}"
                f"{display.frame_table(self.table, marked=self.best_row(), mark='← best')}"
                f"{notes}</div>")


def settings(model: ir.CheckedModel) -> list[dict[str, float]]:
    sweeps = model.sweeps()
    if not sweeps:
        raise StratlangError(f"model '{model.name}' declares no sweep: write e.g. "
                             "'weight {1, 10, 100}' or 'logspace(0.1, 100, 5) * l1'")
    return [dict(zip(sweeps, combo, strict=True))
            for combo in itertools.product(*(h.values for h in sweeps.values()))]


def _fold_encoding(model: ir.CheckedModel, frame: pd.DataFrame,
                   graphs: dict[str, Any] | None) -> Encoding:
    """The encoding learned from the whole data (a stratified model's strata, the classes,
    the features' levels, centres and scales): every fold's training and validation
    records are bound through it (a level seen only in one fold is no error)."""
    with warnings.catch_warnings():  # (rows `missing drop` leaves out: the refit says so)
        warnings.simplefilter("ignore", DataWarning)
        encoding, _ = Encoding.learn(model, frame, graphs=graphs)
    return encoding


def grid_edges(sweeps: dict[str, Hyper], best: dict[str, float]) -> dict[str, str]:
    """The hyper-parameters whose best value is the smallest or the largest of their grid
    (the optimum may lie beyond it). A best value of 0 is no edge: it cannot be extended."""
    edges = {}
    for name, hyper in sweeps.items():
        values = sorted(set(hyper.values))
        if len(values) < 2:
            continue
        if best[name] == values[-1]:
            edges[name] = "upper"
        elif best[name] == values[0] and values[0] > 0:
            edges[name] = "lower"
    return edges


def _warn_at_edges(edges: dict[str, str], best: dict[str, float]) -> None:
    for name, side in edges.items():
        value = best[name]
        beyond = (value * 10, value * 1000) if side == "upper" else (value / 1000, value / 10)
        direction = "above" if side == "upper" else "below"
        warn(f"tune: the best {name} = {value:g} is the {'largest' if side == 'upper' else 'smallest'}"
             f" value of its grid, so the optimum may lie {direction} it; extend the grid "
             f"{'upward' if side == 'upper' else 'downward'}, e.g. with "
             f"logspace({beyond[0]:g}, {beyond[1]:g}, 3)", TuneWarning)


def primary_metric(model: ir.CheckedModel) -> str:
    from .kinds.losses import LOSSES

    return LOSSES[model.response.loss.name].primary


def tune(model: ir.CheckedModel, data: Any = None, *, graphs: dict[str, Any] | None = None,
         folds: int = 5, metric: str | None = None, seed: int = 0,
         backend: str | None = None, progress: bool | None = None) -> TuneResult:
    """``graphs``: graphs given from Python, by column; ``progress``: a line on standard
    error with the fits done of all and the elapsed time (None: on a terminal)."""
    frame = frame_for(model, data)
    grid = settings(model)
    metric = metric or primary_metric(model)
    if metric not in GREATER_IS_BETTER:
        raise OptionError(f"unknown metric '{metric}'" + did_you_mean(metric, GREATER_IS_BETTER))
    if not 2 <= folds <= len(frame):
        bounds = f"must lie between 2 and the number of records ({len(frame)}); got {folds}"
        raise OptionError(f"folds {bounds}", cli=f"--folds {bounds}")
    encoding = _fold_encoding(model, frame, graphs)
    order = np.random.default_rng(seed).permutation(len(frame))
    scores = np.full((len(grid), folds), np.nan)
    total = len(grid) * folds
    with warnings.catch_warnings(), ProgressLine("tune", progress) as line:
        warnings.simplefilter("ignore")  # the refit on all data below reports what matters
        for f, valid_rows in enumerate(np.array_split(order, folds)):
            train = frame.iloc[np.setdiff1d(order, valid_rows)]
            valid = frame.iloc[valid_rows]
            choice = backends.choose(model, backend=backend, verbose=False,
                                     design=encoding.bind(train))
            warm = None
            for s, chosen in enumerate(grid):
                fitted = fit_choice(model, choice, model.weight_values(chosen), warm)
                warm = fitted.warm
                scores[s, f] = fitted.score(valid)[metric]
                done = f * len(grid) + s + 1
                line.update(lambda done=done, f=f: f"{done}/{total} fits (fold {f + 1} of "
                                                   f"{folds}, {len(grid)} settings each)")
    table = pd.DataFrame(grid)
    table[f"mean_{metric}"] = np.nanmean(scores, axis=1)
    table[f"std_{metric}"] = np.nanstd(scores, axis=1)
    pick = np.nanargmax if GREATER_IS_BETTER[metric] else np.nanargmin
    best = grid[int(pick(table[f"mean_{metric}"].to_numpy()))]
    edges = grid_edges(model.sweeps(), best)
    _warn_at_edges(edges, best)
    return TuneResult(table, metric, best,
                      fit(model, frame, weights=best, backend=backend, graphs=graphs), edges)


@dataclass
class Verification:
    fast_backend: str
    cvxpy_objective: float
    fast_objective: float
    cvxpy_seconds: float
    fast_seconds: float
    fast_iterations: int
    # a non-convex model: CVXPY fitted its convex relaxation (how, in words), and whether
    # that optimum bounds the model's from below
    relaxation: str | None = None
    bound: bool = False
    relaxed_at_fast: float | None = None  # CVXPY's value of the relaxation at the local fit
    reference_accuracy: str = ""  # the reference's own accuracy, in words (its solver's)
    fast_accuracy: float | None = None  # ADMM: its estimate of the objective's accuracy

    @property
    def relative_gap(self) -> float:
        return abs(self.fast_objective - self.cvxpy_objective) / max(abs(self.cvxpy_objective),
                                                                     1e-12)

    @property
    def speedup(self) -> float:
        """How many times faster the fast backend was (below 1: slower)."""
        return self.cvxpy_seconds / max(self.fast_seconds, 1e-9)

    @property
    def pace(self) -> str:
        """``2.5x faster`` or ``1.7x slower``: the fast backend against the reference, the
        factor always at least 1."""
        ratio = self.speedup
        return f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"

    def __str__(self) -> str:
        name = self.fast_backend
        if self.relaxation is not None:
            if self.bound:
                standing = (f"a lower bound: {name} is within {self.relative_gap:.2e} "
                            "(relative) of it, so at most that far from the global optimum")
            else:
                standing = ("not a bound (the loss was replaced, not minorized): a "
                            "comparison only")
            at_point = ""
            if self.relaxed_at_fast is not None:
                at_point = (f"\ncvxpy's value of the relaxation at the {name} point "
                            f"{self.relaxed_at_fast:.12g} (the relaxed parts account for "
                            f"{self.fast_objective - self.relaxed_at_fast:+.6g} of the "
                            "model's objective there)")
            return (f"non-convex model: {name} is a local method\n"
                    f"cvxpy objective {self.cvxpy_objective:.12g}  ({self.cvxpy_seconds:.3f} s)"
                    f" of the convex relaxation ({self.relaxation}): {standing}\n"
                    f"{name:<5} objective {self.fast_objective:.12g}  ({self.fast_seconds:.3f} s, "
                    f"{self.fast_iterations} iterations)" + at_point)
        return (f"cvxpy objective {self.cvxpy_objective:.12g}  ({self.cvxpy_seconds:.3f} s"
                + (f"; {self.reference_accuracy}" if self.reference_accuracy else "") + ")\n"
                f"{name:<5} objective {self.fast_objective:.12g}  ({self.fast_seconds:.3f} s, "
                f"{self.fast_iterations} iterations"
                + (f"; objective accurate to ~{self.fast_accuracy:.1e}"
                   if self.fast_accuracy is not None else "") + ")\n"
                f"relative gap {self.relative_gap:.2e}; {name} {self.pace}")

    def _repr_html_(self) -> str:
        """A notebook's view: both objectives with their times, iterations and accuracy,
        the gap and the pace (a non-convex model: what the reference fitted, and whether
        it bounds the local fit)."""
        name = self.fast_backend
        reference = "cvxpy" + (" (convex relaxation)" if self.relaxation is not None else "")
        rows: list[list[object]] = [
            [reference, f"{self.cvxpy_objective:.12g}", f"{self.cvxpy_seconds:.3f}", "",
             self.reference_accuracy],
            [name, f"{self.fast_objective:.12g}", f"{self.fast_seconds:.3f}",
             self.fast_iterations,
             "" if self.fast_accuracy is None
             else f"objective accurate to ~{self.fast_accuracy:.1e}"]]
        notes = [f"relative gap {self.relative_gap:.2e}; {name} {self.pace}"]
        if self.relaxation is not None:
            notes.insert(0, f"non-convex model: {name} is a local method; the reference fitted "
                            f"the convex relaxation ({self.relaxation}), "
                            + ("a lower bound" if self.bound else "not a bound: a comparison only"))
        if self.relaxed_at_fast is not None:
            notes.append(f"cvxpy's value of the relaxation at the {name} point "
                         f"{self.relaxed_at_fast:.12g}")
        table = display.table(["backend", "objective", "seconds", "iterations", "accuracy"],
                              rows)
        return (f"<div class='stratlang-verify'><strong>verify</strong>: cvxpy against "
                f"{escape(name)}{table}" + "".join(f"<p>{escape(n)}</p>" for n in notes)
                + "</div>")


def _announce(progress: bool | None, text: str) -> None:
    """A line on standard error saying what runs now (``progress`` None: on a terminal),
    so a long reference fit is not silence."""
    import sys

    if progress if progress is not None else sys.stderr.isatty():
        print(f"verify: {text}", file=sys.stderr, flush=True)


def verify(model: ir.CheckedModel, data: Any = None, *, graphs: dict[str, Any] | None = None,
           weights: dict[str, float] | None = None, solver: str | None = None,
           options: dict[str, Any] | None = None, backend: str | None = None,
           progress: bool | None = None) -> Verification:
    """Fits with the reference and with ``backend`` (default: the backend chosen when none
    is named, other than the reference). A non-convex model's reference is the CVXPY fit
    of its convex relaxation. ``progress``: say on standard error which fit runs (None:
    on a terminal); ``graphs``: graphs given from Python, by column."""
    frame = frame_for(model, data)
    truth = backends.reference()
    if nonconvex_parts(model):
        return _verify_local(model, frame, graphs, weights, solver, options, backend)
    if backend is None:
        design = backends.choose(model, frame, graphs=graphs).design
        fast = [b.name for b in backends.automatic(model.kind)
                if not b.reference and b.unsupported(design) is None]
        if not fast:
            raise StratlangError(f"no backend but the reference fits model '{model.name}': "
                                 "nothing to verify")
        backend = fast[0]
    start = time.perf_counter()
    _announce(progress, f"fitting with the {truth.name} reference")
    reference = fit(model, frame, backend=truth.name, solver=solver, weights=weights,
                    graphs=graphs)
    middle = time.perf_counter()
    _announce(progress, f"fitting with {backend} ({middle - start:.1f} s for the reference)")
    fitted = fit(model, frame, backend=backend, weights=weights, options=options, graphs=graphs)
    end = time.perf_counter()
    return Verification(backend, reference.objective.total, fitted.objective.total,
                        middle - start, end - middle, int(fitted.info.get("iterations") or 0),
                        reference_accuracy=reference_words(reference.info),
                        fast_accuracy=fitted.info.get("objective_accuracy"))


def reference_words(info: dict[str, Any]) -> str:
    """The reference fit's own accuracy: its solver, duality gap, largest constraint
    violation, and whether θ was projected onto the constraints."""
    accuracy = info.get("accuracy") or {}
    words = [str(info.get("solver", "")), str(info.get("status", ""))]
    if "duality_gap" in accuracy:
        words.append(f"duality gap {accuracy['duality_gap']:.1e}")
    if "constraint_violation" in accuracy:
        words.append(f"constraint violation {accuracy['constraint_violation']:.1e}")
    if accuracy.get("projected"):
        words.append("θ projected onto the constraints")
    return ", ".join(w for w in words if w)


def _verify_local(model: ir.CheckedModel, frame: Any, graphs: dict[str, Any] | None,
                  weights: dict[str, float] | None, solver: str | None,
                  options: dict[str, Any] | None, backend: str | None) -> Verification:
    """A non-convex model: the local fit against the CVXPY optimum of the relaxation."""
    start = time.perf_counter()
    fitted = fit(model, frame, backend=backend, weights=weights, options=options, graphs=graphs)
    middle = time.perf_counter()
    truth = backends.reference()
    values = model.weight_values(weights)
    choice = backends.choose(model, frame, backend=backend, graphs=graphs)
    relaxed, relaxed_values = relax(choice.design, values)
    given = {} if solver is None or truth.solver_option is None else {truth.solver_option: solver}
    reference = truth.fit(relaxed, relaxed_values, truth.options.resolve(given))
    end = time.perf_counter()
    problem = reference.warm  # the compiled relaxation: evaluated at the local fit too
    at_fast = None
    if isinstance(problem, StratifiedProblem) and isinstance(fitted, FittedStratified):
        # (CVXPY may write a loss up to a constant, e.g. with kl_div: the one at its optimum)
        constant = reference.objective.total - reference.info["cvxpy_objective"]
        at_fast = problem.value_at(fitted.theta_array) + constant
    return Verification(fitted.info["backend"], reference.objective.total,
                        fitted.objective.total, end - middle, middle - start,
                        int(fitted.info.get("iterations") or 0),
                        relaxation=relaxation_words(model),
                        bound=relaxation_bounds(model), relaxed_at_fast=at_fast)
