"""nginx ``hash $key consistent`` (ngx_http_upstream_hash_module, nginx 1.22).

The rule, from the module's source (``ngx_http_upstream_update_chash``):

- A server is named by its ``server`` text as written (``127.0.0.1:8080``,
  ``backend.local:80``, ``unix:/run/app.sock``): that text, not the address it
  resolves to, is hashed, so ``localhost:8080`` and ``127.0.0.1:8080`` route
  differently. It is split at its last colon when only digits (or none) follow
  (``host``, ``port``; else the whole text is the host and the port is empty;
  ``unix:`` texts hash the path), and ``base = crc32(host + b"\\0" + port)``.
- A server of weight ``w`` gets ``160 * w`` points: point ``j`` is ``base``
  continued over the previous point's 4 bytes little-endian (0 for the first),
  i.e. ``crc32(host \\0 port prev)``; ``down`` servers too.
- Points are sorted (a stable sort: equal points keep config order) and a point
  equal to the one before is dropped. A key belongs to the first point
  ``>= crc32(key)``, wrapping, stepping over the points of ``down`` servers (so a
  point a live server shares with a down one listed before it is the down one's,
  and its keys go on); the key is the evaluated ``hash`` expression (``$arg_key``
  is the raw query value, not URL-decoded).
- Where nginx does not hash, the preset still answers: an empty key, and a key
  whose point and the 20 after it are all down servers' (about ``(d/n)**21`` of
  keys with ``d`` of ``n`` equal servers down), go round robin in nginx
  (``ngx_http_upstream_get_chash_peer``); the preset gives the next live point.
- ``backup`` servers (nginx allows them before the ``hash`` line) are not hashed.
"""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterable, Mapping
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
    if sep and (port.isdigit() or not port):  # (nginx's loop: digits back to a colon)
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
        # A down server's points stay in the continuum (nginx builds it from every
        # server and skips a down one's point at lookup), so a point it shares with a
        # live server is still its own, and the keys there go on to the next point.
        nodes = sort_nodes(t for t, _, _ in self.servers)
        ring = presets.first_wins(
            [nginx_points(t, w) for t, w, _ in self.servers], nodes, (t for t, _, _ in self.servers)
        )
        downs = {t for t, _, d in self.servers if d}
        if ring is None or not downs:
            return nodes, ring
        points, owners = ring
        live = ~np.array([n in downs for n in nodes])[owners]
        return nodes, (points[live], owners[live]) if live.any() else None

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


def _blocks(
    parsed: list[dict[str, Any]], context: str = ""
) -> Iterable[tuple[str, dict[str, Any]]]:
    """Every directive, with the top-level block it is in (``http``, ``stream``)."""
    for d in parsed:
        yield context, d
        yield from _blocks(d.get("block") or [], context or d["directive"])


#: The balancing directives nginx has besides ``hash``; in an upstream block the last
#: balancing directive is the one nginx uses (an earlier one is "redefined").
UNSUPPORTED_BALANCERS = {"ip_hash", "least_conn", "random", "least_time", "sticky", "ntlm"}


