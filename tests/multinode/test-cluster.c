/* SPDX-License-Identifier: MIT */
/*
 * The cross-node view (cluster.c) against a real etcd at
 * $RM_ETCD_ENDPOINT (test-etcd-client.py starts one): five "nodes" in one
 * process join; the leader (node 0) sees every node's states and
 * progress, the others the leader's; one records the job's failure (once:
 * the second report is not first) and every node hears; a node that stops
 * without a word is lost (a worker to the leader, the leader to the
 * others), one that says "done" or "failed" is not; a second ringmaster with a node
 * rank already taken is refused.  Skips (77) without etcd.
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "cluster.h"
#include "unit.h"
#include "util.h"

/* Waits (up to seconds) for an event of type from c about node (and in state, when not NULL). */
static bool wait_state(struct cluster *c, enum cluster_event_type type, int node, const char *state, double seconds,
                       struct cluster_event *ret) {
        uint64_t end = now_usec() + (uint64_t) (seconds * 1e6);

        while (now_usec() < end) {
                struct pollfd p = { .fd = cluster_fd(c), .events = POLLIN };
                struct cluster_event e;

                while (cluster_pop(c, &e) > 0) {
                        if (e.type == type && (node < 0 || e.node == node) &&
                            (!state || (e.state && strcmp(e.state, state) == 0))) {
                                *ret = e;
                                return true;
                        }
                        cluster_event_done(&e);
                }
                (void) poll(&p, 1, 100);
        }
        return false;
}

static bool wait_event(struct cluster *c, enum cluster_event_type type, int node, double seconds,
                       struct cluster_event *ret) {
        return wait_state(c, type, node, NULL, seconds, ret);
}

