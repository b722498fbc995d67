"""Presets of the proxies and clients in front of servers: nginx, HAProxy,
twemproxy, libmemcached (pylibmc) and pymemcache, checked key for key against
routing recorded from the real programs (tests/data/real), plus their hash
functions, search rules, config readers and membership changes."""

from __future__ import annotations

import gzip
import ipaddress
import json
import pathlib
import pickle
import random
import sys
import zlib

import numpy as np
import pytest

from proxy_models import (
    MODELS,
    forge_crc32,
    full_hash,
    haproxy_source,
    lookup3,
    nginx_continuum,
    nginx_route,
    tagged,
    unsigned,
)
from ringhash import HashRing, PymemcacheHash, _core
from ringhash.cli import main
from ringhash.errors import EmptyRingError
from ringhash.haproxy import hdr_keys, source_keys, uri_keys, uri_options
from ringhash.twemproxy import TWEMPROXY_HASHES as TWEMPROXY_TABLE

REAL = pathlib.Path(__file__).parent / "data" / "real"
M32 = 2**32


def cases(system: str) -> list[dict]:
    name = {"libmemcached": "libmemcached-1.1.4"}.get(system, system)
    with gzip.open(REAL / f"{name}.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def reloaded(ring: HashRing) -> list[HashRing]:
    """The ring saved and loaded each way: to_dict through JSON, to_bytes, pickle."""
    return [
        HashRing.from_dict(json.loads(json.dumps(ring.to_dict()))),
        HashRing.from_bytes(ring.to_bytes()),
        pickle.loads(pickle.dumps(ring)),
    ]


def agree(ring, keys, owners) -> None:  # type: ignore[no-untyped-def]
    assert ring.get_many(keys) == owners
    assert [ring.get(k) for k in keys[:200]] == owners[:200]
    np.testing.assert_array_equal(
        np.array(ring.nodes, dtype=object)[ring.lookup(np.array(keys))], owners
    )


# ---------------------------------------------------------------- recorded samples


@pytest.mark.parametrize("case", cases("nginx"), ids=lambda c: c["config_name"])
def test_nginx_samples(case):
    conf = "http {\n" + case["config"]["upstream_block"] + "}\n"
    upstream = case["config"]["upstream_block"].split()[1]
    agree(HashRing.from_nginx(conf, upstream), case["keys"], case["owners"])
    servers = [(s["server"], s["weight"]) for s in case["config"]["servers"]]
    agree(HashRing.nginx(servers), case["keys"], case["owners"])


@pytest.mark.parametrize("case", cases("haproxy"), ids=lambda c: c["config_name"])
def test_haproxy_samples(case):
    block = case["config"]["backend_block"]
    agree(HashRing.from_haproxy(block, block.split()[1]), case["keys"], case["owners"])
    servers = [(s["name"], s["weight"], s["id"]) for s in case["config"]["servers"]]
    agree(HashRing.haproxy(servers), case["keys"], case["owners"])


@pytest.mark.parametrize("case", cases("twemproxy"), ids=lambda c: c["config_name"])
def test_twemproxy_samples(case):
    ring = HashRing.from_twemproxy(case["config"]["pool_yaml"], case["config_name"])
    agree(ring, case["keys"], case["owners"])
    lines = [s["server"] for s in case["config"]["servers"]]
    agree(HashRing.twemproxy(lines, case["config"]["hash"]), case["keys"], case["owners"])


@pytest.mark.parametrize("case", cases("libmemcached"), ids=lambda c: c["config_name"])
def test_libmemcached_samples(case):
    servers = [s["server"] for s in case["config"]["servers"]]
    ring = HashRing.libmemcached(servers, case["config"]["behaviors_set"])
    agree(ring, case["keys"], case["owners"])
    weighted = case["config"]["behaviors_read_back"]["ketama_weighted"] == 1
    assert (ring.vnodes == 160) == weighted  # a weight > 1 switched the mode silently


@pytest.mark.parametrize("case", cases("pymemcache"), ids=lambda c: c["config_name"])
def test_pymemcache_samples(case):
    servers = [tuple(s["server"].rsplit(":", 1)) for s in case["config"]["servers"]]
    client = PymemcacheHash(servers)
    assert client.get_many(case["keys"]) == case["owners"]
    assert [client.get(k) for k in case["keys"][:200]] == case["owners"][:200]


def test_pymemcache_matches_its_own_hasher():
    rendezvous = pytest.importorskip("pymemcache.client.rendezvous")
    nodes = [f"10.0.0.{i}:11211" for i in range(7)]
    ref = rendezvous.RendezvousHash(list(nodes))
    keys = ["", "a", "ünï", "中文键", "x" * 70, "\udcff", *[f"k{i}" for i in range(300)]]
    client = PymemcacheHash(nodes)
    assert client.get_many(keys) == [ref.get_node(k) for k in keys]
    assert client.get(b"bytes-key") == ref.get_node(b"bytes-key")  # its repr is hashed
    order = client.get_nodes("user:1", 7)
    scores = {n: ref.hash_function(f"{n}-user:1") for n in nodes}
    assert order == sorted(nodes, key=lambda n: (-scores[n], [-ord(c) for c in n]))
    with pytest.raises(TypeError, match="str or bytes"):
        client.get(42)


# ---------------------------------------------------------------- hash functions


@pytest.mark.parametrize("name", sorted(MODELS))
def test_proxy_hashes_against_models(name):
    rng = random.Random(name)
    inputs = [b"", b"a", b"hello world", bytes(range(256)), "ünïcödé".encode()]
    inputs += [bytes(rng.randrange(256) for _ in range(rng.randrange(40))) for _ in range(200)]
    algo = _core.PROXY_HASHES[name]
    got = _core.hash_objects(inputs, algo, 0).tolist()
    assert got == [MODELS[name](b) for b in inputs]
    with_avalanche = _core.hash_objects(inputs, algo | _core.AVALANCHE, 0).tolist()
    assert with_avalanche == [full_hash(MODELS[name](b)) for b in inputs]
    if algo not in _core.CHAR_HASHES:
        return
    as_unsigned = _core.hash_objects(inputs, algo | _core.UNSIGNED_CHAR, 0).tolist()
    assert as_unsigned == [MODELS[name](b, unsigned) for b in inputs]
    for b, s, u in zip(inputs, got, as_unsigned, strict=True):
        # they differ exactly where a byte read through the char is high: every byte,
        # or for hsieh only the last of a 3-byte tail
        read = b[-1:] if name == "hsieh" and len(b) % 4 == 3 else b"" if name == "hsieh" else b
        assert (s == u) == all(c < 0x80 for c in read)


def test_the_hashes_that_read_a_plain_char():
    """The six whose C (twemproxy's nc_fnv.c, nc_one_at_a_time.c and nc_hsieh.c,
    libhashkit's fnv_64.cc, fnv_32.cc and one_at_a_time.cc) reads key bytes through a
    plain char; the others read unsigned char, or mask to a byte, and take no
    UNSIGNED_CHAR."""
    names = {n for n, i in _core.PROXY_HASHES.items() if i in _core.CHAR_HASHES}
    assert names == {"one_at_a_time", "fnv1_64", "fnv1a_64", "fnv1_32", "fnv1a_32", "hsieh"}
    others = set(_core.PROXY_HASHES.values()) - _core.CHAR_HASHES
    for algo in (*others, _core.MURMUR3, _core.CRC32, _core.MD5):
        with pytest.raises(ValueError, match="does not read key bytes as char"):
            _core.RingTable([1], [0], ("a",), algo | _core.UNSIGNED_CHAR, 0)


def test_proxy_hashes_published_values():
    fnv1a_32_id, oaat_id = _core.PROXY_HASHES["fnv1a_32"], _core.PROXY_HASHES["one_at_a_time"]
    assert _core.hash_key(b"", fnv1a_32_id, 0) == 0x811C9DC5  # FNV-1a offset basis
    assert _core.hash_key(b"a", fnv1a_32_id, 0) == 0xE40C292C  # the FNV test suite
    assert _core.hash_key(b"a", oaat_id, 0) == 0xCA2E9442  # Jenkins' one-at-a-time
    assert _core.hash_key(b"", _core.PROXY_HASHES["djb2"], 0) == 5381
    # lookup3.c's own checks of hashlittle, on the model; the C's initval is 13
    assert lookup3(b"", 0) == 0xDEADBEEF
    assert lookup3(b"Four score and seven years ago", 0) == 0x17770551
    assert lookup3(b"Four score and seven years ago", 1) == 0xCD628161
    assert _core.hash_key(b"", _core.PROXY_HASHES["jenkins"], 0) == 0xDEADBEEF + 13
    # CRC-16/XMODEM's check value in the low 16 bits (twemproxy keeps the rest)
    assert _core.hash_key(b"123456789", _core.PROXY_HASHES["crc16"], 0) & 0xFFFF == 0x31C3


def test_batches_of_every_form_use_the_preset_hash():
    pa = pytest.importorskip("pyarrow")
    keys = [f"user:{i}" for i in range(500)] + ["ñandú", "中文键"]
    keys += [f"user:{{{i}}}:é" for i in range(100)] + ["{}", "{", "}{ñ}"]
    for ring in (
        HashRing.haproxy(["a", "b", "c"], "wt6"),
        HashRing.twemproxy(["h:1:1", "h:2:2 x"], "murmur"),
        HashRing.twemproxy(["h:1:1", "h:2:2 x"], "hsieh", hash_tag="{}", char="unsigned"),
        HashRing.libmemcached(["h:1", "h:2"], {"ketama": True, "hash": "fnv1a_32"}),
        HashRing.nginx(["a:1", "b:2"]),
    ):
        want = ring.get_many(keys)
        assert ring.get_many(pa.array(keys)) == want
        assert ring.get_many(np.array(keys)) == want
        assert ring.get_many(np.array(keys, dtype=np.dtypes.StringDType())) == want


# ---------------------------------------------------------------- search rules


def test_nearest_rule_and_its_ties():
    ring = HashRing.haproxy(["s1", "s2", "s3"], "crc32", avalanche=False)
    pts = ring.points.astype(np.int64)
    own = ring.owners
    n = len(pts)
    probes = []
    for i in range(0, n, 7):
        nxt = pts[(i + 1) % n] + (M32 if i == n - 1 else 0)
        mid = pts[i] + (nxt - pts[i]) // 2
        probes += [pts[i], pts[i] - 1, pts[i] + 1, mid, mid + 1]
    probes = [p % M32 for p in probes] + [0, M32 - 1]

    def model(h: int) -> int:
        i = int(np.searchsorted(pts, h, side="left"))
        nxt, prv = i % n, (i - 1) % n
        dp, dn = (h - pts[prv]) % M32, (pts[nxt] - h) % M32
        return int(own[prv] if dp <= dn else own[nxt])

    got = ring.lookup_hashes(np.array(probes, dtype=np.uint32)).tolist()
    assert got == [model(h) for h in probes]
    even = [i for i in range(n - 1) if (pts[i + 1] - pts[i]) % 2 == 0]
    for i in even[:20]:  # an exact tie goes to the point before
        tie = (pts[i] + pts[i + 1]) // 2
        assert ring.lookup_hashes([int(tie)])[0] == own[i]
    keys = [f"k{i}" for i in range(20_000)]
    assert sum(ring.load(keys).values()) == 20_000
    share = ring.shares()
    for node, count in ring.load(keys).items():
        assert abs(count / 20_000 - share[node]) < 0.02


def test_ge_presets_at_points():
    for ring in (HashRing.nginx(["a:1", "b:1"]), HashRing.twemproxy(["h:1:1", "h:2:1"])):
        pts, own = ring.points.astype(np.int64), ring.owners
        probes = np.array([*pts[:50], *(pts[:50] - 1), *(pts[:50] + 1)]) % M32
        want = [own[int(np.searchsorted(pts, h)) % len(pts)] for h in probes]
        assert ring.lookup_hashes(probes.astype(np.uint32)).tolist() == [int(w) for w in want]


# ---------------------------------------------------------------- membership


def test_haproxy_renumbers_servers_after_a_deleted_line():
    keys = [f"k{i}" for i in range(20_000)]
    ring = HashRing.haproxy(["s1", "s2", "s3", "s4"])
    before = ring.get_many(keys)
    change = ring.remove("s2")
    after = ring.get_many(keys)
    between = sum(a != b and a != "s2" for a, b in zip(before, after, strict=True))
    assert between > 1000  # s3 and s4 took s2's and s3's ids
    assert change.fraction > 0.3
    assert ring._snap._preset.ids == {"s1": 1, "s3": 2, "s4": 3}
    fixed = HashRing.haproxy([("s1", 1, 1), ("s2", 1, 2), ("s3", 1, 3), ("s4", 1, 4)])
    before = fixed.get_many(keys)
    fixed.remove("s2")
    moved = [(a, b) for a, b in zip(before, fixed.get_many(keys), strict=True) if a != b]
    assert moved and all(a == "s2" for a, _ in moved)  # written ids: only s2's keys move


@pytest.mark.parametrize(
    "ring",
    [
        HashRing.nginx({"a:1": 1, "b:2": 2}),
        HashRing.haproxy([("a", 1), ("b", 2, 7)], "djb2", avalanche=True),
        HashRing.twemproxy(["10.0.0.1:11211:1", "10.0.0.2:11211:2 b"], "md5"),
        HashRing.libmemcached(["10.0.0.1:11211", "10.0.0.2:11212"]),
        HashRing.libmemcached(["10.0.0.1:11211", "10.0.0.2"], {"ketama_weighted": True}),
    ],
    ids=lambda r: r.preset,
)
def test_persistence_and_changes(ring):
    keys = [f"k{i}" for i in range(3000)]
    for again in reloaded(ring):
        assert again.get_many(keys) == ring.get_many(keys)
        assert again.preset == ring.preset
    before = ring.get_many(keys)
    node = "10.0.0.3:11211:1" if ring.preset == "twemproxy" else "10.0.0.3:11211"
    change = ring.add(node, 1)
    after = ring.get_many(keys)
    np.testing.assert_array_equal(
        change.moved(keys), np.array(before, dtype=object) != np.array(after, dtype=object)
    )


# ---------------------------------------------------------------- config readers and errors


NGINX = """
http {
  upstream app {
    hash $request_uri consistent;
    server 10.0.0.1:8080 weight=2;
    server backend.local:8080;
    server 10.0.0.3:8080 down;
    keepalive 16;
  }
  upstream rr { server 10.0.0.1:80; }
}
"""


def test_nginx_config():
    ring = HashRing.from_nginx(NGINX, "app")
    assert set(ring.nodes) == {"10.0.0.1:8080", "backend.local:8080", "10.0.0.3:8080"}
    assert "10.0.0.3:8080" not in set(ring.get_many([f"k{i}" for i in range(5000)]))  # down
    with pytest.raises(ValueError, match=r"line 10: upstream rr does not use 'hash"):
        HashRing.from_nginx(NGINX, "rr")
    with pytest.raises(ValueError, match="no 'upstream nope'"):
        HashRing.from_nginx(NGINX, "nope")
    with pytest.raises(ValueError, match=r"line 4: nginx refuses 'backup'"):
        HashRing.from_nginx(
            "upstream u {\n hash $a consistent;\n server a:1;\n server b:1 backup;\n}", "u"
        )
    with pytest.raises(ValueError, match="line 3: 'least_conn' is not consistent"):
        HashRing.from_nginx("upstream u {\n hash $a consistent;\n least_conn;\n}", "u")
    with pytest.raises(ValueError, match="listed twice"):
        HashRing.from_nginx(
            "upstream u {\n hash $a consistent;\n server a:1;\n server a:1;\n}", "u"
        )
    assert HashRing.nginx(["localhost:80"]).points[0] != HashRing.nginx(["127.0.0.1:80"]).points[0]
    # the last balancing directive decides, as in nginx ("load balancing method redefined")
    hashed = HashRing.from_nginx(
        "upstream u {\n least_conn;\n hash $a consistent;\n server a:1;\n}", "u"
    )
    assert hashed.nodes == ("a:1",)
    with pytest.raises(ValueError, match=r"line 3: upstream u does not use 'hash"):
        HashRing.from_nginx("upstream u {\n hash $a consistent;\n hash $a;\n server a:1;\n}", "u")
    # 'backup' before the hash line: nginx accepts it, and never hashes to it
    backup = "upstream u {\n server b:1 backup;\n hash $a consistent;\n server a:1;\n}"
    assert HashRing.from_nginx(backup, "u").nodes == ("a:1",)
    with pytest.raises(ValueError, match=r"line 4: nginx refuses 'backup' servers after 'hash'"):
        HashRing.from_nginx(
            "upstream u {\n hash $a consistent;\n server a:1;\n server b backup;\n}", "u"
        )
    with pytest.raises(ValueError, match=r"line 1: upstream u has no server"):
        HashRing.from_nginx("upstream u {\n server b:1 backup;\n hash $a consistent;\n}", "u")


def test_nginx_http_and_stream():
    """nginx keeps http's and stream's upstreams apart: a name in both is asked for
    as 'http:NAME' or 'stream:NAME'."""
    conf = (
        "http {\n upstream app {\n  hash $arg_k consistent;\n  server 10.0.0.1:80;\n }\n}\n"
        "stream {\n upstream app {\n  hash $remote_addr consistent;\n"
        "  server 10.0.0.2:5432;\n }\n}\n"
    )
    with pytest.raises(ValueError, match=r"'app' is defined 2 times \(nginx.conf line 2, "):
        HashRing.from_nginx(conf, "app")
    assert HashRing.from_nginx(conf, "http:app").nodes == ("10.0.0.1:80",)
    assert HashRing.from_nginx(conf, "stream:app").nodes == ("10.0.0.2:5432",)
    with pytest.raises(ValueError, match="no 'upstream app' block in a stream block in the"):
        HashRing.from_nginx(conf.split("stream {")[0], "stream:app")


def test_nginx_conf_file(tmp_path):
    """A path is read as nginx reads it: its includes (relative to its directory, globs
    expanded) too; errors name the file and line."""
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "app.conf").write_text(
        "upstream app {\n  hash $arg_k consistent;\n"
        "  server 10.0.0.1:80;\n  server 10.0.0.2:80;\n}\n"
    )
    (tmp_path / "nginx.conf").write_text("events {}\nhttp {\n  include conf.d/*.conf;\n}\n")
    ring = HashRing.from_nginx(tmp_path / "nginx.conf", "app")
    text = (tmp_path / "conf.d" / "app.conf").read_text()
    assert ring.to_dict() == HashRing.from_nginx(text, "app").to_dict()
    with pytest.raises(ValueError, match=r"no 'upstream nope' block in .*nginx.conf or the 1 file"):
        HashRing.from_nginx(tmp_path / "nginx.conf", "nope")
    (tmp_path / "conf.d" / "bad.conf").write_text("upstream bad {\n  server 10.0.0.1:80;\n}\n")
    with pytest.raises(ValueError, match=r"bad.conf line 1: upstream bad does not use 'hash"):
        HashRing.from_nginx(tmp_path / "nginx.conf", "bad")
    (tmp_path / "broken.conf").write_text("http {\n  include missing.conf;\n}\n")
    with pytest.raises(ValueError, match=r"broken.conf line 2: .*missing.conf"):
        HashRing.from_nginx(tmp_path / "broken.conf", "app")
    with pytest.raises(FileNotFoundError, match="no nginx.conf at"):
        HashRing.from_nginx(tmp_path / "absent.conf", "app")
    with pytest.raises(TypeError, match="text .str. or a path"):
        HashRing.from_nginx(b"upstream app {}", "app")  # type: ignore[arg-type]


