/* SPDX-License-Identifier: MIT */
/*
 * The JSON report (report.h, schema "ringmaster-report/1" in
 * docs/supervisor.md): every key of it is written here, from the run model.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "deadline.h"
#include "diagnose.h"
#include "json.h"
#include "log.h"
#include "notify.h"
#include "options.h"
#include "phase.h"
#include "proctree.h"
#include "report.h"
#include "run-model.h"
#include "rundir.h"
#include "safe-file.h"
#include "sink.h"
#include "stack.h"
#include "util.h"

/* A time of the run as seconds after its start; null for never. */
static void json_time(struct json_writer *w, const struct run_model *run, uint64_t t) {
        if (t && t != UINT64_MAX)
                json_double(w, secs_since(t, run->start_usec));
        else
                json_null(w);
}


static void json_signal(struct json_writer *w, int sig) {
        char name[16];

        if (sig > 0)
                json_string(w, signal_name(sig, name, sizeof(name)));
        else
                json_null(w);
}

static void json_tail(struct json_writer *w, const struct tail *t, size_t max_lines) {
        _cleanup_strv_free_ char **l = NULL;

        json_begin_array(w);
        if (tail_lines(t, max_lines, &l) >= 0)
                for (size_t i = 0; l[i]; i++)
                        json_string(w, l[i]);
        json_end_array(w);
}

static void json_stream(struct json_writer *w, const struct stream *s, size_t max_lines) {
        json_begin_object(w);
        json_key(w, "bytes");
        json_uint(w, s->stats.bytes);
        json_key(w, "lines");
        json_uint(w, s->stats.lines);
        json_key(w, "cut_lines");
        json_uint(w, s->stats.cut_lines);
        json_key(w, "dropped_lines");
        json_uint(w, s->stats.dropped_lines);
        json_key(w, "dropped_bytes");
        json_uint(w, s->stats.dropped_bytes);
        json_key(w, "unterminated");
        json_bool(w, s->stats.unterminated);
        json_key(w, "journal_errors");
        json_uint(w, s->stats.journal_errors);
        json_key(w, "tail");
        json_tail(w, &s->tail, max_lines);
        json_end_object(w);
}

/* ------------------------------------------------------------ deadlines */

static void json_int_list(struct json_writer *w, const int *l, size_t n) {
        json_begin_array(w);
        for (size_t i = 0; i < n; i++)
                json_int(w, l[i]);
        json_end_array(w);
}

static void json_deadline(struct json_writer *w, const struct run_model *run) {
        const struct deadline_cause *c = &run->deadline;

        if (c->kind == DEADLINE_NONE) {
                json_null(w);
                return;
        }
        json_begin_object(w);
        json_key(w, "kind");
        json_string(w, deadline_kind_name(c->kind));
        json_key(w, "trigger");
        json_bool(w, c->watchdog_trigger);
        json_key(w, "limit_s");
        if (c->watchdog_trigger)
                json_null(w);
        else
                json_double(w, secs(c->limit_usec));
        json_key(w, "ranks");
        json_int_list(w, c->ranks, c->n_ranks);
        json_key(w, "phase");
        json_string(w, c->phase);
        json_key(w, "target");
        json_string(w, c->kind != DEADLINE_STRAGGLER ? NULL : c->target_ready ? "ready" : "phase");
        json_key(w, "target_phase");
        json_string(w, c->target_phase);
        json_key(w, "reached_ranks");
        json_int_list(w, c->reached, c->n_reached);
        json_key(w, "reached_s");
        json_time(w, run, c->reached_usec);
        json_key(w, "due_s");
        json_time(w, run, c->due_usec);
        json_key(w, "time_s");
        json_time(w, run, c->fired_usec);
        json_key(w, "attempt_time_s");
        json_double(w, secs_since(c->fired_usec, run->attempt_start_usec));
        json_key(w, "message");
        json_string(w, c->message);
        json_key(w, "workers");
        json_int_list(w, c->workers, c->n_workers);
        json_end_object(w);
}

