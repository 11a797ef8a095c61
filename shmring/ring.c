/* SPDX-License-Identifier: MIT */
/*
 * Ports: the sending and receiving ends of channels.
 *
 * A ring has one writer.  A broadcast channel is one ring with many readers;
 * a queue is one ring per writer with one reader that visits them in turn.
 * The same code sends on both; receiving differs only in which rings a
 * reader looks at and where it sleeps.
 *
 * The writer may publish message h into slot h % slots once every reader it
 * waits for has a tail past h - slots.  It keeps `limit`, the first message
 * number it may not publish without looking at the readers again, so the
 * common send touches no reader's cache line.  Overflow bytes are handed out
 * from a byte ring in message order, so they are freed in the same order:
 * once every reader is past message m, every overflow byte up to
 * ovf_end[m] is free.
 */

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct shmring_tx {
        struct port p;
        struct shm_ring *ring;
        unsigned char *overflow;
        struct shm_wake *readers_wake;  /* where its readers sleep */
        int readers_wake_n;             /* how many to wake: all (broadcast) or the one */

        uint64_t head;                  /* next message number */
        uint64_t limit;                 /* head < limit: a free slot, known without a rescan */
        uint64_t ovf_head;              /* next overflow byte position */
        uint64_t ovf_consumed;          /* overflow positions below this are free */
        bool ovf_known;                 /* ovf_consumed is up to date for head */
        uint64_t start_seq, start_ovf;  /* where this writer's bookkeeping begins */
        uint64_t *ovf_end;              /* [slots]: ovf_head after message m, at m % slots */

        /* A message reserved by shmring_send_reserve(), not yet committed. */
        bool reserved;
        uint32_t res_len;
        uint64_t res_pos;               /* its overflow position (set by tx_place(); inline: res_len tells) */
        uint64_t res_end;               /* the overflow head after it */

        /* What the current wait is for. */
        size_t want_len;
        uint32_t want_readers;

        /* The reader a peer check found dead (its line, its owner word), so the
         * next wait reports it at once instead of after another interval. */
        struct shm_ring_reader *dead_reader;
        uint64_t dead_owner;
};

struct shmring_rx {
        struct port p;
        struct shm_wake *wake;          /* where it sleeps */
        uint32_t reader;                /* its line in each ring */
        uint32_t next_ring;             /* a queue reader visits rings round-robin */
        uint64_t *tails;                /* [n_rings]: next message number in each ring */

        bool held;                      /* a message returned by recv_zc, not yet done */
        uint32_t held_ring;
        struct shmring_msg found;       /* the message the last ready() found */
        uint32_t found_ring;
        uint64_t *dead_owner;           /* [n_rings]: a writer a peer check found dead */
        bool light;                     /* registered for the heavy barrier: frees slots without a fence */
};

static int64_t port_spin(const struct shmring_port_opts *o) {
        if (!o || o->spin_ns == 0)
                return default_spin_ns();
        return o->spin_ns < 0 ? 0 : o->spin_ns;
}

static int port_init(struct port *p, struct shmring *s, const char *channel, const struct shmring_port_opts *opts,
                     enum port_kind kind) {
        const struct channel_geom *g = NULL;

        if (!s || !channel || s->self_owner == 0)
                return s && s->self_owner == 0 ? -EPERM : -EINVAL;
        if (opts) {
                for (size_t i = 0; i < ELEMENTSOF(opts->reserved); i++)
                        if (opts->reserved[i] != 0)
                                return -EINVAL;
                if (opts->flags & ~(uint32_t) (kind == PORT_TX ? SHMRING_PORT_DROP_DEAD : 0))
                        return -EINVAL;
                if (opts->index < -1 || opts->spin_ns < SHMRING_SPIN_NEVER || opts->wait > SHMRING_WAIT_BLOCK)
                        return -EINVAL;
        }
        for (uint32_t i = 0; i < s->n_channels; i++)
                if (strcmp(s->channels[i].name, channel) == 0)
                        g = &s->channels[i];
        if (!g)
                return -ENOENT;

        *p = (struct port) {
                .kind = kind,
                .seg = s,
                .g = g,
                .index = opts ? opts->index : -1,
                .flags = opts ? opts->flags : 0,
                .spin_ns = port_spin(opts),
                .yield_ns = opts && opts->yield_us ? (int64_t) opts->yield_us * 1000 : default_yield_ns(),
                .wait = opts && opts->wait ? opts->wait : default_wait_policy(),
                .liveness_ns = opts && opts->liveness_ms ? (int64_t) opts->liveness_ms * 1000000 : default_liveness_ns(),
        };
        return 0;
}

static void port_link(struct port *p) {
        struct port_list *head = &p->seg->ports;

        p->link.next = head;
        p->link.prev = head->prev;
        head->prev->next = &p->link;
        head->prev = &p->link;
}

static void port_unlink(struct port *p) {
        p->link.prev->next = p->link.next;
        p->link.next->prev = p->link.prev;
        p->link.prev = p->link.next = &p->link;
}

/*
 * Takes a port whose owner word is *owner: free, or held by a process that
 * died.  Returns 0, or -EBUSY when a live process holds it.
 */
