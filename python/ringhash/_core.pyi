# Stub for the compiled extension built from ext/_core.pyx; keep the two in step
# (mypy.stubtest checks them against each other).
from typing import Any

import numpy as np
import numpy.typing as npt
from typing_extensions import disjoint_base

SIMD: str
MAX_INDEXED_POINTS: int
PAD: int
MURMUR3: int
CRC32: int
MD5: int

def hash_key(key: object, algo: int, seed: int) -> int: ...
def hash_objects(seq: object, algo: int, seed: int) -> npt.NDArray[np.uint32]: ...
def hash_u64(keys: npt.NDArray[np.uint64], algo: int, seed: int) -> npt.NDArray[np.uint32]: ...
def hash_fixed_bytes(raw: npt.NDArray[np.uint8], itemsize: int, algo: int, seed: int) -> npt.NDArray[np.uint32]: ...
def hash_ucs4(raw: npt.NDArray[np.uint32], nchars: int, algo: int, seed: int) -> npt.NDArray[np.uint32]: ...
def node_points(name: bytes, count: int, algo: int, seed: int) -> npt.NDArray[np.uint32]: ...
def index_bits(npoints: int) -> int: ...
def merge_node(
    pts: npt.NDArray[np.uint32], own: npt.NDArray[np.int32], new_pts: npt.NDArray[np.uint32], rank: int
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int32]]: ...
def patch_index(
    old: npt.NDArray[np.uint32],
    shift: int,
    delta: npt.NDArray[np.uint32],
    sign: int,
    pts: npt.NDArray[np.uint32],
) -> npt.NDArray[np.uint32]: ...
def drop_node(
    pts: npt.NDArray[np.uint32], own: npt.NDArray[np.int32], gone: npt.NDArray[np.uint32], rank: int
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int32]]: ...

def pad_ring(
    points: npt.NDArray[np.uint32], owners: npt.NDArray[np.int32]
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int32]]: ...
def build_ring(
    names: list[bytes], counts: npt.NDArray[np.int64], algo: int, seed: int
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int32]]: ...

def ketama_points(addr: bytes, digests: int) -> npt.NDArray[np.uint32]: ...
def md5(data: bytes) -> bytes: ...

@disjoint_base
class RingTable:
    points: npt.NDArray[np.uint32]
    owners: npt.NDArray[np.int32]
    index: npt.NDArray[np.uint32]
    nodes: tuple[str, ...]
    algo: int
    seed: int
    strict: bool
    shift: int
    def __new__(
        cls,
        padded_points: npt.NDArray[np.uint32],
        padded_owners: npt.NDArray[np.int32],
        nodes: tuple[str, ...],
        algo: int,
        seed: int,
        strict: bool = False,
        index: npt.NDArray[np.uint32] | None = None,
    ) -> RingTable: ...
    @property
    def padded(self) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int32]]: ...
    @property
    def nbytes(self) -> int: ...
    def get(self, key: object) -> str: ...
    def lookup_objects(
        self, seq: object, out: npt.NDArray[np.int32] | None = None
    ) -> npt.NDArray[np.int32]: ...
    def lookup_fixed_bytes(
        self, raw: npt.NDArray[np.uint8], itemsize: int, out: npt.NDArray[np.int32] | None = None
    ) -> npt.NDArray[np.int32]: ...
    def search(
        self, hashes: npt.NDArray[np.uint32], out: npt.NDArray[np.int32] | None = None
    ) -> npt.NDArray[np.int32]: ...
    def lookup_u64(
        self, keys: npt.NDArray[np.uint64], out: npt.NDArray[np.int32] | None = None
    ) -> npt.NDArray[np.int32]: ...
    def lookup_small_ints(
        self, keys: npt.NDArray[np.integer[Any]], out: npt.NDArray[np.int32] | None = None
    ) -> npt.NDArray[np.int32]: ...
    def assign_bounded(
        self, hashes: npt.NDArray[np.uint32], caps: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int32]: ...
    def replicas(self, hashes: npt.NDArray[np.uint32], want: int) -> npt.NDArray[np.int32]: ...
