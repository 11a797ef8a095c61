/* SPDX-License-Identifier: MIT */
/*
 * Slurm host lists (hostlist.c) and "where am I in the job"
 * (placement.c): static, Slurm, LeaderWorkerSet and Indexed Job, with
 * their environments simulated, and the errors a user meets.
 */
#include <errno.h>
#include <string.h>

#include "hostlist.h"
#include "placement.h"
#include "unit.h"
#include "util.h"

static char *joined(char **l) {
        static char buf[4096];
        size_t n = 0;

        buf[0] = 0;
        for (size_t i = 0; l && l[i]; i++)
                n += (size_t) snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? " " : "", l[i]);
        return buf;
}

static void expands(const char *list, const char *want) {
        char **l = NULL;
        int r = hostlist_expand(list, 0, &l);

        CHECK(r == 0, "hostlist_expand(%s) = %d", list, r);
        if (r == 0)
                CHECK(strcmp(joined(l), want) == 0, "hostlist_expand(%s) = '%s', want '%s'", list, joined(l), want);
        strv_free(l);
}

static void rejects(const char *list, int want) {
        char **l = NULL;
        int r = hostlist_expand(list, 0, &l);

        CHECK(r == want, "hostlist_expand(%s) = %d, want %d", list, r, want);
        CHECK(!l || r == 0, "no output on error");
        if (r == 0)
                strv_free(l);
}

static void test_hostlist(void) {
        char *s = NULL;
        size_t n = 0;
        char **l = NULL;

        expands("node1", "node1");
        expands("node[01-04,07]", "node01 node02 node03 node04 node07");
        expands("a,b,c", "a b c");
        expands("gpu[8-10]", "gpu8 gpu9 gpu10");
        expands("gpu[008-010]-ib", "gpu008-ib gpu009-ib gpu010-ib");
        expands("r[1-2]n[1-2]", "r1n1 r1n2 r2n1 r2n2");
        expands("x[1,3],login,y[09-11]", "x1 x3 login y09 y10 y11");
        expands("n[0]", "n0");
        expands("10.0.0.[1-3]", "10.0.0.1 10.0.0.2 10.0.0.3");

        rejects("", -EINVAL);
        rejects("node[1-", -EINVAL);
        rejects("node1-]", -EINVAL);
        rejects("node[4-1]", -EINVAL);
        rejects("node[a-b]", -EINVAL);
        rejects("node[]", -EINVAL);
        rejects("node[1,]", -EINVAL);
        rejects("a,,b", -EINVAL);
        rejects("a,", -EINVAL);
        rejects("n[[1]]", -EINVAL);
        rejects("n[0-99999999]", -E2BIG);
        rejects("n[0-9999]m[0-9999]", -E2BIG);

        CHECK(hostlist_expand("n[1-5]", 4, &l) == -E2BIG, "a max of 4 hosts refuses 5");
        CHECK(hostlist_count("node[01-04,07],login[1-2]", &n) == 0 && n == 7, "count 7, got %zu", n);
        CHECK(hostlist_nth("node[01-04,07],login[1-2]", 0, &s) == 0 && s && strcmp(s, "node01") == 0, "nth 0");
        free(s);
        s = NULL;
        CHECK(hostlist_nth("node[01-04,07],login[1-2]", 4, &s) == 0 && s && strcmp(s, "node07") == 0, "nth 4");
        free(s);
        s = NULL;
        CHECK(hostlist_nth("node[01-04,07],login[1-2]", 6, &s) == 0 && s && strcmp(s, "login2") == 0, "nth 6");
        free(s);
        s = NULL;
        CHECK(hostlist_nth("node[01-04,07]", 5, &s) == -ERANGE && !s, "nth past the end");
        /* A 4096-node list without expanding it. */
        CHECK(hostlist_nth("gpu-[0000-4095]", 4095, &s) == 0 && s && strcmp(s, "gpu-4095") == 0, "nth 4095");
        free(s);
}

/* ------------------------------------------------------------ placement */

static struct placement_request request(void) {
        return (struct placement_request) { .from = NODES_FROM_AUTO, .node_rank = -1, .nproc_per_node = 8 };
}

