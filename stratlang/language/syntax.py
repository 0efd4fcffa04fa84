"""Text → :mod:`stratlang.ast`, with positions, and readable syntax errors.

The LALR parser stops at the first syntax error; to report every mistake in one run we
record the error, blank out the offending line and parse again (statements are
line-based, so this recovers cleanly). The parse again starts at the statement that held
the error, not at the top, so that recovering costs time in proportion to the text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import ast, codes, limits
from .errors import Collector, Diagnostic, Source, Span, SpecError, did_you_mean

STATEMENT_KEYWORDS = ("model", "data", "response", "features", "weights", "missing",
                      "regularize", "stratify", "interact", "basis", "personalize", "distance",
                      "solver")
# words the grammar reserves inside statements (the checker resolves every other name)
INLINE_KEYWORDS = ("where", "and", "in", "step", "by", "shared", "weight")
_MAX_RECOVERIES = 10  # parses of one statement with errors; then it is dropped

_TERMINAL_WORDS = {
    "NAME": "a name", "SIGNED_NUMBER": "a number", "STRING": "a string in double quotes",
    "_NL": "end of line", "$END": "end of file", "LPAR": "'('", "RPAR": "')'",
    "LSQB": "'['", "RSQB": "']'", "LBRACE": "'{'", "RBRACE": "'}'", "COMMA": "','",
    "TILDE": "'~'", "STAR": "'*'", "PLUS": "'+'", "EQUAL": "'='", "COLON": "':'",
}


@lru_cache(maxsize=1)
def _anonymous_words() -> dict[str, str]:
    """lark's names for the grammar's unnamed punctuation ('..', '==', …), in words."""
    return {t.name: "'" + t.pattern.value.replace("\\", "") + "'"
            for t in _parser().terminals if t.name.startswith("__ANON")}
_NUMBERISH = re.compile(r"[+-]?\.?\d[\w.+-]*")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]+)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


@lru_cache(maxsize=1)
def grammar_text() -> str:
    """The grammar as shipped in the installed package."""
    return resources.files("stratlang.grammar").joinpath("stratlang.lark").read_text("utf-8")


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(grammar_text(), parser="lalr", propagate_positions=True, maybe_placeholders=True)


def _span(meta) -> Span:
    return Span(meta.line, meta.column, meta.end_line, meta.end_column)


def _tok_span(tok: Token) -> Span:
    # the parser's lexer positions every token it makes (Token's fields are optional
    # only for tokens made by hand)
    assert (tok.line is not None and tok.column is not None and tok.end_line is not None
            and tok.end_column is not None)
    return Span(tok.line, tok.column, tok.end_line, tok.end_column)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text[1:-1])


def _number(tok: Token) -> ast.Number:
    text = str(tok)
    is_int = re.fullmatch(r"[+-]?[0-9]+", text) is not None
    return ast.Number(_tok_span(tok), int(text) if is_int else float(text), text)


@v_args(meta=True)
class _ToAst(Transformer):
    """Builds AST nodes bottom-up from the lark tree."""

    def _name(self, tok: Token) -> ast.Name:
        return ast.Name(_tok_span(tok), str(tok))

    # values
    def number(self, meta, c):
        return _number(c[0])

    def string(self, meta, c):
        return ast.String(_tok_span(c[0]), _unescape(str(c[0])))

    def name(self, meta, c):
        return self._name(c[0])

    def set(self, meta, c):
        return ast.SetValue(_span(meta), tuple(c))

    def list(self, meta, c):
        return ast.ListValue(_span(meta), tuple(x for x in c if x is not None))

    def tuple(self, meta, c):
        return ast.TupleValue(_span(meta), tuple(c))

    def range(self, meta, c):
        return ast.RangeValue(_span(meta), c[0], c[1], c[2] if len(c) > 2 else None)

    def arg(self, meta, c):
        return ast.Arg(_span(meta), None, c[0])

    def keyword_arg(self, meta, c):
        return ast.Arg(_span(meta), self._name(c[0]), c[1])

    def call(self, meta, c):
        return ast.Call(_span(meta), self._name(c[0]), tuple(a for a in c[1:] if a is not None))

    value_call = call

    def option(self, meta, c):
        return ast.Option(_span(meta), self._name(c[0]), c[1])

    def target(self, meta, c):
        return ast.Target(_span(meta), (self._name(c[0]),))

    def column_tuple(self, meta, c):
        return ast.Target(_span(meta), tuple(self._name(t) for t in c))

    # statements
    def model_stmt(self, meta, c):
        return ast.ModelStmt(_span(meta), self._name(c[0]))

    def data_stmt(self, meta, c):
        return ast.DataStmt(_span(meta), ast.String(_tok_span(c[0]), _unescape(str(c[0]))))

    def condition_equal(self, meta, c):
        return ast.Condition(_span(meta), self._name(c[0]), (c[1],), False)

    def condition_unequal(self, meta, c):
        return ast.Condition(_span(meta), self._name(c[0]), (c[1],), True)

    def condition_in(self, meta, c):
        return ast.Condition(_span(meta), self._name(c[0]), c[1].items, False)

    def where(self, meta, c):
        return ast.Where(_span(meta), tuple(c))

    def response_stmt(self, meta, c):
        where = c[-1] if isinstance(c[-1], ast.Where) or c[-1] is None else None
        options = tuple(x for x in c[2:] if isinstance(x, ast.Option))
        return ast.ResponseStmt(_span(meta), c[0], c[1], options, where)

    def product(self, meta, c):
        return ast.Product(_span(meta), tuple(c))

    def feature(self, meta, c):
        return ast.FeatureTerm(_span(meta), tuple(x for x in c if isinstance(x, ast.Product)),
                               next((x for x in c if isinstance(x, ast.Where)), None),
                               next((x for x in c if isinstance(x, ast.Variation)), None))

    def vary_factor(self, meta, c):
        return ast.VaryFactor(_span(meta), self._name(c[0]), c[1] if len(c) > 1 else None)

    def vary_by(self, meta, c):
        return ast.Variation(_span(meta), tuple(x for x in c if isinstance(x, ast.VaryFactor)))

    def vary_shared(self, meta, c):
        return ast.Variation(_span(meta), ())

    def interact_stmt(self, meta, c):
        names = tuple(self._name(t) for t in c if isinstance(t, Token))
        return ast.InteractStmt(_span(meta), names,
                                tuple(x for x in c if isinstance(x, ast.Option)))

    def features_stmt(self, meta, c):
        return ast.FeaturesStmt(_span(meta), tuple(c))

    def weights_stmt(self, meta, c):
        return ast.WeightsStmt(_span(meta), self._name(c[0]))

    def missing_stmt(self, meta, c):
        return ast.MissingStmt(_span(meta), self._name(c[0]))

    def reg_term(self, meta, c):
        return ast.RegTerm(_span(meta), c[0] if len(c) == 2 else None, c[-1])

    def regularize_stmt(self, meta, c):
        terms = tuple(x for x in c if isinstance(x, ast.RegTerm))
        options = tuple(x for x in c if isinstance(x, ast.Option))
        where = next((x for x in c if isinstance(x, ast.Where)), None)
        return ast.RegularizeStmt(_span(meta), terms, options, where)

    def stratify_stmt(self, meta, c):
        return ast.StratifyStmt(_span(meta), c[0], c[1], tuple(c[2:]))

    def basis_stmt(self, meta, c):
        return ast.BasisStmt(_span(meta), c[0])

    def personalize_stmt(self, meta, c):
        span = _span(meta)
        keyword = Span(span.line, span.column, span.line, span.column + len("personalize"))
        return ast.PersonalizeStmt(span, keyword, tuple(c))

    def distance_stmt(self, meta, c):
        return ast.DistanceStmt(_span(meta), c[0], c[1], tuple(c[2:]))

    def solver_stmt(self, meta, c):
        return ast.SolverStmt(_span(meta), self._name(c[0]), tuple(c[1:]))

    def start(self, meta, c):
        return [x for x in c if x is not None and not isinstance(x, Tree)]


def _word_at(text: str, pos: int) -> str:
    match = re.compile(r"[^\s,()\[\]{}~*=\"#]+").match(text, pos)
    return match.group(0) if match else text[pos:pos + 1]


def _describe_expected(expected: set[str]) -> str:
    if {"NAME", "SIGNED_NUMBER", "STRING"} <= expected:
        return "a value (a number, name, string, {set}, [list] or range)"
    known = {**_TERMINAL_WORDS, **_anonymous_words()}
    words = sorted({known.get(e, f"'{e.lower()}'") for e in expected})
    return ", ".join(words)


def _diagnose(err: UnexpectedInput, source: Source) -> Diagnostic:
    """Turns a lark exception into one positioned, readable diagnostic."""
    text = source.text
    line = getattr(err, "line", None) or 1
    col = getattr(err, "column", None) or 1
    if isinstance(err, UnexpectedEOF) or line < 1:
        line = text.count("\n") + 1
        while line > 1 and not source.line(line):
            line -= 1
        col = len(source.line(line)) + 1
        return Diagnostic("unexpected end of file", Span(line, col, line, col + 1), source,
                          code=codes.UNEXPECTED_END)
    pos = getattr(err, "pos_in_stream", None)
    if pos is None:
        pos = source.offset(line, col)
    if text[pos:pos + 1] == "\n" and text[pos - 1:pos] == "\r":  # the break starts at '\r'
        pos, col = pos - 1, col - 1
    word = _word_at(text, pos)
    span = Span(line, col, line, col + max(1, len(word)))
    expected = set(getattr(err, "expected", None) or getattr(err, "allowed", None) or ())

    char = text[pos:pos + 1]
    if isinstance(err, UnexpectedCharacters) and char.isdecimal() and not char.isascii():
        return Diagnostic(_foreign_digit(char), Span(line, col, line, col + 1), source,
                          code=codes.FOREIGN_DIGIT)
    if text[pos:pos + 1] == '"':
        return Diagnostic("unterminated string: add the closing '\"'",
                          Span(line, col, line, col + _line_end(text, pos) - pos), source,
                          code=codes.UNTERMINATED_STRING)
    if _NUMBERISH.fullmatch(word) and not _NUMBER.fullmatch(word):
        if _is_range(word):  # well formed, but a range goes only in `nodes`
            return Diagnostic(f"a range ('{word}') is written only in `nodes`; here list the "
                              "values, e.g. `in {" + ", ".join(word.split("..")) + "}`",
                              span, source, code=codes.UNEXPECTED)
        return Diagnostic(f"malformed number '{word}'", span, source, code=codes.MALFORMED_NUMBER)
    if isinstance(err, UnexpectedToken):
        tok = err.token
        if tok.type == "SIGNED_NUMBER" and pos > 0 and _NUMBERISH.fullmatch(
                _word_at(text, _start_of_word(text, pos))):
            start = _start_of_word(text, pos)
            whole = _word_at(text, start)
            if not _NUMBER.fullmatch(whole):
                c0 = col - (pos - start)
                return Diagnostic(f"malformed number '{whole}'",
                                  Span(line, c0, line, c0 + len(whole)), source,
                                  code=codes.MALFORMED_NUMBER)
        at_line_start = source.line(line)[: col - 1].strip() == ""
        if tok.type == "NAME" and at_line_start:
            msg = f"unknown statement '{tok}'" + did_you_mean(str(tok), STATEMENT_KEYWORDS)
            return Diagnostic(msg, span, source, code=codes.UNKNOWN_STATEMENT)
        if tok.type in ("_NL", "$END"):
            return Diagnostic(f"unexpected end of line; expected {_describe_expected(expected)}",
                              Span(line, col, line, col + 1), source, code=codes.UNEXPECTED_END)
        shown = str(tok).strip() or tok.type
        return Diagnostic(f"unexpected '{shown}'; expected {_describe_expected(expected)}",
                          span, source, code=codes.UNEXPECTED)
    if isinstance(err, UnexpectedCharacters):
        return Diagnostic(f"unexpected character {_shown_character(text[pos])}",
                          Span(line, col, line, col + 1), source, code=codes.UNEXPECTED_CHARACTER)
    return Diagnostic(str(err).splitlines()[0], span, source, code=codes.UNEXPECTED)


_CONTROL_NAMES = {"\t": "TAB", "\r": "CARRIAGE RETURN", "\x0b": "LINE TABULATION",
                  "\x0c": "FORM FEED", "\x1c": "FILE SEPARATOR", "\x1d": "GROUP SEPARATOR",
                  "\x1e": "RECORD SEPARATOR", "\x85": "NEXT LINE"}


def _shown_character(char: str) -> str:
    """A character for a message: itself in quotes when printable, else its code point and
    name (a line separator or a NUL would otherwise vanish or break the message)."""
    if char.isprintable():
        return f"'{char}'"
    name = unicodedata.name(char, "") or _CONTROL_NAMES.get(char, "a control character")
    return f"U+{ord(char):04X} ({name})"


def _is_range(word: str) -> bool:
    pieces = word.split("..")
    return len(pieces) == 2 and all(_NUMBER.fullmatch(p) for p in pieces)


def _foreign_digit(char: str, word: str = "") -> str:
    """The message for a digit other than 0-9 (which Python would read as a number)."""
    return (f"non-ASCII digit '{char}' (U+{ord(char):04X} {unicodedata.name(char, 'DIGIT')})"
            + (f" in '{word}'" if len(word) > 1 else "")
            + ": numbers are written with the digits 0-9")


def _start_of_word(text: str, pos: int) -> int:
    while pos > 0 and re.match(r"[\w.+-]", text[pos - 1]):
        pos -= 1
    return pos


def _line_end(text: str, pos: int) -> int:
    """The offset of the '\\n' that ends the line holding ``pos`` (or of the end)."""
    end = text.find("\n", pos)
    return len(text) if end < 0 else end


@dataclass(frozen=True)
class ParseResult:
    spec: ast.SpecTree
    diagnostics: tuple[Diagnostic, ...]


_NUMBER_START = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|(?<![\w.])[+-]?\.?\d[\w.+-]*')


def _too_large(number: str) -> bool:
    digits = number.lstrip("+-")
    return len(digits) > 40 or abs(float(number)) > limits.MAX_NUMBER


def _mask_malformed_numbers(text: str, source: Source, collector: Collector) -> str:
    """Reports words that start like a number but are not one (``1.2.3``, ``1e``), and
    numbers beyond the magnitude limit, and replaces them by a valid number of the same
    width, so parsing can go on."""
    out = []
    last = 0
    for match in _NUMBER_START.finditer(text):
        word = match.group(0)
        if word.startswith(('"', "#")):
            continue
        foreign = next((i for i, c in enumerate(word) if c.isdecimal() and not c.isascii()),
                       None)
        if foreign is not None:
            line, col = source.position(match.start() + foreign)
            collector.error(_foreign_digit(word[foreign], word),
                            Span(line, col, line, col + 1), code=codes.FOREIGN_DIGIT)
            out.append(text[last:match.start()] + "0".ljust(len(word)))
            last = match.end()
            continue
        pieces = word.split("..")
        if not (all(_NUMBER.fullmatch(p) for p in pieces if p) and all(pieces[:-1] or [True])):
            # a trailing '+'/'-' belongs to a following sum, not to the number
            if not all(_NUMBER.fullmatch(p) for p in word.rstrip("+-").split("..")):
                line, col = source.position(match.start())
                collector.error(f"malformed number '{word}'",
                                Span(line, col, line, col + len(word)), code=codes.MALFORMED_NUMBER)
                out.append(text[last:match.start()] + "0".ljust(len(word)))
                last = match.end()
                continue
            pieces = word.rstrip("+-").split("..")
        start, large = match.start(), False
        for piece in pieces:
            if piece and _too_large(piece):
                line, col = source.position(start)
                shown = piece if len(piece) <= 24 else piece[:20] + "…"
                collector.error(f"number '{shown}' is too large: a spec's numbers lie within "
                                f"±{limits.MAX_NUMBER:.0e}",
                                Span(line, col, line, col + len(piece)), code=codes.TEXT_TOO_LARGE)
                large = True
            start += len(piece) + 2
        if large:  # the whole word masked, a range by a valid range: no error follows from it
            width = len("..".join(pieces))
            out.append(text[last:match.start()]
                       + ("0..0" if len(pieces) > 1 else "0").ljust(width))
            last = match.start() + width
    out.append(text[last:])
    return "".join(out)


_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*')
# what str.splitlines (and editors) take for a line break, besides '\n' and '\r\n'
_HIDDEN_BREAK = re.compile("\r(?!$)|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def _mask_breaks_in_comments(text: str, source: Source, collector: Collector) -> str:
    """Reports a comment that holds a character editors show as a line break (U+2028,
    U+0085, a vertical tab, …): what follows it would look like a statement but be part of
    the comment. The characters are blanked, so parsing goes on."""
    out, last = [], 0
    for match in _STRING_OR_COMMENT.finditer(text):
        comment = match.group(0)
        if not comment.startswith("#") or not (hidden := _HIDDEN_BREAK.search(comment)):
            continue
        line, col = source.position(match.start() + hidden.start())
        collector.error(f"{_shown_character(hidden.group(0))} in a comment: editors show a "
                        "line break there, but the comment runs on to the end of the line; "
                        "end the comment with a real line break", Span(line, col, line, col + 1),
                        code=codes.BREAK_IN_COMMENT)
        out.append(text[last:match.start()] + _HIDDEN_BREAK.sub(" ", comment))
        last = match.end()
    out.append(text[last:])
    return "".join(out)


_BRACKETS = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|[(\[{]|[)\]}]')


def _mask_beyond_limits(source: Source, collector: Collector) -> str:
    """Blanks (after reporting) a spec beyond the size limit, each line beyond the length
    limit, and each line whose brackets nest deeper than the depth limit — before the
    parser, whose tree would follow the nesting down."""
    text = source.text
    if len(text) > limits.MAX_SPEC_CHARACTERS:
        line, col = source.position(limits.MAX_SPEC_CHARACTERS)
        collector.error(f"the spec is longer than {limits.MAX_SPEC_CHARACTERS:,} characters",
                        Span(line, col, line, col + 1), code=codes.TEXT_TOO_LARGE)
        text = text[:limits.MAX_SPEC_CHARACTERS]
    lines = text.split("\n")
    deepest = [0] * len(lines)
    depth = 0
    for match in _BRACKETS.finditer(text):
        token = match.group(0)
        if token[0] in "([{":
            depth += 1
            line, col = source.position(match.start())
            if depth > limits.MAX_DEPTH and deepest[line - 1] <= limits.MAX_DEPTH:
                collector.error(f"brackets nest deeper than {limits.MAX_DEPTH} levels",
                                Span(line, col, line, col + 1), code=codes.TEXT_TOO_LARGE)
            deepest[line - 1] = max(deepest[line - 1], depth)
        elif token[0] in ")]}":
            depth = max(0, depth - 1)
    for number, written in enumerate(lines):
        if len(written) > limits.MAX_LINE_CHARACTERS:
            collector.error(f"line {number + 1} is longer than {limits.MAX_LINE_CHARACTERS:,} "
                            "characters: break it after a ',' (or with a trailing '\\')",
                            Span(number + 1, limits.MAX_LINE_CHARACTERS + 1, number + 1,
                                 limits.MAX_LINE_CHARACTERS + 2), code=codes.TEXT_TOO_LARGE)
            lines[number] = " " * len(written)  # offsets kept: positions stay true
        elif deepest[number] > limits.MAX_DEPTH:
            lines[number] = " " * len(written)
    return "\n".join(lines)


def parse_recovering(text: str, filename: str = "<spec>") -> ParseResult:
    """Parses as much as it can; every syntax error found is returned, in order. A byte
    order mark at the start is not part of the spec."""
    source = Source(text.removeprefix("\ufeff"), filename)
    collector = Collector(source)
    work = _mask_beyond_limits(source, collector)
    work = _mask_malformed_numbers(work, source, collector)
    work = _mask_breaks_in_comments(work, source, collector)
    try:
        statements = _ToAst().transform(_parser().parse(work))
    except UnexpectedInput:
        statements = _Recovery(work, source, collector).statements()
    return ParseResult(ast.SpecTree(tuple(statements), source), tuple(collector.diagnostics))


# a line break inside brackets, or after one of these, continues the statement
_CONTINUED_AFTER = frozenset({",", "+", "*", ":", "and"})
_STATEMENT_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#.*|[A-Za-z_][A-Za-z0-9_.]*'
                              r"|\.?\d(?:[eE][+-]|[\w.])*|[^\s\w]")


class _Recovery:
    """Parses a spec that has syntax errors statement by statement: a statement with an
    error is parsed again with the offending line blanked (as often as
    :data:`_MAX_RECOVERIES` allows, then dropped), and the statements before it are not
    parsed again."""

    def __init__(self, work: str, source: Source, collector: Collector):
        self.lines = work.split("\n")
        self.source = source
        self.collector = collector
        self.reported = {(d.span.line, d.span.column) for d in collector.diagnostics if d.span}

    def statements(self) -> list[ast.Statement]:
        out: list[ast.Statement] = []
        first = 0
        while first < len(self.lines):
            end = self._statement_end(first)
            for _ in range(_MAX_RECOVERIES):
                try:
                    out.extend(self._parse(first, end))
                    break
                except UnexpectedInput as err:
                    bad = self._record(err) - 1
                    if not first <= bad < end or not self.lines[bad].strip():
                        self._blank(first, end)  # nothing left to blank: dropped
                        break
                    self.lines[bad] = " " * len(self.lines[bad])
                    end = self._statement_end(first)
            else:
                self._blank(first, end)
            first = end
        return out

    def _blank(self, first: int, end: int) -> None:
        for i in range(first, end):
            self.lines[i] = " " * len(self.lines[i])

    def _statement_end(self, first: int) -> int:
        """The line after the statement that starts on line ``first`` (0-based): the first
        line break outside brackets that follows neither a continuing token nor a '\\'.
        (Wrong only on text with an error in it, which the parse of the statement finds.)"""
        depth, last = 0, ""
        for number in range(first, len(self.lines)):
            line = self.lines[number]
            continued = False
            for match in _STATEMENT_TOKEN.finditer(line):
                token = match.group(0)
                if token[0] == "#":
                    continue
                if token == "\\" and not line[match.end():].strip():
                    continued = True  # (the lexer ignores a '\\' before a line break)
                else:
                    depth += (token in "([{") - (token in ")]}")
                    depth = max(depth, 0)
                    last = token
            if not (continued or depth or last in _CONTINUED_AFTER):
                return number + 1
        return len(self.lines)

    def _parse(self, first: int, end: int) -> list[ast.Statement]:
        """The statements on lines ``first`` … ``end`` − 1, positioned in the whole text."""
        text = "\n".join(self.lines[first:end]) + ("\n" if end < len(self.lines) else "")
        try:
            tree = _parser().parse(text)
        except UnexpectedInput as err:
            if isinstance(getattr(err, "line", None), int) and err.line >= 1:
                err.line += first
                if isinstance(err.pos_in_stream, int):
                    err.pos_in_stream += self.source.offset(first + 1, 1)
            raise
        if first:
            _shift_lines(tree, first)
        return _ToAst().transform(tree)

    def _record(self, err: UnexpectedInput) -> int:
        """Reports the error (unless a stand-in's cascade); its line."""
        diag = _diagnose(err, self.source)
        assert diag.span is not None  # (a syntax error has a place)
        at = (diag.span.line, diag.span.column)
        if at not in self.reported:
            self.reported.add(at)
            self.collector.diagnostics.append(diag)
        return diag.span.line


def _shift_lines(tree: Tree, by: int) -> None:
    """Moves the positions of a parse of some lines down by ``by`` lines."""
    for subtree in tree.iter_subtrees():
        if not subtree.meta.empty:
            subtree.meta.line += by
            subtree.meta.end_line += by
        for child in subtree.children:
            if isinstance(child, Token) and child.line is not None:
                child.line += by
                assert child.end_line is not None
                child.end_line += by


def parse(text: str, filename: str = "<spec>") -> ast.SpecTree:
    """Parses a spec, raising :class:`SpecError` with every syntax error found."""
    result = parse_recovering(text, filename)
    if result.diagnostics:
        raise SpecError(result.diagnostics)
    return result.spec
