# cython: language_level=3, freethreading_compatible=True
"""Compiled kernels of ringhash: key hashing and ring search.

Private: import from :mod:`ringhash`, never from here. Shapes, dtypes and
argument values are validated in Python (``ringhash._keys``, ``ringhash.ring``);
these kernels trust what they are given except for the per-key encoding rule,
which must run per element and so lives here.

Every numeric loop releases the GIL. A ``RingTable`` is immutable after
construction, so any number of threads may search one table at once.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.long cimport PyLong_AsLongLong, PyLong_AsUnsignedLongLong
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

import numpy as np

cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL
    bint PyUnicode_Check(object o)
    bint PyBytes_Check(object o)
    bint PyByteArray_Check(object o)
    bint PyLong_Check(object o)
    bint PyBool_Check(object o)
    bint PyMemoryView_Check(object o)

cdef extern from "rh_ring.h" nogil:
    ctypedef struct rh_ring:
        const uint32_t *pts
        const int32_t *own
        const uint32_t *idx
        unsigned shift
        uint32_t mask
        uint32_t crowded
    int32_t CROWDED_OWNER "RH_CROWDED_OWNER"
    size_t rh_find(const rh_ring *r, uint32_t h)
    void rh_index_build(const uint32_t *pts, size_t n, unsigned shift, uint32_t *idx)
    void rh_index_fix(uint32_t *idx, unsigned shift, const uint32_t *pts, size_t n, size_t b)
    void rh_search(const rh_ring *r, const uint32_t *hashes, size_t m, int32_t *out)
    void rh_lookup_u64(const rh_ring *r, const uint64_t *keys, size_t n, uint32_t seed, int32_t *out)
    void rh_lookup_fixed(const rh_ring *r, const uint8_t *raw, size_t itemsize, size_t n,
                         uint32_t seed, int32_t *out)
    void rh_patch_run(uint32_t *out, const uint32_t *inp, size_t n, uint32_t add,
                      uint32_t old_crowded, uint32_t new_crowded)

cdef extern from "rh_hash.h" nogil:
    uint32_t rh_murmur3_32(const void *data, size_t len, uint32_t seed)
    uint32_t rh_murmur3_u64(uint64_t x, uint32_t seed)
    uint32_t rh_hash_bytes(int algo, const void *data, size_t len, uint32_t seed)
    uint32_t rh_hash_u64(int algo, uint64_t x, uint32_t seed)
    uint32_t rh_crc32_u64(uint64_t x)
    void rh_init()
    const char *rh_simd()
    void rh_murmur3_u64_block(const uint64_t *keys, size_t n, uint32_t seed, uint32_t *out)
    void rh_hash_fixed_block(int algo, const uint8_t *raw, size_t itemsize, size_t n,
                             uint32_t seed, uint32_t *out)
    ptrdiff_t rh_ucs4_to_utf8(const uint32_t *cps, size_t n, unsigned char *out)
    void rh_node_points(int algo, uint32_t seed, const char *name, size_t name_len,
                        uint32_t count, uint32_t *out)
    void rh_md5(const void *data, size_t len, unsigned char *digest)
    enum:
        RH_MURMUR3
        RH_CRC32
        RH_MD5
    const uint32_t SENTINEL "RH_SENTINEL"

rh_init()

_simd_cap = __import__("os").environ.get("RINGHASH_SIMD")
if _simd_cap not in (None, "", "scalar", "avx2", "avx512"):
    __import__("warnings").warn(
        f"RINGHASH_SIMD={_simd_cap!r} is not one of scalar, avx2, avx512: ignored", RuntimeWarning)
del _simd_cap

#: Which build of the batch hashing loops runs here: "avx512", "avx2" or "scalar".
SIMD = rh_simd().decode("ascii")

MURMUR3 = RH_MURMUR3
CRC32 = RH_CRC32
MD5 = RH_MD5

cdef object _np_integer = np.integer
cdef object _KEY_TYPES = (
    "str, bytes, bytearray, a contiguous memoryview or an int"
)


# ---------------------------------------------------------------- one key

cdef int _int_bits(object k, uint64_t *out) except -1:
    """The 8-byte little-endian encoding of an int key, as a uint64."""
    if k < 0:
        try:
            out[0] = <uint64_t>PyLong_AsLongLong(k)
        except OverflowError:
            raise OverflowError(
                f"int key {k} is out of range: int keys must lie in [-2**63, 2**64)"
            ) from None
    else:
        try:
            out[0] = PyLong_AsUnsignedLongLong(k)
        except OverflowError:
            raise OverflowError(
                f"int key {k} is out of range: int keys must lie in [-2**63, 2**64)"
            ) from None
    return 0


cdef int _hash_key(object k, int algo, uint32_t seed, uint32_t *out) except -1:
    """Hash one key by the encoding rule (see ringhash._keys)."""
    cdef Py_ssize_t size
    cdef const char *data
    cdef uint64_t bits
    cdef Py_buffer view
    if PyUnicode_Check(k):
        data = PyUnicode_AsUTF8AndSize(k, &size)
        out[0] = rh_hash_bytes(algo, data, <size_t>size, seed)
    elif PyBytes_Check(k):
        out[0] = rh_hash_bytes(algo, PyBytes_AS_STRING(k), <size_t>PyBytes_GET_SIZE(k), seed)
    elif PyBool_Check(k):
        raise TypeError(
            f"bool is not a valid key (expected {_KEY_TYPES}); "
            "convert it explicitly, e.g. int(flag)"
        )
    elif PyLong_Check(k):
        _int_bits(k, &bits)
        out[0] = rh_hash_u64(algo, bits, seed)
    elif PyByteArray_Check(k) or PyMemoryView_Check(k):
        try:
            PyObject_GetBuffer(k, &view, PyBUF_SIMPLE)
        except BufferError:
            raise TypeError(
                "memoryview key must be C-contiguous; copy it with bytes(view) first"
            ) from None
        try:
            out[0] = rh_hash_bytes(algo, view.buf, <size_t>view.len, seed)
        finally:
            PyBuffer_Release(&view)
    elif isinstance(k, _np_integer):
        _int_bits(int(k), &bits)
        out[0] = rh_hash_u64(algo, bits, seed)
    else:
        raise TypeError(f"unsupported key type {type(k).__name__!r}: expected {_KEY_TYPES}")
    return 0


def hash_key(object key, int algo, uint32_t seed):
    """Hash one key; returns an int in [0, 2**32)."""
    cdef uint32_t h
    _hash_key(key, algo, seed, &h)
    return h


ctypedef fused _small_int:
    int8_t
    int16_t
    int32_t
    uint8_t
    uint16_t
    uint32_t


ctypedef fused _seq_t:
    list
    tuple


cdef int _hash_seq(_seq_t seq, int algo, uint32_t seed, uint32_t *out,
                   Py_ssize_t *at) except -1:
    """Hash every key of a list or tuple into out; *at tracks the key in hand."""
    cdef Py_ssize_t i, n = len(seq)
    for i in range(n):
        at[0] = i
        if i >= len(seq):  # a key's __index__/__lt__ may run code that shrinks a list
            raise RuntimeError("the key list changed size while it was hashed")
        _hash_key(seq[i], algo, seed, &out[i])
    return 0


cdef object _seq_error(Py_ssize_t i, BaseException e):
    """The same error, naming the key's position in the batch."""
    if isinstance(e, UnicodeEncodeError):
        return ValueError(f"keys[{i}]: str is not encodable as UTF-8 ({e.reason})")
    return type(e)(f"keys[{i}]: {e}")


