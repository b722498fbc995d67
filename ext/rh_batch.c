/* ringhash: batch kernels, hashing blocks of keys and searching the ring.
 *
 * On x86-64 with GCC or Clang the batch loops are built several times,
 * portable, AVX2 and AVX-512, and rh_init picks the widest build the CPU and
 * OS support; RINGHASH_SIMD=scalar|avx2|avx512 caps the choice, so the tests
 * can run every build against mmh3 and the reference ring. The vector builds
 * hash 8 or 16 keys at a time (int keys, and numpy "S" items through a
 * register transpose) and, for lookups, hash the next group of keys while the
 * scalar search of the current one waits on memory. Elsewhere (MSVC, ARM) the
 * portable build runs: hash a block, then search it.
 */
#include "rh_hash.h"
#include "rh_ring.h"

#include <stdlib.h>
#include <string.h>


/* ---------------------------------------------------------------- ring search */

/* The first position in [lo, hi) whose point is >= v, or hi (a binary search). */
static inline size_t first_at_least(const uint32_t *pts, size_t lo, size_t hi, uint64_t v)
{
    while (lo < hi) {
        size_t mid = lo + ((hi - lo) >> 1);
        if (pts[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* rh_find_crowded, inlined into the batch loops. */
static inline size_t find_crowded(const rh_ring *r, uint32_t h)
{
    size_t b = h >> r->shift, lo = 0, hi, j;
    /* The nearest uncrowded buckets: the one before starts at or before h's
     * position, the one after (idx[2**bits] = n << shift at the latest) after it. */
    for (j = b; j-- > 0;)
        if (r->idx[j] < r->crowded) {
            lo = r->idx[j] >> r->shift;
            break;
        }
    for (j = b + 1; r->idx[j] >= r->crowded; j++)
        ;
    hi = r->idx[j] >> r->shift;
    if (hi - lo <= 8) {
        /* Count the points below h among the 8 from lo, without a branch: from
         * hi on they are all above h, and reads past the padded array's last
         * entry, pts[n + 1] (the sentinel), are clamped to it. */
        size_t n1 = (r->crowded >> r->shift), pos = lo; /* n + 1 */
        for (j = lo; j < lo + 8; j++)
            pos += r->pts[j < n1 ? j : n1] < h;
        return pos;
    }
    return first_at_least(r->pts, lo, hi, h);
}

size_t rh_find_crowded(rh_ring r, uint32_t h)
{
    return find_crowded(&r, h);
}

/* Bucket entry for the points at positions [p, q) of pts (see rh_ring.h). */
static inline uint32_t index_entry(const uint32_t *pts, size_t n, size_t p, size_t q,
                                   unsigned shift)
{
    /* Written as selects, not branches: building an index runs through millions
     * of buckets whose point counts (0, 1, 2+) a branch would mispredict. */
    uint32_t mask = (1u << shift) - 1, count = (uint32_t)(q - p);
    uint32_t offset = (mask - (pts[p] & mask)) & (0u - (uint32_t)(count != 0)); /* pts[n] exists */
    uint32_t single = (uint32_t)p << shift | offset;
    return count >= 2 ? (uint32_t)(n + 1) << shift : single;
}

void rh_index_build(const uint32_t *pts, size_t n, unsigned shift, uint32_t *idx)
{
    size_t nb = (size_t)1 << (32 - shift);
    uint32_t acc = 0;
    /* Positions first (a histogram and a prefix sum: idx[b] = points in buckets
     * below b), then each entry encoded in place from its position and the next. */
    memset(idx, 0, (nb + 1) * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++)
        idx[(pts[i] >> shift) + 1]++;
    for (size_t b = 1; b <= nb; b++) {
        acc += idx[b];
        idx[b] = acc;
    }
    for (size_t b = 0; b < nb; b++)
        idx[b] = index_entry(pts, n, idx[b], idx[b + 1], shift);
    idx[nb] = (uint32_t)n << shift;
}

void rh_index_fix(uint32_t *idx, unsigned shift, const uint32_t *pts, size_t n, size_t b)
{
    uint64_t start = (uint64_t)b << shift, end = (uint64_t)(b + 1) << shift;
    idx[b] = index_entry(pts, n, first_at_least(pts, 0, n, start), first_at_least(pts, 0, n, end),
                         shift);
}

void rh_search(const rh_ring *r, const uint32_t *hashes, size_t m, int32_t *out)
{
    const rh_ring ring = *r; /* a copy: stores to out cannot change it */
    for (size_t i = 0; i < m; i++)
        out[i] = ring.own[rh_find(&ring, hashes[i])];
}


/* ---------------------------------------------------------------- hashing loops */

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
#define RH_DEFINE_U64_LOOP(SUFFIX, ATTR)                                                  \
    ATTR static void u64_block_##SUFFIX(const uint64_t *keys, size_t n, uint32_t seed,    \
                                        uint32_t *out)                                     \
    {                                                                                      \
        for (size_t i = 0; i < n; i++)                                                     \
            out[i] = rh_murmur3_u64(keys[i], seed);                                        \
    }
RH_DEFINE_U64_LOOP(portable, RH_PORTABLE_ATTR)

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define RH_HAVE_X86_BUILDS 1
#include <immintrin.h>

/* The vector helpers below are forced inline: called per group of keys, a call
 * (and the vzeroupper at its return) would cost as much as the group's work. */
/* BMI2 (shrx) comes with AVX2 on every CPU that has it; rh_init checks both. */
#define RH_AVX2_ATTR __attribute__((target("avx2,bmi2")))
#define RH_AVX2_INLINE RH_AVX2_ATTR __attribute__((always_inline)) static inline
#define RH_AVX512_INLINE RH_AVX512_ATTR __attribute__((always_inline)) static inline

#define RH_ROTL256(x, r) _mm256_or_si256(_mm256_slli_epi32(x, r), _mm256_srli_epi32(x, 32 - (r)))
/* murmur3's h * 5 as (h << 2) + h: a vector multiply has about 10 cycles of latency. */
RH_AVX2_INLINE __m256i rh_times5_256(__m256i x)
{
    return _mm256_add_epi32(_mm256_slli_epi32(x, 2), x);
}

#define RH_AVX512_TARGET "avx2,bmi2,avx512f,avx512bw,avx512vl,avx512cd"
#if defined(__clang__)
#define RH_AVX512_ATTR __attribute__((target(RH_AVX512_TARGET), min_vector_width(512)))
#else
#define RH_AVX512_ATTR __attribute__((target(RH_AVX512_TARGET ",prefer-vector-width=512")))
#endif
RH_DEFINE_U64_LOOP(avx2, RH_AVX2_ATTR)


RH_AVX512_INLINE __m512i rh_times5_512(__m512i x)
{
    return _mm512_add_epi32(_mm512_slli_epi32(x, 2), x);
}
RH_DEFINE_U64_LOOP(avx512, RH_AVX512_ATTR)

/* Lookups of int keys fused with their hashing: while the scalar search of one
 * group of keys waits on its memory loads, the vector unit hashes the next
 * group (and splits each hash into its bucket and offset in the bucket, see
 * rh_ring.h), so the two overlap instead of alternating block by block. The
 * helpers below are the vector steps of RH_FUSED_LOOKUP. */

/* Appends to list the numbers first + l of the lanes l of 8 results that hold
 * RH_CROWDED_OWNER, without a branch (a left-pack through a permutation from
 * lanes_lut, set once by rh_init; list has room for 8 more); returns how many. */
static uint8_t lanes_lut[256][8];
RH_AVX2_INLINE size_t crowded8(const int32_t *o, uint32_t first, uint32_t *list)
{
    __m256i hit = _mm256_cmpeq_epi32(_mm256_loadu_si256((const __m256i *)o),
                                     _mm256_set1_epi32(RH_CROWDED_OWNER));
    unsigned m = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(hit));
    __m256i perm = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)lanes_lut[m]));
    __m256i lanes = _mm256_add_epi32(_mm256_set1_epi32((int)first),
                                     _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_storeu_si256((__m256i *)list, _mm256_permutevar8x32_epi32(lanes, perm));
    return (size_t)__builtin_popcount(m);
}

