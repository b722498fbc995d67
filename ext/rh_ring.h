/* ringhash: the ring table, its layout and its search, in one place.
 *
 * Everything about how a built ring is laid out in memory lives here and in
 * rh_ring.c: the padded arrays, the bucket index (density, build, fix-up and
 * patch on membership change), the crowded-bucket search, the sentinel and
 * the search rules. Callers (the Cython RingTable, the batch loops of
 * rh_batch.c) hand over sorted, unpadded points and owners and ask for
 * positions and owners; they never compute an index entry themselves.
 *
 * Padded arrays. A ring of n points is two arrays of n + RH_PAD entries:
 * pts[n] = pts[n + 1] = RH_SENTINEL (no hash is greater), own[n] = own[0], so
 * "past the last point, to the first point" costs no branch, and own[n + 1] =
 * RH_CROWDED_OWNER (-1, never an owner: see below).
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
 *     "crowded" value, at least every other entry. Searches compare the entry
 *     with it and binary-search those keys (about 1% of keys below 65,536
 *     points) between the nearest uncrowded buckets before and after: rh_find
 *     one key, rh_search the crowded keys of a block together. Were the add
 *     and shift applied anyway they would give n + 1, whose owner
 *     RH_CROWDED_OWNER is never a node's.
 *   - idx[2**bits] = n << shift.
 *
 * A worked example: n = 3 points {0x10000005, 0x10000009, 0xF0000000} and
 * bits = 4 (16 buckets of 2**28 hashes, shift = 28, mask = 0x0FFFFFFF):
 *   bucket 0 is empty, its first point >= 0 is position 0:
 *     idx[0] = 0 << 28 | mask = 0x0FFFFFFF;
 *   bucket 1 holds positions 0 and 1 (two points): crowded,
 *     idx[1] = (3 + 1) << 28 = 0x40000000;
 *   buckets 2..14 are empty, their first point is position 2:
 *     idx[b] = 2 << 28 | mask = 0x2FFFFFFF;
 *   bucket 15 holds position 2 alone, at offset t = 0:
 *     idx[15] = 2 << 28 | (mask - 0) = 0x2FFFFFFF;
 *   idx[16] = 3 << 28 = 0x30000000.
 * Key h = 0xF0000000 (bucket 15, o = 0): (0x2FFFFFFF + 0) >> 28 = 2, the point
 * itself. Key h = 0xF0000001 (o = 1): (0x2FFFFFFF + 1) >> 28 = 3 = n, past the
 * last point, whose owner own[3] = own[0] wraps to the first. Key 0x10000007
 * lands on the crowded value, and rh_find searches positions [0, 2) (between
 * bucket 0's position and bucket 2's) for the first point >= h: position 1.
 *
 * The sums must fit in 32 bits: (n + 2) << shift <= 2**32, i.e. 2**bits >=
 * n + 2. rh_index_bits picks the density: 6 to 12 buckets per point below
 * 65,536 points, 2 to 4 from there on.
 *
 * Search rules. RH_RULE_GE: a key belongs to the first point >= its hash (the
 * default ring, ketama, groupcache). RH_RULE_GT: the first point strictly >
 * its hash (stathat): the first point >= h + 1, and h = 2**32 - 1 wraps to the
 * first point. Both wrap past the last point to the first. RH_RULE_NEAREST:
 * the nearer of the first point >= h and the point before it (distances
 * h - prev and next - h modulo 2**32; a tie goes to the point before), as
 * HAProxy's consistent hashing (lb_chash.c) chooses.
 */
#ifndef RINGHASH_RH_RING_H
#define RINGHASH_RH_RING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_MSC_VER)
#define RH_RESTRICT __restrict
#define RH_UNLIKELY(x) (x)
#else
#define RH_RESTRICT __restrict__
#define RH_UNLIKELY(x) __builtin_expect(!!(x), 0)
#endif

