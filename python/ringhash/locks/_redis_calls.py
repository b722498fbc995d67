"""What ``RedisLockTable`` (``_redis.py``) sends and what comes back, apart from the
Lua itself (``_redis_scripts.py``): the keys of one lock (``_Keys``), one acquire call
and its waiter id (``_Request``), how owners are named in Redis, what the replies say
(``_queued``, ``_holders_reply``, ``_waiting_reply``), how server times become local
ones, the deadlines of calls (``DEADLINE_SLACK``, ``CANCEL_WAIT``), and what becomes
of a grant whose asyncio caller was cancelled (``_release_if_granted``)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from .._redisio import escape_tag
from ._api import Lease, LeaseLost, LockBackendError, WaitingRequest, check_timeout, log

__all__ = [
    "CANCEL_WAIT",
    "DEADLINE_SLACK",
    "_Keys",
    "_Request",
    "_backend_error",
    "_call_deadline",
    "_deadline_in",
    "_holders_reply",
    "_local_expiry",
    "_owner_id",
    "_queued",
    "_release_if_granted",
    "_text",
    "_waiting_reply",
]


#: The slack of a deadline: a call made before the deadline may take this much
#: longer (a timeout of 0, try once, still gets one round trip).
DEADLINE_SLACK = 0.5
#: How long a caller that gives up waits for its withdrawal before leaving it to
#: a background retry: ``acquire(timeout=t)`` ends within t + DEADLINE_SLACK +
#: CANCEL_WAIT whatever Redis does.
CANCEL_WAIT = 0.1


def _call_deadline(deadline: float | None) -> float | None:
    return None if deadline is None else max(deadline, time.monotonic() + DEADLINE_SLACK)


def _deadline_in(timeout: float | None) -> float | None:
    """The deadline of a call given ``timeout`` seconds (checked), or None."""
    tmo = None if timeout is None else check_timeout(timeout)
    return None if tmo is None else _call_deadline(time.monotonic() + tmo)


def _backend_error(what: str, e: BaseException) -> LockBackendError:
    err = LockBackendError(f"{what}: Redis failed ({type(e).__name__}: {e})")
    err.__cause__ = e
    return err


class _Keys:
    """The keys of one lock: ``base`` and ``key(part)`` for each of ``PARTS``. Scripts
    name the parts from ``base`` themselves (``_K``: ``K[i]`` is ``PARTS[i - 1]``); the
    client needs them only for reads and messages, so they are made on use."""

    PARTS = (
        "holders",
        "info",
        "queue",
        "qexp",
        "tokens",
        "qseq",
        "qinfo",
        "solo",
        "claims",
        "released",
    )
    WAKE, GRANT = "wake", "g"  # per waiter id: its list, its grant record
    __slots__ = ("base",)

    def __init__(self, prefix: str, name: str) -> None:
        # the {name} hash tag keeps one lock in one cluster slot; escaped, braces in a
        # name cannot move the tag, and two (prefix, name) pairs never share keys
        self.base = f"{prefix}{{{escape_tag(name)}}}"

    def key(self, part: str) -> str:
        """The key of one of ``PARTS``."""
        return f"{self.base}:{part}"

    def wake(self, waiter: str) -> str:
        """The list a blocked ``waiter`` pops its wake-up from."""
        return f"{self.base}:{self.WAKE}:{waiter}"


@dataclass(slots=True)
class _Request:
    """One acquire call: the lock, the waiter id every attempt of it sends, and what
    its lease will be."""

    k: _Keys
    waiter: str
    name: str
    mode: str
    ttl: float
    owner: Hashable
    on_lost: Callable[[Lease], object] | None
    ttl_ms: int  # the TTL as sent: a new grant's lease ends this long after the grant

    @property
    def what(self) -> str:
        """The call, as errors name it."""
        return f"acquire {self.name!r}"


def _queued(reply: Any) -> bool:
    """Whether an ACQUIRE that queued its waiter left it waiting (to be pushed a grant
    or a wake-up), from its reply: not granted, and not refused."""
    return not isinstance(reply, int) and int(reply[0]) == 0


_HOST = socket.gethostname()


def _owner_id(owner: Hashable) -> str:
    """How an owner is named in Redis: a str as itself, a thread or task by process and id."""
    if isinstance(owner, str):
        return owner
    if isinstance(owner, threading.Thread):
        return f"{_HOST}:{os.getpid()}:thread:{owner.ident}"
    if isinstance(owner, asyncio.Task):
        return f"{_HOST}:{os.getpid()}:task:{id(owner)}"
    return f"{_HOST}:{os.getpid()}:{type(owner).__name__}:{owner!r}"


def _local_expiry(start: float, exp_ms: Any, now_ms: Any) -> float:
    """A lease's expiry on the local monotonic clock, never later than the server's.

    The server granted at some instant after ``start`` (when the request was
    sent) and reads its clock in whole milliseconds, truncated, so its expiry is
    at least ``start + ttl - 1 ms``: claim no more than that.
    """
    return start + (int(exp_ms) - int(now_ms)) / 1000 - 0.001


def _text(v: Any) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def _holders_reply(
    raw: Any, table: Any, name: str, start: float, local: dict[tuple[str, int], Lease]
) -> tuple[Lease, ...]:
    """HOLDERS' reply as ``table``'s leases of ``name`` in token order: one of its own
    (in ``local``) as itself, else one with the expiry the server gave, on the local
    clock of ``start`` (when the read was sent)."""
    now, out = raw[0], []
    for i in range(1, len(raw), 3):
        token = int(raw[i])
        lease = local.get((name, token))
        if lease is None:
            mode, _, owner = _text(raw[i + 2]).partition("|")
            exp = _local_expiry(start, int(float(raw[i + 1])), now)
            lease = Lease(table, name, mode, token, owner, exp)
        out.append(lease)
    return tuple(sorted(out, key=lambda lease: lease.token))


def _waiting_reply(infos: Any) -> tuple[WaitingRequest, ...]:
    """WAITING's reply: the requests in arrival order (``since``: the server's clock in
    s), leaving out waiters whose details are gone."""
    out = []
    for info in infos:
        if info is not None:
            mode, since, _ttl, _floor, owner = _text(info).split("|", 4)
            out.append(WaitingRequest(owner, mode, int(since) / 1000))
    return tuple(out)


def _release_if_granted(fut: asyncio.Future[tuple[Lease | None, float, float]]) -> None:
    """Hand back the lease an attempt got after its caller was cancelled: a callback in
    the event loop, so a release with a timeout (``CANCEL_WAIT``, plus the deadline slack)."""
    if fut.cancelled() or fut.exception() is not None:
        return
    lease = fut.result()[0]
    if lease is not None:
        try:
            lease.release(timeout=CANCEL_WAIT)
        except LeaseLost:
            pass  # given back already: the caller's withdrawal releases its waiter id's grant
        except Exception:
            log.warning(
                "could not hand back %r after a cancelled acquire; it expires at its TTL", lease
            )
