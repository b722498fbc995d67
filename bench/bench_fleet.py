"""The live fleet on a local redis-server (the benchmarks' own): how fast
routers converge after a join (pub/sub) and after a crash (TTL), the Redis load
of many members and routers, and the live ring's lookup speed next to a
HashRing's (no Redis access, no lock on the read path).

Groups: fleet-converge (p50 and p99 of the rounds in extra_info, which
compare.py shows), fleet-lookup; fleet-load records commands per second in
extra_info (compare.py shows the rate).
"""

import time
import uuid

import numpy as np
import pytest

import ringhash
from conftest import SMOKE, record

redis = pytest.importorskip("redis")
fleet_mod = pytest.importorskip("ringhash.fleet")


def _fleet(port, **kw):
    # one process stands in for many: room for a connection per member and router
    client = redis.Redis(port=port, max_connections=5000)
    return fleet_mod.RedisFleet(client, f"bench-{uuid.uuid4().hex[:8]}", **kw)


def _percentiles(samples):
    s = sorted(samples)
    return s[len(s) // 2], s[min(len(s) - 1, int(len(s) * 0.99))]


@pytest.mark.benchmark(group="fleet-converge")
def test_converge_after_join(benchmark, redis_port):
    fleet = _fleet(redis_port)
    ring = fleet.ring(poll_interval=1.0)
    base = fleet.join("base", ttl=30)
    waits = []

    def join_and_wait():
        # from the join call: a router may have the new epoch before join() returns
        t0 = time.perf_counter()
        m = fleet.join(f"m-{uuid.uuid4().hex[:6]}", ttl=30)
        assert ring.wait_for_epoch(m.epoch, 5)
        waits.append(time.perf_counter() - t0)
        m.leave()

    record(benchmark, "ringhash fleet: join -> every router (pub/sub)", 1)
    benchmark.pedantic(join_and_wait, rounds=5 if SMOKE else 100, iterations=1)
    p50, p99 = _percentiles(waits)
    benchmark.extra_info.update(p50_ms=p50 * 1e3, p99_ms=p99 * 1e3)
    ring.close()
    base.leave()


@pytest.mark.benchmark(group="fleet-converge")
def test_converge_after_crash(benchmark, redis_port):
    fleet = _fleet(redis_port)
    ring = fleet.ring(poll_interval=0.2)
    ttl = 0.5
    waits = []

    def crash_and_wait():
        m = fleet.join(f"c-{uuid.uuid4().hex[:6]}", ttl=ttl)
        assert ring.wait_for_epoch(m.epoch, 5)
        m._stop.set()  # the process dies: no more renewals
        t0 = time.perf_counter()
        while m.name in ring:
            time.sleep(0.005)
        waits.append(time.perf_counter() - t0)

    record(benchmark, f"ringhash fleet: crash -> gone everywhere (TTL {ttl} s, poll 0.2 s)", 1)
    benchmark.pedantic(crash_and_wait, rounds=3 if SMOKE else 20, iterations=1)
    p50, p99 = _percentiles(waits)
    benchmark.extra_info.update(p50_ms=p50 * 1e3, p99_ms=p99 * 1e3)
    ring.close()


@pytest.mark.benchmark(group="fleet-load")
def test_redis_load_of_members_and_routers(benchmark, redis_port):
    """Commands per second on Redis from N members heartbeating (TTL 10 s: every
    3.3 s) and M routers polling every second, measured from INFO commandstats."""
    members_n, routers_n = (50, 5) if SMOKE else (1000, 100)
    fleet = _fleet(redis_port)
    members = [fleet.join(f"n{i}", ttl=10.0) for i in range(members_n)]
    routers = [fleet.ring(poll_interval=1.0) for _ in range(routers_n)]
    client = redis.Redis(port=redis_port)
    window = 2.0 if SMOKE else 10.0

    def measure():
        before = client.info("stats")["total_commands_processed"]
        time.sleep(window)
        after = client.info("stats")["total_commands_processed"]
        return (after - before - 2) / window

    record(benchmark, f"{members_n} members + {routers_n} routers", 1)
    rate = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update(commands_per_second=rate)
    for r in routers:
        r.close()
    for m in members:
        m.leave()


@pytest.mark.benchmark(group="fleet-lookup")
@pytest.mark.parametrize("kind", ["HashRing", "FleetRing"])
def test_lookup(benchmark, redis_port, u64_keys, kind):
    fleet = _fleet(redis_port)
    members = [fleet.join(f"node-{i}", ttl=30) for i in range(100)]
    ring = fleet.ring(poll_interval=1.0)
    assert ring.wait_for_epoch(members[-1].epoch, 5)
    target = ring if kind == "FleetRing" else ringhash.HashRing(fleet.members())
    record(benchmark, "ringhash" if kind == "HashRing" else "ringhash FleetRing", len(u64_keys))
    out = benchmark(target.lookup, u64_keys)
    np.testing.assert_array_equal(out, ringhash.HashRing(fleet.members()).lookup(u64_keys))
    ring.close()
    for m in members:
        m.leave()