/* Entries past the n points of the padded arrays. */
#define RH_PAD 2
/* The padding point after a ring's last point: no hash is greater. */
#define RH_SENTINEL 0xFFFFFFFFu
/* The owner at position n + 1: what a key in a crowded bucket finds first. */
#define RH_CROWDED_OWNER (-1)
/* The most points a ring can index: 2**bits >= 2 * (n + 1) with bits <= 31. */
#define RH_MAX_INDEXED_POINTS ((1u << 30) - 1)
/* Keys per round of a batch loop's inner steps (C and Cython): a block of
 * spans gathered, ints widened, or hashes searched (rh_search). */
#define RH_BLOCK 512
/* Lookups hash a chunk of keys, then search it: RH_CHUNK hashes (32 KiB) stay
 * in the first cache levels between the two passes. Measured against hashing
 * and searching interleaved group by group (AVX-512, 1M keys): uint64 keys on
 * 100 / 1,000 nodes 2.2 -> 2.0 / 6.2 -> 4.4 ns per key, numpy S16 3.6 -> 2.5,
 * and against 512-key chunks 3.6 -> 2.5 (S16). Most likely (not measured
 * directly: this machine has no cache counters) a pass that streams keys while
 * it searches pushes the ring's index (512 KiB at 100 nodes) out of L2, and
 * short chunks pay each pass's start-up more often. */
#define RH_CHUNK 8192

enum { RH_RULE_GE = 0, RH_RULE_GT = 1, RH_RULE_NEAREST = 2 };

typedef struct {
    const uint32_t *pts; /* n + RH_PAD sorted points, the last two RH_SENTINEL */
    const int32_t *own;  /* n + RH_PAD owners, own[n] = own[0], own[n + 1] = RH_CROWDED_OWNER */
    const uint32_t *idx; /* 2**bits + 1 bucket entries, encoded as above */
    size_t n;            /* points */
    unsigned shift;      /* 32 - bits */
    uint32_t mask;       /* 2**shift - 1 */
    uint32_t crowded;    /* (n + 1) << shift, the entry of a crowded bucket */
    int rule;            /* RH_RULE_GE or RH_RULE_GT */
    int algo;            /* the key hash (rh_hash.h: RH_MURMUR3, RH_CRC32, RH_MD5) */
    uint32_t seed;       /* murmur3's seed */
} rh_ring;

/* ---------------------------------------------------------------- building */

/* Bits of the bucket index for n points (see the density above). */
unsigned rh_index_bits(size_t n);

/* Fill the RH_PAD entries past n of arrays that hold n sorted points. */
void rh_ring_pad(uint32_t *pts, int32_t *own, size_t n);

/* Encode idx (2**bits + 1 entries, shift = 32 - bits) for n sorted padded points. */
void rh_index_build(const uint32_t *pts, size_t n, unsigned shift, uint32_t *idx);

/* The index of a ring after adding (sign = +1) or removing (sign = -1) the m
 * sorted points delta, from the old one (both 2**(32 - shift) + 1 entries): a
 * copy of the old entries moved by a constant per run of buckets, then the
 * buckets that gained or lost points encoded afresh. Equal to rh_index_build
 * over the new padded points pts (n of them). Returns -1, writing nothing, if
 * the counts do not fit the old index. */
int rh_index_patch(const uint32_t *old, unsigned shift, const uint32_t *delta, size_t m, int sign,
                   const uint32_t *pts, size_t n, uint32_t *out);

/* Insert m sorted points owned by `rank` into a ring of n (owners >= rank move
 * up by one; equal points stay ordered by owner); writes n + m padded entries. */
void rh_ring_merge(const uint32_t *pts, const int32_t *own, size_t n, const uint32_t *add, size_t m,
                   int32_t rank, uint32_t *out_pts, int32_t *out_own);

/* Remove owner `rank`'s m sorted points (owners above it move down); writes
 * n - m padded entries. Returns -1 if the ring does not hold those points. */
int rh_ring_drop(const uint32_t *pts, const int32_t *own, size_t n, const uint32_t *gone, size_t m,
                 int32_t rank, uint32_t *out_pts, int32_t *out_own);

/* Point a ring at its padded arrays and index (n >= 1, bits = rh_index_bits(n)). */
void rh_ring_init(rh_ring *r, const uint32_t *pts, const int32_t *own, const uint32_t *idx,
                  size_t n, int rule, int algo, uint32_t seed);

