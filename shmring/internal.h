/* SPDX-License-Identifier: MIT */
#ifndef SHMRING_INTERNAL_H
#define SHMRING_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "layout.h"
#include "shmring.h"

#define _public_ __attribute__((visibility("default")))
#define _unlikely_(x) __builtin_expect(!!(x), 0)
#define _likely_(x) __builtin_expect(!!(x), 1)

/* Argument checks at the public edge, as systemd's assert_return(). */
#define check_arg(expr, err)            \
        do {                            \
                if (_unlikely_(!(expr))) \
                        return (err);   \
        } while (0)

#define ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((uint64_t) (a) - 1))
#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------ geometry */

/*
 * A channel as this process understood it at attach time.  Never re-read
 * from the segment: a peer that scribbles on the channel header afterwards
 * cannot make us index outside the mapping.
 */
struct channel_geom {
        char name[SHMRING_CHANNEL_NAME_MAX + 1];
        uint32_t kind;
        uint32_t n_rings;
        uint32_t n_readers;
        uint32_t slots;                 /* power of two */
        uint32_t slot_stride;
        uint32_t inline_max;            /* payload bytes a slot holds */
        uint64_t overflow_size;
        uint64_t ring_stride;
        uint64_t ring_ctrl;             /* bytes before the slots, in a ring */
        uint64_t max_message;
        struct shm_channel *hdr;
        unsigned char *rings;
};

static inline struct shm_ring *geom_ring(const struct channel_geom *g, uint32_t i) {
        return (struct shm_ring *) (g->rings + (uint64_t) i * g->ring_stride);
}

static inline struct shm_slot *geom_slot(const struct channel_geom *g, struct shm_ring *r, uint64_t seq) {
        return (struct shm_slot *) ((unsigned char *) r + g->ring_ctrl +
                                    (seq & (g->slots - 1)) * (uint64_t) g->slot_stride);
}

static inline unsigned char *geom_overflow(const struct channel_geom *g, struct shm_ring *r) {
        return (unsigned char *) r + g->ring_ctrl + (uint64_t) g->slots * g->slot_stride;
}

struct table_geom {
        char name[SHMRING_CHANNEL_NAME_MAX + 1];
        uint32_t entries;
        uint32_t value_size;
        uint32_t entry_stride;
        struct shm_table *hdr;
        unsigned char *first;           /* the first entry */
};

static inline struct shm_entry *table_entry(const struct table_geom *t, uint32_t i) {
        return (struct shm_entry *) (t->first + (uint64_t) i * t->entry_stride);
}

/* ----------------------------------------------------------- segment */

struct port_list {
        struct port_list *prev, *next;
};

struct shmring {
        void *base;
        uint64_t size;
        char name[SHMRING_NAME_MAX];
        struct shm_header *hdr;
        unsigned flags;

        /* Copied from the header at attach. */
        uint64_t generation;
        pid_t creator_pid;
        uid_t creator_uid;
        char run_id[SHMRING_RUN_ID_MAX + 1];

        struct shm_peer *peers;
        uint32_t max_peers;

        struct channel_geom *channels;
        uint32_t n_channels;
        struct table_geom *tables;
        uint32_t n_tables;

        /* Our own registration; self_owner is 0 for an observer. */
        uint32_t self_peer;
        uint64_t self_owner;
        pid_t pid;
        uint64_t pidns;

        struct port_list ports;         /* open tx and rx, closed with the segment */
};

/* Sizes of a spec, and the validation shared by size and create. */
int spec_layout(const struct shmring_spec *spec, uint64_t *ret_total, uint64_t *ret_header_size);
uint64_t channel_region_size(const struct shmring_channel_spec *c, uint32_t *ret_stride,
                             uint64_t *ret_ring_stride, uint64_t *ret_ring_ctrl);
uint64_t table_region_size(const struct shmring_table_spec *t, uint32_t *ret_stride);
int table_geom_load(struct table_geom *t, const struct shm_region *reg, unsigned char *region, uint64_t region_size);

/* ------------------------------------------------------------- peers */

int peer_register(struct shmring *s);
void peer_unregister(struct shmring *s);

/*
 * Whether the process owning a port is gone: 1 dead, 0 alive (or cannot be
 * told, e.g. another pid namespace), never an error.
 */
int owner_dead(const struct shmring *s, uint64_t owner);

int proc_start_time(pid_t pid, uint64_t *ret_start, char *ret_state);
int creator_gone(uint32_t pid, uint64_t start, uint64_t pidns);
int self_pidns(uint64_t *ret);

