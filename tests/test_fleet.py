"""RedisFleet against real redis-servers started here: membership, expiry on the
server's clock, epochs, pub/sub and polling, staleness, persistence, bad input,
a model-based state machine, and five member processes with three router
processes that must never disagree at one epoch."""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from conftest import RedisServer

redis = pytest.importorskip("redis", reason="redis-py is not installed")
from ringhash import HashRing  # noqa: E402
from ringhash.cli import main  # noqa: E402
from ringhash.fleet import FleetError, FleetStale, RedisFleet  # noqa: E402

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def fleet_name(request):
    return f"f{abs(hash(request.node.nodeid)) % 10**9}-{time.monotonic_ns()}"


def wait(cond, timeout=10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_join_leave_weights_and_epochs(redis_server, fleet_name):
    fleet = RedisFleet(redis_server.client(), fleet_name)
    with fleet.ring(poll_interval=0.2) as ring:
        seen: list[tuple[int, float]] = []
        ring.on_change(lambda change, epoch: seen.append((epoch, change.fraction)))
        assert len(ring) == 0
        a = fleet.join("cache-a:11211", ttl=5)
        b = fleet.join("cache-b:11211", weight=2.0, ttl=5)
        assert ring.wait_for_epoch(b.epoch, 5)
        assert fleet.members() == {"cache-a:11211": 1.0, "cache-b:11211": 2.0}
        assert ring.weights == {"cache-a:11211": 1.0, "cache-b:11211": 2.0}
        want = HashRing({"cache-a:11211": 1.0, "cache-b:11211": 2.0}).snapshot()
        assert ring.snapshot().to_bytes() == want.to_bytes()
        keys = [f"k{i}" for i in range(1000)]
        assert ring.get_many(keys) == want.get_many(keys)
        e = a.set_weight(3.0)
        assert e > b.epoch and ring.wait_for_epoch(e, 5)
        assert ring.weights["cache-a:11211"] == 3.0
        with pytest.raises(FleetError, match="held by another live member"):
            fleet.join("cache-a:11211")
        b.leave()
        assert ring.wait_for_epoch(b.epoch, 5) and ring.nodes == ("cache-a:11211",)
        b.leave()  # idempotent
        assert not b.alive and a.alive
        epochs = [e for e, _ in seen]
        assert epochs == sorted(epochs) and len(set(epochs)) == len(epochs)
        assert all(0 < f <= 1 for _, f in seen)
        a.leave()


def test_expiry_on_the_servers_clock(redis_server, fleet_name):
    fleet = RedisFleet(redis_server.client(), fleet_name)
    with fleet.ring(poll_interval=0.1) as ring:
        keep = fleet.join("keep", ttl=2)
        gone = fleet.join("gone", ttl=0.3)
        gone._stop.set()  # a crash: no more renewals
        assert ring.wait_for_epoch(gone.epoch, 5)
        assert wait(lambda: ring.nodes == ("keep",), 3)  # removed by the routers' next poll
        assert fleet.members() == {"keep": 1.0}
        keep.leave()


def test_a_paused_member_takes_its_place_back(redis_server, fleet_name):
    fleet = RedisFleet(redis_server.client(), fleet_name)
    m = fleet.join("m", ttl=0.3)
    with redis_server.client() as c:  # the lease lapses (as in a long pause)...
        c.zadd(fleet.keys[1], {"m": 0})
    assert fleet.members() == {}
    assert wait(lambda: fleet.members() == {"m": 1.0}, 3)  # ...and the renewal joins again
    assert m.alive
    m.leave()


def test_context_manager_and_settings(redis_server, fleet_name):
    client = redis_server.client()
    fleet = RedisFleet(client, fleet_name, vnodes=40, hash="crc32")
    with fleet.join("x", ttl=2) as m:
        assert fleet.members() == {"x": 1.0} and m.alive
    assert fleet.members() == {}
    with pytest.raises(FleetError, match="stored with ring settings"):
        RedisFleet(client, fleet_name).members()
    with pytest.raises(FleetError, match="stored with ring settings"):
        RedisFleet(client, fleet_name, vnodes=40).join("y")
    assert fleet.members() == {}  # nothing changed


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": ""}, ValueError),
        ({"name": 3}, TypeError),
        ({"weight": float("nan")}, ValueError),
        ({"weight": 0}, ValueError),
        ({"weight": -1.0}, ValueError),
        ({"ttl": 0}, ValueError),
        ({"ttl": -5}, ValueError),
        ({"ttl": 1e9}, ValueError),
        ({"ttl": "10"}, TypeError),
    ],
)
def test_bad_joins_leave_redis_unchanged(redis_server, fleet_name, kwargs, error):
    fleet = RedisFleet(redis_server.client(), fleet_name)
    before = fleet.state()
    with pytest.raises(error):
        fleet.join(**{"name": "m", **kwargs})
    assert fleet.state() == before


