/* SPDX-License-Identifier: MIT */
/*
 * The workers' model (supervisor/workers.c) and their keys
 * (supervisor/worker-message.c): parsing, announcements, groups, who is
 * missing from a group and the straggler's headline, labels, and which
 * ends are failures.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "unit.h"
#include "util.h"
#include "worker-message.h"
#include "workers.h"

static struct worker_message parse(const char *text, int expect) {
        struct worker_message m = {};
        int r = worker_message_parse(text, strlen(text), &m);

        CHECK(r == expect, "parse(%s) = %d, expected %d", text, r, expect);
        return m;
}

static void test_parse(void) {
        struct worker_message m;

        m = parse("READY=1\nSTATUS=x", 0);
        CHECK(m.keys == 0 && m.index == -1, "no worker key");
        m = parse("X_RINGMASTER_WORKER=python\nX_RINGMASTER_WORKER_PPID=42\nX_RINGMASTER_WORKER_ARGV=python3 -c x\x01y\n"
                  "X_RINGMASTER_WORKER_NAME=SpawnProcess-1\nX_RINGMASTER_WORKER_INDEX=2\nX_RINGMASTER_CAPTURE=1", 0);
        CHECK(m.keys == (WORKER_KEY_ANNOUNCE | WORKER_KEY_CAPTURE) && !m.native && m.ppid == 42 && m.index == 2,
              "announce keys: %x", m.keys);
        CHECK(strcmp(m.argv, "python3 -c x?y") == 0, "argv: %s", m.argv);
        CHECK(strcmp(m.name, "SpawnProcess-1") == 0, "name: %s", m.name);
        m = parse("X_RINGMASTER_WORKER=native", 0);
        CHECK(m.native, "native");
        parse("X_RINGMASTER_WORKER=rust", -EINVAL);
        parse("X_RINGMASTER_CAPTURE=1", -EINVAL);
        parse("X_RINGMASTER_WORKER=python\nX_RINGMASTER_CAPTURE=yes", -EINVAL);
        parse("X_RINGMASTER_WORKER=python\nX_RINGMASTER_WORKER_INDEX=-1", -EINVAL);
        parse("X_RINGMASTER_WORKER=python\nX_RINGMASTER_WORKER_NAME=", -EINVAL);
        m = parse("X_RINGMASTER_PHASE=dist-init\nX_RINGMASTER_GROUP=tcp://h:1\nX_RINGMASTER_GROUP_RANK=3\n"
                  "X_RINGMASTER_GROUP_WORLD=4", 0);
        CHECK(m.keys == WORKER_KEY_GROUP && m.group_rank == 3 && m.group_world == 4 &&
              strcmp(m.group_key, "tcp://h:1") == 0, "group");
        parse("X_RINGMASTER_GROUP=k\nX_RINGMASTER_GROUP_RANK=4\nX_RINGMASTER_GROUP_WORLD=4", -EINVAL);
        parse("X_RINGMASTER_GROUP=k\nX_RINGMASTER_GROUP_RANK=0", -EINVAL);
        parse("X_RINGMASTER_GROUP=k\nX_RINGMASTER_GROUP_RANK=0\nX_RINGMASTER_GROUP_WORLD=0", -EINVAL);
        parse("X_RINGMASTER_GROUP=k\nX_RINGMASTER_GROUP_RANK=0\nX_RINGMASTER_GROUP_WORLD=99999999", -EINVAL);
        m = parse("X_RINGMASTER_WORKER_EXIT=255", 0);
        CHECK(m.keys == WORKER_KEY_EXIT && m.exit_code == 255, "exit");
        parse("X_RINGMASTER_WORKER_EXIT=256", -EINVAL);
        m = parse("X_RINGMASTER_WORKER_EXCEPTION=ValueError: boom", 0);
        CHECK(m.keys == WORKER_KEY_EXCEPTION && strcmp(m.exception, "ValueError: boom") == 0, "exception");
        parse("X_RINGMASTER_WORKER_EXEC=2", -EINVAL);
        m = parse("X_RINGMASTER_UNKNOWN=1", 0);
        CHECK(m.keys == 0, "an unknown private key is ignored");
}

static struct worker *announce_argv(struct worker_table *t, int rank, pid_t pid, pid_t ppid, const char *argv,
                                    const char *extra) {
        char text[512];
        struct worker_message m = {};
        struct worker *w = NULL;
        int r;

        snprintf(text, sizeof(text), "X_RINGMASTER_WORKER=python\nX_RINGMASTER_WORKER_ARGV=%s%s", argv, extra);
        CHECK(worker_message_parse(text, strlen(text), &m) == 0, "announce parses");
        r = worker_table_announce(t, rank, pid, 1000 + (uint64_t) pid, ppid, &m, 5 * USEC_PER_SEC, &w);
        CHECK(r == 0 && w, "announce %d: %d", (int) pid, r);
        return w;
}

static struct worker *announce(struct worker_table *t, int rank, pid_t pid, pid_t ppid, const char *extra) {
        return announce_argv(t, rank, pid, ppid, "python3 w.py", extra);
}

static void join(struct worker_table *t, struct worker *w, int grank, int world, uint64_t now) {
        char text[256];
        struct worker_message m = {};

        snprintf(text, sizeof(text), "X_RINGMASTER_GROUP=tcp://127.0.0.1:29500\nX_RINGMASTER_GROUP_RANK=%d\n"
                 "X_RINGMASTER_GROUP_WORLD=%d", grank, world);
        CHECK(worker_message_parse(text, strlen(text), &m) == 0, "group parses");
        CHECK(worker_apply_message(t, w, &m, now) == 0, "group applies");
        CHECK(worker_phase(w, "dist-init", NULL, false, now) == 0, "phase");
}

static pid_t rank_pid(int rank, void *userdata) {
        return rank == 0 ? 100 : 0;
}

static void test_groups(void) {
        struct worker_table t = {};
        struct worker *w[4];
        char headline[512], label[24];
        int late[4];
        size_t n_late = 0;
        int g;

        /* The engine (rank 0's process, pid 100) spawned 4 workers; worker 2 never joins. */
        for (int i = 0; i < 4; i++)
                w[i] = announce(&t, 0, 201 + i, 100, "");
        CHECK(t.n_workers == 4, "4 workers");
        CHECK(announce(&t, 0, 202, 100, "\nX_RINGMASTER_WORKER_NAME=Worker-1") == w[1] && t.n_workers == 4,
              "a second announce updates the worker");
        CHECK(w[1]->name && strcmp(w[1]->name, "Worker-1") == 0, "its name");
        CHECK(strcmp(worker_label(w[2], label, sizeof(label)), "p203") == 0, "label before a group: %s", label);
        join(&t, w[0], 0, 4, 10 * USEC_PER_SEC);
        join(&t, w[1], 1, 4, 11 * USEC_PER_SEC);
        join(&t, w[3], 3, 4, 12 * USEC_PER_SEC);
        CHECK(strcmp(worker_label(w[3], label, sizeof(label)), "w3") == 0, "label in a group: %s", label);
        CHECK(t.n_groups == 1 && t.groups[0].n_members == 3, "one group, 3 members");
        CHECK(worker_groups_next_due(&t, 60 * USEC_PER_SEC) == 70 * USEC_PER_SEC, "due 60 s after the first member");
        g = worker_groups_find_late(&t, 69 * USEC_PER_SEC, 60 * USEC_PER_SEC, rank_pid, NULL, headline,
                                    sizeof(headline), late, 4, &n_late);
        CHECK(g == -1, "not due yet");
        g = worker_groups_find_late(&t, 70 * USEC_PER_SEC, 60 * USEC_PER_SEC, rank_pid, NULL, headline,
                                    sizeof(headline), late, 4, &n_late);
        CHECK(g == 0 && n_late == 1 && late[0] == w[2]->id, "worker 2 is late");
        CHECK(strcmp(headline, "worker 2 of 4 (pid 203, child of rank 0) never entered dist-init; workers 0,1,3 "
                               "waiting 60.0 s") == 0, "headline: %s", headline);
        /* EXTEND_TIMEOUT_USEC: the one the group waits for moves the group's deadline; a member's does not. */
        worker_extend(w[0], 500 * USEC_PER_SEC, 20 * USEC_PER_SEC);
        CHECK(worker_groups_next_due(&t, 60 * USEC_PER_SEC) == 70 * USEC_PER_SEC, "a member's extension: no change");
        worker_extend(w[2], 30 * USEC_PER_SEC, 50 * USEC_PER_SEC);
        worker_extend(w[2], 1 * USEC_PER_SEC, 51 * USEC_PER_SEC);
        CHECK(w[2]->extend_until_usec == 80 * USEC_PER_SEC, "the furthest extension stays: %llu",
              (unsigned long long) w[2]->extend_until_usec);
        CHECK(worker_groups_next_due(&t, 60 * USEC_PER_SEC) == 80 * USEC_PER_SEC, "the missing one's extension");
        g = worker_groups_find_late(&t, 79 * USEC_PER_SEC, 60 * USEC_PER_SEC, rank_pid, NULL, headline,
                                    sizeof(headline), late, 4, &n_late);
        CHECK(g == -1, "not due while extended");
        g = worker_groups_find_late(&t, 80 * USEC_PER_SEC, 60 * USEC_PER_SEC, rank_pid, NULL, headline,
                                    sizeof(headline), late, 4, &n_late);
        CHECK(g == 0 && late[0] == w[2]->id, "late when the extension ran out");
        worker_extend(w[2], UINT64_MAX, 81 * USEC_PER_SEC);
        CHECK(worker_groups_next_due(&t, 60 * USEC_PER_SEC) == UINT64_MAX, "saturates");

        /* A process that is the members' parent (a forkserver) is no candidate. */
        worker_table_reset(&t);
        w[0] = announce(&t, 0, 300, 100, "");               /* the forkserver */
        for (int i = 1; i < 4; i++)
                w[i] = announce(&t, 0, 300 + i, 300, "");
        join(&t, w[1], 0, 3, USEC_PER_SEC);
        join(&t, w[2], 1, 3, USEC_PER_SEC);
        g = worker_groups_find_late(&t, 100 * USEC_PER_SEC, 0, rank_pid, NULL, headline, sizeof(headline), late, 4,
                                    &n_late);
        CHECK(g == 0 && late[0] == w[3]->id, "the forkserver's other child is the late one");
        CHECK(strstr(headline, "worker 2 of 3 (pid 303, child of pid 300 under rank 0)") == headline, "headline: %s",
              headline);

        /* multiprocessing's resource tracker beside named workers (spawn): not taken for the missing one. */
        worker_table_reset(&t);
        w[3] = announce(&t, 0, 350, 100, "");                                  /* the tracker */
        for (int i = 0; i < 3; i++) {
                char extra[64];

                snprintf(extra, sizeof(extra), "\nX_RINGMASTER_WORKER_NAME=Worker-%d", i);
                w[i] = announce(&t, 0, 351 + i, 100, extra);
        }
        join(&t, w[0], 0, 3, USEC_PER_SEC);
        join(&t, w[2], 2, 3, USEC_PER_SEC);
        CHECK(worker_group_candidate(&t, 0, 1) == w[1], "the named sibling, not the tracker");

        /* Two missing, told apart by their index; one without any match. */
        worker_table_reset(&t);
        for (int i = 0; i < 4; i++) {
                char extra[64];

                snprintf(extra, sizeof(extra), "\nX_RINGMASTER_WORKER_INDEX=%d", i);
                w[i] = announce(&t, 0, 400 + i, 100, i == 3 ? "" : extra);
        }
        join(&t, w[0], 0, 4, USEC_PER_SEC);
        join(&t, w[1], 1, 4, USEC_PER_SEC);
        g = worker_groups_find_late(&t, 100 * USEC_PER_SEC, 0, rank_pid, NULL, headline, sizeof(headline), late, 4,
                                    &n_late);
        CHECK(g == 0 && n_late == 2 && late[0] == w[2]->id && late[1] == -1, "by index: %d %d", late[0], late[1]);
        CHECK(strcmp(headline, "workers 2,3 of 4 (under rank 0) never entered dist-init; workers 0,1 waiting 99.0 s") ==
                      0, "headline: %s", headline);
        worker_table_reset(&t);
}

