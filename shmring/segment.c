/* SPDX-License-Identifier: MIT */
/* Segments: create, attach (with every check), close, unlink, stale cleanup. */

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "names.h"

#define SHM_DIR "/dev/shm"
#define DEFAULT_MAX_PEERS 64
#define MAX_OVERFLOW (UINT64_C(1) << 32)        /* a message's length is 32 bits */
#define STALE_UNINITIALISED_SEC 60

static uint32_t slot_stride_for(uint32_t slot_size, uint64_t overflow_size) {
        uint64_t payload = slot_size;

        /* A slot of an overflow channel must hold the reference to its bytes. */
        if (overflow_size > 0 && payload < sizeof(struct shm_overflow_ref))
                payload = sizeof(struct shm_overflow_ref);
        return (uint32_t) ALIGN_UP(SHM_SLOT_HEADER + payload, SHM_LINE);
}

static uint64_t ring_ctrl_size(uint32_t n_readers) {
        return sizeof(struct shm_ring) + (uint64_t) n_readers * sizeof(struct shm_ring_reader);
}

static int channel_spec_check(const struct shmring_channel_spec *c) {
        if (!rm_name_valid(c->name, SHMRING_CHANNEL_NAME_MAX, false))
                return -EINVAL;
        if (c->kind != SHMRING_BROADCAST && c->kind != SHMRING_QUEUE)
                return -EINVAL;
        if (c->slots < 2 || c->slots > SHM_MAX_SLOTS || (c->slots & (c->slots - 1)) != 0)
                return -EINVAL;
        if (c->slot_size == 0 || c->slot_size > SHM_MAX_SLOT_STRIDE - SHM_SLOT_HEADER)
                return -EINVAL;
        if (c->overflow_size > MAX_OVERFLOW)
                return -EINVAL;
        if (c->max_ports == 0 || c->max_ports > SHM_MAX_PORTS)
                return -EINVAL;
        return 0;
}

uint64_t channel_region_size(const struct shmring_channel_spec *c, uint32_t *ret_stride,
                             uint64_t *ret_ring_stride, uint64_t *ret_ring_ctrl) {
        uint32_t n_rings = c->kind == SHMRING_QUEUE ? c->max_ports : 1;
        uint32_t n_readers = c->kind == SHMRING_QUEUE ? 1 : c->max_ports;
        uint64_t overflow = ALIGN_UP(c->overflow_size, SHM_LINE);
        uint32_t stride = slot_stride_for(c->slot_size, overflow);
        uint64_t ctrl = ring_ctrl_size(n_readers);
        /* Rings start on a page so a ring's hot lines never share one with the next ring's. */
        uint64_t ring_stride = ALIGN_UP(ctrl + (uint64_t) c->slots * stride + overflow, SHM_REGION_ALIGN);

        if (ret_stride)
                *ret_stride = stride;
        if (ret_ring_stride)
                *ret_ring_stride = ring_stride;
        if (ret_ring_ctrl)
                *ret_ring_ctrl = ctrl;
        return ALIGN_UP(sizeof(struct shm_channel), SHM_REGION_ALIGN) + (uint64_t) n_rings * ring_stride;
}

static uint64_t peers_region_size(uint32_t max_peers) {
        return ALIGN_UP(sizeof(struct shm_peers) + (uint64_t) max_peers * sizeof(struct shm_peer),
                        SHM_REGION_ALIGN);
}

