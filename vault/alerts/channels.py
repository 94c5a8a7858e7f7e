"""Alert channels: the port and one adapter per transport (e-mail, SMS, webhook).

A channel takes one :class:`OutboundMessage` and reports one :class:`SendResult`. The
outbox dispatcher (written elsewhere) calls :meth:`AlertChannel.send` from a worker
thread, records the outcome and schedules retries; channels never retry by themselves.

Invariants every adapter keeps:

* ``send`` does not raise for transport or provider failures: it returns
  ``retryable_failure`` (the same message may succeed later) or ``permanent_failure``
  (sending it again will fail the same way). Programming errors still raise.
* ``SendResult.detail`` is built from fixed phrases, status codes and exception class
  names only. It never contains the recipient, the message text, a server's free-text
  reply (which often echoes the address) or a credential, so it may be logged and
  stored as is.
* Every transport carries the message's ``dedupe_key`` (SMTP ``Message-ID`` and
  ``X-Vault-Dedupe-Key``; HTTP ``Idempotency-Key``), so that a re-send after a crash
  between "provider accepted" and "outbox row updated" is recognisable downstream.
* Failures that are the office's own configuration (bad credentials, sender refused,
  TLS not offered) are ``retryable_failure``: the message is not at fault and must not
  be dropped while an operator fixes the settings. The detail says "configuration".

HTTP signatures (outgoing webhooks and incoming SMS delivery reports) use one scheme:
``sha256=<hex HMAC-SHA256(secret, "<unix timestamp>." + body)>``, with the timestamp in
its own header. Signing the timestamp with the body stops a captured request from being
replayed later with a fresh timestamp.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parsedate_to_datetime
from typing import Final, Literal, NamedTuple, Protocol

import httpx

from vault.clock import Clock, SystemClock, parse_rfc3339
from vault.errors import ConfigurationError, InvalidInput, SignatureError

ChannelName = Literal["email", "sms", "webhook"]
Outcome = Literal["sent", "retryable_failure", "permanent_failure"]
TlsMode = Literal["none", "starttls", "tls"]
HttpAuth = Literal["basic", "bearer"]
DeliveryStatus = Literal["delivered", "failed", "expired", "rejected", "pending", "unknown"]

MAX_DEDUPE_KEY_LENGTH: Final = 200
DEFAULT_SIGNATURE_TOLERANCE: Final = timedelta(minutes=5)


class Attachment(NamedTuple):
    """One attached file: a plain ``(filename, mime, content)`` tuple works too."""

    filename: str
    mime: str
    content: bytes


def _has_control_chars(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


@dataclass(frozen=True)
class OutboundMessage:
    """One message for one recipient on one channel, ready to hand to a transport.

    ``recipient`` and the bodies are kept out of ``repr`` so that a logged message
    never shows an address or, for a key recovery, the connection key.
    """

    dedupe_key: str
    channel: ChannelName
    recipient: str = field(repr=False)
    subject: str | None
    text: str = field(repr=False)
    html: str | None = field(default=None, repr=False)
    attachments: tuple[Attachment, ...] = field(default=(), repr=False)
    language: str = "fr"

    def __post_init__(self) -> None:
        # The key travels in SMTP and HTTP headers: printable ASCII only, so that it
        # can never smuggle a header line (CRLF injection) into either protocol.
        key = self.dedupe_key
        if (
            not key
            or len(key) > MAX_DEDUPE_KEY_LENGTH
            or not all(0x21 <= ord(c) <= 0x7E for c in key)
        ):
            raise InvalidInput("dedupe_key must be 1-200 printable ASCII characters")
        if not self.recipient or _has_control_chars(self.recipient):
            raise InvalidInput("recipient is empty or contains control characters")
        if self.subject is not None and _has_control_chars(self.subject):
            raise InvalidInput("subject contains control characters")
        object.__setattr__(self, "attachments", tuple(Attachment(*a) for a in self.attachments))


@dataclass(frozen=True)
class SendResult:
    """What one attempt produced. ``retry_after`` is the provider's hint, in seconds."""

    outcome: Outcome
    provider_message_id: str | None
    detail: str
    retry_after: float | None = None

    @property
    def retryable(self) -> bool:
        return self.outcome == "retryable_failure"

    def summary(self) -> str:
        parts = [self.outcome, self.detail]
        if self.provider_message_id:
            parts.append(f"id={self.provider_message_id}")
        if self.retry_after is not None:
            parts.append(f"retry_after={self.retry_after:g}s")
        return "; ".join(parts)