static int owner_take(struct port *p, _Atomic uint64_t *owner) {
        uint64_t cur = atomic_load_explicit(owner, memory_order_acquire);

        for (;;) {
                if (cur != 0 && !owner_dead(p->seg, cur))
                        return -EBUSY;
                if (atomic_compare_exchange_strong_explicit(owner, &cur, p->seg->self_owner,
                                                            memory_order_acq_rel, memory_order_acquire)) {
                        p->owner = p->seg->self_owner;
                        return 0;
                }
        }
}

static void owner_release(struct port *p, _Atomic uint64_t *owner) {
        uint64_t expected = p->owner;

        atomic_compare_exchange_strong_explicit(owner, &expected, 0, memory_order_release, memory_order_relaxed);
}

/* Takes slot `index` of n (or the first free one, then the first dead one's, when index is -1). */
static int owner_take_index(struct port *p, uint32_t n, _Atomic uint64_t *(*owner_of)(const struct channel_geom *, uint32_t),
                            uint32_t *ret) {
        int r = -EBUSY;

        if (p->index >= 0) {
                if ((uint32_t) p->index >= n)
                        return -ERANGE;
                r = owner_take(p, owner_of(p->g, (uint32_t) p->index));
                if (r == 0)
                        *ret = (uint32_t) p->index;
                return r;
        }
        /* Free ports first, so a live process's port is never probed for death needlessly. */
        for (uint32_t i = 0; i < n; i++)
                if (atomic_load_explicit(owner_of(p->g, i), memory_order_relaxed) == 0 &&
                    owner_take(p, owner_of(p->g, i)) == 0) {
                        *ret = i;
                        return 0;
                }
        for (uint32_t i = 0; i < n; i++)
                if (owner_take(p, owner_of(p->g, i)) == 0) {
                        *ret = i;
                        return 0;
                }
        return r;
}

static _Atomic uint64_t *ring_writer_owner(const struct channel_geom *g, uint32_t i) {
        return &geom_ring(g, i)->w.owner;
}

static _Atomic uint64_t *bcast_reader_owner(const struct channel_geom *g, uint32_t i) {
        return &geom_ring(g, 0)->readers[i].owner;
}

/* ================================================================ send */

/*
 * Looks at the readers the writer waits for and refreshes limit and
 * ovf_consumed.  A broadcast writer waits for live readers only; a queue's
 * writer for its reader's tail whether or not a reader is attached, since
 * queued messages wait for the next one.
 */
static int tx_scan(struct shmring_tx *tx) {
        const struct channel_geom *g = tx->p.g;
        uint64_t min = tx->head;

        for (uint32_t i = 0; i < g->n_readers; i++) {
                struct shm_ring_reader *rd = &tx->ring->readers[i];
                uint64_t t;

                if (g->kind == SHMRING_BROADCAST && !atomic_load_explicit(&rd->live, memory_order_acquire))
                        continue;
                t = atomic_load_explicit(&rd->tail, memory_order_acquire);
                if (t > tx->head)
                        t = tx->head;           /* a reader cannot be past what exists */
                if (tx->head - t > g->slots)
                        return -EBADMSG;        /* further behind than a ring: corrupt */
                if (t < min)
                        min = t;
        }

        tx->limit = min + g->slots;
        /* Overflow is free up to the end of the last message every reader is done
         * with.  When the slots are full, ovf_end[(min - 1) % slots] was overwritten;
         * no message fits then anyway. */
        tx->ovf_known = tx->head - min < g->slots;
        if (min <= tx->start_seq)
                tx->ovf_consumed = tx->start_ovf;
        else if (tx->ovf_known)
                tx->ovf_consumed = tx->ovf_end[(min - 1) & (g->slots - 1)];
        return 0;
}

/* Where a message of len overflow bytes would go: its position, and the head after it. */
static uint64_t ovf_place(const struct shmring_tx *tx, size_t len, uint64_t *ret_end) {
        uint64_t size = tx->p.g->overflow_size;
        uint64_t pos = tx->ovf_head;
        uint64_t off = pos % size;

        if (off + len > size)
                pos += size - off;              /* does not fit before the end: wrap */
        *ret_end = pos + ALIGN_UP(len, SHM_LINE);
        return pos;
}

static bool tx_fits(const struct shmring_tx *tx, size_t len) {
        uint64_t pos, end;

        if (tx->head >= tx->limit)
                return false;
        if (len <= tx->p.g->inline_max)
                return true;
        if (!tx->ovf_known)
                return false;
        pos = ovf_place(tx, len, &end);
        /* With nothing in use, the bytes skipped to wrap are in use by nobody either. */
        if (tx->ovf_consumed == tx->ovf_head)
                return end - pos <= tx->p.g->overflow_size;
        return end - tx->ovf_consumed <= tx->p.g->overflow_size;
}

/* Whether the reader that a peer check found dead still holds its place. */
static bool tx_dead_reader_remains(const struct shmring_tx *tx) {
        const struct channel_geom *g = tx->p.g;

        if (tx->dead_owner == 0)
                return false;
        if (g->kind == SHMRING_QUEUE)
                return atomic_load_explicit(&g->hdr->q_owner, memory_order_acquire) == tx->dead_owner;
        return atomic_load_explicit(&tx->dead_reader->owner, memory_order_acquire) == tx->dead_owner &&
               atomic_load_explicit(&tx->dead_reader->live, memory_order_acquire);
}

