/* ringhash: batch kernels, hashing blocks of keys and looking them up in the ring.
 *
 * On x86-64 with GCC or Clang the block hashes are built several times,
 * portable, AVX2 and AVX-512, and rh_init picks the widest build the CPU and
 * OS support; RINGHASH_SIMD=scalar|avx2|avx512 caps the choice, so the tests
 * can run every build against mmh3 and the reference ring. The vector builds
 * hash 8 or 16 keys at a time (int keys, numpy "S" items and, with AVX-512,
 * variable-length keys, through register transposes). Lookups hash a chunk of
 * keys, then search it (rh_ring.h: RH_CHUNK); elsewhere (MSVC, ARM) the
 * portable build runs the same loops.
 *
 * How the file is organised (xxHash's dispatch pattern): the loops are written
 * once, as force-inlined functions that take the per-ISA pieces (hash a group
 * of keys) as parameters; each level's kernels are thin wrappers that pass
 * their own pieces, so the compiler inlines everything into one function per
 * level. The vector pieces are named after their scalar twins in rh_hash.h
 * (rh_mix_k -> mix_k_x8, ...), so each width reads as a transcription of the
 * scalar code. rh_init picks one constant table of kernels per level.
 */
#include "rh_hash.h"
#include "rh_ring.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- portable */

/* The length of one item of a numpy "S" array: its bytes without the trailing NULs. */
static inline size_t fixed_len(const unsigned char *item, size_t itemsize)
{
    while (itemsize > 0 && item[itemsize - 1] == 0)
        itemsize--;
    return itemsize;
}

static inline uint32_t fixed_one(const unsigned char *item, size_t itemsize, uint32_t seed)
{
    return rh_murmur3_32(item, fixed_len(item, itemsize), seed);
}

static void fixed_scalar(const unsigned char *raw, size_t itemsize, size_t n, uint32_t seed,
                         uint32_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = fixed_one(raw + i * itemsize, itemsize, seed);
}

/* Int keys: the loop is plain C, which compilers vectorize when the target has
 * 32-bit vector multiplies. GCC would also vectorize the portable x86-64 build
 * for SSE2, which has none; its emulation is slower than scalar code. */
#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#define RH_PORTABLE_ATTR __attribute__((optimize("no-tree-vectorize")))
#else
#define RH_PORTABLE_ATTR
#endif

RH_FORCE_INLINE void u64_block_loop(const uint64_t *keys, size_t n, uint32_t seed, uint32_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = rh_murmur3_u64(keys[i], seed);
}

RH_PORTABLE_ATTR static void u64_block_portable(const uint64_t *keys, size_t n, uint32_t seed,
                                                uint32_t *out)
{
    u64_block_loop(keys, n, seed, out);
}

/* n keys of exactly `width` bytes each, one after another from raw. */
static void exact_scalar(const unsigned char *raw, size_t width, size_t n, uint32_t seed,
                         uint32_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = rh_murmur3_32(raw + i * width, width, seed);
}

/* Variable-length keys given as (pointer, length) pairs. */
static void spans_portable(const unsigned char *const *ptr, const uint32_t *len, size_t n,
                           int back_to_back, uint32_t seed, uint32_t *out);
static void spans_scalar(const unsigned char *const *ptr, const uint32_t *len, size_t n,
                         uint32_t seed, uint32_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = rh_murmur3_32(ptr[i], len[i], seed);
}

static void spans_portable(const unsigned char *const *ptr, const uint32_t *len, size_t n,
                           int back_to_back, uint32_t seed, uint32_t *out)
{
    (void)back_to_back;
    spans_scalar(ptr, len, n, seed, out);
}

/* One build of the murmur3 block hashes (rh_init picks one table). */
typedef struct {
    const char *name;
    void (*u64_block)(const uint64_t *keys, size_t n, uint32_t seed, uint32_t *out);
    void (*fixed_block)(const unsigned char *raw, size_t itemsize, size_t n, uint32_t seed,
                        uint32_t *out);
    void (*exact_block)(const unsigned char *raw, size_t width, size_t n, uint32_t seed,
                        uint32_t *out);
    void (*spans_block)(const unsigned char *const *ptr, const uint32_t *len, size_t n,
                        int back_to_back, uint32_t seed, uint32_t *out);
} rh_kernels;