def _sent(provider_message_id: str | None, detail: str) -> SendResult:
    return SendResult("sent", provider_message_id, detail)


def _retry(detail: str, retry_after: float | None = None) -> SendResult:
    return SendResult("retryable_failure", None, detail, retry_after)


def _permanent(detail: str) -> SendResult:
    return SendResult("permanent_failure", None, detail)


class AlertChannel(Protocol):
    """The port. ``name`` is the channel an :class:`OutboundMessage` must name."""

    @property
    def name(self) -> ChannelName: ...

    def send(self, message: OutboundMessage) -> SendResult: ...


def _check_channel(expected: ChannelName, message: OutboundMessage) -> None:
    if message.channel != expected:
        raise InvalidInput(f"message for channel {message.channel!r} sent to {expected!r}")


# --- e-mail -----------------------------------------------------------------------------
def message_id_for(dedupe_key: str, domain: str = "vault.ofpra") -> str:
    """The deterministic ``Message-ID`` (RFC 5322 s. 3.6.4) for a dedupe key.

    Hashed rather than copied so the header reveals nothing of how keys are built.
    """
    digest = hashlib.sha256(dedupe_key.encode("ascii")).hexdigest()[:40]
    return f"<{digest}@{domain}>"


class SmtpChannel:
    """E-mail over SMTP (stdlib :mod:`smtplib`, synchronous by design).

    ``tls``: ``"tls"`` is implicit TLS (port 465, RFC 8314, preferred), ``"starttls"``
    upgrades a plain connection (port 587) and fails if the server does not offer it,
    ``"none"`` is for a local relay or tests only. ``ssl_context`` defaults to the
    system trust store with hostname checks.
    """

    def __init__(
        self,
        host: str,
        port: int,
        tls: TlsMode,
        user: str | None,
        password: str | None,
        from_addr: str,
        timeout: float = 10.0,
        *,
        ssl_context: ssl.SSLContext | None = None,
        message_id_domain: str = "vault.ofpra",
        clock: Clock | None = None,
    ) -> None:
        if tls not in ("none", "starttls", "tls"):
            raise ConfigurationError("SMTP tls must be none, starttls or tls")
        if (user is None) != (password is None):
            raise ConfigurationError("SMTP user and password go together")
        if user is not None and tls == "none":
            raise ConfigurationError("SMTP credentials are never sent without TLS")
        self.host = host
        self.port = port
        self.tls: TlsMode = tls
        self._user = user
        self._password = password
        self.from_addr = from_addr
        self.timeout = timeout
        self._ssl_context = ssl_context or ssl.create_default_context()
        self.message_id_domain = message_id_domain
        self._clock = clock or SystemClock()

    @property
    def name(self) -> ChannelName:
        return "email"

    def __repr__(self) -> str:
        return f"SmtpChannel({self.host}:{self.port}, tls={self.tls})"

    def build_email(self, message: OutboundMessage) -> EmailMessage:
        """The MIME message: multipart/alternative (text, HTML) inside multipart/mixed
        when there are attachments."""
        mail = EmailMessage(policy=SMTP_POLICY)
        mail["From"] = self.from_addr
        mail["To"] = message.recipient
        mail["Subject"] = message.subject or ""
        mail["Date"] = format_datetime(self._clock.now())
        mail["Message-ID"] = message_id_for(message.dedupe_key, self.message_id_domain)
        mail["X-Vault-Dedupe-Key"] = message.dedupe_key
        # RFC 3834: stops vacation auto-replies from answering the vault.
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(message.text, subtype="plain", charset="utf-8")
        if message.html is not None:
            mail.add_alternative(message.html, subtype="html", charset="utf-8")
        for attachment in message.attachments:
            maintype, _, subtype = attachment.mime.partition("/")
            if not subtype:
                raise InvalidInput("attachment MIME type must be type/subtype")
            mail.add_attachment(
                attachment.content,
                maintype=maintype,
                subtype=subtype,
                filename=attachment.filename,
            )
        # Set last: turning the message multipart moves Content-* headers to the first
        # part, and the language belongs to the whole message (RFC 3282).
        mail["Content-Language"] = message.language
        return mail

    def send(self, message: OutboundMessage) -> SendResult:
        _check_channel("email", message)
        payload = self.build_email(message).as_bytes(policy=SMTP_POLICY)
        message_id = message_id_for(message.dedupe_key, self.message_id_domain)
        try:
            smtp = self._connect()
        except smtplib.SMTPResponseException as exc:
            return _smtp_reply_result("connect", exc.smtp_code)
        except (OSError, smtplib.SMTPException) as exc:
            return _retry(f"SMTP connection failed ({type(exc).__name__})")
        try:
            return self._transaction(smtp, message.recipient, payload, message_id)
        except smtplib.SMTPResponseException as exc:
            return _smtp_reply_result("session", exc.smtp_code)
        except (OSError, smtplib.SMTPException) as exc:
            return _retry(f"SMTP session failed ({type(exc).__name__})")
        finally:
            _close_quietly(smtp)

    def _connect(self) -> smtplib.SMTP:
        smtp: smtplib.SMTP
        if self.tls == "tls":
            smtp = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self._ssl_context
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        return smtp

    def _transaction(
        self, smtp: smtplib.SMTP, recipient: str, payload: bytes, message_id: str
    ) -> SendResult:
        smtp.ehlo()
        if self.tls == "starttls":
            if not smtp.has_extn("starttls"):
                return _retry("SMTP server does not offer STARTTLS (configuration)")
            code, _ = smtp.starttls(context=self._ssl_context)
            if code != 220:
                return _smtp_reply_result("starttls", code)
            smtp.ehlo()
        if self._user is not None and self._password is not None:
            try:
                smtp.login(self._user, self._password)
            except smtplib.SMTPAuthenticationError as exc:
                return _retry(f"SMTP authentication refused ({exc.smtp_code}; configuration)")
        # MAIL / RCPT / DATA one by one (not sendmail) so that each reply code is ours
        # to classify, and no exception carrying the recipient address is ever built.
        code, _ = smtp.mail(self.from_addr)
        if code != 250:
            if 500 <= code < 600:
                return _retry(f"SMTP sender refused ({code}; configuration)")
            return _smtp_reply_result("mail", code)
        code, _ = smtp.rcpt(recipient)
        if code not in (250, 251):
            return _smtp_reply_result("rcpt", code)
        code, _ = smtp.data(payload)
        if code != 250:
            return _smtp_reply_result("data", code)
        return _sent(message_id, "accepted by SMTP server (250)")


