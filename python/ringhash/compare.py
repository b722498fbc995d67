"""Choose an algorithm by measurement: ``ringhash compare`` and :func:`compare`.

For a node count, weights and a sample of keys, every algorithm (the vnode ring,
jump, rendezvous, Maglev, multi-probe) is built on the same nodes and measured
in the same run: balance (keys per node against the weights), the keys moved by
adding one node and by removing one against the ideal, batch and single-key
lookup time, memory and build time, and which operations it supports. Balance
and movement are deterministic for a given sample; times are this machine's.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .jump import JumpHash
from .maglev import Maglev
from .multiprobe import MultiProbe
from .rendezvous import Rendezvous
from .ring import HashRing

__all__ = ["Row", "compare", "format_table"]

#: name -> (constructor, supports weights, removes any node, preference lists)
ALGORITHMS: dict[str, tuple[Callable[[dict[str, float]], Any], bool, bool, bool]] = {
    "ring (160 vnodes)": (HashRing, True, True, True),
    "jump": (JumpHash, False, False, False),
    "rendezvous": (Rendezvous, True, True, True),
    "maglev (M=65,537)": (Maglev, True, True, False),
    "multi-probe (k=21)": (MultiProbe, False, True, False),
}


@dataclass(frozen=True)
class Row:
    """One algorithm's measurements (None where not measured)."""

    algorithm: str
    nodes: int
    ideal_add: float  # the fraction an ideal algorithm moves (the new node's weight share)
    ideal_remove: float
    weights: bool
    remove_any: bool
    preference_lists: bool
    peak_to_mean: float | None = None  # share of the key space / weight share, max over mean
    min_to_mean: float | None = None
    moved_on_add: float | None = None  # fraction of the sample keys
    moved_on_remove: float | None = None
    memory: int | None = None  # bytes of the lookup structures
    build_ms: float | None = None
    batch_ns: float | None = None  # per key, uint64 keys
    get_ns: float | None = None  # one str key per call
    note: str = ""


def _weights(nodes: int, weighted: bool) -> dict[str, float]:
    return {f"node-{i}": (1.0 + i % 3 if weighted else 1.0) for i in range(nodes)}


