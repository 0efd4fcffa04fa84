"""A spec in its canonical layout, comments kept (``stratlang fmt``, the language server's
formatting).

The canonical printer works on the checked model, which has no comments; this module
finds each comment's statement in the source, prints the model, finds each statement
again in the printed text and puts the comments back: a comment on its own line before
the statement it precedes, a comment after code at the end of its statement's last line.
Blank lines the writer put between statements (to group them) are kept, one for a run, and
travel with the statement below them. A statement the printer leaves out (``missing error``) or merges (two ``regularize``
lines with the same options) hands its comments on, so that no comment is ever lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from . import ast, ir
from .syntax import parse

# a string (skipped: a '#' inside it is text) or a comment
_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*')


@dataclass
class _Comments:
    leading: list[str] = field(default_factory=list)  # own lines before the statement
    trailing: list[str] = field(default_factory=list)  # after code on its lines
    blank_before: bool = False  # a blank line (or more) separated it from what came before


def comments(text: str) -> list[tuple[int, str, bool]]:
    """Each comment: (its 1-based line, its text from '#', whether code precedes it)."""
    found = []
    for number, line in enumerate(text.split("\n"), 1):
        for match in _STRING_OR_COMMENT.finditer(line):
            if match.group(0).startswith("#"):
                found.append((number, match.group(0).rstrip("\r \t"),
                              bool(line[:match.start()].strip())))
                break
    return found


def _key(stmt: ast.Statement) -> str:
    """What identifies a statement across the source and the printed text (with its
    rank among the statements of the same key)."""
    name = type(stmt).__name__
    if isinstance(stmt, ast.ResponseStmt) and stmt.where is not None:
        return name + " where"
    return name


def _ranked(statements: tuple[ast.Statement, ...]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    out = []
    for stmt in statements:
        key = _key(stmt)
        out.append((key, counts.get(key, 0)))
        counts[key] = counts.get(key, 0) + 1
    return out


def with_comments(source_text: str, source: tuple[ast.Statement, ...], printed: str) -> str:
    """``printed`` (the canonical text of ``source``'s model) with ``source_text``'s
    comments put back at the statements they belong to."""
    found = comments(source_text)
    lines_of = source_text.split("\n")
    attached = [_Comments() for _ in source]
    for i, stmt in enumerate(source[1:], 1):  # (above the first: the header's business)
        gap = lines_of[source[i - 1].span.end_line:stmt.span.line - 1]
        attached[i].blank_before = any(not line.strip() for line in gap)
    if not found and not any(held.blank_before for held in attached):
        return printed
    header: list[str] = []  # comments above the first statement, a blank line between
    footer: list[str] = []
    first = source[0].span.line if source else len(lines_of) + 1
    for line, text, after_code in found:
        if line < first and any(not lines_of[i - 1].strip() for i in range(line + 1, first)):
            header.append(text)
            continue
        inside = next((i for i, s in enumerate(source) if s.span.line <= line <= s.span.end_line),
                      None)
        if inside is not None:
            (attached[inside].trailing if after_code else attached[inside].leading).append(text)
            continue
        following = next((i for i, s in enumerate(source) if s.span.line > line), None)
        (attached[following].leading if following is not None else footer).append(text)
    target_statements = parse(printed).statements
    targets = {key: i for i, key in enumerate(_ranked(target_statements))}
    by_target = [_Comments() for _ in target_statements]
    pending = _Comments()  # comments of statements the printer left out, handed on
    for (key, rank), held in zip(_ranked(source), attached, strict=True):
        at = targets.get((key, rank))
        if at is None:  # merged into an earlier one of its key, or left out
            at = max((i for (k, _), i in targets.items() if k == key), default=None)
            if at is None:  # left out: its comments go before the next statement printed
                pending.leading += held.leading + held.trailing
                continue
        by_target[at].leading += pending.leading + held.leading
        by_target[at].trailing += held.trailing
        by_target[at].blank_before |= held.blank_before and at == targets.get((key, rank))
        pending = _Comments()
    footer = pending.leading + footer
    lines = printed.split("\n")[:-1]  # (the printed text ends in a line break)
    out: list[str] = [*header, ""] if header else []
    position = 0
    for stmt, held in zip(target_statements, by_target, strict=True):
        out += lines[position:stmt.span.line - 1]
        indent = re.match(r"[ \t]*", lines[stmt.span.line - 1]).group(0)  # type: ignore[union-attr]
        body = lines[stmt.span.line - 1:stmt.span.end_line]
        # one trailing comment stays on the statement's last line; several (from the
        # lines of a statement written over more lines) go before it, in order
        before = held.leading + (held.trailing if len(held.trailing) > 1 else [])
        if held.blank_before and out and out[-1].strip():
            out.append("")
        out += [indent + c for c in before]
        if len(held.trailing) == 1:
            body[-1] += "  " + held.trailing[0]
        out += body
        position = stmt.span.end_line
    out += lines[position:]
    out += footer
    return "\n".join(out) + "\n"


def formatted(text: str, filename: str, compile_text: Callable[[str, str], ir.CheckedModel],
              print_model: Callable[[ir.CheckedModel], str]) -> str:
    """The canonical layout of a spec's text with its comments; raises SpecError when the
    spec does not check (a layout is only defined for a model)."""
    model = compile_text(text, filename)
    source = parse(text, filename).statements
    printed = print_model(model)
    if not any(isinstance(stmt, ast.ModelStmt) for stmt in source):
        printed = _without_name(printed)
    return with_comments(text, source, printed)


def _without_name(printed: str) -> str:
    """The printed text less its ``model NAME`` line: the checker names an unnamed model
    after its file, but the layout adds nothing the writer did not write (a name taken from
    the file would go stale when the file is renamed, or be "model" from standard input)."""
    lines = printed.split("\n")
    for stmt in parse(printed).statements:
        if isinstance(stmt, ast.ModelStmt):
            del lines[stmt.span.line - 1:stmt.span.end_line]
            break
    return "\n".join(lines)
