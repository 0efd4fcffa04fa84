"""The main job of `make demo`: fit the bundled examples and print held-out scores of the
separate, stratified and common models, as in the stratified paper's tables; then check
the fast backend against the CVXPY reference on each stratified model."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import stratlang

HERE = Path(__file__).parent
EXAMPLES = [("elections.strat", "anll"), ("diabetes.strat", "rmse"), ("houses.strat", "rmse"),
            ("mpls_stops.strat", "anll")]


def compare(spec: Path, metric: str) -> None:
    model = stratlang.load(spec)
    frame = model.frame(None)
    train, test = frame[frame.split == "train"], frame[frame.split == "test"]
    print(f"\n{model.name}: {model.ir.response.loss.name} loss, "
          f"{len(train)} training / {len(test)} test records")
    print(f"  {'model':<12}{'strata':>8}{'train ' + metric:>14}{'test ' + metric:>14}"
          f"{'seconds':>10}  backend")
    for label, variant in (("separate", model.separate()), ("stratified", model),
                           ("common", model.common())):
        start = time.perf_counter()
        fitted = variant.fit(train)
        seconds = time.perf_counter() - start
        print(f"  {label:<12}{fitted.strata.k:>8}{fitted.score(train)[metric]:>14.4f}"
              f"{fitted.score(test)[metric]:>14.4f}{seconds:>10.2f}  {fitted.info['backend']}")
    check = model.verify(train)
    print(f"  verify: cvxpy {check.cvxpy_objective:.10g} in {check.cvxpy_seconds:.2f} s, "
          f"admm {check.admm_objective:.10g} in {check.admm_seconds:.2f} s "
          f"(relative gap {check.relative_gap:.1e})")


def main() -> int:
    print("stratlang demo: separate vs stratified vs common models (held-out scores)")
    for name, metric in EXAMPLES:
        compare(HERE / name, metric)
    return 0


if __name__ == "__main__":
    sys.exit(main())
