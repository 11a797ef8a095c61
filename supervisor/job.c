/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "contain.h"
#include "deadline.h"
#include "diagnose.h"
#include "environ.h"
#include "exit-status.h"
#include "init.h"
#include "job.h"
#include "job-workers.h"
#include "json.h"
#include "log.h"
#include "memguard.h"
#include "notify.h"
#include "options.h"
#include "phase.h"
#include "proctree.h"
#include "run-segment.h"
#include "rundir.h"
#include "shmring.h"
#include "util.h"

#define ERROR_FILE_MAX (1u << 20)

/* A rank's child source (sd-event reaps it and calls on_rank_exit). */
struct rank_child {
        struct job *job;
        int index;
        sd_event_source *source;
};

/* A tracked orphan: the run's record and its child source. */
struct orphan_watch {
        struct orphan orphan;           /* first: run.orphans[] point here */
        struct job *job;
        sd_event_source *source;
};

struct job {
        struct run_model run;
        struct job_setup setup;
        sd_event *event;

        struct rank_child *children;    /* run.nproc of them */
        int dev_null_fd;
        bool ranks_ended_posted;
        bool exec_error_logged;
        struct shmring *segment;
        bool segment_broken;            /* a worker shrank it: never touched again (memguard.h) */

        sd_event_source *timer;
        enum job_event timer_event;

        /* The notify socket (whole run), and the one timer at deadline_next(). */
        struct notify_server *notify;
        sd_event_source *deadline_timer;
        sd_event_source *signal_sources[ELEMENTSOF(job_stop_signals)];
        sd_event_source *sigchld_source;
        struct diagnoser *diagnoser;    /* hang diagnosis, SIGUSR2, stack tools (diagnose.h) */
        struct job_workers *workers;    /* the workers the ranks spawned (job-workers.h) */

        /* Events posted by actions, run in order (no recursion into the tables). */
        struct {
                enum job_event event;
                int arg;
        } queue[16];
        size_t queue_len;
};

struct job_setup *job_setup(struct job *job) {
        return &job->setup;
}

struct run_model *job_run(struct job *job) {
        return &job->run;
}

const int job_stop_signals[4] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

static void job_post(struct job *job, enum job_event event, int arg);
static void job_run_queue(struct job *job);

/* ------------------------------------------------------------ signalling */

/*
 * SIGKILL, unless RINGMASTER_TEST_KILL_SIGNAL names another signal number:
 * a test-only knob that makes a process "survive" SIGKILL, to exercise the
 * bounded teardown of a process stuck in D state, which a test cannot make.
 */
static int kill_signal(void) {
        static int sig = 0;

        if (sig == 0) {
                const char *e = getenv("RINGMASTER_TEST_KILL_SIGNAL");
                int v = e ? atoi(e) : 0;

                sig = v > 0 && v < NSIG ? v : SIGKILL;
        }
        return sig;
}

static void rank_signal_group(struct rank *r, int sig) {
        char name[16];

        /* The leader is not reaped yet (its state is alive), so its pid, the group's id, cannot be reused. */
        if (killpg(r->pid, sig == SIGKILL ? kill_signal() : sig) < 0 && errno != ESRCH)
                log_warning_errno(-errno, "rank %d: cannot send %s to process group %d", r->index,
                                  signal_name(sig, name, sizeof(name)), (int) r->pid);
        r->last_signal_sent = sig;
        r->last_signal_usec = now_usec();
}

static void orphan_signal(struct orphan *o, int sig) {
        struct proc_stat st;

        if (o->ended)
                return;
        /* It is our unreaped child, so its group (and its pid) stay reserved while we signal them. */
        if (sig == SIGKILL)
                sig = kill_signal();
        if (proc_read_stat(o->pid, &st) == 0 && st.pgrp > 1 && st.pgrp != getpgrp())
                (void) killpg(st.pgrp, sig);
        (void) kill(o->pid, sig);
        /* The teardown's stop signal reaches a stopped process only once continued. */
        if (sig != SIGCONT && sig != SIGKILL && sig != kill_signal())
                (void) kill(o->pid, SIGCONT);
        o->last_signal_sent = sig;
}

/* ------------------------------------------------------------ the rank table's actions */

static void rank_mark_stuck(char *state, char *wchan, size_t wchan_size, pid_t pid) {
        struct proc_stat st;

        *state = proc_read_stat(pid, &st) == 0 ? st.state : '?';
        if (proc_read_wchan(pid, wchan, wchan_size) < 0)
                snprintf(wchan, wchan_size, "?");
}

static void rank_dispatch(struct rank *r, enum rank_event event, int sig) {
        struct rank_transition t = rank_transition(r->state, event);
        enum rank_state old = r->state;

        switch (t.action) {
        case RANK_ACTION_NONE:
        case RANK_ACTION_RECORD_END:           /* the caller stored the status */
        case RANK_ACTION_RECORD_EXEC_ERROR:    /* the caller stored the error */
                break;
        case RANK_ACTION_SEND_STOP:
                rank_signal_group(r, sig);
                /* A stopped (T-state) process acts on the stop signal only once continued (systemd does this too). */
                if (sig != SIGCONT && killpg(r->pid, SIGCONT) < 0 && errno != ESRCH)
                        log_debug("rank %d: cannot send SIGCONT: %s", r->index, strerror(errno));
                break;
        case RANK_ACTION_SEND_KILL:
                rank_signal_group(r, SIGKILL);
                break;
        case RANK_ACTION_MARK_STUCK:
                rank_mark_stuck(&r->stuck_state, r->stuck_wchan, sizeof(r->stuck_wchan), r->pid);
                break;
        case RANK_ACTION_INVALID:
                log_error("internal error: rank %d got event %s in state %s; ignored", r->index,
                          rank_event_name(event), rank_state_name(r->state));
                return;
        }
        r->state = t.next;
        if (old != t.next)
                log_debug("rank %d: %s --%s--> %s", r->index, rank_state_name(old), rank_event_name(event),
                          rank_state_name(t.next));
}

/* ------------------------------------------------------------ counting */

static size_t ranks_alive(const struct job *job) {
        size_t n = 0;

        for (int i = 0; i < job->run.nproc; i++)
                if (rank_state_is_alive(job->run.ranks[i].state))
                        n++;
        return n;
}

static size_t orphans_alive(const struct job *job) {
        size_t n = 0;

        for (size_t i = 0; i < job->run.n_orphans; i++)
                if (!job->run.orphans[i]->ended)
                        n++;
        return n;
}

/* Unreapable processes do not hold the job up once the supervisor gave up. */
static size_t processes_pending(const struct job *job) {
        size_t n = 0;

        for (int i = 0; i < job->run.nproc; i++)
                if (rank_state_is_alive(job->run.ranks[i].state) && job->run.ranks[i].state != RANK_UNREAPABLE)
                        n++;
        if (!job->run.gave_up)
                n += orphans_alive(job);
        return n;
}

