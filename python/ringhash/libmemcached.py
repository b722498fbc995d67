"""libmemcached 1.1.4's ketama (``update_continuum``), as pylibmc uses it.

- ``ketama`` with every weight 1: 100 points per server, point ``i`` being
  the *key* hash of ``host:port-i`` (``host-i`` on the default port 11211,
  ``/path:0-i`` for a unix socket; ``/host:port-i`` under ``distribution=
  "consistent ketama spy"``, libmemcached's spymemcached names), one point per
  string.
- A weight above 1 anywhere silently switches to the weighted mode (as
  libmemcached does when such a server is added, for good), as do
  ``ketama_weighted`` and ``distribution="consistent weighted"``:
  ``floor((float)(pct * 160 / 4 * (float)n + 1e-10f)) * 4`` points per server
  (C floats, ``pct = (float)weight / (float)total``), 4 per MD5 digest of the
  same strings (bytes ``4x .. 4x + 3``, little-endian).
- Keys use the ``hash`` behavior (``default`` is one-at-a-time);
  ``ketama_weighted`` sets it to MD5, as libmemcached does. A key belongs to
  the first point ``>=`` its hash, wrapping; equal points keep client order
  (glibc's stable qsort).
- Nodes are named by the server spec given (``host[:port[:weight]]``).
- Behaviors apply in pylibmc's order, before the servers are added: ``hash``,
  ``ketama_hash`` (the distribution hash, which 1.1.4 never uses), ``ketama``,
  ``ketama_weighted``, ``distribution`` (``consistent`` and
  ``consistent ketama`` are ``ketama``; ``consistent ketama spy`` keeps the
  weighted flag as it was; the non-consistent ones are refused).

The one-at-a-time (``default``) and FNV hashes read key bytes through a plain
C ``char``, whose sign is the platform's: ``char="signed"`` (the default) hashes
as libmemcached built for x86-64 does (bytes above 0x7F sign-extend),
``char="unsigned"`` as one built for aarch64, 32-bit ARM, POWER or s390x does
(pylibmc on such a machine). The two differ on keys (and, for the unweighted
continuum, server names) with such bytes, and agree on ASCII.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from . import _core, presets
from ._rule import check_node, sort_nodes
from .twemproxy import char_algo, check_char, check_weight, hash_id, points_per_server

__all__ = ["LIBMEMCACHED_HASHES", "LibmemcachedState"]

P = _core.PROXY_HASHES
#: libmemcached's ``hash`` behavior (pylibmc names) -> ringhash hash ids. Not ``hsieh``:
#: libmemcached computes it only where built with it (Debian's build returns 0 for
#: every key, so every key goes to one server).
LIBMEMCACHED_HASHES = {
    "default": P["one_at_a_time"],
    "md5": _core.MD5,
    "crc": P["crc32_15"],
    "fnv1_64": P["fnv1_64"],
    "fnv1a_64": P["fnv1a_64"],
    "fnv1_32": P["fnv1_32"],
    "fnv1a_32": P["fnv1a_32"],
    "murmur": P["murmur2"],
    "jenkins": P["jenkins"],
}


#: The behaviors that decide routing, in the order pylibmc applies them (its
#: PylibMC_behaviors table), before it adds the servers.
BEHAVIORS = ("hash", "ketama_hash", "ketama", "ketama_weighted", "distribution")
#: pylibmc's ``distribution`` names (pylibmc.client.distributions) that are
#: consistent hashing, and whether each makes the continuum weighted; SPY, the one
#: that names points as spymemcached does; REFUSED, the others (not consistent hashing).
DISTRIBUTIONS = {"consistent": False, "consistent ketama": False, "consistent weighted": True}
SPY = "consistent ketama spy"
REFUSED = ("modula", "random", "virtual bucket", "consistent max")


def _mode(behaviors: Mapping[str, Any]) -> tuple[bool, str, bool]:
    """(weighted, key hash, spy) after libmemcached 1.1.4 applies ``behaviors`` in
    pylibmc's order (behavior.cc): ``hash`` sets the key hash; ``ketama_hash`` the
    distribution hash, which 1.1.4 never uses; ``ketama`` the unweighted continuum
    (off: modula); ``ketama_weighted`` the weighted one and the MD5 key hash;
    ``distribution`` sets the distribution itself, and the weighted flag with it but
    for ``consistent ketama spy`` (spymemcached's point names), which leaves it."""
    unknown = set(behaviors) - set(BEHAVIORS)
    if unknown:
        raise ValueError(f"behaviors {sorted(unknown)} are not reproduced")
    dist, weighted, key_hash = "modula", False, "default"
    for name in BEHAVIORS:
        if name not in behaviors:
            continue
        value = behaviors[name]
        if name in ("hash", "ketama_hash"):
            if name == "hash":
                key_hash = value
            elif value not in (*LIBMEMCACHED_HASHES, "hsieh"):
                raise ValueError(f"unknown libmemcached ketama_hash {value!r}")
        elif name == "ketama":
            dist, weighted = ("consistent ketama", False) if value else ("modula", weighted)
        elif name == "ketama_weighted":
            dist, weighted = (
                ("consistent weighted", True) if value else ("consistent ketama", False)
            )
            if value:
                key_hash = "md5"  # libmemcached sets the key hash to MD5 here
        elif value in DISTRIBUTIONS:
            dist, weighted = value, DISTRIBUTIONS[value]
        elif value == SPY:
            dist = value
        elif value in REFUSED:
            dist = value
        else:
            known = sorted([*DISTRIBUTIONS, *REFUSED])
            raise ValueError(f"unknown libmemcached distribution {value!r}: pylibmc's are {known}")
    if dist not in DISTRIBUTIONS and dist != SPY:
        raise ValueError(
            f"distribution {dist!r} is not reproduced: only the consistent ones are (ketama=True, "
            "ketama_weighted=True, or distribution consistent, consistent ketama, consistent "
            "weighted or consistent ketama spy)"
        )
    hash_id(LIBMEMCACHED_HASHES, key_hash, "libmemcached")
    return weighted, key_hash, dist == SPY


@dataclass(frozen=True)
class LibmemcachedState:
    """Server specs in client order: (spec, sort-host string, weight); the mode; how
    the libmemcached build reads key bytes (``char``: see the module documentation)."""

    servers: tuple[tuple[str, str, int], ...]
    weighted: bool = False
    key_hash: str = "default"
    char: str = "signed"
    spy: bool = False  # ``consistent ketama spy``: points of "/host:port-i", i from 0

    name: ClassVar[str] = "libmemcached"
    rule: ClassVar[int] = _core.RULE_GE

    @classmethod
    def of(
        cls,
        servers: Iterable[Any] | Mapping[str, int],
        behaviors: Mapping[str, Any] | None = None,
        char: str = "signed",
        *,
        weighted: bool = False,
    ) -> LibmemcachedState:
        """``servers``: pylibmc server strings ``host[:port[:weight]]``; ``behaviors``:
        the pylibmc behaviors dict (``hash``, ``ketama``, ``ketama_weighted``,
        ``distribution``, ``ketama_hash``; see ``_mode``). ``weighted``: the continuum
        is weighted already (libmemcached never unsets it: a state saved and loaded)."""
        check_char(char)
        made_weighted, key_hash, spy = _mode(dict(behaviors or {"ketama": True}))
        if isinstance(servers, (str, bytes)):
            raise TypeError("servers must be a list of server strings")
        items = list(servers.items()) if isinstance(servers, Mapping) else list(servers)
        out = []
        for item in items:
            spec, weight = (item, None) if isinstance(item, str) else item
            out.append(_spec(check_node(spec), weight, spy))
        if len({s for s, _, _ in out}) != len(out):
            raise ValueError("a server is listed twice")
        # a server of weight > 1 added to a consistent continuum makes it weighted
        weighted = weighted or made_weighted or any(w > 1 for _, _, w in out)
        return cls(tuple(out), weighted, key_hash, char, spy)

    @property
    def algo(self) -> int:
        return char_algo(LIBMEMCACHED_HASHES[self.key_hash], self.char)

    @property
    def hash(self) -> str:
        return self.key_hash

    @property
    def vnodes(self) -> int:
        return 160 if self.weighted else 100

    @property
    def weights(self) -> dict[str, float]:
        return {spec: float(w) for spec, _, w in self.servers}

    def build(self) -> presets.Built:
        nodes = sort_nodes(spec for spec, _, _ in self.servers)
        total, n = sum(w for _, _, w in self.servers), len(self.servers)
        points = []
        for _, host, w in self.servers:
            if self.weighted:
                digests = points_per_server(w, total, n, False) // 4
                points.append(_core.ketama_points(host.encode("utf-8"), digests))
            else:
                strings = [f"{host}-{i}".encode() for i in range(100)]
                points.append(_core.hash_objects(strings, self.algo, 0))
        return nodes, presets.first_wins(points, nodes, (s for s, _, _ in self.servers))

    def _behaviors(self) -> dict[str, Any]:
        """Behaviors that make this state again (with ``weighted=self.weighted``): the
        key hash, and the distribution (unlike ``ketama_weighted``, it leaves the hash
        alone)."""
        dist = SPY if self.spy else "consistent ketama"
        return {"hash": self.key_hash, "distribution": dist}

    def _again(self, specs: list[tuple[str, object]]) -> LibmemcachedState:
        return LibmemcachedState.of(specs, self._behaviors(), self.char, weighted=self.weighted)

    def _specs(self) -> list[tuple[str, int]]:
        return [(s, w) for s, _, w in self.servers]

    def added(self, name: str, weight: object) -> LibmemcachedState:
        return self._again([*self._specs(), (name, weight)])

    def removed(self, name: str) -> LibmemcachedState:
        # the same client without that server: a weighted continuum stays weighted
        return self._again([(s, w) for s, w in self._specs() if s != name])

    def reweighted(self, name: str, weight: object) -> LibmemcachedState:
        w = check_weight(weight)
        return self._again([(s, w if s == name else ow) for s, ow in self._specs()])

    def describe(self) -> dict[str, Any]:
        servers = [[s, w] for s, w in self._specs()]
        d = {"servers": servers, "behaviors": self._behaviors(), "char": self.char}
        return {**d, "weighted": self.weighted}

    @classmethod
    def from_description(cls, d: dict[str, Any]) -> LibmemcachedState:
        # descriptions written before ``char`` and ``weighted`` existed: a signed-char
        # ring, weighted as its behaviors and weights make it
        servers, char = [tuple(s) for s in d["servers"]], d.get("char", "signed")
        return cls.of(servers, d["behaviors"], char, weighted=bool(d.get("weighted", False)))


def _spec(spec: str, weight: object, spy: bool = False) -> tuple[str, str, int]:
    """(spec, sort-host string, weight) of a pylibmc server string, read as pylibmc's
    ``translate_server_spec`` reads it (``host``, ``host:port``, ``host:port:weight``,
    ``[v6]``, ``[v6]:port[:weight]``, ``udp:`` before any of them, or a unix socket's
    ``/path``), the sort host as libmemcached's ``update_continuum`` writes it:
    ``host`` on the default port 11211, else ``host:port`` (a unix socket's port is 0);
    ``/host:port`` always under ``spy`` (spymemcached's names)."""
    text, w = spec.strip(), 1
    bad = ValueError(
        f"server {spec!r}: expected host[:port[:weight]], [v6][:port[:weight]] or /path"
    )
    if text.startswith("/"):
        host, port = text, 0
    else:
        text = text.removeprefix("udp:")
        port_text = ""
        if text.startswith("["):
            if text.endswith("]"):
                host = text[1:-1]
            elif "]:" in text:
                host, port_text = text[1:].rsplit("]:", 1)
            else:
                raise bad
        else:
            host, _, port_text = text.partition(":")
        port = 11211
        if port_text:
            p, sep, wt = port_text.partition(":")
            if not p.isdigit() or (sep and not wt.isdigit()):
                raise bad
            port, w = int(p), int(wt) if sep else 1
        if not host:
            raise bad
    if weight is not None:
        w = weight  # type: ignore[assignment]
    sort_host = f"/{host}:{port}" if spy else host if port == 11211 else f"{host}:{port}"
    return spec, sort_host, check_weight(w)


presets.register("libmemcached", LibmemcachedState.from_description)
