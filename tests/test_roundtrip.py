"""``check(parse(to_text(model))) == model`` over randomly generated models, every
registered kind drawn with parameters from its own declarations."""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stratlang
from stratlang.language.limits import MAX_LINE_CHARACTERS
from stratlang.language.printer import WIDTH, wrap
from stratlang.language.printer import to_text as print_model
from stratlang.spec import compile_spec, to_text, vocabulary

from .strategies import models


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models())
def test_print_then_parse_is_identity(model):
    text = to_text(model)
    again = compile_spec(text, "<roundtrip>", check_files=False)
    assert again == model, text
    assert to_text(again) == text


# ---- long statements are printed over several lines (issue 20 #18) ----------------------
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models(), st.integers(1, 60))
def test_printed_text_re_parses_at_any_width(model, width):
    # a narrow width breaks every statement wherever the printer may: each break must be
    # one the grammar takes, and give the same model
    text = print_model(model, vocabulary(), width)
    again = compile_spec(text, "<roundtrip>", check_files=False)
    assert again == model, text
    assert print_model(again, vocabulary(), width) == text


def test_thousands_of_terms_stay_within_the_line_limit():
    text = ("model m\nresponse y ~ squared\nfeatures x\n"
            + "".join(f"regularize {i + 1} * sum_squares\n" for i in range(2000))
            + "stratify g ~ path nodes [" + ",\n".join(f'"n{i}"' for i in range(3000)) + "]\n")
    model = compile_spec(text, check_files=False)
    printed = to_text(model)
    assert max(len(line) for line in printed.split("\n")) <= WIDTH < MAX_LINE_CHARACTERS
    assert printed.split("\n")[3] == ("regularize 1 * sum_squares + 2 * sum_squares + "
                                      "3 * sum_squares + 4 * sum_squares +")
    assert printed.split("\n")[4].startswith("    5 * sum_squares + 6 * sum_squares")
    assert compile_spec(printed, check_files=False) == model
    built = stratlang.Spec.from_model(model)  # statements taken whole, over their lines
    assert built.model().ir == model
    assert max(len(line) for line in built.source.split("\n")) <= WIDTH


def test_a_column_tuple_is_not_broken_and_an_overlong_item_stays_whole():
    line = "stratify (lat, lon) ~ grid weight 1 nodes (0..3, [" + "1, " * 30 + "2])"
    assert wrap(line, 20).split("\n")[0] == "stratify (lat, lon) ~ grid weight 1 nodes (0..3,"
    assert wrap('features "' + "a" * 50 + '", b', 20) == 'features "' + "a" * 50 + '",\n    b'


def test_spec_from_model_keeps_overrides_and_factors_replaceable():
    text = ("model m\nresponse y ~ huber\nresponse y ~ huber(M=2) where g in {"
            + ", ".join(str(i) for i in range(60)) + "}\nfeatures x\nstratify g ~ path\n")
    model = compile_spec(text, check_files=False)
    spec = stratlang.Spec.from_model(model)
    spec.response("y", "huber", M=3, where={"g": list(range(60))}).stratify("g", "cycle")
    assert spec.model().ir.response.overrides[0].loss.params == (("M", 3.0),)
    assert spec.model().ir.strata[0].graph.name == "cycle"


def test_a_fit_whose_statement_is_longer_than_a_line_is_saved_and_loaded(tmp_path, rng):
    labels = [f"s{i}" for i in range(1500)]  # 12,000 characters of node list
    model = (stratlang.Spec("m").response("y", "squared").features("x")
             .stratify("g", "path", nodes=labels).model())
    assert len(model.text) > MAX_LINE_CHARACTERS
    assert max(len(line) for line in model.text.split("\n")) <= WIDTH
    frame = pd.DataFrame({"g": rng.choice(labels[:5], 60), "x": rng.normal(size=60)})
    frame["y"] = frame.x + 0.1 * rng.normal(size=60)
    fitted = model.fit(frame)
    again = stratlang.load_fitted(fitted.save(tmp_path / "fit"))  # its saved text re-parsed
    assert again.ir == model.ir
    pd.testing.assert_frame_equal(again.predict(frame), fitted.predict(frame))
