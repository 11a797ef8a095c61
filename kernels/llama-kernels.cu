// SPDX-License-Identifier: MIT
// The bf16 layer kernels of ringmaster-engine's GPU path (llama-kernels.h).
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <float.h>
#include <math.h>

#include "llama-kernels.h"

typedef __nv_bfloat16 bf16;

static __device__ __forceinline__ float f(bf16 x) { return __bfloat162float(x); }
static __device__ __forceinline__ bf16 b(float x) { return __float2bfloat16(x); }
static __device__ __forceinline__ float rb(float x) { return __bfloat162float(__float2bfloat16(x)); }

static int launched(void) {
        return (int) cudaGetLastError();
}

static __device__ float block_sum(float v, float *sh) {
        for (int o = 16; o > 0; o >>= 1)
                v += __shfl_xor_sync(0xffffffffu, v, o);
        int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
        __syncthreads();
        if (lane == 0)
                sh[warp] = v;
        __syncthreads();
        v = threadIdx.x < nw ? sh[threadIdx.x] : 0.f;
        if (warp == 0)
                for (int o = 16; o > 0; o >>= 1)
                        v += __shfl_xor_sync(0xffffffffu, v, o);
        if (threadIdx.x == 0)
                sh[0] = v;
        __syncthreads();
        return sh[0];
}

static __device__ float block_max(float v, float *sh) {
        for (int o = 16; o > 0; o >>= 1)
                v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
        int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
        __syncthreads();
        if (lane == 0)
                sh[warp] = v;
        __syncthreads();
        v = threadIdx.x < nw ? sh[threadIdx.x] : -FLT_MAX;
        if (warp == 0)
                for (int o = 16; o > 0; o >>= 1)
                        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
        if (threadIdx.x == 0)
                sh[0] = v;
        __syncthreads();
        return sh[0];
}

// ------------------------------------------------------------------ embed
__global__ void embed_kernel(bf16 *x, const bf16 *table, const int32_t *ids, int hidden) {
        const bf16 *row = table + (size_t) ids[blockIdx.x] * hidden;
        bf16 *o = x + (size_t) blockIdx.x * hidden;
        for (int i = threadIdx.x; i < hidden; i += blockDim.x)
                o[i] = row[i];
}

extern "C" int rm_llama_embed(uint16_t *x, const uint16_t *table, const int32_t *ids, int n, int hidden, rm_stream_t s) {
        embed_kernel<<<n, 256, 0, (cudaStream_t) s>>>((bf16 *) x, (const bf16 *) table, ids, hidden);
        return launched();
}

// ------------------------------------------------------------- add + norm
// As transformers: x = x + add (bf16); var = mean(float(x)^2); out = w * bf16(x * rsqrt(var + eps)).
__global__ void add_rmsnorm_kernel(bf16 *x, const bf16 *add, const bf16 *w, bf16 *out, int hidden, float eps) {
        __shared__ float sh[32];
        bf16 *xr = x + (size_t) blockIdx.x * hidden;
        const bf16 *ar = add ? add + (size_t) blockIdx.x * hidden : nullptr;
        float ss = 0.f;
        for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
                float v = f(xr[i]);
                if (ar) {
                        v = rb(v + f(ar[i]));
                        xr[i] = b(v);
                }
                ss += v * v;
        }
        ss = block_sum(ss, sh);
        float r = rsqrtf(ss / hidden + eps);
        bf16 *o = out + (size_t) blockIdx.x * hidden;
        for (int i = threadIdx.x; i < hidden; i += blockDim.x)
                o[i] = b(f(w[i]) * rb(f(xr[i]) * r));
}

extern "C" int rm_llama_add_rmsnorm(uint16_t *x, const uint16_t *add, const uint16_t *w, uint16_t *out, int rows,
                                    int hidden, float eps, rm_stream_t s) {
        add_rmsnorm_kernel<<<rows, 256, 0, (cudaStream_t) s>>>((bf16 *) x, (const bf16 *) add, (const bf16 *) w,
                                                               (bf16 *) out, hidden, eps);
        return launched();
}

