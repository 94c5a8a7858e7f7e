"""The /log read API as a client that shares no code with the vault sees it.

The client below re-implements what it needs from the specs only (hashlib, base64,
``cryptography`` Ed25519): C2SP signed-note and checkpoint parsing, tlog-tiles
paths and entry bundles, RFC 6962/9162 hashing and proof verification. It must
agree with the vault byte for byte. Both profiles.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from litestar.testing import TestClient

from tests.conftest import auth
from vault.ledger.checkpoints import make_checkpoint
from vault.ledger.note import CosignatureSigner
from vault.service import Vault

# --- an independent client (specs only) --------------------------------------------


def _sha(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return _sha(b"\x01" + left + right)


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle Tree Hash over leaf hashes."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return _node(_mth(leaves[:k]), _mth(leaves[k:]))


def _verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2, verbatim."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def _verify_consistency(m: int, n: int, proof: list[bytes], r1: bytes, r2: bytes) -> bool:
    """RFC 9162 §2.1.4.2, verbatim."""
    if m == n:
        return not proof and r1 == r2
    if m & (m - 1) == 0:
        proof = [r1, *proof]
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == r1 and sr == r2 and sn == 0


def _open_checkpoint(note: str, vkey: str) -> tuple[str, int, bytes, list[str]]:
    """C2SP signed-note + tlog-checkpoint: verify the log line; return the rest."""
    name, kid_hex, key_b64 = vkey.split("+", 2)
    key = base64.b64decode(key_b64)
    assert key[0] == 0x01
    kid = _sha(name.encode() + b"\n" + key)[:4]
    assert kid.hex() == kid_hex
    text, sigs = note.split("\n\n", 1)
    text += "\n"
    others = []
    verified = False
    for line in sigs.rstrip("\n").split("\n"):
        assert line.startswith("\u2014 ")
        signer, b64 = line[2:].split(" ")
        raw = base64.b64decode(b64)
        if signer == name and raw[:4] == kid:
            Ed25519PublicKey.from_public_bytes(key[1:]).verify(raw[4:], text.encode())
            verified = True
        else:
            others.append(line)
    assert verified
    origin, size, root = text.rstrip("\n").split("\n")[:3]
    return origin, int(size), base64.b64decode(root), others


def _tile_path(level: str | int, n: int, width: int = 256) -> str:
    groups = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        groups.append(f"x{n % 1000:03d}")
        n //= 1000
    p = f"tile/{level}/" + "/".join(reversed(groups))
    return p if width == 256 else p + f".p/{width}"


def _bundle(data: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = int.from_bytes(data[i : i + 2], "big")
        out.append(data[i + 2 : i + 2 + n])
        i += 2 + n
    return out


# --- tests -------------------------------------------------------------------------


def _append(vault: Vault, n: int) -> None:
    def unit(_s: Any, ledger: Any) -> None:
        ledger.append("KEY_ROTATED", note="api")

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda _: vault.sequencer.run(unit, savepoint=False), range(n)))


@pytest.fixture
def tsa(vault: Vault, tmp_path: Any) -> None:
    if vault.settings.profile == "production":
        from vault.pdf.pki import load_or_create_test_pki
        from vault.tsa import LocalTimeStamper

        p = load_or_create_test_pki(tmp_path / "tsa-pki", vault.clock.now())
        vault.extras["timestamper"] = LocalTimeStamper.from_test_pki(p, vault.clock)


def test_independent_client_reads_and_verifies_the_whole_log(
    client: TestClient[Any], vault: Vault, tsa: None
) -> None:
    assert client.get("/log/checkpoint").status_code == 404  # nothing signed yet
    _append(vault, 600)
    assert make_checkpoint(vault) is not None

    vkey = client.get("/log/public-key").text.strip()
    r = client.get("/log/checkpoint")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    origin, size, root, _ = _open_checkpoint(r.text, vkey)
    assert (origin, size) == (vault.settings.log_origin, 600)

    # Level-0 tiles: 2 full, one partial of 88; the level-1 partial of width 2.
    leaves: list[bytes] = []
    for n, width in ((0, 256), (1, 256), (2, 88)):
        t = client.get("/log/" + _tile_path(0, n, width))
        assert t.status_code == 200 and len(t.content) == 32 * width
        assert "immutable" in t.headers["cache-control"]
        hashes = [t.content[i : i + 32] for i in range(0, len(t.content), 32)]
        b = client.get("/log/" + _tile_path("entries", n, width))
        assert b.status_code == 200
        entries = _bundle(b.content)
        assert [_sha(b"\x00" + e) for e in entries] == hashes
        leaves += hashes
    assert _mth(leaves) == root
    up = client.get("/log/" + _tile_path(1, 0, 2)).content
    assert up == _mth(leaves[:256]) + _mth(leaves[256:512])
    # A narrower partial tile is a prefix; tiles beyond the tree do not exist.
    assert client.get("/log/" + _tile_path(0, 2, 10)).content == b"".join(leaves[512:522])
    assert client.get("/log/" + _tile_path(0, 2, 89)).status_code == 404
    assert client.get("/log/" + _tile_path(0, 3, 1)).status_code == 404
    assert client.get("/log/" + _tile_path("entries", 2, 89)).status_code == 404
    assert client.get("/log/tile/0/02").status_code == 400  # non-canonical path

    for index in (0, 255, 256, 599):
        p = client.get("/api/v1/log/inclusion-proof", params={"index": index, "size": size})
        assert p.status_code == 200
        proof = [base64.b64decode(h) for h in p.json()["proof"]]
        assert _verify_inclusion(index, size, leaves[index], proof, root)
    for old in (1, 256, 300, 600):
        c = client.get("/api/v1/log/consistency-proof", params={"old": old, "new": size})
        assert c.status_code == 200
        proof = [base64.b64decode(h) for h in c.json()["proof"]]
        assert _verify_consistency(old, size, proof, _mth(leaves[:old]), root)
    bad = client.get("/api/v1/log/inclusion-proof", params={"index": 1, "size": 601})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_input"

    ts = client.get(f"/log/checkpoint/{size}/timestamp")
    assert ts.status_code == 200 and ts.content[:1] == b"\x30"  # DER SEQUENCE
    assert client.get("/log/checkpoint/7/timestamp").status_code == 404


def test_witness_submits_a_cosignature_over_http(
    client: TestClient[Any], vault: Vault, tsa: None
) -> None:
    w = CosignatureSigner("cnda.example/witness", bytes([5]) * 32)
    vault.settings = dataclasses.replace(vault.settings, witness_keys=w.vkey)
    _append(vault, 3)
    make_checkpoint(vault)
    note = client.get("/log/checkpoint").text
    text = note.split("\n\n", 1)[0] + "\n"
    cosigned = note + w.sign(text, timestamp=int(vault.clock.now().timestamp()))
    r = client.post("/log/cosignature", content=cosigned, headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, r.text
    assert r.json() == {"size": 3, "accepted": [w.name], "duplicates": []}
    served = client.get("/log/checkpoint").text
    assert served == cosigned
    _, _, _, others = _open_checkpoint(served, client.get("/log/public-key").text.strip())
    assert others == [cosigned.rstrip("\n").rsplit("\n", 1)[1]]
    stranger = CosignatureSigner("stranger.example/w", bytes([6]) * 32)
    r = client.post("/log/cosignature", content=note + stranger.sign(text, timestamp=1772355600))
    assert r.status_code == 403 and r.json()["code"] == "unknown_witness"
    r = client.post("/log/cosignature", content=cosigned.replace("cnda", "cndb"))
    assert r.status_code in (403, 422)


def test_log_read_roles_setting_restricts_every_read_route(
    client: TestClient[Any], vault: Vault, staff: dict[str, str], tsa: None
) -> None:
    _append(vault, 3)
    make_checkpoint(vault)
    vault.settings = dataclasses.replace(vault.settings, log_read_roles="legal,court,admin")
    paths = [
        "/log/checkpoint",
        "/log/public-key",
        "/log/checkpoint/3/timestamp",
        "/log/tile/0/000.p/3",
        "/log/tile/entries/000.p/3",
        "/api/v1/log/inclusion-proof?index=0&size=3",
        "/api/v1/log/consistency-proof?old=1&new=3",
    ]
    for path in paths:
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers=auth(staff["agent"])).status_code == 403, path
        for role in ("legal", "court", "admin"):
            assert client.get(path, headers=auth(staff[role])).status_code == 200, (path, role)
    vault.settings = dataclasses.replace(vault.settings, log_read_roles="")
    for path in paths:
        assert client.get(path).status_code == 200, path


def test_read_routes_declare_the_configurable_roles_in_the_route_table() -> None:
    """The access-control matrix is generated from the route table: every /log read
    route must say that its roles come from a setting."""
    from api.routes.log import ROUTES, log_read_guard

    for handler in ROUTES:
        for path in handler.paths:
            if handler.http_methods == {"POST"}:
                assert path == "/log/cosignature" and not handler.opt.get("roles")
                continue
            assert handler.opt.get("roles_setting") == "log_read_roles", path
            assert log_read_guard in (handler.guards or []), path
