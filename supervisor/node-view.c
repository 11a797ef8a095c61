/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "node-view.h"
#include "parse-util.h"
#include "util.h"

struct rank_progress {
        char **phases;          /* entered, in order (strv) */
        bool ready;
        bool known;             /* its node published it */
};

struct milestone {
        char *name;             /* NULL: READY */
        uint64_t reached_usec;
        int first_rank;
};

struct node_view {
        int nnodes, nproc;
        struct rank_progress *ranks;    /* nnodes * nproc */
        struct milestone *milestones;
        size_t n_milestones;
};

struct node_view *node_view_new(int nnodes, int nproc_per_node) {
        struct node_view *v;

        if (nnodes < 1 || nproc_per_node < 1)
                return NULL;
        v = calloc(1, sizeof(*v));
        if (!v)
                return NULL;
        v->nnodes = nnodes;
        v->nproc = nproc_per_node;
        v->ranks = calloc((size_t) nnodes * (size_t) nproc_per_node, sizeof(*v->ranks));
        if (!v->ranks)
                return node_view_free(v);
        return v;
}

struct node_view *node_view_free(struct node_view *v) {
        if (!v)
                return NULL;
        for (int i = 0; v->ranks && i < v->nnodes * v->nproc; i++)
                strv_free(v->ranks[i].phases);
        free(v->ranks);
        for (size_t i = 0; i < v->n_milestones; i++)
                free(v->milestones[i].name);
        free(v->milestones);
        free(v);
        return NULL;
}

