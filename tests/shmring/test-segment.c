/* SPDX-License-Identifier: MIT */
/*
 * Segments: shmring_spec_size, shmring_create (and its spec validation),
 * shmring_attach, shmring_close, shmring_unlink, shmring_unlink_name,
 * shmring_name, shmring_get_info and shmring_channel_info, with their error
 * paths and ret_ parameters left untouched on failure.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include "layout.h"
#include "tap.h"

static const struct shmring_channel_spec good_channels[] = {
        { .name = "sched.to-workers", .kind = SHMRING_BROADCAST, .slots = 64, .slot_size = 200,
          .overflow_size = 1 << 16, .max_ports = 7 },
        { .name = "results_0", .kind = SHMRING_QUEUE, .slots = 16, .slot_size = 64,
          .overflow_size = 0, .max_ports = 8 },
};

static struct shmring_spec good_spec(const char *run_id) {
        return (struct shmring_spec) {
                .run_id = run_id,
                .generation = 42,
                .max_peers = 0,
                .n_channels = 2,
                .channels = good_channels,
        };
}

/* spec_size and create must both refuse spec with err, leaving ret_ alone. */
static void check_bad_spec(int line, const struct shmring_spec *spec, int err) {
        uint64_t size;
        struct shmring *s;
        int r;

        memset(&size, SENTINEL, sizeof(size));
        r = shmring_spec_size(spec, &size);
        if (r != err)
                tap_fail(__FILE__, line, "shmring_spec_size: %s, expected %s", r < 0 ? tap_errno_name(r) : "success",
                         tap_errno_name(err));
        if (!tap_all_bytes(&size, sizeof(size), SENTINEL))
                tap_fail(__FILE__, line, "shmring_spec_size wrote ret_size on failure");
        memset(&s, SENTINEL, sizeof(s));
        r = shmring_create(spec, &s);
        if (r != err)
                tap_fail(__FILE__, line, "shmring_create: %s, expected %s", r < 0 ? tap_errno_name(r) : "success",
                         tap_errno_name(err));
        if (!tap_all_bytes(&s, sizeof(s), SENTINEL))
                tap_fail(__FILE__, line, "shmring_create wrote ret on failure");
}

