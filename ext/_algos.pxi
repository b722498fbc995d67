# Included by _core.pyx (after _columns.pxi): the kernels of the other
# algorithms (rh_algos.c) and the 64-bit key of jump hash for every batch kind.

cdef extern from "rh_algos.h" nogil:
    int32_t rh_jump(uint64_t key, int32_t buckets)
    void rh_jump_block(const uint64_t *keys, size_t n, int32_t buckets, int32_t *out)
    double rh_neg_ln_u32(uint32_t h)
    void rh_rendezvous_block(const uint32_t *hashes, size_t n, const uint32_t *seeds,
                             const double *inv_w, size_t nn, int32_t *out)
    int rh_rendezvous_rank_block(const uint32_t *hashes, size_t n, const uint32_t *seeds,
                                 const double *inv_w, size_t nn, size_t want, int32_t *out)
    int rh_maglev_build(const uint32_t *offset, const uint32_t *skip, const double *weight,
                        size_t nn, uint32_t m, int32_t *table)
    void rh_maglev_block(const uint32_t *hashes, size_t n, const int32_t *table, uint32_t m,
                         int32_t *out)
    void rh_maglev_u64(const uint64_t *keys, size_t n, const int32_t *table, uint32_t m,
                       int32_t *out)
    int rh_pymemcache_scores(const unsigned char *key, size_t len, const unsigned char *names,
                             const size_t *name_end, size_t nn, uint32_t *scores)
    int32_t rh_multiprobe(const rh_ring *r, uint32_t h, int k)
    void rh_multiprobe_block(const rh_ring *r, const uint32_t *hashes, size_t n, int k,
                             int32_t *out)

cdef extern from "rh_hash.h" nogil:
    uint64_t rh_murmur3_x64_lo(const void *data, size_t len, uint32_t seed)

cdef extern from "rh_column.h" nogil:
    int64_t rh_col_key64(const rh_col *c, int64_t start, int64_t n, uint64_t *out)


# ---------------------------------------------------------------- 64-bit keys (jump)

cdef int _key64(object k, uint64_t *out) except -1:
    """Jump hash's 64-bit key: an int as itself (two's complement), anything else
    by the encoding rule's bytes, hashed with rh_murmur3_x64_lo."""
    cdef Py_ssize_t size
    cdef const char *data
    cdef Py_buffer view
    if PyUnicode_Check(k):
        data = PyUnicode_AsUTF8AndSize(k, &size)
        out[0] = rh_murmur3_x64_lo(data, <size_t>size, 0)
    elif PyBytes_Check(k):
        out[0] = rh_murmur3_x64_lo(PyBytes_AS_STRING(k), <size_t>PyBytes_GET_SIZE(k), 0)
    elif PyBool_Check(k):
        raise TypeError(f"bool is not a valid key (expected {_KEY_TYPES}); "
                        "convert it explicitly, e.g. int(flag)")
    elif PyLong_Check(k):
        _int_bits(k, out)
    elif isinstance(k, _np_integer):
        _int_bits(int(k), out)
    elif PyByteArray_Check(k) or PyMemoryView_Check(k):
        try:
            PyObject_GetBuffer(k, &view, PyBUF_SIMPLE)
        except BufferError:
            raise TypeError(
                "memoryview key must be C-contiguous; copy it with bytes(view) first") from None
        try:
            out[0] = rh_murmur3_x64_lo(view.buf, <size_t>view.len, 0)
        finally:
            PyBuffer_Release(&view)
    else:
        raise TypeError(f"unsupported key type {type(k).__name__!r}: expected {_KEY_TYPES}")
    return 0


def key64(object key):
    """Jump hash's 64-bit key of one key."""
    cdef uint64_t v
    _key64(key, &v)
    return v


def key64_objects(object seq):
    """The 64-bit keys of a list or tuple (uint64)."""
    cdef Py_ssize_t i = 0, n = len(seq)
    out = np.empty(n, dtype=np.uint64)
    if n == 0:
        return out
    cdef uint64_t[::1] o = out
    try:
        for i in range(n):
            if i >= len(seq):
                raise RuntimeError("the key list changed size while it was hashed")
            _key64(seq[i], &o[i])
    except (TypeError, ValueError, OverflowError) as e:
        raise _seq_error(i, e) from None
    return out


