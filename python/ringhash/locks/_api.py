"""The lock table's contract, shared by every backend.

Errors, argument checks, ``Lease`` (with keep-alive), ``LeaseGroup``, the
statistics types and ``LockTableBase``, which builds ``try_acquire``, ``lock``,
``lock_async`` and ``acquire_many`` on a backend's ``acquire`` and
``acquire_async``. The backends are ``ringhash.locks.LockTable`` (in-process,
``_memory.py``) and ``ringhash.redis_locks.RedisLockTable`` (``_redis.py``).

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
import logging
import math
import numbers
import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple, Protocol, TypeVar

__all__ = [
    "EXCLUSIVE",
    "SHARED",
    "DeadlockError",
    "KeepAlive",
    "Lease",
    "LeaseGroup",
    "LeaseLost",
    "LockBackendError",
    "LockError",
    "LockStats",
    "LockTableBase",
    "LockTimeout",
    "WaitingRequest",
    "check_mode",
    "check_name",
    "check_on_lost",
    "check_owner",
    "check_timeout",
    "check_ttl",
    "current_task",
    "notify_lost",
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
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"lock name {name!r} is not encodable as UTF-8 ({e.reason})") from None
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


def current_task() -> Hashable:
    """The default owner of the async API: the running asyncio task."""
    task = asyncio.current_task()
    assert task is not None  # the async API runs inside a task
    return task


# ---------------------------------------------------------------- shared types


class _Backend(Protocol):
    def _release(self, lease: Lease, timeout: float | None = None) -> None: ...
    async def _release_async(self, lease: Lease, timeout: float | None = None) -> None: ...
    async def _extend_async(
        self, lease: Lease, ttl: float, timeout: float | None = None
    ) -> None: ...
    def _extend(self, lease: Lease, ttl: float, timeout: float | None = None) -> None: ...
    def _is_valid(self, lease: Lease) -> bool: ...
    def _now(self) -> float: ...


class Lease:
    """Proof of holding a lock: a name, a mode, a fencing token and maybe an expiry.

    Use it as a context manager to release it on exit. A lease is not tied to
    a thread: any thread may release or extend it.
    """

    __slots__ = (
        "name",
        "mode",
        "token",
        "owner",
        "expires_at",
        "ttl",
        "_backend",
        "_on_lost",
        "_lost_told",
        "__weakref__",
    )

    def __init__(
        self,
        backend: _Backend,
        name: str,
        mode: str,
        token: int,
        owner: Hashable,
        expires_at: float | None,
        on_lost: Callable[[Lease], object] | None = None,
        ttl: float | None = None,
    ) -> None:
        self._backend = backend
        self.name = name
        self.mode = mode
        self.token = token
        self.owner = owner
        #: Expiry on the backend's clock, or None for a lease without TTL.
        self.expires_at = expires_at
        self._on_lost = on_lost
        self._lost_told = False  # on_lost has been called (it is called once)
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

    def extend(self, ttl: float, *, timeout: float | None = None) -> None:
        """Make the lease expire ``ttl`` seconds from now; LeaseLost if it no longer holds.

        ``timeout``: a remote backend answers within that many seconds (plus its
        documented slack) or raises ``LockBackendError``; None waits as its client does.
        """
        self._backend._extend(self, *_extension(ttl, timeout))

    async def extend_async(self, ttl: float, *, timeout: float | None = None) -> None:
        """:meth:`extend` for asyncio: a remote backend's call never blocks the event loop."""
        await self._backend._extend_async(self, *_extension(ttl, timeout))

    def release(self, *, timeout: float | None = None) -> None:
        """Release the lock; LeaseLost if the lease no longer holds it.

        Releasing a valid lease never fails. ``timeout``: a remote backend answers
        within that many seconds (plus its documented slack) or raises
        ``LockBackendError``, the outcome then unknown (the lease ends at its TTL at
        the latest) and the lease forgotten by this table.
        """
        tmo = None if timeout is None else check_timeout(timeout)
        self._backend._release(self, tmo)

    async def release_async(self, *, timeout: float | None = None) -> None:
        """:meth:`release` for asyncio, which ``async with table.lock_async(...)`` uses: a
        remote backend's call never blocks the event loop, and once sent it completes
        even if the awaiting task is cancelled (the lease is forgotten here either way)."""
        tmo = None if timeout is None else check_timeout(timeout)
        await self._backend._release_async(self, tmo)

    def keep_alive(
        self,
        *,
        every: float | None = None,
        max_renewals: int | None = None,
    ) -> KeepAlive:
        """Renew the lease in a background thread every ``every`` seconds (a third of
        its TTL by default), at most ``max_renewals`` times if given.

        Stops when the lease is released or lost; a renewal that fails (LeaseLost,
        LockBackendError; a remote backend is given until the lease's expiry to answer)
        calls ``on_lost``. Check ``lease.valid`` before a write all the same: renewal
        narrows the window for losing the lease, it does not close it. Returns a handle
        whose ``stop()`` ends the renewals.
        """
        if self.ttl is None:
            raise ValueError("keep_alive() needs a lease with a TTL")
        interval = self.ttl / 3 if every is None else _check_seconds(every, "every")
        if interval <= 0:
            raise ValueError("every must be > 0 seconds")
        if max_renewals is not None and (
            isinstance(max_renewals, bool) or not isinstance(max_renewals, int) or max_renewals < 0
        ):
            raise ValueError("max_renewals must be an int >= 0 or None")
        return KeepAlive(self, interval, max_renewals)

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        _release_on_exit(self, et)

    def __repr__(self) -> str:
        exp = "" if self.expires_at is None else f", expires_at={self.expires_at:.3f}"
        return (
            f"Lease({self.name!r}, mode={self.mode!r}, token={self.token}, "
            f"owner={self.owner!r}{exp})"
        )


