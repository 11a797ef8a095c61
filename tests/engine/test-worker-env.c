/* SPDX-License-Identifier: MIT */
/* rm_worker_open(): the environment is checked, and every mistake named. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rank-launcher.h"
#include "rm_run_layout.h"
#include "rm_worker.h"
#include "shmring.h"

static void set_good_env(const char *shm, const char *run_id, const char *run_dir) {
        setenv("RINGMASTER_SHM", shm, 1);
        setenv("RINGMASTER_RUN_ID", run_id, 1);
        setenv("RINGMASTER_RUN_DIR", run_dir, 1);
        setenv("RANK", "1", 1);
        setenv("WORLD_SIZE", "4", 1);
        setenv("LOCAL_RANK", "1", 1);
        setenv("LOCAL_WORLD_SIZE", "4", 1);
}

/* rm_worker_open() must fail with want, and its message must mention what. */
static void expect_fail(int want, const char *what) {
        struct rm_worker *w = NULL;
        int r = rm_worker_open(&w);

        printf("  %-40s -> %d: %s\n", what, r, rm_last_error());
        CHECK(r == want);
        CHECK(w == NULL);
        CHECK(strstr(rm_last_error(), what) != NULL);
}

int main(void) {
        struct rm_run_spec spec;
        struct shmring *seg;
        struct rm_worker *w = NULL;
        char run_id[64], run_dir[] = "/tmp/rmtest-env.XXXXXX";

        snprintf(run_id, sizeof(run_id), "envtest-%d", (int) getpid());
        CHECK(mkdtemp(run_dir) != NULL);
        CHECK(rm_run_spec(4, run_id, 0, NULL, &spec) == 0);
        CHECK(shmring_create(&spec.spec, &seg) == 0);

        /* Not under ringmaster at all. */
        unsetenv("RINGMASTER_SHM");
        expect_fail(-ENXIO, "RINGMASTER_SHM");

        set_good_env(shmring_name(seg), run_id, run_dir);
        unsetenv("RINGMASTER_RUN_ID");
        expect_fail(-EINVAL, "RINGMASTER_RUN_ID");
        set_good_env(shmring_name(seg), "bad id!", run_dir);
        expect_fail(-EINVAL, "RINGMASTER_RUN_ID");

        set_good_env(shmring_name(seg), run_id, "relative/dir");
        expect_fail(-EINVAL, "RINGMASTER_RUN_DIR");
        set_good_env(shmring_name(seg), run_id, "/nonexistent/rmtest");
        expect_fail(-ENOENT, "RINGMASTER_RUN_DIR");
        set_good_env(shmring_name(seg), run_id, "/dev/null");
        expect_fail(-ENOTDIR, "RINGMASTER_RUN_DIR");

        set_good_env(shmring_name(seg), run_id, run_dir);
        unsetenv("RANK");
        expect_fail(-EINVAL, "RANK");
        setenv("RANK", "one", 1);
        expect_fail(-EINVAL, "RANK");
        setenv("RANK", "-1", 1);
        expect_fail(-EINVAL, "RANK");
        setenv("RANK", "1x", 1);
        expect_fail(-EINVAL, "RANK");
        setenv("RANK", "", 1);
        expect_fail(-EINVAL, "RANK");
        setenv("RANK", "4", 1);
        expect_fail(-EINVAL, "RANK=4 is not below WORLD_SIZE=4");
        setenv("RANK", "99999999999999999999", 1);
        expect_fail(-EINVAL, "RANK");

        set_good_env(shmring_name(seg), run_id, run_dir);
        setenv("WORLD_SIZE", "0", 1);
        expect_fail(-EINVAL, "WORLD_SIZE");
        set_good_env(shmring_name(seg), run_id, run_dir);
        setenv("LOCAL_WORLD_SIZE", "5", 1);
        expect_fail(-EINVAL, "LOCAL_WORLD_SIZE");
        set_good_env(shmring_name(seg), run_id, run_dir);
        setenv("LOCAL_RANK", "4", 1);
        expect_fail(-EINVAL, "LOCAL_RANK");
        set_good_env(shmring_name(seg), run_id, run_dir);
        unsetenv("LOCAL_WORLD_SIZE");
        expect_fail(-EINVAL, "LOCAL_WORLD_SIZE");

        /* A segment that does not exist, or one of another run. */
        set_good_env("/shmring-nosuchrun-0000000000000000", run_id, run_dir);
        expect_fail(-ENOENT, "RINGMASTER_SHM");
        set_good_env(shmring_name(seg), "another-run", run_dir);
        expect_fail(-EINVAL, "belongs to run");

        /* All good. */
        set_good_env(shmring_name(seg), run_id, run_dir);
        CHECK_ERR(rm_worker_open(&w), 0);
        CHECK(rm_worker_rank(w) == 1);
        CHECK(rm_worker_world_size(w) == 4);
        CHECK(rm_worker_local_rank(w) == 1);
        CHECK(rm_worker_local_world_size(w) == 4);
        CHECK(strcmp(rm_worker_run_id(w), run_id) == 0);
        CHECK(strcmp(rm_worker_run_dir(w), run_dir) == 0);
        CHECK(rm_worker_segment(w) != NULL);
        /* The kv table the rest of the runtime relies on is there. */
        CHECK(shmring_kv_put(rm_worker_segment(w), RM_KV_TABLE, "test/env", "x", 1) > 0);
        CHECK(rm_worker_close(w) == NULL);
        CHECK(rm_worker_close(NULL) == NULL);
        CHECK(rm_worker_open(NULL) == -EINVAL);

        shmring_unlink(seg);
        shmring_close(seg);
        rmdir(run_dir);
        printf("ok\n");
        return 0;
}
