"""What both lock tables use that is not part of their contract (``_api.py``): the
cycle search of deadlock detection and the background expiry thread."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

__all__ = ["Reaper", "closes_cycle"]


def closes_cycle(
    owner: Hashable,
    blockers: Iterable[Hashable],
    blocking: Callable[[Hashable], Iterable[Hashable]],
) -> bool:
    """Whether ``owner`` waiting on ``blockers`` would deadlock: some path from a
    blocker, through the owners each one waits for (``blocking(o)``), leads back to
    ``owner``. Both lock tables' deadlock detection."""
    seen: set[Hashable] = set()
    stack = list(blockers)
    while stack:
        o = stack.pop()
        if o == owner:
            return True
        if o not in seen:
            seen.add(o)
            stack.extend(blocking(o))
    return False


T = TypeVar("T")


class Reaper(Generic[T]):
    """A daemon thread that runs ``step(table)`` when poked and when the delay it
    returned has passed (None: nothing scheduled; it still looks once a minute).

    It holds the table only through a weak reference between rounds, so a table
    that is no longer used is collected and the thread ends.
    """

    def __init__(self, table: T, step: Callable[[T], float | None], name: str) -> None:
        self._wake = threading.Event()
        threading.Thread(
            target=self._run, args=(weakref.ref(table), step), name=name, daemon=True
        ).start()
        weakref.finalize(table, self._wake.set)  # end the thread with the table

    def poke(self) -> None:
        self._wake.set()

    def _run(self, ref: weakref.ref[T], step: Callable[[T], float | None]) -> None:
        while True:
            table = ref()
            if table is None:
                return
            delay = step(table)
            del table
            self._wake.wait(60.0 if delay is None else min(max(delay, 0.0), 60.0))
            self._wake.clear()
