"""The ledger sequencer: group commit of concurrent appends (DESIGN.md §9, design (a)).

Why group commit rather than queue-then-integrate: the business facts that matter
legally (a document row, its ``POSTED`` entry; a first access and its entries) must
commit *together with* their index and chain link, so an acknowledged request always
has its final place in the log, and nothing is ever "durable but unsequenced". One
commit per batch amortizes the fsync that caps single-commit throughput.

How it works:

* any thread submits a *unit of work*: a callable ``unit(session, ledger)`` that writes
  rows through ``session`` and log entries through ``ledger.append(...)``;
* one writer thread per process takes whatever units are waiting (up to
  ``max_batch``), opens ONE transaction, takes the cross-process writer lock
  (``pg_advisory_xact_lock`` on PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite), reads the
  log tail, runs each unit in a savepoint so one failure does not sink the batch,
  assigns consecutive indexes and chain links, inserts the entries, commits once, and
  only then resolves every waiter;
* if the final insert or the commit fails, the batch is retried one unit per
  transaction so that a single bad unit cannot fail its neighbours.

Invariants: indexes are dense (no gap, no duplicate) because they are assigned under
the lock from the committed tail; a unit's result is returned only after the commit
that made it durable; the ``at`` time in an entry is the time it was recorded in the
transaction that committed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, Generic, NamedTuple, TypeVar, cast

from sqlalchemy import Connection, Dialect, Engine, LargeBinary, Table
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from vault.clock import Clock
from vault.db.models import LedgerEntry
from vault.errors import DatabaseUnavailable, VaultError
from vault.ledger.entries import ZERO_CHAIN, canonical_entry, chain_next, leaf_hash

log = logging.getLogger(__name__)

T = TypeVar("T")

LEDGER_TABLE: Table = LedgerEntry.__table__  # type: ignore[assignment]

#: Arbitrary but fixed key of the PostgreSQL advisory lock that elects the writer.
ADVISORY_LOCK_KEY = 0x0F_9A_7A_11


class AppendedEntry(NamedTuple):
    """One appended entry (a tuple: created once per entry on the writer's hot path)."""

    seq: int
    type: str
    at: datetime
    entry: bytes
    leaf_hash: bytes
    chain: bytes
    document_id: str | None
    account_id: str | None


class LedgerAppender:
    """Handed to units inside the sequencer's transaction."""

    def __init__(self, next_seq: int, prev_chain: bytes, clock: Clock) -> None:
        self._next = next_seq
        self._chain = prev_chain
        self._clock = clock
        self.appended: list[AppendedEntry] = []

    def append(
        self,
        type_: str,
        *,
        document_id: str | None = None,
        account_id: str | None = None,
        at: datetime | None = None,
        **fields: Any,
    ) -> AppendedEntry:
        """Append an entry. ``account_id`` is kept in the row for look-ups, never in
        the entry bytes; put only pseudonymous data in ``fields``."""
        when = at or self._clock.now()
        body = dict(fields)
        if document_id is not None:
            body["document_id"] = document_id
        data = canonical_entry(type_, self._next, when, body)
        lh = leaf_hash(data)
        chain = chain_next(self._chain, lh)
        e = AppendedEntry(self._next, str(type_), when, data, lh, chain, document_id, account_id)
        self.appended.append(e)
        self._next += 1
        self._chain = chain
        return e

    def _mark(self) -> tuple[int, bytes, int]:
        return self._next, self._chain, len(self.appended)

    def _reset(self, mark: tuple[int, bytes, int]) -> None:
        self._next, self._chain, n = mark
        del self.appended[n:]


Unit = Callable[[Session, LedgerAppender], T]
#: Runs inside the batch's transaction, after the entries are inserted; may return a
#: callable to run once the commit is durable.
BatchHook = Callable[[Connection, Sequence[AppendedEntry]], "Callable[[], None] | None"]


_PENDING, _RUNNING, _CANCELLED, _DONE = range(4)
#: Guards the PENDING -> RUNNING / CANCELLED transition of every unit (held for a few
#: instructions, never across I/O).
_STATE = threading.Lock()


class _Work(Generic[T]):
    """A submitted unit and how its caller waits for it.

    Three kinds of waiter, cheapest first: a blocked thread (:meth:`Sequencer.run`)
    parks on a pre-acquired lock the writer releases (one wake-up, no Condition); an
    event-loop task (:meth:`Sequencer.run_async`) gets its asyncio future resolved by
    one ``call_soon_threadsafe`` per loop per batch; :meth:`Sequencer.submit` callers
    get a ``concurrent.futures.Future``."""

    __slots__ = (
        "afut",
        "future",
        "lock",
        "loop",
        "ok",
        "savepoint",
        "state",
        "submitted",
        "unit",
        "value",
    )

    def __init__(self, unit: Unit[T], savepoint: bool) -> None:
        self.submitted = time.perf_counter()
        self.unit = unit
        self.savepoint = savepoint
        self.state = _PENDING
        self.ok = False
        self.value: Any = None
        self.lock: threading.Lock | None = None
        self.future: Future[T] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.afut: asyncio.Future[T] | None = None

    def start(self) -> bool:
        """PENDING -> RUNNING; False if the caller gave up first."""
        if self.future is not None:
            return self.future.set_running_or_notify_cancel()
        with _STATE:
            if self.state != _PENDING:
                return False
            self.state = _RUNNING
            return True

    def cancel(self) -> bool:
        """PENDING -> CANCELLED (the caller gave up); False once the writer started."""
        with _STATE:
            if self.state != _PENDING:
                return False
            self.state = _CANCELLED
            return True

    def result(self) -> T:
        if self.ok:
            return cast(T, self.value)
        raise self.value


def _resolve_async(works: list[_Work[Any]]) -> None:
    """On the waiters' event loop: hand each task its outcome."""
    for w in works:
        f = w.afut
        if f is None or f.done():
            continue
        if w.ok:
            f.set_result(w.value)
        else:
            f.set_exception(w.value)


def _deliver(works: Sequence[_Work[Any]]) -> None:
    """Wake every waiter of ``works`` whose ``ok``/``value`` are set."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Work[Any]]] = {}
    for w in works:
        w.state = _DONE
        if w.lock is not None:
            w.lock.release()
        elif w.loop is not None:
            by_loop.setdefault(w.loop, []).append(w)
        elif w.future is not None and not w.future.done():
            if w.ok:
                w.future.set_result(w.value)
            else:
                w.future.set_exception(w.value)
    for loop, ws in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: its tasks are gone
            loop.call_soon_threadsafe(_resolve_async, ws)


def _infra(exc: BaseException) -> bool:
    """The database, not the unit, failed: the whole batch fails at once (retrying unit
    by unit would wait out the same timeout once per unit)."""
    return isinstance(exc, OperationalError | DatabaseUnavailable) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


class Sequencer:
    """One per process. Thread-safe ``submit``; results only after the durable commit."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        max_batch: int = 512,
        on_batch: BatchHook | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._max_batch = max_batch
        self.on_batch = on_batch
        self._queue: queue.SimpleQueue[_Work[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        self.units = 0
        self.entries = 0
        self.last_commit_seconds = 0.0
        #: Called after every durable group commit (metrics); must be cheap.
        self.observers: list[Callable[[BatchStats], None]] = []

    @property
    def queue_depth(self) -> int:
        """Units waiting for the writer (approximate)."""
        return self._queue.qsize()

    # --- public -----------------------------------------------------------------
    def submit(self, unit: Unit[T], *, savepoint: bool = True) -> Future[T]:
        self._ensure_started()
        w: _Work[T] = _Work(unit, savepoint)
        fut: Future[T] = Future()
        w.future = fut
        self._queue.put(w)
        return fut

    def run(self, unit: Unit[T], *, timeout: float = 30.0, savepoint: bool = True) -> T:
        """Run ``unit`` in the next group commit; return its result once durable."""
        self._ensure_started()
        w: _Work[T] = _Work(unit, savepoint)
        lock = threading.Lock()
        lock.acquire()
        w.lock = lock
        self._queue.put(w)
        # The caller is told 503 on timeout: the unit must not commit later behind its
        # back. If the writer already started it, cancel() fails and the result stands
        # (an Idempotency-Key retry then returns it).
        if lock.acquire(timeout=timeout) or (not w.cancel() and lock.acquire(timeout=timeout)):
            return w.result()
        raise DatabaseUnavailable("the ledger writer did not answer in time")

    async def run_async(self, unit: Unit[T], *, timeout: float = 30.0, savepoint: bool = True) -> T:
        """:meth:`run` for event-loop callers: the waiter is a task, not a blocked
        thread, and a whole batch wakes each loop once (same durability and timeout
        rules as :meth:`run`)."""
        self._ensure_started()
        loop = asyncio.get_running_loop()
        w: _Work[T] = _Work(unit, savepoint)
        w.loop = loop
        afut: asyncio.Future[T] = loop.create_future()
        w.afut = afut
        self._queue.put(w)
        try:
            return await asyncio.wait_for(asyncio.shield(afut), timeout)
        except TimeoutError:
            if not w.cancel():
                try:
                    return await asyncio.wait_for(afut, timeout)
                except TimeoutError:
                    pass
            raise DatabaseUnavailable("the ledger writer did not answer in time") from None

    def stop(self) -> None:
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join(timeout=30)
                self._thread = None

    # --- writer thread ----------------------------------------------------------
    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._loop, name="ledger-sequencer", daemon=True
                    )
                    self._thread.start()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch: list[_Work[Any]] = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            # Skip units whose caller gave up (cancelled on timeout); the others can no
            # longer be cancelled from here on.
            batch = [w for w in batch if w.start()]
            if batch:
                self._process(batch)
            if stop:
                return

    def _process(self, batch: list[_Work[Any]]) -> None:
        try:
            outcomes = self._commit(batch)
        except Exception as exc:  # noqa: BLE001 -- decide per unit below
            if len(batch) > 1 and not _infra(exc):
                log.warning("group commit failed (%s); retrying one by one", type(exc).__name__)
                for w in batch:
                    self._process([w])
                return
            err = _to_vault_error(exc)
            for w in batch:
                w.ok, w.value = False, err
            _deliver(batch)
            return
        self.batches += 1
        self.units += len(batch)
        for w, (ok, value) in zip(batch, outcomes, strict=True):
            w.ok, w.value = ok, value
        _deliver(batch)

    def _commit(self, batch: list[_Work[Any]]) -> list[tuple[bool, Any]]:
        # The hot path works on one Connection with driver-level SQL for the lock, the
        # tail and the entry insert (statements prepared once per dialect): the ORM and
        # Core compilation steps cost more than the statements themselves. Units still
        # get an ORM Session joined to this transaction.
        outcomes: list[tuple[bool, Any]] = []
        after: list[Callable[[], None]] = []
        sql = self._sql
        t_begin = time.perf_counter()
        with self._engine.connect() as conn:
            trans = conn.begin()  # BEGIN IMMEDIATE on SQLite (vault.db.engine)
            try:
                ledger = self._run_units(conn, sql, batch, outcomes, after)
                t_commit = time.perf_counter()
                trans.commit()  # durable from here on
            except BaseException:
                trans.rollback()
                raise
        t_end = time.perf_counter()
        commit_seconds = t_end - t_commit
        for done in after:
            try:
                done()
            except Exception:  # a notification must never fail the append
                log.exception("after-commit ledger hook failed")
        self.last_commit_seconds = commit_seconds
        self.entries += len(ledger.appended)
        for observe in self.observers:
            try:
                observe(
                    BatchStats(
                        len(batch),
                        len(ledger.appended),
                        commit_seconds,
                        batch_seconds=t_end - t_begin,
                        queue_seconds=t_begin - min(w.submitted for w in batch),
                    )
                )
            except Exception:
                log.exception("sequencer observer failed")
        return outcomes

    def _run_units(
        self,
        conn: Connection,
        sql: _Sql,
        batch: list[_Work[Any]],
        outcomes: list[tuple[bool, Any]],
        after: list[Callable[[], None]],
    ) -> LedgerAppender:
        if sql.lock is not None:
            conn.exec_driver_sql(sql.lock, (ADVISORY_LOCK_KEY,))
        tail = conn.exec_driver_sql(sql.tail).first()
        next_seq, prev_chain = (tail[0] + 1, bytes(tail[1])) if tail else (0, ZERO_CHAIN)
        ledger = LedgerAppender(next_seq, prev_chain, self._clock)
        with Session(bind=conn, expire_on_commit=False) as session:
            for w in batch:
                if not w.savepoint:
                    # Without a savepoint a failing unit may have written rows, so its
                    # exception fails the batch and _process retries unit by unit.
                    outcomes.append((True, w.unit(session, ledger)))
                    continue
                mark = ledger._mark()
                sp = session.begin_nested()
                try:
                    value = w.unit(session, ledger)
                    session.flush()
                    sp.commit()
                    outcomes.append((True, value))
                except Exception as exc:  # the unit's own failure goes to its waiter
                    sp.rollback()
                    ledger._reset(mark)
                    if _infra(exc):
                        raise
                    outcomes.append((False, exc))
            session.flush()
        if ledger.appended:
            conn.exec_driver_sql(sql.insert, sql.rows(ledger.appended))
            if self.on_batch is not None:
                done = self.on_batch(conn, ledger.appended)
                if done is not None:
                    after.append(done)
        return ledger

    @cached_property
    def _sql(self) -> _Sql:
        return _Sql.for_dialect(self._engine.dialect)


@dataclass(frozen=True)
class BatchStats:
    """What one durable group commit did (for metrics)."""

    units: int
    entries: int
    commit_seconds: float  # the durable COMMIT alone
    batch_seconds: float  # BEGIN to durable COMMIT: units, inserts, tiles, commit
    queue_seconds: float  # how long the batch's oldest unit waited for the writer


#: Column order of a ledger row as the writer and the bulk seed insert it.
LEDGER_COLUMNS = (
    "seq",
    "type",
    "entry",
    "leaf_hash",
    "chain",
    "document_id",
    "account_id",
    "recorded_at",
)


@dataclass(frozen=True)
class _Sql:
    lock: str | None
    tail: str
    insert: str
    #: (column position, bind processor) for the columns whose type converts values
    #: (UTCDateTime): applied exactly as a Core insert would apply them.
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]

    @classmethod
    def for_dialect(cls, dialect: Dialect) -> _Sql:
        p = "?" if dialect.paramstyle == "qmark" else "%s"
        table = LEDGER_TABLE.name
        procs = []
        for i, name in enumerate(LEDGER_COLUMNS):
            col_type = LEDGER_TABLE.c[name].type
            if isinstance(col_type, LargeBinary):
                # Both drivers take ``bytes`` as a BLOB/bytea as is; SQLAlchemy's
                # processor would only wrap each value in a memoryview.
                continue
            proc = col_type._cached_bind_processor(dialect)
            if proc is not None:
                procs.append((i, proc))
        # Only constant identifiers (this module's table and column names) and
        # placeholders are formatted in; every value is a bound parameter.
        cols, marks = ", ".join(LEDGER_COLUMNS), ", ".join([p] * len(LEDGER_COLUMNS))
        tail = f"SELECT seq, chain FROM {table} ORDER BY seq DESC LIMIT 1"  # noqa: S608  # nosec B608
        insert = f"INSERT INTO {table} ({cols}) VALUES ({marks})"  # noqa: S608  # nosec B608
        return cls(
            lock="SELECT pg_advisory_xact_lock(%s)" if dialect.name == "postgresql" else None,
            tail=tail,
            insert=insert,
            processors=tuple(procs),
        )

    def rows(self, appended: Sequence[AppendedEntry]) -> list[tuple[Any, ...]]:
        """Parameter rows in ``LEDGER_COLUMNS`` order, converted by the column types."""
        procs = self.processors
        out = []
        for e in appended:
            row = [e.seq, e.type, e.entry, e.leaf_hash, e.chain, e.document_id, e.account_id, e.at]
            for i, proc in procs:
                v = row[i]
                if v is not None:
                    row[i] = proc(v)
            out.append(tuple(row))
        return out


def _to_vault_error(exc: BaseException) -> BaseException:
    if isinstance(exc, VaultError):
        return exc
    if _infra(exc):
        err = DatabaseUnavailable("the database is unavailable")
        err.__cause__ = exc
        return err
    return exc
