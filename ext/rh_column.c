/* ringhash: key columns read in place (see rh_column.h). */
#include "rh_column.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rh_hash.h"
#include "rh_ring.h"

static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return -1;
}

const char *rh_arrow_type_name(const char *f)
{
    /* whole format strings, then families named by a prefix ("tss:UTC", "d:38,10") */
    static const char *const exact[][2] = {
        {"n", "null"},
        {"b", "bool"},
        {"e", "float16"},
        {"f", "float32"},
        {"g", "float64"},
        {"c", "int8"},
        {"C", "uint8"},
        {"s", "int16"},
        {"S", "uint16"},
        {"i", "int32"},
        {"I", "uint32"},
        {"l", "int64"},
        {"L", "uint64"},
        {"u", "utf8"},
        {"U", "large_utf8"},
        {"vu", "utf8_view"},
        {"z", "binary"},
        {"Z", "large_binary"},
        {"vz", "binary_view"},
        {"tdD", "date32"},
        {"tdm", "date64"},
        {"+l", "list"},
        {"+L", "large_list"},
        {"+vl", "list_view"},
        {"+vL", "large_list_view"},
        {"+s", "struct"},
        {"+m", "map"},
        {"+r", "run_end_encoded"},
    };
    static const char *const prefix[][2] = {
        {"w:", "fixed_size_binary"}, {"+w:", "fixed_size_list"},
        {"d:", "decimal"},           {"tt", "time"},
        {"ts", "timestamp"},         {"tD", "duration"},
        {"ti", "interval"},          {"+u", "union"},
    };
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcmp(f, exact[i][0]) == 0)
            return exact[i][1];
    for (size_t i = 0; i < sizeof prefix / sizeof prefix[0]; i++)
        if (strncmp(f, prefix[i][0], strlen(prefix[i][0])) == 0)
            return prefix[i][1];
    return NULL;
}

int rh_col_init(rh_col *c, const char *format, const struct ArrowArray *a, char *err, size_t errlen)
{
    static const char ints[] = "cCsSiIlL";
    int64_t want = 2;
    memset(c, 0, sizeof *c);
    if (!a->release)
        return fail(err, errlen, "the Arrow array was already released");
    if (a->length < 0 || a->offset < 0 || a->offset > INT64_MAX - a->length - 1)
        return fail(err, errlen, "the Arrow array has a negative length or offset");
    if (a->n_buffers < 0 || (a->n_buffers > 0 && !a->buffers))
        return fail(err, errlen, "the Arrow array has no buffer list");
    c->length = a->length;
    c->offset = a->offset;
    if (format[0] != '\0' && format[1] == '\0' && strchr(ints, format[0])) {
        int k = (int)(strchr(ints, format[0]) - ints);
        c->kind = RH_COL_INT;
        c->width = 1 << (k / 2);
        c->is_signed = (k % 2) == 0;
    } else if (strcmp(format, "u") == 0 || strcmp(format, "z") == 0) {
        c->kind = RH_COL_BIN32;
        want = 3;
    } else if (strcmp(format, "U") == 0 || strcmp(format, "Z") == 0) {
        c->kind = RH_COL_BIN64;
        want = 3;
    } else if (strcmp(format, "vu") == 0 || strcmp(format, "vz") == 0) {
        c->kind = RH_COL_VIEW;
        if (a->n_buffers < 3)
            return fail(err, errlen, "a view array needs at least 3 buffers");
        want = a->n_buffers;
        c->nvbufs = a->n_buffers - 3;
    } else if (strncmp(format, "w:", 2) == 0) {
        char *end;
        long w = strtol(format + 2, &end, 10);
        if (*end != '\0' || w < 0 || w > INT32_MAX)
            return fail(err, errlen, "bad fixed_size_binary width in the Arrow format");
        c->kind = RH_COL_FIXED;
        c->width = (int)w;
    } else {
        return fail(err, errlen, "not a key type");
    }
    if (a->n_buffers != want) {
        snprintf(err, errlen, "the Arrow array has %lld buffers; its type has %lld",
                 (long long)a->n_buffers, (long long)want);
        return -1;
    }
    c->validity = a->null_count == 0 ? NULL : (const uint8_t *)a->buffers[0];
    if (a->null_count > 0 && !c->validity)
        return fail(err, errlen, "the Arrow array has nulls but no validity buffer");
    c->values = a->buffers[1];
    if (c->kind == RH_COL_BIN32 || c->kind == RH_COL_BIN64) {
        c->data = (const uint8_t *)a->buffers[2];
        if (!c->values && a->length > 0)
            return fail(err, errlen, "the Arrow array has no offsets buffer");
        return 0;
    }
    if (!c->values && a->length > 0 && !(c->kind == RH_COL_FIXED && c->width == 0))
        return fail(err, errlen, "the Arrow array has no values buffer");
    if (c->kind == RH_COL_VIEW) {
        c->vbufs = (const uint8_t *const *)(a->buffers + 2);
        c->vsizes = (const int64_t *)a->buffers[a->n_buffers - 1];
        if (c->nvbufs > 0 && !c->vsizes)
            return fail(err, errlen, "the view array has no buffer sizes");
    }
    return 0;
}

