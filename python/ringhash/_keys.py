"""The key encoding rule and the dispatch of batches to the compiled kernels.

One rule everywhere (hashing, ring lookups, batches):

- ``str`` -> its UTF-8 bytes; ``bytes``, ``bytearray``, a C-contiguous
  ``memoryview`` -> the raw bytes.
- ``int`` (Python or numpy integer) -> 8 bytes little-endian: [0, 2**64) as
  unsigned, [-2**63, 0) as two's complement; anything else is OverflowError.
- ``bool``, ``float``, ``None`` and everything else -> TypeError.

A batch is a list or tuple of keys (mixed types allowed); a numpy array of
any shape with an integer (any width, by value), ``S`` (item bytes, trailing
NULs stripped as numpy does), ``U`` (UTF-8 of the item), ``StringDType``
(UTF-8 of the item) or object dtype; or a column: any object exporting the
Arrow PyCapsule interface (``__arrow_c_array__`` / ``__arrow_c_stream__``:
pyarrow, polars, pandas, nanoarrow, DuckDB...) of an integer, string, binary
or dictionary-of-those type, read in place in C. pandas objects backed by
numpy take the numpy path. Other dtypes and Arrow types raise TypeError:
nothing is cast silently. Null keys (Arrow nulls, StringDType's NA) raise
ValueError unless the method takes ``nulls=``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from . import _core

__all__ = [
    "ALGORITHMS",
    "KeyBatch",
    "check_algorithm",
    "check_hashes",
    "check_no_nulls",
    "check_nulls",
    "check_seed",
    "classify",
    "hash_batch",
    "is_batch",
    "key64_classified",
    "lookup_classified",
    "null_mask",
    "out_buffer",
]

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


def _is_column(keys: object) -> bool:
    return hasattr(keys, "__arrow_c_stream__") or hasattr(keys, "__arrow_c_array__")


_PANDAS_MASKED_INTS = {f"{s}Int{b}Dtype" for s in ("", "U") for b in (8, 16, 32, 64)}


def _is_pandas(keys: object) -> bool:
    module = type(keys).__module__
    return (module == "pandas" or module.startswith("pandas.")) and hasattr(keys, "dtype")


def _from_pandas(keys: Any) -> Any:
    """A pandas Series or Index as what the batch path reads without a copy where it
    can: its numpy array, or an Arrow column (pandas 3 exports Arrow-backed data as a
    capsule; pandas 2 through ``__arrow_array__``, which pandas implements)."""
    dtype = keys.dtype
    if isinstance(dtype, np.dtype):  # numpy-backed: no copy
        return np.asarray(keys)
    if type(dtype).__name__ in _PANDAS_MASKED_INTS and not keys.hasnans:
        return keys.to_numpy(dtype=dtype.numpy_dtype)  # its data, no copy
    if _is_column(keys):
        return keys
    if hasattr(keys, "to_series"):  # an Index: its Series exports what the Index does not
        series = keys.to_series()
        if _is_column(series):
            return series
    array = getattr(keys, "array", None)
    if hasattr(array, "__arrow_array__"):
        return array.__arrow_array__()  # type: ignore[union-attr]
    if hasattr(array, "categories") and hasattr(array, "codes"):
        # a pandas 2 Categorical: its values from the categories themselves (its
        # to_numpy can pass through a numpy "U" array, which drops trailing NULs)
        cats = array.categories.tolist()  # type: ignore[union-attr]
        return [cats[c] if c >= 0 else None for c in array.codes.tolist()]  # type: ignore[union-attr]
    return keys.to_numpy(dtype=object)


def is_batch(keys: object) -> bool:
    """Whether ``keys`` is a batch (list, tuple, ndarray or column) rather than one key."""
    return isinstance(keys, (list, tuple, np.ndarray)) or _is_column(keys) or _is_pandas(keys)


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


#: The kinds of batch the kernels take (KeyBatch.kind).
U64, SMALL_INT, FIXED, UCS4, OBJECTS, COLUMN = (
    "u64",
    "small_int",
    "fixed",
    "ucs4",
    "objects",
    "column",
)


class KeyBatch(NamedTuple):
    """A batch, classified once for every kernel that takes it.

    ``data`` is, by ``kind``: U64, the keys' 64-bit encodings (flat uint64);
    SMALL_INT, a flat native 8- to 32-bit int array (the kernel widens it);
    FIXED, the raw bytes of an ``S`` array (``width`` bytes per item); UCS4,
    the code points of a ``U`` array (``width`` per item); OBJECTS, a list or
    tuple of keys; COLUMN, a ``_core.Column`` (Arrow buffers or a StringDType
    array, read in place). ``shape`` is the batch's shape.
    """

    kind: str
    data: Any
    width: int
    shape: tuple[int, ...]


def classify(keys: object) -> KeyBatch:
    """The kind of a batch and its data for the kernels (TypeError for what is not a batch)."""
    if _is_pandas(keys):
        keys = _from_pandas(keys)
    if isinstance(keys, (list, tuple)):
        return KeyBatch(OBJECTS, keys, 0, (len(keys),))
    if _is_column(keys) and not isinstance(keys, np.ndarray):
        col = _core.Column.from_arrow(keys)
        return KeyBatch(COLUMN, col, 0, (len(col),))
    if not isinstance(keys, np.ndarray):
        kind = (
            "a single key"
            if isinstance(keys, (str, bytes, bytearray, memoryview, int))
            else (f"a {type(keys).__name__}")
        )
        raise TypeError(
            f"expected a batch of keys (list, tuple, numpy array or Arrow column), got {kind}; "
            "use get() or pass [key] for one key"
        )
    kind = keys.dtype.kind
    if kind in "iu":
        if keys.dtype.itemsize < 8:  # widened in blocks by the kernel, not copied here
            return KeyBatch(SMALL_INT, _native(keys).reshape(-1), 0, keys.shape)
        return KeyBatch(U64, int_bits(keys), 0, keys.shape)
    if kind in "SU" and keys.dtype.itemsize == 0:  # 'S0' / 'U0': every item is empty
        return KeyBatch(OBJECTS, [b""] * keys.size, 0, keys.shape)
    if kind == "S":
        flat = _native(keys).reshape(-1)
        return KeyBatch(FIXED, flat.view(np.uint8), flat.dtype.itemsize, keys.shape)
    if kind == "U":
        flat = _native(keys).reshape(-1)
        return KeyBatch(UCS4, flat.view(np.uint32), flat.dtype.itemsize // 4, keys.shape)
    if kind == "O":
        return KeyBatch(OBJECTS, keys.reshape(-1).tolist(), 0, keys.shape)
    if kind == "T":  # numpy StringDType
        return KeyBatch(COLUMN, _core.Column.from_strings(keys.reshape(-1)), 0, keys.shape)
    raise TypeError(
        f"unsupported key dtype {keys.dtype}: expected an integer, bytes ('S'), "
        "str ('U', StringDType) or object array (no implicit casts: convert explicitly)"
    )


def check_no_nulls(batch: KeyBatch) -> None:
    """ValueError naming the first null key of a column (other batches have none)."""
    if batch.kind == COLUMN:
        at = batch.data.first_null()
        if at >= 0:
            raise ValueError(
                f"keys[{at}] is null: filter the nulls out first"
                " (lookup, get_many and lookup_nodes take nulls=)"
            )


def hash_classified(batch: KeyBatch, algo: int, seed: int, *, nulls_ok: bool = False) -> np.ndarray:
    """The hashes of a classified batch, flat (uint32). A column's null keys are a
    ValueError, or with ``nulls_ok`` (the caller masks them) hash as empty."""
    kind, data, width = batch.kind, batch.data, batch.width
    if kind == U64:
        return _core.hash_u64(data, algo, seed)
    if kind == SMALL_INT:
        return _core.hash_u64(int_bits(data), algo, seed)
    if kind == FIXED:
        return _core.hash_fixed_bytes(data, width, algo, seed)
    if kind == UCS4:
        return _core.hash_ucs4(data, width, algo, seed)
    if kind == COLUMN:
        if not nulls_ok:
            check_no_nulls(batch)
        return _core.hash_column(data, algo, seed)
    return _core.hash_objects(data, algo, seed)


def key64_classified(batch: KeyBatch) -> np.ndarray:
    """Jump hash's 64-bit keys of a classified batch, flat (uint64): an int key as
    itself, any other by its bytes through MurmurHash3 x64_128 (low half, seed 0).
    A column's null keys get 0 (callers check nulls first)."""
    kind, data, width = batch.kind, batch.data, batch.width
    if kind == U64:
        return data  # type: ignore[no-any-return]
    if kind == SMALL_INT:
        return int_bits(data)
    if kind == FIXED:
        return _core.key64_fixed(data, width)
    if kind == UCS4:
        return _core.key64_ucs4(data, width)
    if kind == COLUMN:
        return _core.key64_column(data)
    return _core.key64_objects(data)


