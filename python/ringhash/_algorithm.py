"""What the other algorithms share: the ring's read API, membership and persistence.

``JumpHash``, ``Rendezvous``, ``Maglev`` and ``MultiProbe`` (one module each)
subclass :class:`Algorithm` and supply only how their state is built from
(nodes, weights, parameters) and how a classified batch is routed; batches go
through the one batch-input path (``ringhash._keys``), so every batch form the
ring takes (lists, numpy arrays, Arrow / pandas / polars columns, StringDType)
works here too, with the same key encoding.

Thread safety, as for ``HashRing``: the built state is immutable and replaced
whole under a lock on each change, so reads never lock and always see one
consistent state; ``snapshot()`` gives a frozen instance.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from . import _core, planning
from ._keys import (
    KeyBatch,
    check_nulls,
    classify,
    hash_classified,
    null_mask,
    out_buffer,
)
from ._rule import check_count, check_node, check_weight, parse_nodes
from .errors import EmptyRingError

__all__ = ["Algorithm", "AlgorithmChange"]

FORMAT = 1
#: Keys the change fractions and shares are measured on: 2**18 fixed 64-bit keys.
SAMPLE = (np.arange(1 << 18, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64(
    0x5851F42D4C957F2D
)


class Built:
    """An algorithm's built state: nodes (in index order), weights, and its arrays."""

    __slots__ = ("extra", "nodes", "weights")

    def __init__(self, nodes: tuple[str, ...], weights: dict[str, float], extra: Any) -> None:
        self.nodes, self.weights, self.extra = nodes, weights, extra


class AlgorithmChange:
    """What a membership change moves: ``fraction`` of keys (measured on a fixed
    sample of 2**18 keys) and ``moved(keys)`` for a concrete batch."""

    def __init__(self, before: Algorithm, after: Algorithm) -> None:
        self.before, self.after = before, after
        sample = before.sample_keys()
        self.fraction = float(self.moved(sample).mean()) if len(before) and len(after) else 1.0

    def moved(self, keys: object) -> np.ndarray:
        """Whether each key of a batch changes owner (bool, the batch's shape)."""
        if not len(self.before) or not len(self.after):
            batch = classify(keys)
            return np.ones(batch.shape, dtype=bool)
        a = np.array(self.before.nodes, dtype=object)[self.before.lookup(keys)]
        b = np.array(self.after.nodes, dtype=object)[self.after.lookup(keys)]
        moved: np.ndarray = a != b
        return moved

    def __repr__(self) -> str:
        return f"AlgorithmChange(fraction={self.fraction:.4f})"


