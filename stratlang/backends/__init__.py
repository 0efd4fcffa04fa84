"""Backends: registry entries that fit a bound model (see :mod:`.base`), and
:func:`choose`, the one place a backend is picked and its options are resolved — used by
``Model.fit``, ``tune``, ``verify`` and the command line alike.

Importing this package imports no solver library: CVXPY and Dask are imported by the
backends that use them, when they fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..language import ir
from ..language.errors import NumericalError, OptionError, StratlangError, did_you_mean
from ..language.vocabulary import Registry
from .admm import AdmmBackend
from .base import Backend, Fit, Objective, OptionValueError, PersonalizedFit, StratifiedFit
from .dask import DaskBackend
from .eigen import EigenBackend
from .memory import refuse_if_too_large
from .newton import NewtonBackend
from .reference import CvxpyBackend
from .subgradient import SubgradientBackend

BACKENDS: Registry[Backend] = Registry("backend")
for _entry in (AdmmBackend(), CvxpyBackend(), DaskBackend(), EigenBackend(), NewtonBackend(),
               SubgradientBackend()):
    BACKENDS.register(_entry.name, _entry)

__all__ = ["BACKENDS", "Backend", "Choice", "Fit", "Objective", "OptionValueError",
           "PersonalizedFit", "StratifiedFit", "automatic", "choose", "named", "reference"]


def named(name: str) -> Backend:
    """The backend called ``name``; an unknown name gets the closest match."""
    if not isinstance(name, str):
        raise OptionError(f"backend is a name ({', '.join(BACKENDS.names())}); got {name!r}")
    if name not in BACKENDS:
        raise OptionError(f"unknown backend '{name}'" + did_you_mean(name, BACKENDS.names()))
    return BACKENDS[name]


def reference() -> Backend:
    """The backend every other is verified against."""
    return next(b for b in BACKENDS.entries() if b.reference)


def automatic(family: str) -> list[Backend]:
    """The backends tried, in order, when none is named."""
    ranked = [(b.automatic, b) for b in BACKENDS.entries()
              if b.family == family and b.automatic is not None]
    return [b for _, b in sorted(ranked, key=lambda pair: pair[0])]


@dataclass
class Choice:
    """A backend, the design it fits, its resolved options, and why an automatic choice
    passed over backends tried before it (None when it did not)."""

    backend: Backend
    design: Any
    options: dict[str, Any]
    note: str | None = None
    from_spec: frozenset[str] = field(default_factory=frozenset)  # options the spec gave

    def fit(self, weights: dict[str, float], warm: Any = None) -> Fit:
        return self.backend.fit(self.design, weights, self.options, warm)


def _refusal(model: ir.CheckedModel, entry: Backend, reason: str, design: Any) -> StratlangError:
    able = [b.name for b in automatic(entry.family)
            if b is not entry and _quietly_unsupported(b, design) is None]
    said = f"backend '{entry.name}' cannot fit model '{model.name}': {reason}"
    if not able:
        return NumericalError(said)
    return NumericalError(f"{said}; use backend='{able[0]}'",
                          cli=f"{said}; use --backend {able[0]}")


def _quietly_unsupported(entry: Backend, design: Any) -> str | None:
    try:
        return entry.unsupported(design)
    except (AttributeError, TypeError):  # a design of another kind (e.g. partitioned data)
        return "cannot tell"


def choose(model: ir.CheckedModel, data: Any = None, *, backend: str | None = None,
           solver: str | None = None, verbose: bool | None = None,
           options: dict[str, Any] | None = None, design: Any = None,
           graphs: dict[str, Any] | None = None) -> Choice:
    """Picks the backend for a model (named by ``backend``, else by the spec's ``solver``
    statement, else the first automatic backend of the model's family that can fit it),
    binds ``data`` with the ``graphs`` given from Python (unless a ``design`` is given)
    and resolves its options: the spec's
    (when the spec names the same backend), then ``options``, ``solver`` and ``verbose``.
    Every option is validated against the backend's declarations."""
    if options is not None and not isinstance(options, Mapping):
        raise OptionError(f"options are a dict of values by name; got a "
                          f"{type(options).__name__}")
    spec = model.solver
    requested = backend or (spec.backend if spec is not None else None)
    note = None
    if requested is not None:
        entry = named(requested)
        if entry.family != model.kind:
            others = ", ".join(f"'{b.name}'" for b in BACKENDS.entries()
                               if b.family == model.kind)
            raise StratlangError(f"{entry.wrong_family(model)}; use {others}")
        if solver is not None and entry.solver_option is None:
            takes = f"a backend that takes one ({_solver_backends()})"
            raise OptionError(f"solver='{solver}' names a solver for {takes}; backend "
                              f"'{entry.name}' does not",
                              cli=f"--solver {solver} names a solver for {takes}; --backend "
                                  f"{entry.name} does not")
        design = design if design is not None else entry.prepare(model, data, graphs)
        reason = entry.unsupported(design)
        if reason is not None:
            raise _refusal(model, entry, reason, design)
    else:
        candidates = [b for b in automatic(model.kind) if b.applies(model)
                      and (solver is None or b.solver_option is not None)]
        if not candidates:
            raise StratlangError(f"no backend fits a {model.kind} model"
                                 + (" with a named solver" if solver is not None else ""))
        design = design if design is not None else candidates[0].prepare(model, data, graphs)
        reasons = []
        for entry in candidates:
            reason = entry.unsupported(design)
            if reason is None:
                break
            reasons.append((entry, reason))
        else:
            raise NumericalError(f"no backend can fit model '{model.name}': "
                                 + "; ".join(reason for _, reason in reasons))
        # why a backend the user would expect was passed over (not a specialist's refusal)
        note = next((reason for passed, reason in reasons if not passed.quiet), None)
    given: dict[str, Any] = {}
    from_spec: set[str] = set()
    if spec is not None and spec.backend == entry.name:
        for name, value in spec.options:
            if entry.options[name].path and value is not None:
                value = str(model.directory / value)  # like the data statement
            given[name] = value
            from_spec.add(name)
    for name, value in (options or {}).items():
        given[name] = value
        from_spec.discard(name)
    if solver is not None:
        assert entry.solver_option is not None  # (a backend without one was refused above)
        given[entry.solver_option] = solver
        from_spec.discard(entry.solver_option)
    if verbose is not None and entry.verbose_option is not None:
        given[entry.verbose_option] = verbose
        from_spec.discard(entry.verbose_option)
    if requested is None:
        _refuse_another_backends_option(model, entry, options or {})
    resolved = entry.options.resolve(given)
    refuse_if_too_large(entry.name, design, entry.memory(design, resolved))
    return Choice(entry, design, resolved, note, frozenset(from_spec))


def _refuse_another_backends_option(model: ir.CheckedModel, entry: Backend,
                                    options: Mapping[str, Any]) -> None:
    """An option the automatically chosen backend does not take but another of the
    model's family does (e.g. ADMM's ``penalty`` where newton was chosen): the error
    names the backend to ask for."""
    for name in options:
        owners = [b.name for b in BACKENDS.entries()
                  if b.family == model.kind and name in b.options]
        if name not in entry.options and owners:
            said = (f"option '{name}' is not one of backend '{entry.name}' (chosen "
                    f"automatically) but of backend '{owners[0]}'")
            raise OptionError(f"{said}: name it, backend='{owners[0]}'",
                              cli=f"{said}: name it, --backend {owners[0]}")


def _solver_backends() -> str:
    return ", ".join(b.name for b in BACKENDS.entries() if b.solver_option is not None)
