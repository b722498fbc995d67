"""The lock table under faults, against real redis-servers started here: eviction
policies refused, hidden CONFIG, on_lost exactly once, unencodable names, a
release whose outcome is unknown, lock names that would break a hash tag, and a
real three-master Redis Cluster."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import REDIS_SERVER, RedisServer, wait_for_withdrawals
from realservers import free_ports

redis = pytest.importorskip("redis", reason="redis-py is not installed")
from ringhash import LockBackendError, LockTable, LockTimeout  # noqa: E402
from ringhash.locks._api import notify_lost  # noqa: E402
from ringhash.redis_locks import RedisLockTable  # noqa: E402

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(REDIS_SERVER is None, reason="no redis-server binary (.ci/run installs it)"),
]


class ConfiguredRedis(RedisServer):
    """A RedisServer with extra command-line settings."""

    def __init__(self, directory, *extra: str) -> None:
        super().__init__(directory)
        self.extra = list(extra)

    def start(self):  # type: ignore[no-untyped-def]
        import subprocess as sp

        real = sp.Popen

        def popen(args, *a, **kw):  # type: ignore[no-untyped-def]
            return real([*args, *self.extra], *a, **kw)

        sp.Popen = popen  # type: ignore[misc]
        try:
            return super().start()
        finally:
            sp.Popen = real  # type: ignore[misc]


@pytest.mark.parametrize(
    "policy",
    ["allkeys-lru", "volatile-lru", "allkeys-lfu", "volatile-ttl", "allkeys-random"],
)
def test_eviction_policies_are_refused(tmp_path, policy, caplog):
    server = ConfiguredRedis(tmp_path, "--maxmemory", "2mb", "--maxmemory-policy", policy).start()
    try:
        table = RedisLockTable(server.client())
        with pytest.raises(LockBackendError, match=f"maxmemory-policy is '{policy}'"):
            table.acquire("x")
        with caplog.at_level(logging.WARNING, logger="ringhash.locks"):
            opted = RedisLockTable(server.client(), check_eviction=False)
            opted.acquire("x").release()
        assert "check_eviction=False" in caplog.text
    finally:
        server.kill()


def test_noeviction_is_accepted_and_hidden_config_explained(tmp_path):
    server = ConfiguredRedis(tmp_path, "--maxmemory", "2mb", "--maxmemory-policy", "noeviction")
    server.start()
    try:
        RedisLockTable(server.client()).acquire("x").release()
    finally:
        server.kill()
    hidden = ConfiguredRedis(tmp_path / "h", "--rename-command", "CONFIG", '""')
    (tmp_path / "h").mkdir()
    hidden.start()
    try:
        with pytest.raises(LockBackendError, match="check_eviction=False"):
            RedisLockTable(hidden.client()).acquire("x")
        RedisLockTable(hidden.client(), check_eviction=False).acquire("x").release()
    finally:
        hidden.kill()


def test_on_lost_is_called_once():
    calls = []
    table = LockTable()
    lease = table.acquire("n", ttl=10, on_lost=calls.append)
    notify_lost([lease])
    notify_lost([lease, lease])  # the watcher and a failed renewal both notice
    assert calls == [lease]


def test_a_lease_redis_cannot_be_asked_about_is_lost_soon_after_its_expiry(tmp_path):
    """Its expiry watcher asks Redis at the lease's local expiry; with Redis gone it
    cannot tell, asks again, and after UNCHECKED_GRACE calls on_lost and stops asking
    (before, it asked every 20 ms for as long as Redis stayed away)."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from ringhash.locks._redis_lost import UNCHECKED_GRACE

    server = RedisServer(tmp_path).start()
    table = RedisLockTable(server.client(retry=Retry(NoBackoff(), 0)), prefix="u:")
    lost = threading.Event()
    lease = table.acquire("n", ttl=0.3, on_lost=lambda _: lost.set())
    asked = []
    real = table._is_valid
    table._is_valid = lambda lease, deadline: (
        asked.append(time.monotonic()) or real(lease, deadline)
    )
    server.kill()
    assert lost.wait(UNCHECKED_GRACE + 10)
    assert lease.expires_at + UNCHECKED_GRACE <= time.monotonic()
    assert len(asked) >= 2  # it did ask again before giving up
    n = len(asked)
    time.sleep(0.3)
    assert len(asked) == n  # and asks no more
    assert table.stats().expiries == 1


def test_leases_a_stalled_redis_cannot_answer_about_are_lost_within_the_grace(tmp_path):
    """A stalled server (stopped, not gone) and a client without a socket timeout: each
    of the watcher's questions ends by its lease's expiry + UNCHECKED_GRACE, so every
    lease is lost within UNCHECKED_GRACE of its expiry (before, the watcher thread
    waited for an answer for as long as the server stayed stopped: no on_lost at all;
    with the usual deadline slack per question, the later leases here came late)."""
    from ringhash.locks._redis_lost import UNCHECKED_GRACE

    server = RedisServer(tmp_path).start()
    try:
        table = RedisLockTable(server.client(), prefix="s:")  # no socket timeout
        told: dict[str, float] = {}
        lost = threading.Event()

        def on_lost(lease):  # type: ignore[no-untyped-def]
            told[lease.name] = time.monotonic()
            if len(told) == 6:
                lost.set()

        leases = []
        for i in range(6):  # expiring 50 ms apart: not all due in one round
            leases.append(table.acquire(f"n{i}", ttl=1.0, on_lost=on_lost))
            time.sleep(0.05)
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            assert lost.wait(UNCHECKED_GRACE + 5)
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        for lease in leases:  # 0.3 s: the watcher thread's scheduling on a busy machine
            assert lease.expires_at + UNCHECKED_GRACE - 0.05 <= told[lease.name]
            assert told[lease.name] <= lease.expires_at + UNCHECKED_GRACE + 0.3
        assert table.stats().expiries == 6
        assert table.acquire("n0", ttl=1).token > leases[0].token  # usable again
    finally:
        server.kill()


