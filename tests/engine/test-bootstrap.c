/* SPDX-License-Identifier: MIT */
/*
 * The rendezvous behind rm_nccl_init(), with a fake collective library in
 * place of NCCL: like NCCL, its initialisation completes only once every
 * rank has started it.  Four ranks, fork/exec'd with the supervisor's
 * environment:
 *   all       every rank joins: same id everywhere, every rank ready
 *   missing2  rank 2 never starts: the others time out within the deadline
 *             + 1 s, aborting, and name "rank 2 (never joined)"
 *   missing0  rank 0 (the id's publisher) never starts: named too
 *   dies3     rank 3 joins and exits: the others stop early, naming it
 *   pollerr1  rank 1's initialisation fails: it aborts, and the others stop
 *             early naming it (not one another)
 * and, with a notify socket as the supervisor gives (NOTIFY_SOCKET), that
 * every rank reports the phase's start and end, a failed one with its
 * reason (STATUS=fake-init failed: ...).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "rank-launcher.h"
#include "rm_worker.h"
#include "shmring.h"

#define NRANKS 4
#define ID_SIZE 128
#define PREFIX "nccl/fake"

struct fake {
        struct rm_worker *w;
        uint32_t nranks;
        uint32_t rank;
        bool started;
        bool aborted;
        bool fail_poll;
        unsigned char id[ID_SIZE];
};

static void started_key(char key[64], uint32_t rank) {
        snprintf(key, 64, "fake/started/%" PRIu32, rank);
}

static int fake_make_id(void *ctx, void *id) {
        unsigned char *p = id;

        (void) ctx;
        for (int i = 0; i < ID_SIZE; i++)
                p[i] = (unsigned char) (rand() ^ getpid());
        return 0;
}

static int fake_start(void *ctx, const void *id, uint32_t nranks, uint32_t rank) {
        struct fake *f = ctx;
        char key[64];

        CHECK(nranks == f->nranks && rank == f->rank);
        memcpy(f->id, id, ID_SIZE);
        f->started = true;
        if (f->fail_poll)
                return 0;               /* it will fail before the others could see it */
        started_key(key, rank);
        CHECK(shmring_kv_put(rm_worker_segment(f->w), RM_KV_TABLE, key, "s", 1) > 0);
        return 0;
}

/* Done once every rank has started, as NCCL's bootstrap is. */
static int fake_poll(void *ctx) {
        struct fake *f = ctx;
        char key[64], buf[4];

        if (f->fail_poll) {
                fprintf(stderr, "rank %u: fake init fails now\n", f->rank);
                return -EIO;
        }
        for (uint32_t i = 0; i < f->nranks; i++) {
                started_key(key, i);
                if (shmring_kv_get(rm_worker_segment(f->w), RM_KV_TABLE, key, 0, buf, sizeof(buf), NULL, 0) < 0)
                        return -EINPROGRESS;
        }
        return 0;
}

static void fake_abort(void *ctx) {
        struct fake *f = ctx;

        CHECK(f->started);
        f->aborted = true;
}

static const struct rm_collective_ops fake_ops = {
        .id_size = ID_SIZE,
        .make_id = fake_make_id,
        .start = fake_start,
        .poll = fake_poll,
        .abort = fake_abort,
};

static int64_t timeout_ns(void) {
        return (int64_t) rmtest_env_u64("RMTEST_BOOTSTRAP_TIMEOUT_MS", 1500) * 1000000;
}

