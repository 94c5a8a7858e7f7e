"""The key hierarchy: key ring (KEKs) -> applicant keys -> document data keys.

::

    KeyRing.keks[v]            32-byte key-encryption keys, versioned; one is current
      └─ applicant key         32 bytes, one per account, stored wrapped (WrappedKey)
           └─ data key         32 bytes, one per document, stored wrapped
                └─ OVB1 chunks the document (vault.crypto.envelope)
    KeyRing.log_signing_seeds  Ed25519 seeds of the ledger's checkpoint signer
    seal_secret / open_secret  small secrets in the database, sealed by the current KEK

Invariants:

* Account and document ids are UUIDs, bound in canonical form (lower case, hyphens).
* Every wrap is AES-256-GCM with a fresh random 96-bit nonce and associated data
  that names what the key is for and whose it is (length-prefixed fields, see
  ``_aad``). A wrapped key or sealed secret copied to another account, document,
  purpose or KEK version fails to open, with the same opaque
  :class:`~vault.errors.DecryptionError` as any other failure.
* Rotation (:meth:`KeyRing.rotate` then :func:`rewrap` / :func:`reseal_secret`)
  re-encrypts only 32-byte keys and small secrets, never document content: the
  applicant key, hence every data key and every ciphertext, is unchanged.
* Destroying an applicant key (deleting its wrapped form) makes every document of
  that account unreadable: crypto-shredding. Nothing else holds it.
* A KEK is removed (:meth:`KeyRing.retire`) only when the caller states that no
  wrapped key or sealed secret still uses it; this module cannot see the database.
* The key ring file is written atomically (temp file, fsync, rename, fsync of the
  directory) with mode 0600, and refused on load if group or others may read it.

The module touches the disk only in the key ring's own ``generate`` / ``load`` /
``save`` methods; everything else takes and returns bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import stat
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.crypto._ids import canonical_uuid
from vault.errors import ConfigurationError, DecryptionError, VaultError

__all__ = [
    "KEY_SIZE",
    "KeyRing",
    "WrappedKey",
    "new_applicant_key",
    "new_data_key",
    "open_secret",
    "reseal_secret",
    "rewrap",
    "seal_secret",
    "sealed_secret_kek_version",
    "unwrap_applicant_key",
    "unwrap_data_key",
    "wrap_applicant_key",
    "wrap_data_key",
]

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
_FILE_FORMAT = "ofpra-vault/keyring"
_FILE_VERSION = 1
_OPAQUE = "Decryption failed"

# Domain-separation labels, first field of every associated data.
_LABEL_APPLICANT = b"applicant-key"
_LABEL_DATA = b"data-key"
_LABEL_SECRET = b"sealed-secret"


def _aad(*fields: bytes) -> bytes:
    """Length-prefixed concatenation: no two field lists give the same bytes."""
    return b"".join(struct.pack(">H", len(f)) + f for f in fields)


def _u32(n: int) -> bytes:
    return struct.pack(">I", n)


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_SIZE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < NONCE_SIZE + TAG_SIZE:
        raise DecryptionError(_OPAQUE)
    try:
        return AESGCM(key).decrypt(blob[:NONCE_SIZE], blob[NONCE_SIZE:], aad)
    except InvalidTag:
        raise DecryptionError(_OPAQUE) from None


def _check_key(key: bytes, what: str) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_SIZE:
        raise ValueError(f"{what} must be {KEY_SIZE} bytes")


# --- key ring --------------------------------------------------------------------------


class KeyRing:
    """Versioned key-encryption keys and the ledger's signing seeds.

    Versions are positive integers; the highest is not necessarily current (a
    rotation could in principle be rolled back by editing the file), ``current``
    says which one wraps new keys. A ring loaded from a file remembers its path and
    :meth:`rotate` / :meth:`retire` persist to it atomically; a ring from the
    environment changes only in memory and is exported with :meth:`to_env`.
    """

    __slots__ = ("_current_kek", "_current_log", "_keks", "_log_seeds", "path")

    def __init__(
        self,
        keks: Mapping[int, bytes],
        current_kek_version: int,
        log_signing_seeds: Mapping[int, bytes],
        current_log_signing_version: int,
        *,
        path: Path | None = None,
    ) -> None:
        self._keks = _checked_versions(keks, "KEK")
        self._log_seeds = _checked_versions(log_signing_seeds, "log signing seed")
        if current_kek_version not in self._keks:
            raise ConfigurationError("key ring: the current KEK version is missing")
        if current_log_signing_version not in self._log_seeds:
            raise ConfigurationError("key ring: the current log signing seed is missing")
        self._current_kek = current_kek_version
        self._current_log = current_log_signing_version
        self.path = path

    def __repr__(self) -> str:  # never print key material
        return (
            f"KeyRing(kek_versions={sorted(self._keks)}, current={self._current_kek}, "
            f"log_signing_versions={sorted(self._log_seeds)}, path={self.path!r})"
        )

    # -- constructors ------------------------------------------------------------------

    @classmethod
    def new(cls) -> KeyRing:
        """A fresh in-memory ring: KEK version 1 and log signing seed version 1."""
        return cls({1: secrets.token_bytes(KEY_SIZE)}, 1, {1: secrets.token_bytes(KEY_SIZE)}, 1)

    @classmethod
    def generate(cls, path: str | os.PathLike[str]) -> KeyRing:
        """Create a new ring and write it to ``path`` (mode 0600), never overwriting.

        Missing parent directories are created with mode 0700. An existing file at
        ``path`` is an error: overwriting a key ring would shred every document.
        """
        ring = cls.new()
        ring.path = Path(path)
        _write_atomically(ring.path, ring.to_json(), overwrite=False)
        return ring

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeyRing:
        """Read a ring written by :meth:`generate` / :meth:`save`.

        Refuses (:class:`ConfigurationError`) a file that group or others may read or
        write: a key ring with loose permissions must be treated as exposed.
        """
        p = Path(path)
        try:
            fd = os.open(p, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise ConfigurationError(f"key ring {p} cannot be opened: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise ConfigurationError(f"key ring {p} is not a regular file")
            if mode & 0o077:
                raise ConfigurationError(
                    f"key ring {p} is accessible to group or others "
                    f"(mode {stat.S_IMODE(mode):04o}); run chmod 600 and treat the keys "
                    "as possibly exposed"
                )
            data = f.read()
        ring = cls.from_json(data)
        ring.path = p
        return ring

    @classmethod
    def from_env(cls, value: str) -> KeyRing:
        """A ring from an environment variable: base64 of the JSON file's content."""
        try:
            data = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigurationError("key ring variable is not valid base64") from None
        return cls.from_json(data)

    @classmethod
    def from_json(cls, data: bytes) -> KeyRing:
        try:
            doc = json.loads(data)
            if doc.get("format") != _FILE_FORMAT or doc.get("version") != _FILE_VERSION:
                raise ConfigurationError("key ring: unknown format or version")
            return cls(
                _decode_versions(doc["keks"]),
                int(doc["current_kek"]),
                _decode_versions(doc["log_signing_seeds"]),
                int(doc["current_log_signing"]),
            )
        except ConfigurationError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            # Deliberately no detail: the exception text could quote key material.
            raise ConfigurationError("key ring is malformed") from None

    # -- serialisation -----------------------------------------------------------------

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "format": _FILE_FORMAT,
            "version": _FILE_VERSION,
            "current_kek": self._current_kek,
            "keks": _encode_versions(self._keks),
            "current_log_signing": self._current_log,
            "log_signing_seeds": _encode_versions(self._log_seeds),
        }
        return json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"

    def to_env(self) -> str:
        return base64.b64encode(self.to_json()).decode("ascii")

    def save(self, path: str | os.PathLike[str] | None = None) -> None:
        """Write the ring atomically (replacing the file) to ``path`` or its own path."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ConfigurationError("key ring has no file to save to")
        _write_atomically(target, self.to_json(), overwrite=True)
        self.path = target

    # -- KEKs --------------------------------------------------------------------------

    @property
    def current_kek_version(self) -> int:
        return self._current_kek

    @property
    def kek_versions(self) -> tuple[int, ...]:
        return tuple(sorted(self._keks))

    def kek(self, version: int) -> bytes:
        """The KEK of ``version``; unknown versions fail like a bad ciphertext."""
        try:
            return self._keks[version]
        except KeyError:
            raise DecryptionError(_OPAQUE) from None

    def rotate(self) -> int:
        """Add a new KEK, make it current, persist; return its version.

        Existing wrapped keys still open with their old KEK; move them with
        :func:`rewrap` / :func:`reseal_secret`, then :meth:`retire` the old version.
        """
        version = max(self._keks) + 1
        keks = {**self._keks, version: secrets.token_bytes(KEY_SIZE)}
        self._commit(keks, version, self._log_seeds, self._current_log)
        return version

    def retire(self, version: int, *, remaining_wrapped: int) -> None:
        """Remove KEK ``version``. ``remaining_wrapped`` is the caller's count of keys
        and secrets still wrapped under it; anything but 0 is refused, as is the
        current version. A retired KEK is gone: what it still wrapped is lost.
        """
        if version not in self._keks:
            raise ConfigurationError(f"key ring has no KEK version {version}")
        if version == self._current_kek:
            raise ConfigurationError("the current KEK cannot be retired; rotate first")
        if remaining_wrapped != 0:
            raise ConfigurationError(
                f"KEK version {version} still wraps {remaining_wrapped} key(s); rewrap first"
            )
        keks = {v: k for v, k in self._keks.items() if v != version}
        self._commit(keks, self._current_kek, self._log_seeds, self._current_log)

    # -- log signing seeds -------------------------------------------------------------

    @property
    def log_signing_version(self) -> int:
        return self._current_log

    @property
    def log_signing_seed(self) -> bytes:
        """The current 32-byte Ed25519 seed of the ledger's checkpoint signer."""
        return self._log_seeds[self._current_log]

    def log_signing_seed_for(self, version: int) -> bytes:
        try:
            return self._log_seeds[version]
        except KeyError:
            raise ConfigurationError(f"key ring has no log signing seed {version}") from None

    @property
    def log_signing_versions(self) -> tuple[int, ...]:
        return tuple(sorted(self._log_seeds))

    def rotate_log_signing_seed(self) -> int:
        """Add a new log signing seed and make it current (old ones stay, to verify)."""
        version = max(self._log_seeds) + 1
        seeds = {**self._log_seeds, version: secrets.token_bytes(KEY_SIZE)}
        self._commit(self._keks, self._current_kek, seeds, version)
        return version

    def _commit(
        self,
        keks: dict[int, bytes],
        current_kek: int,
        seeds: dict[int, bytes],
        current_log: int,
    ) -> None:
        # Persist first, then change memory, so a failed write leaves both as they were.
        candidate = KeyRing(keks, current_kek, seeds, current_log)
        if self.path is not None:
            _write_atomically(self.path, candidate.to_json(), overwrite=True)
        self._keks, self._current_kek = keks, current_kek
        self._log_seeds, self._current_log = seeds, current_log


