"""Signed checkpoints, their RFC 3161 time stamps, and witness cosignatures.

A checkpoint is a C2SP signed note (https://c2sp.org/tlog-checkpoint) whose origin
line and key name are ``settings.log_origin``, signed with the key ring's current
Ed25519 log key (DESIGN.md §6). Each checkpoint also gets an RFC 3161 token over the
**exact bytes of the signed note** as stored in ``ledger_checkpoints.note`` (text,
blank line, log signature line), so ``openssl ts -verify -data note.txt`` checks it.

Cadence: the ``ledger-checkpoint`` background task runs every
``checkpoint_interval_seconds`` and signs only if the log grew; after a commit that
brings ``checkpoint_every_entries`` or more unsigned entries, a checkpoint is also
made at once in a helper thread. ``ofpra-vault ledger checkpoint`` makes one on
demand, and :func:`ensure_checkpoint_covering` makes one for a proof export.

Concurrency: the size and root are read without any lock (tiles for a size commit
with its entries, and stay valid for every later size); signing and the TSA call
run without any lock; only the final "is it still the newest? then insert" step
runs under a lock (``BEGIN IMMEDIATE`` on SQLite, a dedicated advisory lock on
PostgreSQL), so checkpoints are inserted in increasing size order by any number of
processes, and a process that lost the race simply returns None.

Witnesses (https://c2sp.org/tlog-cosignature) POST the note they cosigned; the
cosignature lines of configured witnesses (``settings.witness_keys``) are verified
and stored, and served with the checkpoint by ``GET /log/checkpoint``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text

from vault.db.ledger_models import LedgerCheckpoint, LedgerCosignature
from vault.errors import Forbidden, InvalidInput, NotFound, SignatureError
from vault.ledger import proofs
from vault.ledger.checkpoint import Checkpoint, MalformedCheckpointError
from vault.ledger.note import (
    CosignatureVerifier,
    Ed25519Verifier,
    MalformedNoteError,
    NoteVerifier,
    Signer,
    open_note,
    parse_signature_line,
    sign_note,
    verifier_from_vkey,
)
from vault.ledger.store import current_size, ledger_store

log = logging.getLogger(__name__)

__all__ = [
    "CheckpointNotFound",
    "InvalidCosignature",
    "UnknownWitness",
    "add_cosignature",
    "checkpoint_at",
    "checkpoint_at_or_after",
    "cosignature_lines",
    "ensure_checkpoint_covering",
    "latest_checkpoint",
    "log_signer",
    "log_verifier",
    "make_checkpoint",
    "public_key",
    "served_note",
    "witness_verifiers",
]

#: PostgreSQL advisory lock that orders checkpoint inserts (distinct from the
#: sequencer's, so signing never blocks appends).
CHECKPOINT_LOCK_KEY = 0x0F_9A_7A_12

#: A cosignature dated further ahead than this is refused (clock skew allowance).
MAX_COSIGNATURE_SKEW = timedelta(minutes=10)


class CheckpointNotFound(NotFound):
    code = "checkpoint_not_found"
    title = "No such checkpoint"


class UnknownWitness(Forbidden):
    code = "unknown_witness"
    title = "The cosignature is not from a configured witness"


class InvalidCosignature(SignatureError):
    code = "invalid_cosignature"
    title = "The cosignature does not verify"


# --------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------


def log_signer(vault: Any, version: int | None = None) -> Signer:
    ring = vault.keyring
    seed = ring.log_signing_seed if version is None else ring.log_signing_seed_for(version)
    return Signer(vault.settings.log_origin, seed)


def log_verifier(vault: Any, version: int | None = None) -> Ed25519Verifier:
    return log_signer(vault, version).verifier()


def public_key(vault: Any) -> str:
    """The log's verifier key string ``<origin>+<hex key ID>+<base64 key>``."""
    return log_signer(vault).vkey


def witness_verifiers(vault: Any) -> list[CosignatureVerifier]:
    """The configured witnesses; a configured key that is not a cosigner key is an error."""
    out: list[CosignatureVerifier] = []
    for vkey in (k.strip() for k in vault.settings.witness_keys.split(",")):
        if not vkey:
            continue
        v = verifier_from_vkey(vkey)
        if not isinstance(v, CosignatureVerifier):
            raise MalformedNoteError(f"witness key {v.name} is not a cosignature/v1 key")
        out.append(v)
    return out


