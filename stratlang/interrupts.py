"""Ctrl-C answered within a second, even inside a long C call.

Python raises KeyboardInterrupt only between bytecodes of the main thread, so an interrupt
that arrives during a long solver, BLAS or Clarabel call waits until the call returns:
tens of seconds. No thread of the same process can step in either, since such a call may
hold the GIL. So the command line runs each command in a forked child and the parent only
waits: on Ctrl-C (which the terminal sends to both) the child normally unwinds by itself
and reports; if it has not ended within ``grace`` seconds, the parent stops it, reports
the interrupt and exits with 130, as a shell does for a command stopped by Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

INTERRUPTED_STATUS = 130  # 128 + SIGINT, the shell's convention


class _Interrupted(Exception):
    """Raised in the waiting parent by its SIGINT handler."""


def run_supervised(command: Callable[[], int], report: Callable[[], object],
                   grace: float = 0.5) -> int:
    """Runs ``command`` in a forked child and returns its exit status. On SIGINT the child
    gets ``grace`` seconds to end by itself; then it is killed. Unless the command had
    returned (and so told its own outcome: its status stands), ``report()`` runs here and
    the status is 130. A child killed by a signal (the kernel's out-of-memory killer, say)
    is reported as such. Where ``fork`` is missing, ``command`` runs in this process."""
    if not hasattr(os, "fork"):
        return command()
    _flush()
    returned_read, returned_write = os.pipe()  # the child writes its status once command returns
    child_pid: list[int] = []  # (set once forked: a SIGTERM before then has no one to pass to)

    def interrupted(signum: int, frame: FrameType | None) -> None:
        raise _Interrupted

    def forward(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError, IndexError):
            os.kill(child_pid[0], signum)

    # installed before the fork: an interrupt at once after it must not hit Python's default
    previous_int = signal.signal(signal.SIGINT, interrupted)
    previous_term = signal.signal(signal.SIGTERM, forward)
    child = -1
    try:
        child = os.fork()
        if child == 0:
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous_term)
            os.close(returned_read)
            _run_child(command, returned_write)
        try:  # (the interrupt may come at any point from here)
            child_pid.append(child)
            os.close(returned_write)
            _, status = os.waitpid(child, 0)
            return _exit_status(status)
        except _Interrupted:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # further presses change nothing
        return _after_interrupt(child, report, grace, returned_read)
    finally:
        if child != 0:  # (the child leaves through SystemExit, past this point)
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous_term)
            os.close(returned_read)


def _run_child(command: Callable[[], int], returned: int) -> NoReturn:
    """The child's whole life, ended by SystemExit (so exit handlers run as usual). The
    status byte is written only when ``command`` returned or exited: an interrupt it did
    not handle leaves the telling to the parent."""
    told = True
    try:
        status = command()
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
    except KeyboardInterrupt:
        status, told = INTERRUPTED_STATUS, False
    with contextlib.suppress(BaseException):
        _flush()
        if told:
            os.write(returned, bytes([status & 0xFF]))
    sys.exit(status)


def _after_interrupt(child: int, report: Callable[[], object], grace: float,
                     returned: int) -> int:
    """The child's grace period, then its end; the status to exit with."""
    deadline = time.monotonic() + grace
    status: int | None = None
    while time.monotonic() < deadline:
        done, waited = os.waitpid(child, os.WNOHANG)
        if done:
            status = _exit_status(waited)
            break
        time.sleep(0.01)
    said = os.read(returned, 1) if select.select([returned], [], [], 0)[0] else b""
    if status is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)  # (a child still tidying up after it told too)
        os.waitpid(child, 0)
    if said:  # the command had returned, and so told its own outcome
        return said[0]
    report()
    _flush()
    return INTERRUPTED_STATUS


def _exit_status(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return code
    number = -code
    if number in (signal.SIGINT, signal.SIGTERM):  # asked for: nothing to explain
        return 128 + number
    name = signal.Signals(number).name
    hint = " (the system may have run out of memory)" if number == signal.SIGKILL else ""
    print(f"error: stratlang was stopped by signal {name}{hint}", file=sys.stderr)
    return 128 + number


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
