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
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.long cimport PyLong_AsLongLong, PyLong_AsUnsignedLongLong
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_GET_ITEM
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset

cimport numpy as cnp
import numpy as np

cnp.import_array()

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
        size_t n
        unsigned shift
    enum:
        RH_PAD
        RH_BLOCK
        RH_CHUNK
        RH_RULE_GE
        RH_RULE_GT
        RH_RULE_NEAREST
    const uint32_t MAX_INDEXED "RH_MAX_INDEXED_POINTS"
    unsigned rh_index_bits(size_t n)
    void rh_ring_pad(uint32_t *pts, int32_t *own, size_t n)
    void rh_index_build(const uint32_t *pts, size_t n, unsigned shift, uint32_t *idx)
    int rh_index_patch(const uint32_t *old, unsigned shift, const uint32_t *delta, size_t m,
                       int sign, const uint32_t *pts, size_t n, uint32_t *out)
    void rh_ring_merge(const uint32_t *pts, const int32_t *own, size_t n, const uint32_t *add,
                       size_t m, int32_t rank, uint32_t *out_pts, int32_t *out_own)
    int rh_ring_drop(const uint32_t *pts, const int32_t *own, size_t n, const uint32_t *gone,
                     size_t m, int32_t rank, uint32_t *out_pts, int32_t *out_own)
    void rh_ring_init(rh_ring *r, const uint32_t *pts, const int32_t *own, const uint32_t *idx,
                      size_t n, int rule, int algo, uint32_t seed)
    enum:
        RH_WALK_SMALL
    size_t rh_walk_small(const rh_ring *r, size_t pos, size_t want, int32_t *out)
    size_t rh_walk_stamped(const rh_ring *r, size_t pos, size_t want, uint32_t *stamp,
                           uint32_t gen, int32_t *out)
    size_t rh_find(const rh_ring *r, uint32_t h)
    int32_t rh_owner(const rh_ring *r, uint32_t h)
    void rh_search(const rh_ring *r, const uint32_t *hashes, size_t m, int32_t *out)
    void rh_lookup_u64(const rh_ring *r, const uint64_t *keys, size_t n, int32_t *out)
    void rh_lookup_fixed(const rh_ring *r, const uint8_t *raw, size_t itemsize, size_t n,
                         int32_t *out)

cdef extern from "rh_hash.h" nogil:
    uint32_t rh_hash_bytes(int algo, const void *data, size_t len, uint32_t seed)
    uint32_t rh_hash_u64(int algo, uint64_t x, uint32_t seed)
    void rh_hash_u64_block(int algo, const uint64_t *keys, size_t n, uint32_t seed, uint32_t *out)
    void rh_init()
    const char *rh_simd()
    void rh_murmur3_u64_block(const uint64_t *keys, size_t n, uint32_t seed, uint32_t *out)
    void rh_hash_fixed_block(int algo, const uint8_t *raw, size_t itemsize, size_t n,
                             uint32_t seed, uint32_t *out)
    void rh_hash_spans(int algo, const unsigned char *const *ptr, const uint32_t *len, size_t n,
                       int back_to_back, uint32_t seed, uint32_t *out)
    ptrdiff_t rh_ucs4_to_utf8(const uint32_t *cps, size_t n, unsigned char *out)
    void rh_node_points(int algo, uint32_t seed, const char *name, size_t name_len,
                        uint32_t count, uint32_t *out)
    void rh_md5(const void *data, size_t len, unsigned char *digest)
    enum:
        RH_MURMUR3
        RH_CRC32
        RH_MD5
        RH_NALGOS
        RH_AVALANCHE
        RH_UNSIGNED_CHAR
        RH_HASH_TAG
        RH_TAG_MASK
    bint RH_CHAR_HASH(int id)
    int RH_TAG(int open, int close)

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
#: The proxies' and clients' key hashes (rh_hash.h), and the HAProxy avalanche flag.
PROXY_HASHES = {"sdbm": 3, "djb2": 4, "wt6": 5, "one_at_a_time": 6, "fnv1_64": 7,
                "fnv1a_64": 8, "fnv1_32": 9, "fnv1a_32": 10, "murmur2": 11, "crc32_15": 12,
                "hsieh": 13, "jenkins": 14, "crc16": 15, "haproxy_source": 16}