def _best(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _measure(
    name: str, nodes: int, weighted: bool, keys: np.ndarray, timing: bool, rounds: int
) -> Row:
    make, weights_ok, remove_any, prefs = ALGORITHMS[name]
    w = _weights(nodes, weighted)
    total = sum(w.values())
    new_weight = 1.0
    last = f"node-{nodes - 1}"
    ideal_add, ideal_remove = new_weight / (total + new_weight), w[last] / total
    base = dict(
        algorithm=name,
        nodes=nodes,
        ideal_add=ideal_add,
        ideal_remove=ideal_remove,
        weights=weights_ok,
        remove_any=remove_any,
        preference_lists=prefs,
    )
    if weighted and not weights_ok:
        return Row(**base, note="no weights")  # type: ignore[arg-type]
    t0 = time.perf_counter()
    algo = make(w)
    build_ms = (time.perf_counter() - t0) * 1e3
    balance = algo.balance()  # from each node's exact (or finely sampled) share
    names = np.array(algo.nodes, dtype=object)[algo.lookup(keys)]

    grown = make({**w, "node-new": new_weight})
    moved_add = float((np.array(grown.nodes, dtype=object)[grown.lookup(keys)] != names).mean())
    shrunk = make({n: x for n, x in w.items() if n != last})
    moved_remove = float(
        (np.array(shrunk.nodes, dtype=object)[shrunk.lookup(keys)] != names).mean()
    )
    batch_ns = get_ns = None
    if timing:
        batch_ns = _best(lambda: algo.lookup(keys), rounds) / len(keys) * 1e9
        few = [f"user:{i}" for i in range(2000)]
        get = algo.get
        get_ns = _best(lambda: [get(k) for k in few], rounds) / len(few) * 1e9
    return Row(
        **base,  # type: ignore[arg-type]
        peak_to_mean=balance.peak_to_mean,
        min_to_mean=balance.min_to_mean,
        moved_on_add=moved_add,
        moved_on_remove=moved_remove,
        memory=int(algo.nbytes),
        build_ms=build_ms if timing else None,
        batch_ns=batch_ns,
        get_ns=get_ns,
    )


def compare(
    nodes: int = 100,
    *,
    weighted: bool = False,
    keys: int | np.ndarray = 1_000_000,
    timing: bool = True,
    rounds: int = 3,
    algorithms: Sequence[str] | None = None,
) -> list[Row]:
    """Measure every algorithm (or those named) on ``nodes`` nodes.

    ``keys``: a uint64 array of keys, or how many to draw (a fixed seed, so the
    balance and movement columns are the same on every run); ``weighted``: node
    ``i`` gets weight ``1 + i % 3`` (algorithms without weights are skipped);
    ``timing=False`` leaves the time columns out (deterministic output).
    """
    if isinstance(keys, (int, np.integer)) and not isinstance(keys, bool):
        if keys < 1:
            raise ValueError("keys must be at least 1")
        keys = np.random.default_rng(20141001).integers(0, 2**64, int(keys), dtype=np.uint64)
    if not isinstance(keys, np.ndarray) or keys.dtype != np.uint64:
        raise TypeError("keys must be a count or a uint64 array")
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 2:
        raise ValueError("nodes must be an int >= 2")
    chosen = list(ALGORITHMS) if algorithms is None else list(algorithms)
    for name in chosen:
        if name not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {name!r}: expected one of {list(ALGORITHMS)}")
    return [_measure(name, nodes, weighted, keys, timing, rounds) for name in chosen]


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _moved(x: float | None, ideal: float) -> str:
    return "-" if x is None else f"{x:.2%} ({x / ideal:.2f}x ideal)"


def _bytes(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1024:,.0f} KiB" if n >= 1024 else f"{n} B"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def format_table(rows: Sequence[Row]) -> str:
    """A markdown table of ``rows`` (time columns only if they were measured)."""
    timed = any(r.batch_ns is not None for r in rows)
    head = ["nodes", "algorithm", "peak/mean", "min/mean", "moved on add", "moved on remove"]
    head += ["memory"]
    if timed:
        head += ["build", "batch lookup", "get"]
    head += ["weights", "remove any", "replicas"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [
            f"{r.nodes:,}",
            r.algorithm,
            _ratio(r.peak_to_mean),
            _ratio(r.min_to_mean),
            _moved(r.moved_on_add, r.ideal_add),
            _moved(r.moved_on_remove, r.ideal_remove),
            _bytes(r.memory),
        ]
        if timed:
            cells += [
                "-" if r.build_ms is None else f"{r.build_ms:.1f} ms",
                "-" if r.batch_ns is None else f"{r.batch_ns:.1f} ns/key",
                "-" if r.get_ns is None else f"{r.get_ns:.0f} ns",
            ]
        cells += [_yes(r.weights), _yes(r.remove_any), _yes(r.preference_lists)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "compare",
        help="measure the consistent-hashing algorithms side by side",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument(
        "--nodes", default="10,100,1000", help="comma-separated node counts (default 10,100,1000)"
    )
    p.add_argument("--keys", type=int, default=1_000_000, help="sample keys (default 1,000,000)")
    p.add_argument("--weighted", action="store_true", help="weights 1, 2, 3, 1, 2, 3, ...")
    p.add_argument("--no-timing", action="store_true", help="deterministic columns only")
    p.add_argument("--json", action="store_true", help="rows as JSON lines")


def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        counts = [int(x) for x in args.nodes.split(",") if x]
        rows = [
            row
            for n in counts
            for row in compare(n, weighted=args.weighted, keys=args.keys, timing=not args.no_timing)
        ]
    except (TypeError, ValueError) as e:
        parser.error(str(e))
    if args.json:
        for row in rows:
            print(json.dumps(asdict(row)))
    else:
        print(format_table(rows))
    return 0