def test_bad_fleets_and_rings(redis_server):
    client = redis_server.client()
    with pytest.raises(TypeError, match="redis.Redis"):
        RedisFleet(object(), "f")
    with pytest.raises(ValueError, match="braces"):
        RedisFleet(client, "a{b}")
    with pytest.raises(ValueError, match="braces"):
        RedisFleet(client, "f", prefix="x{y}:")
    with pytest.raises(ValueError):
        RedisFleet(client, "f", vnodes=0)
    with pytest.raises(ValueError):
        RedisFleet(client, "f", hash="md5")
    fleet = RedisFleet(client, "f-bad")
    with pytest.raises(ValueError, match="poll_interval"):
        fleet.ring(poll_interval=0)
    with pytest.raises(ValueError, match="max_staleness"):
        fleet.ring(max_staleness=-1)


def test_staleness_while_redis_is_paused(tmp_path, fleet_name):
    if RedisServer is None or not os.path.exists("/proc"):
        pytest.skip("needs Linux signals")
    server = RedisServer(tmp_path).start()
    try:
        fleet = RedisFleet(server.client(socket_timeout=0.3), fleet_name)
        m = fleet.join("a", ttl=30)
        ring = fleet.ring(poll_interval=0.1)
        strict = fleet.ring(poll_interval=0.1, max_staleness=0.5)
        assert ring.stale_for == 0.0 and strict.get("k") == "a"
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            # each ring notices on its own schedule (a failed call, or no answer for
            # poll_interval + 1 s): wait for both
            assert wait(lambda: ring.stale_for > 0.7 and strict.stale_for > 0.6, 10)
            assert ring.get("k") == "a"  # still serving the last ring
            with pytest.raises(FleetStale, match="has not heard from Redis"):
                strict.get("k")
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        assert wait(lambda: ring.stale_for == 0.0 and strict.stale_for == 0.0, 10)
        assert strict.get("k") == "a"
        client = server.client()
        b = RedisFleet(client, fleet_name).join("b", ttl=30)
        assert wait(lambda: len(ring) == 2, 5)
        ring.close()
        strict.close()
        b.leave()
        m._stop.set()
    finally:
        server.kill()


def test_epochs_survive_an_aof_restart_and_never_go_back(tmp_path, fleet_name, caplog):
    server = RedisServer(tmp_path, aof=True).start()
    renewers = []
    try:
        fleet = RedisFleet(server.client(socket_timeout=1), fleet_name)
        first = fleet.join("a", ttl=60)
        renewers.append(first)
        clock = server.client().time()  # a new counter starts at the server's clock (in us)
        assert 0 <= clock[0] * 1_000_000 + clock[1] - first.epoch < 60_000_000
        fleet.join("b", ttl=60)._stop.set()
        ring = fleet.ring(poll_interval=0.1)
        before = ring.epoch
        server.kill()
        server.start()
        after = RedisFleet(server.client(), fleet_name).join("c", ttl=60)
        renewers.append(after)
        assert after.epoch == before + 1  # the AOF kept the counter
        assert ring.wait_for_epoch(after.epoch, 10)
        # a server that lost everything (no AOF) starts its new counter above every
        # epoch the old one gave: routers follow the members that join it again
        server.kill()
        (tmp_path / "appendonlydir").exists() and [
            p.unlink() for p in (tmp_path / "appendonlydir").iterdir()
        ]
        server.aof = False
        server.start()
        again = RedisFleet(server.client(), fleet_name).join("z", ttl=60)
        renewers.append(again)
        assert again.epoch > after.epoch
        assert ring.wait_for_epoch(again.epoch, 10) and "z" in ring and ring.stale_for == 0
        # a counter that went back (an older snapshot, a failover to a replica that
        # missed writes) is not followed: the ring stays, reported stale
        seen = ring.epoch
        server.client().set(fleet.keys[3], after.epoch)
        RedisFleet(server.client(), fleet_name).join("y", ttl=60)._stop.set()
        assert wait(lambda: ring.stale_for > 0, 5)
        assert ring.epoch == seen and "y" not in ring
        assert "the epoch went back" in caplog.text
        ring.close()
    finally:
        for member in renewers:  # no renewals left running against a dead server
            member._stop.set()
        server.kill()


