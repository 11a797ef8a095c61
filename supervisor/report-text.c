/* SPDX-License-Identifier: MIT */
/*
 * The text report (report.h): every line of it is written here, from the
 * run model; nothing else formats the report.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

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
#include "stack.h"
#include "util.h"

#define report_line(...) log_full(LOG_LEVEL_ERROR, __VA_ARGS__)
/* Per stack in the text report; the JSON has them all. */
#define TEXT_STACK_LINES_MAX 200

/* "exited with status 3", "killed by SIGSEGV (core dumped)", "running", ... */
static void describe_end(const struct rank *r, char *buf, size_t size) {
        char name[16];

        switch (r->state) {
        case RANK_EXITED:
                if (r->exec_stage == SPAWN_STAGE_EXEC)
                        snprintf(buf, size, "could not execute the command: %s (exit status %d)",
                                 strerror(r->exec_error), r->exit_code);
                else
                        snprintf(buf, size, "exited with status %d", r->exit_code);
                break;
        case RANK_SIGNALLED:
                snprintf(buf, size, "killed by %s%s", signal_name(r->exit_signal, name, sizeof(name)),
                         r->core_dumped ? " (core dumped)" : "");
                break;
        case RANK_UNREAPABLE:
                snprintf(buf, size, "could not be reaped after SIGKILL: state %c, waiting in %s", r->stuck_state,
                         r->stuck_wchan);
                break;
        case RANK_IDLE:
                snprintf(buf, size, "not started");
                break;
        default:
                snprintf(buf, size, "%s", rank_state_name(r->state));
                break;
        }
}

/* Prints the last max_lines lines of text, each as "  | line". */
static void print_text_tail(const char *text, size_t max_lines) {
        const char *p = text + strlen(text), *start;
        size_t n = 0;

        while (p > text && p[-1] == '\n')
                p--;
        start = p;
        while (start > text && n < max_lines) {
                start--;
                if (*start == '\n')
                        n++;
        }
        if (*start == '\n')
                start++;
        while (start < p) {
                size_t len = strcspn(start, "\n");

                if ((size_t) (p - start) < len)
                        len = (size_t) (p - start);
                report_line("  | %.*s", (int) len, start);
                start += len + 1;
        }
}

static void print_first_failure(const struct run_model *run, const struct rank *r) {
        const struct json_value *msg, *tb;
        _cleanup_strv_free_ char **tail = NULL;
        char what[256], where[256] = "phase unknown";

        describe_end(r, what, sizeof(what));
        if (r->phase)
                rank_describe_position(r, r->ended_usec, where, sizeof(where));
        report_line("first failure: rank %d (pid %d, host %s) %s at %.3f s (%.3f s into attempt %d), %s",
                    r->index, (int) r->pid, run->host, what, secs_since(r->ended_usec, run->start_usec),
                    secs(r->ended_usec - run->attempt_start_usec), run->restart_count + 1, where);

        msg = rank_error_file_message(r, &tb);
        if (msg)
                report_line("rank %d error file: %s", r->index, msg->text);
        if (tb) {
                report_line("rank %d traceback (from its error file, last %zu lines):", r->index,
                            run->options->tail_lines);
                print_text_tail(tb->text, run->options->tail_lines);
        }
        if (r->error_file_raw)
                report_line("rank %d error file (not JSON): %.200s", r->index, r->error_file_raw);

        if (tail_lines(&r->streams[STREAM_STDERR].tail, run->options->tail_lines, &tail) >= 0) {
                size_t n = strv_length(tail);

                if (n == 0)
                        report_line("rank %d stderr: (empty)", r->index);
                else {
                        report_line("rank %d stderr, last %zu line%s:", r->index, n, n == 1 ? "" : "s");
                        for (size_t i = 0; i < n; i++)
                                report_line("  | %s", tail[i]);
                }
        }
}

