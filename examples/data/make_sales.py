"""Writes sales.csv: simulated unit sales by store × week with an additive truth.

    log E[units] = a_store + season(week) + b_store · log(price) + 0.4 · promo

Store baselines a and price elasticities b vary by store (b around −1.5); the seasonality
is one curve over the 52 weeks shared by every store; the promotion effect is common to
everything. Each store sells in two outlets a week (two records per store × week, price
and promotion drawn per record); a random quarter of the records is held out (`split`).

    python examples/data/make_sales.py     # deterministic (seed 24)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

STORES, WEEKS, OUTLETS = 30, 52, 2


def simulate(seed: int = 24) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = 1.2 + 0.5 * rng.normal(size=STORES)
    elasticity = -1.5 + 0.5 * rng.normal(size=STORES)
    weeks = np.arange(1, WEEKS + 1)
    season = 0.6 * np.sin(2 * np.pi * weeks / WEEKS) + 0.3 * np.cos(4 * np.pi * weeks / WEEKS)
    store, week = np.meshgrid(np.arange(1, STORES + 1), weeks, indexing="ij")
    store = np.repeat(store.ravel(), OUTLETS)
    week = np.repeat(week.ravel(), OUTLETS)
    price = np.round(np.exp(0.25 * rng.normal(size=len(store))) * 4.0, 2)
    promo = (rng.random(len(store)) < 0.2).astype(int)
    log_rate = (base[store - 1] + season[week - 1]
                + elasticity[store - 1] * np.log(price / 4.0) + 0.4 * promo)
    units = rng.poisson(np.exp(log_rate))
    split = np.where(rng.random(len(store)) < 0.25, "test", "train")
    return pd.DataFrame({"store": store, "week": week, "price": price, "promo": promo,
                         "units": units, "split": split})


if __name__ == "__main__":
    simulate().to_csv(Path(__file__).with_name("sales.csv"), index=False)