static void json_limit(struct json_writer *w, uint64_t usec) {
        if (usec)
                json_double(w, secs(usec));
        else
                json_null(w);
}

static void json_deadline_limits(struct json_writer *w, const struct run_options *o) {
        json_begin_object(w);
        json_key(w, "ready_timeout_s");
        json_limit(w, o->ready_timeout_usec);
        json_key(w, "straggler_timeout_s");
        json_limit(w, o->straggler_timeout_usec);
        json_key(w, "watchdog_s");
        json_limit(w, o->watchdog_usec);
        json_key(w, "phase_timeouts");
        json_begin_object(w);
        for (size_t i = 0; i < o->n_phase_timeouts; i++) {
                bool later = false;

                /* A name given twice: the last one counts, and is written once. */
                for (size_t j = i + 1; j < o->n_phase_timeouts; j++)
                        if (strcmp(o->phase_timeouts[j].name, o->phase_timeouts[i].name) == 0)
                                later = true;
                if (later)
                        continue;
                json_key(w, o->phase_timeouts[i].name);
                json_double(w, secs(o->phase_timeouts[i].usec));
        }
        json_end_object(w);
        json_end_object(w);
}

/* ------------------------------------------------------------ phases */


static void json_phase_rank_fields(struct json_writer *w, const struct run_model *run, const struct rank *r) {
        const struct rank_notify *n = &r->notify;

        json_key(w, "phase");
        json_string(w, r->phase);
        json_key(w, "phase_started_s");
        json_time(w, run, r->phase ? n->phase_start_usec : 0);
        json_key(w, "phase_ended_s");
        json_time(w, run, r->phase ? n->phase_end_usec : 0);
        json_key(w, "phases");
        json_begin_array(w);
        for (size_t i = 0; i < n->n_history; i++) {
                json_begin_object(w);
                json_key(w, "name");
                json_string(w, n->history[i].name);
                json_key(w, "started_s");
                json_time(w, run, n->history[i].start_usec);
                json_key(w, "ended_s");
                json_time(w, run, n->history[i].end_usec);
                json_end_object(w);
        }
        json_end_array(w);
        json_key(w, "phases_dropped");
        json_uint(w, n->history_dropped);
        json_key(w, "progress");
        if (n->has_progress) {
                json_begin_object(w);
                json_key(w, "done");
                json_uint(w, n->progress_done);
                json_key(w, "total");
                json_uint(w, n->progress_total);
                json_key(w, "time_s");
                json_time(w, run, n->progress_usec);
                json_end_object(w);
        } else
                json_null(w);
        json_key(w, "status");
        json_string(w, n->status);
        json_key(w, "ready");
        json_bool(w, r->ready);
        json_key(w, "ready_s");
        json_time(w, run, r->ready ? n->ready_usec : 0);
        json_key(w, "last_watchdog_s");
        json_time(w, run, n->last_watchdog_usec);
        json_key(w, "watchdog_trigger_s");
        json_time(w, run, n->watchdog_trigger_usec);
        json_key(w, "stopping");
        json_bool(w, n->stopping);
        json_key(w, "errno");
        if (n->has_errno)
                json_int(w, n->errno_value);
        else
                json_null(w);
        json_key(w, "extended_until_s");
        json_time(w, run, n->extend_until_usec == UINT64_MAX ? 0 : n->extend_until_usec);
        json_key(w, "notify_datagrams");
        json_uint(w, n->datagrams);
}

