"""A lock table: named locks with leases, fencing tokens, shared/exclusive modes.

``LockTable`` is the in-process backend, shared by threads and asyncio tasks.
The types here that are not specific to it (errors, ``Lease``, ``LeaseGroup``,
``LockStats``, argument checks) are reused by the Redis backend, so callers
move between the two by changing one line.

Semantics (all backends)
------------------------
- **Fencing tokens.** Every grant carries an int ``token`` strictly greater
  than every token granted before for that name, for the whole life of the
  table (in-process: one counter for the table, so this holds even after a
  name's state is dropped). A storage system protects itself from a stale
  holder (one whose lease expired while it was paused) by remembering the
  highest token it has seen for a resource and rejecting writes that carry a
  lower one.
- **Modes.** Any number of ``"shared"`` holders or one ``"exclusive"`` holder.
- **Fairness.** Requests are served in arrival order: a request is granted
  only if it is compatible with the current holders and no earlier request
  for the name is still waiting, so a stream of readers never starves a writer.
- **Leases.** With a TTL, a lease expires on the table's clock whether or not
  its holder is still running, and the lock passes to the next waiter at that
  time. ``release()`` and ``extend()`` of an expired, released or superseded
  lease raise ``LeaseLost`` and change nothing; ``release()`` of a valid lease
  never fails. ``on_lost`` is called (from a table thread) when a lease expires.
- **Deadlocks.** ``owner`` defaults to the current thread (sync API) or the
  current asyncio task (async API). A request that would wait on its own owner, or close a
  cycle in the wait-for graph between owners, raises ``DeadlockError`` at once.
  A request with ``timeout=0`` never waits, so it fails with ``LockTimeout``.
- **Cancellation.** A cancelled or timed-out waiter leaves the queue at once
  and never blocks those behind it; a lease granted to a waiter that was
  cancelled in the same instant is released, not leaked.
- **Memory.** A name with no holders and no waiters is dropped.
- **Fork.** In a child process every table is empty and usable; leases
  inherited from the parent are invalid there.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import logging
import math
import numbers
import os
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple, Protocol

__all__ = [
    "DeadlockError",
    "KeepAlive",
    "Lease",
    "LeaseGroup",
    "LeaseLost",
    "LockBackendError",
    "LockError",
    "LockStats",
    "LockTable",
    "LockTimeout",
    "WaitingRequest",
]

log = logging.getLogger("ringhash.locks")

EXCLUSIVE = "exclusive"
SHARED = "shared"
MODES = (EXCLUSIVE, SHARED)


# ---------------------------------------------------------------- errors

class LockError(Exception):
    """Base of every lock-table error."""


class LockTimeout(LockError, TimeoutError):
    """The lock was not granted within the timeout."""


class LeaseLost(LockError):
    """The lease expired, was released, or was superseded: it no longer holds the lock."""


class DeadlockError(LockError):
    """Waiting would deadlock: the request waits on its own owner, or closes a wait-for cycle."""


class LockBackendError(LockError):
    """The backend (e.g. Redis) failed; the cause is attached as ``__cause__``."""


# ---------------------------------------------------------------- arguments

def check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"lock name must be a str, not {type(name).__name__}")
    if not name:
        raise ValueError("lock name must be non-empty")
    return name


def check_mode(mode: object) -> str:
    if not isinstance(mode, str):
        raise TypeError(f"mode must be 'exclusive' or 'shared', not {type(mode).__name__}")
    if mode not in MODES:
        raise ValueError(f"mode must be 'exclusive' or 'shared', got {mode!r}")
    return mode


def _check_seconds(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a number of seconds, not {type(value).__name__}")
    v = float(value)
    if math.isnan(v) or v < 0:
        raise ValueError(f"{what} must be >= 0 seconds, got {value!r}")
    return v


def check_ttl(ttl: object) -> float | None:
    """None (no expiry) or a finite number of seconds > 0."""
    if ttl is None:
        return None
    v = _check_seconds(ttl, "ttl")
    if v == 0 or math.isinf(v):
        raise ValueError(f"ttl must be finite and > 0 (or None for no expiry), got {ttl!r}")
    return v


def check_timeout(timeout: object) -> float | None:
    """None or inf (wait as long as it takes), 0 (try once) or seconds > 0."""
    if timeout is None:
        return None
    v = _check_seconds(timeout, "timeout")
    return None if math.isinf(v) else v


def check_owner(owner: object) -> Hashable:
    if not isinstance(owner, Hashable):
        raise TypeError(f"owner must be hashable, not {type(owner).__name__}")
    return owner


def check_on_lost(on_lost: object) -> Callable[[Lease], object] | None:
    if on_lost is not None and not callable(on_lost):
        raise TypeError("on_lost must be callable or None")
    return on_lost


def _current_task() -> Hashable:
    task = asyncio.current_task()
    assert task is not None  # the async API runs inside a task
    return task


# ---------------------------------------------------------------- shared types

class _Backend(Protocol):
    def _release(self, lease: Lease) -> None: ...
    def _extend(self, lease: Lease, ttl: float) -> None: ...
    def _is_valid(self, lease: Lease) -> bool: ...
    def _now(self) -> float: ...


class Lease:
    """Proof of holding a lock: a name, a mode, a fencing token and maybe an expiry.

    Use it as a context manager to release it on exit. A lease is not tied to
    a thread: any thread may release or extend it.
    """

    __slots__ = ("name", "mode", "token", "owner", "expires_at", "ttl", "_backend", "_on_lost",
                 "__weakref__")

    def __init__(self, backend: _Backend, name: str, mode: str, token: int, owner: Hashable,
                 expires_at: float | None, on_lost: Callable[[Lease], object] | None = None,
                 ttl: float | None = None) -> None:
        self._backend = backend
        self.name = name
        self.mode = mode
        self.token = token
        self.owner = owner
        #: Expiry on the backend's clock, or None for a lease without TTL.
        self.expires_at = expires_at
        self._on_lost = on_lost
        #: The TTL the lease was granted (or last extended) with, or None.
        self.ttl = ttl

    @property
    def valid(self) -> bool:
        """Whether this lease still holds its lock (not expired, released or superseded)."""
        return self._backend._is_valid(self)

    def remaining(self) -> float | None:
        """Seconds until expiry (0.0 once expired), or None for a lease without TTL."""
        if self.expires_at is None:
            return None
        return max(0.0, self.expires_at - self._backend._now())

    def extend(self, ttl: float) -> None:
        """Make the lease expire ``ttl`` seconds from now; LeaseLost if it no longer holds."""
        if ttl is None:
            raise ValueError("extend() needs a ttl in seconds")
        self._backend._extend(self, check_ttl(ttl))  # type: ignore[arg-type]

    def release(self) -> None:
        """Release the lock; LeaseLost if the lease no longer holds it.

        Releasing a valid lease never fails.
        """
        self._backend._release(self)

    def keep_alive(self, *, every: float | None = None, max_renewals: int | None = None,
                   ) -> KeepAlive:
        """Renew the lease in a background thread every ``every`` seconds (a third of
        its TTL by default), at most ``max_renewals`` times if given.

        Stops when the lease is released or lost; a renewal that fails (LeaseLost,
        LockBackendError) calls ``on_lost``. Check ``lease.valid`` before a write
        all the same: renewal narrows the window for losing the lease, it does not
        close it. Returns a handle whose ``stop()`` ends the renewals.
        """
        if self.ttl is None:
            raise ValueError("keep_alive() needs a lease with a TTL")
        interval = self.ttl / 3 if every is None else _check_seconds(every, "every")
        if interval <= 0:
            raise ValueError("every must be > 0 seconds")
        if max_renewals is not None and (isinstance(max_renewals, bool) or not isinstance(max_renewals, int)
                                         or max_renewals < 0):
            raise ValueError("max_renewals must be an int >= 0 or None")
        return KeepAlive(self, interval, max_renewals)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        _release_on_exit(self, et)

    def __repr__(self) -> str:
        exp = "" if self.expires_at is None else f", expires_at={self.expires_at:.3f}"
        return f"Lease({self.name!r}, mode={self.mode!r}, token={self.token}, owner={self.owner!r}{exp})"


class KeepAlive:
    """Background renewal of one lease (see :meth:`Lease.keep_alive`)."""

    def __init__(self, lease: Lease, interval: float, max_renewals: int | None) -> None:
        self.lease = lease
        self.renewals = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval, max_renewals),
                                        name=f"ringhash-keep-alive-{lease.name}", daemon=True)
        self._thread.start()

    def _run(self, interval: float, max_renewals: int | None) -> None:
        lease = self.lease
        while not self._stop.wait(interval):
            if max_renewals is not None and self.renewals >= max_renewals:
                return
            try:
                lease.extend(lease.ttl)  # type: ignore[arg-type]
            except LockError:
                if lease._on_lost is not None and not self._stop.is_set():
                    try:
                        lease._on_lost(lease)
                    except Exception:
                        log.exception("on_lost callback for %r raised", lease)
                return
            self.renewals += 1

    def stop(self) -> None:
        """Stop renewing (the lease itself is left as it is)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


