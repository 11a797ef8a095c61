/* SPDX-License-Identifier: MIT */
#ifndef RM_ENGINE_BACKEND_H
#define RM_ENGINE_BACKEND_H

/*
 * A rank's forward pass over its shard of the model, behind a vtable: the
 * CPU backend (fp32, OpenBLAS: llama-cpu.c) and the GPU backend (bf16,
 * cuBLAS and kernels/llama-kernels.cu: llama-gpu.c).  The main program and
 * the scheduler see only this.
 *
 * forward() runs one step (step.h's ragged batch): for each sequence it
 * writes the new tokens' keys and values into the sequence's KV-cache slot
 * and, where seq.sample is set, the largest logit of this rank's
 * vocabulary slice and its global index into out->samples (one per
 * sampling sequence, in order), and with out->logits the whole slice.
 * Every rank must run the same steps: the all-reduces inside pair up.
 */

#include <stdbool.h>
#include <stdint.h>

#include "collective.h"
#include "llama-config.h"
#include "step.h"

struct st_folder;

struct backend_opts {
        int max_slots;                /* sequences in flight (KV-cache slots) */
        int max_seq_len;              /* positions per slot */
        int max_step_tokens;          /* tokens per step */
        int threads;                  /* CPU: BLAS threads; 0: chosen */
        int device;                   /* GPU: CUDA device */
        bool cuda_graphs;             /* GPU: replay repeated step shapes from CUDA graphs */
        bool profile_kernels;         /* GPU: time every kernel with CUDA events (no graphs); the split at the end */
        int rank;                     /* for messages */
        void (*progress)(uint64_t done, uint64_t total);   /* load progress; may be NULL */
};

struct step_output {
        struct result_sample *samples;
        float *logits;                /* NULL, or room for n_samples * shard.n_vocab */
        int64_t allreduce_ns;         /* time spent in all-reduces */
};

struct backend;

struct backend_ops {
        const char *name;
        int (*forward)(struct backend *b, const struct step_seq *seqs, uint32_t n_seqs, const int32_t *tokens,
                       uint32_t n_tokens, struct step_output *out);
        void (*destroy)(struct backend *b);
};

struct backend {
        const struct backend_ops *ops;
        struct llama_config cfg;
        struct llama_shard shard;
        struct backend_opts opts;
        struct collective *coll;      /* not owned */
        char error[512];
};

static inline struct backend *backend_free(struct backend *b) {
        if (b)
                b->ops->destroy(b);
        return NULL;
}

/* Loads this rank's shard from the checkpoint into host memory (fp32). */
int backend_cpu_new(const struct llama_config *cfg, const struct llama_shard *shard, const struct st_folder *st,
                    struct collective *coll, const struct backend_opts *opts, struct backend **ret, char *errbuf,
                    size_t errsize);

/* Loads it onto the GPU (bf16).  -EOPNOTSUPP when built without CUDA. */
int backend_gpu_new(const struct llama_config *cfg, const struct llama_shard *shard, const struct st_folder *st,
                    struct collective *coll, const struct backend_opts *opts, struct backend **ret, char *errbuf,
                    size_t errsize);

/* The GPU side's other entry points (llama-gpu.c, collective-nccl.c), built with CUDA only. */
int gpu_device_count(void);
/* Selects device (cudaSetDevice) and creates its context. */
int gpu_init_device(int device, char *errbuf, size_t errsize);
/*
 * The GPU all-reduce for the run: algo "nccl", "custom" (engine/rm_allreduce.h
 * where built, else refused) or "auto" (custom where built, with NCCL as
 * the fallback; else NCCL).  shared_gpu: ranks of this host share a GPU,
 * which NCCL refuses: the custom one alone (no NCCL fallback), "nccl"
 * refused.  max_bytes: the largest call the model makes (0: the default).
 */
struct rm_worker;
int gpu_collective_new(struct rm_worker *w, const char *algo, bool shared_gpu, size_t max_bytes, int64_t timeout_ns,
                       struct collective **ret, char *errbuf, size_t errsize);
/* An all-reduce of known values on the device: 0, or -EIO with the values seen. */
int gpu_collective_check(struct collective *c, int rank, int world, char *errbuf, size_t errsize);

#endif
