"""SmsHttpChannel, WebhookChannel and delivery reports against the provider test server."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.alerts.conftest import PORTAL, REPORT_SECRET, WEBHOOK_SECRET
from tests.support.sms_provider import (
    SmsProviderHandle,
    bad_request,
    hang,
    rate_limited,
    server_error,
    start_sms_provider,
)
from vault.alerts.channels import (
    AlertChannel,
    OutboundMessage,
    SendResult,
    SmsHttpChannel,
    WebhookChannel,
    parse_delivery_report,
    parse_retry_after,
    sign_body,
    verify_signature,
)
from vault.alerts.messages import render
from vault.clock import FrozenClock
from vault.errors import ConfigurationError, InvalidInput, SignatureError

PHONE = "+33612345678"


def sms(key: str = "outbox-7", phone: str = PHONE) -> OutboundMessage:
    return render("document_available", "fr", portal_url=PORTAL).to_outbound("sms", key, phone)


def sms_channel(provider: SmsProviderHandle, timeout: float = 2.0) -> SmsHttpChannel:
    return SmsHttpChannel(provider.sms_url, "vault", "sms-password", "OFPRA", timeout)


def assert_no_recipient(result: SendResult) -> None:
    assert PHONE not in result.summary()
    assert "612345678" not in result.detail
    assert "sms-password" not in result.detail


# --- SMS ---------------------------------------------------------------------------------
def test_sms_sent_with_provider_id(sms_provider: SmsProviderHandle) -> None:
    channel: AlertChannel = sms_channel(sms_provider)
    assert channel.name == "sms"
    result = channel.send(sms())

    assert result.outcome == "sent"
    assert result.provider_message_id == "sms-1"
    assert_no_recipient(result)
    [request] = sms_provider.sms_sent()
    assert request["body"] == {
        "to": PHONE,
        "from": "OFPRA",
        "text": sms().text,
        "client_ref": "outbox-7",
    }
    assert request["headers"]["idempotency-key"] == "outbox-7"
    assert request["headers"]["authorization"].startswith("Basic ")


def test_resend_with_same_dedupe_key_is_not_a_second_sms(sms_provider: SmsProviderHandle) -> None:
    channel = sms_channel(sms_provider)
    first = channel.send(sms())
    again = channel.send(sms())
    other = channel.send(sms(key="outbox-8"))
    assert first.provider_message_id == again.provider_message_id == "sms-1"
    assert other.provider_message_id == "sms-2"
    assert [r["provider_id"] for r in sms_provider.sms_sent()] == ["sms-1", "sms-2"]


def test_bearer_auth(tmp_path: Path) -> None:
    with start_sms_provider(tmp_path, basic=None, bearer="tok-123") as provider:
        channel = SmsHttpChannel(provider.sms_url, None, "tok-123", "OFPRA", 2.0, auth="bearer")
        assert channel.send(sms()).outcome == "sent"


def test_wrong_credentials_are_a_retryable_configuration_fault(
    sms_provider: SmsProviderHandle,
) -> None:
    channel = SmsHttpChannel(sms_provider.sms_url, "vault", "wrong", "OFPRA", 2.0)
    result = channel.send(sms())
    assert result.outcome == "retryable_failure"
    assert "401" in result.detail and "configuration" in result.detail
    assert sms_provider.sms_sent() == []


def test_rate_limited_is_retryable_with_retry_after(sms_provider: SmsProviderHandle) -> None:
    sms_provider.set_failures([rate_limited("7")])
    channel = sms_channel(sms_provider)
    result = channel.send(sms())
    assert result.outcome == "retryable_failure"
    assert result.retry_after == 7.0
    assert_no_recipient(result)
    assert channel.send(sms()).outcome == "sent"
    assert len(sms_provider.sms_sent()) == 1


def test_retry_after_http_date() -> None:
    now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    assert parse_retry_after("Sun, 01 Mar 2026 09:00:30 GMT", now) == 30.0
    assert parse_retry_after("Sun, 01 Mar 2026 08:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error_is_retryable(sms_provider: SmsProviderHandle, status: int) -> None:
    sms_provider.set_failures([server_error(status)])
    result = sms_channel(sms_provider).send(sms())
    assert result.outcome == "retryable_failure"
    assert str(status) in result.detail
    assert_no_recipient(result)


def test_timeout_is_retryable(sms_provider: SmsProviderHandle) -> None:
    sms_provider.set_failures([hang(3.0)])
    started = time.monotonic()
    result = sms_channel(sms_provider, timeout=0.5).send(sms())
    assert time.monotonic() - started < 2.5
    assert result.outcome == "retryable_failure"
    assert "timed out" in result.detail
    assert_no_recipient(result)


def test_bad_request_is_permanent(sms_provider: SmsProviderHandle) -> None:
    sms_provider.set_failures([bad_request()])
    result = sms_channel(sms_provider).send(sms())
    assert result.outcome == "permanent_failure"
    assert "400" in result.detail
    assert_no_recipient(result)


def test_idempotency_key_reused_for_another_text_is_permanent(
    sms_provider: SmsProviderHandle,
) -> None:
    channel = sms_channel(sms_provider)
    assert channel.send(sms()).outcome == "sent"
    changed = OutboundMessage("outbox-7", "sms", PHONE, None, "autre texte")
    result = channel.send(changed)
    assert result.outcome == "permanent_failure"
    assert "422" in result.detail


def test_provider_down_is_retryable_quickly() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    channel = SmsHttpChannel(f"http://127.0.0.1:{port}/sms", "u", "p", "OFPRA", 2.0)
    started = time.monotonic()
    result = channel.send(sms())
    assert result.outcome == "retryable_failure"
    assert time.monotonic() - started < 2.0
    assert "unreachable" in result.detail


def test_message_for_another_channel_is_refused(sms_provider: SmsProviderHandle) -> None:
    email = OutboundMessage("k", "email", "a@example.org", "s", "t")
    with pytest.raises(InvalidInput):
        sms_channel(sms_provider).send(email)


def test_header_injection_through_dedupe_key_is_refused() -> None:
    with pytest.raises(InvalidInput):
        OutboundMessage("k\r\nBcc: x@example.org", "email", "a@example.org", "s", "t")


def test_repr_hides_recipient_and_body() -> None:
    message = render("key_recovery", "fr", portal_url=PORTAL, connection_key="K7Q2-9XZA")
    outbound = message.to_outbound("sms", "k", PHONE)
    assert PHONE not in repr(outbound)
    assert "K7Q2-9XZA" not in repr(outbound)
    assert "K7Q2-9XZA" not in repr(message)


# --- webhook -----------------------------------------------------------------------------
def acknowledgement(key: str = "ack-1") -> OutboundMessage:
    return OutboundMessage(
        key, "webhook", "prefecture-35", "Accusé de réception", "Texte", "<p>Texte</p>"
    )


def test_webhook_signature_verified_by_receiver(sms_provider: SmsProviderHandle) -> None:
    channel: AlertChannel = WebhookChannel(sms_provider.webhook_url, WEBHOOK_SECRET)
    assert channel.name == "webhook"
    result = channel.send(acknowledgement())
    assert result.outcome == "sent"
    [request] = [r for r in sms_provider.requests() if r["path"] == "/webhook"]
    assert request["signature_valid"] is True
    assert request["headers"]["idempotency-key"] == "ack-1"
    assert request["body"]["recipient"] == "prefecture-35"
    assert request["body"]["subject"] == "Accusé de réception"


def test_forged_webhook_rejected_by_receiver(sms_provider: SmsProviderHandle) -> None:
    forger = WebhookChannel(sms_provider.webhook_url, b"x" * 32)
    result = forger.send(acknowledgement())
    assert result.outcome == "retryable_failure"  # 401: our configuration, not the message
    [request] = sms_provider.requests()
    assert request["signature_valid"] is False


def test_webhook_server_error_is_retryable(sms_provider: SmsProviderHandle) -> None:
    sms_provider.set_failures([server_error(503)])
    result = WebhookChannel(sms_provider.webhook_url, WEBHOOK_SECRET).send(acknowledgement())
    assert result.outcome == "retryable_failure"


def test_webhook_secret_too_short_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        WebhookChannel("https://prefecture.example/ack", b"short")


def test_replayed_webhook_timestamp_rejected() -> None:
    body = b'{"dedupe_key":"ack-1"}'
    now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    old = str(int((now - timedelta(hours=1)).timestamp()))
    headers = {"X-Vault-Timestamp": old, "X-Vault-Signature": sign_body(WEBHOOK_SECRET, old, body)}
    kwargs: dict[str, Any] = {
        "signature_header": "X-Vault-Signature",
        "timestamp_header": "X-Vault-Timestamp",
    }
    verify_signature(body, headers, WEBHOOK_SECRET, now=now - timedelta(hours=1), **kwargs)
    with pytest.raises(SignatureError):
        verify_signature(body, headers, WEBHOOK_SECRET, now=now, **kwargs)
    fresh = str(int(now.timestamp()))
    moved = {**headers, "X-Vault-Timestamp": fresh}  # old signature, new timestamp
    with pytest.raises(SignatureError):
        verify_signature(body, moved, WEBHOOK_SECRET, now=now, **kwargs)


def test_webhook_timestamp_comes_from_the_clock(sms_provider: SmsProviderHandle) -> None:
    clock = FrozenClock(datetime.now(UTC))
    WebhookChannel(sms_provider.webhook_url, WEBHOOK_SECRET, clock=clock).send(acknowledgement())
    [request] = sms_provider.requests()
    assert request["headers"]["x-vault-timestamp"] == str(int(clock.now().timestamp()))


# --- delivery reports --------------------------------------------------------------------
class _Callback:
    """The vault's side of the delivery-report webhook, in the test process."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((body, dict(self.headers.items())))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/delivery-reports"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()