static void check_good_spec(int line, const struct shmring_spec *spec, bool create) {
        uint64_t size = 0;
        struct shmring *s = NULL;
        int r;

        r = shmring_spec_size(spec, &size);
        if (r < 0)
                tap_fail(__FILE__, line, "shmring_spec_size: %s", tap_errno_name(r));
        if (size == 0)
                tap_fail(__FILE__, line, "shmring_spec_size gave 0");
        if (!create)
                return;
        r = shmring_create(spec, &s);
        if (r < 0)
                tap_fail(__FILE__, line, "shmring_create: %s", tap_errno_name(r));
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

static void test_spec_validation(void) {
        struct shmring_channel_spec ch[2];
        struct shmring_spec spec;
        char long_id[SHMRING_RUN_ID_MAX + 2];
        char long_name[SHMRING_CHANNEL_NAME_MAX + 2];
        const char *run_id = tap_run_id();

#define RESET()                                                                 \
        do {                                                                    \
                memcpy(ch, good_channels, sizeof(ch));                          \
                spec = good_spec(run_id);                                       \
                spec.channels = ch;                                             \
        } while (0)

        RESET();
        check_good_spec(__LINE__, &spec, true);

        check_bad_spec(__LINE__, NULL, -EINVAL);
        RESET();
        CHECK_ERR(shmring_spec_size(&spec, NULL), -EINVAL);
        CHECK_ERR(shmring_create(&spec, NULL), -EINVAL);

        /* run ids */
        static const char *const bad_ids[] = { "", "a/b", "a b", "tab\t", "new\nline", "caf\xc3\xa9", "semi;colon",
                                               "star*", "%s" };
        for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
                RESET();
                spec.run_id = bad_ids[i];
                check_bad_spec(__LINE__, &spec, -EINVAL);
        }
        RESET();
        spec.run_id = NULL;
        check_bad_spec(__LINE__, &spec, -EINVAL);
        memset(long_id, 'x', sizeof(long_id));
        long_id[SHMRING_RUN_ID_MAX + 1] = '\0';
        RESET();
        spec.run_id = long_id; /* 65 characters */
        check_bad_spec(__LINE__, &spec, -EINVAL);
        /* 64 characters is the limit, and it must still make a name that fits. */
        memcpy(long_id, run_id, strlen(run_id));
        long_id[SHMRING_RUN_ID_MAX] = '\0';
        RESET();
        spec.run_id = long_id;
        check_good_spec(__LINE__, &spec, true);
        RESET();
        spec.run_id = "Az09._-";
        check_good_spec(__LINE__, &spec, false);

        /* channel list */
        RESET();
        spec.channels = NULL;
        check_bad_spec(__LINE__, &spec, -EINVAL);
        {
                /* As many channels as the directory has entries leaves no room for the peers. */
                struct shmring_channel_spec *many = calloc(SHM_MAX_REGIONS, sizeof(*many));
                char (*names)[16] = calloc(SHM_MAX_REGIONS, sizeof(*names));
                CHECK(many && names);
                for (unsigned i = 0; i < SHM_MAX_REGIONS; i++) {
                        snprintf(names[i], sizeof(names[i]), "c%u", i);
                        many[i] = (struct shmring_channel_spec) { .name = names[i], .kind = SHMRING_QUEUE,
                                                                  .slots = 2, .slot_size = 8, .max_ports = 1 };
                }
                RESET();
                spec.channels = many;
                spec.n_channels = SHM_MAX_REGIONS;
                check_bad_spec(__LINE__, &spec, -EINVAL);
                free(many);
                free(names);
        }

        /* channel names */
        static const char *const bad_names[] = { "", "a/b", "with space", "x\xff", "q?" };
        for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
                RESET();
                ch[1].name = bad_names[i];
                check_bad_spec(__LINE__, &spec, -EINVAL);
        }
        RESET();
        ch[0].name = NULL;
        check_bad_spec(__LINE__, &spec, -EINVAL);
        memset(long_name, 'n', sizeof(long_name));
        long_name[SHMRING_CHANNEL_NAME_MAX + 1] = '\0';
        RESET();
        ch[0].name = long_name; /* 32 characters */
        check_bad_spec(__LINE__, &spec, -EINVAL);
        long_name[SHMRING_CHANNEL_NAME_MAX] = '\0';
        RESET();
        ch[0].name = long_name; /* 31 characters */
        check_good_spec(__LINE__, &spec, true);
        RESET();
        ch[1].name = ch[0].name; /* two channels of one name */
        check_bad_spec(__LINE__, &spec, -EEXIST);

        /* kinds */
        RESET();
        ch[0].kind = 0;
        check_bad_spec(__LINE__, &spec, -EINVAL);
        RESET();
        ch[1].kind = 3;
        check_bad_spec(__LINE__, &spec, -EINVAL);

        /* slots: a power of two, 2 .. 2^24 */
        static const uint32_t bad_slots[] = { 0, 1, 3, 6, 100, 1000, (1u << 24) + 1, 1u << 25, 3u << 23, UINT32_MAX };
        for (size_t i = 0; i < sizeof(bad_slots) / sizeof(bad_slots[0]); i++) {
                RESET();
                ch[0].slots = bad_slots[i];
                check_bad_spec(__LINE__, &spec, -EINVAL);
        }
        RESET();
        ch[0].slots = 2;
        check_good_spec(__LINE__, &spec, true);
        RESET();
        ch[1].slots = 1u << 24;
        ch[1].slot_size = 8;
        ch[1].max_ports = 1;
        check_good_spec(__LINE__, &spec, false);

        /* slot sizes: 1 .. a slot (header included) of at most SHM_MAX_SLOT_STRIDE */
        RESET();
        ch[0].slot_size = 0;
        check_bad_spec(__LINE__, &spec, -EINVAL);
        RESET();
        ch[0].slot_size = SHM_MAX_SLOT_STRIDE;
        check_bad_spec(__LINE__, &spec, -EINVAL);
        RESET();
        ch[0].slot_size = UINT32_MAX;
        check_bad_spec(__LINE__, &spec, -EINVAL);
        RESET();
        ch[0].slot_size = SHM_MAX_SLOT_STRIDE - 4096;
        ch[0].slots = 2;
        check_good_spec(__LINE__, &spec, false);

        /* ports: 1 .. 1024 */
        RESET();
        ch[0].max_ports = 0;
        check_bad_spec(__LINE__, &spec, -EINVAL);
        RESET();
        ch[1].max_ports = 0;
        check_bad_spec(__LINE__, &spec, -EINVAL);
        RESET();
        ch[1].max_ports = 1025;
        check_bad_spec(__LINE__, &spec, -EINVAL);
        RESET();
        ch[0].max_ports = 1024;
        ch[1].max_ports = 1;
        check_good_spec(__LINE__, &spec, true);

        /* peers */
        RESET();
        spec.max_peers = SHM_MAX_PEERS + 1;
        check_bad_spec(__LINE__, &spec, -EINVAL);

        /* sizes that do not fit in 64 bits, or in anything */
        RESET();
        ch[0].overflow_size = UINT64_MAX - 4096;
        check_bad_spec(__LINE__, &spec, -EINVAL);
        {
                /* Valid, and far too big for any /dev/shm: sized, and refused at create. */
                uint64_t size = 0;
                struct shmring *s;
                int r;
                RESET();
                ch[1].slots = 1u << 24;
                ch[1].slot_size = SHM_MAX_SLOT_STRIDE - 64;
                ch[1].max_ports = 1024;
                CHECK_OK(shmring_spec_size(&spec, &size));
                CHECK(size >= (UINT64_C(1) << 54));
                memset(&s, SENTINEL, sizeof(s));
                r = shmring_create(&spec, &s);
                if (r != -ENOSPC && r != -EFBIG)
                        tap_fail(__FILE__, __LINE__, "create of %" PRIu64 " bytes: %s, expected ENOSPC or EFBIG",
                                 size, r < 0 ? tap_errno_name(r) : "success");
                CHECK(tap_all_bytes(&s, sizeof(s), SENTINEL));
        }
