"""Models of the alert outbox (alerts issue).

``alert_outbox`` holds one row per message per channel, written in the *same*
transaction as the event that causes it (transactional outbox), so an event is never
committed without its alert and an alert never exists for an event that rolled back.

Invariants:

* ``(dedupe_key, channel)`` is unique: enqueueing the same event twice is a no-op, and
  the transport dedupe key derived from it (SMTP ``Message-ID``, HTTP
  ``Idempotency-Key``) is stable across restarts.
* Nothing personal is stored in clear: the recipient (address, phone number or
  webhook URL) and the render context (which may hold a connection key or an OFPRA
  number) are sealed with :func:`vault.crypto.keys.seal_secret`, bound to the row's
  dedupe key and channel. ``recipient_hint`` is a masked form for admins
  (``j***@e***.fr``, ``+33*******78``). ``last_error`` holds only the channel's fixed
  phrases (see :mod:`vault.alerts.channels`).
* ``channel = 'none'`` rows with status ``no_channel`` are tombstones: they record that
  an event had no usable channel, so a replayed event does not record it twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vault.db.models import Base, BigId, UTCDateTime

#: pending -> sending -> sent -> delivered | failed; pending/sending -> dead;
#: reminders that became pointless before sending -> cancelled.
OUTBOX_STATUSES = (
    "pending",
    "sending",
    "sent",
    "delivered",
    "failed",
    "dead",
    "cancelled",
    "no_channel",
)


class OutboxMessage(Base):
    __tablename__ = "alert_outbox"
    __table_args__ = (
        UniqueConstraint("dedupe_key", "channel", name="uq_alert_outbox_dedupe"),
        Index("ix_alert_outbox_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(160))
    channel: Mapped[str] = mapped_column(String(16))  # email|sms|webhook|none
    kind: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(8))
    account_id: Mapped[str | None] = mapped_column(String(36), index=True)
    document_id: Mapped[str | None] = mapped_column(String(36), index=True)
    # Office messages: "dg" or "prefecture"; None for applicant messages.
    destination: Mapped[str | None] = mapped_column(String(40))
    recipient_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    recipient_hint: Mapped[str] = mapped_column(String(80))
    context_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(300))
    provider_message_id: Mapped[str | None] = mapped_column(String(120), index=True)
    digest: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


__all__ = ["OUTBOX_STATUSES", "OutboxMessage"]
