"""Start-up cost of the command line and of ``import stratlang``.

    python benchmarks/import_time.py [--runs 9]

Each command runs in a fresh interpreter, ``--runs`` times; the table gives the median
wall time, the ratio to importing CVXPY (what ``stratlang check`` used to pay for), and
which heavy libraries the command loaded. Baselines in the same run: the bare
interpreter, ``import pandas`` (the data reader every data check needs) and
``import cvxpy``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "elections.strat"
HEAVY = ("cvxpy", "dask", "distributed", "matplotlib", "sklearn", "scipy.stats")
REPORT = ("import sys, atexit; atexit.register(lambda: print('LOADED', ','.join(m for m in {heavy!r}"
          " if m in sys.modules), file=sys.stderr))\n")

COMMANDS = [
    ("python (bare interpreter)", "pass"),
    ("import pandas", "import pandas"),
    ("import cvxpy", "import cvxpy"),
    ("import stratlang", "import stratlang"),
    ("stratlang --help", "from stratlang.cli import main\ntry:\n main(['--help'])\n"
                         "except SystemExit:\n pass"),
    ("stratlang check examples/elections.strat (spec + data)",
     f"from stratlang.cli import main; main(['check', {str(SPEC)!r}])"),
    ("stratlang check (text only, no data)",
     "from stratlang.cli import main; import sys, tempfile, pathlib\n"
     "p = pathlib.Path(tempfile.mkdtemp()) / 'm.strat'\n"
     "p.write_text('response y ~ logistic\\nfeatures a, b\\nstratify g ~ path weight 2\\n')\n"
     "main(['check', str(p)])"),
]


def run(code: str) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", REPORT.format(heavy=HEAVY) + code],
                         capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    loaded = next((line.split(" ", 1)[1] for line in out.stderr.splitlines()
                   if line.startswith("LOADED")), "?")
    return seconds, loaded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    rows = []
    for label, code in COMMANDS:
        run(code)  # warm the file cache
        times = []
        loaded = ""
        for _ in range(args.runs):
            seconds, loaded = run(code)
            times.append(seconds)
        rows.append((label, statistics.median(times), min(times), loaded))
    cvxpy = next(t for label, t, _, _ in rows if label == "import cvxpy")
    print(f"{'command':<56}{'median s':>10}{'min s':>8}{'vs cvxpy':>10}  heavy modules loaded")
    for label, median, fastest, loaded in rows:
        print(f"{label:<56}{median:>10.3f}{fastest:>8.3f}{median / cvxpy:>9.2f}x  {loaded or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