/* The deadline section, after the headline. */
static void print_deadline(const struct run_model *run) {
        const struct deadline_cause *c = &run->deadline;
        char where[256];

        if (c->kind == DEADLINE_NONE)
                return;
        if (c->watchdog_trigger)
                report_line("deadline: WATCHDOG=trigger at %.3f s (%.3f s into attempt %d)",
                            secs_since(c->fired_usec, run->start_usec),
                            secs_since(c->fired_usec, run->attempt_start_usec),
                            run->restart_count + 1);
        else if (c->kind == DEADLINE_PHASE)
                report_line("deadline: --phase-timeout %s=%g passed at %.3f s (%.3f s into attempt %d)", c->phase,
                            secs(c->limit_usec), secs_since(c->fired_usec, run->start_usec),
                            secs_since(c->fired_usec, run->attempt_start_usec), run->restart_count + 1);
        else
                report_line("deadline: --%s %g passed at %.3f s (%.3f s into attempt %d)", deadline_kind_name(c->kind),
                            secs(c->limit_usec), secs_since(c->fired_usec, run->start_usec),
                            secs_since(c->fired_usec, run->attempt_start_usec), run->restart_count + 1);
        report_line("ranks at the deadline:");
        for (int i = 0; i < run->nproc; i++) {
                const struct rank *r = &run->ranks[i];
                const struct rank_notify *n = &r->notify;
                char ready[64] = "not ready", extra[1400] = "";
                size_t k = 0;

                if (r->state == RANK_IDLE) {
                        report_line("  rank %d: not started", i);
                        continue;
                }
                rank_describe_position(r, c->fired_usec, where, sizeof(where));
                if (r->ready)
                        snprintf(ready, sizeof(ready), "ready at %.3f s", secs_since(n->ready_usec, run->start_usec));
                if (n->status)
                        k += (size_t) snprintf(extra + k, sizeof(extra) - k, "; status: %.1024s", n->status);
                if (n->stopping && k < sizeof(extra))
                        k += (size_t) snprintf(extra + k, sizeof(extra) - k, "; stopping");
                if (n->has_errno && k < sizeof(extra))
                        k += (size_t) snprintf(extra + k, sizeof(extra) - k, "; ERRNO=%d", n->errno_value);
                if (r->diag_state && k < sizeof(extra))
                        snprintf(extra + k, sizeof(extra) - k, "; at the deadline: state %c, wait channel %s",
                                 r->diag_state, r->diag_wchan[0] && strcmp(r->diag_wchan, "0") != 0 ? r->diag_wchan
                                                                                                 : "-");
                report_line("  rank %d (pid %d)%s: %s; %s%s", i, (int) r->pid,
                            rank_list_contains(c->ranks, c->n_ranks, i) ? " LATE" : "", where, ready, extra);
        }
}

/* ------------------------------------------------------------ diagnoses */

/* "S (sleeping) in read, waiting in pipe_read" */
static void describe_activity(char state, const char *syscall, const char *wchan, char *buf, size_t size) {
        int n = snprintf(buf, size, "%c (%s)", state, proc_state_name(state));

        if (n < 0 || (size_t) n >= size)
                return;
        if (strcmp(syscall, "running") != 0 && strcmp(syscall, "none") != 0 && strcmp(syscall, "?") != 0)
                n += snprintf(buf + n, size - (size_t) n, " in %s", syscall);
        if (wchan[0] && (size_t) n < size)
                snprintf(buf + n, size - (size_t) n, ", waiting in %s", wchan);
}

static bool same_activity(const struct thread_snapshot *a, const struct thread_snapshot *b) {
        return a->state == b->state && strcmp(a->syscall, b->syscall) == 0 && strcmp(a->wchan, b->wchan) == 0;
}