def nginx_servers(rng: random.Random) -> list[tuple[str, int, bool]]:
    forms = ["10.0.{}.{}:{}", "unix:/run/app{}.{}.sock{}", "h{}.{}.example{}", "h{}-{}:{}:"]
    return [
        (
            rng.choice(forms).format(i, rng.randrange(256), rng.randrange(1, 65536)),
            rng.randrange(1, 4),
            rng.random() < 0.3,
        )
        for i in range(rng.randrange(1, 7))
    ]


@pytest.mark.parametrize("seed", range(40))
def test_nginx_down_servers_model(seed):
    """Down servers, against a model of nginx's C (proxy_models.nginx_route): keys on
    a down server's points go to the next live point; where nginx would go round robin
    (21 down points in a row) the model has no answer and the key is not compared.
    Every fourth case gives a live server a point equal to a down one's, listed after it."""
    rng = random.Random(seed)
    servers = nginx_servers(rng)
    if seed % 4 == 0:
        down = ("10.9.9.9:80", 1, True)
        target = int(HashRing.nginx([down[0]]).points[rng.randrange(160)])
        tail = forge_crc32(b"/run/forged", b"\0" * 5, target)
        assert tail is not None
        servers = [down, *servers, ("unix:/run/forged" + tail.decode(), 1, False)]
        assert target in HashRing.nginx([servers[-1][0]]).points  # the premise
    keys = [f"k{rng.random()}".encode() for _ in range(3000)]
    if seed % 4 == 0:  # and keys in the arc of the shared point
        points = [p for p, _ in nginx_continuum(servers)]
        low = points[points.index(target) - 1] if points.index(target) else -1
        # keys whose hash is in the arc that ends at the shared point, and on it
        hashes = [target, *(rng.randrange(low + 1, target + 1) for _ in range(49))]
        keys += [b"a" + (forge_crc32(b"a", b"", h) or b"") for h in hashes]
        assert [zlib.crc32(k) for k in keys[-50:]] == hashes
    ring = HashRing.nginx(servers)
    want = nginx_route(servers, keys)
    if all(down for _, _, down in servers):
        with pytest.raises(EmptyRingError):
            ring.get_many(keys)
        return
    got = ring.get_many(keys)
    compared = [(g, w) for g, w in zip(got, want, strict=True) if w is not None]
    assert [g for g, _ in compared] == [w for _, w in compared]
    assert sum(w is None for w in want) <= len(keys) // 20


