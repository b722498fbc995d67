"""Lock-table conformance: the same tests for every backend (see conftest.LOCK_BACKENDS)."""

import asyncio
import threading
import time

import pytest

from ringhash import (
    DeadlockError,
    Lease,
    LeaseGroup,
    LeaseLost,
    LockError,
    LockTable,
    LockTimeout,
)


def wait_until(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.001)


def in_thread(fn, *args, **kwargs):
    """Run fn in a thread; returns (thread, box) where box gets 'result' or 'error'."""
    box = {}

    def run():
        try:
            box["result"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - reported to the test
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def test_acquire_release_and_lease_fields(make_table):
    table = make_table()
    lease = table.acquire("orders:42", ttl=30, owner="me")
    assert isinstance(lease, Lease)
    assert (lease.name, lease.mode, lease.owner) == ("orders:42", "exclusive", "me")
    assert lease.valid and 0 < lease.remaining() <= 30 and lease.expires_at is not None
    assert [x.token for x in table.holders("orders:42")] == [lease.token]
    lease.release()
    assert not lease.valid
    assert table.holders("orders:42") == ()
    with pytest.raises(LeaseLost):
        lease.release()
    with pytest.raises(LeaseLost):
        lease.extend(5)


def test_tokens_strictly_increase_per_name(make_table):
    table = make_table()
    tokens = []
    for _ in range(20):
        with table.lock("res") as lease:
            tokens.append(lease.token)
    with table.lock("other"):
        pass
    with table.lock("res") as lease:
        tokens.append(lease.token)
    assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens)
    assert all(isinstance(t, int) for t in tokens)


def test_shared_holders_and_exclusive(make_table):
    table = make_table()
    a = table.acquire("r", mode="shared", owner="a")
    b = table.acquire("r", mode="shared", owner="b")
    assert {x.owner for x in table.holders("r")} == {"a", "b"}
    assert table.try_acquire("r", owner="c") is None
    with pytest.raises(LockTimeout):
        table.acquire("r", owner="c", timeout=0)
    with pytest.raises(TimeoutError):
        table.acquire("r", owner="c", timeout=0.05)
    a.release()
    b.release()
    c = table.acquire("r", owner="c", timeout=0)
    assert table.try_acquire("r", mode="shared", owner="d") is None
    c.release()


def test_timeout_waits_then_raises(make_table):
    table = make_table()
    held = table.acquire("t", owner="holder")
    start = time.monotonic()
    with pytest.raises(LockTimeout):
        table.acquire("t", owner="other", timeout=0.2)
    assert time.monotonic() - start >= 0.19
    assert table.waiting("t") == ()
    held.release()
    assert table.stats().timeouts >= 1


def test_blocked_acquire_gets_the_lock_on_release(make_table):
    table = make_table()
    held = table.acquire("b", owner="holder")
    t, box = in_thread(table.acquire, "b", owner="waiter", timeout=10)
    wait_until(lambda: len(table.waiting("b")) == 1)
    assert table.waiting("b")[0].owner == "waiter"
    held.release()
    t.join(10)
    assert box["result"].owner == "waiter" and box["result"].token > held.token
    box["result"].release()


def test_fifo_order_of_waiters(make_table):
    table = make_table()
    held = table.acquire("q", owner="holder")
    order = []
    threads = []
    for i in range(5):
        mode = "shared" if i % 2 else "exclusive"

        def work(i=i, mode=mode):
            lease = table.acquire("q", mode=mode, owner=f"w{i}", timeout=10)
            order.append(i)
            time.sleep(0.01)
            lease.release()

        threads.append(in_thread(work)[0])
        wait_until(lambda i=i: len(table.waiting("q")) == i + 1)
    assert [w.owner for w in table.waiting("q")] == [f"w{i}" for i in range(5)]
    held.release()
    for t in threads:
        t.join(10)
    # Shared and exclusive requests alternate, so each is granted only after the one before it.
    assert order == [0, 1, 2, 3, 4]


def test_readers_do_not_starve_a_writer(make_table):
    table = make_table()
    reader = table.acquire("w", mode="shared", owner="r1")
    t, box = in_thread(table.acquire, "w", owner="writer", timeout=10)
    wait_until(lambda: len(table.waiting("w")) == 1)
    # A new reader is compatible with the holder but must queue behind the writer.
    assert table.try_acquire("w", mode="shared", owner="r2") is None
    reader.release()
    t.join(10)
    assert box["result"].owner == "writer"
    box["result"].release()


