#include "rh_hash.h"

#include <stdlib.h>
#include <string.h>

/* Slicing-by-8 CRC-32, and CRC-16/XMODEM's table (twemproxy's crc16). The tables
 * are filled once at module import (under the GIL, before any kernel can run) and
 * are read-only afterwards. */
static uint32_t crc_table[8][256];
static uint16_t crc16_table[256];
static int crc_ready = 0;

void rh_crc32_init(void)
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
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i << 8;
        for (int j = 0; j < 8; j++)
            c = (c & 0x8000u) ? (c << 1) ^ 0x1021u : c << 1;
        crc16_table[i] = (uint16_t)c;
    }
    crc_ready = 1;
}

static inline uint32_t crc_step8(uint32_t c, const unsigned char *p)
{
    uint32_t lo = rh_load_le32(p) ^ c;
    uint32_t hi = rh_load_le32(p + 4);
    return crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^
           crc_table[5][(lo >> 16) & 0xFF] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xFF] ^
           crc_table[2][(hi >> 8) & 0xFF] ^ crc_table[1][(hi >> 16) & 0xFF] ^
           crc_table[0][hi >> 24];
}

static uint32_t crc32_update(uint32_t c, const unsigned char *p, size_t len);

uint32_t rh_crc32(const void *data, size_t len)
{
    return crc32_update(0xFFFFFFFFu, (const unsigned char *)data, len) ^ 0xFFFFFFFFu;
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

void rh_node_points(int algo, uint32_t seed, const char *name, size_t name_len, uint32_t count,
                    uint32_t *out)
{
    /* Every point string is name + "#" + decimal(i): hash the shared prefix
     * once (murmur3: its whole 4-byte blocks; crc32: all of it), then only
     * the few bytes that differ per point. */
    const unsigned char *nm = (const unsigned char *)name;
    size_t head = algo == RH_CRC32 ? name_len : name_len & ~(size_t)3;
    uint32_t state = algo == RH_CRC32 ? crc32_update(0xFFFFFFFFu, nm, head) : seed;
    if (algo != RH_CRC32)
        for (size_t i = 0; i < head / 4; i++)
            state = rh_mur_block(state, rh_load_le32(nm + 4 * i));

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
                                  : rh_murmur3_finish(state, buf, len, name_len + 1 + (size_t)nd);
    }
}

/* MD5 (RFC 1321), only as libketama uses it: the first 4 bytes of the digest,
 * little-endian, as a key's hash, and whole digests for its points. */
static const uint32_t md5_k[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};
static const unsigned char md5_r[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                        5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                                        4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                        6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};

static void md5_block(uint32_t st[4], const unsigned char *blk)
{
    uint32_t m[16];
    for (int i = 0; i < 16; i++)
        m[i] = rh_load_le32(blk + 4 * i);
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16) {
            f = (b & c) | (~b & d);
            g = i;
        } else if (i < 32) {
            f = (d & b) | (~d & c);
            g = (5 * i + 1) & 15;
        } else if (i < 48) {
            f = b ^ c ^ d;
            g = (3 * i + 5) & 15;
        } else {
            f = c ^ (b | ~d);
            g = (7 * i) & 15;
        }
        uint32_t tmp = d;
        d = c;
        c = b;
        b = b + rh_rotl32(a + f + md5_k[i] + m[g], md5_r[i]);
        a = tmp;
    }
    st[0] += a;
    st[1] += b;
    st[2] += c;
    st[3] += d;
}

void rh_md5(const void *data, size_t len, unsigned char digest[16])
{
    const unsigned char *p = (const unsigned char *)data;
    uint32_t st[4] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u};
    size_t n = len;
    while (n >= 64) {
        md5_block(st, p);
        p += 64;
        n -= 64;
    }
    unsigned char tail[128];
    memcpy(tail, p, n);
    tail[n] = 0x80;
    size_t padded = n + 1 + 8 <= 64 ? 64 : 128;
    memset(tail + n + 1, 0, padded - n - 1 - 8);
    uint64_t bits = (uint64_t)len * 8;
    for (size_t i = 0; i < 8; i++)
        tail[padded - 8 + i] = (unsigned char)(bits >> (8 * i));
    md5_block(st, tail);
    if (padded == 128)
        md5_block(st, tail + 64);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            digest[4 * i + j] = (unsigned char)(st[i] >> (8 * j));
}

