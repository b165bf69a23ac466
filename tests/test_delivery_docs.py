"""The mapping files shown in docs/data.md are the ones shipped (the doc tests run them),
and every shipped mapping file is valid."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ips_impact.io.mapping import ColumnMap

ROOT = Path(__file__).resolve().parents[1]
MAPPINGS = ROOT / "ips_impact" / "io" / "mappings"


def test_docs_show_the_shipped_mapping_files():
    text = (ROOT / "docs" / "data.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.S)
    for name in ("delivery_nl.toml", "delivery_fr.toml"):
        assert (MAPPINGS / name).read_text(encoding="utf-8") in blocks, f"docs/data.md does not show {name}"


@pytest.mark.parametrize("path", sorted(MAPPINGS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_mapping_files_are_valid(path):
    cmap = ColumnMap.from_toml(path)
    assert cmap.for_table("panel") or cmap.for_table("assignment")
