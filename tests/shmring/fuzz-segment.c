/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: corrupted segments thrown at attach and at reading.
 *
 * Each input builds a valid segment (a broadcast channel, a queue of two
 * writers, a table) with messages in flight, inline and in the overflow
 * area, then overlays the input's bytes on chosen parts of it, and then:
 *   A. through the handle that made it (its geometry was checked before the
 *      damage): receives (copy and zero-copy), sends, table lookups, opens
 *      and closes ports;
 *   B. attaches afresh (as a peer or an observer) and does the same;
 *   C. closes everything, optionally truncates the object, attaches again.
 * None of it may crash, hang or read outside the segment: every zero-copy
 * message of step A must lie inside the segment's mapping (an oracle the
 * sanitizers cannot give, since the segment is not heap memory).
 *
 * Input (all optional; a short input stops early):
 *   byte 0     flags: 1 truncate in step C, 2 attach as observer in step B,
 *              4 receive nothing in step A, 8 open a second reader in step A
 *   bytes 1-2  step C's size, in units of 256 bytes (little-endian)
 *   then patches, each: target, offset (2 bytes, little-endian), op, data
 *     target   which part: see enum target (modulo N_TARGETS)
 *     op       bit 7 set: store an "interesting" value (op & 15 picks it),
 *              8 bytes wide if bit 6 is set else 4, at the offset rounded
 *              down to its width; no data follows.
 *              bit 7 clear: copy the next (op & 63) + 1 bytes of input.
 *     offsets are taken modulo the target's size, copies clipped to it.
 *
 * Built as a libFuzzer target by `make fuzz`, and into tests/shmring/
 * fuzz-replay, which runs the seed corpus in `make check`.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"
#include "shmring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum target {
        T_HEADER, T_DIRECTORY, T_PEERS,
        T_BC_CHANNEL, T_BC_CONTROL, T_BC_SLOTS, T_BC_OVERFLOW,
        T_Q_CHANNEL, T_Q_RING0, T_Q_RING1, T_TABLE, T_ANYWHERE,
        N_TARGETS,
};

#define SLOT_SIZE 48
#define OVERFLOW 1024
#define BUF_MAX (OVERFLOW + SLOT_SIZE)

static const struct shmring_channel_spec channels[] = {
        { .name = "bc", .kind = SHMRING_BROADCAST, .slots = 4, .slot_size = SLOT_SIZE, .overflow_size = OVERFLOW,
          .max_ports = 2 },
        { .name = "q", .kind = SHMRING_QUEUE, .slots = 4, .slot_size = SLOT_SIZE, .overflow_size = OVERFLOW,
          .max_ports = 2 },
};
static const struct shmring_table_spec table = { .name = "t", .entries = 4, .value_size = 32 };

