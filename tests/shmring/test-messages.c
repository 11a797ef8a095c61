/* SPDX-License-Identifier: MIT */
/*
 * Messages in one process: shmring_send, shmring_sendv, shmring_send_reserve
 * + shmring_send_commit, shmring_recv, shmring_recv_zc + shmring_recv_done,
 * inline and through the overflow area, and their error paths: -EMSGSIZE
 * both ways, -EAGAIN with timeout 0, -ETIMEDOUT, -EPIPE once the writer
 * closed and the reader drained, -EBUSY for a second zero-copy receive,
 * -EINTR for a signal, and ret_ parameters left untouched on failure.
 */
#include <sys/time.h>

#include "payload.h"
#include "tap.h"

#define SLOTS 4
#define SLOT_SIZE 64
#define OVERFLOW 8192

static const struct shmring_channel_spec channels[] = {
        { .name = "bc", .kind = SHMRING_BROADCAST, .slots = SLOTS, .slot_size = SLOT_SIZE,
          .overflow_size = OVERFLOW, .max_ports = 2 },
        { .name = "q", .kind = SHMRING_QUEUE, .slots = SLOTS, .slot_size = SLOT_SIZE,
          .overflow_size = OVERFLOW, .max_ports = 2 },
        { .name = "inline", .kind = SHMRING_BROADCAST, .slots = SLOTS, .slot_size = SLOT_SIZE,
          .overflow_size = 0, .max_ports = 1 },
};

struct fixture {
        struct shmring *s;
        struct shmring_channel_info bc, q, in;
};

static struct fixture setup(void) {
        struct shmring_spec spec = {
                .run_id = tap_run_id(),
                .n_channels = 3,
                .channels = channels,
        };
        struct fixture f = { NULL };

        CHECK_OK(shmring_create(&spec, &f.s));
        CHECK_OK(shmring_channel_info(f.s, 0, &f.bc));
        CHECK_OK(shmring_channel_info(f.s, 1, &f.q));
        CHECK_OK(shmring_channel_info(f.s, 2, &f.in));
        CHECK(f.bc.max_message > f.bc.slot_size);
        CHECK_EQ(f.in.max_message, f.in.slot_size);
        return f;
}

static void teardown(struct fixture *f) {
        CHECK_OK(shmring_unlink(f->s));
        f->s = shmring_close(f->s);
}

static struct shmring_port_opts never_spin(void) {
        return (struct shmring_port_opts) { .index = -1, .spin_ns = SHMRING_SPIN_NEVER };
}

/* Sends a msg_fill message of len bytes, numbered seq; never waits. */
#define send_msg(tx, len, writer, seq) send_msg_at(__LINE__, tx, len, writer, seq)
static void send_msg_at(int line, struct shmring_tx *tx, size_t len, uint32_t writer, uint64_t seq) {
        unsigned char *buf = malloc(len);
        int r;

        CHECK(buf);
        msg_fill(buf, len, writer, seq);
        r = shmring_send(tx, buf, len, 0);
        if (r < 0)
                tap_fail(__FILE__, line, "sending message %" PRIu64 " of %zu bytes: %s", seq, len, tap_errno_name(r));
        free(buf);
}

/* Receives and checks one msg_fill message, by copy or zero-copy; never waits. */
#define recv_msg(rx, len, writer, seq, zc) recv_msg_at(__LINE__, rx, len, writer, seq, zc)
static void recv_msg_at(int line, struct shmring_rx *rx, size_t len, uint32_t writer, uint64_t seq, bool zc) {
        const char *bad;
        long long r;

        if (zc) {
                struct shmring_msg m;
                r = shmring_recv_zc(rx, &m, 0);
                if (r < 0)
                        tap_fail(__FILE__, line, "receiving message %" PRIu64 ": %s", seq, tap_errno_name((int) r));
                if (m.len != len)
                        tap_fail(__FILE__, line, "message %" PRIu64 " is %zu bytes, not %zu", seq, m.len, len);
                bad = msg_check(m.data, m.len, NULL, writer, seq);
                if (bad)
                        tap_fail(__FILE__, line, "message %" PRIu64 " of %zu bytes: %s", seq, len, bad);
                CHECK_OK(shmring_recv_done(rx));
        } else {
                unsigned char *buf = malloc(len + 16);
                CHECK(buf);
                r = shmring_recv(rx, buf, len + 16, 0);
                if (r < 0)
                        tap_fail(__FILE__, line, "receiving message %" PRIu64 ": %s", seq, tap_errno_name((int) r));
                if ((size_t) r != len)
                        tap_fail(__FILE__, line, "message %" PRIu64 " is %lld bytes, not %zu", seq, r, len);
                bad = msg_check(buf, len, NULL, writer, seq);
                if (bad)
                        tap_fail(__FILE__, line, "message %" PRIu64 " of %zu bytes: %s", seq, len, bad);
                free(buf);
        }
}

