"""The grammar: every construct parses; syntax errors are positioned and readable."""

from __future__ import annotations

import pytest

from stratlang import SpecError
from stratlang.language import ast
from stratlang.language.syntax import grammar_text, parse, parse_recovering

FULL = '''# every construct
model everything
data "data/x.csv"
response (y1, y2) ~ huber(M=2.5)
features a, b,
         c, intercept
regularize 0.1 * sum_squares + {0.01, 0.1} * l1 + nonnegative exclude [intercept, a]
regularize logspace(0.01, 1, 3) * elastic_net(0.3) + box(-1, 1)
stratify sex ~ complete weight 10
stratify age ~ path weight 500 nodes 19..85 step 2
stratify (lat, lon) ~ grid weight linspace(1, 10, 4) nodes (0..9, [1, 2, 3])
stratify state ~ edges("borders.csv") weight 1
stratify hub ~ star(center="all") nodes ["a", b, 3]
personalize rank 4 radius 2.0 match 1.0 metric_penalty 0.1 neighbors 3 \\
    learning_rate 0.05
  distance age ~ abs
  distance (lat, lon) ~ euclidean
solver cvxpy method clarabel verbose true
'''


def test_every_construct_parses():
    spec = parse(FULL, "full.strat")
    kinds = [type(s).__name__ for s in spec.statements]
    assert kinds == ["ModelStmt", "DataStmt", "ResponseStmt", "FeaturesStmt", "RegularizeStmt",
                     "RegularizeStmt", "StratifyStmt", "StratifyStmt", "StratifyStmt",
                     "StratifyStmt", "StratifyStmt", "PersonalizeStmt", "DistanceStmt",
                     "DistanceStmt", "SolverStmt"]
    response = spec.statements[2]
    assert [n.value for n in response.target.columns] == ["y1", "y2"]
    assert response.loss.args[0].keyword.value == "M" and response.loss.args[0].value.value == 2.5
    features = spec.statements[3]
    assert [t.products[0].factors[0].value for t in features.terms] == ["a", "b", "c",
                                                                        "intercept"]
    reg = spec.statements[4]
    assert isinstance(reg.terms[1].weight, ast.SetValue)
    assert reg.terms[2].weight is None and reg.options[0].name.value == "exclude"
    age = spec.statements[7]
    rng = age.options[1].value
    assert (rng.start.value, rng.stop.value, rng.step.value) == (19, 85, 2)
    personalize = spec.statements[11]
    assert [o.name.value for o in personalize.options][-1] == "learning_rate"


def test_spans_point_at_the_text():
    spec = parse("model m\nresponse   yy ~ squared\n")
    target = spec.statements[1].target.columns[0]
    assert (target.span.line, target.span.column, target.span.end_column) == (2, 12, 14)


def test_comments_blank_lines_and_crlf():
    spec = parse("# c\r\n\r\nmodel m # trailing\r\n\r\n  # indented comment\r\nresponse y ~ squared")
    assert len(spec.statements) == 2


def test_empty_spec_parses_to_nothing():
    assert parse("").statements == ()
    assert parse("# only a comment\n").statements == ()


def errors(text: str) -> list[tuple[int, int, str]]:
    result = parse_recovering(text, "t.strat")
    return [(d.span.line, d.span.column, d.message) for d in result.diagnostics]


def test_unknown_statement_suggests_keyword():
    assert errors("model m\nfeatrues a, b\n") == [
        (2, 1, "unknown statement 'featrues'; did you mean 'features'?")]


def test_malformed_numbers():
    assert errors("stratify a ~ path weight 1.2.3\nstratify b ~ path weight 1e\n") == [
        (1, 26, "malformed number '1.2.3'"), (2, 26, "malformed number '1e'")]


def test_a_range_outside_nodes_says_where_ranges_go():
    assert errors("response y ~ squared\nregularize 1 * l1 where x in 0..1\n") == [
        (2, 30, "a range ('0..1') is written only in `nodes`; here list the values, e.g. "
                "`in {0, 1}`")]
    assert errors("stratify g ~ path weight 1 nodes 0..x\n") == [
        (1, 34, "malformed number '0..x'")]


def test_unterminated_string():
    assert errors('data "x.csv\n') == [(1, 6, "unterminated string: add the closing '\"'")]


def test_missing_value_at_end_of_line():
    [(line, col, msg)] = errors("stratify age ~ path weight\n")
    assert (line, col) == (1, 27)
    assert msg.startswith("unexpected end of line; expected a value")


def test_unexpected_token_names_what_was_expected():
    [(line, col, msg)] = errors("response y squared\n")
    assert (line, col) == (1, 12)
    assert msg == "unexpected 'squared'; expected '~'"


def test_all_syntax_errors_reported_in_one_pass():
    text = "model m\nfeaturs a\nresponse y ~ huber(1.2.3)\ndata \"oops\nstratify x ~ path\n"
    with pytest.raises(SpecError) as info:
        parse(text, "three.strat")
    lines = [d.span.line for d in info.value.diagnostics]
    assert lines == [2, 3, 4]
    text_out = info.value.format()
    assert "three.strat:2:1: error[S003]: unknown statement 'featurs'" in text_out
    assert "    featurs a\n    ^^^^^^^" in text_out
    assert text_out.endswith("3 errors")


def test_grammar_is_lalr_and_packaged():
    assert "start:" in grammar_text()


