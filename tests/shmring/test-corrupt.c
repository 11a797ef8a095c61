/* SPDX-License-Identifier: MIT */
/*
 * Truncated and corrupted segments, and things that are not segments.
 *
 * Attach must refuse, with the documented errno, an object that was
 * truncated or grown, has a wrong magic number or ABI version, a header,
 * directory, peers, channel or table header that does not fit, is open to
 * group or others, or is a symbolic link, a directory, a FIFO or a socket.
 * Receiving from a slot whose header was scribbled on (length, flags,
 * overflow reference, sequence number) must fail (-EBADMSG and friends) or
 * deliver in-bounds bytes, never crash or hang; a writer whose readers'
 * lines were scribbled on must fail the same way.
 *
 * The bytes are found through layout.h, the segment's documented layout;
 * the test checks that layout against what it sent before it relies on it.
 */
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "layout.h"
#include "payload.h"
#include "tap.h"

#define SLOTS 8
#define SLOT_SIZE 64
#define OVERFLOW 4096
#define READERS 2

static const struct shmring_channel_spec channels[] = {
        { .name = "bc", .kind = SHMRING_BROADCAST, .slots = SLOTS, .slot_size = SLOT_SIZE, .overflow_size = OVERFLOW,
          .max_ports = READERS },
        { .name = "q", .kind = SHMRING_QUEUE, .slots = SLOTS, .slot_size = SLOT_SIZE, .overflow_size = OVERFLOW,
          .max_ports = 2 },
};
static const struct shmring_table_spec tables[] = {
        { .name = "tab", .entries = 4, .value_size = 100 },
};

/* A segment mapped by the test itself, to be scribbled on. */
struct seg {
        char name[SHMRING_NAME_MAX];
        int fd;
        unsigned char *base;
        uint64_t size;
        struct shm_header *h;
        struct shm_region *reg[4];      /* peers, bc, q, tab: as create lays them out */
        struct shm_peers *peers;
        struct shm_channel *bc, *q;
        struct shm_table *tab;
};

static struct shmring *make_segment(void) {
        struct shmring_spec spec = { .run_id = tap_run_id(), .n_channels = 2, .channels = channels,
                                     .n_tables = 1, .tables = tables };
        struct shmring *s = NULL;

        CHECK_OK(shmring_create(&spec, &s));
        return s;
}