RH_AVX2_INLINE void split8(const rh_ring *r, const uint32_t *h, uint32_t *bucket, uint32_t *offset)
{
    __m256i v = _mm256_loadu_si256((const __m256i *)h);
    _mm256_storeu_si256((__m256i *)bucket, _mm256_srl_epi32(v, _mm_cvtsi32_si128((int)r->shift)));
    _mm256_storeu_si256((__m256i *)offset, _mm256_and_si256(v, _mm256_set1_epi32((int)r->mask)));
}

RH_AVX2_INLINE void murmur_u64_x8(const uint64_t *k, uint32_t seed,
                                                                  uint32_t *out)
{
    const __m256i odd_even = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    __m256i a = _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const __m256i *)k), odd_even);
    __m256i b = _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const __m256i *)(k + 4)), odd_even);
    __m256i words[2] = {_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31)};
    const __m256i c1 = _mm256_set1_epi32((int)0xcc9e2d51u), c2 = _mm256_set1_epi32(0x1b873593);
    const __m256i c3 = _mm256_set1_epi32((int)0xe6546b64u);
    __m256i h = _mm256_set1_epi32((int)seed);
    for (int j = 0; j < 2; j++) {
        __m256i x = _mm256_mullo_epi32(words[j], c1);
        x = _mm256_mullo_epi32(RH_ROTL256(x, 15), c2);
        h = _mm256_xor_si256(h, x);
        h = _mm256_add_epi32(rh_times5_256(RH_ROTL256(h, 13)), c3);
    }
    h = _mm256_xor_si256(h, _mm256_set1_epi32(8));
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
    h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)0x85ebca6bu));
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 13));
    h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)0xc2b2ae35u));
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
    _mm256_storeu_si256((__m256i *)out, h);
}