int spec_layout(const struct shmring_spec *spec, uint64_t *ret_total, uint64_t *ret_header_size) {
        uint32_t max_peers;
        uint64_t total, header_size;
        int r;

        if (!spec || !rm_name_valid(spec->run_id, SHMRING_RUN_ID_MAX, false))
                return -EINVAL;
        if (spec->n_channels > SHM_MAX_REGIONS - 1 || (spec->n_channels > 0 && !spec->channels))
                return -EINVAL;
        if (spec->n_tables > SHM_MAX_REGIONS - 1 - spec->n_channels || (spec->n_tables > 0 && !spec->tables))
                return -EINVAL;
        max_peers = spec->max_peers ? spec->max_peers : DEFAULT_MAX_PEERS;
        if (max_peers > SHM_MAX_PEERS)
                return -EINVAL;

        header_size = ALIGN_UP(SHM_HEADER_FIXED +
                               (uint64_t) (spec->n_channels + spec->n_tables + 1) * sizeof(struct shm_region),
                               SHM_REGION_ALIGN);
        total = header_size + peers_region_size(max_peers);
        for (uint32_t i = 0; i < spec->n_channels; i++) {
                const struct shmring_channel_spec *c = &spec->channels[i];

                r = channel_spec_check(c);
                if (r < 0)
                        return r;
                for (uint32_t j = 0; j < i; j++)
                        if (strcmp(spec->channels[j].name, c->name) == 0)
                                return -EEXIST;
                total += channel_region_size(c, NULL, NULL, NULL);
        }
        for (uint32_t i = 0; i < spec->n_tables; i++) {
                const struct shmring_table_spec *t = &spec->tables[i];

                if (!rm_name_valid(t->name, SHMRING_CHANNEL_NAME_MAX, false) || t->entries == 0 ||
                    t->entries > SHM_MAX_TABLE_ENTRIES || t->value_size == 0 || t->value_size > SHM_MAX_VALUE)
                        return -EINVAL;
                for (uint32_t j = 0; j < spec->n_channels; j++)
                        if (strcmp(spec->channels[j].name, t->name) == 0)
                                return -EEXIST;
                for (uint32_t j = 0; j < i; j++)
                        if (strcmp(spec->tables[j].name, t->name) == 0)
                                return -EEXIST;
                total += table_region_size(t, NULL);
        }
        /* Bounded by the checks above to well under 2^63: no overflow. */
        *ret_total = total;
        if (ret_header_size)
                *ret_header_size = header_size;
        return 0;
}

_public_ int shmring_spec_size(const struct shmring_spec *spec, uint64_t *ret_size) {
        uint64_t total;
        int r;

        check_arg(spec, -EINVAL);
        check_arg(ret_size, -EINVAL);
        r = spec_layout(spec, &total, NULL);
        if (r < 0)
                return r;
        *ret_size = total;
        return 0;
}

static struct shmring *segment_free(struct shmring *s) {
        if (!s)
                return NULL;
        if (s->base)
                munmap(s->base, s->size);
        free(s->channels);
        free(s->tables);
        free(s);
        return NULL;
}

static struct shmring *segment_new(void) {
        struct shmring *s = calloc(1, sizeof(*s));

        if (!s)
                return NULL;
        s->ports.prev = s->ports.next = &s->ports;
        s->pid = getpid();
        if (self_pidns(&s->pidns) < 0)
                s->pidns = 0;
        return s;
}

