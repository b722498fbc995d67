"""Rings that reproduce established implementations bit for bit.

Each preset is an immutable state that knows the original's rules for
building the ring and for membership changes; the built ring goes through
the same compiled lookup paths as the default ring. Keys are encoded by the
ringhash rule (``str`` -> UTF-8; an ``int`` key is 8 bytes little-endian,
*not* its decimal string: pass ``str(n)`` to match a Go or C client that
routes the decimal text).

- ``ketama``: libketama (RJ/ketama, ``ketama_create_continuum`` and
  ``ketama_get_server``). Server ``s`` of ``N`` with weight ``w`` of total
  ``T`` gets ``floorf(pct * 40.0 * (float)N)`` MD5 digests with
  ``pct = (float)w / (float)T`` (C float/double arithmetic reproduced
  exactly); digest ``k`` is ``md5(f"{addr}-{k}")`` and gives 4 points (bytes
  ``4h..4h+3`` little-endian). A key hashes to the first 4 bytes of its MD5,
  little-endian, and belongs to the first point ``>=`` its hash, wrapping.
  Any membership change re-derives every server's share, as libketama does.
- ``groupcache``: golang/groupcache ``consistenthash``. Point ``i`` of a node
  is ``crc32(decimal(i) + name)``; keys use crc32; first point ``>=`` hash,
  wrapping; on a collision the node added last owns the point (Go map
  overwrite). groupcache has no Remove: ``remove`` rebuilds the ring from the
  remaining nodes in their order, as a groupcache user would with a new Map.
- ``stathat``: stathat.com/c/consistent. The same point strings and crc32,
  but a key belongs to the first point strictly ``>`` its hash; collisions
  overwrite (last added wins) and removing a node deletes the circle entries
  at its point hashes, even ones another node had overwritten, as the Go code
  does. ``get_nodes`` follows ``GetN``. A node whose every point was deleted
  that way owns no key (it can then appear in no replica list either).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from . import _core
from ._rule import check_node, sort_nodes, unique_names

__all__ = [
    "GroupcacheState",
    "first_wins",
    "register",
    "KetamaState",
    "PresetState",
    "StathatState",
    "from_description",
]

#: What a preset builds: its nodes in ring order, and the sorted points and
#: their owners (indices into the nodes), or None for an empty ring.
Built = tuple[tuple[str, ...], "tuple[np.ndarray, np.ndarray] | None"]


class PresetState(Protocol):
    """The immutable state of a preset ring: what it hashes, how it searches,
    and how it builds itself and changes membership the original's way.

    Every constructor and ``from_description`` validates its input (names,
    duplicates, weights), so a state that exists is a valid one.
    """

    name: ClassVar[str]  # "ketama", "groupcache", "stathat", "nginx", ...

    @property
    def algo(self) -> int: ...  # the key hash, an _core algorithm id
    @property
    def rule(self) -> int: ...  # the search rule, _core.RULE_GE, RULE_GT or RULE_NEAREST
    @property
    def hash(self) -> str: ...  # the key hash's name

    @property
    def vnodes(self) -> int: ...
    @property
    def weights(self) -> dict[str, float]: ...
    def build(self) -> Built: ...
    def added(self, name: str, weight: object) -> PresetState: ...
    def removed(self, name: str) -> PresetState: ...
    def reweighted(self, name: str, weight: object) -> PresetState: ...
    def describe(self) -> dict[str, Any]: ...


def _ranked(names: Iterable[str]) -> tuple[tuple[str, ...], dict[str, int]]:
    nodes = sort_nodes(names)
    return nodes, {n: i for i, n in enumerate(nodes)}


def _sorted_ring(points: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Points and owners ordered by (point, owner), as a RingTable takes them."""
    if not len(points):
        return None
    order = np.lexsort((owners, points))
    return points[order], owners[order].astype(np.int32)


