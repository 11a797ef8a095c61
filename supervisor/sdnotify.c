/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "run-model.h"
#include "sdnotify.h"
#include "status.h"
#include "util.h"

#define SUMMARY_MAX 1024

struct sdnotify {
        sd_event *event;
        const struct run_model *run;
        uint64_t watchdog_usec;         /* the service's WatchdogSec (ours); 0: none */
        bool pinging;                   /* sd-event sends WATCHDOG=1 */
        bool ready_sent, stopping_sent, final_sent;
        uint64_t extend_sent_until;     /* CLOCK_MONOTONIC: what the last EXTEND_TIMEOUT_USEC= asked for */
        char status[SUMMARY_MAX];       /* the last STATUS= sent */
        uint64_t status_usec;
        sd_event_source *timer;         /* a STATUS= held back, a duration ticking, a rank falling silent */
        bool timer_armed;
        uint64_t timer_due;
        bool send_failed;
};

static void notify_send(struct sdnotify *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void notify_send(struct sdnotify *n, const char *fmt, ...) {
        char text[SUMMARY_MAX + 256];
        va_list ap;
        int r;

        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        /* NOTIFY_SOCKET stays in our environment: sd-event's watchdog pings read it too. */
        r = sd_notify(0, text);
        if (r < 0 && !n->send_failed) {
                log_warning_errno(r, "cannot notify systemd through NOTIFY_SOCKET=%s", getenv("NOTIFY_SOCKET"));
                n->send_failed = true;
        }
        for (char *p = text; *p; p++)
                if (*p == '\n')
                        *p = ' ';
        log_debug("sd_notify: %s", text);
}

/* STATUS= is one line. */
static void one_line(char *s) {
        for (; *s; s++)
                if (*s == '\n' || *s == '\r')
                        *s = ' ';
}

static void remember_status(struct sdnotify *n, const char *summary, uint64_t now) {
        snprintf(n->status, sizeof(n->status), "%s", summary);
        n->status_usec = now;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct sdnotify *n = userdata;

        n->timer_armed = false;
        sdnotify_update(n, n->run);
        return 0;
}

static void arm_timer(struct sdnotify *n, uint64_t when) {
        int r;

        if (when == UINT64_MAX) {
                (void) sd_event_source_set_enabled(n->timer, SD_EVENT_OFF);
                n->timer_armed = false;
                return;
        }
        if (n->timer_armed && n->timer_due == when)
                return;
        r = sd_event_source_set_time(n->timer, when);
        if (r >= 0)
                r = sd_event_source_set_enabled(n->timer, SD_EVENT_ONESHOT);
        if (r < 0) {
                log_warning_errno(r, "cannot arm the systemd status timer");
                return;
        }
        n->timer_armed = true;
        n->timer_due = when;
}

int sdnotify_new(sd_event *event, struct sdnotify **ret) {
        const char *socket = getenv("NOTIFY_SOCKET");
        struct sdnotify *n;
        uint64_t usec = 0;
        int r;

        if (!socket || !*socket) {
                *ret = NULL;
                return 0;
        }
        n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        n->event = sd_event_ref(event);
        r = sd_event_add_time(event, &n->timer, CLOCK_MONOTONIC, 0, USEC_PER_MSEC, on_timer, n);
        if (r < 0) {
                sdnotify_free(n);
                return r;
        }
        (void) sd_event_source_set_enabled(n->timer, SD_EVENT_OFF);

        /* 0 when WATCHDOG_USEC is unset, or WATCHDOG_PID names another process (a wrapper's). */
        r = sd_watchdog_enabled(0, &usec);
        if (r < 0)
                log_warning_errno(r, "WATCHDOG_USEC or WATCHDOG_PID is not valid; no watchdog pings");
        else if (r > 0) {
                n->watchdog_usec = usec;
                r = sd_event_set_watchdog(event, 1);
                if (r < 0)
                        log_warning_errno(r, "cannot send systemd's watchdog pings");
                else
                        n->pinging = r > 0;
        }
        log_info("systemd notifications to %s%s", socket, n->pinging ? ", with watchdog pings" : "");
        *ret = n;
        return 0;
}

struct sdnotify *sdnotify_free(struct sdnotify *n) {
        if (!n)
                return NULL;
        sd_event_source_disable_unref(n->timer);
        sd_event_unref(n->event);
        free(n);
        return NULL;
}

/* Pings only while no rank is stuck: see sdnotify.h. */
static void watchdog_update(struct sdnotify *n, const struct run_model *run, uint64_t now, uint64_t *next) {
        bool deadline = run->state == JOB_DIAGNOSING || run->deadline_pending.kind != DEADLINE_NONE ||
                        ((run->state == JOB_STOPPING || run->state == JOB_KILLING) &&
                         run->deadline.kind != DEADLINE_NONE);
        int silent = status_silent_rank(run, now, n->watchdog_usec, next), r;
        bool healthy = !deadline && silent < 0;
        char age[32];

        if (healthy == n->pinging)
                return;
        r = sd_event_set_watchdog(n->event, healthy);
        if (r < 0) {
                log_warning_errno(r, "cannot %s systemd's watchdog pings", healthy ? "resume" : "stop");
                return;
        }
        n->pinging = healthy;
        if (healthy)
                log_notice("pinging systemd's watchdog again");
        else if (deadline)
                log_warning("a deadline passed: no more pings to systemd's watchdog for this attempt");
        else {
                const struct rank *rk = &run->ranks[silent];

                format_age(age, sizeof(age), now, MAX(rk->notify.ready_usec, rk->notify.last_watchdog_usec), false,
                           NULL);
                log_warning("rank %d sent no WATCHDOG=1 for %s (WatchdogSec is %.1f s): no more pings to systemd's "
                            "watchdog until it does", silent, age, secs(n->watchdog_usec));
        }
}

void sdnotify_update(struct sdnotify *n, const struct run_model *run) {
        char summary[SUMMARY_MAX];
        uint64_t now = now_usec(), next = UINT64_MAX, until = 0;

        if (!n || n->final_sent || !run || !run->ranks)
                return;
        n->run = run;
        /* The end is sdnotify_finish()'s, with the exit status. */
        if (run->state == JOB_DONE) {
                arm_timer(n, UINT64_MAX);
                return;
        }
        status_summary(run, now, n->watchdog_usec, summary, sizeof(summary), &next);
        one_line(summary);

        if (!n->ready_sent && run->state == JOB_RUNNING && run->phases.n_ready == run->nproc) {
                notify_send(n, "READY=1\nSTATUS=%s\nMAINPID=%d", summary, (int) getpid());
                n->ready_sent = true;
                remember_status(n, summary, now);
        } else if (!n->stopping_sent && (run->state == JOB_STOPPING || run->state == JOB_KILLING) &&
                   !run_will_restart(run)) {
                notify_send(n, "STOPPING=1\nSTATUS=%s", summary);
                n->stopping_sent = true;
                remember_status(n, summary, now);
        } else if (strcmp(summary, n->status) != 0) {
                /* A few a second at most; the next one at the end of the interval. */
                if (now >= n->status_usec + SDNOTIFY_STATUS_INTERVAL_USEC) {
                        notify_send(n, "STATUS=%s", summary);
                        remember_status(n, summary, now);
                } else
                        next = MIN(next, n->status_usec + SDNOTIFY_STATUS_INTERVAL_USEC);
        }

        /* While the ranks start: systemd's start timeout no shorter than the longest extension asked for. */
        if (!n->ready_sent && run->state == JOB_RUNNING) {
                for (int i = 0; i < run->nproc; i++)
                        if (rank_state_is_alive(run->ranks[i].state) && !run->ranks[i].ready)
                                until = MAX(until, run->ranks[i].notify.extend_until_usec);
                if (until > now && until > n->extend_sent_until) {
                        notify_send(n, "EXTEND_TIMEOUT_USEC=%" PRIu64, until - now);
                        n->extend_sent_until = until;
                }
        }

        if (n->watchdog_usec > 0)
                watchdog_update(n, run, now, &next);
        arm_timer(n, next);
}

int sdnotify_errno(const struct run_model *run) {
        if (run->internal_error != 0)
                return -run->internal_error;
        if (run->deadline.kind != DEADLINE_NONE)
                return ETIMEDOUT;
        if (run->first_failure >= 0) {
                const struct rank *r = &run->ranks[run->first_failure];

                if (r->notify.has_errno && r->notify.errno_value > 0)
                        return r->notify.errno_value;
                if (r->exec_stage != SPAWN_STAGE_NONE && r->exec_error > 0)
                        return r->exec_error;
                return EIO;
        }
        return 0;
}

void sdnotify_finish(struct sdnotify *n, const struct run_model *run, int exit_status, int error) {
        char summary[SUMMARY_MAX], errno_line[32] = "";
        int e;

        if (!n || n->final_sent)
                return;
        if (run) {
                status_summary(run, now_usec(), 0, summary, sizeof(summary), NULL);
                e = sdnotify_errno(run);
        } else {
                snprintf(summary, sizeof(summary), "failed before any rank started; exit status %d", exit_status);
                e = exit_status == 0 ? 0 : error > 0 ? error : EIO;
        }
        one_line(summary);
        if (e > 0)
                snprintf(errno_line, sizeof(errno_line), "\nERRNO=%d", e);
        notify_send(n, "%sSTATUS=%s%s", n->stopping_sent ? "" : "STOPPING=1\n", summary, errno_line);
        n->stopping_sent = n->final_sent = true;
        arm_timer(n, UINT64_MAX);
        if (n->pinging)
                (void) sd_event_set_watchdog(n->event, 0);
        n->pinging = false;
}
