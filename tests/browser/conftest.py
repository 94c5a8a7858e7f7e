"""Browser tests: the real server (``ofpra-vault serve``) driven by the system Chromium.

Playwright's library drives Debian's ``/usr/bin/chromium`` (never a downloaded
browser). Under ``CI=true`` a missing browser or axe-core is a failure, not a skip.
Screenshots go to ``$VAULT_ARTIFACTS`` (default ``/tmp/ofpra-vault-artifacts``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.support.services import unavailable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CHROMIUM = os.environ.get("VAULT_CHROMIUM", "/usr/bin/chromium")
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("VAULT_ARTIFACTS", "/tmp/ofpra-vault-artifacts")) / "browser"
PHONE = {"width": 360, "height": 740}
#: The real ``ofpra-vault serve``; VAULT_BROWSER_SERVER=factory uses serve_app.py.
SERVE_CMD = (
    [sys.executable, "-m", "tests.browser.serve_app"]
    if os.environ.get("VAULT_BROWSER_SERVER") == "factory"
    else [sys.executable, "-m", "vault.cli", "serve"]
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing(msg: str) -> NoReturn:
    unavailable(msg + " (run scripts/browser-deps.sh)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    env: dict[str, str]

    def cli(self, *args: str) -> Any:
        out = subprocess.run(
            [sys.executable, "-m", "vault.cli", *args, "--json"],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        return json.loads(out.stdout)

    def staff_token(self, role: str, structure: str | None = None) -> str:
        args = ["staff", "create", "--role", role, "--name", f"Test {role}"]
        if structure:
            args += ["--structure", structure]
        token: str = self.cli(*args)["token"]
        return token

    def api(self, method: str, path: str, token: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("vault-browser")
    data_dir.chmod(0o700)
    port = _free_port()
    env = {
        **os.environ,
        "VAULT_PROFILE": "embedded",
        "VAULT_DATA_DIR": str(data_dir / "data"),
        "VAULT_HOST": "127.0.0.1",
        "VAULT_PORT": str(port),
        "VAULT_ARGON2_OPSLIMIT": "1",
        "VAULT_ARGON2_MEMLIMIT": str(64 * 1024),
        "VAULT_CHECKPOINT_INTERVAL_SECONDS": "0.5",  # proofs need a checkpoint soon
        "VAULT_COOKIE_SECURE": "false",  # plain http on 127.0.0.1 in the test
    }
    log = (data_dir / "server.log").open("w")
    proc = subprocess.Popen(
        SERVE_CMD,
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/health/live", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    raise RuntimeError(
                        "server did not start:\n" + (data_dir / "server.log").read_text()
                    ) from None
                time.sleep(0.2)
        yield Server(url, env)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        _missing(f"Chromium is not installed at {CHROMIUM}")
    if not AXE.exists():
        _missing(f"axe-core is not installed at {AXE}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright Python package is not installed")

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def phone(browser: Any, tmp_path: Path) -> Iterator[Any]:
    """A fresh phone-sized context (its own cookies): one person on one phone."""
    ctx = browser.new_context(
        viewport=PHONE,
        device_scale_factor=1,
        is_mobile=True,
        has_touch=True,
        accept_downloads=True,
        locale="fr-FR",
    )
    try:
        yield ctx
    finally:
        ctx.close()