def hash_objects(object seq, int algo, uint32_t seed):
    """Hash a list or tuple of keys (mixed types allowed) into a uint32 array."""
    cdef Py_ssize_t at = 0, n = len(seq)
    out = np.empty(n, dtype=np.uint32)
    cdef uint32_t[::1] o = out
    if n == 0:
        return out
    try:
        if type(seq) is list:
            _hash_seq[list](<list>seq, algo, seed, &o[0], &at)
        else:
            _hash_seq[tuple](<tuple>seq, algo, seed, &o[0], &at)
    except (TypeError, ValueError, OverflowError) as e:
        raise _seq_error(at, e) from None
    return out


# ---------------------------------------------------------------- batches

def hash_u64(const uint64_t[::1] keys, int algo, uint32_t seed):
    """Hash int keys given as their 64-bit two's complement bits."""
    cdef Py_ssize_t i, n = keys.shape[0]
    out = np.empty(n, dtype=np.uint32)
    if n == 0:
        return out
    cdef uint32_t[::1] o = out
    with nogil:
        if algo == RH_MURMUR3:
            rh_murmur3_u64_block(&keys[0], <size_t>n, seed, &o[0])
        else:
            for i in range(n):
                o[i] = rh_hash_u64(algo, keys[i], seed)
    return out