# --------------------------------------------------------------------------------------
# Making checkpoints
# --------------------------------------------------------------------------------------


def _latest_size(session: Any) -> int | None:
    top = session.execute(select(func.max(LedgerCheckpoint.size))).scalar()
    return None if top is None else int(top)


def make_checkpoint(vault: Any) -> LedgerCheckpoint | None:
    """Sign, time-stamp and store a checkpoint of the current tree if it grew.

    Returns the new row, or None when the log did not grow (or another process
    stored a checkpoint at least as large meanwhile)."""
    with vault.read() as s:
        size = current_size(s)
        latest = _latest_size(s)
    if size == 0 or (latest is not None and size <= latest):
        return None
    root = proofs.root_at(vault, size, known_size=size)
    version = vault.keyring.log_signing_version
    body = Checkpoint.for_log(vault.settings.log_origin, size, root).to_text()
    note = sign_note(body, [log_signer(vault, version)])
    token = vault.timestamper().timestamp(note.encode("utf-8"))
    with vault.write() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHECKPOINT_LOCK_KEY})
        latest = _latest_size(s)
        if latest is not None and size <= latest:
            return None
        row = LedgerCheckpoint(
            size=size,
            root_hash=root,
            note=note,
            timestamp_token=token,
            key_version=version,
            created_at=vault.clock.now(),
        )
        s.add(row)
    _state(vault).signed_size = max(_state(vault).signed_size, size)
    log.info("ledger checkpoint at size %d", size)
    return row


def latest_checkpoint(vault: Any) -> LedgerCheckpoint | None:
    with vault.read() as s:
        row: LedgerCheckpoint | None = s.execute(
            select(LedgerCheckpoint).order_by(LedgerCheckpoint.size.desc()).limit(1)
        ).scalar()
        return row


def checkpoint_at(vault: Any, size: int) -> LedgerCheckpoint:
    with vault.read() as s:
        row: LedgerCheckpoint | None = s.get(LedgerCheckpoint, size)
    if row is None:
        raise CheckpointNotFound(f"no checkpoint at size {size}")
    return row


def checkpoint_at_or_after(vault: Any, size: int) -> LedgerCheckpoint | None:
    """The smallest stored checkpoint whose tree has at least ``size`` entries."""
    with vault.read() as s:
        row: LedgerCheckpoint | None = s.execute(
            select(LedgerCheckpoint)
            .where(LedgerCheckpoint.size >= size)
            .order_by(LedgerCheckpoint.size)
            .limit(1)
        ).scalar()
        return row


def ensure_checkpoint_covering(vault: Any, seq: int) -> LedgerCheckpoint:
    """A checkpoint that includes entry ``seq``, made now if none does yet."""
    cp = checkpoint_at_or_after(vault, seq + 1)
    if cp is None:
        cp = make_checkpoint(vault) or checkpoint_at_or_after(vault, seq + 1)
    if cp is None:
        raise NotFound(f"entry {seq} is not in the log")
    return cp


# --------------------------------------------------------------------------------------
# Cosignatures
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CosignatureResult:
    size: int
    accepted: list[str]  # witness names whose cosignature was stored now
    duplicates: list[str]  # already stored for this checkpoint


