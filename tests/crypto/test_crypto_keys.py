"""Key ring, applicant/data key wrapping, sealed secrets, rotation, crypto-shredding."""

from __future__ import annotations

import base64
import json
import os
import stat
import uuid
from pathlib import Path

import pytest

from vault.crypto.envelope import EncryptionContext, decrypt_stream, encrypt_stream
from vault.crypto.keys import (
    KeyRing,
    WrappedKey,
    new_applicant_key,
    new_data_key,
    open_secret,
    reseal_secret,
    rewrap,
    seal_secret,
    sealed_secret_kek_version,
    unwrap_applicant_key,
    unwrap_data_key,
    wrap_applicant_key,
    wrap_data_key,
)
from vault.errors import ConfigurationError, DecryptionError

ACCOUNT = str(uuid.uuid4())
OTHER_ACCOUNT = str(uuid.uuid4())
DOCUMENT = str(uuid.uuid4())


# --- key ring file -----------------------------------------------------------------------


def test_generate_writes_0600_in_0700_dir_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "keyring.json"
    ring = KeyRing.generate(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    loaded = KeyRing.load(path)
    assert loaded.current_kek_version == 1
    assert loaded.kek(1) == ring.kek(1)
    assert loaded.log_signing_seed == ring.log_signing_seed
    assert len(loaded.log_signing_seed) == 32
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind


def test_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    KeyRing.generate(path)
    before = path.read_bytes()
    with pytest.raises(ConfigurationError):
        KeyRing.generate(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o666])
def test_keyring_file_world_readable_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "keyring.json"
    KeyRing.generate(path)
    path.chmod(mode)
    with pytest.raises(ConfigurationError):
        KeyRing.load(path)


def test_missing_keyring_is_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        KeyRing.load(tmp_path / "absent.json")


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b"[]", b'{"format": "x"}', b'{"format": "ofpra-vault/keyring"}'],
)
def test_malformed_keyring_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "keyring.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content)
    os.close(fd)
    with pytest.raises(ConfigurationError):
        KeyRing.load(path)


def test_short_kek_refused() -> None:
    doc = json.loads(KeyRing.new().to_json())
    doc["keks"]["1"] = base64.b64encode(b"short").decode()
    with pytest.raises(ConfigurationError):
        KeyRing.from_json(json.dumps(doc).encode())


def test_current_version_must_exist() -> None:
    doc = json.loads(KeyRing.new().to_json())
    doc["current_kek"] = 7
    with pytest.raises(ConfigurationError):
        KeyRing.from_json(json.dumps(doc).encode())


def test_from_env_round_trip() -> None:
    ring = KeyRing.new()
    again = KeyRing.from_env(ring.to_env())
    assert again.kek(1) == ring.kek(1)
    assert again.log_signing_seed == ring.log_signing_seed
    with pytest.raises(ConfigurationError):
        KeyRing.from_env("%%% not base64 %%%")


def test_repr_shows_no_key_material() -> None:
    ring = KeyRing.new()
    text = repr(ring)
    assert base64.b64encode(ring.kek(1)).decode() not in text
    assert ring.kek(1).hex() not in text


