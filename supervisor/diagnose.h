/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_DIAGNOSE_H
#define RINGMASTER_DIAGNOSE_H

/*
 * What a hung rank is doing, taken before it is killed (or on SIGUSR2,
 * while the job goes on), inside the event loop and bounded in time as a
 * whole (--diagnose-timeout):
 *
 *   1. /proc, at once: the rank's process and its descendants (state, wait
 *      channel, system call, CPU time, every thread's), and its phase;
 *   2. a Python rank: SIGUSR1, which ringmaster's start-up hook made
 *      faulthandler's (all threads); the traceback is collected from the
 *      rank's captured stderr until it stops coming;
 *   3. a native stack (--stack-tool: eu-stack or gdb, a child of ours,
 *      bounded by --stack-timeout);
 *   4. the tail of its NCCL debug log(s).
 *
 * Ranks are diagnosed side by side; the steps of one rank in that order
 * (the traceback first: a tracer stops the process).  Results go to the
 * rank (rank->diagnosis); report-text.c and report-json.c render them.
 *
 * The workers' environment for it is decided here too: PYTHONPATH and
 * PYTHONFAULTHANDLER for the hook (--python-hooks), NCCL_DEBUG_FILE.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "options.h"

struct run_model;
struct process_snapshot;
struct rank;
struct worker_env;

struct diagnosis {
        char *reason;                    /* why it was taken: "deadline", or --diagnose-signal's name ("SIGUSR2") */
        uint64_t started_usec, ended_usec;
        pid_t pid;                       /* the rank's */
        pid_t principal_pid;             /* the process signalled and traced: the rank's, or under a
                                            wrapper (sh -c, timeout, ...) its only child */
        char *phase;                     /* the last phase it entered; NULL: none reported */
        uint64_t phase_usec;             /* time in it while still in it; 0: unknown or ended */
        char *position;                  /* "in phase nccl-init for 61.0 s (progress 3/10)" (phase.h) */
        struct process_snapshot *processes;  /* [0]: the rank's process; then its descendants */
        size_t n_processes;
        bool python;                     /* the principal is a Python interpreter */
        bool python_signalled;           /* and was sent SIGUSR1 */
        char **python_traceback;
        enum stack_tool stack_tool;      /* NONE: none ran */
        uint64_t stack_usec;
        char **native_stack;
        char **nccl_log_files;
        char **nccl_log_tail;
        char **errors;
};

struct diagnosis *diagnosis_free(struct diagnosis *d);

/* Per job: helper processes, SIGUSR2, the queue; created by job_start(). */
struct diagnoser;

/*
 * Diagnoses the given ranks (those not alive are skipped) and then calls
 * done(userdata) from the event loop, never from within this call.
 * Each rank's result is in run->ranks[i].diagnosis by then.  A spawned
 * worker (workers.h) is given as -1 - its id, and diagnosed as a rank's
 * principal process is (its faulthandler traceback read from its own
 * stderr when it has one); its result goes to its diagnosis.  One diagnosis
 * runs at a time: a request made while one runs waits for it (and the
 * whole wait is bounded by twice --diagnose-timeout).  -EINVAL for a bad
 * rank index or worker id, -ENOMEM; done is not called then.
 */
typedef void (*diagnose_done_fn)(void *userdata);
int diagnose_ranks(struct diagnoser *d, const int *ranks, size_t n, const char *reason, diagnose_done_fn done,
                   void *userdata);

/* What a stack tool is started with (spawn.h), as the ranks are; the pointers outlive the diagnoser. */
struct diagnoser_setup {
        char *const *exec_paths;         /* COMMAND's candidates: is it a Python interpreter? */
        int dev_null_fd;
        const sigset_t *sigmask;
        const struct rlimit *nofile;     /* NULL: as is */
};

/* Writes each diagnosis to run->ranks[i].diagnosis; watches SIGUSR2 on event. */
int diagnoser_new(sd_event *event, struct run_model *run, const struct diagnoser_setup *setup,
                  struct diagnoser **ret);
struct diagnoser *diagnoser_free(struct diagnoser *d);

/*
 * A child of ours that is the diagnosis's, not one of the job's orphans: a
 * stack tool not reaped yet, or a process of a tool's process group (re-
 * parented to us when the tool was killed), which it then kills and reaps.
 * For job_scan_orphans(), beside pid_is_live_rank().
 */
bool diagnoser_claims_child(struct diagnoser *d, pid_t pid);

/*
 * Fills the worker_env fields this module decides for a rank: pythonpath,
 * python_faulthandler, nccl_debug_file (pointers owned by the diagnoser).
 */
void diagnoser_worker_env(const struct diagnoser *d, int rank, struct worker_env *w);

/* Whether workers should let ringmaster's helpers ptrace them (PR_SET_PTRACER): a stack tool may run. */
bool diagnoser_wants_ptrace(const struct diagnoser *d);

#endif
