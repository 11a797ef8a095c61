/* SPDX-License-Identifier: MIT */
#ifndef SHMRING_H
#define SHMRING_H

/*
 * libshmring: a POSIX shared-memory transport between the processes of one
 * job.  A segment is one shm object holding any number of channels:
 *
 *   broadcast  one writer, up to max_ports readers; every reader sees every
 *              message, in order (a scheduler feeding tensor-parallel workers)
 *   queue      up to max_ports writers, one reader; each writer's messages
 *              arrive in its order (results going back to the scheduler)
 *
 * Messages are byte strings of any size up to the channel's limit: a message
 * that fits a slot is stored inline, a larger one in the channel's overflow
 * area inside the same segment.  Waits spin (while cores are free) or yield
 * for a bounded budget and then sleep on a futex; a sleeping peer is woken
 * only when someone sleeps.  Every
 * attached process is registered, so a wait on a peer that died ends with
 * -EOWNERDEAD instead of lasting forever.
 *
 * Conventions: functions return 0 (or a non-negative count) on success and a
 * negative errno on failure; ret_ out-parameters are written only on success;
 * destructors accept NULL and return NULL.  A port (tx or rx) is used by one
 * thread at a time; distinct ports may be used by distinct threads.  Handles
 * do not survive fork(): a child calls shmring_attach() itself.
 *
 * Timeouts are in nanoseconds, relative: SHMRING_INFINITE waits forever,
 * 0 never waits (-EAGAIN when nothing can be done), > 0 waits that long
 * (-ETIMEDOUT).  A signal ends a wait with -EINTR.
 *
 * See shmring(3).
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The segment's format and protocol; a segment of another version is refused
 * (-EPROTO).  2: readers free slots without a fence, a writer going to sleep
 * makes the barrier (membarrier(2)). */
#define SHMRING_ABI_VERSION 2

#define SHMRING_INFINITE INT64_C(-1)

/* Longest run id, and longest channel name (without the NUL). */
#define SHMRING_RUN_ID_MAX 64
#define SHMRING_CHANNEL_NAME_MAX 31
/* Longest segment name shmring_name() can return, with its NUL. */
#define SHMRING_NAME_MAX 96

struct shmring;
struct shmring_tx;
struct shmring_rx;

enum shmring_kind {
        SHMRING_BROADCAST = 1,
        SHMRING_QUEUE = 2,
};

struct shmring_channel_spec {
        const char *name;          /* 1..31 of [A-Za-z0-9._-] */
        enum shmring_kind kind;
        uint32_t slots;            /* a power of two, 2 .. 2^24 */
        uint32_t slot_size;        /* payload bytes a slot holds inline (rounded up) */
        uint64_t overflow_size;    /* bytes for larger messages (per writer); 0: none */
        uint32_t max_ports;        /* broadcast: readers; queue: writers (1 .. 1024) */
};

/*
 * A key-value table: small records (an NCCL unique id, a tensor's IPC
 * handle) that one process publishes under a name and others look up,
 * waiting for it if it is not there yet.
 */
struct shmring_table_spec {
        const char *name;          /* 1..31 of [A-Za-z0-9._-]; shares the channels' namespace */
        uint32_t entries;          /* 1 .. 65536 */
        uint32_t value_size;       /* largest value, 1 .. 65536 bytes */
};

struct shmring_spec {
        const char *run_id;        /* 1..64 of [A-Za-z0-9._-]; part of the name */
        uint64_t generation;       /* the caller's, e.g. a restart count */
        uint32_t max_peers;        /* processes that may attach at once; 0: 64 */
        uint32_t n_channels;
        const struct shmring_channel_spec *channels;
        uint32_t n_tables;
        const struct shmring_table_spec *tables;
};

/* Bytes of /dev/shm that shmring_create() would reserve for spec. */
int shmring_spec_size(const struct shmring_spec *spec, uint64_t *ret_size);

/*
 * Creates a new segment (mode 0600, an unpredictable name carrying the run
 * id), reserves all of its memory up front (-ENOSPC when /dev/shm is too
 * small, never a SIGBUS later) and attaches the caller to it.
 */
int shmring_create(const struct shmring_spec *spec, struct shmring **ret);

enum {
        /* Map and validate only: no peer registration, no ports. */
        SHMRING_ATTACH_OBSERVER = 1u << 0,
};

/*
 * Attaches to an existing segment.  Refuses a segment that is not a regular
 * shm object (-EINVAL), belongs to another user or is open to others (-EPERM),
 * has another ABI version (-EPROTO), does not fit its own description
 * (-EBADMSG) or is still being created (-EAGAIN).
 */
