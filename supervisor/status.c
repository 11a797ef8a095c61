/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "deadline.h"
#include "log.h"
#include "notify.h"
#include "options.h"
#include "run-model.h"
#include "sink.h"
#include "status.h"
#include "util.h"

/* Column widths of the table (the last line of output takes the rest). */
#define COL_RANK 4
#define COL_PID 8
#define COL_PHASE 20
#define COL_TIME 5
#define COL_PROGRESS 11
#define COL_READY 8
/* Used when the terminal does not say its size. */
#define DEFAULT_COLUMNS 80
#define DEFAULT_ROWS 24

static void appendf(char *buf, size_t size, size_t *len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void appendf(char *buf, size_t size, size_t *len, const char *fmt, ...) {
        va_list ap;
        int n;

        if (*len + 1 >= size)
                return;
        va_start(ap, fmt);
        n = vsnprintf(buf + *len, size - *len, fmt, ap);
        va_end(ap);
        if (n > 0)
                *len = MIN(size - 1, *len + (size_t) n);
}

void format_age(char *buf, size_t size, uint64_t now, uint64_t t, bool compact, uint64_t *next) {
        uint64_t d = now > t ? now - t : 0, unit;
        const char *name;

        if (d < 60 * USEC_PER_SEC) {
                unit = USEC_PER_SEC;
                name = compact ? "s" : " s";
        } else if (d < 3600 * USEC_PER_SEC) {
                unit = 60 * USEC_PER_SEC;
                name = compact ? "m" : " min";
        } else {
                unit = 3600 * USEC_PER_SEC;
                name = compact ? "h" : " h";
        }
        snprintf(buf, size, "%" PRIu64 "%s", d / unit, name);
        if (next)
                *next = MIN(*next, t + (d / unit + 1) * unit);
}

/* ------------------------------------------------------------ the summary */

/* Since when a rank is where it is: its phase's start or end, or its own start. */
static uint64_t position_since(const struct rank *r) {
        if (!r->phase)
                return r->started_usec;
        return r->notify.phase_end_usec ? r->notify.phase_end_usec : r->notify.phase_start_usec;
}

/* "nccl-init", "after warmup", "before any phase". */
static const char *position_name(const struct rank *r, char *buf, size_t size) {
        if (!r->phase)
                return "before any phase";
        if (!r->notify.phase_end_usec)
                return r->phase;
        snprintf(buf, size, "after %s", r->phase);
        return buf;
}

/* The live rank furthest behind on the way to READY (the lowest milestone, there the longest); -1: none. */
static int laggard(const struct run_model *run) {
        int best = -1;

        for (int i = 0; i < run->nproc; i++) {
                const struct rank *r = &run->ranks[i], *b = best >= 0 ? &run->ranks[best] : NULL;

                if (!rank_state_is_alive(r->state) || r->ready)
                        continue;
                if (!b || r->notify.milestone < b->notify.milestone ||
                    (r->notify.milestone == b->notify.milestone && position_since(r) < position_since(b)))
                        best = i;
        }
        return best;
}

int status_silent_rank(const struct run_model *run, uint64_t now, uint64_t limit_usec, uint64_t *next_late) {
        int found = -1;

        for (int i = 0; run->ranks && i < run->nproc; i++) {
                const struct rank *r = &run->ranks[i];
                uint64_t due;

                if (r->state != RANK_RUNNING || !r->ready || r->notify.stopping || r->notify.last_watchdog_usec == 0)
                        continue;
                due = MAX(r->notify.ready_usec, r->notify.last_watchdog_usec) + limit_usec;
                if (now > due) {
                        if (found < 0)
                                found = i;
                } else if (next_late)
                        *next_late = MIN(*next_late, due + 1);
        }
        return found;
}

/* Why the job stops (or stopped): the first failure, the deadline, the signal, ringmaster's error. */
static void describe_cause(const struct run_model *run, char *buf, size_t size) {
        char name[16];

        if (run->internal_error != 0)
                snprintf(buf, size, "ringmaster failed: %s", strerror(-run->internal_error));
        else if (run->deadline.kind != DEADLINE_NONE)
                snprintf(buf, size, "%s", run->deadline.message ? run->deadline.message
                                                                : deadline_kind_name(run->deadline.kind));
        else if (run->first_failure_worker >= 0) {
                const struct worker *w = run->workers.workers[run->first_failure_worker];
                char who[64], end[256];

                worker_name(w, who, sizeof(who));
                worker_describe_end(w, end, sizeof(end));
                snprintf(buf, size, "%s (pid %d) of rank %d %s", who, (int) w->pid, w->rank, end);
        } else if (run->first_failure >= 0) {
                const struct rank *r = &run->ranks[run->first_failure];

                if (r->state == RANK_SIGNALLED)
                        snprintf(buf, size, "rank %d was killed by %s", r->index,
                                 signal_name(r->exit_signal, name, sizeof(name)));
                else if (r->exec_stage == SPAWN_STAGE_EXEC)
                        snprintf(buf, size, "rank %d could not execute the command: %s", r->index,
                                 strerror(r->exec_error));
                else
                        snprintf(buf, size, "rank %d exited with status %d", r->index, r->exit_code);
        } else if (run->stop_signal > 0)
                snprintf(buf, size, "received %s", signal_name(run->stop_signal, name, sizeof(name)));
        else
                snprintf(buf, size, "every rank exited");
}

void status_summary(const struct run_model *run, uint64_t now, uint64_t heartbeat_limit_usec, char *buf, size_t size,
                 uint64_t *next_change) {
        char cause[512], age[32], where[NOTIFY_PHASE_NAME_MAX + 16], name[16];
        size_t len = 0;
        int k;

        assert(size > 0);
        buf[0] = 0;
        switch (run->state) {
        case JOB_RUNNING:
                if (!run->ranks) {
                        appendf(buf, size, &len, "starting");
                        return;
                }
                if (run->phases.n_ready < run->nproc) {
                        appendf(buf, size, &len, "starting: %d/%d ready", run->phases.n_ready, run->nproc);
                        k = laggard(run);
                        if (k >= 0) {
                                const struct rank *r = &run->ranks[k];

                                format_age(age, sizeof(age), now, position_since(r), false, next_change);
                                appendf(buf, size, &len, ", rank %d: %s %s", k, position_name(r, where, sizeof(where)),
                                        age);
                        }
                } else
                        appendf(buf, size, &len, "%d/%d ready", run->phases.n_ready, run->nproc);
                if (run->restart_count > 0)
                        appendf(buf, size, &len, " (restart %d of %d)", run->restart_count,
                                run->options->max_restarts);
                k = heartbeat_limit_usec ? status_silent_rank(run, now, heartbeat_limit_usec, next_change) : -1;
                if (k >= 0) {
                        const struct rank *r = &run->ranks[k];

                        format_age(age, sizeof(age), now, MAX(r->notify.ready_usec, r->notify.last_watchdog_usec),
                                   false, next_change);
                        appendf(buf, size, &len, ", rank %d: no WATCHDOG=1 for %s", k, age);
                }
                return;
        case JOB_DIAGNOSING:
                describe_cause(run, cause, sizeof(cause));
                appendf(buf, size, &len, "diagnosing: %s", cause);
                return;
        case JOB_STOPPING:
        case JOB_KILLING:
                describe_cause(run, cause, sizeof(cause));
                appendf(buf, size, &len, "stopping%s: %s", run->state == JOB_KILLING ? " (SIGKILL sent)" : "", cause);
                return;
        case JOB_BACKOFF:
                describe_cause(run, cause, sizeof(cause));
                appendf(buf, size, &len, "restarting (restart %d of %d) after: %s", run->restart_count + 1,
                        run->options->max_restarts, cause);
                return;
        case JOB_DONE:
        default:
                k = run_exit_status(run);
                if (k == 0)
                        appendf(buf, size, &len, "done: every rank exited 0");
                else if (run->stop_signal > 0 && run->first_failure < 0 && run->deadline.kind == DEADLINE_NONE &&
                         run->internal_error == 0)
                        appendf(buf, size, &len, "stopped by %s", signal_name(run->stop_signal, name, sizeof(name)));
                else {
                        describe_cause(run, cause, sizeof(cause));
                        appendf(buf, size, &len, "failed: %s; exit status %d", cause, k);
                }
                return;
        }
}

/* ------------------------------------------------------------ the live status */

/* What was seen of a rank: for the plain lines, and which stream's last line the table shows. */
struct rank_seen {
        uint64_t started_usec;          /* the rank (of this attempt) the rest is about */
        uint64_t phases;                /* phases reported (kept and dropped ones) */
        bool end_reported;              /* the last phase's end, when no phase followed */
        bool ready_reported;
        uint64_t lines[_STREAM_KIND_MAX];
        int last_stream;                /* whose last line the table shows; -1: none yet */
};

struct live_status {
        const struct run_model *run;
        bool table;                     /* drawing the table (until live_status_stop) */
        bool stopped;
        struct sink *terminal;
        int terminal_fd;
        struct sink *other;
        sd_event_source *timer;
        bool timer_armed;
        uint64_t timer_due;
        bool writing;                   /* our own lines: the hook leaves them alone */
        int drawn_lines;                /* the table's lines on the screen (as queued); 0: not shown */
        char *frame;                    /* the table's text as last drawn */
        size_t frame_len;
        uint64_t last_draw_usec;
        struct rank_seen *seen;
        int n_seen;
};

static struct rank_seen *rank_seen(struct live_status *s, const struct rank *r) {
        struct rank_seen *seen;

        if (!s->seen) {
                s->seen = calloc((size_t) s->run->nproc, sizeof(*s->seen));
                if (!s->seen)
                        return NULL;
                s->n_seen = s->run->nproc;
                for (int i = 0; i < s->n_seen; i++)
                        s->seen[i] = (struct rank_seen) { .started_usec = UINT64_MAX, .last_stream = -1 };
        }
        if (r->index >= s->n_seen)
                return NULL;
        seen = &s->seen[r->index];
        /* A new attempt's rank (or one not started yet): start over. */
        if (seen->started_usec != r->started_usec)
                *seen = (struct rank_seen) { .started_usec = r->started_usec, .last_stream = -1 };
        return seen;
}

static int queue_text(struct live_status *s, const char *text, size_t len) {
        struct iovec iov = { (void *) text, len };
        int r;

        s->writing = true;
        /* The reserve: the table must not be dropped half-way through a flood. */
        r = sink_write_line(s->terminal, &iov, 1, true);
        s->writing = false;
        return r;
}

/* Erases the table (cursor up over it, clear to the end of the screen). */
static void table_erase(struct live_status *s) {
        char seq[32];
        int n;

        if (s->drawn_lines == 0)
                return;
        n = snprintf(seq, sizeof(seq), "\r\x1b[%dA\x1b[J", s->drawn_lines);
        if (queue_text(s, seq, (size_t) n) == 0)
                s->drawn_lines = 0;
}

static void schedule_redraw(struct live_status *s, uint64_t when);

/* Before ringmaster writes a line to the terminal: out of the way, back later. */
static void on_terminal_line(struct sink *sink, void *userdata) {
        struct live_status *s = userdata;

        if (s->writing || !s->table)
                return;
        table_erase(s);
        schedule_redraw(s, now_usec());
}

/* A line to stdout elsewhere: the last-line column may change. */
static void on_other_line(struct sink *sink, void *userdata) {
        struct live_status *s = userdata;

        if (s->table)
                schedule_redraw(s, now_usec());
}

/* Text into a cell of width columns at most: control bytes as '?', each non-ASCII character counted as two. */
static int put_text(FILE *f, const char *text, int width) {
        const unsigned char *p = (const unsigned char *) text;
        size_t len = strlen(text);
        int cols = 0;

        while (len > 0) {
                size_t n = *p < 0x80 ? 1 : utf8_sequence_length(p, len);
                int w = n > 1 ? 2 : 1;

                if (cols + w > width)
                        break;
                if (n <= 1) {
                        fputc(*p >= 0x20 && *p != 0x7f && *p < 0x80 ? *p : '?', f);
                        n = 1;
                } else
                        fwrite(p, 1, n, f);
                cols += w;
                p += n;
                len -= n;
        }
        return cols;
}

/* A cell: text cut to width (a '~' where it was cut), padded, and a space; *cols advanced. */
static void put_cell(FILE *f, const char *text, int width, int *cols, int max_cols) {
        char cut[256];
        int w = MIN(width, max_cols - *cols - 1), n;

        if (w <= 0)
                return;
        if ((int) strlen(text) > w && w >= 2 && w < (int) sizeof(cut)) {
                snprintf(cut, sizeof(cut), "%.*s~", w - 1, text);
                text = cut;
        }
        n = put_text(f, text, w);
        for (; n < w; n++)
                fputc(' ', f);
        fputc(' ', f);
        *cols += w + 1;
}

static void end_line(FILE *f, int *lines) {
        /* Clear what a longer line drawn there before left. */
        fputs("\x1b[K\n", f);
        (*lines)++;
}

static void terminal_size(int fd, int *ret_cols, int *ret_rows) {
        struct winsize ws = {};

        *ret_cols = DEFAULT_COLUMNS;
        *ret_rows = DEFAULT_ROWS;
        if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
                *ret_cols = ws.ws_col;
                *ret_rows = ws.ws_row;
        }
}