def _extension(ttl: object, timeout: object) -> tuple[float, float | None]:
    """An extension's ``ttl`` and ``timeout``, checked."""
    checked = None if ttl is None else check_ttl(ttl)
    if checked is None:
        raise ValueError("extend() needs a ttl in seconds")
    return checked, check_timeout(timeout)


class KeepAlive:
    """Background renewal of one lease (see :meth:`Lease.keep_alive`)."""

    def __init__(self, lease: Lease, interval: float, max_renewals: int | None) -> None:
        self.lease = lease
        self.renewals = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run,
            args=(interval, max_renewals),
            name=f"ringhash-keep-alive-{lease.name}",
            daemon=True,
        )
        self._thread.start()

    def _run(self, interval: float, max_renewals: int | None) -> None:
        lease = self.lease
        while not self._stop.wait(interval):
            if max_renewals is not None and self.renewals >= max_renewals:
                return
            try:
                lease.extend(lease.ttl, timeout=lease.remaining())  # type: ignore[arg-type]
            except LockError:
                if not self._stop.is_set():
                    notify_lost([lease])
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
    """Release at the end of a with-block; a lost lease is reported unless an error
    is already on its way."""
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
        """Whether every lease of the group is still held."""
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
        """Extend every lease to ``ttl`` seconds from now (see :meth:`Lease.extend`)."""
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

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
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

    def __init__(
        self, acquire: Callable[[], Lease] | None, acquire_async: Callable[[], Any] | None
    ) -> None:
        self._acquire = acquire
        self._acquire_async = acquire_async
        self._lease: Lease | None = None

    def __enter__(self) -> Lease:
        if self._acquire is None:
            raise TypeError("use 'async with table.lock_async(...)'")
        self._lease = self._acquire()
        return self._lease

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._lease is not None
        _release_on_exit(self._lease, et)

    async def __aenter__(self) -> Lease:
        if self._acquire_async is None:
            raise TypeError("use 'with table.lock(...)'")
        self._lease = await self._acquire_async()
        return self._lease

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._lease is not None
        try:
            await self._lease.release_async()
        except LeaseLost:
            if et is None:
                raise


