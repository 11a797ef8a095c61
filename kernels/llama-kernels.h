/* SPDX-License-Identifier: MIT */
#ifndef RM_LLAMA_KERNELS_H
#define RM_LLAMA_KERNELS_H

/*
 * The GPU layer kernels of ringmaster-engine's bf16 path (everything but
 * the larger matrix products, which are cuBLAS's), with C-callable launchers.
 * Tensors are row-major bf16 (uint16_t here, __nv_bfloat16 in the .cu) in
 * device memory; each launcher enqueues on stream and returns a
 * cudaError_t of the launch (0: cudaSuccess).  The rounding follows
 * transformers' bf16 Llama: values are rounded to bf16 wherever torch
 * rounds them (after each elementwise op), the reductions (norm, softmax,
 * dot products) are done in fp32.
 *
 *   embed        x[t] = table[tokens[t]]
 *   add_rmsnorm  x += add (when add is not NULL), then out = w * norm(x);
 *                add_f32: the same with add in fp32, rounded to bf16 first
 *                (a tensor-parallel sum, rounded once as one GEMM's output)
 *   gemv         y[t, n] = sum_k x[t, k] w[n, k] for a few rows t (decode
 *                steps): one warp per n, w read once in 16-byte loads, fp32
 *                sums, y in bf16 or fp32; gemv_ok says whether it applies
 *   rope_cache   rotary positions on q and k in place (rotate_half form),
 *                then k and v into the cache [slot][kv head][pos][d]
 *   attention    per token and query head: softmax(q K^T / sqrt(d)) V over
 *                the positions 0..pos of the token's slot (causal)
 *   silu_mul     out = silu(gate) * up, gu = [gate | up] per row
 *   gather_rows  out[i] = x[rows[i]]
 *   argmax       per row: the largest value and its first index (+ base)
 *   bf16_to_f32  widening copy (for logits read back)
 */

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct CUstream_st *rm_stream_t;

/* Per token of a step: its slot and position (device int32 arrays). */
struct rm_llama_tokens {
        const int32_t *ids;
        const int32_t *slot;
        const int32_t *pos;
        int n;
};

int rm_llama_embed(uint16_t *x, const uint16_t *table, const int32_t *ids, int n, int hidden, rm_stream_t s);
int rm_llama_add_rmsnorm(uint16_t *x, const uint16_t *add, const uint16_t *w, uint16_t *out, int rows, int hidden,
                         float eps, rm_stream_t s);
int rm_llama_add_rmsnorm_f32(uint16_t *x, const float *add, const uint16_t *w, uint16_t *out, int rows, int hidden,
                             float eps, rm_stream_t s);
#define RM_LLAMA_GEMV_MAX_ROWS 8
int rm_llama_gemv_ok(const void *x, int ldx, const void *w, int ldw, int rows, int k);
int rm_llama_gemv(const uint16_t *x, int ldx, const uint16_t *w, int ldw, void *y, int ldy, int y_f32, int rows, int n,
                  int k, rm_stream_t s);
int rm_llama_rope_cache(uint16_t *qkv, int ld, const struct rm_llama_tokens *t, int n_q, int n_kv, int d,
                        const float *inv_freq, uint16_t *k_cache, uint16_t *v_cache, int max_seq, rm_stream_t s);
/* Local query head h uses local key/value head (q_head0 + h) / group - kv_head0. */
int rm_llama_attention(const uint16_t *qkv, int ld, const struct rm_llama_tokens *t, int n_q, int n_kv, int group,
                       int q_head0, int kv_head0, int d, const uint16_t *k_cache, const uint16_t *v_cache, int max_seq,
                       uint16_t *out, int out_ld, rm_stream_t s);
int rm_llama_silu_mul(const uint16_t *gu, uint16_t *out, int rows, int n, rm_stream_t s);
int rm_llama_gather_rows(const uint16_t *x, const int32_t *rows, int n, int hidden, uint16_t *out, rm_stream_t s);
int rm_llama_argmax(const uint16_t *logits, int rows, int n, int base, float *ret_value, int32_t *ret_index,
                    rm_stream_t s);
int rm_llama_bf16_to_f32(const uint16_t *in, float *out, long n, rm_stream_t s);

#ifdef __cplusplus
}
#endif

#endif