/* Threads grouped by what they do (state, system call, wait channel), with their names. */
static void print_threads_summary(const struct process_snapshot *p) {
        _cleanup_free_ bool *grouped = NULL, *named = NULL;

        if (p->n_threads_listed <= 1)
                return;
        grouped = calloc(p->n_threads_listed, sizeof(bool));
        named = calloc(p->n_threads_listed, sizeof(bool));
        if (!grouped || !named)
                return;
        report_line("    threads (%zu%s):", p->n_threads,
                    p->n_threads > p->n_threads_listed ? ", the first ones listed" : "");
        for (size_t i = 0; i < p->n_threads_listed; i++) {
                const struct thread_snapshot *a = &p->threads[i];
                char what[160], names[256] = "";
                size_t n = 0, used = 0, n_names = 0;

                if (grouped[i])
                        continue;
                for (size_t j = i; j < p->n_threads_listed; j++) {
                        size_t same_name = 0;

                        if (!same_activity(a, &p->threads[j]))
                                continue;
                        grouped[j] = true;
                        n++;
                        if (named[j])
                                continue;
                        for (size_t k = j; k < p->n_threads_listed; k++)
                                if (same_activity(a, &p->threads[k]) &&
                                    strcmp(p->threads[k].comm, p->threads[j].comm) == 0) {
                                        named[k] = true;
                                        same_name++;
                                }
                        if (used + 1 >= sizeof(names))
                                continue;
                        if (++n_names > 6)
                                used += (size_t) snprintf(names + used, sizeof(names) - used, "%s",
                                                          n_names == 7 ? ", ..." : "");
                        else if (same_name > 1)
                                used += (size_t) snprintf(names + used, sizeof(names) - used, "%s%s x%zu",
                                                          n_names > 1 ? ", " : "", p->threads[j].comm, same_name);
                        else
                                used += (size_t) snprintf(names + used, sizeof(names) - used, "%s%s",
                                                          n_names > 1 ? ", " : "", p->threads[j].comm);
                        used = MIN(used, sizeof(names) - 1);
                }
                describe_activity(a->state, a->syscall, a->wchan, what, sizeof(what));
                report_line("      %zu %s: %s", n, what, names);
        }
}

static void print_process(const struct process_snapshot *p, bool is_rank) {
        char what[160];

        describe_activity(p->state, p->syscall, p->wchan, what, sizeof(what));
        if (is_rank)
                report_line("  process %d (%s): %s; CPU %.2f s; %zu thread%s", (int) p->pid, p->comm, what, p->cpu_s,
                            p->n_threads, p->n_threads == 1 ? "" : "s");
        else
                report_line("  descendant %d (%s, child of %d): %s; CPU %.2f s; %zu thread%s", (int) p->pid, p->comm,
                            (int) p->ppid, what, p->cpu_s, p->n_threads, p->n_threads == 1 ? "" : "s");
        print_threads_summary(p);
}

static void print_lines(char *const *l, size_t max) {
        size_t n = strv_length(l);

        for (size_t i = 0; i < n && i < max; i++)
                report_line("    | %s", l[i]);
        if (n > max)
                report_line("    | ... %zu more lines in the JSON report (--report)", n - max);
}

static void print_stack(char *const *lines, enum stack_format format) {
        _cleanup_strv_free_ char **shown = NULL;

        if (stack_collapse(lines, format, &shown) < 0)
                print_lines(lines, TEXT_STACK_LINES_MAX);
        else
                print_lines(shown, TEXT_STACK_LINES_MAX);
}

/* What was printed before (a diagnosis and its owner's name), for "the same as rank 0's". */
struct printed {
        const struct diagnosis *d;
        char name[64];
};

/* Among the diagnoses printed before d, one whose stack of this kind d's equals; -1: none. */
static int same_stack_as(const struct printed *printed, size_t n, const struct diagnosis *d, bool python) {
        char *const *mine = python ? d->python_traceback : d->native_stack;
        enum stack_format format = python ? STACK_FORMAT_PYTHON :
                                   d->stack_tool == STACK_TOOL_GDB ? STACK_FORMAT_GDB : STACK_FORMAT_EU_STACK;

        if (strv_length(mine) == 0)
                return -1;
        for (size_t i = 0; i < n; i++) {
                const struct diagnosis *o = printed[i].d;
                char *const *theirs = python ? o->python_traceback : o->native_stack;

                if (!python && o->stack_tool != d->stack_tool)
                        continue;
                if (strv_length(theirs) > 0 && stack_same(mine, theirs, format))
                        return (int) i;
        }
        return -1;
}

