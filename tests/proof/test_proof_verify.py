"""Offline verification of exported proofs: the library, the standalone tool, the
independent tools (pdfsig, openssl ts, an RFC 9162 verifier checked on the shared
vectors), and one attack per part of the file: every one must fail, naming its check.

The standalone tool runs as a subprocess twice: with the system ``python3`` (only
``cryptography``; seals and the appeal deadline then say "not checked") and with the
venv's python (pyHanko and holidays importable: every check runs).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from tests.conftest import auth
from tests.proof.conftest import get_proof, root_pem
from tests.support.services import require_tool
from vault.notify import sweep_notifications
from vault.proof import verify_bundle

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "verify_proof.py"
VECTORS = ROOT / "tests" / "data" / "vectors" / "vectors.json"
_CACHE: dict[str, dict[str, Any]] = {}


def _load_tool() -> Any:
    spec = importlib.util.spec_from_file_location("verify_proof_tool", TOOL)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["verify_proof_tool"] = mod
    spec.loader.exec_module(mod)
    return mod


tool = _load_tool()


@pytest.fixture
def proofs(request: pytest.FixtureRequest, profile: str, tmp_path_factory: Any) -> dict[str, Any]:
    """Two exported proofs (opened / never opened) per profile, made once per run."""
    if profile in _CACHE:
        return _CACHE[profile]
    posted = request.getfixturevalue("posted")
    clock = request.getfixturevalue("clock")
    client, staff, app_ = posted["client"], posted["staff"], posted["applicant"]
    vault = posted["vault"]
    r = client.post(
        f"/api/v1/accounts/{app_['account_id']}/documents",
        content=_pdf("Convocation"),
        params={"type": "CONVOCATION", "title": "Convocation"},
        headers={"Content-Type": "application/pdf", **auth(staff["agent"])},
    )
    assert r.status_code == 201, r.text
    opened_id = r.json()["document_id"]
    clock.advance(timedelta(minutes=5))
    assert (
        client.get(
            f"/api/v1/me/documents/{opened_id}/content", headers=auth(app_["token"])
        ).status_code
        == 200
    )
    opened = get_proof(client, staff["legal"], opened_id)
    clock.advance(timedelta(days=16))
    assert sweep_notifications(vault).notified == 1
    unopened = get_proof(client, staff["court"], posted["document_id"])
    d = tmp_path_factory.mktemp(f"proofs-{profile}")
    root = d / "root.pem"
    shutil.copy(root_pem(vault), root)
    from vault.ledger.checkpoints import public_key

    _CACHE[profile] = {
        "opened": opened,
        "unopened": unopened,
        "root": root,
        "log_key": public_key(vault),
        "dir": d,
    }
    return _CACHE[profile]


def _pdf(text: str) -> bytes:
    from tests.conftest import make_pdf

    return make_pdf(text)


def _files(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, b in files.items():
            zf.writestr(n, b)
    return buf.getvalue()


@pytest.mark.parametrize("which", ["opened", "unopened"])
def test_proof_verifies_with_pinned_key_and_root(proofs: dict[str, Any], which: str) -> None:
    root = proofs["root"].read_bytes()
    rep = verify_bundle(proofs[which], log_vkey=proofs["log_key"], trust_root_pem=root)
    assert rep.ok, rep.summary("en")
    assert rep.log_key_pinned and rep.trust_root_pinned
    assert "trust on first use" not in rep.summary("en")
    assert rep.basis == ("first_access" if which == "opened" else "delay_expired")
    res, info = tool.verify(proofs[which], proofs["log_key"], root, [])
    assert [r.name for r in res.all() if r.status == "fail"] == []
    assert info["notified_on"] == rep.notified_on
    assert info["appeal_deadline"] == rep.appeal_deadline


def test_unpinned_verdict_says_trust_on_first_use(proofs: dict[str, Any]) -> None:
    rep = verify_bundle(proofs["opened"])
    assert rep.ok
    assert "trust on first use" in rep.summary("en")
    assert "confiance à la première utilisation" in rep.summary("fr")


@pytest.mark.parametrize("python", ["system", "venv"])
def test_standalone_tool_as_subprocess(proofs: dict[str, Any], python: str) -> None:
    exe = shutil.which("python3") if python == "system" else sys.executable
    assert exe is not None
    if python == "system":
        probe = subprocess.run([exe, "-c", "import cryptography"], capture_output=True)
        if probe.returncode != 0:
            pytest.skip("the system python3 lacks cryptography")
    d: Path = proofs["dir"]
    for which in ("opened", "unopened"):
        f = d / f"{which}.zip"
        f.write_bytes(proofs[which])
        out = subprocess.run(
            [
                exe,
                str(TOOL),
                str(f),
                "--json",
                "--log-key",
                proofs["log_key"],
                "--trust-root",
                str(proofs["root"]),
            ],
            capture_output=True,
            text=True,
            cwd="/",
        )
        assert out.returncode == 0, out.stdout + out.stderr
        report = json.loads(out.stdout)
        statuses = {c["name"]: c["status"] for c in report["checks"]}
        for must in (
            "entries",
            "inclusion",
            "checkpoint_signature",
            "checkpoint_timestamp",
            "document_digest",
            "subject_commitment",
            "notification",
            "proof_binding",
        ):
            assert statuses[must] == "pass", (must, report)
        if python == "venv":
            assert statuses["document_seal"] == statuses["attestation_seal"] == "pass"
            assert statuses["appeal_deadline"] == "pass"
        human = subprocess.run(
            [exe, str(TOOL), str(f), "--lang", "en"], capture_output=True, text=True, cwd="/"
        )
        assert human.returncode == 0 and "VERDICT: the proof is VALID." in human.stdout


def test_cli_verify_exit_codes(proofs: dict[str, Any]) -> None:
    d: Path = proofs["dir"]
    good, bad = d / "cli-good.zip", d / "cli-bad.zip"
    good.write_bytes(proofs["opened"])
    bad.write_bytes(_pdf_byte("document.pdf")(proofs["opened"]))
    cli = [sys.executable, "-m", "vault.cli", "proof", "verify"]
    ok = subprocess.run(
        [*cli, str(good), "--trust-root", str(proofs["root"]), "--lang", "en"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "VERDICT: the proof is VALID." in ok.stdout
    ko = subprocess.run([*cli, str(bad), "--json"], capture_output=True, text=True, cwd=ROOT)
    assert ko.returncode == 1
    assert "document_seal" in json.loads(ko.stdout)["failed"]
    assert "document_seal" in ko.stderr


# --- independent tools -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def nss_db(tmp_path_factory: Any) -> Callable[[Path], str]:
    certutil = require_tool("certutil")

    def make(root: Path) -> str:
        directory = tmp_path_factory.mktemp("nss")
        db = f"sql:{directory}"
        subprocess.run([certutil, "-N", "-d", db, "--empty-password"], check=True)
        subprocess.run(
            [certutil, "-A", "-d", db, "-n", "root", "-t", "CT,C,C", "-i", str(root)], check=True
        )
        return db

    return make


@pytest.mark.parametrize("which", ["opened", "unopened"])
def test_pdfsig_validates_both_pdfs(proofs: dict[str, Any], which: str, nss_db: Any) -> None:
    pdfsig = require_tool("pdfsig")
    db = nss_db(proofs["root"])
    files = _files(proofs[which])
    for name in ("document.pdf", "attestation.pdf"):
        path = proofs["dir"] / f"{which}-{name}"
        path.write_bytes(files[name])
        out = subprocess.run([pdfsig, "-nssdir", db, str(path)], capture_output=True, text=True)
        assert "Signature is Valid." in out.stdout, (name, out.stdout, out.stderr)
        assert "Certificate is Trusted." in out.stdout, (name, out.stdout)
        assert "Total document signed" in out.stdout


@pytest.mark.parametrize("which", ["opened", "unopened"])
def test_openssl_ts_verifies_the_checkpoint_token(proofs: dict[str, Any], which: str) -> None:
    openssl = require_tool("openssl")
    d: Path = proofs["dir"]
    files = _files(proofs[which])
    proof = json.loads(files["proof.json"])
    note, token, chain = d / f"{which}.note", d / f"{which}.tsr", d / f"{which}-tsa.pem"
    note.write_bytes(proof["checkpoint"]["note"].encode())
    token.write_bytes(base64.b64decode(proof["checkpoint_timestamp"]))
    chain.write_bytes(files["tsa-chain.pem"])
    out = subprocess.run(
        [
            openssl,
            "ts",
            "-verify",
            "-data",
            str(note),
            "-in",
            str(token),
            "-token_in",
            "-CAfile",
            str(proofs["root"]),
            "-untrusted",
            str(chain),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and "Verification: OK" in out.stdout, out.stdout + out.stderr
    note.write_bytes(proof["checkpoint"]["note"].encode() + b" ")
    out = subprocess.run(
        [
            openssl,
            "ts",
            "-verify",
            "-data",
            str(note),
            "-in",
            str(token),
            "-token_in",
            "-CAfile",
            str(proofs["root"]),
            "-untrusted",
            str(chain),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0


def _independent_inclusion(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2 by recursion on the tree shape (not the bit-twiddling form)."""

    def h(b: bytes) -> bytes:
        return hashlib.sha256(b).digest()

    def go(i: int, n: int, path: list[bytes]) -> bytes | None:
        if n == 1:
            return leaf if not path else None
        if not path:
            return None
        k = 1 << ((n - 1).bit_length() - 1)
        if i < k:
            sub = go(i, k, path[:-1])
            return None if sub is None else h(b"\x01" + sub + path[-1])
        sub = go(i - k, n - k, path[:-1])
        return None if sub is None else h(b"\x01" + path[-1] + sub)

    return 0 <= index < size and go(index, size, proof) == root


