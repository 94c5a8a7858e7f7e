"""Staff accounts and bearer tokens. Tokens are stored as SHA-256 digests only."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from vault.crypto.tokens import new_token, token_digest
from vault.db.models import Staff
from vault.errors import InvalidInput, NotFound, Unauthenticated
from vault.principal import STAFF_ROLES, Principal
from vault.service import Vault


@dataclass(frozen=True)
class IssuedToken:
    staff_id: str
    role: str
    token: str  # shown once


def create_staff(
    vault: Vault, *, role: str, name: str, structure_id: str | None = None
) -> IssuedToken:
    if role not in STAFF_ROLES:
        raise InvalidInput(f"role must be one of {', '.join(STAFF_ROLES)}")
    if role == "professional" and not structure_id:
        raise InvalidInput("a professional is attached to one structure (--structure)")
    if not name.strip() or len(name) > 200:
        raise InvalidInput("name must be 1 to 200 characters")
    token = new_token()
    now = vault.clock.now()
    staff = Staff(
        id=str(uuid.uuid4()),
        name=name.strip(),
        role=role,
        structure_id=structure_id if role == "professional" else None,
        token_digest=token_digest(token),
        created_at=now,
        expires_at=now + timedelta(days=vault.settings.staff_token_days),
    )
    with vault.write() as s:
        s.add(staff)
    return IssuedToken(staff.id, role, token)


def rotate_staff_token(vault: Vault, staff_id: str) -> IssuedToken:
    token = new_token()
    now = vault.clock.now()
    with vault.write() as s:
        staff = s.get(Staff, staff_id)
        if staff is None:
            raise NotFound("no such staff member")
        staff.token_digest = token_digest(token)
        staff.expires_at = now + timedelta(days=vault.settings.staff_token_days)
        return IssuedToken(staff.id, staff.role, token)


def disable_staff(vault: Vault, staff_id: str) -> None:
    with vault.write() as s:
        staff = s.get(Staff, staff_id)
        if staff is None:
            raise NotFound("no such staff member")
        staff.disabled_at = vault.clock.now()


def authenticate_staff(vault: Vault, token: str) -> Principal:
    with vault.read() as s:
        staff = s.scalar(select(Staff).where(Staff.token_digest == token_digest(token)))
    now = vault.clock.now()
    if staff is None or staff.disabled_at is not None or staff.expires_at <= now:
        raise Unauthenticated()
    return Principal("staff", staff.id, staff.role, staff.structure_id)