/* ------------------------------------------------------------ timers */

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct job *job = userdata;

        job->timer = sd_event_source_unref(job->timer);
        job_post(job, job->timer_event, 0);
        job_run_queue(job);
        return 0;
}

static int job_arm_timer(struct job *job, uint64_t usec, enum job_event event) {
        int r;

        job->timer = sd_event_source_disable_unref(job->timer);
        job->timer_event = event;
        /* 1 ms accuracy: sd-event's default slack is 250 ms. */
        r = sd_event_add_time_relative(job->event, &job->timer, CLOCK_MONOTONIC, usec, USEC_PER_MSEC, on_timer, job);
        if (r < 0)
                return log_error_errno(r, "cannot arm a timer");
        return 0;
}

/* ------------------------------------------------------------ orphans */

static int on_orphan_exit(sd_event_source *s, const siginfo_t *si, void *userdata);

static bool pid_is_live_rank(const struct job *job, pid_t pid) {
        for (int i = 0; i < job->run.nproc; i++)
                if (job->run.ranks[i].pid == pid && rank_state_is_alive(job->run.ranks[i].state))
                        return true;
        return false;
}

/* ------------------------------------------------------------ the segment, guarded */

struct segment_touch {
        struct shmring *segment;
        pid_t pid;
};

static int touch_mark_dead(void *userdata) {
        struct segment_touch *t = userdata;

        return shmring_mark_dead(t->segment, t->pid);
}

static int touch_close(void *userdata) {
        struct segment_touch *t = userdata;

        t->segment = shmring_close(t->segment);
        return 0;
}

static void job_segment_broken(struct job *job) {
        if (job->segment_broken)
                return;
        job->segment_broken = true;
        log_warning("the shared-memory segment %s was truncated under ringmaster (SIGBUS on access): a worker "
                    "shrank it; ringmaster no longer touches it", job->run.segment_name);
}

/*
 * Tells the segment's peers that pid died.  A worker can ftruncate() the
 * segment: the access is guarded (memguard.h), so that ringmaster goes on
 * to its report and removes the segment.
 */
static void job_segment_mark_dead(struct job *job, pid_t pid) {
        struct segment_touch t = { job->segment, pid };

        if (!job->segment || job->segment_broken)
                return;
        if (memguard_run(touch_mark_dead, &t) == -EFAULT)
                job_segment_broken(job);
}

static bool pid_is_tracked_orphan(const struct job *job, pid_t pid) {
        for (size_t i = 0; i < job->run.n_orphans; i++)
                if (job->run.orphans[i]->pid == pid && !job->run.orphans[i]->ended)
                        return true;
        return false;
}

bool job_claims_child(const struct job *job, pid_t pid) {
        return pid_is_live_rank(job, pid) || pid_is_tracked_orphan(job, pid) ||
               diagnoser_claims_child(job->diagnoser, pid);   /* a stack tool of ours */
}

static bool claimed_child(pid_t pid, void *userdata) {
        return job_claims_child(userdata, pid);
}

/*
 * Finds children of ours that are not ranks: descendants re-parented to us
 * (PR_SET_CHILD_SUBREAPER) when their parent died.  Each gets a child
 * source, so that sd-event reaps it, and, during teardown, the signal the
 * ranks got.
 */
static void job_scan_orphans(struct job *job, pid_t being_reaped) {
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;
        int r;

        r = proc_children_of(getpid(), &pids, &n);
        if (r < 0) {
                log_warning_errno(r, "cannot list the supervisor's children");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                struct orphan_watch *w;
                struct orphan *o, **l;
                struct proc_stat st;

                /* being_reaped: the zombie whose child source runs now; sd-event reaps it next. */
                if (pids[i] == being_reaped || job_claims_child(job, pids[i]))
                        continue;
                w = calloc(1, sizeof(*w));
                l = realloc(job->run.orphans, (job->run.n_orphans + 1) * sizeof(*l));
                if (!w || !l) {
                        free(w);
                        if (l)
                                job->run.orphans = l;
                        log_error("out of memory tracking orphan %d", (int) pids[i]);
                        continue;
                }
                job->run.orphans = l;
                *w = (struct orphan_watch) { .orphan.pid = pids[i], .job = job };
                o = &w->orphan;
                if (proc_read_stat(o->pid, &st) == 0)
                        snprintf(o->comm, sizeof(o->comm), "%s", st.comm);
                r = sd_event_add_child(job->event, &w->source, o->pid, WEXITED, on_orphan_exit, w);
                if (r < 0) {
                        /* Gone (reaped) between the listing and now, or not ours after all. */
                        free(w);
                        continue;
                }
                job->run.orphans[job->run.n_orphans++] = o;
                job->run.orphans_seen++;
                log_info("orphan %d (%s) was re-parented to ringmaster; it is tracked and will be reaped",
                         (int) o->pid, o->comm);
                if (job->run.state == JOB_STOPPING)
                        orphan_signal(o, job->run.teardown_signal);
                else if (job->run.state == JOB_KILLING)
                        orphan_signal(o, SIGKILL);
        }
}

static int on_orphan_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        struct orphan_watch *w = userdata;
        struct orphan *o = &w->orphan;
        struct job *job = w->job;

        o->ended = true;
        if (si->si_code == CLD_EXITED)
                o->exit_code = si->si_status;
        else
                o->exit_signal = si->si_status;
        job_segment_mark_dead(job, o->pid);
        log_debug("orphan %d (%s) ended", (int) o->pid, o->comm);
        /* Its own children were re-parented to us before this event. */
        job_scan_orphans(job, o->pid);
        job_run_queue(job);
        return 0;
}

static int on_sigchld(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct job *job = userdata;

        /* Ranks and known orphans have child sources; this finds the others. */
        job_scan_orphans(job, 0);
        /* As a container's init: whatever zombie the scan could not give a child source to. */
        if (job->run.init)
                job->run.zombies_reaped += init_reap_unclaimed(claimed_child, job);
        job_run_queue(job);
        return 0;
}

/* ------------------------------------------------------------ notify and deadlines */

static int notify_rank_of_pid(pid_t pid, void *userdata) {
        const struct job *job = userdata;

        /* Only a live (unreaped) rank: its pid cannot belong to another process. */
        for (int i = 0; i < job->run.nproc; i++)
                if (job->run.ranks[i].pid == pid && rank_state_is_alive(job->run.ranks[i].state))
                        return i;
        /* An announced worker still running (also one re-parented to us). */
        return job_workers_rank_of_pid(job->workers, pid);
}

static void on_notify_worker(int rank, pid_t sender, const void *data, size_t size, int *fds, size_t n_fds,
                             void *userdata) {
        struct job *job = userdata;

        job_workers_datagram(job->workers, rank, sender, data, size, fds, n_fds);
}

static void on_notify_message(int rank, pid_t sender, const struct notify_message *m, void *userdata) {
        struct job *job = userdata;

        rank_notify_apply(&job->run.phases, job->run.nproc, job->run.attempt_start_usec, &job->run.ranks[rank], m,
                          now_usec());
        job_workers_notify(job->workers, sender, m);
        /* Each datagram in turn, so that "rank 1: ready" comes before "all ranks ready". */
        if (job->setup.changed)
                job->setup.changed(&job->run, job->setup.changed_userdata);
}

