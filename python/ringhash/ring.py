"""The consistent-hashing ring: immutable snapshots and the mutable ``HashRing``.

The ring (the contract; ``docs`` and the tests pin it bit for bit):

- A node is a non-empty ``str`` with a finite weight > 0. It gets
  ``count = max(1, floor(vnodes * weight + 0.5))`` points; point ``i`` is
  ``H(utf8(name) + b"#" + ascii(decimal(i)))`` where ``H`` is seeded
  MurmurHash3 x86_32 or CRC-32/IEEE.
- Points live in one sorted ``uint32`` array with a parallel owner array,
  ordered by ``(point, utf8(name))``; the order nodes were added in never
  matters.
- A key with hash ``h`` belongs to the first point ``>= h``, wrapping past the
  last point to the first.
- ``nodes`` is sorted by UTF-8 bytes; batch results are indices into it.
"""

from __future__ import annotations

import bisect
import math
import numbers
import threading
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Union

import numpy as np

from . import _core, persist, planning, presets
from ._keys import check_algorithm, check_seed, hash_batch, int_bits
from .errors import EmptyRingError

__all__ = ["MAX_POINTS", "HashRing", "RingSnapshot"]

#: Most points a ring may hold in total (and so any one node). Beyond it the
#: ring, its owners and its index would pass ~200 MB; add() and friends raise
#: ValueError instead.
MAX_POINTS = 1 << 24

NodesArg = Union[Iterable[str], Mapping[str, float]]


def _utf8(name: str) -> bytes:
    return name.encode("utf-8")


def _check_node(node: object) -> str:
    if type(node) is str and node and node.isascii():
        return node  # the common case, cheaply
    if not isinstance(node, str):
        raise TypeError(f"node names must be str, not {type(node).__name__}")
    if not node:
        raise ValueError("node names must be non-empty")
    try:
        node.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"node name {node!r} is not encodable as UTF-8 ({e.reason})") from None
    return str(node)


def _check_weight(weight: object) -> float:
    if type(weight) is float and 0 < weight < math.inf:  # the common case, cheaply
        return weight
    if isinstance(weight, (bool, np.bool_)) or not isinstance(weight, numbers.Real):
        raise TypeError(f"weight must be a real number, not {type(weight).__name__}")
    try:
        w = float(weight)
    except OverflowError:  # an int beyond float range
        w = math.inf
    if not math.isfinite(w) or w <= 0:
        raise ValueError(f"weight must be finite and > 0, got {weight!r}")
    return w


def _check_vnodes(vnodes: object) -> int:
    if isinstance(vnodes, bool) or not isinstance(vnodes, (int, np.integer)):
        raise TypeError(f"vnodes must be an int, not {type(vnodes).__name__}")
    if not 1 <= vnodes <= MAX_POINTS:
        raise ValueError(f"vnodes must lie in [1, {MAX_POINTS}], got {vnodes}")
    return int(vnodes)


