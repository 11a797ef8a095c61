/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_WORKERS_H
#define RINGMASTER_WORKERS_H

/*
 * The workers an engine spawned under a rank (docs/spawned-workers.md):
 * each process that announced itself, the process groups they said they
 * joined (init_process_group's rendezvous, rank, world), and how each
 * ended.  This file holds the model and the decisions made on it (who is
 * missing from a group, the straggler's headline, a worker's label);
 * job.c owns the event sources (a pidfd per worker, its streams) and feeds
 * it.  Times are CLOCK_MONOTONIC microseconds, 0 meaning never.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct diagnosis;
struct json_value;
struct stream;
struct worker_message;

enum worker_state {
        WORKER_RUNNING,
        WORKER_EXITED,                  /* exit_code */
        WORKER_SIGNALLED,               /* exit_signal */
        WORKER_GONE,                    /* ended; its parent reaped it before we could read how */
};

struct worker {
        int id;                         /* its index in the table: stable for the attempt */
        pid_t pid;
        uint64_t start_time;            /* /proc/PID/stat's starttime (a reused pid is another worker) */
        pid_t ppid;
        int rank;                       /* the ringmaster rank it runs under */
        bool native;
        char *argv;                     /* the command line's summary */
        char *name;                     /* multiprocessing's name, or NULL */
        int index;                      /* among its siblings, or -1 */
        uint64_t announced_usec;

        int group;                      /* the first group it joined (table index), or -1 */
        int group_rank;
        uint64_t group_usec;            /* when it entered that group's init */

        char *phase;                    /* the last phase it entered, or NULL */
        uint64_t phase_start_usec, phase_end_usec;
        uint64_t ready_usec;            /* it said READY=1 itself */
        uint64_t extend_until_usec;     /* its EXTEND_TIMEOUT_USEC: none of its own deadlines before */
        uint64_t joined_usec;           /* its init_process_group returned (dist-init ended, not failed) */

        enum worker_state state;
        int exit_code, exit_signal;
        bool exit_announced;            /* X_RINGMASTER_WORKER_EXIT came */
        bool exec_announced;            /* it went on as another program */
        char *exception;                /* X_RINGMASTER_WORKER_EXCEPTION, or NULL */
        uint64_t ended_usec;
        bool failure_reported;

        /* Runtime, job-workers.c's (never touched here): its exit watch, streams, diagnosis, error file. */
        int pidfd;
        void *exit_source;              /* sd_event_source * */
        void *exit_userdata;            /* job-workers.c's context */
        struct stream *streams;         /* its own [STREAM_STDOUT] and [STREAM_STDERR], or NULL: not captured */
        struct diagnosis *diagnosis;    /* diagnose.c's: the last one taken, or NULL */
        struct json_value *error_file;
        char *error_file_raw;
};

struct worker_group {
        int rank;                       /* the ringmaster rank whose workers these are */
        char *key;                      /* the rendezvous */
        int world;
        uint64_t first_usec;            /* the first member entered */
        int *members;                   /* world entries: a worker id, or -1 */
        int n_members;
};

struct worker_table {
        struct worker **workers;
        size_t n_workers;
        struct worker_group *groups;
        size_t n_groups;
};

/* At most this many workers and groups per attempt (more are refused and counted). */
#define WORKERS_MAX 4096
#define WORKER_GROUPS_MAX 256

void worker_table_reset(struct worker_table *t);

/* The worker with this pid (and start time, unless 0) that has not ended, or NULL. */
struct worker *worker_table_find(const struct worker_table *t, pid_t pid, uint64_t start_time);

/*
 * Records an announcement from pid (start_time, ppid from /proc) under
 * rank.  A known, running worker is updated (a later announcement fills in
 * its name and index; an exec'd one its command line).  -ENOSPC past
 * WORKERS_MAX, -ENOMEM.
 */
int worker_table_announce(struct worker_table *t, int rank, pid_t pid, uint64_t start_time, pid_t ppid,
                          const struct worker_message *m, uint64_t now, struct worker **ret);

/* Applies the group, exit, exception, exec keys of m to w. */
int worker_apply_message(struct worker_table *t, struct worker *w, const struct worker_message *m, uint64_t now);

/*
 * A phase's start or end, as the notify protocol said it; failed: the end
 * came with the hook's "NAME failed: ..." status (dist-init's end then does
 * not count as joining).
 */
int worker_phase(struct worker *w, const char *entered, const char *ended, bool failed, uint64_t now);

