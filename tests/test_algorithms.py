"""JumpHash, Rendezvous, Maglev and MultiProbe: single == batch == model, the
known-answer vectors, membership changes that move exactly what the algorithm's
definition says, and every refusal."""

from __future__ import annotations

import json
import pathlib
import pickle
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from algo_models import JumpModel, MaglevModel, MultiProbeModel, RendezvousModel, jump_key
from ringhash import (
    AlgorithmChange,
    EmptyRingError,
    JumpHash,
    Maglev,
    MultiProbe,
    Rendezvous,
    _core,
)

DATA = pathlib.Path(__file__).parent / "data" / "algorithms.json"
NODES = [f"node-{i}" for i in range(7)]
WEIGHTS = {"a": 1.0, "b": 2.5, "c": 0.5, "d": 1.0, "ünï": 3.0}
KEYS: list[object] = [
    "user:1",
    "",
    "ünïcödé",
    b"\x00\xff",
    0,
    1,
    -1,
    2**63,
    2**64 - 1,
    -(2**63),
    *[f"k{i}" for i in range(300)],
    *range(1000, 1100),
]


def build(kind: str, nodes: object, **params: object):  # type: ignore[no-untyped-def]
    cls = {"jump": JumpHash, "rendezvous": Rendezvous, "maglev": Maglev, "multiprobe": MultiProbe}
    return cls[kind](nodes, **params)


def model(kind: str, nodes, **params):  # type: ignore[no-untyped-def]
    if kind == "jump":
        return JumpModel(list(nodes))
    if kind == "rendezvous":
        return RendezvousModel(
            dict(nodes) if isinstance(nodes, dict) else dict.fromkeys(nodes, 1.0)
        )
    if kind == "maglev":
        weights = dict(nodes) if isinstance(nodes, dict) else dict.fromkeys(nodes, 1.0)
        return MaglevModel(weights, int(params.get("table_size", 65_537)))  # type: ignore[call-overload]
    return MultiProbeModel(list(nodes), int(params.get("probes", 21)))  # type: ignore[call-overload]


CASES = [
    ("jump", NODES, {}),
    ("rendezvous", NODES, {}),
    ("rendezvous", WEIGHTS, {}),
    ("maglev", NODES, {"table_size": 1009}),
    ("maglev", WEIGHTS, {"table_size": 251}),
    ("multiprobe", NODES, {}),
    ("multiprobe", NODES, {"probes": 3}),
]


@pytest.mark.parametrize(("kind", "nodes", "params"), CASES)
def test_single_batch_and_model_agree(kind, nodes, params):
    algo = build(kind, nodes, **params)
    want = [model(kind, nodes, **params).get(k) for k in KEYS]
    assert [algo.get(k) for k in KEYS] == want
    assert algo.get_many(KEYS) == want
    idx = algo.lookup(KEYS)
    assert idx.dtype == np.int32
    assert [algo.nodes[i] for i in idx.tolist()] == want
    ints = [k for k in KEYS if isinstance(k, int) and 0 <= k < 2**64]
    np.testing.assert_array_equal(algo.lookup(np.array(ints, dtype=np.uint64)), algo.lookup(ints))
    strs = [k for k in KEYS if isinstance(k, str)]
    np.testing.assert_array_equal(algo.lookup(np.array(strs)), algo.lookup(strs))
    np.testing.assert_array_equal(
        algo.lookup(np.array([s.encode() for s in strs], dtype="S")), algo.lookup(strs)
    )
    grid = np.arange(24, dtype=np.int16).reshape(4, 6)
    assert algo.lookup(grid).shape == (4, 6)
    np.testing.assert_array_equal(algo.lookup(grid).ravel(), algo.lookup(list(range(24))))


@pytest.mark.parametrize(("kind", "nodes", "params"), CASES)
def test_columns_take_the_same_path(kind, nodes, params):
    pa = pytest.importorskip("pyarrow", reason="pyarrow (a test extra) is not installed")
    algo = build(kind, nodes, **params)
    strs = [k for k in KEYS if isinstance(k, str)]
    for arr in (
        pa.array(strs),
        pa.array(strs, pa.string_view()),
        pa.array(strs).dictionary_encode(),
    ):
        np.testing.assert_array_equal(algo.lookup(arr), algo.lookup(strs))
    ints = list(range(-50, 50))
    np.testing.assert_array_equal(algo.lookup(pa.array(ints)), algo.lookup(ints))
    np.testing.assert_array_equal(
        algo.lookup(np.array(strs, dtype=np.dtypes.StringDType())), algo.lookup(strs)
    )
    with_null = pa.array(["a", None, "b"])
    with pytest.raises(ValueError, match=r"keys\[1\] is null"):
        algo.lookup(with_null)
    got = algo.lookup(with_null, nulls=-1)
    assert got.tolist() == [algo.lookup(["a"])[0], -1, algo.lookup(["b"])[0]]
    np.testing.assert_array_equal(algo.hash_keys(pa.array(strs)), algo.hash_keys(strs))


