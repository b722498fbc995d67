"""Direct hand-off in the Redis lock table, against a real redis-server: a release
grants the head of the queue (one exclusive waiter, or the run of shared ones) and
nobody else wakes, waiters reuse pooled connections, async waiters are woken rather
than polling, and a grant its waiter never collects is taken back after the claim
window.

Redis counts what happens (INFO commandstats: script runs; INFO stats: connections),
so the assertions are about work done, with ``poll_cap`` set far above the test's
time scale: a waiter that proceeds was woken, it did not poll.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import signal
import threading
import time

import pytest

from conftest import REDIS_SERVER, RedisServer

redis = pytest.importorskip("redis", reason="redis-py is not installed")
from ringhash import LockTimeout  # noqa: E402
from ringhash.redis_locks import RedisLockTable  # noqa: E402

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(REDIS_SERVER is None, reason="no redis-server binary (.ci/run installs it)"),
]

POLL = 30.0  # the safety-net poll: far longer than any wait below


@pytest.fixture
def server(tmp_path):
    s = RedisServer(tmp_path).start()
    yield s
    s.kill()


def script_runs(client) -> int:
    """Scripts Redis ran (call ``warm_up`` first: a script's first call per server
    is an EVALSHA that fails with NOSCRIPT, which Redis counts too)."""
    stats = client.info("commandstats")
    return sum(stats.get(c, {}).get("calls", 0) for c in ("cmdstat_evalsha", "cmdstat_eval"))


def warm_up(table) -> None:
    table.acquire("warm-up", ttl=5).release()


def wait_until(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.005)


class Waiter(threading.Thread):
    """Acquires ``name`` in ``mode``, records the grant, holds until told to release."""

    def __init__(self, table, name, mode="exclusive"):
        super().__init__(daemon=True)
        self.table, self.lock_name, self.mode = table, name, mode
        self.granted = threading.Event()
        self.go = threading.Event()
        self.lease = None

    def run(self):
        self.lease = self.table.acquire(self.lock_name, mode=self.mode, ttl=60, timeout=60)
        self.granted.set()
        self.go.wait(60)
        self.lease.release()


def queued(table, name, n):
    wait_until(lambda: len(table.waiting(name)) == n)


def test_a_release_wakes_only_the_head(server):
    client = server.client()
    table = RedisLockTable(client, prefix="h:", poll_cap=POLL)
    warm_up(table)
    holder = table.acquire("x", ttl=60, owner="holder")
    waiters = []
    for i in range(8):  # queued one by one: FIFO order is their index
        w = Waiter(table, "x")
        w.start()
        queued(table, "x", i + 1)
        waiters.append(w)
    before = script_runs(client)
    holder.release()
    waiters[0].granted.wait(10)
    assert waiters[0].granted.is_set()
    time.sleep(0.2)  # time for anyone else woken to try
    # the release granted the head there and then: nobody else ran a script
    assert script_runs(client) - before == 1
    assert not any(w.granted.is_set() for w in waiters[1:])
    tokens = [holder.token]
    for i, w in enumerate(waiters):  # each release hands on to the next in line
        w.granted.wait(10)
        assert w.granted.is_set() and w.lease is not None
        tokens.append(w.lease.token)
        assert not any(o.granted.is_set() for o in waiters[i + 1 :])
        w.go.set()
        w.join(10)
    assert tokens == sorted(tokens) and len(set(tokens)) == 9
    assert table.holders("x") == () and table.waiting("x") == ()


def test_a_release_wakes_the_run_of_shared_waiters(server):
    client = server.client()
    table = RedisLockTable(client, prefix="s:", poll_cap=POLL)
    holder = table.acquire("x", ttl=60, owner="writer")
    modes = ["shared", "shared", "shared", "exclusive", "shared"]
    waiters = []
    for i, mode in enumerate(modes):
        w = Waiter(table, "x", mode)
        w.start()
        queued(table, "x", i + 1)
        waiters.append(w)
    holder.release()
    for w in waiters[:3]:
        w.granted.wait(10)
        assert w.granted.is_set()
    assert {h.mode for h in table.holders("x")} == {"shared"} and len(table.holders("x")) == 3
    time.sleep(0.2)
    assert not waiters[3].granted.is_set() and not waiters[4].granted.is_set()
    for w in waiters[:2]:
        w.go.set()
        w.join(10)
    time.sleep(0.1)
    assert not waiters[3].granted.is_set()  # one reader still holds
    waiters[2].go.set()
    waiters[3].granted.wait(10)
    assert waiters[3].granted.is_set() and not waiters[4].granted.is_set()
    waiters[3].go.set()
    waiters[4].granted.wait(10)
    assert waiters[4].granted.is_set()
    waiters[4].go.set()
    for w in waiters:
        w.join(10)


def test_a_withdrawn_head_hands_on(server):
    """A head that gives up (timeout) leaves the queue, and the next waiter becomes the
    head that the release hands the lock to."""
    client = server.client()
    table = RedisLockTable(client, prefix="w:", poll_cap=0.2)
    holder = table.acquire("x", ttl=60, owner="holder")
    impatient = threading.Thread(
        target=lambda: pytest.raises(LockTimeout, table.acquire, "x", timeout=0.5), daemon=True
    )
    impatient.start()
    queued(table, "x", 1)
    w = Waiter(table, "x")
    w.start()
    queued(table, "x", 2)
    impatient.join(5)
    queued(table, "x", 1)
    holder.release()
    w.granted.wait(10)
    assert w.granted.is_set()
    w.go.set()
    w.join(10)


def test_a_withdrawn_writer_lets_a_reader_join_a_lone_reader(server):
    """A reader holding alone; a writer queues behind it and a second reader behind
    the writer (first come, first served). When the writer gives up, its withdrawal
    lets the second reader join the first at once, not at its next poll."""
    client = server.client()
    table = RedisLockTable(client, prefix="j:", poll_cap=POLL)
    reader = table.acquire("x", mode="shared", ttl=60, owner="reader")
    writer = threading.Thread(
        target=lambda: pytest.raises(LockTimeout, table.acquire, "x", timeout=1.0), daemon=True
    )
    writer.start()
    queued(table, "x", 1)
    second = Waiter(table, "x", "shared")
    second.start()
    queued(table, "x", 2)
    assert not second.granted.wait(0.3)  # behind the writer
    writer.join(5)
    assert second.granted.wait(5)
    assert sorted(h.token for h in table.holders("x")) == [reader.token, second.lease.token]
    reader.release()
    second.go.set()
    second.join(10)
    assert table.holders("x") == () and table.waiting("x") == ()


def test_waiters_reuse_pooled_connections(server):
    client = server.client()
    table = RedisLockTable(client, prefix="c:", poll_cap=POLL)
    table.acquire("warm", ttl=5).release()
    before = int(client.info("stats")["total_connections_received"])
    counter = [0]

    def worker():
        for _ in range(25):
            with table.lock("x", ttl=10, timeout=30):
                counter[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert counter[0] == 100
    opened = int(client.info("stats")["total_connections_received"]) - before
    assert opened <= 4 + 1, opened  # at most one per thread (the pool's), not one per wait


def test_async_waiters_are_woken_not_polled(server):
    aioredis = pytest.importorskip("redis.asyncio")
    client = server.client()

    async def main():
        aclient = aioredis.Redis(port=server.port, socket_timeout=5)
        table = RedisLockTable(client, async_client=aclient, prefix="a:", poll_cap=POLL)
        warm_up(table)
        holder = await table.acquire_async("x", ttl=60, owner="holder")
        order = []

        async def waiter(i):
            async with table.lock_async("x", ttl=60, timeout=20) as lease:
                order.append((i, lease.token))

        tasks = []
        for i in range(5):
            tasks.append(asyncio.create_task(waiter(i)))
            while len(table.waiting("x")) < i + 1:
                await asyncio.sleep(0.005)
        before = script_runs(client)
        start = time.monotonic()
        holder.release()
        await asyncio.wait_for(asyncio.gather(*tasks), 20)
        # all five got the lock in turn long before the first 30 s poll
        assert time.monotonic() - start < POLL / 3
        assert [i for i, _ in order] == list(range(5))
        # one release by the holder, then per waiter its RELEASE (which grants the next)
        assert script_runs(client) - before == 1 + 5
        await aclient.aclose()

    asyncio.run(main())


CLAIM = 2.0  # the claim window: the waiter TTL, max(2 s, 10 * poll_cap)


def test_a_grant_nobody_collects_is_taken_back(server):
    """A waiter id queued by hand (it never pops): the release grants it the lock, and
    the grant is revoked once the claim window has passed; one collected by a later
    ACQUIRE of the same id (a waiter between two pops) is kept."""
    from ringhash.locks._redis import _Keys

    client = server.client()
    table = RedisLockTable(client, prefix="c:", poll_cap=0.1)
    k = _Keys("c:", "x")
    for collect in (False, True):
        holder = table.acquire("x", ttl=60, owner="holder")
        r = table._request("x", "exclusive", 60.0, "ghost", None)
        keys, args = table._acquire_call(r, True)
        assert table._call("acquire", keys, args, "enqueue")[0] == 0  # queued, not granted
        holder.release()  # grants the queued id: its token waits in its list
        assert client.llen(k.wake(r.waiter)) == 1 and client.hlen(k.key("claims")) == 1
        (granted,) = table.holders("x")
        assert granted.owner == "ghost" and granted.token == holder.token + 1
        t0 = time.monotonic()
        if not collect:
            after = table.acquire("x", ttl=5, owner="next", timeout=10)
            assert CLAIM - 0.3 < time.monotonic() - t0 < CLAIM + 2
            assert after.token == granted.token + 1
            assert not client.exists(k.wake(r.waiter), k.key("claims"))
            after.release()
        else:
            again = table._call("acquire", keys, args, "collect")  # its next attempt
            assert again[:2] == [1, granted.token]
            assert not client.exists(k.wake(r.waiter)) and client.hlen(k.key("claims")) == 0
            assert table.try_acquire("x", owner="next") is None
            time.sleep(CLAIM + 0.3)
            assert table.try_acquire("x", owner="next") is None  # still held: collected
            assert [h.token for h in table.holders("x")] == [granted.token]
            table._cancel(r)
        assert table.holders("x") == ()


def _wait_in_child(port):  # type: ignore[no-untyped-def]
    import redis as r

    table = RedisLockTable(r.Redis(port=port), prefix="d:", poll_cap=0.1)
    table.acquire("x", ttl=60, timeout=60)
    time.sleep(60)  # never gets here in the test: it is killed while waiting


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_waiter_killed_while_waiting_does_not_hold_the_lock(server):  # a forked waiter
    """A waiter process killed in its blocking pop: the release grants it the lock (its
    heartbeat is still fresh), nobody pops the grant, and the next waiter gets the lock
    after the claim window, not after the 60 s TTL."""
    client = server.client()
    table = RedisLockTable(client, prefix="d:", poll_cap=0.1)
    holder = table.acquire("x", ttl=60, owner="holder")
    child = mp.get_context("fork").Process(target=_wait_in_child, args=(server.port,))
    child.start()
    try:
        queued(table, "x", 1)
        nxt = Waiter(table, "x")
        nxt.start()
        queued(table, "x", 2)
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        time.sleep(0.3)  # Redis has seen the connection close; the heartbeat is still fresh
        assert len(table.waiting("x")) == 2
        t0 = time.monotonic()
        holder.release()
        assert nxt.granted.wait(CLAIM + 5)
        assert CLAIM - 0.3 < time.monotonic() - t0 < CLAIM + 2
        assert nxt.lease.token == holder.token + 2  # the dead waiter's grant was taken back
        nxt.go.set()
        nxt.join(10)
        assert table.holders("x") == () and table.waiting("x") == ()
    finally:
        if child.is_alive():
            child.kill()


class Calls:
    """Counts a table's pipelined attempts (an ACQUIRE and its pop in one write) and
    lone pops, by wrapping the methods on its ``Scripts`` object."""

    def __init__(self, table):
        self.pipelined = self.pops = 0
        scripts = table._scripts
        both, pop = scripts.call_then_pop, scripts.pop

        def call_then_pop(*a, **kw):
            self.pipelined += 1
            return both(*a, **kw)

        def lone_pop(*a, **kw):
            self.pops += 1
            return pop(*a, **kw)

        scripts.call_then_pop, scripts.pop = call_then_pop, lone_pop


def contend_once(table, other, name):
    """One acquire through ``table`` that has to wait (``other`` holds ``name``)."""
    holder = other.acquire(name, ttl=60, owner="holder")
    w = Waiter(table, name)
    w.start()
    queued(table, name, 1)
    holder.release()
    assert w.granted.wait(10)
    w.go.set()
    w.join(10)


def test_a_lock_contended_of_late_is_waited_for_in_one_round_trip(server):
    """After an acquire had to wait, the table's next acquire of that lock sends its
    ACQUIRE and its blocking pop together: the release's grant reaches it through
    that pop, with no second round trip and no script of its own."""
    client = server.client()
    table = RedisLockTable(client, prefix="p:", poll_cap=POLL)
    other = RedisLockTable(client, prefix="p:", poll_cap=POLL)
    warm_up(table)
    calls = Calls(table)
    contend_once(table, other, "x")
    assert (calls.pipelined, calls.pops) == (0, 1)  # first wait: ACQUIRE, then a pop
    tokens = []
    for _ in range(3):
        holder = other.acquire("x", ttl=60, owner="holder")
        w = Waiter(table, "x")
        w.start()
        queued(table, "x", 1)
        before = script_runs(client)
        holder.release()
        assert w.granted.wait(10)
        assert script_runs(client) - before == 1  # the release's, which granted it
        tokens += [holder.token, w.lease.token]
        w.go.set()
        w.join(10)
    assert (calls.pipelined, calls.pops) == (3, 1)
    assert tokens == sorted(tokens) and len(set(tokens)) == 6
    assert not client.keys("p:*wake*") and table.holders("x") == ()


def test_a_lock_contended_of_late_and_found_free_is_granted_at_once(server):
    """The pipelined pop of an ACQUIRE that is granted at once is ended there and then
    (its list left empty), and the table goes back to one round trip per acquire."""
    client = server.client()
    table = RedisLockTable(client, prefix="f:", poll_cap=POLL)
    other = RedisLockTable(client, prefix="f:", poll_cap=POLL)
    contend_once(table, other, "x")
    calls = Calls(table)
    t0 = time.monotonic()
    lease = table.acquire("x", ttl=5, timeout=10)
    assert time.monotonic() - t0 < 2  # not the pop's 10 s
    assert calls.pipelined == 1 and not client.keys("f:*wake*")
    lease.release()
    table.acquire("x", ttl=5, timeout=10).release()
    assert calls.pipelined == 1  # free when last asked: the plain attempt


def test_a_lock_contended_of_late_refuses_a_deadlock_at_once(server):
    client = server.client()
    table = RedisLockTable(client, prefix="d:", poll_cap=POLL)
    other = RedisLockTable(client, prefix="d:", poll_cap=POLL)
    contend_once(table, other, "x")
    mine = table.acquire("x", ttl=60, owner="me")  # found free: no longer marked
    table._contended.add(table._request("x", "exclusive", 1.0, "me", None).k.base)
    from ringhash import DeadlockError

    t0 = time.monotonic()
    with pytest.raises(DeadlockError):
        table.acquire("x", ttl=5, owner="me", timeout=10)
    assert time.monotonic() - t0 < 2  # refused before waiting, not after the pop
    mine.release()


def test_a_pipelined_acquire_after_a_script_flush_still_waits_its_turn(server):
    client = server.client()
    table = RedisLockTable(client, prefix="n:", poll_cap=POLL)
    other = RedisLockTable(client, prefix="n:", poll_cap=POLL)
    contend_once(table, other, "x")
    calls = Calls(table)
    holder = other.acquire("x", ttl=60, owner="holder")
    client.script_flush()  # the pipelined ACQUIRE meets NOSCRIPT; its pop is ended
    w = Waiter(table, "x")
    w.start()
    queued(table, "x", 1)
    holder.release()
    assert w.granted.wait(10) and w.lease.token == holder.token + 1
    w.go.set()
    w.join(10)
    assert calls.pipelined == 1 and not client.keys("n:*wake*")


QUEUE_PARTS = ("queue", "qexp", "qseq", "qinfo")


def test_every_key_of_a_lock_but_its_counter_expires(server):
    """The queue's keys are refreshed together, and only once their TTL has run below
    1.5 waiter TTLs (one PTTL per enqueue, not a PEXPIRE per key): a queue that empties
    and starts again still gets one, and only the fencing counter is kept forever."""
    from ringhash.locks._redis_calls import _Keys

    client = server.client()
    table = RedisLockTable(client, prefix="e:", poll_cap=POLL)
    k = _Keys("e:", "x")
    for _ in range(3):  # the queue starts, empties at the hand-off, starts again
        holder = table.acquire("x", ttl=60)
        w = Waiter(table, "x")
        w.start()
        queued(table, "x", 1)
        keys = {key.decode(): client.pttl(key) for key in client.keys("e:*")}
        assert {k.key(p) for p in QUEUE_PARTS} <= set(keys)
        assert [key for key, ms in keys.items() if ms < 0] == [k.key("tokens")]
        holder.release()
        assert w.granted.wait(10)
        w.go.set()
        w.join(10)
        persistent = [key.decode() for key in client.keys("e:*") if client.pttl(key) < 0]
        assert persistent == [k.key("tokens")]


def test_a_long_wait_keeps_the_queue_alive(server):
    """A waiter's heartbeats (its attempts, every ``poll_cap``) keep the queue's keys
    alive beyond its own heartbeat deadline, however long it waits."""
    from ringhash.locks._redis_calls import _Keys

    client = server.client()
    table = RedisLockTable(client, prefix="l:", poll_cap=0.1)  # waiter TTL: 2 s
    k = _Keys("l:", "x")
    holder = table.acquire("x", ttl=60)
    w = Waiter(table, "x")
    w.start()
    queued(table, "x", 1)
    end = time.monotonic() + 3.5  # past the 4 s the keys get at the first enqueue
    lowest = min(client.pttl(k.key(p)) for p in QUEUE_PARTS)
    while time.monotonic() < end:
        lowest = min(lowest, *(client.pttl(k.key(p)) for p in QUEUE_PARTS))
        time.sleep(0.05)
    assert lowest > table._waiter_ttl_ms  # outlives the heartbeat deadline
    assert len(table.waiting("x")) == 1 and not w.granted.is_set()
    holder.release()
    assert w.granted.wait(10)
    w.go.set()
    w.join(10)


def redis_commands(client) -> dict[str, int]:
    """Commands Redis ran, by name, scripts' own included (INFO commandstats)."""
    return {
        name.removeprefix("cmdstat_"): stats["calls"]
        for name, stats in client.info("commandstats").items()
    }