def _checked_versions(items: Mapping[int, bytes], what: str) -> dict[int, bytes]:
    if not items:
        raise ConfigurationError(f"key ring has no {what}")
    out: dict[int, bytes] = {}
    for version, key in items.items():
        if not isinstance(version, int) or not 0 < version < 2**32:
            raise ConfigurationError(f"key ring: {what} versions must be in [1, 2**32)")
        if not isinstance(key, bytes) or len(key) != KEY_SIZE:
            raise ConfigurationError(f"key ring: {what} version {version} is not 32 bytes")
        out[version] = key
    return out


def _encode_versions(items: Mapping[int, bytes]) -> dict[str, str]:
    return {str(v): base64.b64encode(k).decode("ascii") for v, k in sorted(items.items())}


def _decode_versions(items: Mapping[str, str]) -> dict[int, bytes]:
    return {int(v): base64.b64decode(k, validate=True) for v, k in items.items()}


def _write_atomically(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write ``data`` to ``path`` with mode 0600 so that a reader sees the old file or
    the new one, never a mixture, and the new one survives a crash once we return."""
    parent = path.parent
    if not parent.exists():
        parent.mkdir(mode=0o700, parents=True)
    if not overwrite and path.exists():
        raise ConfigurationError(f"key ring {path} already exists; refusing to overwrite")
    tmp = parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # the umask may have removed bits, never added: be explicit
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, path)
        else:
            # link() fails if the target exists: no window where we clobber a ring
            # created concurrently between the exists() check and now.
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise ConfigurationError(
                    f"key ring {path} already exists; refusing to overwrite"
                ) from None
            os.unlink(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# --- applicant keys ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """An applicant key encrypted under KEK ``kek_version``: ``nonce || ct || tag``."""

    kek_version: int
    blob: bytes

    def to_bytes(self) -> bytes:
        """One column's worth: ``kek_version (u32) || blob``."""
        return _u32(self.kek_version) + self.blob

    @classmethod
    def from_bytes(cls, data: bytes) -> WrappedKey:
        if len(data) < 4 + NONCE_SIZE + TAG_SIZE:
            raise DecryptionError(_OPAQUE)
        (version,) = struct.unpack(">I", data[:4])
        return cls(version, bytes(data[4:]))


def new_applicant_key() -> bytes:
    return secrets.token_bytes(KEY_SIZE)


def _applicant_aad(account_id: str, kek_version: int) -> bytes:
    account = canonical_uuid(account_id, "account_id")
    return _aad(_LABEL_APPLICANT, account.encode(), _u32(kek_version))


def wrap_applicant_key(ring: KeyRing, key: bytes, account_id: str) -> WrappedKey:
    """Wrap ``key`` for ``account_id`` under the ring's current KEK."""
    _check_key(key, "applicant key")
    version = ring.current_kek_version
    blob = _seal(ring.kek(version), key, _applicant_aad(account_id, version))
    return WrappedKey(version, blob)


class KeyDestroyed(VaultError):
    """The applicant key was crypto-shredded at the end of retention (vault/shred.py)."""

    code = "key_destroyed"
    status = 410
    title = "This document's key was destroyed at the end of its retention period"


def unwrap_applicant_key(ring: KeyRing, wrapped: WrappedKey, account_id: str) -> bytes:
    """The applicant key, or :class:`DecryptionError` (wrong account, KEK, tamper).

    An empty blob is a destroyed key (crypto-shredding, vault/shred.py): a clean
    410 problem rather than an integrity alarm."""
    if not wrapped.blob:
        raise KeyDestroyed()
    kek = ring.kek(wrapped.kek_version)
    key = _open(kek, wrapped.blob, _applicant_aad(account_id, wrapped.kek_version))
    if len(key) != KEY_SIZE:
        raise DecryptionError(_OPAQUE)
    return key


def rewrap(ring: KeyRing, wrapped: WrappedKey, account_id: str) -> WrappedKey:
    """Re-wrap under the current KEK (``keys rotate``); content is never re-encrypted.

    Returns ``wrapped`` itself when it already uses the current KEK.
    """
    if wrapped.kek_version == ring.current_kek_version:
        return wrapped
    return wrap_applicant_key(ring, unwrap_applicant_key(ring, wrapped, account_id), account_id)


# --- document data keys -----------------------------------------------------------------


def new_data_key() -> bytes:
    """A fresh key for exactly one document (one ``encrypt_stream`` call)."""
    return secrets.token_bytes(KEY_SIZE)


def _data_aad(account_id: str, document_id: str) -> bytes:
    account = canonical_uuid(account_id, "account_id")
    document = canonical_uuid(document_id, "document_id")
    return _aad(_LABEL_DATA, account.encode(), document.encode())


def wrap_data_key(
    applicant_key: bytes, data_key: bytes, account_id: str, document_id: str
) -> bytes:
    """``nonce || ct || tag`` (60 bytes), bound to the account and the document."""
    _check_key(applicant_key, "applicant key")
    _check_key(data_key, "data key")
    return _seal(applicant_key, data_key, _data_aad(account_id, document_id))


def unwrap_data_key(
    applicant_key: bytes, wrapped: bytes, account_id: str, document_id: str
) -> bytes:
    _check_key(applicant_key, "applicant key")
    key = _open(applicant_key, wrapped, _data_aad(account_id, document_id))
    if len(key) != KEY_SIZE:
        raise DecryptionError(_OPAQUE)
    return key


# --- small sealed secrets ----------------------------------------------------------------


def _secret_aad(purpose: str, context: str, kek_version: int) -> bytes:
    return _aad(_LABEL_SECRET, purpose.encode(), context.encode(), _u32(kek_version))


def seal_secret(ring: KeyRing, plaintext: bytes, purpose: str, context: str) -> bytes:
    """Encrypt a small secret for the database under the current KEK.

    ``purpose`` names the kind of secret (``"connection-key"``), ``context`` whose it
    is (an account id); both are bound, so a sealed value copied to another row or
    column does not open. Result: ``kek_version (u32) || nonce || ct || tag``.
    """
    if not purpose:
        raise ValueError("purpose must not be empty")
    version = ring.current_kek_version
    return _u32(version) + _seal(
        ring.kek(version), plaintext, _secret_aad(purpose, context, version)
    )


def sealed_secret_kek_version(blob: bytes) -> int:
    """Which KEK a sealed secret uses (for rotation and :meth:`KeyRing.retire`)."""
    if len(blob) < 4 + NONCE_SIZE + TAG_SIZE:
        raise DecryptionError(_OPAQUE)
    return int(struct.unpack(">I", blob[:4])[0])


def open_secret(ring: KeyRing, blob: bytes, purpose: str, context: str) -> bytes:
    version = sealed_secret_kek_version(blob)
    return _open(ring.kek(version), blob[4:], _secret_aad(purpose, context, version))


def reseal_secret(ring: KeyRing, blob: bytes, purpose: str, context: str) -> bytes:
    """Re-seal under the current KEK; returns ``blob`` unchanged if already current."""
    if sealed_secret_kek_version(blob) == ring.current_kek_version:
        return blob
    return seal_secret(ring, open_secret(ring, blob, purpose, context), purpose, context)
