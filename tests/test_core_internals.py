"""Tests of the compiled ring table's internals: the index encoding, the search
rules, the batch loops' crowded-bucket pass, membership patches, argument checks.

The public API's tests are in test_ring.py and the others; these pin what
rh_ring.h documents, each against an independent numpy derivation.
"""

import numpy as np
import pytest

import ringhash
from ringhash import HashRing, _core


def _expected_index(pts, shift):
    """The bucket index as rh_ring.h describes it, derived with numpy."""
    pts = np.asarray(pts, dtype=np.uint64)
    n, nb, mask = len(pts), 1 << (32 - shift), (1 << shift) - 1
    starts = np.arange(nb + 1, dtype=np.uint64) << np.uint64(shift)
    first = np.searchsorted(pts, starts)  # position of the first point >= bucket start
    first[nb] = n
    count = first[1:] - first[:-1]
    padded = np.append(pts, np.uint64(2**32 - 1))
    t = np.where(count == 1, padded[np.minimum(first[:-1], n)] & mask, mask)
    entries = (first[:-1].astype(np.uint64) << np.uint64(shift)) | (mask - t).astype(np.uint64)
    entries = np.where(count >= 2, (n + 1) << shift, entries)  # crowded
    return np.append(entries, n << shift).astype(np.uint32)


def _table(points, rule=0):
    """A RingTable over sorted points where each point is its own node (owner = position)."""
    pts = np.sort(np.asarray(points, dtype=np.uint32))
    nodes = tuple(f"p{i}" for i in range(len(pts)))
    return _core.RingTable(pts, np.arange(len(pts), dtype=np.int32), nodes, _core.MURMUR3, 0, rule)


def _edge_rings():
    r = np.random.default_rng(5)
    big = r.integers(0, 2**32, 70_000, dtype=np.uint64)
    return {
        "one point": [12345],
        "ends of the hash space": [0, 1, 2**31, 2**32 - 2, 2**32 - 1],
        "crowded bucket": list(range(0, 4000, 37)) + [2**31 + 5, 2**32 - 1],
        "repeated points": [7, 7, 7, 2**20, 2**20, 2**32 - 1, 2**32 - 1],
        # rh_find counts up to 8 points of a crowded stretch without a branch,
        # and binary-searches longer ones: both sides of that limit
        "eight in one bucket": [100 * i for i in range(1, 9)] + [2**31],
        "nine in one bucket": [100 * i for i in range(1, 10)] + [2**31],
        "random 1,600": r.integers(0, 2**32, 1600, dtype=np.uint64).tolist(),
        "random 70,000 (sparse index)": big.tolist(),
        # A run of crowded buckets far longer than the scan for an uncrowded one
        # (RH_CROWDED_SCAN): only crafted points do this; the search then covers the
        # whole ring on that side.
        "crowded run of 400 buckets": _crowded_run(),
        "everything in one arc": list(range(2**31, 2**31 + 3 * 5000, 3)) + [5, 2**32 - 2],
    }


def _crowded_run():
    """1,600 random points, plus 3 points in each of 400 consecutive buckets (the
    index of a 2,800-point ring has 2**15 buckets of 2**17 hashes)."""
    r = np.random.default_rng(11)
    run = [(b << 17) + off for b in range(9000, 9400) for off in (5, 70_000, 130_000)]
    return r.integers(0, 2**32, 1600, dtype=np.uint64).tolist() + run


@pytest.mark.parametrize("name", list(_edge_rings()))
def test_index_encoding_is_as_documented(name):
    table = _table(_edge_rings()[name])
    n = len(table.points)
    assert table.shift == 32 - _core.index_bits(n)
    assert np.array_equal(table.index, _expected_index(table.points, table.shift))


@pytest.mark.parametrize("name", list(_edge_rings()))
def test_search_at_points_bucket_edges_and_crowded_buckets(name):
    """Every position rule: keys on, just below and just above each point, at bucket
    starts and ends, in crowded buckets and past the last point (wrap to the first)."""
    table = _table(_edge_rings()[name])
    pts = table.points.astype(np.int64)
    bucket = 1 << table.shift
    probes = np.concatenate(
        [
            pts - 1,
            pts,
            pts + 1,
            (pts >> table.shift) << table.shift,
            ((pts >> table.shift) + 1) * bucket - 1,
            [0, 1, 2**31, 2**32 - 2, 2**32 - 1],
            np.random.default_rng(1).integers(0, 2**32, 20_000),
        ]
    )
    probes = probes[(probes >= 0) & (probes < 2**32)].astype(np.uint32)
    expect = np.searchsorted(pts, probes.astype(np.int64), side="left")
    expect[expect == len(pts)] = 0  # past the last point: the first one
    assert np.array_equal(table.search(probes), expect.astype(np.int32))