static void json_phase_job(struct json_writer *w, const struct run_model *run) {
        const struct notify_stats *st = run->notify_stats;
        const struct job_phases *p = &run->phases;

        json_key(w, "all_ready_s");
        json_time(w, run, p->all_ready_usec);
        json_key(w, "milestones");
        json_begin_array(w);
        for (size_t i = 0; i < p->n_milestones; i++) {
                json_begin_object(w);
                json_key(w, "phase");
                json_string(w, p->milestones[i].name);
                json_key(w, "first_rank");
                json_int(w, p->milestones[i].first_rank);
                json_key(w, "first_s");
                json_time(w, run, p->milestones[i].first_usec);
                json_end_object(w);
        }
        json_end_array(w);
        json_key(w, "notify");
        if (!st) {
                json_null(w);
                return;
        }
        json_begin_object(w);
        json_key(w, "socket");
        json_string(w, run->notify_socket);
        json_key(w, "received");
        json_uint(w, st->received);
        json_key(w, "accepted");
        json_uint(w, st->accepted);
        json_key(w, "barriers");
        json_uint(w, st->barriers);
        json_key(w, "dropped");
        json_begin_object(w);
        for (int d = 0; d < _NOTIFY_DROP_MAX; d++) {
                json_key(w, notify_drop_name(d));
                json_uint(w, st->dropped[d]);
        }
        json_end_object(w);
        json_end_object(w);
}

/* ------------------------------------------------------------ diagnoses */


static void json_strv(struct json_writer *w, char *const *l) {
        json_begin_array(w);
        for (size_t i = 0; l && l[i]; i++)
                json_string(w, l[i]);
        json_end_array(w);
}

static void json_state(struct json_writer *w, char state) {
        char s[2] = { state, 0 };

        json_string(w, s);
}

static void json_nonempty(struct json_writer *w, const char *s) {
        json_string(w, s && s[0] ? s : NULL);
}

static void json_threads(struct json_writer *w, const struct process_snapshot *p) {
        json_begin_array(w);
        for (size_t i = 0; i < p->n_threads_listed; i++) {
                const struct thread_snapshot *t = &p->threads[i];

                json_begin_object(w);
                json_key(w, "tid");
                json_int(w, t->tid);
                json_key(w, "comm");
                json_string(w, t->comm);
                json_key(w, "state");
                json_state(w, t->state);
                json_key(w, "wchan");
                json_nonempty(w, t->wchan);
                json_key(w, "syscall");
                json_string(w, t->syscall);
                json_end_object(w);
        }
        json_end_array(w);
}

static void json_process_fields(struct json_writer *w, const struct process_snapshot *p) {
        json_key(w, "comm");
        json_string(w, p->comm);
        json_key(w, "exe");
        json_nonempty(w, p->exe);
        json_key(w, "state");
        json_state(w, p->state);
        json_key(w, "state_name");
        json_string(w, proc_state_name(p->state));
        json_key(w, "wchan");
        json_nonempty(w, p->wchan);
        json_key(w, "syscall");
        json_string(w, p->syscall);
        json_key(w, "cpu_s");
        json_double(w, p->cpu_s);
        json_key(w, "n_threads");
        json_uint(w, p->n_threads);
        json_key(w, "threads");
        json_threads(w, p);
}

