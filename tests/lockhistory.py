"""Record lock holds and check a history for mutual exclusion and token order.

Used by the in-process stress test, and by the Redis and multi-process tests,
so every backend passes the same checker.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hold:
    name: str
    mode: str
    token: int
    requested: float  # taken before acquire was called (before the true grant)
    start: float  # taken after acquire returned (inside the true hold)
    end: float  # taken before release was called, or the lease's expiry if it was lost
    counted: bool  # whether the critical section's counter update counts


def check_history(holds: list[Hold]) -> dict[str, int]:
    """Raise AssertionError on any violation; returns the number of holds per name.

    Each recorded interval lies inside the true hold, so an overlap between
    two recorded intervals is a real violation (no false alarms).
    """
    by_name: dict[str, list[Hold]] = {}
    for h in holds:
        assert h.end >= h.start >= h.requested, h
        by_name.setdefault(h.name, []).append(h)
    for name, hs in by_name.items():
        hs.sort(key=lambda h: h.start)
        tokens = [h.token for h in hs]
        assert len(set(tokens)) == len(tokens), f"{name}: a token was granted twice"
        # Sweep: every hold overlapping an exclusive one is a violation.
        for i, a in enumerate(hs):
            for b in hs[i + 1 :]:
                if b.start < a.end and (a.mode == "exclusive" or b.mode == "exclusive"):
                    raise AssertionError(f"{name}: overlapping holds {a} and {b}")
        # a released before b was even requested: a was granted first, so its token is smaller.
        for a in hs:
            for b in hs:
                if a.end < b.requested:
                    assert a.token < b.token, f"{name}: token order {a} then {b}"
    return {name: len(hs) for name, hs in by_name.items()}
