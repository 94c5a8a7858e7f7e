"""Applicant accounts, credentials and sessions.

Rules implemented here (DOMAIN.md "Credentials"):

* the identifier is the AGDREF number (9 or 10 digits), or the OFPRA number once known;
* the connection key is printed on the GUDA notice, shown once by the API, stored
  sealed (recoverable for key recovery) and as an Argon2id hash (to check it);
* a first connection is possible as soon as the account exists and never expires
  until the account is closed; it sets the password (NIST SP 800-63B: length and a
  common-password check, no composition rules);
* sessions are server-side, revocable, with idle and absolute timeouts.

Failures of credential checks are uniform (one ``Unauthenticated``), and an unknown
identifier costs the same Argon2id work as a known one.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.orm import Session as DbSession

from vault.crypto.keys import new_applicant_key, seal_secret, wrap_applicant_key
from vault.crypto.passwords import Argon2Params, dummy_verify, hash_password, verify_password
from vault.crypto.tokens import (
    new_connection_key,
    new_token,
    normalize_connection_key,
    token_digest,
)
from vault.db.models import Account, Session
from vault.errors import AccountClosed, Conflict, InvalidInput, Unauthenticated
from vault.ledger.entries import EntryType, subject_commitment
from vault.ledger.sequencer import LedgerAppender
from vault.principal import Principal
from vault.service import Vault

AGDREF_RE = re.compile(r"^[0-9]{9,10}$")
PROCEDURES = ("normal", "accelerated", "dublin", "dublin_requalified")
MIN_PASSWORD = 8
MAX_PASSWORD = 128
CONNECTION_KEY_PURPOSE = "connection-key"
SESSION_PREFIX = "ovs_"  # applicant sessions; staff tokens start with "ovt_"

# A short built-in list; the accounts issue replaces it with a bundled breach corpus.
_COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "12345678",
        "123456789",
        "1234567890",
        "qwertyui",
        "azertyui",
        "azerty123",
        "motdepasse",
        "11111111",
        "00000000",
        "iloveyou",
        "sunshine",
        "princess",
        "football",
        "baseball",
        "welcome1",
        "abcd1234",
        "qwerty123",
        "passw0rd",
        "letmein1",
        "bonjour1",
        "soleil123",
        "marseille",
    }
)


class AccountExists(Conflict):
    code = "account_exists"
    title = "An account already exists for this AGDREF number"


@dataclass(frozen=True)
class Registration:
    agdref: str
    ofpra_number: str | None
    guda: str
    registered_on: date
    procedure: str
    structure_id: str
    language: str = "fr"
    requalified_on: date | None = None
    requalification_region: str | None = None
    prefecture: str | None = None


@dataclass(frozen=True)
class CreatedAccount:
    account_id: str
    agdref: str
    connection_key: str  # shown once


@dataclass(frozen=True)
class IssuedSession:
    token: str
    account_id: str
    expires_at_seconds: int


def argon2_params(vault: Vault) -> Argon2Params:
    return Argon2Params(vault.settings.argon2_opslimit, vault.settings.argon2_memlimit)


def check_agdref(agdref: str) -> str:
    if not AGDREF_RE.fullmatch(agdref or ""):
        raise InvalidInput("agdref must be 9 or 10 digits", field="agdref")
    return agdref


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"the password must have at most {MAX_PASSWORD} characters")
    if password.lower() in _COMMON_PASSWORDS:
        raise InvalidInput("this password is too common; choose another one")


def create_account(vault: Vault, reg: Registration, actor: Principal) -> CreatedAccount:
    check_agdref(reg.agdref)
    if reg.procedure not in PROCEDURES:
        raise InvalidInput(f"procedure must be one of {', '.join(PROCEDURES)}")
    account_id = str(uuid.uuid4())
    key = new_connection_key()
    key_hash = hash_password(normalize_connection_key(key), argon2_params(vault))
    sealed_key = seal_secret(vault.keyring, key.encode(), CONNECTION_KEY_PURPOSE, account_id)
    wrapped = wrap_applicant_key(vault.keyring, new_applicant_key(), account_id)
    salt = secrets.token_bytes(32)
    now = vault.clock.now()

    def unit(s: DbSession, ledger: LedgerAppender) -> None:
        s.add(
            Account(
                id=account_id,
                agdref=reg.agdref,
                ofpra_number=reg.ofpra_number,
                status="awaiting_first_connection",
                guda=reg.guda,
                registered_on=reg.registered_on,
                procedure=reg.procedure,
                requalified_on=reg.requalified_on,
                requalification_region=reg.requalification_region,
                prefecture=reg.prefecture,
                structure_id=reg.structure_id,
                language=reg.language,
                connection_key_hash=key_hash,
                connection_key_sealed=sealed_key,
                subject_salt=salt,
                wrapped_key=wrapped.blob,
                kek_version=wrapped.kek_version,
                key_version=1,
                created_at=now,
            )
        )
        s.flush()
        ledger.append(
            EntryType.ACCOUNT_CREATED,
            account_id=account_id,
            subject_commitment=subject_commitment(salt, reg.agdref),
        )

    try:
        vault.sequencer.run(unit)
    except SAIntegrityError:
        raise AccountExists() from None
    return CreatedAccount(account_id, reg.agdref, key)


def _find_by_identifier(s: DbSession, identifier: str) -> Account | None:
    ident = (identifier or "").strip()
    if not ident or len(ident) > 32:
        return None
    return s.scalar(
        select(Account).where(or_(Account.agdref == ident, Account.ofpra_number == ident))
    )


def _issue_session(s: DbSession, vault: Vault, account_id: str) -> IssuedSession:
    token = SESSION_PREFIX + new_token().removeprefix("ovt_")
    now = vault.clock.now()
    s.add(
        Session(
            token_digest=token_digest(token),
            account_id=account_id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(seconds=vault.settings.session_absolute_seconds),
        )
    )
    return IssuedSession(token, account_id, vault.settings.session_absolute_seconds)


def first_connection(
    vault: Vault, agdref: str, connection_key: str, password: str
) -> IssuedSession:
    check_password(password)
    with vault.read() as s:
        acc = s.scalar(select(Account).where(Account.agdref == (agdref or "").strip()))
    if acc is None:
        dummy_verify(argon2_params(vault))
        raise Unauthenticated("identifier or connection key not recognised")
    try:
        typed = normalize_connection_key(connection_key)
    except InvalidInput:
        typed = ""  # a malformed key fails like a wrong one, after the same work
    if not verify_password(acc.connection_key_hash, typed):
        raise Unauthenticated("identifier or connection key not recognised")
    if acc.status == "closed":
        raise AccountClosed()
    pw_hash = hash_password(password, argon2_params(vault))
    account_id = acc.id
    salt, agd = acc.subject_salt or b"", acc.agdref

    def unit(s: DbSession, ledger: LedgerAppender) -> IssuedSession:
        row = s.get(Account, account_id)
        assert row is not None
        first = row.status == "awaiting_first_connection"
        row.password_hash = pw_hash
        if first:
            row.status = "active"
            row.activated_at = vault.clock.now()
            ledger.append(
                EntryType.ACCOUNT_ACTIVATED,
                account_id=account_id,
                subject_commitment=subject_commitment(salt, agd),
            )
        return _issue_session(s, vault, account_id)

    return vault.sequencer.run(unit)


def login(vault: Vault, identifier: str, password: str) -> IssuedSession:
    with vault.read() as s:
        acc = _find_by_identifier(s, identifier)
    if acc is None or acc.password_hash is None:
        dummy_verify(argon2_params(vault))
        raise Unauthenticated("identifier or password not recognised")
    if not verify_password(acc.password_hash, password):
        raise Unauthenticated("identifier or password not recognised")
    if acc.status == "closed":
        raise Unauthenticated("identifier or password not recognised")
    with vault.write() as s:
        return _issue_session(s, vault, acc.id)


def authenticate_session(vault: Vault, token: str) -> Principal:
    digest = token_digest(token)
    now = vault.clock.now()
    with vault.read() as s:
        row = s.get(Session, digest)
        acc = s.get(Account, row.account_id) if row is not None else None
    if (
        row is None
        or acc is None
        or row.revoked_at is not None
        or row.expires_at <= now
        or row.last_seen_at + timedelta(seconds=vault.settings.session_idle_seconds) <= now
        or acc.status == "closed"
    ):
        raise Unauthenticated()
    # Touch the session at most once a minute: the idle timeout needs no finer grain.
    if now - row.last_seen_at > timedelta(seconds=60):
        with vault.write() as s:
            s.execute(
                update(Session).where(Session.token_digest == digest).values(last_seen_at=now)
            )
    return Principal("applicant", acc.id, "applicant", acc.structure_id, session_digest=digest)


def logout(vault: Vault, principal: Principal) -> None:
    if principal.session_digest is None:
        return
    with vault.write() as s:
        s.execute(
            update(Session)
            .where(Session.token_digest == principal.session_digest)
            .values(revoked_at=vault.clock.now())
        )
