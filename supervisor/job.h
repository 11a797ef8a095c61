/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_JOB_H
#define RINGMASTER_JOB_H

/*
 * A job: N ranks of one command, run in attempts (the first, then one per
 * restart), driven by sd-event.  Each rank and the job move only through the
 * tables of lifecycle.c; this file carries out their actions: spawning,
 * signalling process groups, timers, orphan tracking, restarts.
 */

#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "capture.h"
#include "deadline.h"
#include "lifecycle.h"
#include "phase.h"
#include "spawn.h"

struct diagnoser;
struct diagnosis;
struct json_value;
struct notify_server;
struct run_dir;
struct run_options;
struct shmring;

struct rank {
        struct job *job;
        int index;                      /* RANK (= LOCAL_RANK, one node) */
        enum rank_state state;
        pid_t pid;
        sd_event_source *child_source;
        uint64_t started_usec;          /* CLOCK_MONOTONIC */

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

        /* job_diagnose_all() (a stub until supervisor/diagnose.[ch]): /proc when a deadline passed. */
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
        struct job *job;
        pid_t pid;
        sd_event_source *source;
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

struct job {
        sd_event *event;
        const struct run_options *options;
        struct capture_config capture;

        char *run_id;
        struct run_dir *run_dir;
        char host[256];
        int nproc;
        char **cuda_per_rank;           /* CUDA_VISIBLE_DEVICES of each rank, or NULL */
        char *cuda_all;                 /* the same for all (--gpus, --bind-gpu=none), or NULL */
        char **exec_paths;
        char *log_dir;                  /* DIR/<run-id>, or NULL */
        int dev_null_fd;
        sigset_t child_sigmask;
        struct rlimit child_nofile;
        bool restore_nofile;

        enum job_state state;
        struct rank *ranks;
        struct orphan **orphans;
        size_t n_orphans;
        uint64_t orphans_seen;
        bool ranks_ended_posted;

        int restart_count;
        int master_port;
        struct shmring *segment;
        char *segment_name;
        uint64_t segment_size;
        int stale_segments_removed;
        int stale_run_dirs_removed;

        int first_failure;              /* this attempt's: a rank index, or -1 */
        int stop_signal;                /* what stopped the supervisor, or 0 */
        int internal_error;             /* negative errno, or 0 */
        int teardown_signal;            /* what the teardown sent first */
        uint64_t teardown_usec;
        bool gave_up;

        sd_event_source *timer;
        enum job_event timer_event;

        /* The notify socket (whole run), what ranks reported (per attempt), and the deadlines. */
        struct notify_server *notify;
        struct job_phases phases;
        sd_event_source *deadline_timer;  /* at deadline_next() */
        struct deadline_cause deadline_pending;  /* found expired; the teardown takes it */
        struct deadline_cause deadline;   /* this attempt's cause, when a deadline ended it */
        sd_event_source *signal_sources[5];
        sd_event_source *sigchld_source;
        struct diagnoser *diagnoser;    /* hang diagnosis, SIGUSR2, stack tools (diagnose.h) */

        uint64_t start_usec, start_realtime_usec, attempt_start_usec, end_usec;
        struct attempt *attempts;       /* one per finished attempt */
        size_t n_attempts;
        bool exec_error_logged;

        /* --init or PID 1 (init.h): SIGCHLD also reaps zombies nobody claims. */
        bool init;
        uint64_t zombies_reaped;

        /*
         * Told after every batch of events (a state change, an exit) and
         * every notify datagram: ringmaster's own sd_notify (sdnotify.h) and
         * the live status (status.h) look at the job there.  NULL: nobody.
         */
        void (*changed)(struct job *job, void *userdata);
        void *changed_userdata;

        /* Events posted by actions, run in order (no recursion into the tables). */
        struct {
                enum job_event event;
                int arg;
        } queue[16];
        size_t queue_len;
};

int job_new(sd_event *event, const struct run_options *options, struct job **ret);
struct job *job_free(struct job *job);

/* Starts the first attempt; the loop does the rest.  Returns < 0 when nothing could start. */
int job_start(struct job *job);

/* 0, a failing rank's status, 128 + a stop signal, 124 (a deadline) or 111 (exit-status.h). */
int job_exit_status(const struct job *job);
/* The rank whose status job_exit_status() returns, or -1. */
int job_exit_status_rank(const struct job *job);

/* Whether the attempt being torn down will be followed by a restart (--max-restarts), as things stand. */
bool job_will_restart(const struct job *job);

/* A child of ours that something else reaps (sd-event child sources): a live rank, a tracked orphan, a stack tool. */
bool job_claims_child(const struct job *job, pid_t pid);

/* Sends sig to every live rank's process group (--init's forwarded signals); the job's state does not change. */
void job_forward_signal(struct job *job, int sig);

/* The stop signals the supervisor forwards. */
extern const int job_stop_signals[4];

/* Removes the segment and the run directory (every exit path calls it). */
void job_cleanup(struct job *job);

#endif