def test_jump_agrees_with_the_jump_package():
    jump = pytest.importorskip("jump", reason="jump-consistent-hash is not installed")
    algo = JumpHash([f"b{i}" for i in range(1000)])
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 2**64 - 1, 2000, dtype=np.uint64, endpoint=True).tolist()
    assert algo.lookup(keys).tolist() == [jump.hash(k, 1000) for k in keys]
    for n in (1, 2, 3, 17, 1000):
        algo = JumpHash([f"b{i}" for i in range(n)])
        assert [algo.nodes.index(algo.get(k)) for k in keys[:100]] == [
            jump.hash(k, n) for k in keys[:100]
        ]


def test_jump_key_of_bytes_is_mmh3_hash64():
    mmh3 = pytest.importorskip("mmh3")
    for key in ["", "a", "user:42", "x" * 100, b"\xff" * 17]:
        raw = key.encode() if isinstance(key, str) else key
        assert JumpHash(["a"]).hash_keys([key])[0] == mmh3.hash64(raw, signed=False)[0]
    assert JumpHash(["a"]).hash_keys([-1])[0] == 2**64 - 1


def test_known_answer_vectors():
    cases = json.loads(DATA.read_text())
    assert len(cases) >= 8
    for case in cases:
        algo = build(case["algorithm"], case["nodes"], **case["params"])
        assert algo.get_many(case["keys"]) == case["expected"], case["algorithm"]


def test_rendezvous_log_is_accurate():
    import math

    rng = np.random.default_rng(0)
    for h in [0, 1, 2**31, 2**32 - 1, *rng.integers(0, 2**32, 5000).tolist()]:
        want = -math.log((h + 0.5) / 2**32)
        assert abs(_core.neg_ln_u32(h) - want) <= 8e-16 * want


def test_rendezvous_preference_lists():
    for nodes in (NODES, WEIGHTS):
        algo = Rendezvous(nodes)
        ref = model("rendezvous", nodes)
        for key in KEYS[:60]:
            assert algo.get_nodes(key, len(algo)) == ref.ranking(key)
            assert algo.get_nodes(key, 2) == ref.ranking(key)[:2]
        rows = algo.lookup_nodes(KEYS[:60], 3)
        assert rows.shape == (60, 3)
        assert [[algo.nodes[i] for i in r] for r in rows.tolist()] == [
            ref.ranking(k)[:3] for k in KEYS[:60]
        ]
    big = Rendezvous([f"n{i}" for i in range(100)])
    assert big.lookup_nodes(["x"], 80).shape == (1, 80)  # wider than the C stack buffer


@given(
    st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=12, unique=True),
    st.lists(st.one_of(st.text(max_size=12), st.integers(-(2**63), 2**64 - 1)), max_size=30),
    st.sampled_from(["jump", "rendezvous", "maglev", "multiprobe"]),
)
def test_hypothesis_against_the_models(nodes, keys, kind):
    params = {"table_size": 211} if kind == "maglev" else {}
    algo = build(kind, nodes, **params)
    ref = model(kind, nodes, **params)
    assert algo.get_many(keys) == [ref.get(k) for k in keys]
    assert [algo.get(k) for k in keys] == [ref.get(k) for k in keys]


@given(
    st.dictionaries(st.text(min_size=1, max_size=6), st.floats(0.1, 10.0), min_size=1, max_size=8),
    st.lists(st.text(max_size=10), max_size=30),
)
def test_hypothesis_weighted_rendezvous(weights, keys):
    algo = Rendezvous(weights)
    ref = RendezvousModel(weights)
    assert algo.get_many(keys) == [ref.get(k) for k in keys]


# ---------------------------------------------------------------- membership


SAMPLE = [f"key-{i}" for i in range(20_000)]


def owners(algo) -> list[str]:  # type: ignore[no-untyped-def]
    return algo.get_many(SAMPLE)


def test_jump_add_and_remove_last():
    algo = JumpHash([f"b{i}" for i in range(9)])
    before = owners(algo)
    change = algo.add("b9")
    assert isinstance(change, AlgorithmChange)
    after = owners(algo)
    moved = [a != b for a, b in zip(before, after, strict=True)]
    assert all(b == "b9" for a, b, m in zip(before, after, moved, strict=True) if m)
    assert abs(sum(moved) / len(SAMPLE) - 0.1) < 0.01
    assert abs(change.fraction - 0.1) < 0.005
    np.testing.assert_array_equal(change.moved(SAMPLE), moved)
    algo.remove("b9")
    assert owners(algo) == before
    with pytest.raises(ValueError, match="only remove its last bucket.*Rendezvous"):
        algo.remove("b3")
    assert algo.shares() == dict.fromkeys(algo.nodes, 1 / 9)
    assert algo.balance().peak_to_mean == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["rendezvous", "multiprobe"])
def test_minimal_movement(kind):
    algo = build(kind, NODES)
    before = owners(algo)
    algo.add("new")
    after = owners(algo)
    assert all(b == "new" for a, b in zip(before, after, strict=True) if a != b)
    algo.remove("node-3")
    after2 = owners(algo)
    assert all(a == "node-3" for a, b in zip(after, after2, strict=True) if a != b)