def test_the_work_of_a_contended_hand_off(server):
    """What one grant costs Redis while the lock stays contended (the queue never
    empties, as under load): the release that hands on, and the next acquire that
    queues, run at most this many commands inside their scripts. A budget, not a
    timing: each command costs a script about a microsecond and more under load."""
    client = server.client()
    table = RedisLockTable(client, prefix="w:", poll_cap=POLL)
    warm_up(table)
    holder = table.acquire("x", ttl=60)
    first, second = Waiter(table, "x"), Waiter(table, "x")
    for i, w in enumerate((first, second)):
        w.start()
        queued(table, "x", i + 1)

    def inner(before):
        after = redis_commands(client)
        ran = {c: n - before.get(c, 0) for c, n in after.items() if n > before.get(c, 0)}
        scripts = ran.pop("evalsha")
        other = ("blpop", "info", "hello", "client|setinfo", "client|setname", "select", "auth")
        return scripts, sum(n for c, n in ran.items() if c not in other), ran

    before = redis_commands(client)
    holder.release()
    assert first.granted.wait(10)
    scripts, release, ran = inner(before)

    assert scripts == 1 and release <= 20, ran  # (one of them the marker of the release)

    before = redis_commands(client)
    third = Waiter(table, "x")
    third.start()
    wait_until(lambda: redis_commands(client).get("blpop", 0) > before.get("blpop", 0))
    scripts, enqueue, ran = inner(before)

    assert scripts == 1 and enqueue <= 13, ran
    for w in (first, second, third):
        w.granted.wait(10)
        w.go.set()
        w.join(10)


