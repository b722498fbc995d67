/* ringhash: the other consistent-hashing algorithms (see rh_algos.h). */
#include "rh_algos.h"

#include <stdlib.h>
#include <string.h>

#include "rh_hash.h"

/* ---------------------------------------------------------------- jump */

static void jump_block_portable(const uint64_t *keys, size_t n, int32_t buckets, int32_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = rh_jump(keys[i], buckets);
}

/* ---------------------------------------------------------------- rendezvous */

static inline uint32_t node_value(uint32_t k, uint32_t seed)
{
    return rh_fmix32(rh_mur_block(seed, k) ^ 4u);
}

/* -ln((h + 0.5) / 2**32), branch-free and the same in every build (no FMA:
 * the file is compiled with contraction off), so results do not depend on the
 * machine: x = h + 0.5 = m * 2**e with m in [sqrt(1/2), sqrt(2)), then
 * ln m = 2 atanh(s), s = (m - 1) / (m + 1), by its series to s**23 (|s| <=
 * 0.1716: error below 2**-53 relative), and -ln u = 32 ln 2 - e ln 2 - ln m. */
double rh_neg_ln_u32(uint32_t h)
{
    double x = (double)h + 0.5;
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int64_t e = (int64_t)((bits >> 52) & 0x7ff) - 1023;
    uint64_t mbits = (bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
    double m;
    memcpy(&m, &mbits, sizeof m);
    int64_t big = m > 1.4142135623730951; /* move m into [sqrt(1/2), sqrt(2)) */
    m = big ? m * 0.5 : m;
    e += big;
    double s = (m - 1.0) / (m + 1.0), z = s * s;
    double p = 1.0 / 23;
    p = p * z + 1.0 / 21;
    p = p * z + 1.0 / 19;
    p = p * z + 1.0 / 17;
    p = p * z + 1.0 / 15;
    p = p * z + 1.0 / 13;
    p = p * z + 1.0 / 11;
    p = p * z + 1.0 / 9;
    p = p * z + 1.0 / 7;
    p = p * z + 1.0 / 5;
    p = p * z + 1.0 / 3;
    p = p * z + 1.0;
    double ln_m = 2.0 * s * p;
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    double k = (double)(32 - e);
    return (k * ln2_hi - ln_m) + k * ln2_lo;
}

/* The least score -ln(u_j) * inv_w[j] over nodes with values v, with few
 * logarithms: lo[j] = (1 - u_j) * inv_w[j] is a lower bound of node j's score
 * (-ln u >= 1 - u), so after scoring the node of least bound exactly (U), only
 * nodes whose bound is at most U (widened by 2**-40 for rounding, far above
 * the error of either computation) can win; they are scored exactly, in index
 * order. Typically one to three logarithms per key instead of one per node;
 * the result is the exact argmin, the same as scoring every node. */
static inline int32_t rendezvous_pick(const uint32_t *v, const double *inv_w, size_t nn, double *lo)
{
    for (size_t j = 0; j < nn; j++)
        lo[j] = (1.0 - ((double)v[j] + 0.5) * 0x1p-32) * inv_w[j];
    /* the least bound, by eight independent minima (no chain of dependent compares) */
    double acc[8];
    for (int l = 0; l < 8; l++)
        acc[l] = lo[0];
    size_t whole = nn / 8 * 8;
    for (size_t j = 0; j < whole; j += 8)
        for (size_t l = 0; l < 8; l++)
            acc[l] = lo[j + l] < acc[l] ? lo[j + l] : acc[l];
    for (size_t j = whole; j < nn; j++)
        acc[0] = lo[j] < acc[0] ? lo[j] : acc[0];
    double bound = acc[0];
    for (int l = 1; l < 8; l++)
        bound = acc[l] < bound ? acc[l] : bound;
    size_t first = 0;
    while (lo[first] != bound)
        first++;
    double least = rh_neg_ln_u32(v[first]) * inv_w[first];
    double cut = least * (1.0 + 0x1p-40);
    size_t who = first, ncut = 0;
    for (size_t j = 0; j < nn; j++) /* how many may win: a vectorized count, usually 1 */
        ncut += lo[j] <= cut;
    for (size_t j = 0; j < nn && ncut > 1; j++) {
        if (lo[j] > cut || j == first)
            continue;
        double t = rh_neg_ln_u32(v[j]) * inv_w[j];
        if (t < least || (t == least && j < who)) {
            least = t;
            who = j;
        }
    }
    return (int32_t)who;
}

static inline int32_t rendezvous_one(uint32_t k, const uint32_t *seeds, const double *inv_w,
                                     size_t nn)
{
    int32_t best = 0;
    if (!inv_w) {
        uint32_t top = node_value(k, seeds[0]);
        for (size_t i = 1; i < nn; i++) {
            uint32_t v = node_value(k, seeds[i]);
            if (v > top) {
                top = v;
                best = (int32_t)i;
            }
        }
        return best;
    }
    double least = rh_neg_ln_u32(node_value(k, seeds[0])) * inv_w[0];
    for (size_t i = 1; i < nn; i++) {
        double t = rh_neg_ln_u32(node_value(k, seeds[i])) * inv_w[i];
        if (t < least) {
            least = t;
            best = (int32_t)i;
        }
    }
    return best;
}

/* Scores of one key for every node, in blocks small enough for the stack, so
 * the compiler vectorizes the node loop (the log has no branch). */
#define RH_NODE_BLOCK 256

static void rendezvous_block_portable(const uint32_t *hashes, size_t n, const uint32_t *seeds,
                                      const double *inv_w, size_t nn, int32_t *out)
{
    if (nn <= RH_NODE_BLOCK && inv_w) {
        uint32_t v[RH_NODE_BLOCK];
        double lo[RH_NODE_BLOCK];
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < nn; j++)
                v[j] = node_value(hashes[i], seeds[j]);
            out[i] = rendezvous_pick(v, inv_w, nn, lo);
        }
        return;
    }
    if (nn <= RH_NODE_BLOCK) {
        uint32_t v[RH_NODE_BLOCK];
        for (size_t i = 0; i < n; i++) {
            uint32_t k = hashes[i];
            for (size_t j = 0; j < nn; j++)
                v[j] = node_value(k, seeds[j]);
            int32_t best = 0;
            for (size_t j = 1; j < nn; j++)
                best = v[j] > v[best] ? (int32_t)j : best;
            out[i] = best;
        }
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = rendezvous_one(hashes[i], seeds, inv_w, nn);
}