def _check_count(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an int, not {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return int(n)


def point_count(vnodes: int, weight: float) -> int:
    """Points of a node: ``max(1, floor(vnodes * weight + 0.5))``."""
    return max(1, math.floor(vnodes * weight + 0.5))


def _parse_nodes(nodes: object) -> dict[str, float]:
    if isinstance(nodes, (str, bytes)):
        raise TypeError(
            "nodes must be an iterable of names or a mapping of name -> weight, "
            f"not a single {type(nodes).__name__}"
        )
    weights: dict[str, float] = {}
    if isinstance(nodes, Mapping):
        items: Iterable[tuple[object, object]] = nodes.items()
    elif isinstance(nodes, Iterable):
        items = ((name, 1.0) for name in nodes)
    else:
        raise TypeError(f"nodes must be an iterable or a mapping, not {type(nodes).__name__}")
    for name, weight in items:
        name = _check_node(name)
        if name in weights:
            raise ValueError(f"duplicate node {name!r}")
        weights[name] = _check_weight(weight)
    return weights


def _snapshot_of(ring: object) -> RingSnapshot:
    if isinstance(ring, HashRing):
        return ring.snapshot()
    if isinstance(ring, RingSnapshot):
        return ring
    raise TypeError(f"expected a HashRing or RingSnapshot, not {type(ring).__name__}")


def _unique_names(nodes: Iterable[str]) -> tuple[str, ...]:
    if isinstance(nodes, (str, bytes)):
        raise TypeError(f"nodes must be an iterable of names, not a single {type(nodes).__name__}")
    names = tuple(_check_node(n) for n in nodes)
    if len(set(names)) != len(names):
        raise ValueError("a node is named twice")
    return names


def _check_total(counts: Iterable[int]) -> None:
    total = sum(counts)
    if total > MAX_POINTS:
        raise ValueError(
            f"the ring would hold {total} points; at most MAX_POINTS = {MAX_POINTS} are allowed "
            "(lower vnodes or the weights)"
        )


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


def _check_hashes(hashes: object) -> np.ndarray:
    """Pre-hashed keys as a native uint32 array; no implicit casts."""
    if isinstance(hashes, np.ndarray):
        if hashes.dtype != np.uint32:
            raise TypeError(
                f"hashes must be a uint32 array, got dtype {hashes.dtype} (hash_keys() returns one)"
            )
        return np.ascontiguousarray(hashes, dtype=np.dtype(np.uint32).newbyteorder("="))
    if not isinstance(hashes, (list, tuple)):
        raise TypeError(f"hashes must be a uint32 array or a list of ints, not {type(hashes).__name__}")
    for h in hashes:
        if isinstance(h, bool) or not isinstance(h, (int, np.integer)):
            raise TypeError(f"hashes must be ints, not {type(h).__name__}")
        if not 0 <= h < 2**32:
            raise ValueError(f"hashes must lie in [0, 2**32), got {h}")
    return np.array(hashes, dtype=np.uint32)


def _out_buffer(out: object, shape: tuple[int, ...], keys: object) -> np.ndarray | None:
    """Check a batch lookup's ``out`` and return it flat (a view), or None."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, not {type(out).__name__}")
    if out.dtype != np.int32:
        raise TypeError(f"out must have dtype int32, not {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"out has shape {out.shape}; the keys give {tuple(shape)}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    if isinstance(keys, np.ndarray) and np.may_share_memory(out, keys):
        raise ValueError("out overlaps the keys")
    return out.reshape(-1)


class RingSnapshot:
    """An immutable, fully built ring.

    Safe to share between any number of threads without locking: nothing in
    it ever changes. ``HashRing`` swaps in a new snapshot on every membership
    change, so a snapshot taken with :meth:`HashRing.snapshot` keeps answering
    for the membership it was taken at.

    Examples
    --------
    >>> snap = HashRing(["a", "b", "c"]).snapshot()
    >>> snap.get("user:42") in snap
    True
    >>> snap.lookup(["x", "y"]).dtype
    dtype('int32')
    """

    __slots__ = ("_nodes", "_weights", "_vnodes", "_hash", "_seed", "_algo", "_table", "_names",
                 "_preset")

    def __init__(self, nodes: tuple[str, ...], weights: dict[str, float], vnodes: int, hash: str,
                 seed: int, padded: tuple[np.ndarray, np.ndarray] | None,
                 index: np.ndarray | None = None, preset: Any = None) -> None:
        # Private: build one with HashRing(...).snapshot(). ``nodes`` are the
        # keys of ``weights`` in UTF-8 order and ``padded`` (points, owners) is
        # built from them by the ring rule (see _core.pad_ring), or None for an
        # empty ring.
        self._weights = MappingProxyType(weights)
        self._nodes = nodes
        self._names: np.ndarray | None = None  # nodes as an object array, made on first use
        self._vnodes = vnodes
        self._hash = hash
        self._seed = seed
        self._preset = preset
        self._algo = check_algorithm(hash) if preset is None else preset.algo
        if padded is None or len(padded[0]) <= _core.PAD:
            self._table: _core.RingTable | _EmptyTable = _EMPTY_TABLE
        else:
            points, owners = (_readonly(a) for a in padded)
            self._table = _core.RingTable(points, owners, self._nodes, self._algo, seed,
                                          preset is not None and preset.strict, index=index)

    # ------------------------------------------------------------ building

    @classmethod
    def _build(cls, weights: dict[str, float], vnodes: int, hash: str, seed: int) -> RingSnapshot:
        algo = check_algorithm(hash)
        names = tuple(sorted(weights, key=_utf8))
        counts = [point_count(vnodes, weights[name]) for name in names]
        _check_total(counts)
        if not names:
            return cls(names, weights, vnodes, hash, seed, None)
        padded = _core.build_ring([_utf8(n) for n in names], np.array(counts, dtype=np.int64),
                                  algo, seed)
        return cls(names, weights, vnodes, hash, seed, padded)

    @classmethod
    def _from_preset(cls, state: Any) -> RingSnapshot:
        nodes, padded = state.build()
        return cls(nodes, state.weights, state.vnodes, state.hash, 0, padded, preset=state)

    def _added(self, name: str, weight: object) -> RingSnapshot:
        if self._preset is not None:
            return self._from_preset(self._preset.added(name, weight))
        return self._with_node(name, _check_weight(weight))

    def _removed(self, name: str) -> RingSnapshot:
        if self._preset is not None:
            return self._from_preset(self._preset.removed(name))
        return self._without_node(name)

    def _reweighted(self, name: str, weight: object) -> RingSnapshot:
        if self._preset is not None:
            return self._from_preset(self._preset.reweighted(name, weight))
        return self._with_weight(name, _check_weight(weight))

    def _rank(self, name: str) -> int:
        return bisect.bisect_left(self._nodes, _utf8(name), key=_utf8)

    def _with_node(self, name: str, weight: float) -> RingSnapshot:
        """A new snapshot with ``name`` added: its points merged in, nothing re-hashed."""
        count = point_count(self._vnodes, weight)
        _check_total([len(self.points), count])
        rank = self._rank(name)
        new = _core.node_points(_utf8(name), count, self._algo, self._seed)
        new.sort()
        padded = _core.merge_node(self.points, self.owners, new, rank)
        nodes = self._nodes[:rank] + (name,) + self._nodes[rank:]
        return RingSnapshot(nodes, {**self._weights, name: weight}, self._vnodes, self._hash,
                            self._seed, padded, self._patched_index(padded[0], new, 1))

    def _patched_index(self, padded_points: np.ndarray, delta: np.ndarray,
                       sign: int) -> np.ndarray | None:
        """The bucket index after a membership change, patched rather than rebuilt
        when its size stays the same (None: let RingTable build it)."""
        table = self._table
        npoints = len(padded_points) - _core.PAD
        if isinstance(table, _EmptyTable) or npoints == 0 or _core.index_bits(npoints) != 32 - table.shift:
            return None
        return _core.patch_index(table.index, table.shift, delta, sign, padded_points)

    def _without_node(self, name: str) -> RingSnapshot:
        rank = self._rank(name)
        gone = _core.node_points(_utf8(name), point_count(self._vnodes, self._weights[name]),
                                 self._algo, self._seed)
        gone.sort()
        padded = _core.drop_node(self.points, self.owners, gone, rank)
        weights = dict(self._weights)
        del weights[name]
        return RingSnapshot(self._nodes[:rank] + self._nodes[rank + 1:], weights, self._vnodes,
                            self._hash, self._seed, padded,
                            self._patched_index(padded[0], gone, -1))

    def _with_weight(self, name: str, weight: float) -> RingSnapshot:
        if point_count(self._vnodes, weight) == point_count(self._vnodes, self._weights[name]):
            return RingSnapshot(self._nodes, {**self._weights, name: weight}, self._vnodes,
                                self._hash, self._seed, self._require().padded,
                                self._require().index)
        return self._without_node(name)._with_node(name, weight)

    # ------------------------------------------------------------ properties

    @property
    def nodes(self) -> tuple[str, ...]:
        """Node names sorted by their UTF-8 bytes; batch results index into this."""
        return self._nodes

    @property
    def weights(self) -> Mapping[str, float]:
        """A read-only mapping of node name to weight (use ``nodes`` for the ring's order)."""
        return self._weights

    @property
    def vnodes(self) -> int:
        return self._vnodes

    @property
    def hash(self) -> str:
        return self._hash

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def points(self) -> np.ndarray:
        """The sorted ring points (read-only uint32)."""
        return self._table.points

    @property
    def owners(self) -> np.ndarray:
        """The owner (index into ``nodes``) of each point (read-only int32)."""
        return self._table.owners

    @property
    def nbytes(self) -> int:
        """Bytes of the built ring: points, owners and the search index."""
        return self._table.nbytes

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node: object) -> bool:
        return node in self._weights

    def __iter__(self) -> Iterator[str]:
        return iter(self._nodes)

    # ------------------------------------------------------------ planning

    def diff(self, other: RingSnapshot | HashRing) -> planning.RingChange:
        """What changes owner going from this ring to ``other`` (see :class:`RingChange`)."""
        return planning.RingChange(self, _snapshot_of(other))

    def shares(self) -> dict[str, float]:
        """The exact fraction of the hash space each node owns (arc lengths, not point counts)."""
        return planning.shares(self)

    def balance(self) -> planning.Balance:
        """Peak/mean, min/mean and coefficient of variation of share over weight share."""
        return planning.balance(self)

    def load(self, keys: object) -> dict[str, int]:
        """Keys per node for a concrete batch."""
        return planning.load(self, keys)

    def assign_bounded(self, keys: object, load_factor: float = 1.25) -> np.ndarray:
        """Consistent hashing with bounded loads: int32 node indices, the batch's shape.

        Each key, in input order, goes to the first node clockwise whose count
        is below ``ceil(load_factor * len(keys) * weight_share)``.
        """
        return planning.assign_bounded(self, keys, load_factor)

    # ------------------------------------------------------------ persistence

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description (nodes, weights, vnodes, hash, seed, preset, format
        version) from which :meth:`HashRing.from_dict` rebuilds the identical ring."""
        return persist.describe(self)

    def to_bytes(self) -> bytes:
        """The built ring (points and owners) in a compact, versioned, checksummed
        binary form; :meth:`from_bytes` loads it without hashing."""
        return persist.to_bytes(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> RingSnapshot:
        """Load :meth:`to_bytes` output; ValueError for truncated, corrupted or foreign data."""
        return persist.from_bytes(data)

    def __reduce__(self) -> tuple[Any, ...]:
        return (persist.from_bytes, (self.to_bytes(),))

    @property
    def preset(self) -> str | None:
        """The implementation this ring reproduces ("ketama", "groupcache", "stathat"), or None."""
        return None if self._preset is None else self._preset.name

    def _config(self) -> tuple[Any, ...]:
        return (self._hash, self._seed, self._vnodes, self._weights, self._preset)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RingSnapshot):
            return NotImplemented
        return self._config() == other._config()

    def __hash__(self) -> int:
        return hash((self._hash, self._seed, self._vnodes, frozenset(self._weights.items()),
                     self._preset))

    def __repr__(self) -> str:
        return _describe(type(self).__name__, self)

    # ------------------------------------------------------------ lookups

    def _require(self) -> _core.RingTable:
        table = self._table
        if isinstance(table, _EmptyTable):
            raise EmptyRingError("the ring has no nodes")
        return table

    def get(self, key: object) -> str:
        """The node that owns ``key``.

        Examples
        --------
        >>> HashRing(["a", "b", "c"]).get("user:42")
        'c'
        """
        return self._table.get(key)

    def get_nodes(self, key: object, n: int) -> list[str]:
        """The first ``n`` distinct nodes clockwise from ``key`` (its preference list).

        At most ``len(ring)`` nodes are returned; the first is ``get(key)``.
        """
        table = self._require()
        want = min(_check_count(n), len(self._nodes))
        h = np.array([_core.hash_key(key, self._algo, self._seed)], dtype=np.uint32)
        return [self._nodes[i] for i in table.replicas(h, want)[0] if i >= 0]

    def hash_keys(self, keys: object) -> np.ndarray:
        """The ring hash of each key in a batch (uint32, the batch's shape)."""
        return hash_batch(keys, self._algo, self._seed)

    def lookup(self, keys: object, *, out: np.ndarray | None = None) -> np.ndarray:
        """Owner of each key in a batch, as int32 indices into ``nodes`` (the batch's shape).

        ``out``: an int32, C-contiguous, writeable array of that shape to write the
        owners into (and return), so a hot loop can reuse one buffer. It must not
        overlap ``keys``; if a key is rejected, ``out`` may be partly written.
        """
        table = self._require()
        if isinstance(keys, np.ndarray) and keys.dtype.kind in "iu":
            flat_out = _out_buffer(out, keys.shape, keys)
            if keys.dtype.itemsize < 8:  # widened in blocks by the kernel, not copied here
                flat = np.ascontiguousarray(keys, dtype=keys.dtype.newbyteorder("=")).reshape(-1)
                owners: np.ndarray = table.lookup_small_ints(flat, flat_out)
            else:
                owners = table.lookup_u64(int_bits(keys), flat_out)
            return owners.reshape(keys.shape) if out is None else out
        if isinstance(keys, (list, tuple)):
            flat_out = _out_buffer(out, (len(keys),), None)
            owners = table.lookup_objects(keys, flat_out)
            return owners if out is None else out
        if isinstance(keys, np.ndarray) and keys.dtype.kind == "S" and keys.dtype.itemsize:
            flat_out = _out_buffer(out, keys.shape, keys)
            flat = np.ascontiguousarray(keys).reshape(-1)
            owners = table.lookup_fixed_bytes(flat.view(np.uint8), flat.dtype.itemsize, flat_out)
            return owners.reshape(keys.shape) if out is None else out
        hashes = hash_batch(keys, self._algo, self._seed)
        flat_out = _out_buffer(out, hashes.shape, keys)
        owners = table.search(hashes.reshape(-1), flat_out)
        return owners.reshape(hashes.shape) if out is None else out

    def lookup_hashes(self, hashes: object) -> np.ndarray:
        """Owner of each pre-computed key hash (uint32 array or list of ints)."""
        table = self._require()
        arr = _check_hashes(hashes)
        return table.search(arr.reshape(-1)).reshape(arr.shape)

    def get_many(self, keys: object) -> list[str]:
        """Owner names of a batch of keys, flattened in C order."""
        names = self._names
        if names is None:
            names = self._names = np.array(self._nodes, dtype=object)
        found: list[str] = names[self.lookup(keys).reshape(-1)].tolist()
        return found

    def lookup_nodes(self, keys: object, n: int) -> np.ndarray:
        """The first ``n`` distinct owners of each key (int32, shape ``batch + (min(n, len),)``).

        For the stathat preset, a node that lost every point to collisions owns
        no key, and rows that cannot be filled end in -1.
        """
        table = self._require()
        want = min(_check_count(n), len(self._nodes))
        hashes = hash_batch(keys, self._algo, self._seed)
        return table.replicas(hashes.reshape(-1), want).reshape(hashes.shape + (want,))


class _EmptyTable:
    """Stands in for the RingTable of a ring with no nodes."""

    points = _readonly(np.empty(0, dtype=np.uint32))
    owners = _readonly(np.empty(0, dtype=np.int32))
    nbytes = 0

    def get(self, key: object) -> str:
        raise EmptyRingError("the ring has no nodes")


_EMPTY_TABLE = _EmptyTable()


def _describe(kind: str, snap: RingSnapshot) -> str:
    names = list(snap.nodes[:5]) + (["..."] if len(snap) > 5 else [])
    shown = ", ".join(n if n == "..." else repr(n) for n in names)
    seed = f", seed={snap.seed}" if snap.seed else ""
    return (f"{kind}([{shown}], nodes={len(snap)}, points={len(snap.points)}, "
            f"vnodes={snap.vnodes}, hash={snap.hash!r}{seed})")


class HashRing:
    """A consistent-hashing ring of named, weighted nodes.

    Parameters
    ----------
    nodes : iterable of str or mapping of str to float
        Node names (weight 1.0 each) or a mapping of name to weight.
    vnodes : int
        Points per unit of weight (a node gets ``max(1, floor(vnodes * weight + 0.5))``).
    hash : {"murmur3", "crc32"}
        The hash for points and keys. murmur3 (the default) spreads similar
        node names evenly; crc32 does not, and exists for compatibility.
    seed : int
        MurmurHash3 seed in [0, 2**32); crc32 takes none (must be 0).

    Notes
    -----
    Thread safety: every method may be called from any number of threads.
    Lookups read the current immutable snapshot without locking, so they never
    see a half-built ring; membership changes are serialized by a lock and
    swap in a new snapshot atomically.

    Examples
    --------
    >>> ring = HashRing(["cache-a", "cache-b", "cache-c"])
    >>> ring.get("user:42")
    'cache-c'
    >>> ring.get_nodes("user:42", 2)
    ['cache-c', 'cache-b']
    """

    __slots__ = ("_snap", "_lock", "__weakref__")

    def __init__(self, nodes: NodesArg = (), *, vnodes: int = 160, hash: str = "murmur3",
                 seed: int = 0) -> None:
        vnodes = _check_vnodes(vnodes)
        check_algorithm(hash)
        seed = check_seed(seed, hash)
        self._lock = threading.Lock()
        self._snap = RingSnapshot._build(_parse_nodes(nodes), vnodes, hash, seed)

    # ------------------------------------------------------------ membership

    @classmethod
    def _of(cls, snap: RingSnapshot) -> HashRing:
        ring = cls.__new__(cls)
        ring._lock = threading.Lock()
        ring._snap = snap
        return ring

    # ------------------------------------------------------------ presets

    @classmethod
    def ketama(cls, servers: Mapping[str, int] | Iterable[tuple[str, int]]) -> HashRing:
        """A ring identical to libketama's continuum for ``servers`` ("host:port" -> int weight).

        The order of ``servers`` is the order of libketama's server file. See
        :mod:`ringhash.presets` for the exact rules.
        """
        items = list(servers.items()) if isinstance(servers, Mapping) else list(servers)
        seen: set[str] = set()
        checked = []
        for addr, weight in items:
            addr = _check_node(addr)
            if addr in seen:
                raise ValueError(f"duplicate server {addr!r}")
            seen.add(addr)
            checked.append((addr, presets.check_int_weight(weight)))
        return cls._of(RingSnapshot._from_preset(presets.KetamaState(tuple(checked))))

    @classmethod
    def groupcache(cls, nodes: Iterable[str] = (), replicas: int = 50) -> HashRing:
        """A ring identical to golang/groupcache's ``consistenthash.New(replicas, nil)``
        after ``Add(nodes...)`` (crc32, no separator in point strings)."""
        return cls._of(RingSnapshot._from_preset(
            presets.GroupcacheState(presets.check_replicas(replicas), _unique_names(nodes))))

    @classmethod
    def stathat(cls, nodes: Iterable[str] = (), replicas: int = 20) -> HashRing:
        """A ring identical to stathat.com/c/consistent with ``NumberOfReplicas = replicas``
        after ``Add(n)`` for each node in order (first point strictly greater than the key)."""
        state = presets.StathatState(presets.check_replicas(replicas), (), (), ())
        for name in _unique_names(nodes):
            state = state.added(name, 1.0)
        return cls._of(RingSnapshot._from_preset(state))

    @property
    def preset(self) -> str | None:
        """See :attr:`RingSnapshot.preset`."""
        return self._snap.preset

    # ------------------------------------------------------------ persistence

    def to_dict(self) -> dict[str, Any]:
        """See :meth:`RingSnapshot.to_dict`."""
        return self._snap.to_dict()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HashRing:
        """Rebuild a ring from :meth:`to_dict`; ValueError if the description is malformed."""
        return cls._of(persist.snapshot_from_dict(dict(d) if isinstance(d, Mapping) else d))

    def to_bytes(self) -> bytes:
        """See :meth:`RingSnapshot.to_bytes`."""
        return self._snap.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> HashRing:
        """A ring from :meth:`to_bytes` output (of a ring or a snapshot), loaded without hashing."""
        return cls._of(persist.from_bytes(data))

    def __reduce__(self) -> tuple[Any, ...]:
        return (HashRing.from_bytes, (self.to_bytes(),))

    # ------------------------------------------------------------ membership

    def add(self, node: str, weight: float = 1.0) -> planning.RingChange:
        """Add a node; ValueError if it is already in the ring. Returns what moves."""
        name = _check_node(node)
        with self._lock:
            snap = self._snap
            if name in snap:
                raise ValueError(f"node {name!r} is already in the ring")
            self._snap = new = snap._added(name, weight)
        return planning.RingChange(snap, new)

    def remove(self, node: str) -> planning.RingChange:
        """Remove a node; KeyError if it is not in the ring. Returns what moves."""
        with self._lock:
            snap = self._snap
            if node not in snap:
                raise KeyError(node)
            self._snap = new = snap._removed(node)
        return planning.RingChange(snap, new)

    def set_weight(self, node: str, weight: float) -> planning.RingChange:
        """Change a node's weight; KeyError if it is not in the ring. Returns what moves."""
        with self._lock:
            snap = self._snap
            if node not in snap:
                raise KeyError(node)
            self._snap = new = snap._reweighted(node, weight)
        return planning.RingChange(snap, new)

    # ------------------------------------------------------------ planning

    def diff(self, other: RingSnapshot | HashRing) -> planning.RingChange:
        """See :meth:`RingSnapshot.diff`."""
        return self._snap.diff(other)

    def shares(self) -> dict[str, float]:
        """See :meth:`RingSnapshot.shares`."""
        return self._snap.shares()

    def balance(self) -> planning.Balance:
        """See :meth:`RingSnapshot.balance`."""
        return self._snap.balance()

    def load(self, keys: object) -> dict[str, int]:
        """See :meth:`RingSnapshot.load`."""
        return self._snap.load(keys)

    def assign_bounded(self, keys: object, load_factor: float = 1.25) -> np.ndarray:
        """See :meth:`RingSnapshot.assign_bounded`."""
        return self._snap.assign_bounded(keys, load_factor)

    def snapshot(self) -> RingSnapshot:
        """The current immutable ring state (cheap: no copy is made)."""
        return self._snap

    # ------------------------------------------------------------ state

    @property
    def nodes(self) -> tuple[str, ...]:
        return self._snap.nodes

    @property
    def weights(self) -> Mapping[str, float]:
        return self._snap.weights

    @property
    def vnodes(self) -> int:
        return self._snap.vnodes

    @property
    def hash(self) -> str:
        return self._snap.hash

    @property
    def seed(self) -> int:
        return self._snap.seed

    @property
    def points(self) -> np.ndarray:
        return self._snap.points

    @property
    def owners(self) -> np.ndarray:
        return self._snap.owners

    def __len__(self) -> int:
        return len(self._snap)

    def __contains__(self, node: object) -> bool:
        return node in self._snap

    def __iter__(self) -> Iterator[str]:
        return iter(self._snap)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HashRing):
            return NotImplemented
        return self._snap == other._snap

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return _describe(type(self).__name__, self._snap)

    # ------------------------------------------------------------ lookups
    # Each reads self._snap once, so one call never mixes two memberships.

    def get(self, key: object) -> str:
        """See :meth:`RingSnapshot.get`."""
        return self._snap._table.get(key)

    def get_nodes(self, key: object, n: int) -> list[str]:
        """See :meth:`RingSnapshot.get_nodes`."""
        return self._snap.get_nodes(key, n)

    def hash_keys(self, keys: object) -> np.ndarray:
        """See :meth:`RingSnapshot.hash_keys`."""
        return self._snap.hash_keys(keys)

    def lookup(self, keys: object, *, out: np.ndarray | None = None) -> np.ndarray:
        """See :meth:`RingSnapshot.lookup`."""
        return self._snap.lookup(keys, out=out)

    def lookup_hashes(self, hashes: object) -> np.ndarray:
        """See :meth:`RingSnapshot.lookup_hashes`."""
        return self._snap.lookup_hashes(hashes)

    def get_many(self, keys: object) -> list[str]:
        """See :meth:`RingSnapshot.get_many`."""
        return self._snap.get_many(keys)

    def lookup_nodes(self, keys: object, n: int) -> np.ndarray:
        """See :meth:`RingSnapshot.lookup_nodes`."""
        return self._snap.lookup_nodes(keys, n)
