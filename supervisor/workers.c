/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "worker-message.h"
#include "workers.h"

static struct worker *worker_free(struct worker *w) {
        if (!w)
                return NULL;
        free(w->argv);
        free(w->name);
        free(w->phase);
        free(w->exception);
        free(w);
        return NULL;
}

void worker_table_reset(struct worker_table *t) {
        for (size_t i = 0; i < t->n_workers; i++)
                worker_free(t->workers[i]);
        free(t->workers);
        for (size_t i = 0; i < t->n_groups; i++) {
                free(t->groups[i].key);
                free(t->groups[i].members);
        }
        free(t->groups);
        *t = (struct worker_table) {};
}

struct worker *worker_table_find(const struct worker_table *t, pid_t pid, uint64_t start_time) {
        /* Newest first: a reused pid's live worker is the last one added. */
        for (size_t i = t->n_workers; i-- > 0;) {
                struct worker *w = t->workers[i];

                if (w->pid == pid && w->state == WORKER_RUNNING && (start_time == 0 || w->start_time == start_time))
                        return w;
        }
        return NULL;
}

/*
 * The program part of an argv summary: its first word, and for a Python
 * interpreter the options up to the script (or -m's module, -c's first
 * word) too: "python3 -u worker.py --rank 1" -> "python3 -u worker.py".
 */
static size_t program_length(const char *argv) {
        const char *p = argv, *word, *base;
        bool python, takes_value = false;
        size_t n;

        if (!argv)
                return 0;
        n = strcspn(p, " ");
        base = memrchr(p, '/', n);
        base = base ? base + 1 : p;
        python = (size_t) (p + n - base) >= 6 && strncmp(base, "python", 6) == 0;
        p += n;
        while (python && *p == ' ') {
                word = p + 1;
                n = strcspn(word, " ");
                p = word + n;
                if (takes_value) {
                        takes_value = false;
                        continue;
                }
                if (n >= 2 && word[0] == '-' && (word[1] == 'm' || word[1] == 'c')) {
                        if (n == 2 && *p == ' ')      /* "-m module": the module too */
                                p = word + 3 + strcspn(word + 3, " ");
                        break;
                }
                if (n == 2 && word[0] == '-' && (word[1] == 'X' || word[1] == 'W'))
                        takes_value = true;
                else if (n == 0 || word[0] != '-')
                        break;                        /* the script */
        }
        return (size_t) (p - argv);
}

static bool same_program(const struct worker *a, const struct worker *b) {
        size_t n = program_length(a->argv);

        if (!a->argv || !b->argv)
                return !a->argv == !b->argv;
        return n == program_length(b->argv) && memcmp(a->argv, b->argv, n) == 0;
}

/*
 * Started the same way: by multiprocessing (a name or an index) or not,
 * Python or native, running the same program (a helper that a launcher
 * starts beside its workers is none of theirs).
 */
static bool same_start(const struct worker *a, const struct worker *b) {
        return a->native == b->native && (a->name || a->index >= 0) == (b->name || b->index >= 0) &&
               same_program(a, b);
}

static int set_string(char **p, const char *s) {
        char *c = s ? strdup(s) : NULL;

        if (s && !c)
                return -ENOMEM;
        free(*p);
        *p = c;
        return 0;
}