static void print_diagnosis(const struct run_model *run, const struct diagnosis *d, const char *who,
                            const struct printed *printed, size_t n_printed);

static bool diagnosis_matches(const struct diagnosis *d, const char *reason) {
        return d && (!reason || strcmp(d->reason, reason) == 0);
}

/*
 * The diagnoses of the spawned workers (the ids in first first), then of
 * the ranks (the indices in first_ranks first); identical stacks are
 * printed once.
 */
static void print_diagnoses(const struct run_model *run, const char *reason, const int *first_workers,
                            size_t n_first_workers, const int *first, size_t n_first) {
        size_t total = run->workers.n_workers + (size_t) run->nproc;
        _cleanup_free_ struct printed *printed = calloc(total + 1, sizeof(struct printed));
        _cleanup_free_ bool *done = calloc(total + 1, sizeof(bool));
        size_t n = 0;

        if (!printed || !done)
                return;
        for (size_t k = 0; k < n_first_workers + run->workers.n_workers; k++) {
                int i = k < n_first_workers ? first_workers[k] : (int) (k - n_first_workers);
                const struct worker *w;
                char who[256];

                if (i < 0 || (size_t) i >= run->workers.n_workers || done[i])
                        continue;
                w = run->workers.workers[i];
                if (!diagnosis_matches(w->diagnosis, reason))
                        continue;
                done[i] = true;
                worker_describe(&run->workers, w, run_rank_pid(run, w->rank), who, sizeof(who));
                worker_name(w, printed[n].name, sizeof(printed[n].name));
                print_diagnosis(run, w->diagnosis, who, printed, n);
                printed[n++].d = w->diagnosis;
        }
        for (size_t k = 0; k < n_first + (size_t) run->nproc; k++) {
                int i = k < n_first ? first[k] : (int) (k - n_first);
                char who[64];

                if (i < 0 || i >= run->nproc || done[run->workers.n_workers + (size_t) i] ||
                    !diagnosis_matches(run->ranks[i].diagnosis, reason))
                        continue;
                done[run->workers.n_workers + (size_t) i] = true;
                snprintf(who, sizeof(who), "rank %d (pid %d)", i, (int) run->ranks[i].diagnosis->pid);
                snprintf(printed[n].name, sizeof(printed[n].name), "rank %d", i);
                print_diagnosis(run, run->ranks[i].diagnosis, who, printed, n);
                printed[n++].d = run->ranks[i].diagnosis;
        }
}

static void print_diagnosis(const struct run_model *run, const struct diagnosis *d, const char *who,
                            const struct printed *printed, size_t n_printed) {
        int same;

        if (!d)
                return;
        report_line("---- %s: diagnosis at %.3f s (%s), took %.2f s ----", who,
                    secs(d->started_usec - run->start_usec), d->reason, secs(d->ended_usec - d->started_usec));
        report_line("  %s", d->position ? d->position : "phase unknown");
        for (size_t i = 0; i < d->n_processes; i++)
                print_process(&d->processes[i], i == 0);

        if (d->python_signalled || strv_length(d->python_traceback) > 0) {
                if ((same = same_stack_as(printed, n_printed, d, true)) >= 0)
                        report_line("  Python traceback (faulthandler, on SIGUSR1 to %d): the same as %s's",
                                    (int) d->principal_pid, printed[same].name);
                else if (strv_length(d->python_traceback) > 0) {
                        report_line("  Python traceback (faulthandler, on SIGUSR1 to %d):", (int) d->principal_pid);
                        print_stack(d->python_traceback, STACK_FORMAT_PYTHON);
                } else
                        report_line("  Python traceback: none came (SIGUSR1 to %d)", (int) d->principal_pid);
        }
        if (d->stack_tool != STACK_TOOL_NONE) {
                if ((same = same_stack_as(printed, n_printed, d, false)) >= 0)
                        report_line("  native stack of %d (%s, %.2f s): the same as %s's", (int) d->principal_pid,
                                    stack_tool_name(d->stack_tool), secs(d->stack_usec), printed[same].name);
                else if (strv_length(d->native_stack) > 0) {
                        report_line("  native stack of %d (%s, %.2f s):", (int) d->principal_pid,
                                    stack_tool_name(d->stack_tool), secs(d->stack_usec));
                        print_stack(d->native_stack, d->stack_tool == STACK_TOOL_GDB ? STACK_FORMAT_GDB :
                                                                                       STACK_FORMAT_EU_STACK);
                } else
                        report_line("  native stack of %d (%s): none", (int) d->principal_pid,
                                    stack_tool_name(d->stack_tool));
        }
        if (strv_length(d->nccl_log_files) > 0) {
                if (strv_length(d->nccl_log_files) == 1)
                        report_line("  NCCL log %s, last %zu lines:", d->nccl_log_files[0],
                                    strv_length(d->nccl_log_tail));
                else
                        report_line("  NCCL logs, last lines of each:");
                if (strv_length(d->nccl_log_tail) == 0)
                        report_line("    (empty)");
                print_lines(d->nccl_log_tail, SIZE_MAX);
        }
        if (strv_length(d->errors) > 0) {
                report_line("  what the diagnosis could not do:");
                for (size_t i = 0; d->errors[i]; i++)
                        report_line("    - %s", d->errors[i]);
        }
}

