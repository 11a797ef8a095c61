/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_RENDEZVOUS_H
#define RINGMASTER_RENDEZVOUS_H

/*
 * Node ranks from a rendezvous in etcd (etcd.h), for a job whose nodes are
 * not numbered by the command line or a launcher: each node's ringmaster
 * joins, the nodes number themselves in join order, and every node waits
 * until the round closes, as torchrun's etcd and c10d rendezvous do.  Keys
 * under /ringmaster/RUN_ID/rdzv/:
 *
 *   round          the current round, "0", "1", ... (no lease)
 *   R/nodes/LEASE  a node that joined round R, under its lease (the key is
 *                  the lease's id, so each node's own: joining is one
 *                  create): {"host":"...","addr":"...","port":P,"pid":P};
 *                  the key's
 *                  create revision (etcd's global order) is its place in the
 *                  join order; a joiner whose ringmaster dies leaves when
 *                  its lease ends
 *   R/closed       the round's members, written once (a transaction, no
 *                  lease) by the node that saw it complete: the first MAX in
 *                  join order, {"nnodes":N,"members":["nodes/LEASE",...],
 *                  "hosts":[...],"addrs":[...],"ports":[...]}; node rank = the index of
 *                  its key in "members"
 *
 * The first member in join order (the leader) watches the round and closes
 * it; the others watch the closed record only, and check every 2 s whether
 * they have become the first (the leader left): one event per join, not
 * one per waiting node.  A round closes when MAX nodes joined, or MIN
 * joined and --last-call (torchrun's last_call_timeout) passed since the
 * leader saw the MIN-th; then the
 * world is fixed for that round (no resizing while it runs).  A node that
 * finds the current round closed while its members are alive and it has no
 * failure recorded is late: a clear error.  A closed round whose members are
 * all gone (the job ended, or crashed and their leases ended), or whose job
 * recorded a failure (round/R/job/failure, cluster.h), is over: the joiner
 * moves the round on (compare-and-swap R -> R+1), so a restarted job never
 * meets the keys of an earlier one.  The node that closes round R deletes
 * the keys of rounds before R-1 (rdzv/K/ and round/K/), so a job restarted
 * again and again keeps two rounds' records.  MASTER_ADDR is node 0's published
 * address: its --node-addr, else its own address toward etcd (its host name
 * when that is loopback); MASTER_PORT is the port node 0 offered (each
 * joiner offers one, cfg->port: a port free on it when it joined, as
 * torchrun's rank-0 agent picks one), unless the caller was given one.
 *
 * rdzv_join() blocks (it runs before the event loop), bounded by the join
 * timeout; a pending stop signal (cfg->stop_signals) ends the wait.  The
 * node's lease comes back in the result: the caller hands it to the
 * cluster (cluster_config.lease), which keeps it alive and revokes it at
 * the end, or revokes it (rdzv_result_done() with revoke).
 */

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "etcd.h"

struct rdzv_config {
        const char *endpoint;           /* etcd: HOST:PORT or http(s)://HOST:PORT */
        const struct etcd_credentials *credentials;     /* TLS and etcd's user (etcd.h); NULL: none */
        const char *run_id;             /* the same on every node */
        int min_nodes, max_nodes;       /* 1 <= min <= max */
        const char *host;               /* this node's name, in the others' messages */
        const char *addr;               /* this node's address if it gets rank 0; NULL: its address toward etcd */
        int port;                       /* MASTER_PORT it offers should it get rank 0; 0: none */
        uint64_t join_timeout_usec;     /* 0: no limit */
        uint64_t last_call_usec;
        int lease_ttl_s;                /* 0: CLUSTER_DEFAULT_LEASE_TTL_S */
        long timeout_ms;                /* per etcd call; 0: 2000 */
        const sigset_t *stop_signals;   /* pending, they end the wait (-EINTR); NULL: none */
};

struct rdzv_result {
        int round;
        int node_rank;
        int nnodes;
        char *master_addr;              /* node 0's published address */
        int master_port;                /* node 0's published port; 0: it offered none */
        char *prefix;                   /* the round's keys for the cluster: /ringmaster/RUN_ID/round/R/ */
        char *endpoint;                 /* cfg->endpoint, to revoke the lease with */
        const struct etcd_credentials *credentials;     /* cfg->credentials (the caller's, kept until done) */
        int64_t lease;                  /* holds this node's slot until revoked or it ends */
        int signal;                     /* -EINTR: the stop signal that ended the wait */
};

/*
 * Joins and waits for the round to close.  0 and *ret filled; else a
 * negative errno with *ret_error a sentence naming the problem and the fix
 * (-ETIMEDOUT: the join timeout, naming who joined; -EBUSY: a late node;
 * -EINTR: a stop signal; -EOPNOTSUPP: built without libcurl).
 */
int rdzv_join(const struct rdzv_config *cfg, struct rdzv_result *ret, char **ret_error);
/* Frees *r; revoke: also revokes its lease (when the cluster did not take it). */
void rdzv_result_done(struct rdzv_result *r, bool revoke);

/*
 * The same through torch's TCPStore, as torchrun's c10d backend
 * (--rendezvous c10d://HOST:PORT, cfg->endpoint HOST:PORT): runs
 * `python -m ringmaster.rdzv_c10d` (engine/python/ringmaster/rdzv_c10d.py,
 * which says how) with pythonpath (NULL: inherited), reads its one JSON
 * line, and waits for it to end (the node at HOST hosts the store until
 * every node has its answer).  The node at HOST is node 0; the others join
 * in order.  No leases, rounds or cluster view: ret has no lease, prefix or
 * endpoint.  Errors as rdzv_join()'s.
 */
int rdzv_c10d_join(const struct rdzv_config *cfg, const char *python, const char *pythonpath,
                   struct rdzv_result *ret, char **ret_error);

/* The first signal of stop (NULL: none) pending for this thread, else 0: the joins' "stop waiting". */
int rdzv_stop_signal_pending(const sigset_t *stop);

/* /ringmaster/RUN_ID/round/R/ */
int rdzv_round_prefix(const char *run_id, int round, char **ret);

#endif
