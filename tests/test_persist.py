"""Persistence: pickle, to_dict/from_dict and to_bytes/from_bytes round trips, and
clean rejection of truncated, corrupted or foreign input (fuzzed)."""

import json
import pickle
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ringhash import HashRing, RingSnapshot

RINGS = {
    "default": lambda: HashRing({"a": 1, "b": 2.5, "ключ": 0.5}, vnodes=40, seed=7),
    "crc32": lambda: HashRing(["x", "y"], hash="crc32"),
    "empty": lambda: HashRing(),
    "ketama": lambda: HashRing.ketama({"10.0.0.1:11211": 600, "10.0.0.2:11211": 300}),
    "groupcache": lambda: HashRing.groupcache(["n1", "n2", "n3"], replicas=7),
    "stathat": lambda: _stathat(),
}


def _stathat():
    ring = HashRing.stathat(["a", "b", "c"], replicas=5)
    ring.remove("b")
    return ring


def same(r1, r2):
    assert r1 == r2
    assert r1.preset == r2.preset and r1.nodes == r2.nodes
    assert np.array_equal(r1.points, r2.points) and np.array_equal(r1.owners, r2.owners)
    keys = [f"k{i}" for i in range(200)]
    if len(r1):
        assert r1.get_many(keys) == r2.get_many(keys)


@pytest.mark.parametrize("kind", RINGS)
def test_round_trips(kind):
    ring = RINGS[kind]()
    same(pickle.loads(pickle.dumps(ring)), ring)
    snap = pickle.loads(pickle.dumps(ring.snapshot()))
    assert isinstance(snap, RingSnapshot) and snap == ring.snapshot()
    same(HashRing._of(snap), ring)
    d = ring.to_dict()
    assert json.loads(json.dumps(d)) == d  # JSON-safe
    same(HashRing.from_dict(json.loads(json.dumps(d))), ring)
    same(HashRing.from_bytes(ring.to_bytes()), ring)
    same(HashRing._of(RingSnapshot.from_bytes(bytearray(ring.snapshot().to_bytes()))), ring)
    same(HashRing.from_bytes(memoryview(ring.to_bytes())), ring)


def test_loaded_ring_keeps_working():
    ring = HashRing([f"n{i}" for i in range(50)])
    loaded = HashRing.from_bytes(ring.to_bytes())
    loaded.add("new")
    ring.add("new")
    same(loaded, ring)


def test_from_bytes_does_not_hash(monkeypatch):
    import ringhash._core as core

    ring = HashRing([f"n{i}" for i in range(20)])
    blob = ring.to_bytes()

    def boom(*a, **k):
        raise AssertionError("hashed while loading")

    import ringhash.ring as ring_mod

    # The two ways a ring hashes node names: a whole build, and one node's points.
    monkeypatch.setattr(ring_mod.RingSnapshot, "_build", boom)
    monkeypatch.setattr(ring_mod._core, "node_points", boom)
    same(HashRing.from_bytes(blob), ring)
    assert core is ring_mod._core


def test_dict_describes_the_ring():
    d = HashRing({"a": 2}, vnodes=10, seed=3).to_dict()
    assert d == {
        "format": "ringhash.ring",
        "version": 1,
        "preset": None,
        "nodes": {"a": 2.0},
        "vnodes": 10,
        "hash": "murmur3",
        "seed": 3,
    }


BLOB = RINGS["default"]().to_bytes()


