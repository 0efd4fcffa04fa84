"""Opening and decoding the files stratlang reads (a spec, and the files it names), said
the same way by the checker and by every reader: not found, not openable, not UTF-8 (with
the line). A path is shortened in messages so that a pathological name cannot flood them."""

from __future__ import annotations

import stat
from pathlib import Path

from . import limits

_SHOWN = 80  # characters of a path shown in a message


def shown(path: Path | str) -> str:
    """``path`` for a message: a very long one cut in the middle, with '…'."""
    text = printable(str(path))
    if len(text) <= _SHOWN:
        return text
    return text[:_SHOWN // 2] + "…" + text[-(_SHOWN // 2 - 1):]


def printable(text: str) -> str:
    """``text`` (read from a file) safe to print: control and other unprintable characters
    as escapes (\\x1b, \\u2028), so that a file cannot drive the user's terminal."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


# what a path that exists but is no regular file is, by its file type
_NOT_A_FILE = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


def file_kind(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words ('a regular file', 'a directory', …)."""
    return next((words for test, words in _NOT_A_FILE if test(mode)), "a regular file"
                if stat.S_ISREG(mode) else "not a regular file")


def name_problem(path: Path | str) -> str | None:
    """Why no file can have this name (the system refuses a NUL character in one), or
    None."""
    return "cannot be a file name: it holds a NUL character" if "\0" in str(path) else None


def unopenable(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file, in words ('not found', 'is a directory, not a
    file', 'is a named pipe (FIFO), not a file', 'cannot be opened: …'), or None. Devices
    and pipes are refused: reading one might never end."""
    if problem := name_problem(path):
        return problem
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "not found"
    except OSError as err:  # e.g. a name too long for the file system, a loop of links
        return f"cannot be opened: {err.strerror or err}"
    if stat.S_ISREG(mode):
        return None
    return f"is {file_kind(mode)}, not a file"


class FileProblem(Exception):
    """A file that cannot be read; the message names the file (and the line)."""


def path_problem(path: Path, what: str) -> str | None:
    """Why ``path`` cannot be read (missing, a name the system refuses), or None."""
    problem = unopenable(path)
    return f"{what} '{shown(path)}' {problem}" if problem else None


def read_text(path: Path, what: str, limit: int = limits.MAX_FILE_BYTES) -> str:
    """The file's text: UTF-8, a leading byte-order mark dropped, line ends kept as they
    are (so that lines are counted as the lexer counts them); raises FileProblem, also
    for a file of more than ``limit`` bytes (checked before it is read)."""
    problem = path_problem(path, what)
    if problem:
        raise FileProblem(problem)
    try:
        with path.open("rb") as file:
            size = max(path.stat().st_size, 0)
            if size > limit:
                raise FileProblem(limits.file_too_large(f"{what} '{shown(path)}'", size, limit))
            data = file.read(limit + 1)  # (a file that grows meanwhile is still bounded)
    except OSError as err:
        raise FileProblem(f"{what} '{shown(path)}' cannot be read: {err.strerror or err}"
                          ) from None
    if len(data) > limit:
        raise FileProblem(limits.file_too_large(f"{what} '{shown(path)}'", None, limit))
    return decode(data, f"{what} '{shown(path)}'")


def size_problem(path: Path, what: str, limit: int = limits.MAX_FILE_BYTES) -> str | None:
    """Why ``path`` is too large to read (more than ``limit`` bytes), or None."""
    try:
        size = path.stat().st_size
    except (OSError, ValueError):  # (ValueError: a NUL in the name)
        return None  # (the reader says what is wrong with it)
    return limits.file_too_large(f"{what} '{shown(path)}'", size, limit) if size > limit else None


def decode(data: bytes, name: str) -> str:
    """The bytes of a text (a file's, or standard input's) as UTF-8, a leading byte-order
    mark dropped; raises FileProblem naming the first bad byte and its line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise FileProblem(f"{name} is not UTF-8 text: byte 0x{data[err.start]:02x} on line "
                          f"{line}") from None
