"""What the Redis-backed features (the lock table, the fleet) share: importing
redis-py with a clear message, checking a client, keys that stay in one Redis
Cluster slot, and calling Lua scripts with Redis errors turned into the
feature's own exception (on the connections of ``_wire.py``), and counters that
start from the server's clock."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

try:
    import redis
    import redis.asyncio
except ImportError as _e:  # pragma: no cover - exercised only without the extra
    raise ImportError("the Redis features need redis-py: pip install 'ringhash[redis]'") from _e

from ._wire import (
    async_pool_for,
    by,
    pack,
    pooled_call,
    pooled_call_then_pop,
    pooled_pop,
    submit,
    wire_for,
)

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
    "seed_from_clock",
    "slot_base",
]

SYNC_CLIENTS = (redis.Redis, redis.cluster.RedisCluster)
ASYNC_CLIENTS = (redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster)


# A counter that must never go back (a lock's fencing tokens, a fleet's epochs) is
# made by an INCR that returns 1; it starts at the server's clock in microseconds
# instead, so one Redis lost (a restart without AOF) starts again above every value it
# gave, for every client: below 2**53 (exact as a Lua number) until 2255, and
# backwards only after more than one increment per microsecond on average since it
# was made, or on a server whose clock is behind by more than the counter's age.
# Joined to a string, such a value is formatted with '%d' (Lua's "%.14g" would round
# its 16 digits).
def seed_from_clock(var: str, key: str, indent: str = "") -> str:
    """Lua run after ``var = redis.call('INCR', key)``: a new counter (1) starts at the
    server's clock in microseconds (above), in ``key`` and in ``var``."""
    lua = f"""if {var} == 1 then  -- a new counter: from the clock, not from 1
  local c = redis.call('TIME')
  {var} = tonumber(c[1]) * 1000000 + tonumber(c[2])
  redis.call('SET', {key}, string.format('%d', {var}))
end
"""
    return "".join(indent + line + "\n" for line in lua.splitlines())


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


T = TypeVar("T")


def call_by(client: Any, deadline: float | None, call: Callable[[], T]) -> T:
    """``call()``, a call through ``client``, by ``deadline`` (monotonic seconds) if given:
    when the client's own socket timeout and retries could outlast it, the call runs in a
    worker thread, left behind at the deadline (to finish by itself: the caller makes a
    late run harmless) with ``redis.TimeoutError``."""
    if deadline is None or bounded_by(client, deadline - time.monotonic()):
        return call()
    done = submit(call)
    try:
        return done.result(timeout=max(0.0, deadline - time.monotonic()))
    except concurrent.futures.TimeoutError:
        raise redis.TimeoutError("Redis did not answer in time") from None