#undef RESET
}

static void test_create_and_info(void) {
        const char *run_id = tap_run_id();
        struct shmring_spec spec = good_spec(run_id);
        struct shmring *s = NULL, *t = NULL;
        struct shmring_info info;
        struct shmring_channel_info ci;
        uint64_t size;
        const char *name;
        struct stat st;
        char name_copy[SHMRING_NAME_MAX];

        CHECK_OK(shmring_spec_size(&spec, &size));
        CHECK_OK(shmring_create(&spec, &s));
        CHECK(s);

        name = shmring_name(s);
        CHECK(name);
        CHECK(strlen(name) < SHMRING_NAME_MAX);
        CHECK(strstr(name, run_id));
        CHECK(strstr(name, SHM_NAME_PREFIX));
        snprintf(name_copy, sizeof(name_copy), "%s", name);

        /* A regular file of this user, mode 0600, with all of its memory there already. */
        CHECK_SYS(lstat(tap_shm_path(name), &st));
        CHECK(S_ISREG(st.st_mode));
        CHECK_EQ(st.st_mode & 07777, 0600);
        CHECK_EQ(st.st_uid, geteuid());
        CHECK_EQ(st.st_size, size);
        CHECK((uint64_t) st.st_blocks * 512 >= size);

        /* The same run id again gives another, unpredictable name. */
        CHECK_OK(shmring_create(&spec, &t));
        CHECK(strcmp(shmring_name(t), name) != 0);
        CHECK(strstr(shmring_name(t), run_id));
        CHECK_OK(shmring_unlink(t));
        t = shmring_close(t);

        CHECK_OK(shmring_get_info(s, &info));
        CHECK_EQ(info.size, size);
        CHECK_EQ(info.generation, 42);
        CHECK_EQ(info.creator_pid, getpid());
        CHECK_EQ(info.creator_uid, geteuid());
        CHECK_EQ(info.max_peers, 64); /* 0 means 64 */
        CHECK_EQ(info.n_channels, 2);
        CHECK(strcmp(info.run_id, run_id) == 0);

        for (uint32_t i = 0; i < 2; i++) {
                const struct shmring_channel_spec *c = &good_channels[i];
                memset(&ci, 0, sizeof(ci));
                CHECK_OK(shmring_channel_info(s, i, &ci));
                CHECK(strcmp(ci.name, c->name) == 0);
                CHECK_EQ(ci.kind, c->kind);
                CHECK_EQ(ci.slots, c->slots);
                CHECK(ci.slot_size >= c->slot_size);
                CHECK(ci.slot_size < c->slot_size + 64);
                CHECK(ci.overflow_size >= c->overflow_size);
                CHECK_EQ(ci.max_ports, c->max_ports);
                CHECK(ci.max_message >= ci.slot_size);
                if (c->overflow_size == 0)
                        CHECK_EQ(ci.max_message, ci.slot_size);
                else
                        CHECK(ci.max_message > ci.slot_size);
                CHECK(ci.max_message <= ci.slot_size + ci.overflow_size);
        }

        /* Errors leave ret_ alone. */
        memset(&ci, SENTINEL, sizeof(ci));
        CHECK_ERR(shmring_channel_info(s, 2, &ci), -ENOENT);
        CHECK_ERR(shmring_channel_info(s, UINT32_MAX, &ci), -ENOENT);
        CHECK(tap_all_bytes(&ci, sizeof(ci), SENTINEL));
        CHECK_ERR(shmring_channel_info(NULL, 0, &ci), -EINVAL);
        CHECK_ERR(shmring_channel_info(s, 0, NULL), -EINVAL);
        CHECK(tap_all_bytes(&ci, sizeof(ci), SENTINEL));
        memset(&info, SENTINEL, sizeof(info));
        CHECK_ERR(shmring_get_info(NULL, &info), -EINVAL);
        CHECK(tap_all_bytes(&info, sizeof(info), SENTINEL));
        CHECK_ERR(shmring_get_info(s, NULL), -EINVAL);

        /* A second attach (observer, then a full one) sees the same. */
        CHECK_OK(shmring_get_info(s, &info));
        {
                struct shmring *o = NULL;
                struct shmring_info oi;
                CHECK_OK(shmring_attach(name_copy, SHMRING_ATTACH_OBSERVER, &o));
                CHECK_OK(shmring_get_info(o, &oi));
                CHECK_EQ(oi.size, info.size);
                CHECK_EQ(oi.generation, info.generation);
                CHECK_EQ(oi.creator_pid, info.creator_pid);
                CHECK_EQ(oi.n_channels, info.n_channels);
                CHECK(strcmp(oi.run_id, info.run_id) == 0);
                CHECK(strcmp(shmring_name(o), name_copy) == 0);
                CHECK_OK(shmring_channel_info(o, 1, &ci));
                CHECK(strcmp(ci.name, "results_0") == 0);
                o = shmring_close(o);
                CHECK(!o);
        }

        /* In a child, the way peers attach. */
        {
                pid_t pid = tap_fork();
                if (pid == 0) {
                        struct shmring *c = NULL;
                        struct shmring_info cinfo;
                        CHECK_OK(shmring_attach(name_copy, 0, &c));
                        CHECK_OK(shmring_get_info(c, &cinfo));
                        CHECK_EQ(cinfo.size, size);
                        CHECK_EQ(cinfo.creator_pid, getppid());
                        CHECK_EQ(cinfo.generation, 42);
                        CHECK(strcmp(cinfo.run_id, run_id) == 0);
                        CHECK(strcmp(shmring_name(c), name_copy) == 0);
                        c = shmring_close(c);
                        _exit(0);
                }
                CHECK_CHILD_OK(pid);
        }

        CHECK(shmring_close(NULL) == NULL);
        CHECK_OK(shmring_unlink(s));
        CHECK_ERR(lstat(tap_shm_path(name_copy), &st), -1);
        CHECK_EQ(errno, ENOENT);
        CHECK_ERR(shmring_unlink(s), -ENOENT);
        CHECK_ERR(shmring_unlink_name(name_copy), -ENOENT);
        /* The mapping outlives the name. */
        CHECK_OK(shmring_get_info(s, &info));
        CHECK_OK(shmring_channel_info(s, 0, &ci));
        s = shmring_close(s);
        CHECK(!s);
}

