"""Named locks with leases, fencing tokens and shared/exclusive modes.

- :mod:`ringhash.locks._api`: the contract every backend keeps (errors,
  ``Lease``, ``LeaseGroup``, argument checks, the semantics; read its docstring).
- :mod:`ringhash.locks._memory`: ``LockTable``, in-process (threads and asyncio).
- :mod:`ringhash.locks._redis`: ``RedisLockTable``, across processes and machines
  (needs the ``redis`` extra; import it from :mod:`ringhash.redis_locks`).

Callers move between the backends by changing one line.

Examples
--------
>>> from ringhash.locks import LockTable
>>> table = LockTable()
>>> with table.lock("orders:42", ttl=30) as lease:
...     first = lease.token
>>> second = table.acquire("orders:42")
>>> second.token > first  # a fencing token never goes backwards
True
>>> table.try_acquire("orders:42") is None  # held: not granted, no wait
True
>>> second.release()
"""

from ._api import (
    EXCLUSIVE,
    SHARED,
    DeadlockError,
    KeepAlive,
    Lease,
    LeaseGroup,
    LeaseLost,
    LockBackendError,
    LockError,
    LockStats,
    LockTimeout,
    WaitingRequest,
    check_mode,
    check_name,
    check_on_lost,
    check_owner,
    check_timeout,
    check_ttl,
)
from ._memory import LockTable

__all__ = [
    "EXCLUSIVE",
    "SHARED",
    "DeadlockError",
    "KeepAlive",
    "Lease",
    "LeaseGroup",
    "LeaseLost",
    "LockBackendError",
    "LockError",
    "LockStats",
    "LockTable",
    "LockTimeout",
    "WaitingRequest",
    "check_mode",
    "check_name",
    "check_on_lost",
    "check_owner",
    "check_timeout",
    "check_ttl",
]
