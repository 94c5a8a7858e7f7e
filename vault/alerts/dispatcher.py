"""The outbox dispatcher: claim due rows, send them, record every attempt in the ledger.

One pass (:func:`dispatch_due`, run by ``ofpra-vault alerts run`` and by ``serve``'s
``alerts-dispatcher`` background task):

1. **Claim** (one short write transaction): rows ``pending`` with ``next_attempt_at <=
   now``, or ``sending`` whose lease expired (their dispatcher died mid-send), of the
   channels this process can send. PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED``,
   so several dispatchers share the work without waiting on each other; SQLite: the
   write transaction is ``BEGIN IMMEDIATE`` (one writer), so the select-then-update
   is atomic. Each claimed row becomes ``sending`` with ``lease_until`` and
   ``attempts + 1`` *before* the provider is called.
2. **Send** outside any transaction: open the sealed recipient and context, render,
   call the channel.
3. **Record** (one sequencer unit): ``ALERT_SENT`` (channel, outcome, attempt, message
   digest, subject commitment, document id) and the row's new state: ``sent``; back to
   ``pending`` with exponential backoff (``VAULT_ALERTS_BACKOFF_SECONDS`` doubling,
   at least the provider's ``Retry-After``); ``dead`` after
   ``VAULT_ALERTS_MAX_ATTEMPTS`` or on a permanent failure.

Delivery is at-least-once. A crash between the provider's acceptance and step 3
leaves the row ``sending``; once its lease expires another pass sends it again with
the *same* transport key (``transport_key``): the SMS provider and the webhook
receivers deduplicate on ``Idempotency-Key``, so they count one message. SMTP has no
such mechanism: the re-sent e-mail carries the same ``Message-ID`` (RFC 5322 s.
3.6.4), which mail stores and clients use to fold duplicates, but the SMTP server
itself accepts it twice. That residual window (server's ``250`` -> our commit, a
few milliseconds) is documented in docs/alerts.md.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.orm import Session as DbSession

from vault.alerts.acks import ack_attachments
from vault.alerts.channels import (
    AlertChannel,
    Attachment,
    DeliveryReport,
    OutboundMessage,
    SendResult,
    SmsHttpChannel,
    SmtpChannel,
    WebhookChannel,
)
from vault.alerts.messages import RenderedMessage, message_digest, render
from vault.alerts.outbox import (
    CONTEXT_PURPOSE,
    RECIPIENT_PURPOSE,
    open_json,
    row_binding,
)
from vault.alerts.reminders import still_worth_reminding
from vault.crypto.keys import open_secret
from vault.db.models import Account, Document
from vault.db.outbox_models import OutboxMessage
from vault.errors import InvalidInput, NotFound, VaultError
from vault.ledger.entries import EntryType, subject_commitment
from vault.ledger.sequencer import LedgerAppender
from vault.service import Vault

log = logging.getLogger("vault.alerts")

LEASE_SECONDS: Final = 120.0
CLAIM_BATCH: Final = 20
MAX_BATCHES_PER_PASS: Final = 50
MAX_BACKOFF_SECONDS: Final = 6 * 3600.0
DIGEST_KEY_LABEL: Final = b"ofpra-vault/alert-digest/v1"
EXTRAS_KEY: Final = "alert_channels"


class OutboxMessageNotFound(NotFound):
    code = "outbox_message_not_found"


class OutboxNotRetryable(VaultError):
    code = "outbox_not_retryable"
    status = 409


# --- keys -----------------------------------------------------------------------------------
def transport_key(dedupe_key: str, channel: str) -> str:
    """The key a provider sees (``Idempotency-Key``, ``Message-ID`` seed): stable for a
    row, and hashed so it says nothing about which document or event it is for."""
    return "ovx-" + hashlib.sha256(f"{channel}:{dedupe_key}".encode()).hexdigest()[:40]


def digest_key(vault: Vault, version: int | None = None) -> tuple[bytes, int]:
    """HMAC key for digests of sensitive messages: HKDF-SHA256 (RFC 5869) over the
    current KEK with a fixed label. Retiring that KEK later unlinks the digests."""
    v = vault.keyring.current_kek_version if version is None else version
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=DIGEST_KEY_LABEL).derive(
        vault.keyring.kek(v)
    )
    return key, v


def digest_of(vault: Vault, rendered: RenderedMessage) -> tuple[str, str]:
    """(hex digest, algorithm label) for the ledger."""
    if rendered.sensitive:
        key, version = digest_key(vault)
        return message_digest(rendered, key=key), f"hmac-sha256/kek-v{version}"
    return message_digest(rendered), "sha256"


# --- channels -----------------------------------------------------------------------------
def configured_channels(vault: Vault) -> tuple[str, ...]:
    """Channels this process can send; rows of other channels wait (never dropped)."""
    st = vault.settings
    out = []
    overrides: dict[str, Any] = vault.extras.get(EXTRAS_KEY, {})
    if st.smtp_host or "email" in overrides:
        out.append("email")
    if st.sms_url or "sms" in overrides:
        out.append("sms")
    if st.ack_webhook_secret or "webhook" in overrides:
        out.append("webhook")
    return tuple(out)


def channel_for(vault: Vault, channel: str, url: str | None = None) -> AlertChannel:
    """The channel adapter, built once per process from the settings.

    Adapters use the system clock, not the vault's: Date headers and signature
    timestamps are checked by the receiver against real time."""
    cache: dict[str, Any] = vault.extras.setdefault(EXTRAS_KEY, {})
    key = channel if channel != "webhook" else f"webhook:{url}"
    if key in cache:
        return cache[key]  # type: ignore[no-any-return]
    if channel == "webhook" and "webhook" in cache:
        return cache["webhook"]  # type: ignore[no-any-return]  # test override
    st = vault.settings
    adapter: AlertChannel
    if channel == "email":
        adapter = SmtpChannel(
            st.smtp_host,
            st.smtp_port,
            st.smtp_tls,  # type: ignore[arg-type]  # checked by SmtpChannel
            st.smtp_user or None,
            (st.smtp_password or None) if st.smtp_user else None,
            st.smtp_from,
        )
    elif channel == "sms":
        adapter = SmsHttpChannel(
            st.sms_url,
            st.sms_username or None,
            st.sms_password,
            st.sms_sender,
            auth=st.sms_auth,  # type: ignore[arg-type]  # checked by SmsHttpChannel
        )
    elif channel == "webhook" and url:
        adapter = WebhookChannel(url, st.ack_webhook_secret.encode())
    else:
        raise InvalidInput(f"no channel {channel!r}")
    cache[key] = adapter
    return adapter


# --- claim ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claimed:
    id: int
    attempt: int
    dedupe_key: str
    channel: str
    kind: str
    language: str
    account_id: str | None
    document_id: str | None
    destination: str | None
    recipient_sealed: bytes | None = field(repr=False)
    context_sealed: bytes = field(repr=False)


def claim_due(
    vault: Vault,
    *,
    now: datetime | None = None,
    limit: int = CLAIM_BATCH,
    channels: Iterable[str] | None = None,
    lease_seconds: float = LEASE_SECONDS,
) -> list[Claimed]:
    now = now or vault.clock.now()
    wanted = tuple(channels) if channels is not None else configured_channels(vault)
    if not wanted:
        return []
    with vault.write() as s:
        rows = list(
            s.scalars(
                select(OutboxMessage)
                .where(
                    OutboxMessage.channel.in_(wanted),
                    or_(
                        and_(
                            OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now
                        ),
                        and_(OutboxMessage.status == "sending", OutboxMessage.lease_until <= now),
                    ),
                )
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                .limit(limit)
                # PostgreSQL: concurrent dispatchers skip each other's rows. SQLite
                # ignores it; BEGIN IMMEDIATE already makes this transaction the writer.
                .with_for_update(skip_locked=True)
            )
        )
        out = []
        for r in rows:
            r.status = "sending"
            r.attempts += 1
            r.lease_until = now + timedelta(seconds=lease_seconds)
            r.updated_at = now
            out.append(
                Claimed(
                    r.id,
                    r.attempts,
                    r.dedupe_key,
                    r.channel,
                    r.kind,
                    r.language,
                    r.account_id,
                    r.document_id,
                    r.destination,
                    r.recipient_sealed,
                    r.context_sealed,
                )
            )
        return out


# --- send -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Prepared:
    channel: AlertChannel
    message: OutboundMessage
    rendered: RenderedMessage


class _Cancel(Exception):
    """The message became pointless before it was sent (reminder of a read document)."""


def portal_url(vault: Vault) -> str:
    return vault.settings.effective_public_url + "/"


def prepare(vault: Vault, c: Claimed, now: datetime) -> Prepared:
    binding = row_binding(c.dedupe_key, c.channel)
    if c.kind == "reminder" and c.document_id is not None:
        with vault.read() as s:
            doc = s.get(Document, c.document_id)
            if doc is None or not still_worth_reminding(doc, now):
                raise _Cancel()
    recipient = open_secret(vault.keyring, c.recipient_sealed or b"", RECIPIENT_PURPOSE, binding)
    context = open_json(vault, c.context_sealed, CONTEXT_PURPOSE, binding)
    if c.kind != "acknowledgement_of_receipt":
        context["portal_url"] = portal_url(vault)
    rendered = render(c.kind, c.language, **context)
    attachments: tuple[Attachment, ...] = ()
    if c.kind == "acknowledgement_of_receipt":
        attachments, _sealed = ack_attachments(vault, rendered, context)
    to = recipient.decode()
    if c.channel == "webhook":
        adapter = channel_for(vault, "webhook", to)
        # The URL is the channel's; the body names the receiving service.
        to = str(context.get("recipient_service") or c.destination or "office")
    else:
        adapter = channel_for(vault, c.channel)
    message = rendered.to_outbound(
        c.channel,  # type: ignore[arg-type]  # email|sms|webhook, from the claim filter
        transport_key(c.dedupe_key, c.channel),
        to,
        attachments,
    )
    return Prepared(adapter, message, rendered)


def backoff(vault: Vault, attempt: int, retry_after: float | None) -> float:
    delay = float(vault.settings.alerts_backoff_seconds) * 2.0 ** max(0, attempt - 1)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, MAX_BACKOFF_SECONDS)


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    cancelled: int = 0
    lost_lease: int = 0

    def summary(self) -> str:
        return (
            f"{self.claimed} claimed: {self.sent} sent, {self.retrying} to retry, "
            f"{self.dead} dead-lettered, {self.cancelled} cancelled"
            + (f", {self.lost_lease} lost their lease" if self.lost_lease else "")
        )

    def add(self, other: DispatchReport) -> None:
        for name in ("claimed", "sent", "retrying", "dead", "cancelled", "lost_lease"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _record(
    vault: Vault,
    c: Claimed,
    result: SendResult,
    digest: tuple[str, str] | None,
    report: DispatchReport,
) -> None:
    max_attempts = vault.settings.alerts_max_attempts

    def unit(s: DbSession, ledger: LedgerAppender) -> None:
        now = vault.clock.now()
        row = s.get(OutboxMessage, c.id)
        if row is None:
            return
        if result.outcome == "sent":
            outcome = "sent"
        elif result.outcome == "permanent_failure":
            outcome = "permanent_failure"
        elif c.attempt >= max_attempts:
            outcome = "dead"
        else:
            outcome = "retryable_failure"
        fields: dict[str, Any] = {
            "channel": c.channel,
            "outcome": outcome,
            "attempt": c.attempt,
            "kind": c.kind,
        }
        if digest is not None:
            fields["message_digest"], fields["digest_alg"] = digest
        if c.destination is not None:
            fields["destination"] = c.destination
        acc = s.get(Account, c.account_id) if c.account_id else None
        if acc is not None:
            fields["subject_commitment"] = subject_commitment(acc.subject_salt or b"", acc.agdref)
        # The attempt happened, so it is recorded even if our lease was lost meanwhile.
        ledger.append(
            EntryType.ALERT_SENT, document_id=c.document_id, account_id=c.account_id, **fields
        )
        if row.status != "sending" or row.attempts != c.attempt:
            # Another dispatcher reclaimed the row after our lease expired: its state
            # is theirs to write.
            report.lost_lease += 1
            return
        row.updated_at = now
        row.lease_until = None
        row.last_error = None if outcome == "sent" else result.detail[:300]
        if digest is not None:
            row.digest = digest[0]
        if outcome == "sent":
            row.status = "sent"
            row.sent_at = now
            row.provider_message_id = (result.provider_message_id or "")[:120] or None
            report.sent += 1
        elif outcome == "retryable_failure":
            row.status = "pending"
            row.next_attempt_at = now + timedelta(
                seconds=backoff(vault, c.attempt, result.retry_after)
            )
            report.retrying += 1
        else:
            row.status = "dead"
            report.dead += 1

    vault.sequencer.run(unit)


def _cancel(vault: Vault, c: Claimed, report: DispatchReport) -> None:
    with vault.write() as s:
        row = s.get(OutboxMessage, c.id)
        if row is not None and row.status == "sending" and row.attempts == c.attempt:
            row.status = "cancelled"
            row.attempts -= 1  # nothing was attempted
            row.lease_until = None
            row.updated_at = vault.clock.now()
            row.last_error = "no longer needed (document read or notified)"
    report.cancelled += 1


def process(vault: Vault, c: Claimed, report: DispatchReport) -> None:
    now = vault.clock.now()
    digest: tuple[str, str] | None = None
    if c.attempt > vault.settings.alerts_max_attempts:
        # Its lease expired too often: a dispatcher keeps dying on this message.
        _record(vault, c, SendResult("retryable_failure", None, "attempts exhausted"), None, report)
        return
    try:
        prepared = prepare(vault, c, now)
    except _Cancel:
        _cancel(vault, c, report)
        return
    except InvalidInput as exc:
        # Typically VAULT_PUBLIC_URL not https: the office's configuration, so retry.
        log.warning("outbox %s cannot be rendered (%s)", c.id, exc.code)
        result = SendResult("retryable_failure", None, f"cannot render ({exc.code}; configuration)")
        _record(vault, c, result, None, report)
        return
    except VaultError as exc:
        # A sealed recipient or context that no longer opens (its KEK was retired
        # without resealing, or the row was tampered with): retrying cannot help.
        log.error("outbox %s cannot be opened (%s)", c.id, exc.code)
        result = SendResult("permanent_failure", None, f"cannot open sealed message ({exc.code})")
        _record(vault, c, result, None, report)
        return
    digest = digest_of(vault, prepared.rendered)
    try:
        result = prepared.channel.send(prepared.message)
    except Exception as exc:
        log.exception("outbox %s: channel raised", c.id)
        result = SendResult("retryable_failure", None, f"internal error ({type(exc).__name__})")
    _record(vault, c, result, digest, report)


def dispatch_due(
    vault: Vault,
    *,
    limit: int = CLAIM_BATCH,
    lease_seconds: float = LEASE_SECONDS,
    max_batches: int = MAX_BATCHES_PER_PASS,
) -> DispatchReport:
    """Send everything due now (bounded: ``max_batches`` claims of ``limit`` rows)."""
    total = DispatchReport()
    for _ in range(max_batches):
        claimed = claim_due(vault, limit=limit, lease_seconds=lease_seconds)
        if not claimed:
            break
        total.claimed += len(claimed)
        for c in claimed:
            process(vault, c, total)
    return total


# --- delivery reports, admin, visibility -------------------------------------------------
def apply_delivery_report(vault: Vault, report: DeliveryReport) -> str | None:
    """Update the SMS row the provider reports on; returns its new status or ``None``
    if no such message (unknown id, or a ``client_ref`` that is not ours)."""
    if report.status not in ("delivered", "failed", "expired", "rejected"):
        return None
    new_status = "delivered" if report.status == "delivered" else "failed"
    with vault.write() as s:
        row = s.scalar(
            select(OutboxMessage).where(
                OutboxMessage.channel == "sms",
                OutboxMessage.provider_message_id == report.provider_message_id,
            )
        )
        if row is None:
            return None
        if report.client_ref is not None and report.client_ref != transport_key(
            row.dedupe_key, row.channel
        ):
            return None
        if row.status not in ("sent", "delivered", "failed"):
            return None
        row.status = new_status
        row.updated_at = vault.clock.now()
        if new_status == "delivered":
            row.delivered_at = report.at
            row.last_error = None
        else:
            row.last_error = f"provider reported {report.status}"
        return new_status


def outbox_item(row: OutboxMessage) -> dict[str, Any]:
    """An admin view of a row: never the address, only its masked hint."""
    return {
        "id": row.id,
        "kind": row.kind,
        "channel": row.channel,
        "destination": row.destination,
        "recipient": row.recipient_hint,
        "document_id": row.document_id,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at,
        "last_error": row.last_error,
        "provider_message_id": row.provider_message_id,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def list_outbox(
    vault: Vault, *, status: str | None = None, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    with vault.read() as s:
        q = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit).offset(offset)
        if status is not None:
            q = q.where(OutboxMessage.status == status)
        return [outbox_item(r) for r in s.scalars(q)]


RETRYABLE_STATUSES: Final = ("dead", "failed")


def retry_message(vault: Vault, message_id: int) -> dict[str, Any]:
    """Admin: put a dead (or provider-failed) message back in the queue, now.

    Attempts restart at 0, so the ledger's attempt numbers restart too; the entries
    stay distinct by sequence number and time."""
    with vault.write() as s:
        row = s.get(OutboxMessage, message_id)
        if row is None:
            raise OutboxMessageNotFound()
        if row.status not in RETRYABLE_STATUSES:
            raise OutboxNotRetryable(f"only {' or '.join(RETRYABLE_STATUSES)} messages are retried")
        now = vault.clock.now()
        row.status = "pending"
        row.attempts = 0
        row.next_attempt_at = now
        row.lease_until = None
        row.updated_at = now
        return outbox_item(row)


_OUTBOX = OutboxMessage.__table__.c
#: Every applicant's list reads this: only the displayed columns, as Core rows (whole ORM
#: objects with their sealed blobs cost more than the query), statement built once.
_STATUS_STATEMENT = (
    select(
        _OUTBOX.document_id,
        _OUTBOX.kind,
        _OUTBOX.channel,
        _OUTBOX.destination,
        _OUTBOX.status,
        _OUTBOX.attempts,
        _OUTBOX.delivered_at,
        _OUTBOX.sent_at,
        _OUTBOX.updated_at,
    )
    .where(_OUTBOX.document_id.in_(bindparam("ids", expanding=True)))
    .order_by(_OUTBOX.id)
)


def alert_status_for_documents(
    vault: Vault, document_ids: Iterable[str]
) -> dict[str, list[dict[str, Any]]]:
    """``{document_id: [{kind, channel, status, attempts, last_at}]}`` for display.

    No address, no hint: the applicant and the agent see *that* and *how* they were
    alerted. ``channel='none'``/``status='no_channel'`` means no contact was usable."""
    ids = list(dict.fromkeys(document_ids))
    out: dict[str, list[dict[str, Any]]] = {d: [] for d in ids}
    if not ids:
        return out
    with vault.read_connection() as c:
        rows = c.execute(_STATUS_STATEMENT, {"ids": ids})
        for r in rows:
            assert r.document_id is not None
            out[r.document_id].append(
                {
                    "kind": r.kind,
                    "channel": r.channel,
                    "destination": r.destination,
                    "status": r.status,
                    "attempts": r.attempts,
                    "last_at": r.delivered_at or r.sent_at or r.updated_at,
                }
            )
    return out


__all__ = [
    "Claimed",
    "DispatchReport",
    "OutboxMessageNotFound",
    "OutboxNotRetryable",
    "alert_status_for_documents",
    "apply_delivery_report",
    "claim_due",
    "configured_channels",
    "digest_key",
    "dispatch_due",
    "list_outbox",
    "process",
    "retry_message",
    "transport_key",
]
