"""Every bad input gets a clear, specific exception, and a failed call changes nothing."""

import math
from fractions import Fraction

import numpy as np
import pytest

import ringhash
from ringhash import MAX_POINTS, EmptyRingError, HashRing


def state(ring):
    return (ring.nodes, dict(ring.weights), ring.points.copy(), ring.owners.copy())


def assert_unchanged(ring, before):
    after = state(ring)
    assert after[:2] == before[:2]
    assert np.array_equal(after[2], before[2]) and np.array_equal(after[3], before[3])


@pytest.fixture
def ring():
    return HashRing({"a": 1, "b": 2, "c": 0.5}, vnodes=20)


# ------------------------------------------------------------------ keys

BAD_KEY_TYPES = [
    None,
    1.5,
    True,
    False,
    np.bool_(True),
    np.float64(1.0),
    1j,
    object(),
    ["list"],
    ("tuple",),
    {"a": 1},
]


@pytest.mark.parametrize("key", BAD_KEY_TYPES, ids=lambda k: type(k).__name__)
def test_bad_key_types_raise_type_error(ring, key):
    with pytest.raises(TypeError):
        ring.get(key)
    if not isinstance(key, (list, tuple)):
        with pytest.raises(TypeError):
            ringhash.murmur3_32(key)
        with pytest.raises(TypeError, match=r"keys\[1\]"):
            ring.lookup(["ok", key])


@pytest.mark.parametrize("key", [2**64, -(2**63) - 1, 10**30, -(10**30)])
def test_out_of_range_ints_raise_overflow_error(ring, key):
    with pytest.raises(OverflowError, match="out of range"):
        ring.get(key)
    with pytest.raises(OverflowError, match="out of range"):
        ringhash.crc32(key)
    with pytest.raises(OverflowError, match=r"keys\[0\]"):
        ring.get_many([key])
    with pytest.raises(OverflowError):
        ring.lookup(np.array([key], dtype=object))


def test_range_edges_are_accepted(ring):
    for key in (2**64 - 1, -(2**63), 0):
        ring.get(key)


def test_unencodable_str_raises_value_error(ring):
    with pytest.raises(ValueError):
        ring.get("\ud800")
    with pytest.raises(ValueError, match=r"keys\[1\]"):
        ring.lookup(["fine", "bad \udfff"])
    with pytest.raises(ValueError, match=r"keys\[0\]"):
        ring.lookup(np.array(["bad \ud800"]))


def test_non_contiguous_memoryview_raises_type_error(ring):
    view = memoryview(np.arange(10, dtype=np.uint8))[::2]
    with pytest.raises(TypeError, match="C-contiguous"):
        ring.get(view)
    with pytest.raises(TypeError, match="C-contiguous"):
        ringhash.murmur3_32([view])


@pytest.mark.parametrize(
    "arr",
    [
        np.array([True, False]),
        np.array([1.0, 2.0]),
        np.array([1 + 2j]),
        np.array(["2024-01-01"], dtype="datetime64[D]"),
        np.array([1], dtype="timedelta64[s]"),
        np.zeros(2, dtype="V4"),
        np.zeros(2, dtype=[("a", "i4")]),
        np.array([1.0], dtype=np.float16),
    ],
    ids=lambda a: str(a.dtype),
)
def test_unsupported_dtypes_raise_type_error(ring, arr):
    for call in (
        ring.lookup,
        ring.get_many,
        ring.hash_keys,
        ringhash.murmur3_32,
        ringhash.crc32,
        lambda k: ring.lookup_nodes(k, 2),
    ):
        with pytest.raises(TypeError, match="dtype"):
            call(arr)


@pytest.mark.parametrize("batch", ["abc", b"abc", 5, {"a", "b"}, iter(["a"]), {"a": 1}])
def test_lookup_needs_a_batch(ring, batch):
    with pytest.raises(TypeError, match="batch"):
        ring.lookup(batch)
    with pytest.raises(TypeError, match="batch"):
        ring.hash_keys(batch)