static void json_diagnosis(struct json_writer *w, const struct run_model *run, const struct diagnosis *d) {
        if (!d) {
                json_null(w);
                return;
        }
        json_begin_object(w);
        json_key(w, "reason");
        json_string(w, d->reason);
        json_key(w, "time_s");
        json_double(w, secs(d->started_usec - run->start_usec));
        json_key(w, "duration_s");
        json_double(w, secs(d->ended_usec - d->started_usec));
        json_key(w, "pid");
        json_int(w, d->pid);
        json_key(w, "principal_pid");
        json_int(w, d->principal_pid);
        json_key(w, "phase");
        json_string(w, d->phase);
        json_key(w, "phase_s");
        if (d->phase && d->phase_usec > 0)
                json_double(w, secs(d->phase_usec));
        else
                json_null(w);
        json_key(w, "position");
        json_string(w, d->position);
        if (d->n_processes > 0)
                json_process_fields(w, &d->processes[0]);
        else {
                json_key(w, "state");
                json_null(w);
                json_key(w, "wchan");
                json_null(w);
                json_key(w, "syscall");
                json_null(w);
                json_key(w, "threads");
                json_begin_array(w);
                json_end_array(w);
        }
        json_key(w, "descendants");
        json_begin_array(w);
        for (size_t i = 1; i < d->n_processes; i++) {
                json_begin_object(w);
                json_key(w, "pid");
                json_int(w, d->processes[i].pid);
                json_key(w, "ppid");
                json_int(w, d->processes[i].ppid);
                json_process_fields(w, &d->processes[i]);
                json_end_object(w);
        }
        json_end_array(w);
        json_key(w, "python");
        json_bool(w, d->python);
        json_key(w, "python_traceback");
        json_strv(w, d->python_traceback);
        json_key(w, "stack_tool");
        json_string(w, d->stack_tool != STACK_TOOL_NONE ? stack_tool_name(d->stack_tool) : NULL);
        json_key(w, "stack_s");
        if (d->stack_tool != STACK_TOOL_NONE)
                json_double(w, secs(d->stack_usec));
        else
                json_null(w);
        json_key(w, "native_stack");
        json_strv(w, d->native_stack);
        json_key(w, "nccl_log_files");
        json_strv(w, d->nccl_log_files);
        json_key(w, "nccl_log_tail");
        json_strv(w, d->nccl_log_tail);
        json_key(w, "errors");
        json_strv(w, d->errors);
        json_end_object(w);
}

/* ------------------------------------------------------------ the report */

static void json_rank_end(struct json_writer *w, const struct rank *r) {
        json_key(w, "state");
        json_string(w, rank_state_name(r->state));
        json_key(w, "exit_code");
        if (r->state == RANK_EXITED)
                json_int(w, r->exit_code);
        else
                json_null(w);
        json_key(w, "signal");
        if (r->state == RANK_SIGNALLED)
                json_int(w, r->exit_signal);
        else
                json_null(w);
        json_key(w, "signal_name");
        json_signal(w, r->state == RANK_SIGNALLED ? r->exit_signal : 0);
        json_key(w, "core_dumped");
        json_bool(w, r->core_dumped);
        json_key(w, "exec_error");
        if (r->exec_stage != SPAWN_STAGE_NONE)
                json_string(w, strerror(r->exec_error));
        else
                json_null(w);
}

static void json_error_file(struct json_writer *w, const struct rank *r) {
        json_key(w, "error_file");
        json_value(w, r->error_file);
        json_key(w, "error_file_raw");
        json_string(w, r->error_file_raw);
}

static void json_rank(struct json_writer *w, const struct run_model *run, const struct rank *r) {
        json_begin_object(w);
        json_key(w, "rank");
        json_int(w, r->index);
        json_key(w, "local_rank");
        json_int(w, r->index);
        json_key(w, "pid");
        if (r->pid > 0)
                json_int(w, r->pid);
        else
                json_null(w);
        json_rank_end(w, r);
        json_key(w, "started_s");
        json_time(w, run, r->started_usec);
        json_key(w, "ended_s");
        json_time(w, run, r->ended_usec);
        json_phase_rank_fields(w, run, r);
        json_key(w, "signal_sent");
        json_signal(w, r->last_signal_sent);
        json_key(w, "cuda_visible_devices");
        json_string(w, r->cuda_visible_devices);
        json_key(w, "unreapable");
        if (r->state == RANK_UNREAPABLE) {
                char state[2] = { r->stuck_state, 0 };

                json_begin_object(w);
                json_key(w, "state");
                json_string(w, state);
                json_key(w, "wchan");
                json_string(w, r->stuck_wchan);
                json_end_object(w);
        } else
                json_null(w);
        /* The last diagnosis (diagnose.h): before a deadline's teardown, or on SIGUSR2. */
        json_key(w, "diagnosis");
        json_diagnosis(w, run, r->diagnosis);
        json_key(w, "stdout");
        json_stream(w, &r->streams[STREAM_STDOUT], run->options->tail_lines);
        json_key(w, "stderr");
        json_stream(w, &r->streams[STREAM_STDERR], run->options->tail_lines);
        json_error_file(w, r);
        json_end_object(w);
}

