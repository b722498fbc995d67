"""Lock-table benchmarks: uncontended acquire+release and contended hand-off
latency, next to threading.Lock and filelock measured in the same run; on Redis,
uncontended pairs and one lock contended by 1, 4 and 16 processes, next to
redis-py's Lock and python-redis-lock (``lock_contention.py``)."""

import threading
import time

import pytest

import ringhash
from conftest import SMOKE, record
from lock_contention import BATON, contend

try:
    import filelock
except ImportError:  # pragma: no cover
    filelock = None

PAIRS = 1_000 if SMOKE else 20_000
HANDOFFS = 20 if SMOKE else 200


KINDS = ["ringhash LockTable", "threading.Lock", "filelock.FileLock"]


def _lock_maker(kind, tmp_path):
    """A function giving an (acquire, release) pair on one shared lock, to call once per thread."""
    if kind == "ringhash LockTable":
        table = ringhash.LockTable()
        return lambda: (lambda: table.acquire("orders:42"), lambda lease: lease.release())
    if kind == "threading.Lock":
        plain = threading.Lock()
        return lambda: (plain.acquire, lambda _: plain.release())
    if filelock is None:
        pytest.skip("filelock is not installed")
    path = str(tmp_path / "bench.lock")

    def per_thread():
        # One FileLock object per thread: the same object is reentrant, and
        # two threads sharing it would never wait for each other.
        fl = filelock.FileLock(path, thread_local=False)
        return (fl.acquire, lambda _: fl.release())

    return per_thread


@pytest.mark.benchmark(group="lock-uncontended")
@pytest.mark.parametrize("kind", KINDS)
def test_uncontended_pair(benchmark, tmp_path, kind):
    acquire, release = _lock_maker(kind, tmp_path)()

    def pairs():
        for _ in range(PAIRS):
            release(acquire())

    record(benchmark, kind, PAIRS)
    benchmark(pairs)


def _handoff_latency(make):
    """Mean ns from one thread's release to the waiting thread's acquire returning.

    The releaser sleeps briefly before each release so the other thread is
    surely blocked in acquire: every measured release is a hand-off.
    """
    stamp = [0]
    lat = []
    turn = threading.Semaphore(0)

    def waiter():
        acquire, release = make()
        for _ in range(HANDOFFS):
            turn.release()  # "I am about to block"
            held = acquire()
            lat.append(time.perf_counter_ns() - stamp[0])
            release(held)

    acquire, release = make()
    held = acquire()
    t = threading.Thread(target=waiter)
    t.start()
    for i in range(HANDOFFS):
        turn.acquire()
        time.sleep(0.0005)
        stamp[0] = time.perf_counter_ns()
        release(held)
        while len(lat) < i + 1:
            time.sleep(0)
        held = acquire()
    release(held)
    t.join()
    return sum(lat) / len(lat)


@pytest.mark.benchmark(group="lock-handoff")
@pytest.mark.parametrize("kind", KINDS)
def test_handoff(benchmark, tmp_path, kind):
    make = _lock_maker(kind, tmp_path)
    result = {}

    def run():
        result["ns"] = _handoff_latency(make)

    benchmark.pedantic(run, rounds=1, iterations=1)
    record(benchmark, kind, 1, handoff_ns=result["ns"])


REDIS_PAIRS = 50 if SMOKE else 2_000
KINDS_REDIS = ["ringhash RedisLockTable", "redis-py Lock", "python-redis-lock"]


@pytest.mark.benchmark(group="redis-uncontended")
@pytest.mark.parametrize("kind", KINDS_REDIS)
def test_redis_uncontended_pair(benchmark, redis_port, kind):
    import redis

    client = redis.Redis(port=redis_port)
    if kind == "ringhash RedisLockTable":
        from ringhash.redis_locks import RedisLockTable

        table = RedisLockTable(client, prefix="bench:")

        def pair():
            table.acquire("orders:42", ttl=30).release()
    elif kind == "redis-py Lock":
        lock = client.lock("bench:redis-py:orders:42", timeout=30)

        def pair():
            lock.acquire()
            lock.release()
    else:
        redis_lock = pytest.importorskip("redis_lock", reason="python-redis-lock is not installed")
        lock = redis_lock.Lock(client, "bench:prl:orders:42", expire=30)

        def pair():
            lock.acquire()
            lock.release()

    def pairs():
        for _ in range(REDIS_PAIRS):
            pair()

    record(benchmark, kind, REDIS_PAIRS)
    benchmark(pairs)


@pytest.mark.benchmark(group="redis-uncontended-async")
@pytest.mark.parametrize("kind", ["ringhash RedisLockTable", "redis-py asyncio Lock"])
def test_redis_uncontended_pair_async(benchmark, redis_port, kind):
    """The same through asyncio: ``async with table.lock_async(...)`` on a table given an
    asyncio client, next to redis-py's asyncio ``Lock``; one event loop for the run."""
    import asyncio

    import redis
    import redis.asyncio

    loop = asyncio.new_event_loop()
    aclient = redis.asyncio.Redis(port=redis_port)
    if kind == "ringhash RedisLockTable":
        from ringhash.redis_locks import RedisLockTable

        table = RedisLockTable(redis.Redis(port=redis_port), async_client=aclient, prefix="ba:")

        async def pair() -> None:
            async with table.lock_async("orders:42", ttl=30):
                pass
    else:
        lock = aclient.lock("ba:redis-py:orders:42", timeout=30)

        async def pair() -> None:
            await lock.acquire()
            await lock.release()

    async def pairs() -> None:
        for _ in range(REDIS_PAIRS):
            await pair()

    try:
        record(benchmark, kind, REDIS_PAIRS)
        benchmark(lambda: loop.run_until_complete(pairs()))
    finally:
        loop.run_until_complete(aclient.aclose())
        loop.close()


CONTENDED_SECONDS = 0.3 if SMOKE else 3.0


@pytest.mark.benchmark(group="redis-contended")
@pytest.mark.parametrize("procs", [1, 4, 16])
@pytest.mark.parametrize("kind", [*KINDS_REDIS, BATON])
def test_redis_contended(benchmark, redis_port, kind, procs):
    """Grants per second (as time per grant), Jain's fairness over the workers and the
    hand-off latency between different workers, p50 and p99."""
    if kind == "python-redis-lock":
        pytest.importorskip("redis_lock", reason="python-redis-lock is not installed")
    result = {}

    def run():
        result["c"] = contend(kind, procs, CONTENDED_SECONDS, redis_port)

    benchmark.pedantic(run, rounds=1, iterations=1)
    c = result["c"]
    note = f"fairness {c.fairness:.2f}"
    if c.handoff_ns:
        note += (
            f"; hand-off p50 {c.handoff(0.5) / 1e3:,.0f} µs, p99 {c.handoff(0.99) / 1e3:,.0f} µs"
        )
    note += f"; {c.cost()}"
    record(benchmark, kind, 1, procs=procs, per_ns=c.ns_per_grant, note=note)
