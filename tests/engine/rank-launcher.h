/* SPDX-License-Identifier: MIT */
#ifndef RMTEST_RANK_LAUNCHER_H
#define RMTEST_RANK_LAUNCHER_H

/*
 * Test helper: a stand-in for `ringmaster run`.  Creates a run segment
 * from rm_run_spec() and a private run directory, then starts ranks (this
 * same program again, through /proc/self/exe) with the environment the
 * supervisor gives: RINGMASTER_SHM, RINGMASTER_RUN_ID, RINGMASTER_RUN_DIR,
 * RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include "rm_worker.h"

#define RMTEST_MAX_RANKS 64

/* Assertions for test programs: print where and exit 1 (a test failure). */
#define CHECK(expr)                                                                         \
        do {                                                                                \
                if (!(expr)) {                                                              \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); \
                        exit(1);                                                            \
                }                                                                           \
        } while (0)
/* A call returning a negative errno must give exactly want. */
#define CHECK_ERR(call, want)                                                               \
        do {                                                                                \
                long long got_ = (long long) (call);                                        \
                if (got_ != (long long) (want)) {                                           \
                        fprintf(stderr, "%s:%d: %s gave %lld, want %lld (%s)\n", __FILE__,  \
                                __LINE__, #call, got_, (long long) (want), rm_last_error()); \
                        exit(1);                                                            \
                }                                                                           \
        } while (0)

struct rmtest_job;

/* A run of nranks: its segment and run directory.  Blocks SIGCHLD (for rmtest_job_wait). */
int rmtest_job_new(uint32_t nranks, struct rmtest_job **ret);
/* Kills ranks still running, unlinks the segment, removes the run directory. */
struct rmtest_job *rmtest_job_free(struct rmtest_job *j);
const char *rmtest_job_run_dir(const struct rmtest_job *j);
struct shmring *rmtest_job_segment(const struct rmtest_job *j);

/*
 * Starts rank: this program with argv {exe, "--rank", mode, NULL} and the
 * run's environment plus extra_env ("NAME=value" strings, NULL-terminated,
 * may be NULL).
 */
int rmtest_job_spawn(struct rmtest_job *j, uint32_t rank, const char *mode, char *const *extra_env);
/*
 * The same, started through a wrapper command (for example
 * {"unshare", "--pid", "--fork", NULL}), which must exec what follows it.
 */
int rmtest_job_spawn_wrapped(struct rmtest_job *j, uint32_t rank, const char *mode, char *const *extra_env,
                             const char *const *wrapper);
/* Starts every rank with mode. */
int rmtest_job_spawn_all(struct rmtest_job *j, const char *mode);
/*
 * Waits for every started rank, up to timeout_ns; kills the rest with
 * SIGKILL on timeout (-ETIMEDOUT).  Returns the number of ranks that did
 * not exit 0, or 77 when every rank that did not exit 0 exited 77.
 */
int rmtest_job_wait(struct rmtest_job *j, int64_t timeout_ns);
/* A reaped rank's wait status. */
int rmtest_job_status(const struct rmtest_job *j, uint32_t rank);

/* In a rank: rm_worker_open(), or exit 1 saying why. */
struct rm_worker *rmtest_rank_open(void);
/* In a rank: every rank of the world reaches barrier name (unique per use). */
int rmtest_barrier(struct rm_worker *w, const char *name, int64_t timeout_ns);

/* A knob from the environment: an unsigned number, or def. */
uint64_t rmtest_env_u64(const char *name, uint64_t def);

/* Seconds since an arbitrary point (CLOCK_MONOTONIC). */
double rmtest_now(void);

#endif
