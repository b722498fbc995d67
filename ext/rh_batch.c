/* ringhash: batch kernels, hashing blocks of keys and looking them up in the ring.
 *
 * On x86-64 with GCC or Clang the batch loops are built several times,
 * portable, AVX2 and AVX-512, and rh_init picks the widest build the CPU and
 * OS support; RINGHASH_SIMD=scalar|avx2|avx512 caps the choice, so the tests
 * can run every build against mmh3 and the reference ring. The vector builds
 * hash 8 or 16 keys at a time (int keys, and numpy "S" items through a
 * register transpose) and, for lookups, hash the next group of keys while the
 * scalar search of the current one waits on memory. Elsewhere (MSVC, ARM) the
 * portable build runs: hash a block, then search it.
 *
 * How the file is organised (xxHash's dispatch pattern): the loops are written
 * once, as force-inlined functions that take the per-ISA pieces (hash a group
 * of keys, split hashes, list crowded keys) as parameters; each level's
 * kernels are thin wrappers that pass their own pieces, so the compiler
 * inlines everything into one function per level. The vector pieces are
 * named after their scalar twins in rh_hash.h (rh_mix_k -> mix_k_x8, ...), so
 * each width reads as a transcription of the scalar code. rh_init picks one
 * constant table of kernels per level.
 */
#include "rh_hash.h"
#include "rh_ring.h"

#include <stdlib.h>
#include <string.h>

#if defined(_MSC_VER)
#define RH_FORCE_INLINE static __forceinline
#else
#define RH_FORCE_INLINE static inline __attribute__((always_inline))
#endif

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

/* The portable lookups: hash a block, then search it. */
static void lookup_u64_portable(const rh_ring *r, const uint64_t *keys, size_t n, int32_t *out)
{
    uint32_t hb[RH_BLOCK];
    for (size_t start = 0; start < n; start += RH_BLOCK) {
        size_t m = n - start < RH_BLOCK ? n - start : RH_BLOCK;
        u64_block_portable(keys + start, m, r->seed, hb);
        rh_search(r, hb, m, out + start);
    }
}

static void lookup_fixed_portable(const rh_ring *r, const unsigned char *raw, size_t itemsize,
                                  size_t n, int32_t *out)
{
    uint32_t hb[RH_BLOCK];
    for (size_t start = 0; start < n; start += RH_BLOCK) {
        size_t m = n - start < RH_BLOCK ? n - start : RH_BLOCK;
        fixed_scalar(raw + start * itemsize, itemsize, m, r->seed, hb);
        rh_search(r, hb, m, out + start);
    }
}

/* One build of the batch loops (rh_init picks one table). The lookups here
 * serve murmur3 rings with the ">=" rule; rh_lookup_* handle the others. */
typedef struct {
    const char *name;
    void (*u64_block)(const uint64_t *keys, size_t n, uint32_t seed, uint32_t *out);
    void (*fixed_block)(const unsigned char *raw, size_t itemsize, size_t n, uint32_t seed,
                        uint32_t *out);
    void (*lookup_u64)(const rh_ring *r, const uint64_t *keys, size_t n, int32_t *out);
    void (*lookup_fixed)(const rh_ring *r, const unsigned char *raw, size_t itemsize, size_t n,
                         int32_t *out);
    void (*spans_block)(const unsigned char *const *ptr, const uint32_t *len, size_t n,
                        int back_to_back, uint32_t seed, uint32_t *out);
    void (*lookup_spans)(const rh_ring *r, const unsigned char *const *ptr, const uint32_t *len,
                         size_t n, int back_to_back, int32_t *out);
} rh_kernels;

static const rh_kernels kernels_portable = {"scalar",
                                            u64_block_portable,
                                            fixed_scalar,
                                            lookup_u64_portable,
                                            lookup_fixed_portable,
                                            spans_portable,
                                            NULL};

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define RH_HAVE_X86_BUILDS 1
#include <immintrin.h>

/* ---------------------------------------------------------------- the fused lookup loop */

