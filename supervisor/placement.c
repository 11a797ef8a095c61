/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hostlist.h"
#include "parse-util.h"
#include "placement.h"
#include "util.h"

static const char *const nodes_from_names[_NODES_FROM_MAX] = {
        [NODES_FROM_AUTO] = "auto",
        [NODES_FROM_NONE] = "none",
        [NODES_FROM_SLURM] = "slurm",
        [NODES_FROM_LWS] = "lws",
        [NODES_FROM_INDEXED_JOB] = "indexed-job",
};

int nodes_from_parse(const char *s, enum nodes_from *ret) {
        for (int i = 0; i < _NODES_FROM_MAX; i++)
                if (strcmp(s, nodes_from_names[i]) == 0) {
                        *ret = (enum nodes_from) i;
                        return 0;
                }
        return -EINVAL;
}

const char *nodes_from_to_string(enum nodes_from f) {
        return f >= 0 && f < _NODES_FROM_MAX ? nodes_from_names[f] : "?";
}

const char *node_source_to_string(enum node_source s) {
        switch (s) {
        case NODE_SOURCE_SINGLE: return "single";
        case NODE_SOURCE_STATIC: return "static";
        case NODE_SOURCE_SLURM: return "slurm";
        case NODE_SOURCE_LWS: return "lws";
        case NODE_SOURCE_INDEXED_JOB: return "indexed-job";
        case NODE_SOURCE_RENDEZVOUS: return "rendezvous";
        }
        return "?";
}

/* The first of the names that is set (and not empty), and which one it was. */
static const char *env_first(char *const *env, const char **ret_name, ...) {
        va_list ap;
        const char *name, *v = NULL;

        va_start(ap, ret_name);
        while ((name = va_arg(ap, const char *))) {
                v = strv_env_get(env, name);
                if (v && *v) {
                        *ret_name = name;
                        break;
                }
                v = NULL;
        }
        va_end(ap);
        return v;
}

/* An integer variable of the launcher's, in [min, max]. */
static int env_int(char *const *env, const char *name, long long min, long long max, int *ret, char **ret_error) {
        const char *v = strv_env_get(env, name);
        long long n;

        if (!v)
                return error_setf(ret_error, -EINVAL, "%s is not set", name);
        if (parse_int_range(v, min, max, &n) < 0)
                return error_setf(ret_error, -EINVAL, "%s='%s' is not a number from %lld to %lld", name, v, min, max);
        *ret = (int) n;
        return 0;
}

static bool slurm_step(char *const *env) {
        return strv_env_get(env, "SLURM_STEP_NUM_NODES") || strv_env_get(env, "SLURM_STEP_ID") || strv_env_get(env, "SLURM_STEPID");
}

