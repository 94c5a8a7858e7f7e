"""The in-process RFC 3161 authority and the token verifier (vault.tsa).

Independent check: every token must pass ``openssl ts -verify`` (DESIGN.md section 7).
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import tsp
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.services import require_tool
from vault.clock import FrozenClock
from vault.errors import SignatureError
from vault.pdf.pki import TestPki
from vault.tsa import TEST_TSA_POLICY, LocalTimeStamper, verify_timestamp

DATA = b"checkpoint body\n42\nabc=\n"


@pytest.fixture
def pinned_tsa(test_pki: TestPki) -> tuple[LocalTimeStamper, datetime]:
    at = datetime.now(UTC).replace(microsecond=123400) - timedelta(minutes=5)
    return LocalTimeStamper.from_test_pki(test_pki, FrozenClock(at)), at


def openssl_verify(
    pki: TestPki, token: bytes, data: bytes, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    openssl = require_tool("openssl")
    (tmp_path / "token.der").write_bytes(token)
    (tmp_path / "data.bin").write_bytes(data)
    return subprocess.run(
        [
            openssl,
            "ts",
            "-verify",
            "-data",
            str(tmp_path / "data.bin"),
            "-in",
            str(tmp_path / "token.der"),
            "-token_in",
            "-CAfile",
            str(pki.root_path),
            "-untrusted",
            str(pki.chain_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_openssl_ts_verify_accepts_the_token(
    test_pki: TestPki, local_tsa: LocalTimeStamper, tmp_path: Path
) -> None:
    result = openssl_verify(test_pki, local_tsa.timestamp(DATA), DATA, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Verification: OK" in result.stdout


def test_openssl_ts_verify_rejects_other_data(
    test_pki: TestPki, local_tsa: LocalTimeStamper, tmp_path: Path
) -> None:
    result = openssl_verify(test_pki, local_tsa.timestamp(DATA), DATA + b"!", tmp_path)
    assert result.returncode != 0


def test_token_content(pinned_tsa: tuple[LocalTimeStamper, datetime], test_pki: TestPki) -> None:
    tsa, at = pinned_tsa
    token = tsa.timestamp(DATA)
    from asn1crypto import cms

    info = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].parsed
    assert isinstance(info, tsp.TSTInfo)
    assert info["policy"].dotted == TEST_TSA_POLICY
    assert info["gen_time"].native == at
    assert info["message_imprint"]["hashed_message"].native == hashlib.sha256(DATA).digest()
    assert info["tsa"].chosen.native["common_name"].startswith("OFPRA TEST Time Stamping")


def test_verify_returns_the_clock_time(
    pinned_tsa: tuple[LocalTimeStamper, datetime], test_pki: TestPki
) -> None:
    tsa, at = pinned_tsa
    assert verify_timestamp(tsa.timestamp(DATA), DATA, [test_pki.root_cert]) == at


def test_verify_with_crls_at_a_given_time(local_tsa: LocalTimeStamper, test_pki: TestPki) -> None:
    token = local_tsa.timestamp(DATA)
    got = verify_timestamp(
        token, DATA, [test_pki.root_cert], crls=test_pki.crls, at=datetime.now(UTC)
    )
    assert abs(got - datetime.now(UTC)) < timedelta(minutes=1)


def test_substituted_data_is_rejected(local_tsa: LocalTimeStamper, test_pki: TestPki) -> None:
    with pytest.raises(SignatureError):
        verify_timestamp(local_tsa.timestamp(DATA), DATA + b" ", [test_pki.root_cert])


def test_impostor_tsa_is_rejected(
    local_tsa: LocalTimeStamper, test_pki: TestPki, other_pki: TestPki
) -> None:
    """A token from a TSA with the same names but another root."""
    forged = LocalTimeStamper.from_test_pki(other_pki, FrozenClock(datetime.now(UTC)))
    with pytest.raises(SignatureError):
        verify_timestamp(forged.timestamp(DATA), DATA, [test_pki.root_cert])


def test_garbage_is_rejected(test_pki: TestPki) -> None:
    for junk in (b"", b"\x30\x03\x02\x01\x00", b"not a token"):
        with pytest.raises(SignatureError):
            verify_timestamp(junk, DATA, [test_pki.root_cert])


@settings(max_examples=40, deadline=None)
@given(position=st.integers(min_value=0), delta=st.integers(min_value=1, max_value=255))
def test_tampered_token_is_rejected(
    local_tsa: LocalTimeStamper, test_pki: TestPki, position: int, delta: int
) -> None:
    token = bytearray(local_tsa.timestamp(DATA))
    token[position % len(token)] = (token[position % len(token)] + delta) % 256
    try:
        verify_timestamp(bytes(token), DATA, [test_pki.root_cert])
    except SignatureError:
        return
    # The only bytes a verifier may ignore are outside what is signed and outside
    # the certificate path: there are none we accept silently.
    pytest.fail(f"altered token accepted (byte {position % len(token)})")


def test_certificate_bit_string_padding_malleability_is_rejected(
    local_tsa: LocalTimeStamper, test_pki: TestPki
) -> None:
    """Found by the exhaustive bit-flip test: the issuing CA certificate's signature
    BIT STRING "unused bits" byte is ignored by asn1crypto, so flipping it gave a
    second valid encoding of one token (for about half of all PKIs)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    token = local_tsa.timestamp(DATA)
    cert_der = test_pki.issuing_cert.public_bytes(Encoding.DER)
    unused_bits = token.index(cert_der) + cert_der.rindex(b"\0" + test_pki.issuing_cert.signature)
    altered = bytearray(token)
    altered[unused_bits] ^= 1
    with pytest.raises(SignatureError):
        verify_timestamp(bytes(altered), DATA, [test_pki.root_cert])


@pytest.mark.slow
def test_every_bit_flip_is_rejected_exhaustively(
    local_tsa: LocalTimeStamper, test_pki: TestPki
) -> None:
    """Tamper: flip the low bit of each byte in turn (about 80 s)."""
    token = local_tsa.timestamp(DATA)
    accepted = []
    for position in range(len(token)):
        altered = bytearray(token)
        altered[position] ^= 1
        try:
            verify_timestamp(bytes(altered), DATA, [test_pki.root_cert])
        except SignatureError:
            continue
        accepted.append(f"{position}: ...{token[max(0, position - 12) : position + 4].hex()}")
    assert not accepted, f"token {token.hex()} accepted with flips at {accepted}"


def test_weak_imprint_is_refused(local_tsa: LocalTimeStamper) -> None:
    req = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha1"},
                "hashed_message": hashlib.sha1(DATA).digest(),
            },
            "cert_req": True,
        }
    )
    response = local_tsa.respond(req)
    assert response["status"]["status"].native == "rejection"


def test_pyhanko_client_interface_checks_the_nonce(local_tsa: LocalTimeStamper) -> None:
    token = asyncio.run(local_tsa.async_timestamp(hashlib.sha256(DATA).digest(), "sha256"))
    assert token["content_type"].native == "signed_data"


def test_mismatched_key_is_refused(test_pki: TestPki) -> None:
    with pytest.raises(ValueError, match="does not match"):
        LocalTimeStamper(
            test_pki.tsa_cert, test_pki.seal_key, test_pki.chain, FrozenClock(datetime.now(UTC))
        )