/* Lookups fused with hashing: while the scalar search of one group of keys
 * waits on its memory loads, the vector unit hashes the next group (and
 * splits each hash into its bucket and offset, see rh_ring.h), so the two
 * overlap instead of alternating block by block.
 *
 * The search has no branch: every key gets rh_owner_split, which is
 * RH_CROWDED_OWNER for a key in a crowded bucket (rh_ring.h). After each
 * RH_BLOCK keys, `crowded` lists such keys (without a branch either) and they
 * are searched again (rh_fix_crowded, several at a time) from their hashes, kept in a
 * buffer of two blocks. A branch on the entry instead would be mispredicted
 * for about 1% of keys, and in a loop that runs this far ahead of its loads
 * each misprediction throws away the work of dozens of keys; measured, the
 * branch-free loop with its second pass is 5-10% faster (uint64 keys, 100 and
 * 1,000 nodes). */

/* Hash group g (lanes keys) of the batch described by ctx into dst. */
typedef void (*hash_group_fn)(const void *ctx, size_t g, uint32_t *dst);
/* Split lanes hashes into their buckets and offsets in the bucket. */
typedef void (*split_fn)(const rh_ring *r, const uint32_t *h, uint32_t *bucket, uint32_t *offset);
/* Append to list the numbers first + l of the lanes l whose owner in o is
 * RH_CROWDED_OWNER (list has room for lanes more); return how many. */
typedef size_t (*crowded_fn)(const int32_t *o, uint32_t first, uint32_t *list);

#define RH_MAX_LANES 16

/* Look up ngroups * lanes keys; keys past the last whole group are left to the
 * caller. The ring is copied so that stores to out cannot change it. */
RH_FORCE_INLINE void fused_lookup(const rh_ring *r, size_t lanes, size_t ngroups, const void *ctx,
                                  hash_group_fn hash_group, split_fn split, crowded_fn crowded,
                                  int32_t *out)
{
    uint32_t hb[2 * RH_BLOCK], bucket[2][RH_MAX_LANES], offset[2][RH_MAX_LANES];
    uint32_t fix[RH_BLOCK + RH_MAX_LANES]; /* the block's crowded keys, from `first` */
    size_t first = 0;                      /* the block's first key */
    const rh_ring ring = *r;
    if (ngroups > 0) {
        hash_group(ctx, 0, hb);
        split(&ring, hb, bucket[0], offset[0]);
    }
    for (size_t g = 0; g < ngroups; g++) {
        if (g + 1 < ngroups) {
            uint32_t *h = hb + (g + 1) * lanes % (2 * RH_BLOCK);
            hash_group(ctx, g + 1, h);
            split(&ring, h, bucket[(g + 1) & 1], offset[(g + 1) & 1]);
        }
        /* GCC and Clang both read this pragma; unrolled, a group's searches are
         * one straight run of independent loads (about 5% faster). */
#pragma GCC unroll 16
        for (size_t l = 0; l < lanes; l++)
            out[g * lanes + l] = rh_owner_split(&ring, bucket[g & 1][l], offset[g & 1][l]);
        size_t end = (g + 1) * lanes;
        if (end - first == RH_BLOCK || g + 1 == ngroups) {
            size_t nfix = 0;
            for (size_t k0 = first; k0 < end; k0 += lanes)
                nfix += crowded(out + k0, (uint32_t)(k0 - first), fix + nfix);
            rh_fix_crowded(&ring, hb, 2 * RH_BLOCK, first, fix, nfix, out);
            first = end;
        }
    }
}

/* What a group of int keys needs. */
typedef struct {
    const uint64_t *keys;
    uint32_t seed;
} u64_batch;

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

RH_AVX2_INLINE __m256i mur_block_x8(__m256i h, __m256i k)
{
    return mur_round_x8(_mm256_xor_si256(h, mix_k_x8(k)));
}

RH_AVX2_INLINE __m256i fmix32_x8(__m256i h)
{
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
    h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)0x85ebca6bu));
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 13));
    h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)0xc2b2ae35u));
    return _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
}

/* rh_murmur3_u64 of 8 keys. */
RH_AVX2_INLINE void murmur3_u64_x8(const uint64_t *k, uint32_t seed, uint32_t *out)
{
    const __m256i odd_even = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    __m256i a = _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const __m256i *)k), odd_even);
    __m256i b = _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const __m256i *)(k + 4)), odd_even);
    __m256i lo = _mm256_permute2x128_si256(a, b, 0x20), hi = _mm256_permute2x128_si256(a, b, 0x31);
    __m256i h = mur_block_x8(mur_block_x8(_mm256_set1_epi32((int)seed), lo), hi);
    h = fmix32_x8(_mm256_xor_si256(h, _mm256_set1_epi32(8)));
    _mm256_storeu_si256((__m256i *)out, h);
}

