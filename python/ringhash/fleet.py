"""Live membership on Redis: every process on every machine routes by the same ring.

``RedisFleet(client, "cache")`` names a fleet stored in Redis; members join it
(and renew their place in the background), routers hold a ``fleet.ring()``
that follows it. A membership change is a versioned state change: one Lua
script updates the member set and increments the fleet's *epoch* together, on
the server's clock, and publishes it. The ring is a pure function of
(members, weights, ring settings), so two routers at the same epoch hold
byte-identical rings, and the epoch is a fencing token for routing: a storage
node can refuse a write routed by an epoch older than the one at which it
gained or lost the key's range (see the README's example).

Install with ``pip install 'ringhash[redis]'``.

What is guaranteed, and what is not
-----------------------------------
- A member that stops renewing (crash, ``kill -9``, partition) is removed once
  its TTL has passed on the Redis server's clock, by whichever client touches
  the fleet next (routers poll, so within TTL + one poll interval).
- Routers learn of changes by pub/sub at once, and poll every
  ``poll_interval`` seconds as the safety net for a lost message.
- ``ring.epoch`` never goes back. A fleet's epoch counter starts at the Redis
  server's clock in microseconds (then grows by one per change), so a Redis that
  comes back without its data (a restart without ``appendonly yes``) starts
  again above every epoch it gave, and routers follow the members that join it
  again. If Redis comes back with a lower epoch (a failover to a replica that
  missed writes, an older snapshot restored), routers keep their last ring,
  report it stale, and log the fact, rather than route by an older history.
  Compare epochs of one fleet, not their size: a new fleet's first is about
  1.8e15 (below 2**53 until the year 2255).
- While Redis is unreachable a router keeps serving its last ring and says so
  (``ring.stale_for``); with ``max_staleness`` it raises ``FleetStale`` from
  lookups instead once that many seconds have passed.

Thread safety: a ``FleetRing`` may be read from any number of threads without
locks (each read sees one immutable snapshot); its background thread swaps in
new snapshots whole. ``RedisFleet`` and ``FleetMember`` may be used from any
thread.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from . import planning
from ._fleet_scripts import SCRIPTS
from ._keys import check_algorithm
from ._redisio import Scripts, check_client, check_prefix, redis, slot_base
from ._rule import check_node, check_vnodes, check_weight
from .ring import HashRing, RingSnapshot, _RingReads

__all__ = ["FleetError", "FleetMember", "FleetRing", "FleetStale", "RedisFleet"]

log = logging.getLogger("ringhash.fleet")

MAX_TTL = 86_400.0


class FleetError(Exception):
    """A fleet operation failed (Redis unreachable, settings mismatch, a name taken)."""


class FleetStale(LookupError):
    """A ``FleetRing`` with ``max_staleness`` has not heard from Redis for too long."""


def _error(what: str, e: BaseException) -> FleetError:
    err = FleetError(f"{what}: Redis failed ({type(e).__name__}: {e})")
    err.__cause__ = e
    return err


def _check_ttl(ttl: object) -> float:
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise TypeError(f"ttl must be a number of seconds, not {type(ttl).__name__}")
    if not (math.isfinite(ttl) and 0.01 <= ttl <= MAX_TTL):
        raise ValueError(f"ttl must lie in [0.01, {MAX_TTL:.0f}] seconds, got {ttl!r}")
    return float(ttl)


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class RedisFleet:
    """A fleet named ``name`` in Redis, with the ring settings every member and
    router of it must share (stored on first use; opening it with other
    settings is a ``FleetError``)."""

    def __init__(
        self,
        client: Any,
        name: str,
        *,
        vnodes: int = 160,
        hash: str = "murmur3",
        prefix: str = "ringhash:",
    ) -> None:
        self.client = check_client(client)
        self.name = check_node(name)
        self.vnodes = check_vnodes(vnodes)
        check_algorithm(hash)
        self.hash = hash
        base = slot_base(check_prefix(prefix), f"fleet:{self.name}")
        self.keys = [f"{base}:{k}" for k in ("members", "expiry", "owners", "epoch", "settings")]
        self.channel = f"{base}:changes"
        self.settings = f"vnodes={self.vnodes};hash={self.hash};seed=0"
        self._scripts = Scripts(client, SCRIPTS, _error)

    def close(self) -> None:
        """Close the fleet's own connections (its members' and rings' calls use them;
        those of ``client`` are the client's to close). It stays usable: the next
        call connects again. ``with fleet:`` closes it at the end of the block."""
        self._scripts.close()

    def __enter__(self) -> RedisFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RedisFleet({self.name!r}, vnodes={self.vnodes}, hash={self.hash!r})"

    def _run(self, script: str, args: list[Any], what: str) -> tuple[str, int, Any]:
        reply = self._scripts(script, self.keys, [self.settings, self.channel, *args], what)
        status = _text(reply[0])
        if status == "settings":
            raise FleetError(
                f"fleet {self.name!r} is stored with ring settings {_text(reply[1])!r}, not "
                f"{self.settings!r}: open it with the same vnodes and hash"
            )
        return status, int(reply[1]), reply[2]

    def state(self) -> tuple[int, dict[str, float]]:
        """(epoch, {member: weight}) of the live members, read together."""
        _, epoch, flat = self._run("state", [], "reading the fleet")
        items = [_text(x) for x in flat]
        return epoch, {items[i]: float(items[i + 1]) for i in range(0, len(items), 2)}

    def members(self) -> dict[str, float]:
        """``{name: weight}`` of the live members."""
        return self.state()[1]

    def epoch(self) -> int:
        """The fleet's epoch in Redis now (it grows by at least one on every change)."""
        return self.state()[0]

    def join(self, name: str, weight: float = 1.0, ttl: float = 10.0) -> FleetMember:
        """Join as ``name`` and renew the place in the background every ``ttl / 3``
        seconds. ``FleetError`` if a live member holds that name."""
        member = FleetMember(self, check_node(name), check_weight(weight), _check_ttl(ttl))
        member._join()
        member._start()
        return member

    def ring(self, poll_interval: float = 1.0, max_staleness: float | None = None) -> FleetRing:
        """A read-only ring kept current in the background (close it, or use ``with``)."""
        return FleetRing(self, poll_interval, max_staleness)

    def build(self, members: dict[str, float]) -> RingSnapshot:
        """The ring of these members under the fleet's settings."""
        return HashRing(members, vnodes=self.vnodes, hash=self.hash).snapshot()


