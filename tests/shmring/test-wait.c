/* SPDX-License-Identifier: MIT */
/*
 * Waiting: an idle reader or writer burns no CPU once its spin budget is
 * spent; nobody is woken (the futex word does not move) while nobody
 * sleeps; waits that end by timeout or signal leave no sleeper counted;
 * SHMRING_SPIN_NS sets the default budget; distinct ports of one process
 * work from distinct threads.
 */
#include <linux/filter.h>
#include <linux/membarrier.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "layout.h"
#include "payload.h"
#include "tap.h"

#define MS(n) ((int64_t) (n) * INT64_C(1000000))

static const struct shmring_channel_spec channels[] = {
        { .name = "bc", .kind = SHMRING_BROADCAST, .slots = 8, .slot_size = 64, .overflow_size = 4096,
          .max_ports = 2 },
        { .name = "q", .kind = SHMRING_QUEUE, .slots = 8, .slot_size = 64, .overflow_size = 4096, .max_ports = 2 },
};

static struct shmring *make_segment(void) {
        struct shmring_spec spec = { .run_id = tap_run_id(), .n_channels = 2, .channels = channels };
        struct shmring *s = NULL;

        CHECK_OK(shmring_create(&spec, &s));
        return s;
}

static uint64_t cpu_ns(void) {
        struct rusage ru;

        CHECK_SYS(getrusage(RUSAGE_THREAD, &ru));
        return (uint64_t) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000u +
               (uint64_t) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
}

/* Times this thread gave up the CPU of its own accord (slept). */
static long voluntary_switches(void) {
        struct rusage ru;

        CHECK_SYS(getrusage(RUSAGE_THREAD, &ru));
        return ru.ru_nvcsw;
}

/* Every futex word of a channel and its sleeper count, through layout.h. */
struct wakes {
        void *base;
        size_t size;
        struct shm_wake *w[8];
        bool writer[8];                 /* a ring's wwake: where its writer sleeps */
        unsigned n;
};