/* The last line a rank wrote, from the stream it wrote to last (as far as the line counts tell). */
static char *rank_last_line(struct live_status *s, const struct rank *r) {
        struct rank_seen *seen = rank_seen(s, r);
        _cleanup_strv_free_ char **l = NULL;

        if (!seen || !r->streams_set_up)
                return NULL;
        /* stderr first: what workers log goes there. */
        for (int k = _STREAM_KIND_MAX - 1; k >= 0; k--)
                if (r->streams[k].stats.lines != seen->lines[k]) {
                        if (seen->last_stream < 0 || r->streams[k].stats.lines > seen->lines[k])
                                seen->last_stream = k;
                        break;
                }
        for (int k = 0; k < _STREAM_KIND_MAX; k++)
                seen->lines[k] = r->streams[k].stats.lines;
        if (seen->last_stream < 0 || tail_lines(&r->streams[seen->last_stream].tail, 1, &l) < 0 || !l[0])
                return NULL;
        return strdup(l[0]);
}

static void put_rank_row(struct live_status *s, FILE *f, const struct rank *r, uint64_t now, int max_cols,
                         uint64_t *next, int *lines) {
        char num[32], where[NOTIFY_PHASE_NAME_MAX + 16], age[16] = "", progress[48] = "", ready[24], name[16];
        _cleanup_free_ char *last = NULL;
        int cols = 0;

        snprintf(num, sizeof(num), "%d", r->index);
        put_cell(f, num, COL_RANK, &cols, max_cols);
        if (r->pid > 0)
                snprintf(num, sizeof(num), "%d", (int) r->pid);
        else
                snprintf(num, sizeof(num), "-");
        put_cell(f, num, COL_PID, &cols, max_cols);
        if (!r->phase)
                snprintf(where, sizeof(where), "-");
        else if (r->notify.phase_end_usec)
                snprintf(where, sizeof(where), "%s done", r->phase);
        else
                snprintf(where, sizeof(where), "%s", r->phase);
        put_cell(f, where, COL_PHASE, &cols, max_cols);

        switch (r->state) {
        case RANK_IDLE:
                snprintf(ready, sizeof(ready), "-");
                break;
        case RANK_EXITED:
                snprintf(ready, sizeof(ready), "exit %d", r->exit_code);
                break;
        case RANK_SIGNALLED:
                snprintf(ready, sizeof(ready), "%s", signal_name(r->exit_signal, name, sizeof(name)));
                break;
        case RANK_UNREAPABLE:
                snprintf(ready, sizeof(ready), "stuck");
                break;
        default:
                snprintf(ready, sizeof(ready), "%s", r->ready ? "yes" : "no");
                /* Time where it is: in its phase, since READY, since its phase ended, since its start. */
                if (r->phase && !r->notify.phase_end_usec)
                        format_age(age, sizeof(age), now, r->notify.phase_start_usec, true, next);
                else if (r->ready)
                        format_age(age, sizeof(age), now, r->notify.ready_usec, true, next);
                else
                        format_age(age, sizeof(age), now, position_since(r), true, next);
                break;
        }
        put_cell(f, age, COL_TIME, &cols, max_cols);
        if (r->notify.has_progress)
                snprintf(progress, sizeof(progress), "%" PRIu64 "/%" PRIu64, r->notify.progress_done,
                         r->notify.progress_total);
        put_cell(f, progress, COL_PROGRESS, &cols, max_cols);
        put_cell(f, ready, COL_READY, &cols, max_cols);
        last = rank_last_line(s, r);
        if (last && max_cols - cols - 1 > 0)
                put_text(f, last, max_cols - cols - 1);
        end_line(f, lines);
}

