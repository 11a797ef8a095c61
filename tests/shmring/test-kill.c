/* SPDX-License-Identifier: MIT */
/*
 * Deaths, and how fast they are noticed:
 *   - a broadcast writer blocked on a reader that is SIGKILLed gets
 *     -EOWNERDEAD within the liveness interval (plus a margin), reaped or
 *     still a zombie; with SHMRING_PORT_DROP_DEAD it carries on instead;
 *   - a writer SIGKILLed in the middle of a message (reserved, half filled,
 *     never committed): readers get every committed message intact, never
 *     the half one, then -EOWNERDEAD; the same for writers SIGKILLed at
 *     random moments of a stream;
 *   - a queue reader waiting while one of its writers is killed gets
 *     -EOWNERDEAD, and the other writers' messages still arrive;
 *   - shmring_mark_dead wakes a sleeper at once, long before liveness_ms.
 *
 * SHMRING_KILL_ITERATIONS sets how many random kills (default 24);
 * SHMRING_KILL_MARGIN_MS the margin over the liveness interval (default
 * 1500, for busy machines).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "payload.h"
#include "tap.h"

#define LIVENESS_MS 100
#define SECONDS(n) ((int64_t) (n) * INT64_C(1000000000))
#define MS(n) ((uint64_t) (n) * UINT64_C(1000000))

static uint64_t margin_ms;

static const struct shmring_channel_spec channels[] = {
        { .name = "bc", .kind = SHMRING_BROADCAST, .slots = 8, .slot_size = 128, .overflow_size = 1 << 16,
          .max_ports = 2 },
        { .name = "q", .kind = SHMRING_QUEUE, .slots = 8, .slot_size = 128, .overflow_size = 1 << 16,
          .max_ports = 2 },
};

static struct shmring *make_segment(void) {
        struct shmring_spec spec = { .run_id = tap_run_id(), .n_channels = 2, .channels = channels };
        struct shmring *s = NULL;

        CHECK_OK(shmring_create(&spec, &s));
        return s;
}

static struct shmring_port_opts opts(uint32_t flags, uint32_t liveness_ms) {
        return (struct shmring_port_opts) { .index = -1, .flags = flags, .spin_ns = 2000,
                                            .liveness_ms = liveness_ms };
}

static void check_prompt(const char *what, uint64_t since, uint64_t limit_ms) {
        uint64_t dt = tap_now_ns() - since;

        tap_note("%s: noticed after %.1f ms (limit %" PRIu64 " ms)", what, (double) dt / 1e6, limit_ms);
        if (dt > MS(limit_ms))
                tap_fail(__FILE__, __LINE__, "%s: took %.1f ms, more than %" PRIu64 " ms", what, (double) dt / 1e6,
                         limit_ms);
}

/* Kills pid after delay_us from another thread, reaping it or leaving a zombie. */
struct killer {
        pid_t pid;
        unsigned delay_us;
        bool reap;
        _Atomic uint64_t killed_at;
        int status;
        pthread_t thread;
};

static void *killer_main(void *p) {
        struct killer *k = p;
        struct timespec ts = { .tv_sec = k->delay_us / 1000000, .tv_nsec = (long) (k->delay_us % 1000000) * 1000 };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        atomic_store(&k->killed_at, tap_now_ns());
        if (kill(k->pid, SIGKILL) < 0)
                abort();
        if (k->reap)
                while (waitpid(k->pid, &k->status, 0) < 0)
                        if (errno != EINTR)
                                abort();
        return NULL;
}

static void killer_start(struct killer *k, pid_t pid, unsigned delay_us, bool reap) {
        *k = (struct killer) { .pid = pid, .delay_us = delay_us, .reap = reap };
        CHECK(pthread_create(&k->thread, NULL, killer_main, k) == 0);
}

static void killer_join(struct killer *k) {
        CHECK(pthread_join(k->thread, NULL) == 0);
        if (k->reap)
                tap_forget_child(k->pid);
        else
                k->status = tap_wait(k->pid);
        CHECK(WIFSIGNALED(k->status) && WTERMSIG(k->status) == SIGKILL);
}

/* A child attached to name with a port open, doing nothing until killed. */
static pid_t spawn_idle(const char *name, const char *channel, bool writer) {
        int ready[2];
        pid_t pid;

        tap_pipe(ready);
        pid = tap_fork();
        if (pid == 0) {
                struct shmring *c = NULL;
                struct shmring_tx *tx = NULL;
                struct shmring_rx *rx = NULL;
                CHECK_OK(shmring_attach(name, 0, &c));
                if (writer)
                        CHECK_OK(shmring_tx_open(c, channel, NULL, &tx));
                else
                        CHECK_OK(shmring_rx_open(c, channel, NULL, &rx));
                tap_signal(ready[1]);
                for (;;)
                        pause();
        }
        tap_await(ready[0], 30000);
        close(ready[0]);
        close(ready[1]);
        return pid;
}

