"""Routes of this feature area (filled by its issue)."""

from typing import Any

ROUTES: list[Any] = []
