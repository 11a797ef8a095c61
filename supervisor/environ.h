/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_ENVIRON_H
#define RINGMASTER_ENVIRON_H

/*
 * A worker's environment: the supervisor's own, minus what describes the
 * supervisor rather than the worker (NOTIFY_SOCKET, WATCHDOG_*, LISTEN_*,
 * JOURNAL_STREAM), plus torchrun's contract and RINGMASTER_*; NOTIFY_SOCKET
 * is then ringmaster's own notify socket (notify.h).
 */

#include <stdbool.h>

struct worker_env {
        const char *run_id;
        const char *run_dir;
        const char *shm_name;          /* NULL: no segment */
        const char *master_addr;
        int master_port;
        const char *role;
        int nproc;                      /* ranks of this node (LOCAL_WORLD_SIZE) */
        int rank;                       /* the local rank (LOCAL_RANK) */
        int nnodes;                     /* GROUP_WORLD_SIZE; 0 counts as 1 */
        int node_rank;                  /* GROUP_RANK: RANK = node_rank * nproc + rank */
        int restart_count;
        int max_restarts;
        const char *error_file;
        const char *cuda_visible_devices;  /* NULL: leave as inherited */
        /* Decided by diagnose.c (--python-hooks, NCCL_DEBUG). */
        const char *pythonpath;            /* NULL: leave as inherited */
        bool python_faulthandler;          /* PYTHONFAULTHANDLER=1, unless inherited */
        const char *nccl_debug_file;       /* NULL: leave as inherited */
        const char *notify_socket;         /* NOTIFY_SOCKET and RINGMASTER_NOTIFY_SOCKET; NULL: neither */
        bool worker_capture;               /* RINGMASTER_WORKER_CAPTURE=1: spawned workers' own pipes */
};

int worker_environ(char *const *base, const struct worker_env *w, char ***ret);

/* A TCP port that is free now (bound to port 0, then closed), as torchrun picks one. */
int find_free_port(int *ret);

#endif