def key64_fixed(const uint8_t[::1] raw, Py_ssize_t itemsize):
    """The 64-bit keys of a numpy ``S`` array's items (trailing NULs stripped)."""
    cdef Py_ssize_t i, length, n = raw.shape[0] // itemsize if itemsize else 0
    out = np.empty(n, dtype=np.uint64)
    if n == 0:
        return out
    cdef uint64_t[::1] o = out
    with nogil:
        for i in range(n):
            length = itemsize
            while length > 0 and raw[i * itemsize + length - 1] == 0:
                length -= 1
            o[i] = rh_murmur3_x64_lo(&raw[i * itemsize], <size_t>length, 0)
    return out


def key64_ucs4(const uint32_t[::1] raw, Py_ssize_t nchars):
    """The 64-bit keys of a numpy ``U`` array's items (as UTF-8)."""
    cdef Py_ssize_t i, length, bad = -1, n = raw.shape[0] // nchars if nchars else 0
    cdef ptrdiff_t nbytes
    out = np.empty(n, dtype=np.uint64)
    cdef uint64_t[::1] o = out
    cdef unsigned char *buf = <unsigned char *>malloc(4 * nchars + 1)
    if buf == NULL:
        raise MemoryError()
    try:
        with nogil:
            for i in range(n):
                length = nchars
                while length > 0 and raw[i * nchars + length - 1] == 0:
                    length -= 1
                nbytes = rh_ucs4_to_utf8(&raw[i * nchars], <size_t>length, buf)
                if nbytes < 0:
                    bad = i
                    break
                o[i] = rh_murmur3_x64_lo(buf, <size_t>nbytes, 0)
    finally:
        free(buf)
    if bad >= 0:
        raise ValueError(
            f"keys[{bad}]: str is not encodable as UTF-8 (surrogate or invalid code point)")
    return out


def key64_column(Column col not None):
    """The 64-bit keys of a column (null keys get 0: the caller checks nulls)."""
    cdef Py_ssize_t k
    cdef int64_t row0 = 0, start, m, i, bad = -1, nd
    cdef int64_t codes[RH_BLOCK]
    cdef uint64_t *d = NULL
    cdef _chunk *c
    if col.strings is not None:  # StringDType: through the list path's encoding
        return key64_objects([x if isinstance(x, str) else "" for x in col.strings.tolist()])
    out = np.zeros(col.length, dtype=np.uint64)
    if col.length == 0:
        return out
    cdef uint64_t[::1] o = out
    for k in range(col.nchunks):
        c = &col.chunks[k]
        with nogil:
            if not c.is_dict:
                bad = rh_col_key64(&c.col, 0, c.col.length, &o[row0])
            else:
                nd = c.dict.length
                d = <uint64_t *>malloc(<size_t>(nd if nd else 1) * sizeof(uint64_t))
                if d != NULL:
                    bad = rh_col_key64(&c.dict, 0, nd, d)
                    start = 0
                    while bad < 0 and start < c.col.length:
                        m = min(<int64_t>RH_BLOCK, c.col.length - start)
                        bad = rh_col_codes(&c.col, start, m, nd, codes)
                        for i in range(m):
                            if codes[i] >= 0:
                                o[row0 + start + i] = d[codes[i]]
                        start += m
                    free(d)
        if c.is_dict and d == NULL:
            raise MemoryError()
        if bad >= 0:
            col._raise_bad(_BAD_SPAN, row0 + bad)
        row0 += c.col.length
    return out


# ---------------------------------------------------------------- jump

def jump_one(uint64_t key, int32_t buckets):
    return rh_jump(key, buckets)


def jump_block(const uint64_t[::1] keys, int32_t buckets, out=None):
    """Buckets of 64-bit keys (int32)."""
    cdef Py_ssize_t n = keys.shape[0]
    out = _result(n, out)
    cdef int32_t[::1] o = out
    if n:
        with nogil:
            rh_jump_block(&keys[0], <size_t>n, buckets, &o[0])
    return out


# ---------------------------------------------------------------- rendezvous

def neg_ln_u32(uint32_t h):
    """-ln((h + 0.5) / 2**32) as the rendezvous kernel computes it (for the tests)."""
    return rh_neg_ln_u32(h)


def rendezvous_block(const uint32_t[::1] hashes, const uint32_t[::1] seeds, inv_w, out=None):
    """Owners of key hashes among len(seeds) nodes; inv_w: float64 1/weights, or None."""
    cdef Py_ssize_t n = hashes.shape[0], nn = seeds.shape[0]
    cdef const double[::1] w
    cdef const double *wp = NULL
    if inv_w is not None:
        w = inv_w
        wp = &w[0]
    out = _result(n, out)
    cdef int32_t[::1] o = out
    if n:
        with nogil:
            rh_rendezvous_block(&hashes[0], <size_t>n, &seeds[0], wp, <size_t>nn, &o[0])
    return out


