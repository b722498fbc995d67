/* ringhash: small ring helpers the Cython kernels inline. */
#ifndef RINGHASH_RH_RING_H
#define RINGHASH_RH_RING_H

#include <stddef.h>
#include <stdint.h>

#if defined(_MSC_VER)
#define RH_RESTRICT __restrict
#else
#define RH_RESTRICT __restrict__
#endif

/* out[i] = in[i] + add: a copy with an offset, which the compiler vectorizes
 * because the buffers are declared not to overlap. */
static inline void rh_add_run(uint32_t *RH_RESTRICT out, const uint32_t *RH_RESTRICT in,
                              size_t n, uint32_t add)
{
    for (size_t i = 0; i < n; i++)
        out[i] = in[i] + add;
}

#endif