def test_rendezvous_reweighting_moves_only_to_or_from_that_node():
    algo = Rendezvous(WEIGHTS)
    before = owners(algo)
    algo.set_weight("b", 5.0)
    after = owners(algo)
    assert all(b == "b" for a, b in zip(before, after, strict=True) if a != b)
    algo.set_weight("b", 0.5)
    after2 = owners(algo)
    assert all(a == "b" for a, b in zip(after, after2, strict=True) if a != b)


def test_maglev_disruption_is_small_and_balance_near_perfect():
    nodes = [f"be-{i}" for i in range(100)]
    algo = Maglev(nodes)
    assert algo.balance().peak_to_mean < 1.01  # M = 65,537: 655 or 656 entries each
    change = algo.add("be-new")
    assert 1 / 101 <= change.fraction < 2.5 / 101
    assert sum(algo.shares().values()) == pytest.approx(1.0)


def test_multiprobe_balance_anchor():
    algo = MultiProbe([f"n{i}" for i in range(100)])
    assert algo.balance().peak_to_mean < 1.25  # ~1.05 + sampling noise of 2**18 keys


def test_snapshots_and_threads():
    algo = Rendezvous(NODES)
    snap = algo.snapshot()
    with pytest.raises(TypeError, match="read-only"):
        snap.add("x")
    algo.add("x")
    assert "x" not in snap and "x" in algo
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(200):
                names = algo.get_many(SAMPLE[:200])
                assert set(names) <= set(NODES) | {"x", "y"}
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(50):
        algo.add("y")
        algo.remove("y")
    for t in threads:
        t.join()
    assert errors == []


@pytest.mark.parametrize(("kind", "nodes", "params"), CASES)
def test_persistence(kind, nodes, params):
    algo = build(kind, nodes, **params)
    again = pickle.loads(pickle.dumps(algo))
    assert again == algo
    assert again.get_many(KEYS) == algo.get_many(KEYS)
    d = json.loads(json.dumps(algo.to_dict()))
    assert type(algo).from_dict(d).get_many(KEYS) == algo.get_many(KEYS)
    with pytest.raises(ValueError, match="description"):
        type(algo).from_dict({**d, "algorithm": "other"})
    with pytest.raises(ValueError, match="format"):
        type(algo).from_dict({**d, "format": 99})
    assert kind in repr(algo).lower() or type(algo).__name__ in repr(algo)


# ---------------------------------------------------------------- refusals


def test_what_an_algorithm_cannot_do():
    with pytest.raises(ValueError, match="weights are not supported"):
        JumpHash({"a": 2.0})
    with pytest.raises(ValueError, match="weights are not supported"):
        MultiProbe({"a": 1.0, "b": 3.0})
    with pytest.raises(ValueError, match="weights are not supported"):
        JumpHash(["a"]).set_weight("a", 2.0)
    for algo in (JumpHash(NODES), Maglev(NODES, table_size=251), MultiProbe(NODES)):
        with pytest.raises(NotImplementedError, match="Rendezvous or HashRing"):
            algo.lookup_nodes(["k"], 2)
        with pytest.raises(NotImplementedError, match="Rendezvous or HashRing"):
            algo.get_nodes("k", 2)
        assert algo.lookup_nodes(["k"], 1).shape == (1, 1)
    for cls in (JumpHash, Rendezvous, Maglev, MultiProbe):
        empty = cls()
        with pytest.raises(EmptyRingError):
            empty.get("k")
        with pytest.raises(EmptyRingError):
            empty.lookup(["k"])
        algo = cls(["a", "b"])
        with pytest.raises(ValueError, match="already present"):
            algo.add("a")
        with pytest.raises(KeyError):
            algo.remove("zzz")
        with pytest.raises(ValueError, match="duplicate"):
            cls(["a", "a"])
        with pytest.raises(TypeError):
            cls(["a"], bogus=1)
        with pytest.raises(TypeError):
            algo.get(1.5)
        with pytest.raises(TypeError):
            algo.lookup(np.array([1.5]))
        with pytest.raises(ValueError):
            algo.add("c", weight=float("nan"))


@pytest.mark.parametrize("size", [0, 1, 4, 65_536, 2**27, 1.5, True])
def test_maglev_table_size_must_be_a_prime(size):
    with pytest.raises((ValueError, TypeError), match="table_size"):
        Maglev(["a"], table_size=size)


def test_maglev_needs_room_for_every_node():
    with pytest.raises(ValueError, match="do not fit"):
        Maglev([f"n{i}" for i in range(10)], table_size=7)


@pytest.mark.parametrize("probes", [0, -1, 1025, 2.0, False])
def test_multiprobe_probes(probes):
    with pytest.raises((ValueError, TypeError), match="probes"):
        MultiProbe(["a"], probes=probes)


def test_jump_key_rule():
    assert jump_key(-1) == 2**64 - 1
    algo = JumpHash(NODES)
    assert algo.get(-1) == algo.get(2**64 - 1)
    assert algo.get(np.int64(-5)) == algo.get(-5)
    with pytest.raises(OverflowError):
        algo.get(2**64)
