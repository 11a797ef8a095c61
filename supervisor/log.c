/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#include "capture.h"
#include "log.h"
#include "sink.h"
#include "util.h"

static int max_level = LOG_LEVEL_NOTICE;
static struct sink *log_sink;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_set_sink(struct sink *s) {
        log_sink = s;
}

static void log_write(const char *raw, size_t raw_len) {
        static const char prefix[] = "ringmaster: ";
        /*
         * One line, whatever a worker put into it (an error file's message, a
         * process name, an executable's name): control bytes, invalid UTF-8
         * and C1 controls are escaped as worker lines are (capture_escape).
         */
        char msg[4 * 2048];
        size_t len = capture_escape(raw, MIN(raw_len, sizeof(msg) / 4), msg);
        struct iovec iov[3] = {
                { (void *) prefix, sizeof(prefix) - 1 },
                { (void *) msg, len },
                { (void *) "\n", 1 },
        };

        if (log_sink) {
                /* The supervisor's own lines are never dropped: they wait for room. */
                sink_write_line(log_sink, iov, 3, true);
                return;
        }
        (void) !writev(STDERR_FILENO, iov, 3);
}

static void log_vformat(int level, int error, const char *fmt, va_list ap) {
        char buf[2048];
        int n;

        if (level > max_level)
                return;
        n = vsnprintf(buf, sizeof(buf), fmt, ap);
        if (n < 0)
                return;
        if ((size_t) n >= sizeof(buf))
                n = sizeof(buf) - 1;
        if (error != 0)
                n += snprintf(buf + n, sizeof(buf) - (size_t) n, ": %s", strerror(error < 0 ? -error : error));
        if ((size_t) n >= sizeof(buf))
                n = sizeof(buf) - 1;
        log_write(buf, (size_t) n);
}

void log_full(int level, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        log_vformat(level, 0, fmt, ap);
        va_end(ap);
}

int log_full_errno(int level, int error, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        log_vformat(level, error, fmt, ap);
        va_end(ap);
        return error < 0 ? error : -error;
}