@pytest.mark.parametrize("name", list(_edge_rings()))
def test_batch_lookups_redo_crowded_keys(name):
    """The batch loops search every key without a branch and then look up again the
    keys of crowded buckets: equal to one rh_find per key, for int and S keys, over
    several rounds of that fix-up (512 keys) and a batch that is not whole groups."""
    table = _table(_edge_rings()[name])
    ints = np.random.default_rng(4).integers(0, 2**64, 200_003, dtype=np.uint64)
    strs = np.char.add(b"k", ints[:50_001].astype("S15"))  # 16-byte items
    for keys, raw in ((ints, None), (strs, strs.view(np.uint8))):
        hashes = ringhash.murmur3_32(keys)
        got = (
            table.lookup_u64(keys)
            if raw is None
            else table.lookup_fixed_bytes(raw, keys.dtype.itemsize)
        )
        assert np.array_equal(got, table.search(hashes))


@pytest.mark.parametrize("name", list(_edge_rings()))
def test_with_and_without_a_node_equal_a_fresh_build(name):
    """with_node / without_node merge the points and patch the index (several points
    in one bucket, at the ends of the hash space): equal to a table built afresh."""
    base = np.asarray(_edge_rings()[name], dtype=np.uint32)
    if len(base) < 1000:  # enough other points that the index keeps its size
        base = np.concatenate(
            [base, np.random.default_rng(2).integers(0, 2**32, 1000, dtype=np.uint32)]
        )
    base.sort()
    delta = np.array([2**32 - 1, 3, 0, 40, 3, 2**31, 2**32 - 1], dtype=np.uint32)  # any order
    assert _core.index_bits(len(base) + len(delta)) == _core.index_bits(len(base))
    for rank in (0, 1):  # the new node sorts before or after the old one
        old_nodes = ("m",)
        new_nodes = ("a", "m") if rank == 0 else ("m", "z")
        small = _core.RingTable(
            base, np.zeros(len(base), dtype=np.int32), old_nodes, _core.MURMUR3, 0
        )
        big = small.with_node(delta, rank, new_nodes)
        both = np.concatenate([base, delta])
        owner = np.concatenate([np.full(len(base), 1 - rank), np.full(len(delta), rank)])
        order = np.lexsort((owner, both))
        assert np.array_equal(big.points, both[order])
        assert np.array_equal(big.owners, owner[order])
        fresh = _core.RingTable(big.points, big.owners, new_nodes, _core.MURMUR3, 0)
        assert np.array_equal(big.index, fresh.index)
        assert np.array_equal(big.index, _expected_index(big.points, big.shift))
        back = big.without_node(delta, rank, old_nodes)
        assert np.array_equal(back.points, small.points)
        assert np.array_equal(back.owners, small.owners)
        assert np.array_equal(back.index, small.index)


def test_with_node_rebuilds_the_index_when_its_size_changes():
    base = np.random.default_rng(3).integers(0, 2**32, 1000, dtype=np.uint32)
    base.sort()
    delta = np.random.default_rng(4).integers(0, 2**32, 3000, dtype=np.uint32)
    assert _core.index_bits(len(base) + len(delta)) != _core.index_bits(len(base))
    small = _core.RingTable(base, np.zeros(1000, dtype=np.int32), ("a",), _core.MURMUR3, 0)
    big = small.with_node(delta, 1, ("a", "b"))
    assert big.shift == 32 - _core.index_bits(4000)
    assert np.array_equal(big.index, _expected_index(big.points, big.shift))
    back = big.without_node(delta, 1, ("a",))
    assert np.array_equal(back.index, small.index)


