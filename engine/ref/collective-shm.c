/* SPDX-License-Identifier: MIT */
/*
 * The CPU all-reduce: float sums through one shared-memory area of the run
 * (collective.h).
 *
 * Rank 0 makes the area with memfd_create and shares it with
 * rm_fd_share(); its token travels in the kv table.  Layout (the header
 * says it, so a mismatched peer is refused):
 *
 *   [0, 4096)                 header: magic, world, chunk elements
 *   [4096, 4096 + 128 world)  one barrier counter per rank, each on its own
 *                             128-byte line (two cache lines: no false sharing
 *                             with the adjacent-line prefetcher)
 *   in[2][world][chunk]       each rank's input slice, double-buffered
 *   res[2][chunk]             two-shot's reduced chunk, double-buffered
 *
 * Operation k uses buffer k & 1.  A rank writes in[p][rank] only after the
 * barrier of operation k - 1, which every rank reaches only after it has
 * finished reading operation k - 2's buffers: so one barrier per one-shot
 * operation (two per two-shot) is enough.
 *
 * one-shot: write my slice; barrier; sum all slices in rank order.
 * two-shot: write my slice; barrier; sum my 1/world of all slices into res;
 *           barrier; copy res.  Less reading per rank for large messages.
 * Both sum in rank order, so every rank computes the same bits.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "collective.h"
#include "rm_worker.h"
#include "shmring.h"

#define AREA_MAGIC UINT64_C(0x52414d4d4853524d)   /* "MRSHMMAR" */
#define HEADER_BYTES 4096
#define LINE 128
#define KV_KEY "engine/allreduce"
#define FD_KEY "engine-allreduce"

struct area_header {
        uint64_t magic;
        uint32_t world;
        uint32_t reserved;
        uint64_t chunk_elems;
};

struct area_record {
        uint64_t token;
        uint64_t size;
        uint64_t chunk_elems;
};

struct shm_collective {
        struct collective base;
        struct shm_allreduce_opts opts;
        unsigned char *map;
        size_t size;
        float *in;                    /* in[2][world][chunk] */
        float *res;                   /* res[2][chunk] */
        uint64_t ops;                 /* operations done */
        uint64_t barriers;            /* barriers passed */
};

static _Atomic uint64_t *counter(struct shm_collective *s, int rank) {
        return (_Atomic uint64_t *) (s->map + HEADER_BYTES + (size_t) rank * LINE);
}

static int64_t mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield");
#endif
}

static int barrier(struct shm_collective *s) {
        uint64_t target = ++s->barriers;
        int64_t start = 0, last_idle = 0;

        atomic_store_explicit(counter(s, s->base.rank), target, memory_order_release);
        for (int j = 0; j < s->base.world; j++) {
                _Atomic uint64_t *c = counter(s, j);
                for (uint64_t spins = 0; atomic_load_explicit(c, memory_order_acquire) < target; spins++) {
                        if (spins < 2048) {
                                cpu_relax();
                                continue;
                        }
                        int64_t now = mono_ns();
                        if (!start)
                                start = last_idle = now;
                        /* Spin, then yield (more ranks than cores must not starve the one we wait for),
                           then, after 2 ms, sleep in 50 us naps: an idle wait burns no CPU. */
                        if (now - start < 2000000)
                                sched_yield();
                        else
                                nanosleep(&(struct timespec) { .tv_nsec = 50000 }, NULL);
                        if (s->opts.idle && now - last_idle > 100000000) {
                                s->opts.idle();
                                last_idle = now;
                        }
                        if (s->opts.timeout_ns > 0 && now - start > s->opts.timeout_ns) {
                                snprintf(s->base.error, sizeof(s->base.error),
                                         "shm all-reduce #%" PRIu64 ": rank %d did not arrive within %.1f s", s->ops,
                                         j, (double) s->opts.timeout_ns / 1e9);
                                return -ETIMEDOUT;
                        }
                }
        }
        return 0;
}

static float *in_slice(struct shm_collective *s, int p, int rank) {
        return s->in + ((size_t) p * s->base.world + (size_t) rank) * s->opts.chunk_elems;
}

