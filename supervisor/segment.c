/* SPDX-License-Identifier: MIT */
#include <string.h>
#include <sys/statvfs.h>

#include "log.h"
#include "options.h"
#include "segment.h"
#include "shmring.h"
#include "util.h"

/* The run's layout; spec points into it. */
struct segment_layout {
        struct shmring_channel_spec channels[2];
        struct shmring_table_spec tables[1];
        struct shmring_spec spec;
};

static void segment_layout_init(struct segment_layout *l, const struct run_options *o, int nproc, const char *run_id,
                                uint64_t generation) {
        const struct shmring_channel_spec channels[] = {
                {
                        .name = SEGMENT_CHANNEL_SCHED,
                        .kind = SHMRING_BROADCAST,
                        .slots = o->shm_slots,
                        .slot_size = o->shm_slot_size,
                        .overflow_size = o->shm_overflow,
                        .max_ports = (uint32_t) nproc,
                },
                {
                        .name = SEGMENT_CHANNEL_RESULTS,
                        .kind = SHMRING_QUEUE,
                        .slots = o->shm_slots,
                        .slot_size = o->shm_slot_size,
                        .overflow_size = o->shm_queue_overflow,
                        .max_ports = (uint32_t) nproc,
                },
        };
        const struct shmring_table_spec tables[] = {
                {
                        .name = SEGMENT_TABLE_KV,
                        .entries = o->shm_kv_entries,
                        .value_size = o->shm_kv_value_size,
                },
        };

        _Static_assert(sizeof(channels) == sizeof(l->channels) && sizeof(tables) == sizeof(l->tables),
                       "struct segment_layout holds every channel and table");
        memcpy(l->channels, channels, sizeof(channels));
        memcpy(l->tables, tables, sizeof(tables));
        l->spec = (struct shmring_spec) {
                .run_id = run_id,
                .generation = generation,
                /* Every worker, the scheduler, and room for helpers each may start. */
                .max_peers = (uint32_t) MAX(64, 2 * nproc + 8),
                .n_channels = ELEMENTSOF(channels),
                .channels = l->channels,
                .n_tables = o->shm_kv_entries > 0 ? ELEMENTSOF(tables) : 0,
                .tables = l->tables,
        };
}

int run_segment_size(const struct run_options *o, int nproc, uint64_t *ret_size) {
        struct segment_layout l;

        segment_layout_init(&l, o, nproc, "size", 0);
        return shmring_spec_size(&l.spec, ret_size);
}

int run_segment_create(const struct run_options *o, int nproc, const char *run_id, uint64_t generation,
                       struct shmring **ret, uint64_t *ret_size) {
        struct segment_layout l;
        uint64_t size = 0;
        int r;

        segment_layout_init(&l, o, nproc, run_id, generation);
        r = shmring_spec_size(&l.spec, &size);
        if (r < 0)
                return log_error_errno(r, "the shared-memory layout is not valid (--shm-* options)");

        r = shmring_create(&l.spec, ret);
        if (r == -ENOSPC) {
                char need[32], avail[32], total[32];
                struct statvfs sv;

                if (statvfs("/dev/shm", &sv) == 0) {
                        format_bytes(avail, sizeof(avail), (uint64_t) sv.f_bavail * sv.f_frsize);
                        format_bytes(total, sizeof(total), (uint64_t) sv.f_blocks * sv.f_frsize);
                } else {
                        strcpy(avail, "?");
                        strcpy(total, "?");
                }
                log_error("/dev/shm is too small for this run: its segment needs %s (%d ranks), /dev/shm has %s "
                          "free of %s.  Fix: give the container a larger /dev/shm (docker run --shm-size=1g, or "
                          "--ipc=host), or shrink the segment with smaller --shm-overflow, --shm-queue-overflow, "
                          "--shm-slots, --shm-slot-size or --shm-kv-entries (or --no-shm when the workers do not use it)",
                          format_bytes(need, sizeof(need), size), nproc, avail, total);
                return r;
        }
        if (r < 0)
                return log_error_errno(r, "cannot create the run's shared-memory segment (%s of /dev/shm)",
                                       format_bytes((char[32]) {}, 32, size));
        *ret_size = size;
        return 0;
}
