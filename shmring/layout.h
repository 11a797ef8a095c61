/* SPDX-License-Identifier: MIT */
#ifndef SHMRING_LAYOUT_H
#define SHMRING_LAYOUT_H

/*
 * The bytes of a segment, as every attached process sees them.  This is an
 * ABI: a change that an older reader would misread bumps SHMRING_ABI_VERSION.
 *
 *   0            header: identity, then the region directory
 *   header_size  regions, each at the offset its directory entry gives,
 *                aligned to SHM_REGION_ALIGN:
 *                  PEERS      one record per attached process
 *                  BROADCAST  a channel: one ring, 1 writer, N readers
 *                  QUEUE      a channel: N rings, one per writer, 1 reader
 *                  TABLE      a key-value table (NCCL ids, tensor handles)
 *                Region types a reader does not know are skipped, so later
 *                layouts can add regions (a tensor table, a key-value area)
 *                without breaking older readers.
 *
 * A ring is
 *   ring control    the writer's line, the readers' wake line, the writer's
 *                   wake line, then one line per reader: each written by one
 *                   side only, SHM_PAD bytes apart (two cache lines, so the
 *                   adjacent-line prefetcher does not pair them)
 *   slots           slots × slot_stride bytes; a slot is a 16-byte header and
 *                   the inline payload
 *   overflow        overflow_size bytes, a byte ring for messages larger than
 *                   a slot
 *
 * Publication: the writer fills a slot (and its overflow bytes), then stores
 * the slot's seq with release.  A reader that acquires seq == message number
 * + 1 sees the whole message; a writer that dies before that store exposes
 * nothing.  A reader's tail (the next message it wants) frees a slot for the
 * writer once every live reader is past it.
 *
 * Waking: a side about to sleep counts itself in a wake line's sleepers,
 * then looks once more; the other side, after its store, looks at sleepers
 * and bumps the futex word.  The writer's look is fenced; a reader's (at
 * every freed slot) is not where its process registered for membarrier(2),
 * and a writer going to sleep makes the barrier for it (internal.h).  A
 * library of version 1 fences both and makes no barrier: mixing the two
 * could lose a wake-up, hence version 2.
 *
 * Nothing read from the segment is trusted: attach copies the geometry into
 * process memory after checking it against the mapped size, and every value
 * read later (lengths, offsets, owners) is checked before use.
 */

#include <stdatomic.h>
#include <stdint.h>

#define SHM_MAGIC UINT64_C(0x31474e49524d4853)      /* "SHMRING1" */
#define SHM_LINE 64
#define SHM_PAD 128
#define SHM_REGION_ALIGN 4096
#define SHM_HEADER_FIXED 512                         /* header fields before the directory */
#define SHM_MAX_REGIONS 1024
#define SHM_MAX_PEERS 4096
#define SHM_MAX_PORTS 1024
#define SHM_MAX_SLOTS (UINT32_C(1) << 24)
#define SHM_MAX_SLOT_STRIDE (UINT32_C(1) << 20)
#define SHM_SLOT_HEADER 16
#define SHM_NAME_PREFIX "shmring-"

enum shm_region_type {
        SHM_REGION_PEERS = 1,
        SHM_REGION_BROADCAST = 2,
        SHM_REGION_QUEUE = 3,
        SHM_REGION_TABLE = 4,
        /* 5..: reserved for later regions. */
};

struct shm_region {                                  /* 64 bytes */
        uint32_t type;
        uint32_t flags;
        uint64_t offset;                             /* from the segment's start */
        uint64_t size;
        char name[32];                               /* NUL-terminated */
        uint64_t reserved;
};

enum shm_state {
        SHM_STATE_OPEN = 1,
};

struct shm_header {
        _Atomic uint64_t magic;                      /* stored last, with release, by create */
        uint32_t abi_version;
        uint32_t header_size;                        /* fixed part + directory, page aligned */
        uint64_t total_size;
        uint32_t creator_pid;
        uint32_t creator_uid;
        uint64_t creator_start;                      /* /proc/PID/stat starttime */
        uint64_t creator_pidns;                      /* inode of its pid namespace */
        uint64_t generation;
        uint64_t nonce;                              /* random per segment */
        uint32_t n_regions;
        _Atomic uint32_t dead_epoch;                 /* bumped by shmring_mark_dead() */
        char run_id[72];                             /* NUL-terminated, <= 64 chars */
        uint8_t reserved[SHM_HEADER_FIXED - 144];
        struct shm_region regions[];                 /* n_regions entries */
};
_Static_assert(sizeof(struct shm_region) == 64, "directory entry size");
_Static_assert(sizeof(struct shm_header) == SHM_HEADER_FIXED, "header size");

/* --------------------------------------------------------------- peers */

enum shm_peer_state {
        SHM_PEER_FREE = 0,
        SHM_PEER_CLAIMED = 1,                        /* being filled in */
        SHM_PEER_LIVE = 2,
        SHM_PEER_DEAD = 3,                           /* declared dead (shmring_mark_dead) */
};

struct shm_peers {                                   /* at the PEERS region's start */
        uint32_t max_peers;
        uint32_t reserved[15];
};

