"""HAProxy ``hash-type consistent`` (lb_chash.c, HAProxy 2.6).

The rule, from HAProxy's source:

- Servers are named by their ``server`` names. Each has a numeric id: the one
  written (``id N``), or else the smallest id not yet used, given in config
  order after the written ones are reserved. Deleting a ``server`` line thus
  renumbers the servers after it that have no written id, and their keys move
  although they did not change.
- A server of weight ``w`` (default 1; 0, or ``disabled``, takes no traffic
  but keeps its id) gets ``16 * w`` points, point ``j`` at ``full_hash(id *
  4096 + j)`` (``full_hash``: Bob Jenkins' integer hash times 3221225473, a
  bijection, so no two points tie).
- ``backup`` servers have ids too, and points in a tree of their own, looked up
  only when no active server has a weight: then every key goes to the first
  backup, or, with ``option allbackups``, the backups' tree is searched as the
  active one would be (``chash_get_server_hash``). The config is read as HAProxy
  reads it: ``default-server`` lines (in ``defaults`` and in the backend) set
  what the ``server`` lines after them start from, a backend inherits the
  ``defaults`` section before it or the named one it gives with ``from``, and
  ``server-template prefix 1-3 ...`` makes ``prefix1`` .. ``prefix3``, all
  taken as up. ``hash-key`` (HAProxy 3.0's points from addresses) is refused.
- A key's hash is the ``hash-type`` function of its bytes: ``sdbm`` (the
  default), ``djb2``, ``wt6`` or ``crc32``, then ``full_hash`` if ``avalanche``
  is written, or if no function is written at all (HAProxy's default for
  consistent hashing is "sdbm avalanche"). The key is what the ``balance``
  algorithm takes from the request: the parameter's value for ``url_param``,
  the header's for ``hdr()``, the URI for ``uri`` (up to ``?`` unless
  ``whole``, at most ``len`` bytes, up to the ``depth + 1``-th ``/``).
- ``balance source`` is different: its key is the client address, as packed
  bytes (4 for IPv4, 16 for IPv6: ``source_keys`` makes them), hashed as the
  XOR of its 32-bit big-endian words, whatever the function (``function=
  "source"``), then ``full_hash`` under the same rule.
- A key belongs to the nearer of the first point ``>=`` its hash and the point
  before it (a tie goes to the point before): not "first point clockwise".
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from . import _core, presets
from ._rule import check_node, sort_nodes

__all__ = [
    "HASH_FUNCTIONS",
    "HaproxyState",
    "hdr_keys",
    "parse_haproxy",
    "source_keys",
    "uri_keys",
]

#: hash-type functions -> ringhash hash ids; "source" is ``balance source``, which
#: hashes the client address its own way whatever the function (``source_keys``).
HASH_FUNCTIONS = {
    "sdbm": 3,
    "djb2": 4,
    "wt6": 5,
    "crc32": _core.CRC32,
    "source": _core.PROXY_HASHES["haproxy_source"],
}
SRV_EWGHT_RANGE = 256 * 16


def full_hash(a: np.ndarray) -> np.ndarray:
    """HAProxy's full_hash over a uint32 array."""
    a = a.astype(np.uint32)
    with np.errstate(over="ignore"):
        a = (a + np.uint32(0x7ED55D16)) + (a << np.uint32(12))
        a = (a ^ np.uint32(0xC761C23C)) ^ (a >> np.uint32(19))
        a = (a + np.uint32(0x165667B1)) + (a << np.uint32(5))
        a = (a + np.uint32(0xD3A2646C)) ^ (a << np.uint32(9))
        a = (a + np.uint32(0xFD7046C5)) + (a << np.uint32(3))
        a = (a ^ np.uint32(0xB55A4F09)) ^ (a >> np.uint32(16))
        out: np.ndarray = a * np.uint32(3221225473)
        return out


def _check_weight(weight: object) -> int:
    if isinstance(weight, bool) or not isinstance(weight, (int, np.integer, float)):
        raise TypeError(f"HAProxy weights are ints, not {type(weight).__name__}")
    if weight != int(weight) or not 0 <= weight <= 256:
        raise ValueError(f"HAProxy weights are ints in [0, 256], got {weight}")
    return int(weight)