// The same, the addend an fp32 sum over tensor-parallel ranks: rounded to bf16 once, as one GEMM's output.
__global__ void add_f32_rmsnorm_kernel(bf16 *x, const float *add, const bf16 *w, bf16 *out, int hidden, float eps) {
        __shared__ float sh[32];
        bf16 *xr = x + (size_t) blockIdx.x * hidden;
        const float *ar = add + (size_t) blockIdx.x * hidden;
        float ss = 0.f;
        for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
                float v = rb(f(xr[i]) + rb(ar[i]));
                xr[i] = b(v);
                ss += v * v;
        }
        ss = block_sum(ss, sh);
        float r = rsqrtf(ss / hidden + eps);
        bf16 *o = out + (size_t) blockIdx.x * hidden;
        for (int i = threadIdx.x; i < hidden; i += blockDim.x)
                o[i] = b(f(w[i]) * rb(f(xr[i]) * r));
}

extern "C" int rm_llama_add_rmsnorm_f32(uint16_t *x, const float *add, const uint16_t *w, uint16_t *out, int rows,
                                        int hidden, float eps, rm_stream_t s) {
        add_f32_rmsnorm_kernel<<<rows, 256, 0, (cudaStream_t) s>>>((bf16 *) x, add, (const bf16 *) w, (bf16 *) out,
                                                                   hidden, eps);
        return launched();
}

// -------------------------------------------------------------------- gemv
// A decode step's products have a few rows against a large weight: the
// weight is read once, one warp per output column n (a row of w), each lane
// 8 elements (16 bytes) at a time, the rows of x from the cache; fp32 sums.
#define GEMV_WARPS 8

template <int NT, bool F32>
__global__ void __launch_bounds__(GEMV_WARPS * 32) gemv_kernel(const bf16 *x, int ldx, const bf16 *w, int ldw, void *y,
                                                               int ldy, int N, int K) {
        const int n = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
        if (n >= N)
                return;
        const bf16 *wr = w + (size_t) n * ldw;
        float acc[NT];
#pragma unroll
        for (int t = 0; t < NT; t++)
                acc[t] = 0.f;
#pragma unroll 4
        for (int k = lane * 8; k < K; k += 256) {
                uint4 wv = __ldg((const uint4 *) (wr + k));
                const __nv_bfloat162 *w2 = (const __nv_bfloat162 *) &wv;
                float2 wf[4];
#pragma unroll
                for (int u = 0; u < 4; u++)
                        wf[u] = __bfloat1622float2(w2[u]);
#pragma unroll
                for (int t = 0; t < NT; t++) {
                        uint4 xv = *(const uint4 *) (x + (size_t) t * ldx + k);
                        const __nv_bfloat162 *x2 = (const __nv_bfloat162 *) &xv;
#pragma unroll
                        for (int u = 0; u < 4; u++) {
                                float2 xf = __bfloat1622float2(x2[u]);
                                acc[t] = fmaf(wf[u].x, xf.x, acc[t]);
                                acc[t] = fmaf(wf[u].y, xf.y, acc[t]);
                        }
                }
        }
#pragma unroll
        for (int t = 0; t < NT; t++)
                for (int o = 16; o > 0; o >>= 1)
                        acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], o);
        if (lane == 0)
#pragma unroll
                for (int t = 0; t < NT; t++) {
                        if (F32)
                                ((float *) y)[(size_t) t * ldy + n] = acc[t];
                        else
                                ((bf16 *) y)[(size_t) t * ldy + n] = b(acc[t]);
                }
}

extern "C" int rm_llama_gemv_ok(const void *x, int ldx, const void *w, int ldw, int rows, int k) {
        return rows >= 1 && rows <= RM_LLAMA_GEMV_MAX_ROWS && k % 8 == 0 && ldx % 8 == 0 && ldw % 8 == 0 &&
               (uintptr_t) x % 16 == 0 && (uintptr_t) w % 16 == 0;
}

template <bool F32>
static void gemv_launch(const bf16 *x, int ldx, const bf16 *w, int ldw, void *y, int ldy, int T, int N, int K,
                        cudaStream_t s) {
        dim3 grid((N + GEMV_WARPS - 1) / GEMV_WARPS), block(GEMV_WARPS * 32);
        switch (T) {
        case 1: gemv_kernel<1, F32><<<grid, block, 0, s>>>(x, ldx, w, ldw, y, ldy, N, K); break;
        case 2: gemv_kernel<2, F32><<<grid, block, 0, s>>>(x, ldx, w, ldw, y, ldy, N, K); break;
        case 3: gemv_kernel<3, F32><<<grid, block, 0, s>>>(x, ldx, w, ldw, y, ldy, N, K); break;
        case 4: gemv_kernel<4, F32><<<grid, block, 0, s>>>(x, ldx, w, ldw, y, ldy, N, K); break;
        case 5: gemv_kernel<5, F32><<<grid, block, 0, s>>>(x, ldx, w, ldw, y, ldy, N, K); break;
        case 6: gemv_kernel<6, F32><<<grid, block, 0, s>>>(x, ldx, w, ldw, y, ldy, N, K); break;
        case 7: gemv_kernel<7, F32><<<grid, block, 0, s>>>(x, ldx, w, ldw, y, ldy, N, K); break;
        default: gemv_kernel<8, F32><<<grid, block, 0, s>>>(x, ldx, w, ldw, y, ldy, N, K); break;
        }
}