int shmring_attach(const char *name, unsigned flags, struct shmring **ret);

/* Closes the caller's ports on it, deregisters and unmaps.  Never unlinks. */
struct shmring *shmring_close(struct shmring *s);

/* Removes the segment's name; attached processes keep their mapping. */
int shmring_unlink(struct shmring *s);
int shmring_unlink_name(const char *name);

/*
 * Removes this user's segments whose creator is dead (for one run id, or all
 * when run_id is NULL).  Returns how many were removed.
 */
int shmring_cleanup_stale(const char *run_id);

/*
 * Declares every peer with this pid dead and wakes every waiter in the
 * segment, so that waits on it end now rather than at the next liveness
 * check.  For a supervisor that learned of the death from the kernel.
 * Returns how many peers were marked.
 */
int shmring_mark_dead(struct shmring *s, pid_t pid);

const char *shmring_name(const struct shmring *s);

struct shmring_info {
        uint64_t size;
        uint64_t generation;
        pid_t creator_pid;
        uid_t creator_uid;
        uint32_t max_peers;
        uint32_t n_channels;
        char run_id[SHMRING_RUN_ID_MAX + 1];
        uint32_t n_tables;
};
int shmring_get_info(const struct shmring *s, struct shmring_info *ret);

struct shmring_channel_info {
        char name[SHMRING_CHANNEL_NAME_MAX + 1];
        enum shmring_kind kind;
        uint32_t slots;
        uint32_t slot_size;        /* inline payload bytes */
        uint64_t overflow_size;
        uint32_t max_ports;
        uint64_t max_message;      /* largest message a send accepts */
};
/* Channels are numbered 0 .. n_channels - 1; -ENOENT past the end. */
int shmring_channel_info(const struct shmring *s, uint32_t index, struct shmring_channel_info *ret);

/*
 * How a port waits before it sleeps on the futex.  Every policy ends in a
 * futex sleep once its budget is spent, so an idle port burns no CPU.
 *
 *   AUTO   spin while the job's processes have a core each and the machine
 *          has a core free, then sched_yield(), then sleep; with more
 *          processes than cores (or a loaded machine) skip the spin:
 *          yield, then sleep.  Re-decided every liveness interval from the
 *          CPUs the process may use, the runnable tasks and the segment's
 *          attached peers.
 *   SPIN   busy-wait for spin_ns, then sleep (no yield phase)
 *   YIELD  call sched_yield() between looks until yield_us of CPU time are
 *          used (a yield on a busy machine lends the CPU: it costs nothing),
 *          then sleep
 *   BLOCK  sleep at once
 *
 * 0 (AUTO) takes the environment's SHMRING_WAIT (auto, spin, yield, block).
 */
enum shmring_wait_policy {
        SHMRING_WAIT_AUTO = 0,
        SHMRING_WAIT_SPIN = 1,
        SHMRING_WAIT_YIELD = 2,
        SHMRING_WAIT_BLOCK = 3,
};

/* Per-port options; NULL means all defaults.  Zero every field you don't set. */
struct shmring_port_opts {
        int32_t index;             /* broadcast rx / queue tx: the port slot to take; -1: any free */
        uint32_t flags;            /* SHMRING_PORT_* */
        int64_t spin_ns;           /* busy-wait before yielding or sleeping; 0: library default;
                                      SHMRING_SPIN_NEVER (no active wait: sleep at once, as BLOCK),
                                      SHMRING_SPIN_FOREVER (never sleep) */
        uint32_t liveness_ms;      /* how often a waiter checks its peers; 0: default */
        uint32_t wait;             /* enum shmring_wait_policy; 0: SHMRING_WAIT or AUTO */
        uint32_t yield_us;         /* CPU time to yield before sleeping; 0: default (SHMRING_YIELD_US) */
        uint32_t reserved[3];      /* must be zero */
};
#define SHMRING_SPIN_NEVER INT64_C(-1)
#define SHMRING_SPIN_FOREVER INT64_MAX

enum {
        /* A broadcast writer drops readers that died instead of failing. */
        SHMRING_PORT_DROP_DEAD = 1u << 0,
};

/*
 * Opens the sending end of a channel: the broadcast writer (-EBUSY when a
 * live one exists; a dead one's place is taken over), or one of a queue's
 * writers.
 */
int shmring_tx_open(struct shmring *s, const char *channel, const struct shmring_port_opts *opts,
                    struct shmring_tx **ret);
/* Opens the receiving end: one broadcast reader, or the queue's reader. */
int shmring_rx_open(struct shmring *s, const char *channel, const struct shmring_port_opts *opts,
                    struct shmring_rx **ret);
