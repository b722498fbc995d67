"""The presets against the real programs, started here on 127.0.0.1: nginx,
HAProxy, nutcracker (twemproxy) in front of memcached, pylibmc built against
libmemcached 1.1.4, and pymemcache's HashClient. Thousands of keys (ASCII ids,
random URL-safe text, non-ASCII UTF-8 inside and at the end) are sent through each, the backend that
received each key is recorded, and the preset must agree on every one. A test
skips, with the reason, where its program is absent; .ci/run installs them all.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import random
import socket
import string
import subprocess
import urllib.parse
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from proxy_models import forge_crc32
from realservers import (
    NATIVE_CHAR,
    Memcache,
    aarch64,
    flush,
    free_ports,
    memcached_at,
    memcacheds,
    need,
    owners_by_lookup,
    running,
)
from ringhash import HashRing, PymemcacheHash
from ringhash.cli import main
from ringhash.haproxy import source_keys, uri_keys, uri_options
from ringhash.nginx import nginx_points

pytestmark = pytest.mark.timeout(240)

NON_ASCII = ["ñandú", "中文键", "ключ", "مفتاح", "clé-é", "😀emoji", "ü"]


def keys_for(n: int = 2000, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + "-_.~"
    out = [f"user:{rng.randrange(10**7)}" for _ in range(n // 2)]
    out += ["".join(rng.choices(alphabet, k=rng.randrange(1, 40))) for _ in range(n // 2 - 70)]
    out += [f"{w}:{i}" for i in range(10) for w in NON_ASCII]
    out += [f"{i}:{w}" for i in range(10) for w in NON_ASCII]  # ending in a high byte
    return list(dict.fromkeys(out))


def http_owners(port: int, keys: Sequence[str], quote: bool) -> tuple[list[str], list[str]]:
    """GET /?key=K through a proxy (raw UTF-8 in the request line unless ``quote``);
    the backends answer with their names. Returns (the key text the proxy hashed,
    the backend) per key."""
    hashed = [urllib.parse.quote(k, safe=":-_.~") if quote else k for k in keys]
    return hashed, fetch_owners(port, [b"/?key=" + text.encode() for text in hashed])


def fetch_owners(
    port: int, targets: Sequence[bytes], headers: Sequence[bytes] | None = None
) -> list[str]:
    """GET each request target through a proxy, on keep-alive connections of 500
    requests (under the proxies' per-connection limits); the backend of each, by the
    name it answers with, or the ``x-server`` header a proxy added (HAProxy's server
    name, for servers that share an address). ``headers``: a header line per request
    (a ``Host:`` one instead of the default)."""
    owners = []
    for start in range(0, len(targets), 500):
        sock = socket.create_connection(("127.0.0.1", port), 10)
        reader = sock.makefile("rb")
        try:
            for i, target in enumerate(targets[start : start + 500], start):
                extra = headers[i] if headers is not None else b""
                host = b"" if extra.lower().startswith(b"host:") else b"Host: t\r\n"
                extra = extra + b"\r\n" if extra else b""
                sock.sendall(b"GET " + target + b" HTTP/1.1\r\n" + host + extra + b"\r\n")
                status = reader.readline()
                length, server = 0, None
                while (line := reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                    elif name.strip().lower() == b"x-server":
                        server = value.strip().decode()
                body = reader.read(length).decode()
                if b" 200 " not in status:
                    raise RuntimeError(f"{target!r}: {status!r} {body!r}")
                owners.append(body if server is None else server)
        finally:
            reader.close()
            sock.close()
    return owners


# ---------------------------------------------------------------- nginx

NGINX_CASES = {
    "equal": [("127.0.0.1:{0}", 1), ("127.0.0.1:{1}", 1), ("127.0.0.1:{2}", 1)],
    "weighted": [
        ("127.0.0.1:{0}", 1),
        ("127.0.0.1:{1}", 3),
        ("127.0.0.1:{2}", 2),
        ("127.0.0.1:{3}", 1),
    ],
    "removed": [("127.0.0.1:{0}", 1), ("127.0.0.1:{2}", 2), ("127.0.0.1:{3}", 1)],
    # the same address written two ways routes differently: the text is hashed
    "names": [("127.0.0.1:{0}", 1), ("127.1:{1}", 1), ("127.0.0.1:{2}", 1)],
}


def nginx_conf(
    tmp_path: pathlib.Path, backends: dict[str, str], upstreams: dict[str, tuple[int, str]]
) -> str:
    """An nginx.conf: a server per backend, listening where given (``127.0.0.1:p`` or
    ``unix:/path``) and answering every request with its name; and per upstream
    (front port, the lines inside its block) a front on that port proxying to it."""
    temps = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    for d in temps:
        (tmp_path / d).mkdir(exist_ok=True)
    http = "".join(f"  {d}_temp_path {tmp_path}/{d};\n" for d in temps)
    http += "".join(
        f"  server {{ listen {where}; location / {{ return 200 '{name}'; }} }}\n"
        for name, where in backends.items()
    )
    for name, (front, body) in upstreams.items():
        http += f"  upstream {name} {{\n{body}  }}\n"
        http += f"  server {{ listen 127.0.0.1:{front}; location / {{\n"
        http += f"    proxy_pass http://{name}; proxy_next_upstream off; }} }}\n"
    # a failed backend is an error (502), never a retry on another server; as root,
    # nginx's workers would run as nobody, who cannot reach a socket in tmp_path
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"daemon off;\n{user}worker_processes 1;\npid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/error.log;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n  access_log off;\n{http}}}\n"
    )


def nginx_running(tmp_path: pathlib.Path, conf: str, listens: Sequence[Any]) -> Any:
    (tmp_path / "nginx.conf").write_text(conf)
    cmd = [need("nginx"), "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
    return running(cmd, listens)


def test_nginx(tmp_path):
    need("nginx")
    ports = free_ports(4 + len(NGINX_CASES))  # all distinct
    backends = ports[:4]
    fronts = dict(zip(NGINX_CASES, ports[4:], strict=True))
    upstreams, texts = {}, {}
    for name, spec in NGINX_CASES.items():
        lines = [(t.format(*backends), w) for t, w in spec]
        texts[name] = lines
        body = "".join(f"    server {t} weight={w};\n" for t, w in lines)
        upstreams[f"up_{name}"] = (fronts[name], f"    hash $arg_key consistent;\n{body}")
    conf = nginx_conf(tmp_path, {str(p): f"127.0.0.1:{p}" for p in backends}, upstreams)
    keys = keys_for()
    with nginx_running(tmp_path, conf, [*backends, *fronts.values()]):
        for name, lines in texts.items():
            ring = HashRing.from_nginx(conf, f"up_{name}")
            by_port = {t.rsplit(":", 1)[1]: t for t, _ in lines}
            for quote in (True, False):  # percent-encoded, and raw UTF-8 on the wire
                hashed, owners = http_owners(fronts[name], keys, quote)
                want = [by_port[o] for o in owners]
                assert ring.get_many(hashed) == want, (name, quote)
    names = HashRing.from_nginx(conf, "up_names")
    assert names.get_many(keys) != HashRing.nginx(
        [t.replace("127.1", "127.0.0.1") for t, _ in texts["names"]]
    ).get_many(keys)


def test_nginx_down_backup_include(tmp_path):
    """A ``down`` server's point that a live server's point equals is still the down
    server's (nginx builds the continuum from every server and skips a down one's
    points at lookup): keys there go on to the next point, not to the live server.
    A ``backup`` server before the ``hash`` line takes no keys. The upstreams are
    in a file the nginx.conf includes, and the ring is read from the nginx.conf."""
    need("nginx")
    ports = free_ports(3)
    live, front, front_backup = f"127.0.0.1:{ports[0]}", ports[1], ports[2]
    down = "127.0.0.1:1"  # never connected to: down
    # B: a unix socket whose path is chosen so that B's first point is one of the
    # down server's points, and the next live point after it is the other server's
    live_points = nginx_points(live, 1)
    prefix = f"{tmp_path}/b".encode()
    for target in nginx_points(down, 1):
        tail = forge_crc32(prefix, b".sock" + b"\0" * 5, int(target))
        if tail is None:
            continue
        path = (prefix + tail).decode() + ".sock"
        b_points = nginx_points(f"unix:{path}", 1)
        points = np.unique(np.concatenate([nginx_points(down, 1), b_points, live_points]))
        after = points[points > target]
        if b_points[0] == target and len(after) and after[0] in live_points:
            break
    else:
        pytest.fail("no target gave a collision whose next point is the live server's")
    unix = f"unix:{path}"
    assert b_points[0] == target  # the premise: the down server and B share a point
    servers = f"    server {down} down;\n    server {unix};\n    server {live};\n"
    upstreams = {
        "shared": (front, f"    hash $arg_key consistent;\n{servers}"),
        "backup": (
            front_backup,
            f"    server {unix} backup;\n    hash $arg_key consistent;\n"
            f"    server {live};\n    server {down} down;\n",
        ),
    }
    conf = nginx_conf(tmp_path, {"B": unix, "live": live}, upstreams)
    start, end = conf.index("  upstream "), conf.rindex("}")
    (tmp_path / "upstreams.conf").write_text(conf[start:end])
    conf = conf[:start] + "  include upstreams.conf;\n" + conf[end:]
    # keys in the shared point's arc, (the point before, target], and keys anywhere
    before = points[points < target]
    low = int(before[-1]) if len(before) else -1
    hashes = [int(target), *(random.Random(1).randrange(low + 1, target + 1) for _ in range(49))]
    arc = ["k" + (forge_crc32(b"k", b"", h) or b"").decode() for h in hashes]
    assert [zlib.crc32(k.encode()) for k in arc] == hashes
    keys = arc + keys_for(500)
    by_name = {"B": unix, "live": live}
    with nginx_running(tmp_path, conf, [*ports[:3], path]):
        ring = HashRing.from_nginx(tmp_path / "nginx.conf", "shared")
        hashed, owners = http_owners(front, keys, quote=True)
        assert ring.get_many(hashed) == [by_name[o] for o in owners]
        assert {by_name[o] for o in owners[:50]} == {live}  # not B, whose point it shares
        backup = HashRing.from_nginx(tmp_path / "nginx.conf", "backup")
        assert set(backup.nodes) == {live, down}  # B is a backup: not hashed
        hashed, owners = http_owners(front_backup, keys, quote=True)
        assert backup.get_many(hashed) == [by_name[o] for o in owners] == [live] * len(keys)
    shared = HashRing.from_nginx(tmp_path / "nginx.conf", "shared")
    assert shared.get_many(arc) == [live] * 50
    # the command line reads the nginx.conf the same way (its include followed)
    (tmp_path / "keys").write_text("".join(f"{k}\n" for k in arc))
    conf_path, out = str(tmp_path / "nginx.conf"), str(tmp_path / "routed")
    assert (
        main(
            [
                "route",
                str(tmp_path / "keys"),
                "--nginx",
                conf_path,
                "--upstream",
                "shared",
                "-o",
                out,
            ]
        )
        == 0
    )
    assert [x.split("\t")[1] for x in pathlib.Path(out).read_text().splitlines()] == [live] * 50


# ---------------------------------------------------------------- HAProxy

HAPROXY_CASES = {
    "default": ("", [("s1", 1, None), ("s2", 1, None), ("s3", 1, None)]),
    "weighted": ("", [("s1", 1, None), ("s2", 3, None), ("s3", 2, None), ("s4", 1, None)]),
    "removed": ("", [("s1", 1, None), ("s3", 2, None), ("s4", 1, None)]),  # ids renumbered
    "ids": ("", [("s1", 1, 5), ("s2", 1, None), ("s3", 2, 1)]),
    "sdbm": ("sdbm", [("s1", 1, None), ("s2", 2, None), ("s3", 1, None)]),
    "djb2": ("djb2", [("s1", 1, None), ("s2", 2, None), ("s3", 1, None)]),
    "wt6": ("wt6", [("s1", 1, None), ("s2", 2, None), ("s3", 1, None)]),
    "crc32": ("crc32", [("s1", 1, None), ("s2", 2, None), ("s3", 1, None)]),
    "djb2-avalanche": ("djb2 avalanche", [("s1", 1, None), ("s2", 2, None), ("s3", 1, None)]),
    "crc32-avalanche": ("crc32 avalanche", [("s1", 1, None), ("s2", 2, None), ("s3", 1, None)]),
    # no traffic, ids kept: s3 keeps id 3, so its keys stay where they were
    "weight0": ("", [("s1", 1, None), ("s2", 0, None), ("s3", 2, None), ("s4", 1, None)]),
    "disabled": ("", [("s1", 1, None), ("s2", 1, "disabled"), ("s3", 2, None), ("s4", 1, None)]),
}


def haproxy_with_backends(backends: dict[str, int]) -> str:
    """A haproxy.cfg's start: HTTP defaults, and a frontend per backend server on its
    port that answers every request with the server's name."""
    cfg = "global\n    maxconn 256\ndefaults\n    mode http\n    timeout connect 5s\n"
    cfg += "    timeout client 30s\n    timeout server 30s\n"
    for s, port in backends.items():
        cfg += f"frontend be_{s}\n    bind 127.0.0.1:{port}\n"
        cfg += f'    http-request return status 200 content-type text/plain string "{s}"\n'
    return cfg


