/* SPDX-License-Identifier: MIT */
/*
 * The CPU backend (backend.h): one rank's shard of a Llama model in fp32,
 * matrix products through OpenBLAS (cblas_sgemm), the all-reduces through
 * the collective.  It follows transformers' LlamaForCausalLM step for step:
 *
 *   x = embed[tokens]
 *   per layer:  h = rmsnorm(x) * w_in
 *               q, k, v = h Wq^T, h Wk^T, h Wv^T        (this rank's heads)
 *               q, k = rope(q, k)                        (rotate_half form)
 *               o = softmax(q k^T / sqrt(d) + causal) v  (GQA: head / group)
 *               x += allreduce(o Wo^T)                   (row-parallel)
 *               h = rmsnorm(x) * w_post
 *               x += allreduce((silu(h Wg^T) * h Wu^T) Wd^T)
 *   logits = rmsnorm(x_last) * w_norm  lm_head^T          (this rank's vocabulary)
 *
 * Weights are stored fused per rank: [q; k; v] rows, [gate; up] rows, so a
 * layer is four sgemm calls.  The KV cache is [layer][slot][kv head][pos][d]:
 * one head's keys for a sequence are contiguous, a plain matrix for sgemm.
 */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "safetensors.h"

struct cpu_layer {
        float *w_in, *w_post;         /* [H] */
        float *w_qkv;                 /* [(nq + 2 nkv) d, H] */
        float *w_o;                   /* [H, nq d] */
        float *w_gu;                  /* [2 ni, H] */
        float *w_down;                /* [H, ni] */
};

struct cpu_backend {
        struct backend base;
        struct cpu_layer *layers;
        float *embed;                 /* [V, H], whole */
        float *w_norm;                /* [H] */
        float *lm;                    /* [nv, H], this rank's rows */
        float *k_cache, *v_cache;
        size_t slot_stride;           /* floats per (layer, slot) in a cache */
        float *inv_freq;              /* [d / 2] */
        /* scratch, sized for max_step_tokens */
        float *x, *h, *qkv, *attn, *gu, *proj, *scores, *last, *logits;
};

static int64_t mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *xcalloc(size_t n, size_t size) {
        if (n == 0)
                n = 1;
        return calloc(n, size);
}

/* Checks a tensor's shape, and copies a window of it. */
static int load(struct cpu_backend *c, const struct st_folder *st, const char *name, int64_t rows, int64_t cols,
                int64_t row0, int64_t nrows, int64_t col0, int64_t ncols, float *dst, int64_t ld, char *errbuf,
                size_t errsize) {
        const struct st_tensor *t;
        int r;

        r = st_find_shaped(st, name, rows, cols, &t, errbuf, errsize);
        if (r < 0)
                return r;
        (void) c;
        return st_copy_f32(t, row0, nrows, col0, ncols, dst, ld);
}

static void destroy(struct backend *b) {
        struct cpu_backend *c = (struct cpu_backend *) b;

        if (c->layers)
                for (int i = 0; i < b->cfg.n_layers; i++) {
                        struct cpu_layer *l = &c->layers[i];
                        free(l->w_in);
                        free(l->w_post);
                        free(l->w_qkv);
                        free(l->w_o);
                        free(l->w_gu);
                        free(l->w_down);
                }
        free(c->layers);
        free(c->embed);
        free(c->w_norm);
        free(c->lm);
        free(c->k_cache);
        free(c->v_cache);
        free(c->inv_freq);
        free(c->x);
        free(c->h);
        free(c->qkv);
        free(c->attn);
        free(c->gu);
        free(c->proj);
        free(c->scores);
        free(c->last);
        free(c->logits);
        free(c);
}

static void rmsnorm(const float *x, const float *w, float *out, int n, float eps) {
        double ss = 0;
        for (int i = 0; i < n; i++)
                ss += (double) x[i] * x[i];
        float r = 1.0f / sqrtf((float) (ss / n) + eps);
        for (int i = 0; i < n; i++)
                out[i] = w[i] * (x[i] * r);
}