def test_ttl_expiry_passes_the_lock_on(make_table):
    table = make_table()
    lost = threading.Event()
    old = table.acquire("e", ttl=0.3, owner="slow", on_lost=lambda lease: lost.set())
    # Nobody touches the table: on_lost must still fire at expiry.
    assert lost.wait(10)
    assert not old.valid and old.remaining() == 0.0
    new = table.acquire("e", owner="fast", timeout=0)
    assert new.token > old.token
    with pytest.raises(LeaseLost):
        old.release()
    with pytest.raises(LeaseLost):
        old.extend(10)
    assert table.holders("e")[0].token == new.token
    new.release()


def test_waiter_gets_lock_at_expiry_time(make_table):
    table = make_table()
    old = table.acquire("x", ttl=0.3, owner="stuck")
    lease = table.acquire("x", owner="next", timeout=10)  # would time out if expiry went unnoticed
    assert lease.token > old.token and not old.valid
    lease.release()


def test_extend_keeps_the_lease(make_table):
    table = make_table()
    lease = table.acquire("k", ttl=0.3, owner="a")
    for _ in range(4):
        time.sleep(0.1)
        lease.extend(0.3)
    assert lease.valid
    assert table.try_acquire("k", owner="b") is None
    lease.release()


def test_default_ttl(make_table):
    table = make_table(default_ttl=30)
    lease = table.acquire("d")
    assert lease.expires_at is not None and lease.remaining() > 25
    lease.release()


def test_release_from_another_thread(make_table):
    table = make_table()
    lease = table.acquire("m")
    t, box = in_thread(lease.release)
    t.join(10)
    assert "error" not in box and not lease.valid


def test_deadlock_on_self_and_on_cycle(make_table):
    table = make_table()
    a = table.acquire("A", owner="o1")
    with pytest.raises(DeadlockError):
        table.acquire("A", owner="o1", timeout=5)
    s = table.acquire("S", mode="shared", owner="o1")
    with pytest.raises(DeadlockError):  # upgrade while holding shared
        table.acquire("S", owner="o1", timeout=5)
    b = table.acquire("B", owner="o2")
    t2, box2 = in_thread(table.acquire, "A", owner="o2", timeout=10)  # o2 waits for o1
    wait_until(lambda: len(table.waiting("A")) == 1)
    t1, box1 = in_thread(table.acquire, "B", owner="o1", timeout=10)  # o1 -> o2 -> o1
    refused = settle_cycle((t1, box1, a), (t2, box2, b))
    # o1 closes the cycle; o2 only if its own check came after o1 had queued
    # (a Redis waiter checks once it is queued)
    assert refused == "o1" or not isinstance(table, LockTable)
    assert table.stats().deadlocks == 3
    assert table.waiting("A") == table.waiting("B") == ()
    s.release()


def settle_cycle(*sides):
    """Two owners that each hold a lock and wait for the other's: (thread, box,
    lease held) per side. Exactly one must be refused with DeadlockError; the
    other is granted once the refused side's lease is released. Returns which
    side was refused, "o1" or "o2"."""
    wait_until(lambda: any("error" in box for _, box, _ in sides))
    (t1, box1, held1), (t2, box2, held2) = sides
    refused, other = ((t1, box1, held1), (t2, box2, held2))[:: 1 if "error" in box1 else -1]
    assert isinstance(refused[1]["error"], DeadlockError)
    refused[0].join(10)
    refused[2].release()  # the refused side gives up its lock: the other gets it
    other[0].join(10)
    assert "error" not in other[1], "both owners of one cycle were refused"
    other[1]["result"].release()
    other[2].release()
    return "o1" if refused[1] is box1 else "o2"


def wait_for(start, table, name, owner):
    start.wait()
    return table.acquire(name, owner=owner, timeout=10)


def test_owners_closing_a_cycle_at_once_exactly_one_is_refused(make_table):
    table = make_table()
    for n in range(1, 31):
        a = table.acquire("A", owner="o1")
        b = table.acquire("B", owner="o2")
        start = threading.Barrier(2)
        t1, box1 = in_thread(wait_for, start, table, "B", "o1")
        t2, box2 = in_thread(wait_for, start, table, "A", "o2")
        settle_cycle((t1, box1, a), (t2, box2, b))
        assert table.stats().deadlocks == n
        assert table.waiting("A") == table.waiting("B") == ()


def test_acquire_many_is_all_or_nothing(make_table):
    table = make_table()
    blocker = table.acquire("m3", owner="other")
    with pytest.raises(LockTimeout):
        table.acquire_many(["m1", "m2", "m3"], timeout=0.1, owner="me")
    assert table.holders("m1") == () and table.holders("m2") == ()
    blocker.release()
    group = table.acquire_many(["m3", "m1", "m2"], ttl=30, owner="me")
    assert isinstance(group, LeaseGroup)
    assert [lease.name for lease in group] == ["m1", "m2", "m3"] and group.valid and len(group) == 3
    assert group["m2"].name == "m2"
    with group:
        pass
    assert not group.valid and table.holders("m1") == ()


