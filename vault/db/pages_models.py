"""Server-side page sessions for office staff (web pages issue).

Staff authenticate to the API with long-lived bearer tokens (vault/staff.py). A
browser must not keep such a token: the staff sign-in page checks it once and opens
a short page session instead, revocable and with idle and absolute timeouts like the
applicants' sessions. Only the SHA-256 digest of the session id is stored.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from vault.db.models import Base, UTCDateTime


class StaffPageSession(Base):
    __tablename__ = "pages_staff_sessions"

    token_digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