/* crowded8 for 16 results, with AVX-512's compress (list has room for 16 more). */
RH_AVX512_INLINE size_t crowded16(const int32_t *o, uint32_t first, uint32_t *list)
{
    __mmask16 m = _mm512_cmpeq_epi32_mask(_mm512_loadu_si512(o), _mm512_set1_epi32(RH_CROWDED_OWNER));
    __m512i lanes = _mm512_add_epi32(_mm512_set1_epi32((int)first),
                                     _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                                       13, 14, 15));
    _mm512_storeu_si512(list, _mm512_maskz_compress_epi32(m, lanes));
    return (size_t)__builtin_popcount(m);
}

RH_AVX512_INLINE void split16(const rh_ring *r, const uint32_t *h, uint32_t *bucket, uint32_t *offset)
{
    __m512i v = _mm512_loadu_si512(h);
    _mm512_storeu_si512(bucket, _mm512_srl_epi32(v, _mm_cvtsi32_si128((int)r->shift)));
    _mm512_storeu_si512(offset, _mm512_and_si512(v, _mm512_set1_epi32((int)r->mask)));
}

RH_AVX512_INLINE void murmur_u64_x16(const uint64_t *k, uint32_t seed, uint32_t *out)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512i a = _mm512_loadu_si512(k), b = _mm512_loadu_si512(k + 8);
    __m512i words[2] = {_mm512_permutex2var_epi32(a, even, b), _mm512_permutex2var_epi32(a, odd, b)};
    const __m512i c1 = _mm512_set1_epi32((int)0xcc9e2d51u), c2 = _mm512_set1_epi32(0x1b873593);
    const __m512i c3 = _mm512_set1_epi32((int)0xe6546b64u);
    __m512i h = _mm512_set1_epi32((int)seed);
    for (int j = 0; j < 2; j++) {
        __m512i x = _mm512_mullo_epi32(words[j], c1);
        x = _mm512_mullo_epi32(_mm512_rol_epi32(x, 15), c2);
        h = _mm512_xor_si512(h, x);
        h = _mm512_add_epi32(rh_times5_512(_mm512_rol_epi32(h, 13)), c3);
    }
    h = _mm512_xor_si512(h, _mm512_set1_epi32(8));
    h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
    h = _mm512_mullo_epi32(h, _mm512_set1_epi32((int)0x85ebca6bu));
    h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 13));
    h = _mm512_mullo_epi32(h, _mm512_set1_epi32((int)0xc2b2ae35u));
    h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
    _mm512_storeu_si512(out, h);
}

/* GCC and Clang both read this pragma; unrolled, a group's searches are one
 * straight run of independent loads (about 5% faster). */
#define RH_UNROLL_16 _Pragma("GCC unroll 16")

/* Keys per round of look-ups again in RH_FUSED_LOOKUP (a multiple of 16). */
#define RH_FIX_BLOCK 512

