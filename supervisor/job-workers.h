/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_JOB_WORKERS_H
#define RINGMASTER_JOB_WORKERS_H

/*
 * The workers an engine spawns under a rank, in the running job
 * (docs/spawned-workers.md): their announcements on the notify socket, the
 * capture handshake (the read ends of their own pipes, then 'Y' or 'N'), a
 * pidfd per worker for its end, and a failure reported at once (and handed
 * to the job, which tears down unless --worker-failure=report).  The model
 * is workers.h's, kept in the run model (run->workers); deadline.c decides
 * their deadlines, report-text.c and report-json.c render them.  This file
 * owns their event sources; job.c owns it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

struct capture_config;
struct notify_message;
struct run_model;

struct job_workers_host {
        sd_event *event;
        struct run_model *run;                     /* the workers are run->workers */
        const struct capture_config *capture;      /* the ranks' (sinks, journal, escaping); the prefix is replaced */
        /* Reads what the notify socket holds now (a worker's last words, before its end is judged). */
        void (*drain_notify)(void *userdata);
        /* A worker failed while the job runs (--worker-failure=teardown): post worker-failed, run the queue. */
        void (*failed)(int worker_id, void *userdata);
        /* After a worker's end was taken (from the event loop): run the job's queue. */
        void (*changed)(void *userdata);
        void *userdata;
};

struct job_workers;

int job_workers_new(const struct job_workers_host *host, struct job_workers **ret);
/* Releases the workers too. */
struct job_workers *job_workers_free(struct job_workers *jw);

/* The rank a running, announced worker with this pid belongs to, or -1. */
int job_workers_rank_of_pid(const struct job_workers *jw, pid_t pid);

/*
 * A datagram from sender (mapped to rank), before notify_parse()'s keys are
 * applied: announcements, groups, ends.  fds (n_fds of them, or none) are
 * taken over: a capture request's three, answered and closed here.
 */
void job_workers_datagram(struct job_workers *jw, int rank, pid_t sender, const void *data, size_t size, int *fds,
                          size_t n_fds);

/* The phase keys of a datagram, for the worker that sent it (if one did). */
void job_workers_notify(struct job_workers *jw, pid_t sender, const struct notify_message *m);

/* Takes the ends of workers that are gone already (before a rank's end is judged). */
void job_workers_poll_exits(struct job_workers *jw);

/* The end of an attempt: ends taken, the streams drained and closed, the exit watches off. */
void job_workers_finish(struct job_workers *jw);

/* Frees every worker of the attempt (a new attempt, the job's end). */
void job_workers_release(struct job_workers *jw);

#endif
