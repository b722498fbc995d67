"""Maglev hashing (Eisenbud et al., NSDI 2016) under the ring's interface.

A lookup table of ``table_size`` entries (a prime, 65,537 by default) is
filled by the nodes in turn, each taking the next free entry of its own
permutation ``(offset + j * skip) % M`` with ``offset = murmur3_32(utf8(name),
seed 0) % M`` and ``skip = murmur3_32(utf8(name), seed 1) % (M - 1) + 1``. With
weights, a node takes a turn in round ``r`` (r = 1, 2, ...) only while its
entries number at most ``r * w / max_w - 1`` (the weighted population of the
paper's follow-ups, as in Envoy). A key with hash ``h`` (the ring's murmur3)
belongs to ``table[(h * M) >> 32]``: one multiply and one load. Balance is
near-perfect; a change moves slightly more than the minimum.

Examples
--------
>>> from ringhash import Maglev
>>> maglev = Maglev(["be-1", "be-2", "be-3"], table_size=251)
>>> maglev.get("user:42")
'be-1'
>>> sorted(round(s, 3) for s in maglev.shares().values())
[0.331, 0.335, 0.335]
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from . import _core
from ._algorithm import Algorithm, Built
from ._keys import U64, KeyBatch, hash_classified
from ._rule import sort_nodes, utf8

__all__ = ["Maglev"]

DEFAULT_TABLE_SIZE = 65_537
MAX_TABLE_SIZE = 1 << 26


def _is_prime(m: int) -> bool:
    if m < 2:
        return False
    f = 2
    while f * f <= m:
        if m % f == 0:
            return False
        f += 1
    return True


class Maglev(Algorithm):
    """Maglev's lookup table (see the module docstring)."""

    kind: ClassVar[str] = "maglev"
    no_preference: ClassVar[str | None] = (
        "Maglev's table gives each key one owner, not a preference list: use Rendezvous or "
        "HashRing for replicas"
    )

    def _check_params(self, params: dict[str, Any]) -> dict[str, Any]:
        m = params.pop("table_size", DEFAULT_TABLE_SIZE)
        if params:
            raise TypeError(f"unexpected arguments: {', '.join(sorted(params))}")
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)):
            raise TypeError(f"table_size must be an int, not {type(m).__name__}")
        if not 3 <= m <= MAX_TABLE_SIZE or not _is_prime(int(m)):
            raise ValueError(f"table_size must be a prime in [3, 2**26], got {m}")
        return {"table_size": int(m)}

    def _build(self, weights: dict[str, float]) -> Built:
        m = self._params["table_size"]
        nodes = sort_nodes(weights)
        if len(nodes) > m:
            raise ValueError(f"{len(nodes)} nodes do not fit a table of {m} entries")
        names = [utf8(n) for n in nodes]
        h0 = np.array([_core.hash_key(b, _core.MURMUR3, 0) for b in names], dtype=np.uint64)
        h1 = np.array([_core.hash_key(b, _core.MURMUR3, 1) for b in names], dtype=np.uint64)
        offset = (h0 % m).astype(np.uint32)
        skip = (h1 % (m - 1) + 1).astype(np.uint32)
        w = np.array([weights[n] for n in nodes], dtype=np.float64)
        table = _core.maglev_build(offset, skip, w / w.max(), m)
        return Built(nodes, {n: weights[n] for n in nodes}, table)

    def _route(self, state: Built, batch: KeyBatch, out: np.ndarray | None) -> np.ndarray:
        if batch.kind == U64:  # hashed and looked up a block at a time
            return _core.maglev_u64(batch.data, state.extra, out)
        return _core.maglev_block(
            hash_classified(batch, _core.MURMUR3, 0, nulls_ok=True), state.extra, out
        )

    def _route_one(self, state: Built, key: object) -> int:
        m = self._params["table_size"]
        return int(state.extra[(_core.hash_key(key, _core.MURMUR3, 0) * m) >> 32])

    def _shares(self, state: Built) -> np.ndarray:
        # entry e serves the hashes h with (h * M) >> 32 == e: exact counts
        m = self._params["table_size"]
        starts = (np.arange(m + 1, dtype=object) * (1 << 32) + m - 1) // m
        sizes = np.diff(starts).astype(np.float64)
        return np.bincount(state.extra, weights=sizes, minlength=len(state.nodes)) / 2.0**32