def test_rotate_persists_atomically(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    ring = KeyRing.generate(path)
    assert ring.rotate() == 2
    assert ring.current_kek_version == 2
    loaded = KeyRing.load(path)
    assert loaded.current_kek_version == 2
    assert loaded.kek_versions == (1, 2)
    assert loaded.kek(1) == ring.kek(1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [path]


def test_retire_only_when_unused(tmp_path: Path) -> None:
    ring = KeyRing.generate(tmp_path / "keyring.json")
    ring.rotate()
    with pytest.raises(ConfigurationError):
        ring.retire(2, remaining_wrapped=0)  # current
    with pytest.raises(ConfigurationError):
        ring.retire(1, remaining_wrapped=3)
    ring.retire(1, remaining_wrapped=0)
    assert KeyRing.load(tmp_path / "keyring.json").kek_versions == (2,)


def test_log_signing_seed_rotation_keeps_old_seeds() -> None:
    ring = KeyRing.new()
    old = ring.log_signing_seed
    assert ring.rotate_log_signing_seed() == 2
    assert ring.log_signing_seed != old
    assert ring.log_signing_seed_for(1) == old
    assert KeyRing.from_json(ring.to_json()).log_signing_versions == (1, 2)


# --- applicant keys ------------------------------------------------------------------------


def test_applicant_key_round_trip_and_storage_form() -> None:
    ring = KeyRing.new()
    key = new_applicant_key()
    wrapped = wrap_applicant_key(ring, key, ACCOUNT)
    assert wrapped.kek_version == 1
    assert unwrap_applicant_key(ring, WrappedKey.from_bytes(wrapped.to_bytes()), ACCOUNT) == key


def test_wrapped_key_moved_to_other_account_rejected() -> None:
    ring = KeyRing.new()
    wrapped = wrap_applicant_key(ring, new_applicant_key(), ACCOUNT)
    with pytest.raises(DecryptionError):
        unwrap_applicant_key(ring, wrapped, OTHER_ACCOUNT)


def test_wrapped_key_relabelled_kek_version_rejected() -> None:
    ring = KeyRing.new()
    ring.rotate()
    wrapped = wrap_applicant_key(ring, new_applicant_key(), ACCOUNT)
    with pytest.raises(DecryptionError):
        unwrap_applicant_key(ring, WrappedKey(1, wrapped.blob), ACCOUNT)
    with pytest.raises(DecryptionError):
        unwrap_applicant_key(ring, WrappedKey(99, wrapped.blob), ACCOUNT)


def test_wrapped_key_under_other_ring_rejected() -> None:
    wrapped = wrap_applicant_key(KeyRing.new(), new_applicant_key(), ACCOUNT)
    with pytest.raises(DecryptionError):
        unwrap_applicant_key(KeyRing.new(), wrapped, ACCOUNT)


def test_wrapped_key_bit_flip_rejected() -> None:
    ring = KeyRing.new()
    wrapped = wrap_applicant_key(ring, new_applicant_key(), ACCOUNT)
    for i in range(len(wrapped.blob) * 8):
        blob = bytearray(wrapped.blob)
        blob[i // 8] ^= 1 << (i % 8)
        with pytest.raises(DecryptionError):
            unwrap_applicant_key(ring, WrappedKey(1, bytes(blob)), ACCOUNT)


def test_wrapping_nonces_are_fresh() -> None:
    ring = KeyRing.new()
    key = new_applicant_key()
    assert wrap_applicant_key(ring, key, ACCOUNT) != wrap_applicant_key(ring, key, ACCOUNT)


# --- data keys -------------------------------------------------------------------------------


def test_data_key_round_trip() -> None:
    applicant = new_applicant_key()
    data_key = new_data_key()
    wrapped = wrap_data_key(applicant, data_key, ACCOUNT, DOCUMENT)
    assert len(wrapped) == 60
    assert unwrap_data_key(applicant, wrapped, ACCOUNT, DOCUMENT) == data_key


def test_wrapped_data_key_moved_to_other_document_or_account_rejected() -> None:
    applicant = new_applicant_key()
    wrapped = wrap_data_key(applicant, new_data_key(), ACCOUNT, DOCUMENT)
    with pytest.raises(DecryptionError):
        unwrap_data_key(applicant, wrapped, ACCOUNT, str(uuid.uuid4()))
    with pytest.raises(DecryptionError):
        unwrap_data_key(applicant, wrapped, OTHER_ACCOUNT, DOCUMENT)
    with pytest.raises(DecryptionError):
        unwrap_data_key(new_applicant_key(), wrapped, ACCOUNT, DOCUMENT)


def test_wrapped_data_key_is_not_an_applicant_key() -> None:
    """Domain separation: a blob of one kind never opens as another kind."""
    ring = KeyRing.new()
    wrapped = wrap_applicant_key(ring, new_applicant_key(), ACCOUNT)
    with pytest.raises(DecryptionError):
        unwrap_data_key(ring.kek(1), wrapped.blob, ACCOUNT, DOCUMENT)
    with pytest.raises(DecryptionError):
        open_secret(ring, wrapped.to_bytes(), "applicant-key", ACCOUNT)


# --- rotation and shredding -------------------------------------------------------------------


def _post(ring: KeyRing, content: bytes) -> tuple[WrappedKey, bytes, bytes, EncryptionContext]:
    applicant = new_applicant_key()
    wrapped_applicant = wrap_applicant_key(ring, applicant, ACCOUNT)
    data_key = new_data_key()
    ctx = EncryptionContext(ACCOUNT, DOCUMENT, wrapped_applicant.kek_version)
    ciphertext = b"".join(encrypt_stream(data_key, ctx, [content], chunk_size=1024))
    wrapped_data = wrap_data_key(applicant, data_key, ACCOUNT, DOCUMENT)
    return wrapped_applicant, wrapped_data, ciphertext, ctx


def _read(ring: KeyRing, wa: WrappedKey, wd: bytes, ct: bytes, ctx: EncryptionContext) -> bytes:
    applicant = unwrap_applicant_key(ring, wa, ACCOUNT)
    data_key = unwrap_data_key(applicant, wd, ACCOUNT, DOCUMENT)
    return b"".join(decrypt_stream(data_key, ctx, [ct]))


def test_rotation_rewrap_keeps_content_decryptable_without_reencrypting(tmp_path: Path) -> None:
    ring = KeyRing.generate(tmp_path / "keyring.json")
    content = os.urandom(5000)
    wrapped_applicant, wrapped_data, ciphertext, ctx = _post(ring, content)
    frozen_ciphertext, frozen_data = bytes(ciphertext), bytes(wrapped_data)

    ring.rotate()
    rewrapped = rewrap(ring, wrapped_applicant, ACCOUNT)
    assert rewrapped.kek_version == 2
    assert rewrap(ring, rewrapped, ACCOUNT) is rewrapped  # idempotent
    ring.retire(1, remaining_wrapped=0)

    reloaded = KeyRing.load(tmp_path / "keyring.json")
    # Only the 60-byte applicant wrap changed; the data key wrap and the content did
    # not, and the content's context still names the key version it was posted with.
    assert _read(reloaded, rewrapped, frozen_data, frozen_ciphertext, ctx) == content
    with pytest.raises(DecryptionError):
        unwrap_applicant_key(reloaded, wrapped_applicant, ACCOUNT)  # old KEK is gone


def test_crypto_shredding_destroyed_applicant_key_makes_documents_unreadable() -> None:
    ring = KeyRing.new()
    content = b"decision"
    wrapped_applicant, wrapped_data, ciphertext, ctx = _post(ring, content)
    assert _read(ring, wrapped_applicant, wrapped_data, ciphertext, ctx) == content
    # Shredding = deleting the wrapped applicant key. A fresh key for the same account
    # (e.g. a re-created account) opens nothing of the old documents.
    replacement = wrap_applicant_key(ring, new_applicant_key(), ACCOUNT)
    with pytest.raises(DecryptionError):
        _read(ring, replacement, wrapped_data, ciphertext, ctx)


# --- sealed secrets ------------------------------------------------------------------------------


def test_sealed_secret_round_trip_and_binding() -> None:
    ring = KeyRing.new()
    blob = seal_secret(ring, b"7KQ4-XM2D-9TGB-RW5C-HN8P", "connection-key", ACCOUNT)
    assert sealed_secret_kek_version(blob) == 1
    assert open_secret(ring, blob, "connection-key", ACCOUNT) == b"7KQ4-XM2D-9TGB-RW5C-HN8P"
    with pytest.raises(DecryptionError):
        open_secret(ring, blob, "connection-key", OTHER_ACCOUNT)
    with pytest.raises(DecryptionError):
        open_secret(ring, blob, "smtp-password", ACCOUNT)
    with pytest.raises(DecryptionError):
        open_secret(ring, blob[:10], "connection-key", ACCOUNT)


def test_sealed_secret_reseal_after_rotation() -> None:
    ring = KeyRing.new()
    blob = seal_secret(ring, b"secret", "connection-key", ACCOUNT)
    ring.rotate()
    resealed = reseal_secret(ring, blob, "connection-key", ACCOUNT)
    assert sealed_secret_kek_version(resealed) == 2
    assert reseal_secret(ring, resealed, "connection-key", ACCOUNT) is resealed
    ring.retire(1, remaining_wrapped=0)
    assert open_secret(ring, resealed, "connection-key", ACCOUNT) == b"secret"
    with pytest.raises(DecryptionError):
        open_secret(ring, blob, "connection-key", ACCOUNT)


def test_sealed_secret_version_prefix_tamper_rejected() -> None:
    ring = KeyRing.new()
    ring.rotate()
    blob = seal_secret(ring, b"secret", "p", "c")
    with pytest.raises(DecryptionError):
        open_secret(ring, (1).to_bytes(4, "big") + blob[4:], "p", "c")


def test_uuid_spelling_does_not_matter_for_wrapping() -> None:
    ring = KeyRing.new()
    key = new_applicant_key()
    wrapped = wrap_applicant_key(ring, key, ACCOUNT.upper())
    assert unwrap_applicant_key(ring, wrapped, ACCOUNT) == key
    data_key = new_data_key()
    blob = wrap_data_key(key, data_key, ACCOUNT, "{" + DOCUMENT + "}")
    assert unwrap_data_key(key, blob, ACCOUNT.upper(), DOCUMENT) == data_key
    with pytest.raises(ValueError):
        wrap_applicant_key(ring, key, "agdref-1234")