class FleetMember:
    """A member's place in the fleet: renewed in the background until ``leave()``."""

    def __init__(self, fleet: RedisFleet, name: str, weight: float, ttl: float) -> None:
        self.fleet, self.name, self.ttl = fleet, name, ttl
        self._weight = weight
        self.token = uuid.uuid4().hex
        self._alive = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.epoch = 0

    def __repr__(self) -> str:
        return f"FleetMember({self.name!r}, weight={self._weight}, alive={self._alive})"

    @property
    def weight(self) -> float:
        """The weight this member last set (``set_weight``) or joined with."""
        return self._weight

    @property
    def alive(self) -> bool:
        """Whether this member still holds its place (as of the last renewal)."""
        return self._alive

    def _join(self) -> None:
        status, self.epoch, owner = self.fleet._run(
            "join",
            [self.name, repr(self._weight), int(self.ttl * 1000), self.token],
            f"joining fleet {self.fleet.name!r} as {self.name!r}",
        )
        if status == "held":
            raise FleetError(f"{self.name!r} is held by another live member of the fleet")
        self._alive = True

    def _start(self) -> None:
        self._thread = threading.Thread(
            target=self._renew, name=f"ringhash-fleet-member-{self.name}", daemon=True
        )
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                status, epoch, _ = self.fleet._run(
                    "heartbeat", [self.name, self.token, int(self.ttl * 1000)], "renewing"
                )
                if status == "lost":  # expired (paused, partitioned): take the place back
                    self._join()
                    log.warning("fleet member %r lost its place and joined again", self.name)
                else:
                    self.epoch, self._alive = epoch, True
            except FleetError as e:
                self._alive = False
                log.warning("fleet member %r could not renew: %s", self.name, e)

    def set_weight(self, weight: float) -> int:
        """Change this member's weight; returns the epoch after the change."""
        w = check_weight(weight)
        status, self.epoch, _ = self.fleet._run(
            "set_weight", [self.name, self.token, repr(w)], "changing the weight"
        )
        if status == "lost":
            self._alive = False
            raise FleetError(f"{self.name!r} no longer holds its place in the fleet")
        self._weight = w
        return self.epoch

    def leave(self) -> None:
        """Leave at once (renewal stops); idempotent."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        if self._alive:
            _, self.epoch, _ = self.fleet._run("leave", [self.name, self.token], "leaving")
        self._alive = False

    def __enter__(self) -> FleetMember:
        return self

    def __exit__(self, *exc: object) -> None:
        self.leave()


class FleetRing(_RingReads):
    """The fleet's ring, kept current in the background: the whole lookup API of
    ``HashRing`` (``get``, ``lookup``, ``get_many``, ``lookup_nodes``, ``shares``,
    ...), plus ``epoch``, ``on_change``, ``wait_for_epoch``, ``stale_for``."""

    def __init__(self, fleet: RedisFleet, poll_interval: float, max_staleness: float | None):
        if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)):
            raise TypeError("poll_interval must be a number of seconds")
        if not (math.isfinite(poll_interval) and 0.01 <= poll_interval <= 3600):
            raise ValueError(f"poll_interval must lie in [0.01, 3600] seconds, got {poll_interval}")
        if max_staleness is not None and not (
            isinstance(max_staleness, (int, float)) and max_staleness > 0
        ):
            raise ValueError(
                f"max_staleness must be a positive number of seconds, not {max_staleness!r}"
            )
        self.fleet = fleet
        self.poll_interval = float(poll_interval)
        self.max_staleness = max_staleness
        self._ring = fleet.build({})
        self._epoch = -1
        self._callbacks: list[Callable[[planning.RingChange, int], None]] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._last_ok = time.monotonic()
        self._failing = False
        self._refresh()  # the first state, or FleetError now
        self._thread = threading.Thread(
            target=self._follow, name=f"ringhash-fleet-ring-{fleet.name}", daemon=True
        )
        self._thread.start()

    # the read API reads the snapshot here (lock-free: one attribute read)
    @property
    def _snap(self) -> RingSnapshot:  # type: ignore[override]
        if self.max_staleness is not None and self.stale_for > self.max_staleness:
            raise FleetStale(
                f"the ring of fleet {self.fleet.name!r} has not heard from Redis for "
                f"{self.stale_for:.1f} s (max_staleness={self.max_staleness})"
            )
        return self._ring

    @property
    def epoch(self) -> int:
        """The epoch of the ring now in use; increases by at least one per change."""
        return self._epoch

    @property
    def stale_for(self) -> float:
        """Seconds since the ring last heard from Redis; 0 while healthy, i.e. while
        it heard within the last poll interval plus one second (a call that hangs
        counts from the last answer, however redis-py retries it)."""
        elapsed = time.monotonic() - self._last_ok
        if self._failing or elapsed > self.poll_interval + 1.0:
            return elapsed
        return 0.0

    def snapshot(self) -> RingSnapshot:
        """The current ring, immutable (``to_bytes()`` equal across routers at one epoch)."""
        return self._snap

    def on_change(self, callback: Callable[[planning.RingChange, int], None]) -> None:
        """Call ``callback(change, epoch)`` after each change, from the background thread."""
        self._callbacks.append(callback)

    def wait_for_epoch(self, epoch: int, timeout: float | None = None) -> bool:
        """Block until the ring has reached ``epoch`` (True) or ``timeout`` passed (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._epoch >= epoch, timeout)

    def _refresh(self) -> None:
        try:
            epoch, members = self.fleet.state()
        except FleetError:
            if not self._failing:
                self._failing = True
            raise
        self._last_ok, self._failing = time.monotonic(), False
        if epoch < self._epoch:
            self._failing = True  # the epoch went back: do not follow it
            log.error(
                "fleet %r: Redis reports epoch %d, below %d seen here (the epoch went back: "
                "a failover to a replica that missed writes, or an older snapshot restored?); "
                "keeping the last ring",
                self.fleet.name,
                epoch,
                self._epoch,
            )
            return
        if epoch == self._epoch:
            return
        new = self.fleet.build(members)
        old, self._ring = self._ring, new
        first = self._epoch < 0
        with self._cond:
            self._epoch = epoch
            self._cond.notify_all()
        if self._callbacks and not first:
            change = old.diff(new)
            for cb in list(self._callbacks):
                try:
                    cb(change, epoch)
                except Exception:  # a callback's error must not stop the ring
                    log.exception("fleet %r: on_change callback failed", self.fleet.name)

    def _messages(self) -> Iterator[None]:
        """Yield on every published change or poll interval, reconnecting as needed."""
        pubsub = None
        while not self._stop.is_set():
            try:
                if pubsub is None:
                    pubsub = self.fleet.client.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(self.fleet.channel)
                pubsub.get_message(timeout=self.poll_interval)
                yield None
            except (redis.RedisError, OSError):
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except (redis.RedisError, OSError):
                        pass
                pubsub = None
                self._failing = True
                yield None
                self._stop.wait(min(self.poll_interval, 0.5))
        if pubsub is not None:
            pubsub.close()

    def _follow(self) -> None:
        for _ in self._messages():
            if self._stop.is_set():
                break
            try:
                self._refresh()
            except FleetError as e:
                log.warning("fleet %r: %s", self.fleet.name, e)

    def close(self) -> None:
        """Stop following the fleet (the ring keeps its last state)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(self.poll_interval + 5)

    def __enter__(self) -> FleetRing:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FleetRing({self.fleet.name!r}, epoch={self._epoch}, nodes={len(self._ring)})"
