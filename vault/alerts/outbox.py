"""The alert outbox: messages are written in the transaction of the event that causes them.

Transactional outbox: :func:`enqueue_applicant_message` and
:func:`enqueue_office_message` only *insert rows* in the caller's session (posting,
key recovery, contact change, reminder, notification). The event and its alerts
commit or roll back together; the dispatcher (:mod:`vault.alerts.dispatcher`) sends
them later, outside any business transaction, so a slow SMTP server never holds the
ledger's writer lock.

What is stored (see :mod:`vault.db.outbox_models`): the render *context*, sealed with
the key ring (it may hold a connection key, R.531-17 acknowledgements hold an OFPRA
number), and the recipient, sealed too. The message is rendered at send time; its
digest goes to the ledger, never the address.

No usable channel: when ``ledger`` is given, one ``ALERT_SENT`` entry with outcome
``no_channel`` is appended (so the document's proof shows the applicant could not be
alerted), and a ``channel='none'`` tombstone row makes a replay of the same event
record it only once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.orm import Session as DbSession

from vault.alerts.channels import ChannelName
from vault.alerts.messages import render, resolve_language, validate
from vault.crypto.keys import open_secret, seal_secret
from vault.db.models import Account
from vault.db.outbox_models import OutboxMessage
from vault.errors import ConfigurationError, InvalidInput
from vault.ledger.entries import EntryType, subject_commitment
from vault.ledger.sequencer import LedgerAppender
from vault.service import Vault

RECIPIENT_PURPOSE: Final = "alert-recipient"
CONTEXT_PURPOSE: Final = "alert-context"
APPLICANT_CHANNELS: Final[tuple[ChannelName, ...]] = ("email", "sms")
#: Only used to validate a context at enqueue time; the real link is rendered at send
#: time from VAULT_PUBLIC_URL (so a posting never fails on the alert's configuration).
_CHECK_PORTAL: Final = "https://portal.invalid"


class UnknownChannel(InvalidInput):
    code = "alert_unknown_channel"


# --- sealing ----------------------------------------------------------------------------
def row_binding(dedupe_key: str, channel: str) -> str:
    """What a sealed recipient/context is bound to: moving it to another row fails."""
    return f"{channel}:{dedupe_key}"


def seal_json(vault: Vault, value: Mapping[str, Any], purpose: str, binding: str) -> bytes:
    return seal_secret(vault.keyring, _dumps(value), purpose, binding)


def open_json(vault: Vault, blob: bytes, purpose: str, binding: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(open_secret(vault.keyring, blob, purpose, binding))
    return _decode(data)


def _dumps(value: Mapping[str, Any]) -> bytes:
    def enc(v: Any) -> Any:
        # Tagged so that dates and datetimes come back as the types render() checks.
        if isinstance(v, datetime):
            return {"$datetime": v.isoformat()}
        if isinstance(v, date):
            return {"$date": v.isoformat()}
        return v

    return json.dumps({k: enc(v) for k, v in value.items()}, sort_keys=True).encode()


def _decode(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict) and "$datetime" in v:
            out[k] = datetime.fromisoformat(v["$datetime"])
        elif isinstance(v, dict) and "$date" in v:
            out[k] = date.fromisoformat(v["$date"])
        else:
            out[k] = v
    return out


def mask_recipient(channel: str, recipient: str) -> str:
    """A hint an admin can recognise without reading the address (``j***@e***.fr``)."""
    if channel == "email" and "@" in recipient:
        local, _, domain = recipient.rpartition("@")
        host, _, tld = domain.rpartition(".")
        return f"{local[:1]}***@{host[:1]}***.{tld}" if host else f"{local[:1]}***@***"
    if channel == "sms":
        return recipient[:3] + "*" * max(0, len(recipient) - 5) + recipient[-2:]
    if channel == "webhook":
        # The URL is the office's own endpoint, not personal data: keep its host.
        without_scheme = recipient.split("://", 1)[-1]
        return "https://" + without_scheme.split("/", 1)[0] + "/…"
    return "—"


# --- enqueue ------------------------------------------------------------------------------
def applicant_contacts(account: Account) -> dict[ChannelName, str]:
    out: dict[ChannelName, str] = {}
    if account.email:
        out["email"] = account.email
    if account.phone:
        out["sms"] = account.phone
    return out


def _commitment(account: Account | None) -> str | None:
    if account is None:
        return None
    return subject_commitment(account.subject_salt or b"", account.agdref)


#: Core statements, built once: these run inside ledger units (first access, posting),
#: in the sequencer's writer thread, where the ORM's per-statement work dominated.
#: A row is inserted at most once per ``(dedupe_key, channel)`` (the unique constraint
#: ``uq_alert_outbox_dedupe``): one ``INSERT ... ON CONFLICT DO NOTHING RETURNING id``
#: instead of a look-up then an insert, so a duplicate is skipped by the database
#: itself and the writer makes one round trip per row, not two.
_OUTBOX: Table = OutboxMessage.__table__  # type: ignore[assignment]
_INSERT_ONCE = {
    name: dialect.insert(_OUTBOX)
    .on_conflict_do_nothing(index_elements=[_OUTBOX.c.dedupe_key, _OUTBOX.c.channel])
    .returning(_OUTBOX.c.id)
    for name, dialect in (("sqlite", sqlite_dialect), ("postgresql", postgresql_dialect))
}


def _check_dedupe_key(dedupe_key: str) -> None:
    if (
        not dedupe_key
        or len(dedupe_key) > 160
        or not all(0x21 <= ord(c) <= 0x7E for c in dedupe_key)
    ):
        raise InvalidInput("dedupe_key must be 1-160 printable ASCII characters")


def _add_row(
    s: DbSession,
    vault: Vault,
    *,
    dedupe_key: str,
    channel: str,
    kind: str,
    language: str,
    recipient: str | None,
    context: Mapping[str, Any],
    account_id: str | None,
    document_id: str | None,
    destination: str | None,
    status: str = "pending",
) -> int | None:
    """Insert one outbox row now (Core); its id, or None if ``(dedupe_key, channel)``
    was already queued (idempotent: nothing written)."""
    now = vault.clock.now()
    binding = row_binding(dedupe_key, channel)
    values = {
        "dedupe_key": dedupe_key,
        "channel": channel,
        "kind": kind,
        "language": language,
        "account_id": account_id,
        "document_id": document_id,
        "destination": destination,
        "recipient_sealed": (
            None
            if recipient is None
            else seal_secret(vault.keyring, recipient.encode(), RECIPIENT_PURPOSE, binding)
        ),
        "recipient_hint": mask_recipient(channel, recipient or ""),
        "context_sealed": seal_json(vault, context, CONTEXT_PURPOSE, binding),
        "status": status,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
    conn = s.connection()
    row = conn.execute(_INSERT_ONCE[conn.dialect.name], values).first()
    return None if row is None else int(row[0])


def record_no_channel(
    s: DbSession,
    vault: Vault,
    ledger: LedgerAppender,
    *,
    kind: str,
    dedupe_key: str,
    account: Account | None,
    document_id: str | None,
    destination: str | None = None,
    reason: str,
) -> None:
    """``ALERT_SENT`` outcome ``no_channel`` once per dedupe key (tombstone row)."""
    row_id = _add_row(
        s,
        vault,
        dedupe_key=dedupe_key,
        channel="none",
        kind=kind,
        language="fr",
        recipient=None,
        context={},
        account_id=None if account is None else account.id,
        document_id=document_id,
        destination=destination,
        status="no_channel",
    )
    if row_id is None:
        return  # already recorded for this dedupe key
    fields: dict[str, Any] = {
        "channel": "none",
        "outcome": "no_channel",
        "attempt": 0,
        "kind": kind,
        "reason": reason,
    }
    if destination is not None:
        fields["destination"] = destination
    commitment = _commitment(account)
    if commitment is not None:
        fields["subject_commitment"] = commitment
    ledger.append(
        EntryType.ALERT_SENT,
        document_id=document_id,
        account_id=None if account is None else account.id,
        **fields,
    )


def enqueue_applicant_message(
    s: DbSession,
    vault: Vault,
    account: Account,
    kind: str,
    *,
    ledger: LedgerAppender | None = None,
    document_id: str | None = None,
    context: Mapping[str, Any] | None = None,
    dedupe_key: str,
    channels: Iterable[str] | None = None,
) -> list[int]:
    """Queue ``kind`` for ``account`` on each channel it has a contact for.

    Runs in the caller's transaction ``s`` (commit = the event and its alerts).
    ``context`` is the render context *without* ``portal_url`` (added at send time);
    it is validated now, so a bad context fails the event rather than the dispatcher.
    ``channels`` restricts to a subset of ``("email", "sms")``. Returns the new outbox
    row ids; a ``(dedupe_key, channel)`` already queued is skipped (idempotent).
    A kind with no SMS wording (e.g. an e-mail contact confirmation) skips SMS.
    """
    _check_dedupe_key(dedupe_key)
    ctx = dict(context or {})
    if "portal_url" in ctx:
        raise InvalidInput("portal_url is added at send time from VAULT_PUBLIC_URL")
    language = resolve_language(account.language)
    rendered = render(kind, language, portal_url=_CHECK_PORTAL, **ctx)
    wanted: Sequence[str] = tuple(channels) if channels is not None else APPLICANT_CHANNELS
    for name in wanted:
        if name not in APPLICANT_CHANNELS:
            raise UnknownChannel(f"applicant messages go by email or sms, not {name!r}")
    contacts = {
        ch: addr
        for ch, addr in applicant_contacts(account).items()
        if ch in wanted and not (ch == "sms" and rendered.sms is None)
    }
    if not contacts:
        if ledger is not None:
            record_no_channel(
                s,
                vault,
                ledger,
                kind=kind,
                dedupe_key=dedupe_key,
                account=account,
                document_id=document_id,
                reason="no_contact",
            )
        return []
    ids = []
    for channel, recipient in contacts.items():
        row_id = _add_row(
            s,
            vault,
            dedupe_key=dedupe_key,
            channel=channel,
            kind=kind,
            language=language,
            recipient=recipient,
            context=ctx,
            account_id=account.id,
            document_id=document_id,
            destination=None,
        )
        if row_id is not None:
            ids.append(row_id)
    return ids


def office_channel_for(destination: str) -> tuple[ChannelName, str]:
    """``mailto:ADDR`` -> e-mail to ADDR; ``https://...`` -> signed webhook (plain
    ``http://`` only to the loopback interface)."""
    if destination.startswith("mailto:") and "@" in destination:
        return "email", destination.removeprefix("mailto:")
    if destination.startswith("https://") or destination.startswith(_LOOPBACK_HTTP):
        return "webhook", destination
    raise ConfigurationError("an acknowledgement destination is mailto:ADDR or an https URL")


