"""Change analysis, balance and bounded loads, checked against the reference model."""

import math
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ringhash import HashRing, RingChange
from ringhash._reference import ReferenceRing
from ringhash.errors import EmptyRingError

SPACE = 2**32


def keys(n, seed=0):
    r = random.Random(seed)
    return [f"k{r.getrandbits(48)}" for _ in range(n)]


def test_adding_to_n_equal_nodes_moves_about_one_over_n_plus_one():
    for n in (4, 10, 50):
        ring = HashRing([f"n{i}" for i in range(n)])
        change = ring.add("new")
        assert isinstance(change, RingChange)
        assert abs(change.fraction - 1 / (n + 1)) < 0.35 / (n + 1)
        assert {to for _, to in change.by_pair} == {"new"}
        assert all(r.to_node == "new" for r in change.ranges)
        assert math.isclose(sum(change.by_pair.values()), change.fraction)


def test_ranges_agree_with_the_reference_model():
    before_w = {f"n{i}": 1 + (i % 3) * 0.5 for i in range(6)}
    after_w = {**before_w, "x": 2.0}
    del after_w["n2"]
    before, after = HashRing(before_w, vnodes=20), HashRing(after_w, vnodes=20)
    ref_a, ref_b = ReferenceRing(before_w, 20), ReferenceRing(after_w, 20)
    change = before.diff(after)
    total = 0
    last_end = -1
    for r in change.ranges:
        assert last_end < r.start <= r.end < SPACE
        last_end = r.end
        total += r.end - r.start + 1
        for h in {r.start, r.end, (r.start + r.end) // 2}:
            pa = ref_a.entries[ref_a.position(h)][2]
            pb = ref_b.entries[ref_b.position(h)][2]
            assert (pa, pb) == (r.from_node, r.to_node)
    assert math.isclose(total / SPACE, change.fraction)
    # Every hash outside the ranges keeps its owner.
    rng = random.Random(1)
    for _ in range(3000):
        h = rng.randrange(SPACE)
        inside = any(r.start <= h <= r.end for r in change.ranges)
        same = ref_a.entries[ref_a.position(h)][2] == ref_b.entries[ref_b.position(h)][2]
        assert inside != same


def test_moved_keys_match_per_key_lookups():
    ring = HashRing([f"n{i}" for i in range(30)])
    before = ring.snapshot()
    change = ring.remove("n7")
    ks = keys(20_000)
    moved = change.moved(ks)
    expect = np.array(before.get_many(ks)) != np.array(ring.get_many(ks))
    assert np.array_equal(moved, expect)
    assert moved.any()
    arr = np.arange(50_000, dtype=np.int64).reshape(100, 500)
    m2 = change.moved(arr)
    assert m2.shape == (100, 500)
    assert np.array_equal(
        m2.ravel(), np.array(before.get_many(arr)) != np.array(ring.get_many(arr))
    )


def test_set_weight_and_diff_between_any_rings():
    ring = HashRing(["a", "b", "c"])
    change = ring.set_weight("a", 3)
    assert {frm for frm, _ in change.by_pair} <= {"b", "c"} and {
        to for _, to in change.by_pair
    } == {"a"}
    empty = HashRing()
    grow = empty.diff(ring)
    assert grow.fraction == 1.0 and {frm for frm, _ in grow.by_pair} == {None}
    assert ring.diff(ring).fraction == 0.0 and ring.diff(ring).ranges == ()
    with pytest.raises(ValueError):
        ring.diff(HashRing(["a"], seed=5))
    with pytest.raises(TypeError):
        ring.diff("ring")


@given(
    st.dictionaries(
        st.sampled_from("abcdefgh"), st.sampled_from([0.5, 1, 2]), min_size=1, max_size=6
    ),
    st.integers(1, 12),
)
def test_shares_are_exact_arc_lengths(w, vnodes):
    ring = HashRing(w, vnodes=vnodes)
    ref = ReferenceRing(w, vnodes)
    got = ring.shares()
    expect = dict.fromkeys(w, 0)
    pts = ref.points
    for i, (p, _, name) in enumerate(ref.entries):
        prev = pts[i - 1] if i else pts[-1] - SPACE
        expect[name] += p - prev
    assert got.keys() == expect.keys()
    for name in w:
        assert got[name] == pytest.approx(expect[name] / SPACE, abs=1e-12)
    assert sum(got.values()) == pytest.approx(1.0)


def test_shares_match_routed_keys_for_every_rule():
    hashes = np.random.default_rng(3).integers(0, SPACE, 400_000, dtype=np.uint64).astype(np.uint32)
    for ring in (
        HashRing({"a": 1, "b": 2, "c": 0.3}, vnodes=8),
        HashRing.stathat(["a", "b", "c"], 4),
        HashRing.groupcache(["a", "b", "c"], 4),
    ):
        counts = np.bincount(ring.lookup_hashes(hashes), minlength=len(ring)) / len(hashes)
        assert np.allclose(list(ring.shares().values()), counts, atol=0.005)


def test_balance_and_load():
    ring = HashRing({"a": 1, "b": 1, "c": 2})
    bal = ring.balance()
    assert bal.min_to_mean <= 1 <= bal.peak_to_mean and bal.cv >= 0 and bal.nodes == 3
    ks = keys(30_000)
    load = ring.load(ks)
    assert sum(load.values()) == 30_000
    assert load == {n: ring.get_many(ks).count(n) for n in ring.nodes}
    few = HashRing([f"n{i}" for i in range(20)], vnodes=4).balance()
    many = HashRing([f"n{i}" for i in range(20)], vnodes=400).balance()
    assert many.cv < few.cv


def test_servers_that_take_no_keys():
    """A preset's servers that take no keys by their configuration (nginx down,
    HAProxy disabled, weight 0 or backup) own no point, and balance and bounded loads
    are measured over the others: the same as the ring without them."""
    ks = keys(20_000)
    cases = [
        (
            HashRing.nginx([("a:1", 1), ("b:1", 2), ("c:1", 1, True)]),
            HashRing.nginx([("a:1", 1), ("b:1", 2)]),
        ),
        (
            HashRing.haproxy([("a", 1), ("b", 0), ("c", 1, None, True), ("d", 2, 4)]),
            HashRing.haproxy([("a", 1), ("d", 2, 4)]),
        ),
    ]
    for ring, without in cases:
        assert ring.balance() == without.balance()
        got = [ring.nodes[i] for i in ring.assign_bounded(ks, 1.1)]
        assert got == [without.nodes[i] for i in without.assign_bounded(ks, 1.1)]
    with pytest.raises(EmptyRingError, match="no node of the ring has a point"):
        HashRing.nginx([("a:1", 1, True)]).balance()


def reference_bounded(ring, ks, factor):
    ref = ReferenceRing(dict(ring.weights), ring.vnodes)
    total = sum(ring.weights.values())
    caps = {n: math.ceil(factor * len(ks) * w / total) for n, w in ring.weights.items()}
    counts = dict.fromkeys(ring.weights, 0)
    out = []
    for k in ks:
        start = ref.position(ref.hash_key(k))
        for step in range(len(ref.entries)):
            name = ref.entries[(start + step) % len(ref.entries)][2]
            if counts[name] < caps[name]:
                counts[name] += 1
                out.append(name)
                break
    return out, caps


@pytest.mark.parametrize("factor", [1.0, 1.1, 1.25, 2.0])
def test_bounded_loads_match_reference_and_respect_caps(factor):
    ring = HashRing({"a": 1, "b": 1, "c": 2, "d": 0.5}, vnodes=10)
    ks = keys(3000, seed=int(factor * 10))
    got = [ring.nodes[i] for i in ring.assign_bounded(ks, factor)]
    expect, caps = reference_bounded(ring, ks, factor)
    assert got == expect
    for name, cap in caps.items():
        assert got.count(name) <= cap


def test_large_factor_equals_lookup():
    ring = HashRing([f"n{i}" for i in range(50)])
    ks = np.arange(100_000, dtype=np.uint64)
    assert np.array_equal(ring.assign_bounded(ks, 1e6), ring.lookup(ks))
    assert ring.assign_bounded(ks.reshape(100, 1000), 1e6).shape == (100, 1000)


@pytest.mark.parametrize(
    "factor, exc",
    [
        (0.9, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("2", TypeError),
        (True, TypeError),
    ],
)
def test_bad_load_factor(factor, exc):
    with pytest.raises(exc):
        HashRing(["a"]).assign_bounded(["k"], factor)
