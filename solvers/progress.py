"""A progress line on standard error for long fits: elapsed time, the iteration count and
the figures the solver's stopping rule compares, redrawn in place.

Nothing is shown for a fit that ends within ``SHOW_AFTER`` seconds (most fits), and the
line is redrawn at most every ``REFRESH`` seconds so that printing never slows a solver
down. Both are module constants, read at each call, so that tests can shrink them.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

SHOW_AFTER = 1.0  # seconds a fit runs before its line first appears
REFRESH = 0.25  # seconds between redraws: at most about four a second


def elapsed_text(seconds: float) -> str:
    """``3.2 s``, ``12 min 05 s``: short enough for a line that is redrawn."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def _columns(stream: TextIO) -> int:
    """The width of the terminal ``stream`` writes to (standard output may be a file)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        return shutil.get_terminal_size().columns


class ProgressLine:
    """``with ProgressLine("admm", enabled) as line: ... line.update(describe)`` where
    ``describe()`` returns the state after this iteration (called only when the line is
    redrawn). ``enabled=None``: shown when standard error is a terminal. On exit, a line
    that was shown is drawn once more with the final state and ended with a newline."""

    def __init__(self, name: str, enabled: bool | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.name = name
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.clock = clock
        self.start = clock()
        self.shown_at: float | None = None  # when the line was last drawn (None: never)
        self.width = 0  # of the text drawn last, to blank what a shorter line leaves
        self.describe: Callable[[], str] | None = None

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def update(self, describe: Callable[[], str]) -> None:
        if not self.enabled:
            return
        self.describe = describe
        now = self.clock()
        if now - self.start <= SHOW_AFTER:
            return
        if self.shown_at is not None and now - self.shown_at < REFRESH:
            return
        self._draw(now)

    def close(self) -> None:
        """The final state, then a newline, when the line was shown; nothing otherwise."""
        if self.shown_at is None:
            return
        if self.describe is not None:
            self._draw(self.clock())
        print(file=sys.stderr, flush=True)
        self.shown_at = None

    def _draw(self, now: float) -> None:
        assert self.describe is not None
        text = f"{self.name} {elapsed_text(now - self.start)}  {self.describe()}"
        stream = sys.stderr
        if stream.isatty():  # a line wider than the terminal wraps, and '\r' cannot undo that
            text = text[:max(20, _columns(stream) - 1)]
        print("\r" + text.ljust(self.width), end="", file=stream, flush=True)
        self.width = len(text)
        self.shown_at = now