/* Fills geometry g from a channel header, checking it against the region it sits in. */
static int channel_geom_load(struct channel_geom *g, const struct shm_region *reg, unsigned char *region,
                             uint64_t region_size) {
        const struct shm_channel *h = (const struct shm_channel *) region;
        uint32_t kind, n_rings, n_readers, slots, stride;
        uint64_t overflow, ring_stride, rings_offset, ctrl, need, rings_bytes;

        if (region_size < sizeof(struct shm_channel))
                return -EBADMSG;
        kind = __atomic_load_n(&h->kind, __ATOMIC_RELAXED);
        n_rings = __atomic_load_n(&h->n_rings, __ATOMIC_RELAXED);
        n_readers = __atomic_load_n(&h->n_readers, __ATOMIC_RELAXED);
        slots = __atomic_load_n(&h->slots, __ATOMIC_RELAXED);
        stride = __atomic_load_n(&h->slot_stride, __ATOMIC_RELAXED);
        overflow = __atomic_load_n(&h->overflow_size, __ATOMIC_RELAXED);
        ring_stride = __atomic_load_n(&h->ring_stride, __ATOMIC_RELAXED);
        rings_offset = __atomic_load_n(&h->rings_offset, __ATOMIC_RELAXED);

        if (!(reg->type == SHM_REGION_BROADCAST && kind == SHMRING_BROADCAST) &&
            !(reg->type == SHM_REGION_QUEUE && kind == SHMRING_QUEUE))
                return -EBADMSG;
        if (kind == SHMRING_BROADCAST ? n_rings != 1 : n_readers != 1)
                return -EBADMSG;
        if (n_rings == 0 || n_rings > SHM_MAX_PORTS || n_readers == 0 || n_readers > SHM_MAX_PORTS)
                return -EBADMSG;
        if (slots < 2 || slots > SHM_MAX_SLOTS || (slots & (slots - 1)) != 0)
                return -EBADMSG;
        if (stride < SHM_LINE || stride > SHM_MAX_SLOT_STRIDE || stride % SHM_LINE != 0)
                return -EBADMSG;
        if (overflow > MAX_OVERFLOW || overflow % SHM_LINE != 0)
                return -EBADMSG;
        if (overflow > 0 && stride < SHM_SLOT_HEADER + sizeof(struct shm_overflow_ref))
                return -EBADMSG;
        ctrl = ring_ctrl_size(n_readers);
        need = ctrl + (uint64_t) slots * stride + overflow;        /* < 2^46: no overflow */
        if (ring_stride < need || ring_stride % SHM_PAD != 0)
                return -EBADMSG;
        if (rings_offset < sizeof(struct shm_channel) || rings_offset % SHM_PAD != 0 || rings_offset > region_size)
                return -EBADMSG;
        if (__builtin_mul_overflow(ring_stride, (uint64_t) n_rings, &rings_bytes) ||
            rings_bytes > region_size - rings_offset)
                return -EBADMSG;

        memcpy(g->name, reg->name, sizeof(g->name));
        g->name[SHMRING_CHANNEL_NAME_MAX] = '\0';
        g->kind = kind;
        g->n_rings = n_rings;
        g->n_readers = n_readers;
        g->slots = slots;
        g->slot_stride = stride;
        g->inline_max = stride - SHM_SLOT_HEADER;
        g->overflow_size = overflow;
        g->ring_stride = ring_stride;
        g->ring_ctrl = ctrl;
        g->max_message = overflow > g->inline_max ? overflow : g->inline_max;
        if (g->max_message > UINT32_MAX)
                g->max_message = UINT32_MAX;
        g->hdr = (struct shm_channel *) region;
        g->rings = region + rings_offset;
        return 0;
}