/* The table's text; next lowered to when it would change by the clock alone. */
static int table_render(struct live_status *s, uint64_t now, char **ret, size_t *ret_len, int *ret_lines,
                        uint64_t *next) {
        const struct run_model *run = s->run;
        char summary[1024];
        _cleanup_free_ bool *shown = NULL;
        char *text = NULL;
        size_t len = 0;
        int cols, rows, max_ranks, n_shown = 0, lines = 0, cells = 0;
        FILE *f;

        terminal_size(s->terminal_fd, &cols, &rows);
        /* Never the last column: some terminals wrap there, and the cursor-up count would be off. */
        cols = MAX(cols - 1, 20);
        /* The header, the column names, a line to spare. */
        max_ranks = MAX(rows - 3, 2);

        shown = calloc((size_t) run->nproc, sizeof(bool));
        f = open_memstream(&text, &len);
        if (!shown || !f) {
                if (f)
                        fclose(f);
                free(text);
                return -ENOMEM;
        }

        status_summary(run, now, 0, summary, sizeof(summary), next);
        fputs("\x1b[1m", f);
        cells = put_text(f, "ringmaster ", cols);
        cells += put_text(f, run->run_id, cols - cells);
        cells += put_text(f, ": ", cols - cells);
        put_text(f, summary, cols - cells);
        fputs("\x1b[0m", f);
        end_line(f, &lines);
        cells = 0;
        put_cell(f, "RANK", COL_RANK, &cells, cols);
        put_cell(f, "PID", COL_PID, &cells, cols);
        put_cell(f, "PHASE", COL_PHASE, &cells, cols);
        put_cell(f, "TIME", COL_TIME, &cells, cols);
        put_cell(f, "PROGRESS", COL_PROGRESS, &cells, cols);
        put_cell(f, "READY", COL_READY, &cells, cols);
        put_text(f, "LAST LINE", cols - cells);
        end_line(f, &lines);

        /* Too many ranks for the screen: those not ready first, then the rest, in rank order. */
        if (run->nproc > max_ranks)
                max_ranks--;         /* the "more" line */
        for (int pass = 0; pass < 2; pass++)
                for (int i = 0; i < run->nproc && n_shown < max_ranks; i++) {
                        const struct rank *r = &run->ranks[i];
                        bool waiting = rank_state_is_alive(r->state) && !r->ready;

                        if (!shown[i] && (pass == 1 || waiting)) {
                                shown[i] = true;
                                n_shown++;
                        }
                }
        for (int i = 0; i < run->nproc; i++)
                if (shown[i])
                        put_rank_row(s, f, &run->ranks[i], now, cols, next, &lines);
        if (n_shown < run->nproc) {
                int ready = 0;
                char more[96];

                for (int i = 0; i < run->nproc; i++)
                        if (!shown[i] && run->ranks[i].ready)
                                ready++;
                snprintf(more, sizeof(more), "... %d more rank%s (%d of them ready)", run->nproc - n_shown,
                         run->nproc - n_shown == 1 ? "" : "s", ready);
                put_text(f, more, cols);
                end_line(f, &lines);
        }
        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        *ret = text;
        *ret_len = len;
        *ret_lines = lines;
        return 0;
}

