/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_STATUS_H
#define RINGMASTER_STATUS_H

/*
 * How the job is doing, for people:
 *
 *   - status_summary(): one line ("starting: 2/4 ready, rank 2: nccl-init 12 s",
 *     "4/4 ready", "stopping: rank 1 exited with status 3"), which is
 *     systemd's STATUS= (sdnotify.c) and the live table's header;
 *   - on a terminal (stderr a TTY, not --no-tty, not -q, TERM not dumb), a
 *     live table of the ranks (rank, pid, phase, time there, progress,
 *     READY, last line of output) at the bottom of the screen, redrawn in
 *     place: every line ringmaster writes to that terminal first erases it
 *     (a sink line hook), so that the workers' lines scroll above, and a
 *     timer redraws it at most every STATUS_REDRAW_INTERVAL_USEC, only
 *     while it is shown and only when its text changed;
 *   - otherwise plain lines: a phase entered or ended, READY, one line each.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

struct run_model;
struct sink;

#define STATUS_REDRAW_INTERVAL_USEC (250 * UINT64_C(1000))

/*
 * The job in one line, at now.  heartbeat_limit_usec (0: none): a ready
 * rank that sent WATCHDOG=1 once and then nothing for longer is named.
 * next_change (when not NULL) is lowered to when the text would change by
 * the clock alone (a duration it shows).
 */
void status_summary(const struct run_model *run, uint64_t now, uint64_t heartbeat_limit_usec, char *buf, size_t size,
                 uint64_t *next_change);

/*
 * The first live, ready rank, not stopping, that sent WATCHDOG=1 at least
 * once and then nothing for longer than limit_usec; -1 when none.
 * next_late (when not NULL) is lowered to when the next one would be.
 */
int status_silent_rank(const struct run_model *run, uint64_t now, uint64_t limit_usec, uint64_t *next_late);

/* "12 s", "3 min", "2 h" (compact: "12s", "3m", "2h"); next lowered to when the text changes. */
void format_age(char *buf, size_t size, uint64_t now, uint64_t since, bool compact, uint64_t *next);

struct live_status;

/*
 * table: the live table on terminal (the sink of a terminal: ringmaster's
 * stderr; stdout's lines must go through it too when stdout is the same
 * terminal); false: plain lines through the log.  other: another sink whose
 * lines change the table's last-line column (stdout elsewhere), or NULL.
 */
int live_status_new(sd_event *event, const struct run_model *run, bool table, struct sink *terminal, int terminal_fd,
                    struct sink *other, struct live_status **ret);
/* After every batch of the job's events (run->changed). */
void live_status_update(struct live_status *s);
/* Erases the table for good (before the report); plain lines stop too. */
void live_status_stop(struct live_status *s);
struct live_status *live_status_free(struct live_status *s);

#endif
