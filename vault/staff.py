"""Staff accounts and bearer tokens. Tokens are stored as SHA-256 digests only."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from vault.crypto.tokens import new_token, token_digest
from vault.db.models import Staff
from vault.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
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


@dataclass(frozen=True)
class StaffView:
    staff_id: str
    name: str
    role: str
    structure_id: str | None
    created_at: str
    expires_at: str
    disabled: bool


def _require_admin(actor: Principal) -> None:
    if actor.kind != "staff" or actor.role != "admin":
        raise Forbidden()


def list_staff(vault: Vault, actor: Principal) -> list[StaffView]:
    """Every staff member, without token material (admin only)."""
    _require_admin(actor)
    with vault.read() as s:
        rows = list(s.scalars(select(Staff).order_by(Staff.created_at, Staff.id)))
    return [
        StaffView(
            r.id,
            r.name,
            r.role,
            r.structure_id,
            r.created_at.isoformat(),
            r.expires_at.isoformat(),
            r.disabled_at is not None,
        )
        for r in rows
    ]


def admin_create_staff(
    vault: Vault, actor: Principal, *, role: str, name: str, structure_id: str | None
) -> IssuedToken:
    _require_admin(actor)
    return create_staff(vault, role=role, name=name, structure_id=structure_id)


def admin_disable_staff(vault: Vault, actor: Principal, staff_id: str) -> None:
    _require_admin(actor)
    if staff_id == actor.id:
        # An admin cannot lock the last door behind themselves by accident.
        raise InvalidInput("an admin cannot disable their own account")
    disable_staff(vault, _checked_id(staff_id))


def admin_rotate_token(vault: Vault, actor: Principal, staff_id: str) -> IssuedToken:
    _require_admin(actor)
    return rotate_staff_token(vault, _checked_id(staff_id))


def _checked_id(staff_id: str) -> str:
    try:
        if str(uuid.UUID(staff_id)) == staff_id:
            return staff_id
    except ValueError:
        pass
    raise NotFound("no such staff member")