static void table_redraw(struct live_status *s) {
        _cleanup_free_ char *text = NULL, *out = NULL;
        uint64_t now = now_usec(), next = UINT64_MAX;
        size_t len = 0, out_len;
        int lines = 0;

        if (!s->table || s->run->state == JOB_DONE || !s->run->ranks)
                return;
        if (table_render(s, now, &text, &len, &lines, &next) < 0)
                return;
        if (s->drawn_lines == 0 || len != s->frame_len || memcmp(text, s->frame, len) != 0) {
                char up[32] = "";
                int n = 0;

                /* In place: up over the old table, each line cleared to its end, the rest below cleared. */
                if (s->drawn_lines > 0)
                        n = snprintf(up, sizeof(up), "\r\x1b[%dA", s->drawn_lines);
                out_len = (size_t) n + len + 3;
                out = malloc(out_len + 1);
                if (!out)
                        return;
                snprintf(out, out_len + 1, "%s%s\x1b[J", up, text);
                if (queue_text(s, out, out_len) == 0) {
                        s->drawn_lines = lines;
                        free(s->frame);
                        s->frame = TAKE_PTR(text);
                        s->frame_len = len;
                        s->last_draw_usec = now;
                }
        }
        if (next != UINT64_MAX)
                schedule_redraw(s, next);
}