static int resolve(const struct placement_request *req, char **env, struct placement *p, char **err) {
        *err = NULL;
        *p = (struct placement) {};
        return placement_resolve(req, env, p, err);
}

static void test_single(void) {
        struct placement_request req = request();
        struct placement p;
        char *err;
        char *env[] = { "PATH=/bin", NULL };

        CHECK(resolve(&req, env, &p, &err) == 0, "single: %s", err);
        CHECK(p.source == NODE_SOURCE_SINGLE && p.nnodes == 1 && p.node_rank == 0, "one node");
        CHECK(!p.master_addr && p.master_port == 0, "no master: the caller's defaults (free port)");
        CHECK(placement_global_rank(&p, 3) == 3 && placement_world_size(&p) == 8, "global = local");
        placement_done(&p);

        /* A batch script's MASTER_ADDR/MASTER_PORT count as given. */
        char *env2[] = { "MASTER_ADDR=10.1.2.3", "MASTER_PORT=1234", NULL };
        CHECK(resolve(&req, env2, &p, &err) == 0, "env master: %s", err);
        CHECK(p.master_addr && strcmp(p.master_addr, "10.1.2.3") == 0 && p.master_port == 1234, "env master");
        placement_done(&p);
        char *env3[] = { "MASTER_PORT=http", NULL };
        CHECK(resolve(&req, env3, &p, &err) == -EINVAL && err && strstr(err, "MASTER_PORT='http'"),
              "a bad MASTER_PORT is named: %s", err);
        free(err);
}

static void test_static(void) {
        struct placement_request req = request();
        struct placement p;
        char *err;
        char *env[] = { NULL };

        req.nnodes = 2;
        req.node_rank = 1;
        req.master_addr = "10.0.0.1";
        CHECK(resolve(&req, env, &p, &err) == 0, "static: %s", err);
        CHECK(p.source == NODE_SOURCE_STATIC && p.nnodes == 2 && p.node_rank == 1, "static 1 of 2");
        CHECK(p.master_port == PLACEMENT_DEFAULT_PORT, "several nodes: torchrun's fixed port, got %d", p.master_port);
        CHECK(placement_global_rank(&p, 0) == 8 && placement_global_rank(&p, 7) == 15, "node 1's ranks are 8..15");
        CHECK(placement_world_size(&p) == 16 && placement_node_of(&p, 9) == 1 && placement_node_of(&p, 7) == 0,
              "world 16, node of");
        placement_done(&p);

        req.node_rank = 2;
        CHECK(resolve(&req, env, &p, &err) == -EINVAL && err && strstr(err, "--node-rank 2 is not below --nnodes 2"),
              "node rank past the nodes: %s", err);
        free(err);

        req.node_rank = -1;
        CHECK(resolve(&req, env, &p, &err) == -EINVAL && err && strstr(err, "without --node-rank"),
              "nnodes 2 without a node rank: %s", err);
        free(err);

        req.node_rank = 0;
        req.master_addr = NULL;
        CHECK(resolve(&req, env, &p, &err) == -EINVAL && err && strstr(err, "--master-addr"),
              "several nodes need a master address: %s", err);
        free(err);

        /* An explicit --node-rank wins over a launcher. */
        char *slurm[] = { "SLURM_STEP_NUM_NODES=4", "SLURM_NODEID=3", "SLURM_STEP_NODELIST=n[1-4]", NULL };
        req = request();
        req.nnodes = 2;
        req.node_rank = 0;
        req.master_addr = "h";
        CHECK(resolve(&req, slurm, &p, &err) == 0 && p.source == NODE_SOURCE_STATIC && p.nnodes == 2 &&
              p.node_rank == 0, "--node-rank wins over Slurm: %s", err);
        placement_done(&p);
}