struct shm_peer {                                    /* 64 bytes; written at attach and detach */
        _Atomic uint32_t state;
        _Atomic uint32_t incarnation;                /* bumped at every claim of the record */
        uint32_t pid;
        uint32_t uid;
        uint64_t start_time;
        uint64_t pidns;
        uint8_t reserved[32];
};
_Static_assert(sizeof(struct shm_peer) == 64, "peer record size");

/*
 * A port (a ring's writer, a broadcast reader, a queue's reader) is owned by
 * one peer: owner = incarnation << 32 | (peer index + 1); 0 is free.  A
 * record reclaimed by another process has another incarnation, so a stale
 * owner is told apart from a live one without trusting pids alone.
 */
#define SHM_OWNER(peer, inc) (((uint64_t) (inc) << 32) | ((uint64_t) (peer) + 1))
#define SHM_OWNER_PEER(o) ((uint32_t) ((o) & 0xffffffffu) - 1)
#define SHM_OWNER_INC(o) ((uint32_t) ((o) >> 32))

/* ------------------------------------------------------------ channels */

struct shm_wake {                                    /* a futex word and its sleeper count */
        _Alignas(SHM_PAD) _Atomic uint32_t sleepers;
        _Atomic uint32_t seq;                        /* futex word */
        uint8_t pad[SHM_PAD - 8];
};

struct shm_channel {                                 /* at a channel region's start */
        uint32_t kind;                               /* enum shmring_kind */
        uint32_t n_rings;                            /* broadcast: 1; queue: max writers */
        uint32_t n_readers;                          /* broadcast: max readers; queue: 1 */
        uint32_t slots;
        uint32_t slot_stride;                        /* bytes per slot, header included */
        uint32_t reserved0;
        uint64_t overflow_size;                      /* per ring */
        uint64_t ring_stride;                        /* bytes per ring */
        uint64_t rings_offset;                       /* from the region's start */
        _Atomic uint64_t q_owner;                    /* a queue's reader */
        uint8_t reserved1[SHM_PAD - 48];

        /* A queue's one reader sleeps here, whichever writer publishes. */
        struct shm_wake q_wake;
};

enum shm_writer_state {
        SHM_WRITER_NEVER = 0,                        /* no writer yet */
        SHM_WRITER_LIVE = 1,
        SHM_WRITER_CLOSED = 2,                       /* closed cleanly: -EPIPE once drained */
};

struct shm_ring_writer {                             /* written by the writer only */
        /* Stored at every message; read only by a joining reader or a new writer. */
        _Alignas(SHM_PAD) _Atomic uint64_t head;     /* next message number */
        _Atomic uint64_t overflow_head;              /* for a writer that takes over */
        uint8_t pad0[SHM_PAD - 16];
        /* Stored at open and close; read by waiting readers: kept off the hot line. */
        _Alignas(SHM_PAD) _Atomic uint64_t owner;
        _Atomic uint32_t state;                      /* enum shm_writer_state */
        uint8_t pad1[SHM_PAD - 12];
};

struct shm_ring_reader {                             /* written by that reader only */
        _Alignas(SHM_PAD) _Atomic uint64_t tail;     /* next message it will read */
        _Atomic uint64_t owner;
        _Atomic uint32_t live;                       /* counted by the writer when set */
        uint8_t pad[SHM_PAD - 20];
};

struct shm_ring {
        struct shm_ring_writer w;
        struct shm_wake rwake;                       /* broadcast readers sleep here */
        struct shm_wake wwake;                       /* the writer sleeps here */
        struct shm_ring_reader readers[];            /* n_readers */
};

enum shm_slot_flags {
        SHM_SLOT_OVERFLOW = 1u << 0,                 /* payload: struct shm_overflow_ref */
};

struct shm_slot {
        _Atomic uint64_t seq;                        /* message number + 1, stored last */
        uint32_t len;
        uint32_t flags;
        unsigned char data[];
};

struct shm_overflow_ref {
        uint64_t pos;                                /* byte position: offset = pos % overflow_size */
        uint64_t end;                                /* overflow head after this message */
};

/* -------------------------------------------------------------- tables */

/*
 * A table is a header and `entries` fixed-size entries.  Writers (put, del)
 * serialise on `lock` (an owner word; a dead holder's lock is taken over)
 * and update an entry as a seqlock: seq odd while the entry changes.
 * Readers take no lock: they copy an entry and keep the copy only if seq
 * was even and unchanged across it.
 */
struct shm_table {
        uint32_t entries;
        uint32_t value_size;
        uint32_t entry_stride;
        uint32_t reserved0;
        _Atomic uint64_t lock;
        uint64_t next_generation;                    /* under lock */
        uint8_t reserved1[SHM_PAD - 32];
        struct shm_wake change;                      /* bumped at every put and del */
};

#define SHM_ENTRY_HEADER 96
#define SHM_MAX_TABLE_ENTRIES 65536
#define SHM_MAX_VALUE 65536

struct shm_entry {
        _Atomic uint32_t seq;
        _Atomic uint32_t used;
        uint32_t len;
        uint32_t reserved;
        uint64_t owner;
        uint64_t generation;
        char key[64];                                /* NUL-terminated */
        unsigned char value[];
};
_Static_assert(sizeof(struct shm_entry) == SHM_ENTRY_HEADER, "entry header size");

#endif