static void job_update_deadlines(struct job *job);

static void on_notify_drained(void *userdata) {
        struct job *job = userdata;

        job_update_deadlines(job);
        job_run_queue(job);
}

static int on_deadline_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct job *job = userdata;

        job_update_deadlines(job);
        job_run_queue(job);
        return 0;
}

/*
 * After anything that moves a deadline (datagrams, an attempt's start, the
 * timer itself): posts deadline-expired when one has passed, otherwise
 * keeps the one timer at the earliest deadline.
 */
static void job_update_deadlines(struct job *job) {
        const struct deadline_input in = {
                .options = job->run.options,
                .ranks = job->run.ranks,
                .nproc = job->run.nproc,
                .phases = &job->run.phases,
                .attempt_start_usec = job->run.attempt_start_usec,
                .workers = &job->run.workers,
        };
        uint64_t now = now_usec(), next;
        int k;

        if (job->run.state != JOB_RUNNING || job->run.deadline_pending.kind != DEADLINE_NONE) {
                (void) sd_event_source_set_enabled(job->deadline_timer, SD_EVENT_OFF);
                return;
        }
        k = deadline_find_expired(&in, now, &job->run.deadline_pending);
        if (k < 0) {
                job_post(job, JOB_EVENT_INTERNAL_ERROR, k);
                return;
        }
        if (k > 0) {
                (void) sd_event_source_set_enabled(job->deadline_timer, SD_EVENT_OFF);
                job_post(job, JOB_EVENT_DEADLINE_EXPIRED, 0);
                return;
        }
        next = deadline_next(&in);
        if (next == UINT64_MAX) {
                (void) sd_event_source_set_enabled(job->deadline_timer, SD_EVENT_OFF);
                return;
        }
        if (job->deadline_timer) {
                k = sd_event_source_set_time(job->deadline_timer, next);
                if (k >= 0)
                        k = sd_event_source_set_enabled(job->deadline_timer, SD_EVENT_ONESHOT);
        } else
                /* 1 ms accuracy, as the other timer. */
                k = sd_event_add_time(job->event, &job->deadline_timer, CLOCK_MONOTONIC, next, USEC_PER_MSEC,
                                      on_deadline_timer, job);
        if (k < 0) {
                log_error_errno(k, "cannot arm the deadline timer");
                job_post(job, JOB_EVENT_INTERNAL_ERROR, k);
        }
}

/*
 * The diagnosis of every rank before a deadline's teardown (the late ones
 * are job->run.deadline.ranks), in the job table's `diagnosing` state: /proc,
 * Python tracebacks, native stacks, NCCL logs (diagnose.h), bounded by
 * --diagnose-timeout.  It ends with the event `diagnosed`, posted from the
 * event loop, and only then do the signals go out.  Each rank's state and
 * wait channel then also go to diag_state and diag_wchan, for the deadline
 * report's line.
 */
static void on_deadline_diagnosed(void *userdata) {
        struct job *job = userdata;

        for (int i = 0; i < job->run.nproc; i++) {
                struct rank *r = &job->run.ranks[i];
                const struct diagnosis *d = r->diagnosis;

                if (d && strcmp(d->reason, "deadline") == 0 && d->n_processes > 0) {
                        r->diag_state = d->processes[0].state;
                        snprintf(r->diag_wchan, sizeof(r->diag_wchan), "%s", d->processes[0].wchan);
                }
        }
        job_post(job, JOB_EVENT_DIAGNOSED, 0);
        job_run_queue(job);
}

static void job_diagnose_all(struct job *job, const char *reason) {
        const struct worker_table *t = &job->run.workers;
        const struct deadline_cause *c = &job->run.deadline;
        size_t max = (size_t) job->run.nproc + t->n_workers;
        _cleanup_free_ int *ranks = calloc(max ? max : 1, sizeof(int));
        size_t n = 0;
        int k = -ENOMEM;

        log_debug("diagnosing every rank: %s", reason);
        /* The spawned workers too (diagnose_ranks()'s -1 - id), the late ones first. */
        for (size_t i = 0; ranks && i < c->n_workers; i++)
                if (c->workers[i] >= 0)
                        ranks[n++] = -1 - c->workers[i];
        for (size_t i = 0; ranks && i < t->n_workers; i++)
                if (t->workers[i]->state == WORKER_RUNNING && !rank_list_contains(c->workers, c->n_workers, (int) i))
                        ranks[n++] = -1 - (int) i;
        for (int i = 0; ranks && i < job->run.nproc; i++)
                if (rank_state_is_alive(job->run.ranks[i].state))
                        ranks[n++] = i;
        if (ranks)
                k = diagnose_ranks(job->diagnoser, ranks, n, "deadline", on_deadline_diagnosed, job);
        if (k >= 0)
                return;
        /* Then at least what /proc says, and on at once. */
        log_warning_errno(k, "cannot diagnose the ranks");
        for (int i = 0; i < job->run.nproc; i++) {
                struct rank *r = &job->run.ranks[i];

                if (rank_state_is_alive(r->state))
                        rank_mark_stuck(&r->diag_state, r->diag_wchan, sizeof(r->diag_wchan), r->pid);
        }
        job_post(job, JOB_EVENT_DIAGNOSED, 0);
}

/* Deadline-expired: the cause is recorded, every rank diagnosed; the teardown follows on `diagnosed`. */
static void action_diagnose(struct job *job) {
        job->run.deadline = job->run.deadline_pending;
        job->run.deadline_pending = (struct deadline_cause) {};
        log_notice("deadline passed (--%s): %s; diagnosing every rank, then stopping them",
                   deadline_kind_name(job->run.deadline.kind), job->run.deadline.message);
        job_diagnose_all(job, job->run.deadline.message);
}

/* ------------------------------------------------------------ a rank's end */

static void rank_read_error_file(struct rank *r) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        int k;

        k = read_file_bounded(AT_FDCWD, r->error_file_path, ERROR_FILE_MAX, &text, &size);
        if (k == -ENOENT)
                return;
        if (k < 0) {
                log_warning_errno(k, "rank %d: cannot read its error file %s", r->index, r->error_file_path);
                return;
        }
        if (size == 0)
                return;         /* made by rank_make_error_file(), never written */
        k = json_parse(text, size, &r->error_file);
        if (k < 0) {
                log_warning("rank %d: its error file %s is not valid JSON; reported as text", r->index,
                            r->error_file_path);
                text[MIN(size, (size_t) 4096)] = 0;
                r->error_file_raw = TAKE_PTR(text);
        }
}

static bool rank_failed(const struct rank *r) {
        return (r->state == RANK_EXITED && r->exit_code != 0) || r->state == RANK_SIGNALLED;
}

static bool rank_gets_stdin(const struct job *job, const struct rank *r) {
        return job->setup.stdin_fd >= 0 &&
               (job->run.options->stdin_mode == STDIN_ALL ||
                (job->run.options->stdin_mode == STDIN_RANK0 && job->run.rank_offset + r->index == 0));
}

