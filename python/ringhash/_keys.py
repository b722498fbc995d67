"""The key encoding rule and the dispatch of batches to the compiled kernels.

One rule everywhere (hashing, ring lookups, batches):

- ``str`` -> its UTF-8 bytes; ``bytes``, ``bytearray``, a C-contiguous
  ``memoryview`` -> the raw bytes.
- ``int`` (Python or numpy integer) -> 8 bytes little-endian: [0, 2**64) as
  unsigned, [-2**63, 0) as two's complement; anything else is OverflowError.
- ``bool``, ``float``, ``None`` and everything else -> TypeError.

A batch is a list or tuple of keys (mixed types allowed) or a numpy array of
any shape with an integer (any width, by value), ``S`` (item bytes, trailing
NULs stripped as numpy does), ``U`` (UTF-8 of the item) or object dtype. Other
dtypes raise TypeError: nothing is cast silently.
"""

from __future__ import annotations

import numpy as np

from . import _core

__all__ = ["ALGORITHMS", "check_algorithm", "check_seed", "hash_batch", "is_batch"]

ALGORITHMS = {"murmur3": _core.MURMUR3, "crc32": _core.CRC32}


def check_algorithm(name: object) -> int:
    if not isinstance(name, str):
        raise TypeError(f"hash must be a str ('murmur3' or 'crc32'), not {type(name).__name__}")
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"unknown hash {name!r}: expected 'murmur3' or 'crc32'") from None


def check_seed(seed: object, algorithm: str = "murmur3") -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, not {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must lie in [0, 2**32), got {seed}")
    if algorithm == "crc32" and seed != 0:
        raise ValueError("crc32 takes no seed: pass seed=0 or use hash='murmur3'")
    return seed


def is_batch(keys: object) -> bool:
    """Whether ``keys`` is a batch (list, tuple or ndarray) rather than one key."""
    return isinstance(keys, (list, tuple, np.ndarray))


def _native(arr: np.ndarray) -> np.ndarray:
    """A C-contiguous copy (only if needed) in native byte order; values unchanged."""
    dtype = arr.dtype if arr.dtype.isnative else arr.dtype.newbyteorder("=")
    return np.ascontiguousarray(arr, dtype=dtype)


def int_bits(arr: np.ndarray) -> np.ndarray:
    """The key encoding of an integer array as flat uint64 bits.

    Signed values become their 64-bit two's complement and unsigned values
    are zero-extended, so the value, not the width, decides the bytes.
    """
    if arr.dtype.kind == "u":
        flat = np.ascontiguousarray(arr, dtype=np.uint64)
    else:
        flat = np.ascontiguousarray(arr, dtype=np.int64).view(np.uint64)
    return flat.reshape(-1)


def check_batch(keys: object) -> None:
    if isinstance(keys, np.ndarray):
        if keys.dtype.kind not in "iuSUO":
            raise TypeError(
                f"unsupported key dtype {keys.dtype}: expected an integer, bytes ('S'), "
                "str ('U') or object array (no implicit casts: convert explicitly)"
            )
    elif not isinstance(keys, (list, tuple)):
        kind = "a single key" if isinstance(keys, (str, bytes, bytearray, memoryview, int)) else (
            f"a {type(keys).__name__}"
        )
        raise TypeError(
            f"expected a batch of keys (list, tuple or numpy array), got {kind}; "
            "use get() or pass [key] for one key"
        )


def hash_batch(keys: object, algo: int, seed: int) -> np.ndarray:
    """Hash a batch of keys: a uint32 array with the batch's shape."""
    check_batch(keys)
    if not isinstance(keys, np.ndarray):
        return _core.hash_objects(keys, algo, seed)
    kind = keys.dtype.kind
    if kind in "iu":
        out = _core.hash_u64(int_bits(keys), algo, seed)
    elif keys.dtype.itemsize == 0:  # 'S0' / 'U0': every item is empty
        out = _core.hash_objects([b""] * keys.size, algo, seed)
    elif kind == "S":
        flat = _native(keys).reshape(-1)
        out = _core.hash_fixed_bytes(flat.view(np.uint8), flat.dtype.itemsize, algo, seed)
    elif kind == "U":
        flat = _native(keys).reshape(-1)
        out = _core.hash_ucs4(flat.view(np.uint32), flat.dtype.itemsize // 4, algo, seed)
    else:  # object
        out = _core.hash_objects(keys.reshape(-1).tolist(), algo, seed)
    return out.reshape(keys.shape)