def test_rfc9162_independent_verifier_on_vectors_then_on_the_proofs(
    proofs: dict[str, Any],
) -> None:
    vectors = json.loads(VECTORS.read_text())["inclusion_vectors"]
    checked = 0
    for v in vectors:
        leaf = (
            bytes.fromhex(v["leaf_hash"])
            if v.get("leaf_hash")
            else hashlib.sha256(b"\x00" + bytes.fromhex(v.get("leaf_data") or "")).digest()
        )
        got = _independent_inclusion(
            leaf,
            v["index"],
            v["size"],
            [bytes.fromhex(p) for p in v["proof"]],
            bytes.fromhex(v["root"]),
        )
        assert got == v["expect"], v["id"]
        checked += 1
    assert checked >= 10
    for which in ("opened", "unopened"):
        proof = json.loads(_files(proofs[which])["proof.json"])
        lines = proof["checkpoint"]["note"].split("\n")
        size, root = int(lines[1]), base64.b64decode(lines[2])
        for item in proof["entries"]:
            leaf = hashlib.sha256(b"\x00" + base64.b64decode(item["entry"])).digest()
            path = [base64.b64decode(p) for p in item["inclusion_proof"]]
            assert _independent_inclusion(leaf, item["index"], size, path, root)


# --- attacks: every part of the file ------------------------------------------------------
def _edit_json(data: bytes, fn: Callable[[dict[str, Any]], None]) -> bytes:
    files = _files(data)
    proof = json.loads(files["proof.json"])
    fn(proof)
    files["proof.json"] = bytes(rfc8785.dumps(proof))
    return _zip(files)