def hash_fixed_bytes(const uint8_t[::1] raw, Py_ssize_t itemsize, int algo, uint32_t seed):
    """Hash the items of a numpy ``S`` array (trailing NULs stripped, as numpy does)."""
    cdef Py_ssize_t n = raw.shape[0] // itemsize if itemsize else 0
    out = np.empty(n, dtype=np.uint32)
    if n == 0:
        return out
    cdef uint32_t[::1] o = out
    with nogil:
        rh_hash_fixed_block(algo, &raw[0], <size_t>itemsize, <size_t>n, seed, &o[0])
    return out


def hash_ucs4(const uint32_t[::1] raw, Py_ssize_t nchars, int algo, uint32_t seed):
    """Hash the items of a numpy ``U`` array as UTF-8 (trailing NULs stripped)."""
    cdef Py_ssize_t i, length, bad = -1, n = raw.shape[0] // nchars if nchars else 0
    cdef ptrdiff_t nbytes
    cdef const uint32_t *item
    out = np.empty(n, dtype=np.uint32)
    cdef uint32_t[::1] o = out
    cdef unsigned char *buf = <unsigned char *>malloc(4 * nchars + 1)
    if buf == NULL:
        raise MemoryError()
    try:
        with nogil:
            for i in range(n):
                item = &raw[i * nchars]
                length = nchars
                while length > 0 and item[length - 1] == 0:
                    length -= 1
                nbytes = rh_ucs4_to_utf8(item, <size_t>length, buf)
                if nbytes < 0:
                    bad = i
                    break
                o[i] = rh_hash_bytes(algo, buf, <size_t>nbytes, seed)
    finally:
        free(buf)
    if bad >= 0:
        raise ValueError(
            f"keys[{bad}]: str is not encodable as UTF-8 (surrogate or invalid code point)"
        )
    return out


def node_points(bytes name, uint32_t count, int algo, uint32_t seed):
    """The ring points of one node: H(name + b"#" + decimal(i)) for i < count."""
    if algo != RH_MURMUR3 and algo != RH_CRC32:
        raise ValueError("ring points are hashed with murmur3 or crc32")
    out = np.empty(count, dtype=np.uint32)
    cdef uint32_t[::1] o = out
    cdef const char *data = PyBytes_AS_STRING(name)
    cdef size_t length = <size_t>PyBytes_GET_SIZE(name)
    if count:
        with nogil:
            rh_node_points(algo, seed, data, length, count, &o[0])
    return out


# ---------------------------------------------------------------- the ring
#
# A built ring is two arrays padded to n + PAD entries and a bucket index; the
# layout and the search (rh_find) are described in rh_ring.h.

#: Entries past the n points of the padded arrays (rh_ring.h).
PAD = 2

cdef enum:
    BLOCK = 512  # keys hashed, then searched, per round of a batch lookup


cdef inline Py_ssize_t _find_in(RingTable t, uint32_t h) noexcept nogil:
    if t.strict:
        # The first point strictly greater than h is the first point >= h + 1;
        # nothing is greater than 2**32 - 1, so that one wraps.
        if h == SENTINEL:
            return t.n
        h += 1
    return <Py_ssize_t>rh_find(&t.ring, h)


cdef Py_ssize_t _walk(const int32_t *own, Py_ssize_t n, Py_ssize_t pos, Py_ssize_t want,
                      uint32_t *stamp, uint32_t gen, int32_t *out) noexcept nogil:
    """Distinct owners met walking clockwise from pos, at most want of them."""
    cdef Py_ssize_t got = 0, step
    cdef int32_t o
    if pos == n:
        pos = 0
    for step in range(n):
        o = own[pos]
        if stamp[o] != gen:
            stamp[o] = gen
            out[got] = o
            got += 1
            if got == want:
                break
        pos += 1
        if pos == n:
            pos = 0
    return got


# The index encoding needs 2**bits >= n + 2 with bits <= 31 (rh_ring.h); the
# density below needs 2**bits >= 2 * (n + 1) from 65,536 points on.
MAX_INDEXED_POINTS = (1 << 30) - 1


