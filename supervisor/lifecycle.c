/* SPDX-License-Identifier: MIT */
#include "lifecycle.h"
#include "util.h"

/* Shorthands for the tables only. */
#define T(next, action) { RANK_##next, RANK_ACTION_##action }
#define BAD(state) { RANK_##state, RANK_ACTION_INVALID }

/*
 * A rank: rows are states, columns events.  An entry not written is
 * { RANK_IDLE, RANK_ACTION_NONE }, which no row relies on: every row spells
 * out all of its events.
 */
static const struct rank_transition rank_table[_RANK_STATE_MAX][_RANK_EVENT_MAX] = {
        /*                    SPAWNED              EXEC_OK             EXEC_FAILED                        EXITED                      SIGNALLED                      STOP                       KILL                      GIVE_UP */
        [RANK_IDLE]       = { T(STARTING, NONE),   BAD(IDLE),          BAD(IDLE),                         BAD(IDLE),                  BAD(IDLE),                     T(IDLE, NONE),             T(IDLE, NONE),            T(IDLE, NONE) },
        [RANK_STARTING]   = { BAD(STARTING),       T(RUNNING, NONE),   T(STARTING, RECORD_EXEC_ERROR),    T(EXITED, RECORD_END),      T(SIGNALLED, RECORD_END),      T(STOPPING, SEND_STOP),    T(KILLED, SEND_KILL),     T(UNREAPABLE, MARK_STUCK) },
        [RANK_RUNNING]    = { BAD(RUNNING),        BAD(RUNNING),       BAD(RUNNING),                      T(EXITED, RECORD_END),      T(SIGNALLED, RECORD_END),      T(STOPPING, SEND_STOP),    T(KILLED, SEND_KILL),     T(UNREAPABLE, MARK_STUCK) },
        [RANK_STOPPING]   = { BAD(STOPPING),       BAD(STOPPING),      BAD(STOPPING),                     T(EXITED, RECORD_END),      T(SIGNALLED, RECORD_END),      T(STOPPING, SEND_STOP),    T(KILLED, SEND_KILL),     T(UNREAPABLE, MARK_STUCK) },
        [RANK_KILLED]     = { BAD(KILLED),         BAD(KILLED),        BAD(KILLED),                       T(EXITED, RECORD_END),      T(SIGNALLED, RECORD_END),      T(KILLED, NONE),           T(KILLED, NONE),          T(UNREAPABLE, MARK_STUCK) },
        [RANK_UNREAPABLE] = { BAD(UNREAPABLE),     BAD(UNREAPABLE),    BAD(UNREAPABLE),                   T(EXITED, RECORD_END),      T(SIGNALLED, RECORD_END),      T(UNREAPABLE, NONE),       T(UNREAPABLE, NONE),      T(UNREAPABLE, NONE) },
        [RANK_EXITED]     = { BAD(EXITED),         BAD(EXITED),        BAD(EXITED),                       BAD(EXITED),                BAD(EXITED),                   T(EXITED, NONE),           T(EXITED, NONE),          T(EXITED, NONE) },
        [RANK_SIGNALLED]  = { BAD(SIGNALLED),      BAD(SIGNALLED),     BAD(SIGNALLED),                    BAD(SIGNALLED),             BAD(SIGNALLED),                T(SIGNALLED, NONE),        T(SIGNALLED, NONE),       T(SIGNALLED, NONE) },
};

#undef T
#undef BAD
#define T(next, action) { JOB_##next, JOB_ACTION_##action }
#define NONE(state) { JOB_##state, JOB_ACTION_NONE }

/*
 * The job.  Events that cannot matter in a state (a stale timer, a failure
 * during teardown: the first failure is already recorded) are NONE.
 */
static const struct job_transition job_table[_JOB_STATE_MAX][_JOB_EVENT_MAX] = {
        /*                   RANK_FAILED             RANKS_ENDED             ALL_REAPED          STOP_SIGNAL            GRACE_EXPIRED          KILL_EXPIRED         BACKOFF_EXPIRED        INTERNAL_ERROR         DEADLINE_EXPIRED         DIAGNOSED              NODE_FAILED            WORKER_FAILED */
        [JOB_RUNNING]    = { T(STOPPING, TEARDOWN),  T(STOPPING, TEARDOWN),  T(DONE, FINISH),    T(STOPPING, TEARDOWN), NONE(RUNNING),         NONE(RUNNING),       NONE(RUNNING),         T(STOPPING, TEARDOWN), T(DIAGNOSING, DIAGNOSE), NONE(RUNNING),         T(STOPPING, TEARDOWN), T(STOPPING, TEARDOWN) },
        [JOB_DIAGNOSING] = { NONE(DIAGNOSING),       NONE(DIAGNOSING),       T(DONE, FINISH),    T(STOPPING, TEARDOWN), NONE(DIAGNOSING),      NONE(DIAGNOSING),    NONE(DIAGNOSING),      T(STOPPING, TEARDOWN), NONE(DIAGNOSING),        T(STOPPING, TEARDOWN), NONE(DIAGNOSING), NONE(DIAGNOSING) },
        [JOB_STOPPING]   = { NONE(STOPPING),         NONE(STOPPING),         T(DONE, FINISH),    T(STOPPING, FORWARD),  T(KILLING, KILL_ALL),  NONE(STOPPING),      NONE(STOPPING),        NONE(STOPPING),        NONE(STOPPING),          NONE(STOPPING),        NONE(STOPPING), NONE(STOPPING) },
        [JOB_KILLING]    = { NONE(KILLING),          NONE(KILLING),          T(DONE, FINISH),    NONE(KILLING),         NONE(KILLING),         T(DONE, GIVE_UP),    NONE(KILLING),         NONE(KILLING),         NONE(KILLING),           NONE(KILLING),         NONE(KILLING), NONE(KILLING) },
        [JOB_BACKOFF]    = { NONE(BACKOFF),          NONE(BACKOFF),          NONE(BACKOFF),      T(DONE, EXIT),         NONE(BACKOFF),         NONE(BACKOFF),       T(RUNNING, RESTART),   T(DONE, EXIT),         NONE(BACKOFF),           NONE(BACKOFF),         T(DONE, EXIT), NONE(BACKOFF) },
        [JOB_DONE]       = { NONE(DONE),             NONE(DONE),             NONE(DONE),         NONE(DONE),            NONE(DONE),            NONE(DONE),          NONE(DONE),            NONE(DONE),            NONE(DONE),              NONE(DONE),            NONE(DONE), NONE(DONE) },
};

