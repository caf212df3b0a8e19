"""Every setting is in the README's configuration table, as the README promises."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lineage_stream.settings import Settings

pytestmark = pytest.mark.unit

README = Path(__file__).resolve().parents[2] / "README.md"


def table_rows() -> list[str]:
    return [line for line in README.read_text().splitlines() if line.startswith("| `LINEAGE_")]


def documented(variable: str, rows: list[str]) -> bool:
    """Named in full, or as a `_SUFFIX` beside a full name: replacing its last part
    (`LINEAGE_X_USERNAME` / `_PASSWORD`) or appended to it (`LINEAGE_X_PASSWORD` / `_FILE`)."""
    for row in rows:
        names = re.findall(r"`(_?[A-Z0-9_]+)`", row.split("|")[1])
        if variable in names:
            return True
        full = [name for name in names if name.startswith("LINEAGE_")]
        for suffix in (name for name in names if name.startswith("_")):
            if any(variable in (stem + suffix, stem.rsplit("_", 1)[0] + suffix) for stem in full):
                return True
    return False


def test_every_setting_has_a_row() -> None:
    rows = table_rows()
    missing = [
        f"LINEAGE_{name.upper()}"
        for name in Settings.model_fields
        if not documented(f"LINEAGE_{name.upper()}", rows)
    ]
    assert missing == []
