/* ringhash: building, patching and searching the ring table (layout: rh_ring.h). */
#include "rh_ring.h"

#include <string.h>

/* The first position in [lo, hi) whose point is >= v, or hi: a binary search
 * without a data-dependent branch (the halving step is a select), so a search
 * over a large, unpredictable range does not stall on mispredictions. */
static size_t first_at_least(const uint32_t *pts, size_t lo, size_t hi, uint64_t v)
{
    if (lo >= hi)
        return lo;
    const uint32_t *base = pts + lo;
    size_t len = hi - lo;
    while (len > 1) {
        size_t half = len >> 1;
        base = base[half] < v ? base + half : base;
        len -= half;
    }
    return (size_t)(base - pts) + (*base < v);
}

/* Buckets looked at on each side of a crowded bucket for an uncrowded one (see crowded_window). */
#define RH_CROWDED_SCAN 4

/* The window [lo, hi) of positions that holds h's when h's bucket is crowded:
 * between the nearest uncrowded buckets' positions.
 *
 * The uncrowded bucket before starts at or before h's position, the one after
 * (idx[2**bits] = n << shift at the latest) after it. Hashed points leave runs
 * of crowded buckets a few buckets long, so the window is a handful of points;
 * only crafted points (a ring loaded from a file, node names chosen so their
 * points fall in one arc) make long runs. Past RH_CROWDED_SCAN buckets the
 * bound on that side is the end of the ring instead, so a lookup costs at most
 * 2 * RH_CROWDED_SCAN index loads and a binary search over all n points:
 * O(log n), whatever the points. */
static void crowded_window(const rh_ring *r, uint32_t h, size_t *lo_out, size_t *hi_out)
{
    size_t b = h >> r->shift, nb = (size_t)1 << (32 - r->shift), lo = 0, hi = r->n, j;
    for (j = b; j-- > 0 && b - j <= RH_CROWDED_SCAN;)
        if (r->idx[j] < r->crowded) {
            lo = r->idx[j] >> r->shift;
            break;
        }
    for (j = b + 1; j <= nb && j - b <= RH_CROWDED_SCAN; j++)
        if (r->idx[j] < r->crowded) {
            hi = r->idx[j] >> r->shift;
            break;
        }
    *lo_out = lo;
    *hi_out = hi;
}

size_t rh_find_crowded(const rh_ring *r, uint32_t h)
{
    size_t lo, hi, j;
    crowded_window(r, h, &lo, &hi);
    if (hi - lo <= 8) {
        /* Count the points below h among the 8 from lo, without a branch: from
         * hi on they are all above h, and reads past the padded array's last
         * entry, pts[n + 1] (the sentinel), are clamped to it. */
        size_t n1 = r->n + 1, pos = lo;
        for (j = lo; j < lo + 8; j++)
            pos += r->pts[j < n1 ? j : n1] < h;
        return pos;
    }
    return first_at_least(r->pts, lo, hi, h);
}

/* Keys searched together by rh_fix_crowded. */
#define RH_INTERLEAVE 8

unsigned rh_index_bits(size_t n)
{
    /* Below 65,536 points: the smallest 2**bits >= 6n, so 6 to 12 buckets per
     * point; about 99% of keys then fall in a bucket with at most one point, and
     * the index (24 to 48 bytes per point) stays in a core's L2 cache. From
     * 65,536 points on: 2**bits >= 2 * (n + 1), 2 to 4 buckets per point (3 to
     * 9% of keys in a crowded bucket): such a ring is past the caches anyway,
     * and a membership change copies the index, so a smaller one keeps
     * add/remove cheap. */
    uint64_t target = n < 65536 ? 6 * (uint64_t)n : 2 * ((uint64_t)n + 1);
    unsigned bits = 2;
    while (((uint64_t)1 << bits) < target)
        bits++;
    return bits;
}

