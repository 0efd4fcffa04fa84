"""The Python API: ``load`` a spec, ``fit`` it, then predict, score, summarize, save."""

from __future__ import annotations

import dataclasses
import itertools
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import backends
from .data.design import Design, bind
from .data.frames import frame_for
from .fitted import FittedModel
from .fitting import fit, fit_choice
from .language import ir
from .language.errors import OptionError, StratlangError, did_you_mean
from .spec import NamedSpec, compile_spec, read_spec

if TYPE_CHECKING:
    from .tune import TuneResult, Verification


class Model(NamedSpec):
    """A checked spec, ready to fit; ``graphs``: graphs given from Python for the factors
    the spec declares ``given`` (by column: a networkx graph, ``(adjacency, labels)``, an
    edge-list DataFrame or an edge-list CSV path)."""

    def __init__(self, model: ir.CheckedModel, graphs: dict[str, Any] | None = None):
        self.ir = model
        self.graphs = self._checked_graphs(graphs or {})

    def _checked_graphs(self, graphs: dict[str, Any]) -> dict[str, Any]:
        from .kinds.graphs import GRAPHS

        factors = {s.columns[0]: s for s in self.ir.strata if len(s.columns) == 1}
        for column in graphs:
            strat = factors.get(column)
            if strat is None:
                problem = (f"'{column}' is not a stratified column of model '{self.name}'"
                           + did_you_mean(str(column), factors))
                raise OptionError(f"graphs: {problem}", cli=f"--graph {column}=…: {problem}")
            if not GRAPHS[strat.graph.name].supplied:
                problem = (f"the spec gives '{column}' the graph '{strat.graph.name}'; write "
                           f"`stratify {column} ~ given` to take its graph from")
                raise OptionError(f"graphs: {problem} Python",
                                  cli=f"--graph {column}=…: {problem} --graph")
        return dict(graphs)

    def with_graphs(self, graphs: dict[str, Any]) -> Model:
        """The same model with these graphs given (added to, or replacing, its own)."""
        return Model(self.ir, {**self.graphs, **graphs})

    def __repr__(self) -> str:
        return f"<stratlang.Model {self.name!r}: {self.ir.kind}, loss {self.ir.response.loss.name}>"

    def _repr_html_(self) -> str:
        """A notebook's view: the kind, the loss and the canonical spec."""
        from html import escape

        return (f"<div class='stratlang-model'><strong>Model {escape(self.name)}</strong>: "
                f"{escape(self.ir.kind)}, loss {escape(self.ir.response.loss.name)}"
                f"<pre>{escape(self.text)}</pre></div>")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and other.ir == self.ir

    def __hash__(self) -> int:
        return hash(self.ir)

    # ---- data ---------------------------------------------------------------------
    def frame(self, data: pd.DataFrame | str | Path | None) -> pd.DataFrame:
        """``data`` as a frame, or the spec's data file when ``data`` is None."""
        return frame_for(self.ir, data)

    def bind(self, data: pd.DataFrame | str | Path | None = None) -> Design:
        return bind(self.ir, self.frame(data), graphs=self.graphs)

    # ---- variants -------------------------------------------------------------------
    def replace(self, **changes: Any) -> Model:
        model = dataclasses.replace(self.ir, **changes)
        columns = {s.columns[0] for s in model.strata if len(s.columns) == 1}
        return Model(model, {c: g for c, g in self.graphs.items() if c in columns})

    def separate(self) -> Model:
        """Same strata, no Laplacian coupling: one independent model per stratum (no
        ``basis``: without the graph it has no smooth eigenvectors)."""
        strata = tuple(dataclasses.replace(s, weight=ir.Hyper.of(0.0)) for s in self.ir.strata)
        return self.replace(strata=strata, basis=None, name=f"{self.name}_separate",
                            **_unstructured(self.ir))

    def common(self) -> Model:
        """No stratification: one model for all records (a ``basis`` dropped: K = 1)."""
        return self.replace(strata=(), basis=None, name=f"{self.name}_common",
                            **_unstructured(self.ir))

    # ---- fitting --------------------------------------------------------------------
    def fit(self, data: Any = None, *, backend: str | None = None, solver: str | None = None,
            weights: dict[str, float] | None = None, verbose: bool | None = None,
            options: dict[str, Any] | None = None,
            graphs: dict[str, Any] | None = None, select: str | None = None) -> FittedModel:
        """Fits the model. ``backend``: a registered backend's name (``stratlang.backends.
        BACKENDS``: 'cvxpy', the reference, whose CVXPY solver ``solver`` picks; 'admm',
        'newton', 'eigen', 'dask', 'subgradient'); by default the spec's ``solver``
        statement, else the first backend that can fit the model. ``options``: the
        backend's options (validated; see docs/language.md); ``weights`` fixes
        hyper-parameters (required for sweeps); ``graphs`` gives graphs from Python (see
        :class:`Model`); ``select`` ('reml', 'ml' or 'gcv') how the weights written
        ``auto`` are chosen (default: the spec's ``select``, else 'reml')."""
        if graphs:
            return self.with_graphs(graphs).fit(data, backend=backend, solver=solver,
                                                weights=weights, verbose=verbose,
                                                options=options, select=select)
        return fit(self.ir, data, backend=backend, solver=solver, weights=weights,
                   verbose=verbose, options=options, graphs=self.graphs, select=select)

    def tune(self, data: Any = None, *, folds: int = 5, metric: str | None = None,
             seed: int = 0, backend: str | None = None,
             progress: bool | None = None) -> TuneResult:
        """Cross-validates every combination of the spec's sweeps (warm-started along the
        path when the backend can) and refits the best on all data: a
        :class:`stratlang.tune.TuneResult`. A best value at an end of its grid is warned
        of (:class:`stratlang.TuneWarning`); ``progress`` shows the fits done of all on
        standard error (None: on a terminal)."""
        from .tune import tune

        return tune(self.ir, data, graphs=self.graphs, folds=folds, metric=metric, seed=seed,
                    backend=backend, progress=progress)

    def verify(self, data: Any = None, *, weights: dict[str, float] | None = None,
               solver: str | None = None, options: dict[str, Any] | None = None,
               backend: str | None = None, progress: bool | None = None) -> Verification:
        """Fits with the CVXPY reference and with the fast backend; compares objectives
        and times. ``progress``: say on standard error which fit runs (None: on a
        terminal)."""
        from .tune import verify

        return verify(self.ir, data, graphs=self.graphs, weights=weights, solver=solver,
                      options=options, backend=backend, progress=progress)

    def sweep(self, data: Any = None, validate: Any = None, *,
              solver: str | None = None) -> pd.DataFrame:
        """Fits every combination of the spec's sweeps on one compiled CVXPY problem (warm
        started) and scores each on ``validate`` when given."""
        if self.ir.kind != "stratified":
            raise StratlangError("sweep re-solves the CVXPY reference of a stratified model; "
                                 "for a personalized model use model.tune(...)")
        sweeps = self.ir.sweeps()
        grid = list(itertools.product(*(h.values for h in sweeps.values()))) or [()]
        choice = backends.choose(self.ir, data, backend=backends.reference().name, solver=solver,
                                 graphs=self.graphs)
        valid_frame = self.frame(validate) if validate is not None else None
        rows, problem = [], None
        for combo in grid:
            chosen = dict(zip(sweeps, combo, strict=True))
            start = time.perf_counter()
            fitted = fit_choice(self.ir, choice, self.ir.weight_values(chosen), problem)
            fitted.info["fit_seconds"] = time.perf_counter() - start
            problem = fitted.warm  # the compiled problem, re-solved at the next weights
            row = {**chosen, "objective": fitted.objective.total}
            if valid_frame is not None:
                row.update({f"valid_{k}": v for k, v in fitted.score(valid_frame).items()})
            rows.append(row)
        return pd.DataFrame(rows)


def _unstructured(model: ir.CheckedModel) -> dict[str, Any]:
    """No feature varying over some factors only (``by``, ``shared``) and no interaction:
    the baselines couple no stratum to another."""
    return {"features": tuple(dataclasses.replace(t, vary=None) for t in model.features),
            "interactions": ()}


def load(path_or_text: str | Path, *, graphs: dict[str, Any] | None = None) -> Model:
    """A :class:`Model` from a ``.strat`` path or from spec text; ``graphs``: graphs given
    from Python for the factors the spec declares ``given``."""
    text, filename = read_spec(path_or_text)
    return Model(compile_spec(text, filename), graphs)