int rh_rendezvous_rank_block(const uint32_t *hashes, size_t n, const uint32_t *seeds,
                             const double *inv_w, size_t nn, size_t want, int32_t *out)
{
    /* Insertion into a sorted list of the best `want` so far (want <= nn). */
    double score[64];
    double *sc = want <= 64 ? score : (double *)malloc(want * sizeof(double));
    if (!sc)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int32_t *row = out + i * want;
        size_t got = 0;
        for (size_t j = 0; j < nn; j++) {
            uint32_t v = node_value(hashes[i], seeds[j]);
            /* uniform weights rank by -v (greater value first), weighted by t */
            double t = inv_w ? rh_neg_ln_u32(v) * inv_w[j] : -(double)v;
            if (got == want && !(t < sc[got - 1]))
                continue;
            size_t at = got < want ? got++ : want - 1;
            while (at > 0 && t < sc[at - 1]) {
                sc[at] = sc[at - 1];
                row[at] = row[at - 1];
                at--;
            }
            sc[at] = t;
            row[at] = (int32_t)j;
        }
    }
    if (sc != score)
        free(sc);
    return 0;
}

/* ---------------------------------------------------------------- maglev */

int rh_maglev_build(const uint32_t *offset, const uint32_t *skip, const double *weight, size_t nn,
                    uint32_t m, int32_t *table)
{
    uint64_t *next = (uint64_t *)calloc(nn ? nn : 1, sizeof(uint64_t)); /* permutation index */
    double *claimed = (double *)calloc(nn ? nn : 1, sizeof(double));
    if (!next || !claimed) {
        free(next);
        free(claimed);
        return -2;
    }
    for (uint32_t e = 0; e < m; e++)
        table[e] = -1;
    uint32_t filled = 0;
    int status = nn ? 0 : -1;
    for (uint64_t round = 1; filled < m && status == 0; round++) {
        int took = 0;
        for (size_t i = 0; i < nn && filled < m; i++) {
            /* node i may take a turn while its claims lag weight * rounds */
            if (claimed[i] + 1.0 > weight[i] * (double)round)
                continue;
            claimed[i] += 1.0;
            took = 1;
            uint32_t c;
            do {
                c = (uint32_t)(((uint64_t)offset[i] + next[i] * (uint64_t)skip[i]) % m);
                next[i]++;
            } while (table[c] >= 0);
            table[c] = (int32_t)i;
            filled++;
        }
        if (!took && round > 1000000)
            status = -1; /* weights so small no node ever takes a turn */
    }
    free(next);
    free(claimed);
    return status;
}