def test_lookup_hashes_rejects_other_dtypes_and_values(ring):
    with pytest.raises(TypeError, match="uint32"):
        ring.lookup_hashes(np.arange(3, dtype=np.int64))
    with pytest.raises(TypeError, match="uint32"):
        ring.lookup_hashes(np.arange(3, dtype=np.uint64))
    with pytest.raises(TypeError):
        ring.lookup_hashes([1.5])
    with pytest.raises(TypeError):
        ring.lookup_hashes([True])
    with pytest.raises(TypeError):
        ring.lookup_hashes("123")
    with pytest.raises(ValueError):
        ring.lookup_hashes([2**32])
    with pytest.raises(ValueError):
        ring.lookup_hashes([-1])


@pytest.mark.parametrize(
    "make_out, exc, match",
    [
        (lambda shape: [0] * shape[0], TypeError, "numpy array"),
        (lambda shape: np.zeros(shape, dtype=np.int64), TypeError, "int32"),
        (lambda shape: np.zeros(shape, dtype=np.uint32), TypeError, "int32"),
        (lambda shape: np.zeros((shape[0] + 1,), dtype=np.int32), ValueError, "shape"),
        (lambda shape: np.zeros((1, shape[0]), dtype=np.int32), ValueError, "shape"),
        (lambda shape: np.zeros(2 * shape[0], dtype=np.int32)[::2], ValueError, "C-contiguous"),
        (lambda shape: _readonly(np.zeros(shape, dtype=np.int32)), ValueError, "read-only"),
    ],
)
@pytest.mark.parametrize(
    "keys",
    [
        np.arange(6, dtype=np.int64),
        np.arange(6, dtype=np.int16),
        np.array([b"a", b"bb", b"c", b"", b"e", b"f"]),
        ["a", 2, b"c", "d", 5, "f"],
        np.array(list("abcdef")),
    ],
    ids=["int64", "int16", "S", "list", "U"],
)
def test_lookup_rejects_bad_out_buffers(ring, keys, make_out, exc, match):
    out = make_out((6,))
    with pytest.raises(exc, match=match):
        ring.lookup(keys, out=out)


def _readonly(arr):
    arr.flags.writeable = False
    return arr


def test_lookup_out_must_not_overlap_the_keys(ring):
    keys = np.arange(6, dtype=np.int32)
    with pytest.raises(ValueError, match="overlaps"):
        ring.lookup(keys, out=keys)
    both = np.arange(12, dtype=np.int32)
    with pytest.raises(ValueError, match="overlaps"):
        ring.lookup(both[:6], out=both[3:9])


@pytest.mark.parametrize(
    "n, exc",
    [
        (0, ValueError),
        (-3, ValueError),
        (1.0, TypeError),
        (True, TypeError),
        ("2", TypeError),
        (None, TypeError),
    ],
)
def test_bad_replica_counts(ring, n, exc):
    with pytest.raises(exc):
        ring.get_nodes("k", n)
    with pytest.raises(exc):
        ring.lookup_nodes(["k"], n)


# ------------------------------------------------------------------ hashing


@pytest.mark.parametrize(
    "seed, exc",
    [
        (-1, ValueError),
        (2**32, ValueError),
        (1.0, TypeError),
        (True, TypeError),
        ("1", TypeError),
        (None, TypeError),
    ],
)
def test_bad_seeds(seed, exc):
    with pytest.raises(exc):
        ringhash.murmur3_32("k", seed)
    with pytest.raises(exc):
        HashRing(["a"], seed=seed)


# ------------------------------------------------------------------ the ring


def test_empty_ring_lookups_raise_empty_ring_error():
    ring = HashRing()
    for call in (
        lambda: ring.get("k"),
        lambda: ring.get_nodes("k", 2),
        lambda: ring.lookup(["k"]),
        lambda: ring.get_many(["k"]),
        lambda: ring.lookup_nodes(["k"], 1),
        lambda: ring.lookup_hashes([1]),
        lambda: ring.snapshot().get("k"),
    ):
        with pytest.raises(EmptyRingError):
            call()
    with pytest.raises(LookupError):
        ring.get("k")


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"hash": "md5"}, ValueError),
        ({"hash": None}, TypeError),
        ({"hash": "crc32", "seed": 1}, ValueError),
        ({"vnodes": 0}, ValueError),
        ({"vnodes": -1}, ValueError),
        ({"vnodes": 1.5}, TypeError),
        ({"vnodes": True}, TypeError),
        ({"vnodes": MAX_POINTS + 1}, ValueError),
    ],
)
def test_bad_ring_options(kwargs, exc):
    with pytest.raises(exc):
        HashRing(["a"], **kwargs)


