"""The wire of the Redis features: commands packed here (:func:`pack`), sent on
connections of a feature's own made by a sync client's pool (:class:`Wire`) or on
connections of an asyncio client's pool (``pooled_*``), and bounded by deadlines
(monotonic seconds). ``_redisio.Scripts`` calls scripts through them; this module
knows nothing of scripts' names or of the features' errors."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis
import redis.asyncio

__all__ = [
    "Wire",
    "async_pool_for",
    "by",
    "connection",
    "pack",
    "packable",
    "pooled_call",
    "pooled_call_then_pop",
    "pooled_pop",
    "submit",
    "wire_for",
]

T = TypeVar("T")


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


def submit(fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
    """``fn(*args)`` in a worker thread of this process."""
    return _CALLS.submit(fn, *args)


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
            done = submit(self._call_on, conn, packed, None, replies, noscript)
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
        is ended at once with a '0' pushed from another connection, by ``slack`` and
        ``deadline`` (:func:`_ending_by`), else with its connection: the reply stands
        either way. A Redis error reply to the command is raised, after the pop has
        ended."""
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
                self._end_pop(conn, key, _ending_by(deadline, slack))
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

    def _end_pop(self, conn: Any, key: str, end: float) -> None:
        """End ``conn``'s pending ``BLPOP key`` (nothing will be pushed for it): a '0'
        pushed from another connection (with an expiry, in case the pop ended first),
        by ``end``; else close ``conn``, and the pop ends with it."""
        try:
            self.call(_ender(key), end, 2)
            if _readable(conn, end):
                conn.read_response()
                return
        except (redis.RedisError, OSError):
            pass
        conn.disconnect()


def _ender(key: str) -> bytes:
    """What ends a pop of ``key``: a '0' pushed, with an expiry in case nobody pops it."""
    return pack("RPUSH", key, "0") + pack("PEXPIRE", key, 60000)


def _ending_by(deadline: float | None, slack: float) -> float:
    """When the ending of a pop must be done: ``slack`` from now, but not past the
    call's ``deadline`` (a call's reply may come just before it)."""
    now = time.monotonic()
    return now + slack if deadline is None else max(now, min(now + slack, deadline))


def _connected(conn: Any) -> bool:
    return getattr(conn, "_sock", None) is not None  # redis-py 5 has no is_connected


def _readable(conn: Any, deadline: float) -> bool:
    return bool(conn.can_read(timeout=max(0.0, deadline - time.monotonic())))


def _blpop(key: str, wait: float) -> bytes:
    return pack("BLPOP", key, f"{wait:.3f}")


def wire_for(client: Any) -> Wire | None:
    """A :class:`Wire` on ``client``'s pool; None for a cluster client (it routes each
    call by key) or a pool that cannot make one (no ``make_connection``, or an
    encoding other than UTF-8, which :func:`pack` writes)."""
    if isinstance(client, redis.cluster.RedisCluster):
        return None
    pool = getattr(client, "connection_pool", None)
    return Wire(pool) if packable(pool, "make_connection") else None


def packable(pool: Any, method: str) -> bool:
    """Whether commands packed by :func:`pack` may be sent on ``pool``'s connections,
    got with ``method``: its encoding is UTF-8 and no client-side cache wraps them."""
    kwargs = getattr(pool, "connection_kwargs", {})
    return (
        hasattr(pool, method)
        and kwargs.get("encoding", "utf-8") == "utf-8"
        and getattr(pool, "cache", None) is None
    )


def async_pool_for(client: Any) -> Any:
    """The pool :meth:`Scripts.call_async` sends on for ``client``; None (calls through
    the client) for no client, a cluster client (it routes by key), or a pool whose
    connections :func:`pack`'s bytes may not be sent on (:func:`packable`)."""
    if client is None or isinstance(client, redis.asyncio.cluster.RedisCluster):
        return None
    pool = getattr(client, "connection_pool", None)
    return pool if packable(pool, "get_connection") else None


