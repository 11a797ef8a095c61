/* SPDX-License-Identifier: MIT */
/* The run segment's channels and table, sized for a number of ranks. */

#include <errno.h>
#include <string.h>

#include "rm_run_layout.h"

/* The scheduler's broadcast: small messages inline, batches in the overflow area. */
#define SCHED_SLOTS 256
#define SCHED_SLOT_SIZE 4096
#define SCHED_OVERFLOW (UINT64_C(16) << 20)
/* Results: one ring per rank. */
#define RESULTS_SLOTS 64
#define RESULTS_SLOT_SIZE 4096
#define RESULTS_OVERFLOW (UINT64_C(1) << 20)
/* The ranks, a helper process each, the supervisor and a few observers. */
#define PEERS_PER_RANK 2
#define PEERS_EXTRA 16

static int run_id_valid(const char *s) {
        size_t n;

        if (!s)
                return 0;
        n = strnlen(s, SHMRING_RUN_ID_MAX + 1);
        if (n == 0 || n > SHMRING_RUN_ID_MAX)
                return 0;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];

                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '_' || c == '-'))
                        return 0;
        }
        return 1;
}

int rm_run_spec(uint32_t nranks, const char *run_id, uint64_t generation, struct rm_run_spec *ret) {
        if (nranks == 0 || nranks > RM_RUN_MAX_RANKS || !run_id_valid(run_id) || !ret)
                return -EINVAL;

        *ret = (struct rm_run_spec) {
                .channels = {
                        {
                                .name = RM_CHANNEL_SCHED,
                                .kind = SHMRING_BROADCAST,
                                .slots = SCHED_SLOTS,
                                .slot_size = SCHED_SLOT_SIZE,
                                .overflow_size = SCHED_OVERFLOW,
                                .max_ports = nranks,
                        },
                        {
                                .name = RM_CHANNEL_RESULTS,
                                .kind = SHMRING_QUEUE,
                                .slots = RESULTS_SLOTS,
                                .slot_size = RESULTS_SLOT_SIZE,
                                .overflow_size = RESULTS_OVERFLOW,
                                .max_ports = nranks,
                        },
                },
                .tables = {
                        {
                                .name = RM_TABLE_KV,
                                .entries = RM_KV_ENTRIES,
                                .value_size = RM_KV_VALUE_SIZE,
                        },
                },
        };
        ret->spec = (struct shmring_spec) {
                .run_id = run_id,
                .generation = generation,
                .max_peers = nranks * PEERS_PER_RANK + PEERS_EXTRA,
                .n_channels = 2,
                .channels = ret->channels,
                .n_tables = 1,
                .tables = ret->tables,
        };
        return 0;
}
