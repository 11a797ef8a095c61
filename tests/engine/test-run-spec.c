/* SPDX-License-Identifier: MIT */
/* rm_run_spec(): the run segment's channels and table, for any rank count. */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rank-launcher.h"
#include "rm_run_layout.h"
#include "shmring.h"

int main(void) {
        static const uint32_t counts[] = { 1, 2, 4, 8, 64 };
        struct rm_run_spec spec;
        char run_id[64];

        CHECK(rm_run_spec(0, "r", 0, NULL, &spec) == -EINVAL);
        CHECK(rm_run_spec(RM_RUN_MAX_RANKS + 1, "r", 0, NULL, &spec) == -EINVAL);
        CHECK(rm_run_spec(2, "bad/id", 0, NULL, &spec) == -EINVAL);
        CHECK(rm_run_spec(2, "", 0, NULL, &spec) == -EINVAL);
        CHECK(rm_run_spec(2, NULL, 0, NULL, &spec) == -EINVAL);
        CHECK(rm_run_spec(2, "r", 0, NULL, NULL) == -EINVAL);
        CHECK(rm_run_spec(RM_RUN_MAX_RANKS, "r", 0, NULL, &spec) == 0);

        for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
                struct shmring *s;
                struct shmring_info info;
                uint64_t size;
                bool sched = false, results = false;
                char value[RM_KV_VALUE_SIZE + 1];

                snprintf(run_id, sizeof(run_id), "spec-%d-%u", (int) getpid(), counts[i]);
                CHECK(rm_run_spec(counts[i], run_id, 7, NULL, &spec) == 0);
                CHECK(shmring_spec_size(&spec.spec, &size) == 0);
                CHECK(shmring_create(&spec.spec, &s) == 0);
                CHECK(shmring_get_info(s, &info) == 0);
                CHECK(info.generation == 7);
                CHECK(info.max_peers >= 2 * counts[i] + 1);
                printf("%3u ranks: %6.1f MiB of /dev/shm, %u peers\n", counts[i], (double) size / (1 << 20),
                       info.max_peers);
                for (uint32_t c = 0;; c++) {
                        struct shmring_channel_info ci;

                        if (shmring_channel_info(s, c, &ci) < 0)
                                break;
                        if (strcmp(ci.name, RM_CHANNEL_SCHED) == 0) {
                                CHECK(ci.kind == SHMRING_BROADCAST);
                                CHECK(ci.max_ports == counts[i]);
                                sched = true;
                        } else if (strcmp(ci.name, RM_CHANNEL_RESULTS) == 0) {
                                CHECK(ci.kind == SHMRING_QUEUE);
                                CHECK(ci.max_ports == counts[i]);
                                results = true;
                        }
                }
                CHECK(sched && results);
                /* The table takes values of exactly RM_KV_VALUE_SIZE bytes, no more. */
                memset(value, 'v', sizeof(value));
                CHECK(shmring_kv_put(s, RM_TABLE_KV, "k", value, RM_KV_VALUE_SIZE) > 0);
                CHECK(shmring_kv_put(s, RM_TABLE_KV, "k", value, RM_KV_VALUE_SIZE + 1) == -EMSGSIZE);
                CHECK(shmring_unlink(s) == 0);
                shmring_close(s);
        }
        printf("ok\n");
        return 0;
}
