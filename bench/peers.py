"""The peers ringhash is measured against, each written the way its users would.

Every peer is optional: a missing one is skipped with the reason, never faked.
"""

from __future__ import annotations

import bisect
import sys

import numpy as np

try:
    import mmh3
except ImportError:  # pragma: no cover
    mmh3 = None

try:
    import uhashring
except ImportError:  # pragma: no cover
    uhashring = None

try:
    import jump
except ImportError:  # pragma: no cover
    jump = None

try:
    import clandestined
except ImportError:  # pragma: no cover
    clandestined = None

try:
    import fastring
except ImportError:  # only published for CPython >= 3.13
    fastring = None

FASTRING_REASON = (
    "fastring is only published for CPython >= 3.13"
    if sys.version_info < (3, 13)
    else "fastring is not installed (pip install '.[bench]')"
)


def node_names(n: int) -> list[str]:
    return [f"node-{i}" for i in range(n)]


class NumpyBaseline:
    """mmh3 per point and per key, np.searchsorted, wrap, take: the ring a numpy user writes."""

    def __init__(self, names: list[str], vnodes: int = 160) -> None:
        pts = np.fromiter(
            (mmh3.hash(f"{name}#{i}", 0, signed=False) for name in names for i in range(vnodes)),
            dtype=np.uint32,
            count=len(names) * vnodes,
        )
        own = np.repeat(np.arange(len(names), dtype=np.int32), vnodes)
        order = np.argsort(pts, kind="stable")
        self.points, self.owners = pts[order], own[order]

    def _route(self, hashes: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.points, hashes, side="left")
        pos[pos == len(self.points)] = 0
        return self.owners.take(pos)

    def lookup_str(self, keys: list[str]) -> np.ndarray:
        hashes = np.fromiter(
            (mmh3.hash(k, 0, signed=False) for k in keys), dtype=np.uint32, count=len(keys)
        )
        return self._route(hashes)

    def lookup_u64_murmur3(self, keys: np.ndarray) -> np.ndarray:
        """MurmurHash3 x86_32 of each key's 8 little-endian bytes, vectorized in numpy:
        the same hash as ringhash's, written the way a numpy user would."""
        k = keys.astype(np.uint64)
        lo = (k & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        hi = (k >> np.uint64(32)).astype(np.uint32)
        h = np.zeros(len(k), dtype=np.uint32)
        for block in (lo, hi):
            b = block * np.uint32(0xCC9E2D51)
            b = (b << np.uint32(15)) | (b >> np.uint32(17))
            b *= np.uint32(0x1B873593)
            h ^= b
            h = (h << np.uint32(13)) | (h >> np.uint32(19))
            h = h * np.uint32(5) + np.uint32(0xE6546B64)
        h ^= np.uint32(8)
        h ^= h >> np.uint32(16)
        h *= np.uint32(0x85EBCA6B)
        h ^= h >> np.uint32(13)
        h *= np.uint32(0xC2B2AE35)
        h ^= h >> np.uint32(16)
        return self._route(h)

    def lookup_u64(self, keys: np.ndarray) -> np.ndarray:
        # A cheaper numpy-vectorized 64-bit mixer (murmur3's fmix64), high 32 bits:
        # not the same hash, but the least a numpy user could spend on one.
        h = keys.astype(np.uint64)
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xFF51AFD7ED558CCD)
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xC4CEB9FE1A85EC53)
        h ^= h >> np.uint64(33)
        return self._route((h >> np.uint64(32)).astype(np.uint32))


class BisectRing:
    """Hand-written: a sorted list of mmh3 points and bisect."""

    def __init__(self, names: list[str], vnodes: int = 160) -> None:
        pairs = sorted(
            (mmh3.hash(f"{name}#{i}", 0, signed=False), name)
            for name in names
            for i in range(vnodes)
        )
        self.points = [p for p, _ in pairs]
        self.owners = [n for _, n in pairs]

    def get(self, key: str) -> str:
        i = bisect.bisect_left(self.points, mmh3.hash(key, 0, signed=False))
        return self.owners[i if i < len(self.points) else 0]


def uhashring_ring(names: list[str]) -> object:
    return uhashring.HashRing(nodes=names)  # ketama / md5, 160 points per node


def fastring_ring(names: list[str], vnodes: int = 160) -> object:
    ring = fastring.HashRing(vnodes)
    for name in names:
        ring.add_node(name)
    return ring