def test_valid_is_answered_by_the_lease_expiry_whatever_redis_does(tmp_path):
    """``lease.valid`` asks Redis by the lease's local expiry at the latest: a stalled
    server and a client without a socket timeout get False at the expiry (before: no
    answer for as long as the server stayed stopped); past the expiry the answer is
    False without asking; a server that refuses sooner is a LockBackendError."""
    server = RedisServer(tmp_path).start()
    try:
        table = RedisLockTable(server.client(), prefix="v:")  # no socket timeout
        lease = table.acquire("n", ttl=1.0)
        assert lease.valid
        box: dict[str, object] = {}

        def ask() -> None:
            box["valid"] = lease.valid
            box["at"] = time.monotonic()

        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            asking = threading.Thread(target=ask, daemon=True)
            asking.start()
            asking.join(lease.remaining() + 5)
            assert box.get("valid") is False
            assert lease.expires_at <= box["at"] <= lease.expires_at + 0.5
            asked = []
            real = table._call
            table._call = lambda script, *a: asked.append(script) or real(script, *a)
            assert not lease.valid and asked == []  # past the expiry: not asked
            table._call = real
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        fresh = table.acquire("m", ttl=30)
        assert fresh.valid
        server.kill()
        with pytest.raises(LockBackendError):
            fresh.valid  # noqa: B018
    finally:
        server.kill()


def test_keep_alive_renewals_are_bounded_by_the_lease_expiry(tmp_path):
    """A renewal a stalled Redis does not answer (a client without a socket timeout)
    fails at the lease's expiry (+ the deadline slack): on_lost once, and ``stop()``
    returns (before: the renewal, and so ``stop()``, waited for the server)."""
    from ringhash.locks._redis import DEADLINE_SLACK

    server = RedisServer(tmp_path).start()
    try:
        table = RedisLockTable(server.client(), prefix="k:")  # no socket timeout
        lost = []
        lease = table.acquire("n", ttl=1.0, on_lost=lost.append)
        keep = lease.keep_alive(every=0.3)
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(0.4)  # a renewal is under way, unanswered
            stopping = threading.Thread(target=keep.stop, daemon=True)
            stopping.start()
            stopping.join(lease.remaining() + DEADLINE_SLACK + 3)
            assert not stopping.is_alive()
            assert time.monotonic() <= lease.expires_at + DEADLINE_SLACK + 0.5
            deadline = time.monotonic() + 3
            while not lost and time.monotonic() < deadline:
                time.sleep(0.02)
            assert lost == [lease]
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
    finally:
        server.kill()


def test_on_lost_once_when_redis_stalls_under_keep_alive(tmp_path):
    server = RedisServer(tmp_path).start()
    try:
        table = RedisLockTable(server.client(socket_timeout=0.2))
        calls = []
        lease = table.acquire("n", ttl=0.6, on_lost=calls.append)
        keep = lease.keep_alive()
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 10
            while not calls and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(1.0)  # both the renewal and the expiry watcher have had their say
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        keep.stop()
        assert calls == [lease]
    finally:
        server.kill()


@pytest.mark.parametrize("name", ["\udcff", "a\ud800b"])
def test_unencodable_names(make_table, name):
    table = make_table()
    with pytest.raises(ValueError, match="not encodable as UTF-8"):
        table.acquire(name)


def test_a_failed_release_does_not_block_the_owner(tmp_path):
    server = RedisServer(tmp_path).start()
    try:
        table = RedisLockTable(server.client(socket_timeout=0.5), prefix="f:")
        lease = table.acquire("n", ttl=3)
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            with pytest.raises(LockBackendError):
                lease.release(timeout=0.3)
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        # the outcome was unknown: no DeadlockError from a stale record, the lock comes
        # back (released once Redis ran the release, or at the TTL at the latest)
        again = table.acquire("n", ttl=3, timeout=10)
        assert again.token > lease.token
        again.release()
    finally:
        server.kill()


