"""Uses the whole public API with precise types; `mypy --strict` must pass on it.

It also runs (CI executes it), so the types it claims are the types returned.
"""

from __future__ import annotations

import asyncio
import pickle

import numpy as np
import numpy.typing as npt

import ringhash
from ringhash import (
    MAX_POINTS,
    Balance,
    DeadlockError,
    EmptyRingError,
    HashRing,
    Lease,
    LeaseGroup,
    LeaseLost,
    LockBackendError,
    LockError,
    LockStats,
    LockTable,
    LockTimeout,
    MovedRange,
    RingChange,
    RingSnapshot,
    crc32,
    murmur3_32,
)


def ring_api() -> None:
    ring = HashRing({"a": 1.0, "b": 2.0}, vnodes=64, hash="murmur3", seed=1)
    one: str = ring.get("user:42")
    many: list[str] = ring.get_many(["x", b"y", 3])
    idx: npt.NDArray[np.int32] = ring.lookup(np.arange(10, dtype=np.uint64))
    buf: npt.NDArray[np.int32] = np.empty(10, dtype=np.int32)
    into: npt.NDArray[np.int32] = ring.snapshot().lookup(np.arange(10), out=buf)
    reps: list[str] = ring.get_nodes("k", 2)
    table: npt.NDArray[np.int32] = ring.lookup_nodes(["k"], 2)
    hashes: npt.NDArray[np.uint32] = ring.hash_keys(["k"])
    again: npt.NDArray[np.int32] = ring.lookup_hashes(hashes)
    change: RingChange = ring.add("c", 0.5)
    fraction: float = change.fraction
    ranges: tuple[MovedRange, ...] = change.ranges
    moved: npt.NDArray[np.bool_] = change.moved(["k"])
    ring.set_weight("c", 1.5)
    ring.remove("c")
    snap: RingSnapshot = ring.snapshot()
    shares: dict[str, float] = snap.shares()
    bal: Balance = ring.balance()
    load: dict[str, int] = ring.load(["k", "l"])
    bounded: npt.NDArray[np.int32] = ring.assign_bounded(["k", "l"], 1.25)
    d = ring.to_dict()
    same: HashRing = HashRing.from_dict(d)
    blob: bytes = snap.to_bytes()
    loaded: RingSnapshot = RingSnapshot.from_bytes(blob)
    back: HashRing = pickle.loads(pickle.dumps(ring))
    diff: RingChange = snap.diff(loaded)
    preset: str | None = HashRing.ketama({"h:1": 1}).preset
    g = HashRing.groupcache(["a"], replicas=3)
    s = HashRing.stathat(["a"], replicas=3)
    h1: int = murmur3_32("k", 0)
    h2: int = crc32(b"k")
    hb: npt.NDArray[np.uint32] = murmur3_32(["k"])
    nodes: tuple[str, ...] = ring.nodes
    points: npt.NDArray[np.uint32] = ring.points
    print(
        one,
        many,
        idx,
        into is buf,
        reps,
        table,
        again,
        fraction,
        len(ranges),
        moved,
        shares,
        bal,
        load,
        bounded,
        same == ring,
        back == ring,
        diff.fraction,
        preset,
        g,
        s,
        h1,
        h2,
        hb,
        nodes,
        points.size,
        MAX_POINTS,
        ringhash.__version__,
        len(snap),
        "a" in snap,
    )
    try:
        HashRing().get("k")
    except EmptyRingError as e:
        print(e)


def lock_api() -> None:
    table = LockTable(default_ttl=None)
    lease: Lease = table.acquire("a", mode="exclusive", ttl=5.0, timeout=1.0, owner="me")
    token: int = lease.token
    remaining: float | None = lease.remaining()
    valid: bool = lease.valid
    lease.extend(10.0)
    lease.release()
    maybe: Lease | None = table.try_acquire("a")
    with table.lock("b", mode="shared") as held:
        print(held.name, held.mode, held.owner, held.expires_at)
    group: LeaseGroup = table.acquire_many(["x", "y"], ttl=2.0)
    group.release()
    stats: LockStats = table.stats()
    print(token, remaining, valid, maybe, stats.grants, table.holders("a"), table.waiting("a"))
    errors: tuple[type[LockError], ...] = (LockTimeout, LeaseLost, DeadlockError, LockBackendError)
    print(errors)

    async def main() -> None:
        got: Lease = await table.acquire_async("c", timeout=1.0)
        got.release()
        async with table.lock_async("d") as l2:
            print(l2.token)

    asyncio.run(main())


if __name__ == "__main__":
    ring_api()
    lock_api()