def haproxy_listens(backends: dict[str, int], listens: dict[str, tuple[int, str, str]]) -> str:
    """A haproxy.cfg: ``haproxy_with_backends``, and per name (port, balance line,
    hash function) a ``listen`` section over s1..s4, weighted 1, 2, 1, 1."""
    cfg = haproxy_with_backends(backends)
    for name, (port, balance, function) in listens.items():
        cfg += f"listen {name}\n    bind 127.0.0.1:{port}\n    balance {balance}\n"
        cfg += f"    hash-type consistent {function}\n"
        for s, w in (("s1", 1), ("s2", 2), ("s3", 1), ("s4", 1)):
            cfg += f"    server {s} 127.0.0.1:{backends[s]} weight {w}\n"
    return cfg


def test_haproxy(tmp_path):
    exe = need("haproxy")
    ports = free_ports(4 + len(HAPROXY_CASES))  # all distinct
    backends = dict(zip(("s1", "s2", "s3", "s4"), ports[:4], strict=True))
    fronts = dict(zip(HAPROXY_CASES, ports[4:], strict=True))
    cfg = haproxy_with_backends(backends)
    for name, (function, servers) in HAPROXY_CASES.items():
        cfg += (
            f"frontend fe_{name}\n    bind 127.0.0.1:{fronts[name]}\n    default_backend {name}\n"
        )
        cfg += f"backend {name}\n    balance url_param key\n    hash-type consistent {function}\n"
        for s, w, sid in servers:
            cfg += f"    server {s} 127.0.0.1:{backends[s]} weight {w}"
            cfg += " disabled\n" if sid == "disabled" else f" id {sid}\n" if sid else "\n"
    (tmp_path / "haproxy.cfg").write_text(cfg)
    keys = keys_for()
    with running([exe, "-db", "-f", str(tmp_path / "haproxy.cfg")], [*fronts.values()]):
        for name in HAPROXY_CASES:
            hashed, owners = http_owners(fronts[name], keys, quote=True)
            ring = HashRing.from_haproxy(cfg, name)
            assert ring.get_many(hashed) == owners, name


