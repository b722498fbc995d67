"""nginx ``hash $key consistent`` (ngx_http_upstream_hash_module, nginx 1.22).

The rule, from the module's source (``ngx_http_upstream_update_chash``):

- A server is named by its ``server`` text as written (``127.0.0.1:8080``,
  ``backend.local:80``, ``unix:/run/app.sock``): that text, not the address it
  resolves to, is hashed, so ``localhost:8080`` and ``127.0.0.1:8080`` route
  differently. It is split at its last colon when only digits follow
  (``host``, ``port``; else the whole text is the host and the port is empty;
  ``unix:`` texts hash the path), and ``base = crc32(host + b"\\0" + port)``.
- A server of weight ``w`` gets ``160 * w`` points: point ``j`` is ``base``
  continued over the previous point's 4 bytes little-endian (0 for the first),
  i.e. ``crc32(host \\0 port prev)``. ``down`` servers get none (their keys go
  to the next point, as nginx skips them).
- Points are sorted (a stable sort: equal points keep config order) and a point
  equal to the one before is dropped. A key belongs to the first point
  ``>= crc32(key)``, wrapping; the key is the evaluated ``hash`` expression
  (``$arg_key`` is the raw query value, not URL-decoded).
"""

from __future__ import annotations

import struct
import tempfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from . import _core, presets
from ._rule import check_node, sort_nodes

__all__ = ["NginxState", "parse_nginx"]


def _host_port(text: str) -> tuple[bytes, bytes]:
    raw = text.encode("utf-8")
    if raw[:5].lower() == b"unix:":
        return raw[5:], b""
    host, sep, port = raw.rpartition(b":")
    if sep and port.isdigit():
        return host, port
    return raw, b""


def nginx_points(text: str, weight: int) -> np.ndarray:
    """The ``160 * weight`` points of one ``server`` text."""
    host, port = _host_port(text)
    base = zlib.crc32(host + b"\0" + port)
    out = np.empty(160 * weight, dtype=np.uint32)
    prev = 0
    for j in range(len(out)):
        prev = zlib.crc32(struct.pack("<I", prev), base)
        out[j] = prev
    return out


def _check_weight(weight: object) -> int:
    if isinstance(weight, bool) or not isinstance(weight, (int, np.integer)):
        raise TypeError(f"nginx weights are ints, not {type(weight).__name__}")
    if weight < 1:
        raise ValueError(f"nginx weights must be >= 1, got {weight}")
    return int(weight)


@dataclass(frozen=True)
class NginxState:
    """Servers in upstream order: (text, weight, down)."""

    servers: tuple[tuple[str, int, bool], ...]

    name: ClassVar[str] = "nginx"
    algo: ClassVar[int] = _core.CRC32
    rule: ClassVar[int] = _core.RULE_GE
    hash: ClassVar[str] = "crc32"

    @classmethod
    def of(cls, servers: Mapping[str, int] | Iterable[Any]) -> NginxState:
        """``servers``: ``{"text": weight}``, or items ``text``, ``(text, weight)`` or
        ``(text, weight, down)``, in upstream order."""
        if isinstance(servers, (str, bytes)):
            raise TypeError("servers must be a list or mapping of server texts")
        items = list(servers.items()) if isinstance(servers, Mapping) else list(servers)
        out: list[tuple[str, int, bool]] = []
        seen: set[str] = set()
        for item in items:
            if isinstance(item, str):
                item = (item, 1)
            text, weight, *rest = item
            text = check_node(text)
            if text in seen:
                raise ValueError(f"server {text!r} is listed twice")
            seen.add(text)
            out.append((text, _check_weight(weight), bool(rest[0]) if rest else False))
        return cls(tuple(out))

    @property
    def vnodes(self) -> int:
        return 160

    @property
    def weights(self) -> dict[str, float]:
        return {t: float(w) for t, w, _ in self.servers}

    def build(self) -> presets.Built:
        nodes = sort_nodes(t for t, _, _ in self.servers)
        live = [(t, w) for t, w, down in self.servers if not down]
        return nodes, presets.first_wins(
            [nginx_points(t, w) for t, w in live], nodes, (t for t, _ in live)
        )

    def added(self, name: str, weight: object) -> NginxState:
        return NginxState.of([*self.servers, (name, weight)])

    def removed(self, name: str) -> NginxState:
        return NginxState(tuple(s for s in self.servers if s[0] != name))

    def reweighted(self, name: str, weight: object) -> NginxState:
        w = _check_weight(weight)
        return NginxState(tuple((t, w if t == name else ow, d) for t, ow, d in self.servers))

    def describe(self) -> dict[str, Any]:
        return {"servers": [[t, w, d] for t, w, d in self.servers]}

    @classmethod
    def from_description(cls, d: dict[str, Any]) -> NginxState:
        return cls.of([tuple(s) for s in d["servers"]])