# ---------------------------------------------------------------- asyncio, pipelined


class AsyncCalls:
    """Counts a table's pipelined async attempts (an ACQUIRE and its pop in one write
    on a connection of the asyncio client's pool) and lone async pops."""

    def __init__(self, table):
        self.pipelined = self.pops = 0
        scripts = table._scripts
        both, pop = scripts.call_then_pop_async, scripts.pop_async

        async def call_then_pop_async(*a, **kw):
            self.pipelined += 1
            return await both(*a, **kw)

        async def lone_pop(*a, **kw):
            self.pops += 1
            return await pop(*a, **kw)

        scripts.call_then_pop_async, scripts.pop_async = call_then_pop_async, lone_pop


def run_async(server, prefix, body):
    """``body(client, aclient, table, other, calls)`` in an event loop: ``table`` on the
    asyncio client ``aclient`` (its async calls counted), ``other`` a sync table on the
    same keys."""
    aioredis = pytest.importorskip("redis.asyncio")
    client = server.client()

    async def main():
        aclient = aioredis.Redis(port=server.port, socket_timeout=5)
        table = RedisLockTable(client, async_client=aclient, prefix=prefix, poll_cap=POLL)
        other = RedisLockTable(client, prefix=prefix, poll_cap=POLL)
        warm_up(table)
        try:
            await body(client, aclient, table, other, AsyncCalls(table))
        finally:
            await aclient.aclose()

    asyncio.run(main())