static int one_chunk(struct shm_collective *s, float *buf, size_t n, bool two_shot) {
        int p = (int) (s->ops++ & 1), world = s->base.world;
        float *res = s->res + (size_t) p * s->opts.chunk_elems;
        int r;

        memcpy(in_slice(s, p, s->base.rank), buf, n * sizeof(float));
        r = barrier(s);
        if (r < 0)
                return r;
        if (!two_shot) {
                const float *a = in_slice(s, p, 0);
                for (size_t i = 0; i < n; i++)
                        buf[i] = a[i];
                for (int j = 1; j < world; j++) {
                        const float *b = in_slice(s, p, j);
                        for (size_t i = 0; i < n; i++)
                                buf[i] += b[i];
                }
                return 0;
        }
        size_t lo = n * (size_t) s->base.rank / (size_t) world, hi = n * (size_t) (s->base.rank + 1) / (size_t) world;
        const float *a = in_slice(s, p, 0);
        for (size_t i = lo; i < hi; i++)
                res[i] = a[i];
        for (int j = 1; j < world; j++) {
                const float *b = in_slice(s, p, j);
                for (size_t i = lo; i < hi; i++)
                        res[i] += b[i];
        }
        r = barrier(s);
        if (r < 0)
                return r;
        memcpy(buf, res, n * sizeof(float));
        return 0;
}

static int shm_allreduce(struct collective *c, void *buf, size_t count, enum coll_dtype dtype, void *stream) {
        struct shm_collective *s = (struct shm_collective *) c;
        float *f = buf;

        if (c->world == 1)
                return 0;
        if (dtype != COLL_F32) {
                snprintf(c->error, sizeof(c->error), "shm all-reduce: float32 only");
                return -EINVAL;
        }
        bool two_shot = s->opts.algo == SHM_ALLREDUCE_TWO_SHOT ||
                        (s->opts.algo == SHM_ALLREDUCE_AUTO && count * sizeof(float) >= s->opts.two_shot_min_bytes);
        for (size_t done = 0; done < count;) {
                size_t n = count - done < s->opts.chunk_elems ? count - done : s->opts.chunk_elems;
                int r = one_chunk(s, f + done, n, two_shot);
                if (r < 0)
                        return r;
                done += n;
        }
        return 0;
}

static void shm_destroy(struct collective *c) {
        struct shm_collective *s = (struct shm_collective *) c;
        if (s->map)
                munmap(s->map, s->size);
        free(s);
}

static const struct collective_ops shm_ops = {
        .name = "shm",
        .allreduce = shm_allreduce,
        .destroy = shm_destroy,
};

const char *shm_allreduce_algo_name(enum shm_allreduce_algo a) {
        switch (a) {
        case SHM_ALLREDUCE_AUTO: return "auto";
        case SHM_ALLREDUCE_ONE_SHOT: return "one-shot";
        case SHM_ALLREDUCE_TWO_SHOT: return "two-shot";
        }
        return "?";
}

