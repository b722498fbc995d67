"""MurmurHash3 and CRC-32 over keys encoded by the ringhash key rule."""

from __future__ import annotations

from typing import overload

import numpy as np

from . import _core
from ._keys import check_seed, hash_batch, is_batch

__all__ = ["crc32", "murmur3_32"]


# A batch gives an array, anything else one int (the batch types are objects too).
@overload
def murmur3_32(  # type: ignore[overload-overlap]
    keys: list[object] | tuple[object, ...] | np.ndarray, seed: int = 0
) -> np.ndarray: ...
@overload
def murmur3_32(keys: object, seed: int = 0) -> int: ...
def murmur3_32(keys: object, seed: int = 0) -> int | np.ndarray:
    """MurmurHash3 x86_32 of a key or a batch of keys.

    Equal to ``mmh3.hash(b, seed, signed=False)`` of each key's encoded bytes.

    Examples
    --------
    >>> murmur3_32("hello")
    613153351
    >>> murmur3_32(["hello", b"hello"]).tolist()
    [613153351, 613153351]
    """
    s = check_seed(seed)
    if is_batch(keys):
        return hash_batch(keys, _core.MURMUR3, s)
    return _core.hash_key(keys, _core.MURMUR3, s)


@overload
def crc32(keys: list[object] | tuple[object, ...] | np.ndarray) -> np.ndarray: ...  # type: ignore[overload-overlap]
@overload
def crc32(keys: object) -> int: ...
def crc32(keys: object) -> int | np.ndarray:
    """CRC-32/IEEE of a key or a batch of keys; equal to ``zlib.crc32`` of the bytes.

    Examples
    --------
    >>> crc32("hello")
    907060870
    """
    if is_batch(keys):
        return hash_batch(keys, _core.CRC32, 0)
    return _core.hash_key(keys, _core.CRC32, 0)