def test_a_counter_lost_in_a_restart_starts_above_every_token_it_gave(tmp_path):
    """A restart that lost the data (no AOF) loses the fencing counters; a new one
    starts at the server's clock in microseconds, not at 1, so its tokens are above
    every token the lost one gave: for a table that saw them and for one that did
    not (which has nothing to compare with)."""
    server = RedisServer(tmp_path).start()
    try:
        client = server.client()
        table = RedisLockTable(client, prefix="g:")
        before = client.time()
        first = table.acquire("n", ttl=5)
        after = client.time()
        # the server's clock when the counter was made, in microseconds
        assert before[0] * 10**6 + before[1] <= first.token <= after[0] * 10**6 + after[1]
        assert first.token < 2**53  # exact as a double (Lua's numbers, JSON)
        first.release()
        given = [first.token]
        for _ in range(200):
            lease = table.acquire("n", ttl=5)
            given.append(lease.token)
            lease.release()
        assert given == list(range(first.token, first.token + 201))  # one by one from there
        shared = table.acquire("s", mode="shared", ttl=5)  # the general form's grant()
        other = RedisLockTable(client, prefix="g:").acquire("s", mode="shared", ttl=5)
        assert other.token == shared.token + 1
        from ringhash.locks._redis import _Keys

        client.delete(_Keys("g:", "s").key("tokens"))  # that counter alone lost
        third = table.acquire("s", mode="shared", ttl=5)  # joins: grant() makes the counter
        assert third.token > other.token
        given_s = [shared.token, other.token, third.token]
        server.kill()
        server.start()  # no persistence: every key is gone
        assert table.holders("n") == () and client.dbsize() == 0
        again = table.acquire("n", ttl=5, timeout=1)  # the table that saw them
        fresh = RedisLockTable(server.client(), prefix="g:")  # one that never did
        assert again.token > max(given)
        again.release()
        assert fresh.acquire("n", ttl=5, timeout=1).token == again.token + 1
        s1 = fresh.acquire("s", mode="shared", ttl=5)
        s2 = table.acquire("s", mode="shared", ttl=5)
        assert min(s1.token, s2.token) > max(given_s)
    finally:
        server.kill()


def test_a_counter_that_went_back_is_refused(redis_server):
    """A counter below a token a table has seen for the name (what a failover to a
    replica that missed writes leaves, or an older snapshot restored) is refused by
    that table, naming the repair; a table that never saw the name cannot tell."""
    from ringhash.locks._redis import _Keys

    client = redis.Redis(port=redis_server.port)
    table = RedisLockTable(client, prefix="g:")
    for _ in range(3):
        table.acquire("n", ttl=5).release()
    seen = table.acquire("n", ttl=5)
    seen.release()
    tokens = _Keys("g:", "n").key("tokens")
    client.set(tokens, seen.token - 3)  # the counter as an older copy has it
    want = rf"fencing counter of 'n' went back: it is at {seen.token - 3},.*token {seen.token}"
    with pytest.raises(LockBackendError, match=want):
        table.acquire("n", ttl=5, timeout=1)
    assert table.holders("n") == () and table.waiting("n") == ()  # nothing granted
    assert int(client.get(tokens)) == seen.token - 3  # nor a token used up
    with pytest.raises(LockBackendError, match="went back"):
        table.acquire("n", ttl=5, timeout=0)
    fresh = RedisLockTable(client, prefix="g:")  # no memory: cannot tell
    # Queued behind a holder when a release finds the counter below what the head's
    # table has seen: that head is refused promptly (not granted, not sent to the
    # back of the queue), and the waiter behind it, which cannot tell, gets the lock.
    holder = fresh.acquire("n", ttl=30)
    assert holder.token == seen.token - 2
    refused: list[tuple[BaseException, float]] = []
    after: list = []

    def head():
        try:
            table.acquire("n", ttl=5, timeout=10)
        except LockBackendError as e:
            refused.append((e, time.monotonic()))

    def behind():
        after.append(RedisLockTable(client, prefix="g:").acquire("n", timeout=10))

    threads = [threading.Thread(target=head), threading.Thread(target=behind)]
    for i, t in enumerate(threads):
        t.start()
        while len(table.waiting("n")) < i + 1:
            time.sleep(0.01)
    t0 = time.monotonic()
    holder.release()
    threads[1].join(10)
    assert after and after[0].token == holder.token + 1
    threads[0].join(10)
    assert refused and "went back" in str(refused[0][0])
    assert refused[0][1] - t0 < 2 and table.waiting("n") == ()
    after[0].release()
    client.set(tokens, seen.token)  # the repair the message names
    lease = table.acquire("n", ttl=5, timeout=1)
    assert lease.token == seen.token + 1
    lease.release()


def test_braces_in_names_and_prefixes(redis_server):
    from redis.cluster import key_slot

    from ringhash.locks._redis import _Keys

    client = redis_server.client()
    for name in ["}a", "{b}", "x{y}z", "\\(", "plain"]:
        keys = _Keys("p:", name)
        slots = {key_slot(keys.key(part).encode()) for part in _Keys.PARTS}
        assert len(slots) == 1, name  # one lock, one slot, whatever the name
        table = RedisLockTable(client, prefix="p:")
        with table.lock(name, timeout=5) as lease:
            assert lease.valid
    # distinct names never share keys: "a{b" and "a\\(b" escape differently
    assert _Keys("p:", "a{b").key("holders") != _Keys("p:", "a\\(b").key("holders")
    with pytest.raises(ValueError, match="braces"):
        RedisLockTable(client, prefix="x{y}:")


# ---------------------------------------------------------------- Redis Cluster


