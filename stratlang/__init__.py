"""stratlang: a declarative language for collections of simple models.

Importing the package is cheap: the API (and with it numpy, pandas, the solvers) loads on
first use of ``load``, ``Model`` …; CVXPY, Dask and matplotlib load only when a backend
or a plot needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .language.errors import (
    DataError,
    DataSpecError,
    DataWarning,
    NumericalError,
    NumericalWarning,
    OptionError,
    SpecError,
    StratlangError,
    TuneWarning,
)

if TYPE_CHECKING:
    from .builder import Spec
    from .estimator import StratlangEstimator
    from .fitted import FittedModel, FittedPersonalized, FittedStratified, load_fitted
    from .model import Model, load

__all__ = ["DataError", "DataSpecError", "DataWarning", "FittedModel", "FittedPersonalized", "FittedStratified",
           "Model", "NumericalError", "NumericalWarning", "OptionError", "Spec", "SpecError",
           "StratlangError", "StratlangEstimator", "TuneWarning", "load", "load_fitted"]
__version__ = "0.1.0"

_LAZY = {"Model": "model", "load": "model", "load_fitted": "fitted", "Spec": "builder",
         "FittedModel": "fitted", "FittedStratified": "fitted", "FittedPersonalized": "fitted", "StratlangEstimator": "estimator"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'stratlang' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
