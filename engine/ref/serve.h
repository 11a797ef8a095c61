/* SPDX-License-Identifier: MIT */
#ifndef RM_ENGINE_SERVE_H
#define RM_ENGINE_SERVE_H

/*
 * The serving loops, once the model is loaded and the ranks are connected:
 *
 *   rank 0  reads requests, runs the scheduler, broadcasts each step on
 *           "sched", runs its own shard, gathers the other ranks' samples
 *           from "results", writes finished requests, and at the end
 *           prints the summary: tokens/s, the per-step split (control plane
 *           = broadcast + gather, compute, all-reduce) and the phase
 *           timeline of every rank
 *   others  run each step they receive and answer with their samples, until
 *           STEP_STOP; then send their timeline
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "backend.h"
#include "scheduler.h"

struct shmring_tx;
struct shmring_rx;

#define TIMELINE_MAX 16

/* When this rank entered each phase (CLOCK_MONOTONIC, shared by the host's processes). */
struct timeline {
        int n;
        char name[TIMELINE_MAX][32];
        int64_t ns[TIMELINE_MAX];
};
void timeline_mark(struct timeline *t, const char *name);

struct serve_args {
        struct backend *backend;
        int rank, world;
        struct shmring_tx *sched_tx;      /* rank 0, world > 1 */
        struct shmring_rx *results_rx;    /* rank 0, world > 1 */
        struct shmring_rx *sched_rx;      /* others */
        struct shmring_tx *results_tx;    /* others */
        const struct timeline *timeline;
        int64_t start_ns;                 /* this rank's start */
        int64_t step_timeout_ns;          /* rank 0 waiting for a rank's result */
        /* rank 0 */
        int in_fd;                        /* requests, JSON lines */
        FILE *out;                        /* finished requests, JSON lines */
        FILE *step_log;                   /* NULL, or one JSON line per step */
        FILE *logits_out;                 /* NULL, or the sampled positions' logits */
        FILE *summary;                    /* NULL: no summary */
        struct sched_opts sched;
        /* fault injection: called with each step number before it runs */
        void (*at_step)(uint64_t step);
        void (*heartbeat)(void);
};

/* 0 when every request was answered; a negative errno, after a message on stderr. */
int serve_rank0(const struct serve_args *a);
int serve_worker(const struct serve_args *a);

#endif
