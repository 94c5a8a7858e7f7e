"""A local SMS provider (and webhook receiver) for tests, in its own process.

``start_sms_provider(tmpdir, ...)`` runs this file as a script. The child serves
stdlib ``ThreadingHTTPServer`` on 127.0.0.1, port 0, prints ``READY <port>`` and
appends one JSON line per request to ``requests.jsonl``. It is written from the
provider's side, without importing ``vault``, so the tests check the vault against an
independent reading of the contract.

Endpoints:

* ``POST /sms`` -- JSON ``{to, from, text, client_ref}``, HTTP Basic or Bearer auth
  (401 otherwise), 400 when a field is missing. ``Idempotency-Key`` is honoured like a
  real provider: a repeat with the same key and body gets the same ``id`` with
  ``Idempotent-Replayed: true`` and is *not* counted as a new SMS; the same key with a
  different body gets 422. Success is ``201 {"id": "sms-N", "status": "accepted"}``.
* ``POST /webhook`` -- checks ``X-Vault-Signature: sha256=HMAC(secret, ts + "." +
  body)`` and a ``X-Vault-Timestamp`` within 5 minutes; 204 if good, 401 if not.
* ``POST /_admin/failures`` -- replace the failure script (see below).
* ``POST /_admin/deliver`` -- ``{id, status, callback_url}``: sign and POST a delivery
  report, in the format ``vault.alerts.channels.parse_delivery_report`` documents, to
  the callback; answers the callback's status.

Failure script: a list of steps, consumed one per ``/sms`` or ``/webhook`` request
before anything else: ``{"status": 429, "retry_after": "7"}``, ``{"status": 500}``,
``{"status": 400}``, or ``{"hang": 3.0}`` (sleep, then drop the connection unanswered:
the client's timeout fires first). Scripted requests are recorded but not counted.

The child exits when its stdin closes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import select
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 15.0


def rate_limited(retry_after: str | None = "7") -> dict[str, Any]:
    return {"status": 429, "retry_after": retry_after}


def server_error(status: int = 500) -> dict[str, Any]:
    return {"status": status}


def bad_request() -> dict[str, Any]:
    return {"status": 400}


def hang(seconds: float = 3.0) -> dict[str, Any]:
    return {"hang": seconds}


@dataclass
class SmsProviderHandle:
    host: str
    port: int
    directory: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def sms_url(self) -> str:
        return self.base_url + "/sms"

    @property
    def webhook_url(self) -> str:
        return self.base_url + "/webhook"

    def requests(self) -> list[dict[str, Any]]:
        path = self.directory / "requests.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def sms_sent(self) -> list[dict[str, Any]]:
        """Requests the provider counted as new SMS (not scripted, not replays)."""
        return [r for r in self.requests() if r["path"] == "/sms" and r["counted"]]

    def set_failures(self, steps: Iterable[dict[str, Any]]) -> None:
        self._admin("/_admin/failures", {"steps": list(steps)})

    def deliver(
        self, provider_id: str, status: str, callback_url: str, *, at: str | None = None
    ) -> int:
        """Make the provider POST a signed delivery report; returns the callback's status."""
        reply = self._admin(
            "/_admin/deliver",
            {"id": provider_id, "status": status, "callback_url": callback_url, "at": at},
        )
        return int(reply["callback_status"])

    def _admin(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.loads(response.read() or b"{}"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> SmsProviderHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sms_provider(
    tmpdir: Path | str,
    *,
    basic: tuple[str, str] | None = ("vault", "sms-password"),
    bearer: str | None = None,
    failures: Iterable[dict[str, Any]] = (),
    report_secret: bytes = b"provider-report-secret",
    webhook_secret: bytes | None = None,
) -> SmsProviderHandle:
    directory = Path(tmpdir) / "sms"
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "directory": str(directory),
        "basic": list(basic) if basic else None,
        "bearer": bearer,
        "failures": list(failures),
        "report_secret": report_secret.hex(),
        "webhook_secret": webhook_secret.hex() if webhook_secret else None,
    }
    process = subprocess.Popen(
        [sys.executable, __file__, json.dumps(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=(directory / "server.log").open("ab"),
    )
    port = _wait_ready(process, directory / "server.log")
    return SmsProviderHandle(HOST, port, directory, process)


def _wait_ready(process: subprocess.Popen[bytes], log: Path) -> int:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT)
    line = process.stdout.readline().decode() if ready else ""
    if not line.startswith("READY "):
        process.kill()
        raise RuntimeError(f"test server did not start: {log.read_text(errors='replace')}")
    return int(line.split()[1])


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return (
        "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )


# --- child process -------------------------------------------------------------------------
class _State:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.failures: list[dict[str, Any]] = list(config["failures"])
        self.by_key: dict[str, tuple[str, str]] = {}  # key -> (body sha256, id)
        self.refs: dict[str, str | None] = {}  # id -> client_ref
        self.count = 0
        self.seq = 0
        self.log = Path(config["directory"]) / "requests.jsonl"

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            with self.log.open("a") as fh:
                fh.write(json.dumps(entry) + "\n")

    def next_failure(self) -> dict[str, Any] | None:
        with self.lock:
            return self.failures.pop(0) if self.failures else None


class _Handler(BaseHTTPRequestHandler):
    state: _State
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        entry: dict[str, Any] = {
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": _json_or_text(raw),
            "counted": False,
            "at": time.time(),
        }
        if self.path.startswith("/_admin/"):
            self._admin(self.path, json.loads(raw or b"{}"))
            return
        step = self.state.next_failure()
        if step is not None:
            entry["scripted"] = step
            self.state.record(entry)
            if "hang" in step:
                time.sleep(float(step["hang"]))
                self.close_connection = True
                return
            headers = {"Retry-After": step["retry_after"]} if step.get("retry_after") else {}
            self._reply(int(step["status"]), {"error": "scripted failure"}, headers)
            return
        if self.path == "/sms":
            status, body, headers = self._sms(raw, entry)
        elif self.path == "/webhook":
            status, body, headers = self._webhook(raw, entry)
        else:
            status, body, headers = 404, {"error": "not found"}, {}
        entry["status"] = status
        self.state.record(entry)
        self._reply(status, body, headers)

    def _authorised(self) -> bool:
        given = self.headers.get("Authorization", "")
        cfg = self.state.config
        if cfg["bearer"] and hmac.compare_digest(given, f"Bearer {cfg['bearer']}"):
            return True
        if cfg["basic"]:
            import base64

            token = base64.b64encode(":".join(cfg["basic"]).encode()).decode()
            return hmac.compare_digest(given, f"Basic {token}")
        return False

    def _sms(self, raw: bytes, entry: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if not self._authorised():
            return 401, {"error": "unauthorised"}, {}
        body = entry["body"]
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) and body[k] for k in ("to", "from", "text")
        ):
            return 400, {"error": "to, from and text are required"}, {}
        key = self.headers.get("Idempotency-Key")
        digest = hashlib.sha256(raw).hexdigest()
        with self.state.lock:
            if key and key in self.state.by_key:
                seen_digest, sms_id = self.state.by_key[key]
                if seen_digest != digest:
                    return 422, {"error": "Idempotency-Key reused with another body"}, {}
                entry["provider_id"] = sms_id
                return 200, {"id": sms_id, "status": "accepted"}, {"Idempotent-Replayed": "true"}
            self.state.count += 1
            sms_id = f"sms-{self.state.count}"
            if key:
                self.state.by_key[key] = (digest, sms_id)
            self.state.refs[sms_id] = body.get("client_ref")
        entry["counted"] = True
        entry["provider_id"] = sms_id
        return 201, {"id": sms_id, "status": "accepted"}, {}

    def _webhook(self, raw: bytes, entry: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        secret_hex = self.state.config["webhook_secret"]
        timestamp = self.headers.get("X-Vault-Timestamp", "")
        signature = self.headers.get("X-Vault-Signature", "")
        valid = bool(secret_hex) and timestamp.isdigit()
        if valid:
            expected = sign(bytes.fromhex(secret_hex), timestamp, raw)
            valid = hmac.compare_digest(expected, signature) and (
                abs(time.time() - int(timestamp)) <= 300
            )
        entry["signature_valid"] = valid
        if not valid:
            return 401, {"error": "bad signature"}, {}
        entry["counted"] = True
        return 204, None, {}

    def _admin(self, path: str, payload: dict[str, Any]) -> None:
        if path == "/_admin/failures":
            with self.state.lock:
                self.state.failures = list(payload["steps"])
            self._reply(200, {})
        elif path == "/_admin/deliver":
            self._reply(200, {"callback_status": self._post_report(payload)})
        else:
            self._reply(404, {"error": "not found"})

    def _post_report(self, payload: dict[str, Any]) -> int:
        report = {
            "id": payload["id"],
            "status": payload["status"],
            "at": payload.get("at") or datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "client_ref": self.state.refs.get(payload["id"]),
            "error_code": None,
        }
        body = json.dumps(report).encode()
        timestamp = str(int(time.time()))
        secret = bytes.fromhex(self.state.config["report_secret"])
        request = urllib.request.Request(
            payload["callback_url"],
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-Provider-Timestamp": timestamp,
                "X-Provider-Signature": sign(secret, timestamp, body),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _serve(config: dict[str, Any]) -> None:
    _Handler.state = _State(config)
    server = ThreadingHTTPServer((HOST, 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdout.write(f"READY {server.server_address[1]}\n")
    sys.stdout.flush()
    # Parent gone (stdin closed): exit, so no orphan provider outlives the test run.
    while os.read(0, 1):
        pass
    server.shutdown()


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