def null_mask(batch: KeyBatch, nulls: int | None) -> np.ndarray | None:
    """Where a batch's keys are null (flat bool), or None if there can be none.
    ``nulls`` None means nulls are refused: ValueError naming the first."""
    if batch.kind != COLUMN:
        return None
    if nulls is None:
        check_no_nulls(batch)
        return None
    mask: np.ndarray = batch.data.null_mask()
    return mask if mask.any() else None


def hash_batch(keys: object, algo: int, seed: int) -> np.ndarray:
    """Hash a batch of keys: a uint32 array with the batch's shape."""
    batch = classify(keys)
    return hash_classified(batch, algo, seed).reshape(batch.shape)


# ---------------------------------------------------------------- batch lookups


def check_hashes(hashes: object) -> np.ndarray:
    """Pre-hashed keys as a native uint32 array; no implicit casts."""
    if isinstance(hashes, np.ndarray):
        if hashes.dtype != np.uint32:
            raise TypeError(
                f"hashes must be a uint32 array, got dtype {hashes.dtype} (hash_keys() returns one)"
            )
        return np.ascontiguousarray(hashes, dtype=np.dtype(np.uint32).newbyteorder("="))
    if not isinstance(hashes, (list, tuple)):
        raise TypeError(
            f"hashes must be a uint32 array or a list of ints, not {type(hashes).__name__}"
        )
    for h in hashes:
        if isinstance(h, bool) or not isinstance(h, (int, np.integer)):
            raise TypeError(f"hashes must be ints, not {type(h).__name__}")
        if not 0 <= h < 2**32:
            raise ValueError(f"hashes must lie in [0, 2**32), got {h}")
    return np.array(hashes, dtype=np.uint32)


