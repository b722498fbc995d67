"""One lock contended by worker processes, as an application uses it: acquire,
read a counter, write it back plus one, release; for a fixed time, in a loop.

Used by ``bench_locks.py`` for ringhash's ``RedisLockTable``, redis-py's ``Lock``
and python-redis-lock, each written the way its users would (blocking acquire
with the library's defaults otherwise), and for the floor of any FIFO lock on
Redis: a baton, one list element that the holder pushes back (``RPUSH``) and the
waiters wait for with ``BLPOP`` (Redis serves blocked clients first come, first
served): one command to acquire, one to release, no lease, no token, nothing
that survives a crashed holder. A FIFO lock hands every grant to another process,
which must wake up; the baton measures what that alone costs on the machine.

Every worker records when it got and
gave back the lock (``time.monotonic_ns``, one clock for all processes on Linux),
so the run yields throughput, per-worker fairness and hand-off latency: the time
from one worker's release to the next grant *to a different worker*. What the run
cost comes with it, per grant: the CPU time of the workers over their loops (user +
system, so the wake-ups' kernel time too) and of Redis (from ``INFO``), and the
commands Redis ran (those inside scripts included). With more workers than cores,
the CPU a grant takes (the lock's calls, the critical section's, the wake-ups) is
much of what it costs in wall time: these figures show where it goes.

Run directly for a quick look: ``python bench/lock_contention.py --port 6379``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
from dataclasses import dataclass

KINDS = ["ringhash RedisLockTable", "redis-py Lock", "python-redis-lock"]
BATON = "BLPOP baton (FIFO floor, no lease)"


def _lock_for(kind: str, port: int, tag: str):  # type: ignore[no-untyped-def]
    """(client, acquire() -> handle, release(handle)) for one process."""
    import redis

    client = redis.Redis(port=port)
    if kind == "ringhash RedisLockTable":
        from ringhash.redis_locks import RedisLockTable

        table = RedisLockTable(client, prefix=f"bench:{tag}:")
        return client, lambda: table.acquire("orders:42", ttl=30), lambda lease: lease.release()
    if kind == "redis-py Lock":
        lock = client.lock(f"bench:{tag}:redis-py", timeout=30)
        return client, lambda: lock.acquire(), lambda _: lock.release()
    if kind == BATON:
        baton = f"bench:{tag}:baton"  # holds one element while nobody holds the lock
        return client, lambda: client.blpop([baton]), lambda _: client.rpush(baton, 1)
    import redis_lock

    lock = redis_lock.Lock(client, f"bench:{tag}:prl", expire=30)
    return client, lambda: lock.acquire(), lambda _: lock.release()


def _worker(kind, port, tag, ready, start, end_at, out):  # type: ignore[no-untyped-def]
    client, acquire, release = _lock_for(kind, port, tag)
    client.ping()  # connected before the clock starts
    counter = f"bench:{tag}:counter"
    spans = []
    ready.wait()  # every worker has imported and connected: starting 16 takes >1 s here
    start.wait()
    end = end_at.value  # one end for all: nobody runs on alone
    cpu = os.times()
    while time.monotonic() < end:
        held = acquire()
        got = time.monotonic_ns()
        value = int(client.get(counter) or 0)  # the critical section: read, write
        client.set(counter, value + 1)
        gave = time.monotonic_ns()
        release(held)
        spans.append((got, gave))
    done = os.times()
    out.put((spans, done.user - cpu.user + done.system - cpu.system))


@dataclass
class Contention:
    kind: str
    procs: int
    seconds: float
    grants: int
    per_worker: list[int]
    handoff_ns: list[int]
    server_cpu_s: float = 0.0  # Redis's CPU time (user + system) over the run
    server_commands: int = 0  # commands Redis ran over the run, scripts' own included
    client_cpu_s: float = 0.0  # the workers' CPU time (user + system) over their loops

    @property
    def ns_per_grant(self) -> float:
        return self.seconds * 1e9 / max(self.grants, 1)

    @property
    def fairness(self) -> float:
        """Jain's index of the grants per worker: 1.0 is perfectly even, 1/n is one
        worker getting everything."""
        xs = self.per_worker
        return sum(xs) ** 2 / (len(xs) * sum(x * x for x in xs)) if any(xs) else 0.0

    def handoff(self, q: float) -> float:
        if not self.handoff_ns:
            return float("nan")
        return (
            statistics.quantiles(self.handoff_ns, n=100)[int(q * 100) - 1]
            if len(self.handoff_ns) > 1
            else float(self.handoff_ns[0])
        )

    def handoffs(self) -> str:
        p50, p99 = self.handoff(0.5) / 1e3, self.handoff(0.99) / 1e3
        return f"hand-off p50 {p50:,.0f} µs, p99 {p99:,.0f} µs"

    def cost(self) -> str:
        """CPU time per grant, the workers' and Redis's, and Redis's commands per grant."""
        g = max(self.grants, 1)
        return (
            f"CPU per grant: workers {self.client_cpu_s * 1e6 / g:,.0f} µs, "
            f"Redis {self.server_cpu_s * 1e6 / g:,.0f} µs; "
            f"{self.server_commands / g:.1f} commands per grant"
        )

    def summary(self) -> str:
        rate = self.grants / self.seconds
        return (
            f"{rate:,.0f} grants/s; fairness {self.fairness:.2f}; {self.handoffs()}; {self.cost()}"
        )