static void test_sizes(void) {
        struct fixture f = setup();
        struct shmring_tx *tx = NULL;
        struct shmring_rx *rx = NULL;
        const size_t sizes[] = { MSG_MIN, 40, f.bc.slot_size - 1, f.bc.slot_size, f.bc.slot_size + 1,
                                 2 * f.bc.slot_size, f.bc.max_message / 2, f.bc.max_message - 1,
                                 f.bc.max_message };
        const size_t n = sizeof(sizes) / sizeof(sizes[0]);
        uint64_t seq = 0;
        struct shmring_msg m;
        char c;

        CHECK_OK(shmring_rx_open(f.s, "bc", NULL, &rx));
        CHECK_OK(shmring_tx_open(f.s, "bc", NULL, &tx));

        /* Empty messages are messages. */
        CHECK_OK(shmring_send(tx, NULL, 0, 0));
        CHECK_OK(shmring_send(tx, "", 0, 0));
        CHECK_EQ(shmring_recv(rx, &c, 1, 0), 0);
        CHECK_EQ(shmring_recv(rx, NULL, 0, 0), 0);
        seq += 2;

        /* Each size, one at a time and then a ring's worth at once, both ways of receiving. */
        for (size_t i = 0; i < n; i++) {
                send_msg(tx, sizes[i], 0, seq);
                recv_msg(rx, sizes[i], 0, seq, i % 2);
                seq++;
        }
        for (size_t i = 0; i < n; i++) {
                uint64_t first = seq;
                unsigned k = 0;
                for (; k < SLOTS && (sizes[i] <= f.bc.slot_size || k < 1); k++)
                        send_msg(tx, sizes[i], 0, seq++);
                for (unsigned j = 0; j < k; j++)
                        recv_msg(rx, sizes[i], 0, first + j, j % 2);
        }

        /* The message number and sender a zero-copy receive reports. */
        send_msg(tx, 100, 0, seq);
        memset(&m, 0, sizeof(m));
        CHECK_OK(shmring_recv_zc(rx, &m, 0));
        CHECK_EQ(m.seq, seq);
        CHECK_EQ(m.sender, 0);
        CHECK_OK(shmring_recv_done(rx));
        seq++;

        /* Many wraps through a 4-slot ring and its overflow area. */
        struct msg_sizes sz = { .slot_size = f.bc.slot_size, .max_message = f.bc.max_message / 3,
                                .overflow_per_mille = 300 };
        for (unsigned i = 0; i < 3000; i++) {
                size_t len = msg_len(&sz, 0, seq);
                send_msg(tx, len, 0, seq);
                recv_msg(rx, len, 0, seq, i % 3 == 0);
                seq++;
        }

        tx = shmring_tx_close(tx);
        rx = shmring_rx_close(rx);
        teardown(&f);
}

