"""`ofpra-vault serve` starts as a real process on both profiles and answers ready.

Regression: the production sealer validates its chain with its own event loop at
start-up; opening the vault inside the server's loop made `serve` fail to start.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time

import httpx

from vault.config import Settings


def _env(settings: Settings, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    for f in dataclasses.fields(Settings):
        value = getattr(settings, f.name)
        if value not in ("", None):
            env["VAULT_" + f.name.upper()] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
    env["VAULT_PORT"] = str(port)
    return env


def test_serve_starts_and_is_ready(settings: Settings) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    if settings.profile == "production":
        # The bucket is created by the operator (doctor checks it); here, by the test.
        from vault.service import make_blob_store

        make_blob_store(settings).ensure_bucket()  # type: ignore[attr-defined]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vault.cli", "serve"],
        env=_env(settings, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        ready = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert ready is not None, "the server did not start"
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["database"] == "ok"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
