"""Write the seed corpus (tests/fuzz/corpus/TARGET/*): ``python tests/fuzz/make_corpus.py``.

Valid inputs of each kind (every ring type's to_bytes and to_dict, keys of every
dtype the lookup target builds), so the fuzzers start from inputs that reach deep
into the loaders rather than from the framing checks.
"""

import json
import pathlib

from ringhash import HashRing

HERE = pathlib.Path(__file__).resolve().parent / "corpus"


def main() -> None:
    rings = {
        "default": HashRing({"a": 1.0, "b": 2.0, "ключ": 0.5}, vnodes=5),
        "crc32": HashRing(["x", "y"], vnodes=3, hash="crc32"),
        "ketama": HashRing.ketama({"10.0.0.1:11211": 1, "10.0.0.2:11211": 2}),
        "groupcache": HashRing.groupcache(["g1", "g2"], replicas=3),
        "stathat": HashRing.stathat(["s1", "s2", "s3"], replicas=2),
        "empty": HashRing(),
    }
    for name, ring in rings.items():
        write("from_bytes", name, ring.to_bytes())
        write("from_dict", name, json.dumps(ring.to_dict()).encode())
    write("from_bytes", "truncated", rings["default"].to_bytes()[:40])
    write("from_bytes", "points", bytes(range(256)) * 4)
    for i, key in enumerate(
        [b"", b"\0\0\0\0hello", b"\x01\x00\x00\x00" + "ключ".encode(), bytes(range(100))]
    ):
        write("hashing", str(i), key)
    for i in range(16):  # each hash, flags and tag '{}', keys with tags and high bytes
        key = f"user:{{{i}}}:ñ".encode() * (i % 4 + 1)
        write("proxy_hashes", f"h{i}", bytes([i, i % 8, ord("{"), ord("}")]) + key)
    for code in range(22):  # one seed per dtype of check_lookup
        write("lookup", f"dtype{code}", bytes([code, 1, 1]) + bytes(range(64)))


def write(target: str, name: str, data: bytes) -> None:
    (HERE / target).mkdir(parents=True, exist_ok=True)
    (HERE / target / name).write_bytes(data)


if __name__ == "__main__":
    main()
