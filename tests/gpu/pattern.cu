// SPDX-License-Identifier: MIT
// Pattern writers and checkers for the tensor-sharing tests.

#include <stdint.h>

#include "test-kernels.h"

__host__ __device__ static inline uint32_t pattern_at(uint32_t seed, uint64_t i) {
        // splitmix64's finaliser over (seed, i): every word differs between seeds.
        uint64_t z = (i + 1) * 0x9e3779b97f4a7c15ull ^ ((uint64_t) seed << 32 | seed);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return (uint32_t) (z ^ (z >> 31));
}

__device__ static inline uint64_t global_ns(void) {
        uint64_t t;

        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
        return t;
}

// One thread sleeping on the GPU: the stream's next kernel starts delay_ns later.
__global__ static void sleep_kernel(uint64_t delay_ns) {
        uint64_t start = global_ns();

        while (global_ns() - start < delay_ns)
                __nanosleep(10000);
}

__global__ static void fill_kernel(uint32_t *p, size_t n, uint32_t seed) {
        for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x)
                p[i] = pattern_at(seed, i);
}

__global__ static void check_kernel(const uint32_t *p, size_t n, uint32_t seed, unsigned long long *count) {
        unsigned long long bad = 0;

        for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n; i += (size_t) gridDim.x * blockDim.x)
                bad += p[i] != pattern_at(seed, i);
        if (bad)
                atomicAdd(count, bad);
}

static int grid_for(size_t n) {
        size_t blocks = (n + 255) / 256;

        return (int) (blocks > 4096 ? 4096 : blocks < 1 ? 1 : blocks);
}

extern "C" uint32_t rmk_pattern_value(uint32_t seed, uint64_t i) {
        return pattern_at(seed, i);
}

extern "C" int rmk_fill_pattern(void *p, size_t n_words, uint32_t seed, cudaStream_t stream) {
        fill_kernel<<<grid_for(n_words), 256, 0, stream>>>((uint32_t *) p, n_words, seed);
        return (int) cudaGetLastError();
}

extern "C" int rmk_slow_fill_pattern(void *p, size_t n_words, uint32_t seed, uint64_t delay_ns,
                                     cudaStream_t stream) {
        sleep_kernel<<<1, 1, 0, stream>>>(delay_ns);
        fill_kernel<<<grid_for(n_words), 256, 0, stream>>>((uint32_t *) p, n_words, seed);
        return (int) cudaGetLastError();
}

extern "C" int rmk_check_pattern(const void *p, size_t n_words, uint32_t seed, unsigned long long *d_count,
                                 cudaStream_t stream) {
        check_kernel<<<grid_for(n_words), 256, 0, stream>>>((const uint32_t *) p, n_words, seed, d_count);
        return (int) cudaGetLastError();
}

extern "C" long long rmk_count_mismatches(const void *p, size_t n_words, uint32_t seed, cudaStream_t stream) {
        unsigned long long *d = NULL, h = 0;
        cudaError_t e;

        e = cudaMalloc(&d, sizeof(*d));
        if (e != cudaSuccess)
                return -(long long) e;
        e = cudaMemsetAsync(d, 0, sizeof(*d), stream);
        if (e == cudaSuccess)
                e = (cudaError_t) rmk_check_pattern(p, n_words, seed, d, stream);
        if (e == cudaSuccess)
                e = cudaMemcpyAsync(&h, d, sizeof(h), cudaMemcpyDeviceToHost, stream);
        if (e == cudaSuccess)
                e = cudaStreamSynchronize(stream);
        cudaFree(d);
        return e == cudaSuccess ? (long long) h : -(long long) e;
}
