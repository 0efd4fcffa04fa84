"""The reference tables of docs/language.md, generated from the registries (kinds,
backends and their options), so the documentation cannot drift from the code.

``python -m stratlang.doc_tables docs/language.md`` rewrites every block between
``<!-- table: NAME -->`` and ``<!-- end table -->``; the test suite checks that the file
holds what this module generates.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .backends import BACKENDS
from .kinds import DISTANCES, GRAPHS, LOSSES, REGULARIZERS, TRANSFORMS
from .kinds.responses import DOMAIN_TEXT
from .language.codes import codes_table
from .language.params import Param
from .language.personalize import PERSONALIZE_OPTIONS
from .language.printer import literal

BLOCK = re.compile(r"(<!-- table: (\w+) -->\n)(.*?)(<!-- end table -->)", re.S)


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def default(param: Param) -> str:
    if param.required:
        return "(required)"
    if param.default is None:
        return "(none)"
    return f"`{literal(param.default)}`"


def signature(params: Iterable[Param]) -> str:
    """A kind's parameters: name, default and allowed values."""
    parts = []
    for p in params:
        value = "required" if p.required else f"default {literal(p.default) if p.default is not None else 'none'}"
        parts.append(f"`{p.name}` ({value}; {p.allowed})")
    return "; ".join(parts)


def table(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def kinds_table(registry, what: str) -> str:
    return table([what, "parameters", "definition"],
                 ([f"`{name}`", signature(registry[name].params), registry[name].doc]
                  for name in registry.names()))


def losses_table() -> str:
    rows = []
    for name in LOSSES.names():
        loss = LOSSES[name]
        response = DOMAIN_TEXT[loss.domain] + ("; one or more columns" if loss.multi_column
                                               else "")
        rows.append([f"`{name}`", signature(loss.params), response,
                     "yes" if loss.smooth else "no", _convex(loss.convex),
                     _likelihood(loss.likelihood), loss.doc])
    return table(["loss", "parameters", "response", "differentiable (newton, eigen)",
                  "convex", "likelihood (`auto` weights)", "definition"], rows)


def _likelihood(reading: Any) -> str:
    if reading is None:
        return "no"
    return "yes, with a scale estimated" if reading.dispersion else "yes"


def _convex(convex: bool) -> str:
    return "yes" if convex else "no: ADMM, local"


def regularizers_table() -> str:
    return table(["regularizer", "parameters", "convex", "definition"],
                 ([f"`{name}`", signature(entry.params), _convex(entry.convex), entry.doc]
                  for name, entry in ((n, REGULARIZERS[n]) for n in REGULARIZERS.names())))


def options_table(params: Iterable[Param]) -> str:
    return table(["option", "default", "allowed", "meaning"],
                 ([f"`{p.name}`", default(p), p.allowed, p.doc] for p in params))


def backends_table() -> str:
    rows = []
    for entry in BACKENDS.entries():
        when = entry.chosen or (
            "when named" if entry.automatic is None
            else "automatically" + (" (first choice)" if entry.automatic == 1 else
                                    " when the ones before cannot fit the model"))
        rows.append([f"`{entry.name}`", entry.family, when, entry.doc])
    out = table(["backend", "fits", "chosen", "what it is"], rows)
    for entry in BACKENDS.entries():
        out += f"\nOptions of `{entry.name}`:\n\n" + options_table(entry.options)
    return out


def personalized_kinds() -> str:
    losses = ", ".join(f"`{n}`" for n in LOSSES.names() if LOSSES[n].personalizable)
    regularizers = ", ".join(f"`{n}`" for n in REGULARIZERS.names()
                             if REGULARIZERS[n].personalizable)
    refused: dict[str, list[str]] = {}
    for name in LOSSES.names():
        reason = LOSSES[name].personalized_refusal
        if reason is not None:
            refused.setdefault(reason, []).append(f"`{name}`")
    why = "; ".join(f"{', '.join(names)}: {reason}" for reason, names in refused.items())
    return (f"Personalized models take the losses {losses} (every loss with a smooth "
            f"pointwise unit and features) and the regularizers {regularizers} (ψ). The "
            f"other losses are refused, each with its reason — {why}.\n")


TABLES: dict[str, Callable[[], str]] = {
    "personalized_kinds": personalized_kinds,
    "losses": losses_table,
    "regularizers": regularizers_table,
    "graphs": lambda: kinds_table(GRAPHS, "graph"),
    "transforms": lambda: kinds_table(TRANSFORMS, "transform"),
    "distances": lambda: kinds_table(DISTANCES, "distance"),
    "personalize": lambda: options_table(PERSONALIZE_OPTIONS),
    "backends": backends_table,
    "diagnostic_codes": codes_table,
}


def blocks(text: str) -> dict[str, str]:
    """The generated blocks a document holds, by name."""
    return {m.group(2): m.group(3) for m in BLOCK.finditer(text)}


def regenerate(text: str) -> str:
    def fill(match: re.Match[Any]) -> str:
        name = match.group(2)
        if name not in TABLES:
            raise KeyError(f"unknown table '{name}'; known: {', '.join(TABLES)}")
        return match.group(1) + TABLES[name]() + match.group(4)

    return BLOCK.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    paths = argv if argv is not None else sys.argv[1:]
    for path in map(Path, paths or ["docs/language.md"]):
        text = path.read_text(encoding="utf-8")
        new = regenerate(text)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"rewrote the tables of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