def _release_on_exit(lease: Lease | LeaseGroup, et: type[BaseException] | None) -> None:
    """Release at the end of a with-block; a lost lease is reported unless an error is already on its way."""
    try:
        lease.release()
    except LeaseLost:
        if et is None:
            raise


class LeaseGroup:
    """Several leases taken together by ``acquire_many``; released together."""

    __slots__ = ("leases",)

    def __init__(self, leases: Iterable[Lease]) -> None:
        self.leases: tuple[Lease, ...] = tuple(leases)

    @property
    def valid(self) -> bool:
        return all(lease.valid for lease in self.leases)

    def __getitem__(self, name: str) -> Lease:
        for lease in self.leases:
            if lease.name == name:
                return lease
        raise KeyError(name)

    def __iter__(self) -> Any:
        return iter(self.leases)

    def __len__(self) -> int:
        return len(self.leases)

    def extend(self, ttl: float) -> None:
        for lease in self.leases:
            lease.extend(ttl)

    def release(self) -> None:
        """Release every lease; LeaseLost (after releasing the rest) if any was lost."""
        lost = []
        for lease in self.leases:
            try:
                lease.release()
            except LeaseLost:
                lost.append(lease.name)
        if lost:
            raise LeaseLost(f"leases no longer held: {', '.join(lost)}")

    def __enter__(self) -> LeaseGroup:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        _release_on_exit(self, et)

    def __repr__(self) -> str:
        return f"LeaseGroup({list(self.leases)!r})"


