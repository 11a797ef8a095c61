/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_CAPTURE_H
#define RINGMASTER_CAPTURE_H

/*
 * Capture of one worker output stream (a rank's stdout or stderr): the pipe
 * is drained with non-blocking reads whenever it is readable; bytes are
 * copied raw to the rank's log file, assembled into lines (a line ends at
 * '\n', '\r\n' or a lone '\r'; a line longer than max_line is cut, the rest
 * continuing as a new line), escaped, prefixed and handed whole to the
 * terminal sink (and/or the journal), and kept in a bounded tail for the
 * report.  A line the sink has no room for is dropped and counted; the
 * worker is never made to wait.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "tail.h"

struct sink;

enum stream_kind {
        STREAM_STDOUT = 0,
        STREAM_STDERR = 1,
        _STREAM_KIND_MAX,
};

const char *stream_kind_name(enum stream_kind k);   /* "stdout", "stderr" */

/* Shared by every stream of a run. */
struct capture_config {
        const char *prefix_template;  /* see capture_prefix_template_valid() */
        const char *role;             /* ROLE_NAME, for %n */
        const char *run_id;           /* for the journal's RINGMASTER_RUN */
        const char *ident;            /* SYSLOG_IDENTIFIER: the command's name */
        bool escape;                  /* escape control bytes and invalid UTF-8 */
        size_t max_line;
        size_t tail_bytes;
        struct sink *sinks[_STREAM_KIND_MAX]; /* NULL: not to the terminal */
        bool journal;                 /* also to journald */
        struct sink *journal_fallback[_STREAM_KIND_MAX]; /* where a line goes when journald refuses it */
        const bool *console_hidden;   /* by local rank: its lines not to the terminal (--console-ranks); NULL: none */
        int n_console_hidden;
};

struct stream_stats {
        uint64_t bytes;               /* read from the worker */
        uint64_t lines;               /* lines assembled */
        uint64_t cut_lines;           /* lines cut at max_line */
        uint64_t dropped_lines;       /* refused by a full sink */
        uint64_t dropped_bytes;
        uint64_t journal_errors;
        uint64_t log_lost_bytes;      /* not written to the --log-dir file (after a write failed) */
        int log_error;                /* that failure's errno, or 0 */
        bool unterminated;            /* the last line had no newline (at EOF) */
};

struct stream {
        const struct capture_config *config;
        enum stream_kind kind;
        int rank, local_rank;
        pid_t pid;

        int fd;                       /* the pipe's read end, non-blocking */
        sd_event_source *source;
        int log_fd;                   /* raw copy, or -EBADF */
        bool log_failed;

        char *prefix;
        size_t prefix_len;
        char *line;                   /* max_line bytes */
        size_t line_len;
        bool after_cr;                /* swallow a '\n' right after a '\r' */

        /* Lines dropped since the last one that made it: reported in-band. */
        uint64_t pending_drop_lines, pending_drop_bytes;

        struct tail tail;
        struct stream_stats stats;

        /* Sees each line as the tail does (diagnose.c: a faulthandler traceback); NULL: none. */
        void (*line_watcher)(void *userdata, const char *line, size_t len);
        void *line_watcher_data;
};

/* Checks a --prefix template: %r %l %n %s %p %w (a spawned worker's label) %% and plain text. */
bool capture_prefix_template_valid(const char *t);

/*
 * Sets up a stream on fd (taken over) with an optional log fd (taken over).
 * Watches fd with an IO source at the given priority.
 */
int stream_init(struct stream *s, sd_event *event, int64_t priority, const struct capture_config *config,
                enum stream_kind kind, int rank, int local_rank, pid_t pid, int fd, int log_fd);

/* Recomputes the prefix with %w as label (a spawned worker's, which can change: workers.h). */
int stream_set_label(struct stream *s, const char *label);

/* Reads whatever the pipe holds now (until EAGAIN or EOF). */
void stream_drain(struct stream *s);

/* Drains, emits a last unterminated line, and closes the pipe and log fds. */
void stream_finish(struct stream *s);

/* Frees everything but the stats and the tail (kept for the report). */
void stream_release(struct stream *s);

/* Frees the tail too. */
void stream_free(struct stream *s);

/* Escapes one line for a terminal: returns the escaped length; out has 4 * len bytes. */
size_t capture_escape(const char *in, size_t len, char *out);

#endif
