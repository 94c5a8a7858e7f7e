"""C2SP tlog-tiles: tile paths, tile arithmetic, entry bundles, tiled proof reads.

Spec: https://c2sp.org/tlog-tiles (paths as in transparency-dev/tessera
``api/layout/paths.go``). Hashing is RFC 6962 (see ``merkle.py``).

Layout. A tile at tile level ``L`` and index ``N`` holds up to 256 consecutive
hashes of tree level ``8*L``: hash ``i`` is the perfect subtree ``(8*L, N*256 + i)``.
Level 0 tiles hold leaf hashes; a full level-L tile's MTH is one hash of level L+1.
A tree of size ``s`` has, at tile level L, ``(s >> 8L) // 256`` full tiles and a
partial tile of width ``(s >> 8L) % 256`` when that is not 0. Partial tiles are
never hashed upward and empty tiles never exist.

Conventions used throughout this module:

* ``width`` is the number of hashes (or entries) a tile holds, 1..256; **256 means
  full**. :func:`tile_path` also accepts 0 for full, Tessera's convention.
* Tile bytes are the raw concatenation of ``width`` 32-byte hashes.

Invariants:

* Full tiles are immutable. A partial tile of width ``w`` is the first ``w`` hashes
  of the tile it will become, so a partial tile is immutable too once written
  under its width; only "which width is the latest" changes.
* :class:`TileBuilder` never re-reads old tiles: appending a batch costs
  O(batch + log n) hashing, and its state is just the partial tiles of the right
  edge (at most 255 hashes per tile level), which the caller persists anyway.
* :class:`TiledNodeReader` answers ``node(level, index)`` for a fixed tree size from
  at most one tile per tile level on the path, so proofs cost O(log n) tile reads.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from vault.errors import InvalidInput, LedgerCorrupted, NotFound
from vault.ledger.merkle import HASH_SIZE, CompactRange

__all__ = [
    "ENTRIES",
    "MAX_TILE_LEVEL",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "MemoryTileSource",
    "Tile",
    "TileBuilder",
    "TileCache",
    "TileLevelLayout",
    "TilePath",
    "TileSource",
    "TileUpdate",
    "TiledNodeReader",
    "decode_entry_bundle",
    "encode_entry_bundle",
    "entries_path_for_log_index",
    "parse_tile_path",
    "partial_tiles",
    "tile_layout",
    "tile_path",
    "tile_width",
    "tiles_for_size",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # 256 hashes in a full tile
MAX_TILE_LEVEL = 63  # tlog-tiles: <L> is 0..63
MAX_ENTRY_SIZE = 0xFFFF  # uint16 length prefix
ENTRIES: Literal["entries"] = "entries"

TileLevel = int | Literal["entries"]

_NODE_PREFIX = b"\x01"
_sha256 = hashlib.sha256


# --------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------


def _encode_index(index: int) -> str:
    """``1234067 -> 'x001/x234/067'``: 3-digit groups, all but the last prefixed 'x'."""
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index > 0:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(groups))


def tile_path(level: TileLevel, index: int, width: int = 0) -> str:
    """Path of a tile below the log prefix, e.g. ``tile/0/x001/x234/067.p/8``.

    ``level`` is a tile level (0..63) or ``"entries"`` for an entry bundle.
    ``width`` 0 or 256 is a full tile; 1..255 a partial one.
    """
    if level != ENTRIES and not (isinstance(level, int) and 0 <= level <= MAX_TILE_LEVEL):
        raise ValueError(f"tile level must be 0..{MAX_TILE_LEVEL} or 'entries'")
    if index < 0:
        raise ValueError("tile index must be >= 0")
    if not 0 <= width <= TILE_WIDTH:
        raise ValueError("tile width must be 0..256")
    path = f"tile/{level}/{_encode_index(index)}"
    if 0 < width < TILE_WIDTH:
        path += f".p/{width}"
    return path


def entries_path_for_log_index(seq: int, log_size: int) -> str:
    """Path of the entry bundle holding entry ``seq`` in a log of ``log_size`` entries."""
    if not 0 <= seq < log_size:
        raise ValueError(f"entry {seq} is not in a log of size {log_size}")
    index = seq // TILE_WIDTH
    return tile_path(ENTRIES, index, tile_width(0, index, log_size))


@dataclass(frozen=True, slots=True)
class TilePath:
    """A parsed tile path. ``width`` is 1..256 (256 = full)."""

    level: TileLevel
    index: int
    width: int

    @property
    def is_full(self) -> bool:
        return self.width == TILE_WIDTH

    def __str__(self) -> str:
        return tile_path(self.level, self.index, self.width)


_LEVEL_RE = re.compile(r"entries|0|[1-9][0-9]?")
_GROUP_RE = re.compile(r"[0-9]{3}")
_WIDTH_RE = re.compile(r"[1-9][0-9]{0,2}")


def parse_tile_path(path: str) -> TilePath:
    """Parse ``tile/<L>/<N>[.p/<W>]`` strictly; the inverse of :func:`tile_path`.

    Anything that :func:`tile_path` would not produce is refused with
    :class:`vault.errors.InvalidInput`: leading zeros in the level or width, an
    ``x`` group that is all zeros at the front (so every index has one spelling),
    width 0 or >= 256, level > 63, extra or missing segments.
    """
    bad = InvalidInput(f"not a tile path: {path[:200]!r}")
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile" or not _LEVEL_RE.fullmatch(parts[1]):
        raise bad
    level: TileLevel = ENTRIES if parts[1] == ENTRIES else int(parts[1])
    if level != ENTRIES and level > MAX_TILE_LEVEL:
        raise bad
    groups = parts[2:]
    width = TILE_WIDTH
    if len(groups) >= 2 and groups[-2].endswith(".p"):
        if not _WIDTH_RE.fullmatch(groups[-1]):
            raise bad
        width = int(groups[-1])
        if width >= TILE_WIDTH:
            raise bad
        groups = [*groups[:-2], groups[-2][:-2]]
    digits: list[str] = []
    for i, g in enumerate(groups):
        last = i == len(groups) - 1
        if not last:
            if not g.startswith("x"):
                raise bad
            g = g[1:]
        if not _GROUP_RE.fullmatch(g):
            raise bad
        digits.append(g)
    if len(digits) > 1 and digits[0] == "000":
        raise bad  # non-canonical: tessera never emits a leading all-zero group
    index = int("".join(digits))
    if index >= 1 << 64:
        raise bad
    return TilePath(level, index, width)


# --------------------------------------------------------------------------------------
# Tile arithmetic
# --------------------------------------------------------------------------------------


def tile_width(level: int, index: int, size: int) -> int:
    """Width of tile ``(level, index)`` in a tree of ``size`` leaves: 0 if absent, 256 if full.

    For entry bundles use level 0: a bundle has the width of its level-0 tile.
    """
    count = size >> (TILE_HEIGHT * level)  # hashes at tree level 8*level
    return max(0, min(TILE_WIDTH, count - index * TILE_WIDTH))


@dataclass(frozen=True, slots=True)
class TileLevelLayout:
    """Tiles of one tile level for a tree size: ``full`` full tiles then maybe one partial."""

    level: int
    full: int
    partial_width: int  # 0 if there is no partial tile at this level


def tile_layout(size: int) -> list[TileLevelLayout]:
    """Per tile level, how many full tiles and which partial width a tree of ``size`` has.

    ``tile_layout(70_000)`` is ``[(0, 273, 112), (1, 1, 17), (2, 0, 1)]``.
    """
    if size < 0:
        raise ValueError("size must be >= 0")
    out: list[TileLevelLayout] = []
    level = 0
    count = size
    while count > 0:
        out.append(TileLevelLayout(level, count // TILE_WIDTH, count % TILE_WIDTH))
        count //= TILE_WIDTH
        level += 1
    return out


def partial_tiles(size: int) -> list[TilePath]:
    """The partial tiles a checkpoint of ``size`` needs, lowest level first."""
    return [
        TilePath(lv.level, lv.full, lv.partial_width)
        for lv in tile_layout(size)
        if lv.partial_width
    ]


def tiles_for_size(size: int) -> Iterator[TilePath]:
    """Every hash tile (full then partial, per level) of a tree of ``size`` leaves."""
    for lv in tile_layout(size):
        for index in range(lv.full):
            yield TilePath(lv.level, index, TILE_WIDTH)
        if lv.partial_width:
            yield TilePath(lv.level, lv.full, lv.partial_width)


# --------------------------------------------------------------------------------------
# Entry bundles
# --------------------------------------------------------------------------------------


def encode_entry_bundle(entries: Sequence[bytes]) -> bytes:
    """Concatenate ``uint16_be(len) || entry`` for up to 256 entries."""
    if not 0 < len(entries) <= TILE_WIDTH:
        raise ValueError("an entry bundle holds 1..256 entries")
    out = bytearray()
    for e in entries:
        if len(e) > MAX_ENTRY_SIZE:
            raise ValueError("an entry is at most 65535 bytes")
        out += len(e).to_bytes(2, "big")
        out += e
    return bytes(out)


def decode_entry_bundle(data: bytes, width: int | None = None) -> list[bytes]:
    """Split an entry bundle; reject truncation, trailing bytes, or a wrong entry count."""
    entries: list[bytes] = []
    pos, end = 0, len(data)
    while pos < end:
        if end - pos < 2:
            raise InvalidInput("entry bundle: truncated length prefix")
        n = int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        if end - pos < n:
            raise InvalidInput("entry bundle: truncated entry")
        entries.append(bytes(data[pos : pos + n]))
        pos += n
        if len(entries) > TILE_WIDTH:
            raise InvalidInput("entry bundle: more than 256 entries")
    if not entries:
        raise InvalidInput("entry bundle: empty")
    if width is not None and len(entries) != width:
        raise InvalidInput(f"entry bundle: {len(entries)} entries, expected {width}")
    return entries


# --------------------------------------------------------------------------------------
# Building tiles (sequencer side)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tile:
    """A hash tile to persist: ``width`` (1..256) hashes of tree level ``8 * level``."""

    level: int
    index: int
    width: int
    data: bytes

    @property
    def is_full(self) -> bool:
        return self.width == TILE_WIDTH

    @property
    def path(self) -> str:
        return tile_path(self.level, self.index, self.width)


@dataclass(frozen=True, slots=True)
class TileUpdate:
    """Result of :meth:`TileBuilder.append`.

    ``tiles`` are every full tile completed by the batch and the latest partial tile
    of every level the batch changed. Write them (full tiles are write-once; a
    partial tile key is ``(level, index, width)``), then keep ``builder``.
    """

    tiles: list[Tile]
    builder: TileBuilder

    @property
    def size(self) -> int:
        return self.builder.size

    def root(self) -> bytes:
        return self.builder.root()


class _Level:
    """Right edge of one tile level: the partial tile's hashes and their compact range."""

    __slots__ = ("hashes", "index", "stack")

    def __init__(self, index: int, hashes: list[bytes], stack: list[bytes]) -> None:
        self.index = index  # index of the partial tile at this level
        self.hashes = hashes  # its hashes so far (< 256)
        self.stack = stack  # compact range of `hashes` (perfect-subtree roots)

    def copy(self) -> _Level:
        return _Level(self.index, list(self.hashes), list(self.stack))


