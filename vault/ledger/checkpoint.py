"""C2SP tlog-checkpoint: the signed statement "the log of <origin> has <size> leaves with
root <hash>".

Spec: https://c2sp.org/tlog-checkpoint. A checkpoint is the *text* of a C2SP
signed-note (see ``note.py``)::

    <origin>\\n                non-empty; SHOULD be a schema-less URL
    <size>\\n                  ASCII decimal, no leading zeros ("0" for the empty tree)
    <base64 root hash>\\n      32 bytes, RFC 6962 (empty tree: 47DEQpj8...uFU=)
    [<extension line>\\n ...]  optional, non-empty, opaque

Invariants:

* ``parse(c.to_text()) == c`` and ``parse(t).to_text() == t`` for every text
  ``parse`` accepts: one spelling per checkpoint, so signatures are unambiguous.
* A checkpoint says nothing until its note is verified: use :func:`open_checkpoint`,
  and take tree size and root for proof checks only from its result.
* The origin is checked against the expected one. Origins with spaces exist in the
  wild (Rekor v1: ``rekor.sigstore.dev - 2605736670972794746``) and parse; the
  ``SHOULD`` rules (no space, no '+') are enforced only when the vault creates one
  with :meth:`Checkpoint.for_log`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from vault.errors import SignatureError
from vault.ledger.merkle import EMPTY_ROOT, HASH_SIZE
from vault.ledger.note import (
    NoteVerifier,
    OpenedNote,
    _b64decode,
    _b64encode,
    _is_valid_name,
    open_note,
)

__all__ = ["Checkpoint", "MalformedCheckpointError", "open_checkpoint"]

_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_MAX_SIZE = (1 << 64) - 1


class MalformedCheckpointError(SignatureError):
    """The note text is not a valid checkpoint body, or names another log."""


def _check_line(line: str, what: str) -> None:
    if not line:
        raise MalformedCheckpointError(f"checkpoint {what} is empty")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in line):
        raise MalformedCheckpointError(f"checkpoint {what} contains a control character")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if not 0 <= self.size <= _MAX_SIZE:
            raise MalformedCheckpointError("checkpoint size out of range")
        if len(self.root_hash) != HASH_SIZE:
            raise MalformedCheckpointError("checkpoint root hash must be 32 bytes")
        if self.size == 0 and self.root_hash != EMPTY_ROOT:
            raise MalformedCheckpointError("an empty tree must have the empty root hash")
        for ext in self.extensions:
            _check_line(ext, "extension line")

    @classmethod
    def for_log(
        cls, origin: str, size: int, root_hash: bytes, extensions: Iterable[str] = ()
    ) -> Checkpoint:
        """A checkpoint the vault itself will sign: the origin must be a key name too."""
        if not _is_valid_name(origin):
            raise ValueError("origin must be non-empty, without spaces or '+'")
        return cls(origin, size, root_hash, tuple(extensions))

    def to_text(self) -> str:
        lines = [self.origin, str(self.size), _b64encode(self.root_hash), *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body strictly; raise :class:`MalformedCheckpointError`."""
        if not text.endswith("\n"):
            raise MalformedCheckpointError("checkpoint must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedCheckpointError("checkpoint has fewer than 3 lines")
        origin, size_s, root_s, *extensions = lines
        if not _SIZE_RE.fullmatch(size_s):
            raise MalformedCheckpointError("checkpoint size is not a canonical decimal")
        try:
            root = _b64decode(root_s)
        except ValueError:
            raise MalformedCheckpointError("checkpoint root is not canonical base64") from None
        return cls(origin, int(size_s), root, tuple(extensions))


def open_checkpoint(
    note: str | bytes, verifiers: Iterable[NoteVerifier], *, origin: str
) -> tuple[Checkpoint, OpenedNote]:
    """Verify a checkpoint note and parse it; its origin must be ``origin``.

    Which signatures are required (the log's key, k of n witnesses) is policy and
    left to the caller, who inspects ``OpenedNote.verified``.
    """
    opened = open_note(note, verifiers)
    cp = Checkpoint.parse(opened.text)
    if cp.origin != origin:
        raise MalformedCheckpointError(
            f"checkpoint is for origin {cp.origin!r}, expected {origin!r}"
        )
    return cp, opened
