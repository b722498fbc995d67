"""Slow, obviously-correct models of the other algorithms, written from their
specifications (docs/SPEC.md, "Other algorithms") with independent pieces:
mmh3 for every hash, math.log for rendezvous scores, Python ints for jump."""

from __future__ import annotations

import bisect
import math

import mmh3

from ringhash._reference import encode_key

M32, M64 = 2**32, 2**64


def murmur(data: bytes, seed: int = 0) -> int:
    return mmh3.hash(data, seed, signed=False)


def key_hash(key: object) -> int:
    return murmur(encode_key(key))


def fmix32(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85EBCA6B) % M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) % M32
    return h ^ (h >> 16)


def sorted_nodes(names) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(names, key=lambda n: n.encode("utf-8"))


# ---------------------------------------------------------------- jump


def jump_key(key: object) -> int:
    if isinstance(key, int) and not isinstance(key, bool):
        return key % M64
    return mmh3.hash64(encode_key(key), signed=False)[0]


def jump_bucket(key: int, buckets: int) -> int:
    """Lamping & Veach's code, with 64-bit wraparound."""
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * 2862933555777941757 + 1) % M64
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


class JumpModel:
    def __init__(self, nodes: list[str]) -> None:
        self.nodes = list(nodes)

    def get(self, key: object) -> str:
        return self.nodes[jump_bucket(jump_key(key), len(self.nodes))]


# ---------------------------------------------------------------- rendezvous


class RendezvousModel:
    def __init__(self, weights: dict[str, float]) -> None:
        self.nodes = sorted_nodes(weights)
        self.weights = [weights[n] for n in self.nodes]
        self.seeds = [murmur(n.encode("utf-8")) for n in self.nodes]
        self.uniform = len(set(self.weights)) == 1

    def ranking(self, key: object) -> list[str]:
        k = key_hash(key).to_bytes(4, "little")
        scored = []
        for i, (seed, w) in enumerate(zip(self.seeds, self.weights, strict=True)):
            h = murmur(k, seed)
            score = -h if self.uniform else -math.log((h + 0.5) / M32) / w
            scored.append((score, i))
        return [self.nodes[i] for _, i in sorted(scored)]

    def get(self, key: object) -> str:
        return self.ranking(key)[0]


# ---------------------------------------------------------------- maglev


class MaglevModel:
    def __init__(self, weights: dict[str, float], m: int) -> None:
        self.nodes = sorted_nodes(weights)
        self.m = m
        top = max(weights.values())
        norm = [weights[n] / top for n in self.nodes]
        perms = []
        for n in self.nodes:
            raw = n.encode("utf-8")
            offset, skip = murmur(raw, 0) % m, murmur(raw, 1) % (m - 1) + 1
            perms.append((offset, skip))
        table: list[int | None] = [None] * m
        nxt = [0] * len(self.nodes)
        claimed = [0] * len(self.nodes)
        filled, rnd = 0, 0
        while filled < m:
            rnd += 1
            for i, (offset, skip) in enumerate(perms):
                if filled == m:
                    break
                if claimed[i] + 1 > norm[i] * rnd:
                    continue
                claimed[i] += 1
                while True:
                    c = (offset + nxt[i] * skip) % m
                    nxt[i] += 1
                    if table[c] is None:
                        break
                table[c] = i
                filled += 1
        self.table = table

    def get(self, key: object) -> str:
        entry = self.table[(key_hash(key) * self.m) >> 32]
        assert entry is not None
        return self.nodes[entry]


# ---------------------------------------------------------------- multi-probe


class MultiProbeModel:
    def __init__(self, nodes: list[str], probes: int = 21) -> None:
        entries = sorted((murmur(n.encode("utf-8") + b"#0"), n.encode("utf-8"), n) for n in nodes)
        self.points = [p for p, _, _ in entries]
        self.owners = [n for _, _, n in entries]
        self.probes = probes

    def get(self, key: object) -> str:
        h = key_hash(key)
        step = fmix32(h ^ 0x9E3779B9) | 1
        best, owner = None, ""
        for j in range(self.probes):
            x = (h + j * step) % M32
            at = bisect.bisect_left(self.points, x)
            at = 0 if at == len(self.points) else at
            d = (self.points[at] - x) % M32
            if best is None or d < best:
                best, owner = d, self.owners[at]
        return owner