static int on_redraw_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        struct live_status *s = userdata;

        s->timer_armed = false;
        table_redraw(s);
        return 0;
}

/* At when, or when the redraw interval allows; never later than a redraw already due. */
static void schedule_redraw(struct live_status *s, uint64_t when) {
        int r;

        if (!s->table)
                return;
        when = MAX(when, s->last_draw_usec + STATUS_REDRAW_INTERVAL_USEC);
        if (s->timer_armed && s->timer_due <= when)
                return;
        r = sd_event_source_set_time(s->timer, when);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
        if (r < 0) {
                log_warning_errno(r, "cannot arm the status table's timer; plain lines from now on");
                table_erase(s);
                s->table = false;
                return;
        }
        s->timer_armed = true;
        s->timer_due = when;
}

/* ------------------------------------------------------------ plain lines */

static void plain_lines(struct live_status *s) {
        const struct run_model *run = s->run;

        for (int i = 0; run->ranks && i < run->nproc; i++) {
                const struct rank *r = &run->ranks[i];
                const struct rank_notify *n = &r->notify;
                struct rank_seen *seen = rank_seen(s, r);
                uint64_t total = n->history_dropped + n->n_history;
                /* With -v, phase.c's own lines say the same. */
                bool say = log_get_max_level() < LOG_LEVEL_INFO;

                if (!seen)
                        continue;
                if (total > seen->phases) {
                        uint64_t fresh = total - seen->phases;
                        size_t first = fresh > n->n_history ? 0 : n->n_history - (size_t) fresh;

                        for (size_t h = first; say && h < n->n_history; h++)
                                log_notice("rank %d: phase %s (%.3f s after its start)", r->index, n->history[h].name,
                                           secs_since(n->history[h].start_usec, r->started_usec));
                        seen->phases = total;
                        seen->end_reported = false;
                }
                if (r->phase && n->phase_end_usec && !seen->end_reported) {
                        if (say)
                                log_notice("rank %d: phase %s ended after %.3f s", r->index, r->phase,
                                           secs_since(n->phase_end_usec, n->phase_start_usec));
                        seen->end_reported = true;
                }
                if (r->ready && !seen->ready_reported) {
                        if (say)
                                log_notice("rank %d: ready (%.3f s after its start)", r->index,
                                           secs_since(n->ready_usec, r->started_usec));
                        seen->ready_reported = true;
                }
        }
}