static const rh_kernels kernels_portable = {"scalar", u64_block_portable, fixed_scalar,
                                            exact_scalar, spans_portable};

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define RH_HAVE_X86_BUILDS 1
#include <immintrin.h>

/* Hash group g (lanes keys) of the batch described by ctx into dst. */
typedef void (*hash_group_fn)(const void *ctx, size_t g, uint32_t *dst);

/* ---------------------------------------------------------------- AVX2 pieces */

/* BMI2 (shrx) comes with AVX2 on every CPU that has it; rh_init checks both.
 * The pieces are forced inline: called per group of keys, a call (and the
 * vzeroupper at its return) would cost as much as the group's work. */
#define RH_AVX2_ATTR __attribute__((target("avx2,bmi2")))
#define RH_AVX2_INLINE RH_AVX2_ATTR RH_FORCE_INLINE

RH_AVX2_INLINE __m256i rotl32_x8(__m256i x, int r)
{
    return _mm256_or_si256(_mm256_slli_epi32(x, r), _mm256_srli_epi32(x, 32 - r));
}

RH_AVX2_INLINE __m256i mix_k_x8(__m256i k)
{
    k = _mm256_mullo_epi32(k, _mm256_set1_epi32((int)0xcc9e2d51u));
    return _mm256_mullo_epi32(rotl32_x8(k, 15), _mm256_set1_epi32(0x1b873593));
}

RH_AVX2_INLINE __m256i mur_round_x8(__m256i h)
{
    /* h * 5 as (h << 2) + h: a vector multiply has about 10 cycles of latency. */
    h = rotl32_x8(h, 13);
    return _mm256_add_epi32(_mm256_add_epi32(_mm256_slli_epi32(h, 2), h),
                            _mm256_set1_epi32((int)0xe6546b64u));
}

RH_AVX2_INLINE __m256i fmix32_x8(__m256i h)
{
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
    h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)0x85ebca6bu));
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 13));
    h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)0xc2b2ae35u));
    return _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
}

/* Transpose 8 rows of 8 dwords in place (r[j] becomes column j). */
RH_AVX2_INLINE void transpose8(__m256i r[8])
{
    __m256i t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) { /* lane k of u[4i + c]: word 4k + c of rows 4i..4i+3 */
        u[4 * i] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm256_permute2x128_si256(u[c], u[4 + c], 0x20);
        r[4 + c] = _mm256_permute2x128_si256(u[c], u[4 + c], 0x31);
    }
}

/* Fixed-width items, AVX2, 8 at a time, for items of up to 32 bytes. AVX2 has
 * no byte-masked load, so each item is read whole (16 or 32 bytes) and masked
 * to its width; vector groups stop where that read would pass the end of the
 * array, and the last few items go the scalar way. */
typedef struct {
    const unsigned char *raw;
    __m256i keep; /* 0xFF for the bytes of an item (in each 16-byte lane if narrow) */
    int narrow;   /* items of at most 16 bytes: two to a register */
    size_t itemsize, nwords;
    uint32_t seed;
} fixed_plan_x8;

