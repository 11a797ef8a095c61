/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "deadline.h"
#include "log.h"
#include "options.h"
#include "phase.h"
#include "run-model.h"
#include "util.h"

#define NONE UINT64_MAX
/* Late ranks described one by one in a headline; the rest are only listed. */
#define HEADLINE_DETAILS_MAX 8

const char *deadline_kind_name(enum deadline_kind k) {
        static const char *const names[_DEADLINE_KIND_MAX] = {
                [DEADLINE_NONE] = "none",
                [DEADLINE_READY] = "ready-timeout",
                [DEADLINE_PHASE] = "phase-timeout",
                [DEADLINE_STRAGGLER] = "straggler-timeout",
                [DEADLINE_WATCHDOG] = "watchdog",
        };
        return (unsigned) k < _DEADLINE_KIND_MAX ? names[k] : "?";
}

void deadline_cause_clear(struct deadline_cause *c) {
        free(c->ranks);
        free(c->reached);
        free(c->phase);
        free(c->target_phase);
        free(c->message);
        free(c->workers);
        *c = (struct deadline_cause) {};
}

static uint64_t phase_limit(const struct run_options *o, const char *phase) {
        for (size_t i = o->n_phase_timeouts; i > 0; i--)
                if (strcmp(o->phase_timeouts[i - 1].name, phase) == 0)
                        return o->phase_timeouts[i - 1].usec;
        return 0;
}

static bool rank_watched(const struct rank *r) {
        return r->state == RANK_STARTING || r->state == RANK_RUNNING;
}

static uint64_t extended(const struct rank *r, uint64_t due) {
        return MAX(due, r->notify.extend_until_usec);
}

/*
 * The milestone a rank waits to reach first, and since when it could have:
 * the next phase after the furthest it entered (its index), or READY (-1)
 * when a rank was ready earlier.  NONE when it is short of nothing.
 */
static uint64_t straggler_since(const struct deadline_input *in, const struct rank *r, int *ret_milestone) {
        const struct job_phases *p = in->phases;
        size_t next = (size_t) (r->notify.milestone + 1);
        uint64_t t = NONE;

        *ret_milestone = -2;
        if (r->ready)
                return NONE;
        if (next < p->n_milestones) {
                t = p->milestones[next].first_usec;
                *ret_milestone = (int) next;
        }
        if (p->first_ready_rank >= 0 && p->first_ready_usec < t) {
                t = p->first_ready_usec;
                *ret_milestone = -1;
        }
        return t;
}

/* When this rank's deadline of this kind falls due; NONE: it has none. */
static uint64_t rank_due(const struct deadline_input *in, const struct rank *r, enum deadline_kind kind) {
        const struct run_options *o = in->options;
        const struct rank_notify *n = &r->notify;
        uint64_t t, limit;
        int milestone;

        if (!rank_watched(r))
                return NONE;
        switch (kind) {
        case DEADLINE_READY:
                if (o->ready_timeout_usec == 0 || r->ready)
                        return NONE;
                return extended(r, in->attempt_start_usec + o->ready_timeout_usec);
        case DEADLINE_PHASE:
                if (!r->phase || n->phase_end_usec != 0)
                        return NONE;
                limit = phase_limit(o, r->phase);
                return limit ? extended(r, n->phase_start_usec + limit) : NONE;
        case DEADLINE_STRAGGLER:
                if (o->straggler_timeout_usec == 0)
                        return NONE;
                t = straggler_since(in, r, &milestone);
                return t == NONE ? NONE : extended(r, t + o->straggler_timeout_usec);
        case DEADLINE_WATCHDOG:
                if (n->watchdog_trigger_usec)
                        return n->watchdog_trigger_usec;
                if (o->watchdog_usec == 0 || !r->ready || n->stopping)
                        return NONE;
                return extended(r, MAX(n->ready_usec, n->last_watchdog_usec) + o->watchdog_usec);
        default:
                return NONE;
        }
}

/* ------------------------------------------------------------ spawned workers */

#define WORKERS_LATE_MAX 64

