"""The kinds a spec names: one registry entry per loss, regularizer, graph and distance,
holding everything about it (parameters, value, CVXPY form, prox, what the checker and
the backends ask of it); plus response domains and metrics."""

from .distances import DISTANCES
from .graphs import GRAPHS
from .losses import LOSSES
from .regularizers import REGULARIZERS
from .transforms import TRANSFORMS

__all__ = ["DISTANCES", "GRAPHS", "LOSSES", "REGULARIZERS", "TRANSFORMS"]