def _smtp_reply_result(stage: str, code: int) -> SendResult:
    # RFC 5321 s. 4.2.1: 4yz is a transient negative completion, 5yz a permanent one.
    if 400 <= code < 500:
        return _retry(f"SMTP {stage} temporary failure ({code})")
    if 500 <= code < 600:
        return _permanent(f"SMTP {stage} refused ({code})")
    return _retry(f"SMTP {stage} unexpected reply ({code})")


def _close_quietly(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()


# --- HTTP channels ----------------------------------------------------------------------
def _http_timeout(timeout: float) -> httpx.Timeout:
    return httpx.Timeout(timeout, connect=min(timeout, 3.0))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """RFC 9110 s. 10.2.3: delay-seconds or an HTTP-date; ``None`` if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:
        return None
    return max(0.0, (at - now).total_seconds())


def _http_result(response: httpx.Response, now: datetime, what: str) -> SendResult:
    status = response.status_code
    if 200 <= status < 300:
        return _sent(_provider_id(response), f"{what} accepted ({status})")
    retry_after = parse_retry_after(response.headers.get("retry-after"), now)
    if status == 429:
        return _retry(f"{what} rate limited (429)", retry_after)
    if status >= 500:
        return _retry(f"{what} server error ({status})", retry_after)
    if status in (408, 409, 425):
        # Request timeout, idempotent request still in flight, too early: all transient.
        return _retry(f"{what} asked to retry ({status})", retry_after)
    if status in (401, 403):
        return _retry(f"{what} refused our credentials ({status}; configuration)")
    return _permanent(f"{what} refused the message ({status})")


def _provider_id(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        value = body.get("id")
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    return None


def _transport_failure(exc: httpx.HTTPError, what: str) -> SendResult:
    if isinstance(exc, httpx.TimeoutException):
        return _retry(f"{what} timed out ({type(exc).__name__})")
    return _retry(f"{what} unreachable ({type(exc).__name__})")


class SmsHttpChannel:
    """SMS through an HTTP provider: ``POST url`` with JSON
    ``{"to", "from", "text", "client_ref"}`` and ``Idempotency-Key: <dedupe_key>``.

    A 2xx answer is "sent" and the provider's message id is read from the JSON ``id``.
    ``auth="basic"`` sends ``username``/``secret`` as HTTP Basic, ``"bearer"`` sends
    ``secret`` as a bearer token.
    """

    def __init__(
        self,
        url: str,
        username: str | None,
        secret: str,
        sender: str,
        timeout: float = 5.0,
        *,
        auth: HttpAuth = "basic",
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if auth == "basic" and not username:
            raise ConfigurationError("SMS basic auth needs a username")
        if auth not in ("basic", "bearer"):
            raise ConfigurationError("SMS auth must be basic or bearer")
        self.url = url
        self.sender = sender
        self.timeout = timeout
        self._clock = clock or SystemClock()
        headers = {"Accept": "application/json"}
        basic: httpx.BasicAuth | None = None
        if auth == "basic":
            basic = httpx.BasicAuth(username or "", secret)
        else:
            headers["Authorization"] = f"Bearer {secret}"
        self._client = httpx.Client(
            auth=basic,
            headers=headers,
            timeout=_http_timeout(timeout),
            transport=transport,
            follow_redirects=False,
        )

    @property
    def name(self) -> ChannelName:
        return "sms"

    def __repr__(self) -> str:
        return f"SmsHttpChannel({self.url!r})"

    def close(self) -> None:
        self._client.close()

    def send(self, message: OutboundMessage) -> SendResult:
        _check_channel("sms", message)
        body = {
            "to": message.recipient,
            "from": self.sender,
            "text": message.text,
            "client_ref": message.dedupe_key,
        }
        try:
            response = self._client.post(
                self.url, json=body, headers={"Idempotency-Key": message.dedupe_key}
            )
        except httpx.HTTPError as exc:
            return _transport_failure(exc, "SMS provider")
        return _http_result(response, self._clock.now(), "SMS provider")


def sign_body(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` over ``timestamp + "." + body`` (see the module docstring)."""
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    body: bytes,
    headers: Mapping[str, str],
    secret: bytes,
    *,
    now: datetime,
    signature_header: str,
    timestamp_header: str,
    tolerance: timedelta = DEFAULT_SIGNATURE_TOLERANCE,
) -> None:
    """Return ``None`` or raise :class:`SignatureError`, which says nothing of why."""
    lowered = {k.lower(): v for k, v in headers.items()}
    signature = lowered.get(signature_header.lower())
    timestamp = lowered.get(timestamp_header.lower())
    if not signature or not timestamp or not timestamp.isdigit():
        raise SignatureError()
    expected = sign_body(secret, timestamp, body)
    given = signature.strip().encode("ascii", "replace")
    if not hmac.compare_digest(expected.encode("ascii"), given):
        raise SignatureError()
    if abs(now.timestamp() - int(timestamp)) > tolerance.total_seconds():
        raise SignatureError()


