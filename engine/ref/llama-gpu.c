/* SPDX-License-Identifier: MIT */
/*
 * The GPU backend (backend.h): one rank's shard in bf16 on its GPU, the
 * matrix products through cuBLAS (cublasGemmEx: bf16 in and out, fp32
 * accumulation) or, for one row, the kernels' gemv; everything else
 * through kernels/llama-kernels.cu, the all-reduces through the collective
 * (NCCL, or the custom one; at TP > 1 on fp32 partial sums).  The same
 * step as llama-cpu.c, with transformers' bf16 rounding:
 *
 *   x = embed[ids]; h = norm(x)
 *   per layer: qkv = h Wqkv^T; rope, cache; o = attention; p = o Wo^T;
 *              allreduce(p); x += p; h = norm(x); gu = h Wgu^T;
 *              a = silu(g) * u; p = a Wd^T; allreduce(p); x += p;
 *              h = norm(x) (the next layer's, or the final norm)
 *   logits = h[last rows] lm^T (bf16, as transformers); argmax per row.
 *
 * One stream; the host waits once per step, for the samples.  The time in
 * all-reduces is measured with CUDA events around them.  A step of a shape
 * seen before (decode steps: as many tokens as sequences) is replayed from
 * a CUDA graph captured the second time the shape came, where every
 * all-reduce of it can be captured (one rank, or the custom all-reduce:
 * one kernel, no host work).
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "llama-kernels.h"
#include "safetensors.h"

struct gpu_layer {
        uint16_t *w_in, *w_post, *w_qkv, *w_o, *w_gu, *w_down;
};

#define GPU_MAX_GRAPHS 64
#define CUBLAS_WORKSPACE (UINT64_C(32) << 20)

struct gpu_graph {
        int T, S;
        int seen;
        cudaGraphExec_t exec;
};

/*
 * --profile-kernels: an event after each operation of a step; the time
 * between two events is the operation's.  Summed by operation over the
 * decode steps (one token per sequence) and printed at the end.
 */
#define PROF_MAX_OPS 32
struct gpu_profile {
        cudaEvent_t *ev;
        const char **what;            /* the operation that ends at ev[i] */
        int n_ev, used;
        const char *names[PROF_MAX_OPS];
        double ms[PROF_MAX_OPS];
        uint64_t calls[PROF_MAX_OPS];
        uint64_t steps;
        double step_ms;
};

struct gpu_backend {
        struct backend base;
        struct gpu_profile *prof;
        bool use_graphs;
        struct gpu_graph graphs[GPU_MAX_GRAPHS];
        int n_graphs;
        uint64_t steps, graph_steps;  /* forward calls, and those replayed from a graph */
        void *blas_workspace;
        cudaStream_t stream;
        cublasHandle_t blas;
        struct gpu_layer *layers;
        uint16_t *embed, *w_norm, *lm;
        uint16_t *k_cache, *v_cache;  /* [layer][slot][kv head][pos][d] */
        size_t layer_cache;           /* elements per layer */
        float *inv_freq;
        uint16_t *x, *h, *qkv, *attn, *gu, *act, *proj, *last, *logits;
        float *proj_f32;              /* TP > 1: a row-parallel product's partial sums */
        float *logits_f32, *arg_val;
        int32_t *arg_idx;
        int32_t *meta;                /* device: ids[T], slot[T], pos[T], rows[S] */
        int32_t *meta_host;           /* pinned */
        float *arg_val_host;
        int32_t *arg_idx_host;
        cudaEvent_t *ev;              /* 2 per all-reduce of a step */
        int n_ev;
};

int gpu_device_count(void) {
        int n = 0;
        if (cudaGetDeviceCount(&n) != cudaSuccess) {
                cudaGetLastError();
                return 0;
        }
        return n;
}

int gpu_init_device(int device, char *errbuf, size_t errsize) {
        cudaError_t e = cudaSetDevice(device);
        if (e == cudaSuccess)
                e = cudaFree(0);
        if (e != cudaSuccess) {
                snprintf(errbuf, errsize, "CUDA device %d: %s", device, cudaGetErrorString(e));
                return -EIO;
        }
        return 0;
}

#define CU(call, what)                                                                                \
        do {                                                                                          \
                cudaError_t e_ = (call);                                                              \
                if (e_ != cudaSuccess) {                                                              \
                        snprintf(b->error, sizeof(b->error), "%s: %s (%s:%d)", what, cudaGetErrorString(e_), \
                                 __FILE__, __LINE__);                                                 \
                        cudaGetLastError();                                                           \
                        return -EIO;                                                                  \
                }                                                                                     \
        } while (0)

/* Ends the current operation of a profiled step (an event on the stream). */
static void mark(struct gpu_backend *g, const char *what) {
        struct gpu_profile *p = g->prof;
        if (p && p->used < p->n_ev) {
                cudaEventRecord(p->ev[p->used], g->stream);
                p->what[p->used++] = what;
        }
}