def test_fencing_by_epoch(redis_server, fleet_name):
    """The README's pattern: a storage node refuses writes routed by an epoch
    older than the one at which it gained or lost the key's range."""
    fleet = RedisFleet(redis_server.client(), fleet_name)
    a = fleet.join("a", ttl=30)
    with fleet.ring(poll_interval=0.1) as fresh:
        stale_snapshot, stale_epoch = fresh.snapshot(), fresh.epoch
        b = fleet.join("b", ttl=30)
        assert fresh.wait_for_epoch(b.epoch, 5)
        changed_at: dict[str, int] = {}  # node -> epoch its ranges last changed

        def on_change(change, epoch):  # type: ignore[no-untyped-def]
            for r in change.ranges:
                for node in (r.from_node, r.to_node):
                    changed_at[node] = epoch

        fresh.on_change(on_change)
        c = fleet.join("c", ttl=30)
        assert fresh.wait_for_epoch(c.epoch, 5)
        assert wait(lambda: "c" in changed_at)

        def accept(node: str, routed_epoch: int) -> bool:
            return routed_epoch >= changed_at.get(node, 0)

        moved = [k for k in (f"k{i}" for i in range(2000)) if stale_snapshot.get(k) != fresh.get(k)]
        assert moved
        assert not any(accept(stale_snapshot.get(k), stale_epoch) for k in moved)
        assert all(accept(fresh.get(k), fresh.epoch) for k in moved)
    for m in (a, b, c):
        m.leave()


def test_cli_fleet(redis_server, fleet_name, capsys):
    fleet = RedisFleet(redis_server.client(), fleet_name)
    with fleet.join("a", ttl=30), fleet.join("b", weight=3.0, ttl=30):
        url = f"redis://127.0.0.1:{redis_server.port}/0"
        assert main(["fleet", fleet_name, "--redis", url, "--json"]) == 0
        d = json.loads(capsys.readouterr().out)
        assert {m["name"]: m["weight"] for m in d["members"]} == {"a": 1.0, "b": 3.0}
        assert math.isclose(sum(m["share"] for m in d["members"]), 1.0)
        assert main(["fleet", fleet_name, "--redis", url]) == 0
        assert "2 live members" in capsys.readouterr().out


# ---------------------------------------------------------------- model-based


class FleetMachine(RuleBasedStateMachine):
    """Joins, leaves, expiries and weight changes in any order; at every epoch the
    ring equals a HashRing built from scratch from the member set."""

    server: RedisServer
    names = st.sampled_from(["n1", "n2", "n3", "n4", "n5"])

    def __init__(self) -> None:
        super().__init__()
        self.fleet = RedisFleet(self.server.client(), f"sm-{time.monotonic_ns()}", vnodes=20)
        self.members: dict[str, object] = {}
        self.model: dict[str, float] = {}
        self.ring = self.fleet.ring(poll_interval=0.05)

    @rule(name=names, weight=st.sampled_from([0.5, 1.0, 2.0]))
    def join(self, name: str, weight: float) -> None:
        if name in self.model:
            return
        self.members[name] = self.fleet.join(name, weight, ttl=30)
        self.model[name] = weight

    @rule(name=names)
    def leave(self, name: str) -> None:
        if name in self.model:
            self.members.pop(name).leave()  # type: ignore[attr-defined]
            del self.model[name]

    @rule(name=names, weight=st.sampled_from([0.5, 1.0, 3.0]))
    def reweight(self, name: str, weight: float) -> None:
        if name in self.model:
            self.members[name].set_weight(weight)  # type: ignore[attr-defined]
            self.model[name] = weight

    @rule(name=names)
    def expire(self, name: str) -> None:
        if name in self.model:
            m = self.members.pop(name)
            m._stop.set()  # type: ignore[attr-defined]
            with self.server.client() as c:  # its lease ends now, on the server
                c.zadd(self.fleet.keys[1], {name: 0})
            del self.model[name]

    @invariant()
    def ring_matches_the_model(self) -> None:
        epoch, members = self.fleet.state()
        assert members == self.model
        assert self.ring.wait_for_epoch(epoch, 5)
        want = HashRing(self.model, vnodes=20).snapshot().to_bytes()
        assert wait(lambda: self.ring.snapshot().to_bytes() == want, 5)

    def teardown(self) -> None:
        self.ring.close()
        for m in self.members.values():
            m.leave()  # type: ignore[attr-defined]


