/* SPDX-License-Identifier: MIT */
/*
 * Waiting: spin or yield for a budget as the port's policy says, then sleep
 * on a futex; the automatic policy's inputs; the environment's defaults.
 */

#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <string.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "wait-policy.h"

/* The defaults, documented in shmring(3). */
#define DEFAULT_SPIN_NS INT64_C(50000)          /* 50 us of spinning before yielding or sleeping */
#define DEFAULT_YIELD_NS INT64_C(200000)        /* 200 us of yielding before sleeping */
#define MAX_YIELD_US (INT64_C(3600) * 1000000)
#define AUTO_RECHECK_NS INT64_C(100000000)      /* the automatic policy looks again every 100 ms */
#define YIELD_WALL_MIN_NS UINT64_C(1000000)     /* a yield phase's wall-clock cap is at least 1 ms */
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

/* ------------------------------------------------ asymmetric barriers */

static pid_t light_barrier_pid;         /* the process that registered (a fork's child registers again) */
static pthread_mutex_t light_barrier_lock = PTHREAD_MUTEX_INITIALIZER;

bool light_barrier_register(void) {
        pid_t pid = getpid();
        bool ok;

        pthread_mutex_lock(&light_barrier_lock);
        if (light_barrier_pid != pid &&
            syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0)
                light_barrier_pid = pid;
        ok = light_barrier_pid == pid;
        pthread_mutex_unlock(&light_barrier_lock);
        return ok;
}

int heavy_barrier(void) {
        if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) < 0)
                return -errno;
        return 0;
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

/* SHMRING_WAIT: a policy's name; anything else leaves the default (auto). */
static uint32_t env_policy(const char *name) {
        static const char *const names[] = {
                [SHMRING_WAIT_AUTO] = "auto",
                [SHMRING_WAIT_SPIN] = "spin",
                [SHMRING_WAIT_YIELD] = "yield",
                [SHMRING_WAIT_BLOCK] = "block",
        };
        const char *v = secure_getenv(name);

        if (v)
                for (uint32_t i = 0; i < ELEMENTSOF(names); i++)
                        if (strcmp(v, names[i]) == 0)
                                return i;
        return SHMRING_WAIT_AUTO;
}

static int64_t spin_default = DEFAULT_SPIN_NS;
static int64_t yield_default = DEFAULT_YIELD_NS;
static uint32_t policy_default = SHMRING_WAIT_AUTO;
static int64_t liveness_default = DEFAULT_LIVENESS_NS;
static pthread_once_t defaults_once = PTHREAD_ONCE_INIT;

static void read_defaults(void) {
        spin_default = env_int64("SHMRING_SPIN_NS", DEFAULT_SPIN_NS, 0, INT64_MAX, 1);
        yield_default = env_int64("SHMRING_YIELD_US", DEFAULT_YIELD_NS, 0, MAX_YIELD_US * 1000, 1000);
        policy_default = env_policy("SHMRING_WAIT");
        liveness_default = env_int64("SHMRING_LIVENESS_MS", DEFAULT_LIVENESS_NS, 1, MAX_LIVENESS_NS, 1000000);
}

int64_t default_spin_ns(void) {
        pthread_once(&defaults_once, read_defaults);
        return spin_default;
}

int64_t default_yield_ns(void) {
        pthread_once(&defaults_once, read_defaults);
        return yield_default;
}

