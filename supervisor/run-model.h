/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_RUN_MODEL_H
#define RINGMASTER_RUN_MODEL_H

/*
 * The run as data: its ranks, their phases, its attempts, the deadline that
 * ended it.  Who writes what:
 *
 *   job.c        everything below but what the next lines name (it owns
 *                the event loop's sources, timers and its event queue,
 *                which are not here: see job.h);
 *   run.c        the run's identity (run_id, run_dir, log_dir, nproc, the
 *                node's place: nnodes, node_rank, master_addr, the stale
 *                counts) before job_start(), internal_error after the loop;
 *   phase.c      a rank's phase, ready and notify fields, and phases;
 *   run-nodes.c  the node failure (a job of several nodes with --store);
 *   diagnose.c   a rank's diagnosis, a spawned worker's diagnosis;
 *   job-workers.c the spawned workers (workers, first_failure_worker).
 *
 * Everybody else reads it through a const pointer: deadline.c decides from
 * it, report-text.c and report-json.c render it, status.c and sdnotify.c
 * summarise it.  The types are all here; the functions over them are
 * phase.h's, deadline.h's and the queries at the end of this file.  Times are CLOCK_MONOTONIC microseconds unless named
 * realtime; 0 means never.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "capture.h"
#include "lifecycle.h"
#include "spawn.h"
#include "workers.h"

struct diagnosis;
struct json_value;
struct notify_stats;
struct run_dir;
struct run_options;

/* ------------------------------------------------------------ what ranks reported (phase.c tracks it) */

/* A rank keeps its last PHASE_HISTORY_MAX phases (older ones are counted, not kept). */
#define PHASE_HISTORY_MAX 128
/* Distinct phase names a job tracks as milestones (later new names do not count as milestones). */
#define PHASE_MILESTONES_MAX 256

struct phase_span {
        char *name;
        uint64_t start_usec;
        uint64_t end_usec;              /* 0: not ended (yet) */
};

/* Per rank; its current phase name is rank->phase (the last one entered, ended or not). */
struct rank_notify {
        uint64_t phase_start_usec;
        uint64_t phase_end_usec;        /* 0: still in rank->phase */
        struct phase_span *history;
        size_t n_history;
        uint64_t history_dropped;
        int milestone;                  /* the furthest milestone it entered; -1: none */
        bool has_progress;
        uint64_t progress_done, progress_total, progress_usec;
        char *status;
        uint64_t status_usec;
        uint64_t ready_usec;            /* rank->ready tells whether; this, when */
        uint64_t last_watchdog_usec;
        uint64_t watchdog_trigger_usec; /* WATCHDOG=trigger: a failure at once */
        bool stopping;
        uint64_t stopping_usec;
        bool has_errno;
        int errno_value;
        uint64_t extend_until_usec;     /* EXTEND_TIMEOUT_USEC: no deadline of this rank before */
        uint64_t datagrams;
};

struct phase_milestone {
        char *name;
        uint64_t first_usec;            /* when the first rank entered it */
        int first_rank;
};

/* Per attempt. */
struct job_phases {
        struct phase_milestone *milestones;
        size_t n_milestones;
        uint64_t first_ready_usec;
        int first_ready_rank;           /* -1: none yet */
        int n_ready;
        uint64_t all_ready_usec;        /* every rank ready */
};

/* ------------------------------------------------------------ the deadline's cause (deadline.c decides it) */

enum deadline_kind {
        DEADLINE_NONE,
        DEADLINE_READY,
        DEADLINE_PHASE,
        DEADLINE_STRAGGLER,
        DEADLINE_WATCHDOG,
        _DEADLINE_KIND_MAX,
};

