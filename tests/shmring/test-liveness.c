/* SPDX-License-Identifier: MIT */
/*
 * Peers and their deaths, the calls that are not about one message:
 * shmring_cleanup_stale, shmring_mark_dead's count, shmring_tx_wait_readers,
 * shmring_tx_drop_dead, SHMRING_PORT_DROP_DEAD, taking over the port of a
 * dead writer or reader, and the peer record of a dead process.  (How fast a
 * death is noticed is test-kill's.)
 */
#include "payload.h"
#include "tap.h"

#define LIVENESS_MS 50
#define SECONDS(n) ((int64_t) (n) * INT64_C(1000000000))

static const struct shmring_channel_spec channels[] = {
        { .name = "bc", .kind = SHMRING_BROADCAST, .slots = 4, .slot_size = 64, .overflow_size = 4096,
          .max_ports = 3 },
        { .name = "q", .kind = SHMRING_QUEUE, .slots = 4, .slot_size = 64, .overflow_size = 4096,
          .max_ports = 3 },
};

static struct shmring *make_segment(const char *run_id, uint32_t max_peers) {
        struct shmring_spec spec = {
                .run_id = run_id,
                .max_peers = max_peers,
                .n_channels = 2,
                .channels = channels,
        };
        struct shmring *s = NULL;

        CHECK_OK(shmring_create(&spec, &s));
        return s;
}

static struct shmring_port_opts quick(int32_t index, uint32_t flags) {
        return (struct shmring_port_opts) { .index = index, .flags = flags, .liveness_ms = LIVENESS_MS };
}

static bool shm_exists(const char *name) {
        return access(tap_shm_path(name), F_OK) == 0;
}

/* A child that opens a port on channel and then sleeps until killed. */
enum role { READER, WRITER, PEER_ONLY };

static pid_t spawn_peer(const char *name, const char *channel, enum role role, int32_t index) {
        int ready[2];
        pid_t pid;

        tap_pipe(ready);
        pid = tap_fork();
        if (pid == 0) {
                struct shmring *c = NULL;
                struct shmring_tx *tx = NULL;
                struct shmring_rx *rx = NULL;
                struct shmring_port_opts o = quick(index, 0);
                int32_t got = 0;
                CHECK_OK(shmring_attach(name, 0, &c));
                if (role == WRITER) {
                        CHECK_OK(shmring_tx_open(c, channel, &o, &tx));
                        got = shmring_tx_index(tx);
                } else if (role == READER) {
                        CHECK_OK(shmring_rx_open(c, channel, &o, &rx));
                        got = shmring_rx_index(rx);
                }
                tap_write_all(ready[1], &got, sizeof(got));
                for (;;)
                        pause();
        }
        close(ready[1]);
        {
                int32_t got;
                if (!tap_read_all(ready[0], &got, sizeof(got), 30000))
                        tap_fail(__FILE__, __LINE__, "peer %d died before it was ready", (int) pid);
        }
        close(ready[0]);
        return pid;
}

