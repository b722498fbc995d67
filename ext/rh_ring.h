/* ringhash: the ring search, and small helpers the Cython kernels inline.
 *
 * A built ring is two arrays padded to n + 1 entries: pts[n] = RH_SENTINEL
 * (no hash is greater) and own[n] = own[0], so "past the last point, to the
 * first point" costs no branch. The bucket index has 2**bits + 1 entries
 * (shift = 32 - bits): idx[b] is the position of the first point >= b << shift,
 * and idx[2**bits] = n.
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

typedef struct {
    const uint32_t *pts; /* n + 1 sorted points, the last one RH_SENTINEL */
    const int32_t *own;  /* n + 1 owners, own[n] = own[0] */
    const uint32_t *idx; /* 2**bits + 1 bucket starts */
    unsigned shift;      /* 32 - bits */
} rh_ring;

/* The first position >= lo in h's bucket whose point is >= h (a binary search). */
size_t rh_find_far(const rh_ring *r, uint32_t h, size_t lo);

/* Position in [0, n] of the first point >= h (n: past the last point).
 *
 * The index has 4 to 8 buckets per point on rings that fit in cache, so a
 * key's bucket holds at most one point below the key for all but about 2% of
 * keys: one comparison, added without a branch, answers those, and the one
 * branch left (is the next point still below h?) is almost never taken, so it
 * is predicted and independent keys' loads overlap. pts[pos] always exists:
 * for an empty bucket it is a later bucket's first point, or the sentinel. */
static inline size_t rh_find(const rh_ring *r, uint32_t h)
{
    size_t pos = r->idx[h >> r->shift];
    pos += r->pts[pos] < h;
    if (RH_UNLIKELY(r->pts[pos] < h))
        pos = rh_find_far(r, h, pos + 1);
    return pos;
}

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