#: Plain HTTP only to this machine (a local relay, the test receiver): an
#: acknowledgement holds an OFPRA number and must not cross a network in clear.
_LOOPBACK_HTTP: Final = ("http://127.0.0.1:", "http://127.0.0.1/", "http://localhost:")


def enqueue_office_message(
    s: DbSession,
    vault: Vault,
    *,
    kind: str,
    destination_name: str,
    destination: str | None,
    account: Account | None,
    context: Mapping[str, Any],
    dedupe_key: str,
    document_id: str | None = None,
    ledger: LedgerAppender | None = None,
) -> list[int]:
    """Queue a message to an office destination (``mailto:`` or ``https:``).

    ``destination_name`` (``"dg"``, ``"prefecture"``) is what the ledger and admin
    views show; ``destination`` is the configured address. ``None`` or empty: no
    channel (recorded as ``no_channel`` when ``ledger`` is given)."""
    _check_dedupe_key(dedupe_key)
    if not destination:
        if ledger is not None:
            record_no_channel(
                s,
                vault,
                ledger,
                kind=kind,
                dedupe_key=dedupe_key,
                account=account,
                document_id=document_id,
                destination=destination_name,
                reason="no_destination",
            )
        return []
    validate(kind, **context)  # fail the event, not the dispatcher (no portal_url here)
    channel, recipient = office_channel_for(destination)
    row_id = _add_row(
        s,
        vault,
        dedupe_key=dedupe_key,
        channel=channel,
        kind=kind,
        language="fr",
        recipient=recipient,
        context=context,
        account_id=None if account is None else account.id,
        document_id=document_id,
        destination=destination_name,
    )
    return [] if row_id is None else [row_id]