/* The fused lookup loop: HASH_GROUP(g, dst) hashes group g (LANES_ keys) into
 * dst and SPLIT splits those hashes; group g + 1 is hashed before group g is
 * searched. Keys past the last whole group (ngroups * LANES_ onwards) are left
 * to the caller. The ring is copied so that stores to out cannot change it.
 *
 * The search has no branch: every key gets own[(entry + offset) >> shift],
 * which is RH_CROWDED_OWNER for a key in a crowded bucket (rh_ring.h). After
 * each RH_FIX_BLOCK keys, CROWDED lists such keys (without a branch either)
 * and they are searched again (rh_find_crowded) from their hashes, kept in a
 * buffer of two blocks. A branch on the entry instead would be mispredicted
 * for about 1% of keys, and in a loop that runs this far ahead of its loads
 * each misprediction throws away the work of dozens of keys; measured, the
 * branch-free loop with its second pass is 5-10% faster (uint64 keys, 100 and
 * 1,000 nodes). */
#define RH_FUSED_LOOKUP(r, LANES_, ngroups, HASH_GROUP, SPLIT, CROWDED, out)                    \
    do {                                                                                        \
        uint32_t hb_[2 * RH_FIX_BLOCK], bb_[2][LANES_], ob_[2][LANES_];                         \
        uint32_t fix_[RH_FIX_BLOCK + 16]; /* the block's crowded keys, from first_ */           \
        size_t first_ = 0;                /* the block's first key */                           \
        const rh_ring ring_ = *(r);                                                             \
        if ((ngroups) > 0) {                                                                    \
            HASH_GROUP(0, hb_);                                                                 \
            SPLIT(&ring_, hb_, bb_[0], ob_[0]);                                                 \
        }                                                                                       \
        for (size_t g_ = 0; g_ < (ngroups); g_++) {                                             \
            if (g_ + 1 < (ngroups)) {                                                           \
                uint32_t *h_ = hb_ + (g_ + 1) * (LANES_) % (2 * RH_FIX_BLOCK);                  \
                HASH_GROUP(g_ + 1, h_);                                                         \
                SPLIT(&ring_, h_, bb_[(g_ + 1) & 1], ob_[(g_ + 1) & 1]);                        \
            }                                                                                   \
            RH_UNROLL_16 for (int l_ = 0; l_ < (LANES_); l_++)                                  \
                (out)[g_ * (LANES_) + l_] = ring_.own[(ring_.idx[bb_[g_ & 1][l_]] +             \
                                                       ob_[g_ & 1][l_]) >> ring_.shift];        \
            size_t end_ = (g_ + 1) * (LANES_);                                                  \
            if (end_ - first_ == RH_FIX_BLOCK || g_ + 1 == (ngroups)) {                         \
                size_t nfix_ = 0;                                                               \
                for (size_t k0_ = first_; k0_ < end_; k0_ += (LANES_))                          \
                    nfix_ += CROWDED((out) + k0_, (uint32_t)(k0_ - first_), fix_ + nfix_);      \
                for (size_t j_ = 0; j_ < nfix_; j_++) {                                         \
                    size_t k_ = first_ + fix_[j_];                                              \
                    (out)[k_] = ring_.own[find_crowded(&ring_, hb_[k_ % (2 * RH_FIX_BLOCK)])];  \
                }                                                                               \
                first_ = end_;                                                                  \
            }                                                                                   \
        }                                                                                       \
    } while (0)

#define RH_U64_GROUP8(g, dst) murmur_u64_x8(keys + (g) * 8, seed, dst)
#define RH_U64_GROUP16(g, dst) murmur_u64_x16(keys + (g) * 16, seed, dst)
#define RH_DEFINE_FUSED_U64(SUFFIX, ATTR, LANES_, GROUP, SPLIT, CROWDED)                    \
    ATTR static void lookup_u64_##SUFFIX(const rh_ring *r, const uint64_t *keys, size_t n,      \
                                         uint32_t seed, int32_t *out)                           \
    {                                                                                           \
        RH_FUSED_LOOKUP(r, LANES_, n / LANES_, GROUP, SPLIT, CROWDED, out);                     \
        for (size_t i = n / LANES_ * LANES_; i < n; i++)                                        \
            out[i] = r->own[rh_find(r, rh_murmur3_u64(keys[i], seed))];                         \
    }
