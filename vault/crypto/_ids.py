"""Canonical spelling of the identifiers that keys and ciphertexts are bound to."""

from __future__ import annotations

import uuid


def canonical_uuid(value: str, name: str) -> str:
    """``value`` as a lower-case hyphenated UUID, or ``ValueError`` naming ``name``.

    Binding ``str(uuid.UUID(value))`` rather than ``value`` means the same account or
    document opens its keys whatever case or braces a caller used.
    """
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise ValueError(f"{name} must be a UUID") from None
