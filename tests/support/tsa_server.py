"""A real RFC 3161 time-stamping server over HTTP (section 3.4) for the tests.

The production profile reaches its TSA through ``VAULT_TSA_URL`` with pyHanko's HTTP
client; tests point it at this server, which answers with the in-process
:class:`vault.tsa.LocalTimeStamper` (same test PKI, same clock as the test's vault),
so the HTTP path is exercised for real on loopback.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from asn1crypto import tsp

from vault.clock import Clock
from vault.tsa import LocalTimeStamper


@contextmanager
def tsa_server(pki: Any, clock: Clock) -> Iterator[str]:
    stamper = LocalTimeStamper.from_test_pki(pki, clock)

    def answer(body: bytes) -> bytes:
        return bytes(stamper.respond(tsp.TimeStampReq.load(body)).dump())

    with timestamp_http_server(answer) as url:
        yield url


@contextmanager
def timestamp_http_server(answer: Callable[[bytes], bytes]) -> Iterator[str]:
    """RFC 3161 section 3.4 transport on loopback: ``answer(request DER) -> response
    DER`` (a ValueError is a 400)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            if self.headers.get("Content-Type") != "application/timestamp-query" or not length:
                self.send_error(400)
                return
            try:
                body = answer(self.rfile.read(length))
            except ValueError:
                self.send_error(400)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tsa"
    finally:
        server.shutdown()
        server.server_close()
