"""What the Redis-backed features (the lock table, the fleet) share: importing
redis-py with a clear message, checking a client, keys that stay in one Redis
Cluster slot, and calling Lua scripts with Redis errors turned into the
feature's own exception."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

try:
    import redis
    import redis.asyncio
except ImportError as _e:  # pragma: no cover - exercised only without the extra
    raise ImportError("the Redis features need redis-py: pip install 'ringhash[redis]'") from _e

__all__ = [
    "Scripts",
    "Wire",
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


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=32, thread_name_prefix="ringhash-redis"
    )


#: Worker threads for calls that must end by a deadline (see ``Scripts``); a forked
#: child gets its own (the parent's threads do not exist there).
_CALLS = _executor()


def _after_fork_in_child() -> None:
    global _CALLS
    _CALLS = _executor()


os.register_at_fork(after_in_child=_after_fork_in_child)


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
    done = _CALLS.submit(call)
    try:
        return done.result(timeout=max(0.0, deadline - time.monotonic()))
    except concurrent.futures.TimeoutError:
        raise redis.TimeoutError("Redis did not answer in time") from None


def pack(*args: str | bytes | int | float) -> bytes:
    """One command in the Redis protocol (RESP): what redis-py's ``pack_command``
    makes, for the argument types these features send, at a third of its cost."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            b = a.encode()
        elif isinstance(a, bytes):
            b = a
        elif isinstance(a, int):
            b = b"%d" % a
        elif isinstance(a, float):
            b = repr(a).encode()
        else:
            raise TypeError(f"cannot send a {type(a).__name__} to Redis")
        out.append(b"$%d\r\n%b\r\n" % (len(b), b))
    return b"".join(out)