AVALANCHE = RH_AVALANCHE
#: Or'ed into the id of a hash in CHAR_HASHES: key bytes read as an unsigned char
#: (the proxy built for aarch64, ARM, POWER or s390x), not a signed one (x86-64).
UNSIGNED_CHAR = RH_UNSIGNED_CHAR
#: The ids of the hashes whose C source reads key bytes through a plain char.
CHAR_HASHES = frozenset(i for i in PROXY_HASHES.values() if RH_CHAR_HASH(i))
HASH_TAG = RH_HASH_TAG


def with_hash_tag(int algo, bytes tag not None):
    """``algo`` hashing only the part of a key inside ``tag`` (two bytes, opening and
    closing, neither 0), where the key has one (twemproxy's ``hash_tag``)."""
    if len(tag) != 2 or tag[0] == 0 or tag[1] == 0:
        raise ValueError(f"a hash tag is two non-NUL bytes, not {tag!r}")
    if algo & RH_TAG_MASK:
        raise ValueError(f"hash id {algo} has a hash tag already")
    return algo | RH_TAG(tag[0], tag[1])

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


def node_points(bytes name not None, uint32_t count, int algo, uint32_t seed):
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
# The layout of a built ring (padded arrays, bucket index, crowded buckets,
# search rules) is rh_ring.h's and rh_ring.c's alone: RingTable hands them
# sorted points and owners and asks for owners.

#: The search rules (rh_ring.h): first point >= the key's hash, or strictly >.
RULE_GE = RH_RULE_GE
RULE_GT = RH_RULE_GT
RULE_NEAREST = RH_RULE_NEAREST

#: The most points a ring can index (rh_ring.h).
MAX_INDEXED_POINTS = MAX_INDEXED


def index_bits(Py_ssize_t npoints):
    """Bits of the bucket index (2**bits buckets) for a ring of npoints points
    (rh_index_bits: 6 to 12 buckets per point below 65,536 points, 2 to 4 above)."""
    if npoints < 0 or npoints > MAX_INDEXED:
        raise ValueError(f"a ring holds 0 to {MAX_INDEXED} points, not {npoints}")
    return rh_index_bits(<size_t>npoints)


cdef tuple _padded_arrays(Py_ssize_t n):
    return np.empty(n + RH_PAD, dtype=np.uint32), np.empty(n + RH_PAD, dtype=np.int32)


cdef object _readonly(object arr):
    arr.flags.writeable = False
    return arr