/* transformers' rotate_half form: pairs (i, i + d/2). */
static void rope(float *v, int d, int pos, const float *inv_freq) {
        int half = d / 2;
        for (int i = 0; i < half; i++) {
                float f = (float) pos * inv_freq[i], cs = cosf(f), sn = sinf(f);
                float a = v[i], b = v[i + half];
                v[i] = a * cs - b * sn;
                v[i + half] = b * cs + a * sn;
        }
}

/* out = a b^T: a [m, k] (lda), b [n, k] (ldb), out [m, n] (ldc). */
static void matmul_t(const float *a, int lda, const float *b, int ldb, float *out, int ldc, int m, int n, int k) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, out, ldc);
}

static int forward(struct backend *b, const struct step_seq *seqs, uint32_t n_seqs, const int32_t *tokens,
                   uint32_t n_tokens, struct step_output *out) {
        struct cpu_backend *c = (struct cpu_backend *) b;
        const struct llama_config *cfg = &b->cfg;
        const struct llama_shard *sh = &b->shard;
        const int H = cfg->hidden, d = cfg->head_dim, nq = sh->n_q_heads, nkv = sh->n_kv_heads;
        const int qkv_ld = (nq + 2 * nkv) * d, ni = sh->n_inter, T = (int) n_tokens;
        const int group = cfg->n_heads / cfg->n_kv_heads;
        const float scale = 1.0f / sqrtf((float) d);
        int64_t ar_ns = 0, t0;
        uint32_t n_samples = 0;
        int r;

        if (n_tokens == 0 || (int) n_tokens > b->opts.max_step_tokens) {
                snprintf(b->error, sizeof(b->error), "a step of %u tokens (at most %d)", n_tokens, b->opts.max_step_tokens);
                return -EINVAL;
        }
        for (uint32_t s = 0, t = 0; s < n_seqs; s++) {
                if ((int) seqs[s].slot >= b->opts.max_slots || seqs[s].n_tokens == 0 ||
                    (int64_t) seqs[s].pos + seqs[s].n_tokens > b->opts.max_seq_len || t + seqs[s].n_tokens > n_tokens) {
                        snprintf(b->error, sizeof(b->error), "sequence %u of the step is out of bounds", s);
                        return -EINVAL;
                }
                t += seqs[s].n_tokens;
        }
        for (int t = 0; t < T; t++) {
                if (tokens[t] < 0 || tokens[t] >= cfg->vocab) {
                        snprintf(b->error, sizeof(b->error), "token id %d is outside the vocabulary (0..%d)", tokens[t],
                                 cfg->vocab - 1);
                        return -EINVAL;
                }
                memcpy(c->x + (size_t) t * H, c->embed + (size_t) tokens[t] * H, H * sizeof(float));
        }

        for (int li = 0; li < cfg->n_layers; li++) {
                struct cpu_layer *l = &c->layers[li];
                float *kc = c->k_cache + (size_t) li * b->opts.max_slots * c->slot_stride;
                float *vc = c->v_cache + (size_t) li * b->opts.max_slots * c->slot_stride;

                for (int t = 0; t < T; t++)
                        rmsnorm(c->x + (size_t) t * H, l->w_in, c->h + (size_t) t * H, H, cfg->rms_eps);
                matmul_t(c->h, H, l->w_qkv, H, c->qkv, qkv_ld, T, qkv_ld, H);

                /* Rotary positions, then the new keys and values into the cache. */
                for (uint32_t s = 0, t = 0; s < n_seqs; s++) {
                        const struct step_seq *q = &seqs[s];
                        float *ks = kc + (size_t) q->slot * c->slot_stride, *vs = vc + (size_t) q->slot * c->slot_stride;
                        for (uint32_t i = 0; i < q->n_tokens; i++, t++) {
                                float *row = c->qkv + (size_t) t * qkv_ld;
                                int pos = (int) (q->pos + i);
                                for (int hq = 0; hq < nq; hq++)
                                        rope(row + hq * d, d, pos, c->inv_freq);
                                for (int hk = 0; hk < nkv; hk++) {
                                        float *k = row + (nq + hk) * d, *v = row + (nq + nkv + hk) * d;
                                        rope(k, d, pos, c->inv_freq);
                                        memcpy(ks + ((size_t) hk * b->opts.max_seq_len + pos) * d, k, d * sizeof(float));
                                        memcpy(vs + ((size_t) hk * b->opts.max_seq_len + pos) * d, v, d * sizeof(float));
                                }
                        }
                }

                /* Attention, per sequence and head: S = q K^T, causal softmax, O = P V. */
                for (uint32_t s = 0, t = 0; s < n_seqs; s++) {
                        const struct step_seq *q = &seqs[s];
                        const int n = (int) q->n_tokens, L = (int) (q->pos + q->n_tokens);
                        for (int hq = 0; hq < nq; hq++) {
                                int hk = (sh->q_head0 + hq) / group - sh->kv_head0;
                                const float *K = kc + (size_t) q->slot * c->slot_stride + (size_t) hk * b->opts.max_seq_len * d;
                                const float *V = vc + (size_t) q->slot * c->slot_stride + (size_t) hk * b->opts.max_seq_len * d;
                                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, L, d, scale,
                                            c->qkv + (size_t) t * qkv_ld + hq * d, qkv_ld, K, d, 0.0f, c->scores, L);
                                for (int i = 0; i < n; i++) {
                                        float *row = c->scores + (size_t) i * L, mx = -INFINITY, sum = 0;
                                        int last = (int) q->pos + i;          /* attends to 0..last */
                                        for (int j = 0; j <= last; j++)
                                                mx = row[j] > mx ? row[j] : mx;
                                        for (int j = 0; j <= last; j++) {
                                                row[j] = expf(row[j] - mx);
                                                sum += row[j];
                                        }
                                        float inv = 1.0f / sum;
                                        for (int j = 0; j <= last; j++)
                                                row[j] *= inv;
                                        for (int j = last + 1; j < L; j++)
                                                row[j] = 0;
                                }
                                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, L, 1.0f, c->scores, L, V, d,
                                            0.0f, c->attn + (size_t) t * nq * d + hq * d, nq * d);
                        }
                        t += q->n_tokens;
                }

                matmul_t(c->attn, nq * d, l->w_o, nq * d, c->proj, H, T, H, nq * d);
                t0 = mono_ns();
                r = collective_allreduce(b->coll, c->proj, (size_t) T * H, COLL_F32, NULL);
                ar_ns += mono_ns() - t0;
                if (r < 0)
                        goto coll_fail;
                for (size_t i = 0; i < (size_t) T * H; i++)
                        c->x[i] += c->proj[i];

                for (int t = 0; t < T; t++)
                        rmsnorm(c->x + (size_t) t * H, l->w_post, c->h + (size_t) t * H, H, cfg->rms_eps);
                matmul_t(c->h, H, l->w_gu, H, c->gu, 2 * ni, T, 2 * ni, H);
                for (int t = 0; t < T; t++) {
                        float *g = c->gu + (size_t) t * 2 * ni, *u = g + ni;
                        for (int i = 0; i < ni; i++)
                                g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
                }
                matmul_t(c->gu, 2 * ni, l->w_down, ni, c->proj, H, T, H, ni);
                t0 = mono_ns();
                r = collective_allreduce(b->coll, c->proj, (size_t) T * H, COLL_F32, NULL);
                ar_ns += mono_ns() - t0;
                if (r < 0)
                        goto coll_fail;
                for (size_t i = 0; i < (size_t) T * H; i++)
                        c->x[i] += c->proj[i];
        }

        /* The last position of each sampling sequence: norm, logits, argmax of this rank's slice. */
        for (uint32_t s = 0, t = 0; s < n_seqs; s++) {
                t += seqs[s].n_tokens;
                if (seqs[s].sample)
                        rmsnorm(c->x + (size_t) (t - 1) * H, c->w_norm, c->last + (size_t) n_samples++ * H, H,
                                cfg->rms_eps);
        }
        if (n_samples) {
                const int nv = sh->n_vocab;
                float *logits = out->logits ? out->logits : c->logits;
                matmul_t(c->last, H, c->lm, H, logits, nv, (int) n_samples, nv, H);
                for (uint32_t i = 0; i < n_samples; i++) {
                        const float *row = logits + (size_t) i * nv;
                        int best = 0;
                        for (int j = 1; j < nv; j++)
                                if (row[j] > row[best])
                                        best = j;
                        out->samples[i].value = row[best];
                        out->samples[i].index = sh->vocab0 + best;
                }
        }
        out->allreduce_ns = ar_ns;
        return (int) n_samples;