RH_AVX2_INLINE void u64_group_x8(const void *ctx, size_t g, uint32_t *dst)
{
    const u64_batch *b = (const u64_batch *)ctx;
    murmur3_u64_x8(b->keys + g * 8, b->seed, dst);
}

RH_AVX2_INLINE void split_x8(const rh_ring *r, const uint32_t *h, uint32_t *bucket,
                             uint32_t *offset)
{
    __m256i v = _mm256_loadu_si256((const __m256i *)h);
    _mm256_storeu_si256((__m256i *)bucket, _mm256_srl_epi32(v, _mm_cvtsi32_si128((int)r->shift)));
    _mm256_storeu_si256((__m256i *)offset, _mm256_and_si256(v, _mm256_set1_epi32((int)r->mask)));
}

/* A left-pack through a permutation from lanes_lut (set once by rh_init):
 * lanes_lut[m] lists the set bits of m, in order. */
static uint8_t lanes_lut[256][8];
RH_AVX2_INLINE size_t crowded_x8(const int32_t *o, uint32_t first, uint32_t *list)
{
    __m256i hit = _mm256_cmpeq_epi32(_mm256_loadu_si256((const __m256i *)o),
                                     _mm256_set1_epi32(RH_CROWDED_OWNER));
    unsigned m = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(hit));
    __m256i perm = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)lanes_lut[m]));
    __m256i lanes =
        _mm256_add_epi32(_mm256_set1_epi32((int)first), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_storeu_si256((__m256i *)list, _mm256_permutevar8x32_epi32(lanes, perm));
    return (size_t)__builtin_popcount(m);
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

RH_AVX512_INLINE __m512i mur_block_x16(__m512i h, __m512i k)
{
    return mur_round_x16(_mm512_xor_si512(h, mix_k_x16(k)));
}

RH_AVX512_INLINE __m512i fmix32_x16(__m512i h)
{
    h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
    h = _mm512_mullo_epi32(h, _mm512_set1_epi32((int)0x85ebca6bu));
    h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 13));
    h = _mm512_mullo_epi32(h, _mm512_set1_epi32((int)0xc2b2ae35u));
    return _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
}

/* rh_murmur3_u64 of 16 keys. */
RH_AVX512_INLINE void murmur3_u64_x16(const uint64_t *k, uint32_t seed, uint32_t *out)
{
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd =
        _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512i a = _mm512_loadu_si512(k), b = _mm512_loadu_si512(k + 8);
    __m512i lo = _mm512_permutex2var_epi32(a, even, b), hi = _mm512_permutex2var_epi32(a, odd, b);
    __m512i h = mur_block_x16(mur_block_x16(_mm512_set1_epi32((int)seed), lo), hi);
    h = fmix32_x16(_mm512_xor_si512(h, _mm512_set1_epi32(8)));
    _mm512_storeu_si512(out, h);
}

RH_AVX512_INLINE void u64_group_x16(const void *ctx, size_t g, uint32_t *dst)
{
    const u64_batch *b = (const u64_batch *)ctx;
    murmur3_u64_x16(b->keys + g * 16, b->seed, dst);
}

RH_AVX512_INLINE void split_x16(const rh_ring *r, const uint32_t *h, uint32_t *bucket,
                                uint32_t *offset)
{
    __m512i v = _mm512_loadu_si512(h);
    _mm512_storeu_si512(bucket, _mm512_srl_epi32(v, _mm_cvtsi32_si128((int)r->shift)));
    _mm512_storeu_si512(offset, _mm512_and_si512(v, _mm512_set1_epi32((int)r->mask)));
}

