"""What every backend is: a registry entry with declared options, a way to bind data, a
reason it cannot fit a model (or None), and ``fit(design, weights, options) → Fit``.

In the spirit of CVXPY's reductions (``accepts`` / ``apply``): the API, ``tune``,
``verify`` and the command line choose and call backends only through this interface
(:func:`stratlang.backends.choose`).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..data.design import Design
from ..data.encoding import Encoding
from ..data.frames import frame_for
from ..data.personalized import PersonalizedDesign, bind_personalized
from ..language import ir
from ..language.errors import StratlangError
from ..language.params import Options


@dataclass(frozen=True)
class Objective:
    """The objective's parts at the fitted point (stratified: loss, regularization,
    laplacian; personalized: loss, regularization, matching, metric_penalty); read a
    part as an attribute (``objective.loss``) and the sum as ``objective.total``."""

    parts: tuple[tuple[str, float], ...]

    @classmethod
    def of(cls, **parts: float) -> Objective:
        return cls(tuple((k, float(v)) for k, v in parts.items() if k != "total"))

    @property
    def total(self) -> float:
        return float(sum(v for _, v in self.parts))

    def as_dict(self) -> dict[str, float]:
        return dict(self.parts)

    def __getattr__(self, name: str) -> float:
        if not name.startswith("_"):
            for key, value in object.__getattribute__(self, "parts"):
                if key == name:
                    return value
        raise AttributeError(name)

    def __str__(self) -> str:
        return (f"{self.total:.10g} = "
                + " + ".join(f"{k.replace('_', ' ')} {v:.6g}" for k, v in self.parts))


@dataclass
class StratifiedFit:
    """θ for every stratum (None when a cluster's workers wrote it under ``output``), and
    the encoding new data must be bound with (strata, classes, feature states, rows)."""

    theta: np.ndarray | None
    encoding: Encoding
    info: dict[str, Any]
    objective: Objective
    design: Design | None = None  # None when the records stayed on a cluster's workers
    warm: Any = None  # what warm-starts the next fit along a path (None: nothing)
    output: str | None = None  # the directory a cluster wrote θ to
    weight_spread: Any = None  # auto weights: their uncertainty (weight_spread.WeightSpread)

    @classmethod
    def of(cls, design: Design, theta: np.ndarray, info: dict[str, Any], objective: Objective,
           warm: Any = None) -> StratifiedFit:
        if design.dropped:
            info["dropped_rows"] = dict(design.dropped)
        info.setdefault("records", design.n_records)
        return cls(theta, Encoding.of(design), info, objective, design, warm)


@dataclass
class PersonalizedFit:
    """θ for every training sample, its factors Z and Q, the covariate weights φ, and the
    encoding new samples are bound with (classes, feature states, rows, the training
    samples' covariates)."""

    theta: np.ndarray
    z: np.ndarray
    q: np.ndarray
    phi: np.ndarray
    theta_pop: np.ndarray
    encoding: Encoding
    history: pd.DataFrame
    info: dict[str, Any]
    objective: Objective
    index: pd.Index
    warm: Any = field(default=None, repr=False)


Fit = StratifiedFit | PersonalizedFit


class OptionValueError(StratlangError):
    """A problem with one option's value found while fitting (e.g. a scheduler that
    cannot be reached); the API positions it at the spec's solver statement when the
    value came from there."""

    def __init__(self, option: str, message: str):
        super().__init__(message)
        self.option = option


def bind_family(model: ir.CheckedModel, data: Any, graphs: dict[str, Any] | None = None
                ) -> Design | PersonalizedDesign:
    """The design of a model's family bound to data (a frame, a file, or None for the
    spec's data statement); ``graphs``: the graphs given from Python, by column."""
    from ..data.design import bind

    frame = frame_for(model, data)
    if model.kind == "personalized":
        return bind_personalized(model, frame)
    return bind(model, frame, graphs=graphs)


class Backend(abc.ABC):
    """Base class of backend entries: subclasses declare the class attributes and
    implement ``fit`` (and ``unsupported`` when some bound models are beyond them)."""

    name: ClassVar[str]
    doc: ClassVar[str]
    family: ClassVar[str] = "stratified"  # the model kind it fits
    options: ClassVar[Options]
    automatic: ClassVar[int | None] = None  # rank when no backend is named; None: never
    chosen: ClassVar[str | None] = None  # when it is chosen, in words (default: from the rank)
    reference: ClassVar[bool] = False  # the ground truth other backends are verified against
    quiet: ClassVar[bool] = False  # a specialist: an automatic choice passing it over says nothing
    verbose_option: ClassVar[str | None] = None  # what ``verbose=`` sets
    solver_option: ClassVar[str | None] = None  # what ``solver=`` sets (an external solver)

    def wrong_family(self, model: ir.CheckedModel) -> str:
        """Why this backend does not fit a model of another family."""
        return (f"model '{model.name}' is {model.kind}: backend '{self.name}' cannot fit it "
                f"(it fits {self.family} models)")

    def prepare(self, model: ir.CheckedModel, data: Any, graphs: dict[str, Any] | None = None) -> Any:
        """The design this backend fits: by default the family's, bound in memory."""
        return bind_family(model, data, graphs)

    def applies(self, model: ir.CheckedModel) -> bool:
        """Is the model of the kind this backend fits (checked before binding, so that an
        automatic choice passes over backends made for other models without a word)?"""
        return True

    def unsupported(self, design: Any) -> str | None:
        """Why this backend cannot fit the bound model, or None when it can."""
        return None

    def memory(self, design: Any, options: dict[str, Any]) -> int | None:
        """Bytes the fit needs at least (a lower bound), or None when not estimated (e.g.
        the memory is another machine's)."""
        return None

    @abc.abstractmethod
    def fit(self, design: Any, weights: dict[str, float], options: dict[str, Any],
            warm: Any = None) -> Fit:
        """Fits the bound ``design`` at hyper-parameters ``weights``, with ``options``
        resolved; ``warm``: the previous fit's state along a path."""

    def __repr__(self) -> str:
        return f"<backend {self.name}>"