/* A failed invariant: crash loudly so that the fuzzer (or the replay) reports it. */
#define FUZZ_ASSERT(cond)                                                                       \
        do {                                                                                    \
                if (!(cond)) {                                                                  \
                        fprintf(stderr, "fuzz-segment: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
                        abort();                                                                \
                }                                                                               \
        } while (0)

struct part {
        uint64_t offset, size;
};

/* The segment as the test maps it, and where its parts are (per layout.h). */
struct view {
        unsigned char *base;
        uint64_t size;
        struct part part[N_TARGETS];
        uint64_t bc_slot0_data;         /* offset of the payload of broadcast slot 0 */
        uint64_t table_lock;            /* offset of the table's lock word */
};

static uint64_t ring_ctrl(uint32_t n_readers) {
        return sizeof(struct shm_ring) + (uint64_t) n_readers * sizeof(struct shm_ring_reader);
}

static bool view_map(struct view *v, const char *name) {
        char path[256];
        struct stat st;
        const struct shm_header *h;
        int fd;

        snprintf(path, sizeof(path), "/dev/shm/%s", name + 1);
        fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return false;
        if (fstat(fd, &st) < 0) {
                close(fd);
                return false;
        }
        v->size = (uint64_t) st.st_size;
        v->base = mmap(NULL, v->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (v->base == MAP_FAILED) {
                v->base = NULL;
                return false;
        }
        h = (const struct shm_header *) v->base;
        /* Freshly made by shmring_create: peers, bc, q, t, in that order. */
        FUZZ_ASSERT(h->magic == SHM_MAGIC && h->n_regions == 4);
        const struct shm_region *r = h->regions;
        const struct shm_channel *bc = (const void *) (v->base + r[1].offset);
        const struct shm_channel *q = (const void *) (v->base + r[2].offset);
        uint64_t bc_ring = r[1].offset + bc->rings_offset, q_ring = r[2].offset + q->rings_offset;
        uint64_t bc_ctrl = ring_ctrl(bc->n_readers), q_ctrl = ring_ctrl(q->n_readers);

        v->part[T_HEADER] = (struct part) { 0, SHM_HEADER_FIXED };
        v->part[T_DIRECTORY] = (struct part) { SHM_HEADER_FIXED, h->n_regions * sizeof(struct shm_region) };
        v->part[T_PEERS] = (struct part) { r[0].offset, r[0].size < 1024 ? r[0].size : 1024 };
        v->part[T_BC_CHANNEL] = (struct part) { r[1].offset, sizeof(struct shm_channel) };
        v->part[T_BC_CONTROL] = (struct part) { bc_ring, bc_ctrl };
        v->part[T_BC_SLOTS] = (struct part) { bc_ring + bc_ctrl, (uint64_t) bc->slots * bc->slot_stride };
        v->part[T_BC_OVERFLOW] = (struct part) { bc_ring + bc_ctrl + (uint64_t) bc->slots * bc->slot_stride,
                                                 bc->overflow_size };
        v->part[T_Q_CHANNEL] = (struct part) { r[2].offset, sizeof(struct shm_channel) };
        v->part[T_Q_RING0] = (struct part) { q_ring, q_ctrl + (uint64_t) q->slots * q->slot_stride };
        v->part[T_Q_RING1] = (struct part) { q_ring + q->ring_stride, q_ctrl + (uint64_t) q->slots * q->slot_stride };
        v->part[T_TABLE] = (struct part) { r[3].offset, r[3].size < 2048 ? r[3].size : 2048 };
        v->part[T_ANYWHERE] = (struct part) { 0, v->size };
        v->bc_slot0_data = bc_ring + bc_ctrl + SHM_SLOT_HEADER;
        v->table_lock = r[3].offset + offsetof(struct shm_table, lock);
        for (int i = 0; i < N_TARGETS; i++)
                FUZZ_ASSERT(v->part[i].size > 0 && v->part[i].offset + v->part[i].size <= v->size);
        return true;
}

static void view_unmap(struct view *v) {
        if (v->base)
                munmap(v->base, v->size);
        v->base = NULL;
}

static uint64_t interesting(unsigned i, uint64_t seg_size) {
        static const uint64_t values[16] = {
                0, 1, 2, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff,
                UINT64_C(1) << 32, UINT64_C(1) << 63, UINT64_MAX, 4096, 64, 0,
        };
        return i == 15 ? seg_size : values[i];
}

/* Applies the input's patches to the mapped segment. */
static void apply_patches(struct view *v, const uint8_t *p, size_t n) {
        while (n >= 4) {
                const struct part *t = &v->part[p[0] % N_TARGETS];
                uint64_t off = (uint64_t) (p[1] | p[2] << 8);
                uint8_t op = p[3];

                if (t == &v->part[T_ANYWHERE] && n >= 6) {
                        off |= (uint64_t) (p[4] | p[5] << 8) << 16;
                        p += 2;
                        n -= 2;
                }
                p += 4;
                n -= 4;
                off %= t->size;
                if (op & 0x80) {
                        unsigned width = op & 0x40 ? 8 : 4;
                        uint64_t x = interesting(op & 15, v->size);

                        off &= ~(uint64_t) (width - 1);
                        if (off + width > t->size)
                                continue;
                        memcpy(v->base + t->offset + off, &x, width); /* little-endian hosts */
                } else {
                        size_t len = (size_t) (op & 63) + 1;

                        if (len > n)
                                len = n;
                        if (len > t->size - off)
                                len = (size_t) (t->size - off);
                        memcpy(v->base + t->offset + off, p, len);
                        p += len;
                        n -= len;
                }
        }
}

static unsigned char payload[BUF_MAX];

/* Receives until there is nothing (or an error), both ways; zero-copy messages must lie in [lo, hi). */
static void drain(struct shmring_rx *rx, const unsigned char *lo, const unsigned char *hi) {
        static unsigned char buf[BUF_MAX];

        if (!rx)
                return;
        for (int i = 0; i < 10; i++) {
                struct shmring_msg m;
                ssize_t r;

                if (i % 2) {
                        r = shmring_recv(rx, buf, sizeof(buf), 0);
                        FUZZ_ASSERT(r < 0 || (size_t) r <= sizeof(buf));
                        if (r == -EMSGSIZE)
                                r = shmring_recv(rx, NULL, 0, 0);
                        if (r < 0 && r != -EMSGSIZE)
                                break;
                        continue;
                }
                memset(&m, 0, sizeof(m));
                r = shmring_recv_zc(rx, &m, 0);
                if (r < 0)
                        break;
                if (lo) {
                        const unsigned char *d = m.data;
                        FUZZ_ASSERT(m.len == 0 || (d >= lo && d <= hi && m.len <= (size_t) (hi - d)));
                }
                /* Touch every byte, as a caller would. */
                {
                        volatile unsigned char sum = 0;
                        const unsigned char *d = m.data;
                        for (size_t k = 0; k < m.len; k++)
                                sum ^= d[k];
                        (void) sum;
                }
                (void) shmring_recv_done(rx);
        }
}

static void send_some(struct shmring_tx *tx) {
        void *p = NULL;
        struct iovec iov[2] = { { payload, 7 }, { payload + 7, 300 } };

        if (!tx)
                return;
        (void) shmring_send(tx, payload, 10, 0);
        (void) shmring_send(tx, payload, 200, 0);
        (void) shmring_sendv(tx, iov, 2, 0);
        if (shmring_send_reserve(tx, 60, &p, 0) == 0) {
                memset(p, 0x42, 60);
                (void) shmring_send_commit(tx);
        }
        (void) shmring_send(tx, payload, OVERFLOW, 0);
        (void) shmring_tx_drop_dead(tx);
        (void) shmring_tx_wait_readers(tx, 1, 0);
}

static void use_table(struct shmring *s, const struct view *v) {
        unsigned char buf[64];
        struct shmring_kv_info info;

        (void) shmring_kv_get(s, "t", "key", 0, buf, sizeof(buf), &info, 0);
        (void) shmring_kv_get(s, "t", "other", 0, buf, sizeof(buf), &info, 0);
        (void) shmring_kv_get(s, "t", "key", 0, NULL, 0, NULL, 0);
        /* A put waits (up to seconds) for a lock a live peer holds: only with the lock free. */
        if (v && v->base) {
                uint64_t lock;
                memcpy(&lock, v->base + v->table_lock, sizeof(lock));
                if (lock != 0)
                        return;
        } else if (!v) {
                return;
        }
        (void) shmring_kv_put(s, "t", "key", payload, 20);
        (void) shmring_kv_put(s, "t", "new", payload, 5);
        (void) shmring_kv_del(s, "t", "other");
}

/* Step B: a fresh attach to the damaged segment. */
static void attach_and_use(const char *name, unsigned flags, const struct view *v) {
        struct shmring *t = NULL;
        struct shmring_rx *rx = NULL;
        struct shmring_tx *tx = NULL;
        struct shmring_info info;
        struct shmring_channel_info ci;

        if (shmring_attach(name, flags, &t) < 0)
                return;
        (void) shmring_get_info(t, &info);
        for (uint32_t i = 0; i < 4; i++)
                (void) shmring_channel_info(t, i, &ci);
        if (!(flags & SHMRING_ATTACH_OBSERVER)) {
                struct shmring_port_opts o = { .index = -1, .spin_ns = SHMRING_SPIN_NEVER };
                if (shmring_rx_open(t, "bc", &o, &rx) == 0) {
                        drain(rx, NULL, NULL);
                        rx = shmring_rx_close(rx);
                }
                if (shmring_tx_open(t, "bc", &o, &tx) == 0) {
                        send_some(tx);
                        tx = shmring_tx_close(tx);
                }
                if (shmring_tx_open(t, "q", &o, &tx) == 0) {
                        send_some(tx);
                        tx = shmring_tx_close(tx);
                }
                (void) shmring_mark_dead(t, 0x3ffffff0);
        }
        use_table(t, flags & SHMRING_ATTACH_OBSERVER ? NULL : v);
        t = shmring_close(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct shmring_spec spec = { .n_channels = 2, .channels = channels, .n_tables = 1, .tables = &table };
        struct shmring_port_opts o = { .index = -1, .spin_ns = SHMRING_SPIN_NEVER };
        struct shmring_port_opts q1 = { .index = 1, .spin_ns = SHMRING_SPIN_NEVER };
        struct shmring *s = NULL;
        struct shmring_tx *btx = NULL, *qtx0 = NULL, *qtx1 = NULL;
        struct shmring_rx *brx = NULL, *brx2 = NULL, *qrx = NULL;
        struct shmring_msg probe;
        struct view v = { 0 };
        char name[SHMRING_NAME_MAX], run_id[32];
        const unsigned char *seg_lo, *seg_hi;
        uint8_t flags = size > 0 ? data[0] : 0;
        uint64_t trunc_to = size > 2 ? (uint64_t) (data[1] | data[2] << 8) * 256 : 0;
        void *p;

        for (size_t i = 0; i < sizeof(payload); i++)
                payload[i] = (unsigned char) (i * 131 + 7);

        snprintf(run_id, sizeof(run_id), "fuzz-%d", (int) getpid());
        spec.run_id = run_id;
        FUZZ_ASSERT(shmring_create(&spec, &s) == 0);
        snprintf(name, sizeof(name), "%s", shmring_name(s));

        /* Ports, and messages of every kind in flight. */
        FUZZ_ASSERT(shmring_tx_open(s, "bc", &o, &btx) == 0);
        FUZZ_ASSERT(shmring_rx_open(s, "bc", &o, &brx) == 0);
        FUZZ_ASSERT(shmring_rx_open(s, "q", &o, &qrx) == 0);
        FUZZ_ASSERT(shmring_tx_open(s, "q", &o, &qtx0) == 0);
        FUZZ_ASSERT(shmring_tx_open(s, "q", &q1, &qtx1) == 0);
        FUZZ_ASSERT(view_map(&v, name));

        /* A probe locates the handle's own mapping: zero-copy messages must stay inside it. */
        FUZZ_ASSERT(shmring_send(btx, "probe", 5, 0) == 0);
        FUZZ_ASSERT(shmring_recv_zc(brx, &probe, 0) == 0);
        seg_lo = (const unsigned char *) probe.data - v.bc_slot0_data;
        seg_hi = seg_lo + v.size;
        FUZZ_ASSERT(memcmp(probe.data, v.base + v.bc_slot0_data, 5) == 0);
        FUZZ_ASSERT(shmring_recv_done(brx) == 0);

        FUZZ_ASSERT(shmring_send(btx, payload, 20, 0) == 0);
        FUZZ_ASSERT(shmring_send(btx, payload, 300, 0) == 0);
        FUZZ_ASSERT(shmring_send_reserve(btx, 100, &p, 0) == 0);
        memcpy(p, payload, 100);
        FUZZ_ASSERT(shmring_send_commit(btx) == 0);
        FUZZ_ASSERT(shmring_send(qtx0, payload, 30, 0) == 0);
        FUZZ_ASSERT(shmring_send(qtx0, payload, 500, 0) == 0);
        FUZZ_ASSERT(shmring_send(qtx1, payload, 10, 0) == 0);
        FUZZ_ASSERT(shmring_send(qtx1, payload, 700, 0) == 0);
        FUZZ_ASSERT(shmring_kv_put(s, "t", "key", payload, 16) > 0);
        FUZZ_ASSERT(shmring_kv_put(s, "t", "other", payload, 32) > 0);

        if (size > 3)
                apply_patches(&v, data + 3, size - 3);

        /* A: the handle that made it. */
        if (flags & 8) {
                struct shmring_port_opts any = { .index = -1, .spin_ns = SHMRING_SPIN_NEVER };
                (void) shmring_rx_open(s, "bc", &any, &brx2);
        }
        if (!(flags & 4)) {
                drain(brx, seg_lo, seg_hi);
                drain(brx2, seg_lo, seg_hi);
                drain(qrx, seg_lo, seg_hi);
        }
        send_some(btx);
        send_some(qtx0);
        send_some(qtx1);
        if (!(flags & 4)) {
                drain(brx, seg_lo, seg_hi);
                drain(qrx, seg_lo, seg_hi);
        }
        use_table(s, &v);

        /* B: a fresh attach. */
        attach_and_use(name, flags & 2 ? SHMRING_ATTACH_OBSERVER : 0, &v);

        /* C: close, maybe truncate, attach once more. */
        brx2 = shmring_rx_close(brx2);
        btx = shmring_tx_close(btx);
        s = shmring_close(s);   /* closes the other ports too */
        view_unmap(&v);
        if ((flags & 1) && trunc_to < v.size) {
                char path[256];
                snprintf(path, sizeof(path), "/dev/shm/%s", name + 1);
                if (truncate(path, (off_t) trunc_to) == 0)
                        attach_and_use(name, flags & 2 ? SHMRING_ATTACH_OBSERVER : 0, NULL);
        }
        (void) shmring_unlink_name(name);
        return 0;
}