/* Closing a tx tells readers no more messages come (-EPIPE once drained). */
struct shmring_tx *shmring_tx_close(struct shmring_tx *tx);
struct shmring_rx *shmring_rx_close(struct shmring_rx *rx);

/* The port slot taken: the queue writer's number, or the broadcast reader's. */
int shmring_tx_index(const struct shmring_tx *tx);
int shmring_rx_index(const struct shmring_rx *rx);

/*
 * Sends one message.  Waits (up to timeout_ns) only when the slowest live
 * reader is a whole ring behind or the overflow area is full.  -EMSGSIZE when
 * len exceeds the channel's largest message; -EOWNERDEAD when a reader it
 * waits on died (see SHMRING_PORT_DROP_DEAD).
 */
int shmring_send(struct shmring_tx *tx, const void *data, size_t len, int64_t timeout_ns);
int shmring_sendv(struct shmring_tx *tx, const struct iovec *iov, int iovcnt, int64_t timeout_ns);

/* Zero-copy send: reserve len bytes in the ring, fill them, commit. */
int shmring_send_reserve(struct shmring_tx *tx, size_t len, void **ret_data, int64_t timeout_ns);
int shmring_send_commit(struct shmring_tx *tx);
/* Drops the reservation instead: nothing is sent. */
int shmring_send_abort(struct shmring_tx *tx);

struct shmring_msg {
        const void *data;
        size_t len;
        uint64_t seq;              /* the message's number in its writer's stream */
        uint32_t sender;           /* queue: the writer's index; broadcast: 0 */
};

/*
 * Receives the next message into buf and returns its length.  -EMSGSIZE
 * leaves a message larger than size in place.  -EPIPE: the writer(s) closed
 * and everything was read; -EOWNERDEAD: a writer died (messages it published
 * before dying are delivered first; half-written ones never are).
 */
ssize_t shmring_recv(struct shmring_rx *rx, void *buf, size_t size, int64_t timeout_ns);

/*
 * Zero-copy receive: ret_msg points into the segment until shmring_recv_done();
 * the writer cannot reuse that space before.  One message at a time.
 */
int shmring_recv_zc(struct shmring_rx *rx, struct shmring_msg *ret_msg, int64_t timeout_ns);
int shmring_recv_done(struct shmring_rx *rx);

/* Broadcast writer: forget readers that died.  Returns how many. */
int shmring_tx_drop_dead(struct shmring_tx *tx);

/*
 * Broadcast writer: waits until at least n readers are attached (a reader
 * sees only messages sent after it attached).  Returns how many are.
 */
int shmring_tx_wait_readers(struct shmring_tx *tx, uint32_t n, int64_t timeout_ns);

/* ------------------------------------------------------------ tables */

#define SHMRING_KEY_MAX 63

struct shmring_kv_info {
        uint64_t generation;       /* each put's is larger than any earlier put's in the table */
        pid_t owner_pid;           /* the process that put it */
        size_t len;
};

/*
 * Publishes value under key (1..63 printable characters, no spaces),
 * replacing any earlier value, and wakes whoever waits for it.  The caller
 * becomes the key's owner: when it dies, shmring_kv_get() says so.
 * Returns the put's generation (> 0).  -ENOSPC: the table is full;
 * -EMSGSIZE: the value exceeds the table's value_size.
 */
int64_t shmring_kv_put(struct shmring *s, const char *table, const char *key, const void *value, size_t len);

/*
 * Copies key's value into buf and returns its length, waiting up to
 * timeout_ns for the key to appear (-ETIMEDOUT; -EAGAIN with 0).
 * With min_generation > 0, waits for a put of at least that generation,
 * so a reader can wait for a value newer than one it has.  -EOWNERDEAD:
 * the key's owner died (the value may name resources that died with it);
 * -EMSGSIZE: buf is smaller than the value (a buffer of the table's
 * value_size always suffices).  buf's content is meaningful on success only.
 */
ssize_t shmring_kv_get(struct shmring *s, const char *table, const char *key, uint64_t min_generation,
                       void *buf, size_t size, struct shmring_kv_info *ret_info, int64_t timeout_ns);

struct shmring_table_info {
        char name[SHMRING_CHANNEL_NAME_MAX + 1];
        uint32_t entries;
        uint32_t value_size;       /* a buffer this large holds any value */
};
/* Tables are numbered 0 .. n_tables - 1; -ENOENT past the end. */
int shmring_table_info(const struct shmring *s, uint32_t index, struct shmring_table_info *ret);

/* Removes key (its owner or anyone: a supervisor cleans up after the dead). */
int shmring_kv_del(struct shmring *s, const char *table, const char *key);

#ifdef __cplusplus
}
#endif

#endif
