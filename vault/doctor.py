# ruff: noqa: BLE001 -- a diagnostic reports every failure of a component, whatever its type
"""``ofpra-vault doctor``: check that a deployment can serve, before it has to.

Each check builds the one component it checks straight from the settings, not through
:func:`vault.service.open_vault`: ``open_vault`` stops at the first problem (and, on the
embedded profile, migrates and generates keys), while the operator wants *every* problem
listed, and no schema or key created by a diagnostic. (On the embedded profile the
test PKI is loaded, or generated as ``serve`` would, to exercise the in-process TSA.)

A check ends ``ok``, ``warn`` (works, but not as a production deployment should) or
``fail`` (the vault cannot serve correctly). Any ``fail`` makes the command exit
non-zero. Messages say what is wrong and what to do, in plain words.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vault.clock import Clock, SystemClock
from vault.config import Settings
from vault.errors import VaultError

#: Largest accepted gap between this host's clock and the database's or the TSA's.
#: Posting times, first-access times (the legal notification instant) and checkpoint
#: times are all read from this host's clock; RFC 3161 tokens carry the TSA's.
CLOCK_TOLERANCE = timedelta(seconds=2)

OK, WARN, FAIL = "ok", "warn", "fail"


class DoctorFailed(VaultError):
    """At least one deployment check failed (exit status of ``ofpra-vault doctor``)."""

    code = "doctor_failed"
    status = 500
    title = "Deployment check failed"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    message: str


@dataclass
class Report:
    profile: str
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "ok": self.ok,
            "checks": [asdict(c) for c in self.checks],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    def to_text(self) -> str:
        marks = {OK: "ok  ", WARN: "WARN", FAIL: "FAIL"}
        lines = [f"ofpra-vault doctor ({self.profile} profile)"]
        lines += [f"  [{marks[c.status]}] {c.name}: {c.message}" for c in self.checks]
        failed = len(self.failures())
        lines.append(
            "all checks passed" if not failed else f"{failed} check(s) failed: fix them first"
        )
        return "\n".join(lines)


class _Collector:
    def __init__(self) -> None:
        self.checks: list[Check] = []

    def ok(self, name: str, message: str) -> None:
        self.checks.append(Check(name, OK, message))

    def warn(self, name: str, message: str) -> None:
        self.checks.append(Check(name, WARN, message))

    def fail(self, name: str, message: str) -> None:
        self.checks.append(Check(name, FAIL, message))


def _plain(exc: BaseException) -> str:
    if isinstance(exc, VaultError):
        return exc.detail
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


# --- settings -----------------------------------------------------------------------------
def check_settings(s: Settings, c: _Collector) -> None:
    """Settings that load but make no sense together (production foot-guns first)."""
    prod = s.profile == "production"
    name = "settings"
    problems: list[str] = []
    warnings: list[str] = []
    if prod:
        if not s.public_url:
            problems.append("VAULT_PUBLIC_URL is not set (links in alerts would be wrong)")
        elif not s.public_url.startswith("https://"):
            # Session cookies and credentials must never travel in clear (SECURITY.md).
            problems.append(f"VAULT_PUBLIC_URL {s.public_url} is not https://")
        if not s.secure_cookies:
            problems.append("cookies would be sent without Secure (VAULT_COOKIE_SECURE)")
        if not s.tsa_url:
            problems.append("VAULT_TSA_URL is empty: the in-process test TSA is not for production")
        if not s.smtp_host and not s.sms_url:
            problems.append(
                "neither VAULT_SMTP_HOST nor VAULT_SMS_URL is set: applicants get no alert"
            )
        elif not s.smtp_host:
            warnings.append("VAULT_SMTP_HOST is empty: no e-mail alerts")
        elif not s.sms_url:
            warnings.append("VAULT_SMS_URL is empty: no SMS alerts")
        if s.effective_database_url.startswith("sqlite"):
            warnings.append("VAULT_DATABASE_URL is SQLite: one machine, one writer")
        if s.effective_blob_store == "s3" and not s.s3_secure:
            warnings.append("VAULT_S3_SECURE is false: blobs travel to S3 without TLS")
        if s.log_origin.startswith("localhost/"):
            warnings.append(
                f"VAULT_LOG_ORIGIN is {s.log_origin}: set the log's public name "
                "(it is signed into every checkpoint and cannot change later)"
            )
        if s.argon2_opslimit < 3 or s.argon2_memlimit < 64 * 1024 * 1024:
            warnings.append("Argon2id costs are below the defaults (3, 64 MiB)")
        if s.keyring and s.keyring_file:
            warnings.append(
                "both VAULT_KEYRING and VAULT_KEYRING_FILE are set: the file is ignored"
            )
    if s.sms_url and not s.sms_report_secret:
        warnings.append("VAULT_SMS_REPORT_SECRET is empty: SMS delivery reports are not accepted")
    if s.smtp_tls not in ("none", "starttls", "tls"):
        problems.append("VAULT_SMTP_TLS must be none, starttls or tls")
    elif prod and s.smtp_host and s.smtp_tls == "none":
        warnings.append("VAULT_SMTP_TLS is none: alert e-mails leave in clear")
    if s.sms_auth not in ("basic", "bearer"):
        problems.append("VAULT_SMS_AUTH must be basic or bearer")
    if s.cookie_secure not in ("auto", "true", "false"):
        problems.append("VAULT_COOKIE_SECURE must be auto, true or false")
    if s.ack_prefecture_destinations:
        try:
            parsed = json.loads(s.ack_prefecture_destinations)
            if not isinstance(parsed, dict):
                raise ValueError
        except ValueError:
            problems.append("VAULT_ACK_PREFECTURE_DESTINATIONS is not a JSON object")
    try:
        days = [int(d) for d in s.reminder_days.split(",") if d.strip()]
        if any(d <= 0 for d in days):
            raise ValueError
    except ValueError:
        problems.append("VAULT_REMINDER_DAYS must be positive whole days, comma-separated")
    if s.checkpoint_interval_seconds <= 0 or s.checkpoint_every_entries <= 0:
        problems.append("checkpoint cadence settings must be positive")
    if not s.background_tasks:
        warnings.append(
            "VAULT_BACKGROUND_TASKS is false: run the sweepers, the dispatcher and "
            "`ledger checkpoint` from timers (docs/deploy.md)"
        )
    for p in problems:
        c.fail(name, p)
    for w in warnings:
        c.warn(name, w)
    if not problems and not warnings:
        c.ok(name, "consistent")
    _check_witnesses(s, c)


def _check_witnesses(s: Settings, c: _Collector) -> None:
    from vault.ledger.note import verifier_from_vkey

    keys = [k.strip() for k in s.witness_keys.split(",") if k.strip()]
    if not keys:
        c.ok("witnesses", "none configured (checkpoints are not cosigned)")
        return
    bad = []
    for k in keys:
        try:
            verifier_from_vkey(k)
        except Exception:  # any parse failure means the same thing to the operator
            bad.append(k.split("+", 1)[0])
    if bad:
        c.fail("witnesses", f"VAULT_WITNESS_KEYS holds unreadable keys: {', '.join(bad)}")
    else:
        c.ok("witnesses", f"{len(keys)} witness key(s) parse")


# --- database -----------------------------------------------------------------------------
def check_database(s: Settings, c: _Collector, clock: Clock) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from vault.db.engine import make_engine
    from vault.db.migrate import current_revisions, head_revisions

    try:
        url = s.effective_database_url
    except VaultError as exc:
        c.fail("database", exc.detail)
        return
    u = make_url(url)
    sqlite_file = u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:")
    # Connecting would create an empty SQLite file: say it is missing instead.
    if sqlite_file and not Path(str(u.database)).exists():
        c.fail("database", f"no database at {u.database}: run `ofpra-vault migrate`")
        return
    # A short connect timeout: an unreachable server must be reported, not waited on.
    extra: dict[str, Any] = (
        {"connect_args": {"connect_timeout": 5}} if u.get_backend_name() == "postgresql" else {}
    )
    engine = make_engine(url, immediate=False, **extra)
    try:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                current = current_revisions(engine)
        except Exception as exc:
            c.fail(
                "database",
                f"cannot reach {u.render_as_string(hide_password=True)}: {_plain(exc)}",
            )
            return
        heads = head_revisions()
        if not current:
            c.fail("database", "the database is empty: run `ofpra-vault migrate`")
        elif set(current) != set(heads):
            c.fail(
                "database",
                f"schema at {', '.join(current)} but this version needs {', '.join(heads)}: "
                "run `ofpra-vault migrate`",
            )
        else:
            c.ok("database", f"reachable, migrated ({', '.join(current)})")
        if u.get_backend_name() == "postgresql":
            _check_db_clock(engine, c, clock)
    finally:
        engine.dispose()


def _check_db_clock(engine: Any, c: _Collector, clock: Clock) -> None:
    from sqlalchemy import text

    before = clock.now()
    with engine.connect() as conn:
        db_now = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    after = clock.now()
    skew = _skew(db_now, before, after)
    if skew > CLOCK_TOLERANCE:
        c.fail(
            "clock.database",
            f"this host and the database server disagree by {skew.total_seconds():.1f} s "
            f"(tolerance {CLOCK_TOLERANCE.total_seconds():.0f} s): synchronise both with NTP",
        )
    else:
        c.ok("clock.database", f"within {CLOCK_TOLERANCE.total_seconds():.0f} s of the database")


def _skew(other: datetime, before: datetime, after: datetime) -> timedelta:
    """Distance from ``other`` to the interval [before, after] (zero inside)."""
    if other.tzinfo is None:
        other = other.replace(tzinfo=UTC)
    if other < before:
        return before - other
    if other > after:
        return other - after
    return timedelta(0)


# --- blob store ---------------------------------------------------------------------------
def check_blobs(s: Settings, c: _Collector) -> None:
    from vault.storage import blob_store_from_settings
    from vault.storage.base import new_blob_name

    name = "blob store"
    try:
        if s.effective_blob_store == "fs":
            root = s.data_dir / "blobs"
            if not root.is_dir():
                c.fail(name, f"no blob directory at {root}: run `ofpra-vault serve` once")
                return
            store = blob_store_from_settings("fs", root=root)
            where = str(root)
        else:
            store = blob_store_from_settings(
                "s3",
                endpoint=s.s3_endpoint,
                access_key=s.s3_access_key,
                secret_key=s.s3_secret_key,
                bucket=s.s3_bucket,
                region=s.s3_region,
                secure=s.s3_secure,
            )
            where = f"bucket {s.s3_bucket} at {s.s3_endpoint}"
            store.check()
    except Exception as exc:
        c.fail(name, f"{_plain(exc)} (VAULT_S3_BUCKET={s.s3_bucket})")
        return
    # A probe under its own prefix: the blob sweeper only ever lists document names.
    probe = "doctor/" + new_blob_name().rsplit("/", 1)[1]
    try:
        payload = b"ofpra-vault doctor probe"
        store.put(probe, [payload])
        if store.stat(probe).size != len(payload):
            c.fail(name, f"{where}: the probe object came back with the wrong size")
            return
        if b"".join(store.open(probe)) != payload:
            c.fail(name, f"{where}: the probe object came back altered")
            return
    except Exception as exc:
        c.fail(name, f"{where} is not writable: {_plain(exc)}")
        return
    finally:
        # Reported below if it matters; a leftover probe is harmless.
        with contextlib.suppress(Exception):
            store.delete(probe)
    if store.exists(probe):
        c.warn(name, f"{where}: writable, but the probe object could not be deleted")
    else:
        c.ok(name, f"{where}: exists, writable (put/stat/read/delete)")


# --- keys -----------------------------------------------------------------------------------
def check_keyring(s: Settings, c: _Collector) -> None:
    from vault.service import load_keyring

    name = "key ring"
    try:
        ring = load_keyring(s, create=False)
    except Exception as exc:
        c.fail(name, _plain(exc))
        return
    if s.keyring:
        c.ok(name, "loaded from VAULT_KEYRING (keep it in the secrets manager only)")
        return
    path = s.effective_keyring_file
    st = path.stat()
    notes = []
    if st.st_uid != os.geteuid():
        notes.append(f"owned by uid {st.st_uid}, not by this user ({os.geteuid()})")
    parent_mode = stat.S_IMODE(path.parent.stat().st_mode)
    if parent_mode & 0o022:
        notes.append(f"its directory {path.parent} is writable by others ({parent_mode:04o})")
    del ring  # loaded only to prove it parses; never printed
    if notes:
        c.warn(name, f"{path}: " + "; ".join(notes))
    else:
        c.ok(name, f"{path}: readable, mode {stat.S_IMODE(st.st_mode):04o}")


def _timestamper(s: Settings, clock: Clock) -> tuple[Any, list[Any]]:
    """The TSA and its trust roots (the test PKI root on the embedded profile)."""
    from vault.tsa import HttpTimeStamper, LocalTimeStamper

    if s.tsa_url:
        return HttpTimeStamper(s.tsa_url), []
    if s.profile == "production":
        raise _Skip("no TSA: VAULT_TSA_URL is empty")
    pki = _test_pki(s, clock)
    return LocalTimeStamper.from_test_pki(pki, clock), [pki.root_cert]


def _test_pki(s: Settings, clock: Clock) -> Any:
    from vault.pdf.pki import load_or_create_test_pki

    return load_or_create_test_pki(s.data_dir / "pki", clock.now())


class _Skip(Exception):
    pass


def check_seal(s: Settings, c: _Collector, clock: Clock) -> None:
    name = "seal"
    if s.seal_pkcs12_file:
        from cryptography.hazmat.primitives.serialization import pkcs12

        path = Path(s.seal_pkcs12_file)
        try:
            password = s.seal_pkcs12_password.encode() if s.seal_pkcs12_password else None
            key, cert, _chain = pkcs12.load_key_and_certificates(path.read_bytes(), password)
        except (OSError, ValueError) as exc:
            c.fail(name, f"cannot load the seal from {path}: {_plain(exc)}")
            return
        if key is None or cert is None:
            c.fail(name, f"{path} holds no key with its certificate")
            return
        if s.tsa_url:
            # What `serve` does at start-up: validate the seal's chain and the TSA's
            # (pyHanko, key usage non-repudiation), so a bad chain is found here first.
            from vault.pdf.seal import Sealer
            from vault.tsa import HttpTimeStamper

            try:
                Sealer.from_pkcs12(path, password, HttpTimeStamper(s.tsa_url), clock=clock)
            except Exception as exc:
                c.fail(name, f"the seal from {path} is not usable: {_plain(exc)}")
                return
        now = clock.now()
        if cert.not_valid_after_utc <= now:
            c.fail(name, f"the seal certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}")
        elif cert.not_valid_after_utc - now < timedelta(days=30):
            c.warn(name, f"the seal certificate expires on {cert.not_valid_after_utc:%Y-%m-%d}")
        else:
            c.ok(name, f"{path}: {cert.subject.rfc4514_string()}")
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            c.warn(name, f"{path} is readable by group or others ({mode:04o}): chmod 600")
        return
    if s.profile == "production":
        c.fail(name, "VAULT_SEAL_PKCS12_FILE is not set: posted PDFs would NOT be sealed")
        return
    try:
        _test_pki(s, clock)
    except Exception as exc:
        c.fail(name, f"the embedded test PKI cannot be loaded: {_plain(exc)}")
        return
    c.warn(name, "embedded test PKI in DATA_DIR/pki: NOT FOR PRODUCTION")


def check_tsa(s: Settings, c: _Collector, clock: Clock) -> None:
    from vault.tsa import verify_timestamp

    name = "tsa"
    try:
        tsa, roots = _timestamper(s, clock)
    except _Skip as skip:
        c.fail(name, str(skip))
        return
    except Exception as exc:
        c.fail(name, f"the TSA cannot be set up: {_plain(exc)}")
        return
    data = b"doctor"
    before = clock.now()
    try:
        token = tsa.timestamp(data)
    except Exception as exc:
        c.fail(name, f"the TSA at {s.tsa_url or 'in-process'} did not answer: {_plain(exc)}")
        return
    after = clock.now()
    if not roots:
        # No TSA trust-anchor setting exists: check the token against the certificates
        # it carries (signature over the imprint; RFC 3161 §2.4.2), not the TSA's trust.
        roots = _token_certs(token)
        trusted = "signature checked with the certificates in the token"
    else:
        trusted = "trusted by the test PKI root"
    try:
        gen_time = verify_timestamp(token, data, roots)
    except Exception as exc:
        c.fail(name, f"the TSA's token does not verify: {_plain(exc)}")
        return
    c.ok(name, f"answered in {(after - before).total_seconds() * 1000:.0f} ms; {trusted}")
    if s.tsa_url:
        # genTime may be truncated to the second (RFC 3161 §2.4.2 accuracy is optional).
        skew = _skew(gen_time, before.replace(microsecond=0) - timedelta(seconds=1), after)
        if skew > CLOCK_TOLERANCE:
            c.fail(
                "clock.tsa",
                f"this host and the TSA disagree by {skew.total_seconds():.1f} s "
                f"(tolerance {CLOCK_TOLERANCE.total_seconds():.0f} s): synchronise with NTP",
            )
        else:
            c.ok("clock.tsa", f"within {CLOCK_TOLERANCE.total_seconds():.0f} s of the TSA")


def _token_certs(token: bytes) -> list[Any]:
    from asn1crypto import cms
    from cryptography import x509

    info = cms.ContentInfo.load(token)
    certs = info["content"]["certificates"]
    out = []
    for choice in certs or ():
        if choice.name == "certificate":
            out.append(x509.load_der_x509_certificate(choice.chosen.dump()))
    return out


# --- entry point ------------------------------------------------------------------------------
CHECKS: tuple[tuple[str, Callable[[Settings, _Collector, Clock], None]], ...] = (
    ("settings", lambda s, c, _k: check_settings(s, c)),
    ("database", check_database),
    ("blob store", lambda s, c, _k: check_blobs(s, c)),
    ("key ring", lambda s, c, _k: check_keyring(s, c)),
    ("seal", check_seal),
    ("tsa", check_tsa),
)


def run_checks(settings: Settings, *, clock: Clock | None = None) -> Report:
    """Run every check; a check that crashes is reported as failed, the others still run."""
    clock = clock or SystemClock()
    c = _Collector()
    for name, check in CHECKS:
        try:
            check(settings, c, clock)
        except Exception as exc:
            c.fail(name, f"the check could not run: {_plain(exc)}")
    return Report(settings.profile, c.checks)


def diagnose(env: dict[str, str] | None = None) -> Report:
    """Load the settings from the environment (or ``env``) and run every check."""
    from vault.config import load_settings

    try:
        settings = load_settings(env)
    except VaultError as exc:
        return Report("unknown", [Check("settings", FAIL, exc.detail)])
    return run_checks(settings)
