/* ringhash: the key hashes (MurmurHash3, CRC-32, MD5) in plain C.
 *
 * Everything here is pure (no Python API, no global mutable state after
 * rh_crc32_init) so every function may run with the GIL released and from
 * any number of threads at once.
 */
#ifndef RINGHASH_RH_HASH_H
#define RINGHASH_RH_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A function the compiler must inline (a loop written once, specialized per caller). */
#if defined(_MSC_VER)
#define RH_FORCE_INLINE static __forceinline
#else
#define RH_FORCE_INLINE static inline __attribute__((always_inline))
#endif

static inline uint32_t rh_rotl32(uint32_t x, int r)
{
    return (x << r) | (x >> (32 - r));
}

static inline uint32_t rh_fmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

/* One 4-byte block of murmur3: the block k is mixed (rh_mix_k) into the state,
 * which then takes a round (rh_mur_round). A tail of 1-3 bytes is only mixed. */
static inline uint32_t rh_mix_k(uint32_t k)
{
    k *= 0xcc9e2d51u;
    k = rh_rotl32(k, 15);
    return k * 0x1b873593u;
}

static inline uint32_t rh_mur_round(uint32_t h)
{
    return rh_rotl32(h, 13) * 5 + 0xe6546b64u;
}

static inline uint32_t rh_mur_block(uint32_t h, uint32_t k)
{
    return rh_mur_round(h ^ rh_mix_k(k));
}

/* Byte-assembled loads: portable across endianness and alignment, and
 * compiled to one plain load on little-endian targets. */