def reseal_outbox(vault: Vault) -> int:
    """Re-seal every row under the current KEK (call during KEK rotation, before
    :meth:`KeyRing.retire`); returns how many rows changed. Sent rows are resealed
    too, so retiring the old KEK never leaves unreadable rows in the admin view."""
    from sqlalchemy import update

    from vault.crypto.keys import reseal_secret, sealed_secret_kek_version

    current = vault.keyring.current_kek_version
    changed = 0
    with vault.write() as s:
        for row in s.scalars(select(OutboxMessage)):
            binding = row_binding(row.dedupe_key, row.channel)
            values: dict[str, bytes] = {}
            if sealed_secret_kek_version(row.context_sealed) != current:
                values["context_sealed"] = reseal_secret(
                    vault.keyring, row.context_sealed, CONTEXT_PURPOSE, binding
                )
            blob = row.recipient_sealed
            if blob is not None and sealed_secret_kek_version(blob) != current:
                values["recipient_sealed"] = reseal_secret(
                    vault.keyring, blob, RECIPIENT_PURPOSE, binding
                )
            if values:
                s.execute(update(OutboxMessage).where(OutboxMessage.id == row.id).values(**values))
                changed += 1
    return changed


def count_sealed_under(vault: Vault, version: int) -> int:
    """Outbox values still sealed under KEK ``version`` (for ``remaining_wrapped``)."""
    from vault.crypto.keys import sealed_secret_kek_version

    n = 0
    with vault.read() as s:
        for ctx, rcpt in s.execute(
            select(OutboxMessage.context_sealed, OutboxMessage.recipient_sealed)
        ):
            for blob in (ctx, rcpt):
                if blob is not None and sealed_secret_kek_version(bytes(blob)) == version:
                    n += 1
    return n


