"""In-process LockTable specifics: injected clock, memory, fork, the reaper."""

import gc
import os
import threading
import time
import warnings
import weakref

import pytest

from ringhash import LeaseLost, LockTable, LockTimeout


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_ttl_on_an_injected_clock():
    clock = FakeClock()
    table = LockTable(clock=clock)
    lost = []
    lease = table.acquire("n", ttl=10, owner="a", on_lost=lost.append)
    assert lease.expires_at == 1010.0 and lease.remaining() == 10.0
    clock.now = 1009.999
    assert lease.valid and table.try_acquire("n", owner="b") is None
    clock.now = 1010.0
    assert not lease.valid and lost == [lease]
    with pytest.raises(LeaseLost):
        lease.release()
    b = table.acquire("n", owner="b", timeout=0)
    assert b.token > lease.token
    assert table.stats().expiries == 1


def test_extend_on_an_injected_clock():
    clock = FakeClock()
    table = LockTable(clock=clock)
    lease = table.acquire("n", ttl=10, owner="a")
    clock.now += 8
    lease.extend(10)
    assert lease.expires_at == clock.now + 10
    clock.now += 9
    assert lease.valid
    clock.now += 1
    assert not lease.valid
    no_ttl = table.acquire("m", owner="a")
    no_ttl.extend(5)
    assert no_ttl.expires_at == clock.now + 5
    clock.now += 5
    assert not no_ttl.valid


def test_waiter_takes_over_when_an_injected_clock_passes_expiry():
    clock = FakeClock()
    table = LockTable(clock=clock)
    old = table.acquire("n", ttl=60, owner="old")
    got = {}
    t = threading.Thread(target=lambda: got.setdefault("lease", table.acquire("n", owner="new")))
    t.start()
    while not table.waiting("n"):
        pass
    clock.now += 60
    assert table.expire() == 1
    t.join(10)
    assert got["lease"].token > old.token and got["lease"].owner == "new"


def test_timeout_on_an_injected_clock():
    clock = FakeClock()
    table = LockTable(clock=clock)
    table.acquire("n", owner="a")
    box = {}

    def wait():
        try:
            table.acquire("n", owner="b", timeout=30)
        except LockTimeout as e:
            box["err"] = e

    t = threading.Thread(target=wait)
    t.start()
    while not table.waiting("n"):
        pass
    clock.now += 31
    table.expire()  # wakes waiters to re-check their deadlines
    t.join(10)
    assert "err" in box and table.waiting("n") == ()


def test_idle_names_cost_nothing():
    table = LockTable()
    for i in range(300_000):
        table.acquire(f"name:{i}").release()
    for i in range(2000):
        table.acquire(f"ttl:{i}", ttl=3600).release()
    assert len(table) == 0 and table._names == {} and table._waiting_owners == {}
    assert len(table._expiries) <= 64 + 2 * table._ttl_holders
    st = table.stats()
    assert st.holders == 0 and st.waiters == 0 and st.grants == st.releases == 302_000


def test_expired_names_are_dropped():
    clock = FakeClock()
    table = LockTable(clock=clock)
    for i in range(100):
        table.acquire(f"n{i}", ttl=1)
    clock.now += 2
    assert table.expire() == 100
    assert len(table) == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_gets_an_empty_usable_table():
    table = LockTable()
    lease = table.acquire("held", owner="parent", ttl=600)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork in a threaded process
        pid = os.fork()
    if pid == 0:  # child: report through the exit code
        code = 0
        try:
            assert not lease.valid
            try:
                lease.release()
                code = 2
            except LeaseLost:
                pass
            fresh = table.acquire("held", owner="child", timeout=0)
            assert fresh.token > lease.token
            fresh.release()
            assert len(table) == 0
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert lease.valid  # the parent's lease is untouched
    lease.release()


def test_reaper_thread_does_not_keep_the_table_alive():
    table = LockTable()
    table.acquire("x", ttl=3600)
    ref = weakref.ref(table)
    del table
    # The reaper holds the table only briefly while it works: it must let go.
    for _ in range(500):
        gc.collect()
        if ref() is None:
            break
        time.sleep(0.01)
    assert ref() is None


def test_on_lost_errors_are_logged_not_raised(caplog):
    clock = FakeClock()
    table = LockTable(clock=clock)

    def bad(lease):
        raise RuntimeError("callback failed")

    table.acquire("n", ttl=1, on_lost=bad)
    clock.now += 1
    assert table.holders("n") == ()
    assert "callback failed" in caplog.text


def test_bad_table_arguments():
    with pytest.raises(ValueError):
        LockTable(default_ttl=-1)
    with pytest.raises(TypeError):
        LockTable(clock=5)


def test_interrupted_waiter_leaves_no_trace(monkeypatch):
    """An exception while blocked (KeyboardInterrupt, say) abandons the request cleanly."""
    import ringhash.locks._memory as locks

    class Boom(BaseException):
        pass

    class ExplodingGate:
        """Stands in for the waiter's gate lock: blocking on it raises."""

        def acquire(self, blocking=True, timeout=-1):
            if blocking:
                raise Boom
            return False

        def release(self):
            pass

    def waiter_with_exploding_gate(w):
        w.gate = ExplodingGate()

    table = LockTable()
    held = table.acquire("i", owner="a")
    behind = {}
    monkeypatch.setattr(locks, "_sync_waiter", waiter_with_exploding_gate)
    with pytest.raises(Boom):
        table.acquire("i", owner="b")
    monkeypatch.undo()
    assert table.waiting("i") == ()
    t = threading.Thread(target=lambda: behind.setdefault("lease", table.acquire("i", owner="c")))
    t.start()
    while not table.waiting("i"):
        time.sleep(0.001)
    held.release()
    t.join(10)
    assert behind["lease"].owner == "c"  # the abandoned request did not block the one behind
    behind["lease"].release()
    assert len(table) == 0