static int rank_main(const char *mode) {
        struct rm_worker *w = rmtest_rank_open();
        uint32_t rank = rm_worker_rank(w);
        struct fake f = { .w = w, .nranks = NRANKS, .rank = rank };
        double t0, elapsed, limit = (double) timeout_ns() / 1e9;
        int r;

        if (strcmp(mode, "dies3") == 0 && rank == 3) {
                CHECK(rm_bootstrap_mark(w, PREFIX, rank, RM_RANK_JOINED) == 0);
                printf("rank 3: joined, now exiting without starting\n");
                fflush(stdout);
                _exit(0);               /* dies: no cleanup */
        }
        f.fail_poll = strcmp(mode, "pollerr1") == 0 && rank == 1;

        t0 = rmtest_now();
        r = rm_bootstrap_run(w, PREFIX, "fake-init", NRANKS, rank, &fake_ops, &f, timeout_ns());
        elapsed = rmtest_now() - t0;
        printf("rank %u [%s]: %d after %.2f s: %s\n", rank, mode, r, elapsed, r < 0 ? rm_last_error() : "ready");
        fflush(stdout);

        if (strcmp(mode, "all") == 0) {
                char key[64];
                unsigned char other[ID_SIZE];

                CHECK(r == 0);
                CHECK(!f.aborted);
                snprintf(key, sizeof(key), "test/id/%u", rank);
                CHECK(shmring_kv_put(rm_worker_segment(w), RM_KV_TABLE, key, f.id, ID_SIZE) > 0);
                CHECK(rmtest_barrier(w, "ids", 10 * INT64_C(1000000000)) == 0);
                for (uint32_t i = 0; i < NRANKS; i++) {
                        snprintf(key, sizeof(key), "test/id/%u", i);
                        CHECK(shmring_kv_get(rm_worker_segment(w), RM_KV_TABLE, key, 0, other, sizeof(other), NULL,
                                             0) == ID_SIZE);
                        CHECK(memcmp(other, f.id, ID_SIZE) == 0);
                        CHECK(rm_bootstrap_rank_state(w, PREFIX, i) == RM_RANK_READY);
                }
                {
                        char who[200];
                        unsigned char id[ID_SIZE];

                        CHECK(rm_bootstrap_describe(w, PREFIX, NRANKS, rank, who, sizeof(who)) == 0);
                        CHECK(strcmp(who, "every other rank finished") == 0);
                        /* A prefix is used once; ids are checked against the world. */
                        if (rank == 0)
                                CHECK_ERR(rm_bootstrap_publish_id(w, PREFIX, NRANKS, f.id, ID_SIZE), -EEXIST);
                        CHECK_ERR(rm_bootstrap_fetch_id(w, PREFIX, NRANKS + 1, id, ID_SIZE, 0), -EINVAL);
                        CHECK_ERR(rm_bootstrap_fetch_id(w, PREFIX, NRANKS, id, ID_SIZE - 1, 0), -EINVAL);
                        CHECK_ERR(rm_bootstrap_fetch_id(w, PREFIX, NRANKS, id, ID_SIZE, 0), 0);
                        CHECK(memcmp(id, f.id, ID_SIZE) == 0);
                        CHECK_ERR(rm_bootstrap_fetch_id(w, "nccl/none", NRANKS, id, ID_SIZE, 0), -ETIMEDOUT);
                        CHECK_ERR(rm_bootstrap_mark(w, "bad prefix", 0, RM_RANK_JOINED), -EINVAL);
                        CHECK_ERR(rm_bootstrap_mark(w, PREFIX, 0, RM_RANK_DEAD), -EINVAL);
                }
                CHECK(rmtest_barrier(w, "checked", 10 * INT64_C(1000000000)) == 0);
        } else if (strcmp(mode, "missing2") == 0) {
                CHECK(r == -ETIMEDOUT);
                CHECK(elapsed >= limit - 0.01 && elapsed <= limit + 1.0);
                CHECK(f.aborted);
                CHECK(strstr(rm_last_error(), "timed out after ") == rm_last_error());
                CHECK(strstr(rm_last_error(), "in fake-init waiting for rank 2 (never joined)") != NULL);
        } else if (strcmp(mode, "missing0") == 0) {
                CHECK(r == -ETIMEDOUT);
                CHECK(elapsed >= limit - 0.01 && elapsed <= limit + 1.0);
                CHECK(!f.started && !f.aborted);
                CHECK(strstr(rm_last_error(), "in fake-init waiting for rank 0 (never joined)") != NULL);
                CHECK(rm_bootstrap_rank_state(w, PREFIX, rank) == RM_RANK_TIMED_OUT);
        } else if (strcmp(mode, "dies3") == 0) {
                CHECK(r == -EOWNERDEAD);
                CHECK(elapsed < limit);
                /* A rank that found rank 0 gone before it could start never started. */
                CHECK(f.aborted == f.started);
                CHECK(strstr(rm_last_error(), "rank 3 died during fake-init") != NULL);
        } else if (strcmp(mode, "pollerr1") == 0) {
                if (rank == 1) {
                        CHECK(r == -EIO);
                        CHECK(f.aborted);
                } else {
                        CHECK(r == -ECONNABORTED);
                        CHECK(f.aborted == f.started);
                        CHECK(strstr(rm_last_error(), "rank 1 failed in fake-init") != NULL);
                        CHECK(elapsed < limit);
                }
        } else {
                fprintf(stderr, "unknown mode %s\n", mode);
                return 99;
        }
        rm_worker_close(w);
        return 0;
}

