"""SQLAlchemy 2 models.

Invariants held by the schema itself, on SQLite and PostgreSQL alike:

* ``ledger_entries`` is append-only: triggers reject UPDATE and DELETE (migration 0001).
* one ``POSTED``, one ``FIRST_ACCESS`` and one ``NOTIFIED`` per document: partial
  unique index ``uq_ledger_document_event``.
* a document row is committed only after its blob was written (services), so a row
  never points at a missing blob.

Times are stored as timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both dialects (SQLite would hand back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# 64-bit ids on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer, "sqlite")


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    structure_id: Mapped[str | None] = mapped_column(String(64), index=True)
    token_digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agdref: Mapped[str] = mapped_column(String(10), unique=True)
    ofpra_number: Mapped[str | None] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(
        String(32)
    )  # awaiting_first_connection|active|opted_out|closed
    guda: Mapped[str] = mapped_column(String(64))
    registered_on: Mapped[date] = mapped_column(Date)
    procedure: Mapped[str] = mapped_column(String(32))
    requalified_on: Mapped[date | None] = mapped_column(Date)
    requalification_region: Mapped[str | None] = mapped_column(String(64))
    prefecture: Mapped[str | None] = mapped_column(String(64))
    structure_id: Mapped[str] = mapped_column(String(64), index=True)
    language: Mapped[str] = mapped_column(String(8))
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    connection_key_hash: Mapped[str] = mapped_column(String(200))
    connection_key_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    subject_salt: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    kek_version: Mapped[int] = mapped_column(Integer)
    key_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Accounts issue (migration 0003): eligibility facts recorded at registration,
    # the opt-out workflow (FAQ order) and closure.
    overseas: Mapped[bool] = mapped_column(Boolean, default=False)
    unaccompanied_minor: Mapped[bool] = mapped_column(Boolean, default=False)
    unable_to_use_space: Mapped[bool] = mapped_column(Boolean, default=False)
    eligibility_table: Mapped[str | None] = mapped_column(String(64))
    opt_out_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    opt_out_form_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_reason: Mapped[str | None] = mapped_column(String(32))
    contacts_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Session(Base):
    """Server-side applicant sessions; the token itself is never stored."""

    __tablename__ = "sessions"

    token_digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("account_id", "idempotency_key", name="uq_document_idem"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    type_code: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))  # of the sealed PDF the applicant downloads
    size: Mapped[int] = mapped_column(BigInteger)
    blob_name: Mapped[str] = mapped_column(String(200), unique=True)
    wrapped_data_key: Mapped[bytes] = mapped_column(LargeBinary)
    key_version: Mapped[int] = mapped_column(Integer)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    posted_by: Mapped[str] = mapped_column(String(36))
    first_access_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    notified_on: Mapped[date | None] = mapped_column(Date)
    notified_basis: Mapped[str | None] = mapped_column(String(32))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_digest: Mapped[str | None] = mapped_column(String(64))


class LedgerEntry(Base):
    """One row per ledger entry. Append-only (database triggers)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index(
            "uq_ledger_document_event",
            "document_id",
            "type",
            unique=True,
            sqlite_where=text("type IN ('POSTED', 'FIRST_ACCESS', 'NOTIFIED')"),
            postgresql_where=text("type IN ('POSTED', 'FIRST_ACCESS', 'NOTIFIED')"),
        ),
    )

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    type: Mapped[str] = mapped_column(String(40))
    entry: Mapped[bytes] = mapped_column(LargeBinary)  # RFC 8785 canonical JSON
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    chain: Mapped[bytes] = mapped_column(LargeBinary(32))
    document_id: Mapped[str | None] = mapped_column(String(36), index=True)
    account_id: Mapped[str | None] = mapped_column(String(36), index=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AccessLog(Base):
    """Every read of an applicant's data, by anyone (issue: accounts §9)."""

    __tablename__ = "access_log"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    account_id: Mapped[str] = mapped_column(String(36), index=True)
    actor_kind: Mapped[str] = mapped_column(String(20))  # applicant|staff
    actor_role: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str] = mapped_column(String(36))
    structure_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    document_id: Mapped[str | None] = mapped_column(String(36))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class Setting(Base):
    """Small key/value facts the vault keeps about itself (e.g. the log's public key)."""

    __tablename__ = "vault_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


__all__ = [
    "AccessLog",
    "Account",
    "Base",
    "Boolean",
    "Document",
    "LedgerEntry",
    "Session",
    "Setting",
    "Staff",
]
