"""Models of the proxies' and clients' key hashes (``rh_proxy_hash`` in
ext/rh_hash.c), written in Python from the programs' C sources and the hashes'
published descriptions: the oracle of tests/test_proxies.py and of the
``proxy_hashes`` fuzz target. ``read`` is how a C plain char reads the bytes
(``signed`` on x86-64, ``unsigned`` on aarch64); ``tagged`` is twemproxy's
``hash_tag`` rule."""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Callable

M32 = 2**32


def signed(b: bytes) -> list[int]:
    """Bytes as a C plain char reads them where it is signed (x86-64)."""
    return [c - 256 if c >= 128 else c for c in b]


def unsigned(b: bytes) -> list[int]:
    """... and where it is unsigned (aarch64, ARM, POWER, s390x)."""
    return list(b)


def sdbm(b: bytes) -> int:
    h = 0
    for c in b:
        h = (c + (h << 6) + (h << 16) - h) % M32
    return h


def djb2(b: bytes) -> int:
    h = 5381
    for c in b:
        h = (h * 33 + c) % M32
    return h


def wt6(b: bytes) -> int:
    h0, h1, s0, s1 = 0xA53C965A, 0x5CA6953A, 6, 18
    for t in b:
        h0 = ~(h0 ^ t) % M32
        h1 = ~(h1 + t) % M32
        t = ((h1 << s0) | (h1 >> (32 - s0))) % M32
        h1 = ((h0 << s1) | (h0 >> (32 - s1))) % M32
        h0 = t
        t = ((h0 >> 16) ^ h1) & 0xFFFF
        s0, s1 = t & 0x1F, t >> 11
    return h0 ^ h1


def oaat(b: bytes, read: Callable[[bytes], list[int]] = signed) -> int:
    v = 0
    for c in read(b):
        v = (v + c) % M32
        v = (v + (v << 10)) % M32
        v ^= v >> 6
    v = (v + (v << 3)) % M32
    v ^= v >> 11
    return (v + (v << 15)) % M32


def fnv1_64(b: bytes, read: Callable[[bytes], list[int]] = signed) -> int:
    h = 0xCBF29CE484222325
    for c in read(b):
        h = (h * 0x100000001B3) % 2**64
        h ^= c % 2**64
    return h % M32


def fnv1a_64(b: bytes, read: Callable[[bytes], list[int]] = signed) -> int:
    h = 0xCBF29CE484222325 % M32
    for c in read(b):
        h = ((h ^ (c % M32)) * (0x100000001B3 % M32)) % M32
    return h


def fnv1_32(b: bytes, read: Callable[[bytes], list[int]] = signed) -> int:
    h = 2166136261
    for c in read(b):
        h = ((h * 16777619) % M32) ^ (c % M32)
    return h


def fnv1a_32(b: bytes, read: Callable[[bytes], list[int]] = signed) -> int:
    h = 2166136261
    for c in read(b):
        h = ((h ^ (c % M32)) * 16777619) % M32
    return h


def murmur2(b: bytes) -> int:
    m, n = 0x5BD1E995, len(b)
    h = ((0xDEADBEEF * n) % M32) ^ n
    i = 0
    while n - i >= 4:
        k = int.from_bytes(b[i : i + 4], "little")
        k = (k * m) % M32
        k ^= k >> 24
        k = (k * m) % M32
        h = ((h * m) % M32) ^ k
        i += 4
    rest = b[i:]
    if rest:
        for j in range(len(rest) - 1, -1, -1):
            h ^= rest[j] << (8 * j)
        h = (h * m) % M32
    h ^= h >> 13
    h = (h * m) % M32
    return h ^ (h >> 15)


def full_hash(a: int) -> int:
    a = (a + 0x7ED55D16 + (a << 12)) % M32
    a = (a ^ 0xC761C23C ^ (a >> 19)) % M32
    a = (a + 0x165667B1 + (a << 5)) % M32
    a = ((a + 0xD3A2646C) ^ (a << 9)) % M32
    a = (a + 0xFD7046C5 + (a << 3)) % M32
    a = (a ^ 0xB55A4F09 ^ (a >> 16)) % M32
    return (a * 3221225473) % M32


