"""A slow, obviously-correct pure-Python model of ringhash: the test oracle.

Nothing in the package imports this; it exists so the tests can check every
compiled fast path against a plain transcription of the specification.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping

__all__ = ["ReferenceRing", "crc32", "encode_key", "murmur3_32", "point_count"]

_MASK = 0xFFFFFFFF


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86_32, transcribed from Austin Appleby's MurmurHash3.cpp."""
    c1, c2 = 0xCC9E2D51, 0x1B873593

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (32 - r))) & _MASK

    h = seed & _MASK
    nblocks = len(data) // 4
    for i in range(nblocks):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = rotl((k * c1) & _MASK, 15)
        h ^= (k * c2) & _MASK
        h = (rotl(h, 13) * 5 + 0xE6546B64) & _MASK
    tail = data[4 * nblocks :]
    if tail:
        k = int.from_bytes(tail, "little")
        k = rotl((k * c1) & _MASK, 15)
        h ^= (k * c2) & _MASK
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    h ^= h >> 16
    return h


def crc32(data: bytes) -> int:
    """CRC-32/IEEE, bit by bit (reflected polynomial 0xEDB88320)."""
    c = _MASK
    for byte in data:
        c ^= byte
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
    return c ^ _MASK


def encode_key(key: object) -> bytes:
    """The key encoding rule, one case per line of the specification."""
    import numpy as np

    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, (bytes, bytearray)):
        return bytes(key)
    if isinstance(key, memoryview):
        if not key.c_contiguous:
            raise TypeError("memoryview key must be C-contiguous")
        return key.tobytes()
    if isinstance(key, (bool, np.bool_)):
        raise TypeError("bool is not a valid key")
    if isinstance(key, (int, np.integer)):
        v = int(key)
        if 0 <= v < 2**64:
            return v.to_bytes(8, "little")
        if -(2**63) <= v < 0:
            return (v + 2**64).to_bytes(8, "little")
        raise OverflowError(f"int key {v} is out of range")
    raise TypeError(f"unsupported key type {type(key).__name__!r}")


def hash_bytes(hash: str, data: bytes, seed: int = 0) -> int:
    return crc32(data) if hash == "crc32" else murmur3_32(data, seed)


def point_count(vnodes: int, weight: float) -> int:
    return max(1, math.floor(vnodes * weight + 0.5))


class ReferenceRing:
    """The ring rule, transcribed: sorted (point, utf8(name)) pairs and bisect."""

    def __init__(
        self, weights: Mapping[str, float], vnodes: int = 160, hash: str = "murmur3", seed: int = 0
    ) -> None:
        self.weights = dict(weights)
        self.vnodes, self.hash, self.seed = vnodes, hash, seed
        entries = []
        for name, weight in self.weights.items():
            raw = name.encode("utf-8")
            for i in range(point_count(vnodes, weight)):
                point = hash_bytes(hash, raw + b"#" + str(i).encode("ascii"), seed)
                entries.append((point, raw, name))
        entries.sort()
        self.entries = entries
        self.points = [p for p, _, _ in entries]
        self.nodes = tuple(sorted(self.weights, key=lambda n: n.encode("utf-8")))

    def hash_key(self, key: object) -> int:
        return hash_bytes(self.hash, encode_key(key), self.seed)

    def position(self, h: int) -> int:
        i = bisect.bisect_left(self.points, h)
        return 0 if i == len(self.points) else i

    def get(self, key: object) -> str:
        if not self.entries:
            raise LookupError("empty ring")
        return self.entries[self.position(self.hash_key(key))][2]

    def get_nodes(self, key: object, n: int) -> list[str]:
        if not self.entries:
            raise LookupError("empty ring")
        start = self.position(self.hash_key(key))
        out: list[str] = []
        for step in range(len(self.entries)):
            name = self.entries[(start + step) % len(self.entries)][2]
            if name not in out:
                out.append(name)
            if len(out) == min(n, len(self.weights)):
                break
        return out