static void test_sendv(void) {
        struct fixture f = setup();
        struct shmring_tx *tx = NULL;
        struct shmring_rx *rx = NULL;
        size_t big = f.q.max_message;
        unsigned char *msg = malloc(big), *got = malloc(big);
        struct iovec iov[4];

        CHECK(msg && got);
        CHECK_OK(shmring_rx_open(f.s, "q", NULL, &rx));
        CHECK_OK(shmring_tx_open(f.s, "q", NULL, &tx));

        /* Pieces that cross the inline limit, inline and overflow. */
        const size_t lens[] = { 30, f.q.slot_size, f.q.slot_size + 7, big };
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
                size_t len = lens[i], a = len / 3, b = len / 5;
                msg_fill(msg, len, 1, i);
                iov[0] = (struct iovec) { msg, a };
                iov[1] = (struct iovec) { NULL, 0 };
                iov[2] = (struct iovec) { msg + a, b };
                iov[3] = (struct iovec) { msg + a + b, len - a - b };
                CHECK_OK(shmring_sendv(tx, iov, 4, 0));
                memset(got, 0, len);
                CHECK_EQ(shmring_recv(rx, got, big, 0), len);
                CHECK(memcmp(got, msg, len) == 0);
        }

        /* No pieces: an empty message. */
        CHECK_OK(shmring_sendv(tx, NULL, 0, 0));
        CHECK_EQ(shmring_recv(rx, got, big, 0), 0);

        /* Errors. */
        iov[0] = (struct iovec) { msg, big };
        iov[1] = (struct iovec) { msg, 1 };
        CHECK_ERR(shmring_sendv(tx, iov, 2, 0), -EMSGSIZE);
        iov[0] = (struct iovec) { msg, SIZE_MAX };
        iov[1] = (struct iovec) { msg, 2 };
        CHECK_ERR(shmring_sendv(tx, iov, 2, 0), -EMSGSIZE);
        CHECK_ERR(shmring_sendv(tx, iov, -1, 0), -EINVAL);
        CHECK_ERR(shmring_sendv(tx, NULL, 1, 0), -EINVAL);
        iov[0] = (struct iovec) { NULL, 5 };
        CHECK_ERR(shmring_sendv(tx, iov, 1, 0), -EINVAL);
        iov[0] = (struct iovec) { msg, 1 };
        CHECK_ERR(shmring_sendv(NULL, iov, 1, 0), -EINVAL);
        CHECK_ERR(shmring_recv(rx, got, big, 0), -EAGAIN);

        free(msg);
        free(got);
        tx = shmring_tx_close(tx);
        rx = shmring_rx_close(rx);
        teardown(&f);
}