def _cluster_ports(n: int) -> list[int]:
    """``n`` distinct free ports whose cluster bus ports (port + 10000) are free and
    valid too."""
    import contextlib
    import socket

    for _ in range(1000):
        ports = free_ports(n)
        if any(p + 10000 > 65535 or p + 10000 in ports for p in ports):
            continue
        try:
            with contextlib.ExitStack() as stack:
                for p in ports:
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", p + 10000))
        except OSError:
            continue
        return ports
    raise RuntimeError("no free port pairs for cluster nodes")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cli = shutil.which("redis-cli")
    if cli is None:
        pytest.skip("no redis-cli (it comes with redis-server; .ci/run installs it)")
    ports = _cluster_ports(3)
    procs = []
    for port in ports:
        d = tmp_path_factory.mktemp(f"cluster{port}")
        procs.append(
            subprocess.Popen(
                [
                    REDIS_SERVER,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(d / "nodes.conf"),
                    "--dir",
                    str(d),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    try:
        for port in ports:
            deadline = time.monotonic() + 10
            while True:
                try:
                    redis.Redis(host="127.0.0.1", port=port).ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *[f"127.0.0.1:{p}" for p in ports],
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 20
        while (
            redis.Redis(host="127.0.0.1", port=ports[0]).cluster("info").get("cluster_state")
            != "ok"
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not come up")
            time.sleep(0.1)
        yield ports
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_cluster_locks(cluster):
    from redis.cluster import RedisCluster

    client = RedisCluster(host="127.0.0.1", port=cluster[0], socket_timeout=5)
    table = RedisLockTable(client, prefix="c:")
    names = [f"lock-{i}" for i in range(30)] + ["}x", "{y}", "a{b}c"]
    slots = {client.keyslot(f"c:{{{n}}}:holders") for n in names}
    assert len(slots) > 10  # the names really are spread over the masters
    tokens = {}
    for name in names:
        with table.lock(name, timeout=5) as lease:
            tokens[name] = lease.token
        with table.lock(name, timeout=5) as lease:
            assert lease.token > tokens[name]  # fencing tokens keep increasing
    # contention through the cluster: the waiter is woken when the holder releases
    holder = table.acquire("busy", ttl=30)
    got = []

    def waiter() -> None:
        with table.lock("busy", timeout=10) as lease:
            got.append(lease.token)

    pipelined = []
    both = table._scripts.call_then_pop
    table._scripts.call_then_pop = lambda *a, **kw: pipelined.append(a) or both(*a, **kw)
    for _ in range(2):  # the second time "busy" is contended of late: still no pipelining
        got.clear()
        t = threading.Thread(target=waiter)
        t.start()
        time.sleep(0.3)
        assert not got
        holder.release()
        t.join(10)
        assert got and got[0] > holder.token
        holder = table.acquire("busy", ttl=30)
    holder.release()
    # a cluster client routes each command by its key: an ACQUIRE and a pop are not
    # sent in one write (which the fallback would follow with a second ACQUIRE)
    assert pipelined == []
    client.close()


def test_cluster_async_client(cluster):
    from redis.asyncio.cluster import RedisCluster as AsyncCluster
    from redis.cluster import RedisCluster

    async def run() -> int:
        aclient = AsyncCluster(host="127.0.0.1", port=cluster[0])
        table = RedisLockTable(
            RedisCluster(host="127.0.0.1", port=cluster[0]), async_client=aclient, prefix="a:"
        )
        async with table.lock_async("alock", timeout=5) as lease:
            token = lease.token
        await aclient.aclose()
        return token

    assert asyncio.run(run()) >= 1
    with pytest.raises(TypeError, match="redis.asyncio.Redis or redis.asyncio.RedisCluster"):
        RedisLockTable(redis.Redis(host="127.0.0.1", port=cluster[0]), async_client=object())


# ---------------------------------------------------------------- ghost grants


@pytest.mark.parametrize("stall", ["debug-sleep", "sigstop"])
def test_no_ghost_grant_outlives_its_caller(tmp_path, stall):
    """An acquire whose reply never reaches the caller (socket timeout while the
    server stalls; the command, or redis-py's re-send of it, runs later) leaves
    no lease behind: the caller's give-up releases it, well before the TTL."""
    server = ConfiguredRedis(tmp_path, "--enable-debug-command", "yes").start()
    try:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # no library retries: the call gives up at its socket timeout, as a deadline would
        fast = server.client(socket_timeout=0.1, retry=Retry(NoBackoff(), 0))
        impatient = RedisLockTable(fast, prefix="g:")
        other = RedisLockTable(server.client(socket_timeout=5), prefix="g:")
        impatient.acquire("warm-up", ttl=1).release()  # first-use checks, script loaded
        if stall == "debug-sleep":
            staller = threading.Thread(
                target=lambda: server.client(socket_timeout=5).execute_command(
                    "DEBUG", "SLEEP", "0.8"
                )
            )
            staller.start()
            time.sleep(0.1)
        else:
            os.kill(server.proc.pid, signal.SIGSTOP)
            threading.Timer(0.8, os.kill, (server.proc.pid, signal.SIGCONT)).start()
        t0 = time.monotonic()
        with pytest.raises((LockBackendError, Exception)):
            impatient.acquire("ghost", ttl=30, timeout=0.3)
        if stall == "debug-sleep":
            staller.join()
        # the name is free again long before the 30 s TTL
        deadline = time.monotonic() + 5
        while True:
            try:
                lease = other.acquire("ghost", ttl=5, timeout=0)
                break
            except Exception:
                assert time.monotonic() < deadline, "a ghost lease is still held"
                time.sleep(0.05)
        assert time.monotonic() - t0 < 5
        lease.release()
        assert other.holders("ghost") == ()
    finally:
        server.kill()


def test_a_resent_acquire_returns_the_same_grant(redis_server):
    table = RedisLockTable(redis_server.client(), prefix="r:")

    r = table._request("same", "exclusive", 10.0, "me", None)
    keys, args = table._acquire_call(r, True)
    first = table._call("acquire", keys, args, "acquire")  # a new grant: its token
    again = table._call("acquire", keys, args, "acquire")  # what a re-send does
    assert isinstance(first, int) and again[:2] == [1, first]
    table._cancel(r)  # the caller gives up: the grant is released
    assert table.holders("same") == ()


# ---------------------------------------------------------------- deadlines


def nothing_left_behind(table, name):  # type: ignore[no-untyped-def]
    """Once Redis answers again, an abandoned acquire leaves no lease behind (its
    withdrawal, retried in the background, gets through)."""
    deadline = time.monotonic() + 5
    while table.holders(name):
        assert time.monotonic() < deadline, "the abandoned acquire left a lease"
        time.sleep(0.05)


@pytest.mark.parametrize("timeout", [0, 1.0])
def test_acquire_timeout_bounds_the_call_while_redis_stalls(tmp_path, timeout):
    """acquire(timeout=t) returns or raises within t + DEADLINE_SLACK + CANCEL_WAIT
    (0.6 s) even when Redis stops answering, whatever the client's socket timeout
    and retries."""
    from ringhash.locks._redis import CANCEL_WAIT, DEADLINE_SLACK

    server = RedisServer(tmp_path).start()
    try:
        table = RedisLockTable(server.client(socket_timeout=5), prefix="d:")
        table.acquire("warm-up", ttl=1).release()
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            with pytest.raises(LockBackendError, match="did not answer within the timeout"):
                table.acquire("d", ttl=30, timeout=timeout)
            elapsed = time.monotonic() - t0
            assert elapsed < timeout + DEADLINE_SLACK + CANCEL_WAIT + 0.2, elapsed
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        nothing_left_behind(table, "d")
        table.acquire("d", ttl=5, timeout=2).release()
        wait_for_withdrawals()
    finally:
        server.kill()


@pytest.mark.parametrize("timeout", [0, 0.5])
@pytest.mark.parametrize("through", ["async_client", "worker thread"])
def test_acquire_async_timeout_bounds_the_call_while_redis_stalls(tmp_path, timeout, through):
    """``acquire_async(timeout=t)`` returns or raises within t + DEADLINE_SLACK +
    CANCEL_WAIT when Redis stops answering, through an asyncio client or the sync
    client's calls in a worker thread (before: either waited for the server, whatever
    the timeout); the abandoned attempt leaves nothing behind once Redis answers."""
    from redis.asyncio import Redis as AsyncRedis

    from ringhash.locks._redis import CANCEL_WAIT, DEADLINE_SLACK

    server = RedisServer(tmp_path).start()

    async def main() -> None:
        aclient = AsyncRedis(port=server.port) if through == "async_client" else None
        table = RedisLockTable(server.client(), async_client=aclient, prefix="s:")
        (await table.acquire_async("warm-up", ttl=1)).release()
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            start = time.monotonic()
            with pytest.raises(LockBackendError, match="did not answer within the timeout"):
                await asyncio.wait_for(table.acquire_async("d", ttl=30, timeout=timeout), 10)
            elapsed = time.monotonic() - start
            assert elapsed < timeout + DEADLINE_SLACK + CANCEL_WAIT + 0.3, elapsed
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        nothing_left_behind(table, "d")
        (await table.acquire_async("d", ttl=5, timeout=2)).release()
        if aclient is not None:
            await aclient.aclose()

    try:
        asyncio.run(main())
        wait_for_withdrawals()
    finally:
        server.kill()


def test_handing_back_a_cancelled_async_acquires_lease_is_bounded(tmp_path, caplog):
    """When a cancelled ``acquire_async``'s attempt gets a lease all the same, a callback in
    the event loop hands it back: bounded like a withdrawal even when Redis stalls (a
    warning; the lease ends at its TTL), where it held the loop until the server answered."""
    from ringhash.locks._redis import CANCEL_WAIT, DEADLINE_SLACK, _release_if_granted

    server = RedisServer(tmp_path).start()
    loop = asyncio.new_event_loop()
    try:
        table = RedisLockTable(server.client(), prefix="h:")  # no socket timeout
        granted = loop.create_future()
        granted.set_result((table.acquire("n", ttl=30), 0.0, 0.0))
        took: list[float] = []

        def hand_back() -> None:
            start = time.monotonic()
            _release_if_granted(granted)
            took.append(time.monotonic() - start)

        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            with caplog.at_level(logging.WARNING, logger="ringhash.locks"):
                callback = threading.Thread(target=hand_back, daemon=True)
                callback.start()
                callback.join(CANCEL_WAIT + DEADLINE_SLACK + 5)
            assert took and took[0] < CANCEL_WAIT + DEADLINE_SLACK + 0.3
            assert "could not hand back" in caplog.text
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
    finally:
        loop.close()
        server.kill()


def test_a_lease_the_withdrawal_gave_back_is_not_reported_as_kept(tmp_path, caplog):
    """A cancelled attempt's lease that the caller's withdrawal has already released (the
    usual order: the withdrawal is made at once, the attempt's thread ends later) is not
    reported as kept until its TTL, and is forgotten here."""
    from ringhash.locks._redis import _release_if_granted

    server = RedisServer(tmp_path).start()
    loop = asyncio.new_event_loop()
    try:
        table = RedisLockTable(server.client(), prefix="w:")
        lease = table.acquire("n", ttl=30)
        client = server.client()
        client.delete(*client.keys("w:*"))  # released behind its back, as a withdrawal does
        granted = loop.create_future()
        granted.set_result((lease, 0.0, 0.0))
        with caplog.at_level(logging.WARNING, logger="ringhash.locks"):
            _release_if_granted(granted)
        assert "could not hand back" not in caplog.text
        assert table.stats().holders == 0
    finally:
        loop.close()
        server.kill()


@pytest.mark.parametrize("timeout", [0, 0.5])
def test_the_first_acquire_timeout_bounds_the_eviction_check(tmp_path, timeout):
    """A table's first acquire reads maxmemory-policy first; by the acquire's deadline
    too (before, a stalled server and a client without a socket timeout held the first
    acquire, whatever its timeout, until the server answered); the check is made again
    on the next use, and passes once Redis answers."""
    from ringhash.locks._redis import DEADLINE_SLACK

    server = RedisServer(tmp_path).start()
    try:
        table = RedisLockTable(server.client(), prefix="e:")  # no socket timeout
        box: dict[str, object] = {}

        def first() -> None:
            start = time.monotonic()
            try:
                table.acquire("n", ttl=5, timeout=timeout)
            except LockBackendError as e:
                box["error"] = str(e)
            box["took"] = time.monotonic() - start

        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            asking = threading.Thread(target=first, daemon=True)
            asking.start()
            asking.join(timeout + DEADLINE_SLACK + 5)
            assert "took" in box, "the first acquire is still waiting"
            assert box["took"] < timeout + DEADLINE_SLACK + 0.3
            assert "maxmemory-policy" in str(box["error"])
            assert "did not answer in time" in str(box["error"])
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        table.acquire("n", ttl=5, timeout=5).release()
    finally:
        server.kill()


class Ticker:
    """A task that ticks every 10 ms: how long the event loop ran while a call waited."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            self.ticks += 1

    def ran_for(self, seconds: float) -> None:
        assert self.ticks >= 20 * seconds, f"the event loop ran {self.ticks} ticks of 10 ms"

    def stop(self) -> None:
        self._task.cancel()


@pytest.mark.parametrize("kind", ["acquire", "acquire_async"])
def test_the_first_acquire_has_one_deadline_for_the_check_and_the_wait(tmp_path, kind):
    """The eviction check and the wait share the acquire's one deadline: a server that
    answers the check late leaves the wait only what is left of the timeout (before, the
    wait got the whole timeout again, so a first acquire could take nearly twice it)."""
    from ringhash.locks._redis import CANCEL_WAIT, DEADLINE_SLACK

    server = RedisServer(tmp_path).start()
    try:
        held = RedisLockTable(server.client(), prefix="o:").acquire("n", ttl=30)
        table = RedisLockTable(server.client(), prefix="o:")  # its first call: the check
        os.kill(server.proc.pid, signal.SIGSTOP)
        resume = threading.Timer(0.9, os.kill, (server.proc.pid, signal.SIGCONT))
        resume.start()
        start = time.monotonic()
        with pytest.raises(LockTimeout):
            if kind == "acquire":
                table.acquire("n", ttl=5, timeout=1.0)
            else:
                asyncio.run(table.acquire_async("n", ttl=5, timeout=1.0))
        elapsed = time.monotonic() - start
        resume.join()
        assert elapsed < 1.0 + DEADLINE_SLACK + CANCEL_WAIT, elapsed
        held.release()
        table.acquire("n", ttl=5, timeout=5).release()
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
        server.kill()


def test_the_first_acquire_async_checks_eviction_off_the_event_loop(tmp_path):
    """The eviction check of a table's first ``acquire_async`` runs in a worker thread:
    made in the event loop, it stopped every other task for as long as a stalled Redis
    took to answer (with ``timeout=None``, until it did)."""
    server = RedisServer(tmp_path).start()

    async def main() -> None:
        table = RedisLockTable(server.client(socket_timeout=3), prefix="l:")

        loop = Ticker()
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            first = asyncio.ensure_future(table.acquire_async("n", ttl=5))
            await asyncio.sleep(1.0)
            loop.ran_for(1.0)
            assert not first.done()
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        (await asyncio.wait_for(first, 5)).release()  # granted once Redis answers
        loop.stop()

    try:
        asyncio.run(main())
    finally:
        server.kill()


def run_on_a_table_of_its_own(tmp_path, through, body):  # type: ignore[no-untyped-def]
    """Run ``await body(table, server)`` in an event loop, ``table`` on a redis-server of
    its own, through an asyncio client or (``through="worker thread"``) none; the server
    is resumed (if the body stopped it) and killed after, whatever happened."""
    from redis.asyncio import Redis as AsyncRedis

    server = RedisServer(tmp_path).start()

    async def main() -> None:
        aclient = AsyncRedis(port=server.port) if through == "async_client" else None
        try:
            await body(RedisLockTable(server.client(), async_client=aclient, prefix="r:"), server)
        finally:
            if aclient is not None:
                await aclient.aclose()

    try:
        asyncio.run(main())
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
        server.kill()


@pytest.mark.parametrize("through", ["async_client", "worker thread"])
def test_async_reads_never_block_the_event_loop(tmp_path, through):
    """``holders_async``/``waiting_async`` while Redis is stopped: the event loop runs on
    (``holders``/``waiting`` called there would stop every task until Redis answered),
    their timeout holds, and without one they wait for Redis's answer."""
    from ringhash.locks._redis import DEADLINE_SLACK

    async def body(table, server) -> None:  # type: ignore[no-untyped-def]
        lease = await table.acquire_async("n", ttl=30)
        assert await table.holders_async("n") == (lease,)
        assert await table.waiting_async("n") == ()
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            loop = Ticker()
            for read in (table.holders_async, table.waiting_async):
                start = time.monotonic()
                with pytest.raises(LockBackendError, match="did not answer within the timeout"):
                    await read("n", timeout=0.3)
                assert time.monotonic() - start < 0.3 + DEADLINE_SLACK + 0.3
            loop.ran_for(0.6)
            reading = asyncio.ensure_future(table.holders_async("n"))
            await asyncio.sleep(0.5)
            assert not reading.done()
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        assert await asyncio.wait_for(reading, 5) == (lease,)
        loop.stop()
        await lease.release_async()

    run_on_a_table_of_its_own(tmp_path, through, body)


@pytest.mark.parametrize("through", ["async_client", "worker thread"])
def test_async_lease_calls_never_block_the_event_loop(tmp_path, through):
    """``async with table.lock_async(...)`` releases with ``release_async``: the event
    loop keeps running while a stalled Redis has not answered (the release was a sync
    call in the loop, which stopped every task until Redis answered), and a release
    whose caller is cancelled still completes once Redis answers. ``extend_async``
    likewise, and its timeout holds."""
    from ringhash.locks._redis import DEADLINE_SLACK

    async def body(table, server) -> None:  # type: ignore[no-untyped-def]
        async def hold() -> None:
            async with table.lock_async("n", ttl=30) as lease:
                os.kill(server.proc.pid, signal.SIGSTOP)
                start = time.monotonic()
                with pytest.raises(LockBackendError, match="did not answer within the timeout"):
                    await lease.extend_async(30, timeout=0.3)
                assert time.monotonic() - start < 0.3 + DEADLINE_SLACK + 0.3

        loop = Ticker()
        holder = asyncio.ensure_future(hold())
        try:
            await asyncio.sleep(1.0)
            loop.ran_for(1.0)
            assert not holder.done()
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        await asyncio.wait_for(holder, 5)
        assert table.holders("n") == ()

        lease = await table.acquire_async("m", ttl=30)
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            releasing = asyncio.ensure_future(lease.release_async())
            await asyncio.sleep(0.2)
            releasing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await releasing
            assert table.stats().holders == 0  # forgotten here at once
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        other = RedisLockTable(server.client(), prefix="r:")
        assert (await other.acquire_async("m", ttl=5, timeout=5)).token == lease.token + 1
        loop.stop()

    run_on_a_table_of_its_own(tmp_path, through, body)


def test_async_calls_meet_a_restarted_server_as_the_clients_own_do(tmp_path):
    """The async API's script calls (packed here, sent on the asyncio client's pool):
    while Redis is down they fail as ``LockBackendError``; once it is back (the AOF
    replayed) the dead connections are made again and the lease is still there; a server
    that lost its scripts gets them again."""
    from redis.asyncio import Redis as AsyncRedis

    server = RedisServer(tmp_path, aof=True).start()

    async def main() -> None:
        timeouts = dict(socket_timeout=1, socket_connect_timeout=0.5)
        aclient = AsyncRedis(port=server.port, **timeouts)
        table = RedisLockTable(server.client(**timeouts), async_client=aclient, prefix="f:")
        held = await table.acquire_async("acct", ttl=30)
        server.kill()
        with pytest.raises(LockBackendError):
            await held.extend_async(30)
        server.start()  # same port and directory: the append-only file is replayed
        await held.extend_async(30)  # no scripts on the new server: loaded again
        await held.release_async()
        async with table.lock_async("acct", timeout=5) as again:
            assert again.token == held.token + 1
        await aclient.aclose()

    try:
        asyncio.run(main())
        wait_for_withdrawals()
    finally:
        server.stop()


def test_release_and_extend_take_a_timeout(tmp_path):
    from ringhash.locks._redis import DEADLINE_SLACK

    server = RedisServer(tmp_path).start()
    try:
        table = RedisLockTable(server.client(socket_timeout=5), prefix="t:")
        a = table.acquire("a", ttl=30)
        b = table.acquire("b", ttl=30)
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            for call in (
                lambda: b.extend(30, timeout=0.3),
                lambda: a.release(timeout=0.3),
                lambda: table.holders("b", timeout=0.3),
                lambda: table.waiting("b", timeout=0.3),
            ):
                t0 = time.monotonic()
                with pytest.raises(LockBackendError, match="did not answer within the timeout"):
                    call()
                assert time.monotonic() - t0 < 0.3 + DEADLINE_SLACK + 0.2
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        # the owner is not blocked by the release whose outcome was unknown
        table.acquire("a", ttl=5, timeout=5).release()
        b.release(timeout=5)
        with pytest.raises(ValueError):
            table.acquire("c", ttl=5).release(timeout=-1)
        assert table.holders("b", timeout=5) == () and table.waiting("b", timeout=5) == ()
    finally:
        server.kill()


@pytest.mark.parametrize("call", ["holders", "waiting"])
def test_introspection_timeouts_are_checked(make_table, call):
    table = make_table()
    with pytest.raises(ValueError):
        getattr(table, call)("n", timeout=-1)
    with pytest.raises(TypeError):
        getattr(table, call)("n", timeout="1")


def test_a_long_queue_is_listed_whole(redis_server):
    """``waiting`` reads the queue in one script, in parts of 1,000 (Lua's unpack stops
    at a few thousand values): 10,001 waiters, listed whole and in order."""
    client = redis_server.client()
    table = RedisLockTable(client, prefix="long:")
    base = "long:{n}"
    n = 10_001
    with client.pipeline(transaction=False) as p:
        for i in range(n):
            p.zadd(f"{base}:queue", {f"w{i}": i})
            p.hset(f"{base}:qinfo", f"w{i}", f"exclusive|{i}|30000|0|owner{i}")
        p.execute()
    listed = table.waiting("n")
    assert [w.owner for w in listed] == [f"owner{i}" for i in range(n)]
    assert listed[-1].since == (n - 1) / 1000


def test_memory_backend_accepts_the_timeouts():
    table = LockTable()
    lease = table.acquire("m", ttl=10)
    lease.extend(20, timeout=1)
    assert table.holders("m", timeout=1) == (lease,) and table.waiting("m", timeout=1) == ()
    lease.release(timeout=1)


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_pipelined_grant_is_returned_when_redis_stalls_before_its_pop_is_ended(
    tmp_path, monkeypatch, api
):
    """An acquire of a lock contended of late that finds it free is granted by its
    ACQUIRE, and must then end the blocking pop it sent along (a '0' pushed from
    another connection). Redis stopped just then: the grant is returned all the same,
    by the call's deadline, the pop ending with its connection (before: the ending's
    own 0.5 s and then a LockBackendError, the grant given back)."""
    import ringhash.locks._redis as engine
    from ringhash.locks._redis import DEADLINE_SLACK

    server = RedisServer(tmp_path).start()
    stopped = []
    real = engine._queued

    def queued(reply):  # read after the ACQUIRE's reply, before the pop is ended
        if not real(reply) and not stopped:
            os.kill(server.proc.pid, signal.SIGSTOP)
            stopped.append(time.monotonic())
        return real(reply)

    try:
        client = server.client()  # no socket timeout: only the deadline bounds a call
        aclient = redis.asyncio.Redis(port=server.port) if api == "async" else None
        table = RedisLockTable(client, async_client=aclient, prefix="pe:")
        other = RedisLockTable(server.client(), prefix="pe:")
        holder = other.acquire("x", ttl=30)
        waiter = threading.Thread(target=lambda: table.acquire("x", ttl=30, timeout=10).release())
        waiter.start()  # waits: "x" is contended of late for ``table``
        while not table.waiting("x"):
            time.sleep(0.01)
        holder.release()
        waiter.join(10)
        monkeypatch.setattr(engine, "_queued", queued)

        def acquire():
            if api == "sync":
                return table.acquire("x", ttl=30, timeout=1)
            return asyncio.run(table.acquire_async("x", ttl=30, timeout=1))

        t0 = time.monotonic()
        lease = acquire()
        took = time.monotonic() - t0
        assert stopped, "the pipelined path was not taken"
        assert took < 1 + DEADLINE_SLACK  # the acquire's deadline, with the stated slack
        assert lease.token > holder.token and lease.remaining() > 20
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
        server.kill()


def test_a_release_sent_again_after_its_reply_was_lost_succeeds(redis_server, monkeypatch):
    """A release whose reply is lost (a connection error after Redis ran it) is sent
    again through the client, and finds the lease gone: the release it made itself
    (a marker of the last release, for a minute), not a lost lease. Before, that was
    a LeaseLost for a lease released as asked. A lease that did expire is still lost."""
    from ringhash import LeaseLost
    from ringhash._wire import Wire

    real, lose = Wire._call_on, []

    def call_on(self, conn, packed, *rest):
        reply = real(self, conn, packed, *rest)
        if lose and packed.startswith(b"*") and b"EVALSHA" in packed[:24]:
            lose.pop()
            raise redis.ConnectionError("connection lost before the reply was read")
        return reply

    client = redis.Redis(port=redis_server.port)
    table = RedisLockTable(client, prefix="rs:")
    table.acquire("warm", ttl=5).release()
    monkeypatch.setattr(Wire, "_call_on", call_on)
    sent = lambda: client.info("commandstats")["cmdstat_evalsha"]["calls"]  # noqa: E731

    def release_losing_the_reply(lease):
        before = sent()
        lose.append(1)
        lease.release()  # no LeaseLost
        assert not lose and sent() - before == 2  # sent twice

    release_losing_the_reply(table.acquire("lone", ttl=30))  # the lone holder's key
    assert table.holders("lone") == ()
    a = table.acquire("shared", mode="shared", ttl=30)
    b = table.acquire("shared", mode="shared", ttl=30, owner="other")
    release_losing_the_reply(a)  # the general form, another holder left
    assert [h.token for h in table.holders("shared")] == [b.token]
    b.release()
    holder = table.acquire("queued", ttl=30)
    got = []
    waiter = threading.Thread(target=lambda: got.append(table.acquire("queued", timeout=10)))
    waiter.start()
    while not table.waiting("queued"):
        time.sleep(0.01)
    release_losing_the_reply(holder)  # handed on by the first send: the waiter holds it
    waiter.join(10)
    assert got and got[0].token == holder.token + 1
    got[0].release()
    short = table.acquire("lone", ttl=0.2)
    time.sleep(0.4)
    with pytest.raises(LeaseLost):
        short.release()
