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
    assert "three.strat:2:1: error: unknown statement 'featurs'" in text_out
    assert "    featurs a\n    ^^^^^^^" in text_out
    assert text_out.endswith("3 errors")


def test_grammar_is_lalr_and_packaged():
    assert "start:" in grammar_text()
