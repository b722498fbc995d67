/* A deterministic run over ringhash's public C functions, printing one line per
 * check: a name and a checksum (FNV-1a over the results' bytes, little-endian).
 *
 * Built for x86-64 (every SIMD level the CPU has) and cross-compiled for aarch64
 * (the portable C, as the arm64 wheels run it) and run under qemu-user by
 * .ci/aarch64, which requires all outputs to be identical. Inputs come from a
 * fixed xorshift generator, so every build sees the same keys and rings.
 */
#include "rh_hash.h"
#include "rh_ring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state = 0x9E3779B97F4A7C15ull;

static uint64_t next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static uint64_t fnv;

static void fnv_reset(void)
{
    fnv = 0xcbf29ce484222325ull;
}

static void fnv_u32(uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        fnv ^= (v >> (8 * i)) & 0xFF;
        fnv *= 0x100000001b3ull;
    }
}

static void report(const char *name)
{
    printf("%-28s %016llx\n", name, (unsigned long long)fnv);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int main(void)
{
    enum { NKEYS = 20011, NNODES = 37, VNODES = 40 };
    unsigned char buf[256];
    rh_init();

    /* One-shot hashes of every length 0..255, several seeds. */
    fnv_reset();
    for (size_t len = 0; len < sizeof buf; len++) {
        for (size_t i = 0; i < len; i++)
            buf[i] = (unsigned char)next();
        fnv_u32(rh_murmur3_32(buf, len, 0));
        fnv_u32(rh_murmur3_32(buf, len, (uint32_t)next()));
        fnv_u32(rh_crc32(buf, len));
        fnv_u32(rh_md5_32(buf, len));
    }
    report("murmur3 crc32 md5");

    /* Int keys: one at a time and the batch loop. */
    uint64_t *keys = malloc(NKEYS * sizeof *keys);
    uint32_t *h = malloc(NKEYS * sizeof *h);
    for (size_t i = 0; i < NKEYS; i++)
        keys[i] = next();
    rh_murmur3_u64_block(keys, NKEYS, 7, h);
    fnv_reset();
    for (size_t i = 0; i < NKEYS; i++) {
        fnv_u32(h[i]);
        fnv_u32(rh_hash_u64(RH_CRC32, keys[i], 0) ^ rh_murmur3_u64(keys[i], 7) ^ h[i]);
    }
    report("int keys");

    /* Fixed-width items ("S" arrays) of every width 1..70, with NUL padding. */
    fnv_reset();
    for (size_t w = 1; w <= 70; w++) {
        size_t n = 123;
        unsigned char *raw = malloc(n * w);
        uint32_t *out = malloc(n * sizeof *out);
        for (size_t i = 0; i < n; i++) {
            size_t len = (size_t)(next() % (w + 1));
            for (size_t j = 0; j < w; j++)
                raw[i * w + j] = j < len ? (unsigned char)(next() | 1) : 0;
        }
        rh_hash_fixed_block(RH_MURMUR3, raw, w, n, 3, out);
        for (size_t i = 0; i < n; i++)
            fnv_u32(out[i]);
        rh_hash_fixed_block(RH_CRC32, raw, w, n, 0, out);
        for (size_t i = 0; i < n; i++)
            fnv_u32(out[i]);
        free(raw);
        free(out);
    }
    report("fixed-width items");

    /* Variable-length keys (spans) of 0..100 bytes, groups mixing short and
     * long keys, each checked against the one-key hash too. */
    fnv_reset();
    for (int round = 0; round < 40; round++) {
        enum { N = 117 };
        static unsigned char pool[N * 100];
        const unsigned char *ptr[N];
        uint32_t len[N], out[N];
        size_t at = 0, cap = round % 4 == 0 ? 101 : round % 4 == 1 ? 17 : round % 4 == 2 ? 65 : 13;
        for (size_t i = 0; i < N; i++) {
            /* the last rounds: every key of one length (1..16), back to back */
            len[i] = round >= 24 ? (uint32_t)(round - 23) : (uint32_t)(next() % cap);
            ptr[i] = pool + at;
            for (uint32_t j = 0; j < len[i]; j++)
                pool[at++] = (unsigned char)next();
        }
        rh_hash_spans(RH_MURMUR3, ptr, len, N, 1, 11, out);
        for (size_t i = 0; i < N; i++) {
            if (out[i] != rh_murmur3_32(ptr[i], len[i], 11)) {
                printf("spans: key %zu of round %d differs from rh_murmur3_32\n", i, round);
                return 1;
            }
            fnv_u32(out[i]);
        }
    }
    report("variable-length keys");

    /* UTF-32 to UTF-8. */
    fnv_reset();
    for (int t = 0; t < 2000; t++) {
        uint32_t cps[8];
        unsigned char utf8[32];
        for (int i = 0; i < 8; i++)
            cps[i] = (uint32_t)(next() % 0x110000);
        ptrdiff_t nb = rh_ucs4_to_utf8(cps, 8, utf8);
        fnv_u32((uint32_t)nb);
        for (ptrdiff_t i = 0; i < nb; i++)
            fnv_u32(utf8[i]);
    }
    report("utf-32 to utf-8");

    /* A ring of NNODES nodes: points, padding, index, search, lookups, walks. */
    size_t n = NNODES * VNODES;
    uint64_t *combined = malloc(n * sizeof *combined);
    uint32_t *pts = malloc((n + RH_PAD) * sizeof *pts);
    int32_t *own = malloc((n + RH_PAD) * sizeof *own);
    for (uint32_t node = 0; node < NNODES; node++) {
        char name[32];
        int len = snprintf(name, sizeof name, "node-%u", node);
        rh_node_points(RH_MURMUR3, 0, name, (size_t)len, VNODES, h);
        for (size_t i = 0; i < VNODES; i++)
            combined[node * VNODES + i] = (uint64_t)h[i] << 32 | node;
    }
    qsort(combined, n, sizeof *combined, cmp_u64); /* by (point, owner): all distinct */
    for (size_t i = 0; i < n; i++) {
        pts[i] = (uint32_t)(combined[i] >> 32);
        own[i] = (int32_t)(combined[i] & 0xFFFFFFFFu);
    }
    rh_ring_pad(pts, own, n);
    unsigned bits = rh_index_bits(n);
    uint32_t *idx = malloc((((size_t)1 << bits) + 1) * sizeof *idx);
    rh_index_build(pts, n, 32 - bits, idx);
    fnv_reset();
    for (size_t i = 0; i < n + RH_PAD; i++) {
        fnv_u32(pts[i]);
        fnv_u32((uint32_t)own[i]);
    }
    for (size_t b = 0; b <= ((size_t)1 << bits); b++)
        fnv_u32(idx[b]);
    report("ring build and index");

    int32_t *out = malloc(NKEYS * sizeof *out);
    for (int rule = RH_RULE_GE; rule <= RH_RULE_GT; rule++) {
        rh_ring r;
        rh_ring_init(&r, pts, own, idx, n, rule, RH_MURMUR3, 7);
        fnv_reset();
        for (size_t i = 0; i < NKEYS; i++)
            h[i] = (uint32_t)next();
        h[0] = 0;
        h[1] = 0xFFFFFFFFu;
        h[2] = pts[0];
        h[3] = pts[n - 1];
        rh_search(&r, h, NKEYS, out);
        for (size_t i = 0; i < NKEYS; i++)
            fnv_u32((uint32_t)out[i]);
        rh_lookup_u64(&r, keys, NKEYS, out);
        for (size_t i = 0; i < NKEYS; i++)
            fnv_u32((uint32_t)out[i]);
        unsigned char raw[16 * 100];
        for (size_t i = 0; i < sizeof raw; i++)
            raw[i] = (unsigned char)(next() % 3 ? next() : 0);
        rh_lookup_fixed(&r, raw, 16, 100, out);
        for (size_t i = 0; i < 100; i++)
            fnv_u32((uint32_t)out[i]);
        int32_t walk[NNODES];
        uint32_t stamp[NNODES] = {0};
        for (size_t i = 0; i < 500; i++) {
            size_t pos = rh_find(&r, h[i]);
            size_t got = rh_walk_small(&r, pos, 5, walk);
            for (size_t j = 0; j < got; j++)
                fnv_u32((uint32_t)walk[j]);
            got = rh_walk_stamped(&r, pos, NNODES, stamp, (uint32_t)i + 1, walk);
            for (size_t j = 0; j < got; j++)
                fnv_u32((uint32_t)walk[j]);
        }
        report(rule == RH_RULE_GE ? "search, lookups, walks (>=)" : "search, lookups, walks (>)");
    }

    /* Membership: merge a node's points, patch the index; drop them again. */
    uint32_t add[VNODES];
    rh_node_points(RH_CRC32, 0, "extra", 5, VNODES, add);
    qsort(add, VNODES, sizeof *add, cmp_u32);
    uint32_t *pts2 = malloc((n + VNODES + RH_PAD) * sizeof *pts2);
    int32_t *own2 = malloc((n + VNODES + RH_PAD) * sizeof *own2);
    uint32_t *idx2 = malloc((((size_t)1 << bits) + 1) * sizeof *idx2);
    rh_ring_merge(pts, own, n, add, VNODES, 3, pts2, own2);
    int patched = rh_index_bits(n + VNODES) == bits &&
                  rh_index_patch(idx, 32 - bits, add, VNODES, 1, pts2, n + VNODES, idx2) == 0;
    fnv_reset();
    fnv_u32((uint32_t)patched);
    for (size_t i = 0; i < n + VNODES + RH_PAD; i++) {
        fnv_u32(pts2[i]);
        fnv_u32((uint32_t)own2[i]);
    }
    for (size_t b = 0; patched && b <= ((size_t)1 << bits); b++)
        fnv_u32(idx2[b]);
    fnv_u32((uint32_t)rh_ring_drop(pts2, own2, n + VNODES, add, VNODES, 3, pts, own));
    for (size_t i = 0; i < n + RH_PAD; i++) {
        fnv_u32(pts[i]);
        fnv_u32((uint32_t)own[i]);
    }
    report("membership");

    unsigned char digest[16];
    rh_md5("The quick brown fox jumps over the lazy dog", 43, digest);
    fnv_reset();
    for (int i = 0; i < 16; i++)
        fnv_u32(digest[i]);
    report("md5 digest");
    printf("simd level: %s (not compared)\n", rh_simd());
    free(keys), free(h), free(combined), free(pts), free(own), free(idx), free(out);
    free(pts2), free(own2), free(idx2);
    return 0;
}
