"""``check(parse(to_text(model))) == model`` over randomly generated models, every
registered kind drawn with parameters from its own declarations."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from stratlang.spec import compile_spec, to_text

from .strategies import models


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models())
def test_print_then_parse_is_identity(model):
    text = to_text(model)
    again = compile_spec(text, "<roundtrip>", check_files=False)
    assert again == model, text
    assert to_text(again) == text
