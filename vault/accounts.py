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

import functools
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.orm import Session as DbSession

from vault import eligibility, throttle
from vault.crypto.keys import (
    new_applicant_key,
    open_secret,
    seal_secret,
    wrap_applicant_key,
)
from vault.crypto.passwords import Argon2Params, dummy_verify, hash_password, verify_password
from vault.crypto.tokens import (
    new_connection_key,
    new_token,
    normalize_connection_key,
    token_digest,
)
from vault.db.models import Account, Session
from vault.errors import (
    AccountClosed,
    Conflict,
    Forbidden,
    InvalidInput,
    NotEligible,
    Unauthenticated,
    VaultError,
)
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


@functools.cache
def common_passwords() -> frozenset[str]:
    """The bundled list (vault/data/common_passwords.txt; origin in its header)."""
    text = resources.files("vault").joinpath("data/common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
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
    overseas: bool = False
    unaccompanied_minor: bool = False
    unable_to_use_space: bool = False


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
    # Later logins remind the applicant to keep their contacts current (seed FAQ).
    reminder: str | None = None
    missing_contacts: tuple[str, ...] = ()


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
    if password.lower() in common_passwords() or password.strip().lower() in common_passwords():
        raise InvalidInput("this password is too common; choose another one")


def create_account(vault: Vault, reg: Registration, actor: Principal) -> CreatedAccount:
    check_agdref(reg.agdref)
    if reg.procedure not in PROCEDURES:
        raise InvalidInput(f"procedure must be one of {', '.join(PROCEDURES)}")
    if actor.role != "agent":
        raise Forbidden()
    # Only applicants in the electronic scheme get an account (R.531-17 and the
    # arrêtés; Conseil d'État 26 March 2025 no. 488274): NotEligible (422) carries the
    # stable reason code, and nothing is stored.
    decision = eligibility.decide(
        eligibility.Registration(
            guda=reg.guda,
            registered_on=reg.registered_on,
            procedure=reg.procedure,  # type: ignore[arg-type]
            requalified_on=reg.requalified_on,
            requalification_region=reg.requalification_region,
            overseas=reg.overseas,
            unaccompanied_minor=reg.unaccompanied_minor,
            unable_to_use_space=reg.unable_to_use_space,
        )
    )
    if not decision.electronic:
        raise NotEligible(
            decision.detail, reason=decision.reason, table_version=decision.table_version
        )
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
                overseas=reg.overseas,
                unaccompanied_minor=reg.unaccompanied_minor,
                unable_to_use_space=reg.unable_to_use_space,
                eligibility_table=decision.table_version,
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
    vault: Vault,
    agdref: str,
    connection_key: str,
    password: str,
    *,
    client: str | None = None,
) -> IssuedSession:
    check_password(password)
    with throttle.guarded(vault, agdref, client):
        return _first_connection(vault, agdref, connection_key, password)


def _check_key(vault: Vault, acc: Account | None, connection_key: str) -> Account:
    """The account if ``connection_key`` is its key; the same work and error otherwise."""
    try:
        typed = normalize_connection_key(connection_key)
    except InvalidInput:
        typed = ""  # a malformed key fails like a wrong one, after the same work
    if acc is None:
        dummy_verify(argon2_params(vault))
        raise Unauthenticated("identifier or connection key not recognised")
    if not verify_password(acc.connection_key_hash, typed):
        raise Unauthenticated("identifier or connection key not recognised")
    if acc.status == "closed":
        # Closed: access is over; said only to whoever holds the key.
        raise AccountClosed()
    return acc


def _first_connection(
    vault: Vault, agdref: str, connection_key: str, password: str
) -> IssuedSession:
    with vault.read() as s:
        found = s.scalar(select(Account).where(Account.agdref == (agdref or "").strip()))
    acc = _check_key(vault, found, connection_key)
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
        issued = _issue_session(s, vault, account_id)
        # The applicant is asked for a phone number and an e-mail address next.
        return _with_reminder(issued, row, "add_contacts")

    return vault.sequencer.run(unit)


def _missing_contacts(acc: Account) -> tuple[str, ...]:
    return tuple(k for k in ("phone", "email") if getattr(acc, k) is None)