static unsigned fill_ring(struct shmring_tx *tx) {
        unsigned char msg[MSG_MIN];
        unsigned n = 0;

        for (;; n++) {
                msg_fill(msg, sizeof(msg), 0, n);
                int r = shmring_send(tx, msg, sizeof(msg), 0);
                if (r == -EAGAIN)
                        return n;
                CHECK_OK(r);
        }
}

/* A writer blocked on a reader that is killed. */
static void test_reader_killed(bool reap, bool drop_dead) {
        struct shmring *s = make_segment();
        struct shmring_port_opts o = opts(drop_dead ? SHMRING_PORT_DROP_DEAD : 0, LIVENESS_MS);
        struct shmring_tx *tx = NULL;
        unsigned char msg[MSG_MIN] = { 0 };
        struct killer k;
        pid_t reader;
        char what[80];

        CHECK_OK(shmring_tx_open(s, "bc", &o, &tx));
        reader = spawn_idle(shmring_name(s), "bc", false);
        CHECK_EQ(fill_ring(tx), 8);

        killer_start(&k, reader, 250 * 1000, reap);
        if (drop_dead) {
                CHECK_OK(shmring_send(tx, msg, sizeof(msg), SECONDS(30)));
                /* Nobody left to wait for. */
                for (unsigned i = 0; i < 20; i++)
                        CHECK_OK(shmring_send(tx, msg, sizeof(msg), 0));
        } else {
                CHECK_ERR(shmring_send(tx, msg, sizeof(msg), SECONDS(30)), -EOWNERDEAD);
        }
        snprintf(what, sizeof(what), "reader killed (%s), writer %s", reap ? "reaped" : "a zombie",
                 drop_dead ? "with DROP_DEAD" : "blocked");
        check_prompt(what, atomic_load(&k.killed_at), LIVENESS_MS + margin_ms);
        killer_join(&k);
        if (!drop_dead) {
                CHECK_EQ(shmring_tx_drop_dead(tx), 1);
                CHECK_OK(shmring_send(tx, msg, sizeof(msg), 0));
        }

        tx = shmring_tx_close(tx);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

/*
 * A writer that dies between shmring_send_reserve and shmring_send_commit,
 * with its reservation half filled.
 */
static void test_writer_killed_mid_message(const char *channel, size_t len, bool reap) {
        struct shmring *s = make_segment();
        struct shmring_port_opts o = opts(0, LIVENESS_MS);
        struct shmring_rx *rx = NULL;
        struct shmring_msg m;
        char name[SHMRING_NAME_MAX];
        const unsigned complete = 5;
        pid_t pid;
        int st;
        uint64_t t0;

        snprintf(name, sizeof(name), "%s", shmring_name(s));
        CHECK_OK(shmring_rx_open(s, channel, &o, &rx));
        pid = tap_fork();
        if (pid == 0) {
                struct shmring *c = NULL;
                struct shmring_tx *tx = NULL;
                unsigned char *buf = malloc(len);
                void *p = NULL;
                CHECK(buf);
                CHECK_OK(shmring_attach(name, 0, &c));
                CHECK_OK(shmring_tx_open(c, channel, NULL, &tx));
                for (uint64_t i = 0; i < complete; i++) {
                        msg_fill(buf, len, 0, i);
                        CHECK_OK(shmring_send(tx, buf, len, SECONDS(30)));
                }
                /* The next one, its header and first half in place, and then death. */
                CHECK_OK(shmring_send_reserve(tx, len, &p, SECONDS(30)));
                msg_fill(buf, len, 0, complete);
                memcpy(p, buf, len / 2);
                kill(getpid(), SIGKILL);
                _exit(3);
        }
        if (reap) {
                st = tap_wait(pid);
                CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        } else {
                /* Let it die, but stay a zombie until the end. */
                siginfo_t si;
                CHECK_SYS(waitid(P_PID, (id_t) pid, &si, WEXITED | WNOWAIT));
        }
        t0 = tap_now_ns();

        for (uint64_t i = 0; i < complete; i++) {
                const char *bad;
                CHECK_OK(shmring_recv_zc(rx, &m, SECONDS(30)));
                CHECK_EQ(m.seq, i);
                bad = msg_check(m.data, m.len, NULL, 0, i);
                if (bad)
                        tap_fail(__FILE__, __LINE__, "%s message %" PRIu64 ": %s", channel, i, bad);
                CHECK_OK(shmring_recv_done(rx));
        }
        memset(&m, SENTINEL, sizeof(m));
        CHECK_ERR(shmring_recv_zc(rx, &m, SECONDS(30)), -EOWNERDEAD);
        CHECK(tap_all_bytes(&m, sizeof(m), SENTINEL));
        {
                char what[96];
                snprintf(what, sizeof(what), "%s writer killed mid-message of %zu bytes (%s)", channel, len,
                         reap ? "reaped" : "a zombie");
                check_prompt(what, t0, LIVENESS_MS + margin_ms);
        }
        {
                unsigned char *buf = malloc(len);
                CHECK(buf);
                CHECK_ERR(shmring_recv(rx, buf, len, 0), -EOWNERDEAD);
                free(buf);
        }
        if (!reap) {
                st = tap_wait(pid);
                CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        }

        rx = shmring_rx_close(rx);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

/*
 * Writers SIGKILLed at random moments of a stream of random sizes, written
 * by send, sendv and reserve/commit in turn.  The reader must get messages
 * 0 .. n-1, each intact, then -EOWNERDEAD, where n is what the writer had
 * committed (give or take the one it committed but had not counted yet).
 */
struct stream_count {
        _Atomic uint64_t committed;
};

static void stream_writer(const char *name, const char *channel, struct stream_count *count,
                          const struct msg_sizes *sz, int ready_fd) {
        struct shmring *c = NULL;
        struct shmring_tx *tx = NULL;
        struct shmring_port_opts o = opts(0, LIVENESS_MS);
        unsigned char *buf = malloc(sz->max_message);

        CHECK(buf);
        CHECK_OK(shmring_attach(name, 0, &c));
        CHECK_OK(shmring_tx_open(c, channel, &o, &tx));
        tap_signal(ready_fd);
        for (uint64_t seq = 0;; seq++) {
                size_t len = msg_len(sz, 0, seq);
                switch (seq % 3) {
                case 0:
                        msg_fill(buf, len, 0, seq);
                        CHECK_OK(shmring_send(tx, buf, len, SECONDS(60)));
                        break;
                case 1: {
                        struct iovec iov[3];
                        msg_fill(buf, len, 0, seq);
                        iov[0] = (struct iovec) { buf, 5 };
                        iov[1] = (struct iovec) { buf + 5, len / 2 - 5 };
                        iov[2] = (struct iovec) { buf + len / 2, len - len / 2 };
                        CHECK_OK(shmring_sendv(tx, iov, 3, SECONDS(60)));
                        break;
                }
                default: {
                        void *p = NULL;
                        CHECK_OK(shmring_send_reserve(tx, len, &p, SECONDS(60)));
                        msg_fill(p, len, 0, seq);
                        CHECK_OK(shmring_send_commit(tx));
                        break;
                }
                }
                atomic_store(&count->committed, seq + 1);
        }
}

static void test_random_kills(unsigned iterations) {
        struct stream_count *count = mmap(NULL, sizeof(*count), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                                          -1, 0);
        uint64_t rng = msg_mix((uint64_t) getpid() ^ tap_now_ns());
        uint64_t total = 0;

        CHECK(count != MAP_FAILED);
        for (unsigned it = 0; it < iterations; it++) {
                const char *channel = it % 2 ? "q" : "bc";
                struct shmring *s = make_segment();
                struct shmring_port_opts o = opts(0, LIVENESS_MS);
                struct shmring_channel_info ci;
                struct shmring_rx *rx = NULL;
                struct msg_sizes sz;
                struct killer k;
                char name[SHMRING_NAME_MAX];
                uint64_t got = 0, committed;
                unsigned char *buf;
                pid_t pid;
                int r, ready[2];

                snprintf(name, sizeof(name), "%s", shmring_name(s));
                tap_pipe(ready);
                CHECK_OK(shmring_channel_info(s, it % 2, &ci));
                sz = (struct msg_sizes) { .slot_size = ci.slot_size, .max_message = ci.max_message / 2,
                                          .overflow_per_mille = 200 };
                buf = malloc(sz.max_message);
                CHECK(buf);
                CHECK_OK(shmring_rx_open(s, channel, &o, &rx));
                atomic_store(&count->committed, 0);
                pid = tap_fork();
                if (pid == 0) {
                        stream_writer(name, channel, count, &sz, ready[1]);
                        _exit(0);
                }
                /* The clock starts once its port is open: a writer that never opened is no death. */
                tap_await(ready[0], 30000);
                close(ready[0]);
                close(ready[1]);
                rng = msg_mix(rng);
                killer_start(&k, pid, (unsigned) (rng % 30000), it % 4 != 3);
                for (;;) {
                        const char *bad;
                        if (got % 2) {
                                struct shmring_msg m;
                                r = shmring_recv_zc(rx, &m, SECONDS(30));
                                if (r < 0)
                                        break;
                                CHECK_EQ(m.seq, got);
                                bad = msg_check(m.data, m.len, &sz, 0, got);
                                CHECK_OK(shmring_recv_done(rx));
                        } else {
                                ssize_t n = shmring_recv(rx, buf, sz.max_message, SECONDS(30));
                                if (n < 0) {
                                        r = (int) n;
                                        break;
                                }
                                bad = msg_check(buf, (size_t) n, &sz, 0, got);
                        }
                        if (bad)
                                tap_fail(__FILE__, __LINE__, "iteration %u, %s message %" PRIu64 ": %s", it,
                                         channel, got, bad);
                        got++;
                }
                CHECK_ERR(r, -EOWNERDEAD);
                killer_join(&k);
                committed = atomic_load(&count->committed);
                if (got < committed || got > committed + 1)
                        tap_fail(__FILE__, __LINE__, "iteration %u: received %" PRIu64 ", writer committed %" PRIu64,
                                 it, got, committed);
                total += got;
                free(buf);
                rx = shmring_rx_close(rx);
                CHECK_OK(shmring_unlink(s));
                s = shmring_close(s);
        }
        tap_note("random kills: %u writers killed, %" PRIu64 " messages received intact", iterations, total);
        munmap(count, sizeof(*count));
}

/* A queue reader asleep when one of its two writers dies; the other goes on. */
static void test_queue_writer_killed(void) {
        struct shmring *s = make_segment();
        struct shmring_port_opts o = opts(0, LIVENESS_MS);
        struct shmring_rx *rx = NULL;
        char name[SHMRING_NAME_MAX];
        int go[2], ready[2];
        struct killer k;
        pid_t a, b;
        char buf[64];

        snprintf(name, sizeof(name), "%s", shmring_name(s));
        CHECK_OK(shmring_rx_open(s, "q", &o, &rx));
        a = spawn_idle(name, "q", true);
        tap_pipe(go);
        tap_pipe(ready);
        b = tap_fork();
        if (b == 0) {
                struct shmring *c = NULL;
                struct shmring_tx *tx = NULL;
                CHECK_OK(shmring_attach(name, 0, &c));
                CHECK_OK(shmring_tx_open(c, "q", NULL, &tx));
                tap_signal(ready[1]);
                tap_await(go[0], 60000);
                CHECK_OK(shmring_send(tx, "from b", 6, 0));
                tx = shmring_tx_close(tx);
                c = shmring_close(c);
                _exit(0);
        }
        tap_await(ready[0], 30000);

        killer_start(&k, a, 250 * 1000, true);
        CHECK_ERR(shmring_recv(rx, buf, sizeof(buf), SECONDS(30)), -EOWNERDEAD);
        check_prompt("queue writer killed while the reader sleeps", atomic_load(&k.killed_at),
                     LIVENESS_MS + margin_ms);
        killer_join(&k);

        /* The live writer's messages still arrive, then its close. */
        tap_signal(go[1]);
        CHECK_CHILD_OK(b);
        for (unsigned told = 0;; told++) {
                ssize_t n = shmring_recv(rx, buf, sizeof(buf), SECONDS(30));
                if (n == -EOWNERDEAD && told < 3)
                        continue; /* told again about a: fine, a few times */
                CHECK_EQ(n, 6);
                CHECK(memcmp(buf, "from b", 6) == 0);
                break;
        }
        {
                ssize_t n = shmring_recv(rx, buf, sizeof(buf), 0);
                CHECK(n == -EPIPE || n == -EOWNERDEAD);
        }

        close(go[0]);
        close(go[1]);
        close(ready[0]);
        close(ready[1]);
        rx = shmring_rx_close(rx);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

/*
 * shmring_mark_dead wakes a sleeper now: a queue reader (another process)
 * waiting on an idle writer, and a broadcast writer waiting on an idle
 * reader, both with a liveness interval of a minute.
 */
static void test_mark_dead_wakes(void) {
        struct shmring *s = make_segment();
        char name[SHMRING_NAME_MAX];
        int ready[2], result[2];
        pid_t writer, reader, sleeper;
        struct {
                int r;
                uint64_t at;
        } res;
        uint64_t t0;

        snprintf(name, sizeof(name), "%s", shmring_name(s));
        tap_pipe(ready);
        tap_pipe(result);

        /* A queue reader asleep on an idle writer. */
        writer = spawn_idle(name, "q", true);
        sleeper = tap_fork();
        if (sleeper == 0) {
                struct shmring *c = NULL;
                struct shmring_rx *rx = NULL;
                struct shmring_port_opts o = opts(0, 60000);
                char buf[8];
                o.spin_ns = SHMRING_SPIN_NEVER;
                CHECK_OK(shmring_attach(name, 0, &c));
                CHECK_OK(shmring_rx_open(c, "q", &o, &rx));
                tap_signal(ready[1]);
                res.r = (int) shmring_recv(rx, buf, sizeof(buf), SECONDS(50));
                res.at = tap_now_ns();
                tap_write_all(result[1], &res, sizeof(res));
                _exit(0);
        }
        tap_await(ready[0], 30000);
        tap_sleep_ms(200);
        t0 = tap_now_ns();
        CHECK_EQ(shmring_mark_dead(s, writer), 1);
        CHECK(tap_read_all(result[0], &res, sizeof(res), 60000));
        CHECK_ERR(res.r, -EOWNERDEAD);
        CHECK(res.at >= t0);
        tap_note("mark_dead woke a queue reader after %.2f ms", (double) (res.at - t0) / 1e6);
        if (res.at - t0 > MS(margin_ms))
                tap_fail(__FILE__, __LINE__, "mark_dead took %.1f ms to wake the reader", (double) (res.at - t0) / 1e6);
        CHECK_CHILD_OK(sleeper);
        tap_kill(writer);
        (void) tap_wait(writer);

        /* A broadcast writer asleep on a full ring. */
        reader = spawn_idle(name, "bc", false);
        sleeper = tap_fork();
        if (sleeper == 0) {
                struct shmring *c = NULL;
                struct shmring_tx *tx = NULL;
                struct shmring_port_opts o = opts(0, 60000);
                unsigned char msg[MSG_MIN] = { 0 };
                o.spin_ns = SHMRING_SPIN_NEVER;
                CHECK_OK(shmring_attach(name, 0, &c));
                CHECK_OK(shmring_tx_open(c, "bc", &o, &tx));
                CHECK_EQ(fill_ring(tx), 8);
                tap_signal(ready[1]);
                res.r = shmring_send(tx, msg, sizeof(msg), SECONDS(50));
                res.at = tap_now_ns();
                tap_write_all(result[1], &res, sizeof(res));
                _exit(0);
        }
        tap_await(ready[0], 30000);
        tap_sleep_ms(200);
        t0 = tap_now_ns();
        CHECK_EQ(shmring_mark_dead(s, reader), 1);
        CHECK(tap_read_all(result[0], &res, sizeof(res), 60000));
        CHECK_ERR(res.r, -EOWNERDEAD);
        tap_note("mark_dead woke a broadcast writer after %.2f ms", (double) (res.at - t0) / 1e6);
        if (res.at - t0 > MS(margin_ms))
                tap_fail(__FILE__, __LINE__, "mark_dead took %.1f ms to wake the writer", (double) (res.at - t0) / 1e6);
        CHECK_CHILD_OK(sleeper);
        tap_kill(reader);
        (void) tap_wait(reader);

        close(ready[0]);
        close(ready[1]);
        close(result[0]);
        close(result[1]);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

int main(void) {
        unsigned iterations;

        tap_init("test-kill");
        margin_ms = tap_env_u64("SHMRING_KILL_MARGIN_MS", 1500);
        iterations = (unsigned) tap_env_u64("SHMRING_KILL_ITERATIONS", 24);

        test_reader_killed(true, false);
        test_reader_killed(false, false);
        test_reader_killed(true, true);
        test_reader_killed(false, true);
        for (int zombie = 0; zombie < 2; zombie++) {
                test_writer_killed_mid_message("bc", 100, !zombie);
                test_writer_killed_mid_message("bc", 3000, !zombie);
                test_writer_killed_mid_message("q", 100, !zombie);
                test_writer_killed_mid_message("q", 3000, !zombie);
        }
        test_random_kills(iterations);
        test_queue_writer_killed();
        test_mark_dead_wakes();
        return tap_done();
}
