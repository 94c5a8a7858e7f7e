"""The clock port. The core never reads the wall clock itself (STYLE.md rule 1).

Times are timezone-aware UTC datetimes with microseconds. Legal dates are computed
from them in Europe/Paris by :mod:`vault.notification`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock for tests: it only moves when told to."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self._at += delta


def rfc3339(at: datetime) -> str:
    """RFC 3339 UTC with microseconds, e.g. ``2026-03-01T09:00:00.000000Z``."""
    if at.tzinfo is None:
        raise ValueError("naive datetime")
    u = at if at.tzinfo is UTC else at.astimezone(UTC)
    # isoformat is ~4x cheaper than strftime; this runs once per ledger entry.
    # An aware UTC time's isoformat ends with "+00:00" (utcoffset is zero).
    return u.isoformat(timespec="microseconds")[:-6] + "Z"


def parse_rfc3339(text: str) -> datetime:
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if at.tzinfo is None:
        raise ValueError("timestamp without offset")
    return at.astimezone(UTC)
