"""θ of a distributed fit as partitioned Parquet: the workers write one part per block
(θ never reaches the client), and a fitted model reads them back on first use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..data.strata import Strata
from ..language.errors import StratlangError

if TYPE_CHECKING:
    from ..solvers.distributed import Blocks

PARTS = "theta"  # under an output directory: θ as part-NNNNN.parquet


def column_names(rows: Sequence, outputs: Sequence) -> list[str]:
    """Parameter column names of θ written out: 'row', or 'row:output' for several outputs."""
    return [str(r) if len(outputs) == 1 else f"{r}:{o}" for r in rows for o in outputs]


@dataclass(frozen=True)
class ThetaWriter:
    """Writes a block's θ as one Parquet file (run on the workers: ``directory`` must be
    shared by them, e.g. a network file system). Columns: the global stratum number, the
    stratification columns' labels, one column per parameter."""

    directory: str
    strata: Strata
    blocks: Blocks
    columns: tuple[str, ...]

    def clear(self) -> None:
        for old in (Path(self.directory) / PARTS).glob("part-*.parquet"):
            old.unlink()

    def __call__(self, b: int, theta: np.ndarray) -> None:
        lo, hi = self.blocks.strata(b)
        frame = self.strata.labels(lo, hi)
        frame.insert(0, "stratum", np.arange(lo, hi, dtype=np.int64))
        values = theta.reshape(hi - lo, -1)
        for i, name in enumerate(self.columns):
            frame[name] = values[:, i]
        target = Path(self.directory) / PARTS
        target.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(target / f"part-{b:05d}.parquet", index=False)


def _read_part(path: Path, columns: list[str]) -> pd.DataFrame:
    """One θ part, its problems (damaged, a column missing or not numeric) reported."""
    try:
        part = pd.read_parquet(path, columns=columns)
        part[columns[1:]].to_numpy(dtype=float)
    except (OSError, ValueError, KeyError, TypeError) as err:  # (pyarrow's are among them)
        raise StratlangError(f"the θ part '{path}' cannot be read: {err}") from None
    return part


def read_theta(directory: str | Path, shape: tuple[int, int, int],
               columns: list[str]) -> np.ndarray:
    """θ written by :class:`ThetaWriter`, as a (K, n, m) array."""
    k, n, m = shape
    parts = sorted((Path(directory) / PARTS).glob("part-*.parquet"))
    if not parts:
        raise StratlangError(f"no θ parts (part-*.parquet) under '{Path(directory) / PARTS}'")
    frame = pd.concat([_read_part(p, ["stratum", *columns]) for p in parts])
    strata = frame["stratum"].to_numpy()
    if strata.dtype.kind not in "iu" or not np.all(np.isfinite(frame[columns].to_numpy(
            dtype=float))):
        raise StratlangError(f"the θ parts under '{directory}' hold strata that are not "
                             "whole numbers, or values that are not finite numbers")
    if len(strata) != k or not np.array_equal(np.sort(strata), np.arange(k)):
        raise StratlangError(f"the θ parts under '{directory}' hold {len(np.unique(strata))} of "
                             f"the model's {k} strata; was the fit written there completely?")
    theta = np.empty((k, n * m))
    theta[strata] = frame[columns].to_numpy(dtype=float)
    return theta.reshape(k, n, m)
