/* ringhash: hashing and ring-search kernels in plain C.
 *
 * Everything here is pure (no Python API, no global mutable state after
 * rh_crc32_init) so every function may run with the GIL released and from
 * any number of threads at once.
 */
#ifndef RINGHASH_RH_HASH_H
#define RINGHASH_RH_HASH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* MurmurHash3_x86_32 (Austin Appleby, public domain); equal to mmh3.hash(b, seed, signed=False). */
uint32_t rh_murmur3_32(const void *data, size_t len, uint32_t seed);

/* MurmurHash3_x86_32 of the 8 little-endian bytes of x (the int key encoding). */
uint32_t rh_murmur3_u64(uint64_t x, uint32_t seed);

/* CRC-32/IEEE (reflected 0xEDB88320, init and xorout 0xFFFFFFFF); equal to zlib.crc32(b). */
void rh_crc32_init(void);
uint32_t rh_crc32(const void *data, size_t len);
uint32_t rh_crc32_u64(uint64_t x);

/* The padding point after a ring's last point: no hash is greater. */
#define RH_SENTINEL 0xFFFFFFFFu

/* Algorithm ids shared with the Cython layer. */
enum { RH_MURMUR3 = 0, RH_CRC32 = 1 };

static inline uint32_t rh_hash_bytes(int algo, const void *data, size_t len, uint32_t seed)
{
    return algo == RH_CRC32 ? rh_crc32(data, len) : rh_murmur3_32(data, len, seed);
}

static inline uint32_t rh_hash_u64(int algo, uint64_t x, uint32_t seed)
{
    return algo == RH_CRC32 ? rh_crc32_u64(x) : rh_murmur3_u64(x, seed);
}

/* Encode one Unicode code point array (UCS4, trailing NULs already stripped)
 * as UTF-8 into out (capacity >= 4 * n). Returns the byte length, or -1 if a
 * code point is a surrogate or above U+10FFFF (not encodable, as in Python). */
ptrdiff_t rh_ucs4_to_utf8(const uint32_t *cps, size_t n, unsigned char *out);

/* Points of one node: out[i] = H(name + "#" + decimal(i)) for 0 <= i < count.
 * Returns 0, or -1 if a scratch buffer for a very long name could not be allocated. */
int rh_node_points(int algo, uint32_t seed, const char *name, size_t name_len,
                   uint32_t count, uint32_t *out);

#ifdef __cplusplus
}
#endif
#endif
