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

#include "run-model.h"

struct notify_message;

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
