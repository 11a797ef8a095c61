/* SPDX-License-Identifier: MIT */
/*
 * The lifecycle tables: every state x event is spelled out, ended ranks stay
 * ended, a rank can always be stopped, killed and given up on while alive,
 * and the job's paths (failure, grace, kill, give-up, restart) go where the
 * man page says.
 */
#include <stdio.h>
#include <stdlib.h>

#include "lifecycle.h"

#include "unit.h"

static enum rank_state rank_walk(enum rank_state s, const enum rank_event *events, size_t n,
                                 enum rank_action *last_action) {
        for (size_t i = 0; i < n; i++) {
                struct rank_transition t = rank_transition(s, events[i]);

                CHECK(t.action != RANK_ACTION_INVALID, "%s + %s is invalid", rank_state_name(s),
                      rank_event_name(events[i]));
                *last_action = t.action;
                s = t.next;
        }
        return s;
}

int main(void) {
        enum rank_action a;

        /* Names exist for everything (no NULL, no "?"). */
        for (int s = 0; s < _RANK_STATE_MAX; s++)
                CHECK(rank_state_name(s)[0] != '?', "rank state %d has no name", s);
        for (int e = 0; e < _RANK_EVENT_MAX; e++)
                CHECK(rank_event_name(e)[0] != '?', "rank event %d has no name", e);
        for (int s = 0; s < _JOB_STATE_MAX; s++)
                CHECK(job_state_name(s)[0] != '?', "job state %d has no name", s);
        for (int e = 0; e < _JOB_EVENT_MAX; e++)
                CHECK(job_event_name(e)[0] != '?', "job event %d has no name", e);

        for (int s = 0; s < _RANK_STATE_MAX; s++) {
                bool alive = rank_state_is_alive(s), ended = rank_state_is_ended(s);

                CHECK(!(alive && ended), "%s both alive and ended", rank_state_name(s));
                for (int e = 0; e < _RANK_EVENT_MAX; e++) {
                        struct rank_transition t = rank_transition(s, e);

                        /* Ended ranks stay ended whatever comes. */
                        if (ended)
                                CHECK((int) t.next == s, "%s left by %s", rank_state_name(s), rank_event_name(e));
                        /* The kernel's word ends any live rank. */
                        if (alive && (e == RANK_EVENT_EXITED || e == RANK_EVENT_SIGNALLED))
                                CHECK(rank_state_is_ended(t.next) && t.action == RANK_ACTION_RECORD_END,
                                      "%s + %s does not end it", rank_state_name(s), rank_event_name(e));
                        /* Teardown events are never invalid: they go to every rank. */
                        if (e == RANK_EVENT_STOP || e == RANK_EVENT_KILL || e == RANK_EVENT_GIVE_UP)
                                CHECK(t.action != RANK_ACTION_INVALID, "%s + %s invalid", rank_state_name(s),
                                      rank_event_name(e));
                }
        }

        /* A normal life. */
        CHECK(rank_walk(RANK_IDLE, (enum rank_event[]) { RANK_EVENT_SPAWNED, RANK_EVENT_EXEC_OK, RANK_EVENT_EXITED },
                        3, &a) == RANK_EXITED, "spawn, exec, exit");
        /* A failed exec still ends with the kernel's exit. */
        CHECK(rank_walk(RANK_IDLE, (enum rank_event[]) { RANK_EVENT_SPAWNED, RANK_EVENT_EXEC_FAILED, RANK_EVENT_EXITED },
                        3, &a) == RANK_EXITED, "spawn, exec failure, exit");
        /* Teardown: stop sends the signal, kill sends SIGKILL, give-up marks it stuck. */
        CHECK(rank_transition(RANK_RUNNING, RANK_EVENT_STOP).action == RANK_ACTION_SEND_STOP, "stop sends");
        CHECK(rank_transition(RANK_STOPPING, RANK_EVENT_STOP).action == RANK_ACTION_SEND_STOP, "stop forwards again");
        CHECK(rank_transition(RANK_STOPPING, RANK_EVENT_KILL).action == RANK_ACTION_SEND_KILL, "kill sends SIGKILL");
        CHECK(rank_transition(RANK_KILLED, RANK_EVENT_KILL).action == RANK_ACTION_NONE, "kill once");
        CHECK(rank_walk(RANK_RUNNING, (enum rank_event[]) { RANK_EVENT_STOP, RANK_EVENT_KILL, RANK_EVENT_GIVE_UP }, 3,
                        &a) == RANK_UNREAPABLE && a == RANK_ACTION_MARK_STUCK, "stop, kill, give up: unreapable");
        CHECK(rank_state_is_alive(RANK_UNREAPABLE), "an unreapable rank is alive");
        /* An idle rank (never started) ignores teardown. */
        CHECK(rank_transition(RANK_IDLE, RANK_EVENT_STOP).action == RANK_ACTION_NONE, "idle ignores stop");
        /* Impossible events are flagged, not followed. */
        CHECK(rank_transition(RANK_EXITED, RANK_EVENT_EXITED).action == RANK_ACTION_INVALID, "double exit flagged");
        CHECK(rank_transition(RANK_RUNNING, RANK_EVENT_SPAWNED).action == RANK_ACTION_INVALID, "respawn flagged");
        CHECK(rank_transition(_RANK_STATE_MAX, 0).action == RANK_ACTION_INVALID, "out of range flagged");

        /* The job. */
        CHECK(job_transition(JOB_RUNNING, JOB_EVENT_RANK_FAILED).action == JOB_ACTION_TEARDOWN &&
              job_transition(JOB_RUNNING, JOB_EVENT_RANK_FAILED).next == JOB_STOPPING, "failure tears down");
        CHECK(job_transition(JOB_STOPPING, JOB_EVENT_RANK_FAILED).action == JOB_ACTION_NONE,
              "later failures are consequences, not causes");
        CHECK(job_transition(JOB_RUNNING, JOB_EVENT_STOP_SIGNAL).action == JOB_ACTION_TEARDOWN, "a signal tears down");
        CHECK(job_transition(JOB_STOPPING, JOB_EVENT_STOP_SIGNAL).action == JOB_ACTION_FORWARD, "signals forwarded");
        CHECK(job_transition(JOB_STOPPING, JOB_EVENT_GRACE_EXPIRED).action == JOB_ACTION_KILL_ALL &&
              job_transition(JOB_STOPPING, JOB_EVENT_GRACE_EXPIRED).next == JOB_KILLING, "grace leads to SIGKILL");
        CHECK(job_transition(JOB_KILLING, JOB_EVENT_KILL_EXPIRED).action == JOB_ACTION_GIVE_UP,
              "the kill timeout gives up (bounded teardown)");
        CHECK(job_transition(JOB_RUNNING, JOB_EVENT_GRACE_EXPIRED).action == JOB_ACTION_NONE, "stale timers ignored");
        for (int s = JOB_RUNNING; s <= JOB_KILLING; s++)
                CHECK(job_transition(s, JOB_EVENT_ALL_REAPED).action == JOB_ACTION_FINISH,
                      "%s + all-reaped finishes", job_state_name(s));
        CHECK(job_transition(JOB_BACKOFF, JOB_EVENT_BACKOFF_EXPIRED).action == JOB_ACTION_RESTART &&
              job_transition(JOB_BACKOFF, JOB_EVENT_BACKOFF_EXPIRED).next == JOB_RUNNING, "backoff restarts");
        CHECK(job_transition(JOB_BACKOFF, JOB_EVENT_STOP_SIGNAL).action == JOB_ACTION_EXIT, "a signal in backoff exits");
        /*
         * A missed deadline: every rank is diagnosed before any signal, then the
         * teardown goes as for a failure; later deadlines are too late to matter.
         */
        CHECK(job_transition(JOB_RUNNING, JOB_EVENT_DEADLINE_EXPIRED).action == JOB_ACTION_DIAGNOSE &&
              job_transition(JOB_RUNNING, JOB_EVENT_DEADLINE_EXPIRED).next == JOB_DIAGNOSING, "a deadline diagnoses");
        CHECK(job_transition(JOB_DIAGNOSING, JOB_EVENT_DIAGNOSED).action == JOB_ACTION_TEARDOWN &&
              job_transition(JOB_DIAGNOSING, JOB_EVENT_DIAGNOSED).next == JOB_STOPPING, "then tears down");
        CHECK(job_transition(JOB_DIAGNOSING, JOB_EVENT_RANK_FAILED).action == JOB_ACTION_NONE,
              "a rank dying meanwhile is a consequence");
        CHECK(job_transition(JOB_DIAGNOSING, JOB_EVENT_STOP_SIGNAL).action == JOB_ACTION_TEARDOWN,
              "a stop signal does not wait for the diagnosis");
        CHECK(job_transition(JOB_DIAGNOSING, JOB_EVENT_ALL_REAPED).action == JOB_ACTION_FINISH, "nothing left: finish");
        for (int s = 0; s < _JOB_STATE_MAX; s++) {
                if (s != JOB_RUNNING)
                        CHECK(job_transition(s, JOB_EVENT_DEADLINE_EXPIRED).action == JOB_ACTION_NONE &&
                                      (int) job_transition(s, JOB_EVENT_DEADLINE_EXPIRED).next == s,
                              "%s ignores a deadline", job_state_name(s));
                if (s != JOB_DIAGNOSING)
                        CHECK(job_transition(s, JOB_EVENT_DIAGNOSED).action == JOB_ACTION_NONE &&
                                      (int) job_transition(s, JOB_EVENT_DIAGNOSED).next == s,
                              "%s ignores a stale diagnosis", job_state_name(s));
        }
        /* Another node failed (--store): stop this node's ranks, as for a failure of its own; later, nothing. */
        CHECK(job_transition(JOB_RUNNING, JOB_EVENT_NODE_FAILED).action == JOB_ACTION_TEARDOWN &&
              job_transition(JOB_RUNNING, JOB_EVENT_NODE_FAILED).next == JOB_STOPPING, "a node's failure tears down");
        CHECK(job_transition(JOB_DIAGNOSING, JOB_EVENT_NODE_FAILED).action == JOB_ACTION_NONE,
              "a diagnosis under way finishes first (its teardown follows)");
        CHECK(job_transition(JOB_STOPPING, JOB_EVENT_NODE_FAILED).action == JOB_ACTION_NONE &&
              job_transition(JOB_KILLING, JOB_EVENT_NODE_FAILED).action == JOB_ACTION_NONE,
              "a node's failure during a teardown is a consequence");
        CHECK(job_transition(JOB_BACKOFF, JOB_EVENT_NODE_FAILED).action == JOB_ACTION_EXIT,
              "a node's failure in backoff: no restart");
        for (int e = 0; e < _JOB_EVENT_MAX; e++)
                CHECK(job_transition(JOB_DONE, e).action == JOB_ACTION_NONE && job_transition(JOB_DONE, e).next == JOB_DONE,
                      "done is final (%s)", job_event_name(e));

        if (failures) {
                printf("%d failure(s)\n", failures);
                return 1;
        }
        printf("lifecycle tables: all checks passed\n");
        return 0;
}
