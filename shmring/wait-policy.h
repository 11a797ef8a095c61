/* SPDX-License-Identifier: MIT */
#ifndef SHMRING_WAIT_POLICY_H
#define SHMRING_WAIT_POLICY_H

/*
 * The automatic wait policy's decision, as a pure function of what the
 * waiter can observe, so that it can be tested without a loaded machine.
 * wait.c gathers the inputs (sched_getaffinity, /proc/loadavg, the
 * segment's peer records) and re-decides every liveness interval.
 *
 * Spinning pays only when every process that may be waiting or working at
 * once has a core of its own: a spinner on a shared core holds the CPU that
 * the process it waits for needs, for a whole time slice.  So spin when
 *   - there are at least 2 CPUs (on one, the peer cannot run while we spin),
 *   - the job's attached processes fit on the CPUs (peers <= cpus), and
 *   - the machine's runnable tasks, ourselves included, leave no CPU
 *     oversubscribed (runnable <= cpus);
 * otherwise yield (sched_yield between looks), which gives the core to
 * whoever is runnable and still notices a message within a time slice.
 * Both end in a futex sleep once their budget is spent.
 */

#include <stdbool.h>

#include "shmring.h"

struct wait_inputs {
        unsigned cpus;          /* CPUs this process may run on (its affinity mask) */
        unsigned runnable;      /* tasks runnable on the machine now, the caller included */
        unsigned peers;         /* live processes attached to the segment, the caller included */
};

static inline bool wait_cores_free(const struct wait_inputs *in) {
        return in->cpus >= 2 && in->peers <= in->cpus && in->runnable <= in->cpus;
}

/* SHMRING_WAIT_SPIN (spin, then yield, then sleep) or SHMRING_WAIT_YIELD (yield, then sleep). */
static inline enum shmring_wait_policy wait_policy_choose(const struct wait_inputs *in) {
        return wait_cores_free(in) ? SHMRING_WAIT_SPIN : SHMRING_WAIT_YIELD;
}

#endif
