/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_LOG_H
#define RINGMASTER_LOG_H

/*
 * The supervisor's own messages, "ringmaster: ..." on stderr.  Once the
 * output sinks exist they go through the stderr sink, so that they interleave
 * with the workers' lines only at line boundaries.
 */

#include <stdarg.h>

enum log_level {
        LOG_LEVEL_ERROR = 0,
        LOG_LEVEL_WARNING = 1,
        LOG_LEVEL_NOTICE = 2,   /* the default threshold */
        LOG_LEVEL_INFO = 3,     /* -v */
        LOG_LEVEL_DEBUG = 4,    /* -vv */
};

struct sink;

void log_set_max_level(int level);
int log_get_max_level(void);
/* Routes messages through a sink (NULL: plain writes to fd 2). */
void log_set_sink(struct sink *s);

void log_full(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Logs with ": <strerror(-error)>" appended; returns error (negative). */
int log_full_errno(int level, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_error(...) log_full(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_full(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_notice(...) log_full(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_info(...) log_full(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_full(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_LEVEL_ERROR, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_LEVEL_WARNING, e, __VA_ARGS__)

#endif
