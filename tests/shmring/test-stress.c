/* SPDX-License-Identifier: MIT */
/*
 * Multi-process stress, built twice:
 *   test-stress-broadcast   1 writer -> 7 readers, every reader gets every message
 *   test-stress-queue       8 writers -> 1 reader (STRESS_QUEUE defined)
 * Every process is a child that attaches by name.  Messages have random
 * sizes, inline and through the overflow area up to the channel's largest;
 * each carries its writer, its number and a checksum (payload.h), and the
 * readers check order (per writer for the queue), content and count, then
 * -EPIPE once the writers closed.  Writers use send, sendv and
 * reserve/commit in turn; readers recv and recv_zc.  Waits are blocking with
 * a small spin budget, since the processes may share two cores.
 *
 *   SHMRING_STRESS_MESSAGES   messages in all (default 1000000)
 *   SHMRING_STRESS_SPIN_NS    spin budget before sleeping (default 2000)
 *   SHMRING_STRESS_WAIT_S     longest single wait before the test fails (default 60)
 */
#include "payload.h"
#include "tap.h"

#define PROCS 8                         /* readers + 1 for the broadcast, writers for the queue */

struct result {
        uint64_t messages;
        uint64_t bytes;
        uint64_t per_writer[PROCS];
};

static uint64_t n_messages, wait_ns;
static int64_t spin_ns;

static struct shmring_port_opts port_opts(int32_t index) {
        return (struct shmring_port_opts) { .index = index, .spin_ns = spin_ns };
}

/* Sends messages first .. first + n - 1 of writer w, by three means in turn. */
static void write_stream(struct shmring_tx *tx, const struct msg_sizes *sz, uint32_t w, uint64_t n) {
        unsigned char *buf = malloc(sz->max_message);

        CHECK(buf);
        for (uint64_t seq = 0; seq < n; seq++) {
                size_t len = msg_len(sz, w, seq);
                const char *how;
                int r;
                switch ((seq + w) % 3) {
                case 0:
                        how = "shmring_send";
                        msg_fill(buf, len, w, seq);
                        r = shmring_send(tx, buf, len, (int64_t) wait_ns);
                        break;
                case 1: {
                        struct iovec iov[2];
                        how = "shmring_sendv";
                        msg_fill(buf, len, w, seq);
                        iov[0] = (struct iovec) { buf, sizeof(struct msg_header) };
                        iov[1] = (struct iovec) { buf + sizeof(struct msg_header), len - sizeof(struct msg_header) };
                        r = shmring_sendv(tx, iov, 2, (int64_t) wait_ns);
                        break;
                }
                default: {
                        void *p = NULL;
                        how = "shmring_send_reserve";
                        r = shmring_send_reserve(tx, len, &p, (int64_t) wait_ns);
                        if (r == 0) {
                                msg_fill(p, len, w, seq);
                                how = "shmring_send_commit";
                                r = shmring_send_commit(tx);
                        }
                        break;
                }
                }
                if (r < 0)
                        tap_fail(__FILE__, __LINE__, "writer %u, message %" PRIu64 " of %zu bytes: %s: %s", w, seq, len,
                                 how, tap_errno_name(r));
        }
        free(buf);
}

/*
 * Receives n messages and checks each.  n_writers 1: a broadcast reader,
 * all from writer 0 in order; else a queue reader, in order per writer.
 */
static void read_stream(struct shmring_rx *rx, const struct msg_sizes *sz, uint32_t n_writers,
                        const uint64_t *expected, uint32_t zc_salt, struct result *res) {
        unsigned char *buf = malloc(sz->max_message);
        uint64_t next[PROCS] = { 0 };

        CHECK(buf);
        for (uint64_t i = 0; i < n_messages; i++) {
                const unsigned char *data;
                struct shmring_msg m;
                struct msg_header h;
                size_t len;
                bool zc = (i + zc_salt) % 2;
                const char *bad;

                if (zc) {
                        int r = shmring_recv_zc(rx, &m, (int64_t) wait_ns);
                        if (r < 0)
                                tap_fail(__FILE__, __LINE__, "receiving message %" PRIu64 " (zero-copy): %s", i,
                                         tap_errno_name(r));
                        data = m.data;
                        len = m.len;
                } else {
                        ssize_t n = shmring_recv(rx, buf, sz->max_message, (int64_t) wait_ns);
                        if (n < 0)
                                tap_fail(__FILE__, __LINE__, "receiving message %" PRIu64 ": %s", i,
                                         tap_errno_name((int) n));
                        data = buf;
                        len = (size_t) n;
                }
                if (len < sizeof(h))
                        tap_fail(__FILE__, __LINE__, "message %" PRIu64 " is %zu bytes", i, len);
                memcpy(&h, data, sizeof(h));
                if (h.writer >= n_writers)
                        tap_fail(__FILE__, __LINE__, "message %" PRIu64 " from writer %u", i, h.writer);
                if (next[h.writer] >= expected[h.writer])
                        tap_fail(__FILE__, __LINE__, "writer %u sent more than %" PRIu64, h.writer,
                                 expected[h.writer]);
                bad = msg_check(data, len, sz, h.writer, next[h.writer]);
                if (bad)
                        tap_fail(__FILE__, __LINE__, "writer %u, message %" PRIu64 " (%zu bytes, received %" PRIu64
                                 "th): %s", h.writer, next[h.writer], len, i, bad);
                if (zc) {
                        if (m.seq != next[h.writer] || m.sender != (n_writers > 1 ? h.writer : 0))
                                tap_fail(__FILE__, __LINE__, "writer %u message %" PRIu64 " came as sender %u seq %"
                                         PRIu64, h.writer, next[h.writer], m.sender, m.seq);
                        CHECK_OK(shmring_recv_done(rx));
                }
                next[h.writer]++;
                res->messages++;
                res->bytes += len;
        }
        for (uint32_t w = 0; w < n_writers; w++) {
                CHECK_EQ(next[w], expected[w]);
                res->per_writer[w] = next[w];
        }
        /* Everything was read and the writers closed. */
        CHECK_ERR(shmring_recv(rx, buf, sz->max_message, (int64_t) wait_ns), -EPIPE);
        free(buf);
}