def crc32_15(b: bytes) -> int:
    return (zlib.crc32(b) >> 16) & 0x7FFF


def hsieh(b: bytes, read: Callable[[bytes], list[int]] = signed) -> int:
    """twemproxy's hash_hsieh: SuperFastHash from 0; the 3-byte tail's last byte
    through a plain char."""
    h, n, rem = 0, len(b) // 4, len(b) % 4
    for i in range(n):
        h = (h + b[4 * i] + (b[4 * i + 1] << 8)) % M32
        tmp = (((b[4 * i + 2] + (b[4 * i + 3] << 8)) << 11) ^ h) % M32
        h = ((h << 16) ^ tmp) % M32
        h = (h + (h >> 11)) % M32
    t = b[4 * n :]
    if rem == 3:
        h = (h + t[0] + (t[1] << 8)) % M32
        h ^= (h << 16) % M32
        h ^= ((read(t)[2] % M32) << 18) % M32
        h = (h + (h >> 11)) % M32
    elif rem == 2:
        h = (h + t[0] + (t[1] << 8)) % M32
        h ^= (h << 11) % M32
        h = (h + (h >> 17)) % M32
    elif rem == 1:
        h = (h + t[0]) % M32
        h ^= (h << 10) % M32
        h = (h + (h >> 1)) % M32
    for op, k in (("^<", 3), ("+>", 5), ("^<", 4), ("+>", 17), ("^<", 25), ("+>", 6)):
        h = (h ^ (h << k)) % M32 if op == "^<" else (h + (h >> k)) % M32
    return h


def lookup3(b: bytes, initval: int = 13) -> int:
    """Bob Jenkins' hashlittle (lookup3.c), written from its description."""

    def rot(x: int, k: int) -> int:
        return ((x << k) | (x >> (32 - k))) % M32

    a = c = d = (0xDEADBEEF + len(b) + initval) % M32
    if not b:
        return d
    words = [int.from_bytes(b[i : i + 4].ljust(4, b"\0"), "little") for i in range(0, len(b), 4)]
    words += [0] * (-len(words) % 3)
    blocks = [words[i : i + 3] for i in range(0, len(words), 3)]
    for x, y, z in blocks[:-1]:
        a, c, d = (a + x) % M32, (c + y) % M32, (d + z) % M32
        for r1, r2, r3 in ((4, 6, 8), (16, 19, 4)):
            a = ((a - d) % M32) ^ rot(d, r1)
            d = (d + c) % M32
            c = ((c - a) % M32) ^ rot(a, r2)
            a = (a + d) % M32
            d = ((d - c) % M32) ^ rot(c, r3)
            c = (c + a) % M32
    x, y, z = blocks[-1]
    a, c, d = (a + x) % M32, (c + y) % M32, (d + z) % M32
    for first, second, r in (
        ("d", "c", 14), ("a", "d", 11), ("c", "a", 25), ("d", "c", 16),
        ("a", "d", 4), ("c", "a", 14), ("d", "c", 24),
    ):  # fmt: skip
        v = {"a": a, "c": c, "d": d}
        v[first] = ((v[first] ^ v[second]) - rot(v[second], r)) % M32
        a, c, d = v["a"], v["c"], v["d"]
    return d


def crc16(b: bytes) -> int:
    """twemproxy's hash_crc16: CRC-16/XMODEM bit by bit, its state kept in 32 bits
    and never masked."""
    crc = 0
    for byte in b:
        top = ((crc >> 8) ^ byte) & 0xFF
        t = top << 8
        for _ in range(8):
            t = ((t << 1) ^ 0x1021) if t & 0x8000 else t << 1
        crc = ((crc << 8) ^ (t & 0xFFFF)) % M32
    return crc


def haproxy_source(b: bytes) -> int:
    """HAProxy's get_server_sh: the XOR of the address's whole 32-bit big-endian words."""
    h = 0
    for i in range(0, len(b) - 3, 4):
        h ^= int.from_bytes(b[i : i + 4], "big")
    return h


