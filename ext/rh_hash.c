#include "rh_hash.h"

#include <stdlib.h>
#include <string.h>

/* Byte-assembled loads: portable across endianness and alignment, and
 * compiled to one plain load on little-endian targets. */
static inline uint32_t load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint32_t murmur3_finish(uint32_t h, const unsigned char *p, size_t len, size_t total);

uint32_t rh_murmur3_32(const void *data, size_t len, uint32_t seed)
{
    return murmur3_finish(seed, (const unsigned char *)data, len, len);
}

/* Slicing-by-8 CRC-32. The tables are filled once at module import (under
 * the GIL, before any kernel can run) and are read-only afterwards. */
static uint32_t crc_table[8][256];
static int crc_ready = 0;

static void crc32_init(void)
{
    if (crc_ready)
        return;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int j = 0; j < 8; j++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xFF];
    crc_ready = 1;
}

static inline uint32_t crc_step8(uint32_t c, const unsigned char *p)
{
    uint32_t lo = load_le32(p) ^ c;
    uint32_t hi = load_le32(p + 4);
    return crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^
           crc_table[5][(lo >> 16) & 0xFF] ^ crc_table[4][lo >> 24] ^
           crc_table[3][hi & 0xFF] ^ crc_table[2][(hi >> 8) & 0xFF] ^
           crc_table[1][(hi >> 16) & 0xFF] ^ crc_table[0][hi >> 24];
}

static uint32_t crc32_update(uint32_t c, const unsigned char *p, size_t len);

uint32_t rh_crc32(const void *data, size_t len)
{
    return crc32_update(0xFFFFFFFFu, (const unsigned char *)data, len) ^ 0xFFFFFFFFu;
}

uint32_t rh_crc32_u64(uint64_t x)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(x >> (8 * i));
    return crc_step8(0xFFFFFFFFu, b) ^ 0xFFFFFFFFu;
}

ptrdiff_t rh_ucs4_to_utf8(const uint32_t *cps, size_t n, unsigned char *out)
{
    unsigned char *o = out;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cps[i];
        if (c < 0x80) {
            *o++ = (unsigned char)c;
        } else if (c < 0x800) {
            *o++ = (unsigned char)(0xC0 | (c >> 6));
            *o++ = (unsigned char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            if (c >= 0xD800 && c <= 0xDFFF)
                return -1;
            *o++ = (unsigned char)(0xE0 | (c >> 12));
            *o++ = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
            *o++ = (unsigned char)(0x80 | (c & 0x3F));
        } else if (c <= 0x10FFFF) {
            *o++ = (unsigned char)(0xF0 | (c >> 18));
            *o++ = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
            *o++ = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
            *o++ = (unsigned char)(0x80 | (c & 0x3F));
        } else {
            return -1;
        }
    }
    return o - out;
}

/* Continue a murmur3 x86_32 state over a buffer whose full 4-byte blocks
 * start at p; finish with the total length. Used to hash many strings that
 * share a prefix: the prefix's blocks are mixed in once. */
static uint32_t murmur3_finish(uint32_t h, const unsigned char *p, size_t len, size_t total)
{
    size_t nblocks = len / 4;
    for (size_t i = 0; i < nblocks; i++)
        h = rh_mur_block(h, load_le32(p + 4 * i));
    const unsigned char *tail = p + 4 * nblocks;
    uint32_t k = 0;
    switch (len & 3) {
    case 3: k ^= (uint32_t)tail[2] << 16; /* fall through */
    case 2: k ^= (uint32_t)tail[1] << 8;  /* fall through */
    case 1:
        k ^= tail[0];
        k *= 0xcc9e2d51u;
        k = rh_rotl32(k, 15);
        k *= 0x1b873593u;
        h ^= k;
    }
    h ^= (uint32_t)total;
    return rh_fmix32(h);
}

static uint32_t crc32_update(uint32_t c, const unsigned char *p, size_t len)
{
    while (len >= 8) {
        c = crc_step8(c, p);
        p += 8;
        len -= 8;
    }
    while (len--)
        c = crc_table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c;
}

void rh_node_points(int algo, uint32_t seed, const char *name, size_t name_len,
                    uint32_t count, uint32_t *out)
{
    /* Every point string is name + "#" + decimal(i): hash the shared prefix
     * once (murmur3: its whole 4-byte blocks; crc32: all of it), then only
     * the few bytes that differ per point. */
    const unsigned char *nm = (const unsigned char *)name;
    size_t head = algo == RH_CRC32 ? name_len : name_len & ~(size_t)3;
    uint32_t state = algo == RH_CRC32 ? crc32_update(0xFFFFFFFFu, nm, head) : seed;
    if (algo != RH_CRC32)
        for (size_t i = 0; i < head / 4; i++)
            state = rh_mur_block(state, load_le32(nm + 4 * i));

    unsigned char buf[3 + 1 + 10]; /* name's last < 4 bytes + '#' + up to 10 digits */
    size_t rest = name_len - head; /* 0 for crc32 */
    memcpy(buf, nm + head, rest);
    buf[rest] = '#';
    unsigned char *digits = buf + rest + 1;
    for (uint32_t i = 0; i < count; i++) {
        char tmp[10];
        int nd = 0;
        uint32_t v = i;
        do {
            tmp[nd++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        for (int d = 0; d < nd; d++)
            digits[d] = (unsigned char)tmp[nd - 1 - d];
        size_t len = rest + 1 + (size_t)nd;
        out[i] = algo == RH_CRC32 ? crc32_update(state, buf, len) ^ 0xFFFFFFFFu
                                  : murmur3_finish(state, buf, len, name_len + 1 + (size_t)nd);
    }
}

/* Batch hashing of int keys. The default build of this loop stays scalar:
 * SSE2 has no 32-bit vector multiply and its emulation is slower than scalar
 * code. Where the compiler can target AVX2 per function, a second build is
 * chosen at run time on CPUs that have it. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-vectorize")))
#endif
static void murmur_block_scalar(const uint64_t *keys, size_t n, uint32_t seed, uint32_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = rh_murmur3_u64(keys[i], seed);
}

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define RH_HAVE_AVX2_BUILD 1
__attribute__((target("avx2")))
static void murmur_block_avx2(const uint64_t *keys, size_t n, uint32_t seed, uint32_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = rh_murmur3_u64(keys[i], seed);
}
#endif

static int use_avx2 = 0;

void rh_murmur3_u64_block(const uint64_t *keys, size_t n, uint32_t seed, uint32_t *out)
{
#ifdef RH_HAVE_AVX2_BUILD
    if (use_avx2) {
        murmur_block_avx2(keys, n, seed, out);
        return;
    }
#endif
    murmur_block_scalar(keys, n, seed, out);
}

void rh_init(void)
{
    crc32_init();
#ifdef RH_HAVE_AVX2_BUILD
    __builtin_cpu_init();
    /* RINGHASH_NO_AVX2=1 forces the portable loop (the tests check both). */
    use_avx2 = __builtin_cpu_supports("avx2") && getenv("RINGHASH_NO_AVX2") == NULL;
#endif
}

const char *rh_simd(void)
{
    return use_avx2 ? "avx2" : "scalar";
}