uint32_t default_wait_policy(void) {
        pthread_once(&defaults_once, read_defaults);
        return policy_default;
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

/* ------------------------------------------------- automatic policy */

/* CPUs this process may run on. */
static unsigned affinity_cpus(void) {
        cpu_set_t set;
        long n;

        if (sched_getaffinity(0, sizeof(set), &set) == 0)
                return (unsigned) CPU_COUNT(&set);
        n = sysconf(_SC_NPROCESSORS_ONLN);   /* more CPUs than a cpu_set_t holds */
        return n > 0 ? (unsigned) n : 1;
}

/* Tasks runnable on the machine now (/proc/loadavg's fourth field: "R/total"); 0 when unknown. */
static unsigned runnable_tasks(void) {
        char buf[128], *p;
        unsigned long running;
        ssize_t n;
        int fd;

        fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        p = buf;
        for (int field = 0; field < 3; field++) {
                p = strchr(p, ' ');
                if (!p)
                        return 0;
                p++;
        }
        errno = 0;
        running = strtoul(p, NULL, 10);
        return errno == 0 && running < UINT_MAX ? (unsigned) running : 0;
}

/* The policy of this wait: the port's, or AUTO's decision (SPIN or YIELD), re-made every 100 ms. */
static uint32_t port_policy(struct port *p, uint64_t now) {
        if (p->wait != SHMRING_WAIT_AUTO)
                return p->wait;
        if (p->auto_decided == 0 || now - p->auto_decided >= (uint64_t) AUTO_RECHECK_NS) {
                struct wait_inputs in = {
                        .cpus = affinity_cpus(),
                        .runnable = runnable_tasks(),
                        .peers = peer_count_live(p->seg),
                };

                p->auto_spins = wait_policy_choose(&in) == SHMRING_WAIT_SPIN;
                p->auto_decided = now ? now : 1;
        }
        return p->auto_spins ? SHMRING_WAIT_SPIN : SHMRING_WAIT_YIELD;
}

/* ------------------------------------------------------------ waiting */

/*
 * The active phases: spin (pause between looks), then, for AUTO, yield
 * (sched_yield between looks); a forced policy has one phase.  Returns
 * > 0 or < 0 as ready()/check_peers() did, -ETIMEDOUT, or 0 when the
 * budget is spent and the caller should sleep.
 */
/* CPU time this thread has used (a yielder's budget is CPU, not wall time). */
static uint64_t thread_cpu_ns(void) {
        struct timespec ts;

        if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
                return now_ns();
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/*
 * A yield phase also ends after 10 times its budget in wall time (1 ms at
 * least): a signal that arrives while a waiter yields only runs its handler,
 * and the wait must reach the futex, where the next one ends it with -EINTR,
 * within a time a caller can count on.
 */
static uint64_t yield_wall_end(const struct port *p, uint64_t now) {
        uint64_t cap = (uint64_t) p->yield_ns * 10;

        return now + (cap > YIELD_WALL_MIN_NS ? cap : YIELD_WALL_MIN_NS);
}

static int wait_active(struct port *p, const struct wait_ops *ops, void *ctx, uint64_t start, uint64_t deadline) {
        bool forever = p->spin_ns == SHMRING_SPIN_FOREVER;
        uint32_t phase;
        uint64_t phase_end, yield_cpu_end = 0;
        int r;

        /* No active wait asked for (SHMRING_SPIN_NEVER, or a 0 budget): sleep at once. */
        if (p->spin_ns == 0 && p->wait != SHMRING_WAIT_YIELD)
                return 0;
        phase = port_policy(p, start);
        if (phase == SHMRING_WAIT_SPIN)
                phase_end = forever ? UINT64_MAX : start + (uint64_t) p->spin_ns;
        else if (phase == SHMRING_WAIT_YIELD) {
                phase_end = forever ? UINT64_MAX : yield_wall_end(p, start);
                /* The CPU budget starts at the first look at the clocks (below), not
                 * here: the first yield is in the latency path of a process that
                 * shares its CPU with the one it waits for, and this clock is a
                 * system call. */
                yield_cpu_end = forever ? UINT64_MAX : 0;
        } else
                return 0;

        for (unsigned i = 1;; i++) {
                uint64_t now;

                if (phase == SHMRING_WAIT_SPIN)
                        cpu_relax();
                else
                        sched_yield();
                r = ops->ready(ctx);
                if (r != 0)
                        return r;
                /* A yield is a system call: look at the clock every time; a spin every 128 looks. */
                if (phase == SHMRING_WAIT_SPIN && (i & 127) != 0)
                        continue;
                now = now_ns();
                if (now >= deadline)
                        return -ETIMEDOUT;
                /* A waiter checks on its peers too, at the same rate as a sleeper. */
                if (liveness_due(p, now)) {
                        r = ops->check_peers(ctx);
                        if (r != 0)
                                return r;
                }
                if (forever && p->wait == SHMRING_WAIT_AUTO) {
                        phase = port_policy(p, now);    /* cores came free, or were taken */
                        continue;
                }
                /* A yielder's budget is the CPU it used: on a busy machine each yield
                 * hands the CPU to others for a while, and that costs nothing. */
                if (phase == SHMRING_WAIT_YIELD && (i & 15) == 0) {
                        if (yield_cpu_end == 0)
                                yield_cpu_end = thread_cpu_ns() + (uint64_t) p->yield_ns;
                        else if (thread_cpu_ns() >= yield_cpu_end)
                                return 0;
                }
                if (now < phase_end)
                        continue;
                if (phase == SHMRING_WAIT_SPIN && p->wait == SHMRING_WAIT_AUTO && p->yield_ns > 0) {
                        phase = SHMRING_WAIT_YIELD;
                        phase_end = yield_wall_end(p, now);
                        yield_cpu_end = thread_cpu_ns() + (uint64_t) p->yield_ns;
                        continue;
                }
                return 0;
        }
}

int port_wait(struct port *p, struct shm_wake *wake, const struct wait_ops *ops, void *ctx,
              int64_t timeout_ns) {
        uint64_t start, deadline;
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

        /* Spin or yield: the message is usually microseconds away in a busy job. */
        r = wait_active(p, ops, ctx, start, deadline);
        if (r != 0)
                return r < 0 ? r : 0;

        /* Sleep.  Announce ourselves before the last look, so a waker either
         * sees a sleeper or we see its store (both sides use seq_cst). */
        for (;;) {
                int64_t left, slice;
                uint32_t seen;
                bool heavy_failed;

                atomic_fetch_add_explicit(&wake->sleepers, 1, memory_order_seq_cst);
                /* Pairs with the fence in wake_sleepers(): our count is visible before
                 * we look at the ring, even where an RMW does not order a later load. */
                atomic_thread_fence(memory_order_seq_cst);
                /* Wakers without a fence of their own: the barrier is ours to make. */
                heavy_failed = ops->light_wakers && heavy_barrier() < 0;
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
                if (heavy_failed && slice > HEAVY_BARRIER_FALLBACK_NS)
                        slice = HEAVY_BARRIER_FALLBACK_NS;
                r = futex_wait(&wake->seq, seen, slice);
                atomic_fetch_sub_explicit(&wake->sleepers, 1, memory_order_relaxed);
                if (r == -EINTR)
                        return r;
                if (r < 0 && r != -ETIMEDOUT)
                        return r;
        }
}
