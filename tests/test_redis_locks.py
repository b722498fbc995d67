"""RedisLockTable against a real redis-server: processes, faults, renewal, errors.

(The shared conformance tests in test_locks*.py run against Redis as well.)
"""

import multiprocessing as mp
import os
import threading
import time

import pytest

from conftest import REDIS_SERVER, RedisServer, wait_for_withdrawals
from lockhistory import Hold, check_history
from ringhash import LeaseLost, LockBackendError, LockTimeout

pytestmark = pytest.mark.skipif(
    REDIS_SERVER is None, reason="no redis-server binary on this machine"
)


def _worker(port, prefix, seed, rounds, out):
    import random

    import redis

    from ringhash.redis_locks import RedisLockTable

    table = RedisLockTable(redis.Redis(port=port), prefix=prefix, default_ttl=5.0)
    rng = random.Random(seed)
    holds = []
    for _ in range(rounds):
        name = rng.choice(["p0", "p1"])
        mode = rng.choice(["exclusive", "exclusive", "shared"])
        requested = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process on the host
        try:
            lease = table.acquire(name, mode=mode, timeout=rng.choice([None, 0, 0.05]))
        except LockTimeout:
            continue
        start = time.monotonic()
        time.sleep(rng.random() * 0.002)
        end = time.monotonic()
        lease.release()
        holds.append((name, mode, lease.token, requested, start, end))
    out.put(holds)


def test_history_across_processes(redis_server):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(redis_server.port, f"mp{os.getpid()}:", i, 60, out))
        for i in range(4)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    holds = [Hold(n, m, t, r, s, e, False) for res in results for (n, m, t, r, s, e) in res]
    assert len(holds) > 60
    check_history(holds)


def _late_taker(port, prefix, q):
    import redis

    from ringhash.redis_locks import RedisLockTable

    table = RedisLockTable(redis.Redis(port=port), prefix=prefix)
    lease = table.acquire("job", timeout=10)
    q.put(lease.token)
    lease.release()


def test_paused_holder_loses_to_another_process(make_redis_table, redis_server):
    table = make_redis_table()
    lease = table.acquire("job", ttl=0.3)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_late_taker, args=(redis_server.port, table.prefix, q))
    p.start()
    time.sleep(0.6)  # the holder "pauses" past its TTL without renewing
    token = q.get(timeout=30)
    p.join(30)
    assert token > lease.token
    assert not lease.valid
    with pytest.raises(LeaseLost):
        lease.release()


def test_keep_alive_renews_then_stops(make_redis_table):
    table = make_redis_table()
    lost = threading.Event()
    lease = table.acquire("ka", ttl=0.3, on_lost=lambda _: lost.set())
    ka = lease.keep_alive(every=0.1)
    time.sleep(0.8)
    assert lease.valid and ka.renewals >= 4
    assert table.try_acquire("ka", owner="other") is None
    ka.stop()
    assert not lost.wait(0.1)
    lease.release()
    # max_renewals: renewing stops, the lease lapses and on_lost is called.
    lease = table.acquire("ka2", ttl=0.3, on_lost=lambda _: lost.set())
    ka = lease.keep_alive(every=0.1, max_renewals=2)
    assert lost.wait(10)
    assert ka.renewals == 2 and not lease.valid


def test_keep_alive_reports_a_lost_lease(make_redis_table, redis_server):
    table = make_redis_table()
    lost = []
    lease = table.acquire("kl", ttl=5, on_lost=lost.append)
    base = f"{table.prefix}{{kl}}"
    redis_server.client().delete(f"{base}:solo", f"{base}:holders")  # someone else broke it
    ka = lease.keep_alive(every=0.05)
    deadline = time.monotonic() + 10
    while ka.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lost == [lease] and not ka.running


def test_backend_errors_are_lock_backend_errors(tmp_path):
    import redis

    from ringhash.redis_locks import RedisLockTable

    dead = RedisLockTable(redis.Redis(port=1, socket_connect_timeout=0.2), prefix="x:")
    with pytest.raises(LockBackendError) as e:
        dead.acquire("a", timeout=0)
    assert isinstance(e.value.__cause__, redis.RedisError)
    with pytest.raises(TypeError):
        RedisLockTable("not a client")
    with pytest.raises(ValueError):
        RedisLockTable(redis.Redis(port=1), default_ttl=None)


