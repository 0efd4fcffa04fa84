"""What a fit would need in memory, estimated before it starts, against what the machine
has: a model too large for the chosen backend is refused with the figures, not left to
exhaust the machine. The estimates are lower bounds from measured fits (benchmarks/
RESULTS.md): a fit refused here could not have finished."""

from __future__ import annotations

import math
import os

from ..language import codes, limits
from ..language.errors import Diagnostic, SpecError

# bytes per parameter entry (K·d), per feature entry (N·n) and per Laplacian edge entry,
# below what fits measure (benchmarks/memory.py: with N = 4K records, ADMM ≈ 210–390
# bytes per K·d, CVXPY ≈ 3,700–4,700)
ADMM_BYTES = {"parameter": 96, "record": 16, "edge": 0}
CVXPY_BYTES = {"parameter": 400, "record": 400, "edge": 400}


def physical_memory() -> int | None:
    """This machine's memory in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def stratified_need(design, per: dict[str, int]) -> int:
    """Bytes a stratified fit needs at least, given bytes ``per`` kind of entry."""
    k, rows, outputs = design.theta_shape
    d = rows * outputs
    sizes = [f.graph.n for f in design.strata.factors]
    edges = sum(f.graph.n_edges * math.prod(sizes) // max(f.graph.n, 1)
                for f in design.strata.factors)
    return (per["parameter"] * k * d + per["record"] * design.x.size
            + per["edge"] * edges * d)


def refuse_if_too_large(backend: str, design, need: int | None,
                        available: int | None = None) -> None:
    """Raises a SpecError positioned at the first stratify statement when ``need`` bytes
    exceed this machine's memory."""
    available = physical_memory() if available is None else available
    if need is None or available is None or need <= available:
        return
    model = design.model
    k, rows, outputs = design.theta_shape
    d = rows * outputs
    shape = " × ".join(f"{f.graph.n:,}" for f in design.strata.factors) or "1"
    span = model.strata[0].span if model.strata else None
    raise SpecError([Diagnostic(
        f"backend '{backend}' would need at least {limits.gigabytes(need, 1)} for K = "
        f"{shape} = {k:,} strata × {d:,} parameter{'s' if d > 1 else ''} each; this machine has "
        f"{limits.gigabytes(available, 1)}", span, model.source,
        "fewer strata (coarser nodes), or backend 'dask' with workers on other machines",
        code=codes.TOO_LARGE)])
