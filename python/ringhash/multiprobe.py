"""Multi-probe consistent hashing (Appleton & O'Reilly, 2015) under the ring's interface.

Each node has one point on the ring (the default ring's point 0,
``murmur3_32(utf8(name) + b"#0")``). A key with hash ``h`` (the ring's murmur3)
is probed ``probes`` times (21 by default), probe ``j`` at ``h + j * step``
(mod 2**32) with ``step = fmix32(h ^ 0x9E3779B9) | 1``; each probe's distance
is to the first point at or after it (wrapping), and the key goes to the node
of the nearest point over all probes (ties: the earlier probe). One point per
node, k ring searches per key, peak-to-mean load about 1 + 1/k. No weights, no
preference list.

Examples
--------
>>> from ringhash import MultiProbe
>>> mp = MultiProbe(["a", "b", "c", "d"])
>>> mp.get("user:42")
'b'
>>> mp.lookup(["user:1", "user:2", "user:3"]).tolist()
[0, 0, 1]
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from . import _core
from ._algorithm import Algorithm, Built
from ._keys import KeyBatch, hash_classified
from ._rule import sort_nodes, utf8

__all__ = ["MultiProbe"]

DEFAULT_PROBES = 21


class MultiProbe(Algorithm):
    """Multi-probe consistent hashing (see the module docstring)."""

    kind: ClassVar[str] = "multiprobe"
    weighted: ClassVar[bool] = False
    no_preference: ClassVar[str | None] = (
        "multi-probe consistent hashing picks one nearest point per key, not a preference "
        "list: use Rendezvous or HashRing for replicas"
    )

    def _check_params(self, params: dict[str, Any]) -> dict[str, Any]:
        k = params.pop("probes", DEFAULT_PROBES)
        if params:
            raise TypeError(f"unexpected arguments: {', '.join(sorted(params))}")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"probes must be an int, not {type(k).__name__}")
        if not 1 <= k <= 1024:
            raise ValueError(f"probes must lie in [1, 1024], got {k}")
        return {"probes": int(k)}

    def _build(self, weights: dict[str, float]) -> Built:
        nodes = sort_nodes(weights)
        table = _core.RingTable.from_nodes(
            [utf8(n) for n in nodes],
            np.ones(len(nodes), dtype=np.int64),
            nodes,
            _core.MURMUR3,
            0,
        )
        return Built(nodes, {n: weights[n] for n in nodes}, table)

    def _route(self, state: Built, batch: KeyBatch, out: np.ndarray | None) -> np.ndarray:
        hashes = hash_classified(batch, _core.MURMUR3, 0, nulls_ok=True)
        return _core.multiprobe_block(state.extra, hashes, self._params["probes"], out)

    def _shares(self, state: Built) -> np.ndarray:
        # no closed form: measured on 2**22 evenly spaced key hashes (deterministic)
        hashes = (np.arange(1 << 22, dtype=np.uint64) << np.uint64(10)).astype(np.uint32)
        owners = _core.multiprobe_block(state.extra, hashes, self._params["probes"])
        return np.bincount(owners, minlength=len(state.nodes)) / float(1 << 22)

    def _route_one(self, state: Built, key: object) -> int:
        h = _core.hash_key(key, _core.MURMUR3, 0)
        return _core.multiprobe_one(state.extra, h, self._params["probes"])
