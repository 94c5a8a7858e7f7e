"""Staff page sessions: a staff member signs in once with their bearer token.

The token is checked with :func:`vault.staff.authenticate_staff` and never kept by
the browser; the page session id (256-bit random) is stored as a SHA-256 digest,
like applicant sessions (SECURITY.md "Credentials"), with the same idle and
absolute timeouts.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import update

from vault.crypto.tokens import token_digest
from vault.db.models import Staff
from vault.db.pages_models import StaffPageSession
from vault.errors import Unauthenticated
from vault.principal import Principal
from vault.service import Vault
from vault.staff import authenticate_staff

PREFIX = "ovp_"


def sign_in(vault: Vault, token: str) -> tuple[str, Principal]:
    """Check a staff bearer token; open a page session. Returns (session id, principal)."""
    principal = authenticate_staff(vault, token.strip())
    session_id = PREFIX + secrets.token_urlsafe(32)
    now = vault.clock.now()
    with vault.write() as s:
        s.add(
            StaffPageSession(
                token_digest=token_digest(session_id),
                staff_id=principal.id,
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(seconds=vault.settings.session_absolute_seconds),
            )
        )
    return session_id, principal


def authenticate(vault: Vault, session_id: str) -> Principal:
    digest = token_digest(session_id)
    now = vault.clock.now()
    with vault.read() as s:
        row = s.get(StaffPageSession, digest)
        staff = s.get(Staff, row.staff_id) if row is not None else None
    if (
        row is None
        or staff is None
        or row.revoked_at is not None
        or row.expires_at <= now
        or row.last_seen_at + timedelta(seconds=vault.settings.session_idle_seconds) <= now
        or staff.disabled_at is not None
        or staff.expires_at <= now
    ):
        raise Unauthenticated()
    if now - row.last_seen_at > timedelta(seconds=60):
        with vault.write() as s:
            s.execute(
                update(StaffPageSession)
                .where(StaffPageSession.token_digest == digest)
                .values(last_seen_at=now)
            )
    return Principal("staff", staff.id, staff.role, staff.structure_id, session_digest=digest)


def sign_out(vault: Vault, session_id: str) -> None:
    with vault.write() as s:
        s.execute(
            update(StaffPageSession)
            .where(StaffPageSession.token_digest == token_digest(session_id))
            .values(revoked_at=vault.clock.now())
        )
