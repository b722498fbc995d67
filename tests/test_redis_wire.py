"""The connections the Redis features keep for their own calls (``_wire.Wire``),
against a real redis-server: what they send is what redis-py would send, and a
call survives what happens to a connection or to the server's script cache
between calls (killed connections, SCRIPT FLUSH, a reconnection under a
deadline, a fork).
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time

import pytest

from conftest import REDIS_SERVER, RedisServer

redis = pytest.importorskip("redis", reason="redis-py is not installed")
from ringhash._wire import pack  # noqa: E402
from ringhash.fleet import RedisFleet  # noqa: E402
from ringhash.redis_locks import RedisLockTable  # noqa: E402

needs_server = pytest.mark.skipif(
    REDIS_SERVER is None, reason="no redis-server binary (.ci/run installs it)"
)


@pytest.mark.parametrize(
    "args",
    [
        ("GET", "x"),
        ("EVALSHA", "a" * 40, 1, "p:{orders:42}", "w1", "exclusive", 30000, "h:1:thread:7", 1),
        ("SET", "ключ", "值", "PX", 5),
        ("RPUSH", b"\x00\xff\r\n", -1, 2**70, 0),
        ("ZADD", "z", 1.5, "m", 1e-300, "n"),
        ("PING",),
    ],
)
def test_pack_is_what_redis_py_sends(args):
    conn = redis.Connection()
    assert pack(*args) == b"".join(conn.pack_command(*args))


@pytest.mark.parametrize("bad", [None, ["x"], object()])
def test_pack_refuses_what_it_cannot_send(bad):
    with pytest.raises(TypeError, match="cannot send"):
        pack("SET", "k", bad)


@pytest.fixture
def server(tmp_path):
    if REDIS_SERVER is None:
        pytest.skip("no redis-server binary (.ci/run installs it)")
    s = RedisServer(tmp_path).start()
    yield s
    s.kill()


def kill_connections(server) -> None:
    """Close every client connection but the one asking (the table's own included)."""
    admin = redis.Redis(port=server.port)
    admin.client_kill_filter(_type="normal", skipme=True)
    admin.close()


def test_calls_survive_killed_connections_and_a_script_flush(server):
    client = server.client()
    table = RedisLockTable(client, prefix="k:")
    table.acquire("a", ttl=5).release()
    for timeout in (None, 1.0):  # without a deadline, and with one (a reconnection
        # under a deadline runs in a worker thread, which must load the script too)
        kill_connections(server)
        client.script_flush()
        lease = table.acquire("a", ttl=5, timeout=timeout)
        kill_connections(server)
        client.script_flush()
        lease.extend(5, timeout=timeout)
        client.script_flush()
        lease.release(timeout=timeout)
        assert table.holders("a") == ()


def test_fleet_calls_survive_killed_connections(server):
    client = server.client()
    fleet = RedisFleet(client, "f")
    member = fleet.join("n1", ttl=10)
    try:
        kill_connections(server)
        client.script_flush()
        member.set_weight(2.0)
        assert fleet.members() == {"n1": 2.0}
    finally:
        member.leave()


def open_connections(server) -> int:
    """Client connections the server has open, the one asking not counted."""
    admin = redis.Redis(port=server.port)
    n = len(admin.client_list(_type="normal")) - 1
    admin.close()
    return n


def settles_at(server, n: int) -> bool:
    """Whether the server's open connections come to ``n`` (a closed socket is
    seen by the server on its next turn)."""
    end = time.monotonic() + 10
    while open_connections(server) != n:
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_closing_a_table_closes_its_own_connections(server):
    client = server.client()
    client.ping()  # the client's own connection, which the table leaves alone
    with RedisLockTable(client, prefix="c:") as table:
        held = table.acquire("a", ttl=5)
        threads = [  # waiters blocked at once: a connection each
            threading.Thread(target=lambda: table.acquire("a", ttl=5, timeout=10).release())
            for _ in range(3)
        ]
        for t in threads:
            t.start()
        end = time.monotonic() + 10  # each waiter blocked in its pop holds a connection
        while len(table.waiting("a")) < 3 or open_connections(server) < 4:
            assert time.monotonic() < end, "the waiters did not come to wait"
            time.sleep(0.01)
        held.release()
        for t in threads:
            t.join(10)
    assert settles_at(server, 1)  # only the client's own is left
    client.ping()
    lease = table.acquire("a", ttl=5, timeout=5)  # still usable: it connects again
    assert open_connections(server) == 2
    lease.release()
    table.close()
    assert settles_at(server, 1)
    client.close()


def test_closing_a_fleet_closes_its_own_connections(server):
    client = server.client()
    client.ping()
    with RedisFleet(client, "f") as fleet:
        member = fleet.join("n1", ttl=10)  # renews in a thread of its own
        assert fleet.members() == {"n1": 1.0}
        member.leave()
        assert open_connections(server) >= 2
    assert settles_at(server, 1)
    assert fleet.members() == {}  # still usable: it connects again
    assert open_connections(server) == 2
    fleet.close()
    assert settles_at(server, 1)


def _use_in_child(table, out):  # type: ignore[no-untyped-def]
    try:
        table.acquire("child", ttl=5, timeout=5).release()
        out.put("ok")
    except Exception as e:  # reported to the parent, which fails the test
        out.put(repr(e))


@needs_server
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_makes_its_own_connections(server):  # forking is what it tests
    client = server.client()
    table = RedisLockTable(client, prefix="f:")
    table.acquire("parent", ttl=5).release()  # the parent has a connection now
    before = client.info("stats")["total_connections_received"]
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_use_in_child, args=(table, out))
    child.start()
    assert out.get(timeout=30) == "ok"
    child.join(10)
    # the child connected by itself (a socket shared by two processes mixes their
    # replies), and its exit closed nothing of the parent's
    assert client.info("stats")["total_connections_received"] > before
    table.acquire("parent", ttl=5, timeout=5).release()


