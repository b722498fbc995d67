"""The consistent-hashing ring: immutable snapshots and the mutable ``HashRing``.

The ring (the contract; ``docs/SPEC.md`` and the tests pin it bit for bit):

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

The rule's checks live in ``ringhash._rule``, the built ring (layout, index,
search) in the compiled ``RingTable``, the presets' rules in
``ringhash.presets``, the file format in ``ringhash.persist``.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from . import _core, persist, planning, presets
from ._constructors import PresetConstructors
from ._keys import (
    COLUMN,
    check_algorithm,
    check_hashes,
    check_nulls,
    check_seed,
    classify,
    hash_batch,
    hash_classified,
    lookup_classified,
    null_mask,
    out_buffer,
)
from ._rule import (
    MAX_POINTS,
    check_count,
    check_node,
    check_total,
    check_vnodes,
    check_weight,
    parse_nodes,
    point_count,
    sort_nodes,
    utf8,
)
from .errors import EmptyRingError

__all__ = ["MAX_POINTS", "HashRing", "Partition", "RingSnapshot"]

NodesArg = Iterable[str] | Mapping[str, float]

_REFUSE: Any = object()  # get_many's default: null keys are an error


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


class Partition(NamedTuple):
    """A batch's rows grouped by owner: ``order[offsets[i]:offsets[i + 1]]`` are the
    rows node ``nodes[i]`` owns, in their original order (int64 arrays; ``offsets``
    has ``len(nodes) + 1`` entries)."""

    order: np.ndarray
    offsets: np.ndarray


class _EmptyTable:
    """Stands in for the RingTable of a ring with no nodes."""

    points = _readonly(np.empty(0, dtype=np.uint32))
    owners = _readonly(np.empty(0, dtype=np.int32))
    nbytes = 0

    def get(self, key: object) -> str:
        raise EmptyRingError("the ring has no nodes")

    def get_nodes(self, key: object, n: int) -> list[str]:
        raise EmptyRingError("the ring has no nodes")


_EMPTY_TABLE = _EmptyTable()


class _RingReads:
    """The read API of a ring, written once for ``RingSnapshot`` and ``HashRing``.

    Each method reads ``self._snap`` once (a ``HashRing``'s current snapshot; a
    snapshot's is itself), so one call never mixes two memberships.
    """

    __slots__ = ()
    if TYPE_CHECKING:
        _snap: RingSnapshot

    # ------------------------------------------------------------ state

    @property
    def nodes(self) -> tuple[str, ...]:
        """Node names sorted by their UTF-8 bytes; batch results index into this."""
        return self._snap._nodes

    @property
    def weights(self) -> Mapping[str, float]:
        """A read-only mapping of node name to weight (use ``nodes`` for the ring's order)."""
        return self._snap._weights

    @property
    def vnodes(self) -> int:
        """Points per unit of weight."""
        return self._snap._vnodes

    @property
    def hash(self) -> str:
        """The hash of points and keys ("murmur3", "crc32"; a preset's own, e.g. "md5")."""
        return self._snap._hash

    @property
    def seed(self) -> int:
        """The murmur3 seed (0 for crc32)."""
        return self._snap._seed

    @property
    def points(self) -> np.ndarray:
        """The sorted ring points (read-only uint32)."""
        return self._snap._table.points

    @property
    def owners(self) -> np.ndarray:
        """The owner (index into ``nodes``) of each point (read-only int32)."""
        return self._snap._table.owners

    @property
    def arc_ends(self) -> tuple[np.ndarray, np.ndarray]:
        """(ends, owners): where each arc of the hash space ends and who owns it, as
        a first-point->= ring; the points themselves, but for HAProxy's
        nearest-point rule the midpoints between them."""
        table = self._snap._table
        if getattr(table, "rule", _core.RULE_GE) == _core.RULE_NEAREST:
            return planning.nearest_arc_ends(table.points, table.owners)
        return table.points, table.owners

    @property
    def nbytes(self) -> int:
        """Bytes of the built ring: points, owners and the search index."""
        return self._snap._table.nbytes

    @property
    def preset(self) -> str | None:
        """The implementation this ring reproduces ("ketama", "groupcache", "stathat"), or None."""
        state = self._snap._preset
        return None if state is None else state.name

    def __len__(self) -> int:
        return len(self._snap._nodes)

    def __contains__(self, node: object) -> bool:
        return node in self._snap._weights

    def __iter__(self) -> Iterator[str]:
        return iter(self._snap._nodes)

    def __repr__(self) -> str:
        snap = self._snap
        names = list(snap.nodes[:5]) + (["..."] if len(snap) > 5 else [])
        shown = ", ".join(n if n == "..." else repr(n) for n in names)
        seed = f", seed={snap.seed}" if snap.seed else ""
        return (
            f"{type(self).__name__}([{shown}], nodes={len(snap)}, points={len(snap.points)}, "
            f"vnodes={snap.vnodes}, hash={snap.hash!r}{seed})"
        )

    # ------------------------------------------------------------ lookups

    def get(self, key: object) -> str:
        """The node that owns ``key``.

        Examples
        --------
        >>> HashRing(["a", "b", "c"]).get("user:42")
        'c'
        """
        return self._snap._table.get(key)

    def get_nodes(self, key: object, n: int) -> list[str]:
        """The first ``n`` distinct nodes clockwise from ``key`` (its preference list).

        At most ``len(ring)`` nodes are returned; the first is ``get(key)``. One key
        takes the single-key path (no array is made), about the cost of ``get``.

        Examples
        --------
        >>> HashRing(["a", "b", "c"]).get_nodes("user:42", 2)
        ['c', 'a']
        """
        if type(n) is int and 0 < n <= 4096:  # the common case: no more checks here
            return self._snap._table.get_nodes(key, n)
        snap = self._snap
        snap._require()
        return snap._table.get_nodes(key, min(check_count(n), len(snap._nodes)))

    def hash_keys(self, keys: object) -> np.ndarray:
        """The ring hash of each key in a batch (uint32, the batch's shape)."""
        snap = self._snap
        return hash_batch(keys, snap._algo, snap._seed)

    def lookup(
        self, keys: object, *, out: np.ndarray | None = None, nulls: int | None = None
    ) -> np.ndarray:
        """Owner of each key in a batch, as int32 indices into ``nodes`` (the batch's shape).

        ``keys``: a list, a numpy array, or a column (pyarrow, polars, pandas...,
        read in place). ``out``: an int32, C-contiguous, writeable array of that
        shape to write the owners into (and return), so a hot loop can reuse one
        buffer. It must not overlap ``keys``; if a key is rejected, ``out`` may be
        partly written. ``nulls``: the value written for null keys of a column
        (e.g. -1); by default a null key is a ValueError naming its position,
        raised before anything is written.

        Examples
        --------
        >>> ring = HashRing(["a", "b", "c"])
        >>> ring.lookup(["user:1", "user:2"]).tolist()
        [2, 0]
        """
        snap = self._snap
        table = snap._require()
        batch = classify(keys)
        flat_out = out_buffer(out, batch.shape, keys)
        owners = lookup_classified(table, batch, flat_out, check_nulls(nulls))
        return owners.reshape(batch.shape) if out is None else out

    def lookup_hashes(self, hashes: object) -> np.ndarray:
        """Owner of each pre-computed key hash (uint32 array or list of ints)."""
        table = self._snap._require()
        arr = check_hashes(hashes)
        return table.search(arr.reshape(-1)).reshape(arr.shape)

    def get_many(self, keys: object, *, nulls: object = _REFUSE) -> list[Any]:
        """Owner names of a batch of keys, flattened in C order.

        ``nulls``: what to put in the list for a column's null keys (e.g. None);
        by default a null key is a ValueError.
        """
        snap = self._snap
        names = snap._names
        if names is None:
            names = snap._names = np.array(snap._nodes, dtype=object)
        if nulls is _REFUSE:
            found: list[str] = names[snap.lookup(keys).reshape(-1)].tolist()
            return found
        owners = snap.lookup(keys, nulls=-1).reshape(-1)
        with_null = np.append(names, np.array([nulls], dtype=object))  # index -1: nulls
        return with_null[owners].tolist()  # type: ignore[no-any-return]

    def lookup_nodes(self, keys: object, n: int, *, nulls: int | None = None) -> np.ndarray:
        """The first ``n`` distinct owners of each key (int32, shape ``batch + (min(n, len),)``).

        For the stathat preset, a node that lost every point to collisions owns
        no key, and rows that cannot be filled end in -1. ``nulls``: the value
        filling the rows of a column's null keys; by default they are a ValueError.
        """
        snap = self._snap
        table = snap._require()
        want = min(check_count(n), len(snap._nodes))
        fill = check_nulls(nulls)
        if want == 1:  # the owners themselves: the lookup path
            owners = snap.lookup(keys, nulls=fill)
            return owners.reshape(owners.shape + (1,))
        batch = classify(keys)
        if fill is None or batch.kind != COLUMN:
            hashes = hash_classified(batch, snap._algo, snap._seed)
            return table.replicas(hashes, want).reshape(batch.shape + (want,))
        hashes = _core.hash_column(batch.data, snap._algo, snap._seed)
        rows = table.replicas(hashes, want)
        null = null_mask(batch, fill)
        if null is not None:
            rows[null] = fill
        return rows.reshape(batch.shape + (want,))

    def partition(self, keys: object) -> Partition:
        """The rows of a batch grouped by owner, for splitting a table into shards.

        Returns ``Partition(order, offsets)``: the rows node ``nodes[i]`` owns are
        ``order[offsets[i]:offsets[i + 1]]``, in their original order (a stable
        counting sort in C, O(n), not an argsort). Null keys are a ValueError.

        Examples
        --------
        >>> ring = HashRing(["a", "b", "c"])
        >>> keys = ["k0", "k1", "k2", "k3", "k4", "k5"]
        >>> order, offsets = ring.partition(keys)
        >>> {ring.nodes[i]: [keys[r] for r in order[offsets[i]:offsets[i + 1]]]
        ...  for i in range(len(ring.nodes))}
        {'a': ['k5'], 'b': ['k0', 'k2', 'k4'], 'c': ['k1', 'k3']}
        """
        snap = self._snap
        owners = np.ascontiguousarray(snap.lookup(keys).reshape(-1))
        order, offsets = _core.partition(owners, len(snap._nodes))
        return Partition(order, offsets)

    # ------------------------------------------------------------ planning

    def diff(self, other: RingSnapshot | HashRing) -> planning.RingChange:
        """What changes owner going from this ring to ``other`` (see :class:`RingChange`)."""
        if not isinstance(other, (RingSnapshot, HashRing)):
            raise TypeError(f"expected a HashRing or RingSnapshot, not {type(other).__name__}")
        return planning.RingChange(self._snap, other._snap)

    def shares(self) -> dict[str, float]:
        """The exact fraction of the hash space each node owns (arc lengths, not point counts)."""
        return planning.shares(self._snap)

    def balance(self) -> planning.Balance:
        """Peak/mean, min/mean and coefficient of variation of share over weight share."""
        return planning.balance(self._snap)

    def load(self, keys: object) -> dict[str, int]:
        """Keys per node for a concrete batch."""
        return planning.load(self._snap, keys)

    def assign_bounded(self, keys: object, load_factor: float = 1.25) -> np.ndarray:
        """Consistent hashing with bounded loads: int32 node indices, the batch's shape.

        Each key, in input order, goes to the first node clockwise whose count
        is below ``ceil(load_factor * len(keys) * weight_share)`` (Mirrokni,
        Thorup, Zadimoghaddam). Deterministic.
        """
        snap = self._snap
        table = snap._require()
        hashes = snap.hash_keys(keys)
        flat = np.ascontiguousarray(hashes.reshape(-1))
        caps = planning.bounded_caps(snap, len(flat), load_factor)
        return table.assign_bounded(flat, caps).reshape(hashes.shape)

    # ------------------------------------------------------------ persistence

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description (nodes, weights, vnodes, hash, seed, preset, format
        version) from which :meth:`HashRing.from_dict` rebuilds the identical ring."""
        snap = self._snap
        d = persist.envelope(snap.preset)
        if snap._preset is not None:
            d["state"] = snap._preset.describe()
        else:
            d.update(
                nodes={n: snap._weights[n] for n in snap._nodes},
                vnodes=snap._vnodes,
                hash=snap._hash,
                seed=snap._seed,
            )
        return d

    def to_bytes(self) -> bytes:
        """The built ring (points and owners) in a compact, versioned, checksummed
        binary form; :meth:`HashRing.from_bytes` loads it without hashing."""
        return persist.encode(self.to_dict(), self.points, self.owners)


class RingSnapshot(_RingReads):
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

    __slots__ = (
        "_nodes",
        "_weights",
        "_vnodes",
        "_hash",
        "_seed",
        "_algo",
        "_table",
        "_names",
        "_preset",
    )

    def __init__(
        self,
        weights: dict[str, float],
        vnodes: int,
        hash: str,
        seed: int,
        table: _core.RingTable | None,
        preset: presets.PresetState | None = None,
    ) -> None:
        # Private: build one with HashRing(...).snapshot(). ``table`` is built from
        # the keys of ``weights`` in UTF-8 order by the ring rule (or by the
        # preset's), or None for an empty ring.
        self._weights = MappingProxyType(weights)
        self._nodes = sort_nodes(weights) if table is None else table.nodes
        self._names: np.ndarray | None = None  # nodes as an object array, made on first use
        self._vnodes = vnodes
        self._hash = hash
        self._seed = seed
        self._preset = preset
        self._algo = check_algorithm(hash) if preset is None else preset.algo
        self._table: _core.RingTable | _EmptyTable = _EMPTY_TABLE if table is None else table

    @property
    def _snap(self) -> RingSnapshot:  # type: ignore[override]  # a snapshot reads itself
        return self

    def _require(self) -> _core.RingTable:
        table = self._table
        if isinstance(table, _EmptyTable):
            raise EmptyRingError("the ring has no nodes")
        return table

    # ------------------------------------------------------------ building

    @classmethod
    def _build(cls, weights: dict[str, float], vnodes: int, hash: str, seed: int) -> RingSnapshot:
        algo = check_algorithm(hash)
        names = sort_nodes(weights)
        counts = [point_count(vnodes, weights[name]) for name in names]
        check_total(counts)
        table = None
        if names:
            table = _core.RingTable.from_nodes(
                [utf8(n) for n in names], np.array(counts, dtype=np.int64), names, algo, seed
            )
        return cls(weights, vnodes, hash, seed, table)

    @classmethod
    def _from_preset(
        cls, state: presets.PresetState, arrays: tuple[np.ndarray, np.ndarray] | None = None
    ) -> RingSnapshot:
        """The preset's ring; with ``arrays`` (loaded points, owners) instead of building."""
        nodes, built = state.build() if arrays is None else (sort_nodes(state.weights), arrays)
        table = None
        if built is not None and len(built[0]):
            table = _core.RingTable(built[0], built[1], nodes, state.algo, 0, state.rule)
        return cls(state.weights, state.vnodes, state.hash, 0, table, state)

    def _added(self, name: str, weight: object) -> RingSnapshot:
        if self._preset is not None:
            return self._from_preset(self._preset.added(name, weight))
        w = check_weight(weight)
        count = point_count(self._vnodes, w)
        check_total([len(self.points), count])
        weights = {**self._weights, name: w}
        if isinstance(self._table, _EmptyTable):
            return self._build(weights, self._vnodes, self._hash, self._seed)
        rank = bisect.bisect_left(self._nodes, utf8(name), key=utf8)
        nodes = self._nodes[:rank] + (name,) + self._nodes[rank:]
        table = self._table.with_node(self._node_points(name, count), rank, nodes)
        return RingSnapshot(weights, self._vnodes, self._hash, self._seed, table)

    def _removed(self, name: str) -> RingSnapshot:
        if self._preset is not None:
            return self._from_preset(self._preset.removed(name))
        weights = dict(self._weights)
        del weights[name]
        if not weights:
            return RingSnapshot(weights, self._vnodes, self._hash, self._seed, None)
        rank = self._nodes.index(name)
        gone = self._node_points(name, point_count(self._vnodes, self._weights[name]))
        table = self._require().without_node(
            gone, rank, self._nodes[:rank] + self._nodes[rank + 1 :]
        )
        return RingSnapshot(weights, self._vnodes, self._hash, self._seed, table)

    def _reweighted(self, name: str, weight: object) -> RingSnapshot:
        if self._preset is not None:
            return self._from_preset(self._preset.reweighted(name, weight))
        w = check_weight(weight)
        if point_count(self._vnodes, w) == point_count(self._vnodes, self._weights[name]):
            return RingSnapshot(
                {**self._weights, name: w}, self._vnodes, self._hash, self._seed, self._require()
            )
        return self._removed(name)._added(name, w)

    def _node_points(self, name: str, count: int) -> np.ndarray:
        return _core.node_points(utf8(name), count, self._algo, self._seed)

    # ------------------------------------------------------------ equality, persistence

    def _config(self) -> tuple[Any, ...]:
        return (self._hash, self._seed, self._vnodes, self._weights, self._preset)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RingSnapshot):
            return NotImplemented
        return self._config() == other._config()

    def __hash__(self) -> int:
        return hash(
            (self._hash, self._seed, self._vnodes, frozenset(self._weights.items()), self._preset)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> RingSnapshot:
        """Load :meth:`to_bytes` output; ValueError for truncated, corrupted or foreign data."""
        return _from_bytes(data)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_from_bytes, (self.to_bytes(),))


def _from_description(
    d: object,
    arrays: tuple[np.ndarray, np.ndarray] | None = None,
) -> RingSnapshot:
    """The snapshot a ``to_dict`` description stands for. With ``arrays`` (points,
    owners, from ``to_bytes``) the built ring is taken from them instead of hashed,
    once the table has checked them (sorted, owners in range) and, for the default
    ring, that every node owns a point."""
    d = persist.check_envelope(d)
    preset = d.get("preset")
    if preset is not None:
        return RingSnapshot._from_preset(presets.from_description(preset, d.get("state")), arrays)
    try:
        if not isinstance(d["nodes"], dict):
            raise ValueError("nodes must map names to weights")
        weights = parse_nodes(d["nodes"])
        vnodes = check_vnodes(d["vnodes"])
        hash_ = d["hash"]
        seed = check_seed(d["seed"], hash_)
        check_algorithm(hash_)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"malformed ring description: {e!r}") from None
    if arrays is None:
        return RingSnapshot._build(weights, vnodes, hash_, seed)
    points, owners = arrays
    nodes = sort_nodes(weights)
    if len(points) == 0:
        if nodes:
            raise ValueError("ring data has nodes but no points")
        return RingSnapshot(weights, vnodes, hash_, seed, None)
    table = _core.RingTable(points, owners, nodes, check_algorithm(hash_), seed)
    if len(np.unique(owners)) != len(nodes):
        raise ValueError("a node of the ring owns no point")
    return RingSnapshot(weights, vnodes, hash_, seed, table)