static void prof_collect(struct gpu_backend *g, bool decode) {
        struct gpu_profile *p = g->prof;
        float ms;

        if (!p)
                return;
        if (decode && p->used > 1) {
                for (int i = 1; i < p->used; i++) {
                        int k = 0;
                        if (cudaEventElapsedTime(&ms, p->ev[i - 1], p->ev[i]) != cudaSuccess)
                                continue;
                        while (k < PROF_MAX_OPS && p->names[k] && strcmp(p->names[k], p->what[i]) != 0)
                                k++;
                        if (k == PROF_MAX_OPS)
                                continue;
                        p->names[k] = p->what[i];
                        p->ms[k] += ms;
                        p->calls[k]++;
                }
                if (cudaEventElapsedTime(&ms, p->ev[0], p->ev[p->used - 1]) == cudaSuccess)
                        p->step_ms += ms;
                p->steps++;
        }
        cudaGetLastError();
        p->used = 0;
}

static void prof_report(struct gpu_backend *g) {
        struct gpu_profile *p = g->prof;

        if (!p || !p->steps)
                return;
        fprintf(stderr, "ringmaster-engine: rank %d: kernels of %" PRIu64 " decode steps (launched one by one, "
                        "CUDA events): %.1f us a step\n",
                g->base.opts.rank, p->steps, p->step_ms * 1e3 / (double) p->steps);
        fprintf(stderr, "ringmaster-engine: rank %d:   %-14s %10s %8s %8s\n", g->base.opts.rank, "operation",
                "us/step", "share", "calls");
        for (int k = 0; k < PROF_MAX_OPS && p->names[k]; k++)
                fprintf(stderr, "ringmaster-engine: rank %d:   %-14s %10.1f %7.1f%% %8.1f\n", g->base.opts.rank,
                        p->names[k], p->ms[k] * 1e3 / (double) p->steps, 100.0 * p->ms[k] / p->step_ms,
                        (double) p->calls[k] / (double) p->steps);
}

/*
 * Y[T, N] = X[T, K] W[N, K]^T, row-major, bf16 in, fp32 accumulation, Y in
 * bf16 (or fp32: y_f32).  One row (a decode step of one sequence) through
 * the kernels' gemv, which reads W once in 16-byte loads: faster than
 * cublasGemmEx there on the H200, slower at 8 rows (docs/bench-engine.md);
 * more rows through cuBLAS.
 */
