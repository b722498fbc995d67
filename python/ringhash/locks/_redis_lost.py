"""``on_lost`` for :class:`~ringhash.redis_locks.RedisLockTable`: the expiry watcher.

A lease acquired with ``on_lost`` is watched: at its local expiry (a conservative
estimate, counted from before its request was sent) the table's watcher thread
asks Redis whether the lease still holds, and calls ``on_lost`` once Redis says it
does not. :func:`watch` is the table's ``_watch`` method and :func:`due_lost` its
watcher thread's round, kept here so the engine module stays about acquiring and
releasing.

When Redis cannot answer (gone, or stalled), the watcher cannot tell: it asks
again shortly, until ``UNCHECKED_GRACE`` past the local expiry, each question
bounded by that time; then, without an answer, the lease is taken as lost. So
``on_lost`` comes about ``UNCHECKED_GRACE`` after the local expiry at the latest,
whatever Redis does: a question holds the watcher until its own lease's limit at
most, and a lease waiting behind it has a limit no more than ``RECHECK`` earlier.
One unanswered question ends its round's questions: the other leases due then are
asked again in the next round.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol

from ._api import Lease, LockBackendError, notify_lost
from ._common import Reaper


class Watched(Protocol):
    """What the watcher uses of a ``RedisLockTable`` (which imports this module)."""

    _lock: threading.Lock  # guards the rest, and the table's own records
    _local: dict[tuple[str, int], Lease]  # the leases granted through the table, live
    # (when to check, seq, the expires_at it was scheduled for, lease)
    _lost_heap: list[tuple[float, int, float, Lease]]
    _reaper: Reaper[Any] | None

    @property
    def _seq(self) -> Iterator[int]: ...
    def _is_valid(self, lease: Lease, deadline: float | None = None) -> bool: ...
    def _count(self, what: str) -> None: ...


#: How long past its local expiry a lease with ``on_lost`` that Redis cannot be asked
#: about is taken as maybe still held (the acquire's round trip); then it is lost.
UNCHECKED_GRACE = 1.0
#: How soon a lease Redis still holds, or could not be asked about, is asked about again.
RECHECK = 0.02


def watch(table: Watched, lease: Lease) -> None:
    """Call ``lease.on_lost`` when it expires (checked on the server at its local expiry)."""
    assert lease.expires_at is not None
    with table._lock:
        heapq.heappush(
            table._lost_heap, (lease.expires_at, next(table._seq), lease.expires_at, lease)
        )
        if table._reaper is None:
            table._reaper = Reaper(table, due_lost, "ringhash-redis-lock-reaper")
        else:
            table._reaper.poke()


def due_lost(table: Watched) -> float | None:
    """Check the leases due now; returns seconds until the next one (None: nothing)."""
    now = time.monotonic()
    due = []
    with table._lock:
        while table._lost_heap and table._lost_heap[0][0] <= now:
            _, _, scheduled_for, lease = heapq.heappop(table._lost_heap)
            if lease.expires_at == scheduled_for and (lease.name, lease.token) in table._local:
                due.append(lease)
        nxt = table._lost_heap[0][0] - now if table._lost_heap else None
    answering = True
    for lease in due:
        assert lease.expires_at is not None  # watched leases have a TTL
        limit = lease.expires_at + UNCHECKED_GRACE
        still = None
        if answering and time.monotonic() < limit:
            try:
                still = table._is_valid(lease, limit)
            except LockBackendError:  # cannot tell: ask again shortly, until the limit
                answering = False
        if still is None:
            still = time.monotonic() < limit
        if still:
            # The local expiry is a conservative estimate (counted from before the
            # request was sent), so the server may not have expired it yet.
            with table._lock:
                heapq.heappush(
                    table._lost_heap,
                    (time.monotonic() + RECHECK, next(table._seq), lease.expires_at, lease),
                )
                nxt = RECHECK if nxt is None else min(nxt, RECHECK)
            continue
        table._count("expiries")
        notify_lost([lease])
    return nxt