int worker_table_announce(struct worker_table *t, int rank, pid_t pid, uint64_t start_time, pid_t ppid,
                          const struct worker_message *m, uint64_t now, struct worker **ret) {
        struct worker *w = worker_table_find(t, pid, start_time);
        int r;

        if (!w) {
                struct worker **n;

                if (t->n_workers >= WORKERS_MAX)
                        return -ENOSPC;
                n = realloc(t->workers, (t->n_workers + 1) * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                t->workers = n;
                w = calloc(1, sizeof(*w));
                if (!w)
                        return -ENOMEM;
                *w = (struct worker) {
                        .id = (int) t->n_workers, .pid = pid, .start_time = start_time, .rank = rank,
                        .index = -1, .group = -1, .announced_usec = now, .state = WORKER_RUNNING,
                        .pidfd = -1,
                };
                t->workers[t->n_workers++] = w;
        }
        w->ppid = ppid > 0 ? ppid : m->ppid;
        w->native = m->native;
        w->exec_announced = false;
        if (m->argv[0] && (r = set_string(&w->argv, m->argv)) < 0)
                return r;
        if (m->name[0] && (r = set_string(&w->name, m->name)) < 0)
                return r;
        if (m->index >= 0)
                w->index = m->index;
        *ret = w;
        return 0;
}

static int group_find_or_add(struct worker_table *t, int rank, const char *key, int world, uint64_t now) {
        struct worker_group *n, *g;

        for (size_t i = 0; i < t->n_groups; i++)
                if (t->groups[i].rank == rank && t->groups[i].world == world && strcmp(t->groups[i].key, key) == 0)
                        return (int) i;
        if (t->n_groups >= WORKER_GROUPS_MAX)
                return -ENOSPC;
        n = realloc(t->groups, (t->n_groups + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        t->groups = n;
        g = &t->groups[t->n_groups];
        *g = (struct worker_group) { .rank = rank, .world = world, .first_usec = now };
        g->key = strdup(key);
        g->members = malloc(sizeof(int) * (size_t) world);
        if (!g->key || !g->members) {
                free(g->key);
                free(g->members);
                return -ENOMEM;
        }
        for (int i = 0; i < world; i++)
                g->members[i] = -1;
        return (int) t->n_groups++;
}

int worker_apply_message(struct worker_table *t, struct worker *w, const struct worker_message *m, uint64_t now) {
        int r;

        if (m->keys & WORKER_KEY_GROUP) {
                struct worker_group *g;
                int i = group_find_or_add(t, w->rank, m->group_key, m->group_world, now);

                if (i < 0)
                        return i;
                g = &t->groups[i];
                if (g->members[m->group_rank] < 0)
                        g->n_members++;
                /* A member that comes again (a restart of the worker) takes its place. */
                g->members[m->group_rank] = w->id;
                if (w->group < 0) {
                        w->group = i;
                        w->group_rank = m->group_rank;
                        w->group_usec = now;
                }
        }
        if (m->keys & WORKER_KEY_EXCEPTION) {
                r = set_string(&w->exception, m->exception);
                if (r < 0)
                        return r;
        }
        if (m->keys & WORKER_KEY_EXIT) {
                w->exit_announced = true;
                w->exit_code = m->exit_code;
        }
        if (m->keys & WORKER_KEY_EXEC)
                w->exec_announced = true;
        return 0;
}

int worker_phase(struct worker *w, const char *entered, const char *ended, bool failed, uint64_t now) {
        if (ended && w->phase && strcmp(ended, w->phase) == 0 && !w->phase_end_usec) {
                w->phase_end_usec = now;
                if (!failed && !w->joined_usec && strcmp(ended, "dist-init") == 0)
                        w->joined_usec = now;
        }
        if (entered) {
                int r = set_string(&w->phase, entered);

                if (r < 0)
                        return r;
                w->phase_start_usec = now;
                w->phase_end_usec = 0;
        }
        return 0;
}

void worker_said_ready(struct worker *w, uint64_t now) {
        if (!w->ready_usec)
                w->ready_usec = now;
}

void worker_extend(struct worker *w, uint64_t usec, uint64_t now) {
        uint64_t until = usec > UINT64_MAX - now ? UINT64_MAX : now + usec;

        if (until > w->extend_until_usec)
                w->extend_until_usec = until;
}

uint64_t worker_extended(const struct worker *w, uint64_t due) {
        return MAX(due, w->extend_until_usec);
}

static bool sibling_said_ready(const struct worker_table *t, const struct worker *w) {
        for (size_t i = 0; i < t->n_workers; i++) {
                const struct worker *s = t->workers[i];

                if (s != w && s->ready_usec && s->rank == w->rank && s->ppid == w->ppid && same_start(s, w))
                        return true;
        }
        return false;
}

/* Taken for a member that an incomplete group of its rank misses. */
static bool missing_member(const struct worker_table *t, const struct worker *w) {
        for (size_t g = 0; g < t->n_groups; g++) {
                const struct worker_group *grp = &t->groups[g];

                if (grp->rank != w->rank || grp->n_members == grp->world)
                        continue;
                for (int m = 0; m < grp->world; m++)
                        if (grp->members[m] < 0 && worker_group_candidate(t, (int) g, m) == w)
                                return true;
        }
        return false;
}

enum worker_readiness worker_readiness(const struct worker_table *t, const struct worker *w) {
        if (w->ready_usec)
                return WORKER_READINESS_READY;
        if (sibling_said_ready(t, w))
                return WORKER_READINESS_WAITING;
        if (w->joined_usec)
                return WORKER_READINESS_READY;
        if (w->group >= 0 || missing_member(t, w))
                return WORKER_READINESS_WAITING;
        return WORKER_READINESS_UNWATCHED;
}

void worker_describe_position(const struct worker *w, uint64_t now, char *buf, size_t size) {
        if (w->phase && !w->phase_end_usec)
                snprintf(buf, size, "in phase %s for %.1f s", w->phase, secs_since(now, w->phase_start_usec));
        else if (w->phase)
                snprintf(buf, size, "after phase %s (ended %.1f s ago)", w->phase, secs_since(now, w->phase_end_usec));
        else
                snprintf(buf, size, "before any phase for %.1f s", secs_since(now, w->announced_usec));
}

void worker_ended(struct worker *w, enum worker_state how, int code_or_signal, uint64_t now) {
        if (w->state != WORKER_RUNNING)
                return;
        w->state = how;
        w->ended_usec = now;
        if (how == WORKER_EXITED)
                w->exit_code = code_or_signal;
        else if (how == WORKER_SIGNALLED)
                w->exit_signal = code_or_signal;
        else if (how == WORKER_GONE && w->exit_announced) {
                /* It said how it would end, and nothing says otherwise. */
                w->state = WORKER_EXITED;
        }
}

bool worker_failed(const struct worker *w) {
        switch (w->state) {
        case WORKER_RUNNING:
                return false;
        case WORKER_EXITED:
                return w->exit_code != 0;
        case WORKER_SIGNALLED:
                return true;
        case WORKER_GONE:
        default:
                /* Every Python-level exit says EXIT; without one a Python worker died of a signal or _exit(). */
                return w->exception != NULL || (!w->native && !w->exec_announced && !w->exit_announced);
        }
}

const char *worker_label(const struct worker *w, char *buf, size_t size) {
        if (w->group >= 0)
                snprintf(buf, size, "w%d", w->group_rank);
        else if (w->index >= 0)
                snprintf(buf, size, "w%d", w->index);
        else
                snprintf(buf, size, "p%d", (int) w->pid);
        return buf;
}

const char *worker_name(const struct worker *w, char *buf, size_t size) {
        char label[24];

        if (w->group >= 0)
                snprintf(buf, size, "worker %d", w->group_rank);
        else
                snprintf(buf, size, "worker %s", worker_label(w, label, sizeof(label)));
        return buf;
}

const char *worker_state_name(enum worker_state s) {
        static const char *const names[] = {
                [WORKER_RUNNING] = "running", [WORKER_EXITED] = "exited", [WORKER_SIGNALLED] = "signalled",
                [WORKER_GONE] = "gone",
        };
        return (unsigned) s < ELEMENTSOF(names) ? names[s] : "?";
}

static void describe_parent(const struct worker *w, pid_t rank_pid, char *buf, size_t size) {
        if (rank_pid > 0 && w->ppid == rank_pid)
                snprintf(buf, size, "child of rank %d", w->rank);
        else
                snprintf(buf, size, "child of pid %d under rank %d", (int) w->ppid, w->rank);
}

static void describe_as(const struct worker_table *t, const struct worker *w, int g, int m, pid_t rank_pid,
                        char *buf, size_t size) {
        char parent[96], label[24];

        describe_parent(w, rank_pid, parent, sizeof(parent));
        if (g >= 0)
                snprintf(buf, size, "worker %d of %d (pid %d, %s)", m, t->groups[g].world, (int) w->pid, parent);
        else
                snprintf(buf, size, "worker %s (pid %d, %s)", worker_label(w, label, sizeof(label)), (int) w->pid,
                         parent);
}

void worker_describe(const struct worker_table *t, const struct worker *w, pid_t rank_pid, char *buf, size_t size) {
        /* Not in a group, but taken for a member one misses: described as that member. */
        if (w->group < 0)
                for (size_t g = 0; g < t->n_groups; g++)
                        for (int m = 0; m < t->groups[g].world; m++)
                                if (t->groups[g].members[m] < 0 && worker_group_candidate(t, (int) g, m) == w) {
                                        describe_as(t, w, (int) g, m, rank_pid, buf, size);
                                        return;
                                }
        describe_as(t, w, w->group, w->group_rank, rank_pid, buf, size);
}

void worker_describe_end(const struct worker *w, char *buf, size_t size) {
        char sig[32];

        if (w->exception)
                snprintf(buf, size, "raised %s", w->exception);
        else if (w->state == WORKER_EXITED)
                snprintf(buf, size, "exited with status %d", w->exit_code);
        else if (w->state == WORKER_SIGNALLED)
                snprintf(buf, size, "was killed by %s", signal_name(w->exit_signal, sig, sizeof(sig)));
        else if (w->state == WORKER_GONE)
                snprintf(buf, size, "%s", worker_failed(w) ? "ended without exiting (killed by a signal, or _exit())"
                                                           : "ended (status unknown)");
        else
                snprintf(buf, size, "running");
}

uint64_t worker_group_due(const struct worker_table *t, size_t gi, uint64_t limit) {
        const struct worker_group *g = &t->groups[gi];
        uint64_t due = g->first_usec + limit;

        for (size_t i = 0; i < t->n_workers; i++) {
                const struct worker *w = t->workers[i];

                if (w->rank == g->rank && w->group < 0 && w->state == WORKER_RUNNING)
                        due = worker_extended(w, due);
        }
        return due;
}

uint64_t worker_groups_next_due(const struct worker_table *t, uint64_t limit) {
        uint64_t due = 0;

        for (size_t i = 0; i < t->n_groups; i++) {
                const struct worker_group *g = &t->groups[i];
                uint64_t d;

                if (g->n_members < g->world && (d = worker_group_due(t, i, limit)) && (!due || d < due))
                        due = d;
        }
        return due;
}

static bool is_member(const struct worker_group *g, int id) {
        for (int i = 0; i < g->world; i++)
                if (g->members[i] == id)
                        return true;
        return false;
}

struct worker *worker_group_candidate(const struct worker_table *t, int gi, int m) {
        const struct worker_group *g = &t->groups[gi];
        struct worker *only = NULL;
        size_t n = 0;

        for (size_t i = 0; i < t->n_workers; i++) {
                struct worker *w = t->workers[i];
                bool sibling = false, parent = false;

                if (w->rank != g->rank || is_member(g, w->id) || w->group >= 0)
                        continue;
                for (int k = 0; k < g->world; k++) {
                        const struct worker *member = g->members[k] >= 0 ? t->workers[g->members[k]] : NULL;

                        if (!member)
                                continue;
                        /* Started as the members were: not multiprocessing's resource tracker beside them. */
                        if (member->ppid == w->ppid && same_start(member, w))
                                sibling = true;
                        if (member->ppid == w->pid)
                                parent = true;
                }
                if (!sibling || parent)
                        continue;
                if (w->index == m)
                        return w;
                if (w->index < 0) {
                        only = w;
                        n++;
                }
        }
        return g->world - g->n_members == 1 && n == 1 ? only : NULL;
}

static void append(char *buf, size_t size, size_t *len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t size, size_t *len, const char *fmt, ...) {
        va_list ap;
        int n;

        if (*len >= size)
                return;
        va_start(ap, fmt);
        n = vsnprintf(buf + *len, size - *len, fmt, ap);
        va_end(ap);
        if (n > 0)
                *len = MIN(size - 1, *len + (size_t) n);
}

int worker_groups_find_late(const struct worker_table *t, uint64_t now, uint64_t limit,
                            pid_t (*rank_pid_of)(int rank, void *userdata), void *userdata, char *headline,
                            size_t size, int *ret_late, size_t max_late, size_t *ret_n_late) {
        for (size_t gi = 0; gi < t->n_groups; gi++) {
                const struct worker_group *g = &t->groups[gi];
                size_t len = 0, n_late = 0;
                int missing = g->world - g->n_members, first = 1;
                pid_t rank_pid;

                if (missing == 0 || (limit > 0 && worker_group_due(t, gi, limit) > now))
                        continue;
                rank_pid = rank_pid_of ? rank_pid_of(g->rank, userdata) : 0;
                if (missing == 1) {
                        int m = 0;
                        struct worker *w;

                        while (g->members[m] >= 0)
                                m++;
                        w = worker_group_candidate(t, (int) gi, m);
                        if (w) {
                                char d[192];

                                describe_as(t, w, (int) gi, m, rank_pid, d, sizeof(d));
                                append(headline, size, &len, "%s never entered dist-init", d);
                        } else
                                append(headline, size, &len,
                                       "worker %d of %d never entered dist-init (no announced process is it)", m,
                                       g->world);
                        if (n_late < max_late)
                                ret_late[n_late++] = w ? w->id : -1;
                } else {
                        append(headline, size, &len, "workers ");
                        for (int m = 0; m < g->world; m++) {
                                struct worker *w;

                                if (g->members[m] >= 0)
                                        continue;
                                append(headline, size, &len, "%s%d", first ? "" : ",", m);
                                first = 0;
                                w = worker_group_candidate(t, (int) gi, m);
                                if (n_late < max_late)
                                        ret_late[n_late++] = w ? w->id : -1;
                        }
                        append(headline, size, &len, " of %d (under rank %d) never entered dist-init", g->world, g->rank);
                }
                append(headline, size, &len, "; worker%s ", g->n_members == 1 ? "" : "s");
                first = 1;
                for (int m = 0; m < g->world; m++)
                        if (g->members[m] >= 0) {
                                append(headline, size, &len, "%s%d", first ? "" : ",", m);
                                first = 0;
                        }
                append(headline, size, &len, " waiting %.1f s", (double) (now - g->first_usec) / 1e6);
                if (ret_n_late)
                        *ret_n_late = n_late;
                return (int) gi;
        }
        return -1;
}

int worker_exit_status(const struct worker *w) {
        if (w->state == WORKER_SIGNALLED)
                return 128 + w->exit_signal;
        if (w->state == WORKER_EXITED && w->exit_code != 0)
                return w->exit_code;
        return 1;
}
