"""Real threads against one shared ring: every answer comes from a complete snapshot."""

import threading

import numpy as np

from ringhash import HashRing

BASE = [f"base-{i}" for i in range(8)]
EXTRA = [f"extra-{i}" for i in range(6)]
KEYS = [f"key:{i}" for i in range(400)]
INT_KEYS = np.arange(400, dtype=np.uint64)


def test_lookups_during_membership_changes_see_whole_snapshots():
    ring = HashRing(BASE, vnodes=40)
    # Every membership the writer will pass through, with its answers.
    memberships = {}
    for k in range(len(EXTRA) + 1):
        r = HashRing(BASE + EXTRA[:k], vnodes=40)
        memberships[r.nodes] = (r.get_many(KEYS), r.get_many(INT_KEYS))
    valid_answers = {tuple(v[0]) for v in memberships.values()}
    valid_int_answers = {tuple(v[1]) for v in memberships.values()}

    stop = threading.Event()
    errors = []
    checked = [0] * 4

    def writer():
        try:
            for _ in range(60):
                for name in EXTRA:
                    ring.add(name)
                for name in reversed(EXTRA):
                    ring.remove(name)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            stop.set()

    def reader(slot):
        try:
            while not stop.is_set():
                snap = ring.snapshot()
                # One snapshot's answers must equal that membership's precomputed ones.
                assert tuple(snap.get_many(KEYS)) == tuple(memberships[snap.nodes][0])
                # Calls on the live ring each read one snapshot: any whole answer is valid.
                assert tuple(ring.get_many(KEYS)) in valid_answers
                assert tuple(ring.get_many(INT_KEYS)) in valid_int_answers
                idx = snap.lookup(INT_KEYS)
                assert [snap.nodes[i] for i in idx] == memberships[snap.nodes][1]
                assert ring.get(KEYS[slot]) in BASE + EXTRA
                checked[slot] += 1
        except BaseException as e:
            errors.append(e)
            stop.set()

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert all(c > 0 for c in checked), checked
    assert ring.nodes == tuple(BASE)


def test_concurrent_membership_changes_are_serialized():
    ring = HashRing(vnodes=30)
    names = [f"w{t}-{i}" for t in range(4) for i in range(25)]
    barrier = threading.Barrier(4)

    def work(t):
        barrier.wait()
        for i in range(25):
            ring.add(f"w{t}-{i}", 1 + (i % 3))
        for i in range(0, 25, 2):
            ring.remove(f"w{t}-{i}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expect = {n: 1.0 + (int(n.split("-")[1]) % 3) for n in names if int(n.split("-")[1]) % 2}
    assert ring == HashRing(expect, vnodes=30)
    assert np.array_equal(ring.points, HashRing(expect, vnodes=30).points)


def test_batch_lookups_from_many_threads_agree():
    ring = HashRing([f"n{i}" for i in range(50)])
    keys = np.arange(200_000, dtype=np.int64)
    expect = ring.lookup(keys)
    results = [None] * 4

    def work(i):
        results[i] = ring.lookup(keys)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        assert np.array_equal(r, expect)
