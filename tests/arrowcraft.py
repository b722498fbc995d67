"""A hand-made Arrow C Data Interface producer, for the cases no library makes:
arrays whose producer lies (bad offsets, views out of their buffers, wrong
buffer counts, released arrays) and offsets past 2**31 without 2 GiB of data.

``Crafted(...)`` exports ``__arrow_c_array__`` like pyarrow does: every call
builds fresh structs whose release callback marks them released. Everything
they point to is kept alive by the object.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import numpy as np


class ArrowSchema(ctypes.Structure):
    pass


class ArrowArray(ctypes.Structure):
    pass


SchemaRelease = ctypes.CFUNCTYPE(None, ctypes.POINTER(ArrowSchema))
ArrayRelease = ctypes.CFUNCTYPE(None, ctypes.POINTER(ArrowArray))

ArrowSchema._fields_ = [
    ("format", ctypes.c_char_p),
    ("name", ctypes.c_char_p),
    ("metadata", ctypes.c_char_p),
    ("flags", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("children", ctypes.POINTER(ctypes.POINTER(ArrowSchema))),
    ("dictionary", ctypes.POINTER(ArrowSchema)),
    ("release", SchemaRelease),
    ("private_data", ctypes.c_void_p),
]
ArrowArray._fields_ = [
    ("length", ctypes.c_int64),
    ("null_count", ctypes.c_int64),
    ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("buffers", ctypes.POINTER(ctypes.c_void_p)),
    ("children", ctypes.POINTER(ctypes.POINTER(ArrowArray))),
    ("dictionary", ctypes.POINTER(ArrowArray)),
    ("release", ArrayRelease),
    ("private_data", ctypes.c_void_p),
]

_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_SCHEMA_NAME = b"arrow_schema"
_ARRAY_NAME = b"arrow_array"


@SchemaRelease
def _release_schema(p):
    p.contents.release = SchemaRelease()


@ArrayRelease
def _release_array(p):
    p.contents.release = ArrayRelease()


def _address(buf: object, shift: int = 0) -> int | None:
    if buf is None:
        return None
    if isinstance(buf, int):
        return buf
    return np.asarray(buf).ctypes.data - shift


class Crafted:
    """One array: ``fmt`` (an Arrow format string), ``length``, ``buffers`` (numpy
    arrays, raw addresses or None). ``data_shift`` is subtracted from the last
    buffer's address; ``dictionary`` is another Crafted; ``released`` exports an
    already-released array."""

    def __init__(
        self,
        fmt: str,
        length: int,
        buffers: Sequence[object],
        *,
        offset: int = 0,
        null_count: int = 0,
        data_shift: int = 0,
        dictionary: Crafted | None = None,
        released: bool = False,
    ) -> None:
        self.fmt, self.length, self.buffers = fmt.encode(), length, list(buffers)
        self.offset, self.null_count, self.data_shift = offset, null_count, data_shift
        self.dictionary, self.released = dictionary, released
        self._keep: list[object] = []

    def _structs(self) -> tuple[ArrowSchema, ArrowArray]:
        schema = ArrowSchema(format=self.fmt, release=_release_schema)
        addrs = [
            _address(b, self.data_shift if i == len(self.buffers) - 1 else 0)
            for i, b in enumerate(self.buffers)
        ]
        bufs = (ctypes.c_void_p * max(1, len(addrs)))(*addrs)
        array = ArrowArray(
            length=self.length,
            null_count=self.null_count,
            offset=self.offset,
            n_buffers=len(addrs),
            buffers=ctypes.cast(bufs, ctypes.POINTER(ctypes.c_void_p)),
            release=ArrayRelease() if self.released else _release_array,
        )
        self._keep += [schema, array, bufs]
        if self.dictionary is not None:
            dschema, darray = self.dictionary._structs()
            schema.dictionary = ctypes.pointer(dschema)
            array.dictionary = ctypes.pointer(darray)
            self._keep += [self.dictionary]
        return schema, array

    def __arrow_c_array__(self, requested_schema: object = None) -> tuple[object, object]:
        schema, array = self._structs()
        return (
            _capsule_new(ctypes.addressof(schema), _SCHEMA_NAME, None),
            _capsule_new(ctypes.addressof(array), _ARRAY_NAME, None),
        )


def craft_array(fmt: str, length: int, buffers: Sequence[object], **kw: object) -> Crafted:
    return Crafted(fmt, length, buffers, **kw)  # type: ignore[arg-type]