@pytest.fixture
def callback() -> Iterator[_Callback]:
    receiver = _Callback()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def test_delivery_report_posted_by_provider_is_parsed(
    sms_provider: SmsProviderHandle, callback: _Callback
) -> None:
    result = sms_channel(sms_provider).send(sms())
    assert result.provider_message_id is not None
    status = sms_provider.deliver(
        result.provider_message_id, "delivered", callback.url, at="2026-03-01T09:00:05Z"
    )
    assert status == 204
    [(body, headers)] = callback.received

    report = parse_delivery_report(body, headers, REPORT_SECRET, now=datetime.now(UTC))

    assert report.provider_message_id == "sms-1"
    assert report.status == "delivered"
    assert report.at == datetime(2026, 3, 1, 9, 0, 5, tzinfo=UTC)
    assert report.client_ref == "outbox-7"


def signed_report(
    payload: dict[str, Any], *, secret: bytes = REPORT_SECRET, at: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    timestamp = str(int((at or datetime.now(UTC)).timestamp()))
    return body, {
        "x-provider-timestamp": timestamp,
        "x-provider-signature": sign_body(secret, timestamp, body),
    }


REPORT = {"id": "sms-1", "status": "delivered", "at": "2026-03-01T09:00:05Z"}


def test_forged_delivery_report_rejected() -> None:
    now = datetime.now(UTC)
    # Signed with a key that is not the provider's.
    body, headers = signed_report(REPORT, secret=b"attacker")
    with pytest.raises(SignatureError):
        parse_delivery_report(body, headers, REPORT_SECRET, now=now)
    # A genuine report whose status was rewritten in flight.
    body, headers = signed_report({**REPORT, "status": "failed"})
    tampered = body.replace(b"failed", b"delivered")
    with pytest.raises(SignatureError):
        parse_delivery_report(tampered, headers, REPORT_SECRET, now=now)
    # No signature at all.
    with pytest.raises(SignatureError):
        parse_delivery_report(body, {}, REPORT_SECRET, now=now)
    # Malformed signature header.
    with pytest.raises(SignatureError):
        parse_delivery_report(
            body, {**headers, "x-provider-signature": "sha256=zz\u00e9"}, REPORT_SECRET, now=now
        )


def test_replayed_delivery_report_rejected() -> None:
    now = datetime.now(UTC)
    body, headers = signed_report(REPORT, at=now - timedelta(minutes=30))
    with pytest.raises(SignatureError):
        parse_delivery_report(body, headers, REPORT_SECRET, now=now)


def test_delivery_report_statuses_and_malformed_bodies() -> None:
    now = datetime.now(UTC)
    body, headers = signed_report({**REPORT, "status": "BUFFERED"})
    assert parse_delivery_report(body, headers, REPORT_SECRET, now=now).status == "pending"
    body, headers = signed_report({**REPORT, "status": "teleported"})
    report = parse_delivery_report(body, headers, REPORT_SECRET, now=now)
    assert (report.status, report.raw_status) == ("unknown", "teleported")
    body, headers = signed_report({"id": "sms-1"})
    with pytest.raises(InvalidInput):
        parse_delivery_report(body, headers, REPORT_SECRET, now=now)
    timestamp = str(int(now.timestamp()))
    garbage = b"not json"
    headers = {
        "X-Provider-Timestamp": timestamp,
        "X-Provider-Signature": sign_body(REPORT_SECRET, timestamp, garbage),
    }
    with pytest.raises(InvalidInput):
        parse_delivery_report(garbage, headers, REPORT_SECRET, now=now)
