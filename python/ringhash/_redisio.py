"""What the Redis-backed features (the lock table, the fleet) share: importing
redis-py with a clear message, checking a client, keys that stay in one Redis
Cluster slot, and calling Lua scripts with Redis errors turned into the
feature's own exception."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

try:
    import redis
    import redis.asyncio
except ImportError as _e:  # pragma: no cover - exercised only without the extra
    raise ImportError("the Redis features need redis-py: pip install 'ringhash[redis]'") from _e

__all__ = [
    "Scripts",
    "blocking_pop",
    "blocking_pop_async",
    "bounded_by",
    "check_async_client",
    "check_client",
    "check_no_eviction",
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


#: Worker threads for calls that must end by a deadline (see ``Scripts``).
_CALLS = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="ringhash-redis")


def bounded_by(client: Any, remaining: float) -> bool:
    """Whether ``client`` gives up on a call within ``remaining`` seconds by itself
    (its socket timeout, times the attempts its retry policy makes)."""
    kw = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None)
    if not kw:
        return False
    tmo = kw.get("socket_timeout")
    retry = kw.get("retry")
    attempts = 1 + (getattr(retry, "_retries", 3) if retry is not None else 0)
    return tmo is not None and tmo * attempts + 0.05 * attempts <= remaining


class Scripts:
    """Lua scripts registered once on a client; calling one raises ``error(what, e)``
    for any Redis error, with the cause attached. With a ``deadline`` (monotonic
    seconds) a call returns or raises by then whatever the server does: when the
    client's own timeouts and retries could outlast it, the call runs in a worker
    thread and is left behind at the deadline (the caller must make a late
    completion harmless)."""

    def __init__(
        self,
        client: Any,
        sources: Mapping[str, str],
        error: Callable[[str, BaseException], BaseException],
    ) -> None:
        self._client = client
        self._scripts = {name: client.register_script(src) for name, src in sources.items()}
        self._sha = {name: script.sha for name, script in self._scripts.items()}
        self._error = error

    def _run(self, name: str, keys: list[str], args: list[Any], what: str) -> Any:
        # EVALSHA directly (redis-py's Script.__call__ costs ~7 us more per call,
        # a twentieth of a round trip); a server that lost its script cache gets
        # the script again through Script, which loads it.
        try:
            try:
                return self._client.evalsha(self._sha[name], len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:
                return self._scripts[name](keys=keys, args=args)
        except redis.RedisError as e:
            raise self._error(what, e) from e

    def __call__(
        self,
        name: str,
        keys: list[str],
        args: list[Any],
        what: str,
        deadline: float | None = None,
    ) -> Any:
        if deadline is None or bounded_by(self._client, deadline - time.monotonic()):
            return self._run(name, keys, args, what)
        fut = _CALLS.submit(self._run, name, keys, args, what)
        try:
            return fut.result(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            late = TimeoutError("Redis did not answer within the timeout")
            raise self._error(what, late) from None


def _pool_of(client: Any, key: str) -> Any:
    """The connection pool of the server that holds ``key`` (a cluster's node for its slot)."""
    if isinstance(client, redis.cluster.RedisCluster):
        node = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
        return client.get_redis_connection(node).connection_pool
    return client.connection_pool


def blocking_pop(client: Any, key: str, wait: float, slack: float) -> Any:
    """``BLPOP key wait`` on a connection of the client's pool, returning the element
    popped, or None; never longer than ``wait + slack`` whatever the server does (a
    connection whose reply did not come in time is closed, so that reply cannot
    reach its next user). Any Redis error counts as "nothing popped": what was pushed
    must also be recoverable another way (the lock table's ACQUIRE returns a grant
    whose pop was lost)."""
    if wait < 0.001:
        return None
    pool = _pool_of(client, key)
    try:
        conn = pool.get_connection()
    except TypeError:  # redis-py before 5.3 wants a command name
        conn = pool.get_connection("BLPOP")
    except redis.RedisError:
        return None
    try:
        conn.send_command("BLPOP", key, f"{wait:.3f}")
        if conn.can_read(timeout=wait + slack):
            reply = conn.read_response()
            return None if reply is None else reply[1]
        conn.disconnect()
        return None
    except (redis.RedisError, OSError):
        conn.disconnect()
        return None
    finally:
        pool.release(conn)


async def blocking_pop_async(client: Any, key: str, wait: float, slack: float) -> Any:
    """:func:`blocking_pop` through a redis.asyncio client; cancelling it is safe
    (redis-py closes a connection whose command was cancelled)."""
    if wait < 0.001:
        return None
    try:
        reply = await asyncio.wait_for(client.blpop([key], timeout=wait), wait + slack)
    except (asyncio.TimeoutError, redis.RedisError, OSError):
        return None
    return None if reply is None else reply[1]


def check_no_eviction(
    client: Any, check: bool, user: str, error: Callable[[str], BaseException]
) -> None:
    """Raise ``error(message)`` unless the server's ``maxmemory-policy`` is
    ``noeviction`` (every node of a cluster): state that must not vanish (locks,
    fencing counters, epochs) would otherwise be evicted under memory pressure.
    ``check=False`` skips the check with a warning, for managed services that
    hide ``CONFIG``."""
    if not check:
        logging.getLogger("ringhash.locks").warning(
            "%s(check_eviction=False): the server's maxmemory-policy is not checked; any "
            "policy but noeviction can evict keys and break exclusion",
            user,
        )
        return
    try:
        reply = client.config_get("maxmemory-policy")
    except redis.RedisError as e:
        raise error(
            f"could not read maxmemory-policy ({type(e).__name__}: {e}); if the service "
            "hides CONFIG and you know it never evicts, pass check_eviction=False"
        ) from e
    # one node's {policy: value}, or a cluster's {node: {policy: value}}
    replies = reply.values() if all(isinstance(v, dict) for v in reply.values()) else [reply]
    for r in replies:
        policy = {_str(k): _str(v) for k, v in r.items()}.get("maxmemory-policy")
        if policy != "noeviction":
            raise error(
                f"Redis maxmemory-policy is {policy!r}: under memory pressure it evicts "
                "keys, and an evicted lease, queue or fencing counter lets two owners hold "
                "one lock or reuses a token. Set maxmemory-policy noeviction (writes then "
                "fail cleanly when memory is full), or keep locks on a Redis of their own"
            )


def _str(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