HAPROXY_SETTINGS = """\
defaults base
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    balance url_param key
    hash-type consistent
    default-server weight 2 inter 2s

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    balance url_param key
    hash-type consistent crc32

listen inherits
    bind 127.0.0.1:{f0}
    http-after-response set-header x-server %[srv_name]
    default-server weight 4 cookie backup
    server a 127.0.0.1:{s1}
    server b 127.0.0.1:{s2} weight 1
    default-server disabled
    server c 127.0.0.1:{s3}
    server d 127.0.0.1:{s4} enabled

listen named from base
    bind 127.0.0.1:{f1}
    http-after-response set-header x-server %[srv_name]
    server a 127.0.0.1:{s1}
    server-template t 2-4 127.0.0.1:{s2} weight 3
    server z 127.0.0.1:{s4} backup

listen onlybackups from base
    bind 127.0.0.1:{f2}
    http-after-response set-header x-server %[srv_name]
    server a 127.0.0.1:{s1} backup
    server b 127.0.0.1:{s2} backup weight 5
    server c 127.0.0.1:{s3} weight 0

listen allbackups from base
    bind 127.0.0.1:{f3}
    http-after-response set-header x-server %[srv_name]
    option allbackups
    default-server backup
    server a 127.0.0.1:{s1}
    server b 127.0.0.1:{s2}
    server c 127.0.0.1:{s3} no-backup disabled
"""