static void json_first_failure(struct json_writer *w, const struct run_model *run, int failed) {
        const struct rank *r;
        const struct json_value *msg, *tb;
        _cleanup_strv_free_ char **tail = NULL;

        if (failed < 0) {
                json_null(w);
                return;
        }
        r = &run->ranks[failed];
        json_begin_object(w);
        json_key(w, "rank");
        json_int(w, r->index);
        json_key(w, "pid");
        json_int(w, r->pid);
        json_key(w, "host");
        json_string(w, run->host);
        json_rank_end(w, r);
        json_key(w, "time_s");
        json_double(w, secs_since(r->ended_usec, run->start_usec));
        json_key(w, "attempt_time_s");
        json_double(w, secs(r->ended_usec - run->attempt_start_usec));
        json_key(w, "restart_count");
        json_int(w, run->restart_count);
        json_key(w, "phase");
        json_string(w, r->phase);
        json_key(w, "error_message");
        msg = rank_error_file_message(r, &tb);
        if (msg)
                json_string_len(w, msg->text, msg->len);
        else
                json_null(w);
        json_key(w, "stderr_tail");
        json_tail(w, &r->streams[STREAM_STDERR].tail, run->options->tail_lines);
        json_error_file(w, r);
        json_key(w, "worker");
        if (run->first_failure_worker >= 0)
                json_int(w, run->first_failure_worker);
        else
                json_null(w);
        json_end_object(w);
}

static void json_worker(struct json_writer *w, const struct run_model *run, const struct worker *k) {
        const struct worker_group *g = k->group >= 0 ? &run->workers.groups[k->group] : NULL;
        char label[24];

        json_begin_object(w);
        json_key(w, "id");
        json_int(w, k->id);
        json_key(w, "pid");
        json_int(w, k->pid);
        json_key(w, "ppid");
        json_int(w, k->ppid);
        json_key(w, "rank");
        json_int(w, k->rank);
        json_key(w, "kind");
        json_string(w, k->native ? "native" : "python");
        json_key(w, "argv");
        json_string(w, k->argv);
        json_key(w, "name");
        json_string(w, k->name);
        json_key(w, "index");
        if (k->index >= 0)
                json_int(w, k->index);
        else
                json_null(w);
        json_key(w, "label");
        json_string(w, worker_label(k, label, sizeof(label)));
        json_key(w, "group");
        if (g) {
                json_begin_object(w);
                json_key(w, "key");
                json_string(w, g->key);
                json_key(w, "rank");
                json_int(w, k->group_rank);
                json_key(w, "world");
                json_int(w, g->world);
                json_end_object(w);
        } else
                json_null(w);
        json_key(w, "phase");
        json_string(w, k->phase);
        json_key(w, "phase_started_s");
        json_time(w, run, k->phase_start_usec);
        json_key(w, "phase_ended_s");
        json_time(w, run, k->phase_end_usec);
        json_key(w, "state");
        json_string(w, worker_state_name(k->state));
        json_key(w, "exit_code");
        if (k->state == WORKER_EXITED)
                json_int(w, k->exit_code);
        else
                json_null(w);
        json_key(w, "signal_name");
        json_signal(w, k->state == WORKER_SIGNALLED ? k->exit_signal : 0);
        json_key(w, "failed");
        json_bool(w, worker_failed(k));
        json_key(w, "exception");
        json_string(w, k->exception);
        json_key(w, "error_file");
        if (k->error_file)
                json_value(w, k->error_file);
        else
                json_null(w);
        json_key(w, "error_file_raw");
        json_string(w, k->error_file_raw);
        json_key(w, "announced_s");
        json_time(w, run, k->announced_usec);
        json_key(w, "ready_said_s");
        json_time(w, run, k->ready_usec);
        json_key(w, "joined_s");
        json_time(w, run, k->joined_usec);
        json_key(w, "extended_until_s");
        json_time(w, run, k->extend_until_usec == UINT64_MAX ? 0 : k->extend_until_usec);
        json_key(w, "ended_s");
        json_time(w, run, k->ended_usec);
        for (int s = 0; s < _STREAM_KIND_MAX; s++) {
                json_key(w, stream_kind_name(s));
                if (k->streams)
                        json_stream(w, &k->streams[s], run->options->tail_lines);
                else
                        json_null(w);
        }
        json_key(w, "diagnosis");
        json_diagnosis(w, run, k->diagnosis);
        json_end_object(w);
}