void rh_maglev_u64(const uint64_t *keys, size_t n, const int32_t *table, uint32_t m, int32_t *out)
{
    uint32_t hb[RH_CHUNK]; /* a chunk hashed, then looked up (rh_ring.h) */
    for (size_t start = 0; start < n; start += RH_CHUNK) {
        size_t b = n - start < RH_CHUNK ? n - start : RH_CHUNK;
        rh_murmur3_u64_block(keys + start, b, 0, hb);
        rh_maglev_block(hb, b, table, m, out + start);
    }
}

void rh_maglev_block(const uint32_t *hashes, size_t n, const int32_t *table, uint32_t m,
                     int32_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = rh_maglev_owner(table, m, hashes[i]);
}

/* ---------------------------------------------------------------- pymemcache */

/* UTF-8 text as pymemcache's pure-Python murmur3 reads a str: the low byte of
 * each code point (bytes that do not decode are taken one by one). */
static size_t low_bytes(const unsigned char *p, size_t len, unsigned char *out)
{
    size_t n = 0, i = 0;
    while (i < len) {
        unsigned char c = p[i];
        size_t extra = c < 0x80         ? 0
                       : (c >> 5) == 6  ? 1
                       : (c >> 4) == 14 ? 2
                       : (c >> 3) == 30 ? 3
                                        : 9;
        if (extra == 9 || (extra > 0 && i + extra >= len)) { /* no whole sequence here */
            out[n++] = c;
            i++;
            continue;
        }
        uint32_t cp = extra == 0 ? c : (uint32_t)(c & (0x3F >> extra));
        size_t k = 1;
        for (; k <= extra; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                break;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (k <= extra) { /* truncated sequence */
            out[n++] = c;
            i++;
            continue;
        }
        out[n++] = (unsigned char)cp;
        i += extra + 1;
    }
    return n;
}

int rh_pymemcache_scores(const unsigned char *key, size_t len, const unsigned char *names,
                         const size_t *name_end, size_t nn, uint32_t *scores)
{
    size_t longest = 0;
    for (size_t j = 0; j < nn; j++) {
        size_t l = name_end[j] - (j ? name_end[j - 1] : 0);
        longest = l > longest ? l : longest;
    }
    unsigned char *buf = (unsigned char *)malloc(longest + 1 + len + 1);
    if (!buf)
        return -1;
    for (size_t j = 0; j < nn; j++) {
        size_t start = j ? name_end[j - 1] : 0, l = name_end[j] - start;
        memcpy(buf, names + start, l);
        buf[l] = '-';
        size_t k = low_bytes(key, len, buf + l + 1);
        scores[j] = rh_murmur3_32(buf, l + 1 + k, 0);
    }
    free(buf);
    return 0;
}

/* ---------------------------------------------------------------- multi-probe */

int32_t rh_multiprobe(const rh_ring *r, uint32_t h, int k)
{
    /* Branch-free over the probes (which one wins is unpredictable): a select
     * keeps the nearest point so far; ties keep the earlier probe. */
    uint32_t step = rh_fmix32(h ^ 0x9E3779B9u) | 1u, probe = h;
    size_t pos = rh_find_ge(r, probe), at = pos == r->n ? 0 : pos;
    uint32_t best = r->pts[at] - probe;
    for (int j = 1; j < k; j++) {
        probe += step;
        pos = rh_find_ge(r, probe);
        size_t p = pos == r->n ? 0 : pos;
        uint32_t d = r->pts[p] - probe; /* wraps past the last point */
        int nearer = d < best;
        best = nearer ? d : best;
        at = nearer ? p : at;
    }
    return r->own[at];
}

void rh_multiprobe_block(const rh_ring *r, const uint32_t *hashes, size_t n, int k, int32_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = rh_multiprobe(r, hashes[i], k);
}

/* ---------------------------------------------------------------- vector builds */

/* Jump hash and rendezvous, 8 or 16 lanes at a time, written once with GCC's
 * vector extensions (which Clang reads too) and built for AVX2 and AVX-512 by
 * target attributes, as rh_batch.c's loops are; rh_simd_level() picks the
 * same level. Every lane does exactly the scalar code's operations (no FMA,
 * exact conversions), so results do not depend on the build. */
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define RH_ALGO_VECTORS 1
/* The helpers below take and return 64-byte vectors; they are always inlined
 * into functions built for AVX2 or AVX-512, so no call ever crosses an ABI.
 * (GCC reports it at the end of the file, so the warning stays off from here.) */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef uint64_t u64x8 __attribute__((vector_size(64)));
typedef int64_t i64x8 __attribute__((vector_size(64)));
typedef double f64x8 __attribute__((vector_size(64)));

#define RH_VEC_INLINE static inline __attribute__((always_inline))
#define RH_JUMP_GROUPS 4

/* Groups of eight keys, four at a time (independent, for the CPU to overlap:
 * two groups were 8.1 ns per key, one 10.7) through Lamping & Veach's loop in
 * lockstep: a lane stops taking new values once its j reaches the bucket count.
 * Built for AVX-512DQ, whose 64-bit multiply and int <-> double conversions are
 * single instructions (4.7 ns per key on Zen 4; 7.4 emulating them with
 * AVX-512F alone, so without DQ the scalar loop is used). */
RH_VEC_INLINE void jump_x8g(const uint64_t *keys, int32_t buckets, int32_t *out)
{
    const f64x8 n = (f64x8){0} + (double)buckets, two31 = (f64x8){0} + 2147483648.0;
    u64x8 key[RH_JUMP_GROUPS];
    f64x8 b[RH_JUMP_GROUPS], j[RH_JUMP_GROUPS];
    i64x8 active[RH_JUMP_GROUPS];
    for (int g = 0; g < RH_JUMP_GROUPS; g++) {
        memcpy(&key[g], keys + 8 * g, sizeof key[g]);
        b[g] = (f64x8){0} - 1.0;
        j[g] = (f64x8){0};
        active[g] = j[g] < n;
    }
    for (;;) {
        i64x8 either = active[0];
        for (int g = 1; g < RH_JUMP_GROUPS; g++)
            either |= active[g];
        uint64_t any = 0;
        for (int l = 0; l < 8; l++)
            any |= (uint64_t)either[l];
        if (!any)
            break;
        for (int g = 0; g < RH_JUMP_GROUPS; g++) {
            b[g] = (f64x8)(((i64x8)j[g] & active[g]) | ((i64x8)b[g] & ~active[g]));
            key[g] = key[g] * 2862933555777941757ULL + 1;
            f64x8 d = __builtin_convertvector((key[g] >> 33) + 1, f64x8);
            f64x8 x = (b[g] + 1.0) * (two31 / d);
            /* j is integral in the scalar code: truncate it; lanes past n keep n,
             * and stop */
            i64x8 below = x < n;
            f64x8 kept = (f64x8)(((i64x8)x & below) | ((i64x8)n & ~below));
            j[g] = __builtin_convertvector(__builtin_convertvector(kept, i64x8), f64x8);
            active[g] &= below;
        }
    }
    for (int g = 0; g < RH_JUMP_GROUPS; g++)
        for (int l = 0; l < 8; l++)
            out[8 * g + l] = (int32_t)b[g][l];
}

/* One key over the nodes in passes the compiler vectorizes: every node's value
 * into a buffer, then (uniform weights) the greatest by a max reduction and a
 * scan for the first node that has it, or (weights) rendezvous_pick. The
 * lowest index wins ties, as in the scalar loop. */
RH_VEC_INLINE int32_t rendezvous_two_pass(uint32_t k, const uint32_t *seeds, const double *inv_w,
                                          size_t nn, uint32_t *v, double *t)
{
    const uint32_t mk = rh_mix_k(k);
    for (size_t j = 0; j < nn; j++) { /* node_value, with k's block mixed once */
        uint32_t h = seeds[j] ^ mk;
        h = ((h << 13) | (h >> 19)) * 5 + 0xe6546b64u;
        v[j] = rh_fmix32(h ^ 4u);
    }
    if (!inv_w) {
        uint32_t top = 0;
        for (size_t j = 0; j < nn; j++)
            top = v[j] > top ? v[j] : top;
        size_t j = 0;
        while (v[j] != top)
            j++;
        return (int32_t)j;
    }
    return rendezvous_pick(v, inv_w, nn, t);
}

RH_VEC_INLINE void rendezvous_loop(const uint32_t *hashes, size_t n, const uint32_t *seeds,
                                   const double *inv_w, size_t nn, int32_t *out)
{
    uint32_t vbuf[RH_NODE_BLOCK];
    double tbuf[RH_NODE_BLOCK];
    uint32_t *v = nn <= RH_NODE_BLOCK ? vbuf : (uint32_t *)malloc(nn * sizeof *v);
    double *t = nn <= RH_NODE_BLOCK ? tbuf : (double *)malloc(nn * sizeof *t);
    if (!v || !t) {
        if (v != vbuf)
            free(v);
        if (t != tbuf)
            free(t);
        rendezvous_block_portable(hashes, n, seeds, inv_w, nn, out);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = rendezvous_two_pass(hashes[i], seeds, inv_w, nn, v, t);
    if (v != vbuf)
        free(v);
    if (t != tbuf)
        free(t);
}

#define RH_AVX2_BUILD __attribute__((target("avx2,bmi2")))
#define RH_AVX512_BUILD __attribute__((target("avx2,bmi2,avx512f,avx512bw,avx512vl,avx512cd")))

#define RH_AVX512DQ_BUILD                                                                          \
    __attribute__((target("avx2,bmi2,avx512f,avx512bw,avx512vl,avx512cd,avx512dq")))

RH_AVX512DQ_BUILD static void jump_avx512dq(const uint64_t *keys, size_t n, int32_t buckets,
                                            int32_t *out)
{
    size_t whole = n / (8 * RH_JUMP_GROUPS) * (8 * RH_JUMP_GROUPS);
    for (size_t i = 0; i < whole; i += 8 * RH_JUMP_GROUPS)
        jump_x8g(keys + i, buckets, out + i);
    jump_block_portable(keys + whole, n - whole, buckets, out + whole);
}

RH_AVX2_BUILD static void rendezvous_avx2(const uint32_t *hashes, size_t n, const uint32_t *seeds,
                                          const double *inv_w, size_t nn, int32_t *out)
{
    rendezvous_loop(hashes, n, seeds, inv_w, nn, out);
}

RH_AVX512_BUILD static void rendezvous_avx512(const uint32_t *hashes, size_t n,
                                              const uint32_t *seeds, const double *inv_w, size_t nn,
                                              int32_t *out)
{
    rendezvous_loop(hashes, n, seeds, inv_w, nn, out);
}
#endif

void rh_jump_block(const uint64_t *keys, size_t n, int32_t buckets, int32_t *out)
{
#ifdef RH_ALGO_VECTORS
    if (rh_simd_level() == 2 && rh_simd_avx512dq()) {
        jump_avx512dq(keys, n, buckets, out);
        return;
    }
    /* AVX2 (and AVX-512F without DQ) has no 64-bit multiply: measured slower
     * than the scalar loop */
#endif
    jump_block_portable(keys, n, buckets, out);
}

void rh_rendezvous_block(const uint32_t *hashes, size_t n, const uint32_t *seeds,
                         const double *inv_w, size_t nn, int32_t *out)
{
#ifdef RH_ALGO_VECTORS
    int level = rh_simd_level();
    if (level == 2) {
        rendezvous_avx512(hashes, n, seeds, inv_w, nn, out);
        return;
    }
    if (level == 1) {
        rendezvous_avx2(hashes, n, seeds, inv_w, nn, out);
        return;
    }
#endif
    rendezvous_block_portable(hashes, n, seeds, inv_w, nn, out);
}