class Wire:
    """Connections of a feature's own on a ``redis.Redis`` client, made by the client's
    pool (its settings: address, TLS, credentials, database, protocol; and its cap on
    connections), reused last-in first-out and kept for the feature's lifetime.

    A call through redis-py's client checks a connection out of the pool and back
    (a health poll, locks, metrics) and packs its arguments generically: about half
    the client CPU of a lock's round trip. Here a call is one ``list.pop``, one send
    of bytes packed by :func:`pack` and one parsed reply, and it ends by a deadline
    (monotonic seconds) without a worker thread: the reply is waited for with a
    timeout. Only a call that has to connect first runs in a worker thread, left
    behind at the deadline (redis-py's handshake has no timeout but the socket's).
    A connection that fails is disconnected (it reconnects on its next use); after
    a fork the child starts with none (the parent's sockets stay the parent's).
    Thread-safe: a connection is used by one call at a time.
    """

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._free: list[Any] = []
        self._pid = os.getpid()

    def _take(self) -> Any:
        if self._pid != os.getpid():
            self._free, self._pid = [], os.getpid()
        try:
            return self._free.pop()
        except IndexError:
            return self._pool.make_connection()

    def _first_reply(self, conn: Any, packed: list[bytes], deadline: float | None) -> Any:
        """Send ``packed`` and read the first reply (a Redis error reply is raised);
        ``redis.TimeoutError`` if it has not come by ``deadline``."""
        conn.send_packed_command(packed, check_health=False)
        if deadline is not None and not _readable(conn, deadline):
            raise redis.TimeoutError("Redis did not answer in time")
        return conn.read_response()

    def call(
        self,
        packed: bytes,
        deadline: float | None = None,
        replies: int = 1,
        noscript: bytes | None = None,
    ) -> Any:
        """The last reply of ``replies`` packed commands (a Redis error reply is
        raised). An answer NOSCRIPT to a lone EVALSHA is answered by sending
        ``noscript`` (its SCRIPT LOAD) and the EVALSHA again. A connection that has to
        connect first under a deadline makes the whole call in a worker thread, left
        behind (to finish by itself, a late run being harmless) at the deadline."""
        conn = self._take()
        if deadline is not None and not _connected(conn):
            done = _CALLS.submit(self._call_on, conn, packed, None, replies, noscript)
            try:
                return done.result(timeout=max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                raise redis.TimeoutError("Redis did not answer in time") from None
        return self._call_on(conn, packed, deadline, replies, noscript)

    def _call_on(
        self,
        conn: Any,
        packed: bytes,
        deadline: float | None,
        replies: int,
        noscript: bytes | None,
    ) -> Any:
        try:
            try:
                reply = self._first_reply(conn, [packed], deadline)
            except redis.exceptions.NoScriptError:
                if noscript is None or replies > 1:
                    raise
                packed, replies = noscript + packed, 2
                reply = self._first_reply(conn, [packed], deadline)
            for _ in range(replies - 1):
                reply = conn.read_response()
        except redis.ResponseError:
            if replies > 1:  # replies may be left unread
                conn.disconnect()
            self._free.append(conn)
            raise
        except BaseException:
            conn.disconnect()  # a reply may still be on its way: never read it
            self._free.append(conn)
            raise
        self._free.append(conn)
        return reply

    def close(self) -> None:
        """Close the connections not in use (a call in progress keeps its own, and
        returns it open); the wire stays usable: its next call connects again."""
        free, self._free = self._free, []
        if self._pid == os.getpid():  # after a fork they are the parent's
            for conn in free:
                conn.disconnect()

    def pop(self, key: str, wait: float, slack: float) -> Any:
        """``BLPOP key wait``: the element popped, or None (also for any Redis error:
        what was pushed must be recoverable another way); by ``wait + slack`` at most."""
        if wait < 0.001:
            return None
        try:
            reply = self.call(_blpop(key, wait), time.monotonic() + wait + slack)
        except (redis.RedisError, OSError):
            return None
        return None if reply is None else reply[1]

    def call_then_pop(
        self,
        packed: bytes,
        deadline: float | None,
        key: str,
        wait: float,
        slack: float,
        queued: Callable[[Any], bool],
    ) -> tuple[Any, Any]:
        """A command and ``BLPOP key wait`` sent together (one write, one wake-up): (the
        command's reply, by ``deadline``; the element popped or None). The pop waits
        only if ``queued(reply)`` says something will be pushed for it; otherwise it
        is ended at once with a '0' pushed from another connection. A Redis error
        reply to the command is raised, after the pop has ended."""
        conn = self._take()
        if deadline is not None and not _connected(conn):
            self._free.append(conn)  # (re)connecting: the call alone, bounded as above
            return self.call(packed, deadline), None
        try:
            try:
                reply = self._first_reply(conn, [packed, _blpop(key, wait)], deadline)
            except redis.ResponseError as e:
                reply = e
            popped = None
            if isinstance(reply, redis.ResponseError) or not queued(reply):
                # nothing will be pushed: end the pop (an expiry in case it ended first)
                end = time.monotonic() + slack
                self.call(pack("RPUSH", key, "0") + pack("PEXPIRE", key, 60000), end, 2)
                if not _readable(conn, end):
                    raise redis.TimeoutError("Redis did not end a pop in time")
                conn.read_response()
            elif _readable(conn, time.monotonic() + wait + slack):
                got = conn.read_response()
                popped = None if got is None else got[1]
            else:
                raise redis.TimeoutError("Redis did not end a pop in time")
        except BaseException:
            conn.disconnect()
            self._free.append(conn)
            raise
        self._free.append(conn)
        if isinstance(reply, redis.ResponseError):
            raise reply
        return reply, popped


def _connected(conn: Any) -> bool:
    return getattr(conn, "_sock", None) is not None  # redis-py 5 has no is_connected


def _readable(conn: Any, deadline: float) -> bool:
    return bool(conn.can_read(timeout=max(0.0, deadline - time.monotonic())))


def _blpop(key: str, wait: float) -> bytes:
    return pack("BLPOP", key, f"{wait:.3f}")


class Scripts:
    """Lua scripts registered once on a client; calling one raises ``error(what, e)``
    for any Redis error, with the cause attached. With a ``deadline`` (monotonic
    seconds) a call returns or raises by then whatever the server does.

    On a ``redis.Redis`` client calls go through a :class:`Wire` (EVALSHA packed
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
        self._async_pool = _async_pool_for(async_client)
        self._async = (
            {}
            if async_client is None
            else {name: async_client.register_script(src) for name, src in sources.items()}
        )
        self._scripts = {name: client.register_script(src) for name, src in sources.items()}
        self._sha = {name: script.sha for name, script in self._scripts.items()}
        self._load = {name: pack("SCRIPT", "LOAD", src) for name, src in sources.items()}
        self._error = error
        self.wire = _wire_for(client)

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
                try:
                    return await _by(deadline, self._pooled_call(name, keys, args))
                except asyncio.TimeoutError:  # the deadline (an OSError since Python 3.11)
                    raise
                except (redis.ConnectionError, redis.TimeoutError, OSError):
                    pass  # once more through the client, with its retry policy
            return await _by(deadline, self._async[name](keys=keys, args=args))
        except asyncio.TimeoutError:
            raise self._late(what) from None
        except redis.RedisError as e:
            raise self._error(what, e) from e

    async def _pooled_call(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """A script call on a connection of the asyncio client's pool (any error, a
        cancellation included, disconnects it in redis-py before it goes back)."""
        pool = self._async_pool
        try:
            conn = await pool.get_connection()
        except TypeError:  # redis-py before 5.3 wants a command name
            conn = await pool.get_connection("EVALSHA")
        try:
            packed = self._packed(name, keys, args)
            await conn.send_packed_command(packed, check_health=False)
            try:
                return await conn.read_response()
            except redis.exceptions.NoScriptError:  # the server lost it: load it again
                await conn.send_packed_command(self._load[name] + packed, check_health=False)
                try:
                    await conn.read_response()
                except redis.ResponseError:
                    await conn.disconnect()  # the EVALSHA's reply is left unread
                    raise
                return await conn.read_response()
        finally:
            await pool.release(conn)

    async def pop_async(self, key: str, wait: float, slack: float) -> Any:
        """:meth:`pop` for asyncio."""
        if self._async_client is None:
            return await asyncio.to_thread(self.pop, key, wait, slack)
        return await blocking_pop_async(self._async_client, key, wait, slack)

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


def _wire_for(client: Any) -> Wire | None:
    """A :class:`Wire` on ``client``'s pool; None for a cluster client (it routes each
    call by key) or a pool that cannot make one (no ``make_connection``, or an
    encoding other than UTF-8, which :func:`pack` writes)."""
    if isinstance(client, redis.cluster.RedisCluster):
        return None
    pool = getattr(client, "connection_pool", None)
    return Wire(pool) if _packable(pool, "make_connection") else None


def _packable(pool: Any, method: str) -> bool:
    """Whether commands packed by :func:`pack` may be sent on ``pool``'s connections,
    got with ``method``: its encoding is UTF-8 and no client-side cache wraps them."""
    kwargs = getattr(pool, "connection_kwargs", {})
    return (
        hasattr(pool, method)
        and kwargs.get("encoding", "utf-8") == "utf-8"
        and getattr(pool, "cache", None) is None
    )


def _async_pool_for(client: Any) -> Any:
    """The pool :meth:`Scripts.call_async` sends on for ``client``; None (calls through
    the client) for no client, a cluster client (it routes by key), or a pool whose
    connections :func:`pack`'s bytes may not be sent on (:func:`_packable`)."""
    if client is None or isinstance(client, redis.asyncio.cluster.RedisCluster):
        return None
    pool = getattr(client, "connection_pool", None)
    return pool if _packable(pool, "get_connection") else None


def _by(deadline: float | None, call: Awaitable[T]) -> Awaitable[T]:
    """``call``, cancelled at ``deadline`` (``asyncio.TimeoutError``) if there is one."""
    if deadline is None:
        return call
    return asyncio.wait_for(call, max(0.0, deadline - time.monotonic()))


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
