"""Fuzz targets for ringhash's compiled core: one ``check(data)`` per target.

Each takes arbitrary bytes, drives one entry point with them, and fails (an
AssertionError or an exception of an unexpected type) on a finding: a wrong
answer versus mmh3/zlib/numpy, an exception other than the documented ones, or
(under .ci/sanitize) a sanitizer report. A crash or a hang is a finding too.

They run three ways: ``python -m tests.fuzz.run TARGET`` under atheris
(coverage-guided; ``.ci/fuzz`` runs each for a while from the seed corpus in
``tests/fuzz/corpus/``), and in the ordinary suite through hypothesis
(``tests/test_fuzz_targets.py``), and on the corpus itself.
"""

from __future__ import annotations

import json
import pathlib
import struct
import sys
import zlib

import mmh3
import numpy as np

from ringhash import HashRing, _core, crc32, murmur3_32

# tests/ itself, for the hash models (as the suite has it; atheris runs this module
# as tests.fuzz.targets from the repository)
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from proxy_models import MODELS, full_hash, signed, tagged, unsigned  # noqa: E402

#: Exceptions each entry point documents for bad input.
BAD_INPUT = (ValueError, TypeError, OverflowError, LookupError)


def _expect_owner(points: np.ndarray, owners: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(points.astype(np.int64), hashes.astype(np.int64), side="left")
    pos[pos == len(points)] = 0
    return owners[pos]


def check_from_bytes(data: bytes) -> None:
    """from_bytes on arbitrary bytes (and on a valid header with fuzzed points)."""
    for blob in (data, _with_points(data)):
        try:
            ring = HashRing.from_bytes(blob)
        except BAD_INPUT:
            continue
        _check_ring(ring, data)


def _with_points(data: bytes) -> bytes:
    """A well-framed default-ring file whose points and owners come from data."""
    n = len(data) // 8
    points = np.sort(np.frombuffer(data[: 4 * n], dtype="<u4"))
    owners = (np.frombuffer(data[4 * n : 8 * n], dtype="<u4") % 3).astype("<i4")
    order = np.lexsort((owners, points))
    desc = {
        "format": "ringhash.ring",
        "version": 1,
        "preset": None,
        "vnodes": 1,
        "hash": "murmur3",
        "seed": 0,
        "nodes": {"a": 1.0, "b": 1.0, "c": 1.0},
    }
    header = json.dumps(desc).encode()
    body = (
        struct.pack("<8sHHI", b"RINGHASH", 1, 0, len(header))
        + header
        + struct.pack("<Q", n)
        + points[order].tobytes()
        + owners[order].tobytes()
    )
    return body + struct.pack("<I", zlib.crc32(body))


def _check_ring(ring: HashRing, data: bytes) -> None:
    """A loaded ring answers as a binary search over its own points does."""
    if not len(ring):
        return
    keys = np.frombuffer(data[: len(data) // 8 * 8], dtype=np.uint64)[:256]
    hashes = ring.hash_keys(keys)
    want = _expect_owner(ring.points, ring.owners, hashes)
    if ring.preset != "stathat":
        assert np.array_equal(ring.lookup(keys), want)
        assert np.array_equal(ring.lookup_hashes(hashes), want)
    assert [ring.get(int(k)) for k in keys[:16]] == [ring.nodes[i] for i in ring.lookup(keys[:16])]
    again = HashRing.from_bytes(ring.to_bytes())
    assert again == ring and np.array_equal(again.points, ring.points)


def check_from_dict(data: bytes) -> None:
    """from_dict on whatever JSON the bytes hold (and on JSON-shaped fuzz)."""
    try:
        d = json.loads(data.decode("utf-8", "replace"))
    except ValueError:
        d = {
            "format": "ringhash.ring",
            "version": 1,
            "preset": ["ketama", "groupcache", "stathat", None][data[0] % 4] if data else None,
            "state": {
                "servers": [[data[1:5].decode("latin-1"), 1]],
                "replicas": 2,
                "order": [data[1:3].decode("latin-1")],
                "ops": [["add", "x"]],
            },
            "nodes": {"n": 1.0},
            "vnodes": 3,
            "hash": "murmur3",
            "seed": 0,
        }
    try:
        ring = HashRing.from_dict(d)
    except ValueError:
        return  # from_dict documents ValueError for every malformed description
    assert HashRing.from_dict(ring.to_dict()) == ring
    assert HashRing.from_bytes(ring.to_bytes()) == ring


def check_hashing(data: bytes) -> None:
    """murmur3_32 and crc32 of bytes, one key and as batches, versus mmh3 and zlib."""
    seed = int.from_bytes(data[:4].ljust(4, b"\0"), "little")
    key = data[4:]
    assert murmur3_32(key, seed) == mmh3.hash(key, seed, signed=False)
    assert crc32(key) == zlib.crc32(key)
    words = [key[i : i + 7] for i in range(0, len(key), 7)]
    arr = np.array(words, dtype="S7") if words else np.zeros(0, dtype="S7")
    expect = [mmh3.hash(w.rstrip(b"\0"), seed, signed=False) for w in words]
    assert murmur3_32(arr, seed).tolist() == expect
    assert murmur3_32(words, seed).tolist() == [mmh3.hash(w, seed, signed=False) for w in words]
    assert crc32(arr).tolist() == [zlib.crc32(w.rstrip(b"\0")) for w in words]
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        return
    assert murmur3_32(text, seed) == mmh3.hash(key, seed, signed=False)
    assert murmur3_32(np.array([text]), seed).tolist() == [
        mmh3.hash(text.rstrip("\0").encode(), seed, signed=False)
    ]


_DTYPES = [
    "u1",
    "u2",
    "u4",
    "u8",
    "i1",
    "i2",
    "i4",
    "i8",
    ">u4",
    ">i8",
    "S1",
    "S5",
    "S16",
    "S33",
    "U3",
    "f4",
    "f8",
    "?",
    "c8",
    "O",
    "m8",
    "V4",
]
_RING = HashRing([f"n{i}" for i in range(7)], vnodes=13)


def check_lookup(data: bytes) -> None:
    """lookup on arrays of any dtype, shape and strides made from the bytes: the
    documented TypeError for dtypes it does not take, else the owners of the keys
    one by one."""
    if len(data) < 3:
        return
    dtype = np.dtype(_DTYPES[data[0] % len(_DTYPES)])
    body = data[3:]
    count = len(body) // dtype.itemsize if dtype.itemsize else 0
    if dtype.kind == "O":
        arr = np.array([bytes(body[i : i + 3]) for i in range(0, len(body), 3)], dtype=object)
    else:
        arr = np.frombuffer(body[: count * dtype.itemsize], dtype=dtype).copy()
    step = 1 + data[1] % 3
    arr = arr[::step]
    if data[2] % 2 and arr.size % 2 == 0 and arr.size:
        arr = arr.reshape(2, -1)
    try:
        got = _RING.lookup(arr)
    except TypeError:
        assert dtype.kind not in "iuSUO", dtype
        return
    except (ValueError, OverflowError):
        assert dtype.kind == "U", dtype  # a lone surrogate cannot be UTF-8
        return
    assert got.shape == arr.shape and got.dtype == np.int32
    flat = arr.reshape(-1)
    if dtype.kind == "S":
        one = [bytes(x) for x in flat]
    elif dtype.kind == "U":
        one = [str(x) for x in flat]
    elif dtype.kind == "O":
        one = list(flat)
    else:
        one = [int(x) for x in flat]
    assert [_RING.nodes[i] for i in got.reshape(-1)] == [_RING.get(k) for k in one]


_CHAR_MODELS = {n for n in MODELS if _core.PROXY_HASHES[n] in _core.CHAR_HASHES}


def check_proxy_hashes(data: bytes) -> None:
    """The proxies' key hashes with their flags (unsigned char, a hash tag, avalanche)
    from the first four bytes, on the rest as one key and cut into a batch, versus the
    Python models (tests/proxy_models.py)."""
    if len(data) < 4:
        return
    names = sorted(MODELS)
    name, flags, tag, key = names[data[0] % len(names)], data[1], data[2:4], data[4:]
    algo, read = _core.PROXY_HASHES[name], signed
    if flags & 1 and name in _CHAR_MODELS:
        algo, read = algo | _core.UNSIGNED_CHAR, unsigned
    if flags & 2 and 0 not in tag:
        algo = _core.with_hash_tag(algo, tag)

    def model(k: bytes) -> int:
        k = tagged(k, tag) if flags & 2 and 0 not in tag else k
        h = MODELS[name](k, read) if name in _CHAR_MODELS else MODELS[name](k)
        return full_hash(h) if flags & 4 else h

    if flags & 4:
        algo |= _core.AVALANCHE
    assert _core.hash_key(key, algo, 0) == model(key)
    words = [key[i : i + 1 + flags % 9] for i in range(0, len(key), 1 + flags % 9)]
    assert _core.hash_objects(words, algo, 0).tolist() == [model(w) for w in words]


TARGETS = {
    "from_bytes": check_from_bytes,
    "from_dict": check_from_dict,
    "hashing": check_hashing,
    "lookup": check_lookup,
    "proxy_hashes": check_proxy_hashes,
}