static int tx_ready(void *ctx) {
        struct shmring_tx *tx = ctx;
        int r;

        if (tx_fits(tx, tx->want_len))
                return 1;
        r = tx_scan(tx);
        if (r < 0)
                return r;
        if (tx_fits(tx, tx->want_len))
                return 1;
        return tx_dead_reader_remains(tx) ? -EOWNERDEAD : 0;
}

/* A broadcast writer forgets a dead reader: frees its line so the writer stops waiting. */
static bool reader_drop(struct shm_ring_reader *rd, uint64_t owner) {
        uint64_t expected = owner;

        if (!atomic_compare_exchange_strong_explicit(&rd->owner, &expected, 0, memory_order_acq_rel,
                                                     memory_order_relaxed))
                return false;
        atomic_store_explicit(&rd->live, 0, memory_order_release);
        return true;
}

static int tx_check_peers(void *ctx) {
        struct shmring_tx *tx = ctx;
        const struct channel_geom *g = tx->p.g;
        bool dropped = false;

        if (g->kind == SHMRING_QUEUE) {
                uint64_t owner = atomic_load_explicit(&g->hdr->q_owner, memory_order_acquire);

                if (owner == 0 || !owner_dead(tx->p.seg, owner))
                        return 0;
                tx->dead_owner = owner;
                return -EOWNERDEAD;
        }
        for (uint32_t i = 0; i < g->n_readers; i++) {
                struct shm_ring_reader *rd = &tx->ring->readers[i];
                uint64_t owner;

                if (!atomic_load_explicit(&rd->live, memory_order_acquire))
                        continue;
                /* Only a reader with something unread can be the one we wait for. */
                if (atomic_load_explicit(&rd->tail, memory_order_acquire) >= tx->head)
                        continue;
                owner = atomic_load_explicit(&rd->owner, memory_order_acquire);
                if (!owner_dead(tx->p.seg, owner))
                        continue;
                if (!(tx->p.flags & SHMRING_PORT_DROP_DEAD)) {
                        tx->dead_reader = rd;
                        tx->dead_owner = owner;
                        return -EOWNERDEAD;
                }
                dropped |= reader_drop(rd, owner);
        }
        return dropped ? tx_ready(tx) : 0;
}

/* Readers free slots without a fence (rx_advance()): a writer about to sleep makes the barrier. */
static const struct wait_ops tx_wait_ops = {
        .ready = tx_ready,
        .check_peers = tx_check_peers,
        .light_wakers = true,
};

/* Waits until a message of len bytes fits. */
static int tx_wait_space(struct shmring_tx *tx, size_t len, int64_t timeout_ns) {
        if (_likely_(tx_fits(tx, len)))
                return 0;
        tx->want_len = len;
        return port_wait(&tx->p, &tx->ring->wwake, &tx_wait_ops, tx, timeout_ns);
}

/*
 * Points at where the payload of message tx->head goes and remembers where
 * it is; nothing in the slot is written yet (see tx_publish()).
 */
static void *tx_place(struct shmring_tx *tx, size_t len) {
        const struct channel_geom *g = tx->p.g;
        struct shm_slot *slot = geom_slot(g, tx->ring, tx->head);

        tx->res_len = (uint32_t) len;
        if (len <= g->inline_max) {
                tx->res_pos = UINT64_MAX;
                return slot->data;
        }
        tx->res_pos = ovf_place(tx, len, &tx->res_end);
        return tx->overflow + tx->res_pos % g->overflow_size;
}

/*
 * Makes message tx->head visible to readers.  The slot's header is written
 * here, after the payload, so that the slot's first line (header, the
 * payload's first bytes, and the seq a reader polls) is written in one go
 * and ends with the release store of the seq: a reader polling that line
 * takes it from the writer once per message, not once per store.
 */
static inline __attribute__((always_inline)) void tx_publish_at(struct shmring_tx *tx, uint32_t len, uint64_t pos,
                                                                 uint64_t end) {
        const struct channel_geom *g = tx->p.g;
        uint64_t head = tx->head;
        struct shm_slot *slot = geom_slot(g, tx->ring, head);
        /* len and flags in one store: every store of a message holds a store-buffer
         * entry until the slot's lines arrive, and fewer entries a message let more
         * messages be in flight (a stream's rate is bound by that). */
        struct { uint32_t len, flags; } lf = { .len = len, .flags = 0 };

        if (pos != UINT64_MAX) {
                struct shm_overflow_ref ref = { .pos = pos, .end = end };

                lf.flags = SHM_SLOT_OVERFLOW;
                memcpy(slot->data, &ref, sizeof(ref));
                tx->ovf_head = end;
                atomic_store_explicit(&tx->ring->w.overflow_head, end, memory_order_relaxed);
        }
        memcpy(&slot->len, &lf, sizeof(lf));
        /* Overflow bookkeeping only where there is an overflow area: a store less
         * per message on channels without one. */
        if (g->overflow_size > 0)
                tx->ovf_end[head & (g->slots - 1)] = tx->ovf_head;

        atomic_store_explicit(&slot->seq, head + 1, memory_order_release);
        tx->head = head + 1;
        atomic_store_explicit(&tx->ring->w.head, head + 1, memory_order_release);
        wake_sleepers(tx->readers_wake, tx->readers_wake_n);
}

static void tx_publish(struct shmring_tx *tx) {
        tx_publish_at(tx, tx->res_len, tx->res_pos, tx->res_end);
}