def test_a_stalled_reconnection_is_bounded_and_completes_later(server):
    """A call that must reconnect while the server is stopped returns by its deadline;
    the call still completes once the server answers (a release is not lost)."""
    import os
    import signal

    from ringhash import LockBackendError
    from ringhash.locks._redis import DEADLINE_SLACK

    client = server.client(socket_timeout=5)
    table = RedisLockTable(client, prefix="s:")
    lease = table.acquire("a", ttl=30)
    kill_connections(server)
    assert table.holders("a")  # finds its connection closed: reconnects on next use
    client.script_flush()
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        with pytest.raises(LockBackendError, match="within the timeout"):
            lease.release(timeout=0.2)
        assert time.monotonic() - t0 < 0.2 + DEADLINE_SLACK + 0.2
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    for _ in range(200):  # 10 s for the release left behind to run
        if not table.holders("a"):
            break
        time.sleep(0.05)
    else:
        pytest.fail("the release left behind never ran")


@pytest.mark.parametrize(
    "client_kw",
    [{}, {"decode_responses": True}, {"protocol": 3}, {"protocol": 3, "decode_responses": True}],
    ids=["bytes", "decoded", "resp3", "resp3-decoded"],
)
def test_every_reply_form_of_the_client_works(server, client_kw):
    """The connections take the client's settings, and with them its reply form (bytes
    or str, RESP2 or RESP3): the lock table works the same through each, on the plain,
    the hand-off and the one-write paths."""
    import threading

    client = server.client(**client_kw)
    table = RedisLockTable(client, prefix="r:", poll_cap=30)
    other = RedisLockTable(server.client(**client_kw), prefix="r:", poll_cap=30)
    table.acquire("a", ttl=5, owner="me").release()
    tokens = []
    for _ in range(3):  # the first wait marks the lock contended: then one-write waits
        holder = other.acquire("a", ttl=30, owner="holder")
        got: list = []
        t = threading.Thread(target=lambda out=got: out.append(table.acquire("a", timeout=10)))
        t.start()
        while not table.waiting("a"):
            time.sleep(0.005)
        (queued,) = table.waiting("a")
        assert queued.mode == "exclusive"
        assert [h.owner for h in table.holders("a")] == ["holder"]
        holder.release()
        t.join(10)
        (lease,) = got
        tokens += [holder.token, lease.token]
        lease.extend(10)
        assert lease.valid
        lease.release()
    assert tokens == sorted(tokens) and len(set(tokens)) == 6
    assert table.holders("a") == () and not client.keys("r:*wake*")