static void wakes_map(struct wakes *k, const char *name) {
        struct stat st;
        struct shm_header *h;
        int fd = open(tap_shm_path(name), O_RDWR | O_CLOEXEC);

        CHECK_SYS(fd);
        CHECK_SYS(fstat(fd, &st));
        k->size = (size_t) st.st_size;
        k->base = mmap(NULL, k->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        CHECK(k->base != MAP_FAILED);
        close(fd);
        h = k->base;
        k->n = 0;
        for (uint32_t i = 0; i < h->n_regions; i++) {
                struct shm_channel *c;
                if (h->regions[i].type != SHM_REGION_BROADCAST && h->regions[i].type != SHM_REGION_QUEUE)
                        continue;
                c = (struct shm_channel *) ((unsigned char *) k->base + h->regions[i].offset);
                k->w[k->n++] = &c->q_wake;
                for (uint32_t r = 0; r < c->n_rings; r++) {
                        struct shm_ring *ring = (struct shm_ring *) ((unsigned char *) c + c->rings_offset +
                                                                     r * c->ring_stride);
                        CHECK(k->n + 2 <= 8);
                        k->w[k->n++] = &ring->rwake;
                        k->writer[k->n] = true;
                        k->w[k->n++] = &ring->wwake;
                }
        }
}

/* Wake-ups of sleeping writers so far (each moves its futex word). */
static uint64_t writer_wakes(const struct wakes *k) {
        uint64_t n = 0;

        for (unsigned i = 0; i < k->n; i++)
                if (k->writer[i])
                        n += atomic_load(&k->w[i]->seq);
        return n;
}

static void check_no_sleepers(const struct wakes *k, int line) {
        for (unsigned i = 0; i < k->n; i++)
                if (atomic_load(&k->w[i]->sleepers) != 0)
                        tap_fail(__FILE__, line, "futex word %u still counts %u sleepers", i,
                                 atomic_load(&k->w[i]->sleepers));
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig) {
        (void) sig;
        alarms++;
}

static void test_idle_and_counts(void) {
        struct shmring *s = make_segment();
        struct shmring_port_opts o = { .index = -1, .spin_ns = 100000 }; /* 100 us */
        struct shmring_tx *tx = NULL, *qtx = NULL;
        struct shmring_rx *rx = NULL, *qrx = NULL;
        unsigned char buf[64] = { 0 };
        struct wakes k;
        uint64_t c0, used;
        uint32_t seq_before[8];

        wakes_map(&k, shmring_name(s));
        CHECK_OK(shmring_rx_open(s, "bc", &o, &rx));
        CHECK_OK(shmring_tx_open(s, "bc", &o, &tx));
        CHECK_OK(shmring_rx_open(s, "q", &o, &qrx));
        CHECK_OK(shmring_tx_open(s, "q", &o, &qtx));

        /* Idle for 400 ms: a reader, a queue reader, a writer on a full ring. */
        {
                long v0 = voluntary_switches();
                CHECK_ERR(shmring_recv(rx, buf, sizeof(buf), MS(50)), -ETIMEDOUT);
                CHECK(voluntary_switches() - v0 >= 1);         /* it slept */
        }
        c0 = cpu_ns();
        CHECK_ERR(shmring_recv(rx, buf, sizeof(buf), MS(400)), -ETIMEDOUT);
        CHECK_ERR(shmring_recv(qrx, buf, sizeof(buf), MS(400)), -ETIMEDOUT);
        for (unsigned i = 0; i < 8; i++)
                CHECK_OK(shmring_send(tx, buf, 10, 0));
        CHECK_ERR(shmring_send(tx, buf, 10, MS(400)), -ETIMEDOUT);
        used = cpu_ns() - c0;
        tap_note("1.2 s of waiting cost %.1f ms of CPU", (double) used / 1e6);
        if (used > (uint64_t) MS(120))
                tap_fail(__FILE__, __LINE__, "idle waits burned %.1f ms of CPU", (double) used / 1e6);
        check_no_sleepers(&k, __LINE__);

        /* Signals and timeouts leave no sleeper counted. */
        {
                struct sigaction sa = { .sa_handler = on_alarm }, old;
                struct itimerval it = { .it_value = { .tv_usec = 20000 } };
                CHECK_SYS(sigaction(SIGALRM, &sa, &old));
                CHECK_SYS(setitimer(ITIMER_REAL, &it, NULL));
                CHECK_ERR(shmring_send(tx, buf, 10, SHMRING_INFINITE), -EINTR);
                CHECK_SYS(setitimer(ITIMER_REAL, &it, NULL));
                CHECK_ERR(shmring_recv(qrx, buf, sizeof(buf), SHMRING_INFINITE), -EINTR);
                CHECK_SYS(sigaction(SIGALRM, &old, NULL));
        }
        check_no_sleepers(&k, __LINE__);
        for (unsigned i = 0; i < 8; i++)
                CHECK_EQ(shmring_recv(rx, buf, sizeof(buf), 0), 10);

        /* Nobody sleeps, nobody is woken: the futex words stay put through a busy stream. */
        for (unsigned i = 0; i < k.n; i++)
                seq_before[i] = atomic_load(&k.w[i]->seq);
        for (unsigned i = 0; i < 1000; i++) {
                CHECK_OK(shmring_send(tx, buf, 10, 0));
                CHECK_OK(shmring_send(qtx, buf, 10, 0));
                CHECK_EQ(shmring_recv(rx, buf, sizeof(buf), 0), 10);
                CHECK_EQ(shmring_recv(qrx, buf, sizeof(buf), 0), 10);
        }
        for (unsigned i = 0; i < k.n; i++)
                if (atomic_load(&k.w[i]->seq) != seq_before[i])
                        tap_fail(__FILE__, __LINE__, "futex word %u moved (%u -> %u) with nobody asleep", i,
                                 seq_before[i], atomic_load(&k.w[i]->seq));

        munmap(k.base, k.size);
        tx = shmring_tx_close(tx);
        qtx = shmring_tx_close(qtx);
        rx = shmring_rx_close(rx);
        qrx = shmring_rx_close(qrx);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

/*
 * SHMRING_SPIN_NS is the default spin budget.  The library reads it once
 * per process, so this runs in a fresh process: the test itself, exec'd
 * with --spin-child, SHMRING_SPIN_NS=1 s and SHMRING_WAIT=spin.  A wait of 300 ms then spins
 * throughout and never sleeps (no voluntary context switch), where the
 * default budget (50 us) sleeps at once.
 */
static int spin_child(void) {
        struct shmring *s = make_segment();
        struct shmring_rx *rx = NULL, *nospin = NULL;
        struct shmring_port_opts o = { .index = -1, .spin_ns = 1000 };
        unsigned char buf[8];
        uint64_t c0, used;
        long v0, slept;

        CHECK_OK(shmring_rx_open(s, "bc", NULL, &rx));
        CHECK_OK(shmring_rx_open(s, "bc", &o, &nospin));
        c0 = cpu_ns();
        v0 = voluntary_switches();
        CHECK_ERR(shmring_recv(rx, buf, sizeof(buf), MS(300)), -ETIMEDOUT);
        slept = voluntary_switches() - v0;
        used = cpu_ns() - c0;
        tap_note("with SHMRING_SPIN_NS=%s a 300 ms wait slept %ld times and cost %.1f ms of CPU",
                 getenv("SHMRING_SPIN_NS"), slept, (double) used / 1e6);
        CHECK_EQ(slept, 0);
        /* A port's own budget still wins over the default. */
        v0 = voluntary_switches();
        CHECK_ERR(shmring_recv(nospin, buf, sizeof(buf), MS(50)), -ETIMEDOUT);
        CHECK(voluntary_switches() - v0 >= 1);
        rx = shmring_rx_close(rx);
        nospin = shmring_rx_close(nospin);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
        return 0;
}

static void test_spin_env(void) {
        pid_t pid = tap_fork();

        if (pid == 0) {
                char *argv[] = { (char *) "/proc/self/exe", (char *) "--spin-child", NULL };
                setenv("SHMRING_SPIN_NS", "1000000000", 1);
                /* The spin policy, forced: the automatic one yields instead on a busy machine. */
                setenv("SHMRING_WAIT", "spin", 1);
                execv("/proc/self/exe", argv);
                _exit(99);
        }
        CHECK_CHILD_OK(pid);
}

/* Distinct ports of one process on distinct threads. */
struct thread_arg {
        struct shmring_tx *tx;
        struct shmring_rx *rx;
        uint64_t n;
        const char *bad;
        int err;
};

static void *writer_thread(void *p) {
        struct thread_arg *a = p;
        struct msg_sizes sz = { .slot_size = 64, .max_message = 2000, .overflow_per_mille = 100 };
        unsigned char buf[2000];

        for (uint64_t i = 0; i < a->n; i++) {
                size_t len = msg_len(&sz, 3, i);
                msg_fill(buf, len, 3, i);
                a->err = shmring_send(a->tx, buf, len, MS(60000));
                if (a->err < 0)
                        break;
        }
        return NULL;
}

static void *reader_thread(void *p) {
        struct thread_arg *a = p;
        struct msg_sizes sz = { .slot_size = 64, .max_message = 2000, .overflow_per_mille = 100 };
        unsigned char buf[2000];

        for (uint64_t i = 0; i < a->n; i++) {
                ssize_t n = shmring_recv(a->rx, buf, sizeof(buf), MS(60000));
                if (n < 0) {
                        a->err = (int) n;
                        break;
                }
                a->bad = msg_check(buf, (size_t) n, &sz, 3, i);
                if (a->bad)
                        break;
        }
        return NULL;
}

static void test_threads(void) {
        struct shmring *s = make_segment();
        struct shmring_port_opts o = { .index = -1, .spin_ns = 5000 };
        struct thread_arg a[4] = { { 0 } };
        pthread_t t[4];
        const uint64_t n = 100000;

        /* Two channels, each with a writer thread and a reader thread. */
        CHECK_OK(shmring_rx_open(s, "bc", &o, &a[1].rx));
        CHECK_OK(shmring_tx_open(s, "bc", &o, &a[0].tx));
        CHECK_OK(shmring_rx_open(s, "q", &o, &a[3].rx));
        CHECK_OK(shmring_tx_open(s, "q", &o, &a[2].tx));
        for (int i = 0; i < 4; i++) {
                a[i].n = n;
                CHECK(pthread_create(&t[i], NULL, i % 2 ? reader_thread : writer_thread, &a[i]) == 0);
        }
        for (int i = 0; i < 4; i++) {
                CHECK(pthread_join(t[i], NULL) == 0);
                if (a[i].err < 0)
                        tap_fail(__FILE__, __LINE__, "thread %d: %s", i, tap_errno_name(a[i].err));
                if (a[i].bad)
                        tap_fail(__FILE__, __LINE__, "thread %d: %s", i, a[i].bad);
        }
        for (int i = 0; i < 4; i++) {
                a[i].tx = shmring_tx_close(a[i].tx);
                a[i].rx = shmring_rx_close(a[i].rx);
        }
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

/*
 * A writer asleep on a full ring is woken when the reader frees a slot,
 * round after round: the reader looks for a sleeping writer without a fence
 * of its own (ring.c, rx_advance(); the sleeping writer makes the barrier),
 * and must still find a writer that has been asleep a while.  The writer's
 * liveness interval (60 s) is far above the test's bound, so a missed
 * wake-up shows as a failed send, not a slow one.
 */
struct blocked_send {
        struct shmring_tx *tx;
        int err;
};

static void *blocked_send_thread(void *p) {
        struct blocked_send *b = p;
        unsigned char buf[10] = { 0 };

        b->err = shmring_send(b->tx, buf, sizeof(buf), MS(20000));
        return NULL;
}

static void test_writer_woken(void) {
        struct shmring *s = make_segment();
        struct shmring_port_opts wo = { .index = -1, .wait = SHMRING_WAIT_BLOCK, .liveness_ms = 60000 };
        unsigned char buf[64] = { 0 };
        const char *names[] = { "bc", "q" };

        for (unsigned c = 0; c < 2; c++) {
                struct shmring_tx *tx = NULL;
                struct shmring_rx *rx = NULL;
                uint64_t worst = 0;

                CHECK_OK(shmring_rx_open(s, names[c], NULL, &rx));
                CHECK_OK(shmring_tx_open(s, names[c], &wo, &tx));
                for (unsigned i = 0; i < 8; i++)
                        CHECK_OK(shmring_send(tx, buf, 10, 0));
                /* More rounds than the reader's batch, so both of its looks are used. */
                for (unsigned round = 0; round < 40; round++) {
                        struct blocked_send b = { .tx = tx };
                        struct timespec nap = { .tv_nsec = 20 * 1000 * 1000 };
                        pthread_t t;
                        uint64_t t0;

                        CHECK(pthread_create(&t, NULL, blocked_send_thread, &b) == 0);
                        nanosleep(&nap, NULL);          /* the writer finds the ring full and sleeps */
                        t0 = tap_now_ns();
                        CHECK_EQ(shmring_recv(rx, buf, sizeof(buf), 0), 10);
                        CHECK(pthread_join(t, NULL) == 0);
                        if (b.err < 0) {
                                tap_fail(__FILE__, __LINE__, "%s, round %u: the blocked send failed: %s", names[c],
                                         round, tap_errno_name(b.err));
                                break;
                        }
                        if (tap_now_ns() - t0 > worst)
                                worst = tap_now_ns() - t0;
                }
                tap_note("%s: a writer asleep on a full ring, woken by a receive: %.2f ms at worst", names[c],
                         (double) worst / 1e6);
                if (worst > (uint64_t) MS(5000))
                        tap_fail(__FILE__, __LINE__, "%s: a woken writer took %.1f ms", names[c], (double) worst / 1e6);
                tx = shmring_tx_close(tx);
                rx = shmring_rx_close(rx);
        }
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

/*
 * The same race, many times over: the writer sleeps at once on a full ring
 * (SHMRING_WAIT_BLOCK) and the reader frees one slot at a moment that walks
 * across the writer's way to sleep, then reads nothing until the writer's
 * send is through.  The reader looks for a sleeping writer without a fence
 * of its own (rx_advance()); without the writer's barrier (heavy_barrier()
 * in wait.c) a look made while the writer announces itself can miss it, and
 * then nothing wakes the writer before its liveness interval (60 s): its
 * send fails after 3 s.  Later looks would find it, which is why the reader
 * stops after the one.
 */
struct stream_writer {
        struct shmring_tx *tx;
        uint64_t n;
        _Atomic uint64_t sent;
        int err;
};

static void *stream_writer(void *p) {
        struct stream_writer *a = p;

        for (uint64_t i = 0; i < a->n; i++) {
                a->err = shmring_send(a->tx, &i, sizeof(i), MS(3000));
                if (a->err < 0)
                        break;
                atomic_store(&a->sent, i + 1);
        }
        return NULL;
}

/* Runs the race's rounds on channel name of s; returns the writer's wake-ups. */
static uint64_t race_rounds(struct shmring *s, struct wakes *k, const char *name, uint64_t rounds) {
        struct shmring_port_opts wo = { .index = -1, .wait = SHMRING_WAIT_BLOCK, .liveness_ms = 60000 };
        struct stream_writer w = { .n = rounds };
        struct shmring_rx *rx = NULL;
        uint64_t wakes = writer_wakes(k), t0 = tap_now_ns(), i;
        unsigned delay = 0;
        pthread_t t;

        CHECK_OK(shmring_rx_open(s, name, NULL, &rx));
        CHECK_OK(shmring_tx_open(s, name, &wo, &w.tx));
        CHECK(pthread_create(&t, NULL, stream_writer, &w) == 0);
        for (i = 0; i < w.n; i++) {
                uint64_t got = UINT64_MAX, full = i + 8 < w.n ? i + 8 : w.n, deadline;

                /* The ring is full (8 slots) before each receive, the writer on its way to sleep. */
                deadline = tap_now_ns() + (uint64_t) MS(5000);
                while (atomic_load(&w.sent) < full && tap_now_ns() < deadline)
                        sched_yield();
                if (atomic_load(&w.sent) < full)
                        break;
                /* A delay that moves by 50 ns a round, 0 to 5 us. */
                delay = (delay + 1) % 100;
                for (uint64_t until = tap_now_ns() + delay * 50u; tap_now_ns() < until;)
                        ;
                if (shmring_recv(rx, &got, sizeof(got), MS(2000)) != sizeof(got) || got != i)
                        break;
        }
        CHECK(pthread_join(t, NULL) == 0);
        if (i < w.n)
                tap_fail(__FILE__, __LINE__,
                         "%s: round %" PRIu64 " of %" PRIu64 ": the writer's send: %s (a writer asleep on a full ring "
                         "not woken by a freed slot)", name, i, w.n,
                         w.err < 0 ? tap_errno_name(w.err) : "no error, the receive failed");
        wakes = writer_wakes(k) - wakes;
        tap_note("%s: %" PRIu64 " rounds in %.0f ms, the writer woken %" PRIu64 " times", name, i,
                 (double) (tap_now_ns() - t0) / 1e6, wakes);
        w.tx = shmring_tx_close(w.tx);
        rx = shmring_rx_close(rx);
        return wakes;
}

static void test_writer_woken_race(void) {
        struct shmring *s = make_segment();
        const char *names[] = { "bc", "q" };
        struct wakes k;

        wakes_map(&k, shmring_name(s));
        for (unsigned c = 0; c < 2; c++) {
                const uint64_t rounds = 20000;

                /* Otherwise the race this test is for was hardly run. */
                if (race_rounds(s, &k, names[c], rounds) < rounds / 10)
                        tap_fail(__FILE__, __LINE__, "%s: the writer was hardly ever found asleep", names[c]);
        }
        munmap(k.base, k.size);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

/* A seccomp filter that fails membarrier(2) with EPERM, as a container's might. */
static bool forbid_membarrier(void) {
        struct sock_filter f[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_membarrier, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
                return false;
        return syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0) < 0 && errno == EPERM;
}

/*
 * Where membarrier(2) is forbidden, readers fence at every message and a
 * sleeping writer looks again every millisecond: the same rounds, in a
 * child under a seccomp filter, still go through.
 */
static void test_writer_woken_without_membarrier(void) {
        pid_t pid;

        if (syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0) < 0) {
                tap_note("membarrier(2) is missing here: every run takes the fallback");
                return;
        }
        pid = tap_fork();
        if (pid == 0) {
                struct shmring *s;
                struct wakes k;

                if (!forbid_membarrier())
                        _exit(77);
                s = make_segment();
                wakes_map(&k, shmring_name(s));
                race_rounds(s, &k, "bc", 5000);
                race_rounds(s, &k, "q", 5000);
                munmap(k.base, k.size);
                CHECK_OK(shmring_unlink(s));
                s = shmring_close(s);
                fflush(NULL);
                _exit(0);
        }
        {
                int st = tap_wait(pid);

                if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
                        tap_note("no seccomp filter could be installed: the fallback was not tested");
                else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                        tap_fail(__FILE__, __LINE__, "the child without membarrier(2) failed (status %#x)", st);
        }
}

int main(int argc, char **argv) {
        tap_init("test-wait");
        if (argc > 1 && strcmp(argv[1], "--spin-child") == 0) {
                if (spin_child() != 0)
                        return 1;
                return tap_done();
        }
        test_idle_and_counts();
        test_spin_env();
        test_threads();
        test_writer_woken();
        test_writer_woken_race();
        test_writer_woken_without_membarrier();
        return tap_done();
}