RH_DEFINE_FUSED_U64(avx2, RH_AVX2_ATTR, 8, RH_U64_GROUP8, split8, crowded8)
RH_DEFINE_FUSED_U64(avx512, RH_AVX512_ATTR, 16, RH_U64_GROUP16, split16, crowded16)

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

/* Fixed-width items, AVX2: the build of fixed_x16 below for 8 items at a time,
 * for items of up to 32 bytes. AVX2 has no byte-masked load, so each item is
 * read whole (16 or 32 bytes) and masked to its width; vector groups stop where
 * that read would pass the end of the array, and the last few items go the
 * scalar way. */
typedef struct {
    __m256i keep;        /* 0xFF for the bytes of an item (in each 16-byte lane if narrow) */
    int narrow;          /* items of at most 16 bytes: two to a register */
    size_t itemsize, nwords, ngroups;
    uint32_t seed;
} fixed8_plan;

RH_AVX2_ATTR static size_t fixed8_plan_make(fixed8_plan *p, size_t itemsize,
                                                              size_t n, uint32_t seed)
{
    static const unsigned char ramp[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                           11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                           22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
    static const unsigned char ramp2[32] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    p->ngroups = 0;
    p->narrow = itemsize <= 16;
    size_t read = p->narrow ? 16 : 32; /* bytes read per item */
    if (itemsize == 0 || itemsize > 32 || n < 8 || n * itemsize < read + 7 * itemsize)
        return 0;
    p->keep = _mm256_cmpgt_epi8(_mm256_set1_epi8((char)itemsize),
                                _mm256_loadu_si256((const __m256i *)(p->narrow ? ramp2 : ramp)));
    p->itemsize = itemsize;
    p->nwords = (itemsize + 3) / 4;
    p->seed = seed;
    /* Items q whose read ends inside the array, q * itemsize + read <= n *
     * itemsize (at least 8, checked above); a group's last item must be one. */
    p->ngroups = ((n * itemsize - read) / itemsize + 1) / 8;
    return p->ngroups;
}

/* Murmur3 of 8 items given as rows (rows[j]: word j of each item, zero past
 * its end) and lengths. Past a lane's last full block its words are zero except
 * one tail word; mixing a tail word is "h ^= mix(k)" and mix(0) = 0, so one
 * select per word covers blocks, the tail and the padding. */
RH_AVX2_INLINE __m256i murmur_rows8(const __m256i *rows, size_t nwords,
                                                                   __m256i vlen, uint32_t seed)
{
    const __m256i c1 = _mm256_set1_epi32((int)0xcc9e2d51u), c2 = _mm256_set1_epi32(0x1b873593);
    const __m256i c3 = _mm256_set1_epi32((int)0xe6546b64u);
    __m256i nblocks = _mm256_srli_epi32(vlen, 2);
    __m256i h = _mm256_set1_epi32((int)seed);
    for (size_t j = 0; j < nwords; j++) {
        __m256i k = _mm256_mullo_epi32(rows[j], c1);
        k = _mm256_mullo_epi32(RH_ROTL256(k, 15), c2);
        __m256i x = _mm256_xor_si256(h, k);
        __m256i b = _mm256_add_epi32(rh_times5_256(RH_ROTL256(x, 13)), c3);
        /* lengths are at most 32, so a signed comparison is exact */
        __m256i full = _mm256_cmpgt_epi32(nblocks, _mm256_set1_epi32((int)j));
        h = _mm256_blendv_epi8(x, b, full);
    }
    h = _mm256_xor_si256(h, vlen);
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
    h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)0x85ebca6bu));
    h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 13));
    h = _mm256_mullo_epi32(h, _mm256_set1_epi32((int)0xc2b2ae35u));
    return _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
}

/* Item lengths (without trailing NULs) from the rows: 4j + the bytes up to the
 * last non-zero one of word j, for the last non-zero word j of each item. */