def test_state_machine(redis_server):
    FleetMachine.server = redis_server
    run = FleetMachine.TestCase
    run.settings = settings(max_examples=12, stateful_step_count=12, deadline=None)
    run().runTest()


# ---------------------------------------------------------------- processes

MEMBER = textwrap.dedent(
    """
    import sys, time, redis
    from ringhash.fleet import RedisFleet
    port, fleet_name, name = sys.argv[1], sys.argv[2], sys.argv[3]
    fleet = RedisFleet(redis.Redis(port=int(port), socket_timeout=2), fleet_name, vnodes=40)
    m = fleet.join(name, ttl=1.0)
    print("joined", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "weight":
            m.set_weight(float(cmd[1]))
        elif cmd[0] == "leave":
            m.leave()
        print("done", m.epoch, flush=True)
    """
)

ROUTER = textwrap.dedent(
    """
    import hashlib, sys, time, redis
    from ringhash.fleet import RedisFleet
    port, fleet_name = sys.argv[1], sys.argv[2]
    fleet = RedisFleet(redis.Redis(port=int(port), socket_timeout=2), fleet_name, vnodes=40)
    ring = fleet.ring(poll_interval=0.2)
    last = None
    while True:
        snap, epoch = ring.snapshot(), ring.epoch
        if epoch != last:
            digest = hashlib.sha256(snap.to_bytes()).hexdigest()[:16]
            print(epoch, digest, ",".join(snap.nodes), flush=True)
            last = epoch
        time.sleep(0.01)
    """
)


class Router:
    def __init__(self, port: int, fleet_name: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ROUTER, str(port), fleet_name],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.seen: list[tuple[int, str, str]] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            epoch, digest, nodes = line.rstrip("\n").split(" ")
            self.seen.append((int(epoch), digest, nodes))

    def latest(self) -> tuple[int, str, str] | None:
        return self.seen[-1] if self.seen else None


def test_processes_converge_and_never_disagree(redis_server, fleet_name):
    port = redis_server.port
    routers = [Router(port, fleet_name) for _ in range(3)]
    members = {}
    try:
        for i in range(5):
            p = subprocess.Popen(
                [sys.executable, "-c", MEMBER, str(port), fleet_name, f"m{i}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert p.stdout.readline().strip() == "joined"
            members[f"m{i}"] = p
        fleet = RedisFleet(redis_server.client(), fleet_name, vnodes=40)

        def converged(ttl: float = 1.0) -> None:
            epoch, live = fleet.state()
            want = HashRing(live, vnodes=40).snapshot().to_bytes()
            digest = hashlib.sha256(want).hexdigest()[:16]
            bound = ttl + 2 * 0.2 + 2.0  # TTL + two polls, and process scheduling slack
            assert wait(
                lambda: all(r.latest() is not None and r.latest()[0] >= epoch for r in routers),
                bound,
            ), [r.latest() for r in routers]
            for r in routers:
                for e, d, _ in r.seen:
                    if e == epoch:
                        assert d == digest  # same epoch, byte-identical ring

        converged()
        members["m1"].stdin.write("weight 2.5\n")
        members["m1"].stdin.flush()
        assert members["m1"].stdout.readline().startswith("done")
        converged()
        members["m2"].stdin.write("leave\n")
        members["m2"].stdin.flush()
        assert members["m2"].stdout.readline().startswith("done")
        converged()
        members["m3"].send_signal(signal.SIGKILL)  # a crash: its TTL (1 s) must end it
        members["m3"].wait()
        t0 = time.monotonic()
        assert wait(lambda: "m3" not in fleet.members(), 5)
        assert time.monotonic() - t0 < 1.0 + 2 * 0.2 + 1.0
        converged()
        assert "m3" not in fleet.members() and "m2" not in fleet.members()
        for r in routers:  # epochs strictly increase; one ring per epoch everywhere
            epochs = [e for e, _, _ in r.seen]
            assert epochs == sorted(epochs) and len(set(epochs)) == len(epochs)
        by_epoch: dict[int, set[str]] = {}
        for r in routers:
            for e, d, _ in r.seen:
                by_epoch.setdefault(e, set()).add(d)
        assert all(len(ds) == 1 for ds in by_epoch.values())
    finally:
        for p in members.values():
            p.kill()
        for r in routers:
            r.proc.kill()
