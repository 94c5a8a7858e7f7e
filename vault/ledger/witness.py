"""The independent witness: ``ofpra-vault witness run`` (C2SP tlog-witness semantics).

An outside body (the CNDA, a rights group) runs this on its own machine with its own
Ed25519 cosigner key (C2SP tlog-cosignature, type 0x04). Each :meth:`Witness.step`:

1. fetches ``/log/checkpoint`` and verifies the log signature with the log key pinned
   in the witness's state (or given once with ``--log-key``);
2. applies the ``add-checkpoint`` checks of https://c2sp.org/tlog-witness against the
   last checkpoint it cosigned: refuses a smaller tree (**rollback**), a tree of the
   same size with another root (**fork**), and a larger tree whose RFC 9162 §2.1.4
   consistency proof fails (**inconsistent**); "old 0" needs no proof;
3. cosigns (``cosignature/v1``, timestamp = now) and **persists its new state
   atomically before submitting**, as tlog-witness requires, so a crash can never
   make it cosign two different trees of one size;
4. POSTs the cosigned note to ``/log/cosignature``.

A refusal leaves the state file untouched; the offending note is kept as evidence
next to it (``<state>.evidence/``), which tlog-witness allows ("MAY log requests
that fail the checks").

What a cosignature means (tlog-cosignature): as of its timestamp, this is the largest
tree of this origin the witness has seen, and it is consistent with every tree it
cosigned before. That is how the office shows it cannot present two histories.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from vault.errors import InvalidInput, ProofError, SignatureError, VaultError
from vault.ledger.checkpoint import Checkpoint, open_checkpoint
from vault.ledger.merkle import verify_consistency
from vault.ledger.monitor import (
    LogUnreachable,
    StateFileError,
    atomic_write_json,
    b64,
    fetch_checkpoint_note,
    fetch_consistency_proof,
    read_state,
    unb64,
)
from vault.ledger.note import (
    CosignatureSigner,
    MalformedNoteError,
    generate_key,
    verifier_from_vkey,
)

__all__ = [
    "Witness",
    "WitnessKeyError",
    "WitnessReport",
    "keygen",
    "load_witness_key",
]

_STATE_VERSION = 1


class WitnessKeyError(VaultError):
    code = "witness_key_invalid"
    status = 400
    title = "The witness key file cannot be used"


def load_witness_key(path: str | Path) -> CosignatureSigner:
    """A ``PRIVATE+KEY+<name>+<id>+base64(0x04 || seed)`` file (golang note format)."""
    try:
        text = Path(path).read_text(encoding="ascii").strip()
        signer = CosignatureSigner.from_skey(text)
    except (OSError, UnicodeDecodeError, MalformedNoteError) as e:
        raise WitnessKeyError(f"cannot load the witness key {path}: {e}") from None
    assert isinstance(signer, CosignatureSigner)  # from_skey builds cls
    return signer


def keygen(name: str, out: str | Path) -> str:
    """Write a new cosigner key to ``out`` (0600, never overwritten); return its vkey."""
    try:
        skey, vkey = generate_key(name, cosigner=True)
    except ValueError as e:
        raise InvalidInput(f"invalid witness name {name!r}: {e}") from None
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise WitnessKeyError(f"{path} exists; refusing to overwrite a key") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(skey + "\n")
        f.flush()
        os.fsync(f.fileno())
    return vkey


@dataclass(frozen=True)
class WitnessReport:
    """``status``: cosigned, up_to_date, resubmitted (ok); rollback, fork, inconsistent,
    bad_signature (refused, state unchanged); unreachable, submit_failed (errors)."""

    status: str
    message: str
    size: int | None = None
    root_hash: str | None = None
    previous_size: int | None = None
    cosignature: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("cosigned", "up_to_date", "resubmitted")

    @property
    def refused(self) -> bool:
        return self.status in ("rollback", "fork", "inconsistent", "bad_signature")

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1 if self.refused else 3

    def summary(self) -> str:
        head = "OK" if self.ok else "REFUSED" if self.refused else "ERROR"
        return f"{head} [{self.status}] {self.message}"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        d["refused"] = self.refused
        return d


class Witness:
    def __init__(
        self,
        log_url: str,
        signer: CosignatureSigner,
        state_path: str | Path,
        log_vkey: str | None = None,
        http_client: httpx.Client | None = None,
        now: Callable[[], int] | None = None,
    ) -> None:
        self.url = log_url.rstrip("/")
        self.signer = signer
        self.state_path = Path(state_path)
        self.log_vkey = log_vkey.strip() if log_vkey else None
        self._client = http_client
        self._now = now or (lambda: int(time.time()))

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=30.0, follow_redirects=False)
        return self._client

    def _evidence(self, kind: str, note: str) -> None:
        d = self.state_path.parent / (self.state_path.name + ".evidence")
        d.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        (d / f"{stamp}-{kind}.note").write_text(note, encoding="utf-8")

    def step(self) -> WitnessReport:
        state = read_state(self.state_path)
        if state is not None:
            vkey = str(state["log_vkey"])
            if self.log_vkey and self.log_vkey != vkey:
                raise StateFileError(
                    "--log-key differs from the log key pinned in the witness state"
                )
        elif self.log_vkey:
            vkey = self.log_vkey
        else:
            raise StateFileError("no state yet: pin the log key once with --log-key")
        try:
            verifier = verifier_from_vkey(vkey)
        except SignatureError as e:
            raise StateFileError(f"the pinned log key is not a valid vkey: {e}") from None
        client = self._http()
        try:
            note = fetch_checkpoint_note(client, self.url)
        except LogUnreachable as e:
            return WitnessReport("unreachable", str(e))
        origin = str(state["origin"]) if state is not None else verifier.name
        try:
            cp, opened = open_checkpoint(note, [verifier], origin=origin)
        except SignatureError as e:
            self._evidence("bad_signature", note)
            return WitnessReport(
                "bad_signature", f"the checkpoint is not validly signed by the log key: {e}"
            )
        old = 0 if state is None else int(state["size"])
        root = b64(cp.root_hash)

        def refuse(kind: str, msg: str) -> WitnessReport:
            self._evidence(kind, note)
            return WitnessReport(kind, msg, cp.size, root, old)

        if state is not None:
            old_root = unb64(str(state["root_hash"]))
            if cp.size < old:
                return refuse(
                    "rollback",
                    f"refusing to cosign: the log shows {cp.size} entries but this witness "
                    f"already cosigned a tree of {old} entries (rollback)",
                )
            if cp.size == old:
                if cp.root_hash != old_root:
                    return refuse(
                        "fork",
                        f"refusing to cosign: a second tree of size {cp.size} with another "
                        "root (the log is presenting two histories)",
                    )
                if state.get("submitted"):
                    return WitnessReport(
                        "up_to_date", f"already cosigned size {cp.size}", cp.size, root, old
                    )
                return self._submit(state, cp, old, resubmit=True)
            if old > 0:
                try:
                    proof = fetch_consistency_proof(client, self.url, old, cp.size)
                    verify_consistency(old, cp.size, proof, old_root, cp.root_hash)
                except (ProofError, LogUnreachable) as e:
                    return refuse(
                        "inconsistent",
                        f"refusing to cosign: no valid consistency proof from {old} to "
                        f"{cp.size} ({e})",
                    )
        line = self.signer.sign(cp.to_text(), timestamp=self._now())
        # What is submitted: the checkpoint, the log's own signature, our cosignature
        # (other witnesses' lines are theirs to submit).
        submission = cp.to_text() + "\n" + opened.verified[0].line + line
        new_state = {
            "version": _STATE_VERSION,
            "log_url": self.url,
            "origin": cp.origin,
            "log_vkey": vkey,
            "witness_vkey": self.signer.vkey,
            "size": cp.size,
            "root_hash": root,
            "note": note,
            "cosignature": line,
            "submission": submission,
            "submitted": False,
            "cosigned_at": datetime.now(UTC).isoformat(),
        }
        # tlog-witness: persist before the cosignature leaves this process.
        atomic_write_json(self.state_path, new_state)
        return self._submit(new_state, cp, old, resubmit=False)

    def _submit(
        self, state: dict[str, Any], cp: Checkpoint, old: int, *, resubmit: bool
    ) -> WitnessReport:
        line = str(state["cosignature"])
        body = str(state["submission"])
        root = b64(cp.root_hash)
        try:
            r = self._http().post(
                f"{self.url}/log/cosignature",
                content=body.encode("utf-8"),
                headers={"Content-Type": "text/plain; charset=utf-8"},
            )
        except httpx.HTTPError as e:
            return WitnessReport(
                "submit_failed", f"POST /log/cosignature: {e}", cp.size, root, old, line
            )
        if r.status_code != 200:
            return WitnessReport(
                "submit_failed",
                f"the log refused the cosignature: HTTP {r.status_code} {r.text[:300]}",
                cp.size,
                root,
                old,
                line,
            )
        atomic_write_json(self.state_path, {**state, "submitted": True})
        status = "resubmitted" if resubmit else "cosigned"
        what = f"cosigned size {cp.size}" + (f" (consistent with {old})" if old else "")
        return WitnessReport(status, what, cp.size, root, old, line)