static void seg_map(struct seg *g, const char *name) {
        struct stat st;

        memset(g, 0, sizeof(*g));
        snprintf(g->name, sizeof(g->name), "%s", name);
        g->fd = open(tap_shm_path(name), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        CHECK_SYS(g->fd);
        CHECK_SYS(fstat(g->fd, &st));
        g->size = (uint64_t) st.st_size;
        g->base = mmap(NULL, g->size, PROT_READ | PROT_WRITE, MAP_SHARED, g->fd, 0);
        CHECK(g->base != MAP_FAILED);
        g->h = (struct shm_header *) g->base;
        CHECK_EQ(g->h->magic, SHM_MAGIC);
        CHECK_EQ(g->h->n_regions, 4);
        for (unsigned i = 0; i < 4; i++) {
                g->reg[i] = &g->h->regions[i];
                CHECK(g->reg[i]->offset + g->reg[i]->size <= g->size);
        }
        CHECK_EQ(g->reg[0]->type, SHM_REGION_PEERS);
        CHECK_EQ(g->reg[1]->type, SHM_REGION_BROADCAST);
        CHECK_EQ(g->reg[2]->type, SHM_REGION_QUEUE);
        CHECK_EQ(g->reg[3]->type, SHM_REGION_TABLE);
        g->peers = (struct shm_peers *) (g->base + g->reg[0]->offset);
        g->bc = (struct shm_channel *) (g->base + g->reg[1]->offset);
        g->q = (struct shm_channel *) (g->base + g->reg[2]->offset);
        g->tab = (struct shm_table *) (g->base + g->reg[3]->offset);
}

static void seg_unmap(struct seg *g) {
        if (g->base)
                munmap(g->base, g->size);
        if (g->fd >= 0)
                close(g->fd);
        g->base = NULL;
        g->fd = -1;
}

/* A ring of a channel, and a slot of it, per layout.h. */
static struct shm_ring *seg_ring(struct shm_channel *c, uint32_t i) {
        return (struct shm_ring *) ((unsigned char *) c + c->rings_offset + (uint64_t) i * c->ring_stride);
}

static struct shm_slot *seg_slot(struct shm_channel *c, uint32_t ring, uint64_t seq) {
        unsigned char *r = (unsigned char *) seg_ring(c, ring);
        uint64_t ctrl = sizeof(struct shm_ring) + (uint64_t) c->n_readers * sizeof(struct shm_ring_reader);

        return (struct shm_slot *) (r + ctrl + (seq % c->slots) * c->slot_stride);
}

/* ------------------------------------------------------- attach refuses */

enum corruption {
        TRUNC_PAGE, TRUNC_HALF, TRUNC_HEADER, TRUNC_TINY, TRUNC_EMPTY, GROWN,
        MAGIC_FLIP, MAGIC_ZERO, ABI_NEXT, ABI_ZERO,
        TOTAL_SIZE, HEADER_SIZE_ZERO, HEADER_SIZE_ODD, HEADER_SIZE_HUGE, N_REGIONS_ZERO, N_REGIONS_HUGE,
        N_REGIONS_PAST_HEADER, RUN_ID_UNTERMINATED, RUN_ID_BAD,
        REG_OFFSET_PAST_END, REG_OFFSET_UNALIGNED, REG_OFFSET_IN_HEADER, REG_SIZE_ZERO, REG_SIZE_HUGE,
        REG_OVERLAP, REG_NAME_UNTERMINATED, REG_NAME_BAD, REG_NAME_DUPLICATE, REG_TWO_PEERS, REG_NO_PEERS,
        REG_KIND_SWAPPED,
        PEERS_ZERO, PEERS_HUGE, PEERS_PAST_REGION,
        CH_KIND, CH_N_RINGS_ZERO, CH_N_RINGS_HUGE, CH_BC_TWO_RINGS, CH_Q_TWO_READERS, CH_N_READERS_HUGE,
        CH_SLOTS_ODD, CH_SLOTS_ZERO, CH_SLOTS_HUGE, CH_STRIDE_ZERO, CH_STRIDE_UNALIGNED, CH_STRIDE_HUGE,
        CH_OVERFLOW_UNALIGNED, CH_OVERFLOW_HUGE, CH_RING_STRIDE_SMALL, CH_RING_STRIDE_HUGE, CH_RINGS_OFFSET_PAST,
        CH_RINGS_OFFSET_SMALL, CH_SLOT_TOO_SMALL_FOR_REF,
        TAB_ENTRIES_ZERO, TAB_ENTRIES_HUGE, TAB_VALUE_HUGE, TAB_STRIDE,
        N_CORRUPTIONS,
};

static const struct {
        const char *what;
        int err;
} corruptions[N_CORRUPTIONS] = {
        [TRUNC_PAGE] = { "truncated by a page", -EBADMSG },
        [TRUNC_HALF] = { "truncated to half", -EBADMSG },
        [TRUNC_HEADER] = { "truncated to its header", -EBADMSG },
        [TRUNC_TINY] = { "truncated to 100 bytes", -EBADMSG },
        [TRUNC_EMPTY] = { "truncated to nothing (as if being created)", -EAGAIN },
        [GROWN] = { "grown by a page", -EBADMSG },
        [MAGIC_FLIP] = { "magic with a bit flipped", -EBADMSG },
        [MAGIC_ZERO] = { "magic not stored yet", -EAGAIN },
        [ABI_NEXT] = { "ABI version + 1", -EPROTO },
        [ABI_ZERO] = { "ABI version 0", -EPROTO },
        [TOTAL_SIZE] = { "total_size off by a page", -EBADMSG },
        [HEADER_SIZE_ZERO] = { "header_size 0", -EBADMSG },
        [HEADER_SIZE_ODD] = { "header_size not page aligned", -EBADMSG },
        [HEADER_SIZE_HUGE] = { "header_size past the end", -EBADMSG },
        [N_REGIONS_ZERO] = { "n_regions 0", -EBADMSG },
        [N_REGIONS_HUGE] = { "n_regions 2^32-1", -EBADMSG },
        [N_REGIONS_PAST_HEADER] = { "n_regions more than the header holds", -EBADMSG },
        [RUN_ID_UNTERMINATED] = { "run id without its NUL", -EBADMSG },
        [RUN_ID_BAD] = { "run id with a slash", -EBADMSG },
        [REG_OFFSET_PAST_END] = { "region offset past the end", -EBADMSG },
        [REG_OFFSET_UNALIGNED] = { "region offset not aligned", -EBADMSG },
        [REG_OFFSET_IN_HEADER] = { "region offset inside the header", -EBADMSG },
        [REG_SIZE_ZERO] = { "region size 0", -EBADMSG },
        [REG_SIZE_HUGE] = { "region size 2^64-4096", -EBADMSG },
        [REG_OVERLAP] = { "regions overlapping", -EBADMSG },
        [REG_NAME_UNTERMINATED] = { "region name without its NUL", -EBADMSG },
        [REG_NAME_BAD] = { "region name with a slash", -EBADMSG },
        [REG_NAME_DUPLICATE] = { "two channels of one name", -EBADMSG },
        [REG_TWO_PEERS] = { "two peers regions", -EBADMSG },
        [REG_NO_PEERS] = { "no peers region", -EBADMSG },
        [REG_KIND_SWAPPED] = { "region type not the channel's kind", -EBADMSG },
        [PEERS_ZERO] = { "max_peers 0", -EBADMSG },
        [PEERS_HUGE] = { "max_peers 2^32-1", -EBADMSG },
        [PEERS_PAST_REGION] = { "max_peers past its region", -EBADMSG },
        [CH_KIND] = { "channel kind 7", -EBADMSG },
        [CH_N_RINGS_ZERO] = { "queue with 0 rings", -EBADMSG },
        [CH_N_RINGS_HUGE] = { "queue with 2^31 rings", -EBADMSG },
        [CH_BC_TWO_RINGS] = { "broadcast with 2 rings", -EBADMSG },
        [CH_Q_TWO_READERS] = { "queue with 2 readers", -EBADMSG },
        [CH_N_READERS_HUGE] = { "broadcast with 2^20 readers", -EBADMSG },
        [CH_SLOTS_ODD] = { "slots 3", -EBADMSG },
        [CH_SLOTS_ZERO] = { "slots 0", -EBADMSG },
        [CH_SLOTS_HUGE] = { "slots 2^31", -EBADMSG },
        [CH_STRIDE_ZERO] = { "slot stride 0", -EBADMSG },
        [CH_STRIDE_UNALIGNED] = { "slot stride 100", -EBADMSG },
        [CH_STRIDE_HUGE] = { "slot stride 2^31", -EBADMSG },
        [CH_OVERFLOW_UNALIGNED] = { "overflow size 4097", -EBADMSG },
        [CH_OVERFLOW_HUGE] = { "overflow size 2^62", -EBADMSG },
        [CH_RING_STRIDE_SMALL] = { "ring stride smaller than a ring", -EBADMSG },
        [CH_RING_STRIDE_HUGE] = { "ring stride 2^63", -EBADMSG },
        [CH_RINGS_OFFSET_PAST] = { "rings offset past the region", -EBADMSG },
        [CH_RINGS_OFFSET_SMALL] = { "rings offset inside the channel header", -EBADMSG },
        [CH_SLOT_TOO_SMALL_FOR_REF] = { "overflow slots too small for a reference", -EBADMSG },
        [TAB_ENTRIES_ZERO] = { "table of 0 entries", -EBADMSG },
        [TAB_ENTRIES_HUGE] = { "table of 2^31 entries", -EBADMSG },
        [TAB_VALUE_HUGE] = { "table values of 2^31 bytes", -EBADMSG },
        [TAB_STRIDE] = { "table entry stride wrong", -EBADMSG },
};

static void corrupt(struct seg *g, enum corruption c) {
        struct shm_header *h = g->h;
        struct shm_region *peers = g->reg[0], *bc = g->reg[1], *q = g->reg[2], *tab = g->reg[3];

        switch (c) {
        case TRUNC_PAGE:
                CHECK_SYS(ftruncate(g->fd, (off_t) g->size - 4096));
                break;
        case TRUNC_HALF:
                CHECK_SYS(ftruncate(g->fd, (off_t) g->size / 2));
                break;
        case TRUNC_HEADER:
                CHECK_SYS(ftruncate(g->fd, (off_t) h->header_size));
                break;
        case TRUNC_TINY:
                CHECK_SYS(ftruncate(g->fd, 100));
                break;
        case TRUNC_EMPTY:
                CHECK_SYS(ftruncate(g->fd, 0));
                break;
        case GROWN:
                CHECK_SYS(ftruncate(g->fd, (off_t) g->size + 4096));
                break;
        case MAGIC_FLIP:
                h->magic ^= UINT64_C(1) << 40;
                break;
        case MAGIC_ZERO:
                h->magic = 0;
                break;
        case ABI_NEXT:
                h->abi_version = SHMRING_ABI_VERSION + 1;
                break;
        case ABI_ZERO:
                h->abi_version = 0;
                break;
        case TOTAL_SIZE:
                h->total_size -= 4096;
                break;
        case HEADER_SIZE_ZERO:
                h->header_size = 0;
                break;
        case HEADER_SIZE_ODD:
                h->header_size += 8;
                break;
        case HEADER_SIZE_HUGE:
                h->header_size = UINT32_MAX & ~4095u;
                break;
        case N_REGIONS_ZERO:
                h->n_regions = 0;
                break;
        case N_REGIONS_HUGE:
                h->n_regions = UINT32_MAX;
                break;
        case N_REGIONS_PAST_HEADER:
                h->n_regions = (h->header_size - SHM_HEADER_FIXED) / sizeof(struct shm_region) + 1;
                break;
        case RUN_ID_UNTERMINATED:
                memset(h->run_id, 'x', sizeof(h->run_id));
                break;
        case RUN_ID_BAD:
                h->run_id[0] = '/';
                break;
        case REG_OFFSET_PAST_END:
                q->offset = g->size;
                break;
        case REG_OFFSET_UNALIGNED:
                q->offset += 64;
                break;
        case REG_OFFSET_IN_HEADER:
                bc->offset = 0;
                break;
        case REG_SIZE_ZERO:
                bc->size = 0;
                break;
        case REG_SIZE_HUGE:
                q->size = UINT64_MAX - 4095;
                break;
        case REG_OVERLAP:
                bc->size += 4096;
                break;
        case REG_NAME_UNTERMINATED:
                memset(q->name, 'q', sizeof(q->name));
                break;
        case REG_NAME_BAD:
                strcpy(q->name, "q/x");
                break;
        case REG_NAME_DUPLICATE:
                strcpy(tab->name, "bc");
                break;
        case REG_TWO_PEERS:
                tab->type = SHM_REGION_PEERS;
                break;
        case REG_NO_PEERS:
                peers->type = 99;
                break;
        case REG_KIND_SWAPPED:
                bc->type = SHM_REGION_QUEUE;
                break;
        case PEERS_ZERO:
                g->peers->max_peers = 0;
                break;
        case PEERS_HUGE:
                g->peers->max_peers = UINT32_MAX;
                break;
        case PEERS_PAST_REGION:
                g->peers->max_peers = (uint32_t) (peers->size / sizeof(struct shm_peer));
                break;
        case CH_KIND:
                g->q->kind = 7;
                break;
        case CH_N_RINGS_ZERO:
                g->q->n_rings = 0;
                break;
        case CH_N_RINGS_HUGE:
                g->q->n_rings = 1u << 31;
                break;
        case CH_BC_TWO_RINGS:
                g->bc->n_rings = 2;
                break;
        case CH_Q_TWO_READERS:
                g->q->n_readers = 2;
                break;
        case CH_N_READERS_HUGE:
                g->bc->n_readers = 1u << 20;
                break;
        case CH_SLOTS_ODD:
                g->bc->slots = 3;
                break;
        case CH_SLOTS_ZERO:
                g->q->slots = 0;
                break;
        case CH_SLOTS_HUGE:
                g->bc->slots = 1u << 31;
                break;
        case CH_STRIDE_ZERO:
                g->bc->slot_stride = 0;
                break;
        case CH_STRIDE_UNALIGNED:
                g->bc->slot_stride = 100;
                break;
        case CH_STRIDE_HUGE:
                g->q->slot_stride = 1u << 31;
                break;
        case CH_OVERFLOW_UNALIGNED:
                g->bc->overflow_size += 1;
                break;
        case CH_OVERFLOW_HUGE:
                g->q->overflow_size = UINT64_C(1) << 62;
                break;
        case CH_RING_STRIDE_SMALL:
                g->bc->ring_stride = SHM_PAD;
                break;
        case CH_RING_STRIDE_HUGE:
                g->q->ring_stride = UINT64_C(1) << 63;
                break;
        case CH_RINGS_OFFSET_PAST:
                g->q->rings_offset = q->size + SHM_PAD;
                break;
        case CH_RINGS_OFFSET_SMALL:
                g->bc->rings_offset = SHM_PAD;
                break;
        case CH_SLOT_TOO_SMALL_FOR_REF:
                g->bc->slot_stride = SHM_LINE / 2;
                break;
        case TAB_ENTRIES_ZERO:
                g->tab->entries = 0;
                break;
        case TAB_ENTRIES_HUGE:
                g->tab->entries = 1u << 31;
                break;
        case TAB_VALUE_HUGE:
                g->tab->value_size = 1u << 31;
                break;
        case TAB_STRIDE:
                g->tab->entry_stride += SHM_LINE;
                break;
        case N_CORRUPTIONS:
                break;
        }
}

static void test_attach_refuses(void) {
        for (int c = 0; c < N_CORRUPTIONS; c++) {
                struct shmring *s = make_segment(), *t;
                char name[SHMRING_NAME_MAX];
                struct seg g;
                int r;

                snprintf(name, sizeof(name), "%s", shmring_name(s));
                s = shmring_close(s);
                seg_map(&g, name);
                corrupt(&g, (enum corruption) c);
                seg_unmap(&g);

                for (unsigned flags = 0; flags <= SHMRING_ATTACH_OBSERVER; flags += SHMRING_ATTACH_OBSERVER) {
                        memset(&t, SENTINEL, sizeof(t));
                        r = shmring_attach(name, flags, &t);
                        if (r != corruptions[c].err)
                                tap_fail(__FILE__, __LINE__, "attach%s to a segment with %s: %s, expected %s",
                                         flags ? " (observer)" : "", corruptions[c].what,
                                         r < 0 ? tap_errno_name(r) : "success", tap_errno_name(corruptions[c].err));
                        CHECK(tap_all_bytes(&t, sizeof(t), SENTINEL));
                }
                CHECK_OK(shmring_unlink_name(name));
        }
        tap_note("attach refused %d kinds of corrupted segments", N_CORRUPTIONS);
}

/* A region type from a later layout is skipped, not refused. */
static void test_unknown_region(void) {
        struct shmring *s = make_segment(), *t = NULL;
        struct shmring_channel_info ci;
        struct shmring_tx *tx;
        char name[SHMRING_NAME_MAX];
        struct seg g;

        snprintf(name, sizeof(name), "%s", shmring_name(s));
        s = shmring_close(s);
        seg_map(&g, name);
        g.reg[1]->type = 77;
        seg_unmap(&g);

        CHECK_OK(shmring_attach(name, 0, &t));
        CHECK_OK(shmring_channel_info(t, 0, &ci));
        CHECK(strcmp(ci.name, "q") == 0);
        CHECK_ERR(shmring_channel_info(t, 1, &ci), -ENOENT);
        CHECK_ERR(shmring_tx_open(t, "bc", NULL, &tx), -ENOENT);
        t = shmring_close(t);
        CHECK_OK(shmring_unlink_name(name));
}

/* Modes open to others, and what is not a regular file. */
static void test_not_ours(void) {
        struct shmring *s = make_segment(), *t;
        char name[SHMRING_NAME_MAX];
        const char *path;
        static const mode_t modes[] = { 0640, 0604, 0660, 0606, 0620, 0602, 0610, 0601, 0666, 0777 };

        snprintf(name, sizeof(name), "%s", shmring_name(s));
        path = tap_shm_path(name);
        memset(&t, SENTINEL, sizeof(t));
        for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
                CHECK_SYS(chmod(path, modes[i]));
                if (shmring_attach(name, 0, &t) != -EPERM)
                        tap_fail(__FILE__, __LINE__, "attach to a segment of mode %04o: not EPERM", (unsigned) modes[i]);
                CHECK_ERR(shmring_attach(name, SHMRING_ATTACH_OBSERVER, &t), -EPERM);
        }
        CHECK(tap_all_bytes(&t, sizeof(t), SENTINEL));
        CHECK_SYS(chmod(path, 0600));
        t = NULL;
        CHECK_OK(shmring_attach(name, SHMRING_ATTACH_OBSERVER, &t));
        t = shmring_close(t);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);

        /* Other things at a segment's name: a link to a good segment, a directory, a FIFO, a socket. */
        s = make_segment();
        snprintf(name, sizeof(name), "%s", shmring_name(s));
        {
                char link_name[SHMRING_NAME_MAX + 8], link_path[300];
                snprintf(link_name, sizeof(link_name), "%s-link", name);
                snprintf(link_path, sizeof(link_path), "%s", tap_shm_path(link_name));
                CHECK_SYS(symlink(tap_shm_path(name), link_path));
                memset(&t, SENTINEL, sizeof(t));
                CHECK_ERR(shmring_attach(link_name, 0, &t), -EINVAL);
                CHECK_ERR(shmring_attach(link_name, SHMRING_ATTACH_OBSERVER, &t), -EINVAL);
                CHECK(tap_all_bytes(&t, sizeof(t), SENTINEL));
                CHECK_SYS(unlink(link_path));
        }
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
        {
                char other[SHMRING_NAME_MAX];
                snprintf(other, sizeof(other), "/" SHM_NAME_PREFIX "%sdir", tap_run_id());
                path = tap_shm_path(other);
                CHECK_SYS(mkdir(path, 0700));
                CHECK_ERR(shmring_attach(other, 0, &t), -EINVAL);
                CHECK_SYS(rmdir(path));

                CHECK_SYS(mkfifo(path, 0600));
                CHECK_ERR(shmring_attach(other, 0, &t), -EINVAL);      /* and does not block */
                CHECK_ERR(shmring_attach(other, SHMRING_ATTACH_OBSERVER, &t), -EINVAL);
                CHECK_SYS(unlink(path));

                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                CHECK_SYS(fd);
                CHECK(strlen(path) < sizeof(sa.sun_path));
                strcpy(sa.sun_path, path);
                CHECK_SYS(bind(fd, (struct sockaddr *) &sa, sizeof(sa)));
                CHECK_ERR(shmring_attach(other, 0, &t), -EINVAL);
                close(fd);
                CHECK_SYS(unlink(path));

                /* An empty regular file is a segment being created. */
                fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                CHECK_SYS(fd);
                CHECK_ERR(shmring_attach(other, 0, &t), -EAGAIN);
                /* Zeroes of a plausible size: its magic is not there yet. */
                CHECK_SYS(ftruncate(fd, 1 << 20));
                CHECK_ERR(shmring_attach(other, 0, &t), -EAGAIN);
                /* Garbage. */
                {
                        unsigned char junk[8192];
                        for (size_t i = 0; i < sizeof(junk); i++)
                                junk[i] = (unsigned char) msg_mix(i);
                        CHECK_SYS(pwrite(fd, junk, sizeof(junk), 0));
                        CHECK_ERR(shmring_attach(other, 0, &t), -EBADMSG);
                }
                close(fd);
                CHECK_SYS(unlink(path));
        }
}