HAPROXY = """
defaults
    balance uri
    hash-type consistent djb2 avalanche

backend web
    server a 10.0.0.1:80 weight 3 check
    server b 10.0.0.2:80 id 9
    server c 10.0.0.3:80

backend plain
    balance roundrobin
    server a 10.0.0.1:80

listen mapped
    hash-type map-based
    server a 10.0.0.1:80
"""


def test_haproxy_config():
    ring = HashRing.from_haproxy(HAPROXY, "web")
    state = ring._snap._preset
    assert (state.function, state.avalanche) == ("djb2", True)
    assert state.ids == {"a": 1, "b": 9, "c": 2}
    assert ring.weights == {"a": 3.0, "b": 1.0, "c": 1.0}
    with pytest.raises(ValueError, match="line 12: 'balance roundrobin' does not hash"):
        HashRing.from_haproxy(HAPROXY, "plain")
    with pytest.raises(
        ValueError, match="line 16: backend mapped does not use 'hash-type consistent'"
    ):
        HashRing.from_haproxy(HAPROXY, "mapped")
    with pytest.raises(ValueError, match="no 'backend nope'"):
        HashRing.from_haproxy(HAPROXY, "nope")
    with pytest.raises(ValueError, match="unknown hash function 'md5'"):
        HashRing.from_haproxy(
            "backend x\n balance uri\n hash-type consistent md5\n server a b\n", "x"
        )
    with pytest.raises(ValueError, match="same id"):
        HashRing.haproxy([("a", 1, 2), ("b", 1, 2)])
    with pytest.raises(ValueError, match=r"\[0, 256\]"):
        HashRing.haproxy([("a", 300)])