/* It said READY=1 itself. */
void worker_said_ready(struct worker *w, uint64_t now);

/*
 * It said EXTEND_TIMEOUT_USEC=usec (systemd's meaning): none of its own
 * deadlines (--ready-timeout, its phase's limit, the straggler timeout of
 * the group it is missing from) falls before now + usec.
 */
void worker_extend(struct worker *w, uint64_t usec, uint64_t now);

/* due, or later when w's EXTEND_TIMEOUT_USEC reaches further. */
uint64_t worker_extended(const struct worker *w, uint64_t due);

/*
 * Whether --ready-timeout watches w, and whether it is ready
 * (docs/spawned-workers.md, "Ready"):
 *   - a worker that said READY=1 is ready;
 *   - a worker whose sibling (same parent, same rank, started the same
 *     way: by multiprocessing or not, Python or native, running the same
 *     program or script) said READY=1 is expected to say it too;
 *   - otherwise a worker that joined a group, or is taken for a member a
 *     group misses, is ready once its init_process_group returned;
 *   - any other worker (a forkserver, multiprocessing's resource tracker,
 *     vLLM's engine core: the workers' parent) is not watched.
 */
enum worker_readiness {
        WORKER_READINESS_UNWATCHED,
        WORKER_READINESS_WAITING,
        WORKER_READINESS_READY,
};
enum worker_readiness worker_readiness(const struct worker_table *t, const struct worker *w);

/* "in phase load-weights for 3.0 s", "after phase dist-init (ended 2.0 s ago)", "before any phase for 5.0 s". */
void worker_describe_position(const struct worker *w, uint64_t now, char *buf, size_t size);

/* w ended: how (WORKER_EXITED with code, WORKER_SIGNALLED with sig, or WORKER_GONE). */
void worker_ended(struct worker *w, enum worker_state how, int code_or_signal, uint64_t now);

/*
 * Whether w's end is a failure: a non-zero status, a signal, an
 * exception, or (a Python worker that did not exec) an end without its own
 * EXIT (a signal or C's _exit).
 */
bool worker_failed(const struct worker *w);

/* "w2" (its rank in its group), "w2" (its index), or "p4242" (its pid). */
const char *worker_label(const struct worker *w, char *buf, size_t size);

/*
 * "worker 2 of 4 (pid 4242, child of rank 0)" / "worker p4242 (pid 4242,
 * child of pid 4200)"; rank_pid is the pid of w's rank's process (0:
 * unknown).
 */
void worker_describe(const struct worker_table *t, const struct worker *w, pid_t rank_pid, char *buf, size_t size);

/* Its status as ringmaster's exit status: its code, 128 + its signal, 1 when unknown. */
int worker_exit_status(const struct worker *w);

/* "worker 2" (its rank in its group), else "worker w2" / "worker p4242" (its label). */
const char *worker_name(const struct worker *w, char *buf, size_t size);

const char *worker_state_name(enum worker_state s);

/* "exited with status 3", "was killed by SIGSEGV", "raised RuntimeError: ...", "ended (status unknown)". */
void worker_describe_end(const struct worker *w, char *buf, size_t size);

/*
 * When group gi is late: its first member + limit, or later when a worker
 * of its rank that joined no group yet (one it may be waiting for) said
 * EXTEND_TIMEOUT_USEC reaching further.
 */
uint64_t worker_group_due(const struct worker_table *t, size_t gi, uint64_t limit);

/* Groups with members missing: the earliest worker_group_due(), or 0 when none is incomplete. */
uint64_t worker_groups_next_due(const struct worker_table *t, uint64_t limit);

/*
 * The first incomplete group due at or before now (or, with limit 0, the
 * first incomplete group of rank -1: any): writes its headline,
 *   "worker 2 of 4 (pid 4242, child of rank 0) never entered dist-init;
 *    workers 0,1,3 waiting 60.0 s"
 * and the ids of the workers taken for the missing ones (ret_late, up to
 * max_late; -1 for a member no announced worker matches).  Returns the
 * group's index, or -1 when none.  rank_pid_of(rank) gives a rank's pid.
 */
int worker_groups_find_late(const struct worker_table *t, uint64_t now, uint64_t limit,
                            pid_t (*rank_pid_of)(int rank, void *userdata), void *userdata, char *headline,
                            size_t size, int *ret_late, size_t max_late, size_t *ret_n_late);

/* The announced workers that could be member m of group g: its index, else the one sibling not in g. */
struct worker *worker_group_candidate(const struct worker_table *t, int g, int m);

#endif
