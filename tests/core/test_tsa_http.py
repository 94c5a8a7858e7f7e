"""The production TSA client (``VAULT_TSA_URL``): RFC 3161 over HTTP to a real server on
loopback, from the blocking checkpoint thread."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.conftest import START
from tests.support.tsa_server import timestamp_http_server, tsa_server
from vault.clock import FrozenClock
from vault.errors import SignatureError, UnavailableError
from vault.pdf.pki import TestPki, load_or_create_test_pki
from vault.tsa import HttpTimeStamper, LocalTimeStamper, verify_timestamp


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return load_or_create_test_pki(tmp_path_factory.mktemp("pki"), START)


def test_http_tsa_token_verifies_and_the_client_is_reused(pki: TestPki) -> None:
    clock = FrozenClock(START)
    with tsa_server(pki, clock) as url:
        ts = HttpTimeStamper(url)
        try:
            first = ts.timestamp(b"checkpoint note 1")
            client = ts._client
            second = ts.timestamp(b"checkpoint note 2")
            assert ts._client is client is not None  # one pooled client, not one per call
        finally:
            ts.close()
    assert verify_timestamp(first, b"checkpoint note 1", [pki.root_cert]) == START
    assert verify_timestamp(second, b"checkpoint note 2", [pki.root_cert]) == START
    with pytest.raises(SignatureError):
        verify_timestamp(first, b"another note", [pki.root_cert])


def test_replayed_tsa_response_is_refused(pki: TestPki, tmp_path: Path) -> None:
    """A response recorded for an earlier request (another nonce) must not be taken as
    the answer to this one, even over the same data."""
    from asn1crypto import tsp

    stamper = LocalTimeStamper.from_test_pki(pki, FrozenClock(START))
    helper = HttpTimeStamper("http://127.0.0.1:9/unused")
    import hashlib

    _nonce, req = helper.request_cms(hashlib.sha256(b"note").digest(), "sha256")  # type: ignore[no-untyped-call]
    recorded = stamper.respond(tsp.TimeStampReq.load(req.dump())).dump()
    with timestamp_http_server(lambda _request: recorded) as url:
        ts = HttpTimeStamper(url)
        try:
            with pytest.raises(UnavailableError):
                ts.timestamp(b"note")
        finally:
            ts.close()


def test_unreachable_tsa_is_unavailable_not_a_crash() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connection refused
        ts = HttpTimeStamper(f"http://127.0.0.1:{port}/tsa", timeout=2.0)
        try:
            with pytest.raises(UnavailableError):
                ts.timestamp(b"note")
        finally:
            ts.close()