static void json_workers(struct json_writer *w, const struct run_model *run) {
        json_key(w, "workers");
        json_begin_array(w);
        for (size_t i = 0; i < run->workers.n_workers; i++)
                json_worker(w, run, run->workers.workers[i]);
        json_end_array(w);
        json_key(w, "worker_groups");
        json_begin_array(w);
        for (size_t i = 0; i < run->workers.n_groups; i++) {
                const struct worker_group *g = &run->workers.groups[i];

                json_begin_object(w);
                json_key(w, "rank");
                json_int(w, g->rank);
                json_key(w, "key");
                json_string(w, g->key);
                json_key(w, "world");
                json_int(w, g->world);
                json_key(w, "first_s");
                json_time(w, run, g->first_usec);
                json_key(w, "members");
                json_begin_array(w);
                for (int m = 0; m < g->world; m++)
                        if (g->members[m] >= 0)
                                json_int(w, run->workers.workers[g->members[m]]->pid);
                        else
                                json_null(w);
                json_end_array(w);
                json_end_object(w);
        }
        json_end_array(w);
}

static const char *outcome(const struct run_model *run) {
        if (run->internal_error != 0)
                return "error";
        if (run->deadline.kind != DEADLINE_NONE)
                return "deadline";
        if (run->first_failure >= 0)
                return "failure";
        if (run->node_failure.set)
                return "node-failure";
        if (run->stop_signal > 0)
                return "stopped";
        return "success";
}

/* "nodes": this node's place in the job, and the job's failure as another node reported it. */
static void json_nodes(struct json_writer *w, const struct run_model *run) {
        json_begin_object(w);
        json_key(w, "nnodes");
        json_int(w, run->nnodes > 0 ? run->nnodes : 1);
        json_key(w, "node_rank");
        json_int(w, run->node_rank);
        json_key(w, "first_rank");
        json_int(w, run->rank_offset);
        json_key(w, "source");
        json_string(w, run->node_source);
        json_key(w, "master_addr");
        json_string(w, run->master_addr);
        json_key(w, "store");
        json_string(w, run->options->store);
        json_key(w, "failure");
        if (!run->node_failure.set)
                json_null(w);
        else {
                json_begin_object(w);
                json_key(w, "node");
                json_int(w, run->node_failure.node);
                json_key(w, "host");
                json_string(w, run->node_failure.host);
                json_key(w, "rank");
                if (run->node_failure.rank >= 0)
                        json_int(w, run->node_failure.rank);
                else
                        json_null(w);
                json_key(w, "cause");
                json_string(w, run->node_failure.cause);
                json_end_object(w);
        }
        json_end_object(w);
}