static int resolve_slurm(char *const *env, struct placement *p, char **ret_error) {
        const char *name_nodes = NULL, *name_list = NULL, *name_tasks = NULL, *list;
        int nnodes, nodeid, procid, ntasks = -1, r;
        char *e = NULL;
        size_t listed;

        if (!env_first(env, &name_nodes, "SLURM_STEP_NUM_NODES", "SLURM_NNODES", "SLURM_JOB_NUM_NODES", NULL))
                return error_setf(ret_error, -EINVAL, "Slurm: neither SLURM_STEP_NUM_NODES nor SLURM_NNODES is set: start ringmaster "
                                       "with srun inside an allocation, or give --nnodes and --node-rank");
        r = env_int(env, name_nodes, 1, PLACEMENT_MAX_NODES, &nnodes, &e);
        if (r < 0)
                goto bad;
        r = env_int(env, "SLURM_NODEID", 0, nnodes - 1, &nodeid, &e);
        if (r < 0)
                goto bad;
        if (env_first(env, &name_tasks, "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", NULL)) {
                r = env_int(env, name_tasks, 1, 1 << 30, &ntasks, &e);
                if (r < 0)
                        goto bad;
                if (ntasks != nnodes)
                        return error_setf(ret_error, -EINVAL,
                                    "Slurm: %s=%d tasks on %s=%d nodes: ringmaster runs once per node and starts "
                                    "that node's ranks itself: use srun --ntasks-per-node=1 (and ringmaster's -n for "
                                    "the ranks of each node)", name_tasks, ntasks, name_nodes, nnodes);
        }
        if (strv_env_get(env, "SLURM_PROCID")) {
                r = env_int(env, "SLURM_PROCID", 0, 1 << 30, &procid, &e);
                if (r < 0)
                        goto bad;
                if (ntasks == nnodes && procid != nodeid)
                        return error_setf(ret_error, -EINVAL,
                                    "Slurm: SLURM_PROCID=%d but SLURM_NODEID=%d with one task per node: the step's "
                                    "tasks are not one per node in node order; use srun --ntasks-per-node=1",
                                    procid, nodeid);
        }
        p->nnodes = nnodes;
        p->node_rank = nodeid;
        list = env_first(env, &name_list, "SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST", NULL);
        if (list) {
                r = hostlist_count(list, &listed);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return error_setf(ret_error, -EINVAL, "Slurm: %s='%s' is not a host list Slurm would write (%s)", name_list,
                                    list, r == -E2BIG ? "too many hosts" : "malformed");
                if (listed != (size_t) nnodes)
                        return error_setf(ret_error, -EINVAL, "Slurm: %s names %zu hosts but %s=%d", name_list, listed, name_nodes,
                                    nnodes);
                if (!p->master_addr) {
                        r = hostlist_nth(list, 0, &p->master_addr);
                        if (r < 0)
                                return r == -ENOMEM ? r : error_setf(ret_error, -EINVAL, "Slurm: %s: no first host", name_list);
                }
                if (!strv_env_get(env, "SLURMD_NODENAME")) {
                        r = hostlist_nth(list, (size_t) nodeid, &p->node_name);
                        if (r == -ENOMEM)
                                return r;
                }
        }
        /* slurmd's own name for its node (NodeName=), which several slurmd on one machine do not share. */
        if (strv_env_get(env, "SLURMD_NODENAME") && *strv_env_get(env, "SLURMD_NODENAME")) {
                p->node_name = strdup(strv_env_get(env, "SLURMD_NODENAME"));
                if (!p->node_name)
                        return -ENOMEM;
        }
        if (!p->master_addr && nnodes > 1)
                return error_setf(ret_error, -EINVAL, "Slurm: no SLURM_STEP_NODELIST or SLURM_JOB_NODELIST to take node 0's address "
                                       "from: give --master-addr");
        return 0;
bad:
        if (r == -ENOMEM)
                return r;
        r = error_setf(ret_error, -EINVAL, "Slurm: %s", e);
        free(e);
        return r;
}

static int resolve_lws(char *const *env, struct placement *p, char **ret_error) {
        const char *leader = strv_env_get(env, "LWS_LEADER_ADDRESS");
        char *e = NULL;
        int r;

        r = env_int(env, "LWS_GROUP_SIZE", 1, PLACEMENT_MAX_NODES, &p->nnodes, &e);
        if (r == 0)
                r = env_int(env, "LWS_WORKER_INDEX", 0, p->nnodes - 1, &p->node_rank, &e);
        if (r < 0) {
                if (r == -ENOMEM)
                        return r;
                r = error_setf(ret_error, -EINVAL, "LeaderWorkerSet: %s (set by the LWS controller in every pod of a group)", e);
                free(e);
                return r;
        }
        if (!p->master_addr) {
                if (!leader || !*leader)
                        return error_setf(ret_error, -EINVAL, "LeaderWorkerSet: LWS_LEADER_ADDRESS is not set: give --master-addr");
                p->master_addr = strdup(leader);
                if (!p->master_addr)
                        return -ENOMEM;
        }
        return 0;
}

