/* SPDX-License-Identifier: MIT */
/*
 * A 64 MiB /dev/shm, as Docker gives by default: in a private mount
 * namespace with a tmpfs of size=64m on /dev/shm, a segment larger than
 * that fails at shmring_create() with -ENOSPC (never a SIGBUS later), one
 * that fits works end to end, and the space a segment reserved is really
 * taken (a second one that would not fit beside it fails too).
 *
 * In the same private /dev/shm, where no other test's segments live,
 * shmring_cleanup_stale(NULL) removes exactly the stale segments.
 *
 * Skipped (77) where mount namespaces are not permitted.
 */
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "layout.h"
#include "payload.h"
#include "tap.h"

#define MiB (UINT64_C(1) << 20)

/* A spec of one broadcast channel whose overflow area makes the segment about `bytes`. */
static struct shmring_channel_spec one_channel(uint64_t bytes) {
        return (struct shmring_channel_spec) { .name = "big", .kind = SHMRING_BROADCAST, .slots = 4,
                                               .slot_size = 64, .overflow_size = bytes, .max_ports = 1 };
}

static unsigned count_dev_shm(void) {
        DIR *d = opendir("/dev/shm");
        struct dirent *de;
        unsigned n = 0;

        CHECK(d);
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        closedir(d);
        return n;
}

static void test_too_big(void) {
        struct shmring_channel_spec ch = one_channel(80 * MiB);
        struct shmring_spec spec = { .run_id = tap_run_id(), .n_channels = 1, .channels = &ch };
        struct shmring *s;
        uint64_t size;

        CHECK_OK(shmring_spec_size(&spec, &size));
        CHECK(size > 64 * MiB);
        memset(&s, SENTINEL, sizeof(s));
        CHECK_ERR(shmring_create(&spec, &s), -ENOSPC);
        CHECK(tap_all_bytes(&s, sizeof(s), SENTINEL));
        /* Nothing is left behind by the failed create. */
        CHECK_EQ(count_dev_shm(), 0);

        /* Just over. */
        ch = one_channel(64 * MiB);
        CHECK_ERR(shmring_create(&spec, &s), -ENOSPC);
        CHECK_EQ(count_dev_shm(), 0);
}

static void test_fits(void) {
        struct shmring_channel_spec ch = one_channel(40 * MiB);
        struct shmring_spec spec = { .run_id = tap_run_id(), .n_channels = 1, .channels = &ch };
        struct shmring *s = NULL, *t;
        struct shmring_channel_info ci;
        struct shmring_tx *tx = NULL;
        struct shmring_rx *rx = NULL;
        struct statvfs vfs;
        unsigned char *msg, *got;
        uint64_t size;
        char name[SHMRING_NAME_MAX];
        pid_t pid;

        CHECK_OK(shmring_spec_size(&spec, &size));
        CHECK_OK(shmring_create(&spec, &s));
        snprintf(name, sizeof(name), "%s", shmring_name(s));

        /* Its memory is taken now, not at first touch. */
        CHECK_SYS(statvfs("/dev/shm", &vfs));
        CHECK((uint64_t) vfs.f_bfree * vfs.f_bsize <= 64 * MiB - size + MiB);
        memset(&t, SENTINEL, sizeof(t));
        CHECK_ERR(shmring_create(&spec, &t), -ENOSPC);
        CHECK(tap_all_bytes(&t, sizeof(t), SENTINEL));
        CHECK_EQ(count_dev_shm(), 1);

        /* A message as large as the channel takes, from another process, touching all of it. */
        CHECK_OK(shmring_channel_info(s, 0, &ci));
        CHECK(ci.max_message >= 40 * MiB - 4096);
        CHECK_OK(shmring_rx_open(s, "big", NULL, &rx));
        pid = tap_fork();
        if (pid == 0) {
                struct shmring *c = NULL;
                struct shmring_tx *ctx = NULL;
                void *p = NULL;
                CHECK_OK(shmring_attach(name, 0, &c));
                CHECK_OK(shmring_tx_open(c, "big", NULL, &ctx));
                CHECK_OK(shmring_send_reserve(ctx, ci.max_message, &p, 0));
                msg_fill(p, ci.max_message, 1, 0);
                CHECK_OK(shmring_send_commit(ctx));
                ctx = shmring_tx_close(ctx);
                c = shmring_close(c);
                _exit(0);
        }
        CHECK_CHILD_OK(pid);
        got = malloc(ci.max_message);
        CHECK(got);
        CHECK_EQ(shmring_recv(rx, got, ci.max_message, 0), ci.max_message);
        CHECK(msg_check(got, ci.max_message, NULL, 1, 0) == NULL);
        CHECK_ERR(shmring_recv(rx, got, ci.max_message, 0), -EPIPE);

        /* And back the other way, in process. */
        CHECK_OK(shmring_tx_open(s, "big", NULL, &tx));
        msg = malloc(ci.max_message);
        CHECK(msg);
        msg_fill(msg, ci.max_message, 0, 1);
        CHECK_OK(shmring_send(tx, msg, ci.max_message, 0));
        CHECK_EQ(shmring_recv(rx, got, ci.max_message, 0), ci.max_message);
        CHECK(memcmp(got, msg, ci.max_message) == 0);
        free(msg);
        free(got);

        tx = shmring_tx_close(tx);
        rx = shmring_rx_close(rx);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);
        CHECK_EQ(count_dev_shm(), 0);
}