def _check_id(sid: object) -> int | None:
    if sid is None:
        return None
    if isinstance(sid, bool) or not isinstance(sid, (int, np.integer)) or not 1 <= sid < 2**20:
        raise ValueError(f"HAProxy server ids are ints >= 1, got {sid!r}")
    return int(sid)


def assign_ids(written: Iterable[int | None]) -> list[int]:
    """Ids as HAProxy gives them: written ones kept, the rest the smallest free ids
    in config order."""
    ids = list(written)
    used = {i for i in ids if i is not None}
    if len(used) != sum(i is not None for i in ids):
        raise ValueError("two servers have the same id")
    out, nxt = [], 1
    for i in ids:
        if i is None:
            while nxt in used:
                nxt += 1
            i = nxt
            used.add(i)
        out.append(i)
    return out


@dataclass(frozen=True)
class HaproxyState:
    """Servers in backend order: (name, written id or None, weight, backup); the hash;
    the ``balance`` algorithm and options, which say what a text key is
    (``keys_of_text``); ``option allbackups``."""

    servers: tuple[tuple[str, int | None, int, bool], ...]
    function: str = "sdbm"
    avalanche: bool = True
    balance: str = ""  # the backend's ``balance`` line, where read from a config
    allbackups: bool = False

    name: ClassVar[str] = "haproxy"
    rule: ClassVar[int] = _core.RULE_NEAREST

    @classmethod
    def of(
        cls,
        servers: Iterable[Any],
        function: str = "sdbm",
        avalanche: bool | None = None,
        balance: str = "",
        *,
        allbackups: bool = False,
    ) -> HaproxyState:
        """``servers``: names, or ``(name, weight)`` / ``(name, weight, id)`` /
        ``(name, weight, id, backup)`` items, in backend order (``id`` None: assigned).
        ``avalanche`` None: HAProxy's default (on for the default function, when no
        function is written; and for "source", ``balance source`` under a
        ``hash-type consistent`` line without a function). Backup servers take keys only
        when no other server can: then the first of them takes them all, or, with
        ``allbackups``, they are hashed as the others would be."""
        if isinstance(servers, (str, bytes)):
            raise TypeError("servers must be a list of server names")
        if function not in HASH_FUNCTIONS:
            raise ValueError(
                f"unknown HAProxy hash function {function!r}: expected one of "
                f"{sorted(HASH_FUNCTIONS)}"
            )
        out: list[tuple[str, int | None, int, bool]] = []
        for item in servers:
            if isinstance(item, str):
                item = (item, 1)
            name, weight, *rest = item
            if len(rest) > 2:
                raise ValueError(f"a server is (name, weight[, id[, backup]]), not {item!r}")
            backup = rest[1] if len(rest) > 1 else False
            if not isinstance(backup, (bool, np.bool_)):
                raise TypeError(f"a server's backup flag is a bool, not {type(backup).__name__}")
            sid = _check_id(rest[0] if rest else None)
            out.append((check_node(name), sid, _check_weight(weight), bool(backup)))
        if len({s[0] for s in out}) != len(out):
            raise ValueError("a server name is listed twice")
        assign_ids(s[1] for s in out)
        if not isinstance(allbackups, (bool, np.bool_)):
            raise TypeError(f"allbackups is a bool, not {type(allbackups).__name__}")
        if avalanche is None:  # as when no function is written: sdbm avalanche
            avalanche = function in ("sdbm", "source")
        uri_options(balance)  # checked: a ValueError for options HAProxy refuses
        return cls(tuple(out), function, avalanche, balance, bool(allbackups))

    @property
    def algo(self) -> int:
        return HASH_FUNCTIONS[self.function] | (_core.AVALANCHE if self.avalanche else 0)

    @property
    def hash(self) -> str:
        return self.function + (" avalanche" if self.avalanche else "")

    @property
    def vnodes(self) -> int:
        return 16

    @property
    def weights(self) -> dict[str, float]:
        return {s[0]: float(s[2]) for s in self.servers}

    @property
    def ids(self) -> dict[str, int]:
        """Each server's id, as HAProxy assigns it."""
        ids = assign_ids(s[1] for s in self.servers)
        return {s[0]: i for s, i in zip(self.servers, ids, strict=True)}

    @property
    def hashed(self) -> list[tuple[str, int]]:
        """The servers whose points are looked up, with their weights (lb_chash.c,
        chash_get_server_hash): the active ones while any has a weight; else, with
        ``allbackups``, the backup ones, and without it the first backup alone."""
        active = [(n, w) for n, _, w, backup in self.servers if not backup]
        if any(w for _, w in active):
            return active
        backups = [(n, w) for n, _, w, backup in self.servers if backup and w]
        return backups if self.allbackups else backups[:1]

    def build(self) -> presets.Built:
        nodes = sort_nodes(s[0] for s in self.servers)
        ids, hashed = self.ids, self.hashed
        points = [
            full_hash(np.arange(w * 16, dtype=np.uint64) + ids[n] * SRV_EWGHT_RANGE)
            for n, w in hashed
        ]
        return nodes, presets.first_wins(points, nodes, (n for n, _ in hashed))

    def _with(self, servers: Iterable[Any]) -> HaproxyState:
        return HaproxyState.of(
            servers, self.function, self.avalanche, self.balance, allbackups=self.allbackups
        )

    def _items(self) -> list[tuple[str, int, int | None, bool]]:
        return [(n, w, i, b) for n, i, w, b in self.servers]

    def keys_of_text(self, lines: list[bytes]) -> list[bytes]:
        """What HAProxy hashes of each text line, by the backend's ``balance``: the
        packed address for ``source`` (each line a client address), the URI as
        ``uri`` cuts it (each line a request URI), the header's first value for
        ``hdr()`` (each line the header's value: ``hdr_keys``), else the line itself
        (the ``url_param`` value)."""
        if self.function == "source":
            return source_keys([k.decode("ascii", "replace").strip() for k in lines])
        words = self.balance.split()
        if words and words[0].startswith("hdr("):
            return hdr_keys(lines, use_domain_only="use_domain_only" in words[1:])
        options = uri_options(self.balance)
        return lines if options is None else uri_keys(lines, **options)

    def added(self, name: str, weight: object) -> HaproxyState:
        return self._with([*self._items(), (name, weight)])

    def removed(self, name: str) -> HaproxyState:
        return self._with(s for s in self._items() if s[0] != name)

    def reweighted(self, name: str, weight: object) -> HaproxyState:
        return self._with((n, weight if n == name else w, i, b) for n, w, i, b in self._items())

    def describe(self) -> dict[str, Any]:
        # a backup flag only where set, so that rings saved before it load the same
        return {
            "servers": [[n, w, i, True] if b else [n, w, i] for n, w, i, b in self._items()],
            "function": self.function,
            "avalanche": self.avalanche,
            "balance": self.balance,
            **({"allbackups": True} if self.allbackups else {}),
        }

    @classmethod
    def from_description(cls, d: dict[str, Any]) -> HaproxyState:
        servers = [tuple(s) for s in d["servers"]]
        return cls.of(
            servers,
            d["function"],
            bool(d["avalanche"]),
            d.get("balance", ""),
            allbackups=bool(d.get("allbackups", False)),
        )


