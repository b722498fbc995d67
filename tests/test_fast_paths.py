"""The single-key replica path, list lookups in blocks, and lookup_nodes(keys, 1):
each equal to the reference model and to the batch path it must agree with."""

import numpy as np
import pytest

from ringhash import HashRing
from ringhash._reference import ReferenceRing

KEYS = [f"user:{i}" for i in range(1500)]


def _rings():
    weights = {f"node-{i}": 1.0 + (i % 3) for i in range(20)}
    return {
        "murmur3": HashRing(weights, vnodes=40),
        "crc32": HashRing(weights, vnodes=40, hash="crc32"),
        "ketama": HashRing.ketama({f"10.0.0.{i}:11211": 1 + i % 2 for i in range(12)}),
        "groupcache": HashRing.groupcache([f"g{i}" for i in range(12)], replicas=7),
        "stathat": HashRing.stathat([f"s{i}" for i in range(12)], replicas=5),
    }


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 9, 16, 20, 21, 10**6, 2**70])
def test_get_nodes_of_one_key_matches_the_reference(n):
    """Both walks (scanning for repeats up to 8 owners, stamps above) and the clamp."""
    weights = {f"node-{i}": 1.0 + (i % 3) for i in range(20)}
    ring, ref = HashRing(weights, vnodes=40), ReferenceRing(weights, 40)
    for key in KEYS[:300]:
        assert ring.get_nodes(key, n) == ref.get_nodes(key, min(n, 20))


@pytest.mark.parametrize("name", list(_rings()))
@pytest.mark.parametrize("n", [1, 2, 3, 9, 50])
def test_get_nodes_equals_the_batch_path_on_every_ring(name, n):
    ring = _rings()[name]
    rows = ring.lookup_nodes(KEYS[:400], n)
    for key, row in zip(KEYS[:400], rows, strict=True):
        got = ring.get_nodes(key, n)
        assert got == [ring.nodes[i] for i in row if i >= 0]
        assert got[0] == ring.get(key)


@pytest.mark.parametrize("name", list(_rings()))
def test_lookup_nodes_of_one_is_lookup(name):
    ring = _rings()[name]
    u64 = np.random.default_rng(1).integers(0, 2**64, 3000, dtype=np.uint64)
    batches = [
        KEYS,
        tuple(KEYS[:10]),
        u64,
        u64.reshape(30, 100),
        u64[:1000].astype("S20"),
        np.array(KEYS[:50]),
        np.array(KEYS[:50], dtype=object),
        [],
    ]
    for keys in batches:
        got = ring.lookup_nodes(keys, 1)
        want = ring.lookup(keys)
        assert got.shape == want.shape + (1,) and got.dtype == np.int32
        assert np.array_equal(got[..., 0], want)
        if len(ring) > 1:
            assert np.array_equal(got[..., 0], ring.lookup_nodes(keys, 2)[..., 0])


@pytest.mark.parametrize("size", [0, 1, 511, 512, 513, 1024, 1500])
def test_list_lookups_in_blocks_match_the_reference(size):
    weights = {f"node-{i}": 1.0 for i in range(30)}
    ring, ref = HashRing(weights, vnodes=30), ReferenceRing(weights, 30)
    keys = KEYS[:size] + [b"bytes", 7, -7][: 3 if size else 0]
    expect = [ref.get(k) for k in keys]
    assert [ring.nodes[i] for i in ring.lookup(keys)] == expect
    assert [ring.nodes[i] for i in ring.lookup(tuple(keys))] == expect


def test_a_bad_key_in_a_later_block_is_named_by_position():
    ring = HashRing(["a", "b"])
    keys = KEYS[:1000]
    keys[700] = 1.5
    with pytest.raises(TypeError, match=r"keys\[700\]"):
        ring.lookup(keys)
    keys[700] = 2**64
    with pytest.raises(OverflowError, match=r"keys\[700\]"):
        ring.lookup(keys)


def test_get_nodes_on_an_empty_ring_and_bad_counts():
    from ringhash import EmptyRingError

    with pytest.raises(EmptyRingError):
        HashRing().get_nodes("k", 1)
    with pytest.raises(EmptyRingError):
        HashRing().get_nodes("k", "x")  # emptiness is reported first, as before
    ring = HashRing(["a"])
    for bad, err in ((0, ValueError), (-1, ValueError), (True, TypeError), (1.0, TypeError)):
        with pytest.raises(err):
            ring.get_nodes("k", bad)
