"""Models of the Merkle log's stored tree and its checkpoints (DESIGN.md §6, §9).

* ``ledger_tiles``: C2SP tlog-tiles, keyed by (level, index, width). Full tiles
  (width 256) are written once; a partial tile is written when a batch ends inside
  it. Derived data: ``ofpra-vault ledger rebuild`` recomputes it from the entries.
* ``ledger_checkpoints``: every signed checkpoint note with its RFC 3161 token,
  append-only (triggers), so consistency between any two can be proved later.
* ``ledger_cosignatures``: witness cosignature lines accepted for a checkpoint,
  append-only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vault.db.models import Base, BigId, UTCDateTime


class LedgerTile(Base):
    __tablename__ = "ledger_tiles"

    level: Mapped[int] = mapped_column(Integer, primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    width: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1..256
    data: Mapped[bytes] = mapped_column(LargeBinary)


class LedgerCheckpoint(Base):
    __tablename__ = "ledger_checkpoints"

    size: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)  # the signed note, log signature only
    timestamp_token: Mapped[bytes | None] = mapped_column(LargeBinary)  # RFC 3161 over note
    key_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerCosignature(Base):
    __tablename__ = "ledger_cosignatures"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    checkpoint_size: Mapped[int] = mapped_column(
        ForeignKey("ledger_checkpoints.size"), index=True
    )
    witness_name: Mapped[str] = mapped_column(String(255))
    key_id: Mapped[str] = mapped_column(String(8))
    signature_line: Mapped[str] = mapped_column(Text)
    cosigned_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the cosignature's timestamp
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
