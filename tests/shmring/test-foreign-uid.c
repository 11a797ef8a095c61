/* SPDX-License-Identifier: MIT */
/*
 * Segments of another user: attach refuses an object owned by another uid
 * (-EPERM), whether it was chowned away or created by that user, and
 * shmring_cleanup_stale() leaves another user's stale segments alone.
 * Needs root to play the other user; skipped (77) otherwise.
 */
#include <sys/stat.h>

#include "tap.h"

#define OTHER_UID 54321
#define OTHER_GID 54321

static const struct shmring_channel_spec channel = {
        .name = "c", .kind = SHMRING_QUEUE, .slots = 4, .slot_size = 64, .max_ports = 1,
};

int main(void) {
        struct shmring_spec spec = { .n_channels = 1, .channels = &channel };
        struct shmring *s = NULL, *t;
        char name[SHMRING_NAME_MAX];
        const char *run_id;
        int names[2];
        pid_t pid;

        tap_init("test-foreign-uid");
        if (geteuid() != 0)
                tap_skip("needs root to chown a segment to another user");

        /* Chowned to another user. */
        spec.run_id = tap_run_id();
        CHECK_OK(shmring_create(&spec, &s));
        snprintf(name, sizeof(name), "%s", shmring_name(s));
        CHECK_SYS(chown(tap_shm_path(name), OTHER_UID, OTHER_GID));
        memset(&t, SENTINEL, sizeof(t));
        CHECK_ERR(shmring_attach(name, 0, &t), -EPERM);
        CHECK_ERR(shmring_attach(name, SHMRING_ATTACH_OBSERVER, &t), -EPERM);
        CHECK(tap_all_bytes(&t, sizeof(t), SENTINEL));
        /* Only its group changed: still ours. */
        CHECK_SYS(chown(tap_shm_path(name), 0, OTHER_GID));
        t = NULL;
        CHECK_OK(shmring_attach(name, 0, &t));
        t = shmring_close(t);
        CHECK_OK(shmring_unlink(s));
        s = shmring_close(s);

        /* Created by another user, who then died: not ours to attach, nor to clean up. */
        run_id = tap_run_id();
        tap_pipe(names);
        pid = tap_fork();
        if (pid == 0) {
                struct shmring *c = NULL;
                spec.run_id = run_id;
                if (setresgid(OTHER_GID, OTHER_GID, OTHER_GID) < 0 || setresuid(OTHER_UID, OTHER_UID, OTHER_UID) < 0)
                        _exit(99);
                CHECK_OK(shmring_create(&spec, &c));
                tap_write_all(names[1], shmring_name(c), SHMRING_NAME_MAX);
                _exit(0);
        }
        CHECK(tap_read_all(names[0], name, sizeof(name), 30000));
        CHECK_CHILD_OK(pid);
        {
                struct stat st;
                CHECK_SYS(stat(tap_shm_path(name), &st));
                CHECK_EQ(st.st_uid, OTHER_UID);
                CHECK_EQ(st.st_mode & 07777, 0600);
        }
        memset(&t, SENTINEL, sizeof(t));
        CHECK_ERR(shmring_attach(name, 0, &t), -EPERM);
        CHECK(tap_all_bytes(&t, sizeof(t), SENTINEL));
        CHECK_EQ(shmring_cleanup_stale(run_id), 0);
        CHECK(access(tap_shm_path(name), F_OK) == 0);
        /* Root may still remove the name. */
        CHECK_OK(shmring_unlink_name(name));

        close(names[0]);
        close(names[1]);
        return tap_done();
}
