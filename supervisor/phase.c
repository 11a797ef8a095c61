/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "notify.h"
#include "phase.h"
#include "run-model.h"
#include "util.h"

void rank_notify_reset(struct rank_notify *n) {
        for (size_t i = 0; i < n->n_history; i++)
                free(n->history[i].name);
        free(n->history);
        free(n->status);
        *n = (struct rank_notify) { .milestone = -1 };
}

void job_phases_reset(struct job_phases *p) {
        for (size_t i = 0; i < p->n_milestones; i++)
                free(p->milestones[i].name);
        free(p->milestones);
        *p = (struct job_phases) { .first_ready_rank = -1 };
}

int job_phases_find(const struct job_phases *p, const char *name) {
        for (size_t i = 0; i < p->n_milestones; i++)
                if (strcmp(p->milestones[i].name, name) == 0)
                        return (int) i;
        return -1;
}

/* The milestone for name, added when new (and when there is room); -1 when not tracked. */
static int milestone_reached(struct job_phases *p, const char *name, int rank, uint64_t now) {
        struct phase_milestone *l;
        int i = job_phases_find(p, name);
        char *copy;

        if (i >= 0 || p->n_milestones >= PHASE_MILESTONES_MAX)
                return i;
        copy = strdup(name);
        l = realloc(p->milestones, (p->n_milestones + 1) * sizeof(*l));
        if (!copy || !l) {
                free(copy);
                if (l)
                        p->milestones = l;
                log_error("out of memory tracking phase %s", name);
                return -1;
        }
        p->milestones = l;
        l[p->n_milestones] = (struct phase_milestone) { .name = copy, .first_usec = now, .first_rank = rank };
        return (int) p->n_milestones++;
}

static void history_append(struct rank_notify *n, const char *name, uint64_t now) {
        char *copy = strdup(name);

        if (!copy) {
                log_error("out of memory recording phase %s", name);
                return;
        }
        if (n->n_history == PHASE_HISTORY_MAX) {
                /* Keep the latest: the oldest one goes. */
                free(n->history[0].name);
                memmove(n->history, n->history + 1, (n->n_history - 1) * sizeof(n->history[0]));
                n->n_history--;
                n->history_dropped++;
        }
        if (!n->history) {
                n->history = calloc(PHASE_HISTORY_MAX, sizeof(n->history[0]));
                if (!n->history) {
                        free(copy);
                        log_error("out of memory recording phase %s", name);
                        return;
                }
        }
        n->history[n->n_history++] = (struct phase_span) { .name = copy, .start_usec = now };
}

static void phase_end(struct rank *r, const char *name, uint64_t now) {
        struct rank_notify *n = &r->notify;

        if (!r->phase || n->phase_end_usec != 0 || strcmp(r->phase, name) != 0) {
                log_debug("rank %d ended phase %s while %s %s; ignored", r->index, name,
                          r->phase && n->phase_end_usec == 0 ? "in phase" : "not in a phase, the last being",
                          r->phase ? r->phase : "none");
                return;
        }
        n->phase_end_usec = now;
        if (n->n_history > 0 && n->history[n->n_history - 1].end_usec == 0)
                n->history[n->n_history - 1].end_usec = now;
        log_info("rank %d: phase %s ended after %.3f s", r->index, name, secs_since(now, n->phase_start_usec));
}

static void phase_enter(struct job_phases *p, struct rank *r, const char *name, uint64_t now) {
        struct rank_notify *n = &r->notify;
        char *copy = strdup(name);
        int m;

        if (!copy) {
                log_error("out of memory recording rank %d's phase %s", r->index, name);
                return;
        }
        /* A new phase ends the one it was in. */
        if (r->phase && n->phase_end_usec == 0 && n->n_history > 0 && n->history[n->n_history - 1].end_usec == 0)
                n->history[n->n_history - 1].end_usec = now;
        free(r->phase);
        r->phase = copy;
        n->phase_start_usec = now;
        n->phase_end_usec = 0;
        history_append(n, name, now);
        m = milestone_reached(p, name, r->index, now);
        if (m > n->milestone)
                n->milestone = m;
        log_info("rank %d: phase %s (%.3f s after its start)", r->index, name, secs_since(now, r->started_usec));
}