static int resolve_indexed_job(const struct placement_request *req, char *const *env, struct placement *p,
                               char **ret_error) {
        char *e = NULL;
        int r;

        if (req->nnodes <= 0)
                return error_setf(ret_error, -EINVAL, "Indexed Job: JOB_COMPLETION_INDEX says which node this is but not how many "
                                       "there are: give --nnodes (the Job's completions)");
        p->nnodes = req->nnodes;
        r = env_int(env, "JOB_COMPLETION_INDEX", 0, p->nnodes - 1, &p->node_rank, &e);
        if (r < 0) {
                if (r == -ENOMEM)
                        return r;
                r = error_setf(ret_error, -EINVAL, "Indexed Job: %s (--nnodes %d)", e, p->nnodes);
                free(e);
                return r;
        }
        if (!p->master_addr && p->nnodes > 1)
                return error_setf(ret_error, -EINVAL, "Indexed Job: no MASTER_ADDR: give --master-addr, the index-0 pod's name "
                                       "under the Job's headless service (e.g. JOB-0.SERVICE)");
        return 0;
}

static enum nodes_from detect(char *const *env) {
        if (slurm_step(env) && strv_env_get(env, "SLURM_NODEID"))
                return NODES_FROM_SLURM;
        if (strv_env_get(env, "LWS_WORKER_INDEX"))
                return NODES_FROM_LWS;
        if (strv_env_get(env, "JOB_COMPLETION_INDEX"))
                return NODES_FROM_INDEXED_JOB;
        return NODES_FROM_NONE;
}