def _server_counters(client) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """Redis's CPU seconds so far and the commands it has run (INFO's own excluded)."""
    cpu = client.info("cpu")
    stats = client.info("commandstats")
    calls = sum(v["calls"] for k, v in stats.items() if not k.startswith("cmdstat_info"))
    return cpu["used_cpu_user"] + cpu["used_cpu_sys"], calls


def contend(kind: str, procs: int, seconds: float, port: int) -> Contention:
    """Run ``procs`` workers on one lock for ``seconds``; checks mutual exclusion (the
    counter equals the number of grants, and no two holds overlap)."""
    import redis

    ctx = mp.get_context("fork")
    tag = f"{kind.split()[0]}-{procs}-{time.monotonic_ns()}"
    start, out, end_at = ctx.Event(), ctx.Queue(), ctx.Value("d", 0.0)
    ready = ctx.Barrier(procs + 1)
    workers = [
        ctx.Process(target=_worker, args=(kind, port, tag, ready, start, end_at, out))
        for _ in range(procs)
    ]
    if kind == BATON:
        redis.Redis(port=port).rpush(f"bench:{tag}:baton", 1)
    for w in workers:
        w.start()
    ready.wait(timeout=120)  # every worker at the start line
    server = redis.Redis(port=port)
    cpu0, calls0 = _server_counters(server)
    end_at.value = time.monotonic() + seconds
    start.set()
    spans, cpus = zip(*(out.get(timeout=seconds + 60) for _ in workers), strict=True)
    cpu1, calls1 = _server_counters(server)
    for w in workers:
        w.join(30)
    counter = int(redis.Redis(port=port).get(f"bench:{tag}:counter") or 0)
    timeline = sorted((got, gave, who) for who, mine in enumerate(spans) for got, gave in mine)
    grants = len(timeline)
    if counter != grants:
        raise AssertionError(f"{kind}: {grants} grants but the counter reads {counter}")
    handoffs = []
    for (_, gave, who), (got, _, nxt) in zip(timeline, timeline[1:], strict=False):
        if got < gave:
            raise AssertionError(f"{kind}: two holders at once")
        if nxt != who:
            handoffs.append(got - gave)
    cost = (cpu1 - cpu0, calls1 - calls0, sum(cpus))
    return Contention(kind, procs, seconds, grants, [len(s) for s in spans], handoffs, *cost)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--procs", type=int, nargs="*", default=[1, 4, 16])
    args = parser.parse_args()
    for procs in args.procs:
        for kind in [*KINDS, BATON]:
            print(
                f"{procs:>3} {kind:<24} {contend(kind, procs, args.seconds, args.port).summary()}"
            )


if __name__ == "__main__":
    main()