int main(void) {
        const char *endpoint = getenv("RM_ETCD_ENDPOINT");
        struct cluster *n[5] = {}, *dup = NULL;
        struct cluster_event e = {};
        char run_id[32], *err = NULL;
        bool first = false;
        int r;

        if (!endpoint) {
                printf("RM_ETCD_ENDPOINT is not set: skipped\n");
                return 77;
        }
        snprintf(run_id, sizeof(run_id), "test-%d", (int) getpid());
        for (int i = 0; i < 5; i++) {
                char host[16];
                snprintf(host, sizeof(host), "node%d", i);
                struct cluster_config cfg = { .endpoint = endpoint, .run_id = run_id, .node_rank = i, .nnodes = 5,
                                              .host = host, .lease_ttl_s = 2 };
                r = cluster_start(&cfg, &n[i], &err);
                CHECK(r == 0, "node %d starts: %d %s", i, r, err ? err : "");
                free(err);
                err = NULL;
                if (r < 0)
                        return 1;
        }
        /* Node 0 joined first: it learns of the others through its watch. */
        CHECK(wait_event(n[0], CLUSTER_NODE_JOINED, 2, 5, &e) && e.host && strcmp(e.host, "node2") == 0,
              "node 0 sees node 2 join");
        cluster_event_done(&e);
        for (int t = 0; t < 50 && cluster_nodes_present(n[0]) < 5; t++)
                usleep(20000);
        CHECK(cluster_nodes_present(n[0]) == 5, "the leader sees all five: %d", cluster_nodes_present(n[0]));
        CHECK(cluster_nodes_present(n[2]) == 1, "node 2 sees the leader only: %d", cluster_nodes_present(n[2]));

        /* States travel: a worker's to the leader, the leader's to everyone. */
        CHECK(cluster_set_state(n[1], "running") == 0, "set state");
        CHECK(wait_state(n[0], CLUSTER_NODE_STATE, 1, "running", 5, &e), "node 0 sees node 1 running");
        cluster_event_done(&e);
        CHECK(cluster_set_state(n[0], "running") == 0, "set state");
        CHECK(wait_state(n[2], CLUSTER_NODE_STATE, 0, "running", 5, &e), "node 2 sees node 0 running");
        cluster_event_done(&e);
        CHECK(!wait_state(n[2], CLUSTER_NODE_STATE, 1, "running", 0.3, &e), "node 2 does not watch node 1");

        /* Progress goes to the leader only. */
        CHECK(cluster_set_phases(n[1], "{\"ranks\":{\"1\":\"dist-init\"}}") == 0, "set phases");
        CHECK(wait_event(n[0], CLUSTER_PHASES, 1, 5, &e) && e.json && strstr(e.json, "dist-init"),
              "node 0 sees node 1's phases: %s", e.json);
        cluster_event_done(&e);
        CHECK(!wait_event(n[2], CLUSTER_PHASES, 1, 0.5, &e), "node 2 does not watch phases");

        /* The first failure is the job's; every node hears of it. */
        CHECK(cluster_report_failure(n[2], 5, "rank 5 exited with status 1", &first) == 0 && first, "first failure");
        CHECK(cluster_report_failure(n[1], 3, "rank 3 was killed by SIGTERM", &first) == 0 && !first,
              "a later failure is not the first");
        for (int i = 0; i < 5; i++) {
                CHECK(wait_event(n[i], CLUSTER_FAILURE, -1, 5, &e) && e.node == 2 && e.rank == 5 && e.host &&
                      strcmp(e.host, "node2") == 0 && e.cause && strstr(e.cause, "status 1"),
                      "node %d sees the failure of rank 5 on node 2: node %d rank %d %s", i, e.node, e.rank, e.cause);
                cluster_event_done(&e);
        }

        /* A second ringmaster as node 1. */
        struct cluster_config cfg = { .endpoint = endpoint, .run_id = run_id, .node_rank = 1, .nnodes = 5,
                                      .host = "impostor", .lease_ttl_s = 2 };
        r = cluster_start(&cfg, &dup, &err);
        CHECK(r == -EEXIST && err && strstr(err, "already registered"), "a taken node rank: %d %s", r, err);
        free(err);
        err = NULL;

        /* Node 1 says done and leaves: not lost.  Node 3 leaves without: lost (to the leader). */
        n[1] = cluster_stop(n[1], "done");
        CHECK(wait_state(n[0], CLUSTER_NODE_STATE, 1, "done", 5, &e), "node 1 is done");
        cluster_event_done(&e);
        n[3] = cluster_stop(n[3], NULL);
        CHECK(wait_event(n[0], CLUSTER_NODE_LOST, 3, 5, &e) && e.cause && strstr(e.cause, "node 3"),
              "node 3 is lost: %s", e.cause);
        cluster_event_done(&e);
        CHECK(!wait_event(n[0], CLUSTER_NODE_LOST, 1, 0.5, &e), "node 1 (done) is not lost");
        /* Node 2 says failed and leaves: not lost either (its failure is the job's, said already). */
        n[2] = cluster_stop(n[2], "failed");
        CHECK(wait_state(n[0], CLUSTER_NODE_STATE, 2, "failed", 5, &e), "node 2 failed");
        cluster_event_done(&e);
        CHECK(!wait_event(n[0], CLUSTER_NODE_LOST, 2, 0.5, &e), "node 2 (failed) is not lost");
        CHECK(cluster_nodes_present(n[0]) == 2, "two nodes left: %d", cluster_nodes_present(n[0]));
        /* The leader leaves without a word: lost to node 4. */
        n[0] = cluster_stop(n[0], NULL);
        CHECK(wait_event(n[4], CLUSTER_NODE_LOST, 0, 5, &e) && e.cause && strstr(e.cause, "node 0"),
              "the leader is lost to node 4: %s", e.cause);
        cluster_event_done(&e);

        /* Nobody at the endpoint: a sentence naming it. */
        struct cluster_config bad = { .endpoint = "127.0.0.1:1", .run_id = run_id, .node_rank = 0, .nnodes = 1,
                                      .timeout_ms = 500 };
        r = cluster_start(&bad, &dup, &err);
        CHECK(r < 0 && err && strstr(err, "cannot reach etcd at 127.0.0.1:1"), "unreachable: %d %s", r, err);
        free(err);

        n[4] = cluster_stop(n[4], "failed");
        printf("%s\n", failures ? "FAILED" : "ok");
        return failures ? 1 : 0;
}
