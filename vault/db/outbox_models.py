"""Models of the alert outbox (alerts issue)."""

from __future__ import annotations
