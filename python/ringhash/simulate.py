"""``ringhash simulate``: what happens to a ring, and to its keys, if nodes change.

Builds a ring (from ``--nodes``, or from a deployed config: ``--nginx FILE
--upstream NAME``, ``--haproxy FILE --backend NAME``, ``--twemproxy FILE --pool
NAME``), applies ``--add``/``--remove``/``--set-weight`` or compares with the
changed file given as ``--to FILE``, routes keys through both rings and reports
per-node share and load before and after, balance, how much moved where, and
which keys moved between servers that did not change (HAProxy renumbers the
automatic ids of the servers after a deleted line). ``--json`` needs nothing
more; the table and progress bar need the ``simulate`` extra (rich), ``--plot``
the ``plot`` extra (matplotlib).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import planning
from ._configs import add_arguments, config_kind, keys_of_lines, ring_from_args
from .pymemcache import PymemcacheHash
from .ring import HashRing

CHUNK = 1 << 20


def _parse_node_spec(text: str) -> dict[str, float]:
    """``a,b,c`` (names), ``100`` (that many nodes ``node-0``...), or ``@FILE``
    (one ``name`` or ``name weight`` / ``name,weight`` per line)."""
    if text.startswith("@"):
        nodes: dict[str, float] = {}
        for lineno, line in enumerate(Path(text[1:]).read_text(encoding="utf-8").splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.replace(",", " ").split()
            if len(parts) > 2:
                raise ValueError(f"{text[1:]}:{lineno}: expected 'name [weight]'")
            nodes[parts[0]] = float(parts[1]) if len(parts) == 2 else 1.0
        return nodes
    if text.isdigit():
        return {f"node-{i}": 1.0 for i in range(int(text))}
    names = [n for n in text.split(",") if n]
    if len(set(names)) != len(names):
        raise ValueError("--nodes names a node twice")
    return dict.fromkeys(names, 1.0)


def _name_weight(text: str, default: float | None) -> tuple[str, float | None]:
    name, sep, w = text.rpartition(":")
    if not sep:
        return text, default
    try:
        return name, int(w) if w.isdigit() else float(w)  # an int for the presets' int weights
    except ValueError:
        return text, default  # a colon in the name itself, e.g. host:port


def _keys(args: argparse.Namespace, progress: Any) -> list[np.ndarray | list[bytes]]:
    if args.keys_file:
        data = Path(args.keys_file).read_bytes().split(b"\n")
        if data and data[-1] == b"":
            data.pop()
        data = [line[:-1] if line.endswith(b"\r") else line for line in data]  # CRLF, as route does
        return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    rng = np.random.default_rng(args.key_seed)
    task = progress.add_task("generating keys", total=args.keys)
    chunks = []
    for start in range(0, args.keys, CHUNK):
        n = min(CHUNK, args.keys - start)
        chunks.append(rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True))
        progress.advance(task, n)
    return chunks


class _NoProgress:
    """Progress's interface, doing nothing (JSON output needs no rich)."""

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: object, **kwargs: object) -> int:
        return 0

    def advance(self, *args: object) -> None:
        return None


