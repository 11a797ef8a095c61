// SPDX-License-Identifier: MIT
// Kernels that read another GPU's memory through an imported pointer, for
// the bandwidth benchmark: a copy (peer -> local, what cudaMemcpyPeer does)
// and a pure read.  16-byte loads, several in flight per thread.

#include <stdint.h>

#include "test-kernels.h"

#define UNROLL 4

__global__ static void copy_kernel(int4 *__restrict__ dst, const int4 *__restrict__ src, size_t n) {
        size_t stride = (size_t) gridDim.x * blockDim.x;
        size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x;

        for (; i + (UNROLL - 1) * stride < n; i += UNROLL * stride) {
                int4 v[UNROLL];

#pragma unroll
                for (int k = 0; k < UNROLL; k++)
                        v[k] = src[i + k * stride];
#pragma unroll
                for (int k = 0; k < UNROLL; k++)
                        dst[i + k * stride] = v[k];
        }
        for (; i < n; i += stride)
                dst[i] = src[i];
}

__global__ static void read_kernel(const int4 *__restrict__ src, size_t n, unsigned long long *sink) {
        size_t stride = (size_t) gridDim.x * blockDim.x;
        size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x;
        unsigned int acc = 0;

        for (; i + (UNROLL - 1) * stride < n; i += UNROLL * stride) {
                int4 v[UNROLL];

#pragma unroll
                for (int k = 0; k < UNROLL; k++)
                        v[k] = src[i + k * stride];
#pragma unroll
                for (int k = 0; k < UNROLL; k++)
                        acc ^= (unsigned) v[k].x ^ (unsigned) v[k].y ^ (unsigned) v[k].z ^ (unsigned) v[k].w;
        }
        for (; i < n; i += stride) {
                int4 v = src[i];

                acc ^= (unsigned) v.x ^ (unsigned) v.y ^ (unsigned) v.z ^ (unsigned) v.w;
        }
        if (acc == 0x9e3779b9u)         // data dependent: the loads stay
                atomicAdd(sink, 1ull);
}

extern "C" int rmk_peer_copy(void *dst, const void *src, size_t bytes, int blocks, int threads,
                             cudaStream_t stream) {
        if (bytes % 16 || (uintptr_t) dst % 16 || (uintptr_t) src % 16 || blocks <= 0 || threads <= 0)
                return (int) cudaErrorInvalidValue;
        copy_kernel<<<blocks, threads, 0, stream>>>((int4 *) dst, (const int4 *) src, bytes / 16);
        return (int) cudaGetLastError();
}

extern "C" int rmk_peer_read(const void *src, size_t bytes, unsigned long long *d_sink, int blocks, int threads,
                             cudaStream_t stream) {
        if (bytes % 16 || (uintptr_t) src % 16 || blocks <= 0 || threads <= 0)
                return (int) cudaErrorInvalidValue;
        read_kernel<<<blocks, threads, 0, stream>>>((const int4 *) src, bytes / 16, d_sink);
        return (int) cudaGetLastError();
}