/* Copies bytes [from, to) of the message gathered in iov to dst + from. */
static void iov_copy_range(unsigned char *dst, const struct iovec *iov, int iovcnt, size_t from, size_t to) {
        size_t pos = 0;

        for (int i = 0; i < iovcnt && pos < to; i++) {
                size_t n = iov[i].iov_len;

                if (n > 0 && pos + n > from) {
                        size_t a = from > pos ? from - pos : 0;
                        size_t b = to < pos + n ? to - pos : n;

                        memcpy(dst + pos + a, (const unsigned char *) iov[i].iov_base + a, b - a);
                }
                pos += n;
        }
}

/* Payload bytes that share the slot's first cache line with its header. */
#define SLOT_FIRST_LINE_PAYLOAD (SHM_LINE - SHM_SLOT_HEADER)

_public_ int shmring_sendv(struct shmring_tx *tx, const struct iovec *iov, int iovcnt, int64_t timeout_ns) {
        unsigned char *dst;
        size_t len = 0;
        int r;

        check_arg(tx, -EINVAL);
        check_arg(iovcnt >= 0 && (iovcnt == 0 || iov), -EINVAL);
        if (tx->reserved)
                return -EBUSY;
        for (int i = 0; i < iovcnt; i++) {
                check_arg(iov[i].iov_base || iov[i].iov_len == 0, -EINVAL);
                if (iov[i].iov_len > tx->p.g->max_message - len)
                        return -EMSGSIZE;
                len += iov[i].iov_len;
        }

        r = tx_wait_space(tx, len, timeout_ns);
        if (r < 0)
                return r;
        dst = tx_place(tx, len);
        if (tx->res_pos == UINT64_MAX && len > SLOT_FIRST_LINE_PAYLOAD) {
                /* Inline: the bytes past the first line first, so that the first line
                 * is written last, together with the header and the seq. */
                iov_copy_range(dst, iov, iovcnt, SLOT_FIRST_LINE_PAYLOAD, len);
                iov_copy_range(dst, iov, iovcnt, 0, SLOT_FIRST_LINE_PAYLOAD);
        } else
                iov_copy_range(dst, iov, iovcnt, 0, len);
        tx_publish(tx);
        return 0;
}

_public_ int shmring_send(struct shmring_tx *tx, const void *data, size_t len, int64_t timeout_ns) {
        struct iovec iov = { .iov_base = (void *) data, .iov_len = len };

        check_arg(tx, -EINVAL);
        check_arg(data || len == 0, -EINVAL);
        /* The common case, kept short: an inline message and a slot known to be free. */
        if (_likely_(len <= tx->p.g->inline_max && tx->head < tx->limit && !tx->reserved)) {
                unsigned char *dst = geom_slot(tx->p.g, tx->ring, tx->head)->data;

                if (len > SLOT_FIRST_LINE_PAYLOAD) {
                        /* The bytes past the first line first, as in shmring_sendv(). */
                        memcpy(dst + SLOT_FIRST_LINE_PAYLOAD, (const unsigned char *) data + SLOT_FIRST_LINE_PAYLOAD,
                               len - SLOT_FIRST_LINE_PAYLOAD);
                        memcpy(dst, data, SLOT_FIRST_LINE_PAYLOAD);
                } else if (len > 0)
                        memcpy(dst, data, len);
                tx_publish_at(tx, (uint32_t) len, UINT64_MAX, 0);
                return 0;
        }
        return shmring_sendv(tx, &iov, 1, timeout_ns);
}

_public_ int shmring_send_reserve(struct shmring_tx *tx, size_t len, void **ret_data, int64_t timeout_ns) {
        void *dst;
        int r;

        check_arg(tx, -EINVAL);
        check_arg(ret_data, -EINVAL);
        if (tx->reserved)
                return -EBUSY;
        /* The common case, kept short (as shmring_send()'s): inline, a slot known to
         * be free.  Every store a message makes holds a store-buffer entry until the
         * slot's lines arrive, so this path makes few: res_pos is not stored for an
         * inline message (shmring_send_commit() tells it by res_len). */
        if (_likely_(len <= tx->p.g->inline_max && tx->head < tx->limit)) {
                tx->res_len = (uint32_t) len;
                tx->reserved = true;
                *ret_data = geom_slot(tx->p.g, tx->ring, tx->head)->data;
                return 0;
        }
        if (len > tx->p.g->max_message)
                return -EMSGSIZE;
        r = tx_wait_space(tx, len, timeout_ns);
        if (r < 0)
                return r;
        dst = tx_place(tx, len);
        tx->reserved = true;
        *ret_data = dst;
        return 0;
}

_public_ int shmring_send_commit(struct shmring_tx *tx) {
        check_arg(tx, -EINVAL);
        if (!tx->reserved)
                return -ENOENT;
        tx->reserved = false;
        if (tx->res_len <= tx->p.g->inline_max)
                tx_publish_at(tx, tx->res_len, UINT64_MAX, 0);
        else
                tx_publish_at(tx, tx->res_len, tx->res_pos, tx->res_end);
        return 0;
}

_public_ int shmring_send_abort(struct shmring_tx *tx) {
        check_arg(tx, -EINVAL);
        if (!tx->reserved)
                return -ENOENT;
        /* Nothing was published: the slot and overflow bytes are simply reused. */
        tx->reserved = false;
        return 0;
}