static void test_attach_errors(void) {
        const char *run_id = tap_run_id();
        struct shmring_spec spec = good_spec(run_id);
        struct shmring *s = NULL, *t;
        char name[SHMRING_NAME_MAX], missing[SHMRING_NAME_MAX + 8];

        CHECK_OK(shmring_create(&spec, &s));
        snprintf(name, sizeof(name), "%s", shmring_name(s));

        memset(&t, SENTINEL, sizeof(t));
        snprintf(missing, sizeof(missing), "%sX", name);
        CHECK_ERR(shmring_attach(missing, 0, &t), -ENOENT);
        CHECK_ERR(shmring_attach("/" SHM_NAME_PREFIX "no-such-run-0", SHMRING_ATTACH_OBSERVER, &t), -ENOENT);
        CHECK_ERR(shmring_attach(name + 1, 0, &t), -EINVAL);           /* without its leading slash */
        CHECK_ERR(shmring_attach("/a/b", 0, &t), -EINVAL);
        CHECK(tap_all_bytes(&t, sizeof(t), SENTINEL));
        CHECK_ERR(shmring_attach(NULL, 0, &t), -EINVAL);
        CHECK_ERR(shmring_attach("", 0, &t), -EINVAL);
        CHECK_ERR(shmring_attach("a/b", 0, &t), -EINVAL);
        CHECK_ERR(shmring_attach("../../etc/passwd", 0, &t), -EINVAL);
        CHECK(tap_all_bytes(&t, sizeof(t), SENTINEL));
        CHECK_ERR(shmring_attach(name, 1u << 7, &t), -EINVAL);
        CHECK(tap_all_bytes(&t, sizeof(t), SENTINEL));
        CHECK_ERR(shmring_attach(name, 0, NULL), -EINVAL);
        {
                char too_long[SHMRING_NAME_MAX + 64];
                memset(too_long, 'a', sizeof(too_long) - 1);
                too_long[sizeof(too_long) - 1] = '\0';
                CHECK(shmring_attach(too_long, 0, &t) < 0);
                CHECK(tap_all_bytes(&t, sizeof(t), SENTINEL));
        }

        /* unlink_name refuses what is not a name. */
        CHECK_ERR(shmring_unlink_name(NULL), -EINVAL);
        CHECK_ERR(shmring_unlink_name(""), -EINVAL);
        CHECK_ERR(shmring_unlink_name("a/b"), -EINVAL);
        CHECK_ERR(shmring_unlink(NULL), -EINVAL);

        CHECK_OK(shmring_unlink_name(name));
        CHECK_ERR(shmring_attach(name, 0, &t), -ENOENT);
        s = shmring_close(s);
}