MODELS = {
    "sdbm": sdbm,
    "djb2": djb2,
    "wt6": wt6,
    "one_at_a_time": oaat,
    "fnv1_64": fnv1_64,
    "fnv1a_64": fnv1a_64,
    "fnv1_32": fnv1_32,
    "fnv1a_32": fnv1a_32,
    "murmur2": murmur2,
    "crc32_15": crc32_15,
    "hsieh": hsieh,
    "jenkins": lookup3,
    "crc16": crc16,
    "haproxy_source": haproxy_source,
}


def tagged(key: bytes, tag: bytes) -> bytes:
    """What nutcracker hashes (server_pool_idx): the part between the first opening
    byte and the first closing byte after it, if that part is not empty; else the key."""
    start = key.find(tag[:1])
    if start < 0:
        return key
    end = key.find(tag[1:], start + 1)
    return key[start + 1 : end] if end > start + 1 else key


def forge_crc32(prefix: bytes, suffix: bytes, target: int) -> bytes | None:
    """Sixteen letters ``h``..``o`` (each one's low 3 bits free) that make
    ``crc32(prefix + letters + suffix) == target``, or None if these 48 bits cannot.
    crc32 of messages of one length is affine in their bits, so the bits that reach
    ``target`` are solved for over GF(2): how the tests make two servers' points meet,
    and keys hash where they must."""
    base = b"h" * 16
    c0 = zlib.crc32(prefix + base + suffix)
    basis: dict[int, tuple[int, int]] = {}  # leading bit -> (crc change, bits flipped)
    for k in range(48):
        flipped = bytearray(base)
        flipped[k // 3] ^= 1 << (k % 3)
        v, m = zlib.crc32(prefix + bytes(flipped) + suffix) ^ c0, 1 << k
        while v:
            h = v.bit_length() - 1
            if h not in basis:
                basis[h] = (v, m)
                break
            v, m = v ^ basis[h][0], m ^ basis[h][1]
    v, m = target ^ c0, 0
    while v:
        h = v.bit_length() - 1
        if h not in basis:
            return None
        v, m = v ^ basis[h][0], m ^ basis[h][1]
    out = bytearray(base)
    for k in range(48):
        if m >> k & 1:
            out[k // 3] ^= 1 << (k % 3)
    return bytes(out)


def nginx_continuum(servers: list[tuple[str, int, bool]]) -> list[tuple[int, int]]:
    """ngx_http_upstream_update_chash: (point, server index) of every server, down
    ones too, sorted stably, and a point equal to the one before dropped."""
    points = []
    for index, (text, weight, _) in enumerate(servers):
        raw = text.encode()
        host, port = raw, b""
        if raw[:5].lower() == b"unix:":
            host = raw[5:]
        else:
            j = len(raw)
            while j and raw[j - 1 : j].isdigit():
                j -= 1
            if j and raw[j - 1 : j] == b":":
                host, port = raw[: j - 1], raw[j:]
        base, prev = zlib.crc32(host + b"\0" + port), 0
        for _ in range(160 * weight):
            prev = zlib.crc32(prev.to_bytes(4, "little"), base)
            points.append((prev, index))
    points.sort(key=lambda p: p[0])
    return [p for i, p in enumerate(points) if i == 0 or points[i - 1][0] != p[0]]


def nginx_route(servers: list[tuple[str, int, bool]], keys: list[bytes]) -> list[str | None]:
    """ngx_http_upstream_get_chash_peer: per key, the server of the first point >=
    crc32(key), stepping over down servers' points; None where nginx goes round robin
    instead (an empty key, or 21 points in a row of down servers)."""
    continuum = nginx_continuum(servers)
    points = [p for p, _ in continuum]
    out: list[str | None] = []
    for key in keys:
        out.append(None)
        i = bisect.bisect_left(points, zlib.crc32(key))
        for tries in range(21 if key and points else 0):
            text, _, down = servers[continuum[(i + tries) % len(points)][1]]
            if not down:
                out[-1] = text
                break
    return out
