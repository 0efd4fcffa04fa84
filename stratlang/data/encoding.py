"""What training learned, as one object: :class:`Encoding`.

Fitting binds a frame once and learns how data map to arrays — a stratified model's strata
(nodes, their order, the graphs), the response's classes, each stateful feature term's
state (centre and scale, levels, …), the parameter rows θ has and where a feature's
``where`` leaves them absent; a personalized model's training covariates, which new
samples are encoded beside. Every later use of new data — predict, score, a tuning
fold, a Dask partition — binds through :meth:`Encoding.bind`, so it maps data exactly as
training did (formulaic calls the same thing a ``ModelSpec``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..kinds.losses import LOSSES, Loss
from ..language import ir
from ..language.errors import OptionError, StratlangError, did_you_mean
from .design import Design, bind
from .features import FeatureState
from .frames import Binder
from .personalized import PersonalizedDesign, bind_covariates, bind_personalized
from .strata import UNSEEN, Strata

Bound = Design | PersonalizedDesign  # a family's arrays, bound to one frame


@dataclass(frozen=True, eq=False)
class Encoding:
    """How one checked model maps a frame to arrays, as training learned it.

    ``strata`` and ``absent`` belong to a stratified model, ``covariates`` (the training
    samples' covariate columns, as given) to a personalized one; the others to both."""

    model: ir.CheckedModel
    classes: tuple | None
    features: FeatureState
    rows: tuple[str, ...]  # θ's parameter rows
    strata: Strata | None = None
    absent: np.ndarray | None = None  # (K, rows): parameters a feature's `where` leaves out
    covariates: pd.DataFrame | None = None

    # ---- learning ----------------------------------------------------------------------------
    @classmethod
    def learn(cls, model: ir.CheckedModel, frame: pd.DataFrame, *,
              graphs: dict[str, Any] | None = None,
              features: FeatureState | None = None) -> tuple[Encoding, Bound]:
        """Binds a training frame, learning everything from it (``features``: feature
        states learned elsewhere, e.g. from every partition of a Dask fit's data);
        ``graphs``: graphs given from Python, by column. Returns the encoding and the
        bound arrays."""
        design: Bound = (bind_personalized(model, frame, features=features)
                         if model.kind == "personalized"
                         else bind(model, frame, graphs=graphs, features=features))
        return cls.of(design), design

    @classmethod
    def of(cls, design: Bound) -> Encoding:
        """The encoding a training design was bound with."""
        if isinstance(design, PersonalizedDesign):
            return cls(design.model, design.classes, design.features, design.rows,
                       covariates=design.covariate_frame)
        return cls(design.model, design.classes, design.features, design.rows, design.strata,
                   design.absent_mask())

    # ---- what it says -----------------------------------------------------------------------
    @property
    def loss(self) -> Loss:
        return LOSSES[self.model.response.loss.name]

    @property
    def outputs(self) -> tuple[str, ...]:
        """θ's outputs (one per response column, or per class)."""
        return tuple(self.loss.output_names(self.model.response.columns, self.classes))

    def with_model(self, model: ir.CheckedModel) -> Encoding:
        """The same learned state for an equal model (e.g. one compiled again from its
        saved text)."""
        return dataclasses.replace(self, model=model)

    # ---- binding new data --------------------------------------------------------------------
    def bind(self, frame: pd.DataFrame, *, unseen: str = "error",
             with_response: bool = True) -> Bound:
        """Binds ``frame`` as the training data were bound: the same strata, classes,
        feature states and rows (``with_response=False``: to predict, no response or
        weights read). ``unseen``: what a stratum value that is no node of the fitted graph
        becomes — 'error', 'hub' or 'common' (see :func:`stratlang.data.strata.bind_strata`).
        Raises SpecError listing every data problem, positioned in the spec."""
        if not isinstance(unseen, str) or unseen not in UNSEEN:
            raise OptionError(f"unseen={unseen!r}: expected one of "
                              + ", ".join(repr(u) for u in UNSEEN)
                              + (did_you_mean(unseen, UNSEEN) if isinstance(unseen, str)
                                 else ""))
        design: Bound
        if self.strata is None:
            design = bind_personalized(self.model, frame, features=self.features,
                                       classes=self.classes, with_response=with_response)
        else:
            design = bind(self.model, frame, strata=self.strata, classes=self.classes,
                          features=self.features, unseen=unseen, with_response=with_response)
        self._check_rows(design.rows)
        return design

    def encode_covariates(self, frame: pd.DataFrame) -> list:
        """A personalized model's distances' columns encoded over the training samples
        followed by ``frame``'s rows (so that categories share codes)."""
        assert self.covariates is not None  # (a personalized model's encoding)
        binder = Binder(self.model, frame)
        new = frame.reindex(columns=list(self.covariates.columns)).reset_index(drop=True)
        encoded = bind_covariates(binder, encode=pd.concat([self.covariates, new],
                                                           ignore_index=True))
        binder.out.raise_if_any()  # (a column absent from ``frame``: positioned)
        return encoded

    def _check_rows(self, rows: tuple[str, ...]) -> None:
        """New data bound with the learned feature states give θ's rows (else the states
        were changed since the fit: a saved model edited by hand)."""
        if tuple(rows) != tuple(self.rows):
            raise StratlangError(
                f"the learned feature states of model '{self.model.name}' give the parameter "
                f"rows {', '.join(rows)}; θ has {', '.join(self.rows)}: the saved model was "
                "damaged or edited")
