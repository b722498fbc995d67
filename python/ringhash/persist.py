"""Saving and loading rings: a JSON-safe description and a compact binary form.

``to_dict`` describes a ring's configuration (nodes, weights, vnodes, hash,
seed, preset); ``from_dict`` rebuilds the identical ring anywhere by hashing.

``to_bytes`` stores the built ring itself, so loading needs no hashing (fast
start for million-point rings). Layout, all little-endian::

    magic      8 bytes   b"RINGHASH"
    version    uint16    1
    flags      uint16    0
    header_len uint32
    header     header_len bytes of UTF-8 JSON: the to_dict() description
    npoints    uint64
    points     npoints x uint32, sorted
    owners     npoints x int32, indices into the nodes sorted by UTF-8
    checksum   uint32    CRC-32 of every byte before it

Truncated, corrupted or foreign input raises ValueError; nothing is trusted
before the checksum and the structure have been checked.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _core, presets

if TYPE_CHECKING:
    from .ring import RingSnapshot

FORMAT = "ringhash.ring"
VERSION = 1
MAGIC = b"RINGHASH"
_HEAD = struct.Struct("<8sHHI")
_COUNT = struct.Struct("<Q")
_CRC = struct.Struct("<I")
MAX_HEADER = 1 << 28


def describe(snap: RingSnapshot) -> dict[str, Any]:
    d: dict[str, Any] = {"format": FORMAT, "version": VERSION, "preset": snap.preset}
    if snap._preset is not None:
        d["state"] = snap._preset.describe()
    else:
        d.update(nodes={n: snap.weights[n] for n in snap.nodes}, vnodes=snap.vnodes,
                 hash=snap.hash, seed=snap.seed)
    return d


def _check_envelope(d: object) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ValueError(f"a ring description is a dict, not {type(d).__name__}")
    if d.get("format") != FORMAT:
        raise ValueError(f"not a ringhash ring description (format {d.get('format')!r})")
    if d.get("version") != VERSION:
        raise ValueError(f"unsupported ring description version {d.get('version')!r} "
                         f"(this ringhash reads version {VERSION})")
    return d


def snapshot_from_dict(d: object, arrays: tuple[np.ndarray, np.ndarray] | None = None,
                       ) -> RingSnapshot:
    """The snapshot a description stands for. With ``arrays`` (points, owners) the
    built ring is taken from them, after checking it is valid, instead of hashed."""
    from ._keys import check_seed
    from .ring import RingSnapshot, _check_vnodes, _parse_nodes

    d = _check_envelope(d)
    preset = d.get("preset")
    try:
        if preset is not None:
            state = presets.from_description(preset, d.get("state"))  # type: ignore[arg-type]
            if arrays is None:
                return RingSnapshot._from_preset(state)
            nodes = _utf8_sorted(state.weights)
            padded = _checked(arrays, len(nodes), every_node=False, ordered_ties=False)
            return RingSnapshot(nodes, state.weights, state.vnodes, state.hash, 0, padded,
                                preset=state)
        if not isinstance(d["nodes"], dict):
            raise ValueError("malformed ring description: nodes must map names to weights")
        weights = _parse_nodes(d["nodes"])
        vnodes = _check_vnodes(d["vnodes"])
        hash_ = d["hash"]
        seed = check_seed(d["seed"], hash_)
        if arrays is None:
            return RingSnapshot._build(weights, vnodes, hash_, seed)
        nodes = _utf8_sorted(weights)
        padded = _checked(arrays, len(nodes), every_node=True, ordered_ties=True)
        return RingSnapshot(nodes, weights, vnodes, hash_, seed, padded)
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"malformed ring description: {e!r}") from None


def _utf8_sorted(names: Any) -> tuple[str, ...]:
    return tuple(sorted(names, key=lambda n: n.encode("utf-8")))


def _checked(arrays: tuple[np.ndarray, np.ndarray], nnodes: int, *, every_node: bool,
             ordered_ties: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """Padded ring arrays, once they are shown to form a valid ring over nnodes nodes."""
    points, owners = arrays
    if len(points) == 0:
        if every_node and nnodes:
            raise ValueError("ring data has nodes but no points")
        return None
    if np.any(points[1:] < points[:-1]):
        raise ValueError("ring points are not sorted")
    if owners.min() < 0 or owners.max() >= nnodes:
        raise ValueError("ring owners do not index the ring's nodes")
    if every_node and len(np.unique(owners)) != nnodes:
        raise ValueError("a node of the ring owns no point")
    if ordered_ties:
        ties = points[1:] == points[:-1]
        if np.any(owners[1:][ties] < owners[:-1][ties]):
            raise ValueError("equal ring points are not ordered by node name")
    return _core.pad_ring(points, owners)


def to_bytes(snap: RingSnapshot) -> bytes:
    header = json.dumps(describe(snap), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    points = np.ascontiguousarray(snap.points, dtype="<u4")
    owners = np.ascontiguousarray(snap.owners, dtype="<i4")
    body = b"".join([_HEAD.pack(MAGIC, VERSION, 0, len(header)), header,
                     _COUNT.pack(len(points)), points.tobytes(), owners.tobytes()])
    return body + _CRC.pack(zlib.crc32(body))


def from_bytes(data: object) -> RingSnapshot:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, not {type(data).__name__}")
    buf = memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)
    if len(buf) < _HEAD.size + _COUNT.size + _CRC.size:
        raise ValueError(f"not a ringhash ring: {len(buf)} bytes is too short")
    magic, version, flags, header_len = _HEAD.unpack_from(buf, 0)
    if magic != MAGIC:
        raise ValueError("not a ringhash ring (bad magic bytes)")
    if version != VERSION:
        raise ValueError(f"unsupported ring format version {version} (this ringhash reads {VERSION})")
    if flags != 0:
        raise ValueError(f"unsupported ring format flags {flags:#x}")
    (crc,) = _CRC.unpack_from(buf, len(buf) - _CRC.size)
    if zlib.crc32(buf[:-_CRC.size]) != crc:
        raise ValueError("ring data is corrupted (checksum mismatch) or truncated")
    off = _HEAD.size
    if header_len > min(MAX_HEADER, len(buf) - off - _COUNT.size - _CRC.size):
        raise ValueError("ring data is truncated (header length exceeds the data)")
    try:
        desc = json.loads(bytes(buf[off:off + header_len]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"ring header is not valid JSON: {e}") from None
    off += header_len
    (n,) = _COUNT.unpack_from(buf, off)
    off += _COUNT.size
    if off + 8 * n + _CRC.size != len(buf):
        raise ValueError(f"ring data length does not match its {n} points")
    points = np.frombuffer(buf, dtype="<u4", count=n, offset=off).astype(np.uint32)
    owners = np.frombuffer(buf, dtype="<i4", count=n, offset=off + 4 * n).astype(np.int32)
    return snapshot_from_dict(desc, (points, owners))
