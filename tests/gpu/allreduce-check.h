/* SPDX-License-Identifier: MIT */
#ifndef RMTEST_ALLREDUCE_CHECK_H
#define RMTEST_ALLREDUCE_CHECK_H

/*
 * Device helpers of the all-reduce tests and benchmark
 * (tests/gpu/allreduce-check.cu): random inputs every rank can regenerate,
 * and a check against the serial sum.  dtype is enum rmk_ar_dtype.
 */

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* p[i] = rank's random value i for seed: uniform in [-1, 1), rounded to dtype. */
int arc_fill(void *p, size_t count, int dtype, uint64_t seed, int rank, cudaStream_t stream);
/*
 * Adds to *d_bad the number of i where out[i] is not the sum over ranks
 * 0..world-1 of their arc_fill values: exact: bit-equal to the fp32 sum in
 * rank order rounded once (the custom kernels' promise); else within
 * 2^-7 (bf16), 2^-10 (f16), 2^-20 (f32) of the sum of magnitudes (NCCL's
 * order).  NaN is always bad.
 */
int arc_check(const void *out, size_t count, int dtype, uint64_t seed, int world, int exact,
              unsigned long long *d_bad, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