def index_bits(Py_ssize_t npoints):
    """Bits of the bucket index (2**bits buckets) for a ring of npoints points.

    Below 65,536 points: the smallest with 2**bits >= 6 * npoints, so 6 to 12
    buckets per point. About 99% of keys then fall in a bucket with at most one
    point and find their position with one index load, an add and a shift (the
    encoding is described in rh_ring.h); the index costs 24 to 48 bytes per
    point (3 to 6 times the 8 bytes of a point and its owner) and stays in a
    core's L2 cache. From 65,536 points on: 2**bits >= 2 * (npoints + 1) (2 to
    4 buckets per point, 8 to 16 bytes per point; 3 to 9% of keys fall in a
    crowded bucket): such a ring is past the caches anyway, and a membership
    change copies the index, so a smaller one keeps add/remove cheap.
    """
    if npoints < 0 or npoints > MAX_INDEXED_POINTS:
        raise ValueError(f"a ring holds 0 to {MAX_INDEXED_POINTS} points, not {npoints}")
    cdef int bits = 2
    cdef Py_ssize_t target = 6 * npoints if npoints < 65536 else 2 * (npoints + 1)
    while (<Py_ssize_t>1 << bits) < target:
        bits += 1
    return bits


cdef inline void _pad(uint32_t *p, int32_t *o, Py_ssize_t n) noexcept nogil:
    """Fill the PAD entries past n (rh_ring.h): the sentinel point twice, the
    first owner again (wrap-around) and the crowded-bucket owner."""
    p[n] = SENTINEL
    p[n + 1] = SENTINEL
    o[n] = o[0] if n else 0
    o[n + 1] = CROWDED_OWNER


def pad_ring(points, owners):
    """Padded copies (n + PAD entries, see rh_ring.h) of a ring's points and owners."""
    cdef Py_ssize_t n = len(points)
    pp = np.empty(n + PAD, dtype=np.uint32)
    op = np.empty(n + PAD, dtype=np.int32)
    pp[:n] = points
    op[:n] = owners
    cdef uint32_t[::1] p = pp
    cdef int32_t[::1] o = op
    _pad(&p[0], &o[0], n)
    return pp, op