class Algorithm:
    """The shared interface (see the module docstring). Subclasses set ``kind`` and
    ``weighted`` and implement ``_build``, ``_route`` and ``_route_one``; those
    with preference lists implement ``_ranked``."""

    kind: ClassVar[str]
    #: Whether nodes may have weights other than 1.
    weighted: ClassVar[bool] = True
    #: What to use instead for an operation the algorithm cannot do (None: it can).
    no_preference: ClassVar[str | None] = None

    _state: Built
    _params: dict[str, Any]

    def __init__(self, nodes: object = (), **params: Any) -> None:
        self._params = self._check_params(params)
        weights = parse_nodes(nodes)
        self._check_weights(weights)
        self._state = self._make(weights)
        self._lock = threading.Lock()
        self._frozen = False

    # ------------------------------------------------------------ subclass hooks

    def sample_keys(self) -> Any:
        """The fixed keys change fractions are measured on (2**18 64-bit keys)."""
        return SAMPLE

    def _check_params(self, params: dict[str, Any]) -> dict[str, Any]:
        if params:
            raise TypeError(f"unexpected arguments: {', '.join(sorted(params))}")
        return {}

    def _build(self, weights: dict[str, float]) -> Built:
        raise NotImplementedError

    def _route(self, state: Built, batch: KeyBatch, out: np.ndarray | None) -> np.ndarray:
        """Owners (flat int32) of a classified batch without nulls in the way."""
        raise NotImplementedError

    def _route_one(self, state: Built, key: object) -> int:
        raise NotImplementedError

    def _ranked(self, state: Built, hashes: np.ndarray, want: int) -> np.ndarray:
        raise NotImplementedError

    def _hashes(self, state: Built, batch: KeyBatch) -> np.ndarray:
        """The key hashes the algorithm routes by (flat): the ring's murmur3 by default."""
        return hash_classified(batch, _core.MURMUR3, 0)

    def _shares(self, state: Built) -> np.ndarray:
        """Each node's fraction of keys (default: measured on the sample)."""
        owners = self._route(state, classify(SAMPLE), None)
        return np.bincount(owners, minlength=len(state.nodes)) / len(SAMPLE)

    # ------------------------------------------------------------ building

    def _check_weights(self, weights: Mapping[str, float]) -> None:
        if not self.weighted and any(w != 1.0 for w in weights.values()):
            raise ValueError(
                f"{type(self).__name__} gives every node the same share: weights are not "
                "supported (use Rendezvous or Maglev for weighted nodes)"
            )

    def _make(self, weights: dict[str, float]) -> Built:
        if not weights:
            return Built((), {}, None)
        return self._build(weights)

    # ------------------------------------------------------------ reads

    def _require(self) -> Built:
        state = self._state
        if not state.nodes:
            raise EmptyRingError(f"the {type(self).__name__} has no nodes")
        return state

    @property
    def nodes(self) -> tuple[str, ...]:
        """Node names; batch results are indices into this tuple."""
        return self._state.nodes

    @property
    def weights(self) -> Mapping[str, float]:
        """``{node: weight}``, read-only (1.0 each where the algorithm has no weights)."""
        return MappingProxyType(self._state.weights)

    def __len__(self) -> int:
        return len(self._state.nodes)

    def __contains__(self, node: object) -> bool:
        return node in self._state.weights

    def __iter__(self) -> Iterator[str]:
        return iter(self._state.nodes)

    def get(self, key: object) -> str:
        """The node that owns ``key``."""
        state = self._require()
        return state.nodes[self._route_one(state, key)]

    def get_nodes(self, key: object, n: int) -> list[str]:
        """The first ``n`` nodes of ``key``'s preference list (where the algorithm has one)."""
        state = self._require()
        rows = self.lookup_nodes([key], n)
        return [state.nodes[i] for i in rows[0].tolist()]

    def hash_keys(self, keys: object) -> np.ndarray:
        """The hash each key is routed by (the batch's shape): uint32 murmur3, or for
        ``JumpHash`` its uint64 key."""
        batch = classify(keys)
        null_mask(batch, None)
        return self._hashes(self._state, batch).reshape(batch.shape)

    def lookup(
        self, keys: object, *, out: np.ndarray | None = None, nulls: int | None = None
    ) -> np.ndarray:
        """Owner of each key in a batch, as int32 indices into ``nodes`` (the batch's
        shape); ``out`` and ``nulls`` as for ``HashRing.lookup``."""
        state = self._require()
        batch = classify(keys)
        fill = check_nulls(nulls)
        flat_out = out_buffer(out, batch.shape, keys)
        mask = null_mask(batch, fill)
        owners = self._route(state, batch, flat_out)
        if mask is not None:
            owners[mask] = fill
        return owners.reshape(batch.shape) if out is None else out

    def get_many(self, keys: object) -> list[str]:
        """Owner names of a batch of keys, flattened in C order."""
        names = np.array(self._require().nodes, dtype=object)
        found: list[str] = names[self.lookup(keys).reshape(-1)].tolist()
        return found

    def lookup_nodes(self, keys: object, n: int) -> np.ndarray:
        """The first ``n`` nodes of each key's preference list (int32, shape
        ``batch + (min(n, len),)``), where the algorithm defines one."""
        state = self._require()
        want = min(check_count(n), len(state.nodes))
        if want == 1:
            owners = self.lookup(keys)
            return owners.reshape(owners.shape + (1,))
        if self.no_preference is not None:
            raise NotImplementedError(self.no_preference)
        batch = classify(keys)
        null_mask(batch, None)
        ranked = self._ranked(state, self._hashes(state, batch), want)
        return ranked.reshape(batch.shape + (want,))

    def load(self, keys: object) -> dict[str, int]:
        """Keys per node for a concrete batch."""
        counts = np.bincount(self.lookup(keys).reshape(-1), minlength=len(self))
        return dict(zip(self.nodes, counts.tolist(), strict=True))

    def shares(self) -> dict[str, float]:
        """Each node's fraction of the keys (exact where the algorithm gives it in
        closed form, else measured on a fixed sample of 2**18 keys)."""
        state = self._require()
        return dict(zip(state.nodes, self._shares(state).tolist(), strict=True))

    def balance(self) -> planning.Balance:
        """Peak/mean, min/mean and coefficient of variation of share over weight share."""
        state = self._require()
        w = np.array([state.weights[n] for n in state.nodes], dtype=float)
        return planning.balance_of(self._shares(state), w, len(state.nodes))

    @property
    def nbytes(self) -> int:
        """Bytes of the built lookup structures."""
        extra = self._state.extra
        arrays = extra if isinstance(extra, tuple) else (extra,)
        return sum(a.nbytes for a in arrays if hasattr(a, "nbytes"))

    # ------------------------------------------------------------ membership

    def _check_mutable(self) -> None:
        if self._frozen:
            raise TypeError(f"a {type(self).__name__} snapshot is read-only")

    def _change(self, weights: dict[str, float]) -> AlgorithmChange:
        self._check_weights(weights)
        before = self.snapshot()
        self._state = self._make(weights)
        return AlgorithmChange(before, self.snapshot())

    def add(self, node: str, weight: float = 1.0) -> AlgorithmChange:
        """Add a node; returns what moved."""
        self._check_mutable()
        name, w = check_node(node), check_weight(weight)
        with self._lock:
            if name in self._state.weights:
                raise ValueError(f"node {name!r} is already present")
            return self._change({**self._state.weights, name: w})

    def remove(self, node: str) -> AlgorithmChange:
        """Remove a node; returns what moved."""
        self._check_mutable()
        name = check_node(node)
        with self._lock:
            if name not in self._state.weights:
                raise KeyError(f"node {name!r} is not present")
            self._check_removable(name)
            return self._change({n: w for n, w in self._state.weights.items() if n != name})

    def _check_removable(self, name: str) -> None:
        return None

    def set_weight(self, node: str, weight: float) -> AlgorithmChange:
        """Change a node's weight; returns what moved."""
        self._check_mutable()
        name, w = check_node(node), check_weight(weight)
        with self._lock:
            if name not in self._state.weights:
                raise KeyError(f"node {name!r} is not present")
            return self._change({**self._state.weights, name: w})

    def snapshot(self) -> Algorithm:
        """A read-only instance of the current state (shares its arrays)."""
        new = object.__new__(type(self))
        new._params, new._state = self._params, self._state
        new._lock, new._frozen = threading.Lock(), True
        return new

    def diff(self, other: Algorithm) -> AlgorithmChange:
        """What changes owner going from this one to ``other`` (same algorithm)."""
        if type(other) is not type(self):
            raise TypeError(f"expected a {type(self).__name__}, not {type(other).__name__}")
        return AlgorithmChange(self.snapshot(), other.snapshot())

    # ------------------------------------------------------------ persistence

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description from which ``from_dict`` rebuilds the same instance."""
        return {
            "format": FORMAT,
            "algorithm": self.kind,
            "nodes": dict(self._state.weights),
            "params": dict(self._params),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Algorithm:
        """The algorithm ``to_dict`` described (TypeError or ValueError for anything else)."""
        if not isinstance(d, Mapping):
            raise TypeError(f"expected a mapping, not {type(d).__name__}")
        if d.get("format") != FORMAT:
            raise ValueError(f"unsupported format {d.get('format')!r} (expected {FORMAT})")
        if d.get("algorithm") != cls.kind:
            raise ValueError(f"a {d.get('algorithm')!r} description, not {cls.kind!r}")
        params = d.get("params", {})
        if not isinstance(params, Mapping):
            raise TypeError("params must be a mapping")
        return cls(d.get("nodes", {}), **params)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self).from_dict, (self.to_dict(),))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Algorithm)
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        shown = ", ".join(repr(n) for n in self.nodes[:5]) + (", ..." if len(self) > 5 else "")
        params = "".join(f", {k}={v!r}" for k, v in self._params.items())
        return f"{type(self).__name__}([{shown}], nodes={len(self)}{params})"
