/* SPDX-License-Identifier: MIT */
#ifndef RM_RUN_LAYOUT_H
#define RM_RUN_LAYOUT_H

/*
 * The run segment every ringmaster run uses, in one place: the supervisor
 * creates it from rm_run_spec() and the workers (librmworker) expect it.
 *
 *   "sched"    broadcast, scheduler -> every rank
 *   "results"  queue, every rank -> scheduler
 *   "kv"       key-value table, 4096 entries of up to 512 bytes
 *              (tensor records, NCCL ids, rendezvous markers)
 *
 * This file depends on shmring.h alone, so a program may compile
 * run-layout.c in instead of linking librmworker.
 */

#include <stdint.h>

#include "shmring.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RM_RUN_MAX_RANKS 1024

#define RM_CHANNEL_SCHED "sched"
#define RM_CHANNEL_RESULTS "results"
#define RM_TABLE_KV "kv"
#define RM_KV_ENTRIES 4096
#define RM_KV_VALUE_SIZE 512

struct rm_run_spec {
        struct shmring_spec spec;                          /* points into the arrays below */
        struct shmring_channel_spec channels[2];
        struct shmring_table_spec tables[1];
};

/*
 * Fills ret with the segment spec for a run of nranks (1..RM_RUN_MAX_RANKS)
 * ranks under run_id.  ret->spec is what shmring_create() takes; ret must
 * stay where it is while spec is used (spec points into it).  -EINVAL for a
 * bad nranks or run_id.
 */
int rm_run_spec(uint32_t nranks, const char *run_id, uint64_t generation, struct rm_run_spec *ret);

#ifdef __cplusplus
}
#endif

#endif
