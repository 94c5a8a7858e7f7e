"""RFC 3339 timestamps as written into ledger entries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.clock import parse_rfc3339, rfc3339


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_rfc3339_is_utc_with_microseconds_whatever_the_offset(at: datetime, minutes: int) -> None:
    local = at.astimezone(timezone(timedelta(minutes=minutes)))
    text = rfc3339(local)
    # The reference form, built field by field (RFC 3339 §5.6: four-digit year).
    assert text == (
        f"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}:{at.minute:02d}:"
        f"{at.second:02d}.{at.microsecond:06d}Z"
    )
    assert parse_rfc3339(text) == at


def test_rfc3339_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        rfc3339(datetime(2026, 3, 1, 9, 0))