RH_AVX2_INLINE __m256i rows_len8(const __m256i *rows, size_t nwords)
{
    const __m256i zero = _mm256_setzero_si256();
    __m256i len = zero;
    for (size_t j = 0; j < nwords; j++) {
        __m256i x = rows[j];
        /* bytes used = 4 - (number of the shifts x >> 0, 8, 16, 24 that are zero) */
        __m256i zeros = _mm256_add_epi32(
            _mm256_add_epi32(_mm256_cmpeq_epi32(x, zero),
                             _mm256_cmpeq_epi32(_mm256_srli_epi32(x, 8), zero)),
            _mm256_add_epi32(_mm256_cmpeq_epi32(_mm256_srli_epi32(x, 16), zero),
                             _mm256_cmpeq_epi32(_mm256_srli_epi32(x, 24), zero)));
        __m256i here = _mm256_add_epi32(_mm256_set1_epi32((int)(4 * j + 4)), zeros);
        len = _mm256_blendv_epi8(here, len, _mm256_cmpeq_epi32(x, zero));
    }
    return len;
}

RH_AVX2_INLINE void fixed_x8(const fixed8_plan *p,
                                                            const unsigned char *g, uint32_t *out)
{
    const size_t w = p->itemsize;
    __m256i r[8];
    if (p->narrow) {
        /* r[k] holds items 2k (low lane) and 2k + 1; a 4x4 transpose inside the
         * lanes then gives rows in the order item 2k + i -> position 4i + k,
         * undone by one permute at the end. */
        for (int k = 0; k < 4; k++) {
            const unsigned char *it = g + (size_t)(2 * k) * w;
            __m256i pair = _mm256_inserti128_si256(
                _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)it)),
                _mm_loadu_si128((const __m128i *)(it + w)), 1);
            r[k] = _mm256_and_si256(pair, p->keep);
        }
        __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
        __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
        __m256i rows[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2),
                           _mm256_unpacklo_epi64(t1, t3), _mm256_unpackhi_epi64(t1, t3)};
        __m256i h = murmur_rows8(rows, p->nwords, rows_len8(rows, p->nwords), p->seed);
        h = _mm256_permutevar8x32_epi32(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)out, h);
        return;
    }
    for (int l = 0; l < 8; l++)
        r[l] = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(g + (size_t)l * w)), p->keep);
    transpose8(r);
    _mm256_storeu_si256((__m256i *)out, murmur_rows8(r, p->nwords, rows_len8(r, p->nwords), p->seed));
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
 * item (nothing read past it), its length from the mask of its non-zero bytes
 * (no branch, so mixed lengths cost nothing extra), a transpose so that vector
 * j holds word j of all 16 items, then 16 murmur states advance one word per
 * step (murmur_rows16). Items of at most 16 bytes go four to a register, which
 * needs a 4x4 transpose inside each 128-bit lane instead of a full 16x16 one. */
typedef struct {
    __mmask64 bytes; /* one bit per byte of an item */
    int narrow;      /* items of at most 16 bytes */
    size_t itemsize, nwords, ngroups;
    uint32_t seed;
} fixed16_plan;

static size_t fixed16_plan_make(fixed16_plan *p, size_t itemsize, size_t n, uint32_t seed)
{
    p->ngroups = 0;
    if (itemsize == 0 || itemsize > 64)
        return 0;
    p->bytes = itemsize == 64 ? ~(__mmask64)0 : (((__mmask64)1 << itemsize) - 1);
    p->narrow = itemsize <= 16;
    p->itemsize = itemsize;
    p->nwords = (itemsize + 3) / 4;
    p->seed = seed;
    p->ngroups = n / 16;
    return p->ngroups;
}

/* The AVX-512 build of murmur_rows8. */
RH_AVX512_INLINE __m512i murmur_rows16(const __m512i *rows, size_t nwords, __m512i vlen,
                                                   uint32_t seed)
{
    const __m512i c1 = _mm512_set1_epi32((int)0xcc9e2d51u), c2 = _mm512_set1_epi32(0x1b873593);
    const __m512i c3 = _mm512_set1_epi32((int)0xe6546b64u);
    __m512i nblocks = _mm512_srli_epi32(vlen, 2);
    __m512i h = _mm512_set1_epi32((int)seed);
    for (size_t j = 0; j < nwords; j++) {
        __m512i k = _mm512_mullo_epi32(rows[j], c1);
        k = _mm512_mullo_epi32(_mm512_rol_epi32(k, 15), c2);
        __m512i x = _mm512_xor_si512(h, k);
        __m512i b = _mm512_add_epi32(rh_times5_512(_mm512_rol_epi32(x, 13)), c3);
        __mmask16 full = _mm512_cmpgt_epu32_mask(nblocks, _mm512_set1_epi32((int)j));
        h = _mm512_mask_blend_epi32(full, x, b);
    }
    h = _mm512_xor_si512(h, vlen);
    h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
    h = _mm512_mullo_epi32(h, _mm512_set1_epi32((int)0x85ebca6bu));
    h = _mm512_xor_si512(h, _mm512_srli_epi32(h, 13));
    h = _mm512_mullo_epi32(h, _mm512_set1_epi32((int)0xc2b2ae35u));
    return _mm512_xor_si512(h, _mm512_srli_epi32(h, 16));
}

