"""History-checking stress test: threads and asyncio tasks hammer a few names.

Every hold is recorded and checked afterwards: no overlapping exclusive holds,
no shared/exclusive overlap, tokens increasing in grant order, and a counter
updated only under exclusive holds equals the number of those holds.
"""

import asyncio
import random
import threading
import time

import pytest

from lockhistory import Hold, check_history
from ringhash import LeaseLost, LockTimeout

NAMES = ["n0", "n1", "n2"]
THREADS = 8
TASKS = 8
ROUNDS = 150


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.holds = []
        self.counter = dict.fromkeys(NAMES, 0)
        self.counted = dict.fromkeys(NAMES, 0)
        self.timeouts = 0
        self.empty = 0  # leases that had expired before acquire even returned
        self.group_timeouts = 0  # acquire_many calls that timed out (after maybe granting a part)

    def add(self, hold):
        with self.lock:
            self.holds.append(hold)
            if hold.counted:
                self.counted[hold.name] += 1


def pick(rng):
    name = rng.choice(NAMES)
    mode = rng.choice(["exclusive", "exclusive", "shared"])
    # Long TTLs (or none) never expire inside a critical section: those holds
    # update the counter. Short ones may expire while held: they only read.
    ttl = rng.choice([None, 30.0, 30.0, 0.01])
    timeout = rng.choice([None, None, 0, 0.002, 0.05])
    return name, mode, ttl, timeout


def finish(rec, lease, requested, start, counted):
    end = time.monotonic()
    try:
        lease.release()
    except LeaseLost:
        end = lease.expires_at  # the hold ended when the lease expired
        counted = False
        if end < start:  # over before we could observe it: nothing to check
            with rec.lock:
                rec.empty += 1
            return
    rec.add(Hold(lease.name, lease.mode, lease.token, requested, start, end, counted))


def thread_worker(table, rec, seed):
    rng = random.Random(seed)
    for i in range(ROUNDS):
        if i % 25 == 0:
            requested = time.monotonic()
            try:
                group = table.acquire_many(["n0", "n2"], ttl=30.0, timeout=1.0)
            except LockTimeout:
                with rec.lock:
                    rec.timeouts += 1
                    rec.group_timeouts += 1
                continue
            start = time.monotonic()
            for lease in group:
                finish(rec, lease, requested, start, False)
            continue
        name, mode, ttl, timeout = pick(rng)
        requested = time.monotonic()
        try:
            lease = table.acquire(name, mode=mode, ttl=ttl, timeout=timeout)
        except LockTimeout:
            with rec.lock:
                rec.timeouts += 1
            continue
        start = time.monotonic()
        counted = mode == "exclusive" and ttl != 0.01
        if counted:
            v = rec.counter[name]
            time.sleep(0)  # invite a racing writer, if the lock let one in
            rec.counter[name] = v + 1
        elif rng.random() < 0.2:
            time.sleep(0.015)  # sometimes outlive a short TTL
        finish(rec, lease, requested, start, counted)


async def task_worker(table, rec, seed, cancel=0.0, cancelled=None):
    """``ROUNDS`` acquires; a share ``cancel`` of them cancelled from outside (at once
    or while they wait), their names appended to ``cancelled``."""
    rng = random.Random(seed)
    for _ in range(ROUNDS):
        name, mode, ttl, timeout = pick(rng)
        requested = time.monotonic()
        attempt = table.acquire_async(name, mode=mode, ttl=ttl, timeout=timeout)
        if cancel and rng.random() < cancel:  # (a task of its own: the owner differs)
            attempt = asyncio.ensure_future(attempt)
            await asyncio.sleep(rng.choice([0, 0, 0.001, 0.003]))
            attempt.cancel()
        try:
            lease = await attempt
        except LockTimeout:
            with rec.lock:
                rec.timeouts += 1
            continue
        except asyncio.CancelledError:
            cancelled.append(name)
            continue
        start = time.monotonic()
        counted = mode == "exclusive" and ttl != 0.01
        if counted:
            v = rec.counter[name]
            await asyncio.sleep(0)
            rec.counter[name] = v + 1
        finish(rec, lease, requested, start, counted)


def test_history_of_threads_and_tasks(make_table):
    table = make_table()
    rec = Recorder()
    errors = []

    def guard(fn, *args):
        try:
            fn(*args)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    async def tasks():
        await asyncio.gather(*(task_worker(table, rec, 1000 + i) for i in range(TASKS)))

    threads = [
        threading.Thread(target=guard, args=(thread_worker, table, rec, i)) for i in range(THREADS)
    ]
    threads.append(threading.Thread(target=guard, args=(asyncio.run, tasks())))
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    assert not errors, errors

    per_name = check_history(rec.holds)
    assert sum(per_name.values()) == len(rec.holds) > THREADS * ROUNDS // 2
    assert rec.counter == rec.counted, (rec.counter, rec.counted)
    assert any(h.mode == "shared" for h in rec.holds) and any(
        h.mode == "exclusive" for h in rec.holds
    )
    st = table.stats()
    # A timed-out acquire_many may have been granted its first lock (then handed back).
    assert 0 <= st.grants - (len(rec.holds) + rec.empty) <= rec.group_timeouts
    assert st.holders == 0 and st.waiters == 0


@pytest.mark.parametrize("seed", range(3))
def test_tokens_increase_per_name_under_contention(make_table, seed):
    table = make_table()
    seen = {n: [] for n in NAMES}
    lock = threading.Lock()

    def work(i):
        rng = random.Random(seed * 100 + i)
        for _ in range(100):
            name = rng.choice(NAMES)
            with table.lock(name, timeout=30) as lease:
                with lock:
                    seen[name].append(lease.token)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    # Exclusive holds are sequential: appended in grant order, so tokens must be sorted.
    for name, tokens in seen.items():
        assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens), name


def test_history_of_tasks_through_an_asyncio_client(redis_server):
    """Tasks on one table given an asyncio client (its pooled calls, its pipelined
    ACQUIRE and pop once a name is contended), some acquires cancelled mid-wait from
    outside: the same history holds, nothing is left granted or queued afterwards,
    and every connection of the pool is still good."""
    aioredis = pytest.importorskip("redis.asyncio")
    from conftest import wait_for_withdrawals
    from ringhash.redis_locks import RedisLockTable

    rec = Recorder()
    cancelled = []
    prefix = f"hist-async:{time.monotonic_ns()}:"

    async def main():
        aclient = aioredis.Redis(port=redis_server.port, socket_timeout=5)
        table = RedisLockTable(redis_server.client(), async_client=aclient, prefix=prefix)
        try:
            work = (task_worker(table, rec, 3000 + i, 0.15, cancelled) for i in range(TASKS))
            await asyncio.gather(*work)
            for i in range(40):  # the pool's connections all answer their own calls
                await aclient.set(f"{prefix}check{i}", i)
                assert int(await aclient.get(f"{prefix}check{i}")) == i
        finally:
            await aclient.aclose()
        return table

    table = asyncio.run(main())
    wait_for_withdrawals()
    per_name = check_history(rec.holds)
    assert sum(per_name.values()) == len(rec.holds) > TASKS * ROUNDS // 3
    assert rec.counter == rec.counted, (rec.counter, rec.counted)
    assert cancelled, "no acquire was cancelled"
    for name in NAMES:
        assert table.holders(name) == () and table.waiting(name) == ()
    assert table.stats().holders == 0 and table.stats().waiters == 0
