# Included by _core.pyx: key columns read in place (Arrow C Data Interface
# capsules and numpy StringDType arrays). The C side (rh_column.[ch]) reads
# the buffers; this file owns the producers' structs (moved out of their
# capsules, released in __dealloc__), the schema checks and the block loops
# that hand hashes to a RingTable.

cdef extern from "Python.h":
    void *PyCapsule_GetPointer(object capsule, const char *name) except? NULL

cdef extern from "rh_column.h" nogil:
    cdef struct ArrowSchema:
        const char *format
        const char *name
        int64_t n_children
        ArrowSchema **children
        ArrowSchema *dictionary
        void (*release)(ArrowSchema *)
    cdef struct ArrowArray:
        int64_t length
        int64_t null_count
        int64_t offset
        int64_t n_children
        ArrowArray **children
        ArrowArray *dictionary
        void (*release)(ArrowArray *)
    cdef struct ArrowArrayStream:
        int (*get_schema)(ArrowArrayStream *, ArrowSchema *)
        int (*get_next)(ArrowArrayStream *, ArrowArray *)
        const char *(*get_last_error)(ArrowArrayStream *)
        void (*release)(ArrowArrayStream *)
    ctypedef struct rh_col:
        int kind
        int width
        int64_t length
        int64_t offset
        const uint8_t *validity
        const void *values
    enum:
        RH_COL_INT
    int rh_col_init(rh_col *c, const char *format, const ArrowArray *a, char *err, size_t errlen)
    const char *rh_arrow_type_name(const char *format)
    int rh_col_valid(const rh_col *c, int64_t i)
    int64_t rh_col_first_null(const rh_col *c, int64_t start, int64_t n)
    void rh_col_fill_nulls(const rh_col *c, int64_t start, int64_t n, uint32_t *out,
                           uint32_t fill)
    int64_t rh_col_hash(const rh_col *c, int algo, uint32_t seed, int64_t start, int64_t n,
                        uint32_t *out)
    int64_t rh_col_lookup(const rh_col *c, const rh_ring *r, int64_t start, int64_t n,
                          int32_t *out)
    void rh_col_u64(const rh_col *c, int64_t start, int64_t n, uint64_t *out)
    int64_t rh_col_codes(const rh_col *c, int64_t start, int64_t n, int64_t ndict, int64_t *out)
    int64_t rh_col_gather(const rh_col *c, int64_t start, int64_t n, const int32_t *values,
                          int64_t nvalues, const uint8_t *nullv, int32_t fill, int32_t *out)
    void rh_partition(const int32_t *owner, int64_t n, int32_t nowners, int64_t *order,
                      int64_t *offsets)

cdef extern from "numpy/ndarraytypes.h" nogil:
    ctypedef struct npy_packed_static_string:
        pass
    ctypedef struct npy_static_string:
        size_t size
        const char *buf
    ctypedef struct npy_string_allocator:
        pass
    ctypedef struct PyArray_StringDTypeObject:
        void *na_object
        npy_static_string default_string

cdef extern from "numpy/arrayobject.h" nogil:
    npy_string_allocator *NpyString_acquire_allocator(const PyArray_StringDTypeObject *descr)
    void NpyString_release_allocator(npy_string_allocator *allocator)
    int NpyString_load(npy_string_allocator *allocator, const npy_packed_static_string *packed,
                       npy_static_string *unpacked)


cdef struct _chunk:
    rh_col col    # the values, or a dictionary chunk's codes
    rh_col dict   # a dictionary chunk's dictionary
    bint is_dict


cdef str _type_name(const char *fmt):
    cdef const char *name = rh_arrow_type_name(fmt)
    return name.decode("ascii") if name != NULL else f"format {fmt.decode('utf-8', 'replace')!r}"


cdef bint _key_format(const char *fmt):
    f = fmt.decode("utf-8", "replace")
    return (f in ("c", "C", "s", "S", "i", "I", "l", "L", "u", "U", "vu", "z", "Z", "vz")
            or f.startswith("w:"))


