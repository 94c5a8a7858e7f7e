"""Models of the accounts feature area (issue 5): throttling and opt-out forms.

* ``auth_throttle``: one row per throttled key (an identifier digest or a client
  address), so the brute-force defence holds across processes and restarts.
* ``opt_out_forms``: the signed opt-out form collected by OFII, stored encrypted in
  the blob store exactly like a document (per-form data key wrapped by the
  applicant key); the row is committed only after the blob is written.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from vault.db.models import Base, UTCDateTime


class AuthThrottle(Base):
    __tablename__ = "auth_throttle"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    lockouts: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    window_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class OptOutForm(Base):
    __tablename__ = "opt_out_forms"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    blob_name: Mapped[str] = mapped_column(String(200), unique=True)
    wrapped_data_key: Mapped[bytes] = mapped_column(LargeBinary)
    key_version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    uploaded_by: Mapped[str] = mapped_column(String(36))


__all__ = ["AuthThrottle", "OptOutForm"]
