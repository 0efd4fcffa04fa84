"""The options of the ``personalize`` statement (declaration order is printing order)."""

from __future__ import annotations

from .params import Options, Param, count, interval, nonnegative, positive, seeds

PERSONALIZE_OPTIONS = Options("personalize", (
    Param("rank", "int", required=True, check=count(1000),
          doc="q, the number of dictionary atoms (rows of Q)"),
    Param("radius", default=1.0, check=positive, doc="r: neighbours are within ‖Z_i − Z_j‖ < r"),
    Param("match", default=1.0, check=nonnegative, sweep=True,
          doc="γ, weight of distance matching"),
    Param("metric_penalty", default=0.1, check=nonnegative, sweep=True, doc="ν in ν‖φ − 1‖²"),
    Param("max_neighbors", "int", default=30, check=count(10_000),
          doc="B_r(i) keeps at most this many nearest samples within the radius (bounds the "
              "work per epoch)"),
    Param("neighbors", "int", default=3, check=count(10_000),
          doc="k_n, training samples averaged to predict a new sample"),
    Param("start_neighbors", "int", default=0, check=count(10_000, low=0),
          doc="k > 0: a distance-aware start, each θ_i fitted (ridge, shrunk toward θ_pop) to "
              "the records of its k nearest samples under ρ with φ = 1; 0: the paper's start, "
              "θ_pop + noise"),
    Param("learning_rate", default=0.01, check=positive, doc="α₀, the global step size"),
    Param("decay", default=0.99, check=interval(0, 1, closed="(]"), doc="c: the step size is α₀ cᵗ"),
    Param("max_iter", "int", default=200, check=count(1_000_000), doc="subgradient epochs"),
    Param("seed", "int", default=0, check=seeds,
          doc="random seed (results are deterministic given it)"),
))
