"""Jump consistent hash (Lamping & Veach, 2014) under the ring's interface.

Buckets are the nodes in the order they were added; adding appends a bucket,
and only the last one can be removed (the algorithm numbers buckets 0..n-1).
A key's 64-bit input is the int itself (two's complement for negatives), so
``JumpHash`` agrees key for key with the ``jump-consistent-hash`` package and
the paper's code; any other key is the low 64 bits of MurmurHash3 x64_128
(seed 0) of its bytes under the encoding rule (``mmh3.hash64(b,
signed=False)[0]``). Perfect balance, no memory, no weights, no preference list.

Examples
--------
>>> from ringhash import JumpHash
>>> jump = JumpHash(["shard-0", "shard-1", "shard-2"])
>>> jump.get(123456789)
'shard-0'
>>> jump.lookup([1, 2, 3, 4]).tolist()
[0, 0, 2, 1]
>>> round(jump.add("shard-3").fraction, 2)  # a quarter of the keys move to the new bucket
0.25
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from . import _core
from ._algorithm import Algorithm, Built
from ._keys import KeyBatch, key64_classified

__all__ = ["JumpHash"]


class JumpHash(Algorithm):
    """Jump consistent hash: node ``i`` is bucket ``i`` (the order nodes were added)."""

    kind: ClassVar[str] = "jump"
    weighted: ClassVar[bool] = False
    no_preference: ClassVar[str | None] = (
        "jump hash has no preference list of distinct nodes (its buckets are numbered, "
        "not ordered per key): use Rendezvous or HashRing for replicas"
    )

    def _build(self, weights: dict[str, float]) -> Built:
        return Built(tuple(weights), dict(weights), None)

    def _route(self, state: Built, batch: KeyBatch, out: np.ndarray | None) -> np.ndarray:
        keys = np.ascontiguousarray(key64_classified(batch))
        return _core.jump_block(keys, len(state.nodes), out)

    def _route_one(self, state: Built, key: object) -> int:
        return _core.jump_one(_core.key64(key), len(state.nodes))

    def _hashes(self, state: Built, batch: KeyBatch) -> np.ndarray:
        return key64_classified(batch)

    def _shares(self, state: Built) -> np.ndarray:
        return np.full(len(state.nodes), 1.0 / len(state.nodes))  # exact, by construction

    def _check_removable(self, name: str) -> None:
        last = self._state.nodes[-1]
        if name != last:
            raise ValueError(
                f"jump hash can only remove its last bucket ({last!r}), not {name!r}: removing "
                "a middle bucket would renumber the ones after it. Use Rendezvous, Maglev or "
                "HashRing for arbitrary removals, or keep the bucket and point its name elsewhere"
            )