/* What passed: the cause of the teardown, kept for the report. */
struct deadline_cause {
        enum deadline_kind kind;
        bool watchdog_trigger;          /* WATCHDOG=trigger rather than a silent watchdog */
        uint64_t limit_usec;            /* the option's value (0 for a trigger) */
        uint64_t due_usec;              /* the first late rank's deadline */
        uint64_t fired_usec;            /* when ringmaster saw it pass */
        int *ranks;                     /* the late ranks, in order */
        size_t n_ranks;
        char *phase;                    /* the first late rank's phase (phase-timeout: the phase) */
        char *target_phase;             /* straggler: the milestone not reached (NULL: READY) */
        bool target_ready;              /* straggler: short of READY */
        uint64_t reached_usec;          /* straggler: when the first rank reached that milestone */
        int *reached;                   /* straggler: the ranks that reached it */
        size_t n_reached;
        char *message;                  /* the headline: "rank 2 stuck in phase nccl-init for 61.0 s; ..." */
        int *workers;                   /* a spawned worker's deadline (workers.h): the late workers' ids, -1 unknown */
        size_t n_workers;
};

/* ------------------------------------------------------------ ranks, orphans, attempts, the run */

struct rank {
        int index;                      /* LOCAL_RANK; RANK is rank_offset + index (one node: the same) */
        enum rank_state state;
        pid_t pid;
        uint64_t started_usec;

        /* How it ended (EXITED: code; SIGNALLED: signal). */
        int exit_code;
        int exit_signal;
        bool core_dumped;
        uint64_t ended_usec;

        enum spawn_stage exec_stage;    /* SPAWN_STAGE_NONE unless it failed */
        int exec_error;

        int last_signal_sent;           /* by the supervisor: 0, the stop signal, or SIGKILL */
        uint64_t last_signal_usec;
        const char *cuda_visible_devices;  /* what it was given, or NULL (inherited) */

        /* From the notify protocol (phase.h): the last phase it entered (ended or not), READY=1. */
        char *phase;                    /* NULL: none reported */
        bool ready;
        struct rank_notify notify;      /* the rest: phase times and history, progress, status, ... */

        /* When a deadline passed: what /proc said of it (from its diagnosis, or /proc alone). */
        char diag_state;
        char diag_wchan[64];

        struct diagnosis *diagnosis;    /* the last one taken (diagnose.h), or NULL */

        /* MARK_STUCK: what /proc said when the supervisor gave up on it. */
        char stuck_state;
        char stuck_wchan[64];

        char *error_file_path;
        struct json_value *error_file;  /* parsed TORCHELASTIC_ERROR_FILE, or NULL */
        char *error_file_raw;           /* its text when it was not valid JSON */

        struct stream streams[_STREAM_KIND_MAX];
        bool streams_set_up;
};

/* A process re-parented to the supervisor (a rank's descendant whose parent died). */
struct orphan {
        pid_t pid;
        char comm[32];
        bool ended;
        int exit_code, exit_signal;
        int last_signal_sent;
        char stuck_state;
        char stuck_wchan[64];
};

/* What is kept of an attempt that ended in a restart (and of the last one). */
struct attempt {
        int restart_count;
        uint64_t started_usec, ended_usec;
        int failed_rank;                /* -1: none */
        pid_t failed_pid;
        int exit_code, exit_signal;
        bool core_dumped;
        uint64_t failed_usec;
        char *error_message;            /* from its error file */
        char **stderr_tail;
        enum deadline_kind deadline_kind;  /* DEADLINE_NONE unless a deadline ended it */
        char *deadline_message;
};

struct run_model {
        const struct run_options *options;

        /* Identity (run.c, before job_start()). */
        char *run_id;
        struct run_dir *run_dir;
        char *log_dir;                  /* DIR/<run-id>, or NULL */
        char host[256];
        int nproc;
        int stale_segments_removed;
        /* The node's place in the job (placement.h): one node unless told otherwise. */
        int nnodes;                     /* 1: one node */
        int node_rank;
        int rank_offset;                /* node_rank * nproc: RANK of local rank 0 */
        char *master_addr;              /* MASTER_ADDR for every rank */
        int fixed_master_port;          /* every attempt's MASTER_PORT; 0: a free port each attempt */
        const char *node_source;        /* "single", "static", "slurm", "lws", "indexed-job" */
        int stale_run_dirs_removed;
        const char *containment;        /* contain_mode_name(): cgroup, watcher or none */
        const char *containment_cgroup; /* the job's cgroup folder, or NULL */
        const char *containment_fallback;  /* why not cgroup (auto), or NULL */
        int containment_leftovers;      /* processes cgroup.kill ended after the ranks (a clean end) */