int placement_resolve(const struct placement_request *req, char *const *env, struct placement *ret,
                      char **ret_error) {
        struct placement p = { .nproc_per_node = req->nproc_per_node };
        enum nodes_from from = req->from;
        bool elastic;
        const char *v;
        long long n;
        int r;

        if (req->nproc_per_node < 1)
                return error_setf(ret_error, -EINVAL, "the ranks per node must be at least 1");
        if (req->nnodes < 0 || req->nnodes > PLACEMENT_MAX_NODES)
                return error_setf(ret_error, -EINVAL, "--nnodes %d is out of range: give 1 to %d", req->nnodes, PLACEMENT_MAX_NODES);
        if (req->min_nnodes < 0 || req->min_nnodes > req->nnodes)
                return error_setf(ret_error, -EINVAL, "--nnodes %d:%d: give MIN:MAX with 0 < MIN <= MAX", req->min_nnodes,
                                  req->nnodes);
        elastic = req->min_nnodes > 0 && req->min_nnodes < req->nnodes;
        if (elastic && req->node_rank >= 0)
                return error_setf(ret_error, -EINVAL, "--nnodes %d:%d with --node-rank %d: an elastic job's nodes are "
                                  "numbered as they join (--store etcd://HOST:PORT, no --node-rank): give a fixed "
                                  "--nnodes, or leave --node-rank out", req->min_nnodes, req->nnodes, req->node_rank);
        if (elastic && !req->store)
                return error_setf(ret_error, -EINVAL, "--nnodes %d:%d (elastic) needs a rendezvous to number the nodes "
                                  "as they join: give --store etcd://HOST:PORT (and --run-id), or --rendezvous "
                                  "c10d://HOST:PORT; without one, give a fixed --nnodes and --node-rank", req->min_nnodes, req->nnodes);

        /* MASTER_ADDR and MASTER_PORT: the command line's, else the environment's. */
        if (req->master_addr)
                p.master_addr = strdup(req->master_addr);
        else if ((v = strv_env_get(env, "MASTER_ADDR")) && *v)
                p.master_addr = strdup(v);
        if ((req->master_addr || (v && *v)) && !p.master_addr)
                return -ENOMEM;
        p.master_port = req->master_port;
        if (p.master_port == 0 && (v = strv_env_get(env, "MASTER_PORT")) && *v) {
                if (parse_int_range(v, 1, 65535, &n) < 0) {
                        placement_done(&p);
                        return error_setf(ret_error, -EINVAL, "MASTER_PORT='%s' in the environment is not a port: give 1 to 65535, "
                                               "or --master-port", v);
                }
                p.master_port = (int) n;
        }

        if (req->node_rank >= 0) {
                /* Static: the command line says it all. */
                p.source = NODE_SOURCE_STATIC;
                p.nnodes = req->nnodes > 0 ? req->nnodes : 1;
                p.node_rank = req->node_rank;
                if (p.node_rank >= p.nnodes) {
                        r = error_setf(ret_error, -EINVAL, "--node-rank %d is not below --nnodes %d: number nodes from 0", p.node_rank,
                                 p.nnodes);
                        goto fail;
                }
        } else {
                if (from == NODES_FROM_AUTO)
                        from = detect(env);
                switch (from) {
                case NODES_FROM_SLURM:
                        p.source = NODE_SOURCE_SLURM;
                        r = resolve_slurm(env, &p, ret_error);
                        break;
                case NODES_FROM_LWS:
                        p.source = NODE_SOURCE_LWS;
                        r = resolve_lws(env, &p, ret_error);
                        break;
                case NODES_FROM_INDEXED_JOB:
                        p.source = NODE_SOURCE_INDEXED_JOB;
                        r = resolve_indexed_job(req, env, &p, ret_error);
                        break;
                default:
                        r = 0;
                        if (req->nnodes > 1 && req->store) {
                                /* Numbered as they join: the caller runs the rendezvous (rendezvous.h). */
                                p.source = NODE_SOURCE_RENDEZVOUS;
                                p.nnodes = req->nnodes;
                                p.node_rank = -1;
                                break;
                        }
                        if (req->nnodes > 1) {
                                r = error_setf(ret_error, -EINVAL, "--nnodes %d without --node-rank: say which node this is "
                                                    "(0 to %d), start ringmaster under srun, a LeaderWorkerSet "
                                                    "or an Indexed Job, which say it, or give --store "
                                                    "etcd://HOST:PORT (or --rendezvous c10d://HOST:PORT), where the "
                                                    "nodes number themselves as they join", req->nnodes, req->nnodes - 1);
                                break;
                        }
                        p.source = req->nnodes == 1 ? NODE_SOURCE_STATIC : NODE_SOURCE_SINGLE;
                        p.nnodes = 1;
                        p.node_rank = 0;
                }
                if (r < 0)
                        goto fail;
                if (elastic && p.source != NODE_SOURCE_RENDEZVOUS) {
                        r = error_setf(ret_error, -EINVAL, "--nnodes %d:%d (elastic), but %s numbers the nodes (%d): "
                                 "give a fixed --nnodes, or --nodes-from none to number them through the store",
                                 req->min_nnodes, req->nnodes, node_source_to_string(p.source), p.nnodes);
                        goto fail;
                }
                if (req->nnodes > 0 && req->nnodes != p.nnodes) {
                        r = error_setf(ret_error, -EINVAL, "--nnodes %d, but %s says %d nodes: leave --nnodes out, make them agree, or give --nodes-from none to ignore %s",
                                 req->nnodes, node_source_to_string(p.source), p.nnodes,
                                 node_source_to_string(p.source));
                        goto fail;
                }
        }
        /* The rendezvous' node 0 picks a free port and publishes it, as torchrun's rank-0 agent does. */
        if (p.nnodes > 1 && p.master_port == 0 && p.source != NODE_SOURCE_RENDEZVOUS)
                p.master_port = PLACEMENT_DEFAULT_PORT;
        p.min_nnodes = elastic ? req->min_nnodes : p.nnodes;
        if (p.nnodes > 1 && !p.master_addr && p.source != NODE_SOURCE_RENDEZVOUS) {
                r = error_setf(ret_error, -EINVAL, "%d nodes but no MASTER_ADDR: give --master-addr, the address of node 0",
                         p.nnodes);
                goto fail;
        }
        if ((long long) p.nnodes * p.nproc_per_node > 1 << 24) {
                r = error_setf(ret_error, -EINVAL, "%d nodes of %d ranks is more ranks than ringmaster supports", p.nnodes,
                         p.nproc_per_node);
                goto fail;
        }
        *ret = p;
        return 0;
fail:
        placement_done(&p);
        return r;
}

void placement_done(struct placement *p) {
        free(p->master_addr);
        free(p->node_name);
        *p = (struct placement) {};
}
