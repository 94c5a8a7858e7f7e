"""C2SP signed-note / tlog-cosignature: every vector of note_vectors.json, and attacks."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vault.errors import SignatureError
from vault.ledger.checkpoint import Checkpoint
from vault.ledger.note import (
    AmbiguousKeyError,
    CosignatureSigner,
    CosignatureVerifier,
    Ed25519Verifier,
    MalformedNoteError,
    Signer,
    UnverifiedNoteError,
    generate_key,
    key_id,
    open_note,
    parse_signature_line,
    sign_note,
    verifier_from_vkey,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "data" / "vectors" / "note_vectors.json").read_text()
)


def _ids(key: str) -> list[Any]:
    return [pytest.param(v, id=v["id"]) for v in VECTORS[key]]


# --- vkeys ---------------------------------------------------------------------------


@pytest.mark.parametrize("v", _ids("vkeys"))
def test_vkey_vector(v: dict[str, Any]) -> None:
    if v["expect_valid"]:
        verifier = verifier_from_vkey(v["vkey"])
        assert verifier.vkey == v["vkey"]
    else:
        with pytest.raises(SignatureError):
            verifier_from_vkey(v["vkey"])


@pytest.mark.parametrize(
    "v", [pytest.param(v, id=v["id"]) for v in VECTORS["vkeys"] if v.get("all_mangles_invalid")]
)
def test_every_mangled_vkey_rejected(v: dict[str, Any]) -> None:
    # golang.org/x/mod sumdb/note TestNewVerifier: every proper substring and every
    # single byte incremented by one must be refused.
    b = v["vkey"].encode()
    for i in range(len(b) + 1):
        for j in range(i + 1, len(b) + 1):
            if i != 0 or j != len(b):
                with pytest.raises(SignatureError):
                    verifier_from_vkey(b[i:j].decode())
    for i in range(len(b)):
        mangled = b[:i] + bytes([b[i] + 1]) + b[i + 1 :]
        with pytest.raises(SignatureError):
            verifier_from_vkey(mangled.decode())


# --- notes ---------------------------------------------------------------------------


@pytest.mark.parametrize("v", _ids("notes"))
def test_note_vector(v: dict[str, Any]) -> None:
    note: str | bytes = v["note"] if "note" in v else base64.b64decode(v["note_b64"])
    expect = v["expect"]
    if not expect["ok"]:
        with pytest.raises(SignatureError) as exc:
            open_note(note, [verifier_from_vkey(k) for k in v["vkeys"]])
        if "error_contains" in expect:
            assert expect["error_contains"] in str(exc.value)
        return
    opened = open_note(note, [verifier_from_vkey(k) for k in v["vkeys"]])
    assert opened.verified_names() == expect["verified"]
    if "unverified" in expect:
        assert [s.name for s in opened.unverified] == expect["unverified"]
    if "checkpoint" in expect:
        cp = Checkpoint.parse(opened.text)
        want = expect["checkpoint"]
        assert (cp.origin, cp.size, base64.b64encode(cp.root_hash).decode()) == (
            want["origin"],
            want["size"],
            want["root"],
        )
        assert cp.to_text() == opened.text


# --- signing ---------------------------------------------------------------------------


@pytest.mark.parametrize("v", _ids("signing"))
def test_signing_vector_byte_exact(v: dict[str, Any]) -> None:
    signer = Signer.from_skey(v["skey"])
    assert signer.skey == v["skey"]
    note = sign_note(v["text"], [signer])
    assert note == v["expected_note"]
    assert open_note(note, [verifier_from_vkey(signer.vkey)]).text == v["text"]


@pytest.mark.parametrize("v", _ids("raw_ed25519"))
def test_raw_ed25519_vector(v: dict[str, Any]) -> None:
    verifier = Ed25519Verifier("sigsum", bytes.fromhex(v["pubkey"]))
    args = (v["message"].encode(), bytes.fromhex(v["signature"]))
    if v["expect"]:
        verifier.verify(*args)
    else:
        with pytest.raises(SignatureError):
            verifier.verify(*args)


@pytest.mark.parametrize("v", _ids("cosignatures"))
def test_cosignature_vector(v: dict[str, Any]) -> None:
    verifier = CosignatureVerifier("witness", bytes.fromhex(v["pubkey"]))
    field = v["timestamp"].to_bytes(8, "big") + bytes.fromhex(v["signature"])
    body = v["checkpoint_body"].encode()
    if v["expect"]:
        verifier.verify(body, field)
        assert CosignatureVerifier.timestamp_of(field) == v["timestamp"]
    else:
        with pytest.raises(SignatureError):
            verifier.verify(body, field)


@pytest.mark.parametrize("v", _ids("parse_only"))
def test_cosignature_line_framing_vector(v: dict[str, Any]) -> None:
    sig = parse_signature_line(v["line"])
    assert f"{sig.key_id:08x}" == v["expect"]["key_id"]
    assert 4 + len(sig.signature) == v["expect"]["len"]
    assert sig.cosignature_timestamp == v["expect"]["timestamp"]
    assert sig.line == v["line"] + "\n"


# --- round trips and attacks -------------------------------------------------------------

SEED = bytes(range(32))
TEXT = "example.com/log\n3\n" + base64.b64encode(b"\x07" * 32).decode() + "\n"


def _signer(name: str = "example.com/log", seed: bytes = SEED) -> Signer:
    return Signer(name, seed)


def test_signer_vkey_and_key_id_follow_c2sp() -> None:
    s = _signer()
    pk = Ed25519PrivateKey.from_private_bytes(SEED).public_key().public_bytes_raw()
    assert s.key_id == key_id("example.com/log", 0x01, pk)
    assert s.vkey == f"example.com/log+{s.key_id:08x}+" + base64.b64encode(b"\x01" + pk).decode()
    assert Signer.from_skey(s.skey).vkey == s.vkey
    assert "PRIVATE" not in repr(s) and SEED.hex() not in repr(s)


def test_generated_keys_round_trip() -> None:
    skey, vkey = generate_key("example.com/w1")
    note = sign_note(TEXT, [Signer.from_skey(skey)])
    assert open_note(note, [verifier_from_vkey(vkey)]).verified_names() == ["example.com/w1"]
    cskey, cvkey = generate_key("example.com/w1", cosigner=True)
    assert isinstance(verifier_from_vkey(cvkey), CosignatureVerifier)
    assert CosignatureSigner.from_skey(cskey).vkey == cvkey
    with pytest.raises(SignatureError):
        Signer.from_skey(cskey)  # a cosigner key string is not a note-signing key


def test_note_with_known_key_bad_signature_rejected() -> None:
    s = _signer()
    note = sign_note(TEXT, [s])
    tampered = note.replace("\n3\n", "\n4\n", 1)
    with pytest.raises(SignatureError, match="invalid signature"):
        open_note(tampered, [s.verifier()])


def test_note_signed_only_by_unknown_key_rejected() -> None:
    note = sign_note(TEXT, [_signer("attacker.example", b"\x01" * 32)])
    with pytest.raises(UnverifiedNoteError):
        open_note(note, [_signer().verifier()])


def test_note_signature_under_trusted_name_but_other_key_is_ignored_not_trusted() -> None:
    impostor = _signer("example.com/log", b"\x02" * 32)  # same name, different key ID
    honest = _signer()
    note = sign_note(TEXT, [impostor])
    with pytest.raises(UnverifiedNoteError):
        open_note(note, [honest.verifier()])
    both = sign_note(TEXT, [honest]) + impostor.sign(TEXT)
    opened = open_note(both, [honest.verifier()])
    assert opened.verified_names() == ["example.com/log"]
    assert [s.key_id for s in opened.unverified] == [impostor.key_id]


def test_note_with_ambiguous_verifiers_rejected() -> None:
    v = _signer().verifier()
    with pytest.raises(AmbiguousKeyError, match="ambiguous key"):
        open_note(sign_note(TEXT, [_signer()]), [v, v])


def test_note_with_signature_block_smuggled_into_text_splits_at_last_blank_line() -> None:
    s = _signer()
    text = "a\n\n— example.com/log AAAA\n"
    note = sign_note(text, [s])
    assert open_note(note, [s.verifier()]).text == text


def test_note_with_control_character_rejected() -> None:
    s = _signer()
    with pytest.raises(MalformedNoteError):
        sign_note("a\rb\n", [s])
    note = sign_note(TEXT, [s])
    for bad in ("\x00", "\x1b", "\x7f", "\t"):
        with pytest.raises(MalformedNoteError):
            open_note(bad + note, [s.verifier()])


def test_note_with_invalid_utf8_rejected() -> None:
    s = _signer()
    with pytest.raises(MalformedNoteError):
        open_note(b"\xff" + sign_note(TEXT, [s]).encode(), [s.verifier()])


def test_note_text_without_final_newline_refused_when_signing() -> None:
    with pytest.raises(MalformedNoteError):
        sign_note("no newline", [_signer()])


def test_note_with_101_signatures_rejected_but_100_accepted() -> None:
    s = _signer()
    note = sign_note(TEXT, [s])
    line = s.sign(TEXT)
    assert open_note(note + line * 99, [s.verifier()]).verified_names() == ["example.com/log"]
    with pytest.raises(MalformedNoteError):
        open_note(note + line * 100, [s.verifier()])


def test_note_with_non_canonical_base64_signature_rejected() -> None:
    s = _signer()
    note = sign_note(TEXT, [s])
    b64 = note.rsplit(" ", 1)[1].rstrip("\n")
    raw = base64.b64decode(b64)
    # 68 bytes -> 92 chars ending in one "=": the last data character carries 2
    # unused bits; setting one gives a second spelling of the same bytes.
    assert b64.endswith("=") and not b64.endswith("==")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet[alphabet.index(b64[-2]) ^ 1]
    mangled = b64[:-2] + last + "="
    assert base64.b64decode(mangled) == raw
    with pytest.raises(MalformedNoteError):
        open_note(note.replace(b64, mangled), [s.verifier()])


def test_cosignature_round_trip_and_timestamp() -> None:
    log = _signer()
    witness = CosignatureSigner("witness.example/w1", b"\x05" * 32)
    note = sign_note(TEXT, [log]) + witness.sign(TEXT, timestamp=1_700_000_000)
    opened = open_note(note, [log.verifier(), witness.verifier()])
    assert opened.verified_names() == ["example.com/log", "witness.example/w1"]
    assert opened.verified[1].cosignature_timestamp == 1_700_000_000


def test_cosignature_replayed_with_other_timestamp_rejected() -> None:
    witness = CosignatureSigner("witness.example/w1", b"\x05" * 32)
    line = witness.sign(TEXT, timestamp=1_700_000_000)
    sig = parse_signature_line(line.rstrip("\n"))
    forged = (1_700_000_001).to_bytes(8, "big") + sig.signature[8:]
    with pytest.raises(SignatureError):
        witness.verifier().verify(TEXT.encode(), forged)


def test_cosignature_over_other_checkpoint_rejected() -> None:
    log = _signer()
    witness = CosignatureSigner("witness.example/w1", b"\x05" * 32)
    other = TEXT.replace("\n3\n", "\n2\n")
    note = sign_note(TEXT, [log]) + witness.sign(other, timestamp=1_700_000_000)
    with pytest.raises(SignatureError, match="invalid signature"):
        open_note(note, [log.verifier(), witness.verifier()])


def test_cosignature_key_cannot_pose_as_log_key() -> None:
    # Same seed and name, type 0x04 vs 0x01: distinct key IDs, so a cosignature is never
    # mistaken for (or accepted as) the log's own signature.
    assert CosignatureSigner("n", SEED).key_id != Signer("n", SEED).key_id


def test_cosignature_needs_explicit_timestamp() -> None:
    with pytest.raises(ValueError):
        CosignatureSigner("w", SEED).sign(TEXT)
    with pytest.raises(ValueError):
        CosignatureSigner("w", SEED).sign(TEXT, timestamp=0)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u00a0b", "a\nb"])
def test_invalid_key_names_refused(name: str) -> None:
    with pytest.raises(ValueError):
        Signer(name, SEED)