cdef class RingTable:
    """A built ring: sorted points, their owners, the bucket index and the node names.

    ``RingTable(points, owners, nodes, algo, seed, rule=RULE_GE)`` takes the
    ring's points sorted ascending (equal points in owner order) and each
    point's owner, an index into ``nodes`` (every value in range), unpadded;
    it checks them, then pads and indexes them itself (rh_ring.h).
    :meth:`from_nodes` builds one from node names and :meth:`with_node` /
    :meth:`without_node` derive one with a node's points added or removed
    (patching the index, or rebuilding it when its size changes). Immutable,
    so any number of threads may search one table at once without locking.
    """

    cdef readonly object points
    cdef readonly object owners
    cdef readonly object index
    cdef readonly tuple nodes
    cdef readonly int algo
    cdef readonly uint32_t seed
    cdef readonly int rule
    cdef object _pp, _op
    cdef rh_ring ring
    cdef Py_ssize_t n

    def __init__(self, points, owners, tuple nodes not None, int algo, uint32_t seed,
                 int rule=RH_RULE_GE):
        cdef const uint32_t[::1] p = np.ascontiguousarray(points, dtype=np.uint32)
        cdef const int32_t[::1] o = np.ascontiguousarray(owners, dtype=np.int32)
        cdef Py_ssize_t i, n = p.shape[0], nnodes = len(nodes)
        cdef Py_ssize_t bad = -1
        if o.shape[0] != n:
            raise ValueError(f"a ring needs one owner per point: {n} points, {o.shape[0]} owners")
        if n < 1 or n > MAX_INDEXED:
            raise ValueError(f"a RingTable holds 1 to {MAX_INDEXED} points, not {n}")
        _check_algo_rule(algo, rule)
        with nogil:
            for i in range(n):
                if o[i] < 0 or o[i] >= nnodes:
                    bad = i
                    break
                if i and (p[i] < p[i - 1] or (p[i] == p[i - 1] and o[i] < o[i - 1])):
                    bad = i
                    break
        if bad >= 0:
            if o[bad] < 0 or o[bad] >= nnodes:
                raise ValueError(f"ring owners do not index the {nnodes} nodes "
                                 f"(owner {o[bad]} at position {bad})")
            if p[bad] < p[bad - 1]:
                raise ValueError(f"ring points are not sorted (position {bad})")
            raise ValueError(f"equal ring points are not ordered by node name (position {bad})")
        pp, op = _padded_arrays(n)
        pp[:n] = p
        op[:n] = o
        cdef uint32_t[::1] pw = pp
        cdef int32_t[::1] ow = op
        rh_ring_pad(&pw[0], &ow[0], <size_t>n)
        self._setup(pp, op, nodes, algo, seed, rule, None)

    cdef _setup(self, pp, op, tuple nodes, int algo, uint32_t seed, int rule, index):
        """Adopt padded arrays (n >= 1 points) and an index made for them, or build one."""
        cdef const uint32_t[::1] p = pp
        cdef const int32_t[::1] o = op
        cdef Py_ssize_t n = p.shape[0] - RH_PAD
        cdef unsigned bits = rh_index_bits(<size_t>n)
        cdef uint32_t[::1] ix
        if index is None:
            index = np.empty((<Py_ssize_t>1 << bits) + 1, dtype=np.uint32)
            ix = index
            with nogil:
                rh_index_build(&p[0], <size_t>n, 32 - bits, &ix[0])
        cdef const uint32_t[::1] idx = index
        self.n = n
        self._pp = _readonly(pp)
        self._op = _readonly(op)
        self.index = _readonly(index)
        self.points = pp[:n]
        self.owners = op[:n]
        self.nodes = nodes
        self.algo = algo
        self.seed = seed
        self.rule = rule
        rh_ring_init(&self.ring, &p[0], &o[0], &idx[0], <size_t>n, rule, algo, seed)

    @staticmethod
    def from_nodes(list names not None, const int64_t[::1] counts, tuple nodes not None,
                   int algo, uint32_t seed):
        """The default ring of these nodes: ``counts[r]`` points for node ``r``,
        point ``i`` = H(names[r] + b"#" + decimal(i)) (``names``: UTF-8 bytes in
        owner order, so equal points are ordered by name). ``algo`` is MURMUR3 or
        CRC32; the rule is RULE_GE."""
        cdef Py_ssize_t r, k = 0, total = 0, nn = len(names)
        if algo != RH_MURMUR3 and algo != RH_CRC32:
            raise ValueError("ring points are hashed with murmur3 or crc32")
        if counts.shape[0] != nn or len(nodes) != nn:
            raise ValueError("one count and one node per name")
        for r in range(nn):
            if counts[r] < 0 or type(names[r]) is not bytes:
                raise ValueError("counts are >= 0 and names are bytes")
            total += counts[r]
        if total < 1 or total > MAX_INDEXED:
            raise ValueError(f"a RingTable holds 1 to {MAX_INDEXED} points, not {total}")
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
        pp, op = _padded_arrays(total)
        cdef uint32_t[::1] p = pp
        cdef int32_t[::1] o = op
        with nogil:
            for k in range(total):
                p[k] = <uint32_t>(c[k] >> 32)
                o[k] = <int32_t>(c[k] & 0xFFFFFFFFu)
            rh_ring_pad(&p[0], &o[0], <size_t>total)
        cdef RingTable t = RingTable.__new__(RingTable)
        t._setup(pp, op, nodes, algo, seed, RH_RULE_GE, None)
        return t

    def with_node(self, points, int32_t rank, tuple nodes not None):
        """This ring with a new node's points added as owner ``rank`` (owners >=
        rank move up by one; ``nodes`` are the new names). Nothing is re-hashed."""
        cdef const uint32_t[::1] add = np.sort(np.asarray(points, dtype=np.uint32))
        cdef Py_ssize_t m = add.shape[0], n = self.n + m
        if rank < 0 or rank > len(self.nodes) or len(nodes) != len(self.nodes) + 1:
            raise ValueError("with_node: the rank or the new nodes do not fit this ring")
        if m < 1 or n > MAX_INDEXED:
            raise ValueError(f"with_node: a node has at least one point; a ring at most "
                             f"{MAX_INDEXED}")
        pp, op = _padded_arrays(n)
        cdef uint32_t[::1] p = pp
        cdef int32_t[::1] o = op
        with nogil:
            rh_ring_merge(self.ring.pts, self.ring.own, <size_t>self.n, &add[0], <size_t>m, rank,
                          &p[0], &o[0])
        return self._derived(pp, op, nodes, add, 1)

    def without_node(self, points, int32_t rank, tuple nodes not None):
        """This ring without owner ``rank``'s points (``points``: all of them;
        owners above it move down by one; ``nodes`` are the new names)."""
        cdef const uint32_t[::1] gone = np.sort(np.asarray(points, dtype=np.uint32))
        cdef Py_ssize_t m = gone.shape[0], n = self.n - m
        cdef int rc = 0
        if rank < 0 or rank >= len(self.nodes) or len(nodes) != len(self.nodes) - 1:
            raise ValueError("without_node: the rank or the new nodes do not fit this ring")
        if m < 1 or n < 1:
            raise ValueError("without_node: removes 1 to n - 1 points (an empty ring has no table)")
        pp, op = _padded_arrays(n)
        cdef uint32_t[::1] p = pp
        cdef int32_t[::1] o = op
        with nogil:
            rc = rh_ring_drop(self.ring.pts, self.ring.own, <size_t>self.n, &gone[0], <size_t>m,
                              rank, &p[0], &o[0])
        if rc < 0:
            raise ValueError("without_node: the ring does not hold those points for that owner")
        return self._derived(pp, op, nodes, gone, -1)

    cdef RingTable _derived(self, pp, op, tuple nodes, const uint32_t[::1] delta, int sign):
        """A table over new padded arrays, its index patched from this one's when
        it keeps its size (else built afresh)."""
        cdef Py_ssize_t n = pp.shape[0] - RH_PAD
        cdef const uint32_t[::1] p = pp
        cdef const uint32_t[::1] old = self.index
        cdef uint32_t[::1] ix
        cdef int rc = 0
        index = None
        if rh_index_bits(<size_t>n) == 32 - self.ring.shift:
            index = np.empty(old.shape[0], dtype=np.uint32)
            ix = index
            with nogil:
                rc = rh_index_patch(&old[0], self.ring.shift, &delta[0], <size_t>delta.shape[0],
                                    sign, &p[0], <size_t>n, &ix[0])
            if rc < 0:  # not reachable from with_node/without_node; kept as a guard
                raise ValueError("the point counts do not fit the old index")
        cdef RingTable t = RingTable.__new__(RingTable)
        t._setup(pp, op, nodes, self.algo, self.seed, self.rule, index)
        return t

    @property
    def shift(self):
        """32 - bits of the bucket index."""
        return self.ring.shift

    @property
    def nbytes(self):
        """Bytes held by the padded points and owners and the index."""
        return self._pp.nbytes + self._op.nbytes + self.index.nbytes

    def get(self, key):
        """The name of the node that owns one key."""
        cdef uint32_t h
        _hash_key(key, self.algo, self.seed, &h)
        return self.nodes[rh_owner(&self.ring, h)]

    def get_nodes(self, key, Py_ssize_t want):
        """The names of the first ``want`` (>= 1) distinct owners clockwise from one
        key, at most one per node; fewer only where a node owns no point."""
        cdef uint32_t h
        cdef int32_t small[RH_WALK_SMALL]
        cdef Py_ssize_t i, got, nnodes = len(self.nodes)
        if want < 1:
            raise ValueError(f"want must be >= 1, got {want}")
        _hash_key(key, self.algo, self.seed, &h)
        if want > nnodes:
            want = nnodes
        if want <= RH_WALK_SMALL:
            got = <Py_ssize_t>rh_walk_small(&self.ring, rh_find(&self.ring, h), <size_t>want, small)
            names = PyList_New(got)
            for i in range(got):
                name = <object>PyTuple_GET_ITEM(self.nodes, small[i])
                Py_INCREF(name)
                PyList_SET_ITEM(names, i, name)
            return names
        return [self.nodes[o] for o in self.replicas(np.array([h], dtype=np.uint32), want)[0]
                if o >= 0]

    def search(self, const uint32_t[::1] hashes, out=None):
        """Owners of a batch of key hashes, as int32."""
        cdef Py_ssize_t m = hashes.shape[0]
        out = _result(m, out)
        if m == 0:
            return out
        cdef int32_t[::1] o = out
        with nogil:
            rh_search(&self.ring, &hashes[0], <size_t>m, &o[0])
        return out

    def lookup_u64(self, const uint64_t[::1] keys, out=None):
        """Owners of int keys given as 64-bit two's complement bits."""
        cdef Py_ssize_t m = keys.shape[0]
        out = _result(m, out)
        if m == 0:
            return out
        cdef int32_t[::1] o = out
        with nogil:
            rh_lookup_u64(&self.ring, &keys[0], <size_t>m, &o[0])
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
        cdef uint64_t wide[RH_BLOCK]
        cdef uint32_t hb[RH_CHUNK]
        cdef Py_ssize_t chunk = 0
        start = 0
        with nogil:
            while start < m:  # blocks widened and hashed into a chunk, then searched
                end = min(start + RH_BLOCK, m)
                for i in range(start, end):
                    wide[i - start] = <uint64_t><int64_t>keys[i]
                rh_hash_u64_block(self.algo, wide, <size_t>(end - start), self.seed,
                                  &hb[start - chunk])
                start = end
                if start - chunk == RH_CHUNK or start == m:
                    rh_search(&self.ring, hb, <size_t>(start - chunk), &o[chunk])
                    chunk = start
        return out

    def lookup_fixed_bytes(self, const uint8_t[::1] raw, Py_ssize_t itemsize, out=None):
        """Owners of the items of a numpy ``S`` array (a chunk hashed, then searched)."""
        cdef Py_ssize_t m = raw.shape[0] // itemsize if itemsize else 0
        out = _result(m, out)
        if m == 0:
            return out
        cdef int32_t[::1] o = out
        with nogil:
            rh_lookup_fixed(&self.ring, &raw[0], <size_t>itemsize, <size_t>m, &o[0])
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
        cdef uint32_t *stamp = NULL
        cdef uint32_t gen = 0
        cdef Py_ssize_t got
        # Stamps, not rh_walk_small's scan: measured faster for batches at every
        # want >= 2 (the stamp array stays in cache across keys).
        stamp = <uint32_t *>calloc(nnodes, sizeof(uint32_t))
        if stamp == NULL:
            raise MemoryError()
        try:
            with nogil:
                for i in range(m):
                    gen += 1
                    if gen == 0:  # wrapped after 2**32 keys: forget old stamps
                        memset(stamp, 0, nnodes * sizeof(uint32_t))
                        gen = 1
                    got = <Py_ssize_t>rh_walk_stamped(&self.ring, rh_find(&self.ring, hashes[i]),
                                                      <size_t>want, stamp, gen, &o[i, 0])
                    while got < want:  # only where a node owns no point (some presets)
                        o[i, got] = -1
                        got += 1
        finally:
            free(stamp)
        return out