def _progress(args: argparse.Namespace) -> Any:
    if args.json or not sys.stderr.isatty():
        return _NoProgress()
    from rich.progress import Progress

    return Progress(transient=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    before = ring_from_args(args)
    if before is None:
        if not args.nodes:
            raise ValueError("give --nodes, or a config file (--nginx, --haproxy, --twemproxy)")
        before = HashRing(
            _parse_node_spec(args.nodes), vnodes=args.vnodes, hash=args.hash, seed=args.seed
        )
    elif args.nodes:
        raise ValueError("give --nodes or a config file, not both")
    if args.to:
        after = ring_from_args(args, args.to)
        if after is None:
            raise ValueError("--to needs a config file to compare with (--nginx, --haproxy, ...)")
    elif isinstance(before, HashRing):
        after = HashRing.from_bytes(before.to_bytes())
    else:  # a PymemcacheHash: its own copy
        after = type(before).from_dict(before.to_dict())
    for text in args.add:
        # a config's servers are named by their text, colons and all (host:port,
        # twemproxy's host:port:weight): added as written, with the default weight
        name, w = (text, None) if config_kind(args) else _name_weight(text, None)
        after.add(name, 1 if w is None else w)
    for name in args.remove:
        after.remove(name)
    for text in args.set_weight:
        name, w = _name_weight(text, None)
        if w is None:
            raise ValueError(f"--set-weight needs NAME:WEIGHT, got {text!r}")
        after.set_weight(name, w)
    a, b = before.snapshot(), after.snapshot()
    names = sorted(set(a.nodes) | set(b.nodes), key=lambda n: n.encode("utf-8"))
    ids = {n: i for i, n in enumerate(names)}
    map_a = np.array([ids[n] for n in a.nodes], dtype=np.int64)
    map_b = np.array([ids[n] for n in b.nodes], dtype=np.int64)
    load_a = np.zeros(len(names), dtype=np.int64)
    load_b = np.zeros(len(names), dtype=np.int64)
    pair = np.zeros((len(names), len(names)), dtype=np.int64)
    total = 0
    with _progress(args) as progress:
        chunks = _keys(args, progress)
        task = progress.add_task("routing keys", total=sum(len(c) for c in chunks))
        for chunk in chunks:
            ka = kb = chunk
            if isinstance(chunk, list):  # --keys-file lines, as route reads them: each
                # ring by its own rule (a --to file may balance by another)
                ka, kb = keys_of_lines(a, chunk), keys_of_lines(b, chunk)
            elif isinstance(a, PymemcacheHash):
                # pymemcache hashes str keys only: route the random keys' decimal text
                ka = kb = [str(x) for x in np.asarray(chunk).tolist()]
            oa = map_a[a.lookup(ka)] if len(a) else np.full(len(chunk), -1)
            ob = map_b[b.lookup(kb)] if len(b) else np.full(len(chunk), -1)
            load_a += np.bincount(oa[oa >= 0], minlength=len(names))
            load_b += np.bincount(ob[ob >= 0], minlength=len(names))
            moved = (oa != ob) & (oa >= 0) & (ob >= 0)
            np.add.at(pair, (oa[moved], ob[moved]), 1)
            total += len(chunk)
            progress.advance(task, len(chunk))
    share_a = a.shares() if len(a) else {}
    share_b = b.shares() if len(b) else {}
    change = a.diff(b)

    def peak(load: np.ndarray, snap: Any) -> float | None:
        serving = dict(zip(snap.nodes, planning.serving_weights(snap).tolist(), strict=True))
        w = np.array([serving.get(n, 0.0) for n in names])
        present = w > 0  # (not a down, disabled or backup server of a preset)
        if not present.any() or not total:
            return None
        w = w[present]
        ratio = load[present] / (total * w / w.sum())
        return float(ratio.max() / ratio.mean())

    moved_pairs = [
        {
            "from": names[i],
            "to": names[j],
            "keys": int(pair[i, j]),
            "space": getattr(change, "by_pair", {}).get((names[i], names[j])),
        }
        for i, j in zip(*np.nonzero(pair), strict=True)
    ]
    moved_pairs.sort(key=lambda p: -p["keys"])
    # servers present before and after with the same weight, that still lost or
    # gained keys to each other: not what consistent hashing promises
    same = {n for n in names if n in a and n in b and a.weights[n] == b.weights[n]}
    unchanged = [p for p in moved_pairs if p["from"] in same and p["to"] in same]
    return {
        "keys": total,
        "nodes": [
            {
                "name": n,
                "weight_before": a.weights.get(n),
                "weight_after": b.weights.get(n),
                "share_before": share_a.get(n, 0.0),
                "share_after": share_b.get(n, 0.0),
                "load_before": int(load_a[i]),
                "load_after": int(load_b[i]),
            }
            for i, n in enumerate(names)
        ],
        "peak_to_mean_before": peak(load_a, a),
        "peak_to_mean_after": peak(load_b, b),
        "moved_space": change.fraction,
        "moved_keys": int(pair.sum()),
        "moved_keys_fraction": float(pair.sum() / total) if total else 0.0,
        "moved": moved_pairs,
        "moved_between_unchanged_keys": sum(p["keys"] for p in unchanged),
        "moved_between_unchanged": unchanged,
    }


def render(result: dict[str, Any], top: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{result['keys']:,} keys")
    for col in (
        "node",
        "weight",
        "share before",
        "share after",
        "load before",
        "load after",
        "change",
    ):
        table.add_column(col, justify="left" if col == "node" else "right")
    rows = sorted(result["nodes"], key=lambda r: -abs(r["load_after"] - r["load_before"]))
    for r in rows[:top]:
        wb, wa = r["weight_before"], r["weight_after"]
        weight = (
            "-"
            if wa is None and wb is None
            else (
                f"{wb:g}"
                if wa == wb
                else f"{'-' if wb is None else f'{wb:g}'} -> {'-' if wa is None else f'{wa:g}'}"
            )
        )
        table.add_row(
            r["name"],
            weight,
            f"{r['share_before']:.2%}",
            f"{r['share_after']:.2%}",
            f"{r['load_before']:,}",
            f"{r['load_after']:,}",
            f"{r['load_after'] - r['load_before']:+,}",
        )
    if len(rows) > top:
        table.caption = f"{len(rows) - top} more nodes not shown (--top)"
    console.print(table)

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    console.print(
        f"peak/mean load: before {fmt(result['peak_to_mean_before'])}, "
        f"after {fmt(result['peak_to_mean_after'])}"
    )
    console.print(
        f"moved: {result['moved_keys']:,} keys ({result['moved_keys_fraction']:.2%}); "
        f"{result['moved_space']:.2%} of the hash space"
    )
    for p in result["moved"][:top]:
        space = "" if p["space"] is None else f" ({p['space']:.2%} of the space)"
        console.print(f"  {p['from']} -> {p['to']}: {p['keys']:,} keys{space}")
    if result["moved_between_unchanged_keys"]:
        console.print(
            f"[bold red]{result['moved_between_unchanged_keys']:,} keys moved between servers "
            "that did not change[/] (e.g. HAProxy renumbered the servers after a deleted line):"
        )
        for p in result["moved_between_unchanged"][:top]:
            console.print(f"  {p['from']} -> {p['to']}: {p['keys']:,} keys")


def plot(result: dict[str, Any], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'ringhash[plot]'") from None
    rows = result["nodes"]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(rows) + 2), 4.2))
    ax.bar(x - 0.2, [r["load_before"] for r in rows], 0.4, label="before")
    ax.bar(x + 0.2, [r["load_after"] for r in rows], 0.4, label="after")
    ax.set_xticks(
        x,
        [r["name"] for r in rows],
        rotation=60 if len(rows) > 8 else 0,
        ha="right" if len(rows) > 8 else "center",
    )
    ax.set_ylabel("keys")
    ax.set_title(
        f"{result['keys']:,} keys: {result['moved_keys_fraction']:.2%} of them moved "
        f"({result['moved_space']:.2%} of the hash space)"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "simulate",
        help="what moves, and how balanced, if nodes change",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--nodes",
        help="names 'a,b,c', a count '100', or '@FILE' with 'name [weight]' lines",
    )
    add_arguments(p)
    p.add_argument(
        "--to",
        metavar="FILE",
        help="the changed config file to compare with (with --libmemcached or --pymemcache: "
        "the changed server list)",
    )
    p.add_argument(
        "--add",
        action="append",
        default=[],
        metavar="NAME[:WEIGHT]",
        help="add a node; to a config's ring, a server as the config writes it (no :WEIGHT)",
    )
    p.add_argument("--remove", action="append", default=[], metavar="NAME")
    p.add_argument("--set-weight", action="append", default=[], metavar="NAME:WEIGHT")
    p.add_argument("--keys", type=int, default=1_000_000, help="random keys to route (default 1M)")
    p.add_argument("--keys-file", help="route these keys instead (one per line)")
    p.add_argument("--key-seed", type=int, default=0, help="seed of the random keys")
    p.add_argument("--vnodes", type=int, default=160)
    p.add_argument("--hash", choices=["murmur3", "crc32"], default="murmur3")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--top", type=int, default=20, help="rows to show (default 20)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="draw per-node load before and after")


def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not args.json:
        try:
            import rich  # noqa: F401
        except ImportError:
            parser.error(
                "the simulate table needs rich: pip install 'ringhash[simulate]' (or use --json)"
            )
    if args.keys < 0:
        parser.error("--keys must be >= 0")
    try:
        result = run(args)
    except (ValueError, TypeError, KeyError, OSError) as e:
        parser.error(str(e))
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        render(result, args.top)
    if args.plot:
        plot(result, args.plot)
    return 0


__all__: Sequence[str] = ["add_parser", "main", "run"]