/* Fill the plan; return how many whole groups of 8 items it covers. */
RH_AVX2_ATTR static size_t fixed_plan_x8_make(fixed_plan_x8 *p, const unsigned char *raw,
                                              size_t itemsize, size_t n, uint32_t seed)
{
    static const unsigned char ramp[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                           11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                           22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
    static const unsigned char ramp2[32] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    p->narrow = itemsize <= 16;
    size_t read = p->narrow ? 16 : 32; /* bytes read per item */
    if (itemsize == 0 || itemsize > 32 || n < 8 || n * itemsize < read + 7 * itemsize)
        return 0;
    p->raw = raw;
    p->keep = _mm256_cmpgt_epi8(_mm256_set1_epi8((char)itemsize),
                                _mm256_loadu_si256((const __m256i *)(p->narrow ? ramp2 : ramp)));
    p->itemsize = itemsize;
    p->nwords = (itemsize + 3) / 4;
    p->seed = seed;
    /* Items q whose read ends inside the array, q * itemsize + read <= n *
     * itemsize (at least 8, checked above); a group's last item must be one. */
    return ((n * itemsize - read) / itemsize + 1) / 8;
}

/* Murmur3 of 8 items given as rows (rows[j]: word j of each item, zero past
 * its end) and lengths. Past a lane's last full block its words are zero except
 * one tail word; mixing a tail word is "h ^= mix_k(k)" and mix_k(0) = 0, so one
 * select per word covers blocks, the tail and the padding. */
RH_AVX2_INLINE __m256i murmur3_rows_x8(const __m256i *rows, size_t nwords, __m256i vlen,
                                       uint32_t seed)
{
    __m256i nblocks = _mm256_srli_epi32(vlen, 2);
    __m256i h = _mm256_set1_epi32((int)seed);
    for (size_t j = 0; j < nwords; j++) {
        __m256i x = _mm256_xor_si256(h, mix_k_x8(rows[j]));
        /* lengths are at most 32, so a signed comparison is exact */
        __m256i full = _mm256_cmpgt_epi32(nblocks, _mm256_set1_epi32((int)j));
        h = _mm256_blendv_epi8(x, mur_round_x8(x), full);
    }
    return fmix32_x8(_mm256_xor_si256(h, vlen));
}

/* Item lengths (without trailing NULs) from the rows: 4j + the bytes up to the
 * last non-zero one of word j, for the last non-zero word j of each item. */
RH_AVX2_INLINE __m256i rows_len_x8(const __m256i *rows, size_t nwords)
{
    const __m256i zero = _mm256_setzero_si256();
    __m256i len = zero;
    for (size_t j = 0; j < nwords; j++) {
        __m256i x = rows[j];
        /* bytes used = 4 - (number of the shifts x >> 0, 8, 16, 24 that are zero) */
        __m256i zeros =
            _mm256_add_epi32(_mm256_add_epi32(_mm256_cmpeq_epi32(x, zero),
                                              _mm256_cmpeq_epi32(_mm256_srli_epi32(x, 8), zero)),
                             _mm256_add_epi32(_mm256_cmpeq_epi32(_mm256_srli_epi32(x, 16), zero),
                                              _mm256_cmpeq_epi32(_mm256_srli_epi32(x, 24), zero)));
        __m256i here = _mm256_add_epi32(_mm256_set1_epi32((int)(4 * j + 4)), zeros);
        len = _mm256_blendv_epi8(here, len, _mm256_cmpeq_epi32(x, zero));
    }
    return len;
}

/* fixed_one of the 8 items of group g. */
RH_AVX2_INLINE void fixed_group_x8(const void *ctx, size_t g, uint32_t *out)
{
    const fixed_plan_x8 *p = (const fixed_plan_x8 *)ctx;
    const size_t w = p->itemsize;
    const unsigned char *items = p->raw + g * 8 * w;
    __m256i r[8];
    if (p->narrow) {
        /* r[k] holds items 2k (low lane) and 2k + 1; a 4x4 transpose inside the
         * lanes then gives rows in the order item 2k + i -> position 4i + k,
         * undone by one permute at the end. */
        for (int k = 0; k < 4; k++) {
            const unsigned char *it = items + (size_t)(2 * k) * w;
            __m256i pair = _mm256_inserti128_si256(
                _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)it)),
                _mm_loadu_si128((const __m128i *)(it + w)), 1);
            r[k] = _mm256_and_si256(pair, p->keep);
        }
        __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
        __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
        __m256i rows[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2),
                           _mm256_unpacklo_epi64(t1, t3), _mm256_unpackhi_epi64(t1, t3)};
        __m256i h = murmur3_rows_x8(rows, p->nwords, rows_len_x8(rows, p->nwords), p->seed);
        h = _mm256_permutevar8x32_epi32(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)out, h);
        return;
    }
    for (int l = 0; l < 8; l++)
        r[l] =
            _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(items + (size_t)l * w)), p->keep);
    transpose8(r);
    _mm256_storeu_si256((__m256i *)out,
                        murmur3_rows_x8(r, p->nwords, rows_len_x8(r, p->nwords), p->seed));
}

/* ---------------------------------------------------------------- AVX-512 pieces */

