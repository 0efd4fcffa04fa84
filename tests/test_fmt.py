"""`stratlang fmt`: the canonical layout with the comments kept, idempotent, and --check
for CI."""

from __future__ import annotations

import io
import re
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratlang.cli import main
from stratlang.language.layout import comments
from stratlang.language.syntax import parse
from stratlang.spec import compile_spec, format_text, to_text

from .strategies import models

MESSY = """# elections: a header comment

features x1,   x2   # the two covariates
model m   # its name
response y ~ squared
regularize 1 * sum_squares  # a
regularize 2 * l1   # b
missing error  # the default: the printer leaves it out
stratify s ~ path weight 1   # "a # inside a string" is not a comment
# a comment at the end
"""

FORMATTED = """# elections: a header comment

model m  # its name
response y ~ squared
features x1, x2  # the two covariates
# a
# b
regularize 1 * sum_squares + 2 * l1
# the default: the printer leaves it out
stratify s ~ path weight 1  # "a # inside a string" is not a comment
# a comment at the end
"""


def test_comments_are_kept_at_their_statements():
    assert format_text(MESSY, "m.strat") == FORMATTED
    assert format_text(FORMATTED, "m.strat") == FORMATTED
    assert compile_spec(FORMATTED, "m.strat", False) == compile_spec(MESSY, "m.strat", False)


def test_a_hash_in_a_string_is_no_comment():
    text = 'data "a#b.csv"  # the file\nresponse y ~ squared\n'
    assert comments(text) == [(1, "# the file", True)]
    assert format_text(text, "m.strat") == ('data "a#b.csv"  # the file\n'
                                            "response y ~ squared\n")


def test_comments_inside_a_statement_over_lines_go_before_it():
    text = "response y ~ squared\nfeatures a,  # first\n  b  # second\n"
    assert format_text(text, "m.strat") == ("response y ~ squared\n# first\n"
                                            "# second\nfeatures a, b\n")


def test_blank_lines_between_statements_are_kept_one_for_a_run():
    text = ('data "d.csv"\n\n\n# the response\nresponse y ~ squared\nfeatures x,  intercept\n'
            "\n\n\nstratify g ~ path weight 1  # smooth\n")
    expected = ('data "d.csv"\n\n# the response\nresponse y ~ squared\nfeatures x, intercept\n'
                "\nstratify g ~ path weight 1  # smooth\n")
    assert format_text(text, "m.strat") == expected
    assert format_text(expected, "m.strat") == expected


def test_a_blank_line_travels_with_the_statement_below_it():
    text = "response y ~ squared\nstratify g ~ path weight 1\n\nfeatures x\n"
    assert format_text(text, "m.strat") == ("response y ~ squared\n\nfeatures x\n"
                                            "stratify g ~ path weight 1\n")


def test_fmt_adds_no_model_name_the_writer_did_not_write():
    assert format_text("response y ~ squared\n", "<stdin>") == "response y ~ squared\n"
    assert format_text("response y ~ squared\n", "sales.strat") == "response y ~ squared\n"


comment_text = st.text(alphabet="abcxyz 019_-#\"'", max_size=12).map(lambda t: "# " + t)


def _statements_reordered(text: str, data) -> list[str]:
    """The lines of ``text`` with its statements in a drawn order (statements of one kind
    keep their order, which the model's meaning may depend on)."""
    lines = text.split("\n")[:-1]
    statements = parse(text).statements
    priority: dict[str, int] = {}
    blocks = []
    for index, stmt in enumerate(statements):
        kind = type(stmt).__name__
        if kind not in priority:
            priority[kind] = data.draw(st.integers(0, 20))
        blocks.append(((priority[kind], index),
                       lines[stmt.span.line - 1:stmt.span.end_line]))
    return [line for _, block in sorted(blocks) for line in block]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models(), st.data())
def test_fmt_is_idempotent_and_keeps_every_comment(model, data):
    lines = _statements_reordered(to_text(model), data)
    out = []
    for line in lines:
        out += [""] * data.draw(st.sampled_from([0, 0, 0, 1, 2]))
        if data.draw(st.booleans()):
            out.append(data.draw(comment_text))
        out.append(line + ("  " + data.draw(comment_text) if data.draw(st.booleans()) else ""))
    if data.draw(st.booleans()):
        out.append(data.draw(comment_text))
    text = "\n".join(out) + "\n"
    once = format_text(text, "<fmt>")
    assert format_text(once, "<fmt>") == once
    assert sorted(c for _, c, _ in comments(once)) == sorted(c for _, c, _ in comments(text))
    assert compile_spec(once, "<fmt>", check_files=False) == model
    assert "\n\n\n" not in once and not once.startswith("\n")  # one blank line for a run
    without = "\n".join(re.sub(r"\s*#.*", "", x) for x in once.split("\n")
                        if x.strip() and not x.lstrip().startswith("#"))
    printed = [x for x in to_text(model).split("\n") if x]
    if not any(x.startswith("model ") for x in lines):  # no name is added
        printed = [x for x in printed if not x.startswith("model ")]
    assert without == "\n".join(printed)  # the layout is the printer's


def test_fmt_rewrites_in_place_and_check_says_whether_it_would(tmp_path, capsys):
    spec = tmp_path / "m.strat"
    spec.write_text(MESSY)
    assert main(["fmt", "--check", str(spec)]) == 1
    assert capsys.readouterr().err == (f"{spec}: not in the canonical layout (run `stratlang "
                                       f"fmt {spec}`)\n")
    assert spec.read_text() == MESSY  # --check changes nothing
    assert main(["fmt", str(spec)]) == 0
    assert capsys.readouterr().out == f"formatted {spec}\n"
    assert spec.read_text() == FORMATTED
    assert main(["fmt", "--check", str(spec)]) == 0
    assert main(["fmt", str(spec)]) == 0
    assert capsys.readouterr().out == ""


def test_fmt_reads_stdin_and_writes_stdout(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(MESSY.replace("model m   # its name\n", "")))
    assert main(["fmt", "-"]) == 0
    assert capsys.readouterr().out.startswith("# elections: a header comment\n\nresponse y ~ squared\n")


def test_fmt_refuses_a_spec_with_errors(tmp_path, capsys):
    spec = tmp_path / "bad.strat"
    spec.write_text("response y ~ sqared  # typo\n")
    assert main(["fmt", str(spec)]) == 1
    assert f"{spec}:1:14: error[S104]: unknown loss 'sqared'" in capsys.readouterr().err
    assert spec.read_text() == "response y ~ sqared  # typo\n"
