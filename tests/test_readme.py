"""The README documents every setting, and opens with the two commands."""

from __future__ import annotations

from pathlib import Path

from tools.settings_table import table

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_readme_settings_table_is_current() -> None:
    assert table() in README, "regenerate it: python tools/settings_table.py"


def test_readme_opens_with_the_two_commands() -> None:
    head = README[:800]
    assert "bash scripts/run.sh" in head and "bash scripts/test.sh" in head