static int tx_readers_ready(void *ctx) {
        struct shmring_tx *tx = ctx;
        uint32_t live = 0;

        for (uint32_t i = 0; i < tx->p.g->n_readers; i++)
                live += atomic_load_explicit(&tx->ring->readers[i].live, memory_order_acquire) != 0;
        return live >= tx->want_readers ? (int) live + 1 : 0;
}

_public_ int shmring_tx_wait_readers(struct shmring_tx *tx, uint32_t n, int64_t timeout_ns) {
        static const struct wait_ops ops = {
                .ready = tx_readers_ready,
                .check_peers = wait_no_peers,
        };
        int r;

        check_arg(tx, -EINVAL);
        if (tx->p.g->kind != SHMRING_BROADCAST)
                return -EOPNOTSUPP;
        if (n > tx->p.g->n_readers)
                return -ERANGE;
        tx->want_readers = n;
        r = port_wait(&tx->p, &tx->ring->wwake, &ops, tx, timeout_ns);
        if (r < 0)
                return r;
        return tx_readers_ready(tx) - 1;
}

_public_ int shmring_tx_drop_dead(struct shmring_tx *tx) {
        int dropped = 0;

        check_arg(tx, -EINVAL);
        if (tx->p.g->kind != SHMRING_BROADCAST)
                return -EOPNOTSUPP;
        for (uint32_t i = 0; i < tx->p.g->n_readers; i++) {
                struct shm_ring_reader *rd = &tx->ring->readers[i];
                uint64_t owner = atomic_load_explicit(&rd->owner, memory_order_acquire);

                if (owner != 0 && owner_dead(tx->p.seg, owner) && reader_drop(rd, owner))
                        dropped++;
        }
        if (dropped > 0)
                tx->limit = 0;                  /* rescan at the next send */
        return dropped;
}

/*
 * Picks up where the ring's last writer left off: its head, and the overflow
 * bytes still held by unread messages, rebuilt from their slots.
 */
static int tx_resume(struct shmring_tx *tx) {
        const struct channel_geom *g = tx->p.g;
        uint64_t head = atomic_load_explicit(&tx->ring->w.head, memory_order_acquire);
        uint64_t ovf = atomic_load_explicit(&tx->ring->w.overflow_head, memory_order_acquire);
        uint64_t base = ovf, running, min;
        bool seen_overflow = false;
        int r;

        tx->head = head;
        tx->start_seq = head;
        tx->start_ovf = ovf;
        tx->ovf_head = ovf;
        r = tx_scan(tx);
        if (r < 0)
                return r;
        min = tx->limit - g->slots;

        /* The unread window [min, head): each slot holds a whole published message. */
        for (uint64_t m = min; m < head; m++) {
                struct shm_slot *slot = geom_slot(g, tx->ring, m);
                struct shm_overflow_ref ref;

                if (atomic_load_explicit(&slot->seq, memory_order_acquire) != m + 1)
                        return -EBADMSG;
                if (!(slot->flags & SHM_SLOT_OVERFLOW))
                        continue;
                memcpy(&ref, slot->data, sizeof(ref));
                if (!seen_overflow)
                        base = ref.pos;
                seen_overflow = true;
                if (ref.end < ref.pos || ref.end > ovf || ref.pos < base)
                        return -EBADMSG;
        }
        running = base;
        for (uint64_t m = min; m < head; m++) {
                struct shm_slot *slot = geom_slot(g, tx->ring, m);
                struct shm_overflow_ref ref;

                if (slot->flags & SHM_SLOT_OVERFLOW) {
                        memcpy(&ref, slot->data, sizeof(ref));
                        running = ref.end;
                }
                tx->ovf_end[m & (g->slots - 1)] = running;
        }
        tx->start_seq = min;
        tx->start_ovf = base;
        return tx_scan(tx);
}

_public_ int shmring_tx_open(struct shmring *s, const char *channel, const struct shmring_port_opts *opts,
                             struct shmring_tx **ret) {
        struct shmring_tx *tx;
        uint32_t ring = 0;
        int r;

        check_arg(ret, -EINVAL);
        tx = calloc(1, sizeof(*tx));
        if (!tx)
                return -ENOMEM;
        r = port_init(&tx->p, s, channel, opts, PORT_TX);
        if (r < 0)
                goto fail;
        tx->ovf_end = calloc(tx->p.g->slots, sizeof(*tx->ovf_end));
        if (!tx->ovf_end) {
                r = -ENOMEM;
                goto fail;
        }

        if (tx->p.g->kind == SHMRING_BROADCAST) {
                if (tx->p.index > 0) {
                        r = -ERANGE;
                        goto fail;
                }
                tx->p.index = 0;
                r = owner_take(&tx->p, ring_writer_owner(tx->p.g, 0));
                tx->readers_wake_n = INT32_MAX;
        } else {
                r = owner_take_index(&tx->p, tx->p.g->n_rings, ring_writer_owner, &ring);
                tx->p.index = (int) ring;
                tx->readers_wake_n = 1;
        }
        if (r < 0)
                goto fail;
        tx->ring = geom_ring(tx->p.g, ring);
        tx->overflow = geom_overflow(tx->p.g, tx->ring);
        tx->readers_wake = tx->p.g->kind == SHMRING_BROADCAST ? &tx->ring->rwake : &tx->p.g->hdr->q_wake;

        r = tx_resume(tx);
        if (r < 0) {
                owner_release(&tx->p, &tx->ring->w.owner);
                goto fail;
        }
        atomic_store_explicit(&tx->ring->w.state, SHM_WRITER_LIVE, memory_order_release);
        port_link(&tx->p);
        *ret = tx;
        return 0;

fail:
        free(tx->ovf_end);
        free(tx);
        return r;
}

