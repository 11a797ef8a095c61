/* SPDX-License-Identifier: MIT */
/*
 * Ports: shmring_tx_open, shmring_rx_open, their options and error paths
 * (-ENOENT, -EBUSY, -EINVAL for a wrong kind or an index out of range),
 * shmring_tx_index, shmring_rx_index, closing, and what shmring_close does
 * to ports still open.
 */
#include "tap.h"

#define READERS 3
#define WRITERS 3

static const struct shmring_channel_spec channels[] = {
        { .name = "bc", .kind = SHMRING_BROADCAST, .slots = 8, .slot_size = 64, .overflow_size = 4096,
          .max_ports = READERS },
        { .name = "q", .kind = SHMRING_QUEUE, .slots = 8, .slot_size = 64, .overflow_size = 4096,
          .max_ports = WRITERS },
};

static struct shmring *make_segment(void) {
        struct shmring_spec spec = {
                .run_id = tap_run_id(),
                .n_channels = 2,
                .channels = channels,
        };
        struct shmring *s = NULL;

        CHECK_OK(shmring_create(&spec, &s));
        return s;
}

static struct shmring_port_opts at_index(int32_t index) {
        return (struct shmring_port_opts) { .index = index };
}

static void test_open_errors(void) {
        struct shmring *s = make_segment();
        struct shmring_tx *tx;
        struct shmring_rx *rx;
        struct shmring_port_opts o;

        memset(&tx, SENTINEL, sizeof(tx));
        memset(&rx, SENTINEL, sizeof(rx));

        CHECK_ERR(shmring_tx_open(s, "nope", NULL, &tx), -ENOENT);
        CHECK_ERR(shmring_rx_open(s, "nope", NULL, &rx), -ENOENT);
        CHECK_ERR(shmring_tx_open(s, "b", NULL, &tx), -ENOENT);   /* a prefix is not a name */
        CHECK_ERR(shmring_rx_open(s, "bcc", NULL, &rx), -ENOENT);
        CHECK_ERR(shmring_tx_open(s, "", NULL, &tx), -ENOENT);
        CHECK_ERR(shmring_tx_open(s, NULL, NULL, &tx), -EINVAL);
        CHECK_ERR(shmring_rx_open(s, NULL, NULL, &rx), -EINVAL);
        CHECK_ERR(shmring_tx_open(NULL, "bc", NULL, &tx), -EINVAL);
        CHECK_ERR(shmring_rx_open(NULL, "bc", NULL, &rx), -EINVAL);
        CHECK_ERR(shmring_tx_open(s, "bc", NULL, NULL), -EINVAL);
        CHECK_ERR(shmring_rx_open(s, "bc", NULL, NULL), -EINVAL);

        /* Options: reserved fields, unknown flags and policies, bad spins, indices out of range. */
        o = at_index(-1);
        o.reserved[2] = 1;
        CHECK_ERR(shmring_tx_open(s, "q", &o, &tx), -EINVAL);
        CHECK_ERR(shmring_rx_open(s, "bc", &o, &rx), -EINVAL);
        o = at_index(-1);
        o.wait = SHMRING_WAIT_BLOCK + 1;                /* no such policy */
        CHECK_ERR(shmring_tx_open(s, "q", &o, &tx), -EINVAL);
        CHECK_ERR(shmring_rx_open(s, "bc", &o, &rx), -EINVAL);
        o = at_index(-1);
        o.flags = 1u << 9;
        CHECK_ERR(shmring_tx_open(s, "bc", &o, &tx), -EINVAL);
        CHECK_ERR(shmring_rx_open(s, "q", &o, &rx), -EINVAL);
        o = at_index(-1);
        o.spin_ns = -2;
        CHECK_ERR(shmring_tx_open(s, "bc", &o, &tx), -EINVAL);
        CHECK_ERR(shmring_rx_open(s, "bc", &o, &rx), -EINVAL);
        o = at_index(READERS);
        CHECK_ERR(shmring_rx_open(s, "bc", &o, &rx), -ERANGE);
        o = at_index(-2);
        CHECK_ERR(shmring_rx_open(s, "bc", &o, &rx), -EINVAL);
        o = at_index(WRITERS);
        CHECK_ERR(shmring_tx_open(s, "q", &o, &tx), -ERANGE);
        o = at_index(INT32_MAX);
        CHECK_ERR(shmring_tx_open(s, "q", &o, &tx), -ERANGE);
        o = at_index(INT32_MIN);
        CHECK_ERR(shmring_tx_open(s, "q", &o, &tx), -EINVAL);
        /* The broadcast writer and the queue reader are one port each: index 0 (or -1). */
        o = at_index(1);
        CHECK_ERR(shmring_tx_open(s, "bc", &o, &tx), -ERANGE);
        CHECK_ERR(shmring_rx_open(s, "q", &o, &rx), -ERANGE);

        CHECK(tap_all_bytes(&tx, sizeof(tx), SENTINEL));
        CHECK(tap_all_bytes(&rx, sizeof(rx), SENTINEL));

        CHECK(shmring_tx_close(NULL) == NULL);
        CHECK(shmring_rx_close(NULL) == NULL);
        CHECK_ERR(shmring_tx_index(NULL), -EINVAL);
        CHECK_ERR(shmring_rx_index(NULL), -EINVAL);

        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

static void test_broadcast_ports(void) {
        struct shmring *s = make_segment();
        struct shmring_tx *tx = NULL, *tx2;
        struct shmring_rx *rx[READERS] = { NULL }, *extra;
        struct shmring_port_opts o = at_index(-1);
        bool seen[READERS] = { false };
        char name[SHMRING_NAME_MAX];
        pid_t pid;

        snprintf(name, sizeof(name), "%s", shmring_name(s));

        /* One writer. */
        CHECK_OK(shmring_tx_open(s, "bc", NULL, &tx));
        CHECK_EQ(shmring_tx_index(tx), 0);
        memset(&tx2, SENTINEL, sizeof(tx2));
        CHECK_ERR(shmring_tx_open(s, "bc", NULL, &tx2), -EBUSY);
        CHECK(tap_all_bytes(&tx2, sizeof(tx2), SENTINEL));
        pid = tap_fork();
        if (pid == 0) {
                struct shmring *c = NULL;
                struct shmring_tx *ctx;
                CHECK_OK(shmring_attach(name, 0, &c));
                CHECK_ERR(shmring_tx_open(c, "bc", NULL, &ctx), -EBUSY);
                c = shmring_close(c);
                _exit(0);
        }
        CHECK_CHILD_OK(pid);

        /* READERS readers, each in its own slot. */
        for (int i = 0; i < READERS; i++) {
                int index;
                CHECK_OK(shmring_rx_open(s, "bc", i == 0 ? NULL : &o, &rx[i]));
                index = shmring_rx_index(rx[i]);
                CHECK(index >= 0 && index < READERS);
                CHECK(!seen[index]);
                seen[index] = true;
        }
        memset(&extra, SENTINEL, sizeof(extra));
        CHECK_ERR(shmring_rx_open(s, "bc", NULL, &extra), -EBUSY);
        CHECK(tap_all_bytes(&extra, sizeof(extra), SENTINEL));

        /* Taking a given slot: busy while held, free once closed. */
        int held = shmring_rx_index(rx[1]);
        o = at_index(held);
        CHECK_ERR(shmring_rx_open(s, "bc", &o, &extra), -EBUSY);
        rx[1] = shmring_rx_close(rx[1]);
        CHECK(!rx[1]);
        CHECK_OK(shmring_rx_open(s, "bc", &o, &rx[1]));
        CHECK_EQ(shmring_rx_index(rx[1]), held);

        /* Another process may take a slot that was given back. */
        rx[2] = shmring_rx_close(rx[2]);
        pid = tap_fork();
        if (pid == 0) {
                struct shmring *c = NULL;
                struct shmring_rx *crx = NULL, *crx2;
                CHECK_OK(shmring_attach(name, 0, &c));
                CHECK_OK(shmring_rx_open(c, "bc", NULL, &crx));
                CHECK_ERR(shmring_rx_open(c, "bc", NULL, &crx2), -EBUSY);
                crx = shmring_rx_close(crx);
                c = shmring_close(c);
                _exit(0);
        }
        CHECK_CHILD_OK(pid);

        /* A closed writer's place is free. */
        tx = shmring_tx_close(tx);
        CHECK(!tx);
        CHECK_OK(shmring_tx_open(s, "bc", NULL, &tx));
        tx = shmring_tx_close(tx);

        for (int i = 0; i < READERS; i++)
                rx[i] = shmring_rx_close(rx[i]);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

static void test_queue_ports(void) {
        struct shmring *s = make_segment();
        struct shmring_tx *tx[WRITERS] = { NULL }, *extra;
        struct shmring_rx *rx = NULL, *rx2;
        struct shmring_port_opts o = at_index(-1);
        bool seen[WRITERS] = { false };

        CHECK_OK(shmring_rx_open(s, "q", NULL, &rx));
        CHECK_EQ(shmring_rx_index(rx), 0);
        memset(&rx2, SENTINEL, sizeof(rx2));
        CHECK_ERR(shmring_rx_open(s, "q", NULL, &rx2), -EBUSY);
        CHECK(tap_all_bytes(&rx2, sizeof(rx2), SENTINEL));
        rx = shmring_rx_close(rx);
        CHECK_OK(shmring_rx_open(s, "q", NULL, &rx));

        for (int i = 0; i < WRITERS; i++) {
                int index;
                CHECK_OK(shmring_tx_open(s, "q", i == 0 ? NULL : &o, &tx[i]));
                index = shmring_tx_index(tx[i]);
                CHECK(index >= 0 && index < WRITERS);
                CHECK(!seen[index]);
                seen[index] = true;
        }
        memset(&extra, SENTINEL, sizeof(extra));
        CHECK_ERR(shmring_tx_open(s, "q", NULL, &extra), -EBUSY);
        CHECK(tap_all_bytes(&extra, sizeof(extra), SENTINEL));

        int held = shmring_tx_index(tx[2]);
        o = at_index(held);
        CHECK_ERR(shmring_tx_open(s, "q", &o, &extra), -EBUSY);
        tx[2] = shmring_tx_close(tx[2]);
        CHECK_OK(shmring_tx_open(s, "q", &o, &tx[2]));
        CHECK_EQ(shmring_tx_index(tx[2]), held);

        /* A message says which writer sent it. */
        for (int i = 0; i < WRITERS; i++) {
                struct shmring_msg m;
                CHECK_OK(shmring_send(tx[i], &i, sizeof(i), 0));
                CHECK_OK(shmring_recv_zc(rx, &m, 0));
                CHECK_EQ(m.len, sizeof(i));
                CHECK_EQ(m.sender, shmring_tx_index(tx[i]));
                CHECK(memcmp(m.data, &i, sizeof(i)) == 0);
                CHECK_OK(shmring_recv_done(rx));
        }

        for (int i = 0; i < WRITERS; i++)
                tx[i] = shmring_tx_close(tx[i]);
        rx = shmring_rx_close(rx);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

/*
 * shmring_close closes the ports still open: a reader elsewhere sees the
 * writer gone (-EPIPE once drained), and the ports' places are free again.
 */
static void test_close_closes_ports(void) {
        struct shmring *s = make_segment();
        struct shmring_tx *tx = NULL;
        struct shmring_rx *rx = NULL;
        char name[SHMRING_NAME_MAX];
        int ready[2], go[2];
        pid_t pid;
        char buf[64];

        snprintf(name, sizeof(name), "%s", shmring_name(s));
        tap_pipe(ready);
        tap_pipe(go);
        CHECK_OK(shmring_rx_open(s, "bc", NULL, &rx));

        pid = tap_fork();
        if (pid == 0) {
                struct shmring *c = NULL;
                struct shmring_tx *ctx = NULL;
                struct shmring_rx *crx = NULL;
                CHECK_OK(shmring_attach(name, 0, &c));
                CHECK_OK(shmring_tx_open(c, "bc", NULL, &ctx));
                CHECK_OK(shmring_rx_open(c, "q", NULL, &crx));
                CHECK_OK(shmring_send(ctx, "last words", 10, 0));
                tap_signal(ready[1]);
                tap_await(go[0], 30000);
                c = shmring_close(c); /* ctx and crx with it */
                tap_signal(ready[1]);
                _exit(0);
        }
        tap_await(ready[0], 30000);
        CHECK_ERR(shmring_tx_open(s, "bc", NULL, &tx), -EBUSY);
        tap_signal(go[1]);
        tap_await(ready[0], 30000);
        CHECK_CHILD_OK(pid);

        CHECK_EQ(shmring_recv(rx, buf, sizeof(buf), 0), 10);
        CHECK(memcmp(buf, "last words", 10) == 0);
        CHECK_ERR(shmring_recv(rx, buf, sizeof(buf), 0), -EPIPE);
        CHECK_ERR(shmring_recv(rx, buf, sizeof(buf), SHMRING_INFINITE), -EPIPE);
        CHECK_OK(shmring_tx_open(s, "bc", NULL, &tx));
        {
                struct shmring_rx *qrx = NULL;
                CHECK_OK(shmring_rx_open(s, "q", NULL, &qrx));
                qrx = shmring_rx_close(qrx);
        }
        tx = shmring_tx_close(tx);
        rx = shmring_rx_close(rx);

        /* The same in-process: close with ports open, no leaks (ASan checks). */
        CHECK_OK(shmring_tx_open(s, "bc", NULL, &tx));
        CHECK_OK(shmring_rx_open(s, "bc", NULL, &rx));
        CHECK_OK(shmring_send(tx, "x", 1, 0));
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
        CHECK(!s);
        close(ready[0]);
        close(ready[1]);
        close(go[0]);
        close(go[1]);
}

int main(void) {
        tap_init("test-ports");
        test_open_errors();
        test_broadcast_ports();
        test_queue_ports();
        test_close_closes_ports();
        return tap_done();
}
