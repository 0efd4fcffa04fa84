"""The Dask cluster a fit runs on: a client on a scheduler the user names (or gives), or a
LocalCluster started for the fit and closed after it. Starting one can fail for reasons a
user can act on (too many open files, a script re-imported by its worker processes); the
error says so. Dask's own chatter while it runs (port and socket warnings, its loggers)
stays out of the caller's warnings and log: every failure reaches the fit as an exception."""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import warnings
from collections.abc import Iterator
from typing import Any

from ..language.errors import StratlangError
from .base import OptionValueError

# the loggers a cluster writes to in this process (its workers' are silenced at start)
_CHATTY_LOGGERS = ("distributed", "tornado", "asyncio")
_CHATTY_MODULES = r"(distributed|tornado|asyncio|dask)(\..*)?$"


class SchedulerUnreachable(OptionValueError):
    def __init__(self, message: str):
        super().__init__("scheduler", message)


class ClusterStartError(StratlangError):
    """The local Dask cluster could not start."""


@contextlib.contextmanager
def contained() -> Iterator[None]:
    """Warnings raised by Dask, distributed, tornado or asyncio (a busy port, an unclosed
    socket) and their log records below CRITICAL are kept from the caller while the block
    runs; unclosed sockets are collected inside it, so their warnings are too."""
    loggers = [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=_CHATTY_MODULES)
        warnings.filterwarnings("ignore", category=ResourceWarning)
        # (distributed attributes this one to the caller's frame: matched by its text)
        warnings.filterwarnings("ignore", message=".*Large object.*")
        for logger in loggers:
            logger.setLevel(logging.CRITICAL)
        try:
            yield
        finally:
            gc.collect()  # (an unclosed socket warns when collected: here, not later)
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def _bootstrapping() -> bool:
    """Whether this process is a worker process still importing the script that started
    it (what multiprocessing itself checks before it refuses to start a process)."""
    return bool(getattr(multiprocessing.current_process(), "_inheriting", False))


_GUARD = ("a script that fits with the dask backend must do so under `if __name__ == "
          "\"__main__\":` (the worker processes import the script again)")


def start_failure(error: BaseException) -> str:
    """Why a LocalCluster did not start, as far as the exception chain says."""
    chain = []
    seen: BaseException | None = error
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for cause in chain:
        if "bootstrapping phase" in str(cause):
            return _GUARD
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror[0].lower() + cause.strerror[1:] + (
                " (raise the limit with `ulimit -n`, or use fewer --workers)"
                if cause.errno == 24 else "")
    if any("failed to start worker process" in str(cause) for cause in chain):
        return "its worker processes exited while starting; " + _GUARD.replace(
            "a script that", "in a script, one that", 1)
    messages = [str(c).strip() for c in chain if str(c).strip() and not isinstance(
        c, AssertionError)]  # (distributed's own status checks say nothing to a user)
    return messages[-1] if messages else type(error).__name__


class Cluster:
    """A client on ``scheduler`` (an address or a Client), or on a new LocalCluster."""

    def __init__(self, scheduler: Any, workers: int):
        from distributed import Client

        self.own: Any = None  # what close() shuts: the LocalCluster or our client
        if scheduler is None:
            self.client = self._local(workers)
        elif isinstance(scheduler, str):
            try:
                with contained():
                    self.client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError) as error:
                raise SchedulerUnreachable(f"cannot reach the Dask scheduler at '{scheduler}': "
                                           f"{error}") from None
            self.own = self.client
        else:
            self.client = scheduler

    def _local(self, workers: int) -> Any:
        from distributed import Client, LocalCluster

        if _bootstrapping():
            raise ClusterStartError("the local Dask cluster cannot start in a worker process "
                                    f"that is importing its script: {_GUARD}")
        # its workers' logs would show task tracebacks to a command-line user; every
        # failure reaches the client as an exception instead
        threads = max(1, (os.cpu_count() or 1) // workers)  # the machine's cores, shared
        try:
            with contained():
                self.own = LocalCluster(n_workers=workers, threads_per_worker=threads,
                                        processes=True, dashboard_address=None,
                                        silence_logs=logging.CRITICAL)
                return Client(self.own)
        except (RuntimeError, OSError, TimeoutError, AssertionError) as error:
            self.close()
            raise ClusterStartError(
                f"the local Dask cluster ({workers} worker process"
                f"{'es' if workers != 1 else ''}) could not start: {start_failure(error)}"
            ) from None

    def close(self) -> None:
        with contained():
            if self.own is not None:
                client = getattr(self, "client", None)
                if client is not None:
                    client.close()
                self.own.close()
