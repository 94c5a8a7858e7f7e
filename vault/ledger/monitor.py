"""An external monitor of a running log: ``ofpra-vault ledger monitor`` (DESIGN.md §6).

It shares nothing with the vault but the pure core and HTTP: it fetches
``/log/checkpoint``, verifies the log's signature, and checks that the new tree
extends the last tree it verified with an RFC 9162 §2.1.4 consistency proof from
``/api/v1/log/consistency-proof``. Only after every check passed does it save the
new checkpoint in its state file (atomically: write, fsync, rename), so one failed or
interrupted run never moves its trust anchor.

What it reports (``MonitorReport.status``):

* ``first``: no state yet; the checkpoint verified and is now the anchor;
* ``unchanged`` / ``grew``: all good;
* ``rollback``: the log shows fewer entries than a tree it verified before: history
  was truncated or rewritten (a log only grows);
* ``split_view``: same size but another root, or a consistency proof that fails: the
  log shows a history that does not extend the one it showed before;
* ``bad_signature``: the checkpoint is not signed by the log key;
* ``full_mismatch`` (``--full``): re-deriving the tree from the entry bundles and
  level-0 tiles (C2SP tlog-tiles) does not give the signed root, or an entry does not
  hash to its tile leaf;
* ``unreachable``: the log did not answer properly (nothing is concluded).

The log key is either pinned (``--log-key``, or already in the state file) or taken
on first use from ``/log/public-key`` (trust on first use, said so in the report and
stored, so every later run is pinned to it).
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from vault.errors import InvalidInput, ProofError, SignatureError, VaultError
from vault.ledger.checkpoint import Checkpoint, open_checkpoint
from vault.ledger.entries import parse_entry
from vault.ledger.merkle import CompactRange, verify_consistency
from vault.ledger.merkle import leaf_hash as merkle_leaf_hash
from vault.ledger.note import NoteVerifier, verifier_from_vkey
from vault.ledger.tiles import (
    ENTRIES,
    TILE_WIDTH,
    decode_entry_bundle,
    tile_path,
    tile_width,
)

__all__ = [
    "LogUnreachable",
    "Monitor",
    "MonitorReport",
    "StateFileError",
    "atomic_write_json",
    "fetch_consistency_proof",
    "read_state",
]

_STATE_VERSION = 1


class StateFileError(VaultError):
    code = "monitor_state_invalid"
    status = 400
    title = "The state file cannot be used"


class LogUnreachable(VaultError):
    code = "log_unreachable"
    status = 502
    title = "The log did not answer properly"


# --------------------------------------------------------------------------------------
# State files and HTTP, shared with the witness
# --------------------------------------------------------------------------------------


def atomic_write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file,
    never a torn one: temp file in the same directory, fsync, rename, fsync directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_state(path: Path) -> dict[str, Any] | None:
    """The state file's content, or None if there is none yet."""
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise StateFileError(f"state file {path} is not JSON: {e}") from None
    if not isinstance(data, dict) or data.get("version") != _STATE_VERSION:
        raise StateFileError(f"state file {path} is not a version {_STATE_VERSION} state")
    return data


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def unb64(s: str) -> bytes:
    return base64.b64decode(s, validate=True)


def http_get(client: httpx.Client, url: str) -> httpx.Response:
    try:
        r = client.get(url)
    except httpx.HTTPError as e:
        raise LogUnreachable(f"GET {url}: {e}") from None
    if r.status_code != 200:
        raise LogUnreachable(f"GET {url}: HTTP {r.status_code}")
    return r


def fetch_consistency_proof(client: httpx.Client, base: str, old: int, new: int) -> list[bytes]:
    """The proof hashes from ``/api/v1/log/consistency-proof`` (size and roots in the
    answer are ignored: they come from verified checkpoints, never from the proof)."""
    r = http_get(client, f"{base}/api/v1/log/consistency-proof?old={old}&new={new}")
    try:
        body = r.json()
        return [unb64(h) for h in body["proof"]]
    except (ValueError, KeyError, TypeError) as e:
        raise LogUnreachable(f"consistency proof {old}->{new} is malformed: {e}") from None


