/* SPDX-License-Identifier: MIT */
/*
 * N simulated node supervisors against one etcd: what the cross-node view
 * (cluster.c) costs the store, and how fast a failure reaches every node.
 * Each simulated node is a real struct cluster (its lease, its keepalive
 * and writer thread, its watch), all in this one process.
 *
 *     bench-etcd-nodes ENDPOINT NODES [STEADY_SECONDS]
 *
 * Node 0 (the leader) watches everything, the others job/ (cluster.h).
 * Prints one line per figure; the driver (bench-etcd-nodes.py) adds etcd's
 * CPU and memory.
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "cluster.h"
#include "util.h"

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* Drains every node's events; counts PHASES events; records the first FAILURE's arrival. */
static void drain(struct cluster **n, int nnodes, uint64_t *phase_events, uint64_t *failure_at) {
        for (int i = 0; i < nnodes; i++) {
                struct cluster_event e;
                while (cluster_pop(n[i], &e) > 0) {
                        if (e.type == CLUSTER_PHASES)
                                (*phase_events)++;
                        if (e.type == CLUSTER_FAILURE && failure_at && !failure_at[i])
                                failure_at[i] = e.received_usec;
                        cluster_event_done(&e);
                }
        }
}

int main(int argc, char **argv) {
        const char *endpoint;
        int nnodes, steady = 10;
        struct cluster **n;
        uint64_t *failure_at, t0, t, phase_events = 0;
        struct rlimit rl = { 1 << 20, 1 << 20 };
        char run_id[32], *err = NULL;
        bool first;

        if (argc < 3) {
                fprintf(stderr, "usage: %s ENDPOINT NODES [STEADY_SECONDS]\n", argv[0]);
                return 100;
        }
        endpoint = argv[1];
        nnodes = atoi(argv[2]);
        if (argc > 3)
                steady = atoi(argv[3]);
        if (nnodes < 2 || nnodes > 5000 || steady < 1) {
                fprintf(stderr, "NODES: 2 to 5000; STEADY_SECONDS: at least 1\n");
                return 100;
        }
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
                getrlimit(RLIMIT_NOFILE, &rl);
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
        }
        n = calloc((size_t) nnodes, sizeof(*n));
        failure_at = calloc((size_t) nnodes, sizeof(*failure_at));
        if (!n || !failure_at)
                return 111;
        snprintf(run_id, sizeof(run_id), "bench-%d", (int) getpid());

        /* Join: one after the other, as nodes coming up. */
        t0 = now_usec();
        for (int i = 0; i < nnodes; i++) {
                char host[32];
                snprintf(host, sizeof(host), "node%04d", i);
                struct cluster_config cfg = { .endpoint = endpoint, .run_id = run_id, .node_rank = i, .nnodes = nnodes,
                                              .host = host, .lease_ttl_s = 10, .timeout_ms = 10000 };
                if (cluster_start(&cfg, &n[i], &err) < 0) {
                        fprintf(stderr, "node %d: %s\n", i, err ? err : "cannot start");
                        return 111;
                }
                if (i % 100 == 99)
                        drain(n, i + 1, &phase_events, NULL);
        }
        t = now_usec();
        printf("nodes %d\n", nnodes);
        printf("join: %d nodes registered in %.2f s (%.2f ms a node)\n", nnodes, (t - t0) / 1e6,
               (t - t0) / 1e3 / nnodes);
        /* The leader sees every node. */
        for (;;) {
                drain(n, nnodes, &phase_events, NULL);
                if (cluster_nodes_present(n[0]) == nnodes)
                        break;
                if (now_usec() - t0 > 300 * USEC_PER_SEC) {
                        fprintf(stderr, "node 0 did not see every node within 300 s (%d)\n",
                                cluster_nodes_present(n[0]));
                        return 1;
                }
                usleep(10000);
        }
        printf("join: node 0 saw all %d after %.2f s\n", nnodes, (now_usec() - t0) / 1e6);
        fflush(stdout);

        /* Steady state: each node's ranks change phase once a second; leases renewed every TTL/3. */
        phase_events = 0;
        printf("steady: start\n");
        fflush(stdout);
        t0 = now_usec();
        for (int s = 0; s < steady; s++) {
                uint64_t tick = t0 + (uint64_t) (s + 1) * USEC_PER_SEC;
                for (int i = 0; i < nnodes; i++) {
                        char phases[128];
                        snprintf(phases, sizeof(phases), "{\"at\":%d,\"ranks\":{\"%d\":\"step-%d\"}}", s, i * 8, s);
                        cluster_set_phases(n[i], phases);
                }
                while (now_usec() < tick) {
                        drain(n, nnodes, &phase_events, NULL);
                        usleep(5000);
                }
        }
        t = now_usec();
        drain(n, nnodes, &phase_events, NULL);
        printf("steady: end\n");
        printf("steady: %d phase updates/s, %.0f phase events/s delivered to watchers, %.1f lease renewals/s\n",
               nnodes, phase_events / ((t - t0) / 1e6), nnodes / (10.0 / 3));
        fflush(stdout);

        /* A failure on the last node: how long until every node has heard. */
        usleep(500000);
        drain(n, nnodes, &phase_events, NULL);
        t0 = now_usec();
        if (cluster_report_failure(n[nnodes - 1], (nnodes - 1) * 8 + 3, "rank exited with status 1", &first) < 0 ||
            !first) {
                fprintf(stderr, "cannot record the failure\n");
                return 1;
        }
        t = now_usec();
        for (;;) {
                int missing = 0;
                drain(n, nnodes, &phase_events, failure_at);
                for (int i = 0; i < nnodes; i++)
                        missing += !failure_at[i];
                if (!missing)
                        break;
                if (now_usec() - t0 > 60 * USEC_PER_SEC) {
                        fprintf(stderr, "%d nodes never heard of the failure\n", missing);
                        return 1;
                }
                usleep(1000);
        }
        for (int i = 0; i < nnodes; i++)
                failure_at[i] -= t0;
        qsort(failure_at, (size_t) nnodes, sizeof(*failure_at), cmp_u64);
        printf("failure: recorded in %.1f ms; heard by every node: median %.1f ms, p99 %.1f ms, last %.1f ms\n",
               (t - t0) / 1e3, failure_at[nnodes / 2] / 1e3, failure_at[nnodes * 99 / 100] / 1e3,
               failure_at[nnodes - 1] / 1e3);
        fflush(stdout);

        t0 = now_usec();
        for (int i = 0; i < nnodes; i++)
                n[i] = cluster_stop(n[i], "failed");
        printf("teardown: %d nodes left in %.2f s\n", nnodes, (now_usec() - t0) / 1e6);
        free(n);
        free(failure_at);
        return 0;
}
