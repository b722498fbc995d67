"""The other algorithms against the ring and their Python peers, same run.

Group algorithms: 1M uint64 keys, 100 nodes (the ring is the ratio baseline).
Peers: the jump-consistent-hash package called per key, jump hash's loop
vectorized across keys with numpy (the best pure-numpy alternative), and
clandestined's RendezvousHash (a Python loop over the nodes, C murmur3) per key.
Maglev and multi-probe have no Python package to compare with.
"""

import numpy as np
import pytest

import ringhash
from conftest import SLOW_BATCH, record
from peers import clandestined, jump, node_names

NODES = 100
needs_jump = pytest.mark.skipif(jump is None, reason="jump-consistent-hash is not installed")
needs_clandestined = pytest.mark.skipif(
    clandestined is None, reason="clandestined is not installed"
)


def numpy_jump(keys: np.ndarray, buckets: int) -> np.ndarray:
    """Lamping & Veach's loop over a whole uint64 array with numpy, lanes masked as they finish."""
    key = keys.copy()
    b = np.full(len(keys), -1, dtype=np.int64)
    j = np.zeros(len(keys), dtype=np.int64)
    active = np.arange(len(keys))
    with np.errstate(over="ignore"):
        while len(active):
            b[active] = j[active]
            k = key[active] * np.uint64(2862933555777941757) + np.uint64(1)
            key[active] = k
            j[active] = ((b[active] + 1) * (float(1 << 31) / ((k >> np.uint64(33)) + 1))).astype(
                np.int64
            )
            active = active[j[active] < buckets]
    return b


ALGOS = {
    "ringhash": lambda names: ringhash.HashRing(names),
    "ringhash JumpHash": lambda names: ringhash.JumpHash(names),
    "ringhash Maglev": lambda names: ringhash.Maglev(names),
    "ringhash Rendezvous": lambda names: ringhash.Rendezvous(names),
    "ringhash Rendezvous (weights 1-3)": lambda names: ringhash.Rendezvous(
        {n: 1.0 + i % 3 for i, n in enumerate(names)}
    ),
    "ringhash MultiProbe (k=21)": lambda names: ringhash.MultiProbe(names),
}


@pytest.mark.benchmark(group="algorithms")
@pytest.mark.parametrize("name", list(ALGOS))
def test_algorithm_lookup(benchmark, u64_keys, name):
    algo = ALGOS[name](node_names(NODES))
    record(benchmark, name, len(u64_keys))
    out = benchmark(algo.lookup, u64_keys)
    assert out.shape == u64_keys.shape


@needs_jump
@pytest.mark.benchmark(group="algorithms")
def test_jump_package_per_key(benchmark, u64_keys):
    keys = u64_keys[:SLOW_BATCH].tolist()
    record(benchmark, "jump-consistent-hash (per key)", len(keys))
    benchmark(lambda: [jump.hash(k, NODES) for k in keys])


@pytest.mark.benchmark(group="algorithms")
def test_numpy_jump(benchmark, u64_keys):
    keys = u64_keys[:SLOW_BATCH]
    want = ringhash.JumpHash(node_names(NODES)).lookup(keys)
    record(benchmark, "jump hash in numpy (vectorized across keys)", len(keys))
    got = benchmark(numpy_jump, keys, NODES)
    np.testing.assert_array_equal(got, want)


@needs_clandestined
@pytest.mark.benchmark(group="algorithms")
def test_clandestined_rendezvous_per_key(benchmark, u64_keys):
    keys = u64_keys[: SLOW_BATCH // 50].tolist()  # ~40 us per key at 100 nodes
    peer = clandestined.RendezvousHash(node_names(NODES))
    record(benchmark, "clandestined RendezvousHash (per key)", len(keys))
    got = benchmark(lambda: [peer.find_node(k) for k in keys])
    assert set(got) <= set(node_names(NODES))
