"""``ringhash compare``: the measured properties against the algorithms' known
anchors, deterministic columns, the CLI, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ringhash.cli import main
from ringhash.compare import ALGORITHMS, compare, format_table


@pytest.fixture(scope="module")
def rows100():
    return {r.algorithm: r for r in compare(100, keys=100_000, timing=False)}


def test_anchors(rows100):
    jump, hrw = rows100["jump"], rows100["rendezvous"]
    maglev, mp = rows100["maglev (M=65,537)"], rows100["multi-probe (k=21)"]
    ring = rows100["ring (160 vnodes)"]
    assert jump.peak_to_mean == pytest.approx(1.0) and jump.min_to_mean == pytest.approx(1.0)
    assert hrw.peak_to_mean == pytest.approx(1.0)
    assert maglev.peak_to_mean < 1.01  # near-perfect at M = 65,537 (655-656 entries each)
    assert mp.peak_to_mean < 1.15  # about 1 + 1/k, as the paper reports (1.05 at k = 21)
    assert 1.05 < ring.peak_to_mean < 1.4  # 160 vnodes: the known ~10-20% spread
    for r in (jump, hrw, ring):  # minimal disruption, within sampling noise
        assert r.moved_on_add == pytest.approx(r.ideal_add, rel=0.15)
        assert r.moved_on_remove == pytest.approx(r.ideal_remove, rel=0.15)
    assert maglev.moved_on_add > maglev.ideal_add  # slightly more than minimal
    assert mp.memory < ring.memory and jump.memory == 0


def test_deterministic_without_timing():
    a = compare(10, keys=20_000, timing=False)
    b = compare(10, keys=20_000, timing=False)
    assert a == b
    assert all(r.batch_ns is None and r.get_ns is None for r in a)
    table = format_table(a)
    assert "build" not in table and "| 10 | jump |" in table


def test_timing_columns():
    rows = compare(10, keys=5_000, rounds=1, algorithms=["jump", "rendezvous"])
    assert [r.algorithm for r in rows] == ["jump", "rendezvous"]
    assert all(r.batch_ns > 0 and r.get_ns > 0 and r.build_ms >= 0 for r in rows)
    assert "ns/key" in format_table(rows)


def test_weighted_skips_unweighted_algorithms():
    rows = {r.algorithm: r for r in compare(10, weighted=True, keys=20_000, timing=False)}
    assert rows["jump"].note == "no weights" and rows["jump"].peak_to_mean is None
    assert rows["rendezvous"].peak_to_mean == pytest.approx(1.0)
    assert rows["maglev (M=65,537)"].peak_to_mean < 1.01
    assert "| - |" in format_table(list(rows.values()))


def test_keys_array_and_errors():
    keys = np.arange(1000, dtype=np.uint64)
    assert len(compare(5, keys=keys, timing=False)) == len(ALGORITHMS)
    with pytest.raises(ValueError, match="nodes"):
        compare(1)
    with pytest.raises(ValueError, match="unknown algorithm"):
        compare(5, algorithms=["nope"])
    with pytest.raises(TypeError, match="uint64"):
        compare(5, keys=np.arange(10, dtype=np.int32))
    with pytest.raises(ValueError, match="at least 1"):
        compare(5, keys=0)


def test_cli(capsys):
    assert main(["compare", "--nodes", "10", "--keys", "5000", "--no-timing"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| nodes | algorithm |") and "multi-probe" in out
    assert main(["compare", "--nodes", "5,8", "--keys", "2000", "--no-timing", "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2 * len(ALGORITHMS) and {x["nodes"] for x in lines} == {5, 8}
    with pytest.raises(SystemExit):
        main(["compare", "--nodes", "1"])
    with pytest.raises(SystemExit):
        main(["compare", "--nodes", "x"])
