"""Engine set-up for both profiles.

SQLite runs in WAL mode with ``synchronous=FULL`` so that a committed ledger append
survives power loss (DESIGN.md §9: appends are durable before they are acknowledged),
and with ``BEGIN IMMEDIATE`` so that the single writer is explicit. PostgreSQL uses
psycopg 3; the ledger sequencer serializes writers with an advisory lock.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import deque
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine.url import make_url
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool

#: Database failures turned into DatabaseUnavailable, by kind (exposed on /metrics):
#: ``timeout`` (statement_timeout / lock wait cancelled by the server), ``pool_timeout``
#: (no connection free within the pool timeout), ``disconnect``, ``operational``.
UNAVAILABLE_COUNTS: dict[str, int] = {}


def _count(kind: str) -> None:
    UNAVAILABLE_COUNTS[kind] = UNAVAILABLE_COUNTS.get(kind, 0) + 1


class _BoundedPool(QueuePool):
    """A pool whose exhaustion is a 503, not a 500: a checkout that waited the whole
    pool timeout (every connection busy on a slow server) raises DatabaseUnavailable."""

    def _do_get(self) -> Any:
        try:
            return super()._do_get()
        except sa_exc.TimeoutError as exc:
            from vault.errors import DatabaseUnavailable

            _count("pool_timeout")
            raise DatabaseUnavailable("the database is too slow to answer") from exc


class _WriterGate:
    """A FIFO lock for one process's SQLite writers on one database file.

    SQLite's own wait for the write lock is a busy handler that *sleeps and polls*
    (1, 2, 5, 10 ... then 100 ms naps): under load a waiting writer oversleeps the
    holder's release by tens of milliseconds, and a short write queued behind a ledger
    batch waited up to 100 ms more than it had to. In-process writers first take this
    gate, in arrival order, and are handed it the moment the previous writer commits
    or rolls back; SQLite's lock (and its busy timeout) still arbitrates between
    processes (``serve --workers N``, the CLI)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Lock] = deque()

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            handoff = threading.Lock()
            handoff.acquire()
            self._waiters.append(handoff)
        if handoff.acquire(timeout=timeout):
            return True  # the releasing writer handed the gate over
        with self._mutex:
            try:
                self._waiters.remove(handoff)
            except ValueError:
                return True  # handed over just as we gave up: we hold it
            return False

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()  # stays held, by the next in line
            else:
                self._held = False


_GATES: dict[str, _WriterGate] = {}
_GATES_LOCK = threading.Lock()
GATE_TIMEOUT_SECONDS = 30.0  # as SQLite's busy_timeout below


def _gate_for(database: str) -> _WriterGate:
    key = os.path.realpath(database) if database not in ("", ":memory:") else ""
    with _GATES_LOCK:
        return _GATES.setdefault(key, _WriterGate()) if key else _WriterGate()


class _GatedConnection(sqlite3.Connection):
    """pysqlite connection that releases the writer gate when its transaction ends
    (SQLAlchemy ends a transaction through ``commit()``/``rollback()``, and a pool that
    discards a connection through ``close()``)."""

    _vault_gate: _WriterGate | None = None

    def _release_gate(self) -> None:
        gate, self._vault_gate = self._vault_gate, None
        if gate is not None:
            gate.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release_gate()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release_gate()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release_gate()


def make_engine(
    url: str,
    *,
    immediate: bool = True,
    synchronous: str = "FULL",
    statement_timeout_ms: int = 0,
    **kwargs: Any,
) -> Engine:
    """Create an engine. On SQLite, ``immediate`` makes every transaction take the write
    lock at BEGIN (use it for writers); readers use a deferred engine so WAL keeps them
    concurrent with the writer. ``synchronous="NORMAL"`` (SQLite only) makes an engine
    whose commits are not fsynced: see :meth:`vault.service.Vault.write_relaxed` for the
    only records allowed there. ``statement_timeout_ms`` (PostgreSQL only, 0 = none) makes
    the server cancel any statement, lock waits included, that runs longer: a slow or
    blocked database answers 503 instead of holding the request."""
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError("synchronous must be FULL or NORMAL")
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        gate = _gate_for(u.database or "") if immediate else None
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30, "factory": _GatedConnection},
            pool_size=16,
            max_overflow=48,
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, decide when transactions start.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # Every transaction takes the write lock up front: no deadlock on upgrade,
            # and the ledger's single-writer rule is visible in one place.
            if gate is None:
                conn.exec_driver_sql("BEGIN")
                return
            dbapi_conn = conn.connection.dbapi_connection
            if not gate.acquire(GATE_TIMEOUT_SECONDS):
                raise sqlite3.OperationalError("database is locked")
            dbapi_conn._vault_gate = gate
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                dbapi_conn._release_gate()
                raise

        return engine
    if u.drivername in ("postgresql", "postgres"):
        url = str(u.set(drivername="postgresql+psycopg"))
    # connect_timeout bounds a connection attempt to an unreachable server (libpq's
    # default is to wait for the OS); pool_pre_ping replaces connections a restarted
    # server closed, so the service recovers by itself (issue 8, item 2).
    connect_args = {"connect_timeout": 5, **kwargs.pop("connect_args", {})}
    if statement_timeout_ms > 0:
        # Set at connection start-up (libpq options): no extra round trip per checkout.
        # Every statement, the pool's pre-ping and lock waits included, is bounded.
        opts = f"-c statement_timeout={int(statement_timeout_ms)}"
        connect_args["options"] = (connect_args.get("options", "") + " " + opts).strip()
    pool_args: dict[str, Any] = {"pool_size": 16, "max_overflow": 32, "pool_timeout": 10}
    pool_args.update({k: kwargs.pop(k) for k in list(pool_args) if k in kwargs})
    engine = create_engine(
        url,
        poolclass=_BoundedPool,
        pool_pre_ping=True,
        connect_args=connect_args,
        **pool_args,
        **kwargs,
    )

    @event.listens_for(engine, "handle_error")
    def _unavailable(ctx: Any) -> None:
        # A server that is down, restarting or cancelling our statement is a 503 with
        # Retry-After (DatabaseUnavailable), not a 500, wherever the query ran (reads
        # and the session lookup included, not only the ledger sequencer).
        # Serialization failures and deadlocks stay as they are: callers retry them.
        import psycopg

        from vault.errors import DatabaseUnavailable

        orig = ctx.original_exception
        if isinstance(orig, psycopg.errors.QueryCanceled):
            # statement_timeout (or an operator's pg_cancel_backend): the database is
            # too slow or blocked; nothing of the transaction is kept.
            _count("timeout")
            raise DatabaseUnavailable("the database is too slow to answer") from orig
        if ctx.is_disconnect or (
            isinstance(orig, psycopg.OperationalError)
            and not isinstance(orig, psycopg.errors.TransactionRollback)
        ):
            _count("disconnect" if ctx.is_disconnect else "operational")
            raise DatabaseUnavailable("the database is unavailable") from orig

    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_sessionmaker(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(engine, expire_on_commit=False)
