from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def regression_frame(rng) -> pd.DataFrame:
    """Sex × age strata with a slope that varies smoothly with age."""
    n = 300
    frame = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "age": rng.integers(20, 26, n),
                          "x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    frame["y"] = (frame.x1 * (frame.age - 22) / 3 + (frame.sex == "F") + 0.5 * frame.x2
                  + 0.1 * rng.normal(size=n))
    return frame
