"""Ring benchmarks: ringhash and its peers, measured in the same run.

Groups: lookup-uint64, lookup-str, lookup-batch, get-single, replicas-single,
replicas-batch, crowded, crowded-names, build, membership, threads.
Every benchmark records its peer and keys per call; bench/compare.py turns a
run into the ns-per-key table with ratios to ringhash.
"""

import threading

import numpy as np
import pytest

import ringhash
from conftest import BATCH, BATCH_SIZES, RING_SIZES, SINGLE, SLOW_BATCH, SMOKE, record
from peers import (
    FASTRING_REASON,
    BisectRing,
    NumpyBaseline,
    fastring,
    fastring_ring,
    jump,
    node_names,
    uhashring,
    uhashring_ring,
)

needs_fastring = pytest.mark.skipif(fastring is None, reason=FASTRING_REASON)
needs_uhashring = pytest.mark.skipif(uhashring is None, reason="uhashring is not installed")
needs_jump = pytest.mark.skipif(jump is None, reason="jump-consistent-hash is not installed")

sizes = pytest.mark.parametrize("nodes", RING_SIZES)


# ------------------------------------------------------------------ lookup-uint64


@pytest.mark.benchmark(group="lookup-uint64")
@sizes
@pytest.mark.parametrize("dtype", ["uint64", "int64", "uint32", "S16"])
def test_ringhash_lookup_array(benchmark, u64_keys, nodes, dtype):
    ring = ringhash.HashRing(node_names(nodes))
    if dtype == "S16":
        keys = np.char.zfill(u64_keys.astype("U20"), 16).astype("S16")  # 16-byte digit strings
    else:
        keys = u64_keys.astype(dtype)
    record(
        benchmark,
        "ringhash" if dtype == "uint64" else f"ringhash ({dtype})",
        len(keys),
        nodes=nodes,
    )
    out = benchmark(ring.lookup, keys)
    assert out.shape == keys.shape


@pytest.mark.benchmark(group="lookup-uint64")
@sizes
@pytest.mark.parametrize("mixer", ["murmur3", "fmix64"])
def test_numpy_lookup_uint64(benchmark, u64_keys, nodes, mixer):
    ring = NumpyBaseline(node_names(nodes))
    if mixer == "murmur3":
        record(benchmark, "numpy baseline (murmur3 in numpy)", len(u64_keys), nodes=nodes)
        benchmark(ring.lookup_u64_murmur3, u64_keys)
    else:
        record(
            benchmark, "numpy baseline (fmix64 mixer, a different hash)", len(u64_keys), nodes=nodes
        )
        benchmark(ring.lookup_u64, u64_keys)


@needs_jump
@pytest.mark.benchmark(group="lookup-uint64")
@sizes
def test_jump_uint64(benchmark, u64_keys, nodes):
    keys = u64_keys[:SLOW_BATCH].tolist()
    record(benchmark, "jump-consistent-hash (per key)", len(keys), nodes=nodes)
    benchmark(lambda: [jump.hash(k, nodes) for k in keys])


# ------------------------------------------------------------------ lookup-str


@pytest.mark.benchmark(group="lookup-str")
@sizes
@pytest.mark.parametrize("alphabet", ["ascii", "non-ascii"])
def test_ringhash_lookup_str(benchmark, str_keys, nonascii_keys, nodes, alphabet):
    ring = ringhash.HashRing(node_names(nodes))
    keys = str_keys if alphabet == "ascii" else nonascii_keys
    record(
        benchmark,
        "ringhash" if alphabet == "ascii" else "ringhash (non-ASCII)",
        len(keys),
        nodes=nodes,
    )
    benchmark(ring.lookup, keys)


@pytest.mark.benchmark(group="lookup-str")
@sizes
def test_numpy_lookup_str(benchmark, str_keys, nodes):
    ring = NumpyBaseline(node_names(nodes))
    record(benchmark, "numpy baseline", len(str_keys), nodes=nodes)
    benchmark(ring.lookup_str, str_keys)


@needs_fastring
@pytest.mark.benchmark(group="lookup-str")
@sizes
def test_fastring_batch(benchmark, str_keys, nodes):
    ring = fastring_ring(node_names(nodes))
    record(benchmark, "fastring get_node_batch", len(str_keys), nodes=nodes)
    benchmark(ring.get_node_batch, str_keys)