HAPROXY_SETTINGS = """
defaults base
    balance url_param k
    hash-type consistent
    default-server weight 2 check inter 2s

defaults
    balance hdr(x)
    hash-type consistent crc32

backend inherits
    default-server weight 4 cookie backup
    server a 10.0.0.1:80
    server b 10.0.0.2:80 weight 1
    default-server disabled
    server c 10.0.0.3:80
    server d 10.0.0.4:80 enabled

backend named from base
    server a 10.0.0.1:80
    server-template t 2-4 10.0.0.9:80 weight 3
    server z 10.0.0.5:80 backup

backend onlybackups from base
    server a 10.0.0.1:80 backup
    server b 10.0.0.2:80 backup weight 5
    server c 10.0.0.3:80 weight 0

backend allbackups from base
    option allbackups
    default-server backup
    server a 10.0.0.1:80
    server b 10.0.0.2:80
    server c 10.0.0.3:80 no-backup disabled
"""


def test_haproxy_settings():
    """default-server (from defaults and in the backend, by line order), named defaults
    (``from``), server-template, backup servers and ``option allbackups``."""
    ring = HashRing.from_haproxy(HAPROXY_SETTINGS, "inherits")
    state = ring._snap._preset
    assert (state.function, state.avalanche) == ("crc32", False)  # the last defaults
    assert state.balance == "hdr(x)"
    assert ring.weights == {"a": 4.0, "b": 1.0, "c": 0.0, "d": 4.0}  # 'cookie backup': a value
    assert state.hashed == [("a", 4), ("b", 1), ("c", 0), ("d", 4)]
    named = HashRing.from_haproxy(HAPROXY_SETTINGS, "named")
    state = named._snap._preset
    assert (state.function, state.avalanche, state.balance) == ("sdbm", True, "url_param k")
    assert state.ids == {"a": 1, "t2": 2, "t3": 3, "t4": 4, "z": 5}
    assert named.weights == {"a": 2.0, "t2": 3.0, "t3": 3.0, "t4": 3.0, "z": 2.0}
    keys = [f"k{i}" for i in range(5000)]
    owners = named.get_many(keys)
    assert "z" not in owners and set(owners) == {"a", "t2", "t3", "t4"}  # z: a backup
    # the same servers with z at weight 0 (its id kept): the same routing
    same = HashRing.haproxy(
        [("a", 2), ("t2", 3), ("t3", 3), ("t4", 3), ("z", 0)], "sdbm", balance="url_param k"
    )
    assert same.get_many(keys) == owners
    # no active server can take a key: the first backup takes them all
    only = HashRing.from_haproxy(HAPROXY_SETTINGS, "onlybackups")
    assert set(only.get_many(keys)) == {"a"}
    assert set(only.remove("a") and only.get_many(keys)) == {"b"}
    # option allbackups: hashed over the backups, as the actives would be
    every = HashRing.from_haproxy(HAPROXY_SETTINGS, "allbackups")
    assert every._snap._preset.hashed == [("a", 2), ("b", 2)]
    assert every.get_many(keys) == HashRing.haproxy([("a", 2), ("b", 2)]).get_many(keys)
    assert set(every.get_many(keys)) == {"a", "b"}
    for ring in (named, every, only):
        for again in reloaded(ring):
            assert again.get_many(keys) == ring.get_many(keys)
    with pytest.raises(ValueError, match="line 3: defaults section 'nope' not found"):
        HashRing.from_haproxy("defaults\n balance uri\nbackend x from nope\n", "x")
    bad = "backend x\n balance uri\n hash-type consistent\n"
    with pytest.raises(ValueError, match=r"line 4: 'hash-key addr' \(HAProxy 3.0\)"):
        HashRing.from_haproxy(bad + " server a 1.1.1.1:1 hash-key addr\n", "x")
    assert HashRing.from_haproxy(bad + " server a 1.1.1.1:1 hash-key id\n", "x").nodes == ("a",)
    with pytest.raises(ValueError, match="line 4: 'id' is not allowed on default-server"):
        HashRing.from_haproxy(bad + " default-server id 3\n server a b\n", "x")
    with pytest.raises(ValueError, match="line 4: 'weight' expects an argument"):
        HashRing.from_haproxy(bad + " server a 1.1.1.1:1 weight\n", "x")
    with pytest.raises(ValueError, match="line 4: bad server-template range '3-1'"):
        HashRing.from_haproxy(bad + " server-template s 3-1 1.1.1.1:1\n", "x")
    with pytest.raises(ValueError, match="line 4: 'hash-balance-factor' is not reproduced"):
        HashRing.from_haproxy(bad + " hash-balance-factor 150\n server a b\n", "x")
    inherited = "defaults\n hash-balance-factor 125\n" + bad + " server a b\n"
    with pytest.raises(ValueError, match="line 2: 'hash-balance-factor' is not reproduced"):
        HashRing.from_haproxy(inherited, "x")
    off = inherited.replace(" server a b", " hash-balance-factor 0\n server a b")
    assert HashRing.from_haproxy(off, "x").nodes == ("a",)
    with pytest.raises(TypeError, match="backup flag is a bool"):
        HashRing.haproxy([("a", 1, None, "yes")])
    with pytest.raises(ValueError, match=r"a server is \(name, weight"):
        HashRing.haproxy([("a", 1, None, True, 5)])


def test_haproxy_hdr_keys():
    """What ``balance hdr()`` hashes of a header value (http_find_header's first value)
    and ``use_domain_only`` of it (get_server_hh), written out by hand."""
    assert hdr_keys(["a,b", " x , y", '"a,b",c', '"a\\",b",c', "", "plain\t", b"raw"]) == [
        b"a",
        b"x",
        b'"a,b"',
        b'"a\\",b"',
        b"",
        b"plain",
        b"raw",
    ]
    hosts = ["www.example.com", "example.com", "example.com:8080", "localhost", "a.b.c.d"]
    hosts += [".com", "a.b", "x.y, z.w", "trailing.dot."]
    assert hdr_keys(hosts, use_domain_only=True) == [
        b"example",
        b"example",
        b"example",
        b"localhost",
        b"c",
        b".com",
        b"a",
        b"x",
        b"dot",
    ]
    ring = HashRing.from_haproxy(
        "backend b\n balance hdr(host) use_domain_only\n hash-type consistent\n"
        " server s1 a:1\n server s2 b:1\n",
        "b",
    )
    lines = [b"www.shop.example", b"shop.example:443", b"api.shop.example"]
    keys = ring._snap._preset.keys_of_text(lines)
    assert keys == [b"shop"] * 3 and len(set(ring.get_many(keys))) == 1