/* Exactly the stale segments go, of every run id; nothing else in /dev/shm does. */
static void test_cleanup_all(void) {
        struct shmring_channel_spec ch = one_channel(4096);
        struct shmring_spec spec = { .n_channels = 1, .channels = &ch };
        struct shmring *live = NULL;
        char live_name[SHMRING_NAME_MAX];
        int fd;
        pid_t pid;

        /* Two dead creators of two run ids. */
        for (int i = 0; i < 2; i++) {
                pid = tap_fork();
                if (pid == 0) {
                        struct shmring *c = NULL;
                        spec.run_id = tap_run_id();
                        CHECK_OK(shmring_create(&spec, &c));
                        _exit(0);
                }
                CHECK_CHILD_OK(pid);
                (void) tap_run_id();
        }
        spec.run_id = tap_run_id();
        CHECK_OK(shmring_create(&spec, &live));
        snprintf(live_name, sizeof(live_name), "%s", shmring_name(live));
        /* Objects that are not segments, or not finished ones, of a recent mtime. */
        fd = open("/dev/shm/not-a-segment", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        CHECK_SYS(fd);
        CHECK_SYS(ftruncate(fd, 8192));
        close(fd);
        fd = open("/dev/shm/" SHM_NAME_PREFIX "half-created-0000", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        CHECK_SYS(fd);
        CHECK_SYS(ftruncate(fd, 8192));
        close(fd);
        CHECK_EQ(count_dev_shm(), 5);

        CHECK_EQ(shmring_cleanup_stale(NULL), 2);
        CHECK_EQ(count_dev_shm(), 3);
        CHECK(access(tap_shm_path(live_name), F_OK) == 0);
        CHECK_EQ(shmring_cleanup_stale(NULL), 0);

        /* A half-created one is stale once it is over a minute old. */
        {
                struct timespec old[2] = { { .tv_sec = time(NULL) - 3600 }, { .tv_sec = time(NULL) - 3600 } };
                CHECK_SYS(utimensat(AT_FDCWD, "/dev/shm/" SHM_NAME_PREFIX "half-created-0000", old, 0));
                CHECK_EQ(shmring_cleanup_stale(NULL), 1);
                CHECK_EQ(count_dev_shm(), 2);
        }

        CHECK_SYS(unlink("/dev/shm/not-a-segment"));
        CHECK_OK(shmring_unlink(live));
        live = shmring_close(live);
        CHECK_EQ(count_dev_shm(), 0);
}

int main(void) {
        const char *why;

        tap_init("test-small-shm");
        why = tap_private_shm("size=64m");

        if (why)
                tap_skip("%s", why);
        CHECK_EQ(count_dev_shm(), 0);
        test_too_big();
        test_fits();
        test_cleanup_all();
        return tap_done();
}