cdef int _check_algo_rule(int algo, int rule) except -1:
    cdef int base = algo & ~(RH_AVALANCHE | RH_UNSIGNED_CHAR | RH_TAG_MASK)
    if not 0 <= base < RH_NALGOS:
        raise ValueError(f"unknown hash id {algo}")
    if algo & RH_UNSIGNED_CHAR and not RH_CHAR_HASH(base):
        raise ValueError(f"hash id {base} does not read key bytes as char: no UNSIGNED_CHAR")
    if algo & RH_TAG_MASK and (
        base == RH_MURMUR3 or not algo & RH_HASH_TAG or not (algo >> 12) & 0xff
        or not (algo >> 20) & 0xff
    ):
        raise ValueError(f"hash id {algo}: a hash tag is for the proxies' hashes, with two bytes")
    if rule != RH_RULE_GE and rule != RH_RULE_GT and rule != RH_RULE_NEAREST:
        raise ValueError(f"unknown search rule {rule}")
    return 0


cdef object _result(Py_ssize_t m, object out):
    """The int32 array a batch method writes m owners into: a new one, or ``out``
    (checked by the caller, ``ringhash.ring``, to be a writeable C-contiguous
    int32 array that does not overlap the keys)."""
    if out is None:
        return np.empty(m, dtype=np.int32)
    if out.ndim != 1 or out.shape[0] != m:
        raise ValueError(f"out must have {m} elements")
    return out