cdef class RingTable:
    """A built ring: padded sorted points, their owners, a bucket index and node names.

    The caller guarantees that ``points[:n]`` is sorted and that owners hold
    values in [0, len(nodes)) with every node present. Immutable, so any
    number of threads may search one table at once without locking.
    """

    cdef readonly object points
    cdef readonly object owners
    cdef readonly object index
    cdef readonly tuple nodes
    cdef readonly int algo
    cdef readonly uint32_t seed
    cdef readonly bint strict
    cdef readonly int shift
    cdef object _pp, _op
    cdef const uint32_t[::1] _pts
    cdef const int32_t[::1] _own
    cdef const uint32_t[::1] _idx
    cdef const uint32_t *_p
    cdef const int32_t *_o
    cdef rh_ring ring
    cdef Py_ssize_t n

    def __cinit__(self, padded_points, padded_owners, tuple nodes, int algo, uint32_t seed,
                  bint strict=False, index=None):
        # ``index``: a bucket index already made for these points (patch_index),
        # else it is built here.
        self._pts = padded_points
        self._own = padded_owners
        cdef Py_ssize_t n = self._pts.shape[0] - PAD
        if n < 1 or self._own.shape[0] != n + PAD:
            raise ValueError("a RingTable needs n >= 1 points and n owners, padded to n + 2")
        if (self._pts[n] != SENTINEL or self._pts[n + 1] != SENTINEL
                or self._own[n] != self._own[0] or self._own[n + 1] != CROWDED_OWNER):
            raise ValueError("the ring arrays are not padded (see pad_ring)")
        self.n = n
        self._pp = padded_points
        self._op = padded_owners
        self.points = padded_points[:n]
        self.owners = padded_owners[:n]
        self.nodes = nodes
        self.algo = algo
        self.seed = seed
        self.strict = strict
        cdef int bits = index_bits(n)
        self.shift = 32 - bits
        cdef Py_ssize_t nb = <Py_ssize_t>1 << bits
        self._p = &self._pts[0]
        self._o = &self._own[0]
        cdef uint32_t[::1] ix
        if index is None:
            index = np.empty(nb + 1, dtype=np.uint32)
            ix = index
            with nogil:
                rh_index_build(self._p, <size_t>n, <unsigned>self.shift, &ix[0])
        elif len(index) != nb + 1 or index[nb] != <uint32_t>n << self.shift:
            raise ValueError("the index does not fit these points")
        index.flags.writeable = False
        self.index = index
        self._idx = index
        self.ring.pts = self._p
        self.ring.own = self._o
        self.ring.idx = &self._idx[0]
        self.ring.shift = <unsigned>self.shift
        self.ring.mask = (<uint32_t>1 << self.shift) - 1
        self.ring.crowded = <uint32_t>(n + 1) << self.shift

    @property
    def padded(self):
        """The padded (points, owners) arrays this table was built from."""
        return self._pp, self._op

    @property
    def nbytes(self):
        """Bytes held by the padded points and owners and the index."""
        return self._pp.nbytes + self._op.nbytes + self.index.nbytes

    def get(self, key):
        """The name of the node that owns one key."""
        cdef uint32_t h
        _hash_key(key, self.algo, self.seed, &h)
        return self.nodes[self._o[_find_in(self, h)]]

    def search(self, const uint32_t[::1] hashes, out=None):
        """Owners of a batch of key hashes, as int32."""
        cdef Py_ssize_t m = hashes.shape[0]
        out = _result(m, out)
        if m == 0:
            return out
        cdef int32_t[::1] o = out
        with nogil:
            _search_block(self, &hashes[0], m, &o[0])
        return out

    def lookup_u64(self, const uint64_t[::1] keys, out=None):
        """Owners of int keys given as 64-bit two's complement bits."""
        cdef Py_ssize_t m = keys.shape[0]
        out = _result(m, out)
        if m == 0:
            return out
        cdef int32_t[::1] o = out
        with nogil:
            _lookup_wide(self, &keys[0], m, &o[0])
        return out

    def lookup_small_ints(self, const _small_int[::1] keys, out=None):
        """Owners of 8-, 16- or 32-bit int keys: widened to 64 bits (sign- or
        zero-extended, so the value decides the bytes) a block at a time on the
        stack, instead of in a whole uint64 copy of the array."""
        cdef Py_ssize_t i, start, end, m = keys.shape[0]
        out = _result(m, out)
        if m == 0:
            return out
        cdef int32_t[::1] o = out
        cdef uint64_t wide[BLOCK]
        start = 0
        with nogil:
            while start < m:
                end = min(start + BLOCK, m)
                for i in range(start, end):
                    wide[i - start] = <uint64_t><int64_t>keys[i]
                _lookup_wide(self, wide, end - start, &o[start])
                start = end
        return out

    def lookup_fixed_bytes(self, const uint8_t[::1] raw, Py_ssize_t itemsize, out=None):
        """Owners of the items of a numpy ``S`` array (hash and search fused, in blocks)."""
        cdef Py_ssize_t start, end, m = raw.shape[0] // itemsize if itemsize else 0
        out = _result(m, out)
        if m == 0:
            return out
        cdef int32_t[::1] o = out
        cdef uint32_t hb[BLOCK]
        if self.algo == RH_MURMUR3 and not self.strict:
            with nogil:
                rh_lookup_fixed(&self.ring, &raw[0], <size_t>itemsize, <size_t>m, self.seed, &o[0])
            return out
        start = 0
        with nogil:
            while start < m:
                end = min(start + BLOCK, m)
                rh_hash_fixed_block(self.algo, &raw[start * itemsize], <size_t>itemsize,
                                    <size_t>(end - start), self.seed, hb)
                _search_block(self, hb, end - start, &o[start])
                start = end
        return out

    def lookup_objects(self, object seq, out=None):
        """Owners of a list or tuple of keys (hash and search fused, one pass)."""
        cdef Py_ssize_t at = 0, n = len(seq)
        out = _result(n, out)
        if n == 0:
            return out
        cdef int32_t[::1] o = out
        try:
            if type(seq) is list:
                _lookup_seq[list](self, <list>seq, &o[0], &at)
            else:
                _lookup_seq[tuple](self, <tuple>seq, &o[0], &at)
        except (TypeError, ValueError, OverflowError) as e:
            raise _seq_error(at, e) from None
        return out

    def assign_bounded(self, const uint32_t[::1] hashes, const int64_t[::1] caps):
        """Bounded-load assignment of hashes in order: each to the first owner
        clockwise whose count is below its cap (caps: one per node)."""
        cdef Py_ssize_t i, m = hashes.shape[0], nnodes = len(self.nodes), bad = -1
        if caps.shape[0] != nnodes:
            raise ValueError("one cap per node is needed")
        out = np.empty(m, dtype=np.int32)
        counts = np.zeros(nnodes, dtype=np.int64)
        if m == 0:
            return out
        cdef int32_t[::1] o = out
        cdef int64_t[::1] c = counts
        with nogil:
            for i in range(m):
                o[i] = <int32_t>_assign_one(self, hashes[i], &caps[0], &c[0])
                if o[i] < 0:
                    bad = i
                    break
        if bad >= 0:
            raise ValueError(f"keys[{bad}]: no node it can reach has capacity left")
        return out

    def replicas(self, const uint32_t[::1] hashes, Py_ssize_t want):
        """Up to ``want`` distinct owners per hash, clockwise; shape (len(hashes), want).

        ``want`` must not exceed the number of nodes. Rows are full when every
        node owns a point (always, for the default ring); otherwise they end
        in -1 entries.
        """
        cdef Py_ssize_t nnodes = len(self.nodes)
        if want < 1 or want > nnodes:
            raise ValueError("want must lie in [1, number of nodes]")
        cdef Py_ssize_t i, m = hashes.shape[0]
        out = np.empty((m, want), dtype=np.int32)
        if m == 0:
            return out
        cdef int32_t[:, ::1] o = out
        cdef uint32_t *stamp = <uint32_t *>malloc(nnodes * sizeof(uint32_t))
        cdef uint32_t gen = 0
        cdef Py_ssize_t got
        if stamp == NULL:
            raise MemoryError()
        memset(stamp, 0, nnodes * sizeof(uint32_t))
        try:
            with nogil:
                for i in range(m):
                    gen += 1
                    if gen == 0:  # wrapped after 2**32 keys: forget old stamps
                        memset(stamp, 0, nnodes * sizeof(uint32_t))
                        gen = 1
                    got = _walk(self._o, self.n, _find_in(self, hashes[i]), want, stamp, gen,
                                &o[i, 0])
                    while got < want:  # only where a node owns no point (some presets)
                        o[i, got] = -1
                        got += 1
        finally:
            free(stamp)
        return out