static void test_ends(void) {
        struct worker_table t = {};
        struct worker *w = announce(&t, 0, 500, 100, "");
        struct worker_message m = {};
        char text[128];

        worker_ended(w, WORKER_GONE, 0, 1);
        CHECK(worker_failed(w), "a Python worker gone without a word failed");
        worker_describe_end(w, text, sizeof(text));
        CHECK(strstr(text, "without exiting") != NULL, "%s", text);

        w = announce(&t, 0, 501, 100, "");
        CHECK(worker_message_parse("X_RINGMASTER_WORKER_EXIT=0", 26, &m) == 0, "exit parses");
        worker_apply_message(&t, w, &m, 1);
        worker_ended(w, WORKER_GONE, 0, 2);
        CHECK(w->state == WORKER_EXITED && !worker_failed(w), "its own EXIT=0: a clean end");

        w = announce(&t, 0, 502, 100, "");
        worker_ended(w, WORKER_SIGNALLED, SIGSEGV, 2);
        worker_describe_end(w, text, sizeof(text));
        CHECK(worker_failed(w) && strcmp(text, "was killed by SIGSEGV") == 0, "%s", text);
        CHECK(worker_table_find(&t, 502, 0) == NULL, "an ended worker is not found as running");

        w = announce(&t, 0, 503, 100, "");
        CHECK(worker_message_parse("X_RINGMASTER_WORKER_EXEC=1", 26, &m) == 0, "exec parses");
        worker_apply_message(&t, w, &m, 1);
        worker_ended(w, WORKER_GONE, 0, 2);
        CHECK(!worker_failed(w), "an exec'd worker's silent end is not a failure");
        worker_table_reset(&t);
}

