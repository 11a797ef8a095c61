/* SPDX-License-Identifier: MIT */
/*
 * The rendezvous (rendezvous.c) against a real etcd at $RM_ETCD_ENDPOINT
 * (test-etcd-client.py starts one), "nodes" as threads of one process:
 * three joiners get ranks 0..2 in join order and node 0's address; the job
 * over (leases revoked), the same run id joins round 1; a failure recorded
 * in a running round moves the next joiner on too; --nnodes 2:4 closes at
 * MAX, or at MIN after the last call, and a late node gets "closed and
 * running"; five joiners for three places: three get ranks 0..2, two are
 * late; the first joiner leaves and the next takes over closing the round;
 * the join timeout names who joined; a pending stop signal ends the
 * wait.  Skips (77) without etcd.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "etcd.h"
#include "rendezvous.h"
#include "unit.h"
#include "util.h"

static const char *endpoint;
static char run_id[64];
static sigset_t stop_set;

struct joiner {
        pthread_t thread;
        struct rdzv_config cfg;
        char host[32], addr[32];
        struct rdzv_result res;
        char *error;
        int r;
        uint64_t took_usec;
};

static void *join_thread(void *userdata) {
        struct joiner *j = userdata;
        uint64_t t = now_usec();

        j->r = rdzv_join(&j->cfg, &j->res, &j->error);
        j->took_usec = now_usec() - t;
        return NULL;
}

static void start(struct joiner *j, int i, int min, int max, double last_call_s, double timeout_s) {
        *j = (struct joiner) {};
        snprintf(j->host, sizeof(j->host), "host%d", i);
        snprintf(j->addr, sizeof(j->addr), "10.9.0.%d", i + 1);
        j->cfg = (struct rdzv_config) {
                .endpoint = endpoint, .run_id = run_id, .min_nodes = min, .max_nodes = max, .host = j->host,
                .addr = j->addr, .last_call_usec = (uint64_t) (last_call_s * 1e6),
                .join_timeout_usec = (uint64_t) (timeout_s * 1e6), .lease_ttl_s = 3, .stop_signals = &stop_set,
                .port = 29600 + i,      /* the MASTER_PORT each offers */
        };
        CHECK(pthread_create(&j->thread, NULL, join_thread, j) == 0, "pthread_create");
}

static void finish(struct joiner *j) {
        pthread_join(j->thread, NULL);
}

static void sleep_s(double s) {
        usleep((useconds_t) (s * 1e6));
}

static void done(struct joiner *js, int n) {
        for (int i = 0; i < n; i++) {
                rdzv_result_done(&js[i].res, true);
                free(js[i].error);
                js[i].error = NULL;
        }
}

/* Three nodes, one after the other: ranks in join order, node 0's address, round `round`. */
static void test_three(int round) {
        struct joiner js[3];

        for (int i = 0; i < 3; i++) {
                start(&js[i], i, 3, 3, 30, 20);
                sleep_s(0.3);   /* join order = i */
        }
        for (int i = 0; i < 3; i++)
                finish(&js[i]);
        for (int i = 0; i < 3; i++) {
                CHECK(js[i].r == 0, "round %d: node %d joined: %s", round, i, js[i].error);
                if (js[i].r < 0)
                        continue;
                CHECK(js[i].res.node_rank == i && js[i].res.nnodes == 3 && js[i].res.round == round,
                      "round %d: joiner %d is node %d of %d in round %d", round, i, js[i].res.node_rank,
                      js[i].res.nnodes, js[i].res.round);
                CHECK(js[i].res.master_addr && strcmp(js[i].res.master_addr, "10.9.0.1") == 0,
                      "joiner %d: MASTER_ADDR is the first joiner's, got %s", i, js[i].res.master_addr);
                CHECK(js[i].res.master_port == 29600, "joiner %d: MASTER_PORT is the one node 0 offered, got %d", i,
                      js[i].res.master_port);
                CHECK(js[i].res.prefix && strstr(js[i].res.prefix, "/round/") && js[i].res.lease != 0,
                      "joiner %d: the round's prefix %s and a lease", i, js[i].res.prefix);
        }
        done(js, 3);
}

