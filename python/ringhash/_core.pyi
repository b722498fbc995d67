# Stub for the compiled extension built from ext/_core.pyx; keep the two in step
# (mypy.stubtest checks them against each other).
from typing import Any

import numpy as np
import numpy.typing as npt
from typing_extensions import disjoint_base

SIMD: str
MAX_INDEXED_POINTS: int
RULE_GE: int
RULE_GT: int
MURMUR3: int
CRC32: int
MD5: int

def hash_key(key: object, algo: int, seed: int) -> int: ...
def hash_objects(seq: object, algo: int, seed: int) -> npt.NDArray[np.uint32]: ...
def hash_u64(keys: npt.NDArray[np.uint64], algo: int, seed: int) -> npt.NDArray[np.uint32]: ...
def hash_fixed_bytes(
    raw: npt.NDArray[np.uint8], itemsize: int, algo: int, seed: int
) -> npt.NDArray[np.uint32]: ...
def hash_ucs4(
    raw: npt.NDArray[np.uint32], nchars: int, algo: int, seed: int
) -> npt.NDArray[np.uint32]: ...
def node_points(name: bytes, count: int, algo: int, seed: int) -> npt.NDArray[np.uint32]: ...
def index_bits(npoints: int) -> int: ...
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
    rule: int
    def __init__(
        self,
        points: npt.ArrayLike,
        owners: npt.ArrayLike,
        nodes: tuple[str, ...],
        algo: int,
        seed: int,
        rule: int = 0,
    ) -> None: ...
    @staticmethod
    def from_nodes(
        names: list[bytes],
        counts: npt.NDArray[np.int64],
        nodes: tuple[str, ...],
        algo: int,
        seed: int,
    ) -> RingTable: ...
    def with_node(self, points: npt.ArrayLike, rank: int, nodes: tuple[str, ...]) -> RingTable: ...
    def without_node(
        self, points: npt.ArrayLike, rank: int, nodes: tuple[str, ...]
    ) -> RingTable: ...
    @property
    def shift(self) -> int: ...
    @property
    def nbytes(self) -> int: ...
    def get(self, key: object) -> str: ...
    def get_nodes(self, key: object, want: int) -> list[str]: ...
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

@disjoint_base
class Column:
    length: int
    type: str
    @staticmethod
    def from_arrow(obj: Any) -> Column: ...
    @staticmethod
    def from_strings(arr: np.ndarray) -> Column: ...
    def __len__(self) -> int: ...
    def first_null(self) -> int: ...

def hash_column(col: Column, algo: int, seed: int) -> npt.NDArray[np.uint32]: ...
def lookup_column(
    t: RingTable, col: Column, out: npt.NDArray[np.int32] | None = None, nulls: int | None = None
) -> npt.NDArray[np.int32]: ...
def partition(
    owners: npt.NDArray[np.int32], nowners: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
