"""``stratlang lsp``: a language server (LSP over standard input and output) for .strat
files, a thin layer over the checker, the registries and the canonical printer.

Positions: the checker's spans are 1-based in code points; LSP positions are 0-based in
UTF-16 code units (a character outside the Basic Multilingual Plane counts two; a tab
counts one, as in the checker). :func:`to_lsp` and :func:`from_utf16` convert.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import logging
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from .language import ir
from .language.auto import AUTO, SELECT_OPTION, SELECTION_METHODS
from .language.codes import NO_COLUMN
from .language.errors import Diagnostic, Source, Span, SpecError, StratlangError
from .language.syntax import STATEMENT_KEYWORDS

_TAKE_COLUMNS = ("response", "features", "weights", "regularize", "stratify", "distance")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


# ---- positions ---------------------------------------------------------------------
def utf16_column(line: str, column: int) -> int:
    """The 0-based UTF-16 offset of the 1-based code-point ``column`` of ``line``."""
    prefix = line[:column - 1]
    return len(prefix) + sum(1 for ch in prefix if ord(ch) > 0xFFFF) + max(
        0, column - 1 - len(line))


def from_utf16(line: str, character: int) -> int:
    """The 0-based code-point index of the 0-based UTF-16 offset ``character``."""
    units = 0
    for index, ch in enumerate(line):
        if units >= character:
            return index
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(line)


def to_lsp(span: Span, source: Source) -> tuple[tuple[int, int], tuple[int, int]]:
    """((line, character), (line, character)) of a span, LSP's way."""
    start = (span.line - 1, utf16_column(source.line(span.line), span.column))
    end = (span.end_line - 1, utf16_column(source.line(span.end_line), span.end_column))
    return start, end


