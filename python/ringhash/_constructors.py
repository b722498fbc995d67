"""``HashRing``'s preset constructors: rings that route exactly as another program.

A mixin, so the ring module stays about the ring: each constructor validates
its input into a preset state (``ringhash.presets``, ``ringhash.nginx``,
``ringhash.haproxy``, ``ringhash.twemproxy``, ``ringhash.libmemcached``) and
hands it to ``_preset_ring``, which ``HashRing`` defines.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from . import presets
from .haproxy import HaproxyState, parse_haproxy
from .libmemcached import LibmemcachedState
from .nginx import NginxState, parse_nginx
from .twemproxy import TwemproxyState, parse_twemproxy

__all__ = ["PresetConstructors"]


class PresetConstructors:
    @classmethod
    def _preset_ring(cls, state: presets.PresetState) -> Any:
        raise NotImplementedError

    @classmethod
    def ketama(cls, servers: Mapping[str, int] | Iterable[tuple[str, int]]) -> Any:
        """A ring identical to libketama's continuum for ``servers`` ("host:port" -> int weight).

        The order of ``servers`` is the order of libketama's server file. See
        :mod:`ringhash.presets` for the exact rules.
        """
        return cls._preset_ring(presets.KetamaState.of(servers))

    @classmethod
    def groupcache(cls, nodes: Iterable[str] = (), replicas: int = 50) -> Any:
        """A ring identical to golang/groupcache's ``consistenthash.New(replicas, nil)``
        after ``Add(nodes...)`` (crc32, no separator in point strings)."""
        return cls._preset_ring(presets.GroupcacheState.of(replicas, nodes))

    @classmethod
    def stathat(cls, nodes: Iterable[str] = (), replicas: int = 20) -> Any:
        """A ring identical to stathat.com/c/consistent with ``NumberOfReplicas = replicas``
        after ``Add(n)`` for each node in order (first point strictly greater than the key)."""
        return cls._preset_ring(presets.StathatState.of(replicas, nodes))

    @classmethod
    def nginx(cls, servers: Mapping[str, int] | Iterable[Any]) -> Any:
        """nginx's ``hash $key consistent`` over ``server`` texts (with weights; see
        :mod:`ringhash.nginx`). Nodes are named by the texts as written."""
        return cls._preset_ring(NginxState.of(servers))

    @classmethod
    def from_nginx(cls, conf_text: str | os.PathLike[str], upstream: str) -> Any:
        """The ring of ``upstream NAME`` in an nginx.conf text, or in the nginx.conf at a
        path (a ``pathlib.Path``: its ``include`` files are read too, as nginx reads
        them); needs ``ringhash[nginx]``."""
        return cls._preset_ring(parse_nginx(conf_text, upstream))

    @classmethod
    def haproxy(
        cls,
        servers: Iterable[Any],
        hash: str = "sdbm",
        avalanche: bool | None = None,
        *,
        balance: str = "",
        allbackups: bool = False,
    ) -> Any:
        """HAProxy's ``hash-type consistent`` over servers given as names or ``(name,
        weight[, id[, backup]])`` in backend order; ``hash`` is sdbm, djb2, wt6 or
        crc32, or "source" for ``balance source`` (see :mod:`ringhash.haproxy`;
        ``avalanche`` None is HAProxy's default). ``balance``: the backend's ``balance``
        line, kept to read text keys by (``ringhash route``: a ``uri`` cut as HAProxy
        cuts it). Backup servers take keys only when no other server can (the first
        of them, or all of them hashed with ``allbackups``: ``option allbackups``)."""
        return cls._preset_ring(
            HaproxyState.of(servers, hash, avalanche, balance, allbackups=allbackups)
        )

    @classmethod
    def from_haproxy(cls, cfg_text: str, backend: str) -> Any:
        """The ring of ``backend NAME`` (or ``listen NAME``) in a haproxy.cfg text."""
        return cls._preset_ring(parse_haproxy(cfg_text, backend))

    @classmethod
    def twemproxy(
        cls,
        servers: Iterable[str],
        hash: str = "fnv1a_64",
        *,
        char: str = "signed",
        hash_tag: str = "",
    ) -> Any:
        """twemproxy's ketama over server lines ``host:port:weight [name]`` (see
        :mod:`ringhash.twemproxy`). Nodes are named by the lines as written. ``char``:
        "signed" for a nutcracker built for x86-64, "unsigned" for aarch64, ARM, POWER
        or s390x (they hash non-ASCII keys differently). ``hash_tag``: the pool's (two
        characters, e.g. "{}"), or "" for none."""
        return cls._preset_ring(TwemproxyState.of(servers, hash, char, hash_tag))

    @classmethod
    def from_twemproxy(cls, yaml_text: str, pool: str, *, char: str = "signed") -> Any:
        """The ring of ``pool`` in a nutcracker.yml text, its ``hash_tag`` included
        (needs ``ringhash[twemproxy]``); ``char`` as for :meth:`twemproxy`."""
        return cls._preset_ring(parse_twemproxy(yaml_text, pool, char))

    @classmethod
    def libmemcached(
        cls,
        servers: Iterable[Any] | Mapping[str, int],
        behaviors: Mapping[str, Any] | None = None,
        *,
        char: str = "signed",
    ) -> Any:
        """libmemcached 1.1.4's ketama as ``pylibmc.Client(servers, behaviors=...)`` routes
        (see :mod:`ringhash.libmemcached`). Nodes are named by the server strings.
        ``char``: "signed" for libmemcached built for x86-64, "unsigned" for aarch64,
        ARM, POWER or s390x (they hash non-ASCII keys differently)."""
        return cls._preset_ring(LibmemcachedState.of(servers, behaviors, char))
