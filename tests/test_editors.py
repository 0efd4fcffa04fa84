"""The VS Code extension's grammar and configuration list what the language has: its
statement keywords and every registered kind, so they cannot drift."""

from __future__ import annotations

import json
import re

from stratlang.language.syntax import STATEMENT_KEYWORDS
from stratlang.spec import vocabulary

from .conftest import ROOT

VSCODE = ROOT / "editors" / "vscode"
GRAMMAR = json.loads((VSCODE / "syntaxes" / "strat.tmLanguage.json").read_text())


def _alternatives(pattern: str) -> list[str]:
    """The names of a ``\\b(a|b|c)\\b`` pattern."""
    match = re.search(r"\(([A-Za-z0-9_|.]+)\)", pattern)
    assert match is not None, pattern
    return match.group(1).split("|")


def test_statement_keywords_are_the_grammars():
    pattern = GRAMMAR["repository"]["statement"]["match"]
    assert _alternatives(pattern) == list(STATEMENT_KEYWORDS)
    assert re.match(pattern, "  stratify s ~ path") and not re.match(pattern, "stratified")


def test_kind_names_are_the_registries():
    v = vocabulary()
    names = {*v.losses.names(), *v.regularizers.names(), *v.graphs.names(),
             *v.distances.names(), *v.transforms.names(), *v.backends.names()}
    assert set(_alternatives(GRAMMAR["repository"]["kind"]["match"])) == names


def test_comments_brackets_and_files():
    config = json.loads((VSCODE / "language-configuration.json").read_text())
    assert config["comments"] == {"lineComment": "#"}
    assert config["brackets"] == [["(", ")"], ["[", "]"], ["{", "}"]]
    package = json.loads((VSCODE / "package.json").read_text())
    (language,) = package["contributes"]["languages"]
    assert language["extensions"] == [".strat"]
    (grammar,) = package["contributes"]["grammars"]
    assert grammar["scopeName"] == GRAMMAR["scopeName"] == "source.strat"
    assert (VSCODE / grammar["path"]).exists()
    assert package["contributes"]["configuration"]["properties"]["stratlang.command"][
        "default"] == ["stratlang", "lsp"]
    assert re.fullmatch(GRAMMAR["repository"]["comment"]["match"].rstrip("$"), "# a note")


def test_inline_keywords_are_the_grammars_and_highlighted():
    from stratlang.language.syntax import INLINE_KEYWORDS, grammar_text

    quoted = set(re.findall(r'"([a-z]+)"', grammar_text())) - set(STATEMENT_KEYWORDS)
    assert quoted == set(INLINE_KEYWORDS)
    assert set(INLINE_KEYWORDS) <= set(_alternatives(GRAMMAR["repository"]["word"]["match"]))
