"""Rings from the configuration files operators already deploy (for the CLI)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .haproxy import HaproxyState
from .pymemcache import PymemcacheHash
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
    g.add_argument(
        "--libmemcached",
        metavar="SERVERS",
        help="pylibmc server strings 'host:port[:weight],...' (with --behaviors)",
    )
    g.add_argument(
        "--behaviors",
        default="ketama",
        help="pylibmc behaviors 'ketama,hash=md5,...' (default: ketama)",
    )
    g.add_argument("--pymemcache", metavar="SERVERS", help="HashClient servers 'host:port,...'")
    g.add_argument(
        "--char",
        choices=("signed", "unsigned"),
        help="how the twemproxy or libmemcached build reads key bytes: signed (built for "
        "x86-64; the default) or unsigned (aarch64, ARM, POWER, s390x)",
    )


def keys_of_lines(ring: Any, lines: list[bytes]) -> list[Any]:
    """The keys of text lines for ``ring``: the lines themselves, but ``str`` for
    pymemcache (it hashes str keys, bytes by their repr), and what HAProxy hashes of
    them by the backend's ``balance`` (``HaproxyState.keys_of_text``: a client
    address packed, a URI cut)."""
    if isinstance(ring, PymemcacheHash):
        return [k.decode("utf-8", "surrogateescape") for k in lines]
    state = ring._snap._preset  # (this package's own; a ring or a snapshot)
    if isinstance(state, HaproxyState):
        return state.keys_of_text(lines)
    return lines


def _behaviors(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        out[key.strip()] = value.strip() if sep else True
    return out


def _servers(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def ring_from_servers(args: argparse.Namespace, text: str | None = None) -> Any:
    """The libmemcached ring or pymemcache client the arguments name (``text``: a
    changed server list instead), or None."""
    if getattr(args, "libmemcached", None):
        servers = _servers(text or args.libmemcached)
        char = getattr(args, "char", None) or "signed"
        return HashRing.libmemcached(servers, _behaviors(args.behaviors), char=char)
    if getattr(args, "pymemcache", None):
        return PymemcacheHash(_servers(text or args.pymemcache))
    return None


def config_kind(args: argparse.Namespace) -> str | None:
    given = [k for k in (*KINDS, "libmemcached", "pymemcache") if getattr(args, k, None)]
    if len(given) > 1:
        raise ValueError(f"give one config file, not --{' and --'.join(given)}")
    return given[0] if given else None


def ring_from_args(args: argparse.Namespace, path: str | None = None) -> HashRing | None:
    """The ring of the config file (or server list) the arguments name (``path``
    instead of the file given, e.g. a changed copy; for the server lists, the
    changed list itself), or None if they name none."""
    kind = config_kind(args)
    char = getattr(args, "char", None)
    if char is not None and kind not in ("twemproxy", "libmemcached"):
        raise ValueError(
            "--char is for --twemproxy and --libmemcached (the programs whose hashes read "
            f"key bytes through a plain C char), not {f'--{kind}' if kind else '--nodes'}"
        )
    if kind is None:
        return None
    if kind not in KINDS:
        return ring_from_servers(args, path)  # type: ignore[no-any-return]
    option, what, make = KINDS[kind]
    section = getattr(args, option)
    if not section:
        raise ValueError(f"--{kind} needs --{option} (the {what} to read)")
    file = Path(path or getattr(args, kind))
    # nginx's configs are read from the file, so that its includes are followed
    source = file if kind == "nginx" else file.read_text(encoding="utf-8")
    ring: HashRing = make(source, section, char=char) if char else make(source, section)
    return ring
