/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_NODE_VIEW_H
#define RINGMASTER_NODE_VIEW_H

/*
 * The job-wide view of every rank's progress across nodes, for the
 * straggler rule across nodes (deadline.h has the rule within one node).
 * Each node publishes its ranks' progress (cluster.h, phases/N) as
 *
 *     {"node":N,"ranks":{"8":{"phases":["dist-init","load"],"ready":false},...}}
 *
 * (global ranks; the phases each rank entered, in order; whether it said
 * READY=1).  The leader feeds every node's record into a node_view as it
 * arrives and asks node_view_find_straggler(): a milestone (a phase name,
 * or READY) first reached by some rank at T, and a rank anywhere still
 * short of it at T + timeout, is a straggler.  A ready rank has reached
 * every phase; a rank of a node that has published nothing has reached
 * nothing.  Times are the leader's own clock (when a record arrived), so
 * clocks of other nodes never matter.
 *
 * Pure: no I/O, no logging.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct node_view;

struct node_view *node_view_new(int nnodes, int nproc_per_node);
struct node_view *node_view_free(struct node_view *v);

/* Node's record (the JSON above) as of now; -EBADMSG for a malformed one (the view is unchanged). */
int node_view_update(struct node_view *v, int node, const char *json, size_t len, uint64_t now);

struct node_straggler {
        char *milestone;                /* the phase, or NULL for READY */
        uint64_t reached_usec;          /* when the first rank reached it (the view's clock) */
        int first_rank;                 /* that rank */
        int *late;                      /* global ranks short of it, ascending */
        size_t n_late;
        char *message;                  /* "rank 9 (node 1) has not reached phase 'load' 5.0 s after rank 0 (node 0) did" */
};
void node_straggler_done(struct node_straggler *s);

/* 1 and *ret when a milestone's timeout has passed at now with ranks short of it; 0 when none; -ENOMEM. */
int node_view_find_straggler(const struct node_view *v, uint64_t now, uint64_t timeout_usec,
                             struct node_straggler *ret);
/* When the next straggler deadline falls (UINT64_MAX: none pending). */
uint64_t node_view_next_deadline(const struct node_view *v, uint64_t timeout_usec);

/* Builds a node's record from its ranks: phases[i] is rank first_rank+i's entered phases (NULL-terminated). */
int node_view_record(int node, int first_rank, int n, char *const *const *phases, const bool *ready, char **ret);

#endif