def _flip_b64(s: str, at: int = 10) -> str:
    raw = bytearray(base64.b64decode(s))
    raw[at % len(raw)] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _entry_byte(i: int) -> Callable[[dict[str, Any]], None]:
    def f(p: dict[str, Any]) -> None:
        e = p["entries"][i]
        raw = base64.b64decode(e["entry"]).replace(b'"at":"20', b'"at":"21', 1)
        e["entry"] = base64.b64encode(raw).decode()

    return f


def _sig(p: dict[str, Any]) -> None:
    note = p["checkpoint"]["note"]
    body, _, sig = note.rpartition("\u2014 ")
    name, _, b64 = sig.rstrip("\n").partition(" ")
    p["checkpoint"]["note"] = body + "\u2014 " + name + " " + _flip_b64(b64, 40) + "\n"


def _pdf_byte(name: str) -> Callable[[bytes], bytes]:
    def f(data: bytes) -> bytes:
        files = _files(data)
        b = bytearray(files[name])
        i = b.find(b"/Type /Page") if b.find(b"/Type /Page") > 0 else len(b) // 3
        b[i + 1] ^= 0x20
        files[name] = bytes(b)
        return _zip(files)

    return f


def _set(path: list[str], value: Any) -> Callable[[dict[str, Any]], None]:
    def f(p: dict[str, Any]) -> None:
        d = p
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value

    return f


