"""Known answers: ringhash's hashes equal mmh3 and zlib on every key and batch form."""

import random
import zlib

import mmh3
import numpy as np
import pytest

import ringhash
from ringhash import _reference

rng = random.Random(20261126)


def encoded(key):
    return _reference.encode_key(key)


def mmh(b, seed=0):
    return mmh3.hash(b, seed, signed=False)


RANDOM_BYTES = [
    rng.randbytes(n) for n in list(range(0, 40)) + [rng.randrange(40, 600) for _ in range(60)]
]
SEEDS = [0, 1, 42, 0x9747B28C, 2**32 - 1] + [rng.randrange(2**32) for _ in range(5)]


@pytest.mark.parametrize("seed", SEEDS)
def test_murmur3_bytes_match_mmh3(seed):
    for b in RANDOM_BYTES:
        assert ringhash.murmur3_32(b, seed) == mmh(b, seed)
    assert ringhash.murmur3_32(RANDOM_BYTES, seed).tolist() == [mmh(b, seed) for b in RANDOM_BYTES]


def test_crc32_bytes_match_zlib():
    for b in RANDOM_BYTES:
        assert ringhash.crc32(b) == zlib.crc32(b)
    assert ringhash.crc32(RANDOM_BYTES).tolist() == [zlib.crc32(b) for b in RANDOM_BYTES]


def test_reference_hashes_match_mmh3_and_zlib():
    # The oracle itself is checked against the independent implementations.
    for b in RANDOM_BYTES[:50]:
        assert _reference.murmur3_32(b, 7) == mmh(b, 7)
        assert _reference.crc32(b) == zlib.crc32(b)


@pytest.mark.parametrize(
    "hash_fn, expect",
    [
        (ringhash.murmur3_32, lambda b: mmh(b)),
        (ringhash.crc32, zlib.crc32),
    ],
)
def test_scalar_key_types(hash_fn, expect):
    keys = [
        "",
        "user:42",
        "naïve ☃ 日本 🎉",
        b"\x00\xff",
        bytearray(b"abc"),
        memoryview(b"memory"),
        memoryview(np.arange(6, dtype=np.int32)),
        0,
        1,
        -1,
        2**63 - 1,
        -(2**63),
        2**64 - 1,
        2**63,
        np.int8(-5),
        np.uint16(65535),
        np.int64(-(2**63)),
        np.uint64(2**64 - 1),
        np.str_("numpy str"),
        np.bytes_(b"numpy bytes"),
    ]
    for key in keys:
        got = hash_fn(key)
        assert isinstance(got, int)
        assert got == expect(encoded(key)), key


def test_int_encoding_is_8_bytes_little_endian():
    assert ringhash.murmur3_32(1) == mmh(b"\x01" + b"\x00" * 7)
    assert ringhash.murmur3_32(-1) == mmh(b"\xff" * 8)
    assert ringhash.murmur3_32(2**64 - 1) == ringhash.murmur3_32(-1)
    # An int key is not its decimal string.
    assert ringhash.murmur3_32(12345) != ringhash.murmur3_32("12345")


STR_KEYS = ["", "a", "user:1", "ключ", "键值对", "emoji 🎉🎉", "tail\x00", "x" * 100]


@pytest.mark.parametrize("seed", [0, 12345])
def test_every_batch_form(seed):
    expect = [mmh(s.encode(), seed) for s in STR_KEYS]
    h = lambda keys: ringhash.murmur3_32(keys, seed)  # noqa: E731
    assert h(STR_KEYS).tolist() == expect
    assert h(tuple(STR_KEYS)).tolist() == expect
    assert h(np.array(STR_KEYS[:-2] + ["x" * 100])).dtype == np.uint32
    # 'U' arrays strip trailing NULs (numpy does too), so compare to numpy's items.
    u = np.array(STR_KEYS)
    assert h(u).tolist() == [mmh(str(s).encode(), seed) for s in u]
    assert h(u.astype(">U200")).tolist() == h(u).tolist()
    assert h(np.array(STR_KEYS, dtype=object)).tolist() == expect
    b = [s.encode() for s in STR_KEYS]
    s_arr = np.array(b)
    assert h(s_arr).tolist() == [mmh(bytes(x), seed) for x in s_arr]
    assert h(np.array([b"a\x00b", b"a\x00\x00", b""])).tolist() == [
        mmh(b"a\x00b", seed),
        mmh(b"a", seed),
        mmh(b"", seed),
    ]
    assert ringhash.crc32(np.array([b"a\x00b", b"a\x00\x00", b""])).tolist() == [
        zlib.crc32(b"a\x00b"),
        zlib.crc32(b"a"),
        zlib.crc32(b""),
    ]