def fetch_checkpoint_note(client: httpx.Client, base: str) -> str:
    r = http_get(client, f"{base}/log/checkpoint")
    try:
        return r.content.decode("utf-8")
    except UnicodeDecodeError:
        raise LogUnreachable("the checkpoint is not UTF-8") from None


# --------------------------------------------------------------------------------------
# The monitor
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonitorReport:
    status: str
    message: str
    url: str
    key_source: str
    old_size: int | None = None
    old_root: str | None = None
    new_size: int | None = None
    new_root: str | None = None
    entries_rederived: int | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("first", "unchanged", "grew")

    @property
    def exit_code(self) -> int:
        if self.ok:
            return 0
        return 3 if self.status == "unreachable" else 1

    def summary(self) -> str:
        head = "OK" if self.ok else "ALERT" if self.exit_code == 1 else "ERROR"
        lines = [f"{head} [{self.status}] {self.message}", f"  log: {self.url}"]
        lines.append(f"  log key: {self.key_source}")
        if self.old_size is not None:
            lines.append(f"  previously verified: size {self.old_size} root {self.old_root}")
        if self.new_size is not None:
            lines.append(f"  now served:          size {self.new_size} root {self.new_root}")
        if self.entries_rederived is not None:
            lines.append(f"  re-derived from tiles and entries: {self.entries_rederived} entries")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


