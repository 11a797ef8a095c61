/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_CONTAIN_H
#define RINGMASTER_CONTAIN_H

/*
 * Job containment: nothing a rank started outlives ringmaster, even when
 * ringmaster is SIGKILLed (PR_SET_PDEATHSIG reaches only the ranks
 * themselves).  docs/containment.md has the design and why it keeps
 * cudaIpc between ranks working.
 *
 * Two mechanisms, the strongest this host gives (contain_new picks):
 *
 *   CONTAIN_CGROUP   a child cgroup (v2) of ringmaster's own, which every
 *                    rank joins before exec; its descendants cannot leave
 *                    it.  cgroup.kill (Linux 5.14) ends all of it at once.
 *                    Needs a cgroup ringmaster may write: root on a host
 *                    whose cgroups no systemd manages, or a delegated one
 *                    (a unit with Delegate=yes, a user's user@.service).
 *   CONTAIN_NAMESPACE  ringmaster is PID 1 (a container's init) and no
 *                    cgroup can be had: when it dies, the kernel kills
 *                    every process of its PID namespace; no watcher.
 *   CONTAIN_WATCHER  no cgroup to be had: the ranks' sessions (each rank
 *                    leads one, setsid) and every process whose
 *                    environment carries the job's marker (the caller's
 *                    RINGMASTER_RUN_DIR=..., one per ringmaster: several
 *                    nodes of one run id on one host stay apart) are killed.
 *
 * In both, a watcher process (double-forked, so not ringmaster's child,
 * and in a session of its own) holds the read end of a pipe that only
 * ringmaster can write.  EOF without the "done" record means ringmaster
 * died: the watcher kills the job (cgroup.kill, or the sessions and the
 * run's processes) and removes the cgroup.
 *
 * Rules for the caller:
 *   - contain_new() before PR_SET_CHILD_SUBREAPER and before any fork of a
 *     rank: the watcher must not be re-parented to ringmaster.
 *   - contain_child_join() in each rank's child between fork and exec; it
 *     is async-signal-safe (one write()).  The fd it uses is O_CLOEXEC.
 *   - contain_rank_started()/ended() for each rank (the watcher mode's
 *     sessions; harmless in cgroup mode).
 *   - contain_kill() after the ranks and orphans were reaped: ends whatever
 *     is left (cgroup mode; the subreaper already reaped the rest).
 *   - contain_stale_swept() after contain_new(), to log what the sweep of
 *     earlier runs' leftover cgroups ended (cgroup_sweep_stale in contain.c).
 *   - contain_free() at the end: tells the watcher the job ended cleanly,
 *     removes the cgroup; accepts NULL and returns NULL.
 * Errors are negative errnos; nothing here logs but contain_new()'s
 * choice, at debug level, and the watcher's one line when it acts.
 */

#include <stdbool.h>
#include <sys/types.h>

enum contain_mode {
        CONTAIN_NONE,       /* --contain none: only PR_SET_PDEATHSIG and the subreaper */
        CONTAIN_WATCHER,
        CONTAIN_CGROUP,
        CONTAIN_NAMESPACE,  /* ringmaster is its PID namespace's init: the kernel kills all of it when it dies */
        CONTAIN_AUTO,       /* contain_new's request: the strongest available */
};

struct contain;

const char *contain_mode_name(enum contain_mode m);

/*
 * Sets up containment for run_id (the cgroup's name) and marker (an
 * environment entry "NAME=value" every rank and its descendants get, for
 * the watcher mode): want is CONTAIN_AUTO (cgroup, else
 * watcher), or one mode exactly (-EOPNOTSUPP with *ret_why set when it
 * cannot be had: a static string naming the reason).
 */
int contain_new(const char *run_id, const char *marker, enum contain_mode want, struct contain **ret,
                const char **ret_why);

enum contain_mode contain_get_mode(const struct contain *c);
/* The job's cgroup folder (cgroup mode), else NULL. */
const char *contain_cgroup_path(const struct contain *c);
/* Why cgroup mode could not be had (CONTAIN_WATCHER under auto), else NULL. */
const char *contain_fallback_reason(const struct contain *c);

/*
 * Cgroup mode: how many job cgroups of earlier runs contain_new() found
 * stale beside ours (their ringmaster and watcher both dead) and removed,
 * and in *ret_processes how many processes were left in them, killed.
 */
unsigned contain_stale_swept(const struct contain *c, unsigned *ret_processes);

/* In the forked child, before exec: joins the job's cgroup (0 when there is none). Async-signal-safe. */
int contain_child_join(const struct contain *c);

void contain_rank_started(struct contain *c, pid_t pid);
void contain_rank_ended(struct contain *c, pid_t pid);

/* Kills whatever of the job is left (cgroup mode: cgroup.kill); returns how many processes were left, or < 0. */
int contain_kill(struct contain *c);

struct contain *contain_free(struct contain *c);

#endif
