"""twemproxy (nutcracker 0.5) ``distribution: ketama`` (``nc_ketama.c``).

A server line ``host:port:weight [name]`` is ring-named by ``name``, or
    else by ``host:port`` (``host`` alone on port 11211; a unix socket's
    ``/path:weight`` by ``/path:``). With ``pct = (float)weight / (float)total`` (C
    floats), it gets ``floorf((float)(pct * 160 / 4 * (float)nservers +
    1e-10)) * 4`` points: 4 per MD5 digest of ``ring_name + "-" + i``
    (bytes ``4x .. 4x + 3``, little-endian). Keys are hashed with the pool's
    ``hash`` (``fnv1a_64`` by default); a key belongs to the first point
    ``>=`` its hash, wrapping; equal points keep config order (glibc's stable
    qsort). Nodes are named by the server line as written. With the pool's
    ``hash_tag`` (two characters, e.g. ``{}``), a key holding the first and,
    after it, the second with something between them is hashed by that part
    alone (``user:{42}:cart`` as ``42``), as nutcracker does.

The one-at-a-time, FNV and hsieh hashes read key bytes through a plain C ``char``,
whose sign is the platform's: ``char="signed"`` (the default) hashes as
nutcracker built for x86-64 does (bytes above 0x7F sign-extend),
``char="unsigned"`` as one built for aarch64, 32-bit ARM, POWER or s390x does.
The two differ on keys with such bytes (non-ASCII UTF-8) and agree on ASCII.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from . import _core, presets
from ._rule import check_node, sort_nodes

__all__ = ["CHARS", "TWEMPROXY_HASHES", "TwemproxyState", "parse_twemproxy"]

P = _core.PROXY_HASHES
#: twemproxy's ``hash:`` names (all twelve) -> ringhash hash ids.
TWEMPROXY_HASHES = {
    "one_at_a_time": P["one_at_a_time"],
    "md5": _core.MD5,
    "crc32": P["crc32_15"],
    "crc32a": _core.CRC32,
    "fnv1_64": P["fnv1_64"],
    "fnv1a_64": P["fnv1a_64"],
    "fnv1_32": P["fnv1_32"],
    "fnv1a_32": P["fnv1a_32"],
    "murmur": P["murmur2"],
    "hsieh": P["hsieh"],
    "jenkins": P["jenkins"],
    "crc16": P["crc16"],
}


def points_per_server(weight: int, total: int, n: int, double_epsilon: bool) -> int:
    """Both formulas in C float arithmetic: twemproxy adds a double 1e-10 (then
    casts to float), libmemcached a float 1e-10f."""
    f = np.float32
    pct = f(f(weight) / f(total))
    v = f(f(f(pct * f(160)) / f(4)) * f(n))
    v = f(float(v) + 1e-10) if double_epsilon else f(v + f(1e-10))
    return int(np.floor(v)) * 4


def check_weight(weight: object) -> int:
    if isinstance(weight, bool) or not isinstance(weight, (int, np.integer)):
        raise TypeError(f"server weights are ints, not {type(weight).__name__}")
    if weight < 1:
        raise ValueError(f"server weights must be >= 1, got {weight}")
    return int(weight)


#: How a proxy's C reads key bytes, by the platform it was built for: "signed"
#: (x86-64, i386), "unsigned" (aarch64, 32-bit ARM, POWER, s390x).
CHARS = ("signed", "unsigned")


def check_char(char: object) -> str:
    if not isinstance(char, str):
        raise TypeError(f"char must be 'signed' or 'unsigned', not {type(char).__name__}")
    if char not in CHARS:
        raise ValueError(
            f"char must be 'signed' (builds for x86-64) or 'unsigned' (for aarch64, ARM, "
            f"POWER, s390x), not {char!r}"
        )
    return char


def check_hash_tag(tag: object) -> str:
    """A pool's ``hash_tag``: two characters of one byte each (nutcracker refuses
    anything else), or "" for none."""
    if not isinstance(tag, str):
        raise TypeError(f"hash_tag must be a str of two characters, not {type(tag).__name__}")
    if tag and (len(tag.encode("utf-8")) != 2 or "\0" in tag):
        raise ValueError(
            f"hash_tag must be two one-byte characters (e.g. '{{}}'), as nutcracker requires, "
            f"not {tag!r}"
        )
    return tag


def char_algo(algo: int, char: str) -> int:
    """``algo`` as a build with that ``char`` computes it (the flag only where the
    hash reads bytes through a plain char)."""
    if char == "unsigned" and algo in _core.CHAR_HASHES:
        return algo | _core.UNSIGNED_CHAR
    return algo


def hash_id(table: dict[str, int], name: object, what: str) -> int:
    if not isinstance(name, str) or name not in table:
        raise ValueError(f"unsupported {what} hash {name!r}: expected one of {sorted(table)}")
    return table[name]


@dataclass(frozen=True)
class TwemproxyState:
    """Server lines in pool order: (line, ring name, weight); the pool's hash; how
    the nutcracker build reads key bytes (``char``: see the module documentation);
    the pool's ``hash_tag`` ("" for none)."""

    servers: tuple[tuple[str, str, int], ...]
    hash: str = "fnv1a_64"
    char: str = "signed"
    hash_tag: str = ""

    name: ClassVar[str] = "twemproxy"
    rule: ClassVar[int] = _core.RULE_GE

    @classmethod
    def of(
        cls,
        servers: Iterable[str],
        hash: str = "fnv1a_64",
        char: str = "signed",
        hash_tag: str = "",
    ) -> TwemproxyState:
        """``servers``: twemproxy server lines ``host:port:weight [name]``."""
        hash_id(TWEMPROXY_HASHES, hash, "twemproxy")
        check_char(char)
        check_hash_tag(hash_tag)
        if isinstance(servers, (str, bytes)):
            raise TypeError("servers must be a list of server lines")
        out = [_server_line(check_node(line)) for line in servers]
        for field, what in ((0, "server line"), (1, "ring name")):
            values = [s[field] for s in out]
            if len(set(values)) != len(values):
                raise ValueError(f"a {what} is listed twice")
        return cls(tuple(out), hash, char, hash_tag)

    @property
    def algo(self) -> int:
        algo = char_algo(TWEMPROXY_HASHES[self.hash], self.char)
        return _core.with_hash_tag(algo, self.hash_tag.encode()) if self.hash_tag else algo

    @property
    def vnodes(self) -> int:
        return 160

    @property
    def weights(self) -> dict[str, float]:
        return {line: float(w) for line, _, w in self.servers}

    def build(self) -> presets.Built:
        nodes = sort_nodes(line for line, _, _ in self.servers)
        total, n = sum(w for _, _, w in self.servers), len(self.servers)
        points = [
            _core.ketama_points(ring.encode("utf-8"), points_per_server(w, total, n, True) // 4)
            for _, ring, w in self.servers
        ]
        return nodes, presets.first_wins(points, nodes, (line for line, _, _ in self.servers))

    def _lines(self) -> list[str]:
        return [line for line, _, _ in self.servers]

    def added(self, name: str, weight: object) -> TwemproxyState:
        line = _server_line(check_node(name))
        if line[2] != check_weight(weight) and weight != 1.0:
            raise ValueError("a twemproxy server's weight is part of its line: host:port:weight")
        return TwemproxyState.of([*self._lines(), name], self.hash, self.char, self.hash_tag)

    def removed(self, name: str) -> TwemproxyState:
        servers = tuple(s for s in self.servers if s[0] != name)
        return TwemproxyState(servers, self.hash, self.char, self.hash_tag)

    def reweighted(self, name: str, weight: object) -> TwemproxyState:
        raise ValueError(
            "a twemproxy server's weight is part of its line (host:port:weight): remove the "
            "line and add it with the new weight"
        )

    def describe(self) -> dict[str, Any]:
        d = {"servers": self._lines(), "hash": self.hash, "char": self.char}
        return {**d, "hash_tag": self.hash_tag}

    @classmethod
    def from_description(cls, d: dict[str, Any]) -> TwemproxyState:
        # descriptions written before ``char`` and ``hash_tag`` existed were of
        # signed-char rings without a tag
        return cls.of(d["servers"], d["hash"], d.get("char", "signed"), d.get("hash_tag", ""))


def _server_line(line: str) -> tuple[str, str, int]:
    """(line, ring name, weight) of ``host:port:weight [name]`` or a unix socket's
    ``/path:weight [name]``, as nutcracker's conf_add_server reads it. Without a name,
    the ring name is ``host:port``, but ``host`` alone on port 11211 ("backward
    compatibility with libmemcached") and ``/path:`` for a unix socket (no port
    digits after the colon)."""
    addr, _, name = line.strip().partition(" ")
    name = name.strip()
    bad = ValueError(
        f"twemproxy server {line!r}: expected 'host:port:weight [name]' or '/path:weight [name]'"
    )
    if addr.startswith("/"):
        path, _, weight = addr.rpartition(":")
        if not path or not weight.isdigit():
            raise bad
        return line, name or f"{path}:", check_weight(int(weight))
    parts = addr.rsplit(":", 2)
    if len(parts) != 3 or not parts[2].isdigit() or not parts[1].isdigit() or not parts[0]:
        raise bad
    host, port = parts[0], int(parts[1])
    ring_name = name or (host if port == 11211 else f"{host}:{port}")
    return line, ring_name, check_weight(int(parts[2]))


presets.register("twemproxy", TwemproxyState.from_description)


def parse_twemproxy(yaml_text: str, pool: str, char: str = "signed") -> TwemproxyState:
    """The servers and hash of ``pool`` in a nutcracker.yml text, for a nutcracker
    built with that ``char`` (the file does not say: the platform does)."""
    check_char(char)
    try:
        import yaml
    except ImportError:  # pragma: no cover - exercised where the extra is absent
        raise ImportError(
            "reading nutcracker.yml needs PyYAML: pip install 'ringhash[twemproxy]'"
        ) from None
    try:
        doc = yaml.safe_load(yaml_text)
    except yaml.YAMLError as e:
        raise ValueError(f"nutcracker.yml: {e}") from None
    if not isinstance(doc, dict) or pool not in doc:
        raise ValueError(f"no pool {pool!r} in the nutcracker.yml text")
    conf = doc[pool]
    if not isinstance(conf, dict):
        raise ValueError(f"nutcracker.yml pool {pool}: expected a mapping")
    where = _line_of(yaml_text, pool)
    dist = conf.get("distribution", "ketama")
    if dist != "ketama":
        raise ValueError(
            f"nutcracker.yml pool {pool} (line {where}): distribution {dist!r} is not "
            "consistent hashing (only ketama is reproduced)"
        )
    servers = conf.get("servers")
    if not isinstance(servers, list) or not servers:
        raise ValueError(f"nutcracker.yml pool {pool} (line {where}): no servers")
    try:
        tag = conf.get("hash_tag", "")
        hash_name = conf.get("hash", "fnv1a_64")
        return TwemproxyState.of([str(s) for s in servers], hash_name, char, tag)
    except (TypeError, ValueError) as e:
        raise ValueError(f"nutcracker.yml pool {pool} (line {where}): {e}") from None


def _line_of(text: str, key: str) -> int:
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.split("#", 1)[0].rstrip() == f"{key}:":
            return lineno
    return 0
