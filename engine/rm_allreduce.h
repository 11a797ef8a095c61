/* SPDX-License-Identifier: MIT */
#ifndef RM_ALLREDUCE_H
#define RM_ALLREDUCE_H

/*
 * librmworker-cuda: a sum all-reduce across the ranks of a run, faster than
 * NCCL for small messages (the activations of tensor-parallel decoding).
 *
 *   struct rm_allreduce *ar;
 *   struct rm_allreduce_opts o = RM_ALLREDUCE_OPTS_DEFAULT;   // 8 MiB registered
 *   r = rm_allreduce_init(w, "tp", &o, &ar);                  // collective
 *   r = rm_allreduce(ar, x, x, n, RM_DTYPE_BF16, stream);     // in place
 *   ar = rm_allreduce_free(ar);                               // collective
 *
 * Init (every rank of the communicator, with the same name and options)
 * allocates a window of about 2 × max_bytes + 256 KiB on the rank's GPU,
 * exports it through the tensor table (CUDA IPC or VMM handles, as
 * rm_cuda.h picks), maps every peer's window and agrees with the peers on
 * what each call may use.  Each call is then ONE kernel launch on the
 * caller's stream: no host synchronisation, no host round trip, usable
 * inside CUDA graph capture (all state, including the per-call generation,
 * lives in device memory).  Algorithms (rm_allreduce_algo() says which a
 * call takes; every rank takes the same):
 *
 *   one-shot  every rank reads every peer's input and sums (one barrier);
 *             sizes up to the switch point
 *   two-shot  reduce-scatter, then all-gather, in one kernel (two
 *             barriers); above the switch point, up to max_bytes
 *   NCCL      above max_bytes, pointers not 16-byte aligned, a world other
 *             than 2, 4, 6, 8, or peers without P2P access to each other:
 *             ncclAllReduce on a communicator init creates (or the caller's)
 *   copy      a world of one rank: out = in
 *
 * Switch point (bytes per call, documented in docs/bench-allreduce.md):
 * one-shot up to 512 KiB at world 2 and 4, 256 KiB at 6 and 8 (vLLM's
 * choice on NVLink H100s); RINGMASTER_ALLREDUCE_ONE_SHOT_MAX=<bytes>
 * overrides it, RINGMASTER_ALLREDUCE=auto|one-shot|two-shot|nccl forces a
 * path (read at init; every rank must see the same environment).
 *
 * Results: sums are taken in fp32 in rank order and rounded once; every
 * rank gets bit-identical output on the custom paths.  dtypes: RM_DTYPE_F32,
 * RM_DTYPE_F16, RM_DTYPE_BF16.  out may equal in.
 *
 * Rules: every rank makes the same calls (count, dtype) in the same order;
 * a rank's calls run in stream order (one stream, or streams the caller
 * orders); a struct rm_allreduce is used by one thread at a time and does
 * not survive fork().  A peer that dies mid-call makes the others' kernels
 * trap after opts.call_timeout_ns (default 60 s) instead of spinning for
 * ever; the CUDA context is then unusable, as after any kernel fault.
 *
 * Errors (negative errno, rm_last_error() says more):
 *   -EINVAL      bad arguments (dtype, count 0, NULL pointers, bad name)
 *   -EOPNOTSUPP  the call needs NCCL and there is none (built without it,
 *                opts.nccl == RM_ALLREDUCE_NCCL_OFF, or its init failed:
 *                rm_allreduce_describe() says why)
 *   -ETIMEDOUT, -EOWNERDEAD  init: a peer did not come, or died
 *   -EMSGSIZE    init: the ranks disagree on max_bytes or blocks
 *   -EIO         a CUDA or NCCL call failed
 */

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#include "rm_worker.h"

#ifdef __cplusplus
extern "C" {
#endif

struct rm_allreduce;

enum rm_allreduce_nccl {
        RM_ALLREDUCE_NCCL_AUTO = 0,     /* create one; without it, calls that need it fail */
        RM_ALLREDUCE_NCCL_OFF = 1,      /* never */
        RM_ALLREDUCE_NCCL_REQUIRED = 2, /* init fails when NCCL cannot be set up */
};

enum rm_allreduce_algo {
        RM_ALLREDUCE_AUTO = 0,          /* by size and world (the switch point) */
        RM_ALLREDUCE_ONE_SHOT = 1,
        RM_ALLREDUCE_TWO_SHOT = 2,
        RM_ALLREDUCE_NCCL = 3,
        RM_ALLREDUCE_COPY = 4,          /* world of one */
};

struct rm_allreduce_opts {
        size_t max_bytes;               /* the largest custom call; 0: 8 MiB */
        int device;                     /* -1: the current device */
        int nranks, rank;               /* -1: the worker's WORLD_SIZE and RANK */
        enum rm_allreduce_nccl nccl;
        void *nccl_comm;                /* an ncclComm_t to borrow for the fallback (not destroyed); NULL: own */
        int blocks;                     /* CTAs per call, 1..64, equal on every rank; 0: 36 */
        int64_t init_timeout_ns;        /* peers' arrival at init and free; 0: 120 s */
        int64_t call_timeout_ns;        /* a kernel waiting on a peer traps after this; 0: 60 s; RM_INFINITE */
};
#define RM_ALLREDUCE_OPTS_DEFAULT ((struct rm_allreduce_opts) { .device = -1, .nranks = -1, .rank = -1 })

/*
 * Collective: creates communicator name (1..24 of [A-Za-z0-9._-], once
 * per run) over nranks ranks.  The device must not change afterwards.
 */
int rm_allreduce_init(struct rm_worker *w, const char *name, const struct rm_allreduce_opts *opts,
                      struct rm_allreduce **ret);

/*
 * Collective: waits for this rank's GPU work, then for every rank to
 * arrive (so no peer still reads this window), then frees.  Accepts NULL;
 * returns NULL.
 */
struct rm_allreduce *rm_allreduce_free(struct rm_allreduce *ar);

/* out[i] = sum over ranks of in[i], i < count, on stream.  Graph-capturable. */
int rm_allreduce(struct rm_allreduce *ar, const void *in, void *out, size_t count, enum rm_dtype dtype,
                 cudaStream_t stream);

/* The path a call would take (enum rm_allreduce_algo), or a negative errno for bad arguments. */
int rm_allreduce_algo(const struct rm_allreduce *ar, const void *in, const void *out, size_t count,
                      enum rm_dtype dtype);

/*
 * Forces a path for the following calls (RM_ALLREDUCE_AUTO: the switch
 * point again); every rank must force the same.  -EOPNOTSUPP when the
 * path is not available (no peer access, no NCCL).
 */
int rm_allreduce_force(struct rm_allreduce *ar, enum rm_allreduce_algo algo);

/* "one-shot", "two-shot", "nccl", "copy", "auto"; NULL for others. */
const char *rm_allreduce_algo_name(enum rm_allreduce_algo algo);

/* A line for the log: world, handle kind, switch point, max_bytes, NCCL or why not. */
int rm_allreduce_describe(const struct rm_allreduce *ar, char *buf, size_t size);

/* Bytes at or below which the automatic choice is one-shot. */
size_t rm_allreduce_one_shot_max(const struct rm_allreduce *ar);

#ifdef __cplusplus
}
#endif

#endif