ATTACKS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "test_attack_entry_byte_posted": (lambda d: _edit_json(d, _entry_byte(0)), "inclusion"),
    "test_attack_entry_byte_last": (lambda d: _edit_json(d, _entry_byte(-1)), "inclusion"),
    "test_attack_proof_hash": (
        lambda d: _edit_json(
            d,
            lambda p: p["entries"][0]["inclusion_proof"].__setitem__(
                0, _flip_b64(p["entries"][0]["inclusion_proof"][0])
            ),
        ),
        "inclusion",
    ),
    "test_attack_note_size": (
        lambda d: _edit_json(
            d,
            lambda p: p["checkpoint"].__setitem__(
                "note", p["checkpoint"]["note"].replace("\n", "\n9", 1)
            ),
        ),
        "checkpoint_signature",
    ),
    "test_attack_note_signature": (lambda d: _edit_json(d, _sig), "checkpoint_signature"),
    "test_attack_timestamp_token": (
        lambda d: _edit_json(
            d,
            lambda p: p.__setitem__(
                "checkpoint_timestamp", _flip_b64(p["checkpoint_timestamp"], -80)
            ),
        ),
        "checkpoint_timestamp",
    ),
    "test_attack_document_pdf": (_pdf_byte("document.pdf"), "document_seal"),
    "test_attack_attestation_pdf": (_pdf_byte("attestation.pdf"), "attestation_seal"),
    "test_attack_subject_agdref": (
        lambda d: _edit_json(d, lambda p: p["subject"].__setitem__("agdref", "9999999999")),
        "subject_commitment",
    ),
    "test_attack_subject_salt": (
        lambda d: _edit_json(
            d, lambda p: p["subject"].__setitem__("salt", _flip_b64(p["subject"]["salt"]))
        ),
        "subject_commitment",
    ),
    "test_attack_notification_date": (
        lambda d: _edit_json(d, _set(["notification", "notified_on"], "2020-01-01")),
        "notification",
    ),
    "test_attack_notification_basis": (
        lambda d: _edit_json(d, _set(["notification", "basis"], "delay_expired")),
        "notification",
    ),
    "test_attack_appeal_deadline": (
        lambda d: _edit_json(d, _set(["notification", "appeal_deadline"], "2099-01-01")),
        "appeal_deadline",
    ),
    "test_attack_document_sha256_field": (
        lambda d: _edit_json(d, _set(["document", "sha256"], "0" * 64)),
        "document_digest",
    ),
    "test_attack_swap_log_key": (
        lambda d: _edit_json(
            d, _set(["log", "public_key"], "localhost/ofpra-vault/log+00000000+AQ" + "A" * 42 + "=")
        ),
        "checkpoint_signature",
    ),
    "test_attack_drop_entry": (
        lambda d: _edit_json(d, lambda p: p["entries"].pop()),
        "proof_binding",
    ),
    "test_attack_extra_file": (lambda d: _zip({**_files(d), "evil.pdf": b"%PDF-1.7"}), "files"),
    "test_attack_chain_pem": (lambda d: _zip({**_files(d), "tsa-chain.pem": b""}), "files"),
    "test_attack_proof_json_noncanonical": (
        lambda d: _zip({**_files(d), "proof.json": _files(d)["proof.json"] + b" "}),
        "bundle",
    ),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attacks_fail_and_name_the_check(proofs: dict[str, Any], attack: str) -> None:
    mutate, check = ATTACKS[attack]
    tampered = mutate(proofs["opened"])
    root = proofs["root"].read_bytes()
    rep = verify_bundle(tampered, trust_root_pem=root)
    assert not rep.ok
    assert check in rep.failed, (attack, rep.summary("en"))
    # Any change to proof.json also unbinds it from the sealed attestation.
    if _files(tampered)["proof.json"] != _files(proofs["opened"])["proof.json"]:
        assert "proof_binding" in rep.failed
    res, _ = tool.verify(tampered, None, root, [])
    failed = [r.name for r in res.all() if r.status == "fail"]
    assert check in failed, (attack, failed)
