/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_JOB_H
#define RINGMASTER_JOB_H

/*
 * A job: N ranks of one command, run in attempts (the first, then one per
 * restart), driven by sd-event.  Each rank and the job move only through the
 * tables of lifecycle.c; this file carries out their actions: spawning,
 * signalling process groups, timers, orphan tracking, restarts.
 *
 * What the job knows is the run model (run-model.h), which anyone may read
 * through job_run(); its event sources, timers and event queue are private
 * to job.c.  Only the owner (run.c) includes this header.
 */

#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "capture.h"
#include "run-model.h"

struct run_options;

/* The job: its event sources, timers and event queue are job.c's own. */
struct job;

/* What the job's owner (run.c) gives it before job_start(); the job frees the strings and lists. */
struct job_setup {
        struct capture_config capture;
        char **cuda_per_rank;           /* CUDA_VISIBLE_DEVICES of each rank, or NULL */
        char *cuda_all;                 /* the same for all (--gpus, --bind-gpu=none), or NULL */
        char **exec_paths;              /* spawn_command_candidates() of COMMAND */
        sigset_t child_sigmask;
        sigset_t child_ignored;         /* what ringmaster's parent ignored: ignored in the ranks too, and
                                           a stop signal in it does not stop the job (nohup) */
        struct rlimit child_nofile;
        bool restore_nofile;
        struct contain *contain;        /* the ranks join it (contain.h); the owner frees it; NULL: none */
        int stdin_fd;                   /* ringmaster's stdin (--stdin), or -1: /dev/null for every rank */

        /*
         * --foreground: the one rank is tty_fd's foreground process group,
         * its stdio ringmaster's own (not captured).  When it stops (Ctrl-Z)
         * ringmaster takes the terminal back and stops itself, for the shell
         * above to resume both (or, with no job control above it, as a
         * container's init, continues it).
         */
        bool foreground;
        int tty_fd;

        /*
         * Told after every batch of events (a state change, an exit) and
         * every notify datagram: ringmaster's own sd_notify (sdnotify.h) and
         * the live status (status.h) look at the run there.  NULL: nobody.
         */
        void (*changed)(const struct run_model *run, void *userdata);
        void *changed_userdata;
};

int job_new(sd_event *event, const struct run_options *options, struct job **ret);
struct job *job_free(struct job *job);

/* What the owner fills before job_start(). */
struct job_setup *job_setup(struct job *job);
/* The run: read it anywhere; only the owner writes it (see run-model.h). */
struct run_model *job_run(struct job *job);

/* Starts the first attempt; the loop does the rest.  Returns < 0 when nothing could start. */
int job_start(struct job *job);

/* A child of ours that something else reaps (sd-event child sources): a live rank, a tracked orphan, a stack tool. */
bool job_claims_child(const struct job *job, pid_t pid);

/* Another node failed (run.node_failure is filled): stop this node's ranks (--store; run-nodes.c). */
void job_node_failed(struct job *job);

/* Sends sig to every live rank's process group (--init's forwarded signals); the job's state does not change. */
void job_forward_signal(struct job *job, int sig);

/* The stop signals the supervisor forwards. */
extern const int job_stop_signals[4];

/* Removes the segment and the run directory (every exit path calls it). */
void job_cleanup(struct job *job);

#endif
