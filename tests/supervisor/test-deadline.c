/* SPDX-License-Identifier: MIT */
/*
 * The deadline rules without a clock: a job of four ranks built by hand,
 * datagrams applied at chosen times (rank_notify_apply), then
 * deadline_next() and deadline_find_expired() asked at chosen instants.
 * Each kind, the straggler's milestone order (a skipped phase is not
 * missed), READY as the last milestone, EXTEND_TIMEOUT_USEC, STOPPING,
 * WATCHDOG=trigger, ended ranks, and the exact headline.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deadline.h"
#include "log.h"
#include "notify.h"
#include "options.h"
#include "phase.h"
#include "run-model.h"

#include "unit.h"

#define S(x) ((uint64_t) ((x) * 1e6))      /* seconds → usec */
#define NONE UINT64_MAX
#define N 4

static struct run_options options;
static struct run_model job;
static struct rank ranks[N];
/* What deadline.c is given of it. */
static struct deadline_input in;

static void reset(void) {
        for (int i = 0; i < N; i++) {
                free(ranks[i].phase);
                rank_notify_reset(&ranks[i].notify);
                ranks[i] = (struct rank) { .index = i, .state = RANK_RUNNING, .pid = 100 + i,
                                           .started_usec = S(1), .notify.milestone = -1 };
        }
        job_phases_reset(&job.phases);
        job = (struct run_model) { .options = &options, .nproc = N, .ranks = ranks, .state = JOB_RUNNING,
                             .start_usec = 0, .attempt_start_usec = S(1), .phases = job.phases };
        options = (struct run_options) {};
        in = (struct deadline_input) { .options = &options, .ranks = ranks, .nproc = N, .phases = &job.phases,
                                       .attempt_start_usec = job.attempt_start_usec };
}

static void say(int rank, double t, const char *text) {
        struct notify_message m;

        if (notify_parse(text, strlen(text), &m) < 0) {
                printf("bad test datagram %s\n", text);
                exit(99);
        }
        rank_notify_apply(&job.phases, job.nproc, job.attempt_start_usec, &ranks[rank], &m, S(t));
}

/* Expired at t: the cause (caller clears it), or kind NONE. */
static struct deadline_cause at(double t) {
        struct deadline_cause c = {};
        int r = deadline_find_expired(&in, S(t), &c);

        if (r < 0) {
                printf("deadline_find_expired: %s\n", strerror(-r));
                exit(99);
        }
        return c;
}

