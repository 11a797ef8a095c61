/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "deadline.h"
#include "diagnose.h"
#include "exit-status.h"
#include "run-model.h"
#include "json.h"
#include "log.h"
#include "options.h"
#include "phase.h"
#include "proc.h"
#include "report.h"
#include "rundir.h"
#include "sink.h"
#include "util.h"

#define report_line(...) log_full(LOG_LEVEL_ERROR, __VA_ARGS__)

static double secs(uint64_t usec) {
        return (double) usec / 1e6;
}

static double since_start(const struct run_model *run, uint64_t t) {
        return t > run->start_usec ? secs(t - run->start_usec) : 0.0;
}

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

static const struct json_value *error_file_message(const struct rank *r, const struct json_value **ret_traceback) {
        const struct json_value *m = json_object_get(r->error_file, "message"), *tb = NULL;

        if (m && m->type == JSON_OBJECT) {
                tb = json_object_get(json_object_get(m, "extraInfo"), "py_callstack");
                m = json_object_get(m, "message");
        }
        *ret_traceback = tb && tb->type == JSON_STRING ? tb : NULL;
        return m && m->type == JSON_STRING ? m : NULL;
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
                    r->index, (int) r->pid, run->host, what, since_start(run, r->ended_usec),
                    secs(r->ended_usec - run->attempt_start_usec), run->restart_count + 1, where);

        msg = error_file_message(r, &tb);
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

void report_print_text(const struct run_model *run) {
        int failed = run_exit_status_rank(run), status = run_exit_status(run);
        char name[16], size[32];
        bool any_dropped = false;

        if (run->internal_error != 0)
                report_line("======== run %s: ringmaster failed: %s ========", run->run_id,
                            strerror(-run->internal_error));
        else if (run->deadline.kind != DEADLINE_NONE)
                report_line("======== run %s: %s ========", run->run_id, run->deadline.message);
        else if (failed >= 0)
                report_line("======== run %s: rank %d failed ========", run->run_id, failed);
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
                                    since_start(run, a->failed_usec), a->error_message ? ": " : "",
                                    a->error_message ? a->error_message : "");
                else
                        report_line("attempt %zu: rank %d (pid %d) exited with status %d at %.3f s%s%s", i + 1,
                                    a->failed_rank, (int) a->failed_pid, a->exit_code, since_start(run, a->failed_usec),
                                    a->error_message ? ": " : "", a->error_message ? a->error_message : "");
        }

        if (failed >= 0)
                print_first_failure(run, &run->ranks[failed]);
        deadline_report_text(run);

        report_line("%s:", failed >= 0 ? "other ranks" : "ranks");
        for (int i = 0; i < run->nproc; i++) {
                const struct rank *r = &run->ranks[i];
                char what[256], sent[96] = "";

                if (i == failed)
                        continue;
                describe_end(r, what, sizeof(what));
                if (r->last_signal_sent && r->state != RANK_IDLE)
                        snprintf(sent, sizeof(sent), " (ringmaster sent %s at %.3f s)",
                                 signal_name(r->last_signal_sent, name, sizeof(name)),
                                 since_start(run, r->last_signal_usec));
                if (r->state == RANK_IDLE)
                        report_line("  rank %d: %s", r->index, what);
                else
                        report_line("  rank %d (pid %d): %s at %.3f s%s", r->index, (int) r->pid, what,
                                    since_start(run, r->ended_usec ? r->ended_usec : run->end_usec), sent);
        }

        /* Diagnoses taken before the teardown, the late ranks first (those on SIGUSR2 were printed then). */
        diagnosis_print_all(run, "deadline", run->deadline.ranks, run->deadline.n_ranks);

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

        if (failed >= 0)
                report_line("exit status %d (rank %d's)", status, failed);
        else if (run->deadline.kind != DEADLINE_NONE && run->internal_error == 0)
                report_line("exit status %d (a deadline passed: --%s)", status, deadline_kind_name(run->deadline.kind));
        else
                report_line("exit status %d", status);
}

/* ------------------------------------------------------------ JSON */

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

static void json_opt_time(struct json_writer *w, const struct run_model *run, uint64_t t) {
        if (t)
                json_double(w, since_start(run, t));
        else
                json_null(w);
}

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
        json_opt_time(w, run, r->started_usec);
        json_key(w, "ended_s");
        json_opt_time(w, run, r->ended_usec);
        phase_json_rank_fields(w, run, r);
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
        diagnosis_write_json(w, run, r);
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
        json_double(w, since_start(run, r->ended_usec));
        json_key(w, "attempt_time_s");
        json_double(w, secs(r->ended_usec - run->attempt_start_usec));
        json_key(w, "restart_count");
        json_int(w, run->restart_count);
        json_key(w, "phase");
        json_string(w, r->phase);
        json_key(w, "error_message");
        msg = error_file_message(r, &tb);
        if (msg)
                json_string_len(w, msg->text, msg->len);
        else
                json_null(w);
        json_key(w, "stderr_tail");
        json_tail(w, &r->streams[STREAM_STDERR].tail, run->options->tail_lines);
        json_error_file(w, r);
        json_end_object(w);
}

static const char *outcome(const struct run_model *run) {
        if (run->internal_error != 0)
                return "error";
        if (run->deadline.kind != DEADLINE_NONE)
                return "deadline";
        if (run->first_failure >= 0)
                return "failure";
        if (run->stop_signal > 0)
                return "stopped";
        return "success";
}

static void json_report(struct json_writer *w, const struct run_model *run, const struct sink *out, const struct sink *err) {
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
        json_key(w, "started_at");
        json_string(w, format_utc_timestamp(ts, sizeof(ts), run->start_realtime_usec));
        json_key(w, "duration_s");
        json_double(w, since_start(run, run->end_usec ? run->end_usec : now_usec()));
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
        json_key(w, "master_port");
        json_int(w, run->master_port);

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
        json_first_failure(w, run, failed);
        json_key(w, "deadline");
        deadline_report_json(w, run);
        json_key(w, "deadline_limits");
        deadline_limits_json(w, o);
        phase_json_job(w, run);

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
                json_double(w, since_start(run, a->started_usec));
                json_key(w, "ended_s");
                json_double(w, since_start(run, a->ended_usec));
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
                        json_double(w, since_start(run, a->failed_usec));
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

        if (asprintf(&tmp, "%s.tmp-%d", path, (int) getpid()) < 0)
                return log_error_errno(-ENOMEM, "out of memory");
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0666);
        if (fd < 0)
                return log_error_errno(-errno, "cannot write the report %s", tmp);
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