/* ------------------------------------------------------------ the object */

int live_status_new(sd_event *event, const struct run_model *run, bool table, struct sink *terminal, int terminal_fd,
                    struct sink *other, struct live_status **ret) {
        struct live_status *s;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *s = (struct live_status) {
                .run = run,
                .table = table && terminal,
                .terminal = terminal,
                .terminal_fd = terminal_fd,
                .other = other,
        };
        if (s->table) {
                /* UI accuracy: sd-event may coalesce it with other wake-ups. */
                r = sd_event_add_time(event, &s->timer, CLOCK_MONOTONIC, 0, 10 * USEC_PER_MSEC, on_redraw_timer, s);
                if (r < 0) {
                        free(s);
                        return r;
                }
                (void) sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
                sink_set_line_hook(terminal, on_terminal_line, s);
                if (other && other != terminal)
                        sink_set_line_hook(other, on_other_line, s);
        }
        *ret = s;
        return 0;
}

void live_status_update(struct live_status *s) {
        if (!s || s->stopped)
                return;
        if (s->run->state == JOB_DONE) {
                live_status_stop(s);
                return;
        }
        if (s->table)
                /* The redraw compares the text: no change, nothing written. */
                schedule_redraw(s, now_usec());
        else
                plain_lines(s);
}

void live_status_stop(struct live_status *s) {
        if (!s || s->stopped)
                return;
        s->stopped = true;
        if (!s->table)
                return;
        table_erase(s);
        s->table = false;
        (void) sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
        s->timer_armed = false;
}

struct live_status *live_status_free(struct live_status *s) {
        if (!s)
                return NULL;
        if (s->terminal && s->timer)
                sink_set_line_hook(s->terminal, NULL, NULL);
        if (s->other && s->other != s->terminal && s->timer)
                sink_set_line_hook(s->other, NULL, NULL);
        sd_event_source_disable_unref(s->timer);
        free(s->frame);
        free(s->seen);
        free(s);
        return NULL;
}
