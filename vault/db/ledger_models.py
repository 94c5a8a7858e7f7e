"""Models of the Merkle log's stored tree and checkpoints (ledger issue)."""

from __future__ import annotations
