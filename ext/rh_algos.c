/* ringhash: the other consistent-hashing algorithms (see rh_algos.h). */
#include "rh_algos.h"

#include <stdlib.h>
#include <string.h>

#include "rh_hash.h"

/* ---------------------------------------------------------------- jump */

void rh_jump_block(const uint64_t *keys, size_t n, int32_t buckets, int32_t *out)
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

void rh_rendezvous_block(const uint32_t *hashes, size_t n, const uint32_t *seeds,
                         const double *inv_w, size_t nn, int32_t *out)
{
    if (nn <= RH_NODE_BLOCK && inv_w) {
        double t[RH_NODE_BLOCK];
        for (size_t i = 0; i < n; i++) {
            uint32_t k = hashes[i];
            for (size_t j = 0; j < nn; j++)
                t[j] = rh_neg_ln_u32(node_value(k, seeds[j])) * inv_w[j];
            int32_t best = 0;
            for (size_t j = 1; j < nn; j++)
                best = t[j] < t[best] ? (int32_t)j : best;
            out[i] = best;
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

void rh_maglev_block(const uint32_t *hashes, size_t n, const int32_t *table, uint32_t m,
                     int32_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = rh_maglev_owner(table, m, hashes[i]);
}

/* ---------------------------------------------------------------- multi-probe */

int32_t rh_multiprobe(const rh_ring *r, uint32_t h, int k)
{
    uint32_t step = rh_fmix32(h ^ 0x9E3779B9u) | 1u, probe = h, best = UINT32_MAX;
    size_t at = 0;
    for (int j = 0; j < k; j++, probe += step) {
        size_t pos = rh_find(r, probe);
        size_t p = pos == r->n ? 0 : pos;
        uint32_t d = r->pts[p] - probe; /* wraps past the last point */
        if (d < best || j == 0) {
            best = d;
            at = p;
        }
    }
    return r->own[at];
}

void rh_multiprobe_block(const rh_ring *r, const uint32_t *hashes, size_t n, int k, int32_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = rh_multiprobe(r, hashes[i], k);
}