def test_haproxy_settings(tmp_path):
    """default-server lines (in defaults and in the backend), named defaults (``from``),
    server-template (servers sharing an address, told apart by HAProxy's server name),
    backup servers with and without active ones, and ``option allbackups``."""
    exe = need("haproxy")
    ports = free_ports(8)
    backends = dict(zip(("s1", "s2", "s3", "s4"), ports[:4], strict=True))
    fronts = dict(zip(("inherits", "named", "onlybackups", "allbackups"), ports[4:], strict=True))
    listens = {f"f{i}": p for i, p in enumerate(fronts.values())}
    settings = HAPROXY_SETTINGS.format(**backends, **listens)
    cfg = haproxy_with_backends(backends) + settings
    (tmp_path / "haproxy.cfg").write_text(cfg)
    keys = keys_for(1000)
    with running([exe, "-db", "-f", str(tmp_path / "haproxy.cfg")], [*fronts.values()]):
        for name, port in fronts.items():
            hashed, owners = http_owners(port, keys, quote=True)
            ring = HashRing.from_haproxy(cfg, name)
            assert ring.get_many(hashed) == owners, name
            used = {"inherits": {"a", "b", "d"}, "named": {"a", "t2", "t3", "t4"}}
            assert set(owners) == used.get(name, {"a", "b"} if name == "allbackups" else {"a"})


def test_haproxy_balance_hdr(tmp_path):
    """``balance hdr(name)``: the header's first value (cut at a comma outside quotes,
    spaces dropped), and ``use_domain_only`` on Host; ``ringhash route`` reads header
    values so."""
    exe = need("haproxy")
    ports = free_ports(6)
    backends = dict(zip(("s1", "s2", "s3", "s4"), ports[:4], strict=True))
    cases = {
        "hdr": (ports[4], "hdr(x-key)", ""),
        "domain": (ports[5], "hdr(host) use_domain_only", ""),
    }
    cfg = haproxy_listens(backends, cases)
    (tmp_path / "haproxy.cfg").write_text(cfg)
    rng = random.Random(3)
    words = [f"k{rng.randrange(10**6)}" for _ in range(300)]
    values = {
        "hdr": [
            *words[:100],
            *(f"  {w} , other" for w in words[100:150]),
            *(f'"{w},{w}", tail' for w in words[150:200]),
            *(f'"{w}\\",x",y' for w in words[200:250]),
            *(f"{w}\t" for w in words[250:]),
        ],
        "domain": [
            *(f"www.{w}.example" for w in words[:100]),
            *(f"{w}.com:8080" for w in words[100:200]),
            *(f"a.{w}.b.c" for w in words[200:280]),
            *words[280:],  # no dot: the whole value
        ],
    }
    header = {"hdr": b"X-Key: ", "domain": b"Host: "}
    with running([exe, "-db", "-f", str(tmp_path / "haproxy.cfg")], [c[0] for c in cases.values()]):
        for name, (port, _, _) in cases.items():
            lines = [v.encode() for v in values[name]]
            owners = fetch_owners(port, [b"/"] * len(lines), [header[name] + v for v in lines])
            assert len(set(owners)) > 1, name
            (tmp_path / "values").write_bytes(b"".join(v + b"\n" for v in lines))
            out = tmp_path / "routed"
            cfg_path = str(tmp_path / "haproxy.cfg")
            run = ["route", str(tmp_path / "values"), "--haproxy", cfg_path, "--backend", name]
            assert main([*run, "-o", str(out)]) == 0
            assert [x.rsplit("\t", 1)[1] for x in out.read_text().splitlines()] == owners, name


def test_haproxy_balance_source(tmp_path):
    """``balance source``: clients on 127.0.0.1-200 (all loopback on Linux), each
    routed by its address, hashed HAProxy's own way whatever the function."""
    exe = need("haproxy")
    ports = free_ports(6)
    backends = dict(zip(("s1", "s2", "s3", "s4"), ports[:4], strict=True))
    cases = {"src": (ports[4], "source", ""), "src_djb2": (ports[5], "source", "djb2")}
    cfg = haproxy_listens(backends, cases)  # (avalanche by default; none with djb2)
    (tmp_path / "haproxy.cfg").write_text(cfg)
    sources = [f"127.0.0.{i}" for i in range(1, 201)]
    with running([exe, "-db", "-f", str(tmp_path / "haproxy.cfg")], [c[0] for c in cases.values()]):
        for name, (port, _, _) in cases.items():
            owners = []
            for src in sources:
                with socket.create_connection(("127.0.0.1", port), 10, (src, 0)) as sock:
                    sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    reply = b""
                    while chunk := sock.recv(4096):
                        reply += chunk
                owners.append(reply.rsplit(b"\r\n\r\n", 1)[1].decode())
            ring = HashRing.from_haproxy(cfg, name)
            assert ring.hash == ("source avalanche" if name == "src" else "source")
            assert ring.get_many(source_keys(sources)) == owners, name
            if name == "src":  # (without avalanche 127.0.0.x lie on one arc: one server)
                assert len(set(owners)) == 4


URI_BALANCES = ["uri", "uri whole", "uri len 7", "uri depth 2", "uri whole depth 1 len 14"]