# Errors found while reading rows (kept as codes so the loops run without the GIL).
cdef enum:
    _BAD_SPAN = 1   # offsets going backwards, a view out of its buffer
    _BAD_CODE = 2   # a dictionary code outside the dictionary
    _BAD_STRING = 3 # numpy could not unpack a StringDType item


cdef class Column:
    """A batch of keys read in place: one Arrow array or stream (any number of
    chunks) of a key type, or a one-dimensional numpy StringDType array.

    Owns what it read: the Arrow structs are moved out of their capsules and
    released when the column is freed, so the producer's buffers stay alive
    exactly as long as the column. Immutable; any number of threads may read it.
    """

    cdef ArrowSchema schema
    cdef ArrowSchema *keys  # the schema of the keys: self.schema, or a table's one column
    cdef ArrowArray *arrays
    cdef _chunk *chunks
    cdef Py_ssize_t nchunks
    #: Number of keys.
    cdef readonly int64_t length
    #: The key type, as Arrow names it ("utf8", "dictionary<int8, large_utf8>",
    #: ...) or "numpy StringDType".
    cdef readonly str type
    cdef cnp.ndarray strings
    cdef bint string_nulls

    def __dealloc__(self):
        cdef Py_ssize_t i
        for i in range(self.nchunks):
            if self.arrays[i].release != NULL:
                self.arrays[i].release(&self.arrays[i])
        free(self.arrays)
        free(self.chunks)
        if self.schema.release != NULL:
            self.schema.release(&self.schema)

    @staticmethod
    def from_arrow(obj):
        """Read an object exporting ``__arrow_c_array__`` or ``__arrow_c_stream__``."""
        cdef Column col = Column.__new__(Column)
        cdef ArrowSchema *s
        cdef ArrowArray *a
        if hasattr(obj, "__arrow_c_array__"):
            schema_cap, array_cap = obj.__arrow_c_array__()
            s = <ArrowSchema *>PyCapsule_GetPointer(schema_cap, "arrow_schema")
            a = <ArrowArray *>PyCapsule_GetPointer(array_cap, "arrow_array")
            if s.release == NULL:
                raise ValueError("the Arrow schema capsule was already released")
            col.schema = s[0]  # moved: the capsule's destructor now releases nothing
            s.release = NULL
            col._check_schema()
            col._add(a)
        else:
            col._read_stream(obj.__arrow_c_stream__())
        return col

    @staticmethod
    def from_strings(cnp.ndarray arr not None):
        """Read a one-dimensional numpy StringDType array (kept alive, not copied)."""
        cdef Column col = Column.__new__(Column)
        if arr.ndim != 1:
            raise ValueError("a StringDType column must be one-dimensional")
        col.strings = arr
        col.length = arr.shape[0]
        col.type = "numpy StringDType"
        col.string_nulls = getattr(arr.dtype, "na_object", _NO_NA) is not _NO_NA
        return col

    cdef _read_stream(self, capsule):
        cdef ArrowArrayStream *p = <ArrowArrayStream *>PyCapsule_GetPointer(
            capsule, "arrow_array_stream")
        cdef ArrowArrayStream stream
        cdef ArrowArray a
        if p.release == NULL:
            raise ValueError("the Arrow stream capsule was already released")
        stream = p[0]
        p.release = NULL
        try:
            if stream.get_schema(&stream, &self.schema) != 0:
                raise ValueError(f"the Arrow stream failed: {self._stream_error(&stream)}")
            self._check_schema()
            while True:
                a.release = NULL
                if stream.get_next(&stream, &a) != 0:
                    raise ValueError(f"the Arrow stream failed: {self._stream_error(&stream)}")
                if a.release == NULL:  # the end of the stream
                    break
                self._add(&a)
        finally:
            stream.release(&stream)

    cdef str _stream_error(self, ArrowArrayStream *stream):
        cdef const char *msg = stream.get_last_error(stream)
        return msg.decode("utf-8", "replace") if msg != NULL else "no message"

    cdef _check_schema(self):
        self.keys = &self.schema
        if self.schema.format == NULL:
            raise ValueError("the Arrow schema has no format")
        if self.schema.format.decode("utf-8", "replace") == "+s":  # a table (record batches)
            if self.schema.n_children != 1 or self.schema.children == NULL:
                raise TypeError(f"a table of {self.schema.n_children} columns: pass one column "
                                "of keys")
            self.keys = self.schema.children[0]
        cdef const char *fmt = self.keys.format
        cdef ArrowSchema *d = self.keys.dictionary
        if fmt == NULL:
            raise ValueError("the Arrow schema has no format")
        if d != NULL:
            if d.format == NULL or not _key_format(d.format):
                raise TypeError(f"keys of Arrow type dictionary<{_type_name(fmt)}, "
                                f"{_type_name(d.format) if d.format != NULL else '?'}> cannot be "
                                "hashed: expected integers, strings or binary (convert explicitly)")
            self.type = f"dictionary<{_type_name(fmt)}, {_type_name(d.format)}>"
            if fmt.decode("utf-8", "replace") not in ("c", "C", "s", "S", "i", "I", "l", "L"):
                raise ValueError(f"dictionary indices of Arrow type {_type_name(fmt)}")
        elif not _key_format(fmt):
            raise TypeError(f"keys of Arrow type {_type_name(fmt)} cannot be hashed: expected "
                            "integers, strings or binary (convert explicitly)")
        else:
            self.type = _type_name(fmt)

    cdef _add(self, ArrowArray *src):
        """Move one array into the column (it is released with the column)."""
        cdef char err[200]
        cdef ArrowArray *arrays = <ArrowArray *>realloc(
            self.arrays, <size_t>(self.nchunks + 1) * sizeof(ArrowArray))
        if arrays == NULL:
            raise MemoryError()
        self.arrays = arrays
        cdef _chunk *chunks = <_chunk *>realloc(
            self.chunks, <size_t>(self.nchunks + 1) * sizeof(_chunk))
        if chunks == NULL:
            raise MemoryError()
        self.chunks = chunks
        if src.release == NULL:
            raise ValueError("the Arrow array was already released")
        arrays[self.nchunks] = src[0]
        src.release = NULL
        cdef ArrowArray *a = &arrays[self.nchunks]
        cdef ArrowArray *k = a
        cdef _chunk *c = &chunks[self.nchunks]
        self.nchunks += 1
        memset(c, 0, sizeof(_chunk))
        if self.keys != &self.schema:  # a table's one column
            if a.release == NULL or a.n_children != 1 or a.children == NULL:
                raise ValueError("bad Arrow array: a table without its one column")
            if a.null_count != 0 and a.null_count != -1 or a.offset != 0:
                raise ValueError("bad Arrow array: a table with null or sliced rows")
            k = a.children[0]
            if k.length < a.length:
                raise ValueError("bad Arrow array: a column shorter than its table")
        if rh_col_init(&c.col, self.keys.format, k, err, sizeof(err)) != 0:
            raise ValueError(f"bad Arrow array: {err.decode('utf-8', 'replace')}")
        c.col.length = a.length
        if self.keys.dictionary != NULL:
            c.is_dict = True
            if k.dictionary == NULL:
                raise ValueError("bad Arrow array: a dictionary array without its dictionary")
            if rh_col_init(&c.dict, self.keys.dictionary.format, k.dictionary, err,
                           sizeof(err)) != 0:
                raise ValueError(f"bad Arrow dictionary: {err.decode('utf-8', 'replace')}")
        self.length += a.length

    def __len__(self):
        return self.length

    def first_null(self):
        """The position of the first null key, or -1."""
        cdef Py_ssize_t k
        cdef int64_t row0 = 0, p
        cdef npy_static_string s
        cdef npy_string_allocator *alloc
        cdef char *data
        cdef Py_ssize_t i, stride
        if self.strings is not None:
            if not self.string_nulls:
                return -1
            data = <char *>cnp.PyArray_DATA(self.strings)
            stride = cnp.PyArray_STRIDE(self.strings, 0)
            alloc = NpyString_acquire_allocator(
                <PyArray_StringDTypeObject *><void *>cnp.PyArray_DESCR(self.strings))
            p = -1
            with nogil:
                for i in range(self.length):
                    if NpyString_load(alloc, <npy_packed_static_string *>(data + i * stride),
                                      &s) == 1:
                        p = i
                        break
            NpyString_release_allocator(alloc)
            return p
        for k in range(self.nchunks):
            p = _chunk_first_null(&self.chunks[k])
            if p >= 0:
                return row0 + p
            row0 += self.chunks[k].col.length
        return -1

    def null_mask(self):
        """A bool array, True where a key is null (all False if none can be)."""
        cdef Py_ssize_t k
        cdef int64_t row0 = 0, i, start, m
        cdef int64_t codes[RH_BLOCK]
        cdef _chunk *c
        mask = np.zeros(self.length, dtype=np.bool_)
        if self.strings is not None:
            if self.string_nulls:
                mask[:] = [x is self.strings.dtype.na_object or
                           (isinstance(x, float) and x != x) for x in self.strings.tolist()]
            return mask
        cdef uint8_t[::1] v = mask.view(np.uint8)
        for k in range(self.nchunks):
            c = &self.chunks[k]
            with nogil:
                if not c.is_dict:
                    if c.col.validity != NULL:
                        for i in range(c.col.length):
                            v[row0 + i] = not rh_col_valid(&c.col, i)
                else:
                    start = 0
                    while start < c.col.length:
                        m = min(<int64_t>RH_BLOCK, c.col.length - start)
                        rh_col_codes(&c.col, start, m, c.dict.length, codes)
                        for i in range(m):
                            v[row0 + start + i] = codes[i] < 0 or (
                                codes[i] < c.dict.length and not rh_col_valid(&c.dict, codes[i]))
                        start += m
            row0 += c.col.length
        return mask

    cdef int fill(self, RingTable t, int algo, uint32_t seed, void *out, bint nulls,
                  int32_t null_owner) except -1:
        """Hashes (t is None: out is uint32[length]) or owners (out is int32[length])
        of every key. Null keys get null_owner if nulls, else must not exist (the
        caller checked first_null)."""
        cdef Py_ssize_t k
        cdef int64_t row0 = 0, bad = -1
        cdef int why = 0
        cdef const rh_ring *ring = &t.ring if t is not None else NULL
        if self.strings is not None:
            return self._fill_strings(ring, algo, seed, out, null_owner)
        for k in range(self.nchunks):
            with nogil:
                if self.chunks[k].is_dict:
                    why = _fill_dict(&self.chunks[k], ring, algo, seed, row0, out, nulls,
                                     null_owner, &bad)
                else:
                    why = _fill_plain(&self.chunks[k].col, ring, algo, seed, row0, out, nulls,
                                      null_owner, &bad)
            if why == -1:
                raise MemoryError()
            if why:
                self._raise_bad(why, bad)
            row0 += self.chunks[k].col.length
        return 0

    cdef int _fill_strings(self, const rh_ring *ring, int algo, uint32_t seed, void *out,
                           int32_t null_owner) except -1:
        """StringDType items, a block at a time: unpacked (under numpy's allocator
        lock) into spans and hashed like Arrow strings; for a lookup, into a chunk
        of hashes that is then searched (rh_ring.h: RH_CHUNK)."""
        cdef char *data = <char *>cnp.PyArray_DATA(self.strings)
        cdef Py_ssize_t stride = cnp.PyArray_STRIDE(self.strings, 0)
        cdef PyArray_StringDTypeObject *descr = <PyArray_StringDTypeObject *><void *>cnp.PyArray_DESCR(
            self.strings)
        cdef npy_string_allocator *alloc = NpyString_acquire_allocator(descr)
        cdef npy_static_string s
        cdef const unsigned char *ptr[RH_BLOCK]
        cdef uint32_t len[RH_BLOCK]
        cdef uint32_t hb[RH_CHUNK]
        cdef uint8_t isnull[RH_CHUNK]
        cdef int32_t *o = <int32_t *>out
        cdef uint32_t *h
        cdef int64_t start = 0, chunk = 0, m, i, bad = -1
        cdef int rc
        cdef bint na = self.string_nulls
        with nogil:
            while start < self.length and bad < 0:
                # blocks of a chunk: RH_CHUNK is a multiple of RH_BLOCK
                m = min(<int64_t>RH_BLOCK, self.length - start)
                h = <uint32_t *>out + start if ring == NULL else &hb[start - chunk]
                for i in range(m):
                    rc = NpyString_load(alloc, <npy_packed_static_string *>(
                        data + (start + i) * stride), &s)
                    isnull[start - chunk + i] = rc == 1 and na
                    if rc == 1 and not na:  # unset: numpy's default string
                        s = descr.default_string
                    if rc < 0 or (s.size >> 32) != 0:  # a key of 4 GiB or more
                        bad = start + i
                        break
                    if isnull[start - chunk + i] or s.buf == NULL:
                        ptr[i] = _EMPTY
                        len[i] = 0
                    else:
                        ptr[i] = <const unsigned char *>s.buf
                        len[i] = <uint32_t>s.size
                if bad >= 0:
                    break
                rh_hash_spans(algo, ptr, len, <size_t>m, 0, seed, h)
                start += m
                if ring != NULL and (start - chunk == RH_CHUNK or start == self.length):
                    rh_search(ring, hb, <size_t>(start - chunk), &o[chunk])
                    if na:
                        for i in range(start - chunk):
                            if isnull[i]:
                                o[chunk + i] = null_owner
                    chunk = start
                elif ring == NULL:
                    chunk = start
        NpyString_release_allocator(alloc)
        if bad >= 0:
            self._raise_bad(_BAD_STRING, bad)
        return 0

    cdef _raise_bad(self, int why, int64_t row):
        if why == _BAD_SPAN:
            raise ValueError(f"bad Arrow array: the offsets or view of keys[{row}] lie outside "
                             "its buffers")
        if why == _BAD_CODE:
            raise ValueError(f"bad Arrow array: the dictionary code of keys[{row}] lies outside "
                             "the dictionary")
        raise ValueError(f"numpy could not read the string keys[{row}]")