def test_server_killed_and_restarted_with_aof(tmp_path):
    server = RedisServer(tmp_path, aof=True).start()
    from ringhash.redis_locks import RedisLockTable

    try:
        table = RedisLockTable(
            server.client(socket_timeout=1, socket_connect_timeout=0.5), prefix="f:"
        )
        tokens = []
        for _ in range(3):
            with table.lock("acct", ttl=5) as lease:
                tokens.append(lease.token)
        held = table.acquire("acct", ttl=5)
        tokens.append(held.token)
        server.kill()
        with pytest.raises(LockBackendError):
            table.acquire("other", timeout=0)
        with pytest.raises(LockBackendError):
            held.release()  # a release that cannot reach Redis says so
        server.start()  # same port and directory: the append-only file is replayed
        for _ in range(3):
            with table.lock("acct", ttl=5, timeout=10) as lease:  # the old lease lapses at its TTL
                tokens.append(lease.token)
        assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens)
        assert tokens[-3] > held.token
        wait_for_withdrawals()  # the acquire refused while Redis was down
    finally:
        server.stop()


def test_keys_share_one_cluster_slot(make_redis_table, redis_server):
    table = make_redis_table()
    lease = table.acquire("orders:{42}", ttl=5)
    client = redis_server.client()
    keys = [k.decode() for k in client.keys(f"{table.prefix}*")]
    assert keys
    slots = {_slot(k) for k in keys}
    assert len(slots) == 1
    lease.release()


