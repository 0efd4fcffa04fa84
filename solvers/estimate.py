"""An estimated quantity: its value, its standard error (0 when exact) and the method."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A computed quantity, its standard error (0 for an exact value) and how it was got."""

    value: float | np.ndarray
    stderr: float | np.ndarray
    method: str

    @property
    def exact(self) -> bool:
        return self.method.startswith("exact")