def _with_reminder(issued: IssuedSession, acc: Account, reminder: str) -> IssuedSession:
    return IssuedSession(
        issued.token,
        issued.account_id,
        issued.expires_at_seconds,
        reminder,
        _missing_contacts(acc),
    )


def login(
    vault: Vault, identifier: str, password: str, *, client: str | None = None
) -> IssuedSession:
    with throttle.guarded(vault, identifier, client):
        return _login(vault, identifier, password)


def _login(vault: Vault, identifier: str, password: str) -> IssuedSession:
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
        issued = _issue_session(s, vault, acc.id)
    # Every later connection reminds the applicant to keep contacts current (FAQ).
    return _with_reminder(issued, acc, "keep_contacts_current")


def reset_password(
    vault: Vault,
    identifier: str,
    connection_key: str,
    new_password: str,
    *,
    client: str | None = None,
) -> IssuedSession:
    """Lost password: the identifier (AGDREF or OFPRA number) plus the connection key.

    Unknown identifier, wrong key or an account not yet activated all fail alike,
    after the same Argon2id work. Every other session of the account is revoked.
    """
    check_password(new_password)
    with throttle.guarded(vault, identifier, client):
        with vault.read() as s:
            found = _find_by_identifier(s, identifier)
        acc = _check_key(vault, found, connection_key)
        pw_hash = hash_password(new_password, argon2_params(vault))
        account_id = acc.id
        salt, agd = acc.subject_salt or b"", acc.agdref

        def unit(s: DbSession, ledger: LedgerAppender) -> IssuedSession:
            row = s.get(Account, account_id)
            assert row is not None
            now = vault.clock.now()
            s.execute(
                update(Session)
                .where(Session.account_id == account_id, Session.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            row.password_hash = pw_hash
            if row.status == "awaiting_first_connection":
                # The key + a new password is exactly a first connection.
                row.status = "active"
                row.activated_at = now
                ledger.append(
                    EntryType.ACCOUNT_ACTIVATED,
                    account_id=account_id,
                    subject_commitment=subject_commitment(salt, agd),
                )
            return _with_reminder(
                _issue_session(s, vault, account_id), row, "keep_contacts_current"
            )

        return vault.sequencer.run(unit)


class WrongPassword(VaultError):
    """The current password typed to change it is not the account's (403, not 401: the
    session itself is fine, and a client must not take it for an expired session)."""

    code = "wrong_current_password"
    status = 403
    title = "The current password is not correct"


def change_password(
    vault: Vault,
    principal: Principal,
    current_password: str,
    new_password: str,
    *,
    client: str | None = None,
) -> None:
    """Change the password of a signed-in applicant (issue 7: password change).

    The current password is checked with Argon2id as at log-in, under the log-in
    throttle of the account's AGDREF number: a stolen session is no better an oracle
    for guessing the password than the log-in form, and both draw on one budget.
    Every OTHER session of the account is revoked (a thief's included); the current
    session is kept, since it has just proved the password again. Like
    :func:`reset_password`, nothing goes to the ledger (a password is not evidence of
    notification) and the rows hold no password, only its new hash.
    """
    if principal.kind != "applicant":
        raise Forbidden()
    check_password(new_password)
    with vault.read() as s:
        acc = s.get(Account, principal.id)
    if acc is None or acc.status == "closed":
        raise Unauthenticated()
    account_id, agdref = acc.id, acc.agdref
    with throttle.guarded(vault, agdref, client):
        if acc.password_hash is None or not verify_password(acc.password_hash, current_password):
            raise WrongPassword("the current password is not correct")
    pw_hash = hash_password(new_password, argon2_params(vault))
    keep = principal.session_digest

    with vault.write() as s:
        now = vault.clock.now()
        others = update(Session).where(
            Session.account_id == account_id, Session.revoked_at.is_(None)
        )
        if keep is not None:
            others = others.where(Session.token_digest != keep)
        s.execute(others.values(revoked_at=now))
        s.execute(update(Account).where(Account.id == account_id).values(password_hash=pw_hash))


LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")


def set_language(vault: Vault, principal: Principal, language: str) -> bool:
    """Save the applicant's language (pages and alerts). True if it changed."""
    if principal.kind != "applicant":
        raise Forbidden()
    if not LANGUAGE_RE.fullmatch(language or ""):
        raise InvalidInput(
            "language must be a language code such as fr, en or ar", field="language"
        )
    with vault.write() as s:
        acc = s.get(Account, principal.id)
        if acc is None or acc.status == "closed":
            raise Unauthenticated()
        if acc.language == language:
            return False
        acc.language = language
        return True


def recover_key(vault: Vault, identifier: str, channel: str, *, client: str | None = None) -> None:
    """Lost key: queue it to the contact on file for ``channel`` (sms or email).

    Returns ``None`` whether or not the account or the contact exists; the caller
    answers 202 in every case and should run :func:`send_recovered_key` after the
    response so that timing says nothing either (see the API route).
    """
    if channel not in ("sms", "email"):
        raise InvalidInput("channel must be sms or email", field="channel")
    throttle.reserve(vault, identifier, client, scope="recovery")


def send_recovered_key(vault: Vault, identifier: str, channel: str) -> bool:
    """Enqueue the ``key_recovery`` message if the account has that contact."""
    from vault.alerts import outbox

    with vault.write() as s:
        acc = _find_by_identifier(s, identifier)
        if acc is None or acc.status == "closed":
            return False
        if (channel == "sms" and not acc.phone) or (channel == "email" and not acc.email):
            return False
        key = open_secret(
            vault.keyring, acc.connection_key_sealed, CONNECTION_KEY_PURPOSE, acc.id
        ).decode()
        day = vault.clock.now().date().isoformat()
        outbox.enqueue_applicant_message(
            s,
            vault,
            acc,
            "key_recovery",
            # portal_url is added by the outbox at send time.
            context={"connection_key": key},
            # At most one recovery message per account, channel and day.
            dedupe_key=f"key_recovery:{acc.id}:{channel}:{day}",
            channels=["sms" if channel == "sms" else "email"],
        )
        return True


# --- contacts ------------------------------------------------------------------------
E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")
# Deliberately simple (RFC 5321 sizes, one @, a dotted domain): confirmation by a
# message to the address is the real check.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@" + _LABEL + r"(?:\." + _LABEL + r")+$"
)


@dataclass(frozen=True)
class Contacts:
    phone: str | None
    email: str | None


def normalize_phone(phone: str | None) -> str | None:
    if phone is None or not phone.strip():
        return None
    p = re.sub(r"[\s().-]", "", phone)
    if not E164_RE.fullmatch(p):
        raise InvalidInput("phone must be an E.164 number such as +33612345678", field="phone")
    return p


def normalize_email(email: str | None) -> str | None:
    if email is None or not email.strip():
        return None
    e = email.strip()
    if len(e) > 254 or not EMAIL_RE.fullmatch(e):
        raise InvalidInput("email is not a valid address", field="email")
    local, _, domain = e.partition("@")
    return f"{local}@{domain.lower()}"


def get_contacts(vault: Vault, principal: Principal) -> Contacts:
    if principal.kind != "applicant":
        raise Forbidden()
    from vault.documents import log_access

    with vault.write() as s:
        acc = s.get(Account, principal.id)
        if acc is None:
            raise Unauthenticated()
        log_access(vault, principal, acc.id, "contacts.read", s=s)
        return Contacts(acc.phone, acc.email)


def set_contacts(
    vault: Vault, principal: Principal, phone: str | None, email: str | None
) -> Contacts:
    """Set both contacts (``None`` removes one). A new contact gets a confirmation."""
    if principal.kind != "applicant":
        raise Forbidden()
    new_phone, new_email = normalize_phone(phone), normalize_email(email)
    with vault.write() as s:
        acc = s.get(Account, principal.id)
        if acc is None:
            raise Unauthenticated()
        changed = []
        if new_phone != acc.phone:
            acc.phone = new_phone
            if new_phone:
                changed.append(("phone", "sms"))
        if new_email != acc.email:
            acc.email = new_email
            if new_email:
                changed.append(("email", "email"))
        acc.contacts_updated_at = vault.clock.now()
        s.flush()
        if changed:
            from vault.alerts import outbox

            stamp = vault.clock.now().isoformat()
            for kind, channel in changed:
                # Sent to the NEW contact only, so a typo is noticed and a hijacker's
                # address change cannot go unseen by the applicant (next login shows it).
                outbox.enqueue_applicant_message(
                    s,
                    vault,
                    acc,
                    "contact_confirmation",
                    context={"contact_kind": kind},
                    dedupe_key=f"contact_confirmation:{acc.id}:{kind}:{stamp}",
                    channels=[channel],
                )
        return Contacts(acc.phone, acc.email)


_SESSIONS = Session.__table__.c
_ACCOUNTS = Account.__table__.c
#: The session look-up run on every authenticated request: one indexed Core query,
#: built once (no ORM identity map, no per-call statement construction).
_SESSION_LOOKUP = (
    select(
        _SESSIONS.revoked_at,
        _SESSIONS.expires_at,
        _SESSIONS.last_seen_at,
        _ACCOUNTS.id,
        _ACCOUNTS.status,
        _ACCOUNTS.structure_id,
    )
    .join_from(Session.__table__, Account.__table__, _ACCOUNTS.id == _SESSIONS.account_id)
    .where(_SESSIONS.token_digest == bindparam("digest"))
)
_SESSION_TOUCH = (
    update(Session)
    .where(_SESSIONS.token_digest == bindparam("digest"))
    .values(last_seen_at=bindparam("now"))
)


def authenticate_session(vault: Vault, token: str) -> Principal:
    digest = token_digest(token)
    now = vault.clock.now()
    with vault.read_connection() as c:
        row = c.execute(_SESSION_LOOKUP, {"digest": digest}).first()
    if (
        row is None
        or row.revoked_at is not None
        or row.expires_at <= now
        or row.last_seen_at + timedelta(seconds=vault.settings.session_idle_seconds) <= now
        or row.status == "closed"
    ):
        raise Unauthenticated()
    # Touch the session at most once a minute: the idle timeout needs no finer grain.
    # Not fsynced (write_relaxed): a touch lost to a power failure only makes the
    # session expire sooner.
    if now - row.last_seen_at > timedelta(seconds=60):
        with vault.write_relaxed() as wc:
            wc.execute(_SESSION_TOUCH, {"digest": digest, "now": now})
    return Principal("applicant", row.id, "applicant", row.structure_id, session_digest=digest)


def logout(vault: Vault, principal: Principal) -> None:
    if principal.session_digest is None:
        return
    with vault.write() as s:
        s.execute(
            update(Session)
            .where(Session.token_digest == principal.session_digest)
            .values(revoked_at=vault.clock.now())
        )


# --- access log and account views ------------------------------------------------------
@dataclass(frozen=True)
class AccessLine:
    at: str
    actor_role: str
    structure_id: str | None
    action: str
    document_id: str | None


def access_log(
    vault: Vault, principal: Principal, *, offset: int = 0, limit: int = 100
) -> tuple[list[AccessLine], int]:
    """Who read the applicant's data: role and structure (never a staff name), when, what."""
    if principal.kind != "applicant":
        raise Forbidden()
    from sqlalchemy import func

    from vault.db.models import AccessLog

    with vault.read() as s:
        total = s.scalar(
            select(func.count()).select_from(AccessLog).where(AccessLog.account_id == principal.id)
        )
        rows = s.scalars(
            select(AccessLog)
            .where(AccessLog.account_id == principal.id)
            .order_by(AccessLog.at.desc(), AccessLog.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [
            AccessLine(r.at.isoformat(), r.actor_role, r.structure_id, r.action, r.document_id)
            for r in rows
        ], int(total or 0)


def account_channel(acc: Account) -> str:
    """``postal`` once opted out (FAQ: new documents then go by post)."""
    return "postal" if acc.status == "opted_out" else "electronic"


def notice_pdf(vault: Vault, principal: Principal, account_id: str) -> bytes:
    """The GUDA notice (agent only), until the first connection."""
    from vault.documents import AccountNotFound, _is_uuid, log_access
    from vault.notice import notice_for_account

    if principal.role != "agent":
        raise Forbidden()
    with vault.read() as s:
        acc = s.get(Account, account_id) if _is_uuid(account_id) else None
    if acc is None:
        raise AccountNotFound()
    pdf = notice_for_account(vault.keyring, acc, vault.settings.effective_public_url)
    log_access(vault, principal, acc.id, "account.notice")
    return pdf