static int scenario(const char *mode, int skip_rank) {
        struct rmtest_job *j;
        int r;

        printf("== %s\n", mode);
        fflush(stdout);
        CHECK(rmtest_job_new(NRANKS, &j) == 0);
        for (uint32_t i = 0; i < NRANKS; i++)
                if ((int) i != skip_rank)
                        CHECK(rmtest_job_spawn(j, i, mode, NULL) == 0);
        r = rmtest_job_wait(j, 60 * INT64_C(1000000000));
        rmtest_job_free(j);
        if (r != 0) {
                fprintf(stderr, "scenario %s: %d rank(s) failed\n", mode, r);
                return 1;
        }
        return 0;
}

/* Runs mode with every rank's NOTIFY_SOCKET on a socket of ours; the datagrams received, joined by '|'. */
static int scenario_notified(const char *mode, int skip_rank, char *got, size_t size) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char env[sizeof(sa.sun_path) + 16];
        char *extra[] = { env, NULL };
        struct rmtest_job *j;
        size_t used = 0;
        int fd, r;

        snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/test-bootstrap-notify-%d", (int) getpid());
        (void) unlink(sa.sun_path);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0 && bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0);
        snprintf(env, sizeof(env), "NOTIFY_SOCKET=%s", sa.sun_path);
        printf("== %s, notified\n", mode);
        fflush(stdout);
        CHECK(rmtest_job_new(NRANKS, &j) == 0);
        for (uint32_t i = 0; i < NRANKS; i++)
                if ((int) i != skip_rank)
                        CHECK(rmtest_job_spawn(j, i, mode, extra) == 0);
        r = rmtest_job_wait(j, 60 * INT64_C(1000000000));
        rmtest_job_free(j);
        got[0] = '\0';
        for (;;) {
                char buf[1024];
                ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

                if (n < 0)
                        break;
                buf[n] = '\0';
                used += (size_t) snprintf(got + used, size - used, "%s|", buf);
                if (used >= size)
                        break;
        }
        close(fd);
        (void) unlink(sa.sun_path);
        return r;
}

static size_t count(const char *hay, const char *needle) {
        size_t n = 0;

        for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

static int phases_reported(void) {
        char got[8192];
        int failed = 0;

        if (scenario_notified("all", -1, got, sizeof(got)) != 0)
                failed++;
        printf("datagrams: %s\n", got);
        if (count(got, "X_RINGMASTER_PHASE=fake-init|") != NRANKS ||
            count(got, "X_RINGMASTER_PHASE_END=fake-init|") != NRANKS) {
                fprintf(stderr, "all: every rank must report fake-init's start and end once\n");
                failed++;
        }
        if (scenario_notified("missing2", 2, got, sizeof(got)) != 0)
                failed++;
        printf("datagrams: %s\n", got);
        if (count(got, "X_RINGMASTER_PHASE=fake-init|") != NRANKS - 1 ||
            count(got, "STATUS=fake-init failed: ") != NRANKS - 1 || count(got, "rank 2 (never joined)") != NRANKS - 1) {
                fprintf(stderr, "missing2: every rank present must report the phase and why it failed, naming rank 2\n");
                failed++;
        }
        return failed;
}

int main(int argc, char **argv) {
        int failed = 0;

        if (argc == 3 && strcmp(argv[1], "--rank") == 0)
                return rank_main(argv[2]);

        failed += scenario("all", -1);
        failed += scenario("missing2", 2);
        failed += scenario("missing0", 0);
        failed += scenario("dies3", -1);
        failed += scenario("pollerr1", -1);
        failed += phases_reported();
        printf(failed ? "FAILED\n" : "ok\n");
        return failed ? 1 : 0;
}
