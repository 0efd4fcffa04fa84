"""Text or file → checked IR, and back: the language front door, with the vocabulary of
kinds and backends that stratlang registers."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .language import ir, limits
from .language.check import check
from .language.errors import StratlangError, did_you_mean
from .language.printer import to_text as print_model
from .language.reading import FileProblem, read_text
from .language.syntax import parse_recovering
from .language.vocabulary import Vocabulary


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    """The registries a spec's names are resolved against."""
    from .backends import BACKENDS
    from .kinds import DISTANCES, GRAPHS, LOSSES, REGULARIZERS, TRANSFORMS

    return Vocabulary(LOSSES, REGULARIZERS, GRAPHS, DISTANCES, BACKENDS, TRANSFORMS)


def looks_like_path(text: str) -> bool:
    """A path rather than spec text: one line that ends in '.strat', or one word with no
    blank in it (every statement has one: `model m`), such as a mistyped file name."""
    stripped = text.strip()
    return "\n" not in stripped and (stripped.endswith(".strat") or (
        bool(stripped) and not any(ch.isspace() for ch in stripped)))


def read_spec(path_or_text: str | Path) -> tuple[str, str]:
    """(text, filename) from a path or from spec text; a path that is not a file is an
    error with the closest spec file beside it, if any."""
    if isinstance(path_or_text, Path) or looks_like_path(str(path_or_text)):
        path = Path(str(path_or_text).strip()) if isinstance(path_or_text, str) else path_or_text
        try:
            return read_text(path, "spec file", limits.MAX_SPEC_BYTES), str(path)
        except FileProblem as err:
            raise StratlangError(str(err) + _nearby(path)) from None
    return str(path_or_text), "<spec>"


def _nearby(path: Path) -> str:
    """'; did you mean …' for a missing spec file with a similar one beside it."""
    try:
        if path.exists():
            return ""
        siblings = [str(path.parent / p.name) if str(path.parent) != "." else p.name
                    for p in path.parent.glob("*.strat")]
    except OSError:
        return ""
    return did_you_mean(str(path), siblings) if siblings else ""


def compile_spec(text: str, filename: str = "<spec>", check_files: bool = True) -> ir.CheckedModel:
    """Parses and checks a spec; raises SpecError with every problem found. When
    ``check_files``, the files the spec names are checked, in its source's directory, for
    a spec file or standard input (``STDIN``: the working directory); spec text given
    from Python (``<spec>``) has its files read only when it is fitted."""
    result = parse_recovering(text, filename)
    source = result.spec.source
    checked = check_files and source.checks_files
    return check(result.spec, vocabulary(), source.directory if checked else None,
                 result.diagnostics)


def to_text(model: ir.CheckedModel) -> str:
    """The canonical spec text of a model (``compile_spec(to_text(m)) == m``)."""
    return print_model(model, vocabulary())


def format_text(text: str, filename: str = "<spec>") -> str:
    """A spec's text in the canonical layout, its comments kept (``stratlang fmt``); the
    files it names are not read. Raises SpecError when the spec does not check."""
    from .language.layout import formatted

    return formatted(text, filename, lambda t, f: compile_spec(t, f, check_files=False), to_text)


def saved_spec(model: ir.CheckedModel) -> dict[str, str]:
    """The spec a fitted model is saved with. The file's own text when it still compiles to
    the fitted model, so that a later error points at real lines of the file; otherwise
    (a model changed in Python, e.g. ``separate()``) the canonical text, under a name that
    claims no file."""
    source = model.source
    if source is not None and not source.filename.startswith("<"):
        try:
            if compile_spec(source.text, source.filename, check_files=False) == model:
                return {"spec": source.text, "spec_file": source.filename}
        except StratlangError:
            pass
    return {"spec": to_text(model), "spec_file": "<fitted model>"}


class NamedSpec:
    """The name and canonical text of the checked model a class holds as ``ir`` (the API
    model, a fitted model)."""

    ir: ir.CheckedModel

    @property
    def name(self) -> str:
        return self.ir.name

    @property
    def text(self) -> str:
        """The canonical text of the spec."""
        return to_text(self.ir)