        enum job_state state;
        struct rank *ranks;             /* nproc of them, this attempt's */
        struct orphan **orphans;
        size_t n_orphans;
        uint64_t orphans_seen;

        int restart_count;
        int master_port;
        char *segment_name;             /* this attempt's, or NULL (--no-shm) */
        uint64_t segment_size;

        int first_failure;              /* this attempt's: a rank index, or -1 */
        /* The job's failure as another node (or node 0's view of every node) reported it (run-nodes.c). */
        struct node_failure {
                bool set;               /* this node stopped because of it */
                int node;               /* the node it happened on */
                int rank;               /* its global rank, or -1 (a node lost, a store lost) */
                char *host;
                char *cause;
                bool deadline;          /* a straggler named across nodes: exit 124 */
        } node_failure;
        int stop_signal;                /* what stopped the supervisor, or 0 */
        int internal_error;             /* negative errno, or 0 */
        int teardown_signal;            /* what the teardown sent first */
        uint64_t teardown_usec;
        bool gave_up;
        bool restart_across_nodes;      /* --max-restarts restarts every node into a new rendezvous round (run-nodes.h) */

        /* What ranks reported (per attempt), the socket's counts (whole run), and the deadlines. */
        struct job_phases phases;
        const char *notify_socket;      /* its address (NOTIFY_SOCKET); NULL before job_start() */
        const struct notify_stats *notify_stats;  /* NULL before job_start() */
        struct deadline_cause deadline_pending;  /* found expired; the teardown takes it */
        struct deadline_cause deadline;   /* this attempt's cause, when a deadline ended it */

        uint64_t start_usec, start_realtime_usec, attempt_start_usec, end_usec;
        struct attempt *attempts;       /* one per finished attempt */
        size_t n_attempts;

        /* The workers the ranks spawned and announced (workers.h, job-workers.h), per attempt. */
        struct worker_table workers;
        int first_failure_worker;       /* this attempt's first failure was a worker's: its id; else -1 */

        /* --init or PID 1 (init.h): SIGCHLD also reaps zombies nobody claims. */
        bool init;
        uint64_t zombies_reaped;
};

/*
 * 0, a failing rank's status, 128 + a stop signal, 124 (a deadline) or 111
 * (exit-status.h).  After a stop signal the workload decides, as under tini:
 * when the ranks it was forwarded to all ended within the grace, the status
 * of the first of them to fail (by the time it ended), else 0; 128 + the
 * signal when a rank had to be killed (or none was running to get it).
 */
int run_exit_status(const struct run_model *run);
/* The rank whose status run_exit_status() returns, or -1. */
int run_exit_status_rank(const struct run_model *run);
/* The pid rank had in this attempt (also once it ended; for descriptions), 0 when not started. */
pid_t run_rank_pid(const struct run_model *run, int rank);
/* The same as a callback of workers.h (userdata: the run). */
pid_t run_rank_pid_of(int rank, void *userdata);
/*
 * Whether a stop signal ended the run and every rank it was forwarded to
 * ended without SIGKILL; *ret_rank: the first of them that failed, or -1.
 */
bool run_stopped_gracefully(const struct run_model *run, int *ret_rank);
/* Whether the attempt being torn down will be followed by a restart (--max-restarts), as things stand. */
bool run_will_restart(const struct run_model *run);

/*
 * The message of a rank's error file (torchelastic's {"message": ...}, or
 * {"message": {"message": ..., "extraInfo": {"py_callstack": ...}}}), or
 * NULL; *ret_traceback: the Python traceback in it, or NULL.
 */
const struct json_value *rank_error_file_message(const struct rank *r, const struct json_value **ret_traceback);

#endif