/* A failure recorded in a running round: the next joiners open the next round, not "late". */
static void test_after_failure(int round) {
        struct joiner js[2];
        struct etcd_client *c = NULL;
        _cleanup_free_ char *prefix = NULL, *key = NULL;

        for (int i = 0; i < 2; i++) {
                start(&js[i], i, 2, 2, 30, 20);
                sleep_s(0.2);
        }
        for (int i = 0; i < 2; i++)
                finish(&js[i]);
        CHECK(js[0].r == 0 && js[1].r == 0 && js[0].res.round == round, "round %d formed: %s %s", round,
              js[0].error, js[1].error);
        /* Its members stay (leases alive) and its job fails. */
        CHECK(etcd_client_new(endpoint, NULL, 2000, &c) == 0, "client");
        CHECK(rdzv_round_prefix(run_id, round, &prefix) == 0 && asprintf(&key, "%sjob/failure", prefix) > 0, "key");
        CHECK(etcd_put(c, key, "{}", 2, 0) == 0, "put the failure: %s", etcd_last_error(c));
        etcd_client_free(c);

        struct joiner again[2];
        for (int i = 0; i < 2; i++) {
                start(&again[i], i + 5, 2, 2, 30, 20);
                sleep_s(0.2);
        }
        for (int i = 0; i < 2; i++)
                finish(&again[i]);
        for (int i = 0; i < 2; i++)
                CHECK(again[i].r == 0 && again[i].res.round == round + 1 && again[i].res.node_rank == i,
                      "after the failure: joiner %d is node %d in round %d (want round %d): %s", i,
                      again[i].res.node_rank, again[i].res.round, round + 1, again[i].error);
        done(js, 2);
        done(again, 2);
}

/* MIN:MAX: closes at MIN after the last call; a late node is refused while the round runs. */
static void test_elastic_last_call(void) {
        struct joiner js[2], late;

        for (int i = 0; i < 2; i++)
                start(&js[i], i, 2, 4, 1.5, 20);
        for (int i = 0; i < 2; i++)
                finish(&js[i]);
        for (int i = 0; i < 2; i++) {
                CHECK(js[i].r == 0 && js[i].res.nnodes == 2, "2:4, two joined: a round of %d: %s", js[i].res.nnodes,
                      js[i].error);
                CHECK(js[i].took_usec >= 1400 * USEC_PER_MSEC, "2:4: closed after the 1.5 s last call, not before "
                      "(%.2f s)", (double) js[i].took_usec / 1e6);
        }
        CHECK(js[0].r == 0 && js[1].r == 0 && js[0].res.node_rank != js[1].res.node_rank, "distinct ranks");
        start(&late, 7, 2, 4, 1.5, 20);
        finish(&late);
        CHECK(late.r == -EBUSY && late.error && strstr(late.error, "closed and running with 2 nodes") &&
              strstr(late.error, "host0") && strstr(late.error, "came too late"),
              "a late node is refused, naming the round's nodes: %d %s", late.r, late.error);
        printf("late node: %s\n", late.error);
        done(js, 2);
        done(&late, 1);
}

/* MIN:MAX: a third node within the last call joins the same round. */
static void test_elastic_within(int round) {
        struct joiner js[3];

        start(&js[0], 0, 2, 4, 3, 20);
        sleep_s(0.2);
        start(&js[1], 1, 2, 4, 3, 20);
        sleep_s(1.0);
        start(&js[2], 2, 2, 4, 3, 20);
        for (int i = 0; i < 3; i++)
                finish(&js[i]);
        for (int i = 0; i < 3; i++)
                CHECK(js[i].r == 0 && js[i].res.nnodes == 3 && js[i].res.node_rank == i && js[i].res.round == round,
                      "2:4, a third within the last call: joiner %d is node %d of %d (round %d): %s", i,
                      js[i].res.node_rank, js[i].res.nnodes, js[i].res.round, js[i].error);
        done(js, 3);
}

/* More nodes than MAX at once: the first MAX in join order form the round, the others are told they are late. */
static void test_over_max(void) {
        struct joiner js[5];
        int joined = 0, late = 0, rank_sum = 0;

        snprintf(run_id, sizeof(run_id), "rdzv-over-%d", getpid());
        for (int i = 0; i < 5; i++)
                start(&js[i], i, 3, 3, 30, 20);
        for (int i = 0; i < 5; i++)
                finish(&js[i]);
        for (int i = 0; i < 5; i++) {
                if (js[i].r == 0 && js[i].res.nnodes == 3) {
                        joined++;
                        rank_sum += js[i].res.node_rank;
                } else if (js[i].r == -EBUSY && js[i].error && strstr(js[i].error, "too late"))
                        late++;
                else
                        CHECK(false, "over MAX: joiner %d: %d %s", i, js[i].r, js[i].error);
        }
        CHECK(joined == 3 && late == 2 && rank_sum == 0 + 1 + 2,
              "5 joiners for 3 places: 3 in the round (ranks 0..2: sum %d), 2 late (%d, %d)", rank_sum, joined, late);
        done(js, 5);
}

