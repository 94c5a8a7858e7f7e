"""Ledger entries: canonical bytes, leaf hashes and the hash chain (DESIGN.md §6).

An entry is a JSON object serialised with RFC 8785 (JCS), so any verifier re-derives
the exact bytes. Every entry has ``v`` (format version), ``type``, ``seq`` (its index
in the log) and ``at`` (recording time, RFC 3339 UTC with microseconds), plus fields
of its type. Invariants:

* no personal data: the subject is ``subject_commitment = hex(SHA-256(salt || AGDREF))``
  with a per-account salt kept in the database; erasing the salt unlinks the person
  from the log without changing a single entry byte;
* ``leaf_hash = SHA-256(0x00 || entry)`` (RFC 9162 §2.1.1);
* ``chain[i] = SHA-256(chain[i-1] || leaf_hash[i])`` with ``chain[-1] = 32 zero bytes``,
  so a row deleted or reordered in the table breaks every later link.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Any

import rfc8785

from vault.clock import rfc3339

ENTRY_FORMAT_VERSION = 1
ZERO_CHAIN = bytes(32)


class EntryType(StrEnum):
    ACCOUNT_CREATED = "ACCOUNT_CREATED"
    ACCOUNT_ACTIVATED = "ACCOUNT_ACTIVATED"
    POSTED = "POSTED"
    ALERT_SENT = "ALERT_SENT"
    FIRST_ACCESS = "FIRST_ACCESS"
    NOTIFIED = "NOTIFIED"
    OPT_OUT_REQUESTED = "OPT_OUT_REQUESTED"
    OPT_OUT_EFFECTIVE = "OPT_OUT_EFFECTIVE"
    KEY_RETRIEVED_BY_PROFESSIONAL = "KEY_RETRIEVED_BY_PROFESSIONAL"
    ACCOUNT_CLOSED = "ACCOUNT_CLOSED"
    KEY_ROTATED = "KEY_ROTATED"
    KEY_DESTROYED = "KEY_DESTROYED"


def canonical_entry(type_: str, seq: int, at: datetime, fields: dict[str, Any]) -> bytes:
    """The exact bytes that are hashed into the log."""
    reserved = {"v", "type", "seq", "at"} & fields.keys()
    if reserved:
        raise ValueError(f"reserved entry fields: {sorted(reserved)}")
    body: dict[str, Any] = {
        "v": ENTRY_FORMAT_VERSION,
        "type": str(type_),
        "seq": seq,
        "at": rfc3339(at),
        **fields,
    }
    return bytes(rfc8785.dumps(body))


def parse_entry(data: bytes) -> dict[str, Any]:
    """Parse entry bytes and insist they are already canonical (no second encoding)."""
    obj = json.loads(data)
    if not isinstance(obj, dict) or bytes(rfc8785.dumps(obj)) != data:
        raise ValueError("entry is not canonical RFC 8785 JSON")
    return obj


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def chain_next(prev: bytes, leaf: bytes) -> bytes:
    return hashlib.sha256(prev + leaf).digest()


def subject_commitment(salt: bytes, agdref: str) -> str:
    return hashlib.sha256(salt + agdref.encode("ascii")).hexdigest()