/* A rank's pid for the workers' descriptions ("child of rank 0"), 0 when it has none. */
static pid_t input_rank_pid(int rank, void *userdata) {
        const struct deadline_input *in = userdata;

        if (rank < 0 || rank >= in->nproc || in->ranks[rank].state == RANK_IDLE)
                return 0;
        return in->ranks[rank].pid;
}

/* The worker over its phase's --phase-timeout the soonest (due in *ret_due), or NULL. */
static const struct worker *worker_phase_next(const struct deadline_input *in, uint64_t *ret_due) {
        const struct worker *best = NULL;
        uint64_t due = NONE;

        for (size_t i = 0; i < in->workers->n_workers; i++) {
                const struct worker *w = in->workers->workers[i];
                uint64_t limit;

                if (w->state != WORKER_RUNNING || !w->phase || w->phase_end_usec)
                        continue;
                limit = phase_limit(in->options, w->phase);
                if (limit > 0 && worker_extended(w, w->phase_start_usec + limit) < due) {
                        due = worker_extended(w, w->phase_start_usec + limit);
                        best = w;
                }
        }
        *ret_due = due;
        return best;
}

/* When w's --ready-timeout falls due, counted from its announcement; NONE: not watched, or ready. */
static uint64_t worker_ready_due(const struct deadline_input *in, const struct worker *w) {
        if (in->options->ready_timeout_usec == 0 || w->state != WORKER_RUNNING ||
            worker_readiness(in->workers, w) != WORKER_READINESS_WAITING)
                return NONE;
        return worker_extended(w, w->announced_usec + in->options->ready_timeout_usec);
}

/* The earliest --ready-timeout of a worker, and (ret_rank, unless NULL) its rank. */
static uint64_t worker_ready_next(const struct deadline_input *in, int *ret_rank) {
        uint64_t due = NONE;

        if (in->options->ready_timeout_usec == 0)
                return NONE;
        for (size_t i = 0; i < in->workers->n_workers; i++) {
                uint64_t d = worker_ready_due(in, in->workers->workers[i]);

                if (d < due) {
                        due = d;
                        if (ret_rank)
                                *ret_rank = in->workers->workers[i]->rank;
                }
        }
        return due;
}

/*
 * A group short of a member (--straggler-timeout after its first member
 * entered), a worker not ready --ready-timeout after its announcement, a
 * worker over its phase's limit.
 */
static uint64_t workers_next(const struct deadline_input *in) {
        uint64_t next = NONE, due;

        if (in->options->straggler_timeout_usec > 0) {
                due = worker_groups_next_due(in->workers, in->options->straggler_timeout_usec);
                if (due)
                        next = due;
        }
        next = MIN(next, worker_ready_next(in, NULL));
        (void) worker_phase_next(in, &due);
        return MIN(next, due);
}

static int workers_cause(struct deadline_cause *c, enum deadline_kind kind, uint64_t limit, uint64_t due,
                         uint64_t now, const char *phase, const char *headline, const int *late, size_t n_late) {
        *c = (struct deadline_cause) { .kind = kind, .limit_usec = limit, .due_usec = due, .fired_usec = now };
        c->message = strdup(headline);
        c->phase = phase ? strdup(phase) : NULL;
        c->workers = calloc(n_late ? n_late : 1, sizeof(int));
        if (!c->message || (phase && !c->phase) || !c->workers) {
                deadline_cause_clear(c);
                return -ENOMEM;
        }
        memcpy(c->workers, late, n_late * sizeof(int));
        c->n_workers = n_late;
        return 1;
}

/*
 * The workers of rank that --ready-timeout watches and are not ready (due
 * or not yet: siblings start milliseconds apart), those outside any group
 * first (the one a group misses, a sibling short of READY), into late; and
 *   "worker 2 of 4 (pid P, child of rank 0) not ready after 60.0 s
 *    (--ready-timeout 60): in phase dist-init for 58.0 s; also not ready:
 *    worker 0 ...; ready: w1,w3" (after: since the first of them started)
 * into headline (the limit only with with_limit).  The number of late
 * workers (0: none), -ENOMEM.
 */
