"""The ring specification, checked exactly against the reference model."""

import random

import mmh3
import numpy as np
import pytest

import ringhash
from ringhash import EmptyRingError, HashRing, RingSnapshot
from ringhash._reference import ReferenceRing

rng = random.Random(7)


def random_keys(n, seed=1):
    r = random.Random(seed)
    return [f"key:{r.getrandbits(48):x}" for _ in range(n)]


def assert_same_ring(ring, ref):
    assert ring.nodes == ref.nodes
    assert ring.points.tolist() == ref.points
    assert [ring.nodes[o] for o in ring.owners] == [name for _, _, name in ref.entries]


@pytest.mark.parametrize("hash, seed", [("murmur3", 0), ("murmur3", 99), ("crc32", 0)])
def test_points_follow_the_spec(hash, seed):
    weights = {"node-a": 1.0, "node-b": 2.5, "ноды": 0.25, "z": 0.001}
    ring = HashRing(weights, vnodes=40, hash=hash, seed=seed)
    assert_same_ring(ring, ReferenceRing(weights, 40, hash, seed))
    # Point 0 of "node-a", spelled out.
    if hash == "murmur3":
        assert mmh3.hash(b"node-a#0", seed, signed=False) in ring.points.tolist()
    # count = max(1, floor(vnodes * w + 0.5)): 40, 100, 10 and (0.04 -> 0 ->) 1
    counts = np.bincount(ring.owners, minlength=len(ring))
    assert dict(zip(ring.nodes, counts.tolist(), strict=True)) == {
        "node-a": 40,
        "node-b": 100,
        "ноды": 10,
        "z": 1,
    }


def test_half_rounds_up():
    ring = HashRing({"a": 0.5, "b": 0.25}, vnodes=3)  # 1.5 -> 2 and 0.75 -> 1
    assert np.bincount(ring.owners).tolist() == [2, 1]


def test_lookup_matches_reference_single_and_batch():
    weights = {f"10.0.0.{i}:11211": 1.0 + (i % 3) for i in range(12)}
    ring = HashRing(weights, vnodes=50)
    ref = ReferenceRing(weights, 50)
    keys = random_keys(3000) + list(range(-50, 50)) + [b"\x00", b"", ""]
    expect = [ref.get(k) for k in keys]
    assert [ring.get(k) for k in keys] == expect
    assert ring.get_many(keys) == expect
    assert [ring.nodes[i] for i in ring.lookup(keys)] == expect
    assert [ring.nodes[i] for i in ring.lookup_hashes(ring.hash_keys(keys))] == expect
    ints = np.arange(-500, 500, dtype=np.int64)
    assert ring.get_many(ints) == [ref.get(int(k)) for k in ints]
    for n in (1, 2, 3, 12, 50):
        got = ring.lookup_nodes(keys[:300], n)
        assert got.shape == (300, min(n, 12))
        for k, row in zip(keys[:300], got, strict=True):
            assert [ring.nodes[i] for i in row] == ref.get_nodes(k, n)
            assert ring.get_nodes(k, n) == ref.get_nodes(k, n)