static int gemm_to(struct gpu_backend *g, const uint16_t *x, int ldx, const uint16_t *w, int ldw, void *y, int ldy,
                   bool y_f32, int T, int N, int K) {
        const float one = 1.0f, zero = 0.0f;
        if (T == 1 && rm_llama_gemv_ok(x, ldx, w, ldw, T, K)) {
                int e = rm_llama_gemv(x, ldx, w, ldw, y, ldy, y_f32, T, N, K, (rm_stream_t) g->stream);
                if (e != 0) {
                        snprintf(g->base.error, sizeof(g->base.error), "gemv (%d x %d x %d): %s", T, N, K,
                                 cudaGetErrorString((cudaError_t) e));
                        return -EIO;
                }
                return 0;
        }
        cublasStatus_t st = cublasGemmEx(g->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, T, K, &one, w, CUDA_R_16BF, ldw, x,
                                         CUDA_R_16BF, ldx, &zero, y, y_f32 ? CUDA_R_32F : CUDA_R_16BF, ldy,
                                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        if (st != CUBLAS_STATUS_SUCCESS) {
                snprintf(g->base.error, sizeof(g->base.error), "cublasGemmEx (%d x %d x %d): status %d", T, N, K,
                         (int) st);
                return -EIO;
        }
        return 0;
}

static int gemm(struct gpu_backend *g, const uint16_t *x, int ldx, const uint16_t *w, int ldw, uint16_t *y, int ldy,
                int T, int N, int K) {
        return gemm_to(g, x, ldx, w, ldw, y, ldy, false, T, N, K);
}

/*
 * A row-parallel product (o_proj, down_proj): at TP = 1 into proj (bf16);
 * at TP > 1 each rank's partial sum stays fp32 (proj_f32) for the
 * all-reduce, and the sum is rounded to bf16 once, as the one GEMM of
 * TP = 1 rounds it (rounding each rank's part first took other tokens than
 * transformers at bf16 near-ties).
 */
static int row_parallel(struct gpu_backend *g, const uint16_t *x, int ldx, const uint16_t *w, int T, int N, int K) {
        if (g->base.coll && g->base.coll->world > 1)
                return gemm_to(g, x, ldx, w, K, g->proj_f32, N, true, T, N, K);
        return gemm_to(g, x, ldx, w, K, g->proj, N, false, T, N, K);
}

static int allreduce(struct gpu_backend *g, float *buf, size_t n, int *ev) {
        struct backend *b = &g->base;
        int r;

        if (!b->coll || b->coll->world == 1)
                return 0;
        if (*ev + 1 < g->n_ev)
                cudaEventRecord(g->ev[*ev], g->stream);
        r = collective_allreduce(b->coll, buf, n, COLL_F32, g->stream);
        if (*ev + 1 < g->n_ev) {
                cudaEventRecord(g->ev[*ev + 1], g->stream);
                *ev += 2;
        }
        if (r < 0)
                snprintf(b->error, sizeof(b->error), "%s", collective_error(b->coll));
        return r;
}

/*
 * Enqueues one step on the stream, from the metadata copy to the samples'
 * copy back (and the logits', with want_logits).  The same sequence of
 * operations for a given (tokens, samples) shape, so it can be captured in
 * a CUDA graph and replayed.
 */
static int enqueue(struct gpu_backend *g, int T, int S, bool want_logits, float *logits_host, int *ev) {
        struct backend *b = &g->base;
        const struct llama_config *cfg = &b->cfg;
        const struct llama_shard *sh = &b->shard;
        const int H = cfg->hidden, d = cfg->head_dim, nq = sh->n_q_heads, nkv = sh->n_kv_heads, ni = sh->n_inter;
        const int qkv_ld = (nq + 2 * nkv) * d, Tm = b->opts.max_step_tokens;
        const bool tp = b->coll && b->coll->world > 1;
        int r;

        /* One copy for the step's metadata (the four arrays are laid out as on the device). */
        CU(cudaMemcpyAsync(g->meta, g->meta_host, (size_t) (3 * Tm + S) * sizeof(int32_t), cudaMemcpyHostToDevice,
                           g->stream),
           "copying the step");
        mark(g, "start");
        struct rm_llama_tokens tk = { .ids = g->meta, .slot = g->meta + Tm, .pos = g->meta + 2 * Tm, .n = T };
        rm_stream_t s = (rm_stream_t) g->stream;

        CU(rm_llama_embed(g->x, g->embed, tk.ids, T, H, s), "embed");
        mark(g, "embed");
        CU(rm_llama_add_rmsnorm(g->x, NULL, g->layers[0].w_in, g->h, T, H, cfg->rms_eps, s), "rmsnorm");
        mark(g, "add+rmsnorm");
        for (int li = 0; li < cfg->n_layers; li++) {
                struct gpu_layer *l = &g->layers[li];
                uint16_t *kc = g->k_cache + (size_t) li * g->layer_cache, *vc = g->v_cache + (size_t) li * g->layer_cache;
                const uint16_t *next_norm = li + 1 < cfg->n_layers ? g->layers[li + 1].w_in : g->w_norm;

                if ((r = gemm(g, g->h, H, l->w_qkv, H, g->qkv, qkv_ld, T, qkv_ld, H)) < 0)
                        return r;
                mark(g, "gemm qkv");
                CU(rm_llama_rope_cache(g->qkv, qkv_ld, &tk, nq, nkv, d, g->inv_freq, kc, vc, b->opts.max_seq_len, s),
                   "rope");
                mark(g, "rope+cache");
                CU(rm_llama_attention(g->qkv, qkv_ld, &tk, nq, nkv, cfg->n_heads / cfg->n_kv_heads, sh->q_head0,
                                      sh->kv_head0, d, kc, vc, b->opts.max_seq_len, g->attn, nq * d, s),
                   "attention");
                mark(g, "attention");
                if ((r = row_parallel(g, g->attn, nq * d, l->w_o, T, H, nq * d)) < 0)
                        return r;
                mark(g, "gemm o");
                if (tp && (r = allreduce(g, g->proj_f32, (size_t) T * H, ev)) < 0)
                        return r;
                mark(g, "all-reduce");
                if (tp)
                        CU(rm_llama_add_rmsnorm_f32(g->x, g->proj_f32, l->w_post, g->h, T, H, cfg->rms_eps, s), "rmsnorm");
                else
                        CU(rm_llama_add_rmsnorm(g->x, g->proj, l->w_post, g->h, T, H, cfg->rms_eps, s), "rmsnorm");
                mark(g, "add+rmsnorm");
                if ((r = gemm(g, g->h, H, l->w_gu, H, g->gu, 2 * ni, T, 2 * ni, H)) < 0)
                        return r;
                mark(g, "gemm gate-up");
                CU(rm_llama_silu_mul(g->gu, g->act, T, ni, s), "silu_mul");
                mark(g, "silu*mul");
                if ((r = row_parallel(g, g->act, ni, l->w_down, T, H, ni)) < 0)
                        return r;
                mark(g, "gemm down");
                if (tp && (r = allreduce(g, g->proj_f32, (size_t) T * H, ev)) < 0)
                        return r;
                mark(g, "all-reduce");
                if (tp)
                        CU(rm_llama_add_rmsnorm_f32(g->x, g->proj_f32, next_norm, g->h, T, H, cfg->rms_eps, s), "rmsnorm");
                else
                        CU(rm_llama_add_rmsnorm(g->x, g->proj, next_norm, g->h, T, H, cfg->rms_eps, s), "rmsnorm");
                mark(g, "add+rmsnorm");
        }
        if (S > 0) {
                const int nv = sh->n_vocab;
                CU(rm_llama_gather_rows(g->h, g->meta + 3 * Tm, S, H, g->last, s), "gather");
                mark(g, "gather");
                if ((r = gemm(g, g->last, H, g->lm, H, g->logits, nv, S, nv, H)) < 0)
                        return r;
                mark(g, "gemm lm_head");
                CU(rm_llama_argmax(g->logits, S, nv, sh->vocab0, g->arg_val, g->arg_idx, s), "argmax");
                mark(g, "argmax");
                CU(cudaMemcpyAsync(g->arg_val_host, g->arg_val, (size_t) S * sizeof(float), cudaMemcpyDeviceToHost,
                                   g->stream),
                   "copying the samples");
                CU(cudaMemcpyAsync(g->arg_idx_host, g->arg_idx, (size_t) S * sizeof(int32_t), cudaMemcpyDeviceToHost,
                                   g->stream),
                   "copying the samples");
                mark(g, "copy out");
                if (want_logits) {
                        CU(rm_llama_bf16_to_f32(g->logits, g->logits_f32, (long) S * nv, s), "logits");
                        CU(cudaMemcpyAsync(logits_host, g->logits_f32, (size_t) S * nv * sizeof(float),
                                           cudaMemcpyDeviceToHost, g->stream),
                           "copying the logits");
                }
        }
        return 0;
}

/* The graph of a (tokens, samples) shape: made the second time the shape is seen. */
static struct gpu_graph *graph_slot(struct gpu_backend *g, int T, int S) {
        for (int i = 0; i < g->n_graphs; i++)
                if (g->graphs[i].T == T && g->graphs[i].S == S)
                        return &g->graphs[i];
        if (g->n_graphs == GPU_MAX_GRAPHS)
                return NULL;
        g->graphs[g->n_graphs] = (struct gpu_graph) { .T = T, .S = S };
        return &g->graphs[g->n_graphs++];
}

static int run_graph(struct gpu_backend *g, struct gpu_graph *gr, int T, int S) {
        struct backend *b = &g->base;
        cudaGraph_t graph = NULL;
        int ev = 0, r;

        if (!gr->exec) {
                CU(cudaStreamBeginCapture(g->stream, cudaStreamCaptureModeThreadLocal), "capturing a CUDA graph");
                r = enqueue(g, T, S, false, NULL, &ev);
                cudaError_t e = cudaStreamEndCapture(g->stream, &graph);
                if (r < 0 || e != cudaSuccess) {
                        if (graph)
                                cudaGraphDestroy(graph);
                        cudaGetLastError();
                        if (r == 0)
                                snprintf(b->error, sizeof(b->error), "capturing a CUDA graph: %s", cudaGetErrorString(e));
                        return r < 0 ? r : -EIO;
                }
                e = cudaGraphInstantiate(&gr->exec, graph, 0);
                cudaGraphDestroy(graph);
                if (e != cudaSuccess) {
                        gr->exec = NULL;
                        cudaGetLastError();
                        snprintf(b->error, sizeof(b->error), "instantiating a CUDA graph: %s", cudaGetErrorString(e));
                        return -EIO;
                }
        }
        CU(cudaGraphLaunch(gr->exec, g->stream), "launching a CUDA graph");
        return 0;
}

static int forward(struct backend *b, const struct step_seq *seqs, uint32_t n_seqs, const int32_t *tokens,
                   uint32_t n_tokens, struct step_output *out) {
        struct gpu_backend *g = (struct gpu_backend *) b;
        const struct llama_config *cfg = &b->cfg;
        const int T = (int) n_tokens, Tm = b->opts.max_step_tokens;
        int32_t *ids = g->meta_host, *slot = ids + Tm, *pos = slot + Tm, *rows = pos + Tm;
        int S = 0, ev = 0, r;

        if (T == 0 || T > Tm) {
                snprintf(b->error, sizeof(b->error), "a step of %d tokens (at most %d)", T, Tm);
                return -EINVAL;
        }
        for (uint32_t s = 0, t = 0; s < n_seqs; s++) {
                const struct step_seq *q = &seqs[s];
                if ((int) q->slot >= b->opts.max_slots || q->n_tokens == 0 ||
                    (int64_t) q->pos + q->n_tokens > b->opts.max_seq_len || t + q->n_tokens > n_tokens) {
                        snprintf(b->error, sizeof(b->error), "sequence %u of the step is out of bounds", s);
                        return -EINVAL;
                }
                for (uint32_t i = 0; i < q->n_tokens; i++, t++) {
                        if (tokens[t] < 0 || tokens[t] >= cfg->vocab) {
                                snprintf(b->error, sizeof(b->error), "token id %d is outside the vocabulary", tokens[t]);
                                return -EINVAL;
                        }
                        ids[t] = tokens[t];
                        slot[t] = (int32_t) q->slot;
                        pos[t] = (int32_t) (q->pos + i);
                }
                if (q->sample)
                        rows[S++] = (int32_t) t - 1;
        }

        /*
         * A step of a shape seen before is replayed from a CUDA graph: one launch
         * instead of a dozen a layer, which is what a decode step is bound by.  Not
         * with an all-reduce that cannot be captured in it (NCCL's non-blocking
         * communicator is polled from the host), nor when the logits are copied out.
         */
        struct gpu_graph *gr = NULL;
        if (g->use_graphs && !out->logits &&
            (!b->coll || b->coll->world == 1 ||
             collective_capturable(b->coll, g->proj_f32, (size_t) T * (size_t) cfg->hidden, COLL_F32))) {
                gr = graph_slot(g, T, S);
                if (gr && !gr->exec && gr->seen++ == 0)
                        gr = NULL;             /* the first time: run it as it is */
        }
        if (gr) {
                r = run_graph(g, gr, T, S);
                if (r < 0) {
                        /* Never again: run every step as it is. */
                        fprintf(stderr, "ringmaster-engine: %s; CUDA graphs are off from now on\n", b->error);
                        g->use_graphs = false;
                        gr = NULL;
                }
        }
        if (!gr) {
                r = enqueue(g, T, S, out->logits != NULL, out->logits, &ev);
                if (r < 0)
                        return r;
        }
        CU(cudaStreamSynchronize(g->stream), "the step");
        g->steps++;
        g->graph_steps += gr != NULL;
        prof_collect(g, S == T && (uint32_t) S == n_seqs);
        for (int i = 0; i < S; i++) {
                out->samples[i].value = g->arg_val_host[i];
                out->samples[i].index = g->arg_idx_host[i];
        }
        out->allreduce_ns = 0;
        for (int i = 0; i + 1 < ev; i += 2) {
                float ms = 0;
                if (cudaEventElapsedTime(&ms, g->ev[i], g->ev[i + 1]) == cudaSuccess)
                        out->allreduce_ns += (int64_t) (ms * 1e6);
        }
        return S;
}

static void destroy(struct backend *b) {
        struct gpu_backend *g = (struct gpu_backend *) b;

        prof_report(g);
        if (g->base.opts.rank == 0 && g->steps > 1) {
                int n = 0;
                for (int i = 0; i < g->n_graphs; i++)
                        n += g->graphs[i].exec != NULL;
                fprintf(stderr, "ringmaster-engine: CUDA graph steps: %" PRIu64 " of %" PRIu64 " (%d graph%s)%s\n",
                        g->graph_steps, g->steps, n, n == 1 ? "" : "s", g->use_graphs ? "" : "; graphs off");
        }
        if (g->prof) {
                for (int i = 0; i < g->prof->n_ev; i++)
                        cudaEventDestroy(g->prof->ev[i]);
                free(g->prof->ev);
                free(g->prof->what);
                free(g->prof);
        }

        if (g->layers)
                for (int i = 0; i < b->cfg.n_layers; i++) {
                        struct gpu_layer *l = &g->layers[i];
                        cudaFree(l->w_in);
                        cudaFree(l->w_post);
                        cudaFree(l->w_qkv);
                        cudaFree(l->w_o);
                        cudaFree(l->w_gu);
                        cudaFree(l->w_down);
                }
        free(g->layers);
        void *dev[] = { g->embed, g->w_norm, g->lm, g->k_cache, g->v_cache, g->inv_freq, g->x, g->h, g->qkv,
                        g->attn, g->gu, g->act, g->proj, g->proj_f32, g->last, g->logits, g->logits_f32, g->arg_val, g->arg_idx,
                        g->meta };
        for (size_t i = 0; i < sizeof(dev) / sizeof(dev[0]); i++)
                cudaFree(dev[i]);
        cudaFreeHost(g->meta_host);
        cudaFreeHost(g->arg_val_host);
        cudaFreeHost(g->arg_idx_host);
        for (int i = 0; i < g->n_ev; i++)
                cudaEventDestroy(g->ev[i]);
        for (int i = 0; i < g->n_graphs; i++)
                if (g->graphs[i].exec)
                        cudaGraphExecDestroy(g->graphs[i].exec);
        cudaFree(g->blas_workspace);
        free(g->ev);
        if (g->blas)
                cublasDestroy(g->blas);
        if (g->stream)
                cudaStreamDestroy(g->stream);
        free(g);
}

static const struct backend_ops gpu_ops = {
        .name = "gpu",
        .forward = forward,
        .destroy = destroy,
};

/* Copies a window of a checkpoint tensor to the device as bf16 (through a host staging buffer). */
static int upload(struct gpu_backend *g, const struct st_folder *st, const char *name, int64_t rows, int64_t cols,
                  int64_t row0, int64_t nrows, int64_t col0, int64_t ncols, uint16_t *dst, int64_t ld,
                  uint16_t **staging, size_t *staging_size, char *errbuf, size_t errsize) {
        const struct st_tensor *t;
        size_t need = (size_t) nrows * (size_t) ld * 2;
        int r;

        r = st_find_shaped(st, name, rows, cols, &t, errbuf, errsize);
        if (r < 0)
                return r;
        if (need > *staging_size) {
                cudaFreeHost(*staging);
                *staging = NULL;
                if (cudaMallocHost((void **) staging, need) != cudaSuccess) {
                        snprintf(errbuf, errsize, "out of pinned host memory (%zu bytes) for loading '%s'", need, name);
                        return -ENOMEM;
                }
                *staging_size = need;
        }
        r = st_copy_bf16(t, row0, nrows, col0, ncols, *staging, ld);
        if (r < 0)
                return r;
        cudaError_t e = cudaMemcpyAsync(dst, *staging, need, cudaMemcpyHostToDevice, g->stream);
        if (e == cudaSuccess)
                e = cudaStreamSynchronize(g->stream);
        if (e != cudaSuccess) {
                snprintf(errbuf, errsize, "copying '%s' to the GPU: %s", name, cudaGetErrorString(e));
                return -EIO;
        }
        return 0;
}

static int dmalloc(void *ret, size_t bytes, const char *what, char *errbuf, size_t errsize) {
        cudaError_t e = cudaMalloc((void **) ret, bytes ? bytes : 16);
        if (e != cudaSuccess) {
                snprintf(errbuf, errsize, "cudaMalloc of %zu bytes for %s: %s", bytes, what, cudaGetErrorString(e));
                cudaGetLastError();
                return -ENOMEM;
        }
        return 0;
}

int backend_gpu_new(const struct llama_config *cfg, const struct llama_shard *sh, const struct st_folder *st,
                    struct collective *coll, const struct backend_opts *opts, struct backend **ret, char *errbuf,
                    size_t errsize) {
        struct gpu_backend *g;
        const int H = cfg->hidden, d = cfg->head_dim, nq = sh->n_q_heads, nkv = sh->n_kv_heads, ni = sh->n_inter;
        const size_t Tm = (size_t) opts->max_step_tokens, S = (size_t) opts->max_slots, nv = (size_t) sh->n_vocab;
        uint16_t *staging = NULL;
        size_t staging_size = 0;
        char name[128];
        int r;

        g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->base.ops = &gpu_ops;
        g->base.cfg = *cfg;
        g->base.shard = *sh;
        g->base.opts = *opts;
        g->base.coll = coll;
        g->layers = calloc((size_t) cfg->n_layers, sizeof(*g->layers));
        if (!g->layers) {
                free(g);
                return -ENOMEM;
        }
        g->use_graphs = opts->cuda_graphs && !opts->profile_kernels;
        if (opts->profile_kernels) {
                int n = 11 * cfg->n_layers + 16;
                g->prof = calloc(1, sizeof(*g->prof));
                if (!g->prof || !(g->prof->ev = calloc((size_t) n, sizeof(cudaEvent_t))) ||
                    !(g->prof->what = calloc((size_t) n, sizeof(char *)))) {
                        r = -ENOMEM;
                        goto fail;
                }
                for (; g->prof->n_ev < n; g->prof->n_ev++)
                        if (cudaEventCreate(&g->prof->ev[g->prof->n_ev]) != cudaSuccess) {
                                snprintf(errbuf, errsize, "cudaEventCreate failed");
                                r = -EIO;
                                goto fail;
                        }
        }
        /* cuBLAS gets a workspace of its own, so that a captured GEMM never allocates. */
        if (cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking) != cudaSuccess ||
            cudaMalloc(&g->blas_workspace, CUBLAS_WORKSPACE) != cudaSuccess ||
            cublasCreate(&g->blas) != CUBLAS_STATUS_SUCCESS || cublasSetStream(g->blas, g->stream) != CUBLAS_STATUS_SUCCESS ||
            cublasSetWorkspace(g->blas, g->blas_workspace, CUBLAS_WORKSPACE) != CUBLAS_STATUS_SUCCESS) {
                snprintf(errbuf, errsize, "creating the CUDA stream and the cuBLAS handle failed");
                r = -EIO;
                goto fail;
        }
        g->layer_cache = S * (size_t) nkv * (size_t) opts->max_seq_len * (size_t) d;
        if ((r = dmalloc(&g->embed, (size_t) cfg->vocab * H * 2, "the embeddings", errbuf, errsize)) < 0 ||
            (r = dmalloc(&g->w_norm, (size_t) H * 2, "the final norm", errbuf, errsize)) < 0 ||
            (r = dmalloc(&g->lm, nv * H * 2, "lm_head", errbuf, errsize)) < 0 ||
            (r = dmalloc(&g->k_cache, (size_t) cfg->n_layers * g->layer_cache * 2, "the key cache (lower --max-batch or --max-seq-len)", errbuf, errsize)) < 0 ||
            (r = dmalloc(&g->v_cache, (size_t) cfg->n_layers * g->layer_cache * 2, "the value cache (lower --max-batch or --max-seq-len)", errbuf, errsize)) < 0 ||
            (r = dmalloc(&g->inv_freq, (size_t) d / 2 * sizeof(float), "rope", errbuf, errsize)) < 0 ||
            (r = dmalloc(&g->x, Tm * H * 2, "activations", errbuf, errsize)) < 0 ||
            (r = dmalloc(&g->h, Tm * H * 2, "activations", errbuf, errsize)) < 0 ||
            (r = dmalloc(&g->proj, Tm * H * 2, "activations", errbuf, errsize)) < 0 ||
            (r = dmalloc(&g->proj_f32, Tm * H * 4, "activations", errbuf, errsize)) < 0 ||
            (r = dmalloc(&g->qkv, Tm * (size_t) (nq + 2 * nkv) * d * 2, "activations", errbuf, errsize)) < 0 ||
            (r = dmalloc(&g->attn, Tm * (size_t) nq * d * 2, "activations", errbuf, errsize)) < 0 ||
            (r = dmalloc(&g->gu, Tm * 2 * (size_t) ni * 2, "activations", errbuf, errsize)) < 0 ||
            (r = dmalloc(&g->act, Tm * (size_t) ni * 2, "activations", errbuf, errsize)) < 0 ||
            (r = dmalloc(&g->last, S * H * 2, "activations", errbuf, errsize)) < 0 ||
            (r = dmalloc(&g->logits, S * nv * 2, "logits", errbuf, errsize)) < 0 ||
            (r = dmalloc(&g->logits_f32, S * nv * 4, "logits", errbuf, errsize)) < 0 ||
            (r = dmalloc(&g->arg_val, S * 4, "samples", errbuf, errsize)) < 0 ||
            (r = dmalloc(&g->arg_idx, S * 4, "samples", errbuf, errsize)) < 0 ||
            (r = dmalloc(&g->meta, (3 * Tm + S) * 4, "step metadata", errbuf, errsize)) < 0)
                goto fail;
        if (cudaMallocHost((void **) &g->meta_host, (3 * Tm + S) * 4) != cudaSuccess ||
            cudaMallocHost((void **) &g->arg_val_host, S * 4) != cudaSuccess ||
            cudaMallocHost((void **) &g->arg_idx_host, S * 4) != cudaSuccess) {
                snprintf(errbuf, errsize, "out of pinned host memory");
                r = -ENOMEM;
                goto fail;
        }
        cudaMemset(g->k_cache, 0, (size_t) cfg->n_layers * g->layer_cache * 2);
        cudaMemset(g->v_cache, 0, (size_t) cfg->n_layers * g->layer_cache * 2);
        g->n_ev = 4 * cfg->n_layers;
        g->ev = calloc((size_t) g->n_ev, sizeof(cudaEvent_t));
        if (!g->ev) {
                r = -ENOMEM;
                goto fail;
        }
        for (int i = 0; i < g->n_ev; i++)
                if (cudaEventCreate(&g->ev[i]) != cudaSuccess) {
                        g->n_ev = i;
                        snprintf(errbuf, errsize, "cudaEventCreate failed");
                        r = -EIO;
                        goto fail;
                }
        {
                float *inv = malloc((size_t) d / 2 * sizeof(float));
                if (!inv) {
                        r = -ENOMEM;
                        goto fail;
                }
                for (int i = 0; i < d / 2; i++)
                        inv[i] = 1.0f / powf((float) cfg->rope_theta, (float) (2 * i) / (float) d);
                cudaMemcpy(g->inv_freq, inv, (size_t) d / 2 * sizeof(float), cudaMemcpyHostToDevice);
                free(inv);
        }

#define UP(nm, rows, cols, row0, nrows, col0, ncols, dst, ld) \
        upload(g, st, nm, rows, cols, row0, nrows, col0, ncols, dst, ld, &staging, &staging_size, errbuf, errsize)
        if ((r = UP("model.embed_tokens.weight", cfg->vocab, H, 0, cfg->vocab, 0, H, g->embed, H)) < 0 ||
            (r = UP("model.norm.weight", 0, H, 0, 1, 0, H, g->w_norm, H)) < 0)
                goto fail;
        if (cfg->tied || !st_find(st, "lm_head.weight")) {
                if (!cfg->tied) {
                        snprintf(errbuf, errsize,
                                 "the checkpoint has no lm_head.weight and config.json does not tie the embeddings");
                        r = -ENOENT;
                        goto fail;
                }
                r = UP("model.embed_tokens.weight", cfg->vocab, H, sh->vocab0, sh->n_vocab, 0, H, g->lm, H);
        } else
                r = UP("lm_head.weight", cfg->vocab, H, sh->vocab0, sh->n_vocab, 0, H, g->lm, H);
        if (r < 0)
                goto fail;
        for (int i = 0; i < cfg->n_layers; i++) {
                struct gpu_layer *l = &g->layers[i];
                const int64_t NQ = (int64_t) cfg->n_heads * d, NKV = (int64_t) cfg->n_kv_heads * d;
                if ((r = dmalloc(&l->w_in, (size_t) H * 2, "weights", errbuf, errsize)) < 0 ||
                    (r = dmalloc(&l->w_post, (size_t) H * 2, "weights", errbuf, errsize)) < 0 ||
                    (r = dmalloc(&l->w_qkv, (size_t) (nq + 2 * nkv) * d * H * 2, "weights", errbuf, errsize)) < 0 ||
                    (r = dmalloc(&l->w_o, (size_t) H * nq * d * 2, "weights", errbuf, errsize)) < 0 ||
                    (r = dmalloc(&l->w_gu, (size_t) 2 * ni * H * 2, "weights", errbuf, errsize)) < 0 ||
                    (r = dmalloc(&l->w_down, (size_t) H * ni * 2, "weights", errbuf, errsize)) < 0)
                        goto fail;
#define LAYER(suffix) (snprintf(name, sizeof(name), "model.layers.%d.%s", i, suffix), name)
                if ((r = UP(LAYER("input_layernorm.weight"), 0, H, 0, 1, 0, H, l->w_in, H)) < 0 ||
                    (r = UP(LAYER("post_attention_layernorm.weight"), 0, H, 0, 1, 0, H, l->w_post, H)) < 0 ||
                    (r = UP(LAYER("self_attn.q_proj.weight"), NQ, H, (int64_t) sh->q_head0 * d, (int64_t) nq * d, 0, H,
                            l->w_qkv, H)) < 0 ||
                    (r = UP(LAYER("self_attn.k_proj.weight"), NKV, H, (int64_t) sh->kv_head0 * d, (int64_t) nkv * d, 0,
                            H, l->w_qkv + (size_t) nq * d * H, H)) < 0 ||
                    (r = UP(LAYER("self_attn.v_proj.weight"), NKV, H, (int64_t) sh->kv_head0 * d, (int64_t) nkv * d, 0,
                            H, l->w_qkv + (size_t) (nq + nkv) * d * H, H)) < 0 ||
                    (r = UP(LAYER("self_attn.o_proj.weight"), H, NQ, 0, H, (int64_t) sh->q_head0 * d, (int64_t) nq * d,
                            l->w_o, (int64_t) nq * d)) < 0 ||
                    (r = UP(LAYER("mlp.gate_proj.weight"), cfg->intermediate, H, sh->inter0, ni, 0, H, l->w_gu, H)) < 0 ||
                    (r = UP(LAYER("mlp.up_proj.weight"), cfg->intermediate, H, sh->inter0, ni, 0, H,
                            l->w_gu + (size_t) ni * H, H)) < 0 ||
                    (r = UP(LAYER("mlp.down_proj.weight"), H, cfg->intermediate, 0, H, sh->inter0, ni, l->w_down, ni)) < 0)
                        goto fail;
#undef LAYER
                if (opts->progress)
                        opts->progress((uint64_t) i + 1, (uint64_t) cfg->n_layers);
        }
#undef UP
        /*
         * cuBLAS loads its kernels at its first GEMM (about 0.1 s on the H200): do
         * that here, not in the first prefill step (decode steps of one sequence
         * never call it).  Rows 2: past the gemv; bf16 and fp32 outputs.
         */
        if (Tm >= 2 && cfg->n_layers > 0) {
                const int K = nq * d;             /* o_proj: [H][nq d] */
                cudaMemsetAsync(g->attn, 0, 2 * (size_t) K * 2, g->stream);
                if ((r = gemm_to(g, g->attn, K, g->layers[0].w_o, K, g->proj, H, false, 2, H, K)) < 0 ||
                    (r = gemm_to(g, g->attn, K, g->layers[0].w_o, K, g->proj_f32, H, true, 2, H, K)) < 0 ||
                    cudaStreamSynchronize(g->stream) != cudaSuccess) {
                        snprintf(errbuf, errsize, "the cuBLAS warm-up: %s", r < 0 ? g->base.error : "failed");
                        r = r < 0 ? r : -EIO;
                        goto fail;
                }
        }
        cudaFreeHost(staging);
        *ret = &g->base;
        return 0;
fail:
        cudaFreeHost(staging);
        destroy(&g->base);
        return r;
}

