/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_RUN_NODES_H
#define RINGMASTER_RUN_NODES_H

/*
 * This node's part in a job of several nodes with a store (--store; the
 * keys are cluster.h's): it registers the node, publishes its ranks'
 * progress, records a local failure (a rank's, a deadline's) as the job's,
 * and stops this node's ranks when the job failed elsewhere
 * (job_node_failed(), exit status 112).  Node 0 also applies the straggler
 * rule across nodes (node-view.h), fails the job when a node is lost or
 * never registered (--join-timeout), and its report names the node, the
 * rank and the cause.  The cluster's events arrive on the supervisor's
 * event loop (an I/O source on cluster_fd()).  Without --store there is
 * none of this: run_nodes_start() returns 0 and NULL.
 *
 * When neither --node-rank nor a launcher numbers the nodes,
 * run_nodes_rendezvous() numbers them through the store first
 * (rendezvous.h): this node's rank, the round's node count, MASTER_ADDR;
 * the cluster then lives under that round's keys, on the rendezvous' lease.
 */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

struct job;
struct run_model;
struct run_options;
struct run_nodes;
struct placement;
struct rdzv_result;

/*
 * p is placement_resolve()'s NODE_SOURCE_RENDEZVOUS: joins (blocking, up to --join-timeout; SIGTERM, SIGINT,
 * SIGHUP or SIGQUIT pending ends the wait) and fills p's node rank, node count and MASTER_ADDR (unless
 * given), and *rdzv.  Errors are logged; -EINVAL for the user's.
 */
int run_nodes_rendezvous(const struct run_model *run, const struct run_options *o, struct placement *p,
                         struct rdzv_result *rdzv);
/* After the run's identity and place are set (run.c), before job_start(); rdzv: the rendezvous' (its lease is
 * taken: rdzv->lease becomes 0), or one that never ran ({}). */
int run_nodes_start(sd_event *event, struct job *job, const struct run_options *o, struct rdzv_result *rdzv,
                    struct run_nodes **ret);
/* After every batch of the job's events (job_setup.changed). */
void run_nodes_changed(struct run_nodes *n, const struct run_model *run);
/*
 * --max-restarts with the etcd rendezvous: a failure on any node ends every node's run, and each ringmaster
 * executes itself again (RINGMASTER_NODE_RESTART=K, read and unset by run_nodes_attempt()), joining the next
 * round, up to --max-restarts times.  run_nodes_restart_wanted() says whether this run ends so (logging which
 * round failed either way); run_nodes_reexec() sleeps delay_usec, stops being a subreaper, and executes
 * /proc/self/exe with "ringmaster" and argv (run_main's: "run" first); it returns only on failure.
 */
int run_nodes_attempt(void);
bool run_nodes_restart_wanted(const struct run_model *run, const struct run_options *o, const struct rdzv_result *rdzv,
                              int status);
int run_nodes_reexec(char **argv, int attempt, uint64_t delay_usec);

/* At the end: this node's final state ("done" for status 0, else "failed"), the lease revoked. */
struct run_nodes *run_nodes_stop(struct run_nodes *n, int status);

#endif