/* The terminal back to ringmaster's own process group (SIGTTOU is ignored: it may be in the background). */
static void foreground_release(struct job *job) {
        if (job->setup.foreground && tcsetpgrp(job->setup.tty_fd, getpgrp()) < 0)
                log_debug("cannot take the terminal back: %s", strerror(errno));
}

/*
 * The foreground rank stopped (Ctrl-Z, SIGTTIN): as a shell's job would, the
 * whole of it stops, ringmaster too, for the shell above to resume.  As a
 * container's init nobody above could: the rank is continued.
 */
static void foreground_stopped(struct job *job, struct rank *r, int sig) {
        char name[16];

        foreground_release(job);
        if (job->run.init) {
                log_notice("rank %d was stopped by %s; continuing it (as a container's init, nobody could resume "
                           "it)", r->index, signal_name(sig, name, sizeof(name)));
        } else {
                log_info("rank %d was stopped by %s: stopping ringmaster too", r->index,
                         signal_name(sig, name, sizeof(name)));
                (void) kill(getpid(), SIGSTOP);
                /* Resumed (fg): the terminal and the rank, as they were. */
        }
        if (tcsetpgrp(job->setup.tty_fd, r->pid) < 0)
                log_debug("cannot give the terminal back to rank %d: %s", r->index, strerror(errno));
        (void) killpg(r->pid, SIGCONT);
}

static int on_rank_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        struct rank_child *c = userdata;
        struct job *job = c->job;
        struct rank *r = &job->run.ranks[c->index];
        char name[16];

        if (si->si_code == CLD_STOPPED || si->si_code == CLD_TRAPPED || si->si_code == CLD_CONTINUED) {
                if (job->setup.foreground && si->si_code == CLD_STOPPED)
                        foreground_stopped(job, r, si->si_status);
                /* A child source is one-shot: watch for the exit again. */
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
                return 0;
        }
        foreground_release(job);
        /* Workers that died first (the engine ends because one did): theirs is the first failure. */
        job_workers_poll_exits(job->workers);
        r->ended_usec = now_usec();
        /* Its pid may be reused once reaped: the watcher forgets its session (its leftovers carry the run id). */
        contain_rank_ended(job->setup.contain, r->pid);
        /* What it wrote just before dying is in its pipes: take it before judging. */
        for (int k = 0; k < _STREAM_KIND_MAX; k++)
                if (r->streams_set_up)
                        stream_drain(&r->streams[k]);
        /* And what it said: while it still counts as a live rank, its datagrams are its own. */
        notify_server_drain(job->notify);

        if (si->si_code == CLD_EXITED) {
                r->exit_code = si->si_status;
                rank_dispatch(r, RANK_EVENT_EXITED, 0);
                log_info("rank %d (pid %d) exited with status %d after %.3f s", r->index, (int) r->pid,
                         r->exit_code, secs(r->ended_usec - r->started_usec));
        } else {
                r->exit_signal = si->si_status;
                r->core_dumped = si->si_code == CLD_DUMPED;
                rank_dispatch(r, RANK_EVENT_SIGNALLED, 0);
                log_info("rank %d (pid %d) was killed by %s%s after %.3f s", r->index, (int) r->pid,
                         signal_name(r->exit_signal, name, sizeof(name)), r->core_dumped ? " (core dumped)" : "",
                         secs(r->ended_usec - r->started_usec));
        }
        rank_read_error_file(r);
        job_segment_mark_dead(job, r->pid);

        if (rank_failed(r))
                job_post(job, JOB_EVENT_RANK_FAILED, r->index);
        /* Its children were re-parented to us before this event. */
        job_scan_orphans(job, r->pid);
        job_run_queue(job);
        return 0;
}

/* ------------------------------------------------------------ spawning */

static int open_log_file(struct job *job, int rank, const char *ext) {
        char path[4096];
        int fd;

        snprintf(path, sizeof(path), "%s/rank-%d.%s", job->run.log_dir, rank, ext);
        /* Never through a symlink (setup_log_dir made or checked the folder). */
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0666);
        if (fd < 0)
                return log_error_errno(-errno, "cannot open the log file %s", path);
        if (job->run.restart_count > 0) {
                char marker[128];
                int n = snprintf(marker, sizeof(marker),
                                 "==== ringmaster: restart %d (TORCHELASTIC_RESTART_COUNT=%d) ====\n",
                                 job->run.restart_count, job->run.restart_count);
                (void) !write(fd, marker, (size_t) n);
        }
        return fd;
}

/*
 * The rank's TORCHELASTIC_ERROR_FILE: made here, empty, writable by all, at
 * a name nobody else can guess (the run directory is 0711: others may pass
 * through it, not list it), so that a rank that drops privileges can still
 * write it.  Empty at the end: the rank wrote none.
 */
static int rank_make_error_file(struct job *job, struct rank *r) {
        _cleanup_close_ int fd = -EBADF;
        char token[17];
        int k;

        k = random_id(token, 16);
        if (k < 0)
                return k;
        free(r->error_file_path);
        r->error_file_path = NULL;
        if (asprintf(&r->error_file_path, "%s/rank-%d-%s.error.json", job->run.run_dir->path, r->index, token) < 0)
                return -ENOMEM;
        fd = open(r->error_file_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0 || fchmod(fd, 0666) < 0)
                return -errno;
        return 0;
}