cdef object _NO_NA = object()
cdef unsigned char _EMPTY[1]  # where an empty or null key points


cdef int64_t _chunk_first_null(_chunk *c) noexcept nogil:
    cdef int64_t start = 0, m, i, d_null
    cdef int64_t codes[RH_BLOCK]
    if not c.is_dict:
        return rh_col_first_null(&c.col, 0, c.col.length)
    if rh_col_first_null(&c.dict, 0, c.dict.length) < 0:
        return rh_col_first_null(&c.col, 0, c.col.length)
    while start < c.col.length:  # a code may point at a null dictionary value
        m = min(<int64_t>RH_BLOCK, c.col.length - start)
        rh_col_codes(&c.col, start, m, c.dict.length, codes)  # bad codes: reported by fill
        for i in range(m):
            if codes[i] < 0 or (codes[i] < c.dict.length and not rh_col_valid(&c.dict, codes[i])):
                return start + i
        start += m
    return -1


cdef int _fill_plain(const rh_col *c, const rh_ring *ring, int algo, uint32_t seed, int64_t row0,
                     void *out, bint nulls, int32_t null_owner, int64_t *bad) noexcept nogil:
    cdef int32_t *o = <int32_t *>out + row0
    cdef int64_t n = c.length
    if ring == NULL:
        bad[0] = rh_col_hash(c, algo, seed, 0, n, <uint32_t *>out + row0)
    elif c.kind == RH_COL_INT and c.width == 8 and c.validity == NULL:
        if n:  # the numpy uint64 path, on the producer's buffer
            rh_lookup_u64(ring, <const uint64_t *>c.values + c.offset, <size_t>n, o)
    else:
        bad[0] = rh_col_lookup(c, ring, 0, n, o)
    if bad[0] >= 0:
        bad[0] += row0
        return _BAD_SPAN
    if ring != NULL and nulls:
        rh_col_fill_nulls(c, 0, n, <uint32_t *>o, <uint32_t>null_owner)
    return 0


