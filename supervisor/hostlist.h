/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_HOSTLIST_H
#define RINGMASTER_HOSTLIST_H

/*
 * Slurm's compressed host lists, as in SLURM_JOB_NODELIST and
 * SLURM_STEP_NODELIST: "node[01-04,07],gpu[1-2]-ib,login1".  Entries are
 * separated by commas outside brackets; a bracket holds numbers and ranges
 * (LO-HI), zero-padded to the width of LO; several brackets in one entry
 * expand as their product, left to right ("r[1-2]n[1-2]": r1n1 r1n2 r2n1
 * r2n2).  The order is the list's own, which is Slurm's node order (node 0
 * is the first host).
 *
 * Pure functions: no I/O, no logging.
 */

#include <stddef.h>

/* More hosts than this in one list: -E2BIG (Slurm's own limit is far below). */
#define HOSTLIST_MAX_HOSTS 1000000
/* A host name longer than this: -ENAMETOOLONG (HOST_NAME_MAX). */
#define HOSTLIST_MAX_NAME 255

/*
 * Expands list into a NULL-terminated vector of host names (free with
 * strv_free()).  -EINVAL for a malformed list (unbalanced bracket, a range
 * whose LO > HI, a non-digit in a bracket, an empty entry), -E2BIG past max
 * hosts (0: HOSTLIST_MAX_HOSTS), -ENAMETOOLONG, -ENOMEM.
 */
int hostlist_expand(const char *list, size_t max, char ***ret);

/* The n-th host (0-based) without expanding the rest; -ERANGE when the list is shorter. */
int hostlist_nth(const char *list, size_t n, char **ret);

/* The number of hosts the list names (the same errors as hostlist_expand()). */
int hostlist_count(const char *list, size_t *ret);

#endif