static void json_report(struct json_writer *w, const struct run_model *run, const struct sink *out,
                        const struct sink *err) {
        const struct run_options *o = run->options;
        int failed = run_exit_status_rank(run);
        char ts[40];

        json_begin_object(w);
        json_key(w, "schema");
        json_string(w, "ringmaster-report/1");
        json_key(w, "run_id");
        json_string(w, run->run_id);
        json_key(w, "host");
        json_string(w, run->host);
        json_key(w, "command");
        json_begin_array(w);
        for (size_t i = 0; o->command[i]; i++)
                json_string(w, o->command[i]);
        json_end_array(w);
        json_key(w, "nproc");
        json_int(w, run->nproc);
        json_key(w, "nodes");
        json_nodes(w, run);
        json_key(w, "started_at");
        json_string(w, format_utc_timestamp(ts, sizeof(ts), run->start_realtime_usec));
        json_key(w, "duration_s");
        json_double(w, secs_since(run->end_usec ? run->end_usec : now_usec(), run->start_usec));
        json_key(w, "outcome");
        json_string(w, outcome(run));
        json_key(w, "exit_status");
        json_int(w, run_exit_status(run));
        json_key(w, "exit_status_rank");
        if (failed >= 0)
                json_int(w, failed);
        else
                json_null(w);
        json_key(w, "stop_signal");
        json_signal(w, run->stop_signal);
        json_key(w, "internal_error");
        json_string(w, run->internal_error ? strerror(-run->internal_error) : NULL);
        json_key(w, "restart_count");
        json_int(w, run->restart_count);
        json_key(w, "max_restarts");
        json_int(w, o->max_restarts);
        json_key(w, "run_dir");
        json_string(w, run->run_dir ? run->run_dir->path : NULL);
        json_key(w, "log_dir");
        json_string(w, run->log_dir);
        {
                uint64_t lost = 0;
                int error = 0;

                for (int i = 0; i < run->nproc; i++)
                        for (int k = 0; k < _STREAM_KIND_MAX; k++) {
                                const struct stream_stats *st = &run->ranks[i].streams[k].stats;

                                lost += st->log_lost_bytes;
                                if (!error)
                                        error = st->log_error;
                        }
                json_key(w, "log_dir_lost_bytes");
                json_uint(w, lost);
                json_key(w, "log_dir_error");
                if (error)
                        json_string(w, strerror(error));
                else
                        json_null(w);
        }
        json_key(w, "master_port");
        json_int(w, run->master_port);

        json_key(w, "containment");
        json_begin_object(w);
        json_key(w, "mode");
        json_string(w, run->containment);
        json_key(w, "cgroup");
        json_string(w, run->containment_cgroup);
        json_key(w, "fallback_reason");
        json_string(w, run->containment_fallback);
        json_key(w, "leftovers_killed");
        json_int(w, run->containment_leftovers);
        json_end_object(w);

        json_key(w, "shm");
        json_begin_object(w);
        json_key(w, "segment");
        json_string(w, run->segment_name);
        json_key(w, "size");
        json_uint(w, run->segment_size);
        json_key(w, "stale_segments_removed");
        json_int(w, run->stale_segments_removed);
        json_end_object(w);
        json_key(w, "stale_run_dirs_removed");
        json_int(w, run->stale_run_dirs_removed);

        json_key(w, "first_failure");
        json_first_failure(w, run, run->first_failure >= 0 ? failed : -1);
        json_key(w, "deadline");
        json_deadline(w, run);
        json_key(w, "deadline_limits");
        json_deadline_limits(w, o);
        json_phase_job(w, run);

        json_key(w, "ranks");
        json_begin_array(w);
        for (int i = 0; i < run->nproc; i++)
                json_rank(w, run, &run->ranks[i]);
        json_end_array(w);

        json_key(w, "attempts");
        json_begin_array(w);
        for (size_t i = 0; i < run->n_attempts; i++) {
                const struct attempt *a = &run->attempts[i];

                json_begin_object(w);
                json_key(w, "restart_count");
                json_int(w, a->restart_count);
                json_key(w, "started_s");
                json_double(w, secs_since(a->started_usec, run->start_usec));
                json_key(w, "ended_s");
                json_double(w, secs_since(a->ended_usec, run->start_usec));
                json_key(w, "deadline");
                json_string(w, a->deadline_kind != DEADLINE_NONE ? deadline_kind_name(a->deadline_kind) : NULL);
                json_key(w, "deadline_message");
                json_string(w, a->deadline_message);
                json_key(w, "failed_rank");
                if (a->failed_rank >= 0) {
                        json_int(w, a->failed_rank);
                        json_key(w, "pid");
                        json_int(w, a->failed_pid);
                        json_key(w, "exit_code");
                        if (a->exit_signal)
                                json_null(w);
                        else
                                json_int(w, a->exit_code);
                        json_key(w, "signal_name");
                        json_signal(w, a->exit_signal);
                        json_key(w, "time_s");
                        json_double(w, secs_since(a->failed_usec, run->start_usec));
                        json_key(w, "error_message");
                        json_string(w, a->error_message);
                        json_key(w, "stderr_tail");
                        json_begin_array(w);
                        for (size_t k = 0; a->stderr_tail && a->stderr_tail[k]; k++)
                                json_string(w, a->stderr_tail[k]);
                        json_end_array(w);
                } else
                        json_null(w);
                json_end_object(w);
        }
        json_end_array(w);

        json_workers(w, run);

        json_key(w, "orphans");
        json_begin_object(w);
        json_key(w, "seen");
        json_uint(w, run->orphans_seen);
        json_key(w, "unreapable");
        json_begin_array(w);
        for (size_t i = 0; i < run->n_orphans; i++) {
                const struct orphan *o2 = run->orphans[i];
                char state[2] = { o2->stuck_state, 0 };

                if (o2->ended)
                        continue;
                json_begin_object(w);
                json_key(w, "pid");
                json_int(w, o2->pid);
                json_key(w, "comm");
                json_string(w, o2->comm);
                json_key(w, "state");
                json_string(w, state);
                json_key(w, "wchan");
                json_string(w, o2->stuck_wchan);
                json_end_object(w);
        }
        json_end_array(w);
        json_end_object(w);

        json_key(w, "supervisor");
        json_begin_object(w);
        json_key(w, "pid");
        json_int(w, getpid());
        json_key(w, "peak_rss_kib");
        json_uint(w, proc_self_peak_rss_kib());
        json_key(w, "lost_stdout_bytes");
        json_uint(w, sink_lost_bytes(out));
        json_key(w, "lost_stderr_bytes");
        json_uint(w, sink_lost_bytes(err));
        json_end_object(w);

        json_end_object(w);
}

int report_write_json(const struct run_model *run, const char *path, const struct sink *out, const struct sink *err) {
        _cleanup_free_ char *tmp = NULL;
        struct json_writer w;
        FILE *f;
        int fd;

        /* A name of its own, created exclusively: a symlink planted in a shared folder is never followed. */
        fd = safe_tmpfile_open(path, &tmp);
        if (fd < 0)
                return log_error_errno(fd, "cannot write the report beside %s", path);
        f = fdopen(fd, "w");
        if (!f) {
                close(fd);
                unlink(tmp);
                return log_error_errno(-errno, "cannot write the report %s", tmp);
        }
        json_writer_init(&w, f);
        json_report(&w, run, out, err);
        if (fflush(f) != 0 || ferror(f)) {
                int e = -errno;

                fclose(f);
                unlink(tmp);
                return log_error_errno(e ? e : -EIO, "cannot write the report %s", tmp);
        }
        if (fclose(f) != 0) {
                int e = -errno;

                unlink(tmp);
                return log_error_errno(e, "cannot write the report %s", tmp);
        }
        if (rename(tmp, path) < 0) {
                int e = -errno;

                unlink(tmp);
                return log_error_errno(e, "cannot write the report %s", path);
        }
        return 0;
}
