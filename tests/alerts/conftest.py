"""Fixtures for the alert channel tests: real servers in child processes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The test servers live in tests/support; make the project root importable whether or
# not tests/ itself is a package.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.sms_provider import SmsProviderHandle, start_sms_provider  # noqa: E402
from tests.support.smtp_server import SmtpServerHandle, start_smtp_server  # noqa: E402

PORTAL = "https://espace-personnel.ofpra.example"
WEBHOOK_SECRET = b"w" * 32
REPORT_SECRET = b"provider-report-secret"


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SmtpServerHandle]:
    with start_smtp_server(tmp_path) as handle:
        yield handle


@pytest.fixture
def sms_provider(tmp_path: Path) -> Iterator[SmsProviderHandle]:
    with start_sms_provider(
        tmp_path, report_secret=REPORT_SECRET, webhook_secret=WEBHOOK_SECRET
    ) as handle:
        yield handle