def test_haproxy_balance_uri(tmp_path):
    """``balance uri`` and its options: what of the request URI is hashed
    (``uri_keys``, and ``ringhash route`` through the backend's balance line)."""
    exe = need("haproxy")
    ports = free_ports(4 + len(URI_BALANCES))
    backends = dict(zip(("s1", "s2", "s3", "s4"), ports[:4], strict=True))
    fronts = dict(zip(URI_BALANCES, ports[4:], strict=True))
    listens = {f"u{i}": (port, balance, "") for i, (balance, port) in enumerate(fronts.items())}
    cfg = haproxy_listens(backends, listens)
    (tmp_path / "haproxy.cfg").write_text(cfg)
    rng = random.Random(3)
    uris = [
        f"/{rng.choice(['img', 'api', 'a'])}/{i % 13}/{rng.randrange(99)}"
        + rng.choice(["", "/", f"?v={i}", f"/x?q={i}&r=1", "?"])
        for i in range(600)
    ]
    targets = [u.encode() for u in uris]
    with running([exe, "-db", "-f", str(tmp_path / "haproxy.cfg")], list(fronts.values())):
        for i, (balance, port) in enumerate(fronts.items()):
            owners = fetch_owners(port, targets)
            ring = HashRing.from_haproxy(cfg, f"u{i}")
            options = uri_options(balance)
            assert options is not None
            assert ring.get_many(uri_keys(uris, **options)) == owners, balance
            assert len(set(owners)) > 1, balance
            lines = tmp_path / "uris"
            lines.write_text("".join(f"{u}\n" for u in uris))
            out = tmp_path / "routed"
            assert (
                main(
                    [
                        "route",
                        str(lines),
                        "--haproxy",
                        str(tmp_path / "haproxy.cfg"),
                        "--backend",
                        f"u{i}",
                        "-o",
                        str(out),
                    ]
                )
                == 0
            )
            assert [x.split("\t")[1] for x in out.read_text().splitlines()] == owners


# ---------------------------------------------------------------- twemproxy

TWEMPROXY_HASHES = [
    "fnv1a_64",
    "fnv1a_32",
    "fnv1_64",
    "fnv1_32",
    "md5",
    "murmur",
    "crc32",
    "crc32a",
    "one_at_a_time",
    "hsieh",
    "jenkins",
    "crc16",
]


# keys for hash_tag pools ('{}' and '$$'): tags, empty tags, unclosed, nested, twice
TAGGED = [
    k.encode()
    for i in range(60)
    for k in (
        f"user:{{{i}}}:cart",
        f"{{{i}}}",
        f"x{{}}{i}",
        f"{{{i}",
        f"}}{i}{{",
        f"{{a{{{i}}}b}}",
        f"{{{i}}}{{{i + 1}}}",
        f"order:${i}$:line",
        f"${i}",
        f"$$${i}$",
        f"{{ñ{i}}}é",
    )
]


@pytest.mark.parametrize("build", ["native", "aarch64"])
def test_twemproxy(tmp_path, build):
    """nutcracker built for this machine, and Debian's arm64 build under qemu-user:
    its plain char is unsigned, so non-ASCII keys hash differently (``char=``)."""
    if build == "native":
        prefix, exe, char = [], need("nutcracker"), NATIVE_CHAR
    else:
        prefix, root = aarch64("usr/sbin/nutcracker")
        exe, char = str(root / "usr" / "sbin" / "nutcracker"), "unsigned"
    other = {"signed": "unsigned", "unsigned": "signed"}[char]
    keys = [k.encode() for k in keys_for()] + TAGGED
    with memcacheds(4) as ports:
        lines = [
            f"127.0.0.1:{ports[0]}:1",
            f"127.0.0.1:{ports[1]}:2 named",
            f"127.0.0.1:{ports[2]}:1",
            f"127.0.0.1:{ports[3]}:3",
        ]
        pools = {f"p_{h}": (h, lines, "") for h in TWEMPROXY_HASHES}
        pools["p_removed"] = ("fnv1a_64", [lines[0], lines[2], lines[3]], "")
        pools["p_tag"] = ("fnv1a_64", lines, "{}")
        pools["p_tag_murmur"] = ("murmur", lines, "$$")
        *listen_ports, stats_port = free_ports(len(pools) + 1)  # all distinct
        listen = dict(zip(pools, listen_ports, strict=True))
        yml = ""
        for name, (h, servers, tag) in pools.items():
            yml += f"{name}:\n  listen: 127.0.0.1:{listen[name]}\n  hash: {h}\n"
            yml += f"  hash_tag: '{tag}'\n" if tag else ""
            yml += "  distribution: ketama\n  auto_eject_hosts: false\n  timeout: 2000\n"
            yml += "  servers:\n" + "".join(f"   - {s}\n" for s in servers)
        (tmp_path / "nutcracker.yml").write_text(yml)
        cmd = [
            *prefix,
            exe,
            "-c",
            str(tmp_path / "nutcracker.yml"),
            "-p",
            str(tmp_path / "pid"),
            "-o",
            str(tmp_path / "log"),
            "-s",
            str(stats_port),
        ]
        differs = set()
        with running(cmd, list(listen.values())):
            for name, (h, servers, tag) in pools.items():
                flush(*ports)  # empty every memcached between pools
                proxy = Memcache(listen[name])
                proxy.set_many(keys)
                proxy.close()
                line_of = {s.split(":")[1]: s for s in servers}
                live = [p for p in ports if str(p) in line_of]
                owners = owners_by_lookup(live, [line_of[str(p)] for p in live], keys)
                ring = HashRing.from_twemproxy(yml, name, char=char)
                assert ring.get_many(keys) == owners, name
                if tag:  # the tag decided: without it, keys route differently
                    untagged = HashRing.twemproxy(servers, h, char=char)
                    assert untagged.get_many(TAGGED) != ring.get_many(TAGGED)
                if HashRing.from_twemproxy(yml, name, char=other).get_many(keys) != owners:
                    differs.add(h)
        # the build's char decides these five (on non-ASCII keys), and only these
        assert differs == {"one_at_a_time", "fnv1_64", "fnv1a_64", "fnv1_32", "fnv1a_32", "hsieh"}