@dataclass(frozen=True)
class LockStats:
    """Counters since the table was created, and the current holders and waiters."""

    grants: int
    releases: int
    timeouts: int
    expiries: int
    deadlocks: int
    holders: int
    waiters: int


class WaitingRequest(NamedTuple):
    """A queued request, as reported by ``waiting()``."""

    owner: Hashable
    mode: str
    since: float


class _LockContext:
    """``with table.lock(...)`` / ``async with table.lock_async(...)``."""

    __slots__ = ("_acquire", "_acquire_async", "_lease")

    def __init__(self, acquire: Callable[[], Lease] | None,
                 acquire_async: Callable[[], Any] | None) -> None:
        self._acquire = acquire
        self._acquire_async = acquire_async
        self._lease: Lease | None = None

    def __enter__(self) -> Lease:
        if self._acquire is None:
            raise TypeError("use 'async with table.lock_async(...)'")
        self._lease = self._acquire()
        return self._lease

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._lease is not None
        _release_on_exit(self._lease, et)

    async def __aenter__(self) -> Lease:
        if self._acquire_async is None:
            raise TypeError("use 'with table.lock(...)'")
        self._lease = await self._acquire_async()
        return self._lease

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._lease is not None
        _release_on_exit(self._lease, et)


# ---------------------------------------------------------------- in-process table

class _Waiter:
    __slots__ = ("name", "mode", "owner", "ttl", "on_lost", "since", "lease", "gate", "loop", "future")

    def __init__(self, name: str, mode: str, owner: Hashable, ttl: float | None,
                 on_lost: Callable[[Lease], object] | None, since: float) -> None:
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