uint32_t rh_md5_32(const void *data, size_t len)
{
    unsigned char d[16];
    rh_md5(data, len, d);
    return rh_load_le32(d);
}

/* MurmurHash3_x64_128, low half (the jump key of bytes). */

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

static inline uint64_t load_le64(const unsigned char *p)
{
    return (uint64_t)rh_load_le32(p) | ((uint64_t)rh_load_le32(p + 4) << 32);
}

uint64_t rh_murmur3_x64_lo(const void *data, size_t len, uint32_t seed)
{
    const unsigned char *p = (const unsigned char *)data;
    const uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL;
    uint64_t h1 = seed, h2 = seed;
    size_t nblocks = len / 16;
    for (size_t i = 0; i < nblocks; i++) {
        uint64_t k1 = load_le64(p + 16 * i), k2 = load_le64(p + 16 * i + 8);
        k1 *= c1;
        k1 = rotl64(k1, 31);
        k1 *= c2;
        h1 ^= k1;
        h1 = rotl64(h1, 27);
        h1 += h2;
        h1 = h1 * 5 + 0x52dce729;
        k2 *= c2;
        k2 = rotl64(k2, 33);
        k2 *= c1;
        h2 ^= k2;
        h2 = rotl64(h2, 31);
        h2 += h1;
        h2 = h2 * 5 + 0x38495ab5;
    }
    const unsigned char *tail = p + 16 * nblocks;
    uint64_t k1 = 0, k2 = 0;
    size_t rest = len & 15;
    for (size_t i = rest; i > 8; i--)
        k2 ^= (uint64_t)tail[i - 1] << (8 * (i - 9));
    if (rest > 8) {
        k2 *= c2;
        k2 = rotl64(k2, 33);
        k2 *= c1;
        h2 ^= k2;
    }
    for (size_t i = rest < 8 ? rest : 8; i > 0; i--)
        k1 ^= (uint64_t)tail[i - 1] << (8 * (i - 1));
    if (rest > 0) {
        k1 *= c1;
        k1 = rotl64(k1, 31);
        k1 *= c2;
        h1 ^= k1;
    }
    h1 ^= (uint64_t)len;
    h2 ^= (uint64_t)len;
    h1 += h2;
    h2 += h1;
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 += h2;
    return h1;
}

/* ---------------------------------------------------------------- proxy and client key hashes */

/* A byte read through a plain char, widened to 32 bits: sign-extended where char is
 * signed (x86-64; sx = 0x80), zero-extended where it is unsigned (aarch64, POWER,
 * s390x; sx = 0). Callers pass sx as a constant (BY_CHAR in rh_proxy_hash), so each
 * inlined loop reads its bytes with one plain load, as the original's does. */
RH_FORCE_INLINE uint32_t char32(unsigned char c, int32_t sx)
{
    return sx ? (uint32_t)(int32_t)(signed char)c : (uint32_t)c;
}

/* ... widened to 64 bits (fnv1_64: "(uint64_t)key[x]"). */
RH_FORCE_INLINE uint64_t char64(unsigned char c, int32_t sx)
{
    return sx ? (uint64_t)(int64_t)(signed char)c : (uint64_t)c;
}

static uint32_t sdbm(const unsigned char *p, size_t len)
{
    uint32_t h = 0;
    for (size_t i = 0; i < len; i++)
        h = p[i] + (h << 6) + (h << 16) - h;
    return h;
}

static uint32_t djb2(const unsigned char *p, size_t len)
{
    uint32_t h = 5381;
    for (size_t i = 0; i < len; i++)
        h = ((h << 5) + h) + p[i];
    return h;
}

static uint32_t wt6(const unsigned char *p, size_t len)
{
    uint32_t h0 = 0xa53c965au, h1 = 0x5ca6953au, step0 = 6, step1 = 18;
    for (size_t i = 0; i < len; i++) {
        uint32_t t = p[i];
        h0 = ~(h0 ^ t);
        h1 = ~(h1 + t);
        t = (h1 << step0) | (h1 >> ((32 - step0) & 31));
        h1 = (h0 << step1) | (h0 >> ((32 - step1) & 31));
        h0 = t;
        t = ((h0 >> 16) ^ h1) & 0xffff;
        step0 = t & 0x1F;
        step1 = t >> 11;
    }
    return h0 ^ h1;
}

