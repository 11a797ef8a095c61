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
 *                stale counts) before job_start(), internal_error after
 *                the loop;
 *   phase.c      a rank's phase, ready and notify fields, and phases;
 *   diagnose.c   a rank's diagnosis.
 *
 * Everybody else reads it through a const pointer: deadline.c decides from
 * it, report-text.c and report-json.c render it, status.c and sdnotify.c
 * summarise it.  Times are CLOCK_MONOTONIC microseconds unless named
 * realtime; 0 means never.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "capture.h"
#include "deadline.h"
#include "lifecycle.h"
#include "phase.h"
#include "spawn.h"

struct diagnosis;
struct json_value;
struct notify_stats;
struct run_dir;
struct run_options;

struct rank {
        int index;                      /* RANK (= LOCAL_RANK, one node) */
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
        int stale_run_dirs_removed;

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
        int stop_signal;                /* what stopped the supervisor, or 0 */
        int internal_error;             /* negative errno, or 0 */
        int teardown_signal;            /* what the teardown sent first */
        uint64_t teardown_usec;
        bool gave_up;

        /* What ranks reported (per attempt), the socket's counts (whole run), and the deadlines. */
        struct job_phases phases;
        const char *notify_socket;      /* its address (NOTIFY_SOCKET); NULL before job_start() */
        const struct notify_stats *notify_stats;  /* NULL before job_start() */
        struct deadline_cause deadline_pending;  /* found expired; the teardown takes it */
        struct deadline_cause deadline;   /* this attempt's cause, when a deadline ended it */

        uint64_t start_usec, start_realtime_usec, attempt_start_usec, end_usec;
        struct attempt *attempts;       /* one per finished attempt */
        size_t n_attempts;

        /* --init or PID 1 (init.h): SIGCHLD also reaps zombies nobody claims. */
        bool init;
        uint64_t zombies_reaped;
};

/* 0, a failing rank's status, 128 + a stop signal, 124 (a deadline) or 111 (exit-status.h). */
int run_exit_status(const struct run_model *run);
/* The rank whose status run_exit_status() returns, or -1. */
int run_exit_status_rank(const struct run_model *run);
/* Whether the attempt being torn down will be followed by a restart (--max-restarts), as things stand. */
bool run_will_restart(const struct run_model *run);

/*
 * The message of a rank's error file (torchelastic's {"message": ...}, or
 * {"message": {"message": ..., "extraInfo": {"py_callstack": ...}}}), or
 * NULL; *ret_traceback: the Python traceback in it, or NULL.
 */
const struct json_value *rank_error_file_message(const struct rank *r, const struct json_value **ret_traceback);

#endif