def test_membership_changes_refuse_what_does_not_fit():
    table = _table([5, 6, 7])
    three = table.nodes
    with pytest.raises(ValueError, match="does not hold"):
        table.without_node([5, 9], 0, three[1:])  # 9 is not p0's point
    with pytest.raises(ValueError, match="does not hold"):
        table.without_node([6], 0, three[1:])  # 6 is p1's
    with pytest.raises(ValueError, match="rank or the new nodes"):
        table.without_node([5], 3, three[1:])
    with pytest.raises(ValueError, match="rank or the new nodes"):
        table.with_node([1], 0, three)  # one node more is needed
    with pytest.raises(ValueError, match="rank or the new nodes"):
        table.with_node([1], 5, three + ("x",))
    with pytest.raises(ValueError, match="at least one point"):
        table.with_node([], 0, ("x",) + three)
    with pytest.raises(ValueError, match="removes 1 to n - 1"):
        table.without_node([], 0, three[1:])


@pytest.mark.parametrize(
    "points, owners, match",
    [
        ([3, 2, 1], [0, 0, 0], "not sorted"),
        ([1, 1], [1, 0], "not ordered by node name"),
        ([1, 2], [0, 2], "do not index"),
        ([1, 2], [0, -1], "do not index"),
        ([1, 2], [0], "one owner per point"),
        ([], [], "1 to"),
    ],
)
def test_a_table_checks_its_arrays(points, owners, match):
    with pytest.raises(ValueError, match=match):
        _core.RingTable(
            np.array(points, dtype=np.uint32),
            np.array(owners, dtype=np.int32),
            ("a", "b"),
            _core.MURMUR3,
            0,
        )


@pytest.mark.parametrize(
    "algo, rule", [(17, 0), (-1, 0), (0x800, 0), (1 << 28, 0), (0, 3), (0, -1)]
)
def test_a_table_checks_its_hash_and_rule(algo, rule):
    with pytest.raises(ValueError, match="unknown"):
        _core.RingTable(
            np.array([1], dtype=np.uint32), np.array([0], dtype=np.int32), ("a",), algo, 0, rule
        )


@pytest.mark.parametrize("name", list(_edge_rings()))
def test_strictly_greater_rule(name):
    """RULE_GT (stathat): the first point strictly greater than the hash, in every path."""
    table = _table(_edge_rings()[name], _core.RULE_GT)
    pts = table.points.astype(np.int64)
    probes = np.concatenate(
        [pts - 1, pts, pts + 1, [0, 2**32 - 1], np.random.default_rng(8).integers(0, 2**32, 5000)]
    )
    probes = probes[(probes >= 0) & (probes < 2**32)].astype(np.uint32)
    expect = np.searchsorted(pts, probes.astype(np.int64), side="right")
    expect[expect == len(pts)] = 0
    assert np.array_equal(table.search(probes), expect.astype(np.int32))
    ints = np.random.default_rng(9).integers(0, 2**64, 3001, dtype=np.uint64)
    assert np.array_equal(table.lookup_u64(ints), table.search(ringhash.murmur3_32(ints)))


@pytest.mark.parametrize("nodes", [10, 100, 400])
def test_about_99_percent_of_keys_skip_the_search(nodes):
    """The documented effect of the index density: a key needs the binary search only
    if its bucket is crowded (holds two or more points): under 2% of keys."""
    pts = HashRing([f"node-{i}" for i in range(nodes)]).points
    shift = 32 - _core.index_bits(len(pts))
    per_bucket = np.bincount(pts >> shift, minlength=1 << (32 - shift))
    h = np.random.default_rng(nodes).integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    assert np.mean(per_bucket[h >> shift] >= 2) < 0.02


@pytest.mark.parametrize("npoints", [1, 2, 3, 1600, 16000, 16385, 65535, 65536, 160000, 2**24])
def test_index_size_is_as_documented(npoints):
    """6 to 12 buckets per point below 65,536 points; from there on the least the
    encoding allows, 2 * (points + 1) to twice that."""
    buckets = 2 ** _core.index_bits(npoints)
    if npoints < 65536:
        assert 6 * npoints <= buckets < 12 * npoints
    else:
        assert 2 * (npoints + 1) <= buckets < 4 * (npoints + 1)


@pytest.mark.parametrize("npoints", [-1, 2**30])
def test_index_bits_rejects_impossible_sizes(npoints):
    with pytest.raises(ValueError, match="points"):
        _core.index_bits(npoints)
