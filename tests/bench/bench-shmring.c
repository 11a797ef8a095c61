/* SPDX-License-Identifier: MIT */
/*
 * shmring-bench: libshmring's rows.
 *
 *   ping-pong   two queue channels 1 -> 1 ("ping", "pong") in one segment;
 *               slots of 4 KiB so both sizes travel inline
 *   broadcast   one broadcast channel, 1 writer -> N readers; each message
 *               carries its send time, each reader records receive - send;
 *               the writer sends the next message only once every reader
 *               has taken the last one (acknowledged on a shared counter),
 *               so the figures are latencies, not queueing
 *   streaming   one queue channel 1 -> 1: 64 B messages through 1024
 *               inline slots, and 1 MiB messages through an 8 MiB overflow
 *               area
 *
 * The parent creates each segment; the workers attach to it by name, as
 * processes of a job do.  Spin mode opens every port with
 * SHMRING_SPIN_FOREVER, blocking mode with SHMRING_SPIN_NEVER (every wait
 * sleeps on the futex at once: the wake-up figure).
 */

#include <errno.h>
#include <sched.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "bench.h"
#include "shmring.h"

#define BENCH_RUN_ID "shmring-bench"
#define SHM_DIR "/dev/shm"
#define MIB (1024.0 * 1024.0)

#define PINGPONG_SLOTS 64
#define PINGPONG_SLOT_SIZE 4096
#define BROADCAST_SLOTS 256
#define STREAM_SLOTS 1024
#define BIG_MESSAGE (1024 * 1024)
#define BIG_SLOTS 64
#define BIG_OVERFLOW (8 * 1024 * 1024)

/*
 * How a row's ports wait.  spin and blocking are the limits (a forced spin
 * that never sleeps; an immediate futex sleep); the others are what a job
 * gets on shared CPUs: the library's default (auto), the spin-then-sleep
 * policy with its default 50 us budget (the default before the automatic
 * policy), and yield-then-sleep.
 */
enum bench_wait {
        WAIT_SPIN,
        WAIT_BLOCKING,
        WAIT_AUTO,
        WAIT_SPIN_BUDGET,
        WAIT_YIELD,
};

static const char *mode_name(enum bench_wait w) {
        static const char *const names[] = {
                [WAIT_SPIN] = "spin",
                [WAIT_BLOCKING] = "blocking",
                [WAIT_AUTO] = "auto",
                [WAIT_SPIN_BUDGET] = "spin-50us",
                [WAIT_YIELD] = "yield",
        };
        return names[w];
}

static struct shmring_port_opts port_opts(enum bench_wait w) {
        struct shmring_port_opts o = { .index = -1 };

        switch (w) {
        case WAIT_SPIN:
                o.spin_ns = SHMRING_SPIN_FOREVER;
                o.wait = SHMRING_WAIT_SPIN;
                break;
        case WAIT_BLOCKING:
                o.spin_ns = SHMRING_SPIN_NEVER;
                o.wait = SHMRING_WAIT_BLOCK;
                break;
        case WAIT_AUTO:
                break;
        case WAIT_SPIN_BUDGET:
                o.wait = SHMRING_WAIT_SPIN;
                break;
        case WAIT_YIELD:
                o.wait = SHMRING_WAIT_YIELD;
                break;
        }
        return o;
}

static enum bench_wait pair_wait(bool spins) {
        return spins ? WAIT_SPIN : WAIT_BLOCKING;
}

/* ---------------------------------------------------------- segments */

static void explain_no_space(uint64_t need, char *reason, size_t size) {
        struct statvfs st;
        char free_text[64] = "unknown";

        if (statvfs(SHM_DIR, &st) == 0)
                snprintf(free_text, sizeof(free_text), "%.1f MiB",
                         (double) st.f_bavail * (double) st.f_frsize / MIB);
        snprintf(reason, size,
                 "%s is too small: a segment needs %.1f MiB and %s are free; remove stale files there, "
                 "or enlarge it (mount -o remount,size=1G %s; Docker: --shm-size=1g)",
                 SHM_DIR, (double) need / MIB, free_text, SHM_DIR);
}

