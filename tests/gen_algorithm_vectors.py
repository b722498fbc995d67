"""Write tests/data/algorithms.json: known answers of the other algorithms, computed
by the independent models (tests/algo_models.py: mmh3, math.log, Python ints), and
for jump hash by the ``jump-consistent-hash`` package itself. Run from tests/:
``python gen_algorithm_vectors.py``."""

from __future__ import annotations

import json
import pathlib
import random

import jump  # jump-consistent-hash, the reference for JumpHash's int keys

from algo_models import JumpModel, MaglevModel, MultiProbeModel, RendezvousModel, jump_key

OUT = pathlib.Path(__file__).parent / "data" / "algorithms.json"


def keys(rng: random.Random) -> list[object]:
    out: list[object] = [f"user:{rng.randrange(10**6)}" for _ in range(150)]
    out += ["", "ünïcödé ✓", "x" * 40]
    return out + [rng.randrange(-(2**63), 2**64) for _ in range(50)]


def main() -> None:
    rng = random.Random(2026)
    cases = []
    for n in (1, 5, 40):
        nodes = [f"shard-{i}" for i in range(n)]
        ks = keys(rng)
        want = [nodes[jump.hash(jump_key(k), n)] for k in ks]
        assert want == [JumpModel(nodes).get(k) for k in ks]
        cases.append(
            {"algorithm": "jump", "nodes": nodes, "params": {}, "keys": ks, "expected": want}
        )
    for nodes in ([f"cache-{i}" for i in range(10)], {"a": 1.0, "b": 2.0, "c": 0.25, "d": 4.0}):
        ks = keys(rng)
        weights = nodes if isinstance(nodes, dict) else dict.fromkeys(nodes, 1.0)
        ref = RendezvousModel(weights)
        cases.append(
            {
                "algorithm": "rendezvous",
                "nodes": nodes,
                "params": {},
                "keys": ks,
                "expected": [ref.get(k) for k in ks],
            }
        )
    for nodes, m in (
        ([f"be-{i}" for i in range(13)], 65_537),
        ({"x": 1.0, "y": 3.0, "z": 2.0}, 1009),
    ):
        ks = keys(rng)
        weights = nodes if isinstance(nodes, dict) else dict.fromkeys(nodes, 1.0)
        ref = MaglevModel(weights, m)
        cases.append(
            {
                "algorithm": "maglev",
                "nodes": nodes,
                "params": {"table_size": m},
                "keys": ks,
                "expected": [ref.get(k) for k in ks],
            }
        )
    for nodes, k in (([f"n{i}" for i in range(20)], 21), ([f"n{i}" for i in range(5)], 7)):
        ks = keys(rng)
        ref = MultiProbeModel(nodes, k)
        cases.append(
            {
                "algorithm": "multiprobe",
                "nodes": nodes,
                "params": {"probes": k},
                "keys": ks,
                "expected": [ref.get(key) for key in ks],
            }
        )
    OUT.write_text(json.dumps(cases, ensure_ascii=False, indent=0) + "\n")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