/* ---------------------------------------------------------------- searching */

/* The owners of the crowded keys of a batch: out[fix[j]] for j < nfix, whose
 * hashes (for the ">=" search) are keys[fix[j]]. Their binary searches run
 * eight at a time in lockstep (one step of each, then the next), so
 * their loads overlap instead of each search waiting on its own chain: what
 * keeps a ring crafted to crowd one arc as fast as a plain binary search.
 *
 * Every window is widened to the longest one, so all searches take the same
 * steps: points before a window's lo are all below its key and points from its
 * hi on all above, so a wider window has the same answer. It grows downward
 * from hi (or upward from 0, never past n, as the longest window fits in
 * [0, n]). Out of line: the batch loops call it once per RH_BLOCK keys, and
 * inlined it slowed their main loop (measured: S16 lookups on a 1,000-node ring
 * 6 -> 10 ns per key). */
void rh_fix_crowded(const rh_ring *r, const uint32_t *keys, const uint32_t *fix, size_t nfix,
                    int32_t *out);

/* The same, out of line (single-key paths). */
size_t rh_find_crowded(const rh_ring *r, uint32_t h);

/* Position in [0, n] of the first point >= h (n: past the last point). */
static inline size_t rh_find_ge(const rh_ring *r, uint32_t h)
{
    uint32_t e = r->idx[h >> r->shift];
    if (RH_UNLIKELY(e >= r->crowded))
        return rh_find_crowded(r, h);
    return (e + (h & r->mask)) >> r->shift;
}

/* Position in [0, n) of the point nearest hash h (RH_RULE_NEAREST). */
static inline size_t rh_find_nearest(const rh_ring *r, uint32_t h)
{
    size_t pos = rh_find_ge(r, h);
    size_t next = pos == r->n ? 0 : pos, prev = pos == 0 ? r->n - 1 : pos - 1;
    return h - r->pts[prev] <= r->pts[next] - h ? prev : next;
}

/* Position in [0, n] of the point that owns hash h under the ring's rule. */
static inline size_t rh_find(const rh_ring *r, uint32_t h)
{
    if (r->rule == RH_RULE_NEAREST)
        return rh_find_nearest(r, h);
    if (r->rule == RH_RULE_GT) {
        if (h == RH_SENTINEL)
            return r->n; /* nothing is greater: wrap to the first point */
        h += 1;
    }
    return rh_find_ge(r, h);
}

/* The owner of hash h. */
static inline int32_t rh_owner(const rh_ring *r, uint32_t h)
{
    return r->own[rh_find(r, h)];
}

/* Replica walks: up to want distinct owners met walking clockwise from
 * position pos (n wraps to 0), written to out; returns how many (fewer than
 * want only if fewer owners own points). rh_walk_small finds repeats by
 * scanning out (for want <= RH_WALK_SMALL); rh_walk_stamped marks owners in
 * stamp (one entry per owner; an owner is seen if its entry equals gen). */
#define RH_WALK_SMALL 8
size_t rh_walk_small(const rh_ring *r, size_t pos, size_t want, int32_t *out);
size_t rh_walk_stamped(const rh_ring *r, size_t pos, size_t want, uint32_t *stamp, uint32_t gen,
                       int32_t *out);

/* out[i] = owner of hashes[i] under the ring's rule. */
void rh_search(const rh_ring *r, const uint32_t *hashes, size_t m, int32_t *out);

/* out[i] = owner of int key keys[i] (its 8 bytes little-endian, hashed with
 * the ring's algo and seed): RH_CHUNK keys hashed, then searched. */
void rh_lookup_u64(const rh_ring *r, const uint64_t *keys, size_t n, int32_t *out);

/* The same for the n items of a numpy "S" array (rh_hash_fixed_block's keys). */
void rh_lookup_fixed(const rh_ring *r, const unsigned char *raw, size_t itemsize, size_t n,
                     int32_t *out);

#ifdef __cplusplus
}
#endif
#endif
