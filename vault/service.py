"""The vault's service container: settings, clock, engines, keys, storage, sequencer.

``open_vault`` is the composition root for both profiles (DESIGN.md §3). In the
embedded profile it creates the data directory (0700), generates the key ring on
first run and migrates the SQLite database; in production it only *loads* keys and
refuses to start without them.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from vault.clock import Clock, SystemClock
from vault.config import Settings
from vault.crypto.keys import KeyRing
from vault.db.engine import make_engine
from vault.db.migrate import upgrade
from vault.errors import ConfigurationError
from vault.ledger.sequencer import Sequencer
from vault.storage import BlobStore, FilesystemBlobStore, blob_store_from_settings

#: Modules that plug into the vault at start-up. Each defines ``install(vault)``, which
#: registers sequencer hooks, posting / first-access hooks and background tasks.
EXTENSIONS = (
    "vault.ledger.store",
    "vault.sealing",
    "vault.notify",
    "vault.alerts.outbox",
    "vault.optout",
    "vault.closure",
)


@dataclass(frozen=True)
class BackgroundTask:
    """Periodic work that ``serve`` runs in a thread (checkpoints, sweepers, dispatcher)."""

    name: str
    interval_seconds: float
    run: Callable[[Vault], object]


@dataclass
class Vault:
    settings: Settings
    clock: Clock
    write_engine: Engine
    read_engine: Engine
    keyring: KeyRing
    blobs: BlobStore
    sequencer: Sequencer
    extras: dict[str, Any] = field(default_factory=dict)
    background: list[BackgroundTask] = field(default_factory=list)
    #: SQLite only: a writer engine whose commits are not fsynced (write_relaxed).
    relaxed_engine: Engine | None = None

    def test_pki(self) -> Any:
        """The embedded profile's generated test PKI (seal, TSA, CRLs) in DATA_DIR/pki.

        Clearly labelled NOT FOR PRODUCTION; the production profile never uses it."""
        if "test_pki" not in self.extras:
            if self.settings.profile == "production":
                raise ConfigurationError("the production profile has no generated test PKI")
            from vault.pdf.pki import load_or_create_test_pki

            self.extras["test_pki"] = load_or_create_test_pki(
                self.settings.data_dir / "pki", self.clock.now()
            )
        return self.extras["test_pki"]

    def timestamper(self) -> Any:
        """The RFC 3161 TSA: ``VAULT_TSA_URL`` if set, else the in-process test TSA."""
        if "timestamper" not in self.extras:
            from vault.tsa import HttpTimeStamper, LocalTimeStamper

            if self.settings.tsa_url:
                self.extras["timestamper"] = HttpTimeStamper(self.settings.tsa_url)
            else:
                self.extras["timestamper"] = LocalTimeStamper.from_test_pki(
                    self.test_pki(), self.clock
                )
        return self.extras["timestamper"]

    def hooks(self, name: str) -> list[Any]:
        """A named hook list (e.g. ``posted_hooks``) that extensions append to."""
        hooks: list[Any] = self.extras.setdefault(name, [])
        return hooks

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (deferred transaction on SQLite)."""
        with Session(self.read_engine, expire_on_commit=False) as s:
            yield s

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction that does not touch the ledger (ledger writes go through
        :attr:`sequencer`)."""
        with Session(self.write_engine, expire_on_commit=False) as s, s.begin():
            yield s

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A Core connection in one read transaction, for the hot read paths (session
        look-up, an applicant's list): no ORM session or identity map to build."""
        with self.read_engine.connect() as c:
            yield c

    @contextmanager
    def write_relaxed(self) -> Iterator[Connection]:
        """A Core write transaction whose commit is not flushed to disk before it returns.

        The commit is atomic, visible at once and ordered like any other (a later
        durable commit makes it durable too); only a power failure or an OS or database
        server crash in the following moment (SQLite WAL with ``synchronous=NORMAL``;
        PostgreSQL ``synchronous_commit=off``, at most 3 x ``wal_writer_delay``) can
        lose it. It saves the fsync that otherwise dominates a small request.

        Only for records whose loss is harmless or errs on the safe side: the session's
        last-seen time (a lost touch makes an idle session expire *sooner*) and the
        access-log rows of an applicant's reads of their own space. Never for the
        ledger, documents, keys, accounts, or a staff member's access-log row."""
        engine = self.relaxed_engine or self.write_engine
        with engine.begin() as c:
            if engine.dialect.name == "postgresql":
                c.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            yield c

    def close(self) -> None:
        self.sequencer.stop()
        ts = self.extras.get("timestamper")
        if ts is not None and hasattr(ts, "close"):
            ts.close()  # the HTTP TSA client's pooled connections
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()
        if self.relaxed_engine is not None:
            self.relaxed_engine.dispose()


def load_keyring(settings: Settings, *, create: bool) -> KeyRing:
    if settings.keyring:
        return KeyRing.from_env(settings.keyring)
    path = settings.effective_keyring_file
    if path.exists():
        return KeyRing.load(path)
    if settings.profile == "production" or not create:
        raise ConfigurationError(
            f"no key ring at {path}; the production profile never generates keys silently"
        )
    return KeyRing.generate(path)


def make_blob_store(settings: Settings) -> BlobStore:
    if settings.effective_blob_store == "fs":
        store = blob_store_from_settings("fs", root=settings.data_dir / "blobs")
        assert isinstance(store, FilesystemBlobStore)
        store.ensure_root()
        return store
    return blob_store_from_settings(
        "s3",
        endpoint=settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        bucket=settings.s3_bucket,
        region=settings.s3_region,
        secure=settings.s3_secure,
        part_size=settings.s3_part_size,
    )


def prepare_data_dir(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)


def open_vault(
    settings: Settings,
    *,
    clock: Clock | None = None,
    migrate: bool | None = None,
) -> Vault:
    """Build the container. ``migrate`` defaults to True in the embedded profile."""
    embedded = settings.profile == "embedded"
    if embedded:
        prepare_data_dir(settings)
    url = settings.effective_database_url
    write_engine = make_engine(
        url, immediate=True, statement_timeout_ms=settings.db_statement_timeout_ms
    )
    read_engine = make_engine(url, immediate=False) if url.startswith("sqlite") else write_engine
    if migrate if migrate is not None else embedded:
        upgrade(write_engine)
    keyring = load_keyring(settings, create=embedded)
    blobs = make_blob_store(settings)
    clock = clock or SystemClock()
    sequencer = Sequencer(write_engine, clock, max_batch=settings.sequencer_max_batch)
    vault = Vault(settings, clock, write_engine, read_engine, keyring, blobs, sequencer)
    if url.startswith("sqlite"):
        vault.relaxed_engine = make_engine(url, immediate=True, synchronous="NORMAL")
    for name in EXTENSIONS:
        importlib.import_module(name).install(vault)
    return vault