/* ---------------------------------------------------- corrupted messages */

struct live {
        struct shmring *s;
        struct shmring_tx *tx;
        struct shmring_rx *rx;
        struct seg g;
        struct shm_channel *ch;
};

/* A segment, a writer and a reader on channel (bc or q), and the test's own mapping. */
static void live_open(struct live *l, const char *channel) {
        memset(l, 0, sizeof(*l));
        l->s = make_segment();
        CHECK_OK(shmring_rx_open(l->s, channel, NULL, &l->rx));
        CHECK_OK(shmring_tx_open(l->s, channel, NULL, &l->tx));
        seg_map(&l->g, shmring_name(l->s));
        l->ch = strcmp(channel, "bc") == 0 ? l->g.bc : l->g.q;
}

static void live_close(struct live *l) {
        seg_unmap(&l->g);
        l->tx = shmring_tx_close(l->tx);
        l->rx = shmring_rx_close(l->rx);
        CHECK_OK(shmring_unlink(l->s));
        l->s = shmring_close(l->s);
}

/* Sends message seq of len bytes and finds its slot through layout.h, checking it is where it should be. */
static struct shm_slot *send_and_find(struct live *l, uint64_t seq, size_t len) {
        unsigned char buf[OVERFLOW];
        struct shm_slot *slot;

