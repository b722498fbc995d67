/* ringhash: the ring search, and small helpers the Cython kernels inline.
 *
 * A built ring is two arrays padded to n + 2 entries: pts[n] = pts[n + 1] =
 * RH_SENTINEL (no hash is greater), own[n] = own[0], so "past the last point,
 * to the first point" costs no branch, and own[n + 1] = RH_CROWDED_OWNER (-1,
 * never an owner: see below).
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
 *   - two or more points (a "crowded" bucket): idx[b] = (n + 1) << shift, the
 *     "crowded" value. The same add and shift then give n + 1, whose owner is
 *     RH_CROWDED_OWNER: batch loops search every key that way, without a
 *     branch, and afterwards look up again the keys that got that owner
 *     (about 1% of keys below 65,536 points). rh_find binary-searches the
 *     points between the nearest uncrowded buckets before and after.
 *   - idx[2**bits] = n << shift.
 *
 * The sums must fit in 32 bits: (n + 2) << shift <= 2**32, i.e. 2**bits >=
 * n + 2. index_bits (_core.pyx) picks the density: 6 to 12 buckets per point
 * below 65,536 points, 2 to 4 from there on.
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

#define RH_CROWDED_OWNER (-1)

typedef struct {
    const uint32_t *pts; /* n + 2 sorted points, the last two RH_SENTINEL */
    const int32_t *own;  /* n + 2 owners, own[n] = own[0], own[n + 1] = RH_CROWDED_OWNER */
    const uint32_t *idx; /* 2**bits + 1 bucket entries, encoded as above */
    unsigned shift;      /* 32 - bits */
    uint32_t mask;       /* 2**shift - 1 */
    uint32_t crowded;    /* (n + 1) << shift, the entry of a crowded bucket */
} rh_ring;

/* The position of h in a crowded bucket: the first point >= h, found by a
 * binary search between the nearest uncrowded buckets' positions. */
size_t rh_find_crowded(rh_ring r, uint32_t h);

/* Position in [0, n] of the first point >= h (n: past the last point). */
static inline size_t rh_find(const rh_ring *r, uint32_t h)
{
    uint32_t e = r->idx[h >> r->shift];
    if (RH_UNLIKELY(e >= r->crowded))
        return rh_find_crowded(*r, h);
    return (e + (h & r->mask)) >> r->shift;
}

/* Encode idx (2**bits + 1 entries, shift = 32 - bits) for the n sorted points
 * pts (padded). */
void rh_index_build(const uint32_t *pts, size_t n, unsigned shift, uint32_t *idx);

/* Re-encode bucket b's entry for the n sorted points pts (after points were
 * added to or removed from the bucket). */
void rh_index_fix(uint32_t *idx, unsigned shift, const uint32_t *pts, size_t n, size_t b);

/* out[i] = owner of the first point >= hashes[i], wrapping to the first point. */
void rh_search(const rh_ring *r, const uint32_t *hashes, size_t m, int32_t *out);

/* out[i] = owner for int key keys[i] (its murmur3 hash, rh_murmur3_u64): hashing
 * and search fused (rh_batch.c picks the build, as for the hashing loops). */
void rh_lookup_u64(const rh_ring *r, const uint64_t *keys, size_t n, uint32_t seed, int32_t *out);

/* The same for the items of a numpy "S" array (rh_hash_fixed_block's keys), murmur3. */
void rh_lookup_fixed(const rh_ring *r, const unsigned char *raw, size_t itemsize, size_t n,
                     uint32_t seed, int32_t *out);

/* Part of patching an index after points were added or removed: out[i] =
 * in[i] + add, except that the old "crowded" value becomes the new one. A
 * plain select, which the compiler vectorizes because the buffers are
 * declared not to overlap. */
static inline void rh_patch_run(uint32_t *RH_RESTRICT out, const uint32_t *RH_RESTRICT in, size_t n,
                                uint32_t add, uint32_t old_crowded, uint32_t new_crowded)
{
    for (size_t i = 0; i < n; i++)
        out[i] = in[i] >= old_crowded ? new_crowded : in[i] + add;
}

#endif