cdef Py_ssize_t _assign_one(RingTable t, uint32_t h, const int64_t *caps,
                            int64_t *counts) noexcept nogil:
    """The first owner clockwise from h's point with count below its cap, or -1."""
    cdef Py_ssize_t pos = <Py_ssize_t>rh_find(&t.ring, h), step
    cdef int32_t o
    if pos == t.n:
        pos = 0
    for step in range(t.n):
        o = t.ring.own[pos]
        if counts[o] < caps[o]:
            counts[o] += 1
            return o
        pos += 1
        if pos == t.n:
            pos = 0
    return -1


cdef int _lookup_seq(RingTable t, _seq_t seq, int32_t *out, Py_ssize_t *at) except -1:
    """Hash a block of keys, then search the block (as the array paths do): the
    searches are independent loads, which the CPU overlaps on rings past the caches."""
    cdef Py_ssize_t i, start = 0, m, n = len(seq)
    cdef uint32_t hb[RH_BLOCK]
    while start < n:
        m = min(<Py_ssize_t>RH_BLOCK, n - start)
        for i in range(m):
            at[0] = start + i
            if start + i >= len(seq):  # a key's __index__ may run code that shrinks a list
                raise RuntimeError("the key list changed size while it was hashed")
            _hash_key(seq[start + i], t.algo, t.seed, &hb[i])
        rh_search(&t.ring, hb, <size_t>m, &out[start])
        start += m
    return 0


# ---------------------------------------------------------------- presets

def ketama_points(bytes addr not None, Py_ssize_t digests):
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


def md5(bytes data not None):
    """The MD5 digest (16 bytes); exposed so the tests can check it against hashlib."""
    cdef unsigned char d[16]
    rh_md5(PyBytes_AS_STRING(data), <size_t>PyBytes_GET_SIZE(data), d)
    return bytes(d[:16])


# ---------------------------------------------------------------- columns

include "_columns.pxi"

# ---------------------------------------------------------------- other algorithms

include "_algos.pxi"