@pytest.mark.parametrize("build", ["native", "aarch64"])
def test_twemproxy_default_port_and_unix_socket(tmp_path, build):
    """Servers on memcached's default port 11211 are ring-named by their host alone
    (nutcracker's "backward compatibility with libmemcached"), a unix socket by its
    path and a colon; on 127.0.0.2 and 127.0.0.3, whose port 11211 is free."""
    if build == "native":
        prefix, exe, char = [], need("nutcracker"), NATIVE_CHAR
    else:
        prefix, root = aarch64("usr/sbin/nutcracker")
        exe, char = str(root / "usr" / "sbin" / "nutcracker"), "unsigned"
    sock = str(tmp_path / "mc.sock")
    (port,) = free_ports(1)
    backends = [("127.0.0.2", 11211), ("127.0.0.3", 11211), sock, ("127.0.0.1", port)]
    lines = ["127.0.0.2:11211:1", "127.0.0.3:11211:2", f"{sock}:1", f"127.0.0.1:{port}:1"]
    listen, stats = free_ports(2)
    yml = f"p:\n  listen: 127.0.0.1:{listen}\n  hash: fnv1a_64\n  distribution: ketama\n"
    yml += "  auto_eject_hosts: false\n  timeout: 2000\n  servers:\n"
    yml += "".join(f"   - {line}\n" for line in lines)
    (tmp_path / "nutcracker.yml").write_text(yml)
    keys = [k.encode() for k in keys_for()]
    cmd = [*prefix, exe, "-c", str(tmp_path / "nutcracker.yml"), "-p", str(tmp_path / "pid")]
    cmd += ["-o", str(tmp_path / "log"), "-s", str(stats)]
    with contextlib.ExitStack() as stack:
        for where in backends:
            stack.enter_context(memcached_at(where))
        stack.enter_context(running(cmd, [listen]))
        proxy = Memcache(listen)
        proxy.set_many(keys)
        proxy.close()
        owners = owners_by_lookup(backends, lines, keys)
    ring = HashRing.from_twemproxy(yml, "p", char=char)
    assert ring.get_many(keys) == owners
    assert len(set(owners)) == 4


@pytest.mark.parametrize("build", ["native", "aarch64"])
def test_twemproxy_random_pools(tmp_path, build):
    """Random pools over five memcacheds (two on port 11211 of 127.0.0.2/3, two on
    127.0.0.1, one on a unix socket): random hashes, weights, names and hash tags,
    routed by nutcracker itself."""
    if build == "native":
        prefix, exe, char = [], need("nutcracker"), NATIVE_CHAR
    else:
        prefix, root = aarch64("usr/sbin/nutcracker")
        exe, char = str(root / "usr" / "sbin" / "nutcracker"), "unsigned"
    rng = random.Random(17)
    ports = free_ports(2 + 16 + 1)
    sock = str(tmp_path / "mc.sock")
    backends = [("127.0.0.2", 11211), ("127.0.0.3", 11211), ("127.0.0.1", ports[0])]
    backends += [("127.0.0.1", ports[1]), sock]
    addrs = ["127.0.0.2:11211", "127.0.0.3:11211", f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[1]}"]
    pools, yml = {}, ""
    for i, listen in enumerate(ports[2:-1]):
        chosen = rng.sample(range(5), rng.randrange(2, 6))
        lines = []
        for b in chosen:
            base = f"{sock}" if b == 4 else addrs[b]
            line = f"{base}:{rng.choice([1, 1, 2, 3])}"
            if rng.random() < 0.3:
                line += f" srv{i}-{b}"
            lines.append(line)
        h = rng.choice(TWEMPROXY_HASHES)
        tag = rng.choice(["", "", "{}", "$$"])
        pools[f"p{i}"] = (lines, chosen)
        yml += f"p{i}:\n  listen: 127.0.0.1:{listen}\n  hash: {h}\n  distribution: ketama\n"
        yml += f"  hash_tag: '{tag}'\n" if tag else ""
        yml += "  auto_eject_hosts: false\n  timeout: 2000\n  servers:\n"
        yml += "".join(f"   - {line}\n" for line in lines)
    (tmp_path / "nutcracker.yml").write_text(yml)
    keys = [k.encode() for k in keys_for(600, seed=9)] + TAGGED[:200]
    cmd = [*prefix, exe, "-c", str(tmp_path / "nutcracker.yml"), "-p", str(tmp_path / "pid")]
    cmd += ["-o", str(tmp_path / "log"), "-s", str(ports[-1])]
    with contextlib.ExitStack() as stack:
        for where in backends:
            stack.enter_context(memcached_at(where))
        stack.enter_context(running(cmd, ports[2:-1]))
        for (name, (lines, chosen)), listen in zip(pools.items(), ports[2:-1], strict=True):
            flush(*backends)  # empty every memcached between pools
            proxy = Memcache(listen)
            proxy.set_many(keys)
            proxy.close()
            owners = owners_by_lookup([backends[b] for b in chosen], lines, keys)
            ring = HashRing.from_twemproxy(yml, name, char=char)
            assert ring.get_many(keys) == owners, (name, lines)


# ---------------------------------------------------------------- libmemcached (pylibmc)


