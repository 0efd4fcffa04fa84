"""Covariate metrics d_l(u_i, u_j) evaluated on index pairs (I, J), vectorized.

They are computed for the neighbour pairs a solver asks for, never as an N × N array.
"""

from __future__ import annotations

import numpy as np


def absolute(u: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    return np.abs(u[i, 0] - u[j, 0])


def euclidean(u: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    return np.linalg.norm(u[i] - u[j], axis=1)


def discrete(u: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    return (u[i, 0] != u[j, 0]).astype(float)


def matrix(codes: np.ndarray, table: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """A precomputed distance between category codes."""
    return table[codes[i], codes[j]]