#define RH_AVX512_TARGET "avx2,bmi2,avx512f,avx512bw,avx512vl,avx512cd"
#if defined(__clang__)
#define RH_AVX512_ATTR __attribute__((target(RH_AVX512_TARGET), min_vector_width(512)))
#else
#define RH_AVX512_ATTR __attribute__((target(RH_AVX512_TARGET ",prefer-vector-width=512")))
#endif
#define RH_AVX512_INLINE RH_AVX512_ATTR RH_FORCE_INLINE

RH_AVX512_INLINE __m512i mix_k_x16(__m512i k)
{
    k = _mm512_mullo_epi32(k, _mm512_set1_epi32((int)0xcc9e2d51u));
    return _mm512_mullo_epi32(_mm512_rol_epi32(k, 15), _mm512_set1_epi32(0x1b873593));
}

RH_AVX512_INLINE __m512i mur_round_x16(__m512i h)
{
    h = _mm512_rol_epi32(h, 13);
    return _mm512_add_epi32(_mm512_add_epi32(_mm512_slli_epi32(h, 2), h),
                            _mm512_set1_epi32((int)0xe6546b64u));
}

RH_AVX512_INLINE __m512i fmix32_x16(__m512i h)
{
    h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
    h = _mm512_mullo_epi32(h, _mm512_set1_epi32((int)0x85ebca6bu));
    h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 13));
    h = _mm512_mullo_epi32(h, _mm512_set1_epi32((int)0xc2b2ae35u));
    return _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
}

/* Transpose 16 rows of 16 dwords in place (r[j] becomes column j). */
RH_AVX512_INLINE void transpose16(__m512i r[16])
{
    __m512i t[16], u[16], s[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) { /* lane k of u[4i + c]: word 4k + c of rows 4i..4i+3 */
        u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int c = 0; c < 4; c++) {
        s[c] = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88);
        s[4 + c] = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xDD);
        s[8 + c] = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88);
        s[12 + c] = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xDD);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm512_shuffle_i32x4(s[c], s[8 + c], 0x88);
        r[8 + c] = _mm512_shuffle_i32x4(s[c], s[8 + c], 0xDD);
        r[4 + c] = _mm512_shuffle_i32x4(s[4 + c], s[12 + c], 0x88);
        r[12 + c] = _mm512_shuffle_i32x4(s[4 + c], s[12 + c], 0xDD);
    }
}

/* Fixed-width items of up to 64 bytes, AVX-512, 16 at a time: a masked load per
 * item (nothing read past it), its length from its non-zero bytes (no branch,
 * so mixed lengths cost nothing extra), a transpose so that vector j holds
 * word j of all 16 items, then 16 murmur states advance one word per step
 * (murmur3_rows_x16). Items of at most 16 bytes go four to a register, which
 * needs a 4x4 transpose inside each 128-bit lane instead of a full 16x16 one. */
typedef struct {
    const unsigned char *raw;
    __mmask64 bytes; /* one bit per byte of an item */
    int narrow;      /* items of at most 16 bytes */
    int exact;       /* every item is all itemsize bytes (no NUL stripping) */
    size_t itemsize, nwords;
    uint32_t seed;
} fixed_plan_x16;

static size_t fixed_plan_x16_make(fixed_plan_x16 *p, const unsigned char *raw, size_t itemsize,
                                  size_t n, uint32_t seed)
{
    if (itemsize == 0 || itemsize > 64)
        return 0;
    p->raw = raw;
    p->bytes = itemsize == 64 ? ~(__mmask64)0 : (((__mmask64)1 << itemsize) - 1);
    p->narrow = itemsize <= 16;
    p->exact = 0;
    p->itemsize = itemsize;
    p->nwords = (itemsize + 3) / 4;
    p->seed = seed;
    return n / 16;
}

/* murmur3_rows_x8, 16 items. */
RH_AVX512_INLINE __m512i murmur3_rows_x16(const __m512i *rows, size_t nwords, __m512i vlen,
                                          uint32_t seed)
{
    __m512i nblocks = _mm512_srli_epi32(vlen, 2);
    __m512i h = _mm512_set1_epi32((int)seed);
    for (size_t j = 0; j < nwords; j++) {
        __m512i x = _mm512_xor_si512(h, mix_k_x16(rows[j]));
        __mmask16 full = _mm512_cmpgt_epu32_mask(nblocks, _mm512_set1_epi32((int)j));
        h = _mm512_mask_blend_epi32(full, x, mur_round_x16(x));
    }
    return fmix32_x16(_mm512_xor_si512(h, vlen));
}