static int rank_spawn(struct job *job, struct rank *r) {
        const struct run_options *o = job->run.options;
        _cleanup_close_ int out_r = -EBADF, out_w = -EBADF, err_r = -EBADF, err_w = -EBADF;
        _cleanup_close_ int log_out = -EBADF, log_err = -EBADF;
        _cleanup_strv_free_ char **env = NULL;
        struct spawn_result result;
        struct worker_env w;
        int fds[2], k;

        k = rank_make_error_file(job, r);
        if (k < 0)
                return log_error_errno(k, "rank %d: cannot create its error file in %s", r->index,
                                       job->run.run_dir->path);

        r->cuda_visible_devices = job->setup.cuda_per_rank ? job->setup.cuda_per_rank[r->index] : job->setup.cuda_all;
        w = (struct worker_env) {
                .run_id = job->run.run_id,
                .run_dir = job->run.run_dir->path,
                .shm_name = job->run.segment_name,
                .master_addr = job->run.master_addr ? job->run.master_addr : o->master_addr,
                .master_port = job->run.master_port,
                .role = o->role,
                .nproc = job->run.nproc,
                .rank = r->index,
                .nnodes = job->run.nnodes > 0 ? job->run.nnodes : 1,
                .node_rank = job->run.node_rank,
                .restart_count = job->run.restart_count,
                .max_restarts = o->max_restarts,
                .error_file = r->error_file_path,
                .cuda_visible_devices = r->cuda_visible_devices,
                .notify_socket = notify_server_address(job->notify),
                .worker_capture = o->worker_capture,
        };
        diagnoser_worker_env(job->diagnoser, r->index, &w);
        k = worker_environ(environ, &w, &env);
        if (k < 0)
                return log_error_errno(k, "cannot build rank %d's environment", r->index);

        /* The terminal's foreground job writes to ringmaster's own stdout and stderr: nothing to capture. */
        if (!job->setup.foreground) {
                if (pipe2(fds, O_CLOEXEC) < 0)
                        return log_error_errno(-errno, "cannot create a pipe for rank %d", r->index);
                out_r = fds[0];
                out_w = fds[1];
                if (pipe2(fds, O_CLOEXEC) < 0)
                        return log_error_errno(-errno, "cannot create a pipe for rank %d", r->index);
                err_r = fds[0];
                err_w = fds[1];
                /* Room for bursts while the supervisor is busy elsewhere; the default 64 KiB otherwise. */
                (void) fcntl(out_r, F_SETPIPE_SZ, 1 << 20);
                (void) fcntl(err_r, F_SETPIPE_SZ, 1 << 20);
                if (fcntl(out_r, F_SETFL, O_NONBLOCK) < 0 || fcntl(err_r, F_SETFL, O_NONBLOCK) < 0)
                        return log_error_errno(-errno, "cannot make rank %d's pipes non-blocking", r->index);

                if (job->run.log_dir) {
                        log_out = open_log_file(job, r->index, "out");
                        if (log_out < 0)
                                return log_out;
                        log_err = open_log_file(job, r->index, "err");
                        if (log_err < 0)
                                return log_err;
                }
        }

        r->started_usec = now_usec();
        k = spawn_process(&(struct spawn_request) {
                                  .argv = o->command,
                                  .exec_paths = job->setup.exec_paths,
                                  .envp = env,
                                  .stdin_fd = rank_gets_stdin(job, r) ? job->setup.stdin_fd : job->dev_null_fd,
                                  .stdout_fd = job->setup.foreground ? STDOUT_FILENO : out_w,
                                  .stderr_fd = job->setup.foreground ? STDERR_FILENO : err_w,
                                  .sigmask = &job->setup.child_sigmask,
                                  .ignored = &job->setup.child_ignored,
                                  .foreground = job->setup.foreground,
                                  .tty_fd = job->setup.tty_fd,
                                  .nofile = job->setup.restore_nofile ? &job->setup.child_nofile : NULL,
                                  /* A stack tool of ours may attach under Yama's ptrace_scope=1. */
                                  .ptracer = diagnoser_wants_ptrace(job->diagnoser) ? getpid() : 0,
                                  .contain = job->setup.contain,
                          },
                          &result);
        if (k < 0)
                return log_error_errno(k, "cannot fork rank %d", r->index);

        r->pid = result.pid;
        rank_dispatch(r, RANK_EVENT_SPAWNED, 0);
        contain_rank_started(job->setup.contain, r->pid);

        /* Watch it at once: it may be exiting already (a failed exec).  The foreground job's stops too. */
        k = sd_event_add_child(job->event, &job->children[r->index].source, r->pid,
                               WEXITED | (job->setup.foreground ? WSTOPPED : 0), on_rank_exit, &job->children[r->index]);
        if (k < 0) {
                /* Cannot happen with a fresh child of ours; never leave it unwatched. */
                (void) kill(r->pid, SIGKILL);
                return log_error_errno(k, "cannot watch rank %d (pid %d)", r->index, (int) r->pid);
        }

        k = 0;
        if (!job->setup.foreground) {
                out_w = safe_close(out_w);
                err_w = safe_close(err_w);
                k = stream_init(&r->streams[STREAM_STDOUT], job->event, SD_EVENT_PRIORITY_NORMAL, &job->setup.capture,
                                STREAM_STDOUT, job->run.rank_offset + r->index, r->index, r->pid, TAKE_FD(out_r),
                                TAKE_FD(log_out));
                if (k >= 0)
                        k = stream_init(&r->streams[STREAM_STDERR], job->event, SD_EVENT_PRIORITY_NORMAL,
                                        &job->setup.capture, STREAM_STDERR, job->run.rank_offset + r->index, r->index,
                                        r->pid, TAKE_FD(err_r), TAKE_FD(log_err));
                r->streams_set_up = true;
        }
        if (k < 0)
                return log_error_errno(k, "cannot capture rank %d's output", r->index);

        if (result.failed_stage == SPAWN_STAGE_NONE) {
                rank_dispatch(r, RANK_EVENT_EXEC_OK, 0);
                log_info("rank %d: pid %d", r->index, (int) r->pid);
        } else {
                r->exec_stage = result.failed_stage;
                r->exec_error = result.error;
                rank_dispatch(r, RANK_EVENT_EXEC_FAILED, 0);
                if (result.failed_stage == SPAWN_STAGE_EXEC) {
                        if (!job->exec_error_logged)
                                log_error("cannot execute %s: %s%s", o->command[0], strerror(result.error),
                                          result.error == ENOENT && !strchr(o->command[0], '/')
                                                  ? " (not found in PATH)" : "");
                        job->exec_error_logged = true;
                } else
                        log_error("rank %d: setting up the child failed at %s: %s", r->index,
                                  spawn_stage_name(result.failed_stage), strerror(result.error));
        }
        return 0;
}

/* Frees what a rank of an attempt holds: its child source, streams, phase, notify state, diagnosis, error file. */
static void rank_release(struct job *job, struct rank *r) {
        job->children[r->index].source = sd_event_source_disable_unref(job->children[r->index].source);
        for (int s = 0; s < _STREAM_KIND_MAX; s++)
                if (r->streams_set_up)
                        stream_free(&r->streams[s]);
        free(r->phase);
        rank_notify_reset(&r->notify);
        diagnosis_free(r->diagnosis);
        json_value_free(r->error_file);
        free(r->error_file_raw);
        free(r->error_file_path);
}
static int job_start_attempt(struct job *job) {
        const struct run_options *o = job->run.options;
        int k;

        job->run.attempt_start_usec = now_usec();
        job->run.first_failure = -1;
        job_workers_release(job->workers);
        job->run.teardown_signal = 0;
        job->run.teardown_usec = 0;
        job->ranks_ended_posted = false;
        for (int i = 0; i < job->run.nproc; i++) {
                struct rank *r = &job->run.ranks[i];

                /* The previous attempt's (its child sources fired; sd-event reaped them). */
                rank_release(job, r);
                *r = (struct rank) { .index = i, .state = RANK_IDLE, .notify.milestone = -1 };
        }
        job_phases_reset(&job->run.phases);
        deadline_cause_clear(&job->run.deadline_pending);
        deadline_cause_clear(&job->run.deadline);
        notify_server_forget_senders(job->notify);

        if (o->shm) {
                struct shmring_info info;

                k = run_segment_create(o, job->run.nproc, job->run.run_id, (uint64_t) job->run.restart_count,
                                       &job->segment, &job->run.segment_size);
                if (k < 0)
                        return k;
                free(job->run.segment_name);
                job->run.segment_name = strdup(shmring_name(job->segment));
                if (!job->run.segment_name)
                        return -ENOMEM;
                if (shmring_get_info(job->segment, &info) == 0)
                        job->run.segment_size = info.size;
                log_info("shared-memory segment %s (%" PRIu64 " bytes)", job->run.segment_name, job->run.segment_size);
        }

        if (job->run.fixed_master_port > 0)
                job->run.master_port = job->run.fixed_master_port;
        else if (o->master_port > 0)
                job->run.master_port = o->master_port;
        else {
                k = find_free_port(&job->run.master_port);
                if (k < 0)
                        return log_error_errno(k, "cannot find a free TCP port for MASTER_PORT (give --master-port)");
        }

        for (int i = 0; i < job->run.nproc; i++) {
                k = rank_spawn(job, &job->run.ranks[i]);
                if (k < 0)
                        return k;
        }
        return 0;
}

