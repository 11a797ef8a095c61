/* SPDX-License-Identifier: MIT */
/*
 * Wait policies (enum shmring_wait_policy):
 *   - the automatic decision (wait-policy.h) spins only when the job's
 *     processes and the machine's runnable tasks fit on the CPUs, and
 *     yields otherwise (readers > cores, a loaded machine, one CPU);
 *   - each forced policy does what it says: a spinner never leaves the CPU
 *     and works in user space, a yielder works in the kernel
 *     (sched_yield) without sleeping, a blocker sleeps at once;
 *   - SHMRING_WAIT forces a policy from the environment;
 *   - under every policy, messages flow between processes (readers and a
 *     writer on a full ring both wait), a blocked reader burns no CPU over
 *     an idle second once its budget is spent (measured from outside, in
 *     /proc/PID/schedstat or /proc/PID/stat), and a writer or reader that
 *     dies is noticed, in the active phase as in the sleep.
 */
#include <sched.h>
#include <sys/resource.h>

#include "payload.h"
#include "tap.h"
#include "wait-policy.h"

#define MS(n) ((int64_t) (n) * INT64_C(1000000))

static const char *const policy_names[] = {
        [SHMRING_WAIT_AUTO] = "auto",
        [SHMRING_WAIT_SPIN] = "spin",
        [SHMRING_WAIT_YIELD] = "yield",
        [SHMRING_WAIT_BLOCK] = "block",
};

static const struct shmring_channel_spec channels[] = {
        { .name = "bc", .kind = SHMRING_BROADCAST, .slots = 8, .slot_size = 64, .overflow_size = 4096,
          .max_ports = 2 },
};

static struct shmring *make_segment(void) {
        struct shmring_spec spec = { .run_id = tap_run_id(), .n_channels = 1, .channels = channels };
        struct shmring *s = NULL;

        CHECK_OK(shmring_create(&spec, &s));
        return s;
}

static struct shmring *attach(const char *name) {
        struct shmring *s = NULL;

        CHECK_OK(shmring_attach(name, 0, &s));
        return s;
}

/* ------------------------------------------------ the pure decision */

