"""The blob store port: where document ciphertexts live.

Invariants every adapter keeps (and ``tests/storage`` checks on each of them):

* ``put`` is atomic. Afterwards either the whole object exists under its name, or
  nothing new does: a failed or interrupted write (the source iterator raising,
  the store going away) never leaves a partial object visible. Writing a name that
  exists replaces it whole (last writer wins); readers see the old or the new
  object, never a mix. The vault itself always writes fresh random names
  (:func:`new_blob_name`), so it never overwrites (DESIGN.md §9, "Blob and row").
* Reads and writes stream in chunks: memory stays bounded by the chunk or part
  size, whatever the object size.
* Failures of the store itself (connection refused, timeouts, 5xx, disk errors)
  raise :class:`~vault.errors.StorageUnavailable`, which callers may retry, with a
  plain message and never a credential. A missing object raises
  :class:`~vault.errors.BlobNotFound`. Exceptions raised by the caller's own
  iterator in ``put`` propagate unchanged.
* Names are validated the same way by every adapter (:func:`validate_blob_name`),
  so a name that works on the filesystem works on S3 and back.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from vault.errors import InvalidInput

__all__ = [
    "MAX_NAME_LENGTH",
    "BlobInfo",
    "BlobStore",
    "new_blob_name",
    "validate_blob_name",
    "validate_prefix",
]

#: Object names are at most this many characters (S3 allows 1024 bytes; Swift
#: 1024 minus the container path; a filesystem path component 255).
MAX_NAME_LENGTH = 512

# One path segment: starts with a letter or digit (so never ".", ".." or a hidden
# temporary file of the filesystem adapter), then letters, digits, "._-".
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}"
_NAME_RE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
# A listing prefix is a name, possibly cut anywhere: it may end with "/" or in the
# middle of a segment.
_PREFIX_RE = re.compile(rf"(?:{_SEGMENT}/)*(?:[A-Za-z0-9][A-Za-z0-9._-]{{0,254}})?")


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What the store knows about one object."""

    name: str
    size: int
    #: Time of the last write, timezone-aware UTC. Precision depends on the store
    #: (S3 listings give whole seconds).
    modified_at: datetime


@runtime_checkable
class BlobStore(Protocol):
    """A flat namespace of immutable-by-convention byte objects."""

    def put(self, name: str, chunks: Iterable[bytes]) -> int:
        """Store the concatenation of ``chunks`` under ``name``; return its size."""
        ...

    def open(self, name: str) -> Iterator[bytes]:
        """Stream the object's bytes in chunks. Raises BlobNotFound at once if missing."""
        ...

    def exists(self, name: str) -> bool:
        """Whether an object of that name exists."""
        ...

    def delete(self, name: str) -> None:
        """Remove the object. Deleting a missing object is not an error."""
        ...

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Every object whose name starts with ``prefix``, in name order."""
        ...

    def stat(self, name: str) -> BlobInfo:
        """Size and modification time of one object. Raises BlobNotFound if missing."""
        ...

    def check(self) -> None:
        """Health check: return if the store is usable, else raise StorageUnavailable."""
        ...


def new_blob_name() -> str:
    """A fresh, unguessable object name: ``d/ab/cd/<32 hex digits>``.

    128 random bits, so names never collide and cannot be enumerated. The two
    fan-out levels keep filesystem directories small (65,536 leaves) and spread
    S3 key prefixes.
    """
    token = secrets.token_hex(16)
    return f"d/{token[:2]}/{token[2:4]}/{token}"


def validate_blob_name(name: str) -> str:
    """Return ``name`` if it is a safe object name, else raise InvalidInput.

    Safe: ``/``-separated segments of ASCII letters, digits, ``.``, ``_``, ``-``,
    each starting with a letter or digit. That rules out absolute paths, ``.``
    and ``..`` segments, empty segments, backslashes, control and non-ASCII
    characters: the name can be used as a relative path under a root directory
    without escaping it.
    """
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or _NAME_RE.fullmatch(name) is None:
        raise InvalidInput("invalid blob name")
    return name


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is the empty string or the start of a safe name."""
    if (
        not isinstance(prefix, str)
        or len(prefix) > MAX_NAME_LENGTH
        or _PREFIX_RE.fullmatch(prefix) is None
    ):
        raise InvalidInput("invalid blob name prefix")
    return prefix
