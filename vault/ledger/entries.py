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
    # The four envelope values are simple by construction (an ASCII type name, an
    # index below 2**53, an RFC 3339 string): only the caller's fields are checked.
    if type(seq) is int and 0 <= seq < _SAFE_INT and _simple(fields):
        try:
            return _ENCODER.encode(body).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: let the reference encoder decide
            pass
    return canonical_json(body)


_SAFE_INT = 2**53
#: Built once: ``json.dumps`` with options builds a new encoder on every call.
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _simple(value: Any) -> bool:
    """True when ``json.dumps`` with sorted keys already produces RFC 8785 output:
    ASCII keys, strings (lone surrogates make the UTF-8 encode in
    :func:`canonical_json` raise), bools, None, and integers that IEEE 754 doubles hold
    exactly (RFC 8785 §3.2.2.3 number serialisation).

    Runs once per ledger entry on the sequencer's hot path: exact-type checks first."""
    t = type(value)
    if t is str or value is None or t is bool:
        return True
    if t is dict:
        for k, v in value.items():
            if type(k) is not str or not k.isascii():
                return False
            tv = type(v)
            if tv is str or v is None or tv is bool:
                continue
            if tv is int:
                if not -_SAFE_INT < v < _SAFE_INT:
                    return False
                continue
            if not _simple(v):
                return False
        return True
    if t is int:
        return bool(-_SAFE_INT < value < _SAFE_INT)
    if t is list:
        return all(_simple(v) for v in value)
    # Subclasses (StrEnum values, IntEnum...): same rules by isinstance.
    if isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        return -_SAFE_INT < value < _SAFE_INT
    if isinstance(value, list):
        return all(_simple(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and k.isascii() and _simple(v) for k, v in value.items())
    return False


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 (JCS) bytes. A fast path covers the values ledger entries use; anything
    else (floats, non-ASCII keys...) goes through the ``rfc8785`` reference encoder.

    With ASCII keys, UTF-16 key order equals code-point order, and ``json.dumps``
    escapes exactly the characters JCS escapes (control characters, quote, backslash),
    in the same short forms, when ``ensure_ascii`` is off."""
    if _simple(obj):
        try:
            return _ENCODER.encode(obj).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: let the reference encoder decide
            pass
    return bytes(rfc8785.dumps(obj))


def parse_entry(data: bytes) -> dict[str, Any]:
    """Parse entry bytes and insist they are already canonical (no second encoding)."""
    obj = json.loads(data)
    if not isinstance(obj, dict) or canonical_json(obj) != data:
        raise ValueError("entry is not canonical RFC 8785 JSON")
    return obj


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def chain_next(prev: bytes, leaf: bytes) -> bytes:
    return hashlib.sha256(prev + leaf).digest()


def subject_commitment(salt: bytes, agdref: str) -> str:
    return hashlib.sha256(salt + agdref.encode("ascii")).hexdigest()