        CHECK(len <= sizeof(buf));
        msg_fill(buf, len, 0, seq);
        CHECK_OK(shmring_send(l->tx, buf, len, 0));
        slot = seg_slot(l->ch, 0, seq);
        CHECK_EQ(atomic_load(&slot->seq), seq + 1);
        CHECK_EQ(slot->len, len);
        if (len <= SLOT_SIZE) {
                CHECK_EQ(slot->flags, 0);
                CHECK(memcmp(slot->data, buf, len) == 0);
        } else {
                CHECK_EQ(slot->flags, SHM_SLOT_OVERFLOW);
        }
        return slot;
}

/* The next receive must fail with err, both ways, and keep failing: never crash, never hang. */
#define CHECK_RECV_FAILS(l, err)                                                                \
        do {                                                                                    \
                unsigned char b_[OVERFLOW];                                                     \
                struct shmring_msg m_;                                                          \
                CHECK_ERR(shmring_recv((l)->rx, b_, sizeof(b_), 0), err);                       \
                CHECK_ERR(shmring_recv((l)->rx, b_, sizeof(b_), 1000 * 1000), err);             \
                memset(&m_, SENTINEL, sizeof(m_));                                              \
                CHECK_ERR(shmring_recv_zc((l)->rx, &m_, 0), err);                               \
                CHECK(tap_all_bytes(&m_, sizeof(m_), SENTINEL));                                \
        } while (0)