static int segment_create(const struct shmring_channel_spec *channels, uint32_t n, struct shmring **ret,
                          char *reason, size_t size) {
        struct shmring_spec spec = {
                .run_id = BENCH_RUN_ID,
                .n_channels = n,
                .channels = channels,
        };
        struct statvfs st;
        uint64_t need;
        int r;

        r = shmring_spec_size(&spec, &need);
        if (r < 0) {
                snprintf(reason, size, "shmring_spec_size: %s", strerror(-r));
                return r;
        }
        if (statvfs(SHM_DIR, &st) < 0) {
                r = -errno;
                snprintf(reason, size, "%s: %s; mount a tmpfs there (mount -t tmpfs -o size=1G tmpfs %s)", SHM_DIR,
                         strerror(-r), SHM_DIR);
                return r;
        }
        if ((double) st.f_bavail * (double) st.f_frsize < (double) need) {
                explain_no_space(need, reason, size);
                return -ENOSPC;
        }
        r = shmring_create(&spec, ret);
        if (r == -ENOSPC)
                explain_no_space(need, reason, size);
        else if (r == -EACCES || r == -EPERM || r == -EROFS)
                snprintf(reason, size, "cannot create a segment in %s: %s; it must be a writable tmpfs",
                         SHM_DIR, strerror(-r));
        else if (r < 0)
                snprintf(reason, size, "shmring_create: %s", strerror(-r));
        return r;
}

static void segment_destroy(struct shmring *s) {
        if (!s)
                return;
        (void) shmring_unlink(s);
        shmring_close(s);
}

static int attach(struct bench_run *run, const char *name, struct shmring **ret) {
        int r = shmring_attach(name, 0, ret);

        if (r < 0)
                return bench_fail(run, r, "shmring_attach(%s): %s", name, strerror(-r));
        return 0;
}

static int open_tx(struct bench_run *run, struct shmring *s, const char *channel, enum bench_wait w,
                   struct shmring_tx **ret) {
        struct shmring_port_opts opts = port_opts(w);
        int r = shmring_tx_open(s, channel, &opts, ret);

        if (r < 0)
                return bench_fail(run, r, "shmring_tx_open(%s): %s", channel, strerror(-r));
        return 0;
}

static int open_rx(struct bench_run *run, struct shmring *s, const char *channel, enum bench_wait w,
                   struct shmring_rx **ret) {
        struct shmring_port_opts opts = port_opts(w);
        int r = shmring_rx_open(s, channel, &opts, ret);

        if (r < 0)
                return bench_fail(run, r, "shmring_rx_open(%s): %s", channel, strerror(-r));
        return 0;
}

int bench_shmring_init(char *reason, size_t size) {
        struct shmring_channel_spec channel = {
                .name = "check",
                .kind = SHMRING_QUEUE,
                .slots = BIG_SLOTS,
                .slot_size = 64,
                .overflow_size = BIG_OVERFLOW,
                .max_ports = 1,
        };
        struct shmring *s = NULL;
        int r;

        /* Segments of runs that were killed before they could unlink them. */
        r = shmring_cleanup_stale(BENCH_RUN_ID);
        if (r > 0)
                fprintf(stderr, "shmring-bench: removed %d stale segment(s) of earlier runs\n", r);

        /* The largest segment any row uses: fail now, once, rather than in every row. */
        r = segment_create(&channel, 1, &s, reason, size);
        if (r < 0)
                return r;
        segment_destroy(s);
        return 0;
}

/* --------------------------------------------- ping-pong and streaming */

/*
 * Side 0 sends on "ping" and, in a ping-pong, receives on "pong"; side 1
 * the other way round.  Set up by the parent, then each worker's copy
 * holds that worker's own handles.
 */
struct shmring_pair {
        char name[SHMRING_NAME_MAX];
        bool spins;
        bool two_way;
        bool zero_copy;                 /* send_reserve/commit and recv_zc/done, stamped and checked in place */
        struct shmring *segment;
        struct shmring_tx *tx;
        struct shmring_rx *rx;
};