/* Item lengths as in rows_len_x8, with AVX-512's per-lane leading-zero count: a
 * non-zero word j ends the item at 4j + ceil(bit length / 8) bytes, which is
 * (32j + 39 - lzcnt) >> 3. */
RH_AVX512_INLINE __m512i rows_len_x16(const __m512i *rows, size_t nwords)
{
    __m512i len = _mm512_setzero_si512();
    for (size_t j = 0; j < nwords; j++) {
        __m512i x = rows[j];
        __m512i end = _mm512_srli_epi32(
            _mm512_sub_epi32(_mm512_set1_epi32((int)(32 * j + 39)), _mm512_lzcnt_epi32(x)), 3);
        len = _mm512_mask_mov_epi32(len, _mm512_test_epi32_mask(x, x), end);
    }
    return len;
}

/* fixed_one of the 16 items of group g. */
RH_AVX512_INLINE void fixed_group_x16(const void *ctx, size_t g, uint32_t *out)
{
    const fixed_plan_x16 *p = (const fixed_plan_x16 *)ctx;
    const size_t w = p->itemsize;
    const unsigned char *items = p->raw + g * 16 * w;
    __m512i r[16];
    if (p->narrow) {
        /* r[k] holds items 4k..4k+3, one per 128-bit lane; a 4x4 transpose inside
         * the lanes gives rows in the order item 4k + i -> position 4i + k, undone
         * by one permute at the end. */
        const __mmask16 m = (__mmask16)p->bytes;
        for (int k = 0; k < 4; k++) {
            const unsigned char *it = items + (size_t)(4 * k) * w;
            if (w == 16) { /* four whole items are one plain load */
                r[k] = _mm512_loadu_si512(it);
                continue;
            }
            __m512i v = _mm512_castsi128_si512(_mm_maskz_loadu_epi8(m, it));
            v = _mm512_inserti32x4(v, _mm_maskz_loadu_epi8(m, it + w), 1);
            v = _mm512_inserti32x4(v, _mm_maskz_loadu_epi8(m, it + 2 * w), 2);
            r[k] = _mm512_inserti32x4(v, _mm_maskz_loadu_epi8(m, it + 3 * w), 3);
        }
        __m512i t0 = _mm512_unpacklo_epi32(r[0], r[1]), t1 = _mm512_unpackhi_epi32(r[0], r[1]);
        __m512i t2 = _mm512_unpacklo_epi32(r[2], r[3]), t3 = _mm512_unpackhi_epi32(r[2], r[3]);
        __m512i rows[4] = {_mm512_unpacklo_epi64(t0, t2), _mm512_unpackhi_epi64(t0, t2),
                           _mm512_unpacklo_epi64(t1, t3), _mm512_unpackhi_epi64(t1, t3)};
        __m512i vlen = p->exact ? _mm512_set1_epi32((int)w) : rows_len_x16(rows, p->nwords);
        __m512i h = murmur3_rows_x16(rows, p->nwords, vlen, p->seed);
        h = _mm512_permutexvar_epi32(
            _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), h);
        _mm512_storeu_si512(out, h);
        return;
    }
    for (int l = 0; l < 16; l++)
        r[l] = _mm512_maskz_loadu_epi8(p->bytes, items + (size_t)l * w);
    transpose16(r);
    __m512i vlen = p->exact ? _mm512_set1_epi32((int)w) : rows_len_x16(r, p->nwords);
    _mm512_storeu_si512(out, murmur3_rows_x16(r, p->nwords, vlen, p->seed));
}

/* Variable-length keys (Arrow strings and binaries, StringDType), 16 at a time:
 * each key is one masked load of exactly its bytes (nothing read past it), so
 * keys of different lengths share a group; their lengths come from the caller
 * instead of from NUL bytes. Groups whose longest key has at most 16 bytes use
 * fixed_group_x16's four-to-a-register layout, up to 64 bytes the 16x16
 * transpose; a group with a longer key is hashed one key at a time. */