static int workers_not_ready(const struct deadline_input *in, int rank, bool with_limit, uint64_t now,
                                char *headline, size_t size, int *late, size_t max_late) {
        const uint64_t limit = in->options->ready_timeout_usec;
        const struct worker_table *t = in->workers;
        uint64_t since = NONE;
        size_t n_late = 0, n_ready = 0;
        _cleanup_free_ char *text = NULL;
        size_t text_size = 0;
        FILE *f;

        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < t->n_workers && n_late < max_late; i++) {
                        const struct worker *w = t->workers[i];

                        if (w->rank != rank || (w->group >= 0) != (pass == 1) || worker_ready_due(in, w) == NONE)
                                continue;
                        late[n_late++] = w->id;
                }
        if (n_late == 0)
                return 0;
        f = open_memstream(&text, &text_size);
        if (!f)
                return -ENOMEM;
        /* Since the first of them started: at least the limit, with one due among them. */
        for (size_t i = 0; i < n_late; i++)
                since = MIN(since, t->workers[late[i]]->announced_usec);
        for (size_t i = 0; i < n_late && i < HEADLINE_DETAILS_MAX; i++) {
                const struct worker *w = t->workers[late[i]];
                char who[256], where[256];

                worker_describe_position(w, now, where, sizeof(where));
                if (i == 0) {
                        worker_describe(t, w, input_rank_pid(w->rank, (void *) in), who, sizeof(who));
                        fprintf(f, "%s not ready after %.1f s", who, secs_since(now, since));
                        if (with_limit && w->extend_until_usec > w->announced_usec + limit)
                                fprintf(f, " (--ready-timeout %g, extended by its EXTEND_TIMEOUT_USEC)", secs(limit));
                        else if (with_limit)
                                fprintf(f, " (--ready-timeout %g)", secs(limit));
                        fprintf(f, ": %s", where);
                } else
                        fprintf(f, "%s%s %s", i == 1 ? "; also not ready: " : ", ", worker_name(w, who, sizeof(who)),
                                where);
        }
        if (n_late > HEADLINE_DETAILS_MAX)
                fputs(", ...", f);
        for (size_t i = 0; i < t->n_workers; i++) {
                const struct worker *w = t->workers[i];
                char label[24];

                if (w->rank != t->workers[late[0]]->rank || worker_readiness(t, w) != WORKER_READINESS_READY)
                        continue;
                if (n_ready++ == HEADLINE_DETAILS_MAX) {
                        fputs(",...", f);
                        break;
                }
                fprintf(f, "%s%s", n_ready == 1 ? "; ready: " : ",", worker_label(w, label, sizeof(label)));
        }
        if (fclose(f) != 0 || !text)
                return -ENOMEM;
        snprintf(headline, size, "%s", text);
        return (int) n_late;
}

