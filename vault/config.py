"""Settings, loaded once from ``VAULT_*`` environment variables (STYLE.md rule 5).

Two profiles share one code path (DESIGN.md §3):

* ``embedded`` (default): SQLite and a filesystem blob store inside ``VAULT_DATA_DIR``;
  the key ring, test PKI and log key are generated there on first run.
* ``production``: a database URL, an S3 endpoint and a key ring that must already
  exist. Nothing secret is ever generated silently and secrets have no defaults.

Every setting is listed in README.md; :func:`describe_settings` is the source of that
table so the two cannot drift.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from vault.errors import ConfigurationError

PROFILES = ("embedded", "production")


def setting(default: Any, doc: str, *, secret: bool = False) -> Any:
    """A settings field carrying its documentation (rendered into README's table)."""
    return field(default=default, metadata={"doc": doc, "secret": secret})


@dataclass(frozen=True)
class Settings:
    profile: str = setting("embedded", "embedded or production")
    data_dir: Path = setting(Path(".vault-data"), "data dir: SQLite, blobs, generated keys")  # noqa: RUF009 -- Path is immutable
    host: str = setting("127.0.0.1", "address `serve` binds")
    port: int = setting(8000, "port `serve` binds")
    public_url: str = setting("", "URL applicants use (links in alerts); default http://HOST:PORT")
    database_url: str = setting("", "SQLAlchemy URL; default SQLite in the data dir")
    blob_store: str = setting("", "fs or s3; default fs (embedded), s3 (production)")
    s3_endpoint: str = setting("", "S3 host:port")
    s3_access_key: str = setting("", "S3 access key", secret=True)
    s3_secret_key: str = setting("", "S3 secret key", secret=True)
    s3_bucket: str = setting("ofpra-vault", "S3 bucket")
    s3_region: str = setting("us-east-1", "S3 region (must match the server)")
    s3_secure: bool = setting(True, "use TLS to reach S3")
    s3_part_size: int = setting(5 * 1024 * 1024, "S3 multipart part size (>= 5 MiB; ~3 in RAM)")
    keyring_file: str = setting("", "key ring JSON file (0600); default DATA_DIR/keys/keyring.json")
    keyring: str = setting("", "key ring as base64 JSON, instead of the file", secret=True)
    max_upload_bytes: int = setting(50 * 1024 * 1024, "largest PDF accepted (bytes)")
    max_json_bytes: int = setting(64 * 1024, "largest JSON body accepted (bytes)")
    blob_sweep_grace_seconds: int = setting(3600, "age before an unreferenced blob is swept")
    log_origin: str = setting("localhost/ofpra-vault/log", "ledger origin (C2SP checkpoint)")
    checkpoint_interval_seconds: float = setting(1.0, "checkpoint at least this often if grown")
    checkpoint_every_entries: int = setting(1000, "checkpoint after this many new entries")
    sequencer_max_batch: int = setting(512, "most units in one group commit")
    gil_switch_interval_ms: float = setting(
        0.5, "server's GIL switch interval (ms); Python's default is 5"
    )
    db_statement_timeout_ms: int = setting(
        15000, "PostgreSQL statement/lock-wait timeout (ms): beyond it, 503; 0 = none"
    )
    session_idle_seconds: int = setting(1800, "applicant session idle timeout")
    session_absolute_seconds: int = setting(12 * 3600, "applicant session absolute lifetime")
    staff_token_days: int = setting(90, "staff token lifetime (days)")
    argon2_opslimit: int = setting(3, "Argon2id time cost")
    argon2_memlimit: int = setting(64 * 1024 * 1024, "Argon2id memory (bytes)")
    cookie_secure: str = setting(
        "auto", "Secure cookies: auto (if public URL is https), true, false"
    )
    log_read_roles: str = setting("", "empty: public log; else roles allowed to read /log")
    log_level: str = setting("info", "log level")
    tsa_url: str = setting("", "RFC 3161 TSA URL (production); empty = in-process test TSA")
    witness_keys: str = setting("", "comma-separated C2SP vkeys of accepted witnesses")
    seal_pkcs12_file: str = setting("", "PKCS#12 file of the office seal (production)")
    seal_pkcs12_password: str = setting("", "password of the seal PKCS#12", secret=True)
    smtp_host: str = setting("", "SMTP server; empty = no e-mail channel")
    smtp_port: int = setting(25, "SMTP port")
    smtp_tls: str = setting("none", "SMTP TLS: none, starttls or tls")
    smtp_user: str = setting("", "SMTP user")
    smtp_password: str = setting("", "SMTP password", secret=True)
    smtp_from: str = setting("noreply@ofpra.invalid", "From address of alerts")
    sms_url: str = setting("", "SMS provider URL (JSON POST); empty = no SMS channel")
    sms_username: str = setting("", "SMS provider user")
    sms_password: str = setting("", "SMS provider password or token", secret=True)
    sms_auth: str = setting("basic", "SMS provider auth: basic or bearer")
    sms_sender: str = setting("OFPRA", "SMS sender name")
    sms_report_secret: str = setting("", "HMAC secret of SMS delivery reports", secret=True)
    alerts_max_attempts: int = setting(8, "send attempts before an alert is dead-lettered")
    alerts_backoff_seconds: float = setting(30.0, "first retry delay (doubles each attempt)")
    reminder_days: str = setting("7,13", "days after posting to remind of an unread document")
    ack_dg_destination: str = setting("", "acknowledgements to the DG: mailto:ADDR or https URL")
    ack_prefecture_destinations: str = setting(
        "", "JSON {prefecture: mailto:ADDR | https URL} for acknowledgements"
    )
    ack_webhook_secret: str = setting("", "HMAC secret of acknowledgement webhooks", secret=True)
    auth_max_failures: int = setting(5, "failed attempts before a temporary lockout")
    auth_lockout_seconds: int = setting(900, "temporary lockout after too many failures")
    auth_ip_per_minute: int = setting(30, "credential attempts per client address per minute")
    closure_after_notification_days: int = setting(
        365, "close an account this long after its decision was notified"
    )
    background_tasks: bool = setting(True, "run checkpoints, sweepers and alerts inside `serve`")

    # --- derived values ---------------------------------------------------------------
    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        if self.profile == "production":
            raise ConfigurationError("VAULT_DATABASE_URL is required in the production profile")
        return f"sqlite:///{(self.data_dir / 'vault.db').resolve()}"

    @property
    def effective_blob_store(self) -> str:
        return self.blob_store or ("s3" if self.profile == "production" else "fs")

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def effective_keyring_file(self) -> Path:
        if self.keyring_file:
            return Path(self.keyring_file)
        return self.data_dir / "keys" / "keyring.json"

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure == "auto":
            return self.effective_public_url.startswith("https://")
        return self.cookie_secure == "true"

    def validate(self) -> Settings:
        if self.profile not in PROFILES:
            raise ConfigurationError(f"VAULT_PROFILE must be one of {', '.join(PROFILES)}")
        if self.effective_blob_store not in ("fs", "s3"):
            raise ConfigurationError("VAULT_BLOB_STORE must be fs or s3")
        if self.effective_blob_store == "s3":
            missing = [
                n for n in ("s3_endpoint", "s3_access_key", "s3_secret_key") if not getattr(self, n)
            ]
            if missing:
                names = ", ".join("VAULT_" + n.upper() for n in missing)
                raise ConfigurationError(f"the S3 blob store needs {names}")
        if self.profile == "production" and not (self.keyring or self.keyring_file):
            raise ConfigurationError(
                "the production profile needs VAULT_KEYRING_FILE or VAULT_KEYRING; "
                "keys are never generated silently in production"
            )
        if self.max_upload_bytes <= 0 or self.max_json_bytes <= 0:
            raise ConfigurationError("size limits must be positive")
        return self


def _coerce(raw: str, target: Any, name: str) -> Any:
    try:
        if target is bool or target == "bool":
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if target is int or target == "int":
            return int(raw)
        if target is float or target == "float":
            return float(raw)
        if target is Path or target == "Path":
            return Path(raw)
    except ValueError:
        raise ConfigurationError(f"VAULT_{name.upper()} has an invalid value") from None
    return raw


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read every ``VAULT_<NAME>`` variable once. Unknown ``VAULT_*`` names are ignored."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for f in fields(Settings):
        key = "VAULT_" + f.name.upper()
        if key in env and env[key] != "":
            values[f.name] = _coerce(env[key], f.type, f.name)
    types = {f.name: f.type for f in fields(Settings)}
    for name, value in overrides.items():
        if name not in types:
            raise ConfigurationError(f"unknown setting {name}")
        values[name] = _coerce(value, types[name], name) if isinstance(value, str) else value
    return Settings(**values).validate()


def describe_settings() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for the README table."""
    rows = []
    for f in fields(Settings):
        default = "" if f.metadata.get("secret") else str(f.default)
        rows.append(("VAULT_" + f.name.upper(), default, str(f.metadata.get("doc", ""))))
    return rows
