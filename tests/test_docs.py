"""docs/language.md's reference tables are the registries' own (generated, then checked
cell by cell here), so a new kind, option or default cannot go undocumented."""

from __future__ import annotations

import pytest

from stratlang import doc_tables
from stratlang.backends import BACKENDS
from stratlang.kinds import DISTANCES, GRAPHS, LOSSES, REGULARIZERS, TRANSFORMS
from stratlang.language.personalize import PERSONALIZE_OPTIONS

from .conftest import ROOT

DOC = (ROOT / "docs" / "language.md").read_text()


@pytest.mark.parametrize("name", sorted(doc_tables.TABLES))
def test_every_generated_table_is_current(name):
    held = doc_tables.blocks(DOC)
    assert name in held, f"docs/language.md lacks <!-- table: {name} -->"
    assert held[name] == doc_tables.TABLES[name](), (
        f"the '{name}' table of docs/language.md is stale: run "
        "`python -m stratlang.doc_tables docs/language.md`")


@pytest.mark.parametrize("registry", [LOSSES, REGULARIZERS, GRAPHS, DISTANCES, TRANSFORMS,
                                      BACKENDS],
                         ids=lambda r: r.what)
def test_every_kind_has_a_table_row(registry):
    missing = [name for name in registry.names() if f"| `{name}` |" not in DOC]
    assert not missing


def test_every_option_has_a_row_with_its_default():
    for owner in [PERSONALIZE_OPTIONS, *(b.options for b in BACKENDS.entries())]:
        for param in owner:
            assert f"| `{param.name}` | {doc_tables.default(param)} |" in DOC, param.name


def test_regenerating_changes_only_the_tables():
    assert doc_tables.regenerate(DOC) == DOC
    stale = DOC.replace("| `relax` | `1.6` |", "| `relax` | `1` |")
    assert doc_tables.regenerate(stale) == DOC
