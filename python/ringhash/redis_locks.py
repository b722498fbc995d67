"""``RedisLockTable``: the lock table on Redis (``pip install 'ringhash[redis]'``).

The implementation lives in :mod:`ringhash.locks._redis`, beside the in-process
backend and the contract both keep; this module is its public import path.
"""

from .locks._redis import RedisLockTable

__all__ = ["RedisLockTable"]