cdef object _result(Py_ssize_t m, object out):
    """The int32 array a batch method writes m owners into: a new one, or ``out``
    (checked by the caller, ``ringhash.ring``, to be a writeable C-contiguous
    int32 array that does not overlap the keys)."""
    if out is None:
        return np.empty(m, dtype=np.int32)
    if out.ndim != 1 or out.shape[0] != m:
        raise ValueError(f"out must have {m} elements")
    return out


cdef void _lookup_wide(RingTable t, const uint64_t *keys, Py_ssize_t m,
                       int32_t *out) noexcept nogil:
    """Owners of m int keys (64-bit bits). Murmur3 rings take rh_lookup_u64
    (vector hashing of the next keys overlapped with the search of the current
    ones); others hash a block, then search it (independent loads, which the
    CPU overlaps), instead of alternating the two per key."""
    cdef Py_ssize_t i, start = 0, end
    cdef uint32_t hb[BLOCK]
    if t.algo == RH_MURMUR3 and not t.strict:
        rh_lookup_u64(&t.ring, keys, <size_t>m, t.seed, out)
        return
    while start < m:
        end = min(start + BLOCK, m)
        for i in range(start, end):
            hb[i - start] = rh_hash_u64(t.algo, keys[i], t.seed)
        _search_block(t, hb, end - start, &out[start])
        start = end


cdef void _search_block(RingTable t, const uint32_t *hashes, Py_ssize_t m,
                        int32_t *out) noexcept nogil:
    cdef Py_ssize_t i
    if t.strict:
        for i in range(m):
            out[i] = t._o[_find_in(t, hashes[i])]
    else:
        rh_search(&t.ring, hashes, <size_t>m, out)


cdef Py_ssize_t _assign_one(RingTable t, uint32_t h, const int64_t *caps,
                            int64_t *counts) noexcept nogil:
    """The first owner clockwise from h's point with count below its cap, or -1."""
    cdef Py_ssize_t pos = _find_in(t, h), step
    cdef int32_t o
    if pos == t.n:
        pos = 0
    for step in range(t.n):
        o = t._o[pos]
        if counts[o] < caps[o]:
            counts[o] += 1
            return o
        pos += 1
        if pos == t.n:
            pos = 0
    return -1