static int workers_find_expired(const struct deadline_input *in, uint64_t now, struct deadline_cause *ret) {
        const struct run_options *o = in->options;
        char headline[1024];
        int late[WORKERS_LATE_MAX];
        size_t n_late = 0;
        const struct worker *w;
        uint64_t due, ready_due;
        int g, k, rank = -1;

        if (o->straggler_timeout_usec > 0) {
                g = worker_groups_find_late(in->workers, now, o->straggler_timeout_usec, input_rank_pid,
                                            (void *) in, headline, sizeof(headline), late, WORKERS_LATE_MAX, &n_late);
                if (g >= 0)
                        return workers_cause(ret, DEADLINE_STRAGGLER, o->straggler_timeout_usec,
                                             worker_group_due(in->workers, (size_t) g, o->straggler_timeout_usec), now,
                                             "dist-init", headline, late, n_late);
        }
        w = worker_phase_next(in, &due);
        ready_due = worker_ready_next(in, &rank);
        if (ready_due <= MIN(due, now)) {
                /* --ready-timeout: that worker's rank's workers not ready, named in the headline. */
                k = workers_not_ready(in, rank, true, now, headline, sizeof(headline), late, WORKERS_LATE_MAX);
                if (k < 0)
                        return k;
                return workers_cause(ret, DEADLINE_READY, o->ready_timeout_usec, ready_due, now,
                                     in->workers->workers[late[0]]->phase, headline, late, (size_t) k);
        }
        if (!w || due > now)
                return 0;
        /* Waiting in the group's init for a member that never came: name that one. */
        if (w->group >= 0 && in->workers->groups[w->group].n_members < in->workers->groups[w->group].world) {
                struct worker_table one = *in->workers;

                one.groups = &in->workers->groups[w->group];
                one.n_groups = 1;
                g = worker_groups_find_late(&one, now, 0, input_rank_pid, (void *) in, headline, sizeof(headline),
                                            late, WORKERS_LATE_MAX, &n_late);
                if (g >= 0)
                        return workers_cause(ret, DEADLINE_PHASE, phase_limit(o, w->phase), due, now, w->phase,
                                             headline, late, n_late);
        }
        {
                char d[256];

                worker_describe(in->workers, w, input_rank_pid(w->rank, (void *) in), d, sizeof(d));
                snprintf(headline, sizeof(headline), "%s stuck in phase %s for %.1f s", d, w->phase,
                         (double) (now - w->phase_start_usec) / 1e6);
                late[0] = w->id;
                return workers_cause(ret, DEADLINE_PHASE, phase_limit(o, w->phase), due, now, w->phase, headline,
                                     late, 1);
        }
}

/* "HEADLINE: the rank's message", the late workers diagnosed first. */
static int prefix_workers(struct deadline_cause *c, const char *headline, const int *late, size_t n_late) {
        char *message;
        int *workers = calloc(n_late ? n_late : 1, sizeof(int));

        if (!workers || asprintf(&message, "%s: %s", headline, c->message) < 0) {
                free(workers);
                return -ENOMEM;
        }
        memcpy(workers, late, n_late * sizeof(int));
        free(c->workers);
        c->workers = workers;
        c->n_workers = n_late;
        free(c->message);
        c->message = message;
        return 0;
}

/*
 * A rank's deadline while a group of the workers it spawned misses a member
 * (the workers' datagrams count for their rank too, so the rank "waits in
 * dist-init" because of them): the headline names the missing worker, before
 * the rank's own reason, and the late workers are diagnosed first.  A
 * rank's ready-timeout with workers short of their readiness names them so.
 */
static int explain_by_workers(const struct deadline_input *in, int rank, uint64_t now, struct deadline_cause *c) {
        for (size_t gi = 0; in->workers && gi < in->workers->n_groups; gi++) {
                const struct worker_group *g = &in->workers->groups[gi];
                struct worker_table one = *in->workers;
                char headline[1024];
                int late[WORKERS_LATE_MAX];
                size_t n_late = 0;

                if (g->rank != rank || g->n_members == g->world)
                        continue;
                one.groups = (struct worker_group *) g;
                one.n_groups = 1;
                if (worker_groups_find_late(&one, now, 0, input_rank_pid, (void *) in, headline, sizeof(headline),
                                            late, WORKERS_LATE_MAX, &n_late) < 0)
                        continue;
                return prefix_workers(c, headline, late, n_late);
        }
        if (in->workers && c->kind == DEADLINE_READY) {
                /* Else its workers short of their own readiness (due or not yet): named first. */
                char headline[1024];
                int late[WORKERS_LATE_MAX];
                int k = workers_not_ready(in, rank, false, now, headline, sizeof(headline), late, WORKERS_LATE_MAX);

                if (k != 0)
                        return k < 0 ? k : prefix_workers(c, headline, late, (size_t) k);
        }
        return 0;
}

uint64_t deadline_next(const struct deadline_input *in) {
        uint64_t next = NONE;

        for (int i = 0; i < in->nproc; i++)
                for (int k = DEADLINE_READY; k < _DEADLINE_KIND_MAX; k++)
                        next = MIN(next, rank_due(in, &in->ranks[i], k));
        return in->workers ? MIN(next, workers_next(in)) : next;
}