class Scripts:
    """Lua scripts registered once on a client; calling one raises ``error(what, e)``
    for any Redis error, with the cause attached. With a ``deadline`` (monotonic
    seconds) a call returns or raises by then whatever the server does.

    On a ``redis.Redis`` client calls go through a ``_wire.Wire`` (EVALSHA packed
    here, a deadline as a read timeout); a call that fails on it for a connection
    error or a timeout is made again through the client, with its own retry policy.
    Through the client (always for ``RedisCluster``, which routes by key), a deadline
    the client's own timeouts and retries could outlast runs the call in a worker
    thread that is left behind at the deadline. Either way, the caller must make a
    late or repeated run harmless (the scripts are idempotent).

    For asyncio (:meth:`call_async`, :meth:`pop_async`): through ``async_client`` if
    given, else the sync calls in a worker thread; either way the event loop never
    waits on Redis. A ``redis.asyncio.Redis`` client's script calls are packed here and
    sent on a connection of its pool (through the client's command machinery a call
    costs about 40 us more); one that fails there for a connection error or a timeout is
    made again through the client, with its own retry policy, as a sync call is."""

    def __init__(
        self,
        client: Any,
        sources: Mapping[str, str],
        error: Callable[[str, BaseException], BaseException],
        async_client: Any = None,
    ) -> None:
        self._client = client
        self._async_client = async_client
        self._async_pool = async_pool_for(async_client)
        self._async = (
            {}
            if async_client is None
            else {name: async_client.register_script(src) for name, src in sources.items()}
        )
        self._scripts = {name: client.register_script(src) for name, src in sources.items()}
        self._sha = {name: script.sha for name, script in self._scripts.items()}
        self._load = {name: pack("SCRIPT", "LOAD", src) for name, src in sources.items()}
        self._error = error
        self.wire = wire_for(client)

    @property
    def async_pool(self) -> Any:
        """The asyncio client's pool the async calls are sent on, or None (through the
        client, or in a worker thread)."""
        return self._async_pool

    def close(self) -> None:
        """Close the connections of the feature's own (:meth:`Wire.close`)."""
        if self.wire is not None:
            self.wire.close()

    def _late(self, what: str) -> BaseException:
        return self._error(what, TimeoutError("Redis did not answer within the timeout"))

    def _packed(self, name: str, keys: list[str], args: list[Any]) -> bytes:
        return pack("EVALSHA", self._sha[name], len(keys), *keys, *args)

    def _run(self, name: str, keys: list[str], args: list[Any], what: str) -> Any:
        # a server that lost its script cache gets the script again through
        # Script, which loads it
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
        if self.wire is not None:
            try:
                return self.wire.call(
                    self._packed(name, keys, args), deadline, noscript=self._load[name]
                )
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                if deadline is not None and time.monotonic() >= deadline:
                    raise self._late(what) from None
            except redis.RedisError as e:
                raise self._error(what, e) from e
        try:  # _run raises Redis's errors as ``error``: a redis.TimeoutError is the deadline's
            return call_by(self._client, deadline, lambda: self._run(name, keys, args, what))
        except redis.TimeoutError:
            raise self._late(what) from None

    async def call_async(
        self,
        name: str,
        keys: list[str],
        args: list[Any],
        what: str,
        deadline: float | None = None,
    ) -> Any:
        """:meth:`__call__` for asyncio. Through the asyncio client a call is cancelled at
        ``deadline`` (redis-py then closes its connection, so a late reply reaches nobody)."""
        if self._async_client is None:
            return await asyncio.to_thread(self, name, keys, args, what, deadline)
        try:
            if self._async_pool is not None:
                call = pooled_call(
                    self._async_pool, self._packed(name, keys, args), self._load[name]
                )
                try:
                    return await by(deadline, call)
                except asyncio.TimeoutError:  # the deadline (an OSError since Python 3.11)
                    raise
                except (redis.ConnectionError, redis.TimeoutError, OSError):
                    pass  # once more through the client, with its retry policy
            return await by(deadline, self._async[name](keys=keys, args=args))
        except asyncio.TimeoutError:
            raise self._late(what) from None
        except redis.RedisError as e:
            raise self._error(what, e) from e

    async def pop_async(self, key: str, wait: float, slack: float) -> Any:
        """:meth:`pop` for asyncio: on a connection of the asyncio client's pool if
        :meth:`call_async` sends there, else through the client or in a worker thread."""
        if self._async_client is None:
            return await asyncio.to_thread(self.pop, key, wait, slack)
        if self._async_pool is None:
            return await blocking_pop_async(self._async_client, key, wait, slack)
        return await pooled_pop(self._async_pool, key, wait, slack)

    async def call_then_pop_async(
        self,
        name: str,
        keys: list[str],
        args: list[Any],
        what: str,
        key: str,
        wait: float,
        slack: float,
        queued: Callable[[Any], bool],
        deadline: float | None = None,
    ) -> tuple[Any, Any]:
        """:meth:`call_then_pop` for asyncio, on a connection of the asyncio client's
        pool; without one, when the server must be sent the script again, or after a
        connection error there, the script alone (:meth:`call_async`): (reply, None)."""
        if self._async_pool is not None:
            packed = self._packed(name, keys, args)
            pop = (key, wait, slack, queued)
            try:
                return await pooled_call_then_pop(self._async_pool, packed, deadline, *pop)
            except asyncio.TimeoutError:  # the deadline (an OSError since Python 3.11)
                raise self._late(what) from None
            except (redis.exceptions.NoScriptError, redis.ConnectionError, OSError):
                pass  # the script alone (loaded again; or a reconnection, with retries)
            except redis.RedisError as e:
                raise self._error(what, e) from e
        return await self.call_async(name, keys, args, what, deadline), None

    def pop(self, key: str, wait: float, slack: float) -> Any:
        """``BLPOP key wait`` (see :meth:`Wire.pop`)."""
        if self.wire is not None:
            return self.wire.pop(key, wait, slack)
        return blocking_pop(self._client, key, wait, slack)

    def call_then_pop(
        self,
        name: str,
        keys: list[str],
        args: list[Any],
        what: str,
        key: str,
        wait: float,
        slack: float,
        queued: Callable[[Any], bool],
        deadline: float | None = None,
    ) -> tuple[Any, Any]:
        """A script and a pop sent together (:meth:`Wire.call_then_pop`): (reply,
        popped). Without a wire (a cluster client), when the server must be sent the
        script again, or after a connection error, the script alone: (reply, None)."""
        if self.wire is not None:
            try:
                return self.wire.call_then_pop(
                    self._packed(name, keys, args), deadline, key, wait, slack, queued
                )
            except (redis.exceptions.NoScriptError, redis.ConnectionError, OSError):
                pass  # the script alone (loaded again; or a reconnection, with retries)
            except redis.RedisError as e:
                raise self._error(what, e) from e
        return self(name, keys, args, what, deadline), None


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
    client: Any,
    check: bool,
    user: str,
    error: Callable[[str], BaseException],
    deadline: float | None = None,
) -> None:
    """Raise ``error(message)`` unless the server's ``maxmemory-policy`` is
    ``noeviction`` (every node of a cluster): state that must not vanish (locks,
    fencing counters, epochs) would otherwise be evicted under memory pressure.
    ``check=False`` skips the check with a warning, for managed services that
    hide ``CONFIG``. Asked by ``deadline`` if given (:func:`call_by`)."""
    if not check:
        logging.getLogger("ringhash.locks").warning(
            "%s(check_eviction=False): the server's maxmemory-policy is not checked; any "
            "policy but noeviction can evict keys and break exclusion",
            user,
        )
        return
    try:
        reply = call_by(client, deadline, lambda: client.config_get("maxmemory-policy"))
    except redis.TimeoutError as e:
        raise error(f"could not read maxmemory-policy: Redis did not answer in time ({e})") from e
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
