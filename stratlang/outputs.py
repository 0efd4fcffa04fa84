"""Where a command writes, checked before any work starts: a fit of an hour must not end
in 'no such folder', nor write beside a device (``--out /dev/null`` would create
``/dev/null.json``). Only the command line and Python choose these places; a spec's
``output`` is confined to its own folder (see :mod:`stratlang.language.params`)."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .language.reading import file_kind, name_problem, shown


def json_path(path: str | Path) -> Path:
    """Where a fitted model saved at ``path`` has its document: ``path`` with a .json
    suffix (added to, not replacing, any other suffix)."""
    path = Path(path)
    if path.suffix == ".json":
        return path
    return path.with_suffix(path.suffix + ".json") if path.suffix else path.with_suffix(".json")


def saved_model_problem(out: str, flag: str = "--out") -> str | None:
    """Why a fitted model cannot be saved at ``out`` (``out.json`` and ``out.npz`` beside
    it, as :meth:`FittedModel.save` writes them), or None."""
    if problem := name_problem(out):
        return f"{flag} '{shown(out)}' {problem}"
    given = Path(out)
    model = json_path(given)
    for path in dict.fromkeys((given, model, model.with_suffix(".npz"))):
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            continue
        except OSError as err:
            return f"{flag} '{shown(path)}' cannot be written: {err.strerror or err}"
        if stat.S_ISDIR(mode) and path == given:
            return (f"{flag} '{shown(out)}' is a directory: give a file name in it, e.g. "
                    f"{flag} {shown(given / 'model')}")
        if not stat.S_ISREG(mode):
            return f"{flag} '{shown(path)}' is {file_kind(mode)}, not a file to write"
    return _folder_problem(model.parent, flag, out)


def output_folder_problem(out: str, flag: str = "--output") -> str | None:
    """Why the folder ``out`` (created when missing) cannot take a fit's parts, or None."""
    if problem := name_problem(out):
        return f"{flag} '{shown(out)}' {problem}"
    path = Path(out)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None  # made, with its parents, when the fit writes
    except OSError as err:
        return f"{flag} '{shown(path)}' cannot be written: {err.strerror or err}"
    if not stat.S_ISDIR(mode):
        return f"{flag} '{shown(path)}' is {file_kind(mode)}, not a folder"
    return _folder_problem(path, flag, out) if not os.access(path, os.W_OK | os.X_OK) else None


def _folder_problem(folder: Path, flag: str, out: str) -> str | None:
    if not folder.is_dir():
        return f"{flag} '{shown(out)}': the folder '{shown(folder)}' does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{flag} '{shown(out)}': the folder '{shown(folder)}' is not writable"
    return None


@contextmanager
def replaced_whole(path: str | Path) -> Iterator[Path]:
    """A scratch file beside ``path`` (same suffix) to write, renamed over ``path`` when the
    block ends: an interrupted or failed write (Ctrl-C, a full disk) leaves the old file, or
    none, never one cut short. A path that exists and is not a regular file (a FIFO,
    ``/dev/stdout``) is written directly."""
    path = Path(path)
    if path.exists() and not path.is_file():
        yield path
        return
    handle, scratch = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix,
                                       dir=path.resolve().parent)
    os.close(handle)
    try:
        yield Path(scratch)
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask()
        os.chmod(scratch, mode)
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