/*
 * max_peers bounds how many processes are attached at once; observers do
 * not count, and a closed peer's record is reused.
 */
static void test_max_peers(void) {
        const char *run_id = tap_run_id();
        struct shmring_spec spec = good_spec(run_id);
        struct shmring *s = NULL;
        char name[SHMRING_NAME_MAX];
        int ready[2], go[2];
        pid_t pid;

        spec.max_peers = 2;
        CHECK_OK(shmring_create(&spec, &s));
        snprintf(name, sizeof(name), "%s", shmring_name(s));
        tap_pipe(ready);
        tap_pipe(go);

        pid = tap_fork();
        if (pid == 0) {
                struct shmring *c = NULL;
                CHECK_OK(shmring_attach(name, 0, &c));
                tap_signal(ready[1]);
                tap_await(go[0], 30000);
                c = shmring_close(c);
                _exit(0);
        }
        tap_await(ready[0], 30000);

        /* The creator and the child fill both records. */
        pid_t third = tap_fork();
        if (third == 0) {
                struct shmring *c, *o = NULL;
                memset(&c, SENTINEL, sizeof(c));
                CHECK_ERR(shmring_attach(name, 0, &c), -EUSERS);
                CHECK(tap_all_bytes(&c, sizeof(c), SENTINEL));
                CHECK_OK(shmring_attach(name, SHMRING_ATTACH_OBSERVER, &o));
                o = shmring_close(o);
                _exit(0);
        }
        CHECK_CHILD_OK(third);

        tap_signal(go[1]);
        CHECK_CHILD_OK(pid);

        /* The child closed: its record is free again. */
        third = tap_fork();
        if (third == 0) {
                struct shmring *c = NULL;
                CHECK_OK(shmring_attach(name, 0, &c));
                c = shmring_close(c);
                _exit(0);
        }
        CHECK_CHILD_OK(third);

        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
        close(ready[0]);
        close(ready[1]);
        close(go[0]);
        close(go[1]);
}

/* An observer maps and validates but opens no ports. */
static void test_observer(void) {
        const char *run_id = tap_run_id();
        struct shmring_spec spec = good_spec(run_id);
        struct shmring *s = NULL, *o = NULL;
        struct shmring_tx *tx;
        struct shmring_rx *rx;

        CHECK_OK(shmring_create(&spec, &s));
        CHECK_OK(shmring_attach(shmring_name(s), SHMRING_ATTACH_OBSERVER, &o));
        memset(&tx, SENTINEL, sizeof(tx));
        memset(&rx, SENTINEL, sizeof(rx));
        CHECK_ERR(shmring_tx_open(o, "sched.to-workers", NULL, &tx), -EPERM);
        CHECK_ERR(shmring_rx_open(o, "sched.to-workers", NULL, &rx), -EPERM);
        CHECK_ERR(shmring_tx_open(o, "results_0", NULL, &tx), -EPERM);
        CHECK_ERR(shmring_rx_open(o, "results_0", NULL, &rx), -EPERM);
        CHECK(tap_all_bytes(&tx, sizeof(tx), SENTINEL));
        CHECK(tap_all_bytes(&rx, sizeof(rx), SENTINEL));
        o = shmring_close(o);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
}

static unsigned count_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        unsigned n = 0;

        CHECK(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

int main(void) {
        unsigned fds;

        tap_init("test-segment");
        fds = count_fds();
        test_spec_validation();
        test_create_and_info();
        test_attach_errors();
        test_max_peers();
        test_observer();
        /* A segment keeps no descriptor open: nothing leaks, nothing is inherited. */
        CHECK_EQ(count_fds(), fds);
        return tap_done();
}