def add_cosignature(vault: Any, note: str) -> CosignatureResult:
    """Verify and store the witness cosignatures on one of our checkpoints.

    ``note`` is the checkpoint text, a blank line, then signature lines: our log
    signature (optional) and one or more ``cosignature/v1`` lines. Every line must
    be from our log key or a configured witness (else :class:`UnknownWitness`,
    403), and every one must verify (else :class:`InvalidCosignature`, 422).
    Nothing is stored unless all pass."""
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise InvalidInput("a cosigned checkpoint note is text, a blank line, signatures")
    body, sig_block = note[: split + 1], note[split + 2 :]
    try:
        cp = Checkpoint.parse(body)
    except MalformedCheckpointError as exc:
        raise InvalidInput(f"not a checkpoint: {exc.detail}") from None
    if cp.origin != vault.settings.log_origin:
        raise CheckpointNotFound(f"not a checkpoint of this log ({cp.origin!r})")
    with vault.read() as s:
        stored = s.get(LedgerCheckpoint, cp.size)
    if stored is None or not stored.note.startswith(body + "\n"):
        raise CheckpointNotFound(f"the log never signed this checkpoint of size {cp.size}")
    ours = log_verifier(vault, stored.key_version)
    witnesses = witness_verifiers(vault)
    known: dict[tuple[str, int], NoteVerifier] = {(ours.name, ours.key_id): ours}
    for w in witnesses:
        known[(w.name, w.key_id)] = w
    for line in sig_block[:-1].split("\n"):
        try:
            sig = parse_signature_line(line)
        except MalformedNoteError as exc:
            raise InvalidInput(exc.detail) from None
        if (sig.name, sig.key_id) not in known:
            raise UnknownWitness(f"{sig.name}+{sig.key_id:08x} is not a configured witness")
    try:
        opened = open_note(note, known.values())
    except SignatureError as exc:
        raise InvalidCosignature(exc.detail) from None
    now = vault.clock.now()
    lines = [
        (sig, datetime.fromtimestamp(sig.cosignature_timestamp, UTC))
        for sig in opened.verified
        if (sig.name, sig.key_id) != (ours.name, ours.key_id)
    ]
    if not lines:
        raise InvalidInput("the note carries no witness cosignature")
    for sig, at in lines:
        if at > now + MAX_COSIGNATURE_SKEW:
            raise InvalidCosignature(f"cosignature of {sig.name} is dated in the future")
    accepted: list[str] = []
    duplicates: list[str] = []
    with vault.write() as s:
        have = {
            (str(name), str(kid))
            for name, kid in s.execute(
                select(LedgerCosignature.witness_name, LedgerCosignature.key_id).where(
                    LedgerCosignature.checkpoint_size == cp.size
                )
            )
        }
        for sig, at in lines:
            kid = f"{sig.key_id:08x}"
            if (sig.name, kid) in have:
                duplicates.append(sig.name)
                continue
            s.add(
                LedgerCosignature(
                    checkpoint_size=cp.size,
                    witness_name=sig.name,
                    key_id=kid,
                    signature_line=sig.line,
                    cosigned_at=at,
                    received_at=now,
                )
            )
            have.add((sig.name, kid))
            accepted.append(sig.name)
    return CosignatureResult(cp.size, accepted, duplicates)


def cosignature_lines(vault: Any, size: int) -> list[str]:
    """Stored cosignature lines for the checkpoint of ``size``, one per witness key."""
    with vault.read() as s:
        rows = s.execute(
            select(LedgerCosignature.signature_line)
            .where(LedgerCosignature.checkpoint_size == size)
            .order_by(LedgerCosignature.id)
        ).scalars()
        return list(rows)


def served_note(vault: Any, cp: LedgerCheckpoint) -> str:
    """The checkpoint note with its stored cosignature lines appended (C2SP signed
    note: signature lines in any order)."""
    return cp.note + "".join(cosignature_lines(vault, cp.size))


# --------------------------------------------------------------------------------------
# Cadence
# --------------------------------------------------------------------------------------


class _CheckpointState:
    def __init__(self) -> None:
        self.signed_size = 0
        self.running = threading.Lock()


def _state(vault: Any) -> _CheckpointState:
    st: _CheckpointState = vault.extras.setdefault("ledger_checkpoint_state", _CheckpointState())
    return st


def _periodic(vault: Any) -> None:
    st = _state(vault)
    if st.running.acquire(blocking=False):
        try:
            make_checkpoint(vault)
        finally:
            st.running.release()


def install(vault: Any) -> None:
    """Register the periodic task and the every-N-entries trigger."""
    from vault.service import BackgroundTask

    st = _state(vault)
    vault.background.append(
        BackgroundTask(
            "ledger-checkpoint", float(vault.settings.checkpoint_interval_seconds), _periodic
        )
    )
    every = int(vault.settings.checkpoint_every_entries)

    def on_commit(size: int) -> None:
        if not vault.settings.background_tasks or every <= 0:
            return
        if st.signed_size == 0:
            st.signed_size = size  # first commit of this process: count from here
            return
        if size - st.signed_size >= every and not st.running.locked():
            threading.Thread(
                target=_periodic, args=(vault,), name="ledger-checkpoint", daemon=True
            ).start()

    ledger_store(vault).writer.after_commit.append(on_commit)
