"""``RedisLockTable``: the lock table's API and semantics across processes and machines.

The contract it shares with the in-process table is ``_api.py``; this module is
the Redis engine (Lua scripts, keys, hand-off). Import it as
``from ringhash.redis_locks import RedisLockTable``.

Install with ``pip install 'ringhash[redis]'``; callers of ``LockTable`` stay as they are.

How it works (the keys of a lock, the queue, the direct hand-off, claims):
``_redis_scripts.py``, whose Lua scripts make every state change, atomic on the
server and timed by its clock; this module calls them, pops a waiter's hand-off,
and keeps the table's local record (leases granted here, waits, deadlocks).

What is guaranteed, and the operational rules (AOF, eviction, deadlines,
fencing, Redis Cluster): the "Locks" guide (docs/guides/locks.md), which the
tests run. In short: exclusion only while a lease is valid (every lease has a
TTL); tokens never go backwards unless Redis loses acknowledged writes (a counter
lost outright starts again from the server's clock), and a table refuses a token
below one it has seen; deadlock detection covers owners
of one table object only; Redis errors are ``LockBackendError``, never a
silent success or a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Generator, Hashable
from typing import Any, cast

from .._redisio import (
    Scripts,
    check_async_client,
    check_client,
    check_no_eviction,
    check_prefix,
)
from ._api import (
    EXCLUSIVE,
    DeadlockError,
    Lease,
    LeaseLost,
    LockBackendError,
    LockStats,
    LockTableBase,
    LockTimeout,
    WaitingRequest,
    check_name,
    check_ttl,
    current_task,
    log,
)
from ._common import Reaper, closes_cycle
from ._redis_calls import (
    CANCEL_WAIT,
    DEADLINE_SLACK,
    _backend_error,
    _call_deadline,
    _deadline_in,
    _holders_reply,
    _Keys,
    _local_expiry,
    _owner_id,
    _queued,
    _release_if_granted,
    _Request,
    _text,
    _waiting_reply,
)
from ._redis_lost import watch
from ._redis_scripts import SCRIPTS

__all__ = ["RedisLockTable"]


class RedisLockTable(LockTableBase):
    """Named locks with leases and fencing tokens, kept in Redis.

    Parameters
    ----------
    client : redis.Redis
        A synchronous redis-py client (``decode_responses`` either way).
    async_client : redis.asyncio.Redis, optional
        Used by the async API (``acquire_async``, ``lock_async``) when given;
        without it those run the sync client's calls in a worker thread.
    prefix : str
        Prefix of every key this table uses.
    default_ttl : float
        TTL in seconds of leases acquired without one. Every lease in Redis
        has a TTL, so this cannot be None.
    poll_cap : float
        Longest wait between two attempts of a blocked acquire (the safety
        net under direct hand-off, and the waiter's heartbeat; a waiter whose
        heartbeat stops for ``max(2, 10 * poll_cap)`` seconds leaves the queue, and
        a grant handed to it that it has not collected by then is revoked).

    Notes
    -----
    Thread safety: every method may be called from any thread (a connection
    serves one call at a time: ``_wire.Wire``). See the module documentation
    for what is and is not guaranteed across processes.
    """

    default_ttl: float  # every Redis lease has a TTL

    def __init__(
        self,
        client: Any,
        *,
        async_client: Any = None,
        prefix: str = "ringhash:",
        default_ttl: float = 30.0,
        poll_cap: float = 0.2,
        check_eviction: bool = True,
    ) -> None:
        check_client(client)
        if async_client is not None:
            check_async_client(async_client)
        check_prefix(prefix)
        ttl = check_ttl(default_ttl)
        if ttl is None:
            raise ValueError("every Redis lease needs a TTL: default_ttl cannot be None")
        self.client = client
        self.prefix = prefix
        self.default_ttl = ttl
        self.poll_cap = float(poll_cap)
        if not self.poll_cap > 0:
            raise ValueError(f"poll_cap must be > 0, not {poll_cap!r}")
        self._waiter_ttl_ms = max(2000, int(self.poll_cap * 1000 * 10))
        self.check_eviction = bool(check_eviction)
        self._eviction_checked = False
        self._scripts = Scripts(client, SCRIPTS, _backend_error, async_client)
        self.async_client = async_client
        self._lock = threading.Lock()
        self._counts = dict(grants=0, releases=0, timeouts=0, expiries=0, deadlocks=0)
        self._local: dict[tuple[str, int], Lease] = {}  # (name, token) -> lease granted here, live
        self._waiting: dict[Hashable, dict[str, str]] = {}  # owner -> {waiter id: name}
        self._contended: set[str] = set()  # locks (bases) an acquire here waited for of late
        self._seen: dict[str, int] = {}  # name -> highest token granted through this table
        # (when to check, seq, the expires_at it was scheduled for, lease)
        self._lost_heap: list[tuple[float, int, float, Lease]] = []
        self._reaper: Reaper[RedisLockTable] | None = None
        self._seq = itertools.count()
        # waiter ids: a random prefix per table and a counter (unique across processes
        # and machines, and cheaper than a uuid per acquire)
        self._wid, self._wseq = uuid.uuid4().hex[:20], itertools.count()

    def __repr__(self) -> str:
        return f"RedisLockTable(prefix={self.prefix!r}, default_ttl={self.default_ttl})"

    def close(self) -> None:
        """Close the table's own connections (see :meth:`LockTableBase.close`); those
        of ``client`` are the client's to close."""
        self._scripts.close()

    # ------------------------------------------------------------ plumbing

    def _now(self) -> float:
        return time.monotonic()

    def _call(
        self,
        script: str,
        keys: list[str],
        args: list[Any],
        what: str,
        deadline: float | None = None,
    ) -> Any:
        """Run a script, by ``deadline`` if given (``_redisio.Scripts``): past it, without an
        answer, ``LockBackendError``; an abandoned acquire is withdrawn by its caller."""
        return self._scripts(script, keys, args, what, deadline)

    def _owner_of(self, lease: Lease) -> str:
        return _owner_id(lease.owner)

    # ------------------------------------------------------------ backend hooks for Lease

    def _release_call(self, lease: Lease) -> tuple[list[str], list[Any], str]:
        base = _Keys(self.prefix, lease.name).base
        # an id per call: a send of it again finds its own release (RELEASE's 2)
        rid = f"{self._wid}r{next(self._wseq)}"
        args = [lease.token, self._owner_of(lease), self._waiter_ttl_ms, rid]
        return [base], args, f"release {lease.name!r}"

    def _release(self, lease: Lease, timeout: float | None = None) -> None:
        try:
            ok = self._call("release", *self._release_call(lease), _deadline_in(timeout))
        finally:
            self._forget(lease)
        self._released(lease, ok)

    async def _release_async(self, lease: Lease, timeout: float | None = None) -> None:
        """:meth:`_release` for asyncio (``Scripts.call_async``). Cancelled mid-way (its
        outcome unknown), the call is made again from a thread, by the lease's expiry: a
        release once begun completes even if its caller is cancelled."""
        keys, args, what = self._release_call(lease)
        try:
            ok = await self._scripts.call_async("release", keys, args, what, _deadline_in(timeout))
        except asyncio.CancelledError:
            assert lease.expires_at is not None  # every Redis lease has a TTL
            self._later("release", keys, args, what, lease.expires_at)
            raise
        finally:
            self._forget(lease)
        self._released(lease, ok)

    def _forget(self, lease: Lease) -> None:
        """After a release call, whatever its outcome (unknown on a LockBackendError: the
        lease ends on the server at its TTL at the latest): so this owner's next acquires
        are not refused as a deadlock on a lease it no longer uses."""
        with self._lock:
            self._local.pop((lease.name, lease.token), None)

    def _released(self, lease: Lease, ok: int) -> None:
        if not ok:
            raise LeaseLost(f"{lease!r} no longer holds {lease.name!r}")
        self._count("releases")

    def _extend_call(
        self, lease: Lease, ttl: float, timeout: float | None
    ) -> tuple[float, tuple[str, list[str], list[Any], str, float | None]]:
        """(when it was asked, the call) of an extension: its reply dates the lease from then."""
        start = time.monotonic()
        deadline = None if timeout is None else _call_deadline(start + timeout)
        args = [lease.token, self._owner_of(lease), max(1, round(ttl * 1000))]
        base = _Keys(self.prefix, lease.name).base
        return start, ("extend", [base], args, f"extend {lease.name!r}", deadline)

    def _extend(self, lease: Lease, ttl: float, timeout: float | None = None) -> None:
        start, call = self._extend_call(lease, ttl, timeout)
        self._extended(lease, ttl, start, self._call(*call))

    async def _extend_async(self, lease: Lease, ttl: float, timeout: float | None = None) -> None:
        start, call = self._extend_call(lease, ttl, timeout)
        self._extended(lease, ttl, start, await self._scripts.call_async(*call))

    def _extended(self, lease: Lease, ttl: float, start: float, reply: Any) -> None:
        ok, exp, now = reply
        if not ok:
            self._forget(lease)
            raise LeaseLost(f"{lease!r} no longer holds {lease.name!r}")
        lease.expires_at = _local_expiry(start, exp, now)
        lease.ttl = ttl
        if lease._on_lost is not None:
            self._watch(lease)

    def _is_valid(self, lease: Lease, deadline: float | None = None) -> bool:
        """Whether Redis says the lease still holds, asked by ``deadline``. By default
        (``lease.valid``) the deadline is the lease's local expiry, past which its holder
        must take it as lost whatever Redis would say: so past it the answer is False
        without asking, and a Redis that has not answered by then (stalled) gets False
        too; one that fails sooner (refused, reset) raises ``LockBackendError``."""
        by_expiry = deadline is None
        if deadline is None:
            assert lease.expires_at is not None  # every Redis lease has a TTL
            deadline = lease.expires_at
            if time.monotonic() >= deadline:
                return False
        base, args = _Keys(self.prefix, lease.name).base, [lease.token, self._owner_of(lease)]
        try:
            ok = bool(self._call("valid", [base], args, f"check {lease.name!r}", deadline))
        except LockBackendError:
            if by_expiry and time.monotonic() >= deadline:
                return False  # expired while Redis kept quiet
            raise
        if not ok:
            self._forget(lease)
        return ok

    # ------------------------------------------------------------ acquiring

    def _attempt(
        self, r: _Request, enqueue: bool, deadline: float | None = None
    ) -> tuple[Lease | None, float, float]:
        """One atomic try: see :meth:`_granted`."""
        start = time.monotonic()
        reply = self._call("acquire", *self._acquire_call(r, enqueue), r.what, deadline)
        return self._granted(r, reply, start)

    async def _attempt_async(
        self, r: _Request, enqueue: bool, deadline: float | None = None
    ) -> tuple[Lease | None, float, float]:
        """:meth:`_attempt` for asyncio. Through the asyncio client (``Scripts.call_async``)
        it is cancelled with its caller, who then withdraws its waiter id (which gives back
        a grant made to it); in a worker thread it runs on, and a lease it gets all the
        same is handed back."""
        if self.async_client is None:
            run = functools.partial(self._attempt, r, enqueue, deadline)
            fut = asyncio.get_running_loop().run_in_executor(None, run)
            try:
                return await asyncio.shield(fut)
            except asyncio.CancelledError:
                fut.add_done_callback(_release_if_granted)
                raise
        start = time.monotonic()
        keys, args = self._acquire_call(r, enqueue)
        reply = await self._scripts.call_async("acquire", keys, args, r.what, deadline)
        return self._granted(r, reply, start)

    def _acquire_call(self, r: _Request, enqueue: bool) -> tuple[list[str], list[Any]]:
        with self._lock:
            floor = self._seen.get(r.k.base, 0)
        args = [r.waiter, r.mode, r.ttl_ms, _owner_id(r.owner), int(enqueue)]
        return [r.k.base], [*args, self._waiter_ttl_ms, floor]

    def _granted(self, r: _Request, reply: Any, start: float) -> tuple[Lease | None, float, float]:
        """An ACQUIRE's reply as (lease, 0, 0) if granted, else (None, ms until a holder
        expires or -1, ``offset``). ``offset`` maps the server's clock onto the local one
        (``_local_expiry(start, 0, now)``: plus a server time in seconds, a local time no
        later than it), to date a grant handed on after this attempt (:meth:`_handed`)."""
        if isinstance(reply, int):  # a new grant, for the TTL asked for
            return self._new_lease(r, reply, _local_expiry(start, r.ttl_ms, 0)), 0, 0
        got, token, exp_or_hint, now = reply
        if got == -1:
            raise LockBackendError(
                f"the fencing counter of {r.name!r} went back: it is at {token}, but this "
                f"table has seen token {self._seen.get(r.k.base)} (a failover to a replica "
                "that missed writes, an older snapshot restored); no token is issued that "
                f"could go backwards. Restore the data, or set the key {r.k.key('tokens')!r} "
                "to at least that token"
            )
        if not got:
            return None, float(exp_or_hint), _local_expiry(start, 0, now)
        return self._new_lease(r, int(token), _local_expiry(start, exp_or_hint, now)), 0, 0

    def _handed(self, r: _Request, popped: Any, offset: float) -> Lease | None:
        """The lease a release handed on, from the "token|expiry" its waiter popped; None
        for a plain wake-up ('0': try again). The grant came after the waiter's last
        attempt, so that attempt's ``offset`` dates its expiry no later than the server's."""
        token, _, exp = _text(popped).partition("|")
        return self._new_lease(r, int(token), offset + int(exp) / 1000) if exp else None

    def _new_lease(self, r: _Request, token: int, expires_at: float) -> Lease:
        lease = Lease(self, r.name, r.mode, token, r.owner, expires_at, r.on_lost, r.ttl)
        with self._lock:
            self._counts["grants"] += 1
            self._local[(lease.name, lease.token)] = lease
            if lease.token > self._seen.get(r.k.base, 0):
                self._seen[r.k.base] = lease.token
        if r.on_lost is not None:
            self._watch(lease)
        return lease

    def _cancel(self, r: _Request, ttl: float | None = None) -> None:
        """Withdraw a waiter that gives up, releasing any lease Redis granted it that
        its caller never received. If Redis cannot be reached, keep trying in the
        background (until ``ttl`` has passed, when such a lease has ended anyway)."""
        keys, args, what = [r.k.base], [r.waiter, self._waiter_ttl_ms], f"cancel {r.name!r}"
        try:  # bounded: a caller giving up must not wait on a stalled Redis
            self._call("cancel", keys, args, what, time.monotonic() + CANCEL_WAIT)
        except LockBackendError:
            log.warning(
                "could not withdraw a waiter from %r yet; retrying in the background", r.name
            )
            until = time.monotonic() + (self.default_ttl if ttl is None else ttl)
            self._later("cancel", keys, args, what, until)

    def _later(
        self, script: str, keys: list[str], args: list[Any], what: str, until: float
    ) -> None:
        """Make a call that must happen (a withdrawal; a release whose caller was
        cancelled) from a daemon thread ``ringhash-redis-<script>``, tried every 0.1 s,
        each try bounded, until ``until`` (monotonic), when what it undoes has ended."""

        def run() -> None:
            while time.monotonic() < until:
                try:
                    self._call(script, keys, args, what, until)  # done already: harmless
                    return
                except LockBackendError:
                    time.sleep(0.1)
            log.warning("%s: Redis did not answer before the lease ended", what)

        threading.Thread(target=run, name=f"ringhash-redis-{script}", daemon=True).start()

    def _check_deadlock(self, r: _Request) -> None:
        """Refuse to wait on a lock the owner holds here, or to close a cycle of local owners."""
        if self._deadlocks(r, refuse=True):
            raise DeadlockError(
                f"acquiring {r.name!r} for owner {r.owner!r} would deadlock: "
                "it waits on a lock its owner holds (through this table)"
            )

    def _deadlocks(self, r: _Request, refuse: bool = False) -> bool:
        """Whether waiting on ``r.name`` would deadlock as far as this table knows: the
        owner holds it here, or a holder of it waits (by a chain of waits) on the owner.
        To ``refuse`` one also ends the wait in the same step: of owners that close a
        cycle at once, exactly one is refused."""
        with self._lock:
            now = time.monotonic()
            held: dict[str | None, set[Hashable]] = {}
            for lease in self._local.values():
                if lease.expires_at is None or lease.expires_at > now:
                    held.setdefault(lease.name, set()).add(lease.owner)
            waits = self._waiting
            cycle = closes_cycle(
                r.owner,
                held.get(r.name, ()),
                lambda o: [h for n in waits.get(o, {}).values() for h in held.get(n, ())],
            )
            if cycle and refuse:
                self._wait_edge(r, False, locked=True)
                self._counts["deadlocks"] += 1
            return cycle

    def _wait_edge(self, r: _Request, waits: bool, locked: bool = False) -> None:
        """Record that ``r``'s owner waits for ``r.name`` (an owner may wait in several
        threads or tasks at once), or that this wait has ended."""
        with contextlib.nullcontext() if locked else self._lock:
            if waits:
                self._waiting.setdefault(r.owner, {})[r.waiter] = r.name
            elif r.waiter in (mine := self._waiting.get(r.owner, {})):
                del mine[r.waiter]
                if not mine:
                    del self._waiting[r.owner]

    def _check_eviction(self, deadline: float | None) -> None:
        """On first use: refuse a Redis that may evict the lock's keys (a lease, a
        queue or the fencing counter evicted means two holders, or a token issued
        twice); ``check_eviction=False`` skips this, with a warning. By the acquire's
        ``deadline``: unanswered, it is a ``LockBackendError``, and asked again next use."""
        by = _call_deadline(deadline)
        check_no_eviction(self.client, self.check_eviction, "RedisLockTable", LockBackendError, by)
        self._eviction_checked = True

    def _prepare_redis(
        self, *args: Any
    ) -> tuple[
        str, str, float, float | None, float | None, Hashable, Callable[[Lease], object] | None
    ]:
        """``_prepare``, with the TTL every Redis lease has (``default_ttl`` is never None)
        and the acquire's deadline (monotonic; None without a timeout), the one deadline
        of all it asks Redis, the one-time eviction check included."""
        name, mode, ttl, tmo, owner, on_lost = self._prepare(*args)
        deadline = None if tmo is None else time.monotonic() + tmo
        ttl_s = self.default_ttl if ttl is None else ttl
        return name, mode, ttl_s, tmo, deadline, owner, on_lost

    def acquire(
        self,
        name: str,
        *,
        mode: str = EXCLUSIVE,
        ttl: float | None = None,
        timeout: float | None = None,
        owner: Hashable | None = None,
        on_lost: Callable[[Lease], object] | None = None,
    ) -> Lease:
        """Acquire ``name`` (see :meth:`ringhash.LockTable.acquire`); every lease has a TTL."""
        name, mode, ttl_s, tmo, deadline, owner, on_lost = self._prepare_redis(
            name, mode, ttl, timeout, owner, on_lost, threading.current_thread
        )
        if not self._eviction_checked:
            self._check_eviction(deadline)
        r = self._request(name, mode, ttl_s, owner, on_lost)
        self._wait_edge(r, True)  # before queueing, so others see the wait-for edge
        try:
            return self._acquire_blocking(r, tmo, deadline)
        finally:
            self._wait_edge(r, False)

    def _request(
        self,
        name: str,
        mode: str,
        ttl: float,
        owner: Hashable,
        on_lost: Callable[[Lease], object] | None,
    ) -> _Request:
        k = _Keys(self.prefix, name)
        waiter = f"{self._wid}{next(self._wseq)}"
        return _Request(k, waiter, name, mode, ttl, owner, on_lost, max(1, round(ttl * 1000)))

    def _acquire_blocking(self, r: _Request, tmo: float | None, deadline: float | None) -> Lease:
        """Run :meth:`_steps` with the sync calls; withdraw ``r`` if it raises."""
        steps = self._steps(r, tmo, deadline, self._pipelines(r, tmo, self._scripts.wire))
        try:
            step = next(steps)
            while True:
                if step[0] == "pop":
                    result = self._scripts.pop(r.k.wake(r.waiter), step[1], DEADLINE_SLACK)
                elif step[0] == "attempt":
                    result = self._attempt(r, step[1], _call_deadline(deadline))
                else:
                    result = self._attempt_and_pop(r, deadline)
                step = steps.send(result)
        except StopIteration as done:
            return cast(Lease, done.value)
        except BaseException as e:
            self._gave_up(r, tmo, e)
            raise

    def _gave_up(self, r: _Request, tmo: float | None, e: BaseException) -> None:
        """After :meth:`_steps` raised ``e``: withdraw ``r``, which may have been granted
        (given back) or queued; a refused try (``timeout=0``) queued nothing."""
        if not (tmo == 0 and isinstance(e, LockTimeout)):
            self._cancel(r, r.ttl)

    def _steps(
        self, r: _Request, tmo: float | None, deadline: float | None, pipelined: bool
    ) -> Generator[tuple[str, Any], Any, Lease]:
        """An acquire's attempts and waits, without I/O: yields the call to make, is sent
        its result, returns the lease. ("attempt", enqueue) is :meth:`_attempt`; ("pop",
        wait) a pop of the waiter's list; ("both", None) :meth:`_attempt_and_pop` (when
        ``pipelined``). Run by :meth:`_acquire_blocking` and :meth:`acquire_async`."""
        lease: Lease | None
        popped, waited = None, pipelined
        if pipelined:
            lease, hint, offset, popped = yield ("both", None)
        else:
            lease, hint, offset = yield ("attempt", tmo != 0)
        if lease is not None:
            return lease
        if tmo == 0:
            self._count("timeouts")
            raise LockTimeout(f"{r.name!r} is held (timeout=0)")
        if not waited:  # a pipelined wait was checked before it was sent
            self._check_deadlock(r)
        self._mark_contended(r)
        while True:
            if not waited:
                popped = yield ("pop", self._next_wait(r.name, hint, deadline))
            waited = False
            if popped is not None and (lease := self._handed(r, popped, offset)) is not None:
                return lease
            lease, hint, offset = yield ("attempt", True)
            if lease is not None:
                return lease

    def _pipelines(self, r: _Request, tmo: float | None, on: object) -> bool:
        """Whether an acquire sends its first attempt and first pop together: on one of
        the table's own connections (``on``: the wire, or the asyncio pool; None for a
        cluster client, which routes each command), when it may wait, had to wait for
        this lock of late, and would close no deadlock."""
        return (
            on is not None and tmo != 0 and r.k.base in self._contended and not self._deadlocks(r)
        )

    def _mark_contended(self, r: _Request) -> None:
        if len(self._contended) >= 4096:  # many locks contended once: start over
            self._contended.clear()
        self._contended.add(r.k.base)

    def _attempt_and_pop(
        self, r: _Request, deadline: float | None
    ) -> tuple[Lease | None, float, float, Any]:
        """For a lock an acquire here had to wait for of late: the first attempt (which
        queues) and the first pop in one round trip; :meth:`_attempt`'s result and the
        element popped. Granted at once, the lock is no longer taken as contended."""
        start, call = self._pipelined(r, deadline)
        return self._first(r, start, *self._scripts.call_then_pop(*call))

    async def _attempt_and_pop_async(
        self, r: _Request, deadline: float | None
    ) -> tuple[Lease | None, float, float, Any]:
        """:meth:`_attempt_and_pop` through the asyncio client (cancelled with its
        caller, who then withdraws its waiter id, as :meth:`_attempt_async`)."""
        start, call = self._pipelined(r, deadline)
        return self._first(r, start, *await self._scripts.call_then_pop_async(*call))

    def _pipelined(self, r: _Request, deadline: float | None) -> tuple[float, tuple[Any, ...]]:
        wait = self._next_wait(r.name, -1, deadline)
        keys, args = self._acquire_call(r, True)
        pop = (r.k.wake(r.waiter), wait, DEADLINE_SLACK, _queued)
        return time.monotonic(), ("acquire", keys, args, r.what, *pop, _call_deadline(deadline))

    def _first(
        self, r: _Request, start: float, reply: Any, popped: Any
    ) -> tuple[Lease | None, float, float, Any]:
        lease, hint, offset = self._granted(r, reply, start)
        if lease is not None:
            self._contended.discard(r.k.base)
        return lease, hint, offset, popped

    async def acquire_async(
        self,
        name: str,
        *,
        mode: str = EXCLUSIVE,
        ttl: float | None = None,
        timeout: float | None = None,
        owner: Hashable | None = None,
        on_lost: Callable[[Lease], object] | None = None,
    ) -> Lease:
        """:meth:`acquire` for asyncio: through ``async_client`` if given, else with the sync
        client's calls in a worker thread; waits never block the event loop."""
        name, mode, ttl_s, tmo, deadline, owner, on_lost = self._prepare_redis(
            name, mode, ttl, timeout, owner, on_lost, current_task
        )
        if not self._eviction_checked:  # a blocking call: not in the event loop
            await asyncio.to_thread(self._check_eviction, deadline)
        r = self._request(name, mode, ttl_s, owner, on_lost)
        self._wait_edge(r, True)
        pipelined = self._pipelines(r, tmo, self._scripts.async_pool)
        steps = self._steps(r, tmo, deadline, pipelined)
        try:
            step = next(steps)
            while True:
                if step[0] == "pop":
                    wake = r.k.wake(r.waiter)
                    result = await self._scripts.pop_async(wake, step[1], DEADLINE_SLACK)
                elif step[0] == "attempt":
                    result = await self._attempt_async(r, step[1], _call_deadline(deadline))
                else:
                    result = await self._attempt_and_pop_async(r, deadline)
                step = steps.send(result)
        except StopIteration as done:
            return cast(Lease, done.value)
        except BaseException as e:
            self._gave_up(r, tmo, e)  # one short call: not awaited, not cancellable
            raise
        finally:
            self._wait_edge(r, False)

    def _next_wait(self, name: str, hint: float, deadline: float | None) -> float:
        """Seconds a blocked waiter may wait for its wake-up before the next attempt;
        LockTimeout once the deadline has passed. The wait ends at the earliest holder
        expiry (``hint``, ms), after ``poll_cap`` (the safety net and heartbeat), or at
        the deadline, whichever is first; a hand-off ends it sooner."""
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            self._count("timeouts")
            raise LockTimeout(f"{name!r} was not granted within the timeout")
        wait = self.poll_cap
        if hint >= 0:
            wait = min(wait, hint / 1000 + 0.001)
        if deadline is not None:
            wait = min(wait, deadline - now)
        return max(wait, 0.0)

    def _count(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1

    # ------------------------------------------------------------ on_lost

    _watch = watch  # on_lost: the expiry watcher (_redis_lost.py)

    # ------------------------------------------------------------ introspection

    def holders(self, name: str, *, timeout: float | None = None) -> tuple[Lease, ...]:
        """The leases holding ``name`` now (owners as stored in Redis, for other processes);
        ``timeout``: answered or ``LockBackendError`` within it (plus the deadline slack)."""
        start, call = self._read("holders", name, timeout)
        return _holders_reply(self._call(*call), self, name, start, self._local)

    async def holders_async(self, name: str, *, timeout: float | None = None) -> tuple[Lease, ...]:
        """:meth:`holders` for asyncio: through ``async_client`` if given, else in a
        worker thread; the event loop runs on while Redis answers."""
        start, call = self._read("holders", name, timeout)
        raw = await self._scripts.call_async(*call)
        return _holders_reply(raw, self, name, start, self._local)

    def waiting(self, name: str, *, timeout: float | None = None) -> tuple[WaitingRequest, ...]:
        """The requests queued for ``name``, in arrival order (owners as stored in Redis);
        ``timeout`` as for :meth:`holders`."""
        return _waiting_reply(self._call(*self._read("waiting", name, timeout)[1]))

    async def waiting_async(
        self, name: str, *, timeout: float | None = None
    ) -> tuple[WaitingRequest, ...]:
        """:meth:`waiting` for asyncio, as :meth:`holders_async`."""
        return _waiting_reply(
            await self._scripts.call_async(*self._read("waiting", name, timeout)[1])
        )

    def _read(
        self, script: str, name: str, timeout: float | None
    ) -> tuple[float, tuple[str, list[str], list[Any], str, float | None]]:
        """(when it was asked, the call) of a read of ``name``'s holders or queue."""
        base = _Keys(self.prefix, check_name(name)).base
        return time.monotonic(), (script, [base], [], f"read {name!r}", _deadline_in(timeout))

    def stats(self) -> LockStats:
        """Counters of this table object (not of other processes), and its live leases."""
        now = time.monotonic()
        with self._lock:
            live = sum(
                1
                for lease in self._local.values()
                if lease.expires_at is None or lease.expires_at > now
            )
            waiters = sum(map(len, self._waiting.values()))
            return LockStats(holders=live, waiters=waiters, **self._counts)