_public_ struct shmring_tx *shmring_tx_close(struct shmring_tx *tx) {
        if (!tx)
                return NULL;
        /* A reservation never committed is dropped: its seq was never stored. */
        if (atomic_load_explicit(&tx->ring->w.owner, memory_order_acquire) == tx->p.owner) {
                atomic_store_explicit(&tx->ring->w.state, SHM_WRITER_CLOSED, memory_order_release);
                owner_release(&tx->p, &tx->ring->w.owner);
                wake_sleepers(tx->readers_wake, INT32_MAX);
        }
        port_unlink(&tx->p);
        free(tx->ovf_end);
        free(tx);
        return NULL;
}

_public_ int shmring_tx_index(const struct shmring_tx *tx) {
        check_arg(tx, -EINVAL);
        return tx->p.index;
}

/* ============================================================= receive */

/*
 * Looks at the next message of ring i.  1 and *m filled (rx->found_ring
 * set) when one is there, 0 when not yet, < 0 when the slot cannot be
 * trusted.  *m is the caller's: shmring_recv_zc() passes its caller's
 * message, so that nothing is stored to a struct and read back at once with
 * wider loads (a load the store buffer cannot forward waits for every older
 * store, the last message's tail among them, to reach the cache: a round
 * trip to the writer's core per message in a stream).
 */
static int rx_peek(struct shmring_rx *rx, uint32_t i, struct shmring_msg *m) {
        const struct channel_geom *g = rx->p.g;
        struct shm_ring *ring = geom_ring(g, i);
        uint64_t t = rx->tails[i];
        struct shm_slot *slot = geom_slot(g, ring, t);
        uint64_t seq = atomic_load_explicit(&slot->seq, memory_order_acquire);
        uint32_t len, flags;
        const void *data;

        if (seq != t + 1) {
                /* Not yet written (0, or the previous lap's number), or overwritten:
                 * a writer went past us, so we were dropped as dead. */
                if (seq > t + 1)
                        return -ESTALE;
                /* While we wait, keep the slot's second line coming: the writer fills
                 * it before the first (tx_publish()), so when the seq shows up the
                 * rest of a small message is already here, not one more miss away. */
                if (g->slot_stride > SHM_LINE)
                        __builtin_prefetch((const unsigned char *) slot + SHM_LINE, 0, 3);
                return 0;
        }

        len = __atomic_load_n(&slot->len, __ATOMIC_RELAXED);
        flags = __atomic_load_n(&slot->flags, __ATOMIC_RELAXED);
        if (flags == 0) {
                if (len > g->inline_max)
                        return -EBADMSG;
                data = slot->data;
        } else if (flags == SHM_SLOT_OVERFLOW && g->overflow_size > 0) {
                struct shm_overflow_ref ref;
                uint64_t off;

                memcpy(&ref, slot->data, sizeof(ref));
                off = ref.pos % g->overflow_size;
                if (len > g->overflow_size - off)
                        return -EBADMSG;
                data = geom_overflow(g, ring) + off;
        } else
                return -EBADMSG;

        m->data = data;
        m->len = len;
        m->seq = t;
        m->sender = g->kind == SHMRING_QUEUE ? i : 0;
        rx->found_ring = i;
        return 1;
}

/* After copying a message out: whether its slot still holds it (it would not if we were dropped). */
static int rx_still_valid(struct shmring_rx *rx, uint32_t i) {
        struct shm_ring *ring = geom_ring(rx->p.g, i);
        struct shm_slot *slot = geom_slot(rx->p.g, ring, rx->tails[i]);

        atomic_thread_fence(memory_order_acquire);
        return atomic_load_explicit(&slot->seq, memory_order_relaxed) == rx->tails[i] + 1 ? 0 : -ESTALE;
}

/*
 * Done with the message at the tail of ring i: free its slot for the writer.
 * At every message, so without a fence where the process is registered for
 * the heavy barrier (a writer going to sleep on a full ring makes it, see
 * internal.h): a fence here waits for the tail's store, which waits for its
 * cache line to come back from the writer's core, and in a stream that was
 * a round trip per message, half the reader's rate.
 */
static void rx_advance(struct shmring_rx *rx, uint32_t i) {
        struct shm_ring *ring = geom_ring(rx->p.g, i);

        rx->tails[i]++;
        atomic_store_explicit(&ring->readers[rx->reader].tail, rx->tails[i], memory_order_release);
        if (_likely_(rx->light))
                wake_sleepers_light(&ring->wwake, 1);
        else
                wake_sleepers(&ring->wwake, 1);
}

/* Whether a writer that a peer check found dead still holds its ring. */
static bool rx_dead_writer_remains(const struct shmring_rx *rx) {
        for (uint32_t i = 0; i < rx->p.g->n_rings; i++) {
                struct shm_ring *ring = geom_ring(rx->p.g, i);

                if (rx->dead_owner[i] != 0 &&
                    atomic_load_explicit(&ring->w.owner, memory_order_acquire) == rx->dead_owner[i] &&
                    atomic_load_explicit(&ring->w.state, memory_order_acquire) == SHM_WRITER_LIVE)
                        return true;
        }
        return false;
}