/* ------------------------------------------------------------ spawned workers */

static const struct json_value *worker_error_message(const struct worker *w, const struct json_value **ret_tb) {
        const struct json_value *m = json_object_get(w->error_file, "message"), *tb = NULL;

        if (m && m->type == JSON_OBJECT) {
                tb = json_object_get(json_object_get(m, "extraInfo"), "py_callstack");
                m = json_object_get(m, "message");
        }
        *ret_tb = tb && tb->type == JSON_STRING ? tb : NULL;
        return m && m->type == JSON_STRING ? m : NULL;
}

static void print_worker_failure(const struct run_model *run, const struct worker *w) {
        const struct json_value *msg, *tb;
        _cleanup_strv_free_ char **tail = NULL;
        char who[256], end[1200], name[64], where[128] = "phase unknown";

        worker_describe(&run->workers, w, run_rank_pid(run, w->rank), who, sizeof(who));
        worker_describe_end(w, end, sizeof(end));
        worker_name(w, name, sizeof(name));
        if (w->phase)
                snprintf(where, sizeof(where), "%s phase %s", w->phase_end_usec ? "after" : "in", w->phase);
        report_line("first failure: %s %s at %.3f s (%.3f s into attempt %d), %s", who, end,
                    secs_since(w->ended_usec, run->start_usec), secs_since(w->ended_usec, run->attempt_start_usec),
                    run->restart_count + 1, where);
        report_line("%s: %s, command line: %s", name, w->native ? "native" : "python", w->argv ? w->argv : "?");
        msg = worker_error_message(w, &tb);
        if (tb) {
                report_line("%s traceback (from its error file, last %zu lines):", name, run->options->tail_lines);
                print_text_tail(tb->text, run->options->tail_lines);
        } else if (msg)
                report_line("%s error file: %s", name, msg->text);
        if (!w->streams)
                report_line("%s stderr: not captured apart (it is in rank %d's)", name, w->rank);
        else if (tail_lines(&w->streams[STREAM_STDERR].tail, run->options->tail_lines, &tail) >= 0) {
                size_t n = strv_length(tail);

                if (n == 0)
                        report_line("%s stderr: (empty)", name);
                else {
                        report_line("%s stderr, last %zu line%s:", name, n, n == 1 ? "" : "s");
                        for (size_t i = 0; i < n; i++)
                                report_line("  | %s", tail[i]);
                }
        }
}

