/* SPDX-License-Identifier: MIT */
/*
 * shmring-bench: the baselines, measured in the same run as libshmring and
 * with the same ping-pong and streaming loops (bench-util.c).
 *
 *   cache-line   two processes bounce a value on one shared cache line,
 *                spinning: the physical limit of any shared-memory transport
 *   pipe         a pipe each way, blocking read/write
 *   unix dgram   an AF_UNIX SOCK_DGRAM socketpair, blocking send/recv
 *   eventfd      an eventfd each way: a wake with no payload, blocking
 *   naive ring   a bare single-producer single-consumer spin ring of 64 B
 *                messages in shared memory: the ceiling for libshmring's
 *                64 B stream
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

/* ------------------------------------------------------- cache line */

static int cacheline_open(struct bench_transport *t, struct bench_run *run, unsigned side) {
        t->buf = run->line;                /* the same line in both processes */
        return 0;
}

/* Side 0 writes odd values, side 1 even ones: 2 seq + 1 is the ping, 2 seq + 2 the pong. */
static int cacheline_send(struct bench_transport *t, unsigned side, uint64_t seq) {
        _Atomic uint64_t *word = t->buf;

        atomic_store_explicit(word, 2 * seq + 1 + side, memory_order_release);
        return 0;
}

static int cacheline_recv(struct bench_transport *t, unsigned side, uint64_t seq) {
        _Atomic uint64_t *word = t->buf;
        uint64_t want = 2 * seq + 2 - side;

        /* A bare spin, no pause instruction: the limit, not a polite waiter. */
        while (atomic_load_explicit(word, memory_order_acquire) != want)
                ;
        return 0;
}

static void cacheline_close(struct bench_transport *t, unsigned side) {
}

/* ------------------------------------------------------- naive ring */

/*
 * The ring every shared-memory transport starts as (the Disruptor's, or
 * Vyukov's bounded queue with one producer): a slot carries its message
 * number, stored last with release; the reader polls the slot it wants and
 * stores its position after each message; the writer rereads that position
 * only when the slots it knows to be free run out.  Nothing else: it never
 * sleeps, never checks on the other side, and a writer that dies mid-message
 * is not told apart from a slow one.
 */
#define NAIVE_SLOTS 1024u
#define NAIVE_PAYLOAD 64u

struct naive_slot {
        _Alignas(128)
        _Atomic uint64_t seq;              /* message number + 1 */
        unsigned char data[NAIVE_PAYLOAD];
};

struct naive_ring {                        /* in a shared anonymous mapping */
        _Alignas(128) _Atomic uint64_t tail;       /* written by the reader */
        _Alignas(128) struct naive_slot slots[NAIVE_SLOTS];
};

struct naive_arg {
        struct naive_ring *ring;
        bool in_place;                     /* stamp in the slot, read in the slot: no copies */
};

struct naive_side {                        /* per process, at t->buf */
        _Alignas(64) unsigned char msg[NAIVE_PAYLOAD];  /* the caller's message buffer */
        uint64_t pos;                      /* the next message this side writes or reads */
        uint64_t limit;                    /* writer: pos < limit is free without a look */
};

static int naive_open(struct bench_transport *t, struct bench_run *run, unsigned side) {
        t->buf = aligned_alloc(64, sizeof(struct naive_side));
        if (!t->buf)
                return bench_fail(run, -ENOMEM, "cannot allocate the naive ring's state");
        memset(t->buf, 0, sizeof(struct naive_side));
        return 0;
}

/*
 * Copying, as shmring_send() is used: the message is made in the caller's
 * buffer, then copied in; in place, as shmring_send_reserve() is: made in
 * the slot.
 */
static int naive_send(struct bench_transport *t, unsigned side, uint64_t seq) {
        const struct naive_arg *arg = t->userdata;
        struct naive_ring *ring = arg->ring;
        struct naive_side *me = t->buf;
        struct naive_slot *slot = &ring->slots[me->pos % NAIVE_SLOTS];

        while (me->pos >= me->limit)
                me->limit = atomic_load_explicit(&ring->tail, memory_order_acquire) + NAIVE_SLOTS;
        if (arg->in_place) {
                bench_stamp(slot->data, t->size, seq);
        } else {
                bench_stamp(me->msg, t->size, seq);
                memcpy(slot->data, me->msg, t->size);
        }
        atomic_store_explicit(&slot->seq, ++me->pos, memory_order_release);
        return 0;
}

/* ... and copied out to the caller's buffer then checked (as shmring_recv()), or checked in place (recv_zc). */
static int naive_recv(struct bench_transport *t, unsigned side, uint64_t seq) {
        const struct naive_arg *arg = t->userdata;
        struct naive_ring *ring = arg->ring;
        struct naive_side *me = t->buf;
        struct naive_slot *slot = &ring->slots[me->pos % NAIVE_SLOTS];
        int r;

        while (atomic_load_explicit(&slot->seq, memory_order_acquire) != me->pos + 1)
                ;
        if (arg->in_place) {
                r = bench_check_stamp(slot->data, t->size, seq);
        } else {
                memcpy(me->msg, slot->data, t->size);
                r = bench_check_stamp(me->msg, t->size, seq);
        }
        atomic_store_explicit(&ring->tail, ++me->pos, memory_order_release);
        return r;
}