/* ------------------------------------------------------------ the headline */

bool rank_list_contains(const int *l, size_t n, int v) {
        for (size_t i = 0; i < n; i++)
                if (l[i] == v)
                        return true;
        return false;
}

/* "rank 2", "ranks 0,1,3", "ranks 0-5,7" (ascending input). */
static void print_rank_list(FILE *f, const int *l, size_t n) {
        fputs(n == 1 ? "rank " : "ranks ", f);
        for (size_t i = 0; i < n;) {
                size_t j = i;

                while (j + 1 < n && l[j + 1] == l[j] + 1)
                        j++;
                fprintf(f, "%s%d", i ? "," : "", l[i]);
                if (j >= i + 2)
                        fprintf(f, "-%d", l[j]);
                else if (j == i + 1)
                        fprintf(f, ",%d", l[j]);
                i = j + 1;
        }
}

static void print_limit(FILE *f, const struct deadline_cause *c) {
        if (c->kind == DEADLINE_PHASE)
                fprintf(f, "--phase-timeout %s=%g", c->phase, secs(c->limit_usec));
        else
                fprintf(f, "--%s %g", deadline_kind_name(c->kind), secs(c->limit_usec));
}

/* "rank 2 stuck in phase X for N s" or "ranks 2,3 stuck: rank 2 in phase ..., rank 3 ...". */
static void print_late(FILE *f, const struct deadline_input *in, const struct deadline_cause *c, const char *verb,
                       uint64_t now) {
        char where[256];

        print_rank_list(f, c->ranks, c->n_ranks);
        if (c->n_ranks == 1) {
                rank_describe_position(&in->ranks[c->ranks[0]], now, where, sizeof(where));
                fprintf(f, " %s %s", verb, where);
                return;
        }
        fprintf(f, " %s:", verb);
        for (size_t i = 0; i < c->n_ranks && i < HEADLINE_DETAILS_MAX; i++) {
                rank_describe_position(&in->ranks[c->ranks[i]], now, where, sizeof(where));
                fprintf(f, "%s rank %d %s", i ? "," : "", c->ranks[i], where);
        }
        if (c->n_ranks > HEADLINE_DETAILS_MAX)
                fprintf(f, ", ...");
}

/* Since when a rank is where it is: its phase's start or end, or its own start. */
static uint64_t position_since(const struct rank *r) {
        if (!r->phase)
                return r->started_usec;
        return r->notify.phase_end_usec ? r->notify.phase_end_usec : r->notify.phase_start_usec;
}

/* Two ranks at the same place: the same phase (both in it or both after it), or both before any, or both gone. */
static bool same_position(const struct rank *a, const struct rank *b) {
        if (!rank_state_is_alive(a->state) || !rank_state_is_alive(b->state))
                return !rank_state_is_alive(a->state) && !rank_state_is_alive(b->state);
        if (!a->phase || !b->phase)
                return !a->phase && !b->phase;
        return strcmp(a->phase, b->phase) == 0 && (a->notify.phase_end_usec == 0) == (b->notify.phase_end_usec == 0);
}

/*
 * The other ranks: "ranks 0,1,3 reached READY 58.2 s ago", then the rest
 * grouped by where they are ("ranks 4,5 in phase warmup for 3.0 s" with the
 * longest time, "rank 6 ended").
 */