@pytest.mark.parametrize(
    "nodes, exc",
    [
        ("abc", TypeError),
        (b"abc", TypeError),
        (5, TypeError),
        ([1], TypeError),
        ([b"a"], TypeError),
        ([""], ValueError),
        (["a", "a"], ValueError),
        (["bad\ud800"], ValueError),
        ([None], TypeError),
        ({"a": 0}, ValueError),
        ({"a": -1}, ValueError),
        ({"a": math.nan}, ValueError),
        ({"a": math.inf}, ValueError),
        ({"a": "1"}, TypeError),
        ({"a": None}, TypeError),
        ({"a": True}, TypeError),
        ({"a": 1e300}, ValueError),
        ({"a": 10**400}, ValueError),
    ],
)
def test_bad_nodes_at_construction(nodes, exc):
    with pytest.raises(exc):
        HashRing(nodes)


def test_good_weight_types():
    ring = HashRing(
        {"a": 2, "b": np.float32(0.5), "c": Fraction(3, 2), "d": np.int64(1)}, vnodes=10
    )
    assert np.bincount(ring.owners).tolist() == [20, 5, 15, 10]


@pytest.mark.parametrize(
    "node, weight, exc",
    [
        (1, 1.0, TypeError),
        ("", 1.0, ValueError),
        ("a", 1.0, ValueError),  # "a" already present
        ("x", 0, ValueError),
        ("x", -2, ValueError),
        ("x", math.nan, ValueError),
        ("x", math.inf, ValueError),
        ("x", "2", TypeError),
        ("x", None, TypeError),
        ("x", True, TypeError),
        ("x\udc80", 1.0, ValueError),
        ("x", MAX_POINTS, ValueError),  # would need MAX_POINTS * 20 points
    ],
)
def test_bad_add_leaves_ring_unchanged(ring, node, weight, exc):
    before = state(ring)
    with pytest.raises(exc):
        ring.add(node, weight)
    assert_unchanged(ring, before)


def test_total_point_limit_leaves_ring_unchanged():
    ring = HashRing({"a": 1}, vnodes=MAX_POINTS // 2)
    before = state(ring)
    with pytest.raises(ValueError, match="MAX_POINTS"):
        ring.add("b", 1.5)
    assert_unchanged(ring, before)


def test_bad_remove_and_set_weight_leave_ring_unchanged(ring):
    before = state(ring)
    with pytest.raises(KeyError):
        ring.remove("zzz")
    with pytest.raises(KeyError):
        ring.remove(5)
    with pytest.raises(KeyError):
        ring.set_weight("zzz", 1.0)
    for w, exc in [
        (0, ValueError),
        (math.nan, ValueError),
        (-1, ValueError),
        ("x", TypeError),
        (1e300, ValueError),
    ]:
        with pytest.raises(exc):
            ring.set_weight("a", w)
    assert_unchanged(ring, before)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.md5(None),
        lambda c: c.node_points(None, 3, c.MURMUR3, 0),
        lambda c: c.ketama_points(None, 2),
        lambda c: c.RingTable.from_nodes(None, np.zeros(0, np.int64), (), c.MURMUR3, 0),
        lambda c: c.RingTable(
            np.array([1], np.uint32), np.array([0], np.int32), None, c.MURMUR3, 0
        ),
    ],
)
def test_core_entry_points_reject_none(call):
    """Cython lets None through a bytes/list/tuple argument unless told not to; these
    would read past Py_None. Private entry points, refused all the same."""
    from ringhash import _core

    with pytest.raises(TypeError):
        call(_core)
