"""The `auto` campaign's short profile (tests/fuzz_auto.py) and the regression tests of
what it found."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from .fuzz_auto import auto_case, auto_outcome
from .fuzzing import run_cli

SHORT_PROFILE = 16  # cases: about 30 s on the shared machine


@pytest.mark.parametrize("case_seed", [2026 * 1_000_003 + i for i in range(SHORT_PROFILE)])
def test_auto_weights_and_standard_errors_campaign(tmp_path, case_seed):
    case = auto_case(case_seed)
    result = auto_outcome(case, tmp_path / "case")
    assert result.kind in ("accepted", "refused"), f"{result.message}\n{case.describe()}"


def _exponential_fit(tmp_path, eps: str = "") -> list[dict]:
    """An exponential rate per stratum whose 90 % interval reaches below 0 where a stratum
    has one record (a weak path between them)."""
    pd.DataFrame({"a": [0, 1, 2, 3, 3, 3], "y": [5.0, 9.0, 0.1, 3.0, 2.0, 4.0]}).to_csv(
        tmp_path / "d.csv", index=False)
    (tmp_path / "m.strat").write_text(f'model rates\ndata "d.csv"\nresponse y ~ exponential{eps}'
                                      "\nstratify a ~ path weight 0.01\n")
    assert run_cli(["fit", str(tmp_path / "m.strat"), "--out", str(tmp_path / "f")]).status == 0
    run = run_cli(["predict", str(tmp_path / "f.json"), "--data", str(tmp_path / "d.csv"),
                   "--interval", "0.9", "--format", "json"])
    assert run.status == 0, run.stderr
    return json.loads(run.stdout)["predictions"]


def test_an_exponential_mean_interval_holds_its_point_when_the_rate_interval_reaches_0(
        tmp_path):
    # The rate's interval θ ∓ z·sd was mapped through the mean 1/θ and then clipped at 0:
    # stratum 0 (θ = 0.2, sd = 0.2) got the mean interval [0, 1.89] around a mean of 5.0.
    # The rate is now kept in its domain [eps, ∞) first: the mean's interval is
    # [1/(θ + z·sd), 1/eps].
    rows = _exponential_fit(tmp_path)
    for row in rows:
        assert row["prediction_lower"] <= row["prediction"] <= row["prediction_upper"], row
    first = rows[0]
    assert first["prediction"] == pytest.approx(5.0009, abs=1e-3)
    assert first["prediction_lower"] == pytest.approx(1.8910, abs=1e-3)
    assert first["prediction_upper"] == pytest.approx(1e5)  # 1 / eps, eps = 1e-5
    assert rows[3]["prediction_upper"] == pytest.approx(59.1038, abs=1e-3)  # inside: as before


def test_a_bernoulli_probability_interval_stays_inside_its_domain(tmp_path):
    pd.DataFrame({"a": [0, 0, 1, 2, 2, 2], "y": [1, 1, 0, 0, 1, 0]}).to_csv(
        tmp_path / "d.csv", index=False)
    (tmp_path / "m.strat").write_text('model p\ndata "d.csv"\nresponse y ~ bernoulli\n'
                                      "stratify a ~ path weight 0.01\n")
    assert run_cli(["fit", str(tmp_path / "m.strat"), "--out", str(tmp_path / "f")]).status == 0
    run = run_cli(["predict", str(tmp_path / "f.json"), "--data", str(tmp_path / "d.csv"),
                   "--interval", "0.99", "--format", "json"])
    rows = json.loads(run.stdout)["predictions"]
    for row in rows:
        assert 1e-5 <= row["prediction_lower"] <= row["prediction"] <= row["prediction_upper"]
        assert row["prediction_upper"] <= 1 - 1e-5
    assert not any(math.isnan(v) for row in rows for v in row.values()
                   if isinstance(v, float)) and np.isfinite(rows[0]["prediction_upper"])
