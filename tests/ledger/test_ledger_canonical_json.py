"""The canonical-JSON fast path must equal the RFC 8785 reference encoder, always."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.clock import rfc3339
from vault.ledger.entries import ENTRY_FORMAT_VERSION, canonical_entry, canonical_json

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.text(),  # any code point, control characters, U+2028, non-BMP...
)
values: Any = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.text(max_size=8), inner, max_size=5),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), values, max_size=8))
def test_fast_path_equals_rfc8785(obj: dict[str, Any]) -> None:
    try:
        expected = bytes(rfc8785.dumps(obj))
    except (rfc8785.CanonicalizationError, ValueError, UnicodeEncodeError):
        return  # the reference refuses it (e.g. a lone surrogate): nothing to compare
    assert canonical_json(obj) == expected


def test_non_ascii_keys_sort_by_utf16_through_the_reference() -> None:
    obj = {"\U0001f600": 1, "\ufb01": 2, "a": 3}
    assert canonical_json(obj) == bytes(rfc8785.dumps(obj))


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=12).filter(lambda k: k not in ("v", "type", "seq", "at")),
        values,
        max_size=8,
    ),
    st.integers(min_value=0, max_value=2**60),
    st.datetimes(timezones=st.just(UTC)),
)
def test_entry_fast_path_equals_rfc8785(fields: dict[str, Any], seq: int, at: datetime) -> None:
    """``canonical_entry`` checks only the caller's fields on its fast path: its bytes
    must still be the reference encoding of the whole entry."""
    body = {"v": ENTRY_FORMAT_VERSION, "type": "POSTED", "seq": seq, "at": rfc3339(at), **fields}
    try:
        expected = bytes(rfc8785.dumps(body))
    except (rfc8785.CanonicalizationError, ValueError, UnicodeEncodeError):
        return
    assert canonical_entry("POSTED", seq, at, fields) == expected