extern "C" int rm_llama_gemv(const uint16_t *x, int ldx, const uint16_t *w, int ldw, void *y, int ldy, int y_f32,
                             int rows, int n, int k, rm_stream_t s) {
        if (!rm_llama_gemv_ok(x, ldx, w, ldw, rows, k) || n < 1)
                return (int) cudaErrorInvalidValue;
        if (y_f32)
                gemv_launch<true>((const bf16 *) x, ldx, (const bf16 *) w, ldw, y, ldy, rows, n, k, (cudaStream_t) s);
        else
                gemv_launch<false>((const bf16 *) x, ldx, (const bf16 *) w, ldw, y, ldy, rows, n, k, (cudaStream_t) s);
        return launched();
}

// ----------------------------------------------------------- rope + cache
// One block per token; threads over (head, i < d/2) pairs.  cos and sin are
// computed in fp32 and rounded to bf16, as transformers' cos.to(x.dtype).
__global__ void rope_cache_kernel(bf16 *qkv, int ld, const int32_t *slot, const int32_t *pos, int n_q, int n_kv, int d,
                                  const float *inv_freq, bf16 *kc, bf16 *vc, int max_seq) {
        const int t = blockIdx.x, half = d / 2, p = pos[t];
        bf16 *row = qkv + (size_t) t * ld;
        for (int idx = threadIdx.x; idx < (n_q + n_kv) * half; idx += blockDim.x) {
                int h = idx / half, i = idx % half;
                float fr = (float) p * inv_freq[i];
                float c = rb(cosf(fr)), sn = rb(sinf(fr));
                bf16 *v = row + h * d;
                float a = f(v[i]), bb = f(v[i + half]);
                v[i] = b(rb(a * c) + rb(-bb * sn));
                v[i + half] = b(rb(bb * c) + rb(a * sn));
        }
        __syncthreads();
        const size_t base = (size_t) slot[t] * n_kv * max_seq;
        for (int idx = threadIdx.x; idx < n_kv * d; idx += blockDim.x) {
                int h = idx / d, i = idx % d;
                size_t at = ((base + (size_t) h * max_seq) + p) * d + i;
                kc[at] = row[(n_q + h) * d + i];
                vc[at] = row[(n_q + n_kv + h) * d + i];
        }
}

extern "C" int rm_llama_rope_cache(uint16_t *qkv, int ld, const struct rm_llama_tokens *t, int n_q, int n_kv, int d,
                                   const float *inv_freq, uint16_t *k_cache, uint16_t *v_cache, int max_seq,
                                   rm_stream_t s) {
        rope_cache_kernel<<<t->n, 256, 0, (cudaStream_t) s>>>((bf16 *) qkv, ld, t->slot, t->pos, n_q, n_kv, d, inv_freq,
                                                              (bf16 *) k_cache, (bf16 *) v_cache, max_seq);
        return launched();
}

// -------------------------------------------------------------- attention
// One block per (token, query head): scores for positions 0..pos in shared
// memory (fp32), softmax, then the weighted sum of V.  A decode step has
// one block per head only, so the block spreads the positions over its
// threads instead of walking them: q k^T one thread per position (a row
// of K in 16-byte loads), the sum of V in groups of d / 2 threads (two
// elements each), each group over every ng-th position, four in flight;
// the groups' partial sums are added in group order (the same bits every
// run).  head_dim is even (rotary halves).
#define ATT_THREADS 512

