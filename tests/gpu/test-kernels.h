/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_TEST_KERNELS_H
#define RINGMASTER_TEST_KERNELS_H

/*
 * Device code for the GPU tests and benchmarks, callable from C.  Each
 * launcher returns a cudaError_t (0 on success) for the launch; the work
 * runs on the given stream.
 */

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The value the pattern of seed has at word i (host and device agree). */
uint32_t rmk_pattern_value(uint32_t seed, uint64_t i);

/* p[i] = pattern(seed, i) for i < n_words. */
int rmk_fill_pattern(void *p, size_t n_words, uint32_t seed, cudaStream_t stream);
/* The same, after spinning delay_ns on the GPU first (a slow writer for ordering tests). */
int rmk_slow_fill_pattern(void *p, size_t n_words, uint32_t seed, uint64_t delay_ns, cudaStream_t stream);
/* Adds the number of words with p[i] != pattern(seed, i) to *d_count (device memory). */
int rmk_check_pattern(const void *p, size_t n_words, uint32_t seed, unsigned long long *d_count,
                      cudaStream_t stream);
/*
 * Synchronous: mismatching words of p against the pattern, checked on the
 * current device; a negative cudaError_t on failure.
 */
long long rmk_count_mismatches(const void *p, size_t n_words, uint32_t seed, cudaStream_t stream);

/* Copies bytes (a multiple of 16, 16-byte aligned) from src (e.g. a peer's memory) to dst with SM loads. */
int rmk_peer_copy(void *dst, const void *src, size_t bytes, int blocks, int threads, cudaStream_t stream);
/* Reads bytes from src and folds them into *d_sink (so the loads cannot be dropped). */
int rmk_peer_read(const void *src, size_t bytes, unsigned long long *d_sink, int blocks, int threads,
                  cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