@pytest.mark.parametrize(
    "dtype",
    [
        "i1",
        "i2",
        "i4",
        "i8",
        "u1",
        "u2",
        "u4",
        "u8",
        ">i4",
        ">u2",
        ">i8",
        "S1",
        "S7",
        "S16",
        "S40",
        "S70",
    ],
)
def test_batch_lookup_of_every_array_kind_matches_reference(dtype):
    """Each array kind has its own kernel (fused int lookups, small ints widened in blocks,
    S items in vector groups): long, strided and N-D arrays all equal the reference."""
    weights = {f"shard-{i}": 1.0 + (i % 4) for i in range(9)}
    ring, ref = HashRing(weights, vnodes=40), ReferenceRing(weights, 40)
    rng = np.random.default_rng(11)
    dt = np.dtype(dtype)
    if dt.kind == "S":
        raw = rng.integers(0, 256, (1501, dt.itemsize), dtype=np.uint8)
        raw[::4, dt.itemsize // 2 :] = 0  # shorter items (trailing NULs are not part of a key)
        arr = raw.view(dt).ravel()
    else:
        info = np.iinfo(dt)
        arr = rng.integers(info.min, info.max, 1501, endpoint=True, dtype=dt.newbyteorder("="))
        arr = arr.astype(dt)
        arr[:2] = [info.min, info.max]
    expect = np.array([ring.nodes.index(ref.get(k.item())) for k in arr], dtype=np.int32)
    assert ring.lookup(arr).tolist() == expect.tolist()
    assert ring.lookup(arr[::-3]).tolist() == expect[::-3].tolist()
    assert (
        ring.lookup(arr[:1500].reshape(30, 50)).tolist() == expect[:1500].reshape(30, 50).tolist()
    )
    for n in (0, 1, 15, 17):
        assert ring.lookup(arr[:n]).tolist() == expect[:n].tolist()


@pytest.mark.parametrize(
    "make",
    [
        lambda: HashRing({f"n{i}": 1 for i in range(5)}, vnodes=30, hash="crc32"),
        lambda: HashRing.ketama({f"10.0.0.{i}:11211": 100 for i in range(5)}),
        lambda: HashRing.groupcache([f"n{i}" for i in range(5)]),
        lambda: HashRing.stathat([f"n{i}" for i in range(5)]),
    ],
    ids=["crc32", "ketama", "groupcache", "stathat"],
)
def test_s_array_lookups_on_other_hashes_and_presets(make):
    """S arrays on rings that do not take the murmur3 vector kernels (CRC-32 and MD5 keys,
    stathat's strict search) route each item like get() of its bytes."""
    ring = make()
    raw = np.random.default_rng(5).integers(0, 256, (700, 11), dtype=np.uint8)
    raw[::3, 6:] = 0  # trailing NULs: not part of the key
    keys = raw.view("S11").ravel()
    assert ring.lookup(keys).tolist() == [ring.nodes.index(ring.get(bytes(k))) for k in keys]


def test_lookup_into_an_out_buffer():
    """``out=`` gets the same owners as a fresh result, for every kind of batch, and is returned."""
    ring = HashRing({f"n{i}": 1 for i in range(7)}, vnodes=30)
    batches = [
        np.arange(-600, 600, dtype=np.int64).reshape(40, 30),
        np.arange(1200, dtype=np.uint16),
        np.array([f"k{i}".encode() for i in range(1200)]),
        [f"k{i}" for i in range(1200)],
        np.array([f"ключ{i}" for i in range(1200)]),
        np.array([f"k{i}" for i in range(1200)], dtype=object),
    ]
    for keys in batches:
        expect = ring.lookup(keys)
        out = np.full(expect.shape, -7, dtype=np.int32)
        assert ring.lookup(keys, out=out) is out
        assert np.array_equal(out, expect)
        assert ring.snapshot().lookup(keys, out=out) is out
    empty = np.empty(0, dtype=np.int32)
    assert ring.lookup(np.empty(0, dtype=np.int64), out=empty) is empty


def test_wraps_past_the_last_point():
    ring = HashRing(["a", "b", "c"], vnodes=5)
    pts = ring.points
    assert pts[-1] < 2**32 - 1  # this fixed ring ends at 4,053,806,246, below the maximum
    first_owner = ring.owners[0]
    h = [int(pts[-1]) + 1, 2**32 - 1, 0, int(pts[0])]
    assert ring.lookup_hashes(h).tolist() == [first_owner] * 4
    # A hash equal to a point belongs to that point; one above, to the next.
    mid = len(pts) // 2
    assert ring.lookup_hashes([int(pts[mid])])[0] == ring.owners[mid]
    assert ring.lookup_hashes([int(pts[mid]) + 1])[0] == ring.owners[mid + 1]


def _colliding_nodes():
    """Two node names with an equal point (a 32-bit birthday collision)."""
    names = [f"n{i}" for i in range(2000)]
    ring = HashRing(names, vnodes=100)
    pts, own = ring.points, ring.owners
    dup = np.flatnonzero((pts[1:] == pts[:-1]) & (own[1:] != own[:-1]))
    assert len(dup), "2000 x 100 points must contain a collision"
    i = int(dup[0])
    return ring.nodes[own[i]], ring.nodes[own[i + 1]], int(pts[i])


def test_equal_points_are_ordered_by_name_whatever_the_insertion_order():
    a, b, point = _colliding_nodes()
    assert a.encode() < b.encode()
    forward = HashRing([a, b], vnodes=100)
    backward = HashRing([b], vnodes=100)
    backward.add(a)
    for ring in (forward, backward):
        i = int(np.searchsorted(ring.points, point))
        assert ring.points[i] == ring.points[i + 1] == point
        assert ring.nodes[ring.owners[i]] == a and ring.nodes[ring.owners[i + 1]] == b
        # The key hashing to exactly that point belongs to the smaller name.
        assert ring.nodes[ring.lookup_hashes([point])[0]] == a
    assert np.array_equal(forward.points, backward.points)
    assert np.array_equal(forward.owners, backward.owners)
    assert_same_ring(forward, ReferenceRing({a: 1, b: 1}, 100))


def test_membership_and_state():
    ring = HashRing({"b": 2, "a": 1}, vnodes=10)
    assert ring.nodes == ("a", "b") and len(ring) == 2 and "a" in ring and list(ring) == ["a", "b"]
    assert dict(ring.weights) == {"a": 1.0, "b": 2.0}
    with pytest.raises(TypeError):
        ring.weights["a"] = 5  # read-only view
    ring.add("c", 0.5)
    assert ring.nodes == ("a", "b", "c")
    ring.set_weight("a", 3)
    assert ring.weights["a"] == 3.0 and np.bincount(ring.owners).tolist() == [30, 20, 5]
    ring.remove("b")
    assert ring.nodes == ("a", "c")
    assert_same_ring(ring, ReferenceRing({"a": 3, "c": 0.5}, 10))
    assert (ring.vnodes, ring.hash, ring.seed) == (10, "murmur3", 0)
    assert "a" in repr(ring) and "vnodes=10" in repr(ring)
    ring.remove("a")
    ring.remove("c")
    assert len(ring) == 0 and ring.points.size == 0
    with pytest.raises(EmptyRingError):
        ring.get("x")
    ring.add("d")
    assert ring.get("x") == "d"


def test_set_weight_same_point_count_keeps_points():
    ring = HashRing(["a", "b"], vnodes=10)
    before = ring.points
    ring.set_weight("a", 1.01)  # still 10 points: the arrays are shared, not rebuilt
    assert ring.weights["a"] == 1.01 and ring.points.base is before.base


def test_snapshots_are_immutable_and_independent():
    ring = HashRing(["a", "b", "c"])
    snap = ring.snapshot()
    assert isinstance(snap, RingSnapshot)
    keys = random_keys(500)
    before = snap.lookup(keys)
    ring.remove("b")
    ring.add("d")
    assert snap.nodes == ("a", "b", "c")
    assert np.array_equal(snap.lookup(keys), before)
    assert ring.snapshot() != snap
    with pytest.raises(ValueError):
        snap.points[0] = 1
    with pytest.raises(AttributeError):
        snap.foo = 1


def test_equality_ignores_insertion_order():
    r1 = HashRing(["x", "y", "z"])
    r2 = HashRing()
    for n in ("z", "x", "y"):
        r2.add(n)
    assert r1 == r2 and r1.snapshot() == r2.snapshot()
    assert hash(r1.snapshot()) == hash(r2.snapshot())
    assert np.array_equal(r1.points, r2.points) and np.array_equal(r1.owners, r2.owners)
    assert r1 != HashRing(["x", "y", "z"], seed=1)


def test_nodes_sorted_by_utf8_bytes():
    names = ["b", "a", "é", "Z", "日本", "\U0001f600", "aa"]
    ring = HashRing(names)
    assert ring.nodes == tuple(sorted(names, key=lambda s: s.encode()))


def test_lookup_shapes():
    ring = HashRing(["a", "b", "c"])
    keys = np.arange(12, dtype=np.uint32).reshape(3, 4)
    assert ring.lookup(keys).shape == (3, 4)
    assert ring.lookup(keys).dtype == np.int32
    assert ring.lookup_nodes(keys, 2).shape == (3, 4, 2)
    assert ring.lookup_nodes(["k"], 10).shape == (1, 3)
    assert ring.lookup([]).shape == (0,)
    assert ring.get_many(keys) == [ring.get(int(k)) for k in keys.ravel()]
    assert ring.lookup_hashes(ring.hash_keys(keys)).shape == (3, 4)


def test_big_ring_matches_reference_after_many_changes():
    r = random.Random(3)
    ring = HashRing(vnodes=20)
    model = {}
    for _step in range(200):
        op = r.random()
        if op < 0.5 or not model:
            name = f"node{r.randrange(60)}"
            if name not in model:
                w = r.choice([0.5, 1, 2, 0.05])
                ring.add(name, w)
                model[name] = w
        elif op < 0.8:
            name = r.choice(sorted(model))
            ring.remove(name)
            del model[name]
        else:
            name = r.choice(sorted(model))
            w = r.choice([0.3, 1.7, 3])
            ring.set_weight(name, w)
            model[name] = w
    assert_same_ring(ring, ReferenceRing(model, 20))
    assert ring == HashRing(model, vnodes=20)


def test_memory_is_small():
    ring = HashRing([f"n{i}" for i in range(100)])
    snap = ring.snapshot()
    # points + owners are 8 bytes per point (plus two padding entries); below
    # 65,536 points the index is documented to cost 24 to 48 bytes per point
    # (6 to 12 buckets of 4 bytes, plus one closing entry).
    n = len(snap.points)
    ring_bytes = 8 * (n + 2)
    assert ring_bytes + 24 * n + 4 <= snap.nbytes < ring_bytes + 48 * n + 4


def test_package_exports():
    assert set(ringhash.__all__) >= {
        "HashRing",
        "RingSnapshot",
        "EmptyRingError",
        "murmur3_32",
        "crc32",
    }
    assert issubclass(EmptyRingError, LookupError)
    assert isinstance(ringhash.__version__, str)