static void naive_close(struct bench_transport *t, unsigned side) {
        free(t->buf);
        t->buf = NULL;
}

/* ------------------------------------------------------ fd transports */

/*
 * fds[0], fds[1]: side 0 -> side 1 (read end, write end); fds[2], fds[3]:
 * side 1 -> side 0.  A socketpair or an eventfd is both ends at once, so it
 * sits in both slots of its direction.
 */
static int fd_open(struct bench_transport *t, struct bench_run *run, unsigned side) {
        t->buf = aligned_alloc(64, (t->size + 63) / 64 * 64);
        if (!t->buf)
                return bench_fail(run, -ENOMEM, "%s: cannot allocate %zu bytes", t->name, t->size);
        memset(t->buf, 0x5a, t->size);
        return 0;
}

static void fd_close(struct bench_transport *t, unsigned side) {
        free(t->buf);
        t->buf = NULL;
}

static int stream_send(struct bench_transport *t, unsigned side, uint64_t seq) {
        bench_stamp(t->buf, t->size, seq);
        return bench_write_full(t->fds[side == 0 ? 1 : 3], t->buf, t->size);
}

static int stream_recv(struct bench_transport *t, unsigned side, uint64_t seq) {
        int r = bench_read_full(t->fds[side == 0 ? 2 : 0], t->buf, t->size);

        return r < 0 ? r : bench_check_stamp(t->buf, t->size, seq);
}

