"""Log-key rotation: a new checkpoint signing key, old checkpoints still verifiable.

C2SP signed-note verifiers are identified by (name, key ID); every log key version
stays in the key ring, so ``verify_ledger`` (vault/ledger/verify.py,
``log_verifiers``) checks each stored checkpoint against the key that signed it.
The rotation is announced in the ledger itself (``KEY_ROTATED`` with ``key="log"``,
the new version and its verifier key), so a monitor that pinned the old key learns
the new one from an entry covered by a checkpoint signed with the old key:

1. checkpoint the current tree with the old key (everything so far is covered);
2. add the new seed to the key ring (persisted before use, KeyRing._commit);
3. append ``KEY_ROTATED`` and checkpoint again, now with the new key.

If the process dies between 2 and 3, the new key exists but is unannounced;
running the rotation again announces a further version (never a reused one).
"""

from __future__ import annotations

from dataclasses import dataclass

from vault.ledger.checkpoints import make_checkpoint, public_key
from vault.ledger.entries import EntryType
from vault.service import Vault


@dataclass(frozen=True)
class LogKeyRotation:
    old_version: int
    new_version: int
    vkey: str
    seq: int


def rotate_log_key(vault: Vault) -> LogKeyRotation:
    old = vault.keyring.log_signing_version
    make_checkpoint(vault)
    new = vault.keyring.rotate_log_signing_seed()
    vkey = public_key(vault)
    appended = vault.sequencer.run(
        lambda _s, ledger: ledger.append(EntryType.KEY_ROTATED, key="log", version=new, vkey=vkey)
    )
    make_checkpoint(vault)
    return LogKeyRotation(old, new, vkey, appended.seq)