/* ------------------------------------------------------------ the job table's actions */

static void job_signal_all(struct job *job, int sig) {
        for (int i = 0; i < job->run.nproc; i++)
                rank_dispatch(&job->run.ranks[i], sig == SIGKILL ? RANK_EVENT_KILL : RANK_EVENT_STOP, sig);
        for (size_t i = 0; i < job->run.n_orphans; i++)
                orphan_signal(job->run.orphans[i], sig);
}

static void action_teardown(struct job *job, enum job_event event, int arg) {
        char name[16];

        job->run.teardown_usec = now_usec();
        job->run.teardown_signal = SIGTERM;
        switch (event) {
        case JOB_EVENT_RANK_FAILED: {
                struct rank *r = &job->run.ranks[arg];

                job->run.first_failure = arg;
                if (r->state == RANK_SIGNALLED)
                        log_notice("rank %d (pid %d) was killed by %s: stopping the other ranks", r->index,
                                   (int) r->pid, signal_name(r->exit_signal, name, sizeof(name)));
                else
                        log_notice("rank %d (pid %d) exited with status %d: stopping the other ranks", r->index,
                                   (int) r->pid, r->exit_code);
                break;
        }
        case JOB_EVENT_STOP_SIGNAL:
                job->run.stop_signal = arg;
                job->run.teardown_signal = arg;
                log_notice("received %s: stopping the ranks", signal_name(arg, name, sizeof(name)));
                break;
        case JOB_EVENT_INTERNAL_ERROR:
                if (job->run.internal_error == 0)
                        job->run.internal_error = arg < 0 ? arg : -EIO;
                break;
        case JOB_EVENT_RANKS_ENDED:
                log_info("every rank ended; stopping %zu leftover process(es)", orphans_alive(job));
                break;
        case JOB_EVENT_DIAGNOSED:
                /* The deadline's teardown: its cause and the diagnosis are recorded already. */
                break;
        case JOB_EVENT_NODE_FAILED:
                /* run-nodes.c recorded it (run.node_failure) and said what happened. */
                log_notice("the job failed on node %d: stopping this node's ranks", job->run.node_failure.node);
                break;
        case JOB_EVENT_WORKER_FAILED: {
                const struct worker *w = job->run.workers.workers[arg];

                /* Its rank is the first failure, through the worker (the report names the worker). */
                job->run.first_failure_worker = arg;
                job->run.first_failure = w->rank;
                log_notice("stopping the ranks: a worker of rank %d failed", w->rank);
                break;
        }
        default:
                break;
        }
        if (processes_pending(job) == 0)
                return;
        job_signal_all(job, job->run.teardown_signal);
        if (job->run.options->grace_usec == 0)
                job_post(job, JOB_EVENT_GRACE_EXPIRED, 0);
        else if (job_arm_timer(job, job->run.options->grace_usec, JOB_EVENT_GRACE_EXPIRED) < 0)
                job_post(job, JOB_EVENT_GRACE_EXPIRED, 0);
}

static void action_kill_all(struct job *job) {
        size_t n = processes_pending(job);

        if (n > 0)
                log_notice("%zu process(es) still running after the %.1f s grace: sending SIGKILL", n,
                           secs(job->run.options->grace_usec));
        job_signal_all(job, SIGKILL);
        if (job_arm_timer(job, job->run.options->kill_timeout_usec, JOB_EVENT_KILL_EXPIRED) < 0)
                job_post(job, JOB_EVENT_KILL_EXPIRED, 0);
}

static void action_give_up(struct job *job) {
        for (int i = 0; i < job->run.nproc; i++) {
                struct rank *r = &job->run.ranks[i];

                if (!rank_state_is_alive(r->state))
                        continue;
                rank_dispatch(r, RANK_EVENT_GIVE_UP, 0);
                log_error("rank %d (pid %d) is still there %.1f s after SIGKILL (state %c, in %s): cannot reap it",
                          r->index, (int) r->pid, secs(job->run.options->kill_timeout_usec), r->stuck_state,
                          r->stuck_wchan);
        }
        for (size_t i = 0; i < job->run.n_orphans; i++) {
                struct orphan *o = job->run.orphans[i];

                if (o->ended)
                        continue;
                rank_mark_stuck(&o->stuck_state, o->stuck_wchan, sizeof(o->stuck_wchan), o->pid);
                log_error("process %d (%s) is still there %.1f s after SIGKILL (state %c, in %s): cannot reap it",
                          (int) o->pid, o->comm, secs(job->run.options->kill_timeout_usec), o->stuck_state,
                          o->stuck_wchan);
        }
        job->run.gave_up = true;
}

static void attempt_record(struct job *job) {
        struct attempt *a, *l;

        l = realloc(job->run.attempts, (job->run.n_attempts + 1) * sizeof(*l));
        if (!l)
                return;
        job->run.attempts = l;
        a = &l[job->run.n_attempts++];
        *a = (struct attempt) {
                .restart_count = job->run.restart_count,
                .started_usec = job->run.attempt_start_usec,
                .ended_usec = now_usec(),
                .failed_rank = job->run.first_failure,
                .deadline_kind = job->run.deadline.kind,
                .deadline_message = job->run.deadline.message ? strdup(job->run.deadline.message) : NULL,
        };
        if (job->run.first_failure >= 0) {
                struct rank *r = &job->run.ranks[job->run.first_failure];
                const struct json_value *m;

                a->failed_pid = r->pid;
                a->exit_code = r->exit_code;
                a->exit_signal = r->exit_signal;
                a->core_dumped = r->core_dumped;
                a->failed_usec = r->ended_usec;
                (void) tail_lines(&r->streams[STREAM_STDERR].tail, job->run.options->tail_lines, &a->stderr_tail);
                m = json_object_get(r->error_file, "message");
                if (m && m->type == JSON_OBJECT)
                        m = json_object_get(m, "message");
                if (m && m->type == JSON_STRING)
                        a->error_message = strdup(m->text);
        }
}

/*
 * Segments a worker truncated: closing one would touch it, so it is kept,
 * mapped and untouched, until ringmaster exits (and stays reachable, which
 * is what LeakSanitizer asks of memory kept on purpose).
 */
