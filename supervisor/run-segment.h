/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_RUN_SEGMENT_H
#define RINGMASTER_RUN_SEGMENT_H

/*
 * The run's libshmring segment, created before the workers are forked:
 *
 *   "sched"    broadcast, scheduler -> workers: nproc readers
 *   "results"  queue, workers -> scheduler: nproc writers
 *   "kv"       key-value table: NCCL unique ids, tensor handles
 *
 * Sizes come from --shm-slots, --shm-slot-size, --shm-overflow (the
 * broadcast's), --shm-queue-overflow (each queue writer's) and --shm-kv-entries,
 * --shm-kv-value-size (the table's).
 */

#include <stdint.h>

struct shmring;
struct run_options;

/* Its channels and table are engine/rm_run_layout.h's, the workers' view. */

/* The bytes of /dev/shm the segment takes for nproc ranks (the preflight's figure). */
int run_segment_size(const struct run_options *o, int nproc, uint64_t *ret_size);

/*
 * Creates it.  On -ENOSPC, logs that /dev/shm is too small, how much the run
 * needs and how to fix it.  ret_size: the bytes it reserved.
 */
int run_segment_create(const struct run_options *o, int nproc, const char *run_id, uint64_t generation,
                       struct shmring **ret, uint64_t *ret_size);

#endif
