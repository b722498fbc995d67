"""Generate tests/data/ringhash_default_vectors.json from the reference model.

    python tests/gen_default_vectors.py

The expected answers come from ringhash._reference (plain Python, no compiled
code), so implementers in other languages and our own compiled paths are
checked against the specification, not against themselves. See docs/SPEC.md.
"""

import json
import pathlib
import random

from ringhash._reference import ReferenceRing

OUT = pathlib.Path(__file__).resolve().parent / "data" / "ringhash_default_vectors.json"

RINGS = [
    {"nodes": {"a": 1, "b": 1, "c": 1}, "vnodes": 160, "hash": "murmur3", "seed": 0},
    {
        "nodes": {"cache-01": 1, "cache-02": 2, "cache-03": 0.5},
        "vnodes": 100,
        "hash": "murmur3",
        "seed": 0,
    },
    {
        "nodes": {"10.0.0.1:6379": 1, "10.0.0.2:6379": 1, "10.0.0.3:6379": 1, "10.0.0.4:6379": 1},
        "vnodes": 160,
        "hash": "murmur3",
        "seed": 2654435761,
    },
    {"nodes": {"shard-a": 1, "shard-b": 1}, "vnodes": 40, "hash": "crc32", "seed": 0},
    {
        "nodes": {"ñodo": 1, "узел": 1.5, "節點": 0.25, "\U0001f600": 1},
        "vnodes": 64,
        "hash": "murmur3",
        "seed": 7,
    },
    {"nodes": {"x": 0.001, "y": 3}, "vnodes": 10, "hash": "murmur3", "seed": 0},  # 0.01 -> 1 point
    {"nodes": {f"node-{i}": 1 for i in range(25)}, "vnodes": 20, "hash": "murmur3", "seed": 0},
    {"nodes": {"only": 1}, "vnodes": 1, "hash": "crc32", "seed": 0},
]


def keys_for(rng):
    keys = ["", "a", "user:42", "日本語のキー", "emoji \U0001f389"]
    keys += [f"key:{rng.getrandbits(40):x}" for _ in range(200)]
    keys += [
        "".join(chr(rng.randrange(0x20, 0x2FF)) for _ in range(rng.randrange(1, 12)))
        for _ in range(40)
    ]
    ints = [0, 1, -1, 2**63 - 1, -(2**63), 2**64 - 1] + [
        rng.randrange(-(2**63), 2**64) for _ in range(50)
    ]
    return keys, ints


def main():
    rng = random.Random(2026)
    cases = []
    for spec in RINGS:
        ref = ReferenceRing(spec["nodes"], spec["vnodes"], spec["hash"], spec["seed"])
        keys, ints = keys_for(rng)
        cases.append(
            {
                **spec,
                "points": len(ref.points),
                "first_points": [[p, name] for p, _, name in ref.entries[:5]],
                "keys": keys,
                "expected": [ref.get(k) for k in keys],
                "replicas_n": 3,
                "expected_replicas": [ref.get_nodes(k, 3) for k in keys],
                "int_keys": ints,
                "int_expected": [ref.get(k) for k in ints],
            }
        )
    doc = {
        "format": "ringhash default ring vectors",
        "spec": "docs/SPEC.md",
        "note": "str keys hash as UTF-8; int_keys hash as 8 bytes little-endian "
        "(two's complement below 0), not as decimal text",
        "cases": cases,
    }
    OUT.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(cases)} rings)")


if __name__ == "__main__":
    main()
