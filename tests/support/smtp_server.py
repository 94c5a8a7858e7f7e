"""A real SMTP server for tests: aiosmtpd in its own process.

``start_smtp_server(tmpdir)`` runs this file as a script (``python smtp_server.py
CONFIG_JSON``). The child binds port 0 on 127.0.0.1, prints ``READY <port>`` and
stores each accepted message as ``NNNNN.eml`` (raw bytes as received) plus
``NNNNN.json`` (envelope: MAIL FROM, RCPT TO, whether TLS and AUTH were used), each
written to a temporary name and renamed, so a reader never sees half a file.

Options:

* ``fail_first=N, fail_code=451`` (or 421, 452...): the first N DATA commands get that
  temporary reply, to exercise retries;
* ``reject_recipients``: addresses answered ``550 5.1.1 <address>: ...`` at RCPT, a
  reply that echoes the address like real servers do;
* ``tls="starttls"`` or ``"tls"`` (implicit): a self-signed certificate for 127.0.0.1 is
  generated; ``handle.cafile`` is the PEM the client must trust;
* ``auth=(user, password)``: AUTH PLAIN/LOGIN required (only offered over TLS).

The child exits when its stdin closes, so a crashed test run leaves no server behind.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import select
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 15.0


@dataclass
class SmtpServerHandle:
    host: str
    port: int
    directory: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    cafile: Path | None = None

    def messages(self) -> list[EmailMessage]:
        """Every accepted message, in arrival order, parsed with the modern policy."""
        out = []
        for path in sorted(self.directory.glob("*.eml")):
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out

    def envelopes(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted(self.directory.glob("*.json"))]

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

    def __enter__(self) -> SmtpServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_self_signed_cert(directory: Path, host: str = HOST) -> tuple[Path, Path]:
    """A throwaway CA-less certificate for ``host`` (IP SAN); returns (cert, key)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vault-test-smtp")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def start_smtp_server(
    tmpdir: Path | str,
    *,
    fail_first: int = 0,
    fail_code: int = 451,
    reject_recipients: Iterable[str] = (),
    tls: Literal["none", "starttls", "tls"] = "none",
    auth: tuple[str, str] | None = None,
) -> SmtpServerHandle:
    directory = Path(tmpdir) / "smtp"
    directory.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "directory": str(directory),
        "fail_first": fail_first,
        "fail_code": fail_code,
        "reject_recipients": [r.lower() for r in reject_recipients],
        "tls": tls,
        "auth": list(auth) if auth else None,
    }
    cafile = None
    if tls != "none":
        cert, key = make_self_signed_cert(directory)
        config["cert"], config["key"] = str(cert), str(key)
        cafile = cert
    process = subprocess.Popen(
        [sys.executable, __file__, json.dumps(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=(directory / "server.log").open("ab"),
    )
    port = _wait_ready(process, directory / "server.log")
    return SmtpServerHandle(HOST, port, directory, process, cafile)


def _wait_ready(process: subprocess.Popen[bytes], log: Path) -> int:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT)
    line = process.stdout.readline().decode() if ready else ""
    if not line.startswith("READY "):
        process.kill()
        raise RuntimeError(f"test server did not start: {log.read_text(errors='replace')}")
    return int(line.split()[1])


# --- child process -------------------------------------------------------------------------
def _serve(config: dict[str, Any]) -> None:
    import asyncio
    import ssl

    from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

    directory = Path(config["directory"])
    rejected = set(config["reject_recipients"])

    class Handler:
        def __init__(self) -> None:
            self.data_commands = 0
            self.stored = 0

        async def handle_RCPT(
            self,
            server: SMTP,
            session: Session,
            envelope: Envelope,
            address: str,
            rcpt_options: list[str],
        ) -> str:
            if address.lower() in rejected:
                return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 OK"

        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
            self.data_commands += 1
            if self.data_commands <= config["fail_first"]:
                code = config["fail_code"]
                return f"{code} 4.3.0 Temporary failure, please try again later"
            self.stored += 1
            stem = f"{self.stored:05d}"
            meta = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "tls": session.ssl is not None or config["tls"] == "tls",
                "authenticated": bool(session.authenticated),
            }
            _atomic_write(directory / f"{stem}.json", json.dumps(meta).encode())
            _atomic_write(directory / f"{stem}.eml", bytes(envelope.original_content or b""))
            return f"250 2.0.0 Ok: queued as Q{stem}"

    handler = Handler()
    context = None
    if config["tls"] != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(config["cert"], config["key"])

    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        user, password = config["auth"]
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (user, password)
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends 535

    def factory() -> SMTP:
        return SMTP(
            handler,
            hostname="vault-test-smtp",
            tls_context=context if config["tls"] == "starttls" else None,
            require_starttls=config["tls"] == "starttls",
            authenticator=authenticator if config["auth"] else None,
            auth_required=bool(config["auth"]),
            # aiosmtpd only knows about STARTTLS; with implicit TLS the whole socket is
            # already encrypted, so its "require TLS for AUTH" check must be off.
            auth_require_tls=config["tls"] != "tls",
        )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            factory, HOST, 0, ssl=context if config["tls"] == "tls" else None
        )
        port = server.sockets[0].getsockname()[1]
        stopped = asyncio.Event()
        # Parent gone (stdin closed): stop, so no orphan server outlives the test run.
        loop.add_reader(sys.stdin.fileno(), lambda: stopped.set() if not os.read(0, 1) else None)
        sys.stdout.write(f"READY {port}\n")
        sys.stdout.flush()
        async with server:
            await stopped.wait()

    asyncio.run(main())


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