def test_acquire_many_opposite_orders_never_deadlock(make_table):
    table = make_table()
    done = []

    def work(names, me):
        for _ in range(50):
            with table.acquire_many(names, owner=me, timeout=20):
                pass
        done.append(me)

    t1, b1 = in_thread(work, ["x", "y", "z"], "one")
    t2, b2 = in_thread(work, ["z", "y", "x"], "two")
    t1.join(60)
    t2.join(60)
    assert "error" not in b1 and "error" not in b2
    assert sorted(done) == ["one", "two"]


def test_with_block_releases_and_reports_lost_lease(make_table):
    table = make_table()
    with table.lock("c") as lease:
        assert lease.valid
    assert not lease.valid
    with pytest.raises(RuntimeError):
        with table.lock("c"):
            raise RuntimeError("boom")
    assert table.holders("c") == ()
    with pytest.raises(LeaseLost):
        with table.lock("c", ttl=0.1):
            time.sleep(0.3)  # the lease expires inside the block


def test_holders_and_waiting_have_async_forms(make_table):
    """``holders_async``/``waiting_async`` answer as ``holders``/``waiting`` do, and check
    their arguments the same way."""
    table = make_table()

    async def main() -> None:
        a = await table.acquire_async("hw", mode="shared", owner="a")
        b = await table.acquire_async("hw", mode="shared", owner="b")
        t, box = in_thread(table.acquire, "hw", owner="w", timeout=10)
        for _ in range(1000):
            if await table.waiting_async("hw", timeout=5):
                break
            await asyncio.sleep(0.01)
        assert await table.holders_async("hw", timeout=5) == table.holders("hw") == (a, b)
        waiting = await table.waiting_async("hw")
        assert waiting == table.waiting("hw")
        assert [(w.owner, w.mode) for w in waiting] == [("w", "exclusive")]
        for bad, exc in ((1, TypeError), ("", ValueError), ("\ud800", ValueError)):
            with pytest.raises(exc):
                await table.holders_async(bad)
            with pytest.raises(exc):
                await table.waiting_async(bad)
        for tmo, exc in ((-1, ValueError), (float("nan"), ValueError), ("1", TypeError)):
            with pytest.raises(exc):
                await table.holders_async("hw", timeout=tmo)
            with pytest.raises(exc):
                await table.waiting_async("hw", timeout=tmo)
        await a.release_async()
        await b.release_async()
        t.join(10)
        (w,) = await table.holders_async("hw")
        assert w is box["result"] and await table.waiting_async("hw") == ()
        w.release()
        assert await table.holders_async("hw") == ()

    asyncio.run(main())


def test_release_async_and_extend_async_keep_the_lease_contract(make_table):
    table = make_table()

    async def main() -> None:
        async with table.lock_async("ra", ttl=1) as lease:
            await lease.extend_async(30, timeout=5)
            assert lease.valid and 29 < lease.remaining() <= 30 and lease.ttl == 30
            for ttl, timeout, exc in (
                (None, None, ValueError),
                (-1, None, ValueError),
                ("1", None, TypeError),
                (5, -1, ValueError),
                (5, "1", TypeError),
            ):
                with pytest.raises(exc):
                    await lease.extend_async(ttl, timeout=timeout)
            assert 29 < lease.remaining() <= 30  # a bad argument changes nothing
        assert not lease.valid and table.holders("ra") == ()
        again = await table.acquire_async("ra", ttl=5)
        await again.release_async(timeout=5)
        assert table.holders("ra") == ()
        with pytest.raises(LeaseLost):
            await again.release_async()
        with pytest.raises(LeaseLost):
            await again.extend_async(5)
        with pytest.raises(LeaseLost):
            async with table.lock_async("ra", ttl=0.1):
                await asyncio.sleep(0.3)  # the lease expires inside the block
        with pytest.raises(RuntimeError):  # not hidden by the lost lease
            async with table.lock_async("ra", ttl=0.1):
                await asyncio.sleep(0.3)
                raise RuntimeError("boom")
        for bad, exc in ((-1, ValueError), (float("nan"), ValueError), ("1", TypeError)):
            held = await table.acquire_async("rb")
            with pytest.raises(exc):
                await held.release_async(timeout=bad)
            assert held.valid  # a bad argument releases nothing
            await held.release_async()
        assert table.stats().releases == 5

    asyncio.run(main())


