"""tests/data/ringhash_default_vectors.json (generated from the reference model by
tests/gen_default_vectors.py) is what the compiled ring answers, on every path."""

import json
import pathlib

import numpy as np
import pytest

from ringhash import HashRing

DOC = json.loads(
    (pathlib.Path(__file__).resolve().parent / "data" / "ringhash_default_vectors.json").read_text(
        encoding="utf-8"
    )
)


@pytest.mark.parametrize("case", DOC["cases"], ids=lambda c: ",".join(list(c["nodes"])[:2]))
def test_default_vectors(case):
    ring = HashRing(case["nodes"], vnodes=case["vnodes"], hash=case["hash"], seed=case["seed"])
    assert len(ring.points) == case["points"]
    first = zip(ring.points[:5], ring.owners[:5], strict=True)
    assert [[int(p), ring.nodes[o]] for p, o in first] == case["first_points"]
    keys = case["keys"]
    assert [ring.get(k) for k in keys] == case["expected"]
    assert ring.get_many(keys) == case["expected"]
    assert ring.get_many(np.array([k.encode() for k in keys], dtype=object)) == case["expected"]
    n = case["replicas_n"]
    assert [ring.get_nodes(k, n) for k in keys] == case["expected_replicas"]
    rows = ring.lookup_nodes(keys, n)
    assert [[ring.nodes[i] for i in row] for row in rows] == case["expected_replicas"]
    ints = case["int_keys"]
    assert [ring.get(k) for k in ints] == case["int_expected"]
    as_u64 = np.array([k % 2**64 for k in ints], dtype=np.uint64)
    assert ring.get_many(as_u64) == case["int_expected"]