/* The 8 bitmap bytes at p as one word, bit k being bit k % 8 of byte k / 8
 * (compilers make this one load on little-endian targets). */
static inline uint64_t load_le64(const uint8_t *p)
{
    uint64_t w = 0;
    for (int k = 7; k >= 0; k--)
        w = w << 8 | p[k];
    return w;
}

/* The number of trailing zero bits of x != 0. */
static inline unsigned ctz64(uint64_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    return (unsigned)__builtin_ctzll(x);
#else
    unsigned k = 0;
    for (; !(x & 1); x >>= 1)
        k++;
    return k;
#endif
}

int64_t rh_col_first_null(const rh_col *c, int64_t start, int64_t n)
{
    if (!c->validity || n <= 0)
        return -1;
    uint64_t bit = (uint64_t)(c->offset + start), end = bit + (uint64_t)n;
    const uint8_t *v = c->validity;
    while (bit < end && (bit & 63)) {
        if (!((v[bit >> 3] >> (bit & 7)) & 1))
            return (int64_t)(bit - (uint64_t)c->offset);
        bit++;
    }
    while (bit + 64 <= end) {
        uint64_t w = load_le64(v + (bit >> 3));
        if (w != UINT64_MAX) /* a null in this word: its lowest clear bit */
            return (int64_t)(bit + ctz64(~w) - (uint64_t)c->offset);
        bit += 64;
    }
    for (; bit < end; bit++)
        if (!((v[bit >> 3] >> (bit & 7)) & 1))
            return (int64_t)(bit - (uint64_t)c->offset);
    return -1;
}

/* The null rows of [start, start + n), one after another, by rh_col_first_null
 * (a word of the bitmap at a time between them). */
#define RH_FOR_NULLS(c, start, n, r)                                                               \
    for (int64_t r = rh_col_first_null(c, start, n); r >= 0;                                       \
         r = rh_col_first_null(c, r + 1, (start) + (n)-r - 1))

void rh_col_fill_nulls(const rh_col *c, int64_t start, int64_t n, uint32_t *out, uint32_t fill)
{
    RH_FOR_NULLS(c, start, n, r)
    out[r - start] = fill;
}

static inline uint64_t int_at(const rh_col *c, int64_t row)
{
    const void *p = c->values;
    switch (c->width * 2 + c->is_signed) {
    case 2: return ((const uint8_t *)p)[row];
    case 3: return (uint64_t)(int64_t)((const int8_t *)p)[row];
    case 4: return ((const uint16_t *)p)[row];
    case 5: return (uint64_t)(int64_t)((const int16_t *)p)[row];
    case 8: return ((const uint32_t *)p)[row];
    case 9: return (uint64_t)(int64_t)((const int32_t *)p)[row];
    case 17: return (uint64_t)((const int64_t *)p)[row];
    default: return ((const uint64_t *)p)[row];
    }
}