_Table = TypeVar("_Table", bound="LockTableBase")


class LockTableBase:
    """What every lock table builds on ``acquire``/``acquire_async`` (in-process and Redis)."""

    default_ttl: float | None

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
        raise NotImplementedError

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
        raise NotImplementedError

    def close(self) -> None:
        """Let go of what the table keeps open (a Redis table's own connections):
        leases stay as they are, and the table stays usable (it connects again when
        next used). ``with table:`` closes it at the end of the block."""

    def __enter__(self: _Table) -> _Table:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _now(self) -> float:
        raise NotImplementedError

    def _prepare(
        self,
        name: object,
        mode: object,
        ttl: object,
        timeout: object,
        owner: object,
        on_lost: object,
        default_owner: Callable[[], Hashable],
    ) -> tuple[str, str, float | None, float | None, Hashable, Callable[[Lease], object] | None]:
        """Every acquire's arguments, checked, with the table's defaults filled in."""
        return (
            check_name(name),
            check_mode(mode),
            self.default_ttl if ttl is None else check_ttl(ttl),
            check_timeout(timeout),
            default_owner() if owner is None else check_owner(owner),
            check_on_lost(on_lost),
        )

    def try_acquire(
        self,
        name: str,
        *,
        mode: str = EXCLUSIVE,
        ttl: float | None = None,
        timeout: float | None = 0,
        owner: Hashable | None = None,
        on_lost: Callable[[Lease], object] | None = None,
    ) -> Lease | None:
        """Like :meth:`acquire` (trying once by default), but None instead of ``LockTimeout``."""
        try:
            return self.acquire(
                name, mode=mode, ttl=ttl, timeout=timeout, owner=owner, on_lost=on_lost
            )
        except LockTimeout:
            return None

    def lock(
        self,
        name: str,
        *,
        mode: str = EXCLUSIVE,
        ttl: float | None = None,
        timeout: float | None = None,
        owner: Hashable | None = None,
        on_lost: Callable[[Lease], object] | None = None,
    ) -> _LockContext:
        """``with table.lock(name) as lease:`` acquires on entry and releases on exit."""
        return _LockContext(
            lambda: self.acquire(
                name, mode=mode, ttl=ttl, timeout=timeout, owner=owner, on_lost=on_lost
            ),
            None,
        )

    def lock_async(
        self,
        name: str,
        *,
        mode: str = EXCLUSIVE,
        ttl: float | None = None,
        timeout: float | None = None,
        owner: Hashable | None = None,
        on_lost: Callable[[Lease], object] | None = None,
    ) -> _LockContext:
        """``async with table.lock_async(name) as lease:``."""
        return _LockContext(
            None,
            lambda: self.acquire_async(
                name, mode=mode, ttl=ttl, timeout=timeout, owner=owner, on_lost=on_lost
            ),
        )

    def acquire_many(
        self,
        names: Iterable[str],
        *,
        mode: str = EXCLUSIVE,
        ttl: float | None = None,
        timeout: float | None = None,
        owner: Hashable | None = None,
    ) -> LeaseGroup:
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


_TOLD = threading.Lock()


def notify_lost(leases: Iterable[Lease]) -> None:
    """Call each lease's ``on_lost``, exactly once per lease however many paths
    notice the loss (the expiry watcher, a failed renewal); never with a table's
    lock held. A callback that raises is logged, not propagated."""
    for lease in leases:
        if lease._on_lost is None:
            continue
        with _TOLD:
            if lease._lost_told:
                continue
            lease._lost_told = True
        try:
            lease._on_lost(lease)
        except Exception:
            log.exception("on_lost callback for %r raised", lease)