static void test_slurm(void) {
        struct placement_request req = request();
        struct placement p;
        char *err;
        char *env[] = { "SLURM_JOB_ID=77", "SLURM_STEP_ID=0", "SLURM_STEP_NUM_NODES=4", "SLURM_STEP_NUM_TASKS=4",
                        "SLURM_NODEID=2", "SLURM_PROCID=2", "SLURM_STEP_NODELIST=gpu[01-03,07]",
                        "SLURM_JOB_NODELIST=gpu[01-03,07-09]", "SLURM_NNODES=6", NULL };

        CHECK(resolve(&req, env, &p, &err) == 0, "slurm: %s", err);
        CHECK(p.source == NODE_SOURCE_SLURM && p.nnodes == 4 && p.node_rank == 2, "the step's nodes (4), node 2");
        CHECK(p.master_addr && strcmp(p.master_addr, "gpu01") == 0, "MASTER_ADDR: the step's first host, got %s",
              p.master_addr);
        CHECK(p.node_name && strcmp(p.node_name, "gpu03") == 0, "this node's name: gpu03, got %s", p.node_name);
        CHECK(p.master_port == PLACEMENT_DEFAULT_PORT, "port 29500");
        CHECK(placement_global_rank(&p, 1) == 17, "global rank 2*8+1");
        placement_done(&p);
        {
                /* slurmd's NodeName wins over the list (several slurmd a machine, or names unlike the hosts'). */
                char *named[] = { "SLURM_STEP_NUM_NODES=2", "SLURM_STEP_NUM_TASKS=2", "SLURM_NODEID=1",
                                  "SLURM_PROCID=1", "SLURM_STEP_NODELIST=n[1-2]", "SLURMD_NODENAME=n2-real",
                                  "SLURM_STEP_ID=0", NULL };
                CHECK(resolve(&req, named, &p, &err) == 0, "slurm with SLURMD_NODENAME: %s", err);
                CHECK(p.node_name && strcmp(p.node_name, "n2-real") == 0, "this node's name: SLURMD_NODENAME's, got %s",
                      p.node_name);
                placement_done(&p);
        }

        /* --master-addr / MASTER_ADDR win over the first host. */
        req.master_addr = "10.9.9.9";
        CHECK(resolve(&req, env, &p, &err) == 0 && strcmp(p.master_addr, "10.9.9.9") == 0, "--master-addr wins");
        placement_done(&p);
        req.master_addr = NULL;

        /* --nnodes that disagrees. */
        req.nnodes = 2;
        CHECK(resolve(&req, env, &p, &err) == -EINVAL && err && strstr(err, "slurm says 4 nodes"),
              "disagreeing --nnodes: %s", err);
        free(err);
        req.nnodes = 4;
        CHECK(resolve(&req, env, &p, &err) == 0, "agreeing --nnodes: %s", err);
        placement_done(&p);
        req.nnodes = 0;

        /* srun -n 8 on 4 nodes: two ringmasters per node. */
        char *many[] = { "SLURM_STEP_ID=0", "SLURM_STEP_NUM_NODES=4", "SLURM_STEP_NUM_TASKS=8", "SLURM_NODEID=1",
                         "SLURM_PROCID=3", "SLURM_STEP_NODELIST=n[1-4]", NULL };
        CHECK(resolve(&req, many, &p, &err) == -EINVAL && err && strstr(err, "--ntasks-per-node=1"),
              "two tasks per node refused: %s", err);
        free(err);

        char *badlist[] = { "SLURM_STEP_ID=0", "SLURM_STEP_NUM_NODES=2", "SLURM_NODEID=1",
                            "SLURM_STEP_NODELIST=n[1-", NULL };
        CHECK(resolve(&req, badlist, &p, &err) == -EINVAL && err && strstr(err, "SLURM_STEP_NODELIST='n[1-'"),
              "a malformed list is named: %s", err);
        free(err);

        char *short_list[] = { "SLURM_STEP_ID=0", "SLURM_STEP_NUM_NODES=3", "SLURM_NODEID=1",
                               "SLURM_STEP_NODELIST=n[1-2]", NULL };
        CHECK(resolve(&req, short_list, &p, &err) == -EINVAL && err && strstr(err, "names 2 hosts"),
              "a list of the wrong length: %s", err);
        free(err);

        char *badid[] = { "SLURM_STEP_ID=0", "SLURM_STEP_NUM_NODES=2", "SLURM_NODEID=5",
                          "SLURM_STEP_NODELIST=n[1-2]", NULL };
        CHECK(resolve(&req, badid, &p, &err) == -EINVAL && err && strstr(err, "SLURM_NODEID='5'"),
              "a node id past the nodes: %s", err);
        free(err);

        /* A batch script (no step): auto does not take it for a multi-node launch ... */
        char *batch[] = { "SLURM_JOB_ID=77", "SLURM_NNODES=2", "SLURM_NODEID=0", "SLURM_PROCID=0",
                          "SLURM_JOB_NODELIST=n[1-2]", NULL };
        CHECK(resolve(&req, batch, &p, &err) == 0 && p.source == NODE_SOURCE_SINGLE && p.nnodes == 1,
              "the batch script's own shell is one node: %s", err);
        placement_done(&p);
        /* ... --nodes-from slurm does, with the job's variables. */
        req.from = NODES_FROM_SLURM;
        CHECK(resolve(&req, batch, &p, &err) == 0 && p.source == NODE_SOURCE_SLURM && p.nnodes == 2 &&
              strcmp(p.master_addr, "n1") == 0, "--nodes-from slurm in a batch script: %s", err);
        placement_done(&p);
        char *none[] = { NULL };
        CHECK(resolve(&req, none, &p, &err) == -EINVAL && err && strstr(err, "srun"),
              "--nodes-from slurm outside Slurm: %s", err);
        free(err);

        /* --nodes-from none ignores Slurm. */
        req.from = NODES_FROM_NONE;
        CHECK(resolve(&req, env, &p, &err) == 0 && p.source == NODE_SOURCE_SINGLE, "--nodes-from none");
        placement_done(&p);
}