static int rx_ready(void *ctx) {
        struct shmring_rx *rx = ctx;
        const struct channel_geom *g = rx->p.g;
        uint32_t n = g->n_rings, closed = 0, live = 0;
        int r;

        for (uint32_t k = 0; k < n; k++) {
                uint32_t i = rx->next_ring + k < n ? rx->next_ring + k : rx->next_ring + k - n;

                r = rx_peek(rx, i, &rx->found);
                if (r != 0) {
                        if (r > 0)
                                rx->next_ring = i + 1 < n ? i + 1 : 0;
                        return r;
                }
        }

        /* Nothing to read: has every writer that ever came closed? */
        for (uint32_t i = 0; i < n; i++) {
                uint32_t st = atomic_load_explicit(&geom_ring(g, i)->w.state, memory_order_acquire);

                closed += st == SHM_WRITER_CLOSED;
                live += st == SHM_WRITER_LIVE;
        }
        if (live > 0 || closed == 0)
                return rx_dead_writer_remains(rx) ? -EOWNERDEAD : 0;
        /* The close was stored after the last publish: look once more, then it is the end. */
        for (uint32_t i = 0; i < n; i++) {
                r = rx_peek(rx, i, &rx->found);
                if (r != 0)
                        return r;
        }
        return -EPIPE;
}

static int rx_check_peers(void *ctx) {
        struct shmring_rx *rx = ctx;
        const struct channel_geom *g = rx->p.g;
        bool dead = false;

        for (uint32_t i = 0; i < g->n_rings; i++) {
                struct shm_ring *ring = geom_ring(g, i);
                uint64_t owner;

                if (atomic_load_explicit(&ring->w.state, memory_order_acquire) != SHM_WRITER_LIVE)
                        continue;
                owner = atomic_load_explicit(&ring->w.owner, memory_order_acquire);
                if (owner_dead(rx->p.seg, owner)) {
                        rx->dead_owner[i] = owner;
                        dead = true;
                }
        }
        if (!dead)
                return 0;
        /* What a dead writer published before dying is still delivered. */
        return rx_ready(rx) ?: -EOWNERDEAD;
}

static const struct wait_ops rx_wait_ops = {
        .ready = rx_ready,
        .check_peers = rx_check_peers,
};

_public_ int shmring_recv_zc(struct shmring_rx *rx, struct shmring_msg *ret_msg, int64_t timeout_ns) {
        int r;

        check_arg(rx, -EINVAL);
        check_arg(ret_msg, -EINVAL);
        if (rx->held)
                return -EBUSY;
        /* The message is usually there already: look at the ring due first without the wait loop. */
        r = rx_peek(rx, rx->next_ring, ret_msg);
        if (r > 0)
                rx->next_ring = rx->next_ring + 1 < rx->p.g->n_rings ? rx->next_ring + 1 : 0;
        else {
                r = port_wait(&rx->p, rx->wake, &rx_wait_ops, rx, timeout_ns);
                if (r < 0)
                        return r;
                *ret_msg = rx->found;
        }
        rx->held = true;
        rx->held_ring = rx->found_ring;
        return 0;
}

_public_ int shmring_recv_done(struct shmring_rx *rx) {
        int r;

        check_arg(rx, -EINVAL);
        if (!rx->held)
                return -ENOENT;
        rx->held = false;
        r = rx_still_valid(rx, rx->held_ring);
        if (r < 0)
                return r;
        rx_advance(rx, rx->held_ring);
        return 0;
}

/*
 * The common receive, kept short: the next message of the ring the reader
 * looks at first is there, inline, and fits buf.  Returns its length, or
 * -1 for everything else (not there yet, overflow, too large, overwritten),
 * which the full path then sorts out.
 */
static ssize_t rx_recv_fast(struct shmring_rx *rx, void *buf, size_t size) {
        const struct channel_geom *g = rx->p.g;
        uint32_t i = rx->next_ring;
        uint64_t t = rx->tails[i];
        struct shm_slot *slot = geom_slot(g, geom_ring(g, i), t);
        uint32_t len;

        if (atomic_load_explicit(&slot->seq, memory_order_acquire) != t + 1)
                return -1;
        len = __atomic_load_n(&slot->len, __ATOMIC_RELAXED);
        if (__atomic_load_n(&slot->flags, __ATOMIC_RELAXED) != 0 || len > g->inline_max || len > size)
                return -1;
        if (len > 0)
                memcpy(buf, slot->data, len);
        /* Still ours after the copy: the writer did not go past us (rx_still_valid()). */
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&slot->seq, memory_order_relaxed) != t + 1)
                return -1;
        rx->next_ring = i + 1 < g->n_rings ? i + 1 : 0;
        rx_advance(rx, i);
        return len;
}

_public_ ssize_t shmring_recv(struct shmring_rx *rx, void *buf, size_t size, int64_t timeout_ns) {
        ssize_t n;
        int r;

        check_arg(rx, -EINVAL);
        check_arg(buf || size == 0, -EINVAL);
        if (rx->held)
                return -EBUSY;
        n = rx_recv_fast(rx, buf, size);
        if (_likely_(n >= 0))
                return n;
        r = port_wait(&rx->p, rx->wake, &rx_wait_ops, rx, timeout_ns);
        if (r < 0)
                return r;
        if (rx->found.len > size)
                return -EMSGSIZE;
        if (rx->found.len > 0)
                memcpy(buf, rx->found.data, rx->found.len);
        r = rx_still_valid(rx, rx->found_ring);
        if (r < 0)
                return r;
        rx_advance(rx, rx->found_ring);
        return (ssize_t) rx->found.len;
}