static void print_others(FILE *f, const struct deadline_input *in, const struct deadline_cause *c, uint64_t now) {
        _cleanup_free_ int *group = calloc((size_t) in->nproc, sizeof(int));
        _cleanup_free_ bool *done = calloc((size_t) in->nproc, sizeof(bool));
        uint64_t first_ready = NONE;
        size_t n = 0, groups = 0;
        char where[256];

        if (!group || !done)
                return;
        for (int i = 0; i < in->nproc; i++)
                done[i] = rank_list_contains(c->ranks, c->n_ranks, i) ||
                          rank_list_contains(c->reached, c->n_reached, i);
        for (int i = 0; i < in->nproc; i++) {
                const struct rank *r = &in->ranks[i];

                if (!done[i] && r->ready && rank_state_is_alive(r->state)) {
                        group[n++] = i;
                        done[i] = true;
                        first_ready = MIN(first_ready, r->notify.ready_usec);
                }
        }
        if (n > 0) {
                fputs(c->n_reached > 0 ? ", " : "; ", f);
                print_rank_list(f, group, n);
                fprintf(f, " reached READY %.1f s ago", secs_since(now, first_ready));
                groups++;
        }
        for (int i = 0; i < in->nproc; i++) {
                const struct rank *r = &in->ranks[i], *longest = r;

                if (done[i])
                        continue;
                n = 0;
                for (int j = i; j < in->nproc; j++)
                        if (!done[j] && same_position(r, &in->ranks[j])) {
                                const struct rank *o = &in->ranks[j];

                                group[n++] = j;
                                done[j] = true;
                                if (position_since(o) < position_since(longest))
                                        longest = o;
                        }
                fputs(c->n_reached > 0 || groups > 0 ? ", " : "; ", f);
                if (groups++ == HEADLINE_DETAILS_MAX) {
                        fputs("...", f);
                        break;
                }
                print_rank_list(f, group, n);
                if (rank_state_is_alive(r->state)) {
                        rank_describe_position(longest, now, where, sizeof(where));
                        fprintf(f, " %s", where);
                } else
                        fputs(r->state == RANK_IDLE ? " not started" : " ended", f);
        }
}

static int build_message(const struct deadline_input *in, struct deadline_cause *c, uint64_t now) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        if (!f)
                return -ENOMEM;
        switch (c->kind) {
        case DEADLINE_STRAGGLER:
                print_late(f, in, c, "stuck", now);
                if (c->n_reached > 0) {
                        uint64_t first_ready = NONE;

                        /* What the others reached: READY when all of them are (the furthest), else the milestone. */
                        for (size_t i = 0; i < c->n_reached; i++) {
                                const struct rank *r = &in->ranks[c->reached[i]];

                                if (!r->ready) {
                                        first_ready = NONE;
                                        break;
                                }
                                first_ready = MIN(first_ready, r->notify.ready_usec);
                        }
                        fputs("; ", f);
                        print_rank_list(f, c->reached, c->n_reached);
                        if (c->target_ready || first_ready != NONE)
                                fprintf(f, " reached READY %.1f s ago",
                                        secs_since(now, c->target_ready ? c->reached_usec : first_ready));
                        else
                                fprintf(f, " reached phase %s %.1f s ago", c->target_phase,
                                        secs_since(now, c->reached_usec));
                }
                break;
        case DEADLINE_PHASE:
                print_late(f, in, c, "stuck", now);
                fputs(" (", f);
                print_limit(f, c);
                fputs(")", f);
                break;
        case DEADLINE_READY:
                print_rank_list(f, c->ranks, c->n_ranks);
                fprintf(f, " not ready %.1f s after the start (", secs_since(now, in->attempt_start_usec));
                print_limit(f, c);
                fputs("): ", f);
                for (size_t i = 0; i < c->n_ranks && i < HEADLINE_DETAILS_MAX; i++) {
                        char where[256];

                        rank_describe_position(&in->ranks[c->ranks[i]], now, where, sizeof(where));
                        if (c->n_ranks == 1)
                                fputs(where, f);
                        else
                                fprintf(f, "%srank %d %s", i ? ", " : "", c->ranks[i], where);
                }
                if (c->n_ranks > HEADLINE_DETAILS_MAX)
                        fputs(", ...", f);
                break;
        case DEADLINE_WATCHDOG:
                if (c->watchdog_trigger) {
                        const struct rank *r = &in->ranks[c->ranks[0]];

                        print_rank_list(f, c->ranks, c->n_ranks);
                        fprintf(f, " sent WATCHDOG=trigger");
                        if (c->n_ranks == 1 && r->notify.status)
                                fprintf(f, " (status: %s)", r->notify.status);
                } else {
                        const struct rank *r = &in->ranks[c->ranks[0]];

                        print_rank_list(f, c->ranks, c->n_ranks);
                        fprintf(f, " sent no WATCHDOG=1 for %.1f s (",
                                secs_since(now, MAX(r->notify.ready_usec, r->notify.last_watchdog_usec)));
                        print_limit(f, c);
                        fputs(")", f);
                }
                break;
        default:
                break;
        }
        print_others(f, in, c, now);
        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        c->message = text;
        return 0;
}

