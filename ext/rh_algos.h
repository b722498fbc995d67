/* ringhash: the other consistent-hashing algorithms, in plain C.
 *
 * Jump consistent hash (Lamping & Veach 2014), weighted rendezvous hashing
 * (Schindelhauer & Schomaker's logarithmic method), Maglev (Eisenbud et al.
 * 2016) and multi-probe consistent hashing (Appleton & O'Reilly 2015). Each is
 * specified exactly in docs/SPEC.md ("Other algorithms"); the Python layer
 * (ringhash.jump, .rendezvous, .maglev, .multiprobe) validates and owns
 * membership, these loops only compute. Pure C, no global state: any number
 * of threads may run them at once with the GIL released.
 */
#ifndef RINGHASH_RH_ALGOS_H
#define RINGHASH_RH_ALGOS_H

#include <stddef.h>
#include <stdint.h>

#include "rh_ring.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Jump consistent hash: the bucket in [0, buckets) of a 64-bit key (buckets >= 1). */
static inline int32_t rh_jump(uint64_t key, int32_t buckets)
{
    int64_t b = -1, j = 0;
    while (j < buckets) {
        b = j;
        key = key * 2862933555777941757ULL + 1;
        j = (int64_t)((double)(b + 1) * ((double)(1LL << 31) / (double)((key >> 33) + 1)));
    }
    return (int32_t)b;
}

void rh_jump_block(const uint64_t *keys, size_t n, int32_t buckets, int32_t *out);

/* Rendezvous: node i's value for key hash k is h_i = murmur3_32(le32(k), seeds[i]),
 * its score -ln(u_i) / w_i with u_i = (h_i + 0.5) / 2**32 (rh_neg_ln below), and
 * the owner the node of least score (ties: the lower index). inv_w[i] = 1 / w_i;
 * with uniform weights (inv_w NULL) the owner is the node of greatest h_i. */
double rh_neg_ln_u32(uint32_t h);
void rh_rendezvous_block(const uint32_t *hashes, size_t n, const uint32_t *seeds,
                         const double *inv_w, size_t nn, int32_t *out);
/* The first `want` (<= nn) nodes of each key by score (a preference list),
 * out[i * want + j]. Returns 0, or -1 if memory ran out. */
int rh_rendezvous_rank_block(const uint32_t *hashes, size_t n, const uint32_t *seeds,
                             const double *inv_w, size_t nn, size_t want, int32_t *out);

/* Maglev: fill table[0..m) from the nodes' offsets and skips (weights: each
 * node's share of turns, max 1). Returns 0, or -1 if no node may take a turn. */
int rh_maglev_build(const uint32_t *offset, const uint32_t *skip, const double *weight, size_t nn,
                    uint32_t m, int32_t *table);
/* The owner of key hash h in a table of m entries: table[(h * m) >> 32]. */
static inline int32_t rh_maglev_owner(const int32_t *table, uint32_t m, uint32_t h)
{
    return table[((uint64_t)h * m) >> 32];
}
void rh_maglev_block(const uint32_t *hashes, size_t n, const int32_t *table, uint32_t m,
                     int32_t *out);
/* The same for int keys (their murmur3 hashes, seed 0), a block at a time. */
void rh_maglev_u64(const uint64_t *keys, size_t n, const int32_t *table, uint32_t m, int32_t *out);

/* pymemcache's HashClient (RendezvousHash): node j's score for a key is
 * murmur3_32 of name_j + "-" + the key's text, read as pymemcache's pure-Python
 * murmur3 reads a str (the low byte of each code point; the key comes as its
 * UTF-8). Names are concatenated, name j ending at name_end[j]. Returns 0, or
 * -1 if memory ran out. */
int rh_pymemcache_scores(const unsigned char *key, size_t len, const unsigned char *names,
                         const size_t *name_end, size_t nn, uint32_t *scores);

/* Multi-probe: probe j of key hash h is h + j * (rh_fmix32(h ^ 0x9E3779B9) | 1)
 * (mod 2**32), j < k; each probe's distance to the first point >= it (wrapping)
 * is that point's distance; the owner is that of the nearest point over all
 * probes (ties: the earlier probe). r must be a ring with the ">=" rule. */
int32_t rh_multiprobe(const rh_ring *r, uint32_t h, int k);
void rh_multiprobe_block(const rh_ring *r, const uint32_t *hashes, size_t n, int k, int32_t *out);

#ifdef __cplusplus
}
#endif
#endif