static void print_workers(const struct run_model *run) {
        if (run->workers.n_workers == 0)
                return;
        report_line("workers the ranks spawned:");
        for (size_t i = 0; i < run->workers.n_workers; i++) {
                const struct worker *w = run->workers.workers[i];
                char who[256], end[1200], phase[128] = "";

                worker_describe(&run->workers, w, run_rank_pid(run, w->rank), who, sizeof(who));
                worker_describe_end(w, end, sizeof(end));
                if (w->phase)
                        snprintf(phase, sizeof(phase), "; %s phase %s", w->phase_end_usec ? "after" : "in", w->phase);
                if (w->state == WORKER_RUNNING)
                        report_line("  %s%s%s: %s at the end%s", who, w->name ? " " : "", w->name ? w->name : "", end,
                                    phase);
                else
                        report_line("  %s%s%s: %s at %.3f s%s", who, w->name ? " " : "", w->name ? w->name : "", end,
                                    secs_since(w->ended_usec, run->start_usec), phase);
        }
        for (size_t i = 0; i < run->workers.n_groups; i++) {
                const struct worker_group *g = &run->workers.groups[i];
                char seen[512] = "", missing[512] = "";
                size_t a = 0, b = 0;

                for (int m = 0; m < g->world; m++) {
                        if (g->members[m] >= 0 && a < sizeof(seen))
                                a += (size_t) snprintf(seen + a, sizeof(seen) - a, "%s%d", a ? "," : "", m);
                        else if (g->members[m] < 0 && b < sizeof(missing))
                                b += (size_t) snprintf(missing + b, sizeof(missing) - b, "%s%d", b ? "," : "", m);
                }
                report_line("  group %s under rank %d: world %d: members %s seen%s%s", g->key, g->rank, g->world,
                            a ? seen : "none", b ? ", missing " : "", missing);
        }
}

/* ------------------------------------------------------------ the report */

/*
 * What was lost on the way, failure or success: output lines dropped
 * because ringmaster's own output was not read, notify datagrams dropped
 * (not trusted), and --log-dir data not written.
 */
static void print_losses(const struct run_model *run) {
        bool any_dropped = false;
        char size[32];

        for (int i = 0; i < run->nproc; i++)
                for (int k = 0; k < _STREAM_KIND_MAX; k++) {
                        const struct stream_stats *st = &run->ranks[i].streams[k].stats;

                        if (st->dropped_lines == 0)
                                continue;
                        if (!any_dropped)
                                report_line("output dropped (ringmaster's output was not read fast enough):");
                        any_dropped = true;
                        report_line("  rank %d %s: %" PRIu64 " lines (%s)", i, stream_kind_name(k), st->dropped_lines,
                                    format_bytes(size, sizeof(size), st->dropped_bytes));
                }

        /* Datagrams that were not trusted: on a successful run too (the JSON's notify.dropped has the same). */
        if (run->notify_stats) {
                char why[512] = "";
                uint64_t total = 0;
                size_t used = 0;

                for (int d = 0; d < _NOTIFY_DROP_MAX; d++) {
                        uint64_t n = run->notify_stats->dropped[d];

                        if (n == 0)
                                continue;
                        total += n;
                        if (used < sizeof(why))
                                used += (size_t) snprintf(why + used, sizeof(why) - used, "%s%s %" PRIu64,
                                                          used ? ", " : "", notify_drop_name(d), n);
                }
                if (total > 0)
                        report_line("notify datagrams dropped: %" PRIu64 " (%s)", total, why);
        }

        for (int i = 0; i < run->nproc; i++)
                for (int k = 0; k < _STREAM_KIND_MAX; k++) {
                        const struct stream_stats *st = &run->ranks[i].streams[k].stats;

                        if (st->log_lost_bytes == 0 && st->log_error == 0)
                                continue;
                        report_line("--log-dir: rank %d's %s log is incomplete: %s not written (%s)", i,
                                    stream_kind_name(k), format_bytes(size, sizeof(size), st->log_lost_bytes),
                                    strerror(st->log_error ? st->log_error : EIO));
                }
}