class TileBuilder:
    """Incremental tile writer for an append-only log. Pure: no I/O.

    State is the partial tile of each tile level (what :meth:`state` returns and
    :meth:`from_partial_tiles` restores); ``append`` returns a new builder and leaves
    this one untouched, so a failed database transaction can simply retry.
    """

    __slots__ = ("_levels", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._levels: list[_Level] = []

    @property
    def size(self) -> int:
        return self._size

    @classmethod
    def from_partial_tiles(cls, size: int, partials: Mapping[int, bytes]) -> TileBuilder:
        """Resume at ``size`` from the partial tiles of that size, ``{level: tile bytes}``.

        Exactly the levels listed by :func:`partial_tiles` must be present, with
        their widths; the content is trusted (it is the log's own storage).
        """
        expected = {t.level: t for t in partial_tiles(size)}
        if set(partials) != set(expected):
            raise ValueError(
                f"size {size} needs partial tiles at levels {sorted(expected)}, "
                f"got {sorted(partials)}"
            )
        b = cls()
        b._size = size
        for lv in tile_layout(size):
            data = partials.get(lv.level, b"")
            if len(data) != lv.partial_width * HASH_SIZE:
                raise ValueError(f"partial tile at level {lv.level} has the wrong length")
            level = _Level(lv.full, [], [])
            for i in range(lv.partial_width):
                _level_push(level, data[i * HASH_SIZE : (i + 1) * HASH_SIZE])
            b._levels.append(level)
        return b

    def state(self) -> dict[int, bytes]:
        """The partial tiles of the current size, ``{level: tile bytes}``."""
        return {lv: b"".join(s.hashes) for lv, s in enumerate(self._levels) if s.hashes}

    def compact_range(self) -> CompactRange:
        """The compact range of the current tree (its frontier), for roots and checks."""
        frontier: list[bytes] = []
        for level in reversed(self._levels):
            frontier.extend(level.stack)
        return CompactRange.from_frontier(self._size, frontier)

    def root(self) -> bytes:
        return self.compact_range().root()

    def append(self, leaf_hashes: Sequence[bytes]) -> TileUpdate:
        """Append a batch of leaf hashes; return the tiles to write and the new builder."""
        for h in leaf_hashes:
            if len(h) != HASH_SIZE:
                raise ValueError("leaf hash must be 32 bytes")
        nb = TileBuilder()
        nb._size = self._size + len(leaf_hashes)
        nb._levels = [lv.copy() for lv in self._levels]
        if not leaf_hashes:
            return TileUpdate([], nb)
        out: list[Tile] = []
        changed: set[int] = set()
        pending: Sequence[bytes] = leaf_hashes
        level_no = 0
        while pending:
            if level_no == len(nb._levels):
                nb._levels.append(_Level(0, [], []))
            level = nb._levels[level_no]
            changed.add(level_no)
            promoted: list[bytes] = []
            i, n = 0, len(pending)
            # Top up the partial tile one hash at a time (keeping its compact range),
            # then cut whole tiles straight from the batch: the fast path.
            while i < n and (level.hashes or n - i < TILE_WIDTH):
                if _level_push(level, pending[i]):
                    out.append(Tile(level_no, level.index, TILE_WIDTH, b"".join(level.hashes)))
                    promoted.append(level.stack[0])
                    level.index += 1
                    level.hashes = []
                    level.stack = []
                i += 1
                if not level.hashes and n - i >= TILE_WIDTH:
                    break
            while n - i >= TILE_WIDTH:
                chunk = pending[i : i + TILE_WIDTH]
                out.append(Tile(level_no, level.index, TILE_WIDTH, b"".join(chunk)))
                promoted.append(_perfect_root(chunk))
                level.index += 1
                i += TILE_WIDTH
            while i < n:
                _level_push(level, pending[i])  # fewer than 256 left: cannot fill a tile
                i += 1
            pending = promoted
            level_no += 1
        for level_no in sorted(changed):
            level = nb._levels[level_no]
            if level.hashes:
                out.append(
                    Tile(level_no, level.index, len(level.hashes), b"".join(level.hashes))
                )
        return TileUpdate(out, nb)


def _perfect_root(hashes: Sequence[bytes]) -> bytes:
    """MTH of a power-of-two number of hashes, level by level."""
    row = list(hashes)
    while len(row) > 1:
        row = [
            _sha256(_NODE_PREFIX + row[j] + row[j + 1]).digest() for j in range(0, len(row), 2)
        ]
    return row[0]


def _level_push(level: _Level, h: bytes) -> bool:
    """Add one hash to a level's partial tile; True when that tile becomes full."""
    hashes, stack = level.hashes, level.stack
    n = len(hashes)
    hashes.append(h)
    stack.append(h)
    while n & 1:
        right = stack.pop()
        stack[-1] = _sha256(_NODE_PREFIX + stack[-1] + right).digest()
        n >>= 1
    return len(hashes) == TILE_WIDTH


# --------------------------------------------------------------------------------------
# Reading tiles (proof side)
# --------------------------------------------------------------------------------------


class TileSource(Protocol):
    """Where hash tiles come from (database, object store, HTTP mirror)."""

    def tile(self, level: int, index: int, width: int) -> bytes:
        """The first ``width`` hashes (1..256; 256 = full) of tile ``(level, index)``.

        Returns ``width * 32`` bytes. Returning a longer prefix of the same tile
        (for example the latest partial tile, or the full tile) is allowed; the
        reader keeps the first ``width`` hashes.
        """
        ...


class _CachedTile:
    """A tile split into hashes, with the interior levels computed on demand."""

    __slots__ = ("levels",)

    def __init__(self, data: bytes, width: int) -> None:
        self.levels: list[list[bytes]] = [
            [data[i : i + HASH_SIZE] for i in range(0, width * HASH_SIZE, HASH_SIZE)]
        ]

    def node(self, height: int, pos: int) -> bytes:
        levels = self.levels
        while len(levels) <= height:
            below = levels[-1]
            levels.append(
                [
                    _sha256(_NODE_PREFIX + below[i] + below[i + 1]).digest()
                    for i in range(0, len(below) - 1, 2)
                ]
            )
        return levels[height][pos]


class TileCache:
    """LRU of parsed tiles, keyed by ``(level, index, width)``; safe to share.

    Tiles are immutable under that key (see the module invariants), so one cache
    can serve readers for every tree size. ``capacity`` counts tiles: a full tile
    with its interior nodes is about 20 KiB of Python objects.
    """

    def __init__(self, capacity: int = 4096) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._tiles: OrderedDict[tuple[int, int, int], _CachedTile] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._tiles)

    def _get(self, source: TileSource, level: int, index: int, width: int) -> _CachedTile:
        key = (level, index, width)
        tile = self._tiles.get(key)
        if tile is not None:
            self.hits += 1
            self._tiles.move_to_end(key)
            return tile
        self.misses += 1
        data = source.tile(level, index, width)
        if len(data) < width * HASH_SIZE or len(data) % HASH_SIZE:
            raise LedgerCorrupted(
                f"tile {tile_path(level, index, width)} has {len(data)} bytes, "
                f"expected {width * HASH_SIZE}"
            )
        tile = _CachedTile(bytes(data), width)
        self._tiles[key] = tile
        if len(self._tiles) > self.capacity:
            self._tiles.popitem(last=False)
        return tile


