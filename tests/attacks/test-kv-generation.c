/* SPDX-License-Identifier: MIT */
/*
 * Weaker point: shmring_kv_put() returned the table's shared generation
 * counter as it found it, plus one.  A peer that scribbled the counter
 * (any process of the job can write the segment) made a successful put
 * return a negative number that reads as an errno (-EINVAL).  A put must
 * return a positive generation or a documented error, never a forged one;
 * the value must be stored and readable either way.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include "layout.h"
#include "../shmring/tap.h"

static const struct shmring_table_spec tables[] = {
        { .name = "tab", .entries = 4, .value_size = 64 },
};

int main(void) {
        struct shmring_spec spec = { .n_tables = 1, .tables = tables };
        struct shmring *s = NULL;
        struct shm_table *t = NULL;
        struct shm_header *h;
        struct stat st;
        unsigned char buf[64];
        int64_t gen;
        void *base;
        int fd;

        tap_init("test-kv-generation");
        spec.run_id = tap_run_id();
        CHECK_OK(shmring_create(&spec, &s));
        CHECK(shmring_kv_put(s, "tab", "k", "v1", 2) > 0);

        fd = open(tap_shm_path(shmring_name(s)), O_RDWR | O_CLOEXEC);
        CHECK_SYS(fd);
        CHECK_SYS(fstat(fd, &st));
        base = mmap(NULL, (size_t) st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        CHECK(base != MAP_FAILED);
        h = base;
        for (uint32_t i = 0; i < h->n_regions; i++)
                if (h->regions[i].type == SHM_REGION_TABLE)
                        t = (struct shm_table *) ((unsigned char *) base + h->regions[i].offset);
        CHECK(t);

        /* The next put would return -EINVAL (as int64) if the counter were trusted. */
        t->next_generation = (uint64_t) (int64_t) (-EINVAL - 1);
        gen = shmring_kv_put(s, "tab", "k", "v2", 2);
        tap_note("put after the scribble returned %" PRId64, gen);
        CHECK(gen != -EINVAL);
        CHECK(gen > 0 || gen == -EBADMSG);

        /* INT64_MAX: the next would overflow into the negative range. */
        t->next_generation = (uint64_t) INT64_MAX;
        gen = shmring_kv_put(s, "tab", "k", "v3", 2);
        tap_note("put at INT64_MAX returned %" PRId64, gen);
        CHECK(gen > 0 || gen == -EBADMSG);
        if (gen > 0)
                CHECK_EQ(shmring_kv_get(s, "tab", "k", 0, buf, sizeof(buf), NULL, 0), 2);

        munmap(base, (size_t) st.st_size);
        close(fd);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
        return tap_done();
}
