/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_PHASE_H
#define RINGMASTER_PHASE_H

/*
 * What the notify protocol says about each rank (its phase, phase history,
 * progress, status, readiness, watchdog, ...) and about the job as a whole
 * (the milestones: every phase name in the order ranks first reached it,
 * and READY), for the deadlines (deadline.c) and the report (report-*.c).
 *
 * Times are CLOCK_MONOTONIC microseconds; 0 means never.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct notify_message;
struct rank;

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

/* Frees what a rank's notify state holds and zeroes it (milestone -1). */
void rank_notify_reset(struct rank_notify *n);
void job_phases_reset(struct job_phases *p);

/*
 * Applies a parsed datagram from (a descendant of) rank r at time now: the
 * rank's notify fields, and the attempt's phases (of nproc ranks, started
 * at attempt_start_usec).
 */
void rank_notify_apply(struct job_phases *phases, int nproc, uint64_t attempt_start_usec, struct rank *r,
                       const struct notify_message *m, uint64_t now);

/* The milestone named name, or -1. */
int job_phases_find(const struct job_phases *p, const char *name);

/*
 * Where a rank stands, for reports: "in phase nccl-init for 61.0 s",
 * "after phase warmup (ended 2.0 s ago)", "before any phase for 70.0 s"
 * (since its start), with " (progress 3/10)" when known.
 */
void rank_describe_position(const struct rank *r, uint64_t now, char *buf, size_t size);

#endif
