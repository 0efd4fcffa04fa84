"""Text or file → checked IR: the front door of the language."""

from __future__ import annotations

from pathlib import Path

from . import ir
from .check import check
from .syntax import parse_recovering


def looks_like_path(text: str) -> bool:
    return "\n" not in text and text.strip().endswith(".strat")


def read_spec(path_or_text: str | Path) -> tuple[str, str]:
    """(text, filename) from a path or from spec text."""
    if isinstance(path_or_text, Path) or looks_like_path(str(path_or_text)):
        path = Path(path_or_text)
        if not path.is_file():
            from .errors import StratlangError

            raise StratlangError(f"spec file '{path}' not found")
        return path.read_text(encoding="utf-8"), str(path)
    return str(path_or_text), "<spec>"


def compile_spec(text: str, filename: str = "<spec>", check_files: bool = True) -> ir.Model:
    """Parses and checks a spec; raises SpecError with every problem found."""
    result = parse_recovering(text, filename)
    named = check_files and not filename.startswith("<")
    return check(result.spec, result.spec.source.directory if named else None, result.diagnostics)