def test_pymemcache_server_strings():
    """Server strings are read as pymemcache's normalize_server_spec reads them, and
    each is the node HashClient names it by (``_make_client_key``)."""
    specs = {
        "10.0.0.1:11212": "10.0.0.1:11212",
        "10.0.0.2": "10.0.0.2:11211",
        "[2001:db8::1]:11213": "2001:db8::1:11213",
        "[2001:db8::2]": "2001:db8::2:11211",
        "unix:/run/mc.sock": "/run/mc.sock",
        "/run/mc2.sock": "/run/mc2.sock",
        "cache:011214": "cache:11214",
        ("10.0.0.3", 11215): "10.0.0.3:11215",
    }
    assert PymemcacheHash(list(specs)).nodes == tuple(specs.values())
    try:
        from pymemcache.client.base import normalize_server_spec
        from pymemcache.client.hash import HashClient
    except ImportError:  # pragma: no cover - the test extra installs it
        pytest.skip("pymemcache is not installed")
    client = HashClient([])
    for spec, node in specs.items():
        assert client._make_client_key(normalize_server_spec(spec)) == node
    for bad, error in (("cache:port", ValueError), ("unix:", ValueError), (b"x:1", TypeError)):
        with pytest.raises(error):
            PymemcacheHash([bad])


TWEMPROXY = """
alpha:
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  distribution: ketama
  servers:
   - 127.0.0.1:11212:1 one
   - 127.0.0.1:11213:2
beta:
  distribution: modula
  servers:
   - 127.0.0.1:11212:1
gamma:
  hash: sha1
  servers:
   - 127.0.0.1:11212:1
"""


def test_twemproxy_config():
    ring = HashRing.from_twemproxy(TWEMPROXY, "alpha")
    assert ring.nodes == ("127.0.0.1:11212:1 one", "127.0.0.1:11213:2")
    assert ring.weights == {"127.0.0.1:11212:1 one": 1.0, "127.0.0.1:11213:2": 2.0}
    with pytest.raises(ValueError, match=r"beta \(line 9\): distribution 'modula'"):
        HashRing.from_twemproxy(TWEMPROXY, "beta")
    with pytest.raises(ValueError, match="unsupported twemproxy hash 'sha1'"):
        HashRing.from_twemproxy(TWEMPROXY, "gamma")
    with pytest.raises(ValueError, match="no pool 'nope'"):
        HashRing.from_twemproxy(TWEMPROXY, "nope")
    with pytest.raises(ValueError, match="host:port:weight"):
        HashRing.twemproxy(["127.0.0.1:11212"])


def test_libmemcached_behaviors():
    with pytest.raises(ValueError, match="only the consistent ones"):
        HashRing.libmemcached(["a:1"], {"ketama": False})
    with pytest.raises(ValueError, match="not reproduced"):
        HashRing.libmemcached(["a:1"], {"ketama": True, "tcp_nodelay": True})
    with pytest.raises(ValueError, match="unsupported libmemcached hash 'hsieh'"):
        HashRing.libmemcached(["a:1"], {"ketama": True, "hash": "hsieh"})
    plain = HashRing.libmemcached(["a:11211", "b:11212"])
    assert plain.vnodes == 100 and plain.hash == "default"
    weighted = HashRing.libmemcached(["a:11211:2", "b:11212"])
    assert weighted.vnodes == 160 and weighted.hash == "default"  # switched by the weight
    md5 = HashRing.libmemcached(["a", "b"], {"ketama_weighted": True})
    assert md5.hash == "md5"  # ketama_weighted sets the key hash too
    # libmemcached's ketama_weighted is libketama's rule: the ketama preset agrees
    ketama = HashRing.ketama({"a": 1, "b": 1})
    keys = [f"k{i}" for i in range(2000)]
    assert md5.get_many(keys) == ketama.get_many(keys)


# ---------------------------------------------------------------- command line


