"""Planning: what moves on a membership change, how balanced a ring is, bounded loads.

All of it works on the built arrays with numpy operations (no per-point Python
objects), so 1,000-node rings and millions of keys take milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np

from .errors import EmptyRingError

__all__ = ["Balance", "MovedRange", "RingChange"]

SPACE = 1 << 32


class RingView(Protocol):
    """What planning reads of a ring (a ``RingSnapshot`` has all of it)."""

    @property
    def nodes(self) -> tuple[str, ...]: ...
    @property
    def weights(self) -> Mapping[str, float]: ...
    @property
    def points(self) -> np.ndarray: ...
    @property
    def owners(self) -> np.ndarray: ...
    @property
    def arc_ends(self) -> tuple[np.ndarray, np.ndarray]: ...
    @property
    def hash(self) -> str: ...
    @property
    def seed(self) -> int: ...
    def __len__(self) -> int: ...
    def hash_keys(self, keys: object) -> np.ndarray: ...
    def lookup_hashes(self, hashes: object) -> np.ndarray: ...
    def lookup(self, keys: object) -> np.ndarray: ...


class MovedRange(NamedTuple):
    """Hashes ``start..end`` (inclusive) moved from ``from_node`` to ``to_node``
    (either may be None where a ring was empty)."""

    start: int
    end: int
    from_node: str | None
    to_node: str | None


def _owners_at(snap: RingView, hashes: np.ndarray, ids: dict[str, int]) -> np.ndarray:
    """Owner of each hash as an id in a name space shared by two rings (-1: empty ring)."""
    if not len(snap.nodes):
        return np.full(len(hashes), -1, dtype=np.int64)
    local = np.array([ids[n] for n in snap.nodes], dtype=np.int64)
    owners: np.ndarray = local[snap.lookup_hashes(hashes)]
    return owners


class RingChange:
    """What a membership change moves: hash ranges, fractions, and concrete keys.

    Computed lazily from the two snapshots on first use (``add`` and friends
    return one without paying for it), then cached. Safe to share between
    threads: computing twice gives the same answer.
    """

    __slots__ = ("before", "after", "_computed")

    def __init__(self, before: RingView, after: RingView) -> None:
        if (before.hash, before.seed) != (after.hash, after.seed) and len(before) and len(after):
            raise ValueError("the two rings hash keys differently: compare their lookups instead")
        self.before = before
        self.after = after
        self._computed: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]] | None = (
            None
        )

    def _compute(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
        if self._computed is None:
            names = sorted(set(self.before.nodes) | set(self.after.nodes))
            ids = {n: i for i, n in enumerate(names)}
            # Ownership can only change where some point p starts (p) or ends (p + 1)
            # an arc, under either lookup rule; evaluate both rings at each such start.
            pts = np.concatenate([self.before.arc_ends[0], self.after.arc_ends[0]]).astype(np.int64)
            starts = np.unique(np.concatenate([[0], pts, pts + 1]))
            starts = starts[starts < SPACE].astype(np.uint32)
            a = _owners_at(self.before, starts, ids)
            b = _owners_at(self.after, starts, ids)
            # Merge runs where the (before, after) pair does not change.
            keep = np.ones(len(starts), dtype=bool)
            keep[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
            starts, a, b = starts[keep].astype(np.int64), a[keep], b[keep]
            self._computed = (starts, a, b, np.append(starts[1:], SPACE) - starts, names)
        return self._computed

    @property
    def ranges(self) -> tuple[MovedRange, ...]:
        """The moved hash ranges, in ring order."""
        starts, a, b, lengths, names = self._compute()
        moved = np.flatnonzero(a != b)

        def name(i: int) -> str | None:
            return None if i < 0 else names[i]

        return tuple(
            MovedRange(int(starts[i]), int(starts[i] + lengths[i] - 1), name(a[i]), name(b[i]))
            for i in moved
        )

    @property
    def fraction(self) -> float:
        """Fraction of the 2**32 hash space that changes owner."""
        _, a, b, lengths, _ = self._compute()
        return float(lengths[a != b].sum()) / SPACE

    @property
    def by_pair(self) -> dict[tuple[str | None, str | None], float]:
        """Moved fraction of the hash space per (from_node, to_node)."""
        _, a, b, lengths, names = self._compute()
        m = a != b
        out: dict[tuple[str | None, str | None], float] = {}
        for x, y, n in zip(a[m].tolist(), b[m].tolist(), lengths[m].tolist(), strict=True):
            key = (None if x < 0 else names[x], None if y < 0 else names[y])
            out[key] = out.get(key, 0.0) + n / SPACE
        return out

    def moved(self, keys: object) -> np.ndarray:
        """Whether each key of a batch changes owner (bool, the batch's shape)."""
        starts, a, b, _, _ = self._compute()
        ring = self.before if len(self.before) else self.after
        hashes = ring.hash_keys(keys)
        at = np.searchsorted(starts, hashes.astype(np.int64), side="right") - 1
        moved: np.ndarray = (a != b)[at]
        return moved

    def __repr__(self) -> str:
        return f"RingChange(fraction={self.fraction:.4f}, ranges={len(self.ranges)})"


@dataclass(frozen=True)
class Balance:
    """How evenly a ring spreads the hash space, relative to the node weights.

    Each node's ratio is its share of the hash space divided by its share of
    the total weight (1.0 is perfect). ``peak_to_mean`` and ``min_to_mean``
    are the largest and smallest ratios over the mean ratio; ``cv`` is their
    coefficient of variation (standard deviation / mean). Only the nodes that take
    keys count (``serving_weights``: not a preset's down, disabled or backup server).
    """

    peak_to_mean: float
    min_to_mean: float
    cv: float
    nodes: int
    points: int


def shares(snap: RingView) -> dict[str, float]:
    """The exact fraction of the hash space each node owns: arc lengths, not point counts."""
    if not len(snap.nodes):
        raise EmptyRingError("the ring has no nodes")
    if not len(snap.points):  # a preset's servers, all down, disabled or backups
        raise EmptyRingError("no node of the ring has a point: none takes keys")
    ends, owners = snap.arc_ends
    pts = ends.astype(np.int64)
    arcs = np.diff(pts, prepend=pts[-1] - SPACE)  # the first point's arc wraps around
    own = np.bincount(owners, weights=arcs, minlength=len(snap.nodes)) / SPACE
    return dict(zip(snap.nodes, own.tolist(), strict=True))


def serving_weights(snap: Any) -> np.ndarray:
    """Each node's weight, in ``snap.nodes`` order, but 0 for a node that owns no
    point: a preset's server that takes no keys by its configuration (nginx ``down``,
    HAProxy ``disabled`` or ``backup``); every node of a plain ring owns one at least.
    What the key shares are measured against (``balance``, ``bounded_caps``)."""
    w = np.array([snap.weights[n] for n in snap.nodes], dtype=float)
    owners = getattr(snap, "owners", None)  # (the other algorithms have no points)
    if owners is not None:
        w[np.bincount(owners, minlength=len(w)) == 0] = 0.0
    return w


def balance(snap: RingView) -> Balance:
    """Over the nodes that serve keys (``serving_weights``)."""
    share = np.array(list(shares(snap).values()))
    w = serving_weights(snap)
    serving = w > 0
    return balance_of(share[serving], w[serving], len(snap.points))


def nearest_arc_ends(points: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ends of the arcs of a nearest-point ring, as a first-point->= ring: each
    point owns up to the midpoint of the gap after it (a tie going to the point
    before), so ``floor`` of that midpoint ends its arc."""
    pts = points.astype(np.int64)
    nxt = np.roll(pts, -1)
    nxt[-1] += SPACE
    mid = (pts + (nxt - pts) // 2) % SPACE
    order = np.argsort(mid, kind="stable")
    return mid[order].astype(np.uint32), owners[order]


def balance_of(share: np.ndarray, weights: np.ndarray, points: int) -> Balance:
    """The Balance of nodes owning ``share`` of the keys with these ``weights``."""
    ratio = share / (weights / weights.sum())
    mean = ratio.mean()
    return Balance(
        float(ratio.max() / mean),
        float(ratio.min() / mean),
        float(ratio.std() / mean),
        len(share),
        points,
    )


def load(snap: RingView, keys: object) -> dict[str, int]:
    """Keys per node for a concrete batch."""
    counts = np.bincount(snap.lookup(keys).reshape(-1), minlength=len(snap.nodes))
    return dict(zip(snap.nodes, counts.tolist(), strict=True))


def bounded_caps(snap: RingView, nkeys: int, load_factor: object) -> np.ndarray:
    """Per-node caps for consistent hashing with bounded loads (Mirrokni, Thorup,
    Zadimoghaddam): ``ceil(load_factor * nkeys * weight_share)`` each, the share of the
    weight of the nodes that serve keys (``serving_weights``)."""
    if isinstance(load_factor, bool) or not isinstance(load_factor, (int, float, np.floating)):
        raise TypeError(f"load_factor must be a number, not {type(load_factor).__name__}")
    if not (load_factor >= 1.0 and math.isfinite(load_factor)):
        raise ValueError(f"load_factor must be finite and >= 1, got {load_factor!r}")
    w = serving_weights(snap)
    return np.array(
        [math.ceil(float(load_factor) * nkeys * x) for x in (w / w.sum()).tolist()], dtype=np.int64
    )