static int region_cmp(const void *a, const void *b) {
        const struct shm_region *x = *(const struct shm_region *const *) a;
        const struct shm_region *y = *(const struct shm_region *const *) b;

        return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/*
 * Checks a mapped segment against itself and fills s's local copies.  Every
 * offset and size is checked against the mapped size before anything is
 * dereferenced through it.
 */
static int segment_load(struct shmring *s) {
        struct shm_header *h = s->hdr;
        const struct shm_region **sorted = NULL;
        struct shm_region *regions;
        uint64_t magic, header_size, peers_off = 0, peers_size = 0;
        uint32_t n_regions, n_channels = 0, n_tables = 0, n_peers_regions = 0;
        int r = 0;

        magic = atomic_load_explicit(&h->magic, memory_order_acquire);
        if (magic == 0)
                return -EAGAIN;
        if (magic != SHM_MAGIC)
                return -EBADMSG;
        if (__atomic_load_n(&h->abi_version, __ATOMIC_RELAXED) != SHMRING_ABI_VERSION)
                return -EPROTO;
        if (__atomic_load_n(&h->total_size, __ATOMIC_RELAXED) != s->size)
                return -EBADMSG;
        header_size = __atomic_load_n(&h->header_size, __ATOMIC_RELAXED);
        n_regions = __atomic_load_n(&h->n_regions, __ATOMIC_RELAXED);
        if (n_regions == 0 || n_regions > SHM_MAX_REGIONS)
                return -EBADMSG;
        if (header_size % SHM_REGION_ALIGN != 0 || header_size > s->size ||
            header_size < SHM_HEADER_FIXED + (uint64_t) n_regions * sizeof(struct shm_region))
                return -EBADMSG;

        memcpy(s->run_id, h->run_id, SHMRING_RUN_ID_MAX);
        s->run_id[SHMRING_RUN_ID_MAX] = '\0';
        if (memchr(h->run_id, '\0', sizeof(h->run_id)) == NULL || !rm_name_valid(s->run_id, SHMRING_RUN_ID_MAX, false))
                return -EBADMSG;
        s->generation = __atomic_load_n(&h->generation, __ATOMIC_RELAXED);
        s->creator_pid = (pid_t) __atomic_load_n(&h->creator_pid, __ATOMIC_RELAXED);
        s->creator_uid = (uid_t) __atomic_load_n(&h->creator_uid, __ATOMIC_RELAXED);

        /* Copy the directory so that checking and using it see the same bytes. */
        regions = malloc((size_t) n_regions * sizeof(*regions));
        sorted = malloc((size_t) n_regions * sizeof(*sorted));
        if (!regions || !sorted) {
                r = -ENOMEM;
                goto out;
        }
        memcpy(regions, h->regions, (size_t) n_regions * sizeof(*regions));

        for (uint32_t i = 0; i < n_regions; i++) {
                struct shm_region *reg = &regions[i];

                if (reg->offset < header_size || reg->offset % SHM_REGION_ALIGN != 0 || reg->size == 0 ||
                    reg->offset > s->size || reg->size > s->size - reg->offset) {
                        r = -EBADMSG;
                        goto out;
                }
                if (memchr(reg->name, '\0', sizeof(reg->name)) == NULL) {
                        r = -EBADMSG;
                        goto out;
                }
                sorted[i] = reg;
                switch (reg->type) {
                case SHM_REGION_PEERS:
                        n_peers_regions++;
                        peers_off = reg->offset;
                        peers_size = reg->size;
                        break;
                case SHM_REGION_BROADCAST:
                case SHM_REGION_QUEUE:
                        if (!rm_name_valid(reg->name, SHMRING_CHANNEL_NAME_MAX, false)) {
                                r = -EBADMSG;
                                goto out;
                        }
                        n_channels++;
                        break;
                case SHM_REGION_TABLE:
                        if (!rm_name_valid(reg->name, SHMRING_CHANNEL_NAME_MAX, false)) {
                                r = -EBADMSG;
                                goto out;
                        }
                        n_tables++;
                        break;
                default:
                        break;                  /* a later layout's region: not ours to read */
                }
        }
        qsort(sorted, n_regions, sizeof(*sorted), region_cmp);
        for (uint32_t i = 1; i < n_regions; i++)
                if (sorted[i - 1]->offset + sorted[i - 1]->size > sorted[i]->offset) {
                        r = -EBADMSG;
                        goto out;
                }

        if (n_peers_regions != 1 || peers_size < sizeof(struct shm_peers)) {
                r = -EBADMSG;
                goto out;
        }
        {
                const struct shm_peers *ph = (const struct shm_peers *) ((unsigned char *) s->base + peers_off);
                uint32_t max_peers = __atomic_load_n(&ph->max_peers, __ATOMIC_RELAXED);

                if (max_peers == 0 || max_peers > SHM_MAX_PEERS ||
                    sizeof(struct shm_peers) + (uint64_t) max_peers * sizeof(struct shm_peer) > peers_size) {
                        r = -EBADMSG;
                        goto out;
                }
                s->max_peers = max_peers;
                s->peers = (struct shm_peer *) ((unsigned char *) s->base + peers_off + sizeof(struct shm_peers));
        }

        s->channels = calloc(n_channels ? n_channels : 1, sizeof(*s->channels));
        s->tables = calloc(n_tables ? n_tables : 1, sizeof(*s->tables));
        if (!s->channels || !s->tables) {
                r = -ENOMEM;
                goto out;
        }
        for (uint32_t i = 0; i < n_regions; i++) {
                struct shm_region *reg = &regions[i];
                unsigned char *region = (unsigned char *) s->base + reg->offset;

                if (reg->type != SHM_REGION_BROADCAST && reg->type != SHM_REGION_QUEUE &&
                    reg->type != SHM_REGION_TABLE)
                        continue;
                /* Channels and tables share one namespace. */
                for (uint32_t j = 0; j < i; j++)
                        if (regions[j].type != SHM_REGION_PEERS && strcmp(regions[j].name, reg->name) == 0) {
                                r = -EBADMSG;
                                goto out;
                        }
                if (reg->type == SHM_REGION_TABLE)
                        r = table_geom_load(&s->tables[s->n_tables++], reg, region, reg->size);
                else
                        r = channel_geom_load(&s->channels[s->n_channels++], reg, region, reg->size);
                if (r < 0)
                        goto out;
        }
out:
        free(regions);
        free(sorted);
        return r;
}

static int segment_init(struct shmring *s, const struct shmring_spec *spec, uint64_t header_size) {
        struct shm_header *h = s->hdr;
        uint32_t max_peers = spec->max_peers ? spec->max_peers : DEFAULT_MAX_PEERS;
        uint64_t off = header_size, nonce;
        struct shm_peers *ph;

        if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce))
                nonce = now_ns() ^ (uint64_t) s->pid;

        h->abi_version = SHMRING_ABI_VERSION;
        h->header_size = (uint32_t) header_size;
        h->total_size = s->size;
        h->creator_pid = (uint32_t) s->pid;
        h->creator_uid = (uint32_t) geteuid();
        if (proc_start_time(s->pid, &h->creator_start, NULL) < 0)
                return -ESRCH;
        h->creator_pidns = s->pidns;
        h->generation = spec->generation;
        h->nonce = nonce;
        h->n_regions = spec->n_channels + spec->n_tables + 1;
        strncpy(h->run_id, spec->run_id, sizeof(h->run_id) - 1);

        h->regions[0] = (struct shm_region) {
                .type = SHM_REGION_PEERS,
                .offset = off,
                .size = peers_region_size(max_peers),
                .name = "peers",
        };
        ph = (struct shm_peers *) ((unsigned char *) s->base + off);
        ph->max_peers = max_peers;
        off += h->regions[0].size;

        for (uint32_t i = 0; i < spec->n_channels; i++) {
                const struct shmring_channel_spec *c = &spec->channels[i];
                struct shm_region *reg = &h->regions[i + 1];
                struct shm_channel *ch = (struct shm_channel *) ((unsigned char *) s->base + off);
                uint64_t ring_stride, ctrl;
                uint32_t stride;

                *reg = (struct shm_region) {
                        .type = c->kind == SHMRING_QUEUE ? SHM_REGION_QUEUE : SHM_REGION_BROADCAST,
                        .offset = off,
                        .size = channel_region_size(c, &stride, &ring_stride, &ctrl),
                };
                strncpy(reg->name, c->name, sizeof(reg->name) - 1);
                ch->kind = c->kind;
                ch->n_rings = c->kind == SHMRING_QUEUE ? c->max_ports : 1;
                ch->n_readers = c->kind == SHMRING_QUEUE ? 1 : c->max_ports;
                ch->slots = c->slots;
                ch->slot_stride = stride;
                ch->overflow_size = ALIGN_UP(c->overflow_size, SHM_LINE);
                ch->ring_stride = ring_stride;
                ch->rings_offset = ALIGN_UP(sizeof(struct shm_channel), SHM_REGION_ALIGN);
                /* Rings, slots and overflow start zeroed: no writer, no reader, no message. */
                off += reg->size;
        }
        for (uint32_t i = 0; i < spec->n_tables; i++) {
                const struct shmring_table_spec *t = &spec->tables[i];
                struct shm_region *reg = &h->regions[1 + spec->n_channels + i];
                struct shm_table *th = (struct shm_table *) ((unsigned char *) s->base + off);
                uint32_t stride;

                *reg = (struct shm_region) {
                        .type = SHM_REGION_TABLE,
                        .offset = off,
                        .size = table_region_size(t, &stride),
                };
                strncpy(reg->name, t->name, sizeof(reg->name) - 1);
                th->entries = t->entries;
                th->value_size = t->value_size;
                th->entry_stride = stride;
                off += reg->size;
        }
        return 0;
}

