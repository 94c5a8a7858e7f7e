"""Start-up hooks of this feature area (filled by its issue)."""

from __future__ import annotations

from typing import Any


def install(vault: Any) -> None:
    """Register hooks on the vault; nothing yet in this area."""