def parse_nginx(conf_text: str | os.PathLike[str], upstream: str) -> NginxState:
    """The servers of ``upstream NAME { hash ... consistent; ... }`` in an nginx.conf
    text, or in the nginx.conf at a path (``pathlib.Path``), whose ``include``s are
    read as nginx reads them (relative to that file's directory, globs expanded); a
    clear ValueError naming the file and line for anything else."""
    cp = _crossplane()
    options: dict[str, Any] = dict(check_ctx=False, check_args=False, comments=False)
    if isinstance(conf_text, str):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "nginx.conf"
            path.write_text(conf_text, encoding="utf-8")
            result = cp.parse(str(path), single=True, **options)
    elif isinstance(conf_text, os.PathLike):
        path = Path(conf_text)
        if not path.is_file():
            raise FileNotFoundError(f"no nginx.conf at {str(path)!r}")
        result = cp.parse(str(path), single=False, **options)
    else:
        raise TypeError(
            f"conf_text must be the text (str) or a path (os.PathLike), not "
            f"{type(conf_text).__name__}"
        )
    text = isinstance(conf_text, str)

    def name(file: str) -> str:  # what errors call a file: a text is "nginx.conf"
        return "nginx.conf" if text else file

    if result["errors"]:
        e = result["errors"][0]
        raise ValueError(f"{name(e.get('file', ''))} line {e.get('line')}: {e.get('error')}")
    # "stream:name" / "http:name": the one of that context (nginx keeps the upstreams
    # of http and of stream apart, so both may have one of a name)
    context, sep, bare = upstream.rpartition(":")
    if not sep or context not in ("http", "stream"):
        context, bare = "", upstream
    found = [
        (config["file"], d)
        for config in result["config"]
        for ctx, d in _blocks(config["parsed"])
        if d["directive"] == "upstream" and d["args"] == [bare] and context in ("", ctx)
    ]
    if len(found) > 1:
        raise ValueError(
            f"upstream {bare!r} is defined {len(found)} times ("
            + ", ".join(f"{name(f)} line {d['line']}" for f, d in found)
            + f"): name one as 'http:{bare}' or 'stream:{bare}'"
        )
    if not found:
        files = [c["file"] for c in result["config"]]
        where = "the nginx.conf text" if text else files[0]
        if len(files) > 1:
            where += f" or the {len(files) - 1} file(s) it includes"
        inside = f" in a {context} block" if context else ""
        raise ValueError(f"no 'upstream {bare}' block{inside} in {where}")
    file, block = found[0]
    return _upstream(block, bare, lambda line: f"{name(file)} line {line}")


def _upstream(block: dict[str, Any], upstream: str, at: Callable[[int], str]) -> NginxState:
    """One ``upstream`` block's servers, as nginx reads them: the last balancing
    directive decides (``hash <key> consistent``, or a refusal); a ``backup`` server,
    which nginx accepts only before the ``hash`` line, takes no part in the hashing
    (nginx reaches it only when it falls back to round robin)."""
    directives = block["block"]
    balancing = ("hash", *UNSUPPORTED_BALANCERS)
    last = next((d for d in reversed(directives) if d["directive"] in balancing), None)
    if last is not None and last["directive"] in UNSUPPORTED_BALANCERS:
        raise ValueError(f"{at(last['line'])}: '{last['directive']}' is not consistent hashing")
    if last is None or last["args"][-1:] != ["consistent"] or len(last["args"]) != 2:
        raise ValueError(
            f"{at((last or block)['line'])}: upstream {upstream} does not use "
            "'hash <key> consistent;' (the only nginx balancing this preset reproduces)"
        )
    servers: list[tuple[str, int, bool]] = []
    refuses_backup = None  # the balancing directive in force, if it refuses 'backup'
    for d in directives:
        if d["directive"] in ("hash", "ip_hash", "random"):
            refuses_backup = d["directive"]
        elif d["directive"] == "least_conn":
            refuses_backup = None
        if d["directive"] != "server":
            continue
        text, weight, down, backup = d["args"][0], 1, False, False
        for arg in d["args"][1:]:
            if arg.startswith("weight="):
                try:
                    weight = int(arg[7:])
                except ValueError:
                    raise ValueError(f"{at(d['line'])}: bad {arg!r}") from None
            elif arg == "down":
                down = True
            elif arg == "backup":
                if refuses_backup is not None:
                    raise ValueError(
                        f"{at(d['line'])}: nginx refuses 'backup' servers after "
                        f"'{refuses_backup}' (invalid parameter \"backup\")"
                    )
                backup = True
        if not backup:
            servers.append((text, weight, down))
    if not servers:
        raise ValueError(f"{at(block['line'])}: upstream {upstream} has no server")
    try:
        return NginxState.of(servers)
    except (TypeError, ValueError) as e:
        raise ValueError(f"nginx.conf upstream {upstream}: {e}") from None
