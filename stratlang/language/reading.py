"""Opening and decoding the files stratlang reads (a spec, and the files it names), said
the same way by the checker and by every reader: not found, not openable, not UTF-8 (with
the line). A path is shortened in messages so that a pathological name cannot flood them."""

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


class FileProblem(Exception):
    """A file that cannot be read; the message names the file (and the line)."""


def path_problem(path: Path, what: str) -> str | None:
    """Why ``path`` cannot be read (missing, a name the system refuses), or None."""
    problem = unopenable(path)
    return f"{what} '{shown(path)}' {problem}" if problem else None


def read_text(path: Path, what: str) -> str:
    """The file's text: UTF-8, a leading byte-order mark dropped, line ends kept as they
    are (so that lines are counted as the lexer counts them); raises FileProblem."""
    problem = path_problem(path, what)
    if problem:
        raise FileProblem(problem)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise FileProblem(f"{what} '{shown(path)}' cannot be read: {err.strerror or err}"
                          ) from None
    return decode(data, f"{what} '{shown(path)}'")


def decode(data: bytes, name: str) -> str:
    """The bytes of a text (a file's, or standard input's) as UTF-8, a leading byte-order
    mark dropped; raises FileProblem naming the first bad byte and its line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise FileProblem(f"{name} is not UTF-8 text: byte 0x{data[err.start]:02x} on line "
                          f"{line}") from None