async def queued_async(table, name, n):
    end = time.monotonic() + 10
    while len(table.waiting(name)) != n:
        assert time.monotonic() < end, "not queued"
        await asyncio.sleep(0.005)


async def wait_behind(table, other, name, **kw):
    """A task acquiring ``name`` through ``table`` while ``other`` holds it, once queued:
    (the holder's lease, the task)."""
    holder = other.acquire(name, ttl=60, owner="holder")
    task = asyncio.create_task(table.acquire_async(name, ttl=60, **kw))
    await queued_async(table, name, 1)
    return holder, task


async def contend_once_async(table, other, name):
    """One acquire_async through ``table`` that has to wait: ``name`` is then contended
    of late for ``table``."""
    holder, task = await wait_behind(table, other, name, timeout=20)
    holder.release()
    await (await asyncio.wait_for(task, 10)).release_async()


def test_an_async_acquire_of_a_lock_contended_of_late_is_one_round_trip(server):
    """As in the sync API: after an acquire_async had to wait, the next one of that lock
    sends its ACQUIRE and its pop together, and the release's grant reaches it through
    that pop, with no script of its own. One granted at once ends its pop there and
    then, and leaves the pool's connection clean for the next call."""

    async def body(client, aclient, table, other, calls):
        tokens = []
        for _ in range(4):
            holder, task = await wait_behind(table, other, "x", timeout=20)
            before = script_runs(client)
            holder.release()
            lease = await asyncio.wait_for(task, 10)
            assert script_runs(client) - before == 1  # the release's, which granted it
            tokens += [holder.token, lease.token]
            await lease.release_async()
        assert (calls.pipelined, calls.pops) == (3, 1)  # first wait: ACQUIRE, then a pop
        assert tokens == sorted(tokens) and len(set(tokens)) == 8
        t0 = time.monotonic()
        lease = await table.acquire_async("x", ttl=5, timeout=10)  # contended of late: free
        assert time.monotonic() - t0 < 2 and calls.pipelined == 4  # not the pop's 10 s
        assert not client.keys("pa:*wake*")
        for i in range(20):  # the connections that carried the pops serve the next calls
            await aclient.set(f"pa:k{i}", i)
            assert int(await aclient.get(f"pa:k{i}")) == i
        await lease.release_async()
        await (await table.acquire_async("x", ttl=5, timeout=10)).release_async()
        assert calls.pipelined == 4  # free when last asked: the plain attempt
        assert table.holders("x") == () and table.waiting("x") == ()

    run_async(server, "pa:", body)