def test_pylibmc():
    pylibmc = pytest.importorskip(
        "pylibmc", reason="pylibmc is not installed (.ci/run builds it against libmemcached-dev)"
    )
    if pylibmc.libmemcached_version != "1.1.4":
        pytest.skip(
            f"pylibmc runs libmemcached {pylibmc.libmemcached_version}, not 1.1.4: build it "
            "from source (pip install --no-binary pylibmc pylibmc, with libmemcached-dev)"
        )
    keys = [k.encode() for k in keys_for()]
    with memcacheds(4) as ports:
        plain = [f"127.0.0.1:{p}" for p in ports]
        weighted = [f"127.0.0.1:{p}:{w}" for p, w in zip(ports, (1, 2, 1, 3), strict=True)]
        configs = [
            (plain, {"ketama": True}),
            (plain[:3], {"ketama": True}),
            (weighted, {"ketama": True}),  # a weight > 1: libmemcached goes weighted
            (plain, {"ketama_weighted": True}),
            (plain, {"ketama": True, "hash": "fnv1a_32"}),
            (plain, {"ketama": True, "hash": "md5"}),
            (plain, {"ketama": True, "hash": "crc"}),
            (plain, {"ketama": True, "hash": "murmur"}),
            (plain, {"ketama": True, "hash": "jenkins"}),
            (plain, {"distribution": "consistent weighted", "hash": "fnv1a_32"}),
            (plain, {"ketama_weighted": True, "distribution": "consistent"}),
        ]
        for servers, behaviors in configs:
            flush(*ports)  # empty every memcached between pools
            client = pylibmc.Client(servers, behaviors=behaviors)
            for k in keys:
                client.set(k, b"1")
            client.disconnect_all()
            live = [p for p in ports if any(f":{p}" in s for s in servers)]
            names = [next(s for s in servers if f":{p}" in s) for p in live]
            owners = owners_by_lookup(live, names, keys)
            ring = HashRing.libmemcached(servers, behaviors)
            assert ring.get_many(keys) == owners, (servers, behaviors)


THREE = ["10.0.0.1:11211:1", "10.0.0.2:11212:1", "10.0.0.3:11213:1"]
HEAVY = ["10.0.0.1:11211:1", "10.0.0.2:11212:3", "10.0.0.3:11213:1"]
SOCKETS = ["/tmp/memcached.sock", "[2001:db8::1]:11212:1", "[::1]:11213:1", "10.0.0.4:11211:1"]
LIBMEMCACHED_CONFIGS = [  # (servers, pylibmc behaviors): no server is contacted
    (THREE, {"ketama": 1}),
    (HEAVY, {"ketama": 1}),  # a weight > 1: weighted, the key hash kept
    *((THREE, {"ketama": 1, "hash": h}) for h in ("fnv1_64", "fnv1a_64", "fnv1_32")),
    *((THREE, {"ketama": 1, "hash": h}) for h in ("fnv1a_32", "murmur", "jenkins")),
    (HEAVY, {"ketama_weighted": 1, "hash": "fnv1a_32"}),  # the key hash becomes MD5
    (THREE, {"distribution": "consistent", "hash": "crc"}),
    (THREE, {"distribution": "consistent weighted", "hash": "fnv1a_32"}),  # hash kept
    (THREE, {"ketama_weighted": 1, "distribution": "consistent"}),  # unweighted, MD5 keys
    (THREE, {"ketama": 1, "ketama_hash": "crc"}),  # the distribution hash: unused
    (SOCKETS, {"ketama": 1}),  # a unix socket (port 0) and IPv6 addresses
    ([*SOCKETS[:2], "[::1]:11211:2"], {"ketama": 1, "hash": "fnv1a_32"}),
    (SOCKETS, {"distribution": "consistent ketama spy"}),  # spymemcached's point names
    (HEAVY, {"ketama_weighted": 1, "distribution": "consistent ketama spy"}),
    (THREE, {"ketama_weighted": 1, "distribution": "consistent ketama spy", "hash": "crc"}),
]


def libmemcached_probe(tmp_path: pathlib.Path, build: str) -> tuple[list[str], str]:
    """tests/c/libmemcached_route.c built against libmemcached 1.1.4: for this machine,
    or against Debian's arm64 libmemcached (run under qemu-user). (the command
    prefix, the char of that build); the probe is ``tmp_path / "route"``."""
    probe = pathlib.Path(__file__).parent / "c" / "libmemcached_route.c"
    if build == "native":
        prefix, char = [], NATIVE_CHAR
        if not pathlib.Path("/usr/include/libmemcached-1.0/memcached.h").exists():
            pytest.skip("no libmemcached headers (Debian: apt-get install libmemcached-dev)")
        compile_cmd = [need("cc"), str(probe), "-lmemcached"]
    else:
        prefix, root = aarch64("usr/lib/aarch64-linux-gnu/libmemcached.so")
        libs = root / "usr" / "lib" / "aarch64-linux-gnu"
        compile_cmd = [need("aarch64-linux-gnu-gcc"), f"-I{root / 'usr' / 'include'}", str(probe)]
        compile_cmd += [f"-L{libs}", f"-Wl,-rpath-link,{libs}", "-lmemcached"]
        char = "unsigned"
    subprocess.run([*compile_cmd, "-std=gnu99", "-O2", "-o", str(tmp_path / "route")], check=True)
    return [*prefix, str(tmp_path / "route")], char


def probe_owners(
    probe: list[str], servers: list[str], behaviors: dict[str, Any], keys: list[str]
) -> list[str]:
    """The server libmemcached routes each key to, as given in ``servers``."""
    # the probe names values as libmemcached does (consistent_weighted, ...)
    spec = ",".join(f"{k}={str(v).replace(' ', '_')}" for k, v in behaviors.items())
    run = subprocess.run(
        [*probe, spec, *servers],
        input="".join(f"{k}\n" for k in keys).encode(),
        capture_output=True,
        check=True,
        timeout=120,
    )
    # it writes host:port: a unix socket's port 0, an IPv6 host without brackets
    by_address = {
        f"{s}:0" if s.startswith("/") else s.rsplit(":", 1)[0].replace("[", "").replace("]", ""): s
        for s in servers
    }
    return [by_address[a] for a in run.stdout.decode().splitlines()]