class WebhookChannel:
    """Acknowledgements of receipt to OFPRA's DG or a prefecture, as a signed JSON POST.

    Body: ``{"dedupe_key", "recipient", "language", "subject", "text", "html",
    "attachments": [{"filename", "mime", "content_base64"}]}``; ``recipient`` names the
    receiving service (the URL is the channel's). Headers: ``X-Vault-Timestamp`` (unix
    seconds), ``X-Vault-Signature: sha256=<hex>`` (see :func:`sign_body`) and
    ``Idempotency-Key``. Outcomes map as for the SMS channel.
    """

    SIGNATURE_HEADER: Final = "X-Vault-Signature"
    TIMESTAMP_HEADER: Final = "X-Vault-Timestamp"

    def __init__(
        self,
        url: str,
        hmac_secret: bytes,
        timeout: float = 5.0,
        *,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if len(hmac_secret) < 32:
            raise ConfigurationError("webhook HMAC secret must be at least 32 bytes")
        self.url = url
        self._secret = hmac_secret
        self.timeout = timeout
        self._clock = clock or SystemClock()
        self._client = httpx.Client(
            timeout=_http_timeout(timeout), transport=transport, follow_redirects=False
        )

    @property
    def name(self) -> ChannelName:
        return "webhook"

    def __repr__(self) -> str:
        return f"WebhookChannel({self.url!r})"

    def close(self) -> None:
        self._client.close()

    def send(self, message: OutboundMessage) -> SendResult:
        _check_channel("webhook", message)
        body = json.dumps(
            {
                "dedupe_key": message.dedupe_key,
                "recipient": message.recipient,
                "language": message.language,
                "subject": message.subject,
                "text": message.text,
                "html": message.html,
                "attachments": [
                    {
                        "filename": a.filename,
                        "mime": a.mime,
                        "content_base64": base64.b64encode(a.content).decode("ascii"),
                    }
                    for a in message.attachments
                ],
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode("utf-8")
        now = self._clock.now()
        timestamp = str(int(now.timestamp()))
        headers = {
            "Content-Type": "application/json",
            self.TIMESTAMP_HEADER: timestamp,
            self.SIGNATURE_HEADER: sign_body(self._secret, timestamp, body),
            "Idempotency-Key": message.dedupe_key,
        }
        try:
            response = self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return _transport_failure(exc, "webhook receiver")
        return _http_result(response, self._clock.now(), "webhook receiver")


# --- SMS delivery reports ---------------------------------------------------------------
@dataclass(frozen=True)
class DeliveryReport:
    provider_message_id: str
    status: DeliveryStatus
    at: datetime
    raw_status: str
    client_ref: str | None = None
    error_code: str | None = None

    def summary(self) -> str:
        return f"{self.provider_message_id}: {self.status} at {self.at.isoformat()}"


_DELIVERY_STATUSES: Final[Mapping[str, DeliveryStatus]] = {
    "delivered": "delivered",
    "failed": "failed",
    "undeliverable": "failed",
    "expired": "expired",
    "rejected": "rejected",
    "pending": "pending",
    "buffered": "pending",
    "accepted": "pending",
}

DELIVERY_REPORT_SIGNATURE_HEADER: Final = "X-Provider-Signature"
DELIVERY_REPORT_TIMESTAMP_HEADER: Final = "X-Provider-Timestamp"


def parse_delivery_report(
    body: bytes,
    headers: Mapping[str, str],
    secret: bytes,
    *,
    now: datetime,
    tolerance: timedelta = DEFAULT_SIGNATURE_TOLERANCE,
) -> DeliveryReport:
    """Verify and parse one SMS delivery report posted by the provider.

    Expected provider format (the contract our provider settings must match)::

        POST <callback>
        Content-Type: application/json
        X-Provider-Timestamp: 1767258000                  (unix seconds)
        X-Provider-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

        {"id": "<provider message id>", "status": "delivered", "at": "<RFC 3339>",
         "client_ref": "<our dedupe key>", "error_code": null}

    ``status`` is one of delivered, failed/undeliverable, expired, rejected,
    pending/buffered/accepted; anything else maps to ``"unknown"`` (kept in
    ``raw_status``) rather than failing, so a provider adding a state does not make
    it resend forever. The signature is checked before the body is parsed, and a
    timestamp more than ``tolerance`` away from ``now`` is refused as a replay.

    Raises :class:`SignatureError` (opaque) or :class:`InvalidInput` for a correctly
    signed but malformed report.
    """
    verify_signature(
        body,
        headers,
        secret,
        now=now,
        signature_header=DELIVERY_REPORT_SIGNATURE_HEADER,
        timestamp_header=DELIVERY_REPORT_TIMESTAMP_HEADER,
        tolerance=tolerance,
    )
    try:
        data = json.loads(body)
        provider_id = data["id"]
        raw_status = data["status"]
        at = parse_rfc3339(data["at"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput("malformed delivery report") from exc
    if not isinstance(provider_id, str | int) or not isinstance(raw_status, str):
        raise InvalidInput("malformed delivery report")
    client_ref = data.get("client_ref")
    error_code = data.get("error_code")
    return DeliveryReport(
        provider_message_id=str(provider_id),
        status=_DELIVERY_STATUSES.get(raw_status.lower(), "unknown"),
        at=at,
        raw_status=raw_status,
        client_ref=client_ref if isinstance(client_ref, str) else None,
        error_code=None if error_code is None else str(error_code),
    )


__all__ = [
    "AlertChannel",
    "Attachment",
    "ChannelName",
    "DeliveryReport",
    "DeliveryStatus",
    "OutboundMessage",
    "Outcome",
    "SendResult",
    "SmsHttpChannel",
    "SmtpChannel",
    "WebhookChannel",
    "message_id_for",
    "parse_delivery_report",
    "parse_retry_after",
    "sign_body",
    "verify_signature",
]