class Monitor:
    """Follows one log; ``check()`` is one round (fetch, verify, maybe save)."""

    def __init__(
        self,
        url: str,
        state_path: str | Path,
        log_vkey: str | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.state_path = Path(state_path)
        self.log_vkey = log_vkey.strip() if log_vkey else None
        self._client = http_client
        if self.log_vkey:
            try:
                verifier_from_vkey(self.log_vkey)
            except SignatureError as e:
                raise InvalidInput(f"--log-key is not a valid verifier key: {e}") from None

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=30.0, follow_redirects=False)
        return self._client

    def _key(self, state: dict[str, Any] | None) -> tuple[str, str]:
        """(vkey, how we got it). A key that differs from the pinned one is an error,
        not something to accept silently: the operator starts a new state file."""
        if state is not None:
            pinned = str(state["log_vkey"])
            if self.log_vkey and self.log_vkey != pinned:
                raise StateFileError(
                    "--log-key differs from the key pinned in the state file; "
                    "a key change needs a new state file"
                )
            return pinned, f"pinned in state file ({state.get('key_source', 'pinned')})"
        if self.log_vkey:
            return self.log_vkey, "pinned (--log-key)"
        r = http_get(self._http(), f"{self.url}/log/public-key")
        vkey = r.text.strip()
        return vkey, f"trust on first use from {self.url}/log/public-key"

    def check(self, full: bool = False) -> MonitorReport:
        state = read_state(self.state_path)
        try:
            vkey, source = self._key(state)
        except LogUnreachable as e:
            return MonitorReport("unreachable", str(e), self.url, "none")
        old_size = None if state is None else int(state["size"])
        old_root = None if state is None else str(state["root_hash"])

        def report(status: str, msg: str, cp: Checkpoint | None = None, **kw: Any) -> MonitorReport:
            return MonitorReport(
                status,
                msg,
                self.url,
                source,
                old_size,
                old_root,
                None if cp is None else cp.size,
                None if cp is None else b64(cp.root_hash),
                **kw,
            )

        try:
            verifier: NoteVerifier = verifier_from_vkey(vkey)
        except SignatureError as e:
            return report("bad_signature", f"the log key {vkey!r} is not a valid vkey: {e}")
        client = self._http()
        try:
            note = fetch_checkpoint_note(client, self.url)
        except LogUnreachable as e:
            return report("unreachable", str(e))
        origin = str(state["origin"]) if state is not None else None
        try:
            if origin is None:
                split = note.rfind("\n\n")
                origin = Checkpoint.parse(note[: split + 1]).origin if split > 0 else ""
            cp, _ = open_checkpoint(note, [verifier], origin=origin)
        except SignatureError as e:
            return report(
                "bad_signature", f"the served checkpoint does not verify with the log key: {e}"
            )

        status = "first"
        if state is not None:
            assert old_size is not None and old_root is not None
            root1 = unb64(old_root)
            if cp.size < old_size:
                return report(
                    "rollback",
                    f"the log now has {cp.size} entries, but a checkpoint of {old_size} "
                    "entries was verified before: its history was truncated or rewritten",
                    cp,
                )
            if cp.size == old_size:
                if cp.root_hash != root1:
                    return report(
                        "split_view",
                        f"two different signed trees of the same size {cp.size}: the log "
                        "shows a different history than before (split view or rewrite)",
                        cp,
                    )
                status = "unchanged"
            else:
                status = "grew"
                if old_size > 0:
                    try:
                        proof = fetch_consistency_proof(client, self.url, old_size, cp.size)
                    except LogUnreachable as e:
                        return report(
                            "split_view",
                            f"the log gives no consistency proof from {old_size} to "
                            f"{cp.size} ({e}): it cannot show the new tree extends the old one",
                            cp,
                        )
                    try:
                        verify_consistency(old_size, cp.size, proof, root1, cp.root_hash)
                    except ProofError as e:
                        return report(
                            "split_view",
                            f"the tree of {cp.size} entries does not extend the tree of "
                            f"{old_size} verified before ({e}): history was rewritten",
                            cp,
                        )
        rederived: int | None = None
        if full:
            try:
                rederived = self._full(client, cp)
            except LogUnreachable as e:
                return report("unreachable", str(e), cp)
            except _Mismatch as e:
                return report("full_mismatch", str(e), cp)
        atomic_write_json(
            self.state_path,
            {
                "version": _STATE_VERSION,
                "url": self.url,
                "origin": cp.origin,
                "log_vkey": vkey,
                "key_source": "tofu" if source.startswith("trust") else "pinned",
                "size": cp.size,
                "root_hash": b64(cp.root_hash),
                "note": note,
                "verified_at": datetime.now(UTC).isoformat(),
            },
        )
        msg = {
            "first": f"first checkpoint verified (size {cp.size}); saved as the anchor",
            "unchanged": f"no new entries; size {cp.size}, same root",
            "grew": f"log grew from {old_size} to {cp.size}; consistency proof verified",
        }[status]
        return report(status, msg, cp, entries_rederived=rederived)

    def _full(self, client: httpx.Client, cp: Checkpoint) -> int:
        """Re-derive the tree of ``cp`` from level-0 tiles and entry bundles."""
        cr = CompactRange()
        n_tiles = (cp.size + TILE_WIDTH - 1) // TILE_WIDTH
        for idx in range(n_tiles):
            width = tile_width(0, idx, cp.size)
            tile = http_get(client, f"{self.url}/log/{tile_path(0, idx, width)}").content
            bundle = http_get(client, f"{self.url}/log/{tile_path(ENTRIES, idx, width)}").content
            if len(tile) != 32 * width:
                raise _Mismatch(f"tile 0/{idx} has {len(tile)} bytes, expected {32 * width}")
            try:
                entries = decode_entry_bundle(bundle, width)
            except InvalidInput as e:
                raise _Mismatch(f"entry bundle {idx} is malformed: {e}") from None
            for j, entry in enumerate(entries):
                i = idx * TILE_WIDTH + j
                lh = merkle_leaf_hash(entry)
                if lh != tile[32 * j : 32 * (j + 1)]:
                    raise _Mismatch(
                        f"entry {i} does not hash to leaf {j} of tile 0/{idx}: "
                        "the entry or the tree was rewritten"
                    )
                try:
                    seq = parse_entry(entry).get("seq")
                except ValueError:
                    raise _Mismatch(f"entry {i} is not canonical JSON") from None
                if seq != i:
                    raise _Mismatch(f"entry {i} says it is entry {seq!r}")
                cr.append(lh)
        if cr.root() != cp.root_hash:
            raise _Mismatch(
                f"the root re-derived from {cp.size} entries differs from the signed root"
            )
        return cp.size


class _Mismatch(Exception):
    pass