class _LockTableAPI:
    """What every lock table builds on ``acquire``/``acquire_async`` (in-process and Redis)."""

    def acquire(self, name: str, *, mode: str = EXCLUSIVE, ttl: float | None = None,
                timeout: float | None = None, owner: Hashable | None = None,
                on_lost: Callable[[Lease], object] | None = None) -> Lease:
        raise NotImplementedError

    async def acquire_async(self, name: str, *, mode: str = EXCLUSIVE, ttl: float | None = None,
                            timeout: float | None = None, owner: Hashable | None = None,
                            on_lost: Callable[[Lease], object] | None = None) -> Lease:
        raise NotImplementedError

    def _now(self) -> float:
        raise NotImplementedError

    def try_acquire(self, name: str, *, mode: str = EXCLUSIVE, ttl: float | None = None,
                    timeout: float | None = 0, owner: Hashable | None = None,
                    on_lost: Callable[[Lease], object] | None = None) -> Lease | None:
        """Like :meth:`acquire` (trying once by default), but None instead of ``LockTimeout``."""
        try:
            return self.acquire(name, mode=mode, ttl=ttl, timeout=timeout, owner=owner, on_lost=on_lost)
        except LockTimeout:
            return None

    def lock(self, name: str, *, mode: str = EXCLUSIVE, ttl: float | None = None,
             timeout: float | None = None, owner: Hashable | None = None,
             on_lost: Callable[[Lease], object] | None = None) -> _LockContext:
        """``with table.lock(name) as lease:`` acquires on entry and releases on exit."""
        return _LockContext(
            lambda: self.acquire(name, mode=mode, ttl=ttl, timeout=timeout, owner=owner, on_lost=on_lost),
            None,
        )

    def lock_async(self, name: str, *, mode: str = EXCLUSIVE, ttl: float | None = None,
                   timeout: float | None = None, owner: Hashable | None = None,
                   on_lost: Callable[[Lease], object] | None = None) -> _LockContext:
        """``async with table.lock_async(name) as lease:``."""
        return _LockContext(
            None,
            lambda: self.acquire_async(name, mode=mode, ttl=ttl, timeout=timeout, owner=owner,
                                       on_lost=on_lost),
        )

    def acquire_many(self, names: Iterable[str], *, mode: str = EXCLUSIVE, ttl: float | None = None,
                     timeout: float | None = None, owner: Hashable | None = None) -> LeaseGroup:
        """Acquire several names all-or-nothing, in sorted order (so callers never deadlock
        each other); the timeout covers the whole group."""
        ordered = _ordered_names(names)
        check_mode(mode)
        tmo = check_timeout(timeout)
        owner = threading.current_thread() if owner is None else check_owner(owner)
        deadline = None if tmo is None else self._now() + tmo
        leases: list[Lease] = []
        try:
            for name in ordered:
                left = None if deadline is None else max(0.0, deadline - self._now())
                leases.append(self.acquire(name, mode=mode, ttl=ttl, timeout=left, owner=owner))
        except BaseException:
            _release_quietly(leases)
            raise
        return LeaseGroup(leases)



