"""The append-only ledger.

Pure core (no I/O, no clock, no database), usable on its own:

* ``merkle``     RFC 9162 hashing, ``CompactRange``, proof generation and verification
* ``tiles``      C2SP tlog-tiles paths, ``TileBuilder`` (sequencer), ``TiledNodeReader``
* ``note``       C2SP signed-note / tlog-cosignature signing and strict opening
* ``checkpoint`` C2SP tlog-checkpoint bodies

Import from the submodules; this package re-exports nothing so that importing one
part never drags in the others.
"""