int collective_shm_new(struct rm_worker *w, const struct shm_allreduce_opts *opts, struct collective **ret,
                       char *errbuf, size_t errsize) {
        struct shm_collective *s;
        struct area_record rec = { 0 };
        int world = w ? (int) rm_worker_world_size(w) : 1, rank = w ? (int) rm_worker_rank(w) : 0;
        int fd = -1, r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->base.ops = &shm_ops;
        s->base.rank = rank;
        s->base.world = world;
        s->opts = *opts;
        /* Two-shot reads 1/world of every slice: it pays from 4 KiB at 4 ranks (docs/bench-engine.md). */
        if (!s->opts.two_shot_min_bytes)
                s->opts.two_shot_min_bytes = world >= 4 ? 4096 : 256 * 1024;
        if (!s->opts.chunk_elems)
                s->opts.chunk_elems = 1u << 20;
        s->opts.chunk_elems = (s->opts.chunk_elems + 31) & ~(size_t) 31;
        if (world == 1) {
                *ret = &s->base;
                return 0;
        }
        s->size = HEADER_BYTES + (((size_t) world * LINE + 4095) & ~(size_t) 4095) +
                  (2 * (size_t) world + 2) * s->opts.chunk_elems * sizeof(float);

        if (rank == 0) {
                fd = memfd_create("ringmaster-engine-allreduce", MFD_CLOEXEC);
                if (fd < 0) {
                        r = -errno;
                        snprintf(errbuf, errsize, "memfd_create: %s", strerror(-r));
                        goto fail;
                }
                if (ftruncate(fd, (off_t) s->size) < 0) {
                        r = -errno;
                        snprintf(errbuf, errsize, "sizing the all-reduce area to %zu bytes: %s", s->size, strerror(-r));
                        goto fail;
                }
#ifdef HAVE_POSIX_FALLOCATE
                /* Reserve the pages now: a full tmpfs is an error here, not a SIGBUS later. */
                r = posix_fallocate(fd, 0, (off_t) s->size);
                if (r != 0 && r != EOPNOTSUPP) {
                        snprintf(errbuf, errsize, "reserving %zu bytes for the all-reduce area: %s", s->size,
                                 strerror(r));
                        r = -r;
                        goto fail;
                }
#endif
        }
        if (rank == 0) {
                r = rm_fd_share(w, FD_KEY, fd, &rec.token);
                if (r < 0) {
                        snprintf(errbuf, errsize, "sharing the all-reduce area: %s", rm_last_error());
                        goto fail;
                }
                rec.size = s->size;
                rec.chunk_elems = s->opts.chunk_elems;
        }
        s->map = fd >= 0 ? mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : NULL;
        if (rank == 0) {
                struct area_header *h;
                if (s->map == MAP_FAILED) {
                        r = -errno;
                        s->map = NULL;
                        snprintf(errbuf, errsize, "mmap: %s", strerror(-r));
                        goto fail;
                }
                h = (struct area_header *) s->map;
                h->world = (uint32_t) world;
                h->chunk_elems = s->opts.chunk_elems;
                atomic_store_explicit((_Atomic uint64_t *) &h->magic, AREA_MAGIC, memory_order_release);
                int64_t g = shmring_kv_put(rm_worker_segment(w), RM_KV_TABLE, KV_KEY, &rec, sizeof(rec));
                if (g < 0) {
                        r = (int) g;
                        snprintf(errbuf, errsize, "publishing the all-reduce area: %s", strerror(-r));
                        goto fail;
                }
        } else {
                ssize_t n = shmring_kv_get(rm_worker_segment(w), RM_KV_TABLE, KV_KEY, 0, &rec, sizeof(rec), NULL,
                                           opts->timeout_ns > 0 ? opts->timeout_ns : SHMRING_INFINITE);
                if (n != (ssize_t) sizeof(rec)) {
                        r = n < 0 ? (int) n : -EBADMSG;
                        snprintf(errbuf, errsize, "waiting for rank 0's all-reduce area: %s",
                                 r == -EOWNERDEAD ? "rank 0 died" : strerror(-r));
                        goto fail;
                }
                if (rec.size != s->size || rec.chunk_elems != s->opts.chunk_elems) {
                        r = -EINVAL;
                        snprintf(errbuf, errsize,
                                 "rank 0's all-reduce area is %" PRIu64 " bytes with chunks of %" PRIu64
                                 " elements, this rank expects %zu and %zu: start every rank with the same options",
                                 rec.size, rec.chunk_elems, s->size, s->opts.chunk_elems);
                        goto fail;
                }
                r = rm_fd_fetch(w, 0, FD_KEY, rec.token, opts->timeout_ns > 0 ? opts->timeout_ns : RM_INFINITE, &fd);
                if (r < 0) {
                        snprintf(errbuf, errsize, "fetching rank 0's all-reduce area: %s", rm_last_error());
                        goto fail;
                }
                s->map = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (s->map == MAP_FAILED) {
                        r = -errno;
                        s->map = NULL;
                        snprintf(errbuf, errsize, "mmap: %s", strerror(-r));
                        goto fail;
                }
                struct area_header *h = (struct area_header *) s->map;
                if (atomic_load_explicit((_Atomic uint64_t *) &h->magic, memory_order_acquire) != AREA_MAGIC ||
                    h->world != (uint32_t) world) {
                        r = -EBADMSG;
                        snprintf(errbuf, errsize, "the all-reduce area is not one for %d ranks", world);
                        goto fail;
                }
        }
        close(fd);
        fd = -1;
        s->in = (float *) (s->map + HEADER_BYTES + (((size_t) world * LINE + 4095) & ~(size_t) 4095));
        s->res = s->in + 2 * (size_t) world * s->opts.chunk_elems;
        *ret = &s->base;
        return 0;
fail:
        if (fd >= 0)
                close(fd);
        shm_destroy(&s->base);
        return r;
}