# ---- what the server computes (plain functions: tested without a client) ------------
def path_of(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


def diagnostics(text: str, filename: str) -> list[Diagnostic]:
    """The diagnostics ``stratlang check`` reports for the spec, and, when its data file
    exists, those of columns the data lack (found from the file's header alone)."""
    from .spec import compile_spec

    try:
        model = compile_spec(text, filename)
    except SpecError as err:
        return list(err.diagnostics)
    except StratlangError as err:  # (a problem with no position, e.g. a file too large)
        return [Diagnostic(str(err), None, Source(text, filename), code="")]
    return header_diagnostics(model)


def read_header(path: Path) -> list[str] | None:
    """The column names of a CSV (its first line, as the data reader takes it) or Parquet
    file, without reading its rows; None when it cannot be read."""
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return [name.strip() for name in next(csv.reader(handle, skipinitialspace=True), [])]
    except (OSError, UnicodeDecodeError, csv.Error, ValueError):
        return None


def header_diagnostics(model: ir.CheckedModel) -> list[Diagnostic]:
    """``check``'s 'column not found' diagnostics for the model's data file, found by
    binding a frame with the file's header and one row of missing values (the binder's
    own messages; the other problems of that row are not the file's, and with
    ``missing error`` the row is kept, so that the columns are looked at)."""
    from .backends.base import bind_family

    if model.data is None:
        return []
    path = model.directory / model.data
    header = read_header(path)
    if header is None:
        return []
    import pandas as pd

    frame = pd.DataFrame({name: [float("nan")] for name in header})
    frame.attrs["source"] = frame.attrs["file"] = str(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bind_family(dataclasses.replace(model, missing="error"), frame)
    except SpecError as err:
        return [d for d in err.diagnostics if d.code == NO_COLUMN]
    except Exception:  # an empty frame may trip a kind that needs rows: not the file's fault
        return []
    return []


def _kind_doc(entry: Any, what: str) -> str:
    from .doc_tables import signature

    declared = getattr(entry, "params", None) or getattr(entry, "options", None)  # (a backend's)
    params = signature(declared) if declared else ""
    text = f"**{entry.name}** ({what})\n\n{entry.doc}"
    return text + (f"\n\nParameters: {params}" if params else "")


def _registries() -> list[tuple[str, Any]]:
    from .backends import BACKENDS
    from .kinds import DISTANCES, GRAPHS, LOSSES, REGULARIZERS, TRANSFORMS

    return [("loss", LOSSES), ("regularizer", REGULARIZERS), ("graph", GRAPHS),
            ("distance", DISTANCES), ("transform", TRANSFORMS), ("backend", BACKENDS)]


def _registry_for(line: str, index: int) -> tuple[str, Any] | None:
    """Which registry a name at ``index`` of ``line`` comes from, by its statement."""
    regs = dict(_registries())
    head = line.lstrip().split(" ", 1)[0]
    before = line[:index]
    if head == "solver":
        return "backend", regs["backend"]
    if head == "regularize":
        return "regularizer", regs["regularizer"]
    if "~" in before:
        kind = {"response": "loss", "stratify": "graph", "distance": "distance"}.get(head)
        return (kind, regs[kind]) if kind else None
    if head == "features":
        return "transform", regs["transform"]
    return None


def _statement_options(line: str) -> tuple[str, Any] | None:
    """(owner, Options) of the options a ``solver BACKEND …`` or ``personalize …`` line
    takes."""
    from .backends import BACKENDS
    from .language.personalize import PERSONALIZE_OPTIONS

    words = line.split()
    if words[:1] == ["personalize"]:
        return "personalize", PERSONALIZE_OPTIONS
    if words[:1] == ["solver"] and len(words) > 1 and words[1] in BACKENDS:
        return f"backend `{words[1]}`", BACKENDS[words[1]].options
    return None


def _enclosing_call(line: str, index: int) -> str | None:
    """The name of the call whose parentheses hold ``index`` (``edges(|``), if any."""
    depth = 0
    for i in range(index - 1, -1, -1):
        if line[i] == ")":
            depth += 1
        elif line[i] == "(":
            if depth == 0:
                match = re.search(r"([A-Za-z_][A-Za-z0-9_.]*)\s*$", line[:i])
                return match.group(1) if match else None
            depth -= 1
    return None


KEYWORD_DOCS = {
    "by": "the graph factors a feature's coefficients vary over (`price by store`, "
          "`price by (store weight 50, week)`); exactly constant along the others",
    "shared": "one coefficient for every stratum: constant along every graph factor",
}


def hover(text: str, line_no: int, index: int) -> str | None:
    """Markdown for the word at (0-based line, code-point index): a statement keyword, a
    kind or a parameter."""
    line = text.split("\n")[line_no] if line_no < len(text.split("\n")) else ""
    word = next((m for m in _WORD.finditer(line) if m.start() <= index <= m.end()), None)
    if word is None:
        return None
    name = word.group(0)
    call = _enclosing_call(line, word.start())
    if call is not None and line[word.end():].lstrip().startswith("="):
        for what, registry in _registries():
            if call in registry:
                param = next((p for p in registry[call].params if p.name == name), None)
                if param is not None:
                    return f"**{name}**: parameter of {what} `{call}`\n\n{param.doc}"
    options = _statement_options(line)
    if options is not None and name in options[1] and line[:word.start()].strip():
        return f"**{name}**: option of {options[0]}\n\n{options[1][name].doc}"
    if name in KEYWORD_DOCS and line[:word.start()].strip():
        return f"**{name}**: {KEYWORD_DOCS[name]}"
    if name in STATEMENT_KEYWORDS and not line[:word.start()].strip():
        from .language import syntax

        rule = re.search(rf"^{name}_stmt: (.*)$", syntax.grammar_text(), re.M)
        return f"**{name}** statement: `{rule.group(1) if rule else name}`"
    found = _registry_for(line, word.start())
    if found is not None and name in found[1]:
        return _kind_doc(found[1][name], found[0])
    for what, registry in _registries():
        if name in registry:
            return _kind_doc(registry[name], what)
    return None


def data_columns(text: str, filename: str) -> list[str]:
    """The header of the spec's data file, when it names one that exists."""
    match = re.search(r'^\s*data\s+"((?:[^"\\\n]|\\.)*)"', text, re.M)
    if match is None:
        return []
    return read_header(Path(filename).resolve().parent / match.group(1)) or []


def stratified_columns(text: str) -> list[str]:
    """The columns the spec's `stratify` statements name (what `by` and `interact` take)."""
    out: list[str] = []
    for match in re.finditer(r"^\s*stratify\s+(\([^)]*\)|[A-Za-z_][A-Za-z0-9_.]*)", text, re.M):
        out += [c.strip() for c in match.group(1).strip("()").split(",") if c.strip()]
    return list(dict.fromkeys(out))


def completions(text: str, filename: str, line_no: int, index: int) -> list[tuple[str, str]]:
    """(label, kind) items at (0-based line, code-point index); kind is 'keyword',
    'kind', 'parameter' or 'column'."""
    lines = text.split("\n")
    line = lines[line_no] if line_no < len(lines) else ""
    before = line[:index]
    prefix = re.search(r"[A-Za-z0-9_.]*$", before)
    prefix_start = len(before) - (len(prefix.group(0)) if prefix else 0)
    if not before[:prefix_start].strip():
        return [(k, "keyword") for k in STATEMENT_KEYWORDS]
    call = _enclosing_call(line, prefix_start)
    if call is not None:
        for _, registry in _registries():
            if call in registry and registry[call].params:
                return [(p.name, "parameter") for p in registry[call].params]
    previous = before[:prefix_start].split()[-1:]
    if previous == ["weight"]:
        return [(AUTO, "keyword")]  # a weight chosen from the data (or a number)
    if previous == [SELECT_OPTION] and line.split()[0] == "solver":
        return [(m, "keyword") for m in SELECTION_METHODS]
    options = _statement_options(line)
    if options is not None and len(before[:prefix_start].split()) >= (
            1 if line.split()[0] == "personalize" else 2):
        return [(p.name, "parameter") for p in options[1]] + (
            [(SELECT_OPTION, "parameter")] if line.split()[0] == "solver" else [])
    after_by = re.search(r"\bby\s+$|\bby\s*\([^)]*$", before[:prefix_start])
    if (after_by and line.split()[0] == "features") or line.split()[0] == "interact":
        return [(c, "column") for c in stratified_columns(text)]  # the factors a term varies over
    found = _registry_for(line, prefix_start)
    items: list[tuple[str, str]] = []
    if found is not None:
        if found[0] == "regularizer":
            items.append((AUTO, "keyword"))  # `auto * sum_squares`
        items += [(n, "kind") for n in found[1].names()]
    if line.split()[0] in _TAKE_COLUMNS:
        items += [(c, "column") for c in data_columns(text, filename)]
    return items


def definition(text: str, filename: str, line_no: int, index: int) -> Path | None:
    """The file a string under the cursor names in a data, graph or distance statement."""
    lines = text.split("\n")
    line = lines[line_no] if line_no < len(lines) else ""
    head = line.lstrip().split(" ", 1)[0]
    if head not in ("data", "stratify", "distance"):
        return None
    for match in re.finditer(r'"((?:[^"\\\n]|\\.)*)"', line):
        if match.start() <= index <= match.end():
            path = Path(filename).resolve().parent / match.group(1)
            return path if path.exists() else None
    return None


# ---- the server --------------------------------------------------------------------
class _OneLineFormatter(logging.Formatter):
    """A logged exception as one line after the message, not a traceback (pygls also
    writes some tracebacks into the message text itself: those become their last line)."""

    def formatException(self, ei: Any) -> str:
        return f"  ({ei[0].__name__}: {ei[1]})" if ei[0] is not None else ""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        head, _, rest = text.partition("\n")
        if "Traceback (most recent call last)" not in rest:
            return text
        lines = [line.strip(" |") for line in rest.splitlines() if line.strip(" |+-")]
        return f"{head}\n  ({lines[-1]})"


def serve(debug: bool = False) -> None:
    """Runs the server on standard input and output until the client says exit. What the
    protocol library logs (e.g. a message that is not JSON) goes to standard error, an
    exception as one line (with ``debug``, its traceback)."""
    from lsprotocol import types
    from pygls.lsp.server import LanguageServer

    from .spec import format_text

    if not debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_OneLineFormatter("stratlang lsp: %(message)s"))
        library_log = logging.getLogger("pygls")
        library_log.addHandler(handler)
        library_log.propagate = False
    from . import __version__

    server = LanguageServer("stratlang", __version__)

    def document(uri: str) -> tuple[str, str]:
        try:
            text = server.workspace.get_text_document(uri).source
        except (OSError, UnicodeDecodeError):  # not open, and not a readable file either
            text = ""
        return text, str(path_of(uri))

    def position(text: str, pos: types.Position) -> int:
        lines = text.split("\n")
        return from_utf16(lines[pos.line] if pos.line < len(lines) else "", pos.character)

    def publish(uri: str) -> None:
        text, filename = document(uri)
        out = []
        for d in diagnostics(text, filename):
            source = d.source or Source(text, filename)
            if d.span is not None:
                (l0, c0), (l1, c1) = to_lsp(d.span, source)
            else:
                l0, c0, l1, c1 = 0, 0, 0, 0
            message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
            out.append(types.Diagnostic(
                range=types.Range(types.Position(l0, c0), types.Position(l1, c1)),
                message=message, severity=types.DiagnosticSeverity.Error,
                code=d.code or None, source="stratlang"))
        server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=out))

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: LanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: LanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        server.text_document_publish_diagnostics(  # a closed file's problems leave the list
            types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: LanguageServer, params: types.HoverParams) -> types.Hover | None:
        text, _ = document(params.text_document.uri)
        shown = hover(text, params.position.line, position(text, params.position))
        if shown is None:
            return None
        return types.Hover(contents=types.MarkupContent(types.MarkupKind.Markdown, shown))

    kinds = {"keyword": types.CompletionItemKind.Keyword,
             "kind": types.CompletionItemKind.Function,
             "parameter": types.CompletionItemKind.Property,
             "column": types.CompletionItemKind.Field}

    @server.feature(types.TEXT_DOCUMENT_COMPLETION)
    def on_completion(ls: LanguageServer, params: types.CompletionParams) -> types.CompletionList:
        text, filename = document(params.text_document.uri)
        items = completions(text, filename, params.position.line,
                            position(text, params.position))
        return types.CompletionList(is_incomplete=False, items=[
            types.CompletionItem(label=label, kind=kinds[kind]) for label, kind in items])

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    def on_formatting(ls: LanguageServer, params: types.DocumentFormattingParams
                      ) -> list[types.TextEdit] | None:
        text, filename = document(params.text_document.uri)
        try:
            layout = format_text(text, filename)
        except StratlangError:
            return None  # (the diagnostics say why)
        if layout == text:
            return []
        lines = text.split("\n")
        end = types.Position(len(lines) - 1, utf16_column(lines[-1], len(lines[-1]) + 1))
        return [types.TextEdit(range=types.Range(types.Position(0, 0), end), new_text=layout)]

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def on_definition(ls: LanguageServer, params: types.DefinitionParams
                      ) -> types.Location | None:
        text, filename = document(params.text_document.uri)
        path = definition(text, filename, params.position.line, position(text, params.position))
        if path is None:
            return None
        return types.Location(uri=path.as_uri(), range=types.Range(types.Position(0, 0),
                                                                   types.Position(0, 0)))

    # the protocol gets its own copy of standard output (pygls closes it at exit), and
    # anything else printed goes to standard error, never into the JSON-RPC stream
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    with contextlib.redirect_stdout(sys.stderr):
        server.start_io(sys.stdin.buffer, channel)