static void test_lws(void) {
        struct placement_request req = request();
        struct placement p;
        char *err;
        char *env[] = { "LWS_LEADER_ADDRESS=vllm-0.vllm.default", "LWS_GROUP_SIZE=2", "LWS_WORKER_INDEX=1",
                        "LWS_NAME=vllm", NULL };

        CHECK(resolve(&req, env, &p, &err) == 0, "lws: %s", err);
        CHECK(p.source == NODE_SOURCE_LWS && p.nnodes == 2 && p.node_rank == 1, "worker 1 of 2");
        CHECK(strcmp(p.master_addr, "vllm-0.vllm.default") == 0 && p.master_port == 29500, "the leader, 29500");
        placement_done(&p);

        char *bad[] = { "LWS_LEADER_ADDRESS=l", "LWS_GROUP_SIZE=2", "LWS_WORKER_INDEX=2", NULL };
        CHECK(resolve(&req, bad, &p, &err) == -EINVAL && err && strstr(err, "LWS_WORKER_INDEX='2'"),
              "an index past the group: %s", err);
        free(err);
        char *noleader[] = { "LWS_GROUP_SIZE=2", "LWS_WORKER_INDEX=0", NULL };
        CHECK(resolve(&req, noleader, &p, &err) == -EINVAL && err && strstr(err, "LWS_LEADER_ADDRESS"),
              "no leader address: %s", err);
        free(err);
}

static void test_indexed_job(void) {
        struct placement_request req = request();
        struct placement p;
        char *err;
        char *env[] = { "JOB_COMPLETION_INDEX=3", NULL };

        CHECK(resolve(&req, env, &p, &err) == -EINVAL && err && strstr(err, "--nnodes"),
              "an Indexed Job needs --nnodes: %s", err);
        free(err);
        req.nnodes = 4;
        CHECK(resolve(&req, env, &p, &err) == -EINVAL && err && strstr(err, "--master-addr"),
              "and a master address: %s", err);
        free(err);
        req.master_addr = "train-0.train";
        CHECK(resolve(&req, env, &p, &err) == 0 && p.source == NODE_SOURCE_INDEXED_JOB && p.node_rank == 3 &&
              p.nnodes == 4, "index 3 of 4: %s", err);
        placement_done(&p);
        req.nnodes = 3;
        CHECK(resolve(&req, env, &p, &err) == -EINVAL && err && strstr(err, "JOB_COMPLETION_INDEX='3'"),
              "an index past --nnodes: %s", err);
        free(err);
}