static int pair_open(struct bench_transport *t, struct bench_run *run, unsigned side) {
        struct shmring_pair *p = t->userdata;
        int r;

        t->buf = aligned_alloc(64, (t->size + 63) / 64 * 64);
        if (!t->buf)
                return bench_fail(run, -ENOMEM, "cannot allocate %zu bytes", t->size);
        memset(t->buf, 0x5a, t->size);
        r = attach(run, p->name, &p->segment);
        if (r < 0)
                return r;
        if (side == 0 || p->two_way) {
                r = open_tx(run, p->segment, side == 0 ? "ping" : "pong", pair_wait(p->spins), &p->tx);
                if (r < 0)
                        return r;
        }
        if (side == 1 || p->two_way) {
                r = open_rx(run, p->segment, side == 0 ? "pong" : "ping", pair_wait(p->spins), &p->rx);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int pair_send(struct bench_transport *t, unsigned side, uint64_t seq) {
        struct shmring_pair *p = t->userdata;
        void *dst;
        int r;

        if (p->zero_copy) {
                r = shmring_send_reserve(p->tx, t->size, &dst, BENCH_IO_TIMEOUT_NS);
                if (r < 0)
                        return r;
                bench_stamp(dst, t->size, seq);
                return shmring_send_commit(p->tx);
        }
        bench_stamp(t->buf, t->size, seq);
        r = shmring_send(p->tx, t->buf, t->size, BENCH_IO_TIMEOUT_NS);
        return r < 0 ? r : 0;
}

static int pair_recv(struct bench_transport *t, unsigned side, uint64_t seq) {
        struct shmring_pair *p = t->userdata;
        struct shmring_msg msg;
        ssize_t n;
        int r;

        if (p->zero_copy) {
                r = shmring_recv_zc(p->rx, &msg, BENCH_IO_TIMEOUT_NS);
                if (r < 0)
                        return r;
                r = msg.len != t->size ? -EBADMSG : bench_check_stamp(msg.data, t->size, seq);
                return shmring_recv_done(p->rx) ?: r;
        }
        n = shmring_recv(p->rx, t->buf, t->size, BENCH_IO_TIMEOUT_NS);

        if (n < 0)
                return (int) n;
        if ((size_t) n != t->size)
                return -EBADMSG;
        return bench_check_stamp(t->buf, t->size, seq);
}

static void pair_close(struct bench_transport *t, unsigned side) {
        struct shmring_pair *p = t->userdata;

        p->rx = shmring_rx_close(p->rx);
        p->tx = shmring_tx_close(p->tx);
        p->segment = shmring_close(p->segment);
        free(t->buf);
        t->buf = NULL;
}

/* Makes the segment for one row, runs the row, and removes the segment. */
static void pair_row(const struct bench_config *cfg, struct bench_row *row, const struct shmring_channel_spec *channels,
                     uint32_t n_channels, size_t size, bool spins, bool stream, bool zero_copy, uint64_t count) {
        struct shmring_pair pair = { .spins = spins, .two_way = !stream, .zero_copy = zero_copy };
        struct bench_transport t = {
                .name = "shmring",
                .size = size,
                .open = pair_open,
                .send = pair_send,
                .recv = pair_recv,
                .close = pair_close,
                .fds = { -1, -1, -1, -1 },
                .userdata = &pair,
        };
        struct shmring_channel_info info;
        struct shmring *s = NULL;
        int r;

        row->transport = "shmring";
        row->mode = mode_name(pair_wait(spins));
        row->size = size;
        row->is_rate = stream;
        r = segment_create(channels, n_channels, &s, row->reason, sizeof(row->reason));
        if (r < 0) {
                row->status = BENCH_ERROR;
                return;
        }
        r = shmring_channel_info(s, 0, &info);
        if (r < 0) {
                bench_row_set(row, BENCH_ERROR, "shmring_channel_info: %s", strerror(-r));
        } else if (info.max_message < size) {
                bench_row_set(row, BENCH_ERROR, "the channel takes messages of up to %" PRIu64 " bytes, not %zu",
                              info.max_message, size);
        } else {
                snprintf(pair.name, sizeof(pair.name), "%s", shmring_name(s));
                if (stream)
                        bench_stream_run(cfg, row, &t, count, spins);
                else
                        bench_pingpong_run(cfg, row, &t, (unsigned) count, spins);
        }
        segment_destroy(s);
}

void bench_shmring_pingpong(const struct bench_config *cfg) {
        static const size_t sizes[] = { 64, 4096 };

        for (unsigned blocking = 0; blocking < 2; blocking++)
                for (unsigned i = 0; i < 2; i++) {
                        bool spins = !blocking;
                        struct shmring_channel_spec channels[2] = {
                                { .name = "ping", .kind = SHMRING_QUEUE, .slots = PINGPONG_SLOTS,
                                  .slot_size = PINGPONG_SLOT_SIZE, .max_ports = 1 },
                                { .name = "pong", .kind = SHMRING_QUEUE, .slots = PINGPONG_SLOTS,
                                  .slot_size = PINGPONG_SLOT_SIZE, .max_ports = 1 },
                        };
                        char id[48], label[64];
                        struct bench_row *row;

                        snprintf(id, sizeof(id), "shmring_%zu_%s", sizes[i], mode_name(pair_wait(spins)));
                        snprintf(label, sizeof(label), "shmring %s, %s", sizes[i] == 64 ? "64 B" : "4 KiB",
                                 spins ? "spin" : "blocking (futex wake)");
                        if (!bench_wanted(cfg, BENCH_SECTION_PINGPONG, id))
                                continue;
                        row = bench_row_new("latency", id, label);
                        pair_row(cfg, row, channels, 2, sizes[i], spins, false, false,
                                 spins ? cfg->spin_samples : cfg->blocking_samples);
                        bench_row_print(row);
                }
}

void bench_shmring_throughput(const struct bench_config *cfg) {
        struct shmring_channel_spec small = {
                .name = "ping", .kind = SHMRING_QUEUE, .slots = STREAM_SLOTS, .slot_size = 64, .max_ports = 1,
        };
        struct shmring_channel_spec big = {
                .name = "ping", .kind = SHMRING_QUEUE, .slots = BIG_SLOTS, .slot_size = 64,
                .overflow_size = BIG_OVERFLOW, .max_ports = 1,
        };
        struct bench_row *row;

        if (bench_wanted(cfg, BENCH_SECTION_THROUGHPUT, "shmring_stream_64")) {
                row = bench_row_new("throughput", "shmring_stream_64", "shmring 64 B stream (queue 1->1, spin)");
                pair_row(cfg, row, &small, 1, 64, true, true, false, cfg->stream_messages);
                bench_row_print(row);
        }
        if (bench_wanted(cfg, BENCH_SECTION_THROUGHPUT, "shmring_stream_64_zc")) {
                row = bench_row_new("throughput", "shmring_stream_64_zc", "shmring 64 B stream, zero-copy (spin)");
                pair_row(cfg, row, &small, 1, 64, true, true, true, cfg->stream_messages);
                bench_row_print(row);
        }
        if (bench_wanted(cfg, BENCH_SECTION_THROUGHPUT, "shmring_stream_1m")) {
                row = bench_row_new("throughput", "shmring_stream_1m", "shmring 1 MiB stream (overflow, spin)");
                pair_row(cfg, row, &big, 1, BIG_MESSAGE, true, true, false, cfg->big_messages);
                bench_row_print(row);
        }
}

/* ---------------------------------------------------------- broadcast */

struct broadcast_message {
        uint64_t seq;
        uint64_t sent_ns;
        unsigned char pad[48];             /* 64 bytes in all */
};

struct broadcast_job {
        char name[SHMRING_NAME_MAX];
        unsigned readers;
        unsigned warmup;
        unsigned messages;
        enum bench_wait wait;
};

/* The shared area: the acknowledgement counter on its own line, then readers x messages samples. */
struct broadcast_shared {
        _Alignas(128) _Atomic uint32_t acks;
        unsigned char pad[124];
        uint64_t samples[];
};

static int broadcast_writer(struct bench_run *run, struct broadcast_job *job, struct broadcast_shared *shared) {
        struct broadcast_message msg = { 0 };
        struct shmring *s = NULL;
        struct shmring_tx *tx = NULL;
        unsigned total = job->warmup + job->messages;
        uint64_t switches = 0;
        int r;

        r = attach(run, job->name, &s);
        if (r >= 0)
                r = open_tx(run, s, "bcast", job->wait, &tx);
        if (r >= 0)
                r = bench_barrier(run);            /* every reader has its port */
        for (unsigned m = 0; r >= 0 && m < total; m++) {
                uint32_t target = (m + 1) * job->readers, acks;

                if (m == job->warmup)
                        switches = bench_measure_begin();

                msg.seq = m;
                msg.sent_ns = bench_now_ns();
                r = shmring_send(tx, &msg, sizeof(msg), BENCH_IO_TIMEOUT_NS);
                if (r < 0) {
                        r = bench_fail(run, r, "broadcast: send of message %u failed: %s", m, strerror(-r));
                        break;
                }
                /* Pace: the next message leaves once every reader took this one. */
                while ((acks = atomic_load_explicit(&shared->acks, memory_order_acquire)) < target) {
                        if (atomic_load_explicit(&run->failed, memory_order_relaxed)) {
                                r = -ECANCELED;
                                break;
                        }
                        /* The pacing waits as the row's readers do: spinning, on a futex, or
                         * (on shared CPUs) yielding, so that it takes no core a reader needs. */
                        if (job->wait == WAIT_BLOCKING)
                                bench_futex_wait(&shared->acks, acks);
                        else if (job->wait != WAIT_SPIN)
                                sched_yield();
                }
        }
        if (r >= 0)
                bench_measure_end(run, switches);
        tx = shmring_tx_close(tx);
        shmring_close(s);
        return r < 0 ? r : 0;
}

static int broadcast_reader(struct bench_run *run, struct broadcast_job *job, struct broadcast_shared *shared,
                            unsigned reader) {
        uint64_t *samples = shared->samples + (size_t) reader * job->messages;
        struct broadcast_message msg;
        struct shmring *s = NULL;
        struct shmring_rx *rx = NULL;
        unsigned total = job->warmup + job->messages;
        uint64_t switches = 0;
        int r;

        r = attach(run, job->name, &s);
        if (r >= 0)
                r = open_rx(run, s, "bcast", job->wait, &rx);
        if (r >= 0)
                r = bench_barrier(run);
        for (unsigned m = 0; r >= 0 && m < total; m++) {
                ssize_t n;
                uint64_t now;

                if (m == job->warmup)
                        switches = bench_measure_begin();
                n = shmring_recv(rx, &msg, sizeof(msg), BENCH_IO_TIMEOUT_NS);
                now = bench_now_ns();

                if (n < 0) {
                        r = bench_fail(run, (int) n, "broadcast: reader %u: receive of message %u failed: %s",
                                       reader, m, strerror((int) -n));
                        break;
                }
                if ((size_t) n != sizeof(msg) || msg.seq != m) {
                        r = bench_fail(run, -EBADMSG,
                                       "broadcast: reader %u expected message %u (%zu bytes), got %" PRIu64
                                       " (%zd bytes)", reader, m, sizeof(msg), msg.seq, n);
                        break;
                }
                if (m >= job->warmup)
                        samples[m - job->warmup] = now > msg.sent_ns ? now - msg.sent_ns : 0;
                /* The last reader of a message wakes the writer. */
                if ((atomic_fetch_add_explicit(&shared->acks, 1, memory_order_acq_rel) + 1) % job->readers == 0 &&
                    job->wait == WAIT_BLOCKING)
                        bench_futex_wake(&shared->acks);
        }
        if (r >= 0)
                bench_measure_end(run, switches);
        rx = shmring_rx_close(rx);
        shmring_close(s);
        return r < 0 ? r : 0;
}

static int broadcast_worker(struct bench_run *run, unsigned index, void *arg) {
        struct broadcast_shared *shared = bench_run_extra(run);

        if (index == 0)
                return broadcast_writer(run, arg, shared);
        return broadcast_reader(run, arg, shared, index - 1);
}

static void broadcast_row(const struct bench_config *cfg, unsigned section, unsigned readers, enum bench_wait wait) {
        struct shmring_channel_spec channel = {
                .name = "bcast",
                .kind = SHMRING_BROADCAST,
                .slots = BROADCAST_SLOTS,
                .slot_size = sizeof(struct broadcast_message),
                .max_ports = readers,
        };
        struct broadcast_job job = {
                .readers = readers,
                .warmup = cfg->warmup,
                .messages = cfg->broadcast_messages,
                .wait = wait,
        };
        struct bench_worker workers[9];
        struct bench_run *run = NULL;
        struct shmring *s = NULL;
        struct bench_row *row;
        char id[48], label[64];
        bool own_cpus = cfg->n_cpus >= readers + 1;

        snprintf(id, sizeof(id), "broadcast_%s_%u", mode_name(wait), readers);
        for (char *c = id; *c; c++)
                if (*c == '-')
                        *c = '_';
        snprintf(label, sizeof(label), "shmring broadcast 1->%u, %s", readers, mode_name(wait));
        if (!bench_wanted(cfg, section, id))
                return;
        row = bench_row_new("broadcast", id, label);
        row->transport = "shmring";
        row->mode = mode_name(wait);
        row->size = sizeof(struct broadcast_message);
        row->readers = readers;

        if (wait == WAIT_SPIN && !own_cpus) {
                bench_row_set(row, BENCH_NA, "needs %u CPUs (the writer and each reader spin on their own), %u usable",
                              readers + 1, cfg->n_cpus);
                goto finish;
        }
        row->shared_cpus = !own_cpus;
        for (unsigned i = 0; i <= readers; i++)
                workers[i] = (struct bench_worker) {
                        .fn = broadcast_worker, .arg = &job, .cpu = own_cpus ? cfg->cpus[i] : -1,
                };
        bench_describe_cpus(cfg, readers + 1, workers, row->cpus, sizeof(row->cpus));

        if (segment_create(&channel, 1, &s, row->reason, sizeof(row->reason)) < 0) {
                row->status = BENCH_ERROR;
                goto finish;
        }
        snprintf(job.name, sizeof(job.name), "%s", shmring_name(s));
        run = bench_run_new(readers + 1, sizeof(struct broadcast_shared) +
                                                 (size_t) readers * job.messages * sizeof(uint64_t));
        if (!run) {
                bench_row_set(row, BENCH_ERROR, "cannot map the samples: %s", strerror(errno));
                goto finish;
        }
        if (bench_run_workers(cfg, run, readers + 1, workers, row) >= 0) {
                struct broadcast_shared *shared = bench_run_extra(run);
                uint64_t *slowest = calloc(job.messages, sizeof(uint64_t));

                /* The last reader of each message: what a writer waiting on all of them sees. */
                if (slowest) {
                        for (unsigned m = 0; m < job.messages; m++)
                                for (unsigned r = 0; r < readers; r++)
                                        if (shared->samples[(size_t) r * job.messages + m] > slowest[m])
                                                slowest[m] = shared->samples[(size_t) r * job.messages + m];
                        bench_stats_compute(slowest, job.messages, 1.0, &row->slowest);
                        free(slowest);
                }
                bench_stats_compute(shared->samples, (size_t) readers * job.messages, 1.0, &row->latency);
                row->preemptions = atomic_load(&run->preemptions);
        }
finish:
        bench_run_free(run);
        segment_destroy(s);
        bench_row_print(row);
}

void bench_shmring_broadcast(const struct bench_config *cfg) {
        static const unsigned readers[] = { 1, 2, 4, 8 };
        static const enum bench_wait waits[] = { WAIT_SPIN, WAIT_BLOCKING };

        for (unsigned w = 0; w < 2; w++)
                for (unsigned i = 0; i < 4; i++)
                        broadcast_row(cfg, BENCH_SECTION_BROADCAST, readers[i], waits[w]);
}

/*
 * The same rows with the policies a job gets on shared CPUs, run whether or
 * not every process has a core (readers > cores is the point): the
 * library's automatic policy, the old default (spin 50 us, then sleep) and
 * yield-then-sleep.
 */
void bench_shmring_oversubscribed(const struct bench_config *cfg) {
        static const unsigned readers[] = { 1, 2, 4, 8 };
        static const enum bench_wait waits[] = { WAIT_AUTO, WAIT_SPIN_BUDGET, WAIT_YIELD };

        for (unsigned w = 0; w < 3; w++)
                for (unsigned i = 0; i < 4; i++)
                        broadcast_row(cfg, BENCH_SECTION_OVERSUBSCRIBED, readers[i], waits[w]);
}