def uri_options(balance: str) -> dict[str, Any] | None:
    """The options of a ``balance uri [whole] [len N] [depth N] [path-only]`` line as
    ``uri_keys`` takes them; None for another algorithm. A ValueError for what HAProxy
    refuses (backend.c, backend_parse_balance)."""
    if not isinstance(balance, str):
        raise TypeError(f"balance must be a str, not {type(balance).__name__}")
    words = balance.split()
    if not words or words[0] != "uri":
        return None
    out: dict[str, Any] = {"whole": False, "length": 0, "depth": 0, "path_only": False}
    rest = iter(words[1:])
    for word in rest:
        if word in ("len", "depth"):
            n = next(rest, "")
            if not n.isdigit() or int(n) <= 0:
                raise ValueError(f"balance uri: '{word}' expects a positive integer, not {n!r}")
            out["length" if word == "len" else "depth"] = int(n)
        elif word in ("whole", "path-only"):
            out[word.replace("-", "_")] = True
        else:
            raise ValueError(f"balance uri takes len, depth, path-only and whole, not {word!r}")
    return out


def hdr_keys(values: Iterable[str | bytes], *, use_domain_only: bool = False) -> list[bytes]:
    """What ``balance hdr(name) [use_domain_only]`` hashes of each header value
    (backend.c, get_server_hh): its first value (http_find_header: leading and trailing
    spaces and tabs dropped, cut at the first comma outside double quotes); with
    ``use_domain_only``, the label before the last dot (``www.example.com`` and
    ``example.com:8080`` hash as ``example``). HAProxy sends a request whose value is
    empty round robin; here it is the empty key."""
    out = []
    for value in values:
        v = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
        v = _first_value(v.lstrip(b" \t\r\n")).rstrip(b" \t\r\n")
        out.append(_domain_only(v) if use_domain_only else v)
    return out


