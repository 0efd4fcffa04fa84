"""docs/language.md documents every registered kind."""

from __future__ import annotations

import pytest

from stratlang.backends import BACKENDS
from stratlang.kinds import DISTANCES, GRAPHS, LOSSES, REGULARIZERS
from stratlang.language.personalize import PERSONALIZE_OPTIONS

from .conftest import ROOT

DOC = (ROOT / "docs" / "language.md").read_text()


@pytest.mark.parametrize("registry", [LOSSES, REGULARIZERS, GRAPHS, DISTANCES, BACKENDS],
                         ids=lambda r: r.what)
def test_every_kind_has_a_table_row(registry):
    missing = [name for name in registry.names() if f"| `{name}` |" not in DOC]
    assert not missing


def test_every_personalize_option_is_documented():
    assert all(f"| `{name}` |" in DOC for name in PERSONALIZE_OPTIONS.names())