def alert_status_for_documents(
    vault: Vault, document_ids: Iterable[str]
) -> dict[str, list[dict[str, Any]]]:
    """Re-export of :func:`vault.alerts.dispatcher.alert_status_for_documents` (the
    pages look it up here)."""
    from vault.alerts.dispatcher import alert_status_for_documents as status_for

    return status_for(vault, document_ids)


# --- hooks --------------------------------------------------------------------------------
def _on_posted(vault: Vault) -> Any:
    def hook(s: DbSession, ledger: LedgerAppender, doc: Any, account: Account) -> None:
        # The alert says only that *a* document is available (arrêté of 8 July 2020):
        # never its type or title; messages.render refuses such context keys anyway.
        enqueue_applicant_message(
            s,
            vault,
            account,
            "document_available",
            ledger=ledger,
            document_id=doc.id,
            dedupe_key=f"doc:{doc.id}:available",
        )

    return hook


def install(vault: Vault) -> None:
    """Posting alerts, R.531-17 acknowledgements, dispatcher and reminder tasks."""
    from vault.alerts.acks import on_notified
    from vault.alerts.dispatcher import dispatch_due
    from vault.alerts.reminders import send_reminders
    from vault.service import BackgroundTask

    vault.hooks("posted_hooks").append(_on_posted(vault))
    vault.hooks("notified_hooks").append(on_notified(vault))
    vault.background.append(BackgroundTask("alerts-dispatcher", 3.0, lambda v: dispatch_due(v)))
    vault.background.append(BackgroundTask("alerts-reminders", 300.0, lambda v: send_reminders(v)))


__all__ = [
    "CONTEXT_PURPOSE",
    "RECIPIENT_PURPOSE",
    "UnknownChannel",
    "alert_status_for_documents",
    "applicant_contacts",
    "count_sealed_under",
    "enqueue_applicant_message",
    "enqueue_office_message",
    "install",
    "mask_recipient",
    "office_channel_for",
    "open_json",
    "record_no_channel",
    "reseal_outbox",
    "row_binding",
    "seal_json",
]
