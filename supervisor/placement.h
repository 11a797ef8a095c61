/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_PLACEMENT_H
#define RINGMASTER_PLACEMENT_H

/*
 * Where this ringmaster is in a job of several nodes: how many nodes, which
 * one this is, where rank 0 listens (MASTER_ADDR, MASTER_PORT), and so each
 * rank's global numbers.  One ringmaster runs per node and starts that
 * node's ranks; the node count and this node's index come from the command
 * line (--nnodes, --node-rank: "static", as torchrun's static rendezvous)
 * or from the launcher that started ringmaster:
 *
 *   Slurm (srun ... ringmaster run ...): SLURM_STEP_NUM_NODES (else
 *     SLURM_NNODES), SLURM_NODEID, SLURM_PROCID, SLURM_STEP_NUM_TASKS (one
 *     task per node is required), SLURM_STEP_NODELIST (else
 *     SLURM_JOB_NODELIST): MASTER_ADDR is its first host; SLURMD_NODENAME
 *     (else this node's place in that list) is the node's name in reports.
 *   Kubernetes LeaderWorkerSet: LWS_GROUP_SIZE, LWS_WORKER_INDEX (0: the
 *     leader), LWS_LEADER_ADDRESS (MASTER_ADDR).
 *   Kubernetes Indexed Job / JobSet: JOB_COMPLETION_INDEX is the node
 *     index; the node count (--nnodes) and MASTER_ADDR must be given.
 *
 * With a rendezvous (--store etcd://, or --rendezvous c10d://) and
 * neither --node-rank nor a launcher, a job of
 * several nodes (--nnodes N, or MIN:MAX: elastic) numbers its nodes through
 * the store's rendezvous (rendezvous.h): placement_resolve() says so
 * (NODE_SOURCE_RENDEZVOUS, node_rank -1, MASTER_ADDR only when given) and
 * the caller joins.  MIN:MAX without that rendezvous is refused.
 *
 * An explicit --node-rank wins over every launcher; an explicit --nnodes
 * must agree with the launcher's count.  MASTER_ADDR / MASTER_PORT in the
 * environment (batch scripts often export them) count as given when the
 * command line does not give them.  A job of several nodes needs a fixed
 * port (all nodes must agree): 29500, torchrun's, unless given; through
 * the rendezvous none (0) unless given: node 0 picks and publishes one.
 *
 * placement_resolve() is a pure function of the request and an environment
 * vector: no I/O, no logging; an error comes back as a sentence naming the
 * problem and the fix.
 */

#include <stdbool.h>

/* --nodes-from: where the node count and index come from when not given. */
enum nodes_from {
        NODES_FROM_AUTO,        /* Slurm step, LWS, Indexed Job: the first whose variables are set */
        NODES_FROM_NONE,        /* only --nnodes / --node-rank */
        NODES_FROM_SLURM,
        NODES_FROM_LWS,
        NODES_FROM_INDEXED_JOB,
        _NODES_FROM_MAX,
};

/* What placement_resolve() found. */
enum node_source {
        NODE_SOURCE_SINGLE,     /* one node, nothing said otherwise */
        NODE_SOURCE_STATIC,     /* --nnodes / --node-rank */
        NODE_SOURCE_SLURM,
        NODE_SOURCE_LWS,
        NODE_SOURCE_INDEXED_JOB,
        NODE_SOURCE_RENDEZVOUS, /* the store numbers the nodes as they join: node_rank -1 until then */
};

#define PLACEMENT_DEFAULT_PORT 29500
#define PLACEMENT_MAX_NODES 65536

struct placement_request {
        enum nodes_from from;
        int nnodes;                     /* 0: not given; MIN:MAX: the MAX */
        int min_nnodes;                 /* MIN:MAX: the MIN; 0: as nnodes */
        int node_rank;                  /* -1: not given */
        int nproc_per_node;             /* >= 1 */
        bool store;                     /* a rendezvous to number the nodes (--store, --rendezvous) */
        const char *master_addr;        /* NULL: not given */
        int master_port;                /* 0: not given */
};

struct placement {
        enum node_source source;
        int nnodes;                     /* RENDEZVOUS: the MAX */
        int min_nnodes;                 /* RENDEZVOUS: the MIN (else nnodes) */
        int node_rank;                  /* RENDEZVOUS: -1 */
        int nproc_per_node;
        char *master_addr;              /* NULL: single node and not given (the caller's default), or
                                           RENDEZVOUS and not given (node 0 publishes it) */
        int master_port;                /* 0: single node and not given (a free port), or RENDEZVOUS and
                                           not given (node 0 publishes one) */
        char *node_name;                /* the launcher's name for this node (Slurm: SLURMD_NODENAME, else its
                                           place in the node list); NULL: not known (Kubernetes: the host name
                                           is the pod's name already) */
};

/* "none", "auto", "slurm", "lws", "indexed-job"; -EINVAL for anything else. */
int nodes_from_parse(const char *s, enum nodes_from *ret);
const char *nodes_from_to_string(enum nodes_from f);
const char *node_source_to_string(enum node_source s);

/*
 * Resolves req against env (a NULL-terminated KEY=VALUE vector, e.g.
 * environ).  On success fills *ret (release with placement_done()) and
 * returns 0; on error returns -EINVAL (or -ENOMEM) and, for -EINVAL, sets
 * *ret_error to an allocated sentence for the user.
 */
int placement_resolve(const struct placement_request *req, char *const *env, struct placement *ret,
                      char **ret_error);
void placement_done(struct placement *p);

/* A rank's global numbers: torchrun's, for one role and equal nodes. */
static inline int placement_global_rank(const struct placement *p, int local_rank) {
        return p->node_rank * p->nproc_per_node + local_rank;
}
static inline int placement_world_size(const struct placement *p) {
        return p->nnodes * p->nproc_per_node;
}
/* Which node (0-based) holds a global rank. */
static inline int placement_node_of(const struct placement *p, int global_rank) {
        return global_rank / p->nproc_per_node;
}

#endif