static inline uint32_t rh_load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Continue a murmur3 x86_32 state over a buffer whose full 4-byte blocks
 * start at p; finish with the total length. Used to hash many strings that
 * share a prefix (their prefix's blocks are mixed in once), and inline so
 * batch loops over byte keys keep several keys in flight. */
static inline uint32_t rh_murmur3_finish(uint32_t h, const unsigned char *p, size_t len,
                                         size_t total)
{
    size_t nblocks = len / 4;
    for (size_t i = 0; i < nblocks; i++)
        h = rh_mur_block(h, rh_load_le32(p + 4 * i));
    const unsigned char *tail = p + 4 * nblocks;
    uint32_t k = 0;
    switch (len & 3) {
    case 3: k ^= (uint32_t)tail[2] << 16; /* fall through */
    case 2: k ^= (uint32_t)tail[1] << 8;  /* fall through */
    case 1: k ^= tail[0]; h ^= rh_mix_k(k);
    }
    h ^= (uint32_t)total;
    return rh_fmix32(h);
}

/* MurmurHash3_x86_32 (Austin Appleby, public domain); equal to mmh3.hash(b, seed, signed=False). */
static inline uint32_t rh_murmur3_32(const void *data, size_t len, uint32_t seed)
{
    return rh_murmur3_finish(seed, (const unsigned char *)data, len, len);
}

/* MurmurHash3_x86_32 of the 8 little-endian bytes of x (the int key encoding).
 * Inline so batch loops over int keys can keep several keys in flight. */
static inline uint32_t rh_murmur3_u64(uint64_t x, uint32_t seed)
{
    uint32_t h = rh_mur_block(seed, (uint32_t)x);
    h = rh_mur_block(h, (uint32_t)(x >> 32));
    return rh_fmix32(h ^ 8u);
}

/* Batch hashing (rh_batch.c; its lookups are declared in rh_ring.h). On x86-64 with GCC or Clang each of these loops
 * is compiled three times (portable, AVX2, AVX-512) and rh_init picks the
 * widest the CPU and OS support; RINGHASH_SIMD=scalar|avx2|avx512 in the
 * environment caps the choice (the tests run every level against mmh3). */

/* out[i] = rh_murmur3_u64(keys[i], seed). */
void rh_murmur3_u64_block(const uint64_t *keys, size_t n, uint32_t seed, uint32_t *out);

/* The same with any key hash (rh_hash_u64's). */
void rh_hash_u64_block(int algo, const uint64_t *keys, size_t n, uint32_t seed, uint32_t *out);

/* The hash (algo: RH_MURMUR3, RH_CRC32 or RH_MD5) of n fixed-width items, a numpy
 * "S" array: item i is raw[i * itemsize:(i + 1) * itemsize] without its trailing
 * NUL bytes. Murmur3 takes the vector builds. */
void rh_hash_fixed_block(int algo, const unsigned char *raw, size_t itemsize, size_t n,
                         uint32_t seed, uint32_t *out);

/* The hash (algo) of n keys of exactly `width` bytes each, lying one after
 * another from raw (a run of equal-length strings of a column: every byte is
 * the key's, none is stripped). Murmur3 takes the AVX-512 build. */
void rh_hash_exact_block(int algo, const unsigned char *raw, size_t width, size_t n, uint32_t seed,
                         uint32_t *out);

/* The hash (algo) of n variable-length keys, key i being len[i] bytes at ptr[i]
 * (only those bytes are read). Murmur3 takes the AVX-512 build, which reads a
 * run of keys of one length lying one after another (ptr[i + 1] == ptr[i] +
 * len[i]) like a numpy "S" array; back_to_back says that holds for all keys
 * (an Arrow utf8 column), else it is checked run by run. */
void rh_hash_spans(int algo, const unsigned char *const *ptr, const uint32_t *len, size_t n,
                   int back_to_back, uint32_t seed, uint32_t *out);

/* Which build of the batch loops is in use: "avx512", "avx2" or "scalar" (as
 * a level: 2, 1 or 0, for other files' builds to follow the same choice). */
const char *rh_simd(void);
int rh_simd_level(void);
/* Whether that AVX-512 level also has AVX-512DQ (rh_algos.c's jump kernel uses it). */
int rh_simd_avx512dq(void);

/* One-time set-up (CRC tables, CPU feature check); call once, before anything else. */
void rh_init(void);
void rh_crc32_init(void);

/* CRC-32/IEEE (reflected 0xEDB88320, init and xorout 0xFFFFFFFF); equal to zlib.crc32(b). */
uint32_t rh_crc32(const void *data, size_t len);

/* MD5 (for the ketama preset): the digest, and its first 4 bytes little-endian. */
void rh_md5(const void *data, size_t len, unsigned char digest[16]);
uint32_t rh_md5_32(const void *data, size_t len);

/* The low 64 bits of MurmurHash3_x64_128 (equal to mmh3.hash64(b, seed, signed=False)[0]):
 * the 64-bit key of a str or bytes key for jump consistent hash. */
uint64_t rh_murmur3_x64_lo(const void *data, size_t len, uint32_t seed);

/* Algorithm ids shared with the Cython layer: the ring's hashes, then the key
 * hashes of the proxies and clients the presets reproduce (rh_proxy_hash). */
enum {
    RH_MURMUR3 = 0,
    RH_CRC32 = 1,
    RH_MD5 = 2,
    RH_SDBM = 3,          /* HAProxy */
    RH_DJB2 = 4,          /* HAProxy */
    RH_WT6 = 5,           /* HAProxy */
    RH_ONE_AT_A_TIME = 6, /* libmemcached "default", twemproxy */
    RH_FNV1_64 = 7,       /* libmemcached / twemproxy (64-bit state, low 32 bits) */
    RH_FNV1A_64 = 8,      /* libmemcached / twemproxy (their 32-bit truncation of it) */
    RH_FNV1_32 = 9,
    RH_FNV1A_32 = 10,
    RH_MURMUR2 = 11,  /* libmemcached / twemproxy "murmur" (seed 0xdeadbeef * len) */
    RH_CRC32_15 = 12, /* libmemcached "crc" / twemproxy "crc32": ((~crc) >> 16) & 0x7fff */
    RH_HSIEH = 13,    /* twemproxy "hsieh" (Paul Hsieh's SuperFastHash, started at 0) */
    RH_JENKINS = 14,  /* twemproxy / libmemcached "jenkins" (lookup3 hashlittle, initval 13) */
    RH_CRC16 = 15,    /* twemproxy "crc16" (XMODEM's table, its state never masked to 16 bits) */
    RH_HAPROXY_SOURCE =
        16, /* HAProxy "balance source": the XOR of the address's big-endian words */
    RH_NALGOS = 17,
    /* or'ed into an id: the result goes through HAProxy's full_hash ("avalanche") */
    RH_AVALANCHE = 0x100,
    /* or'ed into an id of a hash that reads bytes through a plain char (RH_CHAR_HASH):
     * read them as unsigned, as builds for aarch64, 32-bit ARM, POWER and s390x do */
    RH_UNSIGNED_CHAR = 0x200,
    /* or'ed into a proxy hash's id with its two tag bytes (RH_TAG): hash only the
     * part of the key inside the tag, where there is one (twemproxy's hash_tag) */
    RH_HASH_TAG = 0x400,
};

/* The id bits of a hash tag: RH_HASH_TAG, the opening byte in bits 12-19, the
 * closing byte in bits 20-27. */
#define RH_TAG(open, close) (RH_HASH_TAG | (int)(open) << 12 | (int)(close) << 20)
#define RH_TAG_MASK (RH_HASH_TAG | 0xffff000)

/* The proxies' and clients' key hashes (ids RH_SDBM ... RH_HAPROXY_SOURCE, with or without
 * RH_AVALANCHE), each as its C source computes it. Where that source reads bytes
 * through a plain char (RH_CHAR_HASH: twemproxy's and libmemcached's one-at-a-time
 * and FNV hashes, twemproxy's hsieh), bytes above 0x7F are sign-extended, as on
 * x86-64, or, with RH_UNSIGNED_CHAR, not, as where char is unsigned. */
#define RH_CHAR_HASH(id)                                                                           \
    ((id) == RH_ONE_AT_A_TIME || ((id) >= RH_FNV1_64 && (id) <= RH_FNV1A_32) || (id) == RH_HSIEH)
uint32_t rh_proxy_hash(int algo, const unsigned char *data, size_t len);

/* twemproxy's hash_tag (server_pool_idx in nc_server.c): where the key holds the
 * tag's opening byte and, after it, the closing byte with something between
 * them, only that part is hashed; otherwise the whole key. */
static inline void rh_hash_tag(int algo, const unsigned char **data, size_t *len)
{
    if (*len == 0)
        return;
    const unsigned char *end = *data + *len;
    const unsigned char *open = memchr(*data, (algo >> 12) & 0xff, *len);
    if (open == NULL)
        return;
    const unsigned char *close = memchr(open + 1, (algo >> 20) & 0xff, (size_t)(end - open - 1));
    if (close != NULL && close - open > 1) {
        *data = open + 1;
        *len = (size_t)(close - open - 1);
    }
}

/* HAProxy's full_hash (Bob Jenkins' integer hash, times 3221225473). */
static inline uint32_t rh_full_hash(uint32_t a)
{
    a = (a + 0x7ed55d16u) + (a << 12);
    a = (a ^ 0xc761c23cu) ^ (a >> 19);
    a = (a + 0x165667b1u) + (a << 5);
    a = (a + 0xd3a2646cu) ^ (a << 9);
    a = (a + 0xfd7046c5u) + (a << 3);
    a = (a ^ 0xb55a4f09u) ^ (a >> 16);
    return a * 3221225473u;
}

static inline uint32_t rh_hash_bytes(int algo, const void *data, size_t len, uint32_t seed)
{
    switch (algo) {
    case RH_MURMUR3: return rh_murmur3_32(data, len, seed);
    case RH_CRC32: return rh_crc32(data, len);
    case RH_MD5: return rh_md5_32(data, len);
    default: return rh_proxy_hash(algo, (const unsigned char *)data, len);
    }
}

static inline uint32_t rh_hash_u64(int algo, uint64_t x, uint32_t seed)
{
    if (algo == RH_MURMUR3)
        return rh_murmur3_u64(x, seed);
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(x >> (8 * i));
    return rh_hash_bytes(algo, b, 8, seed);
}

/* Encode one Unicode code point array (UCS4, trailing NULs already stripped)
 * as UTF-8 into out (capacity >= 4 * n). Returns the byte length, or -1 if a
 * code point is a surrogate or above U+10FFFF (not encodable, as in Python). */
ptrdiff_t rh_ucs4_to_utf8(const uint32_t *cps, size_t n, unsigned char *out);

/* Points of one node: out[i] = H(name + "#" + decimal(i)) for 0 <= i < count.
 * algo is RH_MURMUR3 or RH_CRC32 (the ring hashes; MD5 is for ketama keys only). */
void rh_node_points(int algo, uint32_t seed, const char *name, size_t name_len, uint32_t count,
                    uint32_t *out);

#ifdef __cplusplus
}
#endif
#endif