static bool same(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

static bool reached(const struct rank_progress *r, const char *milestone) {
        if (r->ready)
                return true;
        if (!milestone)
                return false;
        for (size_t i = 0; r->phases && r->phases[i]; i++)
                if (strcmp(r->phases[i], milestone) == 0)
                        return true;
        return false;
}

static int note_milestone(struct node_view *v, const char *name, int rank, uint64_t now) {
        struct milestone *n;

        for (size_t i = 0; i < v->n_milestones; i++)
                if (same(v->milestones[i].name, name))
                        return 0;
        n = realloc(v->milestones, (v->n_milestones + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        v->milestones = n;
        n[v->n_milestones] = (struct milestone) { .name = name ? strdup(name) : NULL, .reached_usec = now,
                                                  .first_rank = rank };
        if (name && !n[v->n_milestones].name)
                return -ENOMEM;
        v->n_milestones++;
        return 0;
}

int node_view_update(struct node_view *v, int node, const char *json, size_t len, uint64_t now) {
        struct json_value *root = NULL;
        const struct json_value *ranks;
        int first = node * v->nproc, r;

        if (node < 0 || node >= v->nnodes)
                return -EINVAL;
        r = json_parse(json, len, &root);
        if (r < 0)
                return -EBADMSG;
        ranks = json_object_get(root, "ranks");
        if (!ranks || ranks->type != JSON_OBJECT) {
                json_value_free(root);
                return -EBADMSG;
        }
        /* Check it whole before changing anything. */
        for (size_t i = 0; i < ranks->n; i++) {
                const struct json_value *p = json_object_get(ranks->items[i], "phases");
                long long g;
                if (parse_int_range(ranks->keys[i], first, first + v->nproc - 1, &g) < 0 ||
                    ranks->items[i]->type != JSON_OBJECT || (p && p->type != JSON_ARRAY)) {
                        json_value_free(root);
                        return -EBADMSG;
                }
                for (size_t k = 0; p && k < p->n; k++)
                        if (p->items[k]->type != JSON_STRING) {
                                json_value_free(root);
                                return -EBADMSG;
                        }
        }
        for (size_t i = 0; i < ranks->n; i++) {
                const struct json_value *p = json_object_get(ranks->items[i], "phases");
                const struct json_value *ready = json_object_get(ranks->items[i], "ready");
                long long g;
                struct rank_progress *rp;

                (void) parse_int_range(ranks->keys[i], first, first + v->nproc - 1, &g);
                rp = &v->ranks[g];
                rp->known = true;
                for (size_t k = 0; p && k < p->n; k++) {
                        bool had = false;
                        for (size_t j = 0; rp->phases && rp->phases[j]; j++)
                                had = had || strcmp(rp->phases[j], p->items[k]->text) == 0;
                        if (!had && strv_extend(&rp->phases, p->items[k]->text) < 0)
                                goto oom;
                        if (note_milestone(v, p->items[k]->text, (int) g, now) < 0)
                                goto oom;
                }
                if (ready && ready->type == JSON_TRUE) {
                        rp->ready = true;
                        if (note_milestone(v, NULL, (int) g, now) < 0)
                                goto oom;
                }
        }
        json_value_free(root);
        return 0;
oom:
        json_value_free(root);
        return -ENOMEM;
}

void node_straggler_done(struct node_straggler *s) {
        free(s->milestone);
        free(s->late);
        free(s->message);
        *s = (struct node_straggler) {};
}

static size_t count_late(const struct node_view *v, const struct milestone *m) {
        size_t n = 0;

        for (int g = 0; g < v->nnodes * v->nproc; g++)
                n += !reached(&v->ranks[g], m->name);
        return n;
}

uint64_t node_view_next_deadline(const struct node_view *v, uint64_t timeout_usec) {
        uint64_t next = UINT64_MAX;

        if (timeout_usec == 0)
                return UINT64_MAX;
        for (size_t i = 0; i < v->n_milestones; i++)
                if (count_late(v, &v->milestones[i]) > 0)
                        next = MIN(next, v->milestones[i].reached_usec + timeout_usec);
        return next;
}

int node_view_find_straggler(const struct node_view *v, uint64_t now, uint64_t timeout_usec,
                             struct node_straggler *ret) {
        const struct milestone *m = NULL;
        struct node_straggler s = {};
        char what[160], ranks[512];
        size_t len = 0;

        if (timeout_usec == 0)
                return 0;
        /* The earliest milestone past its timeout with ranks short of it. */
        for (size_t i = 0; i < v->n_milestones; i++)
                if (v->milestones[i].reached_usec + timeout_usec <= now && count_late(v, &v->milestones[i]) > 0 &&
                    (!m || v->milestones[i].reached_usec < m->reached_usec))
                        m = &v->milestones[i];
        if (!m)
                return 0;
        s.reached_usec = m->reached_usec;
        s.first_rank = m->first_rank;
        s.late = calloc(count_late(v, m), sizeof(int));
        if (!s.late || (m->name && !(s.milestone = strdup(m->name)))) {
                node_straggler_done(&s);
                return -ENOMEM;
        }
        ranks[0] = 0;
        for (int g = 0; g < v->nnodes * v->nproc; g++)
                if (!reached(&v->ranks[g], m->name)) {
                        s.late[s.n_late++] = g;
                        if (s.n_late <= 8 && len < sizeof(ranks))
                                len += (size_t) snprintf(ranks + len, sizeof(ranks) - len, "%s%d (node %d%s)",
                                                         s.n_late > 1 ? ", " : "", g, g / v->nproc,
                                                         v->ranks[g].known ? "" : ", nothing published");
                }
        if (s.n_late > 8 && len < sizeof(ranks))
                snprintf(ranks + len, sizeof(ranks) - len, " and %zu more", s.n_late - 8);
        if (m->name)
                snprintf(what, sizeof(what), "phase '%s'", m->name);
        else
                snprintf(what, sizeof(what), "READY");
        if (asprintf(&s.message, "rank%s %s %s not reached %s %.1f s after rank %d (node %d) did",
                     s.n_late == 1 ? "" : "s", ranks, s.n_late == 1 ? "has" : "have", what,
                     (double) (now - m->reached_usec) / 1e6, m->first_rank, m->first_rank / v->nproc) < 0) {
                s.message = NULL;
                node_straggler_done(&s);
                return -ENOMEM;
        }
        *ret = s;
        return 1;
}

int node_view_record(int node, int first_rank, int n, char *const *const *phases, const bool *ready, char **ret) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        struct json_writer w;

        if (!f)
                return -ENOMEM;
        json_writer_init(&w, f);
        json_begin_object(&w);
        json_key(&w, "node");
        json_int(&w, node);
        json_key(&w, "ranks");
        json_begin_object(&w);
        for (int i = 0; i < n; i++) {
                char key[16];
                snprintf(key, sizeof(key), "%d", first_rank + i);
                json_key(&w, key);
                json_begin_object(&w);
                json_key(&w, "phases");
                json_begin_array(&w);
                for (size_t k = 0; phases && phases[i] && phases[i][k]; k++)
                        json_string(&w, phases[i][k]);
                json_end_array(&w);
                json_key(&w, "ready");
                json_bool(&w, ready && ready[i]);
                json_end_object(&w);
        }
        json_end_object(&w);
        json_end_object(&w);
        return memstream_finish(f, &buf, ret);
}