def out_buffer(out: object, shape: tuple[int, ...], keys: object) -> np.ndarray | None:
    """Check a batch lookup's ``out`` and return it flat (a view), or None."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, not {type(out).__name__}")
    if out.dtype != np.int32:
        raise TypeError(f"out must have dtype int32, not {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"out has shape {out.shape}; the keys give {tuple(shape)}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    if isinstance(keys, np.ndarray) and np.may_share_memory(out, keys):
        raise ValueError("out overlaps the keys")
    return out.reshape(-1)


def check_nulls(nulls: object) -> int | None:
    """The owner value written for null keys (an int32), or None to refuse nulls."""
    if nulls is None:
        return None
    if isinstance(nulls, bool) or not isinstance(nulls, (int, np.integer)):
        raise TypeError(f"nulls must be an int (the owner value for null keys), not {nulls!r}")
    if not -(2**31) <= nulls < 2**31:
        raise ValueError(f"nulls must fit in int32, got {nulls}")
    return int(nulls)


def lookup_classified(
    table: _core.RingTable, batch: KeyBatch, flat_out: np.ndarray | None, nulls: int | None
) -> np.ndarray:
    """Owners of a classified batch in a built ring (a ``_core.RingTable``), flat.

    ``flat_out`` is a checked output buffer or None; ``nulls`` the owner value
    for a column's null keys, or None to refuse them (ValueError, nothing written).
    """
    kind, data = batch.kind, batch.data
    if kind == COLUMN:
        if nulls is None:
            check_no_nulls(batch)
        return _core.lookup_column(table, data, flat_out, nulls)
    if kind == U64:
        return table.lookup_u64(data, flat_out)
    if kind == SMALL_INT:
        return table.lookup_small_ints(data, flat_out)
    if kind == FIXED:
        return table.lookup_fixed_bytes(data, batch.width, flat_out)
    if kind == OBJECTS:
        return table.lookup_objects(data, flat_out)
    return table.search(hash_classified(batch, table.algo, table.seed), flat_out)