static int dgram_send(struct bench_transport *t, unsigned side, uint64_t seq) {
        ssize_t n;

        bench_stamp(t->buf, t->size, seq);
        do
                n = send(t->fds[side == 0 ? 1 : 3], t->buf, t->size, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        return (size_t) n == t->size ? 0 : -EMSGSIZE;
}

static int dgram_recv(struct bench_transport *t, unsigned side, uint64_t seq) {
        ssize_t n;

        do
                n = recv(t->fds[side == 0 ? 2 : 0], t->buf, t->size, MSG_TRUNC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if ((size_t) n != t->size)
                return -EBADMSG;
        return bench_check_stamp(t->buf, t->size, seq);
}

static int eventfd_send(struct bench_transport *t, unsigned side, uint64_t seq) {
        uint64_t one = 1;

        return bench_write_full(t->fds[side == 0 ? 1 : 3], &one, sizeof(one));
}

static int eventfd_recv(struct bench_transport *t, unsigned side, uint64_t seq) {
        uint64_t count;
        int r = bench_read_full(t->fds[side == 0 ? 2 : 0], &count, sizeof(count));

        if (r < 0)
                return r;
        return count == 1 ? 0 : -EBADMSG;
}

static void close_fds(struct bench_transport *t) {
        for (unsigned i = 0; i < 4; i++) {
                /* A socketpair or an eventfd sits in two slots. */
                for (unsigned j = i + 1; j < 4; j++)
                        if (t->fds[j] == t->fds[i])
                                t->fds[j] = -1;
                if (t->fds[i] >= 0)
                        close(t->fds[i]);
                t->fds[i] = -1;
        }
}

static int make_pipes(struct bench_transport *t) {
        if (pipe2(t->fds, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(t->fds + 2, O_CLOEXEC) < 0) {
                int r = -errno;

                close_fds(t);
                return r;
        }
        return 0;
}

static int make_socketpair(struct bench_transport *t) {
        int sv[2];

        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        /* side 0 sends and receives on sv[0], side 1 on sv[1] */
        t->fds[1] = t->fds[2] = sv[0];
        t->fds[0] = t->fds[3] = sv[1];
        return 0;
}

static int make_eventfds(struct bench_transport *t) {
        int a = eventfd(0, EFD_CLOEXEC), b;

        if (a < 0)
                return -errno;
        b = eventfd(0, EFD_CLOEXEC);
        if (b < 0) {
                int r = -errno;

                close(a);
                return r;
        }
        t->fds[0] = t->fds[1] = a;
        t->fds[2] = t->fds[3] = b;
        return 0;
}

enum fd_kind { FD_PIPE, FD_UNIX_DGRAM, FD_EVENTFD };

static struct bench_transport fd_transport(enum fd_kind kind, size_t size) {
        struct bench_transport t = {
                .size = size,
                .open = fd_open,
                .close = fd_close,
                .fds = { -1, -1, -1, -1 },
        };

        switch (kind) {
        case FD_PIPE:
                t.name = "pipe";
                t.send = stream_send;
                t.recv = stream_recv;
                break;
        case FD_UNIX_DGRAM:
                t.name = "unix-dgram";
                t.send = dgram_send;
                t.recv = dgram_recv;
                break;
        case FD_EVENTFD:
                t.name = "eventfd";
                t.send = eventfd_send;
                t.recv = eventfd_recv;
                break;
        }
        return t;
}

static int make_fds(enum fd_kind kind, struct bench_transport *t) {
        switch (kind) {
        case FD_PIPE:
                return make_pipes(t);
        case FD_UNIX_DGRAM:
                return make_socketpair(t);
        case FD_EVENTFD:
                return make_eventfds(t);
        }
        return -EINVAL;
}

static void fd_row(const struct bench_config *cfg, enum fd_kind kind, size_t size, bool stream, uint64_t count,
                   const char *id, const char *label) {
        struct bench_transport t = fd_transport(kind, size);
        struct bench_row *row;
        int r;

        if (!bench_wanted(cfg, stream ? BENCH_SECTION_THROUGHPUT : BENCH_SECTION_BASELINES, id))
                return;
        row = bench_row_new(stream ? "throughput" : "latency", id, label);

        r = make_fds(kind, &t);
        if (r < 0) {
                row->transport = t.name;
                bench_row_set(row, BENCH_ERROR, "cannot make the %s: %s", t.name, strerror(-r));
        } else if (stream) {
                bench_stream_run(cfg, row, &t, count, false);
        } else {
                bench_pingpong_run(cfg, row, &t, (unsigned) count, false);
        }
        close_fds(&t);
        bench_row_print(row);
}

static void naive_row(const struct bench_config *cfg, bool in_place, const char *id, const char *label) {
        struct naive_arg arg = { .in_place = in_place };
        struct bench_transport t = {
                .name = "naive-ring",
                .size = NAIVE_PAYLOAD,
                .open = naive_open,
                .send = naive_send,
                .recv = naive_recv,
                .close = naive_close,
                .fds = { -1, -1, -1, -1 },
                .userdata = &arg,
        };
        struct bench_row *row;
        void *ring;

        if (!bench_wanted(cfg, BENCH_SECTION_THROUGHPUT, id))
                return;
        row = bench_row_new("throughput", id, label);
        ring = mmap(NULL, sizeof(struct naive_ring), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (ring == MAP_FAILED) {
                bench_row_set(row, BENCH_ERROR, "mmap: %s", strerror(errno));
        } else {
                arg.ring = ring;
                bench_stream_run(cfg, row, &t, cfg->stream_messages, true);
                munmap(ring, sizeof(struct naive_ring));
        }
        bench_row_print(row);
}

/* -------------------------------------------------------- sections */

void bench_baseline_cacheline(const struct bench_config *cfg) {
        struct bench_row *row;
        struct bench_transport t = {
                .name = "cache-line",
                .size = 8,
                .open = cacheline_open,
                .send = cacheline_send,
                .recv = cacheline_recv,
                .close = cacheline_close,
                .fds = { -1, -1, -1, -1 },
        };

        if (!bench_wanted(cfg, BENCH_SECTION_BASELINES, "cacheline"))
                return;
        row = bench_row_new("latency", "cacheline", "cache-line ping-pong, spin (the limit)");
        bench_pingpong_run(cfg, row, &t, cfg->spin_samples, true);
        bench_row_print(row);
}

void bench_baseline_blocking(const struct bench_config *cfg) {
        unsigned n = cfg->blocking_samples;

        fd_row(cfg, FD_PIPE, 64, false, n, "pipe_64", "pipe 64 B, blocking");
        fd_row(cfg, FD_PIPE, 4096, false, n, "pipe_4096", "pipe 4 KiB, blocking");
        fd_row(cfg, FD_UNIX_DGRAM, 64, false, n, "unix_dgram_64", "unix dgram socket 64 B, blocking");
        fd_row(cfg, FD_UNIX_DGRAM, 4096, false, n, "unix_dgram_4096", "unix dgram socket 4 KiB, blocking");
        fd_row(cfg, FD_EVENTFD, 8, false, n, "eventfd", "eventfd wake, blocking");
}

void bench_baseline_throughput(const struct bench_config *cfg) {
        /* Syscall transports move fewer messages a second: a tenth as many suffice. */
        uint64_t small = cfg->stream_messages / 10 ? cfg->stream_messages / 10 : 1;

        naive_row(cfg, false, "naive_stream_64", "naive spin ring 64 B stream, copying");
        naive_row(cfg, true, "naive_stream_64_zc", "naive spin ring 64 B stream, in place");
        fd_row(cfg, FD_PIPE, 64, true, small, "pipe_stream_64", "pipe 64 B stream");
        fd_row(cfg, FD_UNIX_DGRAM, 64, true, small, "unix_dgram_stream_64", "unix dgram socket 64 B stream");
        fd_row(cfg, FD_PIPE, 1024 * 1024, true, cfg->big_messages, "pipe_stream_1m", "pipe 1 MiB stream");
}