def _slot(key: str) -> str:
    """The Redis Cluster hash tag of a key: the part between the first { and the next }."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start + 1 : end] if start >= 0 and end > start + 1 else key


def test_async_client_is_used_for_the_async_api(redis_server, monkeypatch):
    import asyncio

    import redis.asyncio

    from ringhash.redis_locks import RedisLockTable

    threads = []
    real_to_thread = asyncio.to_thread

    def to_thread(fn, *args, **kwargs):
        threads.append(fn)
        return real_to_thread(fn, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", to_thread)

    async def main():
        aclient = redis.asyncio.Redis(port=redis_server.port)
        table = RedisLockTable(redis_server.client(), async_client=aclient, prefix="async:")
        # the eviction check (a thread), and the scripts loaded (the pooled calls
        # answer NOSCRIPT by loading the script and sending it again)
        await aclient.script_flush()
        async with table.lock_async("warm-up") as lease:
            await lease.extend_async(5)
        threads.clear()
        sha = table._scripts._sha
        calls = []  # the scripts sent on connections of the asyncio client's pool
        pool = aclient.connection_pool
        get = pool.get_connection

        async def counting_connection(*args):
            conn = await get(*args)
            if not hasattr(conn, "counted"):
                send = conn.send_packed_command

                async def sending(command, *a, **kw):
                    data = b"".join(command) if isinstance(command, list) else command
                    calls.extend(n for n, h in sha.items() if h.encode() in data)
                    return await send(command, *a, **kw)

                conn.send_packed_command, conn.counted = sending, True
            return conn

        pool.get_connection = counting_connection
        order = []

        async def worker(i):
            async with table.lock_async("a", timeout=10) as lease:
                await lease.extend_async(10)
                order.append((i, lease.token))
                await asyncio.sleep(0.005)

        await asyncio.gather(*(worker(i) for i in range(5)))
        tokens = [t for _, t in order]
        assert tokens == sorted(tokens) and len(order) == 5
        assert calls.count("release") == 5  # async with's exits: release_async
        assert calls.count("extend") == 5
        assert {"acquire", "release", "extend"} == set(calls)
        assert threads == []  # attempts, pops and releases: all through the asyncio client
        # A cancelled waiter leaves no trace and no leaked lease.
        held = await table.acquire_async("b", owner="holder")
        waiter = asyncio.create_task(table.acquire_async("b", timeout=10))
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert table.waiting("b") == ()
        held.release()
        again = await table.acquire_async("b", timeout=0)
        again.release()
        await aclient.aclose()

    asyncio.run(main())
    with pytest.raises(TypeError):
        RedisLockTable(redis_server.client(), async_client="nope")


def test_a_lone_holder_and_the_general_form_agree(make_redis_table, redis_server):
    """An exclusive lease nobody shares is one key (``solo``), also while others wait
    for it, and a release hands the lock on in that form; a shared one turns into the
    general form (``holders``, ``info``, grant records) when a second shared acquirer
    joins it. Tokens, expiries, extensions, stale releases, listings, waiting and
    hand-offs mean the same in both forms, and the conversion never shortens a lease."""
    from ringhash.locks._redis import _Keys

    a, b = make_redis_table(), make_redis_table()
    assert a.prefix == b.prefix
    client = redis_server.client()
    k = _Keys(a.prefix, "n")

    def form_of(name):
        k = _Keys(a.prefix, name)
        solo, general = client.exists(k.key("solo")), client.exists(k.key("holders"))
        assert not (solo and general)
        return "solo" if solo else "general" if general else "free"

    def form():
        return form_of("n")

    lease = a.acquire("n", ttl=10, owner="A")
    assert form() == "solo" and lease.valid
    lease.extend(20)
    assert form() == "solo" and 19_000 < client.pttl(k.key("solo")) <= 20_000
    (listed,) = b.holders("n")  # read, not converted
    assert form() == "solo" and (listed.token, listed.owner, listed.mode) == (
        lease.token,
        "A",
        "exclusive",
    )
    assert lease.expires_at - 0.05 <= listed.expires_at <= lease.expires_at + 0.05
    assert b.try_acquire("n", owner="B") is None and form() == "solo"
    assert client.get(k.key("solo")).startswith(b"-")  # nobody queued behind it
    got = []
    waiter = threading.Thread(target=lambda: got.append(b.acquire("n", ttl=5, owner="B")))
    waiter.start()
    end = time.monotonic() + 10
    while not b.waiting("n"):
        assert time.monotonic() < end
        time.sleep(0.01)
    assert form() == "solo" and lease.valid and [w.owner for w in b.waiting("n")] == ["B"]
    assert client.get(k.key("solo")).startswith(b"+")  # its release must hand on
    lease.release()  # hands on: a lone holder again
    waiter.join(10)
    (handed,) = got
    assert form() == "solo" and handed.token == lease.token + 1 and handed.valid
    assert [h.token for h in a.holders("n")] == [handed.token] and b.waiting("n") == ()
    handed.release()
    assert form() == "free" and b.holders("n") == ()
    lease = handed

    # a short lone lease: a waiter queues, waits for its expiry and is granted then
    short = b.acquire("n", ttl=0.3, owner="B")
    assert form() == "solo" and short.token == lease.token + 1
    t0 = time.monotonic()
    after = a.acquire("n", ttl=5, owner="A", timeout=3)
    assert 0.2 < time.monotonic() - t0 < 2.0 and after.token == short.token + 1
    with pytest.raises(LeaseLost):
        short.release()  # stale: the general form's holder is someone else
    after.release()
    stale = b.acquire("n", ttl=0.1, owner="B")
    time.sleep(0.2)
    fresh = a.acquire("n", ttl=5, owner="A", timeout=0)
    assert form() == "solo"
    with pytest.raises(LeaseLost):
        stale.release()  # stale: the lone holder is someone else
    with pytest.raises(LeaseLost):
        stale.extend(5)
    assert not stale.valid and fresh.valid
    fresh.release()

    # shared: the first is a lone holder, the second joins it in the general form
    s1 = a.acquire("m", mode="shared", owner="A")
    assert form_of("m") == "solo"
    s2 = b.acquire("m", mode="shared", owner="B", timeout=0)
    assert form_of("m") == "general"
    assert sorted(x.token for x in b.holders("m")) == [s1.token, s2.token]
    assert b.try_acquire("m", owner="C") is None
    s1.release()
    s2.release()
    assert b.holders("m") == ()
