/* SPDX-License-Identifier: MIT */
/*
 * The straggler rule across nodes (node-view.c): records from 2 nodes of 2
 * ranks, a milestone reached on node 0 and missed on node 1, READY, the
 * next deadline, and malformed records refused without changing the view.
 */
#include <string.h>

#include "node-view.h"
#include "unit.h"
#include "util.h"

#define S(x) ((uint64_t) (x) * USEC_PER_SEC)

/* The record without the writer's layout (no string in it holds a blank). */
static char *compact(char *s) {
        size_t n = 0;
        for (size_t i = 0; s && s[i]; i++)
                if (s[i] != ' ' && s[i] != '\n')
                        s[n++] = s[i];
        if (s)
                s[n] = 0;
        return s;
}

static int update(struct node_view *v, int node, const char *json, uint64_t now) {
        return node_view_update(v, node, json, strlen(json), now);
}

int main(void) {
        struct node_view *v = node_view_new(2, 2);
        struct node_straggler s = {};
        char *rec = NULL;
        int r;

        CHECK(v, "new");
        CHECK(node_view_next_deadline(v, S(5)) == UINT64_MAX, "nothing pending");
        CHECK(node_view_find_straggler(v, S(100), S(5), &s) == 0, "no milestone, no straggler");

        /* Node 0's ranks enter dist-init at t=10; node 1 has published nothing. */
        char *p0[] = { "dist-init", NULL }, *p1[] = { "dist-init", NULL };
        char *const *phases[] = { p0, p1 };
        bool ready[] = { false, false };
        CHECK(node_view_record(0, 0, 2, phases, ready, &rec) == 0 && rec, "record");
        CHECK(rec && strcmp(compact(rec), "{\"node\":0,\"ranks\":{\"0\":{\"phases\":[\"dist-init\"],\"ready\":false},"
                                 "\"1\":{\"phases\":[\"dist-init\"],\"ready\":false}}}") == 0, "record: %s", rec);
        CHECK(update(v, 0, rec, S(10)) == 0, "update node 0");
        free(rec);
        CHECK(node_view_next_deadline(v, S(5)) == S(15), "deadline 10+5: %llu",
              (unsigned long long) node_view_next_deadline(v, S(5)));
        CHECK(node_view_find_straggler(v, S(14), S(5), &s) == 0, "not yet at 14");

        /* Node 1: rank 2 enters dist-init at 12, rank 3 never does. */
        CHECK(update(v, 1, "{\"node\":1,\"ranks\":{\"2\":{\"phases\":[\"dist-init\"],\"ready\":false},"
                           "\"3\":{\"phases\":[],\"ready\":false}}}", S(12)) == 0, "update node 1");
        r = node_view_find_straggler(v, S(15), S(5), &s);
        CHECK(r == 1 && s.n_late == 1 && s.late[0] == 3 && s.milestone && strcmp(s.milestone, "dist-init") == 0 &&
              s.first_rank == 0, "rank 3 is late for dist-init: %d %s", r, s.message);
        CHECK(s.message && strstr(s.message, "rank 3 (node 1) has not reached phase 'dist-init' 5.0 s after rank 0 "
                                             "(node 0) did"), "the message: %s", s.message);
        node_straggler_done(&s);

        /* Rank 3 catches up; everyone ready: nothing late. */
        CHECK(update(v, 1, "{\"node\":1,\"ranks\":{\"3\":{\"phases\":[\"dist-init\"],\"ready\":false}}}", S(16)) == 0,
              "rank 3 enters");
        CHECK(node_view_find_straggler(v, S(16), S(5), &s) == 0, "no one late for dist-init");
        CHECK(update(v, 0, "{\"node\":0,\"ranks\":{\"0\":{\"phases\":[\"dist-init\"],\"ready\":true}}}", S(20)) == 0,
              "rank 0 ready");
        CHECK(node_view_next_deadline(v, S(5)) == S(25), "READY's deadline");
        r = node_view_find_straggler(v, S(26), S(5), &s);
        CHECK(r == 1 && !s.milestone && s.n_late == 3 && s.message && strstr(s.message, "READY"),
              "ranks 1-3 late for READY: %s", s.message);
        node_straggler_done(&s);
        /* A ready rank has reached every phase, including ones it never named. */
        CHECK(update(v, 0, "{\"node\":0,\"ranks\":{\"1\":{\"phases\":[\"load\"],\"ready\":true}}}", S(27)) == 0, "r1");
        CHECK(update(v, 1, "{\"node\":1,\"ranks\":{\"2\":{\"ready\":true},\"3\":{\"ready\":true}}}", S(27)) == 0, "n1");
        CHECK(node_view_find_straggler(v, S(100), S(5), &s) == 0, "all ready: nobody late for load either");
        CHECK(node_view_find_straggler(v, S(100), 0, &s) == 0, "timeout 0: off");

        /* Malformed: refused, view unchanged. */
        CHECK(update(v, 1, "{\"ranks\":{\"0\":{}}}", S(30)) == -EBADMSG, "node 1 cannot speak for rank 0");
        CHECK(update(v, 1, "{\"ranks\":[]}", S(30)) == -EBADMSG, "ranks not an object");
        CHECK(update(v, 1, "{\"ranks\":{\"2\":{\"phases\":[1]}}}", S(30)) == -EBADMSG, "a phase not a string");
        CHECK(update(v, 1, "not json", S(30)) == -EBADMSG, "not JSON");
        CHECK(update(v, 2, "{\"ranks\":{}}", S(30)) == -EINVAL, "no node 2");
        CHECK(node_view_find_straggler(v, S(100), S(5), &s) == 0, "still nobody late");

        node_view_free(v);
        /* A node that never published: its ranks are named, with that said. */
        v = node_view_new(3, 1);
        CHECK(update(v, 0, "{\"ranks\":{\"0\":{\"phases\":[\"a\"]}}}", S(1)) == 0, "node 0");
        r = node_view_find_straggler(v, S(7), S(5), &s);
        CHECK(r == 1 && s.n_late == 2 && s.message && strstr(s.message, "ranks 1 (node 1, nothing published), 2 "
                                                                        "(node 2, nothing published) have not"),
              "silent nodes: %s", s.message);
        node_straggler_done(&s);
        node_view_free(v);
        printf("%s\n", failures ? "FAILED" : "ok");
        return failures ? 1 : 0;
}
