"""ringhash: fast consistent hashing and a lock table with leases and fencing tokens."""

try:
    from . import _core  # noqa: F401
except ImportError as _error:  # pragma: no cover - exercised by a subprocess test
    from ._check_build import raise_build_error

    raise_build_error(_error)

from ._algorithm import AlgorithmChange
from ._version import __version__
from .errors import EmptyRingError
from .hashing import crc32, murmur3_32
from .jump import JumpHash
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
from .maglev import Maglev
from .multiprobe import MultiProbe
from .planning import Balance, MovedRange, RingChange
from .pymemcache import PymemcacheHash
from .rendezvous import Rendezvous
from .ring import MAX_POINTS, HashRing, Partition, RingSnapshot

__all__ = [
    "MAX_POINTS",
    "AlgorithmChange",
    "Balance",
    "DeadlockError",
    "EmptyRingError",
    "HashRing",
    "JumpHash",
    "Lease",
    "LeaseGroup",
    "LeaseLost",
    "LockBackendError",
    "LockError",
    "LockStats",
    "LockTable",
    "LockTimeout",
    "Maglev",
    "MovedRange",
    "MultiProbe",
    "Partition",
    "PymemcacheHash",
    "Rendezvous",
    "RingChange",
    "RingSnapshot",
    "__version__",
    "crc32",
    "murmur3_32",
]
