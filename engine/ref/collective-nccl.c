/* SPDX-License-Identifier: MIT */
/*
 * The GPU all-reduces (collective.h), bf16 sums in place on the engine's
 * stream:
 *
 *   custom  librmworker-cuda's rm_allreduce (engine/rm_allreduce.h, issue
 *           14): one kernel per call over IPC windows, one-shot or
 *           two-shot by size, and NCCL inside it for what it does not
 *           take (large messages, worlds other than 2, 4, 6, 8, GPUs
 *           without peer access); --allreduce custom and auto (the default)
 *   nccl    ncclAllReduce on a communicator made by rm_nccl_init() (the
 *           deadline-guarded bootstrap through the run segment);
 *           --allreduce nccl
 *
 * The model code calls collective_allreduce() on whichever this file
 * returns.  auto falls back to nccl when the custom one cannot be set up
 * (its init failed: the reason is printed).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "collective.h"
#include "rm_allreduce.h"
#include "rm_worker.h"

struct custom_collective {
        struct collective base;
        struct rm_allreduce *ar;
};

static int custom_allreduce(struct collective *c, void *buf, size_t count, enum coll_dtype dtype, void *stream) {
        struct custom_collective *cc = (struct custom_collective *) c;
        int r = rm_allreduce(cc->ar, buf, buf, count, dtype == COLL_BF16 ? RM_DTYPE_BF16 : RM_DTYPE_F32,
                             (cudaStream_t) stream);
        if (r < 0)
                snprintf(c->error, sizeof(c->error), "rm_allreduce: %s", rm_last_error());
        return r;
}

static bool custom_capturable(struct collective *c, const void *buf, size_t count, enum coll_dtype dtype) {
        struct custom_collective *cc = (struct custom_collective *) c;
        int a = rm_allreduce_algo(cc->ar, buf, buf, count, dtype == COLL_BF16 ? RM_DTYPE_BF16 : RM_DTYPE_F32);
        /* NCCL's non-blocking communicator is polled from the host: not in a graph. */
        return a >= 0 && a != RM_ALLREDUCE_NCCL;
}

static void custom_destroy(struct collective *c) {
        struct custom_collective *cc = (struct custom_collective *) c;
        rm_allreduce_free(cc->ar);
        free(cc);
}

static const struct collective_ops custom_ops = {
        .name = "custom",
        .allreduce = custom_allreduce,
        .capturable = custom_capturable,
        .destroy = custom_destroy,
};

static int custom_new(struct rm_worker *w, bool shared_gpu, size_t max_bytes, int64_t timeout_ns,
                      struct collective **ret, char *errbuf, size_t errsize) {
        struct custom_collective *cc = calloc(1, sizeof(*cc));
        struct rm_allreduce_opts o = RM_ALLREDUCE_OPTS_DEFAULT;
        char line[256];
        int r;

        if (!cc)
                return -ENOMEM;
        cc->base.ops = &custom_ops;
        cc->base.rank = (int) rm_worker_rank(w);
        cc->base.world = (int) rm_worker_world_size(w);
        o.init_timeout_ns = timeout_ns;
        o.max_bytes = max_bytes;
        if (shared_gpu)
                o.nccl = RM_ALLREDUCE_NCCL_OFF;
        r = rm_allreduce_init(w, "engine", &o, &cc->ar);
        if (r < 0) {
                snprintf(errbuf, errsize, "the custom all-reduce: %s", rm_last_error());
                free(cc);
                return r;
        }
        if (shared_gpu && rm_allreduce_algo(cc->ar, (void *) (uintptr_t) 256, (void *) (uintptr_t) 256, 8,
                                            RM_DTYPE_BF16) == RM_ALLREDUCE_NCCL) {
                rm_allreduce_describe(cc->ar, line, sizeof(line));
                snprintf(errbuf, errsize, "ranks share a GPU, which NCCL refuses, and the custom all-reduce cannot "
                                          "take this run (%s): give each rank a GPU of its own, or run 2, 4, 6 or 8 "
                                          "ranks",
                         line);
                rm_allreduce_free(cc->ar);
                free(cc);
                return -EOPNOTSUPP;
        }
        if (cc->base.rank == 0 && rm_allreduce_describe(cc->ar, line, sizeof(line)) >= 0)
                fprintf(stderr, "ringmaster-engine: all-reduce: %s\n", line);
        *ret = &cc->base;
        return 0;
}

