"""Whether a file a spec names can be opened, said the same way by the checker and by the
readers; a path is shortened in messages so that a pathological name cannot flood them."""

from __future__ import annotations

from pathlib import Path

_SHOWN = 80  # characters of a path shown in a message


def shown(path: Path | str) -> str:
    """``path`` for a message: a very long one cut in the middle, with '…'."""
    text = str(path)
    if len(text) <= _SHOWN:
        return text
    return text[:_SHOWN // 2] + "…" + text[-(_SHOWN // 2 - 1):]


def unopenable(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file, in words ('not found', 'is a directory',
    'cannot be opened: …'), or None."""
    try:
        if path.is_file():
            return None
        return "not found (it is a directory)" if path.is_dir() else "not found"
    except OSError as err:  # e.g. a name too long for the file system
        return f"cannot be opened: {err.strerror or err}"
