/* ringhash: key columns read in place, through the Arrow C Data Interface.
 *
 * A column is one chunk of an Arrow array of a key type (integers, utf8 and
 * binary with 32- or 64-bit offsets, their view forms, fixed-size binary),
 * described by an rh_col that points into the producer's buffers: nothing is
 * copied, and every read is checked against what the producer declared, so
 * a lying producer (offsets going backwards or past 2**63, a view naming a
 * buffer it does not have or reaching past that buffer's declared size, a
 * released array, a wrong buffer count) gives an error, not a read out of
 * bounds. What cannot be checked is a buffer shorter than its own offsets say
 * (the interface does not carry the sizes of offset-addressed buffers).
 *
 * The encoding rule is the one of every batch: a string or binary value
 * hashes as its bytes as stored (utf8 is not re-validated), an integer as its
 * 8-byte little-endian two's complement (signed types sign-extended). Null
 * rows are never read: the kernels below skip them and report where they are.
 *
 * Everything here is pure C with no Python API, so it runs with the GIL
 * released and from any number of threads at once.
 */
#ifndef RINGHASH_RH_COLUMN_H
#define RINGHASH_RH_COLUMN_H

#include <stddef.h>
#include <stdint.h>

#include "rh_ring.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI-stable structs of the Arrow C Data Interface (copied from the
 * specification, arrow.apache.org/docs/format/CDataInterface.html). */
#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE
#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

struct ArrowSchema {
    const char *format;
    const char *name;
    const char *metadata;
    int64_t flags;
    int64_t n_children;
    struct ArrowSchema **children;
    struct ArrowSchema *dictionary;
    void (*release)(struct ArrowSchema *);
    void *private_data;
};

struct ArrowArray {
    int64_t length;
    int64_t null_count;
    int64_t offset;
    int64_t n_buffers;
    int64_t n_children;
    const void **buffers;
    struct ArrowArray **children;
    struct ArrowArray *dictionary;
    void (*release)(struct ArrowArray *);
    void *private_data;
};
#endif

#ifndef ARROW_C_STREAM_INTERFACE
#define ARROW_C_STREAM_INTERFACE
struct ArrowArrayStream {
    int (*get_schema)(struct ArrowArrayStream *, struct ArrowSchema *out);
    int (*get_next)(struct ArrowArrayStream *, struct ArrowArray *out);
    const char *(*get_last_error)(struct ArrowArrayStream *);
    void (*release)(struct ArrowArrayStream *);
    void *private_data;
};
#endif

/* Layouts of a key column (rh_col.kind). */
enum {
    RH_COL_INT = 1, /* integers of `width` bytes, `is_signed` */
    RH_COL_BIN32,   /* utf8 / binary: int32 offsets + data */
    RH_COL_BIN64,   /* large_utf8 / large_binary: int64 offsets + data */
    RH_COL_VIEW,    /* utf8_view / binary_view: 16-byte views + variadic buffers */
    RH_COL_FIXED,   /* fixed_size_binary: `width` bytes per value */
};

typedef struct rh_col {
    int kind;
    int width;     /* RH_COL_INT: 1, 2, 4 or 8; RH_COL_FIXED: bytes per value */
    int is_signed; /* RH_COL_INT */
    int64_t length;
    int64_t offset;              /* rows of the buffers before row 0 (a slice) */
    const uint8_t *validity;     /* NULL: no nulls */
    const void *values;          /* ints, offsets, views or fixed-size data */
    const uint8_t *data;         /* RH_COL_BIN32/64 */
    const uint8_t *const *vbufs; /* RH_COL_VIEW: the variadic data buffers */
    const int64_t *vsizes;       /* RH_COL_VIEW: their sizes */
    int64_t nvbufs;
} rh_col;

/* Fill *c from one array of a primitive key type (not a dictionary: the
 * caller reads the indices and the dictionary as two columns). Returns 0, or
 * -1 with a message in err. `format` is the schema's format string. */
int rh_col_init(rh_col *c, const char *format, const struct ArrowArray *a, char *err,
                size_t errlen);

/* A name for an Arrow format string, for messages ("float64", "timestamp"...). */
const char *rh_arrow_type_name(const char *format);

/* Whether row i (0-based, in the column) is valid, i.e. not null. */
static inline int rh_col_valid(const rh_col *c, int64_t i)
{
    if (!c->validity)
        return 1;
    uint64_t bit = (uint64_t)(c->offset + i);
    return (c->validity[bit >> 3] >> (bit & 7)) & 1;
}

/* The first null row in [start, start + n), or -1. Word-at-a-time over the bitmap. */
int64_t rh_col_first_null(const rh_col *c, int64_t start, int64_t n);

/* out[r - start] = fill for each null row r in [start, start + n). */
void rh_col_fill_nulls(const rh_col *c, int64_t start, int64_t n, uint32_t *out, uint32_t fill);

/* Hashes of rows [start, start + n) into out (null rows get 0 and are not
 * read). Returns -1, or the first row (column index) whose offsets or view
 * the producer got wrong; `algo` is RH_MURMUR3, RH_CRC32 or RH_MD5. */
int64_t rh_col_hash(const rh_col *c, int algo, uint32_t seed, int64_t start, int64_t n,
                    uint32_t *out);

/* Owners of rows [start, start + n) of a plain (not dictionary) column in ring
 * r: RH_CHUNK rows hashed by rh_col_hash, then searched. Null rows get some
 * owner, for the caller to overwrite. Returns -1, or the first row the
 * producer got wrong. */
int64_t rh_col_lookup(const rh_col *c, const rh_ring *r, int64_t start, int64_t n, int32_t *out);

/* The 64-bit keys of rows [start, start + n) for jump consistent hash: an
 * integer as itself, bytes as rh_murmur3_x64_lo (null rows 0). Returns -1, or
 * the first row the producer got wrong. */
int64_t rh_col_key64(const rh_col *c, int64_t start, int64_t n, uint64_t *out);

/* The 64-bit key encodings of integer rows [start, start + n) (null rows 0). */
void rh_col_u64(const rh_col *c, int64_t start, int64_t n, uint64_t *out);

/* Dictionary codes of rows [start, start + n) as int64 (null rows -1).
 * Returns -1, or the first row whose code is outside [0, ndict). */
int64_t rh_col_codes(const rh_col *c, int64_t start, int64_t n, int64_t ndict, int64_t *out);

/* A dictionary chunk's rows [start, start + n) (c: its indices) through the
 * per-entry table values[nvalues] (owners or hashes): null rows, and codes of
 * entries marked in nullv (may be NULL), get fill. Returns -1, or the first row
 * whose code lies outside [0, nvalues). */
int64_t rh_col_gather(const rh_col *c, int64_t start, int64_t n, const int32_t *values,
                      int64_t nvalues, const uint8_t *nullv, int32_t fill, int32_t *out);

/* Counting sort of owners, O(n + nowners): order[offsets[o]:offsets[o + 1]]
 * lists, in increasing row order, the rows i with owner[i] == o; offsets has
 * nowners + 1 entries. Every owner must lie in [0, nowners). */
void rh_partition(const int32_t *owner, int64_t n, int32_t nowners, int64_t *order,
                  int64_t *offsets);

#ifdef __cplusplus
}
#endif
#endif
