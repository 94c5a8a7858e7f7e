"""C2SP tlog-checkpoint bodies, and a checkpoint signed, opened and used for proofs."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.errors import SignatureError
from vault.ledger.checkpoint import Checkpoint, MalformedCheckpointError, open_checkpoint
from vault.ledger.merkle import EMPTY_ROOT, MemoryTree, leaf_hash, verify_inclusion
from vault.ledger.note import CosignatureSigner, Signer, sign_note

ROOT = bytes(range(32))
ROOT_B64 = base64.b64encode(ROOT).decode()
ORIGIN = "vault.example.fr/ledger"


def test_checkpoint_text_round_trip() -> None:
    cp = Checkpoint(ORIGIN, 12, ROOT, ("ext one",))
    text = cp.to_text()
    assert text == f"{ORIGIN}\n12\n{ROOT_B64}\next one\n"
    assert Checkpoint.parse(text) == cp


def test_empty_tree_checkpoint() -> None:
    text = f"{ORIGIN}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    assert Checkpoint.parse(text).root_hash == EMPTY_ROOT
    with pytest.raises(MalformedCheckpointError):
        Checkpoint(ORIGIN, 0, ROOT)


@pytest.mark.parametrize(
    "text",
    [
        f"{ORIGIN}\n012\n{ROOT_B64}\n",  # leading zero
        f"{ORIGIN}\n+12\n{ROOT_B64}\n",
        f"{ORIGIN}\n-1\n{ROOT_B64}\n",
        f"{ORIGIN}\n 12\n{ROOT_B64}\n",
        f"{ORIGIN}\n12\n{ROOT_B64}",  # no final newline
        f"{ORIGIN}\n12\n",  # fewer than 3 lines
        f"\n12\n{ROOT_B64}\n",  # empty origin
        f"{ORIGIN}\n12\n{ROOT_B64}\n\n",  # empty extension line
        f"{ORIGIN}\n12\n{base64.b64encode(ROOT[:31]).decode()}\n",  # 31-byte root
        f"{ORIGIN}\n12\n{ROOT_B64.rstrip('=')}\n",  # unpadded base64
        f"{ORIGIN}\n18446744073709551616\n{ROOT_B64}\n",  # 2**64
        f"{ORIGIN}\n١٢\n{ROOT_B64}\n",  # non-ASCII digits
    ],
)
def test_malformed_checkpoint_rejected(text: str) -> None:
    with pytest.raises(MalformedCheckpointError):
        Checkpoint.parse(text)


@settings(deadline=None)
@given(
    st.integers(1, 2**64 - 1),
    st.binary(min_size=32, max_size=32),
    st.lists(st.text(st.characters(min_codepoint=0x20, exclude_characters="\x7f"), min_size=1),
             max_size=3),
)
def test_checkpoint_parse_inverts_to_text(size: int, root: bytes, exts: list[str]) -> None:
    cp = Checkpoint(ORIGIN, size, root, tuple(exts))
    assert Checkpoint.parse(cp.to_text()) == cp


def test_for_log_refuses_origin_that_cannot_be_a_key_name() -> None:
    with pytest.raises(ValueError):
        Checkpoint.for_log("rekor.sigstore.dev - 123", 1, ROOT)
    assert Checkpoint.for_log(ORIGIN, 1, ROOT).origin == ORIGIN


def test_checkpoint_signed_opened_then_proves_inclusion() -> None:
    leaves = [leaf_hash(b"entry %d" % i) for i in range(21)]
    tree = MemoryTree(leaves)
    log = Signer(ORIGIN, b"\x11" * 32)
    witness = CosignatureSigner("witness.example/w", b"\x22" * 32)
    body = Checkpoint.for_log(ORIGIN, tree.size, tree.root()).to_text()
    note = sign_note(body, [log]) + witness.sign(body, timestamp=1_750_000_000)
    cp, opened = open_checkpoint(note, [log.verifier(), witness.verifier()], origin=ORIGIN)
    assert opened.verified_names() == [ORIGIN, "witness.example/w"]
    verify_inclusion(leaves[7], 7, cp.size, tree.inclusion_proof(7, cp.size), cp.root_hash)


def test_checkpoint_for_another_log_rejected() -> None:
    other = "other.example/log"
    signer = Signer(other, b"\x11" * 32)
    note = sign_note(Checkpoint.for_log(other, 1, ROOT).to_text(), [signer])
    with pytest.raises(MalformedCheckpointError, match="origin"):
        open_checkpoint(note, [signer.verifier()], origin=ORIGIN)


def test_checkpoint_with_size_rewritten_after_signing_rejected() -> None:
    log = Signer(ORIGIN, b"\x11" * 32)
    note = sign_note(Checkpoint.for_log(ORIGIN, 5, ROOT).to_text(), [log])
    with pytest.raises(SignatureError, match="invalid signature"):
        open_checkpoint(note.replace("\n5\n", "\n6\n"), [log.verifier()], origin=ORIGIN)
