"""Stable diagnostic codes: every diagnostic the parser, checker and binder make carries a
registered code, shown in the text and JSON output; the docs' table is the registry's."""

from __future__ import annotations

import ast
import json
import re

from stratlang.cli import main
from stratlang.language import codes
from stratlang.language.codes import CODES
from stratlang.spec import compile_spec

from .conftest import ROOT

CONSTANTS = {name: value for name, value in vars(codes).items()
             if isinstance(value, str) and value in CODES}


def _diagnostic_calls():
    """Every call that makes a diagnostic: Diagnostic(...) and a collector's .error(...)."""
    for path in sorted((ROOT / "stratlang").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            receiver = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
            if name == "Diagnostic" or (name == "error" and receiver.split(".")[-1] in
                                        ("self", "out", "collector")):
                yield path.relative_to(ROOT), node


def test_every_diagnostic_call_passes_a_registered_code():
    calls = list(_diagnostic_calls())
    assert len(calls) > 100  # (the walk finds them)
    uncoded, unknown = [], []
    for path, node in calls:
        code = next((k.value for k in node.keywords if k.arg == "code"), None)
        if code is None:
            uncoded.append(f"{path}:{node.lineno}")
        elif isinstance(code, ast.Attribute) and code.attr not in CONSTANTS:
            unknown.append(f"{path}:{node.lineno}: {code.attr}")
    # the two forwarding calls pass the code they were given
    assert uncoded == [], uncoded
    assert unknown == [], unknown


def test_every_code_is_used_and_well_formed():
    source = "\n".join(p.read_text(encoding="utf-8")
                       for p in (ROOT / "stratlang").rglob("*.py") if p.name != "codes.py")
    unused = [name for name in CONSTANTS if not re.search(rf"\b{name}\b", source)
              and CONSTANTS[name] not in codes.UNKNOWN_KIND.values()]
    assert unused == []
    assert all(re.fullmatch(r"S[0-5]\d\d", c) for c in CODES)
    assert set(codes.UNKNOWN_KIND) == {"loss", "regularizer", "graph", "distance",
                                       "transform", "backend"}


def test_text_and_json_carry_the_code(tmp_path, capsys):
    spec = tmp_path / "m.strat"
    spec.write_text("model m\nresponse y ~ sqared\nfeatures a, a\nbasis 0\n")
    assert main(["check", str(spec)]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:2:14: error[S104]: unknown loss 'sqared'; did you mean 'squared'?" in err
    assert f"{spec}:3:13: error[S303]: duplicate feature 'a'" in err
    assert main(["check", str(spec), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [(e["code"], e["line"], e["column"]) for e in report["errors"]] == [
        ("S104", 2, 14), ("S303", 3, 13), ("S209", 4, 7)]


def test_every_registry_has_its_unknown_code():
    cases = {"response y ~ sqared\n": "S104",
             "response y ~ squared\nregularize sum_square\n": "S105",
             "response y ~ squared\nstratify s ~ pth weight 1\n": "S106",
             "response y ~ squared\nfeatures lg(x)\n": "S108",
             "response y ~ squared\nsolver admmm\n": "S109",
             "response y ~ squared\nmissing dropp\n": "S110",
             "respons y ~ squared\n": "S003",
             'data "d.csv\nresponse y ~ squared\n': "S004"}
    for text, code in cases.items():
        try:
            compile_spec(text)
        except ValueError as err:
            assert [d.code for d in err.diagnostics][:1] == [code], (text, err)
        else:
            raise AssertionError(f"accepted {text!r}")