static uint32_t one_at_a_time(const unsigned char *p, size_t len, int32_t sx)
{
    uint32_t v = 0;
    for (size_t i = 0; i < len; i++) {
        v += char32(p[i], sx);
        v += v << 10;
        v ^= v >> 6;
    }
    v += v << 3;
    v ^= v >> 11;
    v += v << 15;
    return v;
}

#define FNV_64_INIT 0xcbf29ce484222325ULL
#define FNV_64_PRIME 0x100000001b3ULL
#define FNV_32_INIT 2166136261u
#define FNV_32_PRIME 16777619u

static uint32_t fnv1_64(const unsigned char *p, size_t len, int32_t sx)
{
    uint64_t h = FNV_64_INIT;
    for (size_t i = 0; i < len; i++) {
        h *= FNV_64_PRIME;
        h ^= char64(p[i], sx);
    }
    return (uint32_t)h;
}

static uint32_t fnv1a_64(const unsigned char *p, size_t len, int32_t sx)
{
    uint32_t h = (uint32_t)FNV_64_INIT; /* truncated, as the original does */
    for (size_t i = 0; i < len; i++) {
        h ^= char32(p[i], sx);
        h *= (uint32_t)FNV_64_PRIME;
    }
    return h;
}

static uint32_t fnv1_32(const unsigned char *p, size_t len, int32_t sx)
{
    uint32_t h = FNV_32_INIT;
    for (size_t i = 0; i < len; i++) {
        h *= FNV_32_PRIME;
        h ^= char32(p[i], sx);
    }
    return h;
}

static uint32_t fnv1a_32(const unsigned char *p, size_t len, int32_t sx)
{
    uint32_t h = FNV_32_INIT;
    for (size_t i = 0; i < len; i++) {
        h ^= char32(p[i], sx);
        h *= FNV_32_PRIME;
    }
    return h;
}