static void test_reserve_commit(void) {
        struct fixture f = setup();
        struct shmring_tx *tx = NULL;
        struct shmring_rx *rx = NULL;
        void *p;
        const size_t lens[] = { 0, 1, MSG_MIN, f.bc.slot_size, f.bc.slot_size + 1, f.bc.max_message };
        uint64_t seq = 0;

        CHECK_OK(shmring_rx_open(f.s, "bc", NULL, &rx));
        CHECK_OK(shmring_tx_open(f.s, "bc", NULL, &tx));

        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++, seq++) {
                size_t len = lens[i];
                p = NULL;
                CHECK_OK(shmring_send_reserve(tx, len, &p, 0));
                CHECK(p || len == 0);
                if (len >= MSG_MIN)
                        msg_fill(p, len, 0, seq);
                else if (len > 0)
                        memset(p, 0x5c, len);
                /* Nothing is visible before the commit. */
                CHECK_ERR(shmring_recv(rx, NULL, 0, 0), -EAGAIN);
                CHECK_OK(shmring_send_commit(tx));
                if (len >= MSG_MIN) {
                        recv_msg(rx, len, 0, seq, i % 2);
                } else {
                        unsigned char b[MSG_MIN];
                        CHECK_EQ(shmring_recv(rx, b, sizeof(b), 0), len);
                        CHECK(tap_all_bytes(b, len, 0x5c));
                }
        }

        /* Errors: too big, commit without reserve, reserve or send while one is open. */
        memset(&p, SENTINEL, sizeof(p));
        CHECK_ERR(shmring_send_reserve(tx, f.bc.max_message + 1, &p, 0), -EMSGSIZE);
        CHECK_ERR(shmring_send_reserve(tx, SIZE_MAX, &p, 0), -EMSGSIZE);
        CHECK(tap_all_bytes(&p, sizeof(p), SENTINEL));
        CHECK_ERR(shmring_send_reserve(tx, 8, NULL, 0), -EINVAL);
        CHECK_ERR(shmring_send_reserve(NULL, 8, &p, 0), -EINVAL);
        CHECK(tap_all_bytes(&p, sizeof(p), SENTINEL));
        CHECK_ERR(shmring_send_commit(tx), -ENOENT);
        CHECK_ERR(shmring_send_commit(NULL), -EINVAL);

        CHECK_OK(shmring_send_reserve(tx, 32, &p, 0));
        msg_fill(p, 32, 0, seq);
        {
                void *q;
                memset(&q, SENTINEL, sizeof(q));
                CHECK_ERR(shmring_send_reserve(tx, 32, &q, 0), -EBUSY);
                CHECK(tap_all_bytes(&q, sizeof(q), SENTINEL));
                CHECK_ERR(shmring_send(tx, "x", 1, 0), -EBUSY);
        }
        CHECK_OK(shmring_send_commit(tx));
        recv_msg(rx, 32, 0, seq++, false);
        CHECK_ERR(shmring_send_commit(tx), -ENOENT);

        /* A full ring: reserve fails like send, leaving ret_data alone. */
        for (unsigned i = 0; i < SLOTS; i++)
                send_msg(tx, MSG_MIN, 0, seq + i);
        memset(&p, SENTINEL, sizeof(p));
        CHECK_ERR(shmring_send_reserve(tx, MSG_MIN, &p, 0), -EAGAIN);
        CHECK_ERR(shmring_send_reserve(tx, MSG_MIN, &p, 10 * 1000 * 1000), -ETIMEDOUT);
        CHECK(tap_all_bytes(&p, sizeof(p), SENTINEL));
        for (unsigned i = 0; i < SLOTS; i++)
                recv_msg(rx, MSG_MIN, 0, seq + i, false);
        seq += SLOTS;

        /* Closing the port with a reservation open publishes nothing. */
        CHECK_OK(shmring_send_reserve(tx, 40, &p, 0));
        memset(p, 1, 40);
        tx = shmring_tx_close(tx);
        CHECK_ERR(shmring_recv(rx, NULL, 0, 0), -EPIPE);

        rx = shmring_rx_close(rx);
        teardown(&f);
}

static void test_emsgsize(void) {
        struct fixture f = setup();
        struct shmring_tx *tx = NULL, *itx = NULL;
        struct shmring_rx *rx = NULL, *irx = NULL;
        size_t big = f.bc.max_message;
        unsigned char *buf = calloc(1, big + 2);

        CHECK(buf);
        CHECK_OK(shmring_rx_open(f.s, "bc", NULL, &rx));
        CHECK_OK(shmring_tx_open(f.s, "bc", NULL, &tx));
        CHECK_OK(shmring_rx_open(f.s, "inline", NULL, &irx));
        CHECK_OK(shmring_tx_open(f.s, "inline", NULL, &itx));

        /* Sending more than the largest message. */
        CHECK_ERR(shmring_send(tx, buf, big + 1, 0), -EMSGSIZE);
        CHECK_ERR(shmring_send(tx, buf, SIZE_MAX, 0), -EMSGSIZE);
        CHECK_ERR(shmring_send(itx, buf, f.in.slot_size + 1, 0), -EMSGSIZE);
        CHECK_ERR(shmring_send(itx, buf, f.in.slot_size + 1, SHMRING_INFINITE), -EMSGSIZE);
        CHECK_OK(shmring_send(itx, buf, f.in.slot_size, 0));
        CHECK_EQ(shmring_recv(irx, buf, big, 0), f.in.slot_size);
        CHECK_ERR(shmring_recv(rx, buf, big, 0), -EAGAIN);

        /* Receiving into too small a buffer leaves the message in place. */
        const size_t lens[] = { 100 > f.bc.slot_size ? f.bc.slot_size : 50, f.bc.slot_size + 10, big };
        for (size_t i = 0; i < 3; i++) {
                size_t len = lens[i];
                send_msg(tx, len, 0, i);
                CHECK_ERR(shmring_recv(rx, buf, len - 1, 0), -EMSGSIZE);
                CHECK_ERR(shmring_recv(rx, buf, 0, 0), -EMSGSIZE);
                CHECK_ERR(shmring_recv(rx, NULL, 0, SHMRING_INFINITE), -EMSGSIZE);
                CHECK_EQ(shmring_recv(rx, buf, len, 0), len);
                CHECK(msg_check(buf, len, NULL, 0, i) == NULL);
        }

        free(buf);
        tx = shmring_tx_close(tx);
        rx = shmring_rx_close(rx);
        itx = shmring_tx_close(itx);
        irx = shmring_rx_close(irx);
        teardown(&f);
}