static void test_corrupt_slots(void) {
        struct live l;
        struct shm_slot *slot;
        struct shm_overflow_ref ref;

        for (int ch = 0; ch < 2; ch++) {
                const char *channel = ch ? "q" : "bc";

                /* An inline length past the slot. */
                live_open(&l, channel);
                slot = send_and_find(&l, 0, 40);
                slot->len = SLOT_SIZE + 100;
                CHECK_RECV_FAILS(&l, -EBADMSG);
                slot->len = UINT32_MAX;
                CHECK_RECV_FAILS(&l, -EBADMSG);
                live_close(&l);

                /* Unknown flags. */
                live_open(&l, channel);
                slot = send_and_find(&l, 0, 40);
                slot->flags = 1u << 7;
                CHECK_RECV_FAILS(&l, -EBADMSG);
                slot->flags = SHM_SLOT_OVERFLOW | 2;
                CHECK_RECV_FAILS(&l, -EBADMSG);
                live_close(&l);

                /* An overflow message whose length or reference points out of the area. */
                live_open(&l, channel);
                slot = send_and_find(&l, 0, 1000);
                slot->len = OVERFLOW + 1;
                CHECK_RECV_FAILS(&l, -EBADMSG);
                slot->len = UINT32_MAX;
                CHECK_RECV_FAILS(&l, -EBADMSG);
                slot->len = 1000;
                memcpy(&ref, slot->data, sizeof(ref));
                ref.pos = OVERFLOW - 10;
                memcpy(slot->data, &ref, sizeof(ref));
                CHECK_RECV_FAILS(&l, -EBADMSG);
                ref.pos = UINT64_MAX;
                memcpy(slot->data, &ref, sizeof(ref));
                CHECK_RECV_FAILS(&l, -EBADMSG);
                live_close(&l);

                /* A reference that stays inside the area: wrong bytes, but in bounds, or an error. */
                live_open(&l, channel);
                slot = send_and_find(&l, 0, 1000);
                memcpy(&ref, slot->data, sizeof(ref));
                ref.pos += 3 * OVERFLOW + 64;
                memcpy(slot->data, &ref, sizeof(ref));
                {
                        unsigned char b[OVERFLOW];
                        ssize_t n = shmring_recv(l.rx, b, sizeof(b), 0);
                        CHECK(n == 1000 || n == -EBADMSG);
                }
                live_close(&l);

                /* An inline message marked as overflow: its bytes are taken as a reference. */
                live_open(&l, channel);
                slot = send_and_find(&l, 0, 40);
                slot->flags = SHM_SLOT_OVERFLOW;
                {
                        unsigned char b[OVERFLOW];
                        ssize_t n = shmring_recv(l.rx, b, sizeof(b), 0);
                        CHECK(n == 40 || n == -EBADMSG);
                }
                live_close(&l);

                /* A sequence number from the future, and one from the past: an error or nothing, never a hang. */
                live_open(&l, channel);
                slot = send_and_find(&l, 0, 40);
                atomic_store(&slot->seq, 1000);
                {
                        unsigned char b[OVERFLOW];
                        ssize_t n = shmring_recv(l.rx, b, sizeof(b), 0);
                        CHECK(n < 0 && n != -EAGAIN);
                        atomic_store(&slot->seq, 0);
                        CHECK_ERR(shmring_recv(l.rx, b, sizeof(b), 0), -EAGAIN);
                        CHECK_ERR(shmring_recv(l.rx, b, sizeof(b), 20 * 1000 * 1000), -ETIMEDOUT);
                        /* Put right, it is delivered. */
                        atomic_store(&slot->seq, 1);
                        CHECK_EQ(shmring_recv(l.rx, b, sizeof(b), 0), 40);
                        CHECK(msg_check(b, 40, NULL, 0, 0) == NULL);
                }
                live_close(&l);
        }
}