#ifdef HAVE_NCCL
#include "rm_nccl.h"

struct nccl_collective {
        struct collective base;
        ncclComm_t comm;
        int64_t timeout_ns;
};

static int nccl_allreduce(struct collective *c, void *buf, size_t count, enum coll_dtype dtype, void *stream) {
        struct nccl_collective *n = (struct nccl_collective *) c;
        ncclResult_t res = ncclAllReduce(buf, buf, count, dtype == COLL_BF16 ? ncclBfloat16 : ncclFloat32, ncclSum,
                                         n->comm, (cudaStream_t) stream);
        if (res == ncclInProgress) {
                int r = rm_nccl_wait(n->comm, n->timeout_ns);
                if (r < 0) {
                        snprintf(c->error, sizeof(c->error), "ncclAllReduce: %s", rm_last_error());
                        return r;
                }
                return 0;
        }
        if (res != ncclSuccess) {
                snprintf(c->error, sizeof(c->error), "ncclAllReduce: %s", ncclGetErrorString(res));
                return rm_nccl_errno(res);
        }
        return 0;
}

static void nccl_destroy(struct collective *c) {
        struct nccl_collective *n = (struct nccl_collective *) c;
        rm_nccl_destroy(n->comm, n->timeout_ns);
        free(n);
}

static const struct collective_ops nccl_ops = {
        .name = "nccl",
        .allreduce = nccl_allreduce,
        .destroy = nccl_destroy,
};
#endif

static int nccl_new(struct rm_worker *w, int64_t timeout_ns, struct collective **ret, char *errbuf, size_t errsize) {
#ifdef HAVE_NCCL
        struct nccl_collective *n = calloc(1, sizeof(*n));
        int r;

        if (!n)
                return -ENOMEM;
        n->base.ops = &nccl_ops;
        n->base.rank = (int) rm_worker_rank(w);
        n->base.world = (int) rm_worker_world_size(w);
        n->timeout_ns = timeout_ns;
        r = rm_nccl_init(w, "engine", -1, -1, timeout_ns, &n->comm);
        if (r < 0) {
                snprintf(errbuf, errsize, "NCCL: %s", rm_last_error());
                free(n);
                return r;
        }
        *ret = &n->base;
        return 0;
#else
        snprintf(errbuf, errsize, "this build has no NCCL (configure found none: --with-nccl=DIR)");
        return -EOPNOTSUPP;
#endif
}

int gpu_collective_new(struct rm_worker *w, const char *algo, bool shared_gpu, size_t max_bytes, int64_t timeout_ns,
                       struct collective **ret, char *errbuf, size_t errsize) {
        int r;

        if (strcmp(algo, "nccl") == 0) {
                if (shared_gpu) {
                        snprintf(errbuf, errsize, "--allreduce nccl: ranks of this host share a GPU, and NCCL refuses "
                                                  "two ranks on one GPU (--allreduce auto or custom takes them)");
                        return -EOPNOTSUPP;
                }
                return nccl_new(w, timeout_ns, ret, errbuf, errsize);
        }
        if (strcmp(algo, "custom") == 0)
                return custom_new(w, shared_gpu, max_bytes, timeout_ns, ret, errbuf, errsize);
        if (strcmp(algo, "auto") != 0) {
                snprintf(errbuf, errsize, "--allreduce on the GPU is auto, custom or nccl, not '%s'", algo);
                return -EINVAL;
        }
        /* A failed init is collective (every rank fails it), so every rank falls back alike. */
        r = custom_new(w, shared_gpu, max_bytes, timeout_ns, ret, errbuf, errsize);
        if (r >= 0 || r == -ETIMEDOUT || r == -EOWNERDEAD || shared_gpu)
                return r;
        if (rm_worker_rank(w) == 0)
                fprintf(stderr, "ringmaster-engine: %s; using NCCL\n", errbuf);
        return nccl_new(w, timeout_ns, ret, errbuf, errsize);
}
