/* SPDX-License-Identifier: MIT */
#include <string.h>
#include <sys/statvfs.h>

#include "log.h"
#include "options.h"
#include "rm_run_layout.h"
#include "run-segment.h"
#include "shmring.h"
#include "util.h"

/* The layout the workers' runtime expects, in one place (engine/run-layout.c). */
static int segment_layout(const struct run_options *o, int nproc, const char *run_id, uint64_t generation,
                          struct rm_run_spec *ret) {
        const struct rm_run_sizes sizes = {
                .slots = o->shm_slots,
                .slot_size = o->shm_slot_size,
                .sched_overflow = o->shm_overflow,
                .results_overflow = o->shm_queue_overflow,
                .kv_entries = o->shm_kv_entries,
                .kv_value_size = o->shm_kv_value_size,
        };

        return rm_run_spec((uint32_t) nproc, run_id, generation, &sizes, ret);
}

int run_segment_size(const struct run_options *o, int nproc, uint64_t *ret_size) {
        struct rm_run_spec layout;
        int r;

        r = segment_layout(o, nproc, "size", 0, &layout);
        if (r < 0)
                return r;
        return shmring_spec_size(&layout.spec, ret_size);
}

int run_segment_create(const struct run_options *o, int nproc, const char *run_id, uint64_t generation,
                       struct shmring **ret, uint64_t *ret_size) {
        struct rm_run_spec layout;
        uint64_t size = 0;
        int r;

        r = segment_layout(o, nproc, run_id, generation, &layout);
        if (r == 0)
                r = shmring_spec_size(&layout.spec, &size);
        if (r < 0)
                return log_error_errno(r, "the shared-memory layout is not valid (--shm-* options)");

        r = shmring_create(&layout.spec, ret);
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
