"""Rings from the configuration files operators already deploy (for the CLI)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .ring import HashRing

__all__ = ["KINDS", "add_arguments", "ring_from_args"]

#: option -> (section option, what the section is called, constructor)
KINDS: dict[str, tuple[str, str, Any]] = {
    "nginx": ("upstream", "upstream", HashRing.from_nginx),
    "haproxy": ("backend", "backend", HashRing.from_haproxy),
    "twemproxy": ("pool", "pool", HashRing.from_twemproxy),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("a ring from a config file (instead of --nodes)")
    g.add_argument("--nginx", metavar="NGINX.CONF", help="an nginx.conf (with --upstream)")
    g.add_argument("--upstream", help="the upstream block's name")
    g.add_argument("--haproxy", metavar="HAPROXY.CFG", help="a haproxy.cfg (with --backend)")
    g.add_argument("--backend", help="the backend (or listen) section's name")
    g.add_argument("--twemproxy", metavar="NUTCRACKER.YML", help="a nutcracker.yml (with --pool)")
    g.add_argument("--pool", help="the pool's name")


def config_kind(args: argparse.Namespace) -> str | None:
    given = [k for k in KINDS if getattr(args, k, None)]
    if len(given) > 1:
        raise ValueError(f"give one config file, not --{' and --'.join(given)}")
    return given[0] if given else None


def ring_from_args(args: argparse.Namespace, path: str | None = None) -> HashRing | None:
    """The ring of the config file the arguments name (``path`` instead of the
    file given, e.g. a changed copy), or None if they name none."""
    kind = config_kind(args)
    if kind is None:
        return None
    option, what, make = KINDS[kind]
    section = getattr(args, option)
    if not section:
        raise ValueError(f"--{kind} needs --{option} (the {what} to read)")
    text = Path(path or getattr(args, kind)).read_text(encoding="utf-8")
    ring: HashRing = make(text, section)
    return ring