static void check_elapsed(uint64_t t0, uint64_t want_ns) {
        uint64_t dt = tap_now_ns() - t0;

        if (dt < want_ns)
                tap_fail(__FILE__, __LINE__, "returned after %" PRIu64 " ns, before its timeout of %" PRIu64 " ns",
                         dt, want_ns);
        if (dt > want_ns + UINT64_C(5000000000))
                tap_fail(__FILE__, __LINE__, "returned %" PRIu64 " ns after its timeout", dt - want_ns);
}

static void test_timeouts(void) {
        struct fixture f = setup();
        struct shmring_tx *tx = NULL;
        struct shmring_rx *rx = NULL, *rx2 = NULL;
        struct shmring_port_opts nospin = never_spin();
        unsigned char buf[SLOT_SIZE] = { 0 };
        struct shmring_msg m;
        uint64_t t0;
        const int64_t T = 30 * 1000 * 1000;

        /* Nothing to read. */
        CHECK_OK(shmring_rx_open(f.s, "bc", &nospin, &rx));
        CHECK_ERR(shmring_recv(rx, buf, sizeof(buf), 0), -EAGAIN);          /* no writer yet */
        CHECK_OK(shmring_tx_open(f.s, "bc", &nospin, &tx));
        CHECK_ERR(shmring_recv(rx, buf, sizeof(buf), 0), -EAGAIN);
        memset(&m, SENTINEL, sizeof(m));
        CHECK_ERR(shmring_recv_zc(rx, &m, 0), -EAGAIN);
        CHECK(tap_all_bytes(&m, sizeof(m), SENTINEL));
        t0 = tap_now_ns();
        CHECK_ERR(shmring_recv(rx, buf, sizeof(buf), T), -ETIMEDOUT);
        check_elapsed(t0, (uint64_t) T);
        t0 = tap_now_ns();
        CHECK_ERR(shmring_recv_zc(rx, &m, T), -ETIMEDOUT);
        check_elapsed(t0, (uint64_t) T);
        CHECK(tap_all_bytes(&m, sizeof(m), SENTINEL));
        CHECK_ERR(shmring_recv(NULL, buf, sizeof(buf), 0), -EINVAL);
        CHECK_ERR(shmring_recv(rx, NULL, 5, 0), -EINVAL);
        CHECK_ERR(shmring_recv_zc(NULL, &m, 0), -EINVAL);
        CHECK_ERR(shmring_recv_zc(rx, NULL, 0), -EINVAL);
        CHECK(tap_all_bytes(&m, sizeof(m), SENTINEL));

        /* No room to write: the slowest live reader is a whole ring behind. */
        CHECK_OK(shmring_rx_open(f.s, "bc", NULL, &rx2));
        for (unsigned i = 0; i < SLOTS; i++)
                send_msg(tx, MSG_MIN, 0, i);
        CHECK_ERR(shmring_send(tx, buf, MSG_MIN, 0), -EAGAIN);
        t0 = tap_now_ns();
        CHECK_ERR(shmring_send(tx, buf, MSG_MIN, T), -ETIMEDOUT);
        check_elapsed(t0, (uint64_t) T);
        CHECK_ERR(shmring_send(NULL, buf, MSG_MIN, 0), -EINVAL);
        CHECK_ERR(shmring_send(tx, NULL, 5, 0), -EINVAL);
        /* One reader catching up frees nothing while the other is behind. */
        for (unsigned i = 0; i < SLOTS; i++)
                recv_msg(rx, MSG_MIN, 0, i, i % 2);
        CHECK_ERR(shmring_send(tx, buf, MSG_MIN, 0), -EAGAIN);
        recv_msg(rx2, MSG_MIN, 0, 0, false);
        send_msg(tx, MSG_MIN, 0, SLOTS);
        CHECK_ERR(shmring_send(tx, buf, MSG_MIN, 0), -EAGAIN);
        /* A reader that closes is waited on no more. */
        rx2 = shmring_rx_close(rx2);
        send_msg(tx, MSG_MIN, 0, SLOTS + 1);
        for (unsigned i = SLOTS; i < SLOTS + 2; i++)
                recv_msg(rx, MSG_MIN, 0, i, false);
        CHECK_ERR(shmring_recv(rx, buf, sizeof(buf), 0), -EAGAIN);

        tx = shmring_tx_close(tx);
        rx = shmring_rx_close(rx);
        teardown(&f);
}