async def connection(pool: Any) -> Any:
    """A connection of an asyncio client's ``pool``."""
    try:
        return await pool.get_connection()
    except TypeError:  # redis-py before 5.3 wants a command name
        return await pool.get_connection("EVALSHA")


def by(deadline: float | None, call: Awaitable[T]) -> Awaitable[T]:
    """``call``, cancelled at ``deadline`` (``asyncio.TimeoutError``) if there is one."""
    if deadline is None:
        return call
    return asyncio.wait_for(call, max(0.0, deadline - time.monotonic()))


async def pooled_call(pool: Any, packed: bytes, load: bytes) -> Any:
    """A script call (``packed``: its EVALSHA) on a connection of an asyncio client's
    ``pool``; NOSCRIPT is answered by sending ``load`` (its SCRIPT LOAD) and the EVALSHA
    again. Any error, a cancellation included, disconnects the connection in redis-py
    before it goes back."""
    conn = await connection(pool)
    try:
        await conn.send_packed_command(packed, check_health=False)
        try:
            return await conn.read_response()
        except redis.exceptions.NoScriptError:  # the server lost it: load it again
            await conn.send_packed_command(load + packed, check_health=False)
            try:
                await conn.read_response()
            except redis.ResponseError:
                await conn.disconnect()  # the EVALSHA's reply is left unread
                raise
            return await conn.read_response()
    finally:
        await pool.release(conn)


async def pooled_pop(pool: Any, key: str, wait: float, slack: float) -> Any:
    """:meth:`Wire.pop` on a connection of an asyncio client's ``pool``: the element
    popped, or None (also for any Redis error, and past ``wait + slack``, when redis-py
    closes the connection, so a late reply reaches nobody)."""
    if wait < 0.001:
        return None
    conn = await connection(pool)
    try:
        await conn.send_packed_command(_blpop(key, wait), check_health=False)
        got = await by(time.monotonic() + wait + slack, conn.read_response())
    except (asyncio.TimeoutError, redis.RedisError, OSError):
        return None
    finally:
        await pool.release(conn)
    return None if got is None else got[1]


async def pooled_call_then_pop(
    pool: Any,
    packed: bytes,
    deadline: float | None,
    key: str,
    wait: float,
    slack: float,
    queued: Callable[[Any], bool],
) -> tuple[Any, Any]:
    """:meth:`Wire.call_then_pop` on a connection of an asyncio client's ``pool``: a
    command and ``BLPOP key wait`` in one write; (the command's reply, by ``deadline``;
    the element popped or None), or ``asyncio.TimeoutError``. A Redis error reply to
    the command is raised after the pop has ended (as the sync one ends it). A
    connection left with a reply unread (an error, a timeout, a cancellation) is
    closed before it goes back."""
    conn = await connection(pool)
    try:
        await conn.send_packed_command(packed + _blpop(key, wait), check_health=False)
        try:
            reply = await by(deadline, conn.read_response())
        except redis.ResponseError as e:
            reply = e
        popped = None
        if isinstance(reply, redis.ResponseError) or not queued(reply):
            try:  # nothing will be pushed: end the pop (see Wire._end_pop)
                await by(_ending_by(deadline, slack), _end_pop(pool, conn, key))
            except (asyncio.TimeoutError, redis.RedisError, OSError):
                await conn.disconnect(nowait=True)  # the pop ends with its connection
        else:
            got = await by(time.monotonic() + wait + slack, conn.read_response())
            popped = None if got is None else got[1]
    except BaseException:
        await conn.disconnect(nowait=True)
        raise
    finally:
        await pool.release(conn)
    if isinstance(reply, redis.ResponseError):
        raise reply
    return reply, popped


async def _end_pop(pool: Any, conn: Any, key: str) -> None:
    other = await connection(pool)
    try:
        await other.send_packed_command(_ender(key), check_health=False)
        await other.read_response()
        await other.read_response()
    finally:
        await pool.release(other)
    await conn.read_response()