@pytest.mark.parametrize(
    "dtype", ["i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", ">i2", ">i8", ">u4", ">u8"]
)
def test_integer_arrays_hash_by_value(dtype):
    info = np.iinfo(np.dtype(dtype))
    values = sorted({info.min, info.max, 0, 1, info.min // 2, info.max // 3})
    arr = np.array(values, dtype=dtype)
    expect = [mmh(encoded(v), 9) for v in values]
    assert ringhash.murmur3_32(arr, 9).tolist() == expect
    assert ringhash.crc32(arr).tolist() == [zlib.crc32(encoded(v)) for v in values]


def test_shapes_and_strides_are_kept():
    arr = np.arange(24, dtype=np.int64).reshape(2, 3, 4)
    out = ringhash.murmur3_32(arr)
    assert out.shape == (2, 3, 4) and out.dtype == np.uint32
    assert out.ravel().tolist() == [mmh(encoded(int(v))) for v in arr.ravel()]
    strided = arr[:, ::2, ::-1]
    assert ringhash.murmur3_32(strided).tolist() == [
        [[mmh(encoded(int(v))) for v in row] for row in plane] for plane in strided
    ]
    s2 = np.array([["ab", "c"], ["dé", ""]])
    assert ringhash.murmur3_32(s2).shape == (2, 2)
    zero_d = ringhash.murmur3_32(np.array(5))
    assert zero_d.shape == () and int(zero_d) == ringhash.murmur3_32(5)
    assert ringhash.murmur3_32([]).shape == (0,)
    assert ringhash.murmur3_32(np.array([], dtype=np.uint64)).shape == (0,)


def test_mixed_list_and_random_known_answers():
    keys = []
    for _ in range(2000):
        kind = rng.randrange(4)
        if kind == 0:
            keys.append(
                "".join(
                    chr(
                        rng.choice(
                            [
                                rng.randrange(32, 127),
                                rng.randrange(0x80, 0xD800),
                                rng.randrange(0xE000, 0x110000),
                            ]
                        )
                    )
                    for _ in range(rng.randrange(0, 30))
                )
            )
        elif kind == 1:
            keys.append(rng.randbytes(rng.randrange(0, 30)))
        elif kind == 2:
            keys.append(rng.randrange(-(2**63), 2**64))
        else:
            keys.append(bytearray(rng.randbytes(rng.randrange(0, 9))))
    seed = rng.randrange(2**32)
    assert ringhash.murmur3_32(keys, seed).tolist() == [mmh(encoded(k), seed) for k in keys]
    assert ringhash.crc32(keys).tolist() == [zlib.crc32(encoded(k)) for k in keys]
    strs = [k for k in keys if isinstance(k, str)]
    assert ringhash.murmur3_32(np.array(strs, dtype=object), seed).tolist() == [
        mmh(s.encode(), seed) for s in strs
    ]
    assert ringhash.murmur3_32(np.array(strs), seed).tolist() == [
        mmh(s.rstrip("\x00").encode(), seed) for s in strs
    ]


# The inputs, made the same way in the parent and in each child process.
_LEVEL_DATA = """
import numpy as np
ints = np.arange(-5000, 5000, dtype=np.int64) * 7919
raw = np.random.default_rng(3).integers(0, 256, (997, 65), dtype=np.uint8)
raw[::3, 17:] = 0   # trailing NULs (stripped), so items have different lengths
raw[::7, 5:] = 0
raw[::11, :] = 0    # empty items
raw[1::5, 9] = 0    # an interior NUL (kept)
# widths around the vector paths' limits (32 bytes for AVX2, 64 for AVX-512), and
# arrays too short for a whole group or for a safe 32-byte read of the last items
fixed = {f"{w}x{n}": raw[:n, :w].copy().view(f"S{w}").ravel()
         for w in (1, 3, 4, 7, 8, 16, 23, 31, 32, 33, 63, 64, 65) for n in (997, 15, 7)}
wide = np.char.add(np.arange(40).astype("S3"), b"x" * 300)  # past the 256-byte lane path
"""
_LEVEL_SCRIPT = (
    _LEVEL_DATA
    + """
import json
import ringhash, ringhash._core as c
ring = ringhash.HashRing(["a", "b", "c", "d"])
print(json.dumps({
    "simd": c.SIMD,
    "ints": ringhash.murmur3_32(ints, 17).tolist(),
    "fixed": {w: ringhash.murmur3_32(a, 17).tolist() for w, a in fixed.items()},
    "wide": ringhash.murmur3_32(wide, 17).tolist(),
    "lookup": ring.lookup(fixed["16x997"]).tolist() + ring.lookup(ints).tolist(),
    # the fused int lookup works in groups of 8 or 16 keys: sizes around them
    "lookup_sizes": [ring.lookup(ints[:n]).tolist() for n in (1, 7, 8, 15, 16, 17, 9999)],
}))
"""
)


def _run_level(level):
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, RINGHASH_SIMD=level)
    out = subprocess.run(
        [sys.executable, "-c", _LEVEL_SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_an_unknown_simd_cap_is_reported():
    import os
    import subprocess
    import sys

    env = dict(os.environ, RINGHASH_SIMD="avx9000")
    out = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-c", "import ringhash"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0 and "RINGHASH_SIMD='avx9000' is not one of" in out.stderr


def test_every_simd_build_of_the_batch_loops_agrees_with_mmh3():
    """The batch hashing loops have portable, AVX2 and AVX-512 builds picked at run time
    (RINGHASH_SIMD caps the pick): every build this CPU can run must equal mmh3."""
    import ringhash._core as core

    order = ["scalar", "avx2", "avx512"]
    runs = {level: _run_level(level) for level in order[: order.index(core.SIMD) + 1]}
    assert [r["simd"] for r in runs.values()] == list(runs)  # each cap took effect
    ns = {}
    exec(_LEVEL_DATA, ns)
    first = runs["scalar"]
    assert first["ints"] == [mmh(encoded(int(v)), 17) for v in ns["ints"]]
    for w, arr in ns["fixed"].items():
        assert first["fixed"][w] == [mmh(bytes(x), 17) for x in arr], w
    assert first["wide"] == [mmh(bytes(x), 17) for x in ns["wide"]]
    ring = ringhash.HashRing(["a", "b", "c", "d"])
    ref = _reference.ReferenceRing({"a": 1, "b": 1, "c": 1, "d": 1})
    assert first["lookup_sizes"][-1] == [
        ring.nodes.index(ref.get(int(k))) for k in ns["ints"][:9999]
    ]
    for level, run in runs.items():
        assert run == {**first, "simd": level}, level
