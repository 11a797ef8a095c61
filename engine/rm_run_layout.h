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

/* The sizes a run may change (ringmaster run --shm-*), and their defaults. */
struct rm_run_sizes {
        uint32_t slots;                 /* slots per ring, both channels (a power of two) */
        uint32_t slot_size;             /* inline payload bytes per slot */
        uint64_t sched_overflow;        /* the broadcast's overflow area */
        uint64_t results_overflow;      /* each results writer's overflow area */
        uint32_t kv_entries;            /* 0: no table */
        uint32_t kv_value_size;
};
#define RM_RUN_DEFAULT_SLOTS 64u
#define RM_RUN_DEFAULT_SLOT_SIZE 4096u
#define RM_RUN_DEFAULT_SCHED_OVERFLOW (UINT64_C(16) << 20)
#define RM_RUN_DEFAULT_RESULTS_OVERFLOW (UINT64_C(4) << 20)
#define RM_KV_ENTRIES 4096u
#define RM_KV_VALUE_SIZE 512u
#define RM_RUN_SIZES_DEFAULT                                        \
        ((struct rm_run_sizes) {                                    \
                .slots = RM_RUN_DEFAULT_SLOTS,                      \
                .slot_size = RM_RUN_DEFAULT_SLOT_SIZE,              \
                .sched_overflow = RM_RUN_DEFAULT_SCHED_OVERFLOW,    \
                .results_overflow = RM_RUN_DEFAULT_RESULTS_OVERFLOW, \
                .kv_entries = RM_KV_ENTRIES,                        \
                .kv_value_size = RM_KV_VALUE_SIZE,                  \
        })

struct rm_run_spec {
        struct shmring_spec spec;                          /* points into the arrays below */
        struct shmring_channel_spec channels[2];
        struct shmring_table_spec tables[1];
};

/*
 * Fills ret with the segment spec for a run of nranks (1..RM_RUN_MAX_RANKS)
 * ranks under run_id, with sizes (NULL: RM_RUN_SIZES_DEFAULT).  ret->spec is
 * what shmring_create() takes; ret must stay where it is while spec is used
 * (spec points into it).  -EINVAL for a bad nranks or run_id (the sizes are
 * checked by shmring_spec_size()).
 */
int rm_run_spec(uint32_t nranks, const char *run_id, uint64_t generation, const struct rm_run_sizes *sizes,
                struct rm_run_spec *ret);

#ifdef __cplusplus
}
#endif

#endif
