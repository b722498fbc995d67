"""What the Redis-backed features (the lock table, the fleet) share: importing
redis-py with a clear message, checking a client, keys that stay in one Redis
Cluster slot, and calling Lua scripts with Redis errors turned into the
feature's own exception."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

try:
    import redis
    import redis.asyncio
except ImportError as _e:  # pragma: no cover - exercised only without the extra
    raise ImportError("the Redis features need redis-py: pip install 'ringhash[redis]'") from _e

__all__ = [
    "Scripts",
    "check_async_client",
    "check_client",
    "check_prefix",
    "escape_tag",
    "redis",
    "slot_base",
]

SYNC_CLIENTS = (redis.Redis, redis.cluster.RedisCluster)
ASYNC_CLIENTS = (redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster)


def check_client(client: object, what: str = "client") -> Any:
    if not isinstance(client, SYNC_CLIENTS):
        raise TypeError(
            f"{what} must be a redis.Redis or redis.RedisCluster, not {type(client).__name__}"
        )
    return client


def check_async_client(client: object, what: str = "async_client") -> Any:
    if not isinstance(client, ASYNC_CLIENTS):
        raise TypeError(
            f"{what} must be a redis.asyncio.Redis or redis.asyncio.RedisCluster, "
            f"not {type(client).__name__}"
        )
    return client


def escape_tag(name: str) -> str:
    """``name`` with no braces, injectively (``\\`` for a backslash, ``\\(`` and
    ``\\)`` for braces): safe inside a Redis Cluster hash tag, and two names
    never escape to the same text."""
    return name.replace("\\", "\\\\").replace("{", "\\(").replace("}", "\\)")


def check_prefix(prefix: object) -> str:
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
    if "{" in prefix or "}" in prefix:
        raise ValueError(
            f"prefix must not contain braces (they pick Redis Cluster slots): {prefix!r}"
        )
    return prefix


def slot_base(prefix: str, tag: str) -> str:
    """``{prefix}{{tag}}``: every key built on it hashes to the slot of ``tag``
    (Redis Cluster hash tags); ``tag`` must not contain braces."""
    if "{" in tag or "}" in tag:
        raise ValueError(f"names must not contain braces: {tag!r}")
    return f"{prefix}{{{tag}}}"


class Scripts:
    """Lua scripts registered once on a client; calling one raises ``error(what, e)``
    for any Redis error, with the cause attached."""

    def __init__(
        self,
        client: Any,
        sources: Mapping[str, str],
        error: Callable[[str, BaseException], BaseException],
    ) -> None:
        self._scripts = {name: client.register_script(src) for name, src in sources.items()}
        self._error = error

    def __call__(self, name: str, keys: list[str], args: list[Any], what: str) -> Any:
        try:
            return self._scripts[name](keys=keys, args=args)
        except redis.RedisError as e:
            raise self._error(what, e) from e
