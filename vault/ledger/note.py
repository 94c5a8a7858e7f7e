"""C2SP signed-note and tlog-cosignature: keys, signing, strict note opening.

Specs: https://c2sp.org/signed-note, https://c2sp.org/tlog-cosignature. Behaviour
follows the reference implementation, golang.org/x/mod ``sumdb/note`` (``Open``,
``Sign``, ``NewVerifier``, ``NewSigner``), whose tests are among our vectors.

Wire format::

    <text, every line ending in "\\n">
    \\n
    — <key name> <base64(key ID[4] || signature)>\\n     (one or more)

Invariants:

* The text includes its final newline; the split from the signatures is at the
  LAST ``"\\n\\n"``. A signature covers the text only.
* A note is valid UTF-8 without ASCII control characters other than ``\\n``.
* A signature is attributed to a verifier by the pair (key name, key ID). Lines
  from unknown keys are returned as unverified and never trusted. A known key
  whose signature fails rejects the whole note: a log or witness key signing
  garbage is an incident, not noise. At least one known signature must verify.
* At most 100 signature lines are parsed; identical repeated lines are dropped;
  two configured verifiers with the same (name, key ID) are refused (ambiguous).
* Key strings are parsed strictly: 8 lowercase hex digits, canonical base64, a key
  ID that matches the key. Every mangling of a valid vkey is rejected.

Signature types (first byte of the vkey's key material):

* ``0x01`` Ed25519 over the text; key ID = SHA-256(name || "\\n" || 0x01 || pk)[:4].
* ``0x02`` ECDSA P-256 (verification only; Rekor v1 style): DER signature over
  SHA-256(text); key ID = SHA-256(DER SubjectPublicKeyInfo)[:4].
* ``0x04`` tlog-cosignature/v1: Ed25519 over
  ``"cosignature/v1\\ntime <ts>\\n" || text``; the signature field is
  ``timestamp(uint64 BE) || sig(64)``; key ID as for Ed25519 with 0x04.

Errors: every rejection raises :class:`vault.errors.SignatureError` (or a subclass
below). Messages carry detail for the log; clients should be told one opaque thing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from vault.errors import SignatureError

__all__ = [
    "MAX_SIGNATURES",
    "SIG_COSIGNATURE_V1",
    "SIG_ECDSA",
    "SIG_ED25519",
    "AmbiguousKeyError",
    "CosignatureSigner",
    "CosignatureVerifier",
    "ECDSAVerifier",
    "Ed25519Verifier",
    "MalformedNoteError",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "OpenedNote",
    "Signer",
    "UnverifiedNoteError",
    "cosignature_message",
    "generate_key",
    "key_id",
    "open_note",
    "parse_signature_line",
    "sign_note",
    "verifier_from_vkey",
]

SIG_ED25519 = 0x01
SIG_ECDSA = 0x02
SIG_COSIGNATURE_V1 = 0x04
MAX_SIGNATURES = 100  # Go's note.Open limit; the spec requires accepting at least 16
_SIG_PREFIX = "— "  # em dash U+2014, then a space
_ED25519_KEY_SIZE = 32
_ED25519_SIG_SIZE = 64
_COSIG_SIZE = 8 + _ED25519_SIG_SIZE


class MalformedNoteError(SignatureError):
    """The note, a signature line or a key string does not parse."""


class UnverifiedNoteError(SignatureError):
    """No signature from a known key: the note is not trusted."""


class AmbiguousKeyError(SignatureError):
    """Two configured verifiers share one (name, key ID)."""


# --------------------------------------------------------------------------------------
# Strict encodings
# --------------------------------------------------------------------------------------

_HEX8_RE = re.compile(r"[0-9a-f]{8}")
_B64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _b64decode(s: str) -> bytes:
    """Standard base64 with padding, canonical only (one spelling per byte string)."""
    if not s or len(s) % 4 or not _B64_RE.fullmatch(s):
        raise ValueError("not canonical base64")
    try:
        raw = base64.b64decode(s, validate=True)
    except binascii.Error as e:
        raise ValueError("not canonical base64") from e
    if base64.b64encode(raw).decode("ascii") != s:
        raise ValueError("not canonical base64")
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _is_valid_name(name: str) -> bool:
    """Non-empty, no Unicode space, no '+', no control character (signed-note §keys)."""
    return (
        bool(name)
        and "+" not in name
        and not any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in name)
    )


def _check_note_chars(text: str) -> None:
    for c in text:
        o = ord(c)
        if (o < 0x20 and c != "\n") or o == 0x7F:
            raise MalformedNoteError("malformed note: control character")
        if 0xD800 <= o <= 0xDFFF:
            raise MalformedNoteError("malformed note: invalid UTF-8")


def key_id(name: str, sig_type: int, public_key: bytes) -> int:
    """C2SP key ID: ``SHA-256(name || 0x0A || sig_type || public_key)[:4]`` as uint32."""
    d = hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()
    return int.from_bytes(d[:4], "big")


def _format_vkey(name: str, kid: int, sig_type: int, key: bytes) -> str:
    return f"{name}+{kid:08x}+{_b64encode(bytes([sig_type]) + key)}"


def _split_vkey(vkey: str) -> tuple[str, int, bytes]:
    """``name+hex8+base64`` -> (name, key ID, key material incl. type byte)."""
    bad = MalformedNoteError("malformed verifier key")
    name, sep1, rest = vkey.partition("+")
    hex8, sep2, b64 = rest.partition("+")
    if not (sep1 and sep2 and _is_valid_name(name) and _HEX8_RE.fullmatch(hex8)):
        raise bad
    try:
        key = _b64decode(b64)
    except ValueError as e:
        raise bad from e
    if len(key) < 2:
        raise bad
    return name, int(hex8, 16), key


# --------------------------------------------------------------------------------------
# Verifiers
# --------------------------------------------------------------------------------------


class NoteVerifier(Protocol):
    """Checks signatures of one key; matched to lines by (name, key_id)."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def verify(self, text: bytes, signature: bytes) -> None:
        """Return ``None`` if ``signature`` (key ID stripped) is valid over ``text``; else raise."""
        ...