def _from_bytes(data: object) -> RingSnapshot:
    desc, points, owners = persist.decode(data)
    return _from_description(desc, (points, owners))


class HashRing(_RingReads, PresetConstructors):
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

    def __init__(
        self, nodes: NodesArg = (), *, vnodes: int = 160, hash: str = "murmur3", seed: int = 0
    ) -> None:
        vnodes = check_vnodes(vnodes)
        check_algorithm(hash)
        seed = check_seed(seed, hash)
        self._lock = threading.Lock()
        self._snap = RingSnapshot._build(parse_nodes(nodes), vnodes, hash, seed)

    @classmethod
    def _of(cls, snap: RingSnapshot) -> HashRing:
        ring = cls.__new__(cls)
        ring._lock = threading.Lock()
        ring._snap = snap
        return ring

    @classmethod
    def _preset_ring(cls, state: presets.PresetState) -> HashRing:
        return cls._of(RingSnapshot._from_preset(state))

    # ------------------------------------------------------------ persistence

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HashRing:
        """Rebuild a ring from :meth:`to_dict`; ValueError if the description is malformed.

        Everything is checked as the constructors check it (node names must be
        ``str``, none twice) and the ring is hashed afresh from the description.
        """
        return cls._of(_from_description(dict(d) if isinstance(d, Mapping) else d))

    @classmethod
    def from_bytes(cls, data: bytes) -> HashRing:
        """A ring from :meth:`to_bytes` output (of a ring or a snapshot), loaded without hashing.

        What it trusts: the file's points are taken as they are, not re-hashed
        from the node names (that is what makes loading fast; rebuild with
        ``from_dict(ring.to_dict())`` to hash them afresh). What it checks: the
        framing and checksum, the description (names are ``str``, none twice,
        weights and settings valid), that the points are sorted by (point, node)
        and every owner indexes a node, and, for the default ring, that every node
        owns a point. Whatever points pass, lookups stay correct and cost
        O(log n) at worst (a ring crafted to crowd one arc included); anything
        else raises ValueError (TypeError for an argument that is not bytes).
        """
        return cls._of(_from_bytes(data))

    def __reduce__(self) -> tuple[Any, ...]:
        return (HashRing.from_bytes, (self.to_bytes(),))

    # ------------------------------------------------------------ membership

    def add(self, node: str, weight: float = 1) -> planning.RingChange:
        """Add a node; ValueError if it is already in the ring. Returns what moves.
        (The default weight is the int 1: the presets whose weights are ints take it.)"""
        name = check_node(node)
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

    def snapshot(self) -> RingSnapshot:
        """The current immutable ring state (cheap: no copy is made)."""
        return self._snap

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HashRing):
            return NotImplemented
        return self._snap == other._snap

    __hash__ = None  # type: ignore[assignment]  # mutable
