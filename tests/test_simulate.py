"""`ringhash simulate` agrees with the analysis API and the reference model."""

import json

import numpy as np
import pytest

from ringhash import HashRing
from ringhash._reference import ReferenceRing
from ringhash.cli import main


def run_json(capsys, *args):
    assert main(["simulate", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_numbers_agree_with_api_and_reference(tmp_path, capsys):
    keys = [f"user:{i}" for i in range(20_000)]
    kf = tmp_path / "keys.txt"
    kf.write_bytes(("\r\n".join(keys) + "\r\n").encode())  # CRLF lines route like LF lines
    nodes = tmp_path / "nodes.txt"
    nodes.write_text("# fleet\nalpha 1\nbeta,2\ngamma\n")
    res = run_json(
        capsys,
        "--nodes",
        f"@{nodes}",
        "--add",
        "delta:0.5",
        "--remove",
        "beta",
        "--set-weight",
        "gamma:3",
        "--keys-file",
        str(kf),
        "--vnodes",
        "50",
    )
    before = HashRing({"alpha": 1, "beta": 2, "gamma": 1}, vnodes=50)
    after = HashRing({"alpha": 1, "gamma": 3, "delta": 0.5}, vnodes=50)
    ref_b = ReferenceRing({"alpha": 1, "beta": 2, "gamma": 1}, 50)
    ref_a = ReferenceRing({"alpha": 1, "gamma": 3, "delta": 0.5}, 50)
    rows = {r["name"]: r for r in res["nodes"]}
    lb, la = before.load(keys), after.load(keys)
    for name, r in rows.items():
        assert r["load_before"] == lb.get(name, 0) == sum(ref_b.get(k) == name for k in keys)
        assert r["load_after"] == la.get(name, 0) == sum(ref_a.get(k) == name for k in keys)
        assert r["share_before"] == pytest.approx(before.shares().get(name, 0.0))
        assert r["share_after"] == pytest.approx(after.shares().get(name, 0.0))
    change = before.diff(after)
    assert res["moved_space"] == pytest.approx(change.fraction)
    assert res["moved_keys"] == int(change.moved(keys).sum())
    assert res["keys"] == len(keys)
    moved = {(p["from"], p["to"]): p["keys"] for p in res["moved"]}
    expect = {}
    for k in keys:
        a, b = ref_b.get(k), ref_a.get(k)
        if a != b:
            expect[(a, b)] = expect.get((a, b), 0) + 1
    assert moved == expect


def test_random_keys_and_counts(capsys):
    res = run_json(
        capsys, "--nodes", "20", "--add", "node-20", "--keys", "300000", "--key-seed", "4"
    )
    assert res["keys"] == 300_000
    assert sum(r["load_after"] for r in res["nodes"]) == 300_000
    # Only keys moving to the new node.
    assert {p["to"] for p in res["moved"]} == {"node-20"}
    assert abs(res["moved_keys_fraction"] - 1 / 21) < 0.02
    keys = np.random.default_rng(4).integers(0, 2**64 - 1, 300_000, dtype=np.uint64, endpoint=True)
    ring = HashRing([f"node-{i}" for i in range(21)])
    assert {r["name"]: r["load_after"] for r in res["nodes"]} == ring.load(keys)


def test_table_and_plot(tmp_path, capsys):
    png = tmp_path / "load.png"
    assert (
        main(["simulate", "--nodes", "a,b,c", "--add", "d", "--keys", "50000", "--plot", str(png)])
        == 0
    )
    out = capsys.readouterr().out
    assert "moved" in out and "peak/mean" in out and "d" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args",
    [
        ["--nodes", "a,b", "--remove", "zzz"],
        ["--nodes", "a,a"],
        ["--nodes", "a", "--set-weight", "a"],
        ["--nodes", "a", "--keys", "-1"],
        ["--nodes", "@/nonexistent/file"],
        ["--nodes", "a", "--add", "a"],
    ],
)
def test_bad_arguments(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(["simulate", *args])
    assert e.value.code == 2


def test_peak_counts_the_servers_that_take_keys(tmp_path, capsys):
    """A disabled and a backup server (no points, by their configuration) are left out
    of the peak/mean load, as the rings without them would give it; it was NaN (a
    weight of 0) or counted a server that can take nothing."""
    lines = "    server a 10.0.0.1:80\n    server b 10.0.0.2:80 weight 2\n"
    base = "backend be\n    balance url_param k\n    hash-type consistent\n" + lines
    before, after, plain = tmp_path / "a.cfg", tmp_path / "b.cfg", tmp_path / "c.cfg"
    before.write_text(base + "    server c 10.0.0.3:80 disabled\n")
    after.write_text(base + "    server c 10.0.0.3:80 backup\n")
    plain.write_text(base)
    args = ["--haproxy", str(before), "--backend", "be", "--keys", "20000"]
    result = run_json(capsys, *args, "--to", str(after))
    alone = run_json(
        capsys, "--haproxy", str(plain), "--backend", "be", "--keys", "20000", "--to", str(plain)
    )
    assert result["peak_to_mean_before"] == result["peak_to_mean_after"]
    assert result["peak_to_mean_before"] == alone["peak_to_mean_before"] > 1.0