static struct shmring **abandoned_segments;
static size_t n_abandoned_segments;

static void job_abandon_segment(struct shmring *s) {
        struct shmring **l = realloc(abandoned_segments, (n_abandoned_segments + 1) * sizeof(*l));

        if (!l)
                return;         /* the kernel unmaps it at exit anyway */
        abandoned_segments = l;
        abandoned_segments[n_abandoned_segments++] = s;
}

static void job_close_segment(struct job *job) {
        struct segment_touch t = { job->segment, 0 };

        if (!job->segment)
                return;
        (void) shmring_unlink(job->segment);     /* by name: touches no shared memory */
        /* Closing unregisters ringmaster as a peer (a write to the segment): guarded too. */
        if (job->segment_broken || memguard_run(touch_close, &t) == -EFAULT) {
                job_segment_broken(job);
                job_abandon_segment(job->segment);
        }
        job->segment = NULL;
        job->segment_broken = false;
}


/* Ends the attempt; returns the next state: BACKOFF for a restart, else DONE. */
static enum job_state action_finish(struct job *job) {
        const struct run_options *o = job->run.options;

        job->timer = sd_event_source_disable_unref(job->timer);
        (void) sd_event_source_set_enabled(job->deadline_timer, SD_EVENT_OFF);
        /* The last datagrams (STOPPING=1, a status) of ranks that are gone now. */
        notify_server_drain(job->notify);
        job_workers_finish(job->workers);
        for (int i = 0; i < job->run.nproc; i++)
                if (job->run.ranks[i].streams_set_up)
                        for (int s = 0; s < _STREAM_KIND_MAX; s++)
                                stream_finish(&job->run.ranks[i].streams[s]);
        attempt_record(job);
        job_close_segment(job);

        if (run_will_restart(&job->run)) {
                uint64_t delay = o->restart_delay_usec;

                for (int i = 0; i < job->run.restart_count && delay < o->restart_delay_max_usec; i++)
                        delay *= 2;
                delay = MIN(delay, o->restart_delay_max_usec);
                log_notice("restarting the job in %.1f s (restart %d of %d)", secs(delay),
                           job->run.restart_count + 1, o->max_restarts);
                if (job_arm_timer(job, delay, JOB_EVENT_BACKOFF_EXPIRED) >= 0)
                        return JOB_BACKOFF;
                job->run.internal_error = -EIO;
        }
        job->run.end_usec = now_usec();
        (void) sd_event_exit(job->event, 0);
        return JOB_DONE;
}

static void action_restart(struct job *job) {
        int k;

        job->run.restart_count++;
        k = job_start_attempt(job);
        if (k < 0)
                job_post(job, JOB_EVENT_INTERNAL_ERROR, k);
        else
                job_update_deadlines(job);
}

static void job_dispatch(struct job *job, enum job_event event, int arg) {
        struct job_transition t = job_transition(job->run.state, event);
        enum job_state old = job->run.state, next = t.next;

        /* The state changes first: actions post events and spawn processes under the new one. */
        job->run.state = next;
        switch (t.action) {
        case JOB_ACTION_NONE:
                if (event == JOB_EVENT_INTERNAL_ERROR && job->run.internal_error == 0)
                        job->run.internal_error = arg < 0 ? arg : -EIO;
                break;
        case JOB_ACTION_TEARDOWN:
                action_teardown(job, event, arg);
                break;
        case JOB_ACTION_DIAGNOSE:
                action_diagnose(job);
                break;
        case JOB_ACTION_FORWARD: {
                char name[16];

                if (job->run.stop_signal == 0)
                        job->run.stop_signal = arg;
                log_notice("received %s: forwarding it to the ranks", signal_name(arg, name, sizeof(name)));
                job_signal_all(job, arg);
                break;
        }
        case JOB_ACTION_KILL_ALL:
                action_kill_all(job);
                break;
        case JOB_ACTION_GIVE_UP:
                action_give_up(job);
                job->run.state = next = action_finish(job);
                break;
        case JOB_ACTION_FINISH:
                job->run.state = next = action_finish(job);
                break;
        case JOB_ACTION_RESTART:
                action_restart(job);
                break;
        case JOB_ACTION_EXIT:
                if (event == JOB_EVENT_STOP_SIGNAL) {
                        char name[16];

                        job->run.stop_signal = arg;
                        log_notice("received %s: not restarting", signal_name(arg, name, sizeof(name)));
                } else if (job->run.internal_error == 0)
                        job->run.internal_error = arg < 0 ? arg : -EIO;
                job->timer = sd_event_source_disable_unref(job->timer);
                job->run.end_usec = now_usec();
                (void) sd_event_exit(job->event, 0);
                break;
        }
        if (old != next)
                log_debug("job: %s --%s--> %s", job_state_name(old), job_event_name(event), job_state_name(next));
}

static void job_post(struct job *job, enum job_event event, int arg) {
        if (job->queue_len == ELEMENTSOF(job->queue)) {
                log_error("internal error: job event queue full, dropping %s", job_event_name(event));
                return;
        }
        job->queue[job->queue_len].event = event;
        job->queue[job->queue_len].arg = arg;
        job->queue_len++;
}

/* Runs posted events, then the liveness checks, until nothing changes. */
static void job_run_events(struct job *job) {
        for (;;) {
                if (job->queue_len > 0) {
                        enum job_event event = job->queue[0].event;
                        int arg = job->queue[0].arg;

                        memmove(job->queue, job->queue + 1, (job->queue_len - 1) * sizeof(job->queue[0]));
                        job->queue_len--;
                        job_dispatch(job, event, arg);
                        continue;
                }
                if (job->run.state != JOB_RUNNING && job->run.state != JOB_DIAGNOSING &&
                    job->run.state != JOB_STOPPING &&
                    job->run.state != JOB_KILLING)
                        return;
                if (processes_pending(job) == 0)
                        job_post(job, JOB_EVENT_ALL_REAPED, 0);
                else if (ranks_alive(job) == 0 && !job->ranks_ended_posted) {
                        job->ranks_ended_posted = true;
                        job_post(job, JOB_EVENT_RANKS_ENDED, 0);
                } else
                        return;
        }
}

/* The events, then whoever watches the job (sd_notify, the live status). */
static void job_run_queue(struct job *job) {
        job_run_events(job);
        if (job->setup.changed)
                job->setup.changed(&job->run, job->setup.changed_userdata);
}

/* ------------------------------------------------------------ signals */

void job_node_failed(struct job *job) {
        job_post(job, JOB_EVENT_NODE_FAILED, 0);
        job_run_queue(job);
}

void job_forward_signal(struct job *job, int sig) {
        char name[16];
        size_t n = 0;

        for (int i = 0; job->run.ranks && i < job->run.nproc; i++) {
                struct rank *r = &job->run.ranks[i];

                if (rank_state_is_alive(r->state) && r->state != RANK_UNREAPABLE) {
                        rank_signal_group(r, sig);
                        n++;
                }
        }
        log_info("received %s: forwarded to %zu rank%s", signal_name(sig, name, sizeof(name)), n, n == 1 ? "" : "s");
}

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct job *job = userdata;

        job_post(job, JOB_EVENT_STOP_SIGNAL, (int) si->ssi_signo);
        job_run_queue(job);
        return 0;
}

