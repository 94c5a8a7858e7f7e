"""Schema fuzzing of the served API with schemathesis, for every role (issue 8, item 3).

The application is served for real (uvicorn on a loopback port), its OpenAPI document
is read from ``/schema/openapi.json``, and every operation is exercised with requests
generated from the schema, once per credential: one bearer token per staff role, one
applicant session, and no credential at all. Two properties must hold for every
response (schemathesis checks):

* ``not_a_server_error``: no 5xx;
* ``response_schema_conformance``: a documented status answers with a body that
  matches its documented schema.

Undocumented 4xx statuses (401/403/404/409/422/429 problems, RFC 9457) are not
violations here: the guard answers them before validation for any route.

Long run (reported in SECURITY.md / the campaign note)::

    .venv/bin/python tools/fuzz_api.py --examples 60 --seed 1

Last long run (2026-11-29, embedded profile, ``--examples 30 --seed 7``, 2 cores
shared with other jobs): 40 operations x 8 credentials, 7,041 requests in 545 s,
0 server errors, 0 schema violations (statuses: 200 171, 201 11, 202 128, 400 1434,
401 782, 403 3528, 404 908, 415 68, 422 11). An earlier short run found one 500
(``offset`` beyond 64 bits overflowed SQLite), fixed with ``api.schemas.MAX_OFFSET``.

The short CI run is tests/security/test_schemathesis.py (a few examples per
operation and role). Exit status 1 when any failure was found; the table lists
requests per role, statuses seen, and each failure (operation, role, status, check).
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

#: Operations not fuzzed with a live credential because they end it (they are
#: covered by tests/security/test_auth_attacks.py); they are still fuzzed anonymously.
SESSION_ENDING = {("POST", "/api/v1/auth/logout")}

ROLES = ("agent", "legal", "court", "ofii", "admin", "professional")


@dataclass
class Failure:
    role: str
    method: str
    path: str
    status: int | None
    message: str


@dataclass
class FuzzReport:
    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    operations: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def table(self) -> str:
        lines = [f"operations: {self.operations}   requests: {self.total}   {self.seconds:.0f} s"]
        lines.append("role            requests")
        for role, n in sorted(self.requests.items()):
            lines.append(f"{role:<15} {n:>8}")
        lines.append("status          count")
        for status, n in sorted(self.statuses.items()):
            lines.append(f"{status:<15} {n:>8}")
        five = sum(n for s, n in self.statuses.items() if s >= 500)
        lines.append(f"5xx: {five}   failures (5xx + schema violations): {len(self.failures)}")
        seen: set[tuple[str, str, str, int | None]] = set()
        for f in self.failures:
            key = (f.role, f.method, f.path, f.status)
            if key in seen:
                continue
            seen.add(key)
            lines.append(
                f"  FAIL {f.role:<12} {f.method} {f.path} -> {f.status}: {f.message[:200]}"
            )
        return "\n".join(lines)


def provision(vault: Any) -> dict[str, str | None]:
    """One bearer token per staff role, an applicant session, and anonymous."""
    from vault import accounts
    from vault.principal import Principal
    from vault.staff import create_staff

    tokens: dict[str, str | None] = {"anonymous": None}
    agent_id = ""
    for role in ROLES:
        structure = "SPADA-35" if role == "professional" else None
        issued = create_staff(vault, role=role, name=f"fuzz {role}", structure_id=structure)
        tokens[role] = issued.token
        if role == "agent":
            agent_id = issued.staff_id
    agent = Principal("staff", agent_id, "agent", None)
    created = accounts.create_account(
        vault,
        accounts.Registration(
            agdref="1231231234",
            ofpra_number="OFPRA-FUZZ-0001",
            guda="Rennes",
            registered_on=date(2026, 2, 20),
            procedure="normal",
            structure_id="SPADA-35",
        ),
        agent,
    )
    session = accounts.first_connection(
        vault, created.agdref, created.connection_key, "correct horse battery"
    )
    tokens["applicant"] = session.token
    return tokens


@contextlib.contextmanager
def served(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yields the base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fuzzed server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def fuzz(
    base_url: str,
    tokens: dict[str, str | None],
    *,
    max_examples: int,
    seed: int | None = None,
) -> FuzzReport:
    import requests
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json")
    report = FuzzReport()
    started = time.monotonic()
    http = requests.Session()
    checks = [not_a_server_error, response_schema_conformance]
    operations = [r.ok() for r in schema.get_all_operations()]
    report.operations = len(operations)
    for role, token in tokens.items():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for op in operations:
            if token and (op.method.upper(), op.path) in SESSION_ENDING:
                continue

            _run_operation(op, role, headers, base_url, http, checks, report, max_examples, seed)
    report.seconds = time.monotonic() - started
    return report


def _run_operation(
    op: Any,
    role: str,
    headers: dict[str, str],
    base_url: str,
    http: Any,
    checks: list[Any],
    report: FuzzReport,
    max_examples: int,
    seed: int | None,
) -> None:
    import hypothesis
    from hypothesis import HealthCheck, given

    @hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=seed is None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @given(case=op.as_strategy())
    def run(case: Any) -> None:
        # The credential under test replaces whatever the schema generated.
        if case.headers:
            case.headers.pop("Authorization", None)
        response = case.call(base_url=base_url, session=http, headers=headers)
        report.requests[role] += 1
        report.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=checks)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 -- every failure is recorded
            report.failures.append(
                Failure(
                    role,
                    op.method.upper(),
                    op.path,
                    response.status_code,
                    str(exc).strip().replace("\n", " "),
                )
            )

    if seed is not None:
        run = hypothesis.seed(seed)(run)
    run()


def _open_embedded(data_dir: Path) -> Any:
    from vault.clock import SystemClock
    from vault.config import load_settings
    from vault.service import open_vault

    settings = load_settings(
        {},
        data_dir=data_dir,
        argon2_opslimit=1,
        argon2_memlimit=64 * 1024,
        background_tasks=False,
        # Fuzzed log-ins must reach the handlers, not the lockout (tested elsewhere).
        auth_max_failures=1_000_000,
        auth_ip_per_minute=1_000_000,
    )
    return open_vault(settings, clock=SystemClock(), migrate=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--examples", type=int, default=60, help="examples per operation and role")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--data-dir", type=Path, default=None, help="default: a temporary dir")
    args = ap.parse_args(argv)
    from api.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        vault = _open_embedded(args.data_dir or Path(tmp))
        try:
            tokens = provision(vault)
            with served(create_app(vault=vault)) as base_url:
                report = fuzz(base_url, tokens, max_examples=args.examples, seed=args.seed)
        finally:
            vault.close()
    print(report.table())
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