/* crowded_x8 with AVX-512's compress. */
RH_AVX512_INLINE size_t crowded_x16(const int32_t *o, uint32_t first, uint32_t *list)
{
    __mmask16 m =
        _mm512_cmpeq_epi32_mask(_mm512_loadu_si512(o), _mm512_set1_epi32(RH_CROWDED_OWNER));
    __m512i lanes =
        _mm512_add_epi32(_mm512_set1_epi32((int)first),
                         _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    _mm512_storeu_si512(list, _mm512_maskz_compress_epi32(m, lanes));
    return (size_t)__builtin_popcount(m);
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
        __m512i h = murmur3_rows_x16(rows, p->nwords, rows_len_x16(rows, p->nwords), p->seed);
        h = _mm512_permutexvar_epi32(
            _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), h);
        _mm512_storeu_si512(out, h);
        return;
    }
    for (int l = 0; l < 16; l++)
        r[l] = _mm512_maskz_loadu_epi8(p->bytes, items + (size_t)l * w);
    transpose16(r);
    _mm512_storeu_si512(out, murmur3_rows_x16(r, p->nwords, rows_len_x16(r, p->nwords), p->seed));
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
        back_to_back = 1;
        for (int l = 0; l < 15; l++)
            back_to_back &= ptr[l] + longest == ptr[l + 1];
    }
    if (same && back_to_back) {
        /* 16 keys of one length, one after another (a column of ids): read them as
         * fixed_group_x16 reads a numpy "S" array, with one mask for all (or plain
         * loads at 16 bytes), but hash each key's whole length (no NUL stripping) */
        const size_t w = longest;
        const __mmask16 m = (__mmask16)((1u << w) - 1);
        const unsigned char *items = ptr[0];
        for (int k = 0; k < 4; k++) {
            const unsigned char *it = items + (size_t)(4 * k) * w;
            if (w == 16) {
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
        __m512i h = murmur3_rows_x16(rows, (w + 3) / 4, vlen, seed);
        _mm512_storeu_si512(
            out, _mm512_permutexvar_epi32(
                     _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), h));
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

/* Int keys, fused: whole groups through fused_lookup, the rest one by one. */
RH_FORCE_INLINE void lookup_u64_loop(const rh_ring *r, const uint64_t *keys, size_t n, size_t lanes,
                                     hash_group_fn group, split_fn split, crowded_fn crowded,
                                     int32_t *out)
{
    const u64_batch batch = {keys, r->seed};
    fused_lookup(r, lanes, n / lanes, &batch, group, split, crowded, out);
    for (size_t i = n / lanes * lanes; i < n; i++)
        out[i] = r->own[rh_find_ge(r, rh_murmur3_u64(keys[i], r->seed))];
}

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

RH_FORCE_INLINE void lookup_fixed_loop(const rh_ring *r, const void *plan, size_t ngroups,
                                       size_t lanes, hash_group_fn group, split_fn split,
                                       crowded_fn crowded, const unsigned char *raw,
                                       size_t itemsize, size_t n, int32_t *out)
{
    fused_lookup(r, lanes, ngroups, plan, group, split, crowded, out);
    for (size_t i = ngroups * lanes; i < n; i++)
        out[i] = r->own[rh_find_ge(r, fixed_one(raw + i * itemsize, itemsize, r->seed))];
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

RH_AVX2_ATTR static void lookup_u64_avx2(const rh_ring *r, const uint64_t *keys, size_t n,
                                         int32_t *out)
{
    lookup_u64_loop(r, keys, n, 8, u64_group_x8, split_x8, crowded_x8, out);
}

RH_AVX2_ATTR static void lookup_fixed_avx2(const rh_ring *r, const unsigned char *raw,
                                           size_t itemsize, size_t n, int32_t *out)
{
    fixed_plan_x8 p;
    size_t ngroups = fixed_plan_x8_make(&p, raw, itemsize, n, r->seed);
    lookup_fixed_loop(r, &p, ngroups, 8, fixed_group_x8, split_x8, crowded_x8, raw, itemsize, n,
                      out);
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

RH_AVX512_ATTR static void lookup_u64_avx512(const rh_ring *r, const uint64_t *keys, size_t n,
                                             int32_t *out)
{
    lookup_u64_loop(r, keys, n, 16, u64_group_x16, split_x16, crowded_x16, out);
}

RH_AVX512_ATTR static void lookup_fixed_avx512(const rh_ring *r, const unsigned char *raw,
                                               size_t itemsize, size_t n, int32_t *out)
{
    fixed_plan_x16 p;
    size_t ngroups = fixed_plan_x16_make(&p, raw, itemsize, n, r->seed);
    lookup_fixed_loop(r, &p, ngroups, 16, fixed_group_x16, split_x16, crowded_x16, raw, itemsize, n,
                      out);
}

typedef struct {
    const unsigned char *const *ptr;
    const uint32_t *len;
    int back_to_back;
    uint32_t seed;
} spans_batch;

RH_AVX512_INLINE void spans_group_fn_x16(const void *ctx, size_t g, uint32_t *dst)
{
    const spans_batch *b = (const spans_batch *)ctx;
    spans_group_x16(b->ptr + g * 16, b->len + g * 16, b->back_to_back, b->seed, dst);
}

RH_AVX512_ATTR static void lookup_spans_avx512(const rh_ring *r, const unsigned char *const *ptr,
                                               const uint32_t *len, size_t n, int back_to_back,
                                               int32_t *out)
{
    const spans_batch batch = {ptr, len, back_to_back, r->seed};
    fused_lookup(r, 16, n / 16, &batch, spans_group_fn_x16, split_x16, crowded_x16, out);
    for (size_t i = n / 16 * 16; i < n; i++)
        out[i] = r->own[rh_find_ge(r, rh_murmur3_32(ptr[i], len[i], r->seed))];
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
static const rh_kernels kernels_avx2 = {
    "avx2", u64_block_avx2, fixed_avx2, lookup_u64_avx2, lookup_fixed_avx2, spans_portable, NULL};
static const rh_kernels kernels_avx512 = {"avx512",           u64_block_avx512,    fixed_avx512,
                                          lookup_u64_avx512,  lookup_fixed_avx512, spans_avx512,
                                          lookup_spans_avx512};

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

void rh_lookup_spans(const rh_ring *r, const unsigned char *const *ptr, const uint32_t *len,
                     size_t n, int back_to_back, int32_t *out)
{
    /* Fused where a vector build has it (measured: pyarrow utf8 ids 4.3 -> 2.9 ns
     * per key with AVX-512, once runs of equal-length keys are read as blocks);
     * other hashes, rules and builds: hash a block, then search it. */
    if (r->algo == RH_MURMUR3 && r->rule == RH_RULE_GE && kernels->lookup_spans) {
        kernels->lookup_spans(r, ptr, len, n, back_to_back, out);
        return;
    }
    uint32_t hb[RH_BLOCK];
    for (size_t start = 0; start < n; start += RH_BLOCK) {
        size_t m = n - start < RH_BLOCK ? n - start : RH_BLOCK;
        rh_hash_spans(r->algo, ptr + start, len + start, m, back_to_back, r->seed, hb);
        rh_search(r, hb, m, out + start);
    }
}

void rh_lookup_u64(const rh_ring *r, const uint64_t *keys, size_t n, int32_t *out)
{
    if (r->algo == RH_MURMUR3 && r->rule == RH_RULE_GE) {
        kernels->lookup_u64(r, keys, n, out);
        return;
    }
    /* Other hashes and rules: hash a block, then search it (independent loads,
     * which the CPU overlaps), instead of alternating the two per key. */
    uint32_t hb[RH_BLOCK];
    for (size_t start = 0; start < n; start += RH_BLOCK) {
        size_t m = n - start < RH_BLOCK ? n - start : RH_BLOCK;
        for (size_t i = 0; i < m; i++)
            hb[i] = rh_hash_u64(r->algo, keys[start + i], r->seed);
        rh_search(r, hb, m, out + start);
    }
}

void rh_lookup_fixed(const rh_ring *r, const unsigned char *raw, size_t itemsize, size_t n,
                     int32_t *out)
{
    if (r->algo == RH_MURMUR3 && r->rule == RH_RULE_GE) {
        kernels->lookup_fixed(r, raw, itemsize, n, out);
        return;
    }
    uint32_t hb[RH_BLOCK];
    for (size_t start = 0; start < n; start += RH_BLOCK) {
        size_t m = n - start < RH_BLOCK ? n - start : RH_BLOCK;
        rh_hash_fixed_block(r->algo, raw + start * itemsize, itemsize, m, r->seed, hb);
        rh_search(r, hb, m, out + start);
    }
}

void rh_init(void)
{
    rh_crc32_init();
#ifdef RH_HAVE_X86_BUILDS
    for (unsigned m = 0; m < 256; m++) {
        unsigned k = 0;
        for (unsigned l = 0; l < 8; l++)
            if (m >> l & 1)
                lanes_lut[m][k++] = (uint8_t)l;
        while (k < 8)
            lanes_lut[m][k++] = 0;
    }
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