static uint32_t murmur2(const unsigned char *p, size_t length)
{
    const uint32_t m = 0x5bd1e995u;
    const uint32_t seed = 0xdeadbeefu * (uint32_t)length;
    uint32_t h = seed ^ (uint32_t)length;
    while (length >= 4) {
        uint32_t k = rh_load_le32(p);
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
        p += 4;
        length -= 4;
    }
    switch (length) {
    case 3: h ^= (uint32_t)p[2] << 16; /* fall through */
    case 2: h ^= (uint32_t)p[1] << 8;  /* fall through */
    case 1:
        h ^= p[0];
        h *= m;
        break;
    default: break;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

/* twemproxy's hash_hsieh (nc_hsieh.c): SuperFastHash started at 0, not at the
 * length; 16-bit reads little-endian (its byte-wise get16bits, as on x86-64); the
 * third byte of a 3-byte tail is read through a plain char. */
static uint32_t hsieh(const unsigned char *p, size_t len, int32_t sx)
{
    uint32_t h = 0;
    size_t rem = len & 3;
    for (size_t n = len >> 2; n > 0; n--, p += 4) {
        h += (uint32_t)p[0] | (uint32_t)p[1] << 8;
        uint32_t tmp = (((uint32_t)p[2] | (uint32_t)p[3] << 8) << 11) ^ h;
        h = (h << 16) ^ tmp;
        h += h >> 11;
    }
    switch (rem) {
    case 3:
        h += (uint32_t)p[0] | (uint32_t)p[1] << 8;
        h ^= h << 16;
        h ^= char32(p[2], sx) << 18;
        h += h >> 11;
        break;
    case 2:
        h += (uint32_t)p[0] | (uint32_t)p[1] << 8;
        h ^= h << 11;
        h += h >> 17;
        break;
    case 1:
        h += p[0];
        h ^= h << 10;
        h += h >> 1;
        break;
    default: break;
    }
    h ^= h << 3;
    h += h >> 5;
    h ^= h << 4;
    h += h >> 17;
    h ^= h << 25;
    h += h >> 6;
    return h;
}

/* Bob Jenkins' lookup3 hashlittle with initval 13 (twemproxy's nc_jenkins.c,
 * libhashkit's jenkins.cc): 12-byte blocks of little-endian words, the last block
 * (1-12 bytes) zero-padded, an empty key the initial value unmixed. */
#define JK_MIX(a, b, c)                                                                            \
    do {                                                                                           \
        a -= c, a ^= rh_rotl32(c, 4), c += b;                                                      \
        b -= a, b ^= rh_rotl32(a, 6), a += c;                                                      \
        c -= b, c ^= rh_rotl32(b, 8), b += a;                                                      \
        a -= c, a ^= rh_rotl32(c, 16), c += b;                                                     \
        b -= a, b ^= rh_rotl32(a, 19), a += c;                                                     \
        c -= b, c ^= rh_rotl32(b, 4), b += a;                                                      \
    } while (0)

static uint32_t jenkins(const unsigned char *p, size_t len)
{
    uint32_t a, b, c;
    a = b = c = 0xdeadbeefu + (uint32_t)len + 13u;
    if (len == 0)
        return c;
    for (; len > 12; len -= 12, p += 12) {
        a += rh_load_le32(p);
        b += rh_load_le32(p + 4);
        c += rh_load_le32(p + 8);
        JK_MIX(a, b, c);
    }
    unsigned char last[12] = {0};
    memcpy(last, p, len);
    a += rh_load_le32(last);
    b += rh_load_le32(last + 4);
    c += rh_load_le32(last + 8);
    c ^= b, c -= rh_rotl32(b, 14);
    a ^= c, a -= rh_rotl32(c, 11);
    b ^= a, b -= rh_rotl32(a, 25);
    c ^= b, c -= rh_rotl32(b, 16);
    a ^= c, a -= rh_rotl32(c, 4);
    b ^= a, b -= rh_rotl32(a, 14);
    c ^= b, c -= rh_rotl32(b, 24);
    return c;
}
#undef JK_MIX

/* twemproxy's hash_crc16 (nc_crc16.c): CRC-16/XMODEM's table (polynomial 0x1021),
 * but the state is a uint32_t that is shifted and never masked, so bits above the
 * 16 of the CRC stay in the result, as there. */
static uint32_t crc16(const unsigned char *p, size_t len)
{
    uint32_t crc = 0;
    for (size_t i = 0; i < len; i++)
        crc = (crc << 8) ^ crc16_table[((crc >> 8) ^ p[i]) & 0xffu];
    return crc;
}

/* HAProxy's get_server_sh (backend.c): the client address (4 bytes for IPv4, 16
 * for IPv6, network order) as the XOR of its 32-bit big-endian words; bytes
 * beyond the last whole word are ignored, as there. */
static uint32_t haproxy_source(const unsigned char *p, size_t len)
{
    uint32_t h = 0;
    for (size_t i = 0; i + 4 <= len; i += 4)
        h ^= (uint32_t)p[i] << 24 | (uint32_t)p[i + 1] << 16 | (uint32_t)p[i + 2] << 8 | p[i + 3];
    return h;
}

uint32_t rh_proxy_hash(int algo, const unsigned char *data, size_t len)
{
    uint32_t h;
    if (algo & RH_HASH_TAG)
        rh_hash_tag(algo, &data, &len);
    int u = (algo & RH_UNSIGNED_CHAR) != 0;
/* each inlined twice, with sx a constant: no per-byte cost for the choice */
#define BY_CHAR(f) (u ? f(data, len, 0) : f(data, len, 0x80))
    switch (algo & 0xff) {
    case RH_CRC32: h = rh_crc32(data, len); break;
    case RH_SDBM: h = sdbm(data, len); break;
    case RH_DJB2: h = djb2(data, len); break;
    case RH_WT6: h = wt6(data, len); break;
    case RH_ONE_AT_A_TIME: h = BY_CHAR(one_at_a_time); break;
    case RH_FNV1_64: h = BY_CHAR(fnv1_64); break;
    case RH_FNV1A_64: h = BY_CHAR(fnv1a_64); break;
    case RH_FNV1_32: h = BY_CHAR(fnv1_32); break;
    case RH_FNV1A_32: h = BY_CHAR(fnv1a_32); break;
    case RH_MURMUR2: h = murmur2(data, len); break;
    case RH_CRC32_15: h = ((rh_crc32(data, len)) >> 16) & 0x7fff; break;
    case RH_HSIEH: h = BY_CHAR(hsieh); break;
    case RH_JENKINS: h = jenkins(data, len); break;
    case RH_CRC16: h = crc16(data, len); break;
    case RH_HAPROXY_SOURCE: h = haproxy_source(data, len); break;
    case RH_MD5: h = rh_md5_32(data, len); break;
    default: h = rh_murmur3_32(data, len, 0); break;
    }
#undef BY_CHAR
    return (algo & RH_AVALANCHE) ? rh_full_hash(h) : h;
}