class Ed25519Verifier:
    """Signature type 0x01: plain Ed25519 (RFC 8032) over the note text."""

    sig_type = SIG_ED25519

    def __init__(self, name: str, public_key: bytes) -> None:
        if not _is_valid_name(name):
            raise MalformedNoteError("invalid key name")
        if len(public_key) != _ED25519_KEY_SIZE:
            raise MalformedNoteError("Ed25519 public key must be 32 bytes")
        self._name = name
        self._public_key = bytes(public_key)
        self._key = Ed25519PublicKey.from_public_bytes(public_key)
        self._key_id = key_id(name, self.sig_type, public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> Ed25519Verifier:
        name, kid, key = _split_vkey(vkey)
        if key[0] != cls.sig_type or len(key) != 1 + _ED25519_KEY_SIZE:
            raise MalformedNoteError("malformed verifier key")
        v = cls(name, key[1:])
        if v.key_id != kid:
            raise MalformedNoteError("verifier key ID does not match the key")
        return v

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> int:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        return self._public_key

    @property
    def vkey(self) -> str:
        return _format_vkey(self._name, self._key_id, self.sig_type, self._public_key)

    def verify(self, text: bytes, signature: bytes) -> None:
        if len(signature) != _ED25519_SIG_SIZE:
            raise SignatureError("invalid signature: wrong length")
        try:
            self._key.verify(signature, text)
        except InvalidSignature:
            raise SignatureError("invalid signature") from None


class CosignatureVerifier(Ed25519Verifier):
    """Signature type 0x04: tlog-cosignature/v1, a timestamped Ed25519 signature.

    ``verify`` takes the 72-byte ``timestamp || signature`` field. What it proves: at
    that time the cosigner had seen no tree for this origin inconsistent with the
    checkpoint. Whether the timestamp is acceptable (not in the future, fresh
    enough) is the caller's policy; see :meth:`timestamp_of`.
    """

    sig_type = SIG_COSIGNATURE_V1

    @staticmethod
    def timestamp_of(signature: bytes) -> int:
        """The POSIX timestamp of a cosignature field (key ID already stripped)."""
        if len(signature) != _COSIG_SIZE:
            raise SignatureError("invalid cosignature: wrong length")
        ts = int.from_bytes(signature[:8], "big")
        if ts >= 1 << 63:
            raise SignatureError("invalid cosignature: timestamp out of range")
        return ts

    def verify(self, text: bytes, signature: bytes) -> None:
        ts = self.timestamp_of(signature)
        super().verify(cosignature_message(text, ts), signature[8:])


def cosignature_message(text: bytes, timestamp: int) -> bytes:
    """What a cosignature/v1 signs: ``"cosignature/v1\\ntime <ts>\\n" || checkpoint text``."""
    return b"cosignature/v1\ntime %d\n" % timestamp + text


class ECDSAVerifier:
    """Signature type 0x02: ECDSA P-256 / SHA-256, DER signatures (Rekor v1 checkpoints).

    Verification only; the vault signs with Ed25519. The key material is a DER
    SubjectPublicKeyInfo and the key ID is SHA-256 of it (no name), per
    transparency-dev/formats.
    """

    sig_type = SIG_ECDSA

    def __init__(self, name: str, spki_der: bytes) -> None:
        bad = MalformedNoteError("malformed ECDSA verifier key")
        if not _is_valid_name(name):
            raise bad
        try:
            key = serialization.load_der_public_key(spki_der)
        except ValueError as e:
            raise bad from e
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise bad
        canonical = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if canonical != spki_der:
            raise bad
        self._name = name
        self._key = key
        self._spki = bytes(spki_der)
        self._key_id = int.from_bytes(hashlib.sha256(spki_der).digest()[:4], "big")

    @classmethod
    def from_vkey(cls, vkey: str) -> ECDSAVerifier:
        name, kid, key = _split_vkey(vkey)
        if key[0] != cls.sig_type:
            raise MalformedNoteError("malformed verifier key")
        v = cls(name, key[1:])
        if v.key_id != kid:
            raise MalformedNoteError("verifier key ID does not match the key")
        return v

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> int:
        return self._key_id

    @property
    def vkey(self) -> str:
        return _format_vkey(self._name, self._key_id, self.sig_type, self._spki)

    def verify(self, text: bytes, signature: bytes) -> None:
        try:
            self._key.verify(signature, text, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            raise SignatureError("invalid signature") from None


def verifier_from_vkey(vkey: str) -> Ed25519Verifier | ECDSAVerifier:
    """Parse a vkey string, dispatching on its signature type byte (0x01, 0x02, 0x04)."""
    _, _, key = _split_vkey(vkey)
    if key[0] == SIG_ED25519:
        return Ed25519Verifier.from_vkey(vkey)
    if key[0] == SIG_COSIGNATURE_V1:
        return CosignatureVerifier.from_vkey(vkey)
    if key[0] == SIG_ECDSA:
        return ECDSAVerifier.from_vkey(vkey)
    raise MalformedNoteError(f"unsupported signature type 0x{key[0]:02x}")


# --------------------------------------------------------------------------------------
# Signers
# --------------------------------------------------------------------------------------


class NoteSigner(Protocol):
    """Produces one signature line for a note text (an HSM/KMS adapter fits here)."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def sign(self, text: str) -> str:
        """The line ``— <name> <base64(key ID || sig)>\\n`` over ``text``."""
        ...


def _parse_skey(skey: str, sig_type: int) -> tuple[str, bytes]:
    """``PRIVATE+KEY+<name>+<hex8>+<base64(type || 32-byte seed)>`` -> (name, seed)."""
    bad = MalformedNoteError("malformed private key string")
    parts = skey.split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise bad
    _, _, name, hex8, b64 = parts
    if not _is_valid_name(name) or not _HEX8_RE.fullmatch(hex8):
        raise bad
    try:
        raw = _b64decode(b64)
    except ValueError as e:
        raise bad from e
    if len(raw) != 1 + _ED25519_KEY_SIZE or raw[0] != sig_type:
        raise bad
    seed = raw[1:]
    pk = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    if key_id(name, sig_type, pk) != int(hex8, 16):
        raise MalformedNoteError("private key ID does not match the key")
    return name, seed


class Signer:
    """Ed25519 note signer (type 0x01). Deterministic: same key and text, same bytes."""

    sig_type = SIG_ED25519

    def __init__(self, name: str, seed: bytes) -> None:
        if not _is_valid_name(name):
            raise ValueError("invalid key name")
        if len(seed) != _ED25519_KEY_SIZE:
            raise ValueError("Ed25519 seed must be 32 bytes")
        self._name = name
        self._seed = bytes(seed)
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self._public_key = self._key.public_key().public_bytes_raw()
        self._key_id = key_id(name, self.sig_type, self._public_key)

    @classmethod
    def from_skey(cls, skey: str) -> Signer:
        """Parse golang.org/x/mod's ``PRIVATE+KEY+name+hex8+base64(type||seed)`` string."""
        return cls(*_parse_skey(skey, cls.sig_type))

    def __repr__(self) -> str:  # never print the seed
        return f"{type(self).__name__}({self._name!r}, key_id={self._key_id:08x})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> int:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        return self._public_key

    @property
    def vkey(self) -> str:
        return _format_vkey(self._name, self._key_id, self.sig_type, self._public_key)

    @property
    def skey(self) -> str:
        """The private key string. Secret: store it like any other signing key."""
        return "PRIVATE+KEY+" + _format_vkey(self._name, self._key_id, self.sig_type, self._seed)

    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(self._name, self._public_key)

    def _line(self, sig: bytes) -> str:
        return f"{_SIG_PREFIX}{self._name} {_b64encode(self._key_id.to_bytes(4, 'big') + sig)}\n"

    def sign(self, text: str) -> str:
        _check_text(text)
        return self._line(self._key.sign(text.encode()))


class CosignatureSigner(Signer):
    """tlog-cosignature/v1 signer (type 0x04), for a witness cosigning checkpoints.

    The cosigner's name is not covered by the signature, so one key must serve one
    cosigner identity only. The timestamp is explicit: this module never reads the
    clock.
    """

    sig_type = SIG_COSIGNATURE_V1

    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self._name, self._public_key)

    def sign(self, text: str, *, timestamp: int | None = None) -> str:
        """The cosignature line over checkpoint ``text`` at POSIX ``timestamp`` (required)."""
        if timestamp is None:
            raise ValueError("a cosignature needs an explicit timestamp")
        if not 0 < timestamp < 1 << 63:
            raise ValueError("cosignature timestamp must be in 1..2**63-1")
        _check_text(text)
        ts = timestamp.to_bytes(8, "big")
        return self._line(ts + self._key.sign(cosignature_message(text.encode(), timestamp)))


def generate_key(name: str, *, cosigner: bool = False) -> tuple[str, str]:
    """A fresh ``(skey, vkey)`` pair (like Go's ``note.GenerateKey``), from os.urandom."""
    cls = CosignatureSigner if cosigner else Signer
    s = cls(name, os.urandom(_ED25519_KEY_SIZE))
    return s.skey, s.vkey


# --------------------------------------------------------------------------------------
# Notes
# --------------------------------------------------------------------------------------


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise MalformedNoteError("malformed note: text must end with a newline")
    _check_note_chars(text)


def sign_note(text: str, signers: Sequence[NoteSigner]) -> str:
    """``text + "\\n" + one signature line per signer``. Needs at least one signer."""
    _check_text(text)
    if not signers:
        raise ValueError("a note needs at least one signer")
    seen: set[tuple[str, int]] = set()
    lines: list[str] = []
    for s in signers:
        if (s.name, s.key_id) in seen:
            raise AmbiguousKeyError(f"ambiguous key {s.name}+{s.key_id:08x}")
        seen.add((s.name, s.key_id))
        lines.append(s.sign(text))
    return text + "\n" + "".join(lines)


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line. ``signature`` excludes the 4-byte key ID."""

    name: str
    key_id: int
    signature: bytes

    @property
    def line(self) -> str:
        b64 = _b64encode(self.key_id.to_bytes(4, "big") + self.signature)
        return f"{_SIG_PREFIX}{self.name} {b64}\n"

    @property
    def cosignature_timestamp(self) -> int:
        """Timestamp of a tlog-cosignature/v1 field; raises if it is not one."""
        return CosignatureVerifier.timestamp_of(self.signature)


@dataclass(frozen=True, slots=True)
class OpenedNote:
    """A note whose known signatures all verified (at least one)."""

    text: str
    verified: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...]

    def verified_names(self) -> list[str]:
        return [s.name for s in self.verified]


def parse_signature_line(line: str) -> NoteSignature:
    """Parse ``— <name> <base64(key ID || sig)>`` (without the trailing newline)."""
    bad = MalformedNoteError("malformed note: bad signature line")
    if not line.startswith(_SIG_PREFIX):
        raise bad
    name, _, b64 = line[len(_SIG_PREFIX) :].partition(" ")
    if not _is_valid_name(name):
        raise bad
    try:
        raw = _b64decode(b64)
    except ValueError as e:
        raise bad from e
    if len(raw) < 5:
        raise bad
    return NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:])


def _index_verifiers(verifiers: Iterable[NoteVerifier]) -> dict[tuple[str, int], NoteVerifier]:
    known: dict[tuple[str, int], NoteVerifier] = {}
    for v in verifiers:
        k = (v.name, v.key_id)
        if k in known:
            raise AmbiguousKeyError(f"ambiguous key {v.name}+{v.key_id:08x}")
        known[k] = v
    return known


def open_note(note: str | bytes, verifiers: Iterable[NoteVerifier]) -> OpenedNote:
    """Parse ``note`` and verify it against ``verifiers`` (golang ``note.Open`` rules).

    Returns the text with the verified and the unknown signatures, or raises:
    :class:`MalformedNoteError`, :class:`AmbiguousKeyError`,
    :class:`UnverifiedNoteError` (no known key signed), or
    :class:`vault.errors.SignatureError` (a known key's signature is invalid).
    """
    known = _index_verifiers(verifiers)
    if isinstance(note, bytes | bytearray):
        try:
            note = bytes(note).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedNoteError("malformed note: invalid UTF-8") from None
    _check_note_chars(note)
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("malformed note: no signature block")
    text, sigs = note[: split + 1], note[split + 2 :]
    if not sigs.endswith("\n"):
        raise MalformedNoteError("malformed note: missing final newline")
    lines = sigs[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(f"malformed note: more than {MAX_SIGNATURES} signatures")

    text_bytes = text.encode()
    verified: list[NoteSignature] = []
    unverified: list[NoteSignature] = []
    seen_known: set[tuple[str, int]] = set()
    seen_unknown: set[str] = set()
    for line in lines:
        sig = parse_signature_line(line)
        v = known.get((sig.name, sig.key_id))
        if v is None:
            if line not in seen_unknown:
                seen_unknown.add(line)
                unverified.append(sig)
            continue
        if (sig.name, sig.key_id) in seen_known:
            continue  # Go keeps the first signature by a key and drops the rest
        seen_known.add((sig.name, sig.key_id))
        try:
            v.verify(text_bytes, sig.signature)
        except SignatureError:
            raise SignatureError(
                f"invalid signature from known key {sig.name}+{sig.key_id:08x}"
            ) from None
        verified.append(sig)
    if not verified:
        raise UnverifiedNoteError("note has no verifiable signatures")
    return OpenedNote(text, tuple(verified), tuple(unverified))