/* A run that succeeded says nothing, unless something was lost on the way. */
void report_print_success(const struct run_model *run) {
        if (run->nproc <= 0 || !run->ranks)
                return;
        /* A dry look first: print_losses prints as it finds. */
        for (int i = 0; i < run->nproc; i++)
                for (int k = 0; k < _STREAM_KIND_MAX; k++) {
                        const struct stream_stats *st = &run->ranks[i].streams[k].stats;

                        if (st->dropped_lines || st->log_lost_bytes || st->log_error)
                                goto say;
                }
        if (run->notify_stats)
                for (int d = 0; d < _NOTIFY_DROP_MAX; d++)
                        if (run->notify_stats->dropped[d])
                                goto say;
        return;
say:
        report_line("======== run %s: succeeded, with losses ========", run->run_id);
        print_losses(run);
        report_line("exit status 0");
}

void report_print_text(const struct run_model *run) {
        int failed = run_exit_status_rank(run), status = run_exit_status(run);
        char name[16];

        if (run->internal_error != 0)
                report_line("======== run %s: ringmaster failed: %s ========", run->run_id,
                            strerror(-run->internal_error));
        else if (run->deadline.kind != DEADLINE_NONE)
                report_line("======== run %s: %s ========", run->run_id, run->deadline.message);
        else if (run->first_failure_worker >= 0) {
                const struct worker *w = run->workers.workers[run->first_failure_worker];
                char who[256], end[1200];

                worker_describe(&run->workers, w, run_rank_pid(run, w->rank), who, sizeof(who));
                worker_describe_end(w, end, sizeof(end));
                report_line("======== run %s: %s %s ========", run->run_id, who, end);
        } else if (run->first_failure >= 0 && run->nnodes > 1)
                report_line("======== run %s: rank %d (node %d's local rank %d) failed ========", run->run_id,
                            run->rank_offset + failed, run->node_rank, failed);
        else if (run->first_failure >= 0)
                report_line("======== run %s: rank %d failed ========", run->run_id, failed);
        else if (run->node_failure.set)
                report_line("======== run %s: the job failed on node %d (%s): %s ========", run->run_id,
                            run->node_failure.node, run->node_failure.host ? run->node_failure.host : "?",
                            run->node_failure.cause ? run->node_failure.cause : "no cause given");
        else if (run->stop_signal > 0)
                report_line("======== run %s: stopped by %s ========", run->run_id,
                            signal_name(run->stop_signal, name, sizeof(name)));
        else
                report_line("======== run %s ========", run->run_id);

        for (size_t i = 0; i + 1 < run->n_attempts; i++) {
                const struct attempt *a = &run->attempts[i];

                if (a->deadline_message) {
                        report_line("attempt %zu: deadline passed (--%s): %s", i + 1,
                                    deadline_kind_name(a->deadline_kind), a->deadline_message);
                        continue;
                }
                if (a->failed_rank < 0)
                        continue;
                if (a->exit_signal)
                        report_line("attempt %zu: rank %d (pid %d) was killed by %s at %.3f s%s%s", i + 1,
                                    a->failed_rank, (int) a->failed_pid, signal_name(a->exit_signal, name, sizeof(name)),
                                    secs_since(a->failed_usec, run->start_usec), a->error_message ? ": " : "",
                                    a->error_message ? a->error_message : "");
                else
                        report_line("attempt %zu: rank %d (pid %d) exited with status %d at %.3f s%s%s", i + 1,
                                    a->failed_rank, (int) a->failed_pid, a->exit_code,
                                    secs_since(a->failed_usec, run->start_usec),
                                    a->error_message ? ": " : "", a->error_message ? a->error_message : "");
        }

        if (run->nnodes > 1)
                report_line("node %d of %d (%s): its local ranks 0 to %d are ranks %d to %d; the lines below "
                            "number this node's ranks locally", run->node_rank, run->nnodes, run->host, run->nproc - 1,
                            run->rank_offset, run->rank_offset + run->nproc - 1);
        if (run->node_failure.set && run->node_failure.rank >= 0)
                report_line("failed: rank %d, on node %d (%s)", run->node_failure.rank, run->node_failure.node,
                            run->node_failure.host ? run->node_failure.host : "?");
        if (run->first_failure_worker >= 0 && failed >= 0)
                print_worker_failure(run, run->workers.workers[run->first_failure_worker]);
        else if (run->first_failure >= 0)
                print_first_failure(run, &run->ranks[failed]);
        print_deadline(run);

        report_line("%s:", run->first_failure >= 0 && run->first_failure_worker < 0 ? "other ranks" : "ranks");
        for (int i = 0; i < run->nproc; i++) {
                const struct rank *r = &run->ranks[i];
                char what[256], sent[96] = "";

                if (i == run->first_failure && run->first_failure_worker < 0)
                        continue;
                describe_end(r, what, sizeof(what));
                if (r->last_signal_sent && r->state != RANK_IDLE)
                        snprintf(sent, sizeof(sent), " (ringmaster sent %s at %.3f s)",
                                 signal_name(r->last_signal_sent, name, sizeof(name)),
                                 secs_since(r->last_signal_usec, run->start_usec));
                if (r->state == RANK_IDLE)
                        report_line("  rank %d: %s", r->index, what);
                else
                        report_line("  rank %d (pid %d): %s at %.3f s%s", r->index, (int) r->pid, what,
                                    secs_since(r->ended_usec ? r->ended_usec : run->end_usec, run->start_usec), sent);
        }

        print_workers(run);

        /* Diagnoses taken before the teardown, the late ones first (those on SIGUSR2 were printed then). */
        print_diagnoses(run, "deadline", run->deadline.workers, run->deadline.n_workers, run->deadline.ranks,
                        run->deadline.n_ranks);

        print_losses(run);

        if (run->orphans_seen > 0) {
                size_t stuck = 0;

                for (size_t i = 0; i < run->n_orphans; i++)
                        if (!run->orphans[i]->ended) {
                                const struct orphan *o = run->orphans[i];

                                report_line("  leftover process %d (%s) could not be reaped: state %c, waiting in %s",
                                            (int) o->pid, o->comm, o->stuck_state, o->stuck_wchan);
                                stuck++;
                        }
                report_line("orphaned descendants: %" PRIu64 " re-parented to ringmaster, %zu reaped",
                            run->orphans_seen, (size_t) run->orphans_seen - stuck);
        }

        if (run->first_failure_worker >= 0 && failed >= 0) {
                char wname[64];

                report_line("exit status %d (%s's, of rank %d)", status,
                            worker_name(run->workers.workers[run->first_failure_worker], wname, sizeof(wname)), failed);
        } else if (failed >= 0 && run->first_failure < 0)
                report_line("exit status %d (rank %d's, after %s)", status, failed,
                            signal_name(run->stop_signal, name, sizeof(name)));
        else if (failed >= 0)
                report_line("exit status %d (rank %d's)", status, failed);
        else if (run->deadline.kind != DEADLINE_NONE && run->internal_error == 0)
                report_line("exit status %d (a deadline passed: --%s)", status, deadline_kind_name(run->deadline.kind));
        else
                report_line("exit status %d", status);
}

void report_print_sigusr2(const struct run_model *run) {
        char buf[16];
        const char *sig = signal_name(run->options->diagnose_signal, buf, sizeof(buf));
        size_t n = 0, n_workers = 0;

        for (int i = 0; i < run->nproc; i++)
                if (run->ranks[i].diagnosis && strcmp(run->ranks[i].diagnosis->reason, sig) == 0)
                        n++;
        for (size_t i = 0; i < run->workers.n_workers; i++)
                if (diagnosis_matches(run->workers.workers[i]->diagnosis, sig))
                        n_workers++;
        if (n_workers)
                report_line("======== run %s: diagnosis on %s, %zu rank%s and %zu worker%s; the job goes on ========",
                            run->run_id, sig, n, n == 1 ? "" : "s", n_workers, n_workers == 1 ? "" : "s");
        else
                report_line("======== run %s: diagnosis on %s, %zu rank%s; the job goes on ========", run->run_id,
                            sig, n, n == 1 ? "" : "s");
        print_diagnoses(run, sig, NULL, 0, NULL, 0);
        report_line("======== end of the diagnosis ========");
}