@pytest.mark.parametrize("build", ["native", "aarch64"])
def test_libmemcached_builds(tmp_path, build):
    """libmemcached 1.1.4 itself (tests/c/libmemcached_route.c, linked against it)
    routes keys as pylibmc configures it: built for this machine, and against
    Debian's arm64 libmemcached, run under qemu-user (plain char unsigned there)."""
    probe, char = libmemcached_probe(tmp_path, build)
    keys = keys_for()
    other = {"signed": "unsigned", "unsigned": "signed"}[char]
    differs = set()
    for servers, behaviors in LIBMEMCACHED_CONFIGS:
        owners = probe_owners(probe, servers, behaviors, keys)
        ring = HashRing.libmemcached(servers, behaviors, char=char)
        assert ring.get_many(keys) == owners, (servers, behaviors)
        if HashRing.libmemcached(servers, behaviors, char=other).get_many(keys) != owners:
            differs.add(behaviors.get("hash", "default"))
    # the build's char decides these (on non-ASCII keys), and only these
    assert differs == {"default", "fnv1_64", "fnv1a_64", "fnv1_32", "fnv1a_32"}


@pytest.mark.parametrize("build", ["native", "aarch64"])
def test_libmemcached_random_configs(tmp_path, build):
    """Random server lists (IPv4, IPv6, host names, unix sockets, ports 11211 and
    others, weights) and random behaviors, each routed by libmemcached itself."""
    probe, char = libmemcached_probe(tmp_path, build)
    rng = random.Random(11)
    hashes = ["default", "md5", "crc", "fnv1_64", "fnv1a_64", "fnv1_32", "fnv1a_32", "murmur"]
    keys = keys_for(400, seed=5)
    checked = 0
    for case in range(60):
        servers = []
        for i in range(rng.randrange(1, 7)):
            port = rng.choice([11211, 11211, 11212, rng.randrange(1024, 65536)])
            weight = rng.choice([1, 1, 1, 2, 3])
            form = rng.randrange(4)
            if form == 0:
                servers.append(f"10.{case}.{i}.{rng.randrange(256)}:{port}:{weight}")
            elif form == 1:
                servers.append(f"[2001:db8::{case:x}:{i}]:{port}:{weight}")
            elif form == 2:
                servers.append(f"cache-{case}-{i}.example:{port}:{weight}")
            else:
                servers.append(f"/run/memcached-{case}-{i}.sock")
        behaviors: dict[str, Any] = {}
        for name in rng.sample(["hash", "ketama_hash", "ketama", "ketama_weighted"], 3):
            behaviors[name] = rng.choice(hashes) if "hash" in name else rng.randrange(2)
        if rng.random() < 0.5:
            behaviors["distribution"] = rng.choice(
                ["consistent", "consistent ketama", "consistent weighted", "consistent ketama spy"]
                + ["modula"]
            )
        try:
            ring = HashRing.libmemcached(servers, behaviors, char=char)
        except ValueError as e:  # not consistent hashing: refused
            assert "is not reproduced" in str(e), (servers, behaviors)
            continue
        assert ring.get_many(keys) == probe_owners(probe, servers, behaviors, keys), (
            servers,
            behaviors,
        )
        checked += 1
    assert checked >= 30, checked


# ---------------------------------------------------------------- pymemcache


def test_pymemcache():
    hash_client = pytest.importorskip(
        "pymemcache.client.hash", reason="pymemcache is not installed"
    )
    keys = keys_for()
    with memcacheds(5) as ports:
        servers = [("127.0.0.1", p) for p in ports]
        client = hash_client.HashClient(servers, allow_unicode_keys=True)
        for k in keys:
            client.set(k, "1")
        client.close()
        names = [f"127.0.0.1:{p}" for p in ports]
        owners = owners_by_lookup(ports, names, [k.encode() for k in keys])
        assert PymemcacheHash(servers).get_many(keys) == owners


def ipv6_loopback() -> bool:
    """Whether this machine has ::1 to listen on (some containers have no IPv6)."""
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_pymemcache_server_strings(tmp_path):
    """Servers given as strings, as pymemcache reads them: no port (11211), a unix
    socket, IPv6 in brackets (where this machine has ::1)."""
    hash_client = pytest.importorskip(
        "pymemcache.client.hash", reason="pymemcache is not installed"
    )
    keys = keys_for(1000)
    port, v6port = free_ports(2)
    sock = str(tmp_path / "mc.sock")
    where: list[Any] = [("127.0.0.1", port), ("127.0.0.2", 11211), sock]
    specs = [f"127.0.0.1:{port}", "127.0.0.2", f"unix:{sock}"]
    if ipv6_loopback():
        where.append(("::1", v6port))
        specs.append(f"[::1]:{v6port}")
    with contextlib.ExitStack() as stack:
        for w in where:
            stack.enter_context(memcached_at(w))
        client = hash_client.HashClient(specs, allow_unicode_keys=True)
        for k in keys:
            client.set(k, "1")
        client.close()
        ring = PymemcacheHash(specs)
        owners = owners_by_lookup(where, list(ring.nodes), [k.encode() for k in keys])
        assert ring.get_many(keys) == owners
        assert set(owners) == set(ring.nodes)
