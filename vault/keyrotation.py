"""KEK rotation: add a key-encryption key, rewrap applicant keys, never touch content.

Rotation is resumable: each account is rewrapped in its own short transaction, and
accounts already on the current KEK are skipped, so a crash mid-way is finished by
running it again. An old KEK may be retired only once no wrapped key uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from vault.accounts import CONNECTION_KEY_PURPOSE
from vault.alerts.outbox import count_sealed_under, reseal_outbox
from vault.crypto.keys import WrappedKey, reseal_secret, rewrap, sealed_secret_kek_version
from vault.db.models import Account
from vault.ledger.entries import EntryType
from vault.service import Vault


@dataclass(frozen=True)
class RotationReport:
    new_version: int
    rewrapped: int
    remaining_on_old: int

    def summary(self) -> str:
        return (
            f"key-encryption key version {self.new_version} is current; "
            f"{self.rewrapped} applicant keys rewrapped, {self.remaining_on_old} left on older keys"
        )


def rewrap_all(vault: Vault, batch: int = 200) -> int:
    current = vault.keyring.current_kek_version
    done = 0
    while True:
        with vault.write() as s:
            rows = list(
                s.scalars(
                    select(Account)
                    .where(Account.kek_version != current, Account.wrapped_key.is_not(None))
                    .limit(batch)
                )
            )
            for acc in rows:
                w = rewrap(
                    vault.keyring, WrappedKey(acc.kek_version, acc.wrapped_key or b""), acc.id
                )
                acc.wrapped_key, acc.kek_version = w.blob, w.kek_version
                # The sealed connection key moves to the new KEK in the same transaction.
                if sealed_secret_kek_version(acc.connection_key_sealed) != current:
                    acc.connection_key_sealed = reseal_secret(
                        vault.keyring, acc.connection_key_sealed, CONNECTION_KEY_PURPOSE, acc.id
                    )
            done += len(rows)
        if len(rows) < batch:
            return done


def rotate_kek(vault: Vault) -> RotationReport:
    vault.keyring.rotate()
    new_version = vault.keyring.current_kek_version
    n = rewrap_all(vault)
    # Pending alerts keep their recipient and context sealed under the KEK too.
    reseal_outbox(vault)
    with vault.read() as s:
        left = s.scalar(
            select(func.count()).select_from(Account).where(Account.kek_version != new_version)
        )
    left = int(left or 0) + sum(
        count_sealed_under(vault, v) for v in vault.keyring.kek_versions if v != new_version
    )
    vault.sequencer.run(
        lambda _s, ledger: ledger.append(EntryType.KEY_ROTATED, key="kek", version=new_version)
    )
    return RotationReport(new_version, n, left)
