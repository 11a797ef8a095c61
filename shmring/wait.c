/* SPDX-License-Identifier: MIT */
/* Waiting: spin for a budget, then sleep on a futex; the environment's defaults. */

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* The defaults, documented in shmring(3). */
#define DEFAULT_SPIN_NS INT64_C(50000)          /* 50 us of spinning before sleeping */
#define DEFAULT_LIVENESS_NS INT64_C(100000000)  /* a sleeper checks its peers every 100 ms */
#define MAX_LIVENESS_NS (INT64_C(3600) * 1000000000)

uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* 0 when woken (or the word had changed), -ETIMEDOUT, -EINTR. */
int futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns) {
        struct timespec ts, *tsp = NULL;

        if (timeout_ns >= 0) {
                ts.tv_sec = timeout_ns / 1000000000;
                ts.tv_nsec = timeout_ns % 1000000000;
                tsp = &ts;
        }
        /* Not FUTEX_PRIVATE: the word is shared between processes. */
        if (syscall(SYS_futex, word, FUTEX_WAIT, expected, tsp, NULL, 0) == 0)
                return 0;
        switch (errno) {
        case EAGAIN:
                return 0;
        case ETIMEDOUT:
                return -ETIMEDOUT;
        case EINTR:
                return -EINTR;
        default:
                return -errno;
        }
}

void futex_wake(_Atomic uint32_t *word, int n) {
        (void) syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
}

static int64_t env_int64(const char *name, int64_t def, int64_t min, int64_t max, int64_t scale) {
        const char *v = secure_getenv(name);
        char *end;
        long long x;

        if (!v || !*v)
                return def;
        errno = 0;
        x = strtoll(v, &end, 10);
        /* An unparsable value falls back to the default rather than failing every call. */
        if (errno != 0 || *end != '\0' || x < min || x > max / scale)
                return def;
        return (int64_t) x * scale;
}

static int64_t spin_default = DEFAULT_SPIN_NS;
static int64_t liveness_default = DEFAULT_LIVENESS_NS;
static pthread_once_t defaults_once = PTHREAD_ONCE_INIT;

static void read_defaults(void) {
        spin_default = env_int64("SHMRING_SPIN_NS", DEFAULT_SPIN_NS, 0, INT64_MAX, 1);
        liveness_default = env_int64("SHMRING_LIVENESS_MS", DEFAULT_LIVENESS_NS, 1, MAX_LIVENESS_NS, 1000000);
}

int64_t default_spin_ns(void) {
        pthread_once(&defaults_once, read_defaults);
        return spin_default;
}

int64_t default_liveness_ns(void) {
        pthread_once(&defaults_once, read_defaults);
        return liveness_default;
}

int wait_no_peers(void *ctx) {
        return 0;
}

static int64_t remaining(uint64_t deadline) {
        uint64_t now;

        if (deadline == UINT64_MAX)
                return INT64_MAX;
        now = now_ns();
        return now >= deadline ? 0 : (int64_t) (deadline - now);
}

/*
 * Whether to look at the peers now: every liveness interval, and at once
 * after shmring_mark_dead() declared someone dead.
 */
static bool liveness_due(struct port *p, uint64_t now) {
        uint32_t epoch = atomic_load_explicit(&p->seg->hdr->dead_epoch, memory_order_acquire);

        if (now - p->last_liveness_check < (uint64_t) p->liveness_ns && epoch == p->seen_dead_epoch)
                return false;
        p->last_liveness_check = now;
        p->seen_dead_epoch = epoch;
        return true;
}

int port_wait(struct port *p, struct shm_wake *wake, const struct wait_ops *ops, void *ctx,
              int64_t timeout_ns) {
        uint64_t start, deadline, spin_end;
        int r;

        if (timeout_ns < SHMRING_INFINITE)
                return -EINVAL;
        r = ops->ready(ctx);
        if (r != 0)
                return r < 0 ? r : 0;
        if (timeout_ns == 0) {
                /* A poller learns of a dead peer too, at the same rate as a sleeper. */
                if (liveness_due(p, now_ns())) {
                        r = ops->check_peers(ctx);
                        if (r != 0)
                                return r < 0 ? r : 0;
                }
                return -EAGAIN;
        }

        start = now_ns();
        deadline = timeout_ns < 0 ? UINT64_MAX : start + (uint64_t) timeout_ns;

        /* Spin: the message is usually microseconds away in a busy job. */
        if (p->spin_ns > 0) {
                spin_end = p->spin_ns == SHMRING_SPIN_FOREVER ? UINT64_MAX : start + (uint64_t) p->spin_ns;
                if (spin_end > deadline)
                        spin_end = deadline;
                for (unsigned i = 1;; i++) {
                        cpu_relax();
                        r = ops->ready(ctx);
                        if (r != 0)
                                return r < 0 ? r : 0;
                        if ((i & 127) == 0) {
                                uint64_t now = now_ns();

                                if (now >= spin_end)
                                        break;
                                /* A spinner checks on its peers too, at the same rate as a sleeper. */
                                if (liveness_due(p, now)) {
                                        r = ops->check_peers(ctx);
                                        if (r != 0)
                                                return r < 0 ? r : 0;
                                }
                        }
                }
                if (deadline != UINT64_MAX && now_ns() >= deadline)
                        return -ETIMEDOUT;
        }

        /* Sleep.  Announce ourselves before the last look, so a waker either
         * sees a sleeper or we see its store (both sides use seq_cst). */
        for (;;) {
                int64_t left, slice;
                uint32_t seen;

                atomic_fetch_add_explicit(&wake->sleepers, 1, memory_order_seq_cst);
                /* Pairs with the fence in wake_sleepers(): our count is visible before
                 * we look at the ring, even where an RMW does not order a later load. */
                atomic_thread_fence(memory_order_seq_cst);
                seen = atomic_load_explicit(&wake->seq, memory_order_acquire);
                r = ops->ready(ctx);
                if (r == 0 && liveness_due(p, now_ns()))
                        r = ops->check_peers(ctx);
                if (r != 0) {
                        atomic_fetch_sub_explicit(&wake->sleepers, 1, memory_order_relaxed);
                        return r < 0 ? r : 0;
                }

                left = remaining(deadline);
                if (left == 0) {
                        atomic_fetch_sub_explicit(&wake->sleepers, 1, memory_order_relaxed);
                        return -ETIMEDOUT;
                }
                slice = left < p->liveness_ns ? left : p->liveness_ns;
                r = futex_wait(&wake->seq, seen, slice);
                atomic_fetch_sub_explicit(&wake->sleepers, 1, memory_order_relaxed);
                if (r == -EINTR)
                        return r;
                if (r < 0 && r != -ETIMEDOUT)
                        return r;
        }
}
