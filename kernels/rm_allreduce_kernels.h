/* SPDX-License-Identifier: MIT */
#ifndef RM_ALLREDUCE_KERNELS_H
#define RM_ALLREDUCE_KERNELS_H

/*
 * The custom all-reduce's device code, callable from C (kernels/allreduce.cu;
 * engine/allreduce.c is its user, tests/gpu/bench-allreduce.c drives it
 * directly too).  Contract:
 *
 * Every rank owns one "window" of device memory that every other rank has
 * mapped (CUDA IPC or VMM handles; on one GPU the mappings are local):
 *
 *   [0, RMK_AR_SIGNAL_BYTES)            signals: barrier flags, written by
 *                                       peers, each on its own 128-byte line,
 *                                       and this rank's per-block call counters
 *   [RMK_AR_SIGNAL_BYTES, + 2 * cap)    two data slots of cap bytes (ping-pong
 *                                       by the call counter's parity)
 *
 * A window must be zeroed once before any rank's first call.  Then each call
 * is one kernel launch with a fixed grid (blocks, the same on every rank):
 * block b copies its part of the input into its slot, tells every peer's
 * block b through a release store of the call's generation into a flag in
 * the peer's window, waits (acquire loads of its own flags) until every peer
 * has done the same, and reads the peers' slots.  No host round trip: the
 * generation lives in device memory, so calls captured in a CUDA graph stay
 * in step when replayed.
 *
 *   one-shot  every rank reads every peer's whole input and sums: 1 barrier
 *   two-shot  rank p sums shard p of every input (reduce-scatter) and
 *             publishes it in its slot; a second barrier; every rank reads
 *             the other shards (all-gather)
 *
 * Sums are taken in fp32 in rank order 0..N-1 (and rounded once), so every
 * rank gets bit-identical results, equal to that serial sum.  Because slots
 * alternate, a call never waits for peers to finish reading: the next
 * call's barrier proves they did.  This requires that a rank's calls on one
 * window run in order (one stream, or streams the caller orders), and that
 * every rank makes the same calls (count, dtype, algorithm) in the same
 * order.  A wait longer than timeout_ns (0: for ever) traps the kernel (the
 * context then reports cudaErrorLaunchFailure): a peer died or diverged.
 */

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RMK_AR_MAX_RANKS 8
#define RMK_AR_MAX_BLOCKS 64
#define RMK_AR_THREADS 512
#define RMK_AR_FLAG_LINE 128                     /* bytes per flag: one per line */
#define RMK_AR_PHASES 2                          /* start barrier, two-shot's middle barrier */
#define RMK_AR_COUNTERS_OFFSET (RMK_AR_PHASES * RMK_AR_MAX_BLOCKS * RMK_AR_MAX_RANKS * RMK_AR_FLAG_LINE)
#define RMK_AR_SIGNAL_BYTES (256 * 1024)
#define RMK_AR_ALIGN 16                          /* in, out and cap: multiples of this */

enum rmk_ar_dtype { RMK_AR_F32 = 0, RMK_AR_F16 = 1, RMK_AR_BF16 = 2 };
enum rmk_ar_algo { RMK_AR_ONE_SHOT = 0, RMK_AR_TWO_SHOT = 1 };

struct rmk_ar_args {
        void *window[RMK_AR_MAX_RANKS];         /* every rank's window, mapped here; [rank] is local */
        int rank, world;                        /* world: 2, 4, 6 or 8 */
        int blocks;                             /* 1..RMK_AR_MAX_BLOCKS, equal on every rank */
        enum rmk_ar_dtype dtype;
        enum rmk_ar_algo algo;
        const void *in;                         /* 16-byte aligned */
        void *out;                              /* 16-byte aligned; may equal in */
        size_t count;                           /* elements; count * size <= cap */
        size_t cap;                             /* bytes of each data slot */
        uint64_t timeout_ns;                    /* 0: wait for ever */
};

/* Whether world is one the kernels are built for. */
int rmk_ar_world_supported(int world);
/*
 * Loads the kernels for world now.  With lazy module loading (CUDA's
 * default), the first launch of a kernel loads it, and a load waits for
 * the kernels running in the context: one launched while an all-reduce
 * kernel waits for a peer that this thread has yet to launch (ranks as
 * streams of one process) would never finish.  Call once before the first
 * all-reduce.
 */
int rmk_ar_preload(int world);
/* Launches one all-reduce on stream (graph-capturable).  cudaErrorInvalidValue for bad arguments. */
int rmk_ar_launch(const struct rmk_ar_args *a, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
