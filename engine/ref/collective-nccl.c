/* SPDX-License-Identifier: MIT */
/*
 * The GPU all-reduces (collective.h): NCCL on a communicator made by
 * rm_nccl_init() (the deadline-guarded bootstrap through the run segment),
 * bf16 sums in place on the engine's stream.
 *
 * The custom all-reduce hook (issue 14).  engine/rm_allreduce.h, the
 * custom one-shot/two-shot all-reduce through CUDA IPC buffers, is being
 * written beside this engine.  When it lands it plugs in here as a second
 * collective_ops, "custom": gpu_collective_new() makes it for "custom" and
 * "auto", keeps an NCCL communicator as well, and its allreduce() calls
 * the custom kernel for the sizes and world sizes it supports (it says
 * which), NCCL for the rest.  The model code does not change: it calls
 * collective_allreduce() on whatever this file returns.  Until then
 * "custom" is refused with that explanation and "auto" is NCCL.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "collective.h"
#include "rm_worker.h"

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

int gpu_collective_new(struct rm_worker *w, const char *algo, int64_t timeout_ns, struct collective **ret,
                       char *errbuf, size_t errsize) {
        if (strcmp(algo, "custom") == 0) {
                snprintf(errbuf, errsize,
                         "--allreduce custom: this build has no custom all-reduce (engine/rm_allreduce.h, issue 14); "
                         "use --allreduce nccl");
                return -EOPNOTSUPP;
        }
        if (strcmp(algo, "auto") != 0 && strcmp(algo, "nccl") != 0) {
                snprintf(errbuf, errsize, "--allreduce on the GPU is auto, nccl or custom, not '%s'", algo);
                return -EINVAL;
        }
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
        snprintf(errbuf, errsize, "this build has no NCCL (configure found none: --with-nccl=DIR), so the GPU path runs "
                                  "one rank only");
        return -EOPNOTSUPP;
#endif
}