int gpu_collective_check(struct collective *c, int rank, int world, char *errbuf, size_t errsize) {
        uint16_t host[64], *dev = NULL;
        cudaStream_t stream = NULL;
        float want = (float) (world * (world + 1) / 2);
        int r = -EIO;

        /* bf16 holds small integers exactly: rank + 1 summed over the ranks. */
        for (int i = 0; i < 64; i++) {
                union { float f; uint32_t u; } v = { .f = (float) (rank + 1) };
                host[i] = (uint16_t) (v.u >> 16);
        }
        if (cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess ||
            cudaMalloc((void **) &dev, sizeof(host)) != cudaSuccess ||
            cudaMemcpy(dev, host, sizeof(host), cudaMemcpyHostToDevice) != cudaSuccess) {
                snprintf(errbuf, errsize, "the warm-up all-reduce: %s", cudaGetErrorString(cudaGetLastError()));
                goto out;
        }
        r = collective_allreduce(c, dev, 64, COLL_BF16, stream);
        if (r < 0) {
                snprintf(errbuf, errsize, "the warm-up all-reduce: %s", collective_error(c));
                goto out;
        }
        if (cudaStreamSynchronize(stream) != cudaSuccess ||
            cudaMemcpy(host, dev, sizeof(host), cudaMemcpyDeviceToHost) != cudaSuccess) {
                snprintf(errbuf, errsize, "the warm-up all-reduce: %s", cudaGetErrorString(cudaGetLastError()));
                r = -EIO;
                goto out;
        }
        for (int i = 0; i < 64; i++)
                if (st_bf16_to_f32(host[i]) != want) {
                        snprintf(errbuf, errsize, "the warm-up all-reduce gave %g, want %g", st_bf16_to_f32(host[i]),
                                 want);
                        r = -EIO;
                        goto out;
                }
        r = 0;
out:
        cudaFree(dev);
        if (stream)
                cudaStreamDestroy(stream);
        return r;
}
