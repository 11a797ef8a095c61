/* SPDX-License-Identifier: MIT */
/*
 * The rendezvous' cost at N nodes (docs/multinode.md, "1000 nodes"):
 * N threads, each one node, against one etcd, all starting at once.
 * Baseline, in the same run: the same N nodes registering with static
 * ranks (cluster_start(): a lease, a create, a read) and stopping.  Then
 * the rendezvous (rdzv_join(), min = max = N): the time until every node
 * has its rank, and whether the ranks are 0..N-1 once each.  A benchmark,
 * not a test: bench-etcd-nodes.py --rendezvous runs it.
 *
 *     bench-rendezvous ENDPOINT NODES
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cluster.h"
#include "rendezvous.h"
#include "util.h"

struct node {
        pthread_t thread;
        int index, nodes, r;
        const char *endpoint;
        char run_id[64], host[32];
        uint64_t start_usec, done_usec;
        struct rdzv_result res;
};

static pthread_barrier_t go;

static void *static_node(void *userdata) {
        struct node *n = userdata;
        struct cluster_config cfg = {
                .endpoint = n->endpoint, .run_id = n->run_id, .node_rank = n->index, .nnodes = n->nodes,
                .host = n->host, .timeout_ms = 30000,
        };
        struct cluster *c = NULL;
        char *error = NULL;

        pthread_barrier_wait(&go);
        n->start_usec = now_usec();
        n->r = cluster_start(&cfg, &c, &error);
        n->done_usec = now_usec();
        if (n->r < 0)
                fprintf(stderr, "node %d: %s\n", n->index, error ? error : strerror(-n->r));
        free(error);
        cluster_stop(c, "done");
        return NULL;
}

static void *rdzv_node(void *userdata) {
        struct node *n = userdata;
        struct rdzv_config cfg = {
                .endpoint = n->endpoint, .run_id = n->run_id, .min_nodes = n->nodes, .max_nodes = n->nodes,
                .host = n->host, .addr = n->host, .join_timeout_usec = 600 * USEC_PER_SEC, .timeout_ms = 30000,
                .lease_ttl_s = 30,
        };
        char *error = NULL;

        pthread_barrier_wait(&go);
        n->start_usec = now_usec();
        n->r = rdzv_join(&cfg, &n->res, &error);
        n->done_usec = now_usec();
        if (n->r < 0)
                fprintf(stderr, "node %d: %s\n", n->index, error ? error : strerror(-n->r));
        free(error);
        return NULL;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* All nodes at once; returns the wall time (s) until the last one finished, and the median and last node's. */
static double phase(struct node *ns, int count, void *(*fn)(void *), const char *what, double *ret_median) {
        uint64_t first = UINT64_MAX, last = 0;
        uint64_t *each = calloc((size_t) count, sizeof(uint64_t));
        int failed = 0;

        pthread_barrier_init(&go, NULL, (unsigned) count);
        for (int i = 0; i < count; i++)
                pthread_create(&ns[i].thread, NULL, fn, &ns[i]);
        for (int i = 0; i < count; i++)
                pthread_join(ns[i].thread, NULL);
        pthread_barrier_destroy(&go);
        for (int i = 0; i < count; i++) {
                first = MIN(first, ns[i].start_usec);
                last = MAX(last, ns[i].done_usec);
                each[i] = ns[i].done_usec - ns[i].start_usec;
                failed += ns[i].r < 0;
        }
        qsort(each, (size_t) count, sizeof(*each), cmp_u64);
        *ret_median = (double) each[count / 2] / 1e6;
        printf("%s: %d nodes at once: all done in %.3f s (median node %.3f s, slowest %.3f s)%s\n", what, count,
               (double) (last - first) / 1e6, *ret_median, (double) each[count - 1] / 1e6,
               failed ? " FAILED" : "");
        free(each);
        return failed ? -1 : (double) (last - first) / 1e6;
}

int main(int argc, char **argv) {
        struct node *ns;
        int count;
        double t_static, t_rdzv, m_static, m_rdzv;
        bool *seen;
        int distinct = 0;

        if (argc != 3 || (count = atoi(argv[2])) < 1) {
                fprintf(stderr, "usage: bench-rendezvous ENDPOINT NODES\n");
                return 2;
        }
        ns = calloc((size_t) count, sizeof(*ns));
        seen = calloc((size_t) count, sizeof(bool));
        for (int i = 0; i < count; i++) {
                ns[i] = (struct node) { .index = i, .nodes = count, .endpoint = argv[1] };
                snprintf(ns[i].run_id, sizeof(ns[i].run_id), "bench-static-%d", getpid());
                snprintf(ns[i].host, sizeof(ns[i].host), "node%d", i);
        }
        t_static = phase(ns, count, static_node, "static ranks (baseline)", &m_static);
        for (int i = 0; i < count; i++)
                snprintf(ns[i].run_id, sizeof(ns[i].run_id), "bench-rdzv-%d", getpid());
        printf("rendezvous: start\n");
        fflush(stdout);
        t_rdzv = phase(ns, count, rdzv_node, "rendezvous", &m_rdzv);
        printf("rendezvous: end\n");
        for (int i = 0; i < count; i++)
                if (ns[i].r == 0 && ns[i].res.node_rank >= 0 && ns[i].res.node_rank < count &&
                    ns[i].res.nnodes == count && !seen[ns[i].res.node_rank]) {
                        seen[ns[i].res.node_rank] = true;
                        distinct++;
                }
        printf("ranks: %d distinct of 0..%d\n", distinct, count - 1);
        if (t_static > 0 && t_rdzv > 0)
                printf("ratio: the rendezvous took %.1fx the static registration (all done), %.1fx (median node)\n",
                       t_rdzv / t_static, m_rdzv / m_static);
        for (int i = 0; i < count; i++)
                rdzv_result_done(&ns[i].res, true);
        free(seen);
        free(ns);
        return distinct == count && t_static > 0 && t_rdzv > 0 ? 0 : 1;
}
