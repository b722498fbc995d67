"""The ``ringhash`` command line.

``ringhash route`` reads keys (one per line) and writes ``key<TAB>node``
lines, streaming in batches through the compiled lookup path.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from . import _fleet_cli, compare, simulate
from ._configs import add_arguments, keys_of_lines, ring_from_args
from .pymemcache import PymemcacheHash
from .ring import HashRing

__all__ = ["main"]

BATCH_BYTES = 1 << 20


def _parse_weights(text: str | None, names: list[str]) -> dict[str, float]:
    if len(set(names)) != len(names):
        raise ValueError(f"--nodes names a node twice: {','.join(names)}")
    if text is None:
        return dict.fromkeys(names, 1.0)
    parts = text.split(",")
    if len(parts) != len(names):
        raise ValueError(f"--weights has {len(parts)} values for {len(names)} nodes")
    try:
        return {name: float(w) for name, w in zip(names, parts, strict=True)}
    except ValueError:
        raise ValueError(f"--weights must be numbers, got {text!r}") from None


def _batches(stream: BinaryIO, size: int = BATCH_BYTES) -> Iterator[list[bytes]]:
    """Lines of a byte stream in batches, without their line endings."""
    rest = b""
    while True:
        chunk = stream.read(size)
        if not chunk:
            break
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        if lines:
            yield [line[:-1] if line.endswith(b"\r") else line for line in lines]
    if rest:
        yield [rest[:-1] if rest.endswith(b"\r") else rest]


def route(ring: HashRing | PymemcacheHash, src: BinaryIO, out: BinaryIO) -> int:
    """Route every line of ``src`` and write ``key<TAB>node`` lines; returns the count."""
    snap = ring.snapshot()
    names = [n.encode("utf-8") for n in snap.nodes]
    total = 0
    for keys in _batches(src):
        owners = snap.lookup(keys_of_lines(snap, keys)).tolist()
        out.write(b"".join(k + b"\t" + names[o] + b"\n" for k, o in zip(keys, owners, strict=True)))
        total += len(keys)
    return total


def _build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="ringhash", description="Consistent hashing from the command line."
    )
    parser.add_argument("--version", action="version", version=f"ringhash {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser(
        "route",
        help="route keys (one per line) to nodes",
        description="Read keys, one per line, and write 'key<TAB>node' for each. Keys are "
        "hashed as the raw bytes of the line (UTF-8 text hashes as its str).",
    )
    r.add_argument("file", nargs="?", default="-", help="file of keys ('-' or omitted: stdin)")
    r.add_argument("--nodes", help="comma-separated node names (or a config file, below)")
    r.add_argument("--weights", help="comma-separated weights, one per node (default 1 each)")
    r.add_argument("--vnodes", type=int, default=160, help="points per unit weight (default 160)")
    r.add_argument("--hash", choices=["murmur3", "crc32"], default="murmur3")
    r.add_argument("--seed", type=int, default=0, help="murmur3 seed (default 0)")
    r.add_argument("-o", "--output", default="-", help="output file (default stdout)")
    add_arguments(r)
    simulate.add_parser(sub)
    compare.add_parser(sub)
    _fleet_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "simulate":
        return simulate.main(args, parser)
    if args.command == "compare":
        return compare.main(args, parser)
    if args.command == "fleet":
        return _fleet_cli.main(args, parser)
    try:
        ring = ring_from_args(args)
        if ring is None:
            if not args.nodes:
                raise ValueError("give --nodes, or a config file (--nginx, --haproxy, --twemproxy)")
            names = [n for n in args.nodes.split(",") if n]
            ring = HashRing(
                _parse_weights(args.weights, names),
                vnodes=args.vnodes,
                hash=args.hash,
                seed=args.seed,
            )
        elif args.nodes:
            raise ValueError("give --nodes or a config file, not both")
        if not len(ring):
            raise ValueError("--nodes names no node")
    except (TypeError, ValueError, OSError, ImportError) as e:
        parser.error(str(e))
    src = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")
    out = sys.stdout.buffer if args.output == "-" else open(args.output, "wb")
    try:
        route(ring, src, out)
        out.flush()
    except BrokenPipeError:  # e.g. piped into head
        sys.stderr.close()
        return 0
    except ValueError as e:  # a line that is no key of this ring (balance source: no address)
        parser.error(f"{args.file}: {e}")
    finally:
        if src is not sys.stdin.buffer:
            src.close()
        if out is not sys.stdout.buffer:
            out.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