@pytest.mark.benchmark(group="lookup-str")
@sizes
def test_bisect_str(benchmark, str_keys, nodes):
    ring = BisectRing(node_names(nodes))
    keys = str_keys[:SLOW_BATCH]
    record(benchmark, "mmh3 + bisect", len(keys), nodes=nodes)
    benchmark(lambda: [ring.get(k) for k in keys])


@needs_uhashring
@pytest.mark.benchmark(group="lookup-str")
@sizes
def test_uhashring_str(benchmark, str_keys, nodes):
    ring = uhashring_ring(node_names(nodes))
    keys = str_keys[:SLOW_BATCH]
    record(benchmark, "uhashring get_node", len(keys), nodes=nodes)
    benchmark(lambda: [ring.get_node(k) for k in keys])


# ------------------------------------------------------------------ lookup-batch

# Batch sizes from 100 keys (where the fixed cost of a call shows) to the 1M of
# the groups above, on the 100-node ring.
batches = pytest.mark.parametrize("batch", BATCH_SIZES)


@pytest.mark.benchmark(group="lookup-batch")
@batches
@pytest.mark.parametrize("kind", ["uint64", "str"])
def test_ringhash_lookup_batch(benchmark, u64_keys, str_keys, batch, kind):
    ring = ringhash.HashRing(node_names(100))
    keys = u64_keys[:batch] if kind == "uint64" else str_keys[:batch]
    record(
        benchmark,
        "ringhash" if kind == "uint64" else "ringhash (str list)",
        len(keys),
        nodes=100,
        batch=batch,
    )
    benchmark(ring.lookup, keys)


@pytest.mark.benchmark(group="lookup-batch")
@batches
@pytest.mark.parametrize("kind", ["uint64", "str"])
def test_numpy_lookup_batch(benchmark, u64_keys, str_keys, batch, kind):
    ring = NumpyBaseline(node_names(100))
    if kind == "uint64":
        record(benchmark, "numpy baseline (murmur3 in numpy)", batch, nodes=100, batch=batch)
        benchmark(ring.lookup_u64_murmur3, u64_keys[:batch])
    else:
        record(benchmark, "numpy baseline (str list)", batch, nodes=100, batch=batch)
        benchmark(ring.lookup_str, str_keys[:batch])


@needs_fastring
@pytest.mark.benchmark(group="lookup-batch")
@batches
def test_fastring_lookup_batch(benchmark, str_keys, batch):
    ring = fastring_ring(node_names(100))
    record(benchmark, "fastring get_node_batch (str list)", batch, nodes=100, batch=batch)
    benchmark(ring.get_node_batch, str_keys[:batch])


# ------------------------------------------------------------------ get-single
# One key per call, as a request router does; a loop of SINGLE calls per round.


@pytest.mark.benchmark(group="get-single")
def test_ringhash_get(benchmark, str_keys):
    ring = ringhash.HashRing(node_names(100))
    keys, get = str_keys[:SINGLE], ring.get
    record(benchmark, "ringhash", len(keys), nodes=100)
    benchmark(lambda: [get(k) for k in keys])


@needs_fastring
@pytest.mark.benchmark(group="get-single")
def test_fastring_get(benchmark, str_keys):
    ring = fastring_ring(node_names(100))
    keys, get = str_keys[:SINGLE], ring.get_node
    record(benchmark, "fastring get_node", len(keys), nodes=100)
    benchmark(lambda: [get(k) for k in keys])


@needs_uhashring
@pytest.mark.benchmark(group="get-single")
def test_uhashring_get(benchmark, str_keys):
    ring = uhashring_ring(node_names(100))
    keys, get = str_keys[:SINGLE], ring.get_node
    record(benchmark, "uhashring get_node", len(keys), nodes=100)
    benchmark(lambda: [get(k) for k in keys])


@pytest.mark.benchmark(group="get-single")
def test_bisect_get(benchmark, str_keys):
    ring = BisectRing(node_names(100))
    keys, get = str_keys[:SINGLE], ring.get
    record(benchmark, "mmh3 + bisect", len(keys), nodes=100)
    benchmark(lambda: [get(k) for k in keys])