int main(void) {
#ifdef STRESS_QUEUE
        const bool queue = true;
        const char *test_name = "test-stress-queue";
#else
        const bool queue = false;
        const char *test_name = "test-stress-broadcast";
#endif
        const struct shmring_channel_spec channel = {
                .name = "stress",
                .kind = queue ? SHMRING_QUEUE : SHMRING_BROADCAST,
                .slots = queue ? 256 : 1024,
                .slot_size = 240,
                .overflow_size = 256 * 1024,
                .max_ports = queue ? PROCS : PROCS - 1,
        };
        struct shmring_spec spec = { .n_channels = 1, .channels = &channel };
        struct shmring_channel_info ci;
        struct shmring *s = NULL;
        struct msg_sizes sz;
        uint64_t expected[PROCS] = { 0 }, t0, dt;
        char name[SHMRING_NAME_MAX];
        pid_t pids[PROCS + 1];
        unsigned n_pids = 0;
        int ready[2], results[2];
        struct result total = { 0 };
        unsigned n_readers = queue ? 1 : PROCS - 1;

        tap_init(test_name);
        n_messages = tap_env_u64("SHMRING_STRESS_MESSAGES", 1000000);
        spin_ns = (int64_t) tap_env_u64("SHMRING_STRESS_SPIN_NS", 2000);
        wait_ns = tap_env_u64("SHMRING_STRESS_WAIT_S", 60) * UINT64_C(1000000000);
        CHECK(n_messages >= PROCS);

        spec.run_id = tap_run_id();
        CHECK_OK(shmring_create(&spec, &s));
        CHECK_OK(shmring_channel_info(s, 0, &ci));
        snprintf(name, sizeof(name), "%s", shmring_name(s));
        sz = (struct msg_sizes) { .slot_size = ci.slot_size, .max_message = ci.max_message,
                                  .overflow_per_mille = 20, .max_every = 99991 };
        if (queue)
                for (uint32_t w = 0; w < PROCS; w++)
                        expected[w] = n_messages / PROCS + (w == 0 ? n_messages % PROCS : 0);
        else
                expected[0] = n_messages;
        tap_note("%s: %" PRIu64 " messages, %u readers, slot %u bytes, up to %" PRIu64 " bytes, spin %" PRId64 " ns",
                 test_name, n_messages, n_readers, ci.slot_size, ci.max_message, spin_ns);

        tap_pipe(ready);
        tap_pipe(results);
        t0 = tap_now_ns();

        /* Readers first, so that they see everything. */
        for (unsigned r = 0; r < n_readers; r++) {
                pid_t pid = tap_fork();
                if (pid == 0) {
                        struct shmring *c = NULL;
                        struct shmring_rx *rx = NULL;
                        struct shmring_port_opts o = port_opts(-1);
                        struct result res = { 0 };
                        CHECK_OK(shmring_attach(name, 0, &c));
                        CHECK_OK(shmring_rx_open(c, "stress", &o, &rx));
                        tap_signal(ready[1]);
                        read_stream(rx, &sz, queue ? PROCS : 1, expected, r, &res);
                        tap_write_all(results[1], &res, sizeof(res));
                        rx = shmring_rx_close(rx);
                        c = shmring_close(c);
                        _exit(0);
                }
                pids[n_pids++] = pid;
        }
        for (unsigned r = 0; r < n_readers; r++)
                tap_await(ready[0], 60000);

        for (unsigned w = 0; w < (queue ? PROCS : 1); w++) {
                pid_t pid = tap_fork();
                if (pid == 0) {
                        struct shmring *c = NULL;
                        struct shmring_tx *tx = NULL;
                        struct shmring_port_opts o = port_opts(queue ? (int32_t) w : -1);
                        CHECK_OK(shmring_attach(name, 0, &c));
                        CHECK_OK(shmring_tx_open(c, "stress", &o, &tx));
                        if (queue)
                                CHECK_EQ(shmring_tx_index(tx), w);
                        else
                                CHECK_EQ(shmring_tx_wait_readers(tx, n_readers, (int64_t) wait_ns), n_readers);
                        write_stream(tx, &sz, w, expected[w]);
                        tx = shmring_tx_close(tx);
                        c = shmring_close(c);
                        _exit(0);
                }
                pids[n_pids++] = pid;
        }

        for (unsigned i = 0; i < n_pids; i++)
                CHECK_CHILD_OK(pids[i]);
        dt = tap_now_ns() - t0;
        for (unsigned r = 0; r < n_readers; r++) {
                struct result res;
                CHECK(tap_read_all(results[0], &res, sizeof(res), 1000));
                CHECK_EQ(res.messages, n_messages);
                total.messages += res.messages;
                total.bytes += res.bytes;
        }
        tap_note("%s: %" PRIu64 " messages sent, %" PRIu64 " received (%.1f MiB) in %.2f s: %.0f received/s",
                 test_name, n_messages, total.messages, (double) total.bytes / (1 << 20), (double) dt / 1e9,
                 (double) total.messages / ((double) dt / 1e9));

        close(ready[0]);
        close(ready[1]);
        close(results[0]);
        close(results[1]);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
        return tap_done();
}
