/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_DEADLINE_H
#define RINGMASTER_DEADLINE_H

/*
 * Deadlines of an attempt, from what the notify protocol told (phase.h):
 *
 *   ready-timeout      a rank not READY that long after the attempt started
 *   phase-timeout      a rank in phase NAME that long (--phase-timeout NAME=SECS)
 *   straggler-timeout  a rank still short of a milestone that long after the
 *                      first rank reached it.  The milestones are the phase
 *                      names in the order ranks first entered them, then
 *                      READY; a rank is short of every milestone after the
 *                      furthest one it entered (of READY until it is ready)
 *   watchdog           a ready rank sent no WATCHDOG=1 that long; or it sent
 *                      WATCHDOG=trigger (at once, with or without --watchdog)
 *
 * EXTEND_TIMEOUT_USEC=N from a rank: none of its deadlines falls before N
 * microseconds after the datagram (but WATCHDOG=trigger).  Only ranks
 * starting or running are watched, and a rank that said STOPPING=1 has no
 * watchdog.  job.c keeps one timer at deadline_next() and asks
 * deadline_find_expired() when it fires: no polling.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "run-model.h"

struct run_options;

/* What the deadlines are computed from: parts of the run model (run-model.h), read only. */
struct deadline_input {
        const struct run_options *options;
        const struct rank *ranks;       /* nproc of them */
        int nproc;
        const struct job_phases *phases;
        uint64_t attempt_start_usec;
        const struct worker_table *workers;  /* the workers the ranks spawned (workers.h); NULL: none */
};

/* "ready-timeout", "phase-timeout", "straggler-timeout", "watchdog". */
const char *deadline_kind_name(enum deadline_kind k);

/* The earliest time (CLOCK_MONOTONIC, usec) a deadline of the attempt falls due; UINT64_MAX: none. */
uint64_t deadline_next(const struct deadline_input *in);

/*
 * Whether a deadline has passed at now: 1 and the cause in ret (the kind of
 * the earliest one that passed, every rank late for that kind, the
 * headline), 0 when none has, -ENOMEM.
 */
int deadline_find_expired(const struct deadline_input *in, uint64_t now, struct deadline_cause *ret);

void deadline_cause_clear(struct deadline_cause *c);

/* Whether rank v is in l[0..n). */
bool rank_list_contains(const int *l, size_t n, int v);

#endif