# ------------------------------------------------------------------ replicas-single
# A cache client reading a key's replicas once per request: the result is used and
# dropped (keeping 20,000 result lists alive would charge the garbage collector's
# scans of them to the call). The get() row is measured the same way, as the ratio base.


def _each(fn, keys, *args):
    def run():
        for k in keys:
            fn(k, *args)

    return run


@pytest.mark.benchmark(group="replicas-single")
def test_ringhash_get_per_request(benchmark, str_keys):
    ring = ringhash.HashRing(node_names(100))
    keys = str_keys[:SINGLE]
    record(benchmark, "ringhash", len(keys), nodes=100)
    benchmark(_each(ring.get, keys))


@pytest.mark.benchmark(group="replicas-single")
@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_ringhash_get_nodes(benchmark, str_keys, n):
    ring = ringhash.HashRing(node_names(100))
    keys = str_keys[:SINGLE]
    record(benchmark, f"ringhash get_nodes(key, {n})", len(keys), nodes=100)
    benchmark(_each(ring.get_nodes, keys, n))


@needs_uhashring
@pytest.mark.benchmark(group="replicas-single")
def test_uhashring_range(benchmark, str_keys):
    ring = uhashring_ring(node_names(100))
    keys = str_keys[: SINGLE // 10]  # tens of µs a call
    record(benchmark, "uhashring list(range(key, size=3))", len(keys), nodes=100)
    benchmark(_each(lambda k: list(ring.range(k, size=3)), keys))  # range() is a generator


# ------------------------------------------------------------------ replicas-batch


@pytest.mark.benchmark(group="replicas-batch")
def test_ringhash_lookup_for_replicas(benchmark, u64_keys):
    ring = ringhash.HashRing(node_names(100))
    record(benchmark, "ringhash", len(u64_keys), nodes=100)
    benchmark(ring.lookup, u64_keys)


@pytest.mark.benchmark(group="replicas-batch")
@pytest.mark.parametrize("n", [1, 2, 3, 8, 16])
def test_ringhash_lookup_nodes(benchmark, u64_keys, n):
    ring = ringhash.HashRing(node_names(100))
    record(benchmark, f"ringhash lookup_nodes(keys, {n})", len(u64_keys), nodes=100)
    benchmark(ring.lookup_nodes, u64_keys, n)


# ------------------------------------------------------------------ crowded
# A ring whose points were crafted (from_bytes trusts a file's points): 65,534 points
# packed into 1/256 of the hash space, a run of 512 crowded index buckets, next to a
# ring of hashed points of the same size and a plain binary search over the crafted
# points (numpy searchsorted, after the same hashing).

CROWDED_POINTS = 65_534
ARC = 1 << 24


@pytest.fixture(scope="module")
def crowded():
    from ringhash import persist

    names = node_names(100)
    normal = ringhash.HashRing(names, vnodes=CROWDED_POINTS // 100)
    rng = np.random.default_rng(3)
    pts = np.sort(rng.integers(2**31, 2**31 + ARC, CROWDED_POINTS, dtype=np.uint64)).astype(
        np.uint32
    )
    owners = np.arange(CROWDED_POINTS, dtype=np.int32) % 100
    order = np.lexsort((owners, pts))
    blob = persist.encode(normal.to_dict(), pts[order], owners[order])
    crafted = ringhash.HashRing.from_bytes(blob)
    keys = np.arange(BATCH * 300, dtype=np.uint64)  # int keys whose hash lands in the arc
    h = ringhash.murmur3_32(keys)
    aimed = keys[(h >= 2**31) & (h < 2**31 + ARC)][: max(1, BATCH // 100)]
    return normal, crafted, aimed


@pytest.mark.benchmark(group="crowded")
@pytest.mark.parametrize(
    "ring_kind, keys_kind",
    [
        ("hashed points", "random keys"),
        ("crafted points", "random keys"),
        ("crafted points", "keys aimed at the run"),
    ],
)
def test_ringhash_crowded(benchmark, crowded, u64_keys, ring_kind, keys_kind):
    normal, crafted, aimed = crowded
    ring = normal if ring_kind == "hashed points" else crafted
    keys = u64_keys if keys_kind == "random keys" else aimed
    peer = "ringhash" if ring_kind == "hashed points" else f"ringhash, {ring_kind}, {keys_kind}"
    record(benchmark, peer, len(keys), nodes=CROWDED_POINTS)
    benchmark(ring.lookup, keys)


@pytest.mark.benchmark(group="crowded")
def test_ringhash_crowded_hashes(benchmark, crowded):
    """The hash-then-search path (lists, crc32 rings, the stathat rule) on the run."""
    _, crafted, aimed = crowded
    hashes = ringhash.murmur3_32(aimed)
    record(
        benchmark,
        "ringhash lookup_hashes, crafted points, keys aimed at the run",
        len(aimed),
        nodes=CROWDED_POINTS,
    )
    benchmark(crafted.lookup_hashes, hashes)


NAMED_POINTS = 4096


@pytest.fixture(scope="module")
def crowded_by_names():
    """Node names chosen (by brute force over "n<i>") so that their single points
    (vnodes=1) fall in 1/256 of the hash space, as a user who picks names could;
    next to a ring of as many names not chosen."""
    want = 256 if SMOKE else NAMED_POINTS
    found: list[bytes] = []
    start = 0
    while len(found) < want:
        ids = np.arange(start, start + 1_000_000).astype("S10")
        points = ringhash.murmur3_32(np.char.add(np.char.add(b"n", ids), b"#0"))
        hit = (points >= 2**31) & (points < 2**31 + ARC)
        found.extend(b"n" + i for i in ids[hit].tolist())
        start += 1_000_000
    chosen = ringhash.HashRing([f.decode() for f in found[:want]], vnodes=1)
    plain = ringhash.HashRing([f"plain-{i}" for i in range(want)], vnodes=1)
    keys = np.arange(BATCH * 300, dtype=np.uint64)
    h = ringhash.murmur3_32(keys)
    aimed = keys[(h >= 2**31) & (h < 2**31 + ARC)][: max(1, BATCH // 100)]
    return chosen, plain, aimed


@pytest.mark.benchmark(group="crowded-names")
@pytest.mark.parametrize("ring_kind", ["names not chosen", "names chosen to crowd one arc"])
def test_ringhash_crowded_names(benchmark, crowded_by_names, ring_kind):
    chosen, plain, aimed = crowded_by_names
    ring = plain if ring_kind == "names not chosen" else chosen
    peer = "ringhash" if ring_kind == "names not chosen" else f"ringhash, {ring_kind}"
    record(benchmark, peer, len(aimed), nodes=len(ring))
    benchmark(ring.lookup, aimed)


@pytest.mark.benchmark(group="crowded-names")
def test_searchsorted_crowded_names(benchmark, crowded_by_names):
    chosen, _, aimed = crowded_by_names
    record(
        benchmark, "murmur3_32 + numpy searchsorted, chosen names", len(aimed), nodes=len(chosen)
    )
    benchmark(_searchsorted_owners, chosen, aimed)


@pytest.mark.benchmark(group="crowded-names")
def test_ringhash_crowded_names_get(benchmark, crowded_by_names):
    chosen, _, aimed = crowded_by_names
    keys = [int(k) for k in aimed[:SINGLE]]
    record(benchmark, "ringhash get(), chosen names", len(keys), nodes=len(chosen))
    get = chosen.get
    benchmark(lambda: [get(k) for k in keys])


def _searchsorted_owners(ring, keys):
    """What a numpy user would write: the ring's hash, then a binary search over its points."""
    pos = np.searchsorted(ring.points, ringhash.murmur3_32(keys))
    pos[pos == len(ring.points)] = 0
    return ring.owners[pos]


@pytest.mark.benchmark(group="crowded")
def test_searchsorted_crowded(benchmark, crowded):
    _, crafted, aimed = crowded
    record(
        benchmark,
        "murmur3_32 + numpy searchsorted, keys aimed at the run",
        len(aimed),
        nodes=CROWDED_POINTS,
    )
    benchmark(_searchsorted_owners, crafted, aimed)


@pytest.mark.benchmark(group="crowded")
@pytest.mark.parametrize("ring_kind", ["hashed points", "crafted points"])
def test_ringhash_crowded_get(benchmark, crowded, ring_kind):
    normal, crafted, aimed = crowded
    ring = normal if ring_kind == "hashed points" else crafted
    keys = [int(k) for k in aimed[:SINGLE]]
    record(
        benchmark,
        f"ringhash get(), {ring_kind}, keys aimed at the run",
        len(keys),
        nodes=CROWDED_POINTS,
    )
    get = ring.get
    benchmark(lambda: [get(k) for k in keys])


# ------------------------------------------------------------------ build (1,000 nodes x 160)


@pytest.mark.benchmark(group="build")
def test_ringhash_build(benchmark):
    names = node_names(1000)
    record(benchmark, "ringhash", 1, nodes=1000)
    ring = benchmark(ringhash.HashRing, names)
    assert len(ring.points) == 160_000


@pytest.mark.benchmark(group="build")
def test_numpy_build(benchmark):
    names = node_names(1000)
    record(benchmark, "numpy baseline", 1, nodes=1000)
    benchmark(NumpyBaseline, names)


@needs_uhashring
@pytest.mark.benchmark(group="build")
def test_uhashring_build(benchmark):
    names = node_names(1000)
    record(benchmark, "uhashring", 1, nodes=1000)
    benchmark.pedantic(uhashring_ring, args=(names,), rounds=3, iterations=1)


@needs_fastring
@pytest.mark.benchmark(group="build")
def test_fastring_build(benchmark):
    names = node_names(1000)
    record(benchmark, "fastring", 1, nodes=1000)
    benchmark.pedantic(fastring_ring, args=(names,), rounds=3, iterations=1)


# ------------------------------------------------------------------ membership (1,000-node ring)


@pytest.mark.benchmark(group="membership")
def test_ringhash_add_remove(benchmark):
    ring = ringhash.HashRing(node_names(1000))

    def add_remove():
        ring.add("node-new")
        ring.remove("node-new")

    record(benchmark, "ringhash add+remove", 2, nodes=1000)
    benchmark(add_remove)


@pytest.mark.benchmark(group="membership")
def test_ringhash_rebuild(benchmark):
    names = node_names(1000)
    record(benchmark, "ringhash rebuild", 1, nodes=1000)
    benchmark(ringhash.HashRing, names + ["node-new"])


@needs_uhashring
@pytest.mark.benchmark(group="membership")
def test_uhashring_add_remove(benchmark):
    ring = uhashring_ring(node_names(1000))

    def add_remove():
        ring.add_node("node-new")
        ring.remove_node("node-new")

    record(benchmark, "uhashring add+remove", 2, nodes=1000)
    benchmark.pedantic(add_remove, rounds=3, iterations=1)


@needs_fastring
@pytest.mark.benchmark(group="membership")
def test_fastring_add_remove(benchmark):
    ring = fastring_ring(node_names(1000))

    def add_remove():
        ring.add_node("node-new")
        ring.remove_node("node-new")

    record(benchmark, "fastring add+remove", 2, nodes=1000)
    benchmark(add_remove)


# ------------------------------------------------------------------ threads (GIL released)


def _two_batches(benchmark, label, lookup, keys, threads):
    """Two batches: one after the other in one thread, or one per thread at once."""

    def serial():
        lookup(keys)
        lookup(keys)

    def parallel():
        ts = [threading.Thread(target=lookup, args=(keys,)) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    record(
        benchmark,
        f"{label}, {threads} thread{'s' if threads > 1 else ''}",
        2 * len(keys),
        nodes=100,
    )
    benchmark(serial if threads == 1 else parallel)


@pytest.mark.benchmark(group="threads")
@pytest.mark.parametrize("threads", [1, 2])
def test_ringhash_two_batches(benchmark, u64_keys, threads):
    ring = ringhash.HashRing(node_names(100))
    _two_batches(benchmark, "ringhash", ring.lookup, u64_keys, threads)


@pytest.mark.benchmark(group="threads")
@pytest.mark.parametrize("threads", [1, 2])
def test_numpy_two_batches(benchmark, u64_keys, threads):
    """The control: numpy releases the GIL inside each ufunc, so its baseline shows how
    much two threads of GIL-free work gain on this machine."""
    base = NumpyBaseline(node_names(100))
    _two_batches(
        benchmark, "numpy baseline (murmur3 in numpy)", base.lookup_u64_murmur3, u64_keys, threads
    )
