"""pymemcache 4 ``HashClient`` routing (its default ``RendezvousHash``).

The rule, from pymemcache's source: a server ``(host, port)`` is the node
``f"{host}:{port}"``, and a server string is read as ``normalize_server_spec``
reads it (``"10.0.0.1"`` is ``10.0.0.1:11211``, ``"[::1]:11211"`` is
``::1:11211``, ``"unix:/run/mc.sock"`` is ``/run/mc.sock``); a key goes to the node of highest
``murmur3_32(f"{node}-{key}")``, pymemcache's own pure-Python MurmurHash3,
which reads each *character* of that text and keeps its low byte (so a
non-ASCII key does not hash as its UTF-8 bytes). A tie goes to the greater
node name. A ``bytes`` key enters the text as its ``repr`` (``b'...'``), as
the f-string does. Nodes are kept in client order; ``get_nodes`` lists them by
score (the order HashClient falls back through as servers are removed).

Keys are str or bytes (pymemcache's own rule); lists, tuples and numpy
``U``/``S``/object arrays are batches. Arrow columns are refused: their
values would have to become Python strings first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from . import _core
from ._algorithm import Algorithm, Built
from ._keys import COLUMN, KeyBatch

__all__ = ["PymemcacheHash"]


def _node(server: object) -> str:
    """The node HashClient names a server by: ``host:port`` of a (host, port) pair,
    and of a string read as ``normalize_server_spec`` reads it (no port: 11211;
    ``[v6]``: without the brackets; the port as an int), a socket's path alone."""
    if isinstance(server, (list, tuple)) and len(server) == 2:
        return "%s:%s" % tuple(server)  # noqa: UP031 - pymemcache's own formatting
    if not isinstance(server, str) or not server:
        raise TypeError(f"servers are (host, port) pairs or 'host:port' strings, not {server!r}")
    if server.startswith("unix:"):
        server = server[5:]
        if not server:
            raise ValueError("'unix:' names no socket path")
    if server.startswith("/"):
        return server
    host, port = server, "11211"
    if ":" in server and not server.endswith("]"):
        host, port = server.rsplit(":", 1)
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"server {server!r}: the port is not a number") from None
    if host.startswith("["):
        host = host.strip("[]")
    return f"{host}:{number}"


def _text(key: object) -> bytes:
    if isinstance(key, str):
        return key.encode("utf-8", "surrogatepass")
    if isinstance(key, bytes):
        return repr(key).encode("ascii")
    raise TypeError(f"pymemcache keys are str or bytes, not {type(key).__name__}")


class PymemcacheHash(Algorithm):
    """Routes as ``pymemcache.HashClient(servers)`` (see the module docstring)."""

    kind: ClassVar[str] = "pymemcache"
    weighted: ClassVar[bool] = False

    def __init__(self, servers: Iterable[Any] = ()) -> None:
        if isinstance(servers, (str, bytes)):
            raise TypeError("servers must be a list of (host, port) pairs")
        super().__init__([_node(s) for s in servers])

    def _build(self, weights: dict[str, float]) -> Built:
        nodes = tuple(weights)  # client order: HashClient adds them in turn
        raw = [n.encode("utf-8") for n in nodes]
        ends = np.cumsum([len(r) for r in raw]).astype(np.uintp)
        # a tie goes to the greater name: rank each node by its name
        rank = np.empty(len(nodes), dtype=np.int64)
        rank[sorted(range(len(nodes)), key=lambda i: nodes[i])] = np.arange(len(nodes))
        return Built(nodes, dict(weights), (b"".join(raw), ends, rank))

    def _scores(self, state: Built, batch: KeyBatch) -> np.ndarray:
        if batch.kind == COLUMN:
            raise TypeError(
                "the pymemcache preset takes lists or numpy arrays of str keys, not Arrow "
                "columns (pymemcache hashes Python str characters)"
            )
        data = batch.data
        if isinstance(data, np.ndarray):
            data = data.reshape(-1).tolist()
        if batch.kind in ("u64", "small_int"):
            raise TypeError("pymemcache keys are str or bytes, not ints")
        if batch.kind == "fixed":  # a numpy S array: items as bytes
            data = [bytes(r).rstrip(b"\0") for r in data.reshape(-1, batch.width)]
        elif batch.kind == "ucs4":
            data = [
                "".join(map(chr, r)).rstrip("\0") for r in data.reshape(-1, batch.width).tolist()
            ]
        names, ends, _ = state.extra
        return _core.pymemcache_scores([_text(k) for k in data], names, ends)

    def _pick(self, state: Built, scores: np.ndarray) -> np.ndarray:
        rank = state.extra[2]
        # highest score, then the greatest name: one key per row
        combined = scores.astype(np.int64) * len(rank) + rank
        return np.asarray(combined.argmax(axis=1), dtype=np.int32)

    def _route(self, state: Built, batch: KeyBatch, out: np.ndarray | None) -> np.ndarray:
        owners = self._pick(state, self._scores(state, batch))
        if out is None:
            return owners
        out[:] = owners
        return out

    def _route_one(self, state: Built, key: object) -> int:
        names, ends, _ = state.extra
        return int(self._pick(state, _core.pymemcache_scores([_text(key)], names, ends))[0])

    def sample_keys(self) -> list[str]:
        """2**16 fixed str keys (pymemcache hashes text only)."""
        return [f"key:{i}" for i in range(1 << 16)]

    def _shares(self, state: Built) -> np.ndarray:
        names, ends, _ = state.extra
        keys = [k.encode() for k in self.sample_keys()]
        owners = self._pick(state, _core.pymemcache_scores(keys, names, ends))
        return np.bincount(owners, minlength=len(state.nodes)) / float(1 << 16)

    def _hashes(self, state: Built, batch: KeyBatch) -> np.ndarray:
        return self._scores(state, batch)

    def _ranked(self, state: Built, hashes: np.ndarray, want: int) -> np.ndarray:
        rank = state.extra[2]
        combined = hashes.astype(np.int64) * len(rank) + rank
        return np.asarray(np.argsort(-combined, axis=1, kind="stable")[:, :want], dtype=np.int32)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (the node list, in order): ``from_dict`` rebuilds it."""
        d = super().to_dict()
        d["nodes"] = list(self.nodes)
        return d

    @classmethod
    def from_dict(cls, d: Any) -> PymemcacheHash:
        """The ``PymemcacheHash`` that ``to_dict`` described; ValueError for anything else."""
        if not isinstance(d, dict) or d.get("algorithm") != cls.kind:
            raise ValueError("not a pymemcache description")
        return cls(d.get("nodes", []))