static void kill_and_reap(pid_t pid) {
        int st;

        tap_kill(pid);
        st = tap_wait(pid);
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static void test_cleanup_stale(void) {
        const char *run_id = tap_run_id();
        char dead_name[SHMRING_NAME_MAX], longer_name[SHMRING_NAME_MAX], longer_id[SHMRING_RUN_ID_MAX + 1];
        struct shmring *live;
        int names[2];
        pid_t pid;

        /* A creator that dies leaves a stale segment; one of a run id that merely starts alike too. */
        snprintf(longer_id, sizeof(longer_id), "%s-x", run_id);
        tap_pipe(names);
        pid = tap_fork();
        if (pid == 0) {
                struct shmring *c = NULL, *d = NULL;
                CHECK_OK(shmring_create(&(struct shmring_spec) { .run_id = run_id, .n_channels = 2,
                                                                  .channels = channels }, &c));
                CHECK_OK(shmring_create(&(struct shmring_spec) { .run_id = longer_id, .n_channels = 2,
                                                                  .channels = channels }, &d));
                tap_write_all(names[1], shmring_name(c), SHMRING_NAME_MAX);
                tap_write_all(names[1], shmring_name(d), SHMRING_NAME_MAX);
                _exit(0); /* no close, no unlink */
        }
        CHECK(tap_read_all(names[0], dead_name, sizeof(dead_name), 30000));
        CHECK(tap_read_all(names[0], longer_name, sizeof(longer_name), 30000));
        CHECK_CHILD_OK(pid);
        close(names[0]);
        close(names[1]);

        /* A live creator's segment of the same run id stays. */
        live = make_segment(run_id, 0);

        CHECK(shm_exists(dead_name));
        CHECK(shm_exists(longer_name));
        CHECK_EQ(shmring_cleanup_stale(run_id), 1);
        CHECK(!shm_exists(dead_name));
        CHECK(shm_exists(shmring_name(live)));
        CHECK(shm_exists(longer_name));
        CHECK_EQ(shmring_cleanup_stale(run_id), 0);
        CHECK_EQ(shmring_cleanup_stale(longer_id), 1);
        CHECK(!shm_exists(longer_name));

        CHECK_ERR(shmring_cleanup_stale(""), -EINVAL);
        CHECK_ERR(shmring_cleanup_stale("a/b"), -EINVAL);
        CHECK_ERR(shmring_cleanup_stale("*"), -EINVAL);

        /* A segment its creator is still attached to, used by others: stays. */
        CHECK_OK(shmring_unlink(live));
        live = shmring_close(live);
        /* (shmring_cleanup_stale(NULL) runs in test-small-shm's private /dev/shm.) */
}

static void test_mark_dead_count(void) {
        struct shmring *s = make_segment(tap_run_id(), 0);
        pid_t a = spawn_peer(shmring_name(s), "bc", PEER_ONLY, -1);
        pid_t b = spawn_peer(shmring_name(s), "bc", READER, -1);

        CHECK_EQ(shmring_mark_dead(s, a), 1);
        CHECK_EQ(shmring_mark_dead(s, b), 1);
        CHECK_EQ(shmring_mark_dead(s, b), 0);   /* already dead */
        CHECK_EQ(shmring_mark_dead(s, 999999999), 0);
        CHECK_ERR(shmring_mark_dead(s, 0), -EINVAL);
        CHECK_ERR(shmring_mark_dead(s, -1), -EINVAL);
        CHECK_ERR(shmring_mark_dead(NULL, a), -EINVAL);
        kill_and_reap(a);
        kill_and_reap(b);

        /* The reader b held is free again. */
        {
                struct shmring_rx *rx[3] = { NULL };
                for (int i = 0; i < 3; i++)
                        CHECK_OK(shmring_rx_open(s, "bc", &(struct shmring_port_opts) { .index = -1 }, &rx[i]));
                for (int i = 0; i < 3; i++)
                        rx[i] = shmring_rx_close(rx[i]);
        }
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

static void test_wait_readers(void) {
        struct shmring *s = make_segment(tap_run_id(), 0);
        struct shmring_tx *tx = NULL, *qtx = NULL;
        struct shmring_rx *rx = NULL;
        pid_t a, b;
        uint64_t t0;

        CHECK_OK(shmring_tx_open(s, "bc", NULL, &tx));
        CHECK_EQ(shmring_tx_wait_readers(tx, 0, 0), 0);
        CHECK_ERR(shmring_tx_wait_readers(tx, 1, 0), -EAGAIN);
        t0 = tap_now_ns();
        CHECK_ERR(shmring_tx_wait_readers(tx, 1, 20 * 1000 * 1000), -ETIMEDOUT);
        CHECK(tap_now_ns() - t0 >= 20 * 1000 * 1000);
        CHECK_ERR(shmring_tx_wait_readers(tx, 4, 0), -ERANGE);   /* more than max_ports */
        CHECK_ERR(shmring_tx_wait_readers(NULL, 1, 0), -EINVAL);

        CHECK_OK(shmring_rx_open(s, "bc", NULL, &rx));
        CHECK_EQ(shmring_tx_wait_readers(tx, 1, 0), 1);
        CHECK_EQ(shmring_tx_wait_readers(tx, 0, 0), 1);

        /* Readers in other processes, arriving while the writer waits. */
        int go[2];
        tap_pipe(go);
        a = tap_fork();
        if (a == 0) {
                struct shmring *c = NULL;
                struct shmring_rx *crx = NULL;
                char name[SHMRING_NAME_MAX];
                CHECK(tap_read_all(go[0], name, sizeof(name), 30000));
                tap_sleep_ms(50);
                CHECK_OK(shmring_attach(name, 0, &c));
                CHECK_OK(shmring_rx_open(c, "bc", NULL, &crx));
                for (;;)
                        pause();
        }
        b = tap_fork();
        if (b == 0) {
                struct shmring *c = NULL;
                struct shmring_rx *crx = NULL;
                char name[SHMRING_NAME_MAX];
                CHECK(tap_read_all(go[0], name, sizeof(name), 30000));
                tap_sleep_ms(100);
                CHECK_OK(shmring_attach(name, 0, &c));
                CHECK_OK(shmring_rx_open(c, "bc", NULL, &crx));
                for (;;)
                        pause();
        }
        {
                char name[SHMRING_NAME_MAX] = { 0 };
                snprintf(name, sizeof(name), "%s", shmring_name(s));
                tap_write_all(go[1], name, sizeof(name));
                tap_write_all(go[1], name, sizeof(name));
        }
        CHECK_EQ(shmring_tx_wait_readers(tx, 3, SECONDS(30)), 3);

        /* A reader that closes is not counted; one that died is not either, once noticed. */
        rx = shmring_rx_close(rx);
        CHECK_EQ(shmring_tx_wait_readers(tx, 0, 0), 2);
        kill_and_reap(a);
        CHECK_OK(shmring_tx_drop_dead(tx));
        CHECK_EQ(shmring_tx_wait_readers(tx, 0, 0), 1);

        /* Not for a queue's writer. */
        CHECK_OK(shmring_tx_open(s, "q", NULL, &qtx));
        CHECK_ERR(shmring_tx_wait_readers(qtx, 0, 0), -EOPNOTSUPP);
        CHECK_ERR(shmring_tx_drop_dead(qtx), -EOPNOTSUPP);

        kill_and_reap(b);
        close(go[0]);
        close(go[1]);
        tx = shmring_tx_close(tx);
        qtx = shmring_tx_close(qtx);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

static void test_drop_dead(void) {
        struct shmring *s = make_segment(tap_run_id(), 0);
        struct shmring_tx *tx = NULL;
        struct shmring_rx *rx = NULL;
        struct shmring_port_opts o = quick(-1, 0);
        unsigned char msg[MSG_MIN];
        pid_t a, b;
        uint64_t seq = 0;

        CHECK_OK(shmring_tx_open(s, "bc", &o, &tx));
        CHECK_OK(shmring_rx_open(s, "bc", NULL, &rx));
        CHECK_EQ(shmring_tx_drop_dead(tx), 0);
        a = spawn_peer(shmring_name(s), "bc", READER, -1);
        b = spawn_peer(shmring_name(s), "bc", READER, -1);
        CHECK_EQ(shmring_tx_drop_dead(tx), 0);

        /* Fill the ring for the two readers that never read. */
        for (unsigned i = 0; i < 4; i++, seq++) {
                msg_fill(msg, sizeof(msg), 0, seq);
                CHECK_OK(shmring_send(tx, msg, sizeof(msg), 0));
                CHECK_EQ(shmring_recv(rx, msg, sizeof(msg), 0), sizeof(msg));
        }
        CHECK_ERR(shmring_send(tx, msg, sizeof(msg), 0), -EAGAIN);

        /* Without DROP_DEAD a dead reader is an error... */
        kill_and_reap(a);
        msg_fill(msg, sizeof(msg), 0, seq);
        CHECK_ERR(shmring_send(tx, msg, sizeof(msg), SECONDS(20)), -EOWNERDEAD);
        CHECK_ERR(shmring_send(tx, msg, sizeof(msg), SECONDS(20)), -EOWNERDEAD);
        /* ...until the writer drops it. */
        CHECK_EQ(shmring_tx_drop_dead(tx), 1);
        CHECK_EQ(shmring_tx_drop_dead(tx), 0);
        CHECK_ERR(shmring_send(tx, msg, sizeof(msg), 0), -EAGAIN);    /* b is alive and behind */
        kill_and_reap(b);
        CHECK_EQ(shmring_tx_drop_dead(tx), 1);
        for (unsigned i = 0; i < 20; i++, seq++) {
                msg_fill(msg, sizeof(msg), 0, seq);
                CHECK_OK(shmring_send(tx, msg, sizeof(msg), 0));
                CHECK_EQ(shmring_recv(rx, msg, sizeof(msg), 0), sizeof(msg));
                CHECK(msg_check(msg, sizeof(msg), NULL, 0, seq) == NULL);
        }
        tx = shmring_tx_close(tx);

        /* With DROP_DEAD the writer carries on by itself. */
        o = quick(-1, SHMRING_PORT_DROP_DEAD);
        CHECK_OK(shmring_tx_open(s, "bc", &o, &tx));
        a = spawn_peer(shmring_name(s), "bc", READER, -1);
        for (unsigned i = 0; i < 4; i++, seq++) {
                msg_fill(msg, sizeof(msg), 0, seq);
                CHECK_OK(shmring_send(tx, msg, sizeof(msg), 0));
                CHECK_EQ(shmring_recv(rx, msg, sizeof(msg), 0), sizeof(msg));
        }
        CHECK_ERR(shmring_send(tx, msg, sizeof(msg), 0), -EAGAIN);
        kill_and_reap(a);
        for (unsigned i = 0; i < 20; i++, seq++) {
                msg_fill(msg, sizeof(msg), 0, seq);
                CHECK_OK(shmring_send(tx, msg, sizeof(msg), SECONDS(20)));
                CHECK_EQ(shmring_recv(rx, msg, sizeof(msg), 0), sizeof(msg));
                CHECK(msg_check(msg, sizeof(msg), NULL, 0, seq) == NULL);
        }
        CHECK_EQ(shmring_tx_drop_dead(tx), 0);

        tx = shmring_tx_close(tx);
        rx = shmring_rx_close(rx);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

/* A dead writer's port is taken over; the stream goes on from where it stopped. */
static void test_takeover(void) {
        struct shmring *s = make_segment(tap_run_id(), 0);
        struct shmring_tx *tx = NULL;
        struct shmring_rx *rx = NULL, *qrx = NULL;
        struct shmring_port_opts o = quick(-1, 0);
        struct shmring_msg m;
        char name[SHMRING_NAME_MAX];
        int ready[2];
        pid_t pid;

        snprintf(name, sizeof(name), "%s", shmring_name(s));
        CHECK_OK(shmring_rx_open(s, "bc", &o, &rx));
        CHECK_OK(shmring_rx_open(s, "q", &o, &qrx));
        tap_pipe(ready);
        pid = tap_fork();
        if (pid == 0) {
                struct shmring *c = NULL;
                struct shmring_tx *btx = NULL, *qtx = NULL;
                struct shmring_port_opts qo = quick(2, 0);
                unsigned char msg[100];
                CHECK_OK(shmring_attach(name, 0, &c));
                CHECK_OK(shmring_tx_open(c, "bc", NULL, &btx));
                CHECK_OK(shmring_tx_open(c, "q", &qo, &qtx));
                for (uint64_t i = 0; i < 3; i++) {
                        msg_fill(msg, sizeof(msg), 0, i);
                        CHECK_OK(shmring_send(btx, msg, sizeof(msg), 0));
                        msg_fill(msg, sizeof(msg), 2, i);
                        CHECK_OK(shmring_send(qtx, msg, sizeof(msg), 0));
                }
                tap_signal(ready[1]);
                for (;;)
                        pause();
        }
        tap_await(ready[0], 30000);

        /* While it lives, its ports are its own. */
        CHECK_ERR(shmring_tx_open(s, "bc", NULL, &tx), -EBUSY);
        CHECK_ERR(shmring_tx_open(s, "q", &(struct shmring_port_opts) { .index = 2 }, &tx), -EBUSY);

        kill_and_reap(pid);

        /* Its messages are delivered, then its death. */
        for (uint64_t i = 0; i < 3; i++) {
                CHECK_OK(shmring_recv_zc(rx, &m, SECONDS(20)));
                CHECK_EQ(m.seq, i);
                CHECK(msg_check(m.data, m.len, NULL, 0, i) == NULL);
                CHECK_OK(shmring_recv_done(rx));
                CHECK_OK(shmring_recv_zc(qrx, &m, SECONDS(20)));
                CHECK_EQ(m.seq, i);
                CHECK_EQ(m.sender, 2);
                CHECK(msg_check(m.data, m.len, NULL, 2, i) == NULL);
                CHECK_OK(shmring_recv_done(qrx));
        }
        CHECK_ERR(shmring_recv_zc(rx, &m, SECONDS(20)), -EOWNERDEAD);
        CHECK_ERR(shmring_recv_zc(qrx, &m, SECONDS(20)), -EOWNERDEAD);

        /* A new writer takes the broadcast over and the stream goes on. */
        CHECK_OK(shmring_tx_open(s, "bc", NULL, &tx));
        CHECK_OK(shmring_send(tx, "next", 4, 0));
        CHECK_OK(shmring_recv_zc(rx, &m, SECONDS(20)));
        CHECK_EQ(m.len, 4);
        CHECK_EQ(m.seq, 3);
        CHECK(memcmp(m.data, "next", 4) == 0);
        CHECK_OK(shmring_recv_done(rx));
        tx = shmring_tx_close(tx);

        /* And the queue writer's place 2. */
        CHECK_OK(shmring_tx_open(s, "q", &(struct shmring_port_opts) { .index = 2 }, &tx));
        CHECK_EQ(shmring_tx_index(tx), 2);
        CHECK_OK(shmring_send(tx, "more", 4, 0));
        CHECK_OK(shmring_recv_zc(qrx, &m, SECONDS(20)));
        CHECK_EQ(m.len, 4);
        CHECK_EQ(m.sender, 2);
        CHECK_EQ(m.seq, 3);
        CHECK(memcmp(m.data, "more", 4) == 0);
        CHECK_OK(shmring_recv_done(qrx));
        tx = shmring_tx_close(tx);

        rx = shmring_rx_close(rx);
        qrx = shmring_rx_close(qrx);
        close(ready[0]);
        close(ready[1]);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

/* A dead reader's port, and the record of a dead peer, are taken over too. */
static void test_reader_takeover(void) {
        struct shmring *s = make_segment(tap_run_id(), 2);
        struct shmring_rx *rx = NULL;
        struct shmring_port_opts o = { .index = 1 };
        pid_t a = spawn_peer(shmring_name(s), "bc", READER, 1);
        pid_t b;

        CHECK_ERR(shmring_rx_open(s, "bc", &o, &rx), -EBUSY);
        kill_and_reap(a);
        CHECK_OK(shmring_rx_open(s, "bc", &o, &rx));
        CHECK_EQ(shmring_rx_index(rx), 1);
        rx = shmring_rx_close(rx);

        /* max_peers is 2: the creator and a dead queue reader, whose record is free again. */
        a = spawn_peer(shmring_name(s), "q", READER, -1);
        CHECK_ERR(shmring_rx_open(s, "q", NULL, &rx), -EBUSY);
        kill_and_reap(a);
        b = spawn_peer(shmring_name(s), "q", READER, -1);
        kill_and_reap(b);
        CHECK_OK(shmring_rx_open(s, "q", NULL, &rx));
        rx = shmring_rx_close(rx);

        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

/*
 * A reader declared dead while it lives (shmring_mark_dead), dropped and
 * lapped by a DROP_DEAD writer, learns it with -ESTALE instead of reading
 * overwritten slots.
 */
static void test_stale_reader(void) {
        struct shmring *s = make_segment(tap_run_id(), 0);
        struct shmring_port_opts o = quick(-1, SHMRING_PORT_DROP_DEAD);
        struct shmring_tx *tx = NULL;
        unsigned char msg[MSG_MIN];
        int ready[2], go[2];
        int32_t result;
        pid_t pid;

        CHECK_OK(shmring_tx_open(s, "bc", &o, &tx));
        tap_pipe(ready);
        tap_pipe(go);
        pid = tap_fork();
        if (pid == 0) {
                struct shmring *c = NULL;
                struct shmring_rx *rx = NULL;
                unsigned char buf[64];
                CHECK_OK(shmring_attach(shmring_name(s), 0, &c));
                CHECK_OK(shmring_rx_open(c, "bc", NULL, &rx));
                tap_signal(ready[1]);
                tap_await(go[0], 30000);
                result = (int32_t) shmring_recv(rx, buf, sizeof(buf), 0);
                tap_write_all(ready[1], &result, sizeof(result));
                rx = shmring_rx_close(rx);
                c = shmring_close(c);
                _exit(0);
        }
        tap_await(ready[0], 30000);
        CHECK_EQ(shmring_mark_dead(s, pid), 1);
        for (uint64_t i = 0; i < 9; i++) {
                msg_fill(msg, sizeof(msg), 0, i);
                CHECK_OK(shmring_send(tx, msg, sizeof(msg), SECONDS(20)));
        }
        tap_signal(go[1]);
        CHECK(tap_read_all(ready[0], &result, sizeof(result), 30000));
        CHECK_ERR(result, -ESTALE);
        CHECK_CHILD_OK(pid);

        close(ready[0]);
        close(ready[1]);
        close(go[0]);
        close(go[1]);
        tx = shmring_tx_close(tx);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

/*
 * In a child with a private /dev/shm where it can be had: any ringmaster
 * starting meanwhile sweeps every stale segment of this uid from the shared
 * /dev/shm, the one this test kills on purpose included.
 */
static void test_cleanup_stale_apart(void) {
        pid_t pid = tap_fork();

        if (pid == 0) {
                const char *why = tap_private_shm("size=16m");

                if (why)
                        tap_note("stale-segment case in the shared /dev/shm (%s): a ringmaster started "
                                 "meanwhile may sweep its dead segment", why);
                test_cleanup_stale();
                _exit(0);
        }
        CHECK_CHILD_OK(pid);
}

int main(void) {
        tap_init("test-liveness");
        test_cleanup_stale_apart();
        test_mark_dead_count();
        test_wait_readers();
        test_drop_dead();
        test_takeover();
        test_reader_takeover();
        test_stale_reader();
        return tap_done();
}
