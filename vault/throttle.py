"""Brute-force defence for every credential check (issue 5 §5).

Two counters, both kept in the database (``auth_throttle``) so they hold across
processes and restarts:

* **per identifier** (the AGDREF or OFPRA number as typed, stored only as a keyed
  digest): after ``auth_max_failures`` failed attempts the identifier is locked for
  ``auth_lockout_seconds``, doubling at each further lockout (exponential backoff,
  capped at one day) until a success resets it. This stops credential stuffing and
  online guessing against one account (NIST SP 800-63B §5.2.2: at most 100 failed
  attempts; we are far below).
* **per client address**: at most ``auth_ip_per_minute`` attempts of any kind per
  fixed one-minute window. This stops password spraying (one guess against many
  accounts from one address).

The identifier counter does not depend on whether an account exists: an unknown
identifier is throttled exactly like a known one, so a lockout reveals nothing.
An attempt is *reserved* (counted as a failure) before the expensive check runs and
refunded on success, under the row lock, so parallel guesses cannot overshoot.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.orm import Session as DbSession

from vault.db.accounts_models import AuthThrottle
from vault.db.models import Setting
from vault.errors import TooManyRequests
from vault.service import Vault

MAX_LOCKOUT_SECONDS = 24 * 3600
IP_WINDOW = timedelta(minutes=1)
UNIFORM_DETAIL = "too many attempts; try again later"
_SECRET_NAME = "throttle_hmac_key"  # noqa: S105 -- a row name, not a secret


def identifier_key(vault: Vault, identifier: str, scope: str = "credential") -> str:
    """A keyed digest of the identifier: the throttle table holds no AGDREF number.

    ``credential`` (login, first connection, reset) and ``recovery`` (key recovery)
    are separate counters, so asking for one's key never locks one out of logging in.
    """
    ident = (identifier or "").strip().upper()
    msg = f"{scope}\x00{ident}".encode()
    mac = hmac.new(_throttle_secret(vault), msg, hashlib.sha256).hexdigest()
    return "id:" + mac[:64]


def address_key(address: str) -> str:
    return "ip:" + (address or "unknown")[:64]


def _throttle_secret(vault: Vault) -> bytes:
    """A random per-deployment HMAC key kept in ``vault_meta`` (survives KEK rotation)."""
    cached = vault.extras.get("throttle_secret")
    if cached is None:
        with vault.read() as s:
            row = s.get(Setting, _SECRET_NAME)
        if row is None:
            try:
                with vault.write() as s:
                    s.add(
                        Setting(
                            key=_SECRET_NAME,
                            value=secrets.token_hex(32),
                            updated_at=vault.clock.now(),
                        )
                    )
            except SAIntegrityError:
                pass  # another process created it first
            with vault.read() as s:
                row = s.get(Setting, _SECRET_NAME)
        assert row is not None
        cached = bytes.fromhex(row.value)
        vault.extras["throttle_secret"] = cached
    secret: bytes = cached
    return secret


def _row(s: DbSession, key: str, now: datetime) -> AuthThrottle:
    values = {
        "key": key,
        "failures": 0,
        "lockouts": 0,
        "window_start": now,
        "window_count": 0,
        "updated_at": now,
    }
    ins = pg_insert if s.bind is not None and s.bind.dialect.name == "postgresql" else sqlite_insert
    s.execute(ins(AuthThrottle).values(**values).on_conflict_do_nothing(index_elements=["key"]))
    row = s.scalar(select(AuthThrottle).where(AuthThrottle.key == key).with_for_update())
    assert row is not None
    return row


def _retry_after(until: datetime, now: datetime) -> int:
    return max(1, int((until - now).total_seconds() + 0.999))


def reserve(
    vault: Vault, identifier: str | None, address: str | None, *, scope: str = "credential"
) -> None:
    """Count one attempt now; raise :class:`TooManyRequests` if it is not allowed.

    The attempt counts as a failure until :func:`succeeded` refunds it.
    """
    now = vault.clock.now()
    st = vault.settings
    # Keys first: the HMAC key may need its own transaction (never nest two writers).
    id_key = identifier_key(vault, identifier, scope) if identifier is not None else None
    with vault.write() as s:
        if address:
            ip = _row(s, address_key(address), now)
            if now - ip.window_start >= IP_WINDOW:
                ip.window_start, ip.window_count = now, 0
            if ip.window_count >= st.auth_ip_per_minute:
                raise TooManyRequests(
                    UNIFORM_DETAIL, retry_after=_retry_after(ip.window_start + IP_WINDOW, now)
                )
            ip.window_count += 1
            ip.updated_at = now
        if id_key is not None:
            acc = _row(s, id_key, now)
            if acc.locked_until is not None and acc.locked_until > now:
                raise TooManyRequests(
                    UNIFORM_DETAIL, retry_after=_retry_after(acc.locked_until, now)
                )
            acc.failures += 1
            acc.updated_at = now
            if acc.failures >= st.auth_max_failures:
                # This attempt is the last allowed; the next ones wait (backoff doubles).
                seconds = min(st.auth_lockout_seconds * 2**acc.lockouts, MAX_LOCKOUT_SECONDS)
                acc.locked_until = now + timedelta(seconds=seconds)
                acc.lockouts += 1
                acc.failures = 0


def succeeded(vault: Vault, identifier: str) -> None:
    """Refund the reserved attempt and clear the identifier's backoff."""
    now = vault.clock.now()
    key = identifier_key(vault, identifier)
    with vault.write() as s:
        row = s.get(AuthThrottle, key, with_for_update=True)
        if row is not None:
            row.failures = 0
            row.lockouts = 0
            row.locked_until = None
            row.updated_at = now


@contextmanager
def guarded(vault: Vault, identifier: str | None, address: str | None) -> Iterator[None]:
    """``with guarded(...)``: reserve, run the check, refund on normal exit."""
    reserve(vault, identifier, address)
    yield
    if identifier is not None:
        succeeded(vault, identifier)


def purge(vault: Vault, older_than: timedelta = timedelta(days=2)) -> int:
    """Drop rows untouched for a while and not locked (keeps the table small)."""
    now = vault.clock.now()
    with vault.write() as s:
        rows = list(
            s.scalars(select(AuthThrottle).where(AuthThrottle.updated_at < now - older_than))
        )
        n = 0
        for r in rows:
            if r.locked_until is None or r.locked_until <= now:
                s.delete(r)
                n += 1
        return n