/* One loop per type, so that the compiler vectorizes the widening. */
#define RH_WIDEN(T, S)                                                                             \
    do {                                                                                           \
        const T *v = (const T *)c->values + c->offset + start;                                     \
        for (int64_t i = 0; i < n; i++)                                                            \
            out[i] = (uint64_t)(S)v[i];                                                            \
    } while (0)

void rh_col_u64(const rh_col *c, int64_t start, int64_t n, uint64_t *out)
{
    switch (c->width * 2 + c->is_signed) {
    case 2: RH_WIDEN(uint8_t, uint64_t); break;
    case 3: RH_WIDEN(int8_t, int64_t); break;
    case 4: RH_WIDEN(uint16_t, uint64_t); break;
    case 5: RH_WIDEN(int16_t, int64_t); break;
    case 8: RH_WIDEN(uint32_t, uint64_t); break;
    case 9: RH_WIDEN(int32_t, int64_t); break;
    case 17: RH_WIDEN(int64_t, int64_t); break;
    default: RH_WIDEN(uint64_t, uint64_t); break;
    }
    RH_FOR_NULLS(c, start, n, r)
    out[r - start] = 0;
}

int64_t rh_col_codes(const rh_col *c, int64_t start, int64_t n, int64_t ndict, int64_t *out)
{
    int64_t base = c->offset + start;
    for (int64_t i = 0; i < n; i++) {
        if (!rh_col_valid(c, start + i)) {
            out[i] = -1;
            continue;
        }
        uint64_t v = int_at(c, base + i);
        /* unsigned compare: negative codes become huge */
        if (v >= (uint64_t)ndict)
            return start + i;
        out[i] = (int64_t)v;
    }
    return -1;
}

/* Offset `row` of a utf8 / binary column, whichever its width. */
static inline int64_t offset_at(const rh_col *c, int64_t row)
{
    if (c->kind == RH_COL_BIN32)
        return ((const int32_t *)c->values)[row];
    return ((const int64_t *)c->values)[row];
}

/* The bytes of row `row` (absolute: offset included); -1 if the producer lied. */
static inline int span_of(const rh_col *c, int64_t row, const uint8_t **p, size_t *len)
{
    switch (c->kind) {
    case RH_COL_BIN32:
    case RH_COL_BIN64: {
        int64_t s = offset_at(c, row), e = offset_at(c, row + 1);
        if (s < 0 || e < s)
            return -1;
        *p = c->data + s;
        *len = (size_t)(e - s);
        return 0;
    }
    case RH_COL_VIEW: {
        const uint8_t *v = (const uint8_t *)c->values + 16 * row;
        int32_t l, b, off;
        memcpy(&l, v, 4);
        if (l < 0)
            return -1;
        if (l <= 12) {
            *p = v + 4;
        } else {
            memcpy(&b, v + 8, 4);
            memcpy(&off, v + 12, 4);
            if (b < 0 || b >= c->nvbufs || off < 0 || (int64_t)off + l > c->vsizes[b] ||
                !c->vbufs[b])
                return -1;
            *p = c->vbufs[b] + off;
        }
        *len = (size_t)l;
        return 0;
    }
    default: /* RH_COL_FIXED */
        *p = (const uint8_t *)c->values + (size_t)row * (size_t)c->width;
        *len = (size_t)c->width;
        return 0;
    }
}

/* Hash rows [start, start + n) of a variable-length column a block at a time:
 * each block's rows are checked and turned into (pointer, length) spans, which
 * the batch kernel hashes (16 at a time with AVX-512). */
#define RH_SPAN_BLOCK 256

/* One 16-byte view's length, buffer index and offset; whether its value is inline
 * (then the index and offset are bytes of the value, not to be used). */
static inline int read_view(const uint8_t *v, int32_t *l, int32_t *b, int32_t *off)
{
    memcpy(l, v, 4);
    memcpy(b, v + 8, 4);
    memcpy(off, v + 12, 4);
    return *l <= 12;
}

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define RH_VIEWS_X16 1

#define RH_AVX512_VIEWS __attribute__((target("avx2,bmi2,avx512f,avx512bw,avx512vl,avx512cd")))

/* The lengths, buffer indexes and offsets of the 16 views at v, from four 64-byte
 * loads by permutes. */