/* ------------------------------------------------------------ the job */

/* ------------------------------------------------------------ spawned workers (job-workers.h) */

static void workers_drain_notify(void *userdata) {
        struct job *job = userdata;

        notify_server_drain(job->notify);
}

static void workers_failed(int worker_id, void *userdata) {
        job_post(userdata, JOB_EVENT_WORKER_FAILED, worker_id);
}

static void workers_changed(void *userdata) {
        job_run_queue(userdata);
}

int job_new(sd_event *event, const struct run_options *options, struct job **ret) {
        struct job *job;

        job = calloc(1, sizeof(*job));
        if (!job)
                return -ENOMEM;
        job->event = sd_event_ref(event);
        job->run.options = options;
        job->dev_null_fd = -EBADF;
        job->setup.stdin_fd = -EBADF;
        job->setup.tty_fd = -EBADF;
        job->run.first_failure = -1;
        job->run.first_failure_worker = -1;
        job->run.phases.first_ready_rank = -1;
        job->run.start_usec = now_usec();
        job->run.start_realtime_usec = wallclock_usec();
        if (gethostname(job->run.host, sizeof(job->run.host) - 1) < 0)
                snprintf(job->run.host, sizeof(job->run.host), "localhost");
        *ret = job;
        return 0;
}

int job_start(struct job *job) {
        int k;

        assert(job->run.nproc > 0);
        job->run.ranks = calloc((size_t) job->run.nproc, sizeof(struct rank));
        job->children = calloc((size_t) job->run.nproc, sizeof(struct rank_child));
        if (!job->run.ranks || !job->children)
                return -ENOMEM;
        for (int i = 0; i < job->run.nproc; i++) {
                job->run.ranks[i] = (struct rank) { .index = i, .state = RANK_IDLE, .notify.milestone = -1 };
                job->children[i] = (struct rank_child) { .job = job, .index = i };
        }

        k = notify_server_new(job->event, job->run.run_dir->path, job->run.run_id,
                              &(struct notify_callbacks) {
                                      .rank_of_pid = notify_rank_of_pid,
                                      .message = on_notify_message,
                                      .worker = on_notify_worker,
                                      .drained = on_notify_drained,
                              },
                              job, &job->notify);
        if (k < 0)
                return k;
        job->run.notify_socket = notify_server_address(job->notify);
        k = job_workers_new(&(struct job_workers_host) {
                                    .event = job->event,
                                    .run = &job->run,
                                    .capture = &job->setup.capture,
                                    .drain_notify = workers_drain_notify,
                                    .failed = workers_failed,
                                    .changed = workers_changed,
                                    .userdata = job,
                            },
                            &job->workers);
        if (k < 0)
                return k;
        job->run.notify_stats = notify_server_stats(job->notify);

        job->dev_null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (job->dev_null_fd < 0)
                return log_error_errno(-errno, "cannot open /dev/null");

        for (size_t i = 0; i < ELEMENTSOF(job_stop_signals); i++) {
                /* nohup: a stop signal ringmaster's parent ignored stays ignored (run.c did not block it). */
                if (sigismember(&job->setup.child_ignored, job_stop_signals[i]) == 1)
                        continue;
                k = sd_event_add_signal(job->event, &job->signal_sources[i], job_stop_signals[i], on_stop_signal, job);
                if (k < 0)
                        return log_error_errno(k, "cannot watch signal %d", job_stop_signals[i]);
        }
        k = sd_event_add_signal(job->event, &job->sigchld_source, SIGCHLD, on_sigchld, job);
        if (k < 0)
                return log_error_errno(k, "cannot watch SIGCHLD");
        /* Also watches SIGUSR2: diagnose every rank, keep running. */
        k = diagnoser_new(job->event, &job->run,
                          &(struct diagnoser_setup) {
                                  .exec_paths = job->setup.exec_paths,
                                  .dev_null_fd = job->dev_null_fd,
                                  .sigmask = &job->setup.child_sigmask,
                                  .nofile = job->setup.restore_nofile ? &job->setup.child_nofile : NULL,
                          },
                          &job->diagnoser);
        if (k < 0)
                return log_error_errno(k, "cannot set up the hang diagnosis");
        /*
         * Same priority as the rest, so that a flooding rank's pipe cannot
         * starve it; it never reaps, it only adds child sources for
         * processes that have none.
         */

        job->run.state = JOB_RUNNING;
        k = job_start_attempt(job);
        if (k < 0)
                job_post(job, JOB_EVENT_INTERNAL_ERROR, k);
        else
                job_update_deadlines(job);
        job_run_queue(job);
        return 0;
}



void job_cleanup(struct job *job) {
        if (!job)
                return;
        job_close_segment(job);
        job->run.run_dir = run_dir_remove(job->run.run_dir);
}

struct job *job_free(struct job *job) {
        if (!job)
                return NULL;
        job_cleanup(job);
        /* First: it may be watching the ranks' streams. */
        job->diagnoser = diagnoser_free(job->diagnoser);
        job->workers = job_workers_free(job->workers);
        for (int i = 0; job->run.ranks && job->children && i < job->run.nproc; i++)
                rank_release(job, &job->run.ranks[i]);
        free(job->run.ranks);
        free(job->children);
        job_phases_reset(&job->run.phases);
        deadline_cause_clear(&job->run.deadline_pending);
        deadline_cause_clear(&job->run.deadline);
        sd_event_source_disable_unref(job->deadline_timer);
        job->notify = notify_server_free(job->notify);
        for (size_t i = 0; i < job->run.n_orphans; i++) {
                struct orphan_watch *w = (struct orphan_watch *) job->run.orphans[i];

                sd_event_source_disable_unref(w->source);
                free(w);
        }
        free(job->run.orphans);
        for (size_t i = 0; i < job->run.n_attempts; i++) {
                free(job->run.attempts[i].error_message);
                free(job->run.attempts[i].deadline_message);
                strv_free(job->run.attempts[i].stderr_tail);
        }
        free(job->run.attempts);
        for (size_t i = 0; i < ELEMENTSOF(job->signal_sources); i++)
                sd_event_source_disable_unref(job->signal_sources[i]);
        sd_event_source_disable_unref(job->sigchld_source);
        sd_event_source_disable_unref(job->timer);
        safe_close(job->dev_null_fd);
        foreground_release(job);
        safe_close(job->setup.stdin_fd);
        free(job->run.segment_name);
        free(job->run.run_id);
        free(job->run.master_addr);
        free(job->run.node_failure.host);
        free(job->run.node_failure.cause);
        strv_free(job->setup.cuda_per_rank);
        free(job->setup.cuda_all);
        strv_free(job->setup.exec_paths);
        free(job->run.log_dir);
        sd_event_unref(job->event);
        free(job);
        return NULL;
}
