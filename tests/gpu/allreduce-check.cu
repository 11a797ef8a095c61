/* SPDX-License-Identifier: MIT */
/* Random inputs and the reference sum for the all-reduce tests (allreduce-check.h). */

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "allreduce-check.h"
#include "rm_allreduce_kernels.h"

namespace {

__device__ __forceinline__ uint64_t mix(uint64_t x) {
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdULL;
        x ^= x >> 33;
        x *= 0xc4ceb9fe1a85ec53ULL;
        x ^= x >> 33;
        return x;
}

__device__ __forceinline__ float value(uint64_t seed, int rank, size_t i) {
        uint64_t h = mix(seed ^ mix((uint64_t) rank * 0x9e3779b97f4a7c15ULL + i));

        return (float) (h >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

__device__ __forceinline__ float round_to(int dtype, float f) {
        if (dtype == RMK_AR_F16)
                return __half2float(__float2half_rn(f));
        if (dtype == RMK_AR_BF16)
                return __bfloat162float(__float2bfloat16_rn(f));
        return f;
}

__device__ __forceinline__ float load(int dtype, const void *p, size_t i) {
        if (dtype == RMK_AR_F16)
                return __half2float(((const __half *) p)[i]);
        if (dtype == RMK_AR_BF16)
                return __bfloat162float(((const __nv_bfloat16 *) p)[i]);
        return ((const float *) p)[i];
}

__global__ void fill(void *p, size_t count, int dtype, uint64_t seed, int rank) {
        for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < count; i += (size_t) gridDim.x * blockDim.x) {
                float f = value(seed, rank, i);

                if (dtype == RMK_AR_F16)
                        ((__half *) p)[i] = __float2half_rn(f);
                else if (dtype == RMK_AR_BF16)
                        ((__nv_bfloat16 *) p)[i] = __float2bfloat16_rn(f);
                else
                        ((float *) p)[i] = f;
        }
}

__global__ void check(const void *out, size_t count, int dtype, uint64_t seed, int world, int exact,
                      unsigned long long *bad) {
        const float tol = dtype == RMK_AR_BF16 ? 1.0f / 128 : dtype == RMK_AR_F16 ? 1.0f / 1024 : 1.0f / 1048576;
        unsigned long long mine = 0;

        for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < count; i += (size_t) gridDim.x * blockDim.x) {
                float sum = 0.0f, mag = 0.0f, got = load(dtype, out, i);

                for (int r = 0; r < world; r++) {
                        float v = round_to(dtype, value(seed, r, i));

                        sum = r == 0 ? v : sum + v;
                        mag += fabsf(v);
                }
                sum = round_to(dtype, sum);
                if (exact ? __float_as_uint(got) != __float_as_uint(sum) : !(fabsf(got - sum) <= tol * (mag + 1.0f)))
                        mine++;
        }
        if (mine)
                atomicAdd(bad, mine);
}

unsigned grid_for(size_t count) {
        size_t g = (count + 255) / 256;

        return (unsigned) (g < 1 ? 1 : g > 1024 ? 1024 : g);
}

} /* namespace */

extern "C" int arc_fill(void *p, size_t count, int dtype, uint64_t seed, int rank, cudaStream_t stream) {
        fill<<<grid_for(count), 256, 0, stream>>>(p, count, dtype, seed, rank);
        return cudaGetLastError();
}

extern "C" int arc_check(const void *out, size_t count, int dtype, uint64_t seed, int world, int exact,
                         unsigned long long *d_bad, cudaStream_t stream) {
        check<<<grid_for(count), 256, 0, stream>>>(out, count, dtype, seed, world, exact, d_bad);
        return cudaGetLastError();
}
