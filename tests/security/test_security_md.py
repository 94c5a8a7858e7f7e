"""SECURITY.md's claims each point to a test (issue 8, item 8): every test name it
cites must exist in the suite, so a renamed or deleted test breaks this one."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_test_named_in_security_md_exists() -> None:
    cited = set(re.findall(r"`(test_[a-z0-9_]+)`", (ROOT / "SECURITY.md").read_text("utf-8")))
    assert len(cited) >= 40
    defined: set[str] = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        defined |= set(
            re.findall(r"^(?:async )?def (test_[a-z0-9_]+)", path.read_text("utf-8"), re.M)
        )
    assert not sorted(cited - defined), sorted(cited - defined)
