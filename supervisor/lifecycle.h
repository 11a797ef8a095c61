/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_LIFECYCLE_H
#define RINGMASTER_LIFECYCLE_H

/*
 * Every lifecycle in one place, as state x event tables (s6-supervise's
 * style): a rank's, and the job's.  The tables say which state follows and
 * which action to take; job.c carries the actions out.  Nothing else changes
 * a rank's or the job's state.
 */

#include <stdbool.h>

/* ------------------------------------------------------------ a rank */

enum rank_state {
        RANK_IDLE,          /* not started (yet) in this attempt */
        RANK_STARTING,      /* forked; exec not confirmed */
        RANK_RUNNING,       /* exec'd (readiness and phase are separate fields) */
        RANK_STOPPING,      /* sent SIGTERM (or a forwarded signal), grace running */
        RANK_KILLED,        /* sent SIGKILL, waiting for the kernel */
        RANK_UNREAPABLE,    /* still there after SIGKILL and --kill-timeout (D state) */
        RANK_EXITED,        /* exited by itself: exit code recorded */
        RANK_SIGNALLED,     /* killed by a signal: signal recorded */
        _RANK_STATE_MAX,
};

enum rank_event {
        RANK_EVENT_SPAWNED,
        RANK_EVENT_EXEC_OK,
        RANK_EVENT_EXEC_FAILED,
        RANK_EVENT_EXITED,       /* the kernel: exited with a code */
        RANK_EVENT_SIGNALLED,    /* the kernel: killed by a signal */
        RANK_EVENT_STOP,         /* teardown: send the stop signal to its group */
        RANK_EVENT_KILL,         /* the grace ran out: SIGKILL its group */
        RANK_EVENT_GIVE_UP,      /* --kill-timeout ran out */
        _RANK_EVENT_MAX,
};

enum rank_action {
        RANK_ACTION_NONE,
        RANK_ACTION_SEND_STOP,
        RANK_ACTION_SEND_KILL,
        RANK_ACTION_RECORD_END,
        RANK_ACTION_RECORD_EXEC_ERROR,
        RANK_ACTION_MARK_STUCK,
        RANK_ACTION_INVALID,     /* cannot happen: a bug, logged */
};

struct rank_transition {
        enum rank_state next;
        enum rank_action action;
};

struct rank_transition rank_transition(enum rank_state state, enum rank_event event);

const char *rank_state_name(enum rank_state s);
const char *rank_event_name(enum rank_event e);
/* A process exists (or may) for this state. */
bool rank_state_is_alive(enum rank_state s);
/* Reaped: the rank's process is gone. */
bool rank_state_is_ended(enum rank_state s);

/* ------------------------------------------------------------ the job */

enum job_state {
        JOB_RUNNING,        /* ranks at work */
        JOB_DIAGNOSING,     /* a deadline passed: every rank is looked at, before any signal */
        JOB_STOPPING,       /* tearing down: stop signal sent, grace running */
        JOB_KILLING,        /* SIGKILL sent, waiting at most --kill-timeout */
        JOB_BACKOFF,        /* between attempts: waiting to restart */
        JOB_DONE,
        _JOB_STATE_MAX,
};

enum job_event {
        JOB_EVENT_RANK_FAILED,       /* a rank exited non-zero or was killed by a signal */
        JOB_EVENT_RANKS_ENDED,       /* no rank is alive, but orphans are */
        JOB_EVENT_ALL_REAPED,        /* no rank and no orphan is alive */
        JOB_EVENT_STOP_SIGNAL,       /* SIGINT, SIGTERM, SIGHUP or SIGQUIT to the supervisor */
        JOB_EVENT_GRACE_EXPIRED,
        JOB_EVENT_KILL_EXPIRED,
        JOB_EVENT_BACKOFF_EXPIRED,
        JOB_EVENT_INTERNAL_ERROR,    /* the supervisor failed (spawning, resources) */
        JOB_EVENT_DEADLINE_EXPIRED,  /* a rank missed a deadline (deadline.h): a hang, not a crash */
        JOB_EVENT_DIAGNOSED,         /* the diagnosis of every rank is over */
        JOB_EVENT_NODE_FAILED,       /* another node of the job failed or was lost (--store; run-nodes.c) */
        JOB_EVENT_WORKER_FAILED,     /* a worker the engine spawned failed (job-workers.h) */
        _JOB_EVENT_MAX,
};

enum job_action {
        JOB_ACTION_NONE,
        JOB_ACTION_TEARDOWN,         /* record the cause; stop every live process; arm the grace */
        JOB_ACTION_DIAGNOSE,         /* record the deadline; diagnose every rank (then: diagnosed) */
        JOB_ACTION_FORWARD,          /* forward the signal to every live process */
        JOB_ACTION_KILL_ALL,         /* SIGKILL every live process; arm --kill-timeout */
        JOB_ACTION_GIVE_UP,          /* record what is stuck, then finish */
        JOB_ACTION_FINISH,           /* end the attempt: restart (BACKOFF) or DONE */
        JOB_ACTION_RESTART,          /* start the next attempt */
        JOB_ACTION_EXIT,             /* stop now, nothing runs */
};

struct job_transition {
        enum job_state next;         /* FINISH and GIVE_UP may pick BACKOFF instead of DONE */
        enum job_action action;
};

struct job_transition job_transition(enum job_state state, enum job_event event);

const char *job_state_name(enum job_state s);
const char *job_event_name(enum job_event e);

#endif
