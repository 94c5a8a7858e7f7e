"""Locust users for tools/loadtest.py (one class per scenario; see that file).

Open-loop arrivals: the driver starts ``rate / per_user`` users, and every user
issues requests at the instants of its own Poisson process of rate
``LOADTEST_PER_USER`` (exponential gaps, scheduled from the previous *arrival*, not
from the previous response, so a slow answer does not lower the offered rate as long
as one request takes less than the gap). The superposition of independent Poisson
processes is a Poisson process of rate ``rate``: the arrivals a real population of
applicants makes. Each user starts at a random instant, never in step with the others.

Why not Locust's ``constant_throughput``: Locust starts all users in the same
millisecond, and ``constant_throughput`` keeps each user's phase, so 100 users at
2 req/s each arrive as bursts of 100 simultaneous requests every 0.5 s. That measured
the queue of the burst (list p50 130 ms at 200 req/s), not the server's latency at
that rate (p50 3 ms with the same arrivals spread out).

The driver reports the offered rate next to the achieved one, so a shortfall is
visible. ``LOADTEST_SATURATE=1`` removes the pacing (closed loop, no think time) to
find the saturation throughput. The users are ``FastHttpUser`` (geventhttpclient):
about a fifth of the client CPU of ``HttpUser`` (requests) on the cores the server
shares. Response times are to the last byte of the body.

Seed data (tokens, account and document ids) come from the JSON file named by
``LOADTEST_SEED``, written by ``tools/loadtest.py seed``.
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any
from urllib.parse import urlencode

import gevent
from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import StopUser

SEED: dict[str, Any] = json.loads(open(os.environ["LOADTEST_SEED"]).read())  # noqa: SIM115
PER_USER = float(os.environ.get("LOADTEST_PER_USER", "1"))
SATURATE = os.environ.get("LOADTEST_SATURATE") == "1"


def poisson_arrivals(user: Any) -> float:
    """Locust ``wait_time``: the time until this user's next Poisson arrival."""
    now = time.monotonic()
    nxt = max(getattr(user, "_next_arrival", now), now - 1.0)  # late by > 1 s: no burst
    nxt += random.expovariate(PER_USER)
    user._next_arrival = nxt
    return max(0.0, nxt - now)


WAIT = constant(0) if SATURATE else poisson_arrivals

#: Documents never opened: each first open takes one (gevent: one thread, no lock needed).
UNOPENED: list[tuple[str, str]] = [(d["token"], d["id"]) for d in SEED["first_open"]]
random.shuffle(UNOPENED)
POST_QUERY = urlencode({"type": "CONVOCATION", "title": "Convocation (load test)"})
PDF_100K = open(SEED["pdf_100k"], "rb").read()  # noqa: SIM115


class PacedUser(FastHttpUser):
    """A user whose first request waits for its first Poisson arrival."""

    abstract = True
    wait_time = WAIT

    def on_start(self) -> None:
        if not SATURATE:
            gevent.sleep(self.wait_time())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def tile_path(level: int, index: int) -> str:
    """C2SP tlog-tiles index encoding: 3-digit groups, all but the last prefixed x."""
    digits = f"{index:d}"
    digits = digits.zfill((len(digits) + 2) // 3 * 3)
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return f"/log/tile/{level}/" + "/".join([f"x{g}" for g in groups[:-1]] + [groups[-1]])


class OpenFirst(PacedUser):
    """An applicant opens a 1 MB document for the first time (FIRST_ACCESS is durable
    in the ledger before the first byte)."""

    @task
    def open_first(self) -> None:
        if not UNOPENED:
            raise StopUser()
        token, doc = UNOPENED.pop()
        with self.client.get(
            f"/api/v1/me/documents/{doc}/content",
            headers=bearer(token),
            name="GET /me/documents/{id}/content (first open, 1 MB)",
            catch_response=True,
        ) as r:
            size = len(r.content or b"")
            if r.status_code != 200 or size < 1_000_000:
                r.failure(f"status {r.status_code}, {size} bytes")


class ListDocuments(PacedUser):
    @task
    def list_documents(self) -> None:
        acc = random.choice(SEED["applicants"])
        self.client.get(
            "/api/v1/me/documents", headers=bearer(acc["token"]), name="GET /me/documents"
        )


class Login(PacedUser):
    """Argon2id (VAULT_ARGON2_* defaults: 3 passes, 64 MiB) dominates."""

    @task
    def login(self) -> None:
        acc = random.choice(SEED["applicants"])
        self.client.post(
            "/api/v1/auth/login",
            json={"identifier": acc["agdref"], "password": acc["password"]},
            name="POST /auth/login",
        )


class PostPdf(PacedUser):
    @task
    def post_pdf(self) -> None:
        acc = random.choice(SEED["applicants"])
        self.client.post(
            f"/api/v1/accounts/{acc['account_id']}/documents?{POST_QUERY}",
            data=PDF_100K,  # type: ignore[arg-type]  # geventhttpclient sends bytes as-is
            headers={"Content-Type": "application/pdf", **bearer(SEED["agent"])},
            name="POST /accounts/{id}/documents (100 KB)",
        )


class ExportProof(PacedUser):
    @task
    def export_proof(self) -> None:
        doc = random.choice(SEED["proof_docs"])
        with self.client.get(
            f"/api/v1/documents/{doc}/proof",
            headers=bearer(SEED["legal"]),
            name="GET /documents/{id}/proof (legal)",
            catch_response=True,
        ) as r:
            size = len(r.content or b"")
            if r.status_code != 200 or size == 0:
                r.failure(f"status {r.status_code}")


class ReadLog(PacedUser):
    """A monitor: the checkpoint, then one tile of the tree it commits to."""

    @task
    def read_log(self) -> None:
        r = self.client.get("/log/checkpoint", name="GET /log/checkpoint")
        if r.status_code != 200:
            return
        size = int((r.text or "").split("\n")[1])
        full = size // 256
        if full and random.random() < 0.8:
            self.client.get(tile_path(0, random.randrange(full)), name="GET /log/tile/0/{N}")
        elif size % 256:
            path = tile_path(0, full) + f".p/{size % 256}"
            self.client.get(path, name="GET /log/tile/0/{N}.p/{W}")