RH_AVX512_VIEWS static inline void view_fields_x16(const uint8_t *v, __m512i *L, __m512i *B,
                                                   __m512i *O)
{
    const __m512i pick =
        _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
    __m512i z0 = _mm512_loadu_si512(v), z1 = _mm512_loadu_si512(v + 64);
    __m512i z2 = _mm512_loadu_si512(v + 128), z3 = _mm512_loadu_si512(v + 192);
#define RH_FIELD(word)                                                                             \
    _mm512_inserti64x4(                                                                            \
        _mm512_permutex2var_epi32(z0, _mm512_add_epi32(pick, _mm512_set1_epi32(word)), z1),        \
        _mm512_castsi512_si256(                                                                    \
            _mm512_permutex2var_epi32(z2, _mm512_add_epi32(pick, _mm512_set1_epi32(word)), z3)),   \
        1)
    *L = RH_FIELD(0);
    *B = RH_FIELD(2);
    *O = RH_FIELD(3);
#undef RH_FIELD
}

/* view_spans_one_buffer's loop for 16 views at a time with AVX-512, for a
 * buffer under 2 GiB so that offset + length fits 32 bits. Returns a mask of
 * bad rows (0: all good). Measured on 1M polars ids: hash_keys 2.9 -> 1.6 ns
 * per key. */
RH_AVX512_VIEWS static unsigned views_x16(const uint8_t *v, int64_t groups, int32_t b0,
                                          const uint8_t *buf, int64_t size,
                                          const unsigned char **ptr, uint32_t *len)
{
    const __m512i at16 = _mm512_setr_epi64(0, 16, 32, 48, 64, 80, 96, 112);
    const __m512i base = _mm512_set1_epi64((long long)(uintptr_t)buf);
    __mmask16 bad = 0;
    for (int64_t g = 0; g < groups; g++, v += 256, ptr += 16, len += 16) {
        __m512i L, B, O;
        view_fields_x16(v, &L, &B, &O);
        __mmask16 inl = _mm512_cmple_epi32_mask(L, _mm512_set1_epi32(12));
        __mmask16 wrong =
            _mm512_cmpneq_epi32_mask(B, _mm512_set1_epi32(b0)) |
            _mm512_cmplt_epi32_mask(O, _mm512_setzero_si512()) |
            _mm512_cmpgt_epu32_mask(_mm512_add_epi32(O, L), _mm512_set1_epi32((int)size));
        bad |= _mm512_cmplt_epi32_mask(L, _mm512_setzero_si512()) | (__mmask16)(~inl & wrong);
        const __m512i here =
            _mm512_add_epi64(_mm512_set1_epi64((long long)(uintptr_t)(v + 4)), at16);
        __m512i lo = _mm512_add_epi64(base, _mm512_cvtepu32_epi64(_mm512_castsi512_si256(O)));
        __m512i hi = _mm512_add_epi64(base, _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(O, 1)));
        lo = _mm512_mask_blend_epi64((__mmask8)inl, lo, here);
        hi = _mm512_mask_blend_epi64((__mmask8)(inl >> 8), hi,
                                     _mm512_add_epi64(here, _mm512_set1_epi64(128)));
        _mm512_storeu_si512(ptr, lo);
        _mm512_storeu_si512(ptr + 8, hi);
        _mm512_storeu_si512(len, L);
    }
    return bad;
}

/* Whether the 16 * groups views from v all have length l, buffer b and offsets
 * off, off + l, off + 2l, ... (fixed_run's test, 16 views a time). */