/* Item lengths as in rows_len8, with AVX-512's per-lane leading-zero count: a
 * non-zero word j ends the item at 4j + ceil(bit length / 8) bytes, which is
 * (32j + 39 - lzcnt) >> 3. */
RH_AVX512_INLINE __m512i rows_len16(const __m512i *rows, size_t nwords)
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

RH_AVX512_INLINE void fixed_x16(const fixed16_plan *p, const unsigned char *g,
                                            uint32_t *out)
{
    const size_t w = p->itemsize;
    __m512i r[16];
    if (p->narrow) {
        /* r[k] holds items 4k..4k+3, one per 128-bit lane; a 4x4 transpose inside
         * the lanes gives rows in the order item 4k + i -> position 4i + k, undone
         * by one permute at the end. */
        const __mmask16 m = (__mmask16)p->bytes;
        for (int k = 0; k < 4; k++) {
            const unsigned char *it = g + (size_t)(4 * k) * w;
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
        __m512i h = murmur_rows16(rows, p->nwords, rows_len16(rows, p->nwords), p->seed);
        h = _mm512_permutexvar_epi32(
            _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), h);
        _mm512_storeu_si512(out, h);
        return;
    }
    for (int l = 0; l < 16; l++)
        r[l] = _mm512_maskz_loadu_epi8(p->bytes, g + (size_t)l * w);
    transpose16(r);
    _mm512_storeu_si512(out, murmur_rows16(r, p->nwords, rows_len16(r, p->nwords), p->seed));
}

/* The hashing loops and the fused lookups over the group kernels. GROUP(g, dst)
 * hashes group g of the items (its plan is p) into dst. */
#define RH_DEFINE_FIXED(SUFFIX, ATTR, LANES_, PLAN, PLAN_MAKE, GROUP, SPLIT, CROWDED)           \
    ATTR static void fixed_##SUFFIX(const unsigned char *raw, size_t itemsize, size_t n,        \
                                    uint32_t seed, uint32_t *out)                               \
    {                                                                                           \
        PLAN p;                                                                                 \
        size_t ngroups = PLAN_MAKE(&p, itemsize, n, seed), done = ngroups * LANES_;             \
        for (size_t g = 0; g < ngroups; g++)                                                    \
            GROUP(g, out + g * LANES_);                                                         \
        fixed_scalar(raw + done * itemsize, itemsize, n - done, seed, out + done);              \
    }                                                                                           \
    ATTR static void lookup_fixed_##SUFFIX(const rh_ring *r, const unsigned char *raw,          \
                                           size_t itemsize, size_t n, uint32_t seed,            \
                                           int32_t *out)                                        \
    {                                                                                           \
        PLAN p;                                                                                 \
        size_t ngroups = PLAN_MAKE(&p, itemsize, n, seed), done = ngroups * LANES_;             \
        RH_FUSED_LOOKUP(r, LANES_, ngroups, GROUP, SPLIT, CROWDED, out);                        \
        for (size_t i = done; i < n; i++)                                                       \
            out[i] = r->own[rh_find(r, fixed_one(raw + i * itemsize, itemsize, seed))];         \
    }
#define RH_FIXED_GROUP8(g, dst) fixed_x8(&p, raw + (g) * 8 * itemsize, dst)
#define RH_FIXED_GROUP16(g, dst) fixed_x16(&p, raw + (g) * 16 * itemsize, dst)
RH_DEFINE_FIXED(avx2, RH_AVX2_ATTR, 8, fixed8_plan, fixed8_plan_make, RH_FIXED_GROUP8, split8,
                crowded8)
RH_DEFINE_FIXED(avx512, RH_AVX512_ATTR, 16, fixed16_plan, fixed16_plan_make, RH_FIXED_GROUP16,
                split16, crowded16)
#endif

