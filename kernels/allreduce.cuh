/* SPDX-License-Identifier: MIT */
#ifndef RMK_ALLREDUCE_CUH
#define RMK_ALLREDUCE_CUH

/*
 * Device side of the custom all-reduce (rm_allreduce_kernels.h has the
 * contract: the window layout, the generation protocol, the ordering
 * rules).  Included by kernels/allreduce.cu only.
 *
 * Memory ordering: block b's threads write its part of the input into the
 * local slot with plain stores; __syncthreads() orders them before thread
 * p's st.release.sys of the generation into peer p's flag (release is
 * cumulative over what the block made visible to it); peer p's thread q
 * polls with ld.acquire.sys, then __syncthreads() lets the whole block read
 * the slots.  Flags sit on 128-byte lines of their own.
 */

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "rm_allreduce_kernels.h"

namespace rmk_ar {

__device__ __forceinline__ void st_release_sys(uint32_t *p, uint32_t v) {
        asm volatile("st.release.sys.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

__device__ __forceinline__ uint32_t ld_acquire_sys(const uint32_t *p) {
        uint32_t v;

        asm volatile("ld.acquire.sys.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
        return v;
}

__device__ __forceinline__ uint64_t globaltimer(void) {
        uint64_t t;

        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
        return t;
}

/* The flag that from_rank sets in window's owner for block, phase. */
__device__ __forceinline__ uint32_t *flag_of(void *window, int phase, int block, int from_rank) {
        size_t line = ((size_t) phase * RMK_AR_MAX_BLOCKS + (size_t) block) * RMK_AR_MAX_RANKS + (size_t) from_rank;

        return (uint32_t *) ((char *) window + line * RMK_AR_FLAG_LINE);
}

__device__ __forceinline__ uint32_t *counter_of(void *window, int block) {
        return (uint32_t *) ((char *) window + RMK_AR_COUNTERS_OFFSET) + block;
}

/* a.window[i] without a run-time index into the parameter array (which would go to the stack). */
template <int N>
__device__ __forceinline__ char *window_at(const rmk_ar_args &a, int i) {
        char *w = nullptr;

#pragma unroll
        for (int p = 0; p < N; p++)
                if (p == i)
                        w = (char *) a.window[p];
        return w;
}

/*
 * Block blockIdx.x of every rank meets here for phase with generation gen.
 * A peer may already be one call ahead (its flag then holds gen + 1), so
 * the wait is for "at least gen", in wrap-around arithmetic.
 */
template <int N>
__device__ __forceinline__ void barrier(const rmk_ar_args &a, int phase, uint32_t gen) {
        const int t = (int) threadIdx.x;

        __syncthreads();
        if (t < N && t != a.rank) {
                const uint32_t *mine = flag_of(window_at<N>(a, a.rank), phase, (int) blockIdx.x, t);
                uint64_t start = 0;
                unsigned spins = 0;

                st_release_sys(flag_of(window_at<N>(a, t), phase, (int) blockIdx.x, a.rank), gen);
                while ((int32_t) (ld_acquire_sys(mine) - gen) < 0) {
                        if (a.timeout_ns && (++spins & 1023u) == 0) {
                                uint64_t now = globaltimer();

                                if (!start)
                                        start = now;
                                else if (now - start > a.timeout_ns)
                                        __trap();
                        }
                }
        }
        __syncthreads();
}

/* 16 bytes of elements, summed in fp32. */
template <int DT>
struct pack_ops;

template <>
struct pack_ops<RMK_AR_F32> {
        typedef float elem;
        static constexpr int n = 4;
        __device__ static __forceinline__ void load(float (&f)[8], const uint4 &v) {
                f[0] = __uint_as_float(v.x);
                f[1] = __uint_as_float(v.y);
                f[2] = __uint_as_float(v.z);
                f[3] = __uint_as_float(v.w);
        }
        __device__ static __forceinline__ void add(float (&f)[8], const uint4 &v) {
                f[0] += __uint_as_float(v.x);
                f[1] += __uint_as_float(v.y);
                f[2] += __uint_as_float(v.z);
                f[3] += __uint_as_float(v.w);
        }
        __device__ static __forceinline__ uint4 store(const float (&f)[8]) {
                return make_uint4(__float_as_uint(f[0]), __float_as_uint(f[1]), __float_as_uint(f[2]),
                                  __float_as_uint(f[3]));
        }
        __device__ static __forceinline__ float to_float(elem e) { return e; }
        __device__ static __forceinline__ elem from_float(float f) { return f; }
};

/*
 * The two 16-bit types differ only in how a pair of them converts to and
 * from two floats (Pair: __half2 or __nv_bfloat162, with its conversions
 * given by the derived type); loading, adding and storing 8 of them is one
 * piece of code.
 */
template <typename Derived, typename Pair>
struct pack16_ops {
        static constexpr int n = 8;
        __device__ static __forceinline__ float2 two(uint32_t w) {
                Pair h;

                memcpy(&h, &w, 4);
                return Derived::to_float2(h);
        }
        __device__ static __forceinline__ uint32_t pack2(float a, float b) {
                Pair h = Derived::from_floats(a, b);
                uint32_t w;

                memcpy(&w, &h, 4);
                return w;
        }
        __device__ static __forceinline__ void load(float (&f)[8], const uint4 &v) {
                float2 p;

                p = two(v.x), f[0] = p.x, f[1] = p.y;
                p = two(v.y), f[2] = p.x, f[3] = p.y;
                p = two(v.z), f[4] = p.x, f[5] = p.y;
                p = two(v.w), f[6] = p.x, f[7] = p.y;
        }
        __device__ static __forceinline__ void add(float (&f)[8], const uint4 &v) {
                float2 p;

                p = two(v.x), f[0] += p.x, f[1] += p.y;
                p = two(v.y), f[2] += p.x, f[3] += p.y;
                p = two(v.z), f[4] += p.x, f[5] += p.y;
                p = two(v.w), f[6] += p.x, f[7] += p.y;
        }
        __device__ static __forceinline__ uint4 store(const float (&f)[8]) {
                return make_uint4(pack2(f[0], f[1]), pack2(f[2], f[3]), pack2(f[4], f[5]), pack2(f[6], f[7]));
        }
};

template <>
struct pack_ops<RMK_AR_F16> : pack16_ops<pack_ops<RMK_AR_F16>, __half2> {
        typedef __half elem;
        __device__ static __forceinline__ float2 to_float2(__half2 h) { return __half22float2(h); }
        __device__ static __forceinline__ __half2 from_floats(float a, float b) { return __floats2half2_rn(a, b); }
        __device__ static __forceinline__ float to_float(__half e) { return __half2float(e); }
        __device__ static __forceinline__ __half from_float(float f) { return __float2half_rn(f); }
};

template <>
struct pack_ops<RMK_AR_BF16> : pack16_ops<pack_ops<RMK_AR_BF16>, __nv_bfloat162> {
        typedef __nv_bfloat16 elem;
        __device__ static __forceinline__ float2 to_float2(__nv_bfloat162 h) { return __bfloat1622float2(h); }
        __device__ static __forceinline__ __nv_bfloat162 from_floats(float a, float b) {
                return __floats2bfloat162_rn(a, b);
        }
        __device__ static __forceinline__ float to_float(__nv_bfloat16 e) { return __bfloat162float(e); }
        __device__ static __forceinline__ __nv_bfloat16 from_float(float f) { return __float2bfloat16_rn(f); }
};

/* The sum, in rank order, of pack i: rank's own value from in, the others' from their slots. */
template <int DT, int N>
__device__ __forceinline__ uint4 sum_pack(const uint4 *const (&slot)[N], const uint4 *in, int rank, size_t i) {
        uint4 v[N];
        float f[8];

#pragma unroll
        for (int p = 0; p < N; p++)
                v[p] = p == rank ? in[i] : slot[p][i];
        pack_ops<DT>::load(f, v[0]);
#pragma unroll
        for (int p = 1; p < N; p++)
                pack_ops<DT>::add(f, v[p]);
        return pack_ops<DT>::store(f);
}

/* The elements past the last whole pack (fewer than 8), summed by block 0 alone. */
template <int DT, int N>
__device__ __forceinline__ void sum_tail(const rmk_ar_args &a, size_t slot_off, size_t first, size_t count) {
        typedef typename pack_ops<DT>::elem elem;
        size_t e = first + threadIdx.x;

        if (blockIdx.x != 0 || e >= count)
                return;
        float f = 0.0f;
#pragma unroll
        for (int p = 0; p < N; p++) {
                const elem *src = p == a.rank ? (const elem *) a.in
                                              : (const elem *) ((const char *) a.window[p] + slot_off);

                f = p == 0 ? pack_ops<DT>::to_float(src[e]) : f + pack_ops<DT>::to_float(src[e]);
        }
        ((elem *) a.out)[e] = pack_ops<DT>::from_float(f);
}

template <int DT>
__device__ __forceinline__ void copy_tail(const rmk_ar_args &a, char *slot, size_t first, size_t count) {
        typedef typename pack_ops<DT>::elem elem;
        size_t e = first + threadIdx.x;

        if (blockIdx.x == 0 && e < count)
                ((elem *) slot)[e] = ((const elem *) a.in)[e];
}

template <int DT, int N>
__global__ void __launch_bounds__(RMK_AR_THREADS) one_shot(const rmk_ar_args a) {
        constexpr size_t esize = 16 / pack_ops<DT>::n;
        uint32_t *counter = counter_of(window_at<N>(a, a.rank), (int) blockIdx.x);
        const uint32_t gen = *counter + 1;
        const size_t slot_off = RMK_AR_SIGNAL_BYTES + (gen & 1u) * a.cap;
        const size_t npacks = a.count * esize / 16, tail = npacks * pack_ops<DT>::n;
        const size_t stride = (size_t) gridDim.x * RMK_AR_THREADS;
        const uint4 *in = (const uint4 *) a.in;
        uint4 *out = (uint4 *) a.out;
        uint4 *mine = (uint4 *) (window_at<N>(a, a.rank) + slot_off);
        const uint4 *slot[N];

#pragma unroll
        for (int p = 0; p < N; p++)
                slot[p] = (const uint4 *) ((const char *) a.window[p] + slot_off);

        for (size_t i = blockIdx.x * (size_t) RMK_AR_THREADS + threadIdx.x; i < npacks; i += stride)
                mine[i] = in[i];
        copy_tail<DT>(a, (char *) mine, tail, a.count);
        barrier<N>(a, 0, gen);
        for (size_t i = blockIdx.x * (size_t) RMK_AR_THREADS + threadIdx.x; i < npacks; i += stride)
                out[i] = sum_pack<DT, N>(slot, in, a.rank, i);
        sum_tail<DT, N>(a, slot_off, tail, a.count);
        if (threadIdx.x == 0)
                *counter = gen;
}

template <int DT, int N>
__global__ void __launch_bounds__(RMK_AR_THREADS) two_shot(const rmk_ar_args a) {
        constexpr size_t esize = 16 / pack_ops<DT>::n;
        uint32_t *counter = counter_of(window_at<N>(a, a.rank), (int) blockIdx.x);
        const uint32_t gen = *counter + 1;
        const size_t slot_off = RMK_AR_SIGNAL_BYTES + (gen & 1u) * a.cap;
        const size_t npacks = a.count * esize / 16, tail = npacks * pack_ops<DT>::n;
        const size_t shard = (npacks + N - 1) / N;
        const size_t stride = (size_t) gridDim.x * RMK_AR_THREADS;
        const size_t first = blockIdx.x * (size_t) RMK_AR_THREADS + threadIdx.x;
        const uint4 *in = (const uint4 *) a.in;
        uint4 *out = (uint4 *) a.out;
        uint4 *mine = (uint4 *) (window_at<N>(a, a.rank) + slot_off);
        const uint4 *slot[N];

#pragma unroll
        for (int p = 0; p < N; p++)
                slot[p] = (const uint4 *) ((const char *) a.window[p] + slot_off);

        /* The shards the peers reduce: copy them into the slot. */
#pragma unroll
        for (int p = 0; p < N; p++) {
                size_t lo = (size_t) p * shard, hi = lo + shard < npacks ? lo + shard : npacks;

                if (p == a.rank)
                        continue;
                for (size_t i = lo + first; i < hi; i += stride)
                        mine[i] = in[i];
        }
        copy_tail<DT>(a, (char *) mine, tail, a.count);
        barrier<N>(a, 0, gen);

        /* Reduce-scatter: this rank's shard, published in its slot. */
        {
                size_t lo = (size_t) a.rank * shard, hi = lo + shard < npacks ? lo + shard : npacks;

                for (size_t i = lo + first; i < hi; i += stride) {
                        uint4 s = sum_pack<DT, N>(slot, in, a.rank, i);

                        mine[i] = s;
                        out[i] = s;
                }
        }
        sum_tail<DT, N>(a, slot_off, tail, a.count);
        barrier<N>(a, 1, gen);

        /* All-gather: the other shards, from their owners' slots. */
#pragma unroll
        for (int p = 0; p < N; p++) {
                size_t lo = (size_t) p * shard, hi = lo + shard < npacks ? lo + shard : npacks;

                if (p == a.rank)
                        continue;
                for (size_t i = lo + first; i < hi; i += stride)
                        out[i] = slot[p][i];
        }
        if (threadIdx.x == 0)
                *counter = gen;
}

} /* namespace rmk_ar */

#endif
