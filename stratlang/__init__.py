"""stratlang: a declarative language for collections of simple models."""

from .errors import DataError, NumericalError, SpecError, StratlangError
from .model import FittedModel, Model, load, load_fitted
from .reference import NumericalWarning

__all__ = ["DataError", "FittedModel", "Model", "NumericalError", "NumericalWarning",
           "SpecError", "StratlangError", "load", "load_fitted"]
__version__ = "0.1.0"
