"""SmtpChannel against a real SMTP server (aiosmtpd in a child process)."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import pytest

from tests.alerts.conftest import PORTAL
from tests.support.smtp_server import SmtpServerHandle, start_smtp_server
from vault.alerts.channels import Attachment, OutboundMessage, SmtpChannel, message_id_for
from vault.alerts.messages import render
from vault.errors import ConfigurationError

RECIPIENT = "amina.demandeuse@example.org"
FROM = "ne-pas-repondre@vault.ofpra"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"


def channel_for(server: SmtpServerHandle, **kwargs: object) -> SmtpChannel:
    options: dict[str, object] = {"timeout": 5.0}
    options.update(kwargs)
    return SmtpChannel(server.host, server.port, "none", None, None, FROM, **options)  # type: ignore[arg-type]


def alert(
    key: str = "outbox-1", language: str = "fr", recipient: str = RECIPIENT
) -> OutboundMessage:
    rendered = render("document_available", language, portal_url=PORTAL)
    return rendered.to_outbound(
        "email", key, recipient, attachments=(Attachment("guide.pdf", "application/pdf", PDF),)
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("language", "subject"),
    [
        ("fr", "Un nouveau document est disponible dans votre espace personnel"),
        ("en", "A new document is available in your personal space"),
    ],
)
def test_email_arrives_with_text_html_and_intact_attachment(
    smtp_server: SmtpServerHandle, language: str, subject: str
) -> None:
    result = channel_for(smtp_server).send(alert(language=language))

    assert result.outcome == "sent"
    assert result.provider_message_id == message_id_for("outbox-1")
    [mail] = smtp_server.messages()
    assert mail["Subject"] == subject
    assert mail["To"] == RECIPIENT
    assert mail["Message-ID"] == message_id_for("outbox-1")
    assert mail["X-Vault-Dedupe-Key"] == "outbox-1"
    assert mail["Content-Language"] == language
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail.get_content_type() == "multipart/mixed"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    assert PORTAL in text.get_content()
    assert f'<a href="{PORTAL}"' in html.get_content()
    assert f'lang="{language}"' in html.get_content()
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "guide.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == PDF
    [envelope] = smtp_server.envelopes()
    assert envelope["rcpt_tos"] == [RECIPIENT]
    assert envelope["mail_from"] == FROM


def test_resend_after_crash_carries_the_same_message_id(smtp_server: SmtpServerHandle) -> None:
    channel = channel_for(smtp_server)
    assert channel.send(alert()).outcome == "sent"
    assert channel.send(alert()).outcome == "sent"
    first, second = smtp_server.messages()
    assert first["Message-ID"] == second["Message-ID"] == message_id_for("outbox-1")
    assert message_id_for("outbox-2") != message_id_for("outbox-1")


@pytest.mark.parametrize("code", [421, 451, 452])
def test_smtp_temporary_failure_is_retryable(tmp_path: Path, code: int) -> None:
    with start_smtp_server(tmp_path, fail_first=1, fail_code=code) as server:
        channel = channel_for(server)
        first = channel.send(alert())
        second = channel.send(alert())
        assert first.outcome == "retryable_failure"
        assert str(code) in first.detail
        assert second.outcome == "sent"
        assert len(server.messages()) == 1


def test_server_down_is_retryable_quickly() -> None:
    channel = SmtpChannel("127.0.0.1", free_port(), "none", None, None, FROM, timeout=5.0)
    started = time.monotonic()
    result = channel.send(alert())
    assert result.outcome == "retryable_failure"
    assert time.monotonic() - started < 2.0
    assert "ConnectionRefusedError" in result.detail


def test_recipient_refused_is_permanent_and_detail_hides_the_address(tmp_path: Path) -> None:
    refused = "unknown.person@example.org"
    with start_smtp_server(tmp_path, reject_recipients=[refused]) as server:
        result = channel_for(server).send(alert(recipient=refused))
    assert result.outcome == "permanent_failure"
    assert "550" in result.detail
    # The server's reply echoes the address; the result must not.
    assert refused not in result.summary()
    assert "unknown.person" not in result.detail


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_tls_and_auth(tmp_path: Path, mode: str) -> None:
    with start_smtp_server(tmp_path, tls=mode, auth=("vault", "s3cret")) as server:  # type: ignore[arg-type]
        assert server.cafile is not None
        context = ssl.create_default_context(cafile=str(server.cafile))
        channel = SmtpChannel(
            server.host,
            server.port,
            mode,
            "vault",
            "s3cret",
            FROM,
            5.0,
            ssl_context=context,  # type: ignore[arg-type]
        )
        result = channel.send(alert())
        assert result.outcome == "sent", result.detail
        [envelope] = server.envelopes()
        assert envelope["tls"] and envelope["authenticated"]


def test_mitm_certificate_refused(tmp_path: Path) -> None:
    """A server whose certificate we do not trust gets nothing, not even the envelope."""
    with start_smtp_server(tmp_path, tls="starttls", auth=("vault", "s3cret")) as server:
        channel = SmtpChannel(server.host, server.port, "starttls", "vault", "s3cret", FROM, 5.0)
        result = channel.send(alert())
        assert result.outcome == "retryable_failure"
        assert "SSLCertVerificationError" in result.detail
        assert server.messages() == []


def test_wrong_smtp_password_is_a_retryable_configuration_fault(tmp_path: Path) -> None:
    with start_smtp_server(tmp_path, tls="tls", auth=("vault", "s3cret")) as server:
        assert server.cafile is not None
        context = ssl.create_default_context(cafile=str(server.cafile))
        channel = SmtpChannel(
            server.host, server.port, "tls", "vault", "wrong", FROM, 5.0, ssl_context=context
        )
        result = channel.send(alert())
    assert result.outcome == "retryable_failure"
    assert "configuration" in result.detail
    assert "wrong" not in result.detail


def test_credentials_are_never_sent_in_clear() -> None:
    with pytest.raises(ConfigurationError):
        SmtpChannel("127.0.0.1", 25, "none", "vault", "s3cret", FROM)


def test_starttls_not_offered_is_not_downgraded(smtp_server: SmtpServerHandle) -> None:
    channel = SmtpChannel(smtp_server.host, smtp_server.port, "starttls", None, None, FROM, 5.0)
    result = channel.send(alert())
    assert result.outcome == "retryable_failure"
    assert "STARTTLS" in result.detail
    assert smtp_server.messages() == []