def test_a_cancelled_pipelined_async_acquire_withdraws_and_leaves_no_pop(server):
    """Cancelled while its pipelined pop waits: the waiter is withdrawn, its connection
    closed (a pop left there would swallow the next hand-off), and the lock, released,
    is free for the next."""

    async def body(client, aclient, table, other, calls):
        await contend_once_async(table, other, "x")
        holder, task = await wait_behind(table, other, "x", timeout=20)
        assert calls.pipelined == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert table.waiting("x") == ()
        holder.release()
        lease = await table.acquire_async("x", ttl=5, timeout=0)  # free: try once
        assert lease.token == holder.token + 1
        await lease.release_async()
        assert not client.keys("pa:*wake*")
        for i in range(20):
            await aclient.set(f"pa:k{i}", i)
            assert int(await aclient.get(f"pa:k{i}")) == i

    run_async(server, "pa:", body)


def test_a_pipelined_async_acquire_times_out_on_time_and_withdraws(server):
    async def body(client, aclient, table, other, calls):
        await contend_once_async(table, other, "x")
        holder = other.acquire("x", ttl=60, owner="holder")
        t0 = time.monotonic()
        with pytest.raises(LockTimeout):
            await table.acquire_async("x", ttl=5, timeout=0.3)
        assert 0.3 <= time.monotonic() - t0 < 0.3 + 0.6
        assert calls.pipelined == 1 and table.waiting("x") == ()
        holder.release()
        assert not client.keys("pa:*wake*")

    run_async(server, "pa:", body)


