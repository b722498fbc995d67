"""Presets reproduce libketama, groupcache and stathat bit for bit.

The vectors in tests/data were produced by running the original
implementations (see tests/data/VECTORS.md); every case is checked through the
single-key path and every batch path.
"""

import gzip
import json
import pathlib
import random

import numpy as np
import pytest

import ringhash
from ringhash import HashRing
from ringhash.presets import ketama_digests

DATA = pathlib.Path(__file__).resolve().parent / "data"


def jsonl(name):
    with gzip.open(DATA / name, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


KETAMA = json.loads(gzip.open(DATA / "ketama.json.gz", "rt", encoding="utf-8").read())
GROUPCACHE = jsonl("groupcache.jsonl.gz")
STATHAT = jsonl("stathat.jsonl.gz")


def check_all_paths(ring, keys, expected):
    assert [ring.get(k) for k in keys] == expected
    assert ring.get_many(keys) == expected
    assert ring.get_many(tuple(keys)) == expected
    assert ring.get_many(np.array(keys, dtype=object)) == expected
    u = np.array(keys)  # 'U': trailing NULs would be stripped, so only keys without them
    ok = [i for i, k in enumerate(keys) if not k.endswith("\x00")]
    assert [ring.nodes[i] for i in ring.lookup(u[ok])] == [expected[i] for i in ok]
    s = np.array([k.encode() for k in keys], dtype=object)
    assert ring.get_many(s) == expected
    assert [ring.nodes[i] for i in ring.lookup_hashes(ring.hash_keys(keys))] == expected


@pytest.mark.parametrize("case", range(len(KETAMA)))
def test_ketama_vectors(case):
    c = KETAMA[case]
    ring = HashRing.ketama([(addr, w) for addr, w in c["servers"]])
    assert ring.preset == "ketama" and ring.hash == "md5"
    check_all_paths(ring, c["keys"], c["expected"])


@pytest.mark.parametrize("case", range(len(GROUPCACHE)))
def test_groupcache_vectors(case):
    c = GROUPCACHE[case]
    ring = HashRing.groupcache(c["nodes"], replicas=c["replicas"])
    assert ring.preset == "groupcache"
    check_all_paths(ring, c["keys"], c["expected"])
    # Adding one by one gives the same ring (insertion order is what matters).
    one_by_one = HashRing.groupcache(replicas=c["replicas"])
    for n in c["nodes"]:
        one_by_one.add(n)
    assert one_by_one == ring and np.array_equal(one_by_one.owners, ring.owners)


@pytest.mark.parametrize("case", range(len(STATHAT)))
def test_stathat_vectors(case):
    c = STATHAT[case]
    ring = HashRing.stathat(c["nodes"], replicas=c["replicas"])
    for name in c["removed"]:
        ring.remove(name)
    assert ring.preset == "stathat"
    check_all_paths(ring, c["keys"], c["expected"])
    if "n" in c:
        n = c["n"]
        assert [ring.get_nodes(k, n) for k in c["keys"]] == c["expected_n"]
        rows = ring.lookup_nodes(c["keys"], n)
        assert [[ring.nodes[i] for i in row if i >= 0] for row in rows] == c["expected_n"]


def _crc_collision(replicas=3):
    """Two node names with a colliding groupcache/stathat point (crc32(decimal(i) + name)).

    crc32 never maps two equal-length strings that differ in a short burst to
    the same value, so search random names of varying length (a birthday search).
    """
    rng = random.Random(11)
    names = list(
        {
            "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randrange(4, 14)))
            for _ in range(250_000)
        }
    )
    pts = ringhash.crc32([f"{r}{n}".encode() for n in names for r in range(replicas)])
    owner = np.repeat(np.arange(len(names)), replicas)
    order = np.argsort(pts, kind="stable")
    pts, owner = pts[order], owner[order]
    dup = np.flatnonzero((pts[1:] == pts[:-1]) & (owner[1:] != owner[:-1]))
    assert len(dup), "no crc32 collision found"
    i = int(dup[0])
    return names[owner[i]], names[owner[i + 1]], int(pts[i])


def test_groupcache_collision_goes_to_the_node_added_last():
    pair = _crc_collision()
    first, second, point = pair
    for order in ([first, second], [second, first]):
        ring = HashRing.groupcache(order, replicas=3)
        assert ring.nodes[ring.lookup_hashes([point])[0]] == order[-1]
    # stathat: the same overwrite, and removing the winner deletes the entry for both.
    ring = HashRing.stathat([first, second], replicas=3)
    assert point in ring.points.tolist()
    ring.remove(second)
    assert point not in ring.points.tolist()


def test_stathat_is_strictly_greater_and_groupcache_is_not():
    g = HashRing.groupcache(["a", "b", "c"], replicas=5)
    s = HashRing.stathat(["a", "b", "c"], replicas=5)
    assert np.array_equal(g.points, s.points)
    for i, p in enumerate(g.points.tolist()):
        nxt = (i + 1) % len(g.points)
        assert g.lookup_hashes([p])[0] == g.owners[i]  # a hash equal to a point: that point
        assert s.lookup_hashes([p])[0] == s.owners[nxt]  # stathat: the next one
    assert s.lookup_hashes([2**32 - 1])[0] == s.owners[0]


def test_ketama_share_arithmetic_matches_c_float_semantics():
    # floorf((float)((double)(float)(w/T) * 40.0 * (double)(float)N)): a case where exact
    # real arithmetic would differ is 1/3 share of 3 servers: pct=0.33333334f -> 40.0000008 -> 40
    assert ketama_digests(1, 3, 3) == 40
    assert ketama_digests(600, 1100, 3) == 65
    assert ketama_digests(100, 1000, 10) == 40
    ring = HashRing.ketama({"a:1": 600, "b:1": 300, "c:1": 200})
    counts = np.bincount(ring.owners, minlength=3)
    assert counts.tolist() == [4 * ketama_digests(w, 1100, 3) for w in (600, 300, 200)]


def test_ketama_membership_rederives_shares():
    servers = {f"10.0.0.{i}:11211": 100 for i in range(5)}
    ring = HashRing.ketama(servers)
    ring.add("10.0.0.9:11211", 300)
    expect = HashRing.ketama({**servers, "10.0.0.9:11211": 300})
    assert np.array_equal(ring.points, expect.points) and ring == expect
    ring.set_weight("10.0.0.0:11211", 50)
    ring.remove("10.0.0.9:11211")
    assert ring == HashRing.ketama({**servers, "10.0.0.0:11211": 50})


def test_ketama_agrees_with_uhashring_where_rules_agree():
    """uhashring's ketama uses integer weight arithmetic and a strict "greater than";
    with equal weights the points are the same, and keys whose hash is not exactly a
    point route the same."""
    uhashring = pytest.importorskip("uhashring")
    names = [f"cache-{i}:11211" for i in range(8)]
    ours = HashRing.ketama({n: 1 for n in names})
    theirs = uhashring.HashRing(nodes=names, hash_fn="ketama")
    assert sorted(theirs.runtime._keys) == ours.points.tolist()
    rng = random.Random(5)
    keys = [f"user:{rng.getrandbits(40)}" for _ in range(3000)]
    points = set(ours.points.tolist())
    same = [k for k in keys if ours.hash_keys([k])[0] not in points]
    assert [ours.get(k) for k in same] == [theirs.get_node(k) for k in same]


@pytest.mark.parametrize(
    "call, exc",
    [
        (lambda: HashRing.ketama({"a": 1.5}), TypeError),
        (lambda: HashRing.ketama({"a": 0}), ValueError),
        (lambda: HashRing.ketama({"a": True}), TypeError),
        (lambda: HashRing.ketama([("a", 1), ("a", 2)]), ValueError),
        (lambda: HashRing.groupcache(["a", "a"]), ValueError),
        (lambda: HashRing.groupcache("ab"), TypeError),
        (lambda: HashRing.groupcache(["a"], replicas=0), ValueError),
        (lambda: HashRing.stathat(["a"], replicas=1.5), TypeError),
        (lambda: HashRing.stathat([""]), ValueError),
    ],
)
def test_bad_preset_arguments(call, exc):
    with pytest.raises(exc):
        call()


def test_preset_membership_errors_leave_ring_unchanged():
    g = HashRing.groupcache(["a", "b"])
    with pytest.raises(ValueError):
        g.set_weight("a", 2)
    with pytest.raises(ValueError):
        g.add("c", 2.0)
    k = HashRing.ketama({"a:1": 1})
    with pytest.raises(TypeError):
        k.add("b:1", 1.5)
    assert g.nodes == ("a", "b") and k.nodes == ("a:1",)
    g.remove("a")
    assert g == HashRing.groupcache(["b"])