_public_ int shmring_create(const struct shmring_spec *spec, struct shmring **ret) {
        struct shmring *s = NULL;
        uint64_t total, header_size, rnd;
        int fd = -EBADF, r;

        check_arg(spec, -EINVAL);
        check_arg(ret, -EINVAL);
        r = spec_layout(spec, &total, &header_size);
        if (r < 0)
                return r;
        if (total > (uint64_t) SIZE_MAX || total > (uint64_t) INT64_MAX)
                return -EFBIG;

        s = segment_new();
        if (!s)
                return -ENOMEM;

        /* Unpredictable, so another user cannot squat the name first. */
        for (int attempt = 0;; attempt++) {
                if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd)) {
                        r = -errno;
                        goto fail;
                }
                snprintf(s->name, sizeof(s->name), "/" SHM_NAME_PREFIX "%s-%016llx", spec->run_id,
                         (unsigned long long) rnd);
                fd = shm_open(s->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd >= 0)
                        break;
                r = -errno;
                if (r != -EEXIST || attempt >= 8)
                        goto fail_noname;
        }
        /* The umask can only take bits away; make the mode exactly 0600. */
        if (fchmod(fd, 0600) < 0 || ftruncate(fd, (off_t) total) < 0) {
                r = -errno;
                goto fail;
        }
        /* Reserve every page now: a small /dev/shm fails here, not with a SIGBUS later. */
        r = posix_fallocate(fd, 0, (off_t) total);
        if (r != 0) {
                r = -r;
                goto fail;
        }
        s->size = total;
        s->base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (s->base == MAP_FAILED) {
                s->base = NULL;
                r = -errno;
                goto fail;
        }
        close(fd);
        fd = -EBADF;
        s->hdr = s->base;

        r = segment_init(s, spec, header_size);
        if (r < 0)
                goto fail;
        /* Publish: whoever sees the magic sees everything written before it. */
        atomic_store_explicit(&s->hdr->magic, SHM_MAGIC, memory_order_release);

        r = segment_load(s);
        if (r < 0)
                goto fail;
        r = peer_register(s);
        if (r < 0)
                goto fail;
        *ret = s;
        return 0;

