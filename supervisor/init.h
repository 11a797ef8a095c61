/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_INIT_H
#define RINGMASTER_INIT_H

/*
 * ringmaster as a container's init: PID 1, or `--init` under another init
 * (it is a child subreaper either way).  What tini does for its child,
 * ringmaster does for the job:
 *
 *   - every zombie is reaped: descendants re-parented to ringmaster become
 *     tracked orphans (job.c's /proc scan, sd-event reaps them), and the
 *     SIGCHLD handler also reaps any zombie child nobody claims (a child
 *     that is neither a live rank nor a tracked orphan), without taking a
 *     rank's exit from its sd-event child source;
 *   - SIGINT, SIGTERM, SIGHUP and SIGQUIT stop the job (job.c, as always);
 *     the other asynchronous signals tini forwards that mean something to a
 *     worker (init_forwarded_signals) go to every rank's process group;
 *   - the exit status is the job's: the rank's status, 128 + n when a signal
 *     killed it, 127/126 when the command could not be executed; after a
 *     forwarded stop signal the ranks' status when they ended within
 *     --grace (as tini: the workload decides), else 128 + the signal;
 *   - stdin goes to rank 0 (--stdin), and with one rank on a terminal the
 *     rank is the terminal's foreground job (--foreground, job.c);
 *   - signals ringmaster's parent ignored stay ignored in the ranks (spawn.h).
 */

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

struct run_options;

/* --init, or ringmaster is PID 1 (of its PID namespace). */
bool init_wanted(const struct run_options *o);

/*
 * The signals forwarded to the ranks as they are (the stop signals are
 * job.c's): SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM, SIGVTALRM, SIGPROF,
 * SIGURG, SIGCONT, SIGPWR, but --diagnose-signal and those in ignored (what
 * ringmaster's parent ignored: the ranks ignore them too).  They must be
 * blocked before sd-event can watch them.
 */
void init_forwarded_signals(const struct run_options *o, const sigset_t *ignored, sigset_t *ret);

struct init_forwarder;

/* Watches the forwarded signals and calls forward(sig, userdata) for each (run.c: job_forward_signal()). */
int init_forwarder_new(sd_event *event, const sigset_t *forwarded, void (*forward)(int sig, void *userdata),
                       void *userdata, struct init_forwarder **ret);
struct init_forwarder *init_forwarder_free(struct init_forwarder *f);

/*
 * Reaps zombie children that claimed() does not claim, until the first
 * zombie is one it does (its owner reaps it) or none is left.  Returns how
 * many it reaped.
 */
size_t init_reap_unclaimed(bool (*claimed)(pid_t pid, void *userdata), void *userdata);

#endif