coll_fail:
        snprintf(b->error, sizeof(b->error), "%s", collective_error(b->coll));
        return r;
}

static const struct backend_ops cpu_ops = {
        .name = "cpu",
        .forward = forward,
        .destroy = destroy,
};

int backend_cpu_new(const struct llama_config *cfg, const struct llama_shard *sh, const struct st_folder *st,
                    struct collective *coll, const struct backend_opts *opts, struct backend **ret, char *errbuf,
                    size_t errsize) {
        struct cpu_backend *c;
        const int H = cfg->hidden, d = cfg->head_dim, nq = sh->n_q_heads, nkv = sh->n_kv_heads, ni = sh->n_inter;
        const int64_t Tm = opts->max_step_tokens;
        char name[128];
        int r = -ENOMEM;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->base.ops = &cpu_ops;
        c->base.cfg = *cfg;
        c->base.shard = *sh;
        c->base.opts = *opts;
        c->base.coll = coll;

        if (opts->threads > 0)
                openblas_set_num_threads(opts->threads);

        c->layers = xcalloc((size_t) cfg->n_layers, sizeof(*c->layers));
        c->embed = xcalloc((size_t) cfg->vocab * H, sizeof(float));
        c->w_norm = xcalloc((size_t) H, sizeof(float));
        c->lm = xcalloc((size_t) sh->n_vocab * H, sizeof(float));
        c->inv_freq = xcalloc((size_t) d / 2, sizeof(float));
        c->slot_stride = (size_t) nkv * opts->max_seq_len * d;
        c->k_cache = xcalloc((size_t) cfg->n_layers * opts->max_slots * c->slot_stride, sizeof(float));
        c->v_cache = xcalloc((size_t) cfg->n_layers * opts->max_slots * c->slot_stride, sizeof(float));
        c->x = xcalloc((size_t) Tm * H, sizeof(float));
        c->h = xcalloc((size_t) Tm * H, sizeof(float));
        c->proj = xcalloc((size_t) Tm * H, sizeof(float));
        c->qkv = xcalloc((size_t) Tm * (nq + 2 * nkv) * d, sizeof(float));
        c->attn = xcalloc((size_t) Tm * nq * d, sizeof(float));
        c->gu = xcalloc((size_t) Tm * 2 * ni, sizeof(float));
        c->scores = xcalloc((size_t) Tm * opts->max_seq_len, sizeof(float));
        c->last = xcalloc((size_t) opts->max_slots * H, sizeof(float));
        c->logits = xcalloc((size_t) opts->max_slots * sh->n_vocab, sizeof(float));
        if (!c->layers || !c->embed || !c->w_norm || !c->lm || !c->inv_freq || !c->k_cache || !c->v_cache || !c->x ||
            !c->h || !c->proj || !c->qkv || !c->attn || !c->gu || !c->scores || !c->last || !c->logits) {
                snprintf(errbuf, errsize, "out of memory for the model shard and its KV cache (%d slots x %d positions)",
                         opts->max_slots, opts->max_seq_len);
                goto fail;
        }
        /* As transformers: inv_freq = 1 / theta^(2i/d), in float32. */
        for (int i = 0; i < d / 2; i++)
                c->inv_freq[i] = 1.0f / powf((float) cfg->rope_theta, (float) (2 * i) / (float) d);

        if ((r = load(c, st, "model.embed_tokens.weight", cfg->vocab, H, 0, cfg->vocab, 0, H, c->embed, H, errbuf,
                      errsize)) < 0 ||
            (r = load(c, st, "model.norm.weight", 0, H, 0, 1, 0, H, c->w_norm, H, errbuf, errsize)) < 0)
                goto fail;
        if (cfg->tied || !st_find(st, "lm_head.weight")) {
                if (!cfg->tied) {
                        snprintf(errbuf, errsize,
                                 "the checkpoint has no lm_head.weight and config.json does not tie the embeddings");
                        r = -ENOENT;
                        goto fail;
                }
                memcpy(c->lm, c->embed + (size_t) sh->vocab0 * H, (size_t) sh->n_vocab * H * sizeof(float));
        } else if ((r = load(c, st, "lm_head.weight", cfg->vocab, H, sh->vocab0, sh->n_vocab, 0, H, c->lm, H, errbuf,
                             errsize)) < 0)
                goto fail;

        for (int i = 0; i < cfg->n_layers; i++) {
                struct cpu_layer *l = &c->layers[i];
                const int64_t NQ = (int64_t) cfg->n_heads * d, NKV = (int64_t) cfg->n_kv_heads * d;

                l->w_in = xcalloc((size_t) H, sizeof(float));
                l->w_post = xcalloc((size_t) H, sizeof(float));
                l->w_qkv = xcalloc((size_t) (nq + 2 * nkv) * d * H, sizeof(float));
                l->w_o = xcalloc((size_t) H * nq * d, sizeof(float));
                l->w_gu = xcalloc((size_t) 2 * ni * H, sizeof(float));
                l->w_down = xcalloc((size_t) H * ni, sizeof(float));
                if (!l->w_in || !l->w_post || !l->w_qkv || !l->w_o || !l->w_gu || !l->w_down) {
                        snprintf(errbuf, errsize, "out of memory for layer %d", i);
                        r = -ENOMEM;
                        goto fail;
                }
#define LAYER(suffix) (snprintf(name, sizeof(name), "model.layers.%d.%s", i, suffix), name)
                if ((r = load(c, st, LAYER("input_layernorm.weight"), 0, H, 0, 1, 0, H, l->w_in, H, errbuf, errsize)) < 0 ||
                    (r = load(c, st, LAYER("post_attention_layernorm.weight"), 0, H, 0, 1, 0, H, l->w_post, H, errbuf,
                              errsize)) < 0 ||
                    (r = load(c, st, LAYER("self_attn.q_proj.weight"), NQ, H, (int64_t) sh->q_head0 * d,
                              (int64_t) nq * d, 0, H, l->w_qkv, H, errbuf, errsize)) < 0 ||
                    (r = load(c, st, LAYER("self_attn.k_proj.weight"), NKV, H, (int64_t) sh->kv_head0 * d,
                              (int64_t) nkv * d, 0, H, l->w_qkv + (size_t) nq * d * H, H, errbuf, errsize)) < 0 ||
                    (r = load(c, st, LAYER("self_attn.v_proj.weight"), NKV, H, (int64_t) sh->kv_head0 * d,
                              (int64_t) nkv * d, 0, H, l->w_qkv + (size_t) (nq + nkv) * d * H, H, errbuf, errsize)) < 0 ||
                    (r = load(c, st, LAYER("self_attn.o_proj.weight"), H, NQ, 0, H, (int64_t) sh->q_head0 * d,
                              (int64_t) nq * d, l->w_o, (int64_t) nq * d, errbuf, errsize)) < 0 ||
                    (r = load(c, st, LAYER("mlp.gate_proj.weight"), cfg->intermediate, H, sh->inter0, ni, 0, H, l->w_gu,
                              H, errbuf, errsize)) < 0 ||
                    (r = load(c, st, LAYER("mlp.up_proj.weight"), cfg->intermediate, H, sh->inter0, ni, 0, H,
                              l->w_gu + (size_t) ni * H, H, errbuf, errsize)) < 0 ||
                    (r = load(c, st, LAYER("mlp.down_proj.weight"), H, cfg->intermediate, 0, H, sh->inter0, ni,
                              l->w_down, ni, errbuf, errsize)) < 0)
                        goto fail;
#undef LAYER
                if (opts->progress)
                        opts->progress((uint64_t) i + 1, (uint64_t) cfg->n_layers);
        }
        *ret = &c->base;
        return 0;
fail:
        destroy(&c->base);
        return r;
}
