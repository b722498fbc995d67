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

This module is the codec alone: it does not know rings. ``ringhash.ring``
turns a description (and, from bytes, the points and owners) into a ring,
and the ring table checks the arrays it is given (sorted, owners in range).
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import numpy as np

__all__ = ["FORMAT", "VERSION", "check_envelope", "decode", "encode", "envelope"]

FORMAT = "ringhash.ring"
VERSION = 1
MAGIC = b"RINGHASH"
_HEAD = struct.Struct("<8sHHI")
_COUNT = struct.Struct("<Q")
_CRC = struct.Struct("<I")
MAX_HEADER = 1 << 28


def envelope(preset: str | None) -> dict[str, Any]:
    """The fields every description starts with."""
    return {"format": FORMAT, "version": VERSION, "preset": preset}


def check_envelope(d: object) -> dict[str, Any]:
    """``d`` if it is a description of this format and version, else ValueError."""
    if not isinstance(d, dict):
        raise ValueError(f"a ring description is a dict, not {type(d).__name__}")
    if d.get("format") != FORMAT:
        raise ValueError(f"not a ringhash ring description (format {d.get('format')!r})")
    if d.get("version") != VERSION:
        raise ValueError(
            f"unsupported ring description version {d.get('version')!r} "
            f"(this ringhash reads version {VERSION})"
        )
    return d


def encode(description: dict[str, Any], points: np.ndarray, owners: np.ndarray) -> bytes:
    """The binary form of a description and its built ring's points and owners."""
    header = json.dumps(description, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    pts = np.ascontiguousarray(points, dtype="<u4")
    own = np.ascontiguousarray(owners, dtype="<i4")
    body = b"".join(
        [
            _HEAD.pack(MAGIC, VERSION, 0, len(header)),
            header,
            _COUNT.pack(len(pts)),
            pts.tobytes(),
            own.tobytes(),
        ]
    )
    return body + _CRC.pack(zlib.crc32(body))


def decode(data: object) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """(description, points, owners) from :func:`encode` output.

    Checks the framing, the checksum and the description's envelope; what the
    points and owners mean is checked by whoever builds a ring from them.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, not {type(data).__name__}")
    buf = memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)
    if len(buf) < _HEAD.size + _COUNT.size + _CRC.size:
        raise ValueError(f"not a ringhash ring: {len(buf)} bytes is too short")
    magic, version, flags, header_len = _HEAD.unpack_from(buf, 0)
    if magic != MAGIC:
        raise ValueError("not a ringhash ring (bad magic bytes)")
    if version != VERSION:
        raise ValueError(
            f"unsupported ring format version {version} (this ringhash reads {VERSION})"
        )
    if flags != 0:
        raise ValueError(f"unsupported ring format flags {flags:#x}")
    (crc,) = _CRC.unpack_from(buf, len(buf) - _CRC.size)
    if zlib.crc32(buf[: -_CRC.size]) != crc:
        raise ValueError("ring data is corrupted (checksum mismatch) or truncated")
    off = _HEAD.size
    if header_len > min(MAX_HEADER, len(buf) - off - _COUNT.size - _CRC.size):
        raise ValueError("ring data is truncated (header length exceeds the data)")
    try:
        desc = json.loads(bytes(buf[off : off + header_len]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"ring header is not valid JSON: {e}") from None
    off += header_len
    (n,) = _COUNT.unpack_from(buf, off)
    off += _COUNT.size
    if off + 8 * n + _CRC.size != len(buf):
        raise ValueError(f"ring data length does not match its {n} points")
    points = np.frombuffer(buf, dtype="<u4", count=n, offset=off).astype(np.uint32)
    owners = np.frombuffer(buf, dtype="<i4", count=n, offset=off + 4 * n).astype(np.int32)
    return check_envelope(desc), points, owners