@pytest.mark.parametrize(
    "cut", [0, 1, 7, 8, 15, 16, 40, len(BLOB) // 2, len(BLOB) - 4, len(BLOB) - 1]
)
def test_truncated_input_is_rejected(cut):
    with pytest.raises(ValueError):
        HashRing.from_bytes(BLOB[:cut])


def test_every_single_bit_flip_is_rejected():
    for pos in range(0, len(BLOB), 7):
        for bit in (0, 5):
            bad = bytearray(BLOB)
            bad[pos] ^= 1 << bit
            with pytest.raises(ValueError):
                HashRing.from_bytes(bytes(bad))


def _reseal(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def _forge(desc, points, owners):
    header = json.dumps(desc).encode()
    body = (
        struct.pack("<8sHHI", b"RINGHASH", 1, 0, len(header))
        + header
        + struct.pack("<Q", len(points))
        + np.asarray(points, "<u4").tobytes()
        + np.asarray(owners, "<i4").tobytes()
    )
    return _reseal(body)


GOOD_DESC = {
    "format": "ringhash.ring",
    "version": 1,
    "preset": None,
    "nodes": {"a": 1.0, "b": 1.0},
    "vnodes": 2,
    "hash": "murmur3",
    "seed": 0,
}


@pytest.mark.parametrize(
    "desc, points, owners, match",
    [
        (GOOD_DESC, [5, 3, 9, 10], [0, 1, 0, 1], "sorted"),
        (GOOD_DESC, [1, 2, 3, 4], [0, 2, 0, 1], "owners"),
        (GOOD_DESC, [1, 2, 3, 4], [0, -1, 0, 1], "owners"),
        (GOOD_DESC, [1, 2, 3, 4], [0, 0, 0, 0], "owns no point"),
        (GOOD_DESC, [1, 2, 2, 4], [0, 1, 0, 1], "ordered by node name"),
        (GOOD_DESC, [], [], "no points"),
        ({**GOOD_DESC, "version": 2}, [1, 2], [0, 1], "version"),
        ({**GOOD_DESC, "format": "other"}, [1, 2], [0, 1], "format"),
        ({**GOOD_DESC, "nodes": ["a", "b"]}, [1, 2], [0, 1], "malformed"),
        ({**GOOD_DESC, "hash": "sha1"}, [1, 2], [0, 1], "hash"),
        ({**GOOD_DESC, "vnodes": -1}, [1, 2], [0, 1], "vnodes"),
        ({k: v for k, v in GOOD_DESC.items() if k != "seed"}, [1, 2], [0, 1], "malformed"),
        (
            {
                "format": "ringhash.ring",
                "version": 1,
                "preset": "stathat",
                "state": {"replicas": 2, "ops": [["remove", "a"]]},
            },
            [1],
            [0],
            "out of turn",
        ),
        (
            {"format": "ringhash.ring", "version": 1, "preset": "nope", "state": {}},
            [1],
            [0],
            "preset",
        ),
        ([1, 2, 3], [1], [0], "dict"),
    ],
)
def test_structurally_bad_input_is_rejected(desc, points, owners, match):
    with pytest.raises(ValueError, match=match):
        HashRing.from_bytes(_forge(desc, points, owners))


def test_foreign_and_wrongly_typed_input():
    for blob in (
        b"",
        b"\x00" * 64,
        b"PK\x03\x04" + b"\x00" * 40,
        pickle.dumps([1, 2, 3]),
        b"RINGHASH" + b"\xff" * 40,
    ):
        with pytest.raises(ValueError):
            HashRing.from_bytes(blob)
    bad_version = bytearray(BLOB[:-4])
    bad_version[8:10] = struct.pack("<H", 9)
    with pytest.raises(ValueError, match="version"):
        HashRing.from_bytes(_reseal(bytes(bad_version)))
    bad_header = BLOB[:16] + b"{not json" + BLOB[25:-4]
    with pytest.raises(ValueError):
        HashRing.from_bytes(_reseal(bad_header))
    for wrong in ("text", 5, None, [1, 2]):
        with pytest.raises(TypeError):
            HashRing.from_bytes(wrong)
    for wrong in (
        None,
        [],
        "x",
        {"format": "ringhash.ring"},
        {"format": "ringhash.ring", "version": 1},
    ):
        with pytest.raises(ValueError):
            HashRing.from_dict(wrong)


@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data):
    with pytest.raises(ValueError):
        HashRing.from_bytes(data)


@given(st.binary(min_size=1, max_size=8), st.integers(0, len(BLOB) - 1), st.booleans())
def test_fuzz_spliced_bytes(junk, pos, reseal):
    bad = BLOB[:pos] + junk + BLOB[pos + len(junk) :]
    if reseal:  # a valid checksum over corrupted structure must still be caught
        bad = _reseal(bad[:-4])
    if bad == BLOB:
        return
    try:
        ring = HashRing.from_bytes(bad)
    except ValueError:
        return
    # The only way to load is to still be a valid ring: then it must work.
    if len(ring):
        ring.get_many(["a", "b", "c"])
        assert ring.points.tolist() == sorted(ring.points.tolist())