class MemoryTileSource:
    """In-memory :class:`TileSource` for tests, tools and the single-process profile.

    Keeps the latest tile per ``(level, index)``; serves any prefix width of it. A
    write that does not extend the stored tile (a rewrite of history) is refused.
    """

    def __init__(self) -> None:
        self._tiles: dict[tuple[int, int], bytes] = {}

    def __len__(self) -> int:
        return len(self._tiles)

    def write(self, tiles: Iterable[Tile]) -> None:
        for t in tiles:
            key = (t.level, t.index)
            old = self._tiles.get(key)
            if old is not None and (len(t.data) < len(old) or t.data[: len(old)] != old):
                raise LedgerCorrupted(f"tile {t.path} would rewrite stored hashes")
            self._tiles[key] = t.data

    def tile(self, level: int, index: int, width: int) -> bytes:
        data = self._tiles.get((level, index))
        if data is None or len(data) < width * HASH_SIZE:
            raise NotFound(f"no tile {tile_path(level, index, width)}")
        return data if len(data) == width * HASH_SIZE else data[: width * HASH_SIZE]


class TiledNodeReader:
    """:class:`vault.ledger.merkle.NodeReader` over C2SP tiles for a fixed tree size.

    ``node(level, index)`` reads the tile at tile level ``level // 8`` that holds the
    node's descendants at tree level ``8 * (level // 8)`` and hashes up inside it
    ``level % 8`` times (cached per tile). A proof touches O(log n) tiles.
    """

    def __init__(self, source: TileSource, size: int, cache: TileCache | None = None) -> None:
        if size < 0:
            raise ValueError("size must be >= 0")
        self.source = source
        self.size = size
        self.cache = cache if cache is not None else TileCache()

    def node(self, level: int, index: int) -> bytes:
        if level < 0 or index < 0 or (index + 1) << level > self.size:
            raise ValueError(f"node ({level}, {index}) is not within a tree of size {self.size}")
        tile_level, height = divmod(level, TILE_HEIGHT)
        shift = TILE_HEIGHT - height
        tile_index = index >> shift
        width = min(TILE_WIDTH, (self.size >> (TILE_HEIGHT * tile_level)) - tile_index * TILE_WIDTH)
        tile = self.cache._get(self.source, tile_level, tile_index, width)
        return tile.node(height, index & ((1 << shift) - 1))
