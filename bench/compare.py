"""Run the benchmark suite and print (and write) the comparison table.

    python bench/compare.py                 # full run, writes bench/RESULTS.md
    python bench/compare.py -k lookup       # extra arguments go to pytest

Every figure comes from one pytest-benchmark run on this machine: ringhash and
its peers side by side, as time per key (the best round: the least disturbed by
other load on a shared machine) and as the
ratio of each peer's time to ringhash's in the same scenario.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent

ORDER = [
    "lookup-uint64",
    "lookup-str",
    "lookup-batch",
    "columns",
    "partition",
    "algorithms",
    "fleet-lookup",
    "fleet-converge",
    "fleet-load",
    "get-single",
    "replicas-single",
    "replicas-batch",
    "crowded",
    "crowded-names",
    "build",
    "membership",
    "threads",
    "lock-uncontended",
    "lock-handoff",
    "redis-uncontended",
    "redis-uncontended-async",
    "redis-contended",
]
TITLES = {
    "lookup-uint64": "Batch lookup, 1M int keys (numpy array)",
    "lookup-str": "Batch lookup, 1M 16-character str keys (list)",
    "lookup-batch": (
        "Batch lookup by batch size (100 nodes): uint64 array and 16-character str list"
    ),
    "columns": "Batch lookup, 1M 16-character ids as DataFrame and Arrow columns (100 nodes); "
    "ratio to a numpy S16 array",
    "fleet-lookup": "Batch lookup on a live fleet's ring (100 members, 1M uint64 keys) next to a "
    "HashRing",
    "fleet-converge": "Fleet convergence: a join reaching a router by pub/sub, a crash by TTL",
    "fleet-load": "Redis load of a fleet's members heartbeating and routers polling",
    "algorithms": "The other algorithms, 1M uint64 keys, 100 nodes; ratio to the ring's lookup",
    "partition": "Grouping 1M uint64 keys' rows by owner (100 nodes); ratio to lookup() alone",
    "get-single": "One key per call (100 nodes)",
    "replicas-single": "One key's n replicas per call, as a cache client reads them (100 nodes; "
    "each result used and dropped, as a request handler does); ratio to ringhash get()",
    "replicas-batch": (
        "The first n distinct owners of 1M uint64 keys (100 nodes); ratio to lookup()"
    ),
    "crowded": (
        "A ring of crafted points (from_bytes: 65,534 points in 1/256 of the hash space) next "
        "to hashed points and a binary search; batch lookup and get()"
    ),
    "crowded-names": (
        "4,096 nodes (vnodes=1) whose names were chosen so their points fall in 1/256 of the "
        "hash space, next to as many names not chosen; keys aimed at that arc"
    ),
    "build": "Building a 1,000-node x 160-point ring",
    "membership": "Adding + removing one node on a 1,000-node ring",
    "threads": "Two 1M-key batches: one thread vs two threads (GIL released); numpy's own GIL-free "
    "ufuncs, the same way, show what this machine gives two threads",
    "lock-uncontended": "Uncontended acquire + release",
    "lock-handoff": "Contended hand-off: release in one thread to acquire in another",
    "redis-uncontended": "Uncontended acquire + release against a local Redis (round trips)",
    "redis-uncontended-async": "The same through asyncio: `async with table.lock_async(...)` "
    "with an asyncio client, next to redis-py's asyncio Lock",
    "redis-contended": "One Redis lock contended by worker processes (acquire, read a counter, "
    "write it, release), as time per grant; fairness is Jain's index over the workers (1.00: "
    "even), hand-off the time from a release to the next grant to another worker",
}


# The ringhash row each scenario's ratios are taken against.
BASELINES = {
    "ringhash",
    "ringhash LockTable",
    "ringhash, 1 thread",
    "ringhash add+remove",
    "ringhash RedisLockTable",
}
UNITS = {
    "build": "per ring",
    "membership": "per operation",
    "lock-uncontended": "per pair",
    "lock-handoff": "per hand-off",
    "redis-uncontended": "per pair",
    "redis-uncontended-async": "per pair",
    "redis-contended": "per grant",
    "fleet-converge": "at p50",
}


def run_suite(pytest_args: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            str(HERE),
            "--benchmark-only",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--benchmark-json={out}",
            # More rounds over a longer time than pytest-benchmark's defaults, so the best
            # round of each benchmark is likelier to fall in a quiet moment of a shared machine.
            "--benchmark-max-time=2.5",
            "--benchmark-min-rounds=15",
            *pytest_args,
        ]
        print("$", " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True, cwd=HERE.parent)
        return json.loads(out.read_text())


def fmt_time(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:,.2f} ms"
    if ns >= 1e4:
        return f"{ns / 1e3:,.1f} µs"
    return f"{ns:,.1f} ns"


STR_ROWS = " (str list)"

# The column that splits a group's rows (ring size, or batch size).
SPLIT = {"lookup-batch": "batch", "redis-contended": "procs"}


def rows_for(group: str, benches: list[dict]) -> list[str]:
    split = SPLIT.get(group, "nodes")
    by_nodes: dict[object, list[dict]] = defaultdict(list)
    for b in benches:
        by_nodes[b["extra_info"].get(split, "")].append(b)
    lines = []
    for nodes in sorted(by_nodes, key=lambda v: (isinstance(v, str), v)):
        label = f"{nodes:,}" if isinstance(nodes, int) else nodes
        entries = []
        for b in by_nodes[nodes]:
            info = b["extra_info"]
            note = info.get("note", "")
            if "commands_per_second" in info:  # a rate, not a time: shown as it is
                rate = info["commands_per_second"]
                lines.append(f"| {label} | {info['peer']} | {rate:,.0f} commands per second |  |")
                continue
            if group == "lock-handoff":
                per = info["handoff_ns"]
            elif "p50_ms" in info:  # a latency's percentiles over the rounds
                per, note = info["p50_ms"] * 1e6, f"p99 {fmt_time(info['p99_ms'] * 1e6)}"
            elif "per_ns" in info:
                per = info["per_ns"]
            else:
                per = b["stats"]["min"] * 1e9 / info["keys"]
            entries.append((info["peer"], per, note))
        default = next((per for peer, per, _ in entries if peer in BASELINES), None)
        plain = {peer: per for peer, per, _ in entries}
        unit = UNITS.get(group, "per key")
        for peer, per, note in sorted(entries, key=lambda e: e[1]):
            # A "(str list)" row compares with ringhash's own str-list row; in the
            # threads group, "X, 2 threads" with "X, 1 thread".
            if peer.endswith(STR_ROWS):
                base = plain.get(f"ringhash{STR_ROWS}", default)
            elif group == "threads":
                base = plain.get(peer.rsplit(", ", 1)[0] + ", 1 thread")
            else:
                base = default
            if base is None:
                ratio = ""
            elif group == "threads":
                ratio = f"{base / per:.2f}x the one-thread throughput"
            else:
                ratio = f"{per / base:.1f}x"
            cell = f"{fmt_time(per)} {unit}" + (f" ({note})" if note else "")
            lines.append(f"| {label} | {peer} | {cell} | {ratio} |")
    return lines


def machine(data: dict) -> str:
    import numpy

    import ringhash
    import ringhash._core as core

    info = data.get("machine_info", {})
    cpu = info.get("cpu", {}).get("brand_raw") or platform.processor() or platform.machine()
    ring = ringhash.HashRing([f"node-{i}" for i in range(100)]).snapshot()
    per_point = ring.nbytes / len(ring.points)
    return (
        f"{cpu}, {os.cpu_count()} cores; {platform.system()} {platform.release()}; "
        f"CPython {platform.python_version()}; numpy {numpy.__version__}; "
        f"ringhash {ringhash.__version__} (batch loops: {core.SIMD}); "
        f"ring memory {per_point:.1f} bytes per point including the index "
        f"(100 nodes x 160 points: {ring.nbytes / 1024:.0f} KiB)"
    )


def render(data: dict) -> str:
    groups: dict[str, list[dict]] = defaultdict(list)
    for b in data["benchmarks"]:
        groups[b["group"]].append(b)
    out = [
        f"Machine: {machine(data)}",
        "",
        "Reproduce: `pip install '.[bench]' && python bench/compare.py`",
        "",
        "The ratio column is each implementation's time divided by ringhash's in the same",
        "scenario and run (how many times slower it is); for ringhash variants it is the",
        "cost relative to the plain ringhash row.",
        "",
    ]
    for group in ORDER + sorted(set(groups) - set(ORDER)):
        if group not in groups:
            continue
        out += [
            f"### {TITLES.get(group, group)}",
            "",
            f"| {SPLIT.get(group, 'nodes')} | implementation | time | ratio |",
            "| --- | --- | --- | --- |",
            *rows_for(group, groups[group]),
            "",
        ]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "-o", "--output", default=str(HERE / "RESULTS.md"), help="Markdown file to write"
    )
    parser.add_argument(
        "--json", help="render an existing pytest-benchmark JSON file instead of running"
    )
    args, pytest_args = parser.parse_known_args()
    data = json.loads(Path(args.json).read_text()) if args.json else run_suite(pytest_args)
    text = render(data)
    print(text)
    Path(args.output).write_text("# Benchmark results\n\n" + text + "\n", encoding="utf-8")
    print(f"\nwritten to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
