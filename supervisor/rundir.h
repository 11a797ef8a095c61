/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_RUNDIR_H
#define RINGMASTER_RUNDIR_H

/*
 * The run id and the run's private directory (mode 0700): it holds the
 * per-rank TORCHELASTIC_ERROR_FILE files and, later, the notify socket.
 *
 * By default it is $XDG_RUNTIME_DIR/ringmaster/<run-id>, or
 * /tmp/ringmaster-<uid>/<run-id> (the parent is checked: ours, not a link,
 * not open to others).  The supervisor holds an flock on the directory for
 * as long as it runs: an unlocked directory is a dead run's, and is removed
 * by the next run (run_dir_cleanup_stale) or reused by a run with its id.
 */

#include <stdbool.h>
#include <sys/types.h>

#include "shmring.h"

/* The run id names the run's segment too: libshmring's limit. */
#define RUN_ID_MAX SHMRING_RUN_ID_MAX

/* 1..RUN_ID_MAX of [A-Za-z0-9._-] (names.h), not starting with '.' or '-'. */
bool run_id_valid(const char *id);
/* A fresh random id ("rm-" and 12 of [a-z0-9]). */
int run_id_generate(char **ret);

struct run_dir {
        char *path;
        int fd;                 /* O_DIRECTORY, flock()ed */
        bool remove_dir;        /* we made it: rmdir at the end */
};

/*
 * Default parent for run directories, created when missing; -ENOTDIR,
 * -EPERM (not ours / open to others) with a logged explanation.
 */
int run_dir_default_parent(char **ret);

/*
 * Creates (or takes over a dead run's) directory.  explicit_path: --run-dir
 * (must be missing or empty); else parent/run_id.  -EBUSY when a live
 * supervisor holds it.
 */
int run_dir_open(const char *explicit_path, const char *parent, const char *run_id, struct run_dir **ret);

/* Removes what is inside, then the directory itself when we made it; frees. */
struct run_dir *run_dir_remove(struct run_dir *d);

/* Removes dead runs' directories under parent; returns how many. */
int run_dir_cleanup_stale(const char *parent);

#endif