__global__ void __launch_bounds__(ATT_THREADS) attention_kernel(const bf16 *qkv, int ld, const int32_t *slot,
                                                                const int32_t *pos, int n_q, int n_kv, int group,
                                                                int q_head0, int kv_head0, int d, const bf16 *kc,
                                                                const bf16 *vc, int max_seq, bf16 *out, int out_ld,
                                                                float scale) {
        extern __shared__ float sm[];         // [max_seq] scores, [32] reduction, [d] q, [<= blockDim * 2] V partials
        const int t = blockIdx.x, h = blockIdx.y, L = pos[t] + 1;
        const int hk = (q_head0 + h) / group - kv_head0;
        float *scores = sm, *red = sm + max_seq, *q = red + 32, *part = q + d;
        const bf16 *qr = qkv + (size_t) t * ld + h * d;
        const size_t base = ((size_t) slot[t] * n_kv + hk) * max_seq * d;
        const bf16 *K = kc + base, *V = vc + base;

        for (int i = threadIdx.x; i < d; i += blockDim.x)
                q[i] = f(qr[i]);
        __syncthreads();
        for (int j = threadIdx.x; j < L; j += blockDim.x) {
                const bf16 *k = K + (size_t) j * d;
                float acc = 0.f;
                if ((d & 7) == 0) {
#pragma unroll 4
                        for (int i = 0; i < d; i += 8) {
                                uint4 raw = *(const uint4 *) (k + i);
                                const __nv_bfloat162 *k2 = (const __nv_bfloat162 *) &raw;
#pragma unroll
                                for (int u = 0; u < 4; u++) {
                                        float2 kf = __bfloat1622float2(k2[u]);
                                        acc += q[i + 2 * u] * kf.x;
                                        acc += q[i + 2 * u + 1] * kf.y;
                                }
                        }
                } else
                        for (int i = 0; i < d; i++)
                                acc += q[i] * f(k[i]);
                scores[j] = rb(rb(acc) * scale);      // bf16 matmul output, times the scaling, in bf16
        }
        __syncthreads();
        float mx = -FLT_MAX;
        for (int j = threadIdx.x; j < L; j += blockDim.x)
                mx = fmaxf(mx, scores[j]);
        mx = block_max(mx, red);
        float sum = 0.f;
        for (int j = threadIdx.x; j < L; j += blockDim.x) {
                float e = expf(scores[j] - mx);
                scores[j] = e;
                sum += e;
        }
        sum = block_sum(sum, red);
        // softmax in fp32, then to bf16 before the product with V (transformers' eager attention)
        for (int j = threadIdx.x; j < L; j += blockDim.x)
                scores[j] = rb(scores[j] / sum);
        __syncthreads();
        const int dp = d / 2, width = (int) blockDim.x >= dp ? dp : (int) blockDim.x, ng = blockDim.x / width;
        const int g = threadIdx.x / width, i0 = threadIdx.x % width;
        if (g < ng)
                for (int ip = i0; ip < dp; ip += width) {
                        const __nv_bfloat162 *V2 = (const __nv_bfloat162 *) V + ip;
                        float2 a[4] = { { 0.f, 0.f }, { 0.f, 0.f }, { 0.f, 0.f }, { 0.f, 0.f } };
                        int j = g;
                        for (; j + 3 * ng < L; j += 4 * ng) {
#pragma unroll
                                for (int u = 0; u < 4; u++) {
                                        float2 v = __bfloat1622float2(V2[(size_t) (j + u * ng) * dp]);
                                        float p = scores[j + u * ng];
                                        a[u].x += p * v.x;
                                        a[u].y += p * v.y;
                                }
                        }
                        for (; j < L; j += ng) {
                                float2 v = __bfloat1622float2(V2[(size_t) j * dp]);
                                a[0].x += scores[j] * v.x;
                                a[0].y += scores[j] * v.y;
                        }
                        part[g * d + 2 * ip] = (a[0].x + a[1].x) + (a[2].x + a[3].x);
                        part[g * d + 2 * ip + 1] = (a[0].y + a[1].y) + (a[2].y + a[3].y);
                }
        __syncthreads();
        for (int i = threadIdx.x; i < d; i += blockDim.x) {
                float acc = 0.f;
                for (int k = 0; k < ng; k++)
                        acc += part[k * d + i];
                out[(size_t) t * out_ld + h * d + i] = b(acc);
        }
}

extern "C" int rm_llama_attention(const uint16_t *qkv, int ld, const struct rm_llama_tokens *t, int n_q, int n_kv,
                                  int group, int q_head0, int kv_head0, int d, const uint16_t *k_cache,
                                  const uint16_t *v_cache, int max_seq, uint16_t *out, int out_ld, rm_stream_t s) {
        const int dp = d / 2, width = ATT_THREADS >= dp ? dp : ATT_THREADS;
        size_t shmem = ((size_t) max_seq + 32 + d + (size_t) (ATT_THREADS / width) * d) * sizeof(float);
        static size_t raised;
        if (d % 2 != 0)
                return (int) cudaErrorInvalidValue;
        if (shmem > 48 * 1024 && shmem > raised) {
                cudaError_t e = cudaFuncSetAttribute(attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                     (int) shmem);
                if (e != cudaSuccess)
                        return (int) e;
                raised = shmem;
        }
        dim3 grid(t->n, n_q);
        attention_kernel<<<grid, ATT_THREADS, shmem, (cudaStream_t) s>>>(
                (const bf16 *) qkv, ld, t->slot, t->pos, n_q, n_kv, group, q_head0, kv_head0, d,
                (const bf16 *) k_cache, (const bf16 *) v_cache, max_seq, (bf16 *) out, out_ld, rsqrtf((float) d));
        return launched();
}

