/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_CLUSTER_H
#define RINGMASTER_CLUSTER_H

/*
 * The cross-node view of a job of several nodes, kept in etcd (etcd.h).
 * Each node's ringmaster holds one lease (liveness: its keys vanish when
 * it stops renewing).  Keys under /ringmaster/RUN_ID/:
 *
 *   job/leader  node 0's record, under its lease
 *   nodes/N     node N's record (N > 0), under its lease:
 *               {"node":N,"host":"...","pid":P,"state":"joined|running|done|failed"}
 *   phases/N    node N's ranks' progress (node-view.h), under its lease
 *   job/failure the job's first failure, written once (a transaction),
 *               without a lease, so it outlives the node that wrote it:
 *               {"node":N,"host":"...","rank":R,"cause":"..."}
 *
 * Node 0, the leader, watches the whole prefix: every node's record and
 * progress; it turns a lost node or a straggler into job/failure.  Every
 * other node watches job/ only: the failure and the leader's record.  So a
 * join, a phase change or a lease renewal is one event for one watcher, and
 * a failure one event for each node (docs/multinode.md, "1000 nodes").  A
 * node whose record vanishes while neither "done" nor "failed" is lost.  Without a store,
 * each node supervises its own ranks only.
 *
 * Two threads per cluster do the blocking etcd calls (the lease and the
 * writes; the watch); the supervisor's event loop only reads events, when
 * cluster_fd() is readable.  Writes are queued (cluster_set_state(),
 * cluster_set_phases()) and sent in order; cluster_report_failure() waits
 * for its transaction, bounded by the client timeout.
 */

#include <stdbool.h>
#include <stdint.h>

#include "etcd.h"

struct cluster;

#define CLUSTER_DEFAULT_LEASE_TTL_S 5
#define CLUSTER_KEY_ROOT "/ringmaster/"

struct cluster_config {
        const char *endpoint;           /* etcd: HOST:PORT or http(s)://HOST:PORT */
        const struct etcd_credentials *credentials;     /* TLS and etcd's user (etcd.h); NULL: none */
        const char *run_id;             /* the same on every node */
        int node_rank;
        int nnodes;
        const char *host;               /* this node's name, for reports */
        int lease_ttl_s;                /* 0: CLUSTER_DEFAULT_LEASE_TTL_S */
        long timeout_ms;                /* per etcd call; 0: 2000 */
        const char *prefix;             /* the keys' prefix; NULL: /ringmaster/RUN_ID/ */
        int64_t lease;                  /* a lease to adopt (the rendezvous'); 0: grant one */
};

enum cluster_event_type {
        CLUSTER_NODE_JOINED,    /* node, host: first seen (the leader sees every node, others the leader) */
        CLUSTER_NODE_STATE,     /* node, state: its record changed */
        CLUSTER_NODE_LOST,      /* node, host: its lease expired (or was revoked) before "done" or "failed" */
        CLUSTER_FAILURE,        /* node, host, rank, cause: the job's first failure */
        CLUSTER_PHASES,         /* node, json: its ranks' progress (the leader only) */
        CLUSTER_STORE_LOST,     /* cause: this node can no longer reach etcd, or its own lease expired */
};

struct cluster_event {
        enum cluster_event_type type;
        int node;
        int rank;               /* FAILURE: -1 when not a rank's */
        char *host;
        char *state;
        char *cause;
        char *json;             /* PHASES: the record */
        uint64_t received_usec; /* CLOCK_MONOTONIC when the watch delivered it */
};
void cluster_event_done(struct cluster_event *e);

/*
 * Grants the lease (or adopts cfg->lease, renewing it at once: -ETIME
 * when it has already ended), writes nodes/N ("joined"), reads what is there, and
 * starts the threads.  -EEXIST (with *ret_error) when node N is already
 * registered by someone else (two nodes with one --node-rank); other
 * errors name the endpoint and etcd's or curl's message.
 */
int cluster_start(const struct cluster_config *cfg, struct cluster **ret, char **ret_error);
/* Stops the threads; state "done" or "failed" is written first (NULL: nothing), then the lease revoked. */
struct cluster *cluster_stop(struct cluster *c, const char *final_state);

/* Readable when events are waiting (a pipe: drain it with cluster_pop()). */
int cluster_fd(const struct cluster *c);
/* 1 and *ret filled, or 0 when none is waiting. */
int cluster_pop(struct cluster *c, struct cluster_event *ret);

/* Queued writes of this node's record and phases (the newest wins when several wait). */
int cluster_set_state(struct cluster *c, const char *state);
int cluster_set_phases(struct cluster *c, const char *json);
/*
 * Records the job's failure (rank: global rank, -1 none) unless one is
 * already recorded; *ret_first says whether this one was first.  Blocks
 * for one transaction.
 */
int cluster_report_failure(struct cluster *c, int rank, const char *cause, bool *ret_first);

/* The nodes seen so far (registered and not lost): every node on the leader; itself and the leader elsewhere. */
int cluster_nodes_present(struct cluster *c);

#endif
