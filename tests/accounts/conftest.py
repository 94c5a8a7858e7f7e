"""Accounts tests: install this area's extensions until the lead adds them to
``vault.service.EXTENSIONS`` (idempotent installs)."""

from __future__ import annotations

import pytest

from vault import closure, optout
from vault.service import Vault


@pytest.fixture(autouse=True)
def _accounts_extensions(vault: Vault) -> None:
    optout.install(vault)
    closure.install(vault)