// ---------------------------------------------------------------- silu_mul
__global__ void silu_mul_kernel(const bf16 *gu, bf16 *out, int n) {
        const bf16 *g = gu + (size_t) blockIdx.x * 2 * n, *u = g + n;
        bf16 *o = out + (size_t) blockIdx.x * n;
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
                float x = f(g[i]);
                float sx = rb(x / (1.f + expf(-x)));
                o[i] = b(sx * f(u[i]));
        }
}

extern "C" int rm_llama_silu_mul(const uint16_t *gu, uint16_t *out, int rows, int n, rm_stream_t s) {
        silu_mul_kernel<<<rows, 256, 0, (cudaStream_t) s>>>((const bf16 *) gu, (bf16 *) out, n);
        return launched();
}

// ------------------------------------------------------------- gather_rows
__global__ void gather_rows_kernel(const bf16 *x, const int32_t *rows, int hidden, bf16 *out) {
        const bf16 *r = x + (size_t) rows[blockIdx.x] * hidden;
        for (int i = threadIdx.x; i < hidden; i += blockDim.x)
                out[(size_t) blockIdx.x * hidden + i] = r[i];
}

extern "C" int rm_llama_gather_rows(const uint16_t *x, const int32_t *rows, int n, int hidden, uint16_t *out,
                                    rm_stream_t s) {
        gather_rows_kernel<<<n, 256, 0, (cudaStream_t) s>>>((const bf16 *) x, rows, hidden, (bf16 *) out);
        return launched();
}

// ------------------------------------------------------------------ argmax
// Largest value, first index on a tie (as torch.argmax).
__global__ void argmax_kernel(const bf16 *logits, int n, int base, float *ret_value, int32_t *ret_index) {
        __shared__ float sv[32];
        __shared__ int si[32];
        const bf16 *row = logits + (size_t) blockIdx.x * n;
        float best = -INFINITY;
        int bi = 0x7fffffff;
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
                float v = f(row[i]);
                if (v > best || (v == best && i < bi)) {
                        best = v;
                        bi = i;
                }
        }
        for (int o = 16; o > 0; o >>= 1) {
                float ov = __shfl_xor_sync(0xffffffffu, best, o);
                int oi = __shfl_xor_sync(0xffffffffu, bi, o);
                if (ov > best || (ov == best && oi < bi)) {
                        best = ov;
                        bi = oi;
                }
        }
        int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
        if (lane == 0) {
                sv[warp] = best;
                si[warp] = bi;
        }
        __syncthreads();
        if (threadIdx.x == 0) {
                for (int w = 1; w < nw; w++)
                        if (sv[w] > sv[0] || (sv[w] == sv[0] && si[w] < si[0])) {
                                sv[0] = sv[w];
                                si[0] = si[w];
                        }
                ret_value[blockIdx.x] = sv[0];
                ret_index[blockIdx.x] = base + (si[0] == 0x7fffffff ? 0 : si[0]);
        }
}

extern "C" int rm_llama_argmax(const uint16_t *logits, int rows, int n, int base, float *ret_value,
                               int32_t *ret_index, rm_stream_t s) {
        argmax_kernel<<<rows, 1024, 0, (cudaStream_t) s>>>((const bf16 *) logits, n, base, ret_value, ret_index);
        return launched();
}

__global__ void bf16_to_f32_kernel(const bf16 *in, float *out, long n) {
        for (long i = blockIdx.x * (long) blockDim.x + threadIdx.x; i < n; i += (long) gridDim.x * blockDim.x)
                out[i] = f(in[i]);
}

extern "C" int rm_llama_bf16_to_f32(const uint16_t *in, float *out, long n, rm_stream_t s) {
        int blocks = (int) ((n + 255) / 256 < 1024 ? (n + 255) / 256 : 1024);
        bf16_to_f32_kernel<<<blocks > 0 ? blocks : 1, 256, 0, (cudaStream_t) s>>>((const bf16 *) in, out, n);
        return launched();
}