presets.register("nginx", NginxState.from_description)


# ---------------------------------------------------------------- nginx.conf


def _crossplane() -> Any:
    try:
        import crossplane  # nginx's own configuration parser
    except ImportError:  # pragma: no cover - exercised where the extra is absent
        raise ImportError(
            "reading nginx.conf needs crossplane: pip install 'ringhash[nginx]'"
        ) from None
    return crossplane


def _blocks(parsed: list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for d in parsed:
        yield d
        yield from _blocks(d.get("block") or [])


UNSUPPORTED_BALANCERS = {"ip_hash", "least_conn", "random", "least_time", "sticky", "ntlm"}


def parse_nginx(conf_text: str, upstream: str) -> NginxState:
    """The servers of ``upstream NAME { hash ... consistent; ... }`` in an nginx.conf
    text (a clear ValueError naming the line for anything else)."""
    cp = _crossplane()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "nginx.conf"
        path.write_text(conf_text, encoding="utf-8")
        result = cp.parse(str(path), single=True, check_ctx=False, check_args=False, comments=False)
    if result["errors"]:
        e = result["errors"][0]
        raise ValueError(f"nginx.conf line {e.get('line')}: {e.get('error')}")
    found = [
        d
        for d in _blocks(result["config"][0]["parsed"])
        if d["directive"] == "upstream" and d["args"] == [upstream]
    ]
    if not found:
        raise ValueError(f"no 'upstream {upstream}' block in the nginx.conf text")
    block = found[0]
    hashing = [d for d in block["block"] if d["directive"] == "hash"]
    if not hashing or hashing[0]["args"][-1:] != ["consistent"]:
        raise ValueError(
            f"nginx.conf line {block['line']}: upstream {upstream} does not use "
            "'hash <key> consistent;' (the only nginx balancing this preset reproduces)"
        )
    servers: list[tuple[str, int, bool]] = []
    for d in block["block"]:
        if d["directive"] in UNSUPPORTED_BALANCERS:
            raise ValueError(
                f"nginx.conf line {d['line']}: '{d['directive']}' is not consistent hashing"
            )
        if d["directive"] != "server":
            continue
        text, weight, down = d["args"][0], 1, False
        for arg in d["args"][1:]:
            if arg.startswith("weight="):
                try:
                    weight = int(arg[7:])
                except ValueError:
                    raise ValueError(f"nginx.conf line {d['line']}: bad {arg!r}") from None
            elif arg == "down":
                down = True
            elif arg == "backup":
                raise ValueError(
                    f"nginx.conf line {d['line']}: nginx refuses 'backup' servers with hash"
                )
        servers.append((text, weight, down))
    if not servers:
        raise ValueError(f"nginx.conf line {block['line']}: upstream {upstream} has no server")
    try:
        return NginxState.of(servers)
    except (TypeError, ValueError) as e:
        raise ValueError(f"nginx.conf upstream {upstream}: {e}") from None