/* Which workers --ready-timeout watches, and when each is ready (workers.h's worker_readiness()). */
static void test_readiness(void) {
        struct worker_table t = {};
        struct worker *w[4], *tracker, *server;
        char where[128];

        /* A forkserver-like parent, 3 multiprocessing children of it, and a helper started otherwise. */
        server = announce(&t, 0, 500, 100, "");
        for (int i = 0; i < 3; i++) {
                char extra[64];

                snprintf(extra, sizeof(extra), "\nX_RINGMASTER_WORKER_NAME=Worker-%d", i);
                w[i] = announce(&t, 0, 501 + i, 500, extra);
        }
        tracker = announce(&t, 0, 510, 500, "");
        for (int i = 0; i < 3; i++)
                CHECK(worker_readiness(&t, w[i]) == WORKER_READINESS_UNWATCHED, "worker %d: nothing to wait for", i);
        worker_said_ready(w[0], 6 * USEC_PER_SEC);
        CHECK(worker_readiness(&t, w[0]) == WORKER_READINESS_READY, "READY=1: ready");
        CHECK(worker_readiness(&t, w[1]) == WORKER_READINESS_WAITING, "a sibling said READY: watched");
        CHECK(worker_readiness(&t, w[2]) == WORKER_READINESS_WAITING, "so is the third");
        CHECK(worker_readiness(&t, tracker) == WORKER_READINESS_UNWATCHED, "a helper started otherwise is not");
        CHECK(worker_readiness(&t, server) == WORKER_READINESS_UNWATCHED, "nor is the parent");
        /* Joining the group is not enough when the siblings say READY. */
        join(&t, w[1], 1, 3, 7 * USEC_PER_SEC);
        CHECK(worker_phase(w[1], NULL, "dist-init", false, 8 * USEC_PER_SEC) == 0 && w[1]->joined_usec,
              "dist-init ended: joined");
        CHECK(worker_readiness(&t, w[1]) == WORKER_READINESS_WAITING, "joined, its sibling says READY: waiting");
        worker_describe_position(w[1], 10 * USEC_PER_SEC, where, sizeof(where));
        CHECK(strcmp(where, "after phase dist-init (ended 2.0 s ago)") == 0, "position: %s", where);
        worker_describe_position(w[2], 10 * USEC_PER_SEC, where, sizeof(where));
        CHECK(strcmp(where, "before any phase for 5.0 s") == 0, "position: %s", where);

        /* subprocess.Popen workers of one program say READY; a helper program beside them is not watched. */
        worker_table_reset(&t);
        w[0] = announce_argv(&t, 0, 701, 100, "/usr/bin/python3 -u -X dev worker.py --rank 0", "");
        w[1] = announce_argv(&t, 0, 702, 100, "/usr/bin/python3 -u -X dev worker.py --rank 1", "");
        w[2] = announce_argv(&t, 0, 703, 100, "/usr/bin/python3 -u -X dev helper.py --rank 0", "");
        w[3] = announce_argv(&t, 0, 704, 100, "/usr/bin/python3 -m tokenizer_server --port 1", "");
        worker_said_ready(w[0], 6 * USEC_PER_SEC);
        CHECK(worker_readiness(&t, w[1]) == WORKER_READINESS_WAITING, "the same script: watched");
        CHECK(worker_readiness(&t, w[2]) == WORKER_READINESS_UNWATCHED, "another script: not");
        CHECK(worker_readiness(&t, w[3]) == WORKER_READINESS_UNWATCHED, "a module: not");
        worker_table_reset(&t);
        w[0] = announce_argv(&t, 0, 711, 100, "python3 -m vllm.worker --rank 0", "");
        w[1] = announce_argv(&t, 0, 712, 100, "python3 -m vllm.worker --rank 1", "");
        w[2] = announce_argv(&t, 0, 713, 100, "python3 -m vllm.helper --rank 1", "");
        w[3] = announce_argv(&t, 0, 714, 100, "python3", "");
        worker_said_ready(w[0], 6 * USEC_PER_SEC);
        CHECK(worker_readiness(&t, w[1]) == WORKER_READINESS_WAITING, "the same module: watched");
        CHECK(worker_readiness(&t, w[2]) == WORKER_READINESS_UNWATCHED, "another module: not");
        CHECK(worker_readiness(&t, w[3]) == WORKER_READINESS_UNWATCHED, "a bare interpreter: not");

        /* vLLM's: nobody says READY; a member is ready when its init_process_group returned. */
        worker_table_reset(&t);
        for (int i = 0; i < 4; i++)
                w[i] = announce(&t, 0, 601 + i, 100, "");
        join(&t, w[0], 0, 4, 7 * USEC_PER_SEC);
        join(&t, w[1], 1, 4, 7 * USEC_PER_SEC);
        join(&t, w[3], 3, 4, 7 * USEC_PER_SEC);
        CHECK(worker_readiness(&t, w[0]) == WORKER_READINESS_WAITING, "in dist-init: waiting");
        CHECK(worker_readiness(&t, w[2]) == WORKER_READINESS_WAITING, "the one the group misses: waiting");
        CHECK(worker_phase(w[3], NULL, "dist-init", true, 8 * USEC_PER_SEC) == 0 && !w[3]->joined_usec,
              "a failed dist-init is no join");
        join(&t, w[2], 2, 4, 9 * USEC_PER_SEC);
        for (int i = 0; i < 4; i++)
                CHECK(worker_phase(w[i], NULL, "dist-init", false, 10 * USEC_PER_SEC) == 0, "end");
        CHECK(worker_readiness(&t, w[3]) == WORKER_READINESS_WAITING, "its end came failed before: still waiting");
        for (int i = 0; i < 3; i++)
                CHECK(worker_readiness(&t, w[i]) == WORKER_READINESS_READY, "worker %d joined: ready", i);
        worker_table_reset(&t);
}

int main(void) {
        test_parse();
        test_groups();
        test_ends();
        test_readiness();
        if (!failures)
                printf("all checks passed\n");
        return failures ? 1 : 0;
}