fail:
        shm_unlink(s->name);
fail_noname:
        if (fd >= 0)
                close(fd);
        segment_free(s);
        return r;
}

static bool segment_name_valid(const char *name) {
        size_t n;

        if (!name || name[0] != '/')
                return false;
        n = strnlen(name, SHMRING_NAME_MAX);
        if (n < 2 || n >= SHMRING_NAME_MAX)
                return false;
        return strchr(name + 1, '/') == NULL;
}

_public_ int shmring_attach(const char *name, unsigned flags, struct shmring **ret) {
        struct shmring *s;
        struct stat st;
        int fd, r;

        check_arg(segment_name_valid(name), -EINVAL);
        check_arg((flags & ~SHMRING_ATTACH_OBSERVER) == 0, -EINVAL);
        check_arg(ret, -EINVAL);

        /* O_NONBLOCK: a FIFO or device squatting the name must not block the open. */
        fd = shm_open(name, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0);
        if (fd < 0)
                return errno == ELOOP || errno == EISDIR || errno == ENXIO ? -EINVAL : -errno;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                close(fd);
                return -EINVAL;
        }
        if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
                close(fd);
                return -EPERM;
        }
        if (st.st_size < (off_t) (SHM_HEADER_FIXED + sizeof(struct shm_region)) || (uint64_t) st.st_size > SIZE_MAX) {
                close(fd);
                /* An empty object is one whose creator has not sized it yet. */
                return st.st_size == 0 ? -EAGAIN : -EBADMSG;
        }

        s = segment_new();
        if (!s) {
                close(fd);
                return -ENOMEM;
        }
        s->flags = flags;
        s->size = (uint64_t) st.st_size;
        snprintf(s->name, sizeof(s->name), "%s", name);
        s->base = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        r = -errno;
        close(fd);
        if (s->base == MAP_FAILED) {
                s->base = NULL;
                segment_free(s);
                return r;
        }
        s->hdr = s->base;

        r = segment_load(s);
        if (r == 0 && !(flags & SHMRING_ATTACH_OBSERVER))
                r = peer_register(s);
        if (r < 0) {
                segment_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

_public_ struct shmring *shmring_close(struct shmring *s) {
        if (!s)
                return NULL;
        while (s->ports.next != &s->ports)
                port_close_any((struct port *) s->ports.next);
        peer_unregister(s);
        return segment_free(s);
}

_public_ int shmring_unlink_name(const char *name) {
        check_arg(segment_name_valid(name), -EINVAL);
        if (shm_unlink(name) < 0)
                return -errno;
        return 0;
}

_public_ int shmring_unlink(struct shmring *s) {
        check_arg(s, -EINVAL);
        return shmring_unlink_name(s->name);
}

_public_ const char *shmring_name(const struct shmring *s) {
        return s ? s->name : NULL;
}

_public_ int shmring_get_info(const struct shmring *s, struct shmring_info *ret) {
        check_arg(s, -EINVAL);
        check_arg(ret, -EINVAL);
        *ret = (struct shmring_info) {
                .size = s->size,
                .generation = s->generation,
                .creator_pid = s->creator_pid,
                .creator_uid = s->creator_uid,
                .max_peers = s->max_peers,
                .n_channels = s->n_channels,
                .n_tables = s->n_tables,
        };
        memcpy(ret->run_id, s->run_id, sizeof(ret->run_id));
        return 0;
}

_public_ int shmring_channel_info(const struct shmring *s, uint32_t index, struct shmring_channel_info *ret) {
        const struct channel_geom *g;

        check_arg(s, -EINVAL);
        check_arg(ret, -EINVAL);
        if (index >= s->n_channels)
                return -ENOENT;
        g = &s->channels[index];
        *ret = (struct shmring_channel_info) {
                .kind = (enum shmring_kind) g->kind,
                .slots = g->slots,
                .slot_size = g->inline_max,
                .overflow_size = g->overflow_size,
                .max_ports = g->kind == SHMRING_QUEUE ? g->n_rings : g->n_readers,
                .max_message = g->max_message,
        };
        memcpy(ret->name, g->name, sizeof(ret->name));
        return 0;
}

void segment_wake_all(struct shmring *s) {
        for (uint32_t c = 0; c < s->n_channels; c++) {
                const struct channel_geom *g = &s->channels[c];

                atomic_fetch_add_explicit(&g->hdr->q_wake.seq, 1, memory_order_release);
                futex_wake(&g->hdr->q_wake.seq, INT32_MAX);
                for (uint32_t i = 0; i < g->n_rings; i++) {
                        struct shm_ring *ring = geom_ring(g, i);

                        atomic_fetch_add_explicit(&ring->rwake.seq, 1, memory_order_release);
                        futex_wake(&ring->rwake.seq, INT32_MAX);
                        atomic_fetch_add_explicit(&ring->wwake.seq, 1, memory_order_release);
                        futex_wake(&ring->wwake.seq, INT32_MAX);
                }
        }
        for (uint32_t t = 0; t < s->n_tables; t++) {
                atomic_fetch_add_explicit(&s->tables[t].hdr->change.seq, 1, memory_order_release);
                futex_wake(&s->tables[t].hdr->change.seq, INT32_MAX);
        }
}

/* Whether the segment behind an open descriptor is stale: 1 yes, 0 no. */
static int segment_fd_stale(int fd, const struct stat *st) {
        struct shm_header h;
        ssize_t n;

        n = pread(fd, &h, sizeof(h), 0);
        if (n != (ssize_t) sizeof(h))
                return 0;
        if (h.magic == 0)
                /* Never finished: stale once its creator has had ample time. */
                return time(NULL) - st->st_mtime > STALE_UNINITIALISED_SEC;
        if (h.magic != SHM_MAGIC)
                return 0;                       /* not ours to judge */
        return creator_gone(h.creator_pid, h.creator_start, h.creator_pidns);
}

_public_ int shmring_cleanup_stale(const char *run_id) {
        char prefix[sizeof(SHM_NAME_PREFIX) + SHMRING_RUN_ID_MAX + 1];
        struct dirent *de;
        int removed = 0;
        DIR *d;

        check_arg(!run_id || rm_name_valid(run_id, SHMRING_RUN_ID_MAX, false), -EINVAL);
        snprintf(prefix, sizeof(prefix), SHM_NAME_PREFIX "%s%s", run_id ? run_id : "", run_id ? "-" : "");

        d = opendir(SHM_DIR);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d))) {
                char name[NAME_MAX + 2];
                struct stat st;
                int fd;

                if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
                        continue;
                /* "shmring-RUN-0123456789abcdef": with a run id, the rest must be
                 * the random part alone, or run "job" would match run "job-2". */
                if (run_id && strspn(de->d_name + strlen(prefix), "0123456789abcdef") != 16)
                        continue;
                if (run_id && de->d_name[strlen(prefix) + 16] != '\0')
                        continue;
                snprintf(name, sizeof(name), "/%s", de->d_name);
                fd = shm_open(name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0);
                if (fd < 0)
                        continue;
                if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
                    segment_fd_stale(fd, &st) > 0 && shm_unlink(name) == 0)
                        removed++;
                close(fd);
        }
        closedir(d);
        return removed;
}
