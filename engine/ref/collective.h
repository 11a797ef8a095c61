/* SPDX-License-Identifier: MIT */
#ifndef RM_ENGINE_COLLECTIVE_H
#define RM_ENGINE_COLLECTIVE_H

/*
 * The engine's all-reduce, behind a small vtable (as NCCL's transports), so
 * the model code never knows which one runs:
 *
 *   shm        CPU: float sums through a shared-memory area of the run
 *              (collective-shm.c): one-shot (every rank sums every rank's
 *              slice) for small messages, two-shot (reduce-scatter, then
 *              all-gather) for large ones
 *   custom     GPU: librmworker-cuda's rm_allreduce (engine/rm_allreduce.h):
 *              one kernel a call over IPC windows, NCCL inside it for what
 *              it does not take (collective-nccl.c)
 *   nccl       GPU: ncclAllReduce on a deadline-guarded communicator
 *              (rm_nccl.h) (collective-nccl.c)
 *
 * Every rank must call allreduce with the same count in the same order; the
 * sum is computed in rank order, so every rank ends with the same bits.
 * Errors are negative errnos, with the reason in the collective's last
 * error (collective_error()).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum coll_dtype {
        COLL_F32 = 1,
        COLL_BF16 = 2,
};

struct collective;

struct collective_ops {
        const char *name;
        /* In place: buf holds count elements (host memory for shm, device memory for GPU ones). */
        int (*allreduce)(struct collective *c, void *buf, size_t count, enum coll_dtype dtype, void *stream);
        /* Whether that call may be captured in a CUDA graph (no host work in it); NULL: never. */
        bool (*capturable)(struct collective *c, const void *buf, size_t count, enum coll_dtype dtype);
        void (*destroy)(struct collective *c);
};

struct collective {
        const struct collective_ops *ops;
        int rank, world;
        char error[256];
        uint64_t calls;               /* statistics: all-reduces done */
        uint64_t bytes;               /* and their payload */
};

static inline int collective_allreduce(struct collective *c, void *buf, size_t count, enum coll_dtype dtype,
                                       void *stream) {
        c->calls++;
        c->bytes += count * (dtype == COLL_F32 ? 4 : 2);
        return c->ops->allreduce(c, buf, count, dtype, stream);
}

static inline bool collective_capturable(struct collective *c, const void *buf, size_t count, enum coll_dtype dtype) {
        return c->ops->capturable && c->ops->capturable(c, buf, count, dtype);
}

static inline struct collective *collective_free(struct collective *c) {
        if (c)
                c->ops->destroy(c);
        return NULL;
}

static inline const char *collective_error(const struct collective *c) {
        return c->error;
}

/* -------------------------------------------------------------- shm (CPU) */

struct rm_worker;

enum shm_allreduce_algo {
        SHM_ALLREDUCE_AUTO = 0,       /* one-shot below the threshold, two-shot above */
        SHM_ALLREDUCE_ONE_SHOT = 1,
        SHM_ALLREDUCE_TWO_SHOT = 2,
};

struct shm_allreduce_opts {
        enum shm_allreduce_algo algo;
        size_t two_shot_min_bytes;    /* AUTO: two-shot from this size on (0: 4 KiB from 4 ranks on, else 256 KiB) */
        size_t chunk_elems;           /* elements per rank's buffer (0: 1 Mi); larger messages go in chunks */
        int64_t timeout_ns;           /* a rank missing from one all-reduce longer than this fails it */
        void (*idle)(void);           /* called about every 100 ms of waiting (a heartbeat); may be NULL */
};

/*
 * Rank 0 creates the area (a memfd) and shares it through librmworker's fd
 * sharing (rm_fd_share, its token in the kv table under "engine/allreduce");
 * the others fetch and map it.  With world == 1 no area is made.
 */
int collective_shm_new(struct rm_worker *w, const struct shm_allreduce_opts *opts, struct collective **ret,
                       char *errbuf, size_t errsize);
const char *shm_allreduce_algo_name(enum shm_allreduce_algo a);

#endif
