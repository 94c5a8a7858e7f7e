"""Engine set-up for both profiles.

SQLite runs in WAL mode with ``synchronous=FULL`` so that a committed ledger append
survives power loss (DESIGN.md §9: appends are durable before they are acknowledged),
and with ``BEGIN IMMEDIATE`` so that the single writer is explicit. PostgreSQL uses
psycopg 3; the ledger sequencer serializes writers with an advisory lock.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine.url import make_url
from sqlalchemy.orm import sessionmaker


def make_engine(url: str, *, immediate: bool = True, **kwargs: Any) -> Engine:
    """Create an engine. On SQLite, ``immediate`` makes every transaction take the write
    lock at BEGIN (use it for writers); readers use a deferred engine so WAL keeps them
    concurrent with the writer."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
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
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # Every transaction takes the write lock up front: no deadlock on upgrade,
            # and the ledger's single-writer rule is visible in one place.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    if u.drivername in ("postgresql", "postgres"):
        url = str(u.set(drivername="postgresql+psycopg"))
    # connect_timeout bounds a connection attempt to an unreachable server (libpq's
    # default is to wait for the OS); pool_pre_ping replaces connections a restarted
    # server closed, so the service recovers by itself (issue 8, item 2).
    connect_args = {"connect_timeout": 5, **kwargs.pop("connect_args", {})}
    engine = create_engine(
        url,
        pool_size=16,
        max_overflow=32,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args=connect_args,
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
        if ctx.is_disconnect or (
            isinstance(orig, psycopg.OperationalError)
            and not isinstance(orig, psycopg.errors.TransactionRollback)
        ):
            raise DatabaseUnavailable("the database is unavailable") from orig

    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_sessionmaker(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(engine, expire_on_commit=False)