/* The overflow area fills before the slots do; send waits for it too. */
static void test_overflow_full(void) {
        struct fixture f = setup();
        struct shmring_tx *tx = NULL;
        struct shmring_rx *rx = NULL;
        size_t len = f.q.overflow_size * 2 / 5;    /* two fit, three do not */
        unsigned char *buf = calloc(1, len);
        uint64_t seq = 0;

        CHECK(buf);
        CHECK(len > f.q.slot_size && len <= f.q.max_message);
        CHECK_OK(shmring_rx_open(f.s, "q", NULL, &rx));
        CHECK_OK(shmring_tx_open(f.s, "q", NULL, &tx));
        for (unsigned round = 0; round < 10; round++) {
                send_msg(tx, len, 0, seq);
                send_msg(tx, len, 0, seq + 1);
                CHECK_ERR(shmring_send(tx, buf, len, 0), -EAGAIN);
                CHECK_ERR(shmring_send(tx, buf, len, 1000 * 1000), -ETIMEDOUT);
                /* Small messages still go inline. */
                send_msg(tx, MSG_MIN, 0, seq + 2);
                recv_msg(rx, len, 0, seq, round % 2);
                send_msg(tx, len, 0, seq + 3);
                recv_msg(rx, len, 0, seq + 1, false);
                recv_msg(rx, MSG_MIN, 0, seq + 2, false);
                recv_msg(rx, len, 0, seq + 3, true);
                seq += 4;
        }
        free(buf);
        tx = shmring_tx_close(tx);
        rx = shmring_rx_close(rx);
        teardown(&f);
}