/* Joins a broadcast ring: from the head on, without the writer ever overtaking us. */
static void bcast_join(struct shmring_rx *rx) {
        struct shm_ring *ring = geom_ring(rx->p.g, 0);
        struct shm_ring_reader *rd = &ring->readers[rx->reader];
        uint64_t head;

        /* A tail no later than the head before we become visible, then the head
         * after: a writer that missed us cannot have gone a ring past it. */
        atomic_store_explicit(&rd->tail, atomic_load_explicit(&ring->w.head, memory_order_acquire),
                              memory_order_relaxed);
        atomic_store_explicit(&rd->live, 1, memory_order_seq_cst);
        head = atomic_load_explicit(&ring->w.head, memory_order_seq_cst);
        atomic_store_explicit(&rd->tail, head, memory_order_release);
        rx->tails[0] = head;
        wake_sleepers(&ring->wwake, INT32_MAX);          /* a writer may wait for readers */
}

_public_ int shmring_rx_open(struct shmring *s, const char *channel, const struct shmring_port_opts *opts,
                             struct shmring_rx **ret) {
        struct shmring_rx *rx;
        const struct channel_geom *g;
        int r;

        check_arg(ret, -EINVAL);
        rx = calloc(1, sizeof(*rx));
        if (!rx)
                return -ENOMEM;
        r = port_init(&rx->p, s, channel, opts, PORT_RX);
        if (r < 0)
                goto fail;
        g = rx->p.g;
        rx->light = light_barrier_register();
        rx->tails = calloc(g->n_rings, sizeof(*rx->tails));
        rx->dead_owner = calloc(g->n_rings, sizeof(*rx->dead_owner));
        if (!rx->tails || !rx->dead_owner) {
                r = -ENOMEM;
                goto fail;
        }

        if (g->kind == SHMRING_BROADCAST) {
                r = owner_take_index(&rx->p, g->n_readers, bcast_reader_owner, &rx->reader);
                if (r < 0)
                        goto fail;
                rx->p.index = (int) rx->reader;
                rx->wake = &geom_ring(g, 0)->rwake;
                bcast_join(rx);
        } else {
                if (rx->p.index > 0) {
                        r = -ERANGE;
                        goto fail;
                }
                r = owner_take(&rx->p, &g->hdr->q_owner);
                if (r < 0)
                        goto fail;
                rx->p.index = 0;
                rx->reader = 0;
                rx->wake = &g->hdr->q_wake;
                /* Queued messages wait for whoever reads next: start where the last reader stopped. */
                for (uint32_t i = 0; i < g->n_rings; i++) {
                        struct shm_ring *ring = geom_ring(g, i);
                        uint64_t t = atomic_load_explicit(&ring->readers[0].tail, memory_order_acquire);
                        uint64_t head = atomic_load_explicit(&ring->w.head, memory_order_acquire);

                        rx->tails[i] = t <= head ? t : head;
                        atomic_store_explicit(&ring->readers[0].owner, rx->p.owner, memory_order_relaxed);
                        atomic_store_explicit(&ring->readers[0].live, 1, memory_order_release);
                }
        }
        port_link(&rx->p);
        *ret = rx;
        return 0;

fail:
        free(rx->tails);
        free(rx->dead_owner);
        free(rx);
        return r;
}

_public_ struct shmring_rx *shmring_rx_close(struct shmring_rx *rx) {
        const struct channel_geom *g;

        if (!rx)
                return NULL;
        g = rx->p.g;
        if (g->kind == SHMRING_BROADCAST) {
                struct shm_ring *ring = geom_ring(g, 0);
                struct shm_ring_reader *rd = &ring->readers[rx->reader];

                if (atomic_load_explicit(&rd->owner, memory_order_acquire) == rx->p.owner) {
                        atomic_store_explicit(&rd->live, 0, memory_order_release);
                        owner_release(&rx->p, &rd->owner);
                        wake_sleepers(&ring->wwake, INT32_MAX);
                }
        } else if (atomic_load_explicit(&g->hdr->q_owner, memory_order_acquire) == rx->p.owner) {
                for (uint32_t i = 0; i < g->n_rings; i++) {
                        struct shm_ring_reader *rd = &geom_ring(g, i)->readers[0];

                        atomic_store_explicit(&rd->live, 0, memory_order_release);
                        atomic_store_explicit(&rd->owner, 0, memory_order_release);
                }
                owner_release(&rx->p, &g->hdr->q_owner);
        }
        port_unlink(&rx->p);
        free(rx->tails);
        free(rx->dead_owner);
        free(rx);
        return NULL;
}

_public_ int shmring_rx_index(const struct shmring_rx *rx) {
        check_arg(rx, -EINVAL);
        return rx->p.index;
}

void port_close_any(struct port *p) {
        if (p->kind == PORT_TX)
                shmring_tx_close((struct shmring_tx *) p);
        else
                shmring_rx_close((struct shmring_rx *) p);
}