/* The portable lookup: hash a block, then search it. */
static void lookup_u64_portable(const rh_ring *r, const uint64_t *keys, size_t n, uint32_t seed,
                                int32_t *out)
{
    uint32_t hb[512];
    for (size_t start = 0; start < n; start += 512) {
        size_t m = n - start < 512 ? n - start : 512;
        u64_block_portable(keys + start, m, seed, hb);
        rh_search(r, hb, m, out + start);
    }
}

static void lookup_fixed_portable(const rh_ring *r, const unsigned char *raw, size_t itemsize,
                                  size_t n, uint32_t seed, int32_t *out)
{
    uint32_t hb[512];
    for (size_t start = 0; start < n; start += 512) {
        size_t m = n - start < 512 ? n - start : 512;
        fixed_scalar(raw + start * itemsize, itemsize, m, seed, hb);
        rh_search(r, hb, m, out + start);
    }
}

typedef void (*u64_loop)(const uint64_t *, size_t, uint32_t, uint32_t *);
typedef void (*lookup_fixed_loop)(const rh_ring *, const unsigned char *, size_t, size_t, uint32_t,
                                  int32_t *);
typedef void (*lookup_loop)(const rh_ring *, const uint64_t *, size_t, uint32_t, int32_t *);
typedef void (*fixed_loop)(const unsigned char *, size_t, size_t, uint32_t, uint32_t *);

/* Set once by rh_init (at module import, under the GIL), read-only afterwards. */
static u64_loop u64_block = u64_block_portable;
static fixed_loop fixed_block = fixed_scalar;
static lookup_loop lookup_u64 = lookup_u64_portable;
static lookup_fixed_loop lookup_fixed = lookup_fixed_portable;
static const char *simd_name = "scalar";

void rh_murmur3_u64_block(const uint64_t *keys, size_t n, uint32_t seed, uint32_t *out)
{
    u64_block(keys, n, seed, out);
}

void rh_hash_fixed_block(int algo, const unsigned char *raw, size_t itemsize, size_t n,
                         uint32_t seed, uint32_t *out)
{
    if (algo == RH_MURMUR3) {
        fixed_block(raw, itemsize, n, seed, out);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const unsigned char *item = raw + i * itemsize;
        out[i] = rh_hash_bytes(algo, item, fixed_len(item, itemsize), seed);
    }
}

void rh_lookup_u64(const rh_ring *r, const uint64_t *keys, size_t n, uint32_t seed, int32_t *out)
{
    lookup_u64(r, keys, n, seed, out);
}

void rh_lookup_fixed(const rh_ring *r, const unsigned char *raw, size_t itemsize, size_t n,
                     uint32_t seed, int32_t *out)
{
    lookup_fixed(r, raw, itemsize, n, seed, out);
}

#ifdef RH_HAVE_X86_BUILDS
#include <cpuid.h>

/* The widest build this CPU and OS can run: 2 AVX-512 (F, BW, VL, CD), 1 AVX2 (with BMI2),
 * 0 neither.
 * Read from CPUID and XCR0 directly: __builtin_cpu_supports needs a runtime
 * symbol (__cpu_model) that Apple's x86-64 toolchain does not always provide. */
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
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((b >> 5) & 1) || !((b >> 8) & 1)) /* AVX2, BMI2 */
        return 0;
    int avx512 = ((b >> 16) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1) && /* F, BW, VL */
                 ((b >> 28) & 1) &&                                        /* CD */
                 (xcr0_lo & 0xE6) == 0xE6; /* and opmask and ZMM state */
    return avx512 ? 2 : 1;
}
#endif

void rh_init(void)
{
    rh_crc32_init();
#ifdef RH_HAVE_X86_BUILDS
    for (unsigned m = 0; m < 256; m++) { /* lanes_lut[m]: the set bits of m, in order */
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
    if (level == 2) {
        u64_block = u64_block_avx512;
        fixed_block = fixed_avx512;
        lookup_u64 = lookup_u64_avx512;
        lookup_fixed = lookup_fixed_avx512;
        simd_name = "avx512";
    } else if (level == 1) {
        u64_block = u64_block_avx2;
        fixed_block = fixed_avx2;
        lookup_u64 = lookup_u64_avx2;
        lookup_fixed = lookup_fixed_avx2;
        simd_name = "avx2";
    }
#endif
}

const char *rh_simd(void)
{
    return simd_name;
}