static void test_epipe(void) {
        struct fixture f = setup();
        struct shmring_tx *tx = NULL, *tx2 = NULL;
        struct shmring_rx *rx = NULL, *qrx = NULL;
        unsigned char buf[SLOT_SIZE];
        struct shmring_msg m;

        /* Broadcast: the reader drains, then -EPIPE, whatever the timeout. */
        CHECK_OK(shmring_rx_open(f.s, "bc", NULL, &rx));
        CHECK_OK(shmring_tx_open(f.s, "bc", NULL, &tx));
        send_msg(tx, MSG_MIN, 0, 0);
        send_msg(tx, f.bc.slot_size + 1, 0, 1);
        tx = shmring_tx_close(tx);
        recv_msg(rx, MSG_MIN, 0, 0, false);
        recv_msg(rx, f.bc.slot_size + 1, 0, 1, true);
        CHECK_ERR(shmring_recv(rx, buf, sizeof(buf), 0), -EPIPE);
        CHECK_ERR(shmring_recv(rx, buf, sizeof(buf), 1000), -EPIPE);
        CHECK_ERR(shmring_recv(rx, buf, sizeof(buf), SHMRING_INFINITE), -EPIPE);
        memset(&m, SENTINEL, sizeof(m));
        CHECK_ERR(shmring_recv_zc(rx, &m, SHMRING_INFINITE), -EPIPE);
        CHECK(tap_all_bytes(&m, sizeof(m), SENTINEL));

        /* A new writer carries on where the old one stopped. */
        CHECK_OK(shmring_tx_open(f.s, "bc", NULL, &tx));
        CHECK_OK(shmring_send(tx, "again", 5, 0));
        CHECK_OK(shmring_recv_zc(rx, &m, 0));
        CHECK_EQ(m.len, 5);
        CHECK(memcmp(m.data, "again", 5) == 0);
        CHECK_EQ(m.seq, 2);
        CHECK_OK(shmring_recv_done(rx));
        tx = shmring_tx_close(tx);
        CHECK_ERR(shmring_recv(rx, buf, sizeof(buf), SHMRING_INFINITE), -EPIPE);

        /* Queue: -EPIPE only when every writer that opened has closed. */
        CHECK_OK(shmring_rx_open(f.s, "q", NULL, &qrx));
        CHECK_OK(shmring_tx_open(f.s, "q", NULL, &tx));
        CHECK_OK(shmring_tx_open(f.s, "q", NULL, &tx2));
        send_msg(tx, MSG_MIN, 7, 0);
        send_msg(tx2, MSG_MIN, 8, 0);
        tx = shmring_tx_close(tx);
        CHECK_EQ(shmring_recv(qrx, buf, sizeof(buf), 0), MSG_MIN);
        CHECK_EQ(shmring_recv(qrx, buf, sizeof(buf), 0), MSG_MIN);
        CHECK_ERR(shmring_recv(qrx, buf, sizeof(buf), 0), -EAGAIN);
        send_msg(tx2, MSG_MIN, 8, 1);
        tx2 = shmring_tx_close(tx2);
        recv_msg(qrx, MSG_MIN, 8, 1, true);
        CHECK_ERR(shmring_recv(qrx, buf, sizeof(buf), 0), -EPIPE);
        CHECK_ERR(shmring_recv(qrx, buf, sizeof(buf), SHMRING_INFINITE), -EPIPE);

        rx = shmring_rx_close(rx);
        qrx = shmring_rx_close(qrx);
        teardown(&f);
}

static void test_zero_copy(void) {
        struct fixture f = setup();
        struct shmring_tx *tx = NULL;
        struct shmring_rx *rx = NULL;
        struct shmring_msg m, m2;
        size_t big = f.bc.overflow_size * 2 / 5;
        unsigned char *buf = calloc(1, big);
        uint64_t seq = 0;

        CHECK_OK(shmring_rx_open(f.s, "bc", NULL, &rx));
        CHECK_OK(shmring_tx_open(f.s, "bc", NULL, &tx));

        CHECK_ERR(shmring_recv_done(rx), -ENOENT);
        CHECK_ERR(shmring_recv_done(NULL), -EINVAL);

        for (int round = 0; round < 2; round++) {
                size_t len = round == 0 ? MSG_MIN : big;
                /* Hold one message: a second zero-copy receive, or a copy, is -EBUSY. */
                send_msg(tx, len, 0, seq);
                send_msg(tx, MSG_MIN, 0, seq + 1);
                CHECK_OK(shmring_recv_zc(rx, &m, 0));
                CHECK_EQ(m.len, len);
                memset(&m2, SENTINEL, sizeof(m2));
                CHECK_ERR(shmring_recv_zc(rx, &m2, 0), -EBUSY);
                CHECK_ERR(shmring_recv_zc(rx, &m2, SHMRING_INFINITE), -EBUSY);
                CHECK(tap_all_bytes(&m2, sizeof(m2), SENTINEL));
                CHECK_ERR(shmring_recv(rx, buf, big, 0), -EBUSY);

                /* The writer cannot reuse the held message's space. */
                unsigned sent = 0;
                while (shmring_send(tx, buf, len, 0) == 0)
                        sent++;
                CHECK_ERR(shmring_send(tx, buf, len, 0), -EAGAIN);
                /* Round 0: two slots are taken (held and next); round 1: 0.4 of the overflow area is held. */
                CHECK_EQ(sent, round == 0 ? SLOTS - 2 : 1);
                if (msg_check(m.data, m.len, NULL, 0, seq))
                        tap_fail(__FILE__, __LINE__, "a held message was overwritten: %s",
                                 msg_check(m.data, m.len, NULL, 0, seq));
                CHECK_OK(shmring_recv_done(rx));
                CHECK_ERR(shmring_recv_done(rx), -ENOENT);
                recv_msg(rx, MSG_MIN, 0, seq + 1, true);
                seq += 2;
                for (unsigned i = 0; i < sent; i++) {
                        CHECK_OK(shmring_recv_zc(rx, &m, 0));
                        CHECK_EQ(m.len, len);
                        CHECK_EQ(m.seq, seq);
                        CHECK_OK(shmring_recv_done(rx));
                        seq++;
                }
                CHECK_ERR(shmring_recv_zc(rx, &m, 0), -EAGAIN);
        }

        free(buf);
        tx = shmring_tx_close(tx);
        rx = shmring_rx_close(rx);
        teardown(&f);
}