/* -------------------------------------------------------------- ports */

enum port_kind { PORT_TX, PORT_RX };

struct port {
        struct port_list link;
        enum port_kind kind;
        struct shmring *seg;
        const struct channel_geom *g;
        int index;
        unsigned flags;
        int64_t spin_ns;                /* budget of the spin phase; INT64_MAX: no end */
        int64_t yield_ns;               /* budget of the yield phase */
        uint32_t wait;                  /* enum shmring_wait_policy as asked (AUTO resolved per wait) */
        bool auto_spins;                /* AUTO's last decision: cores are free */
        uint64_t auto_decided;          /* when it was made (now_ns()), 0: never */
        int64_t liveness_ns;
        uint64_t owner;
        uint64_t last_liveness_check;
        uint32_t seen_dead_epoch;
};

void port_close_any(struct port *p);

/* -------------------------------------------------------------- waits */

uint64_t now_ns(void);
int futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns);
void futex_wake(_Atomic uint32_t *word, int n);

/* Library defaults, read once from the environment (SHMRING_SPIN_NS, SHMRING_YIELD_US,
 * SHMRING_WAIT, SHMRING_LIVENESS_MS). */
int64_t default_spin_ns(void);
int64_t default_yield_ns(void);
uint32_t default_wait_policy(void);
int64_t default_liveness_ns(void);

/* Counts the segment's live peers (the caller included), for the automatic policy. */
unsigned peer_count_live(const struct shmring *s);

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield" ::: "memory");
#else
        __asm__ __volatile__("" ::: "memory");
#endif
}

/*
 * The one wait loop.  ready() returns > 0 when the caller can go on, < 0 to
 * fail with that error, 0 to keep waiting; check_peers() (called every
 * liveness interval, and at once after shmring_mark_dead()) returns the same
 * way, < 0 when a peer the caller depends on died.  Waits actively as the
 * port's policy says (spin, then yield; see enum shmring_wait_policy), then
 * sleeps on wake->seq, counted in wake->sleepers so a waker knows to
 * FUTEX_WAKE.  ready() and check_peers() run under every policy.
 */
struct wait_ops {
        int (*ready)(void *ctx);
        int (*check_peers)(void *ctx);
        /* The stores that end this wait are made by wake_sleepers_light() (no fence
         * of the waker's own): a sleeper issues the heavy barrier after announcing
         * itself, before its last look. */
        bool light_wakers;
};
int wait_no_peers(void *ctx);           /* check_peers for waits that depend on no peer */
int port_wait(struct port *p, struct shm_wake *wake, const struct wait_ops *ops, void *ctx,
              int64_t timeout_ns);

/*
 * Asymmetric barriers (membarrier(2), MEMBARRIER_CMD_GLOBAL_EXPEDITED), for
 * a store made at every message and a sleeper that waits for it rarely: a
 * process registered with light_barrier_register() may wake with
 * wake_sleepers_light(), without a fence between its store and its look at
 * the sleeper count; a sleeper then runs heavy_barrier() between announcing
 * itself and looking, which makes every running thread of every registered
 * process execute a full barrier: either the waker's store is visible to the
 * sleeper's look, or the sleeper's announcement is to the waker's.
 * light_barrier_register() returns whether this process is registered
 * (again after a fork); heavy_barrier() 0, or -errno where membarrier(2) is
 * missing or forbidden (seccomp): the sleeper then cannot rely on it and
 * looks again every HEAVY_BARRIER_FALLBACK_NS.
 */
bool light_barrier_register(void);
int heavy_barrier(void);
#define HEAVY_BARRIER_FALLBACK_NS INT64_C(1000000)

/* The waker's side, without a fence: see above. */
static inline void wake_sleepers_light(struct shm_wake *w, int n) {
        atomic_signal_fence(memory_order_seq_cst);      /* the compiler keeps the order, the CPU need not */
        if (atomic_load_explicit(&w->sleepers, memory_order_relaxed) != 0) {
                atomic_fetch_add_explicit(&w->seq, 1, memory_order_release);
                futex_wake(&w->seq, n);
        }
}

/* The waker's side: after a store the sleeper's ready() looks at. */
static inline void wake_sleepers(struct shm_wake *w, int n) {
        atomic_thread_fence(memory_order_seq_cst);
        wake_sleepers_light(w, n);
}

/* Wakes every sleeper in the segment (after a peer was declared dead). */
void segment_wake_all(struct shmring *s);

#endif
