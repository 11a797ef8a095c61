/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_SDNOTIFY_H
#define RINGMASTER_SDNOTIFY_H

/*
 * ringmaster as a systemd Type=notify service: when ringmaster itself has
 * NOTIFY_SOCKET (read at start-up; the workers get the run's own socket,
 * notify.h), it tells the service manager, with sd_notify():
 *
 *   READY=1            once every rank is ready (with STATUS= and MAINPID=,
 *                      ringmaster's pid), once per run
 *   STATUS=            status_summary() (status.h), kept current: at most one
 *                      update every SDNOTIFY_STATUS_INTERVAL_USEC, but
 *                      READY, STOPPING and the final state go at once
 *   EXTEND_TIMEOUT_USEC  while the ranks start (before READY=1): the longest
 *                      extension a rank asked for, when it grows
 *   STOPPING=1         when the teardown that ends ringmaster starts (not
 *                      the one before a restart), or at the end
 *   ERRNO=             at the end, on failure: the first failing rank's
 *                      ERRNO= when it sent one; else ETIMEDOUT for a
 *                      deadline, the exec error (ENOENT, EACCES) when the
 *                      command could not be run, EIO for a rank that failed,
 *                      ringmaster's own error
 *   WATCHDOG=1         with WatchdogSec= (WATCHDOG_USEC, and WATCHDOG_PID
 *                      ringmaster's pid or unset), sd-event's watchdog pings
 *                      (sd_event_set_watchdog: every half period, from the
 *                      event loop, so a wedged loop stops them too) while
 *                      the job is healthy.  Not healthy, and no pings: while
 *                      a deadline that passed is diagnosed or tears the job
 *                      down, and while a ready rank that sent WATCHDOG=1 once
 *                      has sent none for longer than WatchdogSec: systemd's
 *                      watchdog then fires too.  Pings resume (at once) when
 *                      that rank pings again or the next attempt starts.
 */

#include <stdint.h>

#include <systemd/sd-event.h>

struct run_model;

#define SDNOTIFY_STATUS_INTERVAL_USEC (200 * UINT64_C(1000))

struct sdnotify;

/* *ret is NULL when ringmaster has no NOTIFY_SOCKET: every call then does nothing. */
int sdnotify_new(sd_event *event, struct sdnotify **ret);
struct sdnotify *sdnotify_free(struct sdnotify *n);

/* After every batch of the job's events (run->changed). */
void sdnotify_update(struct sdnotify *n, const struct run_model *run);

/*
 * The last word: STOPPING=1 (unless sent), the final STATUS=, ERRNO= on
 * failure.  job: the job after its loop, or NULL when it never ran; error
 * (a positive errno, or 0) then says why.
 */
void sdnotify_finish(struct sdnotify *n, const struct run_model *run, int exit_status, int error);

/* The errno for ERRNO= of a finished job; 0 when it did not fail. */
int sdnotify_errno(const struct run_model *run);

#endif