cdef int _lookup_seq(RingTable t, _seq_t seq, int32_t *out, Py_ssize_t *at) except -1:
    cdef Py_ssize_t i, n = len(seq)
    cdef uint32_t h
    for i in range(n):
        at[0] = i
        if i >= len(seq):
            raise RuntimeError("the key list changed size while it was hashed")
        _hash_key(seq[i], t.algo, t.seed, &h)
        out[i] = t._o[_find_in(t, h)]
    return 0


# ---------------------------------------------------------------- building and membership

def build_ring(list names, const int64_t[::1] counts, int algo, uint32_t seed):
    """Every node's points, sorted by (point, owner), as padded arrays.

    ``algo`` is MURMUR3 or CRC32.

    ``names`` are UTF-8 bytes in owner order (owner id = position), so sorting
    by owner id breaks ties by name.
    """
    cdef Py_ssize_t r, k = 0, total = 0, nn = len(names)
    if algo != RH_MURMUR3 and algo != RH_CRC32:
        raise ValueError("ring points are hashed with murmur3 or crc32")
    for r in range(nn):
        total += counts[r]
    raw = np.empty(total, dtype=np.uint32)
    cdef uint32_t[::1] rw = raw
    cdef bytes name
    for r in range(nn):
        name = names[r]
        if counts[r]:
            rh_node_points(algo, seed, PyBytes_AS_STRING(name), <size_t>PyBytes_GET_SIZE(name),
                           <uint32_t>counts[r], &rw[k])
        k += counts[r]
    combined = np.empty(total, dtype=np.uint64)
    cdef uint64_t[::1] c = combined
    k = 0
    with nogil:
        for r in range(nn):
            for _ in range(counts[r]):
                c[k] = (<uint64_t>rw[k] << 32) | <uint64_t>r
                k += 1
    combined.sort()  # numpy's SIMD sort; ties were made impossible by the owner bits
    return _split(combined)


cdef tuple _split(const uint64_t[::1] c):
    cdef Py_ssize_t i, n = c.shape[0]
    pp = np.empty(n + PAD, dtype=np.uint32)
    op = np.empty(n + PAD, dtype=np.int32)
    cdef uint32_t[::1] p = pp
    cdef int32_t[::1] o = op
    with nogil:
        for i in range(n):
            p[i] = <uint32_t>(c[i] >> 32)
            o[i] = <int32_t>(c[i] & 0xFFFFFFFFu)
        _pad(&p[0], &o[0], n)
    return pp, op


cdef inline Py_ssize_t _first_entry_at(const uint32_t[::1] pts, const int32_t[::1] own,
                                       Py_ssize_t lo, Py_ssize_t hi, uint32_t v,
                                       int32_t rank) noexcept nogil:
    """First position in [lo, hi) whose entry does not sort before (v, rank)."""
    cdef Py_ssize_t mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if pts[mid] < v or (pts[mid] == v and own[mid] < rank):
            lo = mid + 1
        else:
            hi = mid
    return lo


def merge_node(const uint32_t[::1] pts, const int32_t[::1] own,
               const uint32_t[::1] new_pts, int32_t rank):
    """Insert a node's sorted points into a ring; padded output.

    ``pts``/``own`` are the unpadded ring. The new node takes owner id ``rank``;
    existing owners >= rank move up by one. Equal points stay ordered by owner
    id, i.e. by node name. Works in runs between insertion points (found by
    binary search), so the copying loops have no data-dependent branches.
    """
    cdef Py_ssize_t n = pts.shape[0], m = new_pts.shape[0], i = 0, j, k = 0, e, r
    out_p = np.empty(n + m + PAD, dtype=np.uint32)
    out_o = np.empty(n + m + PAD, dtype=np.int32)
    cdef uint32_t[::1] op = out_p
    cdef int32_t[::1] oo = out_o
    with nogil:
        for j in range(m + 1):
            if j < m:
                # End of the run of old entries that sort before new_pts[j].
                e = _first_entry_at(pts, own, i, n, new_pts[j], rank)
            else:
                e = n
            for r in range(e - i):
                op[k + r] = pts[i + r]
                oo[k + r] = own[i + r] + (own[i + r] >= rank)
            k += e - i
            i = e
            if j < m:
                op[k] = new_pts[j]
                oo[k] = rank
                k += 1
        _pad(&op[0], &oo[0], k)
    return out_p, out_o