# ---- many statements: time in proportion to the text, a bounded message (issue 20 #9)
class _CountingParser:
    """The real parser, counting the characters each parse is given."""

    def __init__(self, real):
        self.real, self.terminals, self.parsed = real, real.terminals, []

    def parse(self, text: str):
        self.parsed.append(len(text))
        return self.real.parse(text)


def test_recovery_parses_again_only_the_statement_with_the_error(monkeypatch):
    from stratlang.language import syntax

    counting = _CountingParser(syntax._parser())
    monkeypatch.setattr(syntax, "_parser", lambda: counting)
    text = "model m\nresponse y ~ squared\n" + "features x )\n" * 2000
    result = parse_recovering(text)
    assert len(result.diagnostics) == 2000  # every error found, none given up on
    assert result.diagnostics[-1].span.line == 2002
    assert result.diagnostics[-1].message.startswith("unexpected ')'")
    assert [type(s).__name__ for s in result.spec.statements] == ["ModelStmt", "ResponseStmt"]
    assert sum(counting.parsed) <= 3 * len(text)  # was: the whole text again per error


@pytest.mark.parametrize("text", [
    FULL, FULL.replace("\n", "\r\n"),
    "features a,\n\n  # between\n  b *\n c:\n d where g == 1 and\n h in {1,\n 2}\nmodel m\n",
    "regularize 0.1 *\n sum_squares +\n l1\nstratify g ~ path \\\n  weight 2\n\n\nbasis 3",
])
def test_statement_by_statement_parse_equals_the_whole_parse(text):
    from stratlang.language.errors import Collector
    from stratlang.language.syntax import _Recovery

    whole = parse(text)
    again = _Recovery(text, whole.source, Collector(whole.source)).statements()
    assert again == list(whole.statements)  # the same statements at the same places


def test_many_errors_shown_up_to_a_cap_with_the_count():
    from stratlang.language.errors import SHOWN_DIAGNOSTICS
    from stratlang.spec import compile_spec

    text = "model m\nresponse y ~ squared\n" + "features x\n" * 120
    with pytest.raises(SpecError) as info:
        compile_spec(text, "many.strat", check_files=False)
    assert len(info.value.diagnostics) == 119  # all kept for a program
    shown = info.value.format()
    assert shown.count("error[S301]: duplicate 'features' statement") == SHOWN_DIAGNOSTICS == 50
    assert shown.endswith("    ^^^^^^^^^^\n… and 69 more\n119 errors")


# ---- digits are ASCII; no hidden line break in a comment (issue 20 #11, #12)
@pytest.mark.parametrize(("value", "column", "message"), [
    ("1٥", 27, "non-ASCII digit '٥' (U+0665 ARABIC-INDIC DIGIT FIVE) in '1٥'"),
    ("١٠", 26, "non-ASCII digit '١' (U+0661 ARABIC-INDIC DIGIT ONE) in '١٠'"),
    ("１０", 26, "non-ASCII digit '１' (U+FF11 FULLWIDTH DIGIT ONE) in '１０'"),
    ("1e٥", 28, "non-ASCII digit '٥' (U+0665 ARABIC-INDIC DIGIT FIVE) in '1e٥'"),
    ("x٣", 27, "non-ASCII digit '٣' (U+0663 ARABIC-INDIC DIGIT THREE)"),
    ("٥", 26, "non-ASCII digit '٥' (U+0665 ARABIC-INDIC DIGIT FIVE)"),
])
def test_numbers_take_ascii_digits_only(value, column, message):
    assert errors(f"stratify g ~ path weight {value}\n") == [
        (1, column, message + ": numbers are written with the digits 0-9")]


def test_a_node_range_of_non_ascii_digits_is_refused():
    assert errors("stratify g ~ path nodes ٠..٤\n") == [
        (1, 25, "non-ASCII digit '٠' (U+0660 ARABIC-INDIC DIGIT ZERO) in '٠..٤': numbers "
                "are written with the digits 0-9")]


def test_non_ascii_digits_in_a_string_are_text():
    [stmt] = parse('stratify g ~ path nodes ["١", "１０"]\n').statements
    assert [v.value for v in stmt.options[0].value.items] == ["١", "１０"]


@pytest.mark.parametrize(("char", "name"), [
    ("\u2028", "LINE SEPARATOR"), ("\u2029", "PARAGRAPH SEPARATOR"), ("\x85", "NEXT LINE"),
    ("\x0b", "LINE TABULATION"), ("\x0c", "FORM FEED"), ("\x1c", "FILE SEPARATOR"),
    ("\x1d", "GROUP SEPARATOR"), ("\x1e", "RECORD SEPARATOR"), ("\r", "CARRIAGE RETURN"),
])
def test_a_line_break_hidden_in_a_comment_is_refused(char, name):
    text = f"model m\n# note{char}stratify g ~ path weight 5\nresponse y ~ squared\n"
    assert len(text.splitlines()) == 4  # what an editor shows: the statement on its own line
    assert errors(text) == [
        (2, 7, f"U+{ord(char):04X} ({name}) in a comment: editors show a line break there, "
               "but the comment runs on to the end of the line; end the comment with a real "
               "line break")]


def test_a_comment_may_end_a_crlf_line_and_hold_a_quote_or_hash():
    spec = parse('model m # a "#" \\ comment\r\nresponse y ~ squared # ok\r\n')
    assert [type(s).__name__ for s in spec.statements] == ["ModelStmt", "ResponseStmt"]
