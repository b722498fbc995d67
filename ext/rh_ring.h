/* ringhash: the ring search, and small helpers the Cython kernels inline.
 *
 * A built ring is two arrays padded to n + 1 entries: pts[n] = RH_SENTINEL
 * (no hash is greater) and own[n] = own[0], so "past the last point, to the
 * first point" costs no branch.
 *
 * The bucket index splits the 32-bit hash space into 2**bits buckets of
 * 2**shift hashes (shift = 32 - bits). For bucket b, with p the position of
 * its first point >= b << shift (n if none) and mask = 2**shift - 1:
 *
 *   - at most one point in the bucket: idx[b] = p << shift | (mask - t), where
 *     t is that point's offset in the bucket (pts[p] & mask), or mask if the
 *     bucket is empty. A key h with offset o = h & mask belongs to p if o <= t
 *     and to p + 1 if o > t, and o + (mask - t) carries into bit `shift`
 *     exactly when o > t: the key's position is (idx[b] + o) >> shift, one
 *     load, an add and a shift, with no comparison and no branch.
 *   - two or more points (a "crowded" bucket): idx[b] = RH_CROWDED | p << shift,
 *     and a binary search between p and the next bucket's first point decides.
 *   - idx[2**bits] = n << shift.
 *
 * The sums must not reach bit 31 (RH_CROWDED): (n + 1) << shift <= 2**31, i.e.
 * 2**bits >= 2 * (n + 1). index_bits (_core.pyx) picks the density: 6 to 12
 * buckets per point below 65,536 points, where about 1% of keys fall in a
 * crowded bucket; 2 to 4 from there on.
 */
#ifndef RINGHASH_RH_RING_H
#define RINGHASH_RH_RING_H

#include <stddef.h>
#include <stdint.h>

#if defined(_MSC_VER)
#define RH_RESTRICT __restrict
#define RH_UNLIKELY(x) (x)
#else
#define RH_RESTRICT __restrict__
#define RH_UNLIKELY(x) __builtin_expect(!!(x), 0)
#endif

#define RH_CROWDED 0x80000000u

typedef struct {
    const uint32_t *pts; /* n + 1 sorted points, the last one RH_SENTINEL */
    const int32_t *own;  /* n + 1 owners, own[n] = own[0] */
    const uint32_t *idx; /* 2**bits + 1 bucket entries, encoded as above */
    unsigned shift;      /* 32 - bits */
    uint32_t mask;       /* 2**shift - 1 */
} rh_ring;

/* The position in a crowded bucket: the first point >= h (a binary search).
 * Takes the ring by value, so a caller's copy of it stays in registers. */
size_t rh_find_crowded(rh_ring r, uint32_t h, uint32_t entry);

/* Position in [0, n] of the first point >= h (n: past the last point), for a
 * key whose bucket and offset are already split (h = bucket << shift | offset). */
static inline size_t rh_find_split(const rh_ring *r, uint32_t bucket, uint32_t offset)
{
    uint32_t e = r->idx[bucket];
    if (RH_UNLIKELY(e & RH_CROWDED))
        return rh_find_crowded(*r, bucket << r->shift | offset, e);
    return (e + offset) >> r->shift;
}

static inline size_t rh_find(const rh_ring *r, uint32_t h)
{
    return rh_find_split(r, h >> r->shift, h & r->mask);
}

/* Encode idx (2**bits + 1 entries, shift = 32 - bits) for the n sorted points
 * pts (padded: pts[n] exists). */
void rh_index_build(const uint32_t *pts, size_t n, unsigned shift, uint32_t *idx);

/* Re-encode bucket b's entry from pts, given that the positions in idx[b] and
 * idx[b + 1] are already right (after points were added to or removed from it). */
void rh_index_fix(uint32_t *idx, unsigned shift, const uint32_t *pts, size_t b);

/* out[i] = owner of the first point >= hashes[i], wrapping to the first point. */
void rh_search(const rh_ring *r, const uint32_t *hashes, size_t m, int32_t *out);

/* out[i] = owner for int key keys[i] (its murmur3 hash, rh_murmur3_u64): hashing
 * and search fused (rh_batch.c picks the build, as for the hashing loops). */
void rh_lookup_u64(const rh_ring *r, const uint64_t *keys, size_t n, uint32_t seed, int32_t *out);

/* The same for the items of a numpy "S" array (rh_hash_fixed_block's keys), murmur3. */
void rh_lookup_fixed(const rh_ring *r, const unsigned char *raw, size_t itemsize, size_t n,
                     uint32_t seed, int32_t *out);

/* out[i] = in[i] + add: a copy with an offset, which the compiler vectorizes
 * because the buffers are declared not to overlap. */
static inline void rh_add_run(uint32_t *RH_RESTRICT out, const uint32_t *RH_RESTRICT in,
                              size_t n, uint32_t add)
{
    for (size_t i = 0; i < n; i++)
        out[i] = in[i] + add;
}

#endif