def test_a_pipelined_async_acquire_after_a_script_flush_still_waits_its_turn(server):
    async def body(client, aclient, table, other, calls):
        await contend_once_async(table, other, "x")
        holder = other.acquire("x", ttl=60, owner="holder")
        client.script_flush()  # the pipelined ACQUIRE meets NOSCRIPT; its pop is ended
        task = asyncio.create_task(table.acquire_async("x", ttl=60, timeout=20))
        await queued_async(table, "x", 1)
        holder.release()
        lease = await asyncio.wait_for(task, 10)
        assert lease.token == holder.token + 1 and calls.pipelined == 1
        await lease.release_async()
        assert not client.keys("pa:*wake*") and table.holders("x") == ()

    run_async(server, "pa:", body)


def test_a_refused_try_is_one_script_in_both_apis(server):
    """``timeout=0`` on a held lock: one ACQUIRE that does not queue, and no withdrawal
    after it (there is nothing to withdraw), from the sync and the async API alike."""

    async def body(client, aclient, table, other, calls):
        holder = other.acquire("x", ttl=60, owner="holder")
        for _ in range(2):  # the second time, the lock is contended of late for no one
            before = script_runs(client)
            with pytest.raises(LockTimeout):
                table.acquire("x", ttl=5, timeout=0)
            with pytest.raises(LockTimeout):
                await table.acquire_async("x", ttl=5, timeout=0)
            assert script_runs(client) - before == 2
        assert calls.pipelined == 0 and table.waiting("x") == ()
        holder.release()

    run_async(server, "pt:", body)