static void test_choose(void) {
        static const struct {
                struct wait_inputs in;
                enum shmring_wait_policy want;
                const char *why;
        } cases[] = {
                { { .cpus = 2, .runnable = 1, .peers = 2 }, SHMRING_WAIT_SPIN, "writer + 1 reader, 2 idle cores" },
                { { .cpus = 2, .runnable = 2, .peers = 2 }, SHMRING_WAIT_SPIN, "both spinning on 2 cores" },
                { { .cpus = 2, .runnable = 1, .peers = 3 }, SHMRING_WAIT_YIELD, "2 readers + writer on 2 cores" },
                { { .cpus = 2, .runnable = 1, .peers = 5 }, SHMRING_WAIT_YIELD, "4 readers + writer on 2 cores" },
                { { .cpus = 2, .runnable = 3, .peers = 2 }, SHMRING_WAIT_YIELD, "another task takes a core" },
                { { .cpus = 1, .runnable = 1, .peers = 1 }, SHMRING_WAIT_YIELD, "one CPU: the peer cannot run" },
                { { .cpus = 64, .runnable = 12, .peers = 9 }, SHMRING_WAIT_SPIN, "1->8 on a 64-core host" },
                { { .cpus = 8, .runnable = 9, .peers = 2 }, SHMRING_WAIT_YIELD, "a loaded 8-core host" },
                { { .cpus = 8, .runnable = 0, .peers = 9 }, SHMRING_WAIT_YIELD, "load unknown, 9 peers on 8" },
                { { .cpus = 8, .runnable = 0, .peers = 8 }, SHMRING_WAIT_SPIN, "load unknown, 8 peers on 8" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                enum shmring_wait_policy got = wait_policy_choose(&cases[i].in);

                if (got != cases[i].want)
                        tap_fail(__FILE__, __LINE__, "%s (cpus %u, runnable %u, peers %u): %s, expected %s",
                                 cases[i].why, cases[i].in.cpus, cases[i].in.runnable, cases[i].in.peers,
                                 policy_names[got], policy_names[cases[i].want]);
        }
}

/* ------------------------------------------- what a wait looks like */

struct usage {
        double user_ms, sys_ms;
        long slept;                     /* voluntary context switches */
};

static void usage_now(struct usage *u) {
        struct rusage ru;

        CHECK_SYS(getrusage(RUSAGE_THREAD, &ru));
        u->user_ms = (double) ru.ru_utime.tv_sec * 1e3 + (double) ru.ru_utime.tv_usec / 1e3;
        u->sys_ms = (double) ru.ru_stime.tv_sec * 1e3 + (double) ru.ru_stime.tv_usec / 1e3;
        u->slept = ru.ru_nvcsw;
}

/* Waits 300 ms on an empty channel with port options o; returns what it cost. */
static struct usage idle_wait(struct shmring *s, const struct shmring_port_opts *o) {
        struct shmring_rx *rx = NULL;
        struct usage a, b;
        unsigned char buf[64];

        CHECK_OK(shmring_rx_open(s, "bc", o, &rx));
        usage_now(&a);
        CHECK_ERR(shmring_recv(rx, buf, sizeof(buf), MS(300)), -ETIMEDOUT);
        usage_now(&b);
        rx = shmring_rx_close(rx);
        return (struct usage) { b.user_ms - a.user_ms, b.sys_ms - a.sys_ms, b.slept - a.slept };
}

static void check_spun(const struct usage *u, const char *what) {
        tap_note("%s: user %.1f ms, system %.1f ms, slept %ld times", what, u->user_ms, u->sys_ms, u->slept);
        if (u->slept != 0)
                tap_fail(__FILE__, __LINE__, "%s should spin without sleeping", what);
        if (u->user_ms + u->sys_ms >= 5 && u->sys_ms >= 0.25 * (u->user_ms + u->sys_ms))
                tap_fail(__FILE__, __LINE__, "%s should spin in user space", what);
}

/*
 * A yielder never sleeps and works in the kernel.  CPU time is charged at the
 * timer tick to whoever runs then, in the mode it runs in; on a busy machine
 * a yielder is rarely the one running at a tick while inside sched_yield(),
 * so one wait can read as user time: a wait counts as yielding when any of
 * three shows it (a spinner never does: it makes no system calls).  With
 * almost no CPU at all (< 5 ms in 300) only the no-sleep part is checked.
 */
static bool looks_yielded(const struct usage *u, const char *what) {
        tap_note("%s: user %.1f ms, system %.1f ms, slept %ld times", what, u->user_ms, u->sys_ms, u->slept);
        if (u->slept != 0)
                tap_fail(__FILE__, __LINE__, "%s should call sched_yield() without sleeping", what);
        return u->user_ms + u->sys_ms < 5 || u->sys_ms >= 0.25 * (u->user_ms + u->sys_ms);
}

static void check_yields(struct shmring *s, const struct shmring_port_opts *o, const char *what) {
        for (int attempt = 0; attempt < 3; attempt++) {
                struct usage u = idle_wait(s, o);

                if (looks_yielded(&u, what))
                        return;
        }
        tap_fail(__FILE__, __LINE__, "%s should spend its time in sched_yield()", what);
}

static void check_slept(const struct usage *u, const char *what) {
        tap_note("%s: user %.1f ms, system %.1f ms, slept %ld times", what, u->user_ms, u->sys_ms, u->slept);
        if (u->slept < 1 || u->user_ms + u->sys_ms > 20)
                tap_fail(__FILE__, __LINE__, "%s should sleep at once", what);
}

/* Budgets longer than the 300 ms wait: what the wait does is its active phase. */
static void test_forced_policies(void) {
        struct shmring *s = make_segment();
        struct shmring_port_opts o = { .index = -1, .spin_ns = MS(1000), .yield_us = 1000000 };
        struct usage u;

        o.wait = SHMRING_WAIT_SPIN;
        u = idle_wait(s, &o);
        check_spun(&u, "forced spin");
        o.wait = SHMRING_WAIT_YIELD;
        check_yields(s, &o, "forced yield");
        o.wait = SHMRING_WAIT_BLOCK;
        u = idle_wait(s, &o);
        check_slept(&u, "forced block");
        /* The old way to ask for no active wait still sleeps at once under auto. */
        o = (struct shmring_port_opts) { .index = -1, .spin_ns = SHMRING_SPIN_NEVER };
        u = idle_wait(s, &o);
        check_slept(&u, "auto with SHMRING_SPIN_NEVER");
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

/*
 * On one CPU the automatic policy must not spin: pinned to a single CPU,
 * its wait looks like a yield (in the kernel, not sleeping) even with a
 * spin budget as long as the wait.
 */
static void test_auto_one_cpu(void) {
        struct shmring *s = make_segment();
        pid_t pid = tap_fork();

        if (pid == 0) {
                struct shmring_port_opts o = { .index = -1, .spin_ns = MS(1000), .yield_us = 1000000 };
                struct shmring *c = attach(shmring_name(s));
                cpu_set_t set;

                CHECK_SYS(sched_getaffinity(0, sizeof(set), &set));
                for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
                        if (CPU_ISSET(cpu, &set)) {
                                CPU_ZERO(&set);
                                CPU_SET(cpu, &set);
                                break;
                        }
                CHECK_SYS(sched_setaffinity(0, sizeof(set), &set));
                check_yields(c, &o, "auto on one CPU");
                c = shmring_close(c);
                _exit(0);
        }
        CHECK_CHILD_OK(pid);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

/* SHMRING_WAIT=block, read once per process: a fresh process, exec'd with --env-child. */
static int env_child(void) {
        struct shmring *s = make_segment();
        struct shmring_port_opts o = { .index = -1, .spin_ns = MS(1000), .yield_us = 1000000 };
        struct usage u;

        u = idle_wait(s, &o);
        check_slept(&u, "SHMRING_WAIT=block with a 1 s spin budget");
        /* A port's own policy wins over the environment's. */
        o.wait = SHMRING_WAIT_SPIN;
        u = idle_wait(s, &o);
        check_spun(&u, "a port's forced spin under SHMRING_WAIT=block");
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
        return 0;
}

static void test_env(void) {
        pid_t pid = tap_fork();

        if (pid == 0) {
                char *argv[] = { (char *) "/proc/self/exe", (char *) "--env-child", NULL };
                setenv("SHMRING_WAIT", "block", 1);
                execv("/proc/self/exe", argv);
                _exit(99);
        }
        CHECK_CHILD_OK(pid);
}

/* ------------------------------------------------------- messages flow */

#define FLOW_MESSAGES 3000

/*
 * A writer process streams messages of mixed sizes (some through the
 * overflow area) with pauses, to a reader in this one: the reader waits
 * between bursts (sometimes past its budget, into the futex), the writer
 * waits whenever the 8 slots are full.
 */
static void test_flow(uint32_t policy) {
        struct shmring *s = make_segment();
        struct shmring_port_opts o = { .index = -1, .wait = policy };
        struct msg_sizes sz = { .slot_size = 64, .max_message = 2000, .overflow_per_mille = 100 };
        struct shmring_rx *rx = NULL;
        unsigned char buf[2000];
        pid_t pid;

        CHECK_OK(shmring_rx_open(s, "bc", &o, &rx));
        pid = tap_fork();
        if (pid == 0) {
                struct shmring *c = attach(shmring_name(s));
                struct shmring_tx *tx = NULL;

                CHECK_OK(shmring_tx_open(c, "bc", &o, &tx));
                for (uint64_t i = 0; i < FLOW_MESSAGES; i++) {
                        size_t len = msg_len(&sz, 1, i);

                        msg_fill(buf, len, 1, i);
                        CHECK_OK(shmring_send(tx, buf, len, MS(20000)));
                        if (i % 500 == 499)
                                tap_sleep_ms(2);                /* the reader goes to sleep */
                }
                tx = shmring_tx_close(tx);
                c = shmring_close(c);
                _exit(0);
        }
        for (uint64_t i = 0; i < FLOW_MESSAGES; i++) {
                ssize_t n = shmring_recv(rx, buf, sizeof(buf), MS(20000));
                const char *bad;

                if (n < 0)
                        tap_fail(__FILE__, __LINE__, "%s: message %" PRIu64 ": %s", policy_names[policy], i,
                                 tap_errno_name((int) -n));
                bad = msg_check(buf, (size_t) n, &sz, 1, i);
                if (bad)
                        tap_fail(__FILE__, __LINE__, "%s: message %" PRIu64 ": %s", policy_names[policy], i, bad);
                if (i % 700 == 699)
                        tap_sleep_ms(2);                        /* the writer fills the ring and waits */
        }
        CHECK_ERR(shmring_recv(rx, buf, sizeof(buf), MS(20000)), -EPIPE);
        CHECK_CHILD_OK(pid);
        rx = shmring_rx_close(rx);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

/* ------------------------------------------------ idle CPU, from outside */

/* CPU time a process has used, in ns: schedstat's run time, else stat's ticks. */
static uint64_t process_cpu_ns(pid_t pid) {
        char path[64], buf[1024];
        unsigned long long run = 0, utime = 0, stime = 0;
        FILE *f;
        char *p;

        snprintf(path, sizeof(path), "/proc/%d/schedstat", (int) pid);
        f = fopen(path, "re");
        if (f) {
                int ok = fscanf(f, "%llu", &run) == 1;

                fclose(f);
                if (ok)
                        return run;
        }
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        CHECK(f != NULL);
        CHECK(fgets(buf, sizeof(buf), f) != NULL);
        fclose(f);
        p = strrchr(buf, ')');
        CHECK(p != NULL);
        /* After "pid (comm)": state and 10 more fields, then utime and stime. */
        CHECK(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) == 2);
        return (utime + stime) * (1000000000ull / (unsigned long long) sysconf(_SC_CLK_TCK));
}

/*
 * A reader process blocked on an empty channel, under each policy with
 * its default budgets: past the budget it burns no CPU over an idle
 * second; then a message wakes it.
 */
static void test_idle_cpu(uint32_t policy) {
        struct shmring *s = make_segment();
        struct shmring_tx *tx = NULL;
        unsigned char msg[8] = "wake up";
        uint64_t used;
        int ready[2];
        pid_t pid;

        tap_pipe(ready);
        pid = tap_fork();
        if (pid == 0) {
                struct shmring_port_opts o = { .index = -1, .wait = policy };
                struct shmring *c = attach(shmring_name(s));
                struct shmring_rx *rx = NULL;
                unsigned char buf[64];

                CHECK_OK(shmring_rx_open(c, "bc", &o, &rx));
                tap_signal(ready[1]);
                CHECK_EQ(shmring_recv(rx, buf, sizeof(buf), MS(30000)), (ssize_t) sizeof(msg));
                CHECK(memcmp(buf, msg, sizeof(msg)) == 0);
                rx = shmring_rx_close(rx);
                c = shmring_close(c);
                _exit(0);
        }
        tap_await(ready[0], 10000);
        tap_sleep_ms(100);                                      /* past every default budget */
        used = process_cpu_ns(pid);
        tap_sleep_ms(1000);
        used = process_cpu_ns(pid) - used;
        tap_note("%s: a reader blocked for 1 s used %.2f ms of CPU", policy_names[policy], (double) used / 1e6);
        if (used > (uint64_t) MS(10))
                tap_fail(__FILE__, __LINE__, "%s: a blocked reader burned %.2f ms of CPU in an idle second",
                         policy_names[policy], (double) used / 1e6);
        CHECK_OK(shmring_tx_open(s, "bc", NULL, &tx));
        CHECK_OK(shmring_send(tx, msg, sizeof(msg), 0));
        CHECK_CHILD_OK(pid);
        tx = shmring_tx_close(tx);
        close(ready[0]);
        close(ready[1]);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

/* ------------------------------------------------------------ dead peers */

/*
 * A writer that dies while a reader waits, and a reader that dies while the
 * writer waits for space: each is noticed under every policy.  The budgets
 * outlast the test, so the death is noticed during the active phase (spin
 * or yield) as well as from the futex sleep (block).
 */
static void test_dead_peer(uint32_t policy) {
        struct shmring_port_opts o = {
                .index = -1, .wait = policy, .spin_ns = SHMRING_SPIN_FOREVER, .liveness_ms = 20,
        };
        unsigned char buf[64] = { 0 };
        uint64_t t0;
        int ready[2];

        /* The writer dies. */
        {
                struct shmring *s = make_segment();
                struct shmring_rx *rx = NULL;
                pid_t pid;

                tap_pipe(ready);
                CHECK_OK(shmring_rx_open(s, "bc", &o, &rx));
                pid = tap_fork();
                if (pid == 0) {
                        struct shmring *c = attach(shmring_name(s));
                        struct shmring_tx *tx = NULL;

                        CHECK_OK(shmring_tx_open(c, "bc", NULL, &tx));
                        tap_signal(ready[1]);
                        tap_sleep_ms(150);
                        _exit(0);                               /* without closing anything */
                }
                tap_await(ready[0], 10000);
                t0 = tap_now_ns();
                CHECK_ERR(shmring_recv(rx, buf, sizeof(buf), MS(10000)), -EOWNERDEAD);
                tap_note("%s: a reader noticed its writer's death after %.0f ms", policy_names[policy],
                         (double) (tap_now_ns() - t0) / 1e6);
                (void) tap_wait(pid);
                rx = shmring_rx_close(rx);
                close(ready[0]);
                close(ready[1]);
                CHECK_OK(shmring_unlink(s));
                s = shmring_close(s);
        }

        /* A reader dies; the writer waits for room on a full ring. */
        {
                struct shmring *s = make_segment();
                struct shmring_tx *tx = NULL;
                pid_t pid;

                tap_pipe(ready);
                CHECK_OK(shmring_tx_open(s, "bc", &o, &tx));
                pid = tap_fork();
                if (pid == 0) {
                        struct shmring *c = attach(shmring_name(s));
                        struct shmring_rx *rx = NULL;

                        CHECK_OK(shmring_rx_open(c, "bc", NULL, &rx));
                        tap_signal(ready[1]);
                        tap_sleep_ms(150);
                        _exit(0);
                }
                tap_await(ready[0], 10000);
                for (unsigned i = 0; i < 8; i++)
                        CHECK_OK(shmring_send(tx, buf, 10, 0));
                t0 = tap_now_ns();
                CHECK_ERR(shmring_send(tx, buf, 10, MS(10000)), -EOWNERDEAD);
                tap_note("%s: a writer noticed its reader's death after %.0f ms", policy_names[policy],
                         (double) (tap_now_ns() - t0) / 1e6);
                (void) tap_wait(pid);
                tx = shmring_tx_close(tx);
                close(ready[0]);
                close(ready[1]);
                CHECK_OK(shmring_unlink(s));
                s = shmring_close(s);
        }
}

int main(int argc, char **argv) {
        tap_init("test-wait-policy");
        if (argc > 1 && strcmp(argv[1], "--env-child") == 0) {
                if (env_child() != 0)
                        return 1;
                return tap_done();
        }
        test_choose();
        test_forced_policies();
        test_auto_one_cpu();
        test_env();
        for (uint32_t p = SHMRING_WAIT_AUTO; p <= SHMRING_WAIT_BLOCK; p++) {
                test_flow(p);
                test_idle_cpu(p);
                test_dead_peer(p);
        }
        return tap_done();
}