cdef int _fill_dict(const _chunk *c, const rh_ring *ring, int algo, uint32_t seed, int64_t row0,
                    void *out, bint nulls, int32_t null_owner, int64_t *bad) noexcept nogil:
    """Hash each dictionary value once (and search it, for owners), then gather by code."""
    cdef int64_t nd = c.dict.length, start = 0, m, i, k, n = c.col.length
    cdef int64_t codes[RH_BLOCK]
    cdef uint32_t *hashes = <uint32_t *>malloc(<size_t>(nd if nd else 1) * sizeof(uint32_t))
    cdef int32_t *vals = <int32_t *>malloc(<size_t>(nd if nd else 1) * sizeof(int32_t))
    cdef int32_t *o = <int32_t *>out + row0
    cdef uint8_t *nullv = NULL
    cdef int why = 0
    if hashes == NULL or vals == NULL:
        free(hashes)
        free(vals)
        return -1
    bad[0] = rh_col_hash(&c.dict, algo, seed, 0, nd, hashes)
    if bad[0] >= 0:  # name the first row that uses the bad value, if any
        k = bad[0]
        bad[0] = row0
        why = _BAD_SPAN
        while start < n:
            m = min(<int64_t>RH_BLOCK, n - start)
            rh_col_codes(&c.col, start, m, nd, codes)
            for i in range(m):
                if codes[i] == k:
                    bad[0] = row0 + start + i
                    start = n
                    break
            start += m
    else:
        if ring != NULL and nd:
            rh_search(ring, hashes, <size_t>nd, vals)
        elif nd:
            memcpy(vals, hashes, <size_t>nd * sizeof(uint32_t))
        nullv = NULL
        if c.dict.validity != NULL and nd:  # entries that are null themselves
            nullv = <uint8_t *>malloc(<size_t>nd)
            if nullv == NULL:
                free(hashes)
                free(vals)
                return -1
            for k in range(nd):
                nullv[k] = not rh_col_valid(&c.dict, k)
        # null rows get null_owner (with nulls) or 0 (unreachable: the caller
        # checked first_null); in one pass per index type, in C
        bad[0] = rh_col_gather(&c.col, 0, n, vals, nd, nullv, null_owner if nulls else 0, o)
        if bad[0] >= 0:
            bad[0] += row0
            why = _BAD_CODE
        free(nullv)
    free(hashes)
    free(vals)
    return why