def _first_value(v: bytes) -> bytes:
    """Up to the first comma outside double quotes (http_find_hdr_value_end; a
    backslash inside quotes escapes the next byte)."""
    if b'"' not in v:  # the common case: no quoted comma to step over
        return v.partition(b",")[0]
    quoted = escaped = False
    for i, c in enumerate(v):
        if escaped:
            escaped = False
        elif quoted:
            escaped, quoted = c == 0x5C, c != 0x22  # backslash, closing quote
        elif c == 0x22:
            quoted = True
        elif c == 0x2C:
            return v[:i]
    return v


def _domain_only(v: bytes) -> bytes:
    """get_server_hh's walk back from the end: from the last dot back to the dot
    before it (the position before the value's first byte is never looked at)."""
    p = end = n = len(v)
    hashing = False
    while p > 0:
        if hashing:
            if v[p - 1] == 0x2E:
                break
        elif p < n and v[p] == 0x2E:
            end, hashing = p, True
        p -= 1
    return v[p:end]


def uri_keys(
    uris: Iterable[str | bytes],
    *,
    whole: bool = False,
    length: int = 0,
    depth: int = 0,
    path_only: bool = False,
) -> list[bytes]:
    """What ``balance uri`` hashes of each request URI (backend.c, get_server_uh):
    with ``path_only``, an absolute URI's scheme and authority dropped; the first
    ``length`` bytes (0: all); up to the ``depth + 1``-th ``/`` (0: all) and up to
    the ``?`` unless ``whole``, neither included."""
    out = []
    for uri in uris:
        u = uri.encode("utf-8") if isinstance(uri, str) else bytes(uri)
        if path_only and not u.startswith(b"/"):  # absolute (or authority, or *) form
            rest = u.split(b"://", 1)[1] if b"://" in u else b""
            u = rest[rest.index(b"/") :] if b"/" in rest else b""
        if length:
            u = u[:length]
        end, slashes = 0, 0
        for c in u:
            if c == 0x2F:  # '/'
                slashes += 1
                if slashes == depth + 1 and depth:
                    break
            elif c == 0x3F and not whole:  # '?'
                break
            end += 1
        out.append(u[:end])
    return out


def source_keys(addresses: Iterable[Any]) -> list[bytes]:
    """The keys of a ``balance source`` ring: each client address (a str such as
    "10.0.0.7" or "2001:db8::1", an ``ipaddress`` address, or packed bytes already)
    as the packed bytes HAProxy hashes. An IPv4-mapped IPv6 address stays IPv6, as
    HAProxy sees it on an IPv6 socket."""
    out = []
    for a in addresses:
        if isinstance(a, (bytes, bytearray)):
            if len(a) not in (4, 16):
                raise ValueError(f"a packed address has 4 or 16 bytes, not {len(a)}")
            out.append(bytes(a))
        elif isinstance(a, (str, ipaddress.IPv4Address, ipaddress.IPv6Address)):
            out.append(ipaddress.ip_address(a).packed)
        else:
            raise TypeError(
                f"an address is a str, an ipaddress address or bytes, not {type(a).__name__}"
            )
    return out


presets.register("haproxy", HaproxyState.from_description)


# ---------------------------------------------------------------- haproxy.cfg

