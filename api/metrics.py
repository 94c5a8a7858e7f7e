"""Prometheus metrics of the request path and the ledger sequencer (issue 8, item 2).

* ``vault_http_request_duration_seconds{method, route, status}``: a histogram per route
  *template* (``/api/v1/me/documents/{document_id}/content``, never the concrete
  path, so no identifier reaches the metrics) and status class (``2xx`` ... ``5xx``).
  Measured from the first byte in to the last byte out, streamed downloads included.
* ``vault_ledger_batch_entries``: ledger entries per group commit (histogram).
* ``vault_ledger_commit_seconds``: the durable commit of a group commit (histogram),
  timed from the end of the batch's inserts to the end of ``COMMIT`` (the fsync).

The two ledger histograms are observed through the sequencer's ``observers`` (called
after each durable commit with the batch's figures; :func:`instrument_sequencer`).
The counters ``vault_ledger_batches_total`` / ``vault_ledger_units_total`` and
the queue depth are read from the sequencer at scrape time (:mod:`api.health`).

Register with ``middleware=[metrics.request_metrics]`` in :mod:`api.app`.
"""

from __future__ import annotations

from time import perf_counter

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Histogram

from vault.ledger.sequencer import BatchStats, Sequencer

REQUEST_SECONDS = Histogram(
    "vault_http_request_duration_seconds",
    "HTTP request duration by route template and status class",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
BATCH_ENTRIES = Histogram(
    "vault_ledger_batch_entries",
    "ledger entries written per group commit",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
#: Seconds, for the sequencer histograms: 0.5 ms (a quiet commit) to 5 s.
_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
COMMIT_SECONDS = Histogram(
    "vault_ledger_commit_seconds",
    "duration of the durable COMMIT of a group commit",
    buckets=_SECONDS_BUCKETS,
)

BATCH_SECONDS = Histogram(
    "vault_ledger_batch_seconds",
    "duration of a group commit's transaction, BEGIN to durable COMMIT",
    buckets=_SECONDS_BUCKETS,
)
QUEUE_SECONDS = Histogram(
    "vault_ledger_queue_wait_seconds",
    "how long the oldest unit of a group commit waited for the writer before it began",
    buckets=_SECONDS_BUCKETS,
)

_MARK = "_vault_metrics"


def instrument_sequencer(sequencer: Sequencer) -> None:
    """Observe batch sizes and commit durations once per durable group commit, through
    the sequencer's ``observers`` (it times the COMMIT itself)."""
    if any(getattr(o, _MARK, False) for o in sequencer.observers):
        return

    def observed(stats: BatchStats) -> None:
        BATCH_ENTRIES.observe(stats.entries)
        COMMIT_SECONDS.observe(stats.commit_seconds)
        BATCH_SECONDS.observe(stats.batch_seconds)
        QUEUE_SECONDS.observe(stats.queue_seconds)

    setattr(observed, _MARK, True)
    sequencer.observers.append(observed)


def _status_class(status: int) -> str:
    return f"{status // 100}xx"


def request_metrics(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: one histogram observation per HTTP request."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        vault = scope["app"].state.get("vault")
        if vault is not None:
            instrument_sequencer(vault.sequencer)
        status = 500
        start = perf_counter()

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_observed)
        finally:
            route = scope.get("path_template") or "unmatched"
            method = str(scope.get("method", "GET"))
            REQUEST_SECONDS.labels(method, route, _status_class(status)).observe(
                perf_counter() - start
            )

    return middleware