RH_AVX512_INLINE void spans_group_x16(const unsigned char *const *ptr, const uint32_t *len,
                                      int back_to_back, uint32_t seed, uint32_t *out)
{
    __m512i vlen = _mm512_loadu_si512(len);
    uint32_t longest = _mm512_reduce_max_epu32(vlen);
    __m512i r[16];
    if (longest > 64) {
        spans_scalar(ptr, len, 16, seed, out);
        return;
    }
    int same = longest <= 16 && _mm512_reduce_min_epu32(vlen) == longest;
    if (same && !back_to_back) { /* views: often back to back too; check, exactly */
        /* key l at ptr[0] + l * longest, eight addresses to a register */
        const __m512i first = _mm512_set1_epi64((long long)(uintptr_t)ptr[0]);
        const __m512i step = _mm512_cvtepu32_epi64(_mm256_mullo_epi32(
            _mm256_set1_epi32((int)longest), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
        const __m512i at8 = _mm512_set1_epi64((long long)(8 * longest));
        __mmask8 lo =
            _mm512_cmpeq_epi64_mask(_mm512_loadu_si512(ptr), _mm512_add_epi64(first, step));
        __mmask8 hi = _mm512_cmpeq_epi64_mask(_mm512_loadu_si512(ptr + 8),
                                              _mm512_add_epi64(_mm512_add_epi64(first, step), at8));
        back_to_back = lo == 0xFF && hi == 0xFF;
    }
    if (same && back_to_back && longest > 0) {
        /* 16 keys of one length, one after another (a column of ids): the items of
         * an "S" array, every byte the key's (no NUL stripping) */
        fixed_plan_x16 p;
        fixed_plan_x16_make(&p, ptr[0], longest, 16, seed);
        p.exact = 1;
        fixed_group_x16(&p, 0, out);
        return;
    }
    if (longest <= 16) {
        const __m512i perm =
            _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
#define RH_SPAN_X4(i) _mm_maskz_loadu_epi8((__mmask16)((1u << len[i]) - 1), ptr[i])
        for (int k = 0; k < 4; k++) {
            __m512i v = _mm512_castsi128_si512(RH_SPAN_X4(4 * k));
            v = _mm512_inserti32x4(v, RH_SPAN_X4(4 * k + 1), 1);
            v = _mm512_inserti32x4(v, RH_SPAN_X4(4 * k + 2), 2);
            r[k] = _mm512_inserti32x4(v, RH_SPAN_X4(4 * k + 3), 3);
        }
#undef RH_SPAN_X4
        __m512i t0 = _mm512_unpacklo_epi32(r[0], r[1]), t1 = _mm512_unpackhi_epi32(r[0], r[1]);
        __m512i t2 = _mm512_unpacklo_epi32(r[2], r[3]), t3 = _mm512_unpackhi_epi32(r[2], r[3]);
        __m512i rows[4] = {_mm512_unpacklo_epi64(t0, t2), _mm512_unpackhi_epi64(t0, t2),
                           _mm512_unpacklo_epi64(t1, t3), _mm512_unpackhi_epi64(t1, t3)};
        __m512i h =
            murmur3_rows_x16(rows, (longest + 3) / 4, _mm512_permutexvar_epi32(perm, vlen), seed);
        _mm512_storeu_si512(out, _mm512_permutexvar_epi32(perm, h));
        return;
    }
    for (int l = 0; l < 16; l++) {
        __mmask64 m = len[l] == 64 ? ~(__mmask64)0 : (((__mmask64)1 << len[l]) - 1);
        r[l] = _mm512_maskz_loadu_epi8(m, ptr[l]);
    }
    transpose16(r);
    _mm512_storeu_si512(out, murmur3_rows_x16(r, (longest + 3) / 4, vlen, seed));
}

/* ---------------------------------------------------------------- the kernels of each level */

/* "S" items: whole groups with the vector hash, the rest one by one. */
RH_FORCE_INLINE void fixed_loop(const void *plan, size_t ngroups, size_t lanes, hash_group_fn group,
                                const unsigned char *raw, size_t itemsize, size_t n, uint32_t seed,
                                uint32_t *out)
{
    for (size_t g = 0; g < ngroups; g++)
        group(plan, g, out + g * lanes);
    size_t done = ngroups * lanes;
    fixed_scalar(raw + done * itemsize, itemsize, n - done, seed, out + done);
}

RH_AVX2_ATTR static void u64_block_avx2(const uint64_t *keys, size_t n, uint32_t seed,
                                        uint32_t *out)
{
    u64_block_loop(keys, n, seed, out);
}

RH_AVX2_ATTR static void fixed_avx2(const unsigned char *raw, size_t itemsize, size_t n,
                                    uint32_t seed, uint32_t *out)
{
    fixed_plan_x8 p;
    size_t ngroups = fixed_plan_x8_make(&p, raw, itemsize, n, seed);
    fixed_loop(&p, ngroups, 8, fixed_group_x8, raw, itemsize, n, seed, out);
}

RH_AVX512_ATTR static void u64_block_avx512(const uint64_t *keys, size_t n, uint32_t seed,
                                            uint32_t *out)
{
    u64_block_loop(keys, n, seed, out);
}

RH_AVX512_ATTR static void fixed_avx512(const unsigned char *raw, size_t itemsize, size_t n,
                                        uint32_t seed, uint32_t *out)
{
    fixed_plan_x16 p;
    size_t ngroups = fixed_plan_x16_make(&p, raw, itemsize, n, seed);
    fixed_loop(&p, ngroups, 16, fixed_group_x16, raw, itemsize, n, seed, out);
}

/* Keys of exactly `width` bytes lying back to back: "S" items without the NUL
 * stripping, 16 at a time. */
RH_AVX512_ATTR static void exact_avx512(const unsigned char *raw, size_t width, size_t n,
                                        uint32_t seed, uint32_t *out)
{
    fixed_plan_x16 p;
    size_t ngroups = fixed_plan_x16_make(&p, raw, width, n, seed); /* 0 past 64 bytes */
    p.exact = 1;
    for (size_t g = 0; g < ngroups; g++)
        fixed_group_x16(&p, g, out + g * 16);
    exact_scalar(raw + ngroups * 16 * width, width, n - ngroups * 16, seed, out + ngroups * 16);
}

RH_AVX512_ATTR static void spans_avx512(const unsigned char *const *ptr, const uint32_t *len,
                                        size_t n, int back_to_back, uint32_t seed, uint32_t *out)
{
    size_t whole = n / 16 * 16;
    for (size_t i = 0; i < whole; i += 16)
        spans_group_x16(ptr + i, len + i, back_to_back, seed, out + i);
    spans_scalar(ptr + whole, len + whole, n - whole, seed, out + whole);
}

/* AVX2 has no byte-masked loads to read a key without reading past it: its
 * build hashes variable-length keys with the portable loop. */
static const rh_kernels kernels_avx2 = {"avx2", u64_block_avx2, fixed_avx2, exact_scalar,
                                        spans_portable};
static const rh_kernels kernels_avx512 = {"avx512", u64_block_avx512, fixed_avx512, exact_avx512,
                                          spans_avx512};

#include <cpuid.h>

/* The widest build this CPU and OS can run: 2 AVX-512 (F, BW, VL, CD), 1 AVX2
 * (with BMI2), 0 neither. Read from CPUID and XCR0 directly:
 * __builtin_cpu_supports needs a runtime symbol (__cpu_model) that Apple's
 * x86-64 toolchain does not always provide. */
static int x86_simd_level(void)
{
    unsigned a, b, c, d, xcr0_lo, xcr0_hi;
    if (!__get_cpuid_count(1, 0, &a, &b, &c, &d))
        return 0;
    if (!((c >> 27) & 1) || !((c >> 28) & 1)) /* OSXSAVE, AVX */
        return 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if ((xcr0_lo & 0x6) != 0x6) /* the OS saves XMM and YMM state */
        return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((b >> 5) & 1) ||
        !((b >> 8) & 1)) /* AVX2, BMI2 */
        return 0;
    int avx512 = ((b >> 16) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1) && /* F, BW, VL */
                 ((b >> 28) & 1) &&                                       /* CD */
                 (xcr0_lo & 0xE6) == 0xE6; /* and opmask and ZMM state */
    return avx512 ? 2 : 1;
}

static int x86_avx512dq(void)
{
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && ((b >> 17) & 1);
}
#endif

/* ---------------------------------------------------------------- entry points */

/* Set once by rh_init (at module import, under the GIL), read-only afterwards. */
static const rh_kernels *kernels = &kernels_portable;
static int avx512dq; /* and the AVX-512 level has DQ (64-bit multiply, int <-> double) */

void rh_murmur3_u64_block(const uint64_t *keys, size_t n, uint32_t seed, uint32_t *out)
{
    kernels->u64_block(keys, n, seed, out);
}

void rh_hash_u64_block(int algo, const uint64_t *keys, size_t n, uint32_t seed, uint32_t *out)
{
    if (algo == RH_MURMUR3) {
        kernels->u64_block(keys, n, seed, out);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = rh_hash_u64(algo, keys[i], seed);
}

void rh_hash_fixed_block(int algo, const unsigned char *raw, size_t itemsize, size_t n,
                         uint32_t seed, uint32_t *out)
{
    if (algo == RH_MURMUR3) {
        kernels->fixed_block(raw, itemsize, n, seed, out);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const unsigned char *item = raw + i * itemsize;
        out[i] = rh_hash_bytes(algo, item, fixed_len(item, itemsize), seed);
    }
}

void rh_hash_exact_block(int algo, const unsigned char *raw, size_t width, size_t n, uint32_t seed,
                         uint32_t *out)
{
    if (algo == RH_MURMUR3) {
        kernels->exact_block(raw, width, n, seed, out);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = rh_hash_bytes(algo, raw + i * width, width, seed);
}

void rh_hash_spans(int algo, const unsigned char *const *ptr, const uint32_t *len, size_t n,
                   int back_to_back, uint32_t seed, uint32_t *out)
{
    if (algo == RH_MURMUR3) {
        kernels->spans_block(ptr, len, n, back_to_back, seed, out);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = rh_hash_bytes(algo, ptr[i], len[i], seed);
}

void rh_lookup_u64(const rh_ring *r, const uint64_t *keys, size_t n, int32_t *out)
{
    uint32_t hb[RH_CHUNK];
    for (size_t start = 0; start < n; start += RH_CHUNK) {
        size_t m = n - start < RH_CHUNK ? n - start : RH_CHUNK;
        rh_hash_u64_block(r->algo, keys + start, m, r->seed, hb);
        rh_search(r, hb, m, out + start);
    }
}

void rh_lookup_fixed(const rh_ring *r, const unsigned char *raw, size_t itemsize, size_t n,
                     int32_t *out)
{
    uint32_t hb[RH_CHUNK];
    for (size_t start = 0; start < n; start += RH_CHUNK) {
        size_t m = n - start < RH_CHUNK ? n - start : RH_CHUNK;
        rh_hash_fixed_block(r->algo, raw + start * itemsize, itemsize, m, r->seed, hb);
        rh_search(r, hb, m, out + start);
    }
}

void rh_init(void)
{
    rh_crc32_init();
#ifdef RH_HAVE_X86_BUILDS
    const char *cap = getenv("RINGHASH_SIMD");
    int level = x86_simd_level(); /* 0 portable, 1 AVX2, 2 AVX-512 */
    if (cap != NULL && strcmp(cap, "scalar") == 0)
        level = 0;
    else if (cap != NULL && strcmp(cap, "avx2") == 0 && level > 1)
        level = 1;
    static const rh_kernels *const by_level[3] = {&kernels_portable, &kernels_avx2,
                                                  &kernels_avx512};
    kernels = by_level[level];
    avx512dq = level == 2 && x86_avx512dq();
#endif
}

const char *rh_simd(void)
{
    return kernels->name;
}

int rh_simd_avx512dq(void)
{
    return avx512dq;
}

int rh_simd_level(void)
{
    return strcmp(kernels->name, "avx512") == 0 ? 2 : strcmp(kernels->name, "avx2") == 0 ? 1 : 0;
}