static void rank_became_ready(struct job_phases *p, int nproc, uint64_t attempt_start_usec, struct rank *r,
                              uint64_t now) {

        if (r->ready)
                return;
        r->ready = true;
        r->notify.ready_usec = now;
        if (p->first_ready_rank < 0) {
                p->first_ready_rank = r->index;
                p->first_ready_usec = now;
        }
        log_info("rank %d is ready (%.3f s after its start)", r->index, secs_since(now, r->started_usec));
        if (++p->n_ready == nproc) {
                p->all_ready_usec = now;
                log_notice("all %d rank%s ready after %.3f s", nproc, nproc == 1 ? "" : "s",
                           secs_since(now, attempt_start_usec));
        }
}

void rank_notify_apply(struct job_phases *phases, int nproc, uint64_t attempt_start_usec, struct rank *r,
                       const struct notify_message *m, uint64_t now) {
        struct rank_notify *n = &r->notify;

        n->datagrams++;
        /* A phase's end and the next phase in one datagram: in the order the lines came. */
        if ((m->keys & NOTIFY_PHASE_END) && m->phase_end_first)
                phase_end(r, m->phase_end, now);
        if (m->keys & NOTIFY_PHASE)
                phase_enter(phases, r, m->phase, now);
        if ((m->keys & NOTIFY_PHASE_END) && !m->phase_end_first)
                phase_end(r, m->phase_end, now);
        if (m->keys & NOTIFY_PROGRESS) {
                n->has_progress = true;
                n->progress_done = m->progress_done;
                n->progress_total = m->progress_total;
                n->progress_usec = now;
                log_debug("rank %d: progress %" PRIu64 "/%" PRIu64, r->index, m->progress_done, m->progress_total);
        }
        if (m->keys & NOTIFY_STATUS) {
                char *copy = strdup(m->status);

                if (copy) {
                        free(n->status);
                        n->status = copy;
                        n->status_usec = now;
                        log_info("rank %d: status: %s", r->index, copy);
                }
        }
        if (m->keys & NOTIFY_WATCHDOG)
                n->last_watchdog_usec = now;
        if ((m->keys & NOTIFY_WATCHDOG_TRIGGER) && n->watchdog_trigger_usec == 0) {
                n->watchdog_trigger_usec = now;
                log_notice("rank %d sent WATCHDOG=trigger", r->index);
        }
        if (m->keys & NOTIFY_EXTEND_TIMEOUT) {
                uint64_t until = m->extend_timeout_usec > UINT64_MAX - now ? UINT64_MAX : now + m->extend_timeout_usec;

                if (until > n->extend_until_usec)
                        n->extend_until_usec = until;
                log_info("rank %d: deadlines extended by %.3f s", r->index, secs(m->extend_timeout_usec));
        }
        if ((m->keys & NOTIFY_STOPPING) && !n->stopping) {
                n->stopping = true;
                n->stopping_usec = now;
                log_info("rank %d is stopping", r->index);
        }
        if (m->keys & NOTIFY_ERRNO) {
                n->has_errno = true;
                n->errno_value = m->errno_value;
                log_info("rank %d: ERRNO=%d (%s)", r->index, m->errno_value, strerror(m->errno_value));
        }
        /* Last: "X_RINGMASTER_PHASE_END=warmup\nREADY=1" is ready after its warmup. */
        if (m->keys & NOTIFY_READY)
                rank_became_ready(phases, nproc, attempt_start_usec, r, now);
}

void rank_describe_position(const struct rank *r, uint64_t now, char *buf, size_t size) {
        const struct rank_notify *n = &r->notify;
        int k;

        if (r->phase && n->phase_end_usec == 0)
                k = snprintf(buf, size, "in phase %s for %.1f s", r->phase, secs_since(now, n->phase_start_usec));
        else if (r->phase)
                k = snprintf(buf, size, "after phase %s (ended %.1f s ago)", r->phase,
                             secs_since(now, n->phase_end_usec));
        else
                k = snprintf(buf, size, "before any phase for %.1f s", secs_since(now, r->started_usec));
        if (n->has_progress && k >= 0 && (size_t) k < size)
                snprintf(buf + k, size - (size_t) k, " (progress %" PRIu64 "/%" PRIu64 ")", n->progress_done,
                         n->progress_total);
}