RH_AVX512_VIEWS static int views_run_x16(const uint8_t *v, int64_t groups, int32_t l, int32_t b,
                                         int32_t off)
{
    const __m512i L = _mm512_set1_epi32(l), B = _mm512_set1_epi32(b);
    const __m512i lane = _mm512_mullo_epi32(
        L, _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    __m512i O = _mm512_add_epi32(_mm512_set1_epi32(off), lane);
    const __m512i step = _mm512_set1_epi32(16 * l);
    __mmask16 bad = 0;
    for (int64_t g = 0; g < groups; g++, v += 256, O = _mm512_add_epi32(O, step)) {
        __m512i vl, vb, vo;
        view_fields_x16(v, &vl, &vb, &vo);
        bad |= _mm512_cmpneq_epi32_mask(vl, L) | _mm512_cmpneq_epi32_mask(vb, B) |
               _mm512_cmpneq_epi32_mask(vo, O);
    }
    return bad == 0;
}
#endif

/* Views whose out-of-line values all lie in the buffer named by the block's
 * first view (a column built by appending, as polars builds one): the general
 * loop's per-row buffer lookup and clamp become one comparison with that
 * buffer's index (measured on 1M polars ids: hash_keys 3.9 -> 2.9 ns per key,
 * lookup 7.4 -> 5.9, same machine and load). Returns 0 if any row is not so,
 * or is bad, for the general loop to decide. */
static int view_spans_one_buffer(const rh_col *c, int64_t start, int64_t m,
                                 const unsigned char **RH_RESTRICT ptr, uint32_t *RH_RESTRICT len)
{
    const uint8_t *v = (const uint8_t *)c->values + 16 * (c->offset + start);
    int32_t b0;
    memcpy(&b0, v + 8, 4);
    if (b0 < 0 || b0 >= c->nvbufs || !c->vbufs[b0])
        return 0;
    const uint8_t *const buf = c->vbufs[b0];
    const int64_t size = c->vsizes[b0];
    int bad = 0;
#ifdef RH_VIEWS_X16
    if (rh_simd_level() == 2 && size <= INT32_MAX) {
        int64_t whole = m / 16;
        if (views_x16(v, whole, b0, buf, size, ptr, len))
            return 0;
        v += 256 * whole;
        ptr += 16 * whole;
        len += 16 * whole;
        m -= 16 * whole;
    }
#endif
    for (int64_t i = 0; i < m; i++, v += 16) {
        int32_t l, b, off;
        int inline_ = read_view(v, &l, &b, &off);
        bad |= (l < 0) | ((!inline_) & ((b != b0) | (off < 0) | ((int64_t)off + l > size)));
        ptr[i] = inline_ ? v + 4 : buf + (uint32_t)off;
        len[i] = (uint32_t)l;
    }
    return !bad;
}

/* The common case without a branch per row: utf8 / binary offsets and no
 * validity bitmap. Returns 0 (nothing decided) if the offsets are bad, so the
 * careful loop finds the row, or for other layouts. */
static int spans_fast(const rh_col *c, int64_t start, int64_t m,
                      const unsigned char **RH_RESTRICT ptr, uint32_t *RH_RESTRICT len)
{
    int bad = 0;
    if (c->validity)
        return 0;
    if (c->kind == RH_COL_BIN32) {
        const int32_t *o = (const int32_t *)c->values + c->offset + start;
        for (int64_t i = 0; i < m; i++) {
            int32_t s = o[i], e = o[i + 1];
            bad |= (s < 0) | (e < s);
            ptr[i] = c->data + (uint32_t)s;
            len[i] = (uint32_t)e - (uint32_t)s;
        }
        return !bad;
    }
    if (c->kind == RH_COL_BIN64) {
        const int64_t *o = (const int64_t *)c->values + c->offset + start;
        uint64_t longest = 0;
        for (int64_t i = 0; i < m; i++) {
            uint64_t s = (uint64_t)o[i], l = (uint64_t)o[i + 1] - s;
            /* negative offsets and going backwards both show as huge unsigned values */
            longest |= s | l;
            ptr[i] = c->data + s;
            len[i] = (uint32_t)l;
        }
        return (longest >> 32) == 0 ? 1 : 0; /* else: bad, or a key of 4 GiB+ */
    }
    if (c->kind == RH_COL_VIEW && c->nvbufs == 0) { /* every value inline (at most 12 bytes) */
        const uint8_t *v = (const uint8_t *)c->values + 16 * (c->offset + start);
        for (int64_t i = 0; i < m; i++, v += 16) {
            int32_t l;
            memcpy(&l, v, 4);
            bad |= (l < 0) | (l > 12);
            ptr[i] = v + 4;
            len[i] = (uint32_t)l;
        }
        return !bad;
    }
    if (c->kind == RH_COL_VIEW && view_spans_one_buffer(c, start, m, ptr, len))
        return 1;
    if (c->kind == RH_COL_VIEW) {
        /* branch-free: every test folds into `bad` (a lying view sends the block to
         * the careful loop); a buffer index out of range is clamped before use */
        const uint8_t *v = (const uint8_t *)c->values + 16 * (c->offset + start);
        const int64_t nv = c->nvbufs;
        const uint8_t *const *RH_RESTRICT vbufs = c->vbufs;
        const int64_t *RH_RESTRICT vsizes = c->vsizes;
        for (int64_t i = 0; i < m; i++, v += 16) {
            int32_t l, b, off;
            int inline_ = read_view(v, &l, &b, &off);
            int in_range = (b >= 0) & (b < nv);
            int64_t bc = in_range ? b : 0;
            const uint8_t *buf = vbufs[bc];
            int out_of_buffer = (!in_range) | (off < 0) | ((int64_t)off + l > vsizes[bc]) | (!buf);
            bad |= (l < 0) | ((!inline_) & out_of_buffer);
            ptr[i] = inline_ ? v + 4 : buf + (uint32_t)off;
            len[i] = (uint32_t)l;
        }
        return !bad;
    }
    return 0;
}

/* Whether rows [start, start + m) are keys of one length w (1 to 64 bytes) lying
 * back to back, with no nulls: a column of ids, as utf8 / binary offsets
 * stepping by w, or out-of-line views stepping through one buffer. If so, the
 * block hashes as fixed-width items from *base (rh_hash_exact_block), without
 * spans. Measured on 1M 16-character ids (AVX-512, same process, interleaved):
 * hash_keys of a polars column 1.5 -> 1.15 ns per key (lookup 3.2 -> 2.9), of a
 * pyarrow string_view one 1.45 -> 1.15, of a pyarrow utf8 one 1.24 -> 1.07. */
static int fixed_run(const rh_col *c, int64_t start, int64_t m, const uint8_t **base, uint32_t *w)
{
    if (c->validity || m < 16)
        return 0;
    if (c->kind == RH_COL_BIN32 || c->kind == RH_COL_BIN64) {
        int64_t first, step, bad = 0;
        if (c->kind == RH_COL_BIN32) {
            const int32_t *o = (const int32_t *)c->values + c->offset + start;
            first = o[0];
            step = (int64_t)o[1] - o[0];
            for (int64_t i = 1; i < m; i++)
                bad |= (int64_t)o[i + 1] - o[i] - step;
        } else {
            const int64_t *o = (const int64_t *)c->values + c->offset + start;
            first = o[0];
            step = (int64_t)((uint64_t)o[1] - (uint64_t)o[0]);
            for (int64_t i = 1; i < m; i++)
                bad |= (int64_t)((uint64_t)o[i + 1] - (uint64_t)o[i]) - step;
        }
        if (bad || first < 0 || step < 1 || step > 64)
            return 0;
        *base = c->data + first;
        *w = (uint32_t)step;
        return 1;
    }
    if (c->kind == RH_COL_VIEW && c->nvbufs > 0) {
        const uint8_t *v = (const uint8_t *)c->values + 16 * (c->offset + start);
        int32_t l, b, off;
        if (read_view(v, &l, &b, &off) || l > 64 || b < 0 || b >= c->nvbufs || !c->vbufs[b] ||
            off < 0 || (int64_t)off + m * l > c->vsizes[b])
            return 0;
        int bad = 0;
        int64_t i = 1;
#ifdef RH_VIEWS_X16
        if (rh_simd_level() == 2) {
            if (!views_run_x16(v, m / 16, l, b, off))
                return 0;
            i = m / 16 * 16;
        }
#endif
        for (; i < m; i++) {
            int32_t li, bi, oi;
            read_view(v + 16 * i, &li, &bi, &oi);
            bad |= (li != l) | (bi != b) | ((int64_t)oi != (int64_t)off + i * l);
        }
        if (bad)
            return 0;
        *base = c->vbufs[b] + off;
        *w = (uint32_t)l;
        return 1;
    }
    return 0;
}

/* Rows [start, start + m) (m <= RH_SPAN_BLOCK) as spans; null rows are empty
 * and a key of 4 GiB or more gets length 0 and is listed in huge (its count
 * returned through nhuge) to be done alone. Returns -1, or the first bad row. */
static int64_t col_spans(const rh_col *c, int64_t start, int64_t m, const unsigned char **ptr,
                         uint32_t *len, int64_t *huge, int64_t *nhuge)
{
    static const unsigned char empty[1] = {0};
    *nhuge = 0;
    if (spans_fast(c, start, m, ptr, len))
        return -1;
    for (int64_t i = 0; i < m; i++) {
        int64_t row = start + i;
        size_t l = 0;
        ptr[i] = empty;
        len[i] = 0;
        if (c->validity && !rh_col_valid(c, row))
            continue;
        if (span_of(c, c->offset + row, &ptr[i], &l) < 0)
            return row;
        if (l > UINT32_MAX) {
            huge[(*nhuge)++] = i;
            l = 0;
        }
        len[i] = (uint32_t)l;
    }
    return -1;
}

/* The hash of one huge key (a row col_spans listed). */
static uint32_t huge_hash(const rh_col *c, int algo, uint32_t seed, int64_t row)
{
    const uint8_t *p = NULL;
    size_t l = 0;
    span_of(c, c->offset + row, &p, &l); /* checked by col_spans */
    return rh_hash_bytes(algo, p, l, seed);
}

static int64_t hash_spans(const rh_col *c, int algo, uint32_t seed, int64_t start, int64_t n,
                          uint32_t *out)
{
    const unsigned char *ptr[RH_SPAN_BLOCK];
    uint32_t len[RH_SPAN_BLOCK];
    int64_t huge[RH_SPAN_BLOCK], nhuge;
    const uint8_t *run;
    uint32_t w;
    for (int64_t b = 0; b < n; b += RH_SPAN_BLOCK) {
        int64_t m = n - b < RH_SPAN_BLOCK ? n - b : RH_SPAN_BLOCK;
        if (fixed_run(c, start + b, m, &run, &w)) {
            rh_hash_exact_block(algo, run, w, (size_t)m, seed, out + b);
            continue;
        }
        int64_t bad = col_spans(c, start + b, m, ptr, len, huge, &nhuge);
        if (bad >= 0)
            return bad;
        rh_hash_spans(algo, ptr, len, (size_t)m, c->kind != RH_COL_VIEW, seed, out + b);
        for (int64_t k = 0; k < nhuge; k++)
            out[b + huge[k]] = huge_hash(c, algo, seed, start + b + huge[k]);
    }
    return -1;
}

int64_t rh_col_key64(const rh_col *c, int64_t start, int64_t n, uint64_t *out)
{
    const unsigned char *ptr[RH_SPAN_BLOCK];
    uint32_t len[RH_SPAN_BLOCK];
    int64_t huge[RH_SPAN_BLOCK], nhuge;
    if (c->kind == RH_COL_INT) {
        rh_col_u64(c, start, n, out);
        return -1;
    }
    for (int64_t b = 0; b < n; b += RH_SPAN_BLOCK) {
        int64_t m = n - b < RH_SPAN_BLOCK ? n - b : RH_SPAN_BLOCK;
        int64_t bad = col_spans(c, start + b, m, ptr, len, huge, &nhuge);
        if (bad >= 0)
            return bad;
        for (int64_t i = 0; i < m; i++)
            out[b + i] = rh_murmur3_x64_lo(ptr[i], len[i], 0);
        for (int64_t k = 0; k < nhuge; k++) {
            const uint8_t *p = NULL;
            size_t l = 0;
            span_of(c, c->offset + start + b + huge[k], &p, &l);
            out[b + huge[k]] = rh_murmur3_x64_lo(p, l, 0);
        }
    }
    return -1;
}

int64_t rh_col_hash(const rh_col *c, int algo, uint32_t seed, int64_t start, int64_t n,
                    uint32_t *out)
{
    uint64_t wide[RH_BLOCK];
    if (c->kind != RH_COL_INT)
        return hash_spans(c, algo, seed, start, n, out);
    for (int64_t b = 0; b < n; b += RH_BLOCK) {
        int64_t m = n - b < RH_BLOCK ? n - b : RH_BLOCK;
        rh_col_u64(c, start + b, m, wide); /* null rows: 0 */
        rh_hash_u64_block(algo, wide, (size_t)m, seed, out + b);
        rh_col_fill_nulls(c, start + b, m, out + b, 0);
    }
    return -1;
}

int64_t rh_col_lookup(const rh_col *c, const rh_ring *r, int64_t start, int64_t n, int32_t *out)
{
    uint32_t hb[RH_CHUNK]; /* a chunk hashed, then searched (rh_ring.h) */
    for (int64_t b = 0; b < n; b += RH_CHUNK) {
        int64_t m = n - b < RH_CHUNK ? n - b : RH_CHUNK;
        int64_t bad = rh_col_hash(c, r->algo, r->seed, start + b, m, hb);
        if (bad >= 0)
            return bad;
        rh_search(r, hb, (size_t)m, out + b);
    }
    return -1;
}

void rh_partition(const int32_t *owner, int64_t n, int32_t nowners, int64_t *order,
                  int64_t *offsets)
{
    memset(offsets, 0, ((size_t)nowners + 1) * sizeof *offsets);
    for (int64_t i = 0; i < n; i++)
        offsets[owner[i] + 1]++;
    for (int32_t o = 0; o < nowners; o++)
        offsets[o + 1] += offsets[o];
    /* offsets[o] is now where owner o's run starts; advance it as rows land */
    for (int64_t i = 0; i < n; i++)
        order[offsets[owner[i]]++] = i;
    /* now offsets[o] is where o's run ends, i.e. where o + 1's starts */
    memmove(offsets + 1, offsets, (size_t)nowners * sizeof *offsets);
    offsets[0] = 0;
}

/* The gather of a dictionary chunk, one loop per index type: out[i] =
 * values[code of row i]; a null row, or a code naming a null entry (nullv[code]
 * set), gets fill. Returns -1, or the first row whose code is out of range. */
#define RH_GATHER(T)                                                                               \
    do {                                                                                           \
        const T *code = (const T *)c->values + c->offset + start;                                  \
        if (!c->validity && !nullv && nvalues > 0) {                                               \
            uint64_t bad = 0;                                                                      \
            for (int64_t i = 0; i < n; i++) {                                                      \
                uint64_t k = (uint64_t)(int64_t)code[i];                                           \
                bad |= k >= (uint64_t)nvalues;                                                     \
                out[i] = values[bad ? 0 : k];                                                      \
            }                                                                                      \
            if (!bad)                                                                              \
                return -1;                                                                         \
        }                                                                                          \
        for (int64_t i = 0; i < n; i++) {                                                          \
            if (!rh_col_valid(c, start + i)) {                                                     \
                out[i] = fill;                                                                     \
                continue;                                                                          \
            }                                                                                      \
            uint64_t k = (uint64_t)(int64_t)code[i];                                               \
            if (k >= (uint64_t)nvalues)                                                            \
                return start + i;                                                                  \
            out[i] = nullv && nullv[k] ? fill : values[k];                                         \
        }                                                                                          \
        return -1;                                                                                 \
    } while (0)

int64_t rh_col_gather(const rh_col *c, int64_t start, int64_t n, const int32_t *values,
                      int64_t nvalues, const uint8_t *nullv, int32_t fill, int32_t *out)
{
    switch (c->width * 2 + c->is_signed) {
    case 2: RH_GATHER(uint8_t);
    case 3: RH_GATHER(int8_t);
    case 4: RH_GATHER(uint16_t);
    case 5: RH_GATHER(int16_t);
    case 8: RH_GATHER(uint32_t);
    case 9: RH_GATHER(int32_t);
    case 17: RH_GATHER(int64_t);
    default: RH_GATHER(uint64_t);
    }
}
