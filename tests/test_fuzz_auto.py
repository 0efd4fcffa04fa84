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

SHORT_PROFILE = 40  # cases (the first of `python -m tests.fuzz_auto --seed 2026`): ≈ 30 s


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


GCV_RUN_OFF = """\
a,b,c,u,o,y
1,2,0,0.3012,0.013,4.908
0,0,0,-0.4955,0.069,0.48
1,2,1,0.9676,0.381,1.111
1,2,0,-0.2823,0.281,0.376
1,2,1,-0.0638,0.163,1.971
0,2,0,0.3494,0.028,4.868
1,2,0,-0.6757,-0.187,0.841
0,2,1,-0.7638,-0.129,0.442
1,2,1,0.8101,-0.383,1.711
1,0,0,-0.7945,-0.153,7.339
0,1,0,0.5095,-0.096,1.231
0,1,0,-0.989,0.368,0.842
1,1,0,-0.7093,-0.14,0.165
0,1,0,-0.4889,0.042,0.099
1,0,0,0.24,0.349,0.754
0,1,1,0.9638,-0.47,2.11
0,1,0,-0.2933,0.001,3.076
0,1,1,-0.7684,-0.05,0.311
1,1,1,0.699,-0.143,4.187
1,0,0,0.7407,0.063,1.749
0,1,1,0.0248,-0.104,1.001
"""


def test_gcv_with_weights_running_off_stops_and_flags_them(tmp_path):
    # Nelder–Mead clipped its points only inside the criterion: past the bound of a
    # weight running to 0 its simplex wandered where GCV is flat, never shrank, and ran to
    # maxiter — 20,000 fits, past the campaign's 60 s; a weight stopping short of its
    # bound (5.8e11, 11.8 decades up) was not flagged. Now the simplex stays in the bounds,
    # stops when it no longer improves, and a run-off weight along which one more decade
    # changes GCV by less than 0.1 % is flagged.
    import stratlang

    (tmp_path / "d.csv").write_text(GCV_RUN_OFF)
    (tmp_path / "m.strat").write_text(
        'model run_off\ndata "d.csv"\nresponse y ~ exponential_regression offset o\n'
        "features u\nregularize auto * sum_squares exclude []\n"
        "stratify a ~ grid weight 0.1 nodes 0..1\nstratify b ~ cycle weight auto nodes 0..3\n"
        "stratify c ~ grid weight auto nodes 0..1\ninteract a * b weight 10\n")
    fitted = stratlang.load(tmp_path / "m.strat").fit(select="gcv")
    report = fitted.info["selection"]
    assert report["inner_fits"] < 1000
    weights = report["weights"]
    assert weights["stratify.b"]["limit"] == "zero"
    assert weights["stratify.c"]["limit"] == "infinite"
    assert weights["stratify.c"]["value"] > 1e10
    assert weights["reg0.sum_squares"]["limit"] is None
    assert weights["reg0.sum_squares"]["value"] == pytest.approx(0.7635, rel=1e-3)