def test_cli_route_and_simulate_from_configs(tmp_path, capsys, monkeypatch):
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(HAPROXY)
    changed = tmp_path / "haproxy2.cfg"
    changed.write_text(HAPROXY.replace("    server a 10.0.0.1:80 weight 3 check\n", ""))
    keys = tmp_path / "keys"
    keys.write_text("".join(f"k{i}\n" for i in range(2000)))
    out = tmp_path / "out"
    assert (
        main(["route", str(keys), "--haproxy", str(cfg), "--backend", "web", "-o", str(out)]) == 0
    )
    ring = HashRing.from_haproxy(HAPROXY, "web")
    lines = out.read_text().splitlines()
    assert [x.split("\t")[1] for x in lines] == ring.get_many([f"k{i}" for i in range(2000)])
    monkeypatch.setitem(sys.modules, "rich", None)  # --json needs no rich
    args = ["simulate", "--haproxy", str(cfg), "--backend", "web", "--to", str(changed)]
    assert main([*args, "--keys", "20000", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["moved_between_unchanged_keys"] > 0  # c was renumbered from 2 to 1
    assert {(p["from"], p["to"]) for p in result["moved_between_unchanged"]} <= {
        ("c", "b"),
        ("b", "c"),
    }
    with pytest.raises(SystemExit):
        main(["simulate", "--haproxy", str(cfg), "--backend", "web", "--keys", "10"])  # needs rich
    with pytest.raises(SystemExit):
        main(["route", "--haproxy", str(cfg)])  # no --backend
    with pytest.raises(SystemExit):
        main(["route", "--haproxy", str(cfg), "--backend", "web", "--nodes", "a,b"])


def test_cli_server_lists(tmp_path, capsys):
    servers = "10.0.0.1:11211,10.0.0.2:11211,10.0.0.3:11211"
    smaller = "10.0.0.1:11211,10.0.0.3:11211"
    for option in ("--libmemcached", "--pymemcache"):
        assert main(["simulate", option, servers, "--to", smaller, "--keys", "5000", "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["moved_between_unchanged_keys"] == 0
        assert {p["from"] for p in result["moved"]} == {"10.0.0.2:11211"}
    keys = tmp_path / "keys"
    keys.write_text("a\nb\nc\n")
    assert main(["route", str(keys), "--pymemcache", servers]) == 0
    lines = capsys.readouterr().out.splitlines()
    client = PymemcacheHash(servers.split(","))
    assert lines == [f"{k}\t{client.get(k)}" for k in "abc"]
    behaviors = ["--behaviors", "ketama,hash=md5"]
    assert main(["route", str(keys), "--libmemcached", servers, *behaviors]) == 0
    ring = HashRing.libmemcached(servers.split(","), {"ketama": True, "hash": "md5"})
    assert capsys.readouterr().out.splitlines() == [f"{k}\t{ring.get(k)}" for k in "abc"]


# ---------------------------------------------------------------- the build's plain char

NON_ASCII_KEYS = [f"{w}:{i}" for i in range(200) for w in ("ñandú", "中文键", "ключ", "😀")]


def test_char_of_the_build_travels_with_the_ring(tmp_path, capsys):
    """``char="unsigned"`` (a proxy or libmemcached built for aarch64) routes non-ASCII
    keys differently from the x86-64 default, ASCII keys the same; it survives every
    persistence form and membership change, and the CLI takes it as ``--char``."""
    ascii_keys = [f"user:{i}" for i in range(2000)]
    lines = ["10.0.0.1:11211:1", "10.0.0.2:11211:2 b", "10.0.0.3:11211:1"]
    specs = ["10.0.0.1:11211", "10.0.0.2:11212", "10.0.0.3"]
    for make, added in (
        (lambda servers, **kw: HashRing.twemproxy(servers, "one_at_a_time", **kw), lines),
        (lambda servers, **kw: HashRing.libmemcached(servers, **kw), specs),
    ):
        signed, unsigned = make(added), make(added, char="unsigned")
        assert make(added, char="signed").get_many(NON_ASCII_KEYS) == signed.get_many(
            NON_ASCII_KEYS
        )
        assert unsigned.get_many(ascii_keys) == signed.get_many(ascii_keys)
        assert unsigned.get_many(NON_ASCII_KEYS) != signed.get_many(NON_ASCII_KEYS)
        want = unsigned.get_many(NON_ASCII_KEYS)
        assert unsigned.to_dict()["state"]["char"] == "unsigned"
        for again in reloaded(unsigned):
            assert again.get_many(NON_ASCII_KEYS) == want
        # a description written before char existed is of a signed-char ring
        legacy = signed.to_dict()
        del legacy["state"]["char"]
        assert HashRing.from_dict(legacy).get_many(NON_ASCII_KEYS) == signed.get_many(
            NON_ASCII_KEYS
        )
        # membership changes keep it: the same as the ring built afresh
        unsigned.remove(added[1])
        assert unsigned.get_many(NON_ASCII_KEYS) == make(
            [added[0], added[2]], char="unsigned"
        ).get_many(NON_ASCII_KEYS)
        unsigned.add(added[1], 1)
        rebuilt = make([added[0], added[2], added[1]], char="unsigned")
        assert unsigned.get_many(NON_ASCII_KEYS) == rebuilt.get_many(NON_ASCII_KEYS)
    yml = "p:\n  hash: fnv1a_64\n  servers:\n" + "".join(f"   - {s}\n" for s in lines)
    assert HashRing.from_twemproxy(yml, "p", char="unsigned").get_many(
        NON_ASCII_KEYS
    ) == HashRing.twemproxy(lines, char="unsigned").get_many(NON_ASCII_KEYS)
    # the command line
    keys = tmp_path / "keys"
    keys.write_text("".join(f"{k}\n" for k in NON_ASCII_KEYS), encoding="utf-8")
    conf = tmp_path / "nutcracker.yml"
    conf.write_text(yml, encoding="utf-8")
    route = ["route", str(keys), "--twemproxy", str(conf), "--pool", "p"]
    assert main([*route, "--char", "unsigned"]) == 0
    ring = HashRing.twemproxy(lines, char="unsigned")
    assert capsys.readouterr().out.splitlines() == [
        f"{k}\t{o}" for k, o in zip(NON_ASCII_KEYS, ring.get_many(NON_ASCII_KEYS), strict=True)
    ]
    servers = ",".join(specs)
    assert main(["route", str(keys), "--libmemcached", servers, "--char", "unsigned"]) == 0
    ring = HashRing.libmemcached(specs, char="unsigned")
    assert capsys.readouterr().out.splitlines() == [
        f"{k}\t{o}" for k, o in zip(NON_ASCII_KEYS, ring.get_many(NON_ASCII_KEYS), strict=True)
    ]
    with pytest.raises(SystemExit):
        main(["route", str(keys), "--nodes", "a,b", "--char", "unsigned"])
    assert "--char is for --twemproxy and --libmemcached" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*route, "--char", "arm"])


@pytest.mark.parametrize(
    "make",
    [
        lambda char: HashRing.twemproxy(["h:1:1"], char=char),
        lambda char: HashRing.from_twemproxy("p:\n  servers:\n   - h:1:1\n", "p", char=char),
        lambda char: HashRing.libmemcached(["h:1"], char=char),
    ],
    ids=["twemproxy", "from_twemproxy", "libmemcached"],
)
def test_char_must_be_signed_or_unsigned(make):
    with pytest.raises(TypeError, match="char must be 'signed' or 'unsigned', not bool"):
        make(True)
    with pytest.raises(TypeError, match="not NoneType"):
        make(None)
    for bad in ("Unsigned", "aarch64", ""):
        with pytest.raises(ValueError, match=r"char must be 'signed' \(builds for x86-64\)"):
            make(bad)


def test_every_preset_adds_a_node_with_the_default_weight(tmp_path, capsys):
    """``ring.add(node)`` without a weight works on every preset (their weights are
    ints; the default is the int 1), and ``ringhash simulate --add`` on a config's ring."""
    keys = [f"k{i}" for i in range(3000)]
    for ring, node in (
        (HashRing.ketama({"10.0.0.1:11211": 1}), "10.0.0.2:11211"),
        (HashRing.nginx(["10.0.0.1:80"]), "10.0.0.2:80"),
        (HashRing.haproxy(["s1"]), "s2"),
        (HashRing.twemproxy(["10.0.0.1:11211:1"]), "10.0.0.2:11211:1"),
        (HashRing.libmemcached(["10.0.0.1:11211"]), "10.0.0.2:11211"),
        (HashRing(["a"]), "b"),
    ):
        before = ring.get_many(keys)
        change = ring.add(node)
        assert ring.weights[node] == 1.0 and type(ring.weights[node]) is float
        moved = change.moved(keys)
        assert 0 < moved.sum() < len(keys)
        assert all(a != b for a, b, m in zip(before, ring.get_many(keys), moved, strict=True) if m)
    cfg = tmp_path / "nutcracker.yml"
    cfg.write_text("p:\n  servers:\n   - 10.0.0.1:11211:1\n   - 10.0.0.2:11211:1\n")
    args = ["simulate", "--twemproxy", str(cfg), "--pool", "p", "--keys", "5000", "--json"]
    assert main([*args, "--add", "10.0.0.3:11211:1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {p["to"] for p in result["moved"]} == {"10.0.0.3:11211:1"}
    # host:port is the server, not a node "host" of weight "port"
    servers = ["--libmemcached", "10.0.0.1:11211,10.0.0.2:11211", "--keys", "5000", "--json"]
    assert main(["simulate", *servers, "--add", "10.0.0.3:11211"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {p["to"] for p in result["moved"]} == {"10.0.0.3:11211"}
    # a plain ring's NAME:WEIGHT is still a weight
    assert main(["simulate", "--nodes", "a,b", "--add", "c:3", "--keys", "5000", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {p["to"] for p in result["moved"]} == {"c"}


# ---------------------------------------------------------------- twemproxy's hash_tag


@pytest.mark.parametrize("tag", ["{}", "$$", "é"])  # "é": one character of two bytes
def test_hash_tag_hashes_the_tagged_part(tag):
    rng = random.Random(tag)
    raw = tag.encode()
    alphabet = b"ab\xc3\xa9{}$:0"
    keys = [bytes(rng.choice(alphabet) for _ in range(rng.randrange(12))) for _ in range(3000)]
    assert sum(tagged(k, raw) != k for k in keys) > 200  # the tag decides for many
    for name in sorted(TWEMPROXY_TABLE):
        algo = TWEMPROXY_TABLE[name]
        with_tag = _core.with_hash_tag(algo, raw)
        want = _core.hash_objects([tagged(k, raw) for k in keys], algo, 0)
        np.testing.assert_array_equal(_core.hash_objects(keys, with_tag, 0), want)
        if algo in _core.CHAR_HASHES:  # with the build's char too
            unsigned = _core.hash_objects(
                [tagged(k, raw) for k in keys], algo | _core.UNSIGNED_CHAR, 0
            )
            got = _core.hash_objects(keys, with_tag | _core.UNSIGNED_CHAR, 0)
            np.testing.assert_array_equal(got, unsigned)


def test_hash_tag_travels_with_the_ring(tmp_path, capsys):
    lines = ["10.0.0.1:11211:1", "10.0.0.2:11211:2 b", "10.0.0.3:11211:1"]
    ring = HashRing.twemproxy(lines, "fnv1a_32", hash_tag="{}")
    keys = [f"cart:{{{i % 40}}}:{i}" for i in range(4000)]
    owners = ring.get_many(keys)
    assert owners == HashRing.twemproxy(lines, "fnv1a_32").get_many(
        [k.split("{")[1].split("}")[0] for k in keys]
    )
    for again in reloaded(ring):
        assert again.get_many(keys) == owners
    legacy = ring.to_dict()
    del legacy["state"]["hash_tag"]  # written before hash_tag existed: no tag
    assert HashRing.from_dict(legacy).get_many(keys) == HashRing.twemproxy(
        lines, "fnv1a_32"
    ).get_many(keys)
    ring.remove(lines[1])
    assert ring.get_many(keys) == HashRing.twemproxy(
        [lines[0], lines[2]], "fnv1a_32", hash_tag="{}"
    ).get_many(keys)
    ring.add(lines[1])
    assert ring.get_many(keys) == HashRing.twemproxy(
        [lines[0], lines[2], lines[1]], "fnv1a_32", hash_tag="{}"
    ).get_many(keys)
    yml = "p:\n  hash: fnv1a_32\n  hash_tag: '{}'\n  servers:\n" + "".join(
        f"   - {s}\n" for s in lines
    )
    from_file = HashRing.from_twemproxy(yml, "p")
    assert from_file.get_many(keys) == HashRing.twemproxy(
        lines, "fnv1a_32", hash_tag="{}"
    ).get_many(keys)
    conf, keyfile = tmp_path / "nutcracker.yml", tmp_path / "keys"
    conf.write_text(yml)
    keyfile.write_text("".join(f"{k}\n" for k in keys[:50]))
    assert main(["route", str(keyfile), "--twemproxy", str(conf), "--pool", "p"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{k}\t{o}" for k, o in zip(keys[:50], from_file.get_many(keys[:50]), strict=True)
    ]


def test_hash_tag_must_be_two_one_byte_characters():
    with pytest.raises(TypeError, match="hash_tag must be a str of two characters, not bytes"):
        HashRing.twemproxy(["h:1:1"], hash_tag=b"{}")
    for bad in ("{", "{}}", "ab c", "\0}", "中"):
        with pytest.raises(ValueError, match="hash_tag must be two one-byte characters"):
            HashRing.twemproxy(["h:1:1"], hash_tag=bad)
    yml = "p:\n  hash_tag: '{'\n  servers:\n   - h:1:1\n"
    with pytest.raises(ValueError, match=r"pool p \(line 1\): hash_tag must be two"):
        HashRing.from_twemproxy(yml, "p")
    with pytest.raises(ValueError, match=r"pool p \(line 1\): hash_tag must be a str"):
        HashRing.from_twemproxy("p:\n  hash_tag: 12\n  servers:\n   - h:1:1\n", "p")
    fnv = _core.PROXY_HASHES["fnv1a_64"]
    for bad_tag in (b"{", b"{}}", b"\0}", b"{\0"):
        with pytest.raises(ValueError, match="a hash tag is two non-NUL bytes"):
            _core.with_hash_tag(fnv, bad_tag)
    with pytest.raises(ValueError, match="has a hash tag already"):
        _core.with_hash_tag(_core.with_hash_tag(fnv, b"{}"), b"[]")
    # a table refuses tag bits on murmur3, or a tag without its bytes
    for algo in (_core.MURMUR3 | (_core.with_hash_tag(fnv, b"{}") & ~0xFF), fnv | _core.HASH_TAG):
        with pytest.raises(ValueError, match="a hash tag is for the proxies' hashes"):
            _core.RingTable([1], [0], ("a",), algo, 0)


def test_haproxy_disabled_server_keeps_its_id_and_takes_no_keys():
    cfg = (
        "backend web\n    balance url_param key\n    hash-type consistent\n"
        "    server a 10.0.0.1:80\n    server b 10.0.0.2:80 disabled\n    server c 10.0.0.3:80\n"
    )
    ring = HashRing.from_haproxy(cfg, "web")
    keys = [f"k{i}" for i in range(5000)]
    assert "b" not in set(ring.get_many(keys)) and ring.weights["b"] == 0.0
    # c keeps id 3: the same ring as b at weight 0, not as b's line deleted
    assert ring.get_many(keys) == HashRing.haproxy([("a", 1), ("b", 0), ("c", 1)]).get_many(keys)
    assert ring.get_many(keys) != HashRing.haproxy(["a", "c"]).get_many(keys)


def test_haproxy_balance_source_keys():
    cfg = (
        "backend web\n    balance source\n    hash-type consistent djb2 avalanche\n"
        "    server a 10.0.0.1:80\n    server b 10.0.0.2:80 weight 2\n    server c 10.0.0.3:80\n"
    )
    ring = HashRing.from_haproxy(cfg, "web")
    assert ring.hash == "source avalanche"  # the function is not used; the modifier is
    assert HashRing.haproxy(["a", ("b", 2), "c"], "source").hash == "source avalanche"
    addresses = ["10.1.2.3", "192.168.0.255", "2001:db8::7", "::ffff:10.1.2.3"]
    keys = source_keys(addresses)
    assert keys[:2] == [bytes([10, 1, 2, 3]), bytes([192, 168, 0, 255])] and len(keys[2]) == 16
    assert source_keys([ipaddress.ip_address("10.1.2.3"), bytes(keys[0])]) == [keys[0]] * 2
    full = [full_hash(haproxy_source(k)) for k in keys]
    assert ring.get_many(keys) == [ring.nodes[i] for i in ring.lookup_hashes(full)]
    plain = HashRing.haproxy(["a", ("b", 2), "c"], "source", avalanche=False)
    raw = [haproxy_source(k) for k in keys]
    assert plain.get_many(keys) == [plain.nodes[i] for i in plain.lookup_hashes(raw)]
    for again in reloaded(ring):
        assert again.get_many(keys) == ring.get_many(keys) and again.hash == ring.hash
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        source_keys(["10.0.0.300"])
    with pytest.raises(ValueError, match="a packed address has 4 or 16 bytes, not 5"):
        source_keys([b"12345"])
    with pytest.raises(TypeError, match="an address is a str, an ipaddress address or bytes"):
        source_keys([167772161])
    with pytest.raises(ValueError, match="unknown hash function 'source'"):
        HashRing.from_haproxy(cfg.replace("djb2 avalanche", "source"), "web")


def test_libmemcached_distributions_and_their_order():
    """pylibmc applies hash, ketama_hash, ketama, ketama_weighted, distribution in that
    order; the state after them is the ring (tests/test_real_proxies.py checks each
    against libmemcached itself)."""
    three = ["10.0.0.1:11211", "10.0.0.2:11212", "10.0.0.3:11213"]
    keys = [f"k{i}" for i in range(3000)]
    weighted = HashRing.libmemcached(three, {"distribution": "consistent weighted", "hash": "crc"})
    assert (weighted.vnodes, weighted.hash) == (160, "crc")  # the hash is kept
    md5 = HashRing.libmemcached(three, {"ketama_weighted": True, "distribution": "consistent"})
    assert (md5.vnodes, md5.hash) == (100, "md5")  # unweighted again, MD5 keys stay
    plain = HashRing.libmemcached(three, {"ketama": True})
    for same in ({"distribution": "consistent"}, {"distribution": "consistent ketama"}):
        assert HashRing.libmemcached(three, same).get_many(keys) == plain.get_many(keys)
    spy = HashRing.libmemcached(
        three, {"ketama_weighted": True, "distribution": "consistent ketama spy"}
    )
    assert (spy.vnodes, spy.hash) == (160, "md5")  # spymemcached's: weighted MD5, "/host:port-i"
    assert spy.get_many(keys) != md5.get_many(keys)
    for again in reloaded(spy):
        assert again.get_many(keys) == spy.get_many(keys)
    assert HashRing.libmemcached(three, {"ketama": True, "ketama_hash": "md5"}).get_many(
        keys
    ) == plain.get_many(keys)  # libmemcached 1.1.4 never uses the distribution hash
    for bad, match in (
        ({"distribution": "modula"}, "distribution 'modula' is not reproduced"),
        ({"ketama": True, "distribution": "random"}, "'random' is not reproduced"),
        ({"ketama": False}, "distribution 'modula' is not reproduced"),
        ({"distribution": "nope"}, "unknown libmemcached distribution 'nope'"),
        ({"ketama": True, "ketama_hash": "sha1"}, "unknown libmemcached ketama_hash 'sha1'"),
        ({"ketama": True, "tcp_nodelay": True}, r"behaviors \['tcp_nodelay'\] are not"),
    ):
        with pytest.raises(ValueError, match=match):
            HashRing.libmemcached(three, bad)


def test_libmemcached_weighted_continuum_survives_its_heavy_server():
    """A continuum made weighted by a server of weight > 1 stays weighted when that
    server leaves (libmemcached never unsets it), saved and loaded too."""
    ring = HashRing.libmemcached(["a:11211:2", "b:11212", "c:11213"])
    ring.remove("a:11211:2")
    keys = [f"k{i}" for i in range(3000)]
    assert ring.vnodes == 160
    for again in reloaded(ring):
        assert again.vnodes == 160 and again.get_many(keys) == ring.get_many(keys)
    ring.add("d:11214", 1)
    assert ring.vnodes == 160


def test_cli_routes_client_addresses_for_balance_source(tmp_path, capsys):
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(
        "backend web\n    balance source\n    hash-type consistent\n"
        "    server a 10.0.0.1:80\n    server b 10.0.0.2:80 weight 2\n    server c 10.0.0.3:80\n"
    )
    ips = [f"10.{i // 250}.{i % 250}.7" for i in range(500)] + ["2001:db8::1", "::1"]
    keys = tmp_path / "clients"
    keys.write_text("".join(f"{ip}\n" for ip in ips))
    assert main(["route", str(keys), "--haproxy", str(cfg), "--backend", "web"]) == 0
    ring = HashRing.from_haproxy(cfg.read_text(), "web")
    want = ring.get_many(source_keys(ips))
    assert capsys.readouterr().out.splitlines() == [
        f"{ip}\t{o}" for ip, o in zip(ips, want, strict=True)
    ]
    args = ["simulate", "--haproxy", str(cfg), "--backend", "web", "--keys-file", str(keys)]
    assert main([*args, "--add", "d", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {n["name"]: n["load_before"] for n in result["nodes"]} == {
        n: want.count(n) for n in ("a", "b", "c", "d")
    }
    keys.write_text("10.0.0.300\n")
    with pytest.raises(SystemExit):
        main(["route", str(keys), "--haproxy", str(cfg), "--backend", "web"])
    assert "does not appear to be an IPv4 or IPv6 address" in capsys.readouterr().err


def test_haproxy_balance_uri_keys():
    """What ``balance uri`` hashes of a URI (backend.c, get_server_uh)."""
    u = "/a/b/c?x=1"
    assert uri_keys([u]) == [b"/a/b/c"]  # up to the '?'
    assert uri_keys([u], whole=True) == [b"/a/b/c?x=1"]
    assert uri_keys([u], depth=1) == [b"/a"]  # up to the 2nd '/', not included
    assert uri_keys([u], depth=2, whole=True) == [b"/a/b"]
    assert uri_keys([u], length=4) == [b"/a/b"]
    assert uri_keys(["/a?b/c"], depth=2) == [b"/a"]
    absolute = "http://example.com/a/b?q"
    assert uri_keys([absolute]) == [b"http://example.com/a/b"]  # all of it, but the query
    assert uri_keys([absolute], path_only=True) == [b"/a/b"]
    assert uri_keys(["example.com:443", "*", "http://h"], path_only=True) == [b"", b"", b""]
    assert uri_options("uri whole len 10 depth 3 path-only") == {
        "whole": True, "length": 10, "depth": 3, "path_only": True,
    }  # fmt: skip
    assert uri_options("url_param key") is None
    for bad, match in (
        ("uri len 0", "'len' expects a positive integer"),
        ("uri depth", "'depth' expects a positive integer"),
        ("uri fast", "balance uri takes len, depth, path-only and whole, not 'fast'"),
    ):
        with pytest.raises(ValueError, match=match):
            HashRing.haproxy(["a"], balance=bad)
    with pytest.raises(TypeError, match="balance must be a str"):
        HashRing.haproxy(["a"], balance=1)
    cfg = (
        "backend web\n    balance uri depth 1\n    hash-type consistent\n"
        "    server a 10.0.0.1:80\n    server b 10.0.0.2:80\n"
    )
    ring = HashRing.from_haproxy(cfg, "web")
    for again in reloaded(ring):  # the balance line travels with the ring
        assert again._snap._preset.balance == "uri depth 1"
    with pytest.raises(ValueError, match=r"haproxy.cfg backend web: balance uri takes"):
        HashRing.from_haproxy(cfg.replace("depth 1", "fast"), "web")


def test_libmemcached_server_strings_as_pylibmc_reads_them():
    """pylibmc's translate_server_spec forms, and the host string libmemcached's
    update_continuum builds points from (tests/test_real_proxies.py routes them
    through libmemcached itself)."""
    from ringhash.libmemcached import _spec

    for text, sort_host, weight in (
        ("10.0.0.1", "10.0.0.1", 1),
        ("10.0.0.1:11211", "10.0.0.1", 1),  # the default port is left out
        ("10.0.0.1:11212:3", "10.0.0.1:11212", 3),
        ("[::1]", "::1", 1),
        ("[2001:db8::1]:11212", "2001:db8::1:11212", 1),
        ("[::1]:11211:2", "::1", 2),
        ("udp:10.0.0.1:11212", "10.0.0.1:11212", 1),
        ("/var/run/memcached.sock", "/var/run/memcached.sock:0", 1),  # port 0
    ):
        assert _spec(text, None) == (text, sort_host, weight), text
    for bad in ("[::1", "[::1]x", "host:port", "host:1:w", ":11211", "[]:1"):
        with pytest.raises(ValueError, match="expected host"):
            HashRing.libmemcached([bad])


def test_twemproxy_server_lines_as_nutcracker_reads_them():
    """conf_add_server: the ring name is the name, else host:port, but the host alone on
    port 11211 and '/path:' for a unix socket (tests/test_real_proxies.py routes them
    through nutcracker itself)."""
    from ringhash.twemproxy import _server_line

    for line, ring_name, weight in (
        ("10.0.0.1:11212:2", "10.0.0.1:11212", 2),
        ("10.0.0.1:11211:1", "10.0.0.1", 1),
        ("10.0.0.1:11211:1 cache-a", "cache-a", 1),
        ("/var/run/mc.sock:3", "/var/run/mc.sock:", 3),
        ("/var/run/mc.sock:1 local", "local", 1),
    ):
        assert _server_line(line) == (line, ring_name, weight), line
    for bad in ("10.0.0.1:11211", "/var/run/mc.sock", ":11211:1", "/x:y", "h:p:1"):
        with pytest.raises(ValueError, match="expected 'host:port:weight"):
            HashRing.twemproxy([bad])


def test_simulate_reads_key_lines_by_each_rings_balance(tmp_path, capsys):
    """--keys-file lines through the before ring by its balance line, and through the
    --to file's ring by its own (here it starts hashing the query string too)."""
    cfg = "backend web\n    balance uri\n    hash-type consistent\n"
    cfg += "".join(f"    server s{i} 10.0.0.{i}:80\n" for i in range(1, 5))
    before, after = tmp_path / "a.cfg", tmp_path / "b.cfg"
    before.write_text(cfg)
    after.write_text(cfg.replace("balance uri\n", "balance uri whole\n"))
    uris = [f"/img/{i % 50}.png?v={i}" for i in range(2000)]
    keys = tmp_path / "uris"
    keys.write_text("".join(f"{u}\n" for u in uris))
    args = ["simulate", "--haproxy", str(before), "--backend", "web", "--to", str(after)]
    assert main([*args, "--keys-file", str(keys), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    a = HashRing.from_haproxy(before.read_text(), "web").get_many(uri_keys(uris))
    b = HashRing.from_haproxy(after.read_text(), "web").get_many(uri_keys(uris, whole=True))
    assert {n["name"]: n["load_after"] for n in result["nodes"]} == {
        n: b.count(n) for n in sorted(set(a) | set(b))
    }
    assert result["moved_keys"] == sum(x != y for x, y in zip(a, b, strict=True)) > 0