SECTIONS = (
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "resolvers",
    "peers",
    "userlist",
    "mailers",
    "program",
    "http-errors",
    "ring",
    "cache",
)
HASH_BALANCES = re.compile(r"^(uri|url_param|hdr\(.*\)|source|rdp-cookie.*|hash)$")

#: ``server`` / ``default-server`` keywords that take one argument (server.c's
#: keyword lists, HAProxy 2.6): their argument is skipped, never read as a keyword.
ARG_KEYWORDS = frozenset(
    """addr agent-addr agent-inter agent-port agent-send alpn ca-file check-alpn
    check-proto check-sni ciphers ciphersuites client-sigalgs cookie crl-file crt curves
    downinter error-limit fall fastinter id init-addr inter interface log-proto
    max-reuse maxconn maxqueue minconn namespace npn observe on-error on-marked-down
    on-marked-up pool-low-conn pool-max-conn pool-purge-delay port proto
    proxy-v2-options redir resolve-net resolve-opts resolve-prefer resolvers rise
    sigalgs slowstart sni socks4 source ssl-max-ver ssl-min-ver track usesrc verify
    verifyhost weight ws hash-key""".split()
)


@dataclass
class _Settings:
    """What a ``defaults`` section gives the backends after it (or that name it with
    ``from``), and what a backend has read so far: ``balance`` and ``hash-type``
    (with their lines), ``option allbackups``, and the ``default-server`` settings."""

    lines: dict[str, tuple[int, list[str]]]
    server: dict[str, Any]
    allbackups: bool = False

    @classmethod
    def empty(cls) -> _Settings:
        return cls({}, {"weight": 1, "disabled": False, "backup": False})

    def copy(self) -> _Settings:
        return _Settings(dict(self.lines), dict(self.server), self.allbackups)


def _server_words(words: list[str], base: dict[str, Any], at: str, default: bool) -> dict[str, Any]:
    """The settings of one ``server`` (or ``default-server``) line's keywords, from
    ``base``: ``weight``, ``id``, ``disabled``/``enabled``, ``backup``/``no-backup``;
    the others' arguments skipped."""
    out = dict(base)
    rest = iter(words)
    for k in rest:
        if k not in ARG_KEYWORDS:
            if k in ("disabled", "enabled"):
                out["disabled"] = k == "disabled"
            elif k in ("backup", "no-backup"):
                out["backup"] = k == "backup"
            continue
        v = next(rest, None)
        if v is None:
            raise ValueError(f"{at}: '{k}' expects an argument")
        if k == "id" and default:
            raise ValueError(f"{at}: 'id' is not allowed on default-server")
        if k == "hash-key" and v != "id":
            raise ValueError(
                f"{at}: 'hash-key {v}' (HAProxy 3.0) is not reproduced: this is HAProxy "
                "2.6's consistent hashing, whose points come from server ids"
            )
        if k in ("weight", "id"):
            try:
                out[k] = int(v)
            except ValueError:
                raise ValueError(f"{at}: bad '{k} {v}'") from None
    return out


def _template_names(prefix: str, count: str, at: str) -> list[str]:
    """``server-template <prefix> <num | low-high>``: prefix1 .. prefixN, in order."""
    low, sep, high = count.partition("-")
    if not (low.isdigit() and (high.isdigit() if sep else True)):
        raise ValueError(f"{at}: bad server-template count {count!r}")
    first, last = (int(low), int(high)) if sep else (1, int(low))
    if not 1 <= first <= last:
        raise ValueError(f"{at}: bad server-template range {count!r}")
    return [f"{prefix}{i}" for i in range(first, last + 1)]


