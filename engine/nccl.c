/* SPDX-License-Identifier: MIT */
/* NCCL communicators created and destroyed under a deadline. */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "rm_nccl.h"

#define NCCL_NAME_MAX (RM_BOOTSTRAP_PREFIX_MAX - (int) sizeof(RM_KV_NCCL_PREFIX) + 1)
#define POLL_INTERVAL_NS (1 * NSEC_PER_MSEC)

_Static_assert(sizeof(ncclUniqueId) <= RM_BOOTSTRAP_ID_MAX, "ncclUniqueId fits a rendezvous id");

_public_ int rm_nccl_errno(ncclResult_t result) {
        switch (result) {
        case ncclSuccess:
                return 0;
        case ncclInProgress:
                return -EINPROGRESS;
        case ncclInvalidArgument:
        case ncclInvalidUsage:
                return -EINVAL;
        case ncclInternalError:
                return -EPROTO;
        case ncclRemoteError:
                return -ECONNRESET;
        case ncclUnhandledCudaError:
        case ncclSystemError:
        default:
                return -EIO;
        }
}

static int nccl_fail(ncclResult_t result, ncclComm_t comm, const char *what) {
        const char *detail = comm ? ncclGetLastError(comm) : ncclGetLastError(NULL);

        return rmpriv_fail(rm_nccl_errno(result) ?: -EIO, "%s: %s%s%s", what, ncclGetErrorString(result),
                           detail && detail[0] ? ": " : "", detail ? detail : "");
}

struct nccl_init {
        ncclComm_t comm;
};

static int nccl_make_id(void *ctx, void *id) {
        ncclUniqueId u;
        ncclResult_t res;

        (void) ctx;
        res = ncclGetUniqueId(&u);
        if (res != ncclSuccess)
                return nccl_fail(res, NULL, "ncclGetUniqueId");
        memcpy(id, &u, sizeof(u));
        return 0;
}

static int nccl_start(void *ctx, const void *id, uint32_t nranks, uint32_t rank) {
        struct nccl_init *c = ctx;
        ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
        ncclUniqueId u;
        ncclResult_t res;

        config.blocking = 0;
        memcpy(&u, id, sizeof(u));
        res = ncclCommInitRankConfig(&c->comm, (int) nranks, u, (int) rank, &config);
        if (res != ncclSuccess && res != ncclInProgress) {
                int r = nccl_fail(res, c->comm, "ncclCommInitRankConfig");

                if (c->comm)
                        (void) ncclCommAbort(c->comm);
                c->comm = NULL;
                return r;
        }
        return 0;
}

static int nccl_poll(void *ctx) {
        struct nccl_init *c = ctx;
        ncclResult_t res, state = ncclInProgress;

        res = ncclCommGetAsyncError(c->comm, &state);
        if (res != ncclSuccess)
                return nccl_fail(res, c->comm, "ncclCommGetAsyncError");
        if (state == ncclInProgress)
                return -EINPROGRESS;
        if (state != ncclSuccess)
                return nccl_fail(state, c->comm, "nccl-init");
        return 0;
}

static void nccl_abort(void *ctx) {
        struct nccl_init *c = ctx;

        if (c->comm)
                (void) ncclCommAbort(c->comm);
        c->comm = NULL;
}

static const struct rm_collective_ops nccl_ops = {
        .id_size = sizeof(ncclUniqueId),
        .make_id = nccl_make_id,
        .start = nccl_start,
        .poll = nccl_poll,
        .abort = nccl_abort,
};

_public_ int rm_nccl_init(struct rm_worker *w, const char *name, int nranks, int rank, int64_t timeout_ns,
                          ncclComm_t *ret_comm) {
        struct nccl_init c = { 0 };
        char prefix[RM_BOOTSTRAP_PREFIX_MAX + 1];
        int r;

        check_arg(w && ret_comm, -EINVAL);
        rmpriv_clear_error();
        if (!rm_name_valid(name, NCCL_NAME_MAX, false))
                return rmpriv_fail(-EINVAL, "'%.60s' is not a communicator name (1..%d of [A-Za-z0-9._-])",
                                   name ? name : "(null)", (int) NCCL_NAME_MAX);
        if (nranks < 0)
                nranks = (int) rm_worker_world_size(w);
        if (rank < 0)
                rank = (int) rm_worker_rank(w);
        if (nranks == 0 || rank >= nranks)
                return rmpriv_fail(-EINVAL, "rank %d is not below nranks %d", rank, nranks);
        snprintf(prefix, sizeof(prefix), RM_KV_NCCL_PREFIX "%s", name);

        r = rm_bootstrap_run(w, prefix, "nccl-init", (uint32_t) nranks, (uint32_t) rank, &nccl_ops, &c,
                             timeout_ns);
        if (r < 0)
                return r;
        *ret_comm = c.comm;
        return 0;
}

/*
 * Polls with a short sleep in between: NCCL offers no file descriptor or
 * condition variable to wait on for a non-blocking communicator, only
 * ncclCommGetAsyncError().
 */
static int wait_async(ncclComm_t comm, int64_t deadline, const char *what, int64_t start) {
        for (;;) {
                ncclResult_t res, state = ncclInProgress;

                res = ncclCommGetAsyncError(comm, &state);
                if (res != ncclSuccess)
                        return nccl_fail(res, comm, "ncclCommGetAsyncError");
                if (state == ncclSuccess)
                        return 0;
                if (state != ncclInProgress)
                        return nccl_fail(state, comm, what);
                if (now_ns() >= deadline)
                        return rmpriv_fail(-ETIMEDOUT, "timed out after %.1f s in %s",
                                           (double) (now_ns() - start) / 1e9, what);
                nanosleep(&(struct timespec) { .tv_nsec = POLL_INTERVAL_NS }, NULL);
        }
}

_public_ int rm_nccl_wait(ncclComm_t comm, int64_t timeout_ns) {
        check_arg(comm, -EINVAL);
        rmpriv_clear_error();
        return wait_async(comm, deadline_after(timeout_ns), "an NCCL operation", now_ns());
}

_public_ int rm_nccl_destroy(ncclComm_t comm, int64_t timeout_ns) {
        int64_t start = now_ns(), deadline = deadline_after(timeout_ns);
        ncclResult_t res;
        int r;

        if (!comm)
                return 0;
        rmpriv_clear_error();
        res = ncclCommFinalize(comm);
        if (res != ncclSuccess && res != ncclInProgress) {
                r = nccl_fail(res, comm, "ncclCommFinalize");
                (void) ncclCommAbort(comm);
                return r;
        }
        r = wait_async(comm, deadline, "ncclCommFinalize", start);
        if (r < 0) {
                (void) ncclCommAbort(comm);
                return r;
        }
        res = ncclCommDestroy(comm);
        if (res != ncclSuccess)
                return nccl_fail(res, NULL, "ncclCommDestroy");
        return 0;
}