void rh_ring_pad(uint32_t *pts, int32_t *own, size_t n)
{
    pts[n] = RH_SENTINEL;
    pts[n + 1] = RH_SENTINEL;
    own[n] = n ? own[0] : 0;
    own[n + 1] = RH_CROWDED_OWNER;
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

/* Re-encode bucket b's entry for the n sorted points pts (after points were
 * added to or removed from the bucket). */
static void index_fix(uint32_t *idx, unsigned shift, const uint32_t *pts, size_t n, size_t b)
{
    uint64_t start = (uint64_t)b << shift, end = (uint64_t)(b + 1) << shift;
    idx[b] = index_entry(pts, n, first_at_least(pts, 0, n, start), first_at_least(pts, 0, n, end),
                         shift);
}

/* out[i] = in[i] + add, except that the old "crowded" value becomes the new
 * one. A plain select, which the compiler vectorizes because the buffers are
 * declared not to overlap. */
static void patch_run(uint32_t *RH_RESTRICT out, const uint32_t *RH_RESTRICT in, size_t n,
                      uint32_t add, uint32_t old_crowded, uint32_t new_crowded)
{
    for (size_t i = 0; i < n; i++)
        out[i] = in[i] >= old_crowded ? new_crowded : in[i] + add;
}

int rh_index_patch(const uint32_t *old, unsigned shift, const uint32_t *delta, size_t m, int sign,
                   const uint32_t *pts, size_t n, uint32_t *out)
{
    /* A point in bucket c moves the position of every bucket b > c by one. */
    size_t nb1 = ((size_t)1 << (32 - shift)) + 1, b0 = 0;
    if (sign < 0 ? n + m < n : n < m)
        return -1;
    size_t n_old = sign < 0 ? n + m : n - m;
    if (old[nb1 - 1] != (uint32_t)n_old << shift)
        return -1;
    uint32_t old_crowded = (uint32_t)(n_old + 1) << shift;
    uint32_t new_crowded = (uint32_t)(n + 1) << shift;
    for (size_t k = 0; k <= m; k++) {
        size_t b1 = k < m ? (size_t)(delta[k] >> shift) + 1 : nb1;
        uint32_t add = (uint32_t)((sign < 0 ? 0u - (uint32_t)k : (uint32_t)k) << shift);
        if (b1 > b0) {
            patch_run(out + b0, old + b0, b1 - b0, add, old_crowded, new_crowded);
            b0 = b1;
        }
    }
    for (size_t k = 0; k < m; k++)
        index_fix(out, shift, pts, n, delta[k] >> shift);
    return 0;
}

/* The first position in [lo, hi) whose entry does not sort before (v, rank). */
static inline size_t first_entry_at(const uint32_t *pts, const int32_t *own, size_t lo, size_t hi,
                                    uint32_t v, int32_t rank)
{
    while (lo < hi) {
        size_t mid = lo + ((hi - lo) >> 1);
        if (pts[mid] < v || (pts[mid] == v && own[mid] < rank))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void rh_ring_merge(const uint32_t *pts, const int32_t *own, size_t n, const uint32_t *add, size_t m,
                   int32_t rank, uint32_t *out_pts, int32_t *out_own)
{
    /* In runs between insertion points (found by binary search), so the copying
     * loops have no data-dependent branches. */
    size_t i = 0, k = 0;
    for (size_t j = 0; j <= m; j++) {
        size_t e = j < m ? first_entry_at(pts, own, i, n, add[j], rank) : n;
        for (size_t r = 0; r < e - i; r++) {
            out_pts[k + r] = pts[i + r];
            out_own[k + r] = own[i + r] + (own[i + r] >= rank);
        }
        k += e - i;
        i = e;
        if (j < m) {
            out_pts[k] = add[j];
            out_own[k] = rank;
            k++;
        }
    }
    rh_ring_pad(out_pts, out_own, k);
}

int rh_ring_drop(const uint32_t *pts, const int32_t *own, size_t n, const uint32_t *gone, size_t m,
                 int32_t rank, uint32_t *out_pts, int32_t *out_own)
{
    size_t i = 0, k = 0;
    if (m > n)
        return -1;
    for (size_t j = 0; j <= m; j++) {
        size_t e = n;
        if (j < m) {
            e = first_entry_at(pts, own, i, n, gone[j], rank);
            if (e >= n || pts[e] != gone[j] || own[e] != rank)
                return -1;
        }
        if (k + (e - i) > n - m)
            return -1;
        for (size_t r = 0; r < e - i; r++) {
            out_pts[k + r] = pts[i + r];
            out_own[k + r] = own[i + r] - (own[i + r] > rank);
        }
        k += e - i;
        i = e + 1;
    }
    rh_ring_pad(out_pts, out_own, k);
    return 0;
}

void rh_ring_init(rh_ring *r, const uint32_t *pts, const int32_t *own, const uint32_t *idx,
                  size_t n, int rule, int algo, uint32_t seed)
{
    unsigned bits = rh_index_bits(n);
    r->pts = pts;
    r->own = own;
    r->idx = idx;
    r->n = n;
    r->shift = 32 - bits;
    r->mask = (1u << r->shift) - 1;
    r->crowded = (uint32_t)(n + 1) << r->shift;
    r->rule = rule;
    r->algo = algo;
    r->seed = seed;
}

void rh_fix_crowded(const rh_ring *r, const uint32_t *keys, const uint32_t *fix, size_t nfix,
                    int32_t *out)
{
    for (size_t j0 = 0; j0 < nfix; j0 += RH_INTERLEAVE) {
        size_t g = nfix - j0 < RH_INTERLEAVE ? nfix - j0 : RH_INTERLEAVE, len = 0;
        size_t lo[RH_INTERLEAVE], hi[RH_INTERLEAVE];
        const uint32_t *base[RH_INTERLEAVE];
        uint32_t key[RH_INTERLEAVE];
        for (size_t l = 0; l < g; l++) {
            key[l] = keys[fix[j0 + l]];
            crowded_window(r, key[l], &lo[l], &hi[l]);
            len = hi[l] - lo[l] > len ? hi[l] - lo[l] : len;
        }
        for (size_t l = 0; l < g; l++)
            base[l] = r->pts + (hi[l] >= len ? hi[l] - len : 0);
        for (; len > 1; len -= len >> 1) {
            size_t half = len >> 1;
            for (size_t l = 0; l < g; l++)
                base[l] = base[l][half] < key[l] ? base[l] + half : base[l];
        }
        for (size_t l = 0; l < g; l++) {
            size_t pos = (size_t)(base[l] - r->pts) + (len ? *base[l] < key[l] : 0);
            out[fix[j0 + l]] = r->own[pos];
        }
    }
}

size_t rh_walk_small(const rh_ring *r, size_t pos, size_t want, int32_t *out)
{
    size_t got = 0, n = r->n;
    if (pos == n)
        pos = 0;
    for (size_t step = 0; step < n && got < want; step++) {
        int32_t o = r->own[pos];
        int seen = 0;
        for (size_t j = 0; j < got; j++)
            seen |= out[j] == o;
        if (!seen)
            out[got++] = o;
        pos = pos + 1 == n ? 0 : pos + 1;
    }
    return got;
}

size_t rh_walk_stamped(const rh_ring *r, size_t pos, size_t want, uint32_t *stamp, uint32_t gen,
                       int32_t *out)
{
    size_t got = 0, n = r->n;
    if (pos == n)
        pos = 0;
    for (size_t step = 0; step < n && got < want; step++) {
        int32_t o = r->own[pos];
        if (stamp[o] != gen) {
            stamp[o] = gen;
            out[got++] = o;
        }
        pos = pos + 1 == n ? 0 : pos + 1;
    }
    return got;
}

void rh_search(const rh_ring *r, const uint32_t *hashes, size_t m, int32_t *out)
{
    /* Keys in an uncrowded bucket are found at once; the others are listed (with
     * the hash the ">=" search needs) and searched together after each block
     * (rh_fix_crowded). Measured against a branch-free step for every key with a
     * second pass over the block for crowded ones (AVX-512 build, 1M keys, 100
     * nodes): this loop is faster, 1.9 against 2.5 ns per uint64 key. */
    const rh_ring ring = *r; /* a copy: stores to out cannot change it */
    uint32_t fix[RH_BLOCK], keys[RH_BLOCK];
    if (ring.rule == RH_RULE_NEAREST) { /* two candidates per key: the single-key search */
        for (size_t i = 0; i < m; i++)
            out[i] = ring.own[rh_find_nearest(&ring, hashes[i])];
        return;
    }
    for (size_t start = 0; start < m; start += RH_BLOCK) {
        size_t count = m - start < RH_BLOCK ? m - start : RH_BLOCK, nfix = 0;
        const uint32_t *h = hashes + start;
        int32_t *o = out + start;
        for (size_t i = 0; i < count; i++) {
            uint32_t v = h[i];
            if (ring.rule == RH_RULE_GT) {
                if (v == RH_SENTINEL) { /* nothing is greater: the first point */
                    o[i] = ring.own[ring.n];
                    continue;
                }
                v += 1;
            }
            uint32_t e = ring.idx[v >> ring.shift];
            if (RH_UNLIKELY(e >= ring.crowded)) {
                keys[i] = v;
                fix[nfix++] = (uint32_t)i;
                continue;
            }
            o[i] = ring.own[(e + (v & ring.mask)) >> ring.shift];
        }
        if (nfix)
            rh_fix_crowded(&ring, keys, fix, nfix, o);
    }
}
