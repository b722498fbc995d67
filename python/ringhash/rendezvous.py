"""Rendezvous (highest random weight) hashing with weights, under the ring's interface.

Schindelhauer & Schomaker's logarithmic method: for key hash ``k`` (the ring's
murmur3 of the key) node ``i`` draws ``h_i = murmur3_32(le32(k), seed=s_i)``
with ``s_i = murmur3_32(utf8(name_i))``, and scores ``-ln(u_i) / w_i`` with
``u_i = (h_i + 0.5) / 2**32``; the key goes to the least score (ties: the
node first in ``nodes``). Each node then owns exactly its weight's share, and a
membership change moves only the keys it must. With equal weights the score
order is the order of ``h_i`` (greatest first), computed without logarithms.
Work is O(nodes) per key, vectorized across nodes. Every key has a preference
list: the nodes by score.

Examples
--------
>>> from ringhash import Rendezvous
>>> hrw = Rendezvous({"a": 1.0, "b": 2.0, "c": 1.0})
>>> hrw.get("user:42")
'c'
>>> hrw.get_nodes("user:42", 3)
['c', 'b', 'a']
>>> {n: round(s, 2) for n, s in hrw.shares().items()}
{'a': 0.25, 'b': 0.5, 'c': 0.25}
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from . import _core
from ._algorithm import Algorithm, Built
from ._keys import KeyBatch, hash_classified
from ._rule import sort_nodes, utf8

__all__ = ["Rendezvous"]


class Rendezvous(Algorithm):
    """Weighted rendezvous hashing (see the module docstring)."""

    kind: ClassVar[str] = "rendezvous"

    def _build(self, weights: dict[str, float]) -> Built:
        nodes = sort_nodes(weights)
        seeds = np.array([_core.hash_key(utf8(n), _core.MURMUR3, 0) for n in nodes], np.uint32)
        if len(np.unique(seeds)) != len(seeds):
            same = [n for n, s in zip(nodes, seeds.tolist(), strict=True) if (seeds == s).sum() > 1]
            raise ValueError(f"nodes {same} have the same rendezvous seed: rename one")
        w = np.array([weights[n] for n in nodes], dtype=np.float64)
        inv_w = None if (w == w[0]).all() else 1.0 / w
        return Built(nodes, {n: weights[n] for n in nodes}, (seeds, inv_w))

    def _route(self, state: Built, batch: KeyBatch, out: np.ndarray | None) -> np.ndarray:
        seeds, inv_w = state.extra
        return _core.rendezvous_block(
            hash_classified(batch, _core.MURMUR3, 0, nulls_ok=True), seeds, inv_w, out
        )

    def _route_one(self, state: Built, key: object) -> int:
        seeds, inv_w = state.extra
        h = np.array([_core.hash_key(key, _core.MURMUR3, 0)], dtype=np.uint32)
        return int(_core.rendezvous_block(h, seeds, inv_w)[0])

    def _ranked(self, state: Built, hashes: np.ndarray, want: int) -> np.ndarray:
        seeds, inv_w = state.extra
        return _core.rendezvous_rank(np.ascontiguousarray(hashes), seeds, inv_w, want)

    def _shares(self, state: Built) -> np.ndarray:
        w = np.array([state.weights[n] for n in state.nodes], dtype=float)
        share: np.ndarray = w / w.sum()  # the method's exact probabilities
        return share
