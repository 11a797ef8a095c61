/* SPDX-License-Identifier: MIT */
/*
 * Key-value tables: table specs, shmring_kv_put, shmring_kv_get and
 * shmring_kv_del with their error paths, waiting for a key or a newer
 * value, a dead owner (-EOWNERDEAD), a lock left by a dead holder, and
 * lock-free reads racing with puts that never see a torn value.
 *
 * SHMRING_KV_ROUNDS sets the puts of the race (default 20000).
 */
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "layout.h"
#include "payload.h"
#include "tap.h"

#define SECONDS(n) ((int64_t) (n) * INT64_C(1000000000))
#define ENTRIES 4
#define VALUE 100

static const struct shmring_channel_spec channel = {
        .name = "bc", .kind = SHMRING_BROADCAST, .slots = 4, .slot_size = 64, .max_ports = 1,
};
static const struct shmring_table_spec table = { .name = "ids", .entries = ENTRIES, .value_size = VALUE };

static struct shmring *make_segment(void) {
        struct shmring_spec spec = { .run_id = tap_run_id(), .n_channels = 1, .channels = &channel,
                                     .n_tables = 1, .tables = &table };
        struct shmring *s = NULL;

        CHECK_OK(shmring_create(&spec, &s));
        return s;
}

static void test_table_specs(void) {
        struct shmring_table_spec t[2];
        struct shmring_channel_spec c = channel;
        struct shmring_spec spec = { .run_id = tap_run_id(), .n_channels = 1, .channels = &c, .n_tables = 1,
                                     .tables = t };
        struct shmring *s;
        uint64_t size;
        static const struct {
                struct shmring_table_spec t;
                int err;
        } cases[] = {
                { { .name = "x", .entries = 0, .value_size = 8 }, -EINVAL },
                { { .name = "x", .entries = 65537, .value_size = 8 }, -EINVAL },
                { { .name = "x", .entries = 1, .value_size = 0 }, -EINVAL },
                { { .name = "x", .entries = 1, .value_size = 65537 }, -EINVAL },
                { { .name = "", .entries = 1, .value_size = 8 }, -EINVAL },
                { { .name = NULL, .entries = 1, .value_size = 8 }, -EINVAL },
                { { .name = "a b", .entries = 1, .value_size = 8 }, -EINVAL },
                { { .name = "bc", .entries = 1, .value_size = 8 }, -EEXIST },     /* a channel's name */
                { { .name = "x", .entries = 65536, .value_size = 1 }, 0 },
                { { .name = "x", .entries = 1, .value_size = 65536 }, 0 },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int r;
                t[0] = cases[i].t;
                memset(&size, SENTINEL, sizeof(size));
                r = shmring_spec_size(&spec, &size);
                if (r != cases[i].err)
                        tap_fail(__FILE__, __LINE__, "table spec %zu: %s, expected %s", i,
                                 r < 0 ? tap_errno_name(r) : "success", cases[i].err ? tap_errno_name(cases[i].err) : "success");
                if (r < 0) {
                        CHECK(tap_all_bytes(&size, sizeof(size), SENTINEL));
                        memset(&s, SENTINEL, sizeof(s));
                        CHECK_ERR(shmring_create(&spec, &s), cases[i].err);
                        CHECK(tap_all_bytes(&s, sizeof(s), SENTINEL));
                }
        }
        t[0] = table;
        t[1] = table;
        spec.n_tables = 2;
        CHECK_ERR(shmring_spec_size(&spec, &size), -EEXIST);
        spec.tables = NULL;
        CHECK_ERR(shmring_spec_size(&spec, &size), -EINVAL);

        /* A segment of tables only. */
        spec = (struct shmring_spec) { .run_id = tap_run_id(), .n_tables = 1, .tables = &table };
        s = NULL;
        CHECK_OK(shmring_create(&spec, &s));
        CHECK_OK(shmring_kv_put(s, "ids", "k", "v", 1));
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

static void test_put_get_del(void) {
        struct shmring *s = make_segment(), *o = NULL;
        struct shmring_kv_info info;
        char buf[VALUE + 10], key[SHMRING_KEY_MAX + 2];
        int64_t g1, g2, g3;

        /* Put, get, replace: generations grow. */
        g1 = shmring_kv_put(s, "ids", "nccl.id/0", "first", 5);
        CHECK(g1 > 0);
        memset(&info, 0, sizeof(info));
        CHECK_EQ(shmring_kv_get(s, "ids", "nccl.id/0", 0, buf, sizeof(buf), &info, 0), 5);
        CHECK(memcmp(buf, "first", 5) == 0);
        CHECK_EQ(info.generation, g1);
        CHECK_EQ(info.owner_pid, getpid());
        CHECK_EQ(info.len, 5);
        g2 = shmring_kv_put(s, "ids", "nccl.id/0", "second!", 7);
        CHECK(g2 > g1);
        CHECK_EQ(shmring_kv_get(s, "ids", "nccl.id/0", 0, buf, sizeof(buf), NULL, 0), 7);
        CHECK(memcmp(buf, "second!", 7) == 0);
        CHECK_EQ(shmring_kv_get(s, "ids", "nccl.id/0", (uint64_t) g2, buf, sizeof(buf), &info, 0), 7);
        CHECK_EQ(info.generation, g2);

        /* A newer value than there is: not yet. */
        memset(&info, SENTINEL, sizeof(info));
        CHECK_ERR(shmring_kv_get(s, "ids", "nccl.id/0", (uint64_t) g2 + 1, buf, sizeof(buf), &info, 0), -EAGAIN);
        CHECK_ERR(shmring_kv_get(s, "ids", "nccl.id/0", (uint64_t) g2 + 1, buf, sizeof(buf), &info, 20 * 1000 * 1000),
                  -ETIMEDOUT);
        /* A key that is not there. */
        CHECK_ERR(shmring_kv_get(s, "ids", "nope", 0, buf, sizeof(buf), &info, 0), -EAGAIN);
        CHECK_ERR(shmring_kv_get(s, "ids", "nope", 0, buf, sizeof(buf), &info, 20 * 1000 * 1000), -ETIMEDOUT);
        /* Too small a buffer. */
        CHECK_ERR(shmring_kv_get(s, "ids", "nccl.id/0", 0, buf, 6, &info, 0), -EMSGSIZE);
        CHECK_ERR(shmring_kv_get(s, "ids", "nccl.id/0", 0, NULL, 0, &info, SECONDS(5)), -EMSGSIZE);
        CHECK(tap_all_bytes(&info, sizeof(info), SENTINEL));

        /* Empty values, full-size values, too large ones. */
        CHECK_OK(shmring_kv_put(s, "ids", "empty", NULL, 0));
        CHECK_EQ(shmring_kv_get(s, "ids", "empty", 0, NULL, 0, NULL, 0), 0);
        memset(buf, 'v', sizeof(buf));
        CHECK_OK(shmring_kv_put(s, "ids", "full", buf, VALUE));
        CHECK_ERR(shmring_kv_put(s, "ids", "full", buf, VALUE + 1), -EMSGSIZE);
        CHECK_ERR(shmring_kv_put(s, "ids", "other", buf, SIZE_MAX), -EMSGSIZE);
        memset(buf, 0, sizeof(buf));
        CHECK_EQ(shmring_kv_get(s, "ids", "full", 0, buf, VALUE, NULL, 0), VALUE);
        CHECK(tap_all_bytes(buf, VALUE, 'v'));

        /* Four entries: a fifth key does not fit, a replacement does. */
        CHECK_OK(shmring_kv_put(s, "ids", "fourth", "4", 1));
        CHECK_ERR(shmring_kv_put(s, "ids", "fifth", "5", 1), -ENOSPC);
        g3 = shmring_kv_put(s, "ids", "fourth", "44", 2);
        CHECK(g3 > g2);
        /* Deleting frees an entry. */
        CHECK_OK(shmring_kv_del(s, "ids", "fourth"));
        CHECK_ERR(shmring_kv_del(s, "ids", "fourth"), -ENOENT);
        CHECK_ERR(shmring_kv_get(s, "ids", "fourth", 0, buf, sizeof(buf), NULL, 0), -EAGAIN);
        CHECK_OK(shmring_kv_put(s, "ids", "fifth", "5", 1));

        /* Names and keys. */
        memset(key, 'k', sizeof(key));
        key[SHMRING_KEY_MAX + 1] = '\0';
        CHECK_ERR(shmring_kv_put(s, "ids", key, "x", 1), -EINVAL);   /* 64 characters */
        CHECK_ERR(shmring_kv_get(s, "ids", key, 0, buf, sizeof(buf), NULL, 0), -EINVAL);
        CHECK_ERR(shmring_kv_del(s, "ids", key), -EINVAL);
        key[SHMRING_KEY_MAX] = '\0';
        CHECK_OK(shmring_kv_del(s, "ids", "fifth"));
        CHECK_OK(shmring_kv_put(s, "ids", key, "x", 1));            /* 63 */
        CHECK_EQ(shmring_kv_get(s, "ids", key, 0, buf, sizeof(buf), NULL, 0), 1);
        static const char *const bad_keys[] = { "", "a b", "tab\t", "del\x7f", "hi\xc3\xa9", "new\nline" };
        for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
                CHECK_ERR(shmring_kv_put(s, "ids", bad_keys[i], "x", 1), -EINVAL);
                CHECK_ERR(shmring_kv_get(s, "ids", bad_keys[i], 0, buf, sizeof(buf), NULL, 0), -EINVAL);
        }
        CHECK_ERR(shmring_kv_put(s, "ids", NULL, "x", 1), -EINVAL);
        CHECK_ERR(shmring_kv_put(s, "ids", "k", NULL, 1), -EINVAL);
        CHECK_ERR(shmring_kv_get(s, "ids", "k", 0, NULL, 1, NULL, 0), -EINVAL);
        CHECK_ERR(shmring_kv_put(s, NULL, "k", "x", 1), -EINVAL);
        CHECK_ERR(shmring_kv_put(NULL, "ids", "k", "x", 1), -EINVAL);
        CHECK_ERR(shmring_kv_get(NULL, "ids", "k", 0, buf, sizeof(buf), NULL, 0), -EINVAL);
        CHECK_ERR(shmring_kv_del(NULL, "ids", "k"), -EINVAL);
        CHECK_ERR(shmring_kv_put(s, "nope", "k", "x", 1), -ENOENT);
        CHECK_ERR(shmring_kv_put(s, "bc", "k", "x", 1), -ENOENT);     /* a channel, not a table */
        {
                struct shmring_tx *tx;
                struct shmring_rx *rx;
                CHECK_ERR(shmring_tx_open(s, "ids", NULL, &tx), -ENOENT);   /* a table, not a channel */
                CHECK_ERR(shmring_rx_open(s, "ids", NULL, &rx), -ENOENT);
        }
        CHECK_ERR(shmring_kv_get(s, "nope", "k", 0, buf, sizeof(buf), NULL, 0), -ENOENT);
        CHECK_ERR(shmring_kv_del(s, "nope", "k"), -ENOENT);

        /* An observer reads but does not write. */
        CHECK_OK(shmring_attach(shmring_name(s), SHMRING_ATTACH_OBSERVER, &o));
        CHECK_EQ(shmring_kv_get(o, "ids", "nccl.id/0", 0, buf, sizeof(buf), NULL, 0), 7);
        CHECK_ERR(shmring_kv_put(o, "ids", "k", "x", 1), -EPERM);
        CHECK_ERR(shmring_kv_del(o, "ids", "nccl.id/0"), -EPERM);
        o = shmring_close(o);

        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

/* A reader waiting in another process for a key, then for a newer value of it. */
static void test_wait(void) {
        struct shmring *s = make_segment();
        char name[SHMRING_NAME_MAX];
        int ready[2];
        pid_t pid;
        int64_t g;

        snprintf(name, sizeof(name), "%s", shmring_name(s));
        tap_pipe(ready);
        pid = tap_fork();
        if (pid == 0) {
                struct shmring *c = NULL;
                struct shmring_kv_info info;
                char buf[VALUE];
                CHECK_OK(shmring_attach(name, 0, &c));
                tap_signal(ready[1]);
                CHECK_EQ(shmring_kv_get(c, "ids", "rank0", 0, buf, sizeof(buf), &info, SECONDS(30)), 3);
                CHECK(memcmp(buf, "one", 3) == 0);
                CHECK_EQ(info.owner_pid, getppid());
                tap_signal(ready[1]);
                CHECK_EQ(shmring_kv_get(c, "ids", "rank0", info.generation + 1, buf, sizeof(buf), &info, SECONDS(30)), 3);
                CHECK(memcmp(buf, "two", 3) == 0);
                c = shmring_close(c);
                _exit(0);
        }
        tap_await(ready[0], 30000);
        tap_sleep_ms(50);
        CHECK_OK(shmring_kv_put(s, "ids", "unrelated", "u", 1));
        g = shmring_kv_put(s, "ids", "rank0", "one", 3);
        CHECK(g > 0);
        tap_await(ready[0], 30000);
        tap_sleep_ms(50);
        CHECK_OK(shmring_kv_put(s, "ids", "rank0", "two", 3));
        CHECK_CHILD_OK(pid);
        close(ready[0]);
        close(ready[1]);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

/* A value whose owner died says so; a new put by a live process replaces it. */
static void test_dead_owner(void) {
        struct shmring *s = make_segment();
        struct shmring_kv_info info;
        char name[SHMRING_NAME_MAX], buf[VALUE];
        int ready[2];
        pid_t pid;

        snprintf(name, sizeof(name), "%s", shmring_name(s));
        tap_pipe(ready);
        for (int how = 0; how < 2; how++) {
                pid = tap_fork();
                if (pid == 0) {
                        struct shmring *c = NULL;
                        CHECK_OK(shmring_attach(name, 0, &c));
                        CHECK_OK(shmring_kv_put(c, "ids", "handle", "gone", 4));
                        if (how == 0) {
                                c = shmring_close(c);   /* detaches cleanly */
                                _exit(0);
                        }
                        tap_signal(ready[1]);
                        for (;;)
                                pause();
                }
                if (how == 0) {
                        CHECK_CHILD_OK(pid);
                } else {
                        tap_await(ready[0], 30000);
                        CHECK_EQ(shmring_kv_get(s, "ids", "handle", 0, buf, sizeof(buf), NULL, 0), 4);
                        tap_kill(pid);
                        (void) tap_wait(pid);
                }
                memset(&info, SENTINEL, sizeof(info));
                CHECK_ERR(shmring_kv_get(s, "ids", "handle", 0, buf, sizeof(buf), &info, 0), -EOWNERDEAD);
                CHECK_ERR(shmring_kv_get(s, "ids", "handle", 0, buf, sizeof(buf), &info, SECONDS(5)), -EOWNERDEAD);
                CHECK(tap_all_bytes(&info, sizeof(info), SENTINEL));
                CHECK_OK(shmring_kv_put(s, "ids", "handle", "back", 4));
                CHECK_EQ(shmring_kv_get(s, "ids", "handle", 0, buf, sizeof(buf), &info, 0), 4);
                CHECK_EQ(info.owner_pid, getpid());
                CHECK_OK(shmring_kv_del(s, "ids", "handle"));
        }
        close(ready[0]);
        close(ready[1]);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

/* The table lock held by a peer that is gone is taken over, not waited on for 10 s. */
static void test_dead_lock_holder(void) {
        struct shmring *s = make_segment();
        struct shm_header *h;
        struct shm_table *t = NULL;
        struct stat st;
        void *base;
        int fd;
        uint64_t t0;

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
        CHECK_EQ(t->entries, ENTRIES);

        /* Peer record 40 was never claimed: its owner is no one alive. */
        atomic_store(&t->lock, SHM_OWNER(40, 7));
        t0 = tap_now_ns();
        CHECK_OK(shmring_kv_put(s, "ids", "k", "v", 1));
        CHECK(tap_now_ns() - t0 < SECONDS(2));
        CHECK_EQ(atomic_load(&t->lock), 0);

        munmap(base, (size_t) st.st_size);
        close(fd);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

/*
 * Two writers put self-checking values of changing lengths under two keys
 * while two readers read them without locks: every value read is whole.
 * The writers go on until both readers have read `rounds` values.
 */
static void test_race(unsigned rounds) {
        struct shmring *s = make_segment();
        _Atomic unsigned *readers_done = mmap(NULL, sizeof(*readers_done), PROT_READ | PROT_WRITE,
                                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        char name[SHMRING_NAME_MAX];
        pid_t pids[4];

        CHECK(readers_done != MAP_FAILED);
        atomic_store(readers_done, 0);
        snprintf(name, sizeof(name), "%s", shmring_name(s));
        for (int i = 0; i < 4; i++) {
                pids[i] = tap_fork();
                if (pids[i] == 0) {
                        struct shmring *c = NULL;
                        const char *key = i % 2 ? "odd" : "even";
                        unsigned char v[VALUE];
                        CHECK_OK(shmring_attach(name, 0, &c));
                        if (i < 2) {
                                for (uint64_t n = 0; n < rounds || atomic_load(readers_done) < 2; n++) {
                                        size_t len = MSG_MIN + (size_t) (msg_mix(n) % (VALUE - MSG_MIN + 1));
                                        msg_fill(v, len, (uint32_t) i, n);
                                        CHECK_OK(shmring_kv_put(c, "ids", key, v, len));
                                }
                        } else {
                                uint64_t last = 0;
                                for (unsigned n = 0; n < rounds; n++) {
                                        struct shmring_kv_info info;
                                        struct msg_header hd;
                                        ssize_t len = shmring_kv_get(c, "ids", key, 0, v, sizeof(v), &info, SECONDS(30));
                                        const char *bad;
                                        CHECK_OK(len);
                                        CHECK_EQ(info.len, len);
                                        memcpy(&hd, v, sizeof(hd));
                                        bad = msg_check(v, (size_t) len, NULL, (uint32_t) (i - 2), hd.seq);
                                        if (bad)
                                                tap_fail(__FILE__, __LINE__, "value %" PRIu64 " of %s: %s", hd.seq, key,
                                                         bad);
                                        CHECK(info.generation >= last);
                                        last = info.generation;
                                }
                                atomic_fetch_add(readers_done, 1);
                        }
                        c = shmring_close(c);
                        _exit(0);
                }
        }
        for (int i = 0; i < 4; i++)
                CHECK_CHILD_OK(pids[i]);
        munmap((void *) readers_done, sizeof(*readers_done));
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

int main(void) {
        tap_init("test-kv");
        test_table_specs();
        test_put_get_del();
        test_wait();
        test_dead_owner();
        test_dead_lock_holder();
        test_race((unsigned) tap_env_u64("SHMRING_KV_ROUNDS", 20000));
        return tap_done();
}
