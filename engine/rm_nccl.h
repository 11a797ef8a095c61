/* SPDX-License-Identifier: MIT */
#ifndef RM_NCCL_H
#define RM_NCCL_H

/*
 * NCCL communicators with a deadline (librmworker-cuda, when built with
 * NCCL).  No TCP store: rank 0's ncclUniqueId travels through the run
 * segment's kv table under "nccl/<name>/uid", and every rank leaves
 * "nccl/<name>/joined/<rank>" and ".../ready/<rank>" markers, so a rank that
 * gives up names the ranks it waited for:
 *
 *   timed out after 10.0 s in nccl-init waiting for rank 2 (never joined)
 *
 * Initialisation is non-blocking (ncclCommInitRankConfig with blocking = 0)
 * and polled; on a timeout or an error the communicator is aborted
 * (ncclCommAbort), never left hanging.  The caller selects the CUDA device
 * (cudaSetDevice) first, as for ncclCommInitRank.  The communicator stays
 * non-blocking: an NCCL call on it may return ncclInProgress, after which
 * rm_nccl_wait() must report completion before the next call.
 */

#include <stdint.h>

/* nccl.h declares a few functions with () instead of (void). */
#if defined(__GNUC__) && !defined(__cplusplus)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#endif
#include <nccl.h>
#if defined(__GNUC__) && !defined(__cplusplus)
#pragma GCC diagnostic pop
#endif

#include "rm_worker.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Creates communicator name (1..35 of [A-Za-z0-9._-], once per run) over
 * nranks ranks as rank; nranks < 0 and rank < 0 mean the worker's
 * WORLD_SIZE and RANK.  -ETIMEDOUT: the deadline passed; -EOWNERDEAD: a
 * rank died meanwhile; -EEXIST: rank 0 found the name used; -EIO, -EINVAL,
 * -ECONNRESET...: NCCL failed.  rm_last_error() has the details.
 */
int rm_nccl_init(struct rm_worker *w, const char *name, int nranks, int rank, int64_t timeout_ns,
                 ncclComm_t *ret_comm);

/* Waits until comm's last operation completed (ncclCommGetAsyncError polled). */
int rm_nccl_wait(ncclComm_t comm, int64_t timeout_ns);

/*
 * ncclCommFinalize (polled up to timeout), then ncclCommDestroy; on a
 * timeout or error ncclCommAbort instead.  Accepts NULL.
 */
int rm_nccl_destroy(ncclComm_t comm, int64_t timeout_ns);

/* An NCCL result as a negative errno. */
int rm_nccl_errno(ncclResult_t result);

#ifdef __cplusplus
}
#endif

#endif