def parse_haproxy(cfg_text: str, backend: str) -> HaproxyState:
    """The servers and hash of ``backend NAME`` (or ``listen NAME``) in a haproxy.cfg
    text, with ``balance``, ``hash-type``, ``option allbackups`` and ``default-server``
    inherited from the ``defaults`` section before it (or the one it names with
    ``from``); ``server-template`` lines make their servers (all taken as up); a clear
    ValueError naming the line for what the preset does not reproduce."""
    section, name = None, None
    named: dict[str, _Settings] = {}
    last = _Settings.empty()  # the defaults a backend without 'from' inherits
    here = last  # the settings of the section being read
    servers: list[tuple[str, int, int | None, bool]] = []
    start = None
    for lineno, raw in enumerate(cfg_text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        at = f"haproxy.cfg line {lineno}"
        try:
            words = shlex.split(line)
        except ValueError as e:
            raise ValueError(f"{at}: {e}") from None
        if words[0] in SECTIONS:
            if section in ("backend", "listen") and name == backend:
                break
            section, name, parent = words[0], None, None
            args = words[1:]
            if args and args[0] != "from":
                name, args = args[0], args[1:]
            if len(args) == 2 and args[0] == "from":
                parent = args[1]
                if parent not in named:
                    raise ValueError(f"{at}: defaults section {parent!r} not found")
            if section == "defaults":
                here = named[parent].copy() if parent else _Settings.empty()
                last = here
                if name:
                    named[name] = here
            elif section in ("backend", "listen"):
                here = (named[parent] if parent else last).copy()
                if name == backend:
                    start = lineno
            continue
        mine = section in ("backend", "listen") and name == backend
        if not (section == "defaults" or mine):
            continue
        if words[0] in ("balance", "hash-type", "hash-balance-factor"):
            here.lines[words[0]] = (lineno, words[1:])
        elif words[:2] == ["option", "allbackups"] or words[:3] == ["no", "option", "allbackups"]:
            here.allbackups = words[0] == "option"
        elif words[0] == "default-server":
            here.server = _server_words(words[1:], here.server, at, default=True)
        elif not mine:
            continue
        elif words[0] in ("server", "server-template"):
            template = words[0] == "server-template"
            if len(words) < (4 if template else 3):
                raise ValueError(f"{at}: '{words[0]}' needs a name and an address")
            opts = _server_words(words[(4 if template else 3) :], here.server, at, False)
            if template and "id" in opts:
                raise ValueError(f"{at}: 'id' is not allowed on server-template")
            # a server that starts disabled (maintenance) keeps its id and has no points
            weight = 0 if opts["disabled"] else opts["weight"]
            for srv in _template_names(words[1], words[2], at) if template else [words[1]]:
                servers.append((srv, weight, opts.get("id"), opts["backup"]))
    if start is None:
        raise ValueError(f"no 'backend {backend}' or 'listen {backend}' in the haproxy.cfg text")
    own = here.lines
    fline, factor = own.get("hash-balance-factor", (start, ["0"]))
    if factor[:1] != ["0"]:  # (0: off) bounded loads follow live connection counts
        raise ValueError(f"haproxy.cfg line {fline}: 'hash-balance-factor' is not reproduced")
    bline, balance = own.get("balance", (start, ["roundrobin"]))
    if not balance or not HASH_BALANCES.match(balance[0]):
        raise ValueError(
            f"haproxy.cfg line {bline}: 'balance {' '.join(balance)}' does not hash keys "
            "(consistent hashing needs uri, url_param, hdr(), source, rdp-cookie or hash)"
        )
    hline, htype = own.get("hash-type", (start, ["map-based"]))
    if not htype or htype[0] != "consistent":
        raise ValueError(
            f"haproxy.cfg line {hline}: backend {backend} does not use 'hash-type consistent'"
        )
    function = htype[1] if len(htype) > 1 else "sdbm"
    if function not in HASH_FUNCTIONS or function == "source":
        raise ValueError(f"haproxy.cfg line {hline}: unknown hash function {function!r}")
    if len(htype) > 2 and htype[2] != "avalanche":
        raise ValueError(f"haproxy.cfg line {hline}: unknown modifier {htype[2]!r}")
    avalanche = len(htype) == 1 or (len(htype) > 2 and htype[2] == "avalanche")
    if balance[0] == "source":  # the address is hashed its own way: only avalanche applies
        function = "source"
    if not servers:
        raise ValueError(f"haproxy.cfg line {start}: backend {backend} has no server")
    try:
        return HaproxyState.of(
            servers, function, avalanche, " ".join(balance), allbackups=here.allbackups
        )
    except (TypeError, ValueError) as e:
        raise ValueError(f"haproxy.cfg backend {backend}: {e}") from None
