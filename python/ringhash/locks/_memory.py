"""``LockTable``: the in-process lock table, shared by threads and asyncio tasks.

The contract (errors, ``Lease``, the semantics every backend keeps) is in
``_api.py``; this module is the engine: per-name holders and FIFO queues under
one internal lock, expiry by a background reaper, and fork safety.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import os
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Any

from ._api import (
    EXCLUSIVE,
    SHARED,
    DeadlockError,
    Lease,
    LeaseLost,
    LockStats,
    LockTableBase,
    LockTimeout,
    WaitingRequest,
    check_mode,
    check_name,
    check_on_lost,
    check_owner,
    check_timeout,
    check_ttl,
    current_task,
    notify_lost,
)
from ._common import Reaper, closes_cycle

__all__ = ["LockTable"]


# ---------------------------------------------------------------- in-process table


class _Waiter:
    __slots__ = (
        "name",
        "mode",
        "owner",
        "ttl",
        "on_lost",
        "since",
        "lease",
        "gate",
        "loop",
        "future",
    )

    def __init__(
        self,
        name: str,
        mode: str,
        owner: Hashable,
        ttl: float | None,
        on_lost: Callable[[Lease], object] | None,
        since: float,
    ) -> None:
        self.name, self.mode, self.owner, self.ttl = name, mode, owner, ttl
        self.on_lost, self.since = on_lost, since
        self.lease: Lease | None = None
        # Sync waiters block on a gate: a lock held until the table wakes them.
        self.gate: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.future: asyncio.Future[None] | None = None


class _Name(dict[int, Lease]):
    """State of one name: its holders (the dict: token -> lease) and its FIFO of waiters.

    A dict subclass so that making one on the uncontended path costs no more
    than a dict; most names never see a waiter, so ``queue`` starts as the
    class's empty tuple and a deque is made on the first one.
    """

    queue: collections.deque[_Waiter] | tuple[()] = ()

    def compatible(self, mode: str) -> bool:
        if not self:
            return True
        return mode == SHARED and next(iter(self.values())).mode == SHARED


_tables: weakref.WeakSet[LockTable] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for table in list(_tables):
        table._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


_this_thread = threading.local()


def _sync_waiter(w: _Waiter) -> None:
    w.gate = threading.Lock()
    w.gate.acquire()


def _wake(w: _Waiter) -> None:
    if w.gate is not None:
        try:
            w.gate.release()  # open the gate
        except RuntimeError:
            pass  # already open: the waiter has not looked yet
    elif w.loop is not None and w.future is not None:
        w.loop.call_soon_threadsafe(_resolve, w.future)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class LockTable(LockTableBase):
    """Named locks with leases and fencing tokens, shared by threads and asyncio tasks.

    Parameters
    ----------
    default_ttl : float or None
        TTL in seconds for leases acquired without one (None: no expiry).
    clock : callable
        Monotonic clock in seconds. Inject a fake one in tests; with a clock
        other than ``time.monotonic`` expiries are processed at every table
        call and by :meth:`expire`, not by the background reaper.

    Notes
    -----
    Thread safety: every method may be called from any thread and any
    asyncio event loop at once. One internal lock guards the table; it is
    never held while waiting or while calling ``on_lost``.

    Examples
    --------
    >>> table = LockTable()
    >>> with table.lock("orders:42", ttl=30) as lease:
    ...     lease.token > 0
    True
    """

    def __init__(
        self, *, default_ttl: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.default_ttl = check_ttl(default_ttl)
        if not callable(clock):
            raise TypeError("clock must be callable")
        self._clock = clock
        self._use_reaper = clock is time.monotonic
        self._tokens = itertools.count(1)
        self._init_state()
        _tables.add(self)

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[str, _Name] = {}
        self._waiting_owners: dict[Hashable, list[_Waiter]] = {}
        self._expiries: list[tuple[float, int, Lease]] = []
        self._ttl_holders = 0  # holders with a TTL (sizes the expiry heap)
        self._n_grants = self._n_releases = self._n_timeouts = self._n_expiries = (
            self._n_deadlocks
        ) = 0
        self._waiters = 0
        self._reaper: Reaper[LockTable] | None = None

    def _reset_after_fork(self) -> None:
        # The parent's threads (reaper, waiters) do not exist here, and the
        # internal lock may have been held at fork time: start over, keeping
        # the token counter so tokens still never go backwards in this process.
        self._init_state()

    def __repr__(self) -> str:
        return (
            f"LockTable(names={len(self._names)}, holders={self._held()}, waiters={self._waiters})"
        )

    def _held(self) -> int:
        # Every grant ends in exactly one release or expiry (an abandoned grant
        # counts as a release), so the current holders need no counter of their own.
        return self._n_grants - self._n_releases - self._n_expiries

    # ------------------------------------------------------------ backend hooks

    def _now(self) -> float:
        return self._clock()

    def _is_valid(self, lease: Lease) -> bool:
        with self._lock:
            lost = self._expire_due()
            ok = self._holds(lease)
        notify_lost(lost)
        return ok

    def _release(self, lease: Lease, timeout: float | None = None) -> None:
        lost: list[Lease] | None = None
        try:
            with self._lock:
                if self._expiries:
                    lost = self._expire_due()
                state = self._names.get(lease.name)
                # Tokens are unique in a table, so popping the token removes this very lease.
                if state is None or state.pop(lease.token, None) is not lease:
                    raise LeaseLost(f"{lease!r} no longer holds {lease.name!r}")
                if lease.expires_at is not None:
                    self._ttl_holders -= 1
                self._n_releases += 1
                if state.queue:
                    self._grant_waiters(lease.name, state)
                elif not state:
                    del self._names[lease.name]
        finally:
            if lost:
                notify_lost(lost)

    # in-process: nothing to wait for
    async def _release_async(self, lease: Lease, timeout: float | None = None) -> None:
        self._release(lease, timeout)

    async def _extend_async(self, lease: Lease, ttl: float, timeout: float | None = None) -> None:
        self._extend(lease, ttl, timeout)

    def _extend(self, lease: Lease, ttl: float, timeout: float | None = None) -> None:
        with self._lock:
            lost = self._expire_due()
            ok = self._holds(lease)
            if ok:
                if lease.expires_at is None:
                    self._ttl_holders += 1
                lease.expires_at = self._clock() + ttl
                lease.ttl = ttl
                self._push_expiry(lease)
        notify_lost(lost)
        if not ok:
            raise LeaseLost(f"{lease!r} no longer holds {lease.name!r}")

    # ------------------------------------------------------------ internals (lock held)

    def _grant(
        self,
        name: str,
        state: _Name,
        mode: str,
        owner: Hashable,
        ttl: float | None,
        on_lost: Callable[[Lease], object] | None,
    ) -> Lease:
        expires_at = None if ttl is None else self._clock() + ttl
        lease = Lease(self, name, mode, next(self._tokens), owner, expires_at, on_lost, ttl)
        state[lease.token] = lease
        self._n_grants += 1
        if expires_at is not None:
            self._ttl_holders += 1
            self._push_expiry(lease)
        return lease

    def _push_expiry(self, lease: Lease) -> None:
        assert lease.expires_at is not None
        heap = self._expiries
        heapq.heappush(heap, (lease.expires_at, lease.token, lease))
        if len(heap) > 64 + 2 * self._ttl_holders:
            # Drop entries of released or re-extended leases so the heap stays
            # proportional to the live leases.
            live = [e for e in heap if self._holds(e[2]) and e[2].expires_at == e[0]]
            heapq.heapify(live)
            self._expiries = heap = live
        if self._use_reaper and heap[0][2] is lease:
            self._poke_reaper()

    def _holds(self, lease: Lease) -> bool:
        state = self._names.get(lease.name)
        return state is not None and state.get(lease.token) is lease

    def _drop_holder(self, state: _Name, lease: Lease) -> None:
        del state[lease.token]
        if lease.expires_at is not None:
            self._ttl_holders -= 1

    def _drop_if_idle(self, name: str, state: _Name) -> None:
        if not state and not state.queue:
            del self._names[name]

    def _grant_waiters(self, name: str, state: _Name) -> None:
        """Grant queued requests from the head while they are compatible (FIFO)."""
        queue = state.queue
        while queue:
            w = queue[0]
            if w.loop is not None and w.loop.is_closed():
                self._unqueue(state, w)  # its task can never run again
                continue
            if not state.compatible(w.mode):
                break
            self._unqueue(state, w)
            w.lease = self._grant(name, state, w.mode, w.owner, w.ttl, w.on_lost)
            _wake(w)
        self._drop_if_idle(name, state)

    def _unqueue(self, state: _Name, w: _Waiter) -> None:
        queue = state.queue
        assert isinstance(queue, collections.deque)  # w is queued, so the deque exists
        if queue[0] is w:
            queue.popleft()
        else:
            queue.remove(w)
        self._waiters -= 1
        ws = self._waiting_owners[w.owner]
        ws.remove(w)
        if not ws:
            del self._waiting_owners[w.owner]

    def _expire_due(self) -> list[Lease]:
        """Expire every lease due now; returns those with an on_lost callback."""
        heap = self._expiries
        if not heap or heap[0][0] > self._clock():
            return []
        now = self._clock()
        lost = []
        touched: dict[str, _Name] = {}
        while heap and heap[0][0] <= now:
            when, _, lease = heapq.heappop(heap)
            if lease.expires_at != when or not self._holds(lease):
                continue  # released or extended since
            state = self._names[lease.name]
            self._drop_holder(state, lease)
            self._n_expiries += 1
            touched[lease.name] = state
            if lease._on_lost is not None:
                lost.append(lease)
        for name, state in touched.items():
            self._grant_waiters(name, state)
        return lost

    def _blockers(self, w: _Waiter) -> set[Hashable]:
        """Owners that ``w`` waits for: the name's holders and the requests queued ahead of it."""
        state = self._names[w.name]
        owners = {lease.owner for lease in state.values()}
        for ahead in state.queue:
            if ahead is w:
                break
            if ahead.owner != w.owner:
                owners.add(ahead.owner)
        return owners

    def _would_deadlock(self, w: _Waiter) -> bool:
        """Whether queueing ``w`` closes a cycle in the wait-for graph (w is queued)."""
        return closes_cycle(
            w.owner,
            self._blockers(w),
            lambda o: [
                b for other in self._waiting_owners.get(o, ()) for b in self._blockers(other)
            ],
        )

    # ------------------------------------------------------------ the reaper

    def _poke_reaper(self) -> None:
        if self._reaper is None:
            self._reaper = Reaper(self, LockTable._reap_due, "ringhash-lock-reaper")
        else:
            self._reaper.poke()

    def _reap_due(self) -> float | None:
        """Expire what is due; seconds until the next expiry (None: nothing scheduled)."""
        with self._lock:
            lost = self._expire_due()
            heap = self._expiries
            delay = None if not heap else max(0.0, heap[0][0] - self._clock())
        notify_lost(lost)
        return delay

    def expire(self) -> int:
        """Process every expiry due on the clock now and wake waiters; returns how many expired.

        Only needed with an injected clock (after advancing it); with the
        default clock a background thread does this at each expiry time.
        """
        with self._lock:
            before = self._n_expiries
            lost = self._expire_due()
            n = self._n_expiries - before
            for state in self._names.values():
                for w in state.queue:
                    _wake(w)  # let waiters re-check their deadlines on the new time
        notify_lost(lost)
        return n

    # ------------------------------------------------------------ acquiring

    def _enqueue_or_grant(
        self,
        name: str,
        mode: str,
        ttl: float | None,
        timeout: float | None,
        owner: Hashable,
        on_lost: Callable[[Lease], object] | None,
        make_waiter: Callable[[_Waiter], None],
    ) -> Lease | _Waiter:
        """Grant at once if FIFO order and modes allow, else queue a waiter (or refuse)."""
        lost: list[Lease] = []
        try:
            with self._lock:
                if self._expiries:
                    lost = self._expire_due()
                state = self._names.get(name)
                if state is None:
                    state = self._names[name] = _Name()
                    return self._grant(name, state, mode, owner, ttl, on_lost)
                if not state.queue and state.compatible(mode):
                    return self._grant(name, state, mode, owner, ttl, on_lost)
                if timeout == 0:
                    self._n_timeouts += 1
                    raise LockTimeout(f"{name!r} is held (timeout=0)")
                w = _Waiter(name, mode, owner, ttl, on_lost, self._clock())
                if not state.queue:
                    state.queue = collections.deque()
                state.queue.append(w)
                self._waiters += 1
                self._waiting_owners.setdefault(owner, []).append(w)
                if self._would_deadlock(w):
                    self._unqueue(state, w)
                    self._n_deadlocks += 1
                    raise DeadlockError(
                        f"acquiring {name!r} ({mode}) for owner {owner!r} would deadlock: "
                        "it waits on a lock its owner holds, directly or through other waiters"
                    )
                make_waiter(w)
                return w
        finally:
            if lost:
                notify_lost(lost)

    def _settle(self, w: _Waiter, deadline: float | None) -> tuple[Lease | None, float | None]:
        """After a wake-up: (lease, None) once granted; raise LockTimeout past the deadline;
        else (None, seconds to wait before looking again)."""
        lost: list[Lease] = []
        try:
            with self._lock:
                lost = self._expire_due()
                if w.lease is not None:
                    return w.lease, None
                now = self._clock()
                state = self._names[w.name]
                if deadline is not None and now >= deadline:
                    self._unqueue(state, w)
                    self._n_timeouts += 1
                    self._grant_waiters(w.name, state)
                    raise LockTimeout(f"{w.name!r} was not granted within the timeout")
                wait = None if deadline is None else deadline - now
                # Wake at the earliest expiry among the holders too, so a lock
                # freed by expiry is taken at that time even without the reaper.
                for lease in state.values():
                    if lease.expires_at is not None:
                        until = max(0.0, lease.expires_at - now)
                        wait = until if wait is None else min(wait, until)
                if w.gate is not None:
                    w.gate.acquire(False)  # close the gate again if a wake-up opened it
                elif w.future is not None and w.future.done():
                    w.future = w.loop.create_future()  # type: ignore[union-attr]
                return None, wait
        finally:
            notify_lost(lost)

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
        """:meth:`acquire` for asyncio: waits without blocking the event loop."""
        name, mode, ttl, tmo, owner, on_lost = self._prepare(
            name, mode, ttl, timeout, owner, on_lost, current_task
        )
        deadline = None if tmo is None else self._clock() + tmo
        loop = asyncio.get_running_loop()

        def async_waiter(w: _Waiter) -> None:
            w.loop = loop
            w.future = loop.create_future()

        got = self._enqueue_or_grant(name, mode, ttl, tmo, owner, on_lost, async_waiter)
        if isinstance(got, Lease):
            return got
        w = got
        try:
            while True:
                lease, wait = self._settle(w, deadline)
                if lease is not None:
                    return lease
                assert w.future is not None
                await asyncio.wait([w.future], timeout=wait)
        except BaseException as e:
            if not isinstance(e, LockTimeout):  # cancelled: leave no trace
                self._abandon(w)
            raise

    def _abandon(self, w: _Waiter) -> None:
        """A waiter gave up (cancelled): leave the queue, or hand back a lease granted meanwhile."""
        with self._lock:
            lease = w.lease
            w.lease = None
            state = self._names.get(w.name)
            if lease is None:
                if state is not None and w in state.queue:
                    self._unqueue(state, w)
                    self._grant_waiters(w.name, state)
                return
            if state is not None and state.get(lease.token) is lease:
                self._drop_holder(state, lease)
                self._n_releases += 1  # an abandoned grant counts as released (see _held)
                self._grant_waiters(w.name, state)

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
        """Acquire ``name``; block until granted or the timeout passes.

        ``timeout=None`` waits as long as it takes, ``0`` tries once, ``> 0``
        waits at most that many seconds, then raises ``LockTimeout``.
        """
        # Validation inlined: this is the uncontended hot path (isascii is a flag
        # read; other names get the full check, UTF-8 encodability included).
        if type(name) is not str or not name or not name.isascii():
            check_name(name)
        if mode != EXCLUSIVE and mode != SHARED:
            check_mode(mode)
        ttl = self.default_ttl if ttl is None else check_ttl(ttl)
        tmo = None if timeout is None else check_timeout(timeout)
        if owner is None:
            try:
                owner = _this_thread.thread  # cached: threading.current_thread() costs more
            except AttributeError:
                owner = _this_thread.thread = threading.current_thread()
        else:
            owner = check_owner(owner)
        if on_lost is not None:
            check_on_lost(on_lost)
        with self._lock:
            # Uncontended: an idle name and nothing due to expire.
            if name not in self._names and not (
                self._expiries and self._expiries[0][0] <= self._clock()
            ):
                state = self._names[name] = _Name()
                if ttl is not None:
                    return self._grant(name, state, mode, owner, ttl, on_lost)
                # _grant for a lease without TTL, inlined: this is the hottest path.
                token = next(self._tokens)
                lease = state[token] = Lease(self, name, mode, token, owner, None, on_lost)
                self._n_grants += 1
                return lease
        got = self._enqueue_or_grant(name, mode, ttl, tmo, owner, on_lost, _sync_waiter)
        if isinstance(got, Lease):
            return got
        w = got
        deadline = None if tmo is None else w.since + tmo
        try:
            while True:
                granted, wait = self._settle(w, deadline)
                if granted is not None:
                    return granted
                assert w.gate is not None
                if w.gate.acquire(timeout=-1 if wait is None else wait):
                    w.gate.release()  # leave it open for _settle to see and close
        except BaseException as e:
            if not isinstance(e, LockTimeout):  # e.g. KeyboardInterrupt while waiting
                self._abandon(w)
            raise

    # ------------------------------------------------------------ introspection

    def holders(self, name: str, *, timeout: float | None = None) -> tuple[Lease, ...]:
        """The leases currently holding ``name`` (in grant order). ``timeout`` is for a
        remote backend (``RedisLockTable``); here the answer never waits."""
        check_name(name)
        check_timeout(timeout)
        with self._lock:
            lost = self._expire_due()
            state = self._names.get(name)
            held = () if state is None else tuple(state.values())
        notify_lost(lost)
        return held

    def waiting(self, name: str, *, timeout: float | None = None) -> tuple[WaitingRequest, ...]:
        """The requests queued for ``name``, in arrival order (``timeout``: as for
        :meth:`holders`)."""
        check_name(name)
        check_timeout(timeout)
        with self._lock:
            state = self._names.get(name)
            if state is None:
                return ()
            return tuple(WaitingRequest(w.owner, w.mode, w.since) for w in state.queue)

    async def holders_async(self, name: str, *, timeout: float | None = None) -> tuple[Lease, ...]:
        """:meth:`holders` for asyncio (the same answer: here it never waits)."""
        return self.holders(name, timeout=timeout)

    async def waiting_async(
        self, name: str, *, timeout: float | None = None
    ) -> tuple[WaitingRequest, ...]:
        """:meth:`waiting` for asyncio (the same answer: here it never waits)."""
        return self.waiting(name, timeout=timeout)

    def stats(self) -> LockStats:
        """Counters since the table was made, and the locks held and waited for now."""
        with self._lock:
            lost = self._expire_due()
            s = LockStats(
                grants=self._n_grants,
                releases=self._n_releases,
                timeouts=self._n_timeouts,
                expiries=self._n_expiries,
                deadlocks=self._n_deadlocks,
                holders=self._held(),
                waiters=self._waiters,
            )
        notify_lost(lost)
        return s

    def __len__(self) -> int:
        """Names with holders or waiters (idle names cost nothing and are not counted)."""
        return len(self._names)