def rendezvous_rank(const uint32_t[::1] hashes, const uint32_t[::1] seeds, inv_w,
                    Py_ssize_t want):
    """The first ``want`` nodes of each key by score: shape (len(hashes), want)."""
    cdef Py_ssize_t n = hashes.shape[0], nn = seeds.shape[0]
    cdef const double[::1] w
    cdef const double *wp = NULL
    cdef int rc = 0
    if want < 1 or want > nn:
        raise ValueError("want must lie in [1, number of nodes]")
    if inv_w is not None:
        w = inv_w
        wp = &w[0]
    out = np.empty((n, want), dtype=np.int32)
    cdef int32_t[:, ::1] o = out
    if n:
        with nogil:
            rc = rh_rendezvous_rank_block(&hashes[0], <size_t>n, &seeds[0], wp, <size_t>nn,
                                          <size_t>want, &o[0, 0])
        if rc != 0:
            raise MemoryError()
    return out


# ---------------------------------------------------------------- maglev

def maglev_build(const uint32_t[::1] offset, const uint32_t[::1] skip,
                 const double[::1] weight, uint32_t m):
    """The lookup table (int32, m entries) of the nodes' permutations and weights."""
    cdef Py_ssize_t nn = offset.shape[0]
    cdef int rc
    table = np.empty(m, dtype=np.int32)
    cdef int32_t[::1] t = table
    if nn == 0 or skip.shape[0] != nn or weight.shape[0] != nn:
        raise ValueError("one offset, skip and weight per node is needed")
    with nogil:
        rc = rh_maglev_build(&offset[0], &skip[0], &weight[0], <size_t>nn, m, &t[0])
    if rc == -2:
        raise MemoryError()
    if rc != 0:
        raise ValueError("no node could take a turn: the weights are too small")
    return table


def maglev_block(const uint32_t[::1] hashes, const int32_t[::1] table, out=None):
    cdef Py_ssize_t n = hashes.shape[0]
    out = _result(n, out)
    cdef int32_t[::1] o = out
    if n:
        with nogil:
            rh_maglev_block(&hashes[0], <size_t>n, &table[0], <uint32_t>table.shape[0], &o[0])
    return out


def maglev_u64(const uint64_t[::1] keys, const int32_t[::1] table, out=None):
    """Owners of int keys (their 64-bit encodings), hashed and looked up a block at a time."""
    cdef Py_ssize_t n = keys.shape[0]
    out = _result(n, out)
    cdef int32_t[::1] o = out
    if n:
        with nogil:
            rh_maglev_u64(&keys[0], <size_t>n, &table[0], <uint32_t>table.shape[0], &o[0])
    return out


# ---------------------------------------------------------------- multi-probe

def multiprobe_one(RingTable t not None, uint32_t h, int k):
    return rh_multiprobe(&t.ring, h, k)


def multiprobe_block(RingTable t not None, const uint32_t[::1] hashes, int k, out=None):
    cdef Py_ssize_t n = hashes.shape[0]
    if t.rule != RH_RULE_GE:
        raise ValueError("multi-probe needs a ring with the >= rule")
    out = _result(n, out)
    cdef int32_t[::1] o = out
    if n:
        with nogil:
            rh_multiprobe_block(&t.ring, &hashes[0], <size_t>n, k, &o[0])
    return out


# ---------------------------------------------------------------- pymemcache

def pymemcache_scores(list keys not None, bytes names not None, const size_t[::1] name_end):
    """Scores (uint32, len(keys) x nodes) of UTF-8 key texts under pymemcache's
    RendezvousHash; ``names`` concatenated, node j ending at ``name_end[j]``."""
    cdef Py_ssize_t i, n = len(keys), nn = name_end.shape[0]
    out = np.empty((n, nn), dtype=np.uint32)
    if n == 0 or nn == 0:
        return out
    cdef uint32_t[:, ::1] o = out
    cdef bytes k
    for i in range(n):
        k = <bytes>keys[i]
        if rh_pymemcache_scores(<const unsigned char *>PyBytes_AS_STRING(k),
                                <size_t>PyBytes_GET_SIZE(k),
                                <const unsigned char *>PyBytes_AS_STRING(names),
                                &name_end[0], <size_t>nn, &o[i, 0]) != 0:
            raise MemoryError()
    return out