/* --store without --node-rank or a launcher: the rendezvous numbers the nodes (the caller joins). */
static void test_rendezvous(void) {
        struct placement_request req = request();
        struct placement p;
        char *err;
        char *env[] = { NULL };
        char *lws[] = { "LWS_GROUP_SIZE=2", "LWS_WORKER_INDEX=1", "LWS_LEADER_ADDRESS=lead", NULL };

        req.nnodes = 3;
        req.store = true;
        CHECK(resolve(&req, env, &p, &err) == 0, "rendezvous: %s", err);
        CHECK(p.source == NODE_SOURCE_RENDEZVOUS && p.nnodes == 3 && p.min_nnodes == 3 && p.node_rank == -1,
              "numbered by the rendezvous: source %d, %d..%d nodes, rank %d", p.source, p.min_nnodes, p.nnodes,
              p.node_rank);
        CHECK(!p.master_addr && p.master_port == 0, "MASTER_ADDR and MASTER_PORT from node 0 (port %d)",
              p.master_port);
        CHECK(strcmp(node_source_to_string(p.source), "rendezvous") == 0, "its name");
        placement_done(&p);

        /* Elastic: MIN:MAX. */
        req.min_nnodes = 2;
        req.nnodes = 4;
        req.master_addr = "m0";
        CHECK(resolve(&req, env, &p, &err) == 0, "elastic: %s", err);
        CHECK(p.source == NODE_SOURCE_RENDEZVOUS && p.min_nnodes == 2 && p.nnodes == 4, "2..4 nodes");
        CHECK(p.master_addr && strcmp(p.master_addr, "m0") == 0, "a given MASTER_ADDR is kept");
        placement_done(&p);
        req.master_port = 29444;
        CHECK(resolve(&req, env, &p, &err) == 0 && p.master_port == 29444, "a given MASTER_PORT is kept: %d",
              p.master_port);
        placement_done(&p);
        req.master_port = 0;

        /* A launcher numbers the nodes: no rendezvous, and no elastic count. */
        req.master_addr = NULL;
        req.min_nnodes = 0;
        req.nnodes = 0;
        CHECK(resolve(&req, lws, &p, &err) == 0 && p.source == NODE_SOURCE_LWS && p.node_rank == 1,
              "LWS wins over the rendezvous: %s", err);
        placement_done(&p);
        req.min_nnodes = 1;
        req.nnodes = 2;
        CHECK(resolve(&req, lws, &p, &err) == -EINVAL && err && strstr(err, "(elastic), but lws numbers"),
              "elastic under a launcher: %s", err);
        free(err);

        /* Refused: elastic without a store, elastic with --node-rank, MIN > MAX. */
        req = request();
        req.min_nnodes = 2;
        req.nnodes = 4;
        CHECK(resolve(&req, env, &p, &err) == -EINVAL && err && strstr(err, "needs a rendezvous") &&
              strstr(err, "--store etcd://"), "elastic without a store: %s", err);
        free(err);
        req.store = true;
        req.node_rank = 1;
        CHECK(resolve(&req, env, &p, &err) == -EINVAL && err && strstr(err, "leave --node-rank out"),
              "elastic with a node rank: %s", err);
        free(err);
        req.node_rank = -1;
        req.min_nnodes = 5;
        CHECK(resolve(&req, env, &p, &err) == -EINVAL && err && strstr(err, "MIN <= MAX"), "MIN > MAX: %s", err);
        free(err);
        /* Without a store, several nodes and no rank: the error says the store is a way too. */
        req = request();
        req.nnodes = 2;
        CHECK(resolve(&req, env, &p, &err) == -EINVAL && err && strstr(err, "--store"), "the hint: %s", err);
        free(err);
}

static void test_names(void) {
        enum nodes_from f;

        CHECK(nodes_from_parse("slurm", &f) == 0 && f == NODES_FROM_SLURM, "slurm");
        CHECK(nodes_from_parse("indexed-job", &f) == 0 && f == NODES_FROM_INDEXED_JOB, "indexed-job");
        CHECK(nodes_from_parse("k8s", &f) == -EINVAL, "k8s is not a source");
        for (int i = 0; i < _NODES_FROM_MAX; i++)
                CHECK(nodes_from_parse(nodes_from_to_string((enum nodes_from) i), &f) == 0 && (int) f == i,
                      "round trip %d", i);
}

int main(void) {
        test_hostlist();
        test_single();
        test_static();
        test_slurm();
        test_lws();
        test_indexed_job();
        test_rendezvous();
        test_names();
        printf("%s\n", failures ? "FAILED" : "ok");
        return failures ? 1 : 0;
}
