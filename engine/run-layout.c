/* SPDX-License-Identifier: MIT */
/* The run segment's channels and table, sized for a number of ranks. */

#include <errno.h>
#include <string.h>

#include "rm_run_layout.h"

/* The ranks, a helper process each, the supervisor and a few observers. */
#define PEERS_PER_RANK 2
#define PEERS_EXTRA 16
#define PEERS_MIN 64

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

int rm_run_spec(uint32_t nranks, const char *run_id, uint64_t generation, const struct rm_run_sizes *sizes,
                struct rm_run_spec *ret) {
        const struct rm_run_sizes z = sizes ? *sizes : RM_RUN_SIZES_DEFAULT;
        uint32_t peers;

        if (nranks == 0 || nranks > RM_RUN_MAX_RANKS || !run_id_valid(run_id) || !ret)
                return -EINVAL;
        peers = nranks * PEERS_PER_RANK + PEERS_EXTRA;

        *ret = (struct rm_run_spec) {
                .channels = {
                        {
                                .name = RM_CHANNEL_SCHED,
                                .kind = SHMRING_BROADCAST,
                                .slots = z.slots,
                                .slot_size = z.slot_size,
                                .overflow_size = z.sched_overflow,
                                .max_ports = nranks,
                        },
                        {
                                .name = RM_CHANNEL_RESULTS,
                                .kind = SHMRING_QUEUE,
                                .slots = z.slots,
                                .slot_size = z.slot_size,
                                .overflow_size = z.results_overflow,
                                .max_ports = nranks,
                        },
                },
                .tables = {
                        {
                                .name = RM_TABLE_KV,
                                .entries = z.kv_entries,
                                .value_size = z.kv_value_size,
                        },
                },
        };
        ret->spec = (struct shmring_spec) {
                .run_id = run_id,
                .generation = generation,
                .max_peers = peers > PEERS_MIN ? peers : PEERS_MIN,
                .n_channels = 2,
                .channels = ret->channels,
                .n_tables = z.kv_entries > 0 ? 1 : 0,
                .tables = ret->tables,
        };
        return 0;
}