def hash_column(Column col not None, int algo, uint32_t seed):
    """The hashes of a column's keys (uint32; nulls must have been ruled out)."""
    out = np.empty(col.length, dtype=np.uint32)
    cdef uint32_t[::1] o = out
    if col.length:
        col.fill(None, algo, seed, &o[0], False, 0)
    return out


def partition(const int32_t[::1] owners, int32_t nowners):
    """(order, offsets) grouping rows by owner (stable), by a counting sort in C."""
    cdef Py_ssize_t i, n = owners.shape[0], bad = -1
    with nogil:
        for i in range(n):
            if owners[i] < 0 or owners[i] >= nowners:
                bad = i
                break
    if bad >= 0:
        i = bad
        raise ValueError(f"owners[{i}] = {owners[i]} is not a node index in [0, {nowners})")
    order = np.empty(n, dtype=np.int64)
    offsets = np.empty(nowners + 1, dtype=np.int64)
    cdef int64_t[::1] ov = order
    cdef int64_t[::1] fv = offsets
    with nogil:
        rh_partition(&owners[0] if n else NULL, n, nowners, &ov[0] if n else NULL, &fv[0])
    return order, offsets


def lookup_column(RingTable t not None, Column col not None, out=None, nulls=None):
    """Owners of a column's keys (int32): null keys get the owner value ``nulls``
    (an int), or, if it is None, must not exist (``ringhash._keys`` checks)."""
    cdef int32_t fill_value = 0 if nulls is None else nulls
    out = _result(col.length, out)
    cdef int32_t[::1] o = out
    if col.length:
        col.fill(t, t.algo, t.seed, &o[0], nulls is not None, fill_value)
    return out
