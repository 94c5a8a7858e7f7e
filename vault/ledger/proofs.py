"""RFC 9162 proofs and roots from the stored tiles, in O(log n) tile reads.

Every function reads through the process-wide :class:`~vault.ledger.tiles.TileCache`
(tiles are immutable under their key), and opens a database connection only on a
cache miss. ``size`` must not exceed the committed tree size: tiles for a size exist
exactly when its entries are committed (same transaction).
"""

from __future__ import annotations

from typing import Any

from vault.errors import InvalidInput
from vault.ledger import merkle
from vault.ledger.store import DbTileSource, current_size, ledger_store
from vault.ledger.tiles import TiledNodeReader

__all__ = ["consistency_proof", "inclusion_proof", "root_at", "tree_size"]


def tree_size(vault: Any) -> int:
    """The committed tree size."""
    with vault.read_engine.connect() as conn:
        return current_size(conn)


def _check_size(vault: Any, size: int, known_size: int | None) -> None:
    if known_size is None:
        # This process's last committed size is a lower bound of the tree size: most
        # proofs need no query at all.
        cached = ledger_store(vault).writer.size
        if cached is not None and size <= cached:
            return
    limit = known_size if known_size is not None else tree_size(vault)
    if size > limit:
        raise InvalidInput(f"the log has {limit} entries; size {size} is beyond it")


def inclusion_proof(
    vault: Any, index: int, size: int, *, known_size: int | None = None
) -> list[bytes]:
    """Audit path of entry ``index`` in the tree of ``size`` entries (RFC 9162 §2.1.3)."""
    if not 0 <= index < size:
        raise InvalidInput(f"index {index} is not in a tree of size {size}")
    _check_size(vault, size, known_size)
    with DbTileSource.open(vault.read_engine) as src:
        reader = TiledNodeReader(src, size, ledger_store(vault).cache)
        return merkle.inclusion_proof(reader, index, size)


def consistency_proof(
    vault: Any, old: int, new: int, *, known_size: int | None = None
) -> list[bytes]:
    """Consistency proof from tree size ``old`` to ``new`` (RFC 9162 §2.1.4)."""
    if not 0 < old <= new:
        raise InvalidInput(f"no consistency proof from size {old} to size {new}")
    _check_size(vault, new, known_size)
    with DbTileSource.open(vault.read_engine) as src:
        reader = TiledNodeReader(src, new, ledger_store(vault).cache)
        return merkle.consistency_proof(reader, old, new)


def root_at(vault: Any, size: int, *, known_size: int | None = None) -> bytes:
    """MTH of the first ``size`` entries, from popcount(size) stored subtrees."""
    if size < 0:
        raise InvalidInput("size must be >= 0")
    _check_size(vault, size, known_size)
    with DbTileSource.open(vault.read_engine) as src:
        reader = TiledNodeReader(src, size, ledger_store(vault).cache)
        return merkle.root_at(reader, size)