class LockTable(_LockTableAPI):
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

    def __init__(self, *, default_ttl: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
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
        self._n_grants = self._n_releases = self._n_timeouts = self._n_expiries = self._n_deadlocks = 0
        self._waiters = 0
        self._reaper_wake: threading.Event | None = None

    def _reset_after_fork(self) -> None:
        # The parent's threads (reaper, waiters) do not exist here, and the
        # internal lock may have been held at fork time: start over, keeping
        # the token counter so tokens still never go backwards in this process.
        self._init_state()

    def __repr__(self) -> str:
        return f"LockTable(names={len(self._names)}, holders={self._held()}, waiters={self._waiters})"

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
        self._notify_lost(lost)
        return ok

    def _release(self, lease: Lease) -> None:
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
                self._notify_lost(lost)

    def _extend(self, lease: Lease, ttl: float) -> None:
        with self._lock:
            lost = self._expire_due()
            ok = self._holds(lease)
            if ok:
                if lease.expires_at is None:
                    self._ttl_holders += 1
                lease.expires_at = self._clock() + ttl
                lease.ttl = ttl
                self._push_expiry(lease)
        self._notify_lost(lost)
        if not ok:
            raise LeaseLost(f"{lease!r} no longer holds {lease.name!r}")

    # ------------------------------------------------------------ internals (lock held)

    def _grant(self, name: str, state: _Name, mode: str, owner: Hashable, ttl: float | None,
               on_lost: Callable[[Lease], object] | None) -> Lease:
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
        seen: set[Hashable] = set()
        stack = list(self._blockers(w))
        while stack:
            owner = stack.pop()
            if owner == w.owner:
                return True
            if owner in seen:
                continue
            seen.add(owner)
            for other in self._waiting_owners.get(owner, ()):
                stack.extend(self._blockers(other))
        return False

    def _notify_lost(self, leases: list[Lease]) -> None:
        """Call on_lost callbacks; never with the table lock held."""
        for lease in leases:
            try:
                lease._on_lost(lease)  # type: ignore[misc]
            except Exception:
                log.exception("on_lost callback for %r raised", lease)

    # ------------------------------------------------------------ the reaper

    def _poke_reaper(self) -> None:
        if self._reaper_wake is None:
            self._reaper_wake = threading.Event()
            t = threading.Thread(target=_reap, args=(weakref.ref(self), self._reaper_wake),
                                 name="ringhash-lock-reaper", daemon=True)
            t.start()
            weakref.finalize(self, self._reaper_wake.set)  # end the thread with the table
        else:
            self._reaper_wake.set()

    def _reap_due(self) -> float | None:
        """Expire what is due; seconds until the next expiry (None: nothing scheduled)."""
        with self._lock:
            lost = self._expire_due()
            heap = self._expiries
            delay = None if not heap else max(0.0, heap[0][0] - self._clock())
        self._notify_lost(lost)
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
        self._notify_lost(lost)
        return n

    # ------------------------------------------------------------ acquiring

    def _enqueue_or_grant(self, name: str, mode: str, ttl: float | None, timeout: float | None,
                          owner: Hashable, on_lost: Callable[[Lease], object] | None,
                          make_waiter: Callable[[_Waiter], None]) -> Lease | _Waiter:
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
                self._notify_lost(lost)

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
            self._notify_lost(lost)

    async def acquire_async(self, name: str, *, mode: str = EXCLUSIVE, ttl: float | None = None,
                            timeout: float | None = None, owner: Hashable | None = None,
                            on_lost: Callable[[Lease], object] | None = None) -> Lease:
        """:meth:`acquire` for asyncio: waits without blocking the event loop."""
        name, mode, ttl, tmo, owner, on_lost = self._prepare(
            name, mode, ttl, timeout, owner, on_lost, _current_task)
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

    def _prepare(self, name: object, mode: object, ttl: object, timeout: object, owner: object,
                 on_lost: object, default_owner: Callable[[], Hashable]
                 ) -> tuple[str, str, float | None, float | None, Hashable,
                            Callable[[Lease], object] | None]:
        return (check_name(name), check_mode(mode),
                self.default_ttl if ttl is None else check_ttl(ttl), check_timeout(timeout),
                default_owner() if owner is None else check_owner(owner),
                check_on_lost(on_lost))

    def acquire(self, name: str, *, mode: str = EXCLUSIVE, ttl: float | None = None,
                timeout: float | None = None, owner: Hashable | None = None,
                on_lost: Callable[[Lease], object] | None = None) -> Lease:
        """Acquire ``name``; block until granted or the timeout passes.

        ``timeout=None`` waits as long as it takes, ``0`` tries once, ``> 0``
        waits at most that many seconds, then raises ``LockTimeout``.
        """
        # Validation inlined: this is the uncontended hot path.
        if type(name) is not str or not name:
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

    def holders(self, name: str) -> tuple[Lease, ...]:
        """The leases currently holding ``name`` (in grant order)."""
        check_name(name)
        with self._lock:
            lost = self._expire_due()
            state = self._names.get(name)
            held = () if state is None else tuple(state.values())
        self._notify_lost(lost)
        return held

    def waiting(self, name: str) -> tuple[WaitingRequest, ...]:
        """The requests queued for ``name``, in arrival order."""
        check_name(name)
        with self._lock:
            state = self._names.get(name)
            if state is None:
                return ()
            return tuple(WaitingRequest(w.owner, w.mode, w.since) for w in state.queue)

    def stats(self) -> LockStats:
        with self._lock:
            lost = self._expire_due()
            s = LockStats(grants=self._n_grants, releases=self._n_releases, timeouts=self._n_timeouts,
                          expiries=self._n_expiries, deadlocks=self._n_deadlocks,
                          holders=self._held(), waiters=self._waiters)
        self._notify_lost(lost)
        return s

    def __len__(self) -> int:
        """Names with holders or waiters (idle names cost nothing and are not counted)."""
        return len(self._names)


def _ordered_names(names: Iterable[str]) -> list[str]:
    if isinstance(names, str):
        raise TypeError("names must be an iterable of names, not a single str")
    ordered = sorted(check_name(n) for n in names)
    if len(set(ordered)) != len(ordered):
        raise ValueError("acquire_many() names a lock twice")
    if not ordered:
        raise ValueError("acquire_many() needs at least one name")
    return ordered


def _release_quietly(leases: Iterable[Lease]) -> None:
    for lease in leases:
        try:
            lease.release()
        except LockError:
            pass


def _reap(ref: weakref.ref[LockTable], wake: threading.Event) -> None:
    """Background expiry for tables on the real clock: on_lost and hand-off at expiry time.

    Holds the table only through a weak reference between rounds, so a table
    that is no longer used is collected and this thread ends.
    """
    while True:
        table = ref()
        if table is None or table._reaper_wake is not wake:  # collected, or forked away
            return
        delay = table._reap_due()
        del table
        if delay is None or delay > 0:
            # Wake at least once a minute to notice a collected table.
            wake.wait(60.0 if delay is None else min(delay, 60.0))
            wake.clear()
