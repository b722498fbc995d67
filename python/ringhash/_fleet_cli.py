"""``ringhash fleet``: a live fleet's members, weights, epoch and shares."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_parser", "main"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "fleet",
        help="show a live fleet on Redis: members, weights, epoch, share per member",
        description="Read a RedisFleet's state (needs ringhash[redis]).",
    )
    p.add_argument("name", help="the fleet's name")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis URL")
    p.add_argument("--prefix", default="ringhash:")
    p.add_argument("--vnodes", type=int, default=160)
    p.add_argument("--hash", choices=["murmur3", "crc32"], default="murmur3")
    p.add_argument("--json", action="store_true", help="print the state as JSON")


def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        import redis

        from .fleet import FleetError, RedisFleet
    except ImportError as e:
        parser.error(str(e))
    try:
        client = redis.Redis.from_url(args.redis, socket_timeout=5)
        fleet = RedisFleet(
            client, args.name, vnodes=args.vnodes, hash=args.hash, prefix=args.prefix
        )
        epoch, members = fleet.state()
    except (FleetError, ValueError, TypeError, redis.RedisError) as e:
        parser.error(str(e))
    shares = fleet.build(members).shares() if members else {}
    if args.json:
        print(
            json.dumps(
                {
                    "fleet": args.name,
                    "epoch": epoch,
                    "members": [
                        {"name": n, "weight": w, "share": shares[n]} for n, w in members.items()
                    ],
                }
            )
        )
        return 0
    print(f"fleet {args.name!r}: epoch {epoch}, {len(members)} live members")
    width = max((len(n) for n in members), default=4)
    for n in sorted(members):
        print(f"  {n:<{width}}  weight {members[n]:g}  share {shares[n]:.2%}")
    return 0