/* A broadcast reader sees the messages sent after it opened, and all of them. */
static void test_late_reader(void) {
        struct fixture f = setup();
        struct shmring_tx *tx = NULL;
        struct shmring_rx *a = NULL, *b = NULL;
        struct shmring_msg m;

        CHECK_OK(shmring_tx_open(f.s, "bc", NULL, &tx));
        CHECK_OK(shmring_rx_open(f.s, "bc", NULL, &a));
        send_msg(tx, MSG_MIN, 0, 0);
        send_msg(tx, MSG_MIN, 0, 1);
        CHECK_OK(shmring_rx_open(f.s, "bc", NULL, &b));
        CHECK_ERR(shmring_recv(b, NULL, 0, 0), -EAGAIN);
        send_msg(tx, MSG_MIN, 0, 2);
        CHECK_OK(shmring_recv_zc(b, &m, 0));
        CHECK_EQ(m.seq, 2);
        CHECK(msg_check(m.data, m.len, NULL, 0, 2) == NULL);
        CHECK_OK(shmring_recv_done(b));
        for (unsigned i = 0; i < 3; i++)
                recv_msg(a, MSG_MIN, 0, i, false);
        tx = shmring_tx_close(tx);
        a = shmring_rx_close(a);
        b = shmring_rx_close(b);
        teardown(&f);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig) {
        (void) sig;
        alarms++;
}

/* A signal ends a wait with -EINTR. */
static void test_eintr(void) {
        struct fixture f = setup();
        struct shmring_tx *tx = NULL;
        struct shmring_rx *rx = NULL;
        struct sigaction sa = { .sa_handler = on_alarm }, old;
        struct itimerval it = { .it_value = { .tv_usec = 50000 } };
        unsigned char buf[SLOT_SIZE] = { 0 };

        CHECK_SYS(sigaction(SIGALRM, &sa, &old)); /* no SA_RESTART */
        CHECK_OK(shmring_rx_open(f.s, "bc", NULL, &rx));
        CHECK_OK(shmring_tx_open(f.s, "bc", NULL, &tx));

        alarms = 0;
        CHECK_SYS(setitimer(ITIMER_REAL, &it, NULL));
        CHECK_ERR(shmring_recv(rx, buf, sizeof(buf), 20 * INT64_C(1000000000)), -EINTR);
        CHECK_EQ(alarms, 1);

        for (unsigned i = 0; i < SLOTS; i++)
                send_msg(tx, MSG_MIN, 0, i);
        CHECK_SYS(setitimer(ITIMER_REAL, &it, NULL));
        CHECK_ERR(shmring_send(tx, buf, MSG_MIN, SHMRING_INFINITE), -EINTR);
        CHECK_EQ(alarms, 2);

        CHECK_SYS(sigaction(SIGALRM, &old, NULL));
        tx = shmring_tx_close(tx);
        rx = shmring_rx_close(rx);
        teardown(&f);
}

int main(void) {
        tap_init("test-messages");
        test_sizes();
        test_sendv();
        test_reserve_commit();
        test_emsgsize();
        test_timeouts();
        test_overflow_full();
        test_epipe();
        test_zero_copy();
        test_late_reader();
        test_eintr();
        return tap_done();
}