static bool ranks_are(const struct deadline_cause *c, const int *want, size_t n) {
        if (c->n_ranks != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (c->ranks[i] != want[i])
                        return false;
        return true;
}

int main(void) {
        struct deadline_cause c;

        log_set_max_level(LOG_LEVEL_ERROR);

        /* Nothing reported, nothing set: no deadline but the default-off ones. */
        reset();
        CHECK(deadline_next(&in) == NONE, "no option, nothing due");

        /* Straggler: rank 0 enters a at 2 s; the others are short of it from then. */
        reset();
        options.straggler_timeout_usec = S(10);
        CHECK(deadline_next(&in) == NONE, "no milestone yet: nothing to straggle behind");
        say(0, 2, "X_RINGMASTER_PHASE=a");
        CHECK(deadline_next(&in) == S(12), "due at 2 + 10 s (got %llu)", (unsigned long long) deadline_next(&in));
        c = at(11.999);
        CHECK(c.kind == DEADLINE_NONE, "not before");
        c = at(12);
        CHECK(c.kind == DEADLINE_STRAGGLER && ranks_are(&c, (int[]) { 1, 2, 3 }, 3) && !c.target_ready &&
              c.target_phase && strcmp(c.target_phase, "a") == 0 && c.n_reached == 1 && c.reached[0] == 0 &&
              c.reached_usec == S(2) && c.limit_usec == S(10) && c.due_usec == S(12) && c.phase == NULL,
              "straggler at 12 s: ranks 1-3 short of a, reached by rank 0");
        CHECK(c.message && strcmp(c.message, "ranks 1-3 stuck: rank 1 before any phase for 11.0 s, rank 2 before any "
                                             "phase for 11.0 s, rank 3 before any phase for 11.0 s; rank 0 reached "
                                             "phase a 10.0 s ago") == 0,
              "headline: %s", c.message);
        deadline_cause_clear(&c);

        /* The milestone order: a, b, c.  Rank 1 skips b (goes a, c): not short.  Rank 2 stays in a. */
        reset();
        options.straggler_timeout_usec = S(10);
        say(0, 2, "X_RINGMASTER_PHASE=a");
        say(0, 3, "X_RINGMASTER_PHASE=b");
        say(0, 4, "X_RINGMASTER_PHASE=c");
        say(1, 2.5, "X_RINGMASTER_PHASE=a");
        say(1, 4.5, "X_RINGMASTER_PHASE=c");
        say(2, 2.5, "X_RINGMASTER_PHASE=a");
        say(3, 2.5, "X_RINGMASTER_PHASE=a");
        say(3, 3.5, "X_RINGMASTER_PHASE=b");
        /* Rank 2 short of b (since 3 s), rank 3 short of c (since 4 s). */
        CHECK(deadline_next(&in) == S(13), "the earliest: rank 2, 3 + 10 s");
        c = at(13.5);
        CHECK(c.kind == DEADLINE_STRAGGLER && ranks_are(&c, (int[]) { 2 }, 1) && strcmp(c.target_phase, "b") == 0 &&
              strcmp(c.phase, "a") == 0 && c.n_reached == 3, "at 13.5 s: rank 2 only, short of b; 0,1,3 reached it");
        CHECK(strcmp(c.message, "rank 2 stuck in phase a for 11.0 s; ranks 0,1,3 reached phase b 10.5 s ago") == 0,
              "headline: %s", c.message);
        deadline_cause_clear(&c);
        c = at(14);
        CHECK(c.kind == DEADLINE_STRAGGLER && ranks_are(&c, (int[]) { 2, 3 }, 2), "at 14 s: ranks 2 and 3");
        deadline_cause_clear(&c);

        /* READY is the last milestone; a ready rank is short of nothing. */
        reset();
        options.straggler_timeout_usec = S(10);
        say(0, 2, "READY=1");
        say(1, 3, "X_RINGMASTER_PHASE=load\nX_RINGMASTER_PROGRESS=3/8");
        say(2, 3, "READY=1");
        say(3, 2.5, "READY=1");
        CHECK(deadline_next(&in) == S(12), "rank 1 short of READY from 2 s");
        c = at(12);
        CHECK(c.kind == DEADLINE_STRAGGLER && ranks_are(&c, (int[]) { 1 }, 1) && c.target_ready &&
              c.target_phase == NULL && c.n_reached == 3, "short of READY");
        CHECK(strcmp(c.message, "rank 1 stuck in phase load for 9.0 s (progress 3/8); ranks 0,2,3 reached READY 10.0 s "
                                "ago") == 0, "headline: %s", c.message);
        deadline_cause_clear(&c);

        /* EXTEND_TIMEOUT_USEC holds every deadline of that rank off, not others'. */
        say(1, 5, "EXTEND_TIMEOUT_USEC=20000000");
        CHECK(deadline_next(&in) == S(25), "extended to 5 + 20 s");
        CHECK(at(24.9).kind == DEADLINE_NONE, "nothing before the extension ends");
        /* An ended rank is not watched. */
        ranks[1].state = RANK_EXITED;
        CHECK(deadline_next(&in) == NONE, "an exited rank has no deadline");

        /* --ready-timeout: from the attempt's start, until READY. */
        reset();
        options.ready_timeout_usec = S(30);
        CHECK(deadline_next(&in) == S(31), "attempt start 1 s + 30 s");
        for (int i = 0; i < N; i++)
                if (i != 3)
                        say(i, 2, "READY=1");
        c = at(31);
        CHECK(c.kind == DEADLINE_READY && ranks_are(&c, (int[]) { 3 }, 1) && c.limit_usec == S(30), "rank 3 not ready");
        CHECK(strcmp(c.message, "rank 3 not ready 30.0 s after the start (--ready-timeout 30): before any phase for "
                                "30.0 s; ranks 0-2 reached READY 29.0 s ago") == 0, "headline: %s", c.message);
        deadline_cause_clear(&c);
        say(3, 5, "READY=1");
        CHECK(deadline_next(&in) == NONE && job.phases.all_ready_usec == S(5), "all ready at 5 s: nothing due");

        /* --phase-timeout: only the named phase, only while in it; the last of a repeated name counts. */
        reset();
        options.phase_timeouts = (struct phase_timeout[]) { { "load", S(100) }, { "warm", S(5) }, { "load", S(20) } };
        options.n_phase_timeouts = 3;
        say(0, 2, "X_RINGMASTER_PHASE=load");
        say(1, 2, "X_RINGMASTER_PHASE=load\nX_RINGMASTER_PHASE_END=load");
        say(2, 3, "X_RINGMASTER_PHASE=other");
        say(3, 4, "X_RINGMASTER_PHASE_END=nothing\nX_RINGMASTER_PHASE=warm");
        CHECK(deadline_next(&in) == S(9), "warm: 4 + 5 s first");
        c = at(9);
        CHECK(c.kind == DEADLINE_PHASE && ranks_are(&c, (int[]) { 3 }, 1) && strcmp(c.phase, "warm") == 0 &&
              c.limit_usec == S(5), "rank 3 in warm");
        deadline_cause_clear(&c);
        say(3, 8, "X_RINGMASTER_PHASE=load");      /* a new phase ends warm: load's clock from 8 s */
        CHECK(deadline_next(&in) == S(22), "load: 2 + 20 s (the last value of the repeated name)");
        c = at(28);
        CHECK(c.kind == DEADLINE_PHASE && ranks_are(&c, (int[]) { 0, 3 }, 2) && strcmp(c.phase, "load") == 0,
              "both ranks in load past 20 s");
        deadline_cause_clear(&c);
        CHECK(ranks[3].notify.n_history == 2 && ranks[3].notify.history[0].end_usec == S(8), "warm ended at 8 s");

        /* --watchdog: from READY or the last WATCHDOG=1; not after STOPPING=1; WATCHDOG=trigger at once. */
        reset();
        options.watchdog_usec = S(10);
        for (int i = 0; i < N; i++)
                say(i, 2, "READY=1");
        say(0, 7, "WATCHDOG=1");
        say(1, 3, "STOPPING=1");
        say(2, 9, "WATCHDOG=1");
        say(3, 9, "WATCHDOG=1");
        CHECK(deadline_next(&in) == S(17), "rank 0: 7 + 10 s; rank 1 stopping: none");
        c = at(17);
        CHECK(c.kind == DEADLINE_WATCHDOG && ranks_are(&c, (int[]) { 0 }, 1) && !c.watchdog_trigger, "rank 0");
        CHECK(strcmp(c.message, "rank 0 sent no WATCHDOG=1 for 10.0 s (--watchdog 10); ranks 1-3 reached READY 15.0 s "
                                "ago") == 0, "headline: %s", c.message);
        deadline_cause_clear(&c);
        options.watchdog_usec = 0;
        say(2, 12, "STATUS=lost the GPU\nWATCHDOG=trigger");
        say(2, 12.5, "EXTEND_TIMEOUT_USEC=100000000");
        CHECK(deadline_next(&in) == S(12), "a trigger is due at once, without --watchdog, whatever the extension");
        c = at(12);
        CHECK(c.kind == DEADLINE_WATCHDOG && c.watchdog_trigger && c.limit_usec == 0 &&
              ranks_are(&c, (int[]) { 2 }, 1), "trigger");
        CHECK(strncmp(c.message, "rank 2 sent WATCHDOG=trigger (status: lost the GPU)", 51) == 0, "headline: %s",
              c.message);
        deadline_cause_clear(&c);

        /* The earliest kind wins: a phase timeout due before the straggler one. */
        reset();
        options.straggler_timeout_usec = S(10);
        options.phase_timeouts = (struct phase_timeout[]) { { "a", S(3) } };
        options.n_phase_timeouts = 1;
        say(0, 2, "X_RINGMASTER_PHASE=a");
        c = at(20);
        CHECK(c.kind == DEADLINE_PHASE && c.due_usec == S(5), "phase (due 5 s) before straggler (due 12 s)");
        deadline_cause_clear(&c);

        reset();
        if (failures) {
                printf("%d failure(s)\n", failures);
                return 1;
        }
        printf("deadlines: all checks passed\n");
        return 0;
}