def test_stats_count(make_table):
    table = make_table()
    with table.lock("s1"):
        assert table.stats().holders == 1
    table.try_acquire("s1")
    st = table.stats()
    assert st.grants == 2 and st.releases == 1 and st.holders == 1 and st.waiters == 0


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"name": ""}, ValueError),
        ({"name": 5}, TypeError),
        ({"name": None}, TypeError),
        ({"mode": "read"}, ValueError),
        ({"mode": None}, TypeError),
        ({"ttl": -1}, ValueError),
        ({"ttl": float("nan")}, ValueError),
        ({"ttl": 0}, ValueError),
        ({"ttl": float("inf")}, ValueError),
        ({"ttl": "1"}, TypeError),
        ({"ttl": True}, TypeError),
        ({"timeout": -1}, ValueError),
        ({"timeout": float("nan")}, ValueError),
        ({"timeout": "1"}, TypeError),
        ({"owner": ["unhashable"]}, TypeError),
        ({"on_lost": 5}, TypeError),
    ],
)
def test_bad_arguments(make_table, kwargs, exc):
    table = make_table()
    args = {"name": "ok", **kwargs}
    name = args.pop("name")
    with pytest.raises(exc):
        table.acquire(name, **args)
    assert table.stats().grants == 0


@pytest.mark.parametrize(
    "names, exc",
    [
        ("abc", TypeError),
        (["a", "a"], ValueError),
        ([], ValueError),
        (["a", ""], ValueError),
        ([1], TypeError),
    ],
)
def test_bad_acquire_many(make_table, names, exc):
    with pytest.raises(exc):
        make_table().acquire_many(names)


def test_error_hierarchy():
    for e in (LockTimeout, LeaseLost, DeadlockError):
        assert issubclass(e, LockError)
    assert issubclass(LockTimeout, TimeoutError)


def test_closing_a_table_keeps_its_leases_and_it_stays_usable(make_table):
    with make_table() as table:
        lease = table.acquire("c", owner="a")
    assert lease.valid  # closing lets go of connections, not of leases
    assert table.try_acquire("c", owner="b") is None
    lease.release()
    table.acquire("c", owner="b", timeout=5).release()
    table.close()
    table.close()  # again: nothing left to close
    assert table.holders("c") == ()


def past_its_check(table, name):
    """Whether a waiter of ``table`` for ``name`` has passed its deadlock check (a
    Redis waiter checks once it is queued; the in-process table, before queueing)."""
    if isinstance(table, LockTable):
        return len(table.waiting(name)) == 1
    k = table._request(name, "exclusive", 1.0, "-", None).k
    return k.base in table._contended  # marked right after the check


def test_an_owner_waiting_in_two_threads_is_seen_waiting_in_both(make_table):
    table = make_table()
    xa = table.acquire("XA", owner="x")
    y1 = table.acquire("Y1", owner="y")
    z1 = table.acquire("Z1", owner="z")
    t1, box1 = in_thread(table.acquire, "Y1", owner="x", timeout=10)  # x waits for y
    wait_until(lambda: past_its_check(table, "Y1"))
    t2, box2 = in_thread(table.acquire, "Z1", owner="x", timeout=10)  # and for z
    wait_until(lambda: past_its_check(table, "Z1"))
    assert table.stats().waiters == 2
    with pytest.raises(DeadlockError):  # y -> x -> y, through x's first wait
        table.acquire("XA", owner="y", timeout=10)
    z1.release()
    t2.join(10)
    box2["result"].release()  # x's second wait is over; its first is not
    with pytest.raises(DeadlockError):
        table.acquire("XA", owner="y", timeout=10)
    assert table.stats().deadlocks == 2
    y1.release()
    t1.join(10)
    box1["result"].release()
    xa.release()
    assert table.stats().waiters == 0
    assert table.waiting("XA") == table.waiting("Y1") == ()


def test_async_waits_are_checked_for_deadlock_too(make_table):
    import asyncio

    table = make_table()
    other = table.acquire("f", owner="other")

    async def main():
        mine = await table.acquire_async("e")
        with pytest.raises(DeadlockError):  # the same task again
            await table.acquire_async("e", timeout=5)
        t, box = in_thread(table.acquire, "e", owner="other", timeout=10)
        await asyncio.to_thread(wait_until, lambda: past_its_check(table, "e"))
        with pytest.raises(DeadlockError):  # this task -> other -> this task
            await table.acquire_async("f", timeout=10)
        assert table.stats().waiters == 1
        mine.release()
        await asyncio.to_thread(t.join, 10)
        box["result"].release()

    asyncio.run(main())
    other.release()
    assert table.stats().deadlocks == 2 and table.stats().waiters == 0
