"""ringhash: fast consistent hashing and a lock table with leases and fencing tokens."""

try:
    from . import _core  # noqa: F401
except ImportError as _error:  # pragma: no cover - exercised by a subprocess test
    from ._check_build import raise_build_error

    raise_build_error(_error)

from ._version import __version__
from .errors import EmptyRingError
from .hashing import crc32, murmur3_32
from .locks import (
    DeadlockError,
    Lease,
    LeaseGroup,
    LeaseLost,
    LockBackendError,
    LockError,
    LockStats,
    LockTable,
    LockTimeout,
)
from .planning import Balance, MovedRange, RingChange
from .ring import MAX_POINTS, HashRing, RingSnapshot

__all__ = [
    "MAX_POINTS",
    "Balance",
    "DeadlockError",
    "EmptyRingError",
    "HashRing",
    "Lease",
    "LeaseGroup",
    "LeaseLost",
    "LockBackendError",
    "LockError",
    "LockStats",
    "LockTable",
    "LockTimeout",
    "MovedRange",
    "RingChange",
    "RingSnapshot",
    "__version__",
    "crc32",
    "murmur3_32",
]