/* ------------------------------------------------------------ expiry */

int deadline_find_expired(const struct deadline_input *in, uint64_t now, struct deadline_cause *ret) {
        _cleanup_free_ int *late = NULL, *reached = NULL;
        struct deadline_cause c = {};
        enum deadline_kind kind = DEADLINE_NONE;
        uint64_t first = NONE;
        int first_rank = -1, milestone = -2;
        size_t n_late = 0, n_reached = 0;
        int k;

        for (int i = 0; i < in->nproc; i++)
                for (int kk = DEADLINE_READY; kk < _DEADLINE_KIND_MAX; kk++) {
                        uint64_t due = rank_due(in, &in->ranks[i], kk);

                        if (due <= now && due < first) {
                                first = due;
                                kind = kk;
                                first_rank = i;
                        }
                }
        if (kind == DEADLINE_NONE)
                /* The ranks' deadlines first; then those of the workers they spawned. */
                return in->workers ? workers_find_expired(in, now, ret) : 0;

        late = calloc((size_t) in->nproc, sizeof(int));
        reached = calloc((size_t) in->nproc, sizeof(int));
        if (!late || !reached)
                return -ENOMEM;
        for (int i = 0; i < in->nproc; i++)
                if (rank_due(in, &in->ranks[i], kind) <= now)
                        late[n_late++] = i;

        c = (struct deadline_cause) { .kind = kind, .due_usec = first, .fired_usec = now };
        if (in->ranks[first_rank].phase) {
                c.phase = strdup(in->ranks[first_rank].phase);
                if (!c.phase)
                        return -ENOMEM;
        }
        switch (kind) {
        case DEADLINE_READY:
                c.limit_usec = in->options->ready_timeout_usec;
                break;
        case DEADLINE_PHASE:
                c.limit_usec = phase_limit(in->options, c.phase);
                /* Every late rank stuck in that same phase; others (other phases) show in the report. */
                {
                        size_t j = 0;

                        for (size_t i = 0; i < n_late; i++)
                                if (strcmp(in->ranks[late[i]].phase, c.phase) == 0)
                                        late[j++] = late[i];
                        n_late = j;
                }
                break;
        case DEADLINE_STRAGGLER:
                c.limit_usec = in->options->straggler_timeout_usec;
                c.reached_usec = straggler_since(in, &in->ranks[first_rank], &milestone);
                c.target_ready = milestone == -1;
                if (!c.target_ready) {
                        c.target_phase = strdup(in->phases->milestones[milestone].name);
                        if (!c.target_phase) {
                                free(c.phase);
                                return -ENOMEM;
                        }
                }
                for (int i = 0; i < in->nproc; i++) {
                        const struct rank *r = &in->ranks[i];

                        if (rank_list_contains(late, n_late, i))
                                continue;
                        if (c.target_ready ? r->ready : r->ready || r->notify.milestone >= milestone)
                                reached[n_reached++] = i;
                }
                break;
        case DEADLINE_WATCHDOG:
                c.watchdog_trigger = in->ranks[first_rank].notify.watchdog_trigger_usec != 0;
                c.limit_usec = c.watchdog_trigger ? 0 : in->options->watchdog_usec;
                break;
        default:
                break;
        }
        c.ranks = TAKE_PTR(late);
        c.n_ranks = n_late;
        c.reached = TAKE_PTR(reached);
        c.n_reached = n_reached;
        k = build_message(in, &c, now);
        if (k >= 0)
                k = explain_by_workers(in, first_rank, now, &c);
        if (k < 0) {
                deadline_cause_clear(&c);
                return k;
        }
        *ret = c;
        return 1;
}