def first_wins(
    points: list[np.ndarray], nodes: tuple[str, ...], order: Iterable[str]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Points of servers given in config ``order`` (one array each), as a ring in
    which a point several servers hash to belongs to the first of them in config
    order (and, within a server, its first such point): what a stable sort of
    the continuum followed by a search for the first point >= a hash gives
    (nginx, twemproxy and libmemcached sort with glibc's stable qsort), and
    equal points dropped after the first (nginx drops them explicitly)."""
    rank = {n: i for i, n in enumerate(nodes)}
    names = list(order)
    if not points or not sum(len(p) for p in points):
        return None
    pts = np.concatenate(points)
    seq = np.concatenate([np.full(len(p), i, dtype=np.int64) for i, p in enumerate(points)])
    order_ = np.lexsort((np.arange(len(pts)), seq, pts))  # by point, then config order
    pts, seq = pts[order_], seq[order_]
    keep = np.ones(len(pts), dtype=bool)
    keep[1:] = pts[1:] != pts[:-1]
    owners = np.array([rank[n] for n in names], dtype=np.int32)[seq[keep]]
    return pts[keep], owners


def register(name: str, loader: Any) -> None:
    """Make ``from_description`` (and so ``from_dict`` / ``from_bytes``) know a preset."""
    _LOADERS[name] = loader


def ketama_digests(weight: int, total: int, nservers: int) -> int:
    """libketama: ``ks = floorf(pct * 40.0 * (float)numservers)``, ``pct = (float)w / (float)T``.

    ``pct`` is a C float; ``pct * 40.0 * (float)N`` is computed in double and
    converted to float for ``floorf``.
    """
    pct = np.float32(np.float32(weight) / np.float32(total))
    product = float(pct) * 40.0 * float(np.float32(nservers))
    return int(math.floor(np.float32(product)))


def check_int_weight(weight: object) -> int:
    if isinstance(weight, (bool, np.bool_)) or not isinstance(weight, (int, np.integer)):
        raise TypeError(f"ketama weights are ints, not {type(weight).__name__}")
    if weight <= 0:
        raise ValueError(f"ketama weights must be > 0, got {weight}")
    return int(weight)


def check_replicas(replicas: object) -> int:
    if isinstance(replicas, bool) or not isinstance(replicas, (int, np.integer)):
        raise TypeError(f"replicas must be an int, not {type(replicas).__name__}")
    if not 1 <= replicas <= 1 << 20:
        raise ValueError(f"replicas must lie in [1, 2**20], got {replicas}")
    return int(replicas)


@dataclass(frozen=True)
class KetamaState:
    """Servers in server-file order, each with its integer weight."""

    servers: tuple[tuple[str, int], ...]

    name: ClassVar[str] = "ketama"
    algo: ClassVar[int] = _core.MD5
    rule: ClassVar[int] = _core.RULE_GE
    hash: ClassVar[str] = "md5"

    @classmethod
    def of(cls, servers: Mapping[str, int] | Iterable[tuple[str, int]]) -> KetamaState:
        """Checked state for ``servers`` ("host:port" -> int weight, in server-file order)."""
        if isinstance(servers, (str, bytes)):
            raise TypeError(
                f"servers must map addresses to weights, not a {type(servers).__name__}"
            )
        items = list(servers.items()) if isinstance(servers, Mapping) else list(servers)
        names = unique_names((addr for addr, _ in items), "server")
        return cls(tuple((a, check_int_weight(w)) for a, (_, w) in zip(names, items, strict=True)))

    @property
    def vnodes(self) -> int:
        return 160  # 40 digests x 4 points for an equal share

    @property
    def weights(self) -> dict[str, float]:
        return {addr: float(w) for addr, w in self.servers}

    def build(self) -> Built:
        nodes, rank = _ranked(a for a, _ in self.servers)
        total = sum(w for _, w in self.servers)
        pts, own = [], []
        for addr, w in self.servers:
            p = _core.ketama_points(
                addr.encode("utf-8"), ketama_digests(w, total, len(self.servers))
            )
            pts.append(p)
            own.append(np.full(len(p), rank[addr], dtype=np.int32))
        if not pts:
            return nodes, None
        return nodes, _sorted_ring(np.concatenate(pts), np.concatenate(own))

    def added(self, name: str, weight: object) -> KetamaState:
        return KetamaState.of(self.servers + ((name, check_int_weight(weight)),))

    def removed(self, name: str) -> KetamaState:
        return KetamaState(tuple(s for s in self.servers if s[0] != name))

    def reweighted(self, name: str, weight: object) -> KetamaState:
        w = check_int_weight(weight)
        return KetamaState(tuple((a, w if a == name else old) for a, old in self.servers))

    def describe(self) -> dict[str, Any]:
        return {"servers": [[a, w] for a, w in self.servers]}

    @classmethod
    def from_description(cls, d: dict[str, Any]) -> KetamaState:
        return cls.of([(a, w) for a, w in d["servers"]])


def _go_points(name: str, replicas: int) -> np.ndarray:
    """crc32(decimal(i) + name) for i < replicas (groupcache and stathat)."""
    raw = name.encode("utf-8")
    return _core.hash_objects(
        [str(i).encode("ascii") + raw for i in range(replicas)], _core.CRC32, 0
    )


class _GoRing:
    """What groupcache and stathat share: crc32 everywhere, ``replicas`` points per
    node, and no node weights. Subclasses keep their nodes in ``members`` (Add order)."""

    name: ClassVar[str]
    replicas: int
    members: tuple[str, ...]
    algo: ClassVar[int] = _core.CRC32
    hash: ClassVar[str] = "crc32"

    @property
    def vnodes(self) -> int:
        return self.replicas

    @property
    def weights(self) -> dict[str, float]:
        return dict.fromkeys(self.members, 1.0)

    def reweighted(self, name: str, weight: object) -> Any:
        raise ValueError(f"the {self.name} preset has no node weights")

    @staticmethod
    def _check_weight(weight: object) -> None:
        if weight != 1.0:
            raise ValueError("groupcache and stathat nodes have no weights (leave weight at 1.0)")


@dataclass(frozen=True)
class GroupcacheState(_GoRing):
    replicas: int
    members: tuple[str, ...]  # in Add order

    name: ClassVar[str] = "groupcache"
    rule: ClassVar[int] = _core.RULE_GE

    @classmethod
    def of(cls, replicas: object, nodes: Iterable[str]) -> GroupcacheState:
        return cls(check_replicas(replicas), unique_names(nodes))

    def build(self) -> Built:
        nodes, rank = _ranked(self.members)
        if not self.members:
            return nodes, None
        pts = np.concatenate([_go_points(n, self.replicas) for n in self.members])
        added = np.repeat(np.arange(len(self.members)), self.replicas)
        order = np.lexsort((added, pts))
        pts, added = pts[order], added[order]
        # Go's hashMap[hash] = node: for equal points the last-added node wins.
        run_end = np.append(pts[1:] != pts[:-1], True)
        run_id = np.cumsum(np.insert(run_end[:-1], 0, True)) - 1
        winner = added[run_end][run_id]
        ranks = np.array([rank[n] for n in self.members], dtype=np.int32)[winner]
        return nodes, (pts, ranks)

    def added(self, name: str, weight: object) -> GroupcacheState:
        self._check_weight(weight)
        return GroupcacheState.of(self.replicas, self.members + (name,))

    def removed(self, name: str) -> GroupcacheState:
        return GroupcacheState(self.replicas, tuple(n for n in self.members if n != name))

    def describe(self) -> dict[str, Any]:
        return {"replicas": self.replicas, "order": list(self.members)}

    @classmethod
    def from_description(cls, d: dict[str, Any]) -> GroupcacheState:
        return cls.of(d["replicas"], d["order"])


@dataclass(frozen=True)
class StathatState(_GoRing):
    replicas: int
    members: tuple[str, ...]  # in Add order
    circle: tuple[tuple[int, str], ...]  # point -> node, sorted by point
    ops: tuple[tuple[str, str], ...]  # ("add" | "remove", node): replaying them rebuilds circle

    name: ClassVar[str] = "stathat"
    rule: ClassVar[int] = _core.RULE_GT

    @classmethod
    def of(cls, replicas: object, nodes: Iterable[str]) -> StathatState:
        return cls.replay(check_replicas(replicas), [("add", n) for n in unique_names(nodes)])

    @classmethod
    def replay(cls, replicas: int, ops: Iterable[tuple[str, str]]) -> StathatState:
        state = cls(replicas, (), (), ())
        for op, node in ops:
            if op not in ("add", "remove"):
                raise ValueError(f"stathat ops are 'add' or 'remove', not {op!r}")
            node = check_node(node)
            if (op == "add") == (node in state.members):
                raise ValueError(f"stathat ops {op} {node!r} out of turn")
            state = state.added(node, 1.0) if op == "add" else state.removed(node)
        return state

    def build(self) -> Built:
        nodes, rank = _ranked(self.members)
        if not self.circle:
            return nodes, None
        pts = np.array([p for p, _ in self.circle], dtype=np.uint32)
        own = np.array([rank[n] for _, n in self.circle], dtype=np.int32)
        return nodes, (pts, own)

    def added(self, name: str, weight: object) -> StathatState:
        self._check_weight(weight)
        circle = dict(self.circle)
        for p in _go_points(name, self.replicas).tolist():
            circle[p] = name  # overwrite: the last added wins
        return StathatState(
            self.replicas,
            self.members + (name,),
            tuple(sorted(circle.items())),
            self.ops + (("add", name),),
        )

    def removed(self, name: str) -> StathatState:
        circle = dict(self.circle)
        for p in _go_points(name, self.replicas).tolist():
            circle.pop(p, None)  # whoever owns that entry now loses it, as in the Go code
        return StathatState(
            self.replicas,
            tuple(n for n in self.members if n != name),
            tuple(sorted(circle.items())),
            self.ops + (("remove", name),),
        )

    def describe(self) -> dict[str, Any]:
        return {"replicas": self.replicas, "ops": [list(op) for op in self.ops]}

    @classmethod
    def from_description(cls, d: dict[str, Any]) -> StathatState:
        return cls.replay(check_replicas(d["replicas"]), [(op, n) for op, n in d["ops"]])


_LOADERS: dict[str, Any] = {
    "ketama": KetamaState.from_description,
    "groupcache": GroupcacheState.from_description,
    "stathat": StathatState.from_description,
}


def from_description(preset: object, d: object) -> PresetState:
    """The preset state a ``describe()`` dict stands for (ValueError if malformed,
    names that are not ``str`` and duplicate nodes included)."""
    loader = _LOADERS.get(preset) if isinstance(preset, str) else None
    if loader is None:
        raise ValueError(f"unknown preset {preset!r}")
    if not isinstance(d, dict):
        raise ValueError(f"malformed {preset} description: expected a dict, not {type(d).__name__}")
    try:
        state: PresetState = loader(d)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"malformed {preset} description: {e}") from None
    return state