/* The first joiner (who closes the round) leaves before it is complete: the next in join order takes over. */
static void test_leader_leaves(void) {
        struct joiner js[4];

        snprintf(run_id, sizeof(run_id), "rdzv-leader-%d", getpid());
        start(&js[0], 0, 3, 3, 30, 20);
        sleep_s(0.3);
        start(&js[1], 1, 3, 3, 30, 20);
        sleep_s(0.3);
        pthread_kill(js[0].thread, SIGUSR1);    /* that thread's stop signal: it leaves, its lease revoked */
        finish(&js[0]);
        CHECK(js[0].r == -EINTR, "the first joiner left: %d %s", js[0].r, js[0].error);
        start(&js[2], 2, 3, 3, 30, 20);
        sleep_s(0.3);
        start(&js[3], 3, 3, 3, 30, 20);
        for (int i = 1; i < 4; i++)
                finish(&js[i]);
        for (int i = 1; i < 4; i++)
                CHECK(js[i].r == 0 && js[i].res.node_rank == i - 1 && js[i].res.nnodes == 3,
                      "the second joiner took over and closed: joiner %d is node %d of %d (%s)", i,
                      js[i].res.node_rank, js[i].res.nnodes, js[i].error);
        CHECK(js[1].res.master_addr && strcmp(js[1].res.master_addr, "10.9.0.2") == 0,
              "MASTER_ADDR is the new node 0's: %s", js[1].res.master_addr);
        CHECK(js[1].res.master_port == 29601, "MASTER_PORT is the new node 0's: %d", js[1].res.master_port);
        done(js, 4);
}

static void test_timeout(void) {
        struct joiner j;

        snprintf(run_id, sizeof(run_id), "rdzv-timeout-%d", getpid());
        start(&j, 0, 2, 2, 30, 1);
        finish(&j);
        CHECK(j.r == -ETIMEDOUT && j.error && strstr(j.error, "timed out") && strstr(j.error, "1 node joined") &&
              strstr(j.error, "host0 (10.9.0.1)") && strstr(j.error, "2 needed"),
              "the join timeout names who joined: %d %s", j.r, j.error);
        printf("timeout: %s\n", j.error);
        CHECK(j.took_usec >= 900 * USEC_PER_MSEC && j.took_usec < 5 * USEC_PER_SEC, "after 1 s (%.2f s)",
              (double) j.took_usec / 1e6);
        done(&j, 1);
}

static void test_signal(void) {
        struct joiner j;
        siginfo_t si;
        struct timespec ts = { 1, 0 };

        snprintf(run_id, sizeof(run_id), "rdzv-signal-%d", getpid());
        start(&j, 0, 2, 2, 30, 20);
        sleep_s(0.5);
        kill(getpid(), SIGUSR1);
        finish(&j);
        CHECK(j.r == -EINTR && j.res.signal == SIGUSR1, "a pending stop signal ends the wait: %d %s", j.r, j.error);
        CHECK(j.took_usec < 3 * USEC_PER_SEC, "at once (%.2f s)", (double) j.took_usec / 1e6);
        (void) sigtimedwait(&stop_set, &si, &ts);
        done(&j, 1);
}

int main(void) {
        endpoint = getenv("RM_ETCD_ENDPOINT");
        if (!endpoint) {
                printf("SKIP: RM_ETCD_ENDPOINT is not set (test-etcd-client.py starts an etcd)\n");
                return 77;
        }
        sigemptyset(&stop_set);
        sigaddset(&stop_set, SIGUSR1);
        pthread_sigmask(SIG_BLOCK, &stop_set, NULL);

        snprintf(run_id, sizeof(run_id), "rdzv-%d", getpid());
        test_three(0);          /* done(): the leases revoked, as at the end of a job */
        test_three(1);          /* the same run id again: round 0 is over */
        test_after_failure(2);
        snprintf(run_id, sizeof(run_id), "rdzv-elastic-%d", getpid());
        test_elastic_last_call();
        snprintf(run_id, sizeof(run_id), "rdzv-within-%d", getpid());
        test_elastic_within(0);
        test_over_max();
        test_leader_leaves();
        test_timeout();
        test_signal();
        printf("%s\n", failures ? "FAILED" : "ok");
        return failures ? 1 : 0;
}
