"""Locust users for tools/loadtest.py (one class per scenario; see that file).

Open-loop approximation: every user paces itself with ``constant_throughput``
(``LOADTEST_PER_USER`` requests per second), and the driver starts
``rate / per_user`` users, so the offered rate does not drop when the server slows
down, as long as one request takes less than ``1 / per_user`` seconds. The driver
reports the offered rate next to the achieved one, so a shortfall is visible.
``LOADTEST_SATURATE=1`` removes the pacing (closed loop, no think time) to find the
saturation throughput.

Seed data (tokens, account and document ids) come from the JSON file named by
``LOADTEST_SEED``, written by ``tools/loadtest.py seed``.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

from locust import HttpUser, constant, constant_throughput, task
from locust.exception import StopUser

SEED: dict[str, Any] = json.loads(open(os.environ["LOADTEST_SEED"]).read())  # noqa: SIM115
PER_USER = float(os.environ.get("LOADTEST_PER_USER", "1"))
SATURATE = os.environ.get("LOADTEST_SATURATE") == "1"
WAIT = constant(0) if SATURATE else constant_throughput(PER_USER)

#: Documents never opened: each first open takes one (gevent: one thread, no lock needed).
UNOPENED: list[tuple[str, str]] = [(d["token"], d["id"]) for d in SEED["first_open"]]
random.shuffle(UNOPENED)
PDF_100K = open(SEED["pdf_100k"], "rb").read()  # noqa: SIM115


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def tile_path(level: int, index: int) -> str:
    """C2SP tlog-tiles index encoding: 3-digit groups, all but the last prefixed x."""
    digits = f"{index:d}"
    digits = digits.zfill((len(digits) + 2) // 3 * 3)
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return f"/log/tile/{level}/" + "/".join([f"x{g}" for g in groups[:-1]] + [groups[-1]])


class OpenFirst(HttpUser):
    """An applicant opens a 1 MB document for the first time (FIRST_ACCESS is durable
    in the ledger before the first byte)."""

    wait_time = WAIT

    @task
    def open_first(self) -> None:
        if not UNOPENED:
            raise StopUser()
        token, doc = UNOPENED.pop()
        with self.client.get(
            f"/api/v1/me/documents/{doc}/content",
            headers=bearer(token),
            name="GET /me/documents/{id}/content (first open, 1 MB)",
            stream=True,
            catch_response=True,
        ) as r:
            size = sum(len(c) for c in r.iter_content(65536))
            if r.status_code != 200 or size < 1_000_000:
                r.failure(f"status {r.status_code}, {size} bytes")


class ListDocuments(HttpUser):
    wait_time = WAIT

    @task
    def list_documents(self) -> None:
        acc = random.choice(SEED["applicants"])
        self.client.get(
            "/api/v1/me/documents", headers=bearer(acc["token"]), name="GET /me/documents"
        )


class Login(HttpUser):
    """Argon2id (VAULT_ARGON2_* defaults: 3 passes, 64 MiB) dominates."""

    wait_time = WAIT

    @task
    def login(self) -> None:
        acc = random.choice(SEED["applicants"])
        self.client.post(
            "/api/v1/auth/login",
            json={"identifier": acc["agdref"], "password": acc["password"]},
            name="POST /auth/login",
        )


class PostPdf(HttpUser):
    wait_time = WAIT

    @task
    def post_pdf(self) -> None:
        acc = random.choice(SEED["applicants"])
        self.client.post(
            f"/api/v1/accounts/{acc['account_id']}/documents",
            params={"type": "CONVOCATION", "title": "Convocation (load test)"},
            data=PDF_100K,
            headers={"Content-Type": "application/pdf", **bearer(SEED["agent"])},
            name="POST /accounts/{id}/documents (100 KB)",
        )


class ExportProof(HttpUser):
    wait_time = WAIT

    @task
    def export_proof(self) -> None:
        doc = random.choice(SEED["proof_docs"])
        with self.client.get(
            f"/api/v1/documents/{doc}/proof",
            headers=bearer(SEED["legal"]),
            name="GET /documents/{id}/proof (legal)",
            stream=True,
            catch_response=True,
        ) as r:
            size = sum(len(c) for c in r.iter_content(65536))
            if r.status_code != 200 or size == 0:
                r.failure(f"status {r.status_code}")


class ReadLog(HttpUser):
    """A monitor: the checkpoint, then one tile of the tree it commits to."""

    wait_time = WAIT

    @task
    def read_log(self) -> None:
        r = self.client.get("/log/checkpoint", name="GET /log/checkpoint")
        if r.status_code != 200:
            return
        size = int(r.text.split("\n")[1])
        full = size // 256
        if full and random.random() < 0.8:
            self.client.get(tile_path(0, random.randrange(full)), name="GET /log/tile/0/{N}")
        elif size % 256:
            path = tile_path(0, full) + f".p/{size % 256}"
            self.client.get(path, name="GET /log/tile/0/{N}.p/{W}")