#undef T
#undef NONE

struct rank_transition rank_transition(enum rank_state state, enum rank_event event) {
        if ((unsigned) state >= _RANK_STATE_MAX || (unsigned) event >= _RANK_EVENT_MAX)
                return (struct rank_transition) { state, RANK_ACTION_INVALID };
        return rank_table[state][event];
}

struct job_transition job_transition(enum job_state state, enum job_event event) {
        if ((unsigned) state >= _JOB_STATE_MAX || (unsigned) event >= _JOB_EVENT_MAX)
                return (struct job_transition) { state, JOB_ACTION_NONE };
        return job_table[state][event];
}

const char *rank_state_name(enum rank_state s) {
        static const char *const names[_RANK_STATE_MAX] = {
                [RANK_IDLE] = "idle",           [RANK_STARTING] = "starting",
                [RANK_RUNNING] = "running",     [RANK_STOPPING] = "stopping",
                [RANK_KILLED] = "killed",       [RANK_UNREAPABLE] = "unreapable",
                [RANK_EXITED] = "exited",       [RANK_SIGNALLED] = "signalled",
        };
        return (unsigned) s < _RANK_STATE_MAX ? names[s] : "?";
}

const char *rank_event_name(enum rank_event e) {
        static const char *const names[_RANK_EVENT_MAX] = {
                [RANK_EVENT_SPAWNED] = "spawned",         [RANK_EVENT_EXEC_OK] = "exec-ok",
                [RANK_EVENT_EXEC_FAILED] = "exec-failed", [RANK_EVENT_EXITED] = "exited",
                [RANK_EVENT_SIGNALLED] = "signalled",     [RANK_EVENT_STOP] = "stop",
                [RANK_EVENT_KILL] = "kill",               [RANK_EVENT_GIVE_UP] = "give-up",
        };
        return (unsigned) e < _RANK_EVENT_MAX ? names[e] : "?";
}

bool rank_state_is_alive(enum rank_state s) {
        return s == RANK_STARTING || s == RANK_RUNNING || s == RANK_STOPPING || s == RANK_KILLED ||
               s == RANK_UNREAPABLE;
}

bool rank_state_is_ended(enum rank_state s) {
        return s == RANK_EXITED || s == RANK_SIGNALLED;
}

const char *job_state_name(enum job_state s) {
        static const char *const names[_JOB_STATE_MAX] = {
                [JOB_RUNNING] = "running", [JOB_DIAGNOSING] = "diagnosing", [JOB_STOPPING] = "stopping",
                [JOB_KILLING] = "killing",
                [JOB_BACKOFF] = "backoff", [JOB_DONE] = "done",
        };
        return (unsigned) s < _JOB_STATE_MAX ? names[s] : "?";
}

const char *job_event_name(enum job_event e) {
        static const char *const names[_JOB_EVENT_MAX] = {
                [JOB_EVENT_RANK_FAILED] = "rank-failed",         [JOB_EVENT_RANKS_ENDED] = "ranks-ended",
                [JOB_EVENT_ALL_REAPED] = "all-reaped",           [JOB_EVENT_STOP_SIGNAL] = "stop-signal",
                [JOB_EVENT_GRACE_EXPIRED] = "grace-expired",     [JOB_EVENT_KILL_EXPIRED] = "kill-expired",
                [JOB_EVENT_BACKOFF_EXPIRED] = "backoff-expired", [JOB_EVENT_INTERNAL_ERROR] = "internal-error",
                [JOB_EVENT_DEADLINE_EXPIRED] = "deadline-expired", [JOB_EVENT_DIAGNOSED] = "diagnosed",
                [JOB_EVENT_NODE_FAILED] = "node-failed",
                [JOB_EVENT_WORKER_FAILED] = "worker-failed",
        };
        return (unsigned) e < _JOB_EVENT_MAX ? names[e] : "?";
}