/* A writer whose reader's line was scribbled on fails rather than overwrite unread slots. */
static void test_corrupt_reader_line(void) {
        struct live l;
        struct shm_ring *ring;
        unsigned char b[64] = { 0 };
        int r = 0;

        for (int ch = 0; ch < 2; ch++) {
                live_open(&l, ch ? "q" : "bc");
                ring = seg_ring(l.ch, 0);
                for (uint64_t i = 0; i < 3 * SLOTS; i++) {
                        send_and_find(&l, i, 40);
                        CHECK_EQ(shmring_recv(l.rx, b, sizeof(b), 0), 40);
                }
                /* The reader claims to be back at message 0: three rings behind. */
                atomic_store(&ring->readers[ch ? 0 : shmring_rx_index(l.rx)].tail, 0);
                for (unsigned i = 0; i <= SLOTS && (r = shmring_send(l.tx, b, 40, 0)) == 0; i++)
                        ;
                if (r != -EBADMSG)
                        tap_fail(__FILE__, __LINE__, "a writer whose reader is 3 rings behind: %s, expected EBADMSG",
                                 r < 0 ? tap_errno_name(r) : "success");
                live_close(&l);
        }

        /* The writer's owner word scribbled: the reader takes the writer for dead. */
        live_open(&l, "bc");
        ring = seg_ring(l.ch, 0);
        atomic_store(&ring->w.owner, UINT64_C(0xdeadbeef00000777));
        CHECK_ERR(shmring_recv(l.rx, b, sizeof(b), 5 * INT64_C(1000000000)), -EOWNERDEAD);
        live_close(&l);

        /* A writer's head scribbled while no writer is open: the next writer refuses the ring. */
        live_open(&l, "q");
        for (uint64_t i = 0; i < 3; i++)
                send_and_find(&l, i, 40);
        l.tx = shmring_tx_close(l.tx);
        atomic_store(&seg_ring(l.ch, 0)->w.head, 1000);
        {
                struct shmring_tx *tx;
                memset(&tx, SENTINEL, sizeof(tx));
                CHECK_ERR(shmring_tx_open(l.s, "q", &(struct shmring_port_opts) { .index = 0 }, &tx), -EBADMSG);
                CHECK(tap_all_bytes(&tx, sizeof(tx), SENTINEL));
        }
        live_close(&l);
}

int main(void) {
        tap_init("test-corrupt");
        test_attach_refuses();
        test_unknown_region();
        test_not_ours();
        test_corrupt_slots();
        test_corrupt_reader_line();
        return tap_done();
}
