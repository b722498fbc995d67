"""asyncio: waiting without blocking the loop, and cancellation at every await point."""

import asyncio
import threading

import pytest

from ringhash import DeadlockError, LockTable, LockTimeout


def run(coro):
    return asyncio.run(coro)


def test_async_with_and_handoff_between_tasks():
    table = LockTable()
    order = []

    async def worker(i):
        async with table.lock_async("a", timeout=5) as lease:
            order.append((i, lease.token))
            await asyncio.sleep(0.001)

    async def main():
        await asyncio.gather(*(worker(i) for i in range(10)))

    run(main())
    assert [i for i, _ in order] == list(range(10))  # FIFO across tasks
    tokens = [t for _, t in order]
    assert tokens == sorted(tokens)
    assert len(table) == 0


def test_waiting_does_not_block_the_loop():
    table = LockTable()
    held = table.acquire("b", owner="thread")
    ticks = []

    async def ticker():
        for _ in range(5):
            ticks.append(1)
            await asyncio.sleep(0.01)

    async def main():
        waiter = asyncio.create_task(table.acquire_async("b", timeout=5))
        await ticker()
        assert not waiter.done()
        held.release()  # from the loop's thread
        lease = await waiter
        lease.release()

    run(main())
    assert len(ticks) == 5


def test_release_from_another_thread_wakes_an_async_waiter():
    table = LockTable()
    held = table.acquire("c", owner="thread")

    async def main():
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, lambda: threading.Thread(target=held.release).start())
        lease = await table.acquire_async("c", timeout=5)
        assert lease.token > held.token
        lease.release()

    run(main())


def test_async_timeout_and_deadlock():
    table = LockTable()

    async def main():
        other = await table.acquire_async("d", owner="other")
        with pytest.raises(LockTimeout):
            await table.acquire_async("d", timeout=0.05)
        mine = await table.acquire_async("e")
        with pytest.raises(DeadlockError):
            await table.acquire_async("e", timeout=5)  # the same task
        mine.release()
        other.release()

    run(main())
    assert len(table) == 0


def test_cancelled_waiter_leaves_no_trace():
    table = LockTable()

    async def main():
        held = await table.acquire_async("f", owner="holder")
        first = asyncio.create_task(table.acquire_async("f", timeout=5))
        second = asyncio.create_task(table.acquire_async("f", timeout=5))
        await asyncio.sleep(0.01)
        assert len(table.waiting("f")) == 2
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert len(table.waiting("f")) == 1
        held.release()
        lease = await second  # not blocked by the cancelled one
        lease.release()

    run(main())
    assert len(table) == 0 and table.stats().waiters == 0


def test_grant_racing_with_cancellation_is_not_leaked():
    table = LockTable()

    async def main():
        held = await table.acquire_async("g", owner="holder")
        waiter = asyncio.create_task(table.acquire_async("g", timeout=5))
        await asyncio.sleep(0.01)
        held.release()  # grants to the waiter, whose task has not run yet
        waiter.cancel()  # ... and is cancelled before it can see the grant
        with pytest.raises(asyncio.CancelledError):
            await waiter
        # The lease granted in between was handed back.
        assert table.holders("g") == ()
        again = await table.acquire_async("g", timeout=0)
        again.release()

    run(main())


def test_wait_for_timeout_cancels_cleanly():
    table = LockTable()

    async def main():
        held = await table.acquire_async("h", owner="holder")
        with pytest.raises((asyncio.TimeoutError, TimeoutError)):
            await asyncio.wait_for(table.acquire_async("h"), 0.05)
        assert table.waiting("h") == ()
        held.release()

    run(main())
    assert len(table) == 0


@pytest.mark.parametrize("cancel_after", range(12))
def test_cancellation_at_every_await_point(cancel_after):
    """A task runs a sequence of lock operations; it is cancelled after k loop
    iterations, for every k. Whatever point that hits, nothing may be left held
    or queued, and other tasks keep working."""
    table = LockTable()

    async def victim():
        async with table.lock_async("p", timeout=5):
            await asyncio.sleep(0)
            lease = await table.acquire_async("q", mode="shared", timeout=5)
            try:
                await asyncio.sleep(0)
            finally:
                lease.release()
        async with table.lock_async("p", mode="shared", timeout=5):
            await asyncio.sleep(0)

    async def rival():
        for _ in range(3):
            async with table.lock_async("p", timeout=5):
                await asyncio.sleep(0)
            async with table.lock_async("q", timeout=5):
                await asyncio.sleep(0)

    async def main():
        v = asyncio.create_task(victim())
        r = asyncio.create_task(rival())
        for _ in range(cancel_after):
            await asyncio.sleep(0)
        v.cancel()
        try:
            await v
        except asyncio.CancelledError:
            pass
        await asyncio.wait_for(r, 5)  # the rival must finish: nothing leaked blocks it

    run(main())
    assert len(table) == 0
    st = table.stats()
    assert st.holders == 0 and st.waiters == 0 and st.grants == st.releases