def patch_index(const uint32_t[::1] old, int shift, const uint32_t[::1] delta, int sign,
                const uint32_t[::1] pts):
    """The bucket index after adding (sign=+1) or removing (sign=-1) sorted points.

    ``pts`` are the new padded points. A point in bucket c moves the position
    of every bucket b > c by one: a copy of the old index plus a constant
    (times 2**shift, where entries keep positions) per run of buckets, with the
    crowded value (rh_ring.h) replaced by the new one; then the entries of the
    buckets that gained or lost points are encoded afresh. Equal to a fresh
    build over the new points.
    """
    cdef Py_ssize_t nb1 = old.shape[0], m = delta.shape[0], k, b0 = 0, b1
    cdef Py_ssize_t n = pts.shape[0] - PAD, n_old = n - sign * m
    if n < 0 or n_old < 0 or nb1 < 2 or old[nb1 - 1] != <uint32_t>n_old << shift:
        raise ValueError("patch_index: the point counts do not fit the old index")
    out = np.empty(nb1, dtype=np.uint32)
    cdef uint32_t[::1] o = out
    cdef uint32_t add
    cdef uint32_t old_crowded = <uint32_t>(n_old + 1) << shift
    cdef uint32_t new_crowded = <uint32_t>(n + 1) << shift
    with nogil:
        for k in range(m + 1):
            b1 = (delta[k] >> shift) + 1 if k < m else nb1
            add = <uint32_t>(sign * k) << shift
            if b1 > b0:
                rh_patch_run(&o[b0], &old[b0], <size_t>(b1 - b0), add, old_crowded, new_crowded)
                b0 = b1
        for k in range(m):
            rh_index_fix(&o[0], <unsigned>shift, &pts[0], <size_t>n, delta[k] >> shift)
    return out


def drop_node(const uint32_t[::1] pts, const int32_t[::1] own, const uint32_t[::1] gone,
              int32_t rank):
    """Remove owner ``rank``'s points (``gone``, sorted) in runs; owners above it move down.

    Padded output. Each removed entry is found by binary search on
    (point, owner), and the runs between them are copied branch-free.
    """
    cdef Py_ssize_t n = pts.shape[0], m = gone.shape[0], i = 0, j, k = 0, e, r
    out_p = np.empty(n - m + PAD, dtype=np.uint32)
    out_o = np.empty(n - m + PAD, dtype=np.int32)
    cdef uint32_t[::1] op = out_p
    cdef int32_t[::1] oo = out_o
    cdef uint32_t v
    cdef bint ok = True
    with nogil:
        for j in range(m + 1):
            if j < m:
                v = gone[j]
                e = _first_entry_at(pts, own, i, n, v, rank)
                if e >= n or pts[e] != v or own[e] != rank:
                    ok = False
                    break
            else:
                e = n
            if k + (e - i) > n - m:
                ok = False
                break
            for r in range(e - i):
                op[k + r] = pts[i + r]
                oo[k + r] = own[i + r] - (own[i + r] > rank)
            k += e - i
            i = e + 1
        if ok:
            _pad(&op[0], &oo[0], k)
    if not ok:
        raise ValueError("drop_node: the ring does not hold the given points for that owner")
    return out_p, out_o


# ---------------------------------------------------------------- presets

def ketama_points(bytes addr, Py_ssize_t digests):
    """libketama's points of one server: md5(addr + "-" + k) for k < digests, each
    digest giving 4 points (bytes 4h..4h+3, little-endian)."""
    out = np.empty(4 * digests, dtype=np.uint32)
    if digests == 0:
        return out
    cdef uint32_t[::1] o = out
    cdef unsigned char d[16]
    cdef Py_ssize_t k, h
    cdef bytes text
    for k in range(digests):
        text = addr + b"-" + str(k).encode("ascii")
        rh_md5(PyBytes_AS_STRING(text), <size_t>PyBytes_GET_SIZE(text), d)
        for h in range(4):
            o[4 * k + h] = (<uint32_t>d[4 * h] | (<uint32_t>d[4 * h + 1] << 8) |
                            (<uint32_t>d[4 * h + 2] << 16) | (<uint32_t>d[4 * h + 3] << 24))
    return out


def md5(bytes data):
    """The MD5 digest (16 bytes); exposed so the tests can check it against hashlib."""
    cdef unsigned char d[16]
    rh_md5(PyBytes_AS_STRING(data), <size_t>PyBytes_GET_SIZE(data), d)
    return bytes(d[:16])
